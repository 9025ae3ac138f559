"""Feature inputs: the projectors, placeholder ids, token modalities and the prompt.

A prompt for mose_hf is token ids in which each feature token of modality input i is the
placeholder id `vocab + i` (vocab: the model's embedding rows), one id per feature token,
as mose lays out feature slots. The placeholder ids give each token its modality (the
input's: visual or audio); other ids are text, and positions whose attention_mask is 0
are padding.
"""
from __future__ import annotations

import glob
import os

import torch
import torch.nn.functional as F
from safetensors import safe_open

from .config import MODALITY_IDS, ExportError, Input

MERGED_PROJECTORS = "mose_projectors.safetensors"


class Projector:
    """One input's projector: linear (W, b) or mlp2 (Linear, exact GELU, Linear)."""

    def __init__(self, inp: Input, tensors: dict, dtype: torch.dtype, device):
        p = f"projectors.{inp.name}."
        names = ["weight", "bias"] if inp.projector == "linear" else ["0.weight", "0.bias", "2.weight", "2.bias"]
        missing = [p + n for n in names if p + n not in tensors]
        if missing:
            raise ExportError(f"projector of input {inp.name!r}: missing tensor(s) {missing}")
        self.names = [p + n for n in names]
        for n in self.names:
            if not torch.isfinite(tensors[n]).all():
                raise ExportError(f"{n} holds NaN or Inf values")
        self.t = [tensors[n].to(device=device, dtype=dtype) for n in self.names]
        self.name = inp.name
        if self.t[0].shape[1] != inp.feature_dim:
            raise ExportError(f"{p}{names[0]}: shape {tuple(self.t[0].shape)}, input {inp.name!r} has feature_dim {inp.feature_dim}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,N,F) -> (B,N,D) in the projector's dtype."""
        x = x.to(self.t[0].dtype)
        y = F.linear(x, self.t[0], self.t[1])
        if len(self.t) == 4:
            y = F.linear(F.gelu(y), self.t[2], self.t[3])
        return y


def model_dir_projectors(model_dir: str) -> dict:
    """The projectors.* tensors of a mose model dir (init-model, attach or merged layout)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "*.safetensors"))):
        with safe_open(path, "pt") as f:
            for k in f.keys():
                if k.startswith("projectors."):
                    if k in out:
                        raise ExportError(f"{model_dir}: {k} is in two files")
                    out[k] = f.get_tensor(k)
    if not out:
        raise ExportError(f"{model_dir}: no projectors.* tensors in its safetensors files (is it a mose model dir?)")
    return out


def token_modality(ids: torch.Tensor, vocab: int, inputs: list, attention_mask) -> torch.Tensor:
    """ids: (B,T) int64 (placeholders vocab+i), attention_mask: (B,T) or None -> (B,T) int64 modality ids."""
    mod = torch.full_like(ids, MODALITY_IDS["text"])
    for i, inp in enumerate(inputs):
        mod = mod.masked_fill(ids == vocab + i, MODALITY_IDS[inp.modality])
    bad = ids >= vocab + len(inputs)
    if bool(bad.any()):
        raise ValueError(f"input id {int(ids[bad][0])} is neither a token (< {vocab}) nor a placeholder "
                         f"({vocab}..{vocab + len(inputs) - 1} for {[i.name for i in inputs]})")
    if attention_mask is not None:
        mod = mod.masked_fill(attention_mask == 0, MODALITY_IDS["pad"])
    return mod


def encode_prompt(tokenizer, spec: dict, subtitle: str, vocab: int) -> list:
    """The prompt ids mose's encoder builds for a sample (without truncation): the template
    of the model's "mose" section with {labels} filled in, split at the placeholders, each
    text part encoded alone without special tokens, each input's feature slots as its
    placeholder id."""
    names = [i["name"] for i in spec["inputs"]]
    text = spec["prompt"]["template"].replace("{labels}", ", ".join(spec["labels"]))
    hits = []
    for inp in spec["inputs"]:
        if inp["placeholder"] not in [h[1] for h in hits]:
            hits.append((text.index(inp["placeholder"]), inp["placeholder"]))
    hits.sort()
    ids, at = [], 0

    def encode(s):
        if not s:
            return []
        enc = tokenizer.encode(s, add_special_tokens=False)
        return list(enc.ids if hasattr(enc, "ids") else enc)

    for pos, ph in hits:
        ids += encode(text[at:pos].replace("{subtitle}", subtitle, 1))
        for inp in spec["inputs"]:
            if inp["placeholder"] == ph:
                ids += [vocab + names.index(inp["name"])] * int(inp.get("tokens", 1))
        at = pos + len(ph)
    return ids + encode(text[at:].replace("{subtitle}", subtitle, 1))
