"""ELU (alpha 1) and tanh GELU computed by voxlet's Rust kernels in one pass over memory.

PyTorch needs several passes for either (our ELU was relu + exp + sub + add over temporaries;
its tanh GELU runs at ~2 ns per value on one core); these take any float32 CPU tensor, in any
strided layout, and write in place. Other dtypes and devices, and tensors that need gradients,
go to PyTorch. This module is the
one importer of the activation kernels, as `voxlet.model.quantize` is of the int8 ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from voxlet._audio import elu_, gelu_tanh_


def _native(x: torch.Tensor) -> bool:
    # autograd must see the operation when it records one: then PyTorch's
    return x.dtype == torch.float32 and x.device.type == "cpu" and not x.requires_grad


def elu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """x where x > 0, else e^x - 1; `inplace` overwrites x and returns it."""
    if not _native(x):
        return F.elu(x, inplace=inplace)
    y = x if inplace else x.clone()
    elu_(y.detach().numpy())
    return y


def gelu_tanh_inplace(x: torch.Tensor) -> torch.Tensor:
    """x / 2 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), overwriting x; returns it."""
    if not _native(x):
        return x.copy_(F.gelu(x, approximate="tanh"))
    gelu_tanh_(x.detach().numpy())
    return x
