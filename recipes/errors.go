package recipes

import (
	"errors"
	"fmt"

	"github.com/mose-llm/mose/internal/inputerr"
)

// ErrRecipe is wrapped by every error about a recipe: a missing or malformed
// file, an unknown key, a wrong type or an out-of-range value. The CLI maps
// it to exit code 2.
var ErrRecipe = inputerr.New("bad recipe")

// KeyError is one problem with one recipe key. Load and Validate return
// several of them at once, joined with errors.Join.
type KeyError struct {
	// Key is the dotted recipe key, e.g. "train.lr"; empty for an
	// environment variable that names no key.
	Key string
	// Source says where the offending value came from: "path/to/recipe.yaml:12"
	// (file and line), "env MOSE_TRAIN_LR", "--set train.lr=-1", or the recipe
	// path alone for a default that is not acceptable (e.g. a missing
	// model.path). Validate leaves it empty; Load fills it.
	Source string
	// Msg says what is wrong, e.g. "must be > 0, got -1".
	Msg string
}

func (e *KeyError) Error() string {
	s := e.Msg
	if e.Key != "" {
		s = e.Key + ": " + s
	}
	if e.Source != "" {
		s = e.Source + ": " + s
	}
	return s
}

// Unwrap makes errors.Is(err, ErrRecipe) true.
func (e *KeyError) Unwrap() error { return ErrRecipe }

// problems collects KeyErrors.
type problems []*KeyError

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) addAt(source, key, format string, args ...any) {
	*p = append(*p, &KeyError{Key: key, Source: source, Msg: fmt.Sprintf(format, args...)})
}

// err joins the problems, or returns nil if there are none.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	errs := make([]error, len(p))
	for i, e := range p {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// recipeErr is a problem with the recipe as a whole (file missing, empty,
// malformed).
func recipeErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRecipe}, args...)...)
}
