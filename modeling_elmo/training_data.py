"""The training data of `elmo train`: corpora, and the batches the language model trains on.

The corpus is text files with one sentence per line, read line by line (never loaded whole), or a Hugging Face
`datasets` dataset with a text column (memory-mapped Arrow, read in batches of rows). Words are split by
whitespace (`tokenized`) or by the tokenizer's Moses-style splitting; words outside the vocabulary are `<UNK>`
targets but keep their characters as inputs.

**Packed streams** (the default, as in the original): every batch row is an endless token stream of sentences
wrapped in `<S> … </S>` and packed back to back, and each step gives every row its next window of
`unroll_steps` tokens (plus one token of look-ahead for the last target). The backward direction reads a second
stream built from the same sentences, each reversed (`</S> w_n … w_1 <S>`). The LSTM state is carried per row from
one step to the next and detached (truncated back-propagation through time), so rows must stay the same streams
and batches must come in order: the data is an `IterableDataset` that yields whole batches, read by a plain
`DataLoader` without shuffling or workers.

With P = (number of processes) × (rows per process) streams, stream p starts at the fraction p / P of the corpus
(the byte offset p / P of the concatenated files, at the next line start; row p / P of a dataset) and reads on,
wrapping around at the end. During the first pass over the corpus the P streams therefore read P disjoint,
contiguous segments that cover it exactly once; later passes continue into the next segment. Process r reads
streams r × rows … (r + 1) × rows - 1 and nothing else, so each DDP rank reads its own disjoint streams (the
`Trainer`'s dataloader preparation, which would hand out one global batch to all ranks, is not used).

**Sentences** (`packing="sentences"`): each row is one sentence (at most `max_sentence_words` words), wrapped by
the model, with a zero initial state; a step takes the next `batch_size` sentences of the process's stream.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from modeling_elmo.modeling_elmo import LM_IGNORE_INDEX
from modeling_elmo.text_files import BEGIN_OF_SENTENCE, END_OF_SENTENCE, LanguageModelError, Vocabulary, read_lines
from modeling_elmo.tokenization_elmo import bos_char_ids, eos_char_ids, word_to_char_ids
from modeling_elmo.training_config import TrainingSettings
from modeling_elmo.vocabulary import CorpusCounts, count_files, word_splitter

# ---- Corpora ----


class TextCorpus:
    """Sentence files (one sentence per line) read as one sequence of bytes: a stream starts at any byte offset
    (at the next line start) and wraps around at the end."""

    def __init__(self, paths: Sequence[str | os.PathLike], split: Callable[[str], list[str]]) -> None:
        self.paths = [Path(path) for path in paths]
        if not self.paths:
            raise LanguageModelError("no corpus files given")
        for path in self.paths:
            if path.is_dir():
                raise LanguageModelError(f"the corpus file {path} is a folder, not a file")
            if not path.is_file():
                raise LanguageModelError(f"the corpus file {path} does not exist")
        sizes = [path.stat().st_size for path in self.paths]
        self.starts = [sum(sizes[:index]) for index in range(len(sizes))]
        self.total_bytes = sum(sizes)
        self.split = split

    def describe(self) -> list[str]:
        return [str(path) for path in self.paths]

    def count(self) -> CorpusCounts:
        """Read every line once (reporting bad UTF-8 with its file and line) and count sentences and words."""
        return count_files(self.paths, self.split)

    def sentences(self, part: int, num_parts: int) -> Iterator[list[str]]:
        """The endless sentence stream that starts at the fraction `part / num_parts` of the corpus."""
        offset = part * self.total_bytes // num_parts
        yield from self._sentences_from(offset)
        while True:
            yield from self._sentences_from(0)

    def _sentences_from(self, offset: int) -> Iterator[list[str]]:
        """The sentences from the first line that starts at or after byte `offset` to the end of the corpus."""
        first = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        for index in range(first, len(self.paths)):
            start = offset - self.starts[index] if index == first else 0
            if start > 0:
                with open(self.paths[index], "rb") as handle:
                    handle.seek(start - 1)
                    if handle.read(1) != b"\n":
                        handle.readline()
                    start = handle.tell()
            for _, text in read_lines(self.paths[index], start):
                words = self.split(text)
                if words:
                    yield words


class DatasetCorpus:
    """A Hugging Face `datasets.Dataset` whose `column` holds one sentence per row (a string, or a list of words);
    a stream starts at any row and wraps around at the end."""

    def __init__(self, dataset: Any, column: str, split: Callable[[str], list[str]], name: str) -> None:
        if column not in dataset.column_names:
            raise LanguageModelError(
                f"the dataset {name} has no column {column!r}; its columns: {dataset.column_names}"
            )
        if len(dataset) == 0:
            raise LanguageModelError(f"the dataset {name} has no rows")
        self.dataset, self.column, self.split, self.name = dataset, column, split, name

    def describe(self) -> list[str]:
        return [f"{self.name} (column {self.column!r}, {len(self.dataset)} rows)"]

    def count(self) -> CorpusCounts:
        counts = CorpusCounts()
        for words in self._rows(0):
            if words:
                counts.add(words)
        return counts

    def sentences(self, part: int, num_parts: int) -> Iterator[list[str]]:
        yield from (words for words in self._rows(part * len(self.dataset) // num_parts) if words)
        while True:
            yield from (words for words in self._rows(0) if words)

    def _rows(self, start: int) -> Iterator[list[str]]:
        rows = self.dataset.select(range(start, len(self.dataset))) if start else self.dataset
        for batch in rows.select_columns([self.column]).iter(batch_size=1000):
            for number, value in enumerate(batch[self.column]):
                if isinstance(value, str):
                    yield self.split(value)
                elif isinstance(value, list) and all(isinstance(word, str) for word in value):
                    yield [word for word in value if word.strip()]
                else:
                    raise LanguageModelError(
                        f"the dataset {self.name}: column {self.column!r} must hold strings or lists of words, "
                        f"got {type(value).__name__} near row {start + number}"
                    )


def load_dataset_corpus(
    name: str, config_name: str | None, split_name: str, column: str, split: Callable[[str], list[str]]
) -> DatasetCorpus:
    """A `DatasetCorpus` from a folder written by `Dataset.save_to_disk` or from `datasets.load_dataset` (a Hub
    name or a loading script; uses the local cache when offline)."""
    try:
        import datasets
    except ImportError:
        raise LanguageModelError(
            "--dataset needs the datasets package: pip install 'modeling-elmo[datasets]'"
        ) from None
    path = Path(name)
    try:
        if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split_name not in loaded:
                    raise LanguageModelError(f"the dataset {name} has no split {split_name!r}: {list(loaded)}")
                loaded = loaded[split_name]
        else:
            loaded = datasets.load_dataset(name, config_name, split=split_name)
    except (OSError, ValueError, FileNotFoundError) as error:
        raise LanguageModelError(f"cannot load the dataset {name}: {error}") from error
    return DatasetCorpus(loaded, column, split, name)


@dataclass
class CorpusSpec:
    """Where the training text comes from: `files`, or a dataset (`dataset`, `dataset_config`, `dataset_split`,
    `text_column`); `tokenized` selects whitespace splitting."""

    files: list[str] | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    dataset_split: str = "train"
    text_column: str = "text"
    tokenized: bool = False

    def open(self) -> TextCorpus | DatasetCorpus:
        split = word_splitter(self.tokenized)
        if (self.files is None) == (self.dataset is None):
            raise LanguageModelError("give the training text as corpus files or as a dataset (one of them)")
        if self.files is not None:
            return TextCorpus(self.files, split)
        return load_dataset_corpus(self.dataset, self.dataset_config, self.dataset_split, self.text_column, split)


# ---- Encoding and batches ----


class TokenEncoder:
    """Word → (vocabulary id, character ids), cached; `<S>` and `</S>` get the sentence markers' character rows."""

    CACHE_LIMIT = 1 << 20

    def __init__(self, vocabulary: Vocabulary, max_characters_per_token: int) -> None:
        self.vocabulary = vocabulary
        self.max_characters_per_token = max_characters_per_token
        self._cache: dict[str, tuple[int, np.ndarray]] = {}
        self._markers = {
            BEGIN_OF_SENTENCE: (vocabulary.index[BEGIN_OF_SENTENCE], bos_char_ids(max_characters_per_token)),
            END_OF_SENTENCE: (vocabulary.index[END_OF_SENTENCE], eos_char_ids(max_characters_per_token)),
        }

    def _entry(self, word: str) -> tuple[int, np.ndarray]:
        entry = self._cache.get(word)
        if entry is None:
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            if word in self._markers:
                word_id, chars = self._markers[word]
            else:
                word_id, chars = self.vocabulary.word_id(word), word_to_char_ids(word, self.max_characters_per_token)
            entry = (word_id, np.asarray(chars, dtype=np.int16))
            self._cache[word] = entry
        return entry

    def encode(self, rows: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Equal-length rows of tokens → (B, T) word ids and (B, T, C) int16 character ids."""
        entries = [self._entry(token) for row in rows for token in row]
        shape = (len(rows), len(rows[0]) if rows else 0)
        word_ids = torch.tensor([word_id for word_id, _ in entries], dtype=torch.long).view(shape)
        chars = torch.from_numpy(np.stack([chars for _, chars in entries])).view(*shape, -1)
        return word_ids, chars

    def sentence_batch(self, sentences: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Sentences (words only) → `input_ids` (B, T, C), `attention_mask` (B, T) and `labels` (B, T), padded."""
        width = max(len(sentence) for sentence in sentences)
        rows = [list(sentence) + [sentence[0]] * (width - len(sentence)) for sentence in sentences]
        word_ids, chars = self.encode(rows)
        mask = torch.tensor([[1] * len(sentence) + [0] * (width - len(sentence)) for sentence in sentences])
        return {
            "input_ids": chars * mask[..., None].to(chars.dtype),
            "attention_mask": mask,
            "labels": word_ids.masked_fill(mask == 0, LM_IGNORE_INDEX),
        }


class PackedStream:
    """One row of packed training data: sentences wrapped in `<S> … </S>` back to back (forward stream) and the
    same sentences reversed (backward stream), cut into windows of `unroll_steps + 1` tokens that overlap by one."""

    def __init__(self, sentences: Iterator[list[str]], unroll_steps: int) -> None:
        self.sentences = sentences
        self.unroll_steps = unroll_steps
        self.forward: list[str] = []
        self.backward: list[str] = []

    def next_window(self) -> tuple[list[str], list[str]]:
        while len(self.forward) <= self.unroll_steps:
            words = next(self.sentences)
            self.forward += [BEGIN_OF_SENTENCE, *words, END_OF_SENTENCE]
            self.backward += [END_OF_SENTENCE, *reversed(words), BEGIN_OF_SENTENCE]
        window = self.unroll_steps + 1
        forward, backward = self.forward[:window], self.backward[:window]
        del self.forward[: self.unroll_steps], self.backward[: self.unroll_steps]
        return forward, backward


class TrainingBatches(IterableDataset):
    """The batches of one process, in order (see the module docstring). `skip_batches` fast-forwards the streams
    without encoding (set when resuming)."""

    def __init__(
        self,
        corpus: TextCorpus | DatasetCorpus,
        encoder: TokenEncoder,
        settings: TrainingSettings,
        rank: int,
        world_size: int,
    ) -> None:
        self.corpus, self.encoder, self.settings = corpus, encoder, settings
        self.rank, self.world_size = rank, world_size
        self.skip_batches = 0

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self._packed() if self.settings.packing == "packed" else self._sentences()

    def _packed(self) -> Iterator[dict[str, torch.Tensor]]:
        rows, parts = self.settings.batch_size, self.world_size * self.settings.batch_size
        streams = [
            PackedStream(self.corpus.sentences(self.rank * rows + row, parts), self.settings.unroll_steps)
            for row in range(rows)
        ]
        for _ in range(self.skip_batches):
            for stream in streams:
                stream.next_window()
        while True:
            windows = [stream.next_window() for stream in streams]
            labels, input_ids = self.encoder.encode([forward for forward, _ in windows])
            backward_labels, backward_input_ids = self.encoder.encode([backward for _, backward in windows])
            yield {
                "input_ids": input_ids,
                "labels": labels,
                "backward_input_ids": backward_input_ids,
                "backward_labels": backward_labels,
            }

    def _sentences(self) -> Iterator[dict[str, torch.Tensor]]:
        rows, limit = self.settings.batch_size, self.settings.max_sentence_words
        sentences = self.corpus.sentences(self.rank, self.world_size)
        for _ in range(self.skip_batches * rows):
            next(sentences)
        while True:
            yield self.encoder.sentence_batch([next(sentences)[:limit] for _ in range(rows)])
