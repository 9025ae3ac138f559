# mose — the two commands a user needs are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export MOSE_CACHE ?= $(HOME)/.cache/mose
# Two cores on CI: keep libtorch from oversubscribing them.
export OMP_NUM_THREADS ?= 2

.PHONY: all setup build test demo fuzz bench pyenv fixtures clean

all: build

## setup: fetch libtorch 2.1 (cached), prepare gotch's libtch, smoke-test the toolchain
setup:
	@scripts/setup.sh

## build: the mose binary in bin/
build: setup
	$(GO) build -o bin/mose ./cmd/mose

## demo: setup, build, then train/evaluate/export MoSE and LoRA on a tiny model and synthetic data
demo: build
	@scripts/demo.sh

## test: setup, then every test (the packages without cgo are also tested with CGO_ENABLED=0);
##       converts the real SmolLM2 test model into the cache once when the Python venv exists
test: setup
	$(GO) vet ./...
	@scripts/real_model.sh
	@pkgs=$$($(GO) list ./data/... ./recipes/... ./metrics/... ./plots/... ./internal/safetensors/... ./internal/fsutil/... ./internal/tfevents/... ./internal/strictjson/... ./internal/inputerr/... 2>/dev/null); \
	if [ -n "$$pkgs" ]; then CGO_ENABLED=0 $(GO) test -count=1 $$pkgs; fi
	$(GO) test -count=1 -timeout 20m ./...

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

## pyenv: the Python reference venv (torch 2.1.0, transformers, peft) for fixtures and benchmarks
pyenv:
	@scripts/pyenv.sh >/dev/null

## fixtures: regenerate every golden fixture from transformers / peft / tokenizers
fixtures:
	"$$(scripts/pyenv.sh)" scripts/make_fixtures.py
	"$$(scripts/pyenv.sh)" scripts/make_tensorboard_fixture.py
	"$$(scripts/pyenv.sh)" scripts/rope_fixtures.py
	"$$(scripts/pyenv.sh)" scripts/tokenizer_survey_fixtures.py
	"$$(scripts/pyenv.sh)" scripts/fetch_smollm2.py --fixtures
	"$$(scripts/pyenv.sh)" scripts/make_peft_import_fixtures.py
	"$$(scripts/pyenv.sh)" scripts/make_window_fixtures.py

clean:
	rm -rf bin .build go.work go.work.sum
