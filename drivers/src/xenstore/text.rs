//! A short string stored inline, so error values can name a path or quote the peer and still be `Copy`.

use core::fmt;

/// Which end of the original text was cut off to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    None,
    /// The start was dropped (paths keep their informative tail).
    Start,
    /// The end was dropped.
    End,
}

/// Up to `N` bytes (`N <= 255`) of text, remembering whether it was truncated; [`fmt::Display`] marks a cut with
/// `...`. Error values use it for paths (keeping the tail, `.../backend/vif/7/0/state`) and for text the peer sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr<const N: usize> {
    buf: [u8; N],
    len: u8,
    cut: Cut,
}

impl<const N: usize> InlineStr<N> {
    const FITS_IN_U8: () = assert!(N <= 255, "InlineStr holds at most 255 bytes");

    /// The empty string.
    pub const fn empty() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS_IN_U8;
        InlineStr { buf: [0; N], len: 0, cut: Cut::None }
    }

    /// `text`, keeping its start if it is longer than `N` bytes.
    pub fn head(text: &str) -> Self {
        let mut end = text.len().min(N);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self::copy(&text[..end], if end < text.len() { Cut::End } else { Cut::None })
    }

    /// `text`, keeping its end if it is longer than `N` bytes.
    pub fn tail(text: &str) -> Self {
        let mut start = text.len().saturating_sub(N);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        Self::copy(&text[start..], if start > 0 { Cut::Start } else { Cut::None })
    }

    /// Bytes from the peer, which need not be UTF-8: each byte outside printable ASCII becomes `?`. Keeps the start.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut out = Self::empty();
        let kept = bytes.len().min(N);
        for (slot, &b) in out.buf.iter_mut().zip(&bytes[..kept]) {
            *slot = if (0x20..0x7f).contains(&b) { b } else { b'?' };
        }
        out.len = kept as u8;
        out.cut = if kept < bytes.len() { Cut::End } else { Cut::None };
        out
    }

    fn copy(text: &str, cut: Cut) -> Self {
        let mut out = Self::empty();
        out.buf[..text.len()].copy_from_slice(text.as_bytes());
        out.len = text.len() as u8;
        out.cut = cut;
        out
    }

    /// The kept text.
    pub fn as_str(&self) -> &str {
        // Always valid: built from a `&str` cut at char boundaries, or from printable ASCII.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("?")
    }

    /// True if the original text was longer than `N` bytes.
    pub fn is_truncated(&self) -> bool {
        self.cut != Cut::None
    }
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cut {
            Cut::None => f.write_str(self.as_str()),
            Cut::Start => write!(f, "...{}", self.as_str()),
            Cut::End => write!(f, "{}...", self.as_str()),
        }
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl<const N: usize> PartialEq<&str> for InlineStr<N> {
    fn eq(&self, other: &&str) -> bool {
        !self.is_truncated() && self.as_str() == *other
    }
}
