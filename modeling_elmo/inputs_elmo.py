"""What the ELMo classes (`modeling_elmo.py`) read: the character ids of the sentence markers and of words (as
`ElmoTokenizer` gives them), and the checks of their inputs, made before any of it reaches torch. Each check raises
a `ValueError` that names the argument, the layout it must have and what it got, rather than an error from deep
inside an indexing or a matrix product. A graph that `torch.compile` or `torch.export` records
(`kernels_elmo.tracing`) checks shapes and dtypes only: the values are not known while it is recorded.

Shapes as in `modeling_elmo.py`: B = batch, T = words, C = characters per word, P = projection size.
It is copied into model folders as remote code next to `modeling_elmo.py`: torch, the standard library and the other
model files through single-dot imports only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .configuration_elmo import ElmoConfig
from .kernels_elmo import tracing


def sentence_marker_char_ids(config: ElmoConfig, device: torch.device) -> torch.Tensor:
    """The (2, C) character ids of the sentence marker words `<S>` and `</S>`: begin-of-word, the marker,
    end-of-word, padding, with the ids of the config's character scheme (`[259, 257, 260, 261, …]` and
    `[259, 258, 260, 261, …]` for UTF-8 bytes)."""
    ids = torch.full((2, config.max_characters_per_token), config.padding_char_id, dtype=torch.long, device=device)
    ids[:, 0] = config.begin_of_word_char_id
    ids[:, 1] = torch.tensor([config.begin_of_sentence_char_id, config.end_of_sentence_char_id], device=device)
    ids[:, 2] = config.end_of_word_char_id
    return ids


def utf8_char_ids(words: Sequence[str], config: ElmoConfig) -> torch.Tensor:
    """The (N, C) character ids of words in the `"utf8_bytes"` scheme, as `ElmoTokenizer()` gives them: begin-of-word,
    the word's UTF-8 bytes + 1 (lone surrogates dropped, cut to C - 2 bytes), end-of-word, padding; the words `<S>`
    and `</S>` are the sentence markers (`sentence_marker_char_ids`)."""
    num_chars = config.max_characters_per_token
    markers = dict(zip(("<S>", "</S>"), sentence_marker_char_ids(config, torch.device("cpu")).tolist(), strict=True))
    rows = []
    for word in words:
        if word in markers:
            rows.append(markers[word])
            continue
        data = word.encode("utf-8", "ignore")[: num_chars - 2]
        row = [config.begin_of_word_char_id, *(byte + 1 for byte in data), config.end_of_word_char_id]
        rows.append(row + [config.padding_char_id] * (num_chars - len(row)))
    return torch.tensor(rows, dtype=torch.long).view(-1, num_chars)


def described_shape(value: object) -> object:
    """What to call a value that should have been a tensor in an error message: its shape, or its type's name."""
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def check_ids(
    ids: torch.Tensor,
    name: str,
    shape: Sequence[int],
    kind: str,
    count: int,
    where: torch.Tensor | None = None,
    ignore_index: int | None = None,
    layout: str | None = None,
) -> None:
    """Raise unless `ids` is an integer tensor of `shape` (described as `layout`, e.g. `"(batch, words)"`) whose
    entries (where the bool mask `where` is true, other than `ignore_index`) are `kind` in [0, count)."""
    if not isinstance(ids, torch.Tensor) or tuple(ids.shape) != tuple(shape):
        expected = tuple(shape) if layout is None else f"{layout} = {tuple(shape)}"
        raise ValueError(f"{name} must be a {expected} tensor of {kind}, got {described_shape(ids)}")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer {kind}, got dtype {ids.dtype}")
    if tracing():
        return
    used = ids if where is None else ids[where]
    used = used if ignore_index is None else used[used != ignore_index]
    if used.numel() and (used.min() < 0 or used.max() >= count):
        allowed = f"[0, {count - 1}]" + ("" if ignore_index is None else f" (or {ignore_index})")
        raise ValueError(f"{name} must lie in {allowed}, got values in [{int(used.min())}, {int(used.max())}]")


def checked_word_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, config: ElmoConfig) -> torch.Tensor:
    """Check the tokenizer's (B, T, C) character ids and (B, T) attention mask (1 for words, 0 for right padding;
    derived from `input_ids` when None); return the (B, T) bool word mask, a prefix of every row."""
    num_chars = config.max_characters_per_token
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 3:
        raise ValueError(
            f"input_ids must be a (batch, words, {num_chars}) tensor of character ids from ElmoTokenizer, "
            f"got {described_shape(input_ids)}"
        )
    if input_ids.shape[-1] != num_chars:
        raise ValueError(
            f"input_ids has {input_ids.shape[-1]} characters per word, the model expects "
            f"max_characters_per_token = {num_chars}"
        )
    check_ids(input_ids, "input_ids", input_ids.shape, "character ids", config.num_characters)
    if attention_mask is None:
        word_mask = (input_ids != 0).any(dim=-1)
    else:
        if tuple(attention_mask.shape) != tuple(input_ids.shape[:2]):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected (batch, words) = "
                f"{tuple(input_ids.shape[:2])}"
            )
        word_mask = attention_mask.bool()
    if tracing():
        return word_mask
    lengths = word_mask.sum(dim=1)
    if not torch.equal(word_mask, torch.arange(word_mask.shape[1], device=word_mask.device) < lengths[:, None]):
        raise ValueError("attention_mask must mark words with 1 and only right padding with 0")
    return word_mask


def check_word_ids(word_ids: torch.Tensor | None, word_mask: torch.Tensor, config: ElmoConfig) -> None:
    """Check that `word_ids` come exactly with a word embedding, shaped (B, T), with ids of its vocabulary."""
    if not config.word_embedding_dim:
        if word_ids is not None:
            raise ValueError("word_ids were given, but this model has no word embedding (word_embedding_dim = 0)")
        return
    if word_ids is None:
        raise ValueError(
            f"this model concatenates a word embedding (word_embedding_dim = {config.word_embedding_dim}): "
            "pass the word_ids its ElmoTokenizer returns"
        )
    vocab_size = config.word_vocab_size
    check_ids(word_ids, "word_ids", word_mask.shape, "word ids", vocab_size, word_mask, layout="(batch, words)")


def checked_windows(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    labels: torch.Tensor,
    backward_input_ids: torch.Tensor,
    backward_labels: torch.Tensor | None,
    config: ElmoConfig,
    ignore_index: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check the language model's packed windows: (B, T + 1, C) character ids of both directions, full (no
    attention mask), with (B, T + 1) word ids of the softmax's vocabulary (or `ignore_index`) as labels. Returns
    what the biLM reads: the (2B, T, C) character ids of the forward then the backward windows without their last
    token, and their (2B, T) mask (all true)."""
    if attention_mask is not None:
        raise ValueError("packed windows (backward_input_ids given) are full: pass no attention_mask")
    if backward_labels is None:
        raise ValueError("packed windows need backward_labels with backward_input_ids")
    if not isinstance(backward_input_ids, torch.Tensor) or backward_input_ids.shape != input_ids.shape:
        found = tuple(backward_input_ids.shape) if isinstance(backward_input_ids, torch.Tensor) else None
        raise ValueError(f"backward_input_ids must be shaped like input_ids {tuple(input_ids.shape)}, got {found}")
    if input_ids.dim() != 3 or input_ids.shape[1] < 2:
        raise ValueError(f"packed windows must be (batch, T + 1 >= 2, characters), got {tuple(input_ids.shape)}")
    char_ids = torch.cat([input_ids[:, :-1], backward_input_ids[:, :-1]]).long()
    full = checked_word_mask(char_ids, torch.ones(char_ids.shape[:2], dtype=torch.bool, device=char_ids.device), config)
    for name, ids in (("labels", labels), ("backward_labels", backward_labels)):
        check_ids(ids, name, input_ids.shape[:2], "word ids", config.lm_vocab_size, None, ignore_index)
    return char_ids, full


def check_layers(layers: Sequence[torch.Tensor], word_mask: torch.Tensor, config: ElmoConfig) -> torch.Tensor:
    """Check the biLM's L + 1 layers (B, T, 2P) and the (B, T) word mask a task head receives; return the mask as
    bool."""
    num_layers, width = config.num_lstm_layers + 1, config.hidden_size
    if not isinstance(word_mask, torch.Tensor) or word_mask.dim() != 2:
        raise ValueError(f"word_mask must be a (batch, words) tensor, got {described_shape(word_mask)}")
    if len(layers) != num_layers:
        raise ValueError(f"expected the biLM's {num_layers} layers (L + 1), got {len(layers)}")
    shape = (*word_mask.shape, width)
    for index, layer in enumerate(layers):
        if not isinstance(layer, torch.Tensor) or tuple(layer.shape) != shape:
            found = described_shape(layer)
            raise ValueError(f"layer {index} must be a (batch, words, 2P) = {shape} tensor, got {found}")
    return word_mask.bool()


def check_sequence_labels(labels: torch.Tensor, problem_type: str, batch_size: int, num_labels: int) -> None:
    """Check a sequence classifier's labels for its problem type: (B,) class ids in [0, num_labels) for
    `"single_label_classification"`, (B, num_labels) targets otherwise, or (B,) values for regression with one
    label."""
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a tensor, got {type(labels).__name__}")
    if problem_type == "single_label_classification":
        check_ids(labels, "labels", (batch_size,), "label ids", num_labels)
        return
    expected = [(batch_size, num_labels)]
    if problem_type == "regression" and num_labels == 1:
        expected.append((batch_size,))
    if tuple(labels.shape) not in expected:
        raise ValueError(f"labels for {problem_type} must be shaped {' or '.join(map(str, expected))}")
