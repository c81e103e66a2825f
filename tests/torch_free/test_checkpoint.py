"""The torch-free checkpoint reader and loader: bf16 widened exactly, and every bad checkpoint
refused with a one-line WeightsError naming the file, the tensor and what is wrong (missing,
another shape, unexpected, not finite, not safetensors)."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tests.conftest import fixture_path
from voxlet.config import ModelConfig
from voxlet.errors import WeightsError
from voxlet.native.checkpoint import Checkpoint
from voxlet.native.speech import NativeSpeech

TINY = fixture_path("tiny_model.safetensors")


def _bf16_rounded(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 (round to nearest even) -> float32, in integers."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
    return u.astype(np.uint32).view(np.float32)


def test_bf16_tensors_widen_exactly():
    fp32, bf16 = Checkpoint(TINY), Checkpoint(fixture_path("tiny_model_bf16.safetensors"))
    assert fp32.dtypes == ["F32"] and bf16.dtypes == ["BF16"]
    for key in fp32.keys():
        shape = fp32.shape(key)
        np.testing.assert_array_equal(bf16.take(key, shape), _bf16_rounded(fp32.take(key, shape)))


def _write(tmp_path, tensors: dict[str, np.ndarray]):
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path))
    return path


def _speech(path):
    return NativeSpeech(ModelConfig.load(fixture_path("tiny_config.yaml")), path)


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text
    return text


def test_a_tensor_of_another_shape_names_the_key_and_both_shapes(tmp_path):
    tensors = load_file(str(TINY))
    key = "flow_lm.out_norm.weight"
    tensors[key] = np.ones(65, np.float32)
    with pytest.raises(WeightsError) as e:
        _speech(_write(tmp_path, tensors))
    assert f"tensor '{key}' has shape [65], the model expects [64]" in _one_line(e)


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    tensors = load_file(str(TINY))
    del tensors["flow_lm.bos_emb"]
    with pytest.raises(WeightsError) as e:
        _speech(_write(tmp_path, tensors))
    assert "missing tensor 'flow_lm.bos_emb' with shape [32]" in _one_line(e)
    tensors = load_file(str(TINY))
    tensors["flow_lm.extra.weight"] = np.zeros((2, 2), np.float32)
    with pytest.raises(WeightsError) as e:
        _speech(_write(tmp_path, tensors))
    assert "unexpected tensor 'flow_lm.extra.weight' with shape [2, 2]" in _one_line(e)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_non_finite_weight_is_refused_naming_the_tensor(tmp_path, value):
    tensors = load_file(str(TINY))
    key = "mimi.decoder.model.0.conv.weight"
    tensors[key] = tensors[key].copy()
    tensors[key].flat[5] = value
    with pytest.raises(WeightsError) as e:
        _speech(_write(tmp_path, tensors))
    assert f"tensor '{key}' holds NaN or infinite values (element 5)" in _one_line(e)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x05",
        (10**9).to_bytes(8, "little") + b"{}",
        (2).to_bytes(8, "little") + b"[]",
        (4).to_bytes(8, "little") + b'{"a"',
        (60).to_bytes(8, "little") + b'{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,99]}}    ',
    ],
    ids=["empty", "short", "huge-header", "not-an-object", "bad-json", "outside-the-file"],
)
def test_a_file_that_is_not_safetensors_is_refused(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsError) as e:
        Checkpoint(path)
    assert str(path) in _one_line(e)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        Checkpoint(tmp_path / "nothing.safetensors")


def test_the_file_can_be_let_go_whole_or_tensor_by_tensor():
    ck = Checkpoint(TINY)
    key = "flow_lm.out_norm.weight"
    before = ck.take(key, (64,)).copy()
    ck.release()  # the views read the file again, page by page
    np.testing.assert_array_equal(ck.take(key, (64,)), before)
    ck.release(key)  # a tensor's whole pages only (none, for one this small)
    np.testing.assert_array_equal(ck.take(key, (64,)), before)
    with pytest.raises(KeyError):
        ck.release("no.such.tensor")
