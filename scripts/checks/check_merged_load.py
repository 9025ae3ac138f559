#!/usr/bin/env python3
"""Check that transformers loads merged exports (`mose export --format merged`) cleanly.

    "$(scripts/setup/pyenv.sh)" scripts/checks/check_merged_load.py MERGED_DIR [MERGED_DIR...]

For each dir, AutoModelForCausalLM.from_pretrained(dir, output_loading_info=True) must
report no missing, unexpected or mismatched keys and no error messages (the projectors
live in mose_projectors.safetensors, which transformers does not read). Prints one line
per dir, `DIR: OK` or `DIR: FAIL ...`; exits 0 only when every dir is OK.
"""
import sys

import torch


def main() -> int:
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    ok = True
    for d in sys.argv[1:]:
        _, info = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, output_loading_info=True)
        bad = {k: sorted(v) for k, v in info.items() if v}
        print(f"{d}: {'FAIL ' + str(bad) if bad else 'OK'} (load report: {dict((k, len(v)) for k, v in info.items())})", flush=True)
        ok = ok and not bad
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
