//! What the tests share: the crate's fake disk and contents() (feature `fake`), and a seeded PRNG to crash the
//! disk with.
#![allow(dead_code)] // Each test file uses its own part of this.

use sirocco_store::fake::Choices;
#[allow(unused_imports)] // Likewise.
pub use sirocco_store::fake::{block_on, contents, Crash, MemDisk, CRASHES};

/// Xorshift64*: small, seeded, good enough to pick crash points and data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

impl Choices for Rng {
    fn below(&mut self, n: u64) -> u64 {
        Rng::below(self, n)
    }
}
