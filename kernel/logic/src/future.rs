//! Small future combinators the runtime and apps share, free of `unsafe` and tested on the host.

use alloc::sync::Arc;
use alloc::task::Wake;
use core::future::Future;
use core::task::{Poll, Waker};

/// Polls two futures; completes with the first to finish (the other is dropped).
pub async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = core::pin::pin!(a);
    let mut b = core::pin::pin!(b);
    core::future::poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

/// The result of [`select`].
#[derive(Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future finished first.
    Left(A),
    /// The second future finished first.
    Right(B),
}

/// A waker that does nothing.
pub fn noop_waker() -> Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::task::Context;

    /// Pending until opened.
    #[derive(Clone, Default)]
    struct Gate(Arc<spin::Mutex<bool>>);
    impl Gate {
        async fn wait(&self) {
            core::future::poll_fn(|_| if *self.0.lock() { Poll::Ready(()) } else { Poll::Pending }).await
        }
    }

    #[test]
    fn select_takes_whichever_finishes_first() {
        let (g1, g2) = (Gate::default(), Gate::default());
        let fut = select(
            async {
                g1.wait().await;
                1
            },
            async {
                g2.wait().await;
                2
            },
        );
        let mut fut = core::pin::pin!(fut);
        let w = noop_waker();
        let mut cx = Context::from_waker(&w);
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
        *g2.0.lock() = true;
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Either::Right(2)));
    }

    #[test]
    fn select_prefers_the_first_when_both_are_ready() {
        let fut = select(async { 'a' }, async { 'b' });
        let mut fut = core::pin::pin!(fut);
        let w = noop_waker();
        assert_eq!(fut.as_mut().poll(&mut Context::from_waker(&w)), Poll::Ready(Either::Left('a')));
    }
}
