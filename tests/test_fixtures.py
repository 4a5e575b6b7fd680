"""Against outputs of the original TensorFlow biLM (`../shared/fixtures`, see its README)."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from modeling_elmo import ElmoTokenizer
from modeling_elmo.conversion.original import load_original
from modeling_elmo.tokenization_elmo import bos_char_ids, eos_char_ids

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


def test_token_embeddings_match_layer_zero():
    model, tokenizer = fixture_model("stateless"), ElmoTokenizer()
    words = [line for line in (TOKEN_DIR / "vocab_test.txt").read_text(encoding="utf-8").split("\n") if line]
    with h5py.File(TOKEN_DIR / "elmo_token_embeddings.hdf5", "r") as handle:
        expected = handle["embedding"][...]
    assert len(words) == expected.shape[0]
    plain = [i for i, word in enumerate(words) if word not in ("<S>", "</S>")]
    inputs = tokenizer([[words[i] for i in plain]], is_split_into_words=True, return_tensors="pt")
    markers = torch.tensor(np.stack([bos_char_ids(50), eos_char_ids(50)]))
    with torch.no_grad():
        layer0 = model(**inputs, output_hidden_states=True).hidden_states[0][0, :, :16].numpy()
        marker_vectors = model.token_embedder(markers).numpy()
    np.testing.assert_allclose(layer0, expected[plain], atol=1e-6, rtol=0)
    np.testing.assert_allclose(marker_vectors[0], expected[words.index("<S>")], atol=1e-6, rtol=0)
    np.testing.assert_allclose(marker_vectors[1], expected[words.index("</S>")], atol=1e-6, rtol=0)
