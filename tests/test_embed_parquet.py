"""`elmo embed` into Parquet (one row per line), damaged part files redone, and the `datasets` integration:
`--dataset FOLDER --text-column` and `ElmoEmbedder.embed_dataset_batch` as a `Dataset.map` function."""

import datasets
import numpy as np
import pandas
import pyarrow.parquet as pq
import pytest
from embed_helpers import assert_same_files, converted_model, embed, read_hdf5, write_lines
from test_embed import LINES

from modeling_elmo import ElmoEmbedder

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("parquet"))


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    """LINES (with a repeated sentence and blank lines) embedded into HDF5 with every layer."""
    directory = tmp_path_factory.mktemp("reference")
    source = write_lines(directory / "in.txt", LINES)
    assert embed(folder, source, directory / "all.hdf5", "--window", "3", "--batch-size", "2", "--threads", "1") == 0
    return source, read_hdf5(directory / "all.hdf5")[0]


def test_parquet_rows_hold_the_hdf5_vectors_in_input_order(folder, reference, tmp_path):
    source, layers = reference
    output = tmp_path / "out.parquet"
    assert embed(folder, source, output, "--window", "3", "--batch-size", "2", "--top", "--no-progress") == 0
    assert not (tmp_path / "out.parquet.parts").exists()
    table = pq.read_table(output)
    assert table.column_names == ["line", "text", "words", "offsets", "vectors"]
    assert pq.ParquetFile(output).metadata.num_row_groups == 3  # one row group per window
    rows = table.to_pylist()
    assert [row["line"] for row in rows] == list(range(len(LINES)))
    assert [row["text"] for row in rows] == [line.strip() for line in LINES]
    for number, row in enumerate(rows):
        top = layers[str(number)][-1]  # the HDF5 top layer, (words, 2P)
        np.testing.assert_array_equal(np.array(row["vectors"], dtype=np.float32).reshape(top.shape), top)
        assert len(row["words"]) == top.shape[0]
        assert [row["text"][start:end] for start, end in row["offsets"]] == row["words"]
    assert rows[5]["words"][1] == "😀" and rows[2]["words"] == [] and rows[2]["vectors"] == []

    loaded = datasets.load_dataset("parquet", data_files=str(output), split="train")  # the datasets library
    assert loaded.num_rows == len(LINES) and loaded[1]["words"] == rows[1]["words"]
    np.testing.assert_array_equal(np.array(loaded[1]["vectors"], dtype=np.float32), layers["1"][-1])
    frame = pandas.read_parquet(output)  # pandas
    assert list(frame["line"]) == list(range(len(LINES))) and frame["text"][0] == "The play was a hit."


def pooled(layers: np.ndarray, pool) -> np.ndarray:
    """`pool` over the words axis of (L + 1, words, 2P) layers; zeros for a line without words."""
    return pool(layers, axis=1) if layers.shape[1] else np.zeros((layers.shape[0], layers.shape[2]), layers.dtype)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--layers", "all"], lambda layers: layers),
        (["--layers", "all", "--pool", "mean"], lambda layers: pooled(layers, np.mean)),
        (["--layers", "1", "--pool", "max"], lambda layers: pooled(layers, np.max)[1]),
        (["--average", "--dtype", "float16"], lambda layers: layers.mean(axis=0).astype(np.float16)),
    ],
    ids=["all", "all-mean", "layer1-max", "average-float16"],
)
def test_parquet_layer_choices_pooling_and_float16(folder, reference, tmp_path, options, expected):
    source, layers = reference
    output = tmp_path / "out.parquet"
    assert embed(folder, source, output, "--window", "3", "--batch-size", "2", "--no-progress", *options) == 0
    table = pq.read_table(output)
    for number, value in enumerate(table.column("vectors").to_pylist()):
        want = expected(layers[str(number)])
        got = np.array(value, dtype=want.dtype)
        if want.size == 0:  # a blank line: nested lists without vectors, which NumPy cannot give a last axis
            got = got.reshape(want.shape)
        assert got.shape == want.shape, (number, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    if "float16" in options:
        assert str(table.schema.field("vectors").type.value_type.value_type) == "halffloat"


def test_parquet_from_tokenized_and_jsonl_input(folder, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('"A raw text ."\n{"tokens": ["given", "words"]}\n', encoding="utf-8")
    assert embed(folder, source, tmp_path / "out.parquet", "--top", "--no-progress") == 0
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert rows[0]["offsets"] == [[0, 1], [2, 5], [6, 10], [11, 12]] and rows[1]["offsets"] is None
    assert rows[1]["words"] == ["given", "words"]
    text = write_lines(tmp_path / "in.txt", ["already split words"])
    assert embed(folder, text, tmp_path / "split.parquet", "--tokenized", "--top", "--no-progress") == 0
    assert pq.read_table(tmp_path / "split.parquet").column_names == ["line", "text", "words", "vectors"]


@pytest.mark.parametrize("suffix", [".hdf5", ".parquet"])
def test_a_truncated_part_file_is_detected_and_redone(folder, tmp_path, capsys, suffix):
    lines = [f"sentence number {number} of the play ." for number in range(12)]
    source = tmp_path / "in.txt"
    source.write_bytes(("\n".join(lines[:10]) + "\n").encode() + b"\xfe\n" + lines[11].encode() + b"\n")
    output = tmp_path / f"out{suffix}"
    assert embed(folder, source, output, "--window", "3", "--top", "--no-progress") == 2  # stops at line 11
    parts = sorted((tmp_path / f"out{suffix}.parts").glob("window-*"))
    assert len(parts) == 3
    parts[1].write_bytes(parts[1].read_bytes()[: parts[1].stat().st_size // 2])  # a truncated part file
    capsys.readouterr()
    write_lines(source, lines)
    assert embed(folder, source, output, "--window", "3", "--top", "--no-progress") == 0
    assert "(6 of them from the interrupted run)" in capsys.readouterr().err  # windows 0 and 2; 1 was redone
    write_lines(tmp_path / "clean.txt", lines)
    clean = tmp_path / f"clean{suffix}"
    assert embed(folder, tmp_path / "clean.txt", clean, "--window", "3", "--top", "--no-progress") == 0
    if suffix == ".hdf5":
        assert_same_files(output, clean)
    assert output.read_bytes() == clean.read_bytes()


def test_a_damaged_parquet_part_is_removed_at_assembly_and_redone(folder, tmp_path, capsys):
    """Bytes changed inside a part (its footer still reads, so it counts as done) fail the page checksums when
    the output is assembled: the part is removed with an error naming it, and the same command redoes it."""
    lines = [f"line {number} of the play on the stage ." for number in range(6)]
    source = tmp_path / "in.txt"
    source.write_bytes(("\n".join(lines[:5]) + "\n").encode() + b"\xfe\n")
    output, parts = tmp_path / "out.parquet", tmp_path / "out.parquet.parts"
    assert embed(folder, source, output, "--window", "3", "--top", "--no-progress") == 2  # window 0 is done
    damaged = parts / "window-00000000.parquet"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 3] ^= 0xFF
    damaged.write_bytes(bytes(data))
    write_lines(source, lines)
    capsys.readouterr()
    assert embed(folder, source, output, "--window", "3", "--top", "--no-progress") == 2
    error = capsys.readouterr().err
    assert f"the window file {damaged} is damaged" in error and "run the same command again" in error
    assert not damaged.exists() and not output.exists()
    assert embed(folder, source, output, "--window", "3", "--top", "--no-progress") == 0
    assert embed(folder, source, tmp_path / "clean.parquet", "--window", "3", "--top", "--no-progress") == 0
    assert output.read_bytes() == (tmp_path / "clean.parquet").read_bytes()


def test_parquet_refuses_sentence_keys(folder, reference, tmp_path, capsys):
    source, _ = reference
    assert embed(folder, source, tmp_path / "out.parquet", "--use-sentence-keys") == 2
    assert "--use-sentence-keys names HDF5 datasets" in capsys.readouterr().err
    assert not (tmp_path / "out.parquet").exists() and not (tmp_path / "out.parquet.parts").exists()


def test_dataset_input_gives_the_vectors_of_the_same_lines_in_a_file(folder, reference, tmp_path, capsys):
    source, _ = reference
    datasets.Dataset.from_dict({"text": LINES, "label": list(range(len(LINES)))}).save_to_disk(str(tmp_path / "saved"))
    output, from_file = tmp_path / "from-dataset.hdf5", tmp_path / "from-file.hdf5"
    assert embed(folder, "--dataset", tmp_path / "saved", str(output), "--window", "3", "--batch-size", "2") == 0
    assert embed(folder, source, from_file, "--window", "3", "--batch-size", "2") == 0
    assert_same_files(output, from_file)
    datasets.Dataset.from_dict({"tokens": [["given", "words"], ["more"]]}).save_to_disk(str(tmp_path / "words"))
    parquet = tmp_path / "words.parquet"
    assert embed(folder, "--dataset", tmp_path / "words", str(parquet), "--text-column", "tokens", "--top") == 0
    assert pq.read_table(parquet).column("words").to_pylist() == [["given", "words"], ["more"]]
    capsys.readouterr()
    assert embed(folder, "--dataset", tmp_path / "saved", str(tmp_path / "x.hdf5"), "--text-column", "body") == 2
    assert "has no column 'body'" in capsys.readouterr().err
    assert embed(folder, source, tmp_path / "y.hdf5", "--dataset", str(tmp_path / "saved")) == 2
    assert "or as --dataset, one of them" in capsys.readouterr().err


def test_embedder_as_a_dataset_map_function(folder, reference):
    _, layers = reference
    embedder = ElmoEmbedder(folder, batch_size=2)
    dataset = datasets.Dataset.from_dict({"text": LINES})
    mapped = dataset.map(embedder.embed_dataset_batch, batched=True, batch_size=3, fn_kwargs={"layers": "top"})
    assert mapped.column_names == ["text", "vectors", "words"]
    for number, row in enumerate(mapped):
        np.testing.assert_allclose(np.array(row["vectors"], np.float32).reshape(-1, 16), layers[str(number)][-1],
                                   atol=1e-6)  # fmt: skip
    ranked = dataset.map(
        embedder.embed_dataset_batch, batched=True, batch_size=3, with_rank=True,
        fn_kwargs={"layers": "all", "pool": "mean", "dtype": "float16", "words_column": None},
    )  # fmt: skip
    assert ranked.column_names == ["text", "vectors"]
    np.testing.assert_allclose(np.array(ranked[0]["vectors"]), layers["0"].mean(axis=1), atol=1e-3)
    with pytest.raises(KeyError, match="no column 'body'"):
        embedder.embed_dataset_batch({"text": ["a"]}, text_column="body")
