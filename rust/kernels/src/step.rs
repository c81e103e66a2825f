//! A pre-norm transformer with int8 linears, advanced by one position of one sequence in one
//! call: the FlowLM step without a framework operation per norm, rotation or attention.
//!
//! Each layer computes `x += Wo Attn(RoPE(Wqkv LN1(x)))`, then `x += W2 GELU(W1 LN2(x))`, with
//! tanh GELU, no biases on the linears and no layer scale. Keys (rotated) and values of the new
//! position are written into the caller's caches, laid out `(heads, capacity, head_dim)`, and
//! the query attends to positions `0..=position` with scale `1 / sqrt(head_dim)`.

use std::sync::Arc;

use crate::error::{KernelError, Result};
use crate::int8::{Int8Matrix, Isa};
use crate::vector;

/// A layer norm's affine parameters and epsilon.
#[derive(Debug, Clone)]
pub struct Norm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

/// One layer's weights. Matrices are shared (`Arc`) with whoever else multiplies by them.
#[derive(Debug, Clone)]
pub struct Int8Layer {
    pub norm1: Norm,
    /// `(3 d, d)`: queries, keys, values stacked.
    pub in_proj: Arc<Int8Matrix>,
    pub out_proj: Arc<Int8Matrix>,
    pub norm2: Norm,
    pub linear1: Arc<Int8Matrix>,
    pub linear2: Arc<Int8Matrix>,
}

/// One layer's cache: keys and values, each `(heads, capacity, head_dim)` row-major.
pub struct KvCache<'a> {
    pub keys: &'a mut [f32],
    pub values: &'a mut [f32],
}

/// The layers of a transformer and its head count, checked to fit together.
#[derive(Debug, Clone)]
pub struct Int8Transformer {
    layers: Vec<Int8Layer>,
    d_model: usize,
    heads: usize,
    ffn: usize,
}

fn shape_error(what: &'static str, expected: usize, actual: usize) -> KernelError {
    KernelError::ShapeMismatch {
        what,
        expected,
        actual,
    }
}

fn check(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(shape_error(what, expected, actual))
    }
}

fn check_norm(norm: &Norm, d: usize) -> Result<()> {
    check("norm weight", d, norm.weight.len())?;
    check("norm bias", d, norm.bias.len())
}

/// Scratch vectors of one step, reused by every layer.
struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    hidden: Vec<f32>,
    scores: Vec<f32>,
}

impl Int8Transformer {
    /// Checks that every layer has the shapes of a `d_model`-wide transformer with `heads`
    /// heads of even width (pairs for the rotation) and one feed-forward width.
    pub fn new(layers: Vec<Int8Layer>, heads: usize) -> Result<Self> {
        let first = layers.first().ok_or(KernelError::InvalidArgument {
            what: "layers",
            value: "none given".into(),
        })?;
        let d = first.in_proj.cols();
        let ffn = first.linear1.rows();
        if heads == 0 || !d.is_multiple_of(heads) || !(d / heads).is_multiple_of(2) {
            return Err(KernelError::InvalidArgument {
                what: "heads",
                value: format!("{heads} heads do not split d_model {d} into even widths"),
            });
        }
        for layer in &layers {
            check("in_proj rows", 3 * d, layer.in_proj.rows())?;
            check("in_proj cols", d, layer.in_proj.cols())?;
            check("out_proj rows", d, layer.out_proj.rows())?;
            check("out_proj cols", d, layer.out_proj.cols())?;
            check("linear1 rows", ffn, layer.linear1.rows())?;
            check("linear1 cols", d, layer.linear1.cols())?;
            check("linear2 rows", d, layer.linear2.rows())?;
            check("linear2 cols", ffn, layer.linear2.cols())?;
            check_norm(&layer.norm1, d)?;
            check_norm(&layer.norm2, d)?;
        }
        Ok(Self {
            layers,
            d_model: d,
            heads,
            ffn,
        })
    }

    pub fn d_model(&self) -> usize {
        self.d_model
    }

    pub fn heads(&self) -> usize {
        self.heads
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn head_dim(&self) -> usize {
        self.d_model / self.heads
    }

    /// Advances `x` (`d_model` values, in place) through every layer at `position`, writing
    /// that position's keys and values into `caches` (one per layer, each with room for
    /// `capacity` positions). `turns` holds the position's rotation, `[cos, sin]` per pair of a
    /// head (`head_dim` values). Linears use up to `threads` threads. The fastest instruction
    /// set runs it; every one gives the same bits.
    pub fn step(
        &self,
        x: &mut [f32],
        caches: &mut [KvCache<'_>],
        capacity: usize,
        position: usize,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        self.step_on(Isa::best(), x, caches, capacity, position, turns, threads)
    }

    /// [`Int8Transformer::step`] on a chosen instruction set (for tests and benchmarks).
    #[allow(clippy::too_many_arguments)]
    pub fn step_on(
        &self,
        isa: Isa,
        x: &mut [f32],
        caches: &mut [KvCache<'_>],
        capacity: usize,
        position: usize,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        let (d, hd) = (self.d_model, self.head_dim());
        check("x", d, x.len())?;
        check("caches (one per layer)", self.layers.len(), caches.len())?;
        check("turns", hd, turns.len())?;
        if position >= capacity {
            return Err(KernelError::InvalidArgument {
                what: "position",
                value: format!("{position} is outside a cache of {capacity} positions"),
            });
        }
        for cache in caches.iter() {
            check("cached keys", self.heads * capacity * hd, cache.keys.len())?;
            check(
                "cached values",
                self.heads * capacity * hd,
                cache.values.len(),
            )?;
        }
        isa.require()?;
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 support was checked just above.
            Isa::Avx2 => unsafe { self.step_avx2(x, caches, capacity, position, turns, threads) },
            _ => self.step_with(isa, x, caches, capacity, position, turns, threads),
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn step_avx2(
        &self,
        x: &mut [f32],
        caches: &mut [KvCache<'_>],
        capacity: usize,
        position: usize,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        self.step_with(Isa::Avx2, x, caches, capacity, position, turns, threads)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn step_with(
        &self,
        isa: Isa,
        x: &mut [f32],
        caches: &mut [KvCache<'_>],
        capacity: usize,
        position: usize,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        let d = self.d_model;
        let mut s = Scratch {
            normed: vec![0.0; d],
            qkv: vec![0.0; 3 * d],
            attended: vec![0.0; d],
            projected: vec![0.0; d],
            hidden: vec![0.0; self.ffn],
            scores: vec![0.0; position + 1],
        };
        for (layer, cache) in self.layers.iter().zip(caches.iter_mut()) {
            let n1 = &layer.norm1;
            vector::layer_norm(x, &n1.weight, &n1.bias, n1.eps, &mut s.normed);
            layer
                .in_proj
                .matmul_on(isa, &s.normed, &mut s.qkv, threads)?;
            self.attend(&mut s, cache, capacity, position, turns);
            layer
                .out_proj
                .matmul_on(isa, &s.attended, &mut s.projected, threads)?;
            x.iter_mut().zip(&s.projected).for_each(|(a, b)| *a += b);
            let n2 = &layer.norm2;
            vector::layer_norm(x, &n2.weight, &n2.bias, n2.eps, &mut s.normed);
            layer
                .linear1
                .matmul_on(isa, &s.normed, &mut s.hidden, threads)?;
            vector::gelu_tanh(&mut s.hidden);
            layer
                .linear2
                .matmul_on(isa, &s.hidden, &mut s.projected, threads)?;
            x.iter_mut().zip(&s.projected).for_each(|(a, b)| *a += b);
        }
        Ok(())
    }

    /// Rotates q and k of `s.qkv`, stores k and v at `position`, and writes each head's
    /// attention over positions `0..=position` into `s.attended`.
    #[inline(always)]
    fn attend(
        &self,
        s: &mut Scratch,
        cache: &mut KvCache<'_>,
        capacity: usize,
        position: usize,
        turns: &[f32],
    ) {
        let (d, hd) = (self.d_model, self.head_dim());
        let scale = 1.0 / (hd as f32).sqrt();
        let (q, kv) = s.qkv.split_at_mut(d);
        let (k, v) = kv.split_at_mut(d);
        for h in 0..self.heads {
            let head = h * hd..(h + 1) * hd;
            vector::rotate_pairs(&mut q[head.clone()], turns);
            vector::rotate_pairs(&mut k[head.clone()], turns);
            let base = h * capacity * hd;
            let at = base + position * hd;
            cache.keys[at..at + hd].copy_from_slice(&k[head.clone()]);
            cache.values[at..at + hd].copy_from_slice(&v[head.clone()]);
            let keys = &cache.keys[base..at + hd];
            let values = &cache.values[base..at + hd];
            let qh = &q[head.clone()];
            for (score, key) in s.scores.iter_mut().zip(keys.chunks_exact(hd)) {
                *score = vector::dot(qh, key) * scale;
            }
            vector::softmax(&mut s.scores);
            let out = &mut s.attended[head];
            out.fill(0.0);
            for (&p, value) in s.scores.iter().zip(values.chunks_exact(hd)) {
                vector::add_scaled(out, p, value);
            }
        }
    }
}
