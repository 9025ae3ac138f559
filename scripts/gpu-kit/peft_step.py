#!/usr/bin/env python3
"""GPU kit check 6, the reference side: the same LoRA training step in PyTorch + PEFT.

    peft_step.py --model DIR --targets q_proj,v_proj --batch B --seq S --steps N --device cuda|cpu --dtype bfloat16|float32

Loads the mose model dir with transformers (frozen weights in --dtype, SDPA
attention, or eager where transformers refuses SDPA), attaches PEFT LoRA with the demo recipe's settings (r=8, alpha=16,
dropout 0.05; PEFT keeps the adapters in float32), and runs N AdamW steps on
random token batches of B x S with the loss on the last 2 positions (the
answer, as in mose), global-norm clipping at 1.0. Prints one JSON line:
tokens/s and step time (mean over the steps after the first 20 %), peak
caching-allocator memory (torch.cuda.max_memory_allocated, MiB).
"""
import argparse
import json
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM


def lora(model, targets):
    """Attaches PEFT LoRA (r=8, alpha=16, dropout 0.05) on the comma-separated targets in
    train mode; returns the model, its trainable parameters and their AdamW (lr 2e-3)."""
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=targets.split(","), bias="none"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, params, torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)


def timed_steps(model, params, opt, vocab, B, S, steps, dev):
    """Runs `steps` training steps on random B x S token batches, the loss on the last 2
    positions, clipping at 1.0; returns the mean step time after the first 20 % and the
    last loss. On CUDA the peak-memory counter is reset first."""
    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    for _ in range(steps):
        ids = torch.randint(3, vocab, (B, S), device=dev)
        labels = torch.full_like(ids, -100)
        labels[:, -2:] = ids[:, -2:]
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t0)
    keep = times[max(1, len(times) // 5):]
    return sum(keep) / len(keep), loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--targets", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(1)
    dev = torch.device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    try:
        attn = "sdpa"
        model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype, attn_implementation=attn)
    except (ImportError, ValueError):  # transformers refuses SDPA on torch 2.1.0
        attn = "eager"
        model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype, attn_implementation=attn)
    model = model.to(dev)
    model, params, opt = lora(model, args.targets)
    vocab = model.config.vocab_size
    B, S = args.batch, args.seq
    st, loss = timed_steps(model, params, opt, vocab, B, S, args.steps, dev)
    out = {"tokens_per_s": B * S / st, "step_time_s": st, "tokens_per_step": B * S,
           "gpu_peak_mib": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None,
           "final_loss": loss.item(), "attention": attn, "torch": torch.__version__}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
