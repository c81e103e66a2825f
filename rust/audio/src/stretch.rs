//! `TimeStretch`: streaming, pitch-preserving change of speed (WSOLA) for mono PCM.
//!
//! Waveform-similarity overlap-add: output is built from windows of `WINDOW` input samples laid
//! down every `HOP` output samples (Hann, half overlap, so the windows sum to one), while the
//! input is read every `HOP * speed` samples. Each window is moved by up to `SEARCH` samples
//! from its nominal place to where the input looks most like the natural continuation of the
//! window before it (normalised cross-correlation), so periods line up and pitch is kept.
//!
//! Streaming: a window is laid down as soon as its input (and search range) has arrived, and
//! the output before the next window's start is final and handed out; what comes out depends
//! only on the input samples, never on how they were split into calls, so streamed equals
//! one-shot bit for bit. Latency: one window plus the search range (40 ms at 24 kHz). The
//! output has `round(input / speed)` samples (or the few more already handed out). Speed 1
//! passes samples through untouched.

use crate::error::{AudioError, Result};
use crate::resample::check_samples;

/// Slowest and fastest speeds accepted.
pub const MIN_SPEED: f64 = 0.25;
pub const MAX_SPEED: f64 = 4.0;
/// Window length, output hop and search range in samples (30 ms, 15 ms, +-10 ms at 24 kHz).
pub const WINDOW: usize = 720;
pub const HOP: usize = WINDOW / 2;
pub const SEARCH: usize = 240;
/// The search looks every COARSE_STEP samples first, then at every sample around the best.
const COARSE_STEP: usize = 4;

pub struct TimeStretch {
    speed: f64,
    window: Vec<f32>,
    /// Buffered input; `input[0]` is absolute input sample `base`.
    input: Vec<f32>,
    base: u64,
    received: u64,
    /// Next window's index, and where the previous window was read from (absolute).
    next: u64,
    previous_start: Option<u64>,
    /// Output samples [next * HOP, next * HOP + WINDOW) still being summed.
    pending: Vec<f32>,
    emitted: u64,
    finished: bool,
}

impl TimeStretch {
    /// A stretcher for `speed` (MIN_SPEED..=MAX_SPEED): 2.0 plays twice as fast.
    pub fn new(speed: f64) -> Result<Self> {
        if !(MIN_SPEED..=MAX_SPEED).contains(&speed) || !speed.is_finite() {
            return Err(AudioError::InvalidSpeed { speed });
        }
        let window = (0..WINDOW)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * i as f64 / WINDOW as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        Ok(Self {
            speed,
            window,
            input: Vec::new(),
            base: 0,
            received: 0,
            next: 0,
            previous_start: None,
            pending: vec![0.0; WINDOW],
            emitted: 0,
            finished: false,
        })
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    fn is_identity(&self) -> bool {
        self.speed == 1.0
    }

    /// Output samples for `input_samples` of input once finished (at least).
    pub fn expected_output(&self, input_samples: u64) -> u64 {
        if self.is_identity() {
            input_samples
        } else {
            (input_samples as f64 / self.speed).round() as u64
        }
    }

    /// Adds input; hands every output sample that became final to `emit`. Returns how many.
    pub fn process(&mut self, input: &[f32], emit: &mut dyn FnMut(&[f32])) -> Result<usize> {
        if self.finished {
            return Err(AudioError::Closed);
        }
        check_samples(input)?;
        if self.is_identity() {
            if !input.is_empty() {
                emit(input);
            }
            self.received += input.len() as u64;
            self.emitted += input.len() as u64;
            return Ok(input.len());
        }
        self.input.extend_from_slice(input);
        self.received += input.len() as u64;
        let mut out = 0;
        while self.input_end_needed() <= self.received {
            out += self.lay_window(emit);
        }
        Ok(out)
    }

    /// Ends the input: lays the remaining windows over silence and hands out the rest, so the
    /// output has `expected_output(received)` samples (or what was already handed out).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[f32])) -> Result<usize> {
        if self.finished {
            return Ok(0);
        }
        self.finished = true;
        if self.is_identity() {
            return Ok(0);
        }
        let target = self.expected_output(self.received).max(self.emitted);
        let before = self.emitted;
        let mut out: Vec<f32> = Vec::new();
        while before + (out.len() as u64) < target && self.nominal_start(self.next) < self.received
        {
            self.lay_window(&mut |b| out.extend_from_slice(b));
        }
        // the last window's falling half, then silence, up to the target length
        let mut i = 0;
        while before + (out.len() as u64) < target {
            out.push(if i < WINDOW { self.pending[i] } else { 0.0 });
            i += 1;
        }
        out.truncate((target - before) as usize);
        if !out.is_empty() {
            emit(&out);
        }
        self.emitted = before + out.len() as u64;
        Ok(out.len())
    }

    fn nominal_start(&self, k: u64) -> u64 {
        ((k * HOP as u64) as f64 * self.speed).round() as u64
    }

    /// Input needed (absolute end) before window `next` can be laid.
    fn input_end_needed(&self) -> u64 {
        let nominal = self.nominal_start(self.next);
        let search_end = if self.previous_start.is_some() {
            nominal + (SEARCH + WINDOW) as u64
        } else {
            nominal + WINDOW as u64
        };
        let template_end = self.previous_start.map_or(0, |p| p + (HOP + WINDOW) as u64);
        search_end.max(template_end)
    }

    /// Input sample at an absolute index (silence past the end, once finished).
    fn at(&self, index: u64) -> f32 {
        if index < self.base {
            return 0.0;
        }
        let i = (index - self.base) as usize;
        self.input.get(i).copied().unwrap_or(0.0)
    }

    fn segment(&self, start: u64, len: usize) -> Vec<f32> {
        (0..len as u64).map(|i| self.at(start + i)).collect()
    }

    /// Where window `next` reads from: its nominal start moved by the best-matching offset.
    fn choose_start(&self) -> u64 {
        let nominal = self.nominal_start(self.next);
        let Some(previous) = self.previous_start else {
            return nominal;
        };
        let template = self.segment(previous + HOP as u64, WINDOW);
        let lowest = nominal.saturating_sub(SEARCH as u64).max(self.base);
        let highest = nominal + SEARCH as u64;
        let candidates = (highest - lowest) as usize + 1;
        let span = self.segment(lowest, candidates - 1 + WINDOW);
        // energy of any candidate window from prefix sums of squares
        let mut squares = Vec::with_capacity(span.len() + 1);
        squares.push(0.0f64);
        for &v in &span {
            squares.push(squares[squares.len() - 1] + f64::from(v) * f64::from(v));
        }
        let score = |offset: usize| {
            let energy = (squares[offset + WINDOW] - squares[offset]).max(0.0);
            f64::from(dot(&template, &span[offset..offset + WINDOW])) / (energy + 1e-9).sqrt()
        };
        // coarse pass every COARSE_STEP samples, then every sample around the best
        let mut best = (f64::NEG_INFINITY, 0);
        for offset in (0..candidates).step_by(COARSE_STEP) {
            let s = score(offset);
            if s > best.0 {
                best = (s, offset);
            }
        }
        let around = best.1;
        let from = around.saturating_sub(COARSE_STEP - 1);
        let to = (around + COARSE_STEP - 1).min(candidates - 1);
        for offset in from..=to {
            let s = score(offset);
            if s > best.0 {
                best = (s, offset);
            }
        }
        lowest + best.1 as u64
    }

    fn lay_window(&mut self, emit: &mut dyn FnMut(&[f32])) -> usize {
        let start = self.choose_start();
        let first = self.previous_start.is_none();
        for i in 0..WINDOW {
            // the first window has no window before it to cross-fade with: full weight
            let w = if first && i < HOP {
                1.0
            } else {
                self.window[i]
            };
            self.pending[i] += w * self.at(start + i as u64);
        }
        emit(&self.pending[..HOP]);
        self.pending.copy_within(HOP.., 0);
        self.pending[WINDOW - HOP..].fill(0.0);
        self.emitted += HOP as u64;
        self.previous_start = Some(start);
        self.next += 1;
        self.drop_consumed_input();
        HOP
    }

    fn drop_consumed_input(&mut self) {
        let nominal = self.nominal_start(self.next);
        let keep_from = nominal
            .saturating_sub(SEARCH as u64)
            .min(self.previous_start.map_or(nominal, |p| p + HOP as u64));
        if keep_from > self.base {
            let cut = ((keep_from - self.base) as usize).min(self.input.len());
            self.input.drain(..cut);
            self.base += cut as u64;
        }
    }
}

/// Dot product in eight independent lanes (so the compiler vectorises it).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, f0: f64) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 / 24_000.0;
                let v: f64 = (1..=5)
                    .map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() / h as f64)
                    .sum();
                (0.3 * v) as f32
            })
            .collect()
    }

    fn run(s: &mut TimeStretch, input: &[f32], pieces: usize) -> Vec<f32> {
        let mut out = Vec::new();
        let step = input.len().div_ceil(pieces.max(1));
        for part in input.chunks(step.max(1)) {
            s.process(part, &mut |b| out.extend_from_slice(b)).unwrap();
        }
        s.flush(&mut |b| out.extend_from_slice(b)).unwrap();
        out
    }

    /// Fundamental by autocorrelation over 60..400 Hz.
    fn pitch(x: &[f32]) -> f64 {
        let (lo, hi) = (24_000 / 400, 24_000 / 60);
        let best = (lo..hi)
            .max_by(|&a, &b| {
                let ca: f32 = x.iter().zip(&x[a..]).map(|(p, q)| p * q).sum();
                let cb: f32 = x.iter().zip(&x[b..]).map(|(p, q)| p * q).sum();
                ca.total_cmp(&cb)
            })
            .unwrap();
        24_000.0 / best as f64
    }

    #[test]
    fn duration_scales_and_pitch_stays() {
        let input = tone(48_000, 150.0);
        for speed in [0.25, 0.5, 0.8, 1.25, 2.0, 4.0] {
            let out = run(&mut TimeStretch::new(speed).unwrap(), &input, 1);
            let want = 48_000.0 / speed;
            assert!(
                (out.len() as f64 - want).abs() <= 0.01 * want,
                "{speed}: {}",
                out.len()
            );
            let mid = &out[out.len() / 4..out.len() / 4 + 4800];
            let f = pitch(mid);
            assert!((f - 150.0).abs() <= 0.02 * 150.0, "{speed}: {f} Hz");
        }
    }

    #[test]
    fn streamed_equals_one_shot_whatever_the_pieces() {
        let input = tone(30_001, 210.0);
        for speed in [0.5, 1.5, 3.7] {
            let whole = run(&mut TimeStretch::new(speed).unwrap(), &input, 1);
            for pieces in [2, 7, 1000, 30_001] {
                let streamed = run(&mut TimeStretch::new(speed).unwrap(), &input, pieces);
                assert_eq!(whole, streamed, "speed {speed}, {pieces} pieces");
            }
        }
    }

    #[test]
    fn speed_one_is_untouched_and_bad_speeds_are_refused() {
        let input = tone(5000, 100.0);
        assert_eq!(run(&mut TimeStretch::new(1.0).unwrap(), &input, 3), input);
        for bad in [0.0, 0.2, 4.01, f64::NAN, f64::INFINITY, -1.0] {
            assert!(matches!(
                TimeStretch::new(bad),
                Err(AudioError::InvalidSpeed { .. })
            ));
        }
    }

    #[test]
    fn silence_stays_silence_and_short_input_keeps_its_length() {
        let out = run(&mut TimeStretch::new(2.0).unwrap(), &vec![0.0; 10_000], 3);
        assert_eq!(out.len(), 5000);
        assert!(out.iter().all(|&v| v == 0.0));
        for n in [0, 1, 100, 719] {
            let out = run(&mut TimeStretch::new(0.5).unwrap(), &vec![0.1; n], 1);
            assert_eq!(out.len(), 2 * n);
        }
    }

    #[test]
    fn memory_stays_bounded() {
        let mut s = TimeStretch::new(0.25).unwrap();
        let block = tone(1920, 120.0);
        for _ in 0..500 {
            s.process(&block, &mut |_| {}).unwrap();
            assert!(
                s.input.len() < 3 * (WINDOW + SEARCH) + 4 * HOP,
                "{}",
                s.input.len()
            );
        }
    }
}
