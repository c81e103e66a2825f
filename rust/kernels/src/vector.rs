//! Float vector helpers of the one-position transformer step and the activations: dot products,
//! a layer norm, a softmax, and a tanh GELU and an ELU built on a polynomial `exp`.
//!
//! Each is written so the compiler can vectorize it without reordering float operations: sums
//! run in `LANES` interleaved partial sums combined in a fixed order, and elementwise work has
//! no branches. They are inlined into `step` and `activation`, each compiled once with AVX2
//! enabled and once without; both give the same bits.

/// Partial sums per reduction: one AVX2 register of f32.
const LANES: usize = 8;

/// Adds `LANES` partial sums in a fixed tree order.
#[inline(always)]
fn combine(acc: [f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `sum(a[i] * b[i])` over the shorter length.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    combine(acc) + tail
}

#[inline(always)]
fn sum_with(a: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = a.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for x in chunks {
        for i in 0..LANES {
            acc[i] += f(x[i]);
        }
    }
    combine(acc) + tail
}

/// `e^x` to within ~2 ulp for finite x; inputs are clamped to [-87, 88] (so `e^-inf` is about
/// 1.6e-38, not 0), NaN stays NaN. Range reduction x = n ln 2 + r with |r| <= ln 2 / 2, a
/// degree-6 polynomial for e^r, and 2^n put straight into the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // ln 2 split so n * LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + MAGIC;
    let n = shifted - MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = (p * r) * r + r + 1.0;
    // the integer n sits in the low mantissa bits of `shifted`
    let n_bits = shifted.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    e_r * f32::from_bits((n_bits + 127).wrapping_shl(23) as u32)
}

/// In place: `(x - mean) / sqrt(var + eps) * weight + bias`, the biased variance over `x`.
#[inline(always)]
pub(crate) fn layer_norm(x: &[f32], weight: &[f32], bias: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = sum_with(x, |v| v) / n;
    let var = sum_with(x, |v| (v - mean) * (v - mean)) / n;
    let rstd = 1.0 / (var + eps).sqrt();
    for (((o, &v), &w), &b) in out.iter_mut().zip(x).zip(weight).zip(bias) {
        *o = (v - mean) * rstd * w + b;
    }
}

/// In place: `e^(s - max) / sum`, over every score.
#[inline(always)]
pub(crate) fn softmax(scores: &mut [f32]) {
    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
    for s in scores.iter_mut() {
        *s = exp(*s - max);
    }
    let inv = 1.0 / sum_with(scores, |v| v);
    for s in scores.iter_mut() {
        *s *= inv;
    }
}

/// In place: the tanh GELU `x / 2 (1 + tanh(u))`, u = sqrt(2 / pi) (x + 0.044715 x^3), computed
/// as `x / (1 + e^(-2u))` (the same function, one exponential).
#[inline(always)]
pub(crate) fn gelu_tanh(x: &mut [f32]) {
    const K: f32 = 0.797_884_6; // sqrt(2 / pi)
    for v in x.iter_mut() {
        let u = K * (*v + 0.044_715 * *v * *v * *v);
        *v /= 1.0 + exp(-2.0 * u);
    }
}

/// In place: ELU (alpha 1), `x` where `x > 0`, else `e^x - 1`.
#[inline(always)]
pub(crate) fn elu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = elu_value(*v);
    }
}

/// ELU (alpha 1) of `src` into `dst` (the shorter length).
#[inline(always)]
pub(crate) fn elu_into(src: &[f32], dst: &mut [f32]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = elu_value(v);
    }
}

#[inline(always)]
fn elu_value(v: f32) -> f32 {
    let negative = exp(v.min(0.0)) - 1.0;
    if v <= 0.0 {
        negative
    } else {
        v // NaN stays NaN
    }
}

/// In place: SiLU, `x / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn silu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v /= 1.0 + exp(-*v);
    }
}

/// In place: `acc += scale * v`.
#[inline(always)]
pub(crate) fn add_scaled(acc: &mut [f32], scale: f32, v: &[f32]) {
    for (a, &b) in acc.iter_mut().zip(v) {
        *a += scale * b;
    }
}

/// In place: rotates pairs (2i, 2i + 1) of `x` by `turns` = [cos 0, sin 0, cos 1, sin 1, ...],
/// as the complex product (a + ib)(c + is).
#[inline(always)]
pub(crate) fn rotate_pairs(x: &mut [f32], turns: &[f32]) {
    for (pair, turn) in x.chunks_exact_mut(2).zip(turns.chunks_exact(2)) {
        let (a, b, c, s) = (pair[0], pair[1], turn[0], turn[1]);
        pair[0] = a * c - b * s;
        pair[1] = a * s + b * c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f32, want: f64, rel: f64) -> bool {
        (f64::from(got) - want).abs() <= rel * want.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn exp_is_within_a_few_ulp_over_its_range() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * (i as f32) / 200_000.0;
            let want = f64::from(x).exp();
            worst = worst.max((f64::from(exp(x)) - want).abs() / want);
        }
        assert!(
            worst < 3.0 * f64::from(f32::EPSILON),
            "max relative error {worst:e}"
        );
    }

    #[test]
    fn exp_clamps_the_tails_and_keeps_nan() {
        assert!(exp(f32::NEG_INFINITY) < 2e-38 && exp(f32::NEG_INFINITY) > 0.0);
        assert!(exp(1000.0).is_finite() && close(exp(1000.0), 88f64.exp(), 1e-6));
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn gelu_matches_the_tanh_formula() {
        let mut xs: Vec<f32> = (-400..=400).map(|i| i as f32 / 40.0).collect();
        let want: Vec<f64> = xs
            .iter()
            .map(|&x| {
                let x = f64::from(x);
                let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
                0.5 * x * (1.0 + u.tanh())
            })
            .collect();
        gelu_tanh(&mut xs);
        for (g, w) in xs.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-6 * (1.0 + w.abs()),
                "{g} vs {w}"
            );
        }
    }

    #[test]
    fn elu_matches_its_definition() {
        let xs: Vec<f32> = (-600..=600).map(|i| i as f32 / 37.0).collect();
        let mut got = xs.clone();
        elu(&mut got);
        for (g, &x) in got.iter().zip(&xs) {
            let want = if x > 0.0 {
                f64::from(x)
            } else {
                f64::from(x).exp_m1()
            };
            // e^x - 1 loses relative precision near 0-, as PyTorch's own float ELU: absolute
            assert!(
                (f64::from(*g) - want).abs() <= 2e-7 * (1.0 + want.abs()),
                "{x}: {g}"
            );
        }
        let mut nan = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        elu(&mut nan);
        assert!(nan[0].is_nan() && nan[1] == f32::INFINITY);
        assert!((nan[2] + 1.0).abs() < 1e-30);
    }

    #[test]
    fn silu_matches_its_definition() {
        let xs: Vec<f32> = (-500..=500).map(|i| i as f32 / 23.0).collect();
        let mut got = xs.clone();
        silu(&mut got);
        for (g, &x) in got.iter().zip(&xs) {
            let want = f64::from(x) / (1.0 + (-f64::from(x)).exp());
            assert!(
                (f64::from(*g) - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{x}: {g}"
            );
        }
    }

    #[test]
    fn layer_norm_matches_f64() {
        let x: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 101) as f32 / 9.0 - 3.0)
            .collect();
        let w: Vec<f32> = (0..37).map(|i| 0.5 + i as f32 / 37.0).collect();
        let b: Vec<f32> = (0..37).map(|i| i as f32 / 100.0 - 0.2).collect();
        let mut out = vec![0.0; 37];
        layer_norm(&x, &w, &b, 1e-5, &mut out);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        for i in 0..37 {
            let want =
                (f64::from(x[i]) - mean) / (var + 1e-5).sqrt() * f64::from(w[i]) + f64::from(b[i]);
            assert!(
                (f64::from(out[i]) - want).abs() < 1e-5,
                "{i}: {} vs {want}",
                out[i]
            );
        }
    }

    #[test]
    fn softmax_and_dot_match_f64() {
        let a: Vec<f32> = (0..21).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let b: Vec<f32> = (0..21).map(|i| (i as f32 * 0.11).cos()).collect();
        let want: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        assert!(close(dot(&a, &b), want, 1e-6));
        let mut p = a.clone();
        softmax(&mut p);
        let z: f64 = a.iter().map(|&v| f64::from(v).exp()).sum();
        for (g, &v) in p.iter().zip(&a) {
            assert!(close(*g, f64::from(v).exp() / z, 1e-6));
        }
    }

    #[test]
    fn rotation_is_the_complex_product() {
        let mut x = [1.0f32, 2.0, -3.0, 0.5];
        let (c0, s0, c1, s1) = (0.6f32, 0.8f32, 0.0f32, -1.0f32);
        rotate_pairs(&mut x, &[c0, s0, c1, s1]);
        assert_eq!(x, [1.0 * c0 - 2.0 * s0, 1.0 * s0 + 2.0 * c0, 0.5, 3.0]);
    }
}
