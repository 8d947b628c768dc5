//! Random numbers for keys, nonces and anything an attacker must not guess: one ChaCha20 generator for the
//! guest, seeded at boot from the CPU's entropy instructions and timing jitter
//! (`sirocco_kernel_logic::rand` has the pool, the health checks and the generator; `sirocco_boot::entropy` the
//! instructions).
//!
//! Where the seed comes from, in every boot mode (PV, PVH, HVM): RDSEED when CPUID offers it, else RDRAND, each
//! sample health-checked, plus time-stamp counter jitter that is mixed in but never counted. Xen passes both
//! instructions to guests on CPUs that have them unless the domain's CPUID policy hides them
//! (`cpuid = "host,rdrand=0,rdseed=0"` in an xl config does). With neither, the boot log says so and
//! [`require_trusted`] refuses (TLS will not start) unless the command line has `entropy=weak`, which accepts a
//! seed from jitter alone.
//!
//! The generator is reseeded from fresh samples every [`RESEED_INTERVAL`] of use and after every suspend, so a
//! restored or migrated copy of the domain, or one left running after `xl save -c`, does not repeat the
//! numbers the other copy draws.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use sirocco_boot::entropy;
use sirocco_boot_logic::cmdline::Cmdline;
use sirocco_kernel_logic::rand::{Csprng, Pool, PoolStats, Source};
use spin::{Mutex, Once};

pub use sirocco_kernel_logic::rand::{Strength, Untrusted};

/// How long a seed is used before fresh hardware samples are mixed in.
pub const RESEED_INTERVAL: Duration = Duration::from_secs(300);

static RNG: Once<Mutex<State>> = Once::new();
/// Time-stamp counter readings at event wake-ups, folded together cheaply by the run loop
/// ([`note_event_timing`]) and mixed in at the next reseed.
static EVENT_JITTER: AtomicU64 = AtomicU64::new(0);

struct State {
    rng: Csprng,
    weak_accepted: bool,
    boot_pool: PoolStats,
    last_reseed_ns: u64,
    hardware_failures: u64,
}

/// The generator's state, for logs and the stats page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandStats {
    /// What the seed may claim.
    pub strength: Strength,
    /// Whether the command line accepts a jitter-only seed for keys (`entropy=weak`).
    pub weak_accepted: bool,
    /// Hardware samples accepted and rejected, and jitter measurements, at boot.
    pub boot_pool: PoolStats,
    /// Instructions that failed every retry (RDSEED out of entropy, RDRAND broken), since boot.
    pub hardware_failures: u64,
    /// Reseeds since boot.
    pub reseeds: u32,
    /// Bytes generated since boot.
    pub generated: u64,
}

/// Samples gathered for one seed: RDSEED's or RDRAND's, a few more than the pool needs, and timing jitter.
fn gather(label: &[u8], failures: &mut u64) -> Pool {
    let mut pool = Pool::new(label);
    let offered = entropy::offered();
    let wanted = 2 * Pool::HARDWARE_SAMPLES_NEEDED;
    for _ in 0..4 * wanted {
        if pool.stats().accepted >= wanted {
            break;
        }
        let t0 = entropy::tsc();
        let sample = offered
            .rdseed(128)
            .map(|s| (Source::Rdseed, s))
            .or_else(|| offered.rdrand(10).map(|s| (Source::Rdrand, s)));
        match sample {
            Some((source, s)) => drop(pool.add_hardware(source, s)),
            None if offered.has_rdseed() || offered.has_rdrand() => *failures += 1,
            None => {}
        }
        pool.add_jitter(entropy::tsc().wrapping_sub(t0));
    }
    // Jitter: the time each of a few hundred small loads of work takes varies with caches, interrupts and the
    // hypervisor. Mixed in, never counted.
    let mut acc = 0u64;
    for i in 0..256u64 {
        let t0 = entropy::tsc();
        for j in 0..(i & 15) {
            acc = acc.rotate_left(5) ^ j.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        pool.add_jitter(entropy::tsc().wrapping_sub(t0) ^ acc);
    }
    pool.add_jitter(EVENT_JITTER.swap(0, Ordering::Relaxed));
    if let Some(now) = sirocco_boot::xen::system_time_ns() {
        pool.add_jitter(now);
    }
    pool
}

/// Seeds the generator (once, at boot, before the application runs) and logs where the seed came from.
pub(crate) fn init(cmdline: &Cmdline<'_>) {
    let weak_accepted = match cmdline.get("entropy") {
        None => false,
        Some("weak") => true,
        Some(other) => {
            log::warn!("entropy={other}: not understood (entropy=weak accepts a seed from timing jitter alone)");
            false
        }
    };
    RNG.call_once(|| {
        let mut failures = 0;
        let pool = gather(b"boot", &mut failures);
        let boot_pool = pool.stats();
        let rng = Csprng::new(pool);
        let offered = entropy::offered();
        match rng.strength() {
            Strength::Hardware(source) => log::info!(
                "random numbers: seeded from {source} ({} samples, {} rejected by the health check) and timing \
                 jitter",
                boot_pool.accepted,
                boot_pool.rejected
            ),
            Strength::JitterOnly => log::warn!(
                "random numbers: no hardware entropy (CPUID offers RDSEED: {}, RDRAND: {}; {} samples accepted, \
                 {} rejected, {} failed): seeded from timing jitter only; {}",
                offered.has_rdseed(),
                offered.has_rdrand(),
                boot_pool.accepted,
                boot_pool.rejected,
                failures,
                if weak_accepted {
                    "entropy=weak accepts it for keys"
                } else {
                    "TLS and other key generation are refused (entropy=weak accepts this seed)"
                }
            ),
        }
        Mutex::new(State {
            rng,
            weak_accepted,
            boot_pool,
            last_reseed_ns: sirocco_boot::xen::system_time_ns().unwrap_or(0),
            hardware_failures: failures,
        })
    });
}

fn state() -> &'static Mutex<State> {
    RNG.get().expect("sirocco::rand used before the runtime started")
}

/// Fills `dest` with random bytes. Always answers: check [`require_trusted`] (or [`stats`]) before using them
/// for keys.
pub fn fill(dest: &mut [u8]) {
    let mut s = state().lock();
    let now = sirocco_boot::xen::system_time_ns().unwrap_or(0);
    if now.saturating_sub(s.last_reseed_ns) >= RESEED_INTERVAL.as_nanos() as u64 {
        reseed_locked(&mut s, now);
    }
    s.rng.fill(dest);
}

fn reseed_locked(s: &mut State, now: u64) {
    let pool = gather(b"reseed", &mut s.hardware_failures);
    s.rng.reseed(pool);
    s.last_reseed_ns = now;
}

/// Mixes fresh samples into the generator now: after a suspend, so that two copies of the domain (the one
/// restored and the one that went on, or two restores of one save file) draw different numbers.
pub(crate) fn reseed() {
    let mut s = state().lock();
    let now = sirocco_boot::xen::system_time_ns().unwrap_or(0);
    reseed_locked(&mut s, now);
}

/// Folds a time-stamp counter reading into the jitter the next reseed mixes in; cheap enough for every event.
pub(crate) fn note_event_timing() {
    let t = entropy::tsc();
    let _ = EVENT_JITTER.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |j| Some(j.rotate_left(7) ^ t));
}

/// Ok if the seed came from a hardware source, or the command line accepts jitter alone (`entropy=weak`):
/// what TLS and key generation ask before they start.
pub fn require_trusted() -> Result<Strength, Untrusted> {
    let s = state().lock();
    sirocco_kernel_logic::rand::for_keys(s.rng.strength(), s.weak_accepted)
}

/// The generator's state.
pub fn stats() -> RandStats {
    let s = state().lock();
    RandStats {
        strength: s.rng.strength(),
        weak_accepted: s.weak_accepted,
        boot_pool: s.boot_pool,
        hardware_failures: s.hardware_failures,
        reseeds: s.rng.reseeds(),
        generated: s.rng.generated(),
    }
}

/// A handle on the guest's generator for code written against `rand_core` (key generation, nonces): every call
/// draws from the one generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rng;

impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for Rng {}

/// The `getrandom` crate's source on this target (used by crates that draw their own randomness, such as the
/// TLS provider): the guest's generator, refused while [`require_trusted`] refuses.
fn getrandom_hook(dest: &mut [u8]) -> Result<(), getrandom::Error> {
    // getrandom's range for custom errors starts at Error::CUSTOM_START.
    const UNTRUSTED: u32 = getrandom::Error::CUSTOM_START + 1;
    require_trusted().map_err(|Untrusted| getrandom::Error::from(core::num::NonZeroU32::new(UNTRUSTED).unwrap()))?;
    fill(dest);
    Ok(())
}

getrandom::register_custom_getrandom!(getrandom_hook);
