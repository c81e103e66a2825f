//! int8 matrix products in voxlet's shapes: one row per FlowLM step (weight streaming), 14 rows
//! for a text prefill and 64 for a Mimi decoder transformer group (compute), per instruction set
//! and thread count.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use voxlet_kernels::{Int8Matrix, Isa};

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

criterion_group!(benches, bench);
criterion_main!(benches);
