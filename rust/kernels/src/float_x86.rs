//! AVX2 + FMA float dot products in `float`'s order of operations: one 8-lane accumulator per
//! (activation row, weight row) pair, so lane j sums columns j, j + 8, ... exactly as the
//! portable code's partial sum j does, and the same combination afterwards. Weights are
//! float32 or bfloat16 (eight widened to float32 by a zero-extend and a shift, exactly).

use std::arch::x86_64::{
    __m128i, __m256, _mm256_castps256_ps128, _mm256_castsi256_ps, _mm256_cvtepu16_epi32,
    _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_slli_epi32,
    _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadu_si128, _mm_movehdup_ps, _mm_movehl_ps,
};

use crate::float::{Weight, ROWS_PER_PASS};

/// Weight rows a pass reads together for one or two activation rows.
const WIDE_PASS: usize = 2 * ROWS_PER_PASS;

/// A weight type the AVX2 kernel loads eight at a time as float32.
pub(crate) trait Lanes: Weight {
    /// # Safety
    /// `p` must point at eight readable values; the CPU must support AVX2.
    unsafe fn load8(p: *const Self) -> __m256;
}

impl Lanes for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_loadu_ps(p) }
    }
}

impl Lanes for u16 {
    #[inline(always)]
    unsafe fn load8(p: *const u16) -> __m256 {
        // SAFETY: the caller's contract (eight u16 are the 16 bytes read).
        unsafe {
            let bits = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast::<__m128i>()));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(bits))
        }
    }
}

/// One accumulator's eight partial sums combined as `float::combine` does.
#[target_feature(enable = "avx2,fma")]
fn reduce(acc: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc)); // p0 + p4, p1 + p5, p2 + p6, p3 + p7
    let t = _mm_add_ps(s, _mm_movehl_ps(s, s)); // (p0 + p4) + (p2 + p6), (p1 + p5) + (p3 + p7)
    _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
}

/// The eight-lane partial sums of `x_r . w_i` over the first `whole` columns (a multiple of
/// eight) for R activation rows and W weight rows, each weight vector loaded once for all R
/// rows. The sums stay in registers: they are only read once the loop is done.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // i outside r: each weight vector loaded once for all rows
fn partial_sums<T: Lanes, const R: usize, const W: usize>(
    xs: [&[f32]; R],
    ws: [&[T]; W],
    whole: usize,
) -> [[__m256; W]; R] {
    let mut acc = [[_mm256_setzero_ps(); W]; R];
    let (xp, wp) = (xs.map(<[f32]>::as_ptr), ws.map(<[T]>::as_ptr));
    let mut k = 0;
    while k < whole {
        // SAFETY: every row holds at least `whole` values and k + 8 <= whole.
        unsafe {
            let xv: [__m256; R] = std::array::from_fn(|r| _mm256_loadu_ps(xp[r].add(k)));
            for i in 0..W {
                let wv = T::load8(wp[i].add(k));
                for r in 0..R {
                    acc[r][i] = _mm256_fmadd_ps(xv[r], wv, acc[r][i]);
                }
            }
        }
        k += 8;
    }
    acc
}

/// `x_r . w_i` for R activation rows and W weight rows (no bias).
#[target_feature(enable = "avx2,fma")]
fn tile<T: Lanes, const R: usize, const W: usize>(xs: [&[f32]; R], ws: [&[T]; W]) -> [[f32; W]; R] {
    let cols = xs[0].len();
    let whole = cols / 8 * 8;
    let acc = partial_sums(xs, ws, whole);
    let mut sums = [[0.0f32; W]; R];
    for (r, row) in sums.iter_mut().enumerate() {
        for (i, sum) in row.iter_mut().enumerate() {
            *sum = reduce(acc[r][i]);
            for k in whole..cols {
                *sum = xs[r][k].mul_add(ws[i][k].value(), *sum);
            }
        }
    }
    sums
}

/// As `float::dot_rows`, to the same bits.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_rows<T: Lanes>(
    x: &[f32],
    w: &[T],
    cols: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let (m, n) = (x.len() / cols, w.len() / cols);
    assert!(out.len() == m * n && bias.is_none_or(|b| b.len() == n));
    let xr = |r: usize| &x[r * cols..(r + 1) * cols];
    let wr = |i: usize| &w[i * cols..(i + 1) * cols];
    let mut store = |r: usize, i: usize, sum: f32| {
        out[r * n + i] = sum + bias.map_or(0.0, |b| b[i]);
    };
    let mut i = 0;
    while i < n {
        if m < 3 && i + WIDE_PASS <= n {
            // one or two rows (a stream's step): eight weight rows in flight, not four
            let ws: [&[T]; WIDE_PASS] = std::array::from_fn(|j| wr(i + j));
            for r in 0..m {
                let [row] = tile::<T, 1, WIDE_PASS>([xr(r)], ws);
                row.iter()
                    .enumerate()
                    .for_each(|(j, &s)| store(r, i + j, s));
            }
            i += WIDE_PASS;
        } else if i + ROWS_PER_PASS <= n {
            let ws: [&[T]; ROWS_PER_PASS] = std::array::from_fn(|j| wr(i + j));
            let mut r = 0;
            while r + 3 <= m {
                let sums = tile::<T, 3, ROWS_PER_PASS>([xr(r), xr(r + 1), xr(r + 2)], ws);
                for (dr, row) in sums.iter().enumerate() {
                    row.iter()
                        .enumerate()
                        .for_each(|(j, &s)| store(r + dr, i + j, s));
                }
                r += 3;
            }
            while r < m {
                let [row] = tile::<T, 1, ROWS_PER_PASS>([xr(r)], ws);
                row.iter()
                    .enumerate()
                    .for_each(|(j, &s)| store(r, i + j, s));
                r += 1;
            }
            i += ROWS_PER_PASS;
        } else {
            for r in 0..m {
                let [[s]] = tile::<T, 1, 1>([xr(r)], [wr(i)]);
                store(r, i, s);
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::float::combine;

    #[test]
    fn reduce_combines_in_the_portable_order() {
        if !crate::isa::Isa::Avx2.is_supported() {
            return; // nothing to compare on this CPU
        }
        // values whose sum depends on the order of additions
        let p = [1e8f32, 1.0, -1e8, 3.0, 0.5, -7.0, 2.5e-3, 1e7];
        // SAFETY: AVX2 and FMA checked above; p holds eight values.
        let got = unsafe { reduce(_mm256_loadu_ps(p.as_ptr())) };
        assert_eq!(got.to_bits(), combine(p).to_bits());
    }
}
