//! ICMP echo ("ping") from the guest: [`Pinger`]. Answering pings needs nothing: the stack replies itself.

use core::future::poll_fn;
use core::net::{IpAddr, Ipv6Addr};
use core::task::{Poll, Waker};

use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpAddress};

use crate::device::NetDevice;
use crate::handle::NetHandle;
use crate::stack::Stack;
use crate::NetError;

/// Sends echo requests with one identifier and receives the matching replies (IPv4 and IPv6).
///
/// There is no timeout here: race [`Pinger::recv_reply`] against the runtime's sleep.
pub struct Pinger<D: NetDevice> {
    net: NetHandle<D>,
    handle: SocketHandle,
    ident: u16,
}

/// An echo reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered.
    pub from: IpAddr,
    /// The sequence number of the request it answers.
    pub seq: u16,
    /// Bytes of payload echoed.
    pub len: usize,
}

const BUFFER: usize = 4096;
const DATAGRAMS: usize = 8;

impl<D: NetDevice> Pinger<D> {
    /// A pinger using echo identifier `ident`.
    pub fn new(net: &NetHandle<D>, ident: u16) -> Result<Self, NetError> {
        let mut stack = net.lock();
        if stack.icmp.iter().any(|&(_, i)| i == ident) {
            return Err(NetError::AddressInUse);
        }
        let buffer =
            || icmp::PacketBuffer::new(alloc::vec![icmp::PacketMetadata::EMPTY; DATAGRAMS], alloc::vec![0u8; BUFFER]);
        let mut s = icmp::Socket::new(buffer(), buffer());
        s.bind(icmp::Endpoint::Ident(ident)).map_err(|_| NetError::InvalidState)?;
        let handle = stack.sockets.add(s);
        stack.icmp.push((handle, ident));
        Ok(Pinger { net: net.clone(), handle, ident })
    }

    /// Sends an echo request with sequence number `seq` and `payload`.
    pub async fn send_echo(&mut self, to: IpAddr, seq: u16, payload: &[u8]) -> Result<(), NetError> {
        if to.is_unspecified() {
            return Err(NetError::InvalidAddress);
        }
        if !self.net.lock().has_route(to) {
            return Err(NetError::NoRoute);
        }
        if payload.len() + 8 > BUFFER {
            return Err(NetError::TooLarge);
        }
        let ident = self.ident;
        poll_fn(|cx| self.net.lock().icmp_send(self.handle, to, ident, seq, payload, cx.waker())).await;
        self.net.request_poll();
        Ok(())
    }

    /// The next echo reply for this pinger's identifier.
    pub async fn recv_reply(&mut self) -> EchoReply {
        let ident = self.ident;
        poll_fn(|cx| self.net.lock().icmp_recv(self.handle, ident, cx.waker())).await
    }
}

impl<D: NetDevice> Drop for Pinger<D> {
    fn drop(&mut self) {
        let mut stack = self.net.lock();
        stack.icmp.retain(|&(h, _)| h != self.handle);
        stack.sockets.remove(self.handle);
    }
}

impl<D: NetDevice> Stack<D> {
    fn icmp_send(
        &mut self,
        h: SocketHandle,
        to: IpAddr,
        ident: u16,
        seq_no: u16,
        data: &[u8],
        waker: &Waker,
    ) -> Poll<()> {
        let caps = ChecksumCapabilities::default();
        // smoltcp picks the same source address when it sends, so the ICMPv6 checksum matches.
        let src6 = match to {
            IpAddr::V6(dst) => Some(self.iface.get_source_address_ipv6(&dst)),
            IpAddr::V4(_) => None,
        };
        let s = self.sockets.get_mut::<icmp::Socket>(h);
        let sent = match to {
            IpAddr::V4(dst) => {
                let repr = Icmpv4Repr::EchoRequest { ident, seq_no, data };
                s.send(repr.buffer_len(), IpAddress::Ipv4(dst))
                    .map(|buf| repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps))
            }
            IpAddr::V6(dst) => {
                let repr = Icmpv6Repr::EchoRequest { ident, seq_no, data };
                let src = src6.unwrap_or(Ipv6Addr::UNSPECIFIED);
                s.send(repr.buffer_len(), IpAddress::Ipv6(dst))
                    .map(|buf| repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(buf), &caps))
            }
        };
        match sent {
            Ok(()) => Poll::Ready(()),
            Err(_) => {
                s.register_send_waker(waker);
                Poll::Pending
            }
        }
    }

    fn icmp_recv(&mut self, h: SocketHandle, ident: u16, waker: &Waker) -> Poll<EchoReply> {
        let s = self.sockets.get_mut::<icmp::Socket>(h);
        // The interface verified the checksum already.
        let caps = ChecksumCapabilities::ignored();
        while let Ok((data, from)) = s.recv() {
            let reply = match from {
                IpAddress::Ipv4(_) => {
                    Icmpv4Packet::new_checked(data).ok().and_then(|p| match Icmpv4Repr::parse(&p, &caps) {
                        Ok(Icmpv4Repr::EchoReply { ident: i, seq_no, data }) if i == ident => {
                            Some((seq_no, data.len()))
                        }
                        _ => None,
                    })
                }
                IpAddress::Ipv6(src) => Icmpv6Packet::new_checked(data).ok().and_then(|p| {
                    match Icmpv6Repr::parse(&src, &Ipv6Addr::UNSPECIFIED, &p, &caps) {
                        Ok(Icmpv6Repr::EchoReply { ident: i, seq_no, data }) if i == ident => {
                            Some((seq_no, data.len()))
                        }
                        _ => None,
                    }
                }),
            };
            if let Some((seq, len)) = reply {
                return Poll::Ready(EchoReply { from: from.into(), seq, len });
            }
        }
        s.register_recv_waker(waker);
        Poll::Pending
    }
}
