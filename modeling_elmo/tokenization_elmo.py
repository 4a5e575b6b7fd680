"""Tokenizer for ELMo: raw text → words → 50 character ids per word.

ELMo has no word vocabulary. Every word is represented by the UTF-8 bytes of its text, so the
tokenizer only has to (1) split the text into words and (2) turn every word into a fixed-length row
of character ids. The output ``input_ids`` therefore has one more axis than usual:
``(batch, words, max_characters_per_token)``; ``attention_mask`` is ``(batch, words)``.

Character ids (identical to the original TensorFlow biLM and AllenNLP):

* the bytes of ``word.encode("utf-8", "ignore")``, cut to the first ``max_characters_per_token - 2``
  bytes (48 by default; the cut may split a multi-byte character), laid out as
  ``[BOW, b_1 … b_n, EOW, PAD, …]``;
* specials: BOS char 256, EOS char 257, BOW 258, EOW 259, PAD (inside a word) 260;
* every id is then shifted by +1, so that 0 means "no word here" (batch padding).

The model adds the sentence markers ``<S>``/``</S>`` around every sentence itself;
:func:`bos_char_ids` and :func:`eos_char_ids` give their rows ``[BOW, BOS/EOS char, EOW, PAD …]`` + 1.
As in both original implementations (bilm-tf's ``UnicodeCharsVocabulary``, AllenNLP's
``ELMoCharacterMapper``), a word of the text that is exactly ``<S>`` or ``</S>`` gets that marker's
row too, not the row of its bytes: the published vocabularies start with ``<S>``, ``</S>``, and the
models' softmax rows and token-embedding dumps were made that way. ``literal_sentence_markers=True``
encodes such a word by its bytes instead. Moses splitting breaks ``<S>`` in raw text apart
(``<``, ``S``, ``>``), so there this only concerns the whitespace splitter and pre-split words.

Dictionary mode (``character_scheme="dictionary"``, the ELMoForManyLangs models) reproduces that
project's ids instead:

* a word is cut to its first ``max_characters_per_token - 2`` *characters* (code points), and every
  character is looked up in the model's character dictionary (unknown characters get ``<oov>``'s id);
* the row is ``[<eow>, c_1 … c_n, <bow>, <pad>, …]``: ELMoForManyLangs opens every word with the id
  its dictionary lists for ``<eow>`` and closes it with ``<bow>``'s (in training and inference alike,
  so its models expect exactly that);
* the sentence markers are the rows ``[<eow>, <bos>, <bow>, <pad>, …]`` and the same with ``<eos>``;
  as in ELMoForManyLangs, a word of the text spelled ``<bos>`` or ``<eos>`` (after the cut) gets that
  row too (unless ``literal_sentence_markers``), while ``<S>``/``</S>`` are ordinary words there;
* every id is then shifted by +1, as above;
* with a word dictionary (models with a word embedding) the encoding also has ``word_ids``
  ``(batch, words)``: the dictionary id of each (cut) word, ``<oov>``'s for unknown words and
  ``<pad>``'s for padding.

The dictionaries are saved as ``char_vocab.json`` and ``word_vocab.json`` (``{entry: id}``) beside
``tokenizer_config.json``.

:class:`~.tokenization_elmo_fast.ElmoTokenizerFast` (``tokenization_elmo_fast.py``) gives exactly the same
words, offsets and ids on the `tokenizers` library, much faster; this Python tokenizer is its reference.

This module is copied verbatim to the Hugging Face Hub as remote code, so it imports only the
standard library, numpy, torch, sacremoses and transformers.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sacremoses import MosesTokenizer
from transformers.tokenization_utils_base import (
    VERY_LARGE_INTEGER,
    BatchEncoding,
    PreTrainedTokenizerBase,
    TensorType,
    TruncationStrategy,
)
from transformers.utils import PaddingStrategy, logging, to_py_obj

from .configuration_elmo import CHARACTER_SCHEMES

logger = logging.get_logger(__name__)

#: Character (byte-level) ids before the +1 shift.
BOS_CHAR = 256
EOS_CHAR = 257
BOW_CHAR = 258
EOW_CHAR = 259
PAD_CHAR = 260
#: Shift applied to every id so that 0 is free for "no word here".
CHAR_ID_OFFSET = 1
#: Character id of every position of a padding word (and the scalar ``pad_token_id``).
PADDING_CHAR_ID = 0
#: Number of distinct character ids (0 … 261), i.e. the rows of the character embedding.
NUM_CHAR_IDS = PAD_CHAR + CHAR_ID_OFFSET + 1
MAX_CHARACTERS_PER_TOKEN = 50

#: Strings used for the special rows when ids are turned back into words.
BOS_TOKEN = "<S>"
EOS_TOKEN = "</S>"
PAD_TOKEN = "<pad>"
#: The marker character of each sentence-marker word (UTF-8 byte scheme).
_SENTENCE_MARKER_CHARS = {BOS_TOKEN: BOS_CHAR, EOS_TOKEN: EOS_CHAR}

WORD_SPLITTERS = ("moses", "whitespace")

#: Entries a character dictionary must have (ELMoForManyLangs' special characters).
DICTIONARY_SPECIAL_CHARS = ("<bow>", "<eow>", "<oov>", "<pad>", "<bos>", "<eos>")
#: Entries a word dictionary must have.
DICTIONARY_SPECIAL_WORDS = ("<oov>", "<pad>")
#: The sentence-marker words of dictionary mode.
DICTIONARY_SENTENCE_MARKERS = ("<bos>", "<eos>")
#: Where the dictionaries are saved, by ``__init__`` argument.
VOCAB_FILES_NAMES = {"char_vocab_file": "char_vocab.json", "word_vocab_file": "word_vocab.json"}
#: Stands for a character id that is no character of the dictionary (e.g. ``<oov>``) when decoding.
UNKNOWN_CHARACTER = "\ufffd"

WordSpan = tuple[str, tuple[int, int]]

_NON_SPACE = re.compile(r"\S+")

#: Value appended per padding word to each per-word key other than ``input_ids``.
_PAD_VALUES: dict[str, Any] = {
    "attention_mask": 0,
    "special_tokens_mask": 1,
    "token_type_ids": 0,
    "offset_mapping": (0, 0),
}


def _check_max_characters(max_characters_per_token: int) -> None:
    if isinstance(max_characters_per_token, bool) or not isinstance(max_characters_per_token, int):
        raise TypeError(
            f"max_characters_per_token must be an int, got {type(max_characters_per_token).__name__}"
        )
    if max_characters_per_token < 3:
        raise ValueError(
            "max_characters_per_token must be at least 3 (BOW, one byte, EOW), "
            f"got {max_characters_per_token}"
        )


def word_to_char_ids(
    word: str, max_characters_per_token: int = MAX_CHARACTERS_PER_TOKEN, literal_sentence_markers: bool = False
) -> list[int]:
    """Character ids of one word, ``max_characters_per_token`` of them, all shifted by +1.

    The word's UTF-8 bytes (lone surrogates dropped) are cut to the first
    ``max_characters_per_token - 2`` bytes, which may split a multi-byte character, exactly as the
    original implementation does. The words ``<S>`` and ``</S>`` get the sentence markers' rows
    (:func:`bos_char_ids`, :func:`eos_char_ids`), as in the original.

    Args:
        word: The word (any string, also empty or containing whitespace).
        max_characters_per_token: Row length, 50 for every published ELMo model.
        literal_sentence_markers: Encode ``<S>`` and ``</S>`` by their bytes like any other word.

    Returns:
        ``[BOW, b_1 … b_n, EOW, PAD …]`` with every id + 1; never contains 0.
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    _check_max_characters(max_characters_per_token)
    if not literal_sentence_markers and word in _SENTENCE_MARKER_CHARS:
        return _marker_char_ids(_SENTENCE_MARKER_CHARS[word], max_characters_per_token)
    data = word.encode("utf-8", "ignore")[: max_characters_per_token - 2]
    ids = [BOW_CHAR + CHAR_ID_OFFSET, *(byte + CHAR_ID_OFFSET for byte in data), EOW_CHAR + CHAR_ID_OFFSET]
    ids.extend([PAD_CHAR + CHAR_ID_OFFSET] * (max_characters_per_token - len(ids)))
    return ids


def _marker_char_ids(marker: int, max_characters_per_token: int) -> list[int]:
    _check_max_characters(max_characters_per_token)
    ids = [BOW_CHAR, marker, EOW_CHAR] + [PAD_CHAR] * (max_characters_per_token - 3)
    return [char_id + CHAR_ID_OFFSET for char_id in ids]


def bos_char_ids(max_characters_per_token: int = MAX_CHARACTERS_PER_TOKEN) -> list[int]:
    """Row of the beginning-of-sentence marker ``<S>``: ``[BOW, 256, EOW, PAD …]`` + 1."""
    return _marker_char_ids(BOS_CHAR, max_characters_per_token)


def eos_char_ids(max_characters_per_token: int = MAX_CHARACTERS_PER_TOKEN) -> list[int]:
    """Row of the end-of-sentence marker ``</S>``: ``[BOW, 257, EOW, PAD …]`` + 1."""
    return _marker_char_ids(EOS_CHAR, max_characters_per_token)


def _read_vocab_file(path: str | os.PathLike) -> Any:
    """The JSON content of a saved dictionary, with a clear error for an unreadable file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the dictionary {path}: {error}") from error


def _checked_vocab(name: str, vocab: Any, required: Sequence[str]) -> dict[str, int]:
    """``vocab`` as a ``{entry: id}`` dict, after checking the ids (non-negative ints) and the required entries."""
    if not isinstance(vocab, Mapping) or not all(isinstance(key, str) for key in vocab):
        raise ValueError(f"{name} must map strings to ids, got {type(vocab).__name__}")
    for key, value in vocab.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} ids must be non-negative integers, got {value!r} for {key!r}")
    missing = [entry for entry in required if entry not in vocab]
    if missing:
        raise ValueError(f"{name} lacks the entries {missing}")
    return dict(vocab)


def _is_dropped_by_moses(char: str) -> bool:
    """Moses turns whitespace into separators and deletes ASCII control characters."""
    return char.isspace() or char < "\x20"


def _align(tokens: list[str], text: str, positions: list[int]) -> list[tuple[int, int]] | None:
    """Map tokens onto ``text`` given the positions of the characters that Moses kept.

    Moses (without XML escaping) only inserts separators and deletes whitespace and control
    characters, so the tokens concatenated must equal the kept characters. Returns ``None`` when
    they do not (Moses rewrote something), else one ``(start, end)`` per token; a span may enclose
    deleted control characters, which then stay part of the word.
    """
    if "".join(tokens) != "".join(text[i] for i in positions):
        return None
    spans = []
    cursor = 0
    for token in tokens:
        spans.append((positions[cursor], positions[cursor + len(token) - 1] + 1))
        cursor += len(token)
    return spans


def _split_whitespace(text: str) -> list[WordSpan]:
    return [(match.group(), match.span()) for match in _NON_SPACE.finditer(text)]


class _MosesSplitter:
    """Moses tokenizer.perl rules (via sacremoses, no escaping), aligned back to the raw text.

    Like tokenizer.perl, which reads one sentence per line, every line is tokenized on its own. If
    the tokens of a line cannot be aligned (sacremoses rewrites literal ``DOT…MULTI`` strings,
    its internal placeholder for ``...``), that line falls back to tokenizing each whitespace-
    separated chunk on its own, and a chunk that still does not align becomes one word.
    """

    def __init__(self, language: str) -> None:
        self.moses = MosesTokenizer(lang=language)

    def __call__(self, text: str) -> list[WordSpan]:
        spans: list[tuple[int, int]] = []
        line_start = 0
        for line in text.split("\n"):
            spans.extend((start + line_start, end + line_start) for start, end in self._split_line(line))
            line_start += len(line) + 1
        return [(text[start:end], (start, end)) for start, end in spans]

    def _split_line(self, line: str) -> list[tuple[int, int]]:
        positions = [i for i, char in enumerate(line) if not _is_dropped_by_moses(char)]
        if not positions:
            return []
        spans = _align(self.moses.tokenize(line, escape=False), line, positions)
        if spans is not None:
            return spans
        spans = []
        for chunk in _NON_SPACE.finditer(line):
            kept = [i for i in range(*chunk.span()) if not _is_dropped_by_moses(line[i])]
            if not kept:
                continue
            chunk_spans = _align(self.moses.tokenize(chunk.group(), escape=False), line, kept)
            spans.extend(chunk_spans if chunk_spans is not None else [(kept[0], kept[-1] + 1)])
        return spans


def _is_str_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)


def _describe(value: Any) -> str:
    """Short description of an unexpected input for error messages."""
    if isinstance(value, (list, tuple)):
        bad = next((item for item in value if not isinstance(item, str)), None)
        if bad is not None:
            return f"a {type(value).__name__} containing a {type(bad).__name__} ({bad!r:.40})"
    return f"{type(value).__name__} ({value!r:.40})"


def _batch_of_inputs(text: Any, is_split_into_words: bool) -> tuple[list[Any], bool]:
    """The sequences of a tokenizer call (texts, or lists of words with ``is_split_into_words``) and whether the
    input was a batch; a clear ``TypeError`` for anything else."""
    if is_split_into_words:
        if _is_str_list(text):
            return [text], False
        if isinstance(text, (list, tuple)) and all(_is_str_list(words) for words in text):
            return list(text), True
        raise TypeError(
            "With is_split_into_words=True, text must be a list of str (one sequence of words) or a "
            f"list of lists of str (a batch); got {_describe(text)}"
        )
    if isinstance(text, str):
        return [text], False
    if _is_str_list(text):
        return list(text), True
    if isinstance(text, (list, tuple)) and text and all(_is_str_list(item) for item in text):
        raise TypeError("Got lists of str: pass is_split_into_words=True for pre-split words")
    raise TypeError(f"text must be a str or a list of str, got {_describe(text)}")


class ElmoTokenizer(PreTrainedTokenizerBase):
    """Splits text into words and maps every word to ELMo's character ids.

    Calling the tokenizer returns a :class:`~transformers.BatchEncoding` with

    * ``input_ids``: ``(batch, words, max_characters_per_token)`` character ids (see
      :func:`word_to_char_ids`); padding words are all-zero rows;
    * ``attention_mask``: ``(batch, words)``, 1 for real words, 0 for padding;
    * ``word_ids`` (dictionary mode with a word dictionary only): ``(batch, words)`` word ids;
    * ``offset_mapping`` (with ``return_offsets_mapping=True``): ``(batch, words, 2)`` character
      offsets into the raw text; ``text[start:end]`` is always exactly the word that was encoded.
      For pre-split input (``is_split_into_words=True``) offsets refer to the words joined by single
      spaces; the words are used as given (not split further, even if they contain whitespace).

    A single unbatched text without ``return_tensors`` gives ``(words, 50)`` nested lists, as
    Hugging Face tokenizers do for flat ids. ``padding``, ``truncation`` and ``max_length`` count
    words. Padding is always on the right. The sentence markers ``<S>``/``</S>`` are added by the
    model, not here, so ``add_special_tokens`` has no effect; a word of the text that is exactly
    ``<S>`` or ``</S>`` gets the marker's row, as in the original (see the module docstring).
    ``return_length`` gives the number of real words of each sequence.

    Args:
        word_splitter: ``"moses"`` (default): the Moses ``tokenizer.perl`` rules that produced the
            1B Word Benchmark text ELMo was trained on (``don't`` → ``don 't``, ``U.S.`` kept,
            punctuation split off, hyphenated words kept), aligned back to the raw text. Moses
            deletes ASCII control characters; one inside a word stays part of that word here, so
            that every word is a slice of the text. ``"whitespace"``: split on Unicode whitespace.
        moses_language: Language of the Moses rules (nonbreaking prefixes, apostrophes).
        max_characters_per_token: Length of a word's row of character ids (50 for all published
            models).
        model_max_length: Maximum number of words; unlimited by default (ELMo is an LSTM).
        pad_token: Name of the padding word; its row is all zeros and ``pad_token_id`` is 0.
        character_scheme: ``"utf8_bytes"`` (default: bilm-tf's UTF-8 byte ids) or ``"dictionary"``
            (ELMoForManyLangs' dictionary ids, see the module docstring).
        char_vocab: The character dictionary ``{entry: id}`` of dictionary mode, with the entries
            ``<bow> <eow> <oov> <pad> <bos> <eos>``.
        word_vocab: The optional word dictionary of dictionary mode, with ``<oov>`` and ``<pad>``;
            with it the encodings have ``word_ids``.
        char_vocab_file, word_vocab_file: The same dictionaries as saved JSON files (what
            ``from_pretrained`` passes).
        literal_sentence_markers: ``False`` (default, as the original): a word that is exactly a
            sentence marker (``<S>``/``</S>``; ``<bos>``/``<eos>`` in dictionary mode) gets the
            marker's row. ``True``: such a word is encoded like any other (its bytes or characters).
        **kwargs: Passed to :class:`~transformers.PreTrainedTokenizerBase` (e.g. ``truncation_side``).
    """

    model_input_names = ["input_ids", "attention_mask"]  # noqa: RUF012
    vocab_files_names = VOCAB_FILES_NAMES

    def __init__(
        self,
        word_splitter: str = "moses",
        moses_language: str = "en",
        max_characters_per_token: int = MAX_CHARACTERS_PER_TOKEN,
        model_max_length: int = VERY_LARGE_INTEGER,
        pad_token: str = PAD_TOKEN,
        character_scheme: str = "utf8_bytes",
        char_vocab: Mapping[str, int] | None = None,
        word_vocab: Mapping[str, int] | None = None,
        char_vocab_file: str | os.PathLike | None = None,
        word_vocab_file: str | os.PathLike | None = None,
        literal_sentence_markers: bool = False,
        **kwargs: Any,
    ) -> None:
        if word_splitter not in WORD_SPLITTERS:
            raise ValueError(f"word_splitter must be one of {WORD_SPLITTERS}, got {word_splitter!r}")
        if not isinstance(moses_language, str):
            raise TypeError(f"moses_language must be a str, got {type(moses_language).__name__}")
        _check_max_characters(max_characters_per_token)
        if not isinstance(literal_sentence_markers, bool):
            raise TypeError(
                f"literal_sentence_markers must be a bool, got {type(literal_sentence_markers).__name__}"
            )
        for key in ("is_local", "local_files_only", "added_tokens_decoder", "tokenizer_file"):
            kwargs.pop(key, None)
        self.word_splitter = word_splitter
        self.moses_language = moses_language
        self.max_characters_per_token = max_characters_per_token
        self.literal_sentence_markers = literal_sentence_markers
        self._splitter = _MosesSplitter(moses_language) if word_splitter == "moses" else _split_whitespace
        self._set_dictionaries(character_scheme, char_vocab, char_vocab_file, word_vocab, word_vocab_file)
        super().__init__(
            word_splitter=word_splitter,
            moses_language=moses_language,
            max_characters_per_token=max_characters_per_token,
            model_max_length=model_max_length,
            pad_token=pad_token,
            character_scheme=character_scheme,
            literal_sentence_markers=literal_sentence_markers,
            **kwargs,
        )
        if self.word_vocab is not None:
            self.model_input_names = [*type(self).model_input_names, "word_ids"]

    def _set_dictionaries(
        self,
        character_scheme: str,
        char_vocab: Mapping[str, int] | None,
        char_vocab_file: str | os.PathLike | None,
        word_vocab: Mapping[str, int] | None,
        word_vocab_file: str | os.PathLike | None,
    ) -> None:
        """Check and keep the dictionaries of dictionary mode (given directly or as saved files)."""
        if character_scheme not in CHARACTER_SCHEMES:
            raise ValueError(f"character_scheme must be one of {CHARACTER_SCHEMES}, got {character_scheme!r}")
        self.character_scheme = character_scheme
        if char_vocab is None and char_vocab_file is not None:
            char_vocab = _read_vocab_file(char_vocab_file)
        if word_vocab is None and word_vocab_file is not None:
            word_vocab = _read_vocab_file(word_vocab_file)
        if character_scheme == "utf8_bytes":
            if char_vocab is not None or word_vocab is not None:
                raise ValueError("character dictionaries and word dictionaries need character_scheme='dictionary'")
            self.char_vocab = self.word_vocab = None
            return
        if char_vocab is None:
            raise ValueError(
                f"character_scheme='dictionary' needs the character dictionary: pass char_vocab, or keep "
                f"{VOCAB_FILES_NAMES['char_vocab_file']} beside tokenizer_config.json"
            )
        self.char_vocab = _checked_vocab("char_vocab", char_vocab, DICTIONARY_SPECIAL_CHARS)
        self.word_vocab = (
            None if word_vocab is None else _checked_vocab("word_vocab", word_vocab, DICTIONARY_SPECIAL_WORDS)
        )
        # The +1-shifted ids of the specials; ELMoForManyLangs opens words with <eow>'s id, closes them with <bow>'s.
        shifted = {entry: self.char_vocab[entry] + CHAR_ID_OFFSET for entry in DICTIONARY_SPECIAL_CHARS}
        self._begin_of_word, self._end_of_word = shifted["<eow>"], shifted["<bow>"]
        self._padding_char, self._unknown_char = shifted["<pad>"], shifted["<oov>"]
        self._sentence_marker_chars = {marker: shifted[marker] for marker in DICTIONARY_SENTENCE_MARKERS}
        specials = set(DICTIONARY_SPECIAL_CHARS)
        self._char_of_id = {
            char_id + CHAR_ID_OFFSET: char for char, char_id in self.char_vocab.items() if char not in specials
        }

    # ------------------------------------------------------------------ vocabulary-like API

    @property
    def padding_side(self) -> str:
        """Always ``"right"``: the model relies on real words coming first."""
        return "right"

    @padding_side.setter
    def padding_side(self, value: str) -> None:
        self._check_padding_side(value)

    @property
    def is_fast(self) -> bool:
        """False: this is the Python tokenizer, the reference of :class:`ElmoTokenizerFast`."""
        return False

    @staticmethod
    def _check_padding_side(value: str | None) -> None:
        if value not in (None, "right"):
            raise ValueError(f"ElmoTokenizer only pads on the right, got padding_side={value!r}")

    @property
    def pad_token_id(self) -> int | None:
        """0, the value of every character id of a padding word (``None`` without a pad token)."""
        return None if self.pad_token is None else PADDING_CHAR_ID

    @property
    def vocab_size(self) -> int:
        """Number of distinct character ids incl. 0 (262 for UTF-8 bytes; the largest dictionary id + 2 in
        dictionary mode): the rows of the model's character embedding."""
        if self.char_vocab is None:
            return NUM_CHAR_IDS
        return max(self.char_vocab.values()) + CHAR_ID_OFFSET + 1

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_ids(self) -> dict[str, int]:
        """The `ElmoConfig` fields that this tokenizer's ids fix: the five special character ids and, with a
        word dictionary, the word ids of the sentence markers (``<oov>``'s where the dictionary lacks them)."""
        if self.char_vocab is None:
            ids = {"begin_of_word_char_id": BOW_CHAR, "end_of_word_char_id": EOW_CHAR, "padding_char_id": PAD_CHAR}
            ids.update(begin_of_sentence_char_id=BOS_CHAR, end_of_sentence_char_id=EOS_CHAR)
            return {name: char_id + CHAR_ID_OFFSET for name, char_id in ids.items()}
        ids = {
            "begin_of_word_char_id": self._begin_of_word,
            "end_of_word_char_id": self._end_of_word,
            "padding_char_id": self._padding_char,
            "begin_of_sentence_char_id": self._sentence_marker_chars["<bos>"],
            "end_of_sentence_char_id": self._sentence_marker_chars["<eos>"],
        }
        if self.word_vocab is not None:  # the markers are whole words, never cut
            unknown = self.word_vocab["<oov>"]
            ids["begin_of_sentence_word_id"] = self.word_vocab.get("<bos>", unknown)
            ids["end_of_sentence_word_id"] = self.word_vocab.get("<eos>", unknown)
        return ids

    def get_vocab(self) -> dict[str, int]:
        """Empty: ELMo's vocabulary is open, every string is a valid word."""
        return {}

    @property
    def added_tokens_decoder(self) -> dict[int, Any]:
        """Empty: added tokens are meaningless with an open vocabulary."""
        return {}

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        """Empty: added tokens are meaningless with an open vocabulary."""
        return {}

    def _add_tokens(self, new_tokens: list[Any], special_tokens: bool = False) -> int:
        """Nothing to add: every string already has character ids."""
        return 0

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """0: the model adds ``<S>``/``</S>`` itself."""
        return 0

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """The dictionaries of dictionary mode as JSON files; nothing in UTF-8 mode (all its settings live in
        ``tokenizer_config.json``)."""
        paths = []
        for argument, vocab in (("char_vocab_file", self.char_vocab), ("word_vocab_file", self.word_vocab)):
            if vocab is None:
                continue
            name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES[argument]
            path = os.path.join(save_directory, name)
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(vocab, handle, ensure_ascii=False, indent=0)
            paths.append(path)
        return tuple(paths)

    # ------------------------------------------------------------------ words

    def split_words(self, text: str) -> list[WordSpan]:
        """Split raw text into words with their ``(start, end)`` character offsets.

        ``text[start:end] == word`` holds for every word.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {_describe(text)}")
        return self._splitter(text)

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """The words of ``text`` (see :meth:`split_words`)."""
        return [word for word, _ in self.split_words(text)]

    def batch_split_words(self, texts: Sequence[str]) -> list[list[WordSpan]]:
        """:meth:`split_words` of every text."""
        return [self.split_words(text) for text in texts]

    def words_to_char_ids(self, words: Sequence[str]) -> np.ndarray:
        """The rows of character ids of several words as one ``(len(words), max_characters_per_token)`` int64
        array (what :meth:`convert_tokens_to_ids` gives as lists)."""
        array = np.zeros((len(words), self.max_characters_per_token), dtype=np.int64)
        if len(words):
            array[...] = [self._char_ids(word) for word in words]
        return array

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> list[int] | list[list[int]]:
        """Character ids of one word (a row) or of several words (a list of rows)."""
        if isinstance(tokens, str):
            return self._char_ids(tokens)
        return [self._char_ids(token) for token in tokens]

    def convert_tokens_to_word_ids(self, tokens: Sequence[str]) -> list[int]:
        """Word ids of several words (dictionary mode with a word dictionary): each word cut like its characters,
        then looked up; unknown words get ``<oov>``'s id."""
        if self.word_vocab is None:
            raise ValueError("this tokenizer has no word dictionary, so no word ids")
        cut = self.max_characters_per_token - 2
        unknown = self.word_vocab["<oov>"]
        return [self.word_vocab.get(token[:cut], unknown) for token in tokens]

    def _char_ids(self, word: str) -> list[int]:
        """The row of character ids of one word in this tokenizer's scheme."""
        if self.char_vocab is None:
            return word_to_char_ids(word, self.max_characters_per_token, self.literal_sentence_markers)
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        word = word[: self.max_characters_per_token - 2]
        if word in self._sentence_marker_chars and not self.literal_sentence_markers:
            chars = [self._sentence_marker_chars[word]]
        else:
            known = self.char_vocab
            chars = [known[char] + CHAR_ID_OFFSET if char in known else self._unknown_char for char in word]
        ids = [self._begin_of_word, *chars, self._end_of_word]
        return ids + [self._padding_char] * (self.max_characters_per_token - len(ids))

    def _sentence_marker_rows(self, length: int) -> tuple[list[int], list[int]]:
        """The rows of ``<S>`` and ``</S>`` (as the model adds them) for rows of ``length`` ids."""
        if self.char_vocab is None:
            return bos_char_ids(length), eos_char_ids(length)
        rows = []
        for marker in DICTIONARY_SENTENCE_MARKERS:
            row = [self._begin_of_word, self._sentence_marker_chars[marker], self._end_of_word]
            rows.append(row + [self._padding_char] * (length - 3))
        return rows[0], rows[1]

    def _special_token_of_row(self, row: list[int]) -> str | None:
        """The pad token for an all-zero row, ``<S>``/``</S>`` for the marker rows, else ``None``."""
        if not any(row):
            return str(self.pad_token or PAD_TOKEN)
        bos_row, eos_row = self._sentence_marker_rows(len(row))
        if row == bos_row:
            return BOS_TOKEN
        if row == eos_row:
            return EOS_TOKEN
        return None

    def _row_to_word(self, row: list[int], skip_special_tokens: bool = False) -> str | None:
        """The word of one row of character ids (``None`` for a skipped special row)."""
        if len(row) >= 3:
            special = self._special_token_of_row(row)
            if special is not None:
                return None if skip_special_tokens else special
        if self.char_vocab is not None:
            return self._dictionary_row_to_word(row)
        data = bytearray()
        chars = [char_id - CHAR_ID_OFFSET for char_id in row]
        for char in chars[1:] if chars and chars[0] == BOW_CHAR else chars:
            if char in (EOW_CHAR, PAD_CHAR, PADDING_CHAR_ID - CHAR_ID_OFFSET):
                break
            if 0 <= char < 256:
                data.append(char)
        return data.decode("utf-8", errors="replace")

    def _dictionary_row_to_word(self, row: list[int]) -> str:
        """The characters of a dictionary-mode row up to its end-of-word id; ids of no character (``<oov>``, a
        special in the middle) decode as U+FFFD."""
        chars = row[1:] if row and row[0] == self._begin_of_word else row
        word = []
        for char_id in chars:
            if char_id in (self._end_of_word, self._padding_char, PADDING_CHAR_ID):
                break
            word.append(self._char_of_id.get(char_id, UNKNOWN_CHARACTER))
        return "".join(word)

    def convert_ids_to_tokens(self, ids: Any, skip_special_tokens: bool = False) -> str | list[str] | None:
        """Words from character ids.

        ``ids`` is one row (→ a word), a ``(words, max_characters_per_token)`` array (→ a list of
        words) or the scalar ``pad_token_id`` (→ the pad token). Truncated words come back cut
        (a character split by the cut decodes as U+FFFD); an all-zero row gives the pad token and
        the marker rows give ``<S>``/``</S>``; ``skip_special_tokens`` drops these three (a single
        skipped row gives ``None``).
        """
        ids = to_py_obj(ids)
        if isinstance(ids, int):
            if ids != PADDING_CHAR_ID:
                raise ValueError(
                    f"ElmoTokenizer ids are rows of character ids, not scalars; only the pad id "
                    f"{PADDING_CHAR_ID} stands alone, got {ids}"
                )
            return None if skip_special_tokens else str(self.pad_token or PAD_TOKEN)
        if ids and isinstance(ids[0], int):
            return self._row_to_word(ids, skip_special_tokens)
        words = (self._row_to_word(row, skip_special_tokens) for row in ids)
        return [word for word in words if word is not None]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Words joined by single spaces."""
        return " ".join(tokens)

    # ------------------------------------------------------------------ decoding

    def decode(self, token_ids: Any, skip_special_tokens: bool = False, **kwargs: Any) -> str | list[str]:
        """Text from character ids: ``(words, 50)`` → str, ``(batch, words, 50)`` → list of str.

        Words are joined by single spaces (the original spacing is not kept); padding rows are
        skipped; bytes of a word cut at ``max_characters_per_token - 2`` are decoded with
        ``errors="replace"``; the ``<S>``/``</S>`` marker rows appear as those strings unless
        ``skip_special_tokens`` is set.
        """
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, int):
            raise TypeError(
                "decode expects rows of character ids (words, max_characters_per_token), got an int"
            )
        if token_ids and isinstance(token_ids[0], int):
            return self._decode([token_ids], skip_special_tokens=skip_special_tokens)
        if not token_ids or (token_ids[0] and isinstance(token_ids[0][0], int)):
            return self._decode(token_ids, skip_special_tokens=skip_special_tokens)
        return [self._decode(sequence, skip_special_tokens=skip_special_tokens) for sequence in token_ids]

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, **kwargs: Any) -> list[str]:
        """One string per sequence of a ``(batch, words, 50)`` batch (see :meth:`decode`)."""
        return [
            self._decode(sequence, skip_special_tokens=skip_special_tokens)
            for sequence in to_py_obj(sequences)
        ]

    def _decode(self, token_ids: Any, skip_special_tokens: bool = False, **kwargs: Any) -> str:
        rows = [row for row in to_py_obj(token_ids) if any(row)]
        return self.convert_tokens_to_string(self.convert_ids_to_tokens(rows, skip_special_tokens))

    # ------------------------------------------------------------------ encoding

    def _sequences(self, text: Any, is_split_into_words: bool) -> tuple[list[list[WordSpan]], bool]:
        """Words with offsets for every sequence, and whether the input was a batch."""
        sequences, batched = _batch_of_inputs(text, is_split_into_words)
        if is_split_into_words:
            return [self._join_words(words) for words in sequences], batched
        return [self.split_words(item) for item in sequences], batched

    @staticmethod
    def _join_words(words: Sequence[str]) -> list[WordSpan]:
        """Pre-split words with offsets into ``" ".join(words)``."""
        spans = []
        start = 0
        for word in words:
            spans.append((word, (start, start + len(word))))
            start += len(word) + 1
        return spans

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
        """Encode one text or a batch (called by ``__call__`` and ``encode``).

        ``add_special_tokens``, ``stride``, ``return_token_type_ids``, ``split_special_tokens`` and
        ``verbose`` are accepted for API compatibility and have no effect.
        """
        if text_pair is not None:
            raise ValueError("ElmoTokenizer encodes single sequences; text_pair is not supported")
        if return_overflowing_tokens:
            raise ValueError("ElmoTokenizer does not support return_overflowing_tokens")
        if kwargs:
            logger.warning(f"Keyword arguments {sorted(kwargs)} not recognized by ElmoTokenizer; ignored.")
        self._check_padding_side(padding_side)
        sequences, batched = self._sequences(text, is_split_into_words)

        if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and max_length is not None:
            if self.truncation_side == "left":
                sequences = [spans[max(len(spans) - max_length, 0) :] for spans in sequences]
            else:
                sequences = [spans[:max_length] for spans in sequences]

        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        keys = ["input_ids"]
        keys += ["attention_mask"] if return_attention_mask else []
        keys += ["word_ids"] if self.word_vocab is not None else []
        keys += ["special_tokens_mask"] if return_special_tokens_mask else []
        keys += ["offset_mapping"] if return_offsets_mapping else []
        keys += ["length"] if return_length else []
        examples = []
        for spans in sequences:
            words = [word for word, _ in spans]
            example: dict[str, Any] = {"input_ids": self.convert_tokens_to_ids(words)}
            if return_attention_mask:
                example["attention_mask"] = [1] * len(spans)
            if self.word_vocab is not None:
                example["word_ids"] = self.convert_tokens_to_word_ids(words)
            if return_special_tokens_mask:
                example["special_tokens_mask"] = [0] * len(spans)
            if return_offsets_mapping:
                example["offset_mapping"] = [offsets for _, offsets in spans]
            if return_length:
                example["length"] = len(spans)
            examples.append(example)
        return self._pad_examples(
            examples,
            keys,
            padding_strategy=padding_strategy,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors,
            batched=batched,
        )

    # ------------------------------------------------------------------ padding

    def pad(
        self,
        encoded_inputs: Any,
        padding: bool | str | PaddingStrategy = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | TensorType | None = None,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Pad one encoding or a batch of encodings (also a list of dicts, as data collators pass).

        ``input_ids`` may be ``(words, 50)`` (one sequence) or ``(batch, words, 50)``, as lists,
        numpy arrays or torch tensors (then the same kind is returned unless ``return_tensors`` says
        otherwise). ``attention_mask``, ``special_tokens_mask``, ``token_type_ids`` and
        ``offset_mapping`` are padded along; other keys are passed through unchanged.
        """
        self._check_padding_side(padding_side)
        if (
            isinstance(encoded_inputs, (list, tuple))
            and encoded_inputs
            and isinstance(encoded_inputs[0], Mapping)
        ):
            encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0]}
        if not isinstance(encoded_inputs, Mapping) or "input_ids" not in encoded_inputs:
            raise ValueError("pad() needs an encoding (or a list of encodings) with input_ids")
        if return_tensors is None:
            sample = encoded_inputs["input_ids"]
            if isinstance(sample, (list, tuple)) and sample:
                sample = sample[0]
            if isinstance(sample, torch.Tensor):
                return_tensors = "pt"
            elif isinstance(sample, np.ndarray):
                return_tensors = "np"
        data = {key: to_py_obj(value) for key, value in encoded_inputs.items()}
        ids = data["input_ids"]
        batched = not (ids and ids[0] and isinstance(ids[0][0], int))
        if not batched:
            data = {key: [value] for key, value in data.items()}
        padding_strategy, _, max_length, _ = self._get_padding_truncation_strategies(
            padding=padding, max_length=max_length, verbose=verbose
        )
        examples = [{key: value[i] for key, value in data.items()} for i in range(len(data["input_ids"]))]
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        keys = list(data) + (
            ["attention_mask"] if return_attention_mask and "attention_mask" not in data else []
        )
        return self._pad_examples(
            examples,
            keys,
            padding_strategy=padding_strategy,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors,
            batched=batched,
        )

    def _pad(
        self,
        encoded_inputs: dict[str, Any],
        max_length: int | None = None,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_attention_mask: bool | None = None,
    ) -> dict[str, Any]:
        """Pad one sequence (lists) on the right with all-zero word rows."""
        self._check_padding_side(padding_side)
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        length = len(encoded_inputs["input_ids"])
        if padding_strategy == PaddingStrategy.LONGEST:
            max_length = length
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        if return_attention_mask and "attention_mask" not in encoded_inputs:
            encoded_inputs["attention_mask"] = [1] * length
        if padding_strategy == PaddingStrategy.DO_NOT_PAD or max_length is None or length >= max_length:
            return encoded_inputs
        difference = max_length - length
        encoded_inputs["input_ids"] = list(encoded_inputs["input_ids"]) + [
            [PADDING_CHAR_ID] * self.max_characters_per_token for _ in range(difference)
        ]
        for key, value in _PAD_VALUES.items():
            if key in encoded_inputs:
                encoded_inputs[key] = list(encoded_inputs[key]) + [value] * difference
        if "word_ids" in encoded_inputs and self.word_vocab is not None:
            encoded_inputs["word_ids"] = list(encoded_inputs["word_ids"]) + [self.word_vocab["<pad>"]] * difference
        return encoded_inputs

    def _pad_examples(
        self,
        examples: list[dict[str, Any]],
        keys: list[str],
        padding_strategy: PaddingStrategy,
        max_length: int | None,
        pad_to_multiple_of: int | None,
        return_attention_mask: bool | None,
        return_tensors: str | TensorType | None,
        batched: bool,
    ) -> BatchEncoding:
        """Pad every example, then gather them into a BatchEncoding of lists, arrays or tensors."""
        if padding_strategy == PaddingStrategy.LONGEST:
            max_length = max((len(example["input_ids"]) for example in examples), default=0)
            padding_strategy = PaddingStrategy.MAX_LENGTH
        examples = [
            self._pad(
                example,
                max_length=max_length,
                padding_strategy=padding_strategy,
                pad_to_multiple_of=pad_to_multiple_of,
                return_attention_mask=return_attention_mask,
            )
            for example in examples
        ]
        data = {key: [example[key] for example in examples] for key in keys}
        if return_tensors is None:
            return BatchEncoding(data if batched else {key: value[0] for key, value in data.items()})
        for key in keys:
            if key in ("input_ids", "word_ids") or key in _PAD_VALUES:
                data[key] = self._to_tensor(self._stack(key, data[key]), return_tensors)
        return BatchEncoding(data, tensor_type=return_tensors)

    def _stack(self, key: str, values: list[Any]) -> np.ndarray:
        """One ``(batch, words, …)`` int64 array; clear error for sequences of different lengths."""
        lengths = sorted({len(value) for value in values})
        if len(lengths) > 1:
            raise ValueError(
                f"Cannot make one tensor of '{key}' for sequences of different lengths ({lengths[0]} to "
                f"{lengths[-1]} words); pass padding=True (or padding='max_length' with max_length) "
                "to pad them, or return_tensors=None for lists."
            )
        trailing = {"input_ids": (self.max_characters_per_token,), "offset_mapping": (2,)}.get(key, ())
        array = np.zeros((len(values), lengths[0] if lengths else 0, *trailing), dtype=np.int64)
        if array.size:
            array[...] = np.asarray(values, dtype=np.int64)
        return array

    @staticmethod
    def _to_tensor(array: np.ndarray, return_tensors: str | TensorType) -> np.ndarray | torch.Tensor:
        """The array as ``return_tensors`` asks: a numpy array or a torch tensor."""
        kind = TensorType(return_tensors)
        if kind == TensorType.PYTORCH:
            return torch.from_numpy(array)
        if kind == TensorType.NUMPY:
            return array
        raise ValueError(f"ElmoTokenizer supports return_tensors='pt' or 'np', got {return_tensors!r}")
