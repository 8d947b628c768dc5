//! [`serve`]: one HTTP/1.1 connection, in bounded memory.

use alloc::vec::Vec;
use core::fmt::Write;
use sirocco_boot_logic::trace::{self, Category, Phase};

use super::budget::MemoryBudget;
use super::request::{parse_head, BadRequest, HeadParser, Request};
use super::{MAX_BODY, MAX_HEAD};
use crate::NetError;

/// Most bytes one read asks for.
pub const READ_CHUNK: usize = 8192;

/// What an open connection holds, charged to the budget when it starts: its buffer, room for a whole head and a
/// read beyond it (so a body is read after the head without moving it).
pub const CONNECTION_BYTES: usize = MAX_HEAD + READ_CHUNK;

/// Most bytes read and thrown away after refusing a request whose body was on its way, so that the client reads
/// the refusal instead of a reset (closing with unread data resets the connection).
pub const MAX_DRAIN: usize = 2 * MAX_BODY;

/// The answer when there is no memory for a connection or a body (written without allocating).
pub const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nServer: sirocco\r\nContent-Type: text/plain\r\n\
Content-Length: 41\r\nRetry-After: 1\r\nConnection: close\r\n\r\nno memory for this request now; retry it\n";

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The byte stream [`serve`] speaks HTTP over: a [`crate::TcpStream`], or an in-memory fake in tests and fuzzing.
// Callers instantiate `serve` with concrete types, so the futures' auto traits (`Send`) are those of the impls.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Reads into `buf`; `Ok(0)` once the peer has closed its side.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError>;
    /// Writes all of `buf`.
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError>;
    /// Closes our side and waits for the connection to end.
    async fn close(&mut self) -> Result<(), NetError>;
    /// The id of the connection's request flows in the trace (`sirocco_boot_logic::trace::flow_id`), so a
    /// request's path from the wire to the handler and back is one flow; 0 if it has none.
    fn flow_id(&self) -> u64 {
        0
    }
}

impl<D: crate::NetDevice> Transport for crate::TcpStream<D> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        crate::TcpStream::read(self, buf).await
    }
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError> {
        crate::TcpStream::write_all(self, buf).await
    }
    async fn close(&mut self) -> Result<(), NetError> {
        crate::TcpStream::close(self).await
    }
    fn flow_id(&self) -> u64 {
        match (self.local_addr(), self.peer_addr()) {
            (Some(local), Some(peer)) => trace::flow_id(local.port(), peer.port()),
            _ => 0,
        }
    }
}

/// What [`serve`] does with a request's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyMode {
    /// Keep it whole, charged to the memory budget, and hand it to [`Handler::respond`] as [`Request::body`]. A
    /// body the budget (or the heap) cannot hold now is answered 503.
    Buffer,
    /// Hand it to [`Handler::body_chunk`] piece by piece as it arrives, in constant memory; [`Request::body`] is
    /// then empty. The default `body_chunk` ignores the pieces: the body is counted and thrown away.
    Stream,
}

/// An application's side of [`serve`].
// Callers instantiate `serve` with concrete handlers, so the futures' auto traits are those of the impls.
#[allow(async_fn_in_trait)]
pub trait Handler {
    /// Decides, from the head (body still empty), what to do with a request's body. Only asked when there is one.
    fn body_mode(&mut self, req: &Request<'_>) -> BodyMode {
        let _ = req;
        BodyMode::Buffer
    }

    /// The next piece of a streamed body ([`BodyMode::Stream`]).
    fn body_chunk(&mut self, req: &Request<'_>, chunk: &[u8]) {
        let _ = (req, chunk);
    }

    /// The whole response to `req` (see [`super::response`]), once its body has been read.
    async fn respond(&mut self, req: &Request<'_>) -> Vec<u8>;

    /// Called once [`Handler::respond`]'s response to `req` has been handed to the transport (before the next
    /// request is read), for per-request accounting such as latency. Not called when the write failed.
    fn sent(&mut self, req: &Request<'_>) {
        let _ = req;
    }
}

impl<H: Handler + ?Sized> Handler for &mut H {
    fn body_mode(&mut self, req: &Request<'_>) -> BodyMode {
        (**self).body_mode(req)
    }
    fn body_chunk(&mut self, req: &Request<'_>, chunk: &[u8]) {
        (**self).body_chunk(req, chunk)
    }
    async fn respond(&mut self, req: &Request<'_>) -> Vec<u8> {
        (**self).respond(req).await
    }
    fn sent(&mut self, req: &Request<'_>) {
        (**self).sent(req)
    }
}

/// A handler from an async closure: bodies are buffered and the closure answers.
pub struct Respond<F>(pub F);

impl<F: AsyncFnMut(&Request<'_>) -> Vec<u8>> Handler for Respond<F> {
    async fn respond(&mut self, req: &Request<'_>) -> Vec<u8> {
        (self.0)(req).await
    }
}

/// How a connection served by [`serve`] ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Requests answered by the handler.
    pub requests: u64,
    /// The request that ended the connection, if one was refused (it was answered with its status).
    pub bad: Option<BadRequest>,
    /// Bytes the parser looked at finding and parsing request heads (a measure of its work: linear in the heads'
    /// sizes, however the bytes arrived; bodies are counted, never scanned).
    pub head_bytes_scanned: u64,
}

/// Writes formatted text into a fixed buffer.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The answer to a refused request, without allocating: `Connection: close`, the reason as the body.
fn refusal(why: BadRequest, out: &mut [u8; 512]) -> &[u8] {
    if why == BadRequest::Overloaded {
        return OVERLOADED;
    }
    let mut body = [0u8; 160];
    let mut b = Cursor { buf: &mut body, len: 0 };
    // Every reason fits; were one not to, the answer would just be shorter.
    let _ = writeln!(b, "{why}");
    let body_len = b.len;
    let (code, reason) = why.status();
    let mut c = Cursor { buf: out, len: 0 };
    let _ = write!(
        c,
        "HTTP/1.1 {code} {reason}\r\nServer: sirocco\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\nConnection: close\r\n\r\n"
    );
    let head_len = c.len;
    out[head_len..head_len + body_len].copy_from_slice(&body[..body_len]);
    &out[..head_len + body_len]
}

/// Answers a refused request, reads and throws away up to `drain` more bytes (the rest of a body on its way; stops
/// early when the peer closes), then closes.
async fn refuse<T: Transport>(s: &mut T, served: &mut Served, why: BadRequest, drain: usize) -> Result<(), NetError> {
    served.bad = Some(why);
    let mut out = [0u8; 512];
    s.write_all(refusal(why, &mut out)).await?;
    let mut left = drain;
    while left > 0 {
        let n = s.read(&mut out[..left.min(512)]).await?;
        if n == 0 {
            break;
        }
        left -= n;
    }
    s.close().await
}

/// Serves one HTTP/1.1 connection: requests are parsed as they arrive (pipelined ones answered strictly in
/// order, each before the next is read), each handed to `handler`, whose whole response is written back; `HEAD`
/// gets the head of the `GET` answer.
///
/// Memory: the connection charges `budget` [`CONNECTION_BYTES`] for its buffer and, for a buffered body, the
/// body's length, before allocating either (an exact allocation, no growth); when the budget or the heap refuses,
/// the connection (or the request) is answered 503 and closed. A streamed body costs nothing more. Work: each
/// head byte is looked at twice (found, then parsed), each body byte copied once.
///
/// A refused request (4xx/5xx, see [`BadRequest`]) is answered and the connection closed; when its body was on
/// its way, up to [`MAX_DRAIN`] bytes of it are read first, so that the client gets the answer, not a reset.
/// Returns when the peer closes or asks to, or with the socket's error.
pub async fn serve<T: Transport, H: Handler>(
    s: &mut T,
    budget: &MemoryBudget,
    mut handler: H,
) -> Result<Served, NetError> {
    let mut served = Served::default();
    let mut buf: Vec<u8> = Vec::new();
    let Some(_connection) = budget.try_charge_reserved(&mut buf, CONNECTION_BYTES) else {
        refuse(s, &mut served, BadRequest::Overloaded, MAX_DRAIN).await?;
        return Ok(served);
    };
    buf.resize(CONNECTION_BYTES, 0);
    // buf[start..end]: received, not yet used.
    let (mut start, mut end) = (0, 0);
    let mut parser = HeadParser::new();
    loop {
        let found = loop {
            let found = parser.find_head(&buf[start..end]);
            served.head_bytes_scanned = parser.work();
            match found {
                Ok(Some(n)) => break n,
                Ok(None) => {}
                Err(why) => {
                    refuse(s, &mut served, why, 0).await?;
                    return Ok(served);
                }
            }
            if end == buf.len() {
                // Less than MAX_HEAD bytes are waiting (or find_head would have refused them).
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            }
            let n = s.read(&mut buf[end..]).await?;
            if n == 0 {
                s.close().await?;
                return Ok(served);
            }
            end += n;
        };
        if buf.len() - (start + found) < READ_CHUNK {
            // Room for a whole read after the head.
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let base = start + found;
        let (head, tail) = buf.split_at_mut(base);
        // tail[..have]: bytes after the head (body, maybe the next request).
        let have = end - base;
        let req = match parse_head(&head[start..]) {
            Ok(req) => req,
            Err(why) => {
                // A refused head may still have a body on its way (413, 417...): read it before closing.
                let drain = if why == BadRequest::BodyTooLarge { MAX_DRAIN } else { 0 };
                refuse(s, &mut served, why, drain.saturating_sub(have)).await?;
                return Ok(served);
            }
        };
        let body_len = req.content_length;
        let mode = if body_len == 0 { BodyMode::Stream } else { handler.body_mode(&req) };
        let mut body: Vec<u8> = Vec::new();
        // Held until the request is answered: the buffered body's share of the budget.
        let _body_charge = match mode {
            BodyMode::Buffer => match budget.try_charge_reserved(&mut body, body_len) {
                Some(charge) => Some(charge),
                None => {
                    refuse(s, &mut served, BadRequest::Overloaded, body_len.saturating_sub(have)).await?;
                    return Ok(served);
                }
            },
            BodyMode::Stream => None,
        };
        if req.expect_continue && have < body_len {
            s.write_all(CONTINUE).await?;
        }
        // The body: first what came with the head, then reads into the tail, each piece used once.
        let (mut got, mut filled) = (0, have);
        let used = loop {
            let n = filled.min(body_len - got);
            match mode {
                BodyMode::Buffer => body.extend_from_slice(&tail[..n]),
                BodyMode::Stream if n > 0 => handler.body_chunk(&req, &tail[..n]),
                BodyMode::Stream => {}
            }
            got += n;
            if got == body_len {
                break n;
            }
            filled = s.read(tail).await?;
            if filled == 0 {
                // The peer gave up mid-body.
                s.close().await?;
                return Ok(served);
            }
        };
        let req = Request { body: &body, ..req };
        served.requests += 1;
        // The request's span in the app's thread of the trace, and its flow's step between the wire's ends.
        let _span = trace::span(Category::App, "http request", served.requests);
        if trace::enabled(Category::App) {
            trace::event(Category::App, Phase::FlowStep, "handler", s.flow_id());
        }
        let mut reply = handler.respond(&req).await;
        if req.method == "HEAD" {
            let head_len = reply.windows(4).position(|w| w == b"\r\n\r\n").map_or(reply.len(), |p| p + 4);
            reply.truncate(head_len);
        }
        s.write_all(&reply).await?;
        handler.sent(&req);
        if !req.keep_alive {
            s.close().await?;
            return Ok(served);
        }
        (start, end) = (base + used, base + filled);
    }
}
