//! Xenstore in the runtime: the shared page (`sirocco_boot::xsring`) and event channel the start of day found, a
//! blocking client (the
//! protocol is `sirocco_drivers::xenstore`, tested on the host against a fake xenstored), and the routing of
//! watch events to the tasks waiting for them. Also the `control/shutdown` protocol.
//!
//! Two ways to call. Inside tasks, **async** ([`request`], [`read_async`], [`Watch::new_async`], [`RunLoop`] for
//! the xenbus handshakes): a request is started on the client's non-blocking path and its future completes when
//! the run loop's service hook has taken its reply in (or at its deadline, a run-loop timer), so other event
//! channels, timers and tasks keep running. At **start-of-day** (before the run loop, or before apps start),
//! the blocking calls ([`with`], [`read`], [`write()`], [`Watch::new`]) wait with the vCPU stopped in
//! `SCHEDOP_poll` on the xenstore port. Both share one client: up to 8 requests in flight, replies by id.
//! Watch events are queued by the client (bounded, coalesced) and routed by the service hook.

use crate::runtime;
use crate::runtime::Instant;
use crate::Either;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::future::{poll_fn, Future};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use sirocco_boot::evtchn::EventChannel;
use sirocco_boot::xsring::StorePage;
use sirocco_boot::{hypercall, xen};
use sirocco_drivers::control::{self, ShutdownRequest};
use sirocco_drivers::frontend::lifecycle::{Action, Lifecycle};
use sirocco_drivers::frontend::{DeviceInfo, FrontendError, XenbusState};
use sirocco_drivers::xenstore::{self as xs, Pending, Tx, WatchEvent, WatchQueue, XsAsync, XsPlatform};

/// A request for [`request`] (`sirocco_drivers::xenstore::Request`).
pub use sirocco_drivers::xenstore::Request as XsRequest;

pub use sirocco_drivers::xenstore::XsError;

/// The client type.
pub type Client = xs::Xenstore<StorePage, StorePlatform>;

/// How long a xenbus connect waits for each of the backend's steps (InitWait, Connected), for every device kind.
pub(crate) const CONNECT_TIMEOUT_NS: u64 = 20_000_000_000;
/// How long a xenbus close handshake waits for each of the backend's steps (Closing, Closed).
pub(crate) const CLOSE_TIMEOUT_NS: u64 = 5_000_000_000;

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
pub(crate) fn init(page_va: u64, port: u32) -> Result<(), XsError> {
    // SAFETY: the start of day hands over the address at which it mapped the domain's xenstore page, which stays
    // mapped for the domain's life and which nothing else accesses.
    let page = unsafe { StorePage::new(page_va) };
    // The port stays bound for the domain's life: register it for the run loop and never close it.
    core::mem::forget(EventChannel::existing(port));
    let mut client = Client::new(page, StorePlatform { port });
    client.set_timeout_ns(10_000_000_000);
    control::advertise(&mut client, true)?;
    client.watch("control/shutdown", CONTROL_TOKEN)?;
    *CLIENT.lock() = Some(client);
    runtime::SERVICE_HOOK.call_once(|| service);
    Ok(())
}

/// Runs `f` with the xenstore client. **Blocking**: a request made inside waits for its reply with the vCPU
/// stopped (in `SCHEDOP_poll` on the xenstore port), nothing else running. For start-of-day only, before the run
/// loop exists or before apps start (device enumeration and first connect); inside tasks use the async API
/// ([`request`], [`RunLoop`]).
pub fn with<R>(f: impl FnOnce(&mut Client) -> R) -> R {
    let (result, moved) = {
        let mut guard = CLIENT.lock();
        let client = guard.as_mut().expect("xenstore connected at boot");
        let before = client.received_bytes();
        let result = f(client);
        (result, client.received_bytes() != before)
    };
    // A blocking call may have taken in replies to requests tasks wait for (and consumed the event channel's
    // pending bit): wake them, or they would sleep to their deadline.
    if moved {
        wake_waiters();
    }
    result
}

/// Reads `path` (relative paths are under this domain's `/local/domain/<id>/`). Blocking (start-of-day, see
/// [`with`]); [`read_async`] inside tasks.
pub fn read(path: &str) -> Result<String, XsError> {
    with(|c| c.read_string(Tx::NONE, path))
}

/// Writes `value` at `path`. Blocking (start-of-day, see [`with`]); [`write_async`] inside tasks.
pub fn write(path: &str, value: &str) -> Result<(), XsError> {
    with(|c| c.write(Tx::NONE, path, value.as_bytes()))
}

/// Lists the children of `path`. Blocking (start-of-day, see [`with`]).
pub fn directory(path: &str) -> Result<Vec<String>, XsError> {
    with(|c| c.directory(Tx::NONE, path))
}

/// Removes `path` and everything below it. Blocking (start-of-day, see [`with`]).
pub fn rm(path: &str) -> Result<(), XsError> {
    with(|c| c.rm(Tx::NONE, path))
}

// ----- the run loop's xenstore: requests and watch waits as futures -----

/// Tasks waiting on xenstore (a reply, a free request slot, a watch event), woken when the run loop's service
/// hook sees the response ring move, or when a request ends.
static WAITERS: spin::Mutex<Vec<Waker>> = spin::Mutex::new(Vec::new());

fn wait_for_xenstore(cx: &Context<'_>) {
    let mut waiters = WAITERS.lock();
    if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
        waiters.push(cx.waker().clone());
    }
}

fn wake_waiters() {
    let waiters = core::mem::take(&mut *WAITERS.lock());
    for w in waiters {
        w.wake();
    }
}

/// Gives a request up if its future is dropped before the end (a `select` took the other branch): its reply,
/// if it comes, is dropped by id, and its slot is free for others.
struct GiveUpOnDrop(Option<Pending>);

impl Drop for GiveUpOnDrop {
    fn drop(&mut self) {
        if let Some(pending) = self.0.take() {
            let _ = with(|c| c.give_up(&pending, runtime::now_ns()));
            wake_waiters();
        }
    }
}

/// Runs one xenstore request through the run loop: other tasks, event channels and timers keep running until
/// its reply arrives or its deadline (the client's timeout, 10 s) passes. Waits its turn if
/// `sirocco_drivers::xenstore::MAX_IN_FLIGHT` requests are in flight already.
pub async fn request(request: XsRequest<'_>) -> Result<Vec<u8>, XsError> {
    let pending = poll_fn(|cx| match with(|c| c.start(request)) {
        Err(XsError::Busy { .. }) => {
            wait_for_xenstore(cx);
            Poll::Pending
        }
        started => Poll::Ready(started),
    })
    .await?;
    let mut guard = GiveUpOnDrop(Some(pending));
    let deadline = pending.started_ns().saturating_add(with(|c| c.timeout_ns()));
    let reply = poll_fn(|cx| {
        with(|c| match c.poll_request(&pending) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => {
                let now = runtime::now_ns();
                if now >= deadline {
                    return Poll::Ready(Err(c.give_up(&pending, now)));
                }
                if c.has_unread() {
                    cx.waker().wake_by_ref();
                } else {
                    wait_for_xenstore(cx);
                }
                Poll::Pending
            }
        })
    });
    let result = match runtime::select(reply, runtime::sleep_until(Instant::from_nanos(deadline))).await {
        Either::Left(result) => result,
        Either::Right(()) => with(|c| match c.poll_request(&pending) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(c.give_up(&pending, runtime::now_ns())),
        }),
    };
    guard.0 = None;
    wake_waiters();
    result
}

/// Reads `path` through the run loop (see [`request`]).
pub async fn read_async(path: &str) -> Result<String, XsError> {
    let value = request(XsRequest::Read(Tx::NONE, path)).await?;
    String::from_utf8(value).map_err(|_| XsError::NotUtf8 { op: xs::MsgType::Read, path: xs::ErrorPath::tail(path) })
}

/// Writes `value` at `path` through the run loop (see [`request`]).
pub async fn write_async(path: &str, value: &str) -> Result<(), XsError> {
    request(XsRequest::Write(Tx::NONE, path, value.as_bytes())).await.map(drop)
}

/// The oldest watch event for `token` (a watch made with [`request`]`(XsRequest::Watch(..))`, not a [`Watch`]),
/// waiting for one through the run loop until system time reaches `deadline_ns` (`None` then).
pub async fn watch_event_for(token: &str, deadline_ns: u64) -> Result<Option<WatchEvent>, XsError> {
    let wait = poll_fn(|cx| {
        with(|c| {
            if let Some(event) = c.take_watch_event(token) {
                return Poll::Ready(Some(event));
            }
            if runtime::now_ns() >= deadline_ns {
                return Poll::Ready(None);
            }
            wait_for_xenstore(cx);
            Poll::Pending
        })
    });
    match runtime::select(wait, runtime::sleep_until(Instant::from_nanos(deadline_ns))).await {
        Either::Left(event) => Ok(event),
        Either::Right(()) => Ok(with(|c| c.take_watch_event(token))),
    }
}

/// The run loop's xenstore as `XsAsync`: what the xenbus handshakes (`sirocco_drivers::frontend`, its
/// `lifecycle`) run on inside tasks, so a backend taking its time stops nothing else.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunLoop;

impl XsAsync for RunLoop {
    fn now_ns(&self) -> u64 {
        runtime::now_ns()
    }

    fn unique_token(&mut self, prefix: &str) -> String {
        with(|c| c.unique_token(prefix))
    }

    fn request(&mut self, r: XsRequest<'_>) -> impl Future<Output = Result<Vec<u8>, XsError>> {
        request(r)
    }

    fn watch_event_for(
        &mut self,
        token: &str,
        deadline_ns: u64,
    ) -> impl Future<Output = Result<Option<WatchEvent>, XsError>> {
        watch_event_for(token, deadline_ns)
    }
}

/// A watch on a path; unwatched on drop.
pub struct Watch {
    path: String,
    token: String,
}

impl Watch {
    /// Watches `path` and everything below it. Xenstore fires a new watch once at once. Blocking (start-of-day,
    /// see [`with`]); [`Watch::new_async`] inside tasks.
    pub fn new(path: &str) -> Result<Watch, XsError> {
        let token = Watch::register(path);
        if let Err(e) = with(|c| c.watch(path, &token)) {
            WATCHES.lock().remove(&token);
            return Err(e);
        }
        Ok(Watch { path: path.into(), token })
    }

    /// [`Watch::new`] through the run loop.
    pub async fn new_async(path: &str) -> Result<Watch, XsError> {
        let token = Watch::register(path);
        if let Err(e) = request(XsRequest::Watch(path, &token)).await {
            WATCHES.lock().remove(&token);
            return Err(e);
        }
        Ok(Watch { path: path.into(), token })
    }

    fn register(path: &str) -> String {
        let token = with(|c| c.unique_token("sirocco:watch:"));
        let slot = WatchSlot { queue: WatchQueue::new(), path: path.into(), waker: None };
        WATCHES.lock().insert(token.clone(), slot);
        token
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
    /// Stops routing the watch's events at once; the `XS_UNWATCH` itself runs as a task of its own (the run loop
    /// runs it at its next round: dropping never blocks the vCPU).
    fn drop(&mut self) {
        WATCHES.lock().remove(&self.token);
        let (path, token) = (self.path.clone(), self.token.clone());
        let unwatch = async move {
            if let Err(e) = request(XsRequest::Unwatch(&path, &token)).await {
                log::warn!("xenstore: unwatch {path}: {e}");
            }
        };
        // The handle is dropped: the task runs on, detached.
        runtime::spawn(unwatch);
    }
}

/// A device task's view of its backend: a watch on `<backend>/state`, and the front-end lifecycle policy
/// (`sirocco_drivers::frontend::lifecycle`) applied after each change. Without a watch (xenstore refused it:
/// logged) [`BackendWatch::changed`] never fires, and a vanished backend goes unnoticed.
pub(crate) struct BackendWatch {
    dev: DeviceInfo,
    watch: Option<Watch>,
}

impl BackendWatch {
    /// Watches `dev`'s backend (the first change fires at once, as for every new watch).
    pub(crate) async fn new(dev: &DeviceInfo) -> BackendWatch {
        let watch = Watch::new_async(&dev.backend_key("state"))
            .await
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
    /// directory removed along with its permissions) and lets `lifecycle` decide what the device does.
    pub(crate) async fn follow(&self, lifecycle: &mut Lifecycle) -> (Action, Result<XenbusState, FrontendError>) {
        lifecycle.follow_async(&mut RunLoop, &self.dev).await
    }
}

/// The run loop's hook: takes what xenstored sent (a bounded amount per round), routes the events of [`Watch`]es
/// and `control/shutdown` (others stay queued for [`watch_event_for`]), and wakes the tasks waiting on
/// xenstore if the ring moved. Returns true if more is waiting in the ring: the loop must come back before it
/// sleeps.
fn service() -> bool {
    let Some(mut guard) = CLIENT.try_lock() else { return false };
    let Some(c) = guard.as_mut() else { return false };
    let before = c.received_bytes();
    let more = match c.poll_more() {
        Ok((_, more)) => more,
        Err(e) => {
            log::error!("xenstore: {e}");
            false
        }
    };
    let moved = c.received_bytes() != before;
    let mut shutdown_event = false;
    {
        let mut watches = WATCHES.lock();
        while let Some(ev) = c.take_watch_event_where(|e| e.token == CONTROL_TOKEN || watches.contains_key(&e.token)) {
            if ev.token == CONTROL_TOKEN {
                shutdown_event = true;
                continue;
            }
            if let Some(slot) = watches.get_mut(&ev.token) {
                slot.queue.push(ev, &slot.path);
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
        }
    }
    drop(guard);
    if moved {
        wake_waiters();
    }
    if shutdown_event {
        control_changed();
    }
    more
}

/// A `control/shutdown` reader task is running; set again if another event came meanwhile.
static CONTROL_TASK: AtomicBool = AtomicBool::new(false);
static CONTROL_AGAIN: AtomicBool = AtomicBool::new(false);

/// `control/shutdown` changed: read it, acknowledge a request and deliver it, in a task through the run loop (the
/// service hook itself never waits for a reply). One such task at a time; an event during its run makes it read
/// again.
fn control_changed() {
    CONTROL_AGAIN.store(true, Ordering::SeqCst);
    if CONTROL_TASK.swap(true, Ordering::SeqCst) {
        return;
    }
    let task = async {
        while CONTROL_AGAIN.swap(false, Ordering::SeqCst) {
            handle_control_request().await;
        }
        CONTROL_TASK.store(false, Ordering::SeqCst);
    };
    // The handle is dropped: the task runs on, detached.
    runtime::spawn(task);
}

/// Reads `control/shutdown` (`control::read_request`, through the run loop), acknowledges a request by clearing
/// the key (the toolstack waits for that), and hands it to `shutdown`.
async fn handle_control_request() {
    let value = match request(XsRequest::Read(Tx::NONE, control::SHUTDOWN_PATH)).await {
        Ok(value) => value,
        Err(e) if e.is_enoent() => return,
        Err(e) => return log::warn!("control/shutdown: {}", control::ControlError::Xenstore(e)),
    };
    let req = match ShutdownRequest::parse(&value) {
        Ok(Some(req)) => req,
        Ok(None) => return,
        Err(unknown) => return log::warn!("control/shutdown: {}", control::ControlError::Unknown(unknown)),
    };
    if let Err(e) = request(XsRequest::Write(Tx::NONE, control::SHUTDOWN_PATH, b"")).await {
        log::warn!("control: acknowledging {req}: {e}");
    }
    if req == ShutdownRequest::Suspend {
        return crate::suspend::request();
    }
    crate::shutdown::deliver(req);
}

/// After a resume in a new domain (issue 16): xenstore's ring has a new event channel and was reset by the
/// daemon; the client follows it, sends every watch again (each fires once: their owners look again), and the
/// control features are advertised again (the new domain's keys are empty).
pub(crate) fn resumed(port: u32) {
    core::mem::forget(EventChannel::existing(port));
    let watches = with(|c| {
        c.platform_mut().port = port;
        c.resumed(true)
    });
    if let Err(e) = with(|c| control::advertise(c, true)) {
        log::warn!("xenstore: advertising control features after the resume: {e}");
    }
    log::info!("xenstore: on port {port} after the resume, {watches} watches registered again");
    wake_waiters();
}

/// For `shutdown`: the request type.
pub(crate) type Request = ShutdownRequest;
