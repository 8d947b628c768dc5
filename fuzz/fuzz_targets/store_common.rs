//! What the store's fuzz targets share: operations decoded from the input, run on a store and on a model, and
//! crash choices drawn from the input.

#![allow(dead_code)] // Each target uses its own part of this.

use std::collections::BTreeMap;

use libfuzzer_sys::arbitrary::Unstructured;
pub use sirocco_store::fake::contents;
use sirocco_store::fake::{block_on, Choices, MemDisk};
use sirocco_store::{Batch, Error, Store};

/// Keys and values, as the store holds them or as a model says it should.
pub type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

/// The largest value the targets format with: with a 255-byte key, a record of exactly 512 bytes, so that a
/// batch fills the batch limit of a 512-byte-sector store exactly.
pub const MAX_VALUE_LEN: u32 = 205;

/// One thing a workload does.
#[derive(Clone, Debug)]
pub enum Op {
    /// Puts (`Some`) and deletes (`None`), in order, as one batch (one of them: a put or a delete).
    Write(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Compact,
}

impl Op {
    /// Decodes one operation: mostly single puts, then deletes, batches of up to four changes, compactions. Keys
    /// are one of seven one-byte keys or a 255-byte one; values up to [`MAX_VALUE_LEN`] of one repeated byte.
    pub fn decode(u: &mut Unstructured) -> Op {
        let key = |u: &mut Unstructured| match u.int_in_range(0..=7u8).unwrap_or(0) {
            7 => vec![b'K'; 255],
            k => vec![b'a' + k],
        };
        let value = |u: &mut Unstructured| {
            let len = u.int_in_range(0..=MAX_VALUE_LEN as usize).unwrap_or(0);
            vec![u.arbitrary::<u8>().unwrap_or(0); len]
        };
        match u.int_in_range(0..=5u8).unwrap_or(0) {
            0..=2 => Op::Write(vec![(key(u), Some(value(u)))]),
            3 => Op::Write(vec![(key(u), None)]),
            4 => Op::Write(
                (0..u.int_in_range(1..=4u8).unwrap_or(1))
                    .map(|_| (key(u), if u.ratio(3, 4).unwrap_or(true) { Some(value(u)) } else { None }))
                    .collect(),
            ),
            _ => Op::Compact,
        }
    }

    /// Runs it on the store.
    pub fn run(&self, store: &mut Store<&MemDisk>) -> Result<(), Error> {
        match self {
            Op::Write(changes) => {
                let mut batch = Batch::new();
                for (k, v) in changes {
                    match v {
                        Some(v) => batch.put(k, v),
                        None => batch.delete(k),
                    };
                }
                block_on(store.write_batch(&batch))
            }
            Op::Compact => block_on(store.compact()),
        }
    }

    /// Applies it to a model of the contents.
    pub fn apply(&self, model: &mut Contents) {
        if let Op::Write(changes) = self {
            for (k, v) in changes {
                match v {
                    Some(v) => drop(model.insert(k.clone(), v.clone())),
                    None => drop(model.remove(k)),
                }
            }
        }
    }
}

/// Crash choices drawn from the fuzzer's input.
pub struct InputChoices<'a, 'b>(pub &'a mut Unstructured<'b>);

impl Choices for InputChoices<'_, '_> {
    fn below(&mut self, n: u64) -> u64 {
        self.0.int_in_range(0..=n - 1).unwrap_or(0)
    }
}
