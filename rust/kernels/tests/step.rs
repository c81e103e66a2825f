mod common;

use std::sync::Arc;

use common::{snr_db, values};
use voxlet_kernels::{
    F32Matrix, Int8Matrix, Isa, KernelError, KvCache, Layer, LayerScale, Linear, Norm, RowCaches,
    Transformer,
};

const D: usize = 64;
const HEADS: usize = 4;
const HD: usize = D / HEADS;
const FFN: usize = 96;
const LAYERS: usize = 2;
const CAPACITY: usize = 80;
/// The ring model's context (Mimi's is 250): shorter than some calls' row counts.
const CONTEXT: usize = 37;

/// Keys and values of every layer.
type Caches<T> = Vec<(Vec<T>, Vec<T>)>;

/// The matrix kinds a transformer runs on, as these tests build and read them.
trait TestMatrix: Linear + Sized {
    fn build(w: Vec<f32>, rows: usize, cols: usize) -> Self;
    /// The float weights the matrix stands for, row-major.
    fn floats(&self) -> Vec<f32>;
    /// How close a transformer over it stays to the f64 reference, in dB.
    const MIN_SNR_DB: f64;
}

impl TestMatrix for Int8Matrix {
    fn build(w: Vec<f32>, rows: usize, cols: usize) -> Self {
        Int8Matrix::quantize(&w, rows, cols, None).unwrap()
    }
    fn floats(&self) -> Vec<f32> {
        self.dequantize()
    }
    // the only difference is the quantization of each linear's input (8-bit for one row,
    // 7-bit for several)
    const MIN_SNR_DB: f64 = 30.0;
}

impl TestMatrix for F32Matrix {
    fn build(w: Vec<f32>, rows: usize, cols: usize) -> Self {
        F32Matrix::new(w, rows, cols, None).unwrap()
    }
    fn floats(&self) -> Vec<f32> {
        self.weight().expect("built from float32 weights")
    }
    // float32 rounding only
    const MIN_SNR_DB: f64 = 120.0;
}

fn matrix<M: TestMatrix>(rows: usize, cols: usize, seed: u64) -> Arc<M> {
    let w: Vec<f32> = values(rows * cols, seed)
        .iter()
        .map(|v| v / (cols as f32).sqrt())
        .collect();
    Arc::new(M::build(w, rows, cols))
}

fn vector(seed: u64, centre: f32, spread: f32) -> Vec<f32> {
    values(D, seed)
        .iter()
        .map(|v| centre + spread * v)
        .collect()
}

fn norm(seed: u64) -> Norm {
    Norm {
        weight: vector(seed, 1.0, 0.2),
        bias: vector(seed + 1, 0.0, 0.1),
        eps: 1e-5,
    }
}

fn layer<M: TestMatrix>(seed: u64, scaled: bool) -> Layer<M> {
    Layer {
        norm1: norm(seed),
        in_proj: matrix(3 * D, D, seed + 2),
        out_proj: matrix(D, D, seed + 3),
        norm2: norm(seed + 4),
        linear1: matrix(FFN, D, seed + 6),
        linear2: matrix(D, FFN, seed + 7),
        layer_scale: scaled.then(|| LayerScale {
            attention: vector(seed + 8, 0.5, 0.4),
            feed_forward: vector(seed + 9, 0.5, 0.4),
        }),
    }
}

/// FlowLM-like (every position, no layer scale) or Mimi-like (a ring, layer scales).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Linear,
    Ring,
}

impl Kind {
    fn slots(self) -> usize {
        match self {
            Kind::Linear => CAPACITY,
            Kind::Ring => CONTEXT,
        }
    }

    fn context(self) -> Option<usize> {
        matches!(self, Kind::Ring).then_some(CONTEXT)
    }

    /// Positions before `position` a query can still see: all, or the last CONTEXT - 1.
    fn history(self, position: usize) -> std::ops::Range<usize> {
        match self {
            Kind::Linear => 0..position,
            Kind::Ring => position.saturating_sub(CONTEXT - 1)..position,
        }
    }

    fn slot(self, p: usize) -> usize {
        p % self.slots()
    }
}

fn layers<M: TestMatrix>(kind: Kind) -> Vec<Layer<M>> {
    let scaled = matches!(kind, Kind::Ring);
    (0..LAYERS as u64).map(|i| layer(100 * i, scaled)).collect()
}

fn model<M: TestMatrix>(kind: Kind) -> Transformer<M> {
    Transformer::new(layers(kind), HEADS, HEADS, kind.context()).unwrap()
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

/// The cached key or value of one position, layer and head.
fn cached(which: u64, layer: usize, head: usize, p: usize) -> Vec<f32> {
    values(
        HD,
        which * 100_000 + 1000 * layer as u64 + 100 * head as u64 + p as u64,
    )
}

/// Caches holding the positions before `position` a query can still see, NaN elsewhere.
fn caches(kind: Kind, position: usize) -> Caches<f32> {
    (0..LAYERS)
        .map(|l| {
            let mut k = vec![f32::NAN; HEADS * kind.slots() * HD];
            let mut v = k.clone();
            for h in 0..HEADS {
                for p in kind.history(position) {
                    let at = (h * kind.slots() + kind.slot(p)) * HD;
                    k[at..at + HD].copy_from_slice(&cached(1, l, h, p));
                    v[at..at + HD].copy_from_slice(&cached(2, l, h, p));
                }
            }
            (k, v)
        })
        .collect()
}

/// Input rows: `rows` vectors of D values.
fn input(rows: usize) -> Vec<f32> {
    values(rows * D, 7).iter().map(|v| 3.0 * v).collect()
}

fn run<M: TestMatrix>(
    model: &Transformer<M>,
    kind: Kind,
    isa: Isa,
    threads: usize,
    position: usize,
    rows: usize,
) -> (Vec<f32>, Caches<f32>) {
    let mut x = input(rows);
    let mut kv = caches(kind, position);
    let mut views: Vec<KvCache> = kv
        .iter_mut()
        .map(|(k, v)| KvCache { keys: k, values: v })
        .collect();
    let turns: Vec<f32> = (position..position + rows).flat_map(turns).collect();
    model
        .forward_on(
            isa,
            &mut x,
            &mut views,
            kind.slots(),
            position,
            &turns,
            threads,
        )
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

fn f64_linear<M: TestMatrix>(m: &Arc<M>, x: &[f64]) -> Vec<f64> {
    m.floats()
        .chunks_exact(m.cols())
        .map(|row| row.iter().zip(x).map(|(&w, v)| f64::from(w) * v).sum())
        .collect()
}

fn f64_add(x: &mut [f64], branch: &[f64], scale: Option<&[f32]>) {
    for (i, (a, b)) in x.iter_mut().zip(branch).enumerate() {
        *a += scale.map_or(1.0, |s| f64::from(s[i])) * b;
    }
}

/// One layer's history in f64: per head, (position, key, value) in position order.
type History = Vec<Vec<(usize, Vec<f64>, Vec<f64>)>>;

/// One position through the layers in f64, with the dequantized weights and unquantized
/// activations, appending its keys and values to the histories; a query sees every earlier
/// position, or (ring) those less than CONTEXT before it.
fn reference_row<M: TestMatrix>(kind: Kind, p: usize, x: &mut [f64], histories: &mut [History]) {
    let turn: Vec<f64> = turns(p).iter().map(|&v| f64::from(v)).collect();
    for (layer, history) in layers::<M>(kind).iter().zip(histories.iter_mut()) {
        let qkv = f64_linear(&layer.in_proj, &f64_layer_norm(x, &layer.norm1));
        let rotate = |v: &[f64]| -> Vec<f64> {
            v.chunks_exact(2)
                .zip(turn.chunks_exact(2).cycle())
                .flat_map(|(a, c)| [a[0] * c[0] - a[1] * c[1], a[0] * c[1] + a[1] * c[0]])
                .collect()
        };
        let (q, k, v) = (rotate(&qkv[..D]), rotate(&qkv[D..2 * D]), &qkv[2 * D..]);
        let mut attended = vec![0.0; D];
        for (h, seen) in history.iter_mut().enumerate() {
            let head = h * HD..(h + 1) * HD;
            seen.push((p, k[head.clone()].to_vec(), v[head.clone()].to_vec()));
            let window: Vec<_> = seen
                .iter()
                .filter(|(q_p, _, _)| kind.context().is_none_or(|c| p - q_p < c))
                .collect();
            let scores: Vec<f64> = window
                .iter()
                .map(|(_, key, _)| {
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
            for (weight, (_, _, val)) in e.iter().zip(&window) {
                for (o, vv) in attended[head.clone()].iter_mut().zip(val) {
                    *o += weight / z * vv;
                }
            }
        }
        let scale = layer.layer_scale.as_ref();
        f64_add(
            x,
            &f64_linear(&layer.out_proj, &attended),
            scale.map(|s| &s.attention[..]),
        );
        let hidden: Vec<f64> = f64_linear(&layer.linear1, &f64_layer_norm(x, &layer.norm2))
            .iter()
            .map(|&v| {
                let u = (2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v);
                0.5 * v * (1.0 + u.tanh())
            })
            .collect();
        let ff = f64_linear(&layer.linear2, &hidden);
        f64_add(x, &ff, scale.map(|s| &s.feed_forward[..]));
    }
}

/// `rows` positions from `position`, one after another (causal attention is exactly that).
fn reference<M: TestMatrix>(kind: Kind, position: usize, rows: usize) -> (Vec<f64>, Vec<History>) {
    let mut x: Vec<f64> = input(rows).iter().map(|&v| f64::from(v)).collect();
    let to64 = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    let mut histories: Vec<History> = (0..LAYERS)
        .map(|l| {
            (0..HEADS)
                .map(|h| {
                    kind.history(position)
                        .map(|p| (p, to64(cached(1, l, h, p)), to64(cached(2, l, h, p))))
                        .collect()
                })
                .collect()
        })
        .collect();
    for (r, row) in x.chunks_exact_mut(D).enumerate() {
        reference_row::<M>(kind, position + r, row, &mut histories);
    }
    (x, histories)
}

fn as_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn check_against_reference<M: TestMatrix>(kind: Kind, cases: &[(usize, usize)]) {
    let model = model::<M>(kind);
    for &(position, rows) in cases {
        for threads in [1, 2] {
            let (x, kv) = run(&model, kind, Isa::best(), threads, position, rows);
            let (want_x, histories) = reference::<M>(kind, position, rows);
            let snr = snr_db(&as_f32(&want_x), &x);
            assert!(
                snr > M::MIN_SNR_DB,
                "{kind:?}: {rows} rows at {position}: SNR {snr:.1} dB"
            );
            for ((k, v), history) in kv.iter().zip(&histories) {
                for (h, seen) in history.iter().enumerate() {
                    // every slot holds the newest position written to it
                    let mut newest = vec![None; kind.slots()];
                    for entry in seen {
                        newest[kind.slot(entry.0)] = Some(entry);
                    }
                    for (slot, entry) in newest.iter().enumerate() {
                        let at = (h * kind.slots() + slot) * HD;
                        match entry {
                            None => assert!(k[at..at + HD].iter().all(|x| x.is_nan())),
                            Some((p, key, value)) if *p < position => {
                                assert_eq!(k[at..at + HD], as_f32(key)[..]); // untouched
                                assert_eq!(v[at..at + HD], as_f32(value)[..]);
                            }
                            Some((_, key, value)) => {
                                assert!(snr_db(&as_f32(key), &k[at..at + HD]) > M::MIN_SNR_DB);
                                assert!(snr_db(&as_f32(value), &v[at..at + HD]) > M::MIN_SNR_DB);
                            }
                        }
                    }
                }
            }
        }
    }
}

const LINEAR_CASES: [(usize, usize); 7] = [
    (0, 1),
    (1, 1),
    (5, 1),
    (CAPACITY - 1, 1),
    (0, 4),
    (3, 5),
    (CAPACITY - 3, 3),
];

// before the ring is full, as it fills, long after, and more rows than the context
const RING_CASES: [(usize, usize); 8] = [
    (0, 1),
    (2, 2),
    (3, 4),
    (4, 1),
    (11, 1),
    (17, 3),
    (0, 8),
    (9, 12),
];

#[test]
fn every_position_close_to_a_float_reference() {
    check_against_reference::<Int8Matrix>(Kind::Linear, &LINEAR_CASES);
    check_against_reference::<F32Matrix>(Kind::Linear, &LINEAR_CASES);
}

#[test]
fn ring_with_layer_scale_close_to_a_float_reference() {
    check_against_reference::<Int8Matrix>(Kind::Ring, &RING_CASES);
    check_against_reference::<F32Matrix>(Kind::Ring, &RING_CASES);
}

#[test]
fn same_bits_on_every_instruction_set_and_thread_count() {
    same_bits::<Int8Matrix>();
    same_bits::<F32Matrix>();
}

fn same_bits<M: TestMatrix>() {
    for kind in [Kind::Linear, Kind::Ring] {
        let model = model::<M>(kind);
        for rows in [1, 4] {
            let (x, kv) = run(&model, kind, Isa::Portable, 1, 6, rows);
            for isa in [Isa::Portable, Isa::Avx2]
                .into_iter()
                .filter(|i| i.is_supported())
            {
                for threads in [1, 2, 3] {
                    let (x2, kv2) = run(&model, kind, isa, threads, 6, rows);
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
}

#[test]
fn refuses_inputs_that_do_not_fit() {
    let model = model::<Int8Matrix>(Kind::Linear);
    let mut kv = caches(Kind::Linear, 0);
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
    let ring = self::model::<Int8Matrix>(Kind::Ring);
    let not_the_context = ring.forward(&mut x, &mut views, CAPACITY, 0, &t, 1);
    assert_eq!(
        not_the_context,
        Err(KernelError::ShapeMismatch {
            what: "cache slots (the context)",
            expected: CONTEXT,
            actual: CAPACITY
        })
    );

    assert!(Transformer::<Int8Matrix>::new(vec![], HEADS, HEADS, None).is_err());
    let layers = layers::<Int8Matrix>;
    assert!(Transformer::new(layers(Kind::Linear), HEADS, HEADS, Some(0)).is_err());
    assert!(Transformer::new(layers(Kind::Linear), 3, 3, None).is_err()); // 64 / 3
    assert!(Transformer::new(layers(Kind::Linear), 64, 64, None).is_err()); // width 1: no pairs
    let layer = layer::<Int8Matrix>;
    let mut bad = layer(0, false);
    bad.linear2 = matrix(D, FFN + 1, 5);
    assert_eq!(
        Transformer::new(vec![layer(0, false), bad], HEADS, HEADS, None).unwrap_err(),
        KernelError::ShapeMismatch {
            what: "linear2 cols",
            expected: FFN,
            actual: FFN + 1
        }
    );
    let mut short_scale = layer(0, true);
    short_scale.layer_scale.as_mut().unwrap().feed_forward.pop();
    assert!(Transformer::new(vec![short_scale], HEADS, HEADS, Some(CONTEXT)).is_err());
}

/// Every sequence's caches as the kernels take them.
fn views(kvs: &mut [Caches<f32>]) -> Vec<Vec<KvCache<'_>>> {
    kvs.iter_mut()
        .map(|kv| {
            kv.iter_mut()
                .map(|(k, v)| KvCache { keys: k, values: v })
                .collect()
        })
        .collect()
}

/// Each sequence's place in a batch: its caches of `capacity` slots, from `positions[b]`.
fn places<'a, 'b>(
    views: &'b mut [Vec<KvCache<'a>>],
    capacity: usize,
    positions: impl IntoIterator<Item = usize>,
) -> Vec<RowCaches<'a, 'b>> {
    views
        .iter_mut()
        .zip(positions)
        .map(|(v, position)| RowCaches {
            caches: v,
            capacity,
            position,
        })
        .collect()
}

/// Sessions at different positions stepped together give each session's bits alone, and the
/// same cache contents, on every instruction set, whatever the batch holds.
fn batched_rows_equal_each_row_alone<M: TestMatrix>(kind: Kind) {
    let model: Transformer<M> = model(kind);
    let positions = [0usize, 5, 17, 41, 3, 60, 9];
    for isa in [Isa::Portable, Isa::Avx2]
        .into_iter()
        .filter(|i| i.is_supported())
    {
        // each session alone: one row at its position
        let alone: Vec<(Vec<f32>, Caches<f32>)> = positions
            .iter()
            .enumerate()
            .map(|(b, &p)| {
                let mut x: Vec<f32> = values(D, 50 + b as u64).iter().map(|v| 3.0 * v).collect();
                let mut kv = caches(kind, p);
                let mut views: Vec<KvCache> = kv
                    .iter_mut()
                    .map(|(k, v)| KvCache { keys: k, values: v })
                    .collect();
                model
                    .forward_on(isa, &mut x, &mut views, kind.slots(), p, &turns(p), 1)
                    .unwrap();
                (x, kv)
            })
            .collect();
        for batch in [&positions[..1], &positions[..2], &positions[..]] {
            for threads in [1, 2] {
                let mut x: Vec<f32> = (0..batch.len())
                    .flat_map(|b| values(D, 50 + b as u64))
                    .map(|v| 3.0 * v)
                    .collect();
                let mut kvs: Vec<Caches<f32>> = batch.iter().map(|&p| caches(kind, p)).collect();
                let mut views = views(&mut kvs);
                let mut rows = places(&mut views, kind.slots(), batch.iter().copied());
                let all_turns: Vec<f32> = batch.iter().flat_map(|&p| turns(p)).collect();
                model
                    .forward_rows_on(isa, &mut x, &mut rows, &all_turns, threads)
                    .unwrap();
                drop(rows);
                drop(views);
                for (b, (want_x, want_kv)) in alone.iter().take(batch.len()).enumerate() {
                    let got = &x[b * D..(b + 1) * D];
                    assert_eq!(
                        bits(got),
                        bits(want_x),
                        "{kind:?} {isa:?} batch {} row {b} threads {threads}",
                        batch.len()
                    );
                    for ((k, v), (wk, wv)) in kvs[b].iter().zip(want_kv) {
                        assert_eq!(bits(k), bits(wk));
                        assert_eq!(bits(v), bits(wv));
                    }
                }
            }
        }
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn batched_int8_rows_are_each_rows_bits_alone() {
    batched_rows_equal_each_row_alone::<Int8Matrix>(Kind::Linear);
    batched_rows_equal_each_row_alone::<Int8Matrix>(Kind::Ring);
}

#[test]
fn batched_float_rows_are_each_rows_bits_alone() {
    batched_rows_equal_each_row_alone::<F32Matrix>(Kind::Linear);
    batched_rows_equal_each_row_alone::<F32Matrix>(Kind::Ring);
}

#[test]
fn batched_rows_are_checked() {
    let model: Transformer<Int8Matrix> = model(Kind::Linear);
    let mut kv = caches(Kind::Linear, 0);
    let mut views: Vec<KvCache> = kv
        .iter_mut()
        .map(|(k, v)| KvCache { keys: k, values: v })
        .collect();
    let mut rows = vec![RowCaches {
        caches: &mut views,
        capacity: CAPACITY,
        position: CAPACITY, // full
    }];
    let mut x = input(1);
    let err = model
        .forward_rows(&mut x, &mut rows, &turns(0), 1)
        .unwrap_err();
    assert!(matches!(
        err,
        KernelError::InvalidArgument {
            what: "position",
            ..
        }
    ));
    let mut two = input(2);
    let err = model
        .forward_rows(&mut two, &mut rows, &turns(0), 1)
        .unwrap_err();
    assert!(matches!(err, KernelError::ShapeMismatch { .. }));
}

/// Several sequences' prefills in one call, each its own run of rows at its own position:
/// each sequence's rows and caches come out with the bits `forward` gives them alone, on every
/// instruction set and thread count.
fn spans_equal_each_sequence_alone<M: TestMatrix>(kind: Kind) {
    let model: Transformer<M> = model(kind);
    let seqs = [(0usize, 5usize), (7, 2), (3, 17), (20, 9)]; // (position, rows)
    let rows_of = |b: usize, n: usize| -> Vec<f32> {
        values(n * D, 70 + b as u64)
            .iter()
            .map(|v| 3.0 * v)
            .collect()
    };
    let turns_of = |p: usize, n: usize| -> Vec<f32> { (p..p + n).flat_map(turns).collect() };
    for isa in [Isa::Portable, Isa::Avx2]
        .into_iter()
        .filter(|i| i.is_supported())
    {
        let alone: Vec<(Vec<f32>, Caches<f32>)> = seqs
            .iter()
            .enumerate()
            .map(|(b, &(p, n))| {
                let mut x = rows_of(b, n);
                let mut kv = caches(kind, p);
                let mut views: Vec<KvCache> = kv
                    .iter_mut()
                    .map(|(k, v)| KvCache { keys: k, values: v })
                    .collect();
                model
                    .forward_on(isa, &mut x, &mut views, kind.slots(), p, &turns_of(p, n), 1)
                    .unwrap();
                (x, kv)
            })
            .collect();
        for threads in [1, 2] {
            let mut x: Vec<f32> = seqs
                .iter()
                .enumerate()
                .flat_map(|(b, &(_, n))| rows_of(b, n))
                .collect();
            let mut kvs: Vec<Caches<f32>> = seqs.iter().map(|&(p, _)| caches(kind, p)).collect();
            let mut views = views(&mut kvs);
            let mut rows = places(&mut views, kind.slots(), seqs.iter().map(|&(p, _)| p));
            let counts: Vec<usize> = seqs.iter().map(|&(_, n)| n).collect();
            let all_turns: Vec<f32> = seqs.iter().flat_map(|&(p, n)| turns_of(p, n)).collect();
            model
                .forward_spans_on(isa, &mut x, &mut rows, &counts, &all_turns, threads)
                .unwrap();
            drop(rows);
            drop(views);
            let mut first = 0;
            for (b, ((want_x, want_kv), &(_, n))) in alone.iter().zip(&seqs).enumerate() {
                assert_eq!(
                    bits(&x[first * D..(first + n) * D]),
                    bits(want_x),
                    "{kind:?} {isa:?} sequence {b} threads {threads}"
                );
                for ((k, v), (wk, wv)) in kvs[b].iter().zip(want_kv) {
                    assert_eq!(bits(k), bits(wk));
                    assert_eq!(bits(v), bits(wv));
                }
                first += n;
            }
        }
    }
}

#[test]
fn int8_spans_are_each_sequences_bits_alone() {
    spans_equal_each_sequence_alone::<Int8Matrix>(Kind::Linear);
    spans_equal_each_sequence_alone::<Int8Matrix>(Kind::Ring);
}

#[test]
fn float_spans_are_each_sequences_bits_alone() {
    spans_equal_each_sequence_alone::<F32Matrix>(Kind::Linear);
    spans_equal_each_sequence_alone::<F32Matrix>(Kind::Ring);
}

#[test]
fn a_one_row_run_among_several_is_refused() {
    let model: Transformer<Int8Matrix> = model(Kind::Linear);
    let mut kv = [caches(Kind::Linear, 0), caches(Kind::Linear, 0)];
    let mut views = views(&mut kv);
    let mut rows = places(&mut views, CAPACITY, [0, 0]);
    let mut x = input(3);
    let all_turns: Vec<f32> = [0, 1, 0].into_iter().flat_map(turns).collect();
    let err = model
        .forward_spans(&mut x, &mut rows, &[2, 1], &all_turns, 1)
        .unwrap_err();
    assert!(matches!(
        err,
        KernelError::InvalidArgument {
            what: "rows of a sequence among several",
            ..
        }
    ));
}
