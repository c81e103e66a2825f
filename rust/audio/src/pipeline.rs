//! `PcmPipeline`: time stretch (speed) -> resampler -> ring, so the decoding thread makes one
//! call per frame.
//!
//! The writer side (`push`, `flush`, `close`) is used by one thread, the reader side (`pop_into`
//! and the counters) by another. `push` applies backpressure: when the ring is full it waits, in
//! short sleeps, until the reader makes room, the stream is cancelled, or the timeout passes;
//! only then are the remaining samples counted as overrun and dropped. The reader never waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{AudioError, Result};
use crate::resample::StreamResampler;
use crate::ring::PcmRing;
use crate::stretch::TimeStretch;

const WAIT_STEP: Duration = Duration::from_micros(500);

/// The writer's stages: speed change (mono only; None at speed 1), then resampling.
struct Writer {
    stretch: Option<TimeStretch>,
    resampler: StreamResampler,
}

impl Writer {
    fn process(&mut self, pcm: &[f32], emit: &mut dyn FnMut(&[f32])) -> Result<usize> {
        let Some(stretch) = self.stretch.as_mut() else {
            return self.resampler.process(pcm, emit);
        };
        let resampler = &mut self.resampler;
        let (mut emitted, mut failed) = (0, None);
        stretch.process(pcm, &mut |block| match resampler.process(block, emit) {
            Ok(n) => emitted += n,
            Err(e) => failed = failed.take().or(Some(e)),
        })?;
        failed.map_or(Ok(emitted), Err)
    }

    fn flush(&mut self, emit: &mut dyn FnMut(&[f32])) -> Result<usize> {
        let mut emitted = 0;
        if let Some(stretch) = self.stretch.as_mut() {
            let resampler = &mut self.resampler;
            let mut failed = None;
            stretch.flush(&mut |block| match resampler.process(block, emit) {
                Ok(n) => emitted += n,
                Err(e) => failed = failed.take().or(Some(e)),
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        Ok(emitted + self.resampler.flush(emit)?)
    }
}

/// Shareable between the writer and the reader thread (all methods take `&self`). The
/// writer's stages sit behind a mutex that only the writer takes; the reader touches atomics
/// only.
pub struct PcmPipeline {
    writer: Mutex<Writer>,
    ring: PcmRing,
    channels: usize,
    cancelled: AtomicBool,
}

impl PcmPipeline {
    /// A pipeline from `input_rate_hz` to `output_rate_hz` with a ring of `capacity_frames`.
    pub fn new(
        input_rate_hz: u32,
        output_rate_hz: u32,
        capacity_frames: usize,
        channels: usize,
    ) -> Result<Self> {
        Self::with_speed(
            input_rate_hz,
            output_rate_hz,
            capacity_frames,
            channels,
            1.0,
        )
    }

    /// As `new`, playing `speed` times as fast with pitch kept (mono only; 1.0 leaves the
    /// samples untouched).
    pub fn with_speed(
        input_rate_hz: u32,
        output_rate_hz: u32,
        capacity_frames: usize,
        channels: usize,
        speed: f64,
    ) -> Result<Self> {
        let stretch = TimeStretch::new(speed)?;
        if speed != 1.0 && channels != 1 {
            return Err(AudioError::InvalidArgument {
                what: "channel count for a speed other than 1 (mono only)",
                value: channels,
            });
        }
        let resampler = StreamResampler::new(input_rate_hz, output_rate_hz, channels)?;
        let ring = PcmRing::new(capacity_frames.saturating_mul(channels))?;
        Ok(Self {
            writer: Mutex::new(Writer {
                stretch: (speed != 1.0).then_some(stretch),
                resampler,
            }),
            ring,
            channels,
            cancelled: AtomicBool::new(false),
        })
    }

    pub fn ring(&self) -> &PcmRing {
        &self.ring
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn output_delay_frames(&self) -> usize {
        self.writer().resampler.output_delay_frames()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        // A panic cannot happen while the lock is held (nothing in it panics), but stay usable.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writer: stretches and resamples interleaved `pcm` into the ring; returns output frames
    /// accepted.
    pub fn push(&self, pcm: &[f32], timeout: Option<Duration>) -> Result<usize> {
        if self.ring.is_closed() || self.cancelled.load(Ordering::Acquire) {
            return Err(AudioError::Closed);
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let (ring, cancelled) = (&self.ring, &self.cancelled);
        let mut accepted = 0;
        self.writer().process(pcm, &mut |block| {
            accepted += write_waiting(ring, cancelled, block, deadline);
        })?;
        Ok(accepted / self.channels)
    }

    /// Writer: pushes the stretcher's and the resampler's tails and closes the stream.
    pub fn finish(&self, timeout: Option<Duration>) -> Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let (ring, cancelled) = (&self.ring, &self.cancelled);
        let mut accepted = 0;
        let result = self.writer().flush(&mut |block| {
            accepted += write_waiting(ring, cancelled, block, deadline);
        });
        self.ring.close();
        result.map(|_| accepted / self.channels)
    }

    /// Either side: stop now. A waiting `push` returns; the reader sees the end after draining.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        self.ring.close();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// Writes `block`, waiting for room; counts what is left at the deadline or on cancel as overrun.
fn write_waiting(
    ring: &PcmRing,
    cancelled: &AtomicBool,
    block: &[f32],
    deadline: Option<Instant>,
) -> usize {
    let mut written = 0;
    loop {
        written += ring.push_some(&block[written..]);
        let expired = deadline.is_some_and(|d| Instant::now() >= d);
        if written == block.len() || cancelled.load(Ordering::Acquire) || expired {
            break;
        }
        std::thread::sleep(WAIT_STEP);
    }
    if written < block.len() {
        ring.push(&block[written..]); // counts the rest as overrun (ring is full or closed)
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn full_ring_times_out_and_counts_overrun() {
        let p = PcmPipeline::new(24000, 24000, 4, 1).unwrap();
        let n = p.push(&[1.0; 6], Some(Duration::from_millis(5))).unwrap();
        assert_eq!(n, 4);
        assert_eq!(p.ring().overrun_samples(), 2);
    }

    #[test]
    fn backpressure_waits_for_the_reader_and_loses_nothing() {
        let p = Arc::new(PcmPipeline::new(24000, 48000, 256, 1).unwrap());
        let reader = {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let mut got = 0;
                let mut buf = [0.0; 100];
                while !p.ring().is_finished() {
                    got += p.ring().pop_into(&mut buf);
                    std::thread::sleep(Duration::from_micros(50));
                }
                got
            })
        };
        for _ in 0..20 {
            p.push(&[0.5; 1920], None).unwrap(); // 3840 frames out through a 256-frame ring
        }
        p.finish(None).unwrap();
        assert_eq!(reader.join().unwrap(), 20 * 1920 * 2);
        assert_eq!(p.ring().overrun_samples(), 0);
    }

    #[test]
    fn cancel_stops_a_waiting_push() {
        let p = Arc::new(PcmPipeline::new(24000, 24000, 2, 1).unwrap());
        let canceller = {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                p.cancel();
            })
        };
        let accepted = p.push(&[0.0; 10], None).unwrap();
        canceller.join().unwrap();
        assert_eq!(accepted, 2);
        assert_eq!(p.push(&[0.0; 4], None), Err(AudioError::Closed));
    }

    #[test]
    fn speed_changes_the_length_and_needs_mono() {
        let p = PcmPipeline::with_speed(24000, 48000, 1 << 20, 1, 2.0).unwrap();
        let tone: Vec<f32> = (0..24_000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        p.push(&tone, None).unwrap();
        p.finish(None).unwrap();
        assert_eq!(p.ring().available(), 24_000); // 0.5 s at 48 kHz
        assert!(matches!(
            PcmPipeline::with_speed(24000, 24000, 16, 2, 1.5),
            Err(AudioError::InvalidArgument { .. })
        ));
        assert!(matches!(
            PcmPipeline::with_speed(24000, 24000, 16, 1, 9.0),
            Err(AudioError::InvalidSpeed { .. })
        ));
    }

    #[test]
    fn assert_send_sync() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<PcmPipeline>();
    }
}
