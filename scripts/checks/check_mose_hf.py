#!/usr/bin/env python3
"""Check the mose_hf package (python/) against mose itself, on one or more exports.

    PYTHONPATH=python "$(scripts/setup/pyenv.sh)" scripts/checks/check_mose_hf.py CASES.json EXPORT [EXPORT...]
        [--base BASE_DIR] --model-dir MOSE_MODEL_DIR [--tol 1e-5] [--ar-tol 1e-4]

CASES.json (written by `go test ./cmd/mose -run TestMoseHF`) lists samples, each with
  dump:     a `mose dump-logits` file of the training checkpoint (ids, features, logits);
  subtitle: the sample's subtitle, for mose_hf's encode_prompt;
  answer:   `mose predict`'s greedy answer for it (optional);
  ar_scores, ar_answer, ar: `mose predict`'s label log-likelihoods and greedy answer with
            Attention Reallocation on, and the AR settings (optional).
transformers loads the base model once (--base, default the mose model dir); for each
EXPORT mose_hf attaches the export (and detaches it after), and the check compares
  - the logits at every position (prompt, feature tokens of both modalities, answer) with
    dump-logits: max |diff| <= --tol;
  - the prompt ids encode_prompt builds with the dump's;
  - greedy generate with predict's answer (the decoded tokens, EOS excluded), one sample
    at a time and all samples in one left-padded batch;
  - with AR, every label's answer log-likelihood with predict's (max |diff| <= --ar-tol, and
    AR must move them by at least ten times that) and greedy generate with predict's answer.
After each export, mose_hf's remove() must leave the model computing as before. It
prints one line per export, `EXPORT: OK ...`, `EXPORT: FAIL ...` (numbers disagree) or
`EXPORT: REFUSED ...` (mose_hf refused the export by name), and exits 0 only when every
export is OK.
"""
import argparse
import json
import os
import sys
import warnings

import torch
from safetensors.torch import load_file


def end_tokens(model_dir):
    """mose's model.EndTokens: generation_config.json's eos_token_id, else config.json's."""
    for name in ("generation_config.json", "config.json"):
        p = os.path.join(model_dir, name)
        if os.path.exists(p):
            e = json.load(open(p)).get("eos_token_id")
            if e is not None:
                return [e] if isinstance(e, int) else list(e)
    return None


def check(export, args, cases, model, tok, mose_hf):
    try:
        mm = mose_hf.load(model, export, model_dir=args.model_dir)
    except mose_hf.ExportError as e:
        return "REFUSED", str(e)
    try:
        return compare(mm, args, cases, tok, mose_hf)
    finally:
        mm.remove()


def compare(mm, args, cases, tok, mose_hf):
    spec = json.load(open(os.path.join(args.model_dir, "config.json")))["mose"]
    ends = end_tokens(args.model_dir)
    worst, worst_ar, ar_moves, notes, tokens, feature_tokens, batch = 0.0, 0.0, 0.0, [], 0, {}, []
    for c in cases:
        d = load_file(c["dump"])
        ids = d["input_ids"].clone()
        feats = {}
        dumped = sorted(k[len("features."):] for k in d if k.startswith("features."))
        if dumped != sorted(i.name for i in mm.inputs):
            return "FAIL", f"{c['dump']}: the sample has feature inputs {dumped}, mose_hf knows {[i.name for i in mm.inputs]}"
        for inp in mm.inputs:
            ids[0, d["positions." + inp.name]] = mm.placeholder_id(inp.name)
            feats[inp.name] = d["features." + inp.name]
            feature_tokens[inp.modality] = feature_tokens.get(inp.modality, 0) + d["positions." + inp.name].numel()
        tokens += ids.shape[1]
        with torch.no_grad():
            logits = mm(ids, features=feats).logits
        worst = max(worst, (logits - d["logits"]).abs().max().item())
        if worst > args.tol:
            return "FAIL", f"{c['dump']}: max |logit diff| {worst:.3g} > {args.tol:g}"
        prompt = mm.encode_prompt(tok, c["subtitle"])
        T = prompt.shape[1]
        if not torch.equal(prompt[0], ids[0, :T]):
            return "FAIL", f"{c['dump']}: encode_prompt gives other ids than mose's prompt"
        pf = feats
        def generate():
            with torch.no_grad():
                out = mm.generate(prompt, features=pf, max_new_tokens=c["max_new_tokens"], do_sample=False,
                                  eos_token_id=ends, pad_token_id=ends[0] if ends else 0)
            new = out[0, T:].tolist()
            if ends and new and new[-1] in ends:
                new = new[:-1]
            return new, tok.decode(new, skip_special_tokens=False)

        if "answer" in c:
            batch.append({"prompt": prompt[0], "features": pf, "answer": c["answer"]})
            if "ar_answer" in c:
                batch[-1]["ar_answer"] = c["ar_answer"]
            new, got = generate()
            if got != c["answer"]:
                return "FAIL", f"{c['dump']}: generate gives {got!r} ({len(new)} tokens), mose predict {c['answer']!r}"
            notes.append(f"{len(new)} generated tokens")
        if "ar_scores" in c:
            def label_ll(label):
                ans = tok.encode(spec["prompt"]["answer"].replace("{label}", label), add_special_tokens=False).ids
                full = torch.cat([prompt, torch.tensor([ans])], 1)
                with torch.no_grad():
                    lp = mm(full, features=pf).logits[0, T - 1:-1].log_softmax(-1)
                return lp.gather(1, torch.tensor(ans)[:, None]).sum().item()

            plain = {label: label_ll(label) for label in c["ar_scores"]}
            mm.set_ar(mose_hf.AR(**c["ar"]))
            try:
                for label, want in c["ar_scores"].items():
                    got = label_ll(label)
                    worst_ar = max(worst_ar, abs(got - want))
                    ar_moves = max(ar_moves, abs(got - plain[label]))
                if "ar_answer" in c:
                    new, got = generate()
                    if got != c["ar_answer"]:
                        return "FAIL", f"{c['dump']}: generate with AR gives {got!r}, mose predict with AR {c['ar_answer']!r}"
                    notes.append(f"{len(new)} with AR")
            finally:
                mm.set_ar(None)
    if len(batch) > 1:  # all prompts in one left-padded batch, as transformers users batch them
        L = max(len(b["prompt"]) for b in batch)
        pad = ends[0] if ends else 0
        ids = torch.full((len(batch), L), pad)
        mask = torch.zeros(len(batch), L, dtype=torch.long)
        for r, b in enumerate(batch):
            ids[r, L - len(b["prompt"]):], mask[r, L - len(b["prompt"]):] = b["prompt"], 1
        feats = {k: torch.cat([b["features"][k] for b in batch]) for k in batch[0]["features"]}
        runs = [(None, "answer")] + ([(cases[0]["ar"], "ar_answer")] if all("ar_answer" in b for b in batch) else [])
        for ar, key in runs:
            mm.set_ar(mose_hf.AR(**ar) if ar else None)
            try:
                with torch.no_grad():
                    out = mm.generate(ids, attention_mask=mask, features=feats, max_new_tokens=max(c["max_new_tokens"] for c in cases),
                                      do_sample=False, eos_token_id=ends, pad_token_id=pad)
            finally:
                mm.set_ar(None)
            for r, b in enumerate(batch):
                new = out[r, L:].tolist()
                for i, t in enumerate(new):
                    if ends and t in ends:
                        new = new[:i]
                        break
                if tok.decode(new, skip_special_tokens=False) != b[key]:
                    return "FAIL", f"batched generate ({key}), row {r}: {tok.decode(new)!r}, mose predict {b[key]!r}"
        padded = len({len(b["prompt"]) for b in batch}) > 1
        notes.append("batched" + (", left-padded," if padded else "") + (" with and without AR," if len(runs) > 1 else "") + " the same")
    feat = ", ".join(f"{n} {m}" for m, n in sorted(feature_tokens.items()))
    msg = f"max |logit diff| {worst:.3g} over {len(cases)} sample(s), {tokens} tokens ({feat} feature tokens)"
    if any("ar_scores" in c for c in cases):
        msg += f"; with AR, max |label log-likelihood diff| {worst_ar:.3g} (AR moves them by {ar_moves:.3g})"
    if notes:
        msg += "; greedy generate = mose predict (" + ", ".join(notes) + ")"
    if any("ar_scores" in c for c in cases) and ar_moves < 10 * args.ar_tol:
        return "FAIL", f"{msg}: AR barely moves the log-likelihoods, so AR was not checked"
    if worst_ar > args.ar_tol:
        return "FAIL", f"{msg}: AR differs by more than {args.ar_tol:g}"
    return "OK", msg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases")
    ap.add_argument("exports", nargs="+")
    ap.add_argument("--base")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--ar-tol", type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    import mose_hf
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # the mose model dir's projectors are unexpected keys for transformers
    warnings.simplefilter("ignore")
    tok = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    cases = json.load(open(args.cases))
    model = AutoModelForCausalLM.from_pretrained(args.base or args.model_dir, dtype=torch.float32)
    model.eval()
    plain_ids = load_file(cases[0]["dump"])["input_ids"]
    with torch.no_grad():
        plain = model(input_ids=plain_ids).logits
    ok = True
    for export in args.exports:  # one model: mose_hf's hooks come off after each export
        status, msg = check(export, args, cases, model, tok, mose_hf)
        with torch.no_grad():
            if not torch.equal(model(input_ids=plain_ids).logits, plain):
                status, msg = "FAIL", msg + "; and after remove() the model does not compute as before"
        print(f"{export}: {status} {msg}", flush=True)
        ok = ok and status == "OK"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
