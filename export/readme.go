package export

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// ReadmeFile is the note every export directory carries: which loader gives
// what from its files.
const ReadmeFile = "README.md"

// PEFTOnlyNote is the one line the CLI prints after a MoSE export in PEFT format.
const PEFTOnlyNote = "PEFT alone loads only this MoSE export's omni expert (approximate); " +
	"the mose_hf package (python/) runs all of it exactly, and so does mose: see README.md in the export"

// PEFTOnlyNoteOmni is PEFTOnlyNote for a Qwen2.5-Omni thinker.
const PEFTOnlyNoteOmni = "PEFT alone loads only this MoSE export's omni expert (approximate); " +
	"the routed experts are in the sidecar (mose_config.json, mose_adapter.safetensors), which nothing but mose's training checkpoints run on a Qwen2.5-Omni thinker yet"

// writeReadme writes ReadmeFile into an export directory: the loaders and what
// each gives, for this export's format and method (with the merge's measured
// agreement when it was approximate).
func writeReadme(dir string, opt Options, method string, projectors bool, rep *MergeReport) error {
	return writeReadmeFor(dir, opt, method, projectors, rep, false)
}

// writeReadmeFor is writeReadme; omni: the base is a Qwen2.5-Omni thinker.
func writeReadmeFor(dir string, opt Options, method string, projectors bool, rep *MergeReport, omni bool) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if omni {
		omniReadme(w, opt, method)
		return fsutil.WriteBytes(filepath.Join(dir, ReadmeFile), []byte(b.String()))
	}
	w("# mose export (%s, method %s)", opt.Format, method)
	w("")
	w("Written by `mose export` from `%s`. Which loader gives what:", opt.Checkpoint)
	w("")
	w("| loader | what it computes |")
	w("|---|---|")
	mose := "`mose eval --checkpoint THIS_DIR`, `mose predict --checkpoint THIS_DIR` (with `--recipe`)"
	hf := "`mose_hf` (the `python/` package of the mose repository: `pip install ./python`)"
	switch {
	case opt.Format == FormatMerged:
		w("| transformers `AutoModelForCausalLM.from_pretrained(THIS_DIR)` | the merged decoder, no adapter code needed; the projectors are in `%s` (transformers does not read them) |", model.MergedProjectors)
		if method == experts.MethodLoRA || rep == nil || !rep.Approximate {
			w("| its exactness | **exact**: every adapter was a single unrouted expert (plain LoRA), folded into W0 in float32 |")
		} else {
			agree, kl := "not measured", "not measured"
			if rep.LabelAgreement != nil {
				agree = fmt.Sprintf("%.4f", *rep.LabelAgreement)
			}
			if rep.MeanLogitKL != nil {
				kl = fmt.Sprintf("%.4g nats", *rep.MeanLogitKL)
			}
			w("| its exactness | **approximate**: the routed experts were folded with their expected coefficients on `%s`; "+
				"top-label agreement with the unmerged model %s, mean logit KL %s (`%s`). For the exact model use the PEFT export and `mose_hf` |",
				rep.Calibration, agree, kl, mergeReportFile)
		}
		w("| %s: `mose_hf.load(model, THIS_DIR)` | the merged model with the projectors spliced at the feature placeholders (and optional AR), as exact as the merge |", hf)
		w("| mose (`--set model.path=THIS_DIR`) | the merged model, reading the projectors from `%s` |", model.MergedProjectors)
	case method == experts.MethodLoRA:
		w("| PEFT `PeftModel.from_pretrained(base, THIS_DIR)` | **exact**: a complete LoRA adapter of the base model (`%s`, `%s`) |", stack.PEFTConfigFile, stack.PEFTWeightsFile)
		if projectors {
			w("| the trained projectors | in `%s` (`projectors.<input>.*`): splice their outputs at the feature tokens yourself, or use `mose_hf` |", stack.MoseWeightsFile)
		}
		w("| %s | **exact**: the adapter and the projectors at the feature placeholders, `model.generate` included |", hf)
		w("| %s | exact |", mose)
	default:
		w("| PEFT `PeftModel.from_pretrained(base, THIS_DIR)` | **approximate**: only the omni expert (`%s`); the visual and nonvisual experts, the gates and the modality weights are in the sidecar, which PEFT does not read |", stack.PEFTWeightsFile)
		w("| %s | **exact**: every expert, gate and modality weight from the sidecar (`%s`, `%s`), the projectors at the feature placeholders, optional Attention Reallocation, `model.generate` included |",
			hf, stack.MoseConfigFile, stack.MoseWeightsFile)
		w("| %s | exact |", mose)
	}
	w("")
	w("The files, the sidecar's format and the `mose_hf` usage are described in docs/export.md of the mose repository.")
	return fsutil.WriteBytes(filepath.Join(dir, ReadmeFile), []byte(b.String()))
}

// omniReadme is the note of an export of a Qwen2.5-Omni thinker's adapters.
func omniReadme(w func(string, ...any), opt Options, method string) {
	thinker := "transformers `Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(%s)`"
	w("# mose export (%s, method %s, Qwen2.5-Omni thinker)", opt.Format, method)
	w("")
	w("Written by `mose export` from `%s`. Which loader gives what:", opt.Checkpoint)
	w("")
	w("| loader | what it computes |")
	w("|---|---|")
	switch {
	case opt.Format == FormatMerged:
		w("| "+thinker+" | the thinker with the adapters folded into its decoder's weights: **exact** (every adapter a single unrouted expert, folded in float32) |", "THIS_DIR")
	case method == experts.MethodLoRA:
		w("| PEFT `PeftModel.from_pretrained(thinker, THIS_DIR)`, thinker = "+thinker+" | **exact**: a LoRA adapter of the decoder's `model.language_model.layers.N.*` modules; `target_modules` is a regular expression so that the towers' `q_proj`, `v_proj`, … stay frozen |", "BASE")
	default:
		w("| PEFT `PeftModel.from_pretrained(thinker, THIS_DIR)`, thinker = "+thinker+" | **approximate**: only the omni expert (`%s`); the routed experts, gates and modality weights are in the sidecar (`%s`, `%s`), which PEFT does not read |",
			"BASE", stack.PEFTWeightsFile, stack.MoseConfigFile, stack.MoseWeightsFile)
	}
	w("")
	w("mose's eval and predict run this export (`--checkpoint THIS_DIR`, with the run's recipe); `mose_hf` does not run a Qwen2.5-Omni thinker yet. See docs/models.md and docs/export.md of the mose repository.")
}
