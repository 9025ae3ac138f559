package data

import (
	"slices"
	"testing"

	"github.com/mose-llm/mose/modality"
)

func TestBatchTrain(t *testing.T) {
	fx := newFixture(t, 6)
	ds, err := Open(fx.manifest, fx.spec, newWordTok(), Options{PadID: 0})
	if err != nil {
		t.Fatal(err)
	}
	idx := []int{5, 0, 3}
	b, err := ds.Batch(idx, ModeTrain, nil)
	if err != nil {
		t.Fatal(err)
	}
	T := 0
	for _, i := range idx {
		T = max(T, ds.Examples[i].Len())
	}
	if b.B != 3 || b.T != T || len(b.IDs) != 3*T || len(b.Targets) != 3*T || len(b.Modality) != 3*T || b.Examples != 3 {
		t.Fatalf("shape B=%d T=%d", b.B, b.T)
	}
	answers := 0
	for r, i := range idx {
		ex := ds.Examples[i]
		if b.SampleIDs[r] != ex.ID || b.Labels[r] != ex.Label || b.Lengths[r] != ex.Len() || b.Index[r] != i {
			t.Fatalf("row %d metadata", r)
		}
		for p := range T {
			at := r*T + p
			// Targets: position p predicts token p+1 iff p+1 is an answer token.
			wantT := int64(IgnoreIndex)
			if p+1 >= ex.AnswerStart && p+1 < ex.Len() {
				wantT = int64(ex.IDs[p+1])
				answers++
			}
			if b.Targets[at] != wantT {
				t.Fatalf("row %d pos %d: target %d, want %d", r, p, b.Targets[at], wantT)
			}
			wantM := int8(modality.Text)
			switch {
			case p >= ex.Len():
				wantM = modality.Pad
			case p >= ex.Offsets[0] && p < ex.Offsets[0]+4:
				wantM = modality.Visual
			case p == ex.Offsets[1]:
				wantM = modality.Audio
			}
			if b.Modality[at] != wantM {
				t.Fatalf("row %d pos %d: modality %d, want %d", r, p, b.Modality[at], wantM)
			}
			if p < ex.Len() && b.IDs[at] != int64(ex.IDs[p]) || p >= ex.Len() && b.IDs[at] != 0 {
				t.Fatalf("row %d pos %d: id %d", r, p, b.IDs[at])
			}
		}
	}
	if b.AnswerTokens != answers || len(b.TargetPos) != answers || answers != 3*2 {
		t.Fatalf("answer tokens %d / %d / %d", b.AnswerTokens, len(b.TargetPos), answers)
	}
	for _, p := range b.TargetPos {
		if b.Targets[p] == IgnoreIndex {
			t.Fatalf("TargetPos %d has no target", p)
		}
	}
	pad := 3 * T
	for _, l := range b.Lengths {
		pad -= l
	}
	if b.PadTokens != pad || b.Waste() != float64(pad)/float64(3*T) {
		t.Fatalf("pad %d, want %d", b.PadTokens, pad)
	}

	// Features: frames of sample i are 100*i + 0..11, audio is i, i+1; each
	// feature token lands on a slot of its own row.
	fr, au := b.Feature("frames"), b.Feature("audio")
	if fr == nil || au == nil || fr.Tokens != 4 || fr.Dim != 3 || len(fr.Data) != 3*12 || len(au.Positions) != 3 {
		t.Fatalf("features %+v %+v", fr, au)
	}
	for r, i := range idx {
		if !slices.Equal(fr.Data[r*12:(r+1)*12], ramp(12, float32(100*i))) || !slices.Equal(au.Data[r*2:r*2+2], ramp(2, float32(i))) {
			t.Fatalf("row %d features wrong", r)
		}
		for k := range 4 {
			if p := fr.Positions[r*4+k]; int(p) != r*T+ds.Examples[i].Offsets[0]+k || b.Modality[p] != modality.Visual {
				t.Fatalf("row %d token %d position %d", r, k, p)
			}
		}
		if p := au.Positions[r]; b.Modality[p] != modality.Audio || int(p)/T != r {
			t.Fatalf("audio position %d", p)
		}
	}
}

func TestBatchScore(t *testing.T) {
	fx := newFixture(t, 4)
	tok := newWordTok()
	ds, err := Open(fx.manifest, fx.spec, tok, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ds.ScoreBatch([]int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	L := len(fx.spec.Labels)
	if b.B != 2*L || b.Examples != 2 || len(b.Candidates) != 2*L {
		t.Fatalf("B=%d examples=%d", b.B, b.Examples)
	}
	for r := range b.B {
		g, k := r/L, r%L
		ex := ds.Examples[[]int{1, 2}[g]]
		if b.Group[r] != g || b.Candidates[r] != k || b.Labels[r] != ex.Label {
			t.Fatalf("row %d: group %d cand %d label %d", r, b.Group[r], b.Candidates[r], b.Labels[r])
		}
		row := b.IDs[r*b.T : r*b.T+b.Lengths[r]]
		ans := make([]int32, 0)
		for _, v := range row[ex.AnswerStart:] {
			ans = append(ans, int32(v))
		}
		if tok.Decode(ans) != fx.spec.Labels[k]+" </s>" {
			t.Fatalf("row %d answer %q", r, tok.Decode(ans))
		}
		// Same prompt for every candidate; features copied to every row.
		if !slices.Equal(b.Features[0].Data[r*12:(r+1)*12], ramp(12, float32(100*[]int{1, 2}[g]))) {
			t.Fatalf("row %d features", r)
		}
	}
}

func TestBatchPrompt(t *testing.T) {
	fx := newFixture(t, 2)
	ds, err := Open(fx.manifest, fx.spec, newWordTok(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ds.Batch([]int{0, 1}, ModePrompt, nil)
	if err != nil {
		t.Fatal(err)
	}
	for r := range 2 {
		if b.Lengths[r] != ds.Examples[r].AnswerStart {
			t.Fatalf("row %d holds %d tokens, want the %d of the prompt", r, b.Lengths[r], ds.Examples[r].AnswerStart)
		}
	}
	if b.AnswerTokens != 0 || len(b.TargetPos) != 0 {
		t.Fatal("prompt batches carry no targets")
	}
}
