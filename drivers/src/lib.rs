//! Sirocco's Xen device protocol logic, free of `unsafe`: each driver is written against a small trait for the
//! shared memory it uses, so host tests run it on heap memory against a fake of the other end.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
// The fakes of the other side (feature `fake`, for other crates' tests) use std's Rc and RefCell.
#[cfg(all(feature = "fake", not(test)))]
extern crate std;

pub mod blkfront;
pub mod console;
pub mod control;
pub mod frontend;
pub mod grant;
pub mod netfront;
pub mod ring;
pub mod xenstore;
