//! [`NetHandle`]: the stack shared between the polling task and the sockets.

use alloc::sync::Arc;
use core::future::{poll_fn, Future};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Poll, Waker};

use crate::device::NetDevice;
use crate::stack::Stack;
use crate::Ipv4Cidr;

struct Shared<D: NetDevice> {
    stack: spin::Mutex<Stack<D>>,
    /// A socket operation queued work for the interface since the last poll.
    poll_wanted: AtomicBool,
    /// The task waiting in [`NetHandle::poll_requested`].
    poll_waker: spin::Mutex<Option<Waker>>,
}

/// A shared [`Stack`]: cheap to clone, `Send` and `Sync` when the device is `Send`.
///
/// The runtime's network task calls [`NetHandle::poll`]; sockets lock the stack for the moment of an
/// operation and call [`NetHandle::request_poll`] when they queued something to send.
pub struct NetHandle<D: NetDevice> {
    shared: Arc<Shared<D>>,
}

impl<D: NetDevice> Clone for NetHandle<D> {
    fn clone(&self) -> Self {
        NetHandle { shared: self.shared.clone() }
    }
}

impl<D: NetDevice> NetHandle<D> {
    /// Shares `stack`.
    pub fn new(stack: Stack<D>) -> Self {
        NetHandle {
            shared: Arc::new(Shared {
                stack: spin::Mutex::new(stack),
                poll_wanted: AtomicBool::new(false),
                poll_waker: spin::Mutex::new(None),
            }),
        }
    }

    /// [`Stack::poll`]: call on every device event, at the returned deadline, and when
    /// [`NetHandle::poll_requested`] completes. Clears the poll request.
    pub fn poll(&self, now_ms: u64) -> Option<u64> {
        self.shared.poll_wanted.store(false, Ordering::Release);
        self.lock().poll(now_ms)
    }

    /// Locks the stack, for queries ([`Stack::stats`], [`Stack::ipv4_address`]...) and for the sockets.
    /// Do not hold the guard across an `.await`, nor while a socket is dropped (its `Drop` locks the stack:
    /// with a spin lock that is a deadlock).
    pub fn lock(&self) -> spin::MutexGuard<'_, Stack<D>> {
        self.shared.stack.lock()
    }

    /// Asks for a poll soon: sockets call this after queuing data, a FIN, a SYN or a window update.
    pub fn request_poll(&self) {
        if !self.shared.poll_wanted.swap(true, Ordering::AcqRel) {
            let waker = self.shared.poll_waker.lock().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Completes once a poll has been requested since the last [`NetHandle::poll`] (at once if one already
    /// was). One waiter at a time: the runtime's network task.
    pub fn poll_requested(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.shared.poll_wanted.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            *self.shared.poll_waker.lock() = Some(cx.waker().clone());
            // Checked again after registering, so a request between the two checks is not lost.
            if self.shared.poll_wanted.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    /// Whether a poll has been requested since the last [`NetHandle::poll`], for loops that check rather than
    /// wait.
    pub fn is_poll_requested(&self) -> bool {
        self.shared.poll_wanted.load(Ordering::Acquire)
    }

    /// Completes with the IPv4 address once there is one (at once with a static address; after the first
    /// lease with DHCP).
    pub async fn wait_ipv4(&self) -> Ipv4Cidr {
        poll_fn(|cx| {
            let mut stack = self.lock();
            match stack.ipv4_address() {
                Some(a) => Poll::Ready(a),
                None => {
                    stack.wait_address(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }
}
