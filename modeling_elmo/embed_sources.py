"""Where the lines of an `elmo embed` job come from: a text or JSON Lines file, standard input, or a Hugging Face
dataset column (read as `elmo train` reads one)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from modeling_elmo.embed_hdf5 import INDEX_DATASET
from modeling_elmo.embed_options import ENCODING_ADVICE, STDIN, EmbedError, EmbedOptions, InputLine
from modeling_elmo.text_files import decoded_lines

# ----------------------------------------------------------------------------------------------- input


def _jsonl_sentence(text: str, name: str, number: int, errors: str = "strict") -> tuple[str, list[str] | None]:
    """The sentence text and words (or None) of one JSON Lines line. A string holding a lone surrogate (JSON
    can escape one, `"\\ud800"`, but it is no character and no UTF-8 encodes it) is an error, or with
    `errors="replace"` U+FFFD."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise EmbedError(f"{name}:{number}: not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise EmbedError(f"{name}:{number}: the JSON value is nested too deeply") from None
    field = "the line"
    if isinstance(value, dict):
        if "tokens" in value:
            field, value = "field 'tokens'", value["tokens"]
        elif "text" in value:
            field, value = "field 'text'", value["text"]
        else:
            raise EmbedError(f"{name}:{number}: a JSON object needs a 'text' or a 'tokens' field")
    if isinstance(value, str):
        return without_surrogates(value, name, number, field, errors).strip(), None
    if isinstance(value, list) and all(isinstance(word, str) for word in value):
        value = [without_surrogates(word, name, number, field, errors) for word in value]
        if any(not word or word.isspace() for word in value):
            raise EmbedError(f"{name}:{number}: {field} has an empty or whitespace-only word")
        return " ".join(value), value
    raise EmbedError(
        f"{name}:{number}: {field} must be a string or a list of strings, got {type(value).__name__} ({value!r:.60})"
    )


def without_surrogates(text: str, name: str, number: int, field: str, errors: str) -> str:
    """`text` if it is valid Unicode; a lone surrogate is an error naming the line (U+FFFD with `errors="replace"`)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        if errors == "replace":
            return "".join("\ufffd" if "\ud800" <= character <= "\udfff" else character for character in text)
        raise EmbedError(
            f"{name}:{number}: {field} holds a lone surrogate escape (\\u{ord(text[error.start]):04x} at character "
            f"{error.start + 1}), which is not a Unicode character; fix the input or pass --encoding-errors replace"
        ) from None
    return text


def check_sentence_key(sentence: str, name: str, number: int) -> None:
    problem = None
    if not sentence:
        problem = "it is blank"
    elif sentence == ".":
        problem = "'.' is not a valid dataset name"
    elif "/" in sentence:
        problem = "it contains '/'"
    elif "\x00" in sentence:
        problem = "it contains a NUL character"
    elif sentence == INDEX_DATASET:
        problem = f"'{INDEX_DATASET}' is reserved"
    if problem:
        raise EmbedError(
            f"{name}:{number}: with --use-sentence-keys every sentence names its dataset, but {problem}; "
            "run without --use-sentence-keys (datasets are then named by line index; see sentence_to_index)"
        )


def read_input_lines(
    stream: IO[bytes],
    name: str,
    *,
    jsonl: bool = False,
    tokenized: bool = False,
    encoding_errors: str = "strict",
    sentence_keys: bool = False,
) -> Iterator[InputLine]:
    """Parse an input one line at a time (`text_files.decoded_lines`: lines end at `\\n`, a trailing `\\r` is
    dropped); errors name `name` and the 1-based line number. `sentence_keys` checks that every sentence can name a
    dataset."""
    lines = decoded_lines(stream, name, errors=encoding_errors, error_type=EmbedError, advice=ENCODING_ADVICE)
    for number, raw, text in lines:
        if jsonl and text.strip():
            sentence, words = _jsonl_sentence(text, name, number, encoding_errors)
        else:
            sentence, words = text.strip(), None
        if tokenized and words is None:
            words = sentence.split()
        if sentence_keys:
            check_sentence_key(sentence, name, number)
        yield InputLine(number - 1, raw, sentence, words)


def resolve_input_format(input_path: str | os.PathLike, input_format: str) -> str:
    """`"txt"` or `"jsonl"`: `"auto"` means JSON Lines for a `.jsonl` file, text otherwise (also for stdin)."""
    if input_format != "auto":
        return input_format
    return "jsonl" if str(input_path) != STDIN and Path(input_path).suffix.lower() == ".jsonl" else "txt"


def check_input(input_path: str | os.PathLike) -> str:
    """The input's name (`-` for standard input) after checking that a file input is a file that exists."""
    name = str(input_path)
    if name == STDIN:
        return name
    path = Path(name)
    if path.is_dir():
        raise EmbedError(f"the input {name} is a folder, not a file")
    if not path.exists():
        raise EmbedError(f"the input file {name} does not exist")
    if not path.is_file():
        raise EmbedError(f"the input {name} is not a regular file; give a file, or - to read standard input")
    return name


def open_input(name: str) -> AbstractContextManager[IO[bytes]]:
    """A context giving the input as a binary stream: the file, or standard input for `-` (not closed after)."""
    return nullcontext(sys.stdin.buffer) if name == STDIN else open(name, "rb")


def count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


# ----------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class InputSource:
    """Where a job's lines come from.

    Attributes:
        name: the name in messages (a file name, `-` for standard input, a dataset's name).
        input_format: `"txt"`, `"jsonl"` or `"dataset"` (recorded in the job: a change is refused on resume).
        open_lines: a context giving the lines, read from the start (every process of a distributed job reads them
            all and embeds its own windows).
        count_lines: the number of lines, or None where it is unknown beforehand (standard input).
        shareable: whether several processes can each read the lines (not standard input).
    """

    name: str
    input_format: str
    open_lines: Callable[[], AbstractContextManager[Iterator[InputLine]]]
    count_lines: Callable[[], int | None]
    shareable: bool = True


def file_source(input_path: str | os.PathLike, options: EmbedOptions) -> InputSource:
    """The lines of a text or JSON Lines file, or of standard input (`-`), parsed as `options` say."""
    name = check_input(input_path)
    input_format = resolve_input_format(name, options.input_format)

    @contextmanager
    def open_lines() -> Iterator[Iterator[InputLine]]:
        with open_input(name) as stream:
            yield read_input_lines(
                stream,
                "<stdin>" if name == STDIN else name,
                jsonl=input_format == "jsonl",
                tokenized=options.tokenized,
                encoding_errors=options.encoding_errors,
                sentence_keys=options.use_sentence_keys,
            )

    def number_of_lines() -> int | None:
        return None if name == STDIN else count_lines(Path(name))

    return InputSource(name, input_format, open_lines, number_of_lines, shareable=name != STDIN)


def dataset_source(
    dataset: str,
    options: EmbedOptions,
    text_column: str = "text",
    config_name: str | None = None,
    split: str = "train",
) -> InputSource:
    """The rows of a Hugging Face dataset (a `save_to_disk` folder or a `load_dataset` name, read as `elmo train`
    reads one: `modeling_elmo.training_data.load_dataset_corpus`) whose `text_column` holds a text or a list of
    words per row; row i is line i."""
    from modeling_elmo.training_data import load_dataset_corpus

    corpus = load_dataset_corpus(dataset, config_name, split, text_column, str.split)
    rows = corpus.dataset.select_columns([text_column])

    @contextmanager
    def open_lines() -> Iterator[Iterator[InputLine]]:
        yield _dataset_lines(rows, text_column, f"the dataset {dataset}", options)

    return InputSource(dataset, "dataset", open_lines, lambda: len(rows))


def _dataset_lines(rows: Any, column: str, name: str, options: EmbedOptions) -> Iterator[InputLine]:
    """One `InputLine` per row: a text (split on whitespace with `tokenized`), or a list of words as given."""
    index = 0
    for batch in rows.iter(batch_size=1000):
        for value in batch[column]:
            if isinstance(value, str):
                sentence = without_surrogates(value, name, index + 1, f"column {column!r}", options.encoding_errors)
                sentence = sentence.strip()
                words = sentence.split() if options.tokenized else None
                raw = sentence.encode("utf-8")
            elif isinstance(value, list) and all(isinstance(word, str) and word.strip() for word in value):
                words = [word.strip() for word in value]
                sentence = " ".join(words)
                raw = json.dumps(words).encode("utf-8")
            else:
                raise EmbedError(
                    f"{name}: row {index}: column {column!r} must hold a text or a list of non-blank words, got "
                    f"{type(value).__name__} ({value!r:.60})"
                )
            if options.use_sentence_keys:
                check_sentence_key(sentence, name, index + 1)
            yield InputLine(index, raw, sentence, words)
            index += 1
