//! The one error type of the audio core.

use std::fmt;

/// Everything that can go wrong in the PCM core. Variants carry the numbers involved.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioError {
    /// A sample rate of zero, or a pair the resampler cannot serve.
    InvalidSampleRate { input_hz: u32, output_hz: u32 },
    /// Interleaved data whose length is not a multiple of the channel count, or a wrong count.
    ChannelMismatch { expected: usize, actual: usize },
    /// An output buffer too small for what must be written into it.
    BufferTooSmall { needed: usize, available: usize },
    /// A zero capacity or channel count, or another construction argument out of range.
    InvalidArgument { what: &'static str, value: usize },
    /// The stream was closed and takes no more input.
    Closed,
    /// A WAV stream that cannot be read, with the reason.
    InvalidWav { reason: String },
    /// An I/O failure, with the operating system's message.
    Io { message: String },
    /// The resampler library refused a call.
    Resampler { message: String },
    /// A sample that is NaN, infinite or beyond +-MAX_SAMPLE (audio lies within +-1), at an
    /// index of the input.
    BadSample { index: usize, value: String },
    /// A playback speed outside MIN_SPEED..=MAX_SPEED, or not finite.
    InvalidSpeed { speed: f64 },
}

impl fmt::Display for AudioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSampleRate { input_hz, output_hz } => write!(
                f,
                "invalid sample rates: input {input_hz} Hz, output {output_hz} Hz (each must be 1..=768000, at most 1024x apart)"
            ),
            Self::ChannelMismatch { expected, actual } => {
                write!(f, "channel mismatch: expected {expected}, got {actual}")
            }
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "output buffer too small: needs {needed} elements, has {available}"
            ),
            Self::InvalidArgument { what, value } => write!(f, "invalid {what}: {value}"),
            Self::Closed => write!(f, "the stream is closed"),
            Self::InvalidWav { reason } => write!(f, "invalid WAV data: {reason}"),
            Self::Io { message } => write!(f, "I/O error: {message}"),
            Self::Resampler { message } => write!(f, "resampler error: {message}"),
            Self::BadSample { index, value } => write!(
                f,
                "sample {index} is {value}: audio samples must be finite and within +-1e6"
            ),
            Self::InvalidSpeed { speed } => write!(
                f,
                "invalid speed {speed}: must be {}..{}",
                crate::stretch::MIN_SPEED,
                crate::stretch::MAX_SPEED
            ),
        }
    }
}

impl std::error::Error for AudioError {}

impl From<std::io::Error> for AudioError {
    fn from(e: std::io::Error) -> Self {
        Self::Io {
            message: e.to_string(),
        }
    }
}

/// Result alias of the audio core.
pub type Result<T> = std::result::Result<T, AudioError>;
