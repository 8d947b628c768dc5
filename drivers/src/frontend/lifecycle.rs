//! What a front end does when its backend's `state` changes after the device is up: the one policy every device
//! follows (the platform used to spell it out once per driver).
//!
//! - The backend **leaves** (Closing, Closed, its `state` gone or unreadable: netback unbound, `xl network-detach`,
//!   `xl block-detach`, the driver domain stopping) while we are connected: the device stops using the rings and
//!   our end follows the backend's through the close handshake, so the toolstack's teardown completes.
//!   - [`OnBackendGone::Reconnect`] (netfront): the device is reset and waits, disconnected, for a backend to be
//!     there again; when one is at **InitWait** (the same one rebound, or a new one attached with the same device
//!     id), the connect handshake runs again.
//!   - [`OnBackendGone::Detach`] (blkfront): what is pending fails, our end closes for good: nothing more happens,
//!     whatever the backend does later.
//! - Anything else (the backend still connected, or coming back while we are connected) needs nothing.
//!
//! [`Lifecycle`] makes the decision from the state alone (pure, so every transition is tested); [`Lifecycle::
//! follow`] reads the backend's state and decides; [`close_after_backend_left`] is the handshake a `Disconnect` or
//! `Detach` runs.

use super::{backend_state_async, close_async, wait_for_backend_closed_async, DeviceInfo, FrontendError, XenbusState};
use crate::xenstore::{complete_now, Xenstore, XsAsync, XsPlatform, XsRing};

/// How a device class reacts when its backend leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnBackendGone {
    /// Close in step, reset, and connect again when a backend is back at InitWait (netfront).
    Reconnect,
    /// Fail what is pending and close our end for good (blkfront: a detached disk does not come back).
    Detach,
}

/// Where our end of the device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Connected to a backend.
    Connected,
    /// The backend left; waiting for one to be at InitWait ([`OnBackendGone::Reconnect`] only).
    Disconnected,
    /// The backend left for good ([`OnBackendGone::Detach`]); nothing more happens.
    Detached,
}

/// What the device must do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    Stay,
    /// The backend left: stop using the rings (reset the device), then [`close_after_backend_left`].
    Disconnect,
    /// A backend is at InitWait while we are disconnected: run the connect handshake again, then call
    /// [`Lifecycle::reconnected`] if it worked (if not, the next change of the backend's state retries).
    Reconnect,
    /// The backend left for good: fail what is pending, then [`close_after_backend_left`].
    Detach,
}

/// The lifecycle of one device's front end after its first connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifecycle {
    policy: OnBackendGone,
    link: Link,
}

/// Whether the backend's `state` (as [`super::backend_state`] read it) says it is leaving or gone: Closing, Closed, no
/// `state` at all (Unknown), or unreadable (its directory removed along with its permissions).
pub fn backend_gone(state: &Result<XenbusState, FrontendError>) -> bool {
    matches!(state, Ok(XenbusState::Closing | XenbusState::Closed | XenbusState::Unknown) | Err(_))
}

impl Lifecycle {
    /// A device that just connected, following `policy`.
    pub fn connected(policy: OnBackendGone) -> Lifecycle {
        Lifecycle { policy, link: Link::Connected }
    }

    /// Where our end is.
    pub fn link(&self) -> Link {
        self.link
    }

    /// The policy.
    pub fn policy(&self) -> OnBackendGone {
        self.policy
    }

    /// Decides what to do now that the backend's state is `state`.
    pub fn on_backend_state(&mut self, state: &Result<XenbusState, FrontendError>) -> Action {
        match (self.link, self.policy) {
            (Link::Connected, OnBackendGone::Reconnect) if backend_gone(state) => {
                self.link = Link::Disconnected;
                Action::Disconnect
            }
            (Link::Connected, OnBackendGone::Detach) if backend_gone(state) => {
                self.link = Link::Detached;
                Action::Detach
            }
            (Link::Disconnected, _) if matches!(state, Ok(XenbusState::InitWait)) => Action::Reconnect,
            _ => Action::Stay,
        }
    }

    /// The reconnect an [`Action::Reconnect`] asked for worked: we are connected again.
    pub fn reconnected(&mut self) {
        if self.link == Link::Disconnected {
            self.link = Link::Connected;
        }
    }

    /// The domain resumed in a new domain: the backend we were connected to is gone with the old one, without a
    /// close handshake; a new one (at InitWait) is to be connected ([`Action::Reconnect`]). A detached device
    /// stays detached.
    pub fn resumed(&mut self) {
        if self.link == Link::Connected {
            self.link = Link::Disconnected;
        }
    }

    /// Reads the backend's state (after a watch event on it) and decides ([`Lifecycle::on_backend_state`]).
    /// Returns the state read too, for the log. Blocking; [`Lifecycle::follow_async`] for a run loop.
    pub fn follow<R: XsRing, P: XsPlatform>(
        &mut self,
        xs: &mut Xenstore<R, P>,
        dev: &DeviceInfo,
    ) -> (Action, Result<XenbusState, FrontendError>) {
        complete_now(self.follow_async(xs, dev))
    }

    /// [`Lifecycle::follow`], asynchronously.
    pub async fn follow_async<X: XsAsync>(
        &mut self,
        xs: &mut X,
        dev: &DeviceInfo,
    ) -> (Action, Result<XenbusState, FrontendError>) {
        let state = backend_state_async(xs, dev).await;
        (self.on_backend_state(&state), state)
    }
}

/// The close handshake after the backend left: our state Closing, the backend's Closing or Closed (or gone),
/// ours Closed (the toolstack's teardown waits for that); then, for a device that will reconnect, the backend's
/// Closed (or gone) awaited: by then it has unmapped the old rings, so they can be reset. Each wait up to
/// `timeout_ns`. A backend that vanished without a word times this out: the device is reset anyway. Blocking;
/// [`close_after_backend_left_async`] for a run loop.
pub fn close_after_backend_left<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    policy: OnBackendGone,
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    complete_now(close_after_backend_left_async(xs, dev, policy, timeout_ns))
}

/// [`close_after_backend_left`], asynchronously: the run loop keeps running other devices and timers while the
/// backend takes its time.
pub async fn close_after_backend_left_async<X: XsAsync>(
    xs: &mut X,
    dev: &DeviceInfo,
    policy: OnBackendGone,
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    let state = close_async(xs, dev, timeout_ns).await?;
    match policy {
        OnBackendGone::Reconnect => wait_for_backend_closed_async(xs, dev, timeout_ns).await,
        OnBackendGone::Detach => Ok(state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::{enumerate, read_state, DeviceKind};
    use crate::xenstore::fake::{self, FakeClient, Shared};
    use crate::xenstore::{Errno, ErrorPath, MsgType, Request, WatchEvent, XsError};
    use alloc::format;
    use alloc::vec::Vec;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use XenbusState::*;

    const SECOND: u64 = 1_000_000_000;

    fn device(kind: DeviceKind, id: u32) -> (FakeClient, Shared, DeviceInfo, alloc::string::String) {
        let (mut xs, fake) = fake::client();
        let backend = format!("/local/domain/0/backend/{kind}/7/{id}");
        {
            let mut f = fake.borrow_mut();
            f.set(&format!("device/{kind}/{id}/backend"), backend.as_bytes());
            f.set(&format!("device/{kind}/{id}/backend-id"), b"0");
            f.set(&format!("device/{kind}/{id}/state"), b"4");
            f.set(&format!("{backend}/state"), b"4");
        }
        let dev = enumerate(&mut xs, kind).unwrap().remove(0);
        (xs, fake, dev, format!("{backend}/state"))
    }

    fn eacces() -> Result<XenbusState, FrontendError> {
        let path = ErrorPath::tail("state");
        Err(FrontendError::Xenstore(XsError::Daemon { op: MsgType::Read, path, errno: Errno::EACCES }))
    }

    #[test]
    fn gone_means_closing_closed_missing_or_unreadable() {
        for s in [Closing, Closed, Unknown] {
            assert!(backend_gone(&Ok(s)), "{s}");
        }
        for s in [Initialising, InitWait, Initialised, Connected, Reconfiguring, Reconfigured] {
            assert!(!backend_gone(&Ok(s)), "{s}");
        }
        assert!(backend_gone(&eacces()));
    }

    #[test]
    fn reconnect_policy_disconnects_once_then_reconnects_at_initwait() {
        let mut l = Lifecycle::connected(OnBackendGone::Reconnect);
        assert_eq!(l.on_backend_state(&Ok(Connected)), Action::Stay);
        assert_eq!(l.on_backend_state(&Ok(Closing)), Action::Disconnect);
        assert_eq!(l.link(), Link::Disconnected);
        // The rest of the backend's way out, and its directory going, need nothing more.
        for s in [Ok(Closed), Ok(Unknown), eacces(), Ok(Initialising)] {
            assert_eq!(l.on_backend_state(&s), Action::Stay, "{s:?}");
        }
        assert_eq!(l.on_backend_state(&Ok(InitWait)), Action::Reconnect);
        // A failed reconnect: still disconnected, the next InitWait retries.
        assert_eq!(l.on_backend_state(&Ok(InitWait)), Action::Reconnect);
        l.reconnected();
        assert_eq!(l.link(), Link::Connected);
        assert_eq!(l.on_backend_state(&Ok(Connected)), Action::Stay);
        assert_eq!(l.on_backend_state(&Ok(InitWait)), Action::Stay, "connected: InitWait is not ours to act on");
        assert_eq!(l.on_backend_state(&eacces()), Action::Disconnect, "a vanished backend leaves too");
    }

    #[test]
    fn a_resume_disconnects_without_a_handshake_and_the_new_backend_reconnects() {
        for policy in [OnBackendGone::Reconnect, OnBackendGone::Detach] {
            let mut l = Lifecycle::connected(policy);
            l.resumed();
            assert_eq!(l.link(), Link::Disconnected);
            assert_eq!(l.on_backend_state(&Ok(Initialising)), Action::Stay);
            assert_eq!(l.on_backend_state(&Ok(InitWait)), Action::Reconnect);
            l.reconnected();
            assert_eq!(l.link(), Link::Connected);
        }
        let mut detached = Lifecycle::connected(OnBackendGone::Detach);
        assert_eq!(detached.on_backend_state(&Ok(Closed)), Action::Detach);
        detached.resumed();
        assert_eq!(detached.link(), Link::Detached, "a detached disk stays detached");
    }

    #[test]
    fn detach_policy_detaches_once_and_for_good() {
        let mut l = Lifecycle::connected(OnBackendGone::Detach);
        assert_eq!(l.on_backend_state(&Ok(Connected)), Action::Stay);
        assert_eq!(l.on_backend_state(&Ok(Closed)), Action::Detach);
        assert_eq!(l.link(), Link::Detached);
        for s in [Ok(Closing), Ok(InitWait), Ok(Connected), Ok(Unknown)] {
            assert_eq!(l.on_backend_state(&s), Action::Stay, "{s:?}");
        }
        l.reconnected();
        assert_eq!(l.link(), Link::Detached);
    }

    /// netback unbound and a new backend attached (`xl network-detach` then `network-attach`), against the fake
    /// xenstored: the watch fires, we disconnect in step, and reconnect when the new backend is at InitWait.
    #[test]
    fn netfront_detach_attach_against_the_fake_xenstored() {
        let (mut xs, fake, dev, backend_state) = device(DeviceKind::Vif, 0);
        let mut l = Lifecycle::connected(OnBackendGone::Reconnect);
        xs.watch(&backend_state, "be").unwrap();
        let deadline = |f: &Shared| f.borrow().now + SECOND;
        assert!(xs.wait_watch_event_for("be", deadline(&fake)).unwrap().is_some(), "initial firing");
        assert_eq!(l.follow(&mut xs, &dev).0, Action::Stay);

        // The backend closes; it follows our Closing to Closed, then its directory goes.
        {
            let mut f = fake.borrow_mut();
            f.schedule(2, &backend_state, Some(b"5"));
            f.on_write("device/vif/0/state", b"5", &[(&backend_state, Some(b"6"))], 2);
        }
        assert!(xs.wait_watch_event_for("be", deadline(&fake)).unwrap().is_some());
        let (action, state) = l.follow(&mut xs, &dev);
        assert_eq!((action, state.unwrap()), (Action::Disconnect, Closing));
        assert_eq!(close_after_backend_left(&mut xs, &dev, l.policy(), SECOND).unwrap(), Closed);
        assert_eq!(read_state(&mut xs, &dev).unwrap(), Closed, "our end followed, so the detach completes");
        fake.borrow_mut().remove(&dev.backend_path);
        while xs.wait_watch_event_for("be", deadline(&fake)).unwrap().is_some() {
            assert_eq!(l.follow(&mut xs, &dev).0, Action::Stay);
        }

        // A new backend appears with the same device id, at InitWait.
        fake.borrow_mut().schedule(1, &backend_state, Some(b"2"));
        assert!(xs.wait_watch_event_for("be", deadline(&fake)).unwrap().is_some());
        let (action, state) = l.follow(&mut xs, &dev);
        assert_eq!((action, state.unwrap()), (Action::Reconnect, InitWait));
        l.reconnected();
        assert_eq!(l.link(), Link::Connected);
    }

    /// `xl block-detach`: the backend goes Closing; we detach, close our end once, and ignore what follows.
    #[test]
    fn blkfront_backend_close_against_the_fake_xenstored() {
        let (mut xs, fake, dev, backend_state) = device(DeviceKind::Vbd, 51712);
        let mut l = Lifecycle::connected(OnBackendGone::Detach);
        fake.borrow_mut().set(&backend_state, b"5");
        fake.borrow_mut().on_write("device/vbd/51712/state", b"5", &[(&backend_state, Some(b"6"))], 1);
        let (action, _) = l.follow(&mut xs, &dev);
        assert_eq!(action, Action::Detach);
        close_after_backend_left(&mut xs, &dev, l.policy(), SECOND).unwrap();
        assert_eq!(read_state(&mut xs, &dev).unwrap(), Closed);
        let writes = fake.borrow().received(MsgType::Write).len();
        fake.borrow_mut().set(&backend_state, b"2");
        assert_eq!(l.follow(&mut xs, &dev).0, Action::Stay, "detached for good");
        assert_eq!(fake.borrow().received(MsgType::Write).len(), writes, "nothing more written");
    }

    /// A backend that vanished without a word: the close handshake times out (and says so); the device was
    /// reset regardless, and a later InitWait still reconnects.
    #[test]
    fn backend_vanishing_silently_times_out_the_handshake_but_not_the_reconnect() {
        let (mut xs, fake, dev, backend_state) = device(DeviceKind::Vif, 0);
        let mut l = Lifecycle::connected(OnBackendGone::Reconnect);
        fake.borrow_mut().set(&backend_state, b"5");
        assert_eq!(l.follow(&mut xs, &dev).0, Action::Disconnect);
        let e = close_after_backend_left(&mut xs, &dev, l.policy(), SECOND).unwrap_err();
        assert!(matches!(e, FrontendError::Timeout { last_seen: Some(Closing), .. }), "{e:?}");
        fake.borrow_mut().set(&backend_state, b"2");
        assert_eq!(l.follow(&mut xs, &dev).0, Action::Reconnect);
        let unwatched: Vec<_> = fake.borrow().watches();
        assert!(unwatched.is_empty(), "the handshake's watches were removed: {unwatched:?}");
    }

    /// An [`XsAsync`] whose every request and watch wait first returns `Pending` once, as the platform's do
    /// while the reply is on its way: the handshakes must run in steps, handing the vCPU back in between.
    struct Yielding<'a>(&'a mut FakeClient);

    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: core::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if core::mem::replace(&mut self.0, true) {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    impl XsAsync for Yielding<'_> {
        fn now_ns(&self) -> u64 {
            XsAsync::now_ns(&*self.0)
        }
        fn unique_token(&mut self, prefix: &str) -> alloc::string::String {
            XsAsync::unique_token(&mut *self.0, prefix)
        }
        async fn request(&mut self, request: Request<'_>) -> Result<Vec<u8>, XsError> {
            YieldOnce(false).await;
            self.0.request(request).await
        }
        async fn watch_event_for(&mut self, token: &str, deadline_ns: u64) -> Result<Option<WatchEvent>, XsError> {
            YieldOnce(false).await;
            self.0.watch_event_for(token, deadline_ns).await
        }
    }

    /// Polls `future` to its end; returns its output and how many polls it took.
    fn run<F: Future>(future: F) -> (F::Output, u32) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut future = pin!(future);
        let mut polls = 0;
        loop {
            polls += 1;
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return (output, polls);
            }
        }
    }

    #[test]
    fn the_async_handshake_hands_the_vcpu_back_between_steps() {
        let (mut xs, fake, dev, backend_state) = device(DeviceKind::Vif, 0);
        let mut l = Lifecycle::connected(OnBackendGone::Reconnect);
        fake.borrow_mut().set(&backend_state, b"5");
        fake.borrow_mut().on_write("device/vif/0/state", b"5", &[(&backend_state, Some(b"6"))], 2);
        let mut ys = Yielding(&mut xs);
        let ((action, _), polls) = run(l.follow_async(&mut ys, &dev));
        assert_eq!((action, polls), (Action::Disconnect, 2));
        let (closed, polls) = run(close_after_backend_left_async(&mut ys, &dev, l.policy(), SECOND));
        assert_eq!(closed.unwrap(), Closed);
        // Closing written, watch, event, read, unwatch, Closed written, watch, event(s), read, unwatch: each a
        // separate step.
        assert!(polls >= 10, "{polls} polls");
        assert_eq!(read_state(&mut xs, &dev).unwrap(), Closed);
        assert!(fake.borrow().watches().is_empty());
    }
}
