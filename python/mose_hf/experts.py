"""The MoSE delta of one target linear, computed as mose's experts.Mixture.Delta does.

Every group's A is stacked (one matmul), the per-token coefficient of every expert slot
c_e = s * w_m(t) * mask_g(e)(t) * gate_e(t) is elementwise, and every expert's B is
stacked (one matmul). Plain LoRA is one omni group with one expert: s * B(A x) on every
non-pad token. Adapters run in float32 whatever the model's dtype, without dropout and
without gate noise (inference).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import MODALITY_IDS, ROUTES, ExportConfig

N_MODALITIES = len(MODALITY_IDS)


class Gate:
    """The router of one target's gated groups (K > 1): one softmax gate per group, top-k
    (coefficient 1 for the chosen experts) or dense (the probabilities)."""

    def __init__(self, weight: torch.Tensor, K: list, top_k: int, temperature: float):
        self.w = weight  # (sum K, in) float32
        self.top_k, self.temperature = top_k, temperature
        self.kmax = max(K)
        pad, back, off, total = [], [], 0, sum(K)
        for k in K:
            for j in range(self.kmax):
                if j < k:
                    back.append(len(pad))
                    pad.append(off + j)
                else:
                    pad.append(total)  # the -inf column
            off += k
        dev = weight.device
        self.pad = torch.tensor(pad, dtype=torch.long, device=dev)
        self.back = torch.tensor(back, dtype=torch.long, device=dev)
        self.groups = len(K)

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,T,in) float32 -> (B,T,sum K) expert coefficients."""
        B, T, _ = x.shape
        z = F.linear(x, self.w)  # (B,T,sum K)
        if self.temperature != 1:
            z = z / self.temperature
        ninf = torch.full((B, T, 1), -math.inf, dtype=torch.float32, device=x.device)
        logits = torch.cat([z, ninf], -1).index_select(-1, self.pad).view(B, T, self.groups, self.kmax)
        p = logits.softmax(-1)  # (B,T,G,Kmax)
        coef = p
        if self.top_k > 0:
            idx = p.topk(self.top_k, -1).indices
            hard = torch.zeros_like(p).scatter_add(-1, idx, torch.ones(idx.shape, dtype=torch.float32, device=x.device))
            coef = (hard - p) + p  # mose's straight-through form, same rounding
        return coef.reshape(B, T, self.groups * self.kmax).index_select(-1, self.back)


class Mixture:
    """The expert groups of one target linear (module name `name`, in -> out)."""

    def __init__(self, name: str, cfg: ExportConfig, A: list, Bs: list, gate_w: list):
        # A: per group (r,in); Bs: per group a list of (out,r); gate_w: per group (K,in) or None.
        self.name = name
        dev = A[0].device
        K = [len(b) for b in Bs]
        self.G, self.r, self.E = len(A), A[0].shape[0], sum(K)
        self.A = torch.cat(A, 0).float().contiguous()  # (G*r, in)
        self.B = torch.cat([b for bs in Bs for b in bs], 1).float().contiguous()  # (out, E*r)
        slot_group = [gi for gi, k in enumerate(K) for _ in range(k)]
        self.slot_group = None if self.E == self.G else torch.tensor(slot_group, dtype=torch.long, device=dev)
        # mix[m, e] = float32(s * w_m) for the modalities group(e) routes, else 0.
        weight = {"visual": cfg.w_visual, "nonvisual": cfg.w_nonvisual, "omni": 1.0}
        mix = torch.zeros(N_MODALITIES, self.E, dtype=torch.float32)
        for e, gi in enumerate(slot_group):
            g = cfg.groups[gi].name
            for m in ROUTES[g]:
                mix[MODALITY_IDS[m], e] = cfg.scaling * weight[g]
        self.mix = mix.to(dev)
        self.gate = None
        gated = [gi for gi, k in enumerate(K) if k > 1]
        if gated:
            self.gate = Gate(torch.cat([gate_w[gi] for gi in gated], 0).float().contiguous(), [K[gi] for gi in gated],
                             cfg.top_k, cfg.temperature)
            ones, col, gmap = sum(K[gi] for gi in gated), 0, []
            for k in K:
                gmap += [col + j for j in range(k)] if k > 1 else [ones] * k
                col += k if k > 1 else 0
            self.gate_map = torch.tensor(gmap, dtype=torch.long, device=dev)

    def delta(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """x: (B,T,in), onehot: (B,T,4) float32 token modalities -> (B,T,out) float32."""
        B, T, _ = x.shape
        if x.dtype != torch.float32:
            x = x.float()
        h = F.linear(x, self.A)  # (B,T,G*r)
        coef = onehot @ self.mix  # (B,T,E)
        if self.gate is not None:
            gc = self.gate.route(x)  # (B,T,sum K of gated groups)
            ones = torch.ones(B, T, 1, dtype=torch.float32, device=x.device)
            coef = coef * torch.cat([gc, ones], -1).index_select(-1, self.gate_map)
        hs = h.view(B, T, self.G, self.r)
        if self.slot_group is not None:
            hs = hs.index_select(2, self.slot_group)  # (B,T,E,r)
        u = (hs * coef.unsqueeze(-1)).reshape(B, T, self.E * self.r)
        return F.linear(u, self.B)  # (B,T,out)
