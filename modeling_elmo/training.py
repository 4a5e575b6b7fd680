"""Training the ELMo biLM as a language model (`elmo train`), on the Hugging Face `Trainer`.

Data
----
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

Engine
------
`LanguageModelTrainer` is a `transformers.Trainer`: the same command runs on one CPU or GPU, under `torchrun` or
`accelerate launch` across GPUs and nodes (DDP), with mixed precision (`mixed_precision="bf16"` / `"fp16"`) and
gradient accumulation. Defaults follow the original: Adagrad (learning rate 0.2, initial accumulator 1.0),
gradient clipping to global norm 10, dropout 0.1, 8192 sampled negatives.

Checkpoints (`OUTPUT/checkpoints/checkpoint-N`) hold what the `Trainer` saves (weights, optimizer, scheduler, every
rank's random state, the step) plus every rank's carried LSTM state (`elmo_stream_state_{rank}.pt`); on resume
the streams are fast-forwarded to the checkpoint's position, so a resumed run continues exactly where the
interrupted one was. A loss that becomes NaN or infinite on any rank stops all ranks with an error naming the
step, before anything is saved from it.
"""

from __future__ import annotations

import bisect
import ctypes
import json
import math
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from safetensors import SafetensorError, safe_open
from torch.utils.data import DataLoader, IterableDataset
from transformers import Trainer, TrainerCallback, TrainerState, TrainingArguments, set_seed
from transformers.trainer_pt_utils import safe_globals
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import SAFE_WEIGHTS_NAME, cached_file

from modeling_elmo.configuration_elmo import ElmoConfig
from modeling_elmo.conversion.folder import naming_os_errors
from modeling_elmo.embed import loading_model, one_line, weights_file_problem
from modeling_elmo.modeling_elmo import LM_IGNORE_INDEX, ElmoForBidirectionalLM, ElmoModel
from modeling_elmo.tokenization_elmo import ElmoTokenizer, bos_char_ids, eos_char_ids, word_to_char_ids
from modeling_elmo.training_config import TrainingSettings, load_run_config
from modeling_elmo.vocabulary import (
    BEGIN_OF_SENTENCE,
    END_OF_SENTENCE,
    CorpusCounts,
    LanguageModelError,
    Vocabulary,
    read_lines,
    read_vocabulary,
    word_splitter,
)

CHECKPOINTS_DIR = "checkpoints"
RUN_FILE = "training_run.json"
LOG_FILE = "training_log.jsonl"
SUMMARY_FILE = "training_summary.json"
STREAM_STATE_FILE = "elmo_stream_state_{rank}.pt"
TRAINER_STATE_FILE = "trainer_state.json"
CHECKPOINT_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
UNREAD_CHECKPOINT_PICKLES = ("training_args.bin",)  # saved by the Trainer, never read on resume


class TrainingDivergedError(LanguageModelError):
    """The loss became NaN or infinite."""


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
        counts = CorpusCounts()
        for path in self.paths:
            for _, text in read_lines(path):
                words = self.split(text)
                if words:
                    counts.add(words)
        return counts

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


# ---- The Trainer ----


class LanguageModelTrainer(Trainer):
    """`Trainer` for `ElmoForBidirectionalLM` on `TrainingBatches`: ordered per-process batches, Adagrad with the
    original's initial accumulator, NaN/inf detection across ranks, tokens/s and perplexities in the logs, and the
    carried LSTM state in checkpoints."""

    def __init__(self, *args: Any, settings: TrainingSettings, steps_per_epoch: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.steps_per_epoch = steps_per_epoch
        self._log_sums = torch.zeros(4, dtype=torch.float64)
        self._last_log_time = time.perf_counter()

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        with _resuming_from(resume_from_checkpoint, "the model weights"):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        """The `Trainer`'s, and a check that every per-parameter state has its parameter's shape (torch checks
        the number of parameters only; another model's state would fail in the first step)."""
        with _resuming_from(checkpoint, "the optimizer or scheduler state"):
            super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        for group in self.optimizer.param_groups:
            for parameter in group["params"]:
                for name, value in self.optimizer.state.get(parameter, {}).items():
                    if isinstance(value, torch.Tensor) and value.dim() and value.shape != parameter.shape:
                        raise LanguageModelError(
                            f"cannot resume from {checkpoint}: the optimizer state does not fit this training "
                            f"(its {name!r} has shape {tuple(value.shape)}, its parameter {tuple(parameter.shape)})"
                        )

    def _load_rng_state(self, checkpoint: str | None) -> None:
        with _resuming_from(checkpoint, "the random number generators' state"):
            super()._load_rng_state(checkpoint)

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """The `Trainer`'s, after this rank's carried LSTM state (packed streams), so that `trainer_state.json`,
        which the `Trainer` writes last, marks a complete checkpoint. A checkpoint that cannot be written (a full
        disk) is removed, and the training stops with an error."""
        folder = Path(self.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        try:
            if self.settings.packing == "packed":
                _save_stream_state(self.model, folder, self.state.global_step, self.args.process_index)
            super()._save_checkpoint(model, trial)
        except (OSError, RuntimeError, SafetensorError) as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise LanguageModelError(
                f"cannot write the checkpoint {folder} ({one_line(error)}); it was removed: make room, then --resume "
                "continues from the last complete checkpoint"
            ) from None

    def get_train_dataloader(self) -> DataLoader:
        """The batches as the dataset yields them (already per process, already batched, in order)."""
        return DataLoader(self.train_dataset, batch_size=None, num_workers=0)

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is None and self.settings.optimizer == "adagrad":
            parameters = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
            self.optimizer = torch.optim.Adagrad(
                parameters,
                lr=self.args.learning_rate,
                initial_accumulator_value=self.settings.adagrad_initial_accumulator,
            )
        return super().create_optimizer(model)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        outputs = model(**inputs)
        counts = outputs.num_targets.detach().double().cpu()
        self._log_sums += torch.stack(
            [
                outputs.forward_loss.detach().double().cpu() * counts[0],
                outputs.backward_loss.detach().double().cpu() * counts[1],
                counts[0],
                counts[1],
            ]
        )
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        bad = torch.tensor([0.0 if torch.isfinite(loss).item() else 1.0], device=loss.device)
        if self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        if bad.item():
            raise TrainingDivergedError(
                f"the training loss became NaN or infinite at step {self.state.global_step + 1} "
                f"(on {int(bad.item())} of {self.accelerator.num_processes} process(es); this process's loss: "
                f"{loss.item()}); nothing was saved from this step. Lower the learning rate (--learning-rate), "
                "or resume from the last checkpoint (--resume)"
            )
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the perplexity of each direction, their average (exp of the mean loss), the tokens per second (the
        forward predictions of all processes: words and sentence ends) since the last log, and the largest resident
        memory of any process (`resident_memory_mb`, current; where /proc is missing, its peak) to the logs."""
        if "loss" in logs:
            sums = self._log_sums.to(self.args.device)
            memory = torch.tensor([resident_memory_mb()], dtype=torch.float64, device=self.args.device)
            if self.accelerator.num_processes > 1:
                sums = self.accelerator.reduce(sums, reduction="sum")
                memory = self.accelerator.gather(memory)
            logs["resident_memory_mb"] = round(memory.max().item(), 1)
            forward_sum, backward_sum, forward_count, backward_count = sums.cpu().tolist()
            now = time.perf_counter()
            if forward_count and backward_count:
                forward_loss, backward_loss = forward_sum / forward_count, backward_sum / backward_count
                logs["forward_perplexity"] = round(math.exp(min(forward_loss, 700.0)), 3)
                logs["backward_perplexity"] = round(math.exp(min(backward_loss, 700.0)), 3)
                logs["perplexity"] = round(math.exp(min((forward_loss + backward_loss) / 2, 700.0)), 3)
                logs["tokens_per_second"] = round(forward_count / max(now - self._last_log_time, 1e-9), 1)
            self._log_sums.zero_()
            self._last_log_time = now
        self.state.epoch = round(self.state.global_step / self.steps_per_epoch, 4)  # passes over the corpus
        super().log(logs, start_time)


def resident_memory_mb() -> float:
    """This process's resident memory in MiB: the current size from /proc/self/statm on Linux, else the peak."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


def release_free_heap_memory() -> bool:
    """Return the C heap's free pages to the system (glibc's `malloc_trim(0)`); False where the C library has
    no `malloc_trim` (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


class HeapTrimCallback(TrainerCallback):
    """Calls `release_free_heap_memory` every `every` optimizer steps.

    Without it, a training process's resident memory grows without bound on glibc although its live heap does
    not: once a first large block is freed, glibc raises its mmap threshold and serves the step's short-lived
    buffers of up to 32 MB (softmax logits, DDP buckets) from its heap, and the free space between them stays
    resident. A 2-process run of the shipped recipe grew from 0.8 to 2 GB per process in 2,000 steps (and was
    killed at 20 GB after 7,600), with the live heap flat at 260 MB; trimming every 100 steps kept it under 1.6
    GB for all of the recipe's 14,000 steps, at no measurable cost in speed."""

    def __init__(self, every: int = 100) -> None:
        self.every = every

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.every == 0:
            release_free_heap_memory()


class RunFilesCallback(TrainerCallback):
    """Writes the main process's logs to `training_log.jsonl`."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir

    def on_log(self, args: TrainingArguments, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if state.is_world_process_zero and logs:
            path = self.output_dir / LOG_FILE
            with naming_os_errors(path), open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": state.global_step, **logs}) + "\n")


def _save_stream_state(model: ElmoForBidirectionalLM, folder: Path, global_step: int, rank: int) -> None:
    """Write this rank's carried LSTM state into the checkpoint `folder` (under a temporary name, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    carried = model.elmo._carried_state
    payload = {"global_step": global_step, "cell": None, "hidden": None}
    if carried is not None:
        payload.update(cell=carried[0].detach().cpu(), hidden=carried[1].detach().cpu())
    target = folder / STREAM_STATE_FILE.format(rank=rank)
    torch.save(payload, target.with_suffix(".tmp"))
    os.replace(target.with_suffix(".tmp"), target)


# ---- Running ----


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


def train_language_model(
    corpus: CorpusSpec,
    output_dir: str | os.PathLike,
    vocab: str | os.PathLike | None = None,
    config_path: str | os.PathLike | None = None,
    preset: str | None = None,
    init_from: str | None = None,
    overrides: dict[str, Any] | None = None,
    resume: bool | str = False,
    overwrite: bool = False,
    progress: bool = True,
    prime_from: str | os.PathLike | None = None,
) -> Path:
    """Train (or continue training) an `ElmoForBidirectionalLM` and save it into `output_dir` (see the module
    docstring). Returns the output folder, which then holds the model (config, safetensors, `vocab.txt`,
    tokenizer, remote code), `training_run.json`, `training_log.jsonl`, `training_summary.json` and the
    `checkpoints/`.

    Args:
        corpus: the training text.
        vocab: a vocabulary file (`elmo build-vocab`); optional with `init_from` a language model.
        config_path, preset: the architecture and training settings (`load_run_config`); with `init_from` the
            architecture comes from that model.
        init_from: a model folder or Hub id to start from (a converted biLM, or a language model).
        overrides: training settings that override the config's (the CLI's options).
        resume: continue from the last checkpoint in `output_dir` (True) or from this checkpoint folder.
        overwrite: allow a non-empty `output_dir` when not resuming (its old checkpoints are removed).
        prime_from: after training, compute the `"primed"` initial state from this text file (one sentence per line,
            split like the corpus) and save it with the model.
    """
    output_dir = Path(output_dir)
    model_fields, settings_values = load_run_config(config_path, preset)
    settings_values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        settings = TrainingSettings(**settings_values)
    except TypeError as error:
        raise LanguageModelError(f"bad training settings: {error}") from error
    settings.validate()
    arguments = _training_arguments(settings, output_dir, progress)  # sets up the processes of a distributed run
    world_size, rank = arguments.world_size, arguments.process_index
    state = PartialState()
    checkpoint = _resolve_output_dir(output_dir, resume, overwrite)
    if checkpoint is not None:
        _check_checkpoint_files(checkpoint)
    state.wait_for_everyone()  # every process has checked the folder before the main process changes it
    if prime_from is not None:  # read after the training: check it before
        _priming_sentences(prime_from, word_splitter(corpus.tokenized))
    source = corpus.open()
    counts = source.count()
    if not counts.sentences:
        raise LanguageModelError(f"the corpus ({', '.join(source.describe())}) holds no sentences")

    set_seed(settings.seed)
    model, vocabulary = _initial_model(model_fields, vocab, init_from, settings)
    run = {
        "corpus": source.describe(),
        "tokenized": corpus.tokenized,
        "vocabulary_size": len(vocabulary),
        "init_from": init_from,
        "settings": asdict(settings),
        "corpus_sentences": counts.sentences,
        "corpus_tokens": counts.tokens + counts.sentences,
    }
    steps_per_epoch = _steps_per_epoch(settings, counts, world_size)
    max_steps = settings.max_steps or max(1, math.ceil(settings.epochs * steps_per_epoch))
    arguments.max_steps = max_steps
    run.update(world_size=world_size, max_steps=max_steps)
    if checkpoint is not None:
        _check_resumable(output_dir, run, checkpoint)
    elif state.is_main_process:  # only now: a bad corpus or model leaves the folder as it was
        _clear_output_dir(output_dir)
        _write_json(output_dir / RUN_FILE, run)
    state.wait_for_everyone()

    dataset = TrainingBatches(
        source, TokenEncoder(vocabulary, model.config.max_characters_per_token), settings, rank, world_size
    )
    tokenizer = ElmoTokenizer(max_characters_per_token=model.config.max_characters_per_token)
    trainer = LanguageModelTrainer(
        model=model,
        args=arguments,
        train_dataset=dataset,
        settings=settings,
        steps_per_epoch=steps_per_epoch,
        callbacks=[RunFilesCallback(output_dir), HeapTrimCallback()],
    )
    if checkpoint is not None:
        _check_checkpoint_weights(checkpoint, model)
        dataset.skip_batches = _restore_streams(model, checkpoint, rank, settings, arguments.device)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    seconds = time.time() - start

    model.reset_states()
    model.config.state_mode = "stateless"
    if prime_from is not None:
        _prime(model, tokenizer, prime_from, corpus.tokenized, settings.batch_size)
    if state.is_main_process:
        _save_final_model(model, tokenizer, output_dir)
        summary = {
            **run,
            "global_step": result.global_step,
            "train_seconds_this_run": round(seconds, 1),
            "final_log": next((entry for entry in reversed(trainer.state.log_history) if "perplexity" in entry), None),
        }
        _write_json(output_dir / SUMMARY_FILE, summary)
    state.wait_for_everyone()
    return output_dir


def _resolve_output_dir(output_dir: Path, resume: bool | str, overwrite: bool) -> Path | None:
    """Check the output folder (without changing it); returns the checkpoint to resume from, if any."""
    checkpoints = output_dir / CHECKPOINTS_DIR
    if resume:
        if isinstance(resume, str):
            checkpoint = Path(resume)
            if not checkpoint.is_dir():
                raise LanguageModelError(f"the checkpoint {checkpoint} does not exist")
            return checkpoint
        last = _last_complete_checkpoint(checkpoints)
        if last is None:
            raise LanguageModelError(f"no checkpoint to resume from in {checkpoints}")
        return last
    if output_dir.exists() and not output_dir.is_dir():
        raise LanguageModelError(f"{output_dir} exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise LanguageModelError(
            f"{output_dir} is not empty: pass --resume to continue its training or --overwrite to start again"
        )
    return None


def _last_complete_checkpoint(checkpoints: Path) -> Path | None:
    """The checkpoint of the highest step whose `trainer_state.json` (the last file written) is readable: a
    checkpoint without one was interrupted while it was written."""
    complete = []
    for folder in checkpoints.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if checkpoints.is_dir() else ():
        step = folder.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        try:
            if step.isdigit() and folder.is_dir():
                TrainerState.load_from_json(str(folder / TRAINER_STATE_FILE))
                complete.append((int(step), folder))
        except (OSError, ValueError, TypeError, RecursionError):
            continue
    return max(complete)[1] if complete else None


def _clear_output_dir(output_dir: Path) -> None:
    """Create the output folder, or remove an earlier run's checkpoints and records from it (--overwrite)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(output_dir / CHECKPOINTS_DIR, ignore_errors=True)
    for name in (RUN_FILE, LOG_FILE, SUMMARY_FILE):
        (output_dir / name).unlink(missing_ok=True)


def _initial_model(
    model_fields: dict[str, Any], vocab: str | os.PathLike | None, init_from: str | None, settings: TrainingSettings
) -> tuple[ElmoForBidirectionalLM, Vocabulary]:
    """A new language model (architecture `model_fields`) or one initialised from `init_from`, with its
    vocabulary. From a language model with the same vocabulary, everything is kept; with another vocabulary (or
    from a biLM without softmax) the biLM is kept, and the softmax rows of words the two vocabularies share are
    copied."""
    vocabulary = read_vocabulary(vocab) if vocab is not None else None
    lm_fields = {"lm_num_sampled": settings.num_sampled, "lm_dropout": settings.dropout}
    if init_from is None:
        if vocabulary is None:
            raise LanguageModelError("--vocab is needed to train a new model (make one with `elmo build-vocab`)")
        try:
            config = ElmoConfig(**model_fields, **vocabulary.config_fields(), **lm_fields)
        except (TypeError, ValueError) as error:
            raise LanguageModelError(f"bad model configuration: {error}") from error
        model = ElmoForBidirectionalLM(config)
        model.vocabulary = list(vocabulary.words)
        return model, vocabulary
    with loading_model(init_from, LanguageModelError):
        source_config = ElmoConfig.from_pretrained(init_from)
        is_language_model = source_config.lm_vocab_size and _holds_softmax(init_from)
        source_lm = ElmoForBidirectionalLM.from_pretrained(init_from) if is_language_model else None
        bilm = source_lm.elmo if source_lm is not None else ElmoModel.from_pretrained(init_from)
    if vocabulary is None:
        if source_lm is None or source_lm.vocabulary is None:
            raise LanguageModelError(f"{init_from} has no word vocabulary: pass --vocab")
        vocabulary = Vocabulary(source_lm.vocabulary, source=f"{init_from}/vocab.txt")
    config = ElmoConfig.from_dict(bilm.config.to_dict())
    for name, value in {**vocabulary.config_fields(), **lm_fields, "state_mode": "stateless"}.items():
        setattr(config, name, value)
    config.validate_elmo()
    model = ElmoForBidirectionalLM(config)
    model.elmo.load_state_dict(bilm.state_dict())
    model.elmo.primed_cell_state.zero_()
    model.elmo.primed_hidden_state.zero_()
    model.vocabulary = list(vocabulary.words)
    if source_lm is not None and source_lm.vocabulary is not None:
        source_rows = {word: row for row, word in enumerate(source_lm.vocabulary)}
        pairs = [(row, source_rows[word]) for row, word in enumerate(vocabulary.words) if word in source_rows]
        if pairs:
            target, origin = (torch.tensor(indices) for indices in zip(*pairs, strict=True))
            with torch.no_grad():
                model.softmax.weight[target] = source_lm.softmax.weight[origin].to(model.softmax.weight.dtype)
                model.softmax.bias[target] = source_lm.softmax.bias[origin].to(model.softmax.bias.dtype)
    return model, vocabulary


def _holds_softmax(model: str) -> bool:
    """Whether the safetensors weights of `model` (a folder or Hub id) hold the language model's softmax: a biLM
    saved from a language model (`model.elmo.save_pretrained`) keeps the vocabulary in its config, not the softmax.
    Pickled weights (no safetensors file) are taken to hold what the config says."""
    weights = cached_file(model, SAFE_WEIGHTS_NAME, _raise_exceptions_for_missing_entries=False)
    if weights is None:
        return True
    with safe_open(weights, framework="pt") as handle:
        return "softmax.weight" in handle.keys()  # noqa: SIM118 (a safetensors handle is not iterable)


def _training_arguments(settings: TrainingSettings, output_dir: Path, progress: bool) -> TrainingArguments:
    optimizer = {"optim": "adamw_torch"} if settings.optimizer == "adamw" else {}
    return TrainingArguments(
        output_dir=str(output_dir / CHECKPOINTS_DIR),
        max_steps=max(settings.max_steps, 1),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        weight_decay=0.0,
        max_grad_norm=settings.max_grad_norm,
        logging_strategy="steps",
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        seed=settings.seed,
        bf16=settings.mixed_precision == "bf16",
        fp16=settings.mixed_precision == "fp16",
        report_to="none",
        # Without an accelerator, say so: Accelerate then runs several processes as CPU DDP (gloo).
        use_cpu=not (torch.cuda.is_available() or torch.backends.mps.is_available()),
        disable_tqdm=not progress,
        ignore_data_skip=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        **optimizer,
    )


def _steps_per_epoch(settings: TrainingSettings, counts: CorpusCounts, world_size: int) -> float:
    """Optimizer steps per pass over the corpus (tokens of the packed streams, or sentences)."""
    per_step = world_size * settings.batch_size * settings.gradient_accumulation_steps
    if settings.packing == "packed":
        return (counts.tokens + counts.sentences) / (per_step * settings.unroll_steps)
    return counts.sentences / per_step


def _check_resumable(output_dir: Path, run: dict[str, Any], checkpoint: Path) -> None:
    """Refuse to resume with other data or another layout of the streams than the interrupted run's."""
    path = output_dir / RUN_FILE
    if not path.is_file():
        raise LanguageModelError(f"{path} is missing: cannot check that {checkpoint} belongs to this training")
    try:
        before = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise LanguageModelError(
            f"{path} is unreadable ({error}): cannot check that {checkpoint} belongs to this training"
        ) from None
    if not isinstance(before, dict):
        raise LanguageModelError(f"{path} must hold a JSON object")
    keys = ["corpus", "tokenized", "vocabulary_size", "world_size", "corpus_tokens"]
    keys += [f"settings.{name}" for name in ("batch_size", "unroll_steps", "packing", "gradient_accumulation_steps")]
    for key in keys:
        old, new = before, run
        for part in key.split("."):
            old, new = old.get(part), new.get(part)
        if old != new:
            raise LanguageModelError(f"cannot resume {checkpoint}: {key} was {old!r}, now {new!r}")


def _check_checkpoint_files(checkpoint: Path) -> None:
    """Refuse a checkpoint that the `Trainer` would fail on with a traceback, before anything else is done: its
    `trainer_state.json` must be the `Trainer`'s, its weights file must be there, every pickle (`*.pt`, `*.pth`,
    `*.bin`) must be one that `torch.load(weights_only=True)` reads (tensors, plain containers and the NumPy
    arrays of the random states: the `Trainer`'s own allow-list; a pickle's code is never run; the tensors are
    memory-mapped, not read), every safetensors file must have a valid header."""
    path = checkpoint / TRAINER_STATE_FILE
    if not path.is_file():
        raise LanguageModelError(f"{checkpoint} is not a complete checkpoint (no {TRAINER_STATE_FILE})")
    try:
        trainer_state = TrainerState.load_from_json(str(path))
    except (OSError, ValueError, TypeError, RecursionError) as error:
        raise LanguageModelError(f"{path} is not a Trainer state ({one_line(error)})") from None
    if isinstance(trainer_state.global_step, bool) or not isinstance(trainer_state.global_step, int):
        raise LanguageModelError(f"{path}: global_step must be an integer, got {trainer_state.global_step!r}")
    if not any((checkpoint / name).is_file() for name in CHECKPOINT_WEIGHTS_FILES):
        raise LanguageModelError(f"{checkpoint} has no model weights ({' or '.join(CHECKPOINT_WEIGHTS_FILES)})")
    files = sorted(
        path
        for path in checkpoint.iterdir()
        if path.suffix in (".pt", ".pth", ".bin", ".safetensors") and path.name not in UNREAD_CHECKPOINT_PICKLES
    )
    with safe_globals():
        problem = next(filter(None, map(weights_file_problem, files)), None)
    if problem is not None:
        raise LanguageModelError(f"cannot resume from {checkpoint}: {problem}")


def _check_checkpoint_weights(checkpoint: Path, model: ElmoForBidirectionalLM) -> None:
    """Refuse checkpoint weights that lack a tensor of `model`, hold one it does not have, or one of another shape
    (the `Trainer` would load what fits and leave the rest as it is)."""
    path = next(checkpoint / name for name in CHECKPOINT_WEIGHTS_FILES if (checkpoint / name).is_file())
    if path.suffix == ".safetensors":
        with safe_open(path, framework="pt") as weights:
            names = weights.keys()
            shapes = {name: tuple(weights.get_slice(name).get_shape()) for name in names}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
        if not isinstance(state, dict):
            raise LanguageModelError(f"{path} is not a state dict: it holds a {type(state).__name__}")
        shapes = {name: tuple(getattr(tensor, "shape", ())) for name, tensor in state.items()}
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    problems = [f"{name} is missing" for name in expected if name not in shapes]
    problems += [f"{name} is not one of the model's" for name in shapes if name not in expected]
    problems += [
        f"{name} has shape {shapes[name]}, the model's {shape}"
        for name, shape in expected.items()
        if name in shapes and shapes[name] != shape
    ]
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise LanguageModelError(f"{path} does not fit the model: {'; '.join(problems[:5])}{more}")


@contextmanager
def _resuming_from(checkpoint: str | None, part: str) -> Iterator[None]:
    """Turn the `Trainer`'s failure to restore `part` of a checkpoint (state of another model or optimizer) into a
    `LanguageModelError` naming the checkpoint."""
    try:
        yield
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError, SafetensorError) as error:
        raise LanguageModelError(
            f"cannot resume from {checkpoint}: {part} does not fit this training ({one_line(error)})"
        ) from None


def _restore_streams(
    model: ElmoForBidirectionalLM, checkpoint: Path, rank: int, settings: TrainingSettings, device: torch.device
) -> int:
    """Restore this rank's carried LSTM state from `checkpoint`; returns the batches to skip in the streams."""
    global_step = TrainerState.load_from_json(str(checkpoint / TRAINER_STATE_FILE)).global_step
    if settings.packing == "packed":
        path = checkpoint / STREAM_STATE_FILE.format(rank=rank)
        if not path.is_file():
            raise LanguageModelError(f"{path} is missing: the checkpoint was written by another number of processes")
        saved = torch.load(path, map_location="cpu", weights_only=True)  # checked by _check_checkpoint_files
        cell, hidden = _stream_state(saved, path, model, settings.batch_size)
        if cell is not None:
            model.elmo._carried_state = (cell.to(device), hidden.to(device))
    return global_step * settings.gradient_accumulation_steps


def _stream_state(
    saved: Any, path: Path, model: ElmoForBidirectionalLM, batch_size: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The carried (cell, hidden) state of a stream state file, checked against the model and the batch size:
    (L, 2, B, D) and (L, 2, B, P) floating-point tensors, or both None."""
    if not isinstance(saved, dict) or not {"cell", "hidden"} <= saved.keys():
        raise LanguageModelError(f"{path} is not a stream state: it must hold a dict with 'cell' and 'hidden'")
    cell, hidden = saved["cell"], saved["hidden"]
    if cell is None and hidden is None:
        return None, None
    layers, _, cell_dim = model.elmo.primed_cell_state.shape
    projection_dim = model.elmo.primed_hidden_state.shape[-1]
    for name, value, shape in (
        ("cell", cell, (layers, 2, batch_size, cell_dim)),
        ("hidden", hidden, (layers, 2, batch_size, projection_dim)),
    ):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise LanguageModelError(f"{path}: '{name}' must be a floating-point tensor, got {type(value).__name__}")
        if tuple(value.shape) != shape:
            streams = f" ({value.shape[2]} streams, the batch size is {batch_size})" if value.dim() == 4 else ""
            raise LanguageModelError(f"{path}: '{name}' has shape {tuple(value.shape)}, expected {shape}{streams}")
    return cell, hidden


def _prime(
    model: ElmoForBidirectionalLM, tokenizer: ElmoTokenizer, path: str | os.PathLike, tokenized: bool, batch_size: int
) -> None:
    """Set the primed initial state from the sentences of `path`, in batches of `batch_size` rows."""
    sentences = _priming_sentences(path, word_splitter(tokenized))
    model.eval()
    batches = (
        tokenizer(sentences[start : start + batch_size], is_split_into_words=True, padding=True, return_tensors="pt")
        for start in range(0, len(sentences), batch_size)
    )
    model.elmo.prime_states(batches)


def _priming_sentences(path: str | os.PathLike, split: Callable[[str], list[str]]) -> list[list[str]]:
    """The sentences of the `prime_from` file (errors name the file and line)."""
    if Path(path).is_dir():
        raise LanguageModelError(f"--prime-from {path} is a folder, not a file")
    sentences = [words for _, text in read_lines(path) if (words := split(text))]
    if not sentences:
        raise LanguageModelError(f"{path} holds no sentences to prime the state with")
    return sentences


def _save_final_model(model: ElmoForBidirectionalLM, tokenizer: ElmoTokenizer, output_dir: Path) -> None:
    """Save the model into `output_dir` beside the run's files: written into a temporary folder first, then each
    file renamed into place."""
    from modeling_elmo.conversion.folder import save_with_remote_code

    staging = Path(tempfile.mkdtemp(prefix=".model.", dir=output_dir))
    try:
        save_with_remote_code(model, tokenizer, staging)
        for path in staging.iterdir():
            os.replace(path, output_dir / path.name)
    except (OSError, RuntimeError, SafetensorError) as error:
        raise LanguageModelError(
            f"cannot write the trained model into {output_dir} ({one_line(error)}); the checkpoints are kept: make "
            "room, then --resume saves it"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_json(path: Path, values: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with naming_os_errors(path):
            temporary.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
