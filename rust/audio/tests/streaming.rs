//! Resampler matrix: rates x chunk sizes x channels. Streamed output equals one-shot output and
//! rubato's own process_all (delay trimmed, tail flushed), has length ceil(n * ratio), keeps DC,
//! and has no time shift.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use voxlet_audio::{resample, StreamResampler};

const RATES: [u32; 7] = [8000, 16000, 22050, 32000, 44100, 48000, 11025];
const CHUNKS: [usize; 5] = [1, 7, 480, 1920, 5000];

fn signal(n: usize, channels: usize, rate: u32) -> Vec<f32> {
    (0..n * channels)
        .map(|i| {
            let t = (i / channels) as f32 / rate as f32;
            let c = (i % channels) as f32;
            0.4 * (2.0 * std::f32::consts::PI * (220.0 + 110.0 * c) * t).sin()
        })
        .collect()
}

fn streamed(x: &[f32], from: u32, to: u32, channels: usize, chunk_frames: usize) -> Vec<f32> {
    let mut r = StreamResampler::new(from, to, channels).unwrap();
    let mut out = Vec::new();
    for piece in x.chunks(chunk_frames * channels) {
        r.process(piece, &mut |b| out.extend_from_slice(b)).unwrap();
    }
    r.flush(&mut |b| out.extend_from_slice(b)).unwrap();
    out
}

fn rubato_one_shot(x: &[f32], from: u32, to: u32, channels: usize) -> Vec<f32> {
    let n = x.len() / channels;
    let mut r =
        Fft::<f32>::new(from as usize, to as usize, 1024, channels, FixedSync::Input).unwrap();
    let out_len = r.process_all_needed_output_len(n);
    let mut out = vec![0.0f32; out_len * channels];
    let input = InterleavedSlice::new(x, channels, n).unwrap();
    let mut output = InterleavedSlice::new_mut(&mut out, channels, out_len).unwrap();
    let (_, produced) = r
        .process_all_into_buffer(&input, &mut output, n, None)
        .unwrap();
    out.truncate(produced * channels);
    out
}

fn check_pair(from: u32, to: u32, channels: usize) {
    let n = 24000 * 3 / 10 + 17; // 0.3 s and an odd remainder
    let x = signal(n, channels, from);
    let reference = resample(&x, from, to, channels).unwrap();
    let expected_frames = (n as u64 * to as u64).div_ceil(from as u64) as usize;
    assert_eq!(
        reference.len(),
        expected_frames * channels,
        "{from}->{to} length"
    );
    let rubato = rubato_one_shot(&x, from, to, channels);
    assert_eq!(rubato.len(), reference.len());
    let max_diff = rubato
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        max_diff < 1e-6,
        "{from}->{to}: differs from rubato process_all by {max_diff}"
    );
    for chunk in CHUNKS {
        assert_eq!(
            streamed(&x, from, to, channels, chunk),
            reference,
            "{from}->{to} chunk {chunk}"
        );
    }
}

#[test]
fn from_24k_to_every_rate() {
    for to in RATES {
        check_pair(24000, to, 1);
    }
}

#[test]
fn from_every_rate_to_24k() {
    for from in RATES {
        check_pair(from, 24000, 1);
    }
}

#[test]
fn stereo_and_arbitrary_integer_rates() {
    check_pair(24000, 48000, 2);
    check_pair(44100, 24000, 2);
    check_pair(24000, 12345, 1);
}

#[test]
fn dc_stays_dc() {
    for to in [16000, 44100, 48000] {
        let y = resample(&vec![0.25f32; 24000], 24000, to, 1).unwrap();
        let middle = &y[y.len() / 4..3 * y.len() / 4];
        assert!(
            middle.iter().all(|v| (v - 0.25).abs() < 1e-3),
            "24000->{to}"
        );
    }
}

#[test]
fn no_time_shift() {
    // An impulse at 0.1 s comes out at 0.1 s: the resampler's delay is trimmed.
    for to in [16000u32, 48000] {
        let mut x = vec![0.0f32; 24000];
        x[2400] = 1.0;
        let y = resample(&x, 24000, to, 1).unwrap();
        let peak = y
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .map(|(i, _)| i)
            .unwrap();
        let expected = to as usize / 10;
        assert!(
            peak.abs_diff(expected) <= 1,
            "24000->{to}: peak at {peak}, expected {expected}"
        );
    }
}
