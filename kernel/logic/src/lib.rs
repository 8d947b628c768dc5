//! The runtime core's logic, free of `unsafe` and of any hypervisor access, so every edge case is tested on the
//! host: the timer queue, the tasks and their run queue, the small futures the run loop and apps combine, the
//! metrics registry with its Prometheus and JSON encoders, and the Chrome trace-event export of the trace.
//! The runtime (`kernel/`, crate `sirocco`) drives them with Xen's clock and events.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod future;
pub mod metrics;
pub mod rand;
pub mod task;
pub mod timer;
pub mod trace;
