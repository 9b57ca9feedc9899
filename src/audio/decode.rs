//! Reading a lossless source: probing by content, demuxing, hashing every packet of the audio
//! track, and (optionally) decoding each packet to planar f32 in full scale (-1.0..1.0).
//!
//! Symphonia is forgiving by design (a corrupt FLAC frame is dropped and the demuxer resyncs);
//! we are not: a missing or undecodable piece of audio must fail the file rather than leave a
//! silently broken MP3, so packet continuity and the total frame count are checked here.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use symphonia::core::audio::{Channels, Position};
use symphonia::core::codecs::audio::well_known::*;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use super::flac_quirks::{FlacHeader, Rebuilt, View, stream_len};

/// Codecs that are bit-exact; transcoding a lossy source to MP3 would stack two lossy codecs.
/// A-law and mu-law are left out on purpose: they are lossy companding.
const LOSSLESS: &[AudioCodecId] = &[
    CODEC_ID_FLAC,
    CODEC_ID_ALAC,
    CODEC_ID_PCM_S32LE,
    CODEC_ID_PCM_S32LE_PLANAR,
    CODEC_ID_PCM_S32BE,
    CODEC_ID_PCM_S32BE_PLANAR,
    CODEC_ID_PCM_S24LE,
    CODEC_ID_PCM_S24LE_PLANAR,
    CODEC_ID_PCM_S24BE,
    CODEC_ID_PCM_S24BE_PLANAR,
    CODEC_ID_PCM_S16LE,
    CODEC_ID_PCM_S16LE_PLANAR,
    CODEC_ID_PCM_S16BE,
    CODEC_ID_PCM_S16BE_PLANAR,
    CODEC_ID_PCM_S8,
    CODEC_ID_PCM_S8_PLANAR,
    CODEC_ID_PCM_U32LE,
    CODEC_ID_PCM_U32LE_PLANAR,
    CODEC_ID_PCM_U32BE,
    CODEC_ID_PCM_U32BE_PLANAR,
    CODEC_ID_PCM_U24LE,
    CODEC_ID_PCM_U24LE_PLANAR,
    CODEC_ID_PCM_U24BE,
    CODEC_ID_PCM_U24BE_PLANAR,
    CODEC_ID_PCM_U16LE,
    CODEC_ID_PCM_U16LE_PLANAR,
    CODEC_ID_PCM_U16BE,
    CODEC_ID_PCM_U16BE_PLANAR,
    CODEC_ID_PCM_U8,
    CODEC_ID_PCM_U8_PLANAR,
    CODEC_ID_PCM_F32LE,
    CODEC_ID_PCM_F32LE_PLANAR,
    CODEC_ID_PCM_F32BE,
    CODEC_ID_PCM_F32BE_PLANAR,
    CODEC_ID_PCM_F64LE,
    CODEC_ID_PCM_F64LE_PLANAR,
    CODEC_ID_PCM_F64BE,
    CODEC_ID_PCM_F64BE_PLANAR,
];

/// One open source: the audio track's packets, hashed as they go by, and decoded if asked to.
pub(super) struct Source {
    /// `None` for a stream with no audio frames at all.
    reader: Option<Box<dyn FormatReader>>,
    decoding: bool,
    decoder: Option<Box<dyn AudioDecoder>>,
    track_id: u32,
    rate: u32,
    channels: Channels,
    channel_count: usize,
    /// What the container says the length is, if it says.
    expected_frames: Option<u64>,
    /// STREAMINFO's maximum frame size (0: unknown, or not FLAC), and the largest packet seen.
    max_frame_bytes: u32,
    largest_packet: usize,
    /// The last packet's length in frames, and how many packets differ from the first in length.
    last_block: i64,
    odd_blocks: u64,
    /// A FLAC stream whose STREAMINFO we read.
    flac: bool,
    /// Defects in the source that were read through, one line each.
    warnings: Vec<String>,
    /// Packet timestamps come out multiplied by this (see [`View::patched`]), else 1.
    pts_scale: i64,
    /// Where the next packet must start, to notice packets the demuxer dropped.
    next_pts: Option<i64>,
    /// Packets read, the first one's length, and whether a later one had another length.
    packets: i64,
    first_block: i64,
    uneven: bool,
    /// Lossless streams are checked for continuity and length; a lossy one (a native MP3,
    /// only ever hashed) has priming and padding that make its timestamps irregular.
    strict: bool,
    hasher: Sha256,
    frames: u64,
    planes: Vec<Vec<f32>>,
}

impl Source {
    /// Probe `path` by content (the extension is only a hint) and set up its audio track.
    /// With `decode` false only packets are read: enough for the hash, and much cheaper.
    pub(super) fn open(path: &Path, decode: bool) -> anyhow::Result<Self> {
        let mut file = File::open(path).context("opening the source")?;
        let len = file.metadata().context("reading the source's size")?.len();
        if len == 0 {
            bail!("the file is empty (0 bytes)");
        }
        let len = stream_len(&mut file, len).context("reading the source")?;
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let (reader, pts_scale, flac) = match FlacHeader::read(&mut file, len) {
            Ok(Some(header)) => {
                if header.audio_start >= len {
                    return Source::without_frames(&header, decode);
                }
                let (reader, scale, header) = open_flac(file, len, header, &hint)?;
                (reader, scale, Some(header))
            }
            // Not FLAC, or metadata we cannot follow: symphonia has the last word.
            read => match probe(Box::new(View::new(file, len)?), &hint) {
                Ok(reader) => (reader, 1, None),
                Err(err) => {
                    read?;
                    if let SymError::Unsupported(_) = err {
                        bail!("not a recognised audio file");
                    }
                    return Err(err).context("not a recognised audio file");
                }
            },
        };

        let track = reader
            .default_track(TrackType::Audio)
            .context("the file has no audio track")?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .context("the audio track has no codec parameters")?
            .clone();
        let codec_name = symphonia::default::get_codecs()
            .get_audio_decoder(params.codec)
            .map_or("unknown", |d| d.codec.info.long_name);
        // Hashing alone accepts any codec: native MP3s are fingerprinted the same way.
        if decode && !LOSSLESS.contains(&params.codec) {
            bail!("the audio codec ({codec_name}) is not a supported lossless codec");
        }
        let rate = params
            .sample_rate
            .filter(|&r| r > 0)
            .context("the audio track has no sample rate")?;
        let mut channels = params
            .channels
            .clone()
            .context("the audio track does not say how many channels it has")?;
        let channel_count = channels.count();
        // The file's own layout beats the codec's default order for its channel count.
        if let Some(mask) = flac.as_ref().and_then(|h| h.channel_mask)
            && let Some(layout) = Position::from_wave_channel_mask(mask)
            && layout.bits().count_ones() as usize == channel_count
        {
            channels = Channels::Positioned(layout);
        }
        if channel_count == 0 {
            bail!("the audio track has no channels");
        }

        let decoder = if decode {
            let d = symphonia::default::get_codecs()
                .make_audio_decoder(&params, &AudioDecoderOptions::default())
                .with_context(|| format!("setting up the {codec_name} decoder"))?;
            Some(d)
        } else {
            None
        };

        let expected_frames = match &flac {
            Some(h) => (h.total_frames > 0).then_some(h.total_frames),
            None => track.num_frames,
        };
        let warnings = flac.as_ref().map_or_else(Vec::new, |h| h.defects.clone());
        Ok(Source {
            track_id: track.id,
            expected_frames,
            max_frame_bytes: flac.as_ref().map_or(0, |h| h.max_frame_bytes),
            largest_packet: 0,
            last_block: 0,
            odd_blocks: 0,
            flac: flac.is_some(),
            warnings,
            reader: Some(reader),
            decoding: decode,
            decoder,
            rate,
            channels,
            channel_count,
            pts_scale,
            // A FLAC stream starts at sample 0: a first frame lost to damage is a gap too.
            next_pts: flac.is_some().then_some(0),
            packets: 0,
            first_block: 0,
            uneven: false,
            strict: LOSSLESS.contains(&params.codec),
            hasher: Sha256::new(),
            frames: 0,
            planes: Vec::new(),
        })
    }

    /// A FLAC file that ends right after its metadata: valid and empty if STREAMINFO agrees.
    fn without_frames(header: &FlacHeader, decode: bool) -> anyhow::Result<Self> {
        if header.total_frames != 0 {
            bail!(
                "the file is truncated: STREAMINFO promises {} frames but no audio follows",
                header.total_frames
            );
        }
        if header.rate == 0 {
            bail!("the FLAC header has no sample rate");
        }
        Ok(Source {
            reader: None,
            decoding: decode,
            decoder: None,
            track_id: 0,
            rate: header.rate,
            channels: Channels::Discrete(header.channels),
            channel_count: usize::from(header.channels),
            expected_frames: Some(0),
            max_frame_bytes: 0,
            largest_packet: 0,
            last_block: 0,
            odd_blocks: 0,
            flac: true,
            warnings: header.defects.clone(),
            pts_scale: 1,
            next_pts: None,
            packets: 0,
            first_block: 0,
            uneven: false,
            strict: true,
            hasher: Sha256::new(),
            frames: 0,
            planes: Vec::new(),
        })
    }

    pub(super) fn rate(&self) -> u32 {
        self.rate
    }

    pub(super) fn channels(&self) -> &Channels {
        &self.channels
    }

    pub(super) fn channel_count(&self) -> usize {
        self.channel_count
    }

    /// The planes the last [`next_block`](Self::next_block) decoded into; only the first
    /// `frames` samples of each are valid.
    pub(super) fn planes(&self) -> &[Vec<f32>] {
        &self.planes
    }

    /// Read (and hash, and decode if set up to) the next packet of the audio track. Returns the
    /// number of frames it decoded to (0 when not decoding), or `None` at the end of the stream.
    pub(super) fn next_block(&mut self) -> anyhow::Result<Option<usize>> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        loop {
            let packet = match reader.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(None),
                Err(SymError::ResetRequired) => {
                    bail!("the stream changes format part-way (chained streams are not supported)")
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    let promised = self
                        .expected_frames
                        .map_or_else(String::new, |n| format!(" of the {n} its header promises"));
                    bail!(
                        "the file is truncated: it ends after {} frames{promised}",
                        self.frames
                    );
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("corrupt audio data after {} frames", self.frames)
                    });
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let dur = i64::try_from(packet.block_dur().get()).unwrap_or(i64::MAX);
            let pts = self.position(packet.pts.get())?;
            if let Some(expected) = self.next_pts
                && pts != expected
                && self.strict
            {
                if pts < expected {
                    bail!(
                        "corrupt audio data: after {} frames the stream starts again at frame \
                         {pts} (two files joined into one?)",
                        self.frames
                    );
                }
                bail!("corrupt audio data: frames {expected}..{pts} are missing or unreadable");
            }
            self.next_pts = pts.checked_add(dur);
            self.uneven |= self.packets > 0 && dur != self.first_block;
            if self.packets > 0 && dur != self.first_block {
                self.odd_blocks += 1;
            }
            if self.packets == 0 {
                self.first_block = dur;
            }
            self.last_block = dur;
            self.largest_packet = self.largest_packet.max(packet.data.len());
            self.packets += 1;
            self.hasher.update(&packet.data);

            let Some(decoder) = self.decoder.as_mut() else {
                self.frames += packet.dur.get();
                return Ok(Some(0));
            };
            let decoded = decoder.decode(&packet).with_context(|| {
                format!(
                    "corrupt audio data: decoding failed after {} frames",
                    self.frames
                )
            })?;
            let spec = decoded.spec();
            if spec.rate() != self.rate || decoded.num_planes() != self.channel_count {
                bail!(
                    "the stream changes format part-way ({} Hz, {} channels after {} frames; \
                     it started at {} Hz, {} channels)",
                    spec.rate(),
                    decoded.num_planes(),
                    self.frames,
                    self.rate,
                    self.channel_count
                );
            }
            // Symphonia's decoders produce full-scale samples whatever the bit depth (a 12-bit
            // FLAC arrives shifted up into i32), so its generic conversion scales correctly.
            decoded.copy_to_vecs_planar::<f32>(&mut self.planes);
            let frames = decoded.frames();
            self.frames += frames as u64;
            return Ok(Some(frames));
        }
    }

    /// Where a packet starts, in frames. Through a patched header (see [`View::patched`]) a
    /// timestamp is the frame header's number times `pts_scale`: a sample number (the Flake
    /// quirk) or, when STREAMINFO only lied about its block sizes, the number of a frame in a
    /// stream of equal blocks.
    fn position(&self, pts: i64) -> anyhow::Result<i64> {
        if pts % self.pts_scale != 0 {
            bail!(
                "corrupt audio data: a packet is misplaced after {} frames",
                self.frames
            );
        }
        let number = pts / self.pts_scale;
        Ok(match self.next_pts {
            Some(expected)
                if self.pts_scale > 1
                    && number != expected
                    && number == self.packets
                    && !self.uneven =>
            {
                number.saturating_mul(self.first_block)
            }
            _ => number,
        })
    }

    /// After the last block: the hash, the number of frames (decoded, or when not decoding, as
    /// the packets declare them), and the defects read through. Fails if the stream came up
    /// short of what the header says and does not end the way an encoder ends a stream.
    pub(super) fn finish(mut self) -> anyhow::Result<Finished> {
        if let Some(expected) = self.expected_frames
            && expected != self.frames
            && self.strict
        {
            let holds = if self.decoding { "decodes to" } else { "holds" };
            // Every block as long as the first but the last, which is shorter: how an encoder
            // ends a stream of fixed blocks, where a cut ends with a whole one.
            let clean_end = self.odd_blocks == 1 && self.last_block < self.first_block;
            if self.frames > expected || (clean_end && self.flac) {
                // libFLAC plays all of it; the header is what is wrong. A stream cut short
                // mid-way ends with a whole block, and is refused below.
                self.warnings.push(format!(
                    "its header says {expected} samples, but the stream {holds} {} (all kept)",
                    self.frames
                ));
            } else {
                bail!(
                    "the file is truncated or corrupt: the header promises {expected} frames \
                     but the stream {holds} {}",
                    self.frames
                );
            }
        }
        if self.max_frame_bytes > 0 && self.largest_packet > self.max_frame_bytes as usize {
            self.warnings.push(format!(
                "its STREAMINFO says frames of at most {} bytes, but one has {}",
                self.max_frame_bytes, self.largest_packet
            ));
        }
        Ok(Finished {
            hash: crate::digest::Digest::sha256(self.hasher.finalize().into()),
            frames: self.frames,
            warnings: self.warnings,
        })
    }
}

/// What a whole read of a source gave.
pub(super) struct Finished {
    pub(super) hash: crate::digest::Digest,
    pub(super) frames: u64,
    /// One line per defect read through (see [`super::flac_quirks`]).
    pub(super) warnings: Vec<String>,
}

/// Set up symphonia's reader for a FLAC file whose header we read: as it is (with STREAMINFO's
/// total hidden, which [`Source::finish`] checks instead); else with the Flake quirk patched;
/// else, and always for a header with defects, through a rebuilt header. Returns the reader,
/// the packet timestamp scale, and the header with any defects found on the way.
fn open_flac(
    mut file: File,
    len: u64,
    mut header: FlacHeader,
    hint: &Hint,
) -> anyhow::Result<(Box<dyn FormatReader>, i64, FlacHeader)> {
    let mut err = None;
    if header.defects.is_empty() {
        let view = View::new(file.try_clone()?, len)?.without_total(&header);
        match probe(Box::new(view), hint) {
            Ok(reader) => return Ok((reader, 1, header)),
            Err(e) => err = Some(e),
        }
        if header.min_block != header.max_block && header.max_block > 0 {
            let view = View::new(file.try_clone()?, len)?
                .without_total(&header)
                .patched(&header);
            if let Ok(reader) = probe(Box::new(view), hint) {
                let scale = i64::from(header.max_block);
                return Ok((reader, scale, header));
            }
        }
    }
    if let Some(frame) = header.first_frame(&mut file)?
        && let Some(rebuilt) = header.rebuilt(&frame)
    {
        let source = Rebuilt::new(file.try_clone()?, rebuilt, header.audio_start, len);
        match probe(Box::new(source), hint) {
            Ok(reader) => return Ok((reader, 1, header)),
            Err(e) => err = Some(e),
        }
    }
    match header.explain(&mut file, len)? {
        Some(why) => bail!(why),
        None => match err {
            Some(err) => Err(err).context("unreadable FLAC file"),
            None => bail!("unreadable FLAC file"),
        },
    }
}

fn probe(
    source: Box<dyn MediaSource>,
    hint: &Hint,
) -> symphonia::core::errors::Result<Box<dyn FormatReader>> {
    let mss = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    symphonia::default::get_probe().probe(
        hint,
        mss,
        FormatOptions::default(),
        MetadataOptions::default(),
    )
}
