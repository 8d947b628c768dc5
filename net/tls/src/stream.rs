//! [`TlsStream`]: a TLS connection over any embedded-io-async stream (a `sirocco_net::TcpStream` in a guest),
//! driving rustls' unbuffered connection: TLS records are read from the stream into one buffer, rustls decrypts
//! them, and what it encodes or encrypts is written from another. Nothing here knows which side it is: the
//! server's and the client's connections differ only in how their records are processed ([`Side`]).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use rustls::client::ClientConnectionData;
use rustls::server::ServerConnectionData;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedConnectionCommon, UnbufferedStatus,
};

/// The largest plaintext one TLS record carries (RFC 8446 5.1).
const MAX_FRAGMENT: usize = 16 * 1024;
/// Each buffer's size before a record needs more.
const INITIAL_BUFFER: usize = 4096;
/// The largest record a peer may send: what the incoming buffer grows to at most.
const MAX_RECORD: usize = MAX_FRAGMENT + 2048 + 5;

/// A side of a TLS connection: how rustls processes its records.
pub trait Side: Sized {
    /// rustls' unbuffered connection for this side.
    type Conn: core::ops::DerefMut<Target = UnbufferedConnectionCommon<Self>>;
    /// Processes the records in `incoming` (rustls' `process_tls_records` for this side).
    fn process<'c, 'i>(
        conn: &'c mut UnbufferedConnectionCommon<Self>,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self>;
}

impl Side for ServerConnectionData {
    type Conn = rustls::server::UnbufferedServerConnection;
    fn process<'c, 'i>(
        conn: &'c mut UnbufferedConnectionCommon<Self>,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self> {
        conn.process_tls_records(incoming)
    }
}

impl Side for ClientConnectionData {
    type Conn = rustls::client::UnbufferedClientConnection;
    fn process<'c, 'i>(
        conn: &'c mut UnbufferedConnectionCommon<Self>,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self> {
        conn.process_tls_records(incoming)
    }
}

/// What went wrong on a TLS connection.
#[derive(Debug)]
pub enum TlsError<E> {
    /// The stream underneath failed (the connection was reset, or timed out).
    Io(E),
    /// The TLS protocol failed: a bad record, a failed handshake (no common cipher suite or version, a bad
    /// certificate, a bad signature), or an alert from the peer. rustls says which.
    Tls(rustls::Error),
    /// The stream ended without the peer's close_notify: during the handshake, or mid-stream (where the data may
    /// have been cut by an attacker, RFC 8446 6.1).
    Truncated,
    /// The connection was closed (by [`TlsStream::close`], or both sides' close_notify): nothing more can be sent.
    Closed,
}

impl<E: fmt::Debug> fmt::Display for TlsError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io(e) => write!(f, "TLS: the connection failed: {e:?}"),
            TlsError::Tls(e) => write!(f, "TLS: {e}"),
            TlsError::Truncated => f.write_str("TLS: the peer closed the connection without a close_notify"),
            TlsError::Closed => f.write_str("TLS: the connection is closed"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for TlsError<E> {}

impl<E: fmt::Debug> embedded_io_async::Error for TlsError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            TlsError::Io(_) => ErrorKind::ConnectionReset,
            TlsError::Tls(_) => ErrorKind::InvalidData,
            TlsError::Truncated => ErrorKind::ConnectionAborted,
            TlsError::Closed => ErrorKind::NotConnected,
        }
    }
}

impl<E> From<rustls::Error> for TlsError<E> {
    fn from(e: rustls::Error) -> Self {
        TlsError::Tls(e)
    }
}

/// A bytes-in-use window over a growable buffer.
struct Buf {
    data: Vec<u8>,
    len: usize,
}

impl Buf {
    fn new(capacity: usize) -> Self {
        Buf { data: vec![0; capacity], len: 0 }
    }

    /// Makes room for at least `n` more bytes.
    fn reserve(&mut self, n: usize) {
        if self.data.len() < self.len + n {
            self.data.resize(self.len + n, 0);
        }
    }

    /// Appends what `encrypt` writes into the free space, growing the buffer as far as rustls says it needs.
    fn append_encrypted(
        &mut self,
        mut encrypt: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
    ) -> Result<(), rustls::Error> {
        loop {
            match encrypt(&mut self.data[self.len..]) {
                Ok(n) => {
                    self.len += n;
                    return Ok(());
                }
                Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    self.reserve(required_size)
                }
                // The sequence numbers ran out (2^64 records): the connection must end.
                Err(_) => return Err(rustls::Error::EncryptError),
            }
        }
    }

    /// Writes the bytes in use to `io`, and empties the buffer.
    async fn send<S: Write>(&mut self, io: &mut S) -> Result<(), TlsError<S::Error>> {
        io.write_all(&self.data[..self.len]).await.map_err(TlsError::Io)?;
        self.len = 0;
        Ok(())
    }

    fn discard(&mut self, n: usize) {
        self.data.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// What the caller of [`TlsStream::pump`] is waiting for.
enum Goal<'a> {
    /// The handshake to finish.
    Handshake,
    /// Plaintext to read (or the end of the stream).
    Read,
    /// To send this plaintext: up to one record of it.
    Write(&'a [u8]),
    /// To send close_notify.
    Close,
}

/// A TLS connection over the stream `S`, on side `D` (`ServerConnectionData` for a server,
/// `ClientConnectionData` for a client). Made by [`crate::TlsAcceptor::accept`] or
/// [`crate::TlsConnector::connect`], with the handshake done; it reads and writes as the stream does
/// (embedded-io-async's `Read` and `Write`).
pub struct TlsStream<S, D: Side> {
    io: S,
    conn: D::Conn,
    incoming: Buf,
    outgoing: Buf,
    /// Decrypted and not yet read: `plain[plain_at..]`.
    plain: Vec<u8>,
    plain_at: usize,
    peer_closed: bool,
    sent_close: bool,
    /// A protocol error ends the connection: every later call answers it again.
    failed: Option<rustls::Error>,
}

impl<S: Read + Write, D: Side> TlsStream<S, D> {
    pub(crate) fn new(io: S, conn: D::Conn) -> Self {
        TlsStream {
            io,
            conn,
            // Small to start with: an idle or handshaking connection holds 8 KiB of buffers, not 33; each grows
            // (once) to what a full record needs when one comes.
            incoming: Buf::new(INITIAL_BUFFER),
            outgoing: Buf::new(INITIAL_BUFFER),
            plain: Vec::new(),
            plain_at: 0,
            peer_closed: false,
            sent_close: false,
            failed: None,
        }
    }

    /// Runs the handshake to its end.
    pub(crate) async fn handshake(&mut self) -> Result<(), TlsError<S::Error>> {
        self.pump(Goal::Handshake).await.map(drop)
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The stream underneath, to change its settings (not to read or write it: that would break the TLS
    /// records).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The negotiated protocol version (`TLSv1_3` or `TLSv1_2`).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The negotiated cipher suite.
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.conn.negotiated_cipher_suite()
    }

    /// Sends close_notify: the peer reads the end of the stream. Reading goes on until the peer's close_notify.
    pub async fn close(&mut self) -> Result<(), TlsError<S::Error>> {
        if !self.sent_close {
            self.pump(Goal::Close).await?;
        }
        self.io.flush().await.map_err(TlsError::Io)
    }

    /// The stream underneath, the TLS connection abandoned (no close_notify sent).
    pub fn into_inner(self) -> S {
        self.io
    }

    /// Copies decrypted bytes not yet read into `buf`.
    fn take_plain(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.plain.len() - self.plain_at);
        buf[..n].copy_from_slice(&self.plain[self.plain_at..self.plain_at + n]);
        self.plain_at += n;
        if self.plain_at == self.plain.len() {
            self.plain.clear();
            self.plain_at = 0;
        }
        n
    }

    /// Drives the connection until `goal` is met; answers bytes of plaintext sent for [`Goal::Write`], 0
    /// otherwise (for [`Goal::Read`]: 0 is the end of the stream, else the plaintext is in `self.plain`).
    async fn pump(&mut self, goal: Goal<'_>) -> Result<usize, TlsError<S::Error>> {
        if let Some(e) = &self.failed {
            return Err(TlsError::Tls(e.clone()));
        }
        loop {
            let TlsStream { io, conn, incoming, outgoing, plain, peer_closed, sent_close, .. } = self;
            let UnbufferedStatus { discard, state } = D::process(&mut **conn, &mut incoming.data[..incoming.len]);
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    incoming.discard(discard);
                    // rustls has queued an alert for the peer where the protocol asks for one: send it.
                    let _ = Self::send_alert(io, &mut **conn, incoming).await;
                    self.failed = Some(e.clone());
                    return Err(TlsError::Tls(e));
                }
            };
            let mut need_read = false;
            let mut done = None;
            let mut early_data = false;
            match state {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        plain.extend_from_slice(record?.payload);
                    }
                }
                // Early data is never accepted (max_early_data_size is 0): rustls does not get here.
                ConnectionState::ReadEarlyData(_) => early_data = true,
                ConnectionState::EncodeTlsData(mut encode) => loop {
                    match encode.encode(&mut outgoing.data[outgoing.len..]) {
                        Ok(n) => break outgoing.len += n,
                        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                            outgoing.reserve(required_size)
                        }
                        Err(_) => break,
                    }
                },
                ConnectionState::TransmitTlsData(transmit) => {
                    outgoing.send(io).await?;
                    io.flush().await.map_err(TlsError::Io)?;
                    transmit.done();
                }
                ConnectionState::BlockedHandshake => need_read = true,
                ConnectionState::WriteTraffic(mut traffic) => match goal {
                    Goal::Handshake => done = Some(0),
                    Goal::Read if plain.is_empty() && !*peer_closed => need_read = true,
                    Goal::Read => done = Some(0),
                    Goal::Write(data) => {
                        let data = &data[..data.len().min(MAX_FRAGMENT)];
                        outgoing.append_encrypted(|out| traffic.encrypt(data, out))?;
                        outgoing.send(io).await?;
                        done = Some(data.len());
                    }
                    Goal::Close => {
                        outgoing.append_encrypted(|out| traffic.queue_close_notify(out))?;
                        outgoing.send(io).await?;
                        *sent_close = true;
                        done = Some(0);
                    }
                },
                ConnectionState::PeerClosed => {
                    *peer_closed = true;
                    if matches!(goal, Goal::Read) {
                        done = Some(0);
                    }
                }
                ConnectionState::Closed => {
                    *peer_closed = true;
                    done = Some(0);
                    if matches!(goal, Goal::Write(_)) {
                        incoming.discard(discard);
                        return Err(TlsError::Closed);
                    }
                }
                _ => {}
            }
            incoming.discard(discard);
            if early_data {
                let e = rustls::Error::General("early data, which this server never accepts".into());
                self.failed = Some(e.clone());
                return Err(TlsError::Tls(e));
            }
            if let Some(n) = done {
                return Ok(n);
            }
            if need_read {
                if incoming.len == incoming.data.len() {
                    if incoming.len >= MAX_RECORD {
                        let e = rustls::Error::InvalidMessage(rustls::InvalidMessage::MessageTooLarge);
                        self.failed = Some(e.clone());
                        return Err(TlsError::Tls(e));
                    }
                    incoming.reserve(MAX_FRAGMENT);
                }
                let n = io.read(&mut incoming.data[incoming.len..]).await.map_err(TlsError::Io)?;
                if n == 0 {
                    return Err(TlsError::Truncated);
                }
                incoming.len += n;
            }
        }
    }

    /// After a protocol error: sends the alert rustls queued for the peer, best effort. rustls hands queued
    /// messages out before it looks at the records again, so one call gets the alert; a second would process
    /// the offending records again (and, in a debug build, trip rustls' assertion that one fatal alert is sent).
    async fn send_alert(
        io: &mut S,
        conn: &mut UnbufferedConnectionCommon<D>,
        incoming: &mut Buf,
    ) -> Result<(), S::Error> {
        let UnbufferedStatus { state, discard } = D::process(conn, &mut incoming.data[..incoming.len]);
        let mut alert = [0u8; 128]; // an alert record is 7 bytes, 24 encrypted
        let n = match state {
            Ok(ConnectionState::EncodeTlsData(mut encode)) => encode.encode(&mut alert).unwrap_or(0),
            _ => 0,
        };
        incoming.discard(discard);
        io.write_all(&alert[..n]).await?;
        io.flush().await
    }
}

impl<S: ErrorType, D: Side> ErrorType for TlsStream<S, D> {
    type Error = TlsError<S::Error>;
}

impl<S: Read + Write, D: Side> Read for TlsStream<S, D> {
    /// Reads decrypted bytes; 0 at the peer's close_notify. A stream ending without one is
    /// [`TlsError::Truncated`].
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.plain.is_empty() {
            self.pump(Goal::Read).await?;
        }
        Ok(self.take_plain(buf))
    }
}

impl<S: Read + Write, D: Side> Write for TlsStream<S, D> {
    /// Encrypts and sends up to one record (16 KiB) of `buf`.
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.sent_close {
            return Err(TlsError::Closed);
        }
        self.pump(Goal::Write(buf)).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.io.flush().await.map_err(TlsError::Io)
    }
}
