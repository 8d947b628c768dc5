//! Sirocco's Xen device protocol logic, free of `unsafe`: each driver is written against a small trait for the
//! shared memory it uses, so host tests run it on heap memory against a fake of the other end.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod console;
