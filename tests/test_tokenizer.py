"""Tests of ElmoTokenizer and ElmoTokenizerFast: character ids, word splitting with offsets, padding, decoding,
saving. Every test of a tokenizer runs with both classes (the fast one must behave exactly like the Python one);
tests specific to the fast tokenizer are in test_fast_tokenizer.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import DataCollatorWithPadding
from transformers.pipelines.base import pad_collate_fn

from modeling_elmo.tokenization_elmo import (
    NUM_CHAR_IDS,
    ElmoTokenizer,
    bos_char_ids,
    eos_char_ids,
    word_to_char_ids,
)
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast

BOW, EOW, PAD = 259, 260, 261  # 258, 259, 260 shifted by +1

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
# Any Unicode except surrogates, control characters included.
UNICODE_TEXT = st.text(st.characters(exclude_categories=("Cs",)))
# Text dense in the characters Moses has rules for.
MOSES_TEXT = st.lists(
    st.sampled_from(
        [
            *"aZé.,'\"-$%&@#()[]:;?!/ \t\n\x01\x1f\u00a0\u2028…’“😀中ש́0",
            "U.S.", "n't", "'s", "DOT", "MULTI", "<S>", "</S>",
        ]
    ),
    max_size=40,
).map("".join)


@pytest.fixture(scope="module", params=[ElmoTokenizer, ElmoTokenizerFast], ids=["python", "fast"])
def tokenizer_class(request: pytest.FixtureRequest) -> type[ElmoTokenizer]:
    return request.param


@pytest.fixture(scope="module")
def moses(tokenizer_class: type[ElmoTokenizer]) -> ElmoTokenizer:
    return tokenizer_class()


@pytest.fixture(scope="module")
def whitespace(tokenizer_class: type[ElmoTokenizer]) -> ElmoTokenizer:
    return tokenizer_class(word_splitter="whitespace")


def words_of(tokenizer: ElmoTokenizer, text: str) -> list[str]:
    return [word for word, _ in tokenizer.split_words(text)]


# ---------------------------------------------------------------------------- character ids


def test_char_ids_ascii() -> None:
    assert word_to_char_ids("a") == [BOW, 98, EOW] + [PAD] * 47
    assert word_to_char_ids("Hi!") == [BOW, 73, 106, 34, EOW] + [PAD] * 45


def test_char_ids_two_byte_character() -> None:
    # "é" is C3 A9 in UTF-8.
    assert word_to_char_ids("é") == [BOW, 0xC3 + 1, 0xA9 + 1, EOW] + [PAD] * 46


def test_char_ids_cut_splits_multibyte_character() -> None:
    word = "a" * 47 + "é" * 6 + "b"  # 47 + 12 + 1 = 60 bytes; byte 48 is the first half of "é"
    assert len(word.encode()) == 60
    assert word_to_char_ids(word) == [BOW] + [98] * 47 + [0xC3 + 1] + [EOW]


def test_char_ids_empty_word_and_lone_surrogate() -> None:
    assert word_to_char_ids("") == [BOW, EOW] + [PAD] * 48
    assert word_to_char_ids("a\ud800b") == word_to_char_ids("ab")  # encode(..., "ignore")


def test_char_ids_other_row_length() -> None:
    assert word_to_char_ids("abcdef", 5) == [BOW, 98, 99, 100, EOW]
    with pytest.raises(ValueError, match="at least 3"):
        word_to_char_ids("a", 2)
    with pytest.raises(TypeError, match="must be a str"):
        word_to_char_ids(b"a")  # type: ignore[arg-type]


def test_sentence_marker_rows() -> None:
    assert bos_char_ids() == [BOW, 257, EOW] + [PAD] * 47
    assert eos_char_ids() == [BOW, 258, EOW] + [PAD] * 47
    assert bos_char_ids(4) == [BOW, 257, EOW, PAD]


def test_sentence_marker_words_get_the_marker_rows() -> None:
    """As in bilm-tf's UnicodeCharsVocabulary and AllenNLP's ELMoCharacterMapper: exactly `<S>` and `</S>`."""
    assert word_to_char_ids("<S>") == bos_char_ids()
    assert word_to_char_ids("</S>") == eos_char_ids()
    assert word_to_char_ids("</S>", 4) == eos_char_ids(4)
    assert word_to_char_ids("<S>", literal_sentence_markers=True) == [BOW, 61, 84, 63, EOW] + [PAD] * 45
    assert word_to_char_ids("</S>", literal_sentence_markers=True) == [BOW, 61, 48, 84, 63, EOW] + [PAD] * 44
    for near_miss in ("<s>", "</s>", "<S", "S>", " <S>", "<S> ", "<S>.", "</ S>", "<S><S>", "<UNK>", "<bos>"):
        row = word_to_char_ids(near_miss)
        assert row == [BOW, *(byte + 1 for byte in near_miss.encode()), EOW] + [PAD] * (48 - len(near_miss))


def test_tokenizer_encodes_sentence_marker_words_as_markers(moses: ElmoTokenizer, whitespace: ElmoTokenizer) -> None:
    words = ["<S>", "a", "</S>", "<s>"]
    expected = [bos_char_ids(), word_to_char_ids("a"), eos_char_ids(), word_to_char_ids("<s>")]
    assert expected[3][:5] == [BOW, 61, 116, 63, EOW]
    assert moses(words, is_split_into_words=True)["input_ids"] == expected
    assert whitespace("<S> a </S> <s>")["input_ids"] == expected
    assert moses.convert_tokens_to_ids(words) == expected
    assert moses.convert_tokens_to_ids("</S>") == eos_char_ids()
    batch = moses([["x"], words], is_split_into_words=True, padding=True, return_tensors="np")
    assert batch["input_ids"][1].tolist() == expected
    assert whitespace.decode(whitespace("<S> a </S>")["input_ids"]) == "<S> a </S>"
    # Moses splits `<` and `>` off, so in raw text it never yields a word `<S>`.
    assert words_of(moses, "a <S> b </S>") == ["a", "<", "S", ">", "b", "<", "/", "S", ">"]


def test_literal_sentence_markers_option(tmp_path: Path, tokenizer_class: type[ElmoTokenizer]) -> None:
    literal = tokenizer_class(word_splitter="whitespace", literal_sentence_markers=True)
    rows = literal("<S> a </S>")["input_ids"]
    assert rows == [word_to_char_ids(word, literal_sentence_markers=True) for word in ("<S>", "a", "</S>")]
    assert rows[0] != bos_char_ids() and rows[2] != eos_char_ids()
    assert literal.decode(rows) == "<S> a </S>"
    literal.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["literal_sentence_markers"] is True
    assert tokenizer_class.from_pretrained(tmp_path)("<S>")["input_ids"] == rows[:1]
    with pytest.raises(TypeError, match="literal_sentence_markers must be a bool"):
        tokenizer_class(literal_sentence_markers="yes")  # type: ignore[arg-type]


def test_dictionary_mode_sentence_markers(tokenizer_class: type[ElmoTokenizer]) -> None:
    """ELMoForManyLangs treats the words `<bos>`/`<eos>` as its markers and `<S>`/`</S>` as ordinary words."""
    char_vocab = {"<bow>": 0, "<eow>": 1, "<oov>": 2, "<pad>": 3, "<bos>": 4, "<eos>": 5, "S": 6, "<": 7}
    ids = {char: char_id + 1 for char, char_id in char_vocab.items()}
    begin, end, pad = ids["<eow>"], ids["<bow>"], ids["<pad>"]
    for literal in (False, True):
        tokenizer = tokenizer_class(
            word_splitter="whitespace",
            max_characters_per_token=7,
            character_scheme="dictionary",
            char_vocab=char_vocab,
            literal_sentence_markers=literal,
        )
        rows = tokenizer("<S> </S> <bos>")["input_ids"]
        oov = ids["<oov>"]
        assert rows[0] == [begin, ids["<"], ids["S"], oov, end, pad, pad]
        assert rows[1] == [begin, ids["<"], oov, ids["S"], oov, end, pad]
        marker = [begin, ids["<bos>"], end, pad, pad, pad, pad]
        assert rows[2] == ([begin, ids["<"], oov, oov, oov, oov, end] if literal else marker)


# ---------------------------------------------------------------------------- Moses splitting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The 1B Word Benchmark used Moses tokenizer.perl: its sentences read "Don 't !",
        # "It wasn 't", "Murray 's" (see bilm-tf's test sentences).
        ("I don't know.", ["I", "don", "'t", "know", "."]),
        ("Don't!", ["Don", "'t", "!"]),
        ("Murray's home", ["Murray", "'s", "home"]),
        ("The U.S. economy", ["The", "U.S.", "economy"]),
        ("When Ms. Winfrey left", ["When", "Ms.", "Winfrey", "left"]),
        ('"Hello, world!"', ['"', "Hello", ",", "world", "!", '"']),
        ("It costs $3.14 (or 1,000 yen).", ["It", "costs", "$", "3.14", "(", "or", "1,000", "yen", ")", "."]),
        ("a well-known state-of-the-art 6-3 win", ["a", "well-known", "state-of-the-art", "6-3", "win"]),
        ("Elk calling -- a skill", ["Elk", "calling", "--", "a", "skill"]),
        ("Wait... what?!", ["Wait", "...", "what", "?", "!"]),
        ("He said 'hi'.", ["He", "said", "'", "hi", "'", "."]),
        ("", []),
        (" \t\n ", []),
    ],
)
def test_moses_splits(moses: ElmoTokenizer, text: str, expected: list[str]) -> None:
    assert words_of(moses, text) == expected


def test_moses_tokenizes_line_by_line(moses: ElmoTokenizer) -> None:
    # A final period followed by a lowercase word stays attached, unless the word ends its line.
    assert words_of(moses, "I saw it. then") == ["I", "saw", "it.", "then"]
    assert words_of(moses, "I saw it.\nthen") == ["I", "saw", "it", ".", "then"]


def test_moses_offsets(moses: ElmoTokenizer) -> None:
    text = 'He said:\t"Don\'t!"\u00a0U.S.'
    spans = moses.split_words(text)
    assert spans == [
        ("He", (0, 2)),
        ("said", (3, 7)),
        (":", (7, 8)),
        ('"', (9, 10)),
        ("Don", (10, 13)),
        ("'t", (13, 15)),
        ("!", (15, 16)),
        ('"', (16, 17)),
        ("U.S.", (18, 22)),
    ]
    assert all(text[start:end] == word for word, (start, end) in spans)


def test_moses_control_characters_stay_slices(moses: ElmoTokenizer) -> None:
    # Moses deletes ASCII control characters; inside a word they stay, at its edges they are cut off.
    assert moses.split_words("a\x01b c") == [("a\x01b", (0, 3)), ("c", (4, 5))]
    assert moses.split_words("\x01abc\x02") == [("abc", (1, 4))]
    assert moses.split_words("\x01\x02 \x1f") == []


def test_moses_fallback_when_tokens_do_not_align(moses: ElmoTokenizer) -> None:
    # sacremoses turns a literal "DOTDOTMULTI" (its placeholder for "..") into "..": that chunk is
    # kept whole; the rest of the line is tokenized chunk by chunk.
    text = "see DOTDOTMULTI now."
    assert moses.split_words(text) == [
        ("see", (0, 3)),
        ("DOTDOTMULTI", (4, 15)),
        ("now", (16, 19)),
        (".", (19, 20)),
    ]


def test_whitespace_splitter(whitespace: ElmoTokenizer) -> None:
    text = " don't\tU.S.,\u2003x\u00a0y\n\x01z "
    assert whitespace.split_words(text) == [
        ("don't", (1, 6)),
        ("U.S.,", (7, 12)),
        ("x", (13, 14)),
        ("y", (15, 16)),
        ("\x01z", (17, 19)),
    ]


def test_unicode_words(moses: ElmoTokenizer) -> None:
    text = "emoji 😀👍🏽, 中文。 שלום! e\u0301te"
    spans = moses.split_words(text)
    assert all(text[start:end] == word for word, (start, end) in spans)
    assert "😀" in "".join(word for word, _ in spans)
    assert "שלום" in [word for word, _ in spans]


def test_invalid_settings(tokenizer_class: type[ElmoTokenizer]) -> None:
    with pytest.raises(ValueError, match="word_splitter"):
        tokenizer_class(word_splitter="spaces")
    with pytest.raises(ValueError, match="right"):
        tokenizer_class(padding_side="left")


# ---------------------------------------------------------------------------- encoding


def test_single_text_lists(moses: ElmoTokenizer) -> None:
    encoding = moses("Hello, world!")
    assert encoding["input_ids"] == [word_to_char_ids(word) for word in ["Hello", ",", "world", "!"]]
    assert encoding["attention_mask"] == [1, 1, 1, 1]
    assert set(encoding) == {"input_ids", "attention_mask"}


def test_offsets_mapping(moses: ElmoTokenizer) -> None:
    texts = ["Hello, world!", "x"]
    encoding = moses(texts, padding=True, return_offsets_mapping=True)
    assert encoding["offset_mapping"] == [
        [(0, 5), (5, 6), (7, 12), (12, 13)],
        [(0, 1), (0, 0), (0, 0), (0, 0)],
    ]
    tensors = moses(texts, padding=True, return_offsets_mapping=True, return_tensors="pt")
    assert tensors["offset_mapping"].shape == (2, 4, 2)


def test_padding_longest_pt(moses: ElmoTokenizer) -> None:
    encoding = moses(["a b c", "d"], padding=True, return_tensors="pt")
    assert encoding["input_ids"].shape == (2, 3, 50)
    assert encoding["input_ids"].dtype == torch.int64
    assert encoding["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert encoding["input_ids"][1, 1:].eq(0).all()
    assert encoding["input_ids"][1, 0].tolist() == word_to_char_ids("d")


def test_padding_max_length_and_multiple(moses: ElmoTokenizer) -> None:
    encoding = moses(["a b", "c"], padding="max_length", max_length=5, return_tensors="np")
    assert isinstance(encoding["input_ids"], np.ndarray)
    assert encoding["input_ids"].shape == (2, 5, 50)
    assert encoding["attention_mask"].tolist() == [[1, 1, 0, 0, 0], [1, 0, 0, 0, 0]]
    assert moses(["a b c"], padding=True, pad_to_multiple_of=4, return_tensors="pt")["input_ids"].shape == (
        1,
        4,
        50,
    )


def test_truncation_in_words(moses: ElmoTokenizer) -> None:
    encoding = moses(["a b c d", "e"], truncation=True, max_length=2, padding=True, return_tensors="pt")
    assert encoding["input_ids"].shape == (2, 2, 50)
    assert encoding["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert moses("a b c d", max_length=3)["input_ids"] == [word_to_char_ids(w) for w in "abc"]
    assert len(moses("a b c d", truncation=True)["input_ids"]) == 4  # no limit by default


def test_ragged_tensors_raise(moses: ElmoTokenizer) -> None:
    with pytest.raises(ValueError, match="padding=True"):
        moses(["a b", "c"], return_tensors="pt")
    assert moses(["a b", "c d"], return_tensors="pt")["input_ids"].shape == (2, 2, 50)


def test_pre_split_words(moses: ElmoTokenizer) -> None:
    words = ["New York", "", "is"]
    encoding = moses(words, is_split_into_words=True, return_offsets_mapping=True)
    assert encoding["input_ids"] == [word_to_char_ids(word) for word in words]
    assert encoding["offset_mapping"] == [(0, 8), (9, 9), (10, 12)]
    batch = moses([["a", "b"], ["c"]], is_split_into_words=True, padding=True, return_tensors="pt")
    assert batch["input_ids"].shape == (2, 2, 50)
    assert moses([], is_split_into_words=True, return_tensors="pt")["input_ids"].shape == (1, 0, 50)


def test_empty_string_and_empty_batch(moses: ElmoTokenizer) -> None:
    single = moses("", return_tensors="pt")
    assert single["input_ids"].shape == (1, 0, 50)
    assert single["attention_mask"].shape == (1, 0)
    assert moses("")["input_ids"] == []
    batch = moses([], return_tensors="pt", return_offsets_mapping=True)
    assert batch["input_ids"].shape == (0, 0, 50)
    assert batch["attention_mask"].shape == (0, 0)
    assert batch["offset_mapping"].shape == (0, 0, 2)
    assert moses([], padding=True, return_tensors="np")["input_ids"].shape == (0, 0, 50)
    assert moses(["", "a"], padding=True, return_tensors="pt")["attention_mask"].tolist() == [[0], [1]]


def test_optional_outputs(moses: ElmoTokenizer) -> None:
    encoding = moses(
        ["a b", "c"],
        padding=True,
        return_attention_mask=False,
        return_special_tokens_mask=True,
        return_length=True,
        return_tensors="pt",
    )
    assert set(encoding) == {"input_ids", "special_tokens_mask", "length"}
    assert encoding["special_tokens_mask"].tolist() == [[0, 0], [0, 1]]
    assert encoding["length"].tolist() == [2, 1]


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (5, "got int"),
        (b"bytes", "got bytes"),
        (["a", 3], "list containing a int"),
        ([["a"]], "is_split_into_words=True"),
    ],
)
def test_non_string_input_raises_type_error(moses: ElmoTokenizer, value: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        moses(value)


def test_pre_split_input_must_be_words(moses: ElmoTokenizer) -> None:
    with pytest.raises(TypeError, match="is_split_into_words=True"):
        moses("a b", is_split_into_words=True)
    with pytest.raises(TypeError, match="is_split_into_words=True"):
        moses([["a", 1]], is_split_into_words=True)


def test_unsupported_options(moses: ElmoTokenizer) -> None:
    with pytest.raises(ValueError, match="text_pair"):
        moses("a", "b")
    with pytest.raises(ValueError, match="right"):
        moses(["a", "b c"], padding=True, padding_side="left")
    with pytest.raises(ValueError, match="right"):
        moses.padding_side = "left"


def test_long_inputs(moses: ElmoTokenizer) -> None:
    long_word = "x" * 1000
    assert moses(long_word)["input_ids"] == [[BOW] + [121] * 48 + [EOW]]
    text = " ".join(["The quick brown fox jumps over the lazy dog."] * 201)  # 2,010 Moses words
    start = time.perf_counter()
    encoding = moses(text, return_tensors="pt", return_offsets_mapping=True)
    assert time.perf_counter() - start < 2.0
    assert encoding["input_ids"].shape == (1, 2010, 50)
    assert encoding["offset_mapping"][0, -1].tolist() == [len(text) - 1, len(text)]


def test_encode_returns_rows(moses: ElmoTokenizer) -> None:
    assert moses.encode("a b") == [word_to_char_ids("a"), word_to_char_ids("b")]


# ---------------------------------------------------------------------------- padding helpers


def test_pad_token_for_pipelines(moses: ElmoTokenizer) -> None:
    assert moses.pad_token == "<pad>"
    assert moses.pad_token_id == 0
    assert moses.padding_side == "right"
    collate = pad_collate_fn(moses, None)
    batch = collate([moses("a b c", return_tensors="pt"), moses("d", return_tensors="pt")])
    assert batch["input_ids"].shape == (2, 3, 50)
    assert batch["input_ids"][1, 1:].eq(0).all()
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_pad_and_data_collator(moses: ElmoTokenizer) -> None:
    features = [dict(moses("a b c")), dict(moses("d"))]
    batch = DataCollatorWithPadding(moses)(features)
    assert batch["input_ids"].shape == (2, 3, 50)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    single = moses.pad(moses("a b", return_tensors="pt"), padding="max_length", max_length=4)
    assert isinstance(single["input_ids"], torch.Tensor)
    assert single["input_ids"].shape == (1, 4, 50)
    unbatched = moses.pad(moses("a b"), padding="max_length", max_length=3)
    assert len(unbatched["input_ids"]) == 3
    assert unbatched["attention_mask"] == [1, 1, 0]


# ---------------------------------------------------------------------------- decoding


def test_decode_round_trip_ascii(moses: ElmoTokenizer) -> None:
    encoding = moses("Hello, world! It's 3.14.", return_tensors="pt")
    assert moses.decode(encoding["input_ids"][0]) == "Hello , world ! It 's 3.14 ."
    assert moses.decode(encoding["input_ids"]) == ["Hello , world ! It 's 3.14 ."]


def test_batch_decode_skips_padding(moses: ElmoTokenizer) -> None:
    encoding = moses(["a b c", "d"], padding=True, return_tensors="np")
    assert moses.batch_decode(encoding["input_ids"]) == ["a b c", "d"]
    assert moses.batch_decode([]) == []


def test_decode_truncated_and_special_rows(moses: ElmoTokenizer) -> None:
    word = "a" * 47 + "éb"
    assert moses.decode(moses(word)["input_ids"]) == "a" * 47 + "\ufffd"
    rows = [bos_char_ids(), word_to_char_ids("x"), eos_char_ids(), [0] * 50]
    assert moses.decode(rows) == "<S> x </S>"
    assert moses.decode(rows, skip_special_tokens=True) == "x"
    assert moses.convert_ids_to_tokens(rows) == ["<S>", "x", "</S>", "<pad>"]
    assert moses.convert_ids_to_tokens(word_to_char_ids("é")) == "é"
    assert moses.convert_ids_to_tokens(0) == "<pad>"
    assert moses.convert_tokens_to_ids(["a", "é"]) == [word_to_char_ids("a"), word_to_char_ids("é")]


def test_vocabulary_api(moses: ElmoTokenizer) -> None:
    assert moses.vocab_size == len(moses) == NUM_CHAR_IDS == 262
    assert moses.get_vocab() == {}
    assert moses.tokenize("Don't.") == ["Don", "'t", "."]
    assert moses.convert_tokens_to_string(["a", "b"]) == "a b"


# ---------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("splitter", ["moses", "whitespace"])
def test_save_load_round_trip(tmp_path: Path, splitter: str, tokenizer_class: type[ElmoTokenizer]) -> None:
    tokenizer = tokenizer_class(word_splitter=splitter, moses_language="de")
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "ElmoTokenizer"
    assert config["word_splitter"] == splitter
    assert config["moses_language"] == "de"
    assert config["max_characters_per_token"] == 50
    assert config["pad_token"] == "<pad>"
    assert config["literal_sentence_markers"] is False
    assert not {"is_local", "local_files_only", "name_or_path", "tokenizer_file"} & set(config)
    loaded = tokenizer_class.from_pretrained(tmp_path)
    assert (loaded.word_splitter, loaded.moses_language) == (splitter, "de")
    assert loaded.model_max_length == tokenizer.model_max_length
    assert loaded.pad_token_id == 0
    assert loaded.split_words("don't x") == tokenizer.split_words("don't x")
    loaded.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "tokenizer_config.json").read_text()) == config


def test_register_for_auto_class_copies_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ElmoTokenizer, "_auto_class", None)
    ElmoTokenizer.register_for_auto_class("AutoTokenizer")
    ElmoTokenizer(word_splitter="whitespace").save_pretrained(tmp_path)
    assert (tmp_path / "tokenization_elmo.py").is_file()
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["auto_map"] == {"AutoTokenizer": ["tokenization_elmo.ElmoTokenizer", None]}
    # The copied file alone must load through AutoTokenizer (fresh interpreter, package not imported).
    script = (
        "from transformers import AutoTokenizer\n"
        f"t = AutoTokenizer.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)\n"
        "assert type(t).__module__.startswith('transformers_modules'), type(t).__module__\n"
        "assert t.word_splitter == 'whitespace'\n"
        "assert tuple(t('a b', return_tensors='pt')['input_ids'].shape) == (1, 2, 50)\n"
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


# ---------------------------------------------------------------------------- properties


def check_encoding(tokenizer: ElmoTokenizer, text: str) -> None:
    spans = tokenizer.split_words(text)
    for word, (start, end) in spans:
        assert text[start:end] == word
        assert word
    encoding = tokenizer(text, return_tensors="np", return_offsets_mapping=True)
    ids = encoding["input_ids"]
    assert ids.shape == (1, len(spans), 50)
    assert ids.min(initial=0) >= 0
    assert ids.max(initial=0) <= NUM_CHAR_IDS - 1
    assert (encoding["attention_mask"][0] == (ids[0] != 0).any(axis=-1)).all()
    for row, (start, end) in zip(ids[0], encoding["offset_mapping"][0], strict=True):
        assert row.tolist() == word_to_char_ids(text[start:end])


@PROPERTY_SETTINGS
@given(st.one_of(UNICODE_TEXT, MOSES_TEXT))
def test_property_moses(moses: ElmoTokenizer, text: str) -> None:
    check_encoding(moses, text)


@PROPERTY_SETTINGS
@given(st.one_of(UNICODE_TEXT, MOSES_TEXT))
def test_property_whitespace(whitespace: ElmoTokenizer, text: str) -> None:
    check_encoding(whitespace, text)
    assert words_of(whitespace, text) == text.split()


@PROPERTY_SETTINGS
@given(st.lists(UNICODE_TEXT, max_size=4))
def test_property_batch_padding(moses: ElmoTokenizer, texts: list[str]) -> None:
    encoding = moses(texts, padding=True, return_tensors="pt")
    lengths = [len(moses.split_words(text)) for text in texts]
    assert encoding["input_ids"].shape == (len(texts), max(lengths, default=0), 50)
    assert encoding["attention_mask"].sum(dim=1).tolist() == lengths


@PROPERTY_SETTINGS
@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=49))
def test_property_long_word_keeps_first_48_bytes(moses: ElmoTokenizer, word: str) -> None:
    expected = [BOW] + [byte + 1 for byte in word.encode("utf-8")[:48]] + [EOW]
    assert word_to_char_ids(word) == expected
    assert moses([word], is_split_into_words=True)["input_ids"] == [expected]


@PROPERTY_SETTINGS
@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=48).filter(bool))
def test_property_ascii_word_decodes_back(moses: ElmoTokenizer, word: str) -> None:
    assert moses.decode([word_to_char_ids(word)]) == word
    assert moses.convert_ids_to_tokens(word_to_char_ids(word)) == word
