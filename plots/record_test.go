package plots

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestRecordJSONKeys(t *testing.T) {
	r := synthetic(10)[9]
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"emotion_loss", "epoch", "eval", "grad_norm", "lb_loss", "lr", "modality_weights",
		"router", "skipped", "step", "tokens_per_s", "total_loss", "z_loss"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	if !strings.Contains(string(m["modality_weights"]), `"nonvisual"`) {
		t.Errorf("modality_weights = %s", m["modality_weights"])
	}
	var router map[string]map[string]json.RawMessage
	if err := json.Unmarshal(m["router"], &router); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"load", "prob", "entropy", "z", "balance"} {
		if _, ok := router["visual"][k]; !ok {
			t.Errorf("router.visual lacks %q: %s", k, m["router"])
		}
	}
}

func TestReadRecords(t *testing.T) {
	recs := synthetic(3)
	var sb strings.Builder
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(b)
		sb.WriteString("\n")
	}
	full := sb.String()
	tests := []struct {
		name    string
		content string
		want    int
		wantErr bool
	}{
		{"complete", full, len(recs), false},
		{"blank lines", "\n" + strings.ReplaceAll(full, "\n", "\n\n"), len(recs), false},
		{"no final newline", strings.TrimSuffix(full, "\n"), len(recs), false},
		{"truncated last line", full + `{"step":4,"emotion_lo`, len(recs), false},
		{"empty", "", 0, false},
		{"corrupt middle line", `{"step":1}` + "\n" + `{"step":` + "\n" + `{"step":3}` + "\n", 0, true},
		{"corrupt complete last line", `{"step":1}` + "\n" + `{"step":` + "\n", 0, true},
		{"wrong type", `{"step":1}` + "\n" + `{"step":"two"}` + "\n", 0, true},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.Repeat("m", i+1)+".jsonl")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadRecords(path)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ReadRecords succeeded with %d records, want an error", len(got))
				}
				if !strings.Contains(err.Error(), "line 2") {
					t.Errorf("error %q does not name line 2", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadRecords: %v", err)
			}
			if len(got) != tc.want {
				t.Fatalf("got %d records, want %d", len(got), tc.want)
			}
			if tc.want > 0 && !reflect.DeepEqual(got, recs) {
				t.Errorf("records differ after the round trip")
			}
		})
	}
	if _, err := ReadRecords(filepath.Join(dir, "missing.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestIsEval(t *testing.T) {
	ev := map[string]float64{"all.accuracy": 0.5}
	tests := []struct {
		name string
		r    Record
		want bool
	}{
		{"explicit eval", Record{Kind: KindEval, Step: 3, LR: 1e-4, Eval: ev}, true},
		{"explicit train with eval", Record{Kind: KindTrain, Eval: ev}, false},
		{"train line", Record{Step: 3, EmotionLoss: 1, TotalLoss: 1, LR: 1e-4}, false},
		{"train line with eval", Record{Step: 3, EmotionLoss: 1, TotalLoss: 1, LR: 1e-4, Eval: ev}, false},
		{"untagged eval-only line", Record{Step: 3, Epoch: 1, Eval: ev, ModalityWeights: &ModalityWeights{1, 1}}, true},
		{"empty", Record{}, false},
	}
	for _, tc := range tests {
		if got := tc.r.IsEval(); got != tc.want {
			t.Errorf("%s: IsEval = %v, want %v", tc.name, got, tc.want)
		}
	}
}
