"""int8 weights: per-output-channel symmetric int8 weights, activations quantized per call
(dynamic), computed by fbgemm / oneDNN int8 GEMM kernels.

`quantize_network` swaps, in place, the linears of the FlowLM transformer, the flow head and the
Mimi decoder transformer; everything else (norms, embeddings, convolutions, the voice encoder)
stays float32. It is opt-in (`precision="int8"`).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from voxlet.errors import ConfigError
from voxlet.model.flow_lm import FlowLM
from voxlet.model.network import PocketTTS

PRECISIONS = ("fp32", "int8")


class Int8Linear(nn.Module):
    """y = x @ dequant(W_int8)^T + b with W quantized per output channel (symmetric)."""

    def __init__(self, linear: nn.Linear, reduce_range: bool):
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0  # (out,)
        with (
            warnings.catch_warnings()
        ):  # torch plans to remove this API: int8 will need another route
            warnings.filterwarnings("ignore", message=".*quantize_per_channel.*deprecated")
            q = torch.quantize_per_channel(
                w, scale.double(), torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8
            )
        # A copy: the checkpoint's tensors are views of one mapping of the whole file, and a
        # bias kept by reference would keep all of it resident.
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self._packed = torch.ops.quantized.linear_prepack(q, bias)
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.reduce_range = reduce_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.is_contiguous():  # the flow head's (B, dim): no reshaping
            return torch.ops.quantized.linear_dynamic(x, self._packed, self.reduce_range)
        shape = x.shape
        y = torch.ops.quantized.linear_dynamic(
            x.reshape(-1, shape[-1]).contiguous(), self._packed, self.reduce_range
        )
        return y.view(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def _swap_linears(module: nn.Module, reduce_range: bool) -> int:
    count = 0
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, Int8Linear(child, reduce_range))
            count += 1
        else:
            count += _swap_linears(child, reduce_range)
    return count


def _reduce_range() -> bool:
    """fbgemm's u8 x s8 kernels can saturate 16-bit intermediate sums, so activations use the
    reduced 7-bit range there (its documented recommendation); oneDNN/qnnpack use the full range."""
    engine = torch.backends.quantized.engine
    if engine == "none":
        raise ConfigError("precision='int8' needs a quantized engine; this torch build has none")
    return engine in ("fbgemm", "x86")


def quantize_flow_lm(flow_lm: FlowLM) -> int:
    """Swaps the FlowLM transformer's and flow head's linears for int8 ones; returns how many."""
    reduce_range = _reduce_range()
    flow_lm.flow_net.clear_cache()
    with torch.no_grad():
        return _swap_linears(flow_lm.transformer, reduce_range) + _swap_linears(
            flow_lm.flow_net, reduce_range
        )


def quantize_network(network: PocketTTS) -> int:
    """int8 FlowLM (transformer, flow head) and Mimi decoder transformer; returns how many
    linears were swapped. Then copies what stays float, releasing the checkpoint mapping."""
    count = quantize_flow_lm(network.flow_lm)
    with torch.no_grad():
        count += _swap_linears(network.mimi.decoder_transformer, _reduce_range())
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
