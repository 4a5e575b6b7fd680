"""`elmo convert --softmax-weights --vocab`: the Original's softmax file layout (`softmax/W` (V, P), `softmax/b` (V,),
rows in the order of the vocabulary file) becomes an `ElmoForBidirectionalLM`, checked on synthetic files."""

import json

import h5py
import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForPreTraining

from modeling_elmo import ElmoForBidirectionalLM, ElmoModel, ElmoTokenizer
from modeling_elmo.cli import main as elmo_main
from original_format import write_random_original

# The released vocabulary starts with </S>, <S>, <UNK>, then the words by frequency.
VOCAB = ["</S>", "<S>", "<UNK>", "the", ",", ".", "cat", "sat"]


def write_softmax(path, vocab_size: int, projection_dim: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((vocab_size, projection_dim)).astype(np.float32)
    bias = rng.standard_normal(vocab_size).astype(np.float32)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("softmax/W", data=weight)
        handle.create_dataset("softmax/b", data=bias)
    return weight, bias


@pytest.fixture
def original(tmp_path):
    options, weights = write_random_original(tmp_path / "original", projection_dim=8, lstm_dim=16, n_highway=2)
    vocab = tmp_path / "vocab-2016-09-10.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    softmax = tmp_path / "softmax_weights.hdf5"
    weight, bias = write_softmax(softmax, len(VOCAB), 8)
    return options, weights, softmax, vocab, weight, bias


def convert(options, weights, output, *extra):
    return elmo_main(
        ["convert", "--options", str(options), "--weights", str(weights), "--output-dir", str(output), *extra]
    )


def test_the_softmax_file_becomes_a_language_model(original, tmp_path):
    options, weights, softmax, vocab, weight, bias = original
    output = tmp_path / "original-lm"
    assert convert(options, weights, output, "--softmax-weights", str(softmax), "--vocab", str(vocab)) == 0
    model = AutoModelForPreTraining.from_pretrained(output)
    assert isinstance(model, ElmoForBidirectionalLM) and model.vocabulary == VOCAB
    config = model.config
    assert (config.lm_begin_of_sentence_id, config.lm_end_of_sentence_id, config.lm_unknown_id) == (1, 0, 2)
    np.testing.assert_array_equal(model.softmax.weight.detach().numpy(), weight)
    np.testing.assert_array_equal(model.softmax.bias.detach().numpy(), bias)

    plain = tmp_path / "plain"
    assert convert(options, weights, plain) == 0
    bilm = ElmoModel.from_pretrained(plain)
    for name, tensor in bilm.state_dict().items():
        assert torch.equal(model.elmo.state_dict()[name], tensor), name
    assert type(AutoModel.from_pretrained(output)) is ElmoModel

    # The same loss as the plain biLM with the softmax arrays put in by hand (rows in vocabulary order).
    reference = ElmoForBidirectionalLM(model.config).eval()
    reference.elmo.load_state_dict(bilm.state_dict())
    with torch.no_grad():
        reference.softmax.weight.copy_(torch.from_numpy(weight))
        reference.softmax.bias.copy_(torch.from_numpy(bias))
    inputs = ElmoTokenizer()([["the", "cat", "sat", "."]], is_split_into_words=True, return_tensors="pt")
    labels = torch.tensor([[3, 6, 7, 5]])
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(**inputs, labels=labels).loss, reference(**inputs, labels=labels).loss)

    card = json.loads((output / "elmo_conversion.json").read_text())
    assert {source["role"] for source in card["sources"]} >= {"softmax weights", "vocabulary"}
    text = tmp_path / "held-out.txt"
    text.write_text("the cat sat .\nthe dog sat ,\n", encoding="utf-8")
    assert elmo_main(["perplexity", str(text), "--model", str(output), "--tokenized", "--no-progress"]) == 0
    assert elmo_main(["export-original", "--model", str(output), "--output-dir", str(tmp_path / "back")]) == 0


def test_a_softmax_that_does_not_fit_the_vocabulary_is_named(original, tmp_path, capsys):
    options, weights, softmax, vocab, _, _ = original
    vocab.write_text("\n".join(VOCAB[:-1]) + "\n", encoding="utf-8")
    output = tmp_path / "out"
    assert convert(options, weights, output, "--softmax-weights", str(softmax), "--vocab", str(vocab)) == 2
    error = capsys.readouterr().err
    assert "dataset 'softmax/W' has shape (8, 8), expected (7, 8)" in error
    assert not output.exists()


def test_a_softmax_file_without_its_bias_is_named(original, tmp_path, capsys):
    options, weights, softmax, vocab, _, _ = original
    with h5py.File(softmax, "a") as handle:
        del handle["softmax/b"]
    assert convert(options, weights, tmp_path / "out", "--softmax-weights", str(softmax), "--vocab", str(vocab)) == 2
    assert "has no dataset 'softmax/b'" in capsys.readouterr().err


def test_the_softmax_needs_its_vocabulary(original, tmp_path, capsys):
    options, weights, softmax, _, _, _ = original
    assert convert(options, weights, tmp_path / "out", "--softmax-weights", str(softmax)) == 2
    assert "--softmax-weights with --vocab" in capsys.readouterr().err
