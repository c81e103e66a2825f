//! Cost of resampling one 80 ms frame (1920 samples at 24 kHz) to common output rates.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use voxlet_audio::StreamResampler;

fn bench(c: &mut Criterion) {
    let frame: Vec<f32> = (0..1920).map(|i| (i as f32 * 0.01).sin()).collect();
    let mut g = c.benchmark_group("resample_1920");
    for to in [16000u32, 44100, 48000] {
        let mut r = StreamResampler::new(24000, to, 1).unwrap();
        let mut sink = 0.0f32;
        g.bench_function(format!("24000_to_{to}"), |b| {
            b.iter(|| {
                r.process(black_box(&frame), &mut |out| sink += out[0])
                    .unwrap()
            })
        });
        black_box(sink);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
