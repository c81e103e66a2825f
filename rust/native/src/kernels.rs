//! Bindings of voxlet-kernels: int8 and float matrices, the one-call transformer and flow head
//! over either, and the float activations and overlap-add.

use std::sync::Arc;

use numpy::{
    PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray3, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use voxlet_kernels::{FlowBlock, Isa, KvCache, Layer, LayerScale, Linear, Norm};

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
    if !a.is_c_contiguous() {
        return Err(KernelError::new_err(format!("{what} must be C-contiguous")));
    }
    // rust-numpy also refuses a misaligned array (a view at an odd byte offset)
    a.as_slice()
        .map_err(|_| KernelError::new_err(format!("{what} must be aligned to its element size")))
}

/// A new float array of `shape` that `fill` writes in full, the GIL released meanwhile.
fn filled<'py>(
    py: Python<'py>,
    shape: Vec<usize>,
    fill: impl FnOnce(&mut [f32]) -> voxlet_kernels::Result<()> + Send,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    // SAFETY: `fill` writes every element before the array reaches Python; on an error the
    // array is dropped unread.
    let out = unsafe { PyArrayDyn::<f32>::new(py, shape, false) };
    {
        let mut rw = out.readwrite();
        let output = rw
            .as_slice_mut()
            .map_err(|_| KernelError::new_err("out must be C-contiguous"))?;
        py.detach(|| fill(output)).map_err(to_py)?;
    }
    Ok(out)
}

/// The data of a writable C-contiguous array, as `contiguous`.
fn contiguous_mut<'a, T: numpy::Element, D: numpy::ndarray::Dimension>(
    what: &str,
    a: &'a mut numpy::PyReadwriteArray<'_, T, D>,
) -> PyResult<&'a mut [T]> {
    let not_c = || KernelError::new_err(format!("{what} must be C-contiguous"));
    if !a.is_c_contiguous() {
        return Err(not_c());
    }
    a.as_slice_mut().map_err(|_| not_c())
}

/// Int8Matrix(weight: NDArray[np.float32] | NDArray[np.uint16], bias: NDArray[np.float32] | None = None, threads: int = 1)
///
/// A (rows, cols) float matrix quantized to int8 with one symmetric scale per row, and an
/// optional bias. A uint16 `weight` holds bfloat16 bit patterns (a checkpoint's own storage),
/// widened exactly as they are read: the same matrix as from their float32 values. Quantizing
/// runs on up to `threads` threads (the calling one included; the same bits for any count).
/// `apply` quantizes each activation row symmetrically too (8-bit for a single
/// row, 7-bit for several), sums products exactly in int32 (AVX2 where the CPU has it, else
/// portable code with the same bits) and scales back.
#[pyclass(frozen, module = "voxlet._native")]
pub struct Int8Matrix {
    inner: Arc<voxlet_kernels::Int8Matrix>,
}

#[pymethods]
impl Int8Matrix {
    #[new]
    #[pyo3(signature = (weight, bias=None, threads=1))]
    fn new(
        py: Python<'_>,
        weight: Bound<'_, PyAny>,
        bias: Option<PyReadonlyArray1<'_, f32>>,
        threads: usize,
    ) -> PyResult<Self> {
        let b = bias.as_ref().map(|b| contiguous("bias", b)).transpose()?;
        let quantize = |source, rows, cols| {
            py.detach(|| voxlet_kernels::Int8Matrix::quantize_from(source, rows, cols, b, threads))
                .map_err(to_py)
        };
        let inner = if let Ok(w) = weight.cast::<PyArray2<f32>>() {
            let view = w.readonly();
            let (rows, cols) = (view.shape()[0], view.shape()[1]);
            let values = contiguous("weight", &view)?;
            quantize(voxlet_kernels::WeightSource::F32(values), rows, cols)?
        } else if let Ok(w) = weight.cast::<PyArray2<u16>>() {
            let view = w.readonly();
            let (rows, cols) = (view.shape()[0], view.shape()[1]);
            let bits = contiguous("weight", &view)?;
            quantize(voxlet_kernels::WeightSource::Bf16(bits), rows, cols)?
        } else {
            return Err(PyTypeError::new_err(
                "weight: must be a 2-d float32 array, or a uint16 one of bfloat16 bits",
            ));
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
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
        apply(py, self.inner.as_ref(), x, threads)
    }

    /// apply_rows(self, x: NDArray[np.float32], threads: int = 1) -> NDArray[np.float32]
    ///
    /// As `apply`, each row of x giving the bits of a product of that row alone (quantized as a
    /// single row is), whatever rows share the call: several sessions' rows in one product.
    #[pyo3(signature = (x, threads=1))]
    fn apply_rows<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        apply_each_row(py, self.inner.as_ref(), x, threads)
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

/// An array's memory, read in place: the array (and so whatever owns its buffer, a torch
/// tensor or a mapped file say) stays alive as long as this does.
struct ArrayWeights<T: numpy::Element> {
    _array: Py<PyArray2<T>>,
    data: *const T,
    len: usize,
}

// SAFETY: the buffer lives as long as `_array` and is only read; F32Matrix's contract (below)
// forbids writing to it while a product runs.
unsafe impl<T: numpy::Element> Send for ArrayWeights<T> {}
// SAFETY: as above.
unsafe impl<T: numpy::Element> Sync for ArrayWeights<T> {}

impl<T: numpy::Element> AsRef<[T]> for ArrayWeights<T> {
    fn as_ref(&self) -> &[T] {
        // SAFETY: `data` points at `len` initialized values kept alive by `_array`.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl<T: numpy::Element> ArrayWeights<T> {
    fn of(weight: Bound<'_, PyArray2<T>>) -> PyResult<Self> {
        let len = weight.len();
        let data = {
            let view = weight.readonly();
            contiguous("weight", &view)?.as_ptr()
        };
        Ok(Self {
            _array: weight.unbind(),
            data,
            len,
        })
    }
}

/// F32Matrix(weight: NDArray[np.float32] | NDArray[np.uint16], bias: NDArray[np.float32] | None = None, input_major: bool = False)
///
/// A (rows, cols) float32 matrix read in place from `weight` (C-contiguous; no copy: a torch
/// parameter's `.numpy()` view shares the model's memory), plus an optional bias (copied).
/// A uint16 `weight` holds bfloat16 bit patterns (a checkpoint's own storage, read in place
/// too): the bits of the float32 matrix of the same values, at half the bytes read.
/// Products sum in float32 by fused multiply-add in a fixed order, so every instruction set,
/// thread count and row position gives the same bits. The weights must not be written while
/// a product runs. `input_major`: keep an input-major float32 copy instead and sum each output
/// in one chain over its inputs (faster for rows of a few hundred inputs; another fixed order).
#[pyclass(frozen, module = "voxlet._native")]
pub struct F32Matrix {
    inner: Arc<voxlet_kernels::F32Matrix>,
}

#[pymethods]
impl F32Matrix {
    #[new]
    #[pyo3(signature = (weight, bias=None, input_major=false))]
    fn new(
        weight: Bound<'_, PyAny>,
        bias: Option<PyReadonlyArray1<'_, f32>>,
        input_major: bool,
    ) -> PyResult<Self> {
        let b = bias
            .as_ref()
            .map(|b| contiguous("bias", b).map(<[f32]>::to_vec))
            .transpose()?;
        let inner = if let Ok(w) = weight.cast::<PyArray2<f32>>() {
            let (rows, cols) = (w.shape()[0], w.shape()[1]);
            if input_major {
                let view = w.readonly();
                let values = contiguous("weight", &view)?;
                voxlet_kernels::F32Matrix::input_major(values, rows, cols, b)
            } else {
                voxlet_kernels::F32Matrix::new(ArrayWeights::of(w.clone())?, rows, cols, b)
            }
        } else if let Ok(w) = weight.cast::<PyArray2<u16>>() {
            let (rows, cols) = (w.shape()[0], w.shape()[1]);
            if input_major {
                let view = w.readonly();
                let widened: Vec<f32> = contiguous("weight", &view)?
                    .iter()
                    .map(|&bits| voxlet_kernels::bf16_to_f32(bits))
                    .collect();
                voxlet_kernels::F32Matrix::input_major(&widened, rows, cols, b)
            } else {
                voxlet_kernels::F32Matrix::bf16(ArrayWeights::of(w.clone())?, rows, cols, b)
            }
        } else {
            return Err(PyTypeError::new_err(
                "weight: must be a 2-d float32 array, or a uint16 one of bfloat16 bits",
            ));
        };
        Ok(Self {
            inner: Arc::new(inner.map_err(to_py)?),
        })
    }

    /// weight_bytes: int
    ///
    /// Bytes the weights take where they are read (4 a value for float32, 2 for bfloat16).
    #[getter]
    fn weight_bytes(&self) -> usize {
        self.inner.weight_bytes()
    }

    /// move_to_huge_pages(self) -> bool
    ///
    /// Copies row-major weights of at least one huge page (2 MiB) onto huge pages of the
    /// matrix's own and reads them there from then on (the same values: products keep their
    /// bits, and may run meanwhile; they wait only for the swap), letting go of the array it
    /// read until now. False where there was nothing to move (input-major, under one huge
    /// page, or moved already). Releases the GIL for the copy.
    fn move_to_huge_pages(&self, py: Python<'_>) -> bool {
        let inner = Arc::clone(&self.inner);
        let replaced = py.detach(move || inner.move_to_huge_pages());
        let moved = replaced.is_some();
        drop(replaced); // here, with the GIL: it may hold a numpy array
        moved
    }

    /// moved: bool
    ///
    /// Whether `move_to_huge_pages` has put the weights on huge pages of the matrix's own.
    #[getter]
    fn moved(&self) -> bool {
        self.inner.moved()
    }

    /// apply(self, x: NDArray[np.float32], threads: int = 1) -> NDArray[np.float32]
    ///
    /// x (..., cols) @ W.T + bias as a new (..., rows) array, as Int8Matrix.apply.
    #[pyo3(signature = (x, threads=1))]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        apply(py, self.inner.as_ref(), x, threads)
    }

    /// apply_rows(self, x: NDArray[np.float32], threads: int = 1) -> NDArray[np.float32]
    ///
    /// As `apply` (a float product gives every row the bits it gets alone), as
    /// Int8Matrix.apply_rows.
    #[pyo3(signature = (x, threads=1))]
    fn apply_rows<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        apply_each_row(py, self.inner.as_ref(), x, threads)
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
}

/// `x (..., cols) @ W^T + bias` as a new array, the GIL released for the product.
fn apply<'py>(
    py: Python<'py>,
    m: &impl Linear,
    x: PyReadonlyArrayDyn<'py, f32>,
    threads: usize,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    product(py, m, x, threads, false)
}

/// As `apply`, each row the bits of that row alone (`Linear::matmul_rows_on`).
fn apply_each_row<'py>(
    py: Python<'py>,
    m: &impl Linear,
    x: PyReadonlyArrayDyn<'py, f32>,
    threads: usize,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    product(py, m, x, threads, true)
}

fn product<'py>(
    py: Python<'py>,
    m: &impl Linear,
    x: PyReadonlyArrayDyn<'py, f32>,
    threads: usize,
    each_row: bool,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let shape = x.shape().to_vec();
    if shape.last() != Some(&m.cols()) {
        return Err(KernelError::new_err(format!(
            "apply: x {shape:?} does not end in {} columns",
            m.cols()
        )));
    }
    let input = contiguous("x", &x)?;
    let mut out_shape = shape;
    if let Some(last) = out_shape.last_mut() {
        *last = m.rows();
    }
    filled(py, out_shape, |out| {
        if each_row {
            m.matmul_rows_on(Isa::best(), input, out, threads)
        } else {
            m.matmul(input, out, threads)
        }
    })
}

/// A matrix argument: int8 or float. One transformer or flow head takes one kind.
#[derive(FromPyObject)]
enum MatrixArg<'py> {
    Int8(Bound<'py, Int8Matrix>),
    F32(Bound<'py, F32Matrix>),
}

/// A matrix a stack multiplies by, shared with whoever else holds it.
#[derive(Clone)]
enum AnyMatrix {
    Int8(Arc<voxlet_kernels::Int8Matrix>),
    F32(Arc<voxlet_kernels::F32Matrix>),
}

impl From<MatrixArg<'_>> for AnyMatrix {
    fn from(arg: MatrixArg<'_>) -> Self {
        match arg {
            MatrixArg::Int8(m) => AnyMatrix::Int8(Arc::clone(&m.get().inner)),
            MatrixArg::F32(m) => AnyMatrix::F32(Arc::clone(&m.get().inner)),
        }
    }
}

/// A kernel matrix kind an `AnyMatrix` can hold.
trait Kind: Linear + Sized {
    /// The Python class's name, for errors.
    const KIND: &'static str;
    /// The shared matrix behind `m`, if it is of this kind.
    fn of(m: &AnyMatrix) -> Option<Arc<Self>>;
}

impl Kind for voxlet_kernels::Int8Matrix {
    const KIND: &'static str = "Int8Matrix";
    fn of(m: &AnyMatrix) -> Option<Arc<Self>> {
        match m {
            AnyMatrix::Int8(m) => Some(Arc::clone(m)),
            AnyMatrix::F32(_) => None,
        }
    }
}

impl Kind for voxlet_kernels::F32Matrix {
    const KIND: &'static str = "F32Matrix";
    fn of(m: &AnyMatrix) -> Option<Arc<Self>> {
        match m {
            AnyMatrix::F32(m) => Some(Arc::clone(m)),
            AnyMatrix::Int8(_) => None,
        }
    }
}

/// The shared matrix behind `m`, or an error naming `what` and `name` when it is not of the
/// kind `M`.
fn shared<M: Kind>(what: &str, name: &str, m: &AnyMatrix) -> PyResult<Arc<M>> {
    M::of(m).ok_or_else(|| {
        KernelError::new_err(format!(
            "{what}: {name} must be an {} like every other matrix of the stack",
            M::KIND
        ))
    })
}

/// A 1-d float array's values, copied, checked to be `len` long.
fn values(what: &str, a: &PyReadonlyArray1<'_, f32>, len: Option<usize>) -> PyResult<Vec<f32>> {
    let v = contiguous(what, a)?.to_vec();
    match len {
        Some(n) if v.len() != n => Err(KernelError::new_err(format!(
            "{what}: {} values, expected {n}",
            v.len()
        ))),
        _ => Ok(v),
    }
}

/// NormWeights(weight: NDArray[np.float32], bias: NDArray[np.float32], eps: float)
///
/// A layer norm's affine parameters (copied, of equal length) and epsilon.
#[pyclass(frozen, module = "voxlet._native")]
pub struct NormWeights {
    inner: Norm,
}

#[pymethods]
impl NormWeights {
    #[new]
    fn new(
        weight: PyReadonlyArray1<'_, f32>,
        bias: PyReadonlyArray1<'_, f32>,
        eps: f32,
    ) -> PyResult<Self> {
        let weight = values("NormWeights weight", &weight, None)?;
        let bias = values("NormWeights bias", &bias, Some(weight.len()))?;
        if !(eps.is_finite() && eps > 0.0) {
            return Err(KernelError::new_err(format!(
                "NormWeights eps: must be a positive number, got {eps}"
            )));
        }
        Ok(Self {
            inner: Norm { weight, bias, eps },
        })
    }
}

/// LayerWeights(norm1: NormWeights, in_proj: Int8Matrix | F32Matrix, out_proj: Int8Matrix | F32Matrix, norm2: NormWeights, linear1: Int8Matrix | F32Matrix, linear2: Int8Matrix | F32Matrix, layer_scale_1: NDArray[np.float32] | None = None, layer_scale_2: NDArray[np.float32] | None = None)
///
/// One pre-norm transformer layer, by name: `in_proj` (queries, keys, values stacked),
/// `out_proj`, the feed-forward `linear1` and `linear2` (shared, not copied), the two norms,
/// and the per-channel scales of the attention and feed-forward branches (both or neither).
#[pyclass(frozen, module = "voxlet._native")]
pub struct LayerWeights {
    norm1: Norm,
    in_proj: AnyMatrix,
    out_proj: AnyMatrix,
    norm2: Norm,
    linear1: AnyMatrix,
    linear2: AnyMatrix,
    layer_scale: Option<LayerScale>,
}

#[pymethods]
impl LayerWeights {
    #[new]
    #[pyo3(signature = (norm1, in_proj, out_proj, norm2, linear1, linear2, layer_scale_1=None, layer_scale_2=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature, by keyword
    fn new(
        norm1: &Bound<'_, NormWeights>,
        in_proj: MatrixArg<'_>,
        out_proj: MatrixArg<'_>,
        norm2: &Bound<'_, NormWeights>,
        linear1: MatrixArg<'_>,
        linear2: MatrixArg<'_>,
        layer_scale_1: Option<PyReadonlyArray1<'_, f32>>,
        layer_scale_2: Option<PyReadonlyArray1<'_, f32>>,
    ) -> PyResult<Self> {
        let layer_scale = match (layer_scale_1, layer_scale_2) {
            (None, None) => None,
            (Some(s1), Some(s2)) => Some(LayerScale {
                attention: values("LayerWeights layer_scale_1", &s1, None)?,
                feed_forward: values("LayerWeights layer_scale_2", &s2, None)?,
            }),
            _ => {
                return Err(KernelError::new_err(
                    "LayerWeights: give both layer scales, or neither",
                ))
            }
        };
        Ok(Self {
            norm1: norm1.get().inner.clone(),
            in_proj: in_proj.into(),
            out_proj: out_proj.into(),
            norm2: norm2.get().inner.clone(),
            linear1: linear1.into(),
            linear2: linear2.into(),
            layer_scale,
        })
    }
}

impl LayerWeights {
    fn layer<M: Kind>(&self) -> PyResult<Layer<M>> {
        let what = "Transformer";
        Ok(Layer {
            norm1: self.norm1.clone(),
            in_proj: shared(what, "in_proj", &self.in_proj)?,
            out_proj: shared(what, "out_proj", &self.out_proj)?,
            norm2: self.norm2.clone(),
            linear1: shared(what, "linear1", &self.linear1)?,
            linear2: shared(what, "linear2", &self.linear2)?,
            layer_scale: self.layer_scale.clone(),
        })
    }
}

fn layers<M: Kind>(weights: &[Bound<'_, LayerWeights>]) -> PyResult<Vec<Layer<M>>> {
    weights.iter().map(|w| w.get().layer()).collect()
}

/// The kernel transformer over one kind of matrix.
enum AnyTransformer {
    Int8(voxlet_kernels::Transformer<voxlet_kernels::Int8Matrix>),
    F32(voxlet_kernels::Transformer<voxlet_kernels::F32Matrix>),
}

/// Transformer(layers: list[LayerWeights], heads: int, kv_heads: int | None = None, context: int | None = None)
///
/// A pre-norm transformer (tanh GELU, no biases, interleaved-pair RoPE) advanced some
/// positions of one sequence per `forward` call, its linears all int8 or all float32
/// matrices. `heads` query heads split the attention width (out_proj's columns, which need not
/// be d_model); `kv_heads` key/value heads (default: `heads`) each serve `heads / kv_heads`
/// contiguous query heads (grouped-query attention), and the caches hold only them.
/// `context`: queries see that many positions (their own included) through ring caches of
/// that many slots; None: every position, caches indexed by position.
#[pyclass(frozen, module = "voxlet._native")]
pub struct Transformer {
    inner: AnyTransformer,
}

/// Several sequences advanced in one call: a row each (`counts` None: `forward_rows`) or
/// runs of `counts[b]` rows (`forward_spans`); errors start with `what`.
struct Sequences {
    what: &'static str,
    positions: Vec<usize>,
    counts: Option<Vec<usize>>,
}

impl Transformer {
    #[allow(clippy::too_many_arguments)]
    fn advance(
        &self,
        py: Python<'_>,
        job: Sequences,
        x: &mut PyReadwriteArrayDyn<'_, f32>,
        keys: &mut [Vec<PyReadwriteArrayDyn<'_, f32>>],
        values: &mut [Vec<PyReadwriteArrayDyn<'_, f32>>],
        turns: &PyReadonlyArrayDyn<'_, f32>,
        threads: usize,
    ) -> PyResult<()> {
        let mut sessions = sequences(job.what, keys, values, &job.positions)?;
        let x = contiguous_mut("x", x)?;
        let turns = contiguous("turns", turns)?;
        let mut rows = row_caches(&mut sessions, &job.positions);
        py.detach(|| match (&self.inner, job.counts.as_deref()) {
            (AnyTransformer::Int8(t), None) => t.forward_rows(x, &mut rows, turns, threads),
            (AnyTransformer::F32(t), None) => t.forward_rows(x, &mut rows, turns, threads),
            (AnyTransformer::Int8(t), Some(c)) => t.forward_spans(x, &mut rows, c, turns, threads),
            (AnyTransformer::F32(t), Some(c)) => t.forward_spans(x, &mut rows, c, turns, threads),
        })
        .map_err(to_py)
    }
}

/// Each sequence's caches (`keys[b]`, `values[b]`, as `kv_caches` reads them) with their
/// capacity, one sequence per position.
#[allow(clippy::type_complexity)]
fn sequences<'py>(
    what: &str,
    keys: &'py mut [Vec<PyReadwriteArrayDyn<'_, f32>>],
    values: &'py mut [Vec<PyReadwriteArrayDyn<'_, f32>>],
    positions: &[usize],
) -> PyResult<Vec<(usize, Vec<KvCache<'py>>)>> {
    if keys.len() != positions.len() || values.len() != positions.len() {
        return Err(KernelError::new_err(format!(
            "{what}: {} positions, but caches for {} (keys) and {} (values) sequences",
            positions.len(),
            keys.len(),
            values.len()
        )));
    }
    keys.iter_mut()
        .zip(values.iter_mut())
        .enumerate()
        .map(|(b, (ks, vs))| kv_caches(&format!("{what}: sequence {b}"), ks, vs))
        .collect()
}

/// The sequences' places for `Transformer::forward_rows` and `forward_spans`.
fn row_caches<'a, 'b>(
    sessions: &'b mut [(usize, Vec<KvCache<'a>>)],
    positions: &[usize],
) -> Vec<voxlet_kernels::RowCaches<'a, 'b>> {
    sessions
        .iter_mut()
        .zip(positions)
        .map(
            |((capacity, caches), &position)| voxlet_kernels::RowCaches {
                caches,
                capacity: *capacity,
                position,
            },
        )
        .collect()
}

/// One sequence's caches as the kernels take them (one key and one value array per layer,
/// C-contiguous, `(..., kv_heads, slots, head_dim)`), and their slot count; errors start with
/// `what`.
fn kv_caches<'a>(
    what: &str,
    keys: &'a mut [PyReadwriteArrayDyn<'_, f32>],
    values: &'a mut [PyReadwriteArrayDyn<'_, f32>],
) -> PyResult<(usize, Vec<KvCache<'a>>)> {
    let capacity = match keys.first().map(|k| k.shape().to_vec()) {
        Some(shape) if shape.len() >= 3 => shape[shape.len() - 2],
        shape => {
            return Err(KernelError::new_err(format!(
                "{what}: keys must be (..., kv_heads, slots, head_dim), got {shape:?}"
            )))
        }
    };
    if keys.len() != values.len() {
        return Err(KernelError::new_err(format!(
            "{what}: {} key caches but {} value caches",
            keys.len(),
            values.len()
        )));
    }
    let caches = keys
        .iter_mut()
        .zip(values.iter_mut())
        .map(|(k, v)| {
            Ok(KvCache {
                keys: contiguous_mut("keys", k)?,
                values: contiguous_mut("values", v)?,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((capacity, caches))
}

#[pymethods]
impl Transformer {
    #[new]
    #[pyo3(signature = (layers, heads, kv_heads=None, context=None))]
    fn new(
        layers: Vec<Bound<'_, LayerWeights>>,
        heads: usize,
        kv_heads: Option<usize>,
        context: Option<usize>,
    ) -> PyResult<Self> {
        let kv = kv_heads.unwrap_or(heads);
        let inner = match layers.first().map(|l| &l.get().in_proj) {
            Some(AnyMatrix::F32(_)) => AnyTransformer::F32(
                voxlet_kernels::Transformer::new(self::layers(&layers)?, heads, kv, context)
                    .map_err(to_py)?,
            ),
            _ => AnyTransformer::Int8(
                voxlet_kernels::Transformer::new(self::layers(&layers)?, heads, kv, context)
                    .map_err(to_py)?,
            ),
        };
        Ok(Self { inner })
    }

    /// forward(self, x: NDArray[np.float32], keys: list[NDArray[np.float32]], values: list[NDArray[np.float32]], position: int, turns: NDArray[np.float32], threads: int = 1) -> None
    ///
    /// Advances x (T rows of d_model values, C-contiguous, any shape) in place through every
    /// layer at positions position..position + T, writing their rotated keys and their values
    /// into each layer's caches (C-contiguous, (..., kv_heads, slots, head_dim)); row r attends
    /// to position + r and the positions before it that its window holds. `turns` holds each
    /// row's rotation, [cos, sin] per pair of a head (T * head_dim values). Releases the GIL
    /// once.
    #[pyo3(signature = (x, keys, values, position, turns, threads=1))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn forward(
        &self,
        py: Python<'_>,
        mut x: PyReadwriteArrayDyn<'_, f32>,
        mut keys: Vec<PyReadwriteArrayDyn<'_, f32>>,
        mut values: Vec<PyReadwriteArrayDyn<'_, f32>>,
        position: usize,
        turns: PyReadonlyArrayDyn<'_, f32>,
        threads: usize,
    ) -> PyResult<()> {
        let (capacity, mut caches) = kv_caches("forward", &mut keys, &mut values)?;
        let x = contiguous_mut("x", &mut x)?;
        let turns = contiguous("turns", &turns)?;
        py.detach(|| match &self.inner {
            AnyTransformer::Int8(t) => {
                t.forward(x, &mut caches, capacity, position, turns, threads)
            }
            AnyTransformer::F32(t) => t.forward(x, &mut caches, capacity, position, turns, threads),
        })
        .map_err(to_py)
    }

    /// forward_rows(self, x: NDArray[np.float32], keys: list[list[NDArray[np.float32]]], values: list[list[NDArray[np.float32]]], positions: list[int], turns: NDArray[np.float32], threads: int = 1) -> None
    ///
    /// One position of each of several sequences, stepped together: x holds one row of d_model
    /// values per sequence (C-contiguous, in place); sequence b's caches are keys[b] and
    /// values[b] (one array per layer, as `forward` takes them) and its row takes position
    /// positions[b]. Each row comes out with the bits `forward` gives it alone, whatever rows
    /// share the call: the linears read each weight once for all rows, each row attends over
    /// its own caches. `turns`: each row's rotation (head_dim values per row). Releases the
    /// GIL once.
    #[pyo3(signature = (x, keys, values, positions, turns, threads=1))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn forward_rows(
        &self,
        py: Python<'_>,
        mut x: PyReadwriteArrayDyn<'_, f32>,
        mut keys: Vec<Vec<PyReadwriteArrayDyn<'_, f32>>>,
        mut values: Vec<Vec<PyReadwriteArrayDyn<'_, f32>>>,
        positions: Vec<usize>,
        turns: PyReadonlyArrayDyn<'_, f32>,
        threads: usize,
    ) -> PyResult<()> {
        let job = Sequences {
            what: "forward_rows",
            positions,
            counts: None,
        };
        self.advance(py, job, &mut x, &mut keys, &mut values, &turns, threads)
    }

    /// forward_spans(self, x: NDArray[np.float32], keys: list[list[NDArray[np.float32]]], values: list[list[NDArray[np.float32]]], positions: list[int], counts: list[int], turns: NDArray[np.float32], threads: int = 1) -> None
    ///
    /// Several sequences' runs of rows advanced together (a batch of prefills): x holds
    /// counts[b] rows for sequence b, one sequence after another (C-contiguous, in place),
    /// sequence b's rows at positions positions[b].. of its caches keys[b] and values[b].
    /// Each sequence comes out with the bits `forward` gives it alone; with several
    /// sequences, each run must be of two rows or more. `turns`: each row's rotation, in the
    /// order of x. Releases the GIL once.
    #[pyo3(signature = (x, keys, values, positions, counts, turns, threads=1))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn forward_spans(
        &self,
        py: Python<'_>,
        mut x: PyReadwriteArrayDyn<'_, f32>,
        mut keys: Vec<Vec<PyReadwriteArrayDyn<'_, f32>>>,
        mut values: Vec<Vec<PyReadwriteArrayDyn<'_, f32>>>,
        positions: Vec<usize>,
        counts: Vec<usize>,
        turns: PyReadonlyArrayDyn<'_, f32>,
        threads: usize,
    ) -> PyResult<()> {
        let job = Sequences {
            what: "forward_spans",
            positions,
            counts: Some(counts),
        };
        self.advance(py, job, &mut x, &mut keys, &mut values, &turns, threads)
    }

    /// d_model: int
    ///
    /// Width of the rows `forward` advances.
    #[getter]
    fn d_model(&self) -> usize {
        match &self.inner {
            AnyTransformer::Int8(t) => t.d_model(),
            AnyTransformer::F32(t) => t.d_model(),
        }
    }

    /// num_layers: int
    ///
    /// Layers, and so caches per call.
    #[getter]
    fn num_layers(&self) -> usize {
        match &self.inner {
            AnyTransformer::Int8(t) => t.num_layers(),
            AnyTransformer::F32(t) => t.num_layers(),
        }
    }
}

/// Two new float arrays handed back together.
type ArrayPair<'py> = (Bound<'py, PyArrayDyn<f32>>, Bound<'py, PyArrayDyn<f32>>);

/// overlap_add(z: NDArray[np.float32], bias: NDArray[np.float32] | None = None, partial: NDArray[np.float32] | None = None) -> tuple[NDArray[np.float32], NDArray[np.float32]]
///
/// The end of a transposed convolution whose kernel is twice its stride s: taps z (batch,
/// steps, channels, 2 s) -> (output (batch, channels, steps * s), the next call's partial
/// (batch, channels, s)); output step t is the first half of step t's taps plus the second
/// half of step t - 1's (for t = 0, `partial`; None: zeros), plus the bias. C-contiguous
/// inputs. Releases the GIL once.
#[pyfunction]
#[pyo3(signature = (z, bias=None, partial=None))]
pub fn overlap_add<'py>(
    py: Python<'py>,
    z: PyReadonlyArrayDyn<'py, f32>,
    bias: Option<PyReadonlyArray1<'py, f32>>,
    partial: Option<PyReadonlyArrayDyn<'py, f32>>,
) -> PyResult<ArrayPair<'py>> {
    let shape = z.shape().to_vec();
    let [batch, steps, channels, taps] = shape[..] else {
        return Err(KernelError::new_err(format!(
            "overlap_add: z must be (batch, steps, channels, 2 * stride), got {shape:?}"
        )));
    };
    if taps % 2 != 0 {
        return Err(KernelError::new_err(format!(
            "overlap_add: z's last axis ({taps}) must be twice the stride"
        )));
    }
    let op = voxlet_kernels::Overlap {
        batch,
        steps,
        channels,
        stride: taps / 2,
    };
    let z = contiguous("z", &z)?;
    let bias = bias.as_ref().map(|b| contiguous("bias", b)).transpose()?;
    let partial = partial
        .as_ref()
        .map(|p| contiguous("partial", p))
        .transpose()?;
    // SAFETY: apply writes every element of both before they reach Python; on an error they
    // are dropped unread.
    let (out, next) = unsafe {
        (
            PyArrayDyn::<f32>::new(py, vec![batch, channels, steps * op.stride], false),
            PyArrayDyn::<f32>::new(py, vec![batch, channels, op.stride], false),
        )
    };
    {
        let (mut o, mut n) = (out.readwrite(), next.readwrite());
        let not_c = || KernelError::new_err("outputs must be C-contiguous");
        let (o, n) = (
            o.as_slice_mut().map_err(|_| not_c())?,
            n.as_slice_mut().map_err(|_| not_c())?,
        );
        py.detach(|| op.apply(z, bias, partial, o, n))
            .map_err(to_py)?;
    }
    Ok((out, next))
}

/// Above this many elements an activation releases the GIL while it runs.
const DETACH_ELEMENTS: usize = 1 << 14;

/// FlowBlockWeights(norm: NormWeights, mlp_in: Int8Matrix | F32Matrix, mlp_out: Int8Matrix | F32Matrix, modulation: Int8Matrix | F32Matrix)
///
/// One residual block of the flow head, by name: its norm, the MLP's two linears and the
/// modulation (shift, scale and gate stacked), shared.
#[pyclass(frozen, module = "voxlet._native")]
pub struct FlowBlockWeights {
    norm: Norm,
    mlp_in: AnyMatrix,
    mlp_out: AnyMatrix,
    modulation: AnyMatrix,
}

#[pymethods]
impl FlowBlockWeights {
    #[new]
    fn new(
        norm: &Bound<'_, NormWeights>,
        mlp_in: MatrixArg<'_>,
        mlp_out: MatrixArg<'_>,
        modulation: MatrixArg<'_>,
    ) -> Self {
        Self {
            norm: norm.get().inner.clone(),
            mlp_in: mlp_in.into(),
            mlp_out: mlp_out.into(),
            modulation: modulation.into(),
        }
    }
}

/// The flow head's weights, in `FlowHead`'s argument order.
struct FlowHeadArgs<'a, 'py> {
    cond: &'a AnyMatrix,
    input: &'a AnyMatrix,
    blocks: &'a [Bound<'py, FlowBlockWeights>],
    final_modulation: &'a AnyMatrix,
    final_linear: &'a AnyMatrix,
    eps: f32,
}

impl FlowHeadArgs<'_, '_> {
    fn build<M: Kind>(&self) -> PyResult<voxlet_kernels::FlowHead<M>> {
        let what = "FlowHead";
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                let b = b.get();
                Ok(FlowBlock {
                    norm: b.norm.clone(),
                    mlp_in: shared(what, "mlp_in", &b.mlp_in)?,
                    mlp_out: shared(what, "mlp_out", &b.mlp_out)?,
                    modulation: shared(what, "modulation", &b.modulation)?,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        voxlet_kernels::FlowHead::new(
            shared(what, "cond", self.cond)?,
            shared(what, "input", self.input)?,
            blocks,
            shared(what, "final_modulation", self.final_modulation)?,
            shared(what, "final_linear", self.final_linear)?,
            self.eps,
        )
        .map_err(to_py)
    }
}

/// The kernel flow head over one kind of matrix.
enum AnyFlowHead {
    Int8(voxlet_kernels::FlowHead<voxlet_kernels::Int8Matrix>),
    F32(voxlet_kernels::FlowHead<voxlet_kernels::F32Matrix>),
}

/// FlowHead(cond: Int8Matrix | F32Matrix, input: Int8Matrix | F32Matrix, blocks: list[FlowBlockWeights], final_modulation: Int8Matrix | F32Matrix, final_linear: Int8Matrix | F32Matrix, eps: float = 1e-6)
///
/// FlowLM's flow head (an adaLN-modulated residual MLP) evaluated in one call, its linears all
/// int8 or all float32 matrices: y = time + cond(c) (cond(c) alone for heads without time
/// inputs); h = input(x); each block adds gate * mlp_out(silu(mlp_in(LN(h) * (1 + scale) +
/// shift))) with shift, scale, gate = modulation(silu(y)); then final_linear(LN'(h) * (1 +
/// scale) + shift) with shift, scale = final_modulation(silu(y)), LN' without affine and of
/// epsilon `eps`. The matrices are shared.
#[pyclass(frozen, module = "voxlet._native")]
pub struct FlowHead {
    inner: AnyFlowHead,
}

#[pymethods]
impl FlowHead {
    #[new]
    #[pyo3(signature = (cond, input, blocks, final_modulation, final_linear, eps=1e-6))]
    fn new(
        cond: MatrixArg<'_>,
        input: MatrixArg<'_>,
        blocks: Vec<Bound<'_, FlowBlockWeights>>,
        final_modulation: MatrixArg<'_>,
        final_linear: MatrixArg<'_>,
        eps: f32,
    ) -> PyResult<Self> {
        let cond = AnyMatrix::from(cond);
        let (input, final_modulation, final_linear) = (
            AnyMatrix::from(input),
            AnyMatrix::from(final_modulation),
            AnyMatrix::from(final_linear),
        );
        let args = FlowHeadArgs {
            cond: &cond,
            input: &input,
            blocks: &blocks,
            final_modulation: &final_modulation,
            final_linear: &final_linear,
            eps,
        };
        let inner = match cond {
            AnyMatrix::F32(_) => AnyFlowHead::F32(args.build()?),
            AnyMatrix::Int8(_) => AnyFlowHead::Int8(args.build()?),
        };
        Ok(Self { inner })
    }

    /// velocity(self, c: NDArray[np.float32], time: NDArray[np.float32] | None, x: NDArray[np.float32], threads: int = 1) -> NDArray[np.float32]
    ///
    /// The velocity (rows, latent) for condition rows c (rows, condition width), latent rows x
    /// (rows, latent) and the time embedding (dim,) shared by every row, or None for a head
    /// without time inputs; C-contiguous inputs. Releases the GIL once.
    #[pyo3(signature = (c, time, x, threads=1))]
    fn velocity<'py>(
        &self,
        py: Python<'py>,
        c: PyReadonlyArrayDyn<'py, f32>,
        time: Option<PyReadonlyArrayDyn<'py, f32>>,
        x: PyReadonlyArrayDyn<'py, f32>,
        threads: usize,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let (c, x) = (contiguous("c", &c)?, contiguous("x", &x)?);
        let time = time.as_ref().map(|t| contiguous("time", t)).transpose()?;
        let latent = match &self.inner {
            AnyFlowHead::Int8(h) => h.latent(),
            AnyFlowHead::F32(h) => h.latent(),
        };
        let shape = vec![x.len() / latent, latent];
        filled(py, shape, |out| match &self.inner {
            AnyFlowHead::Int8(h) => h.velocity(c, time, x, out, threads),
            AnyFlowHead::F32(h) => h.velocity(c, time, x, out, threads),
        })
    }
}

/// Applies `f` in place to every element of `x`, in as few contiguous runs as its layout allows.
fn in_place(
    py: Python<'_>,
    x: &mut PyReadwriteArrayDyn<'_, f32>,
    f: fn(&mut [f32]),
) -> PyResult<()> {
    let shape = x.shape().to_vec();
    if x.strides()
        .iter()
        .zip(&shape)
        .any(|(&s, &n)| s == 0 && n > 1)
    {
        return Err(KernelError::new_err(format!(
            "an array {shape:?} whose elements share memory (a zero stride) cannot be written in place"
        )));
    }
    let large = x.len() > DETACH_ELEMENTS;
    let mut view = x.as_array_mut();
    let mut run = || {
        if let Some(all) = view.as_slice_memory_order_mut() {
            return f(all); // elementwise: any dense layout is one run
        }
        let last = numpy::ndarray::Axis(view.ndim().saturating_sub(1));
        for mut lane in view.lanes_mut(last) {
            match lane.as_slice_mut() {
                Some(run) => f(run),
                None => lane.iter_mut().for_each(|v| f(std::slice::from_mut(v))),
            }
        }
    };
    if large {
        py.detach(run);
    } else {
        run();
    }
    Ok(())
}

/// elu_(x: NDArray[np.float32]) -> None
///
/// ELU (alpha 1) in place, any strides (none zero): x where x > 0, else e^x - 1.
#[pyfunction]
pub fn elu_(py: Python<'_>, mut x: PyReadwriteArrayDyn<'_, f32>) -> PyResult<()> {
    in_place(py, &mut x, voxlet_kernels::activation::elu)
}

/// elu_into(x: NDArray[np.float32], out: NDArray[np.float32]) -> None
///
/// ELU (alpha 1) of x written into out, both C-contiguous with the same number of elements:
/// one read and one write, where a copy then `elu_` takes two of each.
#[pyfunction]
pub fn elu_into(
    py: Python<'_>,
    x: PyReadonlyArrayDyn<'_, f32>,
    mut out: PyReadwriteArrayDyn<'_, f32>,
) -> PyResult<()> {
    let src = contiguous("x", &x)?;
    let dst = contiguous_mut("out", &mut out)?;
    if src.len() != dst.len() {
        return Err(KernelError::new_err(format!(
            "elu_into: x has {} elements, out {}",
            src.len(),
            dst.len()
        )));
    }
    if src.len() > DETACH_ELEMENTS {
        py.detach(|| voxlet_kernels::activation::elu_into(src, dst));
    } else {
        voxlet_kernels::activation::elu_into(src, dst);
    }
    Ok(())
}

/// gelu_tanh_(x: NDArray[np.float32]) -> None
///
/// The tanh-form GELU in place, any strides (none zero): x / 2 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
#[pyfunction]
pub fn gelu_tanh_(py: Python<'_>, mut x: PyReadwriteArrayDyn<'_, f32>) -> PyResult<()> {
    in_place(py, &mut x, voxlet_kernels::activation::gelu_tanh)
}

/// kernel_isa() -> str
///
/// The instruction set the native kernels run on here: 'avx2' (AVX2 with FMA) or 'portable'.
#[pyfunction]
pub fn kernel_isa() -> &'static str {
    match Isa::best() {
        Isa::Avx2 => "avx2",
        Isa::Portable => "portable",
    }
}

/// ConvWeights(weight: NDArray[np.float32], bias: NDArray[np.float32] | None = None, dilation: int = 1, int8: bool = False)
///
/// A causal stride-1 convolution of SEANet, from PyTorch's weight layout (c_out, c_in,
/// kernel), C-contiguous; the weights are copied (tap by tap) into memory of its own, or
/// (`int8`) quantized, one scale per output, its activations one scale per window.
#[pyclass(frozen, module = "voxlet._native")]
pub struct ConvWeights {
    inner: voxlet_kernels::Conv,
}

#[pymethods]
impl ConvWeights {
    #[new]
    #[pyo3(signature = (weight, bias=None, dilation=1, int8=false))]
    fn new(
        weight: PyReadonlyArray3<'_, f32>,
        bias: Option<PyReadonlyArray1<'_, f32>>,
        dilation: usize,
        int8: bool,
    ) -> PyResult<Self> {
        let shape = weight.shape().to_vec();
        let w = contiguous("ConvWeights weight", &weight)?;
        let b = bias
            .as_ref()
            .map(|b| values("ConvWeights bias", b, Some(shape[0])))
            .transpose()?;
        let build = if int8 {
            voxlet_kernels::Conv::int8_from_torch
        } else {
            voxlet_kernels::Conv::from_torch
        };
        let inner = build(w, shape[0], shape[1], shape[2], dilation, b).map_err(to_py)?;
        Ok(Self { inner })
    }

    /// int8: bool
    ///
    /// Whether the weights are int8.
    #[getter]
    fn int8(&self) -> bool {
        self.inner.is_int8()
    }
}

/// ConvTransposeWeights(weight: NDArray[np.float32], bias: NDArray[np.float32], stride: int, int8: bool = False)
///
/// A transposed convolution of kernel 2 stride, from PyTorch's weight layout (c_in, c_out,
/// 2 stride), C-contiguous; copied into memory of its own, or (`int8`) quantized, one scale
/// per output tap, its activations one scale per input row.
#[pyclass(frozen, module = "voxlet._native")]
pub struct ConvTransposeWeights {
    inner: voxlet_kernels::ConvTranspose,
}

#[pymethods]
impl ConvTransposeWeights {
    #[new]
    #[pyo3(signature = (weight, bias, stride, int8=false))]
    fn new(
        weight: PyReadonlyArray3<'_, f32>,
        bias: PyReadonlyArray1<'_, f32>,
        stride: usize,
        int8: bool,
    ) -> PyResult<Self> {
        let shape = weight.shape().to_vec();
        if stride == 0 || shape[2] != 2 * stride {
            return Err(KernelError::new_err(format!(
                "ConvTransposeWeights: kernel {} is not twice the stride {stride}",
                shape[2]
            )));
        }
        let w = contiguous("ConvTransposeWeights weight", &weight)?;
        let b = values("ConvTransposeWeights bias", &bias, Some(shape[1]))?;
        let build = if int8 {
            voxlet_kernels::ConvTranspose::int8_from_torch
        } else {
            voxlet_kernels::ConvTranspose::from_torch
        };
        let inner = build(w, shape[0], shape[1], stride, b).map_err(to_py)?;
        Ok(Self { inner })
    }

    /// int8: bool
    ///
    /// Whether the weights are int8.
    #[getter]
    fn int8(&self) -> bool {
        self.inner.is_int8()
    }
}

/// ResidualWeights(conv_k: ConvWeights, conv_1: ConvWeights)
///
/// A SEANet residual block: x + conv_1(elu(conv_k(elu(x)))).
#[pyclass(frozen, module = "voxlet._native")]
pub struct ResidualWeights {
    conv_k: voxlet_kernels::Conv,
    conv_1: voxlet_kernels::Conv,
}

#[pymethods]
impl ResidualWeights {
    #[new]
    fn new(conv_k: &Bound<'_, ConvWeights>, conv_1: &Bound<'_, ConvWeights>) -> Self {
        Self {
            conv_k: conv_k.get().inner.clone(),
            conv_1: conv_1.get().inner.clone(),
        }
    }

    /// int8: tuple[bool, bool]
    ///
    /// Whether each convolution's weights are int8: (conv_k, conv_1).
    #[getter]
    fn int8(&self) -> (bool, bool) {
        (self.conv_k.is_int8(), self.conv_1.is_int8())
    }
}

/// One stage as `SeanetDecoder` takes it.
#[derive(FromPyObject)]
enum StageArg<'py> {
    Conv(Bound<'py, ConvWeights>),
    ConvTranspose(Bound<'py, ConvTransposeWeights>),
    Residual(Bound<'py, ResidualWeights>),
    Name(String),
}

/// SeanetState(decoder: SeanetDecoder)
///
/// One stream's carried rows of `decoder`: zeros, as at the start of a stream.
#[pyclass(frozen, module = "voxlet._native")]
pub struct SeanetState {
    inner: std::sync::Mutex<voxlet_kernels::SeanetState>,
}

#[pymethods]
impl SeanetState {
    #[new]
    fn new(decoder: &Bound<'_, SeanetDecoder>) -> Self {
        Self {
            inner: std::sync::Mutex::new(decoder.get().inner.state()),
        }
    }
}

/// SeanetDecoder(stages: list[ConvWeights | ConvTransposeWeights | ResidualWeights | str])
///
/// Mimi's SEANet decoder, streaming, in one call: its stages in order, "elu" for an ELU. Rows
/// are time-major (steps, channels).
#[pyclass(frozen, module = "voxlet._native")]
pub struct SeanetDecoder {
    inner: voxlet_kernels::SeanetDecoder,
}

#[pymethods]
impl SeanetDecoder {
    #[new]
    fn new(stages: Vec<StageArg<'_>>) -> PyResult<Self> {
        let stages = stages
            .into_iter()
            .map(|s| match s {
                StageArg::Conv(c) => Ok(voxlet_kernels::Stage::Conv(c.get().inner.clone())),
                StageArg::ConvTranspose(c) => {
                    Ok(voxlet_kernels::Stage::ConvTranspose(c.get().inner.clone()))
                }
                StageArg::Residual(r) => Ok(voxlet_kernels::Stage::Residual {
                    conv_k: r.get().conv_k.clone(),
                    conv_1: r.get().conv_1.clone(),
                }),
                StageArg::Name(name) if name == "elu" => Ok(voxlet_kernels::Stage::Elu),
                StageArg::Name(name) => Err(KernelError::new_err(format!(
                    "SeanetDecoder: unknown stage {name:?} (the one named stage is \"elu\")"
                ))),
            })
            .collect::<PyResult<Vec<_>>>()?;
        let inner = voxlet_kernels::SeanetDecoder::new(stages).map_err(to_py)?;
        Ok(Self { inner })
    }

    /// forward(self, x: NDArray[np.float32], state: SeanetState) -> NDArray[np.float32]
    ///
    /// x (steps, c_in) time-major, C-contiguous -> (steps * hop * c_out,) samples, advancing
    /// `state`. Releases the GIL once.
    fn forward<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        state: &Bound<'py, SeanetState>,
    ) -> PyResult<Bound<'py, numpy::PyArray1<f32>>> {
        let x = contiguous("x", &x)?;
        let mut guard = state
            .get()
            .inner
            .lock()
            .map_err(|_| KernelError::new_err("SeanetState: poisoned by an earlier panic"))?;
        let st: &mut voxlet_kernels::SeanetState = &mut guard;
        let out = py.detach(|| self.inner.forward(x, st)).map_err(to_py)?;
        Ok(numpy::PyArray1::from_vec(py, out))
    }

    /// forward_batch(self, xs: list[NDArray[np.float32]], states: list[SeanetState], threads: int = 1) -> list[NDArray[np.float32]]
    ///
    /// Several streams at once, `xs[i]` advancing `states[i]` (distinct states): whole streams
    /// shared out among up to `threads` threads, each stream's samples the bits `forward` gives
    /// it alone. Every input is checked before any state advances. Releases the GIL once.
    #[pyo3(signature = (xs, states, threads=1))]
    fn forward_batch<'py>(
        &self,
        py: Python<'py>,
        xs: Vec<PyReadonlyArrayDyn<'py, f32>>,
        states: Vec<Bound<'py, SeanetState>>,
        threads: usize,
    ) -> PyResult<Vec<Bound<'py, numpy::PyArray1<f32>>>> {
        if xs.len() != states.len() {
            return Err(KernelError::new_err(format!(
                "SeanetDecoder.forward_batch: {} inputs but {} states",
                xs.len(),
                states.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if !states.iter().all(|s| seen.insert(s.as_ptr() as usize)) {
            return Err(KernelError::new_err(
                "SeanetDecoder.forward_batch: a state given twice (each stream has its own)",
            ));
        }
        let inputs = xs
            .iter()
            .enumerate()
            .map(|(i, x)| contiguous(&format!("xs[{i}]"), x))
            .collect::<PyResult<Vec<&[f32]>>>()?;
        let mut guards = states
            .iter()
            .map(|s| {
                s.get()
                    .inner
                    .lock()
                    .map_err(|_| KernelError::new_err("SeanetState: poisoned by an earlier panic"))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let mut refs: Vec<&mut voxlet_kernels::SeanetState> =
            guards.iter_mut().map(|g| &mut **g).collect();
        let outs = py
            .detach(|| self.inner.forward_batch(&inputs, &mut refs, threads))
            .map_err(to_py)?;
        Ok(outs
            .into_iter()
            .map(|o| numpy::PyArray1::from_vec(py, o))
            .collect())
    }

    /// hop: int
    ///
    /// Output samples per input row.
    #[getter]
    fn hop(&self) -> usize {
        self.inner.hop()
    }
}

/// Float bit patterns, as `first_non_finite` takes them.
#[derive(FromPyObject)]
pub enum BitsArg<'py> {
    Bits32(PyReadonlyArray1<'py, u32>),
    Bits16(PyReadonlyArray1<'py, u16>),
}

/// first_non_finite(bits: NDArray[np.uint32] | NDArray[np.uint16], bf16: bool = True) -> int | None
///
/// The index of the first NaN or infinity among float bit patterns: float32 (uint32), or
/// bfloat16 (`bf16`) or IEEE half (uint16); None if every value is finite. One pass, the GIL
/// released.
#[pyfunction]
#[pyo3(signature = (bits, bf16=true))]
pub fn first_non_finite(py: Python<'_>, bits: BitsArg<'_>, bf16: bool) -> PyResult<Option<usize>> {
    match &bits {
        BitsArg::Bits32(b) => {
            let s = contiguous("bits", b)?;
            Ok(py.detach(|| voxlet_kernels::finite::first_non_finite_f32(s)))
        }
        BitsArg::Bits16(b) => {
            let s = contiguous("bits", b)?;
            Ok(py.detach(|| voxlet_kernels::finite::first_non_finite_16(s, bf16)))
        }
    }
}
