#!/usr/bin/env python3
"""GPU kit check 5: merged vs adapted logits, mose against PEFT, on one device.

    peft_check.py --base DIR --peft DIR --merged DIR --mose-adapter F --mose-merged F --text T --device cuda|cpu

F are `mose model-info --logits-out` files (input_ids, logits) computed on the
device: base + PEFT adapter, and the merged export. This script computes, in
float32 on the same device, PEFT's logits (transformers + PeftModel) and the
merged dir's logits through transformers, and prints one JSON line of max |Δ|.
"""
import argparse
import json

import torch
from peft import PeftModel
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    for a in ("--base", "--peft", "--merged", "--mose-adapter", "--mose-merged", "--text", "--device"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(1)
    ids = Tokenizer.from_file(f"{args.base}/tokenizer.json").encode(args.text).ids
    x = torch.tensor([ids], device=dev)
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(args.base, torch_dtype=torch.float32, attn_implementation="eager").to(dev)
        peft = PeftModel.from_pretrained(base, args.peft).to(dev).eval()
        ref = peft(x).logits[0].float().cpu()
        with peft.disable_adapter():
            plain = peft(x).logits[0].float().cpu()
        merged = AutoModelForCausalLM.from_pretrained(args.merged, torch_dtype=torch.float32, attn_implementation="eager").to(dev)
        hf_merged = merged.eval()(x).logits[0].float().cpu()
    a, m = load_file(args.mose_adapter), load_file(args.mose_merged)
    la, lm = a["logits"][0].float(), m["logits"][0].float()
    out = {
        "tokens": len(ids),
        "ids_match": a["input_ids"][0].tolist() == ids and m["input_ids"][0].tolist() == ids,
        "adapter_effect": (ref - plain).abs().max().item(),
        "mose_merged_vs_mose_adapter": (lm - la).abs().max().item(),
        "mose_adapter_vs_peft": (la - ref).abs().max().item(),
        "hf_merged_vs_peft": (hf_merged - ref).abs().max().item(),
        "torch": torch.__version__,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
