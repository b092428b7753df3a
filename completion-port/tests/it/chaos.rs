//! Chaos: 10^5 operations with random cancels, handle closes and a port close from several
//! threads. Every context is accounted for exactly once: docs/semantics.md H2, H5, H6, P8, P10.

use crate::common::DropCounter;
use crate::net::pair;
use completion_port::{CompletionPort, GetError, Handle, OpId};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const OPS: u64 = 100_000;
const SUBMITTERS: u64 = 4;
const SLOTS: usize = 24;

/// xorshift64*: a deterministic stream per thread, enough to scramble the schedule.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

type Slot = Option<(Arc<Handle<DropCounter>>, Arc<TcpStream>)>;

// Rule H2, H5, H6, P8, P10: every accepted operation yields exactly one packet (seen by
// a worker or by drain); every refused one hands its context back; no panic, no hang.
#[test]
fn chaos_every_context_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let port = CompletionPort::<DropCounter>::new(3);
    // outcome[id]: 1 = delivered to a worker, 2 = drained, 3 = refused (context handed
    // back), 4 = no handle in the slot (no context made). Set exactly once.
    let outcome: Arc<Vec<AtomicU64>> = Arc::new((0..OPS).map(|_| AtomicU64::new(0)).collect());
    let record = |outcome: &Vec<AtomicU64>, id: u64, how: u64| {
        let prev = outcome[id as usize].swap(how, Ordering::SeqCst);
        assert_eq!(prev, 0, "context {id} accounted twice ({prev} then {how})");
    };
    let slots: Arc<Mutex<Vec<Slot>>> = Arc::new(Mutex::new(
        (0..SLOTS)
            .map(|k| {
                let (h, p) = pair(&port, k);
                Some((Arc::new(h), Arc::new(p)))
            })
            .collect(),
    ));

    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (port, outcome) = (port.clone(), Arc::clone(&outcome));
            thread::spawn(move || {
                let mut batch = Vec::new();
                loop {
                    batch.clear();
                    match port.get_many_into(&mut batch, 16, Some(Duration::from_millis(2))) {
                        Ok(_) => {
                            for p in batch.drain(..) {
                                record(&outcome, p.context.id, 1);
                            }
                        }
                        Err(GetError::TimedOut) => {}
                        Err(GetError::Closed) => return,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();

    let next_id = Arc::new(AtomicU64::new(0));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let (port, outcome, slots, drops, next_id) = (
                port.clone(),
                Arc::clone(&outcome),
                Arc::clone(&slots),
                Arc::clone(&drops),
                Arc::clone(&next_id),
            );
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
                let mut recent: Vec<(Arc<Handle<DropCounter>>, OpId<DropCounter>)> = Vec::new();
                loop {
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    if id >= OPS {
                        return;
                    }
                    if id == OPS * 3 / 4 {
                        port.close(); // a port close in the middle of the storm
                    }
                    let k = (rng.next() % SLOTS as u64) as usize;
                    let slot = slots.lock().unwrap()[k].clone();
                    let Some((h, peer)) = slot else {
                        record(&outcome, id, 4); // nothing to submit on: no context made
                        continue;
                    };
                    let ctx = DropCounter::new(id, &drops);
                    let r = match rng.next() % 100 {
                        0..=54 => h.recv(Vec::with_capacity(64), ctx),
                        55..=64 => h.recv(Vec::new(), ctx),
                        _ => h.send(vec![0u8; 32], ctx),
                    };
                    match r {
                        Ok(op) => recent.push((Arc::clone(&h), op)),
                        Err(e) => record(&outcome, e.context.id, 3),
                    }
                    match rng.next() % 100 {
                        0..=14 => {
                            if let Some((h, op)) = recent.pop() {
                                let _ = h.cancel(&op);
                            }
                        }
                        15..=17 => {
                            let _ = h.cancel_all();
                        }
                        18..=20 => {
                            // Close the handle (its receives are cancelled) and replace it.
                            let fresh = if port.is_closed() {
                                None
                            } else {
                                port_pair(&port, k).map(|(h, p)| (Arc::new(h), Arc::new(p)))
                            };
                            slots.lock().unwrap()[k] = fresh;
                        }
                        21..=40 => {
                            let _ = (&*peer).write(&[1u8; 48]);
                        }
                        _ => {}
                    }
                    if recent.len() > 64 {
                        recent.drain(..32);
                    }
                }
            })
        })
        .collect();

    let start = Instant::now();
    for s in submitters {
        s.join().unwrap();
    }
    port.close();
    for w in workers {
        w.join().unwrap();
    }
    slots.lock().unwrap().clear(); // drop every handle: their operations are cancelled
    for p in port.drain() {
        record(&outcome, p.context.id, 2);
    }
    assert!(start.elapsed() < Duration::from_secs(120), "chaos took {:?}", start.elapsed());
    let missing: Vec<u64> =
        (0..OPS).filter(|&i| outcome[i as usize].load(Ordering::SeqCst) == 0).take(5).collect();
    assert!(missing.is_empty(), "contexts never accounted for: {missing:?}");
    drop(port);
    let count = |how: u64| outcome.iter().filter(|o| o.load(Ordering::SeqCst) == how).count();
    let (delivered, drained, refused, skipped) = (count(1), count(2), count(3), count(4));
    eprintln!("chaos: delivered {delivered} drained {drained} refused {refused} skipped {skipped}");
    assert_eq!(delivered + drained + refused + skipped, OPS as usize);
    assert!(delivered > 0 && drained + refused > 0, "the storm did not reach both sides of the close");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        delivered + drained + refused,
        "a context leaked or was dropped twice"
    );
}

fn port_pair(port: &CompletionPort<DropCounter>, key: usize) -> Option<(Handle<DropCounter>, TcpStream)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    let peer = TcpStream::connect(listener.local_addr().ok()?).ok()?;
    let (ours, _) = listener.accept().ok()?;
    Some((port.associate(ours, key).ok()?, peer))
}
