#!/usr/bin/env python3
"""GPU kit check 8, the reference side: mose's --dump-quantized parts of one weight against
torchao's `to_nf4` of the same weight on the same device.

    nf4_check.py --model DIR --tensor NAME --dump FILE --dtype bfloat16|float32 --device cuda|cpu

Prints one JSON line: torchao's version (or null when torchao is absent: nothing is
compared) and, per part, "equal" or the number of differing elements.
"""
import argparse
import glob
import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tensor", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    try:
        import torchao
        from torchao.quantization.quantize_.workflows.nf4.nf4_tensor import to_nf4
    except ImportError:
        print(json.dumps({"torchao": None}))
        return
    w = None
    for f in sorted(glob.glob(os.path.join(a.model, "*.safetensors"))):
        with safe_open(f, "pt") as s:
            if a.tensor in s.keys():
                w = s.get_tensor(a.tensor)
    if w is None:
        raise SystemExit(f"{a.tensor} not in {a.model}")
    n = to_nf4(w.to(getattr(torch, a.dtype)).to(a.device))
    ref = {"quantized_data": n.quantized_data, "quantized_scalers": n.quantized_scalers,
           "quantization_factor": n.quantization_factor, "scaler_mean": n.scaler_mean, "dequantized": n.get_original_weight()}
    got = load_file(a.dump)
    parts = {}
    for k, v in ref.items():
        g = got.get(k)
        v = v.cpu()
        if g is None or g.shape != v.shape or g.dtype != v.dtype:
            parts[k] = "missing or of another shape/dtype"
        else:
            d = int((g.view(torch.uint8) != v.view(torch.uint8)).sum()) if g.dim() else int(not torch.equal(g, v))
            parts[k] = "equal" if d == 0 else d
    print(json.dumps({"torchao": torchao.__version__, "parts": parts}))


if __name__ == "__main__":
    main()
