//! The overlap-add that ends a transposed convolution whose kernel is twice its stride.
//!
//! Its matrix product gives, per input step t and output channel c, the 2s taps
//! `z[t, c, 0..2s]`; output samples `t*s .. t*s + s` of channel c are the first half of step t
//! plus the second half of step t - 1 (for t = 0: of the previous call, carried as `partial`).
//! PyTorch needs a transposing copy and an add over strided views for this; here it is one pass
//! that reads z in order and writes each channel's run of samples, in the same order of
//! additions (so the same bits): `(first + second) + bias`, and for t = 0
//! `(first + bias) + partial`. The new partial is `(second_of_last_step + bias) - bias`.

use crate::error::{check_len, KernelError, Result};

/// Input steps per block: their taps (steps x channels x 2 stride) stay in L2.
const STEP_BLOCK: usize = 32;

/// Shapes of one overlap-add: batch, steps, channels and stride.
#[derive(Debug, Clone, Copy)]
pub struct Overlap {
    pub batch: usize,
    pub steps: usize,
    pub channels: usize,
    pub stride: usize,
}

impl Overlap {
    /// `z (batch, steps, channels, 2 stride)` -> `out (batch, channels, steps * stride)` and the
    /// carried `next_partial (batch, channels, stride)`; `partial` likewise or None (zeros),
    /// `bias (channels)` or None.
    pub fn apply(
        &self,
        z: &[f32],
        bias: Option<&[f32]>,
        partial: Option<&[f32]>,
        out: &mut [f32],
        next_partial: &mut [f32],
    ) -> Result<()> {
        let (b, t, c, s) = (self.batch, self.steps, self.channels, self.stride);
        if t == 0 || s == 0 {
            return Err(KernelError::InvalidArgument {
                what: "steps and stride",
                value: format!("{t} steps, stride {s}"),
            });
        }
        check_len("z", b * t * c * 2 * s, z.len())?;
        check_len("out", b * c * t * s, out.len())?;
        check_len("next partial", b * c * s, next_partial.len())?;
        if let Some(p) = partial {
            check_len("partial", b * c * s, p.len())?;
        }
        if let Some(bias) = bias {
            check_len("bias", c, bias.len())?;
        }
        for item in 0..b {
            let z = &z[item * t * c * 2 * s..(item + 1) * t * c * 2 * s];
            let out = &mut out[item * c * t * s..(item + 1) * c * t * s];
            let carried = partial.map(|p| &p[item * c * s..(item + 1) * c * s]);
            let next = &mut next_partial[item * c * s..(item + 1) * c * s];
            let taps =
                |step: usize, ch: usize| &z[(step * c + ch) * 2 * s..(step * c + ch + 1) * 2 * s];
            // step 0: its first half, the bias, then what the previous call carried
            for ch in 0..c {
                let b = bias.map_or(0.0, |b| b[ch]);
                let dst = &mut out[ch * t * s..ch * t * s + s];
                for (j, (d, &a)) in dst.iter_mut().zip(&taps(0, ch)[..s]).enumerate() {
                    let y = a + b;
                    *d = carried.map_or(y, |p| y + p[ch * s + j]);
                }
            }
            // later steps in blocks whose taps stay in cache while every channel takes its
            // share; each step's 2s taps are one contiguous run: first half now, second half
            // (in the next step's output) later
            let width = c * 2 * s;
            for block in (1..t).step_by(STEP_BLOCK) {
                let steps = block..(block + STEP_BLOCK).min(t);
                for ch in 0..c {
                    let b = bias.map_or(0.0, |b| b[ch]);
                    let row = &mut out[ch * t * s + steps.start * s..ch * t * s + steps.end * s];
                    let previous = z[(steps.start - 1) * width..(steps.end - 1) * width]
                        .chunks_exact(width)
                        .map(|step| &step[ch * 2 * s + s..(ch + 1) * 2 * s]);
                    let current = z[steps.start * width..steps.end * width]
                        .chunks_exact(width)
                        .map(|step| &step[ch * 2 * s..ch * 2 * s + s]);
                    for ((dst, now), before) in row.chunks_exact_mut(s).zip(current).zip(previous) {
                        for ((d, &a), &p) in dst.iter_mut().zip(now).zip(before) {
                            *d = (a + p) + b;
                        }
                    }
                }
            }
            for ch in 0..c {
                let b = bias.map_or(0.0, |b| b[ch]);
                let last = &taps(t - 1, ch)[s..];
                for (n, &v) in next[ch * s..(ch + 1) * s].iter_mut().zip(last) {
                    *n = match bias {
                        Some(_) => (v + b) - b,
                        None => v,
                    };
                }
            }
        }
        Ok(())
    }
}
