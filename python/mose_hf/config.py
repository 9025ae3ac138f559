"""Reading a mose export: mose_config.json and adapter_config.json, checked strictly.

Every field mose writes must be present; unknown fields and values mose would not
produce are refused by name (ExportError), never defaulted: a missing modality
weight or a scaling that disagrees with rank and alpha changes the math.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

MOSE_CONFIG = "mose_config.json"
MOSE_WEIGHTS = "mose_adapter.safetensors"
PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."

TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MODALITY_IDS = {"text": 0, "visual": 1, "audio": 2, "pad": 3}
# The fixed routing of mose's groups (docs/method.md): visual tokens to `visual`,
# text and audio to `nonvisual`, every non-pad token to `omni`.
ROUTES = {"visual": ["visual"], "nonvisual": ["text", "audio"], "omni": ["text", "visual", "audio"]}
GROUP_ORDER = ("visual", "nonvisual", "omni")
MAX_JSON = 16 << 20


class ExportError(ValueError):
    """A mose export this package will not run: the message names the file and field."""


@dataclass
class Group:
    name: str
    experts: int


@dataclass
class Input:
    """One modality input of the model (the sidecar's modality_inputs)."""

    name: str
    modality: str  # "visual" or "audio"
    feature_dim: int
    tokens: int
    projector: str  # "linear" or "mlp2"
    placeholder: str


@dataclass
class ExportConfig:
    """What the adapters compute, from the export's config files."""

    method: str  # "mose" or "lora"
    rank: int
    alpha: float
    rslora: bool
    scaling: float
    targets: list
    groups: list = field(default_factory=list)
    top_k: int = 0
    temperature: float = 1.0
    w_visual: float = 1.0
    w_nonvisual: float = 1.0
    inputs: list = field(default_factory=list)
    projectors_trained: bool = False
    sidecar: bool = False  # mose_adapter.safetensors holds the adapters


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise ExportError(f"{path}: not found")
    if os.path.getsize(path) > MAX_JSON:
        raise ExportError(f"{path}: larger than {MAX_JSON} bytes")

    def no_repeats(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise ExportError(f"{path}: key {k!r} repeated")
            d[k] = v
        return d

    with open(path, encoding="utf-8") as f:
        try:
            v = json.load(f, object_pairs_hook=no_repeats)
        except json.JSONDecodeError as e:
            raise ExportError(f"{path}: {e}") from None
    if not isinstance(v, dict):
        raise ExportError(f"{path}: not a JSON object")
    return v


def _num(path, key, v, lo=None, integer=False):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok and integer:
        ok = float(v).is_integer()
    if not ok or (lo is not None and not v > lo):
        want = "an integer" if integer else "a finite number"
        raise ExportError(f"{path}: {key}: {v!r}, want {want}" + (f" > {lo}" if lo is not None else ""))
    return int(v) if integer else float(v)


def scaling_of(rank: int, alpha: float, rslora: bool) -> float:
    """s = alpha/r, or alpha/sqrt(r) with rsLoRA (mose's experts.Config.Scaling)."""
    return alpha / math.sqrt(rank) if rslora else alpha / rank


def read_peft_config(path: str) -> dict:
    """adapter_config.json, refusing what mose's export never writes and would change the math."""
    pc = _read_json(path)
    for key, ok in [("peft_type", pc.get("peft_type") == "LORA"), ("use_dora", not pc.get("use_dora")),
                    ("bias", pc.get("bias", "none") in ("none", None)), ("fan_in_fan_out", not pc.get("fan_in_fan_out")),
                    ("layers_to_transform", not pc.get("layers_to_transform")), ("rank_pattern", not pc.get("rank_pattern")),
                    ("alpha_pattern", not pc.get("alpha_pattern")), ("modules_to_save", not pc.get("modules_to_save"))]:
        if not ok:
            raise ExportError(f"{path}: {key}: {pc.get(key)!r} is not supported (a mose export is plain LoRA)")
    for key in ("r", "lora_alpha", "use_rslora", "target_modules"):
        if key not in pc or pc[key] is None:
            raise ExportError(f"{path}: {key}: missing")
    _num(path, "r", pc["r"], 0, integer=True)
    _num(path, "lora_alpha", pc["lora_alpha"], 0)
    return pc


def _inputs(path: str, raw) -> list:
    if not isinstance(raw, list):
        raise ExportError(f"{path}: modality_inputs: want a list, got {raw!r}")
    out = []
    for i, d in enumerate(raw):
        key = f"modality_inputs[{i}]"
        if not isinstance(d, dict):
            raise ExportError(f"{path}: {key}: want an object")
        unknown = set(d) - {"name", "modality", "feature_dim", "tokens", "projector", "placeholder"}
        if unknown:
            raise ExportError(f"{path}: {key}: unknown field(s) {sorted(unknown)}")
        for k in ("name", "modality", "feature_dim", "tokens", "placeholder"):
            if d.get(k) is None:
                raise ExportError(f"{path}: {key}.{k}: missing")
        if d["modality"] not in ("visual", "audio"):
            raise ExportError(f"{path}: {key}.modality: {d['modality']!r}, want visual or audio")
        proj = d.get("projector") or "linear"
        if proj not in ("linear", "mlp2"):
            raise ExportError(f"{path}: {key}.projector: {proj!r}, want linear or mlp2")
        out.append(Input(d["name"], d["modality"], _num(path, key + ".feature_dim", d["feature_dim"], 0, True),
                         _num(path, key + ".tokens", d["tokens"], 0, True), proj, d["placeholder"]))
    if len({i.name for i in out}) != len(out):
        raise ExportError(f"{path}: modality_inputs: repeated input names")
    return out


MOSE_FIELDS = ("format_version", "method", "rank", "alpha", "rslora", "scaling", "target_modules", "groups", "gate",
               "modality_weights", "modality_ids", "modality_inputs", "peft_part", "projectors_trained", "tensor_names")


def read_mose_config(path: str) -> ExportConfig:
    """mose_config.json: every field present and not null, nothing unknown, values as mose writes them."""
    mc = _read_json(path)
    unknown = sorted(set(mc) - set(MOSE_FIELDS))
    if unknown:
        raise ExportError(f"{path}: unknown field(s) {unknown}")
    for k in MOSE_FIELDS:
        if mc.get(k) is None:
            raise ExportError(f"{path}: {k}: missing or null")
    if mc["format_version"] != 1:
        raise ExportError(f"{path}: format_version: {mc['format_version']!r} is not a version this package reads (1)")
    if mc["method"] not in ("mose", "lora"):
        raise ExportError(f"{path}: method: {mc['method']!r}, want mose or lora")
    rank = _num(path, "rank", mc["rank"], 0, integer=True)
    alpha = _num(path, "alpha", mc["alpha"], 0)
    if not isinstance(mc["rslora"], bool):
        raise ExportError(f"{path}: rslora: want true or false")
    scaling = _num(path, "scaling", mc["scaling"])
    want = scaling_of(rank, alpha, mc["rslora"])
    if abs(scaling - want) > 1e-12 * max(1.0, abs(want)):
        raise ExportError(f"{path}: scaling: {scaling!r}, but rank {rank}, alpha {alpha:g} and rslora {mc['rslora']} give {want!r}")
    targets = mc["target_modules"]
    if not isinstance(targets, list) or not targets or any(t not in TARGET_MODULES for t in targets):
        raise ExportError(f"{path}: target_modules: {targets!r}, want a non-empty list of {', '.join(TARGET_MODULES)}")
    cfg = ExportConfig(method=mc["method"], rank=rank, alpha=alpha, rslora=mc["rslora"], scaling=scaling,
                       targets=list(targets), sidecar=True)
    groups = mc["groups"]
    if not isinstance(groups, list) or not groups:
        raise ExportError(f"{path}: groups: want a non-empty list")
    for i, g in enumerate(groups):
        key = f"groups[{i}]"
        if not isinstance(g, dict) or set(g) != {"name", "experts", "modalities", "gated"}:
            raise ExportError(f"{path}: {key}: want an object with name, experts, modalities, gated")
        if g["name"] not in ROUTES:
            raise ExportError(f"{path}: {key}.name: {g['name']!r}, want one of {', '.join(GROUP_ORDER)}")
        k = _num(path, key + ".experts", g["experts"], 0, integer=True)
        if g["modalities"] != ROUTES[g["name"]]:
            raise ExportError(f"{path}: {key}.modalities: {g['modalities']!r}; mose routes {ROUTES[g['name']]} to {g['name']}")
        if g["gated"] is not (k > 1):
            raise ExportError(f"{path}: {key}.gated: {g['gated']!r} with {k} expert(s)")
        cfg.groups.append(Group(g["name"], k))
    names = [g.name for g in cfg.groups]
    if names != [n for n in GROUP_ORDER if n in names]:
        raise ExportError(f"{path}: groups: {names}, want a subset of {list(GROUP_ORDER)} in that order")
    if cfg.method == "lora" and [(g.name, g.experts) for g in cfg.groups] != [("omni", 1)]:
        raise ExportError(f"{path}: groups: a lora export has one omni group with one expert")
    gate = mc["gate"]
    if not isinstance(gate, dict) or set(gate) != {"top_k", "temperature"}:
        raise ExportError(f"{path}: gate: want an object with top_k and temperature")
    cfg.top_k = _num(path, "gate.top_k", gate["top_k"], -1, integer=True)
    cfg.temperature = _num(path, "gate.temperature", gate["temperature"])
    if cfg.temperature < 0:
        raise ExportError(f"{path}: gate.temperature: {cfg.temperature:g} < 0")
    if cfg.temperature == 0:
        cfg.temperature = 1.0  # mose's gate reads 0 as 1
    gated = [g.experts for g in cfg.groups if g.experts > 1]
    if gated and cfg.top_k > min(gated):
        raise ExportError(f"{path}: gate.top_k: {cfg.top_k} exceeds the {min(gated)} experts of a group")
    mw = mc["modality_weights"]
    if not isinstance(mw, dict):
        raise ExportError(f"{path}: modality_weights: want an object with mode, visual and nonvisual")
    for k in ("mode", "visual", "nonvisual"):
        if mw.get(k) is None:
            raise ExportError(f"{path}: modality_weights.{k}: missing or null (mose never defaults a modality weight)")
    if set(mw) != {"mode", "visual", "nonvisual"}:
        raise ExportError(f"{path}: modality_weights: unknown field(s) {sorted(set(mw) - {'mode', 'visual', 'nonvisual'})}")
    cfg.w_visual = _num(path, "modality_weights.visual", mw["visual"], 0)
    cfg.w_nonvisual = _num(path, "modality_weights.nonvisual", mw["nonvisual"], 0)
    if mc["modality_ids"] != MODALITY_IDS:
        raise ExportError(f"{path}: modality_ids: {mc['modality_ids']!r}, this package knows {MODALITY_IDS}")
    cfg.inputs = _inputs(path, mc["modality_inputs"])
    if not isinstance(mc["projectors_trained"], bool):
        raise ExportError(f"{path}: projectors_trained: want true or false")
    cfg.projectors_trained = mc["projectors_trained"]
    return cfg


def read_export(export_dir: str) -> ExportConfig:
    """The export's adapters: the sidecar's description when there is one (checked against
    adapter_config.json, as mose does), else adapter_config.json's plain LoRA. A merged
    export (a model dir whose config.json notes mose.merged) has no adapters left: only
    its modality inputs and projectors."""
    pc_path = os.path.join(export_dir, PEFT_CONFIG)
    if not os.path.exists(pc_path) and os.path.exists(os.path.join(export_dir, "config.json")):
        mose = _read_json(os.path.join(export_dir, "config.json")).get("mose")
        if isinstance(mose, dict) and isinstance(mose.get("merged"), dict):
            return ExportConfig(method="merged", rank=0, alpha=0.0, rslora=False, scaling=0.0, targets=[],
                                inputs=model_dir_inputs(export_dir))
    pc = read_peft_config(pc_path)
    side = [os.path.exists(os.path.join(export_dir, n)) for n in (MOSE_CONFIG, MOSE_WEIGHTS)]
    if side[0] != side[1]:
        raise ExportError(f"{export_dir} holds only one of {MOSE_CONFIG} and {MOSE_WEIGHTS}: an incomplete export")
    if not side[0]:
        targets = pc["target_modules"]
        if not isinstance(targets, list) or any(t not in TARGET_MODULES for t in targets):
            raise ExportError(f"{pc_path}: target_modules: {targets!r}, want a list of {', '.join(TARGET_MODULES)}")
        r, alpha, rs = int(pc["r"]), float(pc["lora_alpha"]), bool(pc["use_rslora"])
        return ExportConfig(method="lora", rank=r, alpha=alpha, rslora=rs, scaling=scaling_of(r, alpha, rs),
                            targets=list(targets), groups=[Group("omni", 1)])
    mpath = os.path.join(export_dir, MOSE_CONFIG)
    cfg = read_mose_config(mpath)
    if (int(pc["r"]), float(pc["lora_alpha"]), bool(pc["use_rslora"]), list(pc["target_modules"])) != \
            (cfg.rank, cfg.alpha, cfg.rslora, cfg.targets):
        raise ExportError(f"{pc_path} (r={pc['r']}, lora_alpha={pc['lora_alpha']}, use_rslora={pc['use_rslora']}, "
                          f"target_modules={pc['target_modules']}) does not match {mpath} (rank={cfg.rank}, alpha={cfg.alpha:g}, "
                          f"rslora={cfg.rslora}, target_modules={cfg.targets})")
    return cfg


def model_dir_inputs(model_dir: str) -> list:
    """The modality inputs of a mose model dir (its config.json's "mose" section), for
    exports without a sidecar (plain LoRA, projectors not trained)."""
    path = os.path.join(model_dir, "config.json")
    mose = _read_json(path).get("mose")
    if not isinstance(mose, dict) or not isinstance(mose.get("inputs"), list):
        raise ExportError(f"{path}: no \"mose\" section with inputs (is {model_dir} a mose model dir?)")
    return _inputs(path + ": mose", mose["inputs"])
