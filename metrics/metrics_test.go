package metrics

import (
	"math"
	"testing"
)

const eps = 1e-12

func near(a, b float64) bool { return math.Abs(a-b) <= eps }

// p builds predictions of one subset from (true, predicted) pairs.
func p(subset string, pairs ...[2]int) []Prediction {
	out := make([]Prediction, len(pairs))
	for i, tp := range pairs {
		out[i] = Prediction{ID: subset + string(rune('a'+i)), Subset: subset, Label: tp[0], Pred: tp[1]}
	}
	return out
}

type want struct {
	n                     int
	acc, uar, wf1, mf1    float64
	precision, recall, f1 []float64 // per class, nil to skip
	support, predicted    []int     // per class, nil to skip
	confusion             [][]int   // nil to skip
	unmapped              int
}

func checkSubset(t *testing.T, name string, got *SubsetMetrics, w want) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: subset missing", name)
	}
	if got.N != w.n || got.Unmapped != w.unmapped {
		t.Errorf("%s: N=%d unmapped=%d, want %d, %d", name, got.N, got.Unmapped, w.n, w.unmapped)
	}
	for _, c := range []struct {
		metric    string
		got, want float64
	}{
		{"accuracy", got.Accuracy, w.acc},
		{"uar", got.UAR, w.uar},
		{"weighted_f1", got.WeightedF1, w.wf1},
		{"macro_f1", got.MacroF1, w.mf1},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s: %s = %.15g, want %.15g", name, c.metric, c.got, c.want)
		}
	}
	for i, pc := range got.PerClass {
		if w.precision != nil && !near(pc.Precision, w.precision[i]) {
			t.Errorf("%s: class %d precision = %g, want %g", name, i, pc.Precision, w.precision[i])
		}
		if w.recall != nil && !near(pc.Recall, w.recall[i]) {
			t.Errorf("%s: class %d recall = %g, want %g", name, i, pc.Recall, w.recall[i])
		}
		if w.f1 != nil && !near(pc.F1, w.f1[i]) {
			t.Errorf("%s: class %d f1 = %g, want %g", name, i, pc.F1, w.f1[i])
		}
		if w.support != nil && pc.Support != w.support[i] {
			t.Errorf("%s: class %d support = %d, want %d", name, i, pc.Support, w.support[i])
		}
		if w.predicted != nil && pc.Predicted != w.predicted[i] {
			t.Errorf("%s: class %d predicted = %d, want %d", name, i, pc.Predicted, w.predicted[i])
		}
	}
	if w.confusion != nil {
		if len(got.Confusion) != len(w.confusion) {
			t.Fatalf("%s: confusion has %d rows, want %d", name, len(got.Confusion), len(w.confusion))
		}
		for i := range w.confusion {
			for j := range w.confusion[i] {
				if got.Confusion[i][j] != w.confusion[i][j] {
					t.Errorf("%s: confusion = %v, want %v", name, got.Confusion, w.confusion)
					return
				}
			}
		}
	}
}

// TestComputeHandCases checks single-subset cases computed by hand. F1 of a class is
// 2·TP/(support+predicted) (= 2TP/(2TP+FP+FN)).
func TestComputeHandCases(t *testing.T) {
	abc := []string{"a", "b", "c"}
	abcd := []string{"a", "b", "c", "d"}
	tests := []struct {
		name   string
		labels []string
		preds  []Prediction
		want   want
	}{
		{
			// true [a a b b c], pred [a b b b a]: c is never predicted.
			// a: TP1 P1/2 R1/2 F1 2/4; b: TP2 P2/3 R1 F1 4/5; c: P0 R0 F1 0.
			// acc 3/5; UAR (1/2+1+0)/3 = 1/2; wF1 (2·.5+2·.8+1·0)/5 = 13/25;
			// macro over {a,b,c} (.5+.8+0)/3 = 13/30.
			name:   "class never predicted",
			labels: abc,
			preds:  p("x", [2]int{0, 0}, [2]int{0, 1}, [2]int{1, 1}, [2]int{1, 1}, [2]int{2, 0}),
			want: want{
				n: 5, acc: 3.0 / 5, uar: 0.5, wf1: 13.0 / 25, mf1: 13.0 / 30,
				precision: []float64{0.5, 2.0 / 3, 0},
				recall:    []float64{0.5, 1, 0},
				f1:        []float64{0.5, 0.8, 0},
				support:   []int{2, 2, 1},
				predicted: []int{2, 3, 0},
				confusion: [][]int{{1, 1, 0}, {0, 2, 0}, {1, 0, 0}},
			},
		},
		{
			// true [a a b b], pred [a c b b]: c is predicted but never true.
			// a: P1 R1/2 F1 2/3; b: P1 R1 F1 1; c: P0 (1 FP) R0 F1 0, support 0.
			// acc 3/4; UAR over {a,b} (1/2+1)/2 = 3/4; wF1 (2·2/3+2·1)/4 = 5/6;
			// macro over true∪pred {a,b,c} (2/3+1+0)/3 = 5/9.
			name:   "class predicted but never true",
			labels: abc,
			preds:  p("x", [2]int{0, 0}, [2]int{0, 2}, [2]int{1, 1}, [2]int{1, 1}),
			want: want{
				n: 4, acc: 0.75, uar: 0.75, wf1: 5.0 / 6, mf1: 5.0 / 9,
				precision: []float64{1, 1, 0},
				recall:    []float64{0.5, 1, 0},
				f1:        []float64{2.0 / 3, 1, 0},
				support:   []int{2, 2, 0},
				predicted: []int{1, 2, 1},
				confusion: [][]int{{1, 0, 1}, {0, 2, 0}, {0, 0, 0}},
			},
		},
		{
			// true [a b], pred [a a]: c and d are neither true nor predicted and
			// are left out of UAR and macro F1.
			// a: P1/2 R1 F1 2/3; b: 0. acc 1/2; UAR (1+0)/2; wF1 (2/3+0)/2 = 1/3;
			// macro over {a,b} = 1/3.
			name:   "classes never present nor predicted",
			labels: abcd,
			preds:  p("x", [2]int{0, 0}, [2]int{1, 0}),
			want: want{
				n: 2, acc: 0.5, uar: 0.5, wf1: 1.0 / 3, mf1: 1.0 / 3,
				precision: []float64{0.5, 0, 0, 0},
				recall:    []float64{1, 0, 0, 0},
				f1:        []float64{2.0 / 3, 0, 0, 0},
			},
		},
		{
			name:   "single sample correct",
			labels: abc,
			preds:  p("x", [2]int{1, 1}),
			want: want{
				n: 1, acc: 1, uar: 1, wf1: 1, mf1: 1,
				precision: []float64{0, 1, 0}, recall: []float64{0, 1, 0},
				confusion: [][]int{{0, 0, 0}, {0, 1, 0}, {0, 0, 0}},
			},
		},
		{
			// macro over {b, c} = (0+0)/2.
			name:   "single sample wrong",
			labels: abc,
			preds:  p("x", [2]int{1, 2}),
			want: want{
				n: 1, acc: 0, uar: 0, wf1: 0, mf1: 0,
				support: []int{0, 1, 0}, predicted: []int{0, 0, 1},
			},
		},
		{
			name:   "all correct",
			labels: abc,
			preds:  p("x", [2]int{0, 0}, [2]int{1, 1}, [2]int{2, 2}, [2]int{2, 2}),
			want: want{
				n: 4, acc: 1, uar: 1, wf1: 1, mf1: 1,
				precision: []float64{1, 1, 1}, recall: []float64{1, 1, 1}, f1: []float64{1, 1, 1},
				confusion: [][]int{{1, 0, 0}, {0, 1, 0}, {0, 0, 2}},
			},
		},
		{
			name:   "all wrong",
			labels: abc,
			preds:  p("x", [2]int{0, 1}, [2]int{1, 2}, [2]int{2, 0}, [2]int{2, 1}),
			want: want{
				n: 4, acc: 0, uar: 0, wf1: 0, mf1: 0,
				precision: []float64{0, 0, 0}, recall: []float64{0, 0, 0}, f1: []float64{0, 0, 0},
				confusion: [][]int{{0, 1, 0}, {0, 0, 1}, {1, 1, 0}},
			},
		},
		{
			// true [a a b], pred [a <none> b]: the unmapped prediction is a false
			// negative of a and no class. a: P1 R1/2 F1 2/3; b: 1.
			// acc 2/3; UAR 3/4; wF1 (2·2/3+1)/3 = 7/9; macro (2/3+1)/2 = 5/6.
			name:   "unmapped prediction",
			labels: abc,
			preds:  p("x", [2]int{0, 0}, [2]int{0, -1}, [2]int{1, 1}),
			want: want{
				n: 3, acc: 2.0 / 3, uar: 0.75, wf1: 7.0 / 9, mf1: 5.0 / 6, unmapped: 1,
				precision: []float64{1, 1, 0}, recall: []float64{0.5, 1, 0},
				support: []int{2, 1, 0}, predicted: []int{1, 1, 0},
				confusion: [][]int{{1, 0, 0}, {0, 1, 0}, {0, 0, 0}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Compute(tc.preds, tc.labels)
			checkSubset(t, "x", r.Subsets["x"], tc.want)
			checkSubset(t, SubsetAll, r.Subsets[SubsetAll], tc.want)
			if len(r.Subsets) != 2 {
				t.Errorf("subsets = %v, want x and all", r.SubsetNames())
			}
			if r.ConflictGap != nil {
				t.Errorf("conflict gap = %v, want nil", *r.ConflictGap)
			}
		})
	}
}

// conflictPreds is a four-label, three-subset evaluation (labels neutral, happy,
// sad, angry).
func conflictPreds() []Prediction {
	var preds []Prediction
	preds = append(preds, p(SubsetVideoAligned, [2]int{0, 0}, [2]int{1, 2}, [2]int{2, 0}, [2]int{3, 3})...)
	preds = append(preds, p(SubsetAudioAligned, [2]int{0, 0}, [2]int{1, 1}, [2]int{2, 2}, [2]int{3, 1})...)
	preds = append(preds, p(SubsetConsistent, [2]int{0, 0}, [2]int{0, 1}, [2]int{1, 1}, [2]int{2, 2})...)
	return preds
}

var emotions4 = []string{"neutral", "happy", "sad", "angry"}

// TestComputeSubsets checks every subset and the conflict gap of conflictPreds.
//
// scikit-learn is not installed in the project venv, so the expected values are
// derived by hand below, following sklearn's formulas
// (precision_recall_fscore_support with zero_division=0, f1_score average=
// "weighted"/"macro" with default labels = unique_labels(y_true, y_pred),
// balanced_accuracy_score for UAR), and re-checked with exact fractions.
//
// all (12 samples): confusion rows (true) × cols (pred)
//
//	neutral [3 1 0 0]  support 4
//	happy   [0 2 1 0]  support 3
//	sad     [1 0 2 0]  support 3
//	angry   [0 1 0 1]  support 2
//	predicted 4 4 3 1; TP 3 2 2 1 → acc 8/12 = 2/3
//	P = 3/4 2/4 2/3 1; R = 3/4 2/3 2/3 1/2; F1 = 2TP/(sup+pred) = 3/4 4/7 2/3 2/3
//	UAR = (3/4+2/3+2/3+1/2)/4 = 31/48
//	wF1 = (4·3/4 + 3·4/7 + 3·2/3 + 2·2/3)/12 = (169/21)/12 = 169/252
//	mF1 = (3/4+4/7+2/3+2/3)/4 = 223/336
//
// video-aligned: (n,n) (h,s) (s,n) (a,a): acc 1/2; R 1 0 0 1 → UAR 1/2;
// F1 2/3 0 0 1 → wF1 = mF1 = 5/12.
// audio-aligned: (n,n) (h,h) (s,s) (a,h): acc 3/4, UAR 3/4; angry never predicted
// (P 0); F1 1 2/3 1 0 → wF1 = mF1 = 2/3.
// consistent: (n,n) (n,h) (h,h) (s,s): angry neither true nor predicted; acc 3/4;
// R 1/2 1 1 → UAR 5/6; F1 2/3 2/3 1 → wF1 (2·2/3+2/3+1)/4 = 3/4, mF1 7/9.
// conflict gap = 3/4 − 1/2 = 1/4.
func TestComputeSubsets(t *testing.T) {
	r := Compute(conflictPreds(), emotions4)
	checkSubset(t, SubsetAll, r.Subsets[SubsetAll], want{
		n: 12, acc: 2.0 / 3, uar: 31.0 / 48, wf1: 169.0 / 252, mf1: 223.0 / 336,
		precision: []float64{0.75, 0.5, 2.0 / 3, 1},
		recall:    []float64{0.75, 2.0 / 3, 2.0 / 3, 0.5},
		f1:        []float64{0.75, 4.0 / 7, 2.0 / 3, 2.0 / 3},
		support:   []int{4, 3, 3, 2},
		predicted: []int{4, 4, 3, 1},
		confusion: [][]int{{3, 1, 0, 0}, {0, 2, 1, 0}, {1, 0, 2, 0}, {0, 1, 0, 1}},
	})
	checkSubset(t, SubsetVideoAligned, r.Subsets[SubsetVideoAligned], want{
		n: 4, acc: 0.5, uar: 0.5, wf1: 5.0 / 12, mf1: 5.0 / 12,
		f1: []float64{2.0 / 3, 0, 0, 1},
	})
	checkSubset(t, SubsetAudioAligned, r.Subsets[SubsetAudioAligned], want{
		n: 4, acc: 0.75, uar: 0.75, wf1: 2.0 / 3, mf1: 2.0 / 3,
		precision: []float64{1, 0.5, 1, 0},
	})
	checkSubset(t, SubsetConsistent, r.Subsets[SubsetConsistent], want{
		n: 4, acc: 0.75, uar: 5.0 / 6, wf1: 0.75, mf1: 7.0 / 9,
		support: []int{2, 1, 1, 0},
	})
	if r.ConflictGap == nil || !near(*r.ConflictGap, 0.25) {
		t.Errorf("conflict gap = %v, want 0.25", r.ConflictGap)
	}
	if got := r.SubsetNames(); len(got) != 4 || got[0] != SubsetVideoAligned || got[3] != SubsetAll {
		t.Errorf("SubsetNames = %v", got)
	}
}

func TestComputeEmptySubsetsAndInvalid(t *testing.T) {
	preds := []Prediction{
		{Subset: SubsetVideoAligned, Label: 0, Pred: 0},
		{Subset: "", Label: 1, Pred: 1},        // "all" only
		{Subset: SubsetAll, Label: 1, Pred: 0}, // "all" only
		{Subset: "other", Label: 1, Pred: 1},
		{Subset: SubsetAudioAligned, Label: 3, Pred: 0},  // dropped: label out of range
		{Subset: SubsetAudioAligned, Label: -1, Pred: 0}, // dropped
	}
	r := Compute(preds, []string{"a", "b"})
	if r.InvalidLabels != 2 {
		t.Errorf("InvalidLabels = %d, want 2", r.InvalidLabels)
	}
	if _, ok := r.Subsets[SubsetAudioAligned]; ok {
		t.Errorf("audio-aligned present with only invalid samples")
	}
	if r.ConflictGap != nil {
		t.Errorf("conflict gap = %v, want nil (audio-aligned empty)", *r.ConflictGap)
	}
	if got := r.SubsetNames(); len(got) != 3 || got[0] != SubsetVideoAligned || got[1] != "other" || got[2] != SubsetAll {
		t.Errorf("SubsetNames = %v, want [video-aligned other all]", got)
	}
	if all := r.Subsets[SubsetAll]; all.N != 4 || !near(all.Accuracy, 0.75) {
		t.Errorf("all: N=%d acc=%g, want 4, 0.75", all.N, all.Accuracy)
	}

	empty := Compute(nil, []string{"a", "b"})
	all, ok := empty.Subsets[SubsetAll]
	if !ok || all.N != 0 || all.Accuracy != 0 || all.MacroF1 != 0 || len(all.Confusion) != 2 {
		t.Errorf("empty: all = %+v, want N=0 with zero metrics and a 2×2 matrix", all)
	}
	if len(empty.Subsets) != 1 || empty.ConflictGap != nil {
		t.Errorf("empty: subsets %v gap %v", empty.SubsetNames(), empty.ConflictGap)
	}
	if _, ok := empty.Lookup("all.accuracy"); ok {
		t.Errorf("Lookup(all.accuracy) ok on an empty report")
	}
}

// The eval loss is the answer NLL per answer token over each subset, from
// the samples that carry one; a report without any has no loss.
func TestComputeLoss(t *testing.T) {
	cases := []struct {
		name      string
		preds     []Prediction
		all, cons float64 // want; NaN: no loss
	}{
		{"per token, not per sample", []Prediction{
			{Subset: SubsetConsistent, Label: 0, Pred: 0, NLL: 3, Tokens: 3},
			{Subset: SubsetVideoAligned, Label: 1, Pred: 0, NLL: 1, Tokens: 1},
		}, 1, 1},
		{"weighted by tokens", []Prediction{
			{Subset: SubsetConsistent, Label: 0, Pred: 0, NLL: 6, Tokens: 2},
			{Subset: SubsetConsistent, Label: 1, Pred: 1, NLL: 2, Tokens: 2},
		}, 2, 2},
		{"generate mode: none", []Prediction{{Subset: SubsetConsistent, Label: 0, Pred: 0}}, math.NaN(), math.NaN()},
		{"an invalid label carries none", []Prediction{
			{Subset: SubsetConsistent, Label: 0, Pred: 0, NLL: 1, Tokens: 2},
			{Subset: SubsetConsistent, Label: 7, Pred: 0, NLL: 100, Tokens: 1},
		}, 0.5, 0.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Compute(c.preds, []string{"a", "b"})
			for _, w := range []struct {
				key  string
				want float64
			}{{"all.loss", c.all}, {"consistent.loss", c.cons}} {
				got, ok := r.Lookup(w.key)
				if math.IsNaN(w.want) {
					if ok {
						t.Errorf("%s = %g, want none", w.key, got)
					}
					continue
				}
				if !ok || !near(got, w.want) {
					t.Errorf("%s = %g (%v), want %g", w.key, got, ok, w.want)
				}
			}
			if ValidKey("all.loss") {
				t.Errorf("all.loss accepted as a keep_best_by key (lower is better)")
			}
		})
	}
}
