"""Convert a bilm-tf ELMo (`options.json` + `weights.hdf5`) into a Hugging Face model folder.

The weight file layout (TensorFlow convention y = x @ W) and its mapping onto `ElmoModel`:

| HDF5 dataset | shape | parameter |
|---|---|---|
| `char_embed` | (n_characters - 1, E) | `token_embedder.char_cnn.embedding.weight` after a zero row |
| `CNN/W_cnn_{i}`, `CNN/b_cnn_{i}` | (1, w, E, n), (n,) | `...convolutions.{i}.weight` (n, E, w), `.bias` |
| `CNN_high_{k}/W_carry`, `b_carry` | (F, F), (F,) | `...highway.{k}.carry_gate` (transposed) |
| `CNN_high_{k}/W_transform`, `b_transform` | (F, F), (F,) | `...highway.{k}.transform` (transposed) |
| `CNN_proj/W_proj`, `b_proj` | (F, P), (P,) | `token_embedder.projection` (transposed) |
| `RNN_{d}/.../Cell{l}/LSTMCell/W_0` rows [:P] | (P, 4D) | `bilstm.layers.{l}.input_weight[d]` |
| `RNN_{d}/.../Cell{l}/LSTMCell/W_0` rows [P:] | (P, 4D) | `bilstm.layers.{l}.recurrent_weight[d]` |
| `RNN_{d}/.../LSTMCell/B` | (4D,) | `bilstm.layers.{l}.bias[d]` |
| `RNN_{d}/.../LSTMCell/W_P_0` | (D, P) | `bilstm.layers.{l}.projection_weight[d]` |
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch

from modeling_elmo.configuration_elmo import ElmoConfig
from modeling_elmo.modeling_elmo import ElmoModel
from modeling_elmo.tokenization_elmo import ElmoTokenizer


class ConversionError(Exception):
    """A conversion input is missing or does not match the options; the message names the problem."""


def read_original_options(path: str | os.PathLike) -> ElmoConfig:
    """Read a bilm-tf `options.json` into an `ElmoConfig`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConversionError(f"cannot read the options file {path}: {error.strerror or error}") from error
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConversionError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from error
    try:
        return ElmoConfig.from_original_options(options)
    except ValueError as error:
        raise ConversionError(f"{path}: {error}") from error


def _lstm_prefix(direction: int, layer: int) -> str:
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"


def expected_datasets(config: ElmoConfig) -> dict[str, tuple[int, ...]]:
    """Every dataset a bilm-tf weight file must hold for `config`, with its shape."""
    embedding_dim, filters_width = config.char_embedding_dim, config.num_filters
    projection_dim, cell_dim = config.projection_dim, config.lstm_cell_dim
    shapes: dict[str, tuple[int, ...]] = {"char_embed": (config.num_characters - 1, embedding_dim)}
    for index, (width, count) in enumerate(config.char_cnn_filters):
        shapes[f"CNN/W_cnn_{index}"] = (1, width, embedding_dim, count)
        shapes[f"CNN/b_cnn_{index}"] = (count,)
    for layer in range(config.num_highway_layers):
        for kind in ("carry", "transform"):
            shapes[f"CNN_high_{layer}/W_{kind}"] = (filters_width, filters_width)
            shapes[f"CNN_high_{layer}/b_{kind}"] = (filters_width,)
    shapes["CNN_proj/W_proj"] = (filters_width, projection_dim)
    shapes["CNN_proj/b_proj"] = (projection_dim,)
    for direction in range(2):
        for layer in range(config.num_lstm_layers):
            prefix = _lstm_prefix(direction, layer)
            shapes[f"{prefix}/W_0"] = (2 * projection_dim, 4 * cell_dim)
            shapes[f"{prefix}/B"] = (4 * cell_dim,)
            shapes[f"{prefix}/W_P_0"] = (cell_dim, projection_dim)
    return shapes


def read_original_weights(path: str | os.PathLike, config: ElmoConfig) -> dict[str, np.ndarray]:
    """Read and check every dataset of a bilm-tf weight file against `config`."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"the weight file {path} does not exist")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ConversionError(f"{path} is not a readable HDF5 file ({error})") from error
    arrays = {}
    with handle:
        for name, shape in expected_datasets(config).items():
            dataset = handle.get(name)
            if not isinstance(dataset, h5py.Dataset):
                raise ConversionError(f"{path} has no dataset {name!r} (expected shape {shape} from the options)")
            if dataset.shape != shape:
                raise ConversionError(f"{path}: dataset {name!r} has shape {dataset.shape}, the options imply {shape}")
            if dataset.dtype.kind != "f":
                raise ConversionError(f"{path}: dataset {name!r} has dtype {dataset.dtype}, expected floats")
            arrays[name] = dataset[...].astype(np.float32)
    return arrays


def original_to_state_dict(arrays: dict[str, np.ndarray], config: ElmoConfig) -> dict[str, torch.Tensor]:
    """Map checked bilm-tf arrays onto `ElmoModel` parameter names and layouts."""

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array))

    embedding = arrays["char_embed"]
    state = {
        "token_embedder.char_cnn.embedding.weight": tensor(
            np.concatenate([np.zeros((1, embedding.shape[1]), np.float32), embedding])
        ),
        "token_embedder.projection.weight": tensor(arrays["CNN_proj/W_proj"].T),
        "token_embedder.projection.bias": tensor(arrays["CNN_proj/b_proj"]),
    }
    for index in range(len(config.char_cnn_filters)):
        state[f"token_embedder.char_cnn.convolutions.{index}.weight"] = tensor(
            arrays[f"CNN/W_cnn_{index}"][0].transpose(2, 1, 0)
        )
        state[f"token_embedder.char_cnn.convolutions.{index}.bias"] = tensor(arrays[f"CNN/b_cnn_{index}"])
    for layer in range(config.num_highway_layers):
        for kind, module in (("carry", "carry_gate"), ("transform", "transform")):
            state[f"token_embedder.highway.{layer}.{module}.weight"] = tensor(arrays[f"CNN_high_{layer}/W_{kind}"].T)
            state[f"token_embedder.highway.{layer}.{module}.bias"] = tensor(arrays[f"CNN_high_{layer}/b_{kind}"])
    projection_dim = config.projection_dim
    for layer in range(config.num_lstm_layers):
        prefixes = [_lstm_prefix(direction, layer) for direction in range(2)]
        weights = [arrays[f"{prefix}/W_0"] for prefix in prefixes]
        state[f"bilstm.layers.{layer}.input_weight"] = tensor(np.stack([w[:projection_dim] for w in weights]))
        state[f"bilstm.layers.{layer}.recurrent_weight"] = tensor(np.stack([w[projection_dim:] for w in weights]))
        state[f"bilstm.layers.{layer}.bias"] = tensor(np.stack([arrays[f"{p}/B"] for p in prefixes]))
        state[f"bilstm.layers.{layer}.projection_weight"] = tensor(np.stack([arrays[f"{p}/W_P_0"] for p in prefixes]))
    state["primed_cell_state"] = torch.zeros(config.num_lstm_layers, 2, config.lstm_cell_dim)
    state["primed_hidden_state"] = torch.zeros(config.num_lstm_layers, 2, projection_dim)
    return state


def load_original(options_path: str | os.PathLike, weights_path: str | os.PathLike, **config_overrides) -> ElmoModel:
    """An `ElmoModel` with the weights of a bilm-tf options/weights pair (e.g. `state_mode="stateful"`)."""
    config = read_original_options(options_path)
    for key, value in config_overrides.items():
        setattr(config, key, value)
    config.validate_elmo()
    state = original_to_state_dict(read_original_weights(weights_path, config), config)
    with torch.device("meta"):
        model = ElmoModel(config)
    model.load_state_dict(state, assign=True, strict=True)
    return model.eval()


def convert_original(
    options_path: str | os.PathLike,
    weights_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    word_splitter: str = "moses",
) -> Path:
    """Write a Hugging Face model folder (config, safetensors, tokenizer, remote code) for an original
    ELMo. The folder is built next to `output_dir` and renamed into place, so a failure leaves nothing."""
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise ConversionError(f"{output_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    model = load_original(options_path, weights_path)
    tokenizer = ElmoTokenizer(
        word_splitter=word_splitter, max_characters_per_token=model.config.max_characters_per_token
    )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        save_with_remote_code(model, tokenizer, staging)
        _replace_dir(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def save_with_remote_code(model: ElmoModel, tokenizer: ElmoTokenizer, directory: Path) -> None:
    """`save_pretrained` both, with the `.py` files and `auto_map` that `trust_remote_code=True` needs."""
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class("AutoModel")
    type(tokenizer).register_for_auto_class("AutoTokenizer")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def _replace_dir(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing an existing `target` only once `source` is complete."""
    if not target.exists():
        source.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    target.rename(retired / "old")
    source.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
