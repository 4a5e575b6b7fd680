"""A sentence's vectors do not depend on the batch it comes in (float32, CPU): alone, in batches of any size, in
any order, with one thread or two, they are bit-identical."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import torch
from transformers import AutoModel

from modeling_elmo import ElmoTokenizer
from modeling_elmo.pretrained import DEFAULT_MODEL

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "and",
    "looked",
    "at",
    "dogs",
    "running",
    "quickly",
    "over",
    "green",
    "hills",
    "while",
    "people",
    "talked",
    ",",
    ".",
]
# Lengths around every row count where a small matrix product could take another code path (1-16 words, with the
# two sentence markers 3-18 rows), and longer ones.
LENGTHS = [*range(1, 19), 25, 40, 63]


@pytest.fixture(scope="module")
def model_and_tokenizer() -> tuple[torch.nn.Module, ElmoTokenizer]:
    return AutoModel.from_pretrained(DEFAULT_MODEL).eval(), ElmoTokenizer.from_pretrained(DEFAULT_MODEL)


@pytest.fixture(params=sorted({1, min(2, torch.get_num_threads())}), ids=lambda threads: f"{threads}-threads")
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _layers(model, tokenizer, sentences: list[list[str]]) -> list[torch.Tensor]:
    """Every sentence's (L + 1, words, 2P) layers, from one batch."""
    encoded = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        layers = torch.stack(model(**encoded, output_hidden_states=True).hidden_states, dim=1)
    return [layers[row, :, : len(sentence)] for row, sentence in enumerate(sentences)]


def test_a_sentence_alone_equals_it_in_any_batch(model_and_tokenizer, threads):
    model, tokenizer = model_and_tokenizer
    generator = random.Random(threads)
    sentences = [[generator.choice(WORDS) for _ in range(length)] for length in LENGTHS]
    alone = [_layers(model, tokenizer, [sentence])[0] for sentence in sentences]
    batched = _layers(model, tokenizer, sentences)
    order = list(range(len(sentences)))
    generator.shuffle(order)
    shuffled = _layers(model, tokenizer, [sentences[index] for index in order])
    pairs = _layers(model, tokenizer, sentences[:2])
    differing = [
        len(sentence)
        for index, sentence in enumerate(sentences)
        if not torch.equal(alone[index], batched[index]) or not torch.equal(alone[index], shuffled[order.index(index)])
    ]
    assert differing == [], f"sentences of these lengths differ alone and in a batch ({threads} threads)"
    assert all(torch.equal(alone[index], pairs[index]) for index in range(2))
