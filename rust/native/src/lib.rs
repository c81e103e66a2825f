//! `voxlet._native`: the Python bindings of voxlet's two pure-Rust crates, the audio core
//! (`rust/audio`, bound in `audio.rs`) and the compute kernels (`rust/kernels`, bound in
//! `kernels.rs`). Type and error conversion only; all logic lives in those crates. Each
//! docstring starts with the typed Python signature, from which `tools/gen_stubs.py` writes
//! `_native.pyi`.

mod audio;
mod convert;
mod errors;
mod kernels;

use pyo3::prelude::*;

use crate::errors::AudioError;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("AudioError", m.py().get_type::<AudioError>())?;
    m.add("KernelError", m.py().get_type::<errors::KernelError>())?;
    m.add_class::<kernels::Int8Matrix>()?;
    m.add_class::<kernels::F32Matrix>()?;
    m.add_class::<kernels::NormWeights>()?;
    m.add_class::<kernels::LayerWeights>()?;
    m.add_class::<kernels::Transformer>()?;
    m.add_class::<kernels::FlowBlockWeights>()?;
    m.add_class::<kernels::ConvWeights>()?;
    m.add_class::<kernels::ConvTransposeWeights>()?;
    m.add_class::<kernels::ResidualWeights>()?;
    m.add_class::<kernels::SeanetState>()?;
    m.add_class::<kernels::SeanetDecoder>()?;
    m.add_class::<kernels::FlowHead>()?;
    m.add_function(wrap_pyfunction!(kernels::kernel_isa, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::first_non_finite, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::elu_, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::elu_into, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::gelu_tanh_, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::overlap_add, m)?)?;
    m.add_function(wrap_pyfunction!(audio::f32_to_i16, m)?)?;
    m.add_function(wrap_pyfunction!(audio::i16_to_f32, m)?)?;
    m.add_function(wrap_pyfunction!(audio::f32_to_bytes_into, m)?)?;
    m.add_function(wrap_pyfunction!(audio::f32_to_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(audio::resample, m)?)?;
    m.add_function(wrap_pyfunction!(audio::time_stretch, m)?)?;
    m.add_function(wrap_pyfunction!(audio::read_wav, m)?)?;
    m.add_function(wrap_pyfunction!(audio::wav_header, m)?)?;
    m.add_class::<audio::WavWriter>()?;
    m.add_class::<audio::StreamResampler>()?;
    m.add_class::<audio::PcmPipeline>()?;
    Ok(())
}
