"""Untrusted declared sizes and fields: bilm-tf `options.json`, a model folder's `config.json` and the
ELMoForManyLangs architecture JSON. Every size is checked against `LIMITS` (and the total against `MAX_PARAMETERS`)
before anything is allocated; a field of the wrong type, a file that is not UTF-8 or is nested too deeply is one line
naming the file and the field, exit status 2, and nothing written. Property tests substitute arbitrary JSON values
into every field and require success or the package's own error, never another exception, never a large
allocation."""

from __future__ import annotations

import contextlib
import copy
import json
import resource
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from transformers import AutoConfig, AutoModel

from modeling_elmo import ElmoConfig
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.configuration_elmo import LIMITS, MAX_PARAMETERS, ElmoError
from modeling_elmo.conversion.folder import read_model_folder
from original_format import elmoformanylangs_architecture, write_random_elmoformanylangs, write_random_original

pytestmark = pytest.mark.usefixtures("one_thread")

#: How much a test may raise the process's peak memory: far below what any refused size would allocate.
MEMORY_ALLOWANCE_MB = 1024


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"elmo {command}: error: "), err
    return err


@pytest.fixture
def original(tmp_path: Path) -> tuple[Path, Path]:
    return write_random_original(tmp_path / "original")


def convert(options: Path, weights: Path, output: Path) -> int:
    """`elmo convert`'s exit status."""
    return elmo_main(["convert", "--options", str(options), "--weights", str(weights), "--output-dir", str(output)])


def convert_expecting_error(capsys, options: Path, weights: Path) -> str:
    output = options.parent.parent / "converted"
    assert convert(options, weights, output) == 2
    assert not output.exists() and not list(output.parent.glob(".converted*"))
    return one_line_error(capsys, "convert")


def set_option(options: Path, path: str, value) -> None:
    """Set the options key `path` (dotted, e.g. `char_cnn.embedding.dim`) to `value`."""
    content = json.loads(options.read_text())
    *sections, key = path.split(".")
    target = content
    for section in sections:
        target = target[section]
    target[key] = value
    options.write_text(json.dumps(content))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lstm.projection_dim", 1_000_000, "projection_dim is 1000000, more than the limit of 16384"),
        ("lstm.dim", 10**6, "lstm_cell_dim is 1000000, more than the limit of 16384"),
        ("lstm.n_layers", 10**7, "num_lstm_layers is 10000000, more than the limit of 16"),
        ("char_cnn.n_highway", 1000, "num_highway_layers is 1000, more than the limit of 16"),
        ("char_cnn.embedding.dim", 10**5, "char_embedding_dim is 100000, more than the limit of 4096"),
        ("char_cnn.max_characters_per_token", 10**9, "max_characters_per_token is 1000000000, more than the limit"),
        ("char_cnn.n_characters", 2**22, "num_characters is 4194304, more than the limit of 2097152"),
        ("char_cnn.filters", [[1, 10**6]], "counts [1000000], more than the limit of 16384"),
        ("char_cnn.filters", [[1, 4]] * 65, "65 [width, count] pairs, more than the limit of 64"),
        ("char_cnn.filters", [[51, 4]], "widths [51] wider than max_characters_per_token = 50"),
    ],
)
def test_sizes_above_the_limits_are_refused(original, capsys, key, value, message):
    options, weights = original
    set_option(options, key, value)
    before = peak_rss_mb()
    err = convert_expecting_error(capsys, options, weights)
    assert f"{options}: {key}: " in err and message in err
    assert peak_rss_mb() - before < MEMORY_ALLOWANCE_MB


def test_too_many_weights_in_all_are_refused(original, capsys):
    options, weights = original
    set_option(options, "lstm.dim", 16384)
    set_option(options, "lstm.projection_dim", 16384)
    err = convert_expecting_error(capsys, options, weights)
    assert f"more than the limit of {MAX_PARAMETERS:,} (MAX_PARAMETERS)" in err


def test_every_published_model_is_within_the_limits():
    """The Original with its softmax (the largest published model) and an ELMoForManyLangs model with a word
    embedding of a large vocabulary."""
    original_lm = ElmoConfig(lm_vocab_size=793_471, lm_begin_of_sentence_id=1, lm_end_of_sentence_id=0, lm_unknown_id=2)
    assert original_lm._declared_parameters() < MAX_PARAMETERS // 4
    many_langs = ElmoConfig(
        char_embedding_dim=50,
        num_characters=20_000,
        character_scheme="dictionary",
        begin_of_word_char_id=1,
        end_of_word_char_id=2,
        padding_char_id=3,
        begin_of_sentence_char_id=4,
        end_of_sentence_char_id=5,
        word_embedding_dim=100,
        word_vocab_size=2_000_000,
        begin_of_sentence_word_id=1,
        end_of_sentence_word_id=2,
    )
    assert many_langs._declared_parameters() < MAX_PARAMETERS // 4
    assert LIMITS["max_characters_per_token"] >= 50 and LIMITS["lstm_cell_dim"] >= 4096


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lstm.dim", "16"),
        ("lstm.dim", 16.0),
        ("lstm.dim", True),
        ("lstm.dim", None),
        ("lstm.projection_dim", [8]),
        ("lstm.n_layers", {"n": 2}),
        ("lstm.cell_clip", "3"),
        ("lstm.proj_clip", float("inf")),
        ("lstm.use_skip_connections", "true"),
        ("char_cnn.activation", 5),
        ("char_cnn.filters", 5),
        ("char_cnn.filters", "abc"),
        ("char_cnn.filters", [[1, "4"]]),
        ("char_cnn.filters", [[1, 4.0]]),
        ("char_cnn.filters", {"1": 4}),
        ("char_cnn.embedding.dim", "4"),
        ("char_cnn.n_characters", 262.0),
        ("char_cnn.n_highway", -1),
        ("char_cnn.max_characters_per_token", False),
    ],
)
def test_fields_of_the_wrong_type_are_named(original, capsys, key, value):
    options, weights = original
    set_option(options, key, value)
    err = convert_expecting_error(capsys, options, weights)
    assert f"{options}: {key}: " in err


@pytest.mark.parametrize("embedding", [[16], 16, "dim", True])
def test_char_cnn_embedding_of_the_wrong_type_is_named(original, capsys, embedding):
    options, weights = original
    set_option(options, "char_cnn.embedding", embedding)
    err = convert_expecting_error(capsys, options, weights)
    assert f"{options}: char_cnn.embedding must be a JSON object" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"lstm": {"dim": 16}, "char_cnn": "\xe9t\xe9"}', "is not UTF-8 text (byte 35"),
        (b"\xff\xfe{\x00}\x00", "is not UTF-8 text (byte 0"),
        (b'{"lstm": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "is nested too deeply to be an options file"),
        (b"[1, 2]", "options must be a JSON object, got list"),
        (b'{"lstm": 5, "char_cnn": {}}', "options is missing the 'lstm' section"),
        (b'{"lstm": {"dim": 16', "is not valid JSON (line 1, column 20"),
    ],
    ids=["latin-1", "utf-16", "nested", "list", "section", "truncated"],
)
def test_unreadable_options_files_are_named(original, capsys, content, message):
    options, weights = original
    options.write_bytes(content)
    err = convert_expecting_error(capsys, options, weights)
    assert str(options) in err and message in err


# config.json of a model folder


@pytest.fixture(scope="module")
def converted_folder(tmp_path_factory) -> Path:
    """A converted tiny model folder (kept unchanged: tests copy its config.json into folders of their own)."""
    root = tmp_path_factory.mktemp("converted")
    options, weights = write_random_original(root / "original", projection_dim=4, lstm_dim=8, n_layers=1)
    output = root / "folder"
    assert convert(options, weights, output) == 0
    return output


def folder_with_config(source: Path, target: Path, **changes) -> Path:
    """A copy of the model folder `source` with `changes` in its config.json (None deletes a key)."""
    target.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (target / path.name).write_bytes(path.read_bytes())
    config = json.loads((source / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize(
    ("field", "value"),
    [("projection_dim", 1_000_000), ("num_lstm_layers", 10**7), ("max_characters_per_token", 10**9)],
)
def test_absurd_config_json_sizes_fail_before_allocating(converted_folder, tmp_path, capsys, field, value):
    folder = folder_with_config(converted_folder, tmp_path / "model", **{field: value})
    before = peak_rss_mb()
    message = f"{field} is {value}, more than the limit"
    with pytest.raises(ValueError, match=message):
        ElmoConfig.from_pretrained(folder)
    with pytest.raises(ValueError, match=message):
        AutoModel.from_pretrained(folder)
    output = tmp_path / "exported"
    assert elmo_main(["export-original", "--model", str(folder), "--output-dir", str(output)]) == 2
    assert message in one_line_error(capsys, "export-original") and not output.exists()
    text, vectors = tmp_path / "in.txt", tmp_path / "vectors.hdf5"
    text.write_text("a b\n")
    assert elmo_main(["embed", "--model", str(folder), str(text), str(vectors), "--no-progress"]) == 2
    assert message in one_line_error(capsys, "embed") and not vectors.exists()
    assert peak_rss_mb() - before < MEMORY_ALLOWANCE_MB


def test_config_json_without_model_type_says_so(converted_folder, tmp_path, capsys):
    folder = folder_with_config(converted_folder, tmp_path / "model", model_type=None)
    output = tmp_path / "exported"
    assert elmo_main(["export-original", "--model", str(folder), "--output-dir", str(output)]) == 2
    err = one_line_error(capsys, "export-original")
    assert "model_type" in err and "valid JSON" not in err and not output.exists()
    text, vectors = tmp_path / "in.txt", tmp_path / "vectors.hdf5"
    text.write_text("a b\n")
    assert elmo_main(["embed", "--model", str(folder), str(text), str(vectors), "--no-progress"]) == 2
    err = one_line_error(capsys, "embed")
    assert "model_type" in err and "valid JSON" not in err and not vectors.exists()


# ELMoForManyLangs architecture JSON


def convert_elmoformanylangs_expecting_error(capsys, model_dir: Path) -> str:
    output = model_dir.parent / "converted"
    assert elmo_main(["convert", "--elmoformanylangs", str(model_dir), "--output-dir", str(output)]) == 2
    assert not output.exists() and not list(output.parent.glob(".converted*"))
    return one_line_error(capsys, "convert")


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("encoder", "dim", 10**6, "encoder.dim: lstm_cell_dim is 1000000, more than the limit"),
        ("encoder", "n_layers", 10**7, "encoder.n_layers: num_lstm_layers is 10000000, more than the limit"),
        ("encoder", "projection_dim", "8", "encoder.projection_dim: projection_dim must be an integer"),
        ("encoder", "proj_clip", [3], "encoder.proj_clip: projection_clip must be a positive finite number"),
        ("token_embedder", "filters", 5, "token_embedder.filters: char_cnn_filters must be a non-empty list"),
        ("token_embedder", "max_characters_per_token", 10**9, "token_embedder.max_characters_per_token: "),
        ("token_embedder", "char_dim", 5.0, "token_embedder.char_dim: char_embedding_dim must be an integer"),
        ("token_embedder", "word_dim", "3", "token_embedder.word_dim must be an integer >= 0"),
        ("token_embedder", "n_highway", None, "token_embedder.n_highway: num_highway_layers must be an integer"),
    ],
)
def test_elmoformanylangs_architecture_fields_are_named(tmp_path, capsys, section, key, value, message):
    model_dir = write_random_elmoformanylangs(tmp_path / "efml")
    # The sizes are checked before the pickles are read: without them the message is still about the field.
    (model_dir / "encoder.pkl").unlink()
    architecture = json.loads((model_dir / "arch.json").read_text())
    architecture[section][key] = value
    (model_dir / "arch.json").write_text(json.dumps(architecture))
    err = convert_elmoformanylangs_expecting_error(capsys, model_dir)
    assert f"{model_dir / 'arch.json'}: " in err and message in err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("arch.json", b"\xff" * 4, "cannot read"),
        ("arch.json", b"[" * 100_000, "is nested too deeply"),
        ("config.json", b'{"config_path": ' + b"[" * 100_000 + b"}", "is nested too deeply"),
    ],
)
def test_unreadable_elmoformanylangs_json_is_named(tmp_path, capsys, name, content, message):
    model_dir = write_random_elmoformanylangs(tmp_path / "efml")
    (model_dir / name).write_bytes(content)
    err = convert_elmoformanylangs_expecting_error(capsys, model_dir)
    assert str(model_dir / name) in err and message in err


# Property tests: arbitrary JSON values in every field.

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, 1, -1, 3, 50, 261, 262, 16384, 16385, 10**7, 2**31, 10**30])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)
OPTIONS_KEYS = [
    "lstm",
    "char_cnn",
    "lstm.dim",
    "lstm.projection_dim",
    "lstm.n_layers",
    "lstm.cell_clip",
    "lstm.proj_clip",
    "lstm.use_skip_connections",
    "char_cnn.activation",
    "char_cnn.embedding",
    "char_cnn.embedding.dim",
    "char_cnn.filters",
    "char_cnn.n_highway",
    "char_cnn.n_characters",
    "char_cnn.max_characters_per_token",
]
FUZZ_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def fuzz_original(tmp_path_factory) -> tuple[dict, Path]:
    """The options dict and weight file of a tiny model (never changed by the property tests)."""
    options, weights = write_random_original(tmp_path_factory.mktemp("fuzz") / "original", n_layers=1)
    return json.loads(options.read_text()), weights


def substituted(content: dict, key: str, value) -> dict:
    """A copy of `content` with the dotted `key` set to `value` (or the nearest existing section replaced)."""
    content = copy.deepcopy(content)
    *sections, last = key.split(".")
    target = content
    for section in sections:
        if not isinstance(target.get(section), dict):
            target[section] = {}
        target = target[section]
    target[last] = value
    return content


@FUZZ_SETTINGS
@given(key=st.sampled_from(OPTIONS_KEYS), value=JSON_VALUES)
@example(key="lstm.n_layers", value=10**7)
@example(key="char_cnn.max_characters_per_token", value=10**9)
@example(key="char_cnn.embedding", value=[1, 2])
@example(key="lstm.cell_clip", value=2.5)  # converts
def test_fuzzed_options_convert_or_fail_cleanly(fuzz_original, capsys, key, value):
    content, weights = fuzz_original
    before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as scratch:
        options, output = Path(scratch) / "options.json", Path(scratch) / "out"
        options.write_text(json.dumps(substituted(content, key, value)))
        status = convert(options, weights, output)  # any exception but the package's (status 2) fails the test
        if status == 2:
            one_line_error(capsys, "convert")
            assert sorted(path.name for path in Path(scratch).iterdir()) == ["options.json"]
        else:
            assert status == 0 and (output / "model.safetensors").is_file()
    assert peak_rss_mb() - before < MEMORY_ALLOWANCE_MB


ELMO_FIELDS = [
    "char_embedding_dim",
    "char_cnn_filters",
    "char_cnn_activation",
    "num_highway_layers",
    "max_characters_per_token",
    "num_characters",
    "projection_dim",
    "lstm_cell_dim",
    "num_lstm_layers",
    "cell_clip",
    "projection_clip",
    "use_skip_connections",
    "state_mode",
    "character_scheme",
    "padding_char_id",
    "word_embedding_dim",
    "word_vocab_size",
    "begin_of_sentence_word_id",
    "lm_vocab_size",
    "lm_unknown_id",
    "lm_num_sampled",
    "lm_dropout",
    "freeze_elmo",
    "scalar_mix_regularization",
    "task_encoder",
    "task_encoder_hidden_size",
    "task_encoder_layers",
    "sequence_pooling",
]


@FUZZ_SETTINGS
@given(field=st.sampled_from(ELMO_FIELDS), value=JSON_VALUES)
@example(field="projection_dim", value=1_000_000)
@example(field="word_vocab_size", value=10**7)
@example(field="state_mode", value="stateful")  # loads
def test_fuzzed_config_json_loads_or_fails_cleanly(converted_folder, field, value):
    """`ElmoConfig.from_pretrained` raises a `ValueError` (its documented error) or loads; the folder check
    (`read_model_folder`, used by `export-original` and `push`) raises an `ElmoError` or accepts the folder."""
    before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as scratch:
        folder = folder_with_config(converted_folder, Path(scratch) / "model", **{field: value})
        try:
            config = AutoConfig.from_pretrained(folder)
        except ValueError:
            config = None
        assert config is None or isinstance(config, ElmoConfig)
        with contextlib.suppress(ElmoError):
            read_model_folder(folder)
    assert peak_rss_mb() - before < MEMORY_ALLOWANCE_MB


ARCHITECTURE_KEYS = [f"token_embedder.{key}" for key in elmoformanylangs_architecture()["token_embedder"]] + [
    f"encoder.{key}" for key in elmoformanylangs_architecture()["encoder"]
]


@pytest.fixture(scope="module")
def fuzz_elmoformanylangs(tmp_path_factory) -> Path:
    return write_random_elmoformanylangs(tmp_path_factory.mktemp("fuzz") / "efml")


@FUZZ_SETTINGS
@given(key=st.sampled_from(ARCHITECTURE_KEYS), value=JSON_VALUES)
@example(key="encoder.n_layers", value=10**7)
@example(key="encoder.cell_clip", value=0)  # converts (no clipping)
def test_fuzzed_elmoformanylangs_architecture_converts_or_fails_cleanly(fuzz_elmoformanylangs, capsys, key, value):
    architecture = json.loads((fuzz_elmoformanylangs / "arch.json").read_text())
    before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as scratch:
        model_dir, output = Path(scratch) / "efml", Path(scratch) / "out"
        model_dir.mkdir()
        for path in fuzz_elmoformanylangs.iterdir():
            (model_dir / path.name).write_bytes(path.read_bytes())
        (model_dir / "arch.json").write_text(json.dumps(substituted(architecture, key, value)))
        status = elmo_main(["convert", "--elmoformanylangs", str(model_dir), "--output-dir", str(output)])
        if status == 2:
            one_line_error(capsys, "convert")
            assert not output.exists()
        else:
            assert status == 0 and (output / "model.safetensors").is_file()
    assert peak_rss_mb() - before < MEMORY_ALLOWANCE_MB
