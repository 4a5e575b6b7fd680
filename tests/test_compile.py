"""`torch.compile` with the default inductor backend: the biLM and a task head compile (the recorded graph takes the
padded, masked time loop of `kernels_elmo`), give the eager fast path's outputs within 1e-5, and compile once for
batches of several sizes and lengths (dynamic batch and words dimensions, the steps a `torch.while_loop`)."""

from __future__ import annotations

import pytest
import torch
from test_model import small_config
from test_task_heads import head_config
from torch._dynamo.utils import counters

from modeling_elmo import ElmoForSequenceClassification, ElmoForTokenClassification, ElmoModel, ElmoTokenizer
from modeling_elmo.kernels_elmo import masked_time_loop, reversed_rows

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = [
    "the cat sat on the mat",
    "a b",
    "one two three four five six seven eight nine ten eleven",
    "x y z",
    "hello there , general",
]
#: Batches of different sizes and lengths (no size 1: torch.compile specialises sizes 0 and 1).
BATCHES = [TEXTS[:2], TEXTS[1:4], TEXTS[:5], TEXTS[3:5]]


def compiled_outputs(model: torch.nn.Module, outputs_of) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[int]]:
    """Run `model` eagerly and compiled (batch and words marked dynamic) on every batch of `BATCHES`; return the
    (eager, compiled) outputs and the number of graphs compiled so far after each batch."""
    tokenizer = ElmoTokenizer()
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model)
    results, graphs = [], []
    for texts in BATCHES:
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
        for name in ("input_ids", "attention_mask"):
            torch._dynamo.mark_dynamic(inputs[name], (0, 1))
        with torch.no_grad():
            results.append((outputs_of(model(**inputs)), outputs_of(compiled(**inputs))))
        graphs.append(counters["stats"]["unique_graphs"])
    return results, graphs


def test_compiled_bilm_matches_eager_and_compiles_once():
    torch.manual_seed(0)
    model = ElmoModel(small_config(output_hidden_states=True, cell_clip=0.1, projection_clip=0.05)).eval()
    results, graphs = compiled_outputs(model, lambda outputs: torch.stack(outputs.hidden_states))
    assert graphs[0] >= 1
    assert graphs == [graphs[0]] * len(BATCHES), f"recompiled for new batch shapes: graphs after each batch {graphs}"
    for eager, compiled in results:
        assert compiled.shape == eager.shape
        torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)
    assert all(compiled[1].abs().amax() == 0.05 for _, compiled in results)  # the first layer's clip binds


def test_compiled_token_classifier_matches_eager_and_compiles_once():
    torch.manual_seed(0)
    model = ElmoForTokenClassification(head_config(task_encoder="none", cell_clip=0.1, projection_clip=0.05)).eval()
    results, graphs = compiled_outputs(model, lambda outputs: outputs.logits)
    assert graphs == [graphs[0]] * len(BATCHES), f"recompiled for new batch shapes: graphs after each batch {graphs}"
    for eager, compiled in results:
        torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "head_class, task_encoder",
    [
        (ElmoForSequenceClassification, "none"),
        (ElmoForSequenceClassification, "lstm"),
        (ElmoForTokenClassification, "lstm"),
    ],
)
def test_every_task_head_compiles_to_its_eager_outputs(head_class, task_encoder):
    """The other heads: the sequence classifier, and the default `"lstm"` task encoder (an `nn.LSTM`, which dynamo
    runs eagerly between compiled graphs); the biLM inside still compiles once for every batch shape."""
    torch.manual_seed(0)
    config = head_config(task_encoder=task_encoder, cell_clip=0.1, projection_clip=0.05)
    if head_class is ElmoForSequenceClassification:
        config = head_config(task_encoder=task_encoder, cell_clip=0.1, projection_clip=0.05, num_labels=3)
    results, graphs = compiled_outputs(head_class(config).eval(), lambda outputs: outputs.logits)
    # After the nn.LSTM's graph break the graph that follows is not marked dynamic: dynamo makes it dynamic on its
    # first new shape (one recompilation), then no more.
    settled = 0 if task_encoder == "none" else 1
    assert graphs[settled:] == [graphs[settled]] * (len(BATCHES) - settled), f"graphs after each batch {graphs}"
    for eager, compiled in results:
        assert compiled.shape == eager.shape
        torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)


def test_masked_time_loop_keeps_finished_states_and_zeroes_padding():
    """The padded loop (its Python reference path) against a plain per-sentence loop: each sentence's outputs and
    final state are those of running it alone, padding outputs are zero."""
    torch.manual_seed(0)
    weight = torch.randn(2, 3, 3)

    def step(input_part, cell, hidden):
        cell = torch.tanh(input_part + torch.bmm(hidden, weight) + cell)
        return cell, 2 * cell

    contributions = torch.randn(2, 3, 5, 3)
    step_mask = torch.arange(5)[None, :] < torch.tensor([5, 2, 1])[:, None]
    outputs, cell, hidden = masked_time_loop(step, contributions, step_mask, torch.zeros(2, 3, 3), torch.zeros(2, 3, 3))
    for row, length in enumerate([5, 2, 1]):
        row_cell = row_hidden = torch.zeros(2, 1, 3)
        for position in range(length):
            row_cell, row_hidden = step(contributions[:, row : row + 1, position], row_cell, row_hidden)
            torch.testing.assert_close(outputs[:, row, position], row_hidden[:, 0])
        torch.testing.assert_close(cell[:, row], row_cell[:, 0])
        torch.testing.assert_close(hidden[:, row], row_hidden[:, 0])
        assert torch.equal(outputs[:, row, length:], torch.zeros_like(outputs[:, row, length:]))
    vectors = torch.randn(3, 5, 4)
    assert torch.equal(reversed_rows(reversed_rows(vectors, step_mask), step_mask), vectors * step_mask[..., None])
    assert torch.equal(reversed_rows(vectors, step_mask)[1, :2], vectors[1, :2].flip(0))


def test_jit_trace_records_the_padded_path():
    """`torch.jit.trace` (which unrolls the steps, so the graph serves the example's shape) no longer stops at the
    oneDNN row padding or the packing: the traced biLM gives the eager outputs on other inputs of that shape."""
    torch.manual_seed(0)
    model = ElmoModel(small_config(return_dict=False)).eval()
    tokenizer = ElmoTokenizer()
    example = tokenizer(["the cat sat", "a b"], padding=True, return_tensors="pt")
    other = tokenizer(["dogs run far", "no"], padding=True, return_tensors="pt")
    with torch.no_grad(), pytest.warns(torch.jit.TracerWarning):
        traced = torch.jit.trace(model, (example["input_ids"], example["attention_mask"]))
    with torch.no_grad():
        for inputs in (example, other):
            found = traced(inputs["input_ids"], inputs["attention_mask"])[0]
            torch.testing.assert_close(found, model(**inputs)[0], rtol=0, atol=1e-5)
