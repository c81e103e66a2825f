//! int8 weights times float activations: `out = dequant(quant(x) @ W^T) + bias`.
//!
//! Weights are quantized once per output row, symmetric to [-127, 127]; activations once per row at
//! every call, symmetric too: to [-127, 127] when there is one row (the product is bound by
//! reading the weights, and the AVX2 kernel has cycles to spare for moving signs), to [-63, 63]
//! when there are several (the product is bound by arithmetic, and 7-bit values let the AVX2
//! kernel feed `vpmaddubsw` with `x + 64` directly, one instruction fewer per 32 products).
//! Integer products are summed exactly in i32, so every instruction set and thread count gives
//! the same bits; only the final scaling is float (`acc * (x_scale * w_scale) + bias`).

use crate::error::{check_len, KernelError, Result};
use crate::huge::HugeBuffer;
use crate::isa::Isa;
use crate::linear::{check_product, split_rows, Linear};
use crate::portable;

/// Rows are stored padded with zeros to a multiple of this many columns (one AVX2 register).
pub const BLOCK: usize = 32;

/// Rows are stored in interleaved groups of this many: block 0 of rows 0..4, block 1 of rows
/// 0..4, ... so a kernel reading four rows at once reads memory in one sequential stream.
pub const GROUP: usize = 4;

/// Where AMX tiles run the products (`x86_amx`), weights are stored tile by tile instead: 16
/// rows by 64 columns a 1 KiB tile, as `tdpbusd` reads its second operand (`Layout::Tiles`),
/// rows padded to a multiple of 16 and columns to one of 64.
pub const TILE_ROWS: usize = 16;
pub const TILE_COLS: usize = 64;

/// How a matrix's int8 values are laid out: chosen when it is quantized, by what the CPU has
/// (the products run on the kernels that read it; every layout gives the same bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `GROUP` rows interleaved `BLOCK` bytes at a time: the AVX2, VNNI and portable kernels.
    Groups,
    /// AMX: tile (g, b) holds rows `16 g..16 g + 16`, columns `64 b..64 b + 64`, its byte
    /// `64 kk + 4 n + t` the weight of row `16 g + n`, column `64 b + 4 kk + t`; the tiles of a
    /// group of rows one after another.
    Tiles,
}

impl Layout {
    /// The layout for a `(rows, cols)` matrix here: tiles where AMX runs the products
    /// (`amx()`) unless their padding would hold over an eighth more bytes than the groups'
    /// (a narrow or odd-shaped matrix), else groups.
    fn best_for(rows: usize, cols: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        if amx() && 8 * Self::Tiles.stored(rows, cols) <= 9 * Self::Groups.stored(rows, cols) {
            return Self::Tiles;
        }
        Self::Groups
    }

    /// Bytes of values a `(rows, cols)` matrix stores in this layout.
    fn stored(self, rows: usize, cols: usize) -> usize {
        let (g, a) = (self.group_rows(), self.col_align());
        rows.div_ceil(g) * g * cols.div_ceil(a) * a
    }

    /// Rows stored together (a span of a product starts at a multiple of it).
    pub(crate) fn group_rows(self) -> usize {
        match self {
            Self::Groups => GROUP,
            Self::Tiles => TILE_ROWS,
        }
    }

    /// Columns a row is padded to a multiple of.
    fn col_align(self) -> usize {
        match self {
            Self::Groups => BLOCK,
            Self::Tiles => TILE_COLS,
        }
    }

    /// Columns of a row stored side by side (one contiguous run).
    fn run(self) -> usize {
        match self {
            Self::Groups => BLOCK,
            Self::Tiles => 4,
        }
    }

    /// Where weight (row, col) lives.
    pub(crate) fn index(self, stride: usize, row: usize, col: usize) -> usize {
        match self {
            Self::Groups => {
                let (group, lane) = (row / GROUP, row % GROUP);
                let (block, offset) = (col / BLOCK, col % BLOCK);
                group * GROUP * stride + (block * GROUP + lane) * BLOCK + offset
            }
            Self::Tiles => {
                let (group, n) = (row / TILE_ROWS, row % TILE_ROWS);
                let (block, k) = (col / TILE_COLS, col % TILE_COLS);
                let tile = group * (stride / TILE_COLS) + block;
                tile * TILE_ROWS * TILE_COLS + (k / 4) * 64 + n * 4 + k % 4
            }
        }
    }
}

/// A `(rows, cols)` float matrix stored as int8 with one scale per row, plus an optional bias.
#[derive(Debug)]
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    stride: usize,
    layout: Layout,
    data: HugeBuffer,
    scales: Vec<f32>,
    /// Sum of each row's int8 values (padded to whole groups), to undo `Scheme::Offset7`'s offset.
    row_sums: Vec<i32>,
    bias: Option<Vec<f32>>,
}

/// How one call's activation rows are quantized (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Values in [-127, 127]; `unsigned` holds their magnitudes.
    Signed8,
    /// Values in [-63, 63]; `unsigned` holds `value + 64`.
    Offset7,
}

impl Scheme {
    fn for_rows(rows: usize) -> Self {
        if rows == 1 {
            Self::Signed8
        } else {
            Self::Offset7
        }
    }

    fn levels(self) -> f32 {
        match self {
            Self::Signed8 => 127.0,
            Self::Offset7 => 63.0,
        }
    }
}

/// Activation rows quantized for one call: values, their unsigned form, one scale per row.
pub(crate) struct QuantizedRows {
    pub scheme: Scheme,
    pub values: Vec<i8>,
    /// `Offset7`: `x + 64`; `Signed8`: the magnitudes (the group layout's AVX2 kernels move
    /// the signs onto the weights) or `x + 128` (the tile layout's VNNI kernel takes 128 times
    /// the row sums off).
    pub unsigned: Vec<u8>,
    pub scales: Vec<f32>,
}

/// How one integer sum becomes an output, the same on every instruction set:
/// `sum * (x_scale * w_scale) + bias`, for activation row r and weight row n of a span.
pub(crate) struct Epilogue<'a> {
    pub x_scales: &'a [f32],
    pub w_scales: &'a [f32],
    pub bias: Option<&'a [f32]>,
}

impl Epilogue<'_> {
    #[inline]
    pub fn apply(&self, r: usize, n: usize, sum: i32) -> f32 {
        sum as f32 * (self.x_scales[r] * self.w_scales[n]) + self.bias.map_or(0.0, |b| b[n])
    }
}

/// `v` scaled by `inv`, clamped to [-levels, levels] and rounded half to even. Adding and
/// subtracting 1.5 * 2^23 rounds like `round_ties_even` for |y| < 2^22 but compiles to two
/// vector additions instead of a libm call per value.
#[inline(always)]
fn quantize_value(v: f32, inv: f32, levels: f32) -> i8 {
    const MAGIC: f32 = 12_582_912.0;
    let t = (v * inv).clamp(-levels, levels) + MAGIC;
    // t = 1.5 * 2^23 + round(y) exactly, whose mantissa's low byte is round(y) mod 256: the
    // integer read off the bits (the loop vectorizes; a float-to-int cast did not); NaN: 0
    let q = t.to_bits() as u8 as i8;
    if t.is_nan() {
        0
    } else {
        q
    }
}

/// As `quantize_value` for a finite `v` and a finite `inv` (a weight row, checked first):
/// the same value, by a plain truncating conversion the loop vectorizes.
#[inline]
fn quantize_finite(v: f32, inv: f32) -> i8 {
    const MAGIC: f32 = 12_582_912.0;
    let y = ((v * inv).clamp(-127.0, 127.0) + MAGIC) - MAGIC;
    // SAFETY: y is an integer in [-127, 127]: finite and representable in i32.
    unsafe { y.to_int_unchecked::<i32>() as i8 }
}

/// The scale that maps a row's largest magnitude to `levels` (0 for an all-zero row).
#[inline(always)]
fn row_scale(row: &[f32], levels: f32) -> f32 {
    // sixteen running maxima side by side (one chain would wait on each comparison): a
    // maximum does not depend on the order it is taken in
    let mut lanes = [0.0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for chunk in &mut chunks {
        for (m, v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v.abs());
        }
    }
    let rest = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    lanes.iter().fold(rest, |m, &v| m.max(v)) / levels
}

fn quantize_rows(
    x: &[f32],
    rows: usize,
    cols: usize,
    stride: usize,
    scheme: Scheme,
    layout: Layout,
) -> QuantizedRows {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU has AVX-512F and BW, checked just above.
            return unsafe { quantize_rows_avx512(x, rows, cols, stride, scheme, layout) };
        }
        if Isa::Avx2.is_supported() {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { quantize_rows_avx2(x, rows, cols, stride, scheme, layout) };
        }
    }
    quantize_rows_with(x, rows, cols, stride, scheme, layout)
}

/// `quantize_rows` compiled for AVX-512 (the same operations, so the same values).
///
/// # Safety
/// The CPU must support AVX-512F and BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512bw")]
unsafe fn quantize_rows_avx512(
    x: &[f32],
    rows: usize,
    cols: usize,
    stride: usize,
    scheme: Scheme,
    layout: Layout,
) -> QuantizedRows {
    quantize_rows_with(x, rows, cols, stride, scheme, layout)
}

/// `quantize_rows` compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_rows_avx2(
    x: &[f32],
    rows: usize,
    cols: usize,
    stride: usize,
    scheme: Scheme,
    layout: Layout,
) -> QuantizedRows {
    quantize_rows_with(x, rows, cols, stride, scheme, layout)
}

#[inline(always)]
fn quantize_rows_with(
    x: &[f32],
    rows: usize,
    cols: usize,
    stride: usize,
    scheme: Scheme,
    layout: Layout,
) -> QuantizedRows {
    let levels = scheme.levels();
    let mut q = QuantizedRows {
        scheme,
        values: vec![0; rows * stride],
        unsigned: vec![0; rows * stride],
        scales: Vec::with_capacity(rows),
    };
    for (r, row) in x.chunks_exact(cols).enumerate() {
        let scale = row_scale(row, levels);
        // a row that is not finite gives NaN outputs (through a NaN scale)
        q.scales
            .push(if scale.is_finite() { scale } else { f32::NAN });
        let values = &mut q.values[r * stride..(r + 1) * stride];
        if scale > 0.0 && scale.is_finite() {
            // else all zero (the output is the bias) or not finite
            let inv = 1.0 / scale;
            for (d, &v) in values.iter_mut().zip(row) {
                *d = quantize_value(v, inv, levels);
            }
        }
        let unsigned = &mut q.unsigned[r * stride..(r + 1) * stride];
        for (u, &v) in unsigned.iter_mut().zip(values.iter()) {
            *u = match (scheme, layout) {
                (Scheme::Signed8, Layout::Groups) => v.unsigned_abs(),
                (Scheme::Signed8, Layout::Tiles) => (v as u8) ^ 0x80,
                (Scheme::Offset7, _) => (v + 64) as u8,
            };
        }
    }
    q
}

/// Where the float weights to quantize come from: float32 values, or bfloat16 bits (a
/// checkpoint's own storage) widened exactly, row by row, as they are read.
#[derive(Clone, Copy)]
pub enum WeightSource<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u16]),
}

impl WeightSource<'_> {
    fn len(&self) -> usize {
        match self {
            Self::F32(w) => w.len(),
            Self::Bf16(w) => w.len(),
        }
    }

    /// Row `r` of a `cols`-wide matrix as float32: borrowed, or widened into `scratch`.
    fn row<'s>(&'s self, r: usize, cols: usize, scratch: &'s mut [f32]) -> &'s [f32] {
        match self {
            Self::F32(w) => &w[r * cols..(r + 1) * cols],
            Self::Bf16(w) => {
                for (d, &bits) in scratch.iter_mut().zip(&w[r * cols..(r + 1) * cols]) {
                    *d = crate::float::bf16_to_f32(bits);
                }
                scratch
            }
        }
    }
}

/// Whether the AVX2 int8 path sums with VNNI here, and whether with its 512-bit forms too
/// (rows four or more at a time): the CPU has them and `VOXLET_INT8_VNNI` is not `0` (nor
/// `256`, which keeps to the 256-bit forms). The switch lets a benchmark time each path in
/// one build; all give the same bits.
#[cfg(target_arch = "x86_64")]
fn vnni() -> (bool, bool) {
    static VNNI: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();
    *VNNI.get_or_init(|| {
        let setting = std::env::var_os("VOXLET_INT8_VNNI");
        let on = crate::x86::has_vnni() && setting.as_ref().is_none_or(|v| v != "0");
        let wide = on && crate::x86::has_vnni512() && setting.is_none_or(|v| v != "256");
        (on, wide)
    })
}

/// Whether products run on AMX tiles here (matrices quantized from now on take
/// `Layout::Tiles`, unless narrow or odd-shaped): the CPU and OS have them
/// (`x86_amx::has_amx`) and `VOXLET_INT8_AMX` is not `0` (for a benchmark's A/B; every path
/// gives the same bits).
#[cfg(target_arch = "x86_64")]
fn amx() -> bool {
    static AMX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMX.get_or_init(|| {
        std::env::var_os("VOXLET_INT8_AMX").is_none_or(|v| v != "0") && crate::x86_amx::has_amx()
    })
}

/// Weights quantized per thread at least (fewer: one thread; spawning costs more).
const MIN_WEIGHTS_PER_THREAD: usize = 1 << 18;

impl Int8Matrix {
    /// Quantizes a row-major `(rows, cols)` float matrix, one symmetric scale per row.
    pub fn quantize(
        weight: &[f32],
        rows: usize,
        cols: usize,
        bias: Option<&[f32]>,
    ) -> Result<Self> {
        Self::quantize_from(WeightSource::F32(weight), rows, cols, bias, 1)
    }

    /// As `quantize`, from either source, on up to `threads` threads (the calling one
    /// included; groups of rows split between them, each row quantized alone, so the bits do
    /// not depend on the count). bfloat16 widens exactly: the same matrix as from the float32
    /// values of the same bits.
    pub fn quantize_from(
        weight: WeightSource<'_>,
        rows: usize,
        cols: usize,
        bias: Option<&[f32]>,
        threads: usize,
    ) -> Result<Self> {
        Self::quantize_into(
            Layout::best_for(rows, cols),
            weight,
            rows,
            cols,
            bias,
            threads,
        )
    }

    /// As `quantize_from`, in a chosen layout (for tests).
    pub(crate) fn quantize_into(
        layout: Layout,
        weight: WeightSource<'_>,
        rows: usize,
        cols: usize,
        bias: Option<&[f32]>,
        threads: usize,
    ) -> Result<Self> {
        for (what, n) in [("rows", rows), ("cols", cols)] {
            if n == 0 {
                return Err(KernelError::InvalidArgument {
                    what,
                    value: "0".into(),
                });
            }
        }
        check_len("weight", rows * cols, weight.len())?;
        if let Some(b) = bias {
            check_len("bias", rows, b.len())?;
        }
        let stride = cols.div_ceil(layout.col_align()) * layout.col_align();
        let group = layout.group_rows();
        let groups = rows.div_ceil(group);
        let mut data = HugeBuffer::zeroed(groups * group * stride);
        let mut scales = vec![0.0f32; groups * group];
        let mut row_sums = vec![0i32; groups * group];
        let threads = threads.clamp(1, (rows * cols / MIN_WEIGHTS_PER_THREAD).max(1));
        let per = groups.div_ceil(threads); // groups a thread
                                            // each part's first non-finite weight, if any
        let mut bad: Vec<Option<f32>> = vec![None; threads];
        let parts: Vec<Box<dyn FnOnce() + Send + '_>> = data
            .chunks_mut(per * group * stride)
            .zip(scales.chunks_mut(per * group))
            .zip(row_sums.chunks_mut(per * group))
            .zip(bad.iter_mut())
            .enumerate()
            .map(|(t, (((data, scales), sums), bad))| {
                let first = t * per * group;
                let last = (first + per * group).min(rows);
                Box::new(move || {
                    let mut scratch = vec![0.0f32; cols];
                    for r in first..last {
                        let row = weight.row(r, cols, &mut scratch);
                        // one branch-free pass (it vectorizes); the value looked up on failure
                        if !row.iter().fold(true, |ok, v| ok & v.is_finite()) {
                            *bad = row.iter().find(|v| !v.is_finite()).copied();
                            return;
                        }
                        let local = r - first;
                        let scale = row_scale(row, 127.0);
                        scales[local] = scale;
                        if scale > 0.0 {
                            let inv = 1.0 / scale;
                            // the row in the layout's contiguous runs
                            let run = layout.run();
                            for (b, block) in row.chunks(run).enumerate() {
                                let at = layout.index(stride, local, b * run);
                                let mut sum = 0i32;
                                for (d, &v) in data[at..at + block.len()].iter_mut().zip(block) {
                                    let q = quantize_finite(v, inv);
                                    *d = q;
                                    sum += i32::from(q);
                                }
                                sums[local] += sum;
                            }
                        }
                    }
                }) as Box<dyn FnOnce() + Send>
            })
            .collect();
        crate::pool::run_all(parts);
        if let Some(v) = bad.into_iter().flatten().next() {
            return Err(KernelError::InvalidArgument {
                what: "weight value",
                value: v.to_string(),
            });
        }
        scales.truncate(rows);
        Ok(Self {
            rows,
            cols,
            stride,
            layout,
            data,
            scales,
            row_sums,
            bias: bias.map(<[f32]>::to_vec),
        })
    }

    /// The shape the values are stored in: rows and columns padded to the layout's multiples
    /// (4 and 32, or 16 and 64 where AMX tiles run the products).
    pub fn stored_shape(&self) -> (usize, usize) {
        (self.row_sums.len(), self.stride)
    }

    /// Bytes held: int8 values (padded rows), scales and bias.
    pub fn nbytes(&self) -> usize {
        self.data.len()
            + 4 * (self.scales.len() + self.row_sums.len())
            + 4 * self.bias.as_ref().map_or(0, Vec::len)
    }

    /// The float matrix the int8 one stands for, row-major `(rows, cols)`.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for (r, &s) in self.scales.iter().enumerate() {
            out.extend(
                (0..self.cols)
                    .map(|c| f32::from(self.data[self.layout.index(self.stride, r, c)]) * s),
            );
        }
        out
    }

    /// Outputs for weight rows `span` (starting at a group) of every activation row, into
    /// `out (m, span.len())`.
    fn accumulate(
        &self,
        isa: Isa,
        q: &QuantizedRows,
        span: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let group = self.layout.group_rows();
        let groups = span.start / group..span.end.div_ceil(group);
        let weights =
            &self.data[groups.start * group * self.stride..groups.end * group * self.stride];
        let ep = Epilogue {
            x_scales: &q.scales,
            w_scales: &self.scales[span.clone()],
            bias: self.bias.as_ref().map(|b| &b[span.clone()]),
        };
        let rs = &self.row_sums[span];
        match (isa, self.layout) {
            (Isa::Portable, layout) => {
                portable::dot_rows(q, weights, layout, self.stride, &ep, out)
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: tiles are only laid out where amx() (x86_amx::has_amx) holds.
            (Isa::Avx2, Layout::Tiles) => unsafe {
                if q.scales.len() < crate::x86_amx::TILE_MIN_ROWS {
                    crate::x86_amx::dot_rows_vnni(q, weights, rs, self.stride, &ep, out)
                } else {
                    crate::x86_amx::dot_rows(q, weights, rs, self.stride, &ep, out)
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: matmul_on checked that the CPU supports AVX2.
            (Isa::Avx2, Layout::Groups) => unsafe {
                let (vnni, wide) = vnni();
                crate::x86::dot_rows(q, weights, rs, self.stride, &ep, out, vnni, wide)
            },
            #[cfg(not(target_arch = "x86_64"))]
            (Isa::Avx2, _) => unreachable!("matmul_on checks support first"),
        }
    }
}

impl Linear for Int8Matrix {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn matmul_on(&self, isa: Isa, x: &[f32], out: &mut [f32], threads: usize) -> Result<()> {
        let m = check_product(isa, self.rows, self.cols, x, out)?;
        if m == 0 {
            return Ok(());
        }
        let q = quantize_rows(
            x,
            m,
            self.cols,
            self.stride,
            Scheme::for_rows(m),
            self.layout,
        );
        let part = |span, out: &mut [f32]| self.accumulate(isa, &q, span, out);
        split_rows(
            self.rows,
            self.cols,
            m,
            threads,
            self.layout.group_rows(),
            out,
            part,
        );
        Ok(())
    }

    /// Every row quantized as a single row is (8-bit), so each row's outputs are those of a
    /// product of that row alone; the weights are still read once for all rows.
    fn matmul_rows_on(&self, isa: Isa, x: &[f32], out: &mut [f32], threads: usize) -> Result<()> {
        let m = check_product(isa, self.rows, self.cols, x, out)?;
        if m == 0 {
            return Ok(());
        }
        let q = quantize_rows(x, m, self.cols, self.stride, Scheme::Signed8, self.layout);
        let part = |span, out: &mut [f32]| self.accumulate(isa, &q, span, out);
        split_rows(
            self.rows,
            self.cols,
            m,
            threads,
            self.layout.group_rows(),
            out,
            part,
        );
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::testing::values;

    #[test]
    fn activations_round_half_to_even_and_nan_is_zero() {
        let cases = [
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -2.5,
            3.49,
            -3.51,
            62.5,
            63.5,
            -63.5,
            126.5,
            127.4,
            130.0,
            -1e9,
            1e30,
            f32::INFINITY,
            f32::NAN,
        ];
        for levels in [63.0, 127.0] {
            for &v in &cases {
                let want = if v.is_nan() {
                    0
                } else {
                    v.clamp(-levels, levels).round_ties_even() as i8
                };
                assert_eq!(quantize_value(v, 1.0, levels), want, "{v} to {levels}");
            }
        }
    }

    #[test]
    fn vnni_and_amx_sums_equal_avx2_and_portable_ones_for_both_schemes() {
        if !Isa::Avx2.is_supported() {
            return; // nothing x86 to compare on this CPU; the portable path is tested elsewhere
        }
        let (rows, cols) = (37, 300); // rows not a multiple of 4, cols not of 32
        let w = values(rows * cols, 1);
        let b = values(rows, 2);
        let quantize = |layout| {
            Int8Matrix::quantize_into(layout, WeightSource::F32(&w), rows, cols, Some(&b), 1)
                .unwrap()
        };
        let (mat, tiles) = (quantize(Layout::Groups), quantize(Layout::Tiles));
        let ep = Epilogue {
            x_scales: &[],
            w_scales: &mat.scales,
            bias: mat.bias.as_deref(),
        };
        for (m, scheme) in [
            (1, Scheme::Signed8),
            (3, Scheme::Signed8),
            (5, Scheme::Offset7),
            (15, Scheme::Offset7), // eight, four, two and one rows at a time
            (16, Scheme::Offset7),
            (15, Scheme::Signed8),
            (8, Scheme::Signed8),
            (37, Scheme::Offset7), // AMX: two whole tiles of 16 rows and five more
            (33, Scheme::Signed8),
            (2, Scheme::Offset7),
        ] {
            let x = values(m * cols, 3 + m as u32);
            let q = quantize_rows(&x, m, cols, mat.stride, scheme, Layout::Groups);
            let ep = Epilogue {
                x_scales: &q.scales,
                ..ep
            };
            let mut want = vec![0.0; m * rows];
            portable::dot_rows(&q, &mat.data, Layout::Groups, mat.stride, &ep, &mut want);
            let mut paths = vec![(false, false)];
            if crate::x86::has_vnni() {
                paths.push((true, false));
            }
            if crate::x86::has_vnni512() {
                paths.push((true, true));
            }
            for (vnni, wide) in paths {
                let mut got = vec![0.0; m * rows];
                // SAFETY: AVX2 checked above; vnni only where has_vnni(), wide has_vnni512().
                unsafe {
                    crate::x86::dot_rows(
                        &q,
                        &mat.data,
                        &mat.row_sums[..rows],
                        mat.stride,
                        &ep,
                        &mut got,
                        vnni,
                        wide,
                    )
                };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{scheme:?}, m = {m}, vnni {vnni}, wide {wide}"
                );
            }
            // the tile layout: padded to 64 columns, the same sums
            let qt = quantize_rows(&x, m, cols, tiles.stride, scheme, Layout::Tiles);
            let ep = Epilogue {
                x_scales: &qt.scales,
                ..ep
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let mut portable_tiles = vec![0.0; m * rows];
            portable::dot_rows(
                &qt,
                &tiles.data,
                Layout::Tiles,
                tiles.stride,
                &ep,
                &mut portable_tiles,
            );
            assert_eq!(
                bits(&portable_tiles),
                bits(&want),
                "{scheme:?}, m = {m}, tiles"
            );
            if crate::x86_amx::has_amx() {
                let mut got = vec![0.0; m * rows];
                // SAFETY: has_amx() checked; tiles holds the tile layout.
                unsafe {
                    crate::x86_amx::dot_rows(
                        &qt,
                        &tiles.data,
                        &tiles.row_sums[..rows],
                        tiles.stride,
                        &ep,
                        &mut got,
                    )
                };
                assert_eq!(bits(&got), bits(&want), "{scheme:?}, m = {m}, amx");
            }
            if crate::x86::has_vnni512() {
                let mut got = vec![0.0; m * rows];
                // SAFETY: has_vnni512() checked; tiles holds the tile layout.
                unsafe {
                    crate::x86_amx::dot_rows_vnni(
                        &qt,
                        &tiles.data,
                        &tiles.row_sums[..rows],
                        tiles.stride,
                        &ep,
                        &mut got,
                    )
                };
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{scheme:?}, m = {m}, vnni on tiles"
                );
            }
        }
    }
}
#[cfg(test)]
mod timing {
    use super::*;
    use crate::testing::values;
    #[test]
    #[ignore]
    fn time_quantize() {
        let x = values(16 * 1024, 3);
        let n = 5000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(quantize_rows(
                &x,
                16,
                1024,
                1024,
                Scheme::Offset7,
                Layout::Groups,
            ));
        }
        eprintln!(
            "quantize 16x1024: {:.1} us",
            t.elapsed().as_secs_f64() / n as f64 * 1e6
        );
    }
}
