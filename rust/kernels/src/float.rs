//! Float weights times float activations: `out = x @ W^T + bias`, in float32 throughout.
//!
//! Every output is summed in one fixed order, the same on every instruction set: eight partial
//! sums, lane j taking columns j, j + 8, j + 16, ... by fused multiply-add, then combined as
//! `((p0 + p4) + (p2 + p6)) + ((p1 + p5) + (p3 + p7))`, then the columns past the last multiple
//! of eight by fused multiply-add in order, then the bias. An activation row gives the same
//! bits alone or among others, on any thread count.
//!
//! The matrix reads its row-major weights where the caller keeps them (a framework's tensor,
//! or a mapped checkpoint), so the float model is not held twice. They may be float32 or
//! bfloat16 (`F32Matrix::bf16`): a bfloat16 weight widens to float32 exactly (its 16 bits are
//! the float's top half), and the sums run in the same order, so a bf16 matrix gives the bits
//! of the float32 matrix holding the same values, reading half the bytes (the full-size
//! FlowLM step is bound by how fast its weights stream from memory).
//!
//! For products of short rows (a few hundred inputs at most, as in the small layouts' Mimi),
//! where combining eight partial sums costs as much as the sums, a matrix can instead keep an
//! input-major copy of its weights (`F32Matrix::input_major`) and sum each output as one chain
//! of fused multiply-adds over its inputs in order, then the bias (`outer`): another fixed
//! order, the same on every instruction set too.

use std::fmt;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use crate::error::{check_len, KernelError, Result};
use crate::huge::{HugeBuffer, HUGE_PAGE};
use crate::isa::Isa;
use crate::linear::{check_product, split_rows, Linear};

/// Weight rows one kernel pass reads together (each a sequential stream).
pub(crate) const ROWS_PER_PASS: usize = 4;

/// Weights as stored: float32, or bfloat16 bit patterns (row-major only).
enum Store {
    F32(Box<dyn AsRef<[f32]> + Send + Sync>),
    Bf16(Box<dyn AsRef<[u16]> + Send + Sync>),
}

/// The weights a matrix read before `move_to_huge_pages` replaced them: the caller's storage,
/// handed back so the caller drops it where that is safe (a Python object, with the GIL).
pub struct ReplacedWeights(#[allow(dead_code)] Store);

/// A `(rows, cols)` float matrix over row-major weights held by whoever built it, plus an
/// optional bias.
pub struct F32Matrix {
    rows: usize,
    cols: usize,
    /// Read for the whole of a product (one guard, taken by the calling thread); written only
    /// by `move_to_huge_pages`, to put a copy of the same values in place.
    weight: RwLock<Store>,
    moved: std::sync::atomic::AtomicBool,
    bias: Option<Vec<f32>>,
    /// Whether `weight` is input-major `(cols, rows)`, a copy of its own.
    input_major: bool,
}

/// A bfloat16 bit pattern as the float32 it stands for (exact).
#[inline(always)]
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

impl fmt::Debug for F32Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("F32Matrix")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("bias", &self.bias.is_some())
            .finish()
    }
}

impl F32Matrix {
    /// A matrix over `weight`, row-major `(rows, cols)`; the weights are read, not copied.
    pub fn new(
        weight: impl AsRef<[f32]> + Send + Sync + 'static,
        rows: usize,
        cols: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        check_len("weight", rows * cols, weight.as_ref().len())?;
        Self::checked(Store::F32(Box::new(weight)), rows, cols, bias)
    }

    /// A matrix over `weight`, row-major `(rows, cols)` bfloat16 bit patterns, read in place:
    /// the bits of `new` over the same values widened to float32.
    pub fn bf16(
        weight: impl AsRef<[u16]> + Send + Sync + 'static,
        rows: usize,
        cols: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        check_len("weight", rows * cols, weight.as_ref().len())?;
        Self::checked(Store::Bf16(Box::new(weight)), rows, cols, bias)
    }

    fn checked(weight: Store, rows: usize, cols: usize, bias: Option<Vec<f32>>) -> Result<Self> {
        for (what, n) in [("rows", rows), ("cols", cols)] {
            if n == 0 {
                return Err(KernelError::InvalidArgument {
                    what,
                    value: "0".into(),
                });
            }
        }
        if let Some(b) = &bias {
            check_len("bias", rows, b.len())?;
        }
        Ok(Self {
            rows,
            cols,
            weight: RwLock::new(weight),
            moved: std::sync::atomic::AtomicBool::new(false),
            bias,
            input_major: false,
        })
    }

    /// A matrix over an input-major copy of the row-major `(rows, cols)` `weight`, summed
    /// output by output in one chain (see the module's documentation); one thread.
    pub fn input_major(
        weight: &[f32],
        rows: usize,
        cols: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        check_len("weight", rows * cols, weight.len())?;
        let mut copy = vec![0.0; weight.len()];
        for (i, row) in weight.chunks_exact(cols.max(1)).enumerate() {
            for (c, &w) in row.iter().enumerate() {
                copy[c * rows + i] = w;
            }
        }
        let mut m = Self::new(copy, rows, cols, bias)?;
        m.input_major = true;
        Ok(m)
    }

    fn store(&self) -> RwLockReadGuard<'_, Store> {
        // a writer only swaps one whole store for another: never left half done
        self.weight.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the float32 weights as stored: row-major `(rows, cols)`, or `(cols, rows)`
    /// if input-major; None for bfloat16 ones.
    pub fn weight(&self) -> Option<Vec<f32>> {
        match &*self.store() {
            Store::F32(w) => Some((**w).as_ref().to_vec()),
            Store::Bf16(_) => None,
        }
    }

    /// Moves row-major weights of at least one huge page onto huge pages of the matrix's own
    /// (a copy of the same values: products give the same bits before, during and after),
    /// returning the storage read until now; None where there is nothing to move (input-major,
    /// under one huge page, or already moved). The copy is made while products go on; they
    /// wait only for the swap. A one-row product streams every weight each call, and on 2 MiB
    /// pages it runs faster (BENCHMARKS.md); copying at load would make the caller wait for
    /// every page to be faulted in, so a loader can hand this to a background thread.
    pub fn move_to_huge_pages(&self) -> Option<ReplacedWeights> {
        if self.input_major || self.moved() {
            return None;
        }
        let copy = match &*self.store() {
            Store::F32(w) if 4 * (**w).as_ref().len() >= HUGE_PAGE => {
                Store::F32(Box::new(HugeBuffer::copy_of((**w).as_ref())))
            }
            Store::Bf16(w) if 2 * (**w).as_ref().len() >= HUGE_PAGE => {
                Store::Bf16(Box::new(HugeBuffer::copy_of((**w).as_ref())))
            }
            _ => return None,
        };
        let mut store = self.weight.write().unwrap_or_else(PoisonError::into_inner);
        self.moved.store(true, std::sync::atomic::Ordering::Release);
        Some(ReplacedWeights(std::mem::replace(&mut *store, copy)))
    }

    /// Whether `move_to_huge_pages` has put the weights on huge pages of the matrix's own.
    pub fn moved(&self) -> bool {
        self.moved.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Bytes the weights take where they are kept (4 or 2 a value).
    pub fn weight_bytes(&self) -> usize {
        let per = if matches!(*self.store(), Store::F32(_)) {
            4
        } else {
            2
        };
        self.rows * self.cols * per
    }

    /// Whether the weights are stored input-major (`input_major`).
    pub fn is_input_major(&self) -> bool {
        self.input_major
    }

    /// Outputs for weight rows `span` of every activation row, into `out (m, span.len())`.
    fn accumulate(
        &self,
        store: &Store,
        isa: Isa,
        x: &[f32],
        span: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let values = span.start * self.cols..span.end * self.cols;
        let bias = self.bias.as_ref().map(|b| &b[span]);
        let cols = self.cols;
        match (store, isa) {
            (Store::F32(w), Isa::Portable) => dot_rows(x, &(**w).as_ref()[values], cols, bias, out),
            (Store::Bf16(w), Isa::Portable) => {
                dot_rows(x, &(**w).as_ref()[values], cols, bias, out)
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: matmul_on checked that the CPU supports AVX2 and FMA.
            (Store::F32(w), Isa::Avx2) => unsafe {
                crate::float_x86::dot_rows(x, &(**w).as_ref()[values], cols, bias, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            (Store::Bf16(w), Isa::Avx2) => unsafe {
                crate::float_x86::dot_rows(x, &(**w).as_ref()[values], cols, bias, out)
            },
            #[cfg(not(target_arch = "x86_64"))]
            (_, Isa::Avx2) => unreachable!("matmul_on checks support first"),
        }
    }
}

impl Linear for F32Matrix {
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
        let store = self.store();
        if let (true, Store::F32(w)) = (self.input_major, &*store) {
            let rows = crate::outer::Rows::plain(x, self.cols);
            crate::outer::matmul_kn(
                isa,
                rows,
                (**w).as_ref(),
                self.rows,
                self.bias.as_deref(),
                out,
            );
            return Ok(());
        }
        let store = &*store; // one guard for the product: helper threads read through it
        let part = |span, out: &mut [f32]| self.accumulate(store, isa, x, span, out);
        split_rows(self.rows, self.cols, m, threads, ROWS_PER_PASS, out, part);
        Ok(())
    }
}

/// The eight partial sums of one output combined in the module's order.
#[inline(always)]
pub(crate) fn combine(p: [f32; 8]) -> f32 {
    ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))
}

/// A stored weight value: float32, or bfloat16 bits (widened exactly).
pub(crate) trait Weight: Copy + Send + Sync {
    fn value(self) -> f32;
}

impl Weight for f32 {
    #[inline(always)]
    fn value(self) -> f32 {
        self
    }
}

impl Weight for u16 {
    #[inline(always)]
    fn value(self) -> f32 {
        bf16_to_f32(self)
    }
}

/// `x . w` in the module's order (without the bias).
#[inline(always)]
fn dot<W: Weight>(x: &[f32], w: &[W]) -> f32 {
    let whole = x.len() / 8 * 8;
    let mut p = [0.0f32; 8];
    for (xs, ws) in x[..whole].chunks_exact(8).zip(w[..whole].chunks_exact(8)) {
        for j in 0..8 {
            p[j] = xs[j].mul_add(ws[j].value(), p[j]);
        }
    }
    let mut sum = combine(p);
    for (&a, &b) in x[whole..].iter().zip(&w[whole..]) {
        sum = a.mul_add(b.value(), sum);
    }
    sum
}

/// Plain Rust: `out[r * n + i] = x_r . w_i + bias_i` for every activation row r of `x` and
/// weight row i of `w` (n = w.len() / cols); the reference the AVX2 kernel equals.
pub(crate) fn dot_rows<W: Weight>(
    x: &[f32],
    w: &[W],
    cols: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let n = w.len() / cols;
    for (xr, out_row) in x.chunks_exact(cols).zip(out.chunks_exact_mut(n)) {
        for (i, (wr, o)) in w.chunks_exact(cols).zip(out_row).enumerate() {
            *o = dot(xr, wr) + bias.map_or(0.0, |b| b[i]);
        }
    }
}
