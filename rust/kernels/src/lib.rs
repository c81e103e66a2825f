#![doc = include_str!("../README.md")]

pub mod activation;
pub mod error;
pub mod finite;
pub mod float;
#[cfg(target_arch = "x86_64")]
mod float_x86;
pub mod flow_head;
mod huge;
pub mod int8;
mod isa;
mod linear;
pub mod outer;
pub mod overlap;
mod pool;
mod portable;
pub mod seanet;
pub mod step;
#[cfg(test)]
mod testing;
mod vector;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_amx;

pub use error::{KernelError, Result};
pub use float::{bf16_to_f32, F32Matrix, ReplacedWeights};
pub use flow_head::{FlowBlock, FlowHead};
pub use int8::{Int8Matrix, WeightSource};
pub use isa::Isa;
pub use linear::Linear;
pub use overlap::Overlap;
pub use seanet::{Conv, ConvTranspose, SeanetDecoder, SeanetState, Stage};
pub use step::{KvCache, Layer, LayerScale, Norm, RowCaches, Transformer};
