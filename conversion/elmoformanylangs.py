"""Convert an ELMoForManyLangs model (HIT-SCIR, 44 languages) into a Hugging Face model folder.

An ELMoForManyLangs model folder holds

| file | content |
|---|---|
| `config.json` | the training arguments; `config_path` names the architecture JSON |
| architecture JSON | `token_embedder` (`name` "cnn", `char_dim`, `word_dim`, `filters`, `n_highway`, `activation`, |
| | `max_characters_per_token`) and `encoder` (`name` "elmo", `projection_dim`, `dim`, `n_layers`, `cell_clip`, |
| | `proj_clip`) |
| `char.dic`, `word.dic` | `entry<TAB>id` lines (`word.dic` is read only with `word_dim > 0`) |
| `token_embedder.pkl`, `encoder.pkl` | state dicts, read with `torch.load(weights_only=True)` (tensors, no code) |

The parameters are in AllenNLP's PyTorch layout. Their mapping onto `ElmoModel` (F = sum of the filter counts,
P = projection size, D = cell size, l = layer, d = 0 for `forward_layer_{l}`, 1 for `backward_layer_{l}`):

| ELMoForManyLangs tensor | shape | `ElmoModel` parameter |
|---|---|---|
| `char_emb_layer.embedding.weight` | (n, E) | `…char_cnn.embedding.weight` after a zero row (ids + 1) |
| `convolutions.{i}.weight`, `.bias` | (count, E, width) | `…char_cnn.convolutions.{i}` as they are |
| `highways._layers.{k}.weight`, `.bias` | (2F, F) | rows [:F]: `…highway.{k}.transform`; |
| | | rows [F:] negated: `…highway.{k}.carry_gate` |
| `word_emb_layer.embedding.weight` | (words, W) | `token_embedder.word_embedding.weight` |
| `projection.weight`, `.bias` | (P, W + F) | `token_embedder.projection` (input `[word vector; char features]`) |
| `…_layer_{l}.input_linearity.weight` | (4D, P) | `bilstm.layers.{l}.input_weight[d]`, gates reordered, transposed |
| `…_layer_{l}.state_linearity.weight` | (4D, P) | `bilstm.layers.{l}.recurrent_weight[d]`, the same |
| `…_layer_{l}.state_linearity.bias` | (4D,) | `bilstm.layers.{l}.bias[d]`, gates reordered, forget bias - 1 |
| `…_layer_{l}.state_projection.weight` | (P, D) | `bilstm.layers.{l}.projection_weight[d]`, transposed |

Highway: ELMoForManyLangs computes `g * x + (1 - g) * relu(A x)` with `g = sigmoid(B x + b)`, so our carry gate
`t = 1 - g = sigmoid(-(B x + b))`. LSTM: its gates come in the order i, f, g, o with the forget bias folded into
the bias; ours are i, j (= g), f, o with the forget bias added at run time. Its clipping applies when the value
is truthy (0 or null switch it off), and every layer after the first adds its input (skip connections).
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from modeling_elmo.configuration_elmo import ElmoConfig
from modeling_elmo.conversion.folder import (
    ConversionError,
    check_output_dir,
    save_with_remote_code,
    staged_directory,
    transformers_progress_bars_off,
)
from modeling_elmo.modeling_elmo import FORGET_BIAS, ElmoModel
from modeling_elmo.tokenization_elmo import DICTIONARY_SPECIAL_CHARS, DICTIONARY_SPECIAL_WORDS
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast

CONFIG_NAME = "config.json"
CHAR_DICTIONARY_NAME = "char.dic"
WORD_DICTIONARY_NAME = "word.dic"
TOKEN_EMBEDDER_NAME = "token_embedder.pkl"
ENCODER_NAME = "encoder.pkl"
# ELMoForManyLangs reads a dictionary line whose entry is blank after stripping whitespace as this entry.
BLANK_ENTRY = "\u3000"


def read_dictionary(path: Path) -> dict[str, int]:
    """A `char.dic`/`word.dic` as ELMoForManyLangs reads it: `entry<TAB>id` per line, surrounding whitespace
    stripped; a line with only an id (the entry was whitespace) stands for U+3000; a later line for the same
    entry wins. Blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConversionError(f"{path} does not exist") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConversionError(f"cannot read {path} ({error})") from error
    dictionary = {}
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.strip().split("\t")
        if fields == [""]:
            continue
        if len(fields) == 1:
            fields.insert(0, BLANK_ENTRY)
        try:
            if len(fields) != 2 or int(fields[1]) < 0:
                raise ValueError(fields)
        except ValueError as error:
            raise ConversionError(
                f"{path}, line {number}: expected 'entry<TAB>id' with an id >= 0, got {line.strip()!r:.60}"
            ) from error
        dictionary[fields[0]] = int(fields[1])
    return dictionary


def _read_json(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise ConversionError(f"{path} is a folder, not a file")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConversionError(f"{path} does not exist") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ConversionError(f"cannot read {path} ({error})") from error
    except json.JSONDecodeError as error:
        raise ConversionError(f"{path} is not valid JSON (line {error.lineno}: {error.msg})") from error
    except RecursionError as error:
        raise ConversionError(f"{path} is nested too deeply to be a configuration file") from error
    if not isinstance(value, dict):
        raise ConversionError(f"{path} is not a JSON object")
    return value


def read_architecture(model_dir: Path) -> tuple[dict[str, Any], Path]:
    """The architecture JSON named by `config.json`'s `config_path`, and where it was found: that path (relative
    to the model folder), else a file of that name in the model folder, as ELMoForManyLangs looks for it."""
    config_path = model_dir / CONFIG_NAME
    named = _read_json(config_path).get("config_path")
    if not isinstance(named, str) or not named:
        raise ConversionError(f"{config_path} has no config_path (the name of the architecture JSON)")
    for candidate in (model_dir / named, model_dir / Path(named).name):
        if candidate.is_file():
            return _read_json(candidate), candidate
    raise ConversionError(
        f"{config_path} names the architecture file {named!r}, which is neither there nor in {model_dir}: copy it "
        "into the model folder (the published models use one of the JSON files in ELMoForManyLangs' configs/ folder)"
    )


def _section(architecture: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    section = architecture.get(name)
    if not isinstance(section, dict):
        raise ConversionError(f"{path} has no {name!r} section")
    return section


def _value(section: dict[str, Any], key: str, where: str, path: Path) -> Any:
    if key not in section:
        raise ConversionError(f"{path} has no {where}.{key}")
    return section[key]


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A pickled state dict, read with `torch.load(weights_only=True)`: only tensors and plain containers are
    rebuilt, so a pickle that would construct other objects (or run code) is refused, not executed. Every tensor
    must hold finite floats."""
    if path.is_dir():
        raise ConversionError(f"{path} is a folder, not a file")
    if not path.is_file():
        raise ConversionError(f"{path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's message advises loading without weights_only; keep only its reason.
        reason = str(error).partition("WeightsUnpickler error:")[2] or str(error)
        raise ConversionError(
            f"{path} is not a plain state dict: torch.load(weights_only=True) refused it ({_first_sentence(reason)})"
        ) from error
    except Exception as error:  # torch.load raises many kinds of errors for a damaged or foreign file
        raise ConversionError(
            f"{path} is not a readable PyTorch file ({type(error).__name__}: {_first_sentence(str(error))})"
        ) from error
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise ConversionError(f"{path} is not a state dict (names to tensors), got {type(state).__name__}")
    for name, tensor in state.items():
        if not tensor.dtype.is_floating_point:
            raise ConversionError(f"{path}: tensor {name!r} has dtype {tensor.dtype}, expected floats")
        finite = torch.isfinite(tensor.float())
        if not finite.all():
            bad = finite.numel() - int(finite.sum())
            raise ConversionError(f"{path}: tensor {name!r} holds {bad} values that are NaN or infinite as float32")
    return dict(state)


def _first_sentence(text: str) -> str:
    """The first sentence of an error message (on one line)."""
    return " ".join(text.split()).split(". ")[0].rstrip(".")


def _check_shapes(state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], path: Path) -> None:
    """Every expected tensor with its shape (-1: any size), and nothing else."""
    for name, shape in expected.items():
        if name not in state:
            raise ConversionError(f"{path} has no tensor {name!r} (expected shape {shape})")
        found = tuple(state[name].shape)
        if len(found) != len(shape) or any(want not in (-1, got) for want, got in zip(shape, found, strict=False)):
            wanted = tuple("any" if size == -1 else size for size in shape)
            raise ConversionError(f"{path}: tensor {name!r} has shape {found}, the architecture implies {wanted}")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise ConversionError(f"{path} has tensors the architecture does not explain: {unexpected[:5]}")


def _check_ids(dictionary: dict[str, int], rows: int, path: Path, embedding: str) -> None:
    entry, largest = max(dictionary.items(), key=lambda item: item[1])
    if largest >= rows:
        raise ConversionError(f"{path}: {entry!r} has id {largest}, but {embedding} has only {rows} rows")


def _reorder_gates(weight: torch.Tensor) -> torch.Tensor:
    """AllenNLP's gate blocks i, f, g, o (along dim 0) → bilm-tf's i, j (= g), f, o."""
    input_gate, forget_gate, candidate, output_gate = weight.chunk(4, dim=0)
    return torch.cat([input_gate, candidate, forget_gate, output_gate])


def _to_elmo_state_dict(
    token_embedder: dict[str, torch.Tensor], encoder: dict[str, torch.Tensor], config: ElmoConfig
) -> dict[str, torch.Tensor]:
    """Map checked ELMoForManyLangs tensors onto `ElmoModel`'s parameter names and layouts (float32)."""
    source = {name: tensor.float() for name, tensor in token_embedder.items()}
    characters = source["char_emb_layer.embedding.weight"]
    state = {
        "token_embedder.char_cnn.embedding.weight": torch.cat(
            [characters.new_zeros(1, characters.shape[1]), characters]
        )
    }
    for index in range(len(config.char_cnn_filters)):
        for kind in ("weight", "bias"):
            state[f"token_embedder.char_cnn.convolutions.{index}.{kind}"] = source[f"convolutions.{index}.{kind}"]
    width = config.num_filters
    for layer in range(config.num_highway_layers):
        for kind in ("weight", "bias"):
            both = source[f"highways._layers.{layer}.{kind}"]
            state[f"token_embedder.highway.{layer}.transform.{kind}"] = both[:width]
            state[f"token_embedder.highway.{layer}.carry_gate.{kind}"] = -both[width:]
    if config.word_embedding_dim:
        state["token_embedder.word_embedding.weight"] = source["word_emb_layer.embedding.weight"]
    state["token_embedder.projection.weight"] = source["projection.weight"]
    state["token_embedder.projection.bias"] = source["projection.bias"]

    source = {name: tensor.float() for name, tensor in encoder.items()}
    cell_dim = config.lstm_cell_dim
    for layer in range(config.num_lstm_layers):
        prefixes = [f"forward_layer_{layer}", f"backward_layer_{layer}"]
        state[f"bilstm.layers.{layer}.input_weight"] = torch.stack(
            [_reorder_gates(source[f"{prefix}.input_linearity.weight"]).t() for prefix in prefixes]
        )
        state[f"bilstm.layers.{layer}.recurrent_weight"] = torch.stack(
            [_reorder_gates(source[f"{prefix}.state_linearity.weight"]).t() for prefix in prefixes]
        )
        biases = torch.stack([_reorder_gates(source[f"{prefix}.state_linearity.bias"]) for prefix in prefixes])
        biases[:, 2 * cell_dim : 3 * cell_dim] -= FORGET_BIAS  # ElmoLstmLayer adds it back at run time
        state[f"bilstm.layers.{layer}.bias"] = biases
        state[f"bilstm.layers.{layer}.projection_weight"] = torch.stack(
            [source[f"{prefix}.state_projection.weight"].t() for prefix in prefixes]
        )
    state["primed_cell_state"] = torch.zeros(config.num_lstm_layers, 2, cell_dim)
    state["primed_hidden_state"] = torch.zeros(config.num_lstm_layers, 2, config.projection_dim)
    return {name: tensor.contiguous() for name, tensor in state.items()}


def load_elmoformanylangs(
    model_dir: str | os.PathLike, word_splitter: str = "whitespace", **config_overrides: Any
) -> tuple[ElmoModel, ElmoTokenizerFast]:
    """The `ElmoModel` (in eval mode) and dictionary-mode `ElmoTokenizerFast` of an ELMoForManyLangs model folder.

    Args:
        model_dir: the folder with `config.json`, the architecture JSON, `char.dic`, `word.dic` (for
            `word_dim > 0`), `token_embedder.pkl` and `encoder.pkl`.
        word_splitter: how the tokenizer splits raw text (`"whitespace"` by default: ELMoForManyLangs takes
            words already split, and was trained on whitespace-separated text).
        config_overrides: `ElmoConfig` fields to set, e.g. `state_mode="stateful"` for the original's
            statefulness.
    """
    model_dir = Path(model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise ConversionError(f"the ELMoForManyLangs model folder {model_dir} is a file, not a folder")
    if not model_dir.is_dir():
        raise ConversionError(f"the ELMoForManyLangs model folder {model_dir} does not exist")
    architecture, architecture_path = read_architecture(model_dir)
    embedder = _section(architecture, "token_embedder", architecture_path)
    encoder = _section(architecture, "encoder", architecture_path)
    for section, name, supported in ((embedder, "token_embedder", "cnn"), (encoder, "encoder", "elmo")):
        kind = str(section.get("name", "")).lower()
        if kind != supported:
            raise ConversionError(
                f"{architecture_path}: {name}.name is {section.get('name')!r:.60}; only {supported!r} is supported"
            )
    settings = {
        key: _value(embedder, key, "token_embedder", architecture_path)
        for key in ("char_dim", "word_dim", "filters", "n_highway", "activation", "max_characters_per_token")
    }
    settings.update(
        (key, _value(encoder, key, "encoder", architecture_path))
        for key in ("projection_dim", "dim", "n_layers", "cell_clip", "proj_clip")
    )
    if type(settings["char_dim"]) is int and settings["char_dim"] <= 0:
        raise ConversionError(
            f"{architecture_path}: token_embedder.char_dim is {settings['char_dim']}; only models with a "
            "character CNN (char_dim > 0) are supported"
        )
    word_dim = settings["word_dim"]
    if type(word_dim) is not int or word_dim < 0:
        raise ConversionError(
            f"{architecture_path}: token_embedder.word_dim must be an integer >= 0, got {word_dim!r:.60}"
        )

    # The declared sizes, checked (types and limits) before the dictionaries and pickles are read, with placeholder
    # vocabularies; the full config follows once their sizes are known.
    _architecture_config(
        settings,
        architecture_path,
        word_embedding_dim=word_dim,
        word_vocab_size=1 if word_dim else 0,
        begin_of_sentence_word_id=0 if word_dim else None,
        end_of_sentence_word_id=0 if word_dim else None,
    )

    char_path = model_dir / CHAR_DICTIONARY_NAME
    char_vocab = read_dictionary(char_path)
    word_path = model_dir / WORD_DICTIONARY_NAME
    word_vocab = read_dictionary(word_path) if word_dim else None
    for path, vocab, required in (
        (char_path, char_vocab, DICTIONARY_SPECIAL_CHARS),
        (word_path, word_vocab or {}, DICTIONARY_SPECIAL_WORDS if word_vocab is not None else ()),
    ):
        missing = [entry for entry in required if entry not in vocab]
        if missing:
            raise ConversionError(f"{path} lacks the entries {missing}")
    try:
        tokenizer = ElmoTokenizerFast(
            word_splitter=word_splitter,
            max_characters_per_token=settings["max_characters_per_token"],
            character_scheme="dictionary",
            char_vocab=char_vocab,
            word_vocab=word_vocab,
        )
    except (TypeError, ValueError) as error:
        raise ConversionError(f"{architecture_path}: {error}") from error

    token_embedder_path, encoder_path = model_dir / TOKEN_EMBEDDER_NAME, model_dir / ENCODER_NAME
    token_embedder_state = load_state_dict(token_embedder_path)
    encoder_state = load_state_dict(encoder_path)
    num_characters = _rows(token_embedder_state, "char_emb_layer.embedding.weight", token_embedder_path)
    word_vocab_size = (
        _rows(token_embedder_state, "word_emb_layer.embedding.weight", token_embedder_path) if word_dim else 0
    )
    config = _architecture_config(
        settings,
        architecture_path,
        num_characters=num_characters + 1,
        character_scheme="dictionary",
        word_embedding_dim=word_dim,
        word_vocab_size=word_vocab_size,
        **tokenizer.special_ids,
    )
    try:
        for key, value in config_overrides.items():
            setattr(config, key, value)
        config.validate_elmo()
    except (TypeError, ValueError) as error:
        raise ConversionError(f"{architecture_path}: {error}") from error
    _check_shapes(token_embedder_state, _token_embedder_shapes(config), token_embedder_path)
    _check_shapes(encoder_state, _encoder_shapes(config), encoder_path)
    _check_ids(char_vocab, num_characters, char_path, f"{TOKEN_EMBEDDER_NAME}'s character embedding")
    if word_vocab is not None:
        _check_ids(word_vocab, word_vocab_size, word_path, f"{TOKEN_EMBEDDER_NAME}'s word embedding")

    with torch.device("meta"):
        model = ElmoModel(config)
    model.load_state_dict(_to_elmo_state_dict(token_embedder_state, encoder_state, config), assign=True, strict=True)
    return model.eval(), tokenizer


#: Where the config fields set from an ELMoForManyLangs architecture JSON come from, for error messages.
_ARCHITECTURE_KEYS = {
    "char_embedding_dim": "token_embedder.char_dim",
    "word_embedding_dim": "token_embedder.word_dim",
    "char_cnn_filters": "token_embedder.filters",
    "char_cnn_activation": "token_embedder.activation",
    "num_highway_layers": "token_embedder.n_highway",
    "max_characters_per_token": "token_embedder.max_characters_per_token",
    "projection_dim": "encoder.projection_dim",
    "lstm_cell_dim": "encoder.dim",
    "num_lstm_layers": "encoder.n_layers",
    "cell_clip": "encoder.cell_clip",
    "projection_clip": "encoder.proj_clip",
    "num_characters": f"the rows of {TOKEN_EMBEDDER_NAME}'s char_emb_layer.embedding.weight + 1",
    "word_vocab_size": f"the rows of {TOKEN_EMBEDDER_NAME}'s word_emb_layer.embedding.weight",
}


def _architecture_config(settings: dict[str, Any], architecture_path: Path, **fields: Any) -> ElmoConfig:
    """The `ElmoConfig` of an architecture's `settings` and further `fields` (validated, limits included); a
    problem is a `ConversionError` naming the architecture file and the key the invalid field comes from."""
    try:
        return ElmoConfig(
            char_embedding_dim=settings["char_dim"],
            char_cnn_filters=settings["filters"],
            char_cnn_activation=settings["activation"],
            num_highway_layers=settings["n_highway"],
            max_characters_per_token=settings["max_characters_per_token"],
            projection_dim=settings["projection_dim"],
            lstm_cell_dim=settings["dim"],
            num_lstm_layers=settings["n_layers"],
            cell_clip=settings["cell_clip"] or None,  # ELMoForManyLangs clips only with a truthy value
            projection_clip=settings["proj_clip"] or None,
            use_skip_connections=True,  # ELMoForManyLangs always adds each layer's input from the second layer on
            **fields,
        )
    except (TypeError, ValueError) as error:
        field = str(error).split(" ", 1)[0]
        where = f"{_ARCHITECTURE_KEYS[field]}: " if field in _ARCHITECTURE_KEYS else ""
        raise ConversionError(f"{architecture_path}: {where}{error}") from error


def _rows(state: dict[str, torch.Tensor], name: str, path: Path) -> int:
    """The number of rows of the embedding `name` (checked further by `_check_shapes`)."""
    if name not in state:
        raise ConversionError(f"{path} has no tensor {name!r}")
    if state[name].dim() != 2:
        raise ConversionError(f"{path}: tensor {name!r} has shape {tuple(state[name].shape)}, expected (rows, dim)")
    return state[name].shape[0]


def _token_embedder_shapes(config: ElmoConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of `token_embedder.pkl` with its shape (-1: the dictionary's size, any)."""
    embedding_dim, width = config.char_embedding_dim, config.num_filters
    shapes: dict[str, tuple[int, ...]] = {"char_emb_layer.embedding.weight": (-1, embedding_dim)}
    if config.word_embedding_dim:
        shapes["word_emb_layer.embedding.weight"] = (-1, config.word_embedding_dim)
    for index, (kernel, count) in enumerate(config.char_cnn_filters):
        shapes[f"convolutions.{index}.weight"] = (count, embedding_dim, kernel)
        shapes[f"convolutions.{index}.bias"] = (count,)
    for layer in range(config.num_highway_layers):
        shapes[f"highways._layers.{layer}.weight"] = (2 * width, width)
        shapes[f"highways._layers.{layer}.bias"] = (2 * width,)
    shapes["projection.weight"] = (config.projection_dim, config.word_embedding_dim + width)
    shapes["projection.bias"] = (config.projection_dim,)
    return shapes


def _encoder_shapes(config: ElmoConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of `encoder.pkl` with its shape."""
    gates, projection_dim, cell_dim = 4 * config.lstm_cell_dim, config.projection_dim, config.lstm_cell_dim
    shapes = {}
    for layer in range(config.num_lstm_layers):
        for direction in ("forward", "backward"):
            prefix = f"{direction}_layer_{layer}"
            shapes[f"{prefix}.input_linearity.weight"] = (gates, projection_dim)
            shapes[f"{prefix}.state_linearity.weight"] = (gates, projection_dim)
            shapes[f"{prefix}.state_linearity.bias"] = (gates,)
            shapes[f"{prefix}.state_projection.weight"] = (projection_dim, cell_dim)
    return shapes


def convert_elmoformanylangs(
    model_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    word_splitter: str = "whitespace",
) -> Path:
    """Write a Hugging Face model folder (config, safetensors, dictionary-mode tokenizer, remote code) for an
    ELMoForManyLangs model. The folder is built next to `output_dir` and renamed into place, so a failure leaves
    nothing."""
    output_dir = check_output_dir(output_dir, overwrite)
    model, tokenizer = load_elmoformanylangs(model_dir, word_splitter=word_splitter)
    with staged_directory(output_dir) as staging, transformers_progress_bars_off():
        save_with_remote_code(model, tokenizer, staging)
    return output_dir
