"""`ElmoModel.cache_token_embeddings` with either tokenizer class (it takes every word's character ids at once from
the tokenizer's `words_to_char_ids`): the cache is the same for both, its rows are the tokenizer's, and cached runs
give the uncached results."""

import pytest
import torch
from test_model import small_config as two_layer_config

from modeling_elmo import ElmoConfig, ElmoModel, ElmoTokenizer
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast

TEXTS = [
    "The cat sat on the mat .",
    "Mr. Smith's car broke down in the U.S. , he said (quietly).",
    "Émile wrote 😀 in 東京 and zq zx .",
    "<S> and </S> and <bos> are words here",
    "a " + "x" * 80 + " b",
]
#: Words with every kind of row: sentence markers, multi-byte characters, long words, a lone surrogate, empty.
EXTRA_WORDS = ["<S>", "</S>", "<bos>", "<eos>", "", "😀", "y" * 60, "\ud800lone", "unused"]

CHARACTERS = sorted(set("".join(TEXTS)) - {" "})[::2]  # half of the text's characters: the rest are unknown
CHAR_VOCAB = {
    **{special: index for index, special in enumerate(("<bow>", "<eow>", "<oov>", "<pad>", "<bos>", "<eos>"))},
    **{char: 6 + index for index, char in enumerate(CHARACTERS)},
}
WORD_VOCAB = {"<oov>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3, "The": 4, "cat": 5, "zq": 6, "x" * 48: 7}


def small_config(**overrides) -> ElmoConfig:
    """`test_model.small_config` with one LSTM layer."""
    return two_layer_config(**{"num_lstm_layers": 1, **overrides})


def dictionary_config() -> ElmoConfig:
    shifted = {entry: CHAR_VOCAB[entry] + 1 for entry in ("<bow>", "<eow>", "<pad>", "<bos>", "<eos>")}
    return small_config(
        character_scheme="dictionary",
        num_characters=len(CHAR_VOCAB) + 1,
        begin_of_word_char_id=shifted["<eow>"],
        end_of_word_char_id=shifted["<bow>"],
        padding_char_id=shifted["<pad>"],
        begin_of_sentence_char_id=shifted["<bos>"],
        end_of_sentence_char_id=shifted["<eos>"],
        word_embedding_dim=3,
        word_vocab_size=len(WORD_VOCAB),
        begin_of_sentence_word_id=WORD_VOCAB["<bos>"],
        end_of_sentence_word_id=WORD_VOCAB["<eos>"],
    )


SCHEMES = {
    "utf8_bytes": (small_config, {}),
    "dictionary": (
        dictionary_config,
        {"character_scheme": "dictionary", "char_vocab": CHAR_VOCAB, "word_vocab": WORD_VOCAB},
    ),
}


def make_model(scheme: str) -> ElmoModel:
    torch.manual_seed(0)
    return ElmoModel(SCHEMES[scheme][0]()).eval()


def encoded(model: ElmoModel, tokenizer: ElmoTokenizer) -> tuple[torch.Tensor, ...]:
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cache_is_the_same_for_both_tokenizer_classes_and_gives_the_uncached_results(scheme: str) -> None:
    settings = SCHEMES[scheme][1]
    python, fast = ElmoTokenizer(**settings), ElmoTokenizerFast(**settings)
    words = [word for text in TEXTS[:3] for word in python.tokenize(text)] + EXTRA_WORDS
    uncached = encoded(make_model(scheme), python)
    caches = {}
    for tokenizer in (python, fast):
        model = make_model(scheme)
        model.cache_token_embeddings(words, tokenizer=tokenizer)
        caches[type(tokenizer)] = {name: buffer for name, buffer in model.named_buffers() if "token_cache" in name}
        # The cached rows are the sentence markers' and the words' rows as the Python tokenizer gives them.
        markers = ["<bos>", "<eos>"] if scheme == "dictionary" else ["<S>", "</S>"]
        expected_rows = set(map(tuple, python.convert_tokens_to_ids([*markers, *words])))
        assert set(map(tuple, model.token_cache_char_ids.tolist())) == expected_rows
        cached = encoded(model, tokenizer)
        for ours, reference in zip(cached, uncached, strict=True):
            torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)
    assert caches[ElmoTokenizer].keys() == caches[ElmoTokenizerFast].keys() and caches[ElmoTokenizer]
    for name, buffer in caches[ElmoTokenizer].items():
        assert torch.equal(buffer, caches[ElmoTokenizerFast][name]), name


class CharacterIdsOnly:
    """An object with nothing but `words_to_char_ids`: the model finds the method by its name, and imports no
    tokenizer class."""

    def __init__(self, tokenizer: ElmoTokenizer) -> None:
        self.words_to_char_ids = tokenizer.words_to_char_ids


def test_cache_takes_the_rows_from_words_to_char_ids() -> None:
    words = ["The", "cat", *EXTRA_WORDS]
    expected, duck_typed = make_model("utf8_bytes"), make_model("utf8_bytes")
    expected.cache_token_embeddings(words, tokenizer=ElmoTokenizerFast())
    duck_typed.cache_token_embeddings(words, tokenizer=CharacterIdsOnly(ElmoTokenizerFast()))
    for name in ("token_cache_keys", "token_cache_char_ids", "token_cache_vectors"):
        assert torch.equal(getattr(expected, name), getattr(duck_typed, name)), name
    empty = make_model("utf8_bytes")
    empty.cache_token_embeddings([], tokenizer=ElmoTokenizerFast())
    assert empty.token_cache_char_ids.shape == (2, 50)
