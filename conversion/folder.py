"""Model folders on disk: where they are written (staged beside the target, renamed into place, honouring the
umask), how an ELMo is saved with its remote code, and the check of a converted folder before it is exported or
published. Every conversion and application module writes folders through these functions."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import torch
from safetensors import SafetensorError, safe_open
from transformers.utils import logging as transformers_logging

from modeling_elmo.configuration_elmo import ElmoConfig, ElmoError
from modeling_elmo.modeling_elmo import (
    AUTO_CLASSES,
    ElmoForBidirectionalLM,
    ElmoForSequenceClassification,
    ElmoForTokenClassification,
    ElmoModel,
)
from modeling_elmo.tokenization_elmo import ElmoTokenizer

WEIGHTS_NAME = "model.safetensors"
#: Overrides the per-user cache folder (`cache_dir`).
CACHE_VARIABLE = "MODELING_ELMO_CACHE"
#: The Auto class that loads each model with a head from its folder (`AutoModel` loads the biLM from any of them).
HEAD_AUTO_CLASSES = {model_class: name for name, model_class in AUTO_CLASSES.items() if model_class is not ElmoModel}


class ConversionError(ElmoError):
    """A conversion input is missing or does not match the options; the message names the problem."""


def folder_state_dict(model: ElmoModel | ElmoForBidirectionalLM) -> dict[str, torch.Tensor]:
    """The tensors of a model folder: `ElmoModel`'s parameter names for the biLM (without the language model's
    `elmo.` prefix), and `softmax.*` for a language model. Both `ElmoModel` and `ElmoForBidirectionalLM` load such
    a folder, and the biLM tensors are where `elmo push` and `elmo export-original` look for them."""
    prefix = ElmoForBidirectionalLM.base_model_prefix + "."
    return {name.removeprefix(prefix): tensor for name, tensor in model.state_dict().items()}


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool) -> Path:
    """`output_dir` as a path, after checking that it is absent or empty unless `overwrite` allows replacing it."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ConversionError(f"{output_dir} exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise ConversionError(f"{output_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    return output_dir


def save_with_remote_code(
    model: ElmoModel | ElmoForBidirectionalLM | ElmoForTokenClassification | ElmoForSequenceClassification,
    tokenizer: ElmoTokenizer,
    directory: Path,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> None:
    """`save_pretrained` both: every ELMo class saves the `.py` files, `auto_map` and `custom_pipelines` that
    `trust_remote_code=True` needs (`ElmoPreTrainedModel.save_pretrained`), and the tokenizer its own.
    `state_dict={}` writes everything but the weights (for a model on the meta device whose weights are streamed).
    A language model is saved with `folder_state_dict`'s names unless `state_dict` is given."""
    if state_dict is None and isinstance(model, ElmoForBidirectionalLM):
        state_dict = folder_state_dict(model)
    model.save_pretrained(directory, state_dict=state_dict)
    tokenizer.save_pretrained(directory)


@contextmanager
def transformers_progress_bars_off() -> Iterator[None]:
    """Hide transformers' progress bars (e.g. an empty "Writing model shards" bar when no weights are saved)."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def require_file(path: Path, kind: str) -> None:
    """Raise a `ConversionError` unless `path` is a file (`kind` names it: "a folder, not a file" and "does not
    exist" are told apart)."""
    if path.is_dir():
        raise ConversionError(f"the {kind} {path} is a folder, not a file")
    if not path.is_file():
        raise ConversionError(f"the {kind} {path} does not exist")


def cache_dir() -> Path:
    """The per-user cache of downloaded weights and evaluation data: `$MODELING_ELMO_CACHE` when set (`~`
    expanded), else `$XDG_CACHE_HOME/modeling-elmo` (only an absolute `XDG_CACHE_HOME` counts, as the XDG base
    directory specification asks), else `~/.cache/modeling-elmo`; never the current folder."""
    override = os.environ.get(CACHE_VARIABLE, "").strip()
    if override:
        return Path(override).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "modeling-elmo"


@contextmanager
def naming_os_errors(path: Path) -> Iterator[None]:
    """Give an `OSError` raised by a write to `path` (a full disk, say: the write itself names no file) its name."""
    try:
        yield
    except OSError as error:
        error.filename = error.filename or str(path)
        raise


@contextmanager
def new_hdf5_file(path: Path, **options: Any) -> Iterator[h5py.File]:
    """A new HDF5 file at `path`, flushed to the disk (fsync) when the block ends without error.

    HDF5 writes through a Python file object, so that a failed write (a full disk) raises `OSError` with its errno
    and the file name: HDF5's own file driver turns it into a `RuntimeError` without errno, and a process whose
    HDF5 file could not be closed that way can crash when it exits."""
    with naming_os_errors(path), path.open("w+b") as handle:
        with h5py.File(handle, "w", **options) as file:
            yield file
        handle.flush()
        os.fsync(handle.fileno())


def current_umask() -> int:
    """The process's file-mode creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


@contextmanager
def staged_directory(output_dir: Path) -> Iterator[Path]:
    """A new empty folder beside `output_dir` to build it in; when the block completes it replaces `output_dir`
    (only then), and when the block fails it is removed, so a failure leaves nothing. The folder gets the mode a
    `mkdir` would (0777 less the umask), not `mkdtemp`'s 0700. An `OSError` that names no file (a full disk) is
    given `output_dir`'s name."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        with naming_os_errors(output_dir):
            staging.chmod(0o777 & ~current_umask())
            yield staging
            replace_dir(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replace_dir(source: Path, target: Path) -> None:
    """Move `source` to `target`, replacing an existing `target` only once `source` is complete."""
    if not target.exists():
        source.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    target.rename(retired / "old")
    source.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
#: The classes a model folder can hold, by the name `save_pretrained` writes into `config.json`'s `architectures`.
FOLDER_CLASSES = {model_class.__name__: model_class for model_class in (ElmoModel, *HEAD_AUTO_CLASSES)}


@dataclass
class ModelFolder:
    """A checked model folder: its path, config, the class it holds (the first of `config.architectures` that is an
    ELMo class, else `ElmoModel`), its weight file and that file's header (`{name: {"dtype", "shape"}}`). The biLM's
    tensors are named with `bilm_prefix`: `"elmo."` in a task head's folder, `""` in a biLM's or a language model's
    (`folder_state_dict`)."""

    path: Path
    config: ElmoConfig
    model_class: type[ElmoModel | ElmoForBidirectionalLM | ElmoForTokenClassification | ElmoForSequenceClassification]
    weights_path: Path
    header: dict[str, dict]
    bilm_prefix: str = ""


def read_model_folder(directory: str | os.PathLike) -> ModelFolder:
    """Check that `directory` holds an ELMo `config.json` and a readable `model.safetensors` with exactly the tensors
    of the folder's class (the biLM's, plus the softmax or the task head's), each in the shape the config implies
    and a float dtype; raise a `ConversionError` naming the file and the field or tensors otherwise. Only the
    header is read (through the safetensors library, which also refuses overlapping or out-of-file offsets)."""
    directory = Path(directory)
    if directory.is_file():
        raise ConversionError(f"the model folder {directory} is a file, not a folder")
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
    architectures = raw.get("architectures") if isinstance(raw.get("architectures"), list) else []
    model_class = next((FOLDER_CLASSES[str(name)] for name in architectures if str(name) in FOLDER_CLASSES), ElmoModel)
    try:
        config = ElmoConfig.from_dict(raw)
        with torch.device("meta"):
            model = model_class(config)
    except (TypeError, ValueError) as error:
        raise ConversionError(f"{config_path}: {error}") from error
    weights_path = directory / WEIGHTS_NAME
    if not weights_path.is_file():
        raise ConversionError(f"{directory} has no {WEIGHTS_NAME}")
    try:
        with safe_open(weights_path, framework="pt") as handle:
            names = handle.keys()
            slices = {name: handle.get_slice(name) for name in names}
            header = {name: {"dtype": piece.get_dtype(), "shape": piece.get_shape()} for name, piece in slices.items()}
    except OSError as error:
        raise ConversionError(f"cannot read {weights_path}: {error.strerror or error}") from error
    except SafetensorError as error:
        raise ConversionError(f"{weights_path} is truncated or corrupt ({error})") from error
    prefix = f"{ElmoModel.base_model_prefix}."
    bilm_prefix = prefix if any(name.startswith(prefix) for name in header) else ""
    bilm = model if model_class is ElmoModel else model.elmo
    expected = {bilm_prefix + name: tuple(tensor.shape) for name, tensor in bilm.state_dict().items()}
    if model_class is not ElmoModel:  # the softmax or the task head
        head = model.state_dict().items()
        expected |= {name: tuple(tensor.shape) for name, tensor in head if not name.startswith(prefix)}
    problems = []
    for name, shape in expected.items():
        entry = header.get(name)
        if entry is None:
            problems.append(f"no tensor {name!r} (config.json implies shape {shape})")
        elif tuple(entry["shape"]) != shape:
            problems.append(f"tensor {name!r} has shape {tuple(entry['shape'])}, config.json implies {shape}")
        elif entry["dtype"] not in FLOAT_DTYPES:
            problems.append(f"tensor {name!r} has dtype {entry['dtype']}, expected floats")
    problems += [
        f"unexpected tensor {name!r} (not one of {model_class.__name__})" for name in header if name not in expected
    ]
    if problems:
        more = f"; and {len(problems) - 4} more problems" if len(problems) > 4 else ""
        raise ConversionError(f"{weights_path}: {'; '.join(problems[:4])}{more}")
    return ModelFolder(directory, config, model_class, weights_path, header, bilm_prefix)
