//! Host throughput of Sirocco's executor vs embassy-executor on identical workloads (src/lib.rs).
//!
//!   throughput                      full suite: every workload, both executors, median of RUNS runs
//!   throughput one WORKLOAD EXEC N OPS   one run, prints ns/op (used under callgrind)
//!
//! WORKLOAD: ring (N tasks pass a token; op = hop = one wake + one poll), ext (one task woken from outside
//! the executor, with N parked idle tasks beside it; op = wake + poll until idle), fanout (one outside event
//! makes all N tasks ready at once; op = one task's wake + poll), spawn (op = spawn a task that
//! finishes on its first poll, and run it). EXEC: sirocco | embassy (one `#[task]` fn per task kind) |
//! embassy-boxed (every task a `Pin<Box<dyn Future + Send>>` in one `#[task]` pool: Sirocco's spawn API).
//!
//! embassy runs on its raw executor with a `__pender` that raises a flag, exactly the custom platform a Xen PV
//! port would need (platform-std's pender takes a Mutex+Condvar on every empty->ready transition instead).

use core::sync::atomic::{AtomicBool, Ordering::*};
use embassy_executor::raw;
use executor_bench::*;
use executor_bench::sirocco_executor::Executor as SiroccoExecutor;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

static PENDING: AtomicBool = AtomicBool::new(false);

#[export_name = "__pender"]
fn pender(_context: *mut ()) {
    PENDING.store(true, Release);
}

const MAX_RING: usize = 1024;
const MAX_PARKED: usize = 1024;

#[embassy_executor::task(pool_size = MAX_RING)]
async fn e_ring(me: &'static Signal, next: &'static Signal) {
    ring_node(me, next, false).await
}
#[embassy_executor::task]
async fn e_ext(me: &'static Signal) {
    external_waiter(me).await
}
#[embassy_executor::task(pool_size = MAX_PARKED)]
async fn e_parked(stop: &'static Signal) {
    parked(stop).await
}
#[embassy_executor::task(pool_size = MAX_RING)]
async fn e_fan(me: &'static Signal) {
    fan_member(me).await
}
#[embassy_executor::task]
async fn e_trivial() {
    trivial().await
}
/// One task type for any future, boxed: keeps Sirocco's `spawn(impl Future)` API on top of embassy's
/// static pools (bounded by the pool size, one allocation per spawn).
#[embassy_executor::task(pool_size = MAX_RING + 8)]
async fn e_boxed(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    f.await
}

/// Spawns on embassy: the task's own `#[task]` fn (`typed`), or the boxed trampoline when `boxed`.
macro_rules! espawn {
    ($ex:expr, $boxed:expr, $typed:expr, $fut:expr) => {
        if $boxed {
            $ex.spawner().spawn(e_boxed(Box::pin($fut)).unwrap())
        } else {
            $ex.spawner().spawn($typed.unwrap())
        }
    };
}

fn signals(n: usize) -> &'static [Signal] {
    Box::leak((0..n).map(|_| Signal::new()).collect::<Vec<_>>().into_boxed_slice())
}

fn embassy_executor() -> &'static raw::Executor {
    Box::leak(Box::new(raw::Executor::new(core::ptr::null_mut())))
}

/// Polls until nothing is ready: the point where Sirocco would sleep in the hypervisor.
fn embassy_drain(ex: &'static raw::Executor) {
    while PENDING.swap(false, AcqRel) {
        unsafe { ex.poll() };
    }
}
fn sirocco_drain(ex: &mut SiroccoExecutor) {
    while ex.run_ready(64) > 0 {}
}

#[derive(Clone, Copy, PartialEq)]
enum Exec {
    Sirocco,
    Embassy { boxed: bool },
}

/// Runs one workload once; returns (operations done, seconds spent in the run loop).
fn run(workload: &str, exec: Exec, n: usize, ops: u64) -> (u64, f64) {
    reset(ops);
    PENDING.store(false, Relaxed);
    match workload {
        "ring" => {
            assert!((2..=MAX_RING).contains(&n));
            let sigs = signals(n);
            let t;
            match exec {
                Exec::Sirocco => {
                    let mut ex = SiroccoExecutor::new();
                    for i in 0..n {
                        ex.spawner().spawn(ring_node(&sigs[i], &sigs[(i + 1) % n], false));
                    }
                    sirocco_drain(&mut ex); // first poll of every task: all park on their signal
                    let start = Instant::now();
                    sigs[0].signal();
                    sirocco_drain(&mut ex);
                    t = start.elapsed().as_secs_f64();
                    assert_eq!(ex.task_count(), 0);
                }
                Exec::Embassy { boxed } => {
                    let ex = embassy_executor();
                    for i in 0..n {
                        espawn!(ex, boxed, e_ring(&sigs[i], &sigs[(i + 1) % n]), ring_node(&sigs[i], &sigs[(i + 1) % n], false));
                    }
                    embassy_drain(ex);
                    let start = Instant::now();
                    sigs[0].signal();
                    embassy_drain(ex);
                    t = start.elapsed().as_secs_f64();
                }
            }
            assert_eq!(DONE.load(Relaxed), n as u64, "every ring task finished");
            (HOPS.load(Relaxed), t)
        }
        "ext" => {
            assert!(n <= MAX_PARKED);
            let me = signals(1);
            let stops = signals(n);
            let t;
            match exec {
                Exec::Sirocco => {
                    let mut ex = SiroccoExecutor::new();
                    for s in stops {
                        ex.spawner().spawn(parked(s));
                    }
                    ex.spawner().spawn(external_waiter(&me[0]));
                    sirocco_drain(&mut ex);
                    let start = Instant::now();
                    for _ in 0..ops {
                        me[0].signal(); // the "event": arrives from outside any task
                        sirocco_drain(&mut ex);
                    }
                    t = start.elapsed().as_secs_f64();
                    stops.iter().for_each(Signal::signal);
                    sirocco_drain(&mut ex);
                    assert_eq!(ex.task_count(), 0);
                }
                Exec::Embassy { boxed } => {
                    let ex = embassy_executor();
                    for s in stops {
                        espawn!(ex, boxed, e_parked(s), parked(s));
                    }
                    espawn!(ex, boxed, e_ext(&me[0]), external_waiter(&me[0]));
                    embassy_drain(ex);
                    let start = Instant::now();
                    for _ in 0..ops {
                        me[0].signal();
                        embassy_drain(ex);
                    }
                    t = start.elapsed().as_secs_f64();
                    stops.iter().for_each(Signal::signal);
                    embassy_drain(ex);
                }
            }
            assert_eq!(DONE.load(Relaxed), n as u64 + 1, "waiter and parked tasks finished");
            (HOPS.load(Relaxed), t)
        }
        "fanout" => {
            assert!((1..=MAX_RING).contains(&n));
            let sigs = signals(n);
            let rounds = ops.div_ceil(n as u64);
            let t;
            match exec {
                Exec::Sirocco => {
                    let mut ex = SiroccoExecutor::new();
                    for s in sigs {
                        ex.spawner().spawn(fan_member(s));
                    }
                    sirocco_drain(&mut ex);
                    let start = Instant::now();
                    for _ in 0..rounds {
                        sigs.iter().for_each(Signal::signal); // one event makes all n ready at once
                        sirocco_drain(&mut ex);
                    }
                    t = start.elapsed().as_secs_f64();
                    STOP.store(true, Relaxed);
                    sigs.iter().for_each(Signal::signal);
                    sirocco_drain(&mut ex);
                    assert_eq!(ex.task_count(), 0);
                }
                Exec::Embassy { boxed } => {
                    let ex = embassy_executor();
                    for s in sigs {
                        espawn!(ex, boxed, e_fan(s), fan_member(s));
                    }
                    embassy_drain(ex);
                    let start = Instant::now();
                    for _ in 0..rounds {
                        sigs.iter().for_each(Signal::signal);
                        embassy_drain(ex);
                    }
                    t = start.elapsed().as_secs_f64();
                    STOP.store(true, Relaxed);
                    sigs.iter().for_each(Signal::signal);
                    embassy_drain(ex);
                }
            }
            assert_eq!(DONE.load(Relaxed), n as u64, "every fan task finished");
            assert_eq!(HOPS.load(Relaxed), rounds * n as u64);
            (HOPS.load(Relaxed), t)
        }
        "spawn" => {
            let start;
            match exec {
                Exec::Sirocco => {
                    let mut ex = SiroccoExecutor::new();
                    let sp = ex.spawner();
                    start = Instant::now();
                    for _ in 0..ops {
                        sp.spawn(trivial());
                        sirocco_drain(&mut ex);
                    }
                }
                Exec::Embassy { boxed } => {
                    let ex = embassy_executor();
                    start = Instant::now();
                    for _ in 0..ops {
                        espawn!(ex, boxed, e_trivial(), trivial());
                        embassy_drain(ex);
                    }
                }
            }
            let t = start.elapsed().as_secs_f64();
            assert_eq!(DONE.load(Relaxed), ops);
            (ops, t)
        }
        w => panic!("unknown workload {w}"),
    }
}

fn exec_of(s: &str) -> Exec {
    match s {
        "sirocco" => Exec::Sirocco,
        "embassy" => Exec::Embassy { boxed: false },
        "embassy-boxed" => Exec::Embassy { boxed: true },
        e => panic!("unknown executor {e}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("one") {
        let (w, e, n, ops) = (&args[1], exec_of(&args[2]), args[3].parse().unwrap(), args[4].parse().unwrap());
        let (done, t) = run(w, e, n, ops);
        println!("{w} {} n={n} ops={done} ns/op={:.1}", args[2], t * 1e9 / done as f64);
        return;
    }
    let runs: usize = std::env::var("RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let ops: u64 = std::env::var("OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let cases: &[(&str, usize, u64)] = &[
        ("ring", 2, ops),
        ("ring", 8, ops),
        ("ring", 64, ops),
        ("ring", 1024, ops),
        ("ext", 0, ops),
        ("ext", 1000, ops),
        ("fanout", 8, ops),
        ("fanout", 64, ops),
        ("fanout", 1024, ops),
        ("spawn", 0, ops),
    ];
    println!("median of {runs} runs; ops per run ~{ops}");
    println!(
        "{:<6} {:>5} | {:>12} {:>7} | {:>12} {:>7} | {:>12} {:>7} | {:>9}",
        "work", "n", "sirocco op/s", "ns/op", "embassy op/s", "ns/op", "emb+Box op/s", "ns/op", "sir/emb"
    );
    for &(w, n, ops) in cases {
        let mut med = [0f64; 3];
        let execs = [Exec::Sirocco, Exec::Embassy { boxed: false }, Exec::Embassy { boxed: true }];
        for (k, e) in execs.into_iter().enumerate() {
            let _ = run(w, e, n, ops / 10); // warm-up
            let mut v: Vec<f64> = (0..runs)
                .map(|_| {
                    let (done, t) = run(w, e, n, ops);
                    t * 1e9 / done as f64
                })
                .collect();
            v.sort_by(f64::total_cmp);
            med[k] = v[runs / 2];
        }
        println!(
            "{:<6} {:>5} | {:>12.0} {:>7.1} | {:>12.0} {:>7.1} | {:>12.0} {:>7.1} | {:>9.2}",
            w,
            n,
            1e9 / med[0],
            med[0],
            1e9 / med[1],
            med[1],
            1e9 / med[2],
            med[2],
            med[0] / med[1]
        );
    }
}
