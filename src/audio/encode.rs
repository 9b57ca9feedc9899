//! MP3 encoding with LAME, streamed into the output file, finished with the LAME/Xing info
//! frame written over the placeholder LAME put first. That frame carries the encoder delay and
//! padding, which is what lets gapless decoders (ffmpeg, foobar, Rockbox…) return exactly the
//! frames that went in.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::ops::Range;

use anyhow::{Context, anyhow, bail};
use mp3lame_encoder::{
    Bitrate, Builder, DualPcm, Encoder, FlushGap, Mode, MonoPcm, VbrMode, max_required_buffer_size,
};

use super::Quality;

pub(super) struct Mp3Encoder<'f> {
    lame: Encoder,
    out: BufWriter<&'f mut File>,
    /// Where the placeholder info frame starts (normally 0: the file is empty when given).
    start: u64,
    channels: usize,
    /// The samples as LAME gets them, one plane per channel.
    ints: Vec<Vec<i32>>,
    buf: Vec<u8>,
    frames: u64,
}

impl<'f> Mp3Encoder<'f> {
    pub(super) fn new(
        out: &'f mut File,
        quality: Quality,
        rate: u32,
        channels: usize,
    ) -> anyhow::Result<Self> {
        let lame = configure(quality, rate, channels).map_err(|e| {
            anyhow!("LAME rejected the settings ({quality}, {rate} Hz, {channels} channels): {e}")
        })?;
        let start = out
            .stream_position()
            .context("finding the output position")?;
        Ok(Mp3Encoder {
            lame,
            out: BufWriter::with_capacity(64 * 1024, out),
            start,
            channels,
            ints: vec![Vec::new(); channels],
            buf: Vec::new(),
            frames: 0,
        })
    }

    /// Encode frames `range` of `planes` (one plane for mono, two for stereo).
    pub(super) fn encode(
        &mut self,
        planes: &[Vec<f32>],
        range: Range<usize>,
    ) -> anyhow::Result<()> {
        let frames = range.len();
        if frames == 0 {
            return Ok(());
        }
        self.buf.clear();
        // encode_to_vec only writes into spare capacity; too little is an error, not a resize.
        self.buf.reserve(max_required_buffer_size(frames));
        for (int, plane) in self.ints.iter_mut().zip(planes) {
            int.clear();
            // LAME's float entry point scales by 32767, its integer one by 32768 like the `lame`
            // CLI; full-scale i32 makes the MP3 byte-identical to `lame` on the same PCM. The
            // power-of-two scaling is exact, and `as` saturates resampler overshoot at full scale.
            int.extend(
                plane[range.clone()]
                    .iter()
                    .map(|&x| (x * 2_147_483_648.0) as i32),
            );
        }
        let result = if self.channels == 1 {
            self.lame
                .encode_to_vec(MonoPcm(&self.ints[0][..]), &mut self.buf)
        } else {
            let input = DualPcm {
                left: &self.ints[0][..],
                right: &self.ints[1][..],
            };
            self.lame.encode_to_vec(input, &mut self.buf)
        };
        result.map_err(|e| anyhow!("LAME failed to encode: {e}"))?;
        self.out.write_all(&self.buf).context("writing the MP3")?;
        self.frames += frames as u64;
        Ok(())
    }

    /// Flush LAME and write the info frame in place. Returns the number of frames encoded.
    pub(super) fn finish(mut self) -> anyhow::Result<u64> {
        self.buf.clear();
        self.buf.reserve(max_required_buffer_size(0));
        // The gap-less flush variant keeps LAME's last buffered samples for a next track; the
        // plain one pads with silence and emits everything.
        self.lame
            .flush_to_vec::<FlushGap>(&mut self.buf)
            .map_err(|e| anyhow!("LAME failed to flush: {e}"))?;
        self.out.write_all(&self.buf).context("writing the MP3")?;
        let file = self
            .out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .context("writing the MP3")?;
        let end = file.stream_position().context("finding the MP3's end")?;

        let mut tag = Vec::with_capacity(self.lame.lame_tag_size());
        let tag_len = self
            .lame
            .lame_tag_encode_to_vec(&mut tag)
            .context("LAME produced no info frame")?
            .get();
        if self.start + tag_len as u64 > end {
            bail!("LAME's info frame ({tag_len} bytes) is larger than the whole MP3 ({end} bytes)");
        }
        // Overwrite, never insert: an extra frame would add 1152 samples of silence.
        file.seek(SeekFrom::Start(self.start))
            .context("seeking to the MP3's info frame")?;
        file.write_all(&tag)
            .context("writing the MP3's info frame")?;
        file.seek(SeekFrom::Start(end))
            .context("seeking to the MP3's end")?;
        Ok(self.frames)
    }
}

fn configure(quality: Quality, rate: u32, channels: usize) -> Result<Encoder, String> {
    let err = |what: &str, e: mp3lame_encoder::BuildError| format!("{what}: {e}");
    let mut b = Builder::new().ok_or("LAME could not allocate an encoder")?;
    b.set_num_channels(if channels == 1 { 1 } else { 2 })
        .map_err(|e| err("channels", e))?;
    b.set_sample_rate(rate).map_err(|e| err("input rate", e))?;
    // Pin the output rate: left to itself LAME resamples low bitrates down to 32 kHz or less.
    b.set_output_sample_rate(std::num::NonZeroU32::new(rate))
        .map_err(|e| err("output rate", e))?;
    b.set_mode(if channels == 1 {
        Mode::Mono
    } else {
        Mode::JointStereo
    })
    .map_err(|e| err("mode", e))?;
    b.set_to_write_vbr_tag(true)
        .map_err(|e| err("info tag", e))?;
    // SAFETY: the pointer is the builder's live LAME handle; LAME only stores the flag. We write
    // no ID3 from LAME, so its placeholder frame is the very first thing in the file.
    unsafe { mp3lame_encoder::ffi::lame_set_write_id3tag_automatic(b.as_ptr(), 0) };
    match quality {
        Quality::Vbr(n) => {
            b.set_vbr_mode(VbrMode::Mtrh)
                .map_err(|e| err("VBR mode", e))?;
            b.set_vbr_quality(vbr_quality(n)?)
                .map_err(|e| err("VBR quality", e))?;
        }
        Quality::Cbr(k) => {
            b.set_vbr_mode(VbrMode::Off)
                .map_err(|e| err("CBR mode", e))?;
            b.set_brate(cbr_bitrate(k)?)
                .map_err(|e| err("bitrate", e))?;
        }
        Quality::Abr(k) => {
            b.set_vbr_mode(VbrMode::Abr)
                .map_err(|e| err("ABR mode", e))?;
            // SAFETY: as above; the crate has no safe setter for the ABR target.
            let res = unsafe {
                mp3lame_encoder::ffi::lame_set_VBR_mean_bitrate_kbps(b.as_ptr(), i32::from(k))
            };
            if res < 0 {
                return Err(format!("ABR bitrate {k}: error code {res}"));
            }
        }
    }
    b.build().map_err(|e| err("initialisation", e))
}

fn vbr_quality(n: u8) -> Result<mp3lame_encoder::Quality, String> {
    use mp3lame_encoder::Quality as Q;
    Ok(match n {
        0 => Q::Best,
        1 => Q::SecondBest,
        2 => Q::NearBest,
        3 => Q::VeryNice,
        4 => Q::Nice,
        5 => Q::Good,
        6 => Q::Decent,
        7 => Q::Ok,
        8 => Q::SecondWorst,
        9 => Q::Worst,
        _ => return Err(format!("VBR quality {n} is not 0..=9")),
    })
}

fn cbr_bitrate(k: u16) -> Result<Bitrate, String> {
    Ok(match k {
        320 => Bitrate::Kbps320,
        256 => Bitrate::Kbps256,
        192 => Bitrate::Kbps192,
        128 => Bitrate::Kbps128,
        _ => return Err(format!("CBR bitrate {k} is not one of 320, 256, 192, 128")),
    })
}
