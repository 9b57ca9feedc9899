//! Audio effects: decode any lossless source symphonia understands, convert it to what MP3 can
//! carry (downmix, resample), and encode it with LAME. Also the audio fingerprint used by the
//! manifest. Knows nothing about libraries, manifests or tags.
//!
//! The whole conversion is one streaming pass over the source: every demuxed packet is hashed,
//! decoded, downmixed, resampled and handed to LAME before the next one is read, so memory stays
//! flat whatever the length of the file.

mod decode;
mod downmix;
mod encode;
mod flac_quirks;
mod resample;

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use resample::output_rate;

/// A LAME preset, as users name it: `V0`…`V9`, `CBR320`, `CBR256`, `CBR192`, `CBR128`, `ABR<kbps>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Quality {
    /// LAME's default VBR mode (`-V n`), 0 = best, 9 = smallest.
    Vbr(u8),
    /// Constant bitrate in kbit/s: 320, 256, 192 or 128.
    Cbr(u16),
    /// Average bitrate in kbit/s, 8..=320.
    Abr(u16),
}

impl Default for Quality {
    fn default() -> Self {
        Quality::Vbr(2)
    }
}

const CBR_RATES: [u16; 4] = [320, 256, 192, 128];
const ABR_RANGE: std::ops::RangeInclusive<u16> = 8..=320;

impl Quality {
    /// Whether this value is one users can name; the enum itself can hold nonsense like `Vbr(12)`.
    fn is_valid(self) -> bool {
        match self {
            Quality::Vbr(n) => n <= 9,
            Quality::Cbr(k) => CBR_RATES.contains(&k),
            Quality::Abr(k) => ABR_RANGE.contains(&k),
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        let upper = s.trim().to_ascii_uppercase();
        // Digits only: `u16::parse` would also accept "+2".
        let number = |rest: &str| {
            (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
                .then(|| rest.parse::<u16>().ok())
                .flatten()
        };
        let parsed = if let Some(rest) = upper.strip_prefix("CBR") {
            number(rest).map(Quality::Cbr)
        } else if let Some(rest) = upper.strip_prefix("ABR") {
            number(rest).map(Quality::Abr)
        } else if let Some(rest) = upper.strip_prefix('V') {
            number(rest)
                .and_then(|n| u8::try_from(n).ok())
                .map(Quality::Vbr)
        } else {
            None
        };
        match parsed {
            Some(q) if q.is_valid() => Ok(q),
            _ => Err(format!(
                "invalid quality {s:?}: expected one of V0..V9, CBR320, CBR256, CBR192, CBR128, \
                 or ABR<kbps> with kbps in 8..=320 (e.g. ABR192)"
            )),
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quality::Vbr(n) => write!(f, "V{n}"),
            Quality::Cbr(k) => write!(f, "CBR{k}"),
            Quality::Abr(k) => write!(f, "ABR{k}"),
        }
    }
}

impl FromStr for Quality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Quality::parse(s)
    }
}

impl TryFrom<String> for Quality {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Quality::parse(&s)
    }
}

impl From<Quality> for String {
    fn from(q: Quality) -> String {
        q.to_string()
    }
}

/// sha256 over the audio packets only (no metadata).
pub type AudioHash = crate::digest::Digest;

/// What one transcode did.
#[derive(Clone, Debug)]
pub struct Transcoded {
    pub audio_hash: AudioHash,
    pub source_rate: u32,
    pub source_channels: usize,
    pub source_frames: u64,
    pub output_rate: u32,
    pub output_channels: usize,
    pub output_frames: u64,
    /// Defects of the source that decoding read through (a wrong header, metadata out of
    /// order, an unreadable tag block), one line each, for the caller to warn about.
    pub warnings: Vec<String>,
}

/// Decode `src`, encode it as MP3 into `out` (an empty file open for read+write), with the LAME
/// info frame written in place over LAME's placeholder.
///
/// Mono stays mono, stereo stays stereo, 3+ channels are downmixed to stereo (ITU-R BS.775
/// coefficients, normalised so they cannot clip). The output rate follows [`output_rate`], and
/// the MP3 decodes (by any gapless decoder honouring the LAME tag) to exactly `output_frames` =
/// round(`source_frames` × `output_rate` / `source_rate`) frames, and at least one for a source
/// that has any. A FLAC that libFLAC decodes despite a damaged header converts to the length it
/// decodes to, each defect named in `warnings`; one it cannot decode fails, leaving no MP3.
pub fn transcode(src: &Path, out: &mut File, quality: Quality) -> anyhow::Result<Transcoded> {
    anyhow::ensure!(quality.is_valid(), "unsupported quality {quality}");
    let mut source = decode::Source::open(src, true)?;
    let source_rate = source.rate();
    let source_channels = source.channel_count();
    let out_rate = output_rate(source_rate);
    let mut mix = downmix::Downmix::new(source.channels(), source_channels)?;
    let out_channels = mix.output_channels();

    let mut encoder = encode::Mp3Encoder::new(out, quality, out_rate, out_channels)?;
    let mut resampler = if out_rate == source_rate {
        None
    } else {
        Some(resample::StreamResampler::new(
            source_rate,
            out_rate,
            out_channels,
        )?)
    };

    while let Some(frames) = source.next_block()? {
        let mixed = mix.apply(source.planes(), frames);
        match resampler.as_mut() {
            Some(r) => r.push(mixed, frames, &mut |planes, range| {
                encoder.encode(planes, range)
            })?,
            None => encoder.encode(mixed, 0..frames)?,
        }
    }
    let decode::Finished {
        hash: audio_hash,
        frames: source_frames,
        warnings,
    } = source.finish()?;
    let output_frames = match resampler.as_mut() {
        Some(r) => r.finish(source_frames, &mut |planes, range| {
            encoder.encode(planes, range)
        })?,
        None => source_frames,
    };
    let encoded_frames = encoder.finish().context("finishing the MP3")?;
    // The exact-length promise rests on this; a mismatch is a bug here, not bad input.
    anyhow::ensure!(
        encoded_frames == output_frames,
        "internal error: encoded {encoded_frames} frames, expected {output_frames}"
    );

    Ok(Transcoded {
        audio_hash,
        source_rate,
        source_channels,
        source_frames,
        output_rate: out_rate,
        output_channels: out_channels,
        output_frames,
        warnings,
    })
}

/// sha256 over the source's audio packets, without decoding; equal to `transcode`'s `audio_hash`.
/// Any codec symphonia demuxes is accepted (native MP3s are fingerprinted too).
pub fn audio_hash(src: &Path) -> anyhow::Result<AudioHash> {
    let mut source = decode::Source::open(src, false)?;
    while source.next_block()?.is_some() {}
    Ok(source.finish()?.hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_round_trips_through_text() {
        let mut all: Vec<Quality> = (0..=9).map(Quality::Vbr).collect();
        all.extend(CBR_RATES.map(Quality::Cbr));
        all.extend([8, 32, 192, 320].map(Quality::Abr));
        for q in all {
            let text = String::from(q);
            assert_eq!(Quality::try_from(text.clone()), Ok(q), "{text}");
            assert_eq!(text.parse::<Quality>(), Ok(q));
            assert_eq!(q.to_string(), text);
        }
    }

    #[test]
    fn quality_parsing_is_lenient_about_case_only() {
        assert_eq!("v0".parse(), Ok(Quality::Vbr(0)));
        assert_eq!(" cbr128 ".parse(), Ok(Quality::Cbr(128)));
        assert_eq!("Abr96".parse(), Ok(Quality::Abr(96)));
    }

    #[test]
    fn quality_rejects_nonsense_with_the_valid_values() {
        for bad in [
            "", "V", "V10", "V-1", "V+2", "CBR", "CBR160", "CBR 320", "ABR7", "ABR321", "ABR",
            "MP3", "320",
        ] {
            let err = bad.parse::<Quality>().unwrap_err();
            assert!(
                err.contains("V0..V9") && err.contains("ABR"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn quality_default_and_serde() {
        assert_eq!(Quality::default(), Quality::Vbr(2));
        let json = serde_json::to_string(&Quality::Abr(192)).unwrap();
        assert_eq!(json, "\"ABR192\"");
        assert_eq!(
            serde_json::from_str::<Quality>("\"CBR320\"").unwrap(),
            Quality::Cbr(320)
        );
        assert!(serde_json::from_str::<Quality>("\"CBR321\"").is_err());
    }
}
