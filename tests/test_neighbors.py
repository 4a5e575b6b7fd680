"""`elmo neighbors`: nearest word occurrences per layer, checked against a brute-force cosine similarity."""

import json

import numpy as np
import pytest
from embed_helpers import converted_model, write_lines

from modeling_elmo import ElmoEmbedder
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.embed_options import EmbedError
from modeling_elmo.embed_sources import read_input_lines
from modeling_elmo.neighbors import nearest_occurrences

CORPUS = [
    "Hamlet is a play by Shakespeare .",
    "The children play football in the park .",
    "We saw the play at the theatre last night .",
    "",
    "They play tennis every Sunday .",
    "The actors rehearsed the new play on stage .",
    "Let us play a game .",
]
QUERY = "They play football on Sunday ."


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("neighbors"))


@pytest.fixture(scope="module")
def embedder(folder):
    return ElmoEmbedder(folder)


@pytest.fixture
def corpus_file(tmp_path):
    return write_lines(tmp_path / "corpus.txt", CORPUS)


def corpus_lines(path):
    with open(path, "rb") as stream:
        yield from read_input_lines(stream, str(path))


def brute_force(embedder, k_layer_vectors, query_vector):
    """Cosine similarity of one query vector with every (line, position) vector."""
    return {
        key: float(vector @ query_vector / (np.linalg.norm(vector) * np.linalg.norm(query_vector)))
        for key, vector in k_layer_vectors.items()
    }


def test_nearest_occurrences_are_the_top_cosine_similarities(embedder, corpus_file):
    result = nearest_occurrences(embedder, corpus_lines(corpus_file), QUERY, word="play", k=4)
    assert result.query[result.target] == "play" and result.target == 1
    query_layers = embedder.embed_sentence(QUERY)[:, 1].astype(np.float64)
    corpus_layers = embedder.embed_sentences(CORPUS)  # the same batches as the command: the same vectors
    for layer, occurrences in enumerate(result.layers):
        vectors = {
            (line, position): layers[layer, position].astype(np.float64)
            for line, layers in enumerate(corpus_layers)
            for position in range(layers.shape[1])
        }
        scores = brute_force(embedder, vectors, query_layers[layer])
        listed = [(occurrence.line, occurrence.position) for occurrence in occurrences]
        assert len(listed) == 4 == len(set(listed))
        for occurrence in occurrences:
            assert occurrence.score == pytest.approx(scores[occurrence.line, occurrence.position], abs=1e-9)
            assert occurrence.words == tuple(embedder.split(CORPUS[occurrence.line]))
        listed_scores = [occurrence.score for occurrence in occurrences]
        assert listed_scores == sorted(listed_scores, reverse=True)
        assert max(score for key, score in scores.items() if key not in listed) <= listed_scores[-1] + 1e-9
    # layer 0 is context-free: every "play" is equally near, whatever the sense ...
    play = {(line, words.index("play")) for line, words in enumerate(map(embedder.split, CORPUS)) if "play" in words}
    assert {(o.line, o.position) for o in result.layers[0]} <= play
    assert all(occurrence.score == pytest.approx(1.0, abs=1e-6) for occurrence in result.layers[0])
    # ... the biLSTM layers tell the occurrences apart by their context
    for occurrences in result.layers[1:]:
        assert len({round(occurrence.score, 6) for occurrence in occurrences}) > 1


def test_reading_the_corpus_in_small_chunks_gives_the_same_neighbours(embedder, corpus_file):
    whole = nearest_occurrences(embedder, corpus_lines(corpus_file), QUERY, index=2, k=3)
    chunked = nearest_occurrences(embedder, corpus_lines(corpus_file), QUERY, index=2, k=3, chunk_lines=2)
    assert whole.query[whole.target] == "football"
    for layer_whole, layer_chunked in zip(whole.layers, chunked.layers, strict=True):
        np.testing.assert_allclose([o.score for o in layer_chunked], [o.score for o in layer_whole], atol=1e-6)


def test_command_prints_a_table_and_json(folder, corpus_file, capsys):
    arguments = ["neighbors", "--model", str(folder), "--corpus", str(corpus_file), "--query", QUERY]
    assert elmo_main([*arguments, "--word", "play", "-k", "2"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("query: They [play] football on Sunday .")
    assert "layer 0: context-free token vectors" in table and "layer 2: biLSTM layer 2 (top)" in table
    assert table.count("[play]") >= 1 + 2  # the query and layer 0's two neighbours
    assert elmo_main([*arguments, "--index", "1", "-k", "2", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["target"] == 1 and len(parsed["layers"]) == 3 and all(len(layer) == 2 for layer in parsed["layers"])
    first = parsed["layers"][1][0]
    assert set(first) == {"line", "position", "score", "words"} and f"line {first['line'] + 1}:" in table
    assert parsed["numbering"].startswith("0-based") and "the table's line 1" in parsed["numbering"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--word", "cricket"], "'cricket' is not one of the query's words"),
        (["--index", "9"], "--index 9 is out of range"),
        (["--word", "play", "-k", "0"], "k must be a positive integer"),
    ],
)
def test_bad_targets_are_explained(folder, corpus_file, capsys, options, message):
    arguments = ["neighbors", "--model", str(folder), "--corpus", str(corpus_file), "--query", QUERY, *options]
    assert elmo_main(arguments) == 2
    assert message in capsys.readouterr().err


def test_missing_or_empty_corpus(folder, tmp_path, capsys):
    arguments = ["neighbors", "--model", str(folder), "--query", QUERY, "--word", "play"]
    assert elmo_main([*arguments, "--corpus", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt does not exist" in capsys.readouterr().err
    empty = write_lines(tmp_path / "empty.txt", ["", "  "])
    with pytest.raises(EmbedError, match="no words"):
        nearest_occurrences(ElmoEmbedder(folder), corpus_lines(empty), QUERY, word="play")
