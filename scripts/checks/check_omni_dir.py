#!/usr/bin/env python3
"""Check a Qwen2.5-Omni model dir (e.g. `mose init-model --preset omni-tiny`) against transformers.

    OMP_NUM_THREADS=1 "$(scripts/setup/pyenv.sh)" scripts/checks/check_omni_dir.py DIR [--mose bin/mose]

Builds a processor-like batch for DIR's config (text, an image, and a video with its own
audio interleaved as the processor lays it out, use_audio_in_video; random pixels and mel
features), writes it as a processor-outputs file, runs transformers'
Qwen2_5OmniThinkerForConditionalGeneration on it (float32, eager, CPU) and
`mose model-info --inputs FILE --logits-out OUT --dump towers,positions`, and prints the
largest differences. Exits 1 if the position ids differ or the logits differ by more
than 1e-4.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5OmniThinkerForConditionalGeneration


def chunked(values, per):
    """The processor's get_chunked_index."""
    out, start, cur = [], 0, 1
    for i, v in enumerate(values):
        if v >= cur * per:
            out.append((start, i))
            start, cur = i, cur + 1
    out.append((start, len(values)))
    return out


def batch(cfg, gen):
    tc, vc, ac = cfg.text_config, cfg.vision_config, cfg.audio_config
    m = vc.spatial_merge_size
    rng = np.random.default_rng(3)
    text = lambda n: [int(x) for x in rng.integers(0, min(tc.vocab_size, cfg.audio_token_id) - 1, n)]
    ig, vg, frames, spg = [1, 2 * m, 3 * m], [4, 2 * m, 2 * m], 300, 1.0
    n_audio = ((frames - 1) // 2 + 1 - 2) // 2 + 1
    pps, per = cfg.position_id_per_seconds, int(cfg.position_id_per_seconds * cfg.seconds_per_chunk)
    vidx = np.repeat(np.arange(vg[0]), (vg[1] // m) * (vg[2] // m)) * np.float32(spg) * pps
    av = [cfg.vision_start_token_id, cfg.audio_start_token_id]
    vchunks, achunks = chunked(vidx, per), chunked(np.arange(n_audio), per)
    for j in range(max(len(vchunks), len(achunks))):
        if j < len(vchunks):
            av += [cfg.video_token_id] * (vchunks[j][1] - vchunks[j][0])
        if j < len(achunks):
            av += [cfg.audio_token_id] * (achunks[j][1] - achunks[j][0])
    av += [cfg.audio_end_token_id, cfg.vision_end_token_id]
    image = [cfg.vision_start_token_id] + [cfg.image_token_id] * (ig[0] * ig[1] * ig[2] // m ** 2) + \
        [cfg.vision_end_token_id]
    ids = torch.tensor([text(3) + av + text(2) + image + text(4)])
    patch = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2
    return {
        "input_ids": ids, "attention_mask": torch.ones_like(ids),
        "pixel_values": torch.randn(ig[0] * ig[1] * ig[2], patch, generator=gen), "image_grid_thw": torch.tensor([ig]),
        "pixel_values_videos": torch.randn(vg[0] * vg[1] * vg[2], patch, generator=gen),
        "video_grid_thw": torch.tensor([vg]), "video_second_per_grid": torch.tensor([spg]),
        "input_features": torch.randn(1, ac.num_mel_bins, frames, generator=gen),
        "feature_attention_mask": torch.ones(1, frames, dtype=torch.long),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--mose", default="bin/mose")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
        args.dir, dtype=torch.float32, attn_implementation="eager").eval()
    inputs = batch(model.config, torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(use_audio_in_video=True, **inputs).logits
        towers = {
            "audio_embeds": model.get_audio_features(inputs["input_features"], inputs["feature_attention_mask"]).last_hidden_state,
            "image_embeds": torch.cat(model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"]).pooler_output),
            "video_embeds": torch.cat(model.get_video_features(inputs["pixel_values_videos"], inputs["video_grid_thw"]).pooler_output),
        }
        pos, _ = model.model.get_rope_index(
            inputs["input_ids"], inputs["image_grid_thw"], inputs["video_grid_thw"], inputs["attention_mask"], True,
            inputs["feature_attention_mask"].sum(-1), inputs["video_second_per_grid"])
    with tempfile.TemporaryDirectory() as tmp:
        path, out = os.path.join(tmp, "inputs.safetensors"), os.path.join(tmp, "out.safetensors")
        save_file({k: v.contiguous() for k, v in inputs.items()}, path, metadata={"use_audio_in_video": "true"})
        subprocess.run([args.mose, "model-info", "--model", args.dir, "--inputs", path, "--logits-out", out,
                        "--dump", "towers,positions"], check=True, stdout=subprocess.DEVNULL)
        got = load_file(out)
    same_pos = torch.equal(got["position_ids"], pos)
    diff = (got["logits"] - ref).abs().max().item()
    print(f"{args.dir}: {inputs['input_ids'].shape[1]} tokens; position ids {'identical' if same_pos else 'DIFFER'}; "
          f"max |logit - transformers| = {diff:.3g} (logits span {ref.min().item():.3g}..{ref.max().item():.3g})")
    for k, v in towers.items():
        print(f"  {k}: max |mose - transformers| = {(got[k] - v).abs().max().item():.3g} (max |value| {v.abs().max().item():.3g})")
    return 0 if same_pos and diff <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
