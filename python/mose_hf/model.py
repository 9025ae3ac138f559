"""Attaching a mose export to a transformers LLaMA-family model, with forward hooks.

- the embedding: placeholder ids become the projected features (in order, row by row,
  as mose splices them), and every token gets its modality;
- every target linear: y = W0 x + delta(x, modality), the MoSE (or LoRA) delta in float32
  cast to y's dtype, as mose's model.Linear adds it;
- optionally Attention Reallocation, as an attention implementation.

The model's own weights are not touched: `MoseModel.remove()` restores it.
"""
from __future__ import annotations

import contextlib
import json
import os
import re

import torch
from safetensors.torch import load_file

from . import ar as ar_mod
from .config import MOSE_WEIGHTS, PEFT_PREFIX, PEFT_WEIGHTS, ExportError, model_dir_inputs, read_export
from .experts import Mixture
from .inputs import Projector, encode_prompt, model_dir_projectors, token_modality

SUPPORTED = ("llama", "mistral", "qwen2")
TARGET_RE = re.compile(r"^model\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$")


class _State:
    """What the hooks share during one forward."""

    def __init__(self):
        self.features = None  # {input name: (B,N,F) tensor} while a features() block is open
        self.used = set()
        self.attention_mask = None
        self.past = 0
        self.ids = None  # (B,T) input ids of this forward
        self.onehot = None  # (B,T,4) float32 of this forward's tokens
        self.key_hot = None  # (B,past+T,4) float32 of every key (AR)
        self.ar = None


def _past_length(kwargs) -> int:
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    if cache is None:
        return 0
    if hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length())
    raise ValueError("mose_hf: legacy tuple caches are not supported; use transformers' Cache objects")


class MoseModel:
    """A transformers causal LM with a mose export attached. Call it like the model, or
    use generate; pass each modality input's features (B,N,F) as `features={name: tensor}`."""

    def __init__(self, model, export_dir: str, model_dir: str | None = None, ar: ar_mod.AR | None = None):
        self.model, self.export_dir, self.model_dir = model, export_dir, model_dir
        self.cfg = cfg = read_export(export_dir)
        kind = getattr(model.config, "model_type", None)
        if kind not in SUPPORTED:
            raise ExportError(f"model_type {kind!r} is not supported (mose_hf runs the LLaMA family: {', '.join(SUPPORTED)})")
        inner = model.get_submodule("model")
        self.embed = inner.embed_tokens
        self.vocab = self.embed.num_embeddings
        dev = self.embed.weight.device
        side = cfg.sidecar
        path = os.path.join(export_dir, MOSE_WEIGHTS if side else PEFT_WEIGHTS)
        merged = cfg.method == "merged"  # the adapters are in the weights: projectors only
        if merged and model_dir is None:
            self.model_dir = export_dir  # a merged dir is a mose model dir (prompt, inputs)
        tensors = {} if merged else load_file(path, device=str(dev))
        prefix = "" if side else PEFT_PREFIX
        used = set()

        def take(name, shape):
            key = prefix + name
            if key not in tensors:
                raise ExportError(f"{path}: missing tensor {key}")
            t = tensors[key]
            if tuple(t.shape) != tuple(shape):
                raise ExportError(f"{path}: {key} has shape {tuple(t.shape)}, the model wants {tuple(shape)}")
            if not torch.isfinite(t).all():
                raise ExportError(f"{path}: {key} holds NaN or Inf values")
            used.add(key)
            return t

        self.mixtures = {}
        for name, mod in model.named_modules():
            m = TARGET_RE.match(name)
            if not m or m.group(3) not in cfg.targets:
                continue
            out_f, in_f, r = mod.out_features, mod.in_features, cfg.rank
            if cfg.method == "lora":
                A, Bs, gw = [take(name + ".lora_A.weight", (r, in_f))], [[take(name + ".lora_B.weight", (out_f, r))]], [None]
            else:
                A, Bs, gw = [], [], []
                for g in cfg.groups:
                    p = f"{name}.mose.{g.name}."
                    A.append(take(p + "lora_A.weight", (r, in_f)))
                    Bs.append([take(p + f"experts.{k}.lora_B.weight", (out_f, r)) for k in range(g.experts)])
                    gw.append(take(p + "gate.weight", (g.experts, in_f)) if g.experts > 1 else None)
            self.mixtures[name] = (mod, Mixture(name, cfg, A, Bs, gw))
        for t in cfg.targets:
            if not any(n.endswith("." + t) for n in self.mixtures):
                raise ExportError(f"target module {t!r} matches no linear of the model")
        self.inputs = cfg.inputs
        if not cfg.sidecar and not merged and model_dir is not None:
            self.inputs = model_dir_inputs(model_dir)  # a LoRA export without a sidecar: the model dir's inputs
        self.projectors = []
        if self.inputs:
            proj = tensors
            if merged:
                proj = model_dir_projectors(export_dir)  # mose_projectors.safetensors (or the weight files)
            elif not cfg.projectors_trained:
                if model_dir is None:
                    raise ExportError(f"{export_dir}: the projectors were not trained, so they are the model dir's: "
                                      "pass model_dir= (the mose model dir the run trained on)")
                proj = model_dir_projectors(model_dir)
            # mose runs trained projectors in float32, frozen ones (and a merged dir's) in the model's dtype.
            pdt = torch.float32 if cfg.projectors_trained else self.embed.weight.dtype
            self.projectors = [Projector(i, proj, pdt, dev) for i in self.inputs]
            if cfg.projectors_trained:
                used |= {n for p in self.projectors for n in p.names}
        unknown = sorted(set(tensors) - used)
        if unknown:
            raise ExportError(f"{path}: tensor(s) this package does not use: {unknown[:5]}{' ...' if len(unknown) > 5 else ''}")
        self.state = _State()
        self._handles = []
        self._attn_before = None
        self._hook()
        if ar is not None:
            self.set_ar(ar)

    # ---- hooks -------------------------------------------------------------------------
    def _hook(self):
        st = self.state
        inner = self.model.get_submodule("model")

        def model_pre(_mod, args, kwargs):
            st.attention_mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
            st.past = _past_length(kwargs)
            st.onehot = None
            if kwargs.get("inputs_embeds") is not None:
                raise ValueError("mose_hf takes input_ids (the token modalities come from them), not inputs_embeds")

        def embed_pre(_mod, args):  # ids: (B,T) -> (B,T) with placeholders as id 0
            ids = args[0]
            mask = st.attention_mask
            if mask is not None:
                if mask.dim() != 2:
                    raise ValueError("mose_hf: attention_mask must be (B, past+T)")
                mask = mask[:, -ids.shape[1]:]
            mod = token_modality(ids, self.vocab, self.inputs, mask)
            st.onehot = torch.nn.functional.one_hot(mod, 4).float()
            if st.past == 0:
                st.key_hot = st.onehot
            elif st.key_hot is not None and st.key_hot.shape[1] == st.past:
                st.key_hot = torch.cat([st.key_hot, st.onehot], 1)
            else:
                st.key_hot = None
            st.ids = ids
            return (ids.masked_fill(ids >= self.vocab, 0),)

        def embed_post(_mod, _args, x):  # x: (B,T,D) -> (B,T,D), features at the placeholders
            ids = st.ids
            if not bool((ids >= self.vocab).any()):
                return x
            B, T, D = x.shape
            flat = x.reshape(B * T, D).clone()
            for i, (inp, proj) in enumerate(zip(self.inputs, self.projectors)):
                here = ids == self.vocab + i  # (B,T)
                if not bool(here.any()):
                    continue
                f = (st.features or {}).get(inp.name)
                if f is None:
                    raise ValueError(f"the prompt has placeholders of input {inp.name!r} but no features were given for it")
                if f.dim() != 3 or f.shape[0] != B or f.shape[2] != inp.feature_dim:
                    raise ValueError(f"features of {inp.name!r}: shape {tuple(f.shape)}, want ({B}, N, {inp.feature_dim})")
                per_row = here.sum(1)
                if bool((per_row != f.shape[1]).any()):
                    raise ValueError(f"input {inp.name!r}: {per_row.tolist()} placeholder tokens per row for {f.shape[1]} feature tokens")
                p = proj(f.to(x.device)).reshape(-1, D).to(x.dtype)  # (B*N,D), row by row as the placeholders
                flat = flat.index_copy(0, here.reshape(-1).nonzero().squeeze(1), p)
                st.used.add(inp.name)
            return flat.view(B, T, D)

        def linear_post(mix):
            def hook(_mod, args, y):  # x = args[0]: (B,T,in), y: (B,T,out) -> (B,T,out)
                if st.onehot is None:
                    raise RuntimeError("mose_hf: a target linear ran outside a forward from input_ids")
                d = mix.delta(args[0], st.onehot)
                return y + (d if d.dtype == y.dtype else d.to(y.dtype))
            return hook

        self._handles.append(inner.register_forward_pre_hook(model_pre, with_kwargs=True))
        self._handles.append(self.embed.register_forward_pre_hook(embed_pre))
        self._handles.append(self.embed.register_forward_hook(embed_post))
        for mod, mix in self.mixtures.values():
            self._handles.append(mod.register_forward_hook(linear_post(mix)))

    def remove(self):
        """Detach everything: the model computes as it did before."""
        self.set_ar(None)
        for h in self._handles:
            h.remove()
        self._handles = []

    # ---- AR ----------------------------------------------------------------------------
    def set_ar(self, ar: ar_mod.AR | None):
        """Turn Attention Reallocation on (an AR) or off (None)."""
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        if ar is None:
            if self._attn_before is not None:
                self.model.set_attn_implementation(self._attn_before)
                self._attn_before = None
            self.state.ar = None
            return
        self.state.ar = ar.resolve(self.model.config.num_hidden_layers)
        name = f"{ar_mod.NAME}_{id(self)}"  # the registry is global: one name per attached model
        AttentionInterface.register(name, ar_mod.make_attention(self.state))
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, sdpa_mask)  # boolean masks, None when plain causal
        if self._attn_before is None:
            self._attn_before = self.model.config._attn_implementation
        self.model.set_attn_implementation(name)

    # ---- inputs ------------------------------------------------------------------------
    def placeholder_id(self, name: str) -> int:
        """The id of input `name`'s feature tokens in a prompt."""
        for i, inp in enumerate(self.inputs):
            if inp.name == name:
                return self.vocab + i
        raise KeyError(f"no modality input {name!r} (have {[i.name for i in self.inputs]})")

    def encode_prompt(self, tokenizer, subtitle: str = "", model_dir: str | None = None) -> torch.Tensor:
        """(1,T) prompt ids as mose builds them, from the "mose" section of the model dir's config.json."""
        d = model_dir or self.model_dir
        if d is None:
            raise ValueError("encode_prompt needs the mose model dir (its config.json holds the prompt template)")
        with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
            spec = json.load(f).get("mose")
        if not spec:
            raise ExportError(f"{d}/config.json has no \"mose\" section")
        return torch.tensor([encode_prompt(tokenizer, spec, subtitle, self.vocab)], device=self.embed.weight.device)

    @contextlib.contextmanager
    def features(self, feats: dict):
        """Within the block, the model splices these features at their placeholders."""
        unknown = set(feats) - {i.name for i in self.inputs}
        if unknown:
            raise KeyError(f"features for unknown input(s) {sorted(unknown)} (have {[i.name for i in self.inputs]})")
        self.state.features, self.state.used = dict(feats), set()
        try:
            yield self
            unused = set(feats) - self.state.used
            if unused:
                raise ValueError(f"features of {sorted(unused)} were given but the prompt has no placeholders for them")
        finally:
            self.state.features = None

    def __call__(self, input_ids, features: dict | None = None, **kwargs):
        with self.features(features or {}):
            return self.model(input_ids=input_ids, **kwargs)

    def generate(self, input_ids, features: dict | None = None, **kwargs):
        """transformers' generate with the features spliced in at the prompt's placeholders."""
        with self.features(features or {}):
            return self.model.generate(input_ids=input_ids, **kwargs)


def load(model, export_dir: str, model_dir: str | None = None, ar: ar_mod.AR | None = None) -> MoseModel:
    """Attach the mose export in export_dir to a transformers LLaMA-family causal LM (loaded
    from the base model, in the dtype the run used). model_dir is the mose model dir the run
    trained on: needed when the projectors were not trained, and for encode_prompt."""
    return MoseModel(model, export_dir, model_dir, ar)
