//! Matching allocates nothing per event: after one warm-up pass, running the default
//! ruleset plus Falco's stable rules over recorded events (matches and misses, every
//! assembled field such as proc.cmdline and thread.cap_effective) makes zero heap
//! allocations. Counted with a global allocator; this file holds a single test so that no
//! other test thread allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use secmon::rules::{self, Event, HostResolver, LoadOptions, Matches, RuleMatching};
use serde::Deserialize;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Deserialize)]
struct Case {
    event: Event,
}

#[test]
fn matching_does_not_allocate() {
    let mut files = rules::default_ruleset_sources();
    let stable = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/falco-rules/falco_rules.yaml"
    );
    if let Ok(t) = std::fs::read_to_string(stable) {
        files.insert(0, ("falco_rules.yaml".into(), t));
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{stable} missing under CI");
    }
    let options = LoadOptions {
        rule_matching: RuleMatching::All,
        resolver: HostResolver::Disabled,
        ..LoadOptions::default()
    };
    let (rs, _) = rules::load_files(&files, &options).unwrap();
    let mut events: Vec<Event> = Vec::new();
    for text in [
        include_str!("fixtures/rules/secmon_cases.jsonl"),
        include_str!("fixtures/rules/falco_stable_cases.jsonl"),
    ] {
        for line in text.lines().filter(|l| l.starts_with('{')) {
            events.push(serde_json::from_str::<Case>(line).unwrap().event);
        }
    }
    let mut out = Matches::new();
    let mut warm = 0;
    for e in &events {
        warm += rs.matches(e, &mut out);
    }
    assert!(
        warm > 50,
        "the recorded events should match many rules ({warm})"
    );
    COUNTING.store(true, Ordering::SeqCst);
    let mut total = 0;
    for _ in 0..3 {
        for e in &events {
            total += rs.matches(e, &mut out);
        }
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(total, 3 * warm);
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        0,
        "heap allocations while matching"
    );
}
