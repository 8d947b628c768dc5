//! [`Sim`]: nodes, their backends, the switch, the tasks and the simulated clock, driven the way the unikernel's
//! network task drives a vif (`boot/src/net.rs`): a node's stack is polled when its event channel fired (the
//! backend pushed responses and asked to notify), when its deadline has come, or when a socket asked for a poll;
//! a task runs only when woken; time jumps to the next thing that will happen. A forgotten notification or
//! wake-up therefore stalls a test instead of passing by luck.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;

use sirocco_drivers::netfront::{Counters, ResetReport};
use sirocco_drivers::ring::testing::HeapRing;
use sirocco_drivers::ring::testing::Page;
use sirocco_net::{NetStats, TcpState};

use crate::backend::{BackendState, Netback, NetbackStats};
use crate::exec::{Executor, JoinHandle, SimHandle};
use crate::fault::{Faults, Filter, Lane, LaneStats};
use crate::logger::{self, LogRecord};
use crate::node::{ring_pages, Net, Node, NodeConfig};
use crate::pcap::{Capture, Way};
use crate::switch::{Direction, Switch};

/// Iterations without the clock moving after which the simulation is declared livelocked.
const LIVELOCK_SPINS: u64 = 1_000_000;

type Action = Box<dyn FnOnce(&mut Sim)>;

/// Which lanes of a port's link a fault setting applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lanes {
    /// The node's transmissions only.
    Uplink,
    /// What the node receives only.
    Downlink,
    /// Both directions.
    Both,
}

/// The virtual network and everything on it.
pub struct Sim {
    /// The test's name (file names, messages).
    pub name: String,
    /// The seed every random decision derives from.
    pub seed: u64,
    handle: SimHandle,
    exec: Executor,
    /// The switch and the links.
    pub switch: Switch,
    nodes: Vec<Node>,
    backends: Vec<Netback>,
    /// Ring pages a reset front end is waiting for its backend to attach to.
    new_rings: Vec<Option<(Page, Page)>>,
    /// Every frame sent and received, every port.
    pub capture: Capture,
    /// A run that reaches this simulated time fails (a hung test fails rather than spins).
    pub limit_us: u64,
    actions: BTreeMap<(u64, u64), Action>,
    next_action: u64,
    /// Where pcap files go.
    pub pcap_dir: PathBuf,
    allowed_logs: Vec<String>,
    records: Vec<LogRecord>,
}

impl Sim {
    /// An empty network for the test `name`. The seed is `seed` unless `SIROCCO_VNETIF_SEED` says otherwise (to
    /// explore other runs of the same test); it is printed if the test fails.
    pub fn new(name: &str, seed: u64) -> Sim {
        logger::install();
        logger::take_records();
        let seed = std::env::var("SIROCCO_VNETIF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(seed);
        let pcap_dir = std::env::var_os("SIROCCO_VNETIF_PCAP_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("sirocco-vnetif"));
        Sim {
            name: name.to_string(),
            seed,
            handle: SimHandle::new(),
            exec: Executor::default(),
            switch: Switch::new(seed),
            nodes: Vec::new(),
            backends: Vec::new(),
            new_rings: Vec::new(),
            capture: Capture::new(65535),
            limit_us: 3_600 * 1_000_000,
            actions: BTreeMap::new(),
            next_action: 0,
            pcap_dir,
            allowed_logs: Vec::new(),
            records: Vec::new(),
        }
    }

    /// A network of two default nodes ([`NodeConfig::new`] 0 and 1: 10.0.0.1 and 10.0.0.2).
    pub fn pair(name: &str, seed: u64) -> Sim {
        let mut sim = Sim::new(name, seed);
        sim.add_node(NodeConfig::new(0));
        sim.add_node(NodeConfig::new(1));
        sim
    }

    /// Adds a node on a new switch port; returns its index (= its port).
    pub fn add_node(&mut self, cfg: NodeConfig) -> usize {
        let index = self.nodes.len();
        let (node, backend) = Node::new(&cfg, self.seed ^ (index as u64 + 1) << 32, self.now_ms());
        self.nodes.push(node);
        self.backends.push(backend);
        self.new_rings.push(None);
        let port = self.switch.add_port();
        assert_eq!(port, index);
        index
    }

    /// The clock, timers and spawner, for tasks.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// Simulated time, microseconds.
    pub fn now_us(&self) -> u64 {
        self.handle.now_us()
    }

    /// Simulated time, milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.handle.now_ms()
    }

    /// Node `i`'s stack.
    pub fn net(&self, i: usize) -> Net {
        self.nodes[i].net.clone()
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Node `i`'s IPv4 address.
    pub fn ip(&self, i: usize) -> IpAddr {
        self.nodes[i].ip()
    }

    /// Node `i`'s backend.
    pub fn backend(&mut self, i: usize) -> &mut Netback {
        &mut self.backends[i]
    }

    /// What node `i`'s backend did.
    pub fn backend_stats(&self, i: usize) -> NetbackStats {
        self.backends[i].stats
    }

    /// What a lane did.
    pub fn lane_stats(&self, port: usize, dir: Direction) -> LaneStats {
        match dir {
            Direction::Uplink => self.switch.ports[port].uplink.stats,
            Direction::Downlink => self.switch.ports[port].downlink.stats,
        }
    }

    /// Node `i`'s netfront counters.
    pub fn driver_counters(&self, i: usize) -> Counters {
        self.nodes[i].net.lock().device().driver.counters()
    }

    /// Node `i`'s stack statistics.
    pub fn stats(&self, i: usize) -> NetStats {
        self.nodes[i].net.lock().stats()
    }

    /// Sets the faults of port `port`'s link, in `lanes`.
    pub fn set_faults(&mut self, port: usize, lanes: Lanes, faults: Faults) {
        for dir in directions(lanes) {
            self.switch.ports[port].lane(*dir).faults = faults;
        }
    }

    /// Sets the same faults on every link, both directions.
    pub fn set_faults_everywhere(&mut self, faults: Faults) {
        for port in 0..self.switch.ports.len() {
            self.set_faults(port, Lanes::Both, faults);
        }
    }

    /// One lane of port `port`'s link (its faults, filter and statistics).
    pub fn lane(&mut self, port: usize, dir: Direction) -> &mut Lane {
        self.switch.ports[port].lane(dir)
    }

    /// Drops the frames `filter` picks on port `port`'s lane `dir`.
    pub fn set_filter(&mut self, port: usize, dir: Direction, filter: Filter) {
        self.switch.ports[port].lane(dir).set_filter(Some(filter));
    }

    /// Allows warnings or errors containing `text` (a test that provokes them on purpose).
    pub fn allow_log(&mut self, text: &str) {
        self.allowed_logs.push(text.to_string());
    }

    /// Starts a task.
    pub fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> JoinHandle<T> {
        self.handle.spawn(fut)
    }

    /// Runs everything until `fut` completes; its output.
    pub fn run<T: 'static>(&mut self, fut: impl Future<Output = T> + 'static) -> T {
        let j = self.spawn(fut);
        self.run_until(|| j.is_finished(), None);
        j.take()
    }

    /// Runs everything until the task behind `j` has finished; its output.
    pub fn join<T>(&mut self, j: JoinHandle<T>) -> T {
        self.run_until(|| j.is_finished(), None);
        j.take()
    }

    /// Runs everything for `ms` of simulated time.
    pub fn advance_ms(&mut self, ms: u64) {
        let until = self.now_us() + ms * 1000;
        self.run_until(|| false, Some(until));
    }

    /// Runs `action` on the simulation at simulated time `at_ms` (from a running [`Sim::run`]).
    pub fn at_ms(&mut self, at_ms: u64, action: impl FnOnce(&mut Sim) + 'static) {
        self.actions.insert((at_ms * 1000, self.next_action), Box::new(action));
        self.next_action += 1;
    }

    /// Node `i`'s guest does not run for `ms` (no polls: frames pile up in its RX ring and the backend).
    pub fn stall_node(&mut self, i: usize, ms: u64) {
        self.nodes[i].stalled_until_us = self.now_us() + ms * 1000;
    }

    /// Node `i`'s backend stops answering (paused) or answers again.
    pub fn pause_backend(&mut self, i: usize, paused: bool) {
        self.backends[i].set_paused(paused);
    }

    /// Node `i`'s backend vanishes: it stops touching the rings, and frames for the guest are dropped. The front
    /// end notices only at [`Sim::frontend_reset`] (the backend's xenbus state going Closed).
    pub fn backend_gone(&mut self, i: usize) {
        self.backends[i].state = BackendState::Gone;
    }

    /// The platform saw the backend's state go Closing: `Netfront::reset` onto two new ring pages, as
    /// `netfront::reconnect` does first.
    pub fn frontend_reset(&mut self, i: usize) -> ResetReport {
        let (tx, rx) = ring_pages();
        let report = self.nodes[i].net.lock().device_mut().driver.reset(HeapRing(tx.clone()), HeapRing(rx.clone()));
        self.new_rings[i] = Some((tx, rx));
        report
    }

    /// The backend is back (InitWait) and the xenbus handshake completes: it attaches to the new rings, the front
    /// end posts its RX buffers and is Connected (the rest of `netfront::reconnect`).
    ///
    /// # Panics
    /// Without a [`Sim::frontend_reset`] first.
    pub fn backend_back(&mut self, i: usize) {
        let (tx, rx) = self.new_rings[i].take().expect("frontend_reset before backend_back");
        self.backends[i].reattach(tx, rx);
        {
            let mut stack = self.nodes[i].net.lock();
            let driver = &mut stack.device_mut().driver;
            driver.post_rx_buffers();
            driver.backend_connected();
        }
        // The platform's reconnect runs in the network task, which polls the stack next.
        self.nodes[i].deadline_ms = Some(self.now_ms());
    }

    /// The driver loop: runs tasks, backends, the switch and the stacks until `done` or simulated time `until_us`.
    ///
    /// # Panics
    /// If nothing can happen any more (a stall: no task woken, no deadline, no frame in flight), if the clock stops
    /// moving (a livelock), or past [`Sim::limit_us`].
    pub fn run_until(&mut self, mut done: impl FnMut() -> bool, until_us: Option<u64>) {
        let mut spins = 0u64;
        loop {
            let mut progressed = self.exec.run_ready(&self.handle);
            if done() {
                return;
            }
            let now = self.now_us();
            while let Some(entry) = self.actions.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let action = entry.remove();
                action(self);
                progressed = true;
            }
            progressed |= self.step_backends(now);
            progressed |= self.step_nodes(now);
            progressed |= self.handle.fire_timers();
            if progressed {
                spins += 1;
                if spins >= LIVELOCK_SPINS {
                    let busy: Vec<&str> = self
                        .nodes
                        .iter()
                        .filter(|n| n.deadline_ms.is_some_and(|d| d * 1000 <= now) || n.net.is_poll_requested())
                        .map(|n| n.name.as_str())
                        .collect();
                    panic!(
                        "{}: livelock at t = {now} us: the clock stopped moving; busy-polling (a deadline of 'now' or a \
                         poll request after every poll): {busy:?}",
                        self.name
                    );
                }
                continue;
            }
            spins = 0;
            if until_us.is_some_and(|u| now >= u) {
                return;
            }
            let next = self.next_event_us(now);
            let next = match (next, until_us) {
                (Some(n), Some(u)) => n.min(u),
                (Some(n), None) => n,
                (None, Some(u)) => u,
                (None, None) => panic!(
                    "{}: stalled at t = {} us: no task woken, no deadline, nothing in flight ({} tasks wait)",
                    self.name,
                    now,
                    self.exec.pending()
                ),
            };
            assert!(next > now, "{}: next event {next} us is not after now {now} us", self.name);
            assert!(
                next <= self.limit_us,
                "{}: simulated time limit of {} s reached",
                self.name,
                self.limit_us / 1_000_000
            );
            self.handle.set_now_us(next);
        }
    }

    /// Backends take TX requests and fill RX requests; the switch moves frames. True if anything moved.
    fn step_backends(&mut self, now: u64) -> bool {
        let mut progressed = false;
        let mut delivered = Vec::new();
        for port in 0..self.backends.len() {
            let sent = self.backends[port].service(now, &mut delivered);
            for frame in sent {
                self.capture.record(now, port, Way::Sent, &frame);
                self.switch.send(now, port, frame);
                progressed = true;
            }
            for frame in delivered.drain(..) {
                self.capture.record(now, port, Way::Received, &frame);
                progressed = true;
            }
        }
        for (port, frame) in self.switch.due(now) {
            self.backends[port].deliver(frame, &mut delivered);
            for frame in delivered.drain(..) {
                self.capture.record(now, port, Way::Received, &frame);
            }
            progressed = true;
        }
        progressed
    }

    /// Polls the stacks that have an event, a due deadline or a poll request. True if any was polled.
    fn step_nodes(&mut self, now: u64) -> bool {
        let mut progressed = false;
        for (node, backend) in self.nodes.iter_mut().zip(self.backends.iter_mut()) {
            if node.stalled_until_us > now {
                continue;
            }
            let event = std::mem::take(&mut backend.event);
            let due = event || node.net.is_poll_requested() || node.deadline_ms.is_some_and(|d| d * 1000 <= now);
            if due {
                node.deadline_ms = node.net.poll(now / 1000);
                node.polls += 1;
                progressed = true;
            }
        }
        progressed
    }

    /// When something will next happen by itself.
    fn next_event_us(&self, now: u64) -> Option<u64> {
        let mut times =
            vec![self.switch.next_event_us(), self.handle.next_timer_us(), self.actions.keys().next().map(|(t, _)| *t)];
        for (node, backend) in self.nodes.iter().zip(&self.backends) {
            times.push(backend.next_wakeup_us());
            if backend.wants_service() {
                times.push(Some(now + 1));
            }
            let wants = backend.event || node.net.is_poll_requested() || node.deadline_ms.is_some();
            let at = node.deadline_ms.map(|d| d * 1000);
            if node.stalled_until_us > now {
                if wants {
                    times.push(Some(node.stalled_until_us));
                }
            } else {
                times.push(at);
            }
        }
        times.into_iter().flatten().map(|t| t.max(now + 1)).min()
    }

    /// Writes every port's capture as `<pcap_dir>/<test name>/<node>.pcap`; returns the directory.
    pub fn write_pcaps(&self) -> std::io::Result<PathBuf> {
        let dir = self.pcap_dir.join(self.name.replace("::", "-"));
        std::fs::create_dir_all(&dir)?;
        for (port, node) in self.nodes.iter().enumerate() {
            self.capture.write_port(port, &dir.join(format!("{}.pcap", node.name)))?;
        }
        Ok(dir)
    }

    /// The warnings and errors logged so far (on this thread) that no [`Sim::allow_log`] covers.
    pub fn log_problems(&mut self) -> Vec<LogRecord> {
        self.records.extend(logger::take_records());
        logger::problems(&self.records)
            .filter(|r| !self.allowed_logs.iter().any(|a| r.message.contains(a.as_str())))
            .cloned()
            .collect()
    }

    /// Every record kept so far (Sirocco's own debug records included).
    pub fn log_records(&mut self) -> &[LogRecord] {
        self.records.extend(logger::take_records());
        &self.records
    }

    /// Asserts that nothing went wrong quietly: no unexpected warning or error logged; no TCP connection ended in
    /// an error (reset, refused, timed out, address lost); every connection closed (only listeners, TIME-WAIT and
    /// CLOSED remain); no frame dropped by a driver or refused by a backend.
    pub fn assert_clean(&mut self) {
        let problems = self.log_problems();
        assert!(problems.is_empty(), "{}: unexpected warnings or errors logged: {problems:#?}", self.name);
        for (i, node) in self.nodes.iter().enumerate() {
            let stats = node.net.lock().stats();
            assert_eq!(
                stats.tcp_errors.total(),
                0,
                "{}: {} saw TCP connections end in error: {:?}",
                self.name,
                node.name,
                stats.tcp_errors
            );
            let open: Vec<TcpState> = [
                TcpState::SynSent,
                TcpState::SynReceived,
                TcpState::Established,
                TcpState::FinWait1,
                TcpState::FinWait2,
                TcpState::CloseWait,
                TcpState::Closing,
                TcpState::LastAck,
            ]
            .into_iter()
            .filter(|&s| stats.tcp.get(s) > 0)
            .collect();
            assert!(open.is_empty(), "{}: {} still has connections in {open:?}: {:?}", self.name, node.name, stats.tcp);
            assert_eq!(stats.device.tx_dropped, 0, "{}: {} dropped frames it had room for", self.name, node.name);
            let c = node.net.lock().device().driver.counters();
            let faults = c.rx_dropped + c.tx_bad_id + c.tx_error + c.tx_dropped + c.tx_bad_status + c.ring_overruns;
            assert_eq!(faults, 0, "{}: {}'s netfront saw faults: {c}", self.name, node.name);
            assert_eq!(
                self.backends[i].stats.tx_errors, 0,
                "{}: {}'s backend refused TX requests",
                self.name, node.name
            );
        }
    }

    /// Stops every task (their sockets are dropped) without running anything.
    pub fn drop_tasks(&mut self) {
        self.exec.clear();
    }
}

impl Drop for Sim {
    /// A failing test keeps its capture: the pcap files are written and their directory printed. With
    /// `SIROCCO_VNETIF_PCAP=1`, every test keeps it.
    fn drop(&mut self) {
        let keep = std::env::var_os("SIROCCO_VNETIF_PCAP").is_some();
        if std::thread::panicking() || keep {
            match self.write_pcaps() {
                Ok(dir) => eprintln!(
                    "{}: seed {} (SIROCCO_VNETIF_SEED), t = {} ms, capture in {}",
                    self.name,
                    self.seed,
                    self.now_ms(),
                    dir.display()
                ),
                Err(e) => eprintln!("{}: could not write the capture: {e}", self.name),
            }
        }
    }
}

fn directions(lanes: Lanes) -> &'static [Direction] {
    match lanes {
        Lanes::Uplink => &[Direction::Uplink],
        Lanes::Downlink => &[Direction::Downlink],
        Lanes::Both => &[Direction::Uplink, Direction::Downlink],
    }
}
