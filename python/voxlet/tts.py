"""`TTS`: the public entry point. Loads a model, makes voices, streams speech.

Example:
    >>> tts = TTS.load(config="tiny_config.yaml")
    >>> voice = tts.voice("prompt.wav")
    >>> for pcm in tts.stream("Hello world.", voice):  # float32 [1920] at 24 kHz
    ...     ...
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import numpy as np
import numpy.typing as npt

from voxlet import hub, registry
from voxlet.config import Environment, ModelConfig
from voxlet.constants import SAMPLE_RATE_HZ, VOICE_MAX_SECONDS
from voxlet.errors import ConfigError, DownloadError, TextError, VoiceError
from voxlet.options import GenerationOptions, check_precision
from voxlet.plan import ChunkEnd, ChunkPlan, estimate_max_frames
from voxlet.runtime import Stream, StreamOptions
from voxlet.runtime.engine import Engine, PlanSource
from voxlet.runtime.model import SpeechModel
from voxlet.runtime.speech import CallbackPlayer, Speech
from voxlet.runtime.text_feed import incremental_plans
from voxlet.runtime.word_clock import WordTiming
from voxlet.text import TextChunk, TextRules, Tokenizer, load_tokenizer, split_into_chunks
from voxlet.text.markup import Pause
from voxlet.text.markup import parse as parse_markup
from voxlet.text.normalize import Rewrite, normalize_aligned
from voxlet.text.words import mark_words

if TYPE_CHECKING:
    from voxlet.model.backend import Backend
    from voxlet.model.network import PocketTTS
    from voxlet.model.speech import TorchSpeech
    from voxlet.model.voice import VoiceState
    from voxlet.native.voice import NativeVoice

log = logging.getLogger(__name__)

_AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif"}


DEFAULT_VOICE_FILE = "voice.safetensors"  # beside a local config: its default voice


@dataclass(frozen=True, slots=True)
class Voice:
    """A ready voice: the FlowLM prefix it stands for (a voice state of the model that made
    it), and where it came from."""

    state: Any
    source: str


class TTS:
    """A loaded model. Stateless between calls: every stream owns its own state."""

    def __init__(
        self,
        cfg: ModelConfig,
        model: SpeechModel,
        tokenizer: Tokenizer,
        has_voice_cloning: bool,
        precision: str = "fp32",
        language: str = "en",
    ):
        self.config = cfg
        self.language = language  # what text normalisation reads the text as
        self.precision = precision
        self.model = model  # what the runtime runs: PyTorch's, or voxlet's own (torch-free)
        # the PyTorch network, for the torch backends (None for the torch-free one)
        self.network: PocketTTS | None = getattr(model, "network", None)
        self.tokenizer = tokenizer
        self.has_voice_cloning = has_voice_cloning
        self.text_rules = TextRules(
            cfg.replace_characters, cfg.remove_semicolons, cfg.pad_with_spaces_for_short_inputs
        )
        self._engines: dict[int, Engine] = {}  # the streams' shared engines, by thread count
        self._engines_lock = threading.Lock()
        if tokenizer.vocab_size != cfg.flow_lm.lookup_table.n_bins:
            raise ConfigError(
                f"flow_lm.lookup_table.n_bins: {cfg.flow_lm.lookup_table.n_bins}, but the "
                f"tokenizer has {tokenizer.vocab_size} pieces"
            )

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE_HZ

    @staticmethod
    def load(
        name: str | None = None,
        *,
        config: str | Path | ModelConfig | None = None,
        weights: str | Path | None = None,
        tokenizer: str | Path | None = None,
        precision: str = "fp32",
        backend: str | Backend = "torch-free",
        language: str | None = None,
    ) -> TTS:
        """Loads an official model by name, or a model from a local config file.

        Args:
            name: an official model ("english", "german", ...); exclusive with `config`.
            config: a reference-schema YAML file (or a ModelConfig).
            weights: a local safetensors checkpoint; overrides VOXLET_WEIGHTS and the config.
            tokenizer: a SentencePiece `.model` or tokenizers `.json`; overrides the config.
            precision: "fp32" (float32 throughout: the reference's numerics to float rounding,
                the goldens' 2e-5) or "int8" (int8 weights in the
                FlowLM transformer, flow head, Mimi decoder transformer and the decoder's
                widest convolutions: faster and smaller, opt-in).
            backend: "torch-free" (voxlet's own runtime: the checkpoint read straight into
                the Rust kernels, no PyTorch import; the default, the same whether PyTorch is
                installed or not), "native" (the PyTorch model with voxlet's Rust kernels for
                the layers they support, PyTorch for the rest; without PyTorch installed,
                "torch-free"), "torch" (PyTorch layers throughout: the reference path), or a
                `voxlet.model.backend.Backend` of your own.
            language: the language the model speaks ("en", "fr", ...), for text
                normalisation; default: the official model's, and "en" for a local config.

        Raises:
            ConfigError, WeightsError, DownloadError: with what went wrong and what to do.
        """
        check_precision(precision)
        backend = resolve_backend(backend)
        if name is not None and config is not None:
            raise ConfigError("pass either a model name or a config, not both")
        if isinstance(config, ModelConfig):
            cfg = config
        elif config is not None:
            cfg = ModelConfig.load(config)
        else:
            cfg = registry.official_config(name or "english")
        env = Environment.read()
        weights_path = _resolve_weights(cfg, weights or env.weights)
        tok_location = str(
            tokenizer or env.tokenizer or cfg.resolve(cfg.flow_lm.lookup_table.tokenizer_path)
        )
        tok_path = hub.fetch(
            tok_location, what="tokenizer", flag="--tokenizer", env_var="VOXLET_TOKENIZER"
        )
        model: SpeechModel
        if backend == "torch-free":
            from voxlet.native.speech import NativeSpeech

            model = NativeSpeech(cfg, weights_path, precision)
        else:
            model = _load_torch(cfg, weights_path, precision, backend)
        tok = load_tokenizer(tok_path)
        if language is not None and not isinstance(language, str):
            raise ConfigError(f"language: must be a language code such as 'en', got {language!r}")
        if language is None:
            language = registry.language_code(name or "english") if config is None else "en"
        return TTS(cfg, model, tok, model.has_voice_cloning, precision, language)

    # Voices -------------------------------------------------------------------------------

    def voice(self, spec: str | Path | Voice | object | None = None) -> Voice:
        """A voice from an audio file (cloning), a voice `.safetensors`, a predefined name,
        or a voice state of this model."""
        if isinstance(spec, Voice):
            return spec
        if self.model.is_voice(spec):
            return Voice(spec, "state")
        if spec is None:
            return self.voice(self.default_voice())
        if not isinstance(spec, str | Path):
            raise VoiceError(
                f"voice: must be a name, a path or a Voice of this model, got {type(spec).__name__}"
            )
        spec = str(spec)
        path = Path(spec).expanduser()
        if path.suffix == ".safetensors" and path.is_file():
            return Voice(self.model.load_voice(path), str(path))
        if path.is_file():
            return Voice(self._clone(path), str(path))
        if spec in registry.PREDEFINED_VOICES and self.is_official:
            local = hub.fetch(
                registry.voice_url(self.config.name, spec), what="voice", flag="--voice"
            )
            return Voice(self.model.load_voice(Path(local)), spec)
        if path.is_dir():
            raise VoiceError(
                f"voice {path}: is a directory; give an audio file or a voice .safetensors"
            )
        if path.suffix or "/" in spec:
            raise VoiceError(f"voice file not found: {path}")
        if spec in registry.PREDEFINED_VOICES:
            raise VoiceError(
                f"voice {spec!r} is a predefined voice of the official models, and this model "
                f"({self.config.name}, a local config) has none: pass an audio file to clone "
                "or a voice .safetensors"
            )
        raise VoiceError(
            f"unknown voice {spec!r}: give an audio file, a voice .safetensors, or one of "
            f"{', '.join(registry.PREDEFINED_VOICES)} (predefined voices need an official model)"
        )

    @property
    def is_official(self) -> bool:
        """Whether this is an official model loaded by name (with predefined voices)."""
        return self.config.base_dir is None and self.config.name in registry.model_names()

    def default_voice(self) -> str:
        """What a call without a voice uses: an official model's default predefined voice, or
        the `voice.safetensors` beside a local config (the folder `voxlet train export`
        writes); a VoiceError where the model has neither."""
        if self.is_official:
            return registry.default_voice(self.config.name)
        if self.config.base_dir is not None:
            beside = Path(self.config.base_dir) / DEFAULT_VOICE_FILE
            if beside.is_file():
                return str(beside)
        raise VoiceError(
            f"model {self.config.name!r} has no default voice: pass a voice (an audio file to "
            f"clone, or a voice .safetensors), or put one beside its config as {DEFAULT_VOICE_FILE}"
        )

    def voice_from_audio(self, samples: npt.ArrayLike, sample_rate_hz: int) -> Voice:
        """Clones a voice from samples (N,) or (N, C) at `sample_rate_hz`."""
        if not self.has_voice_cloning:
            raise VoiceError(
                "this checkpoint has no voice-cloning encoder; use a prebaked voice "
                "(.safetensors or a predefined name)"
            )
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[:, None]
        if sample_rate_hz <= 0:
            raise VoiceError(f"invalid voice prompt sample rate: {sample_rate_hz} Hz")
        audio = audio[: int(VOICE_MAX_SECONDS * sample_rate_hz)]
        if sample_rate_hz != SAMPLE_RATE_HZ:
            from voxlet.audio import resample

            audio = resample(audio, sample_rate_hz, SAMPLE_RATE_HZ)
        mono = np.ascontiguousarray(audio.mean(axis=1) if audio.ndim == 2 else audio, np.float32)
        return Voice(self.model.clone(mono), "audio")

    def _clone(self, path: Path) -> Any:
        from voxlet.audio import AudioError, read_audio

        try:
            samples, rate = read_audio(path)
        except AudioError as e:
            raise VoiceError(str(e)) from e
        return self.voice_from_audio(samples, rate).state

    def save_voice(self, voice: Voice | object, path: str | Path) -> None:
        """Writes a voice in the official safetensors format."""
        state = voice.state if isinstance(voice, Voice) else voice
        if not self.model.is_voice(state):
            raise VoiceError(f"save_voice: not a voice of this model ({type(state).__name__})")
        self.model.save_voice(state, Path(path))

    # Generation ---------------------------------------------------------------------------

    def engine(self, threads: int = 1) -> Engine:
        """An engine of your own for this model: streams opened with `engine=` have their
        FlowLM frames made on its one thread, stepped together (`voxlet.runtime.engine`);
        `close()` it. Streams opened without one share this model's own engine (one per
        `StreamOptions.flowlm_threads`), so streams running at once are batched anyway."""
        return Engine(self.model, threads)

    def _shared_engine(self, options: StreamOptions | None) -> Engine:
        threads = (options or StreamOptions()).flowlm_threads
        with self._engines_lock:
            engine = self._engines.get(threads)
            if engine is None:
                engine = self._engines[threads] = Engine(self.model, threads)
            return engine

    def chunks(self, text: str, opts: GenerationOptions) -> list[TextChunk]:
        """The text chunks of `text`, markup read and pauses left out."""
        return [c for c in self._pieces(text, opts) if isinstance(c, TextChunk)]

    def _pieces(
        self,
        text: str,
        opts: GenerationOptions,
        continuation: bool = False,
        context: str = "",
        require_speech: bool = True,
        words: bool = False,
    ) -> list[TextChunk | Pause]:
        """Markup (pauses) read first, then each piece of text normalised and chunked.
        `continuation`: `text` continues text already planned (text still being written), the
        end of which is `context`. `require_speech`: text with nothing to say (only pauses)
        is a TextError; text still being written checks that over the whole stream instead.
        `words`: each chunk carries the written words it says (for word timings)."""
        pieces: list[TextChunk | Pause] = []
        for i, piece in enumerate(parse_markup(text)):
            if isinstance(piece, Pause):
                pieces.append(piece)
                continue
            said, rewrites = piece, list[Rewrite]()
            if opts.normalize:
                said, rewrites = normalize_aligned(piece, self.language, context if i == 0 else "")
            budget = opts.max_tokens_per_chunk
            chunks = split_into_chunks(
                said, self.tokenizer, self.text_rules, budget, continuation and i == 0
            )
            if words:
                marks = mark_words(piece, said, rewrites, [c.raw for c in chunks])
                chunks = [
                    dataclasses.replace(c, words=m) for c, m in zip(chunks, marks, strict=True)
                ]
            pieces.extend(chunks)
        if require_speech and not any(isinstance(p, TextChunk) for p in pieces):
            raise TextError("Text prompt cannot be empty")
        return pieces

    def plan(self, chunk: TextChunk, opts: GenerationOptions) -> ChunkPlan:
        """Merges per-call options with the model's defaults for one chunk."""
        cfg = self.config
        if opts.frames_after_eos is not None:
            after = opts.frames_after_eos
        elif cfg.model_recommended_frames_after_eos is not None:
            after = cfg.model_recommended_frames_after_eos
        else:
            after = chunk.frames_after_eos_guess + 2
        n_tokens = len(chunk.token_ids)
        return ChunkPlan(
            token_ids=chunk.token_ids,
            max_frames=opts.max_frames or estimate_max_frames(n_tokens),
            frames_after_eos=after,
            temperature=cfg.default_temperature if opts.temperature is None else opts.temperature,
            eos_threshold=(
                cfg.default_eos_threshold if opts.eos_threshold is None else opts.eos_threshold
            ),
            lsd_steps=opts.lsd_steps,
            noise_clamp=opts.noise_clamp,
            on_no_eos=opts.on_no_eos,
            words=chunk.words,
        )

    def plans(
        self, text: str, opts: GenerationOptions, words: bool = False
    ) -> list[ChunkPlan | Pause]:
        """Reads markup, prepares, splits and tokenizes `text` (raises TextError) -> one plan
        per chunk, and the pauses between them. `words`: plans carry their written words."""
        return [
            piece if isinstance(piece, Pause) else self.plan(piece, opts)
            for piece in self._pieces(text, opts, words=words)
        ]

    def _text_feed(
        self, fragments: Iterable[str], opts: GenerationOptions, words: bool = False
    ) -> PlanSource:
        """Plans for text still being written (see voxlet.runtime.text_feed)."""
        if isinstance(fragments, bytes | bytearray) or not isinstance(fragments, Iterable):
            raise TextError(
                f"text: must be a str or an iterable of str, got {type(fragments).__name__}"
            )
        source = incremental_plans(
            fragments,
            lambda text, context: self._pieces(
                text, opts, context is not None, context or "", require_speech=False, words=words
            ),
            _same_piece,
            window_chars=20 * opts.max_tokens_per_chunk,
            is_speech=lambda piece: isinstance(piece, TextChunk),
        )

        def plans(stop: threading.Event) -> Iterator[ChunkPlan | Pause]:
            for piece in source(stop):
                yield piece if isinstance(piece, Pause) else self.plan(piece, opts)

        return plans

    @staticmethod
    def _seed(opts: GenerationOptions) -> int:
        return opts.seed if opts.seed is not None else secrets.randbits(63)

    def latents(self, text: str, voice: Voice, opts: GenerationOptions) -> Iterator[Any]:
        """Normalized latents (1, 32) for all chunks of `text`, on the calling thread (the
        model's array type: a torch tensor, or a numpy array for the torch-free backend)."""
        model = self.model
        rng = model.rng(self._seed(opts))
        with model.inference():
            for plan in self.plans(text, opts):
                if isinstance(plan, Pause):  # latents only: pauses exist in the audio
                    continue
                state = model.prompt_chunk(voice.state, plan)
                end, latent = ChunkEnd(plan), cast(Any, None)
                for i in range(plan.max_frames):
                    if end.done(i):
                        break
                    noise = model.noise(plan, rng)
                    [(latent, eos)] = model.step_batch([latent], [state], [noise], plan.lsd_steps)
                    end.frame(i, model.finite(latent), eos)
                    yield latent
                else:
                    end.finish()

    def open_stream(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = None,
        opts: GenerationOptions | None = None,
        stream_options: StreamOptions | None = None,
        *,
        word_timings: bool = False,
        engine: Engine | None = None,
    ) -> Stream:
        """Starts generating `text`; read it with `Stream.frames()` (or, with `word_timings`,
        `Stream.items()`: the audio and the words' timings). Its FlowLM frames are made on an
        engine's thread, stepped together with the engine's other streams (same bits): this
        model's shared engine, or `engine` (`TTS.engine()`); its decoder thread is its own.

        Text and voice problems raise here, before any thread starts (for text given as an
        iterable of fragments, text problems surface as a StreamError of the "flowlm" stage
        when that text is reached). The caller owns the threads: read to the end, or call
        `stop()`, or use the stream as a context manager.
        """
        return self._stream_factory(text, voice, opts, stream_options, word_timings, engine)()

    def _stream_factory(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None,
        opts: GenerationOptions | None,
        stream_options: StreamOptions | None,
        word_timings: bool = False,
        engine: Engine | None = None,
    ) -> Callable[[], Stream]:
        """Checks text and voice now; the returned callable starts the threads."""
        opts = opts or GenerationOptions()
        if not isinstance(word_timings, bool):
            raise ConfigError(f"word_timings: must be True or False, got {word_timings!r}")
        state = self.voice(voice).state
        plans: PlanSource = (
            self.plans(text, opts, word_timings)
            if isinstance(text, str)
            else self._text_feed(text, opts, word_timings)
        )
        seed, speed = self._seed(opts), opts.speed
        engine = engine or self._shared_engine(stream_options)
        if engine.model is not self.model:
            raise ConfigError("engine: was made by another model (use this model's TTS.engine())")
        return lambda: Stream(engine, state, plans, seed, stream_options, speed, word_timings)

    @overload
    def stream(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = ...,
        opts: GenerationOptions | None = ...,
        stream_options: StreamOptions | None = ...,
        *,
        word_timings: Literal[False] = ...,
        engine: Engine | None = ...,
    ) -> Iterator[npt.NDArray[np.float32]]: ...

    @overload
    def stream(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = ...,
        opts: GenerationOptions | None = ...,
        stream_options: StreamOptions | None = ...,
        *,
        word_timings: Literal[True],
        engine: Engine | None = ...,
    ) -> Iterator[npt.NDArray[np.float32] | WordTiming]: ...

    @overload
    def stream(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = ...,
        opts: GenerationOptions | None = ...,
        stream_options: StreamOptions | None = ...,
        *,
        word_timings: bool,
        engine: Engine | None = ...,
    ) -> Iterator[npt.NDArray[np.float32] | WordTiming]: ...

    def stream(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = None,
        opts: GenerationOptions | None = None,
        stream_options: StreamOptions | None = None,
        *,
        word_timings: bool = False,
        engine: Engine | None = None,
    ) -> Iterator[npt.NDArray[np.float32]] | Iterator[npt.NDArray[np.float32] | WordTiming]:
        """Yields float32 PCM frames as they are made: 1920 samples (80 ms) at 24 kHz, or 80 ms
        at `stream_options.output_rate_hz`. With `word_timings=True`, a `WordTiming(word,
        start_s, end_s)` for every word of the text as written comes among the frames, in
        order, before the audio that follows its chunk's speech (seconds from the start of
        the stream's audio, after speed and pauses).

        Text and voice are checked at once; the worker threads start with the first frame
        asked for, and stop when the loop ends, breaks, or the iterator is dropped.
        """
        start = self._stream_factory(text, voice, opts, stream_options, word_timings, engine)

        def items() -> Iterator[npt.NDArray[np.float32] | WordTiming]:
            stream = start()
            yield from stream.items() if word_timings else stream.frames()

        return items()

    @overload
    def synthesize(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = ...,
        opts: GenerationOptions | None = ...,
        stream_options: StreamOptions | None = ...,
        *,
        word_timings: Literal[False] = ...,
        engine: Engine | None = ...,
    ) -> npt.NDArray[np.float32]: ...

    @overload
    def synthesize(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = ...,
        opts: GenerationOptions | None = ...,
        stream_options: StreamOptions | None = ...,
        *,
        word_timings: Literal[True],
        engine: Engine | None = ...,
    ) -> tuple[npt.NDArray[np.float32], list[WordTiming]]: ...

    @overload
    def synthesize(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = ...,
        opts: GenerationOptions | None = ...,
        stream_options: StreamOptions | None = ...,
        *,
        word_timings: bool,
        engine: Engine | None = ...,
    ) -> npt.NDArray[np.float32] | tuple[npt.NDArray[np.float32], list[WordTiming]]: ...

    def synthesize(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = None,
        opts: GenerationOptions | None = None,
        stream_options: StreamOptions | None = None,
        *,
        word_timings: bool = False,
        engine: Engine | None = None,
    ) -> npt.NDArray[np.float32] | tuple[npt.NDArray[np.float32], list[WordTiming]]:
        """The whole utterance as one float32 array; with `word_timings=True`, the array and
        a `(word, start_s, end_s)` for every word of the text as written, in order."""
        frames: list[npt.NDArray[np.float32]] = []
        words: list[WordTiming] = []
        start = self._stream_factory(text, voice, opts, stream_options, word_timings, engine)
        for item in start().items():
            if isinstance(item, WordTiming):
                words.append(item)
            else:
                frames.append(item)
        audio = np.concatenate(frames) if frames else np.zeros(0, dtype=np.float32)
        return (audio, words) if word_timings else audio

    def speak(
        self,
        text: str | Iterable[str],
        voice: str | Path | Voice | VoiceState | NativeVoice | None = None,
        opts: GenerationOptions | None = None,
        *,
        on_audio: Callable[[npt.NDArray[np.float32]], object] | None = None,
        on_word: Callable[[WordTiming], object] | None = None,
        device: int | str | None = None,
        stream_options: StreamOptions | None = None,
        engine: Engine | None = None,
    ) -> Speech:
        """Speaks in the background and returns at once with a handle (`stop()`, `wait()`).

        With `on_audio`, each frame is handed to that callback (from a worker thread);
        otherwise it plays on the output `device` (default: the system default), resampled
        to the device's rate. With `on_word`, that callback is given each word's
        `WordTiming` (from thread "voxlet-words") as the word starts playing (or its frame
        is handed to `on_audio`): captions, or knowing where speech was cut off.
        `handle.stop()` cuts speech off within about one frame. `engine`: as `open_stream`.
        """
        timed = on_word is not None
        if on_audio is not None:
            stream = self.open_stream(
                text, voice, opts, stream_options, word_timings=timed, engine=engine
            )
            return Speech(stream, CallbackPlayer(stream, on_audio), on_word)
        from voxlet.sinks.device import DevicePlayer, device_rate_hz

        options = stream_options or StreamOptions(output_rate_hz=device_rate_hz(device))
        stream = self.open_stream(text, voice, opts, options, word_timings=timed, engine=engine)
        return Speech(stream, DevicePlayer(stream, device), on_word)


BACKENDS = ("native", "torch-free", "torch")


def _same_piece(a: TextChunk | Pause, b: TextChunk | Pause) -> bool:
    if isinstance(a, Pause) or isinstance(b, Pause):
        return a == b
    return a.text == b.text and a.raw == b.raw


def _torch_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a finder that refuses it, a broken install
        return False


def resolve_backend(backend: str | Backend) -> str | Backend:
    """The backend a load uses: `backend`, except "native" without PyTorch installed, which is
    "torch-free"; a ConfigError for an unknown name."""
    if isinstance(backend, str) and backend not in BACKENDS:
        raise ConfigError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "native" and not _torch_installed():
        return "torch-free"
    return backend


# what a load on a PyTorch backend imports (the CLI imports them first, quietly)
TORCH_MODULES = (
    "voxlet.model.backend.native",
    "voxlet.model.quantize",
    "voxlet.model.speech",
    "voxlet.model.weights",
)


def require_torch(feature: str, extra: str = "torch") -> None:
    """A ConfigError naming the extra that installs PyTorch, where it is not installed."""
    if not _torch_installed():
        raise ConfigError(f"{feature} needs PyTorch: pip install 'voxlet[{extra}]'")


def _load_torch(
    cfg: ModelConfig, weights_path: Path, precision: str, backend: str | Backend
) -> TorchSpeech:
    """The PyTorch network on `backend` ("native": with voxlet's kernels, "torch", or one of
    your own), loaded, quantized where asked, its memory settled, prepared."""
    require_torch(f"backend {backend!r} (use backend='torch-free' without it)")
    from voxlet.model import hugepages
    from voxlet.model.backend import TORCH
    from voxlet.model.quantize import quantize_network
    from voxlet.model.speech import TorchSpeech
    from voxlet.model.weights import (
        load_network,
        map_text_embedding,
        own_memory,
        release_cloning_weights,
    )

    chosen: Backend
    if backend == "torch":
        chosen = TORCH
    elif backend == "native":
        from voxlet.model.backend.native import NativeBackend

        chosen = NativeBackend(precision)
    elif isinstance(backend, str):
        raise ConfigError(f"backend {backend!r} is not a PyTorch backend")
    else:
        chosen = backend
    loaded = load_network(cfg, weights_path, chosen)
    network = loaded.network
    if loaded.has_voice_cloning:  # 37 MB for english, read back on first cloning
        release_cloning_weights(network)
    if precision == "int8":
        quantize_network(network)
    # what every frame streams from memory onto huge pages; the text embedding mapped from
    # the file (a text chunk touches a few rows); the rest copied, so the checkpoint's
    # mapping is released
    streamed = hugepages.gather(network.streamed_linears())
    map_text_embedding(network, weights_path)
    own_memory(network, keep=[*streamed, network.flow_lm.conditioner.embed.weight])
    network.prepare()
    return TorchSpeech(network, weights_path, loaded.has_voice_cloning)


def _resolve_weights(cfg: ModelConfig, override: str | Path | None) -> Path:
    if override is not None:
        return hub.fetch(
            str(override), what="model weights", flag="--weights", env_var="VOXLET_WEIGHTS"
        )
    primary = cfg.resolve(cfg.weights_path)
    fallback = cfg.resolve(cfg.weights_path_without_voice_cloning)
    if primary is None and fallback is None:
        raise ConfigError("weights_path: the config names no weights; pass weights=PATH")
    last_error: DownloadError | None = None
    for location in (primary, fallback):  # the cloning weights are gated; fall back
        if location is None:
            continue
        try:
            return hub.fetch(
                location, what="model weights", flag="--weights", env_var="VOXLET_WEIGHTS"
            )
        except DownloadError as e:
            log.debug("could not get %s: %s", location, e)
            last_error = e
    assert last_error is not None
    raise last_error
