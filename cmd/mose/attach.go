package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/model"
)

// The default prompt is Emotion-LLaMA's; <s> and </s> become the base
// tokenizer's own BOS and EOS tokens, and each placeholder part appears only
// when an input uses it.
const (
	defaultVideoPart = "<video><VideoHere></video> "
	defaultFeatPart  = "<feature><FeatureHere></feature> "
	defaultTemplate  = "<s>[INST] " + defaultVideoPart + defaultFeatPart + "The person in video says: {subtitle}. [emotion] " +
		"Please determine which emotion label in the video represents: {labels}. [/INST]"
)

func newAttachCmd() *cobra.Command {
	var (
		base, out, template, answer, labels string
		inputs                              []string
		seed                                uint64
	)
	cmd := &cobra.Command{
		Use:   "attach --model HF_DIR --input name=N,modality=visual|audio,dim=F[,tokens=T,projector=linear|mlp2,placeholder=P] ... --out DIR",
		Short: "Make a plain HF LLM trainable by mose: attach modality inputs and fresh projectors",
		Long: `attach turns a plain Hugging Face model dir (LLaMA, Qwen2 or Mistral; e.g. SmolLM2,
Qwen2.5, LLaMA-3) into a mose model dir, the way Emotion-LLaMA was built on its
LLM: it adds the "mose" section (the modality inputs, the prompt template and
the labels) and one freshly initialised projector per input (PyTorch's
nn.Linear init, U(±1/√fan_in), seeded by --seed), without copying or rewriting
the base weights: --out holds config.json, mose-projectors.safetensors, an index
mapping the base tensors to symlinks of the base's weight files, symlinks to
its tokenizer and other files, and mose_attach.json, which every load checks
(a base that moved or changed is an error). Train the projectors with the
adapters: model.train_projectors: true.

--input (repeatable): name, modality (visual or audio), dim (feature size);
tokens (per sample, default 1), projector (linear or mlp2, default linear),
placeholder (where the tokens go in the template, default <FeatureHere>).
The default template is Emotion-LLaMA's with the base tokenizer's BOS, the
default answer "{label}" + its EOS, the default labels the nine emotions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if base == "" || out == "" || len(inputs) == 0 {
				return badInput(errors.New("attach: --model, --out and at least one --input are required"))
			}
			spec := data.Spec{Labels: data.EmotionLabels}
			if labels != "" {
				spec.Labels = strings.Split(labels, ",")
			}
			for i, s := range inputs {
				in, err := parseInput(s)
				if err != nil {
					return badInput(fmt.Errorf("attach: --input %d (%q): %w", i+1, s, err))
				}
				spec.Inputs = append(spec.Inputs, in)
			}
			tok, err := tokenizer.Load(filepath.Join(base, "tokenizer.json"))
			if err != nil {
				return badInput(fmt.Errorf("attach: the base's tokenizer: %w", err))
			}
			spec.Prompt = data.Prompt{Template: template, Answer: answer}
			bos, eos := specialTokens(base, tok)
			if template == "" {
				spec.Prompt.Template = defaultPrompt(bos, spec.Inputs)
			}
			if answer == "" {
				spec.Prompt.Answer = "{label}" + eos
			}
			if err := spec.Validate(); err != nil {
				return badInput(fmt.Errorf("attach: %w", err))
			}
			section, err := json.Marshal(spec)
			if err != nil {
				return err
			}
			cfg, err := model.Attach(base, out, model.AttachOptions{Mose: section, Seed: seed})
			if err != nil {
				return badInput(fmt.Errorf("attach: %w", err))
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "attached %d input(s) to %s (%s, d=%d, %d layers) in %s:\n", len(spec.Inputs), base, cfg.ModelType, cfg.HiddenSize, cfg.NumLayers, out)
			for _, in := range spec.Inputs {
				fmt.Fprintf(w, "  %s: %s, %d x %d -> %s projector, at %s\n", in.Name, in.Modality, in.Tokens, in.Dim, in.Projector, in.Placeholder)
			}
			fmt.Fprintf(w, "prompt: %s\nanswer: %s\nlabels: %s\n", spec.Prompt.Template, spec.Prompt.Answer, strings.Join(spec.Labels, ", "))
			fmt.Fprintf(w, "next: mose validate --recipe emotion-llama-lora --set model.path=%s --set model.train_projectors=true --set data.train=...\n", out)
			logrus.WithFields(logrus.Fields{"base": base, "out": out, "inputs": len(spec.Inputs), "seed": seed}).Info("attached")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&base, "model", "", "plain HF model dir (config.json, safetensors, tokenizer.json)")
	f.StringVar(&out, "out", "", "mose model dir to write (must not exist or be empty)")
	f.StringArrayVar(&inputs, "input", nil, "a modality input: name=N,modality=visual|audio,dim=F[,tokens=T,projector=linear|mlp2,placeholder=P]")
	f.StringVar(&template, "template", "", "prompt template (default: Emotion-LLaMA's, with the tokenizer's BOS)")
	f.StringVar(&answer, "answer", "", "answer template with {label} (default: {label} and the tokenizer's EOS)")
	f.StringVar(&labels, "labels", "", "comma-separated labels (default: the nine emotion labels)")
	f.Uint64Var(&seed, "seed", 1, "seed of the projectors' init")
	return cmd
}

// parseInput reads one --input value.
func parseInput(s string) (data.Input, error) {
	in := data.Input{Tokens: 1, Projector: model.ProjectorLinear, Placeholder: "<FeatureHere>"}
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return in, fmt.Errorf("%q is not key=value", kv)
		}
		if seen[k] {
			return in, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "name":
			in.Name = v
		case "modality":
			in.Modality = v
		case "dim", "feature_dim":
			in.Dim, err = strconv.Atoi(v)
		case "tokens":
			in.Tokens, err = strconv.Atoi(v)
		case "projector":
			if v != model.ProjectorLinear && v != model.ProjectorMLP2 {
				return in, fmt.Errorf("projector %q (want linear or mlp2)", v)
			}
			in.Projector = v
		case "placeholder":
			in.Placeholder = v
		default:
			return in, fmt.Errorf("unknown key %q (want name, modality, dim, tokens, projector, placeholder)", k)
		}
		if err != nil {
			return in, fmt.Errorf("%s: %w", k, err)
		}
	}
	for _, k := range []string{"name", "modality", "dim"} {
		if !seen[k] && !(k == "dim" && seen["feature_dim"]) {
			return in, fmt.Errorf("%s is required", k)
		}
	}
	return in, nil
}

// defaultPrompt is Emotion-LLaMA's template for these inputs, with bos for <s>.
func defaultPrompt(bos string, inputs []data.Input) string {
	t := strings.Replace(defaultTemplate, "<s>", bos, 1)
	used := map[string]bool{}
	for _, in := range inputs {
		used[in.Placeholder] = true
	}
	if !used["<VideoHere>"] {
		t = strings.Replace(t, defaultVideoPart, "", 1)
	}
	if !used["<FeatureHere>"] {
		t = strings.Replace(t, defaultFeatPart, "", 1)
	}
	return t
}

// specialTokens returns the text of the base's BOS and EOS tokens: config.json's
// bos_token_id and eos_token_id (the first of a list), as transformers'
// generation uses them, else the tokenizer's own; "" when there is none.
func specialTokens(base string, tok *tokenizer.Tokenizer) (bos, eos string) {
	var cfg map[string]json.RawMessage
	b, _ := os.ReadFile(filepath.Join(base, "config.json"))
	json.Unmarshal(b, &cfg)
	pick := func(key string, fallback func() (int32, bool)) string {
		var one int32
		var list []int32
		switch {
		case json.Unmarshal(cfg[key], &one) == nil:
		case json.Unmarshal(cfg[key], &list) == nil && len(list) > 0:
			one = list[0]
		default:
			id, ok := fallback()
			if !ok {
				return ""
			}
			one = id
		}
		s, _ := tok.IDToken(one)
		return s
	}
	return pick("bos_token_id", tok.BOS), pick("eos_token_id", tok.EOS)
}
