//! FLAC files symphonia mishandles, and plain words for the ones it refuses. Apart from the
//! ID3v1 trailer, all of this runs only after symphonia's probe has failed.
//!
//! - An ID3v1 tag glued to the end of a FLAC (old taggers did it): symphonia takes it for a
//!   damaged last frame. The source is shown to it without those 128 bytes.
//! - A stream with no audio frames at all (0 samples): symphonia wants a first frame. We read
//!   STREAMINFO ourselves and treat it as empty, or as truncated if STREAMINFO promised samples.
//! - Pre-1.1.4-era variable-blocksize FLAC (e.g. Flake 0.11) marks "variable" only by
//!   STREAMINFO's min ≠ max block size, and puts sample numbers in frame headers whose
//!   blocking-strategy bit still says "fixed"; symphonia rejects every frame. Showing it a
//!   STREAMINFO with min = max makes it accept them as fixed-blocksize: decoding is unaffected
//!   (every frame header carries its own block size), and each packet timestamp becomes
//!   `sample_number × max_block`, which the caller divides back. Only those two bytes differ,
//!   and only in what symphonia reads.
//! - Anything else it refuses gets a reason in words: which metadata block is corrupt, or what
//!   STREAMINFO claims that the first audio frame contradicts.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use anyhow::bail;
use symphonia::core::io::MediaSource;

const BLOCK_NAMES: [&str; 7] = [
    "STREAMINFO",
    "PADDING",
    "APPLICATION",
    "SEEKTABLE",
    "VORBIS_COMMENT",
    "CUESHEET",
    "PICTURE",
];

/// What we need from a FLAC file's header.
pub(super) struct FlacHeader {
    /// File offset of STREAMINFO's body.
    streaminfo_at: u64,
    pub(super) min_block: u16,
    pub(super) max_block: u16,
    pub(super) rate: u32,
    pub(super) channels: u16,
    bits: u8,
    /// 0 means "unknown" in FLAC.
    pub(super) total_frames: u64,
    /// Where the first audio frame would start: just past the last metadata block.
    pub(super) audio_start: u64,
}

/// Where "fLaC" starts in `file` (0, or after an ID3v2 tag), or `None` if it is not FLAC.
fn flac_start(file: &mut File) -> io::Result<Option<u64>> {
    let mut head = Vec::with_capacity(10);
    file.seek(SeekFrom::Start(0))?;
    file.take(10).read_to_end(&mut head)?;
    let start = if head.len() == 10 && &head[..3] == b"ID3" {
        // A (non-standard but common) ID3v2 tag ahead of "fLaC": skip its syncsafe size.
        let size = head[6..10]
            .iter()
            .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7f));
        let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
        10 + size + footer
    } else {
        0
    };
    let mut magic = [0u8; 4];
    file.seek(SeekFrom::Start(start))?;
    Ok((file.read_exact(&mut magic).is_ok() && &magic == b"fLaC").then_some(start))
}

/// How much of a `len`-byte file is audio stream: all of it, less an ID3v1 tag at the end of a
/// FLAC file.
pub(super) fn stream_len(file: &mut File, len: u64) -> io::Result<u64> {
    if len < 128 || flac_start(file)?.is_none() {
        return Ok(len);
    }
    let mut tag = [0u8; 3];
    file.seek(SeekFrom::Start(len - 128))?;
    file.read_exact(&mut tag)?;
    Ok(if &tag == b"TAG" { len - 128 } else { len })
}

impl FlacHeader {
    /// Parse the header of the first `len` bytes of `file`: `None` if it is not FLAC, an error
    /// saying what is wrong if it is FLAC with corrupt metadata.
    pub(super) fn read(file: &mut File, len: u64) -> anyhow::Result<Option<Self>> {
        let Some(start) = flac_start(file)? else {
            return Ok(None);
        };
        let mut header = FlacHeader {
            streaminfo_at: start + 8,
            min_block: 0,
            max_block: 0,
            rate: 0,
            channels: 0,
            bits: 0,
            total_frames: 0,
            audio_start: 0,
        };
        let mut pos = start + 4;
        for index in 0.. {
            let mut head = [0u8; 4];
            file.seek(SeekFrom::Start(pos))?;
            if file.read_exact(&mut head).is_err() {
                bail!("the file is truncated in its metadata (before the audio starts)");
            }
            let kind = head[0] & 0x7f;
            let size = u64::from(u32::from_be_bytes([0, head[1], head[2], head[3]]));
            let name = BLOCK_NAMES
                .get(usize::from(kind))
                .map_or_else(|| format!("type-{kind}"), ToString::to_string);
            if pos + 4 + size > len {
                bail!(
                    "the FLAC metadata is corrupt: its {name} block (number {}) claims {size} \
                     bytes, past the end of the file (or the file is truncated)",
                    index + 1
                );
            }
            // Only the blocks checked here are read; padding and the rest may be megabytes.
            let mut body = Vec::new();
            if matches!(kind, 0 | 4 | 6) {
                file.take(size).read_to_end(&mut body)?;
            }
            match (index, kind) {
                (0, 0) if size == 34 => header.set_streaminfo(&body),
                (0, 0) => bail!("the FLAC metadata is corrupt: STREAMINFO is {size} bytes, not 34"),
                (0, _) => bail!("the FLAC metadata is corrupt: it does not start with STREAMINFO"),
                (_, 0) => bail!(
                    "the FLAC metadata is corrupt: block number {} is a second STREAMINFO",
                    index + 1
                ),
                (_, 127) => bail!("the FLAC metadata is corrupt: a block has the invalid type 127"),
                (_, 4 | 6) if !lengths_fit(kind, &body) => bail!(
                    "the FLAC metadata is corrupt: a length inside its {name} block points past \
                     the block's end (rewrite the tags, e.g. with metaflac)"
                ),
                _ => {}
            }
            pos += 4 + size;
            if head[0] & 0x80 != 0 {
                break;
            }
        }
        header.audio_start = pos;
        Ok(Some(header))
    }

    fn set_streaminfo(&mut self, si: &[u8]) {
        let be = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        self.min_block = be(&si[0..2]) as u16;
        self.max_block = be(&si[2..4]) as u16;
        self.rate = (be(&si[10..13]) >> 4) as u32;
        self.channels = u16::from((si[12] >> 1) & 7) + 1;
        self.bits = ((be(&si[12..14]) >> 4) & 0x1f) as u8 + 1;
        self.total_frames = be(&si[13..18]) & 0xf_ffff_ffff;
    }

    /// Why the audio could not be read, if the first frame says: the file ends inside it, there
    /// is no frame where the audio starts, or the frame contradicts STREAMINFO.
    pub(super) fn explain(&self, file: &mut File, len: u64) -> io::Result<Option<String>> {
        let mut head = [0u8; 16];
        file.seek(SeekFrom::Start(self.audio_start))?;
        let n = file.take(16).read(&mut head)?;
        let Some(frame) = Frame::parse(&head[..n]) else {
            return Ok(Some(if self.audio_start + 16 > len {
                "the file is truncated in its first audio frame".to_string()
            } else {
                "corrupt audio data: there is no valid audio frame where the audio starts"
                    .to_string()
            }));
        };
        let mut claims = Vec::new();
        let mut says = Vec::new();
        let mut differ = |claim: String, said: String| {
            if claim != said {
                claims.push(claim);
                says.push(said);
            }
        };
        if let Some(rate) = frame.rate {
            differ(format!("{} Hz", self.rate), format!("{rate} Hz"));
        }
        differ(
            format!("{} channels", self.channels),
            format!("{} channels", frame.channels),
        );
        if let Some(bits) = frame.bits {
            differ(format!("{} bits", self.bits), format!("{bits} bits"));
        }
        if frame.block > u32::from(self.max_block) {
            differ(
                format!("blocks of at most {} samples", self.max_block),
                format!("a block of {}", frame.block),
            );
        }
        Ok((!claims.is_empty()).then(|| {
            format!(
                "the STREAMINFO header does not match the audio: it says {}, the first audio \
                 frame {}",
                claims.join(", "),
                says.join(", ")
            )
        }))
    }
}

/// Whether every length field inside a VORBIS_COMMENT (4) or PICTURE (6) block stays inside it.
fn lengths_fit(kind: u8, mut body: &[u8]) -> bool {
    fn skip(body: &mut &[u8], len: usize) -> bool {
        body.get(len..).map(|rest| *body = rest).is_some()
    }
    fn field(body: &mut &[u8], little: bool) -> Option<usize> {
        let (n, rest) = body.split_first_chunk::<4>()?;
        *body = rest;
        let n = if little {
            u32::from_le_bytes(*n)
        } else {
            u32::from_be_bytes(*n)
        };
        usize::try_from(n).ok()
    }
    let b = &mut body;
    if kind == 4 {
        let Some(vendor) = field(b, true) else {
            return false;
        };
        let Some(count) = skip(b, vendor).then(|| field(b, true)).flatten() else {
            return false;
        };
        (0..count).all(|_| field(b, true).is_some_and(|len| skip(b, len)))
    } else {
        // Type, then the MIME type and description with their lengths, then width, height,
        // depth and colour count, then the picture data with its length.
        let fixed = |b: &mut &[u8], n| skip(b, n);
        fixed(b, 4)
            && field(b, false).is_some_and(|len| skip(b, len))
            && field(b, false).is_some_and(|len| skip(b, len))
            && fixed(b, 16)
            && field(b, false).is_some_and(|len| skip(b, len))
    }
}

/// What a frame header says about the audio (`None`: "see STREAMINFO").
struct Frame {
    block: u32,
    rate: Option<u32>,
    channels: u16,
    bits: Option<u8>,
}

impl Frame {
    /// Parse a frame header at the start of `data`; `None` if there is no valid one (its CRC-8
    /// included).
    fn parse(data: &[u8]) -> Option<Frame> {
        let &[sync, sync2, sizes, format, first, ..] = data else {
            return None;
        };
        if sync != 0xff || sync2 & 0xfe != 0xf8 || format & 1 != 0 {
            return None;
        }
        let number_len = match first.leading_ones() {
            0 => 1,
            n @ 2..=7 => n as usize,
            _ => return None,
        };
        let mut pos = 4 + number_len;
        let mut extra = |n: usize| {
            let bytes = data.get(pos..pos + n)?;
            pos += n;
            Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
        };
        let block = match sizes >> 4 {
            0 => return None,
            1 => 192,
            c @ 2..=5 => 576 << (c - 2),
            6 => extra(1)? + 1,
            7 => extra(2)? + 1,
            c => 256 << (c - 8),
        };
        let rate = match sizes & 0xf {
            0 => None,
            c @ 1..=11 => Some(
                [
                    88_200, 176_400, 192_000, 8_000, 16_000, 22_050, 24_000, 32_000, 44_100,
                    48_000, 96_000,
                ][usize::from(c - 1)],
            ),
            12 => Some(extra(1)? * 1000),
            13 => Some(extra(2)?),
            14 => Some(extra(2)? * 10),
            _ => return None,
        };
        let channels = match format >> 4 {
            c @ 0..=7 => u16::from(c) + 1,
            8..=10 => 2,
            _ => return None,
        };
        let bits = match (format >> 1) & 7 {
            0 => None,
            c => Some([0, 8, 12, 0, 16, 20, 24, 32][usize::from(c)]).filter(|&b| b != 0),
        };
        let crc = data[..pos].iter().fold(0u8, |crc, &b| {
            (0..8).fold(
                crc ^ b,
                |c, _| if c & 0x80 != 0 { (c << 1) ^ 7 } else { c << 1 },
            )
        });
        (data.get(pos) == Some(&crc)).then_some(Frame {
            block,
            rate,
            channels,
            bits,
        })
    }
}

/// The first `len` bytes of a file, as symphonia reads them; with [`View::patched`], with
/// STREAMINFO's minimum block size replaced by the maximum.
pub(super) struct View {
    file: File,
    len: u64,
    pos: u64,
    /// File offset of the two min-block-size bytes, and what to show there instead.
    patch: Option<(u64, [u8; 2])>,
}

impl View {
    pub(super) fn new(mut file: File, len: u64) -> io::Result<Self> {
        file.seek(SeekFrom::Start(0))?;
        Ok(View {
            file,
            len,
            pos: 0,
            patch: None,
        })
    }

    pub(super) fn patched(mut self, header: &FlacHeader) -> Self {
        self.patch = Some((header.streaminfo_at, header.max_block.to_be_bytes()));
        self
    }
}

impl Read for View {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.len.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let want = room.min(buf.len());
        let n = self.file.read(&mut buf[..want])?;
        if let Some((at, bytes)) = self.patch {
            for (i, &b) in bytes.iter().enumerate() {
                let at = at + i as u64;
                if (self.pos..self.pos + n as u64).contains(&at) {
                    buf[(at - self.pos) as usize] = b;
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for View {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let to = match to {
            SeekFrom::End(delta) => SeekFrom::Start(
                self.len
                    .checked_add_signed(delta)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?,
            ),
            other => other,
        };
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

impl MediaSource for View {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
#[path = "flac_quirks_tests.rs"]
mod tests;
