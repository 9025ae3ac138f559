#!/usr/bin/env python3
"""The PyTorch reference of scripts/bench/bench_quant.sh: a LoRA training step on a frozen
base stored as mose stores it with model.quantize.

    bench_quant_ref.py --model DIR --quantize none|nf4|int8 --dtype float32|bfloat16 \
        --targets q_proj,v_proj --batch B --seq S --steps N [--threads T] [--device cpu|cuda] [--checkpointing]

Loads the mose model dir with transformers (frozen weights in --dtype, SDPA attention),
stores every decoder linear (q,k,v,o,gate,up,down) as:
  none  the weight in --dtype;
  nf4   torchao 0.18's NF4Tensor (`to_nf4`), whose F.linear is torchao's LinearNF4
        (dequantize in the forward, again in the backward, input gradient only);
  int8  torchao 0.18's Int8Tensor.from_hp(w, PerRow()), dequantized by `dequantize()`
        inside an autograd function built the same way as LinearNF4 (the weight is kept
        quantized for the backward, input gradient only);
attaches PEFT LoRA (r=8, alpha=16, dropout 0.05), and runs N AdamW steps on random token
batches with the loss on the last 2 positions, clipping at 1.0. Prints one JSON line:
step time (mean after the first 20 %), tokens/s, peak RSS (MiB), CUDA peak (MiB).
"""
import argparse
import json
import resource

import os
import sys

import torch
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu-kit"))
from peft_step import lora, timed_steps  # noqa: E402  (the GPU kit's LoRA step, shared)

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Int8Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, q):
        ctx.q = q
        return torch.nn.functional.linear(x, q.dequantize().to(x.dtype))

    @staticmethod
    def backward(ctx, g):
        return g @ ctx.q.dequantize().to(g.dtype), None


class FrozenInt8(torch.nn.Linear):
    """An nn.Linear (so that PEFT wraps it) whose weight is an Int8Tensor."""

    def forward(self, x):
        y = Int8Linear.apply(x, self.weight)
        return y if self.bias is None else y + self.bias


def quantize(model, kind):
    if kind == "none":
        return
    from torchao.quantization.quantize_.workflows.nf4.nf4_tensor import to_nf4

    for name, mod in list(model.named_modules()):
        if not (isinstance(mod, torch.nn.Linear) and ".layers." in name and name.split(".")[-1] in LINEARS):
            continue
        if kind == "nf4":
            mod.weight = torch.nn.Parameter(to_nf4(mod.weight.data), requires_grad=False)
        else:
            from torchao.quantization.granularity import PerRow
            from torchao.quantization.quantize_.workflows.int8.int8_tensor import Int8Tensor

            mod.weight = torch.nn.Parameter(Int8Tensor.from_hp(mod.weight.data, granularity=PerRow()), requires_grad=False)
            mod.__class__ = FrozenInt8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--quantize", choices=("none", "nf4", "int8"), required=True)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--checkpointing", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(1)
    dev = torch.device(a.device)
    if dev.type == "cpu":
        torch.set_num_threads(a.threads)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype), attn_implementation="sdpa").to(dev)
    quantize(model, a.quantize)
    if a.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model, params, opt = lora(model, a.targets)
    st, loss = timed_steps(model, params, opt, model.config.vocab_size, a.batch, a.seq, a.steps, dev)
    print(json.dumps({"quantize": a.quantize, "dtype": a.dtype, "step_time_s": st, "tokens_per_s": a.batch * a.seq / st,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "gpu_peak_mib": torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None,
                      "final_loss": loss.item(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
