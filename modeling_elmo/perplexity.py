"""Perplexity of an `ElmoForBidirectionalLM` on a text file (`elmo perplexity`), and a unigram baseline.

Each non-blank line is a sentence `w_1 … w_n`; the forward direction predicts `w_1 … w_n </S>` and the backward
direction `w_n … w_1 <S>` (n + 1 predictions each, words outside the vocabulary as `<UNK>`), with the full softmax.
A direction's perplexity is exp of its mean negative log-likelihood per prediction; the average perplexity is exp
of the mean of the two directions' mean losses (the figure the ELMo paper reports, 39.7 for the Original on the
1B Word Benchmark's held-out data). The LSTM state follows the model's `state_mode`: `"stateless"` and `"primed"`
give every sentence the same initial state whatever the batch, `"stateful"` carries each batch row's state to the
next batch (sentences are batched in file order), as the original evaluated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from modeling_elmo.modeling_elmo import LM_IGNORE_INDEX, ElmoForBidirectionalLM
from modeling_elmo.text_files import BEGIN_OF_SENTENCE, END_OF_SENTENCE, LanguageModelError, Vocabulary, read_lines
from modeling_elmo.tokenization_elmo import ElmoTokenizer
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast


@dataclass
class PerplexityResult:
    """Summed negative log-likelihoods (nats) and prediction counts of both directions over a text."""

    sentences: int = 0
    predictions: int = 0
    forward_nll: float = 0.0
    backward_nll: float = 0.0

    @property
    def forward_perplexity(self) -> float:
        return math.exp(self.forward_nll / self.predictions)

    @property
    def backward_perplexity(self) -> float:
        return math.exp(self.backward_nll / self.predictions)

    @property
    def average_perplexity(self) -> float:
        """exp of the mean of the two directions' mean losses."""
        return math.exp((self.forward_nll + self.backward_nll) / (2 * self.predictions))

    def to_dict(self) -> dict[str, float]:
        """The sums and counts with the three perplexities, for JSON."""
        return {
            **asdict(self),
            "forward_perplexity": self.forward_perplexity,
            "backward_perplexity": self.backward_perplexity,
            "average_perplexity": self.average_perplexity,
        }


def file_sentences(path: str | os.PathLike, split: Callable[[str], list[str]]) -> Iterator[list[str]]:
    """The sentences of a text file (blank lines and lines without words are skipped)."""
    for _, text in read_lines(path):
        words = split(text)
        if words:
            yield words


@torch.no_grad()
def evaluate_perplexity(
    model: ElmoForBidirectionalLM,
    sentences: Iterable[Sequence[str]],
    batch_size: int = 32,
    tokenizer: ElmoTokenizer | None = None,
    progress: bool = False,
    total: int | None = None,
) -> PerplexityResult:
    """Forward, backward and average perplexity of `model` on `sentences` (lists of words), in batches of
    `batch_size` consecutive sentences. `tokenizer` gives the words' character ids (an `ElmoTokenizerFast` of the
    model's `max_characters_per_token` by default; the Python `ElmoTokenizer` gives the same ids)."""
    if model.vocabulary is None:
        raise LanguageModelError("the model has no vocabulary (vocab.txt): cannot look up the words' ids")
    if batch_size < 1:
        raise LanguageModelError(f"--batch-size must be a positive integer, got {batch_size}")
    vocabulary = Vocabulary(model.vocabulary, source="the model's vocab.txt")
    if tokenizer is None:
        tokenizer = ElmoTokenizerFast(max_characters_per_token=model.config.max_characters_per_token)
    device = next(model.parameters()).device
    model.eval()
    model.reset_states()
    result = PerplexityResult()
    bar = tqdm(total=total, unit=" sentences", disable=not progress, desc="perplexity", dynamic_ncols=True)

    def evaluate(batch: list[Sequence[str]]) -> None:
        _add_batch(model, tokenizer, vocabulary, batch, device, result)
        bar.update(len(batch))
        bar.set_postfix(average=f"{result.average_perplexity:.2f}", refresh=False)

    try:
        batch: list[Sequence[str]] = []
        for sentence in sentences:
            batch.append(sentence)
            if len(batch) == batch_size:
                evaluate(batch)
                batch = []
        if batch:
            evaluate(batch)
    finally:
        bar.close()
        model.reset_states()
    if not result.sentences:
        raise LanguageModelError("no sentences to evaluate")
    return result


def _add_batch(
    model: ElmoForBidirectionalLM,
    tokenizer: ElmoTokenizer,
    vocabulary: Vocabulary,
    batch: list[Sequence[str]],
    device: torch.device,
    result: PerplexityResult,
) -> None:
    inputs = tokenizer([list(words) for words in batch], is_split_into_words=True, padding=True, return_tensors="pt")
    labels = torch.full(inputs["attention_mask"].shape, LM_IGNORE_INDEX, dtype=torch.long)
    for row, words in enumerate(batch):
        labels[row, : len(words)] = torch.tensor([vocabulary.word_id(word) for word in words])
    outputs = model(
        input_ids=inputs["input_ids"].to(device),
        attention_mask=inputs["attention_mask"].to(device),
        labels=labels.to(device),
    )
    counts = outputs.num_targets.tolist()
    result.sentences += len(batch)
    result.predictions += counts[0]
    result.forward_nll += outputs.forward_loss.item() * counts[0]
    result.backward_nll += outputs.backward_loss.item() * counts[1]


def unigram_perplexity(vocabulary: Vocabulary, sentences: Iterable[Sequence[str]]) -> float:
    """Perplexity of an add-one-smoothed unigram model, estimated from the vocabulary's counts (the training
    corpus's), on the same predictions as `evaluate_perplexity`: every word (or `<UNK>`) and one `</S>` per
    sentence (the backward direction's `<S>` has the same count, so both directions get the same figure)."""
    if vocabulary.counts is None:
        raise LanguageModelError(f"{vocabulary.source} has no counts: a unigram baseline needs `elmo build-vocab`'s")
    end = vocabulary.index[END_OF_SENTENCE]
    begin = vocabulary.index[BEGIN_OF_SENTENCE]
    outcomes = len(vocabulary) - 1  # every entry but <S>, which no forward prediction targets
    total = sum(count for index, count in enumerate(vocabulary.counts) if index != begin) + outcomes
    log_total = math.log(total)
    nll, predictions = 0.0, 0
    for words in sentences:
        for index in [*(vocabulary.word_id(word) for word in words), end]:
            nll += log_total - math.log(vocabulary.counts[index] + 1)
            predictions += 1
    if not predictions:
        raise LanguageModelError("no sentences to evaluate")
    return math.exp(nll / predictions)
