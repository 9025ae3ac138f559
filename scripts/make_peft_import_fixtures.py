#!/usr/bin/env python3
"""Golden fixtures for mose's import of external PEFT LoRA adapters (trainer/peftimport.go).

    "$(scripts/pyenv.sh)" scripts/make_peft_import_fixtures.py

Writes trainer/testdata/peft-import/ deterministically (fixed seeds, one torch thread):

  base/, base-tied/        tiny random LlamaForCausalLM dirs (q/k/v/o and MLP biases; the
                           second with tied embeddings)
  <variant>/               adapter_config.json + adapter_model.safetensors written by PEFT's
                           own save_pretrained for one LoraConfig variant (alpha_pattern,
                           rank_pattern, layers_to_transform, regex and all-linear targets,
                           bias, modules_to_save, the fields with no effect at inference...)
  expected.safetensors     input_ids I64 [2, T]; logits_base / logits_base-tied; and for each
                           variant logits_<variant> F32 [2, T, V] from PEFT itself
                           (PeftModel.from_pretrained on a fresh base, eval, fp32, eager)
  variants.json            variant -> {base, LoraConfig kwargs}

Every trainable adapter tensor is randomised after get_peft_model (lora_B ~ N(0, 0.2), trained
biases and modules_to_save copies moved by N(0, 0.2)), so each field visibly moves the logits.
The Go test (TestPEFTImport*) reads these files; it never runs Python.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

if os.environ.get("PYTHONHASHSEED") != "0":  # PEFT writes target_modules from a set
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "trainer" / "testdata" / "peft-import"
SEED = 4321

BASES = {
    "base": dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                 num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=128,
                 tie_word_embeddings=False, attention_bias=True, mlp_bias=True),
    "base-tied": dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=128,
                      tie_word_embeddings=True),
}

QV = ["q_proj", "v_proj"]
# name: (base, LoraConfig kwargs). Every LoraConfig field of peft 0.13.2 that mose accepts
# appears in at least one variant with a non-default value.
VARIANTS = {
    "plain": ("base", dict(r=4, lora_alpha=8, target_modules=QV)),
    "rslora": ("base", dict(r=4, lora_alpha=8, use_rslora=True, target_modules=QV)),
    "alpha_pattern": ("base", dict(r=4, lora_alpha=8, target_modules=QV, alpha_pattern={"v_proj": 32})),
    "rank_pattern": ("base", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                  rank_pattern={"q_proj": 2, "layers.1.self_attn.v_proj": 6},
                                  alpha_pattern={"down_proj": 3})),
    "rank_pattern_rslora": ("base", dict(r=4, lora_alpha=8, use_rslora=True, target_modules=QV,
                                         rank_pattern={"v_proj": 8}, alpha_pattern={"q_proj": 2})),
    # PEFT 0.13.2 takes the first rank_pattern-then-alpha_pattern key that matches: here
    # "q_proj" (a rank key) shadows the alpha key of layer 0's q_proj, whose alpha stays 8.
    "pattern_order": ("base", dict(r=4, lora_alpha=8, target_modules=QV, rank_pattern={"q_proj": 2},
                                   alpha_pattern={"layers.0.self_attn.q_proj": 32})),
    "pattern_full_key": ("base", dict(r=4, lora_alpha=8, target_modules=QV,
                                      rank_pattern={"model.layers.2.self_attn.v_proj": 2})),
    "layers_to_transform": ("base", dict(r=4, lora_alpha=8, target_modules=QV, layers_to_transform=[0, 2],
                                         layers_pattern="layers")),
    "layers_to_transform_int": ("base", dict(r=4, lora_alpha=8, target_modules=["o_proj", "up_proj"],
                                             layers_to_transform=1)),
    "target_regex": ("base", dict(r=4, lora_alpha=8,
                                  target_modules=r".*\.layers\.[02]\.(self_attn\.(q|k)_proj|mlp\.down_proj)")),
    "target_full_names": ("base", dict(r=4, lora_alpha=8,
                                       target_modules=["model.layers.1.self_attn.k_proj", "mlp.gate_proj"])),
    "all_linear": ("base", dict(r=2, lora_alpha=4, target_modules="all-linear")),
    "target_default": ("base", dict(r=4, lora_alpha=8, target_modules=None)),
    "bias_all": ("base", dict(r=4, lora_alpha=8, target_modules=["q_proj", "o_proj"], bias="all")),
    "bias_lora_only": ("base", dict(r=4, lora_alpha=8, target_modules=["q_proj", "o_proj"], bias="lora_only")),
    "save_lm_head": ("base", dict(r=4, lora_alpha=8, target_modules=QV, modules_to_save=["lm_head"])),
    "save_embed": ("base", dict(r=4, lora_alpha=8, target_modules=QV, modules_to_save=["embed_tokens"])),
    "tied_save_lm_head": ("base-tied", dict(r=4, lora_alpha=8, target_modules=QV, modules_to_save=["lm_head"])),
    "tied_save_embed": ("base-tied", dict(r=4, lora_alpha=8, target_modules=QV, modules_to_save=["embed_tokens"])),
    # Fields with no effect on the forward of a trained adapter: PEFT's logits equal "plain"'s
    # math with the same weights (the test checks them against PEFT all the same).
    "no_effect": ("base", dict(r=4, lora_alpha=8, target_modules=QV, lora_dropout=0.3, fan_in_fan_out=True,
                               init_lora_weights="gaussian", inference_mode=False, layers_pattern="layers",
                               megatron_core="megatron.core", layer_replication=None)),
    "init_false": ("base", dict(r=4, lora_alpha=8, target_modules=QV, init_lora_weights=False)),
}


def say(msg: str) -> None:
    print(f"make_peft_import_fixtures: {msg}", flush=True)


def reinit(model, torch, gen) -> None:
    embed_std = 0.15 if model.config.tie_word_embeddings else 0.5
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(embed_std * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def main() -> int:
    import peft
    import torch
    import transformers
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    say(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    if peft.__version__ != "0.13.2":
        say(f"warning: the README table describes peft 0.13.2, this is {peft.__version__}")
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    def load(base: str):
        return LlamaForCausalLM.from_pretrained(OUT / base, torch_dtype=torch.float32, attn_implementation="eager")

    gen = torch.Generator().manual_seed(SEED)
    expected = {}
    ids = None
    for i, (name, spec) in enumerate(BASES.items()):
        torch.manual_seed(SEED + i)
        cfg = LlamaConfig(**spec, attn_implementation="eager", torch_dtype="float32", bos_token_id=1, eos_token_id=2)
        model = LlamaForCausalLM(cfg)
        reinit(model, torch, gen)
        model.save_pretrained(OUT / name, safe_serialization=True)
        if ids is None:
            ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=gen, dtype=torch.int64)
            expected["input_ids"] = ids.contiguous()
        with torch.no_grad():
            expected[f"logits_{name}"] = load(name).eval()(input_ids=ids, use_cache=False).logits.float().contiguous()

    variants = {}
    for i, (name, (base, kwargs)) in enumerate(VARIANTS.items()):
        torch.manual_seed(SEED + 100 + i)
        model = load(base)
        model.name_or_path = base  # recorded as base_model_name_or_path, relative
        pm = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **kwargs))
        with torch.no_grad():
            for pname, p in pm.named_parameters():
                if "lora_B" in pname:
                    p.copy_(0.2 * torch.randn(p.shape, generator=gen))
                elif p.requires_grad and "lora_A" not in pname:  # trained biases, modules_to_save copies
                    p.add_(0.2 * torch.randn(p.shape, generator=gen))
        adir = OUT / name
        pm.save_pretrained(adir, safe_serialization=True, save_embedding_layers=False)
        card = adir / "README.md"
        if card.exists():
            card.unlink()
        loaded = PeftModel.from_pretrained(load(base), adir).eval()
        with torch.no_grad():
            logits = loaded(input_ids=ids, use_cache=False).logits.float().contiguous()
            direct = pm.eval()(input_ids=ids, use_cache=False).logits.float()
        # bias="lora_only": peft 0.13.2 trains the wrapped layers' biases but saves none of them (it
        # looks for "<module>.bias", the bias lives at "<module>.base_layer.bias"), so the reloaded
        # adapter is what counts: the golden logits are always PEFT's from the files.
        if kwargs.get("bias") != "lora_only":
            assert torch.allclose(direct, logits, atol=1e-6), f"{name}: reloaded adapter differs"
        moved = (logits - expected[f"logits_{base}"]).abs().max().item()
        assert moved > 0.05, f"{name}: the adapter barely moves the logits ({moved})"
        expected[f"logits_{name}"] = logits
        variants[name] = {"base": base, "lora_config": kwargs, "moves_logits_by": round(moved, 4)}
        say(f"{name}: max |logits - base| = {moved:.3f}")
    save_file(expected, str(OUT / "expected.safetensors"), metadata={"format": "pt"})
    (OUT / "variants.json").write_text(json.dumps(variants, indent=1, sort_keys=True) + "\n")
    (OUT / "README.md").write_text(
        "# trainer/testdata/peft-import\n\nGenerated by `scripts/make_peft_import_fixtures.py` (do not edit by "
        "hand; `make fixtures` regenerates it). See that script's docstring and `variants.json`.\n")
    say(f"wrote {OUT.relative_to(ROOT)} ({sum(p.stat().st_size for p in OUT.rglob('*') if p.is_file()) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
