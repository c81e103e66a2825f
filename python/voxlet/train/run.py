"""What every training stage shares: the run folder, its checkpoint (written atomically, resumed
bit for bit on CPU), per-run metrics as JSON lines, seeds, the device, the learning-rate
schedule, and data-parallel processes under `torchrun` (gloo on CPU, NCCL on CUDA).

A run folder holds `checkpoint.pt` (the latest step: model, optimiser, every process's random
state, the settings), `config.yaml` (the model config it started with) and `metrics.jsonl`.
Only process 0 writes them.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from voxlet.train import DEFAULT_LAYOUT

CHECKPOINT, METRICS, CONFIG = "checkpoint.pt", "metrics.jsonl", "config.yaml"


@dataclass
class Run:
    folder: Path
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def start(folder: str | Path, device: str = "cpu", threads: int | None = None) -> Run:
    """Opens (creates) a run folder; joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if threads is not None:
        torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device here")
    dev = torch.device(device)
    if world > 1:
        if dev.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            dev = torch.device("cuda", local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    run = Run(Path(folder), dev, rank, world)
    if run.main:
        run.folder.mkdir(parents=True, exist_ok=True)
    if run.distributed:
        dist.barrier()
    return run


def finish(run: Run) -> None:
    if run.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def lr_at(step: int, base: float, warmup: int, total: int, floor: float = 0.1) -> float:
    """Linear warm-up over `warmup` steps, then a cosine from `base` down to `floor * base`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class RandomState:
    """One process's generators: numpy's (data) and torch's (noise)."""

    numpy: dict[str, Any]
    torch: torch.Tensor

    @staticmethod
    def of(rng: np.random.Generator) -> RandomState:
        return RandomState(dict(rng.bit_generator.state), torch.get_rng_state())

    def restore(self, rng: np.random.Generator) -> None:
        rng.bit_generator.state = self.numpy
        torch.set_rng_state(self.torch)


def save(run: Run, rng: np.random.Generator, **state: Any) -> None:
    """Every process's random state is gathered; process 0 writes the checkpoint to a temporary
    file and renames it over the old one, so a crash mid-write keeps the previous step."""
    mine = asdict(RandomState.of(rng))
    if run.distributed:
        states: list[Any] = [None] * run.world
        dist.all_gather_object(states, mine)
    else:
        states = [mine]
    if run.main:
        path = run.folder / CHECKPOINT
        tmp = path.with_suffix(".tmp")
        torch.save({**state, "random": states}, tmp)
        os.replace(tmp, path)
    if run.distributed:
        dist.barrier()


class _Seeded(Protocol):
    @property
    def seed(self) -> int: ...


S = TypeVar("S", bound=_Seeded)


def resume(
    run: Run, settings_type: Callable[..., S], overrides: dict | None
) -> tuple[dict | None, S, np.random.Generator]:
    """A run's checkpoint (None for a new run), its settings (the saved ones, or the defaults,
    with `overrides` applied) and this process's data generator, restored where resumed. The
    seed cannot change on a resumed run."""
    overrides = overrides or {}
    seed = int(overrides.get("seed", settings_type().seed))
    rng = np.random.default_rng(seed + run.rank)
    state = load(run, rng)
    saved = settings_type(**state["settings"]) if state is not None else settings_type()
    settings = replace(saved, **overrides)  # type: ignore[type-var]
    if state is not None and settings.seed != saved.seed:
        raise ValueError(f"--seed: {run.folder} was started with seed {saved.seed}")
    return state, settings, rng


def load(run: Run, rng: np.random.Generator) -> dict | None:
    """The last checkpoint with this process's random state restored; None for a new run."""
    path = run.folder / CHECKPOINT
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    randoms = state.pop("random")
    if len(randoms) != run.world:
        raise RuntimeError(
            f"{path}: saved by {len(randoms)} processes, resumed with {run.world}; "
            "resume with the same number"
        )
    RandomState(**randoms[run.rank]).restore(rng)
    return state


def keep_config(run: Run, config: str | Path | None, resumed: bool) -> Path:
    """The run's own copy of the model config (default: voxlet's layout), written at the
    start and read when resuming (a config given to a resumed run must be the same file's
    content)."""
    mine = run.folder / CONFIG
    if not resumed and run.main:
        source = Path(config) if config is not None else DEFAULT_LAYOUT
        mine.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    if run.distributed:
        dist.barrier()
    if (
        config is not None
        and resumed
        and Path(config).read_text("utf-8") != mine.read_text("utf-8")
    ):
        raise ValueError(f"{config}: differs from the config {run.folder} was started with")
    return mine


class Metrics:
    """Appends one JSON object per line to the run's metrics.jsonl (process 0 only)."""

    def __init__(self, run: Run):
        self._path = run.folder / METRICS if run.main else None
        self._start = time.monotonic()

    def write(self, **values: float | int | str) -> None:
        if self._path is None:
            return
        with self._path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(values) + "\n")


def mean_across(run: Run, values: dict[str, float]) -> dict[str, float]:
    """The mean of each value over the processes."""
    if not run.distributed:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, (t / run.world).tolist(), strict=True))
