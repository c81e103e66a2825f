mod common;

use std::sync::Arc;

use common::{snr_db, values};
use voxlet_kernels::{Int8Layer, Int8Matrix, Int8Transformer, Isa, KernelError, KvCache, Norm};

const D: usize = 64;
const HEADS: usize = 4;
const HD: usize = D / HEADS;
const FFN: usize = 96;
const LAYERS: usize = 2;
const CAPACITY: usize = 12;

/// Keys and values of every layer.
type Caches<T> = Vec<(Vec<T>, Vec<T>)>;

fn matrix(rows: usize, cols: usize, seed: u64) -> Arc<Int8Matrix> {
    let w: Vec<f32> = values(rows * cols, seed)
        .iter()
        .map(|v| v / (cols as f32).sqrt())
        .collect();
    Arc::new(Int8Matrix::quantize(&w, rows, cols, None).unwrap())
}

fn norm(seed: u64) -> Norm {
    Norm {
        weight: values(D, seed).iter().map(|v| 1.0 + 0.2 * v).collect(),
        bias: values(D, seed + 1).iter().map(|v| 0.1 * v).collect(),
        eps: 1e-5,
    }
}

fn layer(seed: u64) -> Int8Layer {
    Int8Layer {
        norm1: norm(seed),
        in_proj: matrix(3 * D, D, seed + 2),
        out_proj: matrix(D, D, seed + 3),
        norm2: norm(seed + 4),
        linear1: matrix(FFN, D, seed + 6),
        linear2: matrix(D, FFN, seed + 7),
    }
}

fn model() -> Int8Transformer {
    Int8Transformer::new((0..LAYERS as u64).map(|i| layer(100 * i)).collect(), HEADS).unwrap()
}

/// Rotation of one position: [cos, sin] per pair of a head.
fn turns(position: usize) -> Vec<f32> {
    (0..HD / 2)
        .flat_map(|i| {
            let angle = position as f32 * 10_000f32.powf(-2.0 * i as f32 / HD as f32);
            [angle.cos(), angle.sin()]
        })
        .collect()
}

/// Caches with positions before `position` filled with values, the rest NaN (never read).
fn caches(position: usize) -> Caches<f32> {
    (0..LAYERS as u64)
        .map(|l| {
            let mut k = vec![f32::NAN; HEADS * CAPACITY * HD];
            let mut v = k.clone();
            for h in 0..HEADS {
                let at = h * CAPACITY * HD;
                let n = position * HD;
                k[at..at + n].copy_from_slice(&values(n, 1000 + 10 * l + h as u64));
                v[at..at + n].copy_from_slice(&values(n, 2000 + 10 * l + h as u64));
            }
            (k, v)
        })
        .collect()
}

/// Input rows: `rows` vectors of D values.
fn input(rows: usize) -> Vec<f32> {
    values(rows * D, 7).iter().map(|v| 3.0 * v).collect()
}

fn run(
    model: &Int8Transformer,
    isa: Isa,
    threads: usize,
    position: usize,
    rows: usize,
) -> (Vec<f32>, Caches<f32>) {
    let mut x = input(rows);
    let mut kv = caches(position);
    let mut views: Vec<KvCache> = kv
        .iter_mut()
        .map(|(k, v)| KvCache { keys: k, values: v })
        .collect();
    let turns: Vec<f32> = (position..position + rows).flat_map(turns).collect();
    model
        .forward_on(isa, &mut x, &mut views, CAPACITY, position, &turns, threads)
        .unwrap();
    (x, kv)
}

fn f64_layer_norm(x: &[f64], n: &Norm) -> Vec<f64> {
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
    x.iter()
        .zip(n.weight.iter().zip(&n.bias))
        .map(|(v, (&w, &b))| {
            (v - mean) / (var + f64::from(n.eps)).sqrt() * f64::from(w) + f64::from(b)
        })
        .collect()
}

fn f64_linear(m: &Int8Matrix, x: &[f64]) -> Vec<f64> {
    m.dequantize()
        .chunks_exact(m.cols())
        .map(|row| row.iter().zip(x).map(|(&w, v)| f64::from(w) * v).sum())
        .collect()
}

/// One layer's cache in f64: keys and values per head, one vector per position.
struct F64Cache {
    keys: Vec<Vec<Vec<f64>>>,
    values: Vec<Vec<Vec<f64>>>,
}

fn f64_caches(position: usize) -> Vec<F64Cache> {
    let rows = |cache: &[f32], h: usize| -> Vec<Vec<f64>> {
        (0..position)
            .map(|j| {
                let at = (h * CAPACITY + j) * HD;
                cache[at..at + HD].iter().map(|&v| f64::from(v)).collect()
            })
            .collect()
    };
    caches(position)
        .iter()
        .map(|(k, v)| F64Cache {
            keys: (0..HEADS).map(|h| rows(k, h)).collect(),
            values: (0..HEADS).map(|h| rows(v, h)).collect(),
        })
        .collect()
}

/// One position through the layers in f64, with the dequantized weights and unquantized
/// activations, appending its keys and values to the caches.
fn reference_row(layers: &[Int8Layer], x: &mut [f64], turn: &[f64], caches: &mut [F64Cache]) {
    for (layer, cache) in layers.iter().zip(caches.iter_mut()) {
        let qkv = f64_linear(&layer.in_proj, &f64_layer_norm(x, &layer.norm1));
        let rotate = |v: &[f64]| -> Vec<f64> {
            v.chunks_exact(2)
                .zip(turn.chunks_exact(2).cycle())
                .flat_map(|(p, c)| [p[0] * c[0] - p[1] * c[1], p[0] * c[1] + p[1] * c[0]])
                .collect()
        };
        let (q, k, v) = (rotate(&qkv[..D]), rotate(&qkv[D..2 * D]), &qkv[2 * D..]);
        let mut attended = vec![0.0; D];
        for h in 0..HEADS {
            let head = h * HD..(h + 1) * HD;
            cache.keys[h].push(k[head.clone()].to_vec());
            cache.values[h].push(v[head.clone()].to_vec());
            let scores: Vec<f64> = cache.keys[h]
                .iter()
                .map(|key| {
                    key.iter()
                        .zip(&q[head.clone()])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                        / (HD as f64).sqrt()
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let z: f64 = e.iter().sum();
            for (p, val) in e.iter().zip(&cache.values[h]) {
                for (o, vv) in attended[head.clone()].iter_mut().zip(val) {
                    *o += p / z * vv;
                }
            }
        }
        for (a, b) in x.iter_mut().zip(f64_linear(&layer.out_proj, &attended)) {
            *a += b;
        }
        let hidden: Vec<f64> = f64_linear(&layer.linear1, &f64_layer_norm(x, &layer.norm2))
            .iter()
            .map(|&v| {
                let u = (2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v);
                0.5 * v * (1.0 + u.tanh())
            })
            .collect();
        for (a, b) in x.iter_mut().zip(f64_linear(&layer.linear2, &hidden)) {
            *a += b;
        }
    }
}

/// `rows` positions from `position`, one after another (causal attention is exactly that).
fn reference(layers: &[Int8Layer], position: usize, rows: usize) -> (Vec<f64>, Vec<F64Cache>) {
    let mut x: Vec<f64> = input(rows).iter().map(|&v| f64::from(v)).collect();
    let mut caches = f64_caches(position);
    for (r, row) in x.chunks_exact_mut(D).enumerate() {
        let turn: Vec<f64> = turns(position + r).iter().map(|&v| f64::from(v)).collect();
        reference_row(layers, row, &turn, &mut caches);
    }
    (x, caches)
}

fn as_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

#[test]
fn close_to_a_float_reference_and_writes_the_new_positions() {
    let layers: Vec<Int8Layer> = (0..LAYERS as u64).map(|i| layer(100 * i)).collect();
    let model = Int8Transformer::new(layers.clone(), HEADS).unwrap();
    let cases = [
        (0, 1),
        (1, 1),
        (5, 1),
        (CAPACITY - 1, 1),
        (0, 4),
        (3, 5),
        (CAPACITY - 3, 3),
    ];
    for (position, rows) in cases {
        for threads in [1, 2] {
            let (x, kv) = run(&model, Isa::best(), threads, position, rows);
            let (want_x, want_kv) = reference(&layers, position, rows);
            // the only difference is the quantization of each linear's input (8-bit for one
            // row, 7-bit for several)
            let snr = snr_db(&as_f32(&want_x), &x);
            assert!(
                snr > 30.0,
                "{rows} rows at {position}: output SNR {snr:.1} dB"
            );
            let before = caches(position);
            for ((k, v), (want, (bk, bv))) in kv.iter().zip(want_kv.iter().zip(&before)) {
                for h in 0..HEADS {
                    let start = h * CAPACITY * HD;
                    let at = start + position * HD;
                    let new = |cache: &[Vec<f64>]| as_f32(&cache[position..].concat());
                    assert!(snr_db(&new(&want.keys[h]), &k[at..at + rows * HD]) > 30.0);
                    assert!(snr_db(&new(&want.values[h]), &v[at..at + rows * HD]) > 30.0);
                    // earlier positions are left as they were, later ones unwritten
                    assert_eq!(k[start..at], bk[start..at]);
                    assert_eq!(v[start..at], bv[start..at]);
                    let end = start + CAPACITY * HD;
                    assert!(k[at + rows * HD..end].iter().all(|x| x.is_nan()));
                }
            }
        }
    }
}

#[test]
fn same_bits_on_every_instruction_set_and_thread_count() {
    let model = model();
    for rows in [1, 4] {
        let (x, kv) = run(&model, Isa::Portable, 1, 6, rows);
        for isa in [Isa::Portable, Isa::Avx2]
            .into_iter()
            .filter(|i| i.is_supported())
        {
            for threads in [1, 2, 3] {
                let (x2, kv2) = run(&model, isa, threads, 6, rows);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&x), bits(&x2));
                for (a, b) in kv.iter().zip(&kv2) {
                    assert_eq!(bits(&a.0), bits(&b.0));
                    assert_eq!(bits(&a.1), bits(&b.1));
                }
            }
        }
    }
}

#[test]
fn refuses_inputs_that_do_not_fit() {
    let model = model();
    let mut kv = caches(0);
    let mut views: Vec<KvCache> = kv
        .iter_mut()
        .map(|(k, v)| KvCache { keys: k, values: v })
        .collect();
    let mut x = vec![0.0; 2 * D];
    let t: Vec<f32> = (0..2).flat_map(turns).collect();
    let full = model.forward(&mut x, &mut views, CAPACITY, CAPACITY - 1, &t, 1);
    assert!(matches!(
        full,
        Err(KernelError::InvalidArgument {
            what: "position",
            ..
        })
    ));
    let ragged = model.forward(&mut x[..D + 1], &mut views, CAPACITY, 0, &t, 1);
    assert_eq!(
        ragged,
        Err(KernelError::ShapeMismatch {
            what: "x (rows of d_model)",
            expected: 2 * D,
            actual: D + 1
        })
    );
    let few_turns = model.forward(&mut x, &mut views, CAPACITY, 0, &t[..HD], 1);
    assert!(matches!(
        few_turns,
        Err(KernelError::ShapeMismatch {
            expected: 32,
            actual: 16,
            ..
        })
    ));
    let one_cache = model.forward(&mut x, &mut views[..1], CAPACITY, 0, &t, 1);
    assert!(matches!(
        one_cache,
        Err(KernelError::ShapeMismatch {
            expected: 2,
            actual: 1,
            ..
        })
    ));
    let wrong_capacity = model.forward(&mut x, &mut views, CAPACITY + 1, 0, &t, 1);
    assert!(matches!(
        wrong_capacity,
        Err(KernelError::ShapeMismatch {
            what: "cached keys",
            ..
        })
    ));

    assert!(Int8Transformer::new(vec![], HEADS).is_err());
    assert!(Int8Transformer::new(vec![layer(0)], 3).is_err()); // 64 / 3
    assert!(Int8Transformer::new(vec![layer(0)], 64).is_err()); // head width 1: no pairs
    let mut bad = layer(0);
    bad.linear2 = matrix(D, FFN + 1, 5);
    assert_eq!(
        Int8Transformer::new(vec![layer(0), bad], HEADS).unwrap_err(),
        KernelError::ShapeMismatch {
            what: "linear2 cols",
            expected: FFN,
            actual: FFN + 1
        }
    );
}
