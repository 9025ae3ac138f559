"""mose_hf: run a mose export on a transformers model exactly as mose does.

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    mm = mose_hf.load(model, "exports/mine", model_dir="models/my-emotion")
    ids = mm.encode_prompt(tokenizer, subtitle="I got the job.")
    out = mm.generate(ids, features={"face": face, "voice": voice}, max_new_tokens=32, do_sample=False)

See README.md and docs/export.md in the mose repository.
"""
from .ar import AR
from .config import ExportError
from .model import MoseModel, load

__all__ = ["AR", "ExportError", "MoseModel", "load"]
__version__ = "0.1.0"
