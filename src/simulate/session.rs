//! A whole `simulate run` or `simulate verify` (Linux): scenarios one after another, each
//! with its own correlation id, and for verification a reader of the sensor's alerts
//! running alongside from before the first scenario until every expected alert is in or
//! the timeout has passed. Ctrl-C (or SIGTERM) stops between scenarios; whatever was made
//! is removed either way. Also the load mode's driver.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::catalogue::Scenario;
use super::load::{LoadStep, fetch_metrics, parse_metrics};
use super::runner::{ContainerHold, RunConfig, missing_context, now_ns, run_scenario};
use super::verify::{
    Received, RunOutcome, SIM_ID_PREFIX, ScenarioRun, Status, carries, container_identity,
    evaluate, settled, sim_id,
};
use crate::sensor::alert::Decoded;
use crate::sensor::follow::{self, AlertSink};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Take SIGINT and SIGTERM: they stop the session between scenarios instead of killing it
/// half-way, so that clean-up always runs.
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Where verification reads alerts.
#[derive(Debug, Clone)]
pub enum AlertSource {
    /// The sensor's `/alerts` stream at this address.
    Local(String),
    /// A JSON-lines file the sensor (or Falco) writes, followed as it grows.
    File(PathBuf),
}

impl AlertSource {
    pub fn describe(&self) -> String {
        match self {
            AlertSource::Local(a) => follow::alerts_url(a, None),
            AlertSource::File(p) => p.display().to_string(),
        }
    }
}

/// Run the scenarios one after another (stops early when interrupted). The containers'
/// cgroups are removed when the returned holds are dropped.
pub fn run_all(
    scenarios: &[&'static Scenario],
    run_id: &str,
    cfg: &RunConfig,
) -> (Vec<ScenarioRun>, Vec<ContainerHold>) {
    let mut runs = Vec::new();
    let mut holds = Vec::new();
    for (i, sc) in scenarios.iter().enumerate() {
        if interrupted() {
            break;
        }
        let (run, hold) = run_scenario(sc, &sim_id(run_id, i + 1), cfg);
        runs.push(run);
        holds.extend(hold);
    }
    (runs, holds)
}

/// Keeps the alerts that can belong to this run.
struct Collector {
    run_marker: String,
    /// The run's containers (12 hex); `None`: keep every container's alerts.
    containers: Option<Vec<String>>,
    out: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl AlertSink for Collector {
    fn take(&mut self, d: Decoded) {
        let Decoded::Alert(a) = d else { return };
        let ours = a
            .field_str("container.id")
            .is_some_and(|c| match &self.containers {
                Some(list) => list.iter().any(|x| x == c),
                None => c != "host",
            })
            || carries(&a, &self.run_marker);
        if ours {
            let r = Received {
                alert: *a,
                received_ns: now_ns(),
            };
            self.out.lock().unwrap_or_else(|e| e.into_inner()).push(r);
        }
    }

    fn done(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn stops_on_ctrl_c(&self) -> bool {
        false
    }
}

/// What a verification collected.
#[derive(Debug)]
pub struct Verification {
    pub runs: Vec<ScenarioRun>,
    pub received: Vec<Received>,
}

/// Check that the source can be read before any scenario runs. `Err` is one line.
fn check_source(source: &AlertSource) -> Result<(), String> {
    match source {
        AlertSource::Local(addr) => fetch_metrics(addr).map(|_| ()).map_err(|e| {
            e.replace(
                "cannot read the sensor's metrics",
                "cannot reach the sensor",
            )
        }),
        AlertSource::File(p) => std::fs::File::open(p).map(|_| ()).map_err(|e| {
            format!(
                "cannot read alerts file {}: {e}; start the sensor with --alerts-file {} first",
                p.display(),
                p.display()
            )
        }),
    }
}

/// Run the scenarios while reading alerts from `source`, then wait until each ran
/// scenario's alerts are in or `timeout` has passed since it ended (and a moment more for
/// stragglers, so that unexpected alerts are seen too). `Err` is one line.
pub fn verify_all(
    scenarios: &[&'static Scenario],
    run_id: &str,
    cfg: &RunConfig,
    source: &AlertSource,
    timeout: Duration,
) -> Result<Verification, String> {
    check_source(source)?;
    let out = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut collector = Collector {
        run_marker: format!("{SIM_ID_PREFIX}{run_id}-"),
        containers: Some(
            (1..=scenarios.len())
                .map(|i| container_identity(&sim_id(run_id, i)).0[..12].to_string())
                .collect(),
        ),
        out: out.clone(),
        stop: stop.clone(),
    };
    let src = source.clone();
    let reader = std::thread::spawn(move || match &src {
        // The backlog of the last seconds covers alerts raised before the stream is up.
        AlertSource::Local(addr) => {
            follow::follow_local(addr, Some(Duration::from_secs(30)), &mut collector)
        }
        AlertSource::File(p) => follow::follow_file(p, &mut collector),
    });
    let (runs, holds) = run_all(scenarios, run_id, cfg);
    let grace = Duration::from_millis(500).min(timeout);
    let mut settled_at: Option<Instant> = None;
    loop {
        if interrupted() || reader.is_finished() {
            break;
        }
        let done = {
            let got = out.lock().unwrap_or_else(|e| e.into_inner());
            settled(&runs, &got, cfg.ruleset, now_ns(), timeout)
        };
        match (done, settled_at) {
            (true, None) => settled_at = Some(Instant::now()),
            (true, Some(t)) if t.elapsed() >= grace => break,
            (false, _) => settled_at = None,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    drop(holds);
    let ended = reader
        .join()
        .map_err(|_| "the alert reader crashed".to_string())?;
    if let Err(e) = ended {
        return Err(format!("{e:#}"));
    }
    if interrupted() {
        return Err(format!(
            "interrupted after {} of {} scenarios; everything they made was removed",
            runs.len(),
            scenarios.len()
        ));
    }
    let received = std::mem::take(&mut *out.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Verification { runs, received })
}

/// Load mode: for each rate, run the scenarios round-robin at that many per second for
/// `duration`, reading the sensor's metrics at `metrics_addr` before, every second, and
/// after. Scenarios that are slow by design or cannot run here are left out. `Err` is one
/// line.
pub fn load(
    scenarios: &[&'static Scenario],
    run_id: &str,
    cfg: &RunConfig,
    rates: &[f64],
    duration: Duration,
    metrics_addr: &str,
) -> Result<(Vec<&'static str>, Vec<LoadStep>), String> {
    let rotation: Vec<&'static Scenario> = scenarios
        .iter()
        .copied()
        .filter(|s| !s.slow && missing_context(s, cfg).is_none())
        .collect();
    if rotation.is_empty() {
        return Err(
            "no scenario can run in load mode here (slow ones are left out; see `simulate run` for why others skip)"
                .into(),
        );
    }
    fetch_metrics(metrics_addr)?;
    let out = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut collector = Collector {
        run_marker: format!("{SIM_ID_PREFIX}{run_id}-"),
        containers: None,
        out: out.clone(),
        stop: stop.clone(),
    };
    let addr = metrics_addr.to_string();
    let reader = std::thread::spawn(move || {
        follow::follow_local(&addr, Some(Duration::from_secs(30)), &mut collector)
    });
    let result = load_steps(&rotation, run_id, cfg, rates, duration, metrics_addr, &out);
    stop.store(true, Ordering::SeqCst);
    let _ = reader.join();
    Ok((rotation.iter().map(|s| s.name).collect(), result?))
}

#[allow(clippy::too_many_arguments)]
fn load_steps(
    rotation: &[&'static Scenario],
    run_id: &str,
    cfg: &RunConfig,
    rates: &[f64],
    duration: Duration,
    metrics_addr: &str,
    received: &Mutex<Vec<Received>>,
) -> Result<Vec<LoadStep>, String> {
    // Containers' cgroups stay a moment after their scenario, as in verification, so the
    // sensor can still place exited processes in their containers.
    let mut holds: std::collections::VecDeque<(Instant, ContainerHold)> = Default::default();
    let linger = Duration::from_secs(2);
    let mut steps = Vec::new();
    let mut n = 0usize;
    for &rate in rates {
        if interrupted() {
            break;
        }
        let before = parse_metrics(&fetch_metrics(metrics_addr)?);
        let mut max_rss = before.rss_bytes;
        let start = Instant::now();
        let mut next_sample = start + Duration::from_secs(1);
        let (mut ran, mut errors) = (0usize, 0usize);
        let mut runs = Vec::new();
        let mut i = 0u64;
        loop {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if now >= start + duration || interrupted() {
                break;
            }
            if due > now {
                std::thread::sleep((due - now).min(start + duration - now));
                continue;
            }
            let sc = rotation[n % rotation.len()];
            n += 1;
            i += 1;
            let (r, hold) = run_scenario(sc, &sim_id(run_id, n), cfg);
            runs.push(r.clone());
            holds.extend(hold.map(|h| (Instant::now(), h)));
            while holds.front().is_some_and(|(t, _)| t.elapsed() >= linger) {
                holds.pop_front();
            }
            ran += 1;
            if matches!(r.outcome, RunOutcome::Error(_)) {
                errors += 1;
            }
            if Instant::now() >= next_sample {
                if let Ok(m) = fetch_metrics(metrics_addr) {
                    max_rss = max_rss.max(parse_metrics(&m).rss_bytes);
                }
                next_sample += Duration::from_secs(1);
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let after = parse_metrics(&fetch_metrics(metrics_addr)?);
        // The step's last alerts: until every run has its alerts, at most a few seconds.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_secs(5) && !interrupted() {
            let got = received.lock().unwrap_or_else(|e| e.into_inner());
            if settled(&runs, &got, cfg.ruleset, now_ns(), Duration::from_secs(5)) {
                break;
            }
            drop(got);
            std::thread::sleep(Duration::from_millis(50));
        }
        let results = {
            let got = received.lock().unwrap_or_else(|e| e.into_inner());
            evaluate(&runs, &got, cfg.ruleset, true)
        };
        let detected = results
            .iter()
            .filter(|r| r.status == Status::Detected)
            .count();
        let mut step = LoadStep::from_samples(
            rate, elapsed, ran, errors, detected, &before, &after, max_rss,
        );
        for r in results.iter().filter(|r| r.status == Status::Missed) {
            *step.missed.entry(r.scenario.to_string()).or_default() += 1;
        }
        steps.push(step);
    }
    Ok(steps)
}
