//! Test harness: two complete stacks joined by an in-memory wire, a simulated clock, and a small executor.
//!
//! The driver loop does what the runtime does: it polls a stack only when frames wait for it, when its
//! deadline has come, or when a socket asked for a poll; it runs a task only when its waker fired. So a missing
//! wake-up or poll request shows up as a stalled test, and a deadline in the past that never moves shows up as
//! a livelock panic.
#![allow(dead_code)]

pub mod dhcp;
pub mod memstream;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use sirocco_net::{NetConfig, NetDevice, NetHandle, SocketOptions, Stack, TxFull};

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// Decides what happens to a frame sent by side `from`: the frames to deliver, each to a side.
pub type Hook = Box<dyn FnMut(usize, &[u8]) -> Vec<(usize, Vec<u8>)> + Send>;

struct WireState {
    queues: [VecDeque<Vec<u8>>; 2],
    /// Every frame transmitted, with the side that sent it.
    log: Vec<(usize, Vec<u8>)>,
    hook: Option<Hook>,
}

/// Two Ethernet ports joined back to back.
#[derive(Clone)]
pub struct Wire(Arc<Mutex<WireState>>);

impl Wire {
    pub fn new() -> Wire {
        Wire(Arc::new(Mutex::new(WireState { queues: Default::default(), log: Vec::new(), hook: None })))
    }

    pub fn end(&self, side: usize, mac: [u8; 6]) -> WireEnd {
        WireEnd { side, mac, wire: self.clone() }
    }

    pub fn set_hook(&self, hook: Hook) {
        self.0.lock().unwrap().hook = Some(hook);
    }

    /// Delivers `frame` to `side` as if it came off the wire.
    pub fn inject(&self, side: usize, frame: Vec<u8>) {
        self.0.lock().unwrap().queues[side].push_back(frame);
    }

    pub fn pending(&self, side: usize) -> bool {
        !self.0.lock().unwrap().queues[side].is_empty()
    }

    pub fn log(&self) -> Vec<(usize, Vec<u8>)> {
        self.0.lock().unwrap().log.clone()
    }
}

pub struct WireEnd {
    side: usize,
    mac: [u8; 6],
    wire: Wire,
}

impl NetDevice for WireEnd {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn mtu(&self) -> usize {
        1500
    }
    fn receive(&mut self) -> Option<Vec<u8>> {
        self.wire.0.lock().unwrap().queues[self.side].pop_front()
    }
    fn can_transmit(&self) -> bool {
        true
    }
    fn transmit(&mut self, frame: &[u8]) -> Result<(), TxFull> {
        assert!(frame.len() <= 1514, "frame of {} bytes exceeds the MTU", frame.len());
        let mut w = self.wire.0.lock().unwrap();
        w.log.push((self.side, frame.to_vec()));
        let out = match w.hook.as_mut() {
            Some(hook) => hook(self.side, frame),
            None => vec![(1 - self.side, frame.to_vec())],
        };
        for (to, f) in out {
            w.queues[to].push_back(f);
        }
        Ok(())
    }
}

pub fn config(line: &str) -> NetConfig {
    NetConfig::from_lookup(|k| {
        line.split_whitespace().filter_map(|w| w.split_once('=')).find(|(key, _)| *key == k).map(|(_, v)| v)
    })
    .unwrap()
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type BoxedTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Lets tasks start other tasks.
#[derive(Clone)]
pub struct Spawner(Arc<Mutex<Vec<BoxedTask>>>);

impl Spawner {
    pub fn spawn<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Slot<T> {
        let slot = Slot(Arc::new(Mutex::new(None)));
        let out = slot.clone();
        self.0.lock().unwrap().push(Box::pin(async move {
            let v = fut.await;
            *out.0.lock().unwrap() = Some(v);
        }));
        slot
    }
}

/// The result of a spawned task.
pub struct Slot<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}

impl<T> Slot<T> {
    pub fn done(&self) -> bool {
        self.0.lock().unwrap().is_some()
    }
    pub fn take(&self) -> T {
        self.0.lock().unwrap().take().expect("task has not finished")
    }
}

/// A gate tasks can wait on until the test opens it.
#[derive(Clone, Default)]
pub struct Gate(Arc<Mutex<(bool, Vec<Waker>)>>);

impl Gate {
    pub fn open(&self) {
        let mut g = self.0.lock().unwrap();
        g.0 = true;
        for w in g.1.drain(..) {
            w.wake();
        }
    }
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut g = self.0.lock().unwrap();
            if g.0 {
                Poll::Ready(())
            } else {
                g.1.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

struct Task {
    fut: BoxedTask,
    flag: Arc<Flag>,
}

pub type Net = NetHandle<WireEnd>;

pub struct Sim {
    pub now: u64,
    pub wire: Wire,
    stacks: Vec<Net>,
    deadlines: Vec<Option<u64>>,
    tasks: Vec<Task>,
    spawner: Spawner,
    /// Simulated time after which a test fails.
    pub limit_ms: u64,
}

impl Sim {
    pub fn new(a: &str, b: &str) -> Sim {
        Self::with_options(a, b, SocketOptions::default())
    }

    pub fn with_options(a: &str, b: &str, options: SocketOptions) -> Sim {
        let wire = Wire::new();
        let make = |side, mac, line: &str, seed| {
            let mut s = Stack::new(wire.end(side, mac), &config(line), seed, 0).unwrap();
            s.set_socket_options(options);
            NetHandle::new(s)
        };
        let stacks = vec![make(0, MAC_A, a, 1), make(1, MAC_B, b, 2)];
        Sim {
            now: 0,
            wire: wire.clone(),
            stacks,
            deadlines: vec![Some(0), Some(0)],
            tasks: Vec::new(),
            spawner: Spawner(Arc::new(Mutex::new(Vec::new()))),
            limit_ms: 3_600_000,
        }
    }

    pub fn a(&self) -> Net {
        self.stacks[0].clone()
    }

    pub fn b(&self) -> Net {
        self.stacks[1].clone()
    }

    pub fn spawner(&self) -> Spawner {
        self.spawner.clone()
    }

    pub fn spawn<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Slot<T> {
        self.spawner.spawn(fut)
    }

    /// Runs everything until `fut` completes.
    pub fn run<T: Send + 'static>(&mut self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let slot = self.spawn(fut);
        let s = slot.clone();
        self.run_until(move || s.done(), None);
        slot.take()
    }

    /// Runs everything for `ms` of simulated time.
    pub fn advance(&mut self, ms: u64) {
        let until = self.now + ms;
        self.run_until(|| false, Some(until));
    }

    /// The driver loop.
    pub fn run_until(&mut self, mut done: impl FnMut() -> bool, until: Option<u64>) {
        let mut spins = 0u64;
        loop {
            let mut progressed = false;
            // Adopt newly spawned tasks: they start woken.
            for fut in self.spawner.0.lock().unwrap().drain(..) {
                self.tasks.push(Task { fut, flag: Arc::new(Flag(AtomicBool::new(true))) });
            }
            let mut i = 0;
            while i < self.tasks.len() {
                if self.tasks[i].flag.0.swap(false, Ordering::SeqCst) {
                    progressed = true;
                    let waker = Waker::from(self.tasks[i].flag.clone());
                    if self.tasks[i].fut.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                        self.tasks.remove(i);
                        continue;
                    }
                }
                i += 1;
            }
            if done() {
                return;
            }
            for side in 0..2 {
                let due = self.deadlines[side].is_some_and(|d| d <= self.now)
                    || self.wire.pending(side)
                    || self.stacks[side].is_poll_requested();
                if due {
                    self.deadlines[side] = self.stacks[side].poll(self.now);
                    progressed = true;
                }
            }
            if progressed {
                spins += 1;
                assert!(spins < 200_000, "livelock at t={} ms: stacks or tasks never settle", self.now);
                continue;
            }
            if !self.spawner.0.lock().unwrap().is_empty() {
                continue;
            }
            // Idle: move the clock to the next deadline.
            let next = self.deadlines.iter().flatten().copied().min();
            let next = match (next, until) {
                (Some(n), Some(u)) => n.min(u),
                (Some(n), None) => n,
                (None, Some(u)) => u,
                (None, None) => panic!("stalled at t={} ms: no task is woken and no stack has a deadline", self.now),
            };
            if until.is_some_and(|u| self.now >= u) {
                return;
            }
            assert!(next > self.now, "deadline {next} is not after now {}", self.now);
            self.now = next;
            if std::env::var("SIM_TRACE").is_ok() {
                eprintln!("t={} deadlines={:?} tasks={}", self.now, self.deadlines, self.tasks.len());
            }
            spins = 0;
            assert!(self.now <= self.limit_ms, "simulated time limit of {} ms reached", self.limit_ms);
        }
    }
}

/// EtherType of a frame.
pub fn ethertype(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

/// ICMPv6 type of a frame carrying ICMPv6 directly after the IPv6 header.
pub fn icmpv6_type(frame: &[u8]) -> Option<u8> {
    (ethertype(frame) == 0x86dd && frame.len() > 54 && frame[20] == 58).then(|| frame[54])
}

/// A test byte pattern that detects reordering, loss and duplication.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(7) ^ (i >> 8)) as u8).collect()
}
