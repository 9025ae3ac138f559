package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	r := Compute(conflictPreds(), emotions4)
	noGap := Compute(p(SubsetVideoAligned, [2]int{0, 0}), emotions4)
	tests := []struct {
		r      Report
		key    string
		want   float64
		wantOK bool
	}{
		{r, "all.accuracy", 2.0 / 3, true},
		{r, "all.uar", 31.0 / 48, true},
		{r, "all.weighted_f1", 169.0 / 252, true},
		{r, "all.macro_f1", 223.0 / 336, true},
		{r, "video-aligned.accuracy", 0.5, true},
		{r, "consistent.uar", 5.0 / 6, true},
		{r, "conflict_gap", 0.25, true},
		{r, "all.conflict_gap", 0.25, true},
		{r, "video-aligned.conflict_gap", 0, false},
		{r, "all.f1", 0, false},
		{r, "missing.accuracy", 0, false},
		{r, "accuracy", 0, false},
		{r, ".accuracy", 0, false},
		{r, "all.", 0, false},
		{r, "", 0, false},
		{noGap, "conflict_gap", 0, false},
		{noGap, "audio-aligned.accuracy", 0, false},
		{noGap, "video-aligned.accuracy", 1, true},
	}
	for _, tc := range tests {
		got, ok := tc.r.Lookup(tc.key)
		if ok != tc.wantOK || !near(got, tc.want) {
			t.Errorf("Lookup(%q) = %g, %v; want %g, %v", tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"all.accuracy": true, "audio-aligned.uar": true, "x.weighted_f1": true,
		"consistent.macro_f1": true, "conflict_gap": true, "all.conflict_gap": true,
		"all.loss": false, "accuracy": false, ".uar": false, "": false,
		"consistent.conflict_gap": false,
	} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestReportJSON pins the eval.json key names and checks the round trip.
func TestReportJSON(t *testing.T) {
	r := Compute(conflictPreds(), emotions4)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatalf("unmarshal generic: %v", err)
	}
	if got, want := sortedKeys(generic), []string{"conflict_gap", "invalid_labels", "labels", "subsets"}; !reflect.DeepEqual(got, want) {
		t.Errorf("top-level keys = %v, want %v", got, want)
	}
	all := generic["subsets"].(map[string]any)["all"].(map[string]any)
	wantKeys := []string{"accuracy", "confusion", "macro_f1", "n", "per_class", "uar", "unmapped", "weighted_f1"}
	if got := sortedKeys(all); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("subset keys = %v, want %v", got, wantKeys)
	}
	class := all["per_class"].([]any)[0].(map[string]any)
	if got, want := sortedKeys(class), []string{"f1", "label", "precision", "predicted", "recall", "support"}; !reflect.DeepEqual(got, want) {
		t.Errorf("per-class keys = %v, want %v", got, want)
	}
	if class["label"] != "neutral" {
		t.Errorf("per_class[0].label = %v, want neutral", class["label"])
	}

	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back, r)
	}

	// An undefined conflict gap is null, not NaN (which json cannot encode).
	data, err = json.Marshal(Compute(nil, emotions4))
	if err != nil {
		t.Fatalf("marshal empty: %v", err)
	}
	if !bytes.Contains(data, []byte(`"conflict_gap":null`)) {
		t.Errorf("empty report JSON lacks conflict_gap null: %s", data)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := Compute(conflictPreds(), emotions4).WriteTable(&buf); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("table has %d lines, want 6:\n%s", len(lines), out)
	}
	for i, want := range []string{"subset", "video-aligned", "audio-aligned", "consistent", "all", "conflict gap"} {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), want) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want)
		}
	}
	// all: N 12, acc 66.67, UAR 64.58, wF1 67.06, mF1 66.37.
	if f := strings.Fields(lines[4]); !reflect.DeepEqual(f, []string{"all", "12", "66.67", "64.58", "67.06", "66.37"}) {
		t.Errorf("all row = %q", f)
	}
	if !strings.Contains(lines[5], "+25.00 pp") {
		t.Errorf("gap line = %q, want +25.00 pp", lines[5])
	}

	buf.Reset()
	if err := Compute(nil, emotions4).WriteTable(&buf); err != nil {
		t.Fatalf("WriteTable empty: %v", err)
	}
	if !strings.Contains(buf.String(), "n/a") {
		t.Errorf("empty table lacks n/a gap:\n%s", buf.String())
	}

	if err := Compute(conflictPreds(), emotions4).WriteTable(failWriter{}); !errors.Is(err, errWrite) {
		t.Errorf("WriteTable to a failing writer = %v, want errWrite", err)
	}
}

var errWrite = errors.New("write failed")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteConfusion(t *testing.T) {
	preds := append(conflictPreds(), Prediction{Subset: SubsetConsistent, Label: 3, Pred: -1})
	r := Compute(preds, emotions4)
	var buf bytes.Buffer
	if err := r.WriteConfusion(&buf, SubsetAll); err != nil {
		t.Fatalf("WriteConfusion: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := [][]string{
		{`true\pred`, "neutral", "happy", "sad", "angry", "unmapped"},
		{"neutral", "3", "1", "0", "0", "0"},
		{"happy", "0", "2", "1", "0", "0"},
		{"sad", "1", "0", "2", "0", "0"},
		{"angry", "0", "1", "0", "1", "1"},
	}
	if len(lines) != len(want) {
		t.Fatalf("confusion has %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i := range want {
		if f := strings.Fields(lines[i]); !reflect.DeepEqual(f, want[i]) {
			t.Errorf("line %d = %q, want %q", i, f, want[i])
		}
	}
	if err := r.WriteConfusion(&buf, "missing"); err == nil {
		t.Errorf("WriteConfusion(missing) succeeded")
	}
	bad := r
	bad.Labels = bad.Labels[:2]
	if err := bad.WriteConfusion(&buf, SubsetAll); err == nil {
		t.Errorf("WriteConfusion with mismatched labels succeeded")
	}
}
