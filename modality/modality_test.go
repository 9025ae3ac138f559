package modality

import "testing"

// The sidecar's numbering is the constants', each id once, below Count.
func TestIDs(t *testing.T) {
	want := map[string]int{"text": Text, "visual": Visual, "audio": Audio, "pad": Pad}
	got := IDs()
	if len(got) != len(want) || len(got) != Count {
		t.Fatalf("IDs() = %v, want %d ids %v", got, Count, want)
	}
	seen := map[int]bool{}
	for name, id := range want {
		if got[name] != id || seen[id] || id < 0 || id >= Count {
			t.Errorf("IDs()[%q] = %d, want %d, unique, in [0, %d)", name, got[name], id, Count)
		}
		seen[id] = true
	}
}
