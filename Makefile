# voxlet developer tasks. `make test` is what CI runs; `make say` speaks a sentence.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
TEXT ?= Hello from voxlet, a streaming text to speech engine.
OUT ?= hello.wav
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: install build say test test-rust test-python test-torch-free lint stubs bench clean \
	system-deps \
	fuzz train-deps train-data train-codec train-flow train-export train-voice

# The venv and every Python dependency; redone only when pyproject.toml or constraints change.
$(VENV)/.deps: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "maturin>=1.7,<2" -c constraints.txt
	$(PY) - <<< 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(d["dependencies"] + d["optional-dependencies"]["dev"]))' > $(VENV)/requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check -r $(VENV)/requirements.txt -c constraints.txt
	touch $@

# The Rust extension, built in release mode into python/voxlet (cargo rebuilds only what changed).
build: $(VENV)/.deps
	$(VENV)/bin/maturin develop --release -q

install: build

say: install
	$(VENV)/bin/voxlet say "$(TEXT)" -o $(OUT)

lint: install
	$(VENV)/bin/ruff check python tests benches tools
	$(VENV)/bin/ruff format --check python tests benches tools
	$(VENV)/bin/mypy
	$(PY) tools/gen_stubs.py --check
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -q -- -D warnings

test-rust:
	cargo test --workspace -q

# PortAudio, for playback tests through a real audio stack (ALSA). Installed when missing.
system-deps:
	@ldconfig -p | grep -q libportaudio.so || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing PortAudio (libportaudio2) with apt-get"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libportaudio2 >/dev/null; } || { \
	  echo "error: PortAudio is missing; install libportaudio2 (Debian/Ubuntu) or portaudio" >&2; \
	  exit 1; }

test-python: install system-deps
	VOXLET_SHARED=$(abspath $(SHARED)) $(PY) -m pytest -q -p no:cacheprovider tests

# The runtime as `pip install voxlet` installs it, without PyTorch: the wheel in a venv of its
# own with only the runtime's dependencies (and the test tools); tests/torch_free run there.
TORCH_FREE_VENV ?= .venv-torch-free
WHEELS := target/wheels
test-torch-free: build
	rm -f $(WHEELS)/voxlet-*.whl
	$(VENV)/bin/maturin build --release --strip -q -o $(WHEELS)
	test -x $(TORCH_FREE_VENV)/bin/python || python3 -m venv $(TORCH_FREE_VENV)
	$(TORCH_FREE_VENV)/bin/python -m pip install -q --disable-pip-version-check \
	  -c constraints.txt --force-reinstall $(WHEELS)/voxlet-*.whl
	$(TORCH_FREE_VENV)/bin/python -m pip install -q --disable-pip-version-check \
	  -c constraints.txt pytest pytest-timeout hypothesis safetensors
	@! $(TORCH_FREE_VENV)/bin/python -c "import torch" 2>/dev/null || \
	  { echo "error: torch is installed in $(TORCH_FREE_VENV)" >&2; exit 1; }
	VOXLET_SHARED=$(abspath $(SHARED)) $(TORCH_FREE_VENV)/bin/python -m pytest -q \
	  -p no:cacheprovider tests/torch_free

test: lint test-rust test-python test-torch-free

# Long fuzz runs (the test run does short ones): many more hypothesis examples over text,
# options, configs and corrupt files, and many more proptest cases over the WAV reader, the
# resampler and the PCM conversions. Failures proptest finds are kept in
# rust/audio/tests/fuzz.proptest-regressions and replayed by every test run.
FUZZ_CASES ?= 20000
fuzz: install
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --release -q -p voxlet-audio --test fuzz
	HYPOTHESIS_PROFILE=fuzz VOXLET_SHARED=$(abspath $(SHARED)) $(PY) -m pytest -q \
	  -p no:cacheprovider tests/fuzz tests/property

bench: install
	$(PY) benches/bench_rtf.py

# voxlet's own voice, stage by stage (run state in $(RUNS)/, git-ignored). Every stage resumes
# where it stopped: rerun the same target. DEVICE=cuda trains on a GPU.
RUNS ?= runs
HOURS ?= 20
SEED ?= 0
DEVICE ?= cpu
VOXLET := $(VENV)/bin/voxlet
# INIT=MODEL (an exported model folder): new codec and FlowLM runs start from its weights
# (fine-tuning, or carrying on from an earlier export); empty trains from scratch.
INIT ?=
INIT_FLAG := $(if $(INIT),--init-from $(INIT))

# WordNet 3.0 (the corpus text) from Debian, when missing.
train-deps: install
	@test -f /usr/share/wordnet/data.noun || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing WordNet (wordnet-base) with apt-get"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wordnet-base >/dev/null; }

train-data: train-deps
	$(VOXLET) train data --out $(RUNS)/data/joe --hours $(HOURS) --seed $(SEED)

train-codec: train-data
	$(VOXLET) train codec --data $(RUNS)/data/joe --run-dir $(RUNS)/codec-2m --device $(DEVICE) \
	  $(INIT_FLAG)

train-flow: train-codec
	$(VOXLET) train flow --data $(RUNS)/data/joe --codec $(RUNS)/codec-2m \
	  --run-dir $(RUNS)/flow-2m --device $(DEVICE) $(INIT_FLAG)

train-export: train-flow
	$(VOXLET) train export --codec $(RUNS)/codec-2m --flow $(RUNS)/flow-2m --out $(RUNS)/voxlet-2m

train-voice: train-export
	$(PY) benches/bench_intelligibility.py --data $(RUNS)/data/joe --codec $(RUNS)/codec-2m \
	  --config $(RUNS)/voxlet-2m/config.yaml --voice $(RUNS)/voxlet-2m/voice.safetensors

clean:
	rm -rf $(VENV) target python/voxlet/*.so
