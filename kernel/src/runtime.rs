//! The run loop and the async API apps use: `block_on`, `spawn`, timers, and sleeping in the hypervisor.
//!
//! The loop polls ready tasks (heap-allocated async-task tasks on the run queue of `sirocco_kernel_logic::task`),
//! dispatches pending event channels, expires timers, and when nothing is ready blocks the vCPU with
//! `SCHEDOP_poll` on every bound port, having programmed the earliest timer with `set_timer_op` (VIRQ_TIMER is
//! one of the polled ports). `SCHEDOP_poll` rather than `SCHEDOP_block`: poll waits with event upcalls masked, so
//! Sirocco needs no asynchronous callback entry point, no interrupt-safe data structures and no re-entrancy at
//! all; its limits (128 ports per call, one vCPU) fit a unikernel.

use alloc::sync::Arc;
use alloc::task::Wake;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};
use core::time::Duration;
use sirocco_boot::evtchn::{self, EventChannel};
use sirocco_boot::{hypercall, xen};
pub(crate) use sirocco_kernel_logic::future::select;
use sirocco_kernel_logic::task::Executor;
pub use sirocco_kernel_logic::task::{JoinError, JoinHandle, TaskCounts};
use sirocco_kernel_logic::timer::{TimerId, TimerQueue};
use sirocco_kernel_logic::trace::{Category, Phase};

/// The tasks: each one heap-allocated by async-task, queued here when woken (why async-task: docs/executor.md).
/// It tells us it has work through `pender`; we run it from the loop below and never from anywhere else. All of it
/// is safe code: Sirocco's one vCPU with upcalls masked means every wake happens synchronously inside the loop
/// (event dispatch, timer expiry, another task), so the queue's lock is never contended.
static TASKS: Executor = Executor::new(pender);
/// Set by `pender` when a task was queued; the loop runs the queued tasks while it is set.
static PENDING: AtomicBool = AtomicBool::new(false);
/// True while `block_on` runs: a nested call would run the tasks re-entrantly, from inside one of them.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// The executor's hook: called each time a task is queued (spawned or woken).
fn pender() {
    PENDING.store(true, Ordering::Release);
}

pub(crate) static TIMERS: spin::Mutex<TimerQueue> = spin::Mutex::new(TimerQueue::new());
/// VIRQ_TIMER's port; bound again after a resume in a new domain (`rebind_timer`).
static TIMER_PORT: spin::Mutex<Option<EventChannel>> = spin::Mutex::new(None);
/// Called by the loop after events are dispatched (xenstore servicing), set up by the xenstore module. Returns
/// true if it has more to do at once (the loop then goes round again instead of sleeping).
pub(crate) static SERVICE_HOOK: spin::Once<fn() -> bool> = spin::Once::new();

/// Binds VIRQ_TIMER. Called once at boot.
pub(crate) fn init() {
    match EventChannel::bind_virq(sirocco_boot::evtchn::VIRQ_TIMER) {
        Ok(ch) => *TIMER_PORT.lock() = Some(ch),
        Err(e) => panic!("cannot bind VIRQ_TIMER: {e}"),
    }
}

/// VIRQ_TIMER's port.
pub(crate) fn timer_port() -> Option<u32> {
    TIMER_PORT.lock().as_ref().map(EventChannel::port)
}

/// After a resume in a new domain: Xen closed every port, so VIRQ_TIMER is bound again. The old port is forgotten,
/// not closed: its number may belong to another channel now.
pub(crate) fn rebind_timer() {
    let mut port = TIMER_PORT.lock();
    core::mem::forget(port.take());
    match EventChannel::bind_virq(sirocco_boot::evtchn::VIRQ_TIMER) {
        Ok(ch) => *port = Some(ch),
        Err(e) => panic!("cannot bind VIRQ_TIMER again after a resume: {e}"),
    }
}

/// Current Xen system time in ns (monotonic).
pub(crate) fn now_ns() -> u64 {
    xen::system_time_ns().unwrap_or(0)
}

/// Runs `task` concurrently with the caller of [`block_on`] (started on the loop's next round). The task is
/// allocated on the heap: there is no limit on how many run at once but memory, and spawning never fails.
///
/// The [`JoinHandle`] gives the task's output when awaited, and can abort it; **dropping it detaches the task**,
/// which runs on (see [`JoinHandle`]). A task that panics ends the domain (panic = abort: nothing unwinds).
pub fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> JoinHandle<T> {
    TASKS.spawn(task)
}

/// How many tasks are alive now, and how many were spawned since boot.
pub fn task_counts() -> TaskCounts {
    TASKS.counts()
}

struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `fut` to completion, running spawned tasks and servicing events meanwhile, and sleeping in the hypervisor
/// whenever nothing is ready. Not to be called from inside a task.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    assert!(!RUNNING.swap(true, Ordering::SeqCst), "block_on called from inside a task");
    let mut fut = pin!(fut);
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = flag.clone().into();
    let mut cx = Context::from_waker(&waker);
    let mut ports = [0u32; 128];
    loop {
        if flag.0.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                RUNNING.store(false, Ordering::SeqCst);
                return v;
            }
        }
        if PENDING.swap(false, Ordering::AcqRel) {
            // Runs what was queued when it started; a task queued meanwhile has raised PENDING again.
            crate::trace::event(Category::Run, Phase::Begin, "run tasks", 0);
            let ran = TASKS.run_ready();
            crate::trace::event(Category::Run, Phase::End, "run tasks", ran as u64);
        }
        // Between rounds, with no task running: a suspend the toolstack asked for (issue 16).
        if crate::suspend::run_if_requested() {
            flag.0.store(true, Ordering::SeqCst);
            PENDING.store(true, Ordering::Release);
            continue;
        }
        evtchn::dispatch();
        let service_more = SERVICE_HOOK.get().is_some_and(|hook| hook());
        let now = now_ns();
        TIMERS.lock().expire(now);
        if service_more || flag.0.load(Ordering::SeqCst) || PENDING.load(Ordering::Acquire) {
            continue;
        }
        // Nothing to do: program the next timer and sleep until an event.
        let deadline = TIMERS.lock().next_deadline();
        // Old hypervisors have no set_timer_op for HVM guests (ENOSYS): the poll's own timeout is then the timer.
        let timer_ok = match deadline {
            Some(d) if d <= now => continue,
            Some(d) => hypercall::set_timer_op(d) >= 0,
            None => hypercall::set_timer_op(0) >= 0,
        };
        let n = evtchn::ports(&mut ports);
        if n == 0 && deadline.is_none() {
            panic!("block_on: nothing can ever wake this domain (no timers, no event channels)");
        }
        // The poll timeout is a backstop for the timer VIRQ (a deadline missed by both would be a Xen bug), or the
        // timer itself where set_timer_op is refused.
        let slept = now_ns();
        let backstop = if timer_ok { 1_000_000 } else { 0 };
        crate::trace::event(Category::Run, Phase::Begin, "blocked in SCHEDOP_poll", n as u64);
        hypercall::sched_poll(&ports[..n], deadline.map_or(0, |d| d + backstop));
        crate::trace::event(Category::Run, Phase::End, "blocked in SCHEDOP_poll", n as u64);
        // When the domain wakes depends on the network, the disks and the other domains: jitter for the next reseed.
        crate::rand::note_event_timing();
        sirocco_boot::profile::add_idle(now_ns().saturating_sub(slept));
    }
}

/// A point on the monotonic clock (Xen system time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(u64);

impl Instant {
    /// Now.
    pub fn now() -> Instant {
        Instant(now_ns())
    }
    /// Time since this instant.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(now_ns().saturating_sub(self.0))
    }
    /// Nanoseconds of Xen system time.
    pub fn as_nanos(&self) -> u64 {
        self.0
    }
    /// The instant at `ns` of Xen system time.
    pub fn from_nanos(ns: u64) -> Instant {
        Instant(ns)
    }
    /// This instant plus `d`.
    pub fn after(&self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.as_nanos() as u64))
    }
}

/// Wall-clock time since the Unix epoch, from Xen's wallclock and the PV clock.
pub fn wall_clock() -> Duration {
    Duration::from_nanos(xen::wall_clock_ns().unwrap_or(0))
}

/// Completes at `deadline`.
pub async fn sleep_until(deadline: Instant) {
    let mut id: Option<TimerId> = None;
    let guard = CancelOnDrop(&mut id);
    poll_fn(|cx| {
        if now_ns() >= deadline.0 {
            return Poll::Ready(());
        }
        let mut t = TIMERS.lock();
        match *guard.0 {
            Some(i) if t.update(i, cx.waker()) => {}
            _ => *guard.0 = Some(t.insert(deadline.0, cx.waker().clone())),
        }
        Poll::Pending
    })
    .await
}

/// Lets every other ready task, the pending events and the expired timers have their turn, then continues: for
/// a task that has more work right now (a network poll that used up its budget) but must not starve the rest.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// Completes after `d`.
pub async fn sleep(d: Duration) {
    sleep_until(Instant::now().after(d)).await
}

struct CancelOnDrop<'a>(&'a mut Option<TimerId>);
impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.0.take() {
            TIMERS.lock().cancel(id);
        }
    }
}
