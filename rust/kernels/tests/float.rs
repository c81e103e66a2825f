mod common;

use common::{float_matmul, snr_db, values};
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

#[test]
fn reads_the_weights_it_was_given() {
    let w = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mat = F32Matrix::new(w, 2, 3, None).unwrap();
    assert_eq!(mat.weight(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
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
