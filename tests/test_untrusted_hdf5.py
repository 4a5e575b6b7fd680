"""Untrusted original-format weights: a bilm-tf weight file (or softmax file) may only supply its own bytes, finite
values, and exactly the datasets its options describe. Each HDF5 trick below is written with h5py itself, shown to
work on h5py (the control: reading the dataset really yields another file's bytes), and then `elmo convert` must
exit with status 2 and one line naming the file and the dataset, write nothing, and leak no secret byte. The
ELMoForManyLangs pickles get the same finiteness check."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.elmoformanylangs import load_state_dict
from modeling_elmo.conversion.folder import ConversionError
from modeling_elmo.conversion.original import convert_original, expected_datasets, read_original_options
from original_format import lstm_prefix, write_random_elmoformanylangs, write_random_original

pytestmark = pytest.mark.usefixtures("one_thread")

CHAR_EMBED_SHAPE = (261, 4)  # the default tiny model's `char_embed`
# Bytes that stand for a secret (a Hub token): exactly the size of `char_embed` in float32, all finite as floats.
SECRET = (b"hf_SECRETtoken42" * (261 * 4 * 4 // 16))[: 261 * 4 * 4]


@pytest.fixture
def original(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny random bilm-tf model (options, weights) in tmp_path/original."""
    return write_random_original(tmp_path / "original")


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret" / "token"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def other_file(tmp_path: Path) -> Path:
    """Another HDF5 file holding the secret as a float32 dataset `secret` (char_embed's shape) and a group
    `group/` with a copy of it."""
    path = tmp_path / "secret" / "other.hdf5"
    path.parent.mkdir(exist_ok=True)
    secret = np.frombuffer(SECRET, dtype=np.float32).reshape(CHAR_EMBED_SHAPE)
    with h5py.File(path, "w") as handle:
        handle["secret"] = secret
        handle["group/secret"] = secret
    return path


def convert(options: Path, weights: Path, output: Path, *extra: str) -> int:
    """`elmo convert`'s exit status."""
    return elmo_main(
        ["convert", "--options", str(options), "--weights", str(weights), "--output-dir", str(output), *extra]
    )


def convert_expecting_error(capsys, options: Path, weights: Path, *extra: str) -> str:
    """Run `elmo convert`; assert exit status 2, one line on stderr, no output folder and no staging leftover."""
    output = weights.parent.parent / "converted"
    assert convert(options, weights, output, *extra) == 2
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("elmo convert: error: "), captured.err
    assert not output.exists()
    assert not [path for path in output.parent.iterdir() if path.name.startswith(".converted")]
    return captured.err


def assert_secret_nowhere(root: Path, *outputs: str) -> None:
    """No file under `root` (other than the secret's own files) and no output text holds the secret's bytes."""
    needle = SECRET[:16]
    for path in root.rglob("*"):
        if path.is_file() and path.parent.name != "secret":
            assert needle not in path.read_bytes(), path
    for text in outputs:
        assert needle.decode() not in text


def replace_dataset(weights: Path, name: str, make) -> None:
    """Delete dataset `name` from the weight file and let `make(handle, name)` put something in its place."""
    with h5py.File(weights, "a") as handle:
        del handle[name]
        make(handle, name)


def test_external_raw_storage_is_refused(original, secret_file, tmp_path, capsys):
    options, weights = original
    replace_dataset(
        weights,
        "char_embed",
        lambda handle, name: handle.create_dataset(
            name, shape=CHAR_EMBED_SHAPE, dtype="<f4", external=[(str(secret_file), 0, len(SECRET))]
        ),
    )
    with h5py.File(weights, "r") as handle:  # the control: HDF5 reads the other file's bytes
        assert handle["char_embed"][()].tobytes() == SECRET
    err = convert_expecting_error(capsys, options, weights)
    assert str(weights) in err and "'char_embed'" in err and "external files" in err
    assert_secret_nowhere(tmp_path, err)


def virtual_dataset(handle: h5py.File, name: str, other_file: Path) -> None:
    """`name` as a virtual dataset whose values are the other file's secret."""
    layout = h5py.VirtualLayout(shape=CHAR_EMBED_SHAPE, dtype="<f4")
    layout[:] = h5py.VirtualSource(str(other_file), "secret", shape=CHAR_EMBED_SHAPE)
    handle.create_virtual_dataset(name, layout)


def soft_link_through_an_external_link(handle: h5py.File, name: str, other_file: Path) -> None:
    """`name` as a soft link to a path through an external link to the other file: the soft link itself is
    refused."""
    handle["stash"] = h5py.ExternalLink(str(other_file), "/")
    handle[name] = h5py.SoftLink("/stash/secret")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (virtual_dataset, "'char_embed' is a virtual dataset"),
        (soft_link_through_an_external_link, "'char_embed' is a SoftLink (to '/stash/secret')"),
    ],
    ids=["virtual-dataset", "soft-link"],
)
def test_a_dataset_that_reads_another_file_is_refused(original, other_file, tmp_path, capsys, make, message):
    options, weights = original
    replace_dataset(weights, "char_embed", lambda handle, name: make(handle, name, other_file))
    with h5py.File(weights, "r") as handle:  # the control: HDF5 reads the other file's bytes
        assert handle["char_embed"][()].tobytes() == SECRET
    err = convert_expecting_error(capsys, options, weights)
    assert str(weights) in err and message in err
    assert_secret_nowhere(tmp_path, err)


@pytest.mark.parametrize(
    ("name", "target"),
    [("char_embed", "/secret"), ("CNN_proj", "/group")],
    ids=["dataset", "group"],
)
def test_external_link_is_refused(original, other_file, tmp_path, capsys, name, target):
    options, weights = original
    with h5py.File(weights, "a") as handle, h5py.File(other_file, "a") as other:
        for dataset in ("W_proj", "b_proj"):  # what the options expect in CNN_proj, beside the secret
            other[f"group/{dataset}"] = handle[f"CNN_proj/{dataset}"][()]
        del handle[name]
        handle[name] = h5py.ExternalLink(str(other_file), target)
    with h5py.File(weights, "r") as handle:  # the control: HDF5 follows the link
        assert isinstance(handle[name], h5py.Dataset if name == "char_embed" else h5py.Group)
    err = convert_expecting_error(capsys, options, weights)
    assert str(weights) in err and f"'{name}' is an external link" in err and str(other_file) in err
    assert_secret_nowhere(tmp_path, err)


def test_external_link_to_a_missing_file_is_refused_without_opening_it(original, capsys):
    options, weights = original
    with h5py.File(weights, "a") as handle:
        del handle["RNN_1"]
        handle["RNN_1"] = h5py.ExternalLink("/x.h5", "/")
    err = convert_expecting_error(capsys, options, weights)
    assert "'RNN_1' is an external link" in err and "'/x.h5'" in err


def test_soft_link_inside_the_file_is_refused(original, capsys):
    options, weights = original
    with h5py.File(weights, "a") as handle:
        handle.move("CNN_proj", "elsewhere")
        handle["CNN_proj"] = h5py.SoftLink("/elsewhere")
    err = convert_expecting_error(capsys, options, weights)
    assert "'CNN_proj' is a SoftLink (to '/elsewhere')" in err


def store_with_filters(weights: Path, name: str, **filters) -> None:
    """Store dataset `name` again, with the same values, through the HDF5 `filters` (`create_dataset` options)."""
    with h5py.File(weights, "r") as handle:
        values = handle[name][()]
    replace_dataset(weights, name, lambda handle, name: handle.create_dataset(name, data=values, **filters))


def test_filter_plugin_is_refused(original, capsys):
    options, weights = original
    store_with_filters(weights, "char_embed", chunks=(261, 4), compression=32013, allow_unknown_filter=True)
    err = convert_expecting_error(capsys, options, weights)
    assert "'char_embed' needs the HDF5 filter plugins [32013]" in err


def test_compressed_datasets_convert(original, tmp_path):
    """HDF5's own filters (gzip, shuffle, checksums) are bytes of the file itself: accepted."""
    options, weights = original
    store_with_filters(weights, "char_embed", chunks=(64, 4), compression="gzip", shuffle=True, fletcher32=True)
    assert convert(options, weights, tmp_path / "out") == 0


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a numpy warning would be a second line on stderr
@pytest.mark.parametrize(
    ("name", "value", "dtype"),
    [
        ("char_embed", np.nan, "<f4"),
        (f"{lstm_prefix(1, 1)}/W_0", np.inf, "<f4"),  # in the recurrent half (rows P:), read as its own block
        ("CNN/b_cnn_2", -np.inf, "<f4"),
        ("CNN_proj/W_proj", 1e300, "<f8"),  # finite as float64, infinite as float32
    ],
)
def test_non_finite_weights_are_refused(original, capsys, name, value, dtype):
    options, weights = original
    with h5py.File(weights, "r") as handle:
        values = handle[name][()].astype(dtype)
    values.reshape(-1)[-1] = value
    replace_dataset(weights, name, lambda handle, dataset: handle.create_dataset(dataset, data=values))
    err = convert_expecting_error(capsys, options, weights)
    assert str(weights) in err and f"dataset '{name}'" in err and "holds 1 values that are NaN or infinite" in err


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_large_finite_weights_convert(original, tmp_path):
    """Values whose float32 sum overflows are still finite: the exact check clears them."""
    options, weights = original
    with h5py.File(weights, "a") as handle:
        handle["char_embed"][:2, 0] = 3e38
    output = tmp_path / "out"
    assert convert(options, weights, output) == 0 and output.is_dir()


@pytest.mark.parametrize(
    ("change", "unexpected"),
    [
        ({"lstm": {"n_layers": 1}}, f"{lstm_prefix(0, 1)}/B"),
        ({"char_cnn": {"n_highway": 0}}, "CNN_high_0/W_carry"),
    ],
    ids=["fewer-layers", "fewer-highways"],
)
def test_options_with_fewer_layers_than_the_file_are_refused(original, capsys, change, unexpected):
    options, weights = original
    content = json.loads(options.read_text())
    for section, values in change.items():
        content[section].update(values)
    options.write_text(json.dumps(content))
    err = convert_expecting_error(capsys, options, weights)
    assert str(weights) in err and "holds datasets that the options do not describe" in err and unexpected in err


@pytest.mark.parametrize("extra", ["CNN/W_cnn_9", f"{lstm_prefix(0, 2)}/W_0", "CNN_high_3/b_carry", "notes"])
def test_extra_datasets_are_refused(original, capsys, extra):
    options, weights = original
    with h5py.File(weights, "a") as handle:
        handle[extra] = np.zeros(3, dtype=np.float32)
    err = convert_expecting_error(capsys, options, weights)
    assert f"'{extra}'" in err and "do not describe" in err


def test_a_folder_as_weights_is_named_as_a_folder(original, tmp_path, capsys):
    options, _ = original
    folder = tmp_path / "weights.hdf5"
    folder.mkdir()
    err = convert_expecting_error(capsys, options, folder)
    assert f"the weights file {folder} is a folder, not a file" in err
    with pytest.raises(ConversionError, match=r"the weights file .*weights\.hdf5 is a folder, not a file"):
        convert_original(options, folder, tmp_path / "out")
    with pytest.raises(ConversionError, match=r"the options file .*weights\.hdf5 is a folder, not a file"):
        convert_original(folder, folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_absurd_layer_count_fails_before_allocating(original):
    """`expected_datasets` validates the sizes first: 10**7 layers would be 60 million dict entries."""
    config = read_original_options(original[0])
    config.num_lstm_layers = 10**7
    with pytest.raises(ConversionError, match="num_lstm_layers is 10000000, more than the limit of 16"):
        expected_datasets(config)


# The softmax file goes through the same policy.


@pytest.fixture
def softmax_original(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    options, weights = write_random_original(tmp_path / "original")
    vocab = tmp_path / "original" / "vocab.txt"
    vocab.write_text("</S>\n<S>\n<UNK>\nthe\ncat\n", encoding="utf-8")
    softmax = tmp_path / "original" / "softmax.hdf5"
    with h5py.File(softmax, "w") as handle:
        handle["softmax/W"] = np.ones((5, 8), dtype=np.float32)
        handle["softmax/b"] = np.zeros(5, dtype=np.float32)
    return options, weights, softmax, vocab


def test_softmax_external_link_is_refused(softmax_original, tmp_path, capsys):
    options, weights, softmax, vocab = softmax_original
    other = tmp_path / "secret" / "other.hdf5"
    other.parent.mkdir()
    with h5py.File(other, "w") as handle:
        handle["W"] = np.frombuffer(SECRET[: 5 * 8 * 4], dtype=np.float32).reshape(5, 8)
    with h5py.File(softmax, "a") as handle:
        del handle["softmax/W"]
        handle["softmax/W"] = h5py.ExternalLink(str(other), "/W")
    err = convert_expecting_error(capsys, options, weights, "--softmax-weights", str(softmax), "--vocab", str(vocab))
    assert str(softmax) in err and "'softmax/W' is an external link" in err
    assert_secret_nowhere(tmp_path, err)


def test_softmax_non_finite_rows_are_refused(softmax_original, capsys):
    options, weights, softmax, vocab = softmax_original
    with h5py.File(softmax, "a") as handle:
        handle["softmax/W"][3, 2] = np.nan
    err = convert_expecting_error(capsys, options, weights, "--softmax-weights", str(softmax), "--vocab", str(vocab))
    assert str(softmax) in err and "dataset 'softmax/W' rows 0:" in err and "NaN or infinite" in err


# ELMoForManyLangs pickles: every tensor finite.


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_pickled_tensors_are_refused(tmp_path, value):
    path = tmp_path / "encoder.pkl"
    weight = torch.zeros(4, 3)
    weight[2, 1] = value
    torch.save({"forward_layer_0.input_linearity.weight": weight}, path)
    with pytest.raises(ConversionError, match=r"encoder\.pkl: tensor 'forward_layer_0.input_linearity.weight' holds 1"):
        load_state_dict(path)
    torch.save({"projection.bias": torch.full((3,), 1e300, dtype=torch.float64)}, path)
    with pytest.raises(ConversionError, match=r"'projection\.bias' holds 3 values that are NaN or infinite as float32"):
        load_state_dict(path)


def test_non_finite_elmoformanylangs_model_is_refused(tmp_path, capsys):
    model_dir = write_random_elmoformanylangs(tmp_path / "efml")
    state = torch.load(model_dir / "token_embedder.pkl", weights_only=True)
    state["projection.weight"][0, 0] = float("nan")
    torch.save(state, model_dir / "token_embedder.pkl")
    output = tmp_path / "out"
    assert elmo_main(["convert", "--elmoformanylangs", str(model_dir), "--output-dir", str(output)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "token_embedder.pkl: tensor 'projection.weight' holds 1 values" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["efml"]
