//! `crash`: panics on purpose, to prove the crash path (message and location on the console, domain crashed).
#![no_std]
#![no_main]

sirocco::main!(main);

fn main(env: &sirocco::Env) {
    sirocco::println!("crash: about to panic on purpose");
    let code = env.cmdline.get("code").unwrap_or("42");
    panic!("deliberate crash from the crash app (code {code})");
}
