//! A malformed record or an unknown cgroup layout never crashes the sensor: 100,000
//! pseudo-random records (valid headers with garbage fields, random syscall numbers,
//! strings with binary bytes, truncated and padded buffers) go through the decoder and the
//! enricher over this machine's real /proc, then through the default rules. Deterministic
//! (a fixed xorshift seed), so a failure reproduces.

use secmon::bpf::abi::{self, Header};
use secmon::rules::{self, LoadOptions, Matches};
use secmon::sensor::enrich::{Enricher, EnricherConfig};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max as u64 + 1) as usize;
        (0..n)
            .map(|_| match self.below(4) {
                0 => b'/',
                1 => 0,
                2 => b'a' + self.below(26) as u8,
                _ => self.next() as u8,
            })
            .collect()
    }
}

#[test]
fn random_records_never_crash_decoder_enricher_or_rules() {
    let (ruleset, _) =
        rules::load_files(&rules::default_ruleset_sources(), &LoadOptions::default())
            .expect("default rules load");
    let mut enricher = Enricher::new(EnricherConfig::default(), None);
    enricher.seed();
    let me = std::process::id();
    let mut rng = Rng(0x5ec0_5eed);
    let mut matches = Matches::new();
    let (mut events, mut decode_errors) = (0u64, 0u64);
    for i in 0..100_000u32 {
        let nr = if rng.below(4) == 0 {
            rng.below(500) as u16
        } else {
            abi::SYSCALLS[rng.below(abi::SYSCALLS.len() as u64) as usize].0
        };
        // pids: mostly our own or small ones that exist, sometimes anything
        let pid = match rng.below(3) {
            0 => me,
            1 => 1 + rng.below(200) as u32,
            _ => rng.next() as u32,
        };
        let mut comm = [0u8; 16];
        for b in comm.iter_mut().take(rng.below(17) as usize) {
            *b = rng.next() as u8;
        }
        let hdr = Header {
            kind: 1 + rng.below(6) as u16,
            nr,
            flags: rng.next() as u8,
            category: rng.below(8) as u8,
            ts: rng.next(),
            ret: rng.next() as i64 % 5,
            args: [
                rng.next(),
                rng.below(4),
                rng.next(),
                rng.below(3),
                rng.next(),
                rng.next(),
            ],
            cgroup_id: rng.below(10_000),
            memcg_id: rng.below(10_000),
            cap_eff: rng.next(),
            start_ns: rng.next(),
            tid: pid,
            pid,
            ppid: rng.below(100_000) as u32,
            vpid: rng.next() as u32,
            uid: rng.below(70_000) as u32,
            gid: rng.below(70_000) as u32,
            tty: rng.next() as u32,
            loginuid: rng.next() as u32,
            mntns: rng.next() as u32,
            pidns: rng.next() as u32,
            comm,
        };
        let strs = [rng.bytes(300), rng.bytes(64), rng.bytes(400), rng.bytes(60)];
        let mut bytes = abi::encode(&hdr, [&strs[0], &strs[1], &strs[2], &strs[3]]);
        match rng.below(10) {
            0 => bytes.truncate(rng.below(bytes.len() as u64) as usize),
            1 => {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.next() as u8;
            }
            2 => bytes.extend_from_slice(&[0xff; 13]),
            _ => {}
        }
        match abi::decode(&bytes) {
            Ok(raw) => {
                if let Some(ev) = enricher.apply(&raw) {
                    events += 1;
                    if ruleset.matches(&ev, &mut matches) > 0 {
                        for &id in matches.ids() {
                            let _ =
                                secmon::sensor::alert::Alert::from_match(&ruleset, id, &ev, "h")
                                    .map(|a| a.to_json_line());
                        }
                    }
                }
            }
            Err(e) => {
                decode_errors += 1;
                assert!(!e.to_string().contains('\n'), "one-line error: {e}");
            }
        }
        if i % 50_000 == 0 {
            assert!(enricher.table().len() <= 65_536, "process table bounded");
        }
    }
    assert!(events > 25_000, "most records make events ({events})");
    assert!(
        decode_errors > 1_000,
        "malformed records are refused ({decode_errors})"
    );
}
