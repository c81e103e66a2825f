"""What `pip install voxlet` costs without PyTorch: the wheel's size, the base install (a fresh
venv holding voxlet and its runtime dependencies), and `import voxlet` in it; one JSON line.

    .venv/bin/python benches/bench_install.py            # builds the stripped wheel first
    .venv/bin/python benches/bench_install.py --wheel target/wheels/voxlet-*.whl
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build_wheel(out: Path) -> Path:
    maturin = Path(sys.executable).parent / "maturin"
    command = [str(maturin), "build", "--release", "--strip", "-q", "-o", str(out)]
    subprocess.run(command, check=True)
    return next(out.glob("voxlet-*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="default: build one")
    parser.add_argument("--imports", type=int, default=9, help="import timings (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or build_wheel(Path(tmp) / "wheels")
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        empty = tree_bytes(venv)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), str(wheel)], check=True)
        code = (
            "import sys, time; t = time.perf_counter(); import voxlet; "
            "print(time.perf_counter() - t, 'torch' in sys.modules, 'numpy' in sys.modules)"
        )
        times, torch_loaded = [], False
        for _ in range(args.imports):
            out = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
            seconds, torch_flag, _numpy = out.stdout.split()
            times.append(float(seconds))
            torch_loaded |= torch_flag == "True"
        has_torch = (
            subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode == 0
        )
        site = next((venv / "lib").glob("python*/site-packages"))
        result = {
            "wheel_mb": round(wheel.stat().st_size / 1e6, 2),
            "base_install_mb": round(tree_bytes(venv) / 1e6, 1),
            "empty_venv_mb": round(empty / 1e6, 1),
            "voxlet_package_mb": round(tree_bytes(site / "voxlet") / 1e6, 1),
            "torch_installed": has_torch,
            "import_voxlet_ms": round(1000 * statistics.median(times), 1),
            "import_loads_torch": torch_loaded,
        }
        shutil.rmtree(venv)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
