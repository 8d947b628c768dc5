//! TLS for Sirocco guests: [`TlsAcceptor`] (a server) and [`TlsConnector`] (a client) make a [`TlsStream`] over
//! any embedded-io-async stream, a `sirocco_net::TcpStream` in a guest, with the same `Read` and `Write` traits.
//!
//! The protocol is rustls 0.23's (TLS 1.3 and 1.2, no_std, its unbuffered API), the cryptography RustCrypto's
//! pure-Rust provider (`rustls-rustcrypto`), which builds for the soft-float target; this crate adds no
//! cryptography of its own. Cipher suites are offered ChaCha20-Poly1305 first and the server picks by its own
//! order: without AES-NI (the kernel runs without SSE) software ChaCha20 is several times faster than AES.
//! Nothing is resumed (no session cache or tickets without std): each connection is a full handshake.
//!
//! Randomness: the provider draws from the `getrandom` crate, which the `sirocco` runtime hooks to
//! `sirocco::rand` (refusing while the guest's seed is not trusted); on the host it is the OS's.
//!
//! ```ignore
//! let id = Identity::from_pem(cert_pem, key_pem)?;
//! let tls = TlsAcceptor::new(id, sirocco::wall_clock)?;
//! let mut stream = tls.accept(listener.accept().await).await?;
//! stream.write_all(b"hello over TLS").await?;
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod cert;
mod http;
mod stream;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use embedded_io_async::{Read, Write};
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::time_provider::TimeProvider;
use rustls::{CipherSuite, ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

pub use cert::{CertError, SelfSigned, SubjectName};
pub use rustls;
pub use stream::{Side, TlsError, TlsStream};

/// TLS 1.3 and 1.2, the versions offered unless asked otherwise.
pub const ALL_VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The wall clock: time since the Unix epoch, `None` if unknown (`sirocco::wall_clock` in a guest). Certificates'
/// validity is checked against it.
pub type WallClock = fn() -> Option<Duration>;

#[derive(Debug)]
struct Clock(WallClock);

impl TimeProvider for Clock {
    fn current_time(&self) -> Option<UnixTime> {
        (self.0)().map(UnixTime::since_unix_epoch)
    }
}

/// Why a TLS configuration could not be made.
#[derive(Debug)]
pub enum ConfigError {
    /// The certificate PEM holds no certificate, or one that does not parse.
    Certificate,
    /// The key PEM holds no private key (PKCS#8, SEC1 EC or PKCS#1 RSA) that parses.
    Key,
    /// rustls refused the configuration: a key that does not match the certificate, or of a kind the provider
    /// cannot sign with (it takes ECDSA P-256 and P-384, Ed25519 and RSA).
    Tls(rustls::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Certificate => f.write_str("TLS: no certificate in the PEM given (\"BEGIN CERTIFICATE\")"),
            ConfigError::Key => f.write_str("TLS: no private key in the PEM given (PKCS#8, SEC1 EC or RSA)"),
            ConfigError::Tls(e) => write!(f, "TLS: the certificate and key were refused: {e}"),
        }
    }
}

impl core::error::Error for ConfigError {}

impl From<rustls::Error> for ConfigError {
    fn from(e: rustls::Error) -> Self {
        ConfigError::Tls(e)
    }
}

/// A server's certificate chain and private key.
pub struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// From PEM: the certificate chain (leaf first), and the private key.
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, ConfigError> {
        let certs = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ConfigError::Certificate)?;
        if certs.is_empty() {
            return Err(ConfigError::Certificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| ConfigError::Key)?;
        Ok(Identity { certs, key })
    }

    /// A self-signed certificate's.
    pub fn from_self_signed(cert: &SelfSigned) -> Self {
        Identity { certs: alloc::vec![cert.cert.clone()], key: cert.key.clone_key() }
    }
}

/// The provider with its cipher suites in this crate's order: ChaCha20-Poly1305 first (see the crate's docs),
/// then AES-GCM; TLS 1.3's before TLS 1.2's. Only AEAD suites with forward secrecy are in the provider.
pub fn provider() -> CryptoProvider {
    let mut provider = rustls_rustcrypto::provider();
    let rank = |s: CipherSuite| {
        let chacha = matches!(
            s,
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        );
        (!chacha) as u8
    };
    provider.cipher_suites.sort_by_key(|s| (s.tls13().is_none(), rank(s.suite())));
    provider
}

/// Accepts TLS connections as a server. Cheap to clone: the configuration is shared.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
}

impl TlsAcceptor {
    /// A server presenting `identity`, TLS 1.3 and 1.2, no client certificates.
    pub fn new(identity: Identity, clock: WallClock) -> Result<Self, ConfigError> {
        Self::with_versions(identity, clock, ALL_VERSIONS)
    }

    /// A server speaking only `versions` (`&[&rustls::version::TLS13]` to refuse TLS 1.2).
    pub fn with_versions(
        identity: Identity,
        clock: WallClock,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Result<Self, ConfigError> {
        let mut config = ServerConfig::builder_with_details(Arc::new(provider()), Arc::new(Clock(clock)))
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_single_cert(identity.certs, identity.key)?;
        config.ignore_client_order = true;
        // No ticketer or session cache without std: tickets could never be redeemed.
        config.send_tls13_tickets = 0;
        Ok(TlsAcceptor { config: Arc::new(config) })
    }

    /// The rustls configuration, to adjust (ALPN protocols, say) with [`TlsAcceptor::from_config`].
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// A server with a configuration of the caller's.
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor { config }
    }

    /// Runs the server's handshake on `io`.
    pub async fn accept<S: Read + Write>(
        &self,
        io: S,
    ) -> Result<TlsStream<S, ServerConnectionData>, TlsError<S::Error>> {
        let conn = UnbufferedServerConnection::new(self.config.clone())?;
        let mut stream = TlsStream::new(io, conn);
        stream.handshake().await?;
        Ok(stream)
    }
}

/// Makes TLS connections as a client. Cheap to clone.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    /// A client trusting the certificates `roots` (CA certificates, or a self-signed server certificate).
    pub fn new(roots: &[CertificateDer<'_>], clock: WallClock) -> Result<Self, ConfigError> {
        Self::with_versions(roots, clock, ALL_VERSIONS)
    }

    /// A client speaking only `versions`.
    pub fn with_versions(
        roots: &[CertificateDer<'_>],
        clock: WallClock,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Result<Self, ConfigError> {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root.clone().into_owned())?;
        }
        let config = ClientConfig::builder_with_details(Arc::new(provider()), Arc::new(Clock(clock)))
            .with_protocol_versions(versions)?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(TlsConnector { config: Arc::new(config) })
    }

    /// A client with a configuration of the caller's.
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        TlsConnector { config }
    }

    /// Runs the client's handshake on `io` for the server `name` (a DNS name or an IP address, which its
    /// certificate must carry).
    pub async fn connect<S: Read + Write>(
        &self,
        name: &str,
        io: S,
    ) -> Result<TlsStream<S, ClientConnectionData>, TlsError<S::Error>> {
        let name = ServerName::try_from(name)
            .map_err(|_| TlsError::Tls(rustls::Error::General(alloc::format!("not a server name: {name:?}"))))?
            .to_owned();
        let conn = UnbufferedClientConnection::new(self.config.clone(), name)?;
        let mut stream = TlsStream::new(io, conn);
        stream.handshake().await?;
        Ok(stream)
    }
}
