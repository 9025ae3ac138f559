package metrics

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// Metric names accepted by Lookup after "<subset>.".
const (
	MetricAccuracy    = "accuracy"
	MetricUAR         = "uar"
	MetricWeightedF1  = "weighted_f1"
	MetricMacroF1     = "macro_f1"
	MetricConflictGap = "conflict_gap"
	// MetricLoss is the eval loss (SubsetMetrics.Loss): lower is better, so
	// it is not a keep_best_by key (ValidKey).
	MetricLoss = "loss"
)

// Lookup returns the metric named key, of the form "<subset>.<metric>" with metric
// one of accuracy, uar, weighted_f1, macro_f1 and loss (e.g. "all.uar",
// "video-aligned.accuracy"). The conflict gap, which belongs to no subset, is
// "conflict_gap" or "all.conflict_gap". The boolean is false when the key is
// malformed, the metric unknown, the subset absent or empty, the conflict gap
// undefined, or the loss not computed; the value is then 0.
func (r Report) Lookup(key string) (float64, bool) {
	if key == MetricConflictGap || key == SubsetAll+"."+MetricConflictGap {
		if r.ConflictGap == nil {
			return 0, false
		}
		return *r.ConflictGap, true
	}
	i := strings.LastIndexByte(key, '.')
	if i <= 0 || i == len(key)-1 {
		return 0, false
	}
	s, ok := r.Subsets[key[:i]]
	if !ok || s == nil || s.N == 0 {
		return 0, false
	}
	switch key[i+1:] {
	case MetricAccuracy:
		return s.Accuracy, true
	case MetricUAR:
		return s.UAR, true
	case MetricWeightedF1:
		return s.WeightedF1, true
	case MetricMacroF1:
		return s.MacroF1, true
	case MetricLoss:
		if s.Loss != nil {
			return *s.Loss, true
		}
	}
	return 0, false
}

// ValidKey reports whether key names a metric Lookup can ever return (the eval
// loss aside: higher is better for every key it accepts), whatever the
// data: "<subset>.<metric>" with a non-empty subset and a known metric, or the
// conflict gap. Recipes can check keep_best_by with it before training.
func ValidKey(key string) bool {
	if key == MetricConflictGap || key == SubsetAll+"."+MetricConflictGap {
		return true
	}
	i := strings.LastIndexByte(key, '.')
	if i <= 0 {
		return false
	}
	switch key[i+1:] {
	case MetricAccuracy, MetricUAR, MetricWeightedF1, MetricMacroF1:
		return true
	}
	return false
}

// SubsetNames returns the subsets of r in display order: video-aligned,
// audio-aligned, consistent, any other subset sorted by name, then all.
func (r Report) SubsetNames() []string {
	known := []string{SubsetVideoAligned, SubsetAudioAligned, SubsetConsistent}
	var names, others []string
	for _, n := range known {
		if _, ok := r.Subsets[n]; ok {
			names = append(names, n)
		}
	}
	for n := range r.Subsets {
		switch n {
		case SubsetVideoAligned, SubsetAudioAligned, SubsetConsistent, SubsetAll:
		default:
			others = append(others, n)
		}
	}
	sort.Strings(others)
	names = append(names, others...)
	if _, ok := r.Subsets[SubsetAll]; ok {
		names = append(names, SubsetAll)
	}
	return names
}

// WriteTable writes one row per subset (N, ACC/WAR, UAR, weighted F1, macro F1, in
// percent) and the conflict gap line, e.g.
//
//	subset          N  ACC/WAR    UAR    wF1    mF1
//	video-aligned  40    72.50  70.83  72.10  69.44
//	...
//	conflict gap (acc audio-aligned − video-aligned): +5.00 pp
func (r Report) WriteTable(w io.Writer) error {
	names := r.SubsetNames()
	width := widest(append([]string{"subset"}, names...))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tN\tACC/WAR\tUAR\twF1\tmF1\t\n", width, "subset")
	for _, name := range names {
		s := r.Subsets[name]
		fmt.Fprintf(tw, "%-*s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", width, name, s.N,
			100*s.Accuracy, 100*s.UAR, 100*s.WeightedF1, 100*s.MacroF1)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("metrics: write table: %w", err)
	}
	gap := "n/a (audio-aligned or video-aligned subset empty)"
	if r.ConflictGap != nil {
		gap = fmt.Sprintf("%+.2f pp", 100**r.ConflictGap)
	}
	if _, err := fmt.Fprintf(w, "conflict gap (acc audio-aligned − video-aligned): %s\n", gap); err != nil {
		return fmt.Errorf("metrics: write table: %w", err)
	}
	if r.InvalidLabels > 0 {
		if _, err := fmt.Fprintf(w, "dropped %d samples with out-of-range labels\n", r.InvalidLabels); err != nil {
			return fmt.Errorf("metrics: write table: %w", err)
		}
	}
	return nil
}

// WriteConfusion writes the confusion matrix of subset (rows = true labels, columns
// = predicted labels, with label names, and an "unmapped" column when some
// predictions map to no label). It is an error if the subset is absent.
func (r Report) WriteConfusion(w io.Writer, subset string) error {
	s, ok := r.Subsets[subset]
	if !ok || s == nil {
		return fmt.Errorf("metrics: write confusion: no subset %q", subset)
	}
	if len(s.Confusion) != len(r.Labels) || len(s.PerClass) != len(r.Labels) {
		return fmt.Errorf("metrics: write confusion: subset %q has %d rows for %d labels",
			subset, len(s.Confusion), len(r.Labels))
	}
	width := widest(append([]string{`true\pred`}, r.Labels...))
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t", width, `true\pred`)
	for _, l := range r.Labels {
		fmt.Fprintf(tw, "%s\t", l)
	}
	if s.Unmapped > 0 {
		fmt.Fprint(tw, "unmapped\t")
	}
	fmt.Fprintln(tw)
	for i, row := range s.Confusion {
		if len(row) != len(r.Labels) {
			return fmt.Errorf("metrics: write confusion: subset %q row %d has %d columns for %d labels",
				subset, i, len(row), len(r.Labels))
		}
		fmt.Fprintf(tw, "%-*s\t", width, r.Labels[i])
		sum := 0
		for _, v := range row {
			fmt.Fprintf(tw, "%d\t", v)
			sum += v
		}
		if s.Unmapped > 0 {
			fmt.Fprintf(tw, "%d\t", s.PerClass[i].Support-sum)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("metrics: write confusion: %w", err)
	}
	return nil
}

// widest returns the length in runes of the longest string.
func widest(ss []string) int {
	w := 0
	for _, s := range ss {
		w = max(w, utf8.RuneCountInString(s))
	}
	return w
}
