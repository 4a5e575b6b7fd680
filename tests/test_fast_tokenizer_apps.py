"""The applications use `ElmoTokenizerFast`: trained and converted model folders carry its `tokenizer.json` and load
with either class to the same outputs, `elmo build-vocab` splits with it, and `evaluate_perplexity`'s default
tokenizer gives the Python tokenizer's results."""

from pathlib import Path

import numpy as np
import pytest

from modeling_elmo import ElmoForBidirectionalLM, ElmoTokenizer
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.elmoformanylangs import load_elmoformanylangs
from modeling_elmo.perplexity import evaluate_perplexity
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast
from modeling_elmo.vocabulary import word_splitter
from original_format import elmoformanylangs_architecture, write_random_elmoformanylangs, write_random_original

TEXTS = ["Mr. Smith's car broke down, he said.", "rock 'n' roll: 1,000 times!", "the cat", "x"]
TOY_TEXT = "the cat sat on the mat .\nthe dog sat on the log .\na cat saw a dog .\n"

pytestmark = pytest.mark.usefixtures("one_thread")


def assert_both_classes_load_alike(folder: Path, texts: list[str] = TEXTS) -> ElmoTokenizerFast:
    """The folder has `tokenizer.json`; `ElmoTokenizer.from_pretrained` gives the Python tokenizer and
    `ElmoTokenizerFast.from_pretrained` the fast one, encoding alike. Returns the fast one."""
    assert (folder / "tokenizer.json").is_file()
    python, fast = ElmoTokenizer.from_pretrained(folder), ElmoTokenizerFast.from_pretrained(folder)
    assert type(python) is ElmoTokenizer and type(fast) is ElmoTokenizerFast
    options = {"padding": True, "return_offsets_mapping": True, "return_tensors": "np"}
    expected, actual = python(texts, **options), fast(texts, **options)
    assert list(actual) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(actual[key], value, err_msg=key)
    return fast


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("trained")
    corpus, vocab = directory / "toy.txt", directory / "vocab.txt"
    corpus.write_text(TOY_TEXT, encoding="utf-8")
    assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(vocab)]) == 0
    options = ["--preset", "tiny", "--tokenized", "--batch-size", "2", "--unroll-steps", "5", "--num-sampled", "0"]
    options += ["--max-steps", "2", "--no-progress", "--save-steps", "1000"]
    output = directory / "model"
    assert elmo_main(["train", str(corpus), "--vocab", str(vocab), "--output-dir", str(output), *options]) == 0
    return output


def test_a_trained_model_folder_carries_the_fast_tokenizer(trained: Path) -> None:
    assert_both_classes_load_alike(trained)


def test_perplexity_by_default_gives_the_python_tokenizers_result(trained: Path) -> None:
    model = ElmoForBidirectionalLM.from_pretrained(trained)
    sentences = [text.split() for text in TOY_TEXT.splitlines()] + [["unknown", "words", "é"]]
    default = evaluate_perplexity(model, sentences, batch_size=2)
    python = evaluate_perplexity(model, sentences, batch_size=2, tokenizer=ElmoTokenizer())
    assert default == python


def test_a_converted_original_folder_carries_the_fast_tokenizer(tmp_path: Path) -> None:
    options, weights = write_random_original(tmp_path / "original")
    output = tmp_path / "hf"
    arguments = ["convert", "--options", str(options), "--weights", str(weights), "--output-dir", str(output)]
    assert elmo_main(arguments) == 0
    assert_both_classes_load_alike(output)


@pytest.mark.parametrize("word_dim", [0, 6], ids=["chars-only", "word-embedding"])
def test_a_converted_elmoformanylangs_folder_carries_the_fast_tokenizer(tmp_path: Path, word_dim: int) -> None:
    """Dictionary mode (character and word dictionaries) is the fast tokenizer's too."""
    source = write_random_elmoformanylangs(tmp_path / "efml", elmoformanylangs_architecture(word_dim=word_dim))
    _, tokenizer = load_elmoformanylangs(source)
    assert type(tokenizer) is ElmoTokenizerFast and tokenizer.character_scheme == "dictionary"
    output = tmp_path / "hf"
    assert elmo_main(["convert", "--elmoformanylangs", str(source), "--output-dir", str(output)]) == 0
    texts = [*TEXTS, "the cat <bos> abcde ab", "the <eos> dab"]
    fast = assert_both_classes_load_alike(output, texts)
    assert ("word_ids" in fast(texts, padding=True)) == bool(word_dim)


def test_build_vocab_splits_with_the_fast_tokenizer() -> None:
    split = word_splitter(tokenized=False)
    assert type(split.__self__) is ElmoTokenizerFast
    for text in TEXTS:
        assert split(text) == ElmoTokenizer().tokenize(text)
    assert word_splitter(tokenized=True) is str.split
