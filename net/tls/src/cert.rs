//! A self-signed certificate, made where no certificate was given: a new P-256 key, a certificate for the names
//! and addresses the guest answers on, and its SHA-256 fingerprint for the console, so a client can pin it.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;
use core::time::Duration;

use der::asn1::{BitString, Ia5String, OctetString, UtcTime};
use der::oid::db::rfc5280::ID_KP_SERVER_AUTH;
use der::oid::db::rfc5912::ECDSA_WITH_SHA_256;
use der::oid::AssociatedOid;
use der::{Encode, EncodePem};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePrivateKey;
use rand_core::CryptoRngCore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

/// A name a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectName<'a> {
    /// A DNS name (`guest.example`).
    Dns(&'a str),
    /// An IP address.
    Ip(IpAddr),
}

/// Why a certificate could not be made.
#[derive(Debug)]
pub enum CertError {
    /// No names to make it for.
    NoNames,
    /// A DNS name that is not ASCII, or a time past 2049 (the encoder's error says which).
    Encoding(der::Error),
    /// The key could not be encoded.
    Key,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::NoNames => f.write_str("a certificate needs at least one DNS name or IP address"),
            CertError::Encoding(e) => write!(f, "encoding the certificate: {e}"),
            CertError::Key => f.write_str("encoding the certificate's private key failed"),
        }
    }
}

impl core::error::Error for CertError {}

impl From<der::Error> for CertError {
    fn from(e: der::Error) -> Self {
        CertError::Encoding(e)
    }
}

/// A self-signed certificate and its key.
pub struct SelfSigned {
    /// The certificate, DER.
    pub cert: CertificateDer<'static>,
    /// Its private key, PKCS#8 DER.
    pub key: PrivateKeyDer<'static>,
    /// The certificate, PEM (what a client's `--cacert` takes).
    pub pem: String,
    /// SHA-256 of the certificate's DER: what `openssl x509 -fingerprint -sha256` prints.
    pub fingerprint: [u8; 32],
}

impl SelfSigned {
    /// A new P-256 key (from `rng`) and a certificate for `names`, valid from an hour before `now` (clocks
    /// differ) for `days` days. `now` is the time since the Unix epoch.
    pub fn generate(
        names: &[SubjectName<'_>],
        now: Duration,
        days: u32,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, CertError> {
        if names.is_empty() {
            return Err(CertError::NoNames);
        }
        let signing = SigningKey::random(rng);
        let spki = SubjectPublicKeyInfoOwned::from_key(*signing.verifying_key()).map_err(|_| CertError::Key)?;
        let mut serial = [0u8; 16];
        rng.fill_bytes(&mut serial);
        serial[0] &= 0x7f; // positive, as RFC 5280 4.1.2.2 asks
        serial[0] |= 0x01; // and no leading zero byte to strip
        let subject = Name::from_str(&alloc::format!("CN={}", common_name(names[0])))?;
        let validity = Validity {
            not_before: Time::UtcTime(UtcTime::from_unix_duration(now.saturating_sub(Duration::from_secs(3600)))?),
            not_after: Time::UtcTime(UtcTime::from_unix_duration(now + Duration::from_secs(86_400 * u64::from(days)))?),
        };
        let alt: Vec<GeneralName> = names
            .iter()
            .map(|n| match n {
                SubjectName::Dns(d) => Ok(GeneralName::DnsName(Ia5String::new(d)?)),
                SubjectName::Ip(IpAddr::V4(a)) => Ok(GeneralName::IpAddress(OctetString::new(a.octets())?)),
                SubjectName::Ip(IpAddr::V6(a)) => Ok(GeneralName::IpAddress(OctetString::new(a.octets())?)),
            })
            .collect::<Result<_, der::Error>>()?;
        let extensions = vec![
            extension(&BasicConstraints { ca: false, path_len_constraint: None }, true)?,
            extension(&KeyUsage(KeyUsages::DigitalSignature.into()), true)?,
            extension(&ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]), false)?,
            extension(&SubjectAltName(alt), false)?,
        ];
        let algorithm = AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA_256, parameters: None };
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&serial)?,
            signature: algorithm.clone(),
            issuer: subject.clone(),
            validity,
            subject,
            subject_public_key_info: spki,
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        };
        let signature: DerSignature = p256::ecdsa::signature::Signer::sign(&signing, &tbs.to_der()?);
        let cert = Certificate {
            tbs_certificate: tbs,
            signature_algorithm: algorithm,
            signature: BitString::from_bytes(signature.as_bytes())?,
        };
        let der = cert.to_der()?;
        let pem = cert.to_pem(der::pem::LineEnding::LF)?;
        let key = signing.to_pkcs8_der().map_err(|_| CertError::Key)?;
        Ok(SelfSigned {
            fingerprint: Sha256::digest(&der).into(),
            cert: CertificateDer::from(der),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.as_bytes().to_vec())),
            pem,
        })
    }

    /// The fingerprint as OpenSSL prints it: upper-case hex pairs joined by colons.
    pub fn fingerprint_hex(&self) -> String {
        let mut s = String::with_capacity(95);
        for (i, b) in self.fingerprint.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            s.push_str(&alloc::format!("{b:02X}"));
        }
        s
    }
}

fn common_name(name: SubjectName<'_>) -> String {
    match name {
        SubjectName::Dns(d) => String::from(d),
        SubjectName::Ip(a) => alloc::format!("{a}"),
    }
}

fn extension<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, der::Error> {
    Ok(Extension { extn_id: T::OID, critical, extn_value: OctetString::new(value.to_der()?)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    struct Counter(u64);
    impl rand_core::RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            rand_core::impls::fill_bytes_via_next(self, dest)
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    // A test generator only: deterministic, so the test is repeatable.
    impl rand_core::CryptoRng for Counter {}

    #[test]
    fn pem_fingerprint_and_names() {
        let names = [SubjectName::Ip("10.0.0.2".parse().unwrap()), SubjectName::Dns("guest.test")];
        let c = SelfSigned::generate(&names, Duration::from_secs(1_800_000_000), 365, &mut Counter(1)).unwrap();
        let from_pem = CertificateDer::from_pem_slice(c.pem.as_bytes()).unwrap();
        assert_eq!(from_pem, c.cert, "the PEM is not the DER");
        assert_eq!(c.fingerprint, <[u8; 32]>::from(Sha256::digest(c.cert.as_ref())));
        let hex = c.fingerprint_hex();
        assert_eq!(hex.len(), 95);
        assert!(hex.split(':').all(|p| p.len() == 2 && p.chars().all(|ch| ch.is_ascii_hexdigit())));
        // The address is in the DER as its four bytes (a SAN iPAddress), the name as text.
        let der = c.cert.as_ref();
        assert!(der.windows(6).any(|w| w == [0x87, 4, 10, 0, 0, 2]), "no iPAddress 10.0.0.2");
        assert!(der.windows(10).any(|w| w == b"guest.test"));
        // A new key each time.
        let d = SelfSigned::generate(&names, Duration::from_secs(1_800_000_000), 365, &mut Counter(2)).unwrap();
        assert_ne!(c.fingerprint, d.fingerprint);
        assert!(matches!(SelfSigned::generate(&[], Duration::ZERO, 1, &mut Counter(3)), Err(CertError::NoNames)));
    }
}
