mod common;

use common::values;
use voxlet_kernels::{KernelError, Overlap};

/// Output step t, tap j of a channel: its first half, the previous step's second half (the
/// carried partial at t = 0), the bias; in the kernel's order of additions.
fn naive(op: Overlap, z: &[f32], bias: Option<&[f32]>, partial: Option<&[f32]>) -> Vec<f32> {
    let (b, t, c, s) = (op.batch, op.steps, op.channels, op.stride);
    let tap = |i: usize, step: usize, ch: usize, j: usize| z[((i * t + step) * c + ch) * 2 * s + j];
    let mut out = vec![0.0; b * c * t * s];
    for i in 0..b {
        for ch in 0..c {
            let bias = bias.map_or(0.0, |v| v[ch]);
            for step in 0..t {
                for j in 0..s {
                    let y = if step == 0 {
                        let y = tap(i, 0, ch, j) + bias;
                        partial.map_or(y, |p| y + p[(i * c + ch) * s + j])
                    } else {
                        (tap(i, step, ch, j) + tap(i, step - 1, ch, s + j)) + bias
                    };
                    out[((i * c + ch) * t + step) * s + j] = y;
                }
            }
        }
    }
    out
}

#[test]
fn matches_the_definition_and_carries_the_last_second_half() {
    for (steps, with_bias, with_partial) in [(1, true, true), (5, false, true), (70, true, false)] {
        let op = Overlap {
            batch: 2,
            steps,
            channels: 3,
            stride: 4,
        };
        let z = values(2 * steps * 3 * 8, 1);
        let bias = values(3, 2);
        let partial = values(2 * 3 * 4, 3);
        let (bias, partial) = (
            with_bias.then_some(&bias[..]),
            with_partial.then_some(&partial[..]),
        );
        let mut out = vec![0.0; 2 * 3 * steps * 4];
        let mut next = vec![0.0; 2 * 3 * 4];
        op.apply(&z, bias, partial, &mut out, &mut next).unwrap();
        assert_eq!(out, naive(op, &z, bias, partial));
        for i in 0..2 {
            for ch in 0..3 {
                for j in 0..4 {
                    let last = z[((i * steps + steps - 1) * 3 + ch) * 8 + 4 + j];
                    let b = bias.map_or(0.0, |v| v[ch]);
                    let want = if with_bias { (last + b) - b } else { last };
                    assert_eq!(next[(i * 3 + ch) * 4 + j], want);
                }
            }
        }
    }
}

#[test]
fn refuses_buffers_that_do_not_fit() {
    let op = Overlap {
        batch: 1,
        steps: 2,
        channels: 3,
        stride: 4,
    };
    let z = vec![0.0; 2 * 3 * 8];
    let (mut out, mut next) = (vec![0.0; 24], vec![0.0; 12]);
    assert!(matches!(
        op.apply(&z[1..], None, None, &mut out, &mut next),
        Err(KernelError::ShapeMismatch { what: "z", .. })
    ));
    assert!(matches!(
        op.apply(&z, Some(&[0.0; 2]), None, &mut out, &mut next),
        Err(KernelError::ShapeMismatch { what: "bias", .. })
    ));
    let empty = Overlap { steps: 0, ..op };
    assert!(empty.apply(&[], None, None, &mut [], &mut next).is_err());
}
