"""The torch-free inference path: a checkpoint read straight into voxlet's kernels.

`checkpoint` maps a safetensors file with numpy; `layers` builds linears, norms, RoPE and
transformer stacks from it by key; `flow_lm` and `mimi` are FlowLM and Mimi's decoder on those
kernels. Nothing here imports PyTorch: `voxlet.model` stays the readable definition, the
training path and the reference these are tested against.
"""
