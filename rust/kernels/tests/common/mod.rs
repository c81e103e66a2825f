//! Helpers shared by the integration tests (each test binary uses some of them).
#![allow(dead_code)]

/// Deterministic values in [-1, 1) (a small LCG; no dev-dependency needed).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `values(n, seed)` rounded to bfloat16 (to nearest, ties to even): the bit patterns, and the
/// float32 values they widen to exactly.
pub fn bf16_values(n: usize, seed: u64) -> (Vec<u16>, Vec<f32>) {
    let bits: Vec<u16> = values(n, seed)
        .into_iter()
        .map(|x| {
            let u = x.to_bits();
            ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) as u16
        })
        .collect();
    let widened = bits
        .iter()
        .map(|&b| voxlet_kernels::bf16_to_f32(b))
        .collect();
    (bits, widened)
}

pub fn snr_db(reference: &[f32], test: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&v| f64::from(v).powi(2)).sum();
    let noise: f64 = reference
        .iter()
        .zip(test)
        .map(|(&a, &b)| f64::from(a - b).powi(2))
        .sum();
    10.0 * (signal / noise).log10()
}

/// `x (m, cols) @ w^T + bias` summed in f64 and rounded once.
pub fn float_matmul(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    cols: usize,
) -> Vec<f32> {
    let mut out = Vec::new();
    for xr in x.chunks_exact(cols) {
        for (n, wr) in w.chunks_exact(cols).enumerate() {
            let dot: f64 = xr
                .iter()
                .zip(wr)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            out.push(dot as f32 + bias.map_or(0.0, |b| b[n]));
        }
    }
    assert_eq!(out.len(), x.len() / cols * rows);
    out
}
