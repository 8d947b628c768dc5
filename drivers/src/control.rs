//! The toolstack's control requests (`control/` in our xenstore home): `xl shutdown`, `xl reboot` write
//! `control/shutdown`; we advertise what we honour with `control/feature-*` and acknowledge a request by clearing
//! the key (the toolstack waits for that before it starts its own timeout).
//!
//! Watch [`SHUTDOWN_PATH`], and after each watch event call [`request_after_event`]. Hand each request to
//! [`ShutdownWaiters::deliver`]: the tasks waiting on [`Requested`] futures get it, or, if none is waiting, the
//! platform stops the domain itself.

use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use crate::xenstore::{InlineStr, Tx, WatchEvent, Xenstore, XsError, XsPlatform, XsRing};

/// The key the toolstack writes a request to.
pub const SHUTDOWN_PATH: &str = "control/shutdown";
/// Advertises that we power off on request.
pub const FEATURE_POWEROFF_PATH: &str = "control/feature-poweroff";
/// Advertises that we reboot on request.
pub const FEATURE_REBOOT_PATH: &str = "control/feature-reboot";
/// Advertises that we suspend on request (`xl save`, `xl migrate`).
pub const FEATURE_SUSPEND_PATH: &str = "control/feature-suspend";

/// What `control/shutdown` asks for (an empty or missing key is no request: `None` where an
/// `Option<ShutdownRequest>` is returned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// `poweroff`.
    Poweroff,
    /// `halt`: to be treated as [`ShutdownRequest::Poweroff`] (as Linux does); kept apart only for the log.
    Halt,
    /// `reboot`.
    Reboot,
    /// `suspend` (`xl save`, `xl migrate`): acknowledged only where it is carried out (advertised with
    /// `control/feature-suspend`); elsewhere left unacknowledged, so the toolstack gives up saying so.
    Suspend,
}

/// A `control/shutdown` value we do not know, kept for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownRequest {
    /// The value, as written (non-printable bytes shown as `?`, at most 32 kept).
    pub value: InlineStr<32>,
}

impl fmt::Display for UnknownRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SHUTDOWN_PATH} holds {:?}, which is not poweroff, reboot, suspend or halt; ignoring it", self.value)
    }
}

impl ShutdownRequest {
    /// Parses the value of `control/shutdown`: `None` for `""` (no request, or one already acknowledged).
    pub fn parse(value: &[u8]) -> Result<Option<ShutdownRequest>, UnknownRequest> {
        match value {
            b"" => Ok(None),
            b"poweroff" => Ok(Some(ShutdownRequest::Poweroff)),
            b"halt" => Ok(Some(ShutdownRequest::Halt)),
            b"reboot" => Ok(Some(ShutdownRequest::Reboot)),
            b"suspend" => Ok(Some(ShutdownRequest::Suspend)),
            other => Err(UnknownRequest { value: InlineStr::from_bytes(other) }),
        }
    }

    /// The value that asks for this.
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownRequest::Poweroff => "poweroff",
            ShutdownRequest::Halt => "halt",
            ShutdownRequest::Reboot => "reboot",
            ShutdownRequest::Suspend => "suspend",
        }
    }

    /// Poweroff or halt: the domain should power off.
    pub fn is_poweroff(self) -> bool {
        matches!(self, ShutdownRequest::Poweroff | ShutdownRequest::Halt)
    }
}

impl fmt::Display for ShutdownRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reading a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// The xenstore request failed.
    Xenstore(XsError),
    /// The value is not one we know.
    Unknown(UnknownRequest),
}

impl From<XsError> for ControlError {
    fn from(e: XsError) -> Self {
        ControlError::Xenstore(e)
    }
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Xenstore(e) => write!(f, "{e}"),
            ControlError::Unknown(u) => write!(f, "{u}"),
        }
    }
}

/// Display already says everything (it includes the wrapped error's message); `source` is there for code that
/// inspects the cause (`downcast_ref`), not for printing a chain.
impl core::error::Error for ControlError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ControlError::Xenstore(e) => Some(e),
            ControlError::Unknown(_) => None,
        }
    }
}

/// Tells the toolstack we honour poweroff and reboot requests (`control/feature-poweroff = 1`,
/// `control/feature-reboot = 1`), and suspend where the boot mode can (`suspend`: `control/feature-suspend = 1`).
/// Written at boot, and again after a restore (the new domain's tree has them empty).
pub fn advertise<R: XsRing, P: XsPlatform>(xs: &mut Xenstore<R, P>, suspend: bool) -> Result<(), XsError> {
    xs.write(Tx::NONE, FEATURE_POWEROFF_PATH, b"1")?;
    xs.write(Tx::NONE, FEATURE_REBOOT_PATH, b"1")?;
    if suspend {
        xs.write(Tx::NONE, FEATURE_SUSPEND_PATH, b"1")?;
    }
    Ok(())
}

/// Watches `control/shutdown` with `token` (it fires once straight away).
pub fn watch<R: XsRing, P: XsPlatform>(xs: &mut Xenstore<R, P>, token: &str) -> Result<(), XsError> {
    xs.watch(SHUTDOWN_PATH, token)
}

/// The current request, `None` if there is none (the key is empty or missing).
pub fn read_request<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
) -> Result<Option<ShutdownRequest>, ControlError> {
    match xs.read_optional(Tx::NONE, SHUTDOWN_PATH)? {
        None => Ok(None),
        Some(value) => ShutdownRequest::parse(&value).map_err(ControlError::Unknown),
    }
}

/// After a watch event: the current request if the event is about `control/shutdown` and there is one; `None`
/// for other events (xenstore is not read then) and for an empty key.
pub fn request_after_event<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    event: &WatchEvent,
) -> Result<Option<ShutdownRequest>, ControlError> {
    let ours = event.path == SHUTDOWN_PATH
        || event.path.strip_suffix(SHUTDOWN_PATH).is_some_and(|home| home.starts_with('/') && home.ends_with('/'));
    if !ours {
        return Ok(None);
    }
    read_request(xs)
}

/// Acknowledges a request by writing `""` to `control/shutdown` (the toolstack waits for that).
pub fn acknowledge<R: XsRing, P: XsPlatform>(xs: &mut Xenstore<R, P>) -> Result<(), XsError> {
    xs.write(Tx::NONE, SHUTDOWN_PATH, b"")
}

/// The tasks waiting for a shutdown request, and the request once it came (the platform keeps one, behind a
/// lock, and reaches it through a [`WaitersCell`]). A task waits with a [`Requested`] future: it counts as
/// waiting from its first poll until it is dropped, completed or not, so a request that arrives after every
/// waiter is gone stops the domain instead of going to nobody.
pub struct ShutdownWaiters<T> {
    request: Option<T>,
    /// Waiting futures by id, with the waker of their last poll.
    waiters: Vec<(u64, Option<Waker>)>,
    next_id: u64,
    /// A waiter completed with the request: the app has it.
    taken: bool,
}

/// What [`ShutdownWaiters::deliver`] decided.
#[derive(Debug)]
pub enum Delivery {
    /// Tasks are waiting: wake these (after releasing the lock around the waiters).
    Wake(Vec<Waker>),
    /// Nobody is waiting: the platform acts on the request itself.
    NoWaiter,
}

impl<T: Copy> ShutdownWaiters<T> {
    /// No request, nobody waiting.
    pub const fn new() -> Self {
        ShutdownWaiters { request: None, waiters: Vec::new(), next_id: 0, taken: false }
    }

    /// The request received so far, if any.
    pub fn request(&self) -> Option<T> {
        self.request
    }

    /// How many [`Requested`] futures are waiting (polled at least once and not dropped).
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Records `request` and says who acts on it.
    pub fn deliver(&mut self, request: T) -> Delivery {
        self.request = Some(request);
        if self.waiters.is_empty() {
            return Delivery::NoWaiter;
        }
        Delivery::Wake(self.waiters.iter_mut().filter_map(|(_, w)| w.take()).collect())
    }

    fn listen(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.waiters.push((id, None));
        id
    }

    fn poll_waiter(&mut self, id: u64, waker: &Waker) -> Poll<T> {
        if let Some(r) = self.request {
            self.taken = true;
            return Poll::Ready(r);
        }
        if let Some((_, w)) = self.waiters.iter_mut().find(|(i, _)| *i == id) {
            match w {
                Some(old) if old.will_wake(waker) => {}
                _ => *w = Some(waker.clone()),
            }
        }
        Poll::Pending
    }
}

impl<T: Copy> ShutdownWaiters<T> {
    /// Stops `id` waiting. Returns the request if it was delivered to waiters and the last of them is now gone
    /// without any having taken it (woken, then dropped unpolled in a `select`): the platform must act on it.
    fn forget(&mut self, id: u64) -> Option<T> {
        let before = self.waiters.len();
        self.waiters.retain(|(i, _)| *i != id);
        let was_last = before > 0 && self.waiters.is_empty();
        self.request.filter(|_| was_last && !self.taken)
    }
}

impl<T: Copy> Default for ShutdownWaiters<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the [`ShutdownWaiters`] live: the platform's is a static behind a spin lock, a test's a `RefCell`.
pub trait WaitersCell<T> {
    /// Runs `f` on the waiters (under the lock). `f` never wakes anyone.
    fn with<R>(&self, f: impl FnOnce(&mut ShutdownWaiters<T>) -> R) -> R;
    /// A request was delivered to waiters that were all dropped before one of them took it: the platform acts on
    /// it as if nobody had been waiting (called outside [`WaitersCell::with`]).
    fn unhandled(&self, request: T);
}

/// Completes with the shutdown request; waiting from its first poll until it is dropped.
pub struct Requested<C: WaitersCell<T>, T: Copy> {
    cell: C,
    id: Option<u64>,
    _request: PhantomData<fn() -> T>,
}

impl<C: WaitersCell<T>, T: Copy> Requested<C, T> {
    /// A future waiting on the waiters in `cell`.
    pub fn new(cell: C) -> Self {
        Requested { cell, id: None, _request: PhantomData }
    }
}

impl<C: WaitersCell<T> + Unpin, T: Copy> Future for Requested<C, T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        let cell = &this.cell;
        let id = *this.id.get_or_insert_with(|| cell.with(|w| w.listen()));
        cell.with(|w| w.poll_waiter(id, cx.waker()))
    }
}

/// The drop guard: a future dropped before (or after) it completed stops waiting, so a later request is not
/// handed to a task that no longer listens (issue 10.10: `listening` stayed set for good).
/// And a request delivered to waiters that were all dropped before one took it goes to the platform (issue 14:
/// dropping the future inside a `select` never makes an `xl shutdown` be ignored).
impl<C: WaitersCell<T>, T: Copy> Drop for Requested<C, T> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            if let Some(request) = self.cell.with(|w| w.forget(id)) {
                self.cell.unhandled(request);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xenstore::fake::{self, HOME};
    use crate::xenstore::{Errno, MsgType};

    use alloc::rc::Rc;
    use alloc::sync::Arc;
    use alloc::task::Wake;
    use core::cell::RefCell;
    use core::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Clone, Default)]
    struct TestCell(Rc<RefCell<ShutdownWaiters<ShutdownRequest>>>, Rc<RefCell<Vec<ShutdownRequest>>>);

    impl WaitersCell<ShutdownRequest> for TestCell {
        fn with<R>(&self, f: impl FnOnce(&mut ShutdownWaiters<ShutdownRequest>) -> R) -> R {
            f(&mut self.0.borrow_mut())
        }
        fn unhandled(&self, request: ShutdownRequest) {
            self.1.borrow_mut().push(request);
        }
    }

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once(f: &mut Requested<TestCell, ShutdownRequest>, waker: &Arc<CountingWaker>) -> Poll<ShutdownRequest> {
        let waker = Waker::from(waker.clone());
        Pin::new(f).poll(&mut Context::from_waker(&waker))
    }

    fn wake_all(d: Delivery) -> usize {
        match d {
            Delivery::Wake(w) => {
                let n = w.len();
                w.into_iter().for_each(Waker::wake);
                n
            }
            Delivery::NoWaiter => panic!("nobody was waiting"),
        }
    }

    #[test]
    fn a_dropped_waiter_no_longer_counts_as_listening() {
        // Issue 10.10: `select(shutdown::requested(), work)` where the work wins drops the shutdown future; the
        // request that comes later must stop the domain, not go to a task that no longer waits.
        let cell = TestCell::default();
        let waker = Arc::new(CountingWaker::default());
        let mut waiter = Requested::new(cell.clone());
        assert_eq!(poll_once(&mut waiter, &waker), Poll::Pending);
        assert_eq!(cell.0.borrow().waiting(), 1);
        drop(waiter);
        assert_eq!(cell.0.borrow().waiting(), 0, "still listening after the future was dropped");
        assert!(matches!(cell.0.borrow_mut().deliver(ShutdownRequest::Reboot), Delivery::NoWaiter));
        assert_eq!(cell.0.borrow().request(), Some(ShutdownRequest::Reboot));
    }

    #[test]
    fn a_request_whose_every_waiter_was_dropped_before_taking_it_goes_to_the_platform() {
        // `select(shutdown::requested(), work)` where the request and the work's completion arrive in the same
        // round: the shutdown future was woken but is dropped unpolled. The request must not be lost (the domain
        // would ignore `xl shutdown` for good): the platform acts on it, exactly once.
        let cell = TestCell::default();
        let waker = Arc::new(CountingWaker::default());
        let (mut a, mut b) = (Requested::new(cell.clone()), Requested::new(cell.clone()));
        assert_eq!(poll_once(&mut a, &waker), Poll::Pending);
        assert_eq!(poll_once(&mut b, &waker), Poll::Pending);
        assert_eq!(wake_all(cell.0.borrow_mut().deliver(ShutdownRequest::Poweroff)), 2);
        drop(a);
        assert!(cell.1.borrow().is_empty(), "another waiter may still take it");
        drop(b);
        assert_eq!(*cell.1.borrow(), [ShutdownRequest::Poweroff], "dropped unpolled: the request went to nobody");
        // Once a waiter has taken the request, dropping the others hands nothing to the platform.
        let cell = TestCell::default();
        let (mut a, mut b) = (Requested::new(cell.clone()), Requested::new(cell.clone()));
        assert_eq!(poll_once(&mut a, &waker), Poll::Pending);
        assert_eq!(poll_once(&mut b, &waker), Poll::Pending);
        wake_all(cell.0.borrow_mut().deliver(ShutdownRequest::Reboot));
        assert_eq!(poll_once(&mut a, &waker), Poll::Ready(ShutdownRequest::Reboot));
        drop((a, b));
        assert!(cell.1.borrow().is_empty(), "taken by a waiter: the app handles it");
    }

    #[test]
    fn every_waiter_is_woken_and_completes_with_the_request() {
        let cell = TestCell::default();
        let (w1, w2) = (Arc::new(CountingWaker::default()), Arc::new(CountingWaker::default()));
        let (mut a, mut b) = (Requested::new(cell.clone()), Requested::new(cell.clone()));
        let unpolled = Requested::new(cell.clone());
        assert_eq!(poll_once(&mut a, &w1), Poll::Pending);
        assert_eq!(poll_once(&mut b, &w2), Poll::Pending);
        assert_eq!(poll_once(&mut a, &w1), Poll::Pending, "polled again: one waker kept, not two");
        assert_eq!(cell.0.borrow().waiting(), 2, "a future never polled is not waiting");
        drop(unpolled);
        assert_eq!(wake_all(cell.0.borrow_mut().deliver(ShutdownRequest::Poweroff)), 2);
        assert_eq!((w1.0.load(Ordering::SeqCst), w2.0.load(Ordering::SeqCst)), (1, 1));
        assert_eq!(poll_once(&mut a, &w1), Poll::Ready(ShutdownRequest::Poweroff));
        assert_eq!(poll_once(&mut b, &w2), Poll::Ready(ShutdownRequest::Poweroff));
        // A waiter that starts after the request completes at once.
        let mut late = Requested::new(cell.clone());
        assert_eq!(poll_once(&mut late, &w1), Poll::Ready(ShutdownRequest::Poweroff));
        drop((a, b, late));
        assert_eq!(cell.0.borrow().waiting(), 0);
        // Every waiter gone (the app took the request and moved on): the next request is the platform's to act on.
        assert!(matches!(cell.0.borrow_mut().deliver(ShutdownRequest::Reboot), Delivery::NoWaiter));
    }

    #[test]
    fn parses_the_toolstack_values() {
        assert_eq!(ShutdownRequest::parse(b"poweroff"), Ok(Some(ShutdownRequest::Poweroff)));
        assert_eq!(ShutdownRequest::parse(b"halt"), Ok(Some(ShutdownRequest::Halt)));
        assert!(ShutdownRequest::Halt.is_poweroff() && ShutdownRequest::Poweroff.is_poweroff());
        assert!(!ShutdownRequest::Reboot.is_poweroff() && !ShutdownRequest::Suspend.is_poweroff());
        assert_eq!(ShutdownRequest::parse(b"reboot"), Ok(Some(ShutdownRequest::Reboot)));
        assert_eq!(ShutdownRequest::parse(b"suspend"), Ok(Some(ShutdownRequest::Suspend)));
        assert_eq!(ShutdownRequest::parse(b""), Ok(None));
        assert_eq!(ShutdownRequest::Reboot.to_string(), "reboot");
        let e = ShutdownRequest::parse(b"crash\x01").unwrap_err();
        assert_eq!(e.value.as_str(), "crash?");
        assert_eq!(
            e.to_string(),
            "control/shutdown holds \"crash?\", which is not poweroff, reboot, suspend or halt; ignoring it"
        );
        assert!(ShutdownRequest::parse(b"Reboot").is_err(), "case matters");
        assert!(ShutdownRequest::parse(b"reboot\0").is_err());
    }

    #[test]
    fn advertises_poweroff_and_reboot_and_suspend_only_where_it_works() {
        let (mut xs, fake) = fake::client();
        advertise(&mut xs, true).unwrap();
        assert_eq!(fake.borrow().get("control/feature-suspend").unwrap(), b"1");
        let (mut xs, fake) = fake::client();
        advertise(&mut xs, false).unwrap();
        let f = fake.borrow();
        assert_eq!(f.get("control/feature-poweroff").unwrap(), b"1");
        assert_eq!(f.get("control/feature-reboot").unwrap(), b"1");
        assert!(!f.exists("control/feature-suspend"));
        let writes: Vec<_> = f.received(MsgType::Write).into_iter().map(|w| w.payload).collect();
        assert_eq!(writes, [b"control/feature-poweroff\x001".to_vec(), b"control/feature-reboot\x001".to_vec()]);
    }

    #[test]
    fn request_is_read_after_its_watch_event_and_acknowledged() {
        let (mut xs, fake) = fake::client();
        watch(&mut xs, "ctl").unwrap();
        let deadline = fake.borrow().now + 1_000_000_000;
        // The initial firing: the key does not exist yet.
        let first = xs.wait_watch_event(deadline).unwrap().unwrap();
        assert_eq!(request_after_event(&mut xs, &first).unwrap(), None);

        fake.borrow_mut().schedule(2, "control/shutdown", Some(b"reboot"));
        let event = xs.wait_watch_event(deadline).unwrap().unwrap();
        assert_eq!(request_after_event(&mut xs, &event).unwrap(), Some(ShutdownRequest::Reboot));
        acknowledge(&mut xs).unwrap();
        assert_eq!(fake.borrow().get("control/shutdown").unwrap(), b"");
        let ack = fake.borrow().received(MsgType::Write).pop().unwrap();
        assert_eq!(ack.payload, b"control/shutdown\0", "an empty value, no NUL after it");
        // Our own acknowledgement fires the watch too; it reads as no request.
        let echo = xs.wait_watch_event(deadline).unwrap().unwrap();
        assert_eq!(request_after_event(&mut xs, &echo).unwrap(), None);
    }

    #[test]
    fn events_for_other_paths_are_not_requests() {
        let (mut xs, fake) = fake::client();
        let other = WatchEvent { path: "device/vif/0/state".into(), token: "x".into() };
        assert_eq!(request_after_event(&mut xs, &other).unwrap(), None);
        let lookalike = WatchEvent { path: "mycontrol/shutdown".into(), token: "x".into() };
        assert_eq!(request_after_event(&mut xs, &lookalike).unwrap(), None);
        fake.borrow_mut().set("control/shutdown", b"poweroff");
        let absolute = WatchEvent { path: format!("{HOME}/control/shutdown"), token: "x".into() };
        assert_eq!(request_after_event(&mut xs, &absolute).unwrap(), Some(ShutdownRequest::Poweroff));
        assert!(fake.borrow().log.len() == 1, "only the last one read xenstore");
    }

    #[test]
    fn unknown_values_and_xenstore_errors_are_reported() {
        let (mut xs, fake) = fake::client();
        fake.borrow_mut().set("control/shutdown", b"hibernate");
        let e = read_request(&mut xs).unwrap_err();
        assert_eq!(e, ControlError::Unknown(UnknownRequest { value: InlineStr::from_bytes(b"hibernate") }));
        fake.borrow_mut().eacces.insert(format!("{HOME}/control/shutdown"));
        let e = read_request(&mut xs).unwrap_err();
        let ControlError::Xenstore(inner) = e else { panic!("{e:?}") };
        assert_eq!(inner.errno(), Some(Errno::EACCES));
        assert!(e.to_string().contains("XS_READ control/shutdown: xenstored answered EACCES"), "{e}");
    }
}
