"""`voxlet train ...`: the training stages as subcommands. Every stage resumes when rerun."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path

from voxlet.train import DEFAULT_LAYOUT
from voxlet.train.settings import CodecSettings, FlowSettings

log = logging.getLogger("voxlet.train")


def add_parser(sub) -> None:
    """Each flag's help states its default itself (settings come from a resumed run)."""
    fmt = argparse.HelpFormatter
    train = sub.add_parser("train", help="train a model (data, codec, ...)", formatter_class=fmt)
    stages = train.add_subparsers(dest="stage", required=True)

    data = stages.add_parser(
        "data", help="build a corpus: teacher speech or a folder of recordings", formatter_class=fmt
    )
    data.add_argument("--out", required=True, type=Path, help="corpus folder (resumes)")
    data.add_argument(
        "--from-folder",
        type=Path,
        help="recordings: LJSpeech metadata.csv + wavs/, or NAME.wav + NAME.txt (no teacher)",
    )
    data.add_argument(
        "--hours", type=float, default=20.0, help="teacher speech to plan (default: 20)"
    )
    data.add_argument("--limit", type=int, help="speak at most this many sentences this run")
    data.add_argument(
        "--split", choices=["train", "val", "test"], help="speak only this split's sentences"
    )
    data.add_argument("--seed", type=int, default=0, help="sentence choice and order (default: 0)")
    data.add_argument(
        "--wordnet",
        type=Path,
        default=Path("/usr/share/wordnet"),
        help="WordNet 3.0 data folder (default: /usr/share/wordnet)",
    )
    data.add_argument("--text", type=Path, action="append", default=[], help="extra sentences")

    codec = stages.add_parser("codec", help="train the codec (Mimi VAE)", formatter_class=fmt)
    codec.add_argument("--data", required=True, type=Path, help="corpus folder")
    codec.add_argument("--run-dir", required=True, type=Path, help="run folder (resumes)")
    codec.add_argument(
        "--config", type=Path, help=f"model layout YAML (new runs: {DEFAULT_LAYOUT.name})"
    )
    _init_flag(codec, "codec")
    _device_flags(codec)
    _settings_flags(codec, CodecSettings())

    flow = stages.add_parser(
        "flow", help="train the FlowLM on a codec's latents", formatter_class=fmt
    )
    flow.add_argument("--data", required=True, type=Path, help="corpus folder")
    flow.add_argument("--codec", required=True, type=Path, help="the trained codec's run folder")
    flow.add_argument("--run-dir", required=True, type=Path, help="run folder (resumes)")
    flow.add_argument(
        "--tokenizer", type=Path, help="a SentencePiece model (default: train one on the corpus)"
    )
    _init_flag(flow, "FlowLM (and tokenizer)")
    _device_flags(flow)
    _settings_flags(flow, FlowSettings())

    export = stages.add_parser(
        "export", help="codec + FlowLM runs -> a model folder", formatter_class=fmt
    )
    export.add_argument("--codec", required=True, type=Path, help="codec run folder")
    export.add_argument("--flow", required=True, type=Path, help="FlowLM run folder")
    export.add_argument("--out", required=True, type=Path, help="model folder to write")
    export.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="weights' storage (default: float32; bfloat16 halves the file)",
    )


def _settings_flags(p: argparse.ArgumentParser, defaults) -> None:
    for f in dataclasses.fields(defaults):
        value = getattr(defaults, f.name)
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(value),
            help=f"default: {value}, or the resumed run's",
        )


def _given(args: argparse.Namespace, settings_type) -> dict:
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(settings_type)
        if getattr(args, f.name) is not None
    }


def _summary(run_dir: Path, last: dict[str, float]) -> None:
    if os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        log.info("%s: %s", run_dir, " ".join(f"{k} {v:.4g}" for k, v in last.items()))


def _init_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="MODEL",
        help=f"a new run starts from this exported model's {what} (a resumed run ignores it)",
    )


def _device_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, help="torch threads per process (default: torch's)")


def main(args: argparse.Namespace) -> int:
    if args.stage == "data":
        from voxlet.train import data

        if args.from_folder is not None:
            writer = data.from_folder(args.from_folder, args.out)
        else:
            writer = data.from_teacher(
                args.out, args.hours, args.seed, args.wordnet, args.text, args.limit, args.split
            )
        log.info("%s: %d utterances, %.2f h", args.out, len(writer.done), writer.hours)
        return 0
    if args.stage == "codec":
        from voxlet.train import codec

        given = _given(args, CodecSettings)
        last = codec.train(
            args.data,
            args.run_dir,
            args.config,
            given,
            args.device,
            args.threads,
            init_from=args.init_from,
        )
        _summary(args.run_dir, last)
        return 0
    if args.stage == "flow":
        from voxlet.train import flow

        given = _given(args, FlowSettings)
        last = flow.train(
            args.data,
            args.codec,
            args.run_dir,
            given,
            args.tokenizer,
            args.device,
            args.threads,
            init_from=args.init_from,
        )
        _summary(args.run_dir, last)
        return 0
    if args.stage == "export":
        from voxlet.train.export import export

        config = export(args.codec, args.flow, args.out, dtype=args.dtype)
        log.info("wrote %s (load it with --config %s)", args.out, config)
        return 0
    raise AssertionError(args.stage)
