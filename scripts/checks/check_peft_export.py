#!/usr/bin/env python3
"""Check a `mose export --format peft` adapter against PEFT, from the training checkpoint.

    "$(scripts/setup/pyenv.sh)" scripts/checks/check_peft_export.py EXPORT_DIR --checkpoint STEP_DIR
        [--model BASE_DIR] [--manifest M] [--index N] [--mose bin/mose] [--tol 1e-4]

The reference is the training checkpoint itself, not the export: `mose dump-logits`
computes the checkpoint's logits (its recipe, model and adapter.safetensors) on one sample
of a manifest, a prompt with feature tokens and its answer, and writes the inputs with them
(input_ids, the features of each modality input and the positions they fill). This script
then loads the base model with transformers, applies the export with PEFT's own
PeftModel.from_pretrained (a warning about the adapter while loading fails the check), builds the
same input embeddings (token embeddings, with the projected features spliced in: the
export's trained projectors from mose_adapter.safetensors when the run trained them, else
the model dir's) and compares PEFT's float32 logits with the checkpoint's.

It fails (exit 1) when
  - PEFT or transformers warns, while the export loads, about the adapter: its keys
    (missing, unexpected), its config (unknown or deprecated LoraConfig fields, field
    values), its target modules; or any other warning that is not a deprecation notice
    (deprecation notices that name nothing of the adapter, such as transformers'
    `is_gradient_checkpointing is deprecated`, are printed and ignored);
  - a tensor of adapter_model.safetensors fits no module PEFT made (PEFT ignores it
    silently), or a module lacks its tensor;
  - PEFT's logits differ from the checkpoint's by more than --tol (a flipped use_rslora,
    a wrong lora_alpha, zeroed or swapped weights, wrong projectors all land here);
  - the adapter does not move PEFT's logits (disable_adapter gives the same), or the
    sample has no feature tokens, or trained projectors do not change the logits.
Only plain-LoRA exports (`adapters.method: lora`) are comparable: PEFT cannot run MoSE's
routed experts, so a MoSE export exits 2 with a message. Exit 2 also for bad arguments.
"""
import argparse
import glob
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import warnings

import torch
from safetensors import safe_open
from safetensors.torch import load_file


def fail(msg: str) -> int:
    print(f"FAIL: {msg}")
    return 1


DEPRECATION = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def about_adapter(msg: str, cfg: dict, export: str) -> bool:
    """Whether a warning's text concerns the adapter: its keys, files, config or targets."""
    low = msg.lower()
    if any(w in low for w in ("key", "adapter", "loraconfig", "lora config", "peft config", "peft_config",
                              "target module", "lora_", "safetensors", os.path.basename(os.path.normpath(export)).lower())):
        return True
    names = [k for k in cfg if len(k) > 2]
    targets = cfg.get("target_modules") or []
    names += [t for t in (targets if isinstance(targets, list) else [targets]) if isinstance(t, str)]
    return any(re.search(r"(?<![A-Za-z0-9_])" + re.escape(n.lower()) + r"(?![A-Za-z0-9_])", low) for n in names)


class Collect(logging.Handler):
    """Keeps the WARNING-or-worse records of the loggers it is attached to."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def load_warnings(load, cfg: dict, export: str):
    """Runs load() and sorts what it warned (warnings module and the peft / transformers
    loggers) into (failing, ignored) messages; returns (load's result, failing, ignored)."""
    handler = Collect()
    loggers = [logging.getLogger(n) for n in ("peft", "transformers")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = load()
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    failing, ignored = [], []
    for msg, deprecation in [(str(w.message), issubclass(w.category, DEPRECATION)) for w in caught] + \
            [(m, False) for m in handler.records]:
        deprecation = deprecation or "deprecat" in msg.lower()
        if about_adapter(msg, cfg, export) or not deprecation:
            failing.append(msg)
        else:
            ignored.append(msg)
    return result, failing, ignored


def projector_tensors(export: str, model_dir: str, trained: bool) -> dict:
    """projectors.* tensors: the export's sidecar when trained, else the model dir's files."""
    files = [os.path.join(export, "mose_adapter.safetensors")] if trained else \
        sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    out = {}
    for path in files:
        with safe_open(path, "pt") as f:
            for k in f.keys():
                if k.startswith("projectors."):
                    out[k] = f.get_tensor(k).float()
    return out


def project(proj: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    """A mose projector: linear (weight, bias) or mlp2 (Linear, exact GELU, Linear)."""
    p = f"projectors.{name}."
    if p + "weight" in proj:
        return torch.nn.functional.linear(x, proj[p + "weight"], proj[p + "bias"])
    if p + "0.weight" in proj:
        h = torch.nn.functional.gelu(torch.nn.functional.linear(x, proj[p + "0.weight"], proj[p + "0.bias"]))
        return torch.nn.functional.linear(h, proj[p + "2.weight"], proj[p + "2.bias"])
    raise SystemExit(f"check_peft_export: no projector tensors for input {name!r} (have {sorted(proj)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export")
    ap.add_argument("--checkpoint", required=True, help="the training checkpoint the export was made from")
    ap.add_argument("--model", help="base model dir PEFT loads (default: the adapter's base_model_name_or_path)")
    ap.add_argument("--manifest", help="manifest of the sample (default: the recipe's data.eval, else data.train)")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--mose", default="bin/mose")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = json.load(open(os.path.join(args.export, "adapter_config.json")))
    side_path = os.path.join(args.export, "mose_config.json")
    side = json.load(open(side_path)) if os.path.exists(side_path) else {}
    if side.get("method", "lora") != "lora":
        print(f"check_peft_export: {args.export} is a {side['method']} export; PEFT holds only its omni expert and "
              "cannot run the routed experts, so it is not comparable with the checkpoint (use a method: lora run)")
        return 2
    base = args.model or cfg["base_model_name_or_path"]
    print(f"adapter {args.export}: r={cfg['r']} lora_alpha={cfg['lora_alpha']} use_rslora={cfg.get('use_rslora')} "
          f"targets={cfg['target_modules']} base={base} projectors_trained={side.get('projectors_trained', False)}")

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "logits.safetensors")
        cmd = [args.mose, "dump-logits", "--checkpoint", args.checkpoint, "--out", out, "--index", str(args.index),
               "--log-level", "error"]
        if args.manifest:
            cmd += ["--manifest", args.manifest]
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            print(f"check_peft_export: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
            return 2
        got = load_file(out)
    ids = got["input_ids"]
    inputs = [k[len("features."):] for k in got if k.startswith("features.")]
    n_feat = sum(got["positions." + n].numel() for n in inputs)
    if n_feat == 0:
        return fail("the sample has no feature tokens: the projectors would not be checked")

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="eager")
    peft_model, failing, ignored = load_warnings(lambda: PeftModel.from_pretrained(model, args.export), cfg, args.export)
    for msg in ignored:
        print(f"ignored (a deprecation notice that names nothing of the adapter): {msg}")
    if failing:
        return fail("PEFT warned while loading the export: " + "; ".join(failing))
    # PEFT's from_pretrained warns about missing adapter keys but drops unexpected ones
    # silently: load the file's tensors again (the same values) and look at both.
    from peft.utils import load_peft_weights, set_peft_model_state_dict
    res = set_peft_model_state_dict(peft_model, load_peft_weights(args.export), adapter_name="default")
    missing = [k for k in res.missing_keys if "lora_" in k and ".default" in k]
    if res.unexpected_keys or missing:
        return fail(f"the adapter's tensors do not match its modules: unexpected {sorted(res.unexpected_keys)[:5]} "
                    f"({len(res.unexpected_keys)}), missing {sorted(missing)[:5]} ({len(missing)})")
    peft_model.eval()
    embed = peft_model.get_input_embeddings()

    def logits(proj: dict, adapter: bool) -> torch.Tensor:
        with torch.no_grad():
            x = embed(ids).clone()  # (1,T,D)
            for n in inputs:
                pos = got["positions." + n]
                x[0, pos] = project(proj, n, got["features." + n][0]).to(x.dtype)
            if adapter:
                return peft_model(inputs_embeds=x).logits[0]
            with peft_model.disable_adapter():
                return peft_model(inputs_embeds=x).logits[0]

    trained = bool(side.get("projectors_trained", False))
    proj = projector_tensors(args.export, base, trained)
    ref = logits(proj, True)
    mine = got["logits"][0]
    diff = (mine - ref).abs().max().item()
    moved = (ref - logits(proj, False)).abs().max().item()
    print(f"{ids.shape[1]} tokens ({n_feat} feature tokens from {', '.join(inputs)}); "
          f"max |logit(checkpoint, mose) - logit(export, PEFT)| = {diff:.3g}; the adapter moves PEFT's logits by {moved:.3g}")
    if diff > args.tol:
        return fail(f"PEFT on the export differs from the checkpoint by {diff:.3g} (> {args.tol:g})")
    if moved < 1e-3:
        return fail(f"the adapter moves the logits by {moved:.3g} only: nothing was checked")
    if trained:
        untrained = projector_tensors(args.export, base, False)
        if untrained:
            pmoved = (ref - logits(untrained, True)).abs().max().item()
            print(f"the trained projectors move the logits by {pmoved:.3g} (vs the model dir's)")
            if pmoved < 1e-4:
                return fail("the trained projectors do not change the logits: nothing was checked")
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
