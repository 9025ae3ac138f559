#!/usr/bin/env bash
# The memory estimate of Qwen2.5-Omni-3B's and -7B's thinker, as a markdown table
# (docs/memory.md): `mose validate --memory-only` on the config-only copies in
# memest/testdata (scripts/fixtures/make_omni_configs.py), for model.quantize
# none/int8/nf4, with and without activation checkpointing (validate prints both),
# on the recipe's micro-batch of data.max_len tokens on a GPU.
#
#   scripts/bench/omni_memory_table.sh [RECIPE]     (default qwen2.5-omni-mose)
#   MOSE_BIN=path/to/mose
set -euo pipefail
cd "$(dirname "$0")/../.."
RECIPE=${1:-qwen2.5-omni-mose}
MOSE=${MOSE_BIN:-bin/mose}
[ -n "${MOSE_BIN:-}" ] || go build -o bin/mose ./cmd/mose
field() { # report, pattern -> "12.34 GiB" (the first size on the matching line)
	grep -E "$2" <<<"$1" | head -1 | grep -oE '[0-9.]+ (GiB|MiB)' | head -1
}
echo "| model | \`model.quantize\` | frozen weights | dequantization buffers | with checkpointing | without |"
echo "|---|---|---|---|---|---|"
for size in 3b 7b; do
	for q in none int8 nf4; do
		out=$("$MOSE" validate --memory-only --recipe "$RECIPE" \
			--set "model.path=memest/testdata/qwen2.5-omni-$size-config" --set "model.quantize=$q" 2>&1)
		w=$(field "$out" '^ +frozen weights')
		d=$(field "$out" '^ +dequantization scratch' || true)
		without=$(field "$out" 'total .*without checkpointing')
		with=$(field "$out" '^ +[0-9.]+ (GiB|MiB) with checkpointing')
		echo "| Qwen2.5-Omni-${size^^} | \`$q\` | $w | ${d:--} | $with | $without |"
	done
done
echo
echo "($RECIPE: $(grep -E '^\s+max_len:' "recipes/$RECIPE.yaml" | awk '{print $2}') tokens per micro-batch of $(grep -E '^\s+batch_size:' "recipes/$RECIPE.yaml" | awk '{print $2}'), model.dtype $(grep -E '^\s+dtype:' "recipes/$RECIPE.yaml" | awk '{print $2}'))"
