"""ELMoForManyLangs models → `ElmoModel`, against the `elmoformanylangs` package itself, used only as an oracle.

Random small models are built with the package's own classes (`frontend.Model` with its `EmbeddingLayer`s) and
saved the way its training code saves them (`token_embedder.pkl`, `encoder.pkl`, `char.dic`, `word.dic`,
`config.json` naming the architecture JSON). Its `Embedder` (fresh, so its stateful LSTM starts from zeros) embeds
a fixed batch; the folder converted by `elmo convert --elmoformanylangs` must give all 3 layers within 1e-5 in our
stateless mode, with and without the word embedding. The batch has characters missing from the dictionary,
words longer than `max_characters_per_token`, multi-byte characters, a word spelled like the `<eos>` marker and
sentences of different lengths.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

pytest.importorskip("elmoformanylangs")
from elmoformanylangs import Embedder
from elmoformanylangs.frontend import Model
from elmoformanylangs.modules.embedding_layer import EmbeddingLayer
from test_conversion import REMOTE_CODE_SCRIPT, offline_env

from modeling_elmo import ElmoConfig, ElmoModel, ElmoTokenizer
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.elmoformanylangs import load_elmoformanylangs
from modeling_elmo.conversion.folder import read_model_folder

TOLERANCE = 1e-5
MAX_CHARACTERS = 10
# "\u3000" is written as a line with no entry: ELMoForManyLangs strips the line and reads it as U+3000.
CHARACTERS = list("abcdefghéü日本語\u3000")
WORDS = ["der", "die", "日本", "abcdefgh", "Straße", "zq"]
SENTENCES = [
    ["der", "Zug", "fährt", "abcdefghabcdefgh", "日本語", "."],  # OOV characters (Z, ä, .), a word cut to 8 chars
    ["die"],
    ["Ω🙂", "<eos>", "ab\u3000c", "der"],  # 2- and 4-byte characters unknown to the dictionary, the marker spelling
    ["abcdefghij", "Straße", "bad", "cafe", "日本", "x", "die", "aaa"],  # "abcdefghij" is the known "abcdefgh" cut
]


@pytest.fixture(autouse=True, scope="module")
def quiet_oracle() -> Iterator[None]:
    """The oracle logs every model it builds at INFO level."""
    logger = logging.getLogger("elmoformanylangs")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def architecture(word_dim: int) -> dict:
    return {
        "encoder": {"name": "elmo", "projection_dim": 8, "cell_clip": 3, "proj_clip": 1.5, "dim": 12, "n_layers": 2},
        "token_embedder": {
            "name": "cnn",
            "activation": "tanh",
            "filters": [[1, 4], [2, 6], [3, 8]],
            "n_highway": 2,
            "word_dim": word_dim,
            "char_dim": 5,
            "max_characters_per_token": MAX_CHARACTERS,
        },
        "classifier": {"name": "sampled_softmax", "n_samples": 8},
        "dropout": 0.1,
    }


def write_oracle_model(directory: Path, word_dim: int, seed: int = 0, legacy_pickles: bool = False) -> Path:
    """A random ELMoForManyLangs model built with the package's classes, saved in its format (the dictionaries
    list the specials where its training code puts them, after the characters / words)."""
    torch.manual_seed(seed)
    config = architecture(word_dim)
    characters = {char: index for index, char in enumerate(CHARACTERS)}
    for special in ("<bos>", "<eos>", "<oov>", "<pad>", "<bow>", "<eow>"):
        characters[special] = len(characters)
    words = {word: index for index, word in enumerate(["<oov>", "<bos>", "<eos>", "<pad>", *WORDS])}
    word_layer = EmbeddingLayer(word_dim, words, fix_emb=False) if word_dim else None
    model = Model(config, word_layer, EmbeddingLayer(config["token_embedder"]["char_dim"], characters, fix_emb=False))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            # Large enough that the highway gates, the cell clip and the projection clip all matter.
            parameter.normal_(0.0, 0.6 if name.startswith("encoder") else 0.4)
    directory.mkdir(parents=True)
    options = {"_use_new_zipfile_serialization": False} if legacy_pickles else {}
    torch.save(model.token_embedder.state_dict(), directory / "token_embedder.pkl", **options)
    torch.save(model.encoder.state_dict(), directory / "encoder.pkl", **options)
    (directory / "cnn_test.json").write_text(json.dumps(config))
    # As trained elsewhere: the path is not valid here, the file is found by its name in the model folder.
    (directory / "config.json").write_text(json.dumps({"config_path": "/training/configs/cnn_test.json", "seed": 1}))
    (directory / "char.dic").write_text("".join(f"{char}\t{index}\n" for char, index in characters.items()))
    (directory / "word.dic").write_text("".join(f"{word}\t{index}\n" for word, index in words.items()))
    return directory


def oracle_layers(model_dir: Path, sentences: list[list[str]] = SENTENCES) -> list[np.ndarray]:
    """The package's 3 layers (3, words, 2P) per sentence, from a fresh `Embedder` (zero initial state)."""
    return Embedder(str(model_dir)).sents2elmo(sentences, output_layer=-2)


def our_layers(model: ElmoModel, tokenizer: ElmoTokenizer, sentences: list[list[str]] = SENTENCES) -> list[np.ndarray]:
    inputs = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden_states = model(**inputs, output_hidden_states=True).hidden_states
    return [torch.stack(hidden_states)[:, row, : len(words)].numpy() for row, words in enumerate(sentences)]


def max_differences(ours: list[np.ndarray], expected: list[np.ndarray]) -> np.ndarray:
    """The largest absolute difference per layer over all sentences."""
    return np.max([np.abs(a - b).max(axis=(1, 2)) for a, b in zip(ours, expected, strict=True)], axis=0)


@pytest.fixture(scope="module", params=[0, 6], ids=["chars-only", "word-embedding"])
def oracle_model(request, tmp_path_factory) -> Path:
    word_dim = request.param
    return write_oracle_model(tmp_path_factory.mktemp("efml") / "model", word_dim, legacy_pickles=word_dim > 0)


@pytest.fixture(scope="module")
def converted(oracle_model, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("converted") / "hf"
    assert elmo_main(["convert", "--elmoformanylangs", str(oracle_model), "--output-dir", str(output)]) == 0
    return output


def test_converted_model_matches_the_package(oracle_model, converted):
    expected = oracle_layers(oracle_model)
    tokenizer = AutoTokenizer.from_pretrained(converted)
    model = AutoModel.from_pretrained(converted).eval()
    assert model.config.character_scheme == "dictionary" and model.config.state_mode == "stateless"
    ours = our_layers(model, tokenizer)
    assert [layers.shape for layers in ours] == [layers.shape for layers in expected]
    differences = max_differences(ours, expected)
    print(f"max |ours - elmoformanylangs| per layer: {differences}")
    assert (differences < TOLERANCE).all(), differences


def test_every_clip_matters_in_the_test_models(oracle_model):
    """Without the cell clip or the projection clip the outputs change: the parity test covers both."""
    reference = our_layers(*load_elmoformanylangs(oracle_model))
    for setting in ("cell_clip", "projection_clip"):
        unclipped = our_layers(*load_elmoformanylangs(oracle_model, **{setting: None}))
        assert max_differences(unclipped, reference)[1:].min() > 1e-3, setting


def test_tokenizer_reproduces_the_package_ids(oracle_model, converted):
    from elmoformanylangs.elmo import create_batches, read_list

    embedder = Embedder(str(oracle_model))
    sentences, _ = read_list(SENTENCES, MAX_CHARACTERS)
    words, chars, lengths, _, ordered, _ = create_batches(
        sentences, 64, embedder.word_lexicon, embedder.char_lexicon, embedder.config, text=SENTENCES
    )
    tokenizer = AutoTokenizer.from_pretrained(converted)
    encoding = tokenizer(ordered[0], is_split_into_words=True, padding=True, return_tensors="pt")
    for row, length in enumerate(lengths[0]):  # the package's rows are sorted longest first, with <bos>/<eos>
        assert torch.equal(encoding["input_ids"][row, : length - 2], chars[0][row, 1 : length - 1] + 1)
        if words[0] is not None:
            assert torch.equal(encoding["word_ids"][row, : length - 2], words[0][row, 1 : length - 1])
    assert ("word_ids" in encoding) == (words[0] is not None)
    config = AutoConfig.from_pretrained(converted)
    markers = [[config.begin_of_word_char_id, marker, config.end_of_word_char_id] for marker in
               (config.begin_of_sentence_char_id, config.end_of_sentence_char_id)]  # fmt: skip
    assert chars[0][0, 0, :3].add(1).tolist() == markers[0]
    assert chars[0][0, lengths[0][0] - 1, :3].add(1).tolist() == markers[1]


def test_remote_code_loads_the_converted_model_without_the_package(converted, tmp_path):
    texts = ["der Zug fährt", "日本 abcdefghij Ω"]
    out = tmp_path / "remote.npy"
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_SCRIPT, str(converted), "|".join(texts), str(out)],
        capture_output=True,
        text=True,
        env=offline_env(tmp_path),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "remote code ok transformers_modules" in result.stdout
    tokenizer = AutoTokenizer.from_pretrained(converted)
    model = AutoModel.from_pretrained(converted).eval()
    with torch.no_grad():
        layers = model(**tokenizer(texts, padding=True, return_tensors="pt"), output_hidden_states=True).hidden_states
    np.testing.assert_array_equal(np.load(out), torch.stack(layers).numpy())


def test_dictionary_tokenizer_save_load_round_trip(converted, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(converted)
    assert isinstance(tokenizer, ElmoTokenizer) and tokenizer.character_scheme == "dictionary"
    assert tokenizer.char_vocab["\u3000"] == CHARACTERS.index("\u3000")
    tokenizer.save_pretrained(tmp_path / "again")
    saved = json.loads((tmp_path / "again" / "tokenizer_config.json").read_text())
    assert saved["character_scheme"] == "dictionary" and "char_vocab" not in saved
    assert json.loads((tmp_path / "again" / "char_vocab.json").read_text(encoding="utf-8")) == tokenizer.char_vocab
    assert (tmp_path / "again" / "word_vocab.json").is_file() == (tokenizer.word_vocab is not None)
    reloaded = ElmoTokenizer.from_pretrained(tmp_path / "again")
    assert (reloaded.char_vocab, reloaded.word_vocab) == (tokenizer.char_vocab, tokenizer.word_vocab)
    assert reloaded.model_input_names == tokenizer.model_input_names
    texts = ["die Zug .", "日本"]
    first, second = (t(texts, padding=True, return_tensors="pt") for t in (tokenizer, reloaded))
    assert first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)
    assert tokenizer.decode(first["input_ids"]) == ["d\ufffde \ufffd\ufffdg \ufffd", "日本"]  # unknown: U+FFFD
    assert tokenizer.decode(tokenizer.convert_tokens_to_ids(["<eos>", "x"])) == "</S> \ufffd"
    if tokenizer.word_vocab is not None:
        ids = tokenizer.word_vocab
        assert first["word_ids"].tolist() == [
            [ids["die"], ids["<oov>"], ids["<oov>"]],
            [ids["日本"], ids["<pad>"], ids["<pad>"]],
        ]


def test_dictionary_tokenizer_needs_its_dictionary(converted, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(converted)
    tokenizer.save_pretrained(tmp_path / "saved")
    (tmp_path / "saved" / "char_vocab.json").unlink()
    with pytest.raises(ValueError, match=r"char_vocab\.json"):
        ElmoTokenizer.from_pretrained(tmp_path / "saved")
    with pytest.raises(ValueError, match="<bow>"):
        ElmoTokenizer(character_scheme="dictionary", char_vocab={"<eow>": 0, "<oov>": 1, "<pad>": 2})
    with pytest.raises(ValueError, match="character_scheme='dictionary'"):
        ElmoTokenizer(word_vocab={"<oov>": 0, "<pad>": 1})


def test_token_cache_keys_on_the_word_id_too(oracle_model):
    model, tokenizer = load_elmoformanylangs(oracle_model)
    # "zq" and "zx" have the same characters for the model (z, q and x are unknown), but "zq" is in the word
    # dictionary: with a word embedding they differ in the word id only.
    sentences = [["zq", "der", "zx"], ["zx", "die", "日本"]]
    expected = our_layers(model, tokenizer, sentences)
    assert np.array_equal(expected[0][0, 0], expected[0][0, 2]) == (tokenizer.word_vocab is None)
    model.cache_token_embeddings(["zq", "der", "日本"], tokenizer=tokenizer)
    computed = []
    embed = model.token_embedder.forward

    def counting_embed(char_ids: torch.Tensor, word_ids: torch.Tensor | None = None) -> torch.Tensor:
        computed.append(char_ids.shape[0])
        return embed(char_ids, word_ids)

    model.token_embedder.forward = counting_embed
    cached = our_layers(model, tokenizer, sentences)
    # Computed: "die", and with a word embedding both "zx" (its word id is not the cached "zq"'s).
    assert computed == [1 if tokenizer.word_vocab is None else 3]
    for ours, reference in zip(cached, expected, strict=True):
        # Not bit-identical: the token embedder's products round differently for different numbers of rows.
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="tokenizer"):
        model.cache_token_embeddings(["der"])


def test_word_ids_are_checked(oracle_model):
    model, tokenizer = load_elmoformanylangs(oracle_model)
    inputs = tokenizer([["der", "die"]], is_split_into_words=True, return_tensors="pt")
    if tokenizer.word_vocab is None:
        with pytest.raises(ValueError, match="no word embedding"):
            model(**inputs, word_ids=torch.zeros(1, 2, dtype=torch.long))
        return
    with pytest.raises(ValueError, match="word_ids"):
        model(input_ids=inputs["input_ids"])
    size = model.config.word_vocab_size
    with pytest.raises(ValueError, match=rf"\[0, {size - 1}\]"):
        model(input_ids=inputs["input_ids"], word_ids=torch.tensor([[0, size]]))
    with pytest.raises(ValueError, match="batch, words"):
        model(input_ids=inputs["input_ids"], word_ids=torch.tensor([0, 1]))


def test_prime_states_passes_the_word_ids(oracle_model):
    model, tokenizer = load_elmoformanylangs(oracle_model)
    model.prime_states([tokenizer(SENTENCES, is_split_into_words=True, padding=True, return_tensors="pt")])
    assert model.primed_hidden_state.abs().sum() > 0
    model.config.state_mode = "primed"
    primed = our_layers(model, tokenizer, SENTENCES[:2])
    model.config.state_mode = "stateless"
    assert max_differences(primed, our_layers(model, tokenizer, SENTENCES[:2]))[1:].min() > 1e-4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("character_scheme", "bytes"),
        ("begin_of_word_char_id", 5),  # not the UTF-8 scheme's 259
        ("padding_char_id", 0),
        ("word_embedding_dim", -1),
        ("word_vocab_size", 10),  # without a word embedding
        ("end_of_sentence_word_id", 3),  # without a word embedding
    ],
)
def test_invalid_new_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ElmoConfig(**{field: value})


def test_dictionary_config_checks_its_ids():
    sizes = dict(projection_dim=4, lstm_cell_dim=8, character_scheme="dictionary", num_characters=20)
    ids = dict(begin_of_word_char_id=1, end_of_word_char_id=2, padding_char_id=3)
    ids.update(begin_of_sentence_char_id=4, end_of_sentence_char_id=5)
    ElmoConfig(**sizes, **ids)
    with pytest.raises(ValueError, match="end_of_sentence_char_id"):
        ElmoConfig(**sizes, **{**ids, "end_of_sentence_char_id": 20})
    with pytest.raises(ValueError, match="begin_of_sentence_word_id"):
        ElmoConfig(**sizes, **ids, word_embedding_dim=3, word_vocab_size=7)
    with pytest.raises(ValueError, match="dictionary"):
        ElmoConfig(**sizes, **ids).to_original_options()


# ---------------------------------------------------------------------------- bad input


@pytest.fixture
def model_dir(tmp_path) -> Path:
    return write_oracle_model(tmp_path / "efml", word_dim=3, seed=5)


def convert_expecting_error(capsys, model_dir: Path, *extra: str) -> str:
    output = model_dir.parent / "out"
    assert elmo_main(["convert", "--elmoformanylangs", str(model_dir), "--output-dir", str(output), *extra]) == 2
    assert not output.exists()
    assert not [path for path in output.parent.iterdir() if path.name.startswith(".out")]
    return capsys.readouterr().err


@pytest.mark.parametrize("name", ["config.json", "char.dic", "word.dic", "token_embedder.pkl", "encoder.pkl"])
def test_missing_file_is_named(model_dir, capsys, name):
    (model_dir / name).unlink()
    err = convert_expecting_error(capsys, model_dir)
    assert str(model_dir / name) in err and err.count("\n") == 1


def test_missing_architecture_file_is_named(model_dir, capsys):
    (model_dir / "cnn_test.json").unlink()
    assert "cnn_test.json" in convert_expecting_error(capsys, model_dir)


def test_unsupported_architecture_is_named(model_dir, capsys):
    architecture_path = model_dir / "cnn_test.json"
    config = json.loads(architecture_path.read_text())
    config["token_embedder"]["name"] = "lstm"
    architecture_path.write_text(json.dumps(config))
    assert "token_embedder.name is 'lstm'" in convert_expecting_error(capsys, model_dir)
    config["token_embedder"]["name"] = "cnn"
    config["token_embedder"]["activation"] = "gelu"
    architecture_path.write_text(json.dumps(config))
    assert "char_cnn_activation" in convert_expecting_error(capsys, model_dir)


def test_misshaped_and_missing_tensors_are_named(model_dir, capsys):
    state = torch.load(model_dir / "encoder.pkl", weights_only=True)
    state["backward_layer_1.state_projection.weight"] = torch.zeros(8, 11)
    torch.save(state, model_dir / "encoder.pkl")
    err = convert_expecting_error(capsys, model_dir)
    assert "backward_layer_1.state_projection.weight" in err and "(8, 11)" in err and "(8, 12)" in err
    del state["backward_layer_1.state_projection.weight"]
    torch.save(state, model_dir / "encoder.pkl")
    assert "has no tensor 'backward_layer_1.state_projection.weight'" in convert_expecting_error(capsys, model_dir)


def test_swapped_pickles_are_reported(model_dir, capsys):
    (model_dir / "encoder.pkl").rename(model_dir / "swap")
    (model_dir / "token_embedder.pkl").rename(model_dir / "encoder.pkl")
    (model_dir / "swap").rename(model_dir / "token_embedder.pkl")
    assert "token_embedder.pkl has no tensor 'char_emb_layer.embedding.weight'" in convert_expecting_error(
        capsys, model_dir
    )


def test_bad_dictionaries_are_named(model_dir, capsys):
    char_dic = model_dir / "char.dic"
    original = char_dic.read_text()
    char_dic.write_text("".join(line + "\n" for line in original.splitlines() if not line.startswith("<bow>")))
    assert "char.dic lacks the entries ['<bow>']" in convert_expecting_error(capsys, model_dir)
    char_dic.write_text(original + "Ω\t99\n")
    err = convert_expecting_error(capsys, model_dir)
    assert "char.dic" in err and "'Ω' has id 99" in err
    char_dic.write_text(original + "Ω\tseven\n")
    assert f"{char_dic}, line {len(original.splitlines()) + 1}" in convert_expecting_error(capsys, model_dir)


class Unpickled:
    """Harmless, but it shows when it is built: constructing one creates the file `path`."""

    def __init__(self, path: str) -> None:
        Path(path).touch()

    def __reduce__(self) -> tuple:
        return (Unpickled, (self.path,))


def test_pickles_are_loaded_without_running_code(model_dir, capsys, tmp_path):
    created = tmp_path / "unpickled"
    payload = Unpickled.__new__(Unpickled)  # not constructed here
    payload.path = str(created)
    torch.save({"weight": torch.zeros(1), "payload": payload}, model_dir / "encoder.pkl")
    err = convert_expecting_error(capsys, model_dir)
    assert "encoder.pkl is not a plain state dict" in err and "test_elmoformanylangs.Unpickled" in err
    assert "weights_only=True) refused it" in err and "weights_only` set to `False`" not in err
    assert not created.exists()
    torch.load(model_dir / "encoder.pkl", weights_only=False)  # the control: plain unpickling runs it
    assert created.exists()


def test_foreign_pickles_are_refused(model_dir, capsys):
    torch.save([torch.zeros(2)], model_dir / "token_embedder.pkl")
    assert "token_embedder.pkl is not a state dict" in convert_expecting_error(capsys, model_dir)
    (model_dir / "token_embedder.pkl").write_bytes(b"not a pickle at all")
    assert "token_embedder.pkl is not a plain state dict" in convert_expecting_error(capsys, model_dir)
    torch.save({"projection.bias": torch.zeros(100)}, model_dir / "token_embedder.pkl")
    data = (model_dir / "token_embedder.pkl").read_bytes()
    (model_dir / "token_embedder.pkl").write_bytes(data[: len(data) // 2])  # a cut download
    err = convert_expecting_error(capsys, model_dir)
    assert "token_embedder.pkl is not a readable PyTorch file (RuntimeError: PytorchStreamReader failed" in err
    torch.save({"projection.weight": torch.zeros(2, 2, dtype=torch.long)}, model_dir / "token_embedder.pkl")
    assert "dtype torch.int64" in convert_expecting_error(capsys, model_dir)


def test_other_sources_cannot_be_combined(model_dir, capsys):
    err = convert_expecting_error(capsys, model_dir, "--options", "options.json")
    assert "--elmoformanylangs cannot be combined with --options" in err


def test_existing_output_needs_overwrite(model_dir, capsys):
    output = model_dir.parent / "existing"
    output.mkdir()
    (output / "keep.txt").write_text("user data")
    args = ["convert", "--elmoformanylangs", str(model_dir), "--output-dir", str(output)]
    assert elmo_main(args) == 2 and "not empty" in capsys.readouterr().err
    assert elmo_main([*args, "--overwrite"]) == 0
    assert not (output / "keep.txt").exists() and (output / "char_vocab.json").is_file()


def test_converted_folder_passes_the_publishing_check(converted):
    folder = read_model_folder(converted)
    assert folder.config.character_scheme == "dictionary"
    assert "primed_cell_state" in folder.header


def test_export_to_bilm_tf_is_refused_with_a_clear_error(converted, tmp_path, capsys):
    output = tmp_path / "original"
    assert elmo_main(["export-original", "--model", str(converted), "--output-dir", str(output)]) == 2
    error = capsys.readouterr().err
    assert "config.json" in error and "has no bilm-tf options" in error
    assert not output.exists()
