//! Plain-Rust integer dot products: the reference every other instruction set must equal.

use crate::int8::{Epilogue, QuantizedRows, BLOCK, GROUP};

/// `out[r * rows + n] = ep(sum_k x[r][k] * w[n][k])` for every activation row r and weight row n
/// (rows = out.len() / activation rows), with `w` in the group-interleaved layout (see `GROUP`).
pub(crate) fn dot_rows(q: &QuantizedRows, w: &[i8], stride: usize, ep: &Epilogue, out: &mut [f32]) {
    let rows = out.len() / q.scales.len();
    for (r, out_row) in out.chunks_exact_mut(rows).enumerate() {
        let x = &q.values[r * stride..(r + 1) * stride];
        for (n, o) in out_row.iter_mut().enumerate() {
            let group = &w[n / GROUP * GROUP * stride..];
            let lane = n % GROUP;
            let sum = x
                .chunks_exact(BLOCK)
                .enumerate()
                .map(|(b, xb)| {
                    let wb = &group[(b * GROUP + lane) * BLOCK..][..BLOCK];
                    xb.iter()
                        .zip(wb)
                        .map(|(&xv, &wv)| i32::from(xv) * i32::from(wv))
                        .sum::<i32>()
                })
                .sum();
            *o = ep.apply(r, n, sum);
        }
    }
}
