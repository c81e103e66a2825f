//! WAV: a streaming writer (sizes patched on finish, or the 'unknown size' header for pipes)
//! and a reader for integer PCM (8/16/24/32-bit), IEEE float (32/64-bit) and extensible WAV.

use std::io::{Seek, SeekFrom, Write};

use crate::error::{AudioError, Result};
use crate::pcm::{f32_to_f32le, f32_to_s16le};

/// Sample encodings the writer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Signed 16-bit little-endian integers.
    S16,
    /// IEEE float32 little-endian.
    F32,
}

impl SampleFormat {
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::S16 => 2,
            Self::F32 => 4,
        }
    }

    fn format_tag(self) -> u16 {
        match self {
            Self::S16 => 1,
            Self::F32 => 3,
        }
    }
}

/// Size field value meaning "unknown length" (streams).
pub const UNKNOWN_SIZE: u32 = u32::MAX;
/// Bytes in the header the writer emits.
pub const HEADER_BYTES: usize = 44;

/// A 44-byte header; `data_bytes` None writes the conventional unknown size (0xFFFFFFFF).
pub fn wav_header(
    sample_rate_hz: u32,
    channels: u16,
    format: SampleFormat,
    data_bytes: Option<u32>,
) -> [u8; HEADER_BYTES] {
    let block = u32::from(channels).saturating_mul(format.bytes_per_sample() as u32);
    let riff = data_bytes.map_or(UNKNOWN_SIZE, |n| n.saturating_add(36));
    let mut h = [0u8; HEADER_BYTES];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff.to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&format.format_tag().to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate_hz.to_le_bytes());
    h[28..32].copy_from_slice(&sample_rate_hz.saturating_mul(block).to_le_bytes());
    h[32..34].copy_from_slice(&u16::try_from(block).unwrap_or(u16::MAX).to_le_bytes());
    h[34..36].copy_from_slice(&(8 * format.bytes_per_sample() as u16).to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.unwrap_or(UNKNOWN_SIZE).to_le_bytes());
    h
}

/// Writes float PCM as a WAV stream into a seekable writer; `finish` patches the sizes.
pub struct WavWriter<W: Write + Seek> {
    out: W,
    rate: u32,
    channels: u16,
    format: SampleFormat,
    data_bytes: u64,
    scratch: Vec<u8>,
}

impl<W: Write + Seek> WavWriter<W> {
    pub fn new(
        mut out: W,
        sample_rate_hz: u32,
        channels: u16,
        format: SampleFormat,
    ) -> Result<Self> {
        if sample_rate_hz == 0 || channels == 0 {
            return Err(AudioError::InvalidArgument {
                what: "WAV rate or channel count",
                value: 0,
            });
        }
        out.write_all(&wav_header(sample_rate_hz, channels, format, None))?;
        Ok(Self {
            out,
            rate: sample_rate_hz,
            channels,
            format,
            data_bytes: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends interleaved float samples (converted to the writer's format).
    pub fn write(&mut self, pcm: &[f32]) -> Result<()> {
        if !pcm.len().is_multiple_of(self.channels as usize) {
            return Err(AudioError::ChannelMismatch {
                expected: self.channels as usize,
                actual: pcm.len() % self.channels as usize,
            });
        }
        let n = pcm.len() * self.format.bytes_per_sample();
        self.scratch.resize(n, 0);
        match self.format {
            SampleFormat::S16 => f32_to_s16le(pcm, &mut self.scratch)?,
            SampleFormat::F32 => f32_to_f32le(pcm, &mut self.scratch)?,
        };
        self.out.write_all(&self.scratch)?;
        self.data_bytes += n as u64;
        Ok(())
    }

    /// Patches the RIFF and data sizes, flushes, and returns the writer.
    pub fn finish(mut self) -> Result<W> {
        let data = u32::try_from(self.data_bytes).map_err(|_| AudioError::InvalidWav {
            reason: format!(
                "{} bytes of audio exceed the 4 GiB WAV limit",
                self.data_bytes
            ),
        })?;
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&wav_header(
            self.rate,
            self.channels,
            self.format,
            Some(data),
        ))?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Decoded WAV audio: interleaved f32 samples, finite (integer formats decode into [-1, 1)).
#[derive(Debug, Clone, PartialEq)]
pub struct WavData {
    pub samples: Vec<f32>,
    pub sample_rate_hz: u32,
    pub channels: u16,
}

fn bad(reason: impl Into<String>) -> AudioError {
    AudioError::InvalidWav {
        reason: reason.into(),
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| bad("truncated header"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| bad("truncated header"))
}

/// Parses a whole WAV file held in memory.
pub fn read_wav(bytes: &[u8]) -> Result<WavData> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4)? as usize;
        let body = at + 8;
        if id == b"fmt " {
            let mut tag = u16_at(bytes, body)?;
            let channels = u16_at(bytes, body + 2)?;
            let rate = u32_at(bytes, body + 4)?;
            let bits = u16_at(bytes, body + 14)?;
            if tag == 0xFFFE {
                tag = u16_at(bytes, body + 24)?; // extensible: the sub-format GUID starts with it
            }
            fmt = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = fmt.ok_or_else(|| bad("data chunk before fmt"))?;
            let end = if size as u32 == UNKNOWN_SIZE || body + size > bytes.len() {
                bytes.len() // streamed file of unknown length, or cut short: take what is there
            } else {
                body + size
            };
            return decode(&bytes[body..end], tag, channels, rate, bits);
        }
        at = body + size + (size & 1);
    }
    Err(bad("no data chunk"))
}

fn decode(data: &[u8], tag: u16, channels: u16, rate: u32, bits: u16) -> Result<WavData> {
    if channels == 0 || rate == 0 {
        return Err(bad(format!("{channels} channels at {rate} Hz")));
    }
    let samples: Vec<f32> = match (tag, bits) {
        (1, 8) => data
            .iter()
            .map(|&b| (f32::from(b) - 128.0) / 128.0)
            .collect(),
        (1, 16) => data
            .chunks_exact(2)
            .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
            .collect(),
        (1, 24) => data
            .chunks_exact(3)
            .map(|c| (i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8) as f32 / 8_388_608.0)
            .collect(),
        (1, 32) => data
            .chunks_exact(4)
            .map(|c| {
                (f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])) / 2_147_483_648.0) as f32
            })
            .collect(),
        (3, 32) => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        (3, 64) => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        _ => {
            return Err(bad(format!(
                "unsupported encoding (format tag {tag}, {bits} bits)"
            )))
        }
    };
    // a float WAV can hold NaN or infinity (or an f64 beyond f32's range): audio nothing can
    // play or encode, refused here rather than passed on as silent wrong output
    if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!(
            "sample {i} is {} (not a finite number)",
            samples[i]
        )));
    }
    let frames = samples.len() / usize::from(channels);
    let mut samples = samples;
    samples.truncate(frames * usize::from(channels));
    Ok(WavData {
        samples,
        sample_rate_hz: rate,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn write_then_read_round_trips_and_patches_sizes() {
        let pcm = [0.0f32, 0.5, -0.5, 1.0];
        let mut w = WavWriter::new(Cursor::new(Vec::new()), 24000, 2, SampleFormat::S16).unwrap();
        w.write(&pcm).unwrap();
        let bytes = w.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), 44 + 8);
        assert_eq!(u32_at(&bytes, 40).unwrap(), 8);
        assert_eq!(u32_at(&bytes, 4).unwrap(), 44);
        let back = read_wav(&bytes).unwrap();
        assert_eq!((back.sample_rate_hz, back.channels), (24000, 2));
        assert_eq!(
            back.samples,
            [
                0.0,
                16384.0 / 32768.0,
                -16384.0 / 32768.0,
                32767.0 / 32768.0
            ]
        );
    }

    #[test]
    fn float_and_streamed_headers() {
        let mut bytes = wav_header(16000, 1, SampleFormat::F32, None).to_vec();
        for x in [0.25f32, -0.75] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let back = read_wav(&bytes).unwrap();
        assert_eq!(back.samples, [0.25, -0.75]);
        assert_eq!(back.sample_rate_hz, 16000);
    }

    #[test]
    fn non_finite_float_samples_are_refused_naming_the_first() {
        for bad_value in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let mut bytes = wav_header(24000, 1, SampleFormat::F32, None).to_vec();
            for x in [0.5f32, bad_value, 0.25] {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            match read_wav(&bytes) {
                Err(AudioError::InvalidWav { reason }) => {
                    assert!(reason.starts_with("sample 1 is "), "{reason}");
                }
                other => panic!("{bad_value}: expected InvalidWav, got {other:?}"),
            }
        }
        // a 64-bit float beyond f32's range would arrive as infinity
        let mut h = wav_header(24000, 1, SampleFormat::F32, Some(8)).to_vec();
        h[34] = 64; // bits per sample
        h.extend_from_slice(&1e300f64.to_le_bytes());
        assert!(matches!(read_wav(&h), Err(AudioError::InvalidWav { .. })));
    }

    #[test]
    fn int24_and_int32_scale() {
        let mut h = wav_header(8000, 1, SampleFormat::S16, Some(6)).to_vec();
        h[34] = 24; // bits per sample
        h.extend_from_slice(&[0x00, 0x00, 0x80, 0xFF, 0xFF, 0x7F]);
        assert_eq!(
            read_wav(&h).unwrap().samples,
            [-1.0, 8_388_607.0 / 8_388_608.0]
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            read_wav(b"RIFX...."),
            Err(AudioError::InvalidWav { .. })
        ));
        let mut h = wav_header(8000, 1, SampleFormat::S16, Some(0)).to_vec();
        h[20] = 2; // ADPCM
        assert!(matches!(read_wav(&h), Err(AudioError::InvalidWav { .. })));
    }
}
