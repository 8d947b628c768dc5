//! Sirocco's former executor (kernel/src/executor.rs until the comparison in docs/executor.md replaced it with
//! embassy-executor), kept here unchanged so the comparison can be rerun. Tasks are boxed futures in a BTreeMap;
//! a wake pushes the task's id on a ready queue (wakers from `alloc::task::Wake`, no `unsafe`).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Waker};

/// Identifies a spawned task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskId(u64);

type BoxedTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Shared between the executor and every waker (wakers must be `Send + Sync`).
#[derive(Default)]
struct Shared {
    ready: spin::Mutex<VecDeque<TaskId>>,
    spawned: spin::Mutex<Vec<(TaskId, BoxedTask)>>,
    next_id: spin::Mutex<u64>,
}

struct TaskWaker {
    id: TaskId,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let mut q = self.shared.ready.lock();
        if !q.contains(&self.id) {
            q.push_back(self.id);
        }
    }
}

/// A handle that spawns tasks onto the executor, usable from inside tasks.
#[derive(Clone)]
pub struct Spawner {
    shared: Arc<Shared>,
}

impl Spawner {
    /// Adds a task; it is polled on the executor's next round.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> TaskId {
        let id = {
            let mut n = self.shared.next_id.lock();
            *n += 1;
            TaskId(*n)
        };
        self.shared.spawned.lock().push((id, Box::pin(fut)));
        self.shared.ready.lock().push_back(id);
        id
    }
}

/// The executor.
pub struct Executor {
    shared: Arc<Shared>,
    tasks: BTreeMap<TaskId, (BoxedTask, Waker)>,
    polls: u64,
}

impl Default for Executor {
    fn default() -> Self {
        Self::new()
    }
}

impl Executor {
    /// An executor with no tasks.
    pub fn new() -> Self {
        Executor { shared: Arc::new(Shared::default()), tasks: BTreeMap::new(), polls: 0 }
    }

    /// A spawner for this executor.
    pub fn spawner(&self) -> Spawner {
        Spawner { shared: self.shared.clone() }
    }

    fn adopt_spawned(&mut self) {
        let spawned: Vec<_> = core::mem::take(&mut *self.shared.spawned.lock());
        for (id, fut) in spawned {
            let waker = Waker::from(Arc::new(TaskWaker { id, shared: self.shared.clone() }));
            self.tasks.insert(id, (fut, waker));
        }
    }

    /// Polls every task that is ready now (including ones woken or spawned while this runs, up to `budget`
    /// polls so the caller can service events in between). Returns the number of polls.
    pub fn run_ready(&mut self, budget: usize) -> usize {
        let mut n = 0;
        while n < budget {
            self.adopt_spawned();
            let Some(id) = self.shared.ready.lock().pop_front() else { break };
            let Some((fut, waker)) = self.tasks.get_mut(&id) else { continue };
            let waker = waker.clone();
            let mut cx = Context::from_waker(&waker);
            n += 1;
            if fut.as_mut().poll(&mut cx).is_ready() {
                self.tasks.remove(&id);
            }
        }
        self.polls += n as u64;
        n
    }

    /// True when some task is waiting to be polled.
    pub fn has_ready(&self) -> bool {
        !self.shared.ready.lock().is_empty() || !self.shared.spawned.lock().is_empty()
    }

    /// Tasks not yet finished.
    pub fn task_count(&self) -> usize {
        self.tasks.len() + self.shared.spawned.lock().len()
    }

    /// Total polls so far.
    pub fn polls(&self) -> u64 {
        self.polls
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::task::Poll;
    use sirocco_kernel_logic::future::{select, Either};
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// A future that is pending until its flag is set, registering the waker it was given.
    #[derive(Clone, Default)]
    struct Gate(Arc<spin::Mutex<(bool, Option<Waker>)>>);
    impl Gate {
        fn open(&self) {
            let mut g = self.0.lock();
            g.0 = true;
            if let Some(w) = g.1.take() {
                w.wake();
            }
        }
        async fn wait(&self) {
            core::future::poll_fn(|cx| {
                let mut g = self.0.lock();
                if g.0 {
                    Poll::Ready(())
                } else {
                    g.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await
        }
    }

    #[test]
    fn tasks_run_to_completion_and_are_polled_only_when_woken() {
        let mut ex = Executor::new();
        let done = Arc::new(AtomicUsize::new(0));
        let gate = Gate::default();
        for _ in 0..3 {
            let (d, g) = (done.clone(), gate.clone());
            ex.spawner().spawn(async move {
                g.wait().await;
                d.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(ex.run_ready(100), 3);
        assert_eq!(ex.run_ready(100), 0, "nobody woke them");
        assert_eq!(done.load(Ordering::SeqCst), 0);
        gate.open(); // wakes only the last registered waker
        ex.run_ready(100);
        assert_eq!(ex.task_count(), 2);
        // The others see the gate open when woken for any reason.
        for id in 1..=3 {
            ex.shared.ready.lock().push_back(TaskId(id));
        }
        ex.run_ready(100);
        assert_eq!((done.load(Ordering::SeqCst), ex.task_count()), (3, 0));
    }

    #[test]
    fn tasks_spawn_tasks_and_budget_is_respected() {
        let mut ex = Executor::new();
        let sp = ex.spawner();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        ex.spawner().spawn(async move {
            for _ in 0..10 {
                let c = c.clone();
                sp.spawn(async move {
                    c.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(ex.run_ready(4), 4);
        assert!(ex.has_ready());
        ex.run_ready(100);
        assert_eq!(count.load(Ordering::SeqCst), 10);
        assert_eq!(ex.polls(), 11);
    }

    #[test]
    fn double_wake_polls_once() {
        let mut ex = Executor::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        let slot: Arc<spin::Mutex<Option<Waker>>> = Default::default();
        let s = slot.clone();
        ex.spawner().spawn(core::future::poll_fn(move |cx| {
            p.fetch_add(1, Ordering::SeqCst);
            *s.lock() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        ex.run_ready(10);
        let w = slot.lock().clone().unwrap();
        w.wake_by_ref();
        w.wake();
        ex.run_ready(10);
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn select_takes_the_first() {
        let mut ex = Executor::new();
        let out = Arc::new(spin::Mutex::new(None));
        let (o, g1, g2) = (out.clone(), Gate::default(), Gate::default());
        let g2c = g2.clone();
        let g1c = g1.clone();
        ex.spawner().spawn(async move {
            let r = select(
                async {
                    g1c.wait().await;
                    1
                },
                async {
                    g2c.wait().await;
                    2
                },
            )
            .await;
            *o.lock() = Some(r);
        });
        ex.run_ready(10);
        g2.open();
        ex.run_ready(10);
        assert_eq!(*out.lock(), Some(Either::Right(2)));
        drop(g1);
    }
}
