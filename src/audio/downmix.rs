//! Channel reduction to what MP3 carries: mono and stereo pass through untouched, anything wider
//! is folded down to stereo with ITU-R BS.775 style coefficients.
//!
//! The speakers are those of the file's own layout: a FLAC's `WAVEFORMATEXTENSIBLE_CHANNEL_MASK`
//! tag (read in `flac_quirks`), else the codec's default order for the channel count.
//!
//! Coefficients by speaker position, as ffmpeg's downmix uses them: front left/right (and their
//! wide or left/right-of-centre neighbours) 1.0 to their own side; centre channels (front, top
//! centre) 0.7071 (-3 dB) to both sides; back centre 0.5 (-3 dB surround, split) to both sides;
//! surround, side, top and bottom channels 0.7071 to their own side (ffmpeg drops top channels;
//! we never drop a channel silently); LFE dropped, as BS.775 does. The matrix is then divided by
//! the larger per-side sum, so a full-scale signal on every channel at once still cannot clip
//! (5.1: L = 0.414 L + 0.293 C + 0.293 Ls).

use anyhow::bail;
use symphonia::core::audio::{ChannelLabel, Channels, Position};

const MINUS_3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Where one source channel goes: gain into the left and right outputs.
type Gains = [f32; 2];

pub(super) struct Downmix {
    /// `None` for mono/stereo passthrough, else one pair of gains per source channel.
    matrix: Option<Vec<Gains>>,
    output_channels: usize,
    out: Vec<Vec<f32>>,
}

impl Downmix {
    pub(super) fn new(channels: &Channels, count: usize) -> anyhow::Result<Self> {
        if count <= 2 {
            return Ok(Downmix {
                matrix: None,
                output_channels: count,
                out: Vec::new(),
            });
        }
        let gains = source_gains(channels, count)?;
        Ok(Downmix {
            matrix: Some(normalise(gains)),
            output_channels: 2,
            out: vec![Vec::new(), Vec::new()],
        })
    }

    pub(super) fn output_channels(&self) -> usize {
        self.output_channels
    }

    /// Mix the first `frames` samples of `input`; the result's planes hold at least `frames`.
    pub(super) fn apply<'a>(&'a mut self, input: &'a [Vec<f32>], frames: usize) -> &'a [Vec<f32>] {
        let Some(matrix) = &self.matrix else {
            return input;
        };
        for (side, out) in self.out.iter_mut().enumerate() {
            out.clear();
            out.resize(frames, 0.0);
            for (plane, gains) in input.iter().zip(matrix) {
                let gain = gains[side];
                if gain != 0.0 {
                    for (o, &s) in out.iter_mut().zip(&plane[..frames]) {
                        *o += gain * s;
                    }
                }
            }
        }
        &self.out
    }
}

/// Un-normalised gains for each source channel, in buffer order.
fn source_gains(channels: &Channels, count: usize) -> anyhow::Result<Vec<Gains>> {
    let positions: Vec<Option<Position>> = match channels {
        // Symphonia stores positioned channels in ascending bit order.
        Channels::Positioned(mask) => mask.iter().map(Some).collect(),
        Channels::Custom(labels) => labels
            .iter()
            .map(|l| match l {
                ChannelLabel::Positioned(p) => Some(*p),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let positions = if positions.len() == count && positions.iter().any(Option::is_some) {
        positions
    } else {
        match flac_default_layout(count) {
            Some(layout) => layout.iter().copied().map(Some).collect(),
            None => bail!("cannot downmix {count} channels with no known speaker layout"),
        }
    };
    Ok(positions.into_iter().map(gains_for).collect())
}

/// FLAC's channel order for a count when nothing says otherwise (also WAV's default order).
fn flac_default_layout(count: usize) -> Option<&'static [Position]> {
    use Position as P;
    const L: P = P::FRONT_LEFT;
    const R: P = P::FRONT_RIGHT;
    const C: P = P::FRONT_CENTER;
    const LFE: P = P::LFE1;
    Some(match count {
        3 => &[L, R, C],
        4 => &[L, R, P::REAR_LEFT, P::REAR_RIGHT],
        5 => &[L, R, C, P::REAR_LEFT, P::REAR_RIGHT],
        6 => &[L, R, C, LFE, P::REAR_LEFT, P::REAR_RIGHT],
        7 => &[L, R, C, LFE, P::REAR_CENTER, P::SIDE_LEFT, P::SIDE_RIGHT],
        8 => &[
            L,
            R,
            C,
            LFE,
            P::REAR_LEFT,
            P::REAR_RIGHT,
            P::SIDE_LEFT,
            P::SIDE_RIGHT,
        ],
        _ => return None,
    })
}

fn gains_for(position: Option<Position>) -> Gains {
    use Position as P;
    let Some(p) = position else {
        // An unlabelled channel still belongs in the mix; the centre is the neutral place.
        return [MINUS_3DB, MINUS_3DB];
    };
    let front_left = P::FRONT_LEFT | P::FRONT_LEFT_CENTER | P::FRONT_LEFT_WIDE;
    let front_right = P::FRONT_RIGHT | P::FRONT_RIGHT_CENTER | P::FRONT_RIGHT_WIDE;
    let other_left = P::REAR_LEFT
        | P::SIDE_LEFT
        | P::TOP_FRONT_LEFT
        | P::TOP_REAR_LEFT
        | P::TOP_SIDE_LEFT
        | P::BOTTOM_FRONT_LEFT;
    let other_right = P::REAR_RIGHT
        | P::SIDE_RIGHT
        | P::TOP_FRONT_RIGHT
        | P::TOP_REAR_RIGHT
        | P::TOP_SIDE_RIGHT
        | P::BOTTOM_FRONT_RIGHT;
    if front_left.contains(p) {
        [1.0, 0.0]
    } else if front_right.contains(p) {
        [0.0, 1.0]
    } else if other_left.contains(p) {
        [MINUS_3DB, 0.0]
    } else if other_right.contains(p) {
        [0.0, MINUS_3DB]
    } else if (P::LFE1 | P::LFE2).contains(p) {
        [0.0, 0.0]
    } else if p == P::REAR_CENTER {
        [0.5, 0.5]
    } else {
        [MINUS_3DB, MINUS_3DB]
    }
}

/// Scale so that neither output can exceed full scale when every input is at full scale.
fn normalise(mut gains: Vec<Gains>) -> Vec<Gains> {
    let left: f32 = gains.iter().map(|g| g[0]).sum();
    let right: f32 = gains.iter().map(|g| g[1]).sum();
    let peak = left.max(right);
    if peak > 0.0 {
        for g in &mut gains {
            g[0] /= peak;
            g[1] /= peak;
        }
    }
    gains
}

#[cfg(test)]
mod tests {
    use super::*;
    use symphonia::core::audio::layouts;

    fn matrix(channels: &Channels, count: usize) -> Vec<Gains> {
        Downmix::new(channels, count).unwrap().matrix.unwrap()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn mono_and_stereo_pass_through() {
        let mut mono = Downmix::new(&layouts::CHANNEL_LAYOUT_MONO, 1).unwrap();
        assert_eq!(mono.output_channels(), 1);
        let input = vec![vec![0.5f32, -0.25]];
        assert_eq!(mono.apply(&input, 2), &input[..]);
        let stereo = Downmix::new(&Channels::Discrete(2), 2).unwrap();
        assert_eq!(stereo.output_channels(), 2);
        assert!(stereo.matrix.is_none());
    }

    #[test]
    fn five_one_uses_bs775_and_drops_lfe() {
        let m = matrix(&layouts::CHANNEL_LAYOUT_5P1, 6);
        // Buffer order for the 5.1 mask: FL FR FC LFE RL RR.
        let k = 1.0 + 2.0 * MINUS_3DB;
        let expected = [
            [1.0 / k, 0.0],
            [0.0, 1.0 / k],
            [MINUS_3DB / k, MINUS_3DB / k],
            [0.0, 0.0],
            [MINUS_3DB / k, 0.0],
            [0.0, MINUS_3DB / k],
        ];
        for (got, want) in m.iter().zip(expected) {
            assert!(close(got[0], want[0]) && close(got[1], want[1]), "{m:?}");
        }
    }

    #[test]
    fn normalised_sums_never_exceed_one() {
        for count in 3..=8 {
            let m = matrix(&Channels::Discrete(count as u16), count);
            for side in 0..2 {
                let sum: f32 = m.iter().map(|g| g[side]).sum();
                assert!(close(sum, 1.0), "{count} channels, side {side}: {sum}");
            }
            // Every non-LFE channel contributes somewhere.
            let silent = m.iter().filter(|g| g[0] == 0.0 && g[1] == 0.0).count();
            assert_eq!(silent, usize::from(count >= 6), "{count}: {m:?}");
        }
    }

    #[test]
    fn full_scale_on_every_channel_does_not_clip() {
        let mut mix = Downmix::new(&layouts::CHANNEL_LAYOUT_7P1, 8).unwrap();
        let input = vec![vec![1.0f32, -1.0, 0.0]; 8];
        let out = mix.apply(&input, 3).to_vec();
        assert_eq!(out.len(), 2);
        for plane in &out {
            assert!(close(plane[0], 1.0) && close(plane[1], -1.0) && plane[2] == 0.0);
        }
    }

    #[test]
    fn three_channel_default_is_l_r_c() {
        let mut mix = Downmix::new(&Channels::None, 3).unwrap();
        // Only the centre channel carries signal: it lands equally on both sides.
        let input = vec![vec![0.0f32; 4], vec![0.0; 4], vec![1.0; 4]];
        let out = mix.apply(&input, 4);
        let k = 1.0 + MINUS_3DB;
        assert!(close(out[0][0], MINUS_3DB / k) && close(out[1][3], MINUS_3DB / k));
        // Only the left channel: nothing leaks right.
        let input = vec![vec![1.0f32; 4], vec![0.0; 4], vec![0.0; 4]];
        let out = mix.apply(&input, 2);
        assert!(close(out[0][1], 1.0 / k) && out[1][0] == 0.0 && out[0].len() == 2);
    }

    #[test]
    fn back_centre_is_split_at_half_level() {
        // 4.0 (mask 0x107): FL FR FC BC; every channel lands on both sides as it should.
        let layout = Position::from_wave_channel_mask(0x107).unwrap();
        let m = matrix(&Channels::Positioned(layout), 4);
        let k = 1.0 + MINUS_3DB + 0.5;
        let expected = [
            [1.0 / k, 0.0],
            [0.0, 1.0 / k],
            [MINUS_3DB / k, MINUS_3DB / k],
            [0.5 / k, 0.5 / k],
        ];
        for (got, want) in m.iter().zip(expected) {
            assert!(close(got[0], want[0]) && close(got[1], want[1]), "{m:?}");
        }
    }

    #[test]
    fn too_many_unlabelled_channels_is_an_error() {
        assert!(Downmix::new(&Channels::Discrete(9), 9).is_err());
    }
}
