//! Where the platform layer hands over (`sirocco_boot::Started`): the run loop and xenstore come up, then the
//! application runs and its result ends the domain.

use crate::{Env, Exit};
use sirocco_boot::Started;

extern "Rust" {
    /// Defined by the application with `sirocco::main!`; an image links exactly one.
    fn __sirocco_app_main(env: &Env) -> Exit;
}

/// Called once by `sirocco_boot`'s start of day, in every boot mode.
#[no_mangle]
fn __sirocco_kernel_main(started: Started) -> ! {
    crate::runtime::init();
    if let Err(e) = crate::xenstore::init(started.xenstore.0, started.xenstore.1) {
        log::error!("xenstore: {e}; control/shutdown and devices will not work");
    }
    crate::boot_steps::step("xenstore");
    crate::logs::init(&started.cmdline);
    crate::trace::init(&started.cmdline);
    crate::rand::init(&started.cmdline);
    crate::boot_steps::step("random numbers");
    crate::CMDLINE.call_once(|| started.cmdline);
    crate::XEN.call_once(|| started.xen);
    let env = Env { cmdline: started.cmdline, memory: started.memory, xen: started.xen, mode: started.mode };
    // SAFETY: `sirocco::main!` defines the symbol with exactly this signature; without it the image does not link.
    let exit = unsafe { __sirocco_app_main(&env) };
    crate::exit(exit)
}
