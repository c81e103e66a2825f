"""Training voxlet's own models: `voxlet train data | codec | ...`.

Stages, each resumable and run from the CLI (`voxlet.train.cli`):
1. data: (24 kHz audio, text) pairs from a teacher voice or recordings (`data`, `corpus`,
   `dataset`, `teacher`);
2. codec: the Mimi-style VAE on that audio (`codec`, `losses`);
then the FlowLM on the codec's latents, and export to the official checkpoint layout.
Shared machinery (run folders, checkpoints, metrics, torchrun) is in `run`.
"""

from pathlib import Path

DEFAULT_LAYOUT = Path(__file__).parent / "layouts" / "voxlet_2m.yaml"
