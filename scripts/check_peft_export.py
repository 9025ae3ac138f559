#!/usr/bin/env python3
"""Check a `mose export --format peft` adapter against PEFT itself.

    "$(scripts/pyenv.sh)" scripts/check_peft_export.py EXPORT_DIR [--model BASE_DIR]
        [--text TEXT] [--mose bin/mose]

Loads the base model with transformers, applies the exported adapter with
PEFT's own PeftModel.from_pretrained, and compares PEFT's float32 CPU logits on
TEXT with the logits mose computes for the same ids (`mose model-info --adapter`).
For a MoSE export, PEFT sees the omni expert (adapter_model.safetensors); the
routed experts live in the sidecar. Exits 1 if the ids differ or the logits
differ by more than 1e-4.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from peft import PeftModel
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("--model", help="base model dir (default: the adapter's base_model_name_or_path)")
    ap.add_argument("--text", default="[INST] The person in video says: I walked home and then smiled. [/INST]")
    ap.add_argument("--mose", default="bin/mose")
    args = ap.parse_args()

    cfg = json.load(open(os.path.join(args.export, "adapter_config.json")))
    base = args.model or cfg["base_model_name_or_path"]
    print(f"adapter {args.export}: r={cfg['r']} lora_alpha={cfg['lora_alpha']} use_rslora={cfg.get('use_rslora')} "
          f"targets={cfg['target_modules']} base={base}")
    tok = Tokenizer.from_file(os.path.join(base, "tokenizer.json"))
    ids = tok.encode(args.text).ids  # with the post-processor's <s>, as mose model-info
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32, attn_implementation="eager")
    peft_model = PeftModel.from_pretrained(model, args.export)
    peft_model.eval()
    with torch.no_grad():
        ref = peft_model(torch.tensor([ids])).logits[0]
        with peft_model.disable_adapter():
            plain = peft_model(torch.tensor([ids])).logits[0]
    print(f"PEFT loaded it: {type(peft_model).__name__}, the adapter moves logits by up to {(ref - plain).abs().max().item():.4g}")

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.safetensors")
        subprocess.run([args.mose, "model-info", "--model", base, "--adapter", args.export, "--text", args.text,
                        "--logits-out", out, "--log-level", "error"], check=True, stdout=subprocess.DEVNULL)
        got = load_file(out)
    go_ids = got["input_ids"][0].tolist()
    if go_ids != ids:
        print(f"FAIL: token ids differ\n  HF:   {ids}\n  mose: {go_ids}")
        return 1
    diff = (got["logits"][0] - ref).abs().max().item()
    print(f"{len(ids)} tokens; max |logit(mose) - logit(PEFT)| = {diff:.3g}")
    if diff > 1e-4:
        print("FAIL: more than 1e-4")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
