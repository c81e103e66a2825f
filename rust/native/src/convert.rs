//! numpy borrow helpers: contiguous slices or a clear AudioError.

use numpy::{Element, PyReadonlyArray1, PyReadwriteArray1};
use pyo3::PyResult;

use crate::errors::AudioError;

/// The data of a C-contiguous 1-D input array.
pub fn slice<'a, T: Element>(a: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| AudioError::new_err("input array must be C-contiguous"))
}

/// The data of a C-contiguous, writable 1-D output array.
pub fn slice_mut<'a, T: Element>(a: &'a mut PyReadwriteArray1<'_, T>) -> PyResult<&'a mut [T]> {
    a.as_slice_mut()
        .map_err(|_| AudioError::new_err("output array must be C-contiguous"))
}
