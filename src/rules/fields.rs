//! The fields a condition or an output can name (`proc.name`, `fd.sip`, `k8s.pod.label[app]`),
//! their types, and how each is read from an [`Event`].
//!
//! Reading a field borrows from the event; the few values that have to be assembled
//! (`proc.cmdline`, `evt.args`, capability names) are built once per event into a
//! [`Scratch`] whose buffers are reused, so matching does not allocate.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::event::{Event, EventType, FdType, Process, SocketRole};

/// The type of a field's value, which decides the operators and literals it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Str,
    Int,
    Bool,
    /// An IP address compared with addresses.
    Ip,
    /// An IP address compared with networks (`10.0.0.0/8`).
    Net,
    /// An IP address compared with host names resolved when the rules load.
    HostName,
}

/// What may follow the field name in brackets (or, for `evt.arg`, after a dot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgSpec {
    None,
    /// `proc.aname[2]`; without it the field stands for every ancestor.
    OptIndex,
    /// `k8s.pod.label[app]`: required.
    Key,
    /// `proc.env[HOME]`; without it the whole environment.
    OptKey,
    /// `evt.arg.flags`, `evt.arg[flags]` or `evt.arg[0]`: required.
    KeyOrIndex,
}

macro_rules! fields {
    ($($variant:ident => $name:literal, $ty:ident, $arg:ident;)*) => {
        /// Every field the engine can read.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum F { $($variant,)* }

        const TABLE: &[(&str, F, FieldType, ArgSpec)] = &[
            $(($name, F::$variant, FieldType::$ty, ArgSpec::$arg),)*
        ];
    };
}

fields! {
    EvtType => "evt.type", Str, None;
    EvtNum => "evt.num", Int, None;
    EvtRes => "evt.res", Str, None;
    EvtRawres => "evt.rawres", Int, None;
    EvtDir => "evt.dir", Str, None;
    EvtArgs => "evt.args", Str, None;
    EvtArg => "evt.arg", Str, KeyOrIndex;
    EvtIsOpenRead => "evt.is_open_read", Bool, None;
    EvtIsOpenWrite => "evt.is_open_write", Bool, None;
    EvtTime => "evt.time", Str, None;
    EvtRawtime => "evt.rawtime", Int, None;
    EvtHostname => "evt.hostname", Str, None;
    ProcName => "proc.name", Str, None;
    ProcExe => "proc.exe", Str, None;
    ProcExepath => "proc.exepath", Str, None;
    ProcCmdline => "proc.cmdline", Str, None;
    ProcArgs => "proc.args", Str, None;
    ProcCwd => "proc.cwd", Str, None;
    ProcTty => "proc.tty", Int, None;
    ProcDuration => "proc.duration", Int, None;
    ProcPid => "proc.pid", Int, None;
    ProcPpid => "proc.ppid", Int, None;
    ProcVpid => "proc.vpid", Int, None;
    ProcPname => "proc.pname", Str, None;
    ProcPcmdline => "proc.pcmdline", Str, None;
    ProcPexe => "proc.pexe", Str, None;
    ProcPexepath => "proc.pexepath", Str, None;
    ProcAname => "proc.aname", Str, OptIndex;
    ProcAexe => "proc.aexe", Str, OptIndex;
    ProcAexepath => "proc.aexepath", Str, OptIndex;
    ProcApid => "proc.apid", Int, OptIndex;
    ProcSname => "proc.sname", Str, None;
    ProcIsExeFromMemfd => "proc.is_exe_from_memfd", Bool, None;
    ProcIsExeUpperLayer => "proc.is_exe_upper_layer", Bool, None;
    ProcExeInoCtime => "proc.exe_ino.ctime", Int, None;
    ProcExeInoMtime => "proc.exe_ino.mtime", Int, None;
    ProcExeInoCtimeDurationProcStart => "proc.exe_ino.ctime_duration_proc_start", Int, None;
    ProcEnv => "proc.env", Str, OptKey;
    ThreadTid => "thread.tid", Int, None;
    ThreadCapEffective => "thread.cap_effective", Str, None;
    ThreadCapPermitted => "thread.cap_permitted", Str, None;
    FdNum => "fd.num", Int, None;
    FdType => "fd.type", Str, None;
    FdTypechar => "fd.typechar", Str, None;
    FdName => "fd.name", Str, None;
    FdNameraw => "fd.nameraw", Str, None;
    FdDirectory => "fd.directory", Str, None;
    FdFilename => "fd.filename", Str, None;
    FdNameChanged => "fd.name_changed", Bool, None;
    FdConnected => "fd.connected", Bool, None;
    FdL4proto => "fd.l4proto", Str, None;
    FdSockfamily => "fd.sockfamily", Str, None;
    FdIp => "fd.ip", Ip, None;
    FdCip => "fd.cip", Ip, None;
    FdSip => "fd.sip", Ip, None;
    FdLip => "fd.lip", Ip, None;
    FdRip => "fd.rip", Ip, None;
    FdPort => "fd.port", Int, None;
    FdCport => "fd.cport", Int, None;
    FdSport => "fd.sport", Int, None;
    FdLport => "fd.lport", Int, None;
    FdRport => "fd.rport", Int, None;
    FdDport => "fd.dport", Int, None;
    FdNet => "fd.net", Net, None;
    FdCnet => "fd.cnet", Net, None;
    FdSnet => "fd.snet", Net, None;
    FdLnet => "fd.lnet", Net, None;
    FdRnet => "fd.rnet", Net, None;
    FdCipName => "fd.cip.name", HostName, None;
    FdSipName => "fd.sip.name", HostName, None;
    FdLipName => "fd.lip.name", HostName, None;
    FdRipName => "fd.rip.name", HostName, None;
    UserUid => "user.uid", Int, None;
    UserName => "user.name", Str, None;
    UserLoginuid => "user.loginuid", Int, None;
    UserLoginname => "user.loginname", Str, None;
    GroupGid => "group.gid", Int, None;
    GroupName => "group.name", Str, None;
    ContainerId => "container.id", Str, None;
    ContainerName => "container.name", Str, None;
    ContainerImage => "container.image", Str, None;
    ContainerImageRepository => "container.image.repository", Str, None;
    ContainerImageTag => "container.image.tag", Str, None;
    ContainerPrivileged => "container.privileged", Bool, None;
    ContainerStartTs => "container.start_ts", Int, None;
    K8sNsName => "k8s.ns.name", Str, None;
    K8sPodName => "k8s.pod.name", Str, None;
    K8sPodUid => "k8s.pod.uid", Str, None;
    K8sPodLabel => "k8s.pod.label", Str, Key;
}

/// The names of every field the engine supports (for `rules list --fields` and docs).
pub fn supported_fields() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(name, ..)| *name)
}

/// The argument of a field reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldArg {
    None,
    Index(usize),
    Key(Box<str>),
}

/// A resolved field reference: which field, with which argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldRef {
    pub id: F,
    pub ty: FieldType,
    pub arg: FieldArg,
    /// Whether the field can yield several values (`proc.aname`, `fd.ip`).
    pub multi: bool,
    /// The scratch buffer the value is assembled in, if it must be assembled.
    slot: Option<u8>,
}

/// Why a field reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldError {
    /// The engine does not know this field (the rule is skipped, not failed).
    Unknown,
    /// The field is known but its argument is wrong (a load error).
    BadArg(String),
}

/// Resolve `name` (as written, e.g. `evt.arg.flags`) and its bracketed argument.
pub(crate) fn resolve(name: &str, arg: Option<&str>) -> Result<FieldRef, FieldError> {
    let (name, arg) = match name
        .strip_prefix("evt.arg.")
        .or(name.strip_prefix("evt.rawarg."))
    {
        Some(rest) if arg.is_none() && !rest.is_empty() => ("evt.arg", Some(rest)),
        Some(_) => {
            return Err(FieldError::BadArg(format!(
                "field {name} takes no [argument]"
            )));
        }
        None => (name, arg),
    };
    let name = if name == "evt.rawarg" {
        "evt.arg"
    } else {
        name
    };
    let Some(&(_, id, ty, spec)) = TABLE.iter().find(|(n, ..)| *n == name) else {
        return Err(FieldError::Unknown);
    };
    let arg = match (spec, arg) {
        (ArgSpec::None, None) | (ArgSpec::OptIndex, None) | (ArgSpec::OptKey, None) => {
            FieldArg::None
        }
        (ArgSpec::None, Some(_)) => {
            return Err(FieldError::BadArg(format!(
                "field {name} takes no [argument]"
            )));
        }
        (ArgSpec::OptIndex, Some(a)) => match a.trim().parse::<usize>() {
            Ok(n) => FieldArg::Index(n),
            Err(_) => {
                return Err(FieldError::BadArg(format!(
                    "field {name}[{a}] needs a number as its argument"
                )));
            }
        },
        (ArgSpec::Key | ArgSpec::KeyOrIndex, None) => {
            return Err(FieldError::BadArg(format!(
                "field {name} needs an argument"
            )));
        }
        (ArgSpec::KeyOrIndex, Some(a)) => match a.parse::<usize>() {
            Ok(n) => FieldArg::Index(n),
            Err(_) if !a.is_empty() => FieldArg::Key(a.into()),
            Err(_) => {
                return Err(FieldError::BadArg(format!(
                    "field {name} needs an argument"
                )));
            }
        },
        (ArgSpec::Key | ArgSpec::OptKey, Some(a)) => {
            if a.is_empty() {
                return Err(FieldError::BadArg(format!(
                    "field {name}[] has an empty argument"
                )));
            }
            FieldArg::Key(a.into())
        }
    };
    let multi = matches!(
        (id, &arg),
        (
            F::ProcAname | F::ProcAexe | F::ProcAexepath | F::ProcApid,
            FieldArg::None
        ) | (F::FdIp | F::FdPort | F::FdNet, _)
    );
    let slot = slot_of(id, &arg);
    Ok(FieldRef {
        id,
        ty,
        arg,
        multi,
        slot,
    })
}

/// One value read from an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
}

impl Val<'_> {
    /// Render as Falco prints it in an output.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Val::Str(s) => out.push_str(s),
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Ip(ip) => {
                let _ = write!(out, "{ip}");
            }
        }
    }

    /// The JSON value for `output_fields` (numbers stay numbers).
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Val::Str(s) => serde_json::Value::String(s.to_string()),
            Val::Int(i) => serde_json::Value::from(i),
            Val::Bool(b) => serde_json::Value::Bool(b),
            Val::Ip(ip) => serde_json::Value::String(ip.to_string()),
        }
    }
}

/// Per-event buffers for the values that must be assembled. Reused across events.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    valid: u32,
    bufs: [String; SCRATCH_SLOTS],
    /// Per memoised macro: `generation << 1 | result`, valid when the generation is current.
    memo: Vec<u32>,
    generation: u32,
}

const SCRATCH_SLOTS: usize = 8;

/// The scratch slot a field is assembled into, if it needs one.
fn slot_of(id: F, arg: &FieldArg) -> Option<u8> {
    Some(match (id, arg) {
        (F::EvtArgs, _) => 0,
        (F::EvtTime, _) => 1,
        (F::ProcCmdline, _) => 2,
        (F::ProcArgs, _) => 3,
        (F::ProcPcmdline, _) => 4,
        (F::ProcEnv, FieldArg::None) => 5,
        (F::ThreadCapEffective, _) => 6,
        (F::ThreadCapPermitted, _) => 7,
        _ => return None,
    })
}

impl Scratch {
    /// Forget the previous event's values (keeps the buffers' memory). `memos` is how many
    /// memoised macros the ruleset has; the table only grows (allocating) the first time.
    pub(crate) fn reset(&mut self, memos: usize) {
        self.valid = 0;
        if self.memo.len() < memos {
            self.memo.resize(memos, 0);
        }
        self.generation = self.generation.wrapping_add(1) & (u32::MAX >> 1);
        if self.generation == 0 {
            // Wrapped: old entries could look current, so clear them.
            self.memo.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
    }

    #[inline]
    pub(crate) fn memo_get(&self, id: u32) -> Option<bool> {
        let m = *self.memo.get(id as usize)?;
        (m >> 1 == self.generation).then_some(m & 1 == 1)
    }

    #[inline]
    pub(crate) fn memo_set(&mut self, id: u32, result: bool) {
        if let Some(m) = self.memo.get_mut(id as usize) {
            *m = (self.generation << 1) | u32::from(result);
        }
    }

    /// Assemble `f`'s value for `ev` if it needs assembling and has not been built yet.
    #[inline]
    pub(crate) fn prepare(&mut self, f: &FieldRef, ev: &Event) {
        let Some(i) = f.slot else { return };
        let i = usize::from(i);
        if self.valid & (1 << i) != 0 {
            return;
        }
        self.valid |= 1 << i;
        let Some(buf) = self.bufs.get_mut(i) else {
            return;
        };
        buf.clear();
        match f.id {
            F::EvtArgs => {
                for (k, v) in &ev.args.0 {
                    if !buf.is_empty() {
                        buf.push(' ');
                    }
                    buf.push_str(k);
                    buf.push('=');
                    buf.push_str(v);
                }
            }
            F::EvtTime => {
                let secs = ev.ts / 1_000_000_000;
                let nanos = ev.ts % 1_000_000_000;
                let day = secs % 86_400;
                let _ = write!(
                    buf,
                    "{:02}:{:02}:{:02}.{:09}",
                    day / 3600,
                    (day / 60) % 60,
                    day % 60,
                    nanos
                );
            }
            F::ProcCmdline => cmdline(&ev.proc, buf),
            F::ProcArgs => join(&ev.proc.args, buf),
            F::ProcPcmdline => {
                if let Some(p) = ev.parents.first() {
                    cmdline(p, buf);
                }
            }
            F::ProcEnv => join(&ev.proc.env, buf),
            F::ThreadCapEffective => ev.proc.cap_effective.render(buf),
            F::ThreadCapPermitted => ev.proc.cap_permitted.render(buf),
            _ => {}
        }
    }

    fn get(&self, f: &FieldRef) -> Option<&str> {
        let i = usize::from(f.slot?);
        if self.valid & (1 << i) == 0 {
            return None;
        }
        self.bufs.get(i).map(String::as_str)
    }
}

fn join(parts: &[String], buf: &mut String) {
    for (i, a) in parts.iter().enumerate() {
        if i > 0 {
            buf.push(' ');
        }
        buf.push_str(a);
    }
}

fn cmdline(p: &Process, buf: &mut String) {
    buf.push_str(&p.name);
    for a in &p.args {
        buf.push(' ');
        buf.push_str(a);
    }
}

fn non_empty(s: &str) -> Option<Val<'_>> {
    (!s.is_empty()).then_some(Val::Str(s))
}

fn is_open(kind: EventType) -> bool {
    matches!(
        kind,
        EventType::Open | EventType::Openat | EventType::Openat2 | EventType::Creat
    )
}

/// Whether open flags (`O_RDONLY|O_CLOEXEC`) open for reading and for writing.
fn open_mode(flags: &str) -> (bool, bool) {
    let (mut read, mut write) = (false, false);
    for tok in flags
        .as_bytes()
        .split(|b| matches!(b, b'|' | b' ' | b',' | b'\t'))
    {
        match tok {
            b"O_RDONLY" => read = true,
            b"O_WRONLY" => write = true,
            b"O_RDWR" => (read, write) = (true, true),
            _ => {}
        }
    }
    (read, write)
}

/// Read a single-valued field (or the first value of a multi-valued one).
/// `scratch` must have been prepared for `f` on this event.
pub(crate) fn get<'a>(f: &FieldRef, ev: &'a Event, scratch: &'a Scratch) -> Option<Val<'a>> {
    if let Some(s) = scratch.get(f) {
        return match f.id {
            // An empty command line, environment or capability set is still a value.
            F::ProcPcmdline if ev.parents.is_empty() => None,
            _ => Some(Val::Str(s)),
        };
    }
    let fd = ev.fd.as_ref();
    let p = &ev.proc;
    Some(match f.id {
        F::EvtType => Val::Str(ev.kind.name()),
        F::EvtNum => Val::Int(ev.num as i64),
        F::EvtRes => Val::Str(if ev.res >= 0 {
            "SUCCESS"
        } else {
            errno_name(-ev.res)
        }),
        F::EvtRawres => Val::Int(ev.res),
        F::EvtDir => Val::Str(match ev.dir {
            super::event::Direction::Enter => ">",
            super::event::Direction::Exit => "<",
        }),
        F::EvtArg => match &f.arg {
            FieldArg::Index(i) => Val::Str(ev.args.at(*i)?),
            FieldArg::Key(k) => Val::Str(ev.args.get(k)?),
            FieldArg::None => return None,
        },
        F::EvtIsOpenRead | F::EvtIsOpenWrite => {
            if !is_open(ev.kind) {
                return None;
            }
            let (read, write) = open_mode(ev.args.get("flags").unwrap_or(""));
            Val::Bool(if f.id == F::EvtIsOpenRead {
                ev.kind != EventType::Creat && read
            } else {
                ev.kind == EventType::Creat || write
            })
        }
        F::EvtRawtime => Val::Int(ev.ts as i64),
        F::EvtHostname => return non_empty(&ev.hostname),
        F::ProcName => return non_empty(&p.name),
        F::ProcExe => return non_empty(&p.exe),
        F::ProcExepath => return non_empty(&p.exepath),
        F::ProcCwd => return non_empty(&p.cwd),
        F::ProcTty => Val::Int(p.tty.into()),
        F::ProcDuration => {
            if p.start_ts == 0 || ev.ts < p.start_ts {
                return None;
            }
            Val::Int((ev.ts - p.start_ts) as i64)
        }
        F::ProcPid => Val::Int(p.pid),
        F::ProcPpid => Val::Int(if p.ppid != 0 {
            p.ppid
        } else {
            ev.parents.first()?.pid
        }),
        F::ProcVpid => Val::Int(p.vpid),
        F::ProcPname => return non_empty(&ev.parents.first()?.name),
        F::ProcPexe => return non_empty(&ev.parents.first()?.exe),
        F::ProcPexepath => return non_empty(&ev.parents.first()?.exepath),
        F::ProcAname | F::ProcAexe | F::ProcAexepath | F::ProcApid => {
            let n = match f.arg {
                FieldArg::Index(n) => n,
                _ => 1,
            };
            return ancestor_val(f.id, ev.ancestor(n)?);
        }
        F::ProcSname => return non_empty(&p.sname),
        F::ProcIsExeFromMemfd => Val::Bool(p.exe_from_memfd),
        F::ProcIsExeUpperLayer => Val::Bool(p.exe_upper_layer),
        F::ProcExeInoCtime => return nonzero(p.exe_ino_ctime),
        F::ProcExeInoMtime => return nonzero(p.exe_ino_mtime),
        F::ProcExeInoCtimeDurationProcStart => {
            if p.exe_ino_ctime == 0 || p.start_ts < p.exe_ino_ctime {
                return None;
            }
            Val::Int((p.start_ts - p.exe_ino_ctime) as i64)
        }
        F::ProcEnv => match &f.arg {
            FieldArg::Key(k) => Val::Str(p.env_var(k)?),
            _ => return None,
        },
        F::ThreadTid => Val::Int(if p.tid != 0 { p.tid } else { p.pid }),
        F::FdNum => Val::Int(fd?.num),
        F::FdType => Val::Str(fd?.kind.name()),
        F::FdTypechar => Val::Str(fd?.kind.typechar()),
        F::FdName => return non_empty(&fd?.name),
        F::FdNameraw => {
            let fd = fd?;
            return non_empty(if fd.nameraw.is_empty() {
                &fd.name
            } else {
                &fd.nameraw
            });
        }
        F::FdDirectory => {
            let fd = fd?;
            match fd.kind {
                FdType::Directory => return non_empty(&fd.name),
                FdType::File | FdType::Memfd => Val::Str(dirname(&fd.name)?),
                _ => return None,
            }
        }
        F::FdFilename => {
            let fd = fd?;
            match fd.kind {
                FdType::File | FdType::Memfd => {
                    let (_, base) = fd.name.rsplit_once('/')?;
                    Val::Str(base)
                }
                _ => return None,
            }
        }
        F::FdNameChanged => Val::Bool(fd?.name_changed),
        F::FdConnected => Val::Bool(fd?.connected),
        F::FdL4proto => return non_empty(&fd?.l4proto),
        F::FdSockfamily => Val::Str(match fd?.kind {
            FdType::Ipv4 | FdType::Ipv6 => "ip",
            FdType::Unix => "unix",
            _ => return None,
        }),
        F::FdCip | F::FdCnet | F::FdCipName => Val::Ip(fd?.cip?),
        F::FdSip | F::FdSnet | F::FdSipName | F::FdIp | F::FdNet => Val::Ip(fd?.sip?),
        F::FdLip | F::FdLnet | F::FdLipName => {
            let fd = fd?;
            Val::Ip(match fd.role {
                SocketRole::Client => fd.cip?,
                SocketRole::Server => fd.sip?,
            })
        }
        F::FdRip | F::FdRnet | F::FdRipName => {
            let fd = fd?;
            Val::Ip(match fd.role {
                SocketRole::Client => fd.sip?,
                SocketRole::Server => fd.cip?,
            })
        }
        F::FdCport => port(fd?.cport)?,
        F::FdSport | F::FdDport | F::FdPort => port(fd?.sport)?,
        F::FdLport => {
            let fd = fd?;
            port(match fd.role {
                SocketRole::Client => fd.cport,
                SocketRole::Server => fd.sport,
            })?
        }
        F::FdRport => {
            let fd = fd?;
            port(match fd.role {
                SocketRole::Client => fd.sport,
                SocketRole::Server => fd.cport,
            })?
        }
        F::UserUid => Val::Int(ev.user.uid.into()),
        F::UserName => return non_empty(&ev.user.name),
        F::UserLoginuid => Val::Int(ev.user.loginuid),
        F::UserLoginname => return non_empty(&ev.user.loginname),
        F::GroupGid => Val::Int(ev.group.gid.into()),
        F::GroupName => return non_empty(&ev.group.name),
        F::ContainerId => Val::Str(ev.container.as_ref().map_or("host", |c| c.id.as_str())),
        F::ContainerName => Val::Str(ev.container.as_ref().map_or("host", |c| c.name.as_str())),
        F::ContainerImage => return non_empty(&ev.container.as_ref()?.image),
        F::ContainerImageRepository => return non_empty(&ev.container.as_ref()?.image_repository),
        F::ContainerImageTag => return non_empty(&ev.container.as_ref()?.image_tag),
        F::ContainerPrivileged => Val::Bool(ev.container.as_ref()?.privileged),
        F::ContainerStartTs => return nonzero(ev.container.as_ref()?.start_ts),
        F::K8sNsName => return non_empty(&ev.k8s.as_ref()?.ns),
        F::K8sPodName => return non_empty(&ev.k8s.as_ref()?.pod),
        F::K8sPodUid => return non_empty(&ev.k8s.as_ref()?.pod_uid),
        F::K8sPodLabel => match &f.arg {
            FieldArg::Key(k) => Val::Str(ev.k8s.as_ref()?.labels.get(&**k)?),
            _ => return None,
        },
        // Assembled fields are served from the scratch above.
        F::EvtArgs
        | F::EvtTime
        | F::ProcCmdline
        | F::ProcArgs
        | F::ProcPcmdline
        | F::ThreadCapEffective
        | F::ThreadCapPermitted => return None,
    })
}

/// Visit every value of `f` (several for `proc.aname`, `fd.ip`…), stopping when `visit`
/// returns true. Returns whether it did.
#[inline]
pub(crate) fn any<'a>(
    f: &FieldRef,
    ev: &'a Event,
    scratch: &'a Scratch,
    mut visit: impl FnMut(Val<'a>) -> bool,
) -> bool {
    if !f.multi {
        return get(f, ev, scratch).is_some_and(visit);
    }
    match f.id {
        F::ProcAname | F::ProcAexe | F::ProcAexepath | F::ProcApid => ev
            .parents
            .iter()
            .any(|p| ancestor_val(f.id, p).is_some_and(&mut visit)),
        F::FdIp | F::FdNet => {
            let Some(fd) = ev.fd.as_ref() else {
                return false;
            };
            fd.cip.is_some_and(|ip| visit(Val::Ip(ip)))
                || fd.sip.is_some_and(|ip| visit(Val::Ip(ip)))
        }
        F::FdPort => {
            let Some(fd) = ev.fd.as_ref() else {
                return false;
            };
            port(fd.cport).is_some_and(&mut visit) || port(fd.sport).is_some_and(visit)
        }
        _ => get(f, ev, scratch).is_some_and(visit),
    }
}

fn ancestor_val(id: F, p: &Process) -> Option<Val<'_>> {
    match id {
        F::ProcAname => non_empty(&p.name),
        F::ProcAexe => non_empty(&p.exe),
        F::ProcAexepath => non_empty(&p.exepath),
        _ => Some(Val::Int(p.pid)),
    }
}

fn nonzero(v: u64) -> Option<Val<'static>> {
    (v != 0).then_some(Val::Int(v as i64))
}

fn port(p: u16) -> Option<Val<'static>> {
    (p != 0).then_some(Val::Int(p.into()))
}

fn dirname(path: &str) -> Option<&str> {
    match path.rfind('/')? {
        0 => Some("/"),
        i => path.get(..i),
    }
}

/// The symbolic name of a Linux errno (`ENOENT`), as Falco prints `evt.res`.
pub(crate) fn errno_name(errno: i64) -> &'static str {
    const NAMES: [&str; 134] = [
        "SUCCESS",
        "EPERM",
        "ENOENT",
        "ESRCH",
        "EINTR",
        "EIO",
        "ENXIO",
        "E2BIG",
        "ENOEXEC",
        "EBADF",
        "ECHILD",
        "EAGAIN",
        "ENOMEM",
        "EACCES",
        "EFAULT",
        "ENOTBLK",
        "EBUSY",
        "EEXIST",
        "EXDEV",
        "ENODEV",
        "ENOTDIR",
        "EISDIR",
        "EINVAL",
        "ENFILE",
        "EMFILE",
        "ENOTTY",
        "ETXTBSY",
        "EFBIG",
        "ENOSPC",
        "ESPIPE",
        "EROFS",
        "EMLINK",
        "EPIPE",
        "EDOM",
        "ERANGE",
        "EDEADLK",
        "ENAMETOOLONG",
        "ENOLCK",
        "ENOSYS",
        "ENOTEMPTY",
        "ELOOP",
        "EWOULDBLOCK",
        "ENOMSG",
        "EIDRM",
        "ECHRNG",
        "EL2NSYNC",
        "EL3HLT",
        "EL3RST",
        "ELNRNG",
        "EUNATCH",
        "ENOCSI",
        "EL2HLT",
        "EBADE",
        "EBADR",
        "EXFULL",
        "ENOANO",
        "EBADRQC",
        "EBADSLT",
        "EDEADLOCK",
        "EBFONT",
        "ENOSTR",
        "ENODATA",
        "ETIME",
        "ENOSR",
        "ENONET",
        "ENOPKG",
        "EREMOTE",
        "ENOLINK",
        "EADV",
        "ESRMNT",
        "ECOMM",
        "EPROTO",
        "EMULTIHOP",
        "EDOTDOT",
        "EBADMSG",
        "EOVERFLOW",
        "ENOTUNIQ",
        "EBADFD",
        "EREMCHG",
        "ELIBACC",
        "ELIBBAD",
        "ELIBSCN",
        "ELIBMAX",
        "ELIBEXEC",
        "EILSEQ",
        "ERESTART",
        "ESTRPIPE",
        "EUSERS",
        "ENOTSOCK",
        "EDESTADDRREQ",
        "EMSGSIZE",
        "EPROTOTYPE",
        "ENOPROTOOPT",
        "EPROTONOSUPPORT",
        "ESOCKTNOSUPPORT",
        "EOPNOTSUPP",
        "EPFNOSUPPORT",
        "EAFNOSUPPORT",
        "EADDRINUSE",
        "EADDRNOTAVAIL",
        "ENETDOWN",
        "ENETUNREACH",
        "ENETRESET",
        "ECONNABORTED",
        "ECONNRESET",
        "ENOBUFS",
        "EISCONN",
        "ENOTCONN",
        "ESHUTDOWN",
        "ETOOMANYREFS",
        "ETIMEDOUT",
        "ECONNREFUSED",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "EALREADY",
        "EINPROGRESS",
        "ESTALE",
        "EUCLEAN",
        "ENOTNAM",
        "ENAVAIL",
        "EISNAM",
        "EREMOTEIO",
        "EDQUOT",
        "ENOMEDIUM",
        "EMEDIUMTYPE",
        "ECANCELED",
        "ENOKEY",
        "EKEYEXPIRED",
        "EKEYREVOKED",
        "EKEYREJECTED",
        "EOWNERDEAD",
        "ENOTRECOVERABLE",
        "ERFKILL",
        "EHWPOISON",
    ];
    usize::try_from(errno)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("EUNKNOWN")
}
