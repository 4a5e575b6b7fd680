"""Convert a bilm-tf ELMo (`options.json` + `weights.hdf5`) into a Hugging Face model folder.

The weight file layout (TensorFlow convention y = x @ W) and its mapping onto `ElmoModel`:

| HDF5 dataset | shape | parameter |
|---|---|---|
| `char_embed` | (n_characters - 1, E) | `token_embedder.char_cnn.embedding.weight` after a zero row |
| `CNN/W_cnn_{i}`, `CNN/b_cnn_{i}` | (1, w, E, n), (n,) | `...convolutions.{i}.weight` (n, E, w), `.bias` |
| `CNN_high_{k}/W_carry`, `b_carry` | (F, F), (F,) | `...highway.{k}.carry_gate` (transposed) |
| `CNN_high_{k}/W_transform`, `b_transform` | (F, F), (F,) | `...highway.{k}.transform` (transposed) |
| `CNN_proj/W_proj`, `b_proj` | (F, P), (P,) | `token_embedder.projection` (transposed) |
| `RNN_{d}/.../Cell{l}/LSTMCell/W_0` rows [:P] | (P, 4D) | `bilstm.layers.{l}.input_weight[d]` |
| `RNN_{d}/.../Cell{l}/LSTMCell/W_0` rows [P:] | (P, 4D) | `bilstm.layers.{l}.recurrent_weight[d]` |
| `RNN_{d}/.../LSTMCell/B` | (4D,) | `bilstm.layers.{l}.bias[d]` |
| `RNN_{d}/.../LSTMCell/W_P_0` | (D, P) | `bilstm.layers.{l}.projection_weight[d]` |

The released Original model also has its word softmax, shared by both directions, in a second HDF5 file
(`elmo_2x4096_512_2048cnn_2xhighway_softmax_weights.hdf5`) with its vocabulary (`vocab-2016-09-10.txt`, one word per
line, line i = row i). `convert_original(..., softmax_weights=..., vocab=...)` adds them as an
`ElmoForBidirectionalLM` (loaded with `AutoModelForPreTraining`; `AutoModel` still gives the biLM):

| HDF5 dataset | shape | parameter |
|---|---|---|
| `softmax/W` | (V, P) | `softmax.weight` (as stored: logits = h W^T + b) |
| `softmax/b` | (V,) | `softmax.bias` |

Both files are untrusted input (`open_checked_hdf5`): a file may only supply its own bytes (no external or soft
links, no external raw storage, no virtual datasets, no filter plugins), the float datasets of the shapes the
options imply (and, for the weights file, no others), and finite values, checked block by block as they are
converted (the weights are read once). Every declared size is within `ElmoConfig`'s limits before anything is
allocated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch

from modeling_elmo.configuration_elmo import ElmoConfig
from modeling_elmo.conversion.folder import (
    WEIGHTS_NAME,
    ConversionError,
    check_output_dir,
    folder_state_dict,
    require_file,
    save_with_remote_code,
    staged_directory,
    transformers_progress_bars_off,
)
from modeling_elmo.conversion.safetensors_stream import StreamedTensor, write_streamed
from modeling_elmo.modeling_elmo import ElmoForBidirectionalLM, ElmoModel
from modeling_elmo.text_files import LanguageModelError, Vocabulary, read_vocabulary
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast

if TYPE_CHECKING:
    from modeling_elmo.conversion.model_card import Provenance

SOFTMAX_WEIGHT_DATASET = "softmax/W"
SOFTMAX_BIAS_DATASET = "softmax/b"


def read_original_options(path: str | os.PathLike) -> ElmoConfig:
    """Read a bilm-tf `options.json` into an `ElmoConfig`; every problem (unreadable, not UTF-8, not JSON, nested
    too deeply, a missing or invalid key, a size above the limits) is a `ConversionError` naming the file and key."""
    path = Path(path)
    require_file(path, "options file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConversionError(f"cannot read the options file {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ConversionError(f"{path} is not UTF-8 text (byte {error.start}: {error.reason})") from error
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConversionError(
            f"{path} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from error
    except RecursionError as error:
        raise ConversionError(f"{path} is nested too deeply to be an options file") from error
    try:
        return ElmoConfig.from_original_options(options)
    except ValueError as error:
        raise ConversionError(f"{path}: {error}") from error


def _lstm_prefix(direction: int, layer: int) -> str:
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"


def expected_datasets(config: ElmoConfig) -> dict[str, tuple[int, ...]]:
    """Every dataset a bilm-tf weight file must hold for `config`, with its shape (the config is validated first,
    so that absurd sizes are refused before anything is allocated)."""
    _validated(config)
    embedding_dim, filters_width = config.char_embedding_dim, config.num_filters
    projection_dim, cell_dim = config.projection_dim, config.lstm_cell_dim
    shapes: dict[str, tuple[int, ...]] = {"char_embed": (config.num_characters - 1, embedding_dim)}
    for index, (width, count) in enumerate(config.char_cnn_filters):
        shapes[f"CNN/W_cnn_{index}"] = (1, width, embedding_dim, count)
        shapes[f"CNN/b_cnn_{index}"] = (count,)
    for layer in range(config.num_highway_layers):
        for kind in ("carry", "transform"):
            shapes[f"CNN_high_{layer}/W_{kind}"] = (filters_width, filters_width)
            shapes[f"CNN_high_{layer}/b_{kind}"] = (filters_width,)
    shapes["CNN_proj/W_proj"] = (filters_width, projection_dim)
    shapes["CNN_proj/b_proj"] = (projection_dim,)
    for direction in range(2):
        for layer in range(config.num_lstm_layers):
            prefix = _lstm_prefix(direction, layer)
            shapes[f"{prefix}/W_0"] = (2 * projection_dim, 4 * cell_dim)
            shapes[f"{prefix}/B"] = (4 * cell_dim,)
            shapes[f"{prefix}/W_P_0"] = (cell_dim, projection_dim)
    return shapes


def _validated(config: ElmoConfig) -> ElmoConfig:
    """`config` after `validate_elmo` (types, values and size limits), with a problem as a `ConversionError`."""
    try:
        config.validate_elmo()
    except ValueError as error:
        raise ConversionError(f"invalid model configuration: {error}") from error
    return config


def open_original_weights(path: str | os.PathLike, config: ElmoConfig) -> h5py.File:
    """Open a bilm-tf weight file and check it against `config` (`open_checked_hdf5`): every dataset it needs, with
    its shape, and no other dataset (options that describe fewer layers, highway layers or filters than the file
    holds are refused). No data is read yet; the caller closes the returned file."""
    return open_checked_hdf5(path, expected_datasets(config), "weights file", "the options", other_datasets=False)


#: The HDF5 filters (compression and checksums) a weight file may use: HDF5's own and h5py's LZF. Others would make
#: HDF5 load a filter plugin (a shared library) chosen by the file.
BUILTIN_HDF5_FILTERS = {
    h5py.h5z.FILTER_DEFLATE,
    h5py.h5z.FILTER_SHUFFLE,
    h5py.h5z.FILTER_FLETCHER32,
    h5py.h5z.FILTER_SZIP,
    h5py.h5z.FILTER_NBIT,
    h5py.h5z.FILTER_SCALEOFFSET,
    h5py.h5z.FILTER_LZF,
}


def open_checked_hdf5(
    path: str | os.PathLike, shapes: dict[str, tuple[int, ...]], kind: str, source: str, other_datasets: bool
) -> h5py.File:
    """Open an HDF5 file under the reading policy for untrusted files, and check each dataset of `shapes` against
    it. The caller closes the returned file. Refused, with a `ConversionError` naming the file, the dataset and
    `source` (where the shapes come from):

    - a file that would supply bytes other than its own: any link other than a hard link anywhere in it (external
      links into other files, soft links), a dataset of `shapes` with external raw storage (its bytes in another
      file) or that is virtual (mapped onto datasets of other files), or one that needs a filter plugin;
    - a dataset of `shapes` that is missing, of another shape, or not floats;
    - unless `other_datasets`, any dataset that `shapes` does not name.

    Only metadata is read here; the values are checked (finite) as they are read, by `_read_dataset`.
    """
    path = Path(path)
    require_file(path, kind)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ConversionError(f"{path} is not a readable HDF5 file ({error})") from error
    try:
        datasets = _hard_linked_datasets(handle, path)
        for name, shape in shapes.items():
            if name not in datasets:
                raise ConversionError(f"{path} has no dataset {name!r} (expected shape {shape}, from {source})")
            dataset = datasets[name]
            _check_own_storage(dataset, name, path)
            if dataset.shape != shape:
                raise ConversionError(
                    f"{path}: dataset {name!r} has shape {dataset.shape}, expected {shape} (from {source})"
                )
            if dataset.dtype.kind != "f":
                raise ConversionError(f"{path}: dataset {name!r} has dtype {dataset.dtype}, expected floats")
        unexpected = sorted(set(datasets) - set(shapes))
        if unexpected and not other_datasets:
            more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
            raise ConversionError(
                f"{path} holds datasets that {source} do not describe: {unexpected[:5]}{more} (do the options give "
                "fewer layers, highway layers or filters than the file holds?)"
            )
    except BaseException:
        handle.close()
        raise
    return handle


def _hard_linked_datasets(handle: h5py.File, path: Path) -> dict[str, h5py.Dataset]:
    """Every dataset of the file by name, after checking that every link in it is a hard link: HDF5's own walk
    (`visititems_links`) reports each link without following soft or external ones."""
    links: dict[str, h5py.HardLink | h5py.SoftLink | h5py.ExternalLink] = {}

    def collect(name: str, link: h5py.HardLink | h5py.SoftLink | h5py.ExternalLink) -> None:
        links[name] = link

    try:
        handle.visititems_links(collect)
    except (OSError, KeyError, RuntimeError, TypeError) as error:
        raise ConversionError(f"{path}: the file's links cannot be read ({error})") from error
    for name, link in links.items():
        if isinstance(link, h5py.ExternalLink):
            raise ConversionError(
                f"{path}: {name!r} is an external link (to {link.path!r} in the file {link.filename!r}); a weight "
                "file may only supply its own bytes"
            )
        if not isinstance(link, h5py.HardLink):
            target = f" (to {link.path!r})" if isinstance(link, h5py.SoftLink) else ""
            raise ConversionError(
                f"{path}: {name!r} is a {type(link).__name__}{target}, not a dataset or group of the file itself; "
                "links are refused"
            )
    try:
        return {name: handle[name] for name in links if handle.get(name, getclass=True) is h5py.Dataset}
    except (OSError, KeyError, RuntimeError) as error:
        raise ConversionError(f"{path}: the file's datasets cannot be read ({error})") from error


def _check_own_storage(dataset: h5py.Dataset, name: str, path: Path) -> None:
    """Refuse a dataset whose bytes would come from elsewhere than the file (virtual, external raw storage) or
    through a filter plugin."""
    try:
        properties = dataset.id.get_create_plist()
        virtual = properties.get_layout() == h5py.h5d.VIRTUAL
        external = [properties.get_external(index)[0] for index in range(properties.get_external_count())]
        filters = [properties.get_filter(index)[0] for index in range(properties.get_nfilters())]
    except (OSError, RuntimeError, ValueError) as error:
        raise ConversionError(f"{path}: dataset {name!r} cannot be read ({error})") from error
    if virtual:
        raise ConversionError(
            f"{path}: dataset {name!r} is a virtual dataset (its bytes would come from other files); a weight file "
            "may only supply its own bytes"
        )
    if external:
        files = [os.fsdecode(file) for file in external]
        raise ConversionError(
            f"{path}: dataset {name!r} keeps its bytes in external files {files}; a weight file may only supply its "
            "own bytes"
        )
    plugins = [code for code in filters if code not in BUILTIN_HDF5_FILTERS]
    if plugins:
        raise ConversionError(
            f"{path}: dataset {name!r} needs the HDF5 filter plugins {plugins}; only HDF5's own filters are read"
        )


def _read_dataset(
    source: Mapping[str, Any], name: str, path: str | os.PathLike, rows: slice | None = None
) -> np.ndarray:
    """`source[name][rows]` (all of it by default) as float32, with read errors (e.g. a damaged file) and values
    that are not finite (NaN, infinities, or float64 beyond float32's range) reported as a `ConversionError`."""
    try:
        with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused below
            array = np.asarray(source[name][slice(None) if rows is None else rows], dtype=np.float32)
    except (OSError, KeyError, RuntimeError) as error:
        raise ConversionError(f"{path}: dataset {name!r} cannot be read ({error})") from error
    # A finite sum proves every value finite (NaN and infinities propagate); only an overflowing sum needs the
    # element-wise check. The check runs on the block being converted, so the weights are read once.
    with np.errstate(over="ignore", invalid="ignore"):
        finite_sum = np.isfinite(array.sum())
    if not finite_sum and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        where = "" if rows is None else f" rows {rows.start or 0}:{'' if rows.stop is None else rows.stop}"
        raise ConversionError(f"{path}: dataset {name!r}{where} holds {bad} values that are NaN or infinite as float32")
    return array


@dataclass(frozen=True)
class Block:
    """A piece of a parameter: rows `rows` (default all) of dataset `dataset`, transposed by `axes` (or zeros of
    `zeros_shape` when `dataset` is None)."""

    dataset: str | None
    rows: slice | None = None
    axes: tuple[int, ...] | None = None
    zeros_shape: tuple[int, ...] = ()

    def read(self, source: Mapping[str, Any], path: str | os.PathLike) -> np.ndarray:
        """This block's float32 array, read from `source` (the open weight file or a dict of its arrays)."""
        if self.dataset is None:
            return np.zeros(self.zeros_shape, dtype=np.float32)
        array = _read_dataset(source, self.dataset, path, self.rows)
        return array if self.axes is None else np.ascontiguousarray(array.transpose(self.axes))


def parameter_layout(config: ElmoConfig) -> dict[str, tuple[tuple[int, ...], list[Block]]]:
    """For every `ElmoModel` state-dict entry: its shape, and the blocks of bilm-tf datasets whose C-order bytes,
    concatenated, are its bytes (a parameter stacked over the two directions is one block per direction)."""
    embedding_dim, num_filters = config.char_embedding_dim, config.num_filters
    projection_dim, cell_dim, num_layers = config.projection_dim, config.lstm_cell_dim, config.num_lstm_layers
    layout: dict[str, tuple[tuple[int, ...], list[Block]]] = {
        "token_embedder.char_cnn.embedding.weight": (
            (config.num_characters, embedding_dim),
            [Block(None, zeros_shape=(1, embedding_dim)), Block("char_embed")],
        ),
    }
    for index, (width, count) in enumerate(config.char_cnn_filters):
        prefix = f"token_embedder.char_cnn.convolutions.{index}"
        # HWIO (1, w, E, n) -> Conv1d (n, E, w)
        layout[f"{prefix}.weight"] = ((count, embedding_dim, width), [Block(f"CNN/W_cnn_{index}", axes=(3, 2, 1, 0))])
        layout[f"{prefix}.bias"] = ((count,), [Block(f"CNN/b_cnn_{index}")])
    for layer in range(config.num_highway_layers):
        for kind, module in (("carry", "carry_gate"), ("transform", "transform")):
            prefix = f"token_embedder.highway.{layer}.{module}"
            weight = Block(f"CNN_high_{layer}/W_{kind}", axes=(1, 0))
            layout[f"{prefix}.weight"] = ((num_filters, num_filters), [weight])
            layout[f"{prefix}.bias"] = ((num_filters,), [Block(f"CNN_high_{layer}/b_{kind}")])
    projection = Block("CNN_proj/W_proj", axes=(1, 0))
    layout["token_embedder.projection.weight"] = ((projection_dim, num_filters), [projection])
    layout["token_embedder.projection.bias"] = ((projection_dim,), [Block("CNN_proj/b_proj")])
    for layer in range(num_layers):
        prefixes = [_lstm_prefix(direction, layer) for direction in range(2)]
        gates = 4 * cell_dim
        layout[f"bilstm.layers.{layer}.input_weight"] = (
            (2, projection_dim, gates),
            [Block(f"{p}/W_0", rows=slice(None, projection_dim)) for p in prefixes],
        )
        layout[f"bilstm.layers.{layer}.recurrent_weight"] = (
            (2, projection_dim, gates),
            [Block(f"{p}/W_0", rows=slice(projection_dim, None)) for p in prefixes],
        )
        layout[f"bilstm.layers.{layer}.bias"] = ((2, gates), [Block(f"{p}/B") for p in prefixes])
        layout[f"bilstm.layers.{layer}.projection_weight"] = (
            (2, cell_dim, projection_dim),
            [Block(f"{p}/W_P_0") for p in prefixes],
        )
    for name, size in (("primed_cell_state", cell_dim), ("primed_hidden_state", projection_dim)):
        shape = (num_layers, 2, size)
        layout[name] = (shape, [Block(None, zeros_shape=shape)])
    return layout


def original_to_state_dict(
    arrays: Mapping[str, Any], config: ElmoConfig, path: str | os.PathLike = "weights"
) -> dict[str, torch.Tensor]:
    """Map checked bilm-tf arrays (a dict of arrays, or the open HDF5 file) onto `ElmoModel` parameter names and
    layouts; `path` names the source in error messages."""
    state = {}
    for name, (shape, blocks) in parameter_layout(config).items():
        pieces = [block.read(arrays, path) for block in blocks]
        array = pieces[0] if len(pieces) == 1 else np.concatenate([piece.reshape(-1) for piece in pieces])
        state[name] = torch.from_numpy(np.ascontiguousarray(array).reshape(shape))
    return state


def _streamed_state_dict(handle: h5py.File, config: ElmoConfig, path: Path) -> list[StreamedTensor]:
    """The model's state dict as tensors streamed block by block from the open weight file."""
    return [
        StreamedTensor(name, shape, [partial(block.read, handle, path) for block in blocks])
        for name, (shape, blocks) in parameter_layout(config).items()
    ]


def load_original(options_path: str | os.PathLike, weights_path: str | os.PathLike, **config_overrides) -> ElmoModel:
    """An `ElmoModel` with the weights of a bilm-tf options/weights pair (e.g. `state_mode="stateful"`)."""
    config = read_original_options(options_path)
    for key, value in config_overrides.items():
        setattr(config, key, value)
    _validated(config)
    with open_original_weights(weights_path, config) as handle:
        state = original_to_state_dict(handle, config, weights_path)
    with torch.device("meta"):
        model = ElmoModel(config)
    model.load_state_dict(state, assign=True, strict=True)
    return model.eval()


def convert_original(
    options_path: str | os.PathLike,
    weights_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    word_splitter: str = "moses",
    provenance: Provenance | None = None,
    softmax_weights: str | os.PathLike | None = None,
    vocab: str | os.PathLike | None = None,
) -> Path:
    """Write a Hugging Face model folder (config, safetensors, tokenizer, remote code, model card) for an original
    ELMo. The folder is built next to `output_dir` and renamed into place, so a failure leaves nothing.

    The weights go from the HDF5 file to `model.safetensors` one block at a time (never the whole model in
    memory); `provenance` (sources, checksums, command) goes into the model card, by default the two local files.
    With `softmax_weights` and `vocab` (the Original's softmax file and vocabulary) the folder holds an
    `ElmoForBidirectionalLM`: the same biLM tensors plus `softmax.weight` / `softmax.bias`, and `vocab.txt`.
    """
    from modeling_elmo.conversion.model_card import Provenance, SourceFile, write_model_card

    output_dir = check_output_dir(output_dir, overwrite)
    if (softmax_weights is None) != (vocab is None):
        raise ConversionError("the softmax weights and the vocabulary go together (--softmax-weights with --vocab)")
    config = read_original_options(options_path)
    vocabulary = None if vocab is None else _read_softmax_vocabulary(vocab)
    if vocabulary is not None:
        for field, value in vocabulary.config_fields().items():
            setattr(config, field, value)
        try:
            config.validate_elmo()
        except ValueError as error:
            raise ConversionError(f"{vocab}: {error}") from error
    weights_path = Path(weights_path)
    with ExitStack() as files:
        handle = files.enter_context(open_original_weights(weights_path, config))
        with torch.device("meta"):
            model = ElmoModel(config) if vocabulary is None else ElmoForBidirectionalLM(config)
        tensors = _streamed_state_dict(handle, config, weights_path)
        if vocabulary is not None:
            model.vocabulary = vocabulary.words
            softmax_path = Path(softmax_weights)
            softmax_handle = files.enter_context(open_softmax_weights(softmax_path, config))
            tensors += _streamed_softmax(softmax_handle, config, softmax_path)
        expected = {name: tuple(tensor.shape) for name, tensor in folder_state_dict(model).items()}
        if {tensor.name: tensor.shape for tensor in tensors} != expected:
            raise RuntimeError("the converter's parameter layout no longer matches the model's state dict")
        tokenizer = ElmoTokenizerFast(
            word_splitter=word_splitter, max_characters_per_token=config.max_characters_per_token
        )
        if provenance is None:
            provenance = Provenance.from_local_files(options_path, weights_path)
        if vocabulary is not None:
            provenance.sources += [
                SourceFile.from_path("softmax weights", softmax_weights),
                SourceFile.from_path("vocabulary", vocab),
            ]
        with staged_directory(output_dir) as staging:
            with transformers_progress_bars_off():
                save_with_remote_code(model, tokenizer, staging, state_dict={})
            write_streamed(staging / WEIGHTS_NAME, tensors, metadata={"format": "pt"})
            write_model_card(staging, provenance, repo_id=provenance.repo_id or output_dir.name)
    return output_dir


def _read_softmax_vocabulary(path: str | os.PathLike) -> Vocabulary:
    """The softmax's vocabulary file, with its problems reported as a `ConversionError`."""
    require_file(Path(path), "vocabulary file")
    try:
        return read_vocabulary(path)
    except LanguageModelError as error:
        raise ConversionError(str(error)) from error


def open_softmax_weights(path: str | os.PathLike, config: ElmoConfig) -> h5py.File:
    """Open the original softmax file and check `softmax/W` (V, P) and `softmax/b` (V,) against the config (V from
    the vocabulary, P the projection size) under the same reading policy as the weights file
    (`open_checked_hdf5`), except that other datasets are tolerated: they are never read, and the published file's
    other content is not described anywhere. The caller closes the returned file."""
    shapes = {
        SOFTMAX_WEIGHT_DATASET: (config.lm_vocab_size, config.projection_dim),
        SOFTMAX_BIAS_DATASET: (config.lm_vocab_size,),
    }
    source = f"the vocabulary of {config.lm_vocab_size} words and projection size {config.projection_dim}"
    return open_checked_hdf5(path, shapes, "softmax weights file", source, other_datasets=True)


def _streamed_softmax(handle: h5py.File, config: ElmoConfig, path: Path) -> list[StreamedTensor]:
    """The softmax's weight and bias, streamed in blocks of rows (about 16 MB each)."""
    vocab_size = config.lm_vocab_size
    rows = max(1, (1 << 22) // config.projection_dim)
    weight_blocks = [
        partial(_read_dataset, handle, SOFTMAX_WEIGHT_DATASET, path, slice(start, start + rows))
        for start in range(0, vocab_size, rows)
    ]
    return [
        StreamedTensor("softmax.weight", (vocab_size, config.projection_dim), weight_blocks),
        StreamedTensor("softmax.bias", (vocab_size,), [partial(_read_dataset, handle, SOFTMAX_BIAS_DATASET, path)]),
    ]
