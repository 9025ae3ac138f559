#!/usr/bin/env python3
"""Tokenizer fixtures for the pipelines of the LLM families users bring (issue 11 survey).

Run it in the reference venv (`make fixtures` calls it):

    "$(scripts/pyenv.sh)" scripts/tokenizer_survey_fixtures.py

Each data/tokenizer/testdata/survey-*/ dir holds a tokenizer.json built with HF `tokenizers`
from the components a real family's file uses (the vocab is small and trained here, with the
deterministic trainer of scripts/make_fixtures.py), and cases.json: HF's ids, pre-tokenizer
splits and decodes on the common strings plus seeded random ones. The Go test
TestSurveyMatchesHF compares the Go tokenizer with them.

  survey-smollm     SmolLM / SmolLM2 hub file: Sequence[Digits(individual_digits), ByteLevel],
                    ByteLevel post-processor and decoder
  survey-qwen2      Qwen2 / Qwen2.5: NFC normalizer, Split(Qwen2 regex) + ByteLevel(use_regex false)
  survey-gemma      Gemma: Replace(" ", "▁") normalizer, no pre-tokenizer, byte_fallback BPE,
                    Replace/ByteFallback/Fuse decoder, <bos> template
  survey-classes    NFKD + Lowercase; WhitespaceSplit, Punctuation(contiguous), Digits (grouped)
  survey-words      NFD; Whitespace, Punctuation (isolated); BPE with continuing_subword_prefix
                    and end_of_word_suffix
  survey-nfkc       NFKC; Punctuation(merged_with_previous), Digits(individual), Metaspace
  survey-o200k      Split with GPT-4o's o200k regex (look-ahead suffix) + ByteLevel
  survey-tekken     Split with Mistral Tekken's regex + ByteLevel
  survey-regex      Split/Replace regexes using \\s \\d \\w \\W (Unicode in Oniguruma, ASCII in Go)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (helpers: corpus, trainer, case writer)

QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# GPT-4o's o200k split (also the pattern family of Phi-4 and others) and Mistral's Tekken split
# (Mistral NeMo, Pixtral): regexes none of the hand-written matchers covers, run by the Go side
# as Go regexps with Oniguruma's Unicode classes plus the trailing `\s+(?!\S)|\s+` by hand.
O200K_SPLIT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
               r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
TEKKEN_SPLIT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
                r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
                r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
CHAT_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EXTRA_CASES = [
    "<|im_start|>user\nHi 2024!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>x<|endoftext|>",
    "Digits: 0 12 345 6789 ١٢٣ ½ ² Ⅻ 3.14 1,000,000",
    "Punctuation... (yes!) [no?] {maybe}; a-b_c 'quote' \"dq\" «guillemets» — dash",
    "ﬁ ﬂ ① ㌀ Ａ Ｂ Ｃ ｶﾀｶﾅ ™ ℌ",  # compatibility characters (NFKC/NFKD change them)
    "e\u0301 é A\u030a Å \u1e9b\u0323",  # composed / decomposed forms
    "한국어 조합 \u1100\u1161\u11a8",  # Hangul jamo (NFC composes them)
    "snake_case_name CamelCase x_1 __dunder__",
]


def byte_level_vocab(pre, vocab_size: int):
    alphabet = [mf.BYTE_CHARS[b] for b in range(256)]
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges = mf.train_bpe(mf.count_words(pre), alphabet, vocab_size - len(vocab))
    for a, b in merges:
        vocab[a + b] = len(vocab)
    return vocab, merges


def smollm():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    vocab, merges = byte_level_vocab(pre, 1100)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CHAT_SPECIALS])
    return tok


def qwen2():
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    vocab, merges = byte_level_vocab(pre, 1100)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CHAT_SPECIALS])
    return tok


def gemma(vocab, merges):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1",
                                                       special_tokens=[("<s>", 1)])
    return tok


def classes(vocab, merges):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Punctuation(behavior="contiguous"),
        pre_tokenizers.Digits(individual_digits=False),
    ])
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return tok


def words():
    """Word-internal continuation prefix and end-of-word suffix (BPE fields some files set)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    pre = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    counts = mf.count_words(pre)
    chars: dict[str, int] = {}
    for w, n in counts.items():
        for c in w:
            chars[c] = chars.get(c, 0) + n
    alphabet = sorted(c for c, n in chars.items() if n >= 40)
    # Train on plain characters, then name the tokens with the prefix/suffix HF's BPE expects:
    # every symbol but a word's first carries "##", a word's last carries "</w>".
    merges = mf.train_bpe(counts, alphabet, 500)
    vocab = {"<unk>": 0}
    for c in alphabet:
        for form in (c, "##" + c, c + "</w>", "##" + c + "</w>"):
            vocab.setdefault(form, len(vocab))
    hf_merges = []
    for a, b in merges:
        for pa, pb, pab in ((a, "##" + b, a + b), ("##" + a, "##" + b, "##" + a + b)):
            for suf in ("", "</w>"):
                x, y, xy = pa, pb + suf, pab + suf
                if x in vocab and y in vocab:
                    vocab.setdefault(xy, len(vocab))
                    hf_merges.append((x, y))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=hf_merges, unk_token="<unk>", fuse_unk=False,
                               continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.NFD()
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken("<unk>", special=True, normalized=False)])
    return tok


def nfkc(vocab, merges):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(behavior="merged_with_previous"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True),
    ])
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True),
                                     decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    return tok


def split_byte_level(pattern: str):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    vocab, merges = byte_level_vocab(pre, 1100)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    return tok


def regex_classes():
    """Oniguruma's Unicode \\s, \\d, \\w, \\W in and out of classes, in Split and Replace."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\d+"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[\s.,;]+"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\w+|\W"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    vocab, merges = byte_level_vocab(pre, 1000)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s\s+"), " "),
                                           normalizers.Replace(Regex(r"[\d]{4}"), "0000")])
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    return tok


def main() -> int:
    import tokenizers

    mf.random.seed(mf.SEED)
    tdir = mf.ROOT / "data" / "tokenizer" / "testdata"
    vocab, merges = mf.train_llama2_vocab(1000)
    byte_ids = (3, 259)
    texts = mf.COMMON_CASES + EXTRA_CASES
    specs = [
        ("survey-smollm", smollm(), "SmolLM/SmolLM2 hub pipeline: Sequence[Digits(individual_digits=true), "
         "ByteLevel(add_prefix_space=false)], BPE, ByteLevel post-processor and decoder, chat specials.", (0, 256)),
        ("survey-qwen2", qwen2(), "Qwen2/Qwen2.5 pipeline: NFC normalizer, Split(Qwen2 regex, isolated) + "
         "ByteLevel(use_regex=false), ByteLevel post-processor and decoder, chat specials.", (0, 256)),
        ("survey-gemma", gemma(vocab, merges), "Gemma pipeline: Replace(' ', '▁') normalizer, no pre-tokenizer, "
         "byte_fallback + fuse_unk BPE, decoder Replace/ByteFallback/Fuse, <s> template.", byte_ids),
        ("survey-classes", classes(vocab, merges), "NFKD + Lowercase normalizers; WhitespaceSplit, "
         "Punctuation(contiguous), Digits(individual_digits=false); byte_fallback BPE.", byte_ids),
        ("survey-words", words(), "NFD normalizer; Whitespace + Punctuation(isolated); BPE with "
         "continuing_subword_prefix '##', end_of_word_suffix '</w>', unfused <unk>; Fuse decoder.", (0, 40)),
        ("survey-o200k", split_byte_level(O200K_SPLIT), "GPT-4o's o200k split regex (Isolated) + "
         "ByteLevel(use_regex=false).", (0, 256)),
        ("survey-tekken", split_byte_level(TEKKEN_SPLIT), "Mistral Tekken's split regex (Isolated) + "
         "ByteLevel(use_regex=false).", (0, 256)),
        ("survey-regex", regex_classes(), "Split and Replace regexes with Unicode \\s, \\d, \\w, \\W inside and "
         "outside classes; Split behaviours isolated and merged_with_previous.", (0, 256)),
        ("survey-nfkc", nfkc(vocab, merges), "NFKC normalizer; Punctuation(merged_with_previous), "
         "Digits(individual_digits=true), Metaspace(first, split); byte_fallback BPE.", byte_ids),
    ]
    for i, (name, tok, note, byte_range) in enumerate(specs):
        d = mf.reset_dir(tdir / name)
        tok.save(str(d / "tokenizer.json"), pretty=False)
        mf.wrote(d / "tokenizer.json")
        tok = tokenizers.Tokenizer.from_file(str(d / "tokenizer.json"))
        mf.write_cases(d / "cases.json", tok, "tokenizer.json", texts, mf.random_cases(mf.SEED + 200 + i, 100), note,
                       decode_ids=mf.random_id_lists(mf.SEED + 300 + i, tok, 40, byte_range))
    return 0


if __name__ == "__main__":
    sys.exit(main())
