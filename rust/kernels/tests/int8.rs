mod common;

use common::{bf16_values, float_matmul, snr_db, values};
use voxlet_kernels::{Int8Matrix, Isa, KernelError, Linear};

fn run(mat: &Int8Matrix, isa: Isa, x: &[f32], threads: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len() / mat.cols() * mat.rows()];
    mat.matmul_on(isa, x, &mut out, threads).unwrap();
    out
}

#[test]
fn close_to_the_float_product_for_odd_shapes() {
    for &(m, rows, cols) in &[
        (1, 1, 1),
        (1, 7, 33),
        (3, 5, 31),
        (2, 64, 100),
        (14, 9, 257),
    ] {
        let w = values(rows * cols, 1);
        let b = values(rows, 2);
        let x = values(m * cols, 3);
        let mat = Int8Matrix::quantize(&w, rows, cols, Some(&b)).unwrap();
        let got = run(&mat, Isa::Portable, &x, 1);
        let want = float_matmul(&x, &w, Some(&b), rows, cols);
        let snr = snr_db(&want, &got);
        assert!(snr > 30.0, "{m}x{rows}x{cols}: SNR {snr:.1} dB");
    }
}

#[test]
fn every_supported_instruction_set_and_thread_count_gives_the_same_bits() {
    let (rows, cols) = (203, 1000); // rows not a multiple of 4, cols not of 32
    let w = values(rows * cols, 4);
    let b = values(rows, 5);
    let mat = Int8Matrix::quantize(&w, rows, cols, Some(&b)).unwrap();
    let isas: Vec<_> = [Isa::Portable, Isa::Avx2]
        .into_iter()
        .filter(|isa| isa.is_supported())
        .collect();
    for m in [1, 2, 17] {
        let x = values(m * cols, 6 + m as u64);
        let want = run(&mat, Isa::Portable, &x, 1);
        for &isa in &isas {
            for threads in [1, 2, 3] {
                assert_eq!(
                    run(&mat, isa, &x, threads),
                    want,
                    "{isa:?}, m={m}, {threads} threads"
                );
            }
        }
    }
}

#[test]
fn large_products_split_across_threads_match_one_thread() {
    let (rows, cols, m) = (514, 4096, 2); // above the threading threshold
    let w = values(rows * cols, 7);
    let x = values(m * cols, 8);
    let mat = Int8Matrix::quantize(&w, rows, cols, None).unwrap();
    let one = run(&mat, Isa::best(), &x, 1);
    assert_eq!(run(&mat, Isa::best(), &x, 2), one);
    assert!(snr_db(&float_matmul(&x, &w, None, rows, cols), &one) > 30.0);
}

#[test]
fn extreme_activations_do_not_saturate() {
    // every value at +-max: the largest pair sums the kernel can see
    let (rows, cols) = (4, 64);
    let w: Vec<f32> = (0..rows * cols)
        .map(|i| if i % cols % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let x: Vec<f32> = (0..3 * cols)
        .map(|i| if i % cols % 3 == 0 { -2.0 } else { 2.0 })
        .collect();
    let mat = Int8Matrix::quantize(&w, rows, cols, None).unwrap();
    for isa in [Isa::Portable, Isa::Avx2]
        .into_iter()
        .filter(|i| i.is_supported())
    {
        for m in [1, 3] {
            // one row: 8-bit activations; several: 7-bit with an offset
            let out = run(&mat, isa, &x[..m * cols], 1);
            for v in out {
                assert!((v - 128.0).abs() < 1e-3, "{isa:?}, {m} rows: {v}");
            }
        }
    }
}

#[test]
fn one_row_is_quantized_finer_than_several() {
    let (rows, cols) = (64, 512);
    let w = values(rows * cols, 12);
    let x = values(2 * cols, 13);
    let mat = Int8Matrix::quantize(&w, rows, cols, None).unwrap();
    let want = float_matmul(&x[..cols], &w, None, rows, cols);
    let alone = run(&mat, Isa::best(), &x[..cols], 1);
    let in_pair = &run(&mat, Isa::best(), &x, 1)[..rows];
    let (fine, coarse) = (snr_db(&want, &alone), snr_db(&want, in_pair));
    assert!(
        fine > coarse + 2.0 && coarse > 30.0,
        "8-bit {fine:.1} dB, 7-bit {coarse:.1} dB"
    );
}

#[test]
fn zero_rows_give_the_bias_and_non_finite_rows_give_nan() {
    let mat = Int8Matrix::quantize(&values(6, 9), 2, 3, Some(&[0.5, -1.0])).unwrap();
    let x = [0.0, 0.0, 0.0, 1.0, f32::INFINITY, 0.0];
    let out = run(&mat, Isa::best(), &x, 1);
    assert_eq!(&out[..2], &[0.5, -1.0]);
    assert!(out[2..].iter().all(|v| v.is_nan()));
}

#[test]
fn dequantize_is_within_half_a_step_of_the_weights() {
    let (rows, cols) = (5, 40);
    let w = values(rows * cols, 10);
    let mat = Int8Matrix::quantize(&w, rows, cols, None).unwrap();
    let back = mat.dequantize();
    for (r, (wr, br)) in w.chunks(cols).zip(back.chunks(cols)).enumerate() {
        let step = wr.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
        for (a, b) in wr.iter().zip(br) {
            assert!((a - b).abs() <= step * 0.5 + 1e-7, "row {r}: {a} vs {b}");
        }
    }
    // values, scales, row sums: 8 rows of 64 (16 of 64 where the layout is AMX tiles)
    let (stored_rows, stride) = mat.stored_shape();
    assert!([(8, 64), (16, 64)].contains(&(stored_rows, stride)));
    assert_eq!(
        mat.nbytes(),
        stored_rows * stride + 4 * rows + 4 * stored_rows
    );
}

#[test]
fn bad_shapes_name_what_is_wrong() {
    let w = values(12, 11);
    let err = Int8Matrix::quantize(&w, 3, 5, None).unwrap_err();
    assert_eq!(
        err,
        KernelError::ShapeMismatch {
            what: "weight",
            expected: 15,
            actual: 12
        }
    );
    assert!(err
        .to_string()
        .contains("weight: expected 15 elements, got 12"));
    let err = Int8Matrix::quantize(&w, 3, 4, Some(&[1.0])).unwrap_err();
    assert!(matches!(
        err,
        KernelError::ShapeMismatch { what: "bias", .. }
    ));
    assert!(Int8Matrix::quantize(&[], 0, 4, None).is_err());
    let mut bad = w.clone();
    bad[3] = f32::NAN;
    assert!(Int8Matrix::quantize(&bad, 3, 4, None)
        .unwrap_err()
        .to_string()
        .contains("weight value"));
    let mat = Int8Matrix::quantize(&w, 3, 4, None).unwrap();
    for isa in [Isa::Portable, Isa::Avx2]
        .into_iter()
        .filter(|i| i.is_supported())
    {
        assert!(mat.matmul_on(isa, &[], &mut [], 2).is_ok()); // no rows: nothing to do
    }
    let mut out = vec![0.0; 3];
    assert!(mat.matmul(&[1.0; 5], &mut out, 1).is_err());
    assert!(matches!(
        mat.matmul(&[1.0; 8], &mut out, 1),
        Err(KernelError::ShapeMismatch {
            what: "output",
            expected: 6,
            actual: 3
        })
    ));
}

#[test]
fn activations_round_half_to_even() {
    // x = [1, 0.5/127 * k]: scale 1/127, so value k/2 rounds to the even neighbour
    let cols = 6;
    let mut x = vec![1.0f32];
    x.extend([1.0, 3.0, 5.0, -1.0, -3.0].iter().map(|k| k * 0.5 / 127.0));
    let mut w = vec![0.0f32; cols * cols];
    for i in 0..cols {
        w[i * cols + i] = 1.0; // identity: out = dequantized x
    }
    let mat = Int8Matrix::quantize(&w, cols, cols, None).unwrap();
    let out = run(&mat, Isa::best(), &x, 1);
    let steps: Vec<f32> = out.iter().map(|v| (v * 127.0).round()).collect();
    assert_eq!(steps, [127.0, 0.0, 2.0, 2.0, 0.0, -2.0]);
}

#[test]
fn bf16_bits_and_any_thread_count_quantize_to_the_same_matrix() {
    use voxlet_kernels::WeightSource;
    // large enough to split across threads (> 2^18 weights a thread), rows not a multiple of 4
    let (rows, cols) = (1027, 700);
    let (bits, widened) = bf16_values(rows * cols, 21);
    let b = values(rows, 22);
    let want = Int8Matrix::quantize(&widened, rows, cols, Some(&b)).unwrap();
    let x = values(3 * cols, 23);
    let want_out = run(&want, Isa::Portable, &x, 1);
    for threads in [1, 2, 3, 8] {
        for source in [WeightSource::F32(&widened), WeightSource::Bf16(&bits)] {
            let got = Int8Matrix::quantize_from(source, rows, cols, Some(&b), threads).unwrap();
            assert_eq!(got.dequantize(), want.dequantize(), "{threads} threads");
            assert_eq!(
                run(&got, Isa::Portable, &x, 1),
                want_out,
                "{threads} threads"
            );
        }
    }
}

#[test]
fn a_non_finite_bf16_weight_is_refused_on_any_thread() {
    use voxlet_kernels::WeightSource;
    let (rows, cols) = (1024, 600);
    for at in [5, rows * cols - 1] {
        let mut bits = vec![0x3f80u16; rows * cols]; // 1.0
        bits[at] = 0x7fc0; // NaN
        for threads in [1, 2] {
            let err =
                Int8Matrix::quantize_from(WeightSource::Bf16(&bits), rows, cols, None, threads)
                    .unwrap_err();
            assert!(err.to_string().contains("weight value"), "{err}");
        }
    }
}
