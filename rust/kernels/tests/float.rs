mod common;

use common::{bf16_values, float_matmul, snr_db, values};
use voxlet_kernels::{F32Matrix, Isa, KernelError, Linear};

fn run(mat: &F32Matrix, isa: Isa, x: &[f32], threads: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len() / mat.cols() * mat.rows()];
    mat.matmul_on(isa, x, &mut out, threads).unwrap();
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

#[test]
fn close_to_an_f64_product_for_odd_shapes() {
    // rows not a multiple of 4, cols not of 8, row counts around the 3-row tiles
    for &(m, rows, cols) in &[
        (1, 1, 1),
        (1, 7, 33),
        (3, 5, 31),
        (2, 64, 100),
        (4, 6, 8),
        (14, 9, 257),
    ] {
        let w = values(rows * cols, 1);
        let b = values(rows, 2);
        let x = values(m * cols, 3);
        let mat = F32Matrix::new(w.clone(), rows, cols, Some(b.clone())).unwrap();
        let want = float_matmul(&x, &w, Some(&b), rows, cols);
        for isa in [Isa::Portable, Isa::best()] {
            let snr = snr_db(&want, &run(&mat, isa, &x, 1));
            assert!(snr > 120.0, "{isa:?} {m}x{rows}x{cols}: SNR {snr:.1} dB");
        }
    }
}

#[test]
fn same_bits_on_every_instruction_set_thread_count_and_row_position() {
    let (rows, cols) = (203, 1001);
    let w = values(rows * cols, 4);
    let mat = F32Matrix::new(w, rows, cols, Some(values(rows, 5))).unwrap();
    let x = values(17 * cols, 6);
    let want = run(&mat, Isa::Portable, &x, 1);
    for isa in [Isa::Portable, Isa::Avx2]
        .into_iter()
        .filter(|isa| isa.is_supported())
    {
        for threads in [1, 2, 3] {
            assert_eq!(bits(&run(&mat, isa, &x, threads)), bits(&want));
        }
        // a row alone, or in a tile of three at another place, gives the same bits
        for r in [0, 5, 16] {
            let alone = run(&mat, isa, &x[r * cols..(r + 1) * cols], 1);
            assert_eq!(bits(&alone), bits(&want[r * rows..(r + 1) * rows]));
        }
    }
}

/// Round to nearest even, as a framework casts float32 to bfloat16.
#[test]
fn bf16_weights_give_the_bits_of_the_float32_weights_they_widen_to() {
    // the shapes around every tile edge: rows past a multiple of 4, cols past one of 8
    for &(m, rows, cols) in &[
        (1, 1, 1),
        (1, 7, 33),
        (3, 5, 31),
        (4, 9, 8),
        (17, 203, 1001),
    ] {
        let (bf16, widened) = bf16_values(rows * cols, 7);
        let bias = Some(values(rows, 8));
        let half = F32Matrix::bf16(bf16, rows, cols, bias.clone()).unwrap();
        let full = F32Matrix::new(widened, rows, cols, bias).unwrap();
        assert_eq!(
            (half.weight(), half.weight_bytes()),
            (None, 2 * rows * cols)
        );
        let x = values(m * cols, 9);
        let want = run(&full, Isa::Portable, &x, 1);
        for isa in [Isa::Portable, Isa::Avx2]
            .into_iter()
            .filter(|isa| isa.is_supported())
        {
            for threads in [1, 2] {
                assert_eq!(bits(&run(&half, isa, &x, threads)), bits(&want), "{isa:?}");
                assert_eq!(bits(&run(&full, isa, &x, threads)), bits(&want), "{isa:?}");
            }
        }
    }
    assert!(F32Matrix::bf16(vec![0u16; 5], 2, 3, None).is_err());
}

#[test]
fn reads_the_weights_it_was_given() {
    let w = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mat = F32Matrix::new(w, 2, 3, None).unwrap();
    assert_eq!(mat.weight(), Some(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    assert_eq!(mat.weight_bytes(), 24);
    assert_eq!(
        run(&mat, Isa::best(), &[1.0, 0.0, -1.0], 1),
        vec![-2.0, -2.0]
    );
}

#[test]
fn bad_shapes_name_what_is_wrong() {
    assert_eq!(
        F32Matrix::new(vec![0.0; 5], 2, 3, None).unwrap_err(),
        KernelError::ShapeMismatch {
            what: "weight",
            expected: 6,
            actual: 5
        }
    );
    assert!(matches!(
        F32Matrix::new(vec![0.0; 6], 2, 3, Some(vec![0.0; 3])),
        Err(KernelError::ShapeMismatch { what: "bias", .. })
    ));
    assert!(matches!(
        F32Matrix::new(Vec::new(), 0, 3, None),
        Err(KernelError::InvalidArgument { what: "rows", .. })
    ));
    let mat = F32Matrix::new(vec![0.0; 6], 2, 3, None).unwrap();
    let mut out = vec![0.0; 2];
    assert!(matches!(
        mat.matmul(&[1.0; 4], &mut out, 1),
        Err(KernelError::ShapeMismatch {
            what: "activations (a multiple of cols)",
            ..
        })
    ));
    assert!(matches!(
        mat.matmul(&[1.0; 6], &mut out, 1),
        Err(KernelError::ShapeMismatch { what: "output", .. })
    ));
}

/// An input-major copy sums in another fixed order: close to the row-major matrix and to
/// f64, the same bits on every instruction set and for a row alone or among others.
#[test]
fn input_major_copies_agree_with_row_major_matrices() {
    for (m, rows, cols) in [(1, 24, 48), (7, 384, 128), (16, 12, 72), (5, 1, 3)] {
        let w = values(rows * cols, 3);
        let bias = Some(values(rows, 4));
        let x = values(m * cols, 5);
        let plain = F32Matrix::new(w.clone(), rows, cols, bias.clone()).unwrap();
        let copy = F32Matrix::input_major(&w, rows, cols, bias.clone()).unwrap();
        assert!(copy.is_input_major() && !plain.is_input_major());
        let want = float_matmul(&x, &w, bias.as_deref(), rows, cols);
        let got = run(&copy, Isa::Portable, &x, 2);
        assert!(snr_db(&want, &got) > 120.0, "{m} {rows} {cols}");
        assert!(snr_db(&run(&plain, Isa::Portable, &x, 1), &got) > 120.0);
        if Isa::Avx2.is_supported() {
            assert_eq!(bits(&run(&copy, Isa::Avx2, &x, 1)), bits(&got));
        }
        assert_eq!(
            bits(&run(&copy, Isa::Portable, &x[..cols], 1)),
            bits(&got[..rows])
        );
    }
}

#[test]
fn moving_to_huge_pages_keeps_the_bits_even_while_products_run() {
    use std::sync::Arc;
    // 1 MiB of bf16 weights and 2 MiB of float32 ones: the float32 matrix spans a huge page
    let (rows, cols) = (512, 1024);
    let (bf16, widened) = bf16_values(rows * cols, 31);
    let x = values(3 * cols, 32);
    let bias = Some(values(rows, 33));
    let full = Arc::new(F32Matrix::new(widened.clone(), rows, cols, bias.clone()).unwrap());
    let want = bits(&run(&full, Isa::best(), &x, 2));
    let reader = {
        let (full, x, want) = (Arc::clone(&full), x.clone(), want.clone());
        std::thread::spawn(move || {
            for _ in 0..50 {
                assert_eq!(bits(&run(&full, Isa::best(), &x, 2)), want);
            }
        })
    };
    assert!(!full.moved());
    assert!(full.move_to_huge_pages().is_some());
    assert!(full.moved() && full.move_to_huge_pages().is_none()); // once
    reader.join().unwrap();
    assert_eq!(bits(&run(&full, Isa::best(), &x, 1)), want);
    assert_eq!(full.weight(), Some(widened));
    // bf16 under one huge page, and input-major copies, stay where they are
    let half = F32Matrix::bf16(bf16, rows, cols, bias).unwrap();
    assert!(half.move_to_huge_pages().is_none() && !half.moved());
    let narrow = F32Matrix::input_major(&values(2048 * 512, 34), 2048, 512, None).unwrap();
    assert!(narrow.move_to_huge_pages().is_none());
}
