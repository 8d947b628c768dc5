//! `sirocco_tls`'s server over an in-memory stream: whatever a client sends, cut into reads of fuzzer-chosen
//! sizes, the accept (and the reads after it) ends in one poll (the stream never waits: it answers bytes or the
//! end), with an error or a connection, never a panic; the server never hands out plaintext it was not sent
//! encrypted under a finished handshake (the fuzzer cannot make one: its bytes are never a valid Finished).
//!
//! Input: byte 0 = how many read sizes follow (0-7), then those sizes (each 1-256 plus 256 x the next byte's
//! low bits, used in turn; none: 4096), then the bytes the client sends. The committed corpus starts from a real
//! ClientHello (OpenSSL's), so the fuzzer gets past parsing into the server's flight and the wait for the
//! client's Finished.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use embedded_io_async::{ErrorType, Read, Write};
use libfuzzer_sys::fuzz_target;
use sirocco_tls::{Identity, SelfSigned, SubjectName, TlsAcceptor, TlsError};

#[derive(Debug)]
struct Gone;

impl embedded_io_async::Error for Gone {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        embedded_io_async::ErrorKind::BrokenPipe
    }
}

struct Stream<'a> {
    input: &'a [u8],
    pos: usize,
    sizes: Vec<usize>,
    reads: usize,
    written: usize,
}

impl ErrorType for Stream<'_> {
    type Error = Gone;
}

impl Read for Stream<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Gone> {
        let size = if self.sizes.is_empty() { 4096 } else { self.sizes[self.reads % self.sizes.len()] };
        self.reads += 1;
        let n = size.min(buf.len()).min(self.input.len() - self.pos);
        buf[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Stream<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Gone> {
        self.written += buf.len();
        Ok(buf.len())
    }
}

fn now() -> Option<Duration> {
    Some(Duration::from_secs(1_800_000_000))
}

/// One server for every run: making a key per input would be most of the time.
fn acceptor() -> &'static TlsAcceptor {
    static ACCEPTOR: OnceLock<TlsAcceptor> = OnceLock::new();
    ACCEPTOR.get_or_init(|| {
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
        let cert = SelfSigned::generate(&[SubjectName::Dns("fuzz.test")], now().unwrap(), 30, &mut rng).unwrap();
        TlsAcceptor::new(Identity::from_self_signed(&cert), now).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n % 8).min(rest.len() / 2);
    let sizes: Vec<usize> = rest[..2 * n].chunks(2).map(|c| 1 + usize::from(c[0]) + 256 * usize::from(c[1] & 3)).collect();
    let input = &rest[2 * n..];
    let stream = Stream { input, pos: 0, sizes, reads: 0, written: 0 };
    let fut = pin!(async {
        let mut tls = match acceptor().accept(stream).await {
            Ok(tls) => tls,
            Err(TlsError::Io(_)) => panic!("the stream never fails"),
            Err(_) => return,
        };
        let mut buf = [0u8; 512];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => panic!("plaintext from a client that never finished a handshake"),
            }
        }
    });
    let mut fut = fut;
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(()) => {}
        Poll::Pending => panic!("the server waited on a stream that never makes it wait"),
    }
});
