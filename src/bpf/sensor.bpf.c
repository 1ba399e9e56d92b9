// SPDX-License-Identifier: GPL-2.0
/*
 * kubectl-secmon node sensor: the kernel side.
 *
 * Tracepoint programs (kprobes are not assumed) that turn the system calls and process
 * lifecycle events the detection rules need into variable-length records in one shared BPF
 * ring buffer. The record layout is documented, and decoded, in src/bpf/abi.rs; the two
 * must change together.
 *
 *   sys_exit_btf       tp_btf/sys_exit, filtered by the loader's table of wanted syscall
 *                      numbers; reads the call's arguments from the saved user registers,
 *                      its result, and the paths/sockaddrs/sockets the call names
 *   sched_exec         sched/sched_process_exec: filename, argv, environment, exe identity
 *   sched_fork         tp_btf/sched_process_fork: new processes (not threads)
 *   sched_exit         sched/sched_process_exit: thread-group leaders
 *
 * Module loads (init_module, finit_module) are caught at sys_exit like the rest: the raw
 * tracepoint fires even on kernels built without modules, where the calls fail with ENOSYS
 * and have no syscalls/ tracepoints of their own; the attempt is the event.
 *
 * In-kernel filtering: the sensor's own process, dup* that do not target fds 0-2, successful
 * execve exits (sched_exec reports them), and configurable path prefixes.
 *
 * Build: scripts/build-bpf (clang -target bpf, CO-RE against the running kernel's BTF).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define HDR_LEN 176
#define SCRATCH 16384
#define HALF 8192
#define PATH_LEN 1024
#define LIST_LEN 2048
#define FSTYPE_LEN 64
#define SOCKADDR_LEN 128
#define SOCK_INFO_LEN 44
#define MAX_PREFIXES 8
#define MAX_NR 512
#define PREFIX_LEN 64

#define KIND_SYSCALL 1
#define KIND_SYSCALL_ENTER 2
#define KIND_EXEC 3
#define KIND_FORK 4
#define KIND_EXIT 5

#define FLAG_TRUNCATED 1
#define EXE_UPPER_LAYER 1
#define EXE_MEMFD 2

#define CAT_PROCESS 0
#define CAT_FILE 1
#define CAT_NETWORK 2
#define CAT_SECURITY 3
#define CAT_OTHER 4
#define N_CATS 5

#define OVERLAYFS_SUPER_MAGIC 0x794c7630

/* x86_64 syscall numbers (src/bpf/abi.rs `nr`) */
#define NR_OPEN 2
#define NR_DUP 32
#define NR_DUP2 33
#define NR_SOCKET 41
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_EXECVE 59
#define NR_RENAME 82
#define NR_CREAT 85
#define NR_LINK 86
#define NR_UNLINK 87
#define NR_SYMLINK 88
#define NR_CHMOD 90
#define NR_FCHMOD 91
#define NR_PTRACE 101
#define NR_MOUNT 165
#define NR_UMOUNT2 166
#define NR_INIT_MODULE 175
#define NR_OPENAT 257
#define NR_UNLINKAT 263
#define NR_RENAMEAT 264
#define NR_LINKAT 265
#define NR_SYMLINKAT 266
#define NR_FCHMODAT 268
#define NR_ACCEPT4 288
#define NR_DUP3 292
#define NR_FINIT_MODULE 313
#define NR_RENAMEAT2 316
#define NR_MEMFD_CREATE 319
#define NR_EXECVEAT 322
#define NR_OPENAT2 437

struct hdr {
	__u16 size;
	__u16 kind;
	__u16 nr;
	__u8 flags;
	__u8 category;
	__u64 ts;
	__s64 ret;
	__u64 args[6];
	__u64 cgroup_id;
	__u64 memcg_id;
	__u64 cap_eff;
	__u64 start_ns;
	__u32 tid, pid, ppid, vpid, uid, gid, tty, loginuid, mntns, pidns;
	char comm[16];
	__u16 str_len[4];
	__u64 reserved;
};
_Static_assert(sizeof(struct hdr) == HDR_LEN, "header layout must match src/bpf/abi.rs");

struct sock_info {
	__u16 family, type, proto, lport, rport, pad;
	__u8 laddr[16];
	__u8 raddr[16];
};
_Static_assert(sizeof(struct sock_info) == SOCK_INFO_LEN, "sock_info layout must match src/bpf/abi.rs");

/* Set by the loader before load (EbpfLoader::override_global). */
const volatile __u32 sensor_tgid = 0;
/* 0: the kernel's adaptive wakeups; N: wake the reader when the backlog crosses N bytes
 * (the reader also drains on a short timer). */
const volatile __u64 wakeup_bytes = 0;
/* Path prefixes whose file events never leave the kernel; length 0 ends the list. */
const volatile char drop_prefix[MAX_PREFIXES][PREFIX_LEN] = {};
const volatile __u32 drop_prefix_len[MAX_PREFIXES] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

struct scratch {
	__u8 buf[SCRATCH];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* Per category: [2*cat] records produced, [2*cat+1] records lost (ring buffer full);
 * [2*N_CATS] records dropped by the path-prefix filter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * N_CATS + 1);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

static __always_inline bool is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == sensor_tgid;
}

static __always_inline __u8 category_of(long nr)
{
	switch (nr) {
	case NR_OPEN: case NR_OPENAT: case NR_OPENAT2: case NR_CREAT: case NR_UNLINK:
	case NR_UNLINKAT: case NR_RENAME: case NR_RENAMEAT: case NR_RENAMEAT2: case NR_LINK:
	case NR_LINKAT: case NR_SYMLINK: case NR_SYMLINKAT: case NR_CHMOD: case NR_FCHMOD:
	case NR_FCHMODAT: case NR_MOUNT: case NR_UMOUNT2:
		return CAT_FILE;
	case NR_CONNECT: case NR_ACCEPT: case NR_ACCEPT4: case NR_SOCKET: case NR_DUP:
	case NR_DUP2: case NR_DUP3:
		return CAT_NETWORK;
	case NR_EXECVE: case NR_EXECVEAT:
		return CAT_PROCESS;
	default:
		return CAT_SECURITY;
	}
}

/* The pid of `task` in its own pid namespace, and that namespace's inode number. */
static __always_inline void own_pid_ns(struct task_struct *task, __u32 *vpid, __u32 *pidns)
{
	struct pid *p = task->thread_pid;
	if (!p)
		return;
	unsigned int level = p->level;
	/* numbers[] is a flexible array indexed at run time: read it by hand (a CO-RE access
	 * into a zero-length array is refused by aya 0.14, and a variable offset into a BTF
	 * pointer by the verifier). */
	struct upid up = {};
	void *base = (void *)p + bpf_core_field_offset(struct pid, numbers);
	bpf_probe_read_kernel(&up, sizeof(up), base + (level & 31) * sizeof(struct upid));
	*vpid = up.nr;
	if (up.ns)
		*pidns = BPF_CORE_READ(up.ns, ns.inum);
}

static __always_inline __u32 tty_nr(struct task_struct *task)
{
	struct tty_struct *tty = task->signal->tty;
	if (!tty)
		return 0;
	struct tty_driver *drv = tty->driver;
	if (!drv)
		return 0;
	__u32 major = drv->major;
	__u32 minor = drv->minor_start + tty->index;
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
}

/* The header every record starts with. Task fields are read through the BTF-typed current
 * task (plain loads the verifier guards) rather than one probe-read helper call each. */
static __always_inline void fill_header(struct hdr *h, __u16 kind, __u16 nr, __u8 cat, bool full)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	h->size = HDR_LEN;
	h->kind = kind;
	h->nr = nr;
	h->flags = 0;
	h->category = cat;
	h->ts = bpf_ktime_get_boot_ns();
	h->ret = 0;
	h->tid = (__u32)pid_tgid;
	h->pid = pid_tgid >> 32;
	h->ppid = task->real_parent->tgid;
	h->uid = (__u32)uid_gid;
	h->gid = uid_gid >> 32;
	/* the default-hierarchy (v2) cgroup, as bpf_get_current_cgroup_id() sees it, by loads */
	h->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	int memcg = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	h->memcg_id = 0;
	if (memcg >= 0 && memcg < 16) {
		struct cgroup_subsys_state *css = task->cgroups->subsys[memcg];
		if (css)
			h->memcg_id = css->cgroup->kn->id;
	}
	const struct cred *cred = task->cred;
	h->cap_eff = 0;
	if (bpf_core_field_exists(cred->cap_effective.val))
		h->cap_eff = cred->cap_effective.val;
	else
		bpf_probe_read_kernel(&h->cap_eff, sizeof(h->cap_eff), &cred->cap_effective);
	h->start_ns = task->group_leader->start_boottime;
	/* The pid-namespace view costs two probe reads: process records carry it, syscall
	 * records leave it 0 and userspace takes it from the process table. */
	h->vpid = 0;
	h->pidns = 0;
	if (full)
		own_pid_ns(task, &h->vpid, &h->pidns);
	h->tty = tty_nr(task);
	h->loginuid = (__u32)-1;
	if (bpf_core_field_exists(task->loginuid))
		h->loginuid = task->loginuid.val;
	h->mntns = task->nsproxy ? task->nsproxy->mnt_ns->ns.inum : 0;
	/* comm by two loads instead of a helper call */
	__builtin_memcpy(h->comm, task->comm, sizeof(h->comm));
	for (int i = 0; i < 6; i++)
		h->args[i] = 0;
	for (int i = 0; i < 4; i++)
		h->str_len[i] = 0;
	h->reserved = 0;
}

static __always_inline struct hdr *scratch_hdr(void)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	return s ? (struct hdr *)s->buf : NULL;
}

/* Append a user C string as section `i`; returns the new end offset. */
static __always_inline __u32 put_user_str(struct hdr *h, __u32 off, int i, const void *src, __u32 max)
{
	__u8 *buf = (__u8 *)h;
	if (!src || off >= HALF || i < 0 || i > 3)
		return off;
	long n = bpf_probe_read_user_str(buf + (off & (HALF - 1)), max & (PATH_LEN * 4 - 1), src);
	if (n <= 0)
		return off;
	if (n >= max)
		h->flags |= FLAG_TRUNCATED;
	h->str_len[i & 3] = n;
	return off + n;
}

static __always_inline __u32 put_kernel_str(struct hdr *h, __u32 off, int i, const void *src, __u32 max)
{
	__u8 *buf = (__u8 *)h;
	if (!src || off >= HALF || i < 0 || i > 3)
		return off;
	long n = bpf_probe_read_kernel_str(buf + (off & (HALF - 1)), max & (PATH_LEN * 4 - 1), src);
	if (n <= 0)
		return off;
	h->str_len[i & 3] = n;
	return off + n;
}

/* Append `len` raw user bytes (argv, environment, sockaddr) as section `i`. */
static __always_inline __u32 put_user_bytes(struct hdr *h, __u32 off, int i, const void *src, __u64 len, __u32 max)
{
	__u8 *buf = (__u8 *)h;
	if (!src || off >= HALF || i < 0 || i > 3 || len == 0)
		return off;
	if (len > max) {
		len = max;
		h->flags |= FLAG_TRUNCATED;
	}
	len &= (LIST_LEN * 2 - 1);
	if (len == 0)
		return off;
	if (bpf_probe_read_user(buf + (off & (HALF - 1)), len, src) < 0)
		return off;
	h->str_len[i & 3] = len;
	return off + len;
}

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Append the socket behind `fd` as section 3 (nothing when fd is not a socket). */
static __always_inline __u32 put_sock(struct hdr *h, __u32 off, int fd)
{
	__u8 *buf = (__u8 *)h;
	struct file *f = fd_file(fd);
	if (!f || off >= HALF)
		return off;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & 00170000) != 0140000) /* S_IFSOCK */
		return off;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return off;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return off;
	struct sock_info *si = (struct sock_info *)(buf + (off & (HALF - 1)));
	__builtin_memset(si, 0, sizeof(*si));
	si->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	si->type = BPF_CORE_READ(sk, sk_type);
	si->proto = BPF_CORE_READ(sk, sk_protocol);
	si->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	si->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (si->family == 2) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(si->laddr, &l, 4);
		__builtin_memcpy(si->raddr, &r, 4);
	} else if (si->family == 10) {
		BPF_CORE_READ_INTO(&si->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&si->raddr, sk, __sk_common.skc_v6_daddr);
	}
	h->str_len[3] = SOCK_INFO_LEN;
	return off + SOCK_INFO_LEN;
}

static __always_inline bool dropped_by_prefix(struct hdr *h)
{
	__u8 *s = (__u8 *)h + HDR_LEN;
	__u32 slen = h->str_len[0];
#pragma unroll
	for (int i = 0; i < MAX_PREFIXES; i++) {
		__u32 plen = drop_prefix_len[i];
		if (plen == 0 || plen > PREFIX_LEN)
			break;
		if (slen <= plen)
			continue;
		bool eq = true;
		for (int j = 0; j < PREFIX_LEN; j++) {
			if (j >= plen)
				break;
			if (s[j] != drop_prefix[i][j]) {
				eq = false;
				break;
			}
		}
		if (eq)
			return true;
	}
	return false;
}

static __always_inline void emit(struct hdr *h, __u32 size)
{
	if (size < HDR_LEN || size > HALF + LIST_LEN * 2)
		return;
	h->size = size;
	/* Wake the reader only when this record makes the backlog cross `wakeup_bytes`: a
	 * reader that is behind is draining already (poll reports pending data), and forcing a
	 * wakeup per record then only adds an irq_work each. The reader also drains on a timer. */
	__u64 flags = 0;
	if (wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		flags = (avail < wakeup_bytes && avail + size >= wakeup_bytes) ? BPF_RB_FORCE_WAKEUP
										: BPF_RB_NO_WAKEUP;
	}
	__u8 cat = h->category < N_CATS ? h->category : CAT_OTHER;
	if (bpf_ringbuf_output(&events, h, size, flags) < 0)
		bump(2 * cat + 1);
	else
		bump(2 * cat);
}

/* Which syscall numbers to record, set by the loader from what the rules need. */
const volatile __u8 want_syscall[MAX_NR] = {};

/* One program on the raw sys_exit tracepoint for every traced syscall: a table lookup
 * dismisses the others in a few instructions, and no perf trace buffer is built per call
 * (the cost of the per-syscall syscalls:sys_exit_* tracepoints). */
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_btf, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	if (nr < 0 || nr >= MAX_NR || !want_syscall[nr & (MAX_NR - 1)])
		return 0;
	if (is_self())
		return 0;
	/* What can never match leaves no record. */
	switch (nr) {
	case NR_DUP: case NR_DUP2: case NR_DUP3:
		if (ret < 0 || ret > 2)
			return 0;
		break;
	case NR_EXECVE: case NR_EXECVEAT:
		if (ret >= 0)
			return 0; /* sched_exec reported it */
		break;
	}
	struct hdr *h = scratch_hdr();
	if (!h)
		return 0;
	__u8 cat = category_of(nr);
	fill_header(h, KIND_SYSCALL, nr, cat, false);
	h->ret = ret;
	h->args[0] = regs->di;
	h->args[1] = regs->si;
	h->args[2] = regs->dx;
	h->args[3] = regs->r10;
	h->args[4] = regs->r8;
	h->args[5] = regs->r9;

	int a0 = -1, a1 = -1, a2 = -1;
	switch (nr) {
	case NR_OPEN: case NR_CREAT: case NR_UNLINK: case NR_CHMOD: case NR_UMOUNT2:
	case NR_EXECVE: case NR_MEMFD_CREATE:
		a0 = 0;
		break;
	case NR_FINIT_MODULE: /* (fd, params, flags): the parameter string */
		a0 = 1;
		break;
	case NR_INIT_MODULE: /* (image, len, params) */
		a0 = 2;
		break;
	case NR_OPENAT: case NR_UNLINKAT: case NR_FCHMODAT: case NR_EXECVEAT:
		a0 = 1;
		break;
	case NR_RENAME: case NR_LINK: case NR_SYMLINK:
		a0 = 0;
		a1 = 1;
		break;
	case NR_RENAMEAT: case NR_RENAMEAT2: case NR_LINKAT:
		a0 = 1;
		a1 = 3;
		break;
	case NR_SYMLINKAT:
		a0 = 0;
		a1 = 2;
		break;
	case NR_MOUNT:
		a0 = 0;
		a1 = 1;
		a2 = 2;
		break;
	}
	__u32 off = HDR_LEN;
	if (nr == NR_CONNECT) {
		off = put_user_bytes(h, off, 0, (const void *)h->args[1], h->args[2], SOCKADDR_LEN);
		off = put_sock(h, off, (int)h->args[0]);
	} else if (nr == NR_ACCEPT || nr == NR_ACCEPT4) {
		if (ret >= 0)
			off = put_sock(h, off, (int)ret);
	} else if (nr == NR_DUP || nr == NR_DUP2 || nr == NR_DUP3) {
		off = put_sock(h, off, (int)h->args[0]);
	} else {
		if (nr == NR_OPENAT2) {
			/* s1: the struct open_how the flags and mode live in */
			off = put_user_str(h, off, 0, (const void *)h->args[1], PATH_LEN);
			off = put_user_bytes(h, off, 1, (const void *)h->args[2], 24, 24);
		}
		if (a0 >= 0)
			off = put_user_str(h, off, 0, (const void *)h->args[a0 & 7], PATH_LEN);
		if (a1 >= 0)
			off = put_user_str(h, off, 1, (const void *)h->args[a1 & 7], PATH_LEN);
		if (a2 >= 0)
			off = put_user_str(h, off, 2, (const void *)h->args[a2 & 7], FSTYPE_LEN);
		if (cat == CAT_FILE && dropped_by_prefix(h)) {
			bump(2 * N_CATS);
			return 0;
		}
	}
	emit(h, off);
	return 0;
}

struct inode___v66 { struct timespec64 __i_ctime; struct timespec64 i_mtime; } __attribute__((preserve_access_index));
struct inode___old { struct timespec64 i_ctime; struct timespec64 i_mtime; } __attribute__((preserve_access_index));

SEC("tracepoint/sched/sched_process_exec")
int sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	if (is_self())
		return 0;
	struct hdr *h = scratch_hdr();
	if (!h)
		return 0;
	fill_header(h, KIND_EXEC, 0, CAT_PROCESS, true);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 off = HDR_LEN;
	unsigned int loc = ctx->__data_loc_filename & 0xFFFF;
	off = put_kernel_str(h, off, 0, (void *)ctx + loc, PATH_LEN);

	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	struct file *exe = BPF_CORE_READ(mm, exe_file);
	const unsigned char *dname = BPF_CORE_READ(exe, f_path.dentry, d_name.name);
	__u32 name_off = off;
	off = put_kernel_str(h, off, 1, dname, 256);
	__u64 exe_flags = 0;
	if (off > name_off + 6) {
		__u8 *n = (__u8 *)h + (name_off & (HALF - 1));
		if (n[0] == 'm' && n[1] == 'e' && n[2] == 'm' && n[3] == 'f' && n[4] == 'd' && n[5] == ':')
			exe_flags |= EXE_MEMFD;
	}
	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	if (ino) {
		unsigned long magic = BPF_CORE_READ(ino, i_sb, s_magic);
		if (magic == OVERLAYFS_SUPER_MAGIC && bpf_core_type_exists(struct ovl_inode)) {
			struct ovl_inode *ovl = (void *)ino - bpf_core_field_offset(struct ovl_inode, vfs_inode);
			if (BPF_CORE_READ(ovl, __upperdentry))
				exe_flags |= EXE_UPPER_LAYER;
		}
		if (bpf_core_field_exists(ino->i_ctime_sec)) {
			h->args[1] = BPF_CORE_READ(ino, i_ctime_sec) * 1000000000ull + BPF_CORE_READ(ino, i_ctime_nsec);
			h->args[2] = BPF_CORE_READ(ino, i_mtime_sec) * 1000000000ull + BPF_CORE_READ(ino, i_mtime_nsec);
		} else if (bpf_core_field_exists(((struct inode___v66 *)ino)->__i_ctime)) {
			struct inode___v66 *i = (void *)ino;
			h->args[1] = BPF_CORE_READ(i, __i_ctime.tv_sec) * 1000000000ull + BPF_CORE_READ(i, __i_ctime.tv_nsec);
			h->args[2] = BPF_CORE_READ(i, i_mtime.tv_sec) * 1000000000ull + BPF_CORE_READ(i, i_mtime.tv_nsec);
		} else {
			struct inode___old *i = (void *)ino;
			h->args[1] = BPF_CORE_READ(i, i_ctime.tv_sec) * 1000000000ull + BPF_CORE_READ(i, i_ctime.tv_nsec);
			h->args[2] = BPF_CORE_READ(i, i_mtime.tv_sec) * 1000000000ull + BPF_CORE_READ(i, i_mtime.tv_nsec);
		}
	}
	h->args[0] = exe_flags;
	h->args[3] = ctx->old_pid;

	unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
	if (arg_end > arg_start)
		off = put_user_bytes(h, off, 2, (const void *)arg_start, arg_end - arg_start, LIST_LEN);
	unsigned long env_start = BPF_CORE_READ(mm, env_start);
	unsigned long env_end = BPF_CORE_READ(mm, env_end);
	if (env_end > env_start)
		off = put_user_bytes(h, off, 3, (const void *)env_start, env_end - env_start, LIST_LEN);
	emit(h, off);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_fork, struct task_struct *parent, struct task_struct *child)
{
	if (is_self())
		return 0;
	if (child->pid != child->tgid)
		return 0; /* a thread, not a process */
	struct hdr *h = scratch_hdr();
	if (!h)
		return 0;
	fill_header(h, KIND_FORK, 0, CAT_PROCESS, true);
	h->args[0] = child->tgid;
	h->args[1] = child->start_boottime;
	emit(h, HDR_LEN);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sched_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)pid_tgid != (pid_tgid >> 32) || is_self())
		return 0; /* threads: only the leader's exit ends the process */
	struct hdr *h = scratch_hdr();
	if (!h)
		return 0;
	fill_header(h, KIND_EXIT, 0, CAT_PROCESS, true);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	h->args[0] = BPF_CORE_READ(task, exit_code);
	emit(h, HDR_LEN);
	return 0;
}
