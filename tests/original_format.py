"""Write a small random ELMo in the original bilm-tf format (`options.json` + `weights.hdf5`), or in the
ELMoForManyLangs format (`write_random_elmoformanylangs`, for tests that need no oracle).

Test helper only (no tests here): conversion, oracle and export round-trip tests build their models with
`write_random_original`. The weight file has exactly the datasets of the bilm-tf `dump_weights` layout
(float32, TensorFlow convention `y = x @ W`):

| dataset | shape |
|---|---|
| `char_embed` | (n_characters - 1, E) |
| `CNN/W_cnn_{i}`, `CNN/b_cnn_{i}` | (1, w_i, E, n_i), (n_i,) |
| `CNN_high_{k}/W_carry`, `W_transform` / `b_carry`, `b_transform` | (F, F) / (F,) |
| `CNN_proj/W_proj`, `b_proj` | (F, P), (P,) |
| `RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/W_0`, `B`, `W_P_0` | (2P, 4D), (4D,), (D, P) |

Values (all normal, mean 0, float32). Token embedder: the character embedding has standard deviation 1,
every matrix `1 / sqrt(fan_in)` (fan_in = the rows summed over), every bias 0.1, so that the token vectors
stay of order 1. LSTM, with s = `weight_scale`: `W_0` has standard deviation `0.125 * s / sqrt(2P)`, `B`
`0.5 * s` and `W_P_0` `s / sqrt(D)`. At the default s = 4 the large random biases saturate many gates, so
that within a few words memory cells reach `cell_clip = 3`, and the projection is large enough for the
projected state to exceed `proj_clip = 3`: both clippings actually fire (the oracle tests assert this),
while the small input and recurrent weights keep float32 rounding from being amplified (two float32
implementations agree to ~2e-6). At s = 0.3 neither clipping fires.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np

DEFAULT_WEIGHT_SCALE = 4.0


def lstm_prefix(direction: int, layer: int) -> str:
    """The HDF5 group of one LSTM cell: direction 0 = forward, 1 = backward."""
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"


def original_options(
    *,
    char_embedding_dim: int = 4,
    filters: list[list[int]] | None = None,
    n_highway: int = 1,
    activation: str = "relu",
    projection_dim: int = 8,
    lstm_dim: int = 16,
    n_layers: int = 2,
    cell_clip: float | None = 3.0,
    proj_clip: float | None = 3.0,
    use_skip_connections: bool = True,
    n_characters: int = 262,
    max_characters_per_token: int = 50,
) -> dict:
    """The bilm-tf `options.json` dict for these sizes (`None` clips are written as JSON null)."""
    return {
        "lstm": {
            "dim": lstm_dim,
            "projection_dim": projection_dim,
            "n_layers": n_layers,
            "cell_clip": cell_clip,
            "proj_clip": proj_clip,
            "use_skip_connections": use_skip_connections,
        },
        "char_cnn": {
            "activation": activation,
            "embedding": {"dim": char_embedding_dim},
            "filters": [list(pair) for pair in (filters or [[1, 4], [2, 8], [3, 16]])],
            "n_highway": n_highway,
            "n_characters": n_characters,
            "max_characters_per_token": max_characters_per_token,
        },
    }


def random_original_weights(
    options: dict, *, weight_scale: float = DEFAULT_WEIGHT_SCALE, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random float32 arrays for every dataset of a bilm-tf weight file matching `options`."""
    rng = np.random.default_rng(seed)
    lstm, char_cnn = options["lstm"], options["char_cnn"]
    embedding_dim = char_cnn["embedding"]["dim"]
    filters = char_cnn["filters"]
    num_filters = sum(count for _, count in filters)
    projection_dim, cell_dim = lstm["projection_dim"], lstm["dim"]

    def normal(shape: tuple[int, ...], std: float) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def matrix(shape: tuple[int, ...], fan_in: int, scale: float = 1.0) -> np.ndarray:
        return normal(shape, scale / math.sqrt(fan_in))

    def bias(size: int) -> np.ndarray:
        return normal((size,), 0.1)

    arrays = {"char_embed": normal((char_cnn["n_characters"] - 1, embedding_dim), 1.0)}
    for index, (width, count) in enumerate(filters):
        arrays[f"CNN/W_cnn_{index}"] = matrix((1, width, embedding_dim, count), width * embedding_dim)
        arrays[f"CNN/b_cnn_{index}"] = bias(count)
    for layer in range(char_cnn["n_highway"]):
        for kind in ("carry", "transform"):
            arrays[f"CNN_high_{layer}/W_{kind}"] = matrix((num_filters, num_filters), num_filters)
            arrays[f"CNN_high_{layer}/b_{kind}"] = bias(num_filters)
    arrays["CNN_proj/W_proj"] = matrix((num_filters, projection_dim), num_filters)
    arrays["CNN_proj/b_proj"] = bias(projection_dim)
    for direction in range(2):
        for layer in range(lstm["n_layers"]):
            prefix = lstm_prefix(direction, layer)
            arrays[f"{prefix}/W_0"] = matrix(
                (2 * projection_dim, 4 * cell_dim), 2 * projection_dim, 0.125 * weight_scale
            )
            arrays[f"{prefix}/B"] = normal((4 * cell_dim,), 0.5 * weight_scale)
            arrays[f"{prefix}/W_P_0"] = matrix((cell_dim, projection_dim), cell_dim, weight_scale)
    return arrays


def write_original(directory: str | Path, options: dict, arrays: dict[str, np.ndarray]) -> tuple[Path, Path]:
    """Write `options.json` and `weights.hdf5` (one float32 dataset per array) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    options_path, weights_path = directory / "options.json", directory / "weights.hdf5"
    options_path.write_text(json.dumps(options, indent=2), encoding="utf-8")
    with h5py.File(weights_path, "w") as handle:
        for name, array in arrays.items():
            handle.create_dataset(name, data=np.asarray(array, dtype=np.float32))
    return options_path, weights_path


def write_random_original(
    directory: str | Path,
    *,
    char_embedding_dim: int = 4,
    filters: list[list[int]] | None = None,
    n_highway: int = 1,
    activation: str = "relu",
    projection_dim: int = 8,
    lstm_dim: int = 16,
    n_layers: int = 2,
    cell_clip: float | None = 3.0,
    proj_clip: float | None = 3.0,
    use_skip_connections: bool = True,
    n_characters: int = 262,
    max_characters_per_token: int = 50,
    weight_scale: float = DEFAULT_WEIGHT_SCALE,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write a random original-format ELMo into `directory`; returns (options path, weights path).

    `filters` defaults to `[[1, 4], [2, 8], [3, 16]]` (F = 28). The weights depend only on the sizes,
    `weight_scale` and `seed`, not on the clip values, activation or skip connections, so two calls that
    differ only in those write the same weights.
    """
    options = original_options(
        char_embedding_dim=char_embedding_dim,
        filters=filters,
        n_highway=n_highway,
        activation=activation,
        projection_dim=projection_dim,
        lstm_dim=lstm_dim,
        n_layers=n_layers,
        cell_clip=cell_clip,
        proj_clip=proj_clip,
        use_skip_connections=use_skip_connections,
        n_characters=n_characters,
        max_characters_per_token=max_characters_per_token,
    )
    return write_original(directory, options, random_original_weights(options, weight_scale=weight_scale, seed=seed))


def elmoformanylangs_architecture(
    *,
    char_dim: int = 5,
    word_dim: int = 0,
    filters: list[list[int]] | None = None,
    n_highway: int = 1,
    projection_dim: int = 8,
    dim: int = 12,
    n_layers: int = 2,
    max_characters_per_token: int = 10,
) -> dict:
    """An ELMoForManyLangs architecture JSON dict (the file `config.json`'s `config_path` names)."""
    return {
        "token_embedder": {
            "name": "cnn",
            "activation": "relu",
            "filters": [list(pair) for pair in (filters or [[1, 4], [2, 6]])],
            "n_highway": n_highway,
            "word_dim": word_dim,
            "char_dim": char_dim,
            "max_characters_per_token": max_characters_per_token,
        },
        "encoder": {"name": "elmo", "projection_dim": projection_dim, "dim": dim, "n_layers": n_layers,
                    "cell_clip": 3, "proj_clip": 3},
    }  # fmt: skip


def write_random_elmoformanylangs(directory: str | Path, architecture: dict | None = None, seed: int = 0) -> Path:
    """Write a random ELMoForManyLangs model folder in its own format (`config.json`, `arch.json`, `char.dic`,
    `word.dic` with a word embedding, `token_embedder.pkl`, `encoder.pkl`) without the `elmoformanylangs` package:
    the state dicts have exactly the tensors and shapes its `Model` saves. Returns the folder."""
    import torch

    architecture = architecture or elmoformanylangs_architecture()
    embedder, encoder = architecture["token_embedder"], architecture["encoder"]
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.3

    directory = Path(directory)
    directory.mkdir(parents=True)
    characters = [*"abcde", "<bow>", "<eow>", "<oov>", "<pad>", "<bos>", "<eos>"]
    (directory / "char.dic").write_text("".join(f"{char}\t{index}\n" for index, char in enumerate(characters)))
    char_dim, word_dim = embedder["char_dim"], embedder["word_dim"]
    width = sum(count for _, count in embedder["filters"])
    token_embedder = {"char_emb_layer.embedding.weight": normal(len(characters), char_dim)}
    if word_dim:
        words = ["<oov>", "<bos>", "<eos>", "<pad>", "the", "cat"]
        (directory / "word.dic").write_text("".join(f"{word}\t{index}\n" for index, word in enumerate(words)))
        token_embedder["word_emb_layer.embedding.weight"] = normal(len(words), word_dim)
    for index, (kernel, count) in enumerate(embedder["filters"]):
        token_embedder[f"convolutions.{index}.weight"] = normal(count, char_dim, kernel)
        token_embedder[f"convolutions.{index}.bias"] = normal(count)
    for layer in range(embedder["n_highway"]):
        token_embedder[f"highways._layers.{layer}.weight"] = normal(2 * width, width)
        token_embedder[f"highways._layers.{layer}.bias"] = normal(2 * width)
    projection_dim, dim = encoder["projection_dim"], encoder["dim"]
    token_embedder["projection.weight"] = normal(projection_dim, word_dim + width)
    token_embedder["projection.bias"] = normal(projection_dim)
    lstm = {}
    for layer in range(encoder["n_layers"]):
        for direction in ("forward", "backward"):
            prefix = f"{direction}_layer_{layer}"
            lstm[f"{prefix}.input_linearity.weight"] = normal(4 * dim, projection_dim)
            lstm[f"{prefix}.state_linearity.weight"] = normal(4 * dim, projection_dim)
            lstm[f"{prefix}.state_linearity.bias"] = normal(4 * dim)
            lstm[f"{prefix}.state_projection.weight"] = normal(projection_dim, dim)
    torch.save(token_embedder, directory / "token_embedder.pkl")
    torch.save(lstm, directory / "encoder.pkl")
    (directory / "arch.json").write_text(json.dumps(architecture))
    (directory / "config.json").write_text(json.dumps({"config_path": "arch.json"}))
    return directory
