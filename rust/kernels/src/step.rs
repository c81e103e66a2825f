//! A pre-norm transformer with int8 linears, advanced by some positions of one sequence in one
//! call: the FlowLM step and text prefill without a framework operation per norm, rotation or
//! attention.
//!
//! Each layer computes `x += Wo Attn(RoPE(Wqkv LN1(x)))`, then `x += W2 GELU(W1 LN2(x))`, with
//! tanh GELU, no biases on the linears and no layer scale. Keys (rotated) and values of the new
//! positions are written into the caller's caches, laid out `(heads, capacity, head_dim)`, and
//! each query attends causally, to every position up to its own, with scale `1 / sqrt(head_dim)`.

use std::sync::Arc;

use crate::error::{KernelError, Result};
use crate::int8::{Int8Matrix, Isa};
use crate::pool::Helpers;
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

/// Scratch rows of one call, reused by every layer.
struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    hidden: Vec<f32>,
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

    /// Advances `x` (`t` rows of `d_model` values, in place) through every layer at positions
    /// `position..position + t`, writing those positions' keys and values into `caches` (one
    /// per layer, each with room for `capacity` positions); row r attends to positions
    /// `0..=position + r`. `turns` holds each row's rotation, `[cos, sin]` per pair of a head
    /// (`t * head_dim` values). Linears, and attention over several rows, use up to `threads`
    /// threads. The fastest instruction set runs it; every one gives the same bits.
    pub fn forward(
        &self,
        x: &mut [f32],
        caches: &mut [KvCache<'_>],
        capacity: usize,
        position: usize,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        self.forward_on(Isa::best(), x, caches, capacity, position, turns, threads)
    }

    /// [`Int8Transformer::forward`] on a chosen instruction set (for tests and benchmarks).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_on(
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
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(shape_error(
                "x (rows of d_model)",
                x.len().div_ceil(d).max(1) * d,
                x.len(),
            ));
        }
        let rows = x.len() / d;
        check("caches (one per layer)", self.layers.len(), caches.len())?;
        check("turns (head_dim per row)", rows * hd, turns.len())?;
        if position + rows > capacity {
            return Err(KernelError::InvalidArgument {
                what: "position",
                value: format!(
                    "{rows} rows from {position} do not fit a cache of {capacity} positions"
                ),
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
        let at = Span {
            capacity,
            position,
            rows,
        };
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 support was checked just above.
            Isa::Avx2 => unsafe { self.forward_avx2(x, caches, at, turns, threads) },
            _ => self.forward_with(isa, x, caches, at, turns, threads),
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_avx2(
        &self,
        x: &mut [f32],
        caches: &mut [KvCache<'_>],
        at: Span,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        self.forward_with(Isa::Avx2, x, caches, at, turns, threads)
    }

    #[inline(always)]
    fn forward_with(
        &self,
        isa: Isa,
        x: &mut [f32],
        caches: &mut [KvCache<'_>],
        at: Span,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        let (d, rows) = (self.d_model, at.rows);
        let mut s = Scratch {
            normed: vec![0.0; rows * d],
            qkv: vec![0.0; rows * 3 * d],
            attended: vec![0.0; rows * d],
            projected: vec![0.0; rows * d],
            hidden: vec![0.0; rows * self.ffn],
        };
        let norm = |x: &[f32], n: &Norm, out: &mut [f32]| {
            for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
                vector::layer_norm(row, &n.weight, &n.bias, n.eps, o);
            }
        };
        for (layer, cache) in self.layers.iter().zip(caches.iter_mut()) {
            norm(x, &layer.norm1, &mut s.normed);
            layer
                .in_proj
                .matmul_on(isa, &s.normed, &mut s.qkv, threads)?;
            self.attend(isa, &mut s, cache, at, turns, threads);
            layer
                .out_proj
                .matmul_on(isa, &s.attended, &mut s.projected, threads)?;
            x.iter_mut().zip(&s.projected).for_each(|(a, b)| *a += b);
            norm(x, &layer.norm2, &mut s.normed);
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

    /// Rotates q and k of every row of `s.qkv`, stores k and v at their positions, and writes
    /// each row's attention into `s.attended`; heads are split across threads when there are
    /// several rows (one row's attention is too short to pay for waking a helper).
    fn attend(
        &self,
        isa: Isa,
        s: &mut Scratch,
        cache: &mut KvCache<'_>,
        at: Span,
        turns: &[f32],
        threads: usize,
    ) {
        let (d, hd, heads) = (self.d_model, self.head_dim(), self.heads);
        for (r, row) in s.qkv.chunks_exact_mut(3 * d).enumerate() {
            let turn = &turns[r * hd..(r + 1) * hd];
            for pair in row[..2 * d].chunks_exact_mut(hd) {
                vector::rotate_pairs(pair, turn); // q and k of every head
            }
        }
        let block = at.capacity * hd;
        let mut outputs = vec![0.0f32; heads * at.rows * hd]; // head-major
        let jobs: Vec<HeadJob> = cache
            .keys
            .chunks_exact_mut(block)
            .zip(cache.values.chunks_exact_mut(block))
            .zip(outputs.chunks_exact_mut(at.rows * hd))
            .enumerate()
            .map(|(head, ((keys, values), out))| HeadJob {
                head,
                keys,
                values,
                out,
            })
            .collect();
        let qkv = &s.qkv;
        let threads = if at.rows > 1 {
            threads.clamp(1, heads)
        } else {
            1
        };
        if threads == 1 {
            for job in jobs {
                attend_head(isa, job, qkv, d, hd, at);
            }
        } else {
            let mut shares: Vec<Vec<HeadJob>> = (0..threads).map(|_| Vec::new()).collect();
            for (i, job) in jobs.into_iter().enumerate() {
                shares[i % threads].push(job);
            }
            let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = shares
                .into_iter()
                .map(|share| {
                    Box::new(move || {
                        for job in share {
                            attend_head(isa, job, qkv, d, hd, at);
                        }
                    }) as Box<dyn FnOnce() + Send>
                })
                .collect();
            match Helpers::get() {
                Some(helpers) => helpers.run(tasks),
                None => tasks.into_iter().for_each(|task| task()),
            }
        }
        for (h, out) in outputs.chunks_exact(at.rows * hd).enumerate() {
            for (r, o) in out.chunks_exact(hd).enumerate() {
                s.attended[r * d + h * hd..r * d + (h + 1) * hd].copy_from_slice(o);
            }
        }
    }
}

/// Where a call's rows go: `rows` positions from `position`, in caches of `capacity`.
#[derive(Clone, Copy)]
struct Span {
    capacity: usize,
    position: usize,
    rows: usize,
}

/// One head's share of an attention: its cache blocks `(capacity, head_dim)` and its output
/// rows `(rows, head_dim)`.
struct HeadJob<'a> {
    head: usize,
    keys: &'a mut [f32],
    values: &'a mut [f32],
    out: &'a mut [f32],
}

fn attend_head(isa: Isa, job: HeadJob<'_>, qkv: &[f32], d: usize, hd: usize, at: Span) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forward_on checked AVX2 support before any head was handed out.
        Isa::Avx2 => unsafe { attend_head_avx2(job, qkv, d, hd, at) },
        _ => attend_head_with(job, qkv, d, hd, at),
    }
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn attend_head_avx2(job: HeadJob<'_>, qkv: &[f32], d: usize, hd: usize, at: Span) {
    attend_head_with(job, qkv, d, hd, at);
}

/// Stores the head's new keys and values, then for each row r: softmax of its query against
/// keys `0..=position + r` (scaled by `1 / sqrt(head_dim)`), times the values.
#[inline(always)]
fn attend_head_with(job: HeadJob<'_>, qkv: &[f32], d: usize, hd: usize, at: Span) {
    let lane = job.head * hd..(job.head + 1) * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    for (r, row) in qkv.chunks_exact(3 * d).enumerate() {
        let slot = (at.position + r) * hd;
        job.keys[slot..slot + hd].copy_from_slice(&row[d + lane.start..d + lane.end]);
        job.values[slot..slot + hd].copy_from_slice(&row[2 * d + lane.start..2 * d + lane.end]);
    }
    let mut scores = vec![0.0f32; at.position + at.rows];
    for (r, (row, out)) in qkv
        .chunks_exact(3 * d)
        .zip(job.out.chunks_exact_mut(hd))
        .enumerate()
    {
        let seen = at.position + r + 1;
        let q = &row[lane.clone()];
        let scores = &mut scores[..seen];
        for (score, key) in scores.iter_mut().zip(job.keys.chunks_exact(hd)) {
            *score = vector::dot(q, key) * scale;
        }
        vector::softmax(scores);
        out.fill(0.0);
        for (&p, value) in scores.iter().zip(job.values.chunks_exact(hd)) {
            vector::add_scaled(out, p, value);
        }
    }
}
