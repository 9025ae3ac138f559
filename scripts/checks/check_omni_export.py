#!/usr/bin/env python3
"""Check mose's exports of a LoRA run on a Qwen2.5-Omni thinker against transformers and PEFT.

    "$(scripts/setup/pyenv.sh)" scripts/checks/check_omni_export.py --dump DUMP.safetensors \
        [--peft PEFT_DIR] [--merged MERGED_DIR] [--model BASE_DIR] [--tol 1e-4]

DUMP is `mose dump-logits --checkpoint STEP_DIR --out DUMP.safetensors` on the training
checkpoint itself (not an export): one sample's processor outputs under transformers' names
(input_ids with the answer appended, attention_mask, pixel_values_videos, video_grid_thw,
video_second_per_grid, input_features, feature_attention_mask, ...; use_audio_in_video in
the metadata) and mose's logits on it (float32, every position).

--peft: loads the base thinker (--model, default the adapter's base_model_name_or_path) with
transformers' Qwen2_5OmniThinkerForConditionalGeneration (float32, eager), applies the export
with PEFT's own PeftModel.from_pretrained, runs it on the sample and compares its logits
with mose's. --merged: loads the merged dir with the same class and compares likewise.

It fails (exit 1) when
  - PEFT or transformers warns while the export loads (unexpected or missing adapter keys,
    config fields, target modules), other than deprecation notices that name nothing of the
    adapter;
  - PEFT made a LoRA layer on a module outside the decoder (the towers' q_proj, k_proj,
    v_proj, gate_proj, ... share the decoder's names: target_modules must not match them),
    or a decoder target module got no LoRA layer, or a tensor of adapter_model.safetensors
    fits no LoRA layer;
  - the logits differ from mose's by more than --tol;
  - the adapter does not move the logits (PEFT with the adapter disabled, or the base model,
    gives the same logits), so the comparison could not fail.
Exit 2 for bad arguments.
"""
import argparse
import json
import logging
import os
import re
import sys
import warnings

import torch
from safetensors import safe_open
from transformers import Qwen2_5OmniThinkerForConditionalGeneration as Thinker

PROCESSOR = ["input_ids", "attention_mask", "pixel_values", "image_grid_thw", "pixel_values_videos",
             "video_grid_thw", "video_second_per_grid", "input_features", "feature_attention_mask"]


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def load_quietly(load):
    """Runs load() and returns (its result, warnings that are not plain deprecation notices)."""
    handler = Collect()
    loggers = [logging.getLogger(n) for n in ("peft", "transformers")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = load()
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    msgs = [(str(w.message), issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)))
            for w in caught] + [(m, False) for m in handler.records]
    bad = []
    for m, dep in msgs:
        low = m.lower()
        about = any(k in low for k in ("key", "adapter", "lora", "target module", "safetensors", "missing", "unexpected"))
        if about or not (dep or "deprecat" in low):
            bad.append(m)
        else:
            print(f"  (ignored deprecation notice: {m.splitlines()[0][:120]})")
    return out, bad


def logits_of(model, inputs, audio_in_video):
    with torch.no_grad():
        return model(use_audio_in_video=audio_in_video, **inputs).logits.float()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--peft")
    ap.add_argument("--merged")
    ap.add_argument("--model")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    if not args.peft and not args.merged:
        print("check_omni_export: give --peft and/or --merged")
        return 2
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    with safe_open(args.dump, "pt") as f:
        meta = f.metadata() or {}
        t = {k: f.get_tensor(k) for k in f.keys()}
    audio_in_video = meta.get("use_audio_in_video", "false") == "true"
    inputs = {k: t[k] for k in PROCESSOR if k in t}
    want = t["logits"].float()
    print(f"sample: {tuple(inputs['input_ids'].shape)} tokens, media {sorted(k for k in inputs if k not in ('input_ids', 'attention_mask'))}, "
          f"use_audio_in_video={audio_in_video}; mose logits up to {want.abs().max():.3g}")
    failures = []

    def compare(name, got, base):
        d = (got - want).abs().max().item()
        moved = (want - base).abs().max().item()
        print(f"{name}: max |logit - mose| = {d:.3g} (tolerance {args.tol}); the adapter moves the logits by {moved:.3g}")
        if d > args.tol:
            failures.append(f"{name}: logits differ from mose's by {d:.3g} > {args.tol}")
        if moved <= 10 * args.tol:
            failures.append(f"{name}: the adapter moves the logits by only {moved:.3g}: the comparison shows nothing")
        return d

    if args.peft:
        from peft import PeftModel
        cfg = json.load(open(os.path.join(args.peft, "adapter_config.json")))
        base_dir = args.model or cfg["base_model_name_or_path"]
        print(f"PEFT export {args.peft}: r={cfg['r']} lora_alpha={cfg['lora_alpha']} target_modules={cfg['target_modules']!r}")
        base = Thinker.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager").eval()
        plain = logits_of(base, inputs, audio_in_video)
        model, bad = load_quietly(lambda: PeftModel.from_pretrained(base, args.peft).eval())
        failures += [f"warning while loading the PEFT export: {m}" for m in bad]
        lora = sorted(n[:-len(".lora_A")] for n, _ in model.named_modules() if n.endswith(".lora_A"))
        decoder = re.compile(r"base_model\.model\.model\.language_model\.layers\.\d+\.(self_attn|mlp)\.[a-z_]+$")
        outside = [n for n in lora if not decoder.fullmatch(n)]
        if outside:
            failures.append(f"LoRA layers outside the decoder (the towers must stay frozen): {outside[:4]}")
        targets = set(re.findall(r"\(([a-z_|]+)\)$", cfg["target_modules"])[0].split("|")) if isinstance(cfg["target_modules"], str) \
            else set(cfg["target_modules"])
        want_mods = sorted(n for n, _ in base.named_modules() if decoder.fullmatch("base_model.model." + n)
                           and n.rsplit(".", 1)[1] in targets)
        got_mods = sorted(n[len("base_model.model."):] for n in lora)
        if got_mods != want_mods:
            failures.append(f"LoRA layers {got_mods[:4]}... != the decoder's targets {want_mods[:4]}...")
        with safe_open(os.path.join(args.peft, "adapter_model.safetensors"), "pt") as f:
            keys = list(f.keys())
        names = {n for n, _ in model.named_parameters()}
        orphan = [k for k in keys if k.replace(".weight", ".default.weight") not in names]
        if orphan:
            failures.append(f"adapter tensors that fit no LoRA layer (PEFT ignores them): {orphan[:4]}")
        print(f"  {len(lora)} LoRA layers, {len(keys)} adapter tensors")
        compare("PEFT", logits_of(model, inputs, audio_in_video), plain)
        with model.disable_adapter():
            off = logits_of(model, inputs, audio_in_video)
        if (off - plain).abs().max().item() != 0:
            failures.append("PEFT with the adapter disabled differs from the base model")

    if args.merged:
        merged, bad = load_quietly(lambda: Thinker.from_pretrained(args.merged, dtype=torch.float32, attn_implementation="eager").eval())
        failures += [f"warning while loading the merged export: {m}" for m in bad]
        base_dir = args.model or json.load(open(os.path.join(args.merged, "config.json")))["mose"]["merged"]["from_model"]
        base = Thinker.from_pretrained(base_dir, dtype=torch.float32, attn_implementation="eager").eval()
        compare("merged", logits_of(merged, inputs, audio_in_video), logits_of(base, inputs, audio_in_video))

    for f in failures:
        print(f"FAIL: {f}")
    if failures:
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
