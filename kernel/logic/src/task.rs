//! Tasks and their run queue. Every spawned future is one heap allocation (async-task's task cell: the future,
//! then its output, and the abort flags its handle shares with the run queue), so the number of tasks alive at
//! once is bounded by the heap alone. The platform's run loop calls [`Executor::run_ready`] after the executor's
//! `on_ready` hook has told it that a task was queued, and sleeps otherwise.
//!
//! [`Executor::spawn`] returns a [`JoinHandle`]: awaiting it gives the task's output, [`JoinHandle::abort`]
//! cancels the task, and dropping it detaches the task, which runs on.
//!
//! Panics: Sirocco's target is built with `panic = "abort"`, so a task that panics ends the domain through the
//! panic handler; nothing unwinds, and no [`JoinHandle`] ever reports a panic (hence [`JoinError`] has no such
//! case). On the host, where tests unwind, the panic propagates out of [`Executor::run_ready`] (async-task closes
//! the task first).

use alloc::collections::VecDeque;
use async_task::{Builder, Runnable, Task};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};
use sirocco_boot_logic::trace::{self, Category};

/// What a task's [`JoinHandle`] and the run queue share, kept in the task's own allocation (async-task's metadata).
#[derive(Debug, Default)]
struct TaskState {
    /// The task's number, from 1 in the order spawned: the value of its `task poll` spans in the trace.
    id: u64,
    /// [`JoinHandle::abort`] was called: the run queue drops the task instead of polling it.
    abort_requested: AtomicBool,
    /// The run queue dropped the task unfinished: awaiting its handle gives [`JoinError::Cancelled`].
    cancelled: AtomicBool,
}

/// How many tasks there are, for statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Spawned tasks whose future has neither finished nor been dropped (by an abort).
    pub alive: usize,
    /// Tasks spawned since the executor was made.
    pub spawned: u64,
}

/// The run queue of tasks ready to be polled, and the counters. `new` is `const`, so it sits in a `static`, and
/// each task refers to it as a plain `&'static` (no reference count).
///
/// It is built for one thread of execution (Sirocco's run loop on its one vCPU): the queue is behind a lock, so it
/// is sound from anywhere, but [`Executor::run_ready`] is meant to be called from one place only, and the ordering
/// promises of [`JoinHandle`] are made for that.
pub struct Executor {
    ready: spin::Mutex<VecDeque<Runnable<TaskState>>>,
    on_ready: fn(),
    alive: AtomicUsize,
    spawned: AtomicU64,
}

impl Executor {
    /// An executor with no tasks. `on_ready` is called each time a task is queued (spawned, or woken while not
    /// already queued), after the queue's lock is released: the platform's cue that [`Executor::run_ready`] has
    /// work. It is called from inside wakers, so it must be short (Sirocco's raises a flag).
    pub const fn new(on_ready: fn()) -> Self {
        Executor {
            ready: spin::Mutex::new(VecDeque::new()),
            on_ready,
            alive: AtomicUsize::new(0),
            spawned: AtomicU64::new(0),
        }
    }

    /// Allocates a task for `future` and queues it to be polled by [`Executor::run_ready`]. Never refuses: the
    /// only limit is the heap (an allocation failure is fatal, as for any allocation).
    pub fn spawn<T: Send + 'static>(&'static self, future: impl Future<Output = T> + Send + 'static) -> JoinHandle<T> {
        let id = self.spawned.fetch_add(1, Ordering::Relaxed) + 1;
        self.alive.fetch_add(1, Ordering::Relaxed);
        // Captured by the wrapper, so it is dropped with the future in any state, even before the first poll.
        let alive = Alive(&self.alive);
        let future = async move {
            let _alive = alive;
            future.await
        };
        let (runnable, task) = Builder::new()
            .metadata(TaskState { id, ..TaskState::default() })
            .spawn(|_: &TaskState| future, move |r| self.queue(r));
        let waker = runnable.waker();
        runnable.schedule();
        JoinHandle { task: Some(task), waker }
    }

    fn queue(&self, runnable: Runnable<TaskState>) {
        self.ready.lock().push_back(runnable);
        (self.on_ready)();
    }

    /// Polls, once each and in the order they were queued, the tasks queued when it is called. Tasks queued
    /// meanwhile (a task that yields, one woken by another) wait for the next call, so that the caller gets to
    /// service its events and timers in between. A task whose abort was requested is dropped instead of polled.
    /// Returns how many tasks it polled or dropped: 0 if none was ready.
    pub fn run_ready(&self) -> usize {
        let queued = self.ready.lock().len();
        let mut ran = 0;
        while ran < queued {
            // The lock is not held while a task runs: the task may spawn, or wake others.
            let Some(runnable) = self.ready.lock().pop_front() else { break };
            let state = runnable.metadata();
            if state.abort_requested.load(Ordering::Acquire) {
                state.cancelled.store(true, Ordering::Release);
                // Drops the future, then wakes whoever awaits the handle.
                drop(runnable);
            } else {
                let _span = trace::span(Category::Run, "task poll", state.id);
                runnable.run();
            }
            ran += 1;
        }
        ran
    }

    /// True if a task is queued (what `on_ready` announced and [`Executor::run_ready`] has not yet taken).
    pub fn has_ready(&self) -> bool {
        !self.ready.lock().is_empty()
    }

    /// How many tasks are alive, and have been spawned.
    pub fn counts(&self) -> TaskCounts {
        TaskCounts { alive: self.alive.load(Ordering::Relaxed), spawned: self.spawned.load(Ordering::Relaxed) }
    }
}

/// Counts a task as alive until its future is dropped (finished or aborted).
struct Alive(&'static AtomicUsize);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why awaiting a [`JoinHandle`] gave no output.
///
/// Awaiting a handle gives `Result<T, JoinError>` rather than `T` because an aborted task has no output to give:
/// the alternatives, panicking or never completing, would make `abort` a trap for whoever awaits. There is no
/// "panicked" case: Sirocco's target aborts on panic (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The task was aborted ([`JoinHandle::abort`]) before it finished; its future has been dropped.
    Cancelled,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("the task was aborted before it finished"),
        }
    }
}

impl core::error::Error for JoinError {}

/// A spawned task: await it for the task's output, or abort it.
///
/// **Dropping a `JoinHandle` detaches the task**: it runs on to completion, its output is dropped, and it can no
/// longer be aborted (as with tokio's `JoinHandle` and `std::thread::JoinHandle`). Keep the handle to abort.
pub struct JoinHandle<T> {
    /// `None` only while `drop` detaches it.
    task: Option<Task<T, TaskState>>,
    /// Queues the task, so that an abort reaches a task parked on something that may never come.
    waker: Waker,
}

impl<T> JoinHandle<T> {
    /// Cancels the task: it is not polled again, and the run loop drops its future on its next round (the task
    /// is queued for that). A task aborted before its first poll never runs. A task that has already finished
    /// keeps its output, and awaiting the handle gives it; otherwise awaiting gives [`JoinError::Cancelled`], and
    /// completes only once the future has been dropped (with everything it held: sockets, timers, buffers).
    /// A task aborting itself is dropped at its next return to the run loop, unless it finishes first.
    pub fn abort(&self) {
        self.task().metadata().abort_requested.store(true, Ordering::Release);
        self.waker.wake_by_ref();
    }

    /// True once the task has finished, or has been aborted and its future dropped. Right after [`abort`] this is
    /// still false until the run loop's next round has dropped the future.
    ///
    /// [`abort`]: JoinHandle::abort
    pub fn is_finished(&self) -> bool {
        self.task().is_finished()
    }

    fn task(&self) -> &Task<T, TaskState> {
        self.task.as_ref().expect("only drop takes the task out")
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let task = self.task.as_mut().expect("only drop takes the task out");
        // `cancelled` is set just before the run queue drops the future, and the drop is what wakes this poll, so
        // (from the one thread of execution) seeing it means the future is gone. Polling the task itself then
        // would panic: it has no output.
        if task.metadata().cancelled.load(Ordering::Acquire) {
            return Poll::Ready(Err(JoinError::Cancelled));
        }
        Pin::new(task).poll(cx).map(Ok)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("finished", &self.is_finished()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use alloc::vec::Vec;
    use core::future::{pending, poll_fn};
    use core::pin::pin;

    fn executor() -> &'static Executor {
        Box::leak(Box::new(Executor::new(|| {})))
    }

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Runs `fut` alongside `ex`'s tasks as the kernel's run loop does; panics if nothing can make progress.
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

    /// Runs tasks until none is ready.
    fn run_until_idle(ex: &Executor) {
        while ex.run_ready() > 0 {}
    }

    /// Pending until opened; wakes its waiters when opened.
    #[derive(Clone, Default)]
    struct Gate(Arc<spin::Mutex<(bool, Vec<Waker>)>>);
    impl Gate {
        fn open(&self) {
            let waiters = {
                let mut g = self.0.lock();
                g.0 = true;
                core::mem::take(&mut g.1)
            };
            waiters.into_iter().for_each(Waker::wake);
        }
        async fn wait(&self) {
            poll_fn(|cx| {
                let mut g = self.0.lock();
                if g.0 {
                    return Poll::Ready(());
                }
                g.1.push(cx.waker().clone());
                Poll::Pending
            })
            .await
        }
    }

    /// Sets its flag when dropped.
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn spawn_then_await_gives_the_output() {
        let ex = executor();
        let h = ex.spawn(async { 6 * 7 });
        assert!(!h.is_finished(), "nothing ran yet");
        assert_eq!(block_on(ex, h), Ok(42));
        let h = ex.spawn(async { alloc::string::String::from("moved out") });
        assert_eq!(block_on(ex, h).as_deref(), Ok("moved out"));
        assert_eq!(ex.counts(), TaskCounts { alive: 0, spawned: 2 });
    }

    #[test]
    fn a_thousand_tasks_are_alive_at_once() {
        let ex = executor();
        let gate = Gate::default();
        let handles: Vec<_> = (0..1000u64)
            .map(|i| {
                let g = gate.clone();
                ex.spawn(async move {
                    g.wait().await;
                    i
                })
            })
            .collect();
        assert_eq!(ex.run_ready(), 1000);
        assert_eq!(ex.counts(), TaskCounts { alive: 1000, spawned: 1000 });
        assert!(handles.iter().all(|h| !h.is_finished()), "all parked on the gate");
        gate.open();
        let sum = block_on(ex, async {
            let mut sum = 0;
            for h in handles {
                sum += h.await.expect("not aborted");
            }
            sum
        });
        assert_eq!(sum, 999 * 1000 / 2);
        assert_eq!(ex.counts().alive, 0);
    }

    #[test]
    fn abort_before_the_first_poll_never_runs_the_body() {
        let ex = executor();
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let h = ex.spawn(async move {
            r.store(true, Ordering::SeqCst);
            1
        });
        h.abort();
        assert_eq!(ex.run_ready(), 1, "dropped by the run queue");
        assert!(!ran.load(Ordering::SeqCst), "the body must never run");
        assert!(h.is_finished());
        assert_eq!(ex.counts().alive, 0);
        assert_eq!(block_on(ex, h), Err(JoinError::Cancelled));
    }

    #[test]
    fn abort_drops_a_task_parked_on_a_pending_future() {
        let ex = executor();
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = SetOnDrop(dropped.clone());
        let h = ex.spawn(async move {
            let _guard = guard;
            pending::<()>().await
        });
        assert_eq!(ex.run_ready(), 1);
        // Parked with no waker stored anywhere: only the handle can reach it.
        assert!(!ex.has_ready());
        assert!(!dropped.load(Ordering::SeqCst) && !h.is_finished());
        h.abort();
        assert!(ex.has_ready(), "abort queues the task so the run loop drops it");
        assert!(!h.is_finished(), "not until the run loop's next round");
        assert_eq!(ex.run_ready(), 1);
        assert!(dropped.load(Ordering::SeqCst), "the future (and what it held) is dropped");
        assert!(h.is_finished());
        assert_eq!(ex.counts().alive, 0);
        assert_eq!(block_on(ex, h), Err(JoinError::Cancelled));
    }

    #[test]
    fn awaiting_an_aborted_task_completes_once_its_future_is_dropped() {
        let ex = executor();
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = SetOnDrop(dropped.clone());
        let gate = Gate::default();
        let g = gate.clone();
        let mut victim = ex.spawn(async move {
            let _guard = guard;
            g.wait().await
        });
        run_until_idle(ex);
        let (result, dropped_first) = block_on(ex, async {
            let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut victim).poll(cx))).await;
            assert!(first.is_pending(), "the victim is parked on the gate");
            victim.abort();
            let result = (&mut victim).await;
            (result, dropped.load(Ordering::SeqCst))
        });
        assert_eq!(result, Err(JoinError::Cancelled));
        assert!(dropped_first, "the await completed before the future was dropped");
        // Waking the dropped task's old waker does nothing.
        gate.open();
        assert_eq!(ex.run_ready(), 0);
    }

    #[test]
    fn abort_after_the_task_finished_keeps_its_output() {
        let ex = executor();
        let h = ex.spawn(async { 5 });
        assert_eq!(ex.run_ready(), 1);
        assert!(h.is_finished());
        h.abort();
        assert_eq!(ex.run_ready(), 0, "nothing left to drop");
        assert_eq!(block_on(ex, h), Ok(5));
    }

    #[test]
    fn dropping_the_handle_detaches_the_task() {
        let ex = executor();
        // Dropped before the first poll.
        let early = Arc::new(AtomicBool::new(false));
        let e = early.clone();
        drop(ex.spawn(async move { e.store(true, Ordering::SeqCst) }));
        // Dropped while parked.
        let gate = Gate::default();
        let late = Arc::new(AtomicBool::new(false));
        let (g, l) = (gate.clone(), late.clone());
        let h = ex.spawn(async move {
            g.wait().await;
            l.store(true, Ordering::SeqCst);
        });
        run_until_idle(ex);
        assert!(early.load(Ordering::SeqCst), "a detached task still runs");
        drop(h);
        assert_eq!(ex.counts().alive, 1, "the parked task lives on without its handle");
        gate.open();
        run_until_idle(ex);
        assert!(late.load(Ordering::SeqCst), "a detached task still completes");
        assert_eq!(ex.counts(), TaskCounts { alive: 0, spawned: 2 });
    }

    #[test]
    fn a_task_that_wakes_itself_runs_again_on_the_next_round() {
        let ex = executor();
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        let h = ex.spawn(poll_fn(move |cx| {
            let n = p.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 {
                return Poll::Ready(n);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
        for round in 1..=3 {
            assert_eq!(ex.run_ready(), 1, "one poll per round, so the loop services events in between");
            assert_eq!(polls.load(Ordering::SeqCst), round);
            assert_eq!(ex.has_ready(), round < 3, "a self-wake queues the task again");
        }
        assert!(h.is_finished());
        assert_eq!(ex.run_ready(), 0);
        assert_eq!(block_on(ex, h), Ok(3));
    }

    #[test]
    fn a_join_handle_is_awaited_from_another_task() {
        let ex = executor();
        let gate = Gate::default();
        let g = gate.clone();
        let inner = ex.spawn(async move {
            g.wait().await;
            20
        });
        let outer = ex.spawn(async move { inner.await.expect("not aborted") + 1 });
        run_until_idle(ex);
        assert!(!outer.is_finished(), "waits for inner, which waits for the gate");
        gate.open();
        run_until_idle(ex);
        assert!(outer.is_finished());
        assert_eq!(block_on(ex, outer), Ok(21));
    }

    #[test]
    fn tasks_spawn_tasks() {
        let ex = executor();
        let h = ex.spawn(async move {
            let children: Vec<_> = (1..=3u32).map(|i| ex.spawn(async move { i * 10 })).collect();
            let mut sum = 0;
            for c in children {
                sum += c.await.expect("not aborted");
            }
            sum
        });
        assert_eq!(block_on(ex, h), Ok(60));
        assert_eq!(ex.counts(), TaskCounts { alive: 0, spawned: 4 });
    }

    static READY_CALLS: AtomicUsize = AtomicUsize::new(0);
    fn note_ready() {
        READY_CALLS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn the_hook_hears_of_every_task_queued() {
        let ex: &'static Executor = Box::leak(Box::new(Executor::new(note_ready)));
        let gate = Gate::default();
        let g = gate.clone();
        let h = ex.spawn(async move { g.wait().await });
        assert_eq!(READY_CALLS.load(Ordering::SeqCst), 1, "a spawn queues the task");
        assert_eq!(ex.run_ready(), 1);
        assert_eq!(READY_CALLS.load(Ordering::SeqCst), 1, "parked: nothing queued");
        gate.open();
        assert_eq!(READY_CALLS.load(Ordering::SeqCst), 2, "woken from outside the executor");
        assert_eq!(ex.run_ready(), 1);
        assert!(h.is_finished());
    }

    /// `sirocco::sync`'s types (embassy-sync's Channel, Signal and Mutex, which the target-only `sirocco` crate
    /// re-exports) on this run queue, as apps use them across tasks; critical-section's std implementation stands
    /// in for the kernel's empty one.
    mod sync_types {
        use super::{block_on, executor};
        use alloc::boxed::Box;
        use alloc::vec::Vec;
        use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex as RawMutex;
        use embassy_sync::channel::Channel;
        use embassy_sync::mutex::Mutex;
        use embassy_sync::signal::Signal;

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
    }
}
