//! An in-memory [`Transport`] for driving `http::serve` without a network: scripted input handed out in chunks
//! of a chosen size (optionally yielding to the executor before every read, so that many connections interleave),
//! the output collected. And a small round-robin executor for such futures.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use sirocco_net::http::Transport;
use sirocco_net::NetError;

/// A peer that sends `head`, then `filler` bytes of `b'x'`, then `tail`, then closes its side.
pub struct MemStream {
    pub head: Vec<u8>,
    pub filler: usize,
    pub tail: Vec<u8>,
    /// Bytes handed out so far.
    pub pos: usize,
    /// Most bytes one read returns.
    pub chunk: usize,
    /// Yield to the executor once before every read.
    pub yield_each_read: bool,
    /// Every read call, including the final `Ok(0)`.
    pub reads: u64,
    pub output: Vec<u8>,
    pub closed: bool,
}

impl MemStream {
    pub fn new(head: &[u8], filler: usize, tail: &[u8], chunk: usize) -> MemStream {
        MemStream {
            head: head.to_vec(),
            filler,
            tail: tail.to_vec(),
            pos: 0,
            chunk,
            yield_each_read: false,
            reads: 0,
            output: Vec::new(),
            closed: false,
        }
    }

    fn len(&self) -> usize {
        self.head.len() + self.filler + self.tail.len()
    }

    fn byte(&self, at: usize) -> u8 {
        if at < self.head.len() {
            self.head[at]
        } else if at < self.head.len() + self.filler {
            b'x'
        } else {
            self.tail[at - self.head.len() - self.filler]
        }
    }

    /// The output as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

/// Returns `Pending` once (waking itself at once), then `Ready`.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl Transport for MemStream {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if self.yield_each_read {
            YieldNow(false).await;
        }
        self.reads += 1;
        let n = self.chunk.min(buf.len()).min(self.len() - self.pos);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = self.byte(self.pos + i);
        }
        self.pos += n;
        Ok(n)
    }
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError> {
        assert!(!self.closed, "write after close");
        self.output.extend_from_slice(buf);
        Ok(())
    }
    async fn close(&mut self) -> Result<(), NetError> {
        self.closed = true;
        Ok(())
    }
}

/// Polls every future in turn until all are done (they must only ever wait on [`MemStream`] yields).
pub fn run_all<T>(mut futs: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    let mut rounds = 0u64;
    while out.iter().any(Option::is_none) {
        for (i, f) in futs.iter_mut().enumerate() {
            if out[i].is_none() {
                if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                    out[i] = Some(v);
                }
            }
        }
        rounds += 1;
        assert!(rounds < 100_000_000, "the futures never finish");
    }
    out.into_iter().map(Option::unwrap).collect()
}

/// Runs one future to completion.
pub fn block_on<T>(f: impl Future<Output = T>) -> T {
    run_all(vec![Box::pin(f)]).pop().unwrap()
}
