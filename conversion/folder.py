"""Check a converted Hugging Face ELMo folder before it is exported or published."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from modeling_elmo.configuration_elmo import ElmoConfig
from modeling_elmo.conversion.original import WEIGHTS_NAME, ConversionError
from modeling_elmo.conversion.safetensors_stream import SafetensorsError, read_header
from modeling_elmo.modeling_elmo import ElmoModel

FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


@dataclass
class ModelFolder:
    """A checked model folder: its path, config, weight file and that file's header (`{name: entry}`)."""

    path: Path
    config: ElmoConfig
    weights_path: Path
    header: dict[str, dict]


def read_model_folder(directory: str | os.PathLike) -> ModelFolder:
    """Check that `directory` holds an ELMo `config.json` and a complete `model.safetensors` with every tensor
    the config implies, in the right shape and a float dtype; raise a `ConversionError` naming the file and the
    field or tensor otherwise. No tensor data is read."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConversionError(f"the model folder {directory} does not exist")
    config_path = directory / "config.json"
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConversionError(f"cannot read {config_path}: {error.strerror or error}") from error
    except json.JSONDecodeError as error:
        raise ConversionError(f"{config_path} is not valid JSON (line {error.lineno}: {error.msg})") from error
    if not isinstance(raw, dict) or raw.get("model_type") != "elmo":
        found = raw.get("model_type") if isinstance(raw, dict) else None
        raise ConversionError(f"{config_path}: model_type is {found!r}, expected 'elmo'")
    try:
        config = ElmoConfig.from_dict(raw)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"{config_path}: {error}") from error
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.is_file():
        raise ConversionError(f"{directory} has no {WEIGHTS_NAME}")
    try:
        header = read_header(weights_path)
    except SafetensorsError as error:
        raise ConversionError(str(error)) from error
    with torch.device("meta"):
        expected = {name: tuple(tensor.shape) for name, tensor in ElmoModel(config).state_dict().items()}
    for name, shape in expected.items():
        entry = header.get(name)
        if entry is None:
            raise ConversionError(f"{weights_path} has no tensor {name!r} (config.json implies shape {shape})")
        found = tuple(entry.get("shape", ()))
        if found != shape:
            raise ConversionError(f"{weights_path}: tensor {name!r} has shape {found}, config.json implies {shape}")
        if entry.get("dtype") not in FLOAT_DTYPES:
            raise ConversionError(f"{weights_path}: tensor {name!r} has dtype {entry.get('dtype')}, expected floats")
    return ModelFolder(directory, config, weights_path, header)
