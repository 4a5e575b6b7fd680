"""Against outputs of the original TensorFlow biLM (`../shared/fixtures`, see its README)."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from modeling_elmo import ElmoTokenizer
from modeling_elmo.conversion.original import load_original
from modeling_elmo.modeling_elmo import sentence_marker_char_ids

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
MODEL_DIR = FIXTURES / "bilm-tf" / "model"
TOKEN_DIR = FIXTURES / "bilm-tf-token-embeddings"

pytestmark = pytest.mark.skipif(
    not MODEL_DIR.is_dir(), reason=f"the original-code fixtures are not at {FIXTURES} (they live in ../shared)"
)


def fixture_model(state_mode: str):
    return load_original(MODEL_DIR / "options.json", MODEL_DIR / "lm_weights.hdf5", state_mode=state_mode)


def fixture_batches():
    """The fixture protocol: batch i = [sentences[0][i], sentences[1][i], sentences[2][i]]."""
    sentences = json.loads((MODEL_DIR / "lm_embeddings_sentences.json").read_text())
    expected = [h5py.File(MODEL_DIR / f"lm_embeddings_{k}.hdf5", "r") for k in range(3)]
    try:
        for i in range(10):
            rows = [sentences[k][i].split() for k in range(3)]
            targets = [np.concatenate(list(expected[k][str(i)][...]), axis=-1)[: len(rows[k])] for k in range(3)]
            yield rows, targets
    finally:
        for handle in expected:
            handle.close()


def top_layer(model, tokenizer, rows):
    inputs = tokenizer(rows, is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).last_hidden_state.numpy()


def test_stateful_protocol_matches_all_batches():
    model, tokenizer = fixture_model("stateful"), ElmoTokenizer()
    worst = 0.0
    for rows, targets in fixture_batches():
        output = top_layer(model, tokenizer, rows)
        for row, target in enumerate(targets):
            assert np.all(output[row, len(target) :] == 0)
            worst = max(worst, float(np.abs(output[row, : len(target)] - target).max()))
    assert worst <= 5e-6, worst


def test_stateless_matches_first_batch_only():
    model, tokenizer = fixture_model("stateless"), ElmoTokenizer()
    differences = []
    for rows, targets in fixture_batches():
        output = top_layer(model, tokenizer, rows)
        differences.append(max(float(np.abs(output[r, : len(t)] - t).max()) for r, t in enumerate(targets)))
    assert differences[0] <= 5e-6
    assert max(differences[1:]) > 1e-2  # the original carries state, so later batches need it


def fixture_vocabulary() -> tuple[list[str], np.ndarray]:
    """The 448 words of `vocab_test.txt` (with `<S>` and `</S>`) and the original's (448, 16) token vectors."""
    words = [line for line in (TOKEN_DIR / "vocab_test.txt").read_text(encoding="utf-8").split("\n") if line]
    with h5py.File(TOKEN_DIR / "elmo_token_embeddings.hdf5", "r") as handle:
        expected = handle["embedding"][...]
    assert len(words) == expected.shape[0] == 448
    assert {"<S>", "</S>"} <= set(words)
    return words, expected


def layer_zero(model, tokenizer, words: list[str]) -> np.ndarray:
    """The token vectors (first half of layer 0) of `words` as one pre-split sentence, through the tokenizer."""
    inputs = tokenizer([words], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True).hidden_states[0][0, :, :16].numpy()


def test_token_embeddings_match_layer_zero():
    """Every row of the original's token-embedding dump, the sentence markers included, through the tokenizer."""
    model, tokenizer = fixture_model("stateless"), ElmoTokenizer()
    words, expected = fixture_vocabulary()
    np.testing.assert_allclose(layer_zero(model, tokenizer, words), expected, atol=1e-6, rtol=0)
    # The markers' rows are the ones the model adds around every sentence.
    markers = sentence_marker_char_ids(model.config, torch.device("cpu")).tolist()
    assert tokenizer.convert_tokens_to_ids(["<S>", "</S>"]) == markers
    # The same through the model's token cache, filled from the same vocabulary.
    model.cache_token_embeddings(words, tokenizer=tokenizer)
    np.testing.assert_allclose(layer_zero(model, tokenizer, words), expected, atol=1e-6, rtol=0)


def test_literal_sentence_markers_leave_the_original():
    """`literal_sentence_markers=True` encodes `<S>`/`</S>` by their bytes: those two rows then differ from the
    original's (by far more than rounding), every other row stays the same."""
    model, tokenizer = fixture_model("stateless"), ElmoTokenizer(literal_sentence_markers=True)
    words, expected = fixture_vocabulary()
    differences = np.abs(layer_zero(model, tokenizer, words) - expected).max(axis=1)
    markers = [words.index("<S>"), words.index("</S>")]
    assert np.all(differences[markers] > 1e-2), differences[markers]
    assert np.delete(differences, markers).max() <= 1e-6
