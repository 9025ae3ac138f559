package trainer

import (
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/recipes"
)

// fixture is a tiny random model and a small synthetic dataset shared by the
// package's tests (made once in TestMain).
var fixture *testfix.Fixture

func TestMain(m *testing.M) { testfix.Main(m, &fixture) }

// testRecipe is a fast recipe over the fixture writing into a fresh dir.
func testRecipe(t testing.TB, sets ...string) *recipes.Config {
	t.Helper()
	return fixture.Recipe(t, sets...)
}

func quietLog() logrus.FieldLogger { return testfix.QuietLog() }
