#![doc = include_str!("../README.md")]

pub mod error;
pub mod pcm;
pub mod pipeline;
pub mod resample;
pub mod ring;
pub mod stretch;
pub mod wav;

pub use error::{AudioError, Result};
pub use pipeline::PcmPipeline;
pub use resample::{resample, StreamResampler};
pub use ring::PcmRing;
pub use stretch::TimeStretch;
pub use wav::{read_wav, wav_header, SampleFormat, WavData, WavWriter};
