"""`elmo evaluate`: the paper's stage 2 on small labelled data that ships in package registries.

The biLM stays frozen; its L + 1 layers are computed **once** per sentence set and kept in memory (float16), and
every task model trains on those cached layers. Each task learns its own softmax-weighted mix of the layers with
a scale γ (`ElmoScalarMix`, regularised towards uniform weights by λ‖s‖²), as in the paper. Adam trains the
mix's s and γ at their own, larger learning rate (`mix_learning_rate`, no weight decay; `parameter_groups`): at the
task model's rate the mix weights stayed at uniform in every run, whatever λ was. The paper's optional layer norm
before the mix (`EvaluationSizes.layer_norm`, see `head_config`) is off by default: it changed no POS tagger result
and cost the BBC mixes several points. Both settings are recorded in results.md.

Three tasks probe the paper's analysis (its lower biLSTM layer carries syntax, its top layer word sense, and a
learned mix of all layers beats the top layer alone):

- **pos**: Brown, mapped to the 12 universal tags (`modeling_elmo.evaluation_data`). Training sentences are drawn
  (seeded) from the Brown files the language model was trained on; the test set is the sentences of the held-out
  Brown test files (positions ≡ 9 mod 10), which the shipped model never saw. A linear probe (softmax regression)
  on each frozen layer and on a learned mix (the paper's Table 6 protocol), and a BiLSTM tagger on static
  vectors (the context-free layer 0; PPMI-SVD word vectors from the pretraining text, see `ppmi_svd_vectors`)
  against the same tagger on the ELMo mix.
- **wsd**: WordNet 3.0's example sentences, each labelled with the sense of the synset whose lemma it contains.
  Only lemmas with examples for two or more senses are used; of every sense with two or more examples one
  example is held out for testing (`wsd_split`). The paper's Table 5 protocol: sense centroids (mean vector of
  the target word over the training examples of each sense), the nearest centroid by cosine at test time, the
  most frequent sense (SemCor counts, `cntlist.rev`) for a lemma without training examples; per layer, against
  the most-frequent-sense and chance baselines. Plus a WiC-style task: pairs of examples of one lemma, same
  sense or not (balanced; the lemma in the same form, so layer 0 is about chance by construction), a cosine
  threshold chosen on training lemmas, accuracy on the other lemmas.
- **classification**: BBC News topics (5 classes): the mix + BiLSTM encoder + pooled linear model on the title
  and the first sentences of each article, with the mix of all layers at λ = 0.001 and λ = 1 against the top
  layer only and the context-free layer 0 only (the paper's Table 2 comparison).

Splits are deterministic (SHA-1 of stable keys, or seeded shuffles); every model is initialised and trained under
the given seed. The task heads are `ElmoForTokenClassification` / `ElmoForSequenceClassification` (their
`classify_layers`, fed with the cached layers; the biLM inside them is never run); a single layer is evaluated by
passing that layer in every position of the mix (the mix then is γ · that layer).

Outputs: `results.json`, `results.md` (our numbers beside the paper's, which come from other data at another
scale), and PNG plots (`layer_scores.png`, one per task, `mix_weights.png`) where matplotlib is installed (the
`evaluate` extra); without it the plots are skipped with a notice, and `plots=True` fails before any work.

The data comes from the per-user cache (`modeling_elmo.evaluation_data.cache_dir()`); what a task lacks is fetched
first (`fetch=True`).

`--quick` (`QUICK`) is a **smoke test**: it runs every step of the pipeline on a few dozen sentences and two
epochs, which checks that the data, the model, the heads and the reports work together, but its scores mean
nothing (its BBC topic accuracy is below the 20% chance level). It reports no scores: `results.md` says what ran,
the log prints none, the plots are stamped "smoke test", and `results.json` carries `"smoke_test": true`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import evaluation_data as data
from .evaluation_data import TASKS, UNIVERSAL_TAGS, EvaluationError
from .modeling_elmo import ElmoBiLstm, ElmoTokenEmbedder

IGNORE_INDEX = -100

#: The paper's numbers (Peters et al. 2018, arXiv v2), from ../shared/ELMO_FACTS.md.
PAPER = {
    "pos": {
        "table": "Table 6: POS tagging, linear probe on each biLM layer, Penn Treebank (accuracy)",
        "layer_1": 97.3,
        "layer_2": 96.8,
    },
    "wsd": {
        "table": "Table 5: all-words WSD, 1-nearest-neighbour sense centroids from SemCor 3.0, Senseval/SemEval (F1)",
        "layer_1": 67.4,
        "layer_2": 69.0,
    },
    "classification": {
        "table": "Table 2: using all layers beats the last layer only; λ = 0.001 beats λ = 1 (SQuAD, SNLI, SRL dev)",
    },
}


@dataclass(frozen=True)
class EvaluationSizes:
    """How much data and training each task gets (`FULL` and `QUICK` below)."""

    pos_train_tokens: int = 100_000
    pos_test_sentences: int | None = None  # None: every sentence of the held-out Brown test files
    probe_epochs: int = 5
    probe_learning_rate: float = 5e-3
    tagger_epochs: int = 5
    tagger_hidden_size: int = 128
    learning_rate: float = 2e-3
    mix_learning_rate: float = 0.1  # Adam's rate for the mix's s and γ (see `train_head`)
    layer_norm: bool = False  # the mix normalises every layer (and the static vectors) first (see `head_config`)
    task_dropout: float = 0.2  # on the mix and on the classifier's input (BiLSTM models; probes have none)
    train_batch_size: int = 32
    word_vector_lines: int | None = None  # None: all of train.txt
    word_vector_vocabulary: int = 20_000
    word_vector_window: int = 2
    wsd_instances: int = 8_000
    wic_test_percent: int = 30
    bbc_articles: int | None = None  # None: all 2,225
    bbc_test_percent: int = 20
    bbc_sentences: int = 2
    bbc_max_words: int = 48
    classifier_epochs: int = 8
    classifier_hidden_size: int = 64
    smoke_test: bool = False  # too small for the scores to mean anything: report none (see `QUICK`)


FULL = EvaluationSizes()
QUICK = EvaluationSizes(
    pos_train_tokens=1_500,
    pos_test_sentences=60,
    probe_epochs=2,
    tagger_epochs=2,
    tagger_hidden_size=16,
    word_vector_lines=5_000,
    word_vector_vocabulary=2_000,
    wsd_instances=300,
    bbc_articles=100,
    bbc_max_words=24,
    classifier_epochs=2,
    classifier_hidden_size=16,
    smoke_test=True,
)
SMOKE_TEST_NOTE = (
    "every step ran on a few dozen sentences and two epochs, too little for the scores to mean anything (they can "
    "fall below chance), so none is reported; run without --quick for results"
)


def score_text(accuracy: float, sizes: EvaluationSizes) -> str:
    """`accuracy 91.23%` for the log, or that the model was scored, without the score, in a smoke test."""
    return "scored (smoke test: no score shown)" if sizes.smoke_test else f"accuracy {accuracy:.2f}%"


def parse_tasks(text: str) -> list[str]:
    """`"pos,wsd"` → ["pos", "wsd"]; raises `EvaluationError` naming an unknown task."""
    tasks = [task.strip() for task in text.split(",") if task.strip()]
    unknown = [task for task in tasks if task not in TASKS]
    if unknown or not tasks:
        raise EvaluationError(
            f"unknown task(s) {', '.join(map(repr, unknown)) or '(none given)'}: --tasks takes a comma-separated "
            f"list of {', '.join(TASKS)}"
        )
    return list(dict.fromkeys(tasks))


class Log:
    """Progress lines on stderr, with the seconds since the start."""

    def __init__(self, enabled: bool = True) -> None:
        self.start = time.perf_counter()
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[elmo evaluate {time.perf_counter() - self.start:7.1f}s] {message}", file=sys.stderr, flush=True)


def stable_hash(text: str) -> int:
    """A platform-independent hash (first 8 bytes of SHA-1) for deterministic splits."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")


# ---------------------------------------------------------------------------------------------------------------
# The frozen biLM's layers, computed once


class LayerCache:
    """Runs the frozen biLM over sentence sets; each sentence's layers come back as one float16 tensor
    (L + 1, words, 2P)."""

    def __init__(self, embedder, log: Log) -> None:
        self.embedder = embedder
        self.log = log
        self.tokens = 0
        self.seconds = 0.0

    @property
    def num_layers(self) -> int:
        return self.embedder.num_layers

    @property
    def device(self) -> torch.device:
        return self.embedder.device

    @property
    def config(self):
        return self.embedder.model.config

    def split(self, text: str) -> list[str]:
        return self.embedder.split(text)

    def encode(self, sentences: Sequence[Sequence[str]], name: str) -> list[torch.Tensor]:
        start = time.perf_counter()
        tokens = sum(len(words) for words in sentences)
        self.log(f"{name}: running the biLM over {len(sentences):,} sentences ({tokens:,} words)")
        results: list[torch.Tensor | None] = [None] * len(sentences)
        # Sorted: the cache is filled in chunks, whose float rounding must not depend on the process's hash seed.
        self.embedder.cache_token_embeddings(sorted({word for words in sentences for word in words}))
        try:
            for position, array in self.embedder.iter_embeddings([list(words) for words in sentences], layers="all"):
                results[position] = torch.from_numpy(array).to(torch.float16)
        finally:
            self.embedder.model.clear_token_cache()
        seconds = time.perf_counter() - start
        self.tokens += tokens
        self.seconds += seconds
        self.log(f"{name}: done in {seconds:.1f}s ({tokens / max(seconds, 1e-9):,.0f} words/s)")
        return results


# ---------------------------------------------------------------------------------------------------------------
# Task heads


HEADS = {"token": "ElmoForTokenClassification", "sequence": "ElmoForSequenceClassification"}


def head_config(
    bilm_config,
    num_labels: int,
    encoder: str,
    hidden_size: int,
    regularization: float,
    dropout: float,
    layer_norm: bool = False,
):
    """A copy of the biLM's config with the task fields the heads read: `task_encoder` ("lstm": one BiLSTM layer of
    `hidden_size` per direction; "none"), λ, `dropout` on the mix and on the classifier's input, and the mix's layer
    norm (`scalar_mix_layer_norm`, the paper's option, as AllenNLP's `do_layer_norm`).

    The biLM's layers differ in scale: the context-free layer 0 (the char-CNN's projection, unclipped) has a
    standard deviation 3 to 6 times that of the biLSTM layers (clipped to ±3), and the PPMI-SVD vectors have unit
    RMS. The layer norm (one mean and variance over the batch's words per layer) removes that, but is off by
    default, measured with the full sizes: BiLSTM POS tagger on layer 0 84.0 → 84.2% (weak smoke model) and 96.0 →
    96.1% (checkpoint), on the mix 83.7 → 81.7% and 96.2 → 96.1%; BBC mix (λ = 0.001, seeds 0/1) 72.2/73.2 →
    66.1/68.7%. The gap between the tagger on a weak model's layers and on PPMI-SVD vectors is the weak model,
    not the scale (it underfits: training loss 0.54 after 5 epochs); on a better-trained biLM the same tagger on
    layer 0 or on the mix beats the PPMI-SVD tagger."""
    config = copy.deepcopy(bilm_config)
    config.num_labels = num_labels
    config.task_encoder = encoder
    config.task_encoder_hidden_size = hidden_size
    config.task_encoder_layers = 1
    config.scalar_mix_regularization = regularization
    config.scalar_mix_dropout = dropout
    config.classifier_dropout = dropout
    config.scalar_mix_layer_norm = layer_norm
    config.freeze_elmo = True
    return config


def build_head(kind: str, config, seed: int, device: str | torch.device = "cpu") -> nn.Module:
    """`ElmoForTokenClassification` (kind "token") or `ElmoForSequenceClassification` ("sequence"), initialised
    under `seed`. The biLM inside the head keeps its random weights and stays frozen: only cached layers are fed to
    `classify_layers`."""
    from . import modeling_elmo as modeling

    torch.manual_seed(seed)
    head = getattr(modeling, HEADS[kind])(config).to(device)
    for module in head.modules():
        if isinstance(module, (ElmoTokenEmbedder, ElmoBiLstm)):
            module.requires_grad_(False)
    return head


def task_parameters(head: nn.Module) -> list[nn.Parameter]:
    return [parameter for parameter in head.parameters() if parameter.requires_grad]


def parameter_groups(head: nn.Module, learning_rate: float, mix_learning_rate: float) -> list[dict]:
    """Adam's parameter groups: the scalar mix's s and γ at `mix_learning_rate`, the task encoder and classifier at
    `learning_rate`; no weight decay anywhere (the only penalty on s is the paper's λ‖s‖², in the loss).

    s is a vector of logits: a weight of 0.5 against 0.25 is a difference of ~0.7 in s, and γ is of order 1, while
    Adam moves a parameter by about its learning rate per step. At the encoder's rate (10⁻³) a few hundred steps
    move s by a few hundredths, so every mix stayed at uniform whatever λ was (the paper's λ comparison then
    compares nothing). A separate, larger rate for these few scalars is the usual remedy in task models built on
    ELMo or BERT layer mixes."""
    mix = [head.scalar_mix.scalar_parameters, head.scalar_mix.gamma]
    mix_ids = {id(parameter) for parameter in mix}
    rest = [parameter for parameter in task_parameters(head) if id(parameter) not in mix_ids]
    mix = [parameter for parameter in mix if parameter.requires_grad]
    groups = [{"params": rest, "lr": learning_rate, "weight_decay": 0.0}]
    if mix:
        groups.append({"params": mix, "lr": mix_learning_rate, "weight_decay": 0.0})
    return groups


# ---------------------------------------------------------------------------------------------------------------
# Training on cached layers


def batches(lengths: Sequence[int], batch_size: int, generator: random.Random | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding). With a `generator` (training), items of equal
    length are shuffled before grouping, so that a batch does not hold a run of neighbouring items (e.g. one
    class), and the batch order is shuffled."""
    order = list(range(len(lengths)))
    if generator is not None:
        generator.shuffle(order)
    order.sort(key=lambda index: lengths[index])
    grouped = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if generator is not None:
        generator.shuffle(grouped)
    return grouped


def collate(
    features: Sequence[torch.Tensor],
    indices: Sequence[int],
    select: str | int,
    num_layers: int,
    device: str | torch.device = "cpu",
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Pad the items' (K, words, H) features into the L + 1 layer tensors (B, T, H) the heads take, and the mask.
    `select`: "all" (the K = L + 1 layers) or a layer index, repeated in every position."""
    items = [features[index] for index in indices]
    width = max(item.shape[1] for item in items)
    stacked = torch.zeros(len(items), items[0].shape[0], width, items[0].shape[2])
    mask = torch.zeros(len(items), width, dtype=torch.bool)
    for row, item in enumerate(items):
        stacked[row, :, : item.shape[1]] = item.float()
        mask[row, : item.shape[1]] = True
    stacked, mask = stacked.to(device), mask.to(device)
    if select == "all":
        return [stacked[:, layer] for layer in range(stacked.shape[1])], mask
    return [stacked[:, select]] * num_layers, mask


def _token_labels(labels: Sequence[torch.Tensor], indices: Sequence[int], width: int) -> torch.Tensor:
    out = torch.full((len(indices), width), IGNORE_INDEX, dtype=torch.long)
    for row, index in enumerate(indices):
        out[row, : labels[index].shape[0]] = labels[index]
    return out


def train_head(
    head: nn.Module,
    train: tuple[Sequence[torch.Tensor], Sequence],
    test: tuple[Sequence[torch.Tensor], Sequence],
    *,
    sequence: bool,
    select: str | int,
    num_layers: int,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    mix_learning_rate: float | None = None,
) -> dict:
    """Train `head.classify_layers` on `train` (features, labels) with Adam, then score accuracy on `test`.
    The mix's s and γ learn at `mix_learning_rate` (default: `learning_rate`), the rest at `learning_rate`
    (`parameter_groups`). Returns the accuracy (%), the final training loss, the mix's weights and γ (for
    `select="all"`), seconds."""
    start = time.perf_counter()
    device = next(head.parameters()).device
    parameters = task_parameters(head)
    groups = parameter_groups(head, learning_rate, learning_rate if mix_learning_rate is None else mix_learning_rate)
    optimizer = torch.optim.Adam(groups)
    generator = random.Random(seed)
    features, labels = train
    lengths = [item.shape[1] for item in features]
    loss_sum = loss_count = 0.0
    for _ in range(epochs):
        head.train()
        loss_sum = loss_count = 0.0
        for indices in batches(lengths, batch_size, generator):
            layers, mask = collate(features, indices, select, num_layers, device)
            if sequence:
                targets = torch.tensor([labels[index] for index in indices], dtype=torch.long)
            else:
                targets = _token_labels(labels, indices, mask.shape[1])
            output = head.classify_layers(layers, mask, labels=targets.to(device))
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            nn.utils.clip_grad_norm_(parameters, 5.0)
            optimizer.step()
            loss_sum += float(output.loss.detach()) * len(indices)
            loss_count += len(indices)
    predictions = predict(head, test[0], sequence=sequence, select=select, num_layers=num_layers)
    accuracy = _accuracy(predictions, test[1], sequence)
    result = {
        "accuracy": accuracy,
        "final_train_loss": loss_sum / max(loss_count, 1),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if select == "all":
        result["mix_weights"] = [round(value, 4) for value in head.scalar_mix.normalized_weights().tolist()]
        result["gamma"] = round(float(head.scalar_mix.gamma.detach()), 4)
    return result


def predict(
    head: nn.Module, features: Sequence[torch.Tensor], *, sequence: bool, select: str | int, num_layers: int
) -> list:
    """Predicted label per item (sequence) or per word (a tensor per item)."""
    head.eval()
    device = next(head.parameters()).device
    predictions: list = [None] * len(features)
    with torch.no_grad():
        for indices in batches([item.shape[1] for item in features], 64):
            layers, mask = collate(features, indices, select, num_layers, device)
            logits = head.classify_layers(layers, mask).logits.argmax(dim=-1).cpu()
            for row, index in enumerate(indices):
                predictions[index] = int(logits[row]) if sequence else logits[row, : features[index].shape[1]]
    return predictions


def _accuracy(predictions: Sequence, gold: Sequence, sequence: bool) -> float:
    if sequence:
        correct = sum(int(p == g) for p, g in zip(predictions, gold, strict=True))
        return round(100.0 * correct / max(len(gold), 1), 2)
    correct = sum(int((p == g).sum()) for p, g in zip(predictions, gold, strict=True))
    total = sum(int(g.shape[0]) for g in gold)
    return round(100.0 * correct / max(total, 1), 2)


# ---------------------------------------------------------------------------------------------------------------
# Static word vectors from the pretraining text


def ppmi_svd_vectors(
    lines: Iterable[str], dim: int, vocabulary_size: int, window: int = 2, smoothing: float = 0.75, seed: int = 0
) -> tuple[dict[str, int], np.ndarray]:
    """Count-based word vectors (Levy, Goldberg & Dagan 2015): positive PMI of (word, context word) within
    `window` words in the same sentence, context counts smoothed by ^0.75, factorised by a truncated SVD
    (`torch.svd_lowrank`, seeded) into U·√Σ, each row scaled to norm √dim. Words are lower-cased; the
    `vocabulary_size` most frequent are kept.

    Chosen as the static baseline because it uses exactly the biLM's pretraining text, is deterministic, needs no
    training loop, and takes well under a minute for ~4.5M words on two CPU cores (a skip-gram model of similar
    quality would need several epochs of SGD). Returns (word → row, (words, dim) float32 array); a `dim` larger
    than the vocabulary allows is padded with zero columns.
    """
    sentences = [[word.lower() for word in line.split()] for line in lines]
    counts = Counter(word for sentence in sentences for word in sentence)
    vocabulary = [word for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:vocabulary_size]]
    index = {word: row for row, word in enumerate(vocabulary)}
    size = len(vocabulary)
    ids = []
    for sentence in sentences:
        ids.extend(index.get(word, -1) for word in sentence)
        ids.append(-1)  # windows do not cross sentences
    ids = np.asarray(ids, dtype=np.int64)
    keys = []
    for distance in range(1, window + 1):
        left, right = ids[:-distance], ids[distance:]
        keep = (left >= 0) & (right >= 0)
        keys.append(left[keep] * size + right[keep])
        keys.append(right[keep] * size + left[keep])
    pairs, pair_counts = np.unique(np.concatenate(keys) if keys else np.zeros(0, np.int64), return_counts=True)
    rows, columns = pairs // size, pairs % size
    word_totals = np.bincount(rows, weights=pair_counts, minlength=size)
    context_totals = np.bincount(columns, weights=pair_counts, minlength=size) ** smoothing
    total = pair_counts.sum()
    context_probability = context_totals / max(context_totals.sum(), 1e-12)
    pmi = np.log(pair_counts / total) - np.log(word_totals[rows] / total) - np.log(context_probability[columns])
    positive = pmi > 0
    vectors = np.zeros((size, dim), dtype=np.float32)
    rank = min(dim, size - 1) if size > 1 else 0
    if positive.any() and rank > 0:
        matrix = torch.sparse_coo_tensor(
            np.stack([rows[positive], columns[positive]]),
            torch.tensor(pmi[positive], dtype=torch.float32),
            (size, size),
            check_invariants=True,
        ).coalesce()
        torch.manual_seed(seed)
        left, singular, _ = torch.svd_lowrank(matrix, q=rank, niter=4)
        vectors[:, :rank] = (left * singular.sqrt()).numpy()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.where(norms > 0, vectors / np.maximum(norms, 1e-12) * math.sqrt(dim), 0.0).astype(np.float32)
    return index, vectors


def read_lines(path: Path, limit: int | None) -> list[str]:
    lines = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(lines) >= limit:
                break
            lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------------------------
# The tasks


def _mix_settings(sizes: EvaluationSizes) -> str:
    return "every layer layer-normalised before the mix" if sizes.layer_norm else "no layer norm"


def run_pos(cache: LayerCache, cache_dir: Path, sizes: EvaluationSizes, seed: int, log: Log) -> dict:
    files = data.read_brown_tagged(data.brown_tarball(cache_dir))
    split = data.brown_split([name for name, _ in files])
    train_pool = [sentence for name, sentences in files if split[name] == "train" for sentence in sentences]
    test = [sentence for name, sentences in files if split[name] == "test" for sentence in sentences]
    random.Random(seed).shuffle(train_pool)
    train, tokens = [], 0
    for sentence in train_pool:
        if tokens >= sizes.pos_train_tokens:
            break
        train.append(sentence)
        tokens += len(sentence)
    if sizes.pos_test_sentences is not None:
        test = [
            test[i]
            for i in sorted(random.Random(seed + 1).sample(range(len(test)), min(len(test), sizes.pos_test_sentences)))
        ]
    tag_index = {tag: number for number, tag in enumerate(UNIVERSAL_TAGS)}

    def unpack(sentences):
        words = [[word for word, _ in sentence] for sentence in sentences]
        labels = [torch.tensor([tag_index[tag] for _, tag in sentence]) for sentence in sentences]
        return words, labels

    train_words, train_labels = unpack(train)
    test_words, test_labels = unpack(test)
    train_layers = cache.encode(train_words, "pos train")
    test_layers = cache.encode(test_words, "pos test")
    num_layers = cache.num_layers
    results: dict = {
        "data": {
            "source": f"Brown ({data.BROWN.name}@{data.BROWN.version}), 12 universal tags",
            "train": f"{len(train):,} sentences, {sum(map(len, train)):,} tokens, sampled from the LM's training files",
            "test": f"{len(test):,} sentences, {sum(map(len, test)):,} tokens, from the held-out Brown test files",
            "train_sentences": len(train),
            "train_tokens": sum(map(len, train)),
            "test_sentences": len(test),
            "test_tokens": sum(map(len, test)),
        },
        "probe": {},
        "tagger": {},
    }

    def fit(name: str, encoder: str, select, features_train, features_test, epochs, learning_rate, hidden):
        dropout = 0.0 if encoder == "none" else sizes.task_dropout  # a probe is plain softmax regression
        config = head_config(cache.config, len(UNIVERSAL_TAGS), encoder, hidden, 0.001, dropout, sizes.layer_norm)
        head = build_head("token", config, seed, cache.device)
        result = train_head(
            head,
            (features_train, train_labels),
            (features_test, test_labels),
            sequence=False,
            select=select,
            num_layers=num_layers,
            epochs=epochs,
            learning_rate=learning_rate,
            mix_learning_rate=sizes.mix_learning_rate,
            batch_size=sizes.train_batch_size,
            seed=seed,
        )
        log(f"pos {name}: {score_text(result['accuracy'], sizes)} ({result['seconds']:.1f}s)")
        return result

    for layer in range(num_layers):
        results["probe"][f"layer_{layer}"] = fit(
            f"linear probe, layer {layer}", "none", layer, train_layers, test_layers, sizes.probe_epochs,
            sizes.probe_learning_rate, 1,
        )  # fmt: skip
    results["probe"]["mix"] = fit(
        "linear probe, learned mix", "none", "all", train_layers, test_layers, sizes.probe_epochs,
        sizes.probe_learning_rate, 1,
    )  # fmt: skip

    text_path = data.pretraining_text(cache_dir)
    width = 2 * cache.config.projection_dim
    start = time.perf_counter()
    index, vectors = ppmi_svd_vectors(
        read_lines(text_path, sizes.word_vector_lines),
        dim=width,
        vocabulary_size=sizes.word_vector_vocabulary,
        window=sizes.word_vector_window,
        seed=seed,
    )
    known = sum(1 for words in test_words for word in words if word.lower() in index)
    results["data"]["word_vectors"] = {
        "method": f"PPMI-SVD, window {sizes.word_vector_window}, context smoothing 0.75, U·√Σ, lower-cased",
        "text": data.PRETRAINING_TEXT,
        "lines": sizes.word_vector_lines or "all",
        "vocabulary": len(index),
        "dim": width,
        "test_token_coverage": round(100.0 * known / max(results["data"]["test_tokens"], 1), 2),
        "seconds": round(time.perf_counter() - start, 1),
    }
    log(f"pos: PPMI-SVD vectors for {len(index):,} words in {time.perf_counter() - start:.1f}s")
    zero = np.zeros(width, dtype=np.float32)

    def static(words_list):
        return [
            torch.from_numpy(np.stack([vectors[index[w.lower()]] if w.lower() in index else zero for w in words])).to(
                torch.float16
            )[None]
            for words in words_list
        ]

    ppmi_train, ppmi_test = static(train_words), static(test_words)
    hidden, epochs, rate = sizes.tagger_hidden_size, sizes.tagger_epochs, sizes.learning_rate
    results["tagger"]["static_ppmi_svd"] = fit(
        "BiLSTM tagger, PPMI-SVD vectors", "lstm", 0, ppmi_train, ppmi_test, epochs, rate, hidden
    )
    results["tagger"]["static_layer_0"] = fit(
        "BiLSTM tagger, layer 0", "lstm", 0, train_layers, test_layers, epochs, rate, hidden
    )
    results["tagger"]["elmo_mix"] = fit(
        "BiLSTM tagger, ELMo mix", "lstm", "all", train_layers, test_layers, epochs, rate, hidden
    )
    results["settings"] = {
        "probe": f"softmax regression (task_encoder none), {_mix_settings(sizes)}, Adam lr "
        f"{sizes.probe_learning_rate} ({sizes.mix_learning_rate} for s and γ), {sizes.probe_epochs} epochs",
        "tagger": f"one BiLSTM layer of {hidden} per direction, {_mix_settings(sizes)}, dropout {sizes.task_dropout}, "
        f"Adam lr {rate} ({sizes.mix_learning_rate} for s and γ), {epochs} epochs, λ = 0.001; the same tagger and "
        "training for every input",
    }
    return results


def wsd_instances(examples: Sequence[data.SenseExample], budget: int) -> list[data.SenseExample]:
    """The examples of lemmas (lemma + POS) with examples for two or more senses; whole lemmas are taken in the
    order of a hash of their name until `budget` examples are reached."""
    groups: dict[tuple[str, str], list[data.SenseExample]] = defaultdict(list)
    for example in examples:
        groups[(example.lemma, example.pos)].append(example)
    chosen: list[data.SenseExample] = []
    for key in sorted(groups, key=lambda item: (stable_hash(f"{item[0]}|{item[1]}"), item)):
        members = groups[key]
        if len({example.offset for example in members}) < 2:
            continue
        if len(chosen) >= budget:
            break
        chosen.extend(members)
    return chosen


def wsd_split(instances: Sequence[data.SenseExample]) -> list[bool]:
    """Which instances are test instances: of every sense (lemma, POS, synset) with two or more examples, the one
    with the lowest hash of its key; the rest train. Every test sense so has training examples, and so do all the
    senses of the chosen lemmas (at least two each), as in a supervised WSD evaluation."""
    groups: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for position, instance in enumerate(instances):
        groups[(instance.lemma, instance.pos, instance.offset)].append(position)
    is_test = [False] * len(instances)
    for members in groups.values():
        if len(members) >= 2:
            is_test[min(members, key=lambda position: (stable_hash(instances[position].key), position))] = True
    return is_test


def nearest_sense(
    vectors: np.ndarray,
    instances: Sequence[data.SenseExample],
    is_test: Sequence[bool],
    fallback: Callable[[str, str], int | None],
) -> tuple[list[int | None], list[bool]]:
    """1-nearest-neighbour WSD (the paper's Table 5): each (lemma, POS, sense) gets the mean of its training
    instances' vectors; a test instance takes the sense of its lemma whose centroid has the highest cosine
    similarity, or `fallback(lemma, pos)` (the most frequent sense) when its lemma has no training instance.
    Returns the predicted sense per test instance (in order) and whether it backed off."""
    sums: dict[tuple[str, str], dict[int, np.ndarray]] = defaultdict(dict)
    counts: Counter = Counter()
    for vector, instance, test in zip(vectors, instances, is_test, strict=True):
        if not test:
            senses = sums[(instance.lemma, instance.pos)]
            senses[instance.offset] = senses.get(instance.offset, 0.0) + vector.astype(np.float64)
            counts[(instance.lemma, instance.pos, instance.offset)] += 1
    predictions, backed_off = [], []
    for vector, instance, test in zip(vectors, instances, is_test, strict=True):
        if not test:
            continue
        senses = sums.get((instance.lemma, instance.pos))
        if not senses:
            predictions.append(fallback(instance.lemma, instance.pos))
            backed_off.append(True)
            continue
        query = vector.astype(np.float64) / max(np.linalg.norm(vector), 1e-12)
        best, best_score = None, -math.inf
        for offset in sorted(senses):
            centroid = senses[offset] / counts[(instance.lemma, instance.pos, offset)]
            score = float(query @ centroid) / max(float(np.linalg.norm(centroid)), 1e-12)
            if score > best_score:
                best, best_score = offset, score
        predictions.append(best)
        backed_off.append(False)
    return predictions, backed_off


def best_threshold(similarities: np.ndarray, same: np.ndarray) -> float:
    """The cosine threshold (predict "same sense" above it) with the highest accuracy on these pairs."""
    order = np.argsort(similarities)
    values, labels = similarities[order], same[order].astype(np.int64)
    # Threshold just below values[i]: pairs i.. are "same". Correct = different below + same at or above.
    different_below = np.concatenate([[0], np.cumsum(1 - labels)])
    same_above = np.concatenate([np.cumsum(labels[::-1])[::-1], [0]])
    correct = different_below + same_above
    best = int(np.argmax(correct))
    if best == 0:
        return float(values[0]) - 1e-6
    if best == len(values):
        return float(values[-1]) + 1e-6
    return float((values[best - 1] + values[best]) / 2)


def wic_pairs(
    instances: Sequence[data.SenseExample], test_percent: int, seed: int
) -> dict[str, list[tuple[int, int, bool]]]:
    """Balanced same-sense / different-sense pairs of examples of one lemma in which the lemma has the same form
    (lower-cased words), split by lemma (a hash of the lemma puts `test_percent` % of them in "test"):
    {"train": [(i, j, same)], "test": [...]}. With the same form the context-free layer 0 gives both examples
    the same vector (up to capitalisation) and scores about chance by construction, so that a gain over 50% comes
    from the context."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for position, instance in enumerate(instances):
        groups[(instance.lemma, instance.pos)].append(position)

    def form(position: int) -> tuple[str, ...]:
        instance = instances[position]
        return tuple(word.lower() for word in instance.words[instance.start : instance.end])

    pairs: dict[str, list[tuple[int, int, bool]]] = {"train": [], "test": []}
    for key, members in sorted(groups.items()):
        part = "test" if stable_hash(f"wic|{key[0]}|{key[1]}") % 100 < test_percent else "train"
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                i, j = members[a], members[b]
                if form(i) == form(j):
                    pairs[part].append((i, j, instances[i].offset == instances[j].offset))
    generator = random.Random(seed)
    for part, items in pairs.items():
        same = [pair for pair in items if pair[2]]
        different = [pair for pair in items if not pair[2]]
        keep = min(len(same), len(different))
        pairs[part] = sorted(generator.sample(same, keep) + generator.sample(different, keep))
    return pairs


def run_wsd(cache: LayerCache, cache_dir: Path, sizes: EvaluationSizes, seed: int, log: Log) -> dict:
    wordnet = data.read_wordnet(data.wordnet_dir(cache_dir))
    examples = data.sense_examples(wordnet, cache.split)
    log(f"wsd: {len(examples):,} sense-labelled WordNet examples")
    instances = wsd_instances(examples, sizes.wsd_instances)
    if not instances:
        raise EvaluationError("WordNet has no lemma with examples for two senses; nothing to evaluate for wsd")
    is_test = wsd_split(instances)
    layers = cache.encode([instance.words for instance in instances], "wsd examples")
    num_layers = cache.num_layers
    vectors = np.stack(
        [
            item[:, instance.start : instance.end].float().mean(dim=1).numpy()
            for item, instance in zip(layers, instances, strict=True)
        ]
    )  # (N, L + 1, 2P): the mean over the lemma's words
    test = [instance for instance, flag in zip(instances, is_test, strict=True) if flag]
    trained = defaultdict(set)
    for instance, flag in zip(instances, is_test, strict=True):
        if not flag:
            trained[(instance.lemma, instance.pos)].add(instance.offset)

    def score(predictions):
        correct = sum(
            int(prediction == instance.offset) for prediction, instance in zip(predictions, test, strict=True)
        )
        return round(100.0 * correct / max(len(test), 1), 2)

    mfs = [wordnet.most_frequent_sense(instance.lemma, instance.pos) for instance in test]
    chance = sum(1.0 / max(len(trained[(instance.lemma, instance.pos)]), 1) for instance in test)
    results: dict = {
        "data": {
            "source": f"WordNet ({data.wordnet_source(data.wordnet_dir(cache_dir))}) example sentences",
            "labelled_examples": len(examples),
            "lemmas": len({(i.lemma, i.pos) for i in instances}),
            "instances": len(instances),
            "train_instances": len(instances) - len(test),
            "test_instances": len(test),
            "test_instances_backed_off": 0,
            "mean_senses_per_test_lemma": round(
                sum(len(trained[(i.lemma, i.pos)]) for i in test) / max(len(test), 1), 2
            ),
        },
        "most_frequent_sense": {"accuracy": score(mfs)},
        "chance": {"accuracy": round(100.0 * chance / max(len(test), 1), 2)},
        "nearest_neighbour": {},
        "wic": {},
    }
    for layer in range(num_layers):
        predictions, backed_off = nearest_sense(vectors[:, layer], instances, is_test, wordnet.most_frequent_sense)
        results["data"]["test_instances_backed_off"] = sum(backed_off)
        results["nearest_neighbour"][f"layer_{layer}"] = {"accuracy": score(predictions)}
        if sizes.smoke_test:
            log(f"wsd 1-NN layer {layer}: {score_text(score(predictions), sizes)}")
        else:
            log(f"wsd 1-NN layer {layer}: {score(predictions):.2f}% (most frequent sense {score(mfs):.2f}%)")

    pairs = wic_pairs(instances, sizes.wic_test_percent, seed)
    results["data"]["wic_train_pairs"] = len(pairs["train"])
    results["data"]["wic_test_pairs"] = len(pairs["test"])
    normalized = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    for layer in range(num_layers):
        if not pairs["train"] or not pairs["test"]:
            break

        def cosines(items, layer=layer):
            first = np.array([i for i, _, _ in items])
            second = np.array([j for _, j, _ in items])
            return (normalized[first, layer] * normalized[second, layer]).sum(axis=-1)

        same_train = np.array([same for _, _, same in pairs["train"]])
        same_test = np.array([same for _, _, same in pairs["test"]])
        threshold = best_threshold(cosines(pairs["train"]), same_train)
        accuracy = float(((cosines(pairs["test"]) > threshold) == same_test).mean() * 100)
        results["wic"][f"layer_{layer}"] = {"accuracy": round(accuracy, 2), "threshold": round(threshold, 4)}
        log(f"wsd WiC-style pairs layer {layer}: {score_text(accuracy, sizes)}")
    return results


def run_classification(cache: LayerCache, cache_dir: Path, sizes: EvaluationSizes, seed: int, log: Log) -> dict:
    articles = data.read_bbc(data.bbc_dir(cache_dir))
    topics = sorted({article.topic for article in articles})
    if sizes.bbc_articles is not None and sizes.bbc_articles < len(articles):
        by_topic = defaultdict(list)
        for article in articles:
            by_topic[article.topic].append(article)
        share = max(1, sizes.bbc_articles // len(topics))
        articles = [
            article
            for topic in topics
            for article in sorted(by_topic[topic], key=lambda a: stable_hash(f"{a.topic}/{a.name}"))[:share]
        ]
    words = [data.article_words(article, cache.split, sizes.bbc_sentences, sizes.bbc_max_words) for article in articles]
    keep = [i for i, item in enumerate(words) if item]
    articles, words = [articles[i] for i in keep], [words[i] for i in keep]
    is_test = [
        stable_hash(f"bbc|{article.topic}/{article.name}") % 100 < sizes.bbc_test_percent for article in articles
    ]
    labels = [topics.index(article.topic) for article in articles]
    layers = cache.encode(words, "classification articles")
    train = (
        [x for x, t in zip(layers, is_test, strict=True) if not t],
        [y for y, t in zip(labels, is_test, strict=True) if not t],
    )
    test = (
        [x for x, t in zip(layers, is_test, strict=True) if t],
        [y for y, t in zip(labels, is_test, strict=True) if t],
    )
    num_layers = cache.num_layers
    results: dict = {
        "data": {
            "source": f"BBC News ({data.BBC.name}=={data.BBC.version}), topics {', '.join(topics)}",
            "text": f"title + first {sizes.bbc_sentences} sentences, at most {sizes.bbc_max_words} words",
            "train_articles": len(train[1]),
            "test_articles": len(test[1]),
            "words": sum(map(len, words)),
        },
        "runs": {},
        "settings": f"scalar mix ({_mix_settings(sizes)}) + one BiLSTM layer of {sizes.classifier_hidden_size} per "
        f"direction + mean pooling + linear, dropout {sizes.task_dropout}, Adam lr {sizes.learning_rate} "
        f"({sizes.mix_learning_rate} for s and γ), {sizes.classifier_epochs} epochs",
    }
    runs = [
        ("mix_lambda_0.001", "all", 0.001, "all layers, λ = 0.001"),
        ("mix_lambda_1", "all", 1.0, "all layers, λ = 1"),
        ("top_layer", num_layers - 1, 0.001, f"top layer ({num_layers - 1}) only"),
        ("layer_0", 0, 0.001, "layer 0 only (context-free)"),
    ]
    for name, select, regularization, description in runs:
        config = head_config(
            cache.config, len(topics), "lstm", sizes.classifier_hidden_size, regularization, sizes.task_dropout,
            sizes.layer_norm,
        )  # fmt: skip
        head = build_head("sequence", config, seed, cache.device)
        result = train_head(
            head, train, test, sequence=True, select=select, num_layers=num_layers, epochs=sizes.classifier_epochs,
            learning_rate=sizes.learning_rate, mix_learning_rate=sizes.mix_learning_rate,
            batch_size=sizes.train_batch_size, seed=seed,
        )  # fmt: skip
        result["description"] = description
        results["runs"][name] = result
        log(f"classification {description}: {score_text(result['accuracy'], sizes)} ({result['seconds']:.1f}s)")
    return results


# ---------------------------------------------------------------------------------------------------------------
# The command


MATPLOTLIB_MISSING = (
    "matplotlib is not installed, so no plots are drawn (results.json and results.md are written all the same); "
    "pip install 'modeling-elmo[evaluate]' adds it"
)


def plots_available() -> bool:
    """Whether matplotlib can be imported (the `evaluate` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def require_matplotlib() -> None:
    """Fail before any work when plots are asked for and cannot be drawn."""
    if not plots_available():
        raise EvaluationError(
            "elmo evaluate draws its plots with matplotlib, which is not installed: "
            "pip install 'modeling-elmo[evaluate]'"
        )


def resolve_plots(plots: bool | None) -> bool:
    """Whether to draw the plots: True requires matplotlib (`require_matplotlib`), False never, None where matplotlib
    is installed, else not, with `MATPLOTLIB_MISSING` on stderr (shown whatever the progress setting)."""
    if plots is None:
        plots = plots_available()
        if not plots:
            print(f"elmo evaluate: note: {MATPLOTLIB_MISSING}", file=sys.stderr, flush=True)
    elif plots:
        require_matplotlib()
    return plots


def run_evaluation(
    embedder,
    output_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    tasks: Sequence[str] = TASKS,
    quick: bool = False,
    seed: int = 0,
    model_name: str | None = None,
    progress: bool = True,
    plots: bool | None = None,
    fetch: bool = True,
) -> dict:
    """Run `tasks` with the (loaded) `ElmoEmbedder`'s frozen biLM; write results.json, results.md and the plots
    into `output_dir`; return the results. `cache_dir` defaults to the per-user cache; with `fetch` what the tasks
    lack is fetched into it first (`evaluation_data.fetch_evaluation_data`), else its absence is an error. `plots`:
    see `resolve_plots`. `quick` is a smoke test (see the module docstring)."""
    log = Log(progress)
    cache_dir = data.resolve_cache_dir(cache_dir)
    tasks = parse_tasks(",".join(tasks))
    plots = resolve_plots(plots)
    if fetch:
        data.fetch_evaluation_data(cache_dir, tasks, progress=progress)
    else:
        data.require_data(cache_dir, tasks)
    sizes = QUICK if quick else FULL
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cache = LayerCache(embedder, log)
    config = embedder.model.config
    results: dict = {
        "model": model_name or getattr(embedder.model, "name_or_path", "") or "(in memory)",
        "mode": "quick" if quick else "full",
        "smoke_test": sizes.smoke_test,
        **({"note": f"smoke test (--quick): {SMOKE_TEST_NOTE}"} if sizes.smoke_test else {}),
        "seed": seed,
        "biLM": {
            "parameters": sum(p.numel() for p in embedder.model.parameters()),
            "projection_dim": config.projection_dim,
            "lstm_cell_dim": config.lstm_cell_dim,
            "layers": cache.num_layers,
            "state_mode": config.state_mode,
        },
        "heads": {kind: f"modeling_elmo.{name}" for kind, name in HEADS.items()},
        "sizes": asdict(sizes),
        "plots": plot_files(tasks) if plots else [],
        **({} if plots else {"plots_skipped": "not asked for" if plots_available() else MATPLOTLIB_MISSING}),
        "tasks": {},
        "timings": {},
    }
    mode = "quick mode: a smoke test, no scores" if sizes.smoke_test else "full mode"
    log(f"tasks {', '.join(tasks)} ({mode}); heads: {results['heads']}")
    runners = {"pos": run_pos, "wsd": run_wsd, "classification": run_classification}
    start = time.perf_counter()
    for task in tasks:
        task_start = time.perf_counter()
        results["tasks"][task] = runners[task](cache, cache_dir, sizes, seed, log)
        results["timings"][f"{task}_seconds"] = round(time.perf_counter() - task_start, 1)
    results["timings"]["bilm_seconds"] = round(cache.seconds, 1)
    results["timings"]["bilm_words"] = cache.tokens
    results["timings"]["total_seconds"] = round(time.perf_counter() - start, 1)
    write_reports(results, output_dir, plots)
    log(f"wrote {', '.join(str(output_dir / name) for name in output_files(results))}")
    return results


def output_files(results: dict) -> list[str]:
    """The files a run wrote into its output folder."""
    return ["results.json", "results.md", *results.get("plots", [])]


def summary(results: dict, output_dir: str | os.PathLike) -> str:
    """The line `elmo evaluate` ends with: where the reports went; for a smoke test, that the pipeline ran and that
    it reports no scores; and that the plots were skipped, where they were."""
    files = ", ".join(output_files(results))
    tasks = ", ".join(results["tasks"])
    seconds = results["timings"]["total_seconds"]
    if results.get("smoke_test"):
        line = (
            f"smoke test passed: the pipeline ran ({tasks}; the biLM over {results['timings']['bilm_words']:,} words, "
            f"every task model trained and scored) in {seconds}s. No scores: --quick is too small for them to mean "
            f"anything; run without --quick for results. Wrote {output_dir}: {files}"
        )
    else:
        line = f"wrote {output_dir}: {files} ({tasks}, {seconds}s)"
    if "plots_skipped" in results:
        line += f". No plots: {results['plots_skipped']}"
    return line


# ---------------------------------------------------------------------------------------------------------------
# Reports


def _layer_label(layer: int, num_layers: int) -> str:
    return (
        "layer 0 (token)"
        if layer == 0
        else f"layer {layer} (biLSTM {layer})" + (" = top" if layer == num_layers - 1 else "")
    )


def _mixes(results: dict) -> dict[str, list[float]]:
    mixes = {}
    pos = results["tasks"].get("pos")
    if pos:
        mixes["POS linear probe"] = pos["probe"]["mix"]["mix_weights"]
        mixes["POS BiLSTM tagger"] = pos["tagger"]["elmo_mix"]["mix_weights"]
    classification = results["tasks"].get("classification")
    if classification:
        for name, label in (("mix_lambda_0.001", "BBC, λ = 0.001"), ("mix_lambda_1", "BBC, λ = 1")):
            mixes[label] = classification["runs"][name]["mix_weights"]
    return mixes


def _verdict(expected_higher: float, expected_lower: float) -> str:
    if expected_higher == expected_lower:
        return "is a tie"
    return "holds" if expected_higher > expected_lower else "does not hold"


def markdown_report(results: dict) -> str:
    """The results as Markdown, our numbers beside the paper's; for a smoke test what ran, without scores."""
    if results.get("smoke_test"):
        return smoke_test_report(results)
    num_layers = results["biLM"]["layers"]
    bilm = results["biLM"]
    lines = [
        "# ELMo evaluation (`elmo evaluate`)",
        "",
        f"Model: `{results['model']}` ({bilm['parameters']:,} parameters, P = {bilm['projection_dim']}, "
        f"D = {bilm['lstm_cell_dim']}, {num_layers} layers), {results['mode']} mode, seed {results['seed']}. "
        f"Task heads: {results['heads']['token']}, {results['heads']['sequence']}.",
        "",
        "**Not comparable one to one with the paper.** The paper's numbers come from the 93.6M-parameter biLM "
        "trained on the 1B Word Benchmark and from other data sets (Penn Treebank, SemCor → Senseval/SemEval, "
        "SQuAD/SNLI/SRL); ours from this model on the small registry data sets named below. What can be compared "
        "is the pattern across layers.",
        "",
    ]
    sizes = results["sizes"]
    if "mix_learning_rate" in sizes:
        lines += [
            "Protocol: every task model reads the biLM's cached layers through its own scalar mix "
            "γ · Σ softmax(s)_j · layer_j"
            + (
                ", each layer (and each static input) layer-normalised first (zero mean, unit variance over the "
                "batch's words; the paper's optional layer norm)"
                if sizes.get("layer_norm")
                else ", without the paper's optional layer norm (it did not help here)"
            )
            + f". Adam trains s and γ at learning rate {sizes['mix_learning_rate']} (the task model at "
            f"{sizes['learning_rate']}, probes at {sizes['probe_learning_rate']}), without weight decay; the only "
            "penalty on s is λ‖s‖². s are logits, so at the task model's rate they would barely leave uniform. "
            "A single layer is fed in every position of the mix (its mix is then γ · that layer). Every input "
            "(PPMI-SVD vectors, layer 0, the mix) gets the same tagger and training budget.",
            "",
        ]
    tasks = results["tasks"]
    if "pos" in tasks:
        pos = tasks["pos"]
        paper = PAPER["pos"]
        lines += [
            "## POS tagging (Brown, 12 universal tags)",
            "",
            f"Train: {pos['data']['train']}. Test: {pos['data']['test']}. {pos['settings']['probe']}.",
            "",
            "| representation | ours: linear probe accuracy (%) | paper: linear probe, PTB (%) |",
            "|---|---|---|",
        ]
        for layer in range(num_layers):
            lines.append(
                f"| {_layer_label(layer, num_layers)} | {pos['probe'][f'layer_{layer}']['accuracy']:.2f} | "
                f"{paper.get(f'layer_{layer}', '–')} |"
            )
        lines.append(f"| learned mix | {pos['probe']['mix']['accuracy']:.2f} | – |")
        word_vectors = pos["data"]["word_vectors"]
        lines += [
            "",
            f"Paper: {paper['table']}. BiLSTM tagger ({pos['settings']['tagger']}); static word vectors: "
            f"{word_vectors['method']}, {word_vectors['vocabulary']:,} words from the data cache's "
            f"`{word_vectors['text']}` "
            f"({word_vectors['test_token_coverage']}% of test tokens covered):",
            "",
            "| tagger input | accuracy (%) |",
            "|---|---|",
            f"| static: PPMI-SVD word vectors | {pos['tagger']['static_ppmi_svd']['accuracy']:.2f} |",
            f"| static: layer 0 (context-free token layer) | {pos['tagger']['static_layer_0']['accuracy']:.2f} |",
            f"| ELMo: learned mix of all layers | {pos['tagger']['elmo_mix']['accuracy']:.2f} |",
            "",
        ]
        if num_layers >= 3:
            first, second = pos["probe"]["layer_1"]["accuracy"], pos["probe"]["layer_2"]["accuracy"]
            verdict = _verdict(first, second)
            lines += [f"Paper's finding (layer 1 > layer 2 for POS): {verdict} here ({first:.2f} vs {second:.2f}).", ""]
    if "wsd" in tasks:
        wsd = tasks["wsd"]
        paper = PAPER["wsd"]
        info = wsd["data"]
        lines += [
            "## Word sense (WordNet example sentences)",
            "",
            f"{info['source']}: {info['labelled_examples']:,} examples contain a lemma of their synset; "
            f"{info['lemmas']:,} lemmas with examples for ≥ 2 senses, {info['instances']:,} instances "
            f"({info['train_instances']:,} train / {info['test_instances']:,} test: of every sense with two or more "
            "examples one is held out, so every test sense has training examples; "
            f"{info['mean_senses_per_test_lemma']} candidate senses per test instance on average; "
            f"{info['test_instances_backed_off']:,} backed off to the most frequent sense). WiC-style: "
            f"{info['wic_train_pairs']:,} train / {info['wic_test_pairs']:,} test pairs of examples with the lemma "
            "in the same form (so layer 0 is about chance by construction; balanced, split by lemma; cosine threshold "
            "chosen on the train pairs).",
            "",
            "| representation | ours: 1-NN accuracy (%) | ours: WiC-style pairs (%) | paper: 1-NN F1 (%) |",
            "|---|---|---|---|",
        ]
        for layer in range(num_layers):
            nn_result = wsd["nearest_neighbour"][f"layer_{layer}"]
            wic = wsd["wic"].get(f"layer_{layer}", {}).get("accuracy", "–")
            lines.append(
                f"| {_layer_label(layer, num_layers)} | {nn_result['accuracy']:.2f} | {wic} | "
                f"{paper.get(f'layer_{layer}', '–')} |"
            )
        lines += [
            f"| most frequent sense (SemCor counts) | {wsd['most_frequent_sense']['accuracy']:.2f} | – | – |",
            f"| chance (uniform over the lemma's senses) | {wsd['chance']['accuracy']:.2f} | 50 | – |",
            "",
            f"Paper: {paper['table']}.",
            "",
        ]
        if num_layers >= 3:
            first = wsd["nearest_neighbour"]["layer_1"]["accuracy"]
            second = wsd["nearest_neighbour"]["layer_2"]["accuracy"]
            verdict = _verdict(second, first)
            lines += [f"Paper's finding (layer 2 > layer 1 for WSD): {verdict} here ({second:.2f} vs {first:.2f}).", ""]
    if "classification" in tasks:
        classification = tasks["classification"]
        info = classification["data"]
        runs = classification["runs"]
        lines += [
            "## Text classification (BBC News topics)",
            "",
            f"{info['source']}; {info['text']}; {info['train_articles']:,} train / {info['test_articles']:,} test "
            f"articles. {classification['settings']}.",
            "",
            "| representation | accuracy (%) | mix weights | γ |",
            "|---|---|---|---|",
        ]
        for run in runs.values():
            weights = ", ".join(f"{w:.3f}" for w in run.get("mix_weights", [])) or "–"
            lines.append(f"| {run['description']} | {run['accuracy']:.2f} | {weights} | {run.get('gamma', '–')} |")
        all_layers, top = runs["mix_lambda_0.001"]["accuracy"], runs["top_layer"]["accuracy"]
        small, large = runs["mix_lambda_0.001"]["accuracy"], runs["mix_lambda_1"]["accuracy"]
        lines += [
            "",
            f"Paper: {PAPER['classification']['table']}. Here: all layers vs top only "
            f"{_verdict(all_layers, top)} ({all_layers:.2f} vs {top:.2f}); λ = 0.001 vs λ = 1 "
            f"{_verdict(small, large)} ({small:.2f} vs {large:.2f}).",
            "",
        ]
    mixes = _mixes(results)
    if mixes:
        lines += [
            "## Learned layer weights (softmax(s))",
            "",
            "| mix | " + " | ".join(f"layer {i}" for i in range(num_layers)) + " |",
        ]
        lines.append("|---" * (num_layers + 1) + "|")
        for name, weights in mixes.items():
            lines.append(f"| {name} | " + " | ".join(f"{w:.3f}" for w in weights) + " |")
        lines.append("")
    timings = results["timings"]
    lines += [
        "## Cost",
        "",
        f"biLM over {timings['bilm_words']:,} words in {timings['bilm_seconds']}s (computed once per sentence set); "
        f"total {timings['total_seconds']}s ("
        + ", ".join(f"{task} {timings[f'{task}_seconds']}s" for task in tasks)
        + f"); torch threads: {torch.get_num_threads()}.",
        "",
    ]
    return "\n".join(lines)


def smoke_test_report(results: dict) -> str:
    """What a smoke test (`--quick`) ran, as Markdown: the data and the models of each task, no scores."""
    bilm = results["biLM"]
    num_layers = bilm["layers"]
    tasks = results["tasks"]
    lines = [
        "# ELMo evaluation smoke test (`elmo evaluate --quick`)",
        "",
        f"**A smoke test, not results.** {SMOKE_TEST_NOTE[0].upper()}{SMOKE_TEST_NOTE[1:]}.",
        "",
        f"Model: `{results['model']}` ({bilm['parameters']:,} parameters, {num_layers} layers), seed "
        f"{results['seed']}. Task heads: {results['heads']['token']}, {results['heads']['sequence']}.",
        "",
        "What ran:",
        "",
    ]
    if "pos" in tasks:
        pos = tasks["pos"]
        lines.append(
            f"- POS tagging (Brown, 12 universal tags): {pos['data']['train']} to train on, {pos['data']['test']} to "
            f"test on; a linear probe on each of the {num_layers} layers and on a learned mix, and a BiLSTM tagger on "
            f"PPMI-SVD vectors ({pos['data']['word_vectors']['vocabulary']:,} words), on layer 0 and on the mix: "
            f"{len(pos['probe']) + len(pos['tagger'])} task models trained and scored."
        )
    if "wsd" in tasks:
        info = tasks["wsd"]["data"]
        lines.append(
            f"- Word sense (WordNet example sentences): {info['instances']:,} instances of {info['lemmas']:,} lemmas "
            f"({info['train_instances']:,} train / {info['test_instances']:,} test), nearest sense centroid on each "
            f"layer; {info['wic_train_pairs']:,} / {info['wic_test_pairs']:,} WiC-style pairs."
        )
    if "classification" in tasks:
        classification = tasks["classification"]
        info = classification["data"]
        lines.append(
            f"- Topic classification (BBC News): {info['train_articles']:,} train / {info['test_articles']:,} test "
            f"articles; {len(classification['runs'])} classifiers trained and scored."
        )
    timings = results["timings"]
    lines += [
        "",
        f"The biLM ran over {timings['bilm_words']:,} words in {timings['bilm_seconds']}s; "
        f"{timings['total_seconds']}s in all.",
        "",
    ]
    return "\n".join(lines)


def write_reports(results: dict, output_dir: Path, plots: bool = True) -> None:
    """results.json, results.md and (with `plots`) the PNG plots."""
    (output_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output_dir / "results.md").write_text(markdown_report(results), encoding="utf-8")
    if plots:
        write_plots(results, output_dir)


def plot_files(tasks: Iterable[str]) -> list[str]:
    """The PNG files `write_plots` writes for these tasks."""
    tasks = set(tasks)
    files = [f"{task}.png" for task in TASKS if task in tasks]
    if tasks & {"pos", "wsd"}:
        files.append("layer_scores.png")
    if tasks & {"pos", "classification"}:
        files.append("mix_weights.png")
    return files


def write_plots(results: dict, output_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = results["tasks"]
    num_layers = results["biLM"]["layers"]
    layer_names = [f"layer {i}" for i in range(num_layers)]
    written = []

    def bars(axis, labels, values, title, ylabel="accuracy (%)", reference=None):
        positions = range(len(values))
        axis.bar(positions, values, color=plt.cm.tab10(np.arange(len(values)) % 10))
        axis.set_xticks(list(positions), labels, rotation=20, ha="right", fontsize=8)
        axis.set_title(title, fontsize=9)
        axis.set_ylabel(ylabel)
        low = min([*values, *([reference[1]] if reference else [])])
        axis.set_ylim(max(0.0, low - 10), min(100.0, max(values) + 5) if max(values) <= 100 else None)
        for position, value in zip(positions, values, strict=True):
            axis.text(position, value, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
        if reference:
            axis.axhline(reference[1], color="gray", linestyle="--", linewidth=1, label=reference[0])
            axis.legend(fontsize=7)

    def save(figure, name):
        figure.tight_layout()
        if results.get("smoke_test"):
            stamp = {"facecolor": "white", "edgecolor": "red", "alpha": 0.8}
            figure.text(0.5, 0.5, "smoke test (--quick): not results", color="red", fontsize=16, rotation=15,
                        ha="center", va="center", bbox=stamp, zorder=10)  # fmt: skip
        path = output_dir / name
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)

    if "pos" in tasks:
        pos = tasks["pos"]
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        bars(
            axes[0],
            [*layer_names, "mix"],
            [pos["probe"][f"layer_{i}"]["accuracy"] for i in range(num_layers)] + [pos["probe"]["mix"]["accuracy"]],
            "POS: linear probe per layer (Brown, test files)",
        )
        bars(
            axes[1],
            ["PPMI-SVD", "layer 0", "ELMo mix"],
            [pos["tagger"][k]["accuracy"] for k in ("static_ppmi_svd", "static_layer_0", "elmo_mix")],
            "POS: BiLSTM tagger",
        )
        save(figure, "pos.png")
    if "wsd" in tasks:
        wsd = tasks["wsd"]
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        bars(
            axes[0],
            layer_names,
            [wsd["nearest_neighbour"][f"layer_{i}"]["accuracy"] for i in range(num_layers)],
            "WSD: 1-NN sense centroids per layer",
            reference=("most frequent sense", wsd["most_frequent_sense"]["accuracy"]),
        )
        wic = [wsd["wic"].get(f"layer_{i}", {}).get("accuracy", 0.0) for i in range(num_layers)]
        bars(axes[1], layer_names, wic, "WiC-style same/different sense pairs", reference=("chance", 50.0))
        save(figure, "wsd.png")
    if "classification" in tasks:
        runs = tasks["classification"]["runs"]
        figure, axis = plt.subplots(figsize=(6, 4))
        bars(
            axis,
            [run["description"] for run in runs.values()],
            [run["accuracy"] for run in runs.values()],
            "BBC News topics: mix vs single layers",
        )
        save(figure, "classification.png")
    if "pos" in tasks or "wsd" in tasks:
        figure, axis = plt.subplots(figsize=(6, 4))
        series = []
        if "pos" in tasks:
            series.append(
                ("POS linear probe", [tasks["pos"]["probe"][f"layer_{i}"]["accuracy"] for i in range(num_layers)])
            )
        if "wsd" in tasks:
            series.append(
                ("WSD 1-NN", [tasks["wsd"]["nearest_neighbour"][f"layer_{i}"]["accuracy"] for i in range(num_layers)])
            )
            if tasks["wsd"]["wic"]:
                series.append(
                    ("WiC-style pairs", [tasks["wsd"]["wic"][f"layer_{i}"]["accuracy"] for i in range(num_layers)])
                )
        for label, values in series:
            axis.plot(range(num_layers), values, marker="o", label=label)
        axis.set_xticks(range(num_layers), layer_names)
        axis.set_ylabel("accuracy (%)")
        axis.set_title("Scores per biLM layer (layer 0 = context-free token layer)", fontsize=9)
        axis.legend(fontsize=8)
        save(figure, "layer_scores.png")
    mixes = _mixes(results)
    if mixes:
        figure, axis = plt.subplots(figsize=(9, 4))
        width = 0.8 / len(mixes)
        for number, (label, weights) in enumerate(mixes.items()):
            axis.bar(np.arange(num_layers) + number * width - 0.4 + width / 2, weights, width, label=label)
        axis.axhline(1.0 / num_layers, color="gray", linestyle="--", linewidth=1, label="uniform")
        axis.set_xticks(range(num_layers), layer_names)
        axis.set_ylabel("softmax(s)")
        axis.set_title("Learned layer weights of each task's mix", fontsize=9)
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        save(figure, "mix_weights.png")
    return written
