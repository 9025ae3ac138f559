#!/usr/bin/env python3
"""Check a mose run's TensorBoard event files against its metrics.jsonl.

    "$(scripts/setup/pyenv.sh)" scripts/checks/check_tensorboard.py runs/demo-tiny

Reads <run>/tensorboard/ with the `tensorboard` package's own EventAccumulator and
<run>/metrics.jsonl with plain json, and checks that they hold the same scalars: the
same tags, for every tag the same steps in the same order (one point per step), and
the same values (metrics.jsonl's numbers rounded to float32, TensorBoard's
simple_value). The expected tags are derived here from the JSON, independently of the
Go code: train records give train/<field>, modality_weights/<modality>,
router/<group>/<stat> and router/<group>/<stat>/<k> for per-expert lists; eval records
give eval/<subset>/<metric> from their "<subset>.<metric>" keys.

It reads the files twice: without TensorBoard's purging of restarted runs (so the files
themselves must hold one curve per tag) and with it (what TensorBoard displays). Exit
status 0 when both match, 1 otherwise. Used by trainer's TestTensorBoardResume.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def is_eval(rec: dict) -> bool:
    if rec.get("kind") == "eval":
        return True
    if rec.get("kind", "") == "":
        return bool(rec.get("eval")) and not any(rec.get(k, 0) for k in ("emotion_loss", "total_loss", "lr"))
    return False


def expected(metrics: Path) -> dict[str, list[tuple[int, float]]]:
    want: dict[str, list[tuple[int, float]]] = {}
    lines = metrics.read_text().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # a torn last line (no newline) is dropped, as mose does
                continue
            raise
        step = rec["step"]

        def put(tag, value):
            want.setdefault(tag, []).append((step, f32(value)))

        def put_eval():
            for key, v in sorted(rec.get("eval", {}).items()):
                put("eval/" + key.replace(".", "/", 1), v)

        if is_eval(rec):
            put_eval()
            continue
        for key, v in rec.items():
            if key == "step" or isinstance(v, bool):
                continue
            if isinstance(v, (int, float)):
                put("train/" + key, v)
        for mod, v in (rec.get("modality_weights") or {}).items():
            put("modality_weights/" + mod, v)
        for group, stats in (rec.get("router") or {}).items():
            for stat, v in stats.items():
                if isinstance(v, list):
                    for k, x in enumerate(v):
                        put(f"router/{group}/{stat}/{k}", x)
                else:
                    put(f"router/{group}/{stat}", v)
        put_eval()
    return want


def compare(want, tbdir: Path, purge: bool) -> list[str]:
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(tbdir), size_guidance={ea.SCALARS: 0}, purge_orphaned_data=purge)
    acc.Reload()
    problems = []
    if acc.file_version != 2.0:
        problems.append(f"file_version {acc.file_version!r}, want 2 (brain.Event:2)")
    tags = set(acc.Tags()["scalars"])
    if tags != set(want):
        problems.append(f"tags only in the events: {sorted(tags - set(want))}; "
                        f"only in metrics.jsonl: {sorted(set(want) - tags)}")
    for tag in sorted(tags & set(want)):
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        if got != want[tag]:
            problems.append(f"{tag}: events {got} != metrics.jsonl {want[tag]}")
    return problems


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run = Path(sys.argv[1])
    tbdir = run / "tensorboard"
    if not tbdir.is_dir():
        print(f"check_tensorboard: {tbdir} does not exist", file=sys.stderr)
        return 1
    import tensorboard

    want = expected(run / "metrics.jsonl")
    failed = False
    for purge in (False, True):
        problems = compare(want, tbdir, purge)
        for p in problems:
            print(f"check_tensorboard: purge_orphaned_data={purge}: {p}", file=sys.stderr)
        failed = failed or bool(problems)
    if failed:
        return 1
    points = sum(len(v) for v in want.values())
    files = sorted(p.name for p in tbdir.iterdir() if "tfevents" in p.name)
    print(f"check_tensorboard: OK with tensorboard {tensorboard.__version__}: {len(want)} tags, {points} points "
          f"in {len(files)} event files match metrics.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
