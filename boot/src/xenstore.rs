//! Xenstore, the platform half: the shared page and event channel from start_info, a blocking client (the
//! protocol is `sirocco_drivers::xenstore`, tested on the host against a fake xenstored), and the routing of
//! watch events to the tasks waiting for them. Also the `control/shutdown` protocol.
//!
//! Calls are synchronous: a read or write waits (polling the xenstore event channel) for its reply. Watch events
//! that arrive meanwhile are queued by the client and routed by the run loop's service hook.

use crate::evtchn::EventChannel;
use crate::{hypercall, mm, runtime, xen};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::{fence, Ordering};
use core::task::{Poll, Waker};
use sirocco_drivers::control::{self, ShutdownRequest};
use sirocco_drivers::frontend::lifecycle::{Action, Lifecycle};
use sirocco_drivers::frontend::{DeviceInfo, FrontendError, XenbusState};
use sirocco_drivers::xenstore::{self as xs, Tx, WatchQueue, XsPlatform, XsRing};
use sirocco_kernel::Mfn;

pub use sirocco_drivers::xenstore::XsError;

/// The client type.
pub type Client = xs::Xenstore<StorePage, StorePlatform>;

/// The shared xenstore page (`struct xenstore_domain_interface`).
pub struct StorePage(*mut u8);

// SAFETY: the page is mapped for the domain's life; one vCPU, and the client's Mutex serialises our side.
unsafe impl Send for StorePage {}

use sirocco_drivers::xenstore::offsets::{REQ, REQ_CONS, REQ_PROD, RSP, RSP_CONS, RSP_PROD};

impl StorePage {
    fn load(&self, off: usize) -> u32 {
        // SAFETY: an aligned u32 index inside the mapped page; xenstored writes some of them, hence volatile.
        let v = unsafe { (self.0.add(off) as *const u32).read_volatile() };
        fence(Ordering::Acquire);
        v
    }
    fn store(&mut self, off: usize, v: u32) {
        fence(Ordering::SeqCst);
        // SAFETY: an aligned u32 index inside the mapped page.
        unsafe { (self.0.add(off) as *mut u32).write_volatile(v) };
        fence(Ordering::SeqCst);
    }
}

impl XsRing for StorePage {
    fn req_cons(&self) -> u32 {
        self.load(REQ_CONS)
    }
    fn req_prod(&self) -> u32 {
        self.load(REQ_PROD)
    }
    fn write_req(&mut self, index: usize, byte: u8) {
        assert!(index < 1024);
        // SAFETY: req[index] inside the mapped page (checked above).
        unsafe { self.0.add(REQ + index).write_volatile(byte) };
    }
    fn publish_req_prod(&mut self, prod: u32) {
        self.store(REQ_PROD, prod);
    }
    fn rsp_prod(&self) -> u32 {
        self.load(RSP_PROD)
    }
    fn rsp_cons(&self) -> u32 {
        self.load(RSP_CONS)
    }
    fn read_rsp(&self, index: usize) -> u8 {
        assert!(index < 1024);
        // SAFETY: rsp[index] inside the mapped page (checked above).
        unsafe { self.0.add(RSP + index).read_volatile() }
    }
    fn publish_rsp_cons(&mut self, cons: u32) {
        self.store(RSP_CONS, cons);
    }
}

/// The xenstore event channel and clock.
pub struct StorePlatform {
    port: u32,
}

impl XsPlatform for StorePlatform {
    fn notify(&mut self) {
        hypercall::evtchn_send(self.port);
    }
    fn wait(&mut self, deadline_ns: u64) -> bool {
        // Poll returns at once if the port is already pending, so no wake-up is lost between the client's last
        // look at the ring and this call; clear the bit only after.
        hypercall::sched_poll(&[self.port], deadline_ns);
        xen::clear_pending(self.port);
        runtime::now_ns() < deadline_ns
    }
    fn now_ns(&self) -> u64 {
        runtime::now_ns()
    }
}

static CLIENT: spin::Mutex<Option<Client>> = spin::Mutex::new(None);

/// Per watch token: changed paths not yet taken (bounded and coalesced: a backend rewriting a node in a loop
/// leaves one pending change, see `WatchQueue`), the watched path, and the task waiting for them.
struct WatchSlot {
    queue: WatchQueue,
    path: String,
    waker: Option<Waker>,
}
static WATCHES: spin::Mutex<BTreeMap<String, WatchSlot>> = spin::Mutex::new(BTreeMap::new());

const CONTROL_TOKEN: &str = "sirocco:control/shutdown";

/// Connects to xenstore, advertises the shutdown features and watches `control/shutdown`. Called once at boot.
pub(crate) fn init(store_mfn: u64, port: u32) -> Result<(), XsError> {
    let page = StorePage(mm::mfn_to_pfn(Mfn(store_mfn)).vaddr() as *mut u8);
    // The port stays bound for the domain's life: register it for the run loop and never close it.
    core::mem::forget(EventChannel::existing(port));
    let mut client = Client::new(page, StorePlatform { port });
    client.set_timeout_ns(10_000_000_000);
    control::advertise(&mut client)?;
    client.watch("control/shutdown", CONTROL_TOKEN)?;
    *CLIENT.lock() = Some(client);
    runtime::SERVICE_HOOK.call_once(|| service);
    Ok(())
}

/// Runs `f` with the xenstore client (blocking calls inside are fine: nothing else runs meanwhile).
pub fn with<R>(f: impl FnOnce(&mut Client) -> R) -> R {
    let mut guard = CLIENT.lock();
    f(guard.as_mut().expect("xenstore connected at boot"))
}

/// Reads `path` (relative paths are under this domain's `/local/domain/<id>/`).
pub fn read(path: &str) -> Result<String, XsError> {
    with(|c| c.read_string(Tx::NONE, path))
}

/// Writes `value` at `path`.
pub fn write(path: &str, value: &str) -> Result<(), XsError> {
    with(|c| c.write(Tx::NONE, path, value.as_bytes()))
}

/// Lists the children of `path`.
pub fn directory(path: &str) -> Result<Vec<String>, XsError> {
    with(|c| c.directory(Tx::NONE, path))
}

/// Removes `path` and everything below it.
pub fn rm(path: &str) -> Result<(), XsError> {
    with(|c| c.rm(Tx::NONE, path))
}

/// A watch on a path; unwatched on drop.
pub struct Watch {
    path: String,
    token: String,
}

impl Watch {
    /// Watches `path` and everything below it. Xenstore fires a new watch once at once.
    pub fn new(path: &str) -> Result<Watch, XsError> {
        let token = with(|c| c.unique_token("sirocco:watch:"));
        let slot = WatchSlot { queue: WatchQueue::new(), path: path.into(), waker: None };
        WATCHES.lock().insert(token.clone(), slot);
        if let Err(e) = with(|c| c.watch(path, &token)) {
            WATCHES.lock().remove(&token);
            return Err(e);
        }
        Ok(Watch { path: path.into(), token })
    }

    /// The next changed path, in order. Changes are level-triggered hints: a path changed again before it was
    /// taken is reported once, and many changed paths under the watch may collapse into one naming the watched
    /// path itself ("something below changed"): re-read what you watch after each.
    pub async fn next(&mut self) -> String {
        poll_fn(|cx| {
            let mut w = WATCHES.lock();
            let slot = w.get_mut(&self.token).expect("registered while the watch lives");
            match slot.queue.pop() {
                Some(e) => Poll::Ready(e.path),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        WATCHES.lock().remove(&self.token);
        if let Err(e) = with(|c| c.unwatch(&self.path, &self.token)) {
            log::warn!("xenstore: unwatch {}: {e}", self.path);
        }
    }
}

/// A device task's view of its backend: a watch on `<backend>/state` and the state read after each change.
/// Without a watch (xenstore refused it: logged) [`BackendWatch::changed`] never fires, and a vanished backend
/// goes unnoticed.
pub(crate) struct BackendWatch {
    dev: DeviceInfo,
    watch: Option<Watch>,
}

impl BackendWatch {
    /// Watches `dev`'s backend (the first change fires at once, as for every new watch).
    pub(crate) fn new(dev: &DeviceInfo) -> BackendWatch {
        let watch = Watch::new(&dev.backend_key("state"))
            .inspect_err(|e| {
                log::warn!(
                    "{}: cannot watch the backend's state ({e}); a vanished backend will not be noticed",
                    dev.device()
                )
            })
            .ok();
        BackendWatch { dev: dev.clone(), watch }
    }

    /// Waits for the next change of the backend's state node.
    pub(crate) async fn changed(&mut self) {
        match self.watch.as_mut() {
            Some(w) => {
                w.next().await;
            }
            None => core::future::pending::<()>().await,
        }
    }

    /// Reads the backend's state (Unknown when the node is missing; an error when it cannot be read, its
    /// directory removed along with its permissions) and lets `lifecycle` decide what the device does
    /// (`sirocco_drivers::frontend::lifecycle`, the one policy, host-tested).
    pub(crate) fn follow(&self, lifecycle: &mut Lifecycle) -> (Action, Result<XenbusState, FrontendError>) {
        with(|xs| lifecycle.follow(xs, &self.dev))
    }
}

/// The run loop's hook: takes what xenstored sent (a bounded amount per round) and routes watch events. Returns
/// true if more is waiting in the ring: the loop must come back before it sleeps.
fn service() -> bool {
    let Some(mut guard) = CLIENT.try_lock() else { return false };
    let Some(c) = guard.as_mut() else { return false };
    let more = match c.poll_more() {
        Ok((_, more)) => more,
        Err(e) => {
            log::error!("xenstore: {e}");
            return false;
        }
    };
    let mut shutdown_event = false;
    while let Some(ev) = c.next_watch_event() {
        if ev.token == CONTROL_TOKEN {
            shutdown_event = true;
            continue;
        }
        match WATCHES.lock().get_mut(&ev.token) {
            Some(slot) => {
                slot.queue.push(ev, &slot.path);
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
            None => log::debug!("xenstore: event for a dropped watch {:?} on {}", ev.token, ev.path),
        }
    }
    if shutdown_event {
        match control::read_request(c) {
            Ok(Some(req)) => {
                if let Err(e) = control::acknowledge(c) {
                    log::warn!("control: acknowledging {req}: {e}");
                }
                drop(guard);
                crate::shutdown::deliver(req);
            }
            Ok(None) => {}
            Err(e) => log::warn!("control/shutdown: {e}"),
        }
    }
    more
}

/// For `shutdown`: the request type.
pub(crate) type Request = ShutdownRequest;
