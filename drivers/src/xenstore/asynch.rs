//! Xenstore as a run loop sees it ([`XsAsync`]): each request a future that completes when its reply arrives or
//! its deadline passes, and watch events awaited the same way, so the code that waits on xenstore (the xenbus
//! handshakes) never blocks the vCPU. Written once, generic over [`XsAsync`]:
//! - the platform implements it over the non-blocking path ([`Xenstore::start`], [`Xenstore::poll_request`],
//!   [`Xenstore::give_up`]), woken by the xenstore event channel and its timers;
//! - the blocking [`Xenstore`] implements it too, every future ready at once, so host tests run the same code
//!   against the fake xenstored, and start-of-day code (before the run loop) can call it with
//!   [`complete_now`].

use alloc::string::String;
use alloc::vec::Vec;
use core::future::{ready, Future};
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use super::client::{Request, WatchEvent, Xenstore};
use super::error::XsError;
use super::{XsPlatform, XsRing};

/// An asynchronous xenstore client (see the module documentation).
pub trait XsAsync {
    /// Xen system time, in nanoseconds.
    fn now_ns(&self) -> u64;

    /// A watch token no earlier call returned: `prefix` and a counter.
    fn unique_token(&mut self, prefix: &str) -> String;

    /// Runs `request` to its end: the reply's payload, or why not (the daemon's error, a protocol violation, or
    /// no reply by the client's per-request timeout).
    fn request(&mut self, request: Request<'_>) -> impl Future<Output = Result<Vec<u8>, XsError>>;

    /// The oldest watch event carrying `token`, waiting for one until system time reaches `deadline_ns` (`None`
    /// then). Events for other tokens stay queued.
    fn watch_event_for(
        &mut self,
        token: &str,
        deadline_ns: u64,
    ) -> impl Future<Output = Result<Option<WatchEvent>, XsError>>;
}

/// The blocking client: each future is ready when first polled (the waiting happened inside, through
/// [`XsPlatform::wait`]).
impl<R: XsRing, P: XsPlatform> XsAsync for Xenstore<R, P> {
    fn now_ns(&self) -> u64 {
        self.platform().now_ns()
    }

    fn unique_token(&mut self, prefix: &str) -> String {
        Xenstore::unique_token(self, prefix)
    }

    fn request(&mut self, request: Request<'_>) -> impl Future<Output = Result<Vec<u8>, XsError>> {
        ready(self.call_blocking(request))
    }

    fn watch_event_for(
        &mut self,
        token: &str,
        deadline_ns: u64,
    ) -> impl Future<Output = Result<Option<WatchEvent>, XsError>> {
        ready(self.wait_watch_event_for(token, deadline_ns))
    }
}

/// Runs a future over the blocking [`Xenstore`] (whose futures are always ready) to its end, in one poll.
///
/// # Panics
/// If `future` is not ready at once: it awaited something other than the blocking client (a bug in the
/// caller, caught by every host test of the function).
pub fn complete_now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("complete_now: the future waited on something other than the blocking xenstore client"),
    }
}
