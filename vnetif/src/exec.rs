//! A single-threaded executor on the simulated clock: tasks run only when their waker fired, as on the
//! unikernel's runtime, so a missing wake-up shows up as a stalled simulation rather than as luck. Tasks need not
//! be `Send` (the nodes' pages and buffers are `Rc`s, like the fakes they are built on).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

type BoxedTask = Pin<Box<dyn Future<Output = ()>>>;

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Task {
    fut: BoxedTask,
    woken: Arc<Flag>,
}

struct JoinState<T> {
    value: Option<T>,
    done: bool,
    waker: Option<Waker>,
}

/// A spawned task's result.
pub struct JoinHandle<T>(Rc<RefCell<JoinState<T>>>);

impl<T> JoinHandle<T> {
    /// The task has finished (its result may have been taken already).
    pub fn is_finished(&self) -> bool {
        self.0.borrow().done
    }

    /// Takes the result.
    ///
    /// # Panics
    /// If the task has not finished, or the result was taken.
    pub fn take(&self) -> T {
        self.0.borrow_mut().value.take().expect("the task has not finished (or its result was taken)")
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.0.borrow_mut();
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Sleepers: when each is due (a heap of (time, id)), and their wakers.
#[derive(Default)]
struct Timers {
    due: BinaryHeap<Reverse<(u64, u64)>>,
    wakers: Vec<(u64, Waker)>,
    next_id: u64,
}

/// The clock, the timers and the spawn queue, shared by the simulation and its tasks.
#[derive(Clone)]
pub struct SimHandle {
    now_us: Rc<Cell<u64>>,
    timers: Rc<RefCell<Timers>>,
    spawned: Rc<RefCell<Vec<BoxedTask>>>,
}

impl SimHandle {
    pub(crate) fn new() -> SimHandle {
        SimHandle { now_us: Rc::new(Cell::new(0)), timers: Rc::default(), spawned: Rc::default() }
    }

    /// Simulated time, microseconds.
    pub fn now_us(&self) -> u64 {
        self.now_us.get()
    }

    /// Simulated time, milliseconds (the stacks' clock).
    pub fn now_ms(&self) -> u64 {
        self.now_us.get() / 1000
    }

    pub(crate) fn set_now_us(&self, t: u64) {
        self.now_us.set(t);
    }

    /// Starts a task; it runs from the next executor step.
    pub fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> JoinHandle<T> {
        let state = Rc::new(RefCell::new(JoinState { value: None, done: false, waker: None }));
        let out = state.clone();
        self.spawned.borrow_mut().push(Box::pin(async move {
            let v = fut.await;
            let waker = {
                let mut s = out.borrow_mut();
                s.value = Some(v);
                s.done = true;
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }));
        JoinHandle(state)
    }

    /// Completes once simulated time reaches `now + ms`.
    pub fn sleep(&self, ms: u64) -> impl Future<Output = ()> + 'static {
        self.sleep_until_us(self.now_us() + ms * 1000)
    }

    /// Completes once simulated time reaches `at_us`.
    pub fn sleep_until_us(&self, at_us: u64) -> impl Future<Output = ()> + 'static {
        let h = self.clone();
        let mut registered = false;
        std::future::poll_fn(move |cx| {
            if h.now_us() >= at_us {
                return Poll::Ready(());
            }
            let mut t = h.timers.borrow_mut();
            if !registered {
                registered = true;
                let id = t.next_id;
                t.next_id += 1;
                t.due.push(Reverse((at_us, id)));
            }
            t.wakers.push((at_us, cx.waker().clone()));
            Poll::Pending
        })
    }

    /// The earliest pending timer.
    pub(crate) fn next_timer_us(&self) -> Option<u64> {
        self.timers.borrow().due.peek().map(|Reverse((t, _))| *t)
    }

    /// Wakes the sleepers whose time has come; true if any.
    pub(crate) fn fire_timers(&self) -> bool {
        let now = self.now_us();
        let due: Vec<Waker> = {
            let mut t = self.timers.borrow_mut();
            let mut fired = false;
            while t.due.peek().is_some_and(|Reverse((at, _))| *at <= now) {
                t.due.pop();
                fired = true;
            }
            if !fired {
                return false;
            }
            let (due, later): (Vec<_>, Vec<_>) = t.wakers.drain(..).partition(|(at, _)| *at <= now);
            t.wakers = later;
            due.into_iter().map(|(_, w)| w).collect()
        };
        for w in due {
            w.wake();
        }
        true
    }
}

/// The tasks.
#[derive(Default)]
pub(crate) struct Executor {
    tasks: Vec<Task>,
}

impl Executor {
    /// Adopts newly spawned tasks (woken) and polls every woken task once; true if any ran.
    pub(crate) fn run_ready(&mut self, handle: &SimHandle) -> bool {
        let spawned: Vec<BoxedTask> = handle.spawned.borrow_mut().drain(..).collect();
        for fut in spawned {
            self.tasks.push(Task { fut, woken: Arc::new(Flag(AtomicBool::new(true))) });
        }
        let mut ran = false;
        let mut i = 0;
        while i < self.tasks.len() {
            if self.tasks[i].woken.0.swap(false, Ordering::SeqCst) {
                ran = true;
                let waker = Waker::from(self.tasks[i].woken.clone());
                if self.tasks[i].fut.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                    self.tasks.swap_remove(i);
                    continue;
                }
            }
            i += 1;
        }
        ran
    }

    /// Tasks not finished.
    pub(crate) fn pending(&self) -> usize {
        self.tasks.len()
    }

    /// Drops every task (their sockets close or reset in the background).
    pub(crate) fn clear(&mut self) {
        self.tasks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_when_woken_and_sleepers_when_their_time_comes() {
        let h = SimHandle::new();
        let mut ex = Executor::default();
        let h2 = h.clone();
        let j = h.spawn(async move {
            h2.sleep(5).await;
            h2.now_ms()
        });
        let outer = h.spawn(async move { j.await + 1 });
        assert!(ex.run_ready(&h));
        assert!(!ex.run_ready(&h), "nothing woken");
        assert_eq!(h.next_timer_us(), Some(5000));
        h.set_now_us(4999);
        assert!(!h.fire_timers());
        h.set_now_us(5000);
        assert!(h.fire_timers());
        assert!(ex.run_ready(&h), "the sleeper ends and wakes its joiner, which runs in the same pass");
        assert!(outer.is_finished());
        assert_eq!(outer.take(), 6);
        assert_eq!(ex.pending(), 0);
    }
}
