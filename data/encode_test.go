package data

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestEncodeLayout(t *testing.T) {
	tok := newWordTok()
	spec := testSpec()
	enc, err := NewEncoder(spec, tok, EncoderOptions{PadID: 0})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := enc.Encode(Sample{ID: "a", Subset: "consistent", Label: "sad", Subtitle: "I came home"}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Index != 7 || ex.Label != 2 || ex.Truncated {
		t.Fatalf("got %+v", ex)
	}
	text := tok.Decode(ex.IDs)
	want := "<s> [INST] <video> <pad> <pad> <pad> <pad> </video> <feature> <pad> </feature> The person in video says : I came home . " +
		"[emotion] Please determine which emotion label in the video represents : angry , happy , sad . [/INST] sad </s>"
	if text != want {
		t.Fatalf("decoded\n%s\nwant\n%s", text, want)
	}
	// Offsets point at the slots: frames after "<s> [INST] <video>", audio after "</video> <feature>".
	if !slices.Equal(ex.Offsets, []int{3, 9}) {
		t.Fatalf("offsets %v", ex.Offsets)
	}
	if got := tok.Decode(ex.IDs[ex.AnswerStart:]); got != "sad </s>" {
		t.Fatalf("answer %q", got)
	}
}

func TestEncodeSharedPlaceholder(t *testing.T) {
	spec := testSpec()
	spec.Inputs = append(spec.Inputs, Input{Name: "cls", Modality: "visual", Dim: 2, Tokens: 2, Placeholder: "<FeatureHere>"})
	tok := newWordTok()
	enc, err := NewEncoder(spec, tok, EncoderOptions{PadID: 0})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := enc.Encode(Sample{ID: "a", Label: "sad"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// audio then cls at <FeatureHere>, in listed order.
	if !slices.Equal(ex.Offsets, []int{3, 9, 10}) || tok.Decode(ex.IDs[9:13]) != "<pad> <pad> <pad> </feature>" {
		t.Fatalf("offsets %v: %s", ex.Offsets, tok.Decode(ex.IDs))
	}
}

func TestEncodeReason(t *testing.T) {
	tok := newWordTok()
	enc, err := NewEncoder(testSpec(), tok, EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := enc.Encode(Sample{ID: "a", Label: "sad", Reason: "her voice trembles"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(ex.IDs[ex.AnswerStart:]); got != "her voice trembles </s>" {
		t.Fatalf("answer %q", got)
	}
}

func TestEncodeTruncation(t *testing.T) {
	tok := newWordTok()
	spec := testSpec()
	full, err := NewEncoder(spec, tok, EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.TrimSpace(strings.Repeat("blah ", 30))
	s := Sample{ID: "a", Label: "happy", Subtitle: long}
	ref, err := full.Encode(s, 0)
	if err != nil {
		t.Fatal(err)
	}
	base, err := full.Encode(Sample{ID: "a", Label: "happy"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, maxLen := range []int{ref.Len(), ref.Len() - 1, ref.Len() - 10, base.Len()} {
		enc, err := NewEncoder(spec, tok, EncoderOptions{MaxLen: maxLen})
		if err != nil {
			t.Fatal(err)
		}
		ex, err := enc.Encode(s, 0)
		if err != nil {
			t.Fatalf("maxLen %d: %v", maxLen, err)
		}
		if ex.Len() > maxLen || ex.Truncated != (maxLen < ref.Len()) {
			t.Fatalf("maxLen %d: len %d truncated %v", maxLen, ex.Len(), ex.Truncated)
		}
		// Only "blah" tokens went: features and answer intact.
		blahs := strings.Count(tok.Decode(ex.IDs), "blah")
		if removed := ref.Len() - ex.Len(); 30-blahs != removed {
			t.Fatalf("maxLen %d: removed %d tokens but %d subtitle words", maxLen, removed, 30-blahs)
		}
		if tok.Decode(ex.IDs[ex.AnswerStart:]) != "happy </s>" || !slices.Equal(ex.Offsets, ref.Offsets) {
			t.Fatalf("maxLen %d: answer or slots changed", maxLen)
		}
	}
	enc, err := NewEncoder(spec, tok, EncoderOptions{MaxLen: base.Len() - 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Encode(s, 0); !errors.Is(err, ErrTooLong) {
		t.Fatalf("want ErrTooLong, got %v", err)
	}
}

func TestCut(t *testing.T) {
	r := []rune("héllo big world")
	for n, want := range map[int]string{0: "", 3: "hél", 5: "héllo", 6: "héllo", 8: "héllo", 10: "héllo big", 15: "héllo big world"} {
		if got := cut(r, n); got != want {
			t.Errorf("cut(%d) = %q, want %q", n, got, want)
		}
	}
}
