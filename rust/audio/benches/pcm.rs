//! Cost of converting one 80 ms frame (1920 samples) of float PCM.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use voxlet_audio::pcm::{f32_to_i16, f32_to_s16le};

fn bench(c: &mut Criterion) {
    let frame: Vec<f32> = (0..1920).map(|i| (i as f32 * 0.01).sin()).collect();
    let mut out = vec![0i16; 1920];
    let mut bytes = vec![0u8; 3840];
    let mut g = c.benchmark_group("pcm_1920");
    g.bench_function("f32_to_i16", |b| {
        b.iter(|| f32_to_i16(black_box(&frame), &mut out))
    });
    g.bench_function("f32_to_s16le", |b| {
        b.iter(|| f32_to_s16le(black_box(&frame), &mut bytes))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
