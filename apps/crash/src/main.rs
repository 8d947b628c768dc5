//! `crash`: fails on purpose, one way per `fault=` on the command line, to prove each crash report (the lab boots
//! every mode as PV and PVH and checks the report names the fault and, in its backtrace, the function that faulted
//! and its caller here):
//!
//! | `fault=` | what | report |
//! |---|---|---|
//! | (none), `panic` | a panic | message, location, backtrace |
//! | `nested` | a panic three calls deep | the backtrace names all three |
//! | `task` | a panic inside an async task | the backtrace through the executor |
//! | `null` | a read of address 0 | page fault, read of 0x0 |
//! | `write0` | a write to address 8 | page fault, write of 0x8 |
//! | `jump0` | a call to address 0 | page fault, fetch of 0x0 |
//! | `readonly` | a write to a constant (`.rodata`) | page fault, write, the page is read-only |
//! | `nx` | a call into a heap buffer holding `ret` | page fault, fetch, the page is not executable |
//! | `div0` | an integer division by zero | divide error |
//! | `ud` | `ud2` | invalid opcode |
//! | `stack` | unbounded recursion | STACK OVERFLOW (PVH/HVM; under PV Xen itself crashes the domain, see README) |
//! | `oom` | an allocation larger than the heap | out of memory: the request and the heap's totals |
#![no_std]
#![no_main]

extern crate alloc;

use core::hint::black_box;

#[sirocco::main]
fn main(env: &sirocco::Env) {
    let fault = env.cmdline.get("fault").unwrap_or("panic");
    sirocco::println!("crash: fault={fault}, on purpose");
    match fault {
        "nested" => outer(black_box(3)),
        "task" => {
            sirocco::spawn(async {
                sirocco::sleep(core::time::Duration::from_millis(1)).await;
                panic_in_task(black_box(7));
            });
            sirocco::block_on(sirocco::sleep(core::time::Duration::from_secs(5)));
        }
        "null" => read_null(),
        "write0" => write_low(),
        "jump0" => call_null(),
        "readonly" => write_constant(),
        "nx" => call_heap(),
        "div0" => {
            let q = divide(black_box(1), black_box(0));
            sirocco::println!("crash: 1 / 0 = {q}?!");
        }
        "ud" => invalid_opcode(),
        "stack" => {
            let depth = recurse(black_box(1));
            sirocco::println!("crash: recursion returned {depth}?!");
        }
        "oom" => {
            let mut v: alloc::vec::Vec<u8> = alloc::vec::Vec::with_capacity(black_box(1 << 40));
            v.push(1);
            black_box(&v);
            sirocco::println!("crash: allocated {} bytes?!", v.capacity());
        }
        _ => {}
    }
    let code = env.cmdline.get("code").unwrap_or("42");
    panic!("deliberate crash from the crash app (code {code})");
}

#[inline(never)]
fn outer(n: u32) {
    middle(black_box(n + 1));
}

#[inline(never)]
fn middle(n: u32) {
    innermost(black_box(n + 1));
}

#[inline(never)]
fn innermost(n: u32) {
    panic!("deliberate panic three calls deep (n = {n})");
}

#[inline(never)]
fn panic_in_task(n: u32) {
    panic!("deliberate panic inside an async task ({n})");
}

#[inline(never)]
fn read_null() {
    let v: u64;
    // SAFETY: the load faults on purpose (page 0 is never mapped) and the fault path does not return; it is done
    // in asm so no Rust reference or pointer to address 0 exists.
    unsafe { core::arch::asm!("mov {1}, [{0}]", in(reg) 0u64, out(reg) v, options(nostack)) };
    sirocco::println!("crash: read {v} from address 0?!");
}

#[inline(never)]
fn write_low() {
    // SAFETY: the store faults on purpose (page 0 is never mapped) and the fault path does not return.
    unsafe { core::arch::asm!("mov qword ptr [{0}], 1", in(reg) 8u64, options(nostack)) };
    sirocco::println!("crash: wrote address 8?!");
}

#[inline(never)]
fn call_null() {
    // SAFETY: the call faults on its instruction fetch (page 0 is never mapped); the fault path does not return.
    unsafe { core::arch::asm!("call {0}", in(reg) 0u64, clobber_abi("C")) };
    sirocco::println!("crash: returned from address 0?!");
}

/// A constant in `.rodata`, which W^X maps read-only.
static CONSTANT: [u8; 16] = *b"sirocco constant";

#[inline(never)]
fn write_constant() {
    let at = black_box(CONSTANT.as_ptr()) as u64;
    sirocco::println!("crash: writing the constant at {at:#x}");
    // SAFETY: the store faults on purpose (`.rodata` is mapped read-only) and the fault path does not return; it is
    // done in asm so no Rust reference to the constant is ever written through.
    unsafe { core::arch::asm!("mov byte ptr [{0}], 0", in(reg) at, options(nostack)) };
    sirocco::println!("crash: wrote a constant?! It now reads {:?}", black_box(&CONSTANT));
}

#[inline(never)]
fn call_heap() {
    // `ret` (0xc3): were the heap executable, the call would come straight back and the app would say so.
    let code = black_box(alloc::vec![0xc3u8; 64]);
    let at = code.as_ptr() as u64;
    sirocco::println!("crash: calling the heap at {at:#x}");
    // SAFETY: the call faults on its instruction fetch (the heap is mapped not executable); were it executable,
    // the buffer's `ret` returns at once with no register or memory touched.
    unsafe { core::arch::asm!("call {0}", in(reg) at, clobber_abi("C")) };
    sirocco::println!("crash: ran code on the heap at {at:#x} and came back?!");
}

#[inline(never)]
fn divide(a: u64, b: u64) -> u64 {
    let q: u64;
    // SAFETY: `div` by zero raises #DE on purpose, which the fault path reports without returning (Rust's own `/`
    // would panic before dividing); it touches no memory.
    unsafe {
        core::arch::asm!("div {b}", b = in(reg) b, inout("rax") a => q, inout("rdx") 0u64 => _, options(nomem, nostack))
    };
    q
}

#[inline(never)]
fn invalid_opcode() {
    // SAFETY: ud2 raises #UD, which the fault path reports without returning; it touches no memory.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
}

/// Uses 1 KiB of stack per level and never stops.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let mut buf = [0u8; 1024];
    buf[n as usize % 1024] = n as u8;
    black_box(&mut buf);
    recurse(n + 1) + u64::from(buf[0])
}
