"""`elmo convert`: original files → a Hugging Face folder that loads with and without this package."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from modeling_elmo import ElmoConfig, ElmoModel, ElmoTokenizer
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.original import load_original
from original_format import original_options, random_original_weights, write_original

TEXTS = ["The play was a hit .", "They play football on Sunday !", "I"]
FIXTURE_MODEL = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "bilm-tf" / "model"


def offline_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"), PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture
def original_files(tmp_path):
    options = original_options(n_layers=2, n_highway=2)
    return write_original(tmp_path / "original", options, random_original_weights(options, seed=3))


@pytest.fixture
def converted(original_files, tmp_path):
    options_path, weights_path = original_files
    output = tmp_path / "hf"
    assert (
        elmo_main(
            ["convert", "--options", str(options_path), "--weights", str(weights_path), "--output-dir", str(output)]
        )
        == 0
    )
    return output


def reference_layers(options_path, weights_path, texts=TEXTS):
    model = load_original(options_path, weights_path)
    inputs = ElmoTokenizer()(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return [layer.numpy() for layer in model(**inputs, output_hidden_states=True).hidden_states]


def test_converted_folder_has_weights_tokenizer_and_remote_code(converted):
    names = {path.name for path in converted.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= names
    assert {"configuration_elmo.py", "modeling_elmo.py", "tokenization_elmo.py"} <= names
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "elmo"
    assert config["auto_map"]["AutoModel"] == "modeling_elmo.ElmoModel"
    assert config["auto_map"]["AutoConfig"] == "configuration_elmo.ElmoConfig"
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".hf")]


def test_auto_classes_resolve_and_reproduce_the_original(original_files, converted):
    assert isinstance(AutoConfig.from_pretrained(converted), ElmoConfig)
    tokenizer = AutoTokenizer.from_pretrained(converted)
    model = AutoModel.from_pretrained(converted).eval()
    assert isinstance(tokenizer, ElmoTokenizer) and isinstance(model, ElmoModel)
    with torch.no_grad():
        layers = model(**tokenizer(TEXTS, padding=True, return_tensors="pt"), output_hidden_states=True).hidden_states
    for ours, expected in zip(layers, reference_layers(*original_files), strict=True):
        assert np.array_equal(ours.numpy(), expected)


def test_save_load_round_trip_is_identical(converted, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(converted)
    model = AutoModel.from_pretrained(converted).eval()
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    model.save_pretrained(tmp_path / "again")
    tokenizer.save_pretrained(tmp_path / "again")
    reloaded = AutoModel.from_pretrained(tmp_path / "again").eval()
    reloaded_inputs = AutoTokenizer.from_pretrained(tmp_path / "again")(TEXTS, padding=True, return_tensors="pt")
    assert torch.equal(inputs["input_ids"], reloaded_inputs["input_ids"])
    with torch.no_grad():
        assert torch.equal(model(**inputs).last_hidden_state, reloaded(**inputs).last_hidden_state)


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np

    class BlockModelingElmo:
        def find_spec(self, name, path=None, target=None):
            if name == "modeling_elmo" or name.startswith("modeling_elmo."):
                raise ImportError("modeling_elmo is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockModelingElmo())
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder, texts, out = sys.argv[1], sys.argv[2].split("|"), sys.argv[3]
    try:
        import modeling_elmo  # noqa: F401
        sys.exit("modeling_elmo should not be importable here")
    except ImportError:
        pass
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        layers = model(**tokenizer(texts, padding=True, return_tensors="pt"), output_hidden_states=True).hidden_states
    np.save(out, np.stack([layer.numpy() for layer in layers]))
    print("remote code ok", type(model).__module__)
    """
)


def test_remote_code_loads_without_the_package(converted, original_files, tmp_path):
    out = tmp_path / "remote.npy"
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_SCRIPT, str(converted), "|".join(TEXTS), str(out)],
        capture_output=True,
        text=True,
        env=offline_env(tmp_path),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "remote code ok transformers_modules" in result.stdout
    np.testing.assert_array_equal(np.load(out), np.stack(reference_layers(*original_files)))


def test_console_script_converts_the_fixture(tmp_path):
    if not FIXTURE_MODEL.is_dir():
        pytest.skip(f"the original-code fixtures are not at {FIXTURE_MODEL} (they live in ../shared)")
    script = Path(sys.executable).with_name("elmo")
    output = tmp_path / "fixture-hf"
    result = subprocess.run(
        [str(script), "convert", "--options", str(FIXTURE_MODEL / "options.json"),
         "--weights", str(FIXTURE_MODEL / "lm_weights.hdf5"), "--output-dir", str(output)],
        capture_output=True, text=True, env=offline_env(tmp_path), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = AutoConfig.from_pretrained(output)
    assert config.use_skip_connections is False and config.projection_dim == 16


def _convert_expecting_error(capsys, options_path, weights_path, output):
    status = elmo_main(
        ["convert", "--options", str(options_path), "--weights", str(weights_path), "--output-dir", str(output)]
    )
    assert status == 2
    assert not output.exists()
    assert not [p for p in output.parent.iterdir() if p.name.startswith(f".{output.name}")]
    return capsys.readouterr().err


def test_missing_dataset_is_named_and_nothing_is_written(tmp_path, capsys):
    options = original_options()
    arrays = random_original_weights(options)
    del arrays["RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_P_0"]
    paths = write_original(tmp_path / "broken", options, arrays)
    err = _convert_expecting_error(capsys, *paths, tmp_path / "out")
    assert "RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_P_0" in err and "no dataset" in err


def test_misshaped_dataset_is_named(tmp_path, capsys):
    options = original_options()
    arrays = random_original_weights(options)
    arrays["CNN_proj/W_proj"] = arrays["CNN_proj/W_proj"][:, :-1]
    paths = write_original(tmp_path / "broken", options, arrays)
    err = _convert_expecting_error(capsys, *paths, tmp_path / "out")
    assert "CNN_proj/W_proj" in err and "shape" in err


def test_options_that_disagree_with_the_weights_are_reported(original_files, tmp_path, capsys):
    options_path, weights_path = original_files
    options = json.loads(options_path.read_text())
    options["lstm"]["n_layers"] = 3
    wrong = tmp_path / "wrong_options.json"
    wrong.write_text(json.dumps(options))
    err = _convert_expecting_error(capsys, wrong, weights_path, tmp_path / "out")
    assert "Cell2" in err


def test_bad_files_are_named(original_files, tmp_path, capsys):
    options_path, weights_path = original_files
    not_json = tmp_path / "options.json"
    not_json.write_text('{"lstm": {\n  "dim": 16,,\n}')
    err = _convert_expecting_error(capsys, not_json, weights_path, tmp_path / "out")
    assert str(not_json) in err and "line 2" in err
    not_hdf5 = tmp_path / "weights.hdf5"
    not_hdf5.write_bytes(b"this is not HDF5")
    err = _convert_expecting_error(capsys, options_path, not_hdf5, tmp_path / "out")
    assert str(not_hdf5) in err and "HDF5" in err
    err = _convert_expecting_error(capsys, tmp_path / "missing.json", weights_path, tmp_path / "out")
    assert "missing.json" in err
    bad_value = tmp_path / "bad_value.json"
    options = json.loads(options_path.read_text())
    options["char_cnn"]["activation"] = "swish"
    bad_value.write_text(json.dumps(options))
    err = _convert_expecting_error(capsys, bad_value, weights_path, tmp_path / "out")
    assert "char_cnn_activation" in err


def test_integer_dataset_is_rejected(tmp_path, capsys):
    options = original_options()
    arrays = random_original_weights(options)
    paths = write_original(tmp_path / "ints", options, arrays)
    with h5py.File(paths[1], "r+") as handle:
        del handle["char_embed"]
        handle["char_embed"] = np.zeros((261, 4), dtype=np.int32)
    err = _convert_expecting_error(capsys, *paths, tmp_path / "out")
    assert "char_embed" in err and "dtype" in err


def test_existing_output_needs_overwrite(original_files, tmp_path, capsys):
    output = tmp_path / "existing"
    output.mkdir()
    (output / "keep.txt").write_text("user data")
    args = [
        "convert",
        "--options",
        str(original_files[0]),
        "--weights",
        str(original_files[1]),
        "--output-dir",
        str(output),
    ]
    assert elmo_main(args) == 2
    assert "not empty" in capsys.readouterr().err
    assert (output / "keep.txt").exists()
    assert elmo_main([*args, "--overwrite"]) == 0
    assert not (output / "keep.txt").exists() and (output / "model.safetensors").exists()
