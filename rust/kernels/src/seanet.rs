//! Mimi's SEANet decoder, streaming, in one call: the causal convolutions, transposed
//! convolutions, ELUs and residual blocks that turn the decoder transformer's output (200 Hz
//! features) into 24 kHz samples, with the state each layer carries between calls.
//!
//! Activations are time-major: `(steps, channels)` rows, so a convolution is one matrix product
//! of its input windows and a transposed convolution one product of its input rows (`outer`:
//! these rows are short, so the weights are kept input by input, copied from PyTorch's layout).
//! - [`Conv`]: stride 1, kernel k, dilation d, zeros before the first step. Each output row is
//!   `W [x(t) | x(t + d) | ... | x(t + (k-1) d)] + b` over the input padded with the `(k-1) d`
//!   rows the previous call left (the window's taps in order, each `c_in` wide: the weight's
//!   columns are laid out tap by tap).
//! - [`ConvTranspose`]: stride s, kernel 2s. Input row t contributes `Z(t) = W x(t)`, `2s`
//!   rows of `c_out`; output row `t s + j` (j < s) is `Z(t)[j] + Z(t-1)[j + s] + b`; the last
//!   input row's second half is carried to the next call.
//! - [`Stage::Residual`]: `x + conv_1(elu(conv_k(elu(x))))`.
//!
//! Every output sums its inputs in one fixed order, so every instruction set gives the same
//! bits, and a stream cut into calls anywhere gives the bits of one call (each output row
//! depends only on its inputs, not on the call it falls in).

use std::sync::Arc;

use crate::activation;
use crate::error::{check_len, KernelError, Result};
use crate::int8::Int8Matrix;
use crate::isa::Isa;
use crate::linear::Linear;
use crate::outer::{matmul_kn, Rows};

/// The product of `rows` (contiguous, `m` of `cols`) with `w`, into `out` (`m` of `w.rows()`),
/// each row's outputs those of that row alone: a stream cut into calls anywhere keeps its bits.
fn int8_product(isa: Isa, w: &Int8Matrix, rows: &[f32], out: &mut [f32]) {
    w.matmul_rows_on(isa, rows, out, 1)
        .expect("shapes checked when the decoder was built");
}

/// A causal stride-1 convolution: `wt` is `(kernel * c_in, c_out)`, input rows tap by tap, or
/// (after [`Conv::quantized`]) `int8` holds those weights, one int8 row per output.
#[derive(Debug, Clone)]
pub struct Conv {
    wt: Arc<Vec<f32>>,
    int8: Option<Arc<Int8Matrix>>,
    bias: Option<Vec<f32>>,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    dilation: usize,
}

impl Conv {
    /// From PyTorch's layout: `weight` `(c_out, c_in, kernel)` row-major, `bias` `c_out`.
    pub fn from_torch(
        weight: &[f32],
        c_out: usize,
        c_in: usize,
        kernel: usize,
        dilation: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        Self::check(weight, c_out, c_in, kernel, dilation, bias.as_deref())?;
        let mut wt = vec![0.0; weight.len()];
        for o in 0..c_out {
            for c in 0..c_in {
                for j in 0..kernel {
                    wt[(j * c_in + c) * c_out + o] = weight[(o * c_in + c) * kernel + j];
                }
            }
        }
        Ok(Self {
            wt: Arc::new(wt),
            int8: None,
            bias,
            c_in,
            c_out,
            kernel,
            dilation,
        })
    }

    /// As [`Conv::from_torch`], with int8 weights (one scale per output) and activations (one
    /// scale per window): worth it where each output sums many terms (`kernel * c_in`), as
    /// the PyTorch path's int8 convolutions. No float copy of the weights is kept.
    pub fn int8_from_torch(
        weight: &[f32],
        c_out: usize,
        c_in: usize,
        kernel: usize,
        dilation: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<Self> {
        Self::check(weight, c_out, c_in, kernel, dilation, bias.as_deref())?;
        // one row per output, its window's taps in order (as `forward` gathers them)
        let mut rows = vec![0.0; weight.len()];
        for (row, w) in rows
            .chunks_exact_mut(c_in * kernel)
            .zip(weight.chunks_exact(c_in * kernel))
        {
            for c in 0..c_in {
                for j in 0..kernel {
                    row[j * c_in + c] = w[c * kernel + j];
                }
            }
        }
        let int8 = Int8Matrix::quantize(&rows, c_out, c_in * kernel, bias.as_deref())?;
        Ok(Self {
            wt: Arc::new(Vec::new()),
            int8: Some(Arc::new(int8)),
            bias,
            c_in,
            c_out,
            kernel,
            dilation,
        })
    }

    fn check(
        weight: &[f32],
        c_out: usize,
        c_in: usize,
        kernel: usize,
        dilation: usize,
        bias: Option<&[f32]>,
    ) -> Result<()> {
        if [c_out, c_in, kernel, dilation].contains(&0) {
            return Err(KernelError::InvalidArgument {
                what: "conv",
                value: format!("c_out {c_out}, c_in {c_in}, kernel {kernel}, dilation {dilation}"),
            });
        }
        check_len(
            "conv weight (c_out c_in kernel)",
            c_out * c_in * kernel,
            weight.len(),
        )?;
        if let Some(b) = bias {
            check_len("conv bias", c_out, b.len())?;
        }
        Ok(())
    }

    /// Whether the weights are int8.
    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    /// Input rows carried from one call to the next.
    fn context(&self) -> usize {
        (self.kernel - 1) * self.dilation
    }

    /// `x` (rows of c_in) -> the output rows (of c_out), the carried rows updated.
    fn forward(&self, isa: Isa, x: &[f32], carried: &mut [f32]) -> Vec<f32> {
        let (c_in, context) = (self.c_in, self.context());
        let steps = x.len() / c_in;
        let mut out = vec![0.0; steps * self.c_out];
        let bias = self.bias.as_deref();
        if context == 0 {
            if let Some(w) = &self.int8 {
                int8_product(isa, w, x, &mut out);
                return out;
            }
            matmul_kn(
                isa,
                Rows::plain(x, c_in),
                &self.wt,
                self.c_out,
                bias,
                &mut out,
            );
            return out;
        }
        let mut padded = Vec::with_capacity(carried.len() + x.len());
        padded.extend_from_slice(carried);
        padded.extend_from_slice(x);
        if let Some(w) = &self.int8 {
            // each output's window gathered into one contiguous row, taps in order
            let mut windows = Vec::with_capacity(steps * self.kernel * c_in);
            for t in 0..steps {
                for j in 0..self.kernel {
                    let at = (t + j * self.dilation) * c_in;
                    windows.extend_from_slice(&padded[at..at + c_in]);
                }
            }
            int8_product(isa, w, &windows, &mut out);
            carried.copy_from_slice(&padded[padded.len() - context * c_in..]);
            return out;
        }
        let windows = Rows {
            data: &padded,
            width: c_in,
            taps: self.kernel,
            gap: self.dilation,
            count: steps,
        };
        matmul_kn(isa, windows, &self.wt, self.c_out, bias, &mut out);
        carried.copy_from_slice(&padded[padded.len() - context * c_in..]);
        out
    }
}

/// A transposed convolution of kernel `2 stride`: `wt` is `(c_in, 2 stride * c_out)`, each
/// input's outputs kernel position by kernel position; `bias` has `c_out` values.
#[derive(Debug, Clone)]
pub struct ConvTranspose {
    wt: Arc<Vec<f32>>,
    int8: Option<Arc<Int8Matrix>>,
    c_in: usize,
    stride: usize,
    bias: Vec<f32>,
}

impl ConvTranspose {
    /// From PyTorch's layout: `weight` `(c_in, c_out, 2 stride)` row-major, `bias` `c_out`.
    pub fn from_torch(
        weight: &[f32],
        c_in: usize,
        c_out: usize,
        stride: usize,
        bias: Vec<f32>,
    ) -> Result<Self> {
        Self::check(weight, c_in, c_out, stride, &bias)?;
        let kernel = 2 * stride;
        let mut wt = vec![0.0; weight.len()];
        for c in 0..c_in {
            for o in 0..c_out {
                for j in 0..kernel {
                    wt[c * kernel * c_out + j * c_out + o] = weight[(c * c_out + o) * kernel + j];
                }
            }
        }
        Ok(Self {
            wt: Arc::new(wt),
            int8: None,
            c_in,
            stride,
            bias,
        })
    }

    /// As [`ConvTranspose::from_torch`], with int8 weights (one scale per output tap) and
    /// activations (one scale per input row). No float copy of the weights is kept.
    pub fn int8_from_torch(
        weight: &[f32],
        c_in: usize,
        c_out: usize,
        stride: usize,
        bias: Vec<f32>,
    ) -> Result<Self> {
        Self::check(weight, c_in, c_out, stride, &bias)?;
        let kernel = 2 * stride;
        // one row per output tap `j c_out + o`, as `forward` lays out each input's outputs
        let mut rows = vec![0.0; weight.len()];
        for c in 0..c_in {
            for o in 0..c_out {
                for j in 0..kernel {
                    rows[(j * c_out + o) * c_in + c] = weight[(c * c_out + o) * kernel + j];
                }
            }
        }
        let int8 = Int8Matrix::quantize(&rows, kernel * c_out, c_in, None)?;
        Ok(Self {
            wt: Arc::new(Vec::new()),
            int8: Some(Arc::new(int8)),
            c_in,
            stride,
            bias,
        })
    }

    fn check(weight: &[f32], c_in: usize, c_out: usize, stride: usize, bias: &[f32]) -> Result<()> {
        if [c_in, c_out, stride].contains(&0) {
            return Err(KernelError::InvalidArgument {
                what: "conv transpose",
                value: format!("c_in {c_in}, c_out {c_out}, stride {stride}"),
            });
        }
        check_len(
            "conv transpose weight (c_in c_out 2 stride)",
            c_in * c_out * 2 * stride,
            weight.len(),
        )?;
        check_len("conv transpose bias", c_out, bias.len())
    }

    /// Whether the weights are int8.
    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    fn c_out(&self) -> usize {
        self.bias.len()
    }

    /// `x` (rows of c_in) -> `stride` output rows per input row, the carried half updated
    /// (`stride * c_out` values, without the bias).
    fn forward(&self, isa: Isa, x: &[f32], carried: &mut [f32]) -> Vec<f32> {
        let (s, c_out) = (self.stride, self.c_out());
        let steps = x.len() / self.c_in;
        let half = s * c_out;
        let mut z = vec![0.0; steps * 2 * half];
        match &self.int8 {
            Some(w) => int8_product(isa, w, x, &mut z),
            None => matmul_kn(
                isa,
                Rows::plain(x, self.c_in),
                &self.wt,
                2 * half,
                None,
                &mut z,
            ),
        }
        let mut out = vec![0.0; steps * half];
        for (t, (o, zt)) in out
            .chunks_exact_mut(half)
            .zip(z.chunks_exact(2 * half))
            .enumerate()
        {
            let before: &[f32] = if t == 0 {
                carried
            } else {
                &z[(t - 1) * 2 * half + half..t * 2 * half]
            };
            for ((o, &a), &b) in o.iter_mut().zip(&zt[..half]).zip(before) {
                *o = a + b;
            }
            for row in o.chunks_exact_mut(c_out) {
                row.iter_mut().zip(&self.bias).for_each(|(v, &b)| *v += b);
            }
        }
        if steps > 0 {
            carried.copy_from_slice(&z[(steps - 1) * 2 * half + half..]);
        }
        out
    }
}

/// One stage of the decoder, in order.
#[derive(Debug, Clone)]
pub enum Stage {
    Conv(Conv),
    Elu,
    ConvTranspose(ConvTranspose),
    /// `x + conv_1(elu(conv_k(elu(x))))`.
    Residual {
        conv_k: Conv,
        conv_1: Conv,
    },
}

/// Input steps taken through every stage together (8: 960 output samples, about 100 KB of
/// activations at the small layouts' widths).
const BLOCK_STEPS: usize = 8;

/// The carried rows of every stateful stage of one stream, in stage order.
#[derive(Debug, Clone)]
pub struct SeanetState {
    buffers: Vec<Vec<f32>>,
}

/// The decoder's stages, checked to chain: each stage's input width is the previous one's
/// output width.
#[derive(Debug)]
pub struct SeanetDecoder {
    stages: Vec<Stage>,
    c_in: usize,
    c_out: usize,
    hop: usize,
}

fn check_conv(conv: &Conv, c_in: usize) -> Result<usize> {
    check_len("conv input channels", c_in, conv.c_in)?;
    Ok(conv.c_out)
}

impl SeanetDecoder {
    pub fn new(stages: Vec<Stage>) -> Result<Self> {
        let first = stages.first().ok_or(KernelError::InvalidArgument {
            what: "stages",
            value: "none given".into(),
        })?;
        let c_in = match first {
            Stage::Conv(c) => c.c_in,
            Stage::ConvTranspose(c) => c.c_in,
            Stage::Residual { conv_k, .. } => conv_k.c_in,
            Stage::Elu => {
                return Err(KernelError::InvalidArgument {
                    what: "stages",
                    value: "the first stage must have weights".into(),
                })
            }
        };
        let (mut width, mut hop) = (c_in, 1);
        for stage in &stages {
            width = match stage {
                Stage::Conv(c) => check_conv(c, width)?,
                Stage::Elu => width,
                Stage::ConvTranspose(c) => {
                    check_len("conv transpose input channels", width, c.c_in)?;
                    hop *= c.stride;
                    c.c_out()
                }
                Stage::Residual { conv_k, conv_1 } => {
                    let hidden = check_conv(conv_k, width)?;
                    check_len(
                        "residual output channels",
                        width,
                        check_conv(conv_1, hidden)?,
                    )?;
                    width
                }
            };
        }
        Ok(Self {
            stages,
            c_in,
            c_out: width,
            hop,
        })
    }

    /// Input channels (the decoder transformer's width).
    pub fn c_in(&self) -> usize {
        self.c_in
    }

    /// Output channels (1: mono audio).
    pub fn c_out(&self) -> usize {
        self.c_out
    }

    /// Output rows per input row (120 for ratios 6, 5, 4).
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// A fresh stream's state: zeros everywhere.
    pub fn state(&self) -> SeanetState {
        let buffers = self.state_lengths().map(|n| vec![0.0; n]).collect();
        SeanetState { buffers }
    }

    /// The length of each carried buffer, in stage order.
    fn state_lengths(&self) -> impl Iterator<Item = usize> + '_ {
        let conv = |c: &Conv| c.context() * c.c_in;
        self.stages.iter().flat_map(move |stage| match stage {
            Stage::Conv(c) => vec![conv(c)],
            Stage::ConvTranspose(c) => vec![c.stride * c.c_out()],
            Stage::Residual { conv_k, conv_1 } => vec![conv(conv_k), conv(conv_1)],
            Stage::Elu => vec![],
        })
    }

    /// `x`: input rows (steps, c_in), time-major -> `steps * hop` output rows of c_out,
    /// advancing `state`, on the fastest instruction set this CPU has.
    pub fn forward(&self, x: &[f32], state: &mut SeanetState) -> Result<Vec<f32>> {
        self.forward_on(Isa::best(), x, state)
    }

    /// [`SeanetDecoder::forward`] on a chosen instruction set (for tests and benchmarks).
    pub fn forward_on(&self, isa: Isa, x: &[f32], state: &mut SeanetState) -> Result<Vec<f32>> {
        isa.require()?;
        self.check(x, state)?;
        Ok(self.run(isa, x, state))
    }

    /// Several streams at once: `xs[i]` with `states[i]`, whole streams shared out among up to
    /// `threads` threads (the calling one included), balanced by their rows. Each stream's
    /// output is the bits [`SeanetDecoder::forward`] gives it alone; every input is checked
    /// before any state advances.
    pub fn forward_batch(
        &self,
        xs: &[&[f32]],
        states: &mut [&mut SeanetState],
        threads: usize,
    ) -> Result<Vec<Vec<f32>>> {
        self.forward_batch_on(Isa::best(), xs, states, threads)
    }

    /// [`SeanetDecoder::forward_batch`] on a chosen instruction set.
    pub fn forward_batch_on(
        &self,
        isa: Isa,
        xs: &[&[f32]],
        states: &mut [&mut SeanetState],
        threads: usize,
    ) -> Result<Vec<Vec<f32>>> {
        isa.require()?;
        check_len("states (one per input)", xs.len(), states.len())?;
        for (x, state) in xs.iter().zip(states.iter()) {
            self.check(x, state)?;
        }
        let parts = threads.clamp(1, xs.len().max(1));
        // the longest inputs first, each to the least loaded part
        let mut order: Vec<usize> = (0..xs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(xs[i].len()));
        let mut load = vec![0usize; parts];
        let mut shares: Vec<Vec<usize>> = vec![Vec::new(); parts];
        for i in order {
            let p = (0..parts).min_by_key(|&p| load[p]).expect("parts >= 1");
            load[p] += xs[i].len();
            shares[p].push(i);
        }
        let mut inputs: Vec<Option<(&[f32], &mut SeanetState)>> = xs
            .iter()
            .copied()
            .zip(states.iter_mut().map(|s| &mut **s))
            .map(Some)
            .collect();
        let mut results: Vec<Vec<(usize, Vec<f32>)>> = (0..parts).map(|_| Vec::new()).collect();
        let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = shares
            .iter()
            .zip(results.iter_mut())
            .map(|(share, done)| {
                let jobs: Vec<(usize, &[f32], &mut SeanetState)> = share
                    .iter()
                    .map(|&i| {
                        let (x, state) = inputs[i].take().expect("each input in one share");
                        (i, x, state)
                    })
                    .collect();
                Box::new(move || {
                    for (i, x, state) in jobs {
                        done.push((i, self.run(isa, x, state)));
                    }
                }) as Box<dyn FnOnce() + Send + '_>
            })
            .collect();
        crate::pool::run_all(tasks);
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); xs.len()];
        for (i, samples) in results.into_iter().flatten() {
            out[i] = samples;
        }
        Ok(out)
    }

    /// That `x` is whole rows and `state` this decoder's.
    fn check(&self, x: &[f32], state: &SeanetState) -> Result<()> {
        if !x.len().is_multiple_of(self.c_in) {
            return Err(KernelError::ShapeMismatch {
                what: "x (rows of the input channels)",
                expected: x.len().div_ceil(self.c_in) * self.c_in,
                actual: x.len(),
            });
        }
        // the state's shape checked without building a fresh one on every call
        let lengths: Vec<usize> = self.state_lengths().collect();
        check_len("state buffers", lengths.len(), state.buffers.len())?;
        for (a, &n) in state.buffers.iter().zip(&lengths) {
            check_len("state buffer", n, a.len())?;
        }
        Ok(())
    }

    /// A checked stream's rows through every stage.
    fn run(&self, isa: Isa, x: &[f32], state: &mut SeanetState) -> Vec<f32> {
        // a few input steps at a time through every stage: the activations stay in cache
        let mut out = Vec::with_capacity(x.len() / self.c_in * self.hop * self.c_out);
        for block in x.chunks(BLOCK_STEPS * self.c_in) {
            out.extend(self.block(isa, block, state));
        }
        out
    }

    fn block(&self, isa: Isa, x: &[f32], state: &mut SeanetState) -> Vec<f32> {
        let mut buffers = state.buffers.iter_mut();
        let mut next = || {
            buffers
                .next()
                .expect("checked: one buffer per stateful conv")
        };
        let mut h = x.to_vec();
        for stage in &self.stages {
            h = match stage {
                Stage::Conv(c) => c.forward(isa, &h, next()),
                Stage::Elu => {
                    activation::elu(&mut h);
                    h
                }
                Stage::ConvTranspose(c) => c.forward(isa, &h, next()),
                Stage::Residual { conv_k, conv_1 } => {
                    let mut u = vec![0.0; h.len()];
                    activation::elu_into(&h, &mut u);
                    let mut v = conv_k.forward(isa, &u, next());
                    activation::elu(&mut v);
                    let w = conv_1.forward(isa, &v, next());
                    h.iter_mut().zip(&w).for_each(|(a, &b)| *a += b);
                    h
                }
            };
        }
        h
    }
}
