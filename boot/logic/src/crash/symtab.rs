//! The symbol table the build embeds in each image (`sirocco build` makes it with `sirocco_imgcheck::symtab` from
//! the linked image and puts it in its `.sirocco_syms` section), so a crash report names the function of every address in the
//! guest itself. Line numbers need the debug info, which stays on the host (`tools/symbolize`).
//!
//! Format (little-endian): a 24-byte header (`SIRSYMS1`, the entry count, the length of the names, the end of the
//! last function, 4 bytes of zero), then per function its start address (u32: images live below 4 GiB) and the
//! offset of its name, ascending by address, then the names (UTF-8, back to back; each ends where the next
//! begins). Names are shortened when the table is built ([`shorten`]): generic arguments go, the path stays.
//! Parsing checks every size, offset and order, so a damaged table is refused and the report prints raw addresses.

use alloc::string::String;
use alloc::vec::Vec;

/// The table's first eight bytes.
pub const MAGIC: &[u8; 8] = b"SIRSYMS1";
const HEADER: usize = 24;
/// Bytes of the header: what [`declared_len`] needs to see.
pub const HEADER_LEN: usize = HEADER;
const ENTRY: usize = 8;
/// Names are cut to this many bytes (at a character boundary).
pub const MAX_NAME: usize = 120;

/// Why a table cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymtabError {
    /// No `SIRSYMS1` at the start (an image built without the table has a one-byte placeholder).
    NoTable,
    /// The header's sizes run past the bytes there are.
    Truncated,
    /// Addresses not ascending, a name offset out of order or past the names, or the end before the last start.
    Inconsistent,
}

/// A parsed table over borrowed bytes.
#[derive(Clone, Copy, Debug)]
pub struct Symtab<'a> {
    entries: &'a [u8],
    names: &'a [u8],
    count: usize,
    end: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The table's length as its header declares it (header, entries and names), from the first [`HEADER_LEN`] bytes,
/// or `None` without the magic or when the sizes overflow. [`Symtab::parse`] checks the rest.
pub fn declared_len(header: &[u8]) -> Option<usize> {
    if header.len() < HEADER || &header[..8] != MAGIC {
        return None;
    }
    let (count, names_len) = (u32_at(header, 8) as usize, u32_at(header, 12) as usize);
    count.checked_mul(ENTRY)?.checked_add(HEADER)?.checked_add(names_len)
}

impl<'a> Symtab<'a> {
    /// Checks and wraps `bytes` (which may run past the table: it is read from a section padded to a page).
    pub fn parse(bytes: &'a [u8]) -> Result<Symtab<'a>, SymtabError> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(SymtabError::NoTable);
        }
        let names_end = declared_len(bytes).ok_or(SymtabError::Truncated)?;
        if names_end > bytes.len() {
            return Err(SymtabError::Truncated);
        }
        let (count, names_len, end) = (u32_at(bytes, 8) as usize, u32_at(bytes, 12) as usize, u32_at(bytes, 16));
        let entries_end = HEADER + count * ENTRY;
        let table = Symtab { entries: &bytes[HEADER..entries_end], names: &bytes[entries_end..names_end], count, end };
        let mut last = (0u32, 0u32);
        for i in 0..count {
            let (addr, off) = table.entry(i);
            if (i > 0 && addr <= last.0) || off < last.1 || off as usize > names_len {
                return Err(SymtabError::Inconsistent);
            }
            last = (addr, off);
        }
        if count > 0 && end <= last.0 {
            return Err(SymtabError::Inconsistent);
        }
        Ok(table)
    }

    fn entry(&self, i: usize) -> (u32, u32) {
        (u32_at(self.entries, i * ENTRY), u32_at(self.entries, i * ENTRY + 4))
    }

    /// Functions in the table.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The function `addr` lies in and how far into it, or `None` outside every function. A name that is not
    /// UTF-8 reads as "?".
    pub fn lookup(&self, addr: u64) -> Option<(&'a str, u64)> {
        if self.count == 0 || addr >= u64::from(self.end) {
            return None;
        }
        let addr32 = addr as u32;
        // The last entry starting at or below addr.
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).0 <= addr32 {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.checked_sub(1)?;
        let (start, off) = self.entry(i);
        let name_end = if i + 1 < self.count { self.entry(i + 1).1 } else { self.names.len() as u32 };
        let name = self.names.get(off as usize..name_end as usize).and_then(|n| core::str::from_utf8(n).ok());
        Some((name.unwrap_or("?"), addr - u64::from(start)))
    }
}

/// Builds a table from `(address, name)` pairs in any order and the end of the last function. Names are shortened
/// ([`shorten`]); of several names at one address the first is kept; addresses at or past `end` are dropped.
pub fn build(mut syms: Vec<(u32, String)>, end: u32) -> Vec<u8> {
    syms.sort_by_key(|s| s.0);
    syms.dedup_by_key(|s| s.0);
    syms.retain(|s| s.0 < end);
    let mut names = Vec::new();
    let mut entries = Vec::with_capacity(syms.len() * ENTRY);
    for (addr, name) in &syms {
        entries.extend_from_slice(&addr.to_le_bytes());
        entries.extend_from_slice(&(names.len() as u32).to_le_bytes());
        names.extend_from_slice(shorten(name).as_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + entries.len() + names.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(syms.len() as u32).to_le_bytes());
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    out.extend_from_slice(&end.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&entries);
    out.extend_from_slice(&names);
    out
}

/// A demangled Rust name without its generic arguments: `<smoltcp::iface::Interface>::poll::<D>` becomes
/// `smoltcp::iface::Interface::poll`; `<T as Trait>::f` keeps its angle brackets (without T's arguments). At most
/// [`MAX_NAME`] bytes.
pub fn shorten(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len().min(MAX_NAME));
    let mut i = 0;
    // Inside the leading `<...>` of an impl path (depth 1): kept, but nested arguments go.
    let mut in_impl = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'<' && i == 0 {
            in_impl = true;
            out.push('<');
            i += 1;
            continue;
        }
        if c == b'<' {
            // Skip the whole group, and a `::` that introduced it (turbofish).
            if out.ends_with("::") {
                out.truncate(out.len() - 2);
            }
            let mut depth = 0usize;
            while i < bytes.len() {
                match bytes[i] {
                    b'<' => depth += 1,
                    b'>' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == b'>' && in_impl {
            in_impl = false;
            out.push('>');
            i += 1;
            continue;
        }
        let ch = name[i..].chars().next().expect("i is at a char boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
    // `<Type>::f` is plainer as `Type::f`; `<T as Trait>::f` stays.
    if out.starts_with('<') {
        if let Some(close) = out.find(">::") {
            if !out[..close].contains(" as ") {
                out = [&out[1..close], &out[close + 1..]].concat();
            }
        }
    }
    if out.len() > MAX_NAME {
        let mut cut = MAX_NAME;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// The text symbols of `nm -C -S --defined-only` output (`ADDR [SIZE] TYPE NAME` lines; types `t`/`T`), and the
/// end of the last one (its address plus size). Lines of other types, or with an address past 32 bits, are skipped.
pub fn from_nm(text: &str) -> (Vec<(u32, String)>, u32) {
    let mut syms = Vec::new();
    let mut end = 0u64;
    for line in text.lines() {
        let Some((addr, rest)) = line.split_once(' ') else { continue };
        let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
        // With a size: ADDR SIZE TYPE NAME; without: ADDR TYPE NAME (the type is one letter).
        let (size, rest) = match rest.split_once(' ') {
            Some((size, rest)) if size.len() > 1 => match u64::from_str_radix(size, 16) {
                Ok(size) => (size, rest),
                Err(_) => continue,
            },
            _ => (0, rest),
        };
        let Some((ty, name)) = rest.split_once(' ') else { continue };
        if !matches!(ty, "t" | "T") || name.is_empty() || addr > u64::from(u32::MAX) {
            continue;
        }
        end = end.max(addr + size.max(1));
        syms.push((addr as u32, String::from(name)));
    }
    (syms, end.min(u64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn table() -> Vec<u8> {
        build(
            vec![
                (0x10_2000, "app::main".to_string()),
                (0x10_1000, "sirocco::start".to_string()),
                (0x10_3000, "<app::Widget>::poke::<u8>".to_string()),
                (0x10_3000, "an_alias".to_string()),
            ],
            0x10_4000,
        )
    }

    #[test]
    fn addresses_map_to_their_function_and_offset() {
        let bytes = table();
        let t = Symtab::parse(&bytes).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(0x10_1000), Some(("sirocco::start", 0)));
        assert_eq!(t.lookup(0x10_1fff), Some(("sirocco::start", 0xfff)));
        assert_eq!(t.lookup(0x10_2010), Some(("app::main", 0x10)));
        assert_eq!(t.lookup(0x10_3abc), Some(("app::Widget::poke", 0xabc)));
        assert_eq!(t.lookup(0x10_0fff), None, "before the first function");
        assert_eq!(t.lookup(0x10_4000), None, "past the end");
        assert_eq!(t.lookup(0x1_0010_2000), None, "past 32 bits");
    }

    #[test]
    fn the_declared_length_is_the_tables_own() {
        let bytes = table();
        assert_eq!(declared_len(&bytes[..HEADER_LEN]), Some(bytes.len()));
        assert_eq!(declared_len(&[0; HEADER_LEN]), None, "the placeholder of a build without a table");
        assert_eq!(declared_len(&bytes[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn a_table_read_from_a_padded_section_parses() {
        let mut bytes = table();
        bytes.resize(4096, 0);
        assert_eq!(Symtab::parse(&bytes).unwrap().lookup(0x10_2000), Some(("app::main", 0)));
    }

    #[test]
    fn damaged_tables_are_refused() {
        let good = table();
        assert_eq!(Symtab::parse(&[0]).unwrap_err(), SymtabError::NoTable, "the placeholder of a build without one");
        assert_eq!(Symtab::parse(&good[..good.len() - 1]).unwrap_err(), SymtabError::Truncated);
        let mut huge = good.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Symtab::parse(&huge).unwrap_err(), SymtabError::Truncated);
        let mut unsorted = good.clone();
        unsorted[HEADER..HEADER + 4].copy_from_slice(&0x10_2500u32.to_le_bytes());
        assert_eq!(Symtab::parse(&unsorted).unwrap_err(), SymtabError::Inconsistent);
        let mut bad_name = good.clone();
        bad_name[HEADER + ENTRY + 4..HEADER + ENTRY + 8].copy_from_slice(&9999u32.to_le_bytes());
        assert_eq!(Symtab::parse(&bad_name).unwrap_err(), SymtabError::Inconsistent);
        let mut early_end = good.clone();
        early_end[16..20].copy_from_slice(&0x10_3000u32.to_le_bytes());
        assert_eq!(Symtab::parse(&early_end).unwrap_err(), SymtabError::Inconsistent);
        let mut not_utf8 = good;
        let at = not_utf8.len() - 1;
        not_utf8[at] = 0xff;
        assert_eq!(Symtab::parse(&not_utf8).unwrap().lookup(0x10_3000), Some(("?", 0)));
    }

    #[test]
    fn names_lose_their_generic_arguments() {
        assert_eq!(
            shorten("<smoltcp::iface::interface::InterfaceInner>::dispatch_ip::<sirocco_net::device::TxToken<x::Vif>>"),
            "smoltcp::iface::interface::InterfaceInner::dispatch_ip"
        );
        assert_eq!(
            shorten("<alloc::collections::btree::node::BalancingContext<alloc::string::String, u8>>::do_merge::<F, R>"),
            "alloc::collections::btree::node::BalancingContext::do_merge"
        );
        assert_eq!(shorten("<str>::trim_matches::<[char; 2]>"), "str::trim_matches");
        assert_eq!(shorten("<u32 as core::fmt::Display>::fmt"), "<u32 as core::fmt::Display>::fmt");
        assert_eq!(
            shorten("<alloc::vec::Vec<u8> as core::ops::Drop>::drop"),
            "<alloc::vec::Vec as core::ops::Drop>::drop"
        );
        assert_eq!(shorten("crash::recurse"), "crash::recurse");
        assert_eq!(shorten("app::main::{closure#0}"), "app::main::{closure#0}");
        assert_eq!(shorten(&"x".repeat(300)).len(), MAX_NAME);
        assert_eq!(shorten(&"é".repeat(100)).len(), MAX_NAME, "cut at a character boundary");
    }

    #[test]
    fn nm_output_gives_text_symbols_and_their_end() {
        let nm = "0000000000101000 0000000000001000 T HYPERCALL_PAGE\n\
                  0000000000102000 0000000000000040 t crash::recurse\n\
                  0000000000102040 0000000000000010 t <str>::trim_matches::<[char; 2]>\n\
                  0000000000180000 0000000000000008 D SOME_DATA\n\
                  0000000000102100 T _start\n\
                  garbage line\n";
        let (syms, end) = from_nm(nm);
        let names: Vec<&str> = syms.iter().map(|s| s.1.as_str()).collect();
        assert_eq!(names, ["HYPERCALL_PAGE", "crash::recurse", "<str>::trim_matches::<[char; 2]>", "_start"]);
        assert_eq!(syms[1].0, 0x10_2000);
        assert_eq!(end, 0x10_2101);
        let bytes = build(syms, end);
        let t = Symtab::parse(&bytes).unwrap();
        assert_eq!(t.lookup(0x10_2044), Some(("str::trim_matches", 4)));
        assert_eq!(t.lookup(0x10_2100), Some(("_start", 0)));
    }
}
