//! Node sensor performance, as root against the real kernel (`cargo bench --bench sensor`):
//!
//! 1. Overhead: an open/close loop and a fork+exec loop timed without the sensor and with
//!    it attached (default rules), alternating rounds so that machine noise hits both sides;
//!    the median of each side is reported.
//! 2. Sustained rate: opens paced at 100,000 per second for 10 seconds with the default
//!    ring buffer; the kernel's drop counters must stay at 0.
//! 3. Memory: the sensor's RSS after a minute of the open and exec loops.
//! 4. Storm: 1,000,000 opens as fast as possible with a small (1 MiB) buffer: drops are
//!    counted, the sensor survives, and it alerts again once the storm is over.
//!
//! `SECMON_BENCH=overhead,rate,rss,storm` picks parts (default: all). Prints figures; asserts
//! nothing about time.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-secmon");

struct Sensor {
    child: Child,
    addr: String,
}

impl Sensor {
    fn start(extra: &[&str]) -> Sensor {
        let mut child = Command::new(BIN)
            .args(["sensor", "--quiet", "--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the sensor");
        let err = BufReader::new(child.stderr.take().expect("stderr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = tx.send(line.clone());
                } else {
                    eprintln!("sensor: {line}");
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the sensor did not become ready (root? tracefs?)");
        let addr = ready
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .expect("metrics address")
            .to_string();
        Sensor { child, addr }
    }

    fn metrics(&self) -> String {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read");
        body
    }

    /// Sum of a metric's samples (all label sets).
    fn sum(&self, name: &str) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn open_loop(n: u64) -> Duration {
    let path = CString::new("/dev/null").expect("path");
    let t = Instant::now();
    for _ in 0..n {
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            libc::close(fd);
        }
    }
    t.elapsed()
}

/// fork + execve("/bin/true") + waitpid, with a minimal environment (cargo's
/// LD_LIBRARY_PATH would send the loader through dozens of failed opens per exec).
fn exec_loop(n: u64) -> Duration {
    let path = CString::new("/bin/true").expect("path");
    let arg0 = CString::new("true").expect("arg");
    let env0 = CString::new("PATH=/usr/bin:/bin").expect("env");
    let argv = [arg0.as_ptr(), std::ptr::null()];
    let envp = [env0.as_ptr(), std::ptr::null()];
    let t = Instant::now();
    for _ in 0..n {
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127);
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
        }
    }
    t.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn overhead() {
    const OPENS: u64 = 200_000;
    const EXECS: u64 = 300;
    const ROUNDS: usize = 7;
    let (mut open_off, mut open_on, mut exec_off, mut exec_on) = (vec![], vec![], vec![], vec![]);
    // warm up caches
    open_loop(OPENS);
    exec_loop(EXECS / 3);
    for round in 0..ROUNDS {
        open_off.push(open_loop(OPENS).as_nanos() as f64 / OPENS as f64);
        exec_off.push(exec_loop(EXECS).as_micros() as f64 / EXECS as f64);
        let s = Sensor::start(&[]);
        open_on.push(open_loop(OPENS).as_nanos() as f64 / OPENS as f64);
        exec_on.push(exec_loop(EXECS).as_micros() as f64 / EXECS as f64);
        let drops = s.sum("secmon_events_dropped_total");
        s.stop();
        eprintln!(
            "round {round}: open {:.0}/{:.0} ns, exec {:.0}/{:.0} us (off/on), drops {drops}",
            open_off[round], open_on[round], exec_off[round], exec_on[round]
        );
    }
    let (oo, on, eo, en) = (
        median(open_off),
        median(open_on),
        median(exec_off),
        median(exec_on),
    );
    println!(
        "overhead open/close loop: {oo:.0} ns -> {on:.0} ns per open+close ({:+.1}%)",
        (on / oo - 1.0) * 100.0
    );
    println!(
        "overhead fork+exec loop:  {eo:.0} us -> {en:.0} us per fork+exec+wait ({:+.1}%)",
        (en / eo - 1.0) * 100.0
    );
}

fn rate() {
    const RATE: u64 = 100_000;
    const SECS: u64 = 10;
    let s = Sensor::start(&[]);
    let before = s.sum("secmon_events_total");
    let path = CString::new("/dev/null").expect("path");
    let start = Instant::now();
    let mut done = 0u64;
    while done < RATE * SECS {
        for _ in 0..1000 {
            unsafe {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
                libc::close(fd);
            }
        }
        done += 1000;
        let due = start + Duration::from_nanos(done * 1_000_000_000 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let events = s.sum("secmon_events_total") - before;
    let drops = s.sum("secmon_events_dropped_total");
    println!(
        "sustained: {done} opens in {:.2} s ({:.0}/s), {events} events received, {drops} dropped (8 MiB buffer)",
        took.as_secs_f64(),
        done as f64 / took.as_secs_f64()
    );
    s.stop();
}

fn rss() {
    let s = Sensor::start(&[]);
    let end = Instant::now() + Duration::from_secs(60);
    let mut opens = 0u64;
    let mut execs = 0u64;
    while Instant::now() < end {
        open_loop(50_000);
        opens += 50_000;
        exec_loop(50);
        execs += 50;
    }
    let rss = s.sum("process_resident_memory_bytes");
    let table = s.sum("secmon_process_table_size");
    println!(
        "memory: sensor RSS {:.1} MB after 60 s of loops ({opens} opens, {execs} execs), process table {table}",
        rss / 1e6
    );
    s.stop();
}

fn storm() {
    let s = Sensor::start(&["--buffer-size-mib", "1"]);
    let t = open_loop(1_000_000);
    std::thread::sleep(Duration::from_millis(1500));
    let drops = s.sum("secmon_events_dropped_total");
    let events = s.sum("secmon_events_total");
    let before = s.sum("secmon_alerts_total");
    // after the storm: a credential read must still alert
    let _ = Command::new("/bin/cat")
        .arg("/etc/shadow")
        .stdout(Stdio::null())
        .status();
    std::thread::sleep(Duration::from_millis(1500));
    let after = s.sum("secmon_alerts_total");
    let rss = s.sum("process_resident_memory_bytes");
    let alive = s.metrics().contains("secmon_rules_loaded");
    println!(
        "storm: 1,000,000 opens in {:.2} s with a 1 MiB buffer: {events} received, {drops} dropped and counted; sensor alive={alive}, RSS {:.1} MB, alerts after the storm {}",
        t.as_secs_f64(),
        rss / 1e6,
        after - before
    );
    s.stop();
}

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED LOUDLY: the sensor benchmark needs root");
        return;
    }
    let parts = std::env::var("SECMON_BENCH").unwrap_or_else(|_| "overhead,rate,rss,storm".into());
    let want = |p: &str| parts.split(',').any(|x| x == p);
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if want("overhead") {
        overhead();
    }
    if want("rate") {
        rate();
    }
    if want("rss") {
        rss();
    }
    if want("storm") {
        storm();
    }
}
