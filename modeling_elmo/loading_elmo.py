"""What an ELMo model folder holds besides the model's math: strict loading of its weights, the remote-code maps of
its config.json and the language model's vocabulary file.

`ElmoPreTrainedModel` (`modeling_elmo.py`) inherits `StrictLoadingMixin`: its `from_pretrained` refuses a folder whose
weights are not exactly those of the class being loaded, with an `ElmoWeightsError` naming the file and the tensors.
A remote-code file like the other `*_elmo.py` files: torch, safetensors, transformers and the standard library only,
and the other model files through single-dot imports.
"""

from __future__ import annotations

import copy
import os
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence

import torch
from safetensors import SafetensorError, safe_open
from transformers import PreTrainedConfig
from transformers.utils import cached_file

from .configuration_elmo import ElmoError

SAFETENSORS_WEIGHTS_NAME = "model.safetensors"
#: The safetensors dtypes a weight may be stored in (loading casts it to the model's dtype).
FLOAT_STORAGE_DTYPES = ("F16", "BF16", "F32", "F64")
#: The `from_pretrained` options that say where a folder's files are found (local folder, Hub cache, revision).
HUB_OPTIONS = ("cache_dir", "force_download", "proxies", "token", "revision", "local_files_only", "subfolder")
#: config.json's `custom_pipelines` in a folder saved with its remote code, as `Pipeline.save_pretrained` writes it:
#: `pipeline(model=folder, trust_remote_code=True)` then builds the `elmo-embeddings` pipeline of `pipeline_elmo.py`.
REMOTE_CODE_PIPELINES = {"elmo-embeddings": {"impl": "pipeline_elmo.ElmoEmbeddingsPipeline", "pt": ["AutoModel"]}}
#: The language model's word vocabulary inside a model folder: one word per line, line i = softmax row i.
LM_VOCABULARY_FILE = "vocab.txt"


class ElmoWeightsError(ElmoError, OSError):
    """A model's weights cannot be used: the weight file is not a readable safetensors file, or tensors are missing,
    unexpected, mis-shaped, not stored as floats or not finite. The message names the file and the tensors."""


def _named(names: Iterable[str], limit: int = 4) -> str:
    """A few names for a one-line message: `'a', 'b' and 3 more`."""
    names = sorted(names)
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


class StrictLoadingMixin:
    """Strict `from_pretrained` for a `PreTrainedModel` subclass (listed before it among the bases): a folder's weights
    must be exactly those of the class being loaded. The class may set `_fresh_on_load` and, as in transformers,
    `_keys_to_ignore_on_load_unexpected`."""

    #: The tensors (a regular expression over state-dict names) a class starts fresh when a folder holds none of them.
    _fresh_on_load: str | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, strict: raises `ElmoWeightsError` naming the file and the tensors when
        `model.safetensors` is truncated or corrupt, lacks a tensor of this class (the `primed_*_state` buffers
        included), holds one it does not use, or one of another shape or a non-float dtype, and when a loaded
        tensor is not finite (NaN or infinite, also after the cast to the loaded dtype); also when pickled weights
        (`pytorch_model.bin`) hold more than tensors (`weights_only=True` never runs them). The safetensors file is
        checked before anything is loaded. The tensors a class starts fresh or ignores are named in its docstring;
        `ignore_mismatched_sizes=True` lets only those be re-initialised."""
        weights_path = cls._check_weights_file(pretrained_model_name_or_path, kwargs)
        source = weights_path or pretrained_model_name_or_path
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, **{**kwargs, "output_loading_info": True}
            )
        except SafetensorError as error:
            raise ElmoWeightsError(f"{source} is truncated or corrupt ({error})") from error
        except pickle.UnpicklingError as error:  # a pickle that `torch.load(weights_only=True)` refuses to run
            detail = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. |\n|$)", str(error))
            reason = detail.group(1) if detail else "not a file of plain tensors"
            raise ElmoWeightsError(f"{source}: the pickled weights are refused, unread ({reason})") from error
        mismatched = {name: (found, expected) for name, found, expected in info["mismatched_keys"]}
        model._raise_for_weight_problems(
            source, model.state_dict().keys(), info["missing_keys"], info["unexpected_keys"], mismatched, {}, kwargs
        )
        not_finite = [
            name
            for name, tensor in model.state_dict().items()
            if tensor.is_floating_point() and not tensor.is_meta and not torch.isfinite(tensor).all()
        ]
        if not_finite:
            dtype = str(model.dtype).removeprefix("torch.")
            raise ElmoWeightsError(
                f"{source}: tensors with NaN or infinite values: {_named(not_finite)} "
                f"(as loaded in {dtype}; values beyond its range become infinite)"
            )
        return (model, info) if kwargs.get("output_loading_info") else model

    @classmethod
    def _check_weights_file(cls, pretrained_model_name_or_path: str | os.PathLike, kwargs: dict) -> str | None:
        """Check the safetensors file that `from_pretrained` is about to load against this class built on the meta
        device from the same config (names, shapes and float dtypes), reading only the file's header. Returns its
        path; None where there is none (weights given as a `state_dict`, GGUF or pickle files)."""
        if pretrained_model_name_or_path is None or kwargs.get("state_dict") is not None or kwargs.get("gguf_file"):
            return None
        variant = kwargs.get("variant")
        weights_path = cached_file(
            pretrained_model_name_or_path,
            f"model.{variant}.safetensors" if variant else SAFETENSORS_WEIGHTS_NAME,
            **{name: kwargs[name] for name in HUB_OPTIONS if name in kwargs},
            _raise_exceptions_for_missing_entries=False,
        )
        if weights_path is None:
            return None
        config = kwargs.get("config")
        if not isinstance(config, PreTrainedConfig):
            overrides = {name: value for name, value in kwargs.items() if name != "config"}
            config, _ = cls.config_class.from_pretrained(
                config or pretrained_model_name_or_path, return_unused_kwargs=True, **overrides
            )
        with torch.device("meta"):
            state = cls(copy.deepcopy(config)).state_dict()
        try:
            with safe_open(weights_path, framework="pt") as handle:
                names = handle.keys()
                slices = {name: handle.get_slice(name) for name in names}
                stored = {name: (tuple(piece.get_shape()), piece.get_dtype()) for name, piece in slices.items()}
        except SafetensorError as error:
            raise ElmoWeightsError(f"{weights_path} is truncated or corrupt ({error})") from error
        # The biLM is named with the `elmo.` prefix in a task head's folder, without it in a biLM's or a language
        # model's; transformers adds or strips the prefix. Compare under the file's names.
        prefix = cls.base_model_prefix + "."
        file_prefixed, class_prefixed = (any(name.startswith(prefix) for name in keys) for keys in (stored, state))
        if file_prefixed and not class_prefixed:
            state = {prefix + name: tensor for name, tensor in state.items()}
        elif class_prefixed and not file_prefixed:
            state = {name.removeprefix(prefix): tensor for name, tensor in state.items()}
        expected = {name: tuple(tensor.shape) for name, tensor in state.items()}
        present = sorted(expected.keys() & stored.keys())
        mismatched = {name: (stored[name][0], expected[name]) for name in present if stored[name][0] != expected[name]}
        not_float = {name: stored[name][1] for name in present if stored[name][1] not in FLOAT_STORAGE_DTYPES}
        cls._raise_for_weight_problems(
            weights_path, expected, expected.keys() - stored.keys(), stored.keys() - expected.keys(), mismatched,
            not_float, kwargs,
        )  # fmt: skip
        return weights_path

    @classmethod
    def _raise_for_weight_problems(
        cls,
        source: str | os.PathLike,
        expected: Iterable[str],
        missing: set[str],
        unexpected: set[str],
        mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]],
        not_float: dict[str, str],
        kwargs: dict,
    ) -> None:
        """Raise `ElmoWeightsError` for the problems left once the tensors the class may start fresh (all of
        `_fresh_on_load`, or none) and those it ignores (`_keys_to_ignore_on_load_unexpected`) are set aside."""
        fresh = {name for name in expected if cls._fresh_on_load and re.match(cls._fresh_on_load, name)}
        missing = missing - fresh if fresh <= missing else set(missing)
        ignored = "|".join(f"({pattern})" for pattern in cls._keys_to_ignore_on_load_unexpected or ())
        unexpected = {name for name in unexpected if not (ignored and re.search(ignored, name))}
        if kwargs.get("ignore_mismatched_sizes"):
            mismatched = {name: shapes for name, shapes in mismatched.items() if name not in fresh}
        problems = [f"missing {_named(missing)}"] if missing else []
        problems += [f"unexpected {_named(unexpected)}"] if unexpected else []
        details = [
            f"{name!r} has shape {found}, the config implies {shape}" for name, (found, shape) in mismatched.items()
        ]
        details += [f"{name!r} is stored as {dtype}, not as floats" for name, dtype in not_float.items()]
        problems += details[:4] + ([f"{len(details) - 4} more such tensors"] if len(details) > 4 else [])
        if problems:
            raise ElmoWeightsError(f"{source} does not hold the tensors of {cls.__name__}: {'; '.join(problems)}")


def add_remote_code_maps(config: PreTrainedConfig, auto_classes: Mapping[str, type]) -> None:
    """Name the remote code in `config` before it is saved: its `auto_map` gets the configuration class and each
    `{Auto class: model class}` of `auto_classes` as `module.Class` (other entries are kept), its `custom_pipelines`
    the `elmo-embeddings` pipeline."""
    classes = {"AutoConfig": type(config), **auto_classes}
    auto_map = {name: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for name, cls in classes.items()}
    config.auto_map = {**(getattr(config, "auto_map", None) or {}), **auto_map}
    config.custom_pipelines = copy.deepcopy(REMOTE_CODE_PIPELINES)


def read_lm_vocabulary(path: str | os.PathLike) -> list[str]:
    """The words of a vocabulary file, in softmax-row order: one word per line, optionally followed by a tab and
    its count (as `elmo build-vocab` writes it; the original `vocab-2016-09-10.txt` has no counts)."""
    with open(path, encoding="utf-8") as handle:
        return [line.split("\t", 1)[0].strip() for line in handle if line.strip()]


def save_lm_vocabulary(save_directory: str | os.PathLike, vocabulary: Sequence[str], vocab_size: int) -> None:
    """Write `vocabulary` as the folder's `vocab.txt`, under a temporary name renamed into place; a `ValueError` when
    it has not `vocab_size` words (the softmax's rows)."""
    if len(vocabulary) != vocab_size:
        raise ValueError(f"the vocabulary has {len(vocabulary)} words, the softmax {vocab_size} rows")
    os.makedirs(save_directory, exist_ok=True)
    path = os.path.join(save_directory, LM_VOCABULARY_FILE)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.writelines(f"{word}\n" for word in vocabulary)
    os.replace(path + ".tmp", path)


def load_lm_vocabulary(
    pretrained_model_name_or_path: str | os.PathLike, vocab_size: int, kwargs: dict
) -> list[str] | None:
    """The words of the folder's `vocab.txt` (found as `from_pretrained` with `kwargs` finds the folder's files), None
    without one; a `ValueError` when it has not `vocab_size` words (config.json's `lm_vocab_size`)."""
    path = cached_file(
        pretrained_model_name_or_path,
        LM_VOCABULARY_FILE,
        **{name: kwargs[name] for name in HUB_OPTIONS if name in kwargs},
        _raise_exceptions_for_missing_entries=False,
    )
    if path is None:
        return None
    vocabulary = read_lm_vocabulary(path)
    if len(vocabulary) != vocab_size:
        raise ValueError(f"{path} has {len(vocabulary)} words, config.json says lm_vocab_size = {vocab_size}")
    return vocabulary


class LmVocabularyMixin:
    """The language model's vocabulary as its folder's `vocab.txt`, for a `PreTrainedModel` subclass (listed before it
    among the bases) whose `vocabulary` is a list of words in softmax-row order, or None."""

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, plus the vocabulary as `vocab.txt` (written first, under a temporary
        name and renamed, so that a push to the Hub includes it)."""
        if self.vocabulary is not None and kwargs.get("is_main_process", True):
            save_lm_vocabulary(save_directory, self.vocabulary, self.config.lm_vocab_size)
        super().save_pretrained(save_directory, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, plus the folder's `vocab.txt` as `model.vocabulary` (None without one)."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.vocabulary = load_lm_vocabulary(pretrained_model_name_or_path, model.config.lm_vocab_size, kwargs)
        return loaded
