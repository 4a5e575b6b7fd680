"""`ElmoEmbedder`, the Python API for people coming from AllenNLP's ElmoEmbedder or simple_elmo."""

import numpy as np
import pytest
import torch
from embed_helpers import assert_same_files, converted_model, embed, write_lines
from transformers import AutoModel, AutoTokenizer, pipeline

from modeling_elmo import ElmoConfig, ElmoEmbedder, ElmoModel, ElmoTokenizer
from modeling_elmo.tokenization_elmo import DICTIONARY_SPECIAL_CHARS

TEXTS = ["A play .", "They play football on Sunday !", "I", "The actors were on stage"]  # 3, 6, 1, 5 words


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("embedder"))


@pytest.fixture(scope="module")
def model_and_tokenizer(folder):
    return AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def batch_layers(model_and_tokenizer, texts):
    """(L + 1, B, T, 2P) for `texts` as one padded batch."""
    model, tokenizer = model_and_tokenizer
    with torch.no_grad():
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
        return torch.stack(model(**inputs, output_hidden_states=True).hidden_states).numpy()


def test_embed_sentence_is_the_models_output(folder, model_and_tokenizer):
    embedder = ElmoEmbedder(folder)
    assert isinstance(embedder.model, ElmoModel) and embedder.tokenizer.word_splitter == "moses"
    embedder = ElmoEmbedder(*model_and_tokenizer)  # the same model object as the expected values
    expected = batch_layers(model_and_tokenizer, [TEXTS[1]])[:, 0]
    np.testing.assert_array_equal(embedder.embed_sentence(TEXTS[1]), expected)  # (L + 1, words, 2P), as AllenNLP
    np.testing.assert_array_equal(embedder.embed_sentence(TEXTS[1].split()), expected)  # a list of words
    np.testing.assert_array_equal(embedder.embed_sentence(TEXTS[1], layers="top"), expected[-1])
    np.testing.assert_array_equal(embedder.embed_sentence(TEXTS[1], layers=1, pool="max"), expected[1].max(axis=0))
    assert embedder.embed_sentence("").shape == (3, 0, 16)
    assert embedder.num_layers == 3


def test_batches_are_sorted_by_length_and_results_come_back_in_input_order(model_and_tokenizer):
    embedder = ElmoEmbedder(*model_and_tokenizer, batch_size=2)
    results = embedder.embed_sentences(TEXTS)
    longest, shortest = (
        batch_layers(model_and_tokenizer, [TEXTS[1], TEXTS[3]]),
        batch_layers(model_and_tokenizer, [TEXTS[0], TEXTS[2]]),
    )  # the batches: 6 and 5 words, then 3 and 1
    for result, (layers, row, length) in zip(
        results, [(shortest, 0, 3), (longest, 0, 6), (shortest, 1, 1), (longest, 1, 5)], strict=True
    ):
        np.testing.assert_array_equal(result, layers[:, row, :length])
    singles = embedder.embed_sentences(TEXTS, batch_size=1, layers="average")
    for text, result in zip(TEXTS, singles, strict=True):
        expected = torch.from_numpy(batch_layers(model_and_tokenizer, [text])[:, 0]).mean(dim=0).numpy()
        np.testing.assert_array_equal(result, expected)


def test_a_loaded_model_and_mixed_layers(folder, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    from_model = ElmoEmbedder(model, device="cpu")  # the tokenizer comes from the model's folder
    assert from_model.tokenizer.word_splitter == tokenizer.word_splitter
    with_tokenizer = ElmoEmbedder(model, tokenizer=tokenizer)
    vectors = from_model.embed_sentences(TEXTS[:2], layers="mix", mix_weights=[0.0, 0.0, 1.0], gamma=2.0)
    top = with_tokenizer.embed_sentences(TEXTS[:2], layers="top")
    for mixed, expected in zip(vectors, top, strict=True):
        np.testing.assert_allclose(mixed, 2.0 * expected, rtol=1e-6)


def test_embed_file_is_the_embed_command(folder, tmp_path):
    source = write_lines(tmp_path / "in.txt", [*TEXTS, ""])
    path = ElmoEmbedder(folder).embed_file(source, tmp_path / "api.hdf5", layers="top", progress=False)
    assert path == tmp_path / "api.hdf5"
    assert embed(folder, source, tmp_path / "cli.hdf5", "--layers", "top") == 0
    assert_same_files(tmp_path / "api.hdf5", tmp_path / "cli.hdf5")


def test_bad_arguments(folder):
    embedder = ElmoEmbedder(folder)
    with pytest.raises(TypeError, match="a sentence must be a str or a list of str"):
        embedder.embed_sentences([["a", 1]])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        embedder.embed_sentences(TEXTS, batch_size=0)
    with pytest.raises(ValueError, match="pool must be one of"):
        embedder.embed_sentence("a b", pool="sum")
    with pytest.raises(ValueError, match="layers 0-2"):
        embedder.embed_sentence("a b", layers=3)


def test_a_model_with_a_word_embedding_gets_its_word_ids():
    """ELMoForManyLangs-style models: dictionary character ids and a word embedding, so the tokenizer also returns
    `word_ids`, which the model requires; the embedder and the pipeline must pass them on."""
    char_vocab = {
        entry: number for number, entry in enumerate([*DICTIONARY_SPECIAL_CHARS, *"abcdefghijklmnopqrstuvwxyz"])
    }
    word_vocab = {word: number for number, word in enumerate(["<oov>", "<pad>", "the", "play", "was", "a", "hit"])}
    tokenizer = ElmoTokenizer(character_scheme="dictionary", char_vocab=char_vocab, word_vocab=word_vocab)
    config = ElmoConfig(char_embedding_dim=4, char_cnn_filters=[[1, 4], [2, 4]], num_highway_layers=1,
                        projection_dim=4, lstm_cell_dim=8, num_lstm_layers=1, num_characters=tokenizer.vocab_size,
                        character_scheme="dictionary", word_embedding_dim=3, word_vocab_size=len(word_vocab),
                        **tokenizer.special_ids)  # fmt: skip
    torch.manual_seed(0)
    model = ElmoModel(config).eval()
    text = "the play was a hit"
    inputs = tokenizer(text, return_tensors="pt")
    assert "word_ids" in inputs
    with torch.no_grad():
        expected = torch.stack(model(**inputs, output_hidden_states=True).hidden_states)[:, 0].numpy()
    np.testing.assert_array_equal(ElmoEmbedder(model, tokenizer=tokenizer).embed_sentence(text), expected)
    embeddings = pipeline("elmo-embeddings", model=model, tokenizer=tokenizer)
    np.testing.assert_array_equal(embeddings(text, layer="top")["vectors"], expected[-1])
