//! What the tests share: the crate's fake disk (feature `fake`), a seeded PRNG to crash it with, and the store's
//! contents as a map.
#![allow(dead_code)] // Each test file uses its own part of this.

use std::collections::BTreeMap;

use sirocco_store::fake::Choices;
#[allow(unused_imports)] // Likewise.
pub use sirocco_store::fake::{block_on, Crash, MemDisk, CRASHES};
use sirocco_store::{Disk, Store};

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

/// Everything the store holds, read through its interface.
pub fn contents<D: Disk>(store: &Store<D>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let keys: Vec<Vec<u8>> = store.keys().map(<[u8]>::to_vec).collect();
    keys.into_iter()
        .map(|k| {
            let v = block_on(store.get(&k)).unwrap_or_else(|e| panic!("get {k:?}: {e}")).expect("listed key");
            (k, v)
        })
        .collect()
}
