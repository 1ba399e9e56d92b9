// SPDX-License-Identifier: GPL-2.0
// Spike: minimal CO-RE tracepoint sensor for kubectl-secmon (not committed anywhere).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define PATH_MAX_LEN 256
enum ev_type { EV_OPENAT = 1, EV_EXEC = 2, EV_EXECVE_ENTER = 3, EV_EXECVE_EXIT = 4,
               EV_CONNECT = 5, EV_DUP2 = 6, EV_DUP3 = 7, EV_FINIT_MODULE = 8, EV_PTRACE = 9 };

struct event {
	__u32 type;
	__u32 pid;      /* kernel tid */
	__u32 tgid;     /* userspace pid */
	__u32 ppid;     /* real_parent->tgid, CO-RE */
	__u32 uid;
	__u32 gid;
	__u64 cgroup_id;
	__u64 ts_ns;
	__u32 mntns;    /* nsproxy->mnt_ns->ns.inum, CO-RE */
	__u32 pidns;    /* nsproxy->pid_ns_for_children->ns.inum, CO-RE */
	__s64 arg0;
	__s64 arg1;
	char comm[16];
	char path[PATH_MAX_LEN];   /* filename / sockaddr bytes / argv[0] */
	__u64 memcg_id; /* cgroup v1 memory controller cgroup kernfs id (hybrid hosts), CO-RE */
};

/* set from userspace with EbpfLoader::override_global("loader_tgid", ..) */
const volatile __u32 loader_tgid = 0;
/* 0: wake the consumer on every submit (default); N: wake only when > N bytes are pending */
const volatile __u64 wakeup_bytes = 0;

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 256 * 1024); } events SEC(".maps");
/* index 0: ringbuf reserve failures */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } drops SEC(".maps");
/* per event type: how many times the program fired (after own-tgid filter) */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } seen SEC(".maps");

static __always_inline void bump(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* returns NULL when filtered or when the ring buffer is full (drop counted) */
static __always_inline struct event *start(__u32 type)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == loader_tgid)
		return NULL;
	bump(&seen, type);
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		bump(&drops, 0);
		return NULL;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 uid_gid = bpf_get_current_uid_gid();
	e->type = type;
	e->pid = (__u32)pid_tgid;
	e->tgid = tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	e->pidns = BPF_CORE_READ(task, nsproxy, pid_ns_for_children, ns.inum);
	e->arg0 = 0;
	e->arg1 = 0;
	e->path[0] = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	int memcg = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	e->memcg_id = BPF_CORE_READ(task, cgroups, subsys[memcg], cgroup, kn, id);
	return e;
}

static __always_inline void submit(struct event *e)
{
	__u64 flags = 0;
	if (wakeup_bytes)
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_openat(struct trace_event_raw_sys_enter *ctx)
{
	struct event *e = start(EV_OPENAT);
	if (!e)
		return 0;
	e->arg0 = (__s64)ctx->args[0];   /* dfd */
	e->arg1 = (__s64)ctx->args[2];   /* flags */
	bpf_probe_read_user_str(e->path, sizeof(e->path), (const char *)ctx->args[1]);
	submit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int tp_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct event *e = start(EV_EXEC);
	if (!e)
		return 0;
	unsigned int off = ctx->__data_loc_filename & 0xFFFF;   /* low 16 bits: offset, high: length */
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + off);
	e->arg0 = ctx->pid;
	e->arg1 = ctx->old_pid;
	submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int tp_execve_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct event *e = start(EV_EXECVE_ENTER);
	if (!e)
		return 0;
	bpf_probe_read_user_str(e->path, sizeof(e->path), (const char *)ctx->args[0]);
	/* argv[1] pointer as a sample of argv access */
	const char *const *argv = (const char *const *)ctx->args[1];
	const char *a1 = NULL;
	bpf_probe_read_user(&a1, sizeof(a1), &argv[1]);
	e->arg0 = (__s64)(unsigned long)a1;
	submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tp_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct event *e = start(EV_EXECVE_EXIT);
	if (!e)
		return 0;
	e->arg0 = ctx->ret;
	submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int tp_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct event *e = start(EV_CONNECT);
	if (!e)
		return 0;
	e->arg0 = (__s64)ctx->args[0];   /* fd */
	__u64 len = ctx->args[2];        /* addrlen */
	e->arg1 = (__s64)len;
	if (len > 128)
		len = 128;
	/* raw sockaddr bytes: family (u16), then port/addr (userspace decodes) */
	bpf_probe_read_user(e->path, len & 0xff, (const void *)ctx->args[1]);
	submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_dup2")
int tp_dup2(struct trace_event_raw_sys_enter *ctx)
{
	struct event *e = start(EV_DUP2);
	if (!e)
		return 0;
	e->arg0 = (__s64)ctx->args[0];
	e->arg1 = (__s64)ctx->args[1];
	submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_dup3")
int tp_dup3(struct trace_event_raw_sys_enter *ctx)
{
	struct event *e = start(EV_DUP3);
	if (!e)
		return 0;
	e->arg0 = (__s64)ctx->args[0];
	e->arg1 = (__s64)ctx->args[1];
	submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_finit_module")
int tp_finit_module(struct trace_event_raw_sys_enter *ctx)
{
	struct event *e = start(EV_FINIT_MODULE);
	if (!e)
		return 0;
	e->arg0 = (__s64)ctx->args[0];   /* fd */
	e->arg1 = (__s64)ctx->args[2];   /* flags */
	bpf_probe_read_user_str(e->path, sizeof(e->path), (const char *)ctx->args[1]); /* param string */
	submit(e);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ptrace")
int tp_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	struct event *e = start(EV_PTRACE);
	if (!e)
		return 0;
	e->arg0 = (__s64)ctx->args[0];   /* request */
	e->arg1 = (__s64)ctx->args[1];   /* target pid */
	submit(e);
	return 0;
}

/* ---- feature probes: raw_tracepoint, bpf_loop, bpf_get_current_task_btf ---- */
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } probe_stats SEC(".maps");

static long loop_cb(__u64 i, void *ctx)
{
	__u64 *acc = ctx;
	*acc += i;
	return 0;
}

/* raw_tracepoint: args[0]=pt_regs*, args[1]=syscall id */
SEC("raw_tracepoint/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == loader_tgid)
		return 0;
	__u32 k0 = 0, k1 = 1, k2 = 2;
	__u64 *cnt = bpf_map_lookup_elem(&probe_stats, &k0);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	/* bpf_loop (5.17+): sum 0..9 = 45 */
	__u64 acc = 0;
	bpf_loop(10, loop_cb, &acc, 0);
	__u64 *l = bpf_map_lookup_elem(&probe_stats, &k1);
	if (l)
		*l = acc;
	/* bpf_get_current_task_btf (5.11+): direct BTF-typed deref, no probe_read */
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 *tg = bpf_map_lookup_elem(&probe_stats, &k2);
	if (tg)
		*tg = t->tgid;
	return 0;
}

/* init_module/finit_module have no syscall tracepoints on this kernel (CONFIG_MODULES off):
 * catch the attempt on raw_tracepoint/sys_enter by syscall number (x86_64: 175, 313). */
SEC("raw_tracepoint/sys_enter_module")  /* unique section name: see aya CO-RE note */
int raw_module(struct bpf_raw_tracepoint_args *ctx)
{
	/* Not ctx->args[1]: vmlinux.h marks every struct preserve_access_index, so that emits a CO-RE
	 * relocation into the flexible array `__u64 args[0]`, which aya 0.14 rejects
	 * (InvalidAccessIndex ... "array index out of bounds"); libbpf would accept it. */
	__u64 *args = (__u64 *)ctx;
	long id = args[1];
	if (id != 175 && id != 313)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)args[0];
	struct event *e = start(EV_FINIT_MODULE);
	if (!e)
		return 0;
	e->arg0 = id;
	e->arg1 = BPF_CORE_READ(regs, di);   /* finit_module: fd; init_module: umod ptr */
	const char *params = (const char *)BPF_CORE_READ(regs, si);
	if (id == 175)
		params = (const char *)BPF_CORE_READ(regs, dx);
	bpf_probe_read_user_str(e->path, sizeof(e->path), params);
	submit(e);
	return 0;
}

/* tp_btf: typed args (task, pid, linux_binprm) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(btf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 k = 3;
	__u64 *v = bpf_map_lookup_elem(&probe_stats, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}
