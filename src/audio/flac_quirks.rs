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
//! - STREAMINFO's total sample count is hidden from symphonia (it would call a stream that ends
//!   early truncated, even at a clean end): the caller compares it with what decodes, and tells a
//!   header that lies from a file that was cut short.
//! - Files libFLAC decodes although their header is damaged (issue 14): STREAMINFO that is not
//!   the first block, or missing, or whose block sizes the frames exceed; a VORBIS_COMMENT or
//!   PICTURE block whose inner lengths point past its end; a stream that starts at its first frame
//!   header with no metadata at all. Symphonia is shown a rebuilt header instead ([`Rebuilt`]):
//!   "fLaC" and one STREAMINFO made from the real one and the first frame, then the audio frames
//!   as they are. Each such defect is named in [`FlacHeader::defects`], for one warning line.
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
    /// File offset of STREAMINFO's body, when it is the first block as it should be.
    streaminfo_at: Option<u64>,
    pub(super) min_block: u16,
    pub(super) max_block: u16,
    /// 0 means "unknown" in FLAC.
    pub(super) max_frame_bytes: u32,
    md5: [u8; 16],
    pub(super) rate: u32,
    pub(super) channels: u16,
    bits: u8,
    /// 0 means "unknown" in FLAC.
    pub(super) total_frames: u64,
    /// Where the first audio frame would start: just past the last metadata block.
    pub(super) audio_start: u64,
    /// What is wrong with the header that libFLAC plays through, in words.
    pub(super) defects: Vec<String>,
    /// The speaker layout from a `WAVEFORMATEXTENSIBLE_CHANNEL_MASK` tag (what
    /// `flac --channel-map=none` writes), as WAVE mask bits.
    pub(super) channel_mask: Option<u32>,
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
            return FlacHeader::bare_frames(file, len);
        };
        let mut header = FlacHeader::empty();
        let mut streaminfo = false;
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
            match kind {
                0 if size != 34 => {
                    bail!("the FLAC metadata is corrupt: STREAMINFO is {size} bytes, not 34")
                }
                0 if streaminfo => bail!(
                    "the FLAC metadata is corrupt: block number {} is a second STREAMINFO",
                    index + 1
                ),
                0 => {
                    streaminfo = true;
                    header.set_streaminfo(&body);
                    if index == 0 {
                        header.streaminfo_at = Some(pos + 4);
                    } else {
                        header.defects.push(format!(
                            "its metadata is out of order (STREAMINFO is block {}, not the first)",
                            index + 1
                        ));
                    }
                }
                127 => bail!("the FLAC metadata is corrupt: a block has the invalid type 127"),
                4 | 6 if !lengths_fit(kind, &body) => header.defects.push(format!(
                    "its {name} block is unreadable (a length inside it points past its end; \
                     audio kept, tags taken from what can be read)"
                )),
                4 => header.channel_mask = channel_mask(&body),
                _ => {}
            }
            pos += 4 + size;
            if head[0] & 0x80 != 0 {
                break;
            }
        }
        header.audio_start = pos;
        if !streaminfo {
            let frame = header.first_frame(file)?;
            if !header.take_format_from(frame.as_ref()) {
                bail!(
                    "the FLAC metadata is corrupt: it has no STREAMINFO, and no audio frame that \
                     says its sample rate and bit depth follows"
                );
            }
            header
                .defects
                .push("its metadata has no STREAMINFO block".to_string());
        }
        Ok(Some(header))
    }

    fn empty() -> Self {
        FlacHeader {
            streaminfo_at: None,
            min_block: 0,
            max_block: 0,
            max_frame_bytes: 0,
            md5: [0; 16],
            rate: 0,
            channels: 0,
            bits: 0,
            total_frames: 0,
            audio_start: 0,
            defects: Vec::new(),
            channel_mask: None,
        }
    }

    /// A stream with no "fLaC" and no metadata, starting right at a frame header (libFLAC plays
    /// these): `None` unless the first bytes are a valid frame header.
    fn bare_frames(file: &mut File, len: u64) -> anyhow::Result<Option<Self>> {
        let mut header = FlacHeader::empty();
        let frame = header.first_frame(file)?;
        if frame.is_none() || len < 16 {
            return Ok(None);
        }
        if !header.take_format_from(frame.as_ref()) {
            bail!(
                "the stream has no FLAC header, and its first frame does not say its sample \
                 rate and bit depth"
            );
        }
        header
            .defects
            .push("it has no FLAC header (the stream starts at its first audio frame)".to_string());
        Ok(Some(header))
    }

    /// Take rate, channels and bit depth from a frame header, for a stream without STREAMINFO;
    /// false if it leaves any of them to STREAMINFO.
    fn take_format_from(&mut self, frame: Option<&Frame>) -> bool {
        let Some(Frame {
            rate: Some(rate),
            bits: Some(bits),
            channels,
            ..
        }) = frame
        else {
            return false;
        };
        (self.rate, self.bits, self.channels) = (*rate, *bits, *channels);
        true
    }

    /// The first audio frame's header, if there is a valid one where the audio starts.
    pub(super) fn first_frame(&self, file: &mut File) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 16];
        file.seek(SeekFrom::Start(self.audio_start))?;
        let n = file.take(16).read(&mut head)?;
        Ok(Frame::parse(&head[..n]))
    }

    /// "fLaC" and a single STREAMINFO for symphonia, true to the audio: the block sizes the first
    /// frame uses, frame sizes and total length unknown. `None` when the frame contradicts the
    /// header's rate, channels or bit depth (which libFLAC would not play either). A block-size
    /// claim the frame disproves is added to the defects.
    pub(super) fn rebuilt(&mut self, frame: &Frame) -> Option<Vec<u8>> {
        let contradicts = frame.rate.is_some_and(|r| r != self.rate)
            || frame.channels != self.channels
            || frame.bits.is_some_and(|b| b != self.bits);
        if contradicts {
            return None;
        }
        let block = u16::try_from(frame.block).ok()?;
        let (min, max) = if frame.fixed {
            (block, block)
        } else {
            (16, u16::MAX)
        };
        let stated = self.streaminfo_at.is_some() || self.max_block > 0;
        if stated && frame.block > u32::from(self.max_block) {
            self.defects.push(format!(
                "its STREAMINFO says blocks of at most {} samples, but the audio has blocks of {}",
                self.max_block, frame.block
            ));
        }
        let mut out = b"fLaC\x80\x00\x00\x22".to_vec();
        out.extend(min.to_be_bytes());
        out.extend(max.to_be_bytes());
        out.extend([0; 6]);
        let packed = (u64::from(self.rate) << 44)
            | (u64::from(self.channels.saturating_sub(1)) << 41)
            | (u64::from(self.bits.saturating_sub(1)) << 36);
        out.extend(packed.to_be_bytes());
        out.extend(self.md5);
        Some(out)
    }

    fn set_streaminfo(&mut self, si: &[u8]) {
        let be = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        self.min_block = be(&si[0..2]) as u16;
        self.max_block = be(&si[2..4]) as u16;
        self.rate = (be(&si[10..13]) >> 4) as u32;
        self.channels = u16::from((si[12] >> 1) & 7) + 1;
        self.bits = ((be(&si[12..14]) >> 4) & 0x1f) as u8 + 1;
        self.total_frames = be(&si[13..18]) & 0xf_ffff_ffff;
        self.max_frame_bytes = be(&si[7..10]) as u32;
        self.md5.copy_from_slice(&si[18..34]);
    }

    /// Why the audio could not be read, if the first frame says: the file ends inside it, there
    /// is no frame where the audio starts, or the frame contradicts STREAMINFO.
    pub(super) fn explain(&self, file: &mut File, len: u64) -> io::Result<Option<String>> {
        let Some(frame) = self.first_frame(file)? else {
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

/// The `WAVEFORMATEXTENSIBLE_CHANNEL_MASK` comment's value (`0x0107`, or decimal), from a
/// VORBIS_COMMENT block whose lengths fit.
fn channel_mask(body: &[u8]) -> Option<u32> {
    const KEY: &[u8] = b"WAVEFORMATEXTENSIBLE_CHANNEL_MASK=";
    let le = |at: usize| -> Option<usize> {
        let bytes = body.get(at..at + 4)?;
        usize::try_from(u32::from_le_bytes(bytes.try_into().ok()?)).ok()
    };
    let mut pos = 4 + le(0)?;
    let count = le(pos)?;
    pos += 4;
    for _ in 0..count {
        let len = le(pos)?;
        let comment = body.get(pos + 4..pos + 4 + len)?;
        pos += 4 + len;
        if comment.len() > KEY.len() && comment[..KEY.len()].eq_ignore_ascii_case(KEY) {
            let value = std::str::from_utf8(&comment[KEY.len()..]).ok()?.trim();
            return match value
                .strip_prefix("0x")
                .or_else(|| value.strip_prefix("0X"))
            {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => value.parse().ok(),
            };
        }
    }
    None
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
pub(super) struct Frame {
    /// The blocking-strategy bit: frame numbers (fixed) rather than sample numbers.
    fixed: bool,
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
            fixed: sync2 & 1 == 0,
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
    /// File offsets of bytes to show otherwise, and what to show there instead.
    patches: Vec<(u64, u8)>,
}

impl View {
    pub(super) fn new(mut file: File, len: u64) -> io::Result<Self> {
        file.seek(SeekFrom::Start(0))?;
        Ok(View {
            file,
            len,
            pos: 0,
            patches: Vec::new(),
        })
    }

    /// STREAMINFO's minimum block size shown as the maximum (the Flake quirk).
    pub(super) fn patched(mut self, header: &FlacHeader) -> Self {
        if let Some(at) = header.streaminfo_at {
            let [hi, lo] = header.max_block.to_be_bytes();
            self.patches.extend([(at, hi), (at + 1, lo)]);
        }
        self
    }

    /// STREAMINFO's total sample count shown as 0, "unknown".
    pub(super) fn without_total(mut self, header: &FlacHeader) -> Self {
        if let Some(at) = header.streaminfo_at {
            // The count is the low 36 bits of bytes 13..18; byte 13's high half is bit depth.
            let bits_low = ((header.bits.saturating_sub(1) & 0x0f) << 4) & 0xf0;
            self.patches.push((at + 13, bits_low));
            self.patches.extend((14..18).map(|i| (at + i, 0)));
        }
        self
    }
}

impl Read for View {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = usize::try_from(self.len.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let want = room.min(buf.len());
        let n = self.file.read(&mut buf[..want])?;
        for &(at, b) in &self.patches {
            if (self.pos..self.pos + n as u64).contains(&at) {
                buf[(at - self.pos) as usize] = b;
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

/// A FLAC stream as symphonia reads it with a rebuilt header (see [`FlacHeader::rebuilt`]): the
/// header's bytes, then the file's audio frames from `start` to `end`.
pub(super) struct Rebuilt {
    file: File,
    header: Vec<u8>,
    start: u64,
    end: u64,
    pos: u64,
}

impl Rebuilt {
    pub(super) fn new(file: File, header: Vec<u8>, start: u64, end: u64) -> Self {
        Rebuilt {
            file,
            header,
            start,
            end: end.max(start),
            pos: 0,
        }
    }

    fn len(&self) -> u64 {
        self.header.len() as u64 + (self.end - self.start)
    }
}

impl Read for Rebuilt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let head = self.header.len() as u64;
        let n = if self.pos < head {
            let from = &self.header[self.pos as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else {
            let at = self.start + (self.pos - head);
            let room = usize::try_from(self.end.saturating_sub(at)).unwrap_or(usize::MAX);
            let want = room.min(buf.len());
            self.file.seek(SeekFrom::Start(at))?;
            self.file.read(&mut buf[..want])?
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Rebuilt {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let to = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.len().checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        self.pos = to.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

impl MediaSource for Rebuilt {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len())
    }
}

#[cfg(test)]
#[path = "flac_quirks_tests.rs"]
mod tests;
