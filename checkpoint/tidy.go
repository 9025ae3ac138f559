package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
)

// Leftovers of a killed run, matched by mose's own temporary names only:
// fsutil.WriteFile's ".<name>.tmp-<digits>" for the files train writes,
// Write's ".tmp-step-NNNNNNN-<digits>" and rotation's
// ".tmp-removed-step-NNNNNNN" directories, and model.create's
// "<model>.tmp-<pid>" directory of a process that is gone.

// runFiles are the files train writes atomically into run.output_dir and
// its checkpoints folder.
var runFiles = []string{"metrics.jsonl", RecipeFile, "eval.json", "attention_stats.json",
	"loss.png", "expert_load.png", "confusion.png", LatestFile, BestFile}

// isOwnTmpFile reports whether name is fsutil's temporary name for one of
// files.
func isOwnTmpFile(name string, files []string) bool {
	for _, f := range files {
		if rest, ok := strings.CutPrefix(name, "."+f+".tmp-"); ok && allDigits(rest) {
			return true
		}
	}
	return false
}

// isOwnTmpDir reports whether name is a temporary checkpoint directory.
func isOwnTmpDir(name string) bool {
	if rest, ok := strings.CutPrefix(name, tmpPrefix+"removed-"); ok {
		_, ok := parseStepDir(rest)
		return ok
	}
	rest, ok := strings.CutPrefix(name, tmpPrefix)
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 || !allDigits(rest[i+1:]) {
		return false
	}
	_, ok = parseStepDir(rest[:i])
	return ok
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// CleanStale removes the temporary files and directories a killed run left
// in the run directory out, its checkpoints folder root and inside its
// checkpoints (trainer_state.json rewrites), and a model.create directory
// "<modelPath>.tmp-<pid>" whose process is gone. Call it holding the run
// lock.
func CleanStale(out, root, modelPath string, log logrus.FieldLogger) {
	var removed []string
	rm := func(path string) {
		if err := os.RemoveAll(path); err != nil {
			log.WithError(err).Warn("could not remove a leftover temporary file")
			return
		}
		removed = append(removed, path)
	}
	scan := func(dir string, files []string, dirs bool) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			switch {
			case !e.IsDir() && isOwnTmpFile(e.Name(), files):
				rm(filepath.Join(dir, e.Name()))
			case dirs && e.IsDir() && isOwnTmpDir(e.Name()):
				rm(filepath.Join(dir, e.Name()))
			}
		}
	}
	scan(out, runFiles, false)
	scan(root, runFiles, true)
	if steps, err := List(root); err == nil {
		for _, s := range steps {
			scan(filepath.Join(root, StepDir(s)), []string{StateFile}, false)
		}
	}
	if modelPath != "" {
		parent, base := filepath.Split(filepath.Clean(modelPath))
		entries, _ := os.ReadDir(filepath.Clean(parent + "."))
		for _, e := range entries {
			rest, ok := strings.CutPrefix(e.Name(), base+".tmp-")
			if !ok || !e.IsDir() || !allDigits(rest) {
				continue
			}
			if pid, err := strconv.Atoi(rest); err == nil && pid != os.Getpid() && !alive(pid) {
				rm(filepath.Join(parent, e.Name()))
			}
		}
	}
	if len(removed) > 0 {
		log.WithField("removed", removed).Info("removed temporary files left by an interrupted run")
	}
}

// alive reports whether a process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
