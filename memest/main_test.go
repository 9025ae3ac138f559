package memest

import (
	"testing"

	"github.com/mose-llm/mose/internal/testfix"
)

// fixture is a tiny random model and a small synthetic dataset shared by the
// package's tests (made once in TestMain).
var fixture *testfix.Fixture

func TestMain(m *testing.M) { testfix.Main(m, &fixture) }
