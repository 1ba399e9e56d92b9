//! Boot clock to wall clock. The eBPF records stamp events and process starts with
//! `CLOCK_BOOTTIME` (ns since boot, counting suspend), which never jumps; the rules engine and
//! alerts want Unix-epoch ns (`evt.rawtime`, `proc.start_ts`). The offset between the two is
//! measured once when the sensor starts: a later wall-clock step (NTP) does not move events
//! about, which is what Falco does too.

/// The wall clock now, Unix-epoch ns (0 before 1970, saturated in 2554): the one reading
/// of the current time that alerts, sinks and the simulation share.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Converts `CLOCK_BOOTTIME` ns to Unix-epoch ns with an offset measured once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootClock {
    /// Unix-epoch ns at boot (realtime − boottime).
    offset_ns: i128,
}

impl Default for BootClock {
    fn default() -> Self {
        BootClock::new()
    }
}

impl BootClock {
    /// Measure the offset now.
    pub fn new() -> BootClock {
        BootClock {
            offset_ns: measure_offset(),
        }
    }

    /// A clock with a known offset (Unix-epoch ns at boot): for tests and replays.
    pub fn with_offset(offset_ns: i128) -> BootClock {
        BootClock { offset_ns }
    }

    /// Unix-epoch ns at boot.
    pub fn offset_ns(&self) -> i128 {
        self.offset_ns
    }

    /// The wall-clock time (Unix-epoch ns) of a `CLOCK_BOOTTIME` timestamp. 0 stays 0
    /// ("unknown"); the result saturates instead of wrapping.
    pub fn to_wall(&self, boot_ns: u64) -> u64 {
        if boot_ns == 0 {
            return 0;
        }
        let wall = i128::from(boot_ns) + self.offset_ns;
        u64::try_from(wall.max(0)).unwrap_or(u64::MAX)
    }

    /// The `CLOCK_BOOTTIME` timestamp of a wall-clock time: the inverse of [`Self::to_wall`].
    pub fn to_boot(&self, wall_ns: u64) -> u64 {
        if wall_ns == 0 {
            return 0;
        }
        let boot = i128::from(wall_ns) - self.offset_ns;
        u64::try_from(boot.max(0)).unwrap_or(u64::MAX)
    }
}

/// realtime − boottime, read as a (realtime, boottime, realtime) sandwich and keeping the
/// tightest of a few tries so that a preemption between the reads does not skew it.
#[cfg(target_os = "linux")]
fn measure_offset() -> i128 {
    fn read(clock: libc::clockid_t) -> Option<i128> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes to it.
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        (rc == 0).then(|| i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
    }
    let mut best: Option<(i128, i128)> = None;
    for _ in 0..5 {
        let (Some(r1), Some(b), Some(r2)) = (
            read(libc::CLOCK_REALTIME),
            read(libc::CLOCK_BOOTTIME),
            read(libc::CLOCK_REALTIME),
        ) else {
            return fallback_offset();
        };
        let width = r2 - r1;
        let offset = r1 + width / 2 - b;
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, offset));
        }
    }
    best.map_or_else(fallback_offset, |(_, o)| o)
}

#[cfg(not(target_os = "linux"))]
fn measure_offset() -> i128 {
    fallback_offset()
}

/// Without `clock_gettime(CLOCK_BOOTTIME)`: wall time now minus the uptime from
/// `/proc/uptime` when there is one, else "booted now" (such systems produce no records).
fn fallback_offset() -> i128 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| parse_uptime_ns(&t))
        .unwrap_or(0);
    now - uptime
}

/// The first field of `/proc/uptime` ("12345.67 4567.89") in ns.
fn parse_uptime_ns(text: &str) -> Option<i128> {
    let first = text.split_whitespace().next()?;
    let (secs, frac) = first.split_once('.').unwrap_or((first, ""));
    let secs: i128 = secs.parse().ok()?;
    let mut frac_ns: i128 = 0;
    let mut scale = 100_000_000;
    for c in frac.bytes().take(9) {
        if !c.is_ascii_digit() {
            return None;
        }
        frac_ns += i128::from(c - b'0') * scale;
        scale /= 10;
    }
    Some(secs * 1_000_000_000 + frac_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_wall_adds_the_offset_and_keeps_zero_unknown() {
        let c = BootClock::with_offset(1_700_000_000_000_000_000);
        assert_eq!(c.to_wall(5_000), 1_700_000_000_000_005_000);
        assert_eq!(c.to_wall(0), 0);
        assert_eq!(c.to_boot(c.to_wall(123_456)), 123_456);
        // Saturates rather than wrapping.
        assert_eq!(BootClock::with_offset(-10).to_wall(5), 0);
        assert_eq!(
            BootClock::with_offset(i128::from(u64::MAX)).to_wall(5),
            u64::MAX
        );
    }

    #[test]
    fn measured_offset_puts_boot_in_the_past() {
        let c = BootClock::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        // Boot happened before now and after 2001 (on any machine running these tests).
        assert!(
            c.offset_ns() <= now,
            "boot {} after now {now}",
            c.offset_ns()
        );
        assert!(c.offset_ns() > 1_000_000_000_000_000_000);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn offset_agrees_with_proc_stat_btime() {
        // /proc/stat's btime is the boot time in whole seconds.
        let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
            return;
        };
        let btime: i128 = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if btime == 0 {
            return;
        }
        let ours = BootClock::new().offset_ns() / 1_000_000_000;
        assert!((ours - btime).abs() <= 2, "ours {ours} btime {btime}");
    }

    #[test]
    fn uptime_parses() {
        assert_eq!(parse_uptime_ns("12.5 40.00\n"), Some(12_500_000_000));
        assert_eq!(parse_uptime_ns("7 1"), Some(7_000_000_000));
        assert_eq!(parse_uptime_ns("x"), None);
        assert_eq!(parse_uptime_ns(""), None);
        assert_eq!(parse_uptime_ns("1.2x"), None);
    }
}
