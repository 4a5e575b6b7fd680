"""`elmo export-original`: a converted folder back to bilm-tf's `options.json` + `weights.hdf5`, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from modeling_elmo import ElmoTokenizer
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.original import convert_original, load_original
from original_format import original_options, random_original_weights, write_original, write_random_original

FIXTURE_MODEL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "bilm-tf" / "model"


def hdf5_contents(path: Path) -> dict[str, tuple[str, tuple[int, ...], str, bytes]]:
    """Every object of an HDF5 file: kind, shape, dtype and raw bytes (groups: kind only)."""
    contents = {}

    def visit(name: str, item: h5py.HLObject) -> None:
        if isinstance(item, h5py.Dataset):
            contents[name] = ("dataset", item.shape, item.dtype.str, item[...].tobytes())
        else:
            contents[name] = ("group", (), "", b"")

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return contents


def round_trip(options_path: Path, weights_path: Path, tmp_path: Path) -> Path:
    converted, exported = tmp_path / "hf", tmp_path / "exported"
    assert elmo_main(["convert", "--options", str(options_path), "--weights", str(weights_path),
                      "--output-dir", str(converted)]) == 0  # fmt: skip
    assert elmo_main(["export-original", "--model", str(converted), "--output-dir", str(exported)]) == 0
    return exported


@pytest.mark.parametrize(
    "sizes",
    [
        dict(n_layers=2, n_highway=2, use_skip_connections=True),
        dict(n_layers=1, n_highway=0, activation="tanh", cell_clip=None, proj_clip=None),
        dict(n_layers=3, n_highway=1, use_skip_connections=False, projection_dim=6, lstm_dim=10),
    ],
    ids=["2-layers-skip", "1-layer-no-highway-no-clip", "3-layers-261-characters"],
)
def test_round_trip_reproduces_every_dataset_bit_for_bit(sizes, tmp_path):
    options = original_options(**sizes)
    arrays = random_original_weights(options)
    if sizes["n_layers"] == 3:  # a training options file: 261 characters (the weights have 261 rows anyway)
        options["char_cnn"]["n_characters"] = 261
    options["lstm"]["n_epochs"] = 10  # training-only keys survive too
    options["batch_size"] = 128
    options_path, weights_path = write_original(tmp_path / "original", options, arrays)
    exported = round_trip(options_path, weights_path, tmp_path)
    assert sorted(path.name for path in exported.iterdir()) == ["options.json", "weights.hdf5"]
    original, again = hdf5_contents(weights_path), hdf5_contents(exported / "weights.hdf5")
    assert list(again) == list(original)
    for name, (kind, shape, dtype, data) in original.items():
        assert again[name] == (kind, shape, dtype, data), name
    assert json.loads((exported / "options.json").read_text()) == options


def test_round_trip_of_the_bilm_tf_fixture(tmp_path):
    if not FIXTURE_MODEL.is_dir():
        pytest.skip(f"the original-code fixtures are not at {FIXTURE_MODEL} (they live in ../shared)")
    weights = FIXTURE_MODEL / "lm_weights.hdf5"
    exported = round_trip(FIXTURE_MODEL / "options.json", weights, tmp_path)
    assert hdf5_contents(exported / "weights.hdf5") == hdf5_contents(weights)
    with h5py.File(weights, "r") as handle, h5py.File(exported / "weights.hdf5", "r") as again:
        for name in ("char_embed", "RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_0"):  # storage as bilm-tf writes it
            assert again[name].chunks == handle[name].chunks and again[name].compression == handle[name].compression
    fixture_options = json.loads((FIXTURE_MODEL / "options.json").read_text())
    assert json.loads((exported / "options.json").read_text()) == fixture_options


def test_allennlp_loads_an_exported_model_with_skip_connections(tmp_path):
    simple_elmo = pytest.importorskip("simple_elmo_pytorch")
    options_path, weights_path = write_random_original(tmp_path / "original", n_layers=3, use_skip_connections=True)
    exported = round_trip(options_path, weights_path, tmp_path)
    oracle = simple_elmo.ElmoBiLmSentence(str(exported / "options.json"), str(exported / "weights.hdf5")).eval()
    sentences = [["The", "cat", "sat", "."], ["Exported", "again"]]
    ids = simple_elmo.batch_to_ids(sentences)
    with torch.no_grad():
        theirs = oracle(ids)["activations"]
        inputs = ElmoTokenizer()(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
        ours = load_original(options_path, weights_path)(**inputs, output_hidden_states=True).hidden_states
    assert len(theirs) == len(ours) == 4
    for mine, other in zip(ours, theirs, strict=True):
        for row, sentence in enumerate(sentences):
            torch.testing.assert_close(mine[row, : len(sentence)], other[row, 1 : len(sentence) + 1], atol=1e-5, rtol=0)


@pytest.fixture
def converted(tmp_path):
    options_path, weights_path = write_random_original(tmp_path / "original")
    return convert_original(options_path, weights_path, tmp_path / "hf")


def export_expecting_error(capsys, model: Path, output: Path) -> str:
    assert elmo_main(["export-original", "--model", str(model), "--output-dir", str(output)]) == 2
    assert not output.exists()
    assert not [path for path in output.parent.iterdir() if path.name.startswith(f".{output.name}")]
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("elmo export-original: error: ")
    return err


def test_truncated_safetensors_is_refused(converted, tmp_path, capsys):
    weights = converted / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    err = export_expecting_error(capsys, converted, tmp_path / "out")
    assert str(weights) in err and "truncated" in err


def test_missing_or_misshaped_tensor_is_named(converted, tmp_path, capsys):
    weights = converted / "model.safetensors"
    state = load_file(weights)
    del state["bilstm.layers.1.projection_weight"]
    save_file(state, weights, metadata={"format": "pt"})
    err = export_expecting_error(capsys, converted, tmp_path / "out")
    assert str(weights) in err and "'bilstm.layers.1.projection_weight'" in err
    state["bilstm.layers.1.projection_weight"] = torch.zeros(2, 16, 7)
    save_file(state, weights, metadata={"format": "pt"})
    err = export_expecting_error(capsys, converted, tmp_path / "out")
    assert "'bilstm.layers.1.projection_weight'" in err and "(2, 16, 7)" in err


def test_config_that_is_not_elmo_is_refused(converted, tmp_path, capsys):
    config_path = converted / "config.json"
    config = json.loads(config_path.read_text())
    config["model_type"] = "bert"
    config_path.write_text(json.dumps(config))
    err = export_expecting_error(capsys, converted, tmp_path / "out")
    assert str(config_path) in err and "model_type" in err
    config_path.unlink()
    assert str(config_path) in export_expecting_error(capsys, converted, tmp_path / "out")


def test_existing_output_needs_overwrite(converted, tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("user data")
    args = ["export-original", "--model", str(converted), "--output-dir", str(output)]
    assert elmo_main(args) == 2
    assert "not empty" in capsys.readouterr().err and (output / "keep.txt").exists()
    assert elmo_main([*args, "--overwrite"]) == 0
    assert sorted(path.name for path in output.iterdir()) == ["options.json", "weights.hdf5"]


def test_a_primed_state_is_reported_as_left_out(converted, tmp_path):
    weights = converted / "model.safetensors"
    state = load_file(weights)
    state["primed_hidden_state"] = torch.full_like(state["primed_hidden_state"], 0.5)
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.warns(UserWarning, match="primed_hidden_state"):
        assert elmo_main(["export-original", "--model", str(converted), "--output-dir", str(tmp_path / "out")]) == 0
    np.testing.assert_array_equal(  # the weights themselves are still exported
        h5py.File(tmp_path / "out" / "weights.hdf5", "r")["CNN_proj/W_proj"][...],
        state["token_embedder.projection.weight"].numpy().T,
    )
