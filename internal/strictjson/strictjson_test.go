package strictjson

import (
	"errors"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/inputerr"
)

func TestCheckKeys(t *testing.T) {
	cases := []struct {
		name, doc string
		depth     int
		want      error
		msg       string // substring of the error
	}{
		{"ok", `{"a": 1, "b": {"a": 2}, "c": [{"a": 1}, {"a": 2}]}`, All, nil, ""},
		{"top dup", "{\"a\": 1,\n \"a\": 2}", All, ErrDuplicateKey, `f.json:2: key "a": duplicate key (first at line 1`},
		{"nested dup", "{\"m\": {\n\"x\": 1,\n\"x\": 1}}", All, ErrDuplicateKey, `f.json:3: key "m.x"`},
		{"dup in array", `{"l": [{"k": 1}, {"k": 1, "k": 2}]}`, All, ErrDuplicateKey, `key "l[1].k"`},
		{"nested dup beyond depth", `{"m": {"x": 1, "x": 2}}`, 0, nil, ""},
		{"top dup at depth 0", `{"m": 1, "m": {"x": 1}}`, 0, ErrDuplicateKey, `key "m"`},
		{"syntax", `{"a": }`, All, ErrSyntax, "f.json:1"},
		{"trailing", `{"a": 1} {"b": 2}`, All, ErrSyntax, "after the top-level"},
		{"truncated", `{"a": [1, 2`, All, ErrSyntax, "unexpected EOF"},
		{"too deep", strings.Repeat("[", 5000) + strings.Repeat("]", 5000), All, ErrSyntax, "nested deeper"},
	}
	for _, c := range cases {
		err := CheckKeys([]byte(c.doc), "f.json", c.depth)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
		if !errors.Is(err, inputerr.ErrInput) {
			t.Errorf("%s: not bad input", c.name)
		}
	}
}

func TestUnmarshalRefusesRepeatedKey(t *testing.T) {
	var v struct {
		Hidden int `json:"hidden_size"`
	}
	err := Unmarshal([]byte("{\"hidden_size\": 8,\n\"hidden_size\": 16}"), &v, "config.json")
	if !errors.Is(err, ErrDuplicateKey) || !strings.Contains(err.Error(), "config.json:2") || v.Hidden != 0 {
		t.Fatalf("got %v (value %d)", err, v.Hidden)
	}
	if err := Unmarshal([]byte(`{"hidden_size": "x"}`), &v, "config.json"); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "hidden_size") {
		t.Fatalf("type error: %v", err)
	}
}

type inner struct {
	Name string  `json:"name"`
	W    float64 `json:"w"`
}

type outer struct {
	Version int            `json:"version"`
	Items   []inner        `json:"items"`
	Inner   inner          `json:"inner"`
	Any     any            `json:"any"`
	Map     map[string]int `json:"map"`
	Opt     string         `json:"opt,omitempty"`
}

func TestDecodeRequiresEveryField(t *testing.T) {
	good := `{"version": 1, "items": [{"name": "a", "w": 1}], "inner": {"name": "b", "w": 0.5}, "any": null, "map": {}}`
	var v outer
	if err := Decode([]byte(good), &v, "s.json"); err != nil || v.Inner.W != 0.5 {
		t.Fatalf("good: %v %+v", err, v)
	}
	cases := []struct{ doc, want string }{
		{`{"items": [], "inner": {"name": "b", "w": 1}, "any": 1, "map": {}}`, `key "version": missing key`},
		{`{"version": 1, "items": [{"name": "a"}], "inner": {"name": "b", "w": 1}, "any": 1, "map": {}}`, `key "items[0].w": missing key`},
		{`{"version": 1, "items": [], "inner": {"name": "b", "w": null}, "any": 1, "map": {}}`, `key "inner.w": missing key (null`},
		{`{"version": 1, "items": [], "inner": {"name": "b", "w": 1, "x": 2}, "any": 1, "map": {}}`, `key "inner.x": unknown key`},
		{`{"version": 1, "items": [], "inner": {"name": "b", "w": 1}, "map": {}}`, `key "any": missing`},
		{`{"version": 1, "version": 1, "items": [], "inner": {"name": "b", "w": 1}, "any": 1, "map": {}}`, `duplicate key`},
	}
	for _, c := range cases {
		err := Decode([]byte(c.doc), &v, "s.json")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "s.json") {
			t.Errorf("%s: got %v, want %q", c.doc, err, c.want)
		}
	}
}
