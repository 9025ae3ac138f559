package data

// Tokenizer turns text into token ids; it is all data needs of one
// (data/tokenizer's *Tokenizer satisfies it). Encode must split special tokens
// written literally in the text (such as "<s>" and "</s>") into their ids and
// must not add BOS/EOS on its own: the prompt template says where they go.
// Implementations need not be safe for concurrent use; data calls Encode from
// one goroutine.
type Tokenizer interface {
	Encode(text string) ([]int32, error)
}
