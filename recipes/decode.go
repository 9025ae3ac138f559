package recipes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// fileValues are the keys a recipe file sets: typed values and their lines.
type fileValues struct {
	values map[string]any
	lines  map[string]int
}

// yamlLine splits yaml.v3's "yaml: line N: msg" syntax errors into N and msg.
func yamlLine(msg string) (line, rest string, ok bool) {
	after, found := strings.CutPrefix(msg, "yaml: line ")
	if !found {
		return "", "", false
	}
	line, rest, ok = strings.Cut(after, ": ")
	if !ok || line == "" || strings.Trim(line, "0123456789") != "" {
		return "", "", false
	}
	return line, rest, true
}

// decodeFile parses a recipe file strictly: keys are case-sensitive and must
// be known, sections must be mappings, leaves must have the key's type, and a
// key may appear once. A file that cannot be parsed at all is returned as an
// error; per-key problems are added to ps.
func decodeFile(data []byte, src string, ps *problems) (fileValues, error) {
	fv := fileValues{values: map[string]any{}, lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fv, recipeErr("%s is empty", src)
		}
		msg := err.Error()
		if line, rest, ok := yamlLine(msg); ok {
			return fv, recipeErr("%s:%s: malformed YAML: %s", src, line, rest)
		}
		return fv, recipeErr("%s: malformed YAML: %s", src, strings.TrimPrefix(msg, "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fv, recipeErr("%s: holds more than one YAML document", src)
	}
	if len(doc.Content) == 0 {
		return fv, recipeErr("%s is empty", src)
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return fv, recipeErr("%s is empty", src)
	}
	if root.Kind != yaml.MappingNode {
		return fv, recipeErr("%s:%d: a recipe is a mapping of sections (run, model, adapters, loss, data, train, eval), got %s",
			src, root.Line, describe(root))
	}
	walkMapping(root, "", src, fv, ps)
	return fv, nil
}

// walkMapping decodes the keys of one section (prefix "" for the top level).
func walkMapping(m *yaml.Node, prefix, src string, fv fileValues, ps *problems) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn, vn := deref(m.Content[i]), deref(m.Content[i+1])
		at := fmt.Sprintf("%s:%d", src, kn.Line)
		if kn.Kind != yaml.ScalarNode {
			ps.addAt(at, strings.TrimSuffix(prefix, "."), "a key must be a plain name, got %s", describe(kn))
			continue
		}
		key := prefix + kn.Value
		if first, dup := seen[kn.Value]; dup {
			ps.addAt(at, key, "duplicate key (first at line %d)", first)
			continue
		}
		seen[kn.Value] = kn.Line
		switch {
		case sections[key]:
			if isNull(vn) {
				continue // an empty section: all defaults
			}
			if vn.Kind != yaml.MappingNode {
				ps.addAt(at, key, "is a section: expected a mapping of its keys, got %s", describe(vn))
				continue
			}
			walkMapping(vn, key+".", src, fv, ps)
		case keyByName[key] != nil:
			v, err := decodeValue(vn, keyByName[key].typ, false)
			if err != nil {
				ps.addAt(at, key, "%v", err)
				continue
			}
			fv.values[key] = v
			fv.lines[key] = kn.Line
		default:
			ps.addAt(at, key, "unknown key%s", didYouMean(key))
		}
	}
}

func didYouMean(key string) string {
	if s := suggest(key, knownKeys()); s != "" {
		return fmt.Sprintf(" (did you mean %s?)", s)
	}
	return ""
}

// parseText decodes the text of a --set or environment value as YAML: a
// scalar (2e-4, true, cuda:0, "quoted") or a list ([0.9, 0.95]). Empty text is
// null.
func parseText(key *keyInfo, text string) (any, error) {
	var doc yaml.Node
	err := yaml.Unmarshal([]byte(text), &doc)
	if key.typ.Kind() == reflect.String {
		// Strings are taken as written (only YAML quotes are removed), so
		// that run.name=001 or a path with ": " needs no quoting in a shell.
		if err == nil && len(doc.Content) == 1 && deref(doc.Content[0]).Kind == yaml.ScalarNode {
			n := deref(doc.Content[0])
			if isNull(n) {
				return "", nil
			}
			return n.Value, nil
		}
		return text, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse %q as YAML: %s", text, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	if len(doc.Content) == 1 {
		n = doc.Content[0]
	}
	return decodeValue(n, key.typ, true)
}

// decodeValue converts a YAML node to a value of type t. Null is "" for a
// string and an empty list for a list; numbers, booleans and lists must have
// their own YAML types (no "3" for 3). lenient (--set and environment values)
// also accepts a comma-separated scalar for a list: targets=q_proj,v_proj.
func decodeValue(n *yaml.Node, t reflect.Type, lenient bool) (any, error) {
	n = deref(n)
	if t.Kind() == reflect.Slice {
		return decodeList(n, t, lenient)
	}
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("expected %s, got %s", typeName(t), describe(n))
	}
	return decodeScalar(n, t)
}

func decodeList(n *yaml.Node, t reflect.Type, lenient bool) (any, error) {
	out := reflect.MakeSlice(t, 0, len(n.Content)) // never nil: see load.go
	var items []*yaml.Node
	switch {
	case isNull(n):
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	case lenient && n.Kind == yaml.ScalarNode:
		for part := range strings.SplitSeq(n.Value, ",") {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(strings.TrimSpace(part)), &doc); err != nil || len(doc.Content) != 1 {
				return nil, fmt.Errorf("expected %s, got %q", typeName(t), n.Value)
			}
			items = append(items, doc.Content[0])
		}
	default:
		return nil, fmt.Errorf("expected %s, got %s", typeName(t), describe(n))
	}
	for i, item := range items {
		item = deref(item)
		if item.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("item %d: expected %s, got %s", i, typeName(t.Elem()), describe(item))
		}
		v, err := decodeScalar(item, t.Elem())
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out = reflect.Append(out, reflect.ValueOf(v))
	}
	return out.Interface(), nil
}

func decodeScalar(n *yaml.Node, t reflect.Type) (any, error) {
	tag := n.ShortTag()
	bad := func() (any, error) { return nil, fmt.Errorf("expected %s, got %s", typeName(t), describe(n)) }
	switch t.Kind() {
	case reflect.String:
		switch tag {
		case "!!str":
			return n.Value, nil
		case "!!null":
			return "", nil
		}
		return nil, fmt.Errorf("expected a string, got %s (quote it)", describe(n))
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			return bad()
		}
		return b, nil
	case reflect.Int, reflect.Int64:
		i, ok := scalarInt(n)
		if !ok || (t.Kind() == reflect.Int && int64(int(i)) != i) {
			return bad()
		}
		return reflect.ValueOf(i).Convert(t).Interface(), nil
	case reflect.Uint64:
		var u uint64
		if tag != "!!int" || n.Decode(&u) != nil {
			return bad()
		}
		return u, nil
	case reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			return bad()
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("must be a finite number, got %s", n.Value)
		}
		return f, nil
	}
	return nil, fmt.Errorf("unsupported type %s", t) // not reached: the key table has no other kinds
}

// scalarInt accepts a YAML integer, or a float with an integral value (1e3).
func scalarInt(n *yaml.Node) (int64, bool) {
	switch n.ShortTag() {
	case "!!int":
		var i int64
		return i, n.Decode(&i) == nil
	case "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(typeName(t.Elem()), "a "), "an ") + "s"
	}
	return t.String()
}

// describe names a node's kind and value for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "boolean " + n.Value
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!str":
			return strconv.Quote(n.Value)
		}
		return n.ShortTag() + " " + strconv.Quote(n.Value)
	}
	return "nothing"
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}
