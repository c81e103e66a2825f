mod common;

use std::sync::Arc;

use common::{snr_db, values};
use voxlet_kernels::{FlowBlock, FlowHead, Int8Matrix, KernelError, Linear, Norm};

const COND: usize = 40;
const DIM: usize = 24;
const LATENT: usize = 8;
const BLOCKS: usize = 2;

fn matrix(rows: usize, cols: usize, seed: u64) -> Arc<Int8Matrix> {
    let w: Vec<f32> = values(rows * cols, seed)
        .iter()
        .map(|v| v / (cols as f32).sqrt())
        .collect();
    let b = values(rows, seed + 50);
    Arc::new(Int8Matrix::quantize(&w, rows, cols, Some(&b)).unwrap())
}

fn block(seed: u64) -> FlowBlock<Int8Matrix> {
    FlowBlock {
        norm: Norm {
            weight: values(DIM, seed).iter().map(|v| 1.0 + 0.2 * v).collect(),
            bias: values(DIM, seed + 1).iter().map(|v| 0.1 * v).collect(),
            eps: 1e-6,
        },
        mlp_in: matrix(DIM, DIM, seed + 2),
        mlp_out: matrix(DIM, DIM, seed + 3),
        modulation: matrix(3 * DIM, DIM, seed + 4),
    }
}

fn head() -> FlowHead<Int8Matrix> {
    FlowHead::new(
        matrix(DIM, COND, 1),
        matrix(DIM, LATENT, 2),
        (0..BLOCKS as u64).map(|i| block(10 * (i + 1))).collect(),
        matrix(2 * DIM, DIM, 3),
        matrix(LATENT, DIM, 4),
        1e-6,
    )
    .unwrap()
}

fn f64_linear(m: &Int8Matrix, bias_seed: u64, x: &[f64]) -> Vec<f64> {
    let bias = values(m.rows(), bias_seed + 50);
    m.dequantize()
        .chunks_exact(m.cols())
        .zip(&bias)
        .map(|(row, &b)| {
            row.iter()
                .zip(x)
                .map(|(&w, v)| f64::from(w) * v)
                .sum::<f64>()
                + f64::from(b)
        })
        .collect()
}

fn silu(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x / (1.0 + (-x).exp())).collect()
}

fn modulate(h: &[f64], weight: Option<&Norm>, shift: &[f64], scale: &[f64]) -> Vec<f64> {
    let n = h.len() as f64;
    let mean = h.iter().sum::<f64>() / n;
    let var = h.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (0..h.len())
        .map(|i| {
            let (w, b) = weight.map_or((1.0, 0.0), |nm| {
                (f64::from(nm.weight[i]), f64::from(nm.bias[i]))
            });
            ((h[i] - mean) / (var + 1e-6).sqrt() * w + b) * (1.0 + scale[i]) + shift[i]
        })
        .collect()
}

/// One row in f64 with the dequantized weights and unquantized activations.
fn reference(c: &[f32], time: &[f32], x: &[f32]) -> Vec<f64> {
    let to64 = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<_>>();
    let head_blocks: Vec<FlowBlock<Int8Matrix>> =
        (0..BLOCKS as u64).map(|i| block(10 * (i + 1))).collect();
    let mut y = f64_linear(&matrix(DIM, COND, 1), 1, &to64(c));
    y.iter_mut()
        .zip(time)
        .for_each(|(a, &t)| *a += f64::from(t));
    let sy = silu(&y);
    let mut h = f64_linear(&matrix(DIM, LATENT, 2), 2, &to64(x));
    for (i, b) in head_blocks.iter().enumerate() {
        let seed = 10 * (i as u64 + 1);
        let m = f64_linear(&b.modulation, seed + 4, &sy);
        let t = modulate(&h, Some(&b.norm), &m[..DIM], &m[DIM..2 * DIM]);
        let u = silu(&f64_linear(&b.mlp_in, seed + 2, &t));
        let w = f64_linear(&b.mlp_out, seed + 3, &u);
        for j in 0..DIM {
            h[j] += m[2 * DIM + j] * w[j];
        }
    }
    let m = f64_linear(&matrix(2 * DIM, DIM, 3), 3, &sy);
    let t = modulate(&h, None, &m[..DIM], &m[DIM..]);
    f64_linear(&matrix(LATENT, DIM, 4), 4, &t)
}

#[test]
fn close_to_a_float_reference_row_by_row() {
    let head = head();
    let rows = 3;
    let c: Vec<f32> = values(rows * COND, 5).iter().map(|v| 2.0 * v).collect();
    let x = values(rows * LATENT, 6);
    let time = values(DIM, 7);
    let mut out = vec![0.0; rows * LATENT];
    head.velocity(&c, Some(&time), &x, &mut out, 1).unwrap();
    for r in 0..rows {
        let want = reference(
            &c[r * COND..(r + 1) * COND],
            &time,
            &x[r * LATENT..(r + 1) * LATENT],
        );
        let got = &out[r * LATENT..(r + 1) * LATENT];
        let snr = snr_db(&want.iter().map(|&v| v as f32).collect::<Vec<_>>(), got);
        assert!(snr > 30.0, "row {r}: SNR {snr:.1} dB");
    }
}

/// A batch of sessions' heads is one call: each row's velocity is the bits of that row alone,
/// whatever rows share the call (13 rows: the eight-, four- and one-row passes) and however
/// many threads it takes.
#[test]
fn each_row_gets_the_bits_it_gets_alone() {
    let head = head();
    let rows = 13;
    let c: Vec<f32> = values(rows * COND, 8).iter().map(|v| 3.0 * v).collect();
    let x = values(rows * LATENT, 9);
    let time = values(DIM, 10);
    for threads in [1, 2] {
        let mut out = vec![0.0; rows * LATENT];
        head.velocity(&c, Some(&time), &x, &mut out, threads)
            .unwrap();
        for r in 0..rows {
            let mut alone = vec![0.0; LATENT];
            let (cr, xr) = (
                &c[r * COND..(r + 1) * COND],
                &x[r * LATENT..(r + 1) * LATENT],
            );
            head.velocity(cr, Some(&time), xr, &mut alone, 1).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&out[r * LATENT..(r + 1) * LATENT]),
                bits(&alone),
                "row {r}, {threads} threads"
            );
        }
    }
}

/// A head without time inputs (`pointwise`, `drifting`) conditions on `cond(c)` alone: the
/// same as a zero time embedding, and not the same as another one.
#[test]
fn no_time_is_a_zero_time_embedding() {
    let head = head();
    let rows = 2;
    let c = values(rows * COND, 5);
    let x = values(rows * LATENT, 6);
    let (mut none, mut zero, mut some) = (
        vec![0.0; rows * LATENT],
        vec![0.0; rows * LATENT],
        vec![0.0; rows * LATENT],
    );
    head.velocity(&c, None, &x, &mut none, 1).unwrap();
    head.velocity(&c, Some(&[0.0; DIM]), &x, &mut zero, 1)
        .unwrap();
    head.velocity(&c, Some(&values(DIM, 7)), &x, &mut some, 1)
        .unwrap();
    assert_eq!(none, zero);
    assert_ne!(none, some);
}

#[test]
fn refuses_inputs_that_do_not_fit() {
    let head = head();
    let mut out = vec![0.0; LATENT];
    let (c, x, t) = (vec![0.0; COND], vec![0.0; LATENT], vec![0.0; DIM]);
    assert!(matches!(
        head.velocity(&c[..COND - 1], Some(&t), &x, &mut out, 1),
        Err(KernelError::ShapeMismatch { expected: COND, .. })
    ));
    assert!(matches!(
        head.velocity(&c, Some(&t[..DIM - 1]), &x, &mut out, 1),
        Err(KernelError::ShapeMismatch { what: "time", .. })
    ));
    assert!(matches!(
        head.velocity(&c, Some(&t), &x[..LATENT - 1], &mut out, 1),
        Err(KernelError::ShapeMismatch {
            expected: LATENT,
            ..
        })
    ));
    let bad = FlowHead::new(
        matrix(DIM, COND, 1),
        matrix(DIM, LATENT, 2),
        vec![block(10)],
        matrix(2 * DIM, DIM, 3),
        matrix(LATENT + 1, DIM, 4),
        1e-6,
    );
    assert_eq!(
        bad.unwrap_err(),
        KernelError::ShapeMismatch {
            what: "final linear rows",
            expected: LATENT,
            actual: LATENT + 1
        }
    );
}
