//! PCM sample conversion between float32 and 16-bit integers, into caller-owned buffers.
//!
//! float -> int16 scales by 32767, rounds half to even (as numpy does) and clips to [-32768, 32767];
//! NaN maps to 0. int16 -> float divides by 32768, as WAV readers conventionally do.
//! Nothing here allocates.

use crate::error::{AudioError, Result};

/// Scale of float -> int16 conversion: 1.0 maps to 32767.
pub const I16_SCALE_OUT: f32 = 32767.0;
/// Scale of int16 -> float conversion: -32768 maps to -1.0.
pub const I16_SCALE_IN: f32 = 32768.0;

/// 1.5 * 2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to an integer,
/// half to even (the default IEEE rounding mode), in a form the compiler can vectorize.
const ROUND_MAGIC: f32 = 12_582_912.0;

#[inline]
fn f32_sample_to_i16(x: f32) -> i16 {
    // Clamp first (NaN stays NaN), round half to even, then `as` maps NaN to 0.
    let y = (x * I16_SCALE_OUT).clamp(-32768.0, 32767.0);
    ((y + ROUND_MAGIC) - ROUND_MAGIC) as i16
}

fn check_len(needed: usize, available: usize) -> Result<()> {
    if available < needed {
        return Err(AudioError::BufferTooSmall { needed, available });
    }
    Ok(())
}

/// Converts float samples to int16 into `out[..input.len()]`. Does not allocate.
pub fn f32_to_i16(input: &[f32], out: &mut [i16]) -> Result<usize> {
    check_len(input.len(), out.len())?;
    for (o, &x) in out.iter_mut().zip(input) {
        *o = f32_sample_to_i16(x);
    }
    Ok(input.len())
}

/// Converts int16 samples to float into `out[..input.len()]`. Does not allocate.
pub fn i16_to_f32(input: &[i16], out: &mut [f32]) -> Result<usize> {
    check_len(input.len(), out.len())?;
    for (o, &x) in out.iter_mut().zip(input) {
        *o = f32::from(x) / I16_SCALE_IN;
    }
    Ok(input.len())
}

/// Writes float samples as little-endian signed 16-bit bytes into `out[..2 * input.len()]`.
pub fn f32_to_s16le(input: &[f32], out: &mut [u8]) -> Result<usize> {
    check_len(2 * input.len(), out.len())?;
    for (o, &x) in out.chunks_exact_mut(2).zip(input) {
        o.copy_from_slice(&f32_sample_to_i16(x).to_le_bytes());
    }
    Ok(2 * input.len())
}

/// Writes float samples as little-endian float32 bytes into `out[..4 * input.len()]`.
pub fn f32_to_f32le(input: &[f32], out: &mut [u8]) -> Result<usize> {
    check_len(4 * input.len(), out.len())?;
    for (o, &x) in out.chunks_exact_mut(4).zip(input) {
        o.copy_from_slice(&x.to_le_bytes());
    }
    Ok(4 * input.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_rounds_and_maps_nan_to_zero() {
        let x = [
            0.0,
            1.0,
            -1.0,
            2.0,
            -2.0,
            0.6 / 32767.0,
            f32::NAN,
            f32::INFINITY,
        ];
        let mut out = [0i16; 8];
        f32_to_i16(&x, &mut out).unwrap();
        assert_eq!(out, [0, 32767, -32767, 32767, -32768, 1, 0, 32767]);
    }

    #[test]
    fn rejects_small_buffers() {
        let mut out = [0i16; 1];
        let err = f32_to_i16(&[0.0, 0.0], &mut out).unwrap_err();
        assert_eq!(
            err,
            AudioError::BufferTooSmall {
                needed: 2,
                available: 1
            }
        );
    }

    #[test]
    fn byte_forms_are_little_endian() {
        let mut b = [0u8; 4];
        f32_to_s16le(&[1.0, -1.0], &mut b).unwrap();
        assert_eq!(b, [0xff, 0x7f, 0x01, 0x80]);
        let mut f = [0u8; 4];
        f32_to_f32le(&[1.0], &mut f).unwrap();
        assert_eq!(f, 1.0f32.to_le_bytes());
    }

    #[test]
    fn rounds_half_to_even_like_numpy() {
        let x = [0.5f32, 1.5, 2.5, -0.5, -1.5, 32766.5, -32767.5].map(|v| v / I16_SCALE_OUT);
        let mut out = [0i16; 7];
        f32_to_i16(&x, &mut out).unwrap();
        let expected = x.map(|v| (v * I16_SCALE_OUT).round_ties_even() as i16);
        assert_eq!(out, expected);
    }

    #[test]
    fn int_to_float_divides_by_32768() {
        let mut out = [0f32; 2];
        i16_to_f32(&[-32768, 16384], &mut out).unwrap();
        assert_eq!(out, [-1.0, 0.5]);
    }
}
