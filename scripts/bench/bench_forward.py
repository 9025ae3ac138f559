#!/usr/bin/env python3
"""transformers' side of the forward benchmark (see scripts/bench/bench_forward.sh).

Times a no-grad float32 CPU forward of LlamaForCausalLM (logits at every
position) on the same (2,256) batch the Go benchmark uses, and prints ns/op.
"""
import argparse
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", help="transformers attention implementation (sdpa or eager)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32, attn_implementation=args.attn)
    model.eval()
    B, T = 2, 256
    V = model.config.vocab_size
    ids = torch.tensor([(i * 7919 + 13) % V for i in range(B * T)]).view(B, T)
    with torch.no_grad():
        model(ids)  # warm-up
        start = time.perf_counter()
        for _ in range(args.iters):
            model(ids, use_cache=False)
        elapsed = time.perf_counter() - start
    ns = elapsed / args.iters * 1e9
    print(f"transformers {args.attn}: {ns:.0f} ns/op  {B * T * args.iters / elapsed:.1f} tokens/s")


if __name__ == "__main__":
    main()
