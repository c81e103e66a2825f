"""Float weights read in place at load, moved onto huge pages by a background thread that
keeps every product's bits, lets go of the file's pages and ends."""

from __future__ import annotations

import numpy as np
from safetensors.numpy import save_file

from voxlet.native.checkpoint import Checkpoint
from voxlet.native.huge_pages import move_in_background
from voxlet.native.layers import linear


def _checkpoint(tmp_path, tensors: dict[str, np.ndarray]) -> Checkpoint:
    path = tmp_path / "w.safetensors"
    save_file(tensors, str(path))
    return Checkpoint(path)


def test_wide_matrices_move_in_the_background_with_the_same_bits(tmp_path):
    rng = np.random.default_rng(0)
    wide = rng.standard_normal((1024, 768), dtype=np.float32)  # 3 MiB: over one huge page
    small = rng.standard_normal((64, 768), dtype=np.float32)
    ck = _checkpoint(tmp_path, {"wide.weight": wide, "small.weight": small})
    a, b = linear(ck, "wide", 1024, 768), linear(ck, "small", 64, 768)
    assert set(ck.read_in_place) == {"wide.weight", "small.weight"}
    x = rng.standard_normal((3, 768), dtype=np.float32)
    before = a.apply(x), b.apply(x)
    thread = move_in_background(ck)
    assert thread is not None and thread.daemon and thread.name == "voxlet-huge-pages"
    during = a.apply(x)  # products go on while it copies
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert a.moved and not b.moved  # under one huge page: read where it lies
    np.testing.assert_array_equal(during, before[0])
    np.testing.assert_array_equal(a.apply(x), before[0])
    np.testing.assert_array_equal(b.apply(x), before[1])  # its pages released, read back
    assert not a.move_to_huge_pages()  # once


def test_nothing_worth_moving_starts_no_thread(tmp_path):
    w = np.ones((64, 300), np.float32)
    ck = _checkpoint(tmp_path, {"m.weight": w})
    m = linear(ck, "m", 64, 300)
    assert move_in_background(ck) is None
    np.testing.assert_array_equal(m.apply(np.ones((1, 300), np.float32)), [[300.0] * 64])


def test_exiting_while_weights_move_ends_cleanly(tmp_path):
    """The move stops after the matrix in hand and its thread is joined at exit: a thread
    still in the native copy when Python finalizes would abort the process."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    path = tmp_path / "w.safetensors"
    tensors = {f"m{i}.weight": rng.standard_normal((1024, 1024), np.float32) for i in range(8)}
    save_file(tensors, str(path))
    code = (
        "from voxlet.native.checkpoint import Checkpoint\n"
        "from voxlet.native.huge_pages import move_in_background\n"
        "from voxlet.native.layers import linear\n"
        f"ck = Checkpoint({str(path)!r})\n"
        "ms = [linear(ck, f'm{i}', 1024, 1024) for i in range(8)]\n"
        "assert move_in_background(ck) is not None\n"
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
        assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
