//! A fixed-capacity, lock-free single-producer single-consumer ring of f32 samples.
//!
//! One thread writes (`push`), one thread reads (`pop_into`); neither locks or allocates after
//! `new`, so the reader is safe in an audio callback. A push never overwrites unread samples: it
//! writes what fits, and the samples that did not fit are counted as overrun. A pop that finds
//! fewer samples than asked while the stream is open counts an underrun. `close` marks the end of
//! the stream; the reader sees `is_finished` once everything written has been read.
//!
//! Indices grow without bound (u64 wrap-around is centuries away at audio rates) and are reduced
//! modulo the capacity on access. The writer publishes `head` with Release after writing the
//! samples, the reader publishes `tail` with Release after reading them.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{AudioError, Result};

/// Largest ring accepted, in samples (1 GiB of f32).
pub const MAX_CAPACITY: usize = 1 << 28;

/// The ring. Share it between exactly one writer thread and one reader thread (e.g. in an Arc).
pub struct PcmRing {
    buf: Box<[UnsafeCell<f32>]>,
    head: AtomicU64,
    tail: AtomicU64,
    closed: AtomicBool,
    overrun_samples: AtomicU64,
    underruns: AtomicU64,
}

// SAFETY: the writer only touches slots in [head, tail + capacity) and the reader only slots in
// [tail, head); the atomics' Acquire/Release ordering hands each slot from one to the other.
// Correctness requires at most one concurrent writer and one concurrent reader.
unsafe impl Sync for PcmRing {}
unsafe impl Send for PcmRing {}

impl PcmRing {
    /// A ring holding up to `capacity` samples. Allocates once.
    pub fn new(capacity: usize) -> Result<Self> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(AudioError::InvalidArgument {
                what: "ring capacity (samples, 1..=2^28)",
                value: capacity,
            });
        }
        Ok(Self {
            buf: (0..capacity).map(|_| UnsafeCell::new(0.0)).collect(),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            overrun_samples: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
        })
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Raw pointer to the slots; `UnsafeCell<f32>` has the layout of `f32`.
    fn slots(&self) -> *mut f32 {
        UnsafeCell::raw_get(self.buf.as_ptr())
    }

    /// Samples written and not yet read.
    pub fn available(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        (head - tail) as usize
    }

    /// Room for this many more samples.
    pub fn free(&self) -> usize {
        self.capacity() - self.available()
    }

    /// Writer: copies as much of `data` as fits and returns how many samples were written.
    /// Samples that do not fit are counted as overrun; unread samples are never overwritten.
    /// After `close`, writes nothing. Does not block or allocate.
    pub fn push(&self, data: &[f32]) -> usize {
        let n = self.push_some(data);
        if n < data.len() {
            self.overrun_samples
                .fetch_add((data.len() - n) as u64, Ordering::Relaxed);
        }
        n
    }

    /// Writer: as `push`, but samples that do not fit are not counted (the caller retries).
    pub fn push_some(&self, data: &[f32]) -> usize {
        if self.closed.load(Ordering::Acquire) {
            return 0;
        }
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let cap = self.capacity() as u64;
        let n = data.len().min((cap - (head - tail)) as usize);
        let start = (head % cap) as usize;
        let first = n.min(self.capacity() - start);
        // SAFETY: [start, start + first) and [0, n - first) lie in the writer's region
        // [head, tail + capacity), which the reader does not touch until head is published.
        unsafe {
            let base = self.slots();
            std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(start), first);
            std::ptr::copy_nonoverlapping(data.as_ptr().add(first), base, n - first);
        }
        self.head.store(head + n as u64, Ordering::Release);
        n
    }

    /// Reader: moves up to `out.len()` samples into `out` and returns how many.
    /// Counts an underrun when the stream is open and fewer samples than asked were there.
    /// Does not block, lock or allocate.
    pub fn pop_into(&self, out: &mut [f32]) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let cap = self.capacity() as u64;
        let n = out.len().min((head - tail) as usize);
        let start = (tail % cap) as usize;
        let first = n.min(self.capacity() - start);
        // SAFETY: [start, start + first) and [0, n - first) lie in the reader's region
        // [tail, head), which the writer does not touch until tail is published.
        unsafe {
            let base = self.slots();
            std::ptr::copy_nonoverlapping(base.add(start), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(base, out.as_mut_ptr().add(first), n - first);
        }
        self.tail.store(tail + n as u64, Ordering::Release);
        if n < out.len() && !self.closed.load(Ordering::Acquire) {
            self.underruns.fetch_add(1, Ordering::Relaxed);
        }
        n
    }

    /// Marks the end of the stream: no more writes; the reader drains what is left.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// True once the stream is closed and every written sample has been read.
    pub fn is_finished(&self) -> bool {
        self.is_closed() && self.available() == 0
    }

    /// Samples rejected by `push` because the ring was full.
    pub fn overrun_samples(&self) -> u64 {
        self.overrun_samples.load(Ordering::Relaxed)
    }

    /// Reads that found fewer samples than asked while the stream was open.
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo_without_overwrite_and_counts() {
        let ring = PcmRing::new(4).unwrap();
        assert_eq!(ring.push(&[1.0, 2.0, 3.0]), 3);
        assert_eq!(ring.push(&[4.0, 5.0, 6.0]), 1);
        assert_eq!(ring.overrun_samples(), 2);
        let mut out = [0.0; 3];
        assert_eq!(ring.pop_into(&mut out), 3);
        assert_eq!(out, [1.0, 2.0, 3.0]);
        assert_eq!(ring.push(&[7.0, 8.0]), 2);
        let mut out = [0.0; 5];
        assert_eq!(ring.pop_into(&mut out), 3);
        assert_eq!(&out[..3], &[4.0, 7.0, 8.0]);
        assert_eq!(ring.underruns(), 1);
        ring.close();
        assert!(ring.is_finished());
        assert_eq!(ring.push(&[1.0]), 0);
    }

    #[test]
    fn two_threads_lose_nothing() {
        let ring = Arc::new(PcmRing::new(64).unwrap());
        let writer = {
            let ring = Arc::clone(&ring);
            std::thread::spawn(move || {
                let data: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let n = ring.push_some(&rest[..rest.len().min(37)]);
                    rest = &rest[n..];
                    if n == 0 {
                        std::thread::yield_now();
                    }
                }
                ring.close();
            })
        };
        let mut got = Vec::new();
        let mut buf = [0.0; 29];
        while !ring.is_finished() {
            let n = ring.pop_into(&mut buf);
            got.extend_from_slice(&buf[..n]);
        }
        writer.join().unwrap();
        assert_eq!(got.len(), 100_000);
        assert!(got.iter().enumerate().all(|(i, &x)| x == i as f32));
        assert_eq!(ring.overrun_samples(), 0);
    }

    #[test]
    fn zero_capacity_is_an_error() {
        assert!(PcmRing::new(0).is_err());
    }
}
