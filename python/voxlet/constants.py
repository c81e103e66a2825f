"""Fixed facts of the Pocket TTS family, with their derivations."""


def exact_div(x: int, y: int) -> int:
    """Divides x by y, raising if the division leaves a remainder."""
    if x % y:
        raise ValueError(f"{x} is not divisible by {y}")
    return x // y


SAMPLE_RATE_HZ = 24_000
FRAME_RATE_HZ = 12.5  # one latent frame per 80 ms
SAMPLES_PER_FRAME = exact_div(SAMPLE_RATE_HZ * 2, 25)  # 1920 samples = 80 ms at 24 kHz
FRAME_MS = 1000.0 / FRAME_RATE_HZ  # 80.0
LATENT_DIM = 32

FADE_IN_SAMPLES = exact_div(SAMPLE_RATE_HZ * 5, 1000)  # 120 samples: 5 ms fade-in at stream start
MIN_FRAMES_BEFORE_EOS = 6  # EOS flags below this step are ignored (reference 4.0.1)
VOICE_PAUSE_FRAME_SAMPLES = exact_div(SAMPLE_RATE_HZ * 20, 1000)  # 480: 20 ms RMS frames
VOICE_PAUSE_DB = 35.0  # keep audio up to the last frame within 35 dB of the loudest
VOICE_TAIL_SILENCE_SAMPLES = SAMPLES_PER_FRAME  # 80 ms of zeros appended to a voice prompt
VOICE_MAX_SECONDS = 30.0  # voice prompts are truncated to this length
MAX_TEXT_BYTES = 1_000_000  # the most text the CLI reads from a file or stdin (~16 h of speech)
