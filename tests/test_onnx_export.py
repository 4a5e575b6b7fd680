"""ONNX export of the biLM (`elmo export-onnx`, `conversion.onnx_export.export_onnx`) on tiny random models: the
graph has dynamic batch and words dimensions and its recurrence is an ONNX `Loop` (not unrolled), onnxruntime matches
PyTorch within 1e-5 on shapes the export never saw (one word, a 200-word sentence), padding is zero; a model with
skip connections through the command, an ELMoForManyLangs-shaped model (word embedding) with a primed state through
the function; stateful models are refused, by the function and by the command (one line, exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from test_model import small_config

from modeling_elmo import ElmoModel
from modeling_elmo.configuration_elmo import ElmoError
from modeling_elmo.conversion.elmoformanylangs import load_elmoformanylangs
from modeling_elmo.conversion.folder import ConversionError
from modeling_elmo.conversion.onnx_export import OUTPUT_NAMES, check_onnx, export_onnx, random_inputs
from original_format import elmoformanylangs_architecture, write_random_elmoformanylangs

pytestmark = pytest.mark.usefixtures("one_thread")

#: (batch, words) shapes checked here: one word, a batch of mixed lengths, and a 200-word sentence.
SHAPES = ((1, 1), (4, 9), (2, 200))


def onnx_outputs(path: Path, inputs: dict[str, torch.Tensor]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(list(OUTPUT_NAMES), {name: tensor.numpy() for name, tensor in inputs.items()})


def assert_matches_pytorch(path: Path, model: ElmoModel) -> None:
    """onnxruntime's outputs at every shape of `SHAPES` equal the model's within 1e-5, zero at padding."""
    for seed, (batch_size, num_words) in enumerate(SHAPES):
        inputs = random_inputs(model.config, batch_size, num_words, seed=100 + seed)
        if batch_size > 1:
            inputs["attention_mask"][-1, num_words // 2 :] = 0  # a shorter sentence in the batch
            inputs["input_ids"][-1, num_words // 2 :] = 0
        last, layers = onnx_outputs(path, inputs)
        with torch.no_grad():
            expected = model(**inputs, output_hidden_states=True)
        assert layers.shape == (model.config.num_lstm_layers + 1, batch_size, num_words, model.config.hidden_size)
        np.testing.assert_allclose(layers, torch.stack(expected.hidden_states).numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(last, expected.last_hidden_state.numpy(), rtol=0, atol=1e-5)
        padding = ~inputs["attention_mask"].bool().numpy()
        assert not layers[:, padding].any()


def loops_and_dimensions(path: Path) -> tuple[int, dict[str, list]]:
    graph = onnx.load(str(path)).graph
    loops = sum(node.op_type == "Loop" for node in graph.node)
    dims = {
        value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in [*graph.input, *graph.output]
    }
    return loops, dims


@pytest.fixture(scope="module")
def skip_model_folder(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = ElmoModel(small_config(use_skip_connections=True, num_lstm_layers=2)).eval()
    folder = tmp_path_factory.mktemp("skip") / "model"
    model.save_pretrained(folder)
    return folder


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modeling_elmo.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_cli_exports_a_skip_connection_model_that_onnxruntime_runs_at_any_shape(skip_model_folder, tmp_path):
    output = tmp_path / "out" / "elmo.onnx"
    result = run_cli("export-onnx", str(skip_model_folder), str(output))
    assert result.returncode == 0, result.stderr
    assert f"wrote {output}" in result.stdout
    assert sorted(path.name for path in output.parent.iterdir()) == ["elmo.onnx"]  # no temporary file left
    loops, dims = loops_and_dimensions(output)
    assert loops == 2  # one Loop per LSTM layer, whatever the sentence length
    assert dims["input_ids"] == ["batch", "words", 50]
    assert dims["attention_mask"] == ["batch", "words"]
    assert dims["last_hidden_state"] == ["batch", "words", 16]
    assert dims["hidden_states"] == [3, "batch", "words", 16]
    model = ElmoModel.from_pretrained(skip_model_folder).eval()
    assert_matches_pytorch(output, model)

    torch.manual_seed(1)
    other = ElmoModel(model.config).eval()
    with pytest.raises(ConversionError, match=r"differs from PyTorch's by .* on a batch of 1 × 1 words"):
        check_onnx(output, other, ((1, 1),))


def test_word_embedding_model_with_a_primed_state_exports(tmp_path):
    source = write_random_elmoformanylangs(tmp_path / "manylangs", elmoformanylangs_architecture(word_dim=4))
    model, _ = load_elmoformanylangs(source)
    torch.manual_seed(0)
    model.primed_cell_state.normal_()
    model.primed_hidden_state.uniform_(-1, 1)
    model.config.state_mode = "primed"
    path = export_onnx(model, tmp_path / "manylangs.onnx")
    loops, dims = loops_and_dimensions(path)
    assert loops == model.config.num_lstm_layers
    assert dims["word_ids"] == ["batch", "words"]
    assert_matches_pytorch(path, model)


def test_stateful_models_are_refused(skip_model_folder, tmp_path):
    model = ElmoModel.from_pretrained(skip_model_folder)
    model.config.state_mode = "stateful"
    with pytest.raises(ConversionError, match="cannot export a stateful model") as raised:
        export_onnx(model, tmp_path / "stateful.onnx")
    assert isinstance(raised.value, ElmoError)
    folder = tmp_path / "stateful"
    model.save_pretrained(folder)
    result = run_cli("export-onnx", str(folder), str(tmp_path / "stateful.onnx"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("elmo export-onnx: error: cannot export a stateful model")
    assert list(tmp_path.glob("*.onnx")) == [] and not any(path.name.endswith(".tmp") for path in tmp_path.iterdir())
