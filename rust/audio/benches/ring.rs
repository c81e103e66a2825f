//! Cost of pushing and popping one 80 ms frame (1920 samples) through the SPSC ring.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use voxlet_audio::PcmRing;

fn bench(c: &mut Criterion) {
    let ring = PcmRing::new(1920 * 8).unwrap();
    let frame = vec![0.25f32; 1920];
    let mut out = vec![0f32; 1920];
    let mut g = c.benchmark_group("ring_1920");
    g.bench_function("push_then_pop", |b| {
        b.iter(|| {
            ring.push(black_box(&frame));
            ring.pop_into(black_box(&mut out))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
