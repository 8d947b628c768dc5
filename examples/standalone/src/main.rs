//! `standalone`: an application crate outside Sirocco's workspace. It greets, names its command line's `greet=`,
//! and powers off.
#![no_std]
#![no_main]

#[sirocco::main]
fn main(env: &sirocco::Env) {
    sirocco::println!("standalone: built outside the Sirocco workspace, booted as {} on Xen {}", env.mode, env.xen);
    if let Some(name) = env.cmdline.get("greet") {
        sirocco::println!("standalone: hello, {name}!");
    }
}
