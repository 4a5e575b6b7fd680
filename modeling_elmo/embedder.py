"""`ElmoEmbedder`: NumPy ELMo vectors in a few lines, for people coming from AllenNLP's `ElmoEmbedder` or simple_elmo.

```python
from modeling_elmo import ElmoEmbedder

embedder = ElmoEmbedder()                                       # the shipped English model (no download)
embedder = ElmoEmbedder("elmo-hf")                              # a converted folder, a Hub id or an ElmoModel
embedder.embed_sentence("The play was a hit.")                  # (L + 1, 6, 2P): every layer, as AllenNLP
embedder.embed_sentences(["I saw the play .".split(), "Hi"], layers="top")   # [(4, 2P), (1, 2P)]
embedder.embed_sentences(texts, layers="average", pool="mean")  # one (2P,) vector per text
embedder.embed_file("corpus.txt", "corpus.hdf5", layers="all")  # the `elmo embed` command (resumable)
embedder.embed_file("corpus.txt", "corpus.parquet", layers="top")  # one Parquet row per line
dataset.map(embedder.embed_dataset_batch, batched=True, fn_kwargs={"layers": "top"})   # a datasets.Dataset
```

A sentence is a raw text (split into words by the model's tokenizer) or a list of words (used as given).
`layers`: `"all"` → (L + 1, words, 2P) per sentence (layer 0 is the context-free token layer, as in AllenNLP),
`"top"`, `"average"`, a layer number or `"mix"` (with `mix_weights`, `gamma`) → (words, 2P); `pool="mean"|"max"`
turns each sentence into one vector over its own words ((L + 1, 2P) or (2P,)), a sentence without words into
zeros. The layer choices are those of the `elmo-embeddings` pipeline (`modeling_elmo.pipeline_elmo`).

Batches are formed after sorting the sentences by length (less padding, faster); results come back in input
order. A sentence's vectors can differ in the last float bits with the other sentences of its batch (the
matrix products are blocked differently), never more.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel

from .conversion.folder import transformers_progress_bars_off
from .pipeline_elmo import POOLINGS, pool_words, resolve_layer, select_layers, to_numpy
from .pretrained import DEFAULT_MODEL
from .tokenization_elmo import ElmoTokenizer
from .tokenization_elmo_fast import ElmoTokenizerFast

Sentence = str | Sequence[str]


def resolve_device(device: str | torch.device) -> torch.device:
    """`device` as a `torch.device`, checked to exist here (ValueError naming it otherwise)."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"device {str(device)!r} is not a device name such as cpu, cuda or cuda:1 ({error})") from None
    backend = {"cuda": torch.cuda, "mps": torch.backends.mps}.get(resolved.type)
    if backend is not None and not backend.is_available():
        raise ValueError(f"device {str(device)!r}: this machine's torch has no {resolved.type} device available")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r}: there are {torch.cuda.device_count()} CUDA devices")
    return resolved


class ElmoEmbedder:
    """Embed sentences with an ELMo model into NumPy arrays.

    Args:
        model: a converted model folder, a Hub id, or a loaded `ElmoModel`; default: the English model shipped
            with the package (`modeling_elmo.pretrained.DEFAULT_MODEL`, no download).
        tokenizer: the tokenizer; by default the one saved with the model (a fresh `ElmoTokenizerFast`, which
            gives the words and ids of `ElmoTokenizer` faster, for a model that was not loaded from a folder or
            the Hub).
        device: where to run the model (`"cpu"`, `"cuda"`, `"cuda:1"`, …); default: where the model is.
        batch_size: sentences per batch unless a call says otherwise.
        revision: the Hub revision (branch, tag or commit) to load.
        trust_remote_code: load the model's own code from its folder (only needed without this package).

    The model runs in its configured `state_mode` (deterministic `"stateless"` for converted models). A folder or
    Hub model is loaded strictly (`ElmoPreTrainedModel.from_pretrained`): weights that are truncated, missing,
    unexpected, mis-shaped, not floats or not finite raise `ElmoWeightsError` (an `ElmoError`) before anything is
    embedded or written.
    """

    def __init__(
        self,
        model: str | os.PathLike | PreTrainedModel = DEFAULT_MODEL,
        tokenizer: ElmoTokenizer | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 64,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        device = None if device is None else resolve_device(device)
        if isinstance(model, (str, os.PathLike)):
            source = str(model)
            # A local folder has nothing to download: without the loading bar, a refused one is one line on stderr.
            with transformers_progress_bars_off() if os.path.isdir(source) else contextlib.nullcontext():
                model = AutoModel.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(
                    source, revision=revision, trust_remote_code=trust_remote_code
                )
        elif tokenizer is None:
            tokenizer = (
                AutoTokenizer.from_pretrained(model.name_or_path, trust_remote_code=trust_remote_code)
                if model.name_or_path
                else ElmoTokenizerFast(max_characters_per_token=model.config.max_characters_per_token)
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.model = model.eval() if device is None else model.to(device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    @property
    def num_layers(self) -> int:
        """L + 1: the context-free token layer and the biLSTM layers."""
        return self.model.config.num_lstm_layers + 1

    @property
    def device(self) -> torch.device:
        """The device the model runs on."""
        return self.model.device

    def cache_token_embeddings(self, words: Iterable[str]) -> None:
        """Precompute the context-free token vectors of frequent `words` (`ElmoModel.cache_token_embeddings`): they
        then skip the character CNN; results stay identical."""
        with torch.no_grad():
            self.model.cache_token_embeddings(words, tokenizer=self.tokenizer)

    def split(self, sentence: Sentence) -> list[str]:
        """The words of a sentence: a raw text split by the tokenizer, or a list of words as given."""
        if isinstance(sentence, str):
            return [word for word, _ in self.tokenizer.split_words(sentence)]
        if isinstance(sentence, (list, tuple)) and all(isinstance(word, str) for word in sentence):
            return list(sentence)
        raise TypeError(f"a sentence must be a str or a list of str, got {type(sentence).__name__} ({sentence!r:.60})")

    def iter_embeddings(
        self,
        word_lists: Sequence[Sequence[str]],
        layers: str | int = "all",
        mix_weights: Sequence[float] | None = None,
        gamma: float | None = None,
        pool: str | None = None,
        batch_size: int | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(position, array)` for every word list, longest first (the order they are computed in).

        The lists are sorted by length (stable, longest first) and cut into batches of `batch_size`; each
        array has the layout described in the module docstring.
        """
        layer, weights, gamma = resolve_layer(layers, self.num_layers, mix_weights, gamma)
        if pool not in (None, *POOLINGS):
            raise ValueError(f"pool must be one of {POOLINGS} or None, got {pool!r}")
        batch_size = self.batch_size if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        order = sorted(range(len(word_lists)), key=lambda position: -len(word_lists[position]))
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            arrays = self._embed_batch([word_lists[position] for position in positions], layer, weights, gamma, pool)
            yield from zip(positions, arrays, strict=True)

    def _embed_batch(
        self,
        word_lists: list[Sequence[str]],
        layer: str | int,
        mix_weights: tuple[float, ...] | None,
        gamma: float,
        pool: str | None,
    ) -> list[np.ndarray]:
        """Run one batch through the model; one array per word list, without padding."""
        inputs = self.tokenizer(
            [list(words) for words in word_lists], is_split_into_words=True, padding=True, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            hidden_states = self.model(**inputs, output_hidden_states=True, return_dict=True).hidden_states
            selected = select_layers(hidden_states, layer, mix_weights, gamma)
            arrays = []
            for row, words in enumerate(word_lists):
                vectors = selected[row][..., : len(words), :]
                arrays.append(to_numpy(vectors if pool is None else pool_words(vectors, pool)))
        return arrays

    def embed_sentences(
        self,
        sentences: Iterable[Sentence],
        layers: str | int = "all",
        batch_size: int | None = None,
        pool: str | None = None,
        mix_weights: Sequence[float] | None = None,
        gamma: float | None = None,
    ) -> list[np.ndarray]:
        """One array per sentence, in input order (see the module docstring for `layers` and `pool`)."""
        word_lists = [self.split(sentence) for sentence in sentences]
        results: list[np.ndarray | None] = [None] * len(word_lists)
        for position, array in self.iter_embeddings(word_lists, layers, mix_weights, gamma, pool, batch_size):
            results[position] = array
        return results

    def embed_sentence(
        self,
        sentence: Sentence,
        layers: str | int = "all",
        pool: str | None = None,
        mix_weights: Sequence[float] | None = None,
        gamma: float | None = None,
    ) -> np.ndarray:
        """The array of one sentence: (L + 1, words, 2P) for `layers="all"`, else (words, 2P)."""
        return self.embed_sentences([sentence], layers, pool=pool, mix_weights=mix_weights, gamma=gamma)[0]

    def embed_dataset_batch(
        self,
        batch: Mapping[str, Sequence],
        rank: int | None = None,
        *,
        text_column: str = "text",
        layers: str | int = "top",
        pool: str | None = None,
        mix_weights: Sequence[float] | None = None,
        gamma: float | None = None,
        dtype: str = "float32",
        words_column: str | None = "words",
        vectors_column: str = "vectors",
    ) -> dict[str, list]:
        """Embed a batch of a `datasets.Dataset` column: a function for `Dataset.map(batched=True)`.

        ```python
        dataset = dataset.map(embedder.embed_dataset_batch, batched=True, batch_size=256,
                              fn_kwargs={"text_column": "text", "layers": "top"})
        # one process per GPU: each moves the model to cuda:RANK (start the processes with "spawn")
        dataset = dataset.map(embedder.embed_dataset_batch, batched=True, with_rank=True,
                              num_proc=torch.cuda.device_count(), fn_kwargs={"layers": "top"})
        ```

        `text_column` holds a text (split by the tokenizer) or a list of words per row; the new columns are
        `words_column` (the words; None: not added) and `vectors_column` (one array per row, as `embed_sentences`
        gives, in `dtype`). With `with_rank=True` and CUDA available, the process of rank r runs the model on
        `cuda:r` (modulo the number of devices); without CUDA, the rank changes nothing. The vectors are those of
        `embed_sentences` on the batch's texts (batches sorted by length inside the `Dataset.map` batch).
        """
        if text_column not in batch:
            raise KeyError(f"the batch has no column {text_column!r}; its columns: {sorted(batch)}")
        if rank is not None and torch.cuda.is_available():
            device = torch.device("cuda", rank % torch.cuda.device_count())
            if self.device != device:
                self.model.to(device)
        word_lists = [self.split(sentence) for sentence in batch[text_column]]
        arrays = self.embed_sentences(word_lists, layers, pool=pool, mix_weights=mix_weights, gamma=gamma)
        columns: dict[str, list] = {vectors_column: [array.astype(dtype, copy=False) for array in arrays]}
        if words_column is not None:
            columns[words_column] = word_lists
        return columns

    def embed_file(
        self,
        input_path: str | os.PathLike,
        output_path: str | os.PathLike,
        layers: str | int = "all",
        batch_size: int | None = None,
        use_sentence_keys: bool = False,
        pool: str | None = None,
        tokenized: bool = False,
        dtype: str = "float32",
        **options,
    ) -> Path:
        """Embed a text file (one sentence per line, or `.jsonl`) into HDF5, or Parquet for a `.parquet` output, as
        `elmo embed` does.

        HDF5: one dataset per line, named by its line index (or by the sentence with `use_sentence_keys`), plus
        `sentence_to_index`; Parquet: one row per line (`modeling_elmo.embed_parquet`). Resumable after an
        interruption; under `torchrun` the processes share the work. Further keyword arguments are those of
        `modeling_elmo.embed.EmbedOptions` (e.g. `mix_weights`, `gamma`, `window`, `input_format`,
        `encoding_errors`, `output_format`, `overwrite`, `progress`). Returns the output path.
        """
        from .embed import EmbedOptions, embed_file

        embed_options = EmbedOptions(
            layers=layers,
            batch_size=self.batch_size if batch_size is None else batch_size,
            use_sentence_keys=use_sentence_keys,
            pool=pool,
            tokenized=tokenized,
            dtype=dtype,
            **options,
        )
        return embed_file(self, input_path, output_path, embed_options)
