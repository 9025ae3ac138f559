#!/usr/bin/env python3
"""Parity of mose's Qwen2.5-Omni processor (mose preprocess) with transformers'.

    python scripts/checks/check_processor.py --mose bin/mose --ffmpeg FFMPEG --work DIR [--tokenizer-out F]

Makes synthetic clips with ffmpeg's own generators (testsrc video, sine audio; several
sizes, lengths and frame rates), an omni-tiny model directory (mose init-model) with a
Qwen2-style byte-level BPE tokenizer whose special tokens sit at omni-tiny's ids
500-509, then for each case runs `mose preprocess` and transformers 5's
Qwen2_5OmniProcessor (built from WhisperFeatureExtractor, the PIL Qwen2-VL image
processor, the Qwen2-VL video processor and that tokenizer) on the SAME decoded frames
and waveform (init-model's embedded tokenizer must equal the one trained here): this script decodes each clip with the same ffmpeg command lines as
mose's data/media. It checks input_features within 1e-4, feature_attention_mask,
input_ids and the grids exactly, pixel values within 1e-3, and the chain: mose
model-info's logits on mose's file against transformers' thinker (omni-tiny, fp32,
eager) on transformers' processor outputs, within 1e-4. It prints one JSON line per
case and a summary; exit 1 on any failure. Needs torch, transformers, tokenizers,
safetensors, numpy, pillow and torchvision (the video processor imports it).
"""
import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np

SPECIALS = ["<|AUDIO|>", "<|IMAGE|>", "<|VIDEO|>", "<|audio_bos|>", "<|audio_eos|>", "<|vision_bos|>",
            "<|vision_eos|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]
SYSTEM = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
          "auditory and visual inputs, as well as generating text and speech.")
QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
             r"|\s+(?!\S)|\s+")

# (name, size, rate, seconds, sine frequency, audio sample rate)
CLIPS = [
    ("a", "160x120", 25, 3.0, 440, 44100),
    ("b", "448x252", 30, 2.5, 880, 48000),
    ("c", "320x240", 24, 4.2, 300, 16000),
    ("d", "640x360", 15, 1.3, 1000, 22050),
    ("e", "96x200", 10, 5.0, 220, 44100),
    ("f", "1280x720", 12, 2.0, 660, 32000),
]


def build_tokenizer(path):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    tk = Tokenizer(models.BPE())
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    rng = np.random.default_rng(0)
    syll = ["ka", "lo", "mi", "te", "su", "ra", "ne", "vo", "di", "po", "qu", "xe", "an", "is", "or"]
    corpus = [SYSTEM, "happy sad angry neutral surprise fear worried the a of to and is in it"] + [
        " ".join("".join(rng.choice(syll, size=rng.integers(1, 4))) for _ in range(12)) for _ in range(400)]
    trainer = trainers.BpeTrainer(vocab_size=500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tk.train_from_iterator(corpus, trainer)
    if tk.get_vocab_size() != 500:
        sys.exit(f"tokenizer: trained {tk.get_vocab_size()} tokens, want 500")
    tk.add_special_tokens(SPECIALS)
    for i, s in enumerate(SPECIALS):
        assert tk.token_to_id(s) == 500 + i, (s, tk.token_to_id(s))
    tk.save(path)


def probe(ffmpeg, path):
    err = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", path], capture_output=True, text=True).stderr
    m = re.search(r"Stream #\d+:\d+.*?: Video: .*?(?:, |\) )(\d{1,6})x(\d{1,6})[ ,]", err)
    return (int(m.group(1)), int(m.group(2))) if m else None


def decode(ffmpeg, path, args):
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-noautorotate", "-i", path] + args + ["pipe:1"]
    return subprocess.run(cmd, capture_output=True, check=True, timeout=300).stdout


def frames(ffmpeg, path, fps):
    w, h = probe(ffmpeg, path)
    raw = decode(ffmpeg, path, ["-map", "0:V:0", "-vf", f"fps={fps:g}", "-f", "rawvideo", "-pix_fmt", "rgb24"])
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def image(ffmpeg, path):
    w, h = probe(ffmpeg, path)
    raw = decode(ffmpeg, path, ["-map", "0:V:0", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24"])
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


def wave(ffmpeg, path):
    raw = decode(ffmpeg, path, ["-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "f32le"])
    return np.frombuffer(raw, np.float32).copy()


def make_processor(tok_path):
    from transformers import PreTrainedTokenizerFast, Qwen2_5OmniProcessor, WhisperFeatureExtractor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    fe = WhisperFeatureExtractor(feature_size=128, chunk_length=300, n_fft=400, hop_length=160, sampling_rate=16000,
                                 padding_value=0.0, return_attention_mask=True)
    ip = Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056)
    vp = Qwen2VLVideoProcessor()
    extra = {"audio_token": "<|AUDIO|>", "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>",
             "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
             "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>"}
    tok = PreTrainedTokenizerFast(tokenizer_file=tok_path, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  extra_special_tokens=extra)
    return Qwen2_5OmniProcessor(image_processor=ip, video_processor=vp, feature_extractor=fe, tokenizer=tok)


def prompt(video, image, audio, text):
    s = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
    if video:
        s += "<|vision_bos|><|VIDEO|><|vision_eos|>"
    if image:
        s += "<|vision_bos|><|IMAGE|><|vision_eos|>"
    if audio:
        s += "<|audio_bos|><|AUDIO|><|audio_eos|>"
    return s + text + "<|im_end|>\n<|im_start|>assistant\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mose", required=True)
    ap.add_argument("--ffmpeg", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--tokenizer-out", help="also copy the tokenizer here")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from safetensors.numpy import load_file
    torch.set_num_threads(1)
    os.makedirs(a.work, exist_ok=True)
    model = os.path.join(a.work, "omni-tiny")
    subprocess.run([a.mose, "init-model", "--preset", "omni-tiny", "--out", model, "--force"], check=True, capture_output=True)
    tok_path = os.path.join(model, "tokenizer.json")
    with open(tok_path) as f:
        written = json.load(f)  # what init-model wrote (mose's embedded copy)
    build_tokenizer(tok_path)
    with open(tok_path) as f:
        if json.load(f) != written:
            sys.exit("tokenizer: mose init-model's omni-tiny tokenizer.json differs from the one this script trains: "
                     "rerun with --tokenizer-out data/omniproc/omni-tiny-tokenizer.json")
    if a.tokenizer_out:
        build_tokenizer(a.tokenizer_out)
    proc = make_processor(tok_path)
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration
    thinker = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
        model, dtype=torch.float32, attn_implementation="eager").eval()
    clips = {}
    for name, size, rate, secs, freq, sr in CLIPS:
        p = os.path.join(a.work, f"{name}.mkv")
        subprocess.run([a.ffmpeg, "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}",
                        "-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate={sr}", "-t", f"{secs}",
                        "-c:v", "ffv1", "-c:a", "flac", p], check=True, timeout=300)
        clips[name] = p
    img = os.path.join(a.work, "img.png")
    subprocess.run([a.ffmpeg, "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=333x211",
                    "-frames:v", "1", img], check=True, timeout=120)
    # (clip, fps, use_audio_in_video, separate audio clip, image, text)
    cases = [("a", 2.0, True, None, False, "How does the speaker feel?"),
             ("a", 2.0, False, "c", False, "Describe it."),
             ("b", 2.0, True, None, True, "What emotion?"),
             ("c", 1.0, False, None, False, "happy or sad"),
             ("d", 2.0, True, None, False, ""),
             ("e", 3.0, True, None, False, "neutral"),
             ("f", 2.0, False, None, True, "worried?"),
             (None, 2.0, False, "d", True, "an image and a sound")]
    fails, results = 0, []
    for i, (clip, fps, uaiv, aud, with_img, text) in enumerate(cases):
        out = os.path.join(a.work, f"case{i}.safetensors")
        cmd = [a.mose, "preprocess", "--model", model, "--out", out, "--fps", f"{fps:g}", "--subtitle", text]
        if clip:
            cmd += ["--video", clips[clip]]
        if uaiv:
            cmd += ["--use-audio-in-video"]
        if aud:
            cmd += ["--audio", clips[aud]]
        if with_img:
            cmd += ["--image", img]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            print(json.dumps({"case": i, "error": r.stderr.strip()[-400:]}))
            fails += 1
            continue
        got = load_file(out)
        kw = {"return_tensors": "np"}
        videos = audio = images = None
        if clip:
            videos = [frames(a.ffmpeg, clips[clip], fps)]
            kw["videos_kwargs"] = {"fps": fps, "do_sample_frames": False}
        if uaiv:
            audio = [wave(a.ffmpeg, clips[clip])]
            kw["use_audio_in_video"] = True
            kw["audio_from_video_indices"] = [0]
        elif aud:
            audio = [wave(a.ffmpeg, clips[aud])]
        if with_img:
            images = [image(a.ffmpeg, img)]
        ref = proc(text=[prompt(bool(clip), with_img, bool(aud), text)], videos=videos, audio=audio, images=images, **kw)
        res = {"case": i, "clip": clip, "fps": fps, "use_audio_in_video": uaiv, "audio": aud, "image": with_img}
        ok = True
        for k in ref.keys():
            want = np.asarray(ref[k])
            if k not in got:
                res[k] = "missing from mose's output"
                ok = False
                continue
            g = got[k]
            if k == "video_second_per_grid":
                want = want.astype(np.float32)
            if g.shape != want.shape:
                res[k] = f"shape {list(g.shape)} vs {list(want.shape)}"
                ok = False
                continue
            if np.issubdtype(want.dtype, np.integer):
                n = int((g != want).sum())
                res[k] = f"{n} differ" if n else "exact"
                ok &= n == 0
            else:
                d = float(np.abs(g.astype(np.float64) - want.astype(np.float64)).max())
                tol = 1e-4 if k == "input_features" else 1e-3
                res[k] = d
                ok &= d <= tol
                if k.startswith("pixel_values"):
                    res[k + "_levels_differing"] = int((np.abs(g - want) > 1e-3).sum())
        # The chain: transformers' thinker on transformers' processor outputs against
        # mose model-info on mose's file.
        logits_out = os.path.join(a.work, f"case{i}.logits.safetensors")
        r = subprocess.run([a.mose, "model-info", "--model", model, "--inputs", out, "--logits-out", logits_out],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            res["logits"] = "model-info failed: " + r.stderr.strip()[-300:]
            ok = False
        else:
            tin = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in ref.items()}
            with torch.no_grad():
                want = thinker(use_audio_in_video=uaiv, **tin).logits
            d = float((load_file(logits_out)["logits"] - want.numpy()).__abs__().max())
            res["logits"] = d
            ok &= d <= 1e-4
        extra = sorted(set(got) - set(ref.keys()))
        if extra:
            res["extra"] = extra
            ok = False
        res["ok"] = bool(ok)
        fails += not ok
        print(json.dumps(res))
    print(json.dumps({"cases": len(cases), "failed": fails}))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
