"""int8 weights: per-output-channel symmetric int8 weights, activations quantized per row at
every call (dynamic), multiplied by voxlet's own kernels (`rust/kernels`, through `_audio`).

`quantize_network` swaps, in place, the linears of the FlowLM transformer, the flow head and the
Mimi decoder transformer, and gives the Mimi decoder's widest convolutions int8 products;
everything else (norms, embeddings, the other convolutions, the voice encoder) stays float32. The
FlowLM transformer (every generated frame, every text prefill), the flow head and the Mimi
decoder transformer then run as one native call each (`Int8Stack`, `Int8Head`) over the same
int8 matrices. It is opt-in (`precision="int8"`). This module is the one importer of the int8
kernels, as `voxlet.audio` is of the PCM code.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from voxlet._audio import Int8FlowHead, Int8Matrix, Int8Transformer
from voxlet.errors import ConfigError
from voxlet.model.flow_lm import FlowLM
from voxlet.model.layers.attention import LinearKV, RingKV
from voxlet.model.layers.conv import StreamingConv1d, StreamingConvTranspose1d
from voxlet.model.layers.flow_net import FlowNet, ResBlock
from voxlet.model.layers.transformer import LayerScale, Transformer, TransformerLayer
from voxlet.model.network import PocketTTS

PRECISIONS = ("fp32", "int8")


class Int8Linear(nn.Module):
    """y = x @ dequant(W_int8)^T + b for a (out, in) weight (a linear's, or a convolution's
    reshaped), W quantized per output channel (symmetric, [-127, 127]) and each row of x per call
    (symmetric, 8-bit alone, 7-bit among several); integer sums are exact, so results do not
    depend on the CPU's instruction set or on the thread count."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        w = weight.detach().float().contiguous()
        b = None if bias is None else bias.detach().float().contiguous()
        self._matrix = Int8Matrix(w.numpy(), None if b is None else b.numpy())
        self.out_features, self.in_features = w.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One call into the kernel and no torch op around it: every torch op releases and
        # retakes the GIL, and with FlowLM and Mimi in two threads each retake can wait.
        if x.dtype != torch.float32 or not x.is_contiguous() or x.requires_grad:
            x = x.detach().float().contiguous()
        # the calling thread's torch thread count: 1 in a stream's steady state, more for a
        # prefill the first-frame relay runs on every core
        return torch.from_numpy(self._matrix.apply(x.numpy(), torch.get_num_threads()))

    @property
    def nbytes(self) -> int:
        """Bytes the int8 weights, scales and bias hold."""
        return int(self._matrix.nbytes)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def _vector(t: torch.Tensor) -> NDArray[np.float32]:
    return t.detach().float().contiguous().numpy()


def _scale(module: nn.Module) -> NDArray[np.float32] | None:
    return _vector(module.scale) if isinstance(module, LayerScale) else None


def _int8_matrix(module: nn.Module) -> Int8Matrix:
    if not isinstance(module, Int8Linear):
        raise ValueError(f"native int8 layers need Int8Linear linears, got {module}")
    return module._matrix


def _one_eps(module: nn.Module) -> float:
    """The epsilon every LayerNorm in `module` shares (the native calls take one)."""
    eps = {m.eps for m in module.modules() if isinstance(m, nn.LayerNorm)}
    if len(eps) != 1:
        raise ValueError(f"native int8 layers need one norm epsilon, got {sorted(eps)}")
    return eps.pop()


class Int8Stack:
    """A transformer with int8 linears advanced some positions of one sequence in one native
    call (`Int8Transformer`: norms, rotation, causal attention, GELU and layer scales included,
    the GIL released once) instead of ~25 torch operations per layer: in int8 mode, every FlowLM
    step and text prefill, and every Mimi decode's transformer (its ring caches too). It shares
    the layers' int8 matrices and copies their norms and scales; set as
    `Transformer.int8_stack`."""

    def __init__(self, transformer: Transformer):
        layers = []
        for layer in transformer.layers:
            assert isinstance(layer, TransformerLayer)
            attn = layer.self_attn
            linears = (attn.in_proj, attn.out_proj, layer.linear1, layer.linear2)
            qkv, out, l1, l2 = (_int8_matrix(m) for m in linears)
            n1, n2 = layer.norm1, layer.norm2
            v1, v2 = (_vector(n1.weight), _vector(n1.bias)), (_vector(n2.weight), _vector(n2.bias))
            s1, s2 = (_scale(s) for s in (layer.layer_scale_1, layer.layer_scale_2))
            layers.append((*v1, qkv, out, *v2, l1, l2, s1, s2))
        attn = transformer.attention(0)
        self._native = Int8Transformer(layers, attn.num_heads, _one_eps(transformer), attn.context)

    def __call__(self, x: torch.Tensor, caches: list, turns: torch.Tensor) -> torch.Tensor:
        """x (1, T, D) at the caches' offset -> (1, T, D) as a new tensor; every cache gets the
        T positions and advances by T."""
        first = caches[0]
        start, end = first.offset, first.offset + x.shape[1]
        if isinstance(first, LinearKV) and end > first.capacity:
            raise RuntimeError(f"KV cache full: {end} positions > capacity {first.capacity}")
        out = x.detach().float().clone(memory_format=torch.contiguous_format)  # one copy
        self._native.forward(
            out.numpy(),
            [c.k.numpy() for c in caches],
            [c.v.numpy() for c in caches],
            start,
            torch.view_as_real(turns).numpy(),
            torch.get_num_threads(),
        )
        if isinstance(first, RingKV):  # which position each slot now holds
            context = first.pos.shape[0]
            newest = torch.arange(max(start, end - context), end)
            for cache in caches:
                cache.pos[newest % context] = newest
        for cache in caches:
            cache.offset = end
        return out


class Int8Head:
    """The flow head's velocity in one native call (`Int8FlowHead`: the adaLN MLP's norms,
    SiLUs and modulations included) over the int8 matrices `_swap_linears` gave it, instead of
    ~90 torch operations; set as `FlowNet.int8_velocity`. The time embedding stays in PyTorch
    (cached per pair of times)."""

    def __init__(self, flow_net: FlowNet):
        blocks = []
        for block in flow_net.res_blocks:
            b = cast(ResBlock, block)
            mlp_in, mlp_out = _int8_matrix(b.mlp[0]), _int8_matrix(b.mlp[2])
            modulation = _int8_matrix(b.adaLN_modulation[1])
            norm = (_vector(b.in_ln.weight), _vector(b.in_ln.bias))
            blocks.append((*norm, mlp_in, mlp_out, modulation))
        final = flow_net.final_layer
        self._native = Int8FlowHead(
            _int8_matrix(flow_net.cond_embed),
            _int8_matrix(flow_net.input_proj),
            blocks,
            _int8_matrix(final.adaLN_modulation[1]),
            _int8_matrix(final.linear),
            _one_eps(flow_net),
        )

    def __call__(self, c: torch.Tensor, time: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """c (B, D_cond), time (1, dim), x (B, latent) -> velocity (B, latent)."""
        c, time, x = (t.detach().float().contiguous() for t in (c, time, x))
        v = self._native.velocity(c.numpy(), time.numpy(), x.numpy(), torch.get_num_threads())
        return torch.from_numpy(v)


def _swap_linears(module: nn.Module) -> int:
    count = 0
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, Int8Linear(child.weight, child.bias))
            count += 1
        else:
            count += _swap_linears(child)
    return count


def quantize_flow_lm(flow_lm: FlowLM) -> int:
    """Swaps the FlowLM transformer's and flow head's linears for int8 ones; returns how many."""
    flow_lm.flow_net.clear_cache()
    with torch.no_grad():
        count = _swap_linears(flow_lm.transformer) + _swap_linears(flow_lm.flow_net)
    flow_lm.transformer.int8_stack = Int8Stack(flow_lm.transformer)
    flow_lm.flow_net.int8_velocity = Int8Head(flow_lm.flow_net)
    return count


# Products summing fewer terms per output than this stay float: with few 32-byte blocks per row
# the int8 kernel's per-row overhead outweighs its faster arithmetic (measured on the Mimi
# decoder: a transposed conv over 128 channels ran 1.5x slower in int8, over 512 1.5x faster).
_INT8_MIN_DEPTH = 512


def _released(weight: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(torch.empty_like(weight, device="meta"), requires_grad=False)


def quantize_convs(module: nn.Module) -> int:
    """int8 products for the convolutions of `module` that do the most arithmetic per output:
    transposed ones with kernel 2 x stride and stride-1 ones too wide for the per-tap path, each
    summing at least _INT8_MIN_DEPTH terms; returns how many. Their float weights are released
    (left as meta tensors: the shapes stay readable)."""
    count = 0
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, StreamingConvTranspose1d) and sub.uses_int8_product():
                w = sub.convtr.weight  # (C_in, C_out, 2s): C_in terms per output
                if w.shape[0] >= _INT8_MIN_DEPTH:
                    sub.int8 = Int8Linear(w.flatten(1).T)
                    sub.convtr.weight = _released(w)
                    count += 1
            elif isinstance(sub, StreamingConv1d) and sub.uses_int8_product():
                w = sub.conv.weight  # (C_out, C_in, k): C_in k terms per output
                if w[0].numel() >= _INT8_MIN_DEPTH:
                    sub.int8 = Int8Linear(w.flatten(1), sub.conv.bias)
                    sub.conv.weight = _released(w)
                    count += 1
    return count


def quantize_network(network: PocketTTS) -> int:
    """int8 FlowLM (transformer, flow head), Mimi decoder transformer and the decoder's large
    convolutions; returns how many weights were quantized. Then copies what stays float,
    releasing the checkpoint mapping."""
    count = quantize_flow_lm(network.flow_lm)
    decoder = network.mimi.decoder_transformer.transformer
    with torch.no_grad():
        count += _swap_linears(decoder)
    decoder.int8_stack = Int8Stack(decoder)
    count += quantize_convs(network.mimi.decoder)
    own_memory(network)
    return count


def own_memory(module: nn.Module) -> None:
    """Copies every parameter and buffer into memory of its own.

    Checkpoint tensors map the safetensors file; after quantization only the float tensors that
    remain need to stay, and copying them lets the file mapping (every page of which quantization
    touched) be released, so resident memory holds only what the model uses.
    """
    with torch.no_grad():
        for sub in module.modules():
            for name, param in list(sub._parameters.items()):
                if param is not None:
                    sub._parameters[name] = nn.Parameter(param.detach().clone(), False)
            for name, buf in list(sub._buffers.items()):
                if buf is not None:
                    sub._buffers[name] = buf.clone()


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision
