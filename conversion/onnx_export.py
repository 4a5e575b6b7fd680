"""Export the ELMo biLM (`ElmoModel`) as an ONNX graph that onnxruntime serves, for any batch size and sentence length.

The graph comes from `torch.onnx.export(..., dynamo=True)` (through `torch.export`). While it records the model, the
model takes its export-friendly path (`kernels_elmo.tracing`): every position of the padded batch is embedded and the
padding zeroed, and each biLSTM layer runs as a padded, masked time loop (`kernels_elmo.masked_time_loop`, the model's
own LSTMP step) recorded as one `torch.while_loop`, which becomes an ONNX `Loop`: the steps are not unrolled to the
example's length. Clipping is the model's, and the outputs are zero at padding.

Inputs: `input_ids` (batch, words, max_characters_per_token) int64 character ids and `attention_mask` (batch, words)
int64 (1 for words, right padding 0), as `ElmoTokenizer(..., return_tensors="np")` gives them; with a word embedding
(ELMoForManyLangs models) also `word_ids` (batch, words) int64. Outputs: `last_hidden_state` (batch, words, 2P), the
top layer, and `hidden_states` (L + 1, batch, words, 2P), all layers (layer 0 the token vector duplicated).

The export is checked before it is kept: onnxruntime runs the graph on batches of other sizes and lengths than the
example it was recorded on, and every output must match the PyTorch model within `tolerance`. The file is written
under a temporary name and renamed only then, so a failed export leaves nothing.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn

from modeling_elmo.configuration_elmo import ElmoConfig
from modeling_elmo.conversion.folder import (
    ConversionError,
    current_umask,
    read_model_folder,
    transformers_progress_bars_off,
)
from modeling_elmo.modeling_elmo import ElmoModel

#: The (batch, words) shapes the export is recorded on: neither 0 nor 1, so that no size is fixed in the graph.
EXAMPLE_SHAPE = (2, 3)
#: The (batch, words) shapes onnxruntime is checked on: other than the example's, with one word and a long sentence.
VALIDATION_SHAPES = ((1, 1), (3, 7), (2, 40))
#: Largest absolute difference allowed between onnxruntime's outputs and PyTorch's.
TOLERANCE = 1e-5
INPUT_NAMES = ("input_ids", "attention_mask", "word_ids")
OUTPUT_NAMES = ("last_hidden_state", "hidden_states")


class OnnxExportWrapper(nn.Module):
    """The biLM as the ONNX graph sees it: named inputs in, (top layer, stacked L + 1 layers) out."""

    def __init__(self, model: ElmoModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) character ids, (B, T) mask (and (B, T) word ids) → (B, T, 2P), (L + 1, B, T, 2P)."""
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            word_ids=word_ids,
            output_hidden_states=True,
            return_dict=True,
        )
        return outputs.last_hidden_state, torch.stack(outputs.hidden_states)


def load_exportable_model(model_or_folder: ElmoModel | str | os.PathLike) -> ElmoModel:
    """The biLM to export: an `ElmoModel` as given, or loaded from a model folder (a biLM's, a language model's or a
    task head's; the biLM only). Raises `ConversionError` for anything else and for a `"stateful"` model."""
    if isinstance(model_or_folder, ElmoModel):
        model = model_or_folder
    elif isinstance(model_or_folder, (str, os.PathLike)):
        folder = read_model_folder(model_or_folder)
        with transformers_progress_bars_off():
            model = ElmoModel.from_pretrained(folder.path, dtype=torch.float32)
    else:
        raise ConversionError(f"export_onnx needs an ElmoModel or a model folder, got {type(model_or_folder).__name__}")
    if model.dtype != torch.float32:
        raise ConversionError(f"export_onnx exports float32 models, got {model.dtype}: call model.float() first")
    if model.config.state_mode == "stateful":
        raise ConversionError(
            "cannot export a stateful model to ONNX: its output depends on the state carried from earlier calls, "
            "which the graph does not keep; set config.state_mode to 'stateless', or to 'primed' after "
            "model.prime_states(...)"
        )
    return model


def random_inputs(config: ElmoConfig, batch_size: int, num_words: int, seed: int) -> dict[str, torch.Tensor]:
    """Random valid inputs of shape (batch_size, num_words): character ids of words of random lengths (the first row
    full, the others shorter), the attention mask, and word ids with a word embedding."""
    generator = torch.Generator().manual_seed(seed)
    num_chars = config.max_characters_per_token
    lengths = torch.randint(1, num_words + 1, (batch_size,), generator=generator)
    lengths[0] = num_words
    mask = torch.arange(num_words)[None, :] < lengths[:, None]
    char_ids = torch.randint(1, config.num_characters, (batch_size, num_words, num_chars), generator=generator)
    word_lengths = torch.randint(1, num_chars + 1, (batch_size, num_words, 1), generator=generator)
    char_ids = torch.where(torch.arange(num_chars) < word_lengths, char_ids, config.padding_char_id)
    inputs = {"input_ids": char_ids * mask[..., None], "attention_mask": mask.long()}
    if config.word_embedding_dim:
        word_ids = torch.randint(0, config.word_vocab_size, (batch_size, num_words), generator=generator)
        inputs["word_ids"] = word_ids * mask
    return inputs


def export_onnx(
    model_or_folder: ElmoModel | str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    validation_shapes: tuple[tuple[int, int], ...] = VALIDATION_SHAPES,
    tolerance: float = TOLERANCE,
) -> Path:
    """Write the biLM of `model_or_folder` (an `ElmoModel`, or a model folder) to `output_path` as an ONNX graph with
    dynamic batch size and sentence length (see the module docstring for its inputs and outputs), checked with
    onnxruntime against PyTorch on the (batch, words) `validation_shapes` within `tolerance`. Returns the path.

    Raises `ConversionError` for a `"stateful"` model, a folder that is not a model, an export that fails, or outputs
    that do not match; nothing is left at `output_path` then.
    """
    model = load_exportable_model(model_or_folder)
    output_path = Path(output_path)
    if output_path.is_dir():
        raise ConversionError(f"the ONNX output {output_path} is a folder")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent)
    os.close(handle)
    staging = Path(staging)
    training = model.training
    model.eval()
    try:
        program = record_onnx(model)
        program.save(str(staging))
        try:
            check_onnx(staging, model, validation_shapes, tolerance)
        except ConversionError as error:
            raise ConversionError(f"the export to {output_path} failed its check: {error}") from error
        staging.chmod(0o666 & ~current_umask())
        os.replace(staging, output_path)
    finally:
        staging.unlink(missing_ok=True)
        model.train(training)
    return output_path


def record_onnx(model: ElmoModel) -> torch.onnx.ONNXProgram:
    """The `torch.onnx` (dynamo) program of `model` with dynamic batch and words dimensions."""
    config = model.config
    example = random_inputs(config, *EXAMPLE_SHAPE, seed=0)
    example = {name: tensor.to(model.device) for name, tensor in example.items()}
    batch, words = torch.export.Dim("batch"), torch.export.Dim("words")
    dynamic_shapes = {name: {0: batch, 1: words} for name in example}
    input_names = [name for name in INPUT_NAMES if name in example]
    try:
        with torch.no_grad(), quiet_exporter():
            return torch.onnx.export(
                OnnxExportWrapper(model),
                (),
                kwargs=example,
                dynamo=True,
                input_names=input_names,
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )
    except Exception as error:  # torch.onnx raises many kinds; the message says what failed
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConversionError(f"torch.onnx could not export the model: {first_line}") from error


@contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence what torch.onnx and onnxscript print while exporting (progress lines, warnings, log records)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def check_onnx(
    path: Path, model: ElmoModel, shapes: tuple[tuple[int, int], ...], tolerance: float = TOLERANCE
) -> float:
    """Run the ONNX graph at `path` with onnxruntime on random inputs of each (batch, words) shape and compare every
    output with `model`'s; raise `ConversionError` naming the shape and the difference if one exceeds `tolerance`.
    Returns the largest difference."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper = OnnxExportWrapper(model)
    largest = 0.0
    for index, (batch_size, num_words) in enumerate(shapes):
        inputs = random_inputs(model.config, batch_size, num_words, seed=index + 1)
        with torch.no_grad():
            outputs = wrapper(**{name: tensor.to(model.device) for name, tensor in inputs.items()})
        expected = [tensor.float().cpu().numpy() for tensor in outputs]
        found = session.run(list(OUTPUT_NAMES), {name: tensor.numpy() for name, tensor in inputs.items()})
        for name, ours, theirs in zip(OUTPUT_NAMES, found, expected, strict=True):
            if ours.shape != theirs.shape:
                raise ConversionError(
                    f"onnxruntime gives {name} of shape {ours.shape} for a batch of {batch_size} × "
                    f"{num_words} words, PyTorch {theirs.shape}"
                )
            difference = float(np.abs(ours - theirs).max()) if ours.size else 0.0
            if not difference <= tolerance:
                raise ConversionError(
                    f"onnxruntime's {name} differs from PyTorch's by {difference:.3g} (more than "
                    f"{tolerance:g}) on a batch of {batch_size} × {num_words} words"
                )
            largest = max(largest, difference)
    return largest
