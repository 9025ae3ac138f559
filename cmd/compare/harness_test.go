package main

import "testing"

// The count comes from mose validate's adapters line; a summary without one
// is an error, never a zero.
func TestTrainableCount(t *testing.T) {
	out := "recipe demo-tiny: ok\n  adapters mose on 8 linears (q_proj,v_proj), 90368 trainable parameters\n"
	if n, err := trainableCount(out); n != 90368 || err != nil {
		t.Errorf("trainableCount = %d, %v; want 90368", n, err)
	}
	for _, bad := range []string{"", "recipe ok\n", " trainable parameters", "x, many trainable parameters"} {
		if n, err := trainableCount(bad); err == nil {
			t.Errorf("trainableCount(%q) = %d, want an error", bad, n)
		}
	}
}
