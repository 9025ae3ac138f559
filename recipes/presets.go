package recipes

import (
	"embed"
	"errors"
	"io/fs"
	"slices"
	"strings"

	"github.com/mose-llm/mose/internal/fsutil"
)

// The shipped recipes, so that `mose train --recipe demo-tiny` works outside
// the repository.
//
//go:embed *.yaml
var presetFS embed.FS

// embeddedPrefix marks the path Resolve returns for an embedded preset; it
// appears in error messages ("embedded:demo-tiny.yaml:12: train.lr: ...").
const embeddedPrefix = "embedded:"

// Presets lists the names of the embedded recipes ("demo-tiny", ...), sorted.
func Presets() []string {
	entries, _ := fs.ReadDir(presetFS, ".") // cannot fail on an embed.FS root
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Resolve finds a recipe: a path that exists wins; otherwise a bare name
// (no path separator, with or without .yaml) of an embedded preset is used,
// and path is "embedded:<name>.yaml". Errors wrap ErrRecipe.
func Resolve(nameOrPath string) (path string, data []byte, err error) {
	if nameOrPath == "" {
		return "", nil, recipeErr("no recipe given (a YAML file, or one of the presets %s)", strings.Join(Presets(), ", "))
	}
	data, err = fsutil.ReadRegularLimit(nameOrPath, fsutil.MaxConfigSize)
	if err == nil {
		return nameOrPath, data, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", nil, recipeErr("%v", err)
	}
	if !strings.ContainsAny(nameOrPath, `/\`) {
		name := strings.TrimSuffix(nameOrPath, ".yaml")
		if data, err := presetFS.ReadFile(name + ".yaml"); err == nil {
			return embeddedPrefix + name + ".yaml", data, nil
		}
	}
	return "", nil, recipeErr("%s: no such file, and not a preset (%s)", nameOrPath, strings.Join(Presets(), ", "))
}
