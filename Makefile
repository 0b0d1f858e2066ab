# Two commands do the whole set-up on a fresh machine:
#   make serve   create .venv, install, prepare the default model, serve on 127.0.0.1:8000 (PORT=..., HOST=...,
#                MODEL=... to change; `sla serve` loads the model's shipped reward head from heads/MODEL, or
#                HEAD=FOLDER's, e.g. HEAD=heads/qwen2.5-coder-0.5b-instruct/bradley-terry)
#   make test    same set-up, then the whole test suite (`make lint` first in CI: ruff, rules in pyproject.toml)
# FLAVOUR=gpu installs the CUDA build of vLLM instead of the CPU one.

FLAVOUR ?= cpu
MODEL   ?= qwen2.5-coder-0.5b-instruct
HOST    ?= 127.0.0.1
HEAD    ?=
PORT    ?= 8000
VENV    := .venv
PY      := $(VENV)/bin/python
SLA     := $(VENV)/bin/sla
STAMP   := $(VENV)/.installed-$(FLAVOUR)

.PHONY: install model serve test test-fast lint

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -e '.[$(FLAVOUR),test]'
	# The registry's torchvision/torchaudio/torchcodec builds break `import transformers`
	# beside torch 2.13.0+cpu ("operator torchvision::nms does not exist"); nothing here uses them.
	$(PY) -m pip uninstall -y torchvision torchaudio torchcodec
	touch $(STAMP)

install: $(STAMP)

model: $(STAMP)
	$(SLA) models pull $(MODEL)

serve: model
	$(SLA) serve --model $(MODEL) --host $(HOST) --port $(PORT) $(if $(HEAD),--reward-head $(HEAD))

test: model
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test-fast: $(STAMP)
	$(PY) -m pytest -m "not engine and not download and not deploy"
