//! What the transformer and the flow head ask of a weight matrix, whatever it stores: int8
//! (`Int8Matrix`) or float (`F32Matrix`).

use std::ops::Range;

use crate::error::{check_len, KernelError, Result};
use crate::isa::Isa;
use crate::pool;

/// A `(rows, cols)` matrix that multiplies rows of float activations: `out (m, rows) = x (m,
/// cols) @ W^T + bias`.
pub trait Linear: Send + Sync + std::fmt::Debug {
    /// Output features.
    fn rows(&self) -> usize;
    /// Input features.
    fn cols(&self) -> usize;
    /// The product on a chosen instruction set, on up to `threads` threads (the calling one
    /// included) when it is large enough to pay.
    fn matmul_on(&self, isa: Isa, x: &[f32], out: &mut [f32], threads: usize) -> Result<()>;

    /// As `matmul_on`, with each activation row's outputs the same bits as a product of that
    /// row alone (a batch of sessions: no row depends on which others share the call).
    fn matmul_rows_on(&self, isa: Isa, x: &[f32], out: &mut [f32], threads: usize) -> Result<()> {
        self.matmul_on(isa, x, out, threads)
    }

    /// The product on the fastest instruction set this CPU has.
    fn matmul(&self, x: &[f32], out: &mut [f32], threads: usize) -> Result<()> {
        self.matmul_on(Isa::best(), x, out, threads)
    }
}

/// How many activation rows `x` holds for a matrix of `rows x cols`, after checking `x` and
/// `out` against it and `isa` against the CPU.
pub(crate) fn check_product(
    isa: Isa,
    rows: usize,
    cols: usize,
    x: &[f32],
    out: &[f32],
) -> Result<usize> {
    if !x.len().is_multiple_of(cols) {
        return Err(KernelError::ShapeMismatch {
            what: "activations (a multiple of cols)",
            expected: x.len().div_ceil(cols) * cols,
            actual: x.len(),
        });
    }
    let m = x.len() / cols;
    check_len("output", m * rows, out.len())?;
    isa.require()?;
    Ok(m)
}

/// Below this many multiply-adds per thread a product runs on the calling thread only: waking
/// a helper costs more. One activation row is bound by reading the weights, and a second thread
/// adds memory bandwidth sooner than it adds arithmetic to several rows.
const MIN_MACS_PER_THREAD: usize = 1 << 21;
const MIN_MACS_PER_THREAD_ONE_ROW: usize = 1 << 19;

/// Runs `part(span, out_part)` for the weight rows of a product of `m` activation rows, on one
/// thread or on up to `threads` (spans starting at multiples of `align`), and gathers the parts
/// into `out (m, rows)`. `part` writes `(m, span.len())` outputs.
pub(crate) fn split_rows(
    rows: usize,
    cols: usize,
    m: usize,
    threads: usize,
    align: usize,
    out: &mut [f32],
    part: impl Fn(Range<usize>, &mut [f32]) + Sync,
) {
    let least = if m == 1 {
        MIN_MACS_PER_THREAD_ONE_ROW
    } else {
        MIN_MACS_PER_THREAD
    };
    let threads = threads.clamp(1, (m * rows * cols / least).max(1));
    if threads == 1 {
        return part(0..rows, out);
    }
    let per = rows.div_ceil(threads).div_ceil(align) * align;
    let spans: Vec<_> = (0..rows)
        .step_by(per)
        .map(|s| s..(s + per).min(rows))
        .collect();
    let mut parts: Vec<Vec<f32>> = spans.iter().map(|s| vec![0.0; m * s.len()]).collect();
    let part = &part;
    let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = parts
        .iter_mut()
        .zip(&spans)
        .map(|(out, span)| {
            let span = span.clone();
            Box::new(move || part(span, out)) as Box<dyn FnOnce() + Send>
        })
        .collect();
    pool::run_all(tasks);
    for (span, part) in spans.iter().zip(parts) {
        for r in 0..m {
            out[r * rows + span.start..r * rows + span.end]
                .copy_from_slice(&part[r * span.len()..(r + 1) * span.len()]);
        }
    }
}
