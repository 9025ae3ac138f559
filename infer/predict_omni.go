package infer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/stack"
)

// predictOmniSample opens one sample for a Qwen2.5-Omni thinker: its
// processor outputs (opt.Processed, made in memory as `mose preprocess`
// makes them) written with a one-line omni manifest into a private
// temporary directory, which the returned function removes (after the
// pass: the loader reads the media from the file). known says whether
// opt.Sample.Label is a gold label.
func predictOmniSample(c *stack.Stack, opt PredictOptions) (*data.Dataset, bool, func(), error) {
	none := func() {}
	smp := *opt.Sample
	if len(smp.Features) > 0 {
		return nil, false, none, fmt.Errorf("%w: --feature: a Qwen2.5-Omni thinker takes media (--video, --audio, --image), not feature files", inputerr.ErrFlag)
	}
	if opt.Processed == nil {
		return nil, false, none, fmt.Errorf("%w: a Qwen2.5-Omni thinker's sample needs media: give --video, --audio or --image", inputerr.ErrFlag)
	}
	known := smp.Label != ""
	if !known {
		smp.Label = c.Spec.Labels[0] // a placeholder: prompts do not contain the label
	} else if c.Spec.LabelIndex(smp.Label) < 0 {
		return nil, false, none, fmt.Errorf("%w: --label %q is not one of the model's labels (%s)", inputerr.ErrFlag, smp.Label, strings.Join(c.Spec.Labels, ", "))
	}
	if smp.ID == "" {
		smp.ID = "sample"
	}
	if c.Tok == nil {
		var err error
		if c.Tok, err = stack.LoadOmniTokenizer(c.Cfg.Model.Path); err != nil {
			return nil, false, none, err
		}
	}
	pad, err := stack.PadID(c.Tok, filepath.Join(c.Cfg.Model.Path, "tokenizer.json"))
	if err != nil {
		return nil, false, none, err
	}
	tmp, err := os.MkdirTemp("", "mose-predict-")
	if err != nil {
		return nil, false, none, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	line, err := json.Marshal(map[string]string{"id": smp.ID, "subset": data.SubsetGeneral, "label": smp.Label, "inputs": "inputs.safetensors"})
	if err == nil {
		err = opt.Processed.WriteFile(filepath.Join(tmp, "inputs.safetensors"))
	}
	manifest := filepath.Join(tmp, "sample.jsonl")
	if err == nil {
		err = fsutil.WriteBytes(manifest, append(line, '\n'))
	}
	var ds *data.Dataset
	if err == nil {
		ds, err = data.OpenOmni(manifest, c.OmniSpec, c.Tok, data.Options{Root: tmp, MaxLen: c.Cfg.Data.MaxLen, PadID: pad})
	}
	if err == nil {
		err = stack.CheckOmniDataset(c.Omni.Config, ds)
	}
	if err != nil {
		cleanup()
		return nil, false, none, stack.DataErr("the sample's media", err)
	}
	return ds, known, cleanup, nil
}
