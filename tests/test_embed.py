"""`elmo embed`: the HDF5 layout, every option, odd input, resumption after errors, the token cache."""

import fcntl

import numpy as np
import pytest
import torch
from embed_helpers import assert_same_files, converted_model, embed, read_hdf5, write_lines
from transformers import AutoModel, AutoTokenizer

from modeling_elmo import ElmoEmbedder

LINES = [
    "The play was a hit.",
    "They play football on Sunday!",
    "",
    "   \t ",
    "I",
    "Emoji 😀 and accents: café, naïve.",
    "control\x01characters\x1fand\x0cform feed",
    "The play was a hit.",
]
LONG_LINE = " ".join(["word", "play", "the", "stage"] * 500)  # 2,000 words


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("embed"))


@pytest.fixture(scope="module")
def model_and_tokenizer(folder):
    return AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def alone(model_and_tokenizer, text: str) -> np.ndarray:
    """The model's (L + 1, words, 2P) layers for one text run on its own."""
    model, tokenizer = model_and_tokenizer
    with torch.no_grad():
        layers = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True).hidden_states
    return torch.stack(layers)[:, 0].numpy()


def test_layout_is_the_allennlp_one_with_the_models_vectors(folder, model_and_tokenizer, tmp_path, capsys):
    source = write_lines(tmp_path / "in.txt", LINES)
    assert embed(folder, source, tmp_path / "out.hdf5", "--batch-size", "1", "--window", "3") == 0
    datasets, index = read_hdf5(tmp_path / "out.hdf5")
    assert list(datasets) == [str(number) for number in range(len(LINES))]  # created in input order
    for number, line in enumerate(LINES):  # batches of one sentence: exactly the model's own outputs
        np.testing.assert_array_equal(datasets[str(number)], alone(model_and_tokenizer, line.strip()))
    assert datasets["2"].shape == datasets["3"].shape == (3, 0, 16)  # blank lines: no words, not an error
    assert index["The play was a hit."] == "0"  # a repeated sentence maps to its first line
    assert index[""] == "2" and index["Emoji 😀 and accents: café, naïve."] == "5"
    assert set(index) == {line.strip() for line in LINES}
    err = capsys.readouterr().err
    assert "sentences/s" in err and "tokens/s" in err and f"{len(LINES)} lines" in err
    assert not (tmp_path / "out.hdf5.parts").exists()


def test_a_2000_word_line(folder, model_and_tokenizer, tmp_path):
    source = write_lines(tmp_path / "in.txt", ["short line", LONG_LINE])
    assert embed(folder, source, tmp_path / "out.hdf5", "--batch-size", "1") == 0
    datasets, _ = read_hdf5(tmp_path / "out.hdf5")
    long = datasets["1"]
    assert long.shape == (3, 2000, 16) and np.isfinite(long).all()
    words = LONG_LINE.split()
    # Cheap independent checks: layer 0 is context-free; the forward LSTM at a word has seen only the words
    # before it, the backward LSTM only the words after it.
    head, tail = alone(model_and_tokenizer, " ".join(words[:30])), alone(model_and_tokenizer, " ".join(words[-30:]))
    np.testing.assert_array_equal(long[0, :30], head[0])
    np.testing.assert_allclose(long[1:, :30, :8], head[1:, :, :8], atol=1e-6)
    np.testing.assert_allclose(long[1:, -30:, 8:], tail[1:, :, 8:], atol=1e-6)
    assert not np.allclose(long[1:, :30, 8:], head[1:, :, 8:], atol=1e-3)  # the backward half saw the rest


@pytest.mark.parametrize(
    ("options", "layers", "pool"),
    [
        (["--layers", "top"], "top", None),
        (["--top"], "top", None),
        (["--average", "--pool", "max"], "average", "max"),
        (["--layers", "1", "--pool", "mean"], 1, "mean"),
        (["--layers", "mix", "--mix-weights", "0.2,0.3,0.5", "--gamma", "0.5"], "mix", None),
        (["--all", "--pool", "mean"], "all", "mean"),
    ],
)
def test_layer_choices_and_pooling(folder, tmp_path, options, layers, pool):
    source = write_lines(tmp_path / "in.txt", LINES)
    assert embed(folder, source, tmp_path / "out.hdf5", "--batch-size", "3", *options) == 0
    datasets, _ = read_hdf5(tmp_path / "out.hdf5")
    mix = {"mix_weights": [0.2, 0.3, 0.5], "gamma": 0.5} if layers == "mix" else {}
    expected = ElmoEmbedder(folder).embed_sentences(LINES, layers=layers, batch_size=3, pool=pool, **mix)
    for number, array in enumerate(expected):  # same batches as the embedder (one window): exactly equal
        np.testing.assert_array_equal(datasets[str(number)], array)
    width = (3, 16) if layers == "all" else (16,)
    if pool is None:
        assert datasets["0"].shape == (6, *width) and datasets["2"].shape == (0, *width)
    else:
        assert datasets["0"].shape == width and not datasets["2"].any()


def test_float16_output_and_sentence_keys(folder, tmp_path):
    source = write_lines(tmp_path / "in.txt", ["a b c", "The play was a hit.", "a b c", "d"])
    assert embed(folder, source, tmp_path / "full.hdf5", "--layers", "top") == 0
    assert embed(folder, source, tmp_path / "half.hdf5", "--layers", "top", "--dtype", "float16",
                 "--use-sentence-keys") == 0  # fmt: skip
    full, _ = read_hdf5(tmp_path / "full.hdf5")
    half, index = read_hdf5(tmp_path / "half.hdf5")
    assert list(half) == ["a b c", "The play was a hit.", "d"]  # the repeat is stored once
    assert index == {name: name for name in half}
    for number, name in enumerate(["a b c", "The play was a hit.", "a b c", "d"]):
        assert half[name].dtype == np.float16
        np.testing.assert_array_equal(half[name], full[str(number)].astype(np.float16))


@pytest.mark.parametrize(
    ("line", "problem"),
    [("", "blank"), ("either/or", "contains '/'"), (".", "'.'"), ("sentence_to_index", "reserved")],
)
def test_sentences_that_cannot_name_a_dataset(folder, tmp_path, capsys, line, problem):
    source = write_lines(tmp_path / "in.txt", ["fine", "also fine", line])
    assert embed(folder, source, tmp_path / "out.hdf5", "--use-sentence-keys") == 2
    err = capsys.readouterr().err
    assert f"{source}:3:" in err and problem in err and "Traceback" not in err
    assert not (tmp_path / "out.hdf5").exists()


def test_jsonl_input(folder, tmp_path, capsys):
    records = ['"The play was a hit."', '["New", "York"]', '{"text": "I saw it ."}', '{"tokens": ["x", "y z"]}', ""]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(records) + "\n", encoding="utf-8")
    assert embed(folder, source, tmp_path / "out.hdf5", "--layers", "0") == 0
    datasets, index = read_hdf5(tmp_path / "out.hdf5")
    assert [datasets[str(number)].shape[0] for number in range(5)] == [6, 2, 4, 2, 0]
    assert index == {"The play was a hit.": "0", "New York": "1", "I saw it .": "2", "x y z": "3", "": "4"}
    embedder = ElmoEmbedder(folder)
    np.testing.assert_array_equal(datasets["3"], embedder.embed_sentence(["x", "y z"], layers=0))
    for bad, message in [
        ('{"text": 5}', "field 'text' must be a string"),
        ('{"words": []}', "needs a 'text' or a 'tokens' field"),
        ("[1, 2]", "must be a string or a list of strings"),
        ('{"text": "a"', "not valid JSON"),
    ]:
        source.write_text(records[0] + "\n" + bad + "\n", encoding="utf-8")
        assert embed(folder, source, tmp_path / "bad.hdf5", "--restart") == 2
        err = capsys.readouterr().err
        assert f"{source}:2:" in err and message in err, err


def test_tokenized_input_is_split_on_whitespace_only(folder, tmp_path):
    source = write_lines(tmp_path / "in.txt", ["I don't know.", "New  York"])
    assert embed(folder, source, tmp_path / "moses.hdf5") == 0
    assert embed(folder, source, tmp_path / "tokens.hdf5", "--tokenized") == 0
    moses, _ = read_hdf5(tmp_path / "moses.hdf5")
    tokens, _ = read_hdf5(tmp_path / "tokens.hdf5")
    assert moses["0"].shape[1] == 5 and tokens["0"].shape[1] == 3  # Moses: I do n't know .
    expected = ElmoEmbedder(folder).embed_sentences([["I", "don't", "know."], ["New", "York"]])  # the same batch
    np.testing.assert_array_equal(tokens["0"], expected[0])


def test_invalid_utf8_is_named_or_replaced(folder, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    assert embed(folder, source, tmp_path / "out.hdf5") == 2
    err = capsys.readouterr().err
    assert f"{source}:3: invalid UTF-8 (byte 0xff at byte 5 of the line)" in err and "--encoding-errors" in err
    assert not (tmp_path / "out.hdf5").exists()
    assert embed(folder, source, tmp_path / "out.hdf5", "--encoding-errors", "replace") == 0
    _, index = read_hdf5(tmp_path / "out.hdf5")
    assert index["bad \ufffd byte"] == "2"


def test_a_failed_run_keeps_its_finished_windows_and_a_fixed_input_continues(folder, tmp_path, capsys):
    lines = [f"sentence number {number} ." for number in range(10)]
    source = tmp_path / "in.txt"
    source.write_bytes(("\n".join(lines[:7]) + "\n").encode() + b"\xfe\n" + ("\n".join(lines[8:]) + "\n").encode())
    output = tmp_path / "out.hdf5"
    assert embed(folder, source, output, "--window", "3") == 2
    assert not output.exists()
    assert sorted(path.name for path in (tmp_path / "out.hdf5.parts").glob("window-*")) == [
        "window-00000000.h5",
        "window-00000001.h5",
    ]
    capsys.readouterr()
    write_lines(source, lines)
    assert embed(folder, source, output, "--window", "3") == 0
    assert "resuming" in capsys.readouterr().err
    write_lines(tmp_path / "clean.txt", lines)
    assert embed(folder, tmp_path / "clean.txt", tmp_path / "clean.hdf5", "--window", "3") == 0
    assert_same_files(output, tmp_path / "clean.hdf5")


def test_existing_output_changed_input_and_changed_options(folder, tmp_path, capsys):
    source = write_lines(tmp_path / "in.txt", [f"line {number}" for number in range(7)])
    output = tmp_path / "out.hdf5"
    assert embed(folder, source, output) == 0
    assert embed(folder, source, output) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    # leave an unfinished job: an error at line 7 after two finished windows
    source.write_bytes(source.read_bytes() + b"\xff\n")
    assert embed(folder, source, output, "--overwrite", "--window", "3") == 2
    capsys.readouterr()
    assert embed(folder, source, output, "--overwrite", "--window", "3", "--layers", "top") == 2
    assert "other settings (layers: 'all' then, 'top' now)" in capsys.readouterr().err
    changed = write_lines(tmp_path / "changed.txt", ["line 0", "CHANGED", *[f"line {n}" for n in range(2, 7)]])
    assert embed(folder, changed, output, "--overwrite", "--window", "3") == 2
    assert "lines 1-3 of the input differ" in capsys.readouterr().err
    assert embed(folder, changed, output, "--overwrite", "--window", "3", "--restart") == 0
    datasets, index = read_hdf5(output)
    assert len(datasets) == 7 and index["CHANGED"] == "1"


def test_a_second_job_on_the_same_output_is_refused_while_one_runs(folder, tmp_path, capsys):
    source = write_lines(tmp_path / "in.txt", ["a b"])
    output = tmp_path / "out.hdf5"
    with (tmp_path / ".out.hdf5.lock").open("a") as held:  # what a running `elmo embed` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert embed(folder, source, output) == 2
        assert f"another elmo embed is working on {output}" in capsys.readouterr().err
    assert embed(folder, source, output) == 0
    assert not (tmp_path / ".out.hdf5.lock").exists()


def test_bad_options_are_explained(folder, tmp_path, capsys):
    source = write_lines(tmp_path / "in.txt", ["a"])
    for options, message in [
        (["--layers", "5"], "layers 0-2"),
        (["--layers", "mix"], "needs mix_weights"),
        (["--layers", "mix", "--mix-weights", "1,x,2"], "comma-separated numbers"),
        (["--layers", "top", "--gamma", "2"], "only apply to layer='mix'"),
        (["--batch-size", "0"], "batch_size must be a positive integer"),
        (["--device", "bogus"], "'bogus' is not a device name"),
        *([(["--device", "cuda"], "no cuda device available")] if not torch.cuda.is_available() else []),
    ]:
        assert embed(folder, source, tmp_path / "out.hdf5", *options) == 2
        assert message in capsys.readouterr().err
    assert embed(folder, tmp_path / "missing.txt", tmp_path / "out.hdf5") == 2
    assert "missing.txt does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out.hdf5").exists()


def test_cache_vocab_gives_identical_results(folder, tmp_path):
    source = write_lines(tmp_path / "in.txt", LINES)
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("The\nplay\nwas\n\nhit\n.\nunused\n", encoding="utf-8")
    assert embed(folder, source, tmp_path / "plain.hdf5") == 0
    assert embed(folder, source, tmp_path / "cached.hdf5", "--cache-vocab", str(vocabulary)) == 0
    assert_same_files(tmp_path / "cached.hdf5", tmp_path / "plain.hdf5")
