"""What an `elmo embed` job is given: its settings (`EmbedOptions`), its input lines (`InputLine`), the embedder it
calls (`Embedder`) and the error it raises (`EmbedError`). The other `embed*` modules import these from here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from modeling_elmo.configuration_elmo import ElmoError
from modeling_elmo.pipeline_elmo import NAMED_LAYERS, POOLINGS

INPUT_FORMATS = ("auto", "txt", "jsonl")
OUTPUT_DTYPES = ("float32", "float16")
ENCODING_ERRORS = ("strict", "replace")
OUTPUT_FORMATS = ("auto", "hdf5", "parquet")
STDIN = "-"
ENCODING_ADVICE = "; fix the input or pass --encoding-errors replace"


class EmbedError(ElmoError):
    """Bad input or options for `elmo embed`; the message names the file, line or option."""


class Embedder(Protocol):
    """What a job needs of its embedder: `modeling_elmo.embedder.ElmoEmbedder` is one (which calls `embed_file` in
    its own `embed_file`, so this module names the interface rather than importing the class)."""

    model: Any
    tokenizer: Any

    @property
    def num_layers(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    def split(self, sentence: str) -> list[str]: ...

    def iter_embeddings(
        self,
        word_lists: Sequence[Sequence[str]],
        layers: str | int,
        mix_weights: Sequence[float] | None,
        gamma: float | None,
        pool: str | None,
        batch_size: int | None,
    ) -> Iterator[tuple[int, np.ndarray]]: ...


@dataclass(frozen=True)
class EmbedOptions:
    """Settings of one `elmo embed` job.

    Args:
        layers: `"all"`, `"top"`, `"average"`, `"mix"` or a layer number (see `modeling_elmo.pipeline_elmo`).
        mix_weights: with `layers="mix"`, one weight per layer (used as given).
        gamma: with `layers="mix"`, the scale (default 1.0).
        pool: `None`, `"mean"` or `"max"`: one vector per sentence instead of one per word.
        batch_size: sentences per batch.
        window: lines read, sorted by length and written together; also the unit of resumption.
        tokenized: the input's words are already separated by whitespace (no Moses splitting).
        input_format: `"txt"`, `"jsonl"` or `"auto"` (`.jsonl` files are JSON Lines, all else text).
        use_sentence_keys: name datasets by their sentence instead of the line index.
        dtype: `"float32"` or `"float16"`: the stored vectors' type (the model computes in its own dtype).
        output_format: `"hdf5"`, `"parquet"` (`modeling_elmo.embed_parquet`) or `"auto"` (Parquet for a
            `.parquet` or `.pq` output, HDF5 otherwise).
        encoding_errors: `"strict"` (invalid UTF-8 is an error naming the line) or `"replace"` (U+FFFD).
        overwrite: replace an existing output file (it stays untouched until the new one is complete).
        restart: discard an interrupted job's work instead of continuing it.
        progress: show a progress bar on stderr.
    """

    layers: str | int = "all"
    mix_weights: tuple[float, ...] | None = None
    gamma: float | None = None
    pool: str | None = None
    batch_size: int = 64
    window: int = 1000
    tokenized: bool = False
    input_format: str = "auto"
    use_sentence_keys: bool = False
    dtype: str = "float32"
    output_format: str = "auto"
    encoding_errors: str = "strict"
    overwrite: bool = False
    restart: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.layers, str) and not self.layers.isdigit() and self.layers not in NAMED_LAYERS:
            raise EmbedError(f"layers must be one of {', '.join(NAMED_LAYERS)} or a layer number, got {self.layers!r}")
        if self.pool not in (None, *POOLINGS):
            raise EmbedError(f"pool must be none, mean or max, got {self.pool!r}")
        for name in ("batch_size", "window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise EmbedError(f"{name} must be a positive integer, got {value!r}")
        for name, choices in (
            ("input_format", INPUT_FORMATS),
            ("dtype", OUTPUT_DTYPES),
            ("output_format", OUTPUT_FORMATS),
            ("encoding_errors", ENCODING_ERRORS),
        ):
            if getattr(self, name) not in choices:
                raise EmbedError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.mix_weights is not None:
            object.__setattr__(self, "mix_weights", tuple(float(weight) for weight in self.mix_weights))


@dataclass
class InputLine:
    """One input line: its 0-based index, raw bytes (for the window hash), sentence text and, when the input
    gives them, its words (else the tokenizer splits `sentence`)."""

    index: int
    raw: bytes
    sentence: str
    words: list[str] | None
