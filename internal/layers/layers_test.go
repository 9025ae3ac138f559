package layers

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/mose-llm/mose/"

// layer ranks mose's packages: a package may import packages of lower
// layers only, and, in layers 0 to 2 (the leaves, the data side and the
// model side), of its own layer. Every package must be listed: a new one
// takes a place in the direction on purpose.
var layer = map[string]int{
	"modality": 0, "internal/inputerr": 0, "internal/strictjson": 0, "internal/fsutil": 0,
	"internal/safetensors": 0, "internal/tfevents": 0, "internal/torch": 0, "metrics": 0, "plots": 0,
	"internal/docscheck": 0, "internal/layers": 0, "internal/refenv": 0,

	"internal/ckpt": 1, "internal/dist": 1, "internal/quant": 1, "recipes": 1, "data": 1, "data/npy": 1,
	"data/tokenizer": 1, "data/mer": 1, "data/synth": 1, "data/media": 1, "data/omniproc": 1, "data/procout": 1, "data/omnisynth": 1,
	"data/cas": 1, "data/omniprep": 1,

	"model": 2, "model/omni": 2, "experts": 2, "gating": 2,

	"checkpoint": 3,
	"stack":      4,
	"memest":     5,
	"infer":      6,
	"export":     7, "trainer": 7,
	"internal/testfix": 8, "cmd/mose": 8, "cmd/compare": 8, "cmd/smoke": 8,
}

// noCgo are the packages that must build without libtorch: none of their
// dependencies, direct or not, may reach internal/torch or gotch.
var noCgo = []string{"data", "data/npy", "data/tokenizer", "data/mer", "data/synth", "data/media", "data/omniproc", "data/procout", "data/omnisynth", "data/cas", "data/omniprep", "recipes", "metrics", "plots", "modality", "internal/refenv"}

// onlyIn lists third-party packages and the mose packages allowed to import
// them directly.
var onlyIn = map[string][]string{
	"github.com/spf13/viper": {"recipes", "cmd/mose"},
	"github.com/spf13/cobra": {"cmd/mose"},
}

// pkg is one package of `go list`.
type pkg struct {
	path    string   // relative to the module
	imports []string // direct, non-test imports
	deps    []string // transitive
}

func list(t *testing.T) []pkg {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	var pkgs []pkg
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 3 {
			continue
		}
		pkgs = append(pkgs, pkg{strings.TrimPrefix(f[0], module), strings.Fields(f[1]), strings.Fields(f[2])})
	}
	return pkgs
}

// violations applies the rules to pkgs.
func violations(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		lp, ok := layer[p.path]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: not placed in the layer table (internal/layers)", p.path))
			continue
		}
		for _, imp := range p.imports {
			for third, allowed := range onlyIn {
				if imp == third && !contains(allowed, p.path) {
					bad = append(bad, fmt.Sprintf("%s imports %s, which only %v may", p.path, third, allowed))
				}
			}
			rel, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			li, known := layer[rel]
			switch {
			case !known:
				bad = append(bad, fmt.Sprintf("%s imports %s, which is not in the layer table", p.path, rel))
			case li > lp || (li == lp && lp > 2):
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): the dependency runs back up", p.path, lp, rel, li))
			}
		}
		if contains(noCgo, p.path) {
			for _, d := range p.deps {
				if d == module+"internal/torch" || strings.HasPrefix(d, "github.com/sugarme/gotch") {
					bad = append(bad, fmt.Sprintf("%s depends on %s: it must build without libtorch", p.path, d))
				}
			}
		}
	}
	return bad
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// The module's packages follow the direction.
func TestDirection(t *testing.T) {
	pkgs := list(t)
	if len(pkgs) < len(noCgo) {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// Each rule catches what it is for.
func TestViolations(t *testing.T) {
	cases := []struct {
		name string
		p    pkg
		want string
	}{
		{"import back up", pkg{path: "stack", imports: []string{module + "trainer"}}, "runs back up"},
		{"same layer above 2", pkg{path: "export", imports: []string{module + "trainer"}}, "runs back up"},
		{"unplaced package", pkg{path: "newpkg"}, "not placed"},
		{"unplaced import", pkg{path: "trainer", imports: []string{module + "newpkg"}}, "not in the layer table"},
		{"cgo in data", pkg{path: "data", deps: []string{module + "internal/torch"}}, "without libtorch"},
		{"viper outside", pkg{path: "trainer", imports: []string{"github.com/spf13/viper"}}, "only"},
	}
	for _, c := range cases {
		v := violations([]pkg{c.p})
		if len(v) != 1 || !strings.Contains(v[0], c.want) {
			t.Errorf("%s: violations = %q, want one mentioning %q", c.name, v, c.want)
		}
	}
	if v := violations([]pkg{{path: "trainer", imports: []string{module + "infer", module + "stack", "fmt"}},
		{path: "data", imports: []string{module + "data/npy"}}}); len(v) != 0 {
		t.Errorf("allowed imports reported: %q", v)
	}
}
