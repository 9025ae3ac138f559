package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The export's README says which loader gives what, for each format and method.
func TestExportReadme(t *testing.T) {
	agree, kl := 0.67, 0.0195
	approx := &MergeReport{Approximate: true, Calibration: "cal.jsonl", LabelAgreement: &agree, MeanLogitKL: &kl}
	cases := []struct {
		name, format, method string
		projectors           bool
		rep                  *MergeReport
		want, not            []string
	}{
		{"peft mose", FormatPEFT, "mose", true, nil,
			[]string{"**approximate**: only the omni expert", "`mose_hf`", "**exact**: every expert, gate and modality weight"}, []string{"merged"}},
		{"peft lora", FormatPEFT, "lora", false, nil,
			[]string{"**exact**: a complete LoRA adapter", "`mose_hf`"}, []string{"approximate", "trained projectors"}},
		{"peft lora with projectors", FormatPEFT, "lora", true, nil,
			[]string{"**exact**: a complete LoRA adapter", "the trained projectors", "mose_adapter.safetensors"}, []string{"approximate"}},
		{"merged lora", FormatMerged, "lora", true, &MergeReport{}, []string{"**exact**", "mose_projectors.safetensors", "mose_hf.load(model, THIS_DIR)"}, []string{"approximate"}},
		{"merged mose", FormatMerged, "mose", true, approx,
			[]string{"**approximate**", "agreement with the unmerged model 0.6700", "KL 0.0195 nats", "cal.jsonl"}, []string{"**exact**"}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			if err := writeReadme(dir, Options{Format: c.format, Checkpoint: "ck"}, c.method, c.projectors, c.rep); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, ReadmeFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("README lacks %q:\n%s", w, b)
				}
			}
			for _, n := range c.not {
				if strings.Contains(string(b), n) {
					t.Errorf("README says %q:\n%s", n, b)
				}
			}
		})
	}
}
