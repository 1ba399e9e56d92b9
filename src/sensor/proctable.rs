//! The process table: what the sensor knows about every live process (and, for a short
//! grace period, recently exited ones), so that an event from pid N can say which program,
//! command line, parents, user and container it came from.
//!
//! It is seeded from `/proc` when the sensor starts, then kept by the kernel's process
//! records: an exec replaces a pid's entry, a fork copies the parent's entry to the child,
//! an exit retires it (after a grace period: the process's last syscall records can still
//! be in the ring buffer behind its exit). A pid the table has never seen is read from
//! `/proc` once; if it is already gone, a minimal entry is built from the record header.
//! A pid in the table is never read from `/proc` again on the event path.
//!
//! Everything read from `/proc` is best-effort: a process vanishing mid-read, an unreadable
//! file or odd content gives a partial entry or none, never an error or a panic.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use crate::bpf::abi::{self, EXE_MEMFD, EXE_UPPER_LAYER, Header, RawEvent};

use super::clock::BootClock;
use super::container::{ContainerCache, ContainerRef};

/// One process (thread group), as the table knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// The thread of the last record seen from this process (0 = unknown).
    pub tid: u32,
    /// The pid inside the process's own pid namespace (0 = unknown).
    pub vpid: u32,
    /// Session id (0 = unknown).
    pub sid: u32,
    /// The kernel's `comm` (at most 15 bytes): `proc.name`.
    pub comm: String,
    /// `argv[0]`: `proc.exe`.
    pub exe: String,
    /// The executable's resolved path (`memfd:NAME` for a memfd): `proc.exepath`.
    pub exepath: String,
    /// argv[1..]: `proc.args`.
    pub args: Vec<String>,
    /// Working directory, without a trailing slash ("" when unknown).
    pub cwd: String,
    /// Controlling terminal as `tty_nr` (0 = none).
    pub tty: u32,
    /// Process start, Unix-epoch ns (0 = unknown).
    pub start_ns: u64,
    /// Process start, `CLOCK_BOOTTIME` ns: tells a reused pid from the process it replaced.
    pub start_boot_ns: u64,
    pub uid: u32,
    pub gid: u32,
    /// Audit login uid (`u32::MAX` = unset).
    pub loginuid: u32,
    /// The session leader's name when it was known ("" otherwise).
    pub sname: String,
    pub exe_from_memfd: bool,
    pub exe_upper_layer: bool,
    /// The executable's inode ctime and mtime, Unix-epoch ns (0 = unknown).
    pub exe_ino_ctime: u64,
    pub exe_ino_mtime: u64,
    pub env: Vec<String>,
    pub cap_effective: u64,
    pub container: Option<ContainerRef>,
    /// The cgroup ids the container was resolved for (0 = unknown).
    pub cgroup_id: u64,
    pub memcg_id: u64,
    /// Where the entry came from.
    pub source: Source,
    /// `CLOCK_BOOTTIME` ns of the exit record; 0 while the process lives.
    pub exit_ts: u64,
    /// `CLOCK_BOOTTIME` ns of the last record that touched the entry (eviction order).
    pub last_seen: u64,
}

/// Where a [`ProcInfo`] came from, from most to least complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// An exec record (or a fork copy of one).
    #[default]
    Record,
    /// Read from `/proc`.
    Proc,
    /// Built from one record's header: the process was gone before the table could read it.
    Header,
}

/// How a [`ProcTable`] is set up.
#[derive(Debug, Clone)]
pub struct ProcTableConfig {
    /// Where `/proc` is (`/host/proc` in a container).
    pub proc_root: PathBuf,
    /// At most this many processes are kept; beyond it exited and then least recently seen
    /// entries are evicted.
    pub max_entries: usize,
    /// How long an exited process stays, in `CLOCK_BOOTTIME` ns of the records.
    pub exit_grace_ns: u64,
    /// At most this many exited processes are kept for their grace period.
    pub exit_ring: usize,
    /// How far up the parent chain an unknown process's ancestors are read from `/proc`.
    pub ancestor_depth: usize,
    pub clock: BootClock,
}

impl Default for ProcTableConfig {
    fn default() -> Self {
        ProcTableConfig {
            proc_root: PathBuf::from("/proc"),
            max_entries: 65_536,
            exit_grace_ns: 2_000_000_000,
            exit_ring: 4096,
            ancestor_depth: 8,
            clock: BootClock::new(),
        }
    }
}

/// A hasher for integer keys (pids): one multiply instead of SipHash on the hot path.
/// Pids are not attacker-chosen in a way that could flood one bucket usefully.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

/// Records of the same process carry the same start time; entries read from `/proc` only
/// know it to a clock tick, so allow two ticks (at 100 Hz) of slack.
const SAME_START_SLACK_NS: u64 = 20_000_000;

fn same_start(a: u64, b: u64) -> bool {
    a == 0 || b == 0 || a.abs_diff(b) <= SAME_START_SLACK_NS
}

/// The process table. See the module docs.
#[derive(Debug)]
pub struct ProcTable {
    config: ProcTableConfig,
    procs: IdMap<ProcInfo>,
    /// Exited pids in exit order, with their exit record's time.
    exited: VecDeque<(u32, u64)>,
    /// Pids found missing from `/proc` while looking up ancestors, and when.
    missing: IdMap<u64>,
    /// USER_HZ, for `/proc/PID/stat` start times.
    clk_tck: u64,
    proc_reads: u64,
}

impl ProcTable {
    pub fn new(config: ProcTableConfig) -> ProcTable {
        ProcTable {
            config,
            procs: IdMap::default(),
            exited: VecDeque::new(),
            missing: IdMap::default(),
            clk_tck: clock_ticks_per_second(),
            proc_reads: 0,
        }
    }

    /// Where this table reads `/proc`.
    pub fn proc_root(&self) -> &Path {
        &self.config.proc_root
    }

    /// How many processes are in the table (exited ones in their grace period included).
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// How many `/proc/PID` directories have been read (seeding included): lets tests check
    /// that known pids are never read again.
    pub fn proc_reads(&self) -> u64 {
        self.proc_reads
    }

    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    pub fn get_mut(&mut self, pid: u32) -> Option<&mut ProcInfo> {
        self.procs.get_mut(&pid)
    }

    /// Read every `<proc_root>/<pid>` into the table; returns how many were read. Processes
    /// that vanish while being read are skipped.
    pub fn seed_from_proc(&mut self, containers: &mut ContainerCache) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.config.proc_root) else {
            return 0;
        };
        let mut n = 0;
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if pid == 0 {
                continue;
            }
            if let Some(info) = self.read_proc(pid, containers) {
                self.insert(info);
                n += 1;
            }
        }
        let snames: Vec<(u32, String)> = self
            .procs
            .values()
            .filter(|p| p.sid != 0)
            .filter_map(|p| Some((p.pid, self.procs.get(&p.sid)?.comm.clone())))
            .collect();
        for (pid, sname) in snames {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.sname = sname;
            }
        }
        n
    }

    /// Read one process from `/proc` (best-effort; `None` if it is not there).
    fn read_proc(&mut self, pid: u32, containers: &mut ContainerCache) -> Option<ProcInfo> {
        self.proc_reads += 1;
        let mut info = read_proc_pid(&self.config.proc_root, pid, self.clk_tck)?;
        info.start_ns = self.config.clock.to_wall(info.start_boot_ns);
        let dir = self.config.proc_root.join(pid.to_string());
        if let Ok(text) = std::fs::read(dir.join("cgroup")) {
            let (c, cg, mem) = containers.learn(&text);
            info.container = c;
            info.cgroup_id = cg;
            info.memcg_id = mem;
        }
        Some(info)
    }

    /// Update the table for a process record (`KIND_EXEC`, `KIND_FORK`, `KIND_EXIT`); other
    /// kinds only refresh the calling process's entry (see [`Self::ensure`]).
    pub fn apply(&mut self, raw: &RawEvent<'_>, containers: &mut ContainerCache) {
        match raw.hdr.kind {
            abi::KIND_EXEC => self.on_exec(raw, containers),
            abi::KIND_FORK => self.on_fork(&raw.hdr, containers),
            abi::KIND_EXIT => self.on_exit(&raw.hdr),
            _ => self.ensure(&raw.hdr, containers),
        }
    }

    /// Make sure the record's process is in the table and current: an unknown pid (or a
    /// reused one) is read from `/proc` once, or built from the header if it is gone; a
    /// known one takes the header's current credentials, parent, terminal and name, and
    /// its container is looked up again only if its cgroup changed. Ancestors missing from
    /// the table are read from `/proc` too (once each).
    pub fn ensure(&mut self, hdr: &Header, containers: &mut ContainerCache) {
        self.purge_exited(hdr.ts);
        let pid = hdr.pid;
        if pid == 0 {
            return;
        }
        let known = self
            .procs
            .get(&pid)
            .is_some_and(|e| same_start(e.start_boot_ns, hdr.start_ns));
        if !known {
            let info = self.load(hdr, containers);
            self.insert(info);
            self.load_ancestors(pid, containers);
        }
        let proc_root = &self.config.proc_root;
        let Some(e) = self.procs.get_mut(&pid) else {
            return;
        };
        e.last_seen = hdr.ts;
        e.tid = hdr.tid;
        if hdr.vpid != 0 {
            e.vpid = hdr.vpid;
        }
        if hdr.ppid != 0 {
            e.ppid = hdr.ppid;
        }
        e.uid = hdr.uid;
        e.gid = hdr.gid;
        e.loginuid = hdr.loginuid;
        e.cap_effective = hdr.cap_eff;
        e.tty = hdr.tty;
        if e.start_boot_ns == 0 && hdr.start_ns != 0 {
            e.start_boot_ns = hdr.start_ns;
            e.start_ns = self.config.clock.to_wall(hdr.start_ns);
        }
        // The main thread's comm is the process's name; it changes with prctl(PR_SET_NAME)
        // (runc's "runc:[2:INIT]").
        let comm = abi::cstr(&hdr.comm);
        if hdr.tid == pid && !comm.is_empty() && comm != e.comm.as_bytes() {
            e.comm = String::from_utf8_lossy(comm).into_owned();
        }
        if (hdr.cgroup_id != 0 || hdr.memcg_id != 0)
            && (hdr.cgroup_id != e.cgroup_id || hdr.memcg_id != e.memcg_id)
        {
            e.container = containers.resolve(hdr.cgroup_id, hdr.memcg_id, pid, proc_root);
            e.cgroup_id = hdr.cgroup_id;
            e.memcg_id = hdr.memcg_id;
        }
    }

    /// A new entry for the header's process: from `/proc` if it is there and is the same
    /// process, else from the header alone.
    fn load(&mut self, hdr: &Header, containers: &mut ContainerCache) -> ProcInfo {
        if let Some(info) = self.read_proc(hdr.pid, containers)
            && same_start(info.start_boot_ns, hdr.start_ns)
        {
            return info;
        }
        let parent = self.procs.get(&hdr.ppid);
        let comm = hdr.comm();
        let container = if hdr.cgroup_id != 0 || hdr.memcg_id != 0 {
            containers.resolve(hdr.cgroup_id, hdr.memcg_id, hdr.pid, &self.config.proc_root)
        } else {
            None
        };
        ProcInfo {
            pid: hdr.pid,
            ppid: hdr.ppid,
            tid: hdr.tid,
            vpid: hdr.vpid,
            sid: parent.map_or(0, |p| p.sid),
            sname: parent.map(|p| p.sname.clone()).unwrap_or_default(),
            cwd: parent.map(|p| p.cwd.clone()).unwrap_or_default(),
            comm,
            tty: hdr.tty,
            start_boot_ns: hdr.start_ns,
            start_ns: self.config.clock.to_wall(hdr.start_ns),
            uid: hdr.uid,
            gid: hdr.gid,
            loginuid: hdr.loginuid,
            cap_effective: hdr.cap_eff,
            container,
            cgroup_id: hdr.cgroup_id,
            memcg_id: hdr.memcg_id,
            source: Source::Header,
            last_seen: hdr.ts,
            ..ProcInfo::default()
        }
    }

    /// Read the missing ancestors of `pid` from `/proc`, up to `ancestor_depth` levels;
    /// a pid found missing is not looked for again for a second.
    fn load_ancestors(&mut self, pid: u32, containers: &mut ContainerCache) {
        let mut cur = pid;
        for _ in 0..self.config.ancestor_depth {
            let Some(ppid) = self.procs.get(&cur).map(|p| p.ppid) else {
                return;
            };
            if ppid == 0 || ppid == cur {
                return;
            }
            if !self.procs.contains_key(&ppid) {
                let now = self.procs.get(&cur).map_or(0, |p| p.last_seen);
                if self
                    .missing
                    .get(&ppid)
                    .is_some_and(|t| now.saturating_sub(*t) < 1_000_000_000)
                {
                    return;
                }
                match self.read_proc(ppid, containers) {
                    Some(info) => self.insert(info),
                    None => {
                        if self.missing.len() >= 4096 {
                            self.missing.clear();
                        }
                        self.missing.insert(ppid, now);
                        return;
                    }
                }
            }
            cur = ppid;
        }
    }

    fn on_exec(&mut self, raw: &RawEvent<'_>, containers: &mut ContainerCache) {
        let h = &raw.hdr;
        self.purge_exited(h.ts);
        let pid = h.pid;
        if pid == 0 {
            return;
        }
        let old = self
            .procs
            .remove(&pid)
            .filter(|o| same_start(o.start_boot_ns, h.start_ns));
        let pid_dir = self.config.proc_root.join(pid.to_string());
        let cwd = read_link_string(&pid_dir.join("cwd"))
            .or_else(|| old.as_ref().map(|o| o.cwd.clone()))
            .or_else(|| self.procs.get(&h.ppid).map(|p| p.cwd.clone()))
            .unwrap_or_default();
        let filename = raw.str(0);
        let dentry = raw.str(1);
        let mut argv = raw.list(2);
        let bits = h.args[0];
        let memfd = bits & EXE_MEMFD != 0 || dentry.starts_with("memfd:");
        let exepath = if memfd {
            let name = dentry.strip_suffix(" (deleted)").unwrap_or(&dentry);
            if name.starts_with("memfd:") {
                name.to_string()
            } else {
                format!("memfd:{name}")
            }
        } else if filename.starts_with('/') && !filename.starts_with("/dev/fd/") {
            normalize_path(&filename)
        } else {
            read_link_string(&pid_dir.join("exe"))
                .map(|p| {
                    p.strip_suffix(" (deleted)")
                        .map(str::to_string)
                        .unwrap_or(p)
                })
                .unwrap_or_else(|| {
                    if filename.is_empty() || filename.starts_with('/') {
                        filename.clone()
                    } else {
                        join_path(&cwd, &filename)
                    }
                })
        };
        let exe = if argv.is_empty() {
            filename
        } else {
            argv.remove(0)
        };
        let (sid, sname) = match &old {
            Some(o) => (o.sid, o.sname.clone()),
            None => self
                .procs
                .get(&h.ppid)
                .map(|p| (p.sid, p.sname.clone()))
                .unwrap_or_default(),
        };
        let comm = h.comm();
        let sname = if sid == pid { comm.clone() } else { sname };
        let container = if h.cgroup_id != 0 || h.memcg_id != 0 {
            containers.resolve(h.cgroup_id, h.memcg_id, pid, &self.config.proc_root)
        } else {
            old.as_ref().and_then(|o| o.container.clone())
        };
        let info = ProcInfo {
            pid,
            ppid: h.ppid,
            tid: h.tid,
            vpid: h.vpid,
            sid,
            comm,
            exe,
            exepath,
            args: argv,
            cwd,
            tty: h.tty,
            start_ns: self.config.clock.to_wall(h.start_ns),
            start_boot_ns: h.start_ns,
            uid: h.uid,
            gid: h.gid,
            loginuid: h.loginuid,
            sname,
            exe_from_memfd: memfd,
            exe_upper_layer: bits & EXE_UPPER_LAYER != 0,
            exe_ino_ctime: h.args[1],
            exe_ino_mtime: h.args[2],
            env: raw.list(3),
            cap_effective: h.cap_eff,
            container,
            cgroup_id: h.cgroup_id,
            memcg_id: h.memcg_id,
            source: Source::Record,
            exit_ts: 0,
            last_seen: h.ts,
        };
        self.insert(info);
        self.load_ancestors(pid, containers);
    }

    fn on_fork(&mut self, h: &Header, containers: &mut ContainerCache) {
        self.ensure(h, containers);
        let Ok(child) = u32::try_from(h.args[0]) else {
            return;
        };
        let child_start = h.args[1];
        if child == 0 || child == h.pid {
            return;
        }
        // The child may have been met first (its own records overtook the fork record):
        // keep what its own records said.
        if let Some(e) = self.procs.get(&child)
            && e.exit_ts == 0
            && child_start != 0
            && e.start_boot_ns == child_start
        {
            return;
        }
        let Some(parent) = self.procs.get(&h.pid) else {
            return;
        };
        let mut info = parent.clone();
        info.vpid = if parent.vpid == parent.pid && parent.vpid != 0 {
            child
        } else {
            0
        };
        info.pid = child;
        info.ppid = h.pid;
        info.tid = child;
        info.start_boot_ns = child_start;
        info.start_ns = self.config.clock.to_wall(child_start);
        info.exit_ts = 0;
        info.last_seen = h.ts;
        info.source = Source::Record;
        self.insert(info);
    }

    fn on_exit(&mut self, h: &Header) {
        self.purge_exited(h.ts);
        if let Some(e) = self.procs.get_mut(&h.pid)
            && same_start(e.start_boot_ns, h.start_ns)
            && e.exit_ts == 0
        {
            e.exit_ts = h.ts.max(1);
            self.exited.push_back((h.pid, e.exit_ts));
        }
        while self.exited.len() > self.config.exit_ring {
            self.retire_oldest_exit();
        }
    }

    /// Remove exited processes whose grace period ended before `now` (records' boot ns).
    fn purge_exited(&mut self, now: u64) {
        while let Some(&(_, t)) = self.exited.front() {
            if now < t.saturating_add(self.config.exit_grace_ns) {
                break;
            }
            self.retire_oldest_exit();
        }
    }

    fn retire_oldest_exit(&mut self) {
        if let Some((pid, t)) = self.exited.pop_front()
            && self.procs.get(&pid).is_some_and(|e| e.exit_ts == t)
        {
            self.procs.remove(&pid);
        }
    }

    fn insert(&mut self, info: ProcInfo) {
        if self.procs.len() >= self.config.max_entries.max(1) && !self.procs.contains_key(&info.pid)
        {
            self.make_room();
        }
        self.procs.insert(info.pid, info);
    }

    /// Evict exited processes, then the least recently seen eighth of the table.
    fn make_room(&mut self) {
        while !self.exited.is_empty() {
            self.retire_oldest_exit();
        }
        let max = self.config.max_entries.max(1);
        if self.procs.len() < max {
            return;
        }
        let mut ages: Vec<(u64, u32)> = self.procs.values().map(|p| (p.last_seen, p.pid)).collect();
        let n = (max / 8).max(1).min(ages.len());
        if n == 0 {
            return;
        }
        ages.select_nth_unstable(n - 1);
        for &(_, pid) in &ages[..n] {
            self.procs.remove(&pid);
        }
    }

    /// The ancestors of `pid`, parent first, at most `max`. Stops at a pid the table does
    /// not know, at pid 0, at a cycle, and at a "parent" that started after its child (a
    /// reused pid).
    pub fn ancestors(&self, pid: u32, max: usize) -> Vec<&ProcInfo> {
        self.ancestors_iter(pid, max).collect()
    }

    /// [`Self::ancestors`] without collecting.
    pub fn ancestors_iter(&self, pid: u32, max: usize) -> Ancestors<'_> {
        Ancestors {
            table: self,
            cur: self.procs.get(&pid),
            left: max.min(Ancestors::MAX_DEPTH),
            seen: [0; Ancestors::MAX_DEPTH + 1],
            n_seen: 0,
        }
    }
}

/// Iterator over a process's ancestors; see [`ProcTable::ancestors`].
#[derive(Debug)]
pub struct Ancestors<'a> {
    table: &'a ProcTable,
    cur: Option<&'a ProcInfo>,
    left: usize,
    seen: [u32; Ancestors::MAX_DEPTH + 1],
    n_seen: usize,
}

impl Ancestors<'_> {
    /// The deepest walk any caller gets.
    pub const MAX_DEPTH: usize = 64;
}

impl<'a> Iterator for Ancestors<'a> {
    type Item = &'a ProcInfo;

    fn next(&mut self) -> Option<&'a ProcInfo> {
        if self.left == 0 {
            return None;
        }
        let child = self.cur?;
        if self.n_seen == 0 {
            self.seen[0] = child.pid;
            self.n_seen = 1;
        }
        let ppid = child.ppid;
        if ppid == 0 || self.seen[..self.n_seen].contains(&ppid) {
            self.cur = None;
            return None;
        }
        let parent = self.table.procs.get(&ppid)?;
        if parent.start_boot_ns != 0
            && child.start_boot_ns != 0
            && parent.start_boot_ns > child.start_boot_ns.saturating_add(SAME_START_SLACK_NS)
        {
            self.cur = None;
            return None;
        }
        if let Some(slot) = self.seen.get_mut(self.n_seen) {
            *slot = ppid;
            self.n_seen += 1;
        }
        self.left -= 1;
        self.cur = Some(parent);
        Some(parent)
    }
}

/// Read `<proc_root>/<pid>` (without cgroup and wall-clock start, which need the table's
/// context). `None` if its `stat` cannot be read or parsed: the process is gone.
fn read_proc_pid(proc_root: &Path, pid: u32, clk_tck: u64) -> Option<ProcInfo> {
    let dir = proc_root.join(pid.to_string());
    let stat = std::fs::read(dir.join("stat")).ok()?;
    let st = parse_stat(&stat)?;
    let mut info = ProcInfo {
        pid,
        ppid: st.ppid,
        tid: pid,
        sid: st.session,
        comm: st.comm,
        tty: st.tty,
        start_boot_ns: st
            .start_ticks
            .saturating_mul(1_000_000_000 / clk_tck.max(1)),
        loginuid: u32::MAX,
        source: Source::Proc,
        ..ProcInfo::default()
    };
    if let Ok(cmdline) = std::fs::read(dir.join("cmdline")) {
        let mut argv = split_nul(&cmdline);
        if !argv.is_empty() {
            info.exe = argv.remove(0);
            info.args = argv;
        }
    }
    if let Some(exe) = read_link_string(&dir.join("exe")) {
        let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
        if let Some(name) = exe.strip_prefix("/memfd:") {
            info.exe_from_memfd = true;
            info.exepath = format!("memfd:{name}");
        } else {
            info.exepath = exe.to_string();
        }
        let (ctime, mtime) = exe_times(&dir.join("exe"));
        info.exe_ino_ctime = ctime;
        info.exe_ino_mtime = mtime;
    }
    if let Some(cwd) = read_link_string(&dir.join("cwd")) {
        info.cwd = cwd;
    }
    if let Ok(status) = std::fs::read(dir.join("status")) {
        let s = parse_status(&status);
        info.uid = s.uid;
        info.gid = s.gid;
        info.cap_effective = s.cap_eff;
        info.vpid = s.vpid.unwrap_or(pid);
    }
    if let Ok(l) = std::fs::read(dir.join("loginuid"))
        && let Some(v) = std::str::from_utf8(&l)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    {
        info.loginuid = v;
    }
    if let Ok(env) = std::fs::read(dir.join("environ")) {
        info.env = split_nul(&env);
    }
    Some(info)
}

/// The fields of `/proc/PID/stat` the table uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    pub comm: String,
    pub ppid: u32,
    pub session: u32,
    pub tty: u32,
    pub start_ticks: u64,
}

/// Parse `/proc/PID/stat`: `pid (comm) state ppid pgrp session tty_nr … starttime …`.
/// comm may hold spaces and parentheses, so the fields start after the *last* `)`.
pub(crate) fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = memchr::memchr(b'(', text)?;
    let close = memchr::memrchr(b')', text)?;
    if close < open {
        return None;
    }
    let comm = String::from_utf8_lossy(text.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().take(20).collect();
    let num = |i: usize| -> Option<u64> { f.get(i)?.parse::<i64>().ok().map(|v| v as u64) };
    Some(Stat {
        comm,
        ppid: u32::try_from(num(1)?).unwrap_or(0),
        session: u32::try_from(num(3)?).unwrap_or(0),
        tty: num(4)? as u32,
        start_ticks: num(19)?,
    })
}

/// The fields of `/proc/PID/status` the table uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Status {
    pub uid: u32,
    pub gid: u32,
    pub cap_eff: u64,
    /// The last `NSpid` value: the pid in the process's own namespace.
    pub vpid: Option<u32>,
}

pub(crate) fn parse_status(text: &[u8]) -> Status {
    let mut s = Status::default();
    for line in text.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let first = || value.split_ascii_whitespace().next();
        match key {
            "Uid" => s.uid = first().and_then(|v| v.parse().ok()).unwrap_or(0),
            "Gid" => s.gid = first().and_then(|v| v.parse().ok()).unwrap_or(0),
            "CapEff" => {
                s.cap_eff = first()
                    .and_then(|v| u64::from_str_radix(v, 16).ok())
                    .unwrap_or(0);
            }
            "NSpid" => {
                s.vpid = value
                    .split_ascii_whitespace()
                    .last()
                    .and_then(|v| v.parse().ok());
            }
            _ => {}
        }
    }
    s
}

fn split_nul(b: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = b
        .split(|&c| c == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

/// A symlink's target as a string (`/proc/PID/exe`, `cwd`, `fd/N`), best-effort.
pub(crate) fn read_link_string(p: &Path) -> Option<String> {
    let t = std::fs::read_link(p).ok()?;
    Some(t.to_string_lossy().into_owned())
}

#[cfg(unix)]
fn exe_times(exe_link: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(exe_link) else {
        return (0, 0);
    };
    let ns = |s: i64, n: i64| -> u64 {
        u64::try_from(s)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(n).unwrap_or(0))
    };
    (ns(m.ctime(), m.ctime_nsec()), ns(m.mtime(), m.mtime_nsec()))
}

#[cfg(not(unix))]
fn exe_times(_exe_link: &Path) -> (u64, u64) {
    (0, 0)
}

/// USER_HZ, the unit of `/proc/PID/stat` times.
fn clock_ticks_per_second() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if v > 0 {
            return v as u64;
        }
    }
    100
}

/// Normalise an absolute path lexically: collapse `//`, drop `.`, resolve `..` (never above
/// `/`). A relative path is normalised as if it started at `/`.
pub(crate) fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::with_capacity(path.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `rel` resolved against directory `base` (absolute `rel` stands alone), normalised.
pub(crate) fn join_path(base: &str, rel: &str) -> String {
    if rel.starts_with('/') || base.is_empty() {
        return normalize_path(rel);
    }
    let mut s = String::with_capacity(base.len() + rel.len() + 1);
    s.push_str(base);
    s.push('/');
    s.push_str(rel);
    normalize_path(&s)
}

/// A fake `/proc` for tests: directories of the files the table reads.
#[cfg(test)]
pub(crate) mod fixture {
    use std::path::{Path, PathBuf};

    /// One fake process.
    #[derive(Debug, Clone)]
    pub struct FakeProc<'a> {
        pub pid: u32,
        pub ppid: u32,
        pub comm: &'a str,
        pub cmdline: &'a [&'a str],
        pub exe: Option<&'a str>,
        pub cwd: Option<&'a str>,
        pub uid: u32,
        pub gid: u32,
        pub tty: u32,
        pub session: u32,
        pub start_ticks: u64,
        pub loginuid: Option<u32>,
        pub cap_eff: u64,
        pub env: &'a [&'a str],
        pub cgroup: &'a str,
        pub nspid: Option<u32>,
    }

    impl Default for FakeProc<'_> {
        fn default() -> Self {
            FakeProc {
                pid: 1,
                ppid: 0,
                comm: "init",
                cmdline: &[],
                exe: None,
                cwd: Some("/"),
                uid: 0,
                gid: 0,
                tty: 0,
                session: 1,
                start_ticks: 100,
                loginuid: None,
                cap_eff: 0x1ff_ffff_ffff,
                env: &[],
                cgroup: "0::/init.scope\n",
                nspid: None,
            }
        }
    }

    /// Write `p` under `root` (a directory standing for `/proc`).
    pub fn write(root: &Path, p: &FakeProc<'_>) -> PathBuf {
        let dir = root.join(p.pid.to_string());
        std::fs::create_dir_all(&dir).expect("mkdir");
        let stat = format!(
            "{} ({}) S {} {} {} {} -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {} 1000 100 18446744073709551615\n",
            p.pid, p.comm, p.ppid, p.pid, p.session, p.tty, p.start_ticks
        );
        std::fs::write(dir.join("stat"), stat).expect("stat");
        let mut cmd = Vec::new();
        for a in p.cmdline {
            cmd.extend_from_slice(a.as_bytes());
            cmd.push(0);
        }
        std::fs::write(dir.join("cmdline"), cmd).expect("cmdline");
        let nspid = match p.nspid {
            Some(v) => format!("{}\t{v}", p.pid),
            None => p.pid.to_string(),
        };
        let status = format!(
            "Name:\t{}\nTgid:\t{}\nPid:\t{}\nPPid:\t{}\nUid:\t{u}\t{u}\t{u}\t{u}\nGid:\t{g}\t{g}\t{g}\t{g}\nNSpid:\t{nspid}\nCapInh:\t0000000000000000\nCapPrm:\t{c:016x}\nCapEff:\t{c:016x}\n",
            p.comm,
            p.pid,
            p.pid,
            p.ppid,
            u = p.uid,
            g = p.gid,
            c = p.cap_eff
        );
        std::fs::write(dir.join("status"), status).expect("status");
        std::fs::write(
            dir.join("loginuid"),
            p.loginuid.unwrap_or(u32::MAX).to_string(),
        )
        .expect("loginuid");
        let mut env = Vec::new();
        for e in p.env {
            env.extend_from_slice(e.as_bytes());
            env.push(0);
        }
        std::fs::write(dir.join("environ"), env).expect("environ");
        std::fs::write(dir.join("cgroup"), p.cgroup).expect("cgroup");
        #[cfg(unix)]
        {
            if let Some(exe) = p.exe {
                std::os::unix::fs::symlink(exe, dir.join("exe")).expect("exe link");
            }
            if let Some(cwd) = p.cwd {
                std::os::unix::fs::symlink(cwd, dir.join("cwd")).expect("cwd link");
            }
        }
        std::fs::create_dir_all(dir.join("fd")).expect("fd dir");
        dir
    }

    /// Make `/proc/PID/fd/N` point at `target`.
    #[cfg(unix)]
    pub fn add_fd(root: &Path, pid: u32, fd: u32, target: &str) {
        let dir = root.join(pid.to_string()).join("fd");
        std::fs::create_dir_all(&dir).expect("fd dir");
        std::os::unix::fs::symlink(target, dir.join(fd.to_string())).expect("fd link");
    }

    /// Make the process vanish.
    pub fn remove(root: &Path, pid: u32) {
        let _ = std::fs::remove_dir_all(root.join(pid.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{FakeProc, write};
    use super::*;
    use crate::bpf::abi::{KIND_EXEC, KIND_EXIT, KIND_FORK, KIND_SYSCALL, decode, encode, nr};
    use crate::sensor::container::ContainerCacheConfig;

    const TICK: u64 = 10_000_000; // ns per tick at USER_HZ 100
    const ID: &str = "3ad7b26ded6d8e7e1f5a2b9c0d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";

    struct Fx {
        dir: tempfile::TempDir,
        table: ProcTable,
        containers: ContainerCache,
    }

    impl Fx {
        fn new() -> Fx {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir_all(dir.path().join("proc")).expect("mkdir");
            let table = ProcTable::new(ProcTableConfig {
                proc_root: dir.path().join("proc"),
                max_entries: 1000,
                exit_grace_ns: 2_000_000_000,
                exit_ring: 100,
                ancestor_depth: 8,
                clock: BootClock::with_offset(1_000_000_000_000_000_000),
            });
            let containers = ContainerCache::new(ContainerCacheConfig {
                v1_memory_root: dir.path().join("cg/memory"),
                v2_root: dir.path().join("cg/unified"),
                ..ContainerCacheConfig::default()
            });
            Fx {
                dir,
                table,
                containers,
            }
        }
        fn proc(&self) -> PathBuf {
            self.dir.path().join("proc")
        }
        fn add(&self, p: FakeProc<'_>) {
            write(&self.proc(), &p);
        }
        fn seed(&mut self) -> usize {
            self.table.seed_from_proc(&mut self.containers)
        }
        fn feed(&mut self, h: Header, strs: [&[u8]; 4]) {
            let bytes = encode(&h, strs);
            let raw = decode(&bytes).expect("decodes");
            self.table.apply(&raw, &mut self.containers);
        }
    }

    fn hdr(kind: u16, pid: u32, ppid: u32, comm: &str, start: u64, ts: u64) -> Header {
        let mut c = [0u8; 16];
        for (d, s) in c.iter_mut().zip(comm.bytes().take(15)) {
            *d = s;
        }
        Header {
            kind,
            nr: if kind == KIND_SYSCALL { nr::OPENAT } else { 0 },
            flags: 0,
            category: 0,
            ts,
            ret: 0,
            args: [0; 6],
            cgroup_id: 0,
            memcg_id: 0,
            cap_eff: 0,
            start_ns: start,
            tid: pid,
            pid,
            ppid,
            vpid: pid,
            uid: 1000,
            gid: 1000,
            tty: 0,
            loginuid: 1000,
            mntns: 0,
            pidns: 0,
            comm: c,
        }
    }

    fn base_tree(fx: &Fx) {
        fx.add(FakeProc {
            pid: 1,
            comm: "systemd",
            cmdline: &["/sbin/init", "splash"],
            exe: Some("/usr/lib/systemd/systemd"),
            ..FakeProc::default()
        });
        fx.add(FakeProc {
            pid: 100,
            ppid: 1,
            comm: "sshd",
            cmdline: &["sshd: /usr/sbin/sshd -D"],
            exe: Some("/usr/sbin/sshd"),
            session: 100,
            start_ticks: 200,
            ..FakeProc::default()
        });
        fx.add(FakeProc {
            pid: 200,
            ppid: 100,
            comm: "bash",
            cmdline: &["-bash"],
            exe: Some("/usr/bin/bash"),
            cwd: Some("/root"),
            uid: 1000,
            gid: 1001,
            tty: 34816,
            session: 200,
            start_ticks: 300,
            loginuid: Some(1000),
            cap_eff: 0,
            env: &["HOME=/root", "TERM=xterm"],
            ..FakeProc::default()
        });
    }

    #[test]
    fn stat_parsing_survives_odd_comms_and_garbage() {
        let s = parse_stat(b"42 (a) b (c)) S 7 42 9 34816 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0")
            .expect("parses");
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(
            (s.ppid, s.session, s.tty, s.start_ticks),
            (7, 9, 34816, 555)
        );
        for bad in [
            &b""[..],
            b"42",
            b"42 (x",
            b"42 x) (",
            b"42 (x) S",
            b"42 (x) S 1 2 3 4",
            b"\xff\xfe (\x00) \xff",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn status_parsing() {
        let s = parse_status(
            b"Name:\tx\nUid:\t33\t0\t0\t0\nGid:\t44\t0\t0\t0\nNSpid:\t900\t12\nCapEff:\t000001ffffffffff\n",
        );
        assert_eq!(
            s,
            Status {
                uid: 33,
                gid: 44,
                cap_eff: 0x1ff_ffff_ffff,
                vpid: Some(12)
            }
        );
        assert_eq!(parse_status(b"\xff\xff\nUid:\tnope\n"), Status::default());
    }

    #[test]
    fn paths_normalise_lexically() {
        assert_eq!(normalize_path("/etc/../etc/./shadow"), "/etc/shadow");
        assert_eq!(
            normalize_path("/var/www/html/../../../etc/passwd"),
            "/etc/passwd"
        );
        assert_eq!(normalize_path("/../../.."), "/");
        assert_eq!(normalize_path("//a//b/"), "/a/b");
        assert_eq!(join_path("/root", "x/../.ssh/id_rsa"), "/root/.ssh/id_rsa");
        assert_eq!(join_path("/root", "/etc/hosts"), "/etc/hosts");
        assert_eq!(join_path("/", "etc"), "/etc");
        assert_eq!(join_path("", "etc"), "/etc");
    }

    #[cfg(unix)]
    #[test]
    fn seed_reads_every_process() {
        let mut fx = Fx::new();
        base_tree(&fx);
        // Not processes: ignored.
        std::fs::create_dir_all(fx.proc().join("self")).expect("mkdir");
        std::fs::write(fx.proc().join("uptime"), "1 1").expect("write");
        // A process whose directory is half gone: no stat, skipped.
        std::fs::create_dir_all(fx.proc().join("999")).expect("mkdir");
        assert_eq!(fx.seed(), 3);
        assert_eq!(fx.table.len(), 3);
        let bash = fx.table.get(200).expect("bash");
        assert_eq!(bash.comm, "bash");
        assert_eq!(bash.exe, "-bash");
        assert!(bash.args.is_empty());
        assert_eq!(bash.exepath, "/usr/bin/bash");
        assert_eq!(bash.cwd, "/root");
        assert_eq!((bash.uid, bash.gid, bash.loginuid), (1000, 1001, 1000));
        assert_eq!(bash.tty, 34816);
        assert_eq!(bash.ppid, 100);
        assert_eq!(bash.start_boot_ns, 300 * TICK);
        assert_eq!(bash.start_ns, 1_000_000_000_000_000_000 + 300 * TICK);
        assert_eq!(bash.env, ["HOME=/root", "TERM=xterm"]);
        assert_eq!(bash.sname, "bash", "its own session leader");
        assert_eq!(bash.source, Source::Proc);
        assert_eq!(bash.container, None);
        let init = fx.table.get(1).expect("init");
        assert_eq!(init.args, ["splash"]);
        assert_eq!(init.loginuid, u32::MAX);
        assert_eq!(init.cap_effective, 0x1ff_ffff_ffff);
        let names: Vec<&str> = fx
            .table
            .ancestors(200, 8)
            .iter()
            .map(|p| p.comm.as_str())
            .collect();
        assert_eq!(names, ["sshd", "systemd"]);
    }

    #[test]
    fn seed_finds_containers_and_memfd_executables() {
        let mut fx = Fx::new();
        let cg = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b6e4c1e_1111_4a2b_9c3d_5e6f7a8b9c0d.slice/cri-containerd-{ID}.scope\n"
        );
        fx.add(FakeProc {
            pid: 50,
            comm: "x",
            exe: Some("/memfd:payload (deleted)"),
            cgroup: &cg,
            nspid: Some(1),
            ..FakeProc::default()
        });
        fx.seed();
        let p = fx.table.get(50).expect("entry");
        assert!(p.exe_from_memfd);
        assert_eq!(p.exepath, "memfd:payload");
        assert_eq!(p.vpid, 1);
        let c = p.container.as_ref().expect("container");
        assert_eq!(c.id, "3ad7b26ded6d");
        assert_eq!(
            c.pod_uid.as_deref(),
            Some("0b6e4c1e-1111-4a2b-9c3d-5e6f7a8b9c0d")
        );
    }

    #[test]
    fn seeding_an_empty_or_missing_root_is_fine() {
        let mut fx = Fx::new();
        assert_eq!(fx.seed(), 0);
        let mut t = ProcTable::new(ProcTableConfig {
            proc_root: PathBuf::from("/nonexistent/proc"),
            ..ProcTableConfig::default()
        });
        assert_eq!(t.seed_from_proc(&mut fx.containers), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn seeds_from_the_real_proc_and_finds_itself() {
        let mut containers = ContainerCache::new(ContainerCacheConfig::default());
        let mut t = ProcTable::new(ProcTableConfig::default());
        let n = t.seed_from_proc(&mut containers);
        assert!(n > 1, "read {n} processes");
        let me = std::process::id();
        let p = t.get(me).expect("own process in the table");
        let exe = std::env::current_exe().expect("current exe");
        assert_eq!(p.exepath, exe.to_string_lossy());
        assert_eq!(
            p.cwd,
            std::env::current_dir().expect("cwd").to_string_lossy()
        );
        assert!(p.start_ns > 1_000_000_000_000_000_000, "{}", p.start_ns);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        assert!(p.start_ns <= now + 1_000_000_000, "started in the future");
        assert!(!t.ancestors(me, 8).is_empty(), "has a parent");
    }

    #[test]
    fn fork_then_exec_then_exit() {
        let mut fx = Fx::new();
        base_tree(&fx);
        fx.seed();
        let reads = fx.table.proc_reads();
        // bash (200) forks 300.
        let mut f = hdr(KIND_FORK, 200, 100, "bash", 300 * TICK, 5_000_000_000);
        f.args[0] = 300;
        f.args[1] = 4_000_000_000;
        f.uid = 1000;
        fx.feed(f, [b"", b"", b"", b""]);
        let child = fx.table.get(300).expect("child");
        assert_eq!((child.pid, child.ppid), (300, 200));
        assert_eq!(child.comm, "bash");
        assert_eq!(child.cwd, "/root");
        assert_eq!(child.start_boot_ns, 4_000_000_000);
        // 300 execs cat.
        let mut e = hdr(KIND_EXEC, 300, 200, "cat", 4_000_000_000, 5_100_000_000);
        e.args = [EXE_UPPER_LAYER, 11, 22, 300, 0, 0];
        fx.feed(
            e,
            [
                b"/usr/bin/../bin/cat\0",
                b"cat\0",
                b"cat\0/etc/shadow\0",
                b"A=1\0B=2\0",
            ],
        );
        let cat = fx.table.get(300).expect("cat");
        assert_eq!(cat.comm, "cat");
        assert_eq!(cat.exe, "cat");
        assert_eq!(cat.exepath, "/usr/bin/cat");
        assert_eq!(cat.args, ["/etc/shadow"]);
        assert_eq!(cat.env, ["A=1", "B=2"]);
        assert_eq!(cat.cwd, "/root", "inherited: no /proc/300");
        assert!(cat.exe_upper_layer);
        assert!(!cat.exe_from_memfd);
        assert_eq!((cat.exe_ino_ctime, cat.exe_ino_mtime), (11, 22));
        assert_eq!(cat.sid, 200);
        assert_eq!(cat.sname, "bash");
        let chain: Vec<u32> = fx.table.ancestors(300, 8).iter().map(|p| p.pid).collect();
        assert_eq!(chain, [200, 100, 1]);
        assert_eq!(
            fx.table.proc_reads(),
            reads,
            "no /proc reads for known pids"
        );
        // Exit: kept through the grace period, gone after.
        fx.feed(
            hdr(KIND_EXIT, 300, 200, "cat", 4_000_000_000, 5_200_000_000),
            [b"", b"", b"", b""],
        );
        assert!(fx.table.get(300).is_some(), "still in its grace period");
        fx.feed(
            hdr(KIND_SYSCALL, 200, 100, "bash", 300 * TICK, 6_000_000_000),
            [b"", b"", b"", b""],
        );
        assert!(fx.table.get(300).is_some());
        fx.feed(
            hdr(KIND_SYSCALL, 200, 100, "bash", 300 * TICK, 7_300_000_000),
            [b"", b"", b"", b""],
        );
        assert!(
            fx.table.get(300).is_none(),
            "retired after the grace period"
        );
    }

    #[cfg(unix)]
    #[test]
    fn exec_resolves_relative_and_fd_paths_through_proc_and_memfd() {
        let mut fx = Fx::new();
        base_tree(&fx);
        fx.seed();
        // A live process whose exe link says where the binary is.
        fx.add(FakeProc {
            pid: 400,
            ppid: 200,
            comm: "payload",
            exe: Some("/dev/shm/payload"),
            cwd: Some("/dev/shm"),
            start_ticks: 500,
            ..FakeProc::default()
        });
        let e = hdr(KIND_EXEC, 400, 200, "payload", 500 * TICK, 9_000_000_000);
        fx.feed(e, [b"./payload\0", b"payload\0", b"./payload\0", b""]);
        let p = fx.table.get(400).expect("entry");
        assert_eq!(p.exepath, "/dev/shm/payload");
        assert_eq!(p.exe, "./payload");
        assert_eq!(p.cwd, "/dev/shm");

        // Gone before we could look: a relative path is joined to the inherited cwd.
        let e = hdr(KIND_EXEC, 401, 200, "tool", 600 * TICK, 9_100_000_000);
        fx.feed(e, [b"bin/tool\0", b"tool\0", b"bin/tool\0-v\0", b""]);
        assert_eq!(
            fx.table.get(401).map(|p| p.exepath.as_str()),
            Some("/root/bin/tool")
        );

        // fexecve of a memfd.
        let mut e = hdr(KIND_EXEC, 402, 200, "3", 700 * TICK, 9_200_000_000);
        e.args[0] = EXE_MEMFD;
        fx.feed(e, [b"/dev/fd/3\0", b"memfd:x\0", b"x\0", b""]);
        let p = fx.table.get(402).expect("entry");
        assert!(p.exe_from_memfd);
        assert_eq!(p.exepath, "memfd:x");
        // Bit clear but the dentry says memfd.
        let e = hdr(KIND_EXEC, 403, 200, "y", 800 * TICK, 9_300_000_000);
        fx.feed(
            e,
            [
                b"/proc/self/fd/4\0",
                b"memfd:runc_cloned:/proc/self/exe\0",
                b"runc\0",
                b"",
            ],
        );
        let p = fx.table.get(403).expect("entry");
        assert!(p.exe_from_memfd);
        assert_eq!(p.exepath, "memfd:runc_cloned:/proc/self/exe");
    }

    #[test]
    fn unknown_pid_is_read_once_then_built_from_the_header_when_gone() {
        let mut fx = Fx::new();
        base_tree(&fx);
        fx.seed();
        let reads = fx.table.proc_reads();
        // 500 exists in /proc but not in the table (its fork record was lost).
        fx.add(FakeProc {
            pid: 500,
            ppid: 200,
            comm: "python3",
            cmdline: &["python3", "x.py"],
            start_ticks: 900,
            ..FakeProc::default()
        });
        let h = hdr(
            KIND_SYSCALL,
            500,
            200,
            "python3",
            900 * TICK,
            10_000_000_000,
        );
        fx.feed(h, [b"", b"", b"", b""]);
        assert_eq!(fx.table.proc_reads(), reads + 1);
        assert_eq!(
            fx.table.get(500).map(|p| p.args.clone()),
            Some(vec!["x.py".to_string()])
        );
        // Known now: never read again.
        fx.feed(h, [b"", b"", b"", b""]);
        fx.feed(h, [b"", b"", b"", b""]);
        assert_eq!(fx.table.proc_reads(), reads + 1);
        // 501 is gone already: a minimal entry from the header.
        let mut h = hdr(KIND_SYSCALL, 501, 200, "short", 950 * TICK, 10_100_000_000);
        h.uid = 33;
        h.tty = 5;
        fx.feed(h, [b"", b"", b"", b""]);
        let p = fx.table.get(501).expect("entry");
        assert_eq!(p.source, Source::Header);
        assert_eq!(p.comm, "short");
        assert_eq!((p.ppid, p.uid, p.tty), (200, 33, 5));
        assert_eq!(p.cwd, "/root", "parent's cwd");
        assert_eq!(fx.table.ancestors(501, 1)[0].comm, "bash");
    }

    #[test]
    fn header_updates_credentials_name_and_detects_pid_reuse() {
        let mut fx = Fx::new();
        base_tree(&fx);
        fx.seed();
        let mut h = hdr(KIND_SYSCALL, 200, 100, "bash", 300 * TICK, 10_000_000_000);
        h.uid = 0;
        h.cap_eff = 0xff;
        fx.feed(h, [b"", b"", b"", b""]);
        let p = fx.table.get(200).expect("bash");
        assert_eq!((p.uid, p.cap_effective), (0, 0xff));
        // prctl(PR_SET_NAME) on the main thread renames the process; another thread does not.
        let mut h2 = hdr(
            KIND_SYSCALL,
            200,
            100,
            "runc:[2:INIT]",
            300 * TICK,
            10_000_000_001,
        );
        fx.feed(h2, [b"", b"", b"", b""]);
        assert_eq!(
            fx.table.get(200).map(|p| p.comm.as_str()),
            Some("runc:[2:INIT]")
        );
        h2.tid = 201;
        h2.comm = *b"worker\0\0\0\0\0\0\0\0\0\0";
        fx.feed(h2, [b"", b"", b"", b""]);
        assert_eq!(
            fx.table.get(200).map(|p| p.comm.as_str()),
            Some("runc:[2:INIT]")
        );
        // Same pid, another start time: a new process (the old one's exit was lost).
        super::fixture::remove(&fx.proc(), 200);
        let h3 = hdr(KIND_SYSCALL, 200, 1, "nginx", 99_000 * TICK, 20_000_000_000);
        fx.feed(h3, [b"", b"", b"", b""]);
        let p = fx.table.get(200).expect("reused pid");
        assert_eq!(p.comm, "nginx");
        assert_eq!(p.ppid, 1);
        assert!(p.args.is_empty(), "nothing of the old bash");
    }

    #[test]
    fn ancestors_are_loop_safe() {
        let mut fx = Fx::new();
        for (pid, ppid) in [(10, 11), (11, 12), (12, 10)] {
            fx.table.insert(ProcInfo {
                pid,
                ppid,
                comm: format!("p{pid}"),
                ..ProcInfo::default()
            });
        }
        let chain: Vec<u32> = fx.table.ancestors(10, 50).iter().map(|p| p.pid).collect();
        assert_eq!(chain, [11, 12]);
        // Self-parented.
        fx.table.insert(ProcInfo {
            pid: 20,
            ppid: 20,
            ..ProcInfo::default()
        });
        assert!(fx.table.ancestors(20, 8).is_empty());
        // A long chain is cut at max.
        for pid in 100..200u32 {
            fx.table.insert(ProcInfo {
                pid,
                ppid: pid + 1,
                ..ProcInfo::default()
            });
        }
        assert_eq!(fx.table.ancestors(100, 8).len(), 8);
        assert_eq!(fx.table.ancestors(100, 10_000).len(), Ancestors::MAX_DEPTH);
        // A "parent" that started after the child is a reused pid: stop there.
        fx.table.insert(ProcInfo {
            pid: 300,
            ppid: 301,
            start_boot_ns: 5_000_000_000,
            ..ProcInfo::default()
        });
        fx.table.insert(ProcInfo {
            pid: 301,
            ppid: 1,
            start_boot_ns: 9_000_000_000,
            ..ProcInfo::default()
        });
        assert!(fx.table.ancestors(300, 8).is_empty());
        assert!(fx.table.ancestors(4242, 8).is_empty(), "unknown pid");
    }

    #[test]
    fn table_is_bounded() {
        let mut fx = Fx::new();
        fx.table.config.max_entries = 50;
        for pid in 1..=500u32 {
            let h = hdr(
                KIND_SYSCALL,
                pid,
                1,
                "x",
                u64::from(pid) * TICK,
                u64::from(pid) * 1000,
            );
            fx.feed(h, [b"", b"", b"", b""]);
            assert!(fx.table.len() <= 50, "{} entries", fx.table.len());
        }
        assert!(fx.table.get(500).is_some(), "the newest stays");
        assert!(fx.table.get(2).is_none(), "an old one went");
    }

    #[test]
    fn exit_ring_is_bounded() {
        let mut fx = Fx::new();
        fx.table.config.exit_ring = 3;
        for pid in 10..20u32 {
            let h = hdr(KIND_SYSCALL, pid, 1, "x", 0, 1);
            fx.feed(h, [b"", b"", b"", b""]);
            fx.feed(hdr(KIND_EXIT, pid, 1, "x", 0, 2), [b"", b"", b"", b""]);
        }
        // Only the last three exits are still there.
        let left: Vec<u32> = (10..20).filter(|p| fx.table.get(*p).is_some()).collect();
        assert_eq!(left, [17, 18, 19]);
    }

    #[test]
    fn fork_after_the_childs_own_records_keeps_them() {
        let mut fx = Fx::new();
        base_tree(&fx);
        fx.seed();
        let mut e = hdr(KIND_EXEC, 600, 200, "curl", 7_000_000_000, 7_100_000_000);
        e.args[3] = 600;
        fx.feed(e, [b"/usr/bin/curl\0", b"curl\0", b"curl\0-s\0", b""]);
        let mut f = hdr(KIND_FORK, 200, 100, "bash", 300 * TICK, 7_200_000_000);
        f.args[0] = 600;
        f.args[1] = 7_000_000_000;
        fx.feed(f, [b"", b"", b"", b""]);
        assert_eq!(fx.table.get(600).map(|p| p.comm.as_str()), Some("curl"));
    }
}
