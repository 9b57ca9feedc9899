//! Valid FLAC files symphonia refuses to open, looked at only after its probe has failed.
//!
//! - A stream with no audio frames at all (0 samples): symphonia wants a first frame. We read
//!   STREAMINFO ourselves and treat it as empty, or as truncated if STREAMINFO promised samples.
//! - Pre-1.1.4-era variable-blocksize FLAC (e.g. Flake 0.11) marks "variable" only by
//!   STREAMINFO's min ≠ max block size, and puts sample numbers in frame headers whose
//!   blocking-strategy bit still says "fixed"; symphonia rejects every frame. Showing it a
//!   STREAMINFO with min = max makes it accept them as fixed-blocksize: decoding is unaffected
//!   (every frame header carries its own block size), and each packet timestamp becomes
//!   `sample_number × max_block`, which the caller divides back. Only those two bytes differ,
//!   and only in what symphonia reads.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use symphonia::core::io::MediaSource;

/// What we need from a FLAC file's header.
pub(super) struct FlacHeader {
    /// File offset of STREAMINFO's body.
    streaminfo_at: u64,
    pub(super) min_block: u16,
    pub(super) max_block: u16,
    pub(super) rate: u32,
    pub(super) channels: u16,
    /// 0 means "unknown" in FLAC.
    pub(super) total_frames: u64,
    /// Where the first audio frame would start: just past the last metadata block.
    pub(super) audio_start: u64,
}

impl FlacHeader {
    /// Parse the header of `file`, or `None` if it is not FLAC (or its metadata is cut short).
    pub(super) fn read(file: &mut File) -> io::Result<Option<Self>> {
        let mut head = [0u8; 10];
        file.seek(SeekFrom::Start(0))?;
        if file.read_exact(&mut head).is_err() {
            return Ok(None);
        }
        let start = if &head[..3] == b"ID3" {
            // A (non-standard but common) ID3v2 tag ahead of "fLaC": skip its syncsafe size.
            let size = head[6..10]
                .iter()
                .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7f));
            let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
            10 + size + footer
        } else {
            0
        };
        let mut first = [0u8; 8 + 18];
        file.seek(SeekFrom::Start(start))?;
        if file.read_exact(&mut first).is_err() || &first[..4] != b"fLaC" || first[4] & 0x7f != 0 {
            return Ok(None);
        }
        let si = &first[8..];
        let be = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let mut header = FlacHeader {
            streaminfo_at: start + 8,
            min_block: be(&si[0..2]) as u16,
            max_block: be(&si[2..4]) as u16,
            rate: (be(&si[10..13]) >> 4) as u32,
            channels: u16::from((si[12] >> 1) & 7) + 1,
            total_frames: be(&si[13..18]) & 0xf_ffff_ffff,
            audio_start: 0,
        };

        // Walk the metadata block headers to the end of the metadata.
        let len = file.metadata()?.len();
        let mut pos = start + 4;
        loop {
            let mut block = [0u8; 4];
            file.seek(SeekFrom::Start(pos))?;
            if file.read_exact(&mut block).is_err() {
                return Ok(None);
            }
            pos += 4 + be(&block[1..4]);
            if pos > len {
                return Ok(None);
            }
            if block[0] & 0x80 != 0 {
                break;
            }
        }
        header.audio_start = pos;
        Ok(Some(header))
    }
}

/// A FLAC file seen with STREAMINFO's minimum block size replaced by the maximum.
pub(super) struct PatchedFlac {
    file: File,
    len: u64,
    pos: u64,
    /// File offset of the two min-block-size bytes, and what to show there instead.
    patch_at: u64,
    patch: [u8; 2],
}

impl PatchedFlac {
    pub(super) fn new(mut file: File, header: &FlacHeader) -> io::Result<Self> {
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(0))?;
        Ok(PatchedFlac {
            file,
            len,
            pos: 0,
            patch_at: header.streaminfo_at,
            patch: header.max_block.to_be_bytes(),
        })
    }
}

impl Read for PatchedFlac {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        for (i, &b) in self.patch.iter().enumerate() {
            let at = self.patch_at + i as u64;
            if (self.pos..self.pos + n as u64).contains(&at) {
                buf[(at - self.pos) as usize] = b;
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PatchedFlac {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

impl MediaSource for PatchedFlac {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// "fLaC" + a last STREAMINFO block: min/max block, 44100 Hz, 2 channels, 16 bit, 1234 frames.
    fn flac_header(min: u16, max: u16) -> Vec<u8> {
        let mut data = b"fLaC\x80\x00\x00\x22".to_vec();
        data.extend(min.to_be_bytes());
        data.extend(max.to_be_bytes());
        data.extend([0; 6]); // frame sizes
        // 20 bits rate, 3 bits channels-1, 5 bits bps-1, 36 bits total.
        let packed: u64 = (44_100 << 44) | (1 << 41) | (15 << 36) | 1234;
        data.extend(packed.to_be_bytes());
        data.extend([0; 16]); // MD5
        data
    }

    fn file_with(data: &[u8]) -> File {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(data).unwrap();
        tmp
    }

    #[test]
    fn reads_streaminfo() {
        let mut data = flac_header(576, 4608);
        data.extend([0xff, 0xf8]); // start of a first frame
        let h = FlacHeader::read(&mut file_with(&data)).unwrap().unwrap();
        assert_eq!((h.min_block, h.max_block), (576, 4608));
        assert_eq!((h.rate, h.channels, h.total_frames), (44_100, 2, 1234));
        assert_eq!(h.audio_start, 42);
        assert!(
            FlacHeader::read(&mut file_with(b"RIFF....WAVE"))
                .unwrap()
                .is_none()
        );
        assert!(
            FlacHeader::read(&mut file_with(&data[..30]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn patches_only_the_min_block_size() {
        let mut data = flac_header(576, 4608);
        data.extend([0xaa; 30]);
        let mut file = file_with(&data);
        let header = FlacHeader::read(&mut file).unwrap().unwrap();
        let mut patched = PatchedFlac::new(file, &header).unwrap();
        // Read in odd pieces so the patch straddles a read boundary.
        let mut seen = Vec::new();
        let mut piece = [0u8; 9];
        loop {
            let n = patched.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&piece[..n]);
        }
        let mut expected = data.clone();
        expected[8..10].copy_from_slice(&4608u16.to_be_bytes());
        assert_eq!(seen, expected);
    }
}
