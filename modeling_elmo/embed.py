"""`elmo embed`: a text file → one HDF5 dataset of ELMo vectors per line (or one Parquet row per line), resumable
after an interruption, in one process or shared by the processes of a `torchrun` / `accelerate launch`.

HDF5 output layout (that of the old `allennlp elmo` command, so existing readers work unchanged):

- one dataset per input line, named by its 0-based line index (`"0"`, `"1"`, …) or, with `use_sentence_keys`,
  by the sentence itself; shape (L + 1, words, 2P) for `layers="all"`, (words, 2P) for every other choice,
  (L + 1, 2P) / (2P,) with `pool`; a blank line gives zero words ((L + 1, 0, 2P) or (0, 2P); zeros when pooled);
- `sentence_to_index`: a (1,) string dataset holding the JSON object {sentence: dataset name}
  (`json.loads(f["sentence_to_index"][0])`); a sentence that occurs more than once maps to its first line.
- the datasets are created in input order (the file tracks creation order, so `list(f)` is in input order).

A `.parquet` output (or `output_format="parquet"`) holds one row per line instead: see `modeling_elmo.embed_parquet`.

A "sentence" is the line without its line break and surrounding whitespace. Input: a UTF-8 text file with one
sentence per line (`--tokenized`: words already separated by whitespace), or JSON Lines (`.jsonl`: each line a
string, a list of words, or an object with `"text"` or `"tokens"`); `-` reads standard input. Invalid UTF-8 is
an error naming the line and byte (or, with `encoding_errors="replace"`, becomes U+FFFD); so is a JSON string that
escapes half of a surrogate pair (`"\\ud800"`), which is no Unicode text. With
`use_sentence_keys`, a sentence that cannot name a dataset (empty, `.`, containing `/` or NUL, or
`sentence_to_index`) is an error naming its line, and repeated sentences are stored once (first occurrence).
A Hugging Face dataset column can be the input too (`modeling_elmo.embed_sources.dataset_source`).

Streaming: the input is read one window of `window` lines at a time; inside a window the sentences are sorted by
length into batches (little padding), and each result is written as soon as its batch is done, so memory holds one
window of text and one batch of vectors, whatever the size of the input. Besides that, only the
`sentence_to_index` bookkeeping grows with the input (about 100 bytes per distinct sentence, plus the JSON text at
the very end).

Resumability: all work happens in a folder next to the output, `OUTPUT.parts/`:

1. `job.json` records the model's fingerprint (a hash of its weights, configuration and tokenizer settings) and
   every option that changes the result. A later run with the same output continues that job if its settings are
   the same, and refuses with the differences listed otherwise (`restart` discards the old job).
2. Each window's results go to `window-NNNNNNNN.h5` (`.parquet`), first written under a `.tmp` name, flushed,
   closed, fsynced and only then renamed. A window file under its final name is therefore complete; an interruption
   can only leave a `.tmp` file, which the next run deletes and redoes. Each window file also records a SHA-256 of
   its input lines' bytes: on resume the input is read again (a file or the same standard input), every done window
   is checked against it (a changed input is an error, never a silent mix) and skipped; a window file that is
   unreadable or truncated is redone.
3. When all windows are done, the output is assembled from the window files in input order into
   `OUTPUT.parts/merged.tmp`, fsynced, and renamed onto the output path in one atomic step; then the folder is
   removed. An interruption during assembly only means assembling again.

Distributed: under a launcher (`WORLD_SIZE` > 1; `modeling_elmo.embed_distributed`) every process reads the input,
window i is embedded by rank i mod N, rank 0 starts or checks the job (under the lock) before the others begin and
assembles the output after all are done. The windows, their batches and the assembly are those of one process, so
the output is the same bytes whatever the number of processes (given the same number of CPU threads per process:
oneDNN's products may round a rare vector differently in its last bit under another thread count), and a job
interrupted under one number of processes continues under any other.

A second `elmo embed` on the same output is refused while one runs (an advisory lock on `.OUTPUT.lock`, held by
rank 0 of a distributed job).
A full disk stops the job with an error naming the file; the partly written file is removed and the finished windows
are kept, so that the same command continues once there is space.
So the output file either does not exist (or is the previous file, with `overwrite`) or is complete: there are
no partial datasets, and batches are the same in every run (windows are fixed by line number), so a resumed run
gives exactly the datasets of an uninterrupted one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
import shutil
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from itertools import chain
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import torch
from safetensors import SafetensorError, safe_open

from modeling_elmo.configuration_elmo import ElmoError
from modeling_elmo.conversion.folder import naming_os_errors
from modeling_elmo.embed_distributed import LaunchContext, launch_context, on_every_rank, process_group
from modeling_elmo.embed_hdf5 import Hdf5Windows
from modeling_elmo.embed_options import Embedder, EmbedError, EmbedOptions, InputLine
from modeling_elmo.pipeline_elmo import resolve_layer

if TYPE_CHECKING:
    from modeling_elmo.embed_sources import InputSource

JOB_FORMAT = 1
PARQUET_SUFFIXES = (".parquet", ".pq")
# Settings that older versions did not record in job.json, with the value those versions always used.
SETTINGS_BEFORE_THEY_WERE_RECORDED = {"output_format": "hdf5"}
DISK_FULL_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(errno, name)
)  # a write failed for want of space: no space left, over the quota, or over the largest file size


def _windows(lines: Iterator[InputLine], size: int) -> Iterator[list[InputLine]]:
    window: list[InputLine] = []
    for line in lines:
        window.append(line)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def _window_digest(window: Sequence[InputLine]) -> str:
    digest = hashlib.sha256()
    for line in window:
        digest.update(len(line.raw).to_bytes(8, "little"))
        digest.update(line.raw)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- the job


def model_fingerprint(embedder: Embedder) -> str:
    """SHA-256 of the model's weights and configuration and of the tokenizer's settings and dictionaries."""
    digest = hashlib.sha256()
    for name, tensor in sorted(embedder.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    config = {key: value for key, value in embedder.model.config.to_dict().items() if not _is_location_key(key)}
    tokenizer = {
        key: value
        for key, value in embedder.tokenizer.init_kwargs.items()
        if not _is_location_key(key) and not key.endswith("_file")
    }
    dictionaries = [getattr(embedder.tokenizer, name, None) for name in ("char_vocab", "word_vocab")]
    digest.update(json.dumps([config, tokenizer, dictionaries], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _is_location_key(key: str) -> bool:
    """Config/tokenizer entries that say where or how a model was loaded, not what it computes."""
    return key.startswith("_") or key in {
        "name_or_path",
        "transformers_version",
        "auto_map",
        "custom_pipelines",
        "architectures",
    }


def _job_description(
    embedder: Embedder, options: EmbedOptions, input_format: str, output_format: str
) -> dict[str, Any]:
    settings = asdict(options)
    for name in ("overwrite", "restart", "progress", "encoding_errors"):
        del settings[name]
    settings["input_format"] = input_format
    settings["output_format"] = output_format
    settings["layers"] = resolve_layer(options.layers, embedder.num_layers, options.mix_weights, options.gamma)[0]
    settings["mix_weights"] = list(options.mix_weights) if options.mix_weights is not None else None
    return {
        "format": JOB_FORMAT,
        "model": model_fingerprint(embedder),
        "device": embedder.device.type,
        "settings": settings,
    }


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    for key in ("format", "model", "device"):
        if old.get(key) != new[key]:
            changes.append(f"{key}: {old.get(key)!r:.24} then, {new[key]!r:.24} now")
    old_settings = {**SETTINGS_BEFORE_THEY_WERE_RECORDED, **old.get("settings", {})}
    for key, value in new["settings"].items():
        if old_settings.get(key) != value:
            changes.append(f"{key}: {old_settings.get(key)!r} then, {value!r} now")
    return changes


def _write_json_atomically(path: Path, value: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with naming_os_errors(temporary), temporary.open("w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class _Progress:
    """A tqdm bar over input lines with the rate of words embedded per second."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit=" sentences", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
        self.words = 0
        self.started = time.perf_counter()

    def skip(self, lines: int) -> None:
        self.bar.update(lines)

    def done(self, words: int) -> None:
        self.words += words
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(f"{self.words / elapsed:,.0f} tokens/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _note(message: str) -> None:
    print(f"elmo embed: {message}", file=sys.stderr, flush=True)


def embed_file(
    embedder: Embedder, input_path: str | os.PathLike, output_path: str | os.PathLike, options: EmbedOptions
) -> Path:
    """Embed `input_path` (or `-` for stdin) into `output_path` (HDF5, or Parquet for a `.parquet` name or
    `output_format="parquet"`); see the module docstring. Shares the work with the other processes of a
    distributed launch (`modeling_elmo.embed_distributed`).

    Continues an interrupted job for the same output. Raises `EmbedError` for bad input or options (the output is
    then not written; finished windows are kept so that a corrected input continues from them).
    """
    from modeling_elmo.embed_sources import file_source

    return embed_source(embedder, file_source(input_path, options), output_path, options)


def embed_source(
    embedder: Embedder, source: InputSource, output_path: str | os.PathLike, options: EmbedOptions
) -> Path:
    """Embed the lines of `source` into `output_path`, as `embed_file` does."""
    if embedder.model.config.state_mode == "stateful":
        raise EmbedError(
            "the model is in state_mode='stateful', whose vectors depend on the order of the batches, so a job "
            "could not be resumed or sorted by length; load it with state_mode='stateless' or 'primed'"
        )
    try:
        resolve_layer(options.layers, embedder.num_layers, options.mix_weights, options.gamma)
    except (TypeError, ValueError) as error:
        raise EmbedError(str(error)) from None
    output = Path(output_path)
    if output.is_dir():
        raise EmbedError(f"the output {output} is a folder; give a file name such as {output / 'vectors.hdf5'}")
    output_format = resolve_output_format(output, options.output_format)
    windows = output_windows(output_format, options)
    context = launch_context()
    if context.distributed and not source.shareable:
        raise EmbedError(
            f"the {context.world_size} processes of a distributed launch cannot share standard input; give a file"
        )
    work = output.with_name(output.name + ".parts")
    job = _job_description(embedder, options, source.input_format, output_format)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise EmbedError(f"cannot write {output}: {_first_file_among_parents(output)} is not a folder") from None
    with process_group(context), ExitStack() as held:

        def start() -> None:
            if context.rank == 0:  # the others wait for it: a job is started or checked once, under one lock
                held.enter_context(_only_job_for(output))
                with _stopped_by_a_full_disk(work, context):
                    _start_or_resume(work, output, job, options)

        on_every_rank(context, start, EmbedError)
        return _run_job(embedder, source, output, work, windows, options, context)


def resolve_output_format(output: Path, output_format: str) -> str:
    """`"hdf5"` or `"parquet"`: `"auto"` means Parquet for a `.parquet` or `.pq` file, HDF5 otherwise."""
    if output_format != "auto":
        return output_format
    return "parquet" if output.suffix.lower() in PARQUET_SUFFIXES else "hdf5"


def output_windows(output_format: str, options: EmbedOptions) -> WindowFormat:
    """The part files and assembly of `output_format` (after checking that `options` fit it)."""
    if output_format == "parquet":
        from modeling_elmo.embed_parquet import ParquetWindows, check_parquet_options

        check_parquet_options(options)
        return ParquetWindows()
    return Hdf5Windows()


class WindowFormat(Protocol):
    """An output format: how a window's part file is written and checked, and how the parts become the output
    (`modeling_elmo.embed_hdf5.Hdf5Windows`, `modeling_elmo.embed_parquet.ParquetWindows`)."""

    suffix: str

    def write_window(
        self,
        embedder: Embedder,
        window: Sequence[InputLine],
        path: Path,
        digest: str,
        options: EmbedOptions,
        on_line_done: Callable[[int], None],
    ) -> None: ...

    def done_digest(self, path: Path) -> str | None: ...

    def assemble(self, work: Path, output_tmp: Path, part_paths: Sequence[Path], options: EmbedOptions) -> int: ...


def _first_file_among_parents(path: Path) -> Path:
    """The first of `path`'s parent folders that exists but is not a folder (its parent if none is)."""
    parents = (parent for parent in reversed(path.parents) if parent.exists() and not parent.is_dir())
    return next(parents, path.parent)


@contextmanager
def _only_job_for(output: Path) -> Iterator[None]:
    """Refuse to start while another `elmo embed` works on the same output: an exclusive POSIX advisory lock
    (`flock`) on `.OUTPUT.lock`, released by the system however the holder ends; where `fcntl` is missing, no
    check.

    The holder removes the lock file when it is done, while it still holds the lock. A process that opened the
    file just before that removal can get the lock on the removed file once the holder ends, while a third
    process locks the new file at the same path; so a lock only counts once the file at the path is still the
    locked one (same device and inode), and a process that finds it is not starts again on the new file."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock = output.with_name(f".{output.name}.lock")
    while True:
        handle = lock.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise EmbedError(f"another elmo embed is working on {output}; wait for it to end") from None
        if _same_file(lock, handle):
            break
        handle.close()
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        handle.close()


def _same_file(path: Path, handle: IO) -> bool:
    """Whether `path` names the open file `handle`."""
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _run_job(
    embedder: Embedder,
    source: InputSource,
    output: Path,
    work: Path,
    windows: WindowFormat,
    options: EmbedOptions,
    context: LaunchContext,
) -> Path:
    """Embed this process's windows not done yet; once every process is done, rank 0 assembles the output and
    removes the work folder."""
    total = source.count_lines()
    progress = _Progress(_lines_owned(total, options.window, context), options.progress and context.rank == 0)
    started = time.perf_counter()
    try:

        def embed_own_windows() -> tuple[int, int]:
            with _stopped_by_a_full_disk(work, context), source.open_lines() as lines:
                return _embed_windows(embedder, lines, work, windows, options, progress, context)

        counts = on_every_rank(context, embed_own_windows, EmbedError)
        if context.rank != 0:
            return output
        number_of_windows, resumed = counts[0][0], sum(count for _, count in counts)
        with _stopped_by_a_full_disk(work, context):
            lines_done = _assemble(work, output, number_of_windows, windows, options)
    finally:
        progress.close()
    shutil.rmtree(work)
    _note(
        f"wrote {output}: {lines_done} lines"
        + (f" ({resumed} of them from the interrupted run)" if resumed else "")
        + f" in {time.perf_counter() - started:.1f} s"
        + (f" by {context.world_size} processes" if context.distributed else "")
    )
    return output


def _lines_owned(total: int | None, window: int, context: LaunchContext) -> int | None:
    """How many of `total` lines belong to this process's windows (None if `total` is unknown)."""
    if total is None:
        return None
    return sum(min(window, total - start) for start in range(context.rank * window, total, context.world_size * window))


@contextmanager
def _stopped_by_a_full_disk(work: Path, context: LaunchContext) -> Iterator[None]:
    """Turn a write that failed for want of space into an `EmbedError` naming the file, after removing this
    process's partly written files (the finished windows stay, for the next run to continue from)."""
    try:
        yield
    except OSError as error:
        if error.errno not in DISK_FULL_ERRNOS:
            raise
        for partial in work.glob("*.tmp"):
            number = _window_number(partial.name)
            if context.owns(number) if number is not None else context.rank == 0:
                partial.unlink(missing_ok=True)
        raise EmbedError(
            f"{disk_full_message(error, work)}; the finished windows stay in {work}: make room and run the same "
            "command again to continue"
        ) from None


def disk_full_message(error: OSError, path: str | os.PathLike | None = None) -> str:
    """`no space left on device writing PATH` (or the quota or file size said instead) for an `OSError` whose errno
    is in `DISK_FULL_ERRNOS`; PATH is the error's file name (the destination of a copy), else `path`."""
    reason = error.strerror or os.strerror(error.errno)
    where = error.filename2 or error.filename or path
    return reason[:1].lower() + reason[1:] + (f" writing {where}" if where is not None else "")


def _start_or_resume(work: Path, output: Path, job: dict[str, Any], options: EmbedOptions) -> None:
    """Create the work folder for a new job, or check that the one there belongs to this job."""
    if options.restart and work.exists():
        shutil.rmtree(work)
    job_file = work / "job.json"
    if work.exists() and job_file.is_file():
        try:
            previous = json.loads(job_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise EmbedError(f"{job_file} is unreadable ({error}); pass --restart to start over") from None
        changes = _differences(previous, job)
        if changes:
            raise EmbedError(
                f"{work} holds an interrupted job with other settings ({'; '.join(changes)}); run the same command "
                "as before to finish it, or pass --restart to discard it"
            )
        for leftover in work.glob("*.tmp"):
            leftover.unlink()
        return
    if output.exists() and not options.overwrite:
        raise EmbedError(f"{output} exists; pass --overwrite to replace it")
    if work.exists():  # created but interrupted before job.json was written: nothing in it is needed
        shutil.rmtree(work)
    work.mkdir(parents=True)
    _write_json_atomically(job_file, job)


def _window_path(work: Path, number: int, windows: WindowFormat) -> Path:
    return work / f"window-{number:08d}{windows.suffix}"


def _window_number(name: str) -> int | None:
    """The window number in a part file's name (`window-00000012.h5`, also with `.tmp`), or None."""
    match = re.fullmatch(r"window-(\d+)\..*", name)
    return int(match.group(1)) if match else None


def _embed_windows(
    embedder: Embedder,
    lines: Iterator[InputLine],
    work: Path,
    windows: WindowFormat,
    options: EmbedOptions,
    progress: _Progress,
    context: LaunchContext,
) -> tuple[int, int]:
    """Embed every window of this process that is not done yet; returns (number of windows, lines found done)."""
    number_of_windows = resumed = 0
    for number, window in enumerate(_windows(lines, options.window)):
        number_of_windows += 1
        if not context.owns(number):
            continue
        path = _window_path(work, number, windows)
        digest = _window_digest(window)
        if path.exists():
            done_digest = windows.done_digest(path)
            if done_digest == digest:
                if not resumed and context.rank == 0:
                    _note(f"resuming the job in {work}")
                resumed += len(window)
                progress.skip(len(window))
                continue
            if done_digest is not None:
                raise EmbedError(
                    f"lines {window[0].index + 1}-{window[-1].index + 1} of the input differ from the interrupted "
                    f"job in {work}; run with the same input, or pass --restart"
                )
        windows.write_window(embedder, window, path, digest, options, progress.done)
    return number_of_windows, resumed


def _assemble(work: Path, output: Path, number_of_windows: int, windows: WindowFormat, options: EmbedOptions) -> int:
    """Check that the parts are those of the input, assemble them into `OUTPUT.parts/merged.tmp` and move it onto
    the output in one step; returns the number of lines."""
    parts = [_window_path(work, number, windows) for number in range(number_of_windows)]
    stale = sorted(
        path.name
        for path in work.glob(f"window-*{windows.suffix}")
        if (_window_number(path.name) or 0) >= number_of_windows
    )
    if stale:
        raise EmbedError(
            f"the input has fewer lines than the interrupted job in {work} ({stale[0]} is beyond its end); "
            "run with the same input, or pass --restart"
        )
    missing = [path.name for path in parts if not path.is_file()]
    if missing:
        raise EmbedError(f"{work} lacks {missing[0]} although every process is done; run the same command again")
    merged = work / "merged.tmp"
    lines = windows.assemble(work, merged, parts, options)
    os.replace(merged, output)
    return lines


def parse_mix_weights(text: str | None) -> tuple[float, ...] | None:
    """`"0.2,0.3,0.5"` → (0.2, 0.3, 0.5); `None` stays `None`."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise EmbedError(f"--mix-weights must be comma-separated numbers, got {text!r}") from None


# ----------------------------------------------------------------------------------------------- model folders

MODEL_TYPE = "elmo"
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHTS_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# What loading a model folder or Hub id raises for a missing, damaged or foreign file (torch.load alone raises
# OSError, EOFError, KeyError, RuntimeError or UnpicklingError depending on how a file is damaged).
MODEL_LOAD_ERRORS = (OSError, ValueError, RuntimeError, EOFError, KeyError, RecursionError, pickle.UnpicklingError)


@contextmanager
def loading_model(
    model: str | os.PathLike, error_type: type[ElmoError] = EmbedError, revision: str | None = None
) -> Iterator[None]:
    """A block that loads `model` (a local folder or a Hub id) with transformers, made safe for the command line.

    Before the block, a local path is checked: a file, a missing path that cannot be a Hub id, or a folder whose
    `config.json` is missing, not JSON or not an ELMo configuration (no `model_type`, or another one) is refused.
    What the block raises for a damaged or foreign file becomes `error_type`, naming the model and, where one can
    be found (in the folder, or in the Hub cache for a Hub id), the damaged weights file: a pickle that
    `torch.load(weights_only=True)` refuses (its code is never run), a truncated or foreign safetensors file. After
    the block, the configuration of a model from the Hub is checked as a folder's is before."""
    name = str(model)
    path = Path(name)
    local = path.exists() or _looks_like_a_path(name)
    if local:
        _check_model_folder(name, error_type)
    try:
        with warnings.catch_warnings():  # torch.load warns about pickles it refuses anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            yield
    except ElmoError:
        raise
    except (*MODEL_LOAD_ERRORS, SafetensorError) as error:
        json_files = sorted(path.glob("*.json")) if local else []
        weights_files = _weights_files(path) if local else _cached_weights_files(name, revision)
        problems = chain(map(_json_file_problem, json_files), map(weights_file_problem, weights_files))
        problem = next(filter(None, problems), None)  # the files are checked until one is found wrong
        raise error_type(f"cannot load the model {name}: {problem or one_line(error)}") from None
    if not local:
        config = _cached_file(name, "config.json", revision)
        if config is not None:
            _check_config_file(config, error_type)


def _looks_like_a_path(name: str) -> bool:
    """Whether `name` can only be a local path: absolute, relative to `.`, `..` or `~`, or with more than one
    `/` (a Hub id is `name` or `owner/name`)."""
    return (
        os.path.isabs(name)
        or name.startswith(("./", "../", "~", ".\\", "..\\"))
        or name in (".", "..")
        or name.count("/") > 1
        or name.endswith(("/", "\\"))
    )


def _check_model_folder(name: str, error_type: type[ElmoError]) -> None:
    """Refuse a local `--model` that is a file, does not exist, or has no valid ELMo `config.json`."""
    path = Path(name)
    if path.is_file():
        raise error_type(f"the model {name} is a file; give a model folder (with config.json) or a Hub id")
    if not path.exists():
        raise error_type(f"the model folder {name} does not exist")
    if not path.is_dir():
        raise error_type(f"the model {name} is not a folder")
    config = path / "config.json"
    if config.is_dir():
        raise error_type(f"{config} is a folder, not a file")
    if not config.exists():
        raise error_type(f"{path} has no config.json: it is not a model folder")
    _check_config_file(config, error_type)


def _check_config_file(config: Path, error_type: type[ElmoError]) -> None:
    """Refuse a `config.json` that is not UTF-8 JSON holding an object with `"model_type": "elmo"`."""
    try:
        raw = config.read_bytes()
    except OSError as error:
        raise error_type(f"cannot read {config}: {error.strerror or error}") from None
    try:
        values = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise error_type(f"{config} is not UTF-8 (byte 0x{raw[error.start]:02x} at offset {error.start})") from None
    except json.JSONDecodeError as error:
        raise error_type(
            f"{config} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except RecursionError:
        raise error_type(f"{config} is not a model configuration: its JSON is nested too deeply") from None
    if not isinstance(values, dict):
        raise error_type(f"{config} must hold a JSON object, not {type(values).__name__}")
    if "model_type" not in values:
        raise error_type(f'{config} has no model_type: an ELMo configuration says "model_type": "{MODEL_TYPE}"')
    if values["model_type"] != MODEL_TYPE:
        raise error_type(f"{config}: model_type is {values['model_type']!r}, not {MODEL_TYPE!r}: not an ELMo model")


def _weights_files(folder: Path) -> list[Path]:
    """The weights files of a local folder: the single files, and the shards that index files name."""
    files = [folder / name for name in WEIGHTS_FILES if (folder / name).is_file()]
    for name in WEIGHTS_INDEX_FILES:
        try:
            weight_map = json.loads((folder / name).read_text(encoding="utf-8"))["weight_map"]
            files += [folder / shard for shard in sorted(set(weight_map.values()))]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return files


def _cached_file(repo_id: str, filename: str, revision: str | None) -> Path | None:
    """A file of a Hub model as the Hub cache holds it, if it does."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo_id, filename, revision=revision)
    except ValueError:  # not a valid Hub id
        return None
    return Path(cached) if isinstance(cached, str) else None


def _cached_weights_files(repo_id: str, revision: str | None) -> list[Path]:
    return [path for name in WEIGHTS_FILES if (path := _cached_file(repo_id, name, revision)) is not None]


def weights_file_problem(path: Path) -> str | None:
    """What is wrong with one weights file, or None: a safetensors file's header is read, a pickle is read with
    `torch.load(weights_only=True)`, which rebuilds tensors and plain containers and refuses anything else."""
    if not path.is_file():
        return f"{path} is not a file"
    if path.suffix == ".safetensors":
        try:
            with safe_open(path, framework="pt"):
                return None
        except (SafetensorError, OSError) as error:
            return f"{path} is not a valid safetensors file ({one_line(error)})"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        return f"{path} is not a plain state dict: torch.load(weights_only=True) refused it ({_refusal(error)})"
    except Exception as error:  # torch.load raises many kinds of errors for a damaged or foreign file
        return f"{path} is damaged or not a PyTorch file ({type(error).__name__}: {one_line(error)})"
    return None


def _json_file_problem(path: Path) -> str | None:
    """What is wrong with a JSON file of a model folder (not a file, not UTF-8, not JSON), or None."""
    try:
        json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        return f"cannot read {path}: {error.strerror or error}"
    except UnicodeDecodeError as error:
        return f"{path} is not UTF-8 (byte {error.start})"
    except json.JSONDecodeError as error:
        return f"{path} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
    except RecursionError:
        return f"{path} is nested too deeply"
    return None


def _refusal(error: pickle.UnpicklingError) -> str:
    """The reason in torch's refusal message (its first sentence), without the advice around it (to load the file
    with `weights_only=False`, to read the documentation)."""
    for paragraph in re.split(r"\n\s*\n", str(error)):
        if "WeightsUnpickler error:" in paragraph:
            paragraph = paragraph.partition("WeightsUnpickler error:")[2]
        elif paragraph.lstrip().startswith(("Weights only load failed", "Check the documentation")):
            continue
        reason = one_line(paragraph)
        if reason:
            return reason.split(". ")[0].rstrip(".")
    return one_line(error)


def one_line(error: BaseException | str) -> str:
    """An error message on one line (white space runs, line breaks included, become one space)."""
    text = " ".join(str(error).split())
    return text if text or isinstance(error, str) else type(error).__name__
