"""Attention Reallocation (mose's model/ar.go), as a transformers attention function.

In the layers [first, last], per head and query, with alpha the post-softmax attention:
M_A = sum over audio keys, M_V = sum over visual keys, rho = M_A / (M_A + M_V + eps);
heads with rho > tau (fixed, or adaptive: mean + kappa*std over the layer's heads) that
also attend to a visual key move a share beta of their audio mass to the visual keys, in
proportion to the attention those already get. Other layers run transformers' SDPA.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import MODALITY_IDS

NAME = "mose_ar"


@dataclass
class AR:
    """AR settings (the recipe's eval.ar): layers [first, last] (None: mose's default, from
    layer 2 to the last), beta, tau "adaptive" (mean + kappa*std) or "fixed" (tau_value)."""

    first: int | None = None
    last: int | None = None
    beta: float = 0.5
    tau: str = "adaptive"
    tau_value: float = 0.5
    kappa: float = 1.0

    def resolve(self, n_layers: int) -> "AR":
        first = min(2, n_layers - 1) if self.first is None else self.first
        last = n_layers - 1 if self.last is None else self.last
        if not (0 <= first <= last < n_layers):
            raise ValueError(f"AR layers [{first}, {last}] outside the model's {n_layers} layers")
        if not 0 <= self.beta <= 1:
            raise ValueError(f"AR beta {self.beta} outside [0, 1]")
        if self.tau not in ("adaptive", "fixed"):
            raise ValueError(f"AR tau {self.tau!r}, want adaptive or fixed")
        return AR(first, last, self.beta, self.tau, self.tau_value, self.kappa)


def repeat_kv(x: torch.Tensor, rep: int) -> torch.Tensor:
    """x: (B,KV,L,hd) -> (B,KV*rep,L,hd)"""
    if rep == 1:
        return x
    B, KV, L, hd = x.shape
    return x[:, :, None].expand(B, KV, rep, L, hd).reshape(B, KV * rep, L, hd)


def reallocate(ar: AR, q, k, v, key_hot, mask):
    """q: (B,H,T,hd), k, v: (B,H,Lk,hd), key_hot: (B,Lk,4) float32, mask: (B|1,1,T,Lk) bool or None
    (causal) -> (B,H,T,hd)."""
    T, hd, Lk = q.shape[2], q.shape[3], k.shape[2]
    eps = 1e-6
    scores = (q @ k.transpose(2, 3)) * (1 / math.sqrt(hd))  # (B,H,T,Lk)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise ValueError("mose_ar: expected a boolean attention mask")
        scores = scores.masked_fill(~mask, -math.inf)
    elif T > 1:
        scores = scores.masked_fill(torch.ones(T, Lk, dtype=torch.bool, device=q.device).triu(Lk - T + 1), -math.inf)
    alpha = scores.float().softmax(-1)  # (B,H,T,Lk)
    if mask is not None:  # a padded query attends to nothing: 0, not NaN (never read, but 0·NaN would spread)
        alpha = alpha.masked_fill(~mask.any(-1, keepdim=True), 0.0)

    def key(m):  # (B,Lk,4) -> (B,1,1,Lk)
        return key_hot[..., m:m + 1].transpose(1, 2).unsqueeze(1)

    audio, visual = key(MODALITY_IDS["audio"]), key(MODALITY_IDS["visual"])
    mA = (alpha * audio).sum(-1, keepdim=True)  # (B,H,T,1)
    mV = (alpha * visual).sum(-1, keepdim=True)
    rho = mA / ((mA + mV) + eps)
    if ar.tau == "adaptive":
        mean = rho.mean(1, keepdim=True)  # (B,1,T,1)
        std = (rho - mean).square().mean(1, keepdim=True).sqrt()
        tau = mean + std * ar.kappa
    else:
        tau = torch.full((1,), ar.tau_value, dtype=torch.float32, device=q.device)
    flag = ((rho > tau) & (mV > eps)).float()
    move = flag * ar.beta
    keep = torch.ones(1, dtype=torch.float32, device=q.device) - move * audio
    gain = (move * mA) / (mV + eps)
    alpha = alpha * keep + (alpha * visual) * gain
    return alpha.to(v.dtype) @ v


def make_attention(state):
    """The attention function registered as NAME: AR in its layers, transformers' SDPA elsewhere."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    def attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
        # query: (B,H,T,hd), key, value: (B,KV,Lk,hd) -> (B,T,H,hd), no weights
        ar, layer = state.ar, getattr(module, "layer_idx", None)
        if ar is None or layer is None or not ar.first <= layer <= ar.last:
            return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
        if state.key_hot is None or state.key_hot.shape[1] != key.shape[2]:
            raise RuntimeError("mose_hf AR needs the modality of every key: run the whole sequence (and any cached "
                               "prefix) through the model with mose_hf attached, from input_ids")
        rep = query.shape[1] // key.shape[1]
        out = reallocate(ar, query, repeat_kv(key, rep), repeat_kv(value, rep), state.key_hot, attention_mask)
        return out.transpose(1, 2).contiguous(), None

    return attention
