"""`voxlet` command line: say, voices, export-voice, download. Logs on stderr, audio on stdout."""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

from voxlet import registry
from voxlet.constants import FRAME_MS, MAX_TEXT_BYTES, SAMPLE_RATE_HZ
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
    "speed": "playback speed, pitch kept (0.25-4.0)",
    "normalize": "read the text as written: no normalisation of numbers, dates, units, ...",
}


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="english", help="official model name")
    g.add_argument("--config", help="model config YAML (instead of --model)")
    g.add_argument("--weights", help="local safetensors checkpoint")
    g.add_argument("--tokenizer", help="local tokenizer (.model or .json)")
    g.add_argument(
        "--precision",
        choices=["fp32", "int8"],
        default="fp32",
        help="int8: int8 transformer and flow-head weights, faster and smaller (opt-in)",
    )
    g.add_argument(
        "--backend",
        choices=["native", "torch-free", "torch"],
        default="torch-free",
        help="torch-free: voxlet's own runtime, no PyTorch (the fastest to start and at "
        "least as fast to speak); native: voxlet's kernels in the PyTorch model (needs "
        "voxlet[torch]; torch-free without it); torch: PyTorch throughout, the reference path",
    )


def _add_generation_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generation")
    defaults = GenerationOptions()
    for f in dataclasses.fields(GenerationOptions):
        flag = "--" + _FLAG_NAMES.get(f.name, f.name.replace("_", "-"))
        default = getattr(defaults, f.name)
        if f.type in (bool, "bool"):
            g.add_argument(
                f"--no-{f.name.replace('_', '-')}",
                dest=f.name,
                action="store_false",
                default=default,
                help=_OPTION_HELP[f.name],
            )
        elif f.name == "on_no_eos":
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


class _HelpFormatter(argparse.HelpFormatter):
    """Appends a flag's default to its help once: not where the help already states it, nor
    for flags without one (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: {default})"


def build_parser() -> argparse.ArgumentParser:
    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog="voxlet", description="Streaming text to speech.", formatter_class=fmt
    )
    from voxlet import __version__

    parser.add_argument("--version", action="version", version=f"voxlet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    say = sub.add_parser("say", help="speak text", formatter_class=fmt)
    say.add_argument("text", nargs="?", help="text to speak; '-' or absent reads stdin")
    say.add_argument("-f", "--file", help="read the text from a file")
    say.add_argument(
        "--stream-text",
        action="store_true",
        help="speak stdin as it arrives, each sentence once complete (text still being "
        "written, such as a language model's answer piped in)",
    )
    say.add_argument("--voice", help="audio file, voice .safetensors or predefined name")
    say.add_argument(
        "-o",
        "--output",
        help="output WAV path, or - for stdout (default: voxlet.wav, or nothing with --play)",
    )
    say.add_argument(
        "--format",
        choices=["wav", "s16le", "f32le"],
        default="wav",
        help="stdout format (files are always WAV)",
    )
    say.add_argument(
        "--rate",
        type=_rate,
        help="output sample rate in Hz, 1000-768000 (default: 24000, or the device's with --play)",
    )
    say.add_argument(
        "--word-timings",
        metavar="PATH",
        help="also write when each word is said: WebVTT (.vtt), SubRip (.srt) or JSON (other)",
    )
    say.add_argument("--play", action="store_true", help="play on the speakers")
    say.add_argument("--device", help="output device name or index for --play")
    say.add_argument(
        "--prebuffer-ms",
        type=float,
        default=80.0,
        help="audio buffered before --play starts (more: fewer underruns)",
    )
    say.add_argument(
        "--threads",
        default="1,1",
        help="compute threads: N for both worker threads, or FLOWLM,MIMI",
    )
    say.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    say.add_argument("-v", "--verbose", action="store_true", help="per-stream timing details")
    _add_model_flags(say)
    _add_generation_flags(say)

    voices = sub.add_parser(
        "voices", help="list predefined voices (and which are cached)", formatter_class=fmt
    )
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

    from voxlet.serve.cli import add_parser as add_serve_parser
    from voxlet.train.cli import add_parser as add_train_parser

    add_serve_parser(sub, _add_model_flags, fmt)
    add_train_parser(sub)
    return parser


def _load(args: argparse.Namespace):
    from voxlet.tts import TTS

    if args.config:
        return TTS.load(
            config=args.config,
            weights=args.weights,
            tokenizer=args.tokenizer,
            precision=args.precision,
            backend=args.backend,
        )
    return TTS.load(
        args.model,
        weights=args.weights,
        tokenizer=args.tokenizer,
        precision=args.precision,
        backend=args.backend,
    )


def _rate(text: str) -> int:
    """--rate: an integer sample rate the resampler takes (0 is not "the default")."""
    try:
        rate = int(text)
    except ValueError:
        rate = 0
    if not 1000 <= rate <= 768_000:
        raise argparse.ArgumentTypeError(f"must be an integer from 1000 to 768000 Hz, got {text!r}")
    return rate


def _read_text(args: argparse.Namespace) -> str | Iterator[str]:
    if args.stream_text:
        if args.file or args.text not in (None, "-"):
            raise VoxletError("--stream-text reads stdin: give no TEXT and no -f FILE")
        if sys.stdin.isatty():
            raise VoxletError("--stream-text: pipe text on stdin")
        return _stdin_fragments()
    if args.file:
        if args.text is not None:
            raise VoxletError("give TEXT or -f FILE, not both")
        try:
            with open(args.file, "rb") as f:
                return _decode(f.read(MAX_TEXT_BYTES + 1), f"-f {args.file}")
        except IsADirectoryError as e:
            raise VoxletError(f"-f {args.file}: is a directory") from e
    if args.text in (None, "-"):
        if args.text is None and sys.stdin.isatty():
            raise VoxletError("no text: give TEXT, -f FILE, or pipe text on stdin")
        return _decode(sys.stdin.buffer.read(MAX_TEXT_BYTES + 1), "stdin")
    return str(args.text)


def _stdin_fragments() -> Iterator[str]:
    """Stdin's UTF-8 text as it arrives, at most MAX_TEXT_BYTES in all."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    fd, total = sys.stdin.buffer.fileno(), 0
    while True:
        data = os.read(fd, 4096)
        total += len(data)
        if total > MAX_TEXT_BYTES:
            raise VoxletError(f"stdin: more than {MAX_TEXT_BYTES} bytes of text; split it")
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as e:
            raise VoxletError(f"stdin: not UTF-8 text (byte {total - len(data) + e.start})") from e
        if text:
            yield text
        if not data:
            return


def _decode(data: bytes, source: str) -> str:
    """UTF-8 text of at most MAX_TEXT_BYTES, read in bounded memory; a one-line error naming
    the source otherwise."""
    if len(data) > MAX_TEXT_BYTES:
        raise VoxletError(f"{source}: more than {MAX_TEXT_BYTES} bytes of text; split it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise VoxletError(f"{source}: not UTF-8 text (byte {e.start})") from e


def _threads(spec: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in spec.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise VoxletError(f"--threads: expected N or FLOWLM,MIMI (positive integers), got {spec!r}")
    return (parts[0], parts[-1])


def _say(args: argparse.Namespace) -> int:
    from voxlet.runtime import StreamOptions

    text = _read_text(args)
    opts = GenerationOptions(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(GenerationOptions)}
    )
    if args.play and args.output is not None:
        raise VoxletError("choose one of --play and -o")
    flowlm_threads, mimi_threads = _threads(args.threads)
    start = time.perf_counter()
    # The sinks open before the model loads, so a bad output fails at once.
    sink = None if args.play else _open_sink(args)
    timings = None
    try:
        if args.word_timings is not None:
            timings = _open_timings(args)
        if args.play:
            from voxlet.sinks.device import device_rate_hz

            device = int(args.device) if args.device and args.device.isdigit() else args.device
            rate = args.rate if args.rate is not None else device_rate_hz(device)
        else:
            rate = args.rate if args.rate is not None else SAMPLE_RATE_HZ
        options = StreamOptions(
            output_rate_hz=rate, flowlm_threads=flowlm_threads, mimi_threads=mimi_threads
        )
        tts = _load(args)
        voice = tts.voice(args.voice)
        log.info("model and voice ready in %.0f ms", 1000 * (time.perf_counter() - start))
        stream = tts.open_stream(text, voice, opts, options, word_timings=timings is not None)
        try:
            if sink is None:
                _play(stream, device, args.prebuffer_ms)
            else:
                for item in stream.items():
                    if isinstance(item, tuple):  # a WordTiming
                        if timings is not None:
                            timings.add([item])
                    else:
                        sink.write(item)
        finally:
            stream.stop()
        if timings is not None:
            timings.add(stream.take_words())
    except BaseException:
        if sink is not None:
            sink.abort()
        if timings is not None:
            timings.abort()
        raise
    if sink is not None:
        sink.close()
    if timings is not None:
        timings.close()
    _report(stream, args.verbose)
    return 0


def _open_sink(args: argparse.Namespace):
    from voxlet.sinks import StdoutSink, WavFileSink

    rate = args.rate if args.rate is not None else SAMPLE_RATE_HZ
    if args.output == "-":
        return StdoutSink(args.format, rate)
    return WavFileSink("voxlet.wav" if args.output is None else args.output, rate)


def _open_timings(args: argparse.Namespace):
    from voxlet.sinks.timings import WordTimingsFile

    if args.word_timings == "-":
        raise VoxletError("--word-timings: give a file path (stdout carries only audio)")
    if args.output not in (None, "-") and os.path.realpath(args.output) == os.path.realpath(
        args.word_timings
    ):
        raise VoxletError(f"--word-timings {args.word_timings}: is the audio output too")
    return WordTimingsFile(args.word_timings)


def _play(stream, device, prebuffer_ms: float) -> None:
    from voxlet.runtime.speech import Speech
    from voxlet.sinks.device import DevicePlayer

    player = DevicePlayer(stream, device, prebuffer_ms)
    speech = Speech(stream, player)
    try:
        speech.wait()
    finally:
        speech.stop()
    if player.underruns:
        log.warning("%d underruns during playback", player.underruns)


def _report(stream, verbose: bool) -> None:
    stats = stream.stats
    n_frames = len(stats.mimi_frame_s)
    audio_s = n_frames * FRAME_MS / 1000
    wall = time.monotonic() - stats.started_at
    log.info(
        "first audio %.0f ms; %.2f s of audio in %.2f s (%.1fx real time)",
        stats.first_audio_ms or 0.0,
        audio_s,
        wall,
        audio_s / wall if wall else 0.0,
    )
    if verbose and stats.latent_times:
        steps, frames = stats.flowlm_step_s, stats.mimi_frame_s
        log.info(
            "flowlm step %.1f ms, mimi frame %.1f ms (medians); first audio at %.6f, "
            "last latent at %.6f (CLOCK_MONOTONIC)",
            1000 * sorted(steps)[len(steps) // 2],
            1000 * sorted(frames)[len(frames) // 2],
            stats.first_audio_at or 0.0,
            stats.latent_times[-1],
        )


def _export_voice(args: argparse.Namespace) -> int:
    from voxlet.errors import DownloadError

    try:
        tts = _load(args)
    except DownloadError as e:
        if args.config or args.weights or "model weights" not in str(e):
            raise
        # the advice for the weights without voice cloning would not help here
        raise DownloadError(
            "export-voice clones a voice, which needs the voice-cloning weights "
            "(kyutai/pocket-tts on the Hugging Face hub, gated: accept its terms, then "
            "`huggingface-cli login`), or --weights PATH to such a checkpoint"
        ) from e
    voice = tts.voice(args.audio)
    tts.save_voice(voice, args.out)
    log.info("wrote %s", args.out)
    return 0


def _download(args: argparse.Namespace) -> int:
    from voxlet.tts import TTS

    tts = TTS.load(args.model)
    tts.voice(registry.default_voice(args.model))
    log.info("model %s and its default voice are in the cache", args.model)
    return 0


def _voices(model: str) -> int:
    from voxlet import hub

    registry.official_config(model)  # an unknown name: a ConfigError listing the names
    default = registry.default_voice(model)
    for name in registry.PREDEFINED_VOICES:
        marks = ["default"] if name == default else []
        if hub.is_cached(registry.voice_url(model, name)):
            marks.append("cached")
        print(name + (f"  ({', '.join(marks)})" if marks else ""))
    return 0


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so outputs are cleaned up."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


def unwind_on_signal(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM and SIGHUP unwind through the same cleanup as Ctrl-C while the command runs (the
    # handlers before it are put back after it, for callers that run it in process)
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    before = {sig: signal.signal(sig, unwind_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return _main(argv)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _log_to_stderr(level: int) -> None:
    """voxlet's own records ("voxlet: ...") on stderr at `level`; other libraries keep
    Python's default (warnings and worse), so their debug chatter stays out."""
    if any(getattr(h, "_voxlet", False) for h in log.handlers):
        log.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("voxlet: %(message)s"))
    handler._voxlet = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def _main(argv: list[str] | None) -> int:
    try:
        from voxlet._entry import quiet_signals

        with quiet_signals():  # the parser imports each command's flags: nothing is open yet
            args = build_parser().parse_args(argv)
        _log_to_stderr(logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    except KeyboardInterrupt:
        return 130
    except Terminated as e:  # nothing is open yet: no word to say
        return e.exit_code
    try:
        if args.command in ("say", "export-voice", "download", "serve"):
            from voxlet._entry import import_quietly

            import_quietly("voxlet.tts")
            from voxlet.tts import TORCH_MODULES, resolve_backend

            if resolve_backend(getattr(args, "backend", "native")) != "torch-free":
                for module in TORCH_MODULES:  # PyTorch, before any output is opened
                    import_quietly(module)
        if args.command == "say":
            return _say(args)
        if args.command == "voices":
            return _voices(args.model)
        if args.command == "export-voice":
            return _export_voice(args)
        if args.command == "serve":
            from voxlet.serve.cli import main as serve_main

            return serve_main(args, _load)
        if args.command == "train":
            from voxlet.tts import require_torch

            require_torch("voxlet train", "train")
            from voxlet.train.cli import main as train_main

            return train_main(args)
        return _download(args)
    except BrokenPipeError:
        # The reader went away: stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130
    except Terminated as e:
        log.warning("stopped by %s", e)
        return e.exit_code
    except (VoxletError, ValueError, OSError) as e:
        log.error("%s", e)
        return 1
