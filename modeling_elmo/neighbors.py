"""`elmo neighbors`: the paper's polysemy demonstration (Peters et al. 2018, Table 4).

Given a query sentence and one of its words, list the k occurrences of any word in a corpus whose vectors are
nearest to that word's vector (cosine similarity), separately for every layer. Layer 0 is the context-free token
vector: every occurrence of the same spelling has the same vector there, whatever its sense, so "play" in "a play
by Shakespeare" and "play football" are equally near. The biLSTM layers see the sentence, so their neighbours
follow the sense of the query ("play" in a theatre context finds theatre uses first).

The corpus is read one chunk of lines at a time and only the k best occurrences per layer are kept, so it can be
large. Similarities are computed in float64; ties are ordered by corpus position.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .embed_options import EmbedError, InputLine
from .embed_sources import check_input, open_input, read_input_lines, resolve_input_format
from .embedder import ElmoEmbedder

CHUNK_LINES = 1000


@dataclass(frozen=True)
class Occurrence:
    """One corpus word: its 0-based line and word position, the line's words and the cosine similarity."""

    line: int
    position: int
    score: float
    words: tuple[str, ...]


@dataclass(frozen=True)
class NeighborsResult:
    """The query words, the target's position among them, and per layer (0 … L) the nearest occurrences."""

    query: tuple[str, ...]
    target: int
    layers: tuple[tuple[Occurrence, ...], ...]


def find_target(words: Sequence[str], word: str | None = None, index: int | None = None) -> int:
    """The position of the target in the query's words: the first occurrence of `word`, or `index` (0-based)."""
    if (word is None) == (index is None):
        raise EmbedError("give the target either as a word or as its index in the query, not both")
    if index is not None:
        if not 0 <= index < len(words):
            raise EmbedError(f"--index {index} is out of range: the query has {len(words)} words {list(words)}")
        return index
    if word in words:
        return list(words).index(word)
    raise EmbedError(f"{word!r} is not one of the query's words {list(words)}; pass --index to choose by position")


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), in float64."""
    vectors = vectors.astype(np.float64)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


class _TopK:
    """The k highest scores seen so far, ties broken by the earlier (line, position)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.scores = np.empty(0)
        self.lines = np.empty(0, dtype=np.int64)
        self.positions = np.empty(0, dtype=np.int64)

    def add(self, scores: np.ndarray, lines: np.ndarray, positions: np.ndarray) -> None:
        scores = np.concatenate([self.scores, scores])
        lines = np.concatenate([self.lines, lines])
        positions = np.concatenate([self.positions, positions])
        best = np.lexsort((positions, lines, -scores))[: self.k]
        self.scores, self.lines, self.positions = scores[best], lines[best], positions[best]


def _first(item: tuple[int, np.ndarray]) -> int:
    return item[0]


def _chunks(lines: Iterator[InputLine], size: int) -> Iterator[list[InputLine]]:
    chunk: list[InputLine] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def nearest_occurrences(
    embedder: ElmoEmbedder,
    corpus: Iterator[InputLine],
    query: str | Sequence[str],
    word: str | None = None,
    index: int | None = None,
    k: int = 5,
    batch_size: int | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> NeighborsResult:
    """For every layer, the `k` corpus word occurrences nearest to the query's target word (see the module
    docstring). `corpus` yields parsed lines (`modeling_elmo.embed_sources.read_input_lines`), embedded
    `chunk_lines` at a time."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise EmbedError(f"k must be a positive integer, got {k!r}")
    query_words = embedder.split(query)
    if not query_words:
        raise EmbedError("the query sentence has no words")
    target = find_target(query_words, word, index)
    query_layers = embedder.embed_sentence(query_words, layers="all")[:, target]  # (L + 1, 2P)
    query_units = _unit_rows(query_layers)
    best = [_TopK(k) for _ in range(embedder.num_layers)]
    kept_words: dict[int, tuple[str, ...]] = {}
    for chunk in _chunks(corpus, chunk_lines):
        word_lists = [line.words if line.words is not None else embedder.split(line.sentence) for line in chunk]
        if not any(word_lists):
            continue
        results = sorted(embedder.iter_embeddings(word_lists, layers="all", batch_size=batch_size), key=_first)
        vectors = np.concatenate([array for _, array in results], axis=1)  # (L + 1, words in chunk, 2P)
        lines = np.concatenate([np.full(len(words), line.index) for line, words in zip(chunk, word_lists, strict=True)])
        positions = np.concatenate([np.arange(len(words)) for words in word_lists])
        for layer, top in enumerate(best):
            top.add(_unit_rows(vectors[layer]) @ query_units[layer], lines, positions)
        wanted = {int(line) for top in best for line in top.lines}
        kept_words = {line: kept_words[line] for line in wanted if line in kept_words}
        kept_words.update(
            (line.index, tuple(words)) for line, words in zip(chunk, word_lists, strict=True) if line.index in wanted
        )
    if not best[0].scores.size:
        raise EmbedError("the corpus has no words")
    layers = tuple(
        tuple(
            Occurrence(int(line), int(position), float(score), kept_words[int(line)])
            for score, line, position in zip(top.scores, top.lines, top.positions, strict=True)
        )
        for top in best
    )
    return NeighborsResult(tuple(query_words), target, layers)


def neighbors_from_file(
    embedder: ElmoEmbedder,
    corpus_path: str | os.PathLike,
    query: str | Sequence[str],
    word: str | None = None,
    index: int | None = None,
    k: int = 5,
    tokenized: bool = False,
    batch_size: int | None = None,
) -> NeighborsResult:
    """`nearest_occurrences` over a corpus file (one sentence per line, `.jsonl`, or `-` for stdin)."""
    name = check_input(corpus_path)
    if tokenized and isinstance(query, str):
        query = query.split()
    with open_input(name) as stream:
        corpus = read_input_lines(
            stream,
            "<stdin>" if name == "-" else name,
            jsonl=resolve_input_format(name, "auto") == "jsonl",
            tokenized=tokenized,
        )
        return nearest_occurrences(embedder, corpus, query, word, index, k, batch_size)


def _mark(words: Sequence[str], position: int, context: int = 10) -> str:
    """The words around `position`, with the word at `position` in brackets."""
    start, end = max(0, position - context), min(len(words), position + context + 1)
    shown = [f"[{word}]" if at == position else word for at, word in enumerate(words[start:end], start)]
    return ("… " if start else "") + " ".join(shown) + (" …" if end < len(words) else "")


def format_neighbors(result: NeighborsResult) -> str:
    """A plain-text table: for every layer, the nearest occurrences with their similarity and line."""
    num_layers = len(result.layers)
    lines = [f"query: {_mark(result.query, result.target)}"]
    for layer, occurrences in enumerate(result.layers):
        if layer == 0:
            title = "layer 0: context-free token vectors (characters only)"
        else:
            title = f"layer {layer}: biLSTM layer {layer}" + (" (top)" if layer == num_layers - 1 else "")
        lines += ["", title]
        lines += [
            f"  {rank:>3}. {occurrence.score:7.4f}  line {occurrence.line + 1}: "
            + _mark(occurrence.words, occurrence.position)
            for rank, occurrence in enumerate(occurrences, 1)
        ]
    return "\n".join(lines)


def neighbors_to_json(result: NeighborsResult) -> str:
    """The result as JSON, with lines and positions 0-based (the table's `line N` is 1-based: `line` + 1), as its
    `numbering` field says."""
    return json.dumps(
        {
            "numbering": "0-based: line 0 is the corpus's first line (the table's line 1), position 0 its first word",
            "query": list(result.query),
            "target": result.target,
            "layers": [[asdict(occurrence) for occurrence in layer] for layer in result.layers],
        },
        ensure_ascii=False,
        indent=2,
    )
