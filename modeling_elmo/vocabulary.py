"""Word vocabularies of the language model and the sentence files it reads.

A vocabulary file has one word per line; line i is row i of the softmax. `elmo build-vocab` adds each word's
count after a tab (`the\t61847`) and sorts the words by decreasing count after the three special words `<S>`,
`</S>` and `<UNK>`, so that ids follow frequency, as the log-uniform sampler of the sampled softmax assumes. Files
without counts (the original `vocab-2016-09-10.txt`) are read too.

Sentence files have one sentence per line, UTF-8. Words are split by whitespace (`tokenized=True`, for text
tokenized beforehand) or by the model's tokenizer (Moses-style, as `ElmoTokenizer` splits raw text). Blank lines
are skipped.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modeling_elmo.configuration_elmo import ElmoError

BEGIN_OF_SENTENCE = "<S>"
END_OF_SENTENCE = "</S>"
UNKNOWN = "<UNK>"
SPECIAL_WORDS = (BEGIN_OF_SENTENCE, END_OF_SENTENCE, UNKNOWN)


class LanguageModelError(ElmoError):
    """Bad input to `elmo build-vocab`, `elmo train` or `elmo perplexity`; the message names the file, line or
    field."""


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


def read_vocabulary(path: str | os.PathLike) -> Vocabulary:
    """Read a vocabulary file (`word` or `word<TAB>count` per line), checking every line."""
    path = Path(path)
    words: list[str] = []
    counts: list[int] = []
    first_has_count: bool | None = None
    for number, line in read_lines(path):
        word, tab, count = line.partition("\t")
        word = word.strip()
        if not word or len(word.split()) != 1:
            raise LanguageModelError(f"{path}:{number}: expected one word (without spaces), got {line!r}")
        if first_has_count is None:
            first_has_count = bool(tab)
        elif bool(tab) != first_has_count:
            state = "has a count" if tab else "has no count"
            raise LanguageModelError(f"{path}:{number}: {word!r} {state}, unlike the first line")
        if tab:
            try:
                counts.append(int(count))
            except ValueError:
                raise LanguageModelError(f"{path}:{number}: the count {count!r} is not an integer") from None
        words.append(word)
    if not words:
        raise LanguageModelError(f"{path} holds no words")
    return Vocabulary(words, counts or None, source=str(path))


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


@dataclass
class CorpusCounts:
    """Word counts of a corpus: `words` counts every word (not the sentence markers)."""

    words: Counter = field(default_factory=Counter)
    sentences: int = 0

    def add(self, sentence: Sequence[str]) -> None:
        self.words.update(sentence)
        self.sentences += 1

    @property
    def tokens(self) -> int:
        """Words plus one `</S>` per sentence: the number of forward predictions over the corpus."""
        return sum(self.words.values()) + self.sentences


def build_vocabulary(counts: CorpusCounts, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
    """`<S>`, `</S>`, `<UNK>`, then every word seen at least `min_count` times by decreasing count (ties in
    alphabetical order), at most `max_size` entries in all. `<S>` and `</S>` count once per sentence; `<UNK>`
    counts the occurrences of the words left out (and of a literal `<UNK>` in the text)."""
    if min_count < 1:
        raise LanguageModelError(f"--min-count must be at least 1, got {min_count}")
    if max_size is not None and max_size < len(SPECIAL_WORDS):
        raise LanguageModelError(f"--max-size must be at least {len(SPECIAL_WORDS)}, got {max_size}")
    ranked = sorted(
        ((word, count) for word, count in counts.words.items() if word not in SPECIAL_WORDS),
        key=lambda item: (-item[1], item[0]),
    )
    kept = [(word, count) for word, count in ranked if count >= min_count]
    if max_size is not None:
        kept = kept[: max_size - len(SPECIAL_WORDS)]
    unknown = counts.words[UNKNOWN] + sum(count for _, count in ranked) - sum(count for _, count in kept)
    words = [*SPECIAL_WORDS, *(word for word, _ in kept)]
    numbers = [counts.sentences, counts.sentences, unknown, *(count for _, count in kept)]
    return Vocabulary(words, numbers, source="the built vocabulary")


def read_lines(path: str | os.PathLike, start: int = 0) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a UTF-8 file, without the line break, from byte `start` (a
    line start; line numbers then count from there). Invalid UTF-8 is reported with its file, line and byte."""
    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below, also when the generator is abandoned)
    except OSError as error:
        raise LanguageModelError(f"cannot read {path}: {error.strerror or error}") from error
    with handle:
        handle.seek(start)
        for number, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise LanguageModelError(
                    f"{path}:{number}: invalid UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of "
                    "the line)"
                ) from None
            text = text.rstrip("\n").rstrip("\r")
            if text.strip():
                yield number, text


def word_splitter(tokenized: bool) -> Callable[[str], list[str]]:
    """How a line becomes words: whitespace (`tokenized`) or the Moses-style splitting of `ElmoTokenizer`."""
    if tokenized:
        return str.split
    from modeling_elmo.tokenization_elmo import ElmoTokenizer

    return ElmoTokenizer(word_splitter="moses").tokenize


def count_files(paths: Iterable[str | os.PathLike], split: Callable[[str], list[str]]) -> CorpusCounts:
    """Count the words of sentence files (one sentence per line)."""
    counts = CorpusCounts()
    for path in paths:
        for _, text in read_lines(path):
            words = split(text)
            if words:
                counts.add(words)
    return counts
