//! Bindings of voxlet-kernels: the int8 matrix behind `precision="int8"`.

use numpy::{
    PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use voxlet_kernels::Isa;

use crate::errors::KernelError;

fn to_py(err: voxlet_kernels::KernelError) -> PyErr {
    KernelError::new_err(err.to_string())
}

/// The data of a C-contiguous array (row-major: an F-contiguous one, which rust-numpy would also
/// hand out as a slice, has its elements in another order and is refused).
fn contiguous<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    what: &str,
    a: &'a numpy::PyReadonlyArray<'_, T, D>,
) -> PyResult<&'a [T]> {
    let not_c = || KernelError::new_err(format!("{what} must be C-contiguous"));
    if !a.is_c_contiguous() {
        return Err(not_c());
    }
    a.as_slice().map_err(|_| not_c())
}

/// Int8Matrix(weight: NDArray[np.float32], bias: NDArray[np.float32] | None = None)
///
/// A (rows, cols) float matrix quantized to int8 with one symmetric scale per row, and an
/// optional bias. `apply` quantizes each activation row symmetrically too (8-bit for a single
/// row, 7-bit for several), sums products exactly in int32 (AVX2 where the CPU has it, else
/// portable code with the same bits) and scales back.
#[pyclass(frozen, module = "voxlet._audio")]
pub struct Int8Matrix {
    inner: voxlet_kernels::Int8Matrix,
}

#[pymethods]
impl Int8Matrix {
    #[new]
    #[pyo3(signature = (weight, bias=None))]
    fn new(
        py: Python<'_>,
        weight: PyReadonlyArray2<'_, f32>,
        bias: Option<PyReadonlyArray1<'_, f32>>,
    ) -> PyResult<Self> {
        let (rows, cols) = (weight.shape()[0], weight.shape()[1]);
        let w = contiguous("weight", &weight)?;
        let b = bias.as_ref().map(|b| contiguous("bias", b)).transpose()?;
        let inner = py
            .detach(|| voxlet_kernels::Int8Matrix::quantize(w, rows, cols, b))
            .map_err(to_py)?;
        Ok(Self { inner })
    }

    /// apply(self, x: NDArray[np.float32], threads: int = 1) -> NDArray[np.float32]
    ///
    /// x (..., cols) @ W.T + bias as a new (..., rows) array, on up to `threads` threads (the
    /// calling one included; more only when the product is large enough to pay). Releases the
    /// GIL once, for the product.
    #[pyo3(signature = (x, threads=1))]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let shape = x.shape().to_vec();
        if shape.last() != Some(&self.inner.cols()) {
            return Err(KernelError::new_err(format!(
                "apply: x {shape:?} does not end in {} columns",
                self.inner.cols()
            )));
        }
        let input = contiguous("x", &x)?;
        let mut out_shape = shape;
        if let Some(last) = out_shape.last_mut() {
            *last = self.inner.rows();
        }
        // SAFETY: matmul writes every element before the array reaches Python; on an error the
        // array is dropped unread.
        let out = unsafe { PyArrayDyn::<f32>::new(py, out_shape, false) };
        {
            let mut rw = out.readwrite();
            let output = rw
                .as_slice_mut()
                .map_err(|_| KernelError::new_err("out must be C-contiguous"))?;
            py.detach(|| self.inner.matmul(input, output, threads))
                .map_err(to_py)?;
        }
        Ok(out)
    }

    /// dequantize(self) -> NDArray[np.float32]
    ///
    /// The (rows, cols) float matrix the int8 one stands for.
    fn dequantize<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let flat = self.inner.dequantize();
        let arr = numpy::PyArray1::from_vec(py, flat);
        arr.reshape([self.inner.rows(), self.inner.cols()])
    }

    /// rows: int
    ///
    /// Output features.
    #[getter]
    fn rows(&self) -> usize {
        self.inner.rows()
    }

    /// cols: int
    ///
    /// Input features.
    #[getter]
    fn cols(&self) -> usize {
        self.inner.cols()
    }

    /// nbytes: int
    ///
    /// Bytes held: int8 values (rows padded to 32 columns), scales and bias.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }
}

/// int8_isa() -> str
///
/// The instruction set Int8Matrix.apply runs on here: 'avx2' or 'portable'.
#[pyfunction]
pub fn int8_isa() -> &'static str {
    match Isa::best() {
        Isa::Avx2 => "avx2",
        Isa::Portable => "portable",
    }
}
