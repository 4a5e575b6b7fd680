"""The speed machinery of `kernels_elmo.py` against its plain PyTorch reference: the oneDNN products, the packing of
sentences time-major, the gate blocks and the token cache."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modeling_elmo.kernels_elmo import (
    GATE_BLOCK_ROWS,
    MIN_PRODUCT_ROWS,
    PackedSteps,
    at_least_product_rows,
    direction_products,
    distinct_tokens,
    linear,
    look_up_tokens,
    onednn_applies,
    step_input_contributions,
    token_cache,
)

pytestmark = pytest.mark.usefixtures("one_thread")
needs_onednn = pytest.mark.skipif(
    not onednn_applies(torch.zeros(1)), reason="oneDNN's packed products are not available in this torch build"
)


@needs_onednn
@pytest.mark.parametrize("rows", [1, 7, 64, 65, 300])
def test_onednn_products_agree_with_the_reference(rows):
    torch.manual_seed(rows)
    cache: dict[str, tuple] = {}
    inputs, weight, bias = torch.randn(rows, 24), torch.randn(40, 24), torch.randn(40)
    torch.testing.assert_close(linear(cache, "w", inputs, weight, bias), nn.functional.linear(inputs, weight, bias))
    assert "w" in cache  # the fast path ran and kept the packed weight
    hidden, recurrent, addend = torch.randn(2, rows, 8), torch.randn(2, 8, 32), torch.randn(2, rows, 32)
    torch.testing.assert_close(
        direction_products(cache, "recurrent", hidden, recurrent, addend), torch.baddbmm(addend, hidden, recurrent)
    )
    torch.testing.assert_close(direction_products(cache, "projection", hidden, recurrent), torch.bmm(hidden, recurrent))
    assert {"recurrent0", "recurrent1", "projection0", "projection1"} <= cache.keys()


def test_the_reference_path_runs_where_gradients_flow():
    weight = nn.Parameter(torch.randn(5, 3))
    inputs = torch.randn(4, 3)
    cache: dict[str, tuple] = {}
    output = linear(cache, "w", inputs, weight)
    assert torch.equal(output, nn.functional.linear(inputs, weight)) and not cache
    output.sum().backward()
    assert weight.grad is not None


def test_small_products_get_zero_rows_up_to_the_minimum():
    inputs = torch.randn(2, 3, 4)
    padded = at_least_product_rows(inputs)
    assert padded.shape == (2, MIN_PRODUCT_ROWS, 4)
    assert torch.equal(padded[:, :3], inputs) and not padded[:, 3:].any()
    large = torch.randn(MIN_PRODUCT_ROWS + 1, 4)
    assert at_least_product_rows(large) is large


def test_packing_reads_each_sentence_forward_and_backward_and_unpacks_in_place():
    lengths = [2, 4, 1]
    step_mask = torch.arange(4)[None, :] < torch.tensor(lengths)[:, None]
    vectors = torch.arange(3 * 4, dtype=torch.float).view(3, 4, 1) + 1
    packing = PackedSteps.of(step_mask)
    assert packing.order.tolist() == [1, 0, 2] and packing.active_rows == [3, 2, 1, 1]
    packed = packing.pack(vectors)
    # step 0 holds the rows (longest first) 1, 0, 2; the backward direction starts at each sentence's end
    assert packed[0, :3, 0].tolist() == [5, 1, 9] and packed[1, :3, 0].tolist() == [8, 2, 9]
    unpacked = packing.unpack(packed)
    assert unpacked.shape == (3, 4, 2)
    assert torch.equal(unpacked[..., 0], torch.where(step_mask, vectors[..., 0], 0.0))
    assert torch.equal(unpacked[..., 1], torch.where(step_mask, vectors[..., 0], 0.0))
    own_stream = PackedSteps.of(step_mask, backward_reversed=False)
    assert torch.equal(own_stream.pack(vectors, -vectors)[1], -own_stream.pack(vectors)[0])


def test_gate_blocks_give_every_step_its_rows_of_the_whole_product():
    torch.manual_seed(0)
    active_rows = [300] * 2 + [200] * 3 + [7] * 5
    inputs = torch.randn(2, sum(active_rows), 3)
    weight = torch.randn(2, 3, 4)
    blocks = []

    def contributions(block: torch.Tensor) -> torch.Tensor:
        blocks.append(block.shape[1])
        return torch.bmm(block, weight)

    steps = list(step_input_contributions(inputs, active_rows, contributions))
    assert [step.shape[1] for step in steps] == active_rows
    torch.testing.assert_close(torch.cat(steps, dim=1), torch.bmm(inputs, weight))
    assert sum(blocks) == sum(active_rows) and all(rows >= GATE_BLOCK_ROWS for rows in blocks[:-1])


def test_the_token_cache_finds_exactly_the_cached_rows():
    char_ids = torch.tensor([[3, 4, 0], [3, 4, 0], [5, 6, 7], [1, 1, 1], [3, 4, 0]])
    word_ids = torch.tensor([10, 11, 10, 12, 10])
    rows, no_word_ids = distinct_tokens(char_ids)
    assert rows.shape[0] == 3 and no_word_ids is None
    entries, entry_word_ids = distinct_tokens(char_ids, word_ids)
    assert entries.shape[0] == 4  # the same characters with another word id are another entry
    assert sorted(zip(entries.tolist(), entry_word_ids.tolist(), strict=True))[0] == ([1, 1, 1], 12)
    embedded = []

    def embed(rows: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        embedded.append(rows.shape[0])
        return torch.cat([rows.float(), words[:, None].float()], dim=1)

    cache = token_cache(char_ids, word_ids, embed, batch_size=3)
    assert embedded == [3, 1]  # each distinct entry once, in batches
    queries, query_word_ids = torch.tensor([[5, 6, 7], [3, 4, 0], [9, 9, 9], [3, 4, 0]]), torch.tensor([10, 11, 10, 99])
    found_vectors, found = look_up_tokens(cache, queries, query_word_ids)
    assert found.tolist() == [True, True, False, False]
    assert torch.equal(found_vectors[found], embed(queries[found], query_word_ids[found]))
