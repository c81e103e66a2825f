"""Float weights streamed every frame move onto one huge-page mapping, unchanged."""

from __future__ import annotations

import mmap

import pytest
import torch
from torch import nn

from voxlet.model import hugepages

pytestmark = pytest.mark.skipif(
    not hasattr(mmap, "MADV_HUGEPAGE"), reason="no transparent huge pages on this OS"
)


def test_gather_moves_weights_into_one_aligned_mapping_unchanged():
    linears = [nn.Linear(24, 40), nn.Linear(40, 8, bias=False), nn.Linear(8, 3)]
    before = [m.weight.detach().clone() for m in linears]
    biases = [None if m.bias is None else m.bias.detach().clone() for m in linears]
    moved = hugepages.gather(linears)
    assert moved == [m.weight for m in linears]
    base = linears[0].weight.data_ptr()
    assert base % (2 << 20) == 0  # starts on a huge-page boundary
    offset = 0
    for m, w, b in zip(linears, before, biases, strict=True):
        assert torch.equal(m.weight, w) and m.weight.shape == w.shape
        assert m.weight.data_ptr() == base + 4 * offset  # packed in order
        assert not m.weight.requires_grad
        offset += w.numel()
        if b is not None:
            assert torch.equal(m.bias, b)  # biases stay where they were
    x = torch.randn(5, 24)
    assert linears[2](linears[1](linears[0](x))).shape == (5, 3)


def test_gather_refuses_other_dtypes_and_moves_nothing_for_no_linears():
    assert hugepages.gather([]) == []
    with pytest.raises(ValueError, match="weights must be contiguous float32"):
        hugepages.gather([nn.Linear(4, 4).double()])


def test_a_loaded_fp32_model_streams_its_linears_from_one_mapping(tiny_tts):
    linears = tiny_tts.network.streamed_linears()
    assert len(linears) > 10
    first = linears[0].weight.data_ptr()
    assert first % (2 << 20) == 0
    end = max(m.weight.data_ptr() + 4 * m.weight.numel() for m in linears)
    total = sum(4 * m.weight.numel() for m in linears)
    assert end - first == total  # contiguous, nothing else in between
