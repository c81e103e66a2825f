//! Plain-Rust integer dot products: the reference every other instruction set must equal.

use crate::int8::{Epilogue, Layout, QuantizedRows};

/// `out[r * rows + n] = ep(sum_k x[r][k] * w[n][k])` for every activation row r and weight row n
/// (rows = out.len() / activation rows), with `w` in `layout` (rows padded to `stride` columns).
pub(crate) fn dot_rows(
    q: &QuantizedRows,
    w: &[i8],
    layout: Layout,
    stride: usize,
    ep: &Epilogue,
    out: &mut [f32],
) {
    let rows = out.len() / q.scales.len();
    for (r, out_row) in out.chunks_exact_mut(rows).enumerate() {
        let x = &q.values[r * stride..(r + 1) * stride];
        for (n, o) in out_row.iter_mut().enumerate() {
            let sum = x
                .iter()
                .enumerate()
                .map(|(k, &xv)| i32::from(xv) * i32::from(w[layout.index(stride, n, k)]))
                .sum();
            *o = ep.apply(r, n, sum);
        }
    }
}
