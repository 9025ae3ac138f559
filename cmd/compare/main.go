// Command compare trains and evaluates a list of adapter variants over several
// seeds on the same synthetic data, and reports mean ± sd per subset, the
// conflict gap and the trainable parameter count of each variant, so that
// claims about MoSE are made against a capacity-matched LoRA baseline.
//
//	go run ./cmd/compare                        # the full table (README)
//	go run ./cmd/compare --seeds 1 --steps 30   # a quick smoke run
//	go run ./cmd/compare --study audio-signal=3,6,9 --variants mose,lora-matched
//
// It drives bin/mose (build it first: make build) with the demo recipe and
// --set overrides, one process per run (--jobs at a time, each with
// --threads libtorch threads), and writes into --out: one directory per run,
// results.json, table.txt and compare.png (or study.json, study.txt and
// study.png with --study).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "compare: error:", err)
		os.Exit(2)
	}
}

// options are the command line.
type options struct {
	mose, out, recipe string
	seeds             []int
	steps             int
	jobs, threads     int
	variants          []string
	studyKnob         string
	studyValues       []float64
}

func parseFlags() (options, error) {
	var o options
	var seeds, variants, study string
	flag.StringVar(&o.mose, "mose", "bin/mose", "the mose binary")
	flag.StringVar(&o.out, "out", "runs/compare", "output directory")
	flag.StringVar(&o.recipe, "recipe", "recipes/demo-tiny.yaml", "base recipe (the demo's)")
	flag.StringVar(&seeds, "seeds", "1,2,3", "run seeds (adapter init, dropout, data order)")
	flag.IntVar(&o.steps, "steps", 300, "optimizer steps per run")
	flag.IntVar(&o.jobs, "jobs", 2, "runs at a time")
	flag.IntVar(&o.threads, "threads", 1, "libtorch threads per run")
	flag.StringVar(&variants, "variants", strings.Join(variantNames(), ","), "variants to run")
	flag.StringVar(&study, "study", "", "knob=v1,v2,... : instead of the table, the gap between the variants as a function of a synthetic-data knob ("+strings.Join(knobNames, ", ")+")")
	flag.Parse()
	var err error
	if o.seeds, err = parseInts(seeds); err != nil || len(o.seeds) == 0 {
		return o, fmt.Errorf("--seeds %q: want a comma-separated list of integers", seeds)
	}
	for _, v := range strings.Split(variants, ",") {
		if _, ok := lookupVariant(v); !ok {
			return o, fmt.Errorf("--variants: unknown variant %q (known: %s)", v, strings.Join(variantNames(), ", "))
		}
		o.variants = append(o.variants, v)
	}
	if study != "" {
		k, vals, ok := strings.Cut(study, "=")
		if !ok || !knownKnob(k) {
			return o, fmt.Errorf("--study %q: want knob=v1,v2,... with knob one of %s", study, strings.Join(knobNames, ", "))
		}
		for _, s := range strings.Split(vals, ",") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return o, fmt.Errorf("--study %q: %q is not a number", study, s)
			}
			o.studyValues = append(o.studyValues, f)
		}
		o.studyKnob = k
	}
	if o.steps <= 0 || o.jobs <= 0 || o.threads < 0 {
		return o, fmt.Errorf("--steps and --jobs must be > 0, --threads >= 0")
	}
	return o, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.mose); err != nil {
		return fmt.Errorf("%s not found: run `make build` first", o.mose)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	h := &harness{o: o}
	if err := h.prepareModel(); err != nil {
		return err
	}
	if o.studyKnob != "" {
		if err := h.study(); err != nil {
			return err
		}
	} else if err := h.table(); err != nil {
		return err
	}
	fmt.Printf("\ntook %s (%d jobs × %d threads)\n", time.Since(start).Round(time.Second), o.jobs, o.threads)
	return nil
}

// table runs every variant over every seed on the default data.
func (h *harness) table() error {
	dataDir, err := h.prepareData("default", nil)
	if err != nil {
		return err
	}
	rank, err := h.matchedRank()
	if err != nil {
		return err
	}
	var runs []*runSpec
	for _, name := range h.o.variants {
		v, _ := lookupVariant(name)
		for _, seed := range h.o.seeds {
			runs = append(runs, h.spec(v, seed, dataDir, rank, filepath.Join(h.o.out, "runs", name, fmt.Sprint("seed-", seed))))
		}
	}
	if err := h.runAll(runs); err != nil {
		return err
	}
	res := summarize(h.o, runs, rank)
	if err := writeJSON(filepath.Join(h.o.out, "results.json"), res); err != nil {
		return err
	}
	md := res.markdown()
	fmt.Print("\n" + md)
	if err := os.WriteFile(filepath.Join(h.o.out, "table.txt"), []byte(md), 0o644); err != nil {
		return err
	}
	return plotTable(res, filepath.Join(h.o.out, "compare.png"))
}

// study runs the variants over the seeds for every value of one data knob.
func (h *harness) study() error {
	rank, err := h.matchedRank()
	if err != nil {
		return err
	}
	st := studyResult{Knob: h.o.studyKnob, Values: h.o.studyValues, Seeds: h.o.seeds, Steps: h.o.steps, MatchedRank: rank}
	var all []*runSpec
	perValue := make([][]*runSpec, len(h.o.studyValues))
	for i, val := range h.o.studyValues {
		tag := fmt.Sprintf("%s-%g", h.o.studyKnob, val)
		dataDir, err := h.prepareData(tag, map[string]float64{h.o.studyKnob: val})
		if err != nil {
			return err
		}
		for _, name := range h.o.variants {
			v, _ := lookupVariant(name)
			for _, seed := range h.o.seeds {
				r := h.spec(v, seed, dataDir, rank, filepath.Join(h.o.out, "study", tag, name, fmt.Sprint("seed-", seed)))
				perValue[i] = append(perValue[i], r)
				all = append(all, r)
			}
		}
	}
	if err := h.runAll(all); err != nil {
		return err
	}
	for i := range h.o.studyValues {
		st.Points = append(st.Points, summarize(h.o, perValue[i], rank))
	}
	if err := writeJSON(filepath.Join(h.o.out, "study.json"), st); err != nil {
		return err
	}
	md := st.markdown()
	fmt.Print("\n" + md)
	if err := os.WriteFile(filepath.Join(h.o.out, "study.txt"), []byte(md), 0o644); err != nil {
		return err
	}
	return plotStudy(st, filepath.Join(h.o.out, "study.png"))
}
