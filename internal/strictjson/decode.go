package strictjson

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Decode is the strictest read, for files mose writes and reads back
// (sidecars, checkpoint state): no repeated key, no unknown key, and every
// field of v's struct type present and not null, recursively through nested
// structs and slices of structs. Fields tagged omitempty are optional.
// Values of interface or map type are required but not looked into.
func Decode(b []byte, v any, file string) error {
	if err := CheckKeys(b, file, All); err != nil {
		return err
	}
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer {
		return fmt.Errorf("strictjson.Decode: need a pointer, got %s", t)
	}
	if err := checkFields(b, t.Elem(), "", file); err != nil {
		return err
	}
	return unmarshal(b, v, file)
}

// field is one JSON field of a struct type.
type field struct {
	name     string
	t        reflect.Type
	optional bool
}

func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, field{name: name, t: f.Type, optional: strings.Contains(","+opts+",", ",omitempty,")})
	}
	return out
}

// checkFields checks raw against type t at path.
func checkFields(raw []byte, t reflect.Type, path, file string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return &Error{File: file, Key: path, Err: fmt.Errorf("%w: want an object", ErrSyntax)}
		}
		fs := fields(t)
		known := map[string]bool{}
		for _, f := range fs {
			known[f.name] = true
			v, ok := obj[f.name]
			kp := join(path, f.name)
			if !ok || string(v) == "null" && !nullable(f.t) {
				if f.optional {
					continue
				}
				what := "missing"
				if ok {
					what = "null"
				}
				return &Error{File: file, Key: kp, Err: fmt.Errorf("%w (%s; every field is required, none is defaulted)", ErrMissingKey, what)}
			}
			if err := checkFields(v, f.t, kp, file); err != nil {
				return err
			}
		}
		for k := range obj {
			if !known[k] {
				return &Error{File: file, Key: join(path, k), Err: ErrUnknownKey}
			}
		}
	case reflect.Slice, reflect.Array:
		et := t.Elem()
		for et.Kind() == reflect.Pointer {
			et = et.Elem()
		}
		if et.Kind() != reflect.Struct {
			return nil
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return &Error{File: file, Key: path, Err: fmt.Errorf("%w: want an array", ErrSyntax)}
		}
		for i, it := range items {
			if err := checkFields(it, et, fmt.Sprintf("%s[%d]", path, i), file); err != nil {
				return err
			}
		}
	}
	return nil
}

// nullable: a JSON null is a meaningful value of t (not a silent zero).
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		return true
	}
	return false
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
