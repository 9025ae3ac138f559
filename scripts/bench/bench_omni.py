#!/usr/bin/env python3
"""The PyTorch side of scripts/bench/bench_omni.sh: transformers' Qwen2_5OmniThinkerForConditionalGeneration
with a PEFT LoRA on the decoder's q,v (rank 8, alpha 16, dropout 0), one training step per iteration on
the manifest's first --batch samples (their processor-outputs files batched as the processor batches
them, the answer "{label}<|im_end|>" appended and the loss on it only, AdamW), float32 on the CPU.
Prints its mean step time after two warm-up steps and the ratio to mose's (--mose-ms)."""
import argparse
import json
import os
import time

import torch
from peft import LoraConfig, get_peft_model
from safetensors import safe_open
from tokenizers import Tokenizer
from transformers import Qwen2_5OmniThinkerForConditionalGeneration as Thinker


def load_batch(manifest, n, tok, pad):
    root = os.path.dirname(manifest)
    lines = [json.loads(l) for l in open(manifest) if l.strip()][:n]
    rows, media, flags = [], {}, set()
    for s in lines:
        with safe_open(os.path.join(root, s["inputs"]), "pt") as f:
            t = {k: f.get_tensor(k) for k in f.keys()}
            flags.add((f.metadata() or {}).get("use_audio_in_video", "false") == "true")
        ans = tok.encode(s["label"] + "<|im_end|>", add_special_tokens=False).ids
        rows.append((t["input_ids"][0].tolist(), ans))
        for k, v in t.items():
            if k not in ("input_ids", "attention_mask"):
                media.setdefault(k, []).append(v)
    T = max(len(p) + len(a) for p, a in rows)
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    for r, (p, a) in enumerate(rows):
        seq = p + a
        ids[r, :len(seq)] = torch.tensor(seq)
        mask[r, :len(seq)] = 1
        labels[r, len(p):len(seq)] = torch.tensor(a)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    for k, vs in media.items():
        if k in ("input_features", "feature_attention_mask"):
            L = max(v.shape[-1] for v in vs)
            vs = [torch.nn.functional.pad(v, (0, L - v.shape[-1])) for v in vs]
        batch[k] = torch.cat(vs, 0)
    return batch, flags == {True}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mose-ms", type=float, help="mose MoSE, towers every step")
    ap.add_argument("--mose-lora-ms", type=float, help="mose LoRA, towers every step")
    ap.add_argument("--mose-cached-ms", type=float, help="mose MoSE, towers from the encoder cache")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = Thinker.from_pretrained(args.model, dtype=torch.float32, attn_implementation="sdpa")
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                     target_modules=r"model\.language_model\.layers\.\d+\.self_attn\.(q_proj|v_proj)")
    model = get_peft_model(model, cfg)
    model.train()
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    pad = json.load(open(os.path.join(args.model, "config.json"))).get("pad_token_id", 0) or 0
    batch, audio_in_video = load_batch(args.manifest, args.batch, tok, pad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    times = []
    for step in range(args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(use_audio_in_video=audio_in_video, **batch)
        out.loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    ms = 1000 * sum(times[2:]) / max(len(times) - 2, 1)
    tokens = int(batch["attention_mask"].sum())
    print(f"{'transformers + PEFT LoRA (q,v):':44s} {ms:8.1f} ms/step  ({tokens} tokens/step)")
    for name, v in (("mose LoRA (q,v), towers every step", args.mose_lora_ms),
                    ("mose MoSE 3/2/1 (q,v), towers every step", args.mose_ms),
                    ("mose MoSE 3/2/1 (q,v), encoder cache", args.mose_cached_ms)):
        if v:
            print(f"{name + ':':44s} {v:8.1f} ms/step  (ratio to PyTorch {v / ms:.2f})")


if __name__ == "__main__":
    main()
