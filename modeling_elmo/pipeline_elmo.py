"""The `elmo-embeddings` pipeline: words, their character offsets and ELMo vectors for each text.

```python
from transformers import pipeline

embed = pipeline(model="elmo-hf", trust_remote_code=True)        # the folder's own task: elmo-embeddings
result = embed("The play was a hit.", layer="top", pooling="mean")
result["words"]            # ['The', 'play', 'was', 'a', 'hit', '.']
result["offsets"]          # [(0, 3), (4, 8), ...]: text[start:end] == word
result["vectors"]          # (6, 2P) float32 array; (6, L + 1, 2P) for layer="all"
result["sentence_vector"]  # (2P,) (or (L + 1, 2P) for layer="all"): only with pooling
```

Layers (`layer=`): `"all"` (every word gets its L + 1 layers: the context-free token layer, then each biLSTM
layer), `"top"` (the last biLSTM layer), `"average"` (the mean of the L + 1 layers), an int `0 … L`, or
`"mix"`: the paper's `gamma * sum_j w_j * layer_j` with `mix_weights` (L + 1 values, used as given: pass
`ElmoScalarMix.normalized_weights()` of a trained mix) and `gamma` (default 1.0).

Sentence vectors (`pooling=`): `"mean"` or `"max"` over the text's own words only, never over batch padding.
A text without words gets zeros.

Inputs: one text or a list of texts (a batch; use `batch_size=` for speed: results are per text, without
padding). Already split words: `is_split_into_words=True` with a list of words (one text) or a list of such
lists; offsets then refer to the words joined by single spaces.

`pipeline("token-classification")` (alias `"ner"`) on an ELMo token classifier builds an
`ElmoTokenClassificationPipeline`: one prediction per word of the tokenizer, with its character offsets
(see `register_token_classification_pipeline` for how it is selected).

This module is copied into converted model folders as remote code, so it imports only torch, numpy and
transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import Pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.token_classification import AggregationStrategy, TokenClassificationPipeline

#: Names accepted by `layer` besides a layer number.
NAMED_LAYERS = ("all", "top", "average", "mix")
POOLINGS = ("mean", "max")
TOKEN_CLASSIFICATION_TASK = "token-classification"


def resolve_layer(
    layer: str | int, num_layers: int, mix_weights: Sequence[float] | None = None, gamma: float | None = None
) -> tuple[str | int, tuple[float, ...] | None, float]:
    """Check a layer choice for a model with `num_layers` layers (L + 1) and return `(layer, mix_weights, gamma)`.

    `layer` is one of `NAMED_LAYERS` or a layer number `0 … num_layers - 1` (also as a string of digits);
    `mix_weights` (one per layer) and `gamma` (default 1.0) belong to `layer="mix"` only.
    """
    if isinstance(layer, str) and layer.strip().isdigit():
        layer = int(layer)
    if isinstance(layer, bool) or not isinstance(layer, (str, int, np.integer)):
        raise TypeError(f"layer must be one of {NAMED_LAYERS} or a layer number, got {layer!r}")
    if isinstance(layer, str) and layer not in NAMED_LAYERS:
        raise ValueError(f"layer must be one of {NAMED_LAYERS} or a layer number 0-{num_layers - 1}, got {layer!r}")
    if not isinstance(layer, str):
        layer = int(layer)
        if not 0 <= layer < num_layers:
            raise ValueError(f"layer {layer} does not exist: this model has layers 0-{num_layers - 1}")
    if layer != "mix":
        if mix_weights is not None or gamma is not None:
            raise ValueError(f"mix_weights and gamma only apply to layer='mix', not to layer={layer!r}")
        return layer, None, 1.0
    if mix_weights is None:
        raise ValueError(f"layer='mix' needs mix_weights: {num_layers} numbers, one per layer")
    weights = tuple(float(weight) for weight in mix_weights)
    if len(weights) != num_layers:
        raise ValueError(f"mix_weights has {len(weights)} values, this model has {num_layers} layers")
    gamma = 1.0 if gamma is None else float(gamma)
    if not all(np.isfinite([*weights, gamma])):
        raise ValueError(f"mix_weights and gamma must be finite numbers, got {weights} and {gamma}")
    return layer, weights, gamma


def select_layers(
    hidden_states: Sequence[torch.Tensor],
    layer: str | int,
    mix_weights: Sequence[float] | None = None,
    gamma: float = 1.0,
) -> torch.Tensor:
    """Combine the model's L + 1 `hidden_states`, each (B, T, 2P), as `layer` says (see `resolve_layer`).

    Returns (B, L + 1, T, 2P) for `"all"`, else (B, T, 2P). Every choice works element by element, so a
    word's result does not depend on the padding of its batch.
    """
    if layer == "all":
        return torch.stack(tuple(hidden_states), dim=1)
    if layer == "top":
        return hidden_states[-1]
    if layer == "average":
        return torch.stack(tuple(hidden_states)).mean(dim=0)
    if layer == "mix":
        mixed = sum(weight * state for weight, state in zip(mix_weights, hidden_states, strict=True))
        return gamma * mixed
    return hidden_states[layer]


def pool_words(vectors: torch.Tensor, pooling: str) -> torch.Tensor:
    """Mean or max over the word axis (-2) of one text's vectors (…, words, 2P), which must hold that text's
    words only; no words give zeros."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if vectors.shape[-2] == 0:
        return vectors.new_zeros(*vectors.shape[:-2], vectors.shape[-1])
    return vectors.mean(dim=-2) if pooling == "mean" else vectors.amax(dim=-2)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A CPU NumPy copy (bfloat16, which NumPy lacks, becomes float32)."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _is_word_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)


class ElmoEmbeddingsPipeline(Pipeline):
    """Words, offsets and chosen ELMo layers for each input text; see the module docstring for the options."""

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Embed one text (→ one dict) or a list of texts (→ a list of dicts). With `is_split_into_words=True`,
        one list of words is one text."""
        if kwargs.get("is_split_into_words") and _is_word_list(inputs):
            return super().__call__([list(inputs)], **kwargs)[0]
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self,
        layer: str | int | None = None,
        mix_weights: Sequence[float] | None = None,
        gamma: float | None = None,
        pooling: str | None = None,
        is_split_into_words: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if kwargs:
            raise TypeError(f"the elmo-embeddings pipeline got unexpected arguments {sorted(kwargs)}")
        preprocess: dict[str, Any] = {}
        forward: dict[str, Any] = {}
        postprocess: dict[str, Any] = {}
        if is_split_into_words is not None:
            preprocess["is_split_into_words"] = bool(is_split_into_words)
        if layer is not None or mix_weights is not None or gamma is not None:
            num_layers = self.model.config.num_lstm_layers + 1
            forward["selection"] = resolve_layer("all" if layer is None else layer, num_layers, mix_weights, gamma)
        if pooling is not None:
            if pooling not in POOLINGS:
                raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
            postprocess["pooling"] = pooling
        return preprocess, forward, postprocess

    def preprocess(self, inputs: str | Sequence[str], is_split_into_words: bool = False) -> dict[str, Any]:
        if is_split_into_words and not _is_word_list(inputs):
            raise TypeError(f"with is_split_into_words=True each text must be a list of words, got {inputs!r:.60}")
        if not is_split_into_words and not isinstance(inputs, str):
            raise TypeError(
                f"each text must be a str, got {type(inputs).__name__} (pass is_split_into_words=True for words)"
            )
        encoding = self.tokenizer(
            list(inputs) if is_split_into_words else inputs,
            is_split_into_words=is_split_into_words,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        words = [
            inputs[index] if is_split_into_words else inputs[start:end]
            for index, (start, end) in enumerate(encoding["offset_mapping"][0].tolist())
        ]
        model_inputs = {name: encoding[name] for name in self.tokenizer.model_input_names if name in encoding}
        return {**model_inputs, "offset_mapping": encoding["offset_mapping"], "words": [words]}

    def _forward(self, model_inputs: dict[str, Any], selection: tuple = ("all", None, 1.0)) -> dict[str, Any]:
        inputs = {name: model_inputs[name] for name in self.tokenizer.model_input_names if name in model_inputs}
        outputs = self.model(**inputs, output_hidden_states=True, return_dict=True)
        return {
            "vectors": select_layers(outputs.hidden_states, *selection),
            "attention_mask": model_inputs["attention_mask"],
            "offset_mapping": model_inputs["offset_mapping"],
            "words": model_inputs["words"],
        }

    def postprocess(self, model_outputs: dict[str, Any], pooling: str | None = None) -> dict[str, Any]:
        num_words = int(model_outputs["attention_mask"][0].sum())
        vectors = model_outputs["vectors"][0][..., :num_words, :]  # (T, 2P), or (L + 1, T, 2P) for layer="all"
        result = {
            "words": list(model_outputs["words"][0]),
            "offsets": [tuple(pair) for pair in model_outputs["offset_mapping"][0][:num_words].tolist()],
            "vectors": to_numpy(vectors.transpose(0, 1) if vectors.dim() == 3 else vectors),
        }
        if pooling is not None:
            result["sentence_vector"] = to_numpy(pool_words(vectors, pooling))
        return result


class ElmoTokenClassificationPipeline(TokenClassificationPipeline):
    """transformers' token-classification pipeline for ELMo, whose tokenizer gives whole words as (words, 50)
    character ids instead of subword ids. Every word of a text gets one prediction:
    `{"entity", "score", "index", "word", "start", "end"}`, `text[start:end] == word`, `index` the word's position.

    As in transformers, predictions labelled `"O"` are left out unless `ignore_labels=[]` is passed. With
    `aggregation_strategy="simple"` (or `"first"`, `"average"`, `"max"`, which equal it for whole words) adjacent
    words with the same entity (`B-X` then `I-X`…) merge into `{"entity_group", "score", "word", "start", "end"}`,
    the score being the words' mean. `is_split_into_words=True` takes lists of words; offsets then refer to the
    words joined by `delimiter` (default a space).

    Built for any other model, the class gives transformers' own `TokenClassificationPipeline`, so registering it
    for the task changes nothing for other models.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> TokenClassificationPipeline:
        model = kwargs.get("model", args[0] if args else None)
        if getattr(getattr(model, "config", None), "model_type", None) != "elmo":
            return TokenClassificationPipeline(*args, **kwargs)
        return super().__new__(cls)

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Tag one text (→ a list of dicts) or a list of texts (→ a list of such lists). With
        `is_split_into_words=True`, one list of words is one text."""
        if kwargs.get("is_split_into_words") and _is_word_list(inputs):
            return super().__call__([list(inputs)], **kwargs)[0]
        return super().__call__(inputs, **kwargs)

    def check_model_type(self, supported_models: list[str] | dict) -> None:
        """Log an error unless the model is an ELMo token classifier (transformers' list names its own models only)."""
        super().check_model_type(["ElmoForTokenClassification"])

    def _sanitize_parameters(
        self,
        ignore_labels: list[str] | None = None,
        aggregation_strategy: str | AggregationStrategy | None = None,
        offset_mapping: Any = None,
        is_split_into_words: bool = False,
        stride: int | None = None,
        delimiter: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        if offset_mapping is not None:
            raise ValueError("the ELMo pipeline takes each word's offsets from its tokenizer: pass no offset_mapping")
        if stride is not None:
            raise ValueError("ELMo reads every text whole (the biLM has no length limit): pass no stride")
        preprocess = {"is_split_into_words": bool(is_split_into_words), "delimiter": delimiter}
        postprocess: dict[str, Any] = {}
        if aggregation_strategy is not None:
            if isinstance(aggregation_strategy, str):
                names = [strategy.value for strategy in AggregationStrategy]
                if aggregation_strategy.lower() not in names:
                    raise ValueError(f"aggregation_strategy must be one of {names}, got {aggregation_strategy!r}")
                aggregation_strategy = AggregationStrategy(aggregation_strategy.lower())
            postprocess["aggregation_strategy"] = aggregation_strategy
        if ignore_labels is not None:
            postprocess["ignore_labels"] = ignore_labels
        return preprocess, {}, postprocess

    def preprocess(
        self, sentence: str | list[str], is_split_into_words: bool = False, delimiter: str | None = None
    ) -> Any:
        if is_split_into_words:
            if not _is_word_list(sentence):
                raise ValueError(
                    f"with is_split_into_words=True each text must be a list of words, got {sentence!r:.60}"
                )
            delimiter = " " if delimiter is None else delimiter
            encoding = self.tokenizer(list(sentence), is_split_into_words=True, return_tensors="pt")
            starts = np.cumsum([0] + [len(word) + len(delimiter) for word in sentence[:-1]]).tolist()
            offsets = torch.tensor([[start, start + len(word)] for start, word in zip(starts, sentence, strict=True)])
            offsets = offsets.view(1, len(sentence), 2)
            text = delimiter.join(sentence)
        else:
            if not isinstance(sentence, str):
                raise ValueError(
                    f"each text must be a str, got {type(sentence).__name__} (pass is_split_into_words=True for words)"
                )
            encoding = self.tokenizer(sentence, return_offsets_mapping=True, return_tensors="pt")
            offsets, text = encoding["offset_mapping"], sentence
        model_inputs = {name: encoding[name] for name in self.tokenizer.model_input_names if name in encoding}
        yield {**model_inputs, "offset_mapping": offsets, "sentence": text, "is_last": True}

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        inputs = {name: model_inputs[name] for name in self.tokenizer.model_input_names if name in model_inputs}
        return {
            "logits": self.model(**inputs, return_dict=True).logits,
            "attention_mask": model_inputs["attention_mask"],
            "offset_mapping": model_inputs["offset_mapping"],
            "sentence": model_inputs["sentence"],
            "is_last": model_inputs["is_last"],
        }

    def postprocess(
        self,
        all_outputs: list[dict[str, Any]],
        aggregation_strategy: AggregationStrategy = AggregationStrategy.NONE,
        ignore_labels: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        ignore_labels = ["O"] if ignore_labels is None else ignore_labels
        (outputs,) = all_outputs  # one chunk per text
        num_words = int(outputs["attention_mask"][0].sum())
        scores = torch.softmax(outputs["logits"][0, :num_words].float(), dim=-1)
        sentence = outputs["sentence"]
        entities = []
        for index, ((start, end), word_scores) in enumerate(
            zip(outputs["offset_mapping"][0, :num_words].tolist(), scores, strict=True)
        ):
            label = int(word_scores.argmax())
            entities.append(
                {
                    "entity": self.model.config.id2label[label],
                    "score": float(word_scores[label]),
                    "index": index,
                    "word": sentence[start:end],
                    "start": start,
                    "end": end,
                }
            )
        if aggregation_strategy != AggregationStrategy.NONE:
            entities = [
                {**group, "score": float(group["score"]), "word": sentence[group["start"] : group["end"]]}
                for group in self.group_entities(entities)
            ]
        return [
            entity
            for entity in entities
            if entity.get("entity") not in ignore_labels and entity.get("entity_group") not in ignore_labels
        ]


def register_token_classification_pipeline() -> None:
    """Make `pipeline("token-classification")` (and `"ner"`) build `ElmoTokenClassificationPipeline`.

    transformers picks a task's pipeline class from its registry, or from the `custom_pipelines` of the model's
    config.json; the latter demands `trust_remote_code=True` even where this package is installed. So the registry
    entry of the task is pointed at this class instead, keeping its model classes and default model: the plain
    `pipeline("token-classification", model=folder)` works, and every other model still gets transformers' own
    pipeline (see `ElmoTokenClassificationPipeline.__new__`). Called where the pipelines are registered: by
    `import modeling_elmo`, and without the package by `ElmoConfig.register_for_auto_class`, which transformers
    calls when it loads a folder's remote config, before it picks the pipeline class.
    """
    entry = PIPELINE_REGISTRY.supported_tasks[TOKEN_CLASSIFICATION_TASK]
    PIPELINE_REGISTRY.supported_tasks[TOKEN_CLASSIFICATION_TASK] = {**entry, "impl": ElmoTokenClassificationPipeline}
