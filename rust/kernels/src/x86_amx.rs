//! int8 dot products on AMX tiles (`tdpbssd` / `tdpbsud`), over the weights as `Int8Matrix`
//! already stores them: no copy, no other layout.
//!
//! A weight group's block `b` (four rows of 32 bytes, side by side) is one 4 x 32-byte tile A;
//! the activation rows' block `b`, up to 16 rows, is packed into a tile B of 8 rows of
//! `4 * rows` bytes (B[kk][4 m + t] = x[m][32 b + 4 kk + t], the layout the instructions read),
//! and C (4 x rows of i32) += A . B adds each (weight row, activation row) pair's 32 products.
//! Four groups' sums are in flight at once, each in its own C tile, and each group's weights meet
//! every block of 16 activation rows while they are in cache: the weights are read once a call. The signed activations
//! (`Scheme::Signed8`) meet the signed weights in `tdpbssd`; `x + 64` (`Scheme::Offset7`) in
//! `tdpbsud`, the offset taken off with the weight row sums afterwards. Integer sums are exact,
//! so the outputs are the bits of every other path.
//!
//! Linux lends a thread the tiles only once the process has asked (`arch_prctl`,
//! `ARCH_REQ_XCOMP_PERM`): [`has_amx`] asks the first time it is called, and says no where the
//! CPU lacks AMX or the kernel refuses. Each product loads its tile configuration on its own
//! thread and releases the tiles when done, so nothing of it outlives the call.

use std::arch::asm;
use std::arch::x86_64::{__cpuid_count, _mm_prefetch, _mm_setr_epi32, _xgetbv, _MM_HINT_T0};

use crate::int8::{Epilogue, QuantizedRows, Scheme, BLOCK, GROUP};
use crate::x86::finish4;

/// Activation rows in one B tile (and columns of i32 in a C tile).
const TILE_ROWS: usize = 16;
/// Bytes of one packed activation block: 8 rows of 64 bytes (16 rows' four bytes each).
const PACKED_BLOCK: usize = BLOCK / 4 * 64;
/// Weight groups whose sums are in flight together (C tiles 0 to 3).
const GROUPS_AT_ONCE: usize = 4;

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
    /// C tiles 0-3 (4 x `rows` i32), A tiles 4-5 (4 x 32 bytes), B tile 6 (8 x 4 `rows` bytes).
    fn for_rows(rows: usize) -> Self {
        let mut c = Self {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        let width = (4 * rows) as u16;
        for t in 0..4 {
            c.rows[t] = GROUP as u8;
            c.colsb[t] = width;
        }
        for t in 4..6 {
            c.rows[t] = GROUP as u8;
            c.colsb[t] = BLOCK as u16;
        }
        c.rows[6] = (BLOCK / 4) as u8;
        c.colsb[6] = width;
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

/// Packs activation rows `m0..m0 + rows` (each `stride` bytes of `src`) into one B tile per
/// 32-byte block, 64-byte rows.
fn pack(src: &[u8], m0: usize, rows: usize, stride: usize, packed: &mut [u8]) {
    for (b, tile) in packed.chunks_exact_mut(PACKED_BLOCK).enumerate() {
        for m in 0..rows {
            let x = &src[(m0 + m) * stride + b * BLOCK..][..BLOCK];
            for kk in 0..BLOCK / 4 {
                tile[kk * 64 + 4 * m..kk * 64 + 4 * m + 4].copy_from_slice(&x[4 * kk..4 * kk + 4]);
            }
        }
    }
}

/// Adds block `b` of `count` (1 to 4) groups from `group0` into C tiles 0.., the packed block
/// already in tile 6.
///
/// # Safety
/// The tiles must be configured (`TileConfig::for_rows`); `w` must hold those groups.
#[inline(always)]
unsafe fn add_block<const SIGNED: bool>(w: *const i8, group_bytes: usize, count: usize) {
    // the group's block: four rows of 32 bytes, 32 apart
    let a = |j: usize| w.wrapping_add(j * group_bytes);
    let s = BLOCK;
    // SAFETY: the caller's contract; tiles 4 and 5 alternate so a load overlaps a product.
    unsafe {
        macro_rules! step {
            ($a:literal, $c:literal, $p:expr) => {
                if SIGNED {
                    asm!(concat!("tileloadd tmm", $a, ", [{p} + {s}*1]"), concat!("tdpbssd tmm", $c, ", tmm", $a, ", tmm6"), p = in(reg) $p, s = in(reg) s, options(nostack, readonly));
                } else {
                    asm!(concat!("tileloadd tmm", $a, ", [{p} + {s}*1]"), concat!("tdpbsud tmm", $c, ", tmm", $a, ", tmm6"), p = in(reg) $p, s = in(reg) s, options(nostack, readonly));
                }
            };
        }
        step!("4", "0", a(0));
        if count > 1 {
            step!("5", "1", a(1));
        }
        if count > 2 {
            step!("4", "2", a(2));
        }
        if count > 3 {
            step!("5", "3", a(3));
        }
    }
}

/// `out[r * rows + n] = ep(sum_k x[r][k] * w[n][k])`, as `portable::dot_rows`, on AMX tiles;
/// `row_sums` holds one sum per weight row (rows = row_sums.len()).
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
    let (m, rows) = (q.scales.len(), row_sums.len());
    let groups = rows.div_ceil(GROUP);
    let group_bytes = GROUP * stride;
    assert!(stride.is_multiple_of(BLOCK) && w.len() >= groups * group_bytes);
    assert!(out.len() == m * rows && q.values.len() >= m * stride);
    let signed = q.scheme == Scheme::Signed8;
    let src: &[u8] = if signed {
        // SAFETY: i8 and u8 have one layout; tdpbssd reads the bytes as signed
        unsafe { std::slice::from_raw_parts(q.values.as_ptr().cast(), m * stride) }
    } else {
        &q.unsigned[..m * stride]
    };
    let blocks = stride / BLOCK;
    // every block of TILE_ROWS activation rows packed once (the last one's missing rows zero
    // where there are several blocks, so one configuration serves them all): the weights are
    // then read once, each group's blocks meeting every row block while they are in cache
    let row_blocks = m.div_ceil(TILE_ROWS);
    let per_block = blocks * PACKED_BLOCK;
    let mut packed = vec![0u8; row_blocks * per_block];
    for (i, part) in packed.chunks_exact_mut(per_block).enumerate() {
        let m0 = i * TILE_ROWS;
        pack(src, m0, (m - m0).min(TILE_ROWS), stride, part);
    }
    let config = TileConfig::for_rows(m.min(TILE_ROWS));
    // C tiles stored: GROUPS_AT_ONCE x 4 rows x 16 i32
    let mut sums = [[[0i32; TILE_ROWS]; GROUP]; GROUPS_AT_ONCE];
    // SAFETY: has_amx() (the caller's contract): the tiles are this thread's to use.
    unsafe { asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly)) };
    for g0 in (0..groups).step_by(GROUPS_AT_ONCE) {
        let count = (groups - g0).min(GROUPS_AT_ONCE);
        let next_quad = g0 + 2 * GROUPS_AT_ONCE <= groups;
        let wg = w[g0 * group_bytes..].as_ptr();
        for (i, part) in packed.chunks_exact(per_block).enumerate() {
            let (m0, mb) = (i * TILE_ROWS, (m - i * TILE_ROWS).min(TILE_ROWS));
            // SAFETY: configured above; every address read lies within w or packed (checked
            // above: w holds every group, packed every block), every store within sums.
            unsafe {
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
                for b in 0..blocks {
                    asm!("tileloadd tmm6, [{p} + {s}*1]", p = in(reg) part.as_ptr().add(b * PACKED_BLOCK), s = in(reg) 64usize, options(nostack, readonly));
                    let at = wg.add(b * GROUP * BLOCK);
                    if i == 0 && next_quad {
                        // the next four groups' block, fetched while this one is summed: the
                        // first row block streams the weights from memory, the others reread
                        // them from cache
                        for j in 0..GROUPS_AT_ONCE {
                            let p = at.wrapping_add((GROUPS_AT_ONCE + j) * group_bytes);
                            _mm_prefetch::<_MM_HINT_T0>(p);
                            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
                        }
                    }
                    if signed {
                        add_block::<true>(at, group_bytes, count);
                    } else {
                        add_block::<false>(at, group_bytes, count);
                    }
                }
                let s = TILE_ROWS * 4;
                asm!("tilestored [{p} + {s}*1], tmm0", p = in(reg) sums[0].as_mut_ptr(), s = in(reg) s, options(nostack));
                asm!("tilestored [{p} + {s}*1], tmm1", p = in(reg) sums[1].as_mut_ptr(), s = in(reg) s, options(nostack));
                asm!("tilestored [{p} + {s}*1], tmm2", p = in(reg) sums[2].as_mut_ptr(), s = in(reg) s, options(nostack));
                asm!("tilestored [{p} + {s}*1], tmm3", p = in(reg) sums[3].as_mut_ptr(), s = in(reg) s, options(nostack));
            }
            for dm in 0..mb {
                let r = m0 + dm;
                for (j, group) in sums.iter().take(count).enumerate() {
                    let n = (g0 + j) * GROUP;
                    let live = (rows - n).min(GROUP);
                    if live < GROUP {
                        for (l, lane) in group.iter().take(live).enumerate() {
                            let offset = if signed { 0 } else { 64 * row_sums[n + l] };
                            out[r * rows + n + l] = ep.apply(r, n + l, lane[dm] - offset);
                        }
                        continue;
                    }
                    // SAFETY: plain integer lane moves
                    let sum = unsafe {
                        _mm_setr_epi32(group[0][dm], group[1][dm], group[2][dm], group[3][dm])
                    };
                    let o = &mut out[r * rows + n..r * rows + n + GROUP];
                    let sums_of_rows = (!signed).then(|| &row_sums[n..n + GROUP]);
                    // SAFETY: AVX2 comes with every CPU that has AMX.
                    unsafe { finish4(o, sum, sums_of_rows, ep, r, n) };
                }
            }
        }
    }
    // SAFETY: the tiles back to their initial state: nothing of this call is left in them
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}
