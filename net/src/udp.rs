//! UDP: [`UdpSocket`].

use core::future::poll_fn;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::task::{Poll, Waker};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;

use crate::device::NetDevice;
use crate::handle::NetHandle;
use crate::stack::Stack;
use crate::{IpCidr, NetError};

/// A UDP socket bound to one port (every local address, IPv4 and IPv6).
///
/// Dropping it frees the socket once its queued datagrams are sent (or after the TCP close timeout, if they
/// cannot be, e.g. the neighbour never answers).
///
/// It implements embedded-nal-async's `UnconnectedUdp` (each call names the peer; a received datagram comes with
/// the local address it was sent to, so a server can answer from that address), with [`NetError`] as the error.
/// Not `ConnectedUdp`: the socket is not tied to one peer (a connected socket also drops what other peers send),
/// and embedded-io-async's traits are for byte streams, not datagrams.
pub struct UdpSocket<D: NetDevice> {
    net: NetHandle<D>,
    handle: SocketHandle,
    port: u16,
}

impl<D: NetDevice> UdpSocket<D> {
    /// Binds `port`, or a free ephemeral port when `port` is 0.
    pub fn bind(net: &NetHandle<D>, port: u16) -> Result<Self, NetError> {
        let mut stack = net.lock();
        let port = match port {
            0 => stack.ephemeral_port(false)?,
            p if stack.udp_port_in_use(p) => return Err(NetError::AddressInUse),
            p => p,
        };
        let o = stack.options;
        let buffer = || {
            udp::PacketBuffer::new(
                alloc::vec![udp::PacketMetadata::EMPTY; o.udp_datagrams],
                alloc::vec![0u8; o.udp_buffer],
            )
        };
        let mut s = udp::Socket::new(buffer(), buffer());
        s.bind(port).map_err(|_| NetError::InvalidState)?;
        let handle = stack.sockets.add(s);
        stack.udp.insert(handle, None);
        Ok(UdpSocket { net: net.clone(), handle, port })
    }

    /// The bound port.
    pub fn local_port(&self) -> u16 {
        self.port
    }

    /// Queues one datagram to `to`; waits while the send buffer is full. Returns `buf.len()`.
    pub async fn send_to(&mut self, buf: &[u8], to: SocketAddr) -> Result<usize, NetError> {
        self.send_from(None, buf, to).await?;
        Ok(buf.len())
    }

    /// As [`UdpSocket::send_to`], from the local address `from` (one of the interface's; `None`: the stack
    /// chooses).
    async fn send_from(&mut self, from: Option<IpAddr>, buf: &[u8], to: SocketAddr) -> Result<(), NetError> {
        if to.port() == 0 || to.ip().is_unspecified() {
            return Err(NetError::InvalidAddress);
        }
        {
            let stack = self.net.lock();
            let ours = |ip: IpAddr| stack.iface.ip_addrs().iter().any(|c| c.address() == ip.into());
            if from.is_some_and(|ip| !ours(ip) || ip.is_ipv4() != to.is_ipv4()) {
                return Err(NetError::InvalidAddress);
            }
            if !stack.has_route(to.ip()) {
                return Err(NetError::NoRoute);
            }
            if buf.len() > stack.sockets.get::<udp::Socket>(self.handle).payload_send_capacity() {
                return Err(NetError::TooLarge);
            }
        }
        let meta = udp::UdpMetadata { local_address: from.map(Into::into), ..to.into() };
        poll_fn(|cx| self.net.lock().udp_send(self.handle, buf, meta, cx.waker())).await?;
        self.net.request_poll();
        Ok(())
    }

    /// Receives one datagram: its length and sender. A datagram longer than `buf` is truncated to fit (the
    /// rest is lost, as with POSIX `recvfrom`); the returned length is what was copied.
    pub async fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        let got = poll_fn(|cx| self.net.lock().udp_recv(self.handle, buf, cx.waker())).await;
        Ok((got.copied, got.from))
    }
}

/// embedded-nal-async's unconnected UDP. `local` in `send` must be unspecified or one of the interface's
/// addresses, with this socket's port or port 0 ([`NetError::InvalidAddress`] otherwise); a multicast or
/// broadcast `local` (where a received datagram was sent) means "the stack chooses", since no datagram can come
/// from there. `receive_into` returns the datagram's full length (more than `buffer.len()` if it was truncated,
/// as the trait asks), the local address it was sent to, and the sender.
impl<D: NetDevice> embedded_nal_async::UnconnectedUdp for UdpSocket<D> {
    type Error = NetError;

    async fn send(&mut self, local: SocketAddr, remote: SocketAddr, data: &[u8]) -> Result<(), NetError> {
        if local.port() != 0 && local.port() != self.port {
            return Err(NetError::InvalidAddress);
        }
        let from = match local.ip() {
            ip if ip.is_unspecified() || ip.is_multicast() => None,
            IpAddr::V4(a) if a.is_broadcast() || self.net.lock().is_subnet_broadcast(a) => None,
            ip => Some(ip),
        };
        self.send_from(from, data, remote).await
    }

    async fn receive_into(&mut self, buffer: &mut [u8]) -> Result<(usize, SocketAddr, SocketAddr), NetError> {
        let got = poll_fn(|cx| self.net.lock().udp_recv(self.handle, buffer, cx.waker())).await;
        Ok((got.len, SocketAddr::new(got.to, self.port), got.from))
    }
}

impl<D: NetDevice> Drop for UdpSocket<D> {
    fn drop(&mut self) {
        let mut stack = self.net.lock();
        if stack.sockets.get::<udp::Socket>(self.handle).send_queue() == 0 {
            stack.udp.remove(&self.handle);
            stack.sockets.remove(self.handle);
        } else {
            stack.udp.insert(self.handle, Some(None));
        }
    }
}

/// One datagram taken by [`Stack::udp_recv`].
struct Received {
    /// Bytes copied into the caller's buffer.
    copied: usize,
    /// The datagram's length.
    len: usize,
    /// The sender.
    from: SocketAddr,
    /// The local address it was sent to.
    to: IpAddr,
}

impl<D: NetDevice> Stack<D> {
    /// Whether `a` is the broadcast address of one of the interface's IPv4 subnets.
    fn is_subnet_broadcast(&self, a: Ipv4Addr) -> bool {
        self.iface.ip_addrs().iter().any(|c| matches!(c, IpCidr::Ipv4(c) if c.broadcast() == Some(a)))
    }

    fn udp_send(
        &mut self,
        h: SocketHandle,
        buf: &[u8],
        meta: udp::UdpMetadata,
        waker: &Waker,
    ) -> Poll<Result<(), NetError>> {
        let s = self.sockets.get_mut::<udp::Socket>(h);
        match s.send_slice(buf, meta) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(udp::SendError::BufferFull) => {
                s.register_send_waker(waker);
                Poll::Pending
            }
            Err(udp::SendError::Unaddressable) => Poll::Ready(Err(NetError::InvalidAddress)),
        }
    }

    fn udp_recv(&mut self, h: SocketHandle, buf: &mut [u8], waker: &Waker) -> Poll<Received> {
        let s = self.sockets.get_mut::<udp::Socket>(h);
        match s.recv() {
            Ok((data, meta)) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                let from = SocketAddr::from(meta.endpoint);
                // smoltcp sets the local address on every datagram it receives.
                let to = meta.local_address.map_or_else(
                    || match from {
                        SocketAddr::V4(_) => IpAddr::from([0u8; 4]),
                        SocketAddr::V6(_) => IpAddr::from([0u8; 16]),
                    },
                    IpAddr::from,
                );
                Poll::Ready(Received { copied: n, len: data.len(), from, to })
            }
            Err(_) => {
                s.register_recv_waker(waker);
                Poll::Pending
            }
        }
    }
}
