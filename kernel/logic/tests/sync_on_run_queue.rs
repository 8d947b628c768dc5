//! `sirocco::sync`'s types (embassy-sync's Channel, Signal and Mutex, re-exported by the target-only `sirocco`
//! crate) driven by this crate's run queue, as apps use them across tasks: a producer and consumers through a
//! bounded channel (the producer waits while it is full), answers on a signal, an async mutex held across an await.
//! On the host, `critical-section`'s std implementation stands in for the kernel's empty one.

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex as RawMutex;
use embassy_sync::channel::Channel;
use embassy_sync::mutex::Mutex;
use embassy_sync::signal::Signal;
use sirocco_kernel_logic::task::Executor;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `fut` beside the executor's tasks, as the kernel's run loop does; panics when nothing can progress.
fn block_on<F: Future>(ex: &'static Executor, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let woken = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if woken.0.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
        }
        if ex.run_ready() == 0 && !woken.0.load(Ordering::SeqCst) {
            panic!("stalled: no task is ready and nothing woke the awaited future");
        }
    }
}

fn executor() -> &'static Executor {
    Box::leak(Box::new(Executor::new(|| {})))
}

#[test]
fn a_bounded_channel_carries_every_job_between_tasks_and_backpressures_the_producer() {
    static JOBS: Channel<RawMutex, u32, 4> = Channel::new();
    static DONE: Signal<RawMutex, (u32, u64)> = Signal::new();
    let ex = executor();
    // Two consumers share the sum through an async mutex; the producer sends 1000 jobs into 4 slots.
    let total: &'static Mutex<RawMutex, (u32, u64)> = Box::leak(Box::new(Mutex::new((0, 0))));
    for _ in 0..2 {
        ex.spawn(async move {
            loop {
                let job = JOBS.receive().await;
                let mut t = total.lock().await;
                t.0 += 1;
                t.1 += u64::from(job);
                if t.0 == 1000 {
                    DONE.signal(*t);
                }
            }
        });
    }
    let producer = ex.spawn(async {
        let mut waited = 0;
        for job in 1..=1000u32 {
            if JOBS.try_send(job).is_err() {
                waited += 1;
                JOBS.send(job).await;
            }
        }
        waited
    });
    let (count, sum) = block_on(ex, DONE.wait());
    assert_eq!((count, sum), (1000, 500_500), "every job arrived once");
    let waited = block_on(ex, producer).expect("the producer finished");
    assert!(waited > 0, "4 slots for 1000 jobs: the producer must have waited for room");
}

#[test]
fn a_mutex_held_across_an_await_keeps_others_out_until_released() {
    static GATE: Signal<RawMutex, ()> = Signal::new();
    let ex = executor();
    let shared: &'static Mutex<RawMutex, Vec<&'static str>> = Box::leak(Box::new(Mutex::new(Vec::new())));
    let holder = ex.spawn(async move {
        let mut v = shared.lock().await;
        v.push("holder in");
        GATE.wait().await; // holds the lock across this await
        v.push("holder out");
    });
    let other = ex.spawn(async move { shared.lock().await.push("other") });
    while ex.run_ready() > 0 {}
    assert!(!other.is_finished(), "the second task got the lock while the first held it");
    GATE.signal(());
    block_on(ex, other).unwrap();
    block_on(ex, holder).unwrap();
    assert_eq!(*block_on(ex, shared.lock()), ["holder in", "holder out", "other"]);
}
