//! The in-memory index: for every live key, where its newest record is in the log.
//!
//! Only keys and locations are kept in memory; values stay on the disk and a read fetches them. The index is
//! rebuilt by replaying the log at open, and changed only after the records that change it are durable.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Where a live key's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Log position of the key's newest record (a PUT).
    pub pos: u64,
    /// That record's sequence number.
    pub seq: u64,
    /// Length of the value.
    pub value_len: u32,
}

/// Live keys in byte order, with their locations.
#[derive(Debug, Default)]
pub(crate) struct Index {
    map: BTreeMap<Vec<u8>, Entry>,
    /// Bytes of all live keys and values.
    live_bytes: u64,
}

impl Index {
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    /// Records that `key` now has the value at `entry`.
    pub fn put(&mut self, key: &[u8], entry: Entry) {
        self.live_bytes += key.len() as u64 + u64::from(entry.value_len);
        if let Some(old) = self.map.insert(key.to_vec(), entry) {
            self.live_bytes -= key.len() as u64 + u64::from(old.value_len);
        }
    }

    /// Records that `key` is gone. Returns whether it was live.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some(old) => {
                self.live_bytes -= key.len() as u64 + u64::from(old.value_len);
                true
            }
            None => false,
        }
    }

    /// Whether the record at log position `pos` holds `key`'s live value.
    pub fn is_live(&self, key: &[u8], pos: u64) -> bool {
        self.map.get(key).is_some_and(|e| e.pos == pos)
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.map.keys().map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_live_bytes_through_overwrites_and_removals() {
        let mut index = Index::default();
        index.put(b"ab", Entry { pos: 0, seq: 1, value_len: 10 });
        index.put(b"ab", Entry { pos: 512, seq: 2, value_len: 3 });
        index.put(b"c", Entry { pos: 1024, seq: 3, value_len: 0 });
        assert_eq!((index.len(), index.live_bytes()), (2, 6));
        assert!(index.is_live(b"ab", 512) && !index.is_live(b"ab", 0));
        assert!(index.remove(b"ab") && !index.remove(b"ab"));
        assert_eq!((index.len(), index.live_bytes()), (1, 1));
        assert_eq!(index.keys().collect::<Vec<_>>(), [b"c"]);
    }
}
