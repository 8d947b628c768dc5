//! What an application asks of a disk before it is connected: which vbd, and the limits its transport is
//! negotiated under ([`Limits`]). [`DiskConfig`] is a plain struct with a [`Default`] (the first vbd, 1 MiB
//! requests, up to a 16-page ring), built in code or read from the guest command line ([`DiskConfig::from_cmdline`],
//! `blk-segments=N`), which is one source of it among others. [`vbd_id`] turns the name an xl config gives a disk
//! (`xvdb`) into the id its frontend directory carries.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;

use sirocco_boot_logic::cmdline::Cmdline;

use super::config::{Limits, DEFAULT_MAX_INDIRECT_SEGMENTS, MAX_RING_PAGE_ORDER};
use super::wire::BLKIF_MAX_SEGMENTS_PER_REQUEST;

/// The fewest segments per request a disk may be limited to: a direct request's 11 (44 KiB).
pub const MIN_SEGMENTS: u32 = BLKIF_MAX_SEGMENTS_PER_REQUEST as u32;

/// How to connect a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Which vbd: its device id (`device/vbd/<id>`: 51712 is xvda, 51728 xvdb; [`vbd_id`] turns a name into it),
    /// or `None` for the first.
    pub vbd: Option<u32>,
    /// The most segments (4 KiB pages) per request, from [`MIN_SEGMENTS`] (direct requests only, 44 KiB) to
    /// [`DEFAULT_MAX_INDIRECT_SEGMENTS`] (1 MiB, the default): `blk-segments=` on the command line. Smaller
    /// requests mean more of them in flight in the same data pages. The backend may offer fewer.
    pub max_segments: u32,
    /// The largest ring, as a power of two of pages, up to [`MAX_RING_PAGE_ORDER`] (16 pages, the default). The
    /// backend may offer less.
    pub max_ring_page_order: u32,
}

impl Default for DiskConfig {
    /// The first vbd, the largest requests and ring we use.
    fn default() -> Self {
        let limits = Limits::default();
        DiskConfig {
            vbd: None,
            max_segments: limits.max_indirect_segments,
            max_ring_page_order: limits.max_ring_page_order,
        }
    }
}

/// A disk setting that cannot be used: `key=value: expected ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskConfigError {
    /// The setting: its command-line key (`blk-segments`), or the field's name for one the command line does not
    /// set (`max_ring_page_order`).
    pub key: &'static str,
    /// The value, as given.
    pub value: String,
    /// What it should be.
    pub expected: String,
}

impl fmt::Display for DiskConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}: expected {}", self.key, self.value, self.expected)
    }
}

impl core::error::Error for DiskConfigError {}

impl DiskConfig {
    /// Reads `blk-segments=` through `lookup` (a key to its value, e.g. `|k| cmdline.get(k)`); the vbd is the
    /// first, the ring the default. A value out of range or not a number is an error naming the key, never
    /// silently clamped.
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Result<DiskConfig, DiskConfigError> {
        let mut config = DiskConfig::default();
        if let Some(v) = lookup("blk-segments") {
            config.max_segments = match v.parse() {
                Ok(n) if SEGMENTS.contains(&n) => n,
                _ => return Err(segments_error(v)),
            };
        }
        Ok(config)
    }

    /// The command line's settings for disks ([`DiskConfig::from_lookup`]).
    pub fn from_cmdline(cmdline: &Cmdline<'_>) -> Result<DiskConfig, DiskConfigError> {
        DiskConfig::from_lookup(|key| cmdline.get(key))
    }

    /// Checks a configuration built in code against the rules the command line's values are held to.
    pub fn check(&self) -> Result<(), DiskConfigError> {
        if !SEGMENTS.contains(&self.max_segments) {
            return Err(segments_error(&self.max_segments.to_string()));
        }
        if self.max_ring_page_order > MAX_RING_PAGE_ORDER {
            return Err(DiskConfigError {
                key: "max_ring_page_order",
                value: self.max_ring_page_order.to_string(),
                expected: format!("0 to {MAX_RING_PAGE_ORDER} (a ring of 1 to {} pages)", 1 << MAX_RING_PAGE_ORDER),
            });
        }
        Ok(())
    }

    /// What the transport is negotiated under ([`Transport::negotiate`](super::Transport::negotiate)).
    pub fn limits(&self) -> Limits {
        Limits { max_ring_page_order: self.max_ring_page_order, max_indirect_segments: self.max_segments }
    }
}

/// The segments per request a disk may be limited to.
const SEGMENTS: core::ops::RangeInclusive<u32> = MIN_SEGMENTS..=DEFAULT_MAX_INDIRECT_SEGMENTS;

fn segments_error(value: &str) -> DiskConfigError {
    DiskConfigError {
        key: "blk-segments",
        value: value.into(),
        expected: format!("a number of pages from {MIN_SEGMENTS} to {DEFAULT_MAX_INDIRECT_SEGMENTS}"),
    }
}

/// The vbd id of a disk named as an xl config's `vdev=` names it (Xen's `docs/misc/vbd-interface.txt`): `xvda` is
/// 51712, `xvdb` 51728, `xvdq` (the 17th) 268439552, `xvda1` 51713, `sda` 2048, `hda` 768; a plain number is the
/// id itself. `None` for a name outside those schemes.
pub fn vbd_id(name: &str) -> Option<u32> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse().ok();
    }
    let (scheme, rest) = ["xvd", "sd", "hd"].iter().find_map(|p| Some((*p, name.strip_prefix(p)?)))?;
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    let (letters, partition) = rest.split_at(letters);
    // Disks are lettered a..z, then aa..zz and so on (bijective base 26), as Linux names them.
    let disk = letters.bytes().try_fold(0u32, |n, b| n.checked_mul(26)?.checked_add(u32::from(b - b'a') + 1))?;
    let disk = disk.checked_sub(1)?;
    let partition: u32 = match partition {
        "" => 0,
        p if p.starts_with('0') || !p.bytes().all(|b| b.is_ascii_digit()) => return None,
        p => p.parse().ok()?,
    };
    match scheme {
        "xvd" if disk < 16 && partition < 16 => Some(202 << 8 | disk << 4 | partition),
        "xvd" if disk < 1 << 20 && partition < 256 => Some(1 << 28 | disk << 8 | partition),
        "sd" if disk < 16 && partition < 16 => Some(8 << 8 | disk << 4 | partition),
        "hd" if disk < 2 && partition < 64 => Some(3 << 8 | disk << 6 | partition),
        "hd" if disk < 4 && partition < 64 => Some(22 << 8 | (disk - 2) << 6 | partition),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_cmdline(line: &str) -> Result<DiskConfig, DiskConfigError> {
        DiskConfig::from_cmdline(&Cmdline::parse(line).unwrap())
    }

    #[test]
    fn command_line_equals_the_configuration_built_in_code() {
        assert_eq!(from_cmdline("").unwrap(), DiskConfig::default());
        assert_eq!(
            from_cmdline("log=info blk-segments=64").unwrap(),
            DiskConfig { max_segments: 64, ..DiskConfig::default() }
        );
        assert_eq!(
            DiskConfig { max_segments: 64, ..DiskConfig::default() }.limits(),
            Limits { max_indirect_segments: 64, ..Limits::default() }
        );
        assert_eq!(DiskConfig::default().limits(), Limits::default());
        // The same reading as the driver's own `Limits::from_lookup`.
        let line = Cmdline::parse("blk-segments=11").unwrap();
        assert_eq!(DiskConfig::from_cmdline(&line).unwrap().limits(), Limits::from_lookup(|k| line.get(k)).unwrap());
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_key() {
        let expected = "expected a number of pages from 11 to 256";
        assert_eq!(from_cmdline("blk-segments=10").unwrap_err().to_string(), format!("blk-segments=10: {expected}"));
        assert_eq!(from_cmdline("blk-segments=1M").unwrap_err().to_string(), format!("blk-segments=1M: {expected}"));
        assert_eq!(from_cmdline("blk-segments=").unwrap_err().key, "blk-segments");
        // Built in code: held to the same rules.
        let e = DiskConfig { max_segments: 512, ..DiskConfig::default() }.check().unwrap_err();
        assert_eq!(e.to_string(), format!("blk-segments=512: {expected}"));
        let e = DiskConfig { max_ring_page_order: 5, ..DiskConfig::default() }.check().unwrap_err();
        assert_eq!(e.to_string(), "max_ring_page_order=5: expected 0 to 4 (a ring of 1 to 16 pages)");
        DiskConfig { vbd: Some(51728), max_segments: 11, max_ring_page_order: 0 }.check().unwrap();
    }

    #[test]
    fn vbd_names_follow_xens_numbering() {
        assert_eq!(vbd_id("xvda"), Some(51712));
        assert_eq!(vbd_id("xvdb"), Some(51728));
        assert_eq!(vbd_id("xvda1"), Some(51713));
        assert_eq!(vbd_id("xvdp15"), Some(202 << 8 | 15 << 4 | 15));
        assert_eq!(vbd_id("xvdq"), Some(1 << 28 | 16 << 8));
        assert_eq!(vbd_id("xvda16"), Some(1 << 28 | 16));
        assert_eq!(vbd_id("xvdaa"), Some(1 << 28 | 26 << 8));
        assert_eq!(vbd_id("sda"), Some(2048));
        assert_eq!(vbd_id("sdb3"), Some(8 << 8 | 1 << 4 | 3));
        assert_eq!(vbd_id("hda"), Some(768));
        assert_eq!(vbd_id("hdc"), Some(22 << 8));
        assert_eq!(vbd_id("51712"), Some(51712));
        for bad in ["", "xvd", "xvdA", "xvda01", "xvda1x", "sdq", "hde", "nvme0n1", "xvda256", "99999999999"] {
            assert_eq!(vbd_id(bad), None, "{bad}");
        }
    }
}
