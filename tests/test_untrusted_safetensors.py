"""Corrupt or crafted safetensors folders: strict `from_pretrained` for every ELMo class, and `elmo embed`,
`elmo export-original` and `elmo push` refusing such a folder (exit status 2, one line naming the file and the
tensor, nothing written, nothing uploaded); pickled weights too. Every folder is a real one (tiny models), its
`model.safetensors` rewritten with the safetensors library or, for offsets the library would never write, by hand."""

from __future__ import annotations

import datetime
import json
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from embed_helpers import converted_model, embed, write_lines
from safetensors.torch import load_file, save_file
from test_language_model import tiny_lm
from test_task_heads import head_config

from modeling_elmo.cli import main as elmo_main
from modeling_elmo.configuration_elmo import ElmoError
from modeling_elmo.conversion.folder import save_with_remote_code
from modeling_elmo.modeling_elmo import (  # the strict classes, and the error they raise (re-exported there)
    ElmoForBidirectionalLM,
    ElmoForSequenceClassification,
    ElmoForTokenClassification,
    ElmoModel,
    ElmoWeightsError,
)
from modeling_elmo.tokenization_elmo import ElmoTokenizer

pytestmark = pytest.mark.usefixtures("one_thread")

BIAS = "token_embedder.projection.bias"
LSTM_BIAS = "bilstm.layers.0.bias"


def with_value(name: str, value: float, dtype: torch.dtype = torch.float32) -> Callable[[dict], None]:
    """A change that stores `name` as `dtype` with `value` in its first entry."""

    def change(tensors: dict[str, torch.Tensor]) -> None:
        tensor = tensors[name].to(dtype)
        tensor.view(-1)[0] = value
        tensors[name] = tensor

    return change


# id: (change of the tensors {name: tensor}, what the message says)
CORRUPTIONS = {
    "missing-projection-bias": (lambda tensors: tensors.pop(BIAS), f"missing '{BIAS}'"),
    "missing-primed-cell-state": (lambda tensors: tensors.pop("primed_cell_state"), "missing 'primed_cell_state'"),
    "missing-recurrent-weight": (
        lambda tensors: tensors.pop("bilstm.layers.1.recurrent_weight"),
        "missing 'bilstm.layers.1.recurrent_weight'",
    ),
    "unexpected-tensor": (
        lambda tensors: tensors.update({"token_embedder.extra": torch.ones(3)}),
        "unexpected 'token_embedder.extra'",
    ),
    "int32": (lambda tensors: tensors.update({BIAS: tensors[BIAS].to(torch.int32)}), f"'{BIAS}' is stored as I32"),
    "float64-1e300": (with_value(LSTM_BIAS, 1e300, torch.float64), f"NaN or infinite values: '{LSTM_BIAS}'"),
    "nan": (with_value(LSTM_BIAS, float("nan")), f"NaN or infinite values: '{LSTM_BIAS}'"),
    "mis-shaped": (lambda tensors: tensors.update({BIAS: torch.zeros(3)}), f"'{BIAS}' has shape (3,)"),
}


def in_model(corruption: str, message: str) -> str:
    """The message of a model with a head: values are checked once loaded, so the tensor has the model's name."""
    return message.replace(LSTM_BIAS, f"elmo.{LSTM_BIAS}") if "NaN" in message else message


def rewrite(folder: Path, change: Callable[[dict], object]) -> Path:
    """Apply `change` to the folder's tensors and save them back as a valid safetensors file."""
    path = folder / "model.safetensors"
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path, metadata={"format": "pt"})
    return path


def rewrite_offsets(folder: Path, change: Callable[[dict], None]) -> Path:
    """Apply `change` to the header of the folder's safetensors file (`{name: {"data_offsets", ...}}`) and write
    it back by hand, with the same data bytes: a file the library would never write."""
    path = folder / "model.safetensors"
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    change(header)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data[8 + size :])
    return path


@pytest.fixture
def bilm_folder(tmp_path) -> Path:
    """A converted biLM folder (random original-format weights, remote code, tokenizer)."""
    return converted_model(tmp_path)


@pytest.fixture
def lm_folder(tmp_path) -> Path:
    folder = tmp_path / "lm"
    save_with_remote_code(tiny_lm(), ElmoTokenizer(), folder)
    return folder


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"elmo {command}: error: ") and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("corruption", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_from_pretrained_refuses_a_corrupt_bilm_folder(bilm_folder, corruption):
    change, message = corruption
    weights = rewrite(bilm_folder, change)
    with pytest.raises(ElmoWeightsError, match=re.escape(message)) as refused:
        ElmoModel.from_pretrained(bilm_folder)
    assert str(weights) in str(refused.value) and "\n" not in str(refused.value)
    assert isinstance(refused.value, ElmoError) and isinstance(refused.value, OSError)


@pytest.mark.parametrize("corruption", ["missing-projection-bias", "int32", "nan"])
@pytest.mark.parametrize("head_class", [ElmoForTokenClassification, ElmoForSequenceClassification])
def test_a_head_refuses_a_corrupt_bilm_folder(bilm_folder, head_class, corruption):
    change, message = CORRUPTIONS[corruption]
    rewrite(bilm_folder, change)
    with pytest.raises(ElmoWeightsError, match=re.escape(in_model(corruption, message))):
        head_class.from_pretrained(bilm_folder, num_labels=3)


@pytest.mark.parametrize("corruption", ["missing-primed-cell-state", "unexpected-tensor", "float64-1e300"])
def test_the_language_model_refuses_a_corrupt_folder(lm_folder, corruption):
    change, message = CORRUPTIONS[corruption]
    rewrite(lm_folder, change)
    with pytest.raises(ElmoWeightsError, match=re.escape(in_model(corruption, message))):
        ElmoForBidirectionalLM.from_pretrained(lm_folder)


def test_the_language_model_needs_its_softmax_and_the_bilm_ignores_it(lm_folder):
    rewrite(lm_folder, lambda tensors: tensors.pop("softmax.bias"))
    assert type(ElmoModel.from_pretrained(lm_folder)) is ElmoModel  # the biLM starts nothing fresh
    with pytest.raises(ElmoWeightsError, match=re.escape("missing 'softmax.bias'")):
        ElmoForBidirectionalLM.from_pretrained(lm_folder)


def test_the_language_models_vocabulary_must_fit_its_softmax(lm_folder, tmp_path):
    vocab_size = ElmoForBidirectionalLM.from_pretrained(lm_folder).config.lm_vocab_size
    (lm_folder / "vocab.txt").write_text("only\ntwo\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"has 2 words, config.json says lm_vocab_size = {vocab_size}")):
        ElmoForBidirectionalLM.from_pretrained(lm_folder)
    model = tiny_lm()
    model.vocabulary = ["only", "two"]
    with pytest.raises(ValueError, match=re.escape(f"the vocabulary has 2 words, the softmax {vocab_size} rows")):
        model.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()


def test_a_head_starts_fresh_only_from_a_folder_without_one(tmp_path):
    torch.manual_seed(0)
    bilm = ElmoModel(head_config()).eval()
    bilm.save_pretrained(tmp_path / "bilm")
    head = ElmoForTokenClassification.from_pretrained(tmp_path / "bilm")  # scalar mix, encoder, classifier fresh
    for name, tensor in bilm.state_dict().items():
        assert torch.equal(head.elmo.state_dict()[name], tensor), name
    assert torch.isfinite(head.classifier.weight).all()
    head.save_pretrained(tmp_path / "head")
    assert type(ElmoModel.from_pretrained(tmp_path / "head")) is ElmoModel  # the head's tensors are ignored
    rewrite(tmp_path / "head", lambda tensors: tensors.pop("classifier.bias"))
    with pytest.raises(ElmoWeightsError, match=re.escape("missing 'classifier.bias'")):
        ElmoForTokenClassification.from_pretrained(tmp_path / "head")


def test_loading_info_is_still_returned_when_asked(bilm_folder):
    model, info = ElmoModel.from_pretrained(bilm_folder, output_loading_info=True)
    assert type(model) is ElmoModel and not info["missing_keys"] and not info["unexpected_keys"]


@pytest.mark.parametrize("corruption", ["missing-projection-bias", "unexpected-tensor", "nan"])
def test_embed_refuses_a_corrupt_folder_before_writing(bilm_folder, tmp_path, capsys, corruption):
    change, message = CORRUPTIONS[corruption]
    weights = rewrite(bilm_folder, change)
    source, output = write_lines(tmp_path / "in.txt", ["The play was a hit ."]), tmp_path / "out.hdf5"
    assert embed(bilm_folder, source, output) == 2
    err = one_line_error(capsys, "embed")
    assert str(weights) in err and message in err
    assert not output.exists() and not list(tmp_path.glob("out.hdf5*"))


def test_embed_refuses_a_truncated_safetensors(bilm_folder, tmp_path, capsys):
    weights = bilm_folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    source, output = write_lines(tmp_path / "in.txt", ["The play was a hit ."]), tmp_path / "out.hdf5"
    assert embed(bilm_folder, source, output) == 2
    err = one_line_error(capsys, "embed")
    assert str(weights) in err and "truncated or corrupt" in err
    assert not output.exists() and not list(tmp_path.glob("out.hdf5*"))


def pickle_instead(folder: Path, change: Callable[[dict], object]) -> Path:
    """Replace the folder's `model.safetensors` by a `pytorch_model.bin` of its tensors after `change`."""
    tensors = load_file(folder / "model.safetensors")
    change(tensors)
    (folder / "model.safetensors").unlink()
    torch.save(tensors, folder / "pytorch_model.bin")
    return folder / "pytorch_model.bin"


def test_pickled_weights_are_checked_once_loaded(bilm_folder):
    pickle_instead(bilm_folder, lambda tensors: tensors.pop(BIAS))
    with pytest.raises(ElmoWeightsError, match=re.escape(f"{bilm_folder} does not hold the tensors of ElmoModel")):
        ElmoModel.from_pretrained(bilm_folder)


def test_embed_refuses_a_pickle_that_holds_more_than_tensors(bilm_folder, tmp_path, capsys):
    pickle_instead(bilm_folder, lambda tensors: tensors.update(saved_on=datetime.date(2020, 1, 1)))
    source, output = write_lines(tmp_path / "in.txt", ["The play was a hit ."]), tmp_path / "out.hdf5"
    assert embed(bilm_folder, source, output) == 2
    err = one_line_error(capsys, "embed")
    assert "pickled weights are refused, unread" in err and "datetime.date" in err
    assert not output.exists() and not list(tmp_path.glob("out.hdf5*"))


def overlap_second_bias(header: dict) -> None:
    """Point the second LSTM layer's bias at the first one's bytes (same shape): their data overlap."""
    header["bilstm.layers.1.bias"]["data_offsets"] = header["bilstm.layers.0.bias"]["data_offsets"]


def negative_offset(header: dict) -> None:
    begin, end = header[BIAS]["data_offsets"]
    header[BIAS]["data_offsets"] = [-4, end - begin - 4]


@pytest.mark.parametrize("change", [overlap_second_bias, negative_offset], ids=["overlapping", "negative"])
def test_export_refuses_crafted_offsets(bilm_folder, tmp_path, capsys, change):
    weights = rewrite_offsets(bilm_folder, change)
    output = tmp_path / "exported"
    assert elmo_main(["export-original", "--model", str(bilm_folder), "--output-dir", str(output)]) == 2
    err = one_line_error(capsys, "export-original")
    assert str(weights) in err and "truncated or corrupt" in err
    assert not output.exists() and not list(tmp_path.glob(".exported*"))


# What `read_model_folder` (export-original, push) says about some corruptions, or export-original as it reads.
FOLDER_MESSAGES = {
    "unexpected-tensor": "unexpected tensor 'token_embedder.extra'",
    "float64-1e300": f"tensor '{LSTM_BIAS}' holds NaN or infinite values",
    "nan": f"tensor '{LSTM_BIAS}' holds NaN or infinite values",
}


@pytest.mark.parametrize("corruption", FOLDER_MESSAGES)
def test_export_refuses_a_corrupt_folder(bilm_folder, tmp_path, capsys, corruption):
    weights = rewrite(bilm_folder, CORRUPTIONS[corruption][0])
    output = tmp_path / "exported"
    assert elmo_main(["export-original", "--model", str(bilm_folder), "--output-dir", str(output)]) == 2
    err = one_line_error(capsys, "export-original")
    assert str(weights) in err and FOLDER_MESSAGES[corruption] in err
    assert not output.exists() and not list(tmp_path.glob(".exported*"))


@pytest.mark.parametrize("corruption", ["unexpected-tensor", "float64-1e300", "nan"])
def test_push_refuses_a_corrupt_folder_before_any_upload(bilm_folder, hub_endpoint, capsys, corruption):
    weights = rewrite(bilm_folder, CORRUPTIONS[corruption][0])
    assert elmo_main(["push", str(bilm_folder), "--repo-id", "org/elmo-tiny"]) == 2
    err = one_line_error(capsys, "push")
    message = FOLDER_MESSAGES[corruption] if corruption == "unexpected-tensor" else CORRUPTIONS[corruption][1]
    assert str(weights) in err and message in err
    assert hub_endpoint.requests == [] and hub_endpoint.repos == {}


@pytest.mark.parametrize("name", ["modeling_elmo.py", "extra_code.py"])
def test_push_refuses_a_folder_with_code_not_from_this_package(bilm_folder, hub_endpoint, capsys, tmp_path, name):
    marker = tmp_path / "ran"
    code = bilm_folder / name
    code.write_text((code.read_text() if code.exists() else "") + f"\nopen({str(marker)!r}, 'w').close()\n")
    assert elmo_main(["push", str(bilm_folder), "--repo-id", "org/elmo-tiny"]) == 2
    err = one_line_error(capsys, "push")
    assert f"{code} is not this package's own {name}" in err
    assert not marker.exists()
    assert hub_endpoint.requests == [] and hub_endpoint.repos == {}


def test_push_refuses_a_folder_that_does_not_load_without_the_package(bilm_folder, hub_endpoint, capsys):
    (bilm_folder / "pipeline_elmo.py").unlink()  # imported by the configuration's remote code
    assert elmo_main(["push", str(bilm_folder), "--repo-id", "org/elmo-tiny"]) == 2
    err = one_line_error(capsys, "push")
    assert "does not load without the modeling_elmo package (remote code)" in err and "pipeline_elmo" in err
    assert hub_endpoint.requests == [] and hub_endpoint.repos == {}


def test_a_task_head_folder_is_checked_and_pushed(hub_endpoint, tmp_path, capsys):
    torch.manual_seed(0)
    folder = tmp_path / "tagger"
    save_with_remote_code(ElmoForTokenClassification(head_config()).eval(), ElmoTokenizer(), folder)
    assert elmo_main(["push", str(folder), "--repo-id", "org/elmo-tagger"]) == 0, capsys.readouterr().err
    files = hub_endpoint.files("org/elmo-tagger")
    assert files["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    exported = tmp_path / "exported"  # the biLM of the head's folder, back in the original format
    assert elmo_main(["export-original", "--model", str(folder), "--output-dir", str(exported)]) == 0
    assert sorted(path.name for path in exported.iterdir()) == ["options.json", "weights.hdf5"]
