//! TLS servers in a guest (the `tls` feature): `sirocco-tls` (rustls with RustCrypto's pure-Rust provider) on
//! the guest's wall clock and random numbers, with its certificate from xenstore or made at boot.
//!
//! [`server`] gives a [`TlsAcceptor`]:
//! - it refuses unless the random numbers are trusted ([`crate::rand::require_trusted`]: a hardware source, or
//!   `entropy=weak` on the command line);
//! - the certificate chain and key are read from the domain's xenstore directory, `tls/certificate` and
//!   `tls/key` (PEM), which the toolstack writes before the domain runs (`xl create -p`, `xenstore-write`,
//!   `xl unpause`; dom0 and the guest alone can read them);
//! - without them, a new P-256 key and a self-signed certificate for the names given are made; its SHA-256
//!   fingerprint is printed on the console and the certificate published at `data/tls-certificate` in the
//!   domain's xenstore directory, where dom0 can read it to trust it (`curl --cacert`).
//!
//! ```ignore
//! let tls = sirocco::tls::server(&[SubjectName::Ip(addr.into())])?;
//! let stream = tls.acceptor.accept(listener.accept().await).await?;
//! ```

use alloc::string::String;

pub use sirocco_tls::*;

use crate::Error;

/// Where a server's certificate came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `tls/certificate` and `tls/key` in the domain's xenstore directory.
    Xenstore,
    /// Made at boot; its SHA-256 fingerprint as OpenSSL prints it.
    SelfSigned {
        /// `AB:CD:...`, 32 pairs.
        fingerprint: String,
    },
}

/// A TLS server's configuration, and where its certificate came from.
pub struct Server {
    /// Accepts connections.
    pub acceptor: TlsAcceptor,
    /// Where the certificate came from.
    pub origin: Origin,
}

/// The guest's wall clock, for certificate validity.
fn now() -> Option<core::time::Duration> {
    let t = crate::wall_clock();
    (!t.is_zero()).then_some(t)
}

/// A TLS server for `names` (the names and addresses clients reach the guest by: the self-signed certificate's
/// subject alternative names; ignored when xenstore has a certificate). See the module's docs.
pub fn server(names: &[SubjectName<'_>]) -> Result<Server, Error> {
    crate::rand::require_trusted()?;
    let cert = read_optional("tls/certificate")?;
    let key = read_optional("tls/key")?;
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let identity = Identity::from_pem(cert.as_bytes(), key.as_bytes()).map_err(tls_error)?;
            let acceptor = TlsAcceptor::new(identity, now).map_err(tls_error)?;
            log::info!("tls: certificate and key from xenstore (tls/certificate, tls/key)");
            Ok(Server { acceptor, origin: Origin::Xenstore })
        }
        (Some(_), None) => Err(tls_error(ConfigError::Key).context("xenstore has tls/certificate but no tls/key")),
        (None, Some(_)) => {
            Err(tls_error(ConfigError::Certificate).context("xenstore has tls/key but no tls/certificate"))
        }
        (None, None) => {
            let now = now().ok_or_else(|| tls_error(ConfigError::Certificate).context("no wall clock"))?;
            let cert = SelfSigned::generate(names, now, 365, &mut crate::rand::Rng).map_err(tls_error)?;
            let acceptor = TlsAcceptor::new(Identity::from_self_signed(&cert), self::now).map_err(tls_error)?;
            let fingerprint = cert.fingerprint_hex();
            crate::println!("tls: self-signed certificate, SHA-256 fingerprint {fingerprint}");
            if let Err(e) = crate::xenstore::write("data/tls-certificate", &cert.pem) {
                log::warn!("tls: publishing the certificate at data/tls-certificate: {e}");
            }
            Ok(Server { acceptor, origin: Origin::SelfSigned { fingerprint } })
        }
    }
}

/// The value at `path` in the domain's directory; `None` if there is no such node. Any other failure (a value
/// that is not text, a refusal) is the caller's error, not taken for an absent certificate.
fn read_optional(path: &str) -> Result<Option<String>, Error> {
    match crate::xenstore::read(path) {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is_enoent() => Ok(None),
        Err(e) => Err(Error::from(e).context(alloc::format!("reading {path} from xenstore"))),
    }
}

fn tls_error(e: impl core::error::Error + Send + Sync + 'static) -> Error {
    Error::Tls(alloc::boxed::Box::new(e))
}
