//! int8 and float32 matrix products in voxlet's shapes: one row per FlowLM step (weight
//! streaming), 14 rows for a text prefill and 64 for a Mimi decoder transformer group (compute),
//! per instruction set and thread count; and the whole one-call int8 transformer: a Mimi
//! decoder transformer (2 layers, 512 wide, ring of 250) over 16 and 64 rows, attention included.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use voxlet_kernels::{
    F32Matrix, Int8Matrix, Isa, KvCache, Layer, LayerScale, Linear, Norm, Transformer,
};

fn matrix(rows: usize, cols: usize) -> Arc<Int8Matrix> {
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919) % 255) as f32 / 127.0 - 1.0)
        .collect();
    Arc::new(Int8Matrix::quantize(&w, rows, cols, None).unwrap())
}

fn mimi_transformer(c: &mut Criterion) {
    let (d, heads, ffn, context) = (512, 8, 2048, 250);
    let norm = || Norm {
        weight: vec![1.0; d],
        bias: vec![0.0; d],
        eps: 1e-5,
    };
    let layer = || Layer {
        norm1: norm(),
        in_proj: matrix(3 * d, d),
        out_proj: matrix(d, d),
        norm2: norm(),
        linear1: matrix(ffn, d),
        linear2: matrix(d, ffn),
        layer_scale: Some(LayerScale {
            attention: vec![0.01; d],
            feed_forward: vec![0.01; d],
        }),
    };
    let model = Transformer::new(vec![layer(), layer()], heads, heads, Some(context)).unwrap();
    let hd = d / heads;
    let mut group = c.benchmark_group("int8_transformer_mimi");
    for rows in [16, 64] {
        let mut caches: Vec<(Vec<f32>, Vec<f32>)> = (0..2)
            .map(|_| {
                (
                    vec![0.1; heads * context * hd],
                    vec![0.2; heads * context * hd],
                )
            })
            .collect();
        let x0: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0)
            .collect();
        let turns: Vec<f32> = (0..rows * hd / 2)
            .flat_map(|i| [(i as f32).cos(), (i as f32).sin()])
            .collect();
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("{rows}_rows")), |b| {
            b.iter(|| {
                let mut x = x0.clone();
                let mut views: Vec<KvCache> = caches
                    .iter_mut()
                    .map(|(k, v)| KvCache { keys: k, values: v })
                    .collect();
                model
                    .forward(&mut x, &mut views, context, 1000, &turns, 1)
                    .unwrap();
            })
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("int8_matmul");
    for &(m, rows, cols) in &[(1, 4096, 1024), (14, 4096, 1024), (64, 2048, 512)] {
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 255) as f32 - 127.0)
            .collect();
        let x: Vec<f32> = (0..m * cols)
            .map(|i| ((i * 31) % 17) as f32 - 8.0)
            .collect();
        let mat = Int8Matrix::quantize(&w, rows, cols, None).unwrap();
        let mut out = vec![0.0; m * rows];
        group.throughput(Throughput::Bytes((rows * cols) as u64));
        for isa in [Isa::Portable, Isa::Avx2]
            .into_iter()
            .filter(|i| i.is_supported())
        {
            for threads in [1, 2] {
                let id =
                    BenchmarkId::new(format!("{isa:?}/{threads}t"), format!("{m}x{rows}x{cols}"));
                group.bench_function(id, |b| {
                    b.iter(|| mat.matmul_on(isa, &x, &mut out, threads).unwrap())
                });
            }
        }
    }
    group.finish();
}

/// Float products in the same shapes, AVX2 + FMA only (the portable path's `mul_add` is a libm
/// call on x86): FLOP/s through `Throughput::Elements` of multiply-adds.
fn float_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("f32_matmul");
    for &(m, rows, cols) in &[(1, 4096, 1024), (14, 4096, 1024), (64, 2048, 512)] {
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 255) as f32 / 127.0 - 1.0)
            .collect();
        let x: Vec<f32> = (0..m * cols)
            .map(|i| ((i * 31) % 17) as f32 - 8.0)
            .collect();
        let mat = F32Matrix::new(w, rows, cols, None).unwrap();
        let mut out = vec![0.0; m * rows];
        group.throughput(Throughput::Elements((m * rows * cols) as u64));
        for threads in [1, 2] {
            let id = BenchmarkId::new(format!("{threads}t"), format!("{m}x{rows}x{cols}"));
            group.bench_function(id, |b| {
                b.iter(|| mat.matmul_on(Isa::best(), &x, &mut out, threads).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench, float_bench, mimi_transformer);
criterion_main!(benches);
