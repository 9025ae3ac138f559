#!/usr/bin/env python3
"""Preprocessing speed: `mose preprocess` vs transformers' Qwen2_5OmniProcessor, same clips.

    scripts/bench/bench_preprocess.sh [REPS]          (the wrapper builds mose and finds FFmpeg)
    python scripts/bench/bench_preprocess.py --mose bin/mose --ffmpeg FFMPEG --work DIR [--reps 3]

The clips are check_processor.py's six (160x120 to 1280x720, 10-30 fps, 1.3-5 s, audio
16-48 kHz; lossless ffv1/flac in mkv), each processed as a video with its own audio track
(use_audio_in_video) at 2 fps with a short subtitle, the omni-tiny tokenizer and
Qwen2.5-Omni's released processor settings. Both sides go from the file on disk to the
processor outputs written as safetensors:

- mose: one `mose preprocess` process per clip (FFmpeg decoding, the Go processor, the
  atomic write). Its process start is included; it is also measured alone (`mose version`)
  and printed, so it can be taken out.
- mose prepare-data: the six clips as one media manifest, processed into a fresh data
  cache in one process (data.encoder_cache false: the processor stage only), with one
  and with two workers; one process start and the model's loading included.
- transformers: in one warm Python process, the same FFmpeg command lines as mose's
  data/media (check_processor.py's decode), the processor call, safetensors' save_file.

Reps are interleaved (mose, python, prepare-data 1 and 2 workers, mose, ...) after one warm-up of each; the
script prints the machine, clips/s of each side (best and median over reps) and the ratio,
as one JSON line. Both sides use one thread (OMP_NUM_THREADS=1, torch.set_num_threads(1)).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "checks"))
import check_processor as cp  # noqa: E402  (the clips, the tokenizer, FFmpeg decoding, the processor)

SUBTITLE = "How does the speaker feel?"
FPS = 2.0


def cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mose", required=True)
    ap.add_argument("--ffmpeg", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import torch
    from safetensors.numpy import save_file
    torch.set_num_threads(1)
    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "omni-tiny")
    subprocess.run([a.mose, "init-model", "--preset", "omni-tiny", "--out", model, "--force"], check=True,
                   capture_output=True)
    proc = cp.make_processor(os.path.join(model, "tokenizer.json"))
    clips = []
    for name, size, rate, secs, freq, sr in cp.CLIPS:
        p = os.path.join(a.work, f"{name}.mkv")
        subprocess.run([a.ffmpeg, "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc=size={size}:rate={rate}", "-f", "lavfi", "-i",
                        f"sine=frequency={freq}:sample_rate={sr}", "-t", f"{secs}", "-c:v", "ffv1", "-c:a", "flac", p],
                       check=True, timeout=300)
        clips.append(p)

    def run_mose():
        t = time.perf_counter()
        for i, p in enumerate(clips):
            subprocess.run([a.mose, "preprocess", "--model", model, "--out", os.path.join(a.work, f"m{i}.safetensors"),
                            "--video", p, "--use-audio-in-video", "--fps", f"{FPS:g}", "--subtitle", SUBTITLE],
                           check=True, capture_output=True, timeout=600)
        return time.perf_counter() - t

    manifest = os.path.join(a.work, "clips.jsonl")
    with open(manifest, "w") as f:
        for i, p in enumerate(clips):
            f.write(json.dumps({"id": f"c{i}", "subset": "general", "label": "happy", "video": os.path.basename(p),
                                "subtitle": SUBTITLE}) + "\n")
    reps = iter(range(1 << 30))

    def run_prepare(workers):
        cache = os.path.join(a.work, f"cache-{workers}-{next(reps)}")  # fresh: every clip is processed
        t = time.perf_counter()
        r = subprocess.run([a.mose, "prepare-data", "--recipe", "omni-tiny-media", "--no-progress", "--log-level", "warn"] +
                       [x for kv in (f"model.path={model}", "model.create=", f"data.train={manifest}", "data.eval=",
                                     "data.synth=", f"data.cache_dir={cache}", "data.encoder_cache=false",
                                     f"data.workers={workers}", f"data.fps={FPS:g}", "data.use_audio_in_video=true",
                                     "data.max_len=32768")
                        for x in ("--set", kv)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            sys.exit(f"prepare-data: exit {r.returncode}: {r.stderr[-600:]}")
        return time.perf_counter() - t

    def run_python():
        t = time.perf_counter()
        for i, p in enumerate(clips):
            out = proc(text=[cp.prompt(True, False, False, SUBTITLE)], videos=[cp.frames(a.ffmpeg, p, FPS)],
                       audio=[cp.wave(a.ffmpeg, p)], use_audio_in_video=True, audio_from_video_indices=[0],
                       videos_kwargs={"fps": FPS, "do_sample_frames": False}, return_tensors="np")
            save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, os.path.join(a.work, f"p{i}.safetensors"))
        return time.perf_counter() - t

    run_mose(), run_python()  # warm-up: page cache, lazy imports
    start = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([a.mose, "version"], check=True, capture_output=True)
        start.append(time.perf_counter() - t)
    run_prepare(1)
    m, py, p1, p2 = [], [], [], []
    for _ in range(a.reps):
        m.append(run_mose())
        py.append(run_python())
        p1.append(run_prepare(1))
        p2.append(run_prepare(2))
    n = len(clips)
    res = {
        "machine": f"{cpu()}, {os.cpu_count()} cores", "clips": n, "reps": a.reps, "fps": FPS,
        "mose_clips_per_s_best": round(n / min(m), 2), "mose_clips_per_s_median": round(n / statistics.median(m), 2),
        "transformers_clips_per_s_best": round(n / min(py), 2),
        "transformers_clips_per_s_median": round(n / statistics.median(py), 2),
        "ratio_mose_over_transformers_median": round(statistics.median(py) / statistics.median(m), 2),
        "mose_process_start_s_median": round(statistics.median(start), 3),
        "prepare_data_1_worker_clips_per_s_median": round(n / statistics.median(p1), 2),
        "prepare_data_2_workers_clips_per_s_median": round(n / statistics.median(p2), 2),
        "ratio_prepare_data_1_worker_over_transformers_median": round(statistics.median(py) / statistics.median(p1), 2),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
