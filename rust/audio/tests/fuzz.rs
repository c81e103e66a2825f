//! Property fuzzing of everything that takes outside bytes or numbers: the WAV reader, the
//! resampler and the PCM conversions never panic, and what they return is well formed.
//! `PROPTEST_CASES` sets the cases per property (256 by default, 48 for the resampler's;
//! `make fuzz` runs many more);
//! a failure proptest finds is kept in `fuzz.proptest-regressions` and replayed first.

use proptest::prelude::*;
use voxlet_audio::pcm::{f32_to_f32le, f32_to_i16, f32_to_s16le, i16_to_f32};
use voxlet_audio::resample::{MAX_RATE_HZ, MAX_SAMPLE};
use voxlet_audio::{read_wav, resample, wav_header, SampleFormat, StreamResampler};

/// A valid WAV: a header, then `payload` as its data.
fn wav(rate: u32, channels: u16, format: SampleFormat, payload: &[u8]) -> Vec<u8> {
    let mut bytes = wav_header(rate, channels, format, Some(payload.len() as u32)).to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

fn check_decoded(bytes: &[u8]) {
    if let Ok(data) = read_wav(bytes) {
        assert!(data.channels > 0 && data.sample_rate_hz > 0);
        assert_eq!(data.samples.len() % usize::from(data.channels), 0);
        // float WAVs may hold any finite value (NaN and infinity are refused); integer ones
        // decode into [-1, 1]
        assert!(data.samples.iter().all(|x| x.is_finite()));
    }
}

proptest! {
    #[test]
    fn any_bytes_read_as_wav_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_decoded(&bytes);
    }

    #[test]
    fn any_riff_wave_prefix_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = b"RIFF\x00\x00\x00\x00WAVE".to_vec();
        bytes.extend_from_slice(&tail);
        check_decoded(&bytes);
    }

    #[test]
    fn corrupted_wav_headers_never_panic(
        rate in 1u32..200_000,
        channels in 1u16..8,
        float in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
        flips in proptest::collection::vec((0usize..44, any::<u8>()), 1..6),
        cut in proptest::option::of(0usize..300),
    ) {
        let format = if float { SampleFormat::F32 } else { SampleFormat::S16 };
        let mut bytes = wav(rate, channels, format, &payload);
        for (at, value) in flips {
            bytes[at] = value;
        }
        if let Some(n) = cut {
            bytes.truncate(n.min(bytes.len()));
        }
        check_decoded(&bytes);
    }

    #[test]
    fn valid_s16_wavs_decode_whole(
        rate in 1u32..200_000,
        channels in 1u16..8,
        frames in proptest::collection::vec(any::<i16>(), 0..64),
    ) {
        let mut samples = frames.clone();
        samples.truncate(frames.len() / usize::from(channels) * usize::from(channels));
        let payload: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let data = read_wav(&wav(rate, channels, SampleFormat::S16, &payload)).unwrap();
        prop_assert_eq!((data.sample_rate_hz, data.channels), (rate, channels));
        prop_assert_eq!(data.samples.len(), samples.len());
        prop_assert!(data.samples.iter().all(|x| (-1.0..1.0).contains(x)));
    }

    #[test]
    fn pcm_conversions_take_any_float_and_refuse_short_buffers(
        values in proptest::collection::vec(any::<f32>(), 0..128),
        short in 0usize..4,
    ) {
        let n = values.len();
        let mut i16s = vec![0i16; n];
        prop_assert_eq!(f32_to_i16(&values, &mut i16s).unwrap(), n);
        let mut back = vec![0f32; n];
        i16_to_f32(&i16s, &mut back).unwrap();
        prop_assert!(back.iter().all(|x| (-1.0..1.0).contains(x)));
        for (&x, &s) in values.iter().zip(&i16s) {
            if x.is_nan() { prop_assert_eq!(s, 0); }
            if x >= 1.0 { prop_assert_eq!(s, i16::MAX); }
            if x <= -1.0 { prop_assert!(s <= -32767); }
        }
        let mut bytes = vec![0u8; 4 * n];
        prop_assert_eq!(f32_to_s16le(&values, &mut bytes).unwrap(), 2 * n);
        prop_assert_eq!(f32_to_f32le(&values, &mut bytes).unwrap(), 4 * n);
        if n > 0 && short > 0 {
            let m = n.saturating_sub(short);
            prop_assert!(f32_to_i16(&values, &mut vec![0i16; m]).is_err());
            prop_assert!(f32_to_s16le(&values, &mut vec![0u8; 2 * m]).is_err());
            prop_assert!(f32_to_f32le(&values, &mut vec![0u8; 4 * m]).is_err());
            prop_assert!(i16_to_f32(&i16s, &mut vec![0f32; m]).is_err());
        }
    }
}

/// Cases per resampling property: `PROPTEST_CASES`, else `default` (each case builds FFT
/// resamplers, the slow part of this file).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(48)))]

    #[test]
    fn resampling_any_rates_and_values_never_panics(
        input_rate in 0u32..=MAX_RATE_HZ + 10,
        output_rate in 0u32..=MAX_RATE_HZ + 10,
        channels in 0usize..70,
        values in proptest::collection::vec(any::<f32>(), 0..96),
    ) {
        // up-sampling ratios to 200x: the output, allocated whole, stays small (and debug
        // builds fast)
        let input_rate = input_rate.max(output_rate / 200);
        match resample(&values, input_rate, output_rate, channels) {
            Ok(out) => {
                prop_assert!(channels > 0 && input_rate > 0 && output_rate > 0);
                prop_assert_eq!(out.len() % channels, 0);
                let r = StreamResampler::new(input_rate, output_rate, channels).unwrap();
                prop_assert!(out.len() / channels <= r.max_output_frames(values.len() / channels));
            }
            Err(_) => {
                let valid = 1..=MAX_RATE_HZ;
                let (lo, hi) = (input_rate.min(output_rate), input_rate.max(output_rate));
                let apart = u64::from(hi) > u64::from(lo) * 1024;
                let bad = !valid.contains(&input_rate) || !valid.contains(&output_rate) || apart;
                let ragged = channels == 0 || channels > 64 || values.len() % channels != 0;
                let wild = values.iter().any(|x| x.is_nan() || x.abs() > MAX_SAMPLE);
                prop_assert!(bad || ragged || wild);
            }
        }
    }

    #[test]
    fn streaming_in_any_pieces_equals_one_shot(
        output_rate in prop::sample::select(vec![8_000u32, 16_000, 22_050, 44_100, 48_000]),
        n in 0usize..3000,
        cuts in proptest::collection::vec(0usize..3000, 0..6),
    ) {
        let x: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.01).sin() * 0.5).collect();
        let whole = resample(&x, 24_000, output_rate, 1).unwrap();
        let mut r = StreamResampler::new(24_000, output_rate, 1).unwrap();
        let mut out = Vec::new();
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(n)).collect();
        points.sort_unstable();
        let mut start = 0;
        for end in points.into_iter().chain([n]) {
            r.process(&x[start..end], &mut |b| out.extend_from_slice(b)).unwrap();
            start = end;
        }
        r.flush(&mut |b| out.extend_from_slice(b)).unwrap();
        prop_assert_eq!(out, whole);
    }
}

#[test]
fn rates_too_far_apart_are_refused_before_any_buffer_is_made() {
    // 1 Hz to 768 kHz would size the resampler's buffers in gigabytes
    assert!(StreamResampler::new(1, MAX_RATE_HZ, 1).is_err());
    assert!(StreamResampler::new(MAX_RATE_HZ, 1, 1).is_err());
    let err = resample(&[0.0; 16], 1, MAX_RATE_HZ, 1).unwrap_err();
    assert!(err.to_string().contains("at most 1024x apart"), "{err}");
    assert!(StreamResampler::new(24, 24_576, 1).is_ok()); // exactly 1024x
}
