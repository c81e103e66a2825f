//! The one bridge from the core's `AudioError` to Python's `voxlet._native.AudioError`.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::PyErr;

create_exception!(
    _native,
    AudioError,
    PyValueError,
    "Invalid audio input or state (a ValueError)."
);

/// Converts a core error into the Python exception, keeping its message.
pub fn to_py(err: voxlet_audio::AudioError) -> PyErr {
    AudioError::new_err(err.to_string())
}

create_exception!(
    _native,
    KernelError,
    PyValueError,
    "Invalid input to a compute kernel (a ValueError)."
);
