//! `voxlet._audio`: Python bindings of the voxlet-audio crate. Types and errors only;
//! all logic lives in `rust/audio`.

mod errors;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;

use crate::errors::{to_py, AudioError};

fn readonly<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| AudioError::new_err("input array must be C-contiguous"))
}

/// Converts float32 PCM to int16 (x 32767, round half to even, clipped; NaN -> 0).
///
/// Writes into `out` when given (it must hold at least len(pcm) samples) and returns it;
/// otherwise returns a new array. Releases the GIL while converting.
#[pyfunction]
#[pyo3(signature = (pcm, out=None))]
fn f32_to_i16<'py>(
    py: Python<'py>,
    pcm: PyReadonlyArray1<'py, f32>,
    out: Option<Bound<'py, PyArray1<i16>>>,
) -> PyResult<Bound<'py, PyArray1<i16>>> {
    let input = readonly(&pcm)?;
    let out = match out {
        Some(o) => o,
        None => PyArray1::<i16>::zeros(py, input.len(), false),
    };
    {
        let mut rw: PyReadwriteArray1<'py, i16> = out.readwrite();
        let dst = rw
            .as_slice_mut()
            .map_err(|_| AudioError::new_err("out array must be C-contiguous"))?;
        py.detach(|| voxlet_audio::pcm::f32_to_i16(input, dst))
            .map_err(to_py)?;
    }
    Ok(out)
}

#[pymodule]
fn _audio(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("AudioError", m.py().get_type::<AudioError>())?;
    m.add_function(wrap_pyfunction!(f32_to_i16, m)?)?;
    Ok(())
}
