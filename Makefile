# Two entry points: `make demo` (set up, a piece from the shipped model, then the whole chain on the embedded
# corpus) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORPUS ?= data/bach_midi
SOUNDFONT_PKGS ?= fluidsynth timgm6mb-soundfont

.PHONY: demo test setup system-deps lint bench clean pretrained pretrained-meter pretrained-parts

$(BIN)/musesynth: pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, pinned: the CPU build; the project's range then installs nothing more of it.
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0 numpy
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

setup: $(BIN)/musesynth system-deps

# FluidSynth + a General MIDI soundfont for WAV output, and Chromium for the studio's browser test (Debian).
# Skipped quietly where apt is absent or not root: musesynth then writes MIDI and PNG and says why there is
# no WAV, and the browser test skips with its reason.
BROWSER_PKGS ?= chromium
system-deps:
	@missing=""; \
	command -v fluidsynth >/dev/null 2>&1 || missing="$(SOUNDFONT_PKGS)"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing $(BROWSER_PKGS)"; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null \
		|| echo "note: could not install $$(echo $$missing); WAV rendering or the browser test will be skipped"; \
	fi

$(CORPUS): | $(BIN)/musesynth
	$(BIN)/musesynth corpus --name bach -o $(CORPUS)

DEMO_MINUTES ?= 10
PRETRAINED ?= musesynth/pretrained/bach
PARTS_MODEL ?= musesynth/pretrained/bach-parts
# `pretrained` runs its two jobs with one thread each (not read from the environment)
PRETRAINED_ENV :=
# The JS Fake Chorales, the classifier's human-judged reference set, where a checkout has them beside it
REFERENCE_SET := $(if $(wildcard ../shared/data/js-fakes/midi),--reference-set ../shared/data/js-fakes/midi)

# First music from the shipped model (seconds), then the chain: the corpus export (the demo does it itself,
# after the first piece), dataset, a CPU training run, a piece. A CORPUS other than the default is exported
# here first, as before.
demo: setup $(if $(filter data/bach_midi,$(CORPUS)),,$(CORPUS))
	$(BIN)/musesynth demo --midi-dir $(CORPUS) --minutes $(DEMO_MINUTES)

# Rebuild the shipped models from scratch (53-57 minutes on 2 idle CPU cores, GNU make 4+):
# - bach: meter-encoded dataset, the recipe in configs/pretrained-bach.toml, export, evaluate, model card;
# - bach-parts: the four voices kept apart (parts encoding, infill tokens), configs/pretrained-parts.toml, export,
#   evaluate, the harmonisation benchmark, model card.
# The two run side by side, one thread each: on 2 cores that is about 10% faster than one after the other with
# two threads (30 steps: 94 s for both at once, 2 x 53 s in turn), and the weights are the same bit for bit.
pretrained:
	$(MAKE) -j2 --output-sync=line PRETRAINED_ENV="OMP_NUM_THREADS=1 MKL_NUM_THREADS=1" pretrained-meter pretrained-parts

pretrained-meter: $(BIN)/musesynth $(CORPUS)
	env $(PRETRAINED_ENV) $(BIN)/musesynth data -d $(CORPUS) -o datasets/bach-meter --encoding meter
	env $(PRETRAINED_ENV) $(BIN)/musesynth train -d datasets/bach-meter --config configs/pretrained-bach.toml --overwrite
	env $(PRETRAINED_ENV) $(BIN)/musesynth export -c training_checkpoints/pretrained-bach -o $(PRETRAINED) --overwrite \
		--summary training_checkpoints/pretrained-bach/summary.json
	env $(PRETRAINED_ENV) $(BIN)/musesynth evaluate -c $(PRETRAINED) -d datasets/bach-meter $(REFERENCE_SET) \
		--json $(PRETRAINED)/evaluation.json
	env $(PRETRAINED_ENV) $(BIN)/python scripts/model_card.py $(PRETRAINED) --evaluation $(PRETRAINED)/evaluation.json \
		--notes docs/pretrained-notes.md

pretrained-parts: $(BIN)/musesynth $(CORPUS)
	env $(PRETRAINED_ENV) $(BIN)/musesynth data -d $(CORPUS) -o datasets/bach-parts --encoding parts --max-parts 4 --extra-parts drop --infill
	env $(PRETRAINED_ENV) $(BIN)/musesynth train -d datasets/bach-parts --config configs/pretrained-parts.toml --overwrite
	env $(PRETRAINED_ENV) $(BIN)/musesynth export -c training_checkpoints/pretrained-parts -o $(PARTS_MODEL) --overwrite \
		--summary training_checkpoints/pretrained-parts/summary.json
	env $(PRETRAINED_ENV) $(BIN)/musesynth evaluate -c $(PARTS_MODEL) -d datasets/bach-parts $(REFERENCE_SET) --json $(PARTS_MODEL)/evaluation.json
	env $(PRETRAINED_ENV) $(BIN)/python benchmarks/harmonize.py -c $(PARTS_MODEL) -d datasets/bach-parts \
		--json $(PARTS_MODEL)/harmonization.json
	env $(PRETRAINED_ENV) $(BIN)/python scripts/model_card.py $(PARTS_MODEL) --evaluation $(PARTS_MODEL)/evaluation.json \
		--harmonization $(PARTS_MODEL)/harmonization.json --notes docs/pretrained-parts-notes.md

test: setup
	$(BIN)/python -m pytest -q

lint: $(BIN)/musesynth
	$(BIN)/ruff check musesynth tests benchmarks scripts

bench: $(BIN)/musesynth $(CORPUS)
	$(BIN)/python benchmarks/tokenize.py -d $(CORPUS)
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/generate.py

clean:
	rm -rf $(VENV) datasets generated training_checkpoints
