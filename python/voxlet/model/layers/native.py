"""The layers' float kernels from voxlet's Rust crate, each one pass over memory where PyTorch
needs several: ELU (alpha 1) and tanh GELU (our ELU was relu + exp + sub + add over
temporaries; PyTorch's tanh GELU runs at ~2 ns per value on one core), and the overlap-add that
ends a transposed convolution (a transposing copy and an add over strided views in PyTorch).

They take float32 CPU tensors in any strided layout; other dtypes and devices, and tensors that
need gradients, go to PyTorch (`native(...)` tells which). This module is the one importer of
these kernels, as `voxlet.model.quantize` is of the int8 ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from voxlet._native import elu_, elu_into, gelu_tanh_
from voxlet._native import overlap_add as _overlap_add


def native(x: torch.Tensor) -> bool:
    """Whether the kernels here take x (else PyTorch: autograd must see what it records)."""
    return x.dtype == torch.float32 and x.device.type == "cpu" and not x.requires_grad


def elu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """x where x > 0, else e^x - 1; `inplace` overwrites x and returns it."""
    if not native(x):
        return F.elu(x, inplace=inplace)
    if not inplace and x.is_contiguous():  # one read and one write, no copy first
        y = torch.empty_like(x)
        elu_into(x.detach().numpy(), y.numpy())
        return y
    y = x if inplace else x.clone()
    elu_(y.detach().numpy())
    return y


def gelu_tanh_inplace(x: torch.Tensor) -> torch.Tensor:
    """x / 2 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), overwriting x and returning it; a
    new tensor where autograd records (it needs x itself for the gradient) or off the CPU."""
    if not native(x):
        return F.gelu(x, approximate="tanh")
    gelu_tanh_(x.detach().numpy())
    return x


def overlap_add(
    z: torch.Tensor, bias: torch.Tensor | None, partial: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Taps z (B, T, C, 2s) of a transposed convolution with kernel 2s -> output (B, C, T s)
    and the carried partial (B, C, s): step t's first half plus step t-1's second half (the
    previous call's `partial` for t = 0, zeros if None), plus the bias. `native(z)` must hold.
    """
    arrays = [None if t is None else t.detach().contiguous().numpy() for t in (bias, partial)]
    y, carried = _overlap_add(z.detach().contiguous().numpy(), *arrays)
    return torch.from_numpy(y), torch.from_numpy(carried)
