#!/usr/bin/env python3
"""mose GPU kit: prove mose's CUDA path on a machine that has a GPU and Python torch.

    ./run [--out FILE] [--work DIR] [--device cuda|cpu] [--quick] [--only 1,2,...]

The kit folder holds bin/mose.gz (a mose binary built against torch 2.11's
libraries by scripts/gpu-kit/build), this script, peft_step.py, peft_check.py,
recipes/demo-tiny.yaml, build.json and reference.json (the same checks run in
CPU mode on the build machine). The checks:

  1 env      CUDA available through mose's libtorch; device name, memory, driver.
  2 fp32     the demo recipe (shortened) on the device in float32: loss trace and
             final eval against the CPU reference (tolerance stated in the result).
  3 bf16     the same with bfloat16 frozen weights: no NaN, loss trace and eval
             close to check 2's float32 run on the same device.
  4 resume   N straight steps vs k steps + SIGKILL + --resume auto to N: the final
             adapter and optimizer state compared bit for bit, with and without
             MOSE_DETERMINISTIC=1 (deterministic algorithms, math attention,
             CUBLAS_WORKSPACE_CONFIG=:4096:8); two straight runs are also compared.
  5 export   PEFT and merged export of a LoRA checkpoint trained on the device;
             merged-model logits vs adapter logits (mose, on the device), and both
             against PEFT/transformers on the same device.
  6 speed    a random LLaMA (1B on CUDA, `tiny` on CPU) in bfloat16 (CUDA) / float32
             (CPU): MoSE and LoRA on q,v and on all linear targets: tokens/s, step
             time, MFU against the GPU's bf16 peak, peak caching-allocator memory;
             the same step in PyTorch + PEFT on the same device, as a ratio.
  7 nccl     the data-parallel path: a group of one (torchrun's environment,
             WORLD_SIZE=1) trains check 2's run through c10d (NCCL on CUDA, Gloo
             in CPU mode); its losses must match check 2's.
  8 nf4      QLoRA: LoRA q,v with checkpointing on a base whose linears fit NF4 (the 1B
             decoder in bf16 on CUDA, a tiny one in float32 on CPU), model.quantize none
             vs int8 vs nf4: step time and peak caching-allocator memory side by side;
             one weight's NF4 parts against torchao's on the same device (when the
             Python has torchao).
  9 omni     Qwen2.5-Omni's thinker (a random omni-tiny, --std 0.2, and synthetic
             clips drawn in Go, the same bytes on every machine): model-info's logits
             on one processor-outputs file in bfloat16 on the device vs float32 on the
             CPU (and the CPU float32 logits vs the reference's), then 4 steps of MoSE
             with activation checkpointing in bfloat16 on the device (float32 in CPU
             mode, the reference): finite losses, close to the reference's trace.

Exit status 0 when every check passed, 1 otherwise, 2 on bad usage. Only the
standard library is needed to orchestrate; torch/transformers/peft are imported
by the child scripts.
"""
import argparse
import gzip
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

KIT = os.path.dirname(os.path.abspath(__file__))
TEXT = "[INST] The person in video says: I walked home and then smiled. [/INST]"

# Same in both modes, so that a CUDA run compares with the CPU reference.
# Small on purpose: the CPU reference must run in a couple of minutes on 2 busy cores.
DEMO = {"steps": 20, "log_every": 5, "synth_samples": 360}
RESUME = {"n": 8, "k": 4}
EXPORT_STEPS = 6
# Tolerances (stated in the results).
TOL = {
    "world1_vs_single_loss": 1e-4,     # max |Δ emotion loss|, a data-parallel group of one vs one process, same device
    "fp32_vs_reference_loss": 0.05,    # max |Δ emotion loss| over the trace, device vs CPU reference
    "fp32_vs_reference_acc": 0.05,     # |Δ all.accuracy| of the final eval
    "bf16_vs_fp32_loss": 0.15,         # max |Δ emotion loss| bf16 vs fp32, same device
    "bf16_vs_fp32_acc": 0.10,          # |Δ all.accuracy|
    "merged_vs_adapter_logits": 2e-4,  # max |Δ logit|, float32
    "mose_vs_peft_logits": 2e-4,
}
OMNI = {"samples": 4, "steps": 4, "batch": 2}
TOL.update({
    "omni_cpu_fp32_vs_reference_logits": 1e-4,  # max |Δ logit|, the thinker's fp32 CPU forward vs the build machine's
    "omni_bf16_vs_fp32_logits_rel": 0.06,       # max |Δ logit| / max |logit|, bf16 on the device vs fp32 on the CPU (CPU bf16: 0.032)
    "omni_bf16_argmax_agreement": 0.9,          # fraction of positions whose top token agrees
    "omni_bf16_vs_fp32_loss": 0.15,             # max |Δ emotion loss|, bf16 training on the device vs the fp32 reference
})
BENCH = {
    "cuda": {"preset": "small", "size": "1b", "dtype": "bfloat16", "batch": 32, "steps": 30, "log_every": 5},
    "cpu": {"preset": "tiny", "size": "", "dtype": "float32", "batch": 8, "steps": 6, "log_every": 2},
}
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Dense bf16 tensor-core peaks (FLOP/s), by a substring of the device name.
BF16_PEAK = [("H200", 989e12), ("H100", 989e12), ("H800", 989e12), ("B200", 2250e12), ("GB200", 2500e12),
             ("A100", 312e12), ("A800", 312e12), ("L40S", 362e12), ("L4", 121e12), ("A10", 125e12)]


class Kit:
    def __init__(self, args):
        self.args = args
        self.work = os.path.abspath(args.work)
        os.makedirs(os.path.join(self.work, "logs"), exist_ok=True)
        self.py = sys.executable
        self.build = load_json(os.path.join(KIT, "build.json")) or {}
        self.reference = load_json(os.path.join(KIT, "reference.json"))
        self.env = dict(os.environ)
        if args.device == "cpu":
            self.env.setdefault("OMP_NUM_THREADS", "1")
            self.env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.mose = self.unpack_binary()
        self.results = []
        self.n_runs = 0

    # ------------------------------------------------------------ plumbing
    def unpack_binary(self):
        gz = os.path.join(KIT, "bin", "mose.gz")
        out = os.path.join(self.work, "bin", "mose")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(gz):
            with gzip.open(gz, "rb") as src, open(out + ".tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(out + ".tmp", 0o755)
            os.replace(out + ".tmp", out)
        # The binary's rpath names the build machine's libtorch; elsewhere it finds
        # libtorch through this Python's torch/lib.
        missing = [l for l in run_text(["ldd", out]).splitlines() if "not found" in l]
        if missing:
            tdir = torch_dir(self.py)
            tver = run_text([self.py, "-c", "import torch;print(torch.__version__)"]).strip()
            want = self.build.get("torch", "")
            if want and tver.split("+")[0].split(".")[:2] != want.split(".")[:2]:
                raise SystemExit(f"kit: bin/mose was built against torch {want}, but {self.py} has torch {tver}; "
                                 f"fix: set PYTHON to a Python with torch=={want}")
            torch_lib = os.path.join(tdir, "lib")
            self.env["LD_LIBRARY_PATH"] = torch_lib + os.pathsep + self.env.get("LD_LIBRARY_PATH", "")
            still = [l for l in run_text(["ldd", out], env=self.env).splitlines() if "not found" in l]
            self.lib_note = f"LD_LIBRARY_PATH={torch_lib}"
            if still:
                raise SystemExit("kit: bin/mose still misses libraries with " + self.lib_note + ":\n" + "\n".join(still))
        else:
            self.lib_note = "rpath (build machine's libtorch)"
        return out

    def sh(self, name, cmd, env=None, timeout=900, check=True):
        """Run cmd in the work dir, logging to logs/NAME.log; returns stdout."""
        self.n_runs += 1
        log = os.path.join(self.work, "logs", f"{name}.log")
        e = dict(self.env)
        e.update(env or {})
        t0 = time.time()
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            p = subprocess.run(cmd, cwd=self.work, env=e, stdout=subprocess.PIPE, stderr=f, text=True, timeout=timeout)
            f.write(p.stdout)
        if check and p.returncode != 0:
            raise CheckError(f"{name}: exit {p.returncode} ({' '.join(cmd[:3])} ...); log {log}: {tail(log)}")
        return p.stdout, time.time() - t0

    def train_cmd(self, out, sets, steps, extra=()):
        d = self.args.device
        cmd = [self.mose, "train", "--recipe", os.path.join(KIT, "recipes", "demo-tiny.yaml"), "--no-progress",
               "--log-level", "warn", "--set", f"run.output_dir={out}", "--set", f"run.device={d}",
               "--set", f"train.max_steps={steps}", "--set", f"data.synth_samples={DEMO['synth_samples']}",
               "--set", "model.path=runs/models/tiny", "--set", "data.train=runs/data/synth-tiny/train.jsonl",
               "--set", "data.eval=runs/data/synth-tiny/eval.jsonl", "--set", "train.warmup_steps=2"]
        if d == "cpu":
            # One thread: on a shared CPU, OpenMP's spinning second thread costs more than it gives.
            cmd += ["--set", "run.threads=1"]
        for s in sets:
            cmd += ["--set", s]
        return cmd + list(extra)

    def train(self, name, sets, steps, env=None, extra=()):
        out = os.path.join(self.work, "runs", name)
        shutil.rmtree(out, ignore_errors=True)
        _, dur = self.sh(name, self.train_cmd(out, sets, steps, extra), env=env)
        return out, dur

    # ------------------------------------------------------------ checks
    def check_env(self):
        info = json.loads(self.sh("env-python", [self.py, "-c", ENV_PY], check=True)[0])
        info["mose_binary"] = self.build.get("mode", "?") + " build, libtorch " + self.build.get("torch", "?")
        info["libraries"] = self.lib_note
        info["device"] = self.args.device
        smi = shutil.which("nvidia-smi")
        if smi:
            q = run_text([smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]).strip()
            info["nvidia_smi"] = q
        ok = True
        if self.args.device == "cuda":
            if self.build.get("mode") != "cuda":
                raise CheckError("this kit's bin/mose is a CPU build: rebuild it with scripts/gpu-kit/build")
            ok = bool(info.get("cuda_available"))
            # mose itself must see CUDA: move the tiny model to the device.
            self.ensure_tiny()
            out, _ = self.sh("env-mose", [self.mose, "model-info", "--model", "runs/models/tiny", "--device", "cuda",
                                          "--text", TEXT, "--log-level", "warn"], check=False)
            info["mose_model_info_on_cuda"] = out.strip().splitlines()[-3:]
            ok = ok and bool(out.strip())
        summary = (f"{info.get('device_name', 'cpu')}, {info.get('memory_gib', '-')} GiB, driver "
                   f"{info.get('driver', '-')}, torch {info.get('torch')}")
        return ok, summary, info

    def ensure_tiny(self):
        if not os.path.exists(os.path.join(self.work, "runs/models/tiny/config.json")):
            self.sh("init-tiny", [self.mose, "init-model", "--preset", "tiny", "--seed", "1", "--out", "runs/models/tiny"])

    def demo_run(self, name, dtype):
        sets = [f"model.dtype={dtype}", f"train.log_every={DEMO['log_every']}", "train.eval_every=0",
                "train.save_every=0", "train.keep_best_by=", "model.create=tiny", "data.synth=tiny"]
        out, dur = self.train(name, sets, DEMO["steps"])
        recs = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
        train = [r for r in recs if r.get("kind", "train") == "train"]
        ev = load_json(os.path.join(out, "eval.json"))
        if ev is None:
            raise CheckError(f"{name}: no eval.json in {out}")
        all_ = ev["subsets"]["all"]
        return {"loss_trace": [[r["step"], r["emotion_loss"]] for r in train],
                "skipped": train[-1].get("skipped", 0) if train else None,
                "eval_all": {k: all_[k] for k in ("accuracy", "uar", "weighted_f1")},
                "conflict_gap": ev.get("conflict_gap"), "wall_s": round(dur, 1)}

    def check_fp32(self):
        r = self.demo_run("demo-fp32", "float32")
        self.fp32 = r
        ref = (self.reference or {}).get("checks", {}).get("fp32", {}).get("details")
        if not ref:
            return True, f"final loss {r['loss_trace'][-1][1]:.4f}, acc {r['eval_all']['accuracy']:.3f} (no reference)", r
        dl = max_trace_diff(r["loss_trace"], ref["loss_trace"])
        da = abs(r["eval_all"]["accuracy"] - ref["eval_all"]["accuracy"])
        r["vs_reference"] = {"max_loss_diff": dl, "acc_diff": da, "tolerance": {
            "loss": TOL["fp32_vs_reference_loss"], "acc": TOL["fp32_vs_reference_acc"]},
            "reference": self.reference.get("machine", {}).get("cpu", "build machine")}
        ok = dl is not None and dl <= TOL["fp32_vs_reference_loss"] and da <= TOL["fp32_vs_reference_acc"]
        return ok, (f"max |Δloss| vs CPU ref {fmt(dl)} (tol {TOL['fp32_vs_reference_loss']}), "
                    f"|Δacc| {da:.3f} (tol {TOL['fp32_vs_reference_acc']})"), r

    def check_bf16(self):
        r = self.demo_run("demo-bf16", "bfloat16")
        finite = all(math.isfinite(v) for _, v in r["loss_trace"]) and r["skipped"] == 0
        fp = getattr(self, "fp32", None)
        if fp is None:
            return finite, "no fp32 run to compare (check 2 failed)", r
        dl = max_trace_diff(r["loss_trace"], fp["loss_trace"])
        da = abs(r["eval_all"]["accuracy"] - fp["eval_all"]["accuracy"])
        r["vs_fp32"] = {"max_loss_diff": dl, "acc_diff": da,
                        "tolerance": {"loss": TOL["bf16_vs_fp32_loss"], "acc": TOL["bf16_vs_fp32_acc"]}}
        ok = finite and dl is not None and dl <= TOL["bf16_vs_fp32_loss"] and da <= TOL["bf16_vs_fp32_acc"]
        return ok, (f"finite {finite}, max |Δloss| vs fp32 {fmt(dl)} (tol {TOL['bf16_vs_fp32_loss']}), "
                    f"|Δacc| {da:.3f} (tol {TOL['bf16_vs_fp32_acc']})"), r

    def check_resume(self):
        n, k = RESUME["n"], RESUME["k"]
        sets = [f"train.save_every={k}", "train.keep_last=5", "train.eval_every=0", "train.keep_best_by=",
                "data.eval=", "train.log_every=2", "model.create=tiny", "data.synth=tiny"]
        final = f"checkpoints/step-{n:07d}"
        details = {"n": n, "k": k}
        ok = True
        for mode, env in (("default", {"MOSE_DETERMINISTIC": "0"}), ("deterministic", {"MOSE_DETERMINISTIC": "1"})):
            a, ta = self.train(f"resume-{mode}-straight", sets, n, env=env)
            b, _ = self.train(f"resume-{mode}-straight2", sets, n, env=env)
            killed, how = self.kill_after(f"resume-{mode}-killed", sets, n, k, env)
            _, tr = self.sh(f"resume-{mode}-resumed", self.train_cmd(killed, sets, n, ["--resume", "auto"]), env=env)
            d = {"kill": how, "straight_s": round(ta, 1),
                 "resume_vs_straight": compare_ckpt(os.path.join(a, final), os.path.join(killed, final)),
                 "straight_vs_straight": compare_ckpt(os.path.join(a, final), os.path.join(b, final))}
            details[mode] = d
            if mode == "deterministic":
                ok = d["resume_vs_straight"]["bit_identical"]
        dd, dm = details["default"], details["deterministic"]
        summ = (f"deterministic: resume bit-identical {dm['resume_vs_straight']['bit_identical']}; default: "
                f"resume max|Δ| {fmt(dd['resume_vs_straight']['max_abs_diff'])}, two straight runs max|Δ| "
                f"{fmt(dd['straight_vs_straight']['max_abs_diff'])}")
        return ok, summ, details

    def check_nccl(self):
        """The data-parallel path on the device: a group of one (torchrun's environment with
        WORLD_SIZE=1: NCCL on CUDA, Gloo on the CPU) trains the fp32 demo; its losses must
        match check 2's single-process run."""
        sets = [f"train.log_every={DEMO['log_every']}", "train.eval_every=0", "train.save_every=0",
                "train.keep_best_by=", "model.create=tiny", "data.synth=tiny"]
        env = {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(free_port()), "MOSE_DIST_TIMEOUT": "120s"}
        out, dur = self.train("ddp-world1", sets, DEMO["steps"], env=env, extra=["--log-level", "info"])
        log = os.path.join(self.work, "logs", "ddp-world1.log")
        backend = None
        for line in open(log):
            if '"data-parallel group"' in line or "data-parallel group" in line:
                m = re.search(r'backend"?[=:]"?(\w+)', line)
                backend = m.group(1) if m else backend
        recs = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
        train = [r for r in recs if r.get("kind", "train") == "train"]
        trace = [[r["step"], r["emotion_loss"]] for r in train]
        comm = [r.get("comm_time_s") for r in train]
        det = {"backend": backend, "loss_trace": trace, "comm_time_s": comm, "seconds": round(dur, 1),
               "tolerance": TOL["world1_vs_single_loss"]}
        want = "nccl" if self.args.device == "cuda" else "gloo"
        fp = getattr(self, "fp32", None)
        if fp is None:
            return False, "no fp32 run to compare (check 2 failed or was skipped)", det
        dl = max_trace_diff(trace, fp["loss_trace"])
        det["max_loss_diff_vs_single_process"] = dl
        ok = backend == want and dl is not None and dl <= TOL["world1_vs_single_loss"] and all(c is not None for c in comm)
        return ok, (f"group of one on {backend} (want {want}): max |Δloss| vs the single-process run {fmt(dl)} "
                    f"(tol {TOL['world1_vs_single_loss']}), all-reduce {1e3 * (sum(comm) / len(comm) if comm else 0):.2f} ms/step"), det

    def kill_after(self, name, sets, n, k, env):
        """Start an n-step run, SIGKILL it as soon as checkpoint k is the latest."""
        out = os.path.join(self.work, "runs", name)
        shutil.rmtree(out, ignore_errors=True)
        e = dict(self.env)
        e.update(env)
        want = f"step-{k:07d}"
        latest = os.path.join(out, "checkpoints", "latest")
        with open(os.path.join(self.work, "logs", name + ".log"), "w") as log:
            p = subprocess.Popen(self.train_cmd(out, sets, n), cwd=self.work, env=e, stdout=log, stderr=log)
            while p.poll() is None:
                try:
                    if open(latest).read().strip() == want:
                        p.send_signal(signal.SIGKILL)
                        p.wait()
                        return out, f"SIGKILL after {want}"
                except OSError:
                    pass
                time.sleep(0.002)
        if p.returncode != 0:
            raise CheckError(f"{name}: exit {p.returncode} before checkpoint {want}: {tail(log.name)}")
        # Too fast to catch: fall back to a run that stops at k, then resume from it.
        shutil.rmtree(out)
        self.sh(name + "-k", self.train_cmd(out, sets, k), env=env)
        return out, f"run finished before the kill; stopped at {want} instead (no SIGKILL)"

    def check_export(self):
        d = self.args.device
        sets = ["adapters.method=lora", "train.eval_every=0", "train.keep_best_by=", "data.eval=",
                "train.log_every=5", "model.create=tiny", "data.synth=tiny"]
        out, _ = self.train("export-lora", sets, EXPORT_STEPS)
        ck = os.path.join(out, f"checkpoints/step-{EXPORT_STEPS:07d}")
        peft, merged = os.path.join(out, "peft"), os.path.join(out, "merged")
        self.sh("export-peft", [self.mose, "export", "--checkpoint", ck, "--format", "peft", "--out", peft, "--force"])
        self.sh("export-merged", [self.mose, "export", "--checkpoint", ck, "--format", "merged", "--out", merged, "--force"])
        base = os.path.join(self.work, "runs/models/tiny")
        la, lm = os.path.join(out, "logits-adapter.safetensors"), os.path.join(out, "logits-merged.safetensors")
        self.sh("logits-adapter", [self.mose, "model-info", "--model", base, "--adapter", peft, "--text", TEXT,
                                   "--device", d, "--logits-out", la, "--log-level", "error"])
        self.sh("logits-merged", [self.mose, "model-info", "--model", merged, "--text", TEXT, "--device", d,
                                  "--logits-out", lm, "--log-level", "error"])
        res, _ = self.sh("peft-check", [self.py, os.path.join(KIT, "peft_check.py"), "--base", base, "--peft", peft,
                                        "--merged", merged, "--mose-adapter", la, "--mose-merged", lm, "--text", TEXT,
                                        "--device", d])
        r = json.loads(res.strip().splitlines()[-1])
        r["tolerance"] = {"merged_vs_adapter": TOL["merged_vs_adapter_logits"], "mose_vs_peft": TOL["mose_vs_peft_logits"]}
        ok = (r["mose_merged_vs_mose_adapter"] <= TOL["merged_vs_adapter_logits"]
              and r["mose_adapter_vs_peft"] <= TOL["mose_vs_peft_logits"]
              and r["hf_merged_vs_peft"] <= TOL["mose_vs_peft_logits"] and r["ids_match"]
              and r["adapter_effect"] > 10 * TOL["merged_vs_adapter_logits"])  # the adapter must move the logits
        return ok, (f"merged vs adapter (mose, {d}) {fmt(r['mose_merged_vs_mose_adapter'])}, mose vs PEFT "
                    f"{fmt(r['mose_adapter_vs_peft'])} (tol {TOL['merged_vs_adapter_logits']})"), r

    def check_speed(self):
        d = self.args.device
        b = BENCH[d]
        mdir = os.path.join(self.work, "runs/models/bench-" + (b["size"] or b["preset"]))
        if not os.path.exists(os.path.join(mdir, "config.json")):
            cmd = [self.mose, "init-model", "--preset", b["preset"], "--seed", "1", "--dtype", b["dtype"], "--out", mdir]
            if b["size"]:
                cmd += ["--size", b["size"]]
            self.sh("init-bench", cmd, timeout=600)
        cfg = json.load(open(os.path.join(mdir, "config.json")))
        peak = next((p for s, p in BF16_PEAK if s in (self.device_name or "")), None) if d == "cuda" else None
        rows = {}
        for method in ("mose", "lora"):
            for tname, targets in (("qv", ["q_proj", "v_proj"]), ("all", ALL_LINEAR)):
                name = f"speed-{method}-{tname}"
                sets = [f"model.path={mdir}", "model.create=", f"model.dtype={b['dtype']}", "model.train_projectors=false",
                        f"data.synth={b['preset']}", f"data.train=runs/data/synth-{b['preset']}/train.jsonl", "data.eval=",
                        f"train.batch_size={b['batch']}", f"train.log_every={b['log_every']}", "train.eval_every=0",
                        "train.save_every=0", "train.keep_best_by=", f"adapters.method={method}",
                        "adapters.targets=[" + ",".join(targets) + "]"]
                out, _ = self.train(name, sets, b["steps"])
                recs = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
                recs = [r for r in recs if r.get("kind", "train") == "train"][1:]  # drop warm-up interval
                tps = sum(r["tokens_per_s"] for r in recs) / len(recs)
                st = sum(r["step_time_s"] for r in recs) / len(recs)
                rows[name] = {"tokens_per_s": tps, "step_time_s": st, "tokens_per_step": tps * st,
                              "gpu_peak_mib": recs[-1].get("gpu_peak_mib")}
        seq = round(rows["speed-lora-qv"]["tokens_per_step"] / b["batch"])
        for tname, targets in (("qv", "q_proj,v_proj"), ("all", ",".join(ALL_LINEAR))):
            res, _ = self.sh(f"speed-peft-{tname}", [self.py, os.path.join(KIT, "peft_step.py"), "--model", mdir,
                                                     "--targets", targets, "--batch", str(b["batch"]), "--seq", str(seq),
                                                     "--steps", str(b["steps"]), "--device", d, "--dtype", b["dtype"]],
                             timeout=900)
            rows[f"speed-peft-{tname}"] = json.loads(res.strip().splitlines()[-1])
        flops_tok = flops_per_token(cfg, seq)
        for r in rows.values():
            r["mfu"] = (r["tokens_per_s"] * flops_tok / peak) if peak else None
        for t in ("qv", "all"):
            p = rows[f"speed-peft-{t}"]["tokens_per_s"]
            rows[f"speed-lora-{t}"]["vs_peft"] = rows[f"speed-lora-{t}"]["tokens_per_s"] / p
            rows[f"speed-mose-{t}"]["vs_peft_lora"] = rows[f"speed-mose-{t}"]["tokens_per_s"] / p
        det = {"model": {"dir": os.path.basename(mdir), "hidden": cfg["hidden_size"], "layers": cfg["num_hidden_layers"],
                         "intermediate": cfg["intermediate_size"], "heads": cfg["num_attention_heads"],
                         "kv_heads": cfg["num_key_value_heads"], "dtype": b["dtype"], "params": param_count(cfg)},
               "batch": b["batch"], "mean_seq_tokens": seq, "steps": b["steps"], "bf16_peak_flops": peak,
               "flops_per_token": flops_tok,
               "flops_formula": "2 x (2 N_decoder + 4 L S d_attn) per token: forward, plus the backward of the "
                                "activations only (frozen weights get no weight gradient); adapters and head omitted",
               "runs": rows}
        lq = rows["speed-lora-qv"]
        summ = (f"LoRA q,v {lq['tokens_per_s']:.0f} tok/s ({lq['vs_peft']:.2f}x PEFT), MoSE q,v "
                f"{rows['speed-mose-qv']['tokens_per_s']:.0f} tok/s, MoSE all "
                f"{rows['speed-mose-all']['tokens_per_s']:.0f} tok/s")
        if peak:
            summ += f", MFU MoSE q,v {100 * rows['speed-mose-qv']['mfu']:.1f}%"
        if lq.get("gpu_peak_mib"):
            summ += f", peak {lq['gpu_peak_mib']:.0f} MiB"
        return True, summ, det

    def check_nf4(self):
        d = self.args.device
        b = dict(BENCH[d])
        if d == "cuda":
            mdir = os.path.join(self.work, "runs/models/bench-1b")
            init = [self.mose, "init-model", "--preset", "small", "--size", "1b", "--seed", "1", "--dtype", "bfloat16", "--out", mdir]
            data = "small"
        else:  # the tiny preset with 4 KV heads and an MLP of 256: every decoder weight a multiple of 64 x 256
            mdir = os.path.join(self.work, "runs/models/tiny-nf4")
            init = [self.mose, "init-model", "--preset", "tiny", "--seed", "1", "--kv-heads", "4", "--intermediate", "256", "--out", mdir]
            data = "tiny"
        if not os.path.exists(os.path.join(mdir, "config.json")):
            self.sh("init-nf4", init, timeout=600)
        rows = {}
        for q in ("none", "int8", "nf4"):
            sets = [f"model.path={mdir}", "model.create=", f"model.dtype={b['dtype']}", "model.train_projectors=false",
                    f"data.synth={data}", f"data.train=runs/data/synth-{data}/train.jsonl", "data.eval=",
                    f"train.batch_size={b['batch']}", f"train.log_every={b['log_every']}", "train.eval_every=0",
                    "train.save_every=0", "train.keep_best_by=", "adapters.method=lora", "adapters.targets=[q_proj,v_proj]",
                    "train.activation_checkpointing=true", f"model.quantize={q}"]
            out, _ = self.train(f"nf4-{q}", sets, b["steps"])
            recs = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
            recs = [r for r in recs if r.get("kind", "train") == "train"]
            timed = recs[1:] or recs
            rows[q] = {"step_time_s": sum(r["step_time_s"] for r in timed) / len(timed),
                       "tokens_per_s": sum(r["tokens_per_s"] for r in timed) / len(timed),
                       "gpu_peak_mib": recs[-1].get("gpu_peak_mib"),
                       "final_loss": recs[-1]["emotion_loss"],
                       "finite": all(math.isfinite(r["emotion_loss"]) for r in recs) and recs[-1].get("skipped", 0) == 0}
        for q in ("int8", "nf4"):
            rows[q]["step_time_vs_none"] = rows[q]["step_time_s"] / rows["none"]["step_time_s"]
        tensor = "model.layers.0.mlp.down_proj.weight"
        dump = os.path.join(self.work, "runs", "nf4-dump.safetensors")
        self.sh("nf4-dump", [self.mose, "model-info", "--model", mdir, "--device", d, "--dtype", b["dtype"], "--quantize", "nf4",
                             "--dump-quantized", f"{tensor}={dump}", "--log-level", "warn"], timeout=600)
        res, _ = self.sh("nf4-torchao", [self.py, os.path.join(KIT, "nf4_check.py"), "--model", mdir, "--tensor", tensor,
                                         "--dump", dump, "--dtype", b["dtype"], "--device", d], timeout=600)
        parity = json.loads(res.strip().splitlines()[-1])
        parts_ok = parity.get("torchao") is None or all(v == "equal" for v in parity["parts"].values())
        ok = all(r["finite"] for r in rows.values()) and parts_ok
        if d == "cuda" and rows["none"]["gpu_peak_mib"] and rows["nf4"]["gpu_peak_mib"]:
            ok = ok and rows["nf4"]["gpu_peak_mib"] < rows["none"]["gpu_peak_mib"]
        det = {"model": os.path.basename(mdir), "dtype": b["dtype"], "batch": b["batch"], "steps": b["steps"],
               "runs": rows, "parity": parity, "tensor": tensor}
        summ = (f"step time vs {b['dtype']} base: int8 {rows['int8']['step_time_vs_none']:.2f}x, "
                f"nf4 {rows['nf4']['step_time_vs_none']:.2f}x")
        if rows["none"]["gpu_peak_mib"]:
            summ += (f"; peak {rows['none']['gpu_peak_mib']:.0f} / {rows['int8']['gpu_peak_mib']:.0f} / "
                     f"{rows['nf4']['gpu_peak_mib']:.0f} MiB (none/int8/nf4)")
        if parity.get("torchao") is None:
            summ += "; no torchao here: parts not compared"
        else:
            summ += "; parts vs torchao " + ("equal" if parts_ok else json.dumps(parity["parts"]))
        return ok, summ, det

    def check_omni(self):
        d = self.args.device
        mdir = os.path.join(self.work, "runs/models/omni-tiny-kit")
        data = os.path.join(self.work, "runs/data/omni-kit/train.jsonl")
        if not os.path.exists(os.path.join(mdir, "config.json")):
            self.sh("omni-init", [self.mose, "init-model", "--preset", "omni-tiny", "--std", "0.2", "--seed", "4", "--out", mdir])
        # The clips are drawn in Go (MOSE_FFMPEG names no binary), so that every machine
        # trains and compares on the same bytes.
        env = {"MOSE_FFMPEG": os.path.join(self.work, "no-ffmpeg")}

        def train(name, dtype, dev):
            out = os.path.join(self.work, "runs", name)
            shutil.rmtree(out, ignore_errors=True)
            cmd = [self.mose, "train", "--recipe", "omni-tiny-mose", "--no-progress", "--log-level", "warn",
                   "--set", f"run.output_dir={out}", "--set", f"run.device={dev}", "--set", f"model.path={mdir}",
                   "--set", "model.create=", "--set", f"model.dtype={dtype}", "--set", f"data.train={data}",
                   "--set", f"data.synth_samples={OMNI['samples']}", "--set", f"train.batch_size={OMNI['batch']}",
                   "--set", f"train.max_steps={OMNI['steps']}", "--set", "train.log_every=1", "--set", "train.save_every=0",
                   "--set", "train.warmup_steps=1", "--set", "train.lr=5e-3", "--set", "train.activation_checkpointing=true"]
            if dev == "cpu":
                cmd += ["--set", "run.threads=1"]
            self.sh(name, cmd, env=env)
            recs = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl")) if l.strip()]
            return [[r["step"], r["emotion_loss"]] for r in recs if r.get("kind", "train") == "train"], recs

        # On the device in bfloat16; the CPU reference trains in float32.
        trace, recs = train("omni-train", "float32" if d == "cpu" else "bfloat16", d)
        sample = os.path.join(os.path.dirname(data), "inputs", "omni-0000.safetensors")

        def logits(name, dtype, dev):
            out = os.path.join(self.work, "runs", f"{name}.safetensors")
            self.sh(name, [self.mose, "model-info", "--model", mdir, "--inputs", sample, "--logits-out", out,
                           "--dtype", dtype, "--device", dev, "--log-level", "error"], env=env)
            dt, shape, raw = read_safetensors(out)["logits"]
            return shape, struct.unpack(f"<{len(raw) // 4}f", raw)

        shape, fp32 = logits("omni-logits-cpu-fp32", "float32", "cpu")
        _, bf16 = logits("omni-logits-bf16", "bfloat16", d)
        V = shape[-1]
        rows = [(fp32[i:i + V], bf16[i:i + V]) for i in range(0, len(fp32), V)]
        agree = sum(max(range(V), key=a.__getitem__) == max(range(V), key=b.__getitem__) for a, b in rows) / len(rows)
        d_bf16 = max(abs(a - b) for a, b in zip(fp32, bf16))
        scale = max(abs(a) for a in fp32)
        finite = all(math.isfinite(v) for _, v in trace) and recs[-1].get("skipped", 0) == 0
        det = {"train_dtype": "float32" if d == "cpu" else "bfloat16", "positions": len(rows), "vocab": V, "logit_scale": scale,
               "bf16_vs_cpu_fp32_max_abs": d_bf16, "argmax_agreement": agree, "loss_trace": trace,
               "gpu_peak_mib": recs[-1].get("gpu_peak_mib"),
               "cpu_fp32_logits_head": list(fp32[:64]), "tolerance": {k: v for k, v in TOL.items() if k.startswith("omni")}}
        ok = finite and d_bf16 <= TOL["omni_bf16_vs_fp32_logits_rel"] * scale and agree >= TOL["omni_bf16_argmax_agreement"]
        summ = f"bf16 on {d} vs fp32 CPU: max |Δlogit| {fmt(d_bf16)} (logits ±{scale:.1f}), argmax agree {agree:.3f}"
        ref = (self.reference or {}).get("checks", {}).get("omni", {}).get("details")
        if ref:
            dref = max(abs(a - b) for a, b in zip(fp32[:64], ref["cpu_fp32_logits_head"]))
            dl = max_trace_diff(trace, ref["loss_trace"])
            det["vs_reference"] = {"cpu_fp32_logits_max_abs": dref, "max_loss_diff": dl,
                                   "reference": self.reference.get("machine", {}).get("cpu", "build machine")}
            ok = ok and dref <= TOL["omni_cpu_fp32_vs_reference_logits"] and dl is not None and dl <= TOL["omni_bf16_vs_fp32_loss"]
            summ += f"; CPU fp32 vs reference {fmt(dref)}; training vs reference max |Δloss| {fmt(dl)}"
        else:
            summ += "; no reference"
        summ += f"; {len(trace)} steps finite {finite}"
        return ok, summ, det

    # ------------------------------------------------------------ driver
    def run(self):
        t0 = time.time()
        checks = [(1, "env", self.check_env), (2, "fp32", self.check_fp32), (3, "bf16", self.check_bf16),
                  (4, "resume", self.check_resume), (5, "export", self.check_export), (6, "speed", self.check_speed),
                  (7, "nccl", self.check_nccl), (8, "nf4", self.check_nf4), (9, "omni", self.check_omni)]
        only = {int(x) for x in self.args.only.split(",")} if self.args.only else None
        self.device_name = None
        env_failed = False
        for i, name, fn in checks:
            if only and i not in only and i != 1:
                continue
            t = time.time()
            if env_failed:
                self.results.append((i, name, "skip", "CUDA not available to mose", {}, 0.0))
                continue
            try:
                ok, summ, det = fn()
                status = "pass" if ok else "FAIL"
            except CheckError as e:
                ok, summ, det, status = False, str(e), {}, "FAIL"
            except subprocess.TimeoutExpired as e:
                ok, summ, det, status = False, f"timed out after {e.timeout}s: {e.cmd[:3]}", {}, "FAIL"
            if i == 1:
                self.device_name = det.get("device_name")
                env_failed = not ok
            self.results.append((i, name, status, summ, det, time.time() - t))
            print(f"[{i}] {name:7s} {status:4s} {time.time() - t:6.1f}s  {summ}", flush=True)
        doc = {"kit": self.build, "device": self.args.device, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
               "wall_s": round(time.time() - t0, 1), "machine": machine(),
               "all_passed": all(r[2] == "pass" for r in self.results),
               "checks": {name: {"id": i, "status": st, "summary": s, "seconds": round(dt, 1), "details": det}
                          for i, name, st, s, det, dt in self.results}}
        with open(self.args.out + ".tmp", "w") as f:
            json.dump(doc, f, indent=1, default=float)
        os.replace(self.args.out + ".tmp", self.args.out)
        print()
        print(f"{'#':2s} {'check':8s} {'status':6s} {'time':>7s}  result")
        for i, name, st, s, _, dt in self.results:
            print(f"{i:<2d} {name:8s} {st:6s} {dt:6.1f}s  {s if len(s) < 240 else s[:237] + '...'}")
        print(f"\nwall {doc['wall_s']}s; results: {self.args.out}; logs: {os.path.join(self.work, 'logs')}")
        return 0 if doc["all_passed"] else 1


class CheckError(Exception):
    pass


ENV_PY = r"""
import json, torch
d = {"torch": torch.__version__, "cuda_build": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
if d["cuda_available"]:
    p = torch.cuda.get_device_properties(0)
    d.update(device_name=p.name, memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}",
             device_count=torch.cuda.device_count())
    try:
        d["driver"] = torch.cuda.driver_version() if hasattr(torch.cuda, "driver_version") else None
    except Exception:
        pass
print(json.dumps(d))
"""


def flops_per_token(cfg, seq):
    d, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    dq = cfg.get("head_dim") or d // cfg["num_attention_heads"]
    dq *= cfg["num_attention_heads"]
    fwd = 2 * decoder_params(cfg) + 4 * L * seq * dq
    return 2 * fwd


def decoder_params(cfg):
    d, L, i = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    hd = cfg.get("head_dim") or d // cfg["num_attention_heads"]
    q = cfg["num_attention_heads"] * hd
    kv = cfg["num_key_value_heads"] * hd
    return L * (d * q + 2 * d * kv + q * d + 3 * d * i)


def param_count(cfg):
    emb = cfg["vocab_size"] * cfg["hidden_size"]
    return decoder_params(cfg) + emb * (1 if cfg.get("tie_word_embeddings") else 2)


def compare_ckpt(a, b):
    """Compare two checkpoints' adapter and optimizer tensors bit for bit."""
    out = {"bit_identical": True, "max_abs_diff": 0.0, "tensors": 0}
    for f in ("adapter.safetensors", "optimizer.safetensors"):
        ta, tb = read_safetensors(os.path.join(a, f)), read_safetensors(os.path.join(b, f))
        if set(ta) != set(tb):
            raise CheckError(f"{f}: different tensor names in {a} and {b}")
        for name in ta:
            (da, sa, ba), (db, sb, bb) = ta[name], tb[name]
            out["tensors"] += 1
            if ba != bb:
                out["bit_identical"] = False
                if da == "F32" and db == "F32" and len(ba) == len(bb):
                    xa = struct.unpack(f"<{len(ba) // 4}f", ba)
                    xb = struct.unpack(f"<{len(bb) // 4}f", bb)
                    out["max_abs_diff"] = max(out["max_abs_diff"], max(abs(x - y) for x, y in zip(xa, xb)))
                else:
                    out["max_abs_diff"] = float("inf")
    return out


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in hdr.items() if k != "__metadata__"}


def max_trace_diff(a, b):
    da, db = dict((s, v) for s, v in a), dict((s, v) for s, v in b)
    common = sorted(set(da) & set(db))
    if not common or len(common) != len(da):
        return None
    return max(abs(da[s] - db[s]) for s in common)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine():
    m = {"host": platform.node(), "cpu": "", "cores": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                m["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return m


def torch_dir(py):
    try:
        return subprocess.run([py, "-c", "import torch,os;print(os.path.dirname(torch.__file__))"], check=True,
                              stdout=subprocess.PIPE, text=True).stdout.strip()
    except (subprocess.CalledProcessError, OSError) as e:
        raise SystemExit(f"kit: {py} cannot import torch ({e}); fix: set PYTHON to a Python with torch==2.11.0")


def run_text(cmd, env=None):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env).stdout


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def tail(path, n=3):
    try:
        return " | ".join(open(path).read().strip().splitlines()[-n:])
    except OSError:
        return ""


def fmt(x):
    return "-" if x is None else f"{x:.3g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="mose-kit-results.json", help="results JSON")
    ap.add_argument("--work", default="mose-kit-work", help="work dir (models, runs, logs)")
    ap.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda for a CUDA build, else cpu")
    ap.add_argument("--only", help="comma-separated check ids to run (1 always runs)")
    args = ap.parse_args()
    build = load_json(os.path.join(KIT, "build.json")) or {}
    if args.device is None:
        args.device = "cuda" if build.get("mode") == "cuda" else "cpu"
    args.out = os.path.abspath(args.out)
    sys.exit(Kit(args).run())


if __name__ == "__main__":
    main()
