//! int8 dot products on AMX tiles (`tdpbusd` / `tdpbssd`), over weights laid out for them
//! (`Layout::Tiles`: 16 weight rows by 64 columns a 1 KiB tile, as the instructions read their
//! second operand).
//!
//! A block of up to 16 activation rows' 64 columns is one tile A, read where the quantized rows
//! lie; a weight tile is B; C (rows x 16 i32) += A . B adds each (activation row, weight row)
//! pair's 64 products. Four weight tiles' sums (64 weight rows) are in flight at once, each in
//! its own C tile, and each group of weights meets every block of 16 activation rows while it
//! is in cache: the weights are read once a call. `x + 64` (`Scheme::Offset7`) meets the
//! weights in `tdpbusd`, the offset taken off with the weight row sums afterwards; the signed
//! values (`Scheme::Signed8`) in `tdpbssd`. Integer sums are exact, so the outputs are the bits
//! of every other path.
//!
//! Below `TILE_MIN_ROWS` activation rows `dot_rows_vnni` runs instead, on VNNI's 512-bit forms
//! over the same layout: a tile row's 64 bytes are four columns of 16 weight rows, so each lane
//! sums one weight row.
//!
//! Linux lends a thread the tiles only once the process has asked (`arch_prctl`,
//! `ARCH_REQ_XCOMP_PERM`): [`has_amx`] asks the first time it is called, and says no where the
//! CPU lacks AMX or the kernel refuses. Each product loads its tile configuration on its own
//! thread and releases the tiles when done, so nothing of it outlives the call.

use std::arch::asm;
use std::arch::x86_64::{
    __cpuid_count, __m512i, _mm512_add_epi32, _mm512_add_ps, _mm512_cvtepi32_ps,
    _mm512_dpbusd_epi32, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mul_ps, _mm512_set1_epi32,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_setzero_si512, _mm512_sllv_epi32, _mm512_storeu_ps,
    _mm512_storeu_si512, _mm512_sub_epi32, _mm_prefetch, _xgetbv, _MM_HINT_T0,
};

use crate::int8::{Epilogue, QuantizedRows, Scheme, TILE_COLS, TILE_ROWS};

/// Weight tiles whose sums are in flight together (C tiles 0 to 3).
const AT_ONCE: usize = 4;
/// Bytes of one weight tile.
const TILE_BYTES: usize = TILE_ROWS * TILE_COLS;

/// The 64-byte operand of `ldtilecfg`: palette 1, each tile's rows and bytes per row.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

impl TileConfig {
    /// C tiles 0-3 (`rows` x 16 i32), A tile 4 (`rows` x 64 bytes), B tiles 5-6 (16 x 64).
    fn for_rows(rows: usize) -> Self {
        let mut c = Self {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        for t in 0..7 {
            c.rows[t] = if t < 5 { rows as u8 } else { TILE_ROWS as u8 };
            c.colsb[t] = TILE_COLS as u16;
        }
        c
    }
}

/// Whether this CPU has AMX's tiles and int8 products, the OS saves their state, and this
/// process may use them (asked for once, the first time; cached).
pub(crate) fn has_amx() -> bool {
    static AMX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMX.get_or_init(|| {
        // SAFETY: cpuid leaf 7 exists on every x86-64 CPU that reports a max leaf >= 7
        // (checked first); xgetbv is only read where the CPU says the OS enabled it.
        unsafe {
            if __cpuid_count(0, 0).eax < 7 {
                return false;
            }
            let leaf7 = __cpuid_count(7, 0);
            let (tile, int8) = (leaf7.edx & (1 << 24) != 0, leaf7.edx & (1 << 25) != 0);
            let osxsave = __cpuid_count(1, 0).ecx & (1 << 27) != 0;
            if !(tile && int8 && osxsave) {
                return false;
            }
            // XCR0 bits 17 and 18: the tile configuration and data states
            if _xgetbv(0) & (0b11 << 17) != 0b11 << 17 {
                return false;
            }
        }
        request_permission()
    })
}

#[cfg(target_os = "linux")]
fn request_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain system call with integer arguments; it changes what this process may
    // execute, nothing in memory.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn request_permission() -> bool {
    false // the tiles' permission call is Linux's; elsewhere the other paths run
}

/// A product's sizes on the tile layout, checked against what it reads and writes.
struct Shape {
    /// Activation rows, weight rows, groups of 16 weight rows, 64-column blocks a row.
    m: usize,
    rows: usize,
    groups: usize,
    blocks: usize,
    /// Bytes of one group's tiles.
    group_bytes: usize,
}

impl Shape {
    /// # Panics
    /// If `w`, `q` or `out` do not hold what the shapes say.
    fn checked(q: &QuantizedRows, w: &[i8], row_sums: &[i32], stride: usize, out: &[f32]) -> Self {
        let (m, rows) = (q.scales.len(), row_sums.len());
        let groups = rows.div_ceil(TILE_ROWS);
        let blocks = stride / TILE_COLS;
        let group_bytes = blocks * TILE_BYTES;
        assert!(stride.is_multiple_of(TILE_COLS) && w.len() >= groups * group_bytes);
        assert!(out.len() == m * rows && q.values.len() >= m * stride);
        assert!(q.unsigned.len() >= m * stride);
        Self {
            m,
            rows,
            groups,
            blocks,
            group_bytes,
        }
    }
}

/// Adds the weight tiles at `b` (tile j at `b + j group_bytes`, `count` of them, 1 to 4)
/// times the activation tile in tile 4 into C tiles 0..
///
/// # Safety
/// The tiles must be configured (`TileConfig::for_rows`); `b` must point at those tiles.
#[inline(always)]
unsafe fn add_tiles<const SIGNED: bool>(b: *const i8, group_bytes: usize, count: usize) {
    let at = |j: usize| b.wrapping_add(j * group_bytes);
    let s = TILE_COLS;
    // SAFETY: the caller's contract; tiles 5 and 6 alternate so a load overlaps a product.
    unsafe {
        macro_rules! step {
            ($b:literal, $c:literal, $p:expr) => {
                if SIGNED {
                    asm!(concat!("tileloadd tmm", $b, ", [{p} + {s}*1]"), concat!("tdpbssd tmm", $c, ", tmm4, tmm", $b), p = in(reg) $p, s = in(reg) s, options(nostack, readonly));
                } else {
                    asm!(concat!("tileloadd tmm", $b, ", [{p} + {s}*1]"), concat!("tdpbusd tmm", $c, ", tmm4, tmm", $b), p = in(reg) $p, s = in(reg) s, options(nostack, readonly));
                }
            };
        }
        step!("5", "0", at(0));
        if count > 1 {
            step!("6", "1", at(1));
        }
        if count > 2 {
            step!("5", "2", at(2));
        }
        if count > 3 {
            step!("6", "3", at(3));
        }
    }
}

/// `out[r * rows + n] = ep(sum_k x[r][k] * w[n][k])`, as `portable::dot_rows`, on AMX tiles,
/// `w` in `Layout::Tiles`; `row_sums` holds one sum per weight row (rows = row_sums.len()).
///
/// # Safety
/// `has_amx()` must be true.
pub(crate) unsafe fn dot_rows(
    q: &QuantizedRows,
    w: &[i8],
    row_sums: &[i32],
    stride: usize,
    ep: &Epilogue,
    out: &mut [f32],
) {
    let Shape {
        m,
        rows,
        groups,
        blocks,
        group_bytes,
    } = Shape::checked(q, w, row_sums, stride, out);
    let signed = q.scheme == Scheme::Signed8;
    let shift = (!signed).then_some(6); // x + 64: 64 * the row sum off
    let src: &[u8] = if signed {
        // SAFETY: i8 and u8 have one layout; tdpbssd reads the bytes as signed
        unsafe { std::slice::from_raw_parts(q.values.as_ptr().cast(), m * stride) }
    } else {
        &q.unsigned[..m * stride]
    };
    // blocks of 16 activation rows, read in place; where there are several, the last one's
    // rows copied into a block padded with zeros, so one configuration serves them all
    let full = m / TILE_ROWS * TILE_ROWS;
    let mut last = Vec::new();
    if m > TILE_ROWS && full < m {
        last = vec![0u8; TILE_ROWS * stride];
        last[..(m - full) * stride].copy_from_slice(&src[full * stride..]);
    }
    let row_block = |i: usize| -> *const u8 {
        if i * TILE_ROWS >= full && !last.is_empty() {
            last.as_ptr()
        } else {
            src[i * TILE_ROWS * stride..].as_ptr()
        }
    };
    let row_blocks = m.div_ceil(TILE_ROWS);
    let config = TileConfig::for_rows(m.min(TILE_ROWS));
    let mut sums = [[[0i32; TILE_ROWS]; TILE_ROWS]; AT_ONCE];
    // SAFETY: has_amx() (the caller's contract): the tiles are this thread's to use.
    unsafe { asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly)) };
    for g0 in (0..groups).step_by(AT_ONCE) {
        let count = (groups - g0).min(AT_ONCE);
        let next = g0 + 2 * AT_ONCE <= groups;
        let wg = w[g0 * group_bytes..].as_ptr();
        for i in 0..row_blocks {
            let (m0, mb) = (i * TILE_ROWS, (m - i * TILE_ROWS).min(TILE_ROWS));
            let x = row_block(i);
            // SAFETY: configured above; every tile read lies within w (checked above: w holds
            // every group), src or last (16 rows of stride bytes, or the m <= 16 rows the
            // configuration reads), every store within sums.
            unsafe {
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
                for b in 0..blocks {
                    asm!("tileloadd tmm4, [{p} + {s}*1]", p = in(reg) x.add(b * TILE_COLS), s = in(reg) stride, options(nostack, readonly));
                    let at = wg.add(b * TILE_BYTES);
                    if i == 0 && next {
                        // the next four groups' tile, fetched while this one is summed: the
                        // first row block streams the weights from memory, the others reread
                        // them from cache
                        for j in 0..AT_ONCE {
                            let p = at.wrapping_add((AT_ONCE + j) * group_bytes);
                            for line in 0..TILE_BYTES / 64 {
                                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * line));
                            }
                        }
                    }
                    if signed {
                        add_tiles::<true>(at, group_bytes, count);
                    } else {
                        add_tiles::<false>(at, group_bytes, count);
                    }
                }
                let s = TILE_ROWS * 4;
                asm!("tilestored [{p} + {s}*1], tmm0", p = in(reg) sums[0].as_mut_ptr(), s = in(reg) s, options(nostack));
                asm!("tilestored [{p} + {s}*1], tmm1", p = in(reg) sums[1].as_mut_ptr(), s = in(reg) s, options(nostack));
                asm!("tilestored [{p} + {s}*1], tmm2", p = in(reg) sums[2].as_mut_ptr(), s = in(reg) s, options(nostack));
                asm!("tilestored [{p} + {s}*1], tmm3", p = in(reg) sums[3].as_mut_ptr(), s = in(reg) s, options(nostack));
            }
            for (j, tile) in sums.iter().take(count).enumerate() {
                let n0 = (g0 + j) * TILE_ROWS;
                let live = (rows - n0).min(TILE_ROWS);
                for (dm, sum) in tile.iter().take(mb).enumerate() {
                    let r = m0 + dm;
                    let row = &mut out[r * rows..(r + 1) * rows];
                    // SAFETY: sum holds 16 values; AVX-512F comes with every CPU with AMX.
                    unsafe {
                        let s = _mm512_loadu_si512(sum.as_ptr().cast());
                        store16(row, s, row_sums, shift, live, ep, r, n0);
                    }
                }
            }
        }
    }
    // SAFETY: the tiles back to their initial state: nothing of this call is left in them
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

/// Sixteen outputs `o` of activation row `r`, weight rows `n..n + 16`, from their integer sums
/// `s` (the offset already taken off): the operations of `Epilogue::apply` (and `finish4`),
/// sixteen at a time.
#[target_feature(enable = "avx512f")]
fn finish16(o: &mut [f32], s: __m512i, ep: &Epilogue, r: usize, n: usize) {
    let (o, ws) = (&mut o[..TILE_ROWS], &ep.w_scales[n..n + TILE_ROWS]);
    // SAFETY: every slice loaded or stored here holds 16 elements.
    unsafe {
        let scale = _mm512_mul_ps(_mm512_set1_ps(ep.x_scales[r]), _mm512_loadu_ps(ws.as_ptr()));
        let bias = ep.bias.map_or(_mm512_setzero_ps(), |b| {
            _mm512_loadu_ps(b[n..n + TILE_ROWS].as_ptr())
        });
        let y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), scale), bias);
        _mm512_storeu_ps(o.as_mut_ptr(), y);
    }
}

/// Sixteen sums less `row_sums << shift` (the unsigned operand's offset), or as they are.
#[target_feature(enable = "avx512f")]
fn less_offset(s: __m512i, row_sums: &[i32], shift: Option<u32>) -> __m512i {
    match shift {
        None => s,
        // SAFETY: row_sums holds 16 values.
        Some(k) => unsafe {
            let rs = _mm512_loadu_si512(row_sums[..TILE_ROWS].as_ptr().cast());
            _mm512_sub_epi32(s, _mm512_sllv_epi32(rs, _mm512_set1_epi32(k as i32)))
        },
    }
}

/// One output row's sixteen sums (`s`, offset not yet taken off) of weight rows n0.., `live`
/// of them real: stored as `Epilogue::apply` makes them.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn store16(
    row: &mut [f32],
    s: __m512i,
    row_sums: &[i32],
    shift: Option<u32>,
    live: usize,
    ep: &Epilogue,
    r: usize,
    n0: usize,
) {
    if live == TILE_ROWS {
        let s = less_offset(s, &row_sums[n0..n0 + TILE_ROWS], shift);
        return finish16(&mut row[n0..n0 + TILE_ROWS], s, ep, r, n0);
    }
    let mut lanes = [0i32; TILE_ROWS];
    // SAFETY: lanes holds 16 values.
    unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), s) };
    for (n, &sum) in lanes.iter().take(live).enumerate() {
        let offset = shift.map_or(0, |k| row_sums[n0 + n] << k);
        row[n0 + n] = ep.apply(r, n0 + n, sum - offset);
    }
}

/// How far ahead of its loads `group_sums` prefetches the weights.
const PREFETCH_BYTES: usize = 4 * TILE_BYTES;

/// Below this many activation rows a product on the tile layout runs on VNNI's 512-bit forms
/// (`dot_rows_vnni`) instead of the tiles: one row is bound by reading the weights, which a
/// single sequential stream of loads does best.
pub(crate) const TILE_MIN_ROWS: usize = 4;

/// The sums of `R` activation rows (`xs`, unsigned bytes) with one group of 16 weight rows
/// (`tiles`: its `blocks` tiles in order), a tile row at a time: its 64 bytes hold four of
/// each weight row's values, which meet the activation row's four values broadcast to every
/// lane in one `vpdpbusd`, so each lane sums one weight row's products: no reduction across
/// lanes. Four sums a row, in turn, then added (exact: any order gives the same sum).
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
fn group_sums<const R: usize>(xs: [&[u8]; R], tiles: &[i8], blocks: usize) -> [__m512i; R] {
    assert!(tiles.len() >= blocks * TILE_BYTES && xs.iter().all(|x| x.len() >= blocks * TILE_COLS));
    let mut acc = [[_mm512_setzero_si512(); 4]; R];
    for b in 0..blocks {
        // SAFETY: within tiles and every activation row, as asserted above.
        unsafe {
            let t = tiles.as_ptr().add(b * TILE_BYTES);
            for kk in 0..TILE_COLS / 4 {
                // the weights a few tiles on: one sequential stream, fetched ahead
                _mm_prefetch::<_MM_HINT_T0>(t.wrapping_add(kk * 64 + PREFETCH_BYTES));
                let w = _mm512_loadu_si512(t.add(kk * 64).cast());
                for r in 0..R {
                    let four = std::ptr::read_unaligned(
                        xs[r].as_ptr().add(b * TILE_COLS + 4 * kk).cast::<i32>(),
                    );
                    let x = _mm512_set1_epi32(four);
                    acc[r][kk & 3] = _mm512_dpbusd_epi32(acc[r][kk & 3], x, w);
                }
            }
        }
    }
    acc.map(|[a, b, c, d]| _mm512_add_epi32(_mm512_add_epi32(a, b), _mm512_add_epi32(c, d)))
}

/// As `dot_rows` on the tile layout, a few rows at a time on VNNI's 512-bit forms: the
/// unsigned operand `x + 64` (`Scheme::Offset7`) or `x + 128` (`Scheme::Signed8`, as
/// `quantize_rows` makes it for this layout), each offset taken off with the weight row sums.
///
/// # Safety
/// The CPU must have AVX-512F, BW and VNNI (every CPU with AMX does).
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn dot_rows_vnni(
    q: &QuantizedRows,
    w: &[i8],
    row_sums: &[i32],
    stride: usize,
    ep: &Epilogue,
    out: &mut [f32],
) {
    let Shape {
        m,
        rows,
        groups,
        blocks,
        group_bytes,
    } = Shape::checked(q, w, row_sums, stride, out);
    let signed = q.scheme == Scheme::Signed8;
    // the unsigned operand as quantized for this layout: x + 128, or x + 64
    let bytes = |r: usize| &q.unsigned[r * stride..(r + 1) * stride];
    let shift = Some(if signed { 7 } else { 6 });
    for (g, tiles) in w.chunks_exact(group_bytes).take(groups).enumerate() {
        let n0 = g * TILE_ROWS;
        let live = (rows - n0).min(TILE_ROWS);
        let mut store = |r: usize, s: __m512i| {
            let row = &mut out[r * rows..(r + 1) * rows];
            store16(row, s, row_sums, shift, live, ep, r, n0);
        };
        let mut r = 0;
        while r + 2 <= m {
            let [a, b] = group_sums::<2>([bytes(r), bytes(r + 1)], tiles, blocks);
            store(r, a);
            store(r + 1, b);
            r += 2;
        }
        if r < m {
            let [a] = group_sums::<1>([bytes(r)], tiles, blocks);
            store(r, a);
        }
    }
}
