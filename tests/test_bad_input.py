"""Bad inputs to `elmo convert` not covered in test_conversion.py: each exits with status 2 and a one-line message
naming the file and the dataset or field, and leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeling_elmo.cli import main as elmo_main
from original_format import write_random_original


def convert_expecting_error(capsys, options_path: Path, weights_path: Path, output: Path) -> str:
    status = elmo_main(
        ["convert", "--options", str(options_path), "--weights", str(weights_path), "--output-dir", str(output)]
    )
    assert status == 2
    assert not output.exists()
    assert not [path for path in output.parent.iterdir() if path.name.startswith(f".{output.name}")]
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("elmo convert: error: "), err
    return err


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_hdf5_is_named(tmp_path, capsys, keep):
    options_path, weights_path = write_random_original(tmp_path / "original")
    content = weights_path.read_bytes()
    weights_path.write_bytes(content[: int(len(content) * keep)])
    err = convert_expecting_error(capsys, options_path, weights_path, tmp_path / "out")
    assert str(weights_path) in err and "truncated" in err


@pytest.mark.parametrize(
    ("section", "key", "named"),
    [
        ("lstm", "projection_dim", "lstm.projection_dim"),
        ("lstm", "dim", "lstm.dim"),
        ("char_cnn", "filters", "char_cnn.filters"),
    ],
)
def test_options_missing_a_required_key_is_named(tmp_path, capsys, section, key, named):
    options_path, weights_path = write_random_original(tmp_path / "original")
    options = json.loads(options_path.read_text())
    del options[section][key]
    options_path.write_text(json.dumps(options))
    err = convert_expecting_error(capsys, options_path, weights_path, tmp_path / "out")
    assert str(options_path) in err and named in err


def test_weights_of_a_different_model_are_refused(tmp_path, capsys):
    options_path, _ = write_random_original(tmp_path / "small", projection_dim=8, lstm_dim=16)
    _, other_weights = write_random_original(tmp_path / "other", projection_dim=12, lstm_dim=24, seed=1)
    err = convert_expecting_error(capsys, options_path, other_weights, tmp_path / "out")
    assert str(other_weights) in err and "'CNN_proj/W_proj'" in err and "(28, 12)" in err and "(28, 8)" in err


def test_a_missing_weight_file_is_named(tmp_path, capsys):
    options_path, weights_path = write_random_original(tmp_path / "original")
    weights_path.unlink()
    err = convert_expecting_error(capsys, options_path, weights_path, tmp_path / "out")
    assert f"the weights file {weights_path} does not exist" in err
