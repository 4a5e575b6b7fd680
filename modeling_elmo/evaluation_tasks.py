"""The tasks of `elmo evaluate` (POS tagging, word sense, topic classification; see `modeling_elmo.evaluation`), the
sizes they run at, and the frozen biLM's layers, computed once per sentence set (`LayerCache`).

Each `run_*` function reads its data from the cache folder, encodes its sentences once, trains and scores its
models (`modeling_elmo.evaluation_heads`) and returns its results as a JSON-ready dict for the reports
(`modeling_elmo.evaluation_report`).
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from . import evaluation_data as data
from .evaluation_data import UNIVERSAL_TAGS, EvaluationError
from .evaluation_heads import build_head, head_config, train_head
from .text_files import read_lines


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


def score_text(accuracy: float, sizes: EvaluationSizes) -> str:
    """`accuracy 91.23%` for the log, or that the model was scored, without the score, in a smoke test."""
    return "scored (smoke test: no score shown)" if sizes.smoke_test else f"accuracy {accuracy:.2f}%"


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
        islice((text for _, text in read_lines(text_path, error_type=EvaluationError)), sizes.word_vector_lines),
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
