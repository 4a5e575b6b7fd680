"""Settings and presets of `elmo train` (kept apart from `training.py`, which imports the `Trainer`, so that the
command line parser stays quick to build)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from modeling_elmo.text_files import LanguageModelError

PACKINGS = ("packed", "sentences")
OPTIMIZERS = ("adagrad", "adamw")
SCHEDULERS = ("constant", "linear", "cosine")
MIXED_PRECISIONS = ("no", "bf16", "fp16")


@dataclass
class TrainingSettings:
    """How to train (the `"training"` part of a config file; the CLI's options override it).

    Args:
        batch_size: rows (streams, or sentences) per process and step; the original used 128 per GPU.
        unroll_steps: tokens per row and step in packed mode (the truncation length of back-propagation).
        packing: `"packed"` (streams with carried state, the original) or `"sentences"`.
        max_sentence_words: longer sentences are cut in `"sentences"` mode.
        num_sampled: negative words per batch of the sampled softmax (0: full softmax).
        dropout: on every LSTM layer's input and on the top layer's output.
        optimizer: `"adagrad"` (the original) or `"adamw"`.
        learning_rate: 0.2 for Adagrad in the original.
        lr_scheduler: `"constant"` (the original), or `"linear"` / `"cosine"` decay to 0 over the run.
        adagrad_initial_accumulator: Adagrad's initial accumulator value (1.0 in the original).
        max_grad_norm: clip the gradient to this global norm (10 in the original).
        max_steps: optimizer steps to train for; 0 to derive them from `epochs`.
        epochs: passes over the corpus (with `max_steps = 0`).
        gradient_accumulation_steps: batches per optimizer step.
        logging_steps, save_steps, save_total_limit: how often to log and checkpoint, and how many checkpoints to
            keep.
        seed: seeds the initialisation, dropout and the sampled softmax.
        mixed_precision: `"no"`, `"bf16"` or `"fp16"` (on GPUs).
    """

    batch_size: int = 128
    unroll_steps: int = 20
    packing: str = "packed"
    max_sentence_words: int = 200
    num_sampled: int = 8192
    dropout: float = 0.1
    optimizer: str = "adagrad"
    learning_rate: float = 0.2
    lr_scheduler: str = "constant"
    adagrad_initial_accumulator: float = 1.0
    max_grad_norm: float = 10.0
    max_steps: int = 0
    epochs: float = 10.0
    gradient_accumulation_steps: int = 1
    logging_steps: int = 100
    save_steps: int = 1000
    save_total_limit: int = 2
    seed: int = 1
    mixed_precision: str = "no"

    def validate(self) -> None:
        """Raise a `LanguageModelError` naming the first bad setting."""
        positive = ("batch_size", "unroll_steps", "max_sentence_words", "gradient_accumulation_steps")
        for name in (*positive, "logging_steps", "save_steps", "save_total_limit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LanguageModelError(f"training setting {name} must be a positive integer, got {value!r}")
        for name in ("num_sampled", "max_steps", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise LanguageModelError(f"training setting {name} must be an integer >= 0, got {value!r}")
        choices = (
            ("packing", PACKINGS),
            ("optimizer", OPTIMIZERS),
            ("lr_scheduler", SCHEDULERS),
            ("mixed_precision", MIXED_PRECISIONS),
        )
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise LanguageModelError(
                    f"training setting {name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if not 0 <= self.dropout < 1:
            raise LanguageModelError(f"training setting dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("learning_rate", "max_grad_norm", "epochs", "adagrad_initial_accumulator"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise LanguageModelError(f"training setting {name} must be a number >= 0, got {value!r}")
        if not self.max_steps and not self.epochs > 0:
            raise LanguageModelError("set max_steps or epochs (> 0): how long to train")


_PUBLISHED_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]
_SMALL_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 256], [7, 256]]

#: Named configurations for `--preset`: the architecture (`ElmoConfig` fields) and the training settings.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "description": "a few-minute model for tests and smoke runs (P 32, D 128)",
        "model": {
            "char_embedding_dim": 8,
            "char_cnn_filters": [[1, 16], [2, 16], [3, 32], [4, 32]],
            "num_highway_layers": 1,
            "projection_dim": 32,
            "lstm_cell_dim": 128,
            "num_lstm_layers": 2,
        },
        "training": {"batch_size": 16, "num_sampled": 0, "logging_steps": 10, "save_steps": 200},
    },
    "cpu-small": {
        "description": "the shipped English model (P 128, D 512, F 1024; 16 rows per process: the recipe runs 2; "
        "AdamW 2e-3 with linear decay, which learned twice as fast as Adagrad in its first 300 steps)",
        "model": {
            "char_embedding_dim": 16,
            "char_cnn_filters": _SMALL_FILTERS,
            "num_highway_layers": 1,
            "projection_dim": 128,
            "lstm_cell_dim": 512,
            "num_lstm_layers": 2,
        },
        "training": {
            "batch_size": 16,
            "num_sampled": 1024,
            "optimizer": "adamw",
            "learning_rate": 0.002,
            "lr_scheduler": "linear",
            "logging_steps": 50,
            "save_steps": 500,
        },
    },
    "small": {
        "description": "the published Small architecture (elmo_2x1024_128_2048cnn_1xhighway), original settings",
        "model": {
            "char_embedding_dim": 16,
            "char_cnn_filters": _PUBLISHED_FILTERS,
            "num_highway_layers": 1,
            "projection_dim": 128,
            "lstm_cell_dim": 1024,
            "num_lstm_layers": 2,
        },
        "training": {},
    },
    "medium": {
        "description": "the published Medium architecture (elmo_2x2048_256_2048cnn_1xhighway), original settings",
        "model": {
            "char_embedding_dim": 16,
            "char_cnn_filters": _PUBLISHED_FILTERS,
            "num_highway_layers": 1,
            "projection_dim": 256,
            "lstm_cell_dim": 2048,
            "num_lstm_layers": 2,
        },
        "training": {},
    },
    "original": {
        "description": "the published Original architecture (elmo_2x4096_512_2048cnn_2xhighway), original settings",
        "model": {
            "char_embedding_dim": 16,
            "char_cnn_filters": _PUBLISHED_FILTERS,
            "num_highway_layers": 2,
            "projection_dim": 512,
            "lstm_cell_dim": 4096,
            "num_lstm_layers": 2,
        },
        "training": {},
    },
}

#: Architecture fields a config file's `"model"` part may set (the rest of `ElmoConfig` follows from them).
MODEL_FIELDS = (
    "char_embedding_dim",
    "char_cnn_filters",
    "char_cnn_activation",
    "num_highway_layers",
    "max_characters_per_token",
    "projection_dim",
    "lstm_cell_dim",
    "num_lstm_layers",
    "cell_clip",
    "projection_clip",
    "use_skip_connections",
)


def load_run_config(config_path: str | os.PathLike | None, preset: str | None) -> tuple[dict[str, Any], dict]:
    """The architecture (`ElmoConfig` fields) and the training settings of a config file or a preset.

    A config file is JSON: `{"model": {...architecture...}, "training": {...settings...}}`, either part optional;
    unknown keys are refused, naming them.
    """
    if preset is not None:
        if preset not in PRESETS:
            raise LanguageModelError(f"unknown preset {preset!r}; the presets are {', '.join(PRESETS)}")
        return dict(PRESETS[preset]["model"]), dict(PRESETS[preset]["training"])
    if config_path is None:
        return {}, {}
    path = Path(config_path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise LanguageModelError(f"cannot read the config file {path}: {error.strerror or error}") from error
    except json.JSONDecodeError as error:
        raise LanguageModelError(f"{path} is not valid JSON (line {error.lineno}: {error.msg})") from error
    if not isinstance(values, dict) or set(values) - {"model", "training", "description"}:
        found = sorted(set(values) - {"model", "training", "description"}) if isinstance(values, dict) else values
        raise LanguageModelError(f"{path}: expected an object with 'model' and 'training', got the keys {found}")
    model, training = values.get("model", {}), values.get("training", {})
    settings = {field.name for field in fields(TrainingSettings)}
    for part, known, name in ((model, set(MODEL_FIELDS), "model"), (training, settings, "training")):
        if not isinstance(part, dict):
            raise LanguageModelError(f"{path}: {name!r} must be an object")
        unknown = sorted(set(part) - known)
        if unknown:
            raise LanguageModelError(f"{path}: unknown {name} field(s) {', '.join(unknown)}; known: {sorted(known)}")
    return dict(model), dict(training)
