"""`voxlet` command line: say, voices, export-voice, download. Logs on stderr, audio on stdout."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path

from voxlet import registry
from voxlet.constants import FRAME_MS, SAMPLE_RATE_HZ
from voxlet.errors import VoxletError
from voxlet.options import GenerationOptions

log = logging.getLogger("voxlet")

_FLAG_NAMES = {"max_tokens_per_chunk": "max-tokens"}
_OPTION_HELP = {
    "temperature": "noise variance of the flow head (default: the model's)",
    "lsd_steps": "flow-head decode steps per frame",
    "noise_clamp": "truncate start noise to [-x, x]",
    "eos_threshold": "EOS logit threshold (default: the model's)",
    "frames_after_eos": "frames generated after end of speech (default: guessed per chunk)",
    "max_frames": "cap on frames per text chunk (default: estimated from its length)",
    "max_tokens_per_chunk": "long text is split into chunks of at most this many tokens",
    "seed": "noise seed (default: random)",
    "on_no_eos": "what to do when a chunk ends without EOS",
}


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="english", help="official model name")
    g.add_argument("--config", help="model config YAML (instead of --model)")
    g.add_argument("--weights", help="local safetensors checkpoint")
    g.add_argument("--tokenizer", help="local tokenizer (.model or .json)")


def _add_generation_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generation")
    defaults = GenerationOptions()
    for f in dataclasses.fields(GenerationOptions):
        flag = "--" + _FLAG_NAMES.get(f.name, f.name.replace("_", "-"))
        default = getattr(defaults, f.name)
        if f.name == "on_no_eos":
            g.add_argument(
                flag,
                dest=f.name,
                default=default,
                choices=["warn", "ignore", "raise"],
                help=_OPTION_HELP[f.name],
            )
        else:
            conv = int if str(f.type).startswith("int") else float  # "int", "int | None", ...
            g.add_argument(flag, dest=f.name, type=conv, default=default, help=_OPTION_HELP[f.name])


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="voxlet", description="Streaming text to speech.", formatter_class=fmt
    )
    from voxlet import __version__

    parser.add_argument("--version", action="version", version=f"voxlet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    say = sub.add_parser("say", help="speak text", formatter_class=fmt)
    say.add_argument("text", nargs="?", help="text to speak; '-' or absent reads stdin")
    say.add_argument("-f", "--file", help="read the text from a file")
    say.add_argument("--voice", help="audio file, voice .safetensors or predefined name")
    say.add_argument("-o", "--output", default="voxlet.wav", help="output path, or - for stdout")
    say.add_argument(
        "--format",
        choices=["wav", "s16le", "f32le"],
        default="wav",
        help="output format (files are always WAV)",
    )
    say.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    _add_model_flags(say)
    _add_generation_flags(say)

    voices = sub.add_parser("voices", help="list predefined voices", formatter_class=fmt)
    voices.add_argument("--model", default="english")

    export = sub.add_parser(
        "export-voice", help="audio prompt -> voice .safetensors", formatter_class=fmt
    )
    export.add_argument("audio")
    export.add_argument("out")
    export.add_argument("-q", "--quiet", action="store_true")
    _add_model_flags(export)

    download = sub.add_parser(
        "download", help="prefetch a model into the cache", formatter_class=fmt
    )
    download.add_argument("--model", default="english")
    return parser


def _load(args: argparse.Namespace):
    from voxlet.tts import TTS

    if args.config:
        return TTS.load(config=args.config, weights=args.weights, tokenizer=args.tokenizer)
    return TTS.load(args.model, weights=args.weights, tokenizer=args.tokenizer)


def _read_text(args: argparse.Namespace) -> str:
    if args.file:
        return Path(args.file).read_text(encoding="utf-8")
    if args.text in (None, "-"):
        if args.text is None and sys.stdin.isatty():
            raise VoxletError("no text: give TEXT, -f FILE, or pipe text on stdin")
        return sys.stdin.read()
    return str(args.text)


def _say(args: argparse.Namespace) -> int:
    from voxlet.sinks import StdoutSink, WavFileSink

    text = _read_text(args)
    opts = GenerationOptions(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(GenerationOptions)}
    )
    start = time.perf_counter()
    # The sink opens first, so an unwritable output fails before the model loads.
    sink = (
        StdoutSink(args.format, SAMPLE_RATE_HZ)
        if args.output == "-"
        else WavFileSink(args.output, SAMPLE_RATE_HZ)
    )
    first_ms, n_frames = None, 0
    try:
        tts = _load(args)
        voice = tts.voice(args.voice)
        log.info("model and voice ready in %.0f ms", 1000 * (time.perf_counter() - start))
        t0 = time.perf_counter()
        for pcm in tts.stream(text, voice, opts):
            sink.write(pcm)
            n_frames += 1
            if first_ms is None:
                first_ms = 1000 * (time.perf_counter() - t0)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    wall = time.perf_counter() - t0
    audio_s = n_frames * FRAME_MS / 1000
    log.info(
        "first audio %.0f ms; %.2f s of audio in %.2f s (%.1fx real time)",
        first_ms or 0,
        audio_s,
        wall,
        audio_s / wall if wall else 0.0,
    )
    return 0


def _export_voice(args: argparse.Namespace) -> int:
    tts = _load(args)
    voice = tts.voice(args.audio)
    tts.save_voice(voice, args.out)
    log.info("wrote %s", args.out)
    return 0


def _download(args: argparse.Namespace) -> int:
    from voxlet.tts import TTS

    TTS.load(args.model)
    log.info("model %s is in the cache", args.model)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="voxlet: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "say":
            return _say(args)
        if args.command == "voices":
            default = registry.default_voice(args.model)
            for name in registry.PREDEFINED_VOICES:
                print(name + ("  (default)" if name == default else ""))
            return 0
        if args.command == "export-voice":
            return _export_voice(args)
        return _download(args)
    except BrokenPipeError:
        # The reader went away: stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    except (VoxletError, ValueError, OSError) as e:
        log.error("%s", e)
        return 1
