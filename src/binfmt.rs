//! The pieces of musync's binary files (the manifest's snapshot, the push state): LEB128
//! varints, lengths that cannot exceed what is left, texts stored as the prefix they share with
//! the one before, stamps, hashes as their 32 bytes, and a checksum against damage. Each file's
//! layout is its own module's; this reads and writes no file.

use crate::digest::Digest;
use crate::fsutil::Stamp;

/// A checksum against damage, not against an adversary: FNV-1a over 8-byte words with a
/// rotation, so that a change anywhere, high bits included, reaches every later step. Any change
/// within one word is always caught; a few ms for 25 MB.
pub fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let step = |h: u64, w: u64| (h ^ w).wrapping_mul(PRIME).rotate_left(23);
    let mut words = bytes.chunks_exact(8);
    let mut h = (&mut words).fold(0xcbf2_9ce4_8422_2325, |h, w| {
        step(h, u64::from_le_bytes(w.try_into().expect("8 bytes")))
    });
    let mut last = [0; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    h = step(h, u64::from_le_bytes(last));
    step(h, bytes.len() as u64)
}

/// A file's bytes: its `magic`, its format `version` (u32 little-endian), the checksum of its
/// body (u64 little-endian), then the body.
pub fn frame(magic: &[u8], version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(magic.len() + 12 + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&checksum(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Why `unframe` found no body.
#[derive(Debug, PartialEq, Eq)]
pub enum Unframed {
    /// It does not start with the magic.
    NotOurs,
    CutShort,
    /// Another format than the one asked for (the checksum is not looked at).
    Format(u32),
    Checksum,
}

/// The body of a `frame` of format `version`.
pub fn unframe<'a>(bytes: &'a [u8], magic: &[u8], version: u32) -> Result<&'a [u8], Unframed> {
    if !bytes.starts_with(magic) {
        return Err(Unframed::NotOurs);
    }
    let header = magic.len() + 12;
    let body = bytes.get(header..).ok_or(Unframed::CutShort)?;
    let word = |at: usize, n: usize| &bytes[magic.len() + at..magic.len() + at + n];
    let found = u32::from_le_bytes(word(0, 4).try_into().expect("4 bytes"));
    if found != version {
        return Err(Unframed::Format(found));
    }
    let sum = u64::from_le_bytes(word(4, 8).try_into().expect("8 bytes"));
    if sum != checksum(body) {
        return Err(Unframed::Checksum);
    }
    Ok(body)
}

/// Gives `bytes` (a `frame` of `magic`) the checksum of its body, so that a fuzzer's changes
/// reach the decoder instead of all failing the checksum.
pub fn seal(bytes: &mut [u8], magic: &[u8]) {
    let header = magic.len() + 12;
    if bytes.len() >= header && bytes.starts_with(magic) {
        let sum = checksum(&bytes[header..]).to_le_bytes();
        bytes[magic.len() + 4..header].copy_from_slice(&sum);
    }
}

pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    pub fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    /// `text` as the length of the prefix it shares with `before`, then the rest.
    pub fn after(&mut self, before: &str, text: &str) {
        let shared = before
            .bytes()
            .zip(text.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        self.varint(shared as u64);
        self.bytes(&text.as_bytes()[shared..]);
    }

    pub fn stamp(&mut self, stamp: Stamp) {
        self.varint(stamp.size);
        let t = stamp.mtime_ns;
        self.varint(((t << 1) ^ (t >> 63)) as u64);
    }

    pub fn hash(&mut self, digest: &Digest) {
        match digest.as_sha256() {
            Some(bytes) => {
                self.byte(0);
                self.0.extend_from_slice(bytes);
            }
            None => {
                self.byte(1);
                self.bytes(digest.to_string().as_bytes());
            }
        }
    }
    /// An optional text: a tag byte (0 none, 1 some), then the text.
    pub fn optional(&mut self, text: Option<&str>) {
        match text {
            None => self.byte(0),
            Some(text) => {
                self.byte(1);
                self.bytes(text.as_bytes());
            }
        }
    }
}

pub struct Reader<'a> {
    pub bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.bytes.len() {
            return Err("cut short".into());
        }
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    pub fn byte(&mut self) -> Result<u8, String> {
        self.take(1).map(|b| b[0])
    }

    pub fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a number too large".into())
    }

    /// A length or count: never more than the bytes left, so a damaged one cannot make us
    /// allocate much.
    pub fn count(&mut self) -> Result<usize, String> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len())
            .ok_or_else(|| format!("a length of {n} with {} bytes left", self.bytes.len()))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.count()?;
        self.take(n)
    }

    pub fn string(&mut self) -> Result<String, String> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("text that is not UTF-8: {e}"))
    }

    /// The prefix of `before` it shares, then the rest.
    pub fn after(&mut self, before: &str) -> Result<String, String> {
        let shared = self.varint()?;
        let prefix = usize::try_from(shared)
            .ok()
            .and_then(|n| before.as_bytes().get(..n))
            .ok_or_else(|| format!("a prefix of {shared} bytes of {before:?}"))?;
        let rest = self.bytes()?;
        let text = [prefix, rest].concat();
        String::from_utf8(text).map_err(|e| format!("a path that is not UTF-8: {e}"))
    }

    pub fn stamp(&mut self) -> Result<Stamp, String> {
        let size = self.varint()?;
        let z = self.varint()?;
        let mtime_ns = ((z >> 1) as i64) ^ -((z & 1) as i64);
        Ok(Stamp { size, mtime_ns })
    }

    pub fn hash(&mut self) -> Result<Digest, String> {
        match self.byte()? {
            0 => Ok(Digest::sha256(self.take(32)?.try_into().expect("32 bytes"))),
            1 => self.string().map(Digest::from),
            n => Err(format!("unknown hash tag {n}")),
        }
    }

    pub fn optional(&mut self) -> Result<Option<String>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            n => Err(format!("unknown tag {n}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for n in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut w = Writer(Vec::new());
            w.varint(n);
            assert_eq!(Reader { bytes: &w.0 }.varint(), Ok(n));
        }
        for mtime_ns in [0, -1, 1, i64::MIN, i64::MAX, 1_700_000_000_123_456_789] {
            let stamp = Stamp { size: 7, mtime_ns };
            let mut w = Writer(Vec::new());
            w.stamp(stamp);
            assert_eq!(Reader { bytes: &w.0 }.stamp(), Ok(stamp));
        }
        // Eleven bytes, or bits past the 64th, are damage, not a wrapped number.
        let long = [0xff; 10].iter().chain(&[1]).copied().collect::<Vec<_>>();
        assert!(Reader { bytes: &long }.varint().is_err());
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(Reader { bytes: &over }.varint().is_err());
    }

    #[test]
    fn hashes_are_stored_as_bytes_and_other_text_as_itself() {
        let hash = "0123456789abcdef".repeat(4);
        for (text, size) in [
            (hash.as_str(), 33),
            (
                "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                66,
            ),
            ("", 2),
            ("a", 3),
        ] {
            let mut w = Writer(Vec::new());
            w.hash(&Digest::from(text));
            assert_eq!(w.0.len(), size, "{text}");
            let read = Reader { bytes: &w.0 }.hash().map(|d| d.to_string());
            assert_eq!(read.as_deref(), Ok(text));
        }
    }
}
