"""Fast tokenizer for ELMo: :class:`ElmoTokenizer` on the `tokenizers` library.

`ElmoTokenizerFast` gives exactly the words, offsets and character ids of :class:`ElmoTokenizer` (the Python
reference, with sacremoses), in a fraction of the time, and is a fast tokenizer as far as ELMo's 3-D ``input_ids``
allow: ``is_fast``, ``backend_tokenizer`` (a :class:`tokenizers.Tokenizer`), ``word_ids()`` /
``word_to_chars()`` / ``char_to_word()`` on its encodings, and ``save_pretrained`` writes ``tokenizer.json``.

**Word splitting.** The backend tokenizer runs the Moses rules of ``tokenizer.perl`` as sacremoses implements them
(``MosesTokenizer(language).tokenize(line, escape=False)``, line by line), as regular expressions in Rust:

* the normalizer deletes ASCII control characters (they stay inside a word's offsets, as in the reference) and
  puts spaces around the commas and apostrophes that Moses separates, and around a final ``.`` before a final
  ``'`` of a line;
* the pre-tokenizer is one regular expression whose matches are the words: a character that Moses pads with
  spaces (anything but letters, digits, whitespace and ``.'`,-``), a word without a final period, a run of two
  or more dots, a word whose final period Moses splits off or keeps (the nonbreaking-prefix rules, decided by
  look-aheads from the word's start: the word itself, and the first character of the next word of the line), or
  a lone period.

sacremoses applies its rules one after another to a line in which earlier rules have inserted spaces, and each
rule is a regular expression that consumes the characters around the one it pads; the port checks the same
neighbours with look-arounds. The two differ only where one rule's matches overlap, i.e. two commas side by side or
two apostrophes at most one character apart (``''``, ``'n'``), and where a line contains the placeholder that
sacremoses uses for ``...`` (``DOTMULTI``), which it rewrites. Texts with such a line, and texts with lone
surrogates (which Rust strings cannot hold), are split by the Python reference instead (:data:`MOSES_REFERENCE_TEXT`
finds them). The port covers the languages of :data:`PORTED_MOSES_LANGUAGES`; other language codes (sacremoses
treats them like English prefixes with the generic apostrophe rule) are split by the reference altogether.
``tokenizer.json`` holds the Rust part only.

**Character ids** are computed for a whole batch at once with numpy, from the UTF-8 bytes (or, in dictionary mode,
the code points) of the batch's text and the words' offsets: no Python loop over words.

This module is copied to the Hub as remote code with ``tokenization_elmo.py``; it imports only that module (with a
single-dot relative import), the standard library and third-party libraries.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import torch
from sacremoses import MosesTokenizer
from sacremoses.corpus import NonbreakingPrefixes
from tokenizers import Encoding, Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from transformers.tokenization_utils_base import BatchEncoding, TensorType, TruncationStrategy
from transformers.utils import PaddingStrategy, logging

from .tokenization_elmo import (
    BOS_CHAR,
    BOS_TOKEN,
    BOW_CHAR,
    CHAR_ID_OFFSET,
    DICTIONARY_SENTENCE_MARKERS,
    EOS_CHAR,
    EOS_TOKEN,
    EOW_CHAR,
    PAD_CHAR,
    PAD_TOKEN,
    PADDING_CHAR_ID,
    ElmoTokenizer,
    WordSpan,
    _batch_of_inputs,
    _describe,
)

logger = logging.get_logger(__name__)

#: The file ``save_pretrained`` writes the backend tokenizer to.
TOKENIZER_FILE = "tokenizer.json"
#: The backend's vocabulary: every word is the one token ``<word>`` (ELMo's ids are the word's characters).
WORD_TOKEN = "<word>"
BACKEND_VOCAB = {PAD_TOKEN: 0, WORD_TOKEN: 1}

#: Python's whitespace (``str.isspace``; sacremoses' ``\\s``), by which Moses separates words.
PYTHON_WHITESPACE = frozenset(chr(code) for code in range(0x3001) if chr(code).isspace())
#: The ASCII control characters that are not whitespace: Moses deletes them.
CONTROL_CHARACTERS = frozenset(chr(code) for code in range(0x20) if not chr(code).isspace())
#: Characters that Moses never pads with spaces, besides letters and digits.
_UNPADDED_PUNCTUATION = frozenset(".'`,-")
#: The languages with apostrophe rules of their own in sacremoses; every other language separates every apostrophe.
_APOSTROPHE_LANGUAGES = ("en", "fr", "it")
#: The languages to which sacremoses adds CJK scripts to the letters.
_CJK_LANGUAGES = ("zh", "ja", "ko", "cjk")
#: The languages whose Moses rules the backend tokenizer implements: sacremoses' nonbreaking-prefix languages and
#: its CJK codes. Other codes are split by sacremoses (the Python reference).
PORTED_MOSES_LANGUAGES = frozenset(NonbreakingPrefixes().available_langs.values()) | frozenset(_CJK_LANGUAGES)

_CONTROL = "[\\x00-\\x08\\x0e-\\x1b]"
_DOTMULTI = "".join(f"{letter}{_CONTROL}*" for letter in "DOTMULT") + "I"
#: Raw text that the reference must split: a line with sacremoses' ``...`` placeholder (control characters are
#: deleted first), two commas side by side, two apostrophes at most one character apart (whitespace runs and
#: control characters count as Moses counts them), or a lone surrogate.
MOSES_REFERENCE_TEXT = re.compile(
    f"{_DOTMULTI}|,{_CONTROL}*,"
    f"|'(?:[\\s\\x00-\\x08\\x0e-\\x1b]*|{_CONTROL}*[^\\s\\x00-\\x08\\x0e-\\x1b]{_CONTROL}*)'"
    "|[\\ud800-\\udfff]"
)


class _ReferenceTexts:
    """Finds the texts of a batch that the Python reference must split.

    Args:
        pattern: Matches in such a text.
        printable_signs: Substrings, and
        printable_pattern: a pattern, of which one occurs in a printable text (``str.isprintable``: no control
            characters, surrogates or whitespace but the space) where ``pattern`` matches; quick checks of a
            whole batch.
    """

    def __init__(
        self, pattern: re.Pattern, printable_signs: tuple[str, ...] = (), printable_pattern: re.Pattern | None = None
    ) -> None:
        self.pattern = pattern
        self.printable_signs = printable_signs
        self.printable_pattern = printable_pattern

    def indices(self, texts: Sequence[str], joined: str) -> list[int]:
        """The indices of the texts that need the reference; ``joined`` is ``"".join(texts)``."""
        if (
            joined.isprintable()
            and not any(sign in joined for sign in self.printable_signs)
            and (self.printable_pattern is None or self.printable_pattern.search(joined) is None)
        ):
            return []
        return [index for index, text in enumerate(texts) if self.pattern.search(text)]


_MOSES_REFERENCE = _ReferenceTexts(MOSES_REFERENCE_TEXT, ("DOTMULTI", ",,"), re.compile("'(?: +|[^ ])?'"))
#: For the languages without apostrophe rules of their own, where apostrophes cannot interact.
_MOSES_REFERENCE_NO_APOSTROPHES = _ReferenceTexts(
    re.compile(f"{_DOTMULTI}|,{_CONTROL}*,|[\\ud800-\\udfff]"), ("DOTMULTI", ",,")
)
#: For the whitespace splitter: Rust strings cannot hold lone surrogates.
_WHITESPACE_REFERENCE = _ReferenceTexts(re.compile("[\\ud800-\\udfff]"))

_ENCODING_STATE = (
    '{{"ids":{ids},"type_ids":{zeros},"tokens":{tokens},"words":{words},"offsets":{offsets},'
    '"special_tokens_mask":{zeros},"attention_mask":{ones},"overflowing":[],"sequence_ranges":{{}}}}'
)


# ---------------------------------------------------------------------------------------------- regular expressions


def _escape(char: str) -> str:
    """One character in an Oniguruma pattern: ASCII letters and digits as they are, the rest as ``\\x{HEX}``."""
    return char if char.isascii() and char.isalnum() else f"\\x{{{ord(char):X}}}"


def regex_class(chars: set[str] | frozenset[str], negate: bool = False) -> str:
    """An Oniguruma character class of exactly ``chars`` (or of every other character), as ranges."""
    if not chars:
        return "[\\x{0}-\\x{10FFFF}]" if negate else "(?!)"
    codes = sorted({ord(char) for char in chars})
    parts = []
    start = 0
    while start < len(codes):
        end = start
        while end + 1 < len(codes) and codes[end + 1] == codes[end] + 1:
            end += 1
        first, last = _escape(chr(codes[start])), _escape(chr(codes[end]))
        parts.append(first if end == start else f"{first}{last}" if end == start + 1 else f"{first}-{last}")
        start = end + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _literal(text: str) -> str:
    return "".join(_escape(char) for char in text)


@dataclass(frozen=True)
class MosesCharacters:
    """sacremoses' character lists for one language, as sets (without ``\\n``, which it lists among the numbers:
    lines are tokenized one by one)."""

    #: What Moses does not pad with spaces, with ``.'`,-`` (the language's ``IsAlnum``, CJK scripts included).
    letters_and_digits: frozenset[str]
    #: The letters of the apostrophe rules (the class's ``IsAlpha``: sacremoses compiles those rules once).
    letters: frozenset[str]
    #: The letters of the nonbreaking-prefix rule (the language's ``IsAlpha``).
    any_letters: frozenset[str]
    #: The digits of the comma and apostrophe rules (``IsN``).
    numbers: frozenset[str]
    #: The lowercase letters of the nonbreaking-prefix rule (``IsLower``).
    lowercase: frozenset[str]


@functools.cache
def moses_characters(language: str) -> MosesCharacters:
    """The character sets of ``MosesTokenizer(language)``."""
    moses = MosesTokenizer(lang=language)
    return MosesCharacters(
        letters_and_digits=frozenset(moses.IsAlnum),
        letters=frozenset(type(moses).IsAlpha),
        any_letters=frozenset(moses.IsAlpha),
        numbers=frozenset(type(moses).IsN) - {"\n"},
        lowercase=frozenset(moses.IsLower),
    )


@dataclass(frozen=True)
class MosesPatterns:
    """The backend's regular expressions for one Moses language: the normalizer's ``(pattern, replacement)`` steps
    and the pre-tokenizer's word pattern."""

    normalizer: tuple[tuple[str, str], ...]
    words: str


@functools.cache
def moses_patterns(language: str) -> MosesPatterns:
    """The regular expressions that split text like ``MosesTokenizer(language).tokenize(line, escape=False)``.

    The character classes are sacremoses' own (its Perl Unicode properties and the language's nonbreaking
    prefixes); ``tests/test_fast_tokenizer.py`` checks them against sacremoses' compiled patterns.
    """
    if language not in PORTED_MOSES_LANGUAGES:
        raise ValueError(f"the Moses rules of {language!r} are not ported; ported: {sorted(PORTED_MOSES_LANGUAGES)}")
    moses = MosesTokenizer(lang=language)
    characters = moses_characters(language)
    letters_and_digits, letters, any_letters = characters.letters_and_digits, characters.letters, characters.any_letters
    # Moses pads everything but letters, digits, whitespace and .'`,- with spaces before the comma and apostrophe
    # rules run, so a padded number counts as a space there.
    unpadded_numbers = characters.numbers & letters_and_digits
    lowercase = characters.lowercase
    whitespace = PYTHON_WHITESPACE
    word_chars = letters_and_digits | _UNPADDED_PUNCTUATION
    padded_lowercase = lowercase - word_chars - whitespace - CONTROL_CHARACTERS

    space = regex_class(whitespace - {"\n"})  # within a line
    non_space = regex_class(whitespace, negate=True)
    # A space that Moses keeps between two words: something before it on the line.
    space_before = f"(?<={non_space}{space}+"
    space_after = f"(?={space}+{non_space})"
    line_end = f"(?={space}*(?:\\n|\\z))"
    letter = regex_class(letters)
    non_letter = regex_class(letters | whitespace, negate=True)
    non_number = regex_class(unpadded_numbers | whitespace, negate=True)
    neither = regex_class(letters | unpadded_numbers | whitespace, negate=True)

    steps = [(regex_class(CONTROL_CHARACTERS) + "+", "")]
    # ([^N]), → " , "; ,([^N]) → " , "; ([N]),$ → " , ": a comma is separated if the line has a non-digit (or a
    # space) just before or after it, or if it ends a line after something.
    steps.append(
        (
            f",(?:(?<={non_number},)|{space_before},)|(?={non_number})|{space_after}"
            f"|{line_end}(?<={non_space}{space}*,))",
            " , ",
        )
    )
    previous_non_letter = f"(?:(?<={non_letter}')|{space_before}'))"
    previous_neither = f"(?:(?<={neither}')|{space_before}'))"
    next_non_letter = f"(?:(?={non_letter})|{space_after})"
    if language == "en":
        # ([^A])'([^A]), ([^AN])'([A]), ([A])'([^A]) → " ' "; then ([A])'([A]), ([N])'(s) → " '".
        separated = (
            f"{previous_non_letter}{next_non_letter}|{previous_neither}(?={letter})|(?<={letter}'){next_non_letter}"
        )
        steps.append((f"'(?:{separated})", " ' "))
        steps.append((f"'(?:(?<={letter}')(?={letter})|(?<={regex_class(unpadded_numbers)}')(?=s))", " '"))
    elif language in _APOSTROPHE_LANGUAGES:
        # ([^A])'([^A]), ([^A])'([A]), ([A])'([^A]) → " ' "; then ([A])'([A]) → "' ".
        separated = (
            f"{previous_non_letter}{next_non_letter}|{previous_non_letter}(?={letter})|(?<={letter}'){next_non_letter}"
        )
        steps.append((f"'(?:{separated})", " ' "))
        steps.append((f"'(?<={letter}')(?={letter})", "' "))
    else:
        steps.append(("'", " ' "))
    if language in _APOSTROPHE_LANGUAGES:
        # \.' ?$ → " . ' " (other languages have separated the apostrophe already).
        steps.append((f"\\.(?<!\\.\\.)(?='{space}*(?:\\n|\\z))", " . "))

    word = regex_class(word_chars)
    undotted = regex_class(word_chars - {"."})
    padded = regex_class(word_chars | whitespace, negate=True)
    final_period = f"\\.(?!{word})"
    keep_prefixes = [
        prefix
        for prefix in moses.NONBREAKING_PREFIXES
        if prefix not in moses.NUMERIC_ONLY_PREFIXES and set(prefix) <= word_chars and ".." not in prefix
    ]
    numeric_prefixes = [prefix for prefix in moses.NUMERIC_ONLY_PREFIXES if set(prefix) <= word_chars]
    # Moses keeps a word's final period if the word has another period and a letter, or is a nonbreaking prefix,
    # or the next word of the line starts with a lowercase letter, or is a numeric-only prefix before a number.
    next_lowercase = f"{space}+{regex_class(lowercase)}" + (
        f"|{regex_class(padded_lowercase)}" if padded_lowercase else ""
    )
    keeps = [f"(?={word}*\\.{undotted}){word}*{regex_class(any_letters)}", f"{word}*\\.(?:{next_lowercase})"]
    if keep_prefixes:
        alternatives = "|".join(_literal(prefix) for prefix in sorted(keep_prefixes, key=len, reverse=True))
        keeps.append(f"(?:{alternatives}){final_period}")
    if numeric_prefixes:
        alternatives = "|".join(_literal(prefix) for prefix in sorted(numeric_prefixes, key=len, reverse=True))
        keeps.append(f"(?:{alternatives})\\.{space}+[0-9]")
    period_split = (
        f"(?<!{undotted})(?=\\.?(?>(?:{undotted}+\\.)+)(?!{word}))(?!{'|'.join(keeps)}){word}+?(?={final_period})"
    )
    # A padded character; a word without a final period (the common case, tried first); a run of dots; a word
    # whose final period is split off; a word that keeps it; a lone period.
    no_final_period = f"(?>\\.?(?:{undotted}+\\.)*{undotted}+)(?!\\.(?!\\.))"
    words = f"{padded}|{no_final_period}|\\.{{2,}}|{period_split}|\\.?(?:{undotted}+\\.)+|\\."
    return MosesPatterns(normalizer=tuple(steps), words=words)


def _backend(normalizer_steps: Sequence[tuple[str, str]], word_pattern: str) -> Tokenizer:
    """A `tokenizers.Tokenizer` whose tokens are the words that ``word_pattern`` matches after the normalizer."""
    backend = Tokenizer(WordLevel(BACKEND_VOCAB, unk_token=WORD_TOKEN))
    if normalizer_steps:
        backend.normalizer = normalizers.Sequence(
            [normalizers.Replace(Regex(pattern), replacement) for pattern, replacement in normalizer_steps]
        )
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(word_pattern), behavior="removed", invert=True)
    return backend


def whitespace_word_pattern() -> str:
    """The words of the whitespace splitter: runs of anything but Python's whitespace."""
    return regex_class(PYTHON_WHITESPACE, negate=True) + "+"


# ---------------------------------------------------------------------------------------------- encodings


@functools.lru_cache(maxsize=256)
def _constant_lists(length: int) -> dict[str, str]:
    """JSON lists of an Encoding state that depend only on its length."""
    return {
        "ids": json.dumps([BACKEND_VOCAB[WORD_TOKEN]] * length),
        "zeros": json.dumps([0] * length),
        "ones": json.dumps([1] * length),
        "tokens": json.dumps([WORD_TOKEN] * length),
        "words": json.dumps(list(range(length))),
    }


def encoding_of_offsets(offsets: Sequence[Sequence[int]]) -> Encoding:
    """The `tokenizers.Encoding` of one sequence whose words have these character offsets (one token per word):
    what the backend gives, for words that the backend did not split (pre-split words, the reference's words)."""
    pairs = json.dumps([list(pair) for pair in offsets])
    state = _ENCODING_STATE.format(offsets=pairs, **_constant_lists(len(offsets)))
    encoding = Encoding()
    encoding.__setstate__(state.encode())
    return encoding


class _LazilyPaddedEncodings(list):
    """A batch's Encodings, each padded to its sequence's padded length when it is first read (padding an Encoding
    costs a tenth of the whole encoding, and most callers never read them). Pickles and copies as a plain list of
    padded Encodings."""

    def __init__(self, encodings: list[Encoding], lengths: list[int], pad_token: str) -> None:
        super().__init__(encodings)
        self._pending = {
            index: length for index, (encoding, length) in enumerate(zip(encodings, lengths, strict=True))
            if len(encoding) < length
        }
        self._pad_token = pad_token

    def _padded(self, index: int) -> Encoding:
        encoding = list.__getitem__(self, index)
        length = self._pending.pop(index % len(self), None)
        if length is not None:
            encoding.pad(length, pad_id=BACKEND_VOCAB[PAD_TOKEN], pad_token=self._pad_token)
        return encoding

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._padded(position) for position in range(*index.indices(len(self)))]
        return self._padded(index)

    def __iter__(self) -> Any:
        return (self._padded(index) for index in range(len(self)))

    def __reduce__(self) -> tuple[type, tuple[list[Encoding]]]:
        return list, (list(self),)


# ---------------------------------------------------------------------------------------------- character ids


@dataclass
class _Words:
    """The words of a batch, in order (sequence after sequence): ``text[starts[i]:ends[i]]`` is word ``i`` (``text``
    holds the batch's characters), ``offsets[i]`` its offsets as reported (into its own sequence), ``counts`` the
    number of words of each sequence."""

    text: str
    starts: np.ndarray
    ends: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray


def _code_points(text: str) -> np.ndarray:
    """The code points of ``text`` (lone surrogates included) as uint32."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _utf8(text: str, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The UTF-8 bytes of ``text`` without lone surrogates (``encode("utf-8", "ignore")``) and the byte offsets of
    the character offsets ``starts`` and ``ends``."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8), starts, ends
    codes = _code_points(text)
    widths = 1 + (codes >= 0x80).astype(np.int64) + (codes >= 0x800) + (codes >= 0x10000)
    widths[(codes >= 0xD800) & (codes <= 0xDFFF)] = 0
    positions = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(widths, out=positions[1:])
    return np.frombuffer(text.encode("utf-8", "ignore"), dtype=np.uint8), positions[starts], positions[ends]


def _spread(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``start, start + 1, …, start + length - 1`` for every (start, length), concatenated."""
    total = int(lengths.sum())
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)


def _fill_rows(
    out: np.ndarray,
    rows: np.ndarray,
    chars: np.ndarray,
    sources: np.ndarray,
    lengths: np.ndarray,
    begin: int,
    end: int,
    padding: int,
) -> None:
    """Write ``[begin, chars[source : source + length] …, end, padding …]`` into the given rows of ``out``."""
    width = out.shape[1]
    template = np.full(width, padding, dtype=np.int64)
    template[0] = begin
    out[rows] = template
    flat = out.reshape(-1)
    positions = _spread(sources, lengths)
    flat[positions + np.repeat(rows * width + 1 - sources, lengths)] = chars[positions]
    flat[rows * width + 1 + lengths] = end


def _marker_rows(out: np.ndarray, found: np.ndarray, begin: int, marker: int, end: int, padding: int) -> None:
    """Turn the rows ``found`` of ``out`` into the sentence marker's row ``[begin, marker, end, padding …]``."""
    if len(found):
        out[found] = padding
        out[found, :3] = [begin, marker, end]


def _starting_with(values: np.ndarray, starts: np.ndarray, prefix: np.ndarray) -> np.ndarray:
    """Which ``values[start:]`` begin with ``prefix`` (a bool per start)."""
    padded = np.concatenate([values, np.zeros(len(prefix), dtype=values.dtype)])
    return (padded[starts[:, None] + np.arange(len(prefix))] == prefix).all(axis=1)


def fill_utf8_char_ids(
    out: np.ndarray,
    rows: np.ndarray,
    text: str,
    starts: np.ndarray,
    ends: np.ndarray,
    literal_sentence_markers: bool = False,
) -> None:
    """Write the character ids of the words ``text[start:end]`` into the given rows of ``out`` (``(rows, width)``
    int64), all at once: each row equals :func:`~.tokenization_elmo.word_to_char_ids` of its word (UTF-8 bytes cut
    at ``width - 2``, the sentence markers' rows for ``<S>`` and ``</S>``)."""
    data, byte_starts, byte_ends = _utf8(text, starts, ends)
    byte_lengths = byte_ends - byte_starts
    lengths = np.minimum(byte_lengths, out.shape[1] - 2)
    shifted = data.astype(np.int64) + CHAR_ID_OFFSET
    begin, end, padding = BOW_CHAR + CHAR_ID_OFFSET, EOW_CHAR + CHAR_ID_OFFSET, PAD_CHAR + CHAR_ID_OFFSET
    _fill_rows(out, rows, shifted, byte_starts, lengths, begin, end, padding)
    char_lengths = ends - starts
    for marker, char in ((BOS_TOKEN, BOS_CHAR), (EOS_TOKEN, EOS_CHAR)):
        if literal_sentence_markers or marker not in text:
            continue
        candidates = np.flatnonzero((char_lengths == len(marker)) & (byte_lengths == len(marker)))
        prefix = np.frombuffer(marker.encode(), dtype=np.uint8)
        found = candidates[_starting_with(data, byte_starts[candidates], prefix)]
        _marker_rows(out, rows[found], begin, char + CHAR_ID_OFFSET, end, padding)


# ---------------------------------------------------------------------------------------------- the tokenizer


class ElmoTokenizerFast(ElmoTokenizer):
    """:class:`ElmoTokenizer` on the `tokenizers` library: the same words, offsets and ids, much faster.

    Everything documented for :class:`ElmoTokenizer` holds (arguments, outputs, padding, truncation, decoding,
    saving); in addition the encodings know their words: ``encoding.word_ids(i)`` gives, for every position of
    sequence ``i``, the index of its word (``None`` for padding), and ``word_to_chars``, ``char_to_word``,
    ``token_to_chars`` map words to character spans and back, as for any fast tokenizer (every token is a word).
    ``tokenizer.json`` (written by ``save_pretrained``) holds the backend tokenizer; loading rebuilds it from
    ``tokenizer_config.json`` (and warns if a saved ``tokenizer.json`` differs). ``ElmoTokenizer.from_pretrained``
    loads the same folder as the Python tokenizer.
    """

    slow_tokenizer_class = ElmoTokenizer
    can_save_slow_tokenizer = True

    def __init__(self, *args: Any, tokenizer_file: str | os.PathLike | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.native_splitting = self.word_splitter == "whitespace" or self.moses_language in PORTED_MOSES_LANGUAGES
        if self.word_splitter == "whitespace":
            self._tokenizer = _backend((), whitespace_word_pattern())
            self._reference_texts: _ReferenceTexts | None = _WHITESPACE_REFERENCE
        elif self.native_splitting:
            patterns = moses_patterns(self.moses_language)
            self._tokenizer = _backend(patterns.normalizer, patterns.words)
            apostrophes = self.moses_language in _APOSTROPHE_LANGUAGES
            self._reference_texts = _MOSES_REFERENCE if apostrophes else _MOSES_REFERENCE_NO_APOSTROPHES
        else:
            logger.warning(
                f"The Moses rules of language {self.moses_language!r} are not ported to the tokenizers backend; "
                "sacremoses splits the words."
            )
            self._tokenizer = _backend((), whitespace_word_pattern())
            self._reference_texts = None
        if self.char_vocab is not None:
            self._set_dictionary_arrays()
        if tokenizer_file is not None:
            self._check_saved_backend(tokenizer_file)

    def _check_saved_backend(self, tokenizer_file: str | os.PathLike) -> None:
        """Warn if a saved ``tokenizer.json`` is not the backend that these settings build."""
        try:
            with open(tokenizer_file, encoding="utf-8") as handle:
                saved = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            logger.warning(f"Cannot read {tokenizer_file} ({error}); the backend is built from the settings.")
            return
        built = json.loads(self._tokenizer.to_str())
        parts = ("normalizer", "pre_tokenizer", "model")
        if not isinstance(saved, dict) or any(saved.get(part) != built.get(part) for part in parts):
            logger.warning(
                f"{tokenizer_file} differs from the backend that this version builds from tokenizer_config.json "
                f"(word_splitter={self.word_splitter!r}, moses_language={self.moses_language!r}); it is ignored."
            )

    def _set_dictionary_arrays(self) -> None:
        """Sorted code points and shifted ids of the single-character entries of the character dictionary."""
        entries = sorted((ord(char), char_id) for char, char_id in self.char_vocab.items() if len(char) == 1)
        self._dictionary_codes = np.array([code for code, _ in entries], dtype=np.uint32)
        self._dictionary_ids = np.array([char_id + CHAR_ID_OFFSET for _, char_id in entries], dtype=np.int64)

    # ------------------------------------------------------------------ fast tokenizer API

    @property
    def is_fast(self) -> bool:
        """True."""
        return True

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The `tokenizers.Tokenizer` that splits words (see the module docstring for what it leaves to Python)."""
        return self._tokenizer

    def _save_pretrained(
        self,
        save_directory: str | os.PathLike,
        file_names: tuple[str, ...],
        legacy_format: bool | None = None,
        filename_prefix: str | None = None,
    ) -> tuple[str, ...]:
        """The Python tokenizer's files (its settings and dictionaries, which loading needs) and ``tokenizer.json``
        with the backend tokenizer (``legacy_format`` has no effect: there is one format)."""
        file_names = super()._save_pretrained(save_directory, file_names, None, filename_prefix)
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + TOKENIZER_FILE)
        self._tokenizer.save(path)
        return (*file_names, path)

    # ------------------------------------------------------------------ words

    def split_words(self, text: str) -> list[WordSpan]:
        """Split raw text into words with their ``(start, end)`` character offsets (``text[start:end] == word``)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {_describe(text)}")
        return self.batch_split_words([text])[0]

    def batch_split_words(self, texts: Sequence[str]) -> list[list[WordSpan]]:
        """:meth:`split_words` of every text, split in parallel by the backend."""
        return [
            [(text[start:end], (start, end)) for start, end in encoding.offsets]
            for text, encoding in zip(texts, self._encodings_of_texts(texts, "".join(texts)), strict=True)
        ]

    def _encodings_of_texts(self, texts: Sequence[str], joined: str) -> list[Encoding]:
        """One Encoding per text (a token per word, character offsets into the text); ``joined`` is
        ``"".join(texts)``."""
        if self._reference_texts is None:
            reference = list(range(len(texts)))
        else:
            reference = self._reference_texts.indices(texts, joined)
        if not reference:
            return self._tokenizer.encode_batch(texts, add_special_tokens=False)
        encodings: list[Encoding | None] = [None] * len(texts)
        for index in reference:
            encodings[index] = encoding_of_offsets([offsets for _, offsets in self._splitter(texts[index])])
        referenced = set(reference)
        native = [index for index in range(len(texts)) if index not in referenced]
        native_encodings = self._tokenizer.encode_batch([texts[index] for index in native], add_special_tokens=False)
        for index, encoding in zip(native, native_encodings, strict=True):
            encodings[index] = encoding
        return encodings

    def _words_of_texts(self, texts: Sequence[str]) -> tuple[_Words, list[Encoding]]:
        """The words of raw texts and their Encodings."""
        joined = "".join(texts)
        encodings = self._encodings_of_texts(texts, joined)
        counts = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
        total = int(counts.sum())
        offsets = np.fromiter(
            chain.from_iterable(chain.from_iterable(encoding.offsets for encoding in encodings)),
            dtype=np.int64,
            count=2 * total,
        ).reshape(total, 2)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        bases = np.repeat(np.cumsum(lengths) - lengths, counts)
        return _Words(joined, offsets[:, 0] + bases, offsets[:, 1] + bases, offsets, counts), encodings

    @staticmethod
    def _words_of_lists(sequences: Sequence[Sequence[str]]) -> tuple[_Words, list[Encoding]]:
        """Pre-split words, with offsets into each sequence's words joined by single spaces, and their Encodings."""
        counts = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        flat = list(chain.from_iterable(sequences))
        lengths = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
        ends = np.cumsum(lengths)
        joined_starts = np.cumsum(lengths + 1) - lengths - 1
        sequence_starts = np.repeat(joined_starts[(np.cumsum(counts) - counts)[counts > 0]], counts[counts > 0])
        local_starts = joined_starts - sequence_starts
        offsets = np.stack([local_starts, local_starts + lengths], axis=1)
        splits = np.split(offsets, np.cumsum(counts)[:-1].tolist()) if len(sequences) else []
        encodings = [encoding_of_offsets(pairs.tolist()) for pairs in splits]
        return _Words("".join(flat), ends - lengths, ends, offsets, counts), encodings

    # ------------------------------------------------------------------ character ids

    def words_to_char_ids(self, words: Sequence[str]) -> np.ndarray:
        """The rows of character ids of several words as one ``(len(words), max_characters_per_token)`` int64 array,
        computed at once (what :meth:`convert_tokens_to_ids` gives as lists)."""
        bad = next((word for word in words if not isinstance(word, str)), None)
        if bad is not None:
            raise TypeError(f"word must be a str, got {type(bad).__name__}")
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        ends = np.cumsum(lengths)
        offsets = np.stack([ends - lengths, ends], axis=1)
        words = _Words("".join(words), ends - lengths, ends, offsets, np.array([len(words)]))
        out = np.empty((len(lengths), self.max_characters_per_token), dtype=np.int64)
        self._fill_char_ids(out, np.arange(len(lengths)), words)
        return out

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> list[int] | list[list[int]]:
        """Character ids of one word (a row) or of several words (a list of rows)."""
        if isinstance(tokens, str):
            return self._char_ids(tokens)
        return self.words_to_char_ids(tokens).tolist()

    def _fill_char_ids(self, out: np.ndarray, rows: np.ndarray, words: _Words) -> None:
        """Write the character ids of the words into the given rows of ``out``."""
        if self.char_vocab is None:
            fill_utf8_char_ids(out, rows, words.text, words.starts, words.ends, self.literal_sentence_markers)
            return
        codes = _code_points(words.text)
        lengths = np.minimum(words.ends - words.starts, out.shape[1] - 2)
        dictionary = self._dictionary_codes
        slots = np.searchsorted(dictionary, codes).clip(max=max(len(dictionary) - 1, 0))
        known = dictionary[slots] == codes if len(dictionary) else np.zeros(len(codes), dtype=bool)
        ids = np.where(known, self._dictionary_ids[slots] if len(dictionary) else 0, self._unknown_char)
        _fill_rows(out, rows, ids, words.starts, lengths, self._begin_of_word, self._end_of_word, self._padding_char)
        if self.literal_sentence_markers:
            return
        for marker in DICTIONARY_SENTENCE_MARKERS:
            if marker not in words.text:
                continue
            candidates = np.flatnonzero(lengths == len(marker))
            found = candidates[_starting_with(codes, words.starts[candidates], _code_points(marker))]
            begin, end, padding = self._begin_of_word, self._end_of_word, self._padding_char
            _marker_rows(out, rows[found], begin, self._sentence_marker_chars[marker], end, padding)

    def _dictionary_word_ids(self, words: _Words) -> np.ndarray:
        """Word ids of dictionary mode: each word cut like its characters, then looked up (``<oov>`` if unknown)."""
        cut = self.max_characters_per_token - 2
        text, vocab, unknown = words.text, self.word_vocab, self.word_vocab["<oov>"]
        spans = zip(words.starts.tolist(), np.minimum(words.ends, words.starts + cut).tolist(), strict=True)
        return np.fromiter(
            (vocab.get(text[start:end], unknown) for start, end in spans), dtype=np.int64, count=len(words.starts)
        )

    # ------------------------------------------------------------------ encoding

    def _encode_plus(
        self,
        text: Any,
        text_pair: Any = None,
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        split_special_tokens: bool = False,
        **kwargs: Any,
    ) -> BatchEncoding:
        """Encode one text or a batch (called by ``__call__`` and ``encode``); see :class:`ElmoTokenizer`."""
        if text_pair is not None:
            raise ValueError("ElmoTokenizer encodes single sequences; text_pair is not supported")
        if return_overflowing_tokens:
            raise ValueError("ElmoTokenizer does not support return_overflowing_tokens")
        if kwargs:
            logger.warning(f"Keyword arguments {sorted(kwargs)} not recognized by ElmoTokenizer; ignored.")
        self._check_padding_side(padding_side)
        if return_tensors is not None:
            kind = TensorType(return_tensors)
            if kind not in (TensorType.PYTORCH, TensorType.NUMPY):
                raise ValueError(f"ElmoTokenizer supports return_tensors='pt' or 'np', got {return_tensors!r}")
        sequences, batched = _batch_of_inputs(text, is_split_into_words)
        if is_split_into_words:
            words, encodings = self._words_of_lists(sequences)
        else:
            words, encodings = self._words_of_texts(sequences)

        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length is not None:
            words = self._truncated(words, encodings, max_length)

        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        counts = words.counts
        targets = counts.copy()
        if padding_strategy == PaddingStrategy.LONGEST:
            padding_strategy, max_length = PaddingStrategy.MAX_LENGTH, int(counts.max(initial=0))
        if padding_strategy != PaddingStrategy.DO_NOT_PAD and max_length is not None:
            if pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
                max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
            targets = np.maximum(counts, max_length)
        if padding_strategy != PaddingStrategy.DO_NOT_PAD:
            encodings = _LazilyPaddedEncodings(encodings, targets.tolist(), str(self.pad_token or PAD_TOKEN))

        values = self._padded_values(
            words, targets, return_attention_mask, return_special_tokens_mask, return_offsets_mapping
        )
        data = self._gathered(values, targets, return_tensors)
        if return_length:
            data["length"] = counts.tolist()
        if return_tensors is None and not batched:
            data = {key: value[0] for key, value in data.items()}
        return BatchEncoding(data, encoding=encodings, tensor_type=return_tensors, n_sequences=1)

    def _truncated(self, words: _Words, encodings: list[Encoding], max_length: int) -> _Words:
        """The first (or, with ``truncation_side="left"``, last) ``max_length`` words of every sequence."""
        counts = words.counts
        if not (counts > max_length).any():
            return words
        position = np.arange(len(words.starts)) - np.repeat(np.cumsum(counts) - counts, counts)
        if self.truncation_side == "left":
            keep = position >= np.repeat(counts - max_length, counts)
        else:
            keep = position < max_length
        for encoding, count in zip(encodings, counts.tolist(), strict=True):
            if count > max_length:
                encoding.truncate(max_length, direction=self.truncation_side)
        return _Words(
            words.text, words.starts[keep], words.ends[keep], words.offsets[keep], np.minimum(counts, max_length)
        )

    def _padded_values(
        self,
        words: _Words,
        targets: np.ndarray,
        attention_mask: bool,
        special_tokens_mask: bool,
        offsets_mapping: bool,
    ) -> dict[str, np.ndarray]:
        """Every per-word output as one array over the padded positions of all sequences (sequence after
        sequence, ``targets`` positions each)."""
        counts = words.counts
        total = int(targets.sum())
        shift = (np.cumsum(targets) - targets) - (np.cumsum(counts) - counts)
        real = np.arange(len(words.starts)) + np.repeat(shift, counts)
        input_ids = np.full((total, self.max_characters_per_token), PADDING_CHAR_ID, dtype=np.int64)
        self._fill_char_ids(input_ids, real, words)
        values = {"input_ids": input_ids}
        if attention_mask:
            values["attention_mask"] = np.zeros(total, dtype=np.int64)
            values["attention_mask"][real] = 1
        if self.word_vocab is not None:
            values["word_ids"] = np.full(total, self.word_vocab["<pad>"], dtype=np.int64)
            values["word_ids"][real] = self._dictionary_word_ids(words)
        if special_tokens_mask:
            values["special_tokens_mask"] = np.ones(total, dtype=np.int64)
            values["special_tokens_mask"][real] = 0
        if offsets_mapping:
            values["offset_mapping"] = np.zeros((total, 2), dtype=np.int64)
            values["offset_mapping"][real] = words.offsets
        return values

    @staticmethod
    def _gathered(
        values: dict[str, np.ndarray], targets: np.ndarray, return_tensors: str | TensorType | None
    ) -> dict[str, Any]:
        """The flat padded arrays as the outputs: ``(batch, words, …)`` arrays or tensors, or a list per
        sequence."""
        if return_tensors is None:
            ends = np.cumsum(targets).tolist()
            bounds = list(zip([0, *ends[:-1]], ends, strict=True))
            data: dict[str, Any] = {}
            for key, value in values.items():
                if key == "offset_mapping":
                    data[key] = [list(map(tuple, value[start:end].tolist())) for start, end in bounds]
                else:
                    data[key] = [value[start:end].tolist() for start, end in bounds]
            return data
        lengths = sorted(set(targets.tolist()))
        if len(lengths) > 1:
            raise ValueError(
                f"Cannot make one tensor of 'input_ids' for sequences of different lengths ({lengths[0]} to "
                f"{lengths[-1]} words); pass padding=True (or padding='max_length' with max_length) "
                "to pad them, or return_tensors=None for lists."
            )
        shape = (len(targets), lengths[0] if lengths else 0)
        pytorch = TensorType(return_tensors) == TensorType.PYTORCH
        data = {}
        for key, value in values.items():
            array = value.reshape(*shape, *value.shape[1:])
            data[key] = torch.from_numpy(array) if pytorch else array
        return data
