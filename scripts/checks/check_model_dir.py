#!/usr/bin/env python3
"""Check a mose model dir against transformers and tokenizers.

    "$(scripts/setup/pyenv.sh)" scripts/checks/check_model_dir.py DIR [--text TEXT] [--mose bin/mose]

Loads DIR with transformers' LlamaForCausalLM and its tokenizer.json with HF
tokenizers, encodes TEXT with both HF and `mose model-info` (which must give the
same ids), runs both forwards in float32 on the CPU and prints the max absolute
logit difference. Exits 1 if the ids differ or the logits differ by more than 1e-4.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--text", default="The person in video says: I walked home and then smiled.")
    ap.add_argument("--mose", default="bin/mose")
    args = ap.parse_args()

    tok = Tokenizer.from_file(os.path.join(args.dir, "tokenizer.json"))
    ids = tok.encode(args.text).ids
    model = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0]

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.safetensors")
        subprocess.run([args.mose, "model-info", "--model", args.dir, "--text", args.text, "--logits-out", out],
                       check=True, stdout=subprocess.DEVNULL)
        got = load_file(out)
    go_ids = got["input_ids"][0].tolist()
    print(f"transformers {model.config.model_type} from {args.dir}: {sum(p.numel() for p in model.parameters())} parameters")
    print(f"HF tokenizers ids: {ids}")
    print(f"mose ids:          {go_ids}")
    if go_ids != ids:
        print("FAIL: token ids differ")
        return 1
    diff = (got["logits"][0] - ref).abs().max().item()
    print(f"max |logit(mose) - logit(transformers)| = {diff:.3g}")
    if diff > 1e-4:
        print("FAIL: logits differ by more than 1e-4")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
