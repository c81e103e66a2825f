//! AVX2 integer dot products with `vpmaddubsw` (u8 x i8 pairs summed into i16, then `vpmaddwd`
//! into i32). Its first operand must be unsigned:
//! - `Scheme::Signed8`: |x| against `vpsignb(w, x)` (x's sign moved onto w); with both in
//!   [-127, 127] a pair sums to at most 2 * 127 * 127 = 32258 and never saturates its i16.
//! - `Scheme::Offset7`: `x + 64` (in [1, 127]) against w; the offset is undone afterwards with
//!   the weight row sums, `sum((x + 64) * w) - 64 * sum(w)`. Same bound, one instruction fewer.
//!
//! Either way the sums are exact, so results equal the portable ones bit for bit. Where the CPU
//! has AVX-512 VNNI, `vpdpbusd` adds each lane's four products in one instruction instead of
//! `vpmaddubsw` + `vpmaddwd` + `vpaddd`: the same exact sums; with its 512-bit forms too,
//! four or more rows are summed 64 products an instruction (`dot_tile_512`).

use std::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi32, _mm256_castsi256_si128, _mm256_dpbusd_epi32,
    _mm256_extracti128_si256, _mm256_hadd_epi32, _mm256_loadu_si256, _mm256_madd_epi16,
    _mm256_maddubs_epi16, _mm256_set1_epi16, _mm256_set1_epi8, _mm256_setzero_si256,
    _mm256_sign_epi8, _mm256_xor_si256, _mm_add_epi32, _mm_add_ps, _mm_cvtepi32_ps, _mm_loadu_ps,
    _mm_loadu_si128, _mm_mul_ps, _mm_prefetch, _mm_set1_ps, _mm_setzero_ps, _mm_slli_epi32,
    _mm_storeu_ps, _mm_storeu_si128, _mm_sub_epi32, _MM_HINT_T0,
};

use std::arch::x86_64::{
    __m512i, _mm512_broadcast_i64x4, _mm512_castsi512_si256, _mm512_dpbusd_epi32,
    _mm512_extracti64x4_epi64, _mm512_loadu_si512, _mm512_setzero_si512,
};

use crate::int8::{Epilogue, QuantizedRows, Scheme, BLOCK, GROUP};

/// Four accumulators of eight i32 lanes reduced to four sums.
#[target_feature(enable = "avx2")]
fn reduce4(a: &[__m256i; GROUP]) -> [i32; GROUP] {
    let ab = _mm256_hadd_epi32(a[0], a[1]);
    let cd = _mm256_hadd_epi32(a[2], a[3]);
    let abcd = _mm256_hadd_epi32(ab, cd);
    let sum = _mm_add_epi32(
        _mm256_castsi256_si128(abcd),
        _mm256_extracti128_si256::<1>(abcd),
    );
    let mut out = [0i32; GROUP];
    // SAFETY: out holds exactly 16 bytes.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), sum) };
    out
}

/// `dot_tile` and `dot_tile_vnni`: one body, two instruction sets. Raw sums
/// `sum(unsigned * w')` of `R` activation rows with one interleaved group of weight rows,
/// where w' is w with the activation's sign moved onto it when `SIGNED`, else w itself. Each
/// weight vector is loaded once for all R rows. `ahead`, when given, is the next group: it is
/// prefetched alongside, so reading weights from memory overlaps the arithmetic. `$acc` adds
/// the four-product sums of each i32 lane: `vpmaddubsw` + `vpmaddwd` on AVX2, one `vpdpbusd`
/// with VNNI; both exact, so both give the same sums.
macro_rules! dot_tile {
    ($name:ident, $features:literal, $acc:expr) => {
        #[target_feature(enable = $features)]
        #[allow(clippy::needless_range_loop)] // j outside r: each weight vector loaded once
        fn $name<const R: usize, const SIGNED: bool>(
            unsigned: [&[u8]; R],
            values: [&[i8]; R],
            w: &[i8],
            ahead: Option<&[i8]>,
            stride: usize,
        ) -> [[i32; GROUP]; R] {
            let mut acc = [[_mm256_setzero_si256(); GROUP]; R];
            for b in (0..stride).step_by(BLOCK) {
                // SAFETY: stride is a multiple of BLOCK; every activation row holds stride
                // bytes and w one group (GROUP * stride bytes), as dot_rows asserts.
                unsafe {
                    let u: [__m256i; R] = std::array::from_fn(|r| {
                        _mm256_loadu_si256(unsigned[r].as_ptr().add(b).cast())
                    });
                    let v: [__m256i; R] = std::array::from_fn(|r| {
                        if SIGNED {
                            _mm256_loadu_si256(values[r].as_ptr().add(b).cast())
                        } else {
                            _mm256_setzero_si256()
                        }
                    });
                    let wb = w.as_ptr().add(b * GROUP);
                    if let Some(next) = ahead {
                        let nb = next.as_ptr().add(b * GROUP);
                        _mm_prefetch::<_MM_HINT_T0>(nb);
                        _mm_prefetch::<_MM_HINT_T0>(nb.add(2 * BLOCK));
                    }
                    for j in 0..GROUP {
                        let wv = _mm256_loadu_si256(wb.add(j * BLOCK).cast());
                        for r in 0..R {
                            let wr = if SIGNED {
                                _mm256_sign_epi8(wv, v[r])
                            } else {
                                wv
                            };
                            acc[r][j] = $acc(acc[r][j], u[r], wr);
                        }
                    }
                }
            }
            std::array::from_fn(|r| reduce4(&acc[r]))
        }
    };
}

/// `acc + sum of each lane's four u8 x i8 products`, by pairs into i16 (never saturating
/// here, see the module's documentation) and pairs of those into i32.
#[target_feature(enable = "avx2")]
#[inline]
fn madd_avx2(acc: __m256i, u: __m256i, w: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(u, w);
    _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// The same sums in one instruction (`vpdpbusd`: no intermediate i16, no saturation).
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
#[inline]
fn madd_vnni(acc: __m256i, u: __m256i, w: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(acc, u, w)
}

dot_tile!(dot_tile, "avx2", madd_avx2);
dot_tile!(dot_tile_vnni, "avx2,avx512vnni,avx512vl", madd_vnni);

/// Raw sums of `R` activation rows with one interleaved group of weight rows, 512 bits at a
/// time: a group's 32-byte blocks of rows 0 and 1 (and of 2 and 3) lie side by side, so one
/// register holds two rows' block and meets the activation block broadcast to both halves; one
/// `vpdpbusd` adds 64 products. The unsigned operand is `x + 64` (`Scheme::Offset7`, given in
/// `rows`), or, with `SIGNED`, `x + 128` made from the signed values in `rows` (their top bit
/// flipped; AVX-512 has no `vpsignb` to move signs as `dot_tile` does): the sums then exceed
/// `sum(x * w)` by `128 * sum(w)`, which the caller takes off. Exact either way.
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
fn dot_tile_512<const R: usize, const SIGNED: bool>(
    rows: [&[u8]; R],
    w: &[i8],
    ahead: Option<&[i8]>,
    stride: usize,
) -> [[i32; GROUP]; R] {
    let mut acc: [[__m512i; 2]; R] = [[_mm512_setzero_si512(); 2]; R];
    let flip = _mm256_set1_epi8(i8::MIN);
    for b in (0..stride).step_by(BLOCK) {
        // SAFETY: as dot_tile: stride is a multiple of BLOCK, each activation row holds stride
        // bytes and w one group (GROUP * stride bytes), as dot_rows asserts.
        unsafe {
            let wb = w.as_ptr().add(b * GROUP);
            if let Some(next) = ahead {
                let nb = next.as_ptr().add(b * GROUP);
                _mm_prefetch::<_MM_HINT_T0>(nb);
                _mm_prefetch::<_MM_HINT_T0>(nb.add(2 * BLOCK));
            }
            let w01 = _mm512_loadu_si512(wb.cast());
            let w23 = _mm512_loadu_si512(wb.add(2 * BLOCK).cast());
            for r in 0..R {
                let mut x = _mm256_loadu_si256(rows[r].as_ptr().add(b).cast());
                if SIGNED {
                    x = _mm256_xor_si256(x, flip);
                }
                let x = _mm512_broadcast_i64x4(x);
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x, w01);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x, w23);
            }
        }
    }
    std::array::from_fn(|r| {
        let [a, c] = acc[r];
        reduce4(&[
            _mm512_castsi512_si256(a),
            _mm512_extracti64x4_epi64::<1>(a),
            _mm512_castsi512_si256(c),
            _mm512_extracti64x4_epi64::<1>(c),
        ])
    })
}

/// Whether this CPU has the 512-bit VNNI forms `dot_tile_512` uses.
pub(crate) fn has_vnni512() -> bool {
    has_vnni()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

/// Whether this CPU has AVX-512 VNNI (with its 256-bit forms): `dot_rows` then sums with it.
pub(crate) fn has_vnni() -> bool {
    std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// Four outputs `o` of activation row `r`, weight rows `n..n + 4`, from their integer sums,
/// less `64 * row_sums` where given (`Scheme::Offset7`): the operations of `Epilogue::apply`,
/// four at a time.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn finish4(
    o: &mut [f32],
    mut sum: __m128i,
    row_sums: Option<&[i32]>,
    ep: &Epilogue,
    r: usize,
    n: usize,
) {
    let (o, ws) = (&mut o[..GROUP], &ep.w_scales[n..n + GROUP]);
    // SAFETY: every slice loaded or stored here holds GROUP (4) elements.
    unsafe {
        if let Some(rs) = row_sums {
            let rs = _mm_loadu_si128(rs[..GROUP].as_ptr().cast());
            sum = _mm_sub_epi32(sum, _mm_slli_epi32::<6>(rs));
        }
        let scale = _mm_mul_ps(_mm_set1_ps(ep.x_scales[r]), _mm_loadu_ps(ws.as_ptr()));
        let bias = ep
            .bias
            .map_or(_mm_setzero_ps(), |b| _mm_loadu_ps(b[n..n + GROUP].as_ptr()));
        let y = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(sum), scale), bias);
        _mm_storeu_ps(o.as_mut_ptr(), y);
    }
}

/// One tile on the instruction set `vnni` names (true only where `has_vnni()`).
#[target_feature(enable = "avx2")]
fn tile<const R: usize, const SIGNED: bool>(
    vnni: bool,
    unsigned: [&[u8]; R],
    values: [&[i8]; R],
    w: &[i8],
    ahead: Option<&[i8]>,
    stride: usize,
) -> [[i32; GROUP]; R] {
    if vnni {
        // SAFETY: the caller passes vnni = true only where the CPU has AVX-512 VNNI and VL.
        unsafe { dot_tile_vnni::<R, SIGNED>(unsigned, values, w, ahead, stride) }
    } else {
        dot_tile::<R, SIGNED>(unsigned, values, w, ahead, stride)
    }
}

/// `out[r * rows + n] = ep(sum_k x[r][k] * w[n][k])`, as `portable::dot_rows`; `row_sums` holds
/// one sum per weight row (rows = row_sums.len()).
///
/// # Safety
/// The CPU must support AVX2, and AVX-512 VNNI where `vnni`, its 512-bit forms where `wide`
/// (`has_vnni`, `has_vnni512`).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dot_rows(
    q: &QuantizedRows,
    w: &[i8],
    row_sums: &[i32],
    stride: usize,
    ep: &Epilogue,
    out: &mut [f32],
    vnni: bool,
    wide: bool,
) {
    let (m, rows) = (q.scales.len(), row_sums.len());
    assert!(stride.is_multiple_of(BLOCK) && w.len() >= rows.div_ceil(GROUP) * GROUP * stride);
    assert!(
        out.len() == m * rows && q.values.len() >= m * stride && q.unsigned.len() >= m * stride
    );
    let u = |r: usize| &q.unsigned[r * stride..(r + 1) * stride];
    let v = |r: usize| &q.values[r * stride..(r + 1) * stride];
    let groups = rows.div_ceil(GROUP);
    for (g, group) in w.chunks_exact(GROUP * stride).take(groups).enumerate() {
        let n = g * GROUP;
        // the next group, prefetched by this group's first tile only
        let next = (g + 1 < groups).then(|| &w[(g + 1) * GROUP * stride..(g + 2) * GROUP * stride]);
        let live = (rows - n).min(GROUP);
        let offset = q.scheme == Scheme::Offset7;
        let mut store = |r: usize, sums: [i32; GROUP]| {
            if live == GROUP {
                let o = &mut out[r * rows + n..r * rows + n + GROUP];
                // SAFETY: sums holds GROUP (4) values.
                let sum = unsafe { _mm_loadu_si128(sums.as_ptr().cast()) };
                finish4(o, sum, offset.then(|| &row_sums[n..n + GROUP]), ep, r, n);
                return;
            }
            for (j, &s) in sums[..live].iter().enumerate() {
                let sum = if offset { s - 64 * row_sums[n + j] } else { s };
                out[r * rows + n + j] = ep.apply(r, n + j, sum);
            }
        };
        let mut r = 0;
        if wide {
            // eight rows, then four, per pass over the weights, 512 bits at a time
            let signed = q.scheme == Scheme::Signed8;
            let bytes = |r: usize| -> &[u8] {
                if signed {
                    // SAFETY: i8 and u8 have one layout; the tile flips each value's top bit
                    unsafe { std::slice::from_raw_parts(v(r).as_ptr().cast(), stride) }
                } else {
                    u(r)
                }
            };
            let mut wide_store = |r: usize, mut sums: [i32; GROUP]| {
                if signed {
                    // x + 128 was summed: take 128 * sum(w) off (padding rows sum to 0)
                    for (j, s) in sums.iter_mut().enumerate() {
                        *s -= row_sums.get(n + j).map_or(0, |&t| t << 7);
                    }
                }
                store(r, sums);
            };
            while r + 8 <= m {
                let ahead = next.filter(|_| r == 0);
                let xs: [&[u8]; 8] = std::array::from_fn(|i| bytes(r + i));
                // SAFETY: the caller passes wide = true only where has_vnni512().
                let sums = unsafe {
                    if signed {
                        dot_tile_512::<8, true>(xs, group, ahead, stride)
                    } else {
                        dot_tile_512::<8, false>(xs, group, ahead, stride)
                    }
                };
                for (i, s) in sums.into_iter().enumerate() {
                    wide_store(r + i, s);
                }
                r += 8;
            }
            while r + 4 <= m {
                let ahead = next.filter(|_| r == 0);
                let xs: [&[u8]; 4] = std::array::from_fn(|i| bytes(r + i));
                // SAFETY: as above.
                let sums = unsafe {
                    if signed {
                        dot_tile_512::<4, true>(xs, group, ahead, stride)
                    } else {
                        dot_tile_512::<4, false>(xs, group, ahead, stride)
                    }
                };
                for (i, s) in sums.into_iter().enumerate() {
                    wide_store(r + i, s);
                }
                r += 4;
            }
        }
        while r + 2 <= m {
            // two rows per pass over the weights, whichever the scheme: the integer sums are
            // exact, so a row's outputs do not depend on the row it is paired with
            let ahead = next.filter(|_| r == 0);
            let (us, vs) = ([u(r), u(r + 1)], [v(r), v(r + 1)]);
            let [s0, s1] = match q.scheme {
                Scheme::Signed8 => tile::<2, true>(vnni, us, vs, group, ahead, stride),
                Scheme::Offset7 => tile::<2, false>(vnni, us, vs, group, ahead, stride),
            };
            store(r, s0);
            store(r + 1, s1);
            r += 2;
        }
        while r < m {
            let ahead = next.filter(|_| r == 0);
            let [s] = match q.scheme {
                Scheme::Signed8 => tile::<1, true>(vnni, [u(r)], [v(r)], group, ahead, stride),
                Scheme::Offset7 => tile::<1, false>(vnni, [u(r)], [v(r)], group, ahead, stride),
            };
            store(r, s);
            r += 1;
        }
    }
}
