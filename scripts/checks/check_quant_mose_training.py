#!/usr/bin/env python3
"""The PyTorch reference of a MoSE run on an NF4 base: every loss mose logged, step by step.

    python check_quant_mose_training.py --model BASE_DIR --export STEP1_PEFT_EXPORT --init INIT.safetensors \
        --recipe STEP1/recipe.yaml --metrics RUN/metrics.jsonl --dump SAMPLE0.safetensors ... [--tol 1e-4] [--steps N]

The run must be MoSE (`adapters.method: mose`) with dropout 0, gate noise 0, weight decay
0, frozen projectors, one micro-batch per step holding the whole training set (batch_size
= the number of --dump samples) and log_every 1, so every step sees the same samples and
logs its own losses. The step-1 export (`mose export --format peft`, with its sidecar)
gives the structure: groups, experts, scaling, the targets; the gates' top-k and
temperature, λ_lb, λ_z, the modality-weight mode and the optimizer come from --recipe (a
test edits a copy of it to show the comparison fails on a wrong setting); --init
holds the run's initial adapters as mose builds them (`<target>.A` (G·r,in), `.B`
(out,E·r), `.gate` (ΣK,in), fused as experts.Mixture stores them): with B zero, A gets a
zero gradient at step 0, so the export's A must equal the initial A (checked), but the
gates move at step 0 under the router losses, so they come from --init.

The reference: transformers loads the base in float32, every decoder linear's weight
becomes torchao's NF4Tensor (`to_nf4`), python/mose_hf attaches the experts (its forward
is mose's, checked bit for bit against `mose dump-logits`), with the gate's top-k in its
training form onehot − sg(p) + p, and the loop is mose's trainer/step.go in PyTorch:
  emotion = Σ_samples Σ_answer CE / answer tokens of the step;
  per (target, gated group), over the group's member tokens of the whole step (N):
  f_k = Σ_t hard_tk / (k·N) (detached), P_k = Σ_t p_tk / N, lb = K·Σ_k f_k·P_k,
  z = Σ_t logsumexp(logits_t)² / N; lb and z are the means over the rows with N > 0;
  total = emotion + λ_lb·lb + λ_z·z (loss.load_balance, loss.z_loss);
then mose's global-norm clipping, AdamW and schedule (as check_quant_training.py), then the
modality weights' update for the next step (gating/weights.go: static, token-balanced,
or contribution from the mean expert output norms on visual and audio tokens, summed over
targets). Prints one JSON line: per-step emotion, lb, z and total of both sides and the
largest difference of each; exit 1 beyond --tol.
"""
import argparse
import json
import math
import os
import sys

import torch
import yaml
from safetensors.torch import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_quant_training import LINEARS, lr_at  # noqa: E402

KEYS = ("emotion_loss", "lb_loss", "z_loss", "total_loss")


class Router:
    """Collects, over one optimizer step, each (gate, group)'s router sums (gating/losses.go)."""

    def __init__(self):
        self.rows = {}  # id(gate) -> [n (Gg), hard (Gg,Kmax), p (Gg,Kmax) with grad, lse (Gg) with grad, K (Gg)]

    def add(self, gate, logits, p, hard, member):
        """logits, p, hard: (B,T,Gg,Kmax); member: (B,T,Gg) 0/1."""
        m4 = member.unsqueeze(-1)
        n = member.sum((0, 1))
        ps = (p * m4).sum((0, 1))
        hs = (hard * m4).sum((0, 1)) if hard is not None else ps.detach()
        lse = (torch.logsumexp(logits, -1).square() * member).sum((0, 1))
        r = self.rows.get(id(gate))
        if r is None:
            self.rows[id(gate)] = [n, hs, ps, lse, gate.kf, max(gate.top_k, 1)]
        else:
            r[0], r[1], r[2], r[3] = r[0] + n, r[1] + hs, r[2] + ps, r[3] + lse

    def losses(self):
        """() load-balancing and z losses: means over the (gate, group) rows that routed tokens."""
        bs, zs, vs = [], [], []
        for n, hard, p, lse, K, k in self.rows.values():
            denom = n.clamp_min(1)
            prob = p / denom.unsqueeze(-1)
            load = hard.detach() / (denom * k).unsqueeze(-1)
            valid = (n > 0).float()
            bs.append(K * (load * prob).sum(-1) * valid)
            zs.append(lse / denom * valid)
            vs.append(valid)
        if not bs:
            return torch.zeros(()), torch.zeros(())
        cnt = torch.cat(vs).sum().clamp_min(1)
        return torch.cat(bs).sum() / cnt, torch.cat(zs).sum() / cnt


def train_route(gate, router, onehot_ref):
    """mose_hf's Gate.route with mose's training form of top-k and the router sums recorded."""
    member_of = gate.member  # (4, Gg)

    def route(x):  # x: (B,T,in) float32 -> (B,T,ΣK)
        B, T, _ = x.shape
        z = torch.nn.functional.linear(x, gate.w)  # (B,T,ΣK)
        if gate.temperature != 1:
            z = z / gate.temperature
        ninf = torch.full((B, T, 1), -math.inf, dtype=torch.float32)
        logits = torch.cat([z, ninf], -1).index_select(-1, gate.pad).view(B, T, gate.groups, gate.kmax)
        p = logits.softmax(-1)  # (B,T,Gg,Kmax)
        coef, hard = p, None
        if gate.top_k > 0:
            idx = p.topk(gate.top_k, -1).indices
            hard = torch.zeros_like(p).scatter_add(-1, idx, torch.ones(idx.shape, dtype=torch.float32))
            coef = (hard - p.detach()) + p
        router.add(gate, logits, p, hard, onehot_ref[0] @ member_of)
        return coef.reshape(B, T, gate.groups * gate.kmax).index_select(-1, gate.back)
    return route


def build_mix(mix, cfg, wv, wn, mose_hf_config):
    """mix[m, e] = float32(s · w_m) for the modalities group(e) routes (experts.Mixture.buildMix)."""
    weight = {"visual": wv, "nonvisual": wn, "omni": 1.0}
    out = torch.zeros(len(mose_hf_config.MODALITY_IDS), mix.E, dtype=torch.float32)
    e = 0
    for g in cfg.groups:
        for _ in range(g.experts):
            for m in mose_hf_config.ROUTES[g.name]:
                out[mose_hf_config.MODALITY_IDS[m], e] = cfg.scaling * weight[g.name]
            e += 1
    mix.mix = out


def main():
    ap = argparse.ArgumentParser()
    for k in ("model", "export", "init", "recipe", "metrics"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--dump", action="append", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=0, help="compare the first N steps only (0: all)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    import mose_hf
    from mose_hf import config as mcfg
    from torchao.quantization.quantize_.workflows.nf4.nf4_tensor import to_nf4
    from transformers import AutoModelForCausalLM

    rec = yaml.safe_load(open(a.recipe))
    t, ad, lc = rec["train"], rec["adapters"], rec["loss"]
    for k in ("lr", "min_lr", "eps", "max_grad_norm", "weight_decay"):  # PyYAML reads 1e-08 as a string
        t[k] = float(t[k])
    t["betas"] = [float(x) for x in t["betas"]]
    lam_lb, lam_z = float(lc["load_balance"]), float(lc["z_loss"])
    if ad["method"] != "mose" or ad["dropout"] != 0 or float(ad["gate"]["noise"]) != 0 or t["weight_decay"] != 0 \
            or rec["model"]["train_projectors"] or t["grad_accum"] != 1 or t["batch_size"] != len(a.dump) \
            or rec["model"]["quantize"] != "nf4" or t["log_every"] != 1:
        raise SystemExit("check_quant_mose_training: the run must be nf4, mose, dropout 0, gate noise 0, weight_decay 0, "
                         "frozen projectors, grad_accum 1, log_every 1 and batch_size = the number of --dump samples")
    mode = ad.get("modality_weights", "static")
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="eager")
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and ".layers." in name and name.split(".")[-1] in LINEARS:
            mod.weight = torch.nn.Parameter(to_nf4(mod.weight.data), requires_grad=False)
    mm = mose_hf.load(model, a.export, model_dir=a.model)
    cfg = mm.cfg
    top_k, temperature = int(ad["gate"]["top_k"]), float(ad["gate"]["temperature"] or 1)  # the recipe's, as the trainer's
    init = load_file(a.init)
    router = Router()
    onehot_ref = [None]
    norms = []  # per target: (sum of norms on visual, on audio tokens), (counts)
    params = []
    for name, (_mod, mix) in mm.mixtures.items():
        if not torch.equal(mix.A, init[name + ".A"]):
            raise SystemExit(f"check_quant_mose_training: {name}: --init's A is not the run's (the export's step-1 A)")
        mix.A = init[name + ".A"].clone().requires_grad_(True)
        mix.B = init[name + ".B"].clone().requires_grad_(True)
        params += [mix.A, mix.B]
        if mix.gate is not None:
            g = mix.gate
            g.top_k, g.temperature = top_k, temperature
            g.w = init[name + ".gate"].clone().requires_grad_(True)
            params.append(g.w)
            gated = [gr for gr in cfg.groups if gr.experts > 1]
            g.kf = torch.tensor([float(gr.experts) for gr in gated])
            mem = torch.zeros(len(mcfg.MODALITY_IDS), len(gated))
            for gi, gr in enumerate(gated):
                for m in mcfg.ROUTES[gr.name]:
                    mem[mcfg.MODALITY_IDS[m], gi] = 1
            g.member = mem
            g.route = train_route(g, router, onehot_ref)
        build_mix(mix, cfg, 1.0, 1.0, mcfg)
        plain = mix.delta

        def delta(x, onehot, plain=plain):  # x: (B,T,in) -> (B,T,out); records the output norms
            onehot_ref[0] = onehot
            y = plain(x, onehot)
            n = y.detach().norm(dim=-1, keepdim=True)  # (B,T,1)
            va = onehot[..., mcfg.MODALITY_IDS["visual"]:mcfg.MODALITY_IDS["visual"] + 2]  # (B,T,2)
            norms.append(((va * n).sum((0, 1)), va.sum((0, 1))))
            return y
        mix.delta = delta
    ps = params  # mose's order: per target A, B, gate
    m1 = [torch.zeros_like(p) for p in ps]  # AdamW moments
    v1 = [torch.zeros_like(p) for p in ps]
    b1, b2 = t["betas"]
    samples = []
    for d in a.dump:
        s = load_file(d)
        ids, feats = s["input_ids"].clone(), {}
        for inp in mm.inputs:
            ids[0, s["positions." + inp.name]] = mm.placeholder_id(inp.name)
            feats[inp.name] = s["features." + inp.name]
        samples.append((ids, feats, s["target_positions"], s["targets"], s["modality"]))
    answer = sum(s[3].numel() for s in samples)
    vis = sum(int((s[4] == mcfg.MODALITY_IDS["visual"]).sum()) for s in samples)
    nonvis = sum(int(((s[4] == mcfg.MODALITY_IDS["text"]) | (s[4] == mcfg.MODALITY_IDS["audio"])).sum()) for s in samples)
    got = [json.loads(line) for line in open(a.metrics) if line.strip()]
    got = [r for r in got if r.get("kind", "train") == "train" and "emotion_loss" in r]
    steps = a.steps or t["max_steps"]
    ref, wv, wn, weights = [], 1.0, 1.0, []
    for step in range(steps):
        for p in ps:
            p.grad = None
        router.rows.clear()
        norms.clear()
        emotion = torch.zeros(())
        for ids, feats, tpos, targets, _ in samples:
            logits = mm(ids, features=feats).logits[0]  # (T,V)
            emotion = emotion + torch.nn.functional.cross_entropy(logits[tpos].float(), targets, reduction="sum") / answer
        lb, z = router.losses()
        loss = emotion + (lb * lam_lb + z * lam_z)
        loss.backward()
        e, lbv, zv = emotion.item(), lb.item(), z.item()
        ref.append({"emotion_loss": e, "lb_loss": lbv, "z_loss": zv, "total_loss": e + lam_lb * lbv + lam_z * zv})
        with torch.no_grad():
            norm = torch.stack([p.grad.norm() for p in ps]).norm().item()
            if t["max_grad_norm"] > 0 and norm > t["max_grad_norm"]:
                for p in ps:
                    p.grad.mul_(t["max_grad_norm"] / (norm + 1e-6))
            lr = lr_at(t, step)
            bc1, bc2 = 1 - b1 ** (step + 1), 1 - b2 ** (step + 1)
            for i, p in enumerate(ps):
                m1[i] = torch.lerp(m1[i], p.grad, 1 - b1)
                v1[i] = torch.lerp(v1[i], p.grad.square(), 1 - b2)
                p.sub_((m1[i] / ((v1[i] / bc2).sqrt() + t["eps"])) * (lr / bc1))
        # gating/weights.go: the modality weights of the next step.
        if mode == "token-balanced":
            wv, wn = ((vis + nonvis) / (2 * vis), (vis + nonvis) / (2 * nonvis)) if vis and nonvis else (1.0, 1.0)
        elif mode == "contribution":
            sums = torch.stack([s for s, _ in norms]).sum(0)
            cnts = torch.stack([c for _, c in norms]).sum(0)
            per = len(mm.mixtures)
            va, aa = [float(sums[i]) / (float(cnts[i]) / per) if float(cnts[i]) else 0.0 for i in (0, 1)]
            if va > 0 and aa > 0 and not math.isinf(va + aa):
                r = math.pow(aa / va, 0.1 / 2)
                wv, wn = min(max(wv * r, 0.5), 2.0), min(max(wn / r, 0.5), 2.0)
        elif mode != "static":
            raise SystemExit(f"check_quant_mose_training: modality_weights {mode!r} is not reproduced here")
        weights.append([wv, wn])  # logged by mose after the update, as here
        for _, mix in mm.mixtures.values():
            build_mix(mix, cfg, wv, wn, mcfg)
    n = min(len(ref), len(got))
    worst = {k: max((abs(ref[i][k] - got[i][k]) for i in range(n)), default=float("inf")) for k in KEYS}
    mose_w = [[r["modality_weights"]["visual"], r["modality_weights"]["nonvisual"]] for r in got[:n] if "modality_weights" in r]
    print(json.dumps({"steps": n, "max_abs_diff": worst, "max_abs_loss_diff": max(worst.values()),
                      "mose": [{k: r[k] for k in KEYS} for r in got[:n]], "reference": ref[:n],
                      "modality_weights_mose": mose_w, "modality_weights_reference": weights[:n],
                      "loss_moved": abs(ref[0]["total_loss"] - ref[-1]["total_loss"]) if ref else 0}))
    return 0 if n == steps and max(worst.values()) <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
