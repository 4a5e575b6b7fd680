"""Configuration of the ELMo bidirectional language model (Peters et al. 2018)."""

from __future__ import annotations

import math
from typing import Any

from transformers import PreTrainedConfig

ACTIVATIONS = ("relu", "tanh")
STATE_MODES = ("stateless", "stateful", "primed")
CHARACTER_SCHEMES = ("utf8_bytes", "dictionary")
TASK_ENCODERS = ("lstm", "none")
SEQUENCE_POOLINGS = ("mean", "max")


class ElmoError(Exception):
    """The base of every error this package raises for input a user can fix (a file, a field, an option); the
    message names the problem, and the `elmo` command prints it as one line with exit status 2."""


# The special character ids of the "utf8_bytes" scheme (bilm-tf's 256-260, +1 so that 0 means "no word"); they are
# the defaults of the `*_char_id` fields, and the only values that scheme allows.
UTF8_SPECIAL_CHAR_IDS = {
    "begin_of_word_char_id": 259,
    "end_of_word_char_id": 260,
    "padding_char_id": 261,
    "begin_of_sentence_char_id": 257,
    "end_of_sentence_char_id": 258,
}

# The published English models' character CNN: (width, number of filters) pairs, F = 2048.
DEFAULT_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]

# The largest size each field may declare. `validate_elmo` checks them before anything is allocated, so that a hostile
# or mistyped config.json, options.json or ELMoForManyLangs architecture is refused with a message instead of
# exhausting memory. Each is far above every published model (the comments give the largest published value:
# bilm-tf's Original, 4096 / 512, and ELMoForManyLangs' 44 languages).
LIMITS = {
    "char_embedding_dim": 4096,  # 16 (bilm-tf), 50 (ELMoForManyLangs)
    "max_characters_per_token": 1000,  # 50
    "num_characters": 2**21,  # 262 (UTF-8 bytes); 2**21 is above every Unicode code point, for any dictionary
    "num_highway_layers": 16,  # 2
    "projection_dim": 16384,  # 512
    "lstm_cell_dim": 16384,  # 4096
    "num_lstm_layers": 16,  # 2
    "word_embedding_dim": 16384,  # 100 (ELMoForManyLangs)
    "word_vocab_size": 10**7,  # ELMoForManyLangs' word dictionaries
    "lm_vocab_size": 10**7,  # 793,471 (the Original's softmax vocabulary)
    "task_encoder_hidden_size": 16384,  # 200 (the default)
    "task_encoder_layers": 16,  # 2 (the default)
}
# At most this many [width, count] pairs in `char_cnn_filters` (7 published), each with at most this many filters
# (1024 published); every width is at most `max_characters_per_token`.
MAX_FILTER_SIZES = 64
MAX_FILTERS_PER_WIDTH = 16384
# At most this many weights in all (biLM, word embedding, softmax and task encoder): 8 GiB of float32. The Original
# with its softmax has about 500 million.
MAX_PARAMETERS = 2**31

# Where each field is in a bilm-tf options.json: (section, key).
_ORIGINAL_KEYS = {
    "char_embedding_dim": ("char_cnn.embedding", "dim"),
    "char_cnn_filters": ("char_cnn", "filters"),
    "char_cnn_activation": ("char_cnn", "activation"),
    "num_highway_layers": ("char_cnn", "n_highway"),
    "max_characters_per_token": ("char_cnn", "max_characters_per_token"),
    "num_characters": ("char_cnn", "n_characters"),
    "projection_dim": ("lstm", "projection_dim"),
    "lstm_cell_dim": ("lstm", "dim"),
    "num_lstm_layers": ("lstm", "n_layers"),
    "cell_clip": ("lstm", "cell_clip"),
    "projection_clip": ("lstm", "proj_clip"),
    "use_skip_connections": ("lstm", "use_skip_connections"),
}
_REQUIRED_ORIGINAL_FIELDS = (
    "char_cnn_filters",
    "projection_dim",
    "lstm_cell_dim",
    "num_lstm_layers",
    "char_embedding_dim",
)


class ElmoConfig(PreTrainedConfig):
    r"""Configuration of an [`ElmoModel`]: the character CNN, the highway layers, the projection and the
    biLSTM, with the same meaning as the original `options.json` (the Original English model by default).

    Args:
        char_embedding_dim: size E of each character's embedding (`char_cnn.embedding.dim`).
        char_cnn_filters: `[[width, count], ...]` of the character convolutions (`char_cnn.filters`).
        char_cnn_activation: `"relu"` or `"tanh"`, applied after the max over positions (`char_cnn.activation`).
        num_highway_layers: highway layers after the CNN (`char_cnn.n_highway`).
        max_characters_per_token: character ids per word incl. begin/end-of-word
            (`char_cnn.max_characters_per_token`).
        num_characters: rows of the character embedding, incl. the zero padding row (`char_cnn.n_characters`).
        projection_dim: size P of the token vector and of each LSTM direction's output (`lstm.projection_dim`).
        lstm_cell_dim: size D of each LSTM's memory cell (`lstm.dim`).
        num_lstm_layers: stacked LSTM layers per direction (`lstm.n_layers`).
        cell_clip: clip the memory cell to ±value, or `None` (`lstm.cell_clip`).
        projection_clip: clip the projected hidden state to ±value, or `None` (`lstm.proj_clip`).
        use_skip_connections: add each LSTM layer's input to its output from the second layer on
            (`lstm.use_skip_connections`).
        state_mode: `"stateless"` (zero initial state on every call, deterministic), `"stateful"` (the
            original: each batch row's final state is that row's initial state in the next call) or
            `"primed"` (deterministic, from a stored warmed-up initial state, see `ElmoModel.prime_states`).
        character_scheme: what the character ids mean: `"utf8_bytes"` (bilm-tf and AllenNLP: a word's UTF-8
            bytes + 1) or `"dictionary"` (ELMoForManyLangs: ids from a character dictionary + 1, which is saved
            with the tokenizer).
        begin_of_word_char_id, end_of_word_char_id, padding_char_id: the ids that open a word's row, close it and
            fill it after the end; with the sentence markers' ids `begin_of_sentence_char_id` and
            `end_of_sentence_char_id` they make the rows `[begin-of-word, marker, end-of-word, padding…]` of the
            `<S>`/`</S>` words the model adds around every sentence. Fixed for `"utf8_bytes"`; for
            `"dictionary"` the converter takes them from the character dictionary.
        word_embedding_dim: width of a word embedding concatenated before the projection, as
            `[word vector; character features]` (ELMoForManyLangs models with `word_dim > 0`); 0 for none.
        word_vocab_size: rows of that word embedding (0 without one). The word dictionary is saved with the
            tokenizer, which then also returns `word_ids`.
        begin_of_sentence_word_id, end_of_sentence_word_id: the word ids of the `<S>`/`</S>` words (with a word
            embedding only).
        lm_vocab_size: rows of the language-model softmax of `ElmoForBidirectionalLM` (its word vocabulary, saved as
            `vocab.txt` beside the weights); 0 for a model without one.
        lm_begin_of_sentence_id, lm_end_of_sentence_id, lm_unknown_id: the softmax rows of `<S>`, `</S>` and `<UNK>`
            (required with `lm_vocab_size > 0`).
        lm_num_sampled: negative words sampled per training batch for the sampled softmax (8192 in the original);
            0, or a value at least the vocabulary size, trains with the full softmax. Evaluation always uses the
            full softmax.
        lm_dropout: dropout on every LSTM layer's input and on the top layer's output while training the
            language model (0.1 in the original).

        The task heads (`ElmoForTokenClassification`, `ElmoForSequenceClassification`: biLM → scalar mix → task
        encoder → classifier) read the following fields; the biLM ignores them. Their labels are configured as for
        every transformers model (`num_labels`, `id2label`, `label2id`, `problem_type`).

        freeze_elmo: keep the biLM's weights fixed (no gradients; the paper's setting) or fine-tune them with the task.
            Read when the head is built: pass it to `from_pretrained`.
        scalar_mix_regularization: λ of the paper's `λ ‖s‖²` on the mix's layer scalars, added to the loss when
            labels are given (0.001 in the paper); 0 for none.
        scalar_mix_dropout: dropout on the mixed ELMo vectors (0.5 as AllenNLP's `Elmo`).
        scalar_mix_layer_norm: normalise each biLM layer before mixing (the paper's optional layer norm).
        task_encoder: `"lstm"` (a bidirectional LSTM over the mixed vectors) or `"none"` (the classifier reads the
            mixed vectors, or for sequences their pooling, directly).
        task_encoder_hidden_size: hidden size of each direction of the task LSTM.
        task_encoder_layers: stacked layers of the task LSTM.
        task_encoder_dropout: dropout between the task LSTM's layers.
        classifier_dropout: dropout on the classifier's input.
        sequence_pooling: how `ElmoForSequenceClassification` pools the encoded words into one vector: `"mean"` or
            `"max"` over each sequence's own words (never over padding).
    """

    model_type = "elmo"

    def __init__(
        self,
        char_embedding_dim: int = 16,
        char_cnn_filters: list[list[int]] | None = None,
        char_cnn_activation: str = "relu",
        num_highway_layers: int = 2,
        max_characters_per_token: int = 50,
        num_characters: int = 262,
        projection_dim: int = 512,
        lstm_cell_dim: int = 4096,
        num_lstm_layers: int = 2,
        cell_clip: float | None = 3.0,
        projection_clip: float | None = 3.0,
        use_skip_connections: bool = True,
        state_mode: str = "stateless",
        character_scheme: str = "utf8_bytes",
        begin_of_word_char_id: int = UTF8_SPECIAL_CHAR_IDS["begin_of_word_char_id"],
        end_of_word_char_id: int = UTF8_SPECIAL_CHAR_IDS["end_of_word_char_id"],
        padding_char_id: int = UTF8_SPECIAL_CHAR_IDS["padding_char_id"],
        begin_of_sentence_char_id: int = UTF8_SPECIAL_CHAR_IDS["begin_of_sentence_char_id"],
        end_of_sentence_char_id: int = UTF8_SPECIAL_CHAR_IDS["end_of_sentence_char_id"],
        word_embedding_dim: int = 0,
        word_vocab_size: int = 0,
        begin_of_sentence_word_id: int | None = None,
        end_of_sentence_word_id: int | None = None,
        lm_vocab_size: int = 0,
        lm_begin_of_sentence_id: int | None = None,
        lm_end_of_sentence_id: int | None = None,
        lm_unknown_id: int | None = None,
        lm_num_sampled: int = 8192,
        lm_dropout: float = 0.1,
        freeze_elmo: bool = True,
        scalar_mix_regularization: float = 0.001,
        scalar_mix_dropout: float = 0.5,
        scalar_mix_layer_norm: bool = False,
        task_encoder: str = "lstm",
        task_encoder_hidden_size: int = 200,
        task_encoder_layers: int = 2,
        task_encoder_dropout: float = 0.5,
        classifier_dropout: float = 0.5,
        sequence_pooling: str = "mean",
        **kwargs: Any,
    ) -> None:
        self.char_embedding_dim = char_embedding_dim
        filters = DEFAULT_FILTERS if char_cnn_filters is None else char_cnn_filters
        if isinstance(filters, (list, tuple)):
            filters = [list(pair) if isinstance(pair, (list, tuple)) else pair for pair in filters]
        self.char_cnn_filters = filters
        self.char_cnn_activation = char_cnn_activation
        self.num_highway_layers = num_highway_layers
        self.max_characters_per_token = max_characters_per_token
        self.num_characters = num_characters
        self.projection_dim = projection_dim
        self.lstm_cell_dim = lstm_cell_dim
        self.num_lstm_layers = num_lstm_layers
        self.cell_clip = cell_clip
        self.projection_clip = projection_clip
        self.use_skip_connections = use_skip_connections
        self.state_mode = state_mode
        self.character_scheme = character_scheme
        self.begin_of_word_char_id = begin_of_word_char_id
        self.end_of_word_char_id = end_of_word_char_id
        self.padding_char_id = padding_char_id
        self.begin_of_sentence_char_id = begin_of_sentence_char_id
        self.end_of_sentence_char_id = end_of_sentence_char_id
        self.word_embedding_dim = word_embedding_dim
        self.word_vocab_size = word_vocab_size
        self.begin_of_sentence_word_id = begin_of_sentence_word_id
        self.end_of_sentence_word_id = end_of_sentence_word_id
        self.lm_vocab_size = lm_vocab_size
        self.lm_begin_of_sentence_id = lm_begin_of_sentence_id
        self.lm_end_of_sentence_id = lm_end_of_sentence_id
        self.lm_unknown_id = lm_unknown_id
        self.lm_num_sampled = lm_num_sampled
        self.lm_dropout = lm_dropout
        self.freeze_elmo = freeze_elmo
        self.scalar_mix_regularization = scalar_mix_regularization
        self.scalar_mix_dropout = scalar_mix_dropout
        self.scalar_mix_layer_norm = scalar_mix_layer_norm
        self.task_encoder = task_encoder
        self.task_encoder_hidden_size = task_encoder_hidden_size
        self.task_encoder_layers = task_encoder_layers
        self.task_encoder_dropout = task_encoder_dropout
        self.classifier_dropout = classifier_dropout
        self.sequence_pooling = sequence_pooling
        super().__init__(**kwargs)
        self.validate_elmo()

    @property
    def hidden_size(self) -> int:
        """Width of every returned layer: forward and backward directions concatenated, 2P."""
        return 2 * self.projection_dim

    @property
    def num_filters(self) -> int:
        """F, the width of the character CNN's output (sum of the filter counts)."""
        return sum(count for _, count in self.char_cnn_filters)

    def validate_elmo(self) -> None:
        """Raise a `ValueError` naming the first invalid field: a wrong type or value, a size above its limit in
        `LIMITS` (`MAX_FILTER_SIZES`, `MAX_FILTERS_PER_WIDTH`), or more weights in all than `MAX_PARAMETERS`."""
        for name in (
            "char_embedding_dim",
            "max_characters_per_token",
            "num_characters",
            "projection_dim",
            "lstm_cell_dim",
            "num_lstm_layers",
        ):
            _require_int(name, getattr(self, name), minimum=1)
        _require_int("num_highway_layers", self.num_highway_layers, minimum=0)
        if self.max_characters_per_token < 3:
            raise ValueError(
                f"max_characters_per_token must be at least 3 (begin, end and one character), "
                f"got {self.max_characters_per_token}"
            )
        self._validate_filters()
        if self.char_cnn_activation not in ACTIVATIONS:
            raise ValueError(
                f"char_cnn_activation must be one of {ACTIVATIONS}, got {_shown(self.char_cnn_activation)}"
            )
        for name in ("cell_clip", "projection_clip"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf
            ):
                raise ValueError(f"{name} must be a positive finite number or None, got {_shown(value)}")
        if not isinstance(self.use_skip_connections, bool):
            raise ValueError(f"use_skip_connections must be true or false, got {_shown(self.use_skip_connections)}")
        if self.state_mode not in STATE_MODES:
            raise ValueError(f"state_mode must be one of {STATE_MODES}, got {_shown(self.state_mode)}")
        self._validate_special_ids()
        self._validate_language_model()
        self._validate_task_heads()
        parameters = self._declared_parameters()
        if parameters > MAX_PARAMETERS:
            raise ValueError(
                f"the sizes declare {parameters:,} weights, more than the limit of {MAX_PARAMETERS:,} (MAX_PARAMETERS)"
            )

    def _validate_filters(self) -> None:
        """Check `char_cnn_filters`: a non-empty list of at most `MAX_FILTER_SIZES` [width, count] pairs, each
        width at most `max_characters_per_token` and each count at most `MAX_FILTERS_PER_WIDTH`."""
        filters = self.char_cnn_filters
        if (
            not isinstance(filters, (list, tuple))
            or not filters
            or not all(
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)
                for pair in filters
            )
        ):
            raise ValueError(
                "char_cnn_filters must be a non-empty list of [width, count] pairs of positive ints, "
                f"got {_shown(filters)}"
            )
        if len(filters) > MAX_FILTER_SIZES:
            raise ValueError(
                f"char_cnn_filters has {len(filters)} [width, count] pairs, more than the limit of {MAX_FILTER_SIZES}"
            )
        too_wide = [width for width, _ in filters if width > self.max_characters_per_token]
        if too_wide:
            raise ValueError(
                f"char_cnn_filters has widths {_shown(too_wide)} wider than max_characters_per_token "
                f"= {self.max_characters_per_token}"
            )
        too_many = [count for _, count in filters if count > MAX_FILTERS_PER_WIDTH]
        if too_many:
            raise ValueError(
                f"char_cnn_filters has counts {_shown(too_many)}, more than the limit of {MAX_FILTERS_PER_WIDTH} "
                "filters of one width"
            )

    def _declared_parameters(self) -> int:
        """How many weights the sizes declare: the biLM, the word embedding, the softmax and the task encoder
        (computed from the checked sizes, nothing allocated)."""
        embedding_dim, width = self.char_embedding_dim, self.num_filters
        projection_dim, cell_dim = self.projection_dim, self.lstm_cell_dim
        token_embedder = (
            self.num_characters * embedding_dim
            + sum(count * (embedding_dim * kernel + 1) for kernel, count in self.char_cnn_filters)
            + self.num_highway_layers * 2 * (width * width + width)
            + self.word_vocab_size * self.word_embedding_dim
            + projection_dim * (self.word_embedding_dim + width + 1)
        )
        lstm_layer = 2 * (2 * projection_dim * 4 * cell_dim + 4 * cell_dim + cell_dim * projection_dim)
        primed_states = 2 * (cell_dim + projection_dim)
        softmax = self.lm_vocab_size * (projection_dim + 1)
        task_encoder = 0
        if self.task_encoder == "lstm":
            hidden = self.task_encoder_hidden_size
            task_encoder = 2 * 4 * hidden * (2 * projection_dim + hidden + 2)
            task_encoder += (self.task_encoder_layers - 1) * 2 * 4 * hidden * (3 * hidden + 2)
        return token_embedder + self.num_lstm_layers * (lstm_layer + primed_states) + softmax + task_encoder

    def _validate_special_ids(self) -> None:
        """Check the character scheme's special character ids and the optional word embedding's fields."""
        if self.character_scheme not in CHARACTER_SCHEMES:
            raise ValueError(
                f"character_scheme must be one of {CHARACTER_SCHEMES}, got {_shown(self.character_scheme)}"
            )
        for name, utf8_value in UTF8_SPECIAL_CHAR_IDS.items():
            value = getattr(self, name)
            _require_int(name, value, minimum=1)
            if self.character_scheme == "utf8_bytes" and value != utf8_value:
                raise ValueError(f"{name} must be {utf8_value} with character_scheme 'utf8_bytes', got {value}")
            if value >= self.num_characters:
                raise ValueError(f"{name} must be below num_characters = {self.num_characters}, got {value}")
        _require_int("word_embedding_dim", self.word_embedding_dim, minimum=0)
        _require_int("word_vocab_size", self.word_vocab_size, minimum=1 if self.word_embedding_dim else 0)
        word_id_names = ("begin_of_sentence_word_id", "end_of_sentence_word_id")
        if not self.word_embedding_dim:
            if self.word_vocab_size:
                raise ValueError(f"word_vocab_size needs word_embedding_dim > 0, got {self.word_vocab_size}")
            for name in word_id_names:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} needs word_embedding_dim > 0, got {_shown(getattr(self, name))}")
            return
        for name in word_id_names:
            value = getattr(self, name)
            _require_int(name, value, minimum=0)
            if value >= self.word_vocab_size:
                raise ValueError(f"{name} must be below word_vocab_size = {self.word_vocab_size}, got {value}")

    def _validate_language_model(self) -> None:
        """Check the fields of the language-model softmax (`lm_*`)."""
        _require_int("lm_vocab_size", self.lm_vocab_size, minimum=0)
        _require_int("lm_num_sampled", self.lm_num_sampled, minimum=0)
        _require_probability("lm_dropout", self.lm_dropout)
        names = ("lm_begin_of_sentence_id", "lm_end_of_sentence_id", "lm_unknown_id")
        if not self.lm_vocab_size:
            for name in names:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} needs lm_vocab_size > 0, got {_shown(getattr(self, name))}")
            return
        for name in names:
            value = getattr(self, name)
            _require_int(name, value, minimum=0)
            if value >= self.lm_vocab_size:
                raise ValueError(f"{name} must be below lm_vocab_size = {self.lm_vocab_size}, got {value}")
        if len({getattr(self, name) for name in names}) != len(names):
            raise ValueError(
                "lm_begin_of_sentence_id, lm_end_of_sentence_id and lm_unknown_id must differ, got "
                f"{[getattr(self, name) for name in names]}"
            )

    def _validate_task_heads(self) -> None:
        """Check the fields of the task heads (scalar mix, task encoder, classifier)."""
        for name in ("freeze_elmo", "scalar_mix_layer_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {_shown(getattr(self, name))}")
        strength = self.scalar_mix_regularization
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength < math.inf:
            raise ValueError(f"scalar_mix_regularization must be a finite number >= 0, got {_shown(strength)}")
        for name in ("scalar_mix_dropout", "task_encoder_dropout", "classifier_dropout"):
            _require_probability(name, getattr(self, name))
        if self.task_encoder not in TASK_ENCODERS:
            raise ValueError(f"task_encoder must be one of {TASK_ENCODERS}, got {_shown(self.task_encoder)}")
        _require_int("task_encoder_hidden_size", self.task_encoder_hidden_size, minimum=1)
        _require_int("task_encoder_layers", self.task_encoder_layers, minimum=1)
        if self.sequence_pooling not in SEQUENCE_POOLINGS:
            raise ValueError(
                f"sequence_pooling must be one of {SEQUENCE_POOLINGS}, got {_shown(self.sequence_pooling)}"
            )

    @classmethod
    def from_original_options(cls, options: dict[str, Any], **kwargs: Any) -> ElmoConfig:
        """Build a config from a bilm-tf `options.json` dict. Training-only keys are kept, so
        `to_original_options()` gives the same dict back. A `ValueError` names the options key (e.g. `lstm.dim`)
        and the config field it sets."""
        if not isinstance(options, dict):
            raise ValueError(f"options must be a JSON object, got {type(options).__name__}")
        for section in ("lstm", "char_cnn"):
            if not isinstance(options.get(section), dict):
                raise ValueError(f"options is missing the {section!r} section")
        lstm = dict(options["lstm"])
        char_cnn = dict(options["char_cnn"])
        embedding = char_cnn.pop("embedding", None)
        if embedding is None:
            embedding = {}
        if not isinstance(embedding, dict):
            raise ValueError(f'char_cnn.embedding must be a JSON object like {{"dim": 16}}, got {_shown(embedding)}')
        embedding = dict(embedding)
        sections = {"lstm": lstm, "char_cnn": char_cnn, "char_cnn.embedding": embedding}
        values: dict[str, Any] = {}
        for field, (section, key) in _ORIGINAL_KEYS.items():
            if key in sections[section]:
                values[field] = sections[section].pop(key)
            elif field in _REQUIRED_ORIGINAL_FIELDS:
                raise ValueError(f"options is missing {section}.{key}")
        values.setdefault("cell_clip", None)
        values.setdefault("projection_clip", None)
        values.setdefault("use_skip_connections", False)
        values.setdefault("num_highway_layers", 0)
        # The original training options say 261 characters; inference adds the zero padding row.
        if type(values.get("num_characters")) is int and values["num_characters"] == 261:
            values["num_characters"] = 262
        extra = {k: v for k, v in options.items() if k not in ("lstm", "char_cnn")}
        original_extra = {"lstm": lstm, "char_cnn": char_cnn, "char_embedding": embedding, "top": extra}
        original_extra["n_characters_in_options"] = options["char_cnn"].get("n_characters")
        try:
            return cls(**values, original_options_extra=original_extra, **kwargs)
        except ValueError as error:
            field = str(error).split(" ", 1)[0]
            if field in _ORIGINAL_KEYS:
                section, key = _ORIGINAL_KEYS[field]
                raise ValueError(f"{section}.{key}: {error}") from error
            raise

    def to_original_options(self) -> dict[str, Any]:
        """The bilm-tf `options.json` dict for this config (the inverse of `from_original_options`)."""
        if self.character_scheme != "utf8_bytes" or self.word_embedding_dim:
            raise ValueError(
                "a model with character_scheme 'dictionary' or a word embedding (ELMoForManyLangs) has no bilm-tf "
                "options: bilm-tf reads UTF-8 bytes and has no word embedding"
            )
        extra = getattr(self, "original_options_extra", None) or {}
        lstm = dict(extra.get("lstm", {}))
        lstm.update(
            dim=self.lstm_cell_dim,
            projection_dim=self.projection_dim,
            n_layers=self.num_lstm_layers,
            cell_clip=self.cell_clip,
            proj_clip=self.projection_clip,
            use_skip_connections=self.use_skip_connections,
        )
        char_cnn = dict(extra.get("char_cnn", {}))
        n_characters = extra.get("n_characters_in_options", self.num_characters)
        char_cnn.update(
            activation=self.char_cnn_activation,
            embedding={**extra.get("char_embedding", {}), "dim": self.char_embedding_dim},
            filters=[list(pair) for pair in self.char_cnn_filters],
            n_highway=self.num_highway_layers,
            n_characters=self.num_characters if n_characters is None else n_characters,
            max_characters_per_token=self.max_characters_per_token,
        )
        return {**extra.get("top", {}), "lstm": lstm, "char_cnn": char_cnn}

    @classmethod
    def register_for_auto_class(cls, auto_class: str = "AutoConfig") -> None:
        """transformers' registration for `auto_class` (a saved config then carries its remote code), plus ELMo's
        `token-classification` pipeline (`pipeline_elmo.register_token_classification_pipeline`).

        Where this package is not installed, transformers calls this when it loads a folder's remote config
        (`trust_remote_code=True`), and it picks a task's pipeline class right after loading the config, before
        any other code of the folder runs: this is where a Hub user's `pipeline("token-classification")` learns
        about ELMo. Importing this module registers nothing."""
        super().register_for_auto_class(auto_class)
        from .pipeline_elmo import register_token_classification_pipeline

        register_token_classification_pipeline()


def _require_int(name: str, value: Any, minimum: int) -> None:
    """Check that field `name` is an integer >= `minimum` and at most its limit in `LIMITS` (if it has one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {_shown(value)}")
    if name in LIMITS and value > LIMITS[name]:
        raise ValueError(f"{name} is {value}, more than the limit of {LIMITS[name]}")


def _require_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {_shown(value)}")


def _shown(value: Any, width: int = 80) -> str:
    """`repr(value)`, shortened to about `width` characters (a field may hold any JSON value, however large)."""
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 5]}...{text[-2:]}"

