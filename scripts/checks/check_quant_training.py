#!/usr/bin/env python3
"""The PyTorch reference of a LoRA run on an NF4 base: the losses mose logged, step by step.

    python check_quant_training.py --model BASE_DIR --peft STEP1_EXPORT --recipe STEP1/recipe.yaml \
        --metrics RUN/metrics.jsonl --dump SAMPLE0.safetensors --dump SAMPLE1.safetensors ... [--tol 1e-4]

The run must be plain LoRA (`adapters.method: lora`) with dropout 0, weight decay 0,
frozen projectors, one micro-batch per step holding the whole training set (batch_size =
the number of samples), so that every step sees the same samples. Its first checkpoint's
PEFT export gives the initial lora_A (with lora_B zero, lora_A gets no gradient at step 0
and no decay, so step 1's lora_A is the initial one); `mose dump-logits` of that checkpoint
gives each sample's input ids, features, feature positions and answer targets.

The reference: transformers loads the base in float32, every decoder linear's weight
becomes torchao 0.18's NF4Tensor (`to_nf4`; its F.linear is torchao's LinearNF4), PEFT
loads the export with lora_B zeroed, and the loop is mose's step written in PyTorch: the
summed answer-token cross-entropy of every sample over the step's answer tokens, the
global gradient norm (the norm of the per-parameter norms), clipping by max/(norm+1e-6),
mose's AdamW (moments by lerp, bias corrections, eps outside the square root) and its
schedule (linear warmup from (step+1)/warmup, then cosine/linear to min_lr). Prints one
JSON line: per-step losses of both, the largest difference; exit 1 beyond --tol.
"""
import argparse
import glob
import json
import math
import os
import sys

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def projectors(model_dir):
    out = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "*.safetensors"))):
        with safe_open(path, "pt") as f:
            for k in f.keys():
                if k.startswith("projectors."):
                    out[k] = f.get_tensor(k).float()
    return out


def project(proj, name, x):
    p = f"projectors.{name}."
    if p + "weight" in proj:
        return torch.nn.functional.linear(x, proj[p + "weight"], proj[p + "bias"])
    h = torch.nn.functional.gelu(torch.nn.functional.linear(x, proj[p + "0.weight"], proj[p + "0.bias"]))
    return torch.nn.functional.linear(h, proj[p + "2.weight"], proj[p + "2.bias"])


def lr_at(t, step):
    if step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / t["warmup_steps"]
    span = t["max_steps"] - t["warmup_steps"]
    if t["schedule"] == "constant" or span <= 0:
        return t["lr"]
    progress = min(1.0, (step - t["warmup_steps"]) / span)
    if t["schedule"] == "linear":
        return t["min_lr"] + (t["lr"] - t["min_lr"]) * (1 - progress)
    return t["min_lr"] + (t["lr"] - t["min_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--peft", required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--dump", action="append", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from peft import PeftModel
    from torchao.quantization.quantize_.workflows.nf4.nf4_tensor import to_nf4
    from transformers import AutoModelForCausalLM

    rec = yaml.safe_load(open(a.recipe))
    t, ad = rec["train"], rec["adapters"]
    for k in ("lr", "min_lr", "eps", "max_grad_norm", "weight_decay"):  # PyYAML reads 1e-08 as a string
        t[k] = float(t[k])
    t["betas"] = [float(x) for x in t["betas"]]
    if ad["method"] != "lora" or ad["dropout"] != 0 or t["weight_decay"] != 0 or rec["model"]["train_projectors"] \
            or t["grad_accum"] != 1 or t["batch_size"] != len(a.dump) or rec["model"]["quantize"] != "nf4":
        raise SystemExit("check_quant_training: the run must be nf4, lora, dropout 0, weight_decay 0, frozen projectors, "
                         "grad_accum 1 and batch_size = the number of --dump samples")
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="eager")
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and ".layers." in name and name.split(".")[-1] in LINEARS:
            mod.weight = torch.nn.Parameter(to_nf4(mod.weight.data), requires_grad=False)
    model = PeftModel.from_pretrained(model, a.peft, is_trainable=True)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    with torch.no_grad():
        for n, p in params:
            if "lora_B" in n:
                p.zero_()
    ps = [p for _, p in params]
    m = [torch.zeros_like(p) for p in ps]
    v = [torch.zeros_like(p) for p in ps]
    b1, b2 = t["betas"]
    proj = projectors(a.model)
    samples = [load_file(d) for d in a.dump]
    embed = model.get_input_embeddings()
    answer = sum(s["targets"].numel() for s in samples)
    got = [json.loads(l) for l in open(a.metrics) if l.strip()]
    got = [r["emotion_loss"] for r in got if r.get("kind", "train") == "train" and "emotion_loss" in r]
    ref = []
    model.train()
    for step in range(t["max_steps"]):
        for p in ps:
            p.grad = None
        total = 0.0
        for s in samples:
            x = embed(s["input_ids"]).clone()
            for k in s:
                if k.startswith("features."):
                    n = k[len("features."):]
                    x[0, s["positions." + n]] = project(proj, n, s[k][0]).to(x.dtype)
            logits = model(inputs_embeds=x).logits[0]  # (T,V)
            ce = torch.nn.functional.cross_entropy(logits[s["target_positions"]].float(), s["targets"], reduction="sum")
            loss = ce / answer
            loss.backward()
            total += loss.item()
        ref.append(total)
        with torch.no_grad():
            norm = torch.stack([p.grad.norm() for p in ps]).norm().item()
            if t["max_grad_norm"] > 0 and norm > t["max_grad_norm"]:
                for p in ps:
                    p.grad.mul_(t["max_grad_norm"] / (norm + 1e-6))
            lr = lr_at(t, step)
            bc1, bc2 = 1 - b1 ** (step + 1), 1 - b2 ** (step + 1)
            for i, p in enumerate(ps):
                m[i] = torch.lerp(m[i], p.grad, 1 - b1)
                v[i] = torch.lerp(v[i], p.grad.square(), 1 - b2)
                p.sub_((m[i] / ((v[i] / bc2).sqrt() + t["eps"])) * (lr / bc1))
    n = min(len(ref), len(got))
    worst = max(abs(ref[i] - got[i]) for i in range(n)) if n else float("inf")
    print(json.dumps({"steps": n, "max_abs_loss_diff": worst, "mose": got[:n], "reference": ref[:n],
                      "loss_moved": abs(ref[0] - ref[-1]) if ref else 0}))
    return 0 if n == t["max_steps"] and worst <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
