// Package metrics computes the evaluation metrics of an emotion-recognition run:
// accuracy (WAR), UAR, weighted and macro F1, per-class precision/recall/F1 and the
// confusion matrix, for every conflict subset and for all samples together, plus the
// conflict gap acc(audio-aligned) − acc(video-aligned).
//
// Conventions (they match scikit-learn with zero_division=0):
//
//   - Accuracy is the fraction of correct predictions. It equals WAR, the
//     support-weighted average of the per-class recalls.
//   - UAR is the unweighted mean of the per-class recalls over the classes present
//     in the ground truth of the subset.
//   - Weighted F1 is the support-weighted mean of the per-class F1 (classes absent
//     from the ground truth have weight 0), as f1_score(average="weighted").
//   - Macro F1 is the unweighted mean of the per-class F1 over the union of the
//     classes present in the ground truth or in the predictions of the subset, as
//     f1_score(y_true, y_pred, average="macro") with its default labels
//     (unique_labels(y_true, y_pred)). A class predicted but never true counts with
//     F1 0; a class neither true nor predicted is left out.
//   - Precision of a class never predicted is 0, recall of a class never true is 0,
//     and F1 is 2·TP/(2·TP+FP+FN), or 0 when that denominator is 0.
//
// Out-of-range values never panic. A prediction outside [0, len(labels)) (e.g. a
// generated answer that maps to no label) is an "unmapped" prediction: it counts in
// N as a wrong answer (a false negative of its true class), is tallied in
// SubsetMetrics.Unmapped, is not a class of its own and has no confusion column. A
// sample whose true label is outside [0, len(labels)) is dropped from every metric
// and counted in Report.InvalidLabels.
//
// Every metric is finite: no NaN or Inf reaches the JSON.
package metrics

import "math"

// Names of the conflict subsets and of the subset holding every sample.
const (
	SubsetVideoAligned = "video-aligned"
	SubsetAudioAligned = "audio-aligned"
	SubsetConsistent   = "consistent"
	SubsetAll          = "all"
)

// Prediction is the outcome of one evaluation sample.
type Prediction struct {
	ID     string // sample identifier (not used by the metrics; kept for reports)
	Subset string // conflict subset; "" or "all" puts the sample in "all" only
	Label  int    // index of the true label in the label list
	Pred   int    // index of the predicted label; out of range means unmapped
	// NLL is the negative log-likelihood of the true label's answer tokens
	// (summed) and Tokens their number; Tokens 0 means no loss was computed
	// (generate mode).
	NLL    float64
	Tokens int
}

// ClassMetrics holds the one-vs-rest metrics of one label within a subset.
type ClassMetrics struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`   // number of samples whose true label is this class
	Predicted int     `json:"predicted"` // number of samples predicted as this class
}

// SubsetMetrics holds the metrics of one subset.
type SubsetMetrics struct {
	N          int     `json:"n"`
	Accuracy   float64 `json:"accuracy"` // = WAR
	UAR        float64 `json:"uar"`
	WeightedF1 float64 `json:"weighted_f1"`
	MacroF1    float64 `json:"macro_f1"`
	// Unmapped counts predictions outside the label range (counted as wrong).
	Unmapped int `json:"unmapped"`
	// Loss is the eval loss: the true labels' answer-token negative
	// log-likelihood per token over the subset (the training emotion loss of
	// samples trained on their label answer); absent when not computed.
	Loss *float64 `json:"loss,omitempty"`
	// PerClass has one entry per label, in label order.
	PerClass []ClassMetrics `json:"per_class"`
	// Confusion[t][p] counts samples of true label t predicted as p, over all
	// labels; unmapped predictions have no column.
	Confusion [][]int `json:"confusion"`
}

// Report holds the metrics of an evaluation. It marshals to the eval.json layout:
//
//	{"labels": [...], "subsets": {"all": {...}, "video-aligned": {...}, ...},
//	 "conflict_gap": 0.05, "invalid_labels": 0}
//
// Subsets holds every subset with at least one sample, and always "all" (whose N may
// be 0). A subset with no sample is absent from the map. ConflictGap is nil (JSON
// null) unless both "audio-aligned" and "video-aligned" are present.
type Report struct {
	Labels  []string                  `json:"labels"`
	Subsets map[string]*SubsetMetrics `json:"subsets"`
	// ConflictGap is acc(audio-aligned) − acc(video-aligned), or nil when either
	// subset has no sample.
	ConflictGap *float64 `json:"conflict_gap"`
	// InvalidLabels counts samples dropped because their true label is out of range.
	InvalidLabels int `json:"invalid_labels"`
	// Step is the optimizer step of the adapters evaluated, and Checkpoint
	// their checkpoint or export directory (set by whoever evaluates; empty
	// when unknown).
	Step       int    `json:"step,omitempty"`
	Checkpoint string `json:"checkpoint,omitempty"`
}

// Compute returns the metrics of preds, whose Label and Pred index labels.
func Compute(preds []Prediction, labels []string) Report {
	k := len(labels)
	r := Report{
		Labels:  append([]string(nil), labels...),
		Subsets: make(map[string]*SubsetMetrics),
	}
	counts := map[string]*confusion{SubsetAll: newConfusion(k)}
	for _, p := range preds {
		if p.Label < 0 || p.Label >= k {
			r.InvalidLabels++
			continue
		}
		counts[SubsetAll].add(p)
		if p.Subset == "" || p.Subset == SubsetAll {
			continue
		}
		c, ok := counts[p.Subset]
		if !ok {
			c = newConfusion(k)
			counts[p.Subset] = c
		}
		c.add(p)
	}
	for name, c := range counts {
		r.Subsets[name] = c.metrics(labels)
	}
	audio, okA := r.Subsets[SubsetAudioAligned]
	video, okV := r.Subsets[SubsetVideoAligned]
	if okA && okV && audio.N > 0 && video.N > 0 {
		gap := audio.Accuracy - video.Accuracy
		r.ConflictGap = &gap
	}
	return r
}

// confusion accumulates the counts of one subset.
type confusion struct {
	n        int
	m        [][]int // m[true][pred]
	unmapped []int   // unmapped predictions per true label
	nll      float64 // summed answer NLL of the samples with Tokens > 0
	tokens   int
}

func newConfusion(k int) *confusion {
	m := make([][]int, k)
	for i := range m {
		m[i] = make([]int, k)
	}
	return &confusion{m: m, unmapped: make([]int, k)}
}

func (c *confusion) add(p Prediction) {
	label, pred := p.Label, p.Pred
	c.n++
	if p.Tokens > 0 {
		c.nll += p.NLL
		c.tokens += p.Tokens
	}
	if pred < 0 || pred >= len(c.m) {
		c.unmapped[label]++
		return
	}
	c.m[label][pred]++
}

// metrics derives the subset metrics from the counts.
func (c *confusion) metrics(labels []string) *SubsetMetrics {
	k := len(labels)
	s := &SubsetMetrics{
		N:         c.n,
		PerClass:  make([]ClassMetrics, k),
		Confusion: c.m,
	}
	if loss := c.nll / float64(c.tokens); c.tokens > 0 && !math.IsNaN(loss) && !math.IsInf(loss, 0) {
		s.Loss = &loss
	}
	predicted := make([]int, k)
	for t := range k {
		for p := range k {
			predicted[p] += c.m[t][p]
		}
	}
	var correct, trueClasses, unionClasses int
	var recallSum, weightedF1, macroF1 float64
	for i := range k {
		support := 0
		for _, v := range c.m[i] {
			support += v
		}
		// Unmapped predictions of class i are false negatives too.
		support += c.unmapped[i]
		s.Unmapped += c.unmapped[i]
		tp := c.m[i][i]
		fp := predicted[i] - tp
		fn := support - tp
		cm := ClassMetrics{
			Label:     labels[i],
			Precision: ratio(tp, predicted[i]),
			Recall:    ratio(tp, support),
			F1:        ratio(2*tp, 2*tp+fp+fn),
			Support:   support,
			Predicted: predicted[i],
		}
		s.PerClass[i] = cm
		correct += tp
		if support > 0 {
			trueClasses++
			recallSum += cm.Recall
			weightedF1 += float64(support) * cm.F1
		}
		if support > 0 || predicted[i] > 0 {
			unionClasses++
			macroF1 += cm.F1
		}
	}
	s.Accuracy = ratio(correct, c.n)
	if trueClasses > 0 {
		s.UAR = recallSum / float64(trueClasses)
	}
	if c.n > 0 {
		weightedF1 /= float64(c.n)
		s.WeightedF1 = weightedF1
	}
	if unionClasses > 0 {
		s.MacroF1 = macroF1 / float64(unionClasses)
	}
	return s
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
