#!/usr/bin/env python3
"""Tests for scripts/convert/convert_emotion_llama.py on a miniature fake Emotion-LLaMA.

    "$(scripts/setup/pyenv.sh)" scripts/convert/test_convert_emotion_llama.py [--no-go] [-q]

Builds, in a temp dir:
  * a tiny random LlamaForCausalLM (hidden 64, 2 layers, 4 heads, vocab of the LLaMA-2-style
    tokenizer in data/tokenizer/testdata/llama2) saved twice: as sharded safetensors with an
    index (like Llama-2-7b-chat-hf), and as a single legacy-format pytorch_model.bin that also
    holds rotary_emb.inv_freq buffers (like the old LLaMA .bin files);
  * a fake Emotion-LLaMA runner checkpoint {"model": state_dict, "optimizer": ..., "config": ...}
    with the real key names and small shapes: peft-0.2 LoRA (r=4, random non-zero A and B) on
    q_proj/v_proj of both layers, the five projectors (feature dims 24/12/12/12/16 -> 64), and
    an extra trainable head (attention.*) that the converter must ignore.

Then runs the converter and checks the output dir (config + mose section, tensor names,
safetensors metadata, index, projectors, dtype casts), that the merged model's logits equal
an unmerged computation (the base model with the LoRA applied on the fly by PEFT) within
1e-5 in float32, and that bad inputs exit 2 and leave nothing behind. If the Go binary
builds (or $MOSE_BIN names one), it also loads the converted dirs with `mose model-info`
and compares its logits with the same PEFT reference (tolerance 1e-4, as
scripts/checks/check_model_dir.py). Exit code 0 when every test passes, 1 otherwise.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERTER = os.path.join(ROOT, "scripts", "convert", "convert_emotion_llama.py")
TOKENIZER = os.path.join(ROOT, "data", "tokenizer", "testdata", "llama2", "tokenizer.json")

HIDDEN, LAYERS, HEADS, INTER = 64, 2, 4, 176
R, ALPHA = 4, 16.0
SCALE = ALPHA / R
# Emotion-LLaMA module -> (mose input, feature dim of the fake)
FAKE_PROJ = {
    "llama_proj": ("eva_patches", 24),
    "feats_llama_proj1": ("face_mae", 12),
    "feats_llama_proj2": ("video_mae", 12),
    "feats_llama_proj3": ("hubert", 12),
    "cls_tk_llama_proj": ("eva_cls", 16),
}
LORA_KEY = "llama_model.base_model.model.model.layers.{i}.self_attn.{m}_proj.lora_{ab}.weight"
TEXT = "The person in video says: I walked home and then smiled."

S = {}  # shared fixtures, built once in setUpModule
GO_SKIP = []  # reason the Go checks are skipped, if any


def say(msg):
    print("    " + msg, flush=True)


def run_converter(*args):
    p = subprocess.run([sys.executable, CONVERTER, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def read_st(path):
    """{name: tensor}, metadata of one safetensors file."""
    from safetensors import safe_open
    out = {}
    with safe_open(path, framework="pt") as h:
        meta = h.metadata()
        for k in h.keys():
            out[k] = h.get_tensor(k)
    return out, meta


def read_dir(d):
    """All tensors of a mose dir, checking the index when there is one; returns (tensors, files)."""
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.isfile(idx):
        with open(idx) as fh:
            index = json.load(fh)
        files = sorted(set(index["weight_map"].values()))
    else:
        index, files = None, ["model.safetensors"]
    tensors = {}
    for f in files:
        t, meta = read_st(os.path.join(d, f))
        assert meta == {"format": "pt"}, f"{f}: metadata {meta}"
        if index is not None:
            for k in t:
                assert index["weight_map"][k] == f, f"{k} is in {f} but the index says {index['weight_map'][k]}"
        assert not (t.keys() & tensors.keys()), f"{f} repeats tensors"
        tensors.update(t)
    if index is not None:
        assert set(index["weight_map"]) == set(tensors), "index weight_map != tensors in the files"
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        assert index["metadata"]["total_size"] == total, (index["metadata"], total)
    return tensors, files


def fake_checkpoint(gen, lora_std=0.1):
    sd = {}
    for i in range(LAYERS):
        for m in ("q", "v"):
            sd[LORA_KEY.format(i=i, m=m, ab="A")] = torch.randn(R, HIDDEN, generator=gen) * lora_std
            sd[LORA_KEY.format(i=i, m=m, ab="B")] = torch.randn(HIDDEN, R, generator=gen) * lora_std
    for mod, (_, fdim) in FAKE_PROJ.items():
        sd[mod + ".weight"] = torch.randn(HIDDEN, fdim, generator=gen) * 0.05
        sd[mod + ".bias"] = torch.randn(HIDDEN, generator=gen) * 0.05
    # MiniGPTBase.attention (an auxiliary classifier) is trainable, so it is saved too.
    sd["attention.fc_out.weight"] = torch.randn(6, 128, generator=gen)
    sd["attention.fc_out.bias"] = torch.randn(6, generator=gen)
    return sd


def save_runner_ckpt(path, sd):
    """Like minigpt4 runner_base._save_checkpoint."""
    torch.save({"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5, "betas": (0.9, 0.999)}]},
                "config": {"model": {"arch": "minigpt_v2", "lora_r": R, "lora_alpha": int(ALPHA)}},
                "scaler": None, "epoch": 3}, path)


def peft_reference(llama_dir, sd, ids):
    """Logits of the base model with the checkpoint's LoRA applied unmerged, by PEFT."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM
    base = LlamaForCausalLM.from_pretrained(llama_dir, dtype=torch.float32, attn_implementation="eager")
    model = get_peft_model(base, LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0,
                                            target_modules=["q_proj", "v_proj"], bias="none"))
    params = dict(model.named_parameters())
    n = 0
    for k, v in sd.items():
        if ".lora_" not in k:
            continue
        # llama_model.base_model.model.X.lora_A.weight -> base_model.model.X.lora_A.default.weight
        name = k[len("llama_model."):].replace(".weight", ".default.weight")
        with torch.no_grad():
            params[name].copy_(v)
        n += 1
    assert n == sum(1 for p in params if ".lora_" in p) == 4 * LAYERS, n
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def hf_logits(d, ids):
    from transformers import LlamaForCausalLM
    m = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    with torch.no_grad():
        return m(torch.tensor([ids])).logits[0]


def setUpModule():
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    tmp = S["tmp"] = tempfile.mkdtemp(prefix="test-convert-emotion-llama-")
    tok = Tokenizer.from_file(TOKENIZER)
    vocab = tok.get_vocab_size()
    S["ids"] = tok.encode(TEXT).ids
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                      num_attention_heads=HEADS, num_key_value_heads=HEADS, max_position_embeddings=256,
                      rms_norm_eps=1e-5, initializer_range=0.1, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, dtype="float32")
    model = LlamaForCausalLM(cfg).eval()

    # Source 1: sharded safetensors + index, tokenizer.json.
    st = S["llama_st"] = os.path.join(tmp, "llama-st")
    model.save_pretrained(st, safe_serialization=True, max_shard_size="200KB")
    shutil.copyfile(TOKENIZER, os.path.join(st, "tokenizer.json"))
    # Source 2: one legacy-format pytorch_model.bin with rotary_emb.inv_freq buffers.
    bn = S["llama_bin"] = os.path.join(tmp, "llama-bin")
    os.makedirs(bn)
    shutil.copyfile(os.path.join(st, "config.json"), os.path.join(bn, "config.json"))
    shutil.copyfile(TOKENIZER, os.path.join(bn, "tokenizer.json"))
    sd = dict(model.state_dict())
    for i in range(LAYERS):
        sd[f"model.layers.{i}.self_attn.rotary_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, 16, 2).float() / 16))
    torch.save(sd, os.path.join(bn, "pytorch_model.bin"), _use_new_zipfile_serialization=False)
    S["base_sd"] = {k: v.clone() for k, v in model.state_dict().items()}

    gen = torch.Generator().manual_seed(1)
    S["ckpt_sd"] = fake_checkpoint(gen)
    S["ckpt"] = os.path.join(tmp, "emotion-llama.pth")
    save_runner_ckpt(S["ckpt"], S["ckpt_sd"])
    S["ref"] = peft_reference(st, S["ckpt_sd"], S["ids"])
    S["base_logits"] = hf_logits(st, S["ids"])
    print(f"fixtures in {tmp}: vocab {vocab}, {len(os.listdir(st))} files in llama-st, "
          f"{len(S['ckpt_sd'])} checkpoint tensors, ids {S['ids']}", flush=True)


def tearDownModule():
    if os.environ.get("KEEP_TMP"):
        print(f"kept {S['tmp']}")
    else:
        shutil.rmtree(S["tmp"], ignore_errors=True)


def convert_ok(tc, out, *extra, llama=None, ckpt=None):
    code, stdout, stderr = run_converter("--checkpoint", ckpt or S["ckpt"], "--llama", llama or S["llama_st"],
                                         "--out", out, *extra)
    tc.assertEqual(code, 0, f"converter failed:\n{stdout}\n{stderr}")
    return stdout


class TestConvert(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out32 = os.path.join(S["tmp"], "out-f32")
        cls.stdout32 = None

    def f32(self):
        """The float32, sharded conversion (built once)."""
        if TestConvert.stdout32 is None:
            TestConvert.stdout32 = convert_ok(self, self.out32, "--dtype", "float32", "--shard-size", "100KB")
        return self.out32, TestConvert.stdout32

    def test_1_layout_config_and_names(self):
        out, stdout = self.f32()
        tensors, files = read_dir(out)
        self.assertGreater(len(files), 1)
        n = len(files)
        self.assertEqual(files, [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)])
        say(f"{n} shards named model-0000k-of-{n:05d}.safetensors, index weight_map and total_size consistent, "
            "every file has metadata {'format': 'pt'}")
        want = set(S["base_sd"]) | {f"projectors.{name}.{p}" for name, _ in FAKE_PROJ.values() for p in ("weight", "bias")}
        self.assertEqual(set(tensors), want)
        say(f"tensor names = HF LlamaForCausalLM state_dict keys + 10 projector keys ({len(want)} tensors)")

        with open(os.path.join(out, "config.json")) as fh:
            cfg = json.load(fh)
        with open(os.path.join(S["llama_st"], "config.json")) as fh:
            src = json.load(fh)
        for k, v in src.items():
            if k != "torch_dtype":
                self.assertEqual(cfg[k], v, k)
        self.assertEqual(cfg["torch_dtype"], "float32")
        mose = cfg["mose"]
        self.assertEqual([(i["name"], i["modality"], i["feature_dim"], i["tokens"], i["projector"], i["placeholder"])
                          for i in mose["inputs"]],
                         [("eva_patches", "visual", 24, 256, "linear", "<VideoHere>"),
                          ("face_mae", "visual", 12, 1, "linear", "<FeatureHere>"),
                          ("video_mae", "visual", 12, 1, "linear", "<FeatureHere>"),
                          ("hubert", "audio", 12, 1, "linear", "<FeatureHere>"),
                          ("eva_cls", "visual", 16, 1, "linear", "<FeatureHere>")])
        self.assertEqual(mose["labels"], ["happy", "sad", "neutral", "angry", "worried", "surprise", "fear",
                                          "contempt", "doubt"])
        self.assertEqual(mose["prompt"]["answer"], "{label}</s>")
        self.assertTrue(mose["prompt"]["template"].startswith("<s>[INST] <video><VideoHere></video> "
                                                              "<feature><FeatureHere></feature> The person"))
        for ph in ("{subtitle}", "{labels}", "[/INST]"):
            self.assertIn(ph, mose["prompt"]["template"])
        say("config.json = source LlamaConfig keys + torch_dtype float32 + mose section "
            "(5 inputs in Emotion-LLaMA order with the fake's dims 24/12/12/12/16, prompt, 9 labels)")
        with open(TOKENIZER, "rb") as a, open(os.path.join(out, "tokenizer.json"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        say("tokenizer.json copied byte for byte")
        for needle in ("LoRA merged: 4 weights in 2 layers (q_proj, v_proj), r=4, alpha=16, scale alpha/r=4",
                       "llama_proj         -> projectors.eva_patches: 24 -> 64",
                       "2  attention.*"):
            self.assertIn(needle, stdout)
        say("summary reports the merge (r=4, alpha=16), the projectors and the 2 ignored attention.* keys")

    def test_2_logits_equal_unmerged_peft(self):
        out, _ = self.f32()
        got = hf_logits(out, S["ids"])
        diff = (got - S["ref"]).abs().max().item()
        effect = (S["ref"] - S["base_logits"]).abs().max().item()
        say(f"transformers on the merged dir vs base + PEFT LoRA (unmerged) on {len(S['ids'])} ids: "
            f"max |diff| = {diff:.2e} (LoRA moves the logits by up to {effect:.2e})")
        self.assertLessEqual(diff, 1e-5)
        self.assertGreater(effect, 1e-2, "the fake LoRA barely changes the logits: the test would be vacuous")

    def test_3_weights_and_projectors(self):
        out, _ = self.f32()
        tensors, _ = read_dir(out)
        ck, base = S["ckpt_sd"], S["base_sd"]
        for name, t in base.items():
            got = tensors[name]
            self.assertEqual(got.dtype, torch.float32)
            m = next((m for m in ("q", "v") if f"self_attn.{m}_proj.weight" in name), None)
            if m is None:
                self.assertTrue(torch.equal(got, t), name)
                continue
            i = int(name.split(".")[2])
            a, b = ck[LORA_KEY.format(i=i, m=m, ab="A")], ck[LORA_KEY.format(i=i, m=m, ab="B")]
            self.assertTrue(torch.allclose(got, t + SCALE * (b @ a), atol=1e-6, rtol=0), name)
            self.assertFalse(torch.allclose(got, t, atol=1e-3), name)
        say("q_proj/v_proj = W0 + (16/4)·B·A; every other LLaMA tensor unchanged")
        for mod, (name, _) in FAKE_PROJ.items():
            for p in ("weight", "bias"):
                got = tensors[f"projectors.{name}.{p}"]
                self.assertEqual(got.dtype, torch.float32)
                self.assertTrue(torch.equal(got, ck[f"{mod}.{p}"]), f"{mod}.{p}")
        say("projectors carried over exactly (llama_proj -> eva_patches, feats_llama_proj1/2/3 -> "
            "face_mae/video_mae/hubert, cls_tk_llama_proj -> eva_cls)")

    def test_4_dtype_casts(self):
        ref, _ = read_dir(self.f32()[0])
        for extra, dt, pdt in (([], torch.float16, torch.float32),
                               (["--dtype", "bfloat16", "--projector-dtype", "bfloat16"], torch.bfloat16,
                                torch.bfloat16)):
            out = os.path.join(S["tmp"], f"out-{str(dt).split('.')[-1]}")
            convert_ok(self, out, *extra)
            tensors, files = read_dir(out)
            self.assertEqual(files, ["model.safetensors"])
            self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors.index.json")))
            for k, t in tensors.items():
                want = pdt if k.startswith("projectors.") else dt
                self.assertEqual(t.dtype, want, k)
                self.assertTrue(torch.equal(t, ref[k].to(want)), k)
            with open(os.path.join(out, "config.json")) as fh:
                self.assertEqual(json.load(fh)["torch_dtype"], str(dt).split(".")[-1])
            say(f"{' '.join(extra) or '(defaults)'}: one model.safetensors, no index; LLaMA tensors {dt}, "
                f"projectors {pdt}, each equal to the float32 result cast")

    def test_5_bin_source_and_raw_state_dict(self):
        ckpt = os.path.join(S["tmp"], "raw-state-dict.pth")
        sd = dict(S["ckpt_sd"])
        sd["llama_model.base_model.model.lm_head.weight"] = torch.zeros(3, 3)  # a full checkpoint's base weight
        torch.save(sd, ckpt)
        out = os.path.join(S["tmp"], "out-bin")
        stdout = convert_ok(self, out, "--dtype", "float32", llama=S["llama_bin"], ckpt=ckpt)
        got, _ = read_dir(out)
        ref, _ = read_dir(self.f32()[0])
        self.assertEqual(set(got), set(ref))
        for k in ref:
            self.assertTrue(torch.equal(got[k], ref[k]), k)
        self.assertIn("dropped 2 rotary_emb.inv_freq", stdout)
        self.assertIn("1  llama_model.* base weights", stdout)
        say("legacy pytorch_model.bin source + bare state dict: same tensors as the safetensors run; "
            "inv_freq buffers dropped, the stray llama_model base weight reported as ignored")

    def bad(self, sd=None, expect=(), llama=None, ckpt=None, extra=()):
        parent = tempfile.mkdtemp(dir=S["tmp"], prefix="bad-")
        if sd is not None:
            ckpt = os.path.join(parent, "bad.pth")
            save_runner_ckpt(ckpt, sd)
            before = ["bad.pth"]
        else:
            before = []
        out = os.path.join(parent, "out")
        code, stdout, stderr = run_converter("--checkpoint", ckpt or S["ckpt"], "--llama", llama or S["llama_st"],
                                             "--out", out, *extra)
        self.assertEqual(code, 2, f"want exit 2:\n{stdout}\n{stderr}")
        for e in expect:
            self.assertIn(e, stderr)
        self.assertEqual(sorted(os.listdir(parent)), before, "the converter left files behind")
        return stderr.strip().splitlines()[-1]

    def test_6_bad_inputs_exit_2_and_leave_nothing(self):
        ck = S["ckpt_sd"]
        q0a, q0b = LORA_KEY.format(i=0, m="q", ab="A"), LORA_KEY.format(i=0, m="q", ab="B")
        cases = []
        sd = {k: v for k, v in ck.items() if k != "feats_llama_proj3.bias"}
        cases.append(("missing projector", dict(sd=sd, expect=["feats_llama_proj3.bias"])))
        sd = dict(ck)
        sd[q0b] = torch.randn(HIDDEN - 1, R)
        cases.append(("LoRA shape mismatch", dict(sd=sd, expect=["model.layers.0.self_attn.q_proj.weight",
                                                                 "[63, 64]", "[64, 64]"])))
        sd = dict(ck)
        sd[q0a.replace("lora_A", "lora_B")] = torch.randn(HIDDEN, R + 1)
        cases.append(("LoRA A/B ranks differ", dict(sd=sd, expect=["[4, 64]", "[64, 5]"])))
        sd = dict(ck)
        sd[LORA_KEY.format(i=5, m="q", ab="A")] = torch.randn(R, HIDDEN)
        sd[LORA_KEY.format(i=5, m="q", ab="B")] = torch.randn(HIDDEN, R)
        cases.append(("LoRA for a layer the LLaMA lacks", dict(sd=sd, expect=["model.layers.5.self_attn.q_proj.weight"])))
        sd = dict(ck)
        sd[q0a.replace("q_proj", "qkv_proj")] = torch.randn(R, HIDDEN)
        sd[q0b.replace("q_proj", "qkv_proj")] = torch.randn(HIDDEN, R)
        cases.append(("LoRA for a module the LLaMA lacks", dict(sd=sd, expect=["self_attn.qkv_proj.weight"])))
        sd = {k: v for k, v in ck.items() if k != q0b}
        cases.append(("LoRA A without B", dict(sd=sd, expect=["lora_B is missing"])))
        sd = dict(ck)
        sd["llama_proj.weight"] = torch.randn(HIDDEN - 1, 24)
        cases.append(("projector hidden size", dict(sd=sd, expect=["llama_proj.weight", "[63, 24]"])))
        sd = dict(ck)
        sd[q0a] = ck[q0a].clone()
        sd[q0a][0, 0] = float("nan")
        cases.append(("NaN in the LoRA", dict(sd=sd, expect=["non-finite"])))
        sd = dict(ck)
        sd[q0b] = torch.full((HIDDEN, R), 1e3)
        sd[q0a] = torch.full((R, HIDDEN), 1e3)
        cases.append(("float16 overflow of the merge", dict(sd=sd, expect=["model.layers.0.self_attn.q_proj.weight",
                                                                             "non-finite", "float16"])))
        cases.append(("no LoRA at all", dict(sd={k: v for k, v in ck.items() if ".lora_" not in k},
                                             expect=["no LoRA keys"])))
        cases.append(("missing checkpoint", dict(ckpt=os.path.join(S["tmp"], "nope.pth"), expect=["no such file"])))
        empty = os.path.join(S["tmp"], "llama-empty")
        os.makedirs(empty, exist_ok=True)
        shutil.copyfile(os.path.join(S["llama_st"], "config.json"), os.path.join(empty, "config.json"))
        cases.append(("LLaMA dir without weights", dict(llama=empty, expect=["no weights found"])))
        broken = os.path.join(S["tmp"], "llama-missing-shard")
        if not os.path.isdir(broken):
            shutil.copytree(S["llama_st"], broken)
            os.remove(os.path.join(broken, sorted(f for f in os.listdir(broken) if f.endswith(".safetensors"))[-1]))
        cases.append(("LLaMA shard missing", dict(llama=broken, expect=["missing"])))
        notok = os.path.join(S["tmp"], "llama-no-tokenizer")
        if not os.path.isdir(notok):
            shutil.copytree(S["llama_st"], notok)
            os.remove(os.path.join(notok, "tokenizer.json"))
        cases.append(("LLaMA dir without a tokenizer", dict(llama=notok, expect=["tokenizer"])))
        cases.append(("bad --shard-size", dict(extra=["--shard-size", "lots"], expect=["--shard-size"])))
        for name, kw in cases:
            with self.subTest(name):
                msg = self.bad(**kw)
                say(f"{name}: exit 2, nothing left; {msg[:150]}")

    def test_7_existing_out_and_force(self):
        out = os.path.join(S["tmp"], "out-existing")
        os.makedirs(out)
        with open(os.path.join(out, "sentinel"), "w") as fh:
            fh.write("x")
        code, _, stderr = run_converter("--checkpoint", S["ckpt"], "--llama", S["llama_st"], "--out", out)
        self.assertEqual(code, 2)
        self.assertIn("--force", stderr)
        self.assertEqual(os.listdir(out), ["sentinel"])
        say("existing --out without --force: exit 2, dir untouched")
        convert_ok(self, out, "--force")
        self.assertFalse(os.path.exists(os.path.join(out, "sentinel")))
        self.assertTrue(os.path.isfile(os.path.join(out, "config.json")))
        self.assertEqual(sorted(f for f in os.listdir(S["tmp"]) if f.startswith(".out-existing")), [])
        say("--force replaces it, no temp dirs left next to it")


class TestGoLoader(unittest.TestCase):
    """The Go loader accepts the converted dirs and computes the same logits."""

    @classmethod
    def setUpClass(cls):
        cls.bin = os.environ.get("MOSE_BIN")
        if GO_SKIP:
            raise unittest.SkipTest(GO_SKIP[0])
        if not cls.bin:
            cls.bin = os.path.join(S["tmp"], "mose")
            try:
                p = subprocess.run(["go", "build", "-o", cls.bin, "./cmd/mose"], cwd=ROOT, capture_output=True,
                                   text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise unittest.SkipTest(f"go build failed: {e}")
            if p.returncode != 0:
                raise unittest.SkipTest("go build ./cmd/mose failed (Go code in flux?): " +
                                        " | ".join(p.stderr.strip().splitlines()[-3:]))

    def model_info(self, d, *extra):
        p = subprocess.run([self.bin, "model-info", "--model", d, *extra], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, f"mose model-info --model {d} failed:\n{p.stdout}\n{p.stderr}")
        return p.stdout

    def test_go_model_info(self):
        out = os.path.join(S["tmp"], "out-f32")
        if not os.path.isdir(out):
            convert_ok(self, out, "--dtype", "float32", "--shard-size", "100KB")
        logits = os.path.join(S["tmp"], "go-logits.safetensors")
        stdout = self.model_info(out, "--text", TEXT, "--logits-out", logits)
        for name, _ in FAKE_PROJ.values():
            self.assertIn(f"projector {name}: linear", stdout)
        got, _ = read_st(logits)
        ids = got["input_ids"][0].tolist()
        self.assertEqual(ids, S["ids"], "mose and HF tokenizers disagree on the ids")
        diff = (got["logits"][0] - S["ref"]).abs().max().item()
        say(f"mose model-info on the float32 dir: 5 projectors listed, same ids as HF tokenizers, "
            f"max |logit(mose) - logit(base + PEFT LoRA)| = {diff:.2e}")
        self.assertLessEqual(diff, 1e-4)
        f16 = os.path.join(S["tmp"], "out-float16")
        if not os.path.isdir(f16):
            convert_ok(self, f16)
        first = self.model_info(f16).splitlines()[0]
        say(f"mose model-info on the default (float16 + float32 projectors) dir: {first[:110]}")


def main():
    argv = [a for a in sys.argv[1:] if a != "--no-go"]
    if "--no-go" in sys.argv:
        GO_SKIP.append("--no-go")
    verbosity = 1 if "-q" in argv else 2
    argv = [a for a in argv if a != "-q"]
    prog = unittest.main(module=__name__, argv=[sys.argv[0], *argv], exit=False, verbosity=verbosity)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
