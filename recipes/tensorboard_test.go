package recipes

import (
	"strings"
	"testing"
)

// run.tensorboard is on by default, every layer can turn it off, it must be
// a boolean, and changing it does not break an exact resume.
func TestTensorBoardKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		env  string
		sets []string
		want bool
	}{
		{"default", minimal, "", nil, true},
		{"file", minimal + "run:\n  tensorboard: false\n", "", nil, false},
		{"env", minimal, "false", nil, false},
		{"set", minimal, "", []string{"run.tensorboard=false"}, false},
		{"set beats file", minimal + "run:\n  tensorboard: false\n", "", []string{"run.tensorboard=true"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			if tc.env != "" {
				t.Setenv("MOSE_RUN_TENSORBOARD", tc.env)
			}
			c := mustLoad(t, writeRecipe(t, t.TempDir(), "r.yaml", tc.body), tc.sets...)
			if c.Run.TensorBoard != tc.want {
				t.Errorf("run.tensorboard = %v, want %v", c.Run.TensorBoard, tc.want)
			}
		})
	}
	cleanEnv(t)
	_, err := Load(writeRecipe(t, t.TempDir(), "r.yaml", minimal+"run:\n  tensorboard: often\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "run.tensorboard") {
		t.Errorf("a non-boolean run.tensorboard: %v", err)
	}
	on := mustLoad(t, writeRecipe(t, t.TempDir(), "r.yaml", minimal))
	off := mustLoad(t, writeRecipe(t, t.TempDir(), "r.yaml", minimal), "run.tensorboard=false")
	if d := ExactnessDiff(on, off); len(d) != 0 {
		t.Errorf("turning TensorBoard off breaks exactness: %v", d)
	}
	if d := diffKeys(on, off); len(d) != 1 || d[0] != "run.tensorboard" {
		t.Errorf("diff %v", d)
	}
}
