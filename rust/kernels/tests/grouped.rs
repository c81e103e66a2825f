//! Grouped-query attention with an attention width other than d_model (the small Pocket TTS
//! layouts): a transformer of H query heads over G kv heads gives the same bits as a plain one
//! of H kv heads whose key and value rows repeat each kv head's for its H / G query heads, in
//! both cache kinds, one row or several at a time.
mod common;

use std::sync::Arc;

use common::values;
use voxlet_kernels::{F32Matrix, KvCache, Layer, Norm, Transformer};

const D: usize = 56;
const HEADS: usize = 6;
const KV_HEADS: usize = 2;
const HD: usize = 16;
const ATTN: usize = HEADS * HD; // 96: not d_model
const FFN: usize = 80;
const SLOTS: usize = 40;

fn matrix(w: Vec<f32>, rows: usize, cols: usize) -> Arc<F32Matrix> {
    Arc::new(F32Matrix::new(w, rows, cols, None).unwrap())
}

fn norm(seed: u64) -> Norm {
    Norm {
        weight: values(D, seed).iter().map(|v| 1.0 + 0.2 * v).collect(),
        bias: values(D, seed + 1).iter().map(|v| 0.1 * v).collect(),
        eps: 1e-5,
    }
}

/// The grouped in_proj rows `[Q | K (G heads) | V (G heads)]`, and the same expanded to H kv
/// heads: kv head g's rows repeated for query heads g H/G .. (g + 1) H/G - 1.
fn in_proj(seed: u64) -> (Vec<f32>, Vec<f32>) {
    let grouped = values((ATTN + 2 * KV_HEADS * HD) * D, seed);
    let row = |r: usize| &grouped[r * D..(r + 1) * D];
    let mut expanded = grouped[..ATTN * D].to_vec();
    for part in 0..2 {
        for h in 0..HEADS {
            let g = h / (HEADS / KV_HEADS);
            for i in 0..HD {
                expanded.extend_from_slice(row(ATTN + part * KV_HEADS * HD + g * HD + i));
            }
        }
    }
    (grouped, expanded)
}

fn layer(seed: u64, grouped: bool) -> Layer<F32Matrix> {
    let (g, e) = in_proj(seed);
    let qkv_rows = if grouped {
        ATTN + 2 * KV_HEADS * HD
    } else {
        3 * ATTN
    };
    Layer {
        norm1: norm(seed + 1),
        in_proj: matrix(if grouped { g } else { e }, qkv_rows, D),
        out_proj: matrix(values(D * ATTN, seed + 2), D, ATTN),
        norm2: norm(seed + 3),
        linear1: matrix(values(FFN * D, seed + 4), FFN, D),
        linear2: matrix(values(D * FFN, seed + 5), D, FFN),
        layer_scale: None,
    }
}

fn model(grouped: bool, context: Option<usize>) -> Transformer<F32Matrix> {
    let kv = if grouped { KV_HEADS } else { HEADS };
    Transformer::new(
        vec![layer(10, grouped), layer(20, grouped)],
        HEADS,
        kv,
        context,
    )
    .unwrap()
}

fn turns(positions: std::ops::Range<usize>) -> Vec<f32> {
    positions
        .flat_map(|p| {
            (0..HD / 2).flat_map(move |i| {
                let angle = p as f32 * 10_000f32.powf(-2.0 * i as f32 / HD as f32);
                [angle.cos(), angle.sin()]
            })
        })
        .collect()
}

/// Runs calls of `sizes` rows one after another from position 0; returns every output row
/// and the final caches.
fn run(model: &Transformer<F32Matrix>, kv_heads: usize, sizes: &[usize]) -> Vec<Vec<f32>> {
    let mut caches: Vec<(Vec<f32>, Vec<f32>)> = (0..2)
        .map(|_| {
            (
                vec![0.0; kv_heads * SLOTS * HD],
                vec![0.0; kv_heads * SLOTS * HD],
            )
        })
        .collect();
    let mut outputs = Vec::new();
    let mut position = 0;
    for (call, &rows) in sizes.iter().enumerate() {
        let mut x: Vec<f32> = values(rows * D, 100 + call as u64);
        let mut views: Vec<KvCache> = caches
            .iter_mut()
            .map(|(k, v)| KvCache { keys: k, values: v })
            .collect();
        let turns = turns(position..position + rows);
        model
            .forward(&mut x, &mut views, SLOTS, position, &turns, 2)
            .unwrap();
        outputs.push(x);
        position += rows;
    }
    outputs
}

#[test]
fn grouped_heads_equal_plain_heads_with_repeated_kv_rows() {
    // linear caches (FlowLM: a prefix, then single steps) and ring caches past their context
    let cases: [(Option<usize>, &[usize]); 2] =
        [(None, &[7, 1, 1, 3, 1]), (Some(SLOTS), &[16, 16, 16, 1, 5])];
    for (context, sizes) in cases {
        let grouped = run(&model(true, context), KV_HEADS, sizes);
        let plain = run(&model(false, context), HEADS, sizes);
        assert_eq!(grouped, plain, "context {context:?}");
        assert!(grouped.iter().flatten().all(|v| v.is_finite()));
    }
}

#[test]
fn grouped_shapes_are_checked() {
    // kv heads must divide the query heads
    let layers = vec![layer(10, true)];
    assert!(Transformer::new(layers, HEADS, 4, None).is_err());
    // in_proj rows must be A + 2 G head_dim
    let layers = vec![layer(10, false)];
    let err = Transformer::new(layers, HEADS, KV_HEADS, None).unwrap_err();
    assert!(format!("{err}").contains("in_proj rows"), "{err}");
}
