"""Text files every part of the package reads: lines of UTF-8 text, and word vocabularies.

Lines end at `\\n`; a trailing `\\r` and a byte-order mark at the start of a file are dropped. Invalid UTF-8 is an
error naming the file, the line and the byte (or, with `errors="replace"`, becomes U+FFFD). `decoded_lines` reads
every line of a binary stream (standard input included); `read_lines` the non-blank lines of a file, from any line
start (`start`, a byte offset). Errors are `LanguageModelError`s unless the caller names another `ElmoError`.

A vocabulary file has one word per line; line i is row i of the language model's softmax. `elmo build-vocab` adds
each word's count after a tab (`the\\t61847`) and sorts the words by decreasing count after the three special words
`<S>`, `</S>` and `<UNK>`, so that ids follow frequency, as the log-uniform sampler of the sampled softmax assumes.
Files without counts (the original `vocab-2016-09-10.txt`, a word list for `elmo embed --cache-vocab`) are read
too (`read_words`); `read_vocabulary` also requires the special words.

This module imports the standard library and `configuration_elmo` only, so that the conversion code may read
vocabularies without importing the commands built on it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from modeling_elmo.configuration_elmo import ElmoError

BEGIN_OF_SENTENCE = "<S>"
END_OF_SENTENCE = "</S>"
UNKNOWN = "<UNK>"
SPECIAL_WORDS = (BEGIN_OF_SENTENCE, END_OF_SENTENCE, UNKNOWN)
BYTE_ORDER_MARK = "\ufeff"


class LanguageModelError(ElmoError):
    """Bad input to `elmo build-vocab`, `elmo train` or `elmo perplexity`; the message names the file, line or
    field."""


# ----------------------------------------------------------------------------------------------- lines


def decoded_lines(
    stream: IO[bytes],
    name: str,
    *,
    errors: str = "strict",
    error_type: type[ElmoError] = LanguageModelError,
    advice: str = "",
    from_start: bool = True,
) -> Iterator[tuple[int, bytes, str]]:
    """(1-based line number, bytes, text) of every line of a binary stream, blank lines included; the bytes and the
    text are without the line break. A byte-order mark opening the first line is dropped when the stream is read
    `from_start`. Invalid UTF-8 raises `error_type` naming `name`, the line and the byte, followed by `advice`, or
    with `errors="replace"` becomes U+FFFD."""
    for number, raw in enumerate(stream, 1):
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        try:
            text = raw.decode("utf-8", errors=errors)
        except UnicodeDecodeError as error:
            raise error_type(
                f"{name}:{number}: invalid UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the "
                f"line){advice}"
            ) from None
        if number == 1 and from_start:
            text = text.removeprefix(BYTE_ORDER_MARK)
        yield number, raw, text


def read_lines(
    path: str | os.PathLike,
    start: int = 0,
    *,
    errors: str = "strict",
    error_type: type[ElmoError] = LanguageModelError,
    what: str | None = None,
) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a UTF-8 file, without the line break, from byte `start` (a
    line start; line numbers then count from there). A file that cannot be opened raises `error_type`: `cannot read
    WHAT PATH: reason`; invalid UTF-8 is reported as `decoded_lines` does."""
    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below, also when the generator is abandoned)
    except OSError as error:
        described = f"{what} {path}" if what else str(path)
        raise error_type(f"cannot read {described}: {error.strerror or error}") from error
    with handle:
        handle.seek(start)
        lines = decoded_lines(handle, str(path), errors=errors, error_type=error_type, from_start=start == 0)
        for number, _, text in lines:
            if text.strip():
                yield number, text


# ----------------------------------------------------------------------------------------------- vocabularies


@dataclass
class Vocabulary:
    """Words in softmax-row order, with their corpus counts when known."""

    words: list[str]
    counts: list[int] | None = None
    source: str = "vocabulary"
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {}
        for position, word in enumerate(self.words):
            if word in self.index:
                raise LanguageModelError(
                    f"{self.source}: {word!r} appears twice (entries {self.index[word] + 1} and {position + 1})"
                )
            self.index[word] = position
        missing = [word for word in SPECIAL_WORDS if word not in self.index]
        if missing:
            raise LanguageModelError(f"{self.source} lacks the special word(s) {', '.join(missing)}")
        if self.counts is not None and len(self.counts) != len(self.words):
            raise LanguageModelError(f"{self.source}: {len(self.counts)} counts for {len(self.words)} words")

    def __len__(self) -> int:
        return len(self.words)

    def word_id(self, word: str) -> int:
        """The id of `word`, `<UNK>`'s for a word outside the vocabulary."""
        return self.index.get(word, self.index[UNKNOWN])

    def config_fields(self) -> dict[str, int]:
        """The `ElmoConfig` fields that describe this vocabulary's softmax."""
        return {
            "lm_vocab_size": len(self.words),
            "lm_begin_of_sentence_id": self.index[BEGIN_OF_SENTENCE],
            "lm_end_of_sentence_id": self.index[END_OF_SENTENCE],
            "lm_unknown_id": self.index[UNKNOWN],
        }


def read_words(
    path: str | os.PathLike, *, error_type: type[ElmoError] = LanguageModelError, what: str | None = None
) -> tuple[list[str], list[int] | None]:
    """The words of a vocabulary file (`word` or `word<TAB>count` per line, blank lines skipped) and their counts
    (None for a file without counts), checking every line; problems raise `error_type` (`what`: see
    `read_lines`)."""
    path = Path(path)
    words: list[str] = []
    counts: list[int] = []
    first_has_count: bool | None = None
    for number, line in read_lines(path, error_type=error_type, what=what):
        word, tab, count = line.partition("\t")
        word = word.strip()
        if not word or len(word.split()) != 1:
            raise error_type(f"{path}:{number}: expected one word (without spaces), got {line!r}")
        if first_has_count is None:
            first_has_count = bool(tab)
        elif bool(tab) != first_has_count:
            state = "has a count" if tab else "has no count"
            raise error_type(f"{path}:{number}: {word!r} {state}, unlike the first line")
        if tab:
            try:
                counts.append(int(count))
            except ValueError:
                raise error_type(f"{path}:{number}: the count {count!r} is not an integer") from None
        words.append(word)
    return words, counts or None


def read_vocabulary(path: str | os.PathLike) -> Vocabulary:
    """Read a language model's vocabulary file (`read_words`), which must hold words and the special words."""
    words, counts = read_words(path)
    if not words:
        raise LanguageModelError(f"{path} holds no words")
    return Vocabulary(words, counts, source=str(path))


def write_vocabulary(vocabulary: Vocabulary, path: str | os.PathLike) -> None:
    """Write `vocabulary` (with counts when it has them) under a temporary name, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = vocabulary.counts
    lines = [word if counts is None else f"{word}\t{counts[i]}" for i, word in enumerate(vocabulary.words)]
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        os.replace(temporary, path)
    except OSError as error:  # a full or read-only disk, say: name the file written, not its temporary name
        error.filename = str(path)
        raise
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)  # gone after the rename
