package docscheck

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxReadmeLines is the README's budget: a front door, not a manual. The
// topics live in docs/.
const maxReadmeLines = 320

// repoRoot walks up from the package directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// linkedDocs are the Markdown files whose relative links must resolve: the
// README, every page of docs/, and the package READMEs that exist.
func linkedDocs(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		files = append(files, filepath.ToSlash(must(filepath.Rel(root, p))))
	}
	for _, f := range []string{"recipes/README.md", "data/README.md", "scripts/README.md"} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			files = append(files, f)
		}
	}
	return files
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func countLines(s string) int {
	return strings.Count(strings.TrimSuffix(s, "\n"), "\n") + 1
}

func TestReadmeLength(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := countLines(string(b)); n > maxReadmeLines {
		t.Errorf("README.md has %d lines, more than %d: move the detail to a page of docs/ and link it", n, maxReadmeLines)
	}
}

func TestRelativeLinks(t *testing.T) {
	root := repoRoot(t)
	var problems []string
	for _, f := range linkedDocs(t, root) {
		p, err := checkLinks(root, f)
		if err != nil {
			t.Fatal(err)
		}
		problems = append(problems, p...)
	}
	if len(problems) > 0 {
		t.Errorf("%d broken relative link(s):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
}

// skipDir names directories that hold no documentation of the repository:
// hidden ones (.git, .build, the fixture venv), build and run outputs.
func skipDir(name string) bool {
	switch name {
	case "bin", "dist", "runs", "node_modules", "vendor", "__pycache__":
		return true
	}
	return strings.HasPrefix(name, ".")
}

func TestNoJournalProse(t *testing.T) {
	root := repoRoot(t)
	var problems []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.EqualFold(filepath.Ext(path), ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(must(filepath.Rel(root, path)))
		for _, p := range journalProse(string(b)) {
			problems = append(problems, rel+":"+p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("development-journal prose in the documentation (say what is, not who did what when):\n  %s",
			strings.Join(problems, "\n  "))
	}
}

// The checks above must be able to fail: the parsers on broken inputs.

func TestExtractLinks(t *testing.T) {
	for _, c := range []struct {
		name, md string
		want     []string
	}{
		{"inline", "see [a](docs/a.md) and [b](b.md#x)", []string{"docs/a.md", "b.md#x"}},
		{"title", `[a](a.md "A title")`, []string{"a.md"}},
		{"angle brackets", "[a](<my file.md>)", []string{"my file.md"}},
		{"image", "![plot](benchmarks/compare/compare.png)", []string{"benchmarks/compare/compare.png"}},
		{"nested brackets", "[see [1]](ref.md)", []string{"ref.md"}},
		{"reference definition", "[a]: docs/a.md \"t\"", []string{"docs/a.md"}},
		{"external kept for the caller", "[g](https://github.com/x)", []string{"https://github.com/x"}},
		{"code span is not a link", "use `[a](missing.md)` here", nil},
		{"fenced code is not a link", "```\n[a](missing.md)\n```\n[b](b.md)", []string{"b.md"}},
		{"tilde fence", "~~~sh\n[a](missing.md)\n~~~", nil},
		{"unclosed fence hides the rest", "```\n[a](missing.md)", nil},
		{"not a link", "[a] (a.md) and a](b.md", nil},
		{"two on a line", "[a](a.md)[b](b.md)", []string{"a.md", "b.md"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, l := range extractLinks(c.md) {
				got = append(got, l.target)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("extractLinks(%q) = %q, want %q", c.md, got, c.want)
			}
		})
	}
}

func TestSlug(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Train on your own data", "train-on-your-own-data"},
		{"The tensor layer (`internal/torch`)", "the-tensor-layer-internaltorch"},
		{"GPU boxes: `LIBTORCH`", "gpu-boxes-libtorch"},
		{"Inference: KV cache, fast scoring, generation, `mose predict`", "inference-kv-cache-fast-scoring-generation-mose-predict"},
		{"What it does that PEFT, LLaMA-Factory, ms-swift and the Emotion-LLaMA code do not", "what-it-does-that-peft-llama-factory-ms-swift-and-the-emotion-llama-code-do-not"},
		{"Where, if anywhere, does MoSE beat matched LoRA?", "where-if-anywhere-does-mose-beat-matched-lora"},
		{"snake_case and **bold**", "snake_case-and-bold"},
		{"A [link](x.md) in it", "a-link-in-it"},
		{"Ünïcode données", "ünïcode-données"},
		{"Data-parallel training: several GPUs or nodes", "data-parallel-training-several-gpus-or-nodes"},
	} {
		if got := slug(c.heading); got != c.want {
			t.Errorf("slug(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}

func TestAnchors(t *testing.T) {
	md := "# Top\n\n## Usage\ntext\n## Usage\n```\n# not a heading\n```\nSetext\n------\n| a |\n|---|\n#hashtag\n"
	got := anchors(md)
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := "setext|top|usage|usage-1"; strings.Join(keys, "|") != want {
		t.Errorf("anchors = %q, want %q", strings.Join(keys, "|"), want)
	}
}

// TestCheckLinksFindsBroken builds a small tree and checks that every kind of
// broken link is reported, each once, and that good links are not.
func TestCheckLinksFindsBroken(t *testing.T) {
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/b.md", "# B page\n## Some `code` here\n")
	write("data/x.json", "{}")
	write("README.md", strings.Join([]string{
		"# Read me",
		"[ok](docs/b.md) [ok](docs/b.md#b-page) [ok](docs/b.md#some-code-here) [ok](data/) [ok](data/x.json#L1)",
		"[ok](#read-me) [ok](https://example.com/nowhere.md) [ok](mailto:a@b.c)",
		"[missing file](docs/missing.md)",
		"[missing anchor](docs/b.md#no-such-heading)",
		"[missing self anchor](#nowhere)",
		"[case matters](docs/b.md#B-page)",
		"[outside](../outside.md)",
		"[missing dir](scripts/setup/)",
		"[empty]()",
		"`[in code](not/checked.md)`",
	}, "\n"))
	got, err := checkLinks(root, "README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"README.md:4: docs/missing.md: no such file or directory",
		"README.md:5: docs/b.md#no-such-heading: no heading with anchor #no-such-heading",
		"README.md:6: #nowhere: no heading with anchor #nowhere",
		"README.md:7: docs/b.md#B-page: no heading with anchor #B-page",
		"README.md:8: ../outside.md: points outside the repository",
		"README.md:9: scripts/setup/: no such file or directory",
		"README.md:10: : empty link",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("checkLinks reported\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if _, err := checkLinks(root, "nope.md"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("checkLinks on a missing file: err = %v, want fs.ErrNotExist", err)
	}
}

func TestJournalProse(t *testing.T) {
	for _, c := range []struct {
		text string
		hits int
	}{
		{"The lead may rerun it on an idle machine.", 2},
		{"Measured under load from other helpers' jobs.", 1},
		{"after all of this session's work", 1},
		{"Before this work the soak went from 280 MB to 1.09 GB.", 1},
		{"We first tried X; the bug was fixed later.", 2},
		{"On the idle machine after the merge:", 1},
		{"MoSE's largest lead is at 8 visual tokens.", 0},
		{"Leading zeros and mislead are fine; so is a helpful note.", 0},
		{"Sessions of TensorBoard: the resumed session writes a new file.", 0},
	} {
		if got := journalProse(c.text); len(got) != c.hits {
			t.Errorf("journalProse(%q) = %q, want %d hit(s)", c.text, got, c.hits)
		}
	}
}

func TestCountLines(t *testing.T) {
	for _, c := range []struct {
		s    string
		want int
	}{{"a", 1}, {"a\n", 1}, {"a\nb\n", 2}, {"a\n\nb", 3}} {
		if got := countLines(c.s); got != c.want {
			t.Errorf("countLines(%q) = %d, want %d", c.s, got, c.want)
		}
	}
}
