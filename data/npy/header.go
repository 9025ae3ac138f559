package npy

import (
	"fmt"
	"strconv"
	"strings"
)

// dict is the content of a .npy header: a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (32, 64), }.
type dict struct {
	descr   string
	fortran bool
	shape   []int
}

// parseDict parses the header dict with a tiny recursive-descent parser that
// accepts exactly the literal forms numpy writes (strings, True/False, tuples
// of integers) and requires the three keys once each.
func parseDict(s string) (dict, error) {
	p := &dictParser{s: s}
	var d dict
	seen := map[string]bool{}
	p.space()
	if !p.eat('{') {
		return d, p.errorf("want '{'")
	}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return d, err
		}
		if seen[key] {
			return d, p.errorf("duplicate key %q", key)
		}
		seen[key] = true
		p.space()
		if !p.eat(':') {
			return d, p.errorf("want ':' after %q", key)
		}
		p.space()
		switch key {
		case "descr":
			if d.descr, err = p.str(); err != nil {
				return d, err
			}
		case "fortran_order":
			if d.fortran, err = p.boolean(); err != nil {
				return d, err
			}
		case "shape":
			if d.shape, err = p.tuple(); err != nil {
				return d, err
			}
		default:
			return d, p.errorf("unexpected key %q", key)
		}
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat('}') {
			return d, p.errorf("want ',' or '}'")
		}
		break
	}
	if strings.TrimSpace(s[p.i:]) != "" {
		return d, p.errorf("trailing text after header dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return d, fmt.Errorf("%w: header lacks %q", ErrFormat, k)
		}
	}
	return d, nil
}

type dictParser struct {
	s string
	i int
}

func (p *dictParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: header at byte %d: %s", ErrFormat, p.i, fmt.Sprintf(format, args...))
}

func (p *dictParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *dictParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *dictParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", p.errorf("want a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", p.errorf("escapes in strings are not supported")
	}
	p.i += end + 2
	return v, nil
}

func (p *dictParser) boolean() (bool, error) {
	switch {
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return false, p.errorf("want True or False")
}

func (p *dictParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, p.errorf("want '(' for shape")
	}
	shape := []int{}
	for {
		p.space()
		if p.eat(')') {
			return shape, nil
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		// numpy may write Python 2 longs as 3L.
		n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
		if err != nil || n > maxElements {
			return nil, p.errorf("bad dimension %q", p.s[start:p.i])
		}
		p.eat('L')
		shape = append(shape, int(n))
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat(')') {
			return nil, p.errorf("want ',' or ')' in shape")
		}
		return shape, nil
	}
}
