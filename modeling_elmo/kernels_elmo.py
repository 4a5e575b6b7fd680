"""The speed machinery of the ELMo model (`modeling_elmo.py`), each piece behind a small function with a plain
PyTorch reference path, so that the model file reads as the paper's equations (as transformers keeps its fast
attention kernels behind a function table, with the readable version in the model file):

- matrix products through oneDNN with pre-packed weights (float32 CPU inference, two to four times as fast as the
  default BLAS for these shapes), their weight cache and the row-count buckets that keep oneDNN's compiled kernels
  few; elsewhere `nn.functional.linear`, `torch.bmm`, `torch.baddbmm` (`linear`, `ElmoLinear`, `direction_products`);
- the zero rows that make a small product take the code path of a large one, so that a sentence's vectors do not
  depend on its batch (`at_least_product_rows`);
- the bookkeeping of sentences packed time-major (`PackedSteps`) and of the LSTM input contributions computed in
  blocks of steps (`step_input_contributions`);
- the padded, masked time loop that `torch.compile` and `torch.export` record instead of the packing, as a loop
  rather than the steps unrolled (`tracing`, `masked_time_loop`, `reversed_rows`);
- the token cache: token vectors precomputed for a vocabulary and found by a hash of the character ids
  (`token_cache`, `look_up_tokens`; without it, the token embedder computes every word).

It is copied into model folders as remote code next to `modeling_elmo.py`, so it imports torch and the standard
library only.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn


def tracing() -> bool:
    """Whether `torch.compile`, `torch.export` or `torch.jit.trace` is recording the model. The speed machinery then
    steps aside for formulations that hold for every batch shape: no Python values taken from tensor values, no
    shapes that depend on them, no branches on the batch size."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


# ------------------------------------------------------------------------------------------------ matrix products

#: Fewest rows of a plain (BLAS) matrix product. With fewer, the library takes small-matrix code paths whose
#: rounding differs, so a sentence alone (batch 1) would get other vectors than in a batch.
MIN_PRODUCT_ROWS = 16


def at_least_product_rows(inputs: torch.Tensor) -> torch.Tensor:
    """`inputs` (..., n, X) with zero rows appended up to `MIN_PRODUCT_ROWS` (the caller keeps the first n
    rows of the product): every row's product is then computed the same way whatever the batch. A recorded graph
    (`tracing`) appends `MIN_PRODUCT_ROWS` rows whatever n, so that it holds for every batch size."""
    if tracing():
        return nn.functional.pad(inputs, (0, 0, 0, MIN_PRODUCT_ROWS))
    missing = MIN_PRODUCT_ROWS - inputs.shape[-2]
    return nn.functional.pad(inputs, (0, 0, 0, missing)) if missing > 0 else inputs


def onednn_applies(weight: torch.Tensor) -> bool:
    """oneDNN's matrix products with pre-packed weights serve float32 CPU inference: two to four times as fast
    as the default BLAS for these shapes on the machines measured (`benchmarks/bench_inference.py`). Not in a
    recorded graph (`tracing`): the packed weights and their cache live outside it."""
    return (
        not tracing()
        and weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and not (torch.is_grad_enabled() and weight.requires_grad)
    )


def padded_rows(rows: int) -> int:
    """`rows` rounded up to a multiple of 8 up to 64, beyond that to 3 significant bits (at most 25% more, about
    10% on average): a few dozen sizes cover every product the model makes."""
    if rows <= 64:
        return max(8, -(-rows // 8) * 8)
    step = 1 << (rows.bit_length() - 3)
    return -(-rows // step) * step


def onednn_linear(
    cache: dict[str, tuple],
    name: str,
    inputs: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    typical_rows: int = 256,
) -> torch.Tensor:
    """`inputs @ weight.T + bias` for (N, X) inputs and a (Y, X) weight (possibly a view of a parameter)
    through oneDNN.

    The weight is packed once for products of about `typical_rows` rows (a fixed hint, so results never depend
    on earlier calls), kept in `cache[name]`, and packed again when the parameter is replaced or modified.
    oneDNN compiles and keeps a kernel for every row count it sees (about 0.6 MB each), so the rows are padded
    to one of a few sizes (`padded_rows`): memory stays bounded however the batch shapes vary.
    """
    parameter = weight if weight._base is None else weight._base
    entry = cache.get(name)
    if entry is None or entry[0]() is not parameter or entry[1] != (parameter._version, weight.data_ptr()):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), typical_rows)
        entry = (weakref.ref(parameter), (parameter._version, weight.data_ptr()), packed)
        cache[name] = entry
    rows = inputs.shape[0]
    padding = padded_rows(rows) - rows
    padded = nn.functional.pad(inputs, (0, 0, 0, padding)) if padding else inputs.contiguous()
    bias = None if bias is None else bias.detach().contiguous()
    return torch.ops.mkldnn._linear_pointwise(padded, entry[2], bias, "none", [], "")[:rows]


def linear(
    cache: dict[str, tuple], name: str, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """`inputs (..., X) @ weight (Y, X).T + bias` → (..., Y): `nn.functional.linear`, or oneDNN where it applies
    (`onednn_applies`; the packed weight is kept in `cache[name]`)."""
    if not onednn_applies(weight) or inputs.numel() == 0:
        return nn.functional.linear(inputs, weight, bias)
    flat = onednn_linear(cache, name, inputs.reshape(-1, inputs.shape[-1]), weight, bias)
    return flat.view(*inputs.shape[:-1], weight.shape[0])


class ElmoLinear(nn.Linear):
    """`nn.Linear` that uses oneDNN's product in float32 CPU inference (same parameters, same results up to
    float32 rounding; see `linear`)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self._onednn_weights: dict[str, tuple] = {}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(..., in_features) → (..., out_features)."""
        return linear(self._onednn_weights, "weight", inputs, self.weight, self.bias)


def direction_products(
    cache: dict[str, tuple],
    name: str,
    inputs: torch.Tensor,
    weight: torch.Tensor,
    addend: torch.Tensor | None = None,
) -> torch.Tensor:
    """`addend + inputs @ weight` for both directions at once: (2, n, X) inputs, a (2, X, Y) weight and an optional
    (2, n, Y) addend → (2, n, Y). `torch.baddbmm` (`torch.bmm` without addend), or where oneDNN applies one product
    per direction, its weight packed for the few rows of an LSTM step (kept in `cache[name + direction]`)."""
    if not onednn_applies(weight):
        return torch.bmm(inputs, weight) if addend is None else torch.baddbmm(addend, inputs, weight)
    products = [onednn_linear(cache, f"{name}{d}", inputs[d], weight[d].t(), typical_rows=32) for d in range(2)]
    if addend is None:
        return torch.stack(products)
    result = inputs.new_empty(addend.shape)
    for d, product in enumerate(products):
        torch.add(addend[d], product, out=result[d])
    return result


# ------------------------------------------------------------------------------------------- packed steps, blocks


@dataclass
class PackedSteps:
    """A batch's sentences sorted longest first and packed time-major (like `nn.utils.rnn.PackedSequence`): step
    s holds the rows of the sentences longer than s, so no work is spent on padding.

    Attributes:
        batch_size, num_steps: the (B, S) shape of the unpacked batch.
        order: (B,) the batch rows, longest sentence first; `restore` puts sorted rows back in batch order.
        active_rows: how many sentences are still running at each step.
        forward_index: (N,) the position in the flattened (B * S) batch that each packed row of the forward
            direction reads (step s of its sentence).
        backward_index: the same for the backward direction: step s from the sentence's end, or from its start
            when the backward direction reads a token stream of its own (`PackedSteps.of`).
    """

    batch_size: int
    num_steps: int
    order: torch.Tensor
    restore: torch.Tensor
    active_rows: list[int]
    forward_index: torch.Tensor
    backward_index: torch.Tensor

    @classmethod
    def of(cls, step_mask: torch.Tensor, backward_reversed: bool = True) -> PackedSteps:
        """The packing of a (B, S) bool mask, true at real positions (a prefix of each row). With
        `backward_reversed`, the backward direction reads each sentence from its end; without, from its start (its
        own stream, as in the language model's packed windows)."""
        batch_size, num_steps = step_mask.shape
        lengths = step_mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_mask = step_mask[order]
        steps, sorted_rows = sorted_mask.t().nonzero(as_tuple=True)
        rows = order[sorted_rows]
        forward_index = rows * num_steps + steps
        backward_index = rows * num_steps + lengths[rows] - 1 - steps if backward_reversed else forward_index
        active_rows = sorted_mask.sum(dim=0).tolist()
        return cls(batch_size, num_steps, order, torch.argsort(order), active_rows, forward_index, backward_index)

    def pack(self, vectors: torch.Tensor, backward_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """The (2, N, P) inputs of both directions from (B, S, P) vectors (the backward direction's own in
        `backward_vectors` where given)."""
        flat = vectors.reshape(-1, vectors.shape[-1])
        backward_flat = flat if backward_vectors is None else backward_vectors.reshape(flat.shape)
        return torch.stack([flat[self.forward_index], backward_flat[self.backward_index]])

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """(B, S, 2P) = [forward; backward] at the positions each direction read, zero at padding, from (2, N, P)."""
        width = packed.shape[-1]
        unpacked = packed.new_zeros(self.batch_size * self.num_steps, 2, width)
        unpacked[self.forward_index, 0] = packed[0]
        unpacked[self.backward_index, 1] = packed[1]
        return unpacked.view(self.batch_size, self.num_steps, 2 * width)


#: Fewest rows (word positions of all running sentences) whose LSTM input contributions are computed together.
GATE_BLOCK_ROWS = 512


def gate_block_rows(active_rows: Sequence[int]) -> int:
    """Rows of the gate block that starts with the first of `active_rows` (the running sentences of the steps
    from here on): whole steps, at least `GATE_BLOCK_ROWS` rows unless the sequence ends first."""
    block = 0
    for rows in active_rows:
        block += rows
        if block >= GATE_BLOCK_ROWS:
            break
    return block


def step_input_contributions(
    inputs: torch.Tensor, active_rows: Sequence[int], contributions: Callable[[torch.Tensor], torch.Tensor]
) -> Iterator[torch.Tensor]:
    """Each step's rows (2, active_rows[s], G) of `contributions(inputs)` for (2, N, P) packed inputs, computed
    for blocks of whole steps of at least `GATE_BLOCK_ROWS` rows: one large matrix product per block, while all
    steps at once would take 2 × N × G floats (655 MB for a 5,000-word text with the Original model)."""
    offset = block_start = block_end = 0
    for step, rows in enumerate(active_rows):
        if offset == block_end:
            block_start, block_end = offset, offset + gate_block_rows(active_rows[step:])
            block = contributions(inputs[:, block_start:block_end])
        yield block[:, offset - block_start : offset - block_start + rows]
        offset += rows


# --------------------------------------------------------------------------------------- the padded, masked time loop


def reversed_rows(vectors: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    """(B, S, X) vectors with each row's real positions (the (B, S) bool `step_mask`, a prefix of each row) in
    reverse order and zeros past them: the order in which the backward direction reads a padded batch. Applied
    twice, it gives the vectors back (zero at padding)."""
    lengths = step_mask.sum(dim=1, keepdim=True)
    positions = (lengths - 1 - torch.arange(step_mask.shape[1], device=step_mask.device)).clamp(min=0)
    gathered = vectors.gather(1, positions[..., None].expand(vectors.shape))
    return torch.where(step_mask[..., None], gathered, 0.0)


def masked_time_loop(
    step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    contributions: torch.Tensor,
    step_mask: torch.Tensor,
    cell: torch.Tensor,
    hidden: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run `step(input_part, cell, hidden) -> (cell, hidden)` over the S steps of a padded batch: every sentence at
    every step, its state kept where the (B, S) bool `step_mask` is false (past its end) and its output zero there.
    While `torch.compile` or `torch.export` records it, the steps are one `torch.while_loop` (an ONNX `Loop`), so the
    graph holds for every sentence length; otherwise (and under `torch.jit.trace`, which unrolls) a Python loop.

    Args:
        step: one step of both directions (`ElmoLstmLayer.step`): (2, B, G) input part, (2, B, D) cell and (2, B, P)
            hidden state → the new cell and hidden state.
        contributions: (2, B, S, G) every step's input part, in each direction's own time order.
        step_mask: (B, S) bool, true at real positions (a prefix of each row); the same for both directions.
        cell: (2, B, D) and hidden: (2, B, P) initial states.

    Returns:
        outputs (2, B, S, P) (the hidden states, zero past each sentence's end), final cell, final hidden.
    """
    steps = contributions.permute(2, 0, 1, 3)
    keep_steps = step_mask.t()[:, None, :, None]

    def advance(index: torch.Tensor, cell: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
        new_cell, new_hidden = step(steps.index_select(0, index)[0], cell, hidden)
        keep = keep_steps.index_select(0, index)[0]
        new_output = torch.where(keep, new_hidden, 0.0)
        return torch.where(keep, new_cell, cell), torch.where(keep, new_hidden, hidden), new_output

    num_steps = steps.shape[0]
    if not torch.compiler.is_compiling():
        outputs = []
        for index in torch.arange(num_steps, device=steps.device)[:, None]:
            cell, hidden, output = advance(index, cell, hidden)
            outputs.append(output)
        return torch.stack(outputs, dim=2), cell, hidden

    def more_steps(index: torch.Tensor, *_: torch.Tensor) -> torch.Tensor:
        return index < num_steps

    def one_step(index: torch.Tensor, cell: torch.Tensor, hidden: torch.Tensor, outputs: torch.Tensor) -> tuple:
        cell, hidden, output = advance(index.view(1), cell, hidden)
        return index + 1, cell, hidden, outputs.index_copy(0, index.view(1), output[None])

    first = torch.zeros((), dtype=torch.long, device=steps.device)
    outputs = hidden.new_zeros(num_steps, *hidden.shape)
    _, cell, hidden, outputs = torch.while_loop(more_steps, one_step, (first, cell, hidden, outputs))
    return outputs.permute(1, 2, 0, 3), cell, hidden


# ------------------------------------------------------------------------------------------------ the token cache

#: The buffers of the token cache, in the order `token_cache` gives them (`token_cache_word_ids` only for a model
#: with a word embedding).
TOKEN_CACHE_BUFFERS = (
    "token_cache_multipliers",
    "token_cache_keys",
    "token_cache_char_ids",
    "token_cache_word_ids",
    "token_cache_vectors",
)


def distinct_tokens(
    char_ids: torch.Tensor, word_ids: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The distinct (N, C) character-id rows, or with (N,) word ids the distinct (row, word id) pairs, split again
    into rows and word ids."""
    if word_ids is None:
        return torch.unique(char_ids, dim=0), None
    entries = torch.unique(torch.cat([char_ids, word_ids[:, None]], dim=1), dim=0)
    return entries[:, :-1], entries[:, -1]


def row_keys(char_ids: torch.Tensor, multipliers: torch.Tensor, word_ids: torch.Tensor | None = None) -> torch.Tensor:
    """An int64 hash of each (N, C) character-id row and, for a model with a word embedding, its (N,) word id
    (C + 1 multipliers, wrapping arithmetic); equal rows give equal keys, and the token cache confirms every match
    on the full row and word id."""
    keys = (char_ids * multipliers[: char_ids.shape[-1]]).sum(dim=-1)
    return keys if word_ids is None else keys + word_ids * multipliers[-1]


def token_cache(
    char_ids: torch.Tensor,
    word_ids: torch.Tensor | None,
    embed: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    batch_size: int,
) -> dict[str, torch.Tensor]:
    """The token cache of (N, C) character-id rows (and (N,) word ids; duplicates are fine) as named tensors
    (`TOKEN_CACHE_BUFFERS`): the hash multipliers (always the same), the sorted keys, and the distinct rows, word ids
    and token vectors (`embed(rows, word_ids)`, `batch_size` rows at a time) in key order."""
    char_ids, word_ids = distinct_tokens(char_ids, word_ids)
    char_chunks = char_ids.split(batch_size)
    word_chunks = [None] * len(char_chunks) if word_ids is None else word_ids.split(batch_size)
    vectors = torch.cat([embed(chunk, word_chunk) for chunk, word_chunk in zip(char_chunks, word_chunks, strict=True)])
    multipliers = torch.randint(
        -(2**62), 2**62, (char_ids.shape[-1] + 1,), generator=torch.Generator().manual_seed(0), dtype=torch.long
    ).to(char_ids.device)
    keys, order = torch.sort(row_keys(char_ids, multipliers, word_ids))
    cache = {"token_cache_multipliers": multipliers, "token_cache_keys": keys, "token_cache_char_ids": char_ids[order]}
    if word_ids is not None:
        cache["token_cache_word_ids"] = word_ids[order]
    cache["token_cache_vectors"] = vectors[order]
    return cache


def look_up_tokens(
    cache: Mapping[str, torch.Tensor], char_ids: torch.Tensor, word_ids: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (N, P) token vectors of the (N, C) character-id rows (and (N,) word ids) found in the token cache
    `cache`, and the (N,) bool mask of those found; the other rows of the vectors are left uninitialised."""
    keys = row_keys(char_ids, cache["token_cache_multipliers"], word_ids)
    cached_keys, cached_vectors = cache["token_cache_keys"], cache["token_cache_vectors"]
    slots = torch.searchsorted(cached_keys, keys).clamp(max=cached_keys.shape[0] - 1)
    found = (cached_keys[slots] == keys) & (cache["token_cache_char_ids"][slots] == char_ids).all(dim=-1)
    if word_ids is not None:
        found &= cache["token_cache_word_ids"][slots] == word_ids
    vectors = cached_vectors.new_empty(char_ids.shape[0], cached_vectors.shape[-1])
    vectors[found] = cached_vectors[slots[found]]
    return vectors, found


def cached_token_vectors(
    cache: Mapping[str, torch.Tensor],
    char_ids: torch.Tensor,
    word_ids: torch.Tensor | None,
    embed: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
) -> torch.Tensor:
    """The (N, P) token vectors of (N, C) character-id rows (and (N,) word ids): looked up in the token cache `cache`
    (`look_up_tokens`), the others computed by `embed(rows, word_ids)`."""
    if char_ids.shape[0] == 0:
        return embed(char_ids, word_ids)
    vectors, cached = look_up_tokens(cache, char_ids, word_ids)
    misses = ~cached
    if misses.any():
        vectors[misses] = embed(char_ids[misses], None if word_ids is None else word_ids[misses]).to(vectors.dtype)
    return vectors
