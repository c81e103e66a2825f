//! Activations in one pass over memory: ELU (alpha 1) of the Mimi decoder's SEANet, in place or
//! into another buffer, and the tanh GELU of its transformer, in place. The same bits on every
//! instruction set.

use crate::isa::Isa;
use crate::vector;

/// In place: `x` where `x > 0`, else `e^x - 1` (ELU, alpha 1).
pub fn elu(x: &mut [f32]) {
    dispatch(x, Activation::Elu);
}

/// ELU of `src` into `dst`: one read and one write, where a copy then an in-place pass takes
/// two of each.
///
/// # Panics
/// If the lengths differ.
pub fn elu_into(src: &[f32], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "elu_into: lengths differ");
    match Isa::best() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::best picks AVX2 only where the CPU has it; AVX-512F is checked.
        Isa::Avx2 => unsafe {
            if std::arch::is_x86_feature_detected!("avx512f") {
                elu_into_avx512(src, dst)
            } else {
                elu_into_avx2(src, dst)
            }
        },
        _ => vector::elu_into(src, dst),
    }
}

/// The same code compiled for 16 lanes: every lane computes exactly what the scalar code does
/// (no operation is fused or reordered), so the bits are those of every other path.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn elu_into_avx512(src: &[f32], dst: &mut [f32]) {
    vector::elu_into(src, dst);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn elu_into_avx2(src: &[f32], dst: &mut [f32]) {
    vector::elu_into(src, dst);
}

/// In place: `x / 2 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))` (GELU, tanh form).
pub fn gelu_tanh(x: &mut [f32]) {
    dispatch(x, Activation::GeluTanh);
}

#[derive(Clone, Copy)]
enum Activation {
    Elu,
    GeluTanh,
}

fn dispatch(x: &mut [f32], which: Activation) {
    match Isa::best() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::best picks AVX2 only where the CPU has it; AVX-512F is checked.
        Isa::Avx2 => unsafe {
            if std::arch::is_x86_feature_detected!("avx512f") {
                apply_avx512(x, which)
            } else {
                apply_avx2(x, which)
            }
        },
        _ => apply(x, which),
    }
}

/// As `elu_into_avx512`: the scalar code on 16 lanes, the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn apply_avx512(x: &mut [f32], which: Activation) {
    apply(x, which);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn apply_avx2(x: &mut [f32], which: Activation) {
    apply(x, which);
}

#[inline(always)]
fn apply(x: &mut [f32], which: Activation) {
    match which {
        Activation::Elu => vector::elu(x),
        Activation::GeluTanh => vector::gelu_tanh(x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let xs: Vec<f32> = (-3000..3000).map(|i| i as f32 / 97.0).collect();
        for which in [Activation::Elu, Activation::GeluTanh] {
            let mut portable = xs.clone();
            apply(&mut portable, which);
            let mut best = xs.clone();
            dispatch(&mut best, which);
            assert!(portable
                .iter()
                .zip(&best)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            #[cfg(target_arch = "x86_64")]
            if Isa::Avx2.is_supported() {
                // the 8-lane build too, where dispatch picked the 16-lane one
                let mut avx2 = xs.clone();
                // SAFETY: AVX2 checked just above.
                unsafe { apply_avx2(&mut avx2, which) };
                assert!(portable
                    .iter()
                    .zip(&avx2)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
            assert!(portable.iter().zip(&xs).any(|(a, b)| a != b));
        }
        let mut into = vec![0.0; xs.len()];
        elu_into(&xs, &mut into);
        let mut in_place = xs.clone();
        apply(&mut in_place, Activation::Elu);
        assert!(into
            .iter()
            .zip(&in_place)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
