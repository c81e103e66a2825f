//! Float products for many short rows: `out (m, n) = x (m, k) wt (k, n) + bias`, the weight
//! stored input by input (`wt` row i holds every output's weight of input i).
//!
//! Where the dot-product kernel (`float`) sums each output over its row with eight partial sums
//! and then combines them, which costs as much as the sum itself when rows are a few dozen long
//! (SEANet's convolutions: 24 to 384 inputs), this one keeps a block of outputs in registers and
//! adds one input at a time to all of them. Each output is one chain of fused multiply-adds over
//! its inputs in order, then the bias: AVX2 + FMA and portable Rust (`mul_add`, the same single
//! rounding) give the same bits.
//!
//! The rows of `x` may be windows of a longer sequence (`Rows`): a causal convolution's row t
//! is its input's rows t, t + d, ..., t + (taps - 1) d side by side, read in place.
//!
//! Every output lives in one lane for its whole sum, so the vector width does not change the
//! order of additions: where the CPU has AVX-512 the `Avx2` path runs 16 lanes at a time, with
//! the same bits.

use crate::isa::Isa;

/// The rows of `x`: row t, input `j * width + c` is `data[(t + j * gap) * width + c]` for tap
/// j < taps. A plain matrix is one tap (`Rows::plain`).
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub data: &'a [f32],
    pub width: usize,
    pub taps: usize,
    pub gap: usize,
    pub count: usize,
}

impl<'a> Rows<'a> {
    /// The rows of a plain row-major `(data.len() / width, width)` matrix.
    pub fn plain(data: &'a [f32], width: usize) -> Self {
        Self {
            data,
            width,
            taps: 1,
            gap: 0,
            count: data.len() / width,
        }
    }

    fn inputs(&self) -> usize {
        self.taps * self.width
    }

    fn fits(&self) -> bool {
        self.width > 0
            && self.taps > 0
            && (self.count == 0
                || (self.count - 1 + (self.taps - 1) * self.gap + 1) * self.width
                    <= self.data.len())
    }
}

/// `out = x wt + bias` for `x` (m, k), `wt` (k, n), `bias` n (or none), `out` (m, n).
///
/// # Panics
/// If the lengths do not fit those shapes.
pub fn matmul_kn(
    isa: Isa,
    x: Rows<'_>,
    wt: &[f32],
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let k = x.inputs();
    assert!(x.fits() && wt.len() == k * n && out.len() == x.count * n);
    assert!(bias.is_none_or(|b| b.len() == n));
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` is only handed out where the CPU has AVX2 and FMA; the shapes
        // were checked just above; AVX-512F is checked at run time.
        Isa::Avx2 => unsafe {
            if std::arch::is_x86_feature_detected!("avx512f") {
                x86_512::matmul_kn(x, wt, n, bias, out)
            } else {
                x86::matmul_kn(x, wt, n, bias, out)
            }
        },
        _ => portable(x, wt, n, bias, out),
    }
}

/// One chain of `mul_add` per output (a library call with the same rounding as the
/// instruction).
fn portable(x: Rows<'_>, wt: &[f32], n: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    for (t, o) in out.chunks_exact_mut(n).enumerate() {
        for (col, o) in o.iter_mut().enumerate() {
            let mut s = 0.0f32;
            for j in 0..x.taps {
                let row = &x.data[(t + j * x.gap) * x.width..][..x.width];
                for (c, &v) in row.iter().enumerate() {
                    s = v.mul_add(wt[(j * x.width + c) * n + col], s);
                }
            }
            *o = s + bias.map_or(0.0, |b| b[col]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256, __m256i, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_maskload_ps,
        _mm256_maskstore_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32,
        _mm256_setzero_ps, _mm256_storeu_ps,
    };

    use super::Rows;

    /// Rows per register tile, and 8-wide output vectors per tile.
    const R: usize = 4;
    const V: usize = 2;

    /// Lanes `0..lanes` on (all eight for 8 or more).
    #[target_feature(enable = "avx2")]
    fn mask(lanes: usize) -> __m256i {
        if lanes >= 8 {
            return _mm256_set1_epi32(-1);
        }
        let on = |i: usize| if i < lanes { -1 } else { 0 };
        _mm256_setr_epi32(on(0), on(1), on(2), on(3), on(4), on(5), on(6), on(7))
    }

    /// One tile: rows r..r + ROWS, VECS blocks of 8 outputs from column `col`, the last block
    /// masked to `last` lanes (the masked-off lanes sum zeros and are not written).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn tile<const ROWS: usize, const VECS: usize, const MASKED: bool>(
        x: Rows<'_>,
        wt: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
        r: usize,
        col: usize,
        last: __m256i,
    ) {
        let mut acc = [[_mm256_setzero_ps(); VECS]; ROWS];
        let (xp, wp) = (x.data.as_ptr(), wt.as_ptr());
        let load = |p: *const f32, v: usize| -> __m256 {
            // SAFETY: the caller's columns col..col + 8 VECS are < n but for the last block,
            // which the mask keeps within n.
            unsafe {
                if MASKED && v + 1 == VECS {
                    _mm256_maskload_ps(p, last)
                } else {
                    _mm256_loadu_ps(p)
                }
            }
        };
        for j in 0..x.taps {
            for c in 0..x.width {
                let i = j * x.width + c;
                let w: [__m256; VECS] =
                    // SAFETY: weight row i holds n values.
                    std::array::from_fn(|v| load(unsafe { wp.add(i * n + col + 8 * v) }, v));
                for (dr, row) in acc.iter_mut().enumerate() {
                    // SAFETY: Rows::fits: row r + dr's tap j lies within the data.
                    let xv = unsafe { _mm256_set1_ps(*xp.add((r + dr + j * x.gap) * x.width + c)) };
                    for (a, &wv) in row.iter_mut().zip(&w) {
                        *a = _mm256_fmadd_ps(xv, wv, *a);
                    }
                }
            }
        }
        for (dr, row) in acc.iter().enumerate() {
            for (v, &a) in row.iter().enumerate() {
                let at = col + 8 * v;
                let sum = match bias {
                    Some(b) => _mm256_add_ps(a, load(b[at..].as_ptr(), v)),
                    None => a,
                };
                // SAFETY: `out` holds (m, n) values; the last block is masked within n.
                unsafe {
                    let p = out.as_mut_ptr().add((r + dr) * n + at);
                    if MASKED && v + 1 == VECS {
                        _mm256_maskstore_ps(p, last, sum);
                    } else {
                        _mm256_storeu_ps(p, sum);
                    }
                }
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; the lengths must fit as `super::matmul_kn` checks.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn matmul_kn(
        x: Rows<'_>,
        wt: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let m = x.count;
        let mut col = 0;
        while col < n {
            let left = n - col;
            let vecs = left.div_ceil(8).min(V);
            let lanes = left - 8 * (vecs - 1);
            let last = mask(lanes);
            let mut r = 0;
            while r < m {
                let rows = if m - r >= R { R } else { 1 };
                match (rows, vecs, lanes < 8) {
                    (R, V, false) => tile::<R, V, false>(x, wt, n, bias, out, r, col, last),
                    (R, V, true) => tile::<R, V, true>(x, wt, n, bias, out, r, col, last),
                    (R, _, false) => tile::<R, 1, false>(x, wt, n, bias, out, r, col, last),
                    (R, _, true) => tile::<R, 1, true>(x, wt, n, bias, out, r, col, last),
                    (_, V, false) => tile::<1, V, false>(x, wt, n, bias, out, r, col, last),
                    (_, V, true) => tile::<1, V, true>(x, wt, n, bias, out, r, col, last),
                    (_, _, false) => tile::<1, 1, false>(x, wt, n, bias, out, r, col, last),
                    (_, _, true) => tile::<1, 1, true>(x, wt, n, bias, out, r, col, last),
                }
                r += rows;
            }
            col += 8 * vecs;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86_512 {
    use std::arch::x86_64::{
        __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_mask_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
    };

    use super::Rows;

    const R: usize = 4;
    const V: usize = 4;
    /// Inputs a pass takes before the next block of rows: a block of outputs' weights for
    /// them (512 inputs x 64 outputs: 128 KiB) stays in the core's L2 while every row group
    /// adds them, instead of streaming the whole column of weights once per row group (Mimi's
    /// 512-wide SEANet decoder about 10 % faster, alternating with the single-pass kernel).
    /// Each sum is stored after a block and picked up again before the next, an exact float
    /// round trip: the chain of fused multiply-adds, and so the bits, do not change.
    const INPUTS_PER_PASS: usize = 512;

    /// As `x86::tile`, 16 lanes a vector; every load and store masked to `last` lanes in the
    /// last vector (AVX-512 masks cost nothing extra). Adds inputs `inputs` to the sums, which
    /// start from zero (`resume` false) or from `out` (the sums so far); the bias is added
    /// after the last input (`finish`).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    fn tile<const ROWS: usize, const VECS: usize>(
        x: Rows<'_>,
        wt: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
        r: usize,
        col: usize,
        last: __mmask16,
        inputs: std::ops::Range<usize>,
        resume: bool,
        finish: bool,
    ) {
        let mask = |v: usize| if v + 1 == VECS { last } else { 0xffff };
        let mut acc = [[_mm512_setzero_ps(); VECS]; ROWS];
        if resume {
            for (dr, row) in acc.iter_mut().enumerate() {
                for (v, a) in row.iter_mut().enumerate() {
                    let at = (r + dr) * n + col + 16 * v;
                    // SAFETY: `out` (m, n); the lanes are masked within row r + dr.
                    *a = unsafe { _mm512_maskz_loadu_ps(mask(v), out.as_ptr().add(at)) };
                }
            }
        }
        let (xp, wp) = (x.data.as_ptr(), wt.as_ptr());
        // the inputs in order, a tap at a time: within a tap, row r + dr's inputs are one
        // contiguous run, so each is its row's pointer plus c (no index arithmetic a value)
        let mut i = inputs.start;
        while i < inputs.end {
            let j = i / x.width;
            let end = inputs.end.min((j + 1) * x.width);
            // SAFETY: Rows::fits: row r + dr's tap j lies within the data.
            let rows: [*const f32; ROWS] =
                std::array::from_fn(|dr| unsafe { xp.add((r + dr + j * x.gap) * x.width) });
            for i in i..end {
                let c = i - j * x.width;
                let w: [__m512; VECS] = std::array::from_fn(|v| {
                    // SAFETY: the masked lanes lie within weight row i's n values.
                    unsafe { _mm512_maskz_loadu_ps(mask(v), wp.add(i * n + col + 16 * v)) }
                });
                for (row, &p) in acc.iter_mut().zip(&rows) {
                    // SAFETY: c < width: within the tap's run of this row.
                    let xv = unsafe { _mm512_set1_ps(*p.add(c)) };
                    for (a, &wv) in row.iter_mut().zip(&w) {
                        *a = _mm512_fmadd_ps(xv, wv, *a);
                    }
                }
            }
            i = end;
        }
        for (dr, row) in acc.iter().enumerate() {
            for (v, &a) in row.iter().enumerate() {
                let at = col + 16 * v;
                // SAFETY: `bias` holds n values and `out` (m, n); the lanes are masked within.
                unsafe {
                    let sum = match bias {
                        Some(b) if finish => {
                            _mm512_add_ps(a, _mm512_maskz_loadu_ps(mask(v), b.as_ptr().add(at)))
                        }
                        _ => a,
                    };
                    _mm512_mask_storeu_ps(out.as_mut_ptr().add((r + dr) * n + at), mask(v), sum);
                }
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F; the lengths must fit as `super::matmul_kn` checks.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn matmul_kn(
        x: Rows<'_>,
        wt: &[f32],
        n: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let m = x.count;
        let k = x.taps * x.width;
        let lanes = |left: usize, vecs: usize| -> __mmask16 {
            let lanes = left - 16 * (vecs - 1);
            if lanes >= 16 {
                0xffff
            } else {
                (1u16 << lanes) - 1
            }
        };
        // four rows at a time, up to four vectors of outputs: sixteen sums in flight, the
        // inputs a block at a time for every row group
        let quads = m / R * R;
        // four vectors where the weights outgrow 256 KiB (the 512-wide decoder's); two where
        // they are smaller (english_2m's decoder measured no faster with four)
        let widest = if k * n > 64 << 10 { V } else { 2 };
        let mut col = 0;
        while col < n && quads > 0 {
            let vecs = match (n - col).div_ceil(16).min(widest) {
                4.. => V,
                2..=3 => 2,
                _ => 1,
            };
            let last = lanes((n - col).min(16 * vecs), vecs);
            let mut start = 0;
            while start < k {
                let end = (start + INPUTS_PER_PASS).min(k);
                let (resume, finish) = (start > 0, end == k);
                let mut r = 0;
                while r < quads {
                    let inputs = start..end;
                    if vecs == V {
                        tile::<R, V>(x, wt, n, bias, out, r, col, last, inputs, resume, finish);
                        r += R;
                    } else if vecs == 2 {
                        tile::<R, 2>(x, wt, n, bias, out, r, col, last, inputs, resume, finish);
                        r += R;
                    } else if r + 2 * R <= quads {
                        // one vector of outputs: eight rows keep eight sums in flight
                        let (a, b) = (resume, finish);
                        tile::<{ 2 * R }, 1>(x, wt, n, bias, out, r, col, last, inputs, a, b);
                        r += 2 * R;
                    } else {
                        tile::<R, 1>(x, wt, n, bias, out, r, col, last, inputs, resume, finish);
                        r += R;
                    }
                }
                start = end;
            }
            col += 16 * vecs;
        }
        // the rows left, one at a time, up to eight vectors of outputs, every input in one pass
        for r in quads..m {
            let mut col = 0;
            while col < n {
                let vecs = match (n - col).div_ceil(16) {
                    8.. => 8,
                    4..=7 => 4,
                    2..=3 => 2,
                    _ => 1,
                };
                let last = lanes((n - col).min(16 * vecs), vecs);
                let all = 0..k;
                match vecs {
                    8 => tile::<1, 8>(x, wt, n, bias, out, r, col, last, all, false, true),
                    4 => tile::<1, 4>(x, wt, n, bias, out, r, col, last, all, false, true),
                    2 => tile::<1, 2>(x, wt, n, bias, out, r, col, last, all, false, true),
                    _ => tile::<1, 1>(x, wt, n, bias, out, r, col, last, all, false, true),
                }
                col += 16 * vecs;
            }
        }
    }

    /// For the tests: whether this path runs here.
    #[cfg(test)]
    pub(super) fn supported() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;

    #[test]
    fn every_instruction_set_gives_the_same_bits_and_the_f64_sum() {
        // (rows, width, taps, gap, outputs): plain matrices and windows of a sequence
        for (m, width, taps, gap, n) in [
            (1, 1, 1, 0, 1),
            (7, 72, 1, 0, 1),
            (5, 48, 1, 0, 192),
            (9, 12, 3, 1, 12),
            (4, 3, 1, 0, 37),
            (13, 26, 5, 2, 24),
            (6, 24, 3, 1, 17),
            // inputs past one pass (256), in windows whose taps straddle it, outputs in
            // blocks of four, two and one vectors, rows past a multiple of four
            (9, 100, 3, 2, 70),
            (12, 512, 2, 1, 130),
            (8, 257, 1, 0, 64),
            // one output (the decoder's last convolution), windows of three taps
            (37, 64, 3, 1, 1),
            (16, 5, 2, 3, 1),
        ] {
            let data = values((m + (taps - 1) * gap) * width, 1);
            let x = Rows {
                data: &data,
                width,
                taps,
                gap,
                count: m,
            };
            let k = taps * width;
            let (wt, b) = (values(k * n, 2), values(n, 3));
            let mut portable = vec![0.0; m * n];
            matmul_kn(Isa::Portable, x, &wt, n, Some(&b), &mut portable);
            for t in 0..m {
                for col in 0..n {
                    let mut want = f64::from(b[col]);
                    for j in 0..taps {
                        for c in 0..width {
                            let v = data[(t + j * gap) * width + c];
                            want += f64::from(v) * f64::from(wt[(j * width + c) * n + col]);
                        }
                    }
                    let got = f64::from(portable[t * n + col]);
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{m} {k} {n}"
                    );
                }
            }
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            #[cfg(target_arch = "x86_64")]
            if Isa::Avx2.is_supported() {
                let mut fast = vec![0.0; m * n];
                // SAFETY: AVX2 and FMA checked; the shapes are those checked above.
                unsafe { x86::matmul_kn(x, &wt, n, Some(&b), &mut fast) };
                assert_eq!(bits(&fast), bits(&portable), "avx2 {m} {k} {n}");
            }
            #[cfg(target_arch = "x86_64")]
            if x86_512::supported() {
                let mut fast = vec![0.0; m * n];
                // SAFETY: AVX-512F checked; the shapes are those checked above.
                unsafe { x86_512::matmul_kn(x, &wt, n, Some(&b), &mut fast) };
                assert_eq!(bits(&fast), bits(&portable), "avx512 {m} {k} {n}");
            }
        }
    }
}
