"""The seam between the PyTorch model and its fast path.

A `Backend` is chosen when the network is built (`PocketTTS(cfg, backend)`): each transformer
stack, flow head and projection asks it, from its layout alone, whether it runs there, and
falls back to its own PyTorch layers when not (logged once at debug level). After the weights
are loaded (and quantized, for int8) `PocketTTS.prepare()` hands each supported module's
weights to the backend as named, typed structures (`params`), and the backend returns a kernel
that holds what it multiplies by. `TORCH` runs everything in PyTorch; `NativeBackend` runs the
supported layers on voxlet's Rust kernels (`voxlet.model.backend.native`).
"""

from voxlet.model.backend.base import (
    ELU,
    TORCH,
    Backend,
    ConvParams,
    ConvTransposeParams,
    FlowBlockParams,
    FlowHeadLayout,
    FlowHeadParams,
    HeadKernel,
    LayerParams,
    LinearKernel,
    NormParams,
    ResidualParams,
    SeanetKernel,
    SeanetLayout,
    SeanetParams,
    StackKernel,
    StackLayout,
    StackParams,
    TorchBackend,
)

__all__ = [
    "ELU",
    "TORCH",
    "Backend",
    "ConvParams",
    "ConvTransposeParams",
    "FlowBlockParams",
    "FlowHeadLayout",
    "FlowHeadParams",
    "HeadKernel",
    "LayerParams",
    "LinearKernel",
    "NormParams",
    "ResidualParams",
    "SeanetKernel",
    "SeanetLayout",
    "SeanetParams",
    "StackKernel",
    "StackLayout",
    "StackParams",
    "TorchBackend",
]
