//! Streaming sample-rate conversion with the resampler's delay trimmed and its tail flushed.
//!
//! `StreamResampler` wraps rubato's synchronous FFT resampler. Input of any length is staged into
//! fixed chunks, so the output does not depend on how the input is split: pushing a signal in
//! pieces and then calling `flush` yields exactly what one-shot resampling yields, namely
//! `ceil(n_in * out_hz / in_hz)` frames with no leading delay. Equal rates pass through untouched.
//! Samples are interleaved f32; all buffers are allocated in `new`.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::error::{AudioError, Result};

/// Input frames per internal resampler call.
pub const DEFAULT_CHUNK_FRAMES: usize = 1024;
/// Highest sample rate accepted (the highest in common audio use).
pub const MAX_RATE_HZ: u32 = 768_000;
/// The largest sample magnitude resampled: audio lies within +-1, and far larger values would
/// overflow the resampler's FFTs into NaN.
pub const MAX_SAMPLE: f32 = 1e6;

/// A NaN, infinite or larger than MAX_SAMPLE sample is an error naming its index.
pub(crate) fn check_samples(input: &[f32]) -> Result<()> {
    match input
        .iter()
        .position(|x| x.is_nan() || x.abs() > MAX_SAMPLE)
    {
        Some(index) => Err(AudioError::BadSample {
            index,
            value: input[index].to_string(),
        }),
        None => Ok(()),
    }
}
/// The largest ratio between the two rates: the resampler's buffers grow with it (1 Hz to
/// 768 kHz would want gigabytes before the first sample).
pub const MAX_RATIO: u64 = 1024;

/// A streaming resampler for interleaved f32 audio. Not thread-safe by itself; `Send`.
pub struct StreamResampler {
    inner: Option<Fft<f32>>,
    input_rate_hz: u32,
    output_rate_hz: u32,
    channels: usize,
    chunk_frames: usize,
    staged: Vec<f32>,
    staged_frames: usize,
    scratch: Vec<f32>,
    to_trim: usize,
    frames_in: u64,
    frames_out: u64,
}

fn resample_error(e: impl std::fmt::Display) -> AudioError {
    AudioError::Resampler {
        message: e.to_string(),
    }
}

impl StreamResampler {
    /// A resampler from `input_rate_hz` to `output_rate_hz` for `channels` interleaved channels.
    pub fn new(input_rate_hz: u32, output_rate_hz: u32, channels: usize) -> Result<Self> {
        Self::with_chunk(
            input_rate_hz,
            output_rate_hz,
            channels,
            DEFAULT_CHUNK_FRAMES,
        )
    }

    /// As `new`, with the internal chunk size chosen (input frames per resampler call).
    pub fn with_chunk(
        input_rate_hz: u32,
        output_rate_hz: u32,
        channels: usize,
        chunk_frames: usize,
    ) -> Result<Self> {
        let valid = 1..=MAX_RATE_HZ;
        let (low, high) = (
            u64::from(input_rate_hz.min(output_rate_hz)),
            u64::from(input_rate_hz.max(output_rate_hz)),
        );
        if !valid.contains(&input_rate_hz)
            || !valid.contains(&output_rate_hz)
            || high > low * MAX_RATIO
        {
            return Err(AudioError::InvalidSampleRate {
                input_hz: input_rate_hz,
                output_hz: output_rate_hz,
            });
        }
        if channels == 0 {
            return Err(AudioError::InvalidArgument {
                what: "channel count",
                value: channels,
            });
        }
        if channels > 64 {
            return Err(AudioError::InvalidArgument {
                what: "channel count (at most 64)",
                value: channels,
            });
        }
        if chunk_frames == 0 || chunk_frames > 1 << 20 {
            return Err(AudioError::InvalidArgument {
                what: "chunk size",
                value: chunk_frames,
            });
        }
        let inner = if input_rate_hz == output_rate_hz {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    input_rate_hz as usize,
                    output_rate_hz as usize,
                    chunk_frames,
                    channels,
                    FixedSync::Input,
                )
                .map_err(resample_error)?,
            )
        };
        let (chunk, out_max, delay) = match &inner {
            Some(r) => (
                r.input_frames_next(),
                r.output_frames_max(),
                r.output_delay(),
            ),
            None => (chunk_frames, chunk_frames, 0),
        };
        Ok(Self {
            inner,
            input_rate_hz,
            output_rate_hz,
            channels,
            chunk_frames: chunk,
            staged: vec![0.0; chunk * channels],
            staged_frames: 0,
            scratch: vec![0.0; out_max * channels],
            to_trim: delay,
            frames_in: 0,
            frames_out: 0,
        })
    }

    pub fn input_rate_hz(&self) -> u32 {
        self.input_rate_hz
    }

    pub fn output_rate_hz(&self) -> u32 {
        self.output_rate_hz
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The delay of the underlying resampler in output frames; it is trimmed from the output.
    pub fn output_delay_frames(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Output frames owed for all input so far, once flushed: ceil(n_in * out / in).
    pub fn expected_output_frames(&self) -> u64 {
        let (i, o) = (
            u64::from(self.input_rate_hz),
            u64::from(self.output_rate_hz),
        );
        (self.frames_in * o).div_ceil(i)
    }

    /// An upper bound on the output frames one `process` call of `input_frames` can emit.
    pub fn max_output_frames(&self, input_frames: usize) -> usize {
        let ratio = f64::from(self.output_rate_hz) / f64::from(self.input_rate_hz);
        (input_frames as f64 * ratio).ceil() as usize + self.scratch.len() / self.channels + 1
    }

    /// Resamples interleaved `input` and hands each block of interleaved output to `emit`.
    /// Returns the output frames emitted. Does not allocate. A NaN, infinite or larger than
    /// MAX_SAMPLE sample is an error, before any of `input` is taken.
    pub fn process(&mut self, input: &[f32], emit: &mut dyn FnMut(&[f32])) -> Result<usize> {
        if !input.len().is_multiple_of(self.channels) {
            return Err(AudioError::ChannelMismatch {
                expected: self.channels,
                actual: input.len() % self.channels,
            });
        }
        check_samples(input)?;
        let n_frames = input.len() / self.channels;
        self.frames_in += n_frames as u64;
        if self.inner.is_none() {
            self.frames_out += n_frames as u64;
            if !input.is_empty() {
                emit(input);
            }
            return Ok(n_frames);
        }
        let mut emitted = 0;
        let mut rest = input;
        while !rest.is_empty() {
            let free = (self.chunk_frames - self.staged_frames) * self.channels;
            let take = free.min(rest.len());
            let at = self.staged_frames * self.channels;
            self.staged[at..at + take].copy_from_slice(&rest[..take]);
            self.staged_frames += take / self.channels;
            rest = &rest[take..];
            if self.staged_frames == self.chunk_frames {
                emitted += self.run_chunk(None, None, emit)?;
                self.staged_frames = 0;
            }
        }
        Ok(emitted)
    }

    /// Emits the rest of the signal (staged input, then the tail), so the total output is
    /// exactly `expected_output_frames()`, and resets for a new stream. Does not allocate.
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[f32])) -> Result<usize> {
        let mut emitted = 0;
        if self.inner.is_some() {
            let expected = self.expected_output_frames();
            if self.staged_frames > 0 || self.frames_out < expected {
                let partial = self.staged_frames;
                emitted += self.run_chunk(Some(partial), Some(expected), emit)?;
                self.staged_frames = 0;
            }
            while self.frames_out < expected {
                emitted += self.run_chunk(Some(0), Some(expected), emit)?;
            }
        }
        self.reset();
        Ok(emitted)
    }

    /// Forgets all input and state; the next sample starts a new stream.
    pub fn reset(&mut self) {
        if let Some(r) = self.inner.as_mut() {
            r.reset();
            self.to_trim = r.output_delay();
        }
        self.staged_frames = 0;
        self.frames_in = 0;
        self.frames_out = 0;
    }

    /// Runs one resampler call on the staged chunk (`partial`: frames of it that are real),
    /// trims the startup delay and caps the output at `limit` total frames.
    fn run_chunk(
        &mut self,
        partial: Option<usize>,
        limit: Option<u64>,
        emit: &mut dyn FnMut(&[f32]),
    ) -> Result<usize> {
        let Some(resampler) = self.inner.as_mut() else {
            return Ok(0);
        };
        let ch = self.channels;
        let input = InterleavedSlice::new(&self.staged[..], ch, self.chunk_frames)
            .map_err(resample_error)?;
        let out_frames = self.scratch.len() / ch;
        let mut output = InterleavedSlice::new_mut(&mut self.scratch[..], ch, out_frames)
            .map_err(resample_error)?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, produced) = resampler
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(resample_error)?;
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        let mut keep = produced - skip;
        if let Some(limit) = limit {
            keep = keep.min(limit.saturating_sub(self.frames_out) as usize);
        }
        if keep > 0 {
            emit(&self.scratch[skip * ch..(skip + keep) * ch]);
        }
        self.frames_out += keep as u64;
        Ok(keep)
    }
}

/// One-shot resampling of a whole interleaved signal; allocates the result (an error where
/// it would not fit in memory).
pub fn resample(
    input: &[f32],
    input_rate_hz: u32,
    output_rate_hz: u32,
    channels: usize,
) -> Result<Vec<f32>> {
    let mut r = StreamResampler::new(input_rate_hz, output_rate_hz, channels)?;
    let needed = r
        .max_output_frames(input.len() / channels.max(1))
        .saturating_mul(channels);
    let mut out = Vec::new();
    // an output too large for memory is an error, not an abort of the process
    out.try_reserve_exact(needed)
        .map_err(|_| AudioError::InvalidArgument {
            what: "resampled length (samples; more than memory holds)",
            value: needed,
        })?;
    r.process(input, &mut |block| out.extend_from_slice(block))?;
    r.flush(&mut |block| out.extend_from_slice(block))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_rates_pass_through() {
        let x: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(resample(&x, 24000, 24000, 1).unwrap(), x);
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(matches!(
            StreamResampler::new(0, 48000, 1),
            Err(AudioError::InvalidSampleRate { .. })
        ));
        assert!(matches!(
            StreamResampler::new(24000, 48000, 0),
            Err(AudioError::InvalidArgument { .. })
        ));
        let mut r = StreamResampler::new(24000, 48000, 2).unwrap();
        assert!(matches!(
            r.process(&[0.0; 3], &mut |_| {}),
            Err(AudioError::ChannelMismatch { .. })
        ));
    }

    #[test]
    fn assert_send() {
        fn is_send<T: Send>() {}
        is_send::<StreamResampler>();
    }
}
