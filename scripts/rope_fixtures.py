#!/usr/bin/env python3
"""RoPE fixtures from transformers: inverse frequencies, cos/sin tables, long-sequence logits.

Run it in the reference venv (scripts/pyenv.sh creates it; `make fixtures` calls it):

    "$(scripts/pyenv.sh)" scripts/rope_fixtures.py

It writes, deterministically (fixed seed, one torch thread):

  model/testdata/rope/inv_freq.json   transformers' LlamaRotaryEmbedding.inv_freq (float32) for
                                      every rope type mose supports, over head dims and thetas
  model/testdata/rope/tables.json     cos/sin rows (float32 and bfloat16) at positions up to
                                      131,071, from LlamaRotaryEmbedding.forward
  model/testdata/llama-long-rope/     a tiny random LlamaForCausalLM with rope_theta 5e5 and
                                      head_dim 64, and its fp32 logits at positions 2,048..2,111

The Go tests (model/rope_test.go) compare inv_freq and the tables bit for bit and the logits
within 1e-4; a float64 power rounded once gives 10 of 32 frequencies one ulp off and a
logit error of several 1e-4 at these positions.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "model" / "testdata"
SEED = 4242

# name: (model_type, config keys). Each case is one config.json mose parses; head_dim is
# explicit so odd sizes (24, 80, 96) are covered, including a tail that torch's CPU pow
# kernel computes outside its 16-wide vector loop.
INV_CASES = {
    "default-1e4-hd64": ("llama", dict(rope_theta=10000.0, head_dim=64)),
    "default-5e5-hd64": ("llama", dict(rope_theta=500000.0, head_dim=64)),
    "default-1e4-hd16": ("llama", dict(rope_theta=10000.0, head_dim=16)),
    "default-5e5-hd24": ("llama", dict(rope_theta=500000.0, head_dim=24)),
    "default-1e4-hd80": ("llama", dict(rope_theta=10000.0, head_dim=80)),
    "default-1e4-hd96": ("llama", dict(rope_theta=10000.0, head_dim=96)),
    "default-5e5-hd128": ("llama", dict(rope_theta=500000.0, head_dim=128)),
    "default-1e6-hd128-qwen2": ("qwen2", dict(rope_theta=1000000.0, head_dim=128)),
    "default-1e6-hd256": ("llama", dict(rope_theta=1000000.0, head_dim=256)),
    "default-1e4-hd128-mistral": ("mistral", dict(rope_theta=10000.0, head_dim=128)),
    "default-explicit": ("llama", dict(rope_theta=10000.0, head_dim=64, rope_scaling={"rope_type": "default"})),
    "linear-2-hd64": ("llama", dict(rope_theta=10000.0, head_dim=64,
                                    rope_scaling={"rope_type": "linear", "factor": 2.0})),
    "linear-legacy-type-3-hd128": ("llama", dict(rope_theta=10000.0, head_dim=128,
                                                 rope_scaling={"type": "linear", "factor": 3.0})),
    "linear-4-hd128-qwen2": ("qwen2", dict(rope_theta=1000000.0, head_dim=128,
                                          rope_scaling={"type": "linear", "factor": 4.0})),
    "llama3.1-hd128": ("llama", dict(rope_theta=500000.0, head_dim=128, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192})),
    "llama3.2-hd64": ("llama", dict(rope_theta=500000.0, head_dim=64, rope_scaling={
        "rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192})),
    "llama3-tiny-hd16": ("llama", dict(rope_theta=10000.0, head_dim=16, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 256})),
    "llama3-odd-hd96": ("llama", dict(rope_theta=123456.0, head_dim=96, rope_scaling={
        "rope_type": "llama3", "factor": 5.5, "low_freq_factor": 1.5, "high_freq_factor": 7.0,
        "original_max_position_embeddings": 3000})),
}

TABLE_CASES = ["default-5e5-hd64", "default-1e4-hd16", "llama3.1-hd128", "linear-2-hd64"]
TABLE_POSITIONS = [0, 1, 2, 3, 7, 100, 1023, 2047, 2048, 2111, 4095, 8191, 32767, 65535, 131071]

LONG = dict(
    vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
    num_attention_heads=2, num_key_value_heads=1, head_dim=64, rms_norm_eps=1e-5,
    rope_theta=500000.0, max_position_embeddings=4096, tie_word_embeddings=True,
)
LONG_T = 2112
LONG_FROM = 2048
QK_STD = float(os.environ.get("QK_STD", "0.3"))


def say(msg: str) -> None:
    print(f"rope_fixtures: {msg}", flush=True)


def config_json(model_type: str, keys: dict) -> dict:
    """A small but complete config.json around the rope keys."""
    hd = keys["head_dim"]
    cfg = dict(model_type=model_type, hidden_size=2 * hd, intermediate_size=4 * hd, num_hidden_layers=1,
               num_attention_heads=2, num_key_value_heads=1, vocab_size=32, max_position_embeddings=131072,
               rms_norm_eps=1e-5, hidden_act="silu")
    cfg.update(keys)
    return cfg


def hf_config(cfg: dict):
    from transformers import AutoConfig

    return AutoConfig.for_model(**json.loads(json.dumps(cfg)))


def rotary(cfg: dict):
    """The rotary module transformers builds for this config (its inv_freq buffer is what the
    attention uses)."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    from transformers.models.mistral.modeling_mistral import MistralRotaryEmbedding
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RotaryEmbedding

    c = hf_config(cfg)
    if cfg["model_type"] == "mistral":
        return MistralRotaryEmbedding(c.head_dim, max_position_embeddings=c.max_position_embeddings,
                                      base=c.rope_theta)
    if cfg["model_type"] == "qwen2":
        return Qwen2RotaryEmbedding(config=c)
    return LlamaRotaryEmbedding(config=c)


def floats(t) -> list[float]:
    # float32 -> Python float is exact, and json writes the shortest repr that round-trips.
    return [float(x) for x in t.float().flatten().tolist()]


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One case per line: small diffs when a fixture changes, no float per line.
    lines = [json.dumps(c, separators=(",", ":")) for c in obj["cases"]]
    text = '{"note":' + json.dumps(obj["note"]) + ',"cases":[\n' + ",\n".join(lines) + "\n]}\n"
    json.loads(text)
    path.write_text(text, encoding="utf-8")
    say(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.1f} KiB)")


def inv_freq_fixture(torch) -> None:
    cases = []
    for name, (mt, keys) in INV_CASES.items():
        cfg = config_json(mt, keys)
        rot = rotary(cfg)
        inv = rot.inv_freq
        assert inv.dtype == torch.float32
        # The float64 power rounded once (what mose did before) differs: count how often.
        if "rope_scaling" not in keys:
            hd = keys["head_dim"]
            e = torch.arange(0, hd, 2, dtype=torch.float64) / hd
            f64 = (1.0 / (keys["rope_theta"] ** e)).float()
            say(f"{name}: {int((f64 != inv).sum())} of {len(inv)} differ from a float64 power rounded once")
        cases.append(dict(name=name, config=cfg, inv_freq=floats(inv)))
    write(OUT / "rope" / "inv_freq.json", dict(
        note="transformers 4.46.3 rotary inv_freq (float32) per config.json; scripts/rope_fixtures.py",
        cases=cases))


def tables_fixture(torch) -> None:
    cases = []
    pos = torch.tensor([TABLE_POSITIONS], dtype=torch.int64)
    for name in TABLE_CASES:
        mt, keys = INV_CASES[name]
        cfg = config_json(mt, keys)
        rot = rotary(cfg)
        rec = dict(name=name, config=cfg, positions=TABLE_POSITIONS)
        for dt, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
            x = torch.zeros(1, 1, len(TABLE_POSITIONS), keys["head_dim"], dtype=dt)
            with torch.no_grad():
                cos, sin = rot(x, pos)  # (1, P, head_dim), in dt
            assert cos.dtype == dt
            rec[f"cos_{tag}"] = floats(cos)
            rec[f"sin_{tag}"] = floats(sin)
        cases.append(rec)
    write(OUT / "rope" / "tables.json", dict(
        note="transformers 4.46.3 LlamaRotaryEmbedding.forward cos/sin rows at `positions` "
             "(rows of head_dim, flattened), in float32 and cast to bfloat16; scripts/rope_fixtures.py",
        cases=cases))


def long_fixture(torch) -> None:
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    cfg = LlamaConfig(**LONG, attn_implementation="eager", torch_dtype="float32", bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif "q_proj" in name or "k_proj" in name:
                # Sharper attention, so that the scores depend on the rotary angles.
                p.copy_(QK_STD * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))
    model.eval()
    out = OUT / "llama-long-rope"
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").unlink(missing_ok=True)
    ids = torch.randint(0, LONG["vocab_size"], (1, LONG_T), generator=gen, dtype=torch.int64)
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits.float()
    tail = logits[:, LONG_FROM:, :].contiguous()
    save_file({"input_ids": ids.contiguous(), "logits_tail": tail}, str(out / "expected.safetensors"),
              metadata={"format": "pt", "tail_from": str(LONG_FROM)})
    say(f"llama-long-rope: T={LONG_T}, logits at {LONG_FROM}.. std {tail.std().item():.3f}, "
        f"range [{tail.min().item():.2f}, {tail.max().item():.2f}]")
    (out / "README.md").write_text(
        "# llama-long-rope\n\nGenerated by `scripts/rope_fixtures.py` (do not edit). A tiny random "
        f"LlamaForCausalLM ({', '.join(f'{k}={v}' for k, v in LONG.items())}); q/k weights N(0,0.5), "
        "other linears N(0,0.15), embeddings N(0,0.5), norms 1+N(0,0.1).\n\n"
        f"`expected.safetensors`: `input_ids` I64 [1,{LONG_T}] and `logits_tail` F32 [1,{LONG_T - LONG_FROM},"
        f"{LONG['vocab_size']}], transformers' fp32 eager forward at positions {LONG_FROM}..{LONG_T - 1}.\n",
        encoding="utf-8")
    say(f"wrote {out.relative_to(ROOT)}")


def main() -> int:
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    say(f"torch {torch.__version__}, transformers {transformers.__version__}")
    inv_freq_fixture(torch)
    tables_fixture(torch)
    long_fixture(torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
