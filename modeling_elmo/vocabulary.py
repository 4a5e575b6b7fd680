"""`elmo build-vocab`: counting the words of sentence files into a vocabulary.

Sentence files have one sentence per line, UTF-8. Words are split by whitespace (`tokenized=True`, for text
tokenized beforehand) or by the model's tokenizer (Moses-style, as `ElmoTokenizer` splits raw text). Blank lines
are skipped. The vocabulary files and their readers are in `modeling_elmo.text_files` (also importable from here).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from modeling_elmo.text_files import (
    BEGIN_OF_SENTENCE,
    END_OF_SENTENCE,
    SPECIAL_WORDS,
    UNKNOWN,
    LanguageModelError,
    Vocabulary,
    read_lines,
    read_vocabulary,
    write_vocabulary,
)

__all__ = [
    "BEGIN_OF_SENTENCE",
    "END_OF_SENTENCE",
    "SPECIAL_WORDS",
    "UNKNOWN",
    "CorpusCounts",
    "LanguageModelError",
    "Vocabulary",
    "build_vocabulary",
    "count_files",
    "read_lines",
    "read_vocabulary",
    "word_splitter",
    "write_vocabulary",
]


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


def word_splitter(tokenized: bool) -> Callable[[str], list[str]]:
    """How a line becomes words: whitespace (`tokenized`) or the Moses-style splitting of `ElmoTokenizer`, by
    `ElmoTokenizerFast` (the same words)."""
    if tokenized:
        return str.split
    from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast

    return ElmoTokenizerFast(word_splitter="moses").tokenize


def count_files(paths: Iterable[str | os.PathLike], split: Callable[[str], list[str]]) -> CorpusCounts:
    """Count the words of sentence files (one sentence per line)."""
    counts = CorpusCounts()
    for path in paths:
        for _, text in read_lines(path):
            words = split(text)
            if words:
                counts.add(words)
    return counts
