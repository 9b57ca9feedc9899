//! Sample-rate conversion to a rate MP3 (MPEG-1 layer III) carries well: the output-rate rule,
//! and a streaming wrapper around rubato's FFT resampler that yields exactly
//! round(frames × out / in) frames, aligned with the input (the resampler's latency trimmed,
//! its tail flushed with silence).

use std::ops::Range;

use anyhow::Context;
use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler, WindowFunction};

/// The MP3 sample rate for a source rate.
///
/// - 44100 and 48000 pass through.
/// - The 44.1 kHz family (any multiple of 11025 Hz: 11025, 22050, 88200, 176400, 352800…)
///   → 44100, a simple integer ratio.
/// - The 48 kHz family (any multiple of 4000 Hz: 8000, 12000, 16000, 24000, 32000, 96000,
///   192000…) → 48000, likewise.
/// - Any other rate (35467, 39000…) → 44100, the most widely supported rate.
///
/// Lower MPEG-2/2.5 rates are never chosen: they cut the bandwidth for no gain in a mirror
/// meant for listening.
pub fn output_rate(source_rate: u32) -> u32 {
    match source_rate {
        44_100 | 48_000 => source_rate,
        r if r % 11_025 == 0 => 44_100,
        r if r % 4_000 == 0 => 48_000,
        _ => 44_100,
    }
}

/// The number of output frames a source of `frames` frames maps to, rounded to nearest, and never
/// zero for a source that has audio: a 1-frame 192 kHz file still gives one frame, not an MP3
/// with nothing in it.
pub(super) fn output_frames(frames: u64, in_rate: u32, out_rate: u32) -> u64 {
    let scaled = u128::from(frames) * u128::from(out_rate);
    let rate = u128::from(in_rate);
    let rounded = u64::try_from((scaled + rate / 2) / rate).unwrap_or(u64::MAX);
    if frames > 0 { rounded.max(1) } else { 0 }
}

/// Target FFT block on the input side: at ~1024 frames the anti-aliasing filter's cutoff sits
/// at ~98.7% of Nyquist while the working set stays around 100 kB.
const TARGET_BLOCK: usize = 1024;
/// The most output frames one FFT block may make. Only absurd upsampling ratios reach it (a
/// 1 Hz source would otherwise need a 45-million-point FFT and gigabytes); they get a smaller
/// input block instead.
const MAX_OUT_BLOCK: usize = 1 << 18;

/// Receives resampled audio: the planes and the valid frame range within them.
pub(super) type Sink<'a> = dyn FnMut(&[Vec<f32>], Range<usize>) -> anyhow::Result<()> + 'a;

pub(super) struct StreamResampler {
    resampler: Fft<f32>,
    in_rate: u32,
    out_rate: u32,
    channels: usize,
    /// Input frames per resampler call (one FFT block).
    chunk: usize,
    /// Input gathered until a full chunk is there (packets come in any size).
    staged: Vec<Vec<f32>>,
    staged_frames: usize,
    out: Vec<Vec<f32>>,
    /// Leading output frames still to drop: the resampler's latency.
    to_skip: usize,
    emitted: u64,
}

impl StreamResampler {
    pub(super) fn new(in_rate: u32, out_rate: u32, channels: usize) -> anyhow::Result<Self> {
        let chunk = block_size(in_rate, out_rate);
        let resampler = Fft::<f32>::new_custom(
            in_rate as usize,
            out_rate as usize,
            chunk,
            1,
            channels,
            WindowFunction::BlackmanHarris2,
            FixedSync::Input,
        )
        .with_context(|| format!("setting up resampling from {in_rate} Hz to {out_rate} Hz"))?;
        debug_assert_eq!(resampler.fft_size_in(), chunk);
        let to_skip = resampler.output_delay();
        let out = vec![vec![0.0; resampler.output_frames_max()]; channels];
        Ok(StreamResampler {
            resampler,
            in_rate,
            out_rate,
            channels,
            chunk,
            staged: vec![vec![0.0; chunk]; channels],
            staged_frames: 0,
            out,
            to_skip,
            emitted: 0,
        })
    }

    /// Feed the first `frames` frames of `input`.
    pub(super) fn push(
        &mut self,
        input: &[Vec<f32>],
        frames: usize,
        sink: &mut Sink<'_>,
    ) -> anyhow::Result<()> {
        let mut done = 0;
        while done < frames {
            let take = (self.chunk - self.staged_frames).min(frames - done);
            for (staged, plane) in self.staged.iter_mut().zip(input) {
                staged[self.staged_frames..self.staged_frames + take]
                    .copy_from_slice(&plane[done..done + take]);
            }
            self.staged_frames += take;
            done += take;
            if self.staged_frames == self.chunk {
                self.process(self.chunk, u64::MAX, sink)?;
            }
        }
        Ok(())
    }

    /// End of input after `source_frames` frames in total: flush the resampler's tail with
    /// silence and stop at exactly the rounded output length. Returns that length.
    pub(super) fn finish(
        &mut self,
        source_frames: u64,
        sink: &mut Sink<'_>,
    ) -> anyhow::Result<u64> {
        let target = output_frames(source_frames, self.in_rate, self.out_rate);
        // The partial last chunk is zero-padded by rubato, then empty (all-silence) chunks
        // push the remaining real output out of the filter.
        let mut partial = self.staged_frames;
        while self.emitted < target {
            self.process(partial, target, sink)?;
            partial = 0;
        }
        self.staged_frames = 0;
        Ok(self.emitted)
    }

    /// Run one chunk of which the first `valid` staged frames are real, emitting at most up to
    /// `limit` frames in total.
    fn process(&mut self, valid: usize, limit: u64, sink: &mut Sink<'_>) -> anyhow::Result<()> {
        let input = SequentialSliceOfVecs::new(&self.staged, self.channels, self.chunk)
            .context("resampler input buffer")?;
        let out_len = self.out[0].len();
        let mut output = SequentialSliceOfVecs::new_mut(&mut self.out, self.channels, out_len)
            .context("resampler output buffer")?;
        let indexing = (valid < self.chunk).then(|| Indexing::new().partial_len(valid));
        let (_, produced) = self
            .resampler
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .context("resampling")?;
        self.staged_frames = 0;

        let skip = self.to_skip.min(produced);
        self.to_skip -= skip;
        let wanted = usize::try_from(limit - self.emitted).unwrap_or(usize::MAX);
        let end = produced.min(skip.saturating_add(wanted));
        if end > skip {
            sink(&self.out, skip..end)?;
            self.emitted += (end - skip) as u64;
        }
        Ok(())
    }
}

/// The FFT block (input frames) for a rate pair: a whole number of the smallest blocks the ratio
/// allows, near [`TARGET_BLOCK`], and even on both sides. Rubato centres its filter on frame
/// `n / 2` but reports a delay of `n_out / 2`; with an odd block they disagree by half an input
/// frame, which would shift the whole output by a fraction of a sample.
fn block_size(in_rate: u32, out_rate: u32) -> usize {
    let (mut a, mut b) = (in_rate, out_rate);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let (min_in, min_out) = ((in_rate / a) as usize, (out_rate / a) as usize);
    let mut blocks = TARGET_BLOCK
        .div_ceil(min_in)
        .min((MAX_OUT_BLOCK / min_out).max(1));
    if blocks % 2 == 1 && (min_in % 2 == 1 || min_out % 2 == 1) {
        blocks += 1;
    }
    blocks * min_in
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_rate_rule() {
        for (from, to) in [
            (44_100, 44_100),
            (48_000, 48_000),
            (22_050, 44_100),
            (11_025, 44_100),
            (88_200, 44_100),
            (176_400, 44_100),
            (352_800, 44_100),
            (8_000, 48_000),
            (12_000, 48_000),
            (16_000, 48_000),
            (24_000, 48_000),
            (32_000, 48_000),
            (96_000, 48_000),
            (192_000, 48_000),
            (384_000, 48_000),
            (35_467, 44_100),
            (39_000, 44_100),
            (1, 44_100),
        ] {
            assert_eq!(output_rate(from), to, "{from}");
        }
    }

    #[test]
    fn output_frames_rounds_to_nearest() {
        assert_eq!(output_frames(0, 96_000, 48_000), 0);
        assert_eq!(output_frames(1, 96_000, 48_000), 1); // 0.5 rounds up
        assert_eq!(output_frames(3, 96_000, 48_000), 2);
        assert_eq!(output_frames(1, 35_467, 44_100), 1);
        assert_eq!(output_frames(100, 35_467, 44_100), 124); // 124.34
        assert_eq!(output_frames(u64::MAX / 2, 8_000, 48_000), u64::MAX);
    }

    // Regression: a 1-sample 192 kHz source rounded to 0 frames and was refused as empty.
    #[test]
    fn a_source_too_short_for_its_ratio_still_gives_one_frame() {
        assert_eq!(output_frames(1, 192_000, 44_100), 1);
        assert_eq!(output_frames(1, 352_800, 44_100), 1);
        assert_eq!(output_frames(2, 384_000, 48_000), 1);
        let out = run(192_000, 44_100, 1, 1000.0);
        assert_eq!(out[0].len(), 1);
        assert!(out[0][0].is_finite());
    }

    /// Resample `frames` frames of a slow ramp fed in awkward packet sizes; return the output.
    fn run(in_rate: u32, out_rate: u32, frames: usize, freq: f64) -> Vec<Vec<f32>> {
        let mut r = StreamResampler::new(in_rate, out_rate, 2).unwrap();
        let mut out = vec![Vec::new(), Vec::new()];
        let mut sink = |planes: &[Vec<f32>], range: Range<usize>| {
            for (o, p) in out.iter_mut().zip(planes) {
                o.extend_from_slice(&p[range.clone()]);
            }
            Ok(())
        };
        let signal: Vec<f32> = (0..frames)
            .map(|i| (0.5 * (i as f64 * freq).sin()) as f32)
            .collect();
        let input = [signal.clone(), signal];
        let mut pos = 0;
        for size in [1, 725, 4096, 16, 3000].iter().cycle() {
            if pos >= frames {
                break;
            }
            let n = (*size).min(frames - pos);
            let block: Vec<Vec<f32>> = input.iter().map(|p| p[pos..pos + n].to_vec()).collect();
            r.push(&block, n, &mut sink).unwrap();
            pos += n;
        }
        let total = r.finish(frames as u64, &mut sink).unwrap();
        assert_eq!(total as usize, out[0].len());
        out
    }

    #[test]
    fn frame_counts_are_exact() {
        for (from, to) in [
            (96_000, 48_000),
            (22_050, 44_100),
            (35_467, 44_100),
            (39_000, 44_100),
            (88_200, 44_100),
            (32_000, 48_000),
        ] {
            for frames in [0usize, 1, 2, 100, 1023, 1024, 1025, 20_000] {
                let out = run(from, to, frames, 0.001);
                let want = output_frames(frames as u64, from, to) as usize;
                assert_eq!(out[0].len(), want, "{from}->{to}, {frames} frames");
                assert_eq!(out[1].len(), want);
            }
        }
    }

    #[test]
    fn output_is_aligned_with_input() {
        // A sine well inside the passband survives resampling nearly unchanged and at the same
        // time position: an untrimmed latency, or even a fraction of a sample's shift, would
        // show as a large error.
        for (from, to) in [
            (96_000, 48_000),
            (22_050, 44_100),
            (35_467, 44_100),
            (39_000, 44_100),
            (11_025, 44_100),
        ] {
            let freq = 0.05; // radians per input frame: 764 Hz at 96 kHz, 282 Hz at 35467 Hz
            let out = run(from, to, 100_000, freq);
            let step = freq * f64::from(from) / f64::from(to);
            // Away from both ends, where the abrupt start and stop of the sine ring.
            let end = out[0].len() - 500;
            for (i, &v) in out[0].iter().enumerate().take(end).skip(500) {
                let expected = (0.5 * (i as f64 * step).sin()) as f32;
                assert!(
                    (v - expected).abs() < 5e-4,
                    "{from}->{to} frame {i}: {v} vs {expected}"
                );
            }
        }
    }

    /// Regression: a 1 Hz FLAC took 45 s and 2.5 GB, for a 45-million-frame FFT block.
    #[test]
    fn absurd_upsampling_stays_small_and_exact() {
        for (from, frames) in [(1, 10), (7, 50), (300, 1000)] {
            let n_out = block_size(from, 44_100) as u64 * 44_100 / u64::from(from);
            assert!(n_out <= 2 * MAX_OUT_BLOCK as u64, "{from} Hz: {n_out}");
            let out = run(from, 44_100, frames, 0.1);
            let want = output_frames(frames as u64, from, 44_100) as usize;
            assert_eq!(out[0].len(), want, "{from} Hz");
        }
    }

    #[test]
    fn blocks_are_even_on_both_sides() {
        for (from, to) in [
            (35_467, 44_100),
            (39_000, 44_100),
            (96_000, 48_000),
            (1, 44_100),
        ] {
            let n = block_size(from, to);
            let n_out = n as u64 * u64::from(to) / u64::from(from);
            assert!(
                n.is_multiple_of(2) && n_out.is_multiple_of(2),
                "{from}->{to}: {n} -> {n_out}"
            );
        }
    }
}
