#!/usr/bin/env python3
"""Write the golden TensorBoard event file for internal/tfevents' Go tests.

Run it in the reference venv (`make fixtures` does):

    "$(scripts/pyenv.sh)" scripts/make_tensorboard_fixture.py

It builds tensorflow.Event messages with the `tensorboard` package's own protobuf
classes and frames them with its own TFRecord writer (length, masked CRC-32C, payload,
masked CRC-32C), into internal/tfevents/testdata/golden.tfevents, and records what each
event holds in golden.json. The Go test decodes the file and compares it with the JSON,
and encodes the JSON's events with mose's writer and compares the bytes. Wall times are
fixed, so the output is the same on every run.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "internal" / "tfevents" / "testdata"


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main() -> int:
    import tensorboard
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.record_writer import RecordWriter

    # (wall_time, step, kind, payload): kind is "version", "start" or "scalars".
    spec = [
        (1700000000.25, 0, "version", "brain.Event:2"),
        (1700000000.5, 6, "start", None),
        (1700000001.125, 1, "scalars", [("train/emotion_loss", 2.1972246), ("train/lr", 0.0),
                                        ("router/visual/load/0", -1.5e-8)]),
        (1700000002.0, 0, "scalars", [("step/zero", 3.0)]),
        (1700000003.0, 2**33 + 5, "scalars", [("eval/all/accuracy", 0.75), ("ünïcode/标签", 1e30)]),
        (0.0, 300, "scalars", [("", 1.0)]),  # zero wall time and an empty tag: both left out
        (1700000004.5, -3, "scalars", [("negative/step", 65504.0)]),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    golden = []
    path = OUT / "golden.tfevents"
    with open(path, "wb") as fh:
        w = RecordWriter(fh)
        for wall, step, kind, payload in spec:
            ev = Event(wall_time=wall, step=step)
            rec = {"wall_time": wall, "step": step}
            if kind == "version":
                ev.file_version = payload
                rec["file_version"] = payload
            elif kind == "start":
                ev.session_log.status = SessionLog.START
                rec["session_start"] = True
            else:
                ev.summary.value.extend(Summary.Value(tag=t, simple_value=v) for t, v in payload)
                rec["values"] = [{"tag": t, "value": f32(v)} for t, v in payload]
            w.write(ev.SerializeToString())
            golden.append(rec)
        w.flush()
    (OUT / "golden.json").write_text(json.dumps({"tensorboard": tensorboard.__version__, "events": golden},
                                                indent=1, ensure_ascii=False) + "\n")
    print(f"tensorboard fixture: wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes, "
          f"{len(golden)} events) with tensorboard {tensorboard.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
