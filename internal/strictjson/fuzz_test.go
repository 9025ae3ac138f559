package strictjson

import (
	"encoding/json"
	"errors"
	"testing"
)

// CheckKeys agrees with json.Valid on validity, and a document it accepts
// decodes with encoding/json.
func FuzzCheckKeys(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":2,"c":3}]}}`, `[1,2`, `"x"`, `{"a":1} 2`, "{\"a\":\n1}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckKeys(b, "f.json", All)
		if err == nil && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if err != nil && json.Valid(b) && !errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("refused valid JSON %q: %v", b, err)
		}
		if err == nil {
			var v any
			if uerr := json.Unmarshal(b, &v); uerr != nil {
				t.Fatalf("accepted %q that encoding/json refuses: %v", b, uerr)
			}
		}
	})
}
