//! Channels, a one-shot signal and an async mutex for an app's tasks to share work: embassy-sync's (a well-kept
//! no_std crate; Sirocco writes none of its own), over one raw mutex that fits Sirocco's run loop.
//!
//! Every task runs on the one vCPU, one at a time, and no interrupt handler touches these: event upcalls stay
//! masked and events are polled by the run loop. So the critical section embassy-sync's raw mutex asks for has
//! nothing to exclude, and this crate's implementation of it (for `critical-section`) is empty.
//!
//! ```ignore
//! static JOBS: sirocco::sync::Channel<Job, 64> = sirocco::sync::Channel::new();
//! JOBS.send(job).await;              // waits while 64 are queued
//! let job = JOBS.receive().await;    // waits while none is
//! ```

/// The raw mutex under every type here.
pub use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex as RawMutex;
pub use embassy_sync::channel::{Receiver, Sender, TryReceiveError, TrySendError};

/// A bounded channel of up to `N` values of `T`, any number of senders and receivers: `send(t).await` waits while
/// it is full, `receive().await` while it is empty; `try_send`/`try_receive` do not wait.
pub type Channel<T, const N: usize> = embassy_sync::channel::Channel<RawMutex, T, N>;
/// An async mutex: `lock().await` waits for the holder, never spinning the vCPU.
pub type Mutex<T> = embassy_sync::mutex::Mutex<RawMutex, T>;
/// A value signalled and awaited: `signal(v)` stores it (replacing one not yet taken), `wait().await` takes it.
/// Signalled once, it is a one-shot.
pub type Signal<T> = embassy_sync::signal::Signal<RawMutex, T>;

struct OneVcpu;
critical_section::set_impl!(OneVcpu);

// SAFETY: a critical section must keep every other execution context out of the data it guards. Sirocco has one
// vCPU, tasks run one at a time and are never preempted, and nothing runs in interrupt context (upcalls stay
// masked for the domain's life; the exception handlers end the domain and take no lock), so there is no other
// context to keep out: entering and leaving need do nothing, and nesting is harmless.
unsafe impl critical_section::Impl for OneVcpu {
    unsafe fn acquire() -> critical_section::RawRestoreState {}
    unsafe fn release(_: critical_section::RawRestoreState) {}
}
