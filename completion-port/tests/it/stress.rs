//! Many posters, many getters, every packet exactly once: docs/semantics.md P5, P7, P9, P10.

use completion_port::{CompletionPort, GetError};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// One configuration of the stress run.
struct Config {
    posters: usize,
    getters: usize,
    concurrency: usize,
    packets: usize,
    batch: usize,
}

fn run(cfg: &Config) {
    let port = CompletionPort::<u64>::new(cfg.concurrency);
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..cfg.packets).map(|_| AtomicU8::new(0)).collect());
    let received = Arc::new(AtomicUsize::new(0));
    let checksum = Arc::new(AtomicU64::new(0));
    let per_poster = cfg.packets / cfg.posters;
    assert_eq!(per_poster * cfg.posters, cfg.packets);

    let getters: Vec<_> = (0..cfg.getters)
        .map(|g| {
            let (port, seen, received, checksum) =
                (port.clone(), Arc::clone(&seen), Arc::clone(&received), Arc::clone(&checksum));
            let batch = cfg.batch;
            thread::spawn(move || {
                let mut out = Vec::with_capacity(batch);
                let mut round = 0u32;
                loop {
                    round = round.wrapping_add(1);
                    // Vary timeouts: polls, short waits and unbounded waits.
                    let timeout = match (round + g as u32) % 4 {
                        0 => Some(Duration::ZERO),
                        1 => Some(Duration::from_micros(200)),
                        2 => Some(Duration::from_millis(5)),
                        _ => None,
                    };
                    out.clear();
                    match port.get_many_into(&mut out, batch, timeout) {
                        Ok(_) => {
                            let mut sum = 0u64;
                            for p in &out {
                                let id = p.context;
                                assert_eq!(p.key as u64, id % 7);
                                assert_eq!(p.bytes().unwrap() as u64, id % 4096);
                                let before = seen[id as usize].fetch_add(1, Ordering::Relaxed);
                                assert_eq!(before, 0, "packet {id} delivered twice");
                                sum = sum.wrapping_add(id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                            }
                            checksum.fetch_add(sum, Ordering::Relaxed);
                            received.fetch_add(out.len(), Ordering::SeqCst);
                        }
                        Err(GetError::TimedOut) => {}
                        Err(GetError::Closed) => return,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            })
        })
        .collect();

    let posters: Vec<_> = (0..cfg.posters)
        .map(|p| {
            let port = port.clone();
            thread::spawn(move || {
                let base = (p * per_poster) as u64;
                for id in base..base + per_poster as u64 {
                    port.post((id % 7) as usize, (id % 4096) as usize, id).unwrap();
                }
            })
        })
        .collect();
    for p in posters {
        p.join().unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::SeqCst) < cfg.packets {
        assert!(std::time::Instant::now() < deadline, "packets stopped flowing");
        thread::sleep(Duration::from_millis(2));
    }
    port.close();
    for g in getters {
        g.join().unwrap();
    }
    assert!(port.drain().is_empty());
    assert_eq!(received.load(Ordering::SeqCst), cfg.packets);
    assert!(seen.iter().all(|s| s.load(Ordering::Relaxed) == 1), "a packet was lost");
    let expected =
        (0..cfg.packets as u64).fold(0u64, |a, id| a.wrapping_add(id.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    assert_eq!(checksum.load(Ordering::Relaxed), expected, "checksum mismatch");
}

// Rule P5, P7, P9: 10^6 packets across several posters and getters, varied timeouts and
// concurrency limits; every packet delivered exactly once (count, bitmap and checksum).
#[test]
fn stress_million_packets_exactly_once() {
    let configs = [
        Config { posters: 4, getters: 4, concurrency: 2, packets: 400_000, batch: 1 },
        Config { posters: 2, getters: 6, concurrency: 1, packets: 200_000, batch: 8 },
        Config { posters: 3, getters: 3, concurrency: 8, packets: 300_000, batch: 1 },
        Config { posters: 1, getters: 2, concurrency: 0, packets: 100_000, batch: 32 },
    ];
    assert_eq!(configs.iter().map(|c| c.packets).sum::<usize>(), 1_000_000);
    for cfg in &configs {
        run(cfg);
    }
}
