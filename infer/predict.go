package infer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// PredictOptions say what Predict runs on: a checkpoint or export, and either
// a manifest or one sample.
type PredictOptions struct {
	Checkpoint string // checkpoint (step-NNNNNNN) or PEFT export directory
	// Manifest is a JSONL manifest (feature paths relative to data.root, or
	// to the manifest's directory); its labels are reported as gold labels.
	Manifest string
	// Sample is one sample whose feature paths are absolute, or relative to
	// the working directory. An empty Label means unknown.
	Sample *data.Sample
	// Processed is, for a Qwen2.5-Omni thinker, the Sample's processor
	// outputs (made in memory from its media as `mose preprocess` makes
	// them); Sample then gives its id and label only. Refused on another
	// model.
	Processed *omniproc.Outputs
	// Out, when set, receives one JSON object per sample (JSONL), written
	// atomically; an existing file needs Force.
	Out   string
	Force bool
	// NoGenerate skips generation (label scores only).
	NoGenerate bool
}

// LabelScore is one label's answer log-likelihood and its share of the
// probability over the labels (softmax of the log-likelihoods).
type LabelScore struct {
	Label         string  `json:"label"`
	LogLikelihood float64 `json:"log_likelihood"`
	Prob          float64 `json:"prob"`
}

// SamplePrediction is what the model says about one sample.
type SamplePrediction struct {
	ID     string       `json:"id"`
	Subset string       `json:"subset,omitempty"`
	Gold   string       `json:"gold,omitempty"` // the manifest's label; empty when unknown
	Scores []LabelScore `json:"scores"`         // every label, in the model's label order
	// Predicted is the best-scored label (score mode).
	Predicted string `json:"predicted"`
	// Answer is the generated text (greedy, or sampled with eval.temperature
	// > 0), up to eval.max_new_tokens; AnswerLabel the label it names ("" if
	// none). Both absent with NoGenerate.
	Answer      *string `json:"answer,omitempty"`
	AnswerLabel *string `json:"answer_label,omitempty"`
}

// Predict runs the model with a checkpoint's or export's adapters on the
// samples of opt: every label's score through the KV cache and, unless
// NoGenerate, the generated answer, with Attention Reallocation when
// eval.ar.enabled. Results come in input order.
func Predict(ctx context.Context, cfg *recipes.Config, opt PredictOptions) ([]SamplePrediction, error) {
	if (opt.Manifest == "") == (opt.Sample == nil) {
		return nil, fmt.Errorf("%w: predict needs a manifest or a sample (one of them)", recipes.ErrRecipe)
	}
	if opt.Out != "" && !opt.Force {
		if _, err := os.Stat(opt.Out); err == nil {
			return nil, fmt.Errorf("%w: %s exists (use --force to replace it)", recipes.ErrRecipe, opt.Out)
		}
	}
	var out []SamplePrediction
	err := torch.Run(func() error {
		if cfg.Run.Threads > 0 {
			if err := torch.SetThreads(cfg.Run.Threads); err != nil {
				return err
			}
		}
		c, err := stack.Load(cfg, opt.Checkpoint, stack.NoData)
		if err != nil {
			return err
		}
		defer c.Close()
		ds, known, cleanup, err := predictSet(c, opt)
		if err != nil {
			return err
		}
		defer cleanup()
		off, err := UseAR(c)
		if err != nil {
			return err
		}
		defer off()
		out, err = predictAll(ctx, c, ds, known, !opt.NoGenerate)
		if opt.Sample != nil { // a thinker's sample went through a manifest, as a "general" one
			for i := range out {
				out[i].Subset = opt.Sample.Subset
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if opt.Out != "" {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for _, p := range out {
			if err := enc.Encode(p); err != nil {
				return nil, err
			}
		}
		if err := fsutil.WriteBytes(opt.Out, buf.Bytes()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// predictSet opens the samples to predict; known says whether their labels
// are gold labels; cleanup removes what opening them left (call it after
// the pass).
func predictSet(c *stack.Stack, opt PredictOptions) (ds *data.Dataset, known bool, cleanup func(), err error) {
	cleanup = func() {}
	if opt.Manifest != "" {
		ds, err := c.Open(opt.Manifest)
		if err != nil {
			return nil, false, cleanup, stack.DataErr("--manifest", err)
		}
		return ds, true, cleanup, nil
	}
	if c.Omni != nil {
		return predictOmniSample(c, opt)
	}
	if opt.Processed != nil {
		return nil, false, cleanup, fmt.Errorf("%w: --video, --audio and --image need a Qwen2.5-Omni thinker: model.path %s is not one (give --feature NAME=FILE)",
			inputerr.ErrFlag, c.Cfg.Model.Path)
	}
	ds, known, err = predictFeatureSample(c, opt)
	return ds, known, cleanup, err
}

// predictFeatureSample opens one sample of feature files for a
// LLaMA-family model.
func predictFeatureSample(c *stack.Stack, opt PredictOptions) (*data.Dataset, bool, error) {
	if c.Tok == nil {
		var err error
		if c.Spec, err = data.ReadModelSpec(c.Cfg.Model.Path); err != nil {
			return nil, false, err
		}
		if c.Tok, err = tokenizer.Load(filepath.Join(c.Cfg.Model.Path, "tokenizer.json")); err != nil {
			return nil, false, err
		}
	}
	smp := *opt.Sample
	known := smp.Label != ""
	if !known {
		smp.Label = c.Spec.Labels[0] // a placeholder: prompts do not contain the label
	} else if c.Spec.LabelIndex(smp.Label) < 0 {
		return nil, false, fmt.Errorf("%w: --label %q is not one of the model's labels (%s)", inputerr.ErrFlag, smp.Label, strings.Join(c.Spec.Labels, ", "))
	}
	if smp.ID == "" {
		smp.ID = "sample"
	}
	feats := map[string]string{}
	for name, p := range smp.Features {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, false, err
		}
		feats[name] = strings.TrimPrefix(abs, string(filepath.Separator))
	}
	for name := range feats {
		if !slices.ContainsFunc(c.Spec.Inputs, func(in data.Input) bool { return in.Name == name }) {
			return nil, false, fmt.Errorf("%w: --feature %q is not an input of the model (inputs: %s)", inputerr.ErrFlag, name, inputNames(c.Spec))
		}
	}
	smp.Features = feats
	pad, err := stack.PadID(c.Tok, filepath.Join(c.Cfg.Model.Path, "tokenizer.json"))
	if err != nil {
		return nil, false, err
	}
	ds, err := data.OpenSamples("sample "+smp.ID, []data.Sample{smp}, c.Spec, c.Tok,
		data.Options{Root: string(filepath.Separator), MaxLen: c.Cfg.Data.MaxLen, PadID: pad})
	if err != nil {
		return nil, false, stack.DataErr("--feature", err)
	}
	return ds, known, nil
}

func inputNames(spec data.Spec) string {
	var n []string
	for _, in := range spec.Inputs {
		n = append(n, in.Name)
	}
	return strings.Join(n, ", ")
}

// predictAll scores (and generates for) every sample of ds.
func predictAll(ctx context.Context, c *stack.Stack, ds *data.Dataset, known, generate bool) ([]SamplePrediction, error) {
	out := make([]SamplePrediction, ds.Len())
	opt, err := decodeOptionsOf(c)
	if err != nil {
		return nil, err
	}
	batch := uint64(0)
	err = ForEachBatch(ctx, c, ds, data.ModePrompt, func(b *data.Batch) error {
		batch++
		s := torch.NewScope()
		scores, err := ScoreCached(s, c, ds.Encoder(), b)
		s.Close()
		if err != nil {
			return err
		}
		var answers [][]int32
		if generate {
			if answers, err = decode(c, b, opt, batch); err != nil {
				return err
			}
		}
		for r := range b.B {
			p := SamplePrediction{ID: b.SampleIDs[r], Subset: b.Subsets[r]}
			if known {
				p.Gold = c.Spec.Labels[b.Labels[r]]
			}
			best := 0
			lse := math.Inf(-1)
			for _, v := range scores[r] {
				lse = logAddExp(lse, v)
			}
			for k, v := range scores[r] {
				p.Scores = append(p.Scores, LabelScore{Label: c.Spec.Labels[k], LogLikelihood: v, Prob: math.Exp(v - lse)})
				if v > scores[r][best] {
					best = k
				}
			}
			p.Predicted = c.Spec.Labels[best]
			if generate {
				text := c.Tok.Decode(answers[r])
				label := ""
				if k := data.MapAnswer(text, c.Spec.Labels); k >= 0 {
					label = c.Spec.Labels[k]
				}
				p.Answer, p.AnswerLabel = &text, &label
			}
			out[b.Index[r]] = p
		}
		return nil
	})
	return out, err
}

func logAddExp(a, b float64) float64 {
	if math.IsInf(a, -1) {
		return b
	}
	m := max(a, b)
	return m + math.Log(math.Exp(a-m)+math.Exp(b-m))
}

// UseAR turns Attention Reallocation on for c's model as eval.ar says (when
// enabled) and returns the function that turns it off again.
func UseAR(c *stack.Stack) (func(), error) {
	cfg := c.Cfg.Eval.AR
	if !cfg.Enabled {
		return func() {}, nil
	}
	n := len(c.Model.Layers)
	ar := &model.AR{First: min(2, n-1), Last: n - 1, Beta: cfg.Beta, Adaptive: cfg.Tau != "fixed",
		TauValue: cfg.TauValue, Kappa: cfg.Kappa}
	if len(cfg.Layers) == 2 {
		ar.First, ar.Last = cfg.Layers[0], cfg.Layers[1]
	}
	if err := ar.Validate(n); err != nil {
		return nil, fmt.Errorf("%w: eval.ar: %v", recipes.ErrRecipe, err)
	}
	if cfg.DumpStats {
		ar.Stats = &model.ARStats{}
	}
	c.Model.AR = ar
	return func() { c.Model.AR = nil }, nil
}
