package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

// Scope owns the tensors its ops create and records the first error.
//
//	s := torch.NewScope()
//	defer s.Close()
//	y := s.Matmul(x, w)        // y: (B,T,D)·(D,E) -> (B,T,E)
//	z := s.Softmax(y, -1)
//	if err := s.Err(); err != nil { ... }
//	return s.Keep(z)           // the caller now owns z
//
// A Scope is used by one goroutine (the one inside Run). Close frees what it
// owns and leaves the scope reusable.
type Scope struct {
	owned []*Tensor
	errp  *error // shared with child scopes; the first error wins
	err   error  // storage for errp in a root scope
	// out receives libtch's output handles. It is a separate pointer-free
	// allocation: cgo's pointer check rejects passing a pointer into an object
	// that also holds Go pointers.
	out *[8]lib.Ctensor
}

// NewScope returns an empty root scope.
func NewScope() *Scope {
	s := &Scope{out: new([8]lib.Ctensor)}
	s.errp = &s.err
	return s
}

// Child returns a scope for temporaries that should be freed earlier than the
// parent's. It shares the parent's error: a failure in either is seen by both.
func (s *Scope) Child() *Scope {
	return &Scope{errp: s.errp, out: new([8]lib.Ctensor)}
}

// Err returns the first error recorded by this scope or any scope sharing it.
func (s *Scope) Err() error { return *s.errp }

// Fail records err (if it is the first error) and returns it. Callers use it to
// report their own checks through the scope.
func (s *Scope) Fail(err error) error {
	if *s.errp == nil && err != nil {
		*s.errp = err
	}
	return *s.errp
}

// Close frees every tensor the scope still owns. The scope can be used again.
func (s *Scope) Close() {
	for i, t := range s.owned {
		if t.owner == s {
			t.Free()
		}
		s.owned[i] = nil
	}
	s.owned = s.owned[:0]
}

// Keep hands t over to the caller, who must Free it (or Own it elsewhere).
// It returns t, so that `return s.Keep(y)` reads naturally.
func (s *Scope) Keep(t *Tensor) *Tensor {
	if t != nil && t.owner == s {
		t.owner = nil
	}
	return t
}

// Own moves t into s: s.Close will free it. It returns t.
func (s *Scope) Own(t *Tensor) *Tensor {
	if t == nil || t.c == nil || t.owner == s {
		return t
	}
	t.owner = s
	s.owned = append(s.owned, t)
	return t
}

// Len returns the number of tensors s currently owns.
func (s *Scope) Len() int {
	n := 0
	for _, t := range s.owned {
		if t.owner == s {
			n++
		}
	}
	return n
}

// track wraps a fresh handle returned by libtch and gives it to s.
func (s *Scope) track(c lib.Ctensor) *Tensor {
	t := &Tensor{c: c, owner: s}
	s.owned = append(s.owned, t)
	live.Add(1)
	return t
}

// ok is the prologue of every op: false if the scope already failed or an
// input is nil or freed (which records the error).
func (s *Scope) ok(op string, in ...*Tensor) bool {
	if *s.errp != nil {
		return false
	}
	for i, t := range in {
		if t == nil || t.c == nil {
			s.Fail(goErr(op, "input %d: %w", i, ErrFreed))
			return false
		}
	}
	return true
}

// result is the epilogue of a one-output op: the error or the tracked s.out[0].
func (s *Scope) result(op string) *Tensor {
	if err := lastError(op); err != nil {
		s.Fail(err)
		return nil
	}
	return s.track(s.out[0])
}

// results is the epilogue of an n-output op.
func (s *Scope) results(op string, n int) []*Tensor {
	if err := lastError(op); err != nil {
		s.Fail(err)
		return make([]*Tensor, n)
	}
	ts := make([]*Tensor, n)
	for i := range ts {
		ts[i] = s.track(s.out[i])
	}
	return ts
}

// handles returns the C handles of ts, checking each like ok does.
func (s *Scope) handles(op string, ts []*Tensor) ([]lib.Ctensor, bool) {
	if !s.ok(op) {
		return nil, false
	}
	if len(ts) == 0 {
		s.Fail(goErr(op, "no tensors: %w", ErrShape))
		return nil, false
	}
	cs := make([]lib.Ctensor, len(ts))
	for i, t := range ts {
		if t == nil || t.c == nil {
			s.Fail(goErr(op, "input %d: %w", i, ErrFreed))
			return nil, false
		}
		cs[i] = t.c
	}
	return cs, true
}
