"""Export a Hugging Face ELMo folder back to the original bilm-tf files (`options.json` + `weights.hdf5`).

The weight file gets exactly the datasets bilm-tf's `dump_weights` writes (names, shapes, float32, contiguous
storage), so AllenNLP and bilm-tf load it again. The mapping is the converter's own layout
(`original.parameter_layout`) run backwards: each parameter is cut into the blocks it was assembled from, each
block transposed back and written to its dataset's rows. Nothing is rounded, so original → Hugging Face →
original reproduces every dataset bit for bit. The zero padding row of the character embedding and the
`primed_*_state` buffers have no counterpart in the original format and are left out. The folder is checked first
(`read_model_folder`); each tensor is then read once, through the safetensors library, and refused if it holds NaN
or infinite values.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from modeling_elmo.conversion.folder import (
    ConversionError,
    ModelFolder,
    check_output_dir,
    new_hdf5_file,
    read_model_folder,
    staged_directory,
)
from modeling_elmo.conversion.original import expected_datasets, parameter_layout

OPTIONS_NAME = "options.json"
WEIGHTS_HDF5_NAME = "weights.hdf5"


def export_original(
    model_dir: str | os.PathLike, output_dir: str | os.PathLike, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write `options.json` and `weights.hdf5` for the model in `model_dir` into `output_dir` (built beside it
    and renamed into place: a failure leaves nothing). Returns the two paths."""
    output_dir = check_output_dir(output_dir, overwrite)
    folder = read_model_folder(model_dir)
    config = folder.config
    try:
        options = config.to_original_options()
    except ValueError as error:
        raise ConversionError(f"{folder.path / 'config.json'}: {error}") from error
    dataset_shapes = expected_datasets(config)
    with _open_weights(folder) as weights, staged_directory(output_dir) as staging:
        (staging / OPTIONS_NAME).write_text(json.dumps(options), encoding="utf-8")
        with new_hdf5_file(staging / WEIGHTS_HDF5_NAME) as handle:
            for name, shape in dataset_shapes.items():
                handle.create_dataset(name, shape=shape, dtype=np.float32)
            for name, (_, blocks) in parameter_layout(config).items():
                flat = _read_tensor(folder, weights, name).reshape(-1)
                start = 0
                for block in blocks:
                    if block.dataset is None:  # the embedding's padding row, the primed states
                        size = int(np.prod(block.zeros_shape))
                        if name.startswith("primed_") and np.any(flat[start : start + size]):
                            warnings.warn(
                                f"{name} (a primed LSTM state) has no place in the original format and is left out",
                                stacklevel=2,
                            )
                        start += size
                        continue
                    rows = block.rows if block.rows is not None else slice(None)
                    source_shape = (len(range(*rows.indices(dataset_shapes[block.dataset][0]))),)
                    source_shape += dataset_shapes[block.dataset][1:]
                    block_shape = tuple(source_shape[axis] for axis in block.axes) if block.axes else source_shape
                    size = int(np.prod(block_shape))
                    piece = flat[start : start + size].reshape(block_shape)
                    if block.axes:
                        piece = piece.transpose(np.argsort(block.axes))
                    handle[block.dataset][rows] = piece
                    start += size
    return output_dir / OPTIONS_NAME, output_dir / WEIGHTS_HDF5_NAME


def _open_weights(folder: ModelFolder) -> safe_open:
    """The folder's weight file, opened to read one tensor at a time into its own memory (`pread`, where the
    installed safetensors has it: a memory map would keep every tensor read resident until the end)."""
    try:
        try:
            return safe_open(folder.weights_path, framework="pt", backend="pread")
        except TypeError:  # safetensors before 0.8 has no `backend`
            return safe_open(folder.weights_path, framework="pt")
    except (OSError, SafetensorError) as error:
        raise ConversionError(f"{folder.weights_path} is truncated or corrupt ({error})") from error


def _read_tensor(folder: ModelFolder, weights: safe_open, name: str) -> np.ndarray:
    """The biLM tensor `name` as float32 (float16/bfloat16 widen exactly, float64 is rounded), checked to be
    finite."""
    stored_name = folder.bilm_prefix + name
    try:
        array = weights.get_tensor(stored_name).to(torch.float32).numpy()
    except (OSError, SafetensorError) as error:
        raise ConversionError(f"{folder.weights_path}: tensor {stored_name!r} cannot be read ({error})") from error
    if not np.isfinite(array).all():
        raise ConversionError(
            f"{folder.weights_path}: tensor {stored_name!r} holds NaN or infinite values (as float32, the original "
            "format's type)"
        )
    return array
