"""int8 weights: per-output-channel symmetric int8 weights, activations quantized per row at
every call (dynamic), multiplied by voxlet's own kernels (`rust/kernels`, through `_native`).

`quantize_network` swaps, while a network is loaded and before `PocketTTS.prepare()`, the
linears of the FlowLM transformer, its z projection, the flow head and the Mimi decoder
transformer, and gives the Mimi decoder's widest convolutions int8 products; everything else
(norms, embeddings, the other convolutions, the voice encoder) stays float32. The native
backend (`voxlet.model.backend.native`) then runs the FlowLM transformer (every generated frame,
every text prefill), the flow head and the Mimi decoder transformer as one native call each over
the same int8 matrices. It is opt-in (`precision="int8"`).
"""

from __future__ import annotations

import torch
from torch import nn

from voxlet._native import Int8Matrix
from voxlet.model.flow_lm import FlowLM
from voxlet.model.layers.conv import StreamingConv1d, StreamingConvTranspose1d
from voxlet.model.network import PocketTTS
from voxlet.native.layers import INT8_MIN_DEPTH


class Int8Linear(nn.Module):
    """y = x @ dequant(W_int8)^T + b for a (out, in) weight (a linear's, or a convolution's
    reshaped), W quantized per output channel (symmetric, [-127, 127]) and each row of x per call
    (symmetric, 8-bit alone, 7-bit among several); integer sums are exact, so results do not
    depend on the CPU's instruction set or on the thread count."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        w = weight.detach().float().contiguous()
        b = None if bias is None else bias.detach().float().contiguous()
        self.matrix = Int8Matrix(w.numpy(), None if b is None else b.numpy())
        self.out_features, self.in_features = w.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One call into the kernel and no torch op around it: every torch op releases and
        # retakes the GIL, and with FlowLM and Mimi in two threads each retake can wait.
        if x.dtype != torch.float32 or not x.is_contiguous() or x.requires_grad:
            x = x.detach().float().contiguous()
        # the calling thread's torch thread count: 1 in a stream's steady state, more for a
        # prefill the first-frame relay runs on every core
        return torch.from_numpy(self.matrix.apply(x.numpy(), torch.get_num_threads()))

    @property
    def nbytes(self) -> int:
        """Bytes the int8 weights, scales and bias hold."""
        return int(self.matrix.nbytes)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


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
    """Swaps the FlowLM transformer's, z projection's and flow head's linears for int8 ones;
    returns how many."""
    flow_lm.flow_net.clear_cache()
    with torch.no_grad():
        count = _swap_linears(flow_lm.transformer) + _swap_linears(flow_lm.flow_net)
        if isinstance(flow_lm.z_proj, nn.Linear):
            flow_lm.z_proj = Int8Linear(flow_lm.z_proj.weight)
            count += 1
    return count


_INT8_MIN_DEPTH = INT8_MIN_DEPTH  # a name of this module's own: tests lower it


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
    """int8 FlowLM (transformer, z projection, flow head), Mimi decoder transformer and the
    decoder's large convolutions; returns how many weights were quantized. The decoder
    transformer multiplies 16 rows a frame, so like the convolutions it goes int8 only where its
    products sum at least _INT8_MIN_DEPTH terms (english: 512 and 2048; the small layouts' 128
    and 384 run faster in float)."""
    count = quantize_flow_lm(network.flow_lm)
    decoder = network.mimi.decoder_transformer.transformer
    if decoder.layout.d_model >= _INT8_MIN_DEPTH:
        with torch.no_grad():
            count += _swap_linears(decoder)
    return count + quantize_convs(network.mimi.decoder)
