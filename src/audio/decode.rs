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
use symphonia::core::audio::Channels;
use symphonia::core::codecs::audio::well_known::*;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use super::flac_quirks::{FlacHeader, View, stream_len};

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
        let view = View::new(file, len).context("reading the source")?;
        let (reader, pts_scale) = match probe(Box::new(view), &hint) {
            Ok(reader) => (reader, 1),
            Err(err) => {
                let mut retry = File::open(path).context("opening the source")?;
                let Some(header) = FlacHeader::read(&mut retry, len)? else {
                    if let SymError::Unsupported(_) = err {
                        bail!("not a recognised audio file");
                    }
                    return Err(err).context("not a recognised audio file");
                };
                if header.audio_start >= len {
                    return Source::without_frames(&header, decode);
                }
                let view = View::new(retry.try_clone()?, len).context("reading the source")?;
                match probe(Box::new(view.patched(&header)), &hint) {
                    Ok(reader) if header.min_block != header.max_block && header.max_block > 0 => {
                        (reader, i64::from(header.max_block))
                    }
                    _ => match header.explain(&mut retry, len)? {
                        Some(why) => bail!(why),
                        None => return Err(err).context("unreadable FLAC file"),
                    },
                }
            }
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
        let channels = params
            .channels
            .clone()
            .context("the audio track does not say how many channels it has")?;
        let channel_count = channels.count();
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

        Ok(Source {
            track_id: track.id,
            expected_frames: track.num_frames,
            reader: Some(reader),
            decoding: decode,
            decoder,
            rate,
            channels,
            channel_count,
            pts_scale,
            next_pts: None,
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
            if self.packets == 0 {
                self.first_block = dur;
            }
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

    /// After the last block: the hash, and the number of frames (decoded, or when not decoding,
    /// as the packets declare them). Fails if the stream came up short of what the header says.
    pub(super) fn finish(self) -> anyhow::Result<(String, u64)> {
        if let Some(expected) = self.expected_frames
            && expected != self.frames
            && self.strict
        {
            let holds = if self.decoding { "decodes to" } else { "holds" };
            if self.frames > expected {
                bail!(
                    "the header is wrong or the file is corrupt: the header promises {expected} \
                     frames but the stream {holds} {}",
                    self.frames
                );
            }
            bail!(
                "the file is truncated or corrupt: the header promises {expected} frames \
                 but the stream {holds} {}",
                self.frames
            );
        }
        Ok((crate::fsutil::hex(&self.hasher.finalize()), self.frames))
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
