//! The random number generator's logic: what counts as entropy, how it is mixed into a seed, and the generator
//! the seed keys. The runtime (`sirocco::rand`) feeds it samples from the CPU's RDSEED/RDRAND instructions and
//! timing jitter; nothing here touches the hardware, so every rule is tested on the host.
//!
//! - Hardware samples pass a health check before they count: a sample of all zeros or all ones, or one equal to
//!   the sample before it, is rejected and counted (Xen's CPUID policy may pass the instructions through to parts
//!   that answer with a constant; some AMD parts returned all ones after a suspend).
//! - Every sample, counted or not, and every jitter measurement goes into a SHA-256 pool; the seed is its digest.
//!   Jitter is mixed in but never counted: timing in a virtual machine is the hypervisor's to shape.
//! - [`Csprng`] is ChaCha20 (`rand_chacha`, the rand project's generator, not a cipher written here) keyed by the
//!   seed, with fast key erasure: after each request the key is replaced by fresh output, so a later compromise of
//!   the state does not reveal what was generated before. [`Csprng::reseed`] mixes a new pool into the key.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// Where a generator's seed came from, as far as can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strength {
    /// At least [`Pool::HARDWARE_SAMPLES_NEEDED`] samples that passed the health check came from the CPU's
    /// entropy source: RDSEED (a conditioned entropy source) or RDRAND (a DRBG the CPU reseeds from it).
    Hardware(Source),
    /// Too few hardware samples (none, on a CPU without the instructions or where Xen hides them): the seed rests
    /// on timing jitter, which a hypervisor can observe or shape. Not for keys unless the user accepts it.
    JitterOnly,
}

/// A hardware entropy instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// RDSEED (CPUID.(EAX=7,ECX=0):EBX bit 18).
    Rdseed,
    /// RDRAND (CPUID.1:ECX bit 30).
    Rdrand,
}

impl core::fmt::Display for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Source::Rdseed => "RDSEED",
            Source::Rdrand => "RDRAND",
        })
    }
}

impl core::fmt::Display for Strength {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Strength::Hardware(source) => write!(f, "{source}"),
            Strength::JitterOnly => f.write_str("timing jitter only"),
        }
    }
}

/// The refusal of keys on an untrusted seed: timing jitter alone, and the user did not accept it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Untrusted;

impl core::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(
            "random numbers: no hardware entropy source (CPUID offers neither RDSEED nor RDRAND, or their answers \
             failed the health check), so keys would rest on timing jitter alone; add entropy=weak to the command \
             line to accept that",
        )
    }
}

impl core::error::Error for Untrusted {}

/// Whether keys may be made from a seed of `strength`: always from a hardware source; from jitter alone only
/// if the user said so (`weak_accepted`, the command line's `entropy=weak`).
pub fn for_keys(strength: Strength, weak_accepted: bool) -> Result<Strength, Untrusted> {
    match strength {
        Strength::JitterOnly if !weak_accepted => Err(Untrusted),
        strength => Ok(strength),
    }
}

/// Counts of what went into a pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Hardware samples that passed the health check.
    pub accepted: u32,
    /// Hardware samples rejected by it (all zeros, all ones, or a repeat of the previous sample).
    pub rejected: u32,
    /// Jitter measurements mixed in (never counted as entropy).
    pub jitter: u32,
}

/// Entropy being gathered for one seed.
#[derive(Clone)]
pub struct Pool {
    hash: Sha256,
    source: Option<Source>,
    last: Option<u64>,
    stats: PoolStats,
}

impl Pool {
    /// Hardware samples a seed needs before it counts as [`Strength::Hardware`]: four 64-bit samples, 256 bits,
    /// the size of the ChaCha20 key they seed.
    pub const HARDWARE_SAMPLES_NEEDED: u32 = 4;

    /// An empty pool. `label` separates pools by purpose (the first seed, a reseed), so two never hash the same
    /// input.
    pub fn new(label: &[u8]) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"sirocco rand pool v1\0");
        hash.update((label.len() as u64).to_le_bytes());
        hash.update(label);
        Pool { hash, source: None, last: None, stats: PoolStats::default() }
    }

    /// Mixes in a hardware sample from `source`; returns whether it passed the health check and counts.
    pub fn add_hardware(&mut self, source: Source, sample: u64) -> bool {
        self.hash.update([1u8]);
        self.hash.update(sample.to_le_bytes());
        let ok = sample != 0 && sample != u64::MAX && self.last != Some(sample);
        self.last = Some(sample);
        if ok {
            self.stats.accepted += 1;
            // The weaker of the sources a pool mixes is the one it can claim.
            self.source = match (self.source, source) {
                (Some(Source::Rdrand), _) | (_, Source::Rdrand) => Some(Source::Rdrand),
                _ => Some(Source::Rdseed),
            };
        } else {
            self.stats.rejected += 1;
        }
        ok
    }

    /// Mixes in a timing measurement (a time stamp counter reading or a difference of two); never counted.
    pub fn add_jitter(&mut self, ticks: u64) {
        self.hash.update([2u8]);
        self.hash.update(ticks.to_le_bytes());
        self.stats.jitter += 1;
    }

    /// What the pool holds so far.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// What a seed from this pool may claim.
    pub fn strength(&self) -> Strength {
        match self.source {
            Some(source) if self.stats.accepted >= Self::HARDWARE_SAMPLES_NEEDED => Strength::Hardware(source),
            _ => Strength::JitterOnly,
        }
    }

    /// The seed: SHA-256 over everything mixed in, with the counts.
    pub fn seed(self) -> [u8; 32] {
        let mut hash = self.hash;
        hash.update([3u8]);
        hash.update(self.stats.accepted.to_le_bytes());
        hash.update(self.stats.rejected.to_le_bytes());
        hash.update(self.stats.jitter.to_le_bytes());
        hash.finalize().into()
    }
}

/// A cryptographically secure generator: ChaCha20 keyed by a pool's seed, with fast key erasure.
pub struct Csprng {
    rng: ChaCha20Rng,
    strength: Strength,
    generated: u64,
    reseeds: u32,
}

impl Csprng {
    /// A generator keyed by `pool`.
    pub fn new(pool: Pool) -> Self {
        let strength = pool.strength();
        Csprng { rng: ChaCha20Rng::from_seed(pool.seed()), strength, generated: 0, reseeds: 0 }
    }

    /// What the seeds so far may claim: the strongest of them (a seed never weakens the key it is mixed into).
    pub fn strength(&self) -> Strength {
        self.strength
    }

    /// Bytes generated since the first seed.
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// Reseeds so far.
    pub fn reseeds(&self) -> u32 {
        self.reseeds
    }

    /// Mixes `pool` into the key: the new key is SHA-256 of 32 bytes of the old generator's output and the pool's
    /// seed, so it is at least as strong as either.
    pub fn reseed(&mut self, pool: Pool) {
        if let Strength::Hardware(source) = pool.strength() {
            self.strength = match self.strength {
                Strength::Hardware(Source::Rdseed) => Strength::Hardware(Source::Rdseed),
                _ => Strength::Hardware(source),
            };
        }
        let mut old = [0u8; 32];
        self.rng.fill_bytes(&mut old);
        let mut hash = Sha256::new();
        hash.update(b"sirocco rand reseed v1\0");
        hash.update(old);
        hash.update(pool.seed());
        self.rng = ChaCha20Rng::from_seed(hash.finalize().into());
        self.reseeds += 1;
    }

    /// Fills `dest`, then erases the key that produced it.
    pub fn fill(&mut self, dest: &mut [u8]) {
        self.rng.fill_bytes(dest);
        let mut key = [0u8; 32];
        self.rng.fill_bytes(&mut key);
        self.rng = ChaCha20Rng::from_seed(key);
        self.generated += dest.len() as u64;
    }
}

impl RngCore for Csprng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill(dest);
        Ok(())
    }
}

impl CryptoRng for Csprng {}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> std::string::String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn hardware_pool(source: Source) -> Pool {
        let mut pool = Pool::new(b"boot");
        for sample in [0x0123_4567_89ab_cdef_u64, 0xfedc_ba98_7654_3210, 0x1111_2222_3333_4444, 0x5555_6666_7777_8888] {
            assert!(pool.add_hardware(source, sample));
        }
        pool.add_jitter(42);
        pool
    }

    /// The seed and the first output, against values computed outside Rust (Python's hashlib and the
    /// `cryptography` package's ChaCha20, key = seed, counter and nonce zero):
    /// ```text
    /// import hashlib, struct
    /// h = hashlib.sha256(b"sirocco rand pool v1\0" + struct.pack("<Q", 4) + b"boot")
    /// for s in samples: h.update(b"\1" + struct.pack("<Q", s))
    /// h.update(b"\2" + struct.pack("<Q", 42)); h.update(b"\3" + struct.pack("<III", 4, 0, 1))
    /// ```
    #[test]
    fn known_answer_seed_and_first_output() {
        let pool = hardware_pool(Source::Rdseed);
        assert_eq!(pool.strength(), Strength::Hardware(Source::Rdseed));
        let seed = pool.clone().seed();
        assert_eq!(hex(&seed), SEED_KAT);
        let mut rng = Csprng::new(pool);
        let mut out = [0u8; 32];
        rng.fill(&mut out);
        assert_eq!(hex(&out), FIRST_OUTPUT_KAT);
        assert_eq!(rng.generated(), 32);
    }

    const SEED_KAT: &str = "1f14817a1a82eea0baa1b6e6a12343d5f9b3eadbd9a5df0465d74ac3db9a6f67";
    const FIRST_OUTPUT_KAT: &str = "74c95d62e64c6648ef06696e994881cda519568c3ac5fa30e63f7cc45e2f32e8";

    #[test]
    fn keys_are_refused_on_jitter_alone_unless_accepted() {
        let jitter = Csprng::new(Pool::new(b"boot")).strength();
        assert_eq!(for_keys(jitter, false), Err(Untrusted));
        assert_eq!(for_keys(jitter, true), Ok(Strength::JitterOnly));
        for source in [Source::Rdseed, Source::Rdrand] {
            let hw = Csprng::new(hardware_pool(source)).strength();
            assert_eq!(for_keys(hw, false), Ok(Strength::Hardware(source)));
        }
        assert!(format!("{Untrusted}").contains("entropy=weak"), "the refusal does not say how to accept");
    }

    #[test]
    fn key_is_erased_after_each_request() {
        // Two requests do not continue one keystream: the second starts under a key drawn from the first.
        let mut a = Csprng::new(hardware_pool(Source::Rdseed));
        let mut b = Csprng::new(hardware_pool(Source::Rdseed));
        let mut one = [0u8; 64];
        a.fill(&mut one);
        let (mut first, mut second) = ([0u8; 32], [0u8; 32]);
        b.fill(&mut first);
        b.fill(&mut second);
        assert_eq!(first, one[..32]);
        assert_ne!(second, one[32..], "the second request continued the first keystream");
    }

    #[test]
    fn health_check_rejects_constants_and_repeats() {
        let mut pool = Pool::new(b"boot");
        assert!(!pool.add_hardware(Source::Rdrand, 0));
        assert!(!pool.add_hardware(Source::Rdrand, u64::MAX));
        assert!(pool.add_hardware(Source::Rdrand, 7));
        assert!(!pool.add_hardware(Source::Rdrand, 7), "a repeat counted");
        assert!(pool.add_hardware(Source::Rdrand, 8));
        assert_eq!(pool.stats(), PoolStats { accepted: 2, rejected: 3, jitter: 0 });
        assert_eq!(pool.strength(), Strength::JitterOnly, "two samples are not a seed");
    }

    #[test]
    fn a_cpu_answering_a_constant_leaves_the_pool_jitter_only() {
        let mut pool = Pool::new(b"boot");
        for _ in 0..64 {
            pool.add_hardware(Source::Rdrand, 0xdead_beef);
        }
        for t in 0..1000 {
            pool.add_jitter(t * 37);
        }
        assert_eq!(pool.stats().accepted, 1);
        assert_eq!(pool.strength(), Strength::JitterOnly);
    }

    #[test]
    fn strength_is_the_weaker_source_mixed_and_jitter_never_counts() {
        let mut pool = Pool::new(b"boot");
        for t in 0..10_000 {
            pool.add_jitter(t);
        }
        assert_eq!(pool.strength(), Strength::JitterOnly);
        for s in 1..=3 {
            pool.add_hardware(Source::Rdseed, s);
        }
        assert_eq!(pool.strength(), Strength::JitterOnly, "three samples counted as a seed");
        pool.add_hardware(Source::Rdrand, 4);
        assert_eq!(pool.strength(), Strength::Hardware(Source::Rdrand));
    }

    #[test]
    fn every_input_changes_the_seed() {
        let base = hardware_pool(Source::Rdseed).seed();
        let mut p = hardware_pool(Source::Rdseed);
        p.add_jitter(0);
        assert_ne!(p.seed(), base, "jitter ignored");
        let mut p = hardware_pool(Source::Rdseed);
        p.add_hardware(Source::Rdseed, 0);
        assert_ne!(p.seed(), base, "a rejected sample ignored");
        let mut p = Pool::new(b"reseed");
        for s in [0x0123_4567_89ab_cdef_u64, 0xfedc_ba98_7654_3210, 0x1111_2222_3333_4444, 0x5555_6666_7777_8888] {
            p.add_hardware(Source::Rdseed, s);
        }
        p.add_jitter(42);
        assert_ne!(p.seed(), base, "the label ignored");
    }

    #[test]
    fn reseed_changes_the_stream_and_never_weakens_the_claim() {
        let mut a = Csprng::new(hardware_pool(Source::Rdseed));
        let mut b = Csprng::new(hardware_pool(Source::Rdseed));
        b.reseed(Pool::new(b"reseed"));
        assert_eq!(b.strength(), Strength::Hardware(Source::Rdseed), "a jitter-only reseed weakened the claim");
        assert_eq!(b.reseeds(), 1);
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_ne!(x, y);

        let mut weak = Csprng::new(Pool::new(b"boot"));
        assert_eq!(weak.strength(), Strength::JitterOnly);
        weak.reseed(hardware_pool(Source::Rdrand));
        assert_eq!(weak.strength(), Strength::Hardware(Source::Rdrand));
    }
}
