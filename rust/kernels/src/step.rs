//! A pre-norm transformer over int8 or float linears, advanced by some positions of one sequence in one
//! call: FlowLM's step and text prefill, and Mimi's decoder transformer, without a framework
//! operation per norm, rotation or attention.
//!
//! Each layer computes `x += s1 * Wo Attn(RoPE(Wqkv LN1(x)))`, then `x += s2 * W2 GELU(W1
//! LN2(x))`, with tanh GELU, no biases on the linears and per-channel layer scales s1, s2 where
//! the layer has them. Attention has H query heads of width `head_dim` (their concatenation,
//! the attention width A = H head_dim, need not be d_model) and G key/value heads (grouped-query
//! attention, G dividing H): `Wqkv` writes `[Q: A | K: G head_dim | V: G head_dim]` per row and
//! query head h reads kv head `h / (H / G)`, contiguous groups. Keys (rotated) and values of the
//! new positions are written into the caller's caches, laid out `(kv_heads, slots, head_dim)`,
//! and each query attends causally with scale `1 / sqrt(head_dim)`:
//! - without a context (FlowLM), to every position up to its own; position p sits in slot p;
//! - with a context c (Mimi), to the last c positions up to its own; the cache is a ring of c
//!   slots, position p in slot p mod c. Rows are written and attended one after another, so a
//!   row's new position only replaces one that has left every later row's window too.

use std::sync::Arc;

use crate::error::{check_len, KernelError, Result};
use crate::isa::Isa;
use crate::linear::Linear;
use crate::pool;
use crate::vector;

/// A layer norm's affine parameters and epsilon.
#[derive(Debug, Clone)]
pub struct Norm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

/// Per-channel scales of a layer's two residual branches.
#[derive(Debug, Clone)]
pub struct LayerScale {
    pub attention: Vec<f32>,
    pub feed_forward: Vec<f32>,
}

/// One layer's weights. Matrices are shared (`Arc`) with whoever else multiplies by them.
#[derive(Debug)]
pub struct Layer<M: Linear> {
    pub norm1: Norm,
    /// `(A + 2 G head_dim, d)`: queries, keys, values stacked.
    pub in_proj: Arc<M>,
    /// `(d, A)`.
    pub out_proj: Arc<M>,
    pub norm2: Norm,
    pub linear1: Arc<M>,
    pub linear2: Arc<M>,
    pub layer_scale: Option<LayerScale>,
}

/// One layer's cache: keys and values, each `(kv_heads, slots, head_dim)` row-major.
pub struct KvCache<'a> {
    pub keys: &'a mut [f32],
    pub values: &'a mut [f32],
}

/// One sequence's place in a batched step (`Transformer::forward_rows`): its caches (one per
/// layer) of `capacity` slots, and the position its row takes.
pub struct RowCaches<'a, 'b> {
    pub caches: &'b mut [KvCache<'a>],
    pub capacity: usize,
    pub position: usize,
}

/// The layers of a transformer, its head count and attention context, checked to fit together.
#[derive(Debug)]
pub struct Transformer<M: Linear> {
    layers: Vec<Layer<M>>,
    d_model: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    ffn: usize,
    context: Option<usize>,
}

fn check_norm(norm: &Norm, d: usize) -> Result<()> {
    check_len("norm weight", d, norm.weight.len())?;
    check_len("norm bias", d, norm.bias.len())
}

/// Scratch rows of one call, reused by every layer.
struct Scratch {
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    hidden: Vec<f32>,
}

impl<M: Linear> Transformer<M> {
    /// Checks that every layer has the shapes of a `d_model`-wide transformer with `heads`
    /// query heads of even width (pairs for the rotation), their width the attention width
    /// (`out_proj`'s columns) over `heads`, `kv_heads` key/value heads dividing `heads`, and one
    /// feed-forward width. `context`: how many positions a query sees (its own included)
    /// through a ring cache of that many slots, or None for every position since the start.
    pub fn new(
        layers: Vec<Layer<M>>,
        heads: usize,
        kv_heads: usize,
        context: Option<usize>,
    ) -> Result<Self> {
        if context == Some(0) {
            return Err(KernelError::InvalidArgument {
                what: "context",
                value: "0".into(),
            });
        }
        let first = layers.first().ok_or(KernelError::InvalidArgument {
            what: "layers",
            value: "none given".into(),
        })?;
        let d = first.in_proj.cols();
        let attn = first.out_proj.cols();
        let ffn = first.linear1.rows();
        if heads == 0 || !attn.is_multiple_of(heads) || !(attn / heads).is_multiple_of(2) {
            return Err(KernelError::InvalidArgument {
                what: "heads",
                value: format!(
                    "{heads} heads do not split the attention width {attn} into even widths"
                ),
            });
        }
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(KernelError::InvalidArgument {
                what: "kv_heads",
                value: format!("{kv_heads} key/value heads do not divide {heads} query heads"),
            });
        }
        let head_dim = attn / heads;
        for layer in &layers {
            check_len(
                "in_proj rows",
                attn + 2 * kv_heads * head_dim,
                layer.in_proj.rows(),
            )?;
            check_len("in_proj cols", d, layer.in_proj.cols())?;
            check_len("out_proj rows", d, layer.out_proj.rows())?;
            check_len("out_proj cols", attn, layer.out_proj.cols())?;
            check_len("linear1 rows", ffn, layer.linear1.rows())?;
            check_len("linear1 cols", d, layer.linear1.cols())?;
            check_len("linear2 rows", d, layer.linear2.rows())?;
            check_len("linear2 cols", ffn, layer.linear2.cols())?;
            check_norm(&layer.norm1, d)?;
            check_norm(&layer.norm2, d)?;
            if let Some(scale) = &layer.layer_scale {
                check_len("layer scale", d, scale.attention.len())?;
                check_len("layer scale", d, scale.feed_forward.len())?;
            }
        }
        Ok(Self {
            layers,
            d_model: d,
            heads,
            kv_heads,
            head_dim,
            ffn,
            context,
        })
    }

    pub fn d_model(&self) -> usize {
        self.d_model
    }

    pub fn heads(&self) -> usize {
        self.heads
    }

    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Values of one row of `in_proj`'s output: queries, keys and values.
    fn qkv_width(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }

    /// Advances `x` (`t` rows of `d_model` values, in place) through every layer at positions
    /// `position..position + t`, writing those positions' keys and values into `caches` (one
    /// per layer, each of `slots` slots: the capacity without a context, the context with one);
    /// row r attends to position `position + r` and those before it in its window. `turns`
    /// holds each row's rotation, `[cos, sin]` per pair of a head (`t * head_dim` values).
    /// Linears, and attention over several rows, use up to `threads` threads. The fastest
    /// instruction set runs it; every one gives the same bits.
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

    /// [`Transformer::forward`] on a chosen instruction set (for tests and benchmarks).
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
            return Err(KernelError::ShapeMismatch {
                what: "x (rows of d_model)",
                expected: x.len().div_ceil(d).max(1) * d,
                actual: x.len(),
            });
        }
        let rows = x.len() / d;
        check_len("caches (one per layer)", self.layers.len(), caches.len())?;
        check_len("turns (head_dim per row)", rows * hd, turns.len())?;
        match self.context {
            Some(context) => check_len("cache slots (the context)", context, capacity)?,
            None if position + rows > capacity => {
                return Err(KernelError::InvalidArgument {
                    what: "position",
                    value: format!(
                        "{rows} rows from {position} do not fit a cache of {capacity} positions"
                    ),
                })
            }
            None => {}
        }
        for cache in caches.iter() {
            check_len(
                "cached keys",
                self.kv_heads * capacity * hd,
                cache.keys.len(),
            )?;
            check_len(
                "cached values",
                self.kv_heads * capacity * hd,
                cache.values.len(),
            )?;
        }
        isa.require()?;
        let at = Span {
            capacity,
            position,
            rows,
            ring: self.context.is_some(),
        };
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 support was checked just above.
            Isa::Avx2 => unsafe { self.forward_avx2(x, caches, at, turns, threads) },
            _ => self.forward_with(isa, x, caches, at, turns, threads),
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
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
        self.layers_with(isa, x, false, threads, |i, s| {
            self.attend(
                isa,
                &mut s.qkv,
                &mut s.attended,
                &mut caches[i],
                at,
                turns,
                threads,
            );
        })
    }

    /// Every layer over the rows of `x` (in place): norms, linears (`rows_exact`: each row's
    /// outputs the bits of that row alone, `Linear::matmul_rows_on`), GELU and residuals here;
    /// `attend(layer, scratch)` turns `scratch.qkv` into `scratch.attended` with the caches.
    #[inline(always)]
    fn layers_with(
        &self,
        isa: Isa,
        x: &mut [f32],
        rows_exact: bool,
        threads: usize,
        mut attend: impl FnMut(usize, &mut Scratch),
    ) -> Result<()> {
        let d = self.d_model;
        let rows = x.len() / d;
        let mut s = Scratch {
            normed: vec![0.0; rows * d],
            qkv: vec![0.0; rows * self.qkv_width()],
            attended: vec![0.0; rows * self.heads * self.head_dim],
            projected: vec![0.0; rows * d],
            hidden: vec![0.0; rows * self.ffn],
        };
        let norm = |x: &[f32], n: &Norm, out: &mut [f32]| {
            for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
                vector::layer_norm(row, &n.weight, &n.bias, n.eps, o);
            }
        };
        let product = |m: &M, x: &[f32], out: &mut [f32]| {
            if rows_exact {
                m.matmul_rows_on(isa, x, out, threads)
            } else {
                m.matmul_on(isa, x, out, threads)
            }
        };
        for (i, layer) in self.layers.iter().enumerate() {
            norm(x, &layer.norm1, &mut s.normed);
            product(&layer.in_proj, &s.normed, &mut s.qkv)?;
            attend(i, &mut s);
            product(&layer.out_proj, &s.attended, &mut s.projected)?;
            let scale = layer.layer_scale.as_ref();
            add_residual(x, &s.projected, scale.map(|s| &s.attention[..]));
            norm(x, &layer.norm2, &mut s.normed);
            product(&layer.linear1, &s.normed, &mut s.hidden)?;
            vector::gelu_tanh(&mut s.hidden);
            product(&layer.linear2, &s.hidden, &mut s.projected)?;
            add_residual(x, &s.projected, scale.map(|s| &s.feed_forward[..]));
        }
        Ok(())
    }

    /// Advances one row of each of several sequences by one position each, together: `x` holds
    /// `rows.len()` rows of `d_model` values (in place), row b at position `rows[b].position` of
    /// its own caches (one per layer, `rows[b].capacity` slots each). The linears take all rows
    /// at once (each weight read once for the batch) with every row's outputs the bits of a
    /// product of that row alone, and each row attends over its own cache only, so a row comes
    /// out exactly as `forward` would make it alone, whatever rows share the call. `turns`:
    /// each row's rotation (`rows.len() * head_dim` values).
    pub fn forward_rows(
        &self,
        x: &mut [f32],
        rows: &mut [RowCaches<'_, '_>],
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        self.forward_rows_on(Isa::best(), x, rows, turns, threads)
    }

    /// [`Transformer::forward_rows`] on a chosen instruction set.
    pub fn forward_rows_on(
        &self,
        isa: Isa,
        x: &mut [f32],
        rows: &mut [RowCaches<'_, '_>],
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        let counts = vec![1; rows.len()];
        self.forward_seqs_on(isa, x, rows, &counts, true, turns, threads)
    }

    /// Advances several sequences together, each by its own run of rows (a batch of
    /// prefills): `x` holds `counts[b]` rows for sequence b, one sequence after another (in
    /// place), sequence b's rows at positions `rows[b].position..` of its own caches. The
    /// linears take all rows at once (each weight read once for the batch), each sequence's
    /// rows attend over its own caches, as `forward` would advance it alone; each row's
    /// outputs are the bits of `forward` alone because every run is of two rows or more (a
    /// product quantizes several rows alike, one row finer), which this checks when there
    /// are several sequences. `turns`: each row's rotation, in the order of `x`.
    pub fn forward_spans(
        &self,
        x: &mut [f32],
        rows: &mut [RowCaches<'_, '_>],
        counts: &[usize],
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        self.forward_spans_on(Isa::best(), x, rows, counts, turns, threads)
    }

    /// [`Transformer::forward_spans`] on a chosen instruction set.
    pub fn forward_spans_on(
        &self,
        isa: Isa,
        x: &mut [f32],
        rows: &mut [RowCaches<'_, '_>],
        counts: &[usize],
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        check_len("counts (one per sequence)", rows.len(), counts.len())?;
        if let Some(&n) = counts
            .iter()
            .find(|&&n| n == 0 || (n == 1 && counts.len() > 1))
        {
            return Err(KernelError::InvalidArgument {
                what: "rows of a sequence among several",
                value: format!("{n} (each must be two or more)"),
            });
        }
        self.forward_seqs_on(isa, x, rows, counts, false, turns, threads)
    }

    #[allow(clippy::too_many_arguments)]
    fn forward_seqs_on(
        &self,
        isa: Isa,
        x: &mut [f32],
        rows: &mut [RowCaches<'_, '_>],
        counts: &[usize],
        rows_exact: bool,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        let (d, hd) = (self.d_model, self.head_dim());
        let total: usize = counts.iter().sum();
        check_len("x (the sequences' rows of d_model)", total * d, x.len())?;
        check_len("turns (head_dim per row)", total * hd, turns.len())?;
        if rows.is_empty() {
            return Ok(());
        }
        for (row, &n) in rows.iter().zip(counts) {
            check_len(
                "caches (one per layer)",
                self.layers.len(),
                row.caches.len(),
            )?;
            match self.context {
                Some(context) => check_len("cache slots (the context)", context, row.capacity)?,
                None if row.position + n > row.capacity => {
                    return Err(KernelError::InvalidArgument {
                        what: "position",
                        value: format!(
                            "{n} rows from {} do not fit a cache of {} positions",
                            row.position, row.capacity
                        ),
                    })
                }
                None => {}
            }
            for cache in row.caches.iter() {
                let slots = self.kv_heads * row.capacity * hd;
                check_len("cached keys", slots, cache.keys.len())?;
                check_len("cached values", slots, cache.values.len())?;
            }
        }
        isa.require()?;
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 support was checked just above.
            Isa::Avx2 => unsafe {
                self.forward_seqs_avx2(x, rows, counts, rows_exact, turns, threads)
            },
            _ => self.forward_seqs_with(isa, x, rows, counts, rows_exact, turns, threads),
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_seqs_avx2(
        &self,
        x: &mut [f32],
        rows: &mut [RowCaches<'_, '_>],
        counts: &[usize],
        rows_exact: bool,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        self.forward_seqs_with(Isa::Avx2, x, rows, counts, rows_exact, turns, threads)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn forward_seqs_with(
        &self,
        isa: Isa,
        x: &mut [f32],
        rows: &mut [RowCaches<'_, '_>],
        counts: &[usize],
        rows_exact: bool,
        turns: &[f32],
        threads: usize,
    ) -> Result<()> {
        let (hd, width, attn) = (self.head_dim, self.qkv_width(), self.heads * self.head_dim);
        let ring = self.context.is_some();
        self.layers_with(isa, x, rows_exact, threads, |i, s| {
            let mut first = 0;
            for (row, &n) in rows.iter_mut().zip(counts) {
                let at = Span {
                    capacity: row.capacity,
                    position: row.position,
                    rows: n,
                    ring,
                };
                let span = first..first + n;
                self.attend(
                    isa,
                    &mut s.qkv[span.start * width..span.end * width],
                    &mut s.attended[span.start * attn..span.end * attn],
                    &mut row.caches[i],
                    at,
                    &turns[span.start * hd..span.end * hd],
                    threads,
                );
                first += n;
            }
        })
    }

    /// Rotates q and k of every row of `s.qkv`, stores k and v at their positions, and writes
    /// each row's attention into `s.attended`; kv heads (with the query heads they serve) are
    /// split across threads when there are several rows (one row's attention is too short to
    /// pay for waking a helper).
    #[allow(clippy::too_many_arguments)]
    fn attend(
        &self,
        isa: Isa,
        qkv: &mut [f32],
        attended: &mut [f32],
        cache: &mut KvCache<'_>,
        at: Span,
        turns: &[f32],
        threads: usize,
    ) {
        let hd = self.head_dim;
        let lanes = Lanes {
            width: self.qkv_width(),
            head_dim: hd,
            keys: self.heads * hd,
            values: (self.heads + self.kv_heads) * hd,
            group: self.heads / self.kv_heads,
        };
        let rotated = lanes.values; // queries and keys
        for (r, row) in qkv.chunks_exact_mut(lanes.width).enumerate() {
            let turn = &turns[r * hd..(r + 1) * hd];
            for pair in row[..rotated].chunks_exact_mut(hd) {
                vector::rotate_pairs(pair, turn); // q of every head, k of every kv head
            }
        }
        let block = at.capacity * hd;
        let group_out = lanes.group * at.rows * hd;
        let mut outputs = vec![0.0f32; self.heads * at.rows * hd]; // head-major
        let jobs: Vec<HeadJob> = cache
            .keys
            .chunks_exact_mut(block)
            .zip(cache.values.chunks_exact_mut(block))
            .zip(outputs.chunks_exact_mut(group_out))
            .enumerate()
            .map(|(kv_head, ((keys, values), out))| HeadJob {
                kv_head,
                keys,
                values,
                out,
            })
            .collect();
        let qkv = &*qkv;
        let threads = if at.rows > 1 {
            threads.clamp(1, self.kv_heads)
        } else {
            1
        };
        if threads == 1 {
            for job in jobs {
                attend_head(isa, job, qkv, lanes, at);
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
                            attend_head(isa, job, qkv, lanes, at);
                        }
                    }) as Box<dyn FnOnce() + Send>
                })
                .collect();
            pool::run_all(tasks);
        }
        let attn = self.heads * hd;
        for (h, out) in outputs.chunks_exact(at.rows * hd).enumerate() {
            for (r, o) in out.chunks_exact(hd).enumerate() {
                attended[r * attn + h * hd..r * attn + (h + 1) * hd].copy_from_slice(o);
            }
        }
    }
}

/// `x += branch`, times a per-channel scale where given (rows of the scale's width).
#[inline(always)]
fn add_residual(x: &mut [f32], branch: &[f32], scale: Option<&[f32]>) {
    match scale {
        None => x.iter_mut().zip(branch).for_each(|(a, b)| *a += b),
        Some(s) => {
            for (row, out) in x
                .chunks_exact_mut(s.len())
                .zip(branch.chunks_exact(s.len()))
            {
                for ((a, &b), &c) in row.iter_mut().zip(out).zip(s) {
                    *a += c * b;
                }
            }
        }
    }
}

/// Where a call's rows go: `rows` positions from `position`, in caches of `capacity` slots,
/// a ring (slot = position mod capacity, a query sees every filled slot) or not (slot =
/// position, a query sees slots up to its own).
#[derive(Clone, Copy)]
struct Span {
    capacity: usize,
    position: usize,
    rows: usize,
    ring: bool,
}

impl Span {
    /// The slot that holds position p.
    fn slot(&self, p: usize) -> usize {
        if self.ring {
            p % self.capacity
        } else {
            p
        }
    }

    /// The slot of row r's position, and how many slots its query reads from slot 0.
    fn slots(&self, r: usize) -> (usize, usize) {
        let p = self.position + r;
        let seen = if self.ring {
            (p + 1).min(self.capacity)
        } else {
            p + 1
        };
        (self.slot(p), seen)
    }
}

/// Where a row of `in_proj`'s output holds what: `width` values, query head h at
/// `h * head_dim`, kv head g's key at `keys + g * head_dim` and value at `values + g *
/// head_dim`; `group` query heads per kv head.
#[derive(Clone, Copy)]
struct Lanes {
    width: usize,
    head_dim: usize,
    keys: usize,
    values: usize,
    group: usize,
}

impl Lanes {
    fn query(&self, head: usize) -> std::ops::Range<usize> {
        head * self.head_dim..(head + 1) * self.head_dim
    }

    fn key(&self, kv_head: usize) -> std::ops::Range<usize> {
        let at = self.keys + kv_head * self.head_dim;
        at..at + self.head_dim
    }

    fn value(&self, kv_head: usize) -> std::ops::Range<usize> {
        let at = self.values + kv_head * self.head_dim;
        at..at + self.head_dim
    }
}

/// One kv head's share of an attention: its cache blocks `(capacity, head_dim)` and the
/// output rows `(group, rows, head_dim)` of the query heads it serves.
struct HeadJob<'a> {
    kv_head: usize,
    keys: &'a mut [f32],
    values: &'a mut [f32],
    out: &'a mut [f32],
}

fn attend_head(isa: Isa, job: HeadJob<'_>, qkv: &[f32], lanes: Lanes, at: Span) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forward_on checked AVX2 support before any head was handed out.
        Isa::Avx2 => unsafe { attend_head_avx2(job, qkv, lanes, at) },
        _ => attend_head_with(job, qkv, lanes, at),
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_head_avx2(job: HeadJob<'_>, qkv: &[f32], lanes: Lanes, at: Span) {
    attend_head_with(job, qkv, lanes, at);
}

/// One row: stores its key and value in their slot, then, for each query head of the group,
/// the softmax of its query against the keys it sees (scaled by `1 / sqrt(head_dim)`) times
/// their values. Several rows: as if one after another, through `attend_rows`.
#[inline(always)]
fn attend_head_with(job: HeadJob<'_>, qkv: &[f32], lanes: Lanes, at: Span) {
    if at.rows > 1 {
        return attend_rows(job, qkv, lanes, at);
    }
    let hd = lanes.head_dim;
    let (slot, seen) = at.slots(0);
    let at_slot = slot * hd..(slot + 1) * hd;
    job.keys[at_slot.clone()].copy_from_slice(&qkv[lanes.key(job.kv_head)]);
    job.values[at_slot].copy_from_slice(&qkv[lanes.value(job.kv_head)]);
    let scale = 1.0 / (hd as f32).sqrt();
    let mut scores = vec![0.0f32; seen];
    for (g, out) in job.out.chunks_exact_mut(hd).enumerate() {
        let q = &qkv[lanes.query(job.kv_head * lanes.group + g)];
        for (s, key) in scores.iter_mut().zip(job.keys.chunks_exact(hd)) {
            *s = vector::dot(q, key) * scale;
        }
        vector::softmax(&mut scores);
        out.fill(0.0);
        for (&p, value) in scores.iter().zip(job.values.chunks_exact(hd)) {
            vector::add_scaled(out, p, value);
        }
    }
}

/// Keys scored per block: four registers of eight, four independent sums in flight.
const KEY_BLOCK: usize = 32;

/// Several rows of one head. The keys each row sees are laid out once, in position order:
/// the cached ones still in the first row's window, then the new rows' own; row r sees a
/// contiguous run of them ending at its own. Keys are transposed (`hd` rows of keys) so a
/// block of keys is scored with plain vector products, `KEY_BLOCK` at a time; every sum runs
/// over the head dimension (scores) or the keys (outputs) in order, so the bits match the
/// one-row path's order of operations per row only up to float rounding, but are the same on
/// every instruction set. The new keys and values are stored last: a ring's overwritten slots
/// have left every row's window by then.
#[inline(always)]
fn attend_rows(job: HeadJob<'_>, qkv: &[f32], lanes: Lanes, at: Span) {
    let hd = lanes.head_dim;
    let (key_lane, value_lane) = (lanes.key(job.kv_head), lanes.value(job.kv_head));
    let first = at.position;
    let oldest = if at.ring {
        (first + 1).saturating_sub(at.capacity)
    } else {
        0
    };
    let old = oldest..first; // cached positions the first row sees
    let n = old.len() + at.rows;
    let stride = n.div_ceil(KEY_BLOCK) * KEY_BLOCK;
    let slot = |p: usize| at.slot(p);
    // keys transposed (hd, stride), zero padded; values in order (n, hd)
    let mut keys_t = vec![0.0f32; hd * stride];
    let mut values = Vec::with_capacity(n * hd);
    let new_rows = qkv.chunks_exact(lanes.width);
    let key_rows = old
        .clone()
        .map(|p| &job.keys[slot(p) * hd..(slot(p) + 1) * hd])
        .chain(new_rows.clone().map(|row| &row[key_lane.clone()]));
    for (j, key) in key_rows.enumerate() {
        for (i, &k) in key.iter().enumerate() {
            keys_t[i * stride + j] = k;
        }
    }
    for p in old.clone() {
        values.extend_from_slice(&job.values[slot(p) * hd..(slot(p) + 1) * hd]);
    }
    for row in new_rows.clone() {
        values.extend_from_slice(&row[value_lane.clone()]);
    }
    // row r sees positions (p - capacity, p] of a ring, [0, p] otherwise: keys start..end
    let seen = |r: usize| {
        let start = if at.ring {
            (first + r + 1).saturating_sub(at.capacity).max(oldest) - oldest
        } else {
            0
        };
        start..old.len() + r + 1
    };
    let mut scores = vec![0.0f32; at.rows * stride];
    for (g, out) in job.out.chunks_exact_mut(at.rows * hd).enumerate() {
        let lane = lanes.query(job.kv_head * lanes.group + g);
        let queries: Vec<&[f32]> = new_rows.clone().map(|row| &row[lane.clone()]).collect();
        attend_query_head(
            &queries,
            &keys_t,
            &values,
            &mut scores,
            out,
            stride,
            n,
            hd,
            &seen,
        );
    }
    for (r, row) in new_rows.enumerate() {
        let s = slot(first + r);
        job.keys[s * hd..(s + 1) * hd].copy_from_slice(&row[key_lane.clone()]);
        job.values[s * hd..(s + 1) * hd].copy_from_slice(&row[value_lane.clone()]);
    }
}

/// One query head over several rows: `queries` (a row each), the keys transposed `(hd,
/// stride)` and the values `(n, hd)` every row may see, row r seeing keys `seen(r)`; writes
/// each row's output into `out` `(rows, hd)`, `scores` `(rows, stride)` as scratch.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn attend_query_head<F: Fn(usize) -> std::ops::Range<usize>>(
    queries: &[&[f32]],
    keys_t: &[f32],
    values: &[f32],
    scores: &mut [f32],
    out: &mut [f32],
    stride: usize,
    n: usize,
    hd: usize,
    seen: &F,
) {
    // block by block of keys, every row that sees some of it (the block stays in L1)
    let scale = 1.0 / (hd as f32).sqrt();
    for block in (0..n).step_by(KEY_BLOCK) {
        for (r, q) in queries.iter().enumerate() {
            let range = seen(r);
            if block >= range.end || block + KEY_BLOCK <= range.start {
                continue;
            }
            let sums = score_block(q, keys_t, stride, block);
            let row = &mut scores[r * stride + block..r * stride + block + KEY_BLOCK];
            for (s, v) in row.iter_mut().zip(sums) {
                *s = v * scale;
            }
        }
    }
    for (r, weights) in scores.chunks_exact_mut(stride).enumerate() {
        vector::softmax(&mut weights[seen(r)]);
    }
    // and values block by block, each row's output summed over its keys in order
    out.fill(0.0);
    for block in (0..n).step_by(KEY_BLOCK) {
        for (r, out) in out.chunks_exact_mut(hd).enumerate() {
            let range = seen(r);
            let (from, to) = (block.max(range.start), (block + KEY_BLOCK).min(range.end));
            if from < to {
                let weights = &scores[r * stride + from..r * stride + to];
                weighted_sum(out, weights, &values[from * hd..to * hd]);
            }
        }
    }
}

/// `q . key_j` for the `KEY_BLOCK` keys from `block`, from keys stored transposed.
#[inline(always)]
fn score_block(q: &[f32], keys_t: &[f32], stride: usize, block: usize) -> [f32; KEY_BLOCK] {
    let mut acc = [0.0f32; KEY_BLOCK];
    for (i, &qi) in q.iter().enumerate() {
        let keys = &keys_t[i * stride + block..i * stride + block + KEY_BLOCK];
        for (a, &k) in acc.iter_mut().zip(keys) {
            *a += qi * k;
        }
    }
    acc
}

/// `out += sum_j weights[j] * values[j]`, in order of j, four values per pass over `out`.
#[inline(always)]
fn weighted_sum(out: &mut [f32], weights: &[f32], values: &[f32]) {
    let hd = out.len();
    let mut quads = weights.chunks_exact(4).zip(values.chunks_exact(4 * hd));
    for (w, v) in &mut quads {
        let (v0, rest) = v.split_at(hd);
        let (v1, rest) = rest.split_at(hd);
        let (v2, v3) = rest.split_at(hd);
        for i in 0..hd {
            out[i] = (((out[i] + w[0] * v0[i]) + w[1] * v1[i]) + w[2] * v2[i]) + w[3] * v3[i];
        }
    }
    let done = weights.len() / 4 * 4;
    for (&w, v) in weights[done..]
        .iter()
        .zip(values[done * hd..].chunks_exact(hd))
    {
        vector::add_scaled(out, w, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Several rows through `attend_rows` equal the rows one at a time through the one-row
    /// path, to rounding: the same keys in the same cache slots, the same outputs; with plain
    /// and grouped kv heads.
    #[test]
    fn several_rows_attend_as_one_row_after_another() {
        let hd = 16usize;
        for (heads, kv_heads) in [(2usize, 2usize), (6, 2), (3, 1)] {
            let lanes = Lanes {
                width: (heads + 2 * kv_heads) * hd,
                head_dim: hd,
                keys: heads * hd,
                values: (heads + kv_heads) * hd,
                group: heads / kv_heads,
            };
            for (ring, capacity, position, rows) in [
                (false, 100, 0, 45),
                (false, 100, 30, 21),
                (true, 37, 0, 45),
                (true, 37, 50, 40),
                (true, 37, 10, 3),
            ] {
                let qkv = pseudo(rows * lanes.width, 1);
                let mut keys = pseudo(kv_heads * capacity * hd, 2);
                let mut values = pseudo(kv_heads * capacity * hd, 3);
                let (mut keys_one, mut values_one) = (keys.clone(), values.clone());
                let group_out = lanes.group * rows * hd;
                let mut out = vec![0.0; heads * rows * hd];
                let mut out_one = vec![0.0; heads * rows * hd];
                let at = Span {
                    capacity,
                    position,
                    rows,
                    ring,
                };
                for g in 0..kv_heads {
                    let block = g * capacity * hd..(g + 1) * capacity * hd;
                    let job = HeadJob {
                        kv_head: g,
                        keys: &mut keys[block.clone()],
                        values: &mut values[block.clone()],
                        out: &mut out[g * group_out..(g + 1) * group_out],
                    };
                    attend_head(Isa::Portable, job, &qkv, lanes, at);
                    for r in 0..rows {
                        let one = Span {
                            position: position + r,
                            rows: 1,
                            ..at
                        };
                        let mut row_out = vec![0.0; lanes.group * hd];
                        let job = HeadJob {
                            kv_head: g,
                            keys: &mut keys_one[block.clone()],
                            values: &mut values_one[block.clone()],
                            out: &mut row_out,
                        };
                        let row = &qkv[r * lanes.width..(r + 1) * lanes.width];
                        attend_head(Isa::Portable, job, row, lanes, one);
                        for (q, o) in row_out.chunks_exact(hd).enumerate() {
                            let at = g * group_out + (q * rows + r) * hd;
                            out_one[at..at + hd].copy_from_slice(o);
                        }
                    }
                }
                assert_eq!(keys, keys_one);
                assert_eq!(values, values_one);
                for (a, b) in out.iter().zip(&out_one) {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{heads}/{kv_heads} {ring} {position} {rows}: {a} {b}"
                    );
                }
            }
        }
    }
}
