//! TCP: [`TcpListener`] and [`TcpStream`].
//!
//! smoltcp has no listen backlog: a socket in LISTEN becomes the connection when a SYN arrives. A listener here
//! keeps one spare socket in LISTEN and replaces it after every received frame that consumed it, until
//! `backlog` connections wait for [`TcpListener::accept`]; SYNs beyond that are refused with a RST (smoltcp's
//! answer when no socket takes a segment), where Linux would drop them silently.
//!
//! Limit (smoltcp): a retransmitted SYN can be taken by the new spare socket if it sits before the original in
//! the socket set; the duplicate then fails its handshake and is freed. A lost SYN-ACK on a busy listener can
//! therefore cost the client one connection attempt.

use core::future::poll_fn;
use core::net::{IpAddr, SocketAddr};
use core::task::{Poll, Waker};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, RecvError};
use smoltcp::wire::IpEndpoint;

use crate::device::NetDevice;
use crate::handle::NetHandle;
use crate::stack::{new_tcp_socket, Owner, Stack, TcpRecord};
use crate::{NetError, TcpState};

/// Accepts TCP connections on one port (every local address, IPv4 and IPv6).
pub struct TcpListener<D: NetDevice> {
    net: NetHandle<D>,
    id: u64,
    port: u16,
}

impl<D: NetDevice> TcpListener<D> {
    /// Listens on `port`; up to `backlog` (at least 1) connections may complete before being accepted.
    pub fn bind(net: &NetHandle<D>, port: u16, backlog: usize) -> Result<Self, NetError> {
        if port == 0 {
            return Err(NetError::InvalidAddress);
        }
        let mut stack = net.lock();
        if stack.listeners.values().any(|l| l.port == port) {
            return Err(NetError::AddressInUse);
        }
        let id = stack.add_listener(port, backlog);
        Ok(TcpListener { net: net.clone(), id, port })
    }

    /// The port.
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// The next established connection, oldest first.
    pub async fn accept(&mut self) -> TcpStream<D> {
        let handle = poll_fn(|cx| self.net.lock().tcp_accept(self.id, cx.waker())).await;
        TcpStream { net: self.net.clone(), handle }
    }
}

impl<D: NetDevice> Drop for TcpListener<D> {
    /// Stops listening; connections not yet accepted are reset.
    fn drop(&mut self) {
        self.net.lock().remove_listener(self.id);
        self.net.request_poll();
    }
}

/// A TCP connection.
///
/// Dropping it closes it in the background (FIN, or RST when unread data remains, as Linux does) and frees the
/// socket once closed or after [`crate::SocketOptions::tcp_close_timeout_ms`].
pub struct TcpStream<D: NetDevice> {
    net: NetHandle<D>,
    handle: SocketHandle,
}

impl<D: NetDevice> TcpStream<D> {
    /// Connects to `addr:port` from an ephemeral port; completes once established.
    ///
    /// Errors: [`NetError::Refused`] (RST), [`NetError::TimedOut`] (no answer within
    /// [`crate::SocketOptions::tcp_timeout_ms`]), [`NetError::NoRoute`] (checked before sending anything).
    pub async fn connect(net: &NetHandle<D>, addr: IpAddr, port: u16) -> Result<Self, NetError> {
        Self::connect_from(net, 0, addr, port).await
    }

    /// As [`TcpStream::connect`], from `local_port` (0: an ephemeral port). A fixed port lets two peers that
    /// know each other's open at the same time (TCP simultaneous open, RFC 9293 3.5): each SYN answers the
    /// other. [`NetError::AddressInUse`] if a listener or another connection has the port.
    pub async fn connect_from(net: &NetHandle<D>, local_port: u16, addr: IpAddr, port: u16) -> Result<Self, NetError> {
        let handle = net.lock().tcp_connect(local_port, addr, port)?;
        net.request_poll();
        // Built now, so that a cancelled connect frees the socket.
        let stream = TcpStream { net: net.clone(), handle };
        poll_fn(|cx| stream.net.lock().tcp_connected(handle, cx.waker())).await?;
        Ok(stream)
    }

    /// Our address and port.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.net.lock().sockets.get::<tcp::Socket>(self.handle).local_endpoint().map(SocketAddr::from)
    }

    /// The peer's address and port (`None` once the connection is gone).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.net.lock().sockets.get::<tcp::Socket>(self.handle).remote_endpoint().map(SocketAddr::from)
    }

    /// The connection's TCP state.
    pub fn state(&self) -> TcpState {
        self.net.lock().sockets.get::<tcp::Socket>(self.handle).state()
    }

    /// Reads into `buf`; waits while nothing is buffered. `Ok(0)`: the peer closed its side (or `buf` is
    /// empty). Data received before a reset is returned first, then the error.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = poll_fn(|cx| self.net.lock().tcp_read(self.handle, buf, cx.waker())).await?;
        if n > 0 {
            // Room in the receive buffer may be worth a window update.
            self.net.request_poll();
        }
        Ok(n)
    }

    /// Queues as much of `buf` as fits in the send buffer; waits while it is full.
    pub async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = poll_fn(|cx| self.net.lock().tcp_write(self.handle, buf, cx.waker())).await?;
        self.net.request_poll();
        Ok(n)
    }

    /// Queues all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> Result<(), NetError> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Waits until the peer has acknowledged everything written.
    pub async fn flush(&mut self) -> Result<(), NetError> {
        poll_fn(|cx| self.net.lock().tcp_flushed(self.handle, cx.waker())).await
    }

    /// Closes our side (FIN after the queued data) and waits until the connection is closed both ways
    /// (TIME-WAIT or CLOSED). The peer may still send until it closes; read that first if it matters.
    /// [`NetError::TimedOut`] if it makes no progress for [`crate::SocketOptions::tcp_close_timeout_ms`] (the
    /// connection is then reset).
    pub async fn close(&mut self) -> Result<(), NetError> {
        self.net.lock().tcp_close(self.handle);
        self.net.request_poll();
        poll_fn(|cx| self.net.lock().tcp_closed(self.handle, cx.waker())).await
    }

    /// Resets the connection at once (RST); later operations fail with [`NetError::InvalidState`].
    pub fn abort(&mut self) {
        self.net.lock().tcp_abort(self.handle);
        self.net.request_poll();
    }
}

impl<D: NetDevice> Drop for TcpStream<D> {
    fn drop(&mut self) {
        self.net.lock().tcp_release(self.handle);
        self.net.request_poll();
    }
}

/// The embedded-io traits, so no_std protocol code written against `embedded_io_async::{Read, Write}` runs on a
/// connection. Every operation fails with [`NetError`], whose `kind()` is the nearest `ErrorKind`.
impl<D: NetDevice> embedded_io_async::ErrorType for TcpStream<D> {
    type Error = NetError;
}

/// [`TcpStream::read`]: waits for at least one byte; `Ok(0)` at end of stream (the peer closed its side), or at
/// once for an empty `buf`. Cancel-safe: bytes leave the receive buffer only in the poll that returns them.
impl<D: NetDevice> embedded_io_async::Read for TcpStream<D> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        TcpStream::read(self, buf).await
    }
}

/// [`TcpStream::write`]: waits for room in the send buffer, then queues at least one byte (never `Ok(0)` for a
/// non-empty `buf`: a connection that can no longer send fails instead). Cancel-safe as `read`. `flush` is
/// [`TcpStream::flush`]: it waits until the peer has acknowledged everything written.
impl<D: NetDevice> embedded_io_async::Write for TcpStream<D> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        TcpStream::write(self, buf).await
    }

    async fn flush(&mut self) -> Result<(), NetError> {
        TcpStream::flush(self).await
    }
}

/// True when a `read` would not wait: bytes are buffered, or the receive half is over (end of stream, or an
/// error that `read` then returns).
impl<D: NetDevice> embedded_io_async::ReadReady for TcpStream<D> {
    fn read_ready(&mut self) -> Result<bool, NetError> {
        Ok(self.net.lock().tcp_read_ready(self.handle))
    }
}

/// True when a `write` would not wait: the send buffer has room, or the connection can no longer send (and
/// `write` then fails at once).
impl<D: NetDevice> embedded_io_async::WriteReady for TcpStream<D> {
    fn write_ready(&mut self) -> Result<bool, NetError> {
        Ok(self.net.lock().tcp_write_ready(self.handle))
    }
}

impl<D: NetDevice> Stack<D> {
    fn socket(&mut self, h: SocketHandle) -> (&mut tcp::Socket<'static>, &mut TcpRecord) {
        let rec = self.tcp.get_mut(&h).expect("TCP socket without a record");
        (self.sockets.get_mut::<tcp::Socket>(h), rec)
    }

    pub(crate) fn tcp_accept(&mut self, id: u64, waker: &Waker) -> Poll<SocketHandle> {
        self.maintain_listener(id);
        let Some(l) = self.listeners.get_mut(&id) else { return Poll::Pending };
        let ready = l.pending.iter().position(|&h| {
            matches!(self.sockets.get::<tcp::Socket>(h).state(), TcpState::Established | TcpState::CloseWait)
        });
        match ready {
            Some(i) => {
                let h = l.pending.remove(i);
                if let Some(rec) = self.tcp.get_mut(&h) {
                    rec.owner = Owner::Stream;
                }
                // One fewer waiting: room for a spare again if the backlog was full.
                self.maintain_listener(id);
                Poll::Ready(h)
            }
            None => {
                l.waker = Some(waker.clone());
                Poll::Pending
            }
        }
    }

    pub(crate) fn remove_listener(&mut self, id: u64) {
        let Some(l) = self.listeners.remove(&id) else { return };
        for h in l.spare.into_iter().chain(l.pending) {
            let (s, rec) = self.socket(h);
            s.abort();
            rec.aborted = true;
            rec.owner = Owner::Orphan;
        }
    }

    pub(crate) fn tcp_connect(&mut self, local_port: u16, addr: IpAddr, port: u16) -> Result<SocketHandle, NetError> {
        if port == 0 || addr.is_unspecified() || addr.is_multicast() {
            return Err(NetError::InvalidAddress);
        }
        if !self.has_route(addr) {
            return Err(NetError::NoRoute);
        }
        let local_port = match local_port {
            0 => self.ephemeral_port(true)?,
            p if self.tcp_port_in_use(p) => return Err(NetError::AddressInUse),
            p => p,
        };
        if !self.room_for_tcp_socket() {
            return Err(NetError::NoMemory);
        }
        let mut s = new_tcp_socket(&self.options);
        s.connect(self.iface.context(), IpEndpoint::from(SocketAddr::new(addr, port)), local_port).map_err(
            |e| match e {
                tcp::ConnectError::Unaddressable => NetError::NoRoute,
                tcp::ConnectError::InvalidState => NetError::InvalidState,
            },
        )?;
        let h = self.sockets.add(s);
        self.tcp.insert(h, TcpRecord::new(Owner::Stream, TcpState::SynSent, &self.options));
        Ok(h)
    }

    pub(crate) fn tcp_connected(&mut self, h: SocketHandle, waker: &Waker) -> Poll<Result<(), NetError>> {
        let (s, rec) = self.socket(h);
        match s.state() {
            TcpState::SynSent | TcpState::SynReceived => {
                // State changes wake both wakers.
                s.register_send_waker(waker);
                Poll::Pending
            }
            TcpState::Closed | TcpState::TimeWait => Poll::Ready(Err(rec.error.unwrap_or(NetError::InvalidState))),
            _ => Poll::Ready(Ok(())),
        }
    }

    pub(crate) fn tcp_read(&mut self, h: SocketHandle, buf: &mut [u8], waker: &Waker) -> Poll<Result<usize, NetError>> {
        let (s, rec) = self.socket(h);
        match s.recv_slice(buf) {
            Ok(0) => {
                s.register_recv_waker(waker);
                Poll::Pending
            }
            Ok(n) => Poll::Ready(Ok(n)),
            Err(RecvError::Finished) => Poll::Ready(Ok(0)),
            Err(RecvError::InvalidState) => Poll::Ready(match rec.error {
                Some(e) => Err(e),
                None if rec.aborted => Err(NetError::InvalidState),
                // Closed normally (TIME-WAIT over, which also empties the buffers in smoltcp).
                None => Ok(0),
            }),
        }
    }

    /// Whether [`Stack::tcp_read`] would return at once.
    pub(crate) fn tcp_read_ready(&mut self, h: SocketHandle) -> bool {
        let (s, _) = self.socket(h);
        // Without `may_recv`, `recv_slice` fails at once (Finished or InvalidState).
        s.can_recv() || !s.may_recv()
    }

    /// Whether [`Stack::tcp_write`] would return at once.
    pub(crate) fn tcp_write_ready(&mut self, h: SocketHandle) -> bool {
        let (s, rec) = self.socket(h);
        // Without `may_send`, `send_slice` fails at once (InvalidState).
        rec.error.is_some() || !s.may_send() || s.send_queue() < s.send_capacity()
    }

    pub(crate) fn tcp_write(&mut self, h: SocketHandle, buf: &[u8], waker: &Waker) -> Poll<Result<usize, NetError>> {
        let (s, rec) = self.socket(h);
        if let Some(e) = rec.error {
            return Poll::Ready(Err(e));
        }
        match s.send_slice(buf) {
            Ok(0) => {
                s.register_send_waker(waker);
                Poll::Pending
            }
            Ok(n) => Poll::Ready(Ok(n)),
            Err(tcp::SendError::InvalidState) => Poll::Ready(Err(NetError::InvalidState)),
        }
    }

    pub(crate) fn tcp_flushed(&mut self, h: SocketHandle, waker: &Waker) -> Poll<Result<(), NetError>> {
        let (s, rec) = self.socket(h);
        if let Some(e) = rec.error {
            return Poll::Ready(Err(e));
        }
        if rec.aborted {
            return Poll::Ready(Err(NetError::InvalidState));
        }
        if s.send_queue() == 0 {
            return Poll::Ready(Ok(()));
        }
        if s.state() == TcpState::Closed {
            // Unsent data on a dead connection will never be acknowledged.
            return Poll::Ready(Err(NetError::InvalidState));
        }
        s.register_send_waker(waker);
        Poll::Pending
    }

    pub(crate) fn tcp_close(&mut self, h: SocketHandle) {
        let (s, rec) = self.socket(h);
        s.close();
        rec.closing = true;
    }

    pub(crate) fn tcp_closed(&mut self, h: SocketHandle, waker: &Waker) -> Poll<Result<(), NetError>> {
        let (s, rec) = self.socket(h);
        match s.state() {
            TcpState::Closed | TcpState::TimeWait => Poll::Ready(rec.error.map_or(Ok(()), Err)),
            _ => {
                s.register_recv_waker(waker);
                s.register_send_waker(waker);
                Poll::Pending
            }
        }
    }

    pub(crate) fn tcp_abort(&mut self, h: SocketHandle) {
        let (s, rec) = self.socket(h);
        s.abort();
        rec.aborted = true;
    }

    /// The stream was dropped: close in the background, free when done.
    pub(crate) fn tcp_release(&mut self, h: SocketHandle) {
        let (s, rec) = self.socket(h);
        match s.state() {
            TcpState::Closed if s.remote_endpoint().is_none() => {
                self.free_tcp(h);
                return;
            }
            TcpState::Closed | TcpState::TimeWait => {}
            _ if s.recv_queue() > 0 => {
                // Unread data: tell the peer it was not consumed, as Linux does.
                s.abort();
                rec.aborted = true;
            }
            _ => {
                s.close();
                rec.closing = true;
            }
        }
        rec.owner = Owner::Orphan;
    }
}
