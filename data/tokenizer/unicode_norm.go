package tokenizer

import "golang.org/x/text/unicode/norm"

// unicodeNormalizer is one of HF's NFC, NFD, NFKC and NFKD normalizers (Qwen2 and
// Qwen2.5 files use NFC). Go's tables are Unicode 15; HF's are older, so the two can
// differ only on characters assigned or changed since then.
type unicodeNormalizer struct{ form norm.Form }

func (n unicodeNormalizer) normalize(s string) string { return n.form.String(s) }

// unicodeForms maps the normalizer type names to their forms.
var unicodeForms = map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}
