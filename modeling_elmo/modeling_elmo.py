"""ELMo, the bidirectional language model of Peters et al. (2018), "Deep contextualized word representations".

The file follows the paper's data flow: characters → character CNN → highway → projection (the
context-independent token vector) → a stack of bidirectional LSTM layers with projection and clipping →
the L + 1 layers a downstream task mixes with `ElmoScalarMix`.

Shapes: B = batch, T = words, S = T + 2 (with the sentence boundaries), C = characters per word,
E = character embedding size, F = character CNN width, P = projection size, D = LSTM cell size,
L = LSTM layers; "2" as a leading dimension indexes the direction (0 forward, 1 backward).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils import ModelOutput

from .configuration_elmo import ElmoConfig
from .tokenization_elmo import ElmoTokenizer

# Character ids of the sentence markers, after the +1 shift that makes 0 mean "no word".
BEGIN_OF_WORD, END_OF_WORD, PAD_IN_WORD = 259, 260, 261
BEGIN_OF_SENTENCE_CHAR, END_OF_SENTENCE_CHAR = 257, 258
# The LSTM adds this to the forget gate's pre-activation (not stored in the weights, as in bilm-tf).
FORGET_BIAS = 1.0


def sentence_marker_char_ids(marker_char: int, max_characters_per_token: int, device: torch.device) -> torch.Tensor:
    """The (C,) character ids of a sentence marker word: begin-of-word, the marker, end-of-word, padding."""
    ids = torch.full((max_characters_per_token,), PAD_IN_WORD, dtype=torch.long, device=device)
    ids[:3] = torch.tensor([BEGIN_OF_WORD, marker_char, END_OF_WORD], device=device)
    return ids


def add_sentence_boundaries(char_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Wrap every sentence as `<S> w_1 … w_n </S>`.

    Args:
        char_ids: (B, T, C) character ids, rows past each sentence's length are ignored.
        lengths: (B,) number of words per sentence.

    Returns:
        (B, T + 2, C) character ids; positions past `lengths + 2` are zero.
    """
    batch_size, num_words, num_chars = char_ids.shape
    positions = torch.arange(num_words, device=char_ids.device)
    words = char_ids * (positions[None, :] < lengths[:, None])[..., None]
    wrapped = torch.cat(
        [words.new_zeros(batch_size, 1, num_chars), words, words.new_zeros(batch_size, 1, num_chars)], 1
    )
    wrapped[:, 0] = sentence_marker_char_ids(BEGIN_OF_SENTENCE_CHAR, num_chars, char_ids.device)
    rows = torch.arange(batch_size, device=char_ids.device)
    wrapped[rows, lengths + 1] = sentence_marker_char_ids(END_OF_SENTENCE_CHAR, num_chars, char_ids.device)
    return wrapped


def _onednn_applies(weight: torch.Tensor) -> bool:
    """oneDNN's matrix products with pre-packed weights serve float32 CPU inference: two to four times as fast
    as the default BLAS for these shapes on the machines measured (`benchmarks/bench_inference.py`)."""
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
        and not (torch.is_grad_enabled() and weight.requires_grad)
    )


def _onednn_linear(
    cache: dict[str, tuple], name: str, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """`inputs @ weight.T + bias` for (N, X) inputs and a (Y, X) weight (possibly a view of a parameter)
    through oneDNN. The weight is packed for oneDNN once, kept in `cache[name]`, and packed again when the
    parameter is replaced or modified."""
    parameter = weight if weight._base is None else weight._base
    entry = cache.get(name)
    if entry is None or entry[0]() is not parameter or entry[1] != (parameter._version, weight.data_ptr()):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), max(inputs.shape[0], 1))
        entry = (weakref.ref(parameter), (parameter._version, weight.data_ptr()), packed)
        cache[name] = entry
    bias = None if bias is None else bias.detach().contiguous()
    return torch.ops.mkldnn._linear_pointwise(inputs.contiguous(), entry[2], bias, "none", [], "")


class ElmoLinear(nn.Linear):
    """`nn.Linear` that uses oneDNN's product in float32 CPU inference (same parameters, same results up to
    float32 rounding)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self._onednn_weights: dict[str, tuple] = {}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(..., in_features) → (..., out_features)."""
        if not _onednn_applies(self.weight) or inputs.numel() == 0:
            return super().forward(inputs)
        flat = _onednn_linear(
            self._onednn_weights, "weight", inputs.reshape(-1, self.in_features), self.weight, self.bias
        )
        return flat.view(*inputs.shape[:-1], self.out_features)


class ElmoCharacterCNN(nn.Module):
    """Character embedding, one convolution per filter width, max over positions, then the activation.

    Each convolution runs as one matrix product over all character windows (`unfold`), which is faster on
    CPU than `conv1d` for these few input channels; the parameters are those of `nn.Conv1d`.
    """

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.num_characters, config.char_embedding_dim, padding_idx=0)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.char_embedding_dim, count, kernel_size=width) for width, count in config.char_cnn_filters
        )
        self.activation = torch.relu if config.char_cnn_activation == "relu" else torch.tanh
        self._onednn_weights: dict[str, tuple] = {}

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """(N, C) character ids → (N, F) features."""
        embedded = self.embedding(char_ids)
        num_words, num_chars, embedding_dim = embedded.shape
        features = []
        for index, conv in enumerate(self.convolutions):
            width = conv.kernel_size[0]
            # (N, C - w + 1, E, w) windows, flattened like the (out, E, w) kernel.
            windows = embedded.unfold(1, width, 1).reshape(-1, embedding_dim * width)
            kernel = conv.weight.view(conv.out_channels, -1)
            if _onednn_applies(kernel) and windows.numel():
                responses = _onednn_linear(self._onednn_weights, str(index), windows, kernel, conv.bias)
            else:
                responses = nn.functional.linear(windows, kernel, conv.bias)
            positions = num_chars - width + 1
            features.append(self.activation(responses.view(num_words, positions, conv.out_channels).amax(dim=1)))
        return torch.cat(features, dim=-1)


class ElmoHighwayLayer(nn.Module):
    """`y = t * relu(x W_transform + b) + (1 - t) * x` with the carry gate `t = sigmoid(x W_carry + b)`."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.carry_gate = ElmoLinear(width, width)
        self.transform = ElmoLinear(width, width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, F) → (N, F)."""
        gate = torch.sigmoid(self.carry_gate(features))
        return gate * torch.relu(self.transform(features)) + (1 - gate) * features


class ElmoTokenEmbedder(nn.Module):
    """Character CNN → highway layers → projection: the context-independent token vector (layer 0)."""

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__()
        self.char_cnn = ElmoCharacterCNN(config)
        self.highway = nn.ModuleList(ElmoHighwayLayer(config.num_filters) for _ in range(config.num_highway_layers))
        self.projection = ElmoLinear(config.num_filters, config.projection_dim)

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """(N, C) character ids → (N, P) token vectors."""
        features = self.char_cnn(char_ids)
        for layer in self.highway:
            features = layer(features)
        return self.projection(features)


class ElmoLstmLayer(GradientCheckpointingLayer):
    """One biLSTM layer: the forward and the backward LSTM with projection (LSTMP), computed together.

    Per step, with the bilm-tf gate order i, j, f, o (j the candidate):
    `c = clip(sigmoid(f + 1) * c + sigmoid(i) * tanh(j))`, `h = clip((sigmoid(o) * tanh(c)) W_P)`.
    The weights keep the original layout (y = x @ W), stacked over the two directions.

    The sequence arrives packed time-major (see `ElmoBiLstm`): the input contributions of all steps are one
    matrix product, and each step only computes the sentences still running.
    """

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__()
        projection_dim, cell_dim = config.projection_dim, config.lstm_cell_dim
        self.input_weight = nn.Parameter(torch.empty(2, projection_dim, 4 * cell_dim))
        self.recurrent_weight = nn.Parameter(torch.empty(2, projection_dim, 4 * cell_dim))
        self.bias = nn.Parameter(torch.empty(2, 4 * cell_dim))
        self.projection_weight = nn.Parameter(torch.empty(2, cell_dim, projection_dim))
        self.cell_clip = config.cell_clip
        self.projection_clip = config.projection_clip
        self._onednn_weights: dict[str, tuple] = {}

    def forward(
        self, inputs: torch.Tensor, active_rows: list[int], cell: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run both directions over their own time order.

        Args:
            inputs: (2, N, P) packed time-major: step s holds `active_rows[s]` rows, the first rows of the
                batch (sorted longest first); direction 1 reads each sentence reversed.
            active_rows: how many sentences are still running at each step. A finished sentence keeps its
                state unchanged.
            cell: (2, B, D) initial memory cells.
            hidden: (2, B, P) initial hidden states.

        Returns:
            outputs (2, N, P) packed like `inputs`, final cell (2, B, D), final hidden (2, B, P).
        """
        if inputs.shape[1] == 0:
            return inputs, cell, hidden
        gate_inputs = self._input_gates(inputs)
        step_outputs, finished_cells, finished_hiddens, offset = [], [], [], 0
        for rows in active_rows:
            if rows < cell.shape[1]:
                # The shortest sentences end here; their states are final.
                finished_cells.append(cell[:, rows:])
                finished_hiddens.append(hidden[:, rows:])
                cell, hidden = cell[:, :rows], hidden[:, :rows]
            gates = self._add_recurrent(gate_inputs, offset, hidden)
            input_gate, candidate, forget_gate, output_gate = gates.chunk(4, dim=-1)
            cell = torch.addcmul(torch.sigmoid(forget_gate) * cell, torch.sigmoid(input_gate), torch.tanh(candidate))
            if self.cell_clip is not None:
                cell = cell.clamp(-self.cell_clip, self.cell_clip)
            hidden = self._project(torch.sigmoid(output_gate) * torch.tanh(cell))
            if self.projection_clip is not None:
                hidden = hidden.clamp(-self.projection_clip, self.projection_clip)
            step_outputs.append(hidden)
            offset += rows
        final_cell = torch.cat([cell, *reversed(finished_cells)], dim=1)
        final_hidden = torch.cat([hidden, *reversed(finished_hiddens)], dim=1)
        return torch.cat(step_outputs, dim=1), final_cell, final_hidden

    def _input_gates(self, inputs: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """`inputs (2, N, P) @ input_weight + bias`, with the forget bias added: (2, N, 4D) or, on the oneDNN
        path, one (N, 4D) tensor per direction (stacking them would copy the largest tensor of the layer)."""
        four_cells = self.bias.shape[-1]
        forget_bias = torch.zeros_like(self.bias)
        forget_bias[:, four_cells // 2 : 3 * four_cells // 4] = FORGET_BIAS
        bias = self.bias + forget_bias
        if not _onednn_applies(self.input_weight):
            return torch.baddbmm(bias[:, None, :], inputs, self.input_weight)
        return [
            _onednn_linear(self._onednn_weights, f"input{d}", inputs[d], self.input_weight[d].t(), bias[d])
            for d in range(2)
        ]

    def _add_recurrent(
        self, gate_inputs: torch.Tensor | list[torch.Tensor], offset: int, hidden: torch.Tensor
    ) -> torch.Tensor:
        """The gates (2, n, 4D) of one step: its rows of `gate_inputs` from `offset` on, plus
        `hidden (2, n, P) @ recurrent_weight`."""
        rows = hidden.shape[1]
        if not _onednn_applies(self.recurrent_weight):
            return torch.baddbmm(gate_inputs[:, offset : offset + rows], hidden, self.recurrent_weight)
        gates = hidden.new_empty(2, rows, gate_inputs[0].shape[-1])
        for d in range(2):
            product = _onednn_linear(self._onednn_weights, f"recurrent{d}", hidden[d], self.recurrent_weight[d].t())
            torch.add(gate_inputs[d][offset : offset + rows], product, out=gates[d])
        return gates

    def _project(self, cell_output: torch.Tensor) -> torch.Tensor:
        """`cell_output (2, n, D) @ projection_weight` → (2, n, P)."""
        if not _onednn_applies(self.projection_weight):
            return torch.bmm(cell_output, self.projection_weight)
        return torch.stack(
            [
                _onednn_linear(self._onednn_weights, f"projection{d}", cell_output[d], self.projection_weight[d].t())
                for d in range(2)
            ]
        )


class ElmoBiLstm(nn.Module):
    """The stacked biLSTM; from the second layer on, with skip connections, a layer's output is
    `lstm(x) + x` (the recurrence itself uses the LSTM's own hidden state).

    Inside, sentences are sorted longest first and packed time-major (like `nn.utils.rnn.PackedSequence`):
    step s holds the sentences longer than s, so no work is spent on padding. The backward direction reads
    every sentence from its own end.
    """

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ElmoLstmLayer(config) for _ in range(config.num_lstm_layers))
        self.use_skip_connections = config.use_skip_connections

    def forward(
        self, token_vectors: torch.Tensor, step_mask: torch.Tensor, cell: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Args:
            token_vectors: (B, S, P).
            step_mask: (B, S) bool, true at real positions (a prefix of each row).
            cell: (L, 2, B, D) and hidden: (L, 2, B, P) initial states.

        Returns:
            the L layer outputs, each (B, S, 2P) = [forward; backward] in sentence order and zero at padding,
            and the final states (L, 2, B, D), (L, 2, B, P).
        """
        batch_size, num_steps, projection_dim = token_vectors.shape
        lengths = step_mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        restore = torch.argsort(order)
        sorted_mask = step_mask[order]
        active_rows = sorted_mask.sum(dim=0).tolist()
        # Time-major positions (step, sorted row) of every real token, and where each direction reads it.
        steps, sorted_rows = sorted_mask.t().nonzero(as_tuple=True)
        rows = order[sorted_rows]
        forward_index = rows * num_steps + steps
        backward_index = rows * num_steps + lengths[rows] - 1 - steps
        flat_tokens = token_vectors.reshape(-1, projection_dim)
        layer_input = torch.stack([flat_tokens[forward_index], flat_tokens[backward_index]])

        layer_outputs, final_cells, final_hiddens = [], [], []
        for index, layer in enumerate(self.layers):
            output, final_cell, final_hidden = layer(
                layer_input, active_rows, cell[index][:, order], hidden[index][:, order]
            )
            if self.use_skip_connections and index > 0:
                output = output + layer_input
            unpacked = output.new_zeros(batch_size * num_steps, 2, projection_dim)
            unpacked[forward_index, 0] = output[0]
            unpacked[backward_index, 1] = output[1]
            layer_outputs.append(unpacked.view(batch_size, num_steps, 2 * projection_dim))
            final_cells.append(final_cell[:, restore])
            final_hiddens.append(final_hidden[:, restore])
            layer_input = output
        return layer_outputs, torch.stack(final_cells), torch.stack(final_hiddens)


def _row_keys(char_ids: torch.Tensor, multipliers: torch.Tensor) -> torch.Tensor:
    """An int64 hash of each (N, C) character-id row (wrapping arithmetic); equal rows give equal keys, and
    the token cache confirms every match on the full row."""
    return (char_ids * multipliers).sum(dim=-1)


@dataclass
class ElmoModelOutput(ModelOutput):
    """Outputs of [`ElmoModel`], aligned with the tokenizer's words (sentence boundaries removed).

    Args:
        last_hidden_state: (B, T, 2P) the top biLSTM layer, [forward; backward], zero at padding.
        hidden_states: with `output_hidden_states`, L + 1 tensors of shape (B, T, 2P): layer 0 is the
            token vector duplicated, layer k the k-th biLSTM layer.
    """

    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class ElmoPreTrainedModel(PreTrainedModel):
    config_class = ElmoConfig
    base_model_prefix = "elmo"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ("ElmoTokenEmbedder", "ElmoLstmLayer")

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Initialisation for training from scratch, after bilm-tf (loaded weights are never touched)."""
        config = self.config
        if isinstance(module, ElmoCharacterCNN):
            init.uniform_(module.embedding.weight, -1.0, 1.0)
            init.zeros_(module.embedding.weight[0])
            for conv in module.convolutions:
                fan_in = conv.kernel_size[0] * config.char_embedding_dim
                if config.char_cnn_activation == "relu":
                    init.normal_(conv.weight, 0.0, math.sqrt(1.0 / fan_in))
                else:
                    init.uniform_(conv.weight, -0.05, 0.05)
                init.zeros_(conv.bias)
        elif isinstance(module, ElmoHighwayLayer):
            std = math.sqrt(1.0 / module.carry_gate.in_features)
            init.normal_(module.carry_gate.weight, 0.0, std)
            init.constant_(module.carry_gate.bias, -2.0)
            init.normal_(module.transform.weight, 0.0, std)
            init.zeros_(module.transform.bias)
        elif isinstance(module, ElmoTokenEmbedder):
            init.normal_(module.projection.weight, 0.0, math.sqrt(1.0 / module.projection.in_features))
            init.zeros_(module.projection.bias)
        elif isinstance(module, ElmoLstmLayer):
            for weight in (module.input_weight, module.recurrent_weight, module.projection_weight):
                fan_in, fan_out = weight.shape[1], weight.shape[2]
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                init.uniform_(weight, -bound, bound)
            init.zeros_(module.bias)
        elif isinstance(module, ElmoModel):
            init.zeros_(module.primed_cell_state)
            init.zeros_(module.primed_hidden_state)


class ElmoModel(ElmoPreTrainedModel):
    """The ELMo biLM. Input: the tokenizer's `input_ids` (B, T, C) and `attention_mask` (B, T).

    The initial LSTM state depends on `config.state_mode`: zeros (`"stateless"`), each batch row's final
    state from the previous call (`"stateful"`, the original behaviour; `reset_states()` clears it), or the
    stored `primed_*_state` buffers (`"primed"`, set by `prime_states`).
    """

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__(config)
        self.token_embedder = ElmoTokenEmbedder(config)
        self.bilstm = ElmoBiLstm(config)
        num_layers, cell_dim, projection_dim = config.num_lstm_layers, config.lstm_cell_dim, config.projection_dim
        self.register_buffer("primed_cell_state", torch.zeros(num_layers, 2, cell_dim))
        self.register_buffer("primed_hidden_state", torch.zeros(num_layers, 2, projection_dim))
        self._carried_state: tuple[torch.Tensor, torch.Tensor] | None = None
        self.post_init()

    def reset_states(self) -> None:
        """Forget the state carried between calls in `"stateful"` mode."""
        self._carried_state = None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ElmoModelOutput | tuple[torch.Tensor, ...]:
        """Args:
            input_ids: (B, T, C) character ids from `ElmoTokenizer` (0 = no word).
            attention_mask: (B, T), 1 for words, 0 for right padding; derived from `input_ids` if omitted.
            output_hidden_states: also return all L + 1 layers.

        Returns:
            `ElmoModelOutput` (or a tuple) with `last_hidden_state` (B, T, 2P) and optionally `hidden_states`.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        word_mask = self._word_mask(input_ids, attention_mask)
        lengths = word_mask.sum(dim=1)
        char_ids = add_sentence_boundaries(input_ids.long(), lengths)
        step_mask = torch.arange(char_ids.shape[1], device=char_ids.device)[None, :] < (lengths[:, None] + 2)

        token_vectors = self.embed_tokens(char_ids, step_mask)
        cell, hidden = self._initial_state(input_ids.shape[0], token_vectors)
        lstm_layers, final_cell, final_hidden = self.bilstm(token_vectors, step_mask, cell, hidden)
        if self.config.state_mode == "stateful":
            self._carry_state(final_cell, final_hidden)

        layers = [torch.cat([token_vectors, token_vectors], dim=-1), *lstm_layers]
        keep = word_mask[..., None]
        layers = [torch.where(keep, layer[:, 1:-1], 0.0) for layer in layers]
        hidden_states = tuple(layers) if output_hidden_states else None
        if not return_dict:
            return tuple(value for value in (layers[-1], hidden_states) if value is not None)
        return ElmoModelOutput(last_hidden_state=layers[-1], hidden_states=hidden_states)

    def embed_tokens(self, char_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token vectors (B, S, P) for the (B, S, C) character ids, computed only where `mask` (B, S) is
        true and exactly zero elsewhere. Words in the token cache (`cache_token_embeddings`) are looked up."""
        flat_mask = mask.reshape(-1)
        selected = self._cached_or_computed(char_ids.reshape(-1, char_ids.shape[-1])[flat_mask])
        token_vectors = selected.new_zeros(flat_mask.shape[0], selected.shape[-1])
        token_vectors[flat_mask] = selected
        return token_vectors.view(*mask.shape, selected.shape[-1])

    @torch.no_grad()
    def cache_token_embeddings(
        self, words: Iterable[str], tokenizer: ElmoTokenizer | None = None, batch_size: int = 4096
    ) -> None:
        """Precompute the token vectors (layer 0) of a vocabulary, so that these words skip the character
        CNN, highway and projection; other words still go through them. Results equal the uncached path.

        Args:
            words: the vocabulary (duplicates are fine). The sentence markers are always cached.
            tokenizer: the `ElmoTokenizer` whose character ids the model receives (default: UTF-8 bytes).
            batch_size: words per forward pass while filling the cache.

        The cache lives in non-persistent buffers: it follows `.to(device/dtype)` but is not saved. It is
        bypassed while gradients flow into the token embedder (fine-tuning); call it again after training.
        """
        num_chars = self.config.max_characters_per_token
        tokenizer = tokenizer or ElmoTokenizer(max_characters_per_token=num_chars)
        device = self.primed_cell_state.device
        word_char_ids = torch.tensor(tokenizer.convert_tokens_to_ids(list(words)), dtype=torch.long, device=device)
        markers = torch.stack(
            [
                sentence_marker_char_ids(marker, num_chars, device)
                for marker in (BEGIN_OF_SENTENCE_CHAR, END_OF_SENTENCE_CHAR)
            ]
        )
        char_ids = torch.cat([markers, word_char_ids.view(-1, num_chars)])
        char_ids = torch.unique(char_ids, dim=0)
        vectors = torch.cat([self.token_embedder(chunk) for chunk in char_ids.split(batch_size)])
        multipliers = torch.randint(
            -(2**62), 2**62, (num_chars,), generator=torch.Generator().manual_seed(0), dtype=torch.long
        ).to(device)
        keys, order = torch.sort(_row_keys(char_ids, multipliers))
        self.register_buffer("token_cache_multipliers", multipliers, persistent=False)
        self.register_buffer("token_cache_keys", keys, persistent=False)
        self.register_buffer("token_cache_char_ids", char_ids[order], persistent=False)
        self.register_buffer("token_cache_vectors", vectors[order], persistent=False)

    def clear_token_cache(self) -> None:
        """Drop the token cache built by `cache_token_embeddings`."""
        for name in ("token_cache_multipliers", "token_cache_keys", "token_cache_char_ids", "token_cache_vectors"):
            self._buffers.pop(name, None)

    def _cached_or_computed(self, char_ids: torch.Tensor) -> torch.Tensor:
        """(N, C) character ids → (N, P) token vectors, from the token cache where possible."""
        fine_tuning = torch.is_grad_enabled() and self.token_embedder.projection.weight.requires_grad
        if "token_cache_keys" not in self._buffers or fine_tuning or char_ids.shape[0] == 0:
            return self.token_embedder(char_ids)
        keys = _row_keys(char_ids, self.token_cache_multipliers)
        slots = torch.searchsorted(self.token_cache_keys, keys).clamp(max=self.token_cache_keys.shape[0] - 1)
        hits = (self.token_cache_keys[slots] == keys) & (self.token_cache_char_ids[slots] == char_ids).all(dim=-1)
        vectors = self.token_cache_vectors.new_empty(char_ids.shape[0], self.token_cache_vectors.shape[-1])
        vectors[hits] = self.token_cache_vectors[slots[hits]]
        misses = ~hits
        if misses.any():
            vectors[misses] = self.token_embedder(char_ids[misses]).to(vectors.dtype)
        return vectors

    def _word_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Check the inputs and return the (B, T) bool word mask (a prefix of every row)."""
        config = self.config
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 3:
            shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
            raise ValueError(
                f"input_ids must be a (batch, words, {config.max_characters_per_token}) tensor of character ids "
                f"from ElmoTokenizer, got {shape}"
            )
        if input_ids.shape[-1] != config.max_characters_per_token:
            raise ValueError(
                f"input_ids has {input_ids.shape[-1]} characters per word, the model expects "
                f"max_characters_per_token = {config.max_characters_per_token}"
            )
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise ValueError(f"input_ids must hold integer character ids, got dtype {input_ids.dtype}")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= config.num_characters):
            raise ValueError(
                f"input_ids must lie in [0, {config.num_characters - 1}], got values in "
                f"[{int(input_ids.min())}, {int(input_ids.max())}]"
            )
        if attention_mask is None:
            word_mask = (input_ids != 0).any(dim=-1)
        else:
            if tuple(attention_mask.shape) != tuple(input_ids.shape[:2]):
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}, expected (batch, words) = "
                    f"{tuple(input_ids.shape[:2])}"
                )
            word_mask = attention_mask.bool()
        lengths = word_mask.sum(dim=1)
        if not torch.equal(word_mask, torch.arange(word_mask.shape[1], device=word_mask.device) < lengths[:, None]):
            raise ValueError("attention_mask must mark words with 1 and only right padding with 0")
        return word_mask

    def _initial_state(self, batch_size: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial (L, 2, B, D) cells and (L, 2, B, P) hidden states for the configured state mode."""
        mode = self.config.state_mode
        if mode == "primed":
            cell = self.primed_cell_state[:, :, None].expand(-1, -1, batch_size, -1)
            hidden = self.primed_hidden_state[:, :, None].expand(-1, -1, batch_size, -1)
            return cell.to(like.dtype).contiguous(), hidden.to(like.dtype).contiguous()
        cell = like.new_zeros(self.primed_cell_state.shape[0], 2, batch_size, self.primed_cell_state.shape[-1])
        hidden = like.new_zeros(self.primed_hidden_state.shape[0], 2, batch_size, self.primed_hidden_state.shape[-1])
        if mode == "stateful" and self._carried_state is not None:
            carried_cell, carried_hidden = self._carried_state
            rows = min(batch_size, carried_cell.shape[2])
            cell[:, :, :rows] = carried_cell[:, :, :rows]
            hidden[:, :, :rows] = carried_hidden[:, :, :rows]
        return cell, hidden

    def _carry_state(self, final_cell: torch.Tensor, final_hidden: torch.Tensor) -> None:
        """Keep each row's final state for the next call; rows beyond this batch keep their older state."""
        final_cell, final_hidden = final_cell.detach(), final_hidden.detach()
        if self._carried_state is not None and self._carried_state[0].shape[2] > final_cell.shape[2]:
            rows = final_cell.shape[2]
            carried_cell, carried_hidden = (state.clone() for state in self._carried_state)
            carried_cell[:, :, :rows] = final_cell
            carried_hidden[:, :, :rows] = final_hidden
            final_cell, final_hidden = carried_cell, carried_hidden
        self._carried_state = (final_cell, final_hidden)

    @torch.no_grad()
    def prime_states(self, batches: Iterable[dict[str, torch.Tensor]]) -> None:
        """Set the `"primed"` initial state from warm-up text.

        The batches (tokenizer outputs with `input_ids` and `attention_mask`) run in order with the state
        carried per row, as in the original stateful protocol; the primed state is the mean over all rows of
        the final carried state. The result lives in the `primed_*_state` buffers, so it is saved with the
        model. Switch to it with `model.config.state_mode = "primed"`.
        """
        mode = self.config.state_mode
        self.config.state_mode = "stateful"
        self.reset_states()
        try:
            for batch in batches:
                self(
                    input_ids=batch["input_ids"].to(self.device), attention_mask=batch["attention_mask"].to(self.device)
                )
            if self._carried_state is None:
                raise ValueError("prime_states needs at least one batch of warm-up text")
            carried_cell, carried_hidden = self._carried_state
            self.primed_cell_state.copy_(carried_cell.mean(dim=2))
            self.primed_hidden_state.copy_(carried_hidden.mean(dim=2))
        finally:
            self.config.state_mode = mode
            self.reset_states()


class ElmoScalarMix(nn.Module):
    """The task-specific ELMo mix (paper eq. 1): `gamma * sum_j softmax(s)_j * layer_j`.

    Args:
        num_layers: number of layers to mix (L + 1 for ELMo).
        do_layer_norm: normalise each layer first, with the mean and variance over all unmasked elements of
            the whole batch (as bilm-tf and AllenNLP do).
        dropout: dropout on the mixed output.
        initial_scalar_parameters: starting values of `s` (default zeros: uniform weights).
        trainable: learn `s` and `gamma`.
    """

    def __init__(
        self,
        num_layers: int,
        do_layer_norm: bool = False,
        dropout: float = 0.0,
        initial_scalar_parameters: Sequence[float] | None = None,
        initial_gamma: float = 1.0,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        if initial_scalar_parameters is None:
            initial_scalar_parameters = [0.0] * num_layers
        if len(initial_scalar_parameters) != num_layers:
            raise ValueError(
                f"initial_scalar_parameters has {len(initial_scalar_parameters)} values for {num_layers} layers"
            )
        self.scalar_parameters = nn.Parameter(torch.tensor(list(initial_scalar_parameters), dtype=torch.float))
        self.gamma = nn.Parameter(torch.tensor([float(initial_gamma)]))
        self.scalar_parameters.requires_grad_(trainable)
        self.gamma.requires_grad_(trainable)
        self.do_layer_norm = do_layer_norm
        self.dropout = nn.Dropout(dropout)

    def normalized_weights(self) -> torch.Tensor:
        """softmax(s), shape (num_layers,)."""
        return torch.softmax(self.scalar_parameters, dim=0)

    def regularization_loss(self, strength: float = 0.001) -> torch.Tensor:
        """The paper's `λ ‖s‖²` term, which pulls the weights towards uniform; add it to the task loss."""
        return strength * (self.scalar_parameters**2).sum()

    def forward(self, layers: Sequence[torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mix `num_layers` tensors of shape (B, T, H) into one (B, T, H); `mask` (B, T) is required for
        layer norm."""
        if len(layers) != self.scalar_parameters.shape[0]:
            raise ValueError(f"expected {self.scalar_parameters.shape[0]} layers, got {len(layers)}")
        weights = self.normalized_weights()
        if self.do_layer_norm:
            if mask is None:
                raise ValueError("ElmoScalarMix with do_layer_norm needs the (batch, words) mask")
            layers = [_masked_layer_norm(layer, mask) for layer in layers]
        mixed = sum(weight * layer for weight, layer in zip(weights.to(layers[0].dtype), layers, strict=True))
        return self.dropout(self.gamma.to(mixed.dtype) * mixed)


def _masked_layer_norm(layer: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Normalise (B, T, H) with one mean and variance over all unmasked elements of the batch."""
    keep = mask[..., None].to(layer.dtype)
    count = keep.sum() * layer.shape[-1]
    mean = (layer * keep).sum() / count
    variance = (((layer - mean) * keep) ** 2).sum() / count
    return (layer - mean) / torch.sqrt(variance + 1e-12)
