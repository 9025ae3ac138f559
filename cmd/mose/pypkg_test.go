package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
)

// The python/ package (mose_hf) runs a mose export on a transformers model exactly
// as mose does: scripts/checks/check_mose_hf.py compares it with `mose dump-logits`
// (logits at every position of samples with visual and audio feature tokens), with
// `mose predict`'s greedy answers (one by one and in a left-padded batch), and with
// predict's label log-likelihoods and answers under Attention Reallocation. A sidecar
// with the visual and nonvisual experts swapped, a scaling that disagrees with rank
// and alpha, a consistently doubled alpha, a missing or a changed modality weight
// must each be refused by name or disagree. Skipped without the reference venv.
func TestMoseHFTiny(t *testing.T) {
	py := testfix.RefPython(t)
	if e2e.err != nil {
		t.Fatal(e2e.err)
	}
	res := moseHFCheck(t, py, e2e.model, "", 1e-5, "model.path="+e2e.model)
	t.Logf("tiny MoSE export: %s", res)
}

// The same on SmolLM2-135M attached with `mose attach` (its projectors trained, in the
// sidecar), within 1e-4. Skipped without the converted SmolLM2 dir
// (scripts/fixtures/fetch_smollm2.py) or the reference venv.
func TestMoseHFSmolLM2(t *testing.T) {
	py := testfix.RefPython(t)
	if e2e.err != nil {
		t.Fatal(e2e.err)
	}
	base := smolLM2Dir(t)
	att := filepath.Join(t.TempDir(), "attached")
	if code, msg := runMose(t, append([]string{"attach", "--model", base, "--out", att, "--seed", "3"}, attachInputs...)...); code != 0 {
		t.Fatalf("attach: exit %d: %s", code, msg)
	}
	res := moseHFCheck(t, py, att, base, 1e-4, "model.path="+att)
	t.Logf("SmolLM2 MoSE export: %s", res)
}

// smolLM2Dir is the converted SmolLM2-135M-Instruct dir ($MOSE_SMOLLM2_DIR, else
// $MOSE_CACHE/models/smollm2-135m); the test skips without it.
func smolLM2Dir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MOSE_SMOLLM2_DIR")
	if dir == "" {
		cache := os.Getenv("MOSE_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "mose")
		}
		dir = filepath.Join(cache, "models", "smollm2-135m")
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Skipf("%s not found: run \"$(scripts/setup/pyenv.sh)\" scripts/fixtures/fetch_smollm2.py to fetch and convert SmolLM2", dir)
	}
	return dir
}

// moseHFCheck makes a MoSE checkpoint (random adapters, gates and trained projectors,
// modality weights 1.3 / 0.8) on the mose model dir modelDir, exports it, writes the
// references, breaks copies of the export, and runs the check on all of them. It
// returns the good export's line.
func moseHFCheck(t *testing.T, py, modelDir, base string, tol float64, sets ...string) string {
	t.Helper()
	fx := &testfix.Fixture{Model: modelDir, Train: e2e.train, Eval: e2e.eval}
	_, ck := fx.Adapted(t, append([]string{"model.train_projectors=true", "adapters.modality_weights=contribution",
		"data.root=" + filepath.Dir(e2e.eval), "eval.max_new_tokens=6"}, sets...)...)
	testfix.Reseal(t, ck, func(st *checkpoint.State) { st.ModalityWeights = [2]float64{1.3, 0.8} })
	exp, cases := hfReferences(t, ck)
	broken := []struct{ name, want string }{
		{"swapped-experts", "FAIL"}, {"scaling-only", "REFUSED"}, {"alpha-doubled", "FAIL"},
		{"missing-visual-weight", "REFUSED"}, {"changed-visual-weight", "FAIL"},
	}
	exports := []string{exp}
	for _, br := range broken {
		dir := filepath.Join(filepath.Dir(exp), br.name)
		if err := os.CopyFS(dir, os.DirFS(exp)); err != nil {
			t.Fatal(err)
		}
		breakExport(t, dir, br.name)
		exports = append(exports, dir)
	}
	code, status := runHFCheck(t, py, cases, modelDir, base, tol, exports)
	if !strings.HasPrefix(status[exp], "OK") {
		t.Fatalf("the good export: %q", status[exp])
	}
	for i, br := range broken {
		if got := status[exports[i+1]]; !strings.HasPrefix(got, br.want) {
			t.Errorf("%s: %q, want %s", br.name, got, br.want)
		}
	}
	if code != 1 {
		t.Errorf("exit %d with broken exports, want 1", code)
	}
	return status[exp]
}

// A plain-LoRA export without a sidecar (PEFT's files only; the projectors are the
// model dir's) runs exactly too, and so does its merged export.
func TestMoseHFLoRA(t *testing.T) {
	py := testfix.RefPython(t)
	if e2e.err != nil {
		t.Fatal(e2e.err)
	}
	fx := &testfix.Fixture{Model: e2e.model, Train: e2e.train, Eval: e2e.eval}
	_, ck := fx.Adapted(t, "model.path="+e2e.model, "adapters.method=lora", "adapters.targets=[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]",
		"adapters.rslora=true", "model.train_projectors=false", "data.root="+filepath.Dir(e2e.eval), "eval.max_new_tokens=6")
	exp, cases := hfReferences(t, ck)
	if _, err := os.Stat(filepath.Join(exp, "mose_config.json")); err == nil {
		t.Fatal("a LoRA export without trained projectors has a sidecar")
	}
	code, status := runHFCheck(t, py, cases, e2e.model, "", 1e-5, []string{exp})
	if code != 0 || !strings.HasPrefix(status[exp], "OK") {
		t.Fatalf("exit %d: %q", code, status[exp])
	}
	t.Logf("tiny LoRA export: %s", status[exp])

	// Its merged export, loaded by transformers as it is, with mose_hf splicing the
	// projectors of mose_projectors.safetensors: exact for plain LoRA.
	merged := filepath.Join(t.TempDir(), "merged")
	if code, msg := runMose(t, "export", "--checkpoint", ck, "--format", "merged", "--out", merged); code != 0 {
		t.Fatalf("merged export: exit %d: %s", code, msg)
	}
	code, status = runHFCheck(t, py, cases, merged, "", 1e-5, []string{merged})
	if code != 0 || !strings.HasPrefix(status[merged], "OK") {
		t.Fatalf("merged: exit %d: %q", code, status[merged])
	}
	t.Logf("its merged export: %s", status[merged])
}

// hfReferences exports checkpoint ck (PEFT format) and writes the check's
// references on two eval samples of different lengths (each with visual and audio
// feature tokens): dump-logits, predict's answers, and predict's label log-likelihoods and
// answers with AR. It returns the export and the cases file.
func hfReferences(t *testing.T, ck string) (exp, casesPath string) {
	t.Helper()
	work := t.TempDir()
	exp = filepath.Join(work, "export")
	if code, msg := runMose(t, "export", "--checkpoint", ck, "--format", "peft", "--out", exp); code != 0 {
		t.Fatalf("export: exit %d: %s", code, msg)
	}
	lines := twoSamples(t, e2e.eval)
	manifest := filepath.Join(work, "two.jsonl")
	os.WriteFile(manifest, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	predict := func(out string, extra ...string) []map[string]any {
		args := append([]string{"predict", "--checkpoint", ck, "--manifest", manifest, "--out", out}, extra...)
		if code, msg := runMose(t, args...); code != 0 {
			t.Fatalf("predict: exit %d: %s", code, msg)
		}
		var preds []map[string]any
		for _, l := range firstLines(t, out, len(lines)) {
			var p map[string]any
			json.Unmarshal([]byte(l), &p)
			preds = append(preds, p)
		}
		return preds
	}
	plain := predict(filepath.Join(work, "pred.jsonl"))
	ar := predict(filepath.Join(work, "pred-ar.jsonl"), "--set", "eval.ar.enabled=true", "--set", "eval.ar.tau=fixed",
		"--set", "eval.ar.tau_value=0.02", "--set", "eval.ar.beta=1")
	var cases []map[string]any
	for i, l := range lines {
		var s struct{ Subtitle string }
		json.Unmarshal([]byte(l), &s)
		dump := filepath.Join(work, fmt.Sprintf("dump%d.safetensors", i))
		if code, msg := runMose(t, "dump-logits", "--checkpoint", ck, "--manifest", manifest, "--index", fmt.Sprint(i), "--out", dump); code != 0 {
			t.Fatalf("dump-logits: exit %d: %s", code, msg)
		}
		scores := map[string]float64{}
		for _, sc := range ar[i]["scores"].([]any) {
			m := sc.(map[string]any)
			scores[m["label"].(string)] = m["log_likelihood"].(float64)
		}
		cases = append(cases, map[string]any{"dump": dump, "subtitle": s.Subtitle, "answer": plain[i]["answer"], "max_new_tokens": 6,
			"ar_scores": scores, "ar_answer": ar[i]["answer"], "ar": map[string]any{"beta": 1.0, "tau": "fixed", "tau_value": 0.02}})
	}
	casesPath = filepath.Join(work, "cases.json")
	b, _ := json.Marshal(cases)
	os.WriteFile(casesPath, b, 0o644)
	return exp, casesPath
}

// runHFCheck runs scripts/checks/check_mose_hf.py with python/ on PYTHONPATH and
// returns its exit code and each export's line (after "EXPORT: ").
func runHFCheck(t *testing.T, py, cases, modelDir, base string, tol float64, exports []string) (int, map[string]string) {
	t.Helper()
	args := []string{"../../scripts/checks/check_mose_hf.py", cases, "--model-dir", modelDir, "--tol", fmt.Sprint(tol)}
	if base != "" {
		args = append(args, "--base", base)
	}
	code, out := runPythonEnv(t, py, []string{"PYTHONPATH=" + repoPython(t)}, append(args, exports...)...)
	t.Logf("check_mose_hf.py (exit %d):\n%s", code, out)
	status := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		for _, e := range exports {
			if rest, ok := strings.CutPrefix(l, e+": "); ok {
				status[e] = rest
			}
		}
	}
	return code, status
}

// breakExport damages a copy of a MoSE export.
func breakExport(t *testing.T, dir, how string) {
	t.Helper()
	side := filepath.Join(dir, "mose_config.json")
	edit := func(path string, fn func(map[string]any)) {
		var c map[string]any
		b, _ := os.ReadFile(path)
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		fn(c)
		b, _ = json.MarshalIndent(c, "", "  ")
		os.WriteFile(path, b, 0o644)
	}
	weights := func(c map[string]any) map[string]any { return c["modality_weights"].(map[string]any) }
	switch how {
	case "swapped-experts":
		renameTensors(t, filepath.Join(dir, "mose_adapter.safetensors"), func(n string) string {
			switch {
			case strings.Contains(n, ".mose.visual."):
				return strings.Replace(n, ".mose.visual.", ".mose.nonvisual.", 1)
			case strings.Contains(n, ".mose.nonvisual."):
				return strings.Replace(n, ".mose.nonvisual.", ".mose.visual.", 1)
			}
			return n
		})
	case "scaling-only":
		edit(side, func(c map[string]any) { c["scaling"] = 2 * c["scaling"].(float64) })
	case "alpha-doubled":
		edit(side, func(c map[string]any) { c["alpha"], c["scaling"] = 2*c["alpha"].(float64), 2*c["scaling"].(float64) })
		edit(filepath.Join(dir, "adapter_config.json"), func(c map[string]any) { c["lora_alpha"] = 2 * c["lora_alpha"].(float64) })
	case "missing-visual-weight":
		edit(side, func(c map[string]any) { delete(weights(c), "visual") })
	case "changed-visual-weight":
		edit(side, func(c map[string]any) { weights(c)["visual"] = 1.0 })
	default:
		t.Fatalf("unknown breakage %s", how)
	}
}

// renameTensors rewrites a safetensors file with every tensor renamed by fn.
func renameTensors(t *testing.T, path string, fn func(string) string) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	changed := 0
	for _, info := range f.Tensors() {
		b, _ := f.Read(info.Name)
		name := fn(info.Name)
		if name != info.Name {
			changed++
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: b})
	}
	f.Close()
	if changed == 0 {
		t.Fatalf("%s: nothing renamed", path)
	}
	if err := safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// twoSamples returns the manifest's first sample and the first one after it whose
// subtitle has another number of words (so that a batch of both needs padding).
func twoSamples(t *testing.T, manifest string) []string {
	t.Helper()
	all := firstLines(t, manifest, 2)
	words := func(l string) int {
		var s struct{ Subtitle string }
		json.Unmarshal([]byte(l), &s)
		return len(strings.Fields(s.Subtitle))
	}
	for n := 2; ; n++ {
		if words(all[len(all)-1]) != words(all[0]) {
			return []string{all[0], all[len(all)-1]}
		}
		all = firstLines(t, manifest, n+1)
	}
}

func firstLines(t *testing.T, path string, n int) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	if len(out) < n {
		t.Fatalf("%s: %d lines, want %d", path, len(out), n)
	}
	return out
}

// repoPython is the python/ directory of this repository (mose_hf's source).
func repoPython(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../python")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// runPythonEnv is runPython with extra environment variables.
func runPythonEnv(t *testing.T, py string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(py, args...)
	cmd.Env = append(append(os.Environ(), "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "OMP_NUM_THREADS=1"), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// `pip install ./python` builds and installs mose_hf with nothing to download (its
// in-tree build backend has no build dependencies), and the installed copy imports.
// It installs a copy of python/ into a temporary --target, never into the venv.
func TestMoseHFPipInstall(t *testing.T) {
	py := testfix.RefPython(t)
	src := filepath.Join(t.TempDir(), "python")
	if err := os.CopyFS(src, os.DirFS(repoPython(t))); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "site")
	code, out := runPythonEnv(t, py, nil, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
		"--disable-pip-version-check", "--target", target, src)
	if code != 0 {
		t.Fatalf("pip install ./python: exit %d\n%s", code, out)
	}
	cmd := exec.Command(py, "-c", "import importlib.metadata as m, mose_hf; print(mose_hf.__file__); print(m.version('mose-hf'), sorted(m.requires('mose-hf')))")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PYTHONPATH="+target)
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(b), target) || !strings.Contains(string(b), "0.1.0") {
		t.Fatalf("the installed mose_hf does not import from %s (%v):\n%s", target, err, b)
	}
	t.Logf("installed: %s", strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "; "))
}
