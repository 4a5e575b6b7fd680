"""ElmoConfig: original options round trip, validation that names the field, Auto registration."""

import copy
import json

import pytest
from transformers import AutoConfig

import modeling_elmo  # noqa: F401  (registers the Auto classes)
from modeling_elmo import ElmoConfig

ORIGINAL_OPTIONS = {
    "lstm": {
        "use_skip_connections": True,
        "projection_dim": 512,
        "cell_clip": 3,
        "proj_clip": 3,
        "dim": 4096,
        "n_layers": 2,
    },
    "char_cnn": {
        "activation": "relu",
        "filters": [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        "n_highway": 2,
        "embedding": {"dim": 16},
        "n_characters": 262,
        "max_characters_per_token": 50,
    },
}

TRAINING_OPTIONS = {
    "bidirectional": True,
    "dropout": 0.1,
    "n_tokens_vocab": 793471,
    "n_negative_samples_batch": 8192,
    "unroll_steps": 20,
    "batch_size": 128,
    "n_epochs": 10,
    "all_clip_norm_val": 10.0,
    "lstm": {**ORIGINAL_OPTIONS["lstm"], "cell_clip": None},
    "char_cnn": {**ORIGINAL_OPTIONS["char_cnn"], "n_characters": 261},
}


def test_original_options_map_to_named_fields():
    config = ElmoConfig.from_original_options(ORIGINAL_OPTIONS)
    assert config.lstm_cell_dim == 4096
    assert config.projection_dim == 512
    assert config.num_lstm_layers == 2
    assert config.num_highway_layers == 2
    assert config.char_embedding_dim == 16
    assert config.num_filters == 2048
    assert config.hidden_size == 1024
    assert config.cell_clip == 3 and config.projection_clip == 3
    assert config.use_skip_connections is True
    assert config.state_mode == "stateless"


@pytest.mark.parametrize("options", [ORIGINAL_OPTIONS, TRAINING_OPTIONS], ids=["inference", "training"])
def test_original_options_round_trip_losslessly(options, tmp_path):
    config = ElmoConfig.from_original_options(copy.deepcopy(options))
    assert config.to_original_options() == options
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(reloaded, ElmoConfig)
    assert reloaded.to_original_options() == options


def test_training_options_use_262_characters_at_inference():
    config = ElmoConfig.from_original_options(copy.deepcopy(TRAINING_OPTIONS))
    assert config.num_characters == 262
    assert config.cell_clip is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("projection_dim", -1),
        ("lstm_cell_dim", 0),
        ("num_lstm_layers", 1.5),
        ("num_highway_layers", -2),
        ("char_embedding_dim", "16"),
        ("char_cnn_filters", [[1, 32], [2]]),
        ("char_cnn_filters", [[1, -32]]),
        ("char_cnn_filters", [[1, 32.0]]),
        ("char_cnn_filters", []),
        ("char_cnn_filters", [[60, 4]]),
        ("char_cnn_activation", "gelu"),
        ("cell_clip", -3),
        ("projection_clip", "3"),
        ("use_skip_connections", "yes"),
        ("state_mode", "warm"),
        ("max_characters_per_token", 2),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ElmoConfig(**{field: value})


def test_missing_original_section_or_key_is_named():
    with pytest.raises(ValueError, match="lstm"):
        ElmoConfig.from_original_options({"char_cnn": ORIGINAL_OPTIONS["char_cnn"]})
    options = copy.deepcopy(ORIGINAL_OPTIONS)
    del options["lstm"]["projection_dim"]
    with pytest.raises(ValueError, match=r"lstm\.projection_dim"):
        ElmoConfig.from_original_options(options)


def test_state_mode_is_selected_at_load_time(tmp_path):
    ElmoConfig(projection_dim=8, lstm_cell_dim=16).save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path, state_mode="stateful")
    assert config.state_mode == "stateful"
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "elmo"
