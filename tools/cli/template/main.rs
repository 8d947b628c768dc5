//! {{name}}: a Sirocco unikernel. It greets, names the guest its command line asks it to (`greet=NAME`), runs a
//! task beside `main` and waits for its answer, and powers the domain off.
#![no_std]
#![no_main]

use core::time::Duration;

#[sirocco::main]
async fn main(env: sirocco::Env) -> Result<(), sirocco::Error> {
    sirocco::println!("{{name}}: hello from a Sirocco unikernel, booted as {} on Xen {}", env.mode, env.xen);
    if let Some(name) = env.cmdline.get("greet") {
        sirocco::println!("{{name}}: hello, {name}!");
    }
    // A task runs beside main; its JoinHandle gives back what it returns.
    let task = sirocco::spawn(async {
        sirocco::sleep(Duration::from_millis(10)).await;
        6 * 7
    });
    let answer = task.await?;
    sirocco::println!("{{name}}: a task answered {answer}");
    Ok(())
}
