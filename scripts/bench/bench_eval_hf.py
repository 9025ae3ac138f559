#!/usr/bin/env python3
"""transformers' generate(use_cache=True) on the prompts BenchmarkGenerate wrote (eager attention:
transformers 4.46 refuses SDPA on torch 2.1.0).

Reads DIR/generate.safetensors (the prompts' input embeddings with the
projected features spliced in, their lengths, and the tokens mose generated
greedily with its KV cache, and mose's time), runs LlamaForCausalLM.generate
on the same model dir with the same embeddings (left-padded, with an
attention mask), greedy, no EOS stop, use_cache=True, and prints tokens/s of
both and whether the tokens are the same. Called by scripts/bench/bench_eval.sh.
"""
import sys
import time

import torch
import transformers
from safetensors import safe_open


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        emb, lens, want = f.get_tensor("embeds"), f.get_tensor("lengths"), f.get_tensor("tokens")
    B, T, D = emb.shape
    n = want.shape[1]
    model = transformers.LlamaForCausalLM.from_pretrained(meta["model"], dtype=torch.float32, attn_implementation="eager").eval()
    left = torch.zeros(B, T, D)
    mask = torch.zeros(B, T, dtype=torch.long)
    for r in range(B):
        L = int(lens[r])
        left[r, T - L:] = emb[r, :L]
        mask[r, T - L:] = 1
    kw = dict(inputs_embeds=left, attention_mask=mask, do_sample=False, use_cache=True, eos_token_id=None,
              pad_token_id=model.config.pad_token_id, temperature=None, top_p=None)
    with torch.no_grad():
        model.generate(max_new_tokens=2, min_new_tokens=2, **kw)  # warm-up, as mose's
        t0 = time.perf_counter()
        out = model.generate(max_new_tokens=n, min_new_tokens=n, **kw)
        took = time.perf_counter() - t0
    got = out[:, -n:]
    same = bool(torch.equal(got, want))
    first = -1
    if not same:
        first = int((got != want).any(0).nonzero()[0])
    mose_s = float(meta["mose_seconds"])
    print(f"BENCH generate-vs-transformers batch={B} new_tokens={n} threads={threads} "
          f"mose_cached_base_model_tok_s={B * n / mose_s:.1f} transformers_tok_s={B * n / took:.1f} "
          f"ratio={took / mose_s:.2f} same_tokens={same}" + ("" if same else f" first_difference_at={first}"))


if __name__ == "__main__":
    main()
