#!/usr/bin/env bash
# scripts/checks/bitcheck.sh BASE_COMMIT [HEAD_REF]: is mose's behaviour unchanged bit for
# bit between an earlier commit and this working tree (or HEAD_REF)?
#
#   scripts/checks/bitcheck.sh 6771ad1              # BASE vs the working tree (uncommitted changes included)
#   scripts/checks/bitcheck.sh 6771ad1 scripts      # BASE vs a branch, tag or commit
#   make bitcheck BASE=6771ad1 [HEAD=ref]
#
# For each side it makes a temporary source tree (a detached `git worktree` of the
# commit; for the working tree, a copy of its tracked and untracked-not-ignored
# files), runs that tree's setup script (scripts/setup/setup.sh, or scripts/setup.sh
# in commits from before scripts/ had subfolders), builds bin/mose, and with it, in
# a scratch dir of its own, runs the demo recipe of the BASE commit
# (recipes/demo-tiny.yaml, copied; both sides use the same file):
#
#   1. mose init-model and mose synth-data with the recipe's preset and seeds
#      (compared: model.create and data.synth must not change either);
#   2. MoSE, then plain LoRA (adapters.method=lora), each 40 steps (eval every 20,
#      checkpoint every 10, a log line every 5), sent SIGTERM in the middle, then
#      resumed with --resume auto to step 40. The SIGTERM lands at a different
#      point on each side: BASE's as soon as the step-20 checkpoint exists, HEAD's
#      once the step-25 log line is written (between checkpoints and log lines);
#      the step each run stopped at is printed;
#   3. mose eval of the final checkpoint, mose export --format peft, and
#      mose export --format merged (MoSE: --approximate --calibration on the eval
#      manifest, the only merge of routed experts there is).
#
# Both sides train on one tiny model and one synthetic dataset, made by the BASE
# side's first run through the recipe's model.create / data.synth in a shared
# scratch dir. Each side runs in the same directory ($TMP/run, moved aside
# afterwards), because mose records absolute paths in its outputs.
#
# Then it compares, byte for byte, per run (demo-tiny = MoSE, demo-tiny-lora = LoRA):
# the final checkpoint's adapter.safetensors, optimizer.safetensors and recipe.yaml,
# its trainer_state.json and the run's metrics.jsonl with the wall-clock fields
# removed (listed below, with the reason for each), the run's eval.json and mose
# eval's eval.json, and every file of the PEFT and the merged export; plus the
# init-model and synth-data dirs. It prints a table (identical / DIFFERENT /
# MISSING) and exits 1 if anything differs, 2 on a usage or setup error.
#
# Environment:
#   BITCHECK_HEAD_EXTRA_SET, BITCHECK_BASE_EXTRA_SET   space-separated key=value
#       recipe overrides for one side's training runs (and its eval/exports), e.g.
#       BITCHECK_HEAD_EXTRA_SET=train.lr=1e-3 to see the check fail;
#   BITCHECK_KEEP=1   keep the scratch dirs (runs, outputs, logs) and print where;
#   BITCHECK_TMP      parent of the scratch dir (default: $TMPDIR or /tmp);
#   MOSE_CACHE, MOSE_TORCH, LIBTORCH   passed to both setups (they must end up on
#       the same libtorch: the check refuses otherwise).
# It needs git, Go, g++ and python3 (the JSON filters). Measured on 2 idle cores with
# warm caches (~/.cache/mose, Go's build cache): about 2.5 minutes, most of it the
# two builds and MoSE's approximate merge; several times that on a busy machine.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "bitcheck: error: $*" >&2; exit 2; }
info() { echo "bitcheck: $*" >&2; }

[ $# -ge 1 ] && [ $# -le 2 ] || usage
case "$1" in -h | --help) usage ;; esac
REPO=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel) || die "not inside a git checkout"
BASE=$(git -C "$REPO" rev-parse --verify --quiet "$1^{commit}") || die "BASE_COMMIT $1 is not a commit of $REPO"
HEAD_REF=""
if [ $# = 2 ]; then
	HEAD_REF=$(git -C "$REPO" rev-parse --verify --quiet "$2^{commit}") || die "HEAD_REF $2 is not a commit of $REPO"
fi
for tool in go g++ python3; do command -v "$tool" >/dev/null || die "$tool not found on PATH"; done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# Everything this script writes lives under $TMP; the worktrees it adds are
# listed in WORKTREES. The cleanup removes exactly those, nothing else.
TMP=$(mktemp -d "${BITCHECK_TMP:-${TMPDIR:-/tmp}}/mose-bitcheck.XXXXXX")
WORKTREES=()
EXTRA=()
BGPID=""
cleanup() {
	local rc=$? wt
	[ -z "$BGPID" ] || { kill -TERM "$BGPID" 2>/dev/null && wait "$BGPID" 2>/dev/null; } || true
	for wt in ${WORKTREES[@]+"${WORKTREES[@]}"}; do
		git -C "$REPO" worktree remove --force "$wt" >/dev/null 2>&1 || true
	done
	[ ${#WORKTREES[@]} = 0 ] || git -C "$REPO" worktree prune >/dev/null 2>&1 || true
	if [ "${BITCHECK_KEEP:-0}" = 1 ]; then
		rm -rf "$TMP/base/src" "$TMP/head/src"
		info "kept the runs, outputs and logs in $TMP (remove it yourself)"
	else
		rm -rf "$TMP"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_all=$SECONDS
SHARED=$TMP/shared
mkdir -p "$SHARED"
# The demo recipe of the BASE commit, for both sides.
git -C "$REPO" show "$BASE:recipes/demo-tiny.yaml" >"$TMP/demo-tiny.yaml" || die "$BASE has no recipes/demo-tiny.yaml"

# prepare SIDE REF: source tree, setup, bin/mose. REF empty: the working tree.
prepare() {
	local side=$1 ref=$2 src=$TMP/$1/src setup t0=$SECONDS
	mkdir -p "$TMP/$side"
	if [ -n "$ref" ]; then
		git -C "$REPO" worktree add --detach --quiet "$src" "$ref" || die "git worktree add $src $ref failed"
		WORKTREES+=("$src")
		info "$side: $(git -C "$src" log -1 --format='%h %s' | cut -c1-90)"
	else
		mkdir -p "$src"
		# Tracked files that still exist, and untracked files git does not ignore.
		(cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done |
			tar --null -T - -cf -) | tar -C "$src" -xf -
		info "$side: the working tree of $REPO ($(git -C "$REPO" rev-parse --short HEAD)$([ -z "$(git -C "$REPO" status --porcelain)" ] || echo ' + uncommitted changes'))"
	fi
	if [ -x "$src/scripts/setup/setup.sh" ]; then
		setup=scripts/setup/setup.sh
	elif [ -x "$src/scripts/setup.sh" ]; then
		setup=scripts/setup.sh # the layout before scripts/ had subfolders
	else
		die "$side: neither scripts/setup/setup.sh nor scripts/setup.sh in $src"
	fi
	(cd "$src" && "$setup") >"$TMP/$side/setup.log" 2>&1 ||
		die "$side: $setup failed; last lines:"$'\n'"$(tail -5 "$TMP/$side/setup.log")"
	(cd "$src" && go build -o bin/mose ./cmd/mose) >"$TMP/$side/build.log" 2>&1 ||
		die "$side: go build failed; last lines:"$'\n'"$(tail -5 "$TMP/$side/build.log")"
	info "$side: $setup + go build in $((SECONDS - t0))s ($(sed -n 's/^TORCH_VERSION=//p' "$src/.build/setup.env") $(sed -n 's/^MOSE_MODE=//p' "$src/.build/setup.env"))"
}

# The flags of every run on both sides. The model and data dirs are in $SHARED,
# through the symlink $TMP/run/shared (mose resolves the paths against $TMP/run).
COMMON=(--set model.path=shared/models/tiny
	--set data.train=shared/data/synth-tiny/train.jsonl --set data.eval=shared/data/synth-tiny/eval.jsonl
	--set train.max_steps=40 --set train.eval_every=20 --set train.save_every=10 --set train.log_every=5)
RUNS=(demo-tiny demo-tiny-lora)
run_sets() { # RUN -> its --set flags (the demo's names and methods)
	case "$1" in
	demo-tiny) echo "--set run.name=demo-tiny --set adapters.method=mose" ;;
	demo-tiny-lora) echo "--set run.name=demo-tiny-lora --set adapters.method=lora" ;;
	esac
}

# recipe_value KEY: a top-level "key: value" under the recipe's section, e.g. model create.
recipe_value() {
	awk -v sec="$1:" -v key="$2:" '
		/^[^ #]/ { insec = ($1 == sec) }
		insec && $1 == key { print $2; exit }' "$TMP/demo-tiny.yaml"
}

# stop_now SIDE RUN: whether to send the SIGTERM now. BASE: as soon as the step-20
# checkpoint exists (it stops at 20 or just after); HEAD: once the step-25 log line
# is written (it stops mid-interval, between two checkpoints and two log lines).
# Different points on purpose: the resumed runs must still agree.
stop_now() {
	case "$1" in
	base) [ -d "runs/$2/checkpoints/step-0000020" ] ;;
	*) grep -q '"step":25,' "runs/$2/metrics.jsonl" 2>/dev/null ;;
	esac
}

# train_interrupted SIDE RUN: train to 40 with a SIGTERM in the middle (stop_now),
# then resume.
train_interrupted() {
	local side=$1 run=$2 bin=$TMP/$1/src/bin/mose log=$TMP/$1/logs/$2.train.log rc=0 stopped
	local ck=runs/$run/checkpoints
	# shellcheck disable=SC2046 # run_sets is a word list
	"$bin" train --recipe demo-tiny.yaml "${COMMON[@]}" $(run_sets "$run") ${EXTRA[@]+"${EXTRA[@]}"} --no-progress --log-level warn >"$log" 2>&1 &
	BGPID=$!
	while kill -0 "$BGPID" 2>/dev/null && ! stop_now "$side" "$run"; do sleep 0.02; done
	kill -TERM "$BGPID" 2>/dev/null || true
	wait "$BGPID" || rc=$?
	BGPID=""
	[ "$rc" = 143 ] || die "$side/$run: the first run exited $rc, not 143 (SIGTERM in the middle); log: $log"$'\n'"$(tail -3 "$log")"
	stopped=$(cat "$ck/latest")
	# shellcheck disable=SC2046
	"$bin" train --recipe demo-tiny.yaml "${COMMON[@]}" $(run_sets "$run") ${EXTRA[@]+"${EXTRA[@]}"} --no-progress --log-level warn \
		--resume auto >>"$log" 2>&1 || die "$side/$run: the resumed run failed; log: $log"$'\n'"$(tail -3 "$log")"
	[ "$(cat "$ck/latest")" = step-0000040 ] || die "$side/$run: the resumed run ended at $(cat "$ck/latest"), not step-0000040"
	stopped=${stopped#step-}
	info "$side/$run: SIGTERM stopped it at step $((10#$stopped)), resumed to 40"
}

# run_side SIDE EXTRA_SETS: everything a side computes, in $TMP/run, then moved to
# $TMP/SIDE/work. One directory for both sides because mose records absolute paths
# (the resolved recipe in recipe.yaml, base_model_name_or_path in the exports).
run_side() {
	local side=$1 bin=$TMP/$1/src/bin/mose w=$TMP/run t0=$SECONDS run ck sets kv
	local -a merged kvs
	EXTRA=()
	read -r -a kvs <<<"$2"
	for kv in ${kvs[@]+"${kvs[@]}"}; do EXTRA+=(--set "$kv"); done
	mkdir -p "$w/runs" "$w/out" "$TMP/$side/logs"
	cp "$TMP/demo-tiny.yaml" "$w/demo-tiny.yaml"
	ln -s "$SHARED" "$w/shared"
	cd "$w"
	# 1. model.create and data.synth, on their own (the runs use the shared ones).
	"$bin" init-model --preset "$(recipe_value model create)" --seed "$(recipe_value model create_seed)" \
		--out out/init-model >"$TMP/$side/logs/init-model.log" 2>&1 || die "$side: mose init-model failed (logs/init-model.log)"
	"$bin" synth-data --preset "$(recipe_value data synth)" --samples "$(recipe_value data synth_samples)" \
		--seed "$(recipe_value data synth_seed)" --out out/synth-data >"$TMP/$side/logs/synth-data.log" 2>&1 ||
		die "$side: mose synth-data failed (logs/synth-data.log)"
	for run in "${RUNS[@]}"; do
		train_interrupted "$side" "$run"
		ck=runs/$run/checkpoints/step-0000040
		sets=$(run_sets "$run")
		# shellcheck disable=SC2086
		"$bin" eval --recipe demo-tiny.yaml "${COMMON[@]}" $sets ${EXTRA[@]+"${EXTRA[@]}"} --checkpoint "$ck" --out "out/$run/eval" \
			--log-level warn >"$TMP/$side/logs/$run.eval.log" 2>&1 || die "$side/$run: mose eval failed (logs/$run.eval.log)"
		"$bin" export --checkpoint "$ck" --format peft --out "out/$run/peft" --log-level warn \
			>"$TMP/$side/logs/$run.peft.log" 2>&1 || die "$side/$run: mose export --format peft failed (logs/$run.peft.log)"
		merged=(--format merged)
		[ "$run" = demo-tiny ] && merged+=(--approximate --calibration shared/data/synth-tiny/eval.jsonl)
		"$bin" export --checkpoint "$ck" "${merged[@]}" --out "out/$run/merged" --log-level warn \
			>"$TMP/$side/logs/$run.merged.log" 2>&1 || die "$side/$run: mose export --format merged failed (logs/$run.merged.log)"
	done
	cd "$TMP"
	mv "$w" "$TMP/$side/work"
	info "$side: runs, eval and exports in $((SECONDS - t0))s"
}

# Fields left out of the comparison, and why (everything else must match byte
# for byte after a JSON round trip that keeps key order and float bits):
#   metrics.jsonl      time          wall-clock time the line was written
#                      tokens_per_s  wall-clock throughput of the interval
#                      step_time_s   wall-clock seconds per step
#                      comm_time_s   wall-clock seconds in collectives (data parallel only)
#                      gpu_peak_mib  the CUDA allocator's high-water mark (CUDA only; not a result)
#   trainer_state.json time          wall-clock time of the save
#                      lineage       a random id drawn when a fresh run starts (crypto/rand)
#                      mose_version  the build's version string (-ldflags), which names the build
#                      log_interval.duration_ns  wall-clock sum of the steps since the last log line
#                      checksum      SHA-256 of this JSON, so it covers the fields above
#   ("files", the SHA-256 of the adapter, optimizer and recipe files, is kept.)
filter_json() { # KIND IN OUT
	python3 - "$@" <<'PY'
import json, sys
kind, src, dst = sys.argv[1:4]
drop_metrics = ("time", "tokens_per_s", "step_time_s", "comm_time_s", "gpu_peak_mib")
drop_state = ("time", "lineage", "mose_version", "checksum")
def dump(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)
with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
    if kind == "metrics":
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            for k in drop_metrics:
                rec.pop(k, None)
            out.write(dump(rec) + "\n")
    else:
        st = json.load(f)
        for k in drop_state:
            st.pop(k, None)
        if isinstance(st.get("log_interval"), dict):
            st["log_interval"].pop("duration_ns", None)
        out.write(dump(st) + "\n")
PY
}

DIFFS=0
ROWS=()
row() { ROWS+=("$(printf '%-62s %s' "$1" "$2")"); case "$2" in identical*) ;; *) DIFFS=$((DIFFS + 1)) ;; esac; }

# cmp_file REL [FILTER]: compare work/REL on both sides.
cmp_file() {
	local rel=$1 filter=${2:-} a=$TMP/base/work/$1 b=$TMP/head/work/$1 label=$1
	if [ ! -f "$a" ] || [ ! -f "$b" ]; then
		row "$label" "MISSING ($( ([ -f "$a" ] || echo base; [ -f "$b" ] || echo head) | xargs))"
		return
	fi
	if [ -n "$filter" ]; then
		mkdir -p "$TMP/base/filtered/$(dirname "$rel")" "$TMP/head/filtered/$(dirname "$rel")"
		filter_json "$filter" "$a" "$TMP/base/filtered/$rel"
		filter_json "$filter" "$b" "$TMP/head/filtered/$rel"
		a=$TMP/base/filtered/$rel b=$TMP/head/filtered/$rel label="$rel (wall-clock fields removed)"
	fi
	if cmp -s "$a" "$b"; then row "$label" identical; else row "$label" DIFFERENT; fi
}

# cmp_dir REL: every file of work/REL on either side, one row each.
cmp_dir() {
	local rel=$1 f
	[ -d "$TMP/base/work/$rel" ] || [ -d "$TMP/head/work/$rel" ] || { row "$rel/" "MISSING (base head)"; return; }
	while IFS= read -r f; do cmp_file "$rel/$f"; done < <(
		{ (cd "$TMP/base/work/$rel" 2>/dev/null && find . -type f); (cd "$TMP/head/work/$rel" 2>/dev/null && find . -type f); } |
			sed 's|^\./||' | sort -u)
}

# cmp_tree REL: one row for a big dir (synth data: thousands of feature files).
cmp_tree() {
	local rel=$1 n out
	n=$(cd "$TMP/base/work/$rel" && find . -type f | wc -l)
	if out=$(diff -rq "$TMP/base/work/$rel" "$TMP/head/work/$rel" 2>&1); then
		row "$rel/ ($n files)" identical
	else
		row "$rel/ ($n files)" "DIFFERENT ($(echo "$out" | wc -l) files, e.g. $(echo "$out" | head -1 | sed "s|$TMP/||g"))"
	fi
}

LABEL="BASE $(git -C "$REPO" rev-parse --short "$BASE") vs HEAD $([ -n "$HEAD_REF" ] && git -C "$REPO" rev-parse --short "$HEAD_REF" || echo "working tree")"
info "$LABEL; scratch dir $TMP"
prepare base "$BASE"
prepare head "$HEAD_REF"
for f in TORCH_VERSION MOSE_MODE CXX11_ABI; do
	a=$(sed -n "s/^$f=//p" "$TMP/base/src/.build/setup.env") b=$(sed -n "s/^$f=//p" "$TMP/head/src/.build/setup.env")
	[ "$a" = "$b" ] || die "the two setups differ in $f ($a vs $b): outputs cannot be compared bit for bit"
done
[ -z "${BITCHECK_BASE_EXTRA_SET:-}" ] || info "base: extra --set $BITCHECK_BASE_EXTRA_SET"
[ -z "${BITCHECK_HEAD_EXTRA_SET:-}" ] || info "head: extra --set $BITCHECK_HEAD_EXTRA_SET"
run_side base "${BITCHECK_BASE_EXTRA_SET:-}"
run_side head "${BITCHECK_HEAD_EXTRA_SET:-}"

cmp_dir out/init-model
cmp_tree out/synth-data
for run in "${RUNS[@]}"; do
	ck=runs/$run/checkpoints/step-0000040
	cmp_file "$ck/adapter.safetensors"
	cmp_file "$ck/optimizer.safetensors"
	cmp_file "$ck/recipe.yaml"
	cmp_file "$ck/trainer_state.json" state
	cmp_file "runs/$run/metrics.jsonl" metrics
	cmp_file "runs/$run/eval.json"
	cmp_dir "out/$run/eval"
	cmp_dir "out/$run/peft"
	cmp_dir "out/$run/merged"
done

echo
echo "bitcheck: $LABEL (MoSE and LoRA, 40 steps, SIGTERM + resume)"
printf '%s\n' "${ROWS[@]}"
echo
if [ "$DIFFS" = 0 ]; then
	echo "bitcheck: all ${#ROWS[@]} identical ($((SECONDS - start_all))s)"
else
	echo "bitcheck: $DIFFS of ${#ROWS[@]} DIFFERENT or MISSING ($((SECONDS - start_all))s)"
	exit 1
fi
