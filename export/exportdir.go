package export

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/strictjson"
	"github.com/mose-llm/mose/recipes"
)

// exportStampFile marks a directory written by mose export and lists its
// files: --force replaces only such a directory, and removes nothing else.
const exportStampFile = "mose_export.json"

// evalOutputs are files `mose eval` writes into an export dir it evaluates;
// they may sit in a previous export next to the stamped files.
var evalOutputs = []string{"eval.json", "attention_stats.json"}

// Stamp is mose_export.json.
type Stamp struct {
	FormatVersion int      `json:"format_version"`
	Format        string   `json:"format"` // peft or merged
	Checkpoint    string   `json:"checkpoint"`
	Files         []string `json:"files"` // every file the export wrote, this one excluded
	// BaseQuantization is the run's model.quantize when it was not none:
	// the adapters were trained on that quantized base. A PEFT export does
	// not depend on it (its deltas apply to any copy of the base; PEFT's
	// adapter_config.json has no field for it); a merged export holds the
	// base dequantized to its stored dtype with the deltas folded in.
	BaseQuantization string `json:"base_quantization,omitempty"`
}

// writeExportStamp lists the files of the finished export in tmp.
func writeExportStamp(tmp string, opt Options, quantize string) error {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	st := Stamp{FormatVersion: 1, Format: opt.Format, Checkpoint: opt.Checkpoint, Files: []string{}}
	if quantize != "none" {
		st.BaseQuantization = quantize
	}
	for _, e := range entries {
		st.Files = append(st.Files, e.Name())
	}
	sort.Strings(st.Files)
	return fsutil.WriteJSON(filepath.Join(tmp, exportStampFile), st)
}

// resolved is path made absolute with its symbolic links resolved (as far
// as it exists).
func resolved(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	// Resolve the longest existing parent, keep the rest.
	dir, rest := abs, ""
	for dir != filepath.Dir(dir) {
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = filepath.Dir(dir)
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, rest)
		}
	}
	return abs
}

// within reports whether path is dir or below it (both resolved).
func within(path, dir string) bool {
	if path == dir {
		return true
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// protectedPaths are what an export must never write over or remove: the
// checkpoint and its run, the recipe's model, data and output dir, and the
// calibration manifest; those that exist, each named for messages.
func protectedPaths(opt Options, cfg *recipes.Config) [][2]string {
	var out [][2]string
	add := func(what, p string) {
		if p == "" {
			return
		}
		if _, err := os.Lstat(p); err != nil {
			return // nothing there to lose
		}
		if r := resolved(p); r == filepath.Dir(r) {
			return // a file system root: only the files named are protected
		}
		out = append(out, [2]string{what, p})
	}
	ck := filepath.Clean(opt.Checkpoint)
	add("the checkpoint", ck)
	if parent := filepath.Dir(ck); filepath.Base(parent) == "checkpoints" {
		add("the run", filepath.Dir(parent))
	}
	add("the calibration manifest", opt.Calibration)
	if cfg != nil {
		add("the model (model.path)", cfg.Model.Path)
		add("the run (run.output_dir)", cfg.Run.OutputDir)
		add("the training data (data.train)", cfg.Data.Train)
		add("the eval data (data.eval)", cfg.Data.Eval)
		root := cfg.Data.Root
		if root == "" && cfg.Data.Train != "" {
			root = filepath.Dir(cfg.Data.Train)
		}
		add("the data root (data.root)", root)
	}
	return out
}

// checkExportOut decides whether opt.Out may receive the export: it must not
// be, hold or lie inside the checkpoint, the model or the data, nor be or
// hold the run; if it exists and is not empty it is replaced only with
// --force and only if it is a previous mose export (stamped, holding only
// the stamped files and eval outputs). Every refusal wraps inputerr.ErrFlag and
// names the path. It returns whether an existing directory will be
// replaced.
func checkExportOut(opt Options, cfg *recipes.Config) (replace bool, err error) {
	out := resolved(opt.Out)
	for _, p := range protectedPaths(opt, cfg) {
		what, path := p[0], resolved(p[1])
		inside := within(out, path)
		if strings.HasPrefix(what, "the run") {
			inside = out == path // a previous export inside a run dir may be replaced
		}
		if inside || within(path, out) {
			return false, fmt.Errorf("%w: --out %s would overwrite %s (%s): choose a directory outside it", inputerr.ErrFlag, opt.Out, what, p[1])
		}
	}
	st, err := os.Lstat(opt.Out)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: --out %s: %w", inputerr.ErrFlag, opt.Out, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return false, fmt.Errorf("%w: --out %s is a symbolic link: give the directory itself", inputerr.ErrFlag, opt.Out)
	}
	if !st.IsDir() {
		return false, fmt.Errorf("%w: --out %s exists and is not a directory", inputerr.ErrFlag, opt.Out)
	}
	entries, err := os.ReadDir(opt.Out)
	if err != nil {
		return false, fmt.Errorf("%w: --out %s: %w", inputerr.ErrFlag, opt.Out, err)
	}
	if len(entries) == 0 {
		return true, nil
	}
	if !opt.Force {
		return false, fmt.Errorf("%w: %s exists and is not empty (use --force to replace a previous export)", inputerr.ErrFlag, opt.Out)
	}
	stampPath := filepath.Join(opt.Out, exportStampFile)
	b, err := fsutil.ReadRegularLimit(stampPath, 1<<20)
	if err != nil {
		return false, fmt.Errorf("%w: --force replaces only a previous mose export, and %s has no readable %s (%v): remove it yourself or choose another --out",
			inputerr.ErrFlag, opt.Out, exportStampFile, err)
	}
	var stamp Stamp
	if err := strictjson.Decode(b, &stamp, stampPath); err != nil {
		return false, fmt.Errorf("%w: --force: %w", inputerr.ErrFlag, err)
	}
	allowed := append(slices.Clone(stamp.Files), exportStampFile)
	allowed = append(allowed, evalOutputs...)
	for _, e := range entries {
		if !slices.Contains(allowed, e.Name()) || !e.Type().IsRegular() {
			return false, fmt.Errorf("%w: --force: %s holds %s, which the previous export did not write (%s): refusing to remove it; remove it yourself or choose another --out",
				inputerr.ErrFlag, opt.Out, filepath.Join(opt.Out, e.Name()), exportStampFile)
		}
	}
	return true, nil
}
