//! `crash`: fails on purpose, to prove the crash paths: by default a panic (message and location on the console,
//! domain crashed); with `fault=null` a read of address 0, `fault=ud` an invalid opcode, `fault=stack` unbounded
//! recursion into the stack's guard page (CPU exceptions: reported under PVH/HVM, where Sirocco has an IDT).
#![no_std]
#![no_main]

sirocco::main!(main);

fn main(env: &sirocco::Env) {
    match env.cmdline.get("fault") {
        Some("null") => {
            sirocco::println!("crash: reading address 0 on purpose");
            let v: u64;
            // SAFETY: the load faults on purpose (page 0 is never mapped) and the fault path does not return; it
            // is done in asm so no Rust reference or pointer to address 0 exists.
            unsafe { core::arch::asm!("mov ({0}), {1}", in(reg) 0u64, out(reg) v, options(att_syntax, nostack)) };
            sirocco::println!("crash: read {v} from address 0?!");
        }
        Some("ud") => {
            sirocco::println!("crash: executing ud2 on purpose");
            // SAFETY: ud2 raises #UD, which the fault path reports without returning; it touches no memory.
            unsafe { core::arch::asm!("ud2") };
        }
        Some("stack") => {
            sirocco::println!("crash: recursing until the stack overflows, on purpose");
            let depth = recurse(core::hint::black_box(1));
            sirocco::println!("crash: recursion returned {depth}?!");
        }
        _ => {}
    }
    sirocco::println!("crash: about to panic on purpose");
    let code = env.cmdline.get("code").unwrap_or("42");
    panic!("deliberate crash from the crash app (code {code})");
}

/// Uses 1 KiB of stack per level and never stops.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let mut buf = [0u8; 1024];
    buf[n as usize % 1024] = n as u8;
    core::hint::black_box(&mut buf);
    recurse(n + 1) + u64::from(buf[0])
}
