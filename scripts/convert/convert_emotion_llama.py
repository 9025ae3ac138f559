#!/usr/bin/env python3
"""Convert an Emotion-LLaMA checkpoint into a mose model dir.

    "$(scripts/setup/pyenv.sh)" scripts/convert/convert_emotion_llama.py \\
        --checkpoint checkpoint_best.pth --llama Llama-2-7b-chat-hf --out models/emotion-llama \\
        [--dtype float16|bfloat16|float32] [--projector-dtype float32|float16|bfloat16] \\
        [--shard-size 5GB] [--lora-alpha 16] [--force] [--trust-pickle]

Inputs
  --checkpoint  an Emotion-LLaMA / MiniGPT-v2 training checkpoint (.pth). Its state dict
                (under "model" when it is a runner checkpoint) holds the trainable tensors:
                the peft LoRA on the LLaMA (q_proj and v_proj, r=64) and the five projectors.
  --llama       the Llama-2-7b-chat-hf dir the checkpoint was trained on (config.json,
                *.safetensors or pytorch_model*.bin, tokenizer.json or tokenizer.model).

Output (docs/architecture.md, section 4): config.json (the LLaMA config plus a "mose" section),
model.safetensors or model-0000k-of-0000n.safetensors + model.safetensors.index.json,
tokenizer.json (plus the LLaMA dir's other tokenizer/generation files when present).

  * LoRA is merged: W <- W0 + (alpha/r) * B @ A, computed in float32, then cast to --dtype.
    r is read from the tensor shapes; alpha is not stored in the .pth, hence --lora-alpha.
  * The projectors are written as projectors.<name>.weight [hidden, feature_dim] and
    projectors.<name>.bias [hidden], in --projector-dtype (float32 by default: Emotion-LLaMA
    trains them in float32 and mose loads trainable projectors in float32).
  * rotary_emb.inv_freq buffers found in old LLaMA checkpoints are dropped (derived values).
  * Streaming: tensors are read one at a time from the source shards (safetensors lazily,
    .bin through torch.load(mmap=True)) and written straight into the output files, whose
    headers are planned from shapes alone. Peak memory is about one source tensor plus the
    LoRA and projectors, not the model.
  * Atomic: everything is written into a temp dir next to OUT and renamed at the end; on
    any error nothing is left behind. An existing OUT is refused unless --force.

Exit codes: 0 ok, 2 bad input (missing file, unknown or mismatched tensor, non-finite
merge, existing OUT), 1 unexpected failure.

Where the mapping comes from (ZebangCheng/Emotion-LLaMA, read for this converter):
  * minigpt4/models/minigpt_v2.py, MiniGPTv2.__init__: llama_proj = Linear(4 * 1408 -> hidden)
    (visual_encoder.num_features * 4), feats_llama_proj1/2/3 = Linear(1024 -> hidden),
    cls_tk_llama_proj = Linear(1408 -> hidden); lora_r=64, lora_alpha=16, target q_proj/v_proj.
    encode_img: EVA output [1,1025,1408] -> CLS token -> cls_tk_llama_proj; 1024 patches
    viewed as [256, 5632] -> llama_proj; video_features[:, 0/1/2] -> feats_llama_proj1/2/3;
    concatenated as (256 patch tokens, proj1, proj2, proj3, cls).
  * minigpt4/datasets/datasets/first_face.py, FeatureFaceDataset: video_features =
    cat(FaceMAE (mae_340_UTT), VideoMAE (maeV_399_UTT), Audio (HL-UTT)), so proj1 = FaceMAE,
    proj2 = VideoMAE, proj3 = HuBERT audio; the instruction is "<video><VideoHere></video>
    <feature><FeatureHere></feature> The person in video says: ... [emotion] Please determine
    which emotion label in the video represents: happy, sad, neutral, angry, worried,
    surprise, fear, contempt, doubt."
  * minigpt4/models/minigpt_base.py, prompt_wrap: the last 4 tokens of encode_img go at
    <FeatureHere>, the rest (256) at <VideoHere>.
  * minigpt4/models/base_model.py, init_llm: LoraConfig(r, bias="none", target_modules,
    lora_alpha, lora_dropout) through get_peft_model on LlamaForCausalLM, hence keys
    llama_model.base_model.model.model.layers.{i}.self_attn.{q,v}_proj.lora_{A,B}.weight.
  * minigpt4/runners/runner_base.py, _save_checkpoint: {"model": state_dict with only the
    parameters that require grad, "optimizer": ..., "config": ..., ...}.
  * environment.yml / requirements.txt: peft==0.2.0 (lora_A/lora_B are plain nn.Linear, so
    no ".default" in the key; later peft versions add it, which is accepted too). In peft
    the LoRA scaling is lora_alpha / r and merge() adds (B @ A) * scaling to the weight.
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter, OrderedDict

import torch

EXIT_BAD_INPUT = 2

# mose input name, Emotion-LLaMA module, modality, tokens, placeholder; in the order the
# tokens are spliced (docs/architecture.md section 4 / minigpt_v2.encode_img + minigpt_base.prompt_wrap).
PROJECTORS = [
    ("eva_patches", "llama_proj", "visual", 256, "<VideoHere>"),
    ("face_mae", "feats_llama_proj1", "visual", 1, "<FeatureHere>"),
    ("video_mae", "feats_llama_proj2", "visual", 1, "<FeatureHere>"),
    ("hubert", "feats_llama_proj3", "audio", 1, "<FeatureHere>"),
    ("eva_cls", "cls_tk_llama_proj", "visual", 1, "<FeatureHere>"),
]
PROMPT = {
    "template": "<s>[INST] <video><VideoHere></video> <feature><FeatureHere></feature> The person in video "
    "says: {subtitle}. [emotion] Please determine which emotion label in the video represents: "
    "{labels}. [/INST]",
    "answer": "{label}</s>",
}
LABELS = ["happy", "sad", "neutral", "angry", "worried", "surprise", "fear", "contempt", "doubt"]

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
ST_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
ST_TO_TORCH = {v: k for k, v in ST_DTYPES.items()}

# peft LoRA keys: <prefix>.<target module>.lora_A|lora_B[.<adapter>].weight
LORA_PREFIX = "llama_model.base_model.model."
LORA_RE = re.compile(r"^llama_model\.base_model\.model\.(?P<target>.+)\.lora_(?P<ab>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")
# Tokenizer and generation files copied along with tokenizer.json when the LLaMA dir has them.
AUX_FILES = ["tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]


class ConvertError(Exception):
    """A problem with the inputs: reported without a traceback, exit code 2."""


def log(msg):
    print(msg, flush=True)


def fmt_shape(shape):
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def fmt_bytes(n):
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def parse_size(text):
    """'5GB', '500MB', '100KB', '2GiB', '12345' -> bytes (HF's convention: GB = 10^9, GiB = 2^30)."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
             "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in units:
        raise ConvertError(f"--shard-size {text!r}: want a size like 5GB, 500MB, 2GiB or a number of bytes")
    size = int(float(m.group(1)) * units[m.group(2).upper()])
    if size <= 0:
        raise ConvertError(f"--shard-size {text!r} must be > 0")
    return size


def dtype_size(dt):
    return torch.empty((), dtype=dt).element_size()


# ----------------------------------------------------------------------------- checkpoint

def torch_load(path, what, trust_pickle=False):
    """torch.load on the CPU, memory-mapped when the file is in the zip format."""
    def load(mmap):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
            return torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=mmap)
    try:
        try:
            return load(True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            return load(False)  # legacy (pre-zip) serialization cannot be mmapped
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError...
        hint = "" if trust_pickle else (" (if it holds Python objects besides tensors and you trust it, "
                                        "rerun with --trust-pickle)")
        raise ConvertError(f"{what} {path}: cannot load{hint}: {e}") from e


def load_checkpoint(path, trust_pickle):
    if not os.path.isfile(path):
        raise ConvertError(f"--checkpoint {path}: no such file")
    obj = torch_load(path, "--checkpoint", trust_pickle)
    others = []
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        state, others = obj["model"], sorted(str(k) for k in obj if k != "model")
    else:
        state = obj
    if not isinstance(state, dict) or not state:
        raise ConvertError(f"--checkpoint {path}: expected a state dict (or a dict with a 'model' state dict)")
    out = OrderedDict()
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise ConvertError(f"--checkpoint {path}: state dict entry {k!r} is a {type(v).__name__}, not a tensor")
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out, others


def split_checkpoint(state):
    """Sort the checkpoint's keys into LoRA pairs, projectors and ignored keys."""
    lora = {}  # target weight name -> {"A": t, "B": t}
    adapters = set()
    projectors = {}
    ignored = []
    proj_keys = {f"{src}.{p}" for _, src, *_ in PROJECTORS for p in ("weight", "bias")}
    for k, v in state.items():
        if k in proj_keys:
            projectors[k] = v
            continue
        if ".lora_" in k:
            m = LORA_RE.match(k)
            if not m:
                raise ConvertError(f"checkpoint key {k}: unsupported LoRA tensor (want "
                                   f"{LORA_PREFIX}<module>.lora_A|lora_B.weight)")
            adapters.add(m.group("adapter") or "")
            lora.setdefault(m.group("target") + ".weight", {})[m.group("ab")] = v
            continue
        ignored.append(k)
    if len(adapters) > 1:
        raise ConvertError(f"checkpoint holds several LoRA adapters {sorted(adapters)}; merge one at a time")
    for target, ab in sorted(lora.items()):
        for side in "AB":
            if side not in ab:
                raise ConvertError(f"LoRA for {target}: lora_{side} is missing (found only lora_{'AB'[side == 'A']})")
        a, b = ab["A"], ab["B"]
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1]:
            raise ConvertError(f"LoRA for {target}: lora_A {fmt_shape(a.shape)} and lora_B {fmt_shape(b.shape)} "
                               f"do not chain (want A [r, in], B [out, r])")
    if not lora:
        raise ConvertError("checkpoint holds no LoRA keys "
                           f"({LORA_PREFIX}model.layers.N.self_attn.q_proj.lora_A.weight, ...): is it an Emotion-LLaMA checkpoint?")
    missing = sorted(proj_keys - projectors.keys())
    if missing:
        raise ConvertError("checkpoint lacks projector tensors: " + ", ".join(missing))
    return lora, projectors, ignored


def summarize_ignored(keys):
    """Group ignored keys by kind for the summary."""
    groups = Counter()
    for k in keys:
        if k.startswith("llama_model."):
            groups["llama_model.* base weights (the --llama dir's weights are used instead)"] += 1
        else:
            groups[k.split(".")[0] + ".*"] += 1
    return groups


# ----------------------------------------------------------------------------- LLaMA dir

class Source:
    """The LLaMA dir's tensors, in file order: [(name, file, shape, dtype)]."""

    def __init__(self, llama_dir):
        self.dir = llama_dir
        self.kind, self.files, names_by_file = self._find_files()
        self.entries = []
        for f in self.files:
            path = os.path.join(llama_dir, f)
            if self.kind == "safetensors":
                from safetensors import safe_open
                try:
                    with safe_open(path, framework="pt") as h:
                        keys = list(h.keys())
                        key_set = set(keys)
                        wanted = names_by_file.get(f, keys)
                        for n in wanted:
                            if n not in key_set:
                                raise ConvertError(f"{path}: lacks {n}, which the index maps to it")
                            sl = h.get_slice(n)
                            dt = ST_TO_TORCH.get(sl.get_dtype())
                            if dt is None:
                                raise ConvertError(f"{path}: {n} has unsupported dtype {sl.get_dtype()}")
                            self.entries.append((n, f, tuple(sl.get_shape()), dt))
                except ConvertError:
                    raise
                except Exception as e:  # noqa: BLE001 - safetensors errors are plain exceptions
                    raise ConvertError(f"{path}: not a readable safetensors file: {e}") from e
            else:
                sd = self._load_bin(path)
                wanted = names_by_file.get(f, list(sd.keys()))
                for n in wanted:
                    if n not in sd:
                        raise ConvertError(f"{path}: lacks {n}, which the index maps to it")
                    self.entries.append((n, f, tuple(sd[n].shape), sd[n].dtype))
                del sd
        names = [e[0] for e in self.entries]
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise ConvertError(f"{llama_dir}: tensors stored twice: {', '.join(sorted(dup)[:5])}")
        self.by_name = {e[0]: e for e in self.entries}
        self._names_by_file = {f: [e[0] for e in self.entries if e[1] == f] for f in self.files}

    def _find_files(self):
        d = self.dir
        for kind, index, single in (("safetensors", "model.safetensors.index.json", "model.safetensors"),
                                    ("bin", "pytorch_model.bin.index.json", "pytorch_model.bin")):
            ip = os.path.join(d, index)
            if os.path.isfile(ip):
                try:
                    with open(ip) as fh:
                        wm = json.load(fh)["weight_map"]
                except (OSError, ValueError, KeyError) as e:
                    raise ConvertError(f"{ip}: cannot read its weight_map: {e}") from e
                by_file = OrderedDict()
                for name, f in wm.items():
                    by_file.setdefault(f, []).append(name)
                files = sorted(by_file)
                missing = [f for f in files if not os.path.isfile(os.path.join(d, f))]
                if missing:
                    raise ConvertError(f"{ip} names shard(s) that are missing: {', '.join(missing)}")
                return kind, files, by_file
            if os.path.isfile(os.path.join(d, single)):
                return kind, [single], {}
        raise ConvertError(f"--llama {d}: no weights found (looked for model.safetensors[.index.json] and "
                           "pytorch_model.bin[.index.json])")

    @staticmethod
    def _load_bin(path):
        sd = torch_load(path, "LLaMA shard")
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise ConvertError(f"{path}: not a state dict of tensors")
        return sd

    def tensors(self):
        """Yield (name, tensor) in self.entries order, one source file open at a time."""
        for f in self.files:
            path = os.path.join(self.dir, f)
            names = self._names_by_file[f]
            if self.kind == "safetensors":
                from safetensors import safe_open
                with safe_open(path, framework="pt") as h:
                    for n in names:
                        yield n, h.get_tensor(n)
            else:
                sd = self._load_bin(path)
                for n in names:
                    yield n, sd[n]
                del sd


def load_llama_config(llama_dir):
    path = os.path.join(llama_dir, "config.json")
    if not os.path.isfile(path):
        raise ConvertError(f"--llama {llama_dir}: no config.json")
    try:
        with open(path) as fh:
            cfg = json.load(fh)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: {e}") from e
    if cfg.get("model_type") != "llama":
        raise ConvertError(f"{path}: model_type {cfg.get('model_type')!r}, want 'llama'")
    if "quantization_config" in cfg:
        raise ConvertError(f"{path}: the LLaMA weights are quantized; convert from the float16 checkpoint")
    if not isinstance(cfg.get("hidden_size"), int):
        raise ConvertError(f"{path}: no hidden_size")
    if "mose" in cfg:
        raise ConvertError(f"{path} already has a 'mose' section: --llama must be a plain LLaMA dir")
    return cfg


def tokenizer_json(llama_dir, tmp_out):
    """Copy tokenizer.json, or build it from tokenizer.model with transformers."""
    src = os.path.join(llama_dir, "tokenizer.json")
    dst = os.path.join(tmp_out, "tokenizer.json")
    if os.path.isfile(src):
        shutil.copyfile(src, dst)
        return "copied tokenizer.json"
    if not os.path.isfile(os.path.join(llama_dir, "tokenizer.model")):
        raise ConvertError(f"--llama {llama_dir}: neither tokenizer.json nor tokenizer.model")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            from transformers import LlamaTokenizerFast
            LlamaTokenizerFast.from_pretrained(llama_dir).save_pretrained(tmp)
        except Exception as e:  # noqa: BLE001 - conversion needs sentencepiece + protobuf
            raise ConvertError(f"building tokenizer.json from {llama_dir}/tokenizer.model failed ({e}); "
                               "install sentencepiece and protobuf, or put tokenizer.json in the LLaMA dir") from e
        if not os.path.isfile(os.path.join(tmp, "tokenizer.json")):
            raise ConvertError("LlamaTokenizerFast.save_pretrained wrote no tokenizer.json")
        shutil.copyfile(os.path.join(tmp, "tokenizer.json"), dst)
    return "built tokenizer.json from tokenizer.model (LlamaTokenizerFast)"


# ----------------------------------------------------------------------------- writing

def plan_shards(entries, max_bytes):
    """Greedy HF-style sharding: [[(name, shape, dtype, nbytes)]]; a tensor above the limit gets its own file."""
    shards, cur, cur_bytes = [], [], 0
    for e in entries:
        nbytes = e[3]
        if cur and cur_bytes + nbytes > max_bytes:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(e)
        cur_bytes += nbytes
    if cur:
        shards.append(cur)
    return shards


def write_shard(path, plan, tensor_iter):
    """Write one safetensors file: header from plan, then each tensor from tensor_iter, in order."""
    header, off = OrderedDict(), 0
    header["__metadata__"] = {"format": "pt"}
    for name, shape, dt, nbytes in plan:
        header[name] = {"dtype": ST_DTYPES[dt], "shape": list(shape), "data_offsets": [off, off + nbytes]}
        off += nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)  # align the data section to 8 bytes, as safetensors does
    with open(path, "wb") as f:
        f.write(len(hb).to_bytes(8, "little"))
        f.write(hb)
        for name, shape, dt, nbytes in plan:
            got_name, t = next(tensor_iter)
            if got_name != name or tuple(t.shape) != tuple(shape) or t.dtype != dt:
                raise RuntimeError(f"internal: planned {name} {shape} {dt}, got {got_name} {tuple(t.shape)} {t.dtype}")
            buf = t.contiguous().reshape(-1).view(torch.uint8).numpy()
            if buf.nbytes != nbytes:
                raise RuntimeError(f"internal: {name} has {buf.nbytes} bytes, planned {nbytes}")
            f.write(buf.data)
        f.flush()
        os.fsync(f.fileno())


def check_finite(name, t, what):
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise ConvertError(f"{name}: {bad} non-finite value(s) {what}")


# ----------------------------------------------------------------------------- main

def convert(args):
    t0 = time.time()
    out_dtype = DTYPES[args.dtype]
    proj_dtype = DTYPES[args.projector_dtype]
    shard_bytes = parse_size(args.shard_size)
    if args.lora_alpha <= 0:
        raise ConvertError(f"--lora-alpha {args.lora_alpha} must be > 0")
    if sys.byteorder != "little":
        raise ConvertError("safetensors is little-endian; this converter only runs on little-endian machines")
    if not os.path.isdir(args.llama):
        raise ConvertError(f"--llama {args.llama}: no such directory")

    out = os.path.abspath(args.out)
    if os.path.lexists(out):
        if not args.force:
            raise ConvertError(f"--out {out} exists (pass --force to replace it)")
        for p in (args.llama, args.checkpoint):
            rp = os.path.realpath(p)
            if rp == os.path.realpath(out) or rp.startswith(os.path.realpath(out) + os.sep):
                raise ConvertError(f"--force would delete the input {p}, which is inside --out {out}")

    cfg = load_llama_config(args.llama)
    hidden = cfg["hidden_size"]
    log(f"reading {args.checkpoint}")
    state, ckpt_others = load_checkpoint(args.checkpoint, args.trust_pickle)
    lora, proj_src, ignored = split_checkpoint(state)
    del state
    log(f"indexing {args.llama}")
    src = Source(args.llama)

    # LoRA targets must exist with the shape B @ A produces.
    scales, ranks = {}, Counter()
    for target, ab in sorted(lora.items()):
        a, b = ab["A"], ab["B"]
        e = src.by_name.get(target)
        if e is None:
            raise ConvertError(f"LoRA for {target}: the --llama dir has no tensor {target} "
                               f"(it has {cfg.get('num_hidden_layers', '?')} layers)")
        want = (b.shape[0], a.shape[1])
        if tuple(e[2]) != want:
            raise ConvertError(f"LoRA for {target}: B·A is {fmt_shape(want)} (lora_A {fmt_shape(a.shape)}, "
                               f"lora_B {fmt_shape(b.shape)}) but the --llama dir's {target} is {fmt_shape(e[2])}")
        r = a.shape[0]
        ranks[r] += 1
        scales[target] = args.lora_alpha / r
        ab["A"], ab["B"] = a.to(torch.float32), b.to(torch.float32)  # materialize (checkpoint may be mmapped)
        for side in "AB":
            check_finite(f"LoRA for {target}: lora_{side}", ab[side], "in the checkpoint")

    # Projectors: [hidden, F] weight and [hidden] bias.
    embed = src.by_name.get("model.embed_tokens.weight")
    if embed is not None and embed[2][1] != hidden:
        raise ConvertError(f"config hidden_size {hidden} but model.embed_tokens.weight is {fmt_shape(embed[2])}")
    inputs, proj_tensors = [], []
    for name, module, modality, tokens, placeholder in PROJECTORS:
        w, b = proj_src[module + ".weight"], proj_src[module + ".bias"]
        if w.dim() != 2 or w.shape[0] != hidden:
            raise ConvertError(f"projector {module}.weight is {fmt_shape(w.shape)}, want [{hidden}, feature_dim] "
                               f"(hidden_size {hidden} from the --llama config)")
        if tuple(b.shape) != (hidden,):
            raise ConvertError(f"projector {module}.bias is {fmt_shape(b.shape)}, want [{hidden}]")
        for suffix, t in (("weight", w), ("bias", b)):
            t = t.to(proj_dtype).contiguous()
            check_finite(f"{module}.{suffix}", t, f"in the checkpoint (after the cast to {args.projector_dtype})")
            proj_tensors.append((f"projectors.{name}.{suffix}", t))
        inputs.append({"name": name, "modality": modality, "feature_dim": int(w.shape[1]), "tokens": tokens,
                       "projector": "linear", "placeholder": placeholder})
    projector_names = {n for n, _ in proj_tensors}

    # Plan the output: every source tensor (minus derived buffers), then the projectors.
    dropped = [e[0] for e in src.entries if e[0].endswith("rotary_emb.inv_freq")]
    entries = []
    for n, _, shape, dt in src.entries:
        if n in dropped:
            continue
        if n in projector_names:
            raise ConvertError(f"--llama dir already holds {n}")
        odt = out_dtype if dt.is_floating_point else dt
        entries.append((n, shape, odt, dtype_size(odt) * _numel(shape)))
    for n, t in proj_tensors:
        entries.append((n, tuple(t.shape), t.dtype, t.numel() * t.element_size()))
    shards = plan_shards(entries, shard_bytes)
    total = sum(e[3] for e in entries)
    nshards = len(shards)
    fnames = ["model.safetensors"] if nshards == 1 else \
        [f"model-{i + 1:05d}-of-{nshards:05d}.safetensors" for i in range(nshards)]

    def produce():
        proj_iter = iter(proj_tensors)
        dropped_set = set(dropped)
        for n, t in src.tensors():
            if n in dropped_set:
                continue
            if n in lora:
                w = t.to(torch.float32, copy=True)
                w.addmm_(lora[n]["B"], lora[n]["A"], alpha=scales[n])  # W0 + (alpha/r) B A in float32
                t = w.to(out_dtype)
                check_finite(n, t, f"after merging the LoRA and casting to {args.dtype}")
            elif t.is_floating_point():
                t = t.to(out_dtype)
                check_finite(n, t, f"after casting to {args.dtype}")
            yield n, t
        yield from proj_iter

    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".tmp-", dir=parent)
    try:
        it = produce()
        for i, (fname, plan) in enumerate(zip(fnames, shards)):
            log(f"writing {fname} ({len(plan)} tensor{'s' if len(plan) > 1 else ''}, {fmt_bytes(sum(e[3] for e in plan))})")
            write_shard(os.path.join(tmp, fname), plan, it)
        if next(it, None) is not None:
            raise RuntimeError("internal: more tensors produced than planned")
        if nshards > 1:
            index = {"metadata": {"total_size": total},
                     "weight_map": {e[0]: fnames[i] for i, plan in enumerate(shards) for e in plan}}
            with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as fh:
                json.dump(index, fh, indent=2)
                fh.write("\n")
        _verify_written(tmp, fnames, shards)

        out_cfg = dict(cfg)
        out_cfg["torch_dtype"] = args.dtype
        out_cfg["mose"] = {"inputs": inputs, "prompt": dict(PROMPT), "labels": list(LABELS),
                           "source": {"converter": "scripts/convert/convert_emotion_llama.py",
                                      "checkpoint": os.path.basename(args.checkpoint),
                                      "lora_alpha": args.lora_alpha, "lora_r": sorted(ranks)}}
        with open(os.path.join(tmp, "config.json"), "w") as fh:
            json.dump(out_cfg, fh, indent=2)
            fh.write("\n")
        tok_msg = tokenizer_json(args.llama, tmp)
        copied = []
        for f in AUX_FILES:
            p = os.path.join(args.llama, f)
            if os.path.isfile(p):
                shutil.copyfile(p, os.path.join(tmp, f))
                copied.append(f)

        os.chmod(tmp, 0o755)
        if os.path.lexists(out):  # --force: move the old dir aside, swap, then delete it
            old = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".old-", dir=parent)
            os.rename(out, os.path.join(old, "x"))
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    # Summary.
    layers = sorted({int(m.group(1)) for t in lora for m in [re.search(r"layers\.(\d+)\.", t)] if m})
    modules = sorted({t.rsplit(".", 2)[-2] for t in lora})
    log("")
    log(f"converted {args.checkpoint} + {args.llama} -> {out} in {time.time() - t0:.1f}s")
    log(f"  LoRA merged: {len(lora)} weights in {len(layers)} layers ({', '.join(modules)}), "
        f"r={'/'.join(str(r) for r in sorted(ranks))}, alpha={args.lora_alpha:g}, "
        f"scale alpha/r={'/'.join(f'{args.lora_alpha / r:g}' for r in sorted(ranks))}")
    log(f"  projectors ({args.projector_dtype}):")
    for (name, module, *_), inp in zip(PROJECTORS, inputs):
        log(f"    {module:18s} -> projectors.{name}: {inp['feature_dim']} -> {hidden}, "
            f"{inp['tokens']} token(s) at {inp['placeholder']}")
    groups = summarize_ignored(ignored)
    if groups:
        log(f"  ignored {len(ignored)} checkpoint key(s):")
        for g, c in sorted(groups.items()):
            log(f"    {c:6d}  {g}")
    else:
        log("  ignored checkpoint keys: none")
    if ckpt_others:
        log(f"  also in the checkpoint, unused: {', '.join(ckpt_others)} (the state dict was its 'model' entry)")
    if dropped:
        log(f"  dropped {len(dropped)} rotary_emb.inv_freq buffer(s) from the LLaMA dir (derived, not weights)")
    log(f"  weights: {len(entries)} tensors, {args.dtype} ({src.kind} source, {len(src.files)} file(s)), "
        f"{fmt_bytes(total)} in {nshards} file(s): {fnames[0]}{' ...' if nshards > 1 else ''}")
    log(f"  tokenizer: {tok_msg}" + (f"; also copied {', '.join(copied)}" if copied else ""))
    return 0


def _numel(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _verify_written(tmp, fnames, shards):
    """Re-open every written file with the safetensors library (header, metadata, names)."""
    from safetensors import safe_open
    for fname, plan in zip(fnames, shards):
        with safe_open(os.path.join(tmp, fname), framework="pt") as h:
            if (h.metadata() or {}).get("format") != "pt":
                raise RuntimeError(f"internal: {fname} lacks format=pt metadata")
            if sorted(h.keys()) != sorted(e[0] for e in plan):
                raise RuntimeError(f"internal: {fname} does not list the planned tensors")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="Emotion-LLaMA .pth (LoRA + projectors)")
    ap.add_argument("--llama", required=True, help="Llama-2-7b-chat-hf dir (HF layout)")
    ap.add_argument("--out", required=True, help="mose model dir to write")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float16",
                    help="dtype of the LLaMA weights written (default float16, the dtype of Llama-2-7b-chat-hf "
                         "and of Emotion-LLaMA's LLM)")
    ap.add_argument("--projector-dtype", choices=sorted(DTYPES), default="float32",
                    help="dtype of the projectors written (default float32, as trained)")
    ap.add_argument("--shard-size", default="5GB", help="max bytes per output file, e.g. 5GB, 500MB (default 5GB)")
    ap.add_argument("--lora-alpha", type=float, default=16.0,
                    help="LoRA alpha the checkpoint was trained with (not stored in the .pth; Emotion-LLaMA: 16)")
    ap.add_argument("--force", action="store_true", help="replace an existing --out dir")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="load the .pth with full pickle (weights_only=False); only for checkpoints you trust")
    args = ap.parse_args(argv)
    try:
        return convert(args)
    except ConvertError as e:
        print(f"convert_emotion_llama: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
