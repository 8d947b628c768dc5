//! HTTPS: `sirocco_net::http::serve` over a [`TlsStream`] on a TCP stream.

use rustls::server::ServerConnectionData;
use sirocco_net::http::Transport;
use sirocco_net::{NetDevice, NetError, TcpStream};

use crate::{TlsError, TlsStream};

/// What the HTTP server sees of TLS errors, which it knows only as [`NetError`]s: the socket's own errors pass
/// through; a protocol error (logged here, with rustls' reason) ends the connection as a reset would; a client
/// that closes without close_notify has ended the stream (HTTP's own framing tells a cut request from a whole
/// one, and most clients close that way).
fn net_error(e: TlsError<NetError>) -> Result<usize, NetError> {
    match e {
        TlsError::Io(e) => Err(e),
        TlsError::Tls(e) => {
            log::debug!("https: {e}");
            Err(NetError::Reset)
        }
        TlsError::Truncated => Ok(0),
        TlsError::Closed => Err(NetError::InvalidState),
    }
}

impl<D: NetDevice> Transport for TlsStream<TcpStream<D>, ServerConnectionData> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        embedded_io_async::Read::read(self, buf).await.or_else(net_error)
    }

    async fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError> {
        embedded_io_async::Write::write_all(self, buf).await.map_err(|e| net_error(e).err().unwrap_or(NetError::Reset))
    }

    /// Sends close_notify, then closes the TCP connection.
    async fn close(&mut self) -> Result<(), NetError> {
        TlsStream::close(self).await.map_err(|e| net_error(e).err().unwrap_or(NetError::Reset))?;
        self.get_mut().close().await
    }

    fn flow_id(&self) -> u64 {
        self.get_ref().flow_id()
    }
}
