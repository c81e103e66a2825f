//! Bindings of the audio core (`rust/audio`): PCM conversion, resampling, WAV reading and
//! writing, and the PCM pipeline (ring, resampler, sink). Type and error conversion only.

use std::fs::File;
use std::io::BufWriter;
use std::sync::Mutex;
use std::time::Duration;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use voxlet_audio::{pcm, SampleFormat};

use crate::convert::{slice, slice_mut};
use crate::errors::{to_py, AudioError};

fn timeout(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|e| AudioError::new_err(format!("timeout_s: {e}")))
        })
        .transpose()
}

fn sample_format(name: &str) -> PyResult<SampleFormat> {
    match name {
        "s16" => Ok(SampleFormat::S16),
        "f32" => Ok(SampleFormat::F32),
        other => Err(AudioError::new_err(format!(
            "format must be 's16' or 'f32', got {other:?}"
        ))),
    }
}

/// f32_to_i16(pcm: NDArray[np.float32], out: NDArray[np.int16] | None = None) -> NDArray[np.int16]
///
/// Float PCM to int16: x * 32767, rounded half to even, clipped; NaN -> 0. Writes into `out`
/// when given (at least len(pcm) long) and returns it, else a new array. Releases the GIL.
#[pyfunction]
#[pyo3(signature = (pcm, out=None))]
pub fn f32_to_i16<'py>(
    py: Python<'py>,
    pcm: PyReadonlyArray1<'py, f32>,
    out: Option<Bound<'py, PyArray1<i16>>>,
) -> PyResult<Bound<'py, PyArray1<i16>>> {
    let input = slice(&pcm)?;
    let out = out.unwrap_or_else(|| PyArray1::<i16>::zeros(py, input.len(), false));
    {
        let mut rw = out.readwrite();
        let dst = slice_mut(&mut rw)?;
        py.detach(|| pcm::f32_to_i16(input, dst)).map_err(to_py)?;
    }
    Ok(out)
}

/// i16_to_f32(pcm: NDArray[np.int16], out: NDArray[np.float32] | None = None) -> NDArray[np.float32]
///
/// int16 PCM to float: x / 32768. Writes into `out` when given, else a new array.
#[pyfunction]
#[pyo3(signature = (pcm, out=None))]
pub fn i16_to_f32<'py>(
    py: Python<'py>,
    pcm: PyReadonlyArray1<'py, i16>,
    out: Option<Bound<'py, PyArray1<f32>>>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let input = slice(&pcm)?;
    let out = out.unwrap_or_else(|| PyArray1::<f32>::zeros(py, input.len(), false));
    {
        let mut rw = out.readwrite();
        pcm::i16_to_f32(input, slice_mut(&mut rw)?).map_err(to_py)?;
    }
    Ok(out)
}

/// f32_to_bytes_into(pcm: NDArray[np.float32], out: NDArray[np.uint8], format: str = 's16') -> int
///
/// Float PCM to little-endian bytes ('s16' or 'f32') in the caller's uint8 buffer (wrap a
/// bytearray with np.frombuffer for zero copy). Returns the bytes written. Releases the GIL.
#[pyfunction]
#[pyo3(signature = (pcm, out, format="s16"))]
pub fn f32_to_bytes_into(
    py: Python<'_>,
    pcm: PyReadonlyArray1<'_, f32>,
    mut out: PyReadwriteArray1<'_, u8>,
    format: &str,
) -> PyResult<usize> {
    let fmt = sample_format(format)?;
    let input = slice(&pcm)?;
    let dst = slice_mut(&mut out)?;
    py.detach(|| match fmt {
        SampleFormat::S16 => pcm::f32_to_s16le(input, dst),
        SampleFormat::F32 => pcm::f32_to_f32le(input, dst),
    })
    .map_err(to_py)
}

/// f32_to_bytes(pcm: NDArray[np.float32], format: str = 's16') -> bytes
///
/// Float PCM to little-endian bytes ('s16' or 'f32'), built directly as a bytes object.
#[pyfunction]
#[pyo3(signature = (pcm, format="s16"))]
pub fn f32_to_bytes<'py>(
    py: Python<'py>,
    pcm: PyReadonlyArray1<'py, f32>,
    format: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let fmt = sample_format(format)?;
    let input = slice(&pcm)?;
    PyBytes::new_with(py, input.len() * fmt.bytes_per_sample(), |dst| {
        match fmt {
            SampleFormat::S16 => pcm::f32_to_s16le(input, dst),
            SampleFormat::F32 => pcm::f32_to_f32le(input, dst),
        }
        .map(|_| ())
        .map_err(to_py)
    })
}

/// resample(pcm: NDArray[np.float32], input_rate_hz: int, output_rate_hz: int, channels: int = 1) -> NDArray[np.float32]
///
/// One-shot resampling of interleaved PCM: delay trimmed, tail flushed, ceil(n * ratio) frames.
/// Releases the GIL.
#[pyfunction]
#[pyo3(signature = (pcm, input_rate_hz, output_rate_hz, channels=1))]
pub fn resample<'py>(
    py: Python<'py>,
    pcm: PyReadonlyArray1<'py, f32>,
    input_rate_hz: u32,
    output_rate_hz: u32,
    channels: usize,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let input = slice(&pcm)?;
    let out = py
        .detach(|| voxlet_audio::resample(input, input_rate_hz, output_rate_hz, channels))
        .map_err(to_py)?;
    Ok(out.into_pyarray(py))
}

/// time_stretch(pcm: NDArray[np.float32], speed: float) -> NDArray[np.float32]
///
/// One-shot change of speed with pitch kept (WSOLA, mono): round(n / speed) samples, the same
/// as streaming it through a PcmPipeline with that speed. Releases the GIL.
#[pyfunction]
pub fn time_stretch<'py>(
    py: Python<'py>,
    pcm: PyReadonlyArray1<'py, f32>,
    speed: f64,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let input = slice(&pcm)?;
    let out = py
        .detach(|| {
            let mut stretch = voxlet_audio::TimeStretch::new(speed)?;
            let mut out = Vec::with_capacity(stretch.expected_output(input.len() as u64) as usize);
            stretch.process(input, &mut |b| out.extend_from_slice(b))?;
            stretch.flush(&mut |b| out.extend_from_slice(b))?;
            Ok::<_, voxlet_audio::AudioError>(out)
        })
        .map_err(to_py)?;
    Ok(out.into_pyarray(py))
}

/// read_wav(path: str) -> tuple[NDArray[np.float32], int]
///
/// Reads a WAV file (PCM 8/16/24/32-bit, float 32/64, extensible) -> (samples (N, C), rate Hz).
#[pyfunction]
pub fn read_wav<'py>(py: Python<'py>, path: &str) -> PyResult<(Bound<'py, PyArray2<f32>>, u32)> {
    let bytes =
        std::fs::read(path).map_err(|e| AudioError::new_err(format!("cannot read {path}: {e}")))?;
    let data = py
        .detach(|| voxlet_audio::read_wav(&bytes))
        .map_err(|e| AudioError::new_err(format!("{path}: {e}")))?;
    let channels = usize::from(data.channels);
    let frames = data.samples.len() / channels;
    let array = data.samples.into_pyarray(py).reshape([frames, channels])?;
    Ok((array, data.sample_rate_hz))
}

/// wav_header(sample_rate_hz: int, channels: int = 1, format: str = 's16', data_bytes: int | None = None) -> bytes
///
/// A 44-byte WAV header; without `data_bytes` the sizes say 'unknown' (0xFFFFFFFF), for pipes.
#[pyfunction]
#[pyo3(signature = (sample_rate_hz, channels=1, format="s16", data_bytes=None))]
pub fn wav_header<'py>(
    py: Python<'py>,
    sample_rate_hz: u32,
    channels: u16,
    format: &str,
    data_bytes: Option<u32>,
) -> PyResult<Bound<'py, PyBytes>> {
    let header =
        voxlet_audio::wav_header(sample_rate_hz, channels, sample_format(format)?, data_bytes);
    Ok(PyBytes::new(py, &header))
}

/// WavWriter(path: str, sample_rate_hz: int, channels: int = 1, format: str = 's16')
///
/// Streams float PCM into a WAV file; `close` patches the header sizes.
#[pyclass(frozen, module = "voxlet._native")]
pub struct WavWriter {
    inner: Mutex<Option<voxlet_audio::WavWriter<BufWriter<File>>>>,
}

#[pymethods]
impl WavWriter {
    #[new]
    #[pyo3(signature = (path, sample_rate_hz, channels=1, format="s16"))]
    fn new(path: &str, sample_rate_hz: u32, channels: u16, format: &str) -> PyResult<Self> {
        let fmt = sample_format(format)?;
        let file = File::create(path)
            .map_err(|e| AudioError::new_err(format!("cannot write {path}: {e}")))?;
        let writer =
            voxlet_audio::WavWriter::new(BufWriter::new(file), sample_rate_hz, channels, fmt)
                .map_err(to_py)?;
        Ok(Self {
            inner: Mutex::new(Some(writer)),
        })
    }

    /// write(self, pcm: NDArray[np.float32]) -> None
    ///
    /// Appends interleaved float samples. Releases the GIL.
    fn write(&self, py: Python<'_>, pcm: PyReadonlyArray1<'_, f32>) -> PyResult<()> {
        let input = slice(&pcm)?;
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| AudioError::new_err("writer poisoned"))?;
        let writer = guard
            .as_mut()
            .ok_or_else(|| to_py(voxlet_audio::AudioError::Closed))?;
        py.detach(|| writer.write(input)).map_err(to_py)
    }

    /// close(self) -> None
    ///
    /// Patches the sizes and closes the file. Closing twice is a no-op.
    fn close(&self) -> PyResult<()> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| AudioError::new_err("writer poisoned"))?;
        if let Some(writer) = guard.take() {
            writer.finish().map_err(to_py)?;
        }
        Ok(())
    }
}

/// StreamResampler(input_rate_hz: int, output_rate_hz: int, channels: int = 1)
///
/// Streaming resampler for interleaved float PCM; chunked output equals one-shot output.
#[pyclass(frozen, module = "voxlet._native")]
pub struct StreamResampler {
    inner: Mutex<voxlet_audio::StreamResampler>,
}

#[pymethods]
impl StreamResampler {
    #[new]
    #[pyo3(signature = (input_rate_hz, output_rate_hz, channels=1))]
    fn new(input_rate_hz: u32, output_rate_hz: u32, channels: usize) -> PyResult<Self> {
        let inner = voxlet_audio::StreamResampler::new(input_rate_hz, output_rate_hz, channels)
            .map_err(to_py)?;
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }

    /// process(self, pcm: NDArray[np.float32]) -> NDArray[np.float32]
    ///
    /// Resamples the next piece of the stream; returns the output ready so far.
    fn process<'py>(
        &self,
        py: Python<'py>,
        pcm: PyReadonlyArray1<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let input = slice(&pcm)?;
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| AudioError::new_err("resampler poisoned"))?;
        let r: &mut voxlet_audio::StreamResampler = &mut guard;
        let mut out = Vec::with_capacity(r.max_output_frames(input.len()) * r.channels());
        py.detach(|| r.process(input, &mut |b| out.extend_from_slice(b)))
            .map_err(to_py)?;
        Ok(out.into_pyarray(py))
    }

    /// flush(self) -> NDArray[np.float32]
    ///
    /// The rest of the stream (staged input and tail); then the resampler starts afresh.
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let mut r = self
            .inner
            .lock()
            .map_err(|_| AudioError::new_err("resampler poisoned"))?;
        let mut out = Vec::new();
        r.flush(&mut |b| out.extend_from_slice(b)).map_err(to_py)?;
        Ok(out.into_pyarray(py))
    }

    /// output_delay_frames: int
    ///
    /// The underlying resampler's delay in output frames (trimmed from the output).
    #[getter]
    fn output_delay_frames(&self) -> PyResult<usize> {
        let r = self
            .inner
            .lock()
            .map_err(|_| AudioError::new_err("resampler poisoned"))?;
        Ok(r.output_delay_frames())
    }
}

/// PcmPipeline(input_rate_hz: int, output_rate_hz: int, capacity_frames: int, channels: int = 1, speed: float = 1.0)
///
/// Time stretch (speed, pitch kept; mono) -> resampler -> lock-free SPSC ring. One writer
/// thread calls push/finish, one reader thread calls pop_into/pop_i16_into; neither holds the
/// GIL while working.
#[pyclass(frozen, module = "voxlet._native")]
pub struct PcmPipeline {
    inner: voxlet_audio::PcmPipeline,
}

#[pymethods]
impl PcmPipeline {
    #[new]
    #[pyo3(signature = (input_rate_hz, output_rate_hz, capacity_frames, channels=1, speed=1.0))]
    fn new(
        input_rate_hz: u32,
        output_rate_hz: u32,
        capacity_frames: usize,
        channels: usize,
        speed: f64,
    ) -> PyResult<Self> {
        let inner = voxlet_audio::PcmPipeline::with_speed(
            input_rate_hz,
            output_rate_hz,
            capacity_frames,
            channels,
            speed,
        )
        .map_err(to_py)?;
        Ok(Self { inner })
    }

    /// push(self, pcm: NDArray[np.float32], timeout_s: float | None = None) -> int
    ///
    /// Writer: resamples `pcm` into the ring, waiting for room (up to timeout_s; None waits
    /// until the reader makes room or the stream is cancelled). Returns output frames accepted;
    /// what did not fit in time is counted in `overruns`. Raises AudioError once closed.
    #[pyo3(signature = (pcm, timeout_s=None))]
    fn push(
        &self,
        py: Python<'_>,
        pcm: PyReadonlyArray1<'_, f32>,
        timeout_s: Option<f64>,
    ) -> PyResult<usize> {
        let input = slice(&pcm)?;
        let limit = timeout(timeout_s)?;
        py.detach(|| self.inner.push(input, limit)).map_err(to_py)
    }

    /// finish(self, timeout_s: float | None = None) -> int
    ///
    /// Writer: pushes the resampler's tail and marks the end of the stream.
    #[pyo3(signature = (timeout_s=None))]
    fn finish(&self, py: Python<'_>, timeout_s: Option<f64>) -> PyResult<usize> {
        let limit = timeout(timeout_s)?;
        py.detach(|| self.inner.finish(limit)).map_err(to_py)
    }

    /// cancel(self) -> None
    ///
    /// Either side: stop now; a waiting push returns and later pushes raise.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// pop_into(self, out: NDArray[np.float32]) -> int
    ///
    /// Reader: moves whole frames into `out`; returns frames written. Never blocks or allocates.
    fn pop_into(&self, mut out: PyReadwriteArray1<'_, f32>) -> PyResult<usize> {
        let ch = self.inner.channels();
        let dst = slice_mut(&mut out)?;
        let whole = dst.len() / ch * ch;
        Ok(self.inner.ring().pop_into(&mut dst[..whole]) / ch)
    }

    /// pop_i16_into(self, out: NDArray[np.int16]) -> int
    ///
    /// Reader: as pop_into, converted to int16. Never blocks or allocates.
    fn pop_i16_into(&self, mut out: PyReadwriteArray1<'_, i16>) -> PyResult<usize> {
        let ch = self.inner.channels();
        let dst = slice_mut(&mut out)?;
        let whole = dst.len() / ch * ch;
        let mut scratch = [0.0f32; 512];
        let mut done = 0;
        while done < whole {
            let want = (whole - done).min(scratch.len() / ch * ch);
            let n = self.inner.ring().pop_into(&mut scratch[..want]);
            pcm::f32_to_i16(&scratch[..n], &mut dst[done..done + n]).map_err(to_py)?;
            done += n;
            if n < want {
                break;
            }
        }
        Ok(done / ch)
    }

    /// available_frames: int
    ///
    /// Frames in the ring waiting to be read.
    #[getter]
    fn available_frames(&self) -> usize {
        self.inner.ring().available() / self.inner.channels()
    }

    /// free_frames: int
    ///
    /// Frames the ring can take before push has to wait.
    #[getter]
    fn free_frames(&self) -> usize {
        self.inner.ring().free() / self.inner.channels()
    }

    /// capacity_frames: int
    ///
    /// Size of the ring in frames.
    #[getter]
    fn capacity_frames(&self) -> usize {
        self.inner.ring().capacity() / self.inner.channels()
    }

    /// output_delay_frames: int
    ///
    /// The resampler's delay in output frames (trimmed from the output).
    #[getter]
    fn output_delay_frames(&self) -> usize {
        self.inner.output_delay_frames()
    }

    /// overruns: int
    ///
    /// Samples dropped because the ring stayed full past a push's timeout.
    #[getter]
    fn overruns(&self) -> u64 {
        self.inner.ring().overrun_samples()
    }

    /// underruns: int
    ///
    /// Reads that found less audio than asked while the stream was still open.
    #[getter]
    fn underruns(&self) -> u64 {
        self.inner.ring().underruns()
    }

    /// is_finished: bool
    ///
    /// True once the stream has ended and everything in it has been read.
    #[getter]
    fn is_finished(&self) -> bool {
        self.inner.ring().is_finished()
    }

    /// is_cancelled: bool
    ///
    /// True after cancel().
    #[getter]
    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}
