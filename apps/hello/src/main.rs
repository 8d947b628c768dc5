//! `hello`: greets with the Xen version and the domain's memory, then powers off.
#![no_std]
#![no_main]

const MIB: f64 = 1024.0 * 1024.0;

#[sirocco::main]
fn main(env: &sirocco::Env) {
    let m = &env.memory;
    sirocco::println!(
        "Hello from Sirocco! Xen {}, domain memory {:.1} MiB, heap {:.1} MiB, up {} ms",
        env.xen,
        m.domain_bytes as f64 / MIB,
        m.heap_bytes as f64 / MIB,
        sirocco::uptime().as_millis()
    );
    if !env.cmdline.as_str().is_empty() {
        sirocco::println!("command line: {}", env.cmdline.as_str());
    }
    if let Some(name) = env.cmdline.get("greet") {
        sirocco::println!("Hello, {name}!");
    }
}
