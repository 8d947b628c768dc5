//! The CPU's entropy instructions, RDSEED and RDRAND, and its time-stamp counter for timing jitter: the
//! hardware side of `sirocco::rand` (the pool, health checks and generator are `sirocco_kernel_logic::rand`).
//!
//! Both instructions are unprivileged and run natively in PV, PVH and HVM guests where the CPU has them; Xen's
//! CPUID policy says whether the guest may use them, so CPUID is asked first and an instruction it does not
//! offer is never executed. RDRAND comes from the `x86_64` crate; RDSEED, which that crate lacks, is written here.

use x86_64::instructions::random::RdRand;

/// Which entropy instructions CPUID offers this guest. The fields are private: `rdseed` is what makes calling
/// the RDSEED instruction sound, so safe code must not be able to set it, and RDRAND's presence is the crate's
/// handle itself, not a second flag that could disagree with it.
#[derive(Clone, Copy, Debug)]
pub struct Offered {
    /// RDSEED: CPUID.(EAX=7,ECX=0):EBX bit 18.
    rdseed: bool,
    /// The x86_64 crate's RDRAND (CPUID.1:ECX bit 30), made after its own CPUID check where offered.
    rdrand: Option<RdRand>,
}

/// What CPUID offers (ask once: CPUID exits to Xen under PVH and HVM), with the instructions as methods.
pub fn offered() -> Offered {
    let max = crate::cpuid(0)[0];
    Offered { rdseed: max >= 7 && crate::cpuid(7)[1] & (1 << 18) != 0, rdrand: RdRand::new() }
}

/// One RDSEED; whether it answered. Only callable (with `unsafe`) where the CPU has the instruction.
#[target_feature(enable = "rdseed")]
fn rdseed_step(value: &mut u64) -> bool {
    core::arch::x86_64::_rdseed64_step(value) == 1
}

impl Offered {
    /// Whether CPUID offers RDSEED.
    pub fn has_rdseed(&self) -> bool {
        self.rdseed
    }

    /// Whether CPUID offers RDRAND.
    pub fn has_rdrand(&self) -> bool {
        self.rdrand.is_some()
    }

    /// Tries RDSEED up to `tries` times (it fails, with CF clear, while the entropy source refills: Intel's DRNG
    /// guide suggests retrying with a pause); `None` if CPUID does not offer it or every try failed.
    pub fn rdseed(&self, tries: u32) -> Option<u64> {
        if !self.rdseed {
            return None;
        }
        for _ in 0..tries {
            let mut value = 0u64;
            // SAFETY: CPUID says the CPU has RDSEED (`self.rdseed`, from `offered`), which is all `rdseed` needs:
            // it writes only the local `value` and the flags.
            if unsafe { rdseed_step(&mut value) } {
                return Some(value);
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Tries RDRAND up to `tries` times (Intel's guide: ten tries, a failure after that means a broken DRNG);
    /// `None` if CPUID does not offer it or every try failed.
    pub fn rdrand(&self, tries: u32) -> Option<u64> {
        let rdrand = self.rdrand?;
        (0..tries).find_map(|_| rdrand.get_u64())
    }
}

/// The time-stamp counter, unordered: a timing sample, not a clock.
pub fn tsc() -> u64 {
    // SAFETY: RDTSC only reads the counter; Xen allows it in every guest mode (PV guests may have it emulated,
    // which changes its cost, not its safety).
    unsafe { core::arch::x86_64::_rdtsc() }
}
