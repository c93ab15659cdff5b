#!/usr/bin/env python3
"""Expected token ids for texts that contain added special tokens (chat markers).

The oracle is the Hugging Face `tokenizers` package, as `transformers` (and so
TransformerLens) uses it: `tokenizer.encode(text, add_special_tokens=False)`,
which adds no BOS/EOS but still maps every added token found in the text to its
one id. With `encode_special_tokens = True` the same tokenizer gives the literal
ids (special tokens cut into the pieces of their characters).

SmolLM2's tokenizer is built in two independent ways, which must agree:

* A: the published `tokenizer.json` layout of SmolLM2 (byte-level BPE, the
  pre-tokenizer `Sequence[Digits(individual_digits=True), ByteLevel]`, the 17
  added tokens listed below, each `special`, not `normalized`, no
  `lstrip`/`rstrip`/`single_word`), with the vocabulary and merges read from the
  GGUF by the `gguf` package;
* B: `transformers`' own GGUF tokenizer converter
  (`convert_gguf_tokenizer`: CONTROL tokens become special added tokens,
  USER_DEFINED ones plain added tokens), with A's pre-tokenizer put in (the
  converter does not know `tokenizer.ggml.pre = smollm`'s digit split).

A's literal ids are also checked against llama.cpp's (`special=False`) in
`fixtures/reference/smollm2_tokenizer.json`.

Outputs (under fixtures/reference/):

* smollm2_special_tokens.json   - `[{"text", "ids", "literal_ids"}]`
* smollm2_hf_tokenizer.json.gz  - tokenizer A as `tokenizer.json` (gzip, mtime 0)
* tiny_gguf_special_tokens.json - `[{"text", "ids", "literal_ids"}]` of the tiny
  SentencePiece Llama (fixtures/tiny/gguf, fixtures/tiny/llama31_hf) with Llama 2's
  added tokens
* added_token_flags/tokenizer.json and added_token_flags.json - a small
  tokenizer (the tiny GPT-2 one of fixtures/tiny/gpt2 with a lowercasing
  normalizer) whose added tokens use `lstrip`, `rstrip`, `single_word` and
  `normalized`, and its ids (`[{"text", "ids", "literal_ids"}]`).

Run from the repository root:  python3 scripts/reference/special_tokens.py
(needs data/models/SmolLM2-135M-Instruct.Q4_1.gguf, `tokenizers`, `gguf`, and
`transformers` without torch).
"""

from __future__ import annotations

import gzip
import json
import os

from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_PATH = os.path.join(REPO_ROOT, "data", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT_DIR = os.path.join(REPO_ROOT, "fixtures", "reference")

# SmolLM2's added tokens as its published tokenizer.json lists them (ids 0..16).
SMOLLM2_ADDED = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>",
    "<file_sep>", "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>",
    "<issue_closed>", "<jupyter_start>", "<jupyter_text>", "<jupyter_code>",
    "<jupyter_output>", "<jupyter_script>", "<empty_output>",
]

SMOLLM2_TEXTS = [
    "<|im_start|>assistant\nHello!<|im_end|>",
    "<|im_start|>user\nHi<|im_end|>",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
    "Hello <|im_start|>world",
    "Hello<|im_start|>world",
    "end of text<|endoftext|>",
    "end of text <|endoftext|>",
    "<|im_end|><|im_start|>",
    "<|im_start|><|im_start|><|im_end|>",
    " <|im_start|> ",
    "\n<|im_start|>\n",
    "  <|im_end|>  x",
    "a<|im_end|>\n\nb",
    "<|im_sta",
    "<|im_start|",
    "im_start|>",
    "<<|im_start|>>",
    "<|IM_START|>",
    "<| im_start |>",
    "123<|im_end|>456",
    "code<file_sep>main.py<filename>x<gh_stars>10",
    "<jupyter_code>print(1)<jupyter_output>1<empty_output>",
    "text with no marker at all",
    "<|endoftext|>",
]

TINY_TEXTS = [
    "<s>the cat</s>",
    "the cat</s>the dog",
    "the cat </s> the dog",
    "</s>",
    "<unk> and <s><s>",
    "a</s>\nb",
    "the cat",
    "</s",
    "<s >the",
    "x<unk>",
]

FLAG_TEXTS = [
    "the <sep> cat",
    "the<sep>cat",
    "the <eot>  cat",
    "the<eot>\ncat",
    "a word here",
    "swordfish words word",
    "<UP> and <up> and <Up>",
    "<Keep> and <keep>",
    "<|endoftext|>The cat",
    "x <sep>  <eot> y",
]


def gguf_strings(reader: GGUFReader, key: str):
    return reader.fields[key].contents()


def smollm2_pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


def tokenizer_a(tokens, merges) -> Tokenizer:
    vocab = {t: i for i, t in enumerate(tokens)}
    pairs = [tuple(m.split(" ")) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs))
    tok.pre_tokenizer = smollm2_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([
        AddedToken(t, special=True, normalized=False, lstrip=False, rstrip=False,
                   single_word=False)
        for t in SMOLLM2_ADDED
    ])
    for i, t in enumerate(SMOLLM2_ADDED):
        assert tok.token_to_id(t) == i, (t, tok.token_to_id(t))
    return tok


def tokenizer_b(tokens, merges, types, pre) -> Tokenizer:
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

    d = {"tokenizer_type": "gpt2", "pre_tokenizer_type": pre, "tokens": tokens,
         "merges": merges, "token_type": types}
    tok, _ = convert_gguf_tokenizer("llama", d)
    tok.pre_tokenizer = smollm2_pre_tokenizer()
    return tok


def encode_both(tok: Tokenizer, text: str):
    tok.encode_special_tokens = False
    ids = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = True
    literal = tok.encode(text, add_special_tokens=False).ids
    tok.encode_special_tokens = False
    return ids, literal


def write_json(path: str, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")


def smollm2():
    reader = GGUFReader(MODEL_PATH)
    tokens = list(gguf_strings(reader, "tokenizer.ggml.tokens"))
    merges = list(gguf_strings(reader, "tokenizer.ggml.merges"))
    types = list(gguf_strings(reader, "tokenizer.ggml.token_type"))
    pre = gguf_strings(reader, "tokenizer.ggml.pre")
    # The GGUF's CONTROL tokens are exactly the published added tokens; no USER_DEFINED.
    control = [tokens[i] for i, t in enumerate(types) if t == 3]
    assert control == SMOLLM2_ADDED, control
    assert not [i for i, t in enumerate(types) if t == 4]

    a = tokenizer_a(tokens, merges)
    b = tokenizer_b(tokens, merges, types, pre)
    cases = []
    for text in SMOLLM2_TEXTS:
        ids, literal = encode_both(a, text)
        assert (ids, literal) == encode_both(b, text), text
        cases.append({"text": text, "ids": ids, "literal_ids": literal})
    # A marker in the text is one id; a partial one is not.
    assert cases[0]["ids"][0] == 1 and cases[0]["ids"][-1] == 2
    assert 1 not in cases[SMOLLM2_TEXTS.index("<|im_sta")]["ids"]

    # Literal ids agree with llama.cpp's (special=False) on its tricky strings.
    with open(os.path.join(OUT_DIR, "smollm2_tokenizer.json"), encoding="utf-8") as f:
        llama_cpp = json.load(f)
    for case in llama_cpp:
        assert encode_both(a, case["text"])[1] == case["ids"], case["text"]

    write_json(os.path.join(OUT_DIR, "smollm2_special_tokens.json"), cases)
    raw = a.to_str(pretty=False).encode("utf-8")
    with open(os.path.join(OUT_DIR, "smollm2_hf_tokenizer.json.gz"), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as g:
            g.write(raw)
    print(f"smollm2: {len(cases)} texts, tokenizer.json {len(raw)} bytes")


def tiny_sentencepiece():
    """The tiny SentencePiece Llama of fixtures/tiny: its `tokenizer.json` (converted as
    `transformers`' LlamaConverter does: `Prepend` and `Replace` normalizers) with the
    added tokens of Llama 2's `tokenizer.json` (`<unk>`, `<s>`, `</s>`: special, not
    normalized), as the GGUF types them (UNKNOWN 2, CONTROL 3)."""
    tok = Tokenizer.from_file(os.path.join(REPO_ROOT, "fixtures", "tiny", "llama31_hf", "tokenizer.json"))
    reader = GGUFReader(os.path.join(REPO_ROOT, "fixtures", "tiny", "gguf", "model.gguf"))
    tokens = list(gguf_strings(reader, "tokenizer.ggml.tokens"))
    types = list(gguf_strings(reader, "tokenizer.ggml.token_type"))
    added = ["<unk>", "<s>", "</s>"]
    assert [(tokens[i], types[i]) for i in range(3)] == list(zip(added, [2, 3, 3]))
    assert not [t for t in types[3:] if t not in (1, 6)]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in added])
    for i, t in enumerate(added):
        assert tok.token_to_id(t) == i
    cases = []
    for text in TINY_TEXTS:
        ids, literal = encode_both(tok, text)
        cases.append({"text": text, "ids": ids, "literal_ids": literal})
    write_json(os.path.join(OUT_DIR, "tiny_gguf_special_tokens.json"), cases)
    print(f"tiny sentencepiece: {len(cases)} texts")


def added_token_flags():
    tok = Tokenizer.from_file(os.path.join(REPO_ROOT, "fixtures", "tiny", "gpt2", "tokenizer.json"))
    tok.normalizer = normalizers.Lowercase()
    tok.add_special_tokens([
        AddedToken("<sep>", special=True, normalized=False, lstrip=True),
        AddedToken("<eot>", special=True, normalized=False, rstrip=True),
        AddedToken("<keep>", special=True, normalized=False),
    ])
    tok.add_tokens([
        AddedToken("word", special=False, single_word=True, normalized=False),
        AddedToken("<up>", special=False, normalized=True),
    ])
    out = os.path.join(OUT_DIR, "added_token_flags")
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"), pretty=True)
    tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    cases = []
    for text in FLAG_TEXTS:
        ids, literal = encode_both(tok, text)
        cases.append({"text": text, "ids": ids, "literal_ids": literal})
    write_json(os.path.join(OUT_DIR, "added_token_flags.json"), cases)
    print(f"added token flags: {len(cases)} texts")


if __name__ == "__main__":
    smollm2()
    tiny_sentencepiece()
    added_token_flags()
