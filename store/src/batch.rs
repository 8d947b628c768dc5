//! [`Batch`]: several puts and deletes made durable by one write and one flush (group commit).

use alloc::vec::Vec;

use crate::record::HEADER_LEN;

/// One change in a [`Batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

impl Op {
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key } => key,
        }
    }
}

/// Puts and deletes applied in order and made durable together: [`Store::write_batch`](crate::Store::write_batch)
/// writes them with one disk write and one flush, and after a crash either all of them are there or none.
///
/// Flushes are slow, so a server that has several writes waiting should put them into one batch and acknowledge
/// them all when it returns. The batch's log size ([`Batch::log_bytes`]) must stay within the store's
/// [`Stats::batch_limit`](crate::Stats::batch_limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    log_bytes: u64,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a put of `value` under `key`. Keys and values are checked when the batch is written.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Batch {
        self.log_bytes += (HEADER_LEN + key.len() + value.len()) as u64;
        self.ops.push(Op::Put { key: key.to_vec(), value: value.to_vec() });
        self
    }

    /// Adds a delete of `key`. Deleting a key that is absent at that point of the batch writes nothing.
    pub fn delete(&mut self, key: &[u8]) -> &mut Batch {
        self.log_bytes += (HEADER_LEN + key.len()) as u64;
        self.ops.push(Op::Delete { key: key.to_vec() });
        self
    }

    /// Number of puts and deletes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Log bytes the batch takes at most (record headers, keys and values, before sector padding).
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Empties the batch for reuse.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.log_bytes = 0;
    }
}
