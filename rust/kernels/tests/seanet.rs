//! The streaming SEANet decoder against a direct f64 evaluation of its definition (causal
//! convolutions with zero history, transposed convolutions, ELUs, residual blocks), from
//! PyTorch-layout weights, and cut into calls anywhere with the same bits as one call.
mod common;

use common::{snr_db, values};
use voxlet_kernels::{Conv, ConvTranspose, Isa, SeanetDecoder, Stage};

/// (c_out, c_in, kernel) conv weights and bias, PyTorch layout.
fn conv_weights(c_out: usize, c_in: usize, kernel: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let scale = 1.0 / ((c_in * kernel) as f32).sqrt();
    let w = values(c_out * c_in * kernel, seed)
        .iter()
        .map(|v| v * scale)
        .collect();
    (w, values(c_out, seed + 1).iter().map(|v| 0.1 * v).collect())
}

struct Spec {
    c_in: usize,
    widths: [usize; 3],
    strides: [usize; 2],
}

const SPEC: Spec = Spec {
    c_in: 12,
    widths: [16, 8, 4],
    strides: [3, 2],
};

/// Stages as Mimi's decoder has them: conv k3, then per stride ELU, conv transpose, residual
/// (k3 then 1x1, hidden half width), then ELU and a k3 conv to one channel; with their f64
/// reference description. `int8`: every convolution with int8 weights and activations.
fn decoder_of(int8: bool) -> (SeanetDecoder, Vec<Ref>) {
    let mut stages = Vec::new();
    let mut refs = Vec::new();
    let conv = |c_out, c_in, k, d, seed, refs: &mut Vec<Ref>| {
        let (w, b) = conv_weights(c_out, c_in, k, seed);
        refs.push(Ref::Conv {
            w: w.clone(),
            b: b.clone(),
            c_out,
            c_in,
            k,
            d,
        });
        if int8 {
            Conv::int8_from_torch(&w, c_out, c_in, k, d, Some(b)).unwrap()
        } else {
            Conv::from_torch(&w, c_out, c_in, k, d, Some(b)).unwrap()
        }
    };
    let c = conv(SPEC.widths[0], SPEC.c_in, 3, 1, 10, &mut refs);
    stages.push(Stage::Conv(c));
    let mut width = SPEC.widths[0];
    for (i, &s) in SPEC.strides.iter().enumerate() {
        stages.push(Stage::Elu);
        refs.push(Ref::Elu);
        let out = SPEC.widths[i + 1];
        let w: Vec<f32> = values(width * out * 2 * s, 20 + i as u64)
            .iter()
            .map(|v| v / (width as f32).sqrt())
            .collect();
        let b: Vec<f32> = values(out, 30 + i as u64).iter().map(|v| 0.1 * v).collect();
        refs.push(Ref::ConvT {
            w: w.clone(),
            b: b.clone(),
            c_in: width,
            c_out: out,
            s,
        });
        stages.push(Stage::ConvTranspose(if int8 {
            ConvTranspose::int8_from_torch(&w, width, out, s, b).unwrap()
        } else {
            ConvTranspose::from_torch(&w, width, out, s, b).unwrap()
        }));
        width = out;
        let mut inner = Vec::new();
        let conv_k = conv(width / 2, width, 3, 2, 40 + i as u64, &mut inner);
        let conv_1 = conv(width, width / 2, 1, 1, 50 + i as u64, &mut inner);
        refs.push(Ref::Residual(inner));
        stages.push(Stage::Residual { conv_k, conv_1 });
    }
    stages.push(Stage::Elu);
    refs.push(Ref::Elu);
    let c = conv(1, width, 3, 1, 60, &mut refs);
    stages.push(Stage::Conv(c));
    (SeanetDecoder::new(stages).unwrap(), refs)
}

fn decoder() -> (SeanetDecoder, Vec<Ref>) {
    decoder_of(false)
}

enum Ref {
    Conv {
        w: Vec<f32>,
        b: Vec<f32>,
        c_out: usize,
        c_in: usize,
        k: usize,
        d: usize,
    },
    ConvT {
        w: Vec<f32>,
        b: Vec<f32>,
        c_in: usize,
        c_out: usize,
        s: usize,
    },
    Elu,
    Residual(Vec<Ref>),
}

fn elu(v: f64) -> f64 {
    if v > 0.0 {
        v
    } else {
        v.exp() - 1.0
    }
}

/// The whole input at once, time-major rows, in f64.
fn reference(refs: &[Ref], x: Vec<f64>, mut width: usize) -> Vec<f64> {
    let mut h = x;
    for r in refs {
        let steps = h.len() / width;
        h = match r {
            Ref::Elu => h.into_iter().map(elu).collect(),
            Ref::Conv {
                w,
                b,
                c_out,
                c_in,
                k,
                d,
            } => {
                let mut out = vec![0.0; steps * c_out];
                for t in 0..steps {
                    for o in 0..*c_out {
                        let mut acc = f64::from(b[o]);
                        for c in 0..*c_in {
                            for j in 0..*k {
                                let back = (k - 1 - j) * d; // tap j reads x(t - back)
                                if t >= back {
                                    acc += f64::from(w[(o * c_in + c) * k + j])
                                        * h[(t - back) * c_in + c];
                                }
                            }
                        }
                        out[t * c_out + o] = acc;
                    }
                }
                width = *c_out;
                out
            }
            Ref::ConvT {
                w,
                b,
                c_in,
                c_out,
                s,
            } => {
                let mut out = vec![0.0; (steps + 1) * s * c_out];
                for t in 0..steps {
                    for c in 0..*c_in {
                        for o in 0..*c_out {
                            for j in 0..2 * s {
                                out[(t * s + j) * c_out + o] +=
                                    f64::from(w[(c * c_out + o) * 2 * s + j]) * h[t * c_in + c];
                            }
                        }
                    }
                }
                out.truncate(steps * s * c_out);
                for (i, v) in out.iter_mut().enumerate() {
                    *v += f64::from(b[i % c_out]);
                }
                width = *c_out;
                out
            }
            Ref::Residual(inner) => {
                let u: Vec<f64> = h.iter().map(|&v| elu(v)).collect();
                let (first, second) = inner.split_at(1);
                let v: Vec<f64> = reference(first, u, width).into_iter().map(elu).collect();
                let hidden = match &first[0] {
                    Ref::Conv { c_out, .. } => *c_out,
                    _ => unreachable!(),
                };
                let w = reference(second, v, hidden);
                h.iter().zip(&w).map(|(a, b)| a + b).collect()
            }
        };
    }
    h
}

fn input(steps: usize) -> Vec<f32> {
    values(steps * SPEC.c_in, 7)
}

#[test]
fn close_to_its_definition_in_f64() {
    let (model, refs) = decoder();
    assert_eq!(
        (model.c_in(), model.c_out(), model.hop()),
        (SPEC.c_in, 1, 6)
    );
    let steps = 20;
    let x = input(steps);
    let got = model.forward(&x, &mut model.state()).unwrap();
    assert_eq!(got.len(), steps * 6);
    let want: Vec<f32> = reference(&refs, x.iter().map(|&v| f64::from(v)).collect(), SPEC.c_in)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let snr = snr_db(&want, &got);
    assert!(snr > 110.0, "SNR {snr:.1} dB");
}

#[test]
fn int8_stays_close_to_the_definition() {
    let (model, refs) = decoder_of(true);
    let x = input(20);
    let got = model.forward(&x, &mut model.state()).unwrap();
    let want: Vec<f32> = reference(&refs, x.iter().map(|&v| f64::from(v)).collect(), SPEC.c_in)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let snr = snr_db(&want, &got);
    // 8-bit weights and activations through six products: near 30 dB, far from float's 110
    assert!(snr > 25.0 && snr < 60.0, "SNR {snr:.1} dB");
    let (w, _) = conv_weights(8, 4, 3, 1);
    assert!(Conv::int8_from_torch(&w, 8, 4, 3, 0, None).is_err()); // dilation 0
    assert!(Conv::int8_from_torch(&w[1..], 8, 4, 3, 1, None).is_err()); // one value short
    assert!(ConvTranspose::int8_from_torch(&w, 4, 4, 2, vec![0.0; 3]).is_err());
    // bias 3 of 4
}

#[test]
fn calls_of_any_size_give_the_bits_of_one_call() {
    for int8 in [false, true] {
        calls_give_the_bits_of_one_call(int8);
    }
}

fn calls_give_the_bits_of_one_call(int8: bool) {
    let (model, _) = decoder_of(int8);
    let x = input(20);
    let whole = model.forward(&x, &mut model.state()).unwrap();
    for sizes in [&[1usize; 20][..], &[3, 1, 7, 9], &[19, 1], &[2, 2, 16]] {
        let mut state = model.state();
        let mut parts = Vec::new();
        let mut at = 0;
        for &n in sizes {
            let chunk = &x[at * SPEC.c_in..(at + n) * SPEC.c_in];
            parts.extend(model.forward(chunk, &mut state).unwrap());
            at += n;
        }
        assert_eq!(parts, whole, "{sizes:?}, int8 {int8}");
    }
}

#[test]
fn every_instruction_set_gives_the_same_bits() {
    for int8 in [false, true] {
        let (model, _) = decoder_of(int8);
        let x = input(20);
        let portable = model
            .forward_on(Isa::Portable, &x, &mut model.state())
            .unwrap();
        if Isa::Avx2.is_supported() {
            let fast = model.forward_on(Isa::Avx2, &x, &mut model.state()).unwrap();
            assert_eq!(fast, portable, "int8 {int8}");
        }
    }
}

#[test]
fn refuses_stages_that_do_not_chain_and_inputs_that_do_not_fit() {
    let (w, b) = conv_weights(8, 4, 3, 1);
    let first = Conv::from_torch(&w, 8, 4, 3, 1, Some(b)).unwrap();
    let (w, b) = conv_weights(2, 5, 1, 2);
    let second = Conv::from_torch(&w, 2, 5, 1, 1, Some(b)).unwrap();
    let err =
        SeanetDecoder::new(vec![Stage::Conv(first.clone()), Stage::Conv(second)]).unwrap_err();
    assert!(format!("{err}").contains("conv input channels"), "{err}");
    let model = SeanetDecoder::new(vec![Stage::Conv(first)]).unwrap();
    assert!(model.forward(&[0.0; 5], &mut model.state()).is_err());
    assert!(Conv::from_torch(&[0.0; 7], 2, 1, 3, 1, None).is_err());
    assert!(SeanetDecoder::new(vec![Stage::Elu]).is_err());
}

#[test]
fn a_batch_gives_each_stream_the_bits_it_gets_alone() {
    for int8 in [false, true] {
        let (model, _) = decoder_of(int8);
        // streams of different lengths, each two calls in: their own histories carried
        let inputs: Vec<Vec<f32>> = [5usize, 1, 12, 3, 8]
            .iter()
            .enumerate()
            .map(|(i, &n)| values(n * SPEC.c_in, 100 + i as u64))
            .collect();
        let head = input(4);
        let alone: Vec<Vec<f32>> = inputs
            .iter()
            .map(|x| {
                let mut state = model.state();
                model.forward(&head, &mut state).unwrap();
                model.forward(x, &mut state).unwrap()
            })
            .collect();
        for threads in [1, 2, 3, 8] {
            let mut states: Vec<_> = inputs.iter().map(|_| model.state()).collect();
            for state in &mut states {
                model.forward(&head, state).unwrap();
            }
            let xs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
            let mut refs: Vec<_> = states.iter_mut().collect();
            let got = model.forward_batch(&xs, &mut refs, threads).unwrap();
            assert_eq!(got, alone, "int8 {int8}, {threads} threads");
        }
        let none = model.forward_batch(&[], &mut [], 2).unwrap();
        assert!(none.is_empty());
    }
}

#[test]
fn a_batch_with_one_bad_input_advances_no_state() {
    let (model, _) = decoder();
    let good = input(3);
    let bad = vec![0.0; SPEC.c_in + 1];
    let (mut a, mut b) = (model.state(), model.state());
    let err = model
        .forward_batch(&[&good, &bad], &mut [&mut a, &mut b], 2)
        .unwrap_err();
    assert!(
        format!("{err}").contains("rows of the input channels"),
        "{err}"
    );
    // a is still fresh: its output now is that of a fresh stream
    let fresh = model.forward(&good, &mut model.state()).unwrap();
    assert_eq!(model.forward(&good, &mut a).unwrap(), fresh);
    assert!(model.forward_batch(&[&good], &mut [], 1).is_err()); // a state short
}
