"""ELMo, the bidirectional language model of Peters et al. (2018), "Deep contextualized word representations".

The file follows the paper's data flow: characters → character CNN → highway → projection (the
context-independent token vector) → a stack of bidirectional LSTM layers with projection and clipping →
the L + 1 layers a downstream task mixes with `ElmoScalarMix`; then the language model the biLM was trained as,
and the task heads. The speed machinery (oneDNN products, packing, blocks of steps, the token cache) lives in
`kernels_elmo.py`, each piece behind a small function with its plain PyTorch path; what a model folder holds besides
the math (strict loading of its weights, the remote-code maps, the language model's `vocab.txt`) in `loading_elmo.py`;
the character ids of words and of the sentence markers, and the checks of every input, in `inputs_elmo.py`.

Shapes: B = batch, T = words, S = T + 2 (with the sentence boundaries), C = characters per word,
E = character embedding size, F = character CNN width, P = projection size, D = LSTM cell size,
L = LSTM layers; "2" as a leading dimension indexes the direction (0 forward, 1 backward).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import SequenceClassifierOutput, TokenClassifierOutput
from transformers.utils import ModelOutput

from .configuration_elmo import ElmoConfig
from .inputs_elmo import (
    check_ids,
    check_layers,
    check_sequence_labels,
    check_word_ids,
    checked_windows,
    checked_word_mask,
    sentence_marker_char_ids,
    utf8_char_ids,
)
from .kernels_elmo import (
    TOKEN_CACHE_BUFFERS,
    ElmoLinear,
    PackedSteps,
    at_least_product_rows,
    cached_token_vectors,
    direction_products,
    linear,
    masked_time_loop,
    reversed_rows,
    step_input_contributions,
    token_cache,
    tracing,
)
from .loading_elmo import ElmoWeightsError as ElmoWeightsError  # re-exported: raised by the classes' from_pretrained
from .loading_elmo import LmVocabularyMixin, StrictLoadingMixin, add_remote_code_maps

# The LSTM adds this to the forget gate's pre-activation (not stored in the weights, as in bilm-tf).
FORGET_BIAS = 1.0


def add_sentence_boundaries(
    ids: torch.Tensor, lengths: torch.Tensor, begin: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    """Wrap every sentence as `<S> w_1 … w_n </S>`.

    Args:
        ids: (B, T, …) the words' ids: (B, T, C) character ids, or (B, T) word ids; entries past each
            sentence's length are ignored.
        lengths: (B,) number of words per sentence.
        begin, end: the ids of `<S>` and `</S>`, shaped like one word's entry (`ids.shape[2:]`).

    Returns:
        (B, T + 2, …) ids; positions past `lengths + 2` are zero.
    """
    batch_size, num_words = ids.shape[:2]
    keep = torch.arange(num_words, device=ids.device)[None, :] < lengths[:, None]
    words = ids * keep.view(batch_size, num_words, *(1,) * (ids.dim() - 2))
    edge = words.new_zeros(batch_size, 1, *ids.shape[2:])
    wrapped = torch.cat([edge, words, edge], 1)
    wrapped[:, 0] = begin
    wrapped[torch.arange(batch_size, device=ids.device), lengths + 1] = end
    return wrapped


#: Words per character-CNN product (see `ElmoCharacterCNN.forward`).
CHAR_CNN_CHUNK_WORDS = 256


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
        """(N, C) character ids → (N, F) features, `CHAR_CNN_CHUNK_WORDS` words at a time: the responses of
        the widest filter for N words at once would take N × C × F_w floats (900 MB for a 5,000-word text with
        the Original model). A recorded graph (`kernels_elmo.tracing`) takes all words at once, for every N."""
        if tracing() or char_ids.shape[0] <= CHAR_CNN_CHUNK_WORDS:
            return self._features(char_ids)
        return torch.cat([self._features(chunk) for chunk in char_ids.split(CHAR_CNN_CHUNK_WORDS)])

    def _features(self, char_ids: torch.Tensor) -> torch.Tensor:
        """(n, C) character ids → (n, F) features."""
        embedded = self.embedding(char_ids)
        num_words, num_chars, embedding_dim = embedded.shape
        features = []
        for index, conv in enumerate(self.convolutions):
            width = conv.kernel_size[0]
            # (N, C - w + 1, E, w) windows, flattened like the (out, E, w) kernel.
            windows = embedded.unfold(1, width, 1).reshape(-1, embedding_dim * width)
            kernel = conv.weight.view(conv.out_channels, -1)
            responses = linear(self._onednn_weights, str(index), windows, kernel, conv.bias)
            positions = num_chars - width + 1
            features.append(self.activation(responses.view(num_words, positions, conv.out_channels).amax(dim=1)))
        return torch.cat(features, dim=-1)


class ElmoHighwayLayer(nn.Module):
    """`y = t * relu(x W_transform + b) + (1 - t) * x` with the carry gate `t = sigmoid(x W_carry + b)`."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.carry_gate = nn.Linear(width, width)
        self.transform = nn.Linear(width, width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, F) → (N, F)."""
        padded = at_least_product_rows(features)
        rows = features.shape[0]
        gate = torch.sigmoid(self.carry_gate(padded)[:rows])
        return gate * torch.relu(self.transform(padded)[:rows]) + (1 - gate) * features


class ElmoTokenEmbedder(nn.Module):
    """Character CNN → highway layers → projection: the context-independent token vector (layer 0).

    With `config.word_embedding_dim > 0` (ELMoForManyLangs models) the projection reads
    `[word vector; character features]`: the word's row of a word embedding, then the highway output.
    """

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__()
        self.char_cnn = ElmoCharacterCNN(config)
        self.highway = nn.ModuleList(ElmoHighwayLayer(config.num_filters) for _ in range(config.num_highway_layers))
        self.word_embedding = (
            nn.Embedding(config.word_vocab_size, config.word_embedding_dim) if config.word_embedding_dim else None
        )
        self.projection = ElmoLinear(config.word_embedding_dim + config.num_filters, config.projection_dim)

    def forward(self, char_ids: torch.Tensor, word_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(N, C) character ids, and (N,) word ids with a word embedding → (N, P) token vectors."""
        features = self.char_cnn(char_ids)
        for layer in self.highway:
            features = layer(features)
        if self.word_embedding is not None:
            features = torch.cat([self.word_embedding(word_ids), features], dim=-1)
        return self.projection(features)


class ElmoLstmLayer(GradientCheckpointingLayer):
    """One biLSTM layer: the forward and the backward LSTM with projection (LSTMP), computed together; `step` holds
    the equations. The weights keep the original layout (y = x @ W), stacked over the two directions.

    The sequence arrives packed time-major (see `ElmoBiLstm`), and each step computes only the sentences still
    running. The input contributions `x W_x + b` of many steps are computed at once, in blocks of steps
    (`kernels_elmo.step_input_contributions`); the per-step products use oneDNN where it applies
    (`kernels_elmo.direction_products`).
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
        step_outputs, finished_cells, finished_hiddens = [], [], []
        input_parts = step_input_contributions(inputs, active_rows, self.input_contributions)
        for rows, input_part in zip(active_rows, input_parts, strict=True):
            if rows < cell.shape[1]:  # the shortest sentences end here: their states are final
                finished_cells.append(cell[:, rows:])
                finished_hiddens.append(hidden[:, rows:])
                cell, hidden = cell[:, :rows], hidden[:, :rows]
            cell, hidden = self.step(input_part, cell, hidden)
            step_outputs.append(hidden)
        final_cell = torch.cat([cell, *reversed(finished_cells)], dim=1)
        final_hidden = torch.cat([hidden, *reversed(finished_hiddens)], dim=1)
        return torch.cat(step_outputs, dim=1), final_cell, final_hidden

    def step(
        self, input_part: torch.Tensor, cell: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step of both directions for the n sentences still running, with bilm-tf's gate order i, j, f, o
        (j is the candidate cell):

            i, j, f, o = x W_x + b + h W_h
            c = clip(sigmoid(f + 1) * c + sigmoid(i) * tanh(j))
            h = clip((sigmoid(o) * tanh(c)) W_P)

        Args:
            input_part: (2, n, 4D) this step's `x W_x + b` (`input_contributions`), where b holds the forget
                gate's + 1 (`gate_bias`).
            cell: (2, n, D) and hidden: (2, n, P), the states after the previous step.

        Returns:
            the new cell (2, n, D) and hidden state (2, n, P).
        """
        gates = direction_products(self._onednn_weights, "recurrent", hidden, self.recurrent_weight, input_part)
        i, j, f, o = gates.chunk(4, dim=-1)
        cell = torch.addcmul(torch.sigmoid(f) * cell, torch.sigmoid(i), torch.tanh(j))  # f holds the + 1 (gate_bias)
        if self.cell_clip is not None:
            cell = cell.clamp(-self.cell_clip, self.cell_clip)
        hidden = direction_products(
            self._onednn_weights, "projection", torch.sigmoid(o) * torch.tanh(cell), self.projection_weight
        )
        if self.projection_clip is not None:
            hidden = hidden.clamp(-self.projection_clip, self.projection_clip)
        return cell, hidden

    def gate_bias(self) -> torch.Tensor:
        """b with the forget gate's + 1 (`FORGET_BIAS`) added: (2, 4D). Added to b once, not to f at every step."""
        input_bias, candidate_bias, forget_bias, output_bias = self.bias.chunk(4, dim=-1)
        return torch.cat([input_bias, candidate_bias, forget_bias + FORGET_BIAS, output_bias], dim=-1)

    def input_contributions(self, inputs: torch.Tensor) -> torch.Tensor:
        """`x W_x + b` (b from `gate_bias`) for the (2, n, P) inputs of several steps: (2, n, 4D).

        A plain product, unlike the per-step ones: keeping this weight packed for oneDNN as well would cost
        another copy of it (134 MB for the Original model) for a product that runs on many rows at once."""
        products = torch.baddbmm(self.gate_bias()[:, None, :], at_least_product_rows(inputs), self.input_weight)
        return products[:, : inputs.shape[1]]


class ElmoBiLstm(nn.Module):
    """The stacked biLSTM; from the second layer on, with skip connections, a layer's output is
    `lstm(x) + x` (the recurrence itself uses the LSTM's own hidden state).

    Inside, sentences are sorted longest first and packed time-major (`kernels_elmo.PackedSteps`, like
    `nn.utils.rnn.PackedSequence`): step s holds the sentences longer than s, so no work is spent on padding. The
    backward direction reads every sentence from its own end. Both the biLM (`ElmoModel`) and the language model
    (`ElmoForBidirectionalLM`, with its dropout and packed windows) run it.

    While `torch.compile` or `torch.export` records the model (`kernels_elmo.tracing`), the same layers run on the
    padded batch instead (`padded_forward`), a graph that holds for every batch shape.
    """

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ElmoLstmLayer(config) for _ in range(config.num_lstm_layers))
        self.use_skip_connections = config.use_skip_connections

    def forward(
        self,
        token_vectors: torch.Tensor,
        step_mask: torch.Tensor,
        cell: torch.Tensor,
        hidden: torch.Tensor,
        backward_vectors: torch.Tensor | None = None,
        dropout: nn.Module | None = None,
        unpack: bool = True,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, PackedSteps | None]:
        """Args:
            token_vectors: (B, S, P).
            step_mask: (B, S) bool, true at real positions (a prefix of each row).
            cell: (L, 2, B, D) and hidden: (L, 2, B, P) initial states.
            backward_vectors: (B, S, P) a token stream of the backward direction's own, read from the start of each
                row (the language model's packed windows); by default it reads `token_vectors` from the end.
            dropout: applied to every layer's input (the language model's); skip connections add the input itself.
            unpack: return the layer outputs in sentence order; else packed, as the language model uses them.

        Returns:
            the L layer outputs, each (B, S, 2P) = [forward; backward] at the positions each direction read and
            zero at padding, or with `unpack=False` (2, N, P) packed time-major; the final states (L, 2, B, D),
            (L, 2, B, P); and the packing (which batch position each packed row reads; None from `padded_forward`).
        """
        if tracing() and unpack and backward_vectors is None and dropout is None:  # the biLM's call (`ElmoModel`)
            return self.padded_forward(token_vectors, step_mask, cell, hidden)
        packing = PackedSteps.of(step_mask, backward_reversed=backward_vectors is None)

        def run_layer(index: int, layer: ElmoLstmLayer, layer_input: torch.Tensor) -> tuple[torch.Tensor, ...]:
            order = packing.order
            return layer(layer_input, packing.active_rows, cell[index][:, order], hidden[index][:, order])

        layer_input = packing.pack(token_vectors, backward_vectors)
        outputs, final_cell, final_hidden = self.run_layers(layer_input, run_layer, dropout)
        outputs = [packing.unpack(output) for output in outputs] if unpack else outputs
        return outputs, final_cell[:, :, packing.restore], final_hidden[:, :, packing.restore], packing

    def padded_forward(
        self,
        token_vectors: torch.Tensor,
        step_mask: torch.Tensor,
        cell: torch.Tensor,
        hidden: torch.Tensor,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, None]:
        """`forward` on the padded batch: every sentence at every step, its state kept past its end
        (`kernels_elmo.masked_time_loop`, which runs `ElmoLstmLayer.step`), the backward direction reading each row
        reversed (`kernels_elmo.reversed_rows`). Nothing is sorted or packed, and no Python value comes from a
        tensor's values, so `torch.compile` and `torch.export` record one graph, with the steps as a loop, for every
        batch shape. Same arguments and results as `forward` (layer outputs unpacked), up to float32 rounding."""
        batch_size, num_steps = step_mask.shape

        def run_layer(index: int, layer: ElmoLstmLayer, layer_input: torch.Tensor) -> tuple[torch.Tensor, ...]:
            contributions = layer.input_contributions(layer_input.flatten(1, 2)).unflatten(1, (batch_size, num_steps))
            return masked_time_loop(layer.step, contributions, step_mask, cell[index], hidden[index])

        layer_input = torch.stack([token_vectors, reversed_rows(token_vectors, step_mask)])
        outputs, final_cell, final_hidden = self.run_layers(layer_input, run_layer)
        outputs = [torch.cat([output[0], reversed_rows(output[1], step_mask)], dim=-1) for output in outputs]
        return outputs, final_cell, final_hidden, None

    def run_layers(
        self,
        layer_input: torch.Tensor,
        run_layer: Callable[[int, ElmoLstmLayer, torch.Tensor], tuple[torch.Tensor, ...]],
        dropout: nn.Module | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """The stack, whatever the layout of `layer_input` (packed or padded, (2, …, P)): layer k reads layer k - 1's
        output (through `dropout`), and from the second layer on adds its input to its output (skip connections).
        `run_layer(index, layer, inputs)` runs one layer from its initial state: (output, final cell, final hidden).

        Returns:
            the L layer outputs, laid out like `layer_input`, and the final cells (L, 2, B, D) and hidden states
            (L, 2, B, P) in the order `run_layer` gives them.
        """
        outputs, final_cells, final_hiddens = [], [], []
        for index, layer in enumerate(self.layers):
            output, final_cell, final_hidden = run_layer(
                index, layer, layer_input if dropout is None else dropout(layer_input)
            )
            if self.use_skip_connections and index > 0:
                output = output + layer_input
            outputs.append(output)
            final_cells.append(final_cell)
            final_hiddens.append(final_hidden)
            layer_input = output
        return outputs, torch.stack(final_cells), torch.stack(final_hiddens)


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


class ElmoPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    """What the ELMo classes share: the configuration, bilm-tf's initialisation for training from scratch, strict
    loading (`from_pretrained` of `loading_elmo.StrictLoadingMixin`: a folder's weights must be exactly those of the
    class, else `ElmoWeightsError`) and saving with the remote code."""

    config_class = ElmoConfig
    base_model_prefix = "elmo"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ("ElmoTokenEmbedder", "ElmoLstmLayer")

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, with the remote code where the class is registered for an Auto class
        (`register_for_auto_class`: `import modeling_elmo` does it, and so does loading with `trust_remote_code=True`):
        transformers copies the `.py` files, config.json's `auto_map` names `ElmoConfig` and every model class of
        `AUTO_CLASSES` (a biLM's folder builds a task head, a head's folder the biLM), and its `custom_pipelines`
        the `elmo-embeddings` pipeline. Also what `push_to_hub` uploads."""
        if self._auto_class is not None:
            add_remote_code_maps(self.config, AUTO_CLASSES)
        super().save_pretrained(save_directory, *args, **kwargs)

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
            if module.word_embedding is not None:  # as ELMoForManyLangs starts it (before its row normalisation)
                init.uniform_(module.word_embedding.weight, -0.25, 0.25)
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
    """The ELMo biLM. Input: the tokenizer's `input_ids` (B, T, C) and `attention_mask` (B, T), and its `word_ids`
    (B, T) for a model with a word embedding.

    The initial LSTM state depends on `config.state_mode`: zeros (`"stateless"`), each batch row's final
    state from the previous call (`"stateful"`, the original behaviour; `reset_states()` clears it), or the
    stored `primed_*_state` buffers (`"primed"`, set by `prime_states`).

    Loading (`from_pretrained`, strict) needs every biLM tensor, the `primed_*_state` buffers included; it ignores
    the word softmax of a language model's folder and the mix, encoder and classifier of a task head's folder.
    """

    # A language-model folder (`ElmoForBidirectionalLM`) also holds the word softmax, and a task head's folder its mix,
    # encoder and classifier, which the biLM does not use.
    _keys_to_ignore_on_load_unexpected = (r"^softmax\.", r"^(scalar_mix|encoder|classifier)\.")

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
        word_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> ElmoModelOutput | tuple[torch.Tensor, ...]:
        """Args:
            input_ids: (B, T, C) character ids from `ElmoTokenizer` (0 = no word).
            attention_mask: (B, T), 1 for words, 0 for right padding; derived from `input_ids` if omitted.
            output_hidden_states: also return all L + 1 layers.
            word_ids: (B, T) word ids from `ElmoTokenizer`, required exactly when the model has a word embedding
                (`config.word_embedding_dim > 0`); ignored at padding.

        Returns:
            `ElmoModelOutput` (or a tuple) with `last_hidden_state` (B, T, 2P) and optionally `hidden_states`.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        word_mask = self.word_mask(input_ids, attention_mask)
        check_word_ids(word_ids, word_mask, self.config)
        lengths = word_mask.sum(dim=1)
        char_ids = add_sentence_boundaries(
            input_ids.long(), lengths, *sentence_marker_char_ids(self.config, input_ids.device)
        )
        if word_ids is not None:
            markers = [self.config.begin_of_sentence_word_id, self.config.end_of_sentence_word_id]
            word_ids = add_sentence_boundaries(word_ids.long(), lengths, *torch.tensor(markers, device=word_ids.device))
        step_mask = torch.arange(char_ids.shape[1], device=char_ids.device)[None, :] < (lengths[:, None] + 2)

        token_vectors = self.embed_tokens(char_ids, step_mask, word_ids)
        cell, hidden = self.initial_state(input_ids.shape[0], token_vectors)
        lstm_layers, final_cell, final_hidden, _ = self.bilstm(token_vectors, step_mask, cell, hidden)
        if self.config.state_mode == "stateful":
            self.carry_state(final_cell, final_hidden)

        layers = [torch.cat([token_vectors, token_vectors], dim=-1), *lstm_layers]
        keep = word_mask[..., None]
        layers = [torch.where(keep, layer[:, 1:-1], 0.0) for layer in layers]
        hidden_states = tuple(layers) if output_hidden_states else None
        if not return_dict:
            return tuple(value for value in (layers[-1], hidden_states) if value is not None)
        return ElmoModelOutput(last_hidden_state=layers[-1], hidden_states=hidden_states)

    def embed_tokens(
        self, char_ids: torch.Tensor, mask: torch.Tensor, word_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token vectors (B, S, P) for the (B, S, C) character ids (and (B, S) word ids with a word embedding),
        computed only where `mask` (B, S) is true and exactly zero elsewhere. Words in the token cache
        (`cache_token_embeddings`) are looked up. A recorded graph (`kernels_elmo.tracing`) computes every position
        and zeroes the padding: selecting the real positions, or the cached words, would give shapes that depend
        on the values."""
        if tracing():
            flat_word_ids = None if word_ids is None else word_ids.reshape(-1)
            vectors = self.token_embedder(char_ids.reshape(-1, char_ids.shape[-1]), flat_word_ids)
            return torch.where(mask[..., None], vectors.view(*mask.shape, vectors.shape[-1]), 0.0)
        flat_mask = mask.reshape(-1)
        flat_word_ids = None if word_ids is None else word_ids.reshape(-1)[flat_mask]
        selected = self.token_vectors(char_ids.reshape(-1, char_ids.shape[-1])[flat_mask], flat_word_ids)
        token_vectors = selected.new_zeros(flat_mask.shape[0], selected.shape[-1])
        token_vectors[flat_mask] = selected
        return token_vectors.view(*mask.shape, selected.shape[-1])

    @torch.no_grad()
    def cache_token_embeddings(
        self, words: Iterable[str], tokenizer: PreTrainedTokenizerBase | None = None, batch_size: int = 4096
    ) -> None:
        """Precompute the token vectors (layer 0) of a vocabulary, so that these words skip the character
        CNN, highway and projection; other words still go through them. Results equal the uncached path up to
        float32 rounding (a matrix product's rounding may depend on how many rows it computes at once).

        Args:
            words: the vocabulary (duplicates are fine). The sentence markers are always cached.
            tokenizer: the `ElmoTokenizer` or `ElmoTokenizerFast` whose ids the model receives (its
                `words_to_char_ids` gives every word's row at once); default: UTF-8 bytes as `ElmoTokenizer()`
                encodes them, `utf8_char_ids`; required for a model with character_scheme `"dictionary"`.
            batch_size: words per forward pass while filling the cache.

        With a word embedding, a token vector depends on the word id too: each cache entry is a (character-id
        row, word id) pair, so a word is found only with the id the tokenizer gives it.

        The cache lives in non-persistent buffers (`kernels_elmo.token_cache`): it follows `.to(device/dtype)` but
        is not saved. It is bypassed while gradients flow into the token embedder (fine-tuning); call it again
        after training.
        """
        config = self.config
        if tokenizer is None and config.character_scheme != "utf8_bytes":
            raise ValueError(
                f"cache_token_embeddings needs the model's tokenizer (character_scheme {config.character_scheme!r})"
            )
        device = self.primed_cell_state.device
        words = list(words)
        if tokenizer is None:
            word_char_ids = utf8_char_ids(words, config)
        else:
            word_char_ids = torch.from_numpy(tokenizer.words_to_char_ids(words))
        word_char_ids = word_char_ids.to(device).view(-1, config.max_characters_per_token)
        char_ids = torch.cat([sentence_marker_char_ids(config, device), word_char_ids])
        word_ids = None
        if self.token_embedder.word_embedding is not None:
            markers = [config.begin_of_sentence_word_id, config.end_of_sentence_word_id]
            word_ids = torch.tensor(markers + tokenizer.convert_tokens_to_word_ids(words), device=device)
        for name, tensor in token_cache(char_ids, word_ids, self.token_embedder, batch_size).items():
            self.register_buffer(name, tensor, persistent=False)

    def clear_token_cache(self) -> None:
        """Drop the token cache built by `cache_token_embeddings`."""
        for name in TOKEN_CACHE_BUFFERS:
            self._buffers.pop(name, None)

    def token_vectors(self, char_ids: torch.Tensor, word_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(N, C) character ids (and (N,) word ids with a word embedding) → (N, P) token vectors: the token
        embedder's, looked up in the token cache (`cache_token_embeddings`) where it has them."""
        fine_tuning = torch.is_grad_enabled() and self.token_embedder.projection.weight.requires_grad
        if "token_cache_keys" not in self._buffers or fine_tuning:
            return self.token_embedder(char_ids, word_ids)
        return cached_token_vectors(self._buffers, char_ids, word_ids, self.token_embedder)

    def word_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Check the inputs and return the (B, T) bool word mask (a prefix of every row; `inputs_elmo`)."""
        return checked_word_mask(input_ids, attention_mask, self.config)

    def initial_state(self, batch_size: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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

    @property
    def carried_state(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The (L, 2, B, D) cells and (L, 2, B, P) hidden states carried to the next call, or None."""
        return self._carried_state

    def carry_state(self, final_cell: torch.Tensor, final_hidden: torch.Tensor) -> None:
        """Carry (L, 2, B, D) cells and (L, 2, B, P) hidden states to the next call, detached: a call's final states, or
        a saved `carried_state` restored. Rows beyond this batch keep their older state."""
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

        The batches (tokenizer outputs: `input_ids`, `attention_mask`, and `word_ids` with a word embedding) run in
        order with the state carried per row, as in the original stateful protocol; the primed state is the mean
        over all rows of the final carried state. The result lives in the `primed_*_state` buffers, so it is
        saved with the model. Switch to it with `model.config.state_mode = "primed"`.
        """
        mode = self.config.state_mode
        self.config.state_mode = "stateful"
        self.reset_states()
        try:
            for batch in batches:
                word_ids = batch.get("word_ids")
                self(
                    input_ids=batch["input_ids"].to(self.device),
                    attention_mask=batch["attention_mask"].to(self.device),
                    word_ids=None if word_ids is None else word_ids.to(self.device),
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


# The bidirectional language model: the biLM with its word softmax, for training and perplexity.

#: Target id that `ElmoForBidirectionalLM` ignores (padding, or a word left out of the loss).
LM_IGNORE_INDEX = -100


def log_uniform_probabilities(ids: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Q(k) = log((k + 2) / (k + 1)) / log(V + 1): the log-uniform (Zipfian) distribution over the ids 0 … V - 1 of
    a vocabulary sorted by decreasing frequency (float64)."""
    ids = ids.double()
    return torch.log1p(1.0 / (ids + 1.0)) / math.log(num_classes + 1)


def log_uniform_sample(num_classes: int, num_samples: int, device: torch.device) -> torch.Tensor:
    """`num_samples` ids drawn with replacement from `log_uniform_probabilities` by inverting its CDF:
    P(id < k) = log(k + 1) / log(V + 1), so id = floor(exp(u log(V + 1))) - 1 for u uniform in [0, 1)."""
    uniform = torch.rand(num_samples, device=device, dtype=torch.float64)
    ids = torch.floor(torch.exp(uniform * math.log(num_classes + 1))) - 1
    return ids.long().clamp_(0, num_classes - 1)


class ElmoSoftmax(nn.Module):
    """The word softmax shared by both directions: `logits = h W^T + b`, W (V, P), b (V,), as in the original.

    `full_loss` is the exact cross-entropy (evaluation, small vocabularies). `sampled_loss` estimates it for large
    vocabularies from a few sampled words; see its docstring for the estimator and why it is sound.
    """

    def __init__(self, vocab_size: int, projection_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, projection_dim))
        self.bias = nn.Parameter(torch.empty(vocab_size))

    def full_loss(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, P) top-layer states and (N,) target ids → (N,) negative log-likelihoods under the full softmax,
        computed in chunks of about 2^24 logits (the Original's 793k-word softmax stays within memory)."""
        rows = max(1, 2**24 // self.weight.shape[0])
        losses = [
            nn.functional.cross_entropy(
                nn.functional.linear(chunk, self.weight, self.bias).float(), chunk_targets, reduction="none"
            )
            for chunk, chunk_targets in zip(hidden.split(rows), targets.split(rows), strict=True)
        ]
        return torch.cat(losses) if losses else hidden.new_zeros(0, dtype=torch.float32)

    def sampled_loss(self, hidden: torch.Tensor, targets: torch.Tensor, num_sampled: int) -> torch.Tensor:
        """(N,) estimates of the full softmax's negative log-likelihoods from `num_sampled` negative words.

        The estimator (importance sampling of the partition function, Bengio & Senécal 2008; Jean et al. 2015):
        draw S ids with replacement from the log-uniform distribution Q over the frequency-sorted vocabulary (the
        sampler of the original's `sampled_softmax_loss`), shared by every position of the batch and both
        directions. With `c_u` the count of each distinct sampled id u and o the logits,

            Z_hat = exp(o_y) + sum over u != y of c_u exp(o_u) / (S Q(u)),    loss = log Z_hat - o_y.

        The sum is an unbiased estimate of sum over k != y of exp(o_k) (accidental hits of the target are left out,
        the target enters once with weight 1), so Z_hat is unbiased for the partition function Z and the loss is a
        consistent estimate of the full cross-entropy (its bias, from log's concavity, shrinks like 1/S); its
        gradient is the self-normalised importance-sampling estimate of the full gradient. Unlike TensorFlow's
        `sampled_softmax_loss`, which also down-weights the target by 1/(S Q(y)), the value is itself an estimate
        of the full loss, so `exp(loss)` during training is comparable with the evaluation perplexity. Cost: one
        (N, U) product over the U <= S distinct sampled ids (frequent words drawn many times are computed once,
        their multiplicity enters through `c_u`), instead of the (N, V) product of the full softmax.
        """
        num_classes = self.weight.shape[0]
        ids, counts = torch.unique(log_uniform_sample(num_classes, num_sampled, hidden.device), return_counts=True)
        log_weights = torch.log(counts.double() / (num_sampled * log_uniform_probabilities(ids, num_classes)))
        sampled = nn.functional.linear(hidden, self.weight[ids], self.bias[ids]).float() + log_weights.float()
        sampled = sampled.masked_fill(ids[None, :] == targets[:, None], float("-inf"))
        target_logits = ((hidden * self.weight[targets]).sum(dim=-1) + self.bias[targets]).float()
        return torch.logsumexp(torch.cat([target_logits[:, None], sampled], dim=1), dim=1) - target_logits


@dataclass
class ElmoLanguageModelOutput(ModelOutput):
    """Outputs of [`ElmoForBidirectionalLM`].

    Args:
        loss: ½ (forward_loss + backward_loss), the original's training objective.
        forward_loss, backward_loss: mean negative log-likelihood per predicted word of each direction (the full
            softmax in evaluation; the sampled estimate while training with `lm_num_sampled`). The perplexity of a
            direction is `exp` of its loss.
        num_targets: (2,) the number of predicted words of the forward and the backward direction.
    """

    loss: torch.FloatTensor | None = None
    forward_loss: torch.FloatTensor | None = None
    backward_loss: torch.FloatTensor | None = None
    num_targets: torch.LongTensor | None = None


class ElmoForBidirectionalLM(LmVocabularyMixin, ElmoPreTrainedModel):
    """The ELMo biLM with the word softmax it was trained with: the forward LSTM predicts the next word, the backward
    LSTM the previous one, both through one softmax (`ElmoSoftmax`); loss = ½ (forward + backward cross-entropy).

    Two input layouts:

    - **Sentences** (`input_ids`, `attention_mask`, `labels` from the tokenizer and the vocabulary): each row is one
      sentence; the model wraps it as `<S> w_1 … w_n </S>` (as `ElmoModel` does), the forward direction predicts
      `w_1 … w_n </S>` and the backward direction `w_n … w_1 <S>`. The initial state follows `config.state_mode`,
      so the outputs and final states are those of `ElmoModel` on the same batch.
    - **Packed windows** (`backward_input_ids` given; the original training layout): each row is a window of T + 1
      consecutive tokens of its own endless token stream (sentences wrapped in `<S> … </S>`, back to back);
      `input_ids`/`labels` are the forward stream's window, `backward_input_ids`/`backward_labels` the window of the
      backward stream (the same sentences, each reversed: `</S> w_n … w_1 <S>`). Each direction reads the first T
      tokens of its window and predicts tokens 2 … T + 1, so consecutive windows overlap by one token. The LSTM
      state is carried per row from one call to the next and detached (truncated back-propagation through time);
      `reset_states()` starts new streams.

    `labels` hold word ids of the input tokens (`LM_IGNORE_INDEX` = -100 leaves a word out of the loss; out-of-
    vocabulary words are `<UNK>`); the model shifts them. The vocabulary itself (`vocabulary`, a list of words in
    softmax-row order) is saved as `vocab.txt` by `save_pretrained` and read back by `from_pretrained`
    (`loading_elmo.LmVocabularyMixin`).

    Loading (`from_pretrained`, strict) needs every tensor of the biLM and of the softmax: nothing starts fresh.
    """

    accepts_loss_kwargs = False  # the loss is a per-batch mean; the Trainer scales it for gradient accumulation

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__(config)
        if config.word_embedding_dim:
            raise ValueError("ElmoForBidirectionalLM supports character-only models (word_embedding_dim = 0)")
        if not config.lm_vocab_size:
            raise ValueError("ElmoForBidirectionalLM needs a word vocabulary: set lm_vocab_size and the lm_*_id fields")
        self.elmo = ElmoModel(config)
        self.softmax = ElmoSoftmax(config.lm_vocab_size, config.projection_dim)
        self.dropout = nn.Dropout(config.lm_dropout)
        self.vocabulary: list[str] | None = None
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The softmax as bilm-tf starts it (normal with standard deviation 1 / sqrt(P), zero bias); the biLM as in
        `ElmoPreTrainedModel`."""
        if isinstance(module, ElmoSoftmax):
            init.normal_(module.weight, 0.0, 1.0 / math.sqrt(module.weight.shape[1]))
            init.zeros_(module.bias)
        else:
            super()._init_weights(module)

    def reset_states(self) -> None:
        """Forget the carried LSTM state (packed streams, or `"stateful"` mode)."""
        self.elmo.reset_states()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        backward_input_ids: torch.Tensor | None = None,
        backward_labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ElmoLanguageModelOutput | tuple[torch.Tensor, ...]:
        """Args:
            input_ids: sentences (B, T, C) of character ids from `ElmoTokenizer`, or packed forward windows
                (B, T + 1, C) that already contain the `<S>`/`</S>` tokens.
            attention_mask: (B, T) for sentences, 1 for words, 0 for right padding; not used with windows.
            labels: (B, T) or (B, T + 1) word ids of the input tokens (required).
            backward_input_ids, backward_labels: the backward stream's windows (B, T + 1, C) and word ids (B, T + 1);
                giving them selects the packed layout.

        Returns:
            `ElmoLanguageModelOutput` (or a tuple) with the loss, each direction's loss and the target counts.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if labels is None:
            raise ValueError("ElmoForBidirectionalLM needs labels: the vocabulary ids of the input words")
        if backward_input_ids is None:
            vectors, backward_vectors, targets, backward_targets, step_mask = self._sentence_inputs(
                input_ids, attention_mask, labels
            )
            carry = self.config.state_mode == "stateful"
            cell, hidden = self.elmo.initial_state(input_ids.shape[0], vectors)
        else:
            vectors, backward_vectors, targets, backward_targets, step_mask = self._window_inputs(
                input_ids, attention_mask, labels, backward_input_ids, backward_labels
            )
            carry = True
            cell, hidden = self._stream_state(input_ids.shape[0], vectors)
        outputs, final_cell, final_hidden, packing = self.elmo.bilstm(
            vectors, step_mask, cell, hidden, backward_vectors, dropout=self.dropout, unpack=False
        )
        top = self.dropout(outputs[-1])
        if carry:
            self.elmo.carry_state(final_cell, final_hidden)

        # Each packed row's target: the word after it in its direction's reading order.
        reading_order = packing.forward_index
        all_targets = torch.stack([targets.reshape(-1)[reading_order], backward_targets.reshape(-1)[reading_order]])
        keep = all_targets != LM_IGNORE_INDEX
        num_targets = keep.sum(dim=1)
        losses = self._word_losses(top[keep], all_targets[keep])
        forward_sum, backward_sum = losses.split(num_targets.tolist())
        forward_loss = forward_sum.sum() / num_targets[0].clamp(min=1)
        backward_loss = backward_sum.sum() / num_targets[1].clamp(min=1)
        loss = 0.5 * (forward_loss + backward_loss)
        if not return_dict:
            return loss, forward_loss, backward_loss, num_targets
        return ElmoLanguageModelOutput(
            loss=loss, forward_loss=forward_loss, backward_loss=backward_loss, num_targets=num_targets
        )

    def _sentence_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor
    ) -> tuple[torch.Tensor, None, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The (B, S, P) token vectors of `<S> w_1 … w_n </S>` (S = n + 2 steps; the backward direction reads them
        from the end: no vectors of its own), both directions' targets (B, S) in their own reading order (the last
        step predicts nothing), and the (B, S) step mask."""
        config = self.config
        word_mask = self.elmo.word_mask(input_ids, attention_mask)
        check_ids(labels, "labels", word_mask.shape, "word ids", config.lm_vocab_size, word_mask, LM_IGNORE_INDEX)
        lengths = word_mask.sum(dim=1)
        steps = lengths + 2
        num_steps = int(steps.max()) if steps.numel() else 2
        device = input_ids.device
        char_ids = add_sentence_boundaries(input_ids.long(), lengths, *sentence_marker_char_ids(config, device))
        markers = torch.tensor([config.lm_begin_of_sentence_id, config.lm_end_of_sentence_id], device=device)
        word_ids = add_sentence_boundaries(labels.long(), lengths, *markers)
        char_ids, word_ids = char_ids[:, :num_steps], word_ids[:, :num_steps]
        positions = torch.arange(num_steps, device=device)
        step_mask = positions[None, :] < steps[:, None]
        vectors = self._token_vectors(char_ids, step_mask)
        reverse = (steps[:, None] - 1 - positions[None, :]).clamp(min=0)
        last = positions[None, :] >= steps[:, None] - 1

        def shifted(ids: torch.Tensor) -> torch.Tensor:
            return torch.cat([ids[:, 1:], ids[:, :1]], dim=1).masked_fill(last, LM_IGNORE_INDEX)

        return vectors, None, shifted(word_ids), shifted(word_ids.gather(1, reverse)), step_mask

    def _window_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        labels: torch.Tensor,
        backward_input_ids: torch.Tensor,
        backward_labels: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Both directions' token vectors (B, T, P) and targets (B, T) of packed windows of T + 1 tokens, and the
        (B, T) step mask (all true)."""
        char_ids, full = checked_windows(
            input_ids, attention_mask, labels, backward_input_ids, backward_labels, self.config, LM_IGNORE_INDEX
        )
        batch_size = input_ids.shape[0]
        vectors, backward_vectors = self._token_vectors(char_ids, full).split(batch_size)
        return vectors, backward_vectors, labels[:, 1:].long(), backward_labels[:, 1:].long(), full[:batch_size]

    def _token_vectors(self, char_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, S, P) token vectors of the (B, S, C) character ids where `mask` is true, zero elsewhere. Each distinct
        word of the batch goes through the character CNN once: most words of a batch recur (frequent words, and the
        backward windows hold the forward windows' words), and the CNN costs about as much as the biLSTM."""
        distinct, inverse = torch.unique(char_ids[mask], dim=0, return_inverse=True)
        selected = self.elmo.token_vectors(distinct)[inverse]
        vectors = selected.new_zeros(*mask.shape, selected.shape[-1])
        vectors[mask] = selected
        return vectors

    def _stream_state(self, batch_size: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The carried state of the packed streams, or the configured initial state for new streams."""
        carried = self.elmo.carried_state
        if carried is not None and carried[0].shape[2] == batch_size:
            return carried[0].to(like.dtype), carried[1].to(like.dtype)
        self.elmo.reset_states()
        return self.elmo.initial_state(batch_size, like)

    def _word_losses(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-target negative log-likelihoods: sampled while training with `lm_num_sampled`, full otherwise."""
        num_sampled = self.config.lm_num_sampled
        if self.training and 0 < num_sampled < self.config.lm_vocab_size:
            return self.softmax.sampled_loss(hidden, targets, num_sampled)
        return self.softmax.full_loss(hidden, targets)


# Task heads: the biLM, the task's scalar mix of its layers, a task encoder and a classifier (paper section 3.3).

#: Label id that `ElmoForTokenClassification` leaves out of its loss (transformers' convention).
TOKEN_IGNORE_INDEX = -100


class ElmoTaskEncoder(nn.Module):
    """The task's own contextual encoder over the mixed ELMo vectors: a bidirectional LSTM (`task_encoder="lstm"`,
    `task_encoder_layers` layers of `task_encoder_hidden_size` per direction, `task_encoder_dropout` between them) or
    the identity (`"none"`). Each sequence is encoded over its own words only; the output is zero at padding."""

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__()
        self.lstm: nn.LSTM | None = None
        self.output_size = config.hidden_size
        if config.task_encoder == "lstm":
            num_layers = config.task_encoder_layers
            self.lstm = nn.LSTM(
                config.hidden_size,
                config.task_encoder_hidden_size,
                num_layers=num_layers,
                batch_first=True,
                bidirectional=True,
                dropout=config.task_encoder_dropout if num_layers > 1 else 0.0,
            )
            self.output_size = 2 * config.task_encoder_hidden_size

    def forward(self, vectors: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, 2P) mixed vectors and the (B, T) bool word mask (a prefix of every row) → (B, T, output_size)."""
        if self.lstm is None:
            return torch.where(word_mask[..., None], vectors, 0.0)
        lengths = word_mask.sum(dim=1)
        encoded = vectors.new_zeros(*word_mask.shape, self.output_size)
        rows = (lengths > 0).nonzero(as_tuple=True)[0]  # the LSTM cannot pack sequences without words
        if rows.numel() == 0:
            return encoded
        packed = nn.utils.rnn.pack_padded_sequence(
            vectors[rows], lengths[rows].cpu(), batch_first=True, enforce_sorted=False
        )
        output, _ = nn.utils.rnn.pad_packed_sequence(
            self.lstm(packed)[0], batch_first=True, total_length=word_mask.shape[1]
        )
        return encoded.index_copy(0, rows, output.to(encoded.dtype))


class ElmoSequencePooler(nn.Module):
    """One vector per sequence: the mean or the max (`config.sequence_pooling`) over its own words, never over
    padding; a sequence without words pools to zeros."""

    def __init__(self, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling

    def forward(self, encoded: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) encoded words and the (B, T) bool word mask → (B, H)."""
        keep = word_mask[..., None]
        if self.pooling == "mean":
            return (encoded * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
        if encoded.shape[1] == 0:
            return encoded.new_zeros(encoded.shape[0], encoded.shape[2])
        pooled = encoded.masked_fill(~keep, float("-inf")).amax(dim=1)
        return torch.where(keep.any(dim=1), pooled, 0.0)


class ElmoTaskModel(ElmoPreTrainedModel):
    """What the task heads share (paper section 3.3): the biLM `elmo` (an `ElmoModel`; frozen with
    `config.freeze_elmo`, the default), the task's `scalar_mix` of its L + 1 layers (γ, dropout, optional layer norm;
    its `λ ‖s‖²` is added to the loss), the task `encoder` (`ElmoTaskEncoder`) and the linear `classifier`.

    `forward` runs the biLM and hands its layers to `classify_layers`, which the heads implement; training on cached
    layers of a frozen biLM calls `classify_layers` directly. The biLM runs without autograd while none of its
    parameters requires gradients (`freeze_elmo` sets that when the head is built).

    Loading (`from_pretrained`, strict) needs every biLM tensor; from a folder without the head (a biLM's or a
    language model's) the head starts fresh (`scalar_mix`, `encoder`, `classifier`) and the word softmax is ignored,
    while a folder with only part of the head is refused.
    """

    # A language-model folder also holds the word softmax, which the heads do not use.
    _keys_to_ignore_on_load_unexpected = (r"(^|\.)softmax\.",)
    _fresh_on_load = r"(scalar_mix|encoder|classifier)\."
    accepts_loss_kwargs = False  # the loss is a per-batch mean; the Trainer scales it for gradient accumulation

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.elmo = ElmoModel(config)
        self.scalar_mix = ElmoScalarMix(
            config.num_lstm_layers + 1, do_layer_norm=config.scalar_mix_layer_norm, dropout=config.scalar_mix_dropout
        )
        self.encoder = ElmoTaskEncoder(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(self.encoder.output_size, config.num_labels)
        self.post_init()
        self.elmo.requires_grad_(not config.freeze_elmo)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with the biLM frozen again as `config.freeze_elmo` says (loading
        replaces the parameters, and with them their `requires_grad`)."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.elmo.requires_grad_(not model.config.freeze_elmo)
        return loaded

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """A uniform mix (s = 0) with γ = 1; transformers' defaults for the task LSTM (Xavier, zero bias) and the
        classifier (normal, standard deviation 0.02, zero bias); the biLM as in `ElmoPreTrainedModel`."""
        if isinstance(module, ElmoScalarMix):
            init.zeros_(module.scalar_parameters)
            init.ones_(module.gamma)
        elif isinstance(module, nn.LSTM) or (isinstance(module, nn.Linear) and not isinstance(module, ElmoLinear)):
            PreTrainedModel._init_weights(self, module)
        else:
            super()._init_weights(module)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        word_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ModelOutput | tuple[torch.Tensor, ...]:
        """Args:
            input_ids: (B, T, C) character ids from `ElmoTokenizer`.
            attention_mask: (B, T), 1 for words, 0 for right padding.
            labels: the head's labels (see `classify_layers`); with them the output has the loss.
            word_ids: (B, T) word ids, for a biLM with a word embedding only.
            output_hidden_states: also return the biLM's L + 1 layers, each (B, T, 2P).

        Returns:
            the head's output (or a tuple): `loss` (with labels), `logits` and optionally `hidden_states`.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        word_mask = self.elmo.word_mask(input_ids, attention_mask)
        fine_tuning = any(parameter.requires_grad for parameter in self.elmo.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and fine_tuning):
            layers = self.elmo(
                input_ids, attention_mask=word_mask, word_ids=word_ids, output_hidden_states=True, return_dict=True
            ).hidden_states
        output = self.classify_layers(list(layers), word_mask, labels)
        if output_hidden_states:
            output.hidden_states = layers
        return output if return_dict else output.to_tuple()

    def classify_layers(
        self, layers: Sequence[torch.Tensor], word_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> ModelOutput:
        """Everything after the biLM (mix → encoder → classifier → loss), from its precomputed layers.

        Args:
            layers: the biLM's L + 1 layers, each (B, T, 2P) (`ElmoModel(..., output_hidden_states=True)`).
            word_mask: (B, T) bool (or 0/1), true at words (a prefix of every row).
            labels: the head's labels (see the heads); with them the output has the loss.
        """
        raise NotImplementedError

    def _encode(self, layers: Sequence[torch.Tensor], word_mask: torch.Tensor) -> torch.Tensor:
        """Check the L + 1 (B, T, 2P) layers and the (B, T) word mask; mix the layers and run the task encoder:
        (B, T, encoder.output_size), zero at padding."""
        word_mask = check_layers(layers, word_mask, self.config)
        return self.encoder(self.scalar_mix(layers, word_mask), word_mask)

    def _mix_penalty(self) -> torch.Tensor:
        """The scalar mix's `λ ‖s‖²` (`config.scalar_mix_regularization`)."""
        return self.scalar_mix.regularization_loss(self.config.scalar_mix_regularization)


class ElmoForTokenClassification(ElmoTaskModel):
    """ELMo for labelling every word (tagging, NER): biLM → scalar mix → task encoder → linear classifier per word.
    Predictions line up with the tokenizer's words; `pipeline("token-classification")` gives each word's label with
    its character offsets. Loading a biLM's folder starts the head fresh (see `ElmoTaskModel`)."""

    def classify_layers(
        self, layers: Sequence[torch.Tensor], word_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> TokenClassifierOutput:
        """Mix → encoder → classifier → loss, from the biLM's precomputed layers (see `ElmoTaskModel.classify_layers`);
        `labels` are (B, T) label ids, and -100, like every padding position, is left out of the loss.

        Returns:
            `TokenClassifierOutput` with `logits` (B, T, num_labels) and, with labels, `loss`: the mean cross-entropy
            over the labelled words plus the mix's `λ ‖s‖²`.
        """
        logits = self.classifier(self.dropout(self._encode(layers, word_mask)))
        loss = None
        if labels is not None:
            word_mask = word_mask.bool()
            check_ids(labels, "labels", word_mask.shape, "label ids", self.num_labels, word_mask, TOKEN_IGNORE_INDEX)
            labels = labels.long().masked_fill(~word_mask, TOKEN_IGNORE_INDEX)
            total = nn.functional.cross_entropy(
                logits.flatten(0, 1).float(), labels.flatten(), ignore_index=TOKEN_IGNORE_INDEX, reduction="sum"
            )
            loss = total / (labels != TOKEN_IGNORE_INDEX).sum().clamp(min=1) + self._mix_penalty()
        return TokenClassifierOutput(loss=loss, logits=logits)


class ElmoForSequenceClassification(ElmoTaskModel):
    """ELMo for classifying (or scoring) whole texts: biLM → scalar mix → task encoder → masked mean or max pooling
    over the words (`config.sequence_pooling`) → linear classifier. The loss follows `config.problem_type` as in
    transformers: `"single_label_classification"` (cross-entropy), `"multi_label_classification"` (binary
    cross-entropy per label) or `"regression"` (mean squared error); unset, it is regression for `num_labels = 1`,
    single-label for integer labels, multi-label otherwise. Loading a biLM's folder starts the head fresh (see
    `ElmoTaskModel`)."""

    def __init__(self, config: ElmoConfig) -> None:
        super().__init__(config)
        self.pooler = ElmoSequencePooler(config.sequence_pooling)

    def classify_layers(
        self, layers: Sequence[torch.Tensor], word_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> SequenceClassifierOutput:
        """Mix → encoder → pooling → classifier → loss, from the biLM's precomputed layers (see
        `ElmoTaskModel.classify_layers`); `labels` are (B,) class ids (single-label), (B, num_labels) 0/1 targets
        (multi-label), or (B,) / (B, num_labels) values (regression).

        Returns:
            `SequenceClassifierOutput` with `logits` (B, num_labels) and, with labels, `loss` plus the mix's `λ ‖s‖²`.
        """
        encoded = self._encode(layers, word_mask)
        logits = self.classifier(self.dropout(self.pooler(encoded, word_mask.bool())))
        loss = None if labels is None else self._loss(logits, labels) + self._mix_penalty()
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of (B, num_labels) logits for the configured (or inferred) problem type."""
        problem_type = self.config.problem_type
        if problem_type is None:
            integer = isinstance(labels, torch.Tensor) and not labels.is_floating_point() and labels.dtype != torch.bool
            if self.num_labels == 1:
                problem_type = "regression"
            else:
                problem_type = "single_label_classification" if integer else "multi_label_classification"
        logits = logits.float()
        check_sequence_labels(labels, problem_type, logits.shape[0], self.num_labels)
        if problem_type == "single_label_classification":
            return nn.functional.cross_entropy(logits, labels.long())
        if problem_type == "regression":
            return nn.functional.mse_loss(logits.view(labels.shape), labels.float())
        return nn.functional.binary_cross_entropy_with_logits(logits, labels.float())


#: The Auto class of each model class: `import modeling_elmo` registers them, and the `auto_map` of every folder an
#: ELMo class saves names them all (`ElmoPreTrainedModel.save_pretrained`).
AUTO_CLASSES = {
    "AutoModel": ElmoModel,
    "AutoModelForPreTraining": ElmoForBidirectionalLM,
    "AutoModelForTokenClassification": ElmoForTokenClassification,
    "AutoModelForSequenceClassification": ElmoForSequenceClassification,
}
