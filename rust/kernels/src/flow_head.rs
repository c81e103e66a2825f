//! The flow head of FlowLM over int8 or float linears, evaluated in one call: an MLP whose residual
//! blocks are modulated (adaLN) by a condition.
//!
//! `y = time + cond(c)` (`y = cond(c)` for the heads without time inputs), `h = input(x)`; each block takes `shift, scale, gate` from
//! `modulation(silu(y))` and computes `h += gate * mlp_out(silu(mlp_in(LN(h) * (1 + scale) +
//! shift)))`; the final layer takes `shift, scale` the same way and returns
//! `linear(LN'(h) * (1 + scale) + shift)`, LN' without affine parameters. Every linear has a
//! bias. Rows are independent (one per sequence): every product gives each row the bits of
//! that row alone (`Linear::matmul_rows_on`), so a batch of sessions' heads is one call.

use std::sync::Arc;

use crate::error::{check_len, KernelError, Result};
use crate::isa::Isa;
use crate::linear::Linear;
use crate::step::Norm;
use crate::vector;

/// One residual block's norm and matrices: `mlp_in`, `mlp_out` (dim, dim) and `modulation`
/// (3 dim, dim): shift, scale and gate stacked.
#[derive(Debug)]
pub struct FlowBlock<M: Linear> {
    pub norm: Norm,
    pub mlp_in: Arc<M>,
    pub mlp_out: Arc<M>,
    pub modulation: Arc<M>,
}

/// The flow head's matrices, checked to fit together.
#[derive(Debug)]
pub struct FlowHead<M: Linear> {
    cond: Arc<M>,
    input: Arc<M>,
    blocks: Vec<FlowBlock<M>>,
    /// (2 dim, dim): shift and scale of the final layer.
    final_modulation: Arc<M>,
    final_linear: Arc<M>,
    /// The final norm: no affine parameters (ones and zeros).
    final_norm: Norm,
}

impl<M: Linear> FlowHead<M> {
    /// `cond` (dim, condition width), `input` (dim, latent), blocks as above, `final_modulation`
    /// (2 dim, dim) and `final_linear` (latent, dim); `final_eps` is the final norm's epsilon.
    pub fn new(
        cond: Arc<M>,
        input: Arc<M>,
        blocks: Vec<FlowBlock<M>>,
        final_modulation: Arc<M>,
        final_linear: Arc<M>,
        final_eps: f32,
    ) -> Result<Self> {
        let dim = cond.rows();
        check_len("input rows", dim, input.rows())?;
        for block in &blocks {
            check_len("block norm weight", dim, block.norm.weight.len())?;
            check_len("block norm bias", dim, block.norm.bias.len())?;
            check_len("mlp_in rows", dim, block.mlp_in.rows())?;
            check_len("mlp_in cols", dim, block.mlp_in.cols())?;
            check_len("mlp_out rows", dim, block.mlp_out.rows())?;
            check_len("mlp_out cols", dim, block.mlp_out.cols())?;
            check_len("modulation rows", 3 * dim, block.modulation.rows())?;
            check_len("modulation cols", dim, block.modulation.cols())?;
        }
        check_len("final modulation rows", 2 * dim, final_modulation.rows())?;
        check_len("final modulation cols", dim, final_modulation.cols())?;
        check_len("final linear cols", dim, final_linear.cols())?;
        check_len("final linear rows", input.cols(), final_linear.rows())?;
        Ok(Self {
            cond,
            input,
            blocks,
            final_modulation,
            final_linear,
            final_norm: Norm {
                weight: vec![1.0; dim],
                bias: vec![0.0; dim],
                eps: final_eps,
            },
        })
    }

    /// Width of the hidden rows.
    pub fn dim(&self) -> usize {
        self.cond.rows()
    }

    /// Width of a latent (`x` and the velocity).
    pub fn latent(&self) -> usize {
        self.input.cols()
    }

    /// Width of a condition row.
    pub fn cond_width(&self) -> usize {
        self.cond.cols()
    }

    /// The velocity `out` (rows of latent) at condition rows `c`, latent rows `x` and the time
    /// embedding `time` (dim, shared by every row; None for a head without time inputs),
    /// each row's velocity the bits of that row alone. Linears use up to `threads` threads.
    pub fn velocity(
        &self,
        c: &[f32],
        time: Option<&[f32]>,
        x: &[f32],
        out: &mut [f32],
        threads: usize,
    ) -> Result<()> {
        let (dim, latent) = (self.dim(), self.latent());
        if c.is_empty() || !c.len().is_multiple_of(self.cond_width()) {
            return Err(KernelError::ShapeMismatch {
                what: "c (rows of the condition width)",
                expected: c.len().div_ceil(self.cond_width()).max(1) * self.cond_width(),
                actual: c.len(),
            });
        }
        let rows = c.len() / self.cond_width();
        if let Some(time) = time {
            check_len("time", dim, time.len())?;
        }
        check_len("x (a latent per row of c)", rows * latent, x.len())?;
        check_len("out (a latent per row of c)", rows * latent, out.len())?;
        let isa = Isa::best();
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::best picks AVX2 only where the CPU has it.
            Isa::Avx2 => unsafe { self.velocity_avx2(c, time, x, out, threads) },
            _ => self.velocity_with(isa, c, time, x, out, threads),
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn velocity_avx2(
        &self,
        c: &[f32],
        time: Option<&[f32]>,
        x: &[f32],
        out: &mut [f32],
        threads: usize,
    ) -> Result<()> {
        self.velocity_with(Isa::Avx2, c, time, x, out, threads)
    }

    #[inline(always)]
    fn velocity_with(
        &self,
        isa: Isa,
        c: &[f32],
        time: Option<&[f32]>,
        x: &[f32],
        out: &mut [f32],
        threads: usize,
    ) -> Result<()> {
        let dim = self.dim();
        let rows = x.len() / self.latent();
        let mut y = vec![0.0; rows * dim];
        self.cond.matmul_rows_on(isa, c, &mut y, threads)?;
        if let Some(time) = time {
            for row in y.chunks_exact_mut(dim) {
                row.iter_mut().zip(time).for_each(|(a, &t)| *a += t);
            }
        }
        vector::silu(&mut y); // every modulation reads silu(y)
        let mut h = vec![0.0; rows * dim];
        self.input.matmul_rows_on(isa, x, &mut h, threads)?;
        let mut modulation = vec![0.0; rows * 3 * dim];
        let mut t = vec![0.0; rows * dim];
        let mut u = vec![0.0; rows * dim];
        for block in &self.blocks {
            block
                .modulation
                .matmul_rows_on(isa, &y, &mut modulation, threads)?;
            modulate(&h, &block.norm, &modulation, 3 * dim, &mut t);
            block.mlp_in.matmul_rows_on(isa, &t, &mut u, threads)?;
            vector::silu(&mut u);
            block.mlp_out.matmul_rows_on(isa, &u, &mut t, threads)?;
            for ((h, t), m) in h
                .chunks_exact_mut(dim)
                .zip(t.chunks_exact(dim))
                .zip(modulation.chunks_exact(3 * dim))
            {
                let gate = &m[2 * dim..];
                for ((a, &b), &g) in h.iter_mut().zip(t).zip(gate) {
                    *a += g * b;
                }
            }
        }
        let mut last = vec![0.0; rows * 2 * dim];
        self.final_modulation
            .matmul_rows_on(isa, &y, &mut last, threads)?;
        modulate(&h, &self.final_norm, &last, 2 * dim, &mut t);
        self.final_linear.matmul_rows_on(isa, &t, out, threads)
    }
}

/// Row by row: `LN(h) * (1 + scale) + shift`, with shift and scale the first two `dim`-wide
/// parts of each `stride`-wide modulation row.
#[inline(always)]
fn modulate(h: &[f32], norm: &Norm, modulation: &[f32], stride: usize, out: &mut [f32]) {
    let dim = norm.weight.len();
    for ((h, m), o) in h
        .chunks_exact(dim)
        .zip(modulation.chunks_exact(stride))
        .zip(out.chunks_exact_mut(dim))
    {
        vector::layer_norm(h, &norm.weight, &norm.bias, norm.eps, o);
        let (shift, scale) = (&m[..dim], &m[dim..2 * dim]);
        for ((o, &sh), &sc) in o.iter_mut().zip(shift).zip(scale) {
            *o = *o * (1.0 + sc) + sh;
        }
    }
}
