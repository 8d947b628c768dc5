//! UDP: [`UdpSocket`].

use core::future::poll_fn;
use core::net::SocketAddr;
use core::task::{Poll, Waker};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;

use crate::device::NetDevice;
use crate::handle::NetHandle;
use crate::stack::Stack;
use crate::NetError;

/// A UDP socket bound to one port (every local address, IPv4 and IPv6).
///
/// Dropping it frees the socket once its queued datagrams are sent (or after the TCP close timeout, if they
/// cannot be, e.g. the neighbour never answers).
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
        if to.port() == 0 || to.ip().is_unspecified() {
            return Err(NetError::InvalidAddress);
        }
        {
            let stack = self.net.lock();
            if !stack.has_route(to.ip()) {
                return Err(NetError::NoRoute);
            }
            if buf.len() > stack.sockets.get::<udp::Socket>(self.handle).payload_send_capacity() {
                return Err(NetError::TooLarge);
            }
        }
        poll_fn(|cx| self.net.lock().udp_send(self.handle, buf, to, cx.waker())).await?;
        self.net.request_poll();
        Ok(buf.len())
    }

    /// Receives one datagram: its length and sender. A datagram longer than `buf` is truncated to fit (the
    /// rest is lost, as with POSIX `recvfrom`); the returned length is what was copied.
    pub async fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        poll_fn(|cx| self.net.lock().udp_recv(self.handle, buf, cx.waker())).await
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

impl<D: NetDevice> Stack<D> {
    fn udp_send(&mut self, h: SocketHandle, buf: &[u8], to: SocketAddr, waker: &Waker) -> Poll<Result<(), NetError>> {
        let s = self.sockets.get_mut::<udp::Socket>(h);
        match s.send_slice(buf, to) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(udp::SendError::BufferFull) => {
                s.register_send_waker(waker);
                Poll::Pending
            }
            Err(udp::SendError::Unaddressable) => Poll::Ready(Err(NetError::InvalidAddress)),
        }
    }

    fn udp_recv(
        &mut self,
        h: SocketHandle,
        buf: &mut [u8],
        waker: &Waker,
    ) -> Poll<Result<(usize, SocketAddr), NetError>> {
        let s = self.sockets.get_mut::<udp::Socket>(h);
        match s.recv() {
            Ok((data, meta)) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Poll::Ready(Ok((n, SocketAddr::from(meta.endpoint))))
            }
            Err(_) => {
                s.register_recv_waker(waker);
                Poll::Pending
            }
        }
    }
}
