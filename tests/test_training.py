"""`elmo build-vocab` and `elmo train`: vocabularies, data streams, training to a low perplexity, exact resume,
divergence detection, datasets and domain adaptation from an existing model."""

import functools
import json
import operator
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from modeling_elmo import ElmoForBidirectionalLM, ElmoTokenizer
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.perplexity import evaluate_perplexity, file_sentences
from modeling_elmo.training import DatasetCorpus, TextCorpus, TokenEncoder, TrainingBatches
from modeling_elmo.training_config import TrainingSettings
from modeling_elmo.vocabulary import LanguageModelError, read_vocabulary

FIXTURE_TEXT = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "bilm-tf" / "train" / "data.txt"
TOY_TEXT = """the cat sat on the mat .
the dog sat on the log .
a cat saw a dog .
the dog saw the cat on the mat .
a bird sang in the tree .
the bird saw the cat and the dog .
"""
# Small enough to train in seconds: full softmax, no dropout, Adagrad with a larger step than the original's.
FAST = ["--preset", "tiny", "--tokenized", "--batch-size", "4", "--unroll-steps", "10", "--num-sampled", "0"]
FAST += ["--dropout", "0", "--no-progress", "--logging-steps", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def toy_corpus(tmp_path):
    path = tmp_path / "toy.txt"
    path.write_text(TOY_TEXT, encoding="utf-8")
    vocab = tmp_path / "vocab.txt"
    assert elmo_main(["build-vocab", str(path), "--tokenized", "--output", str(vocab)]) == 0
    return path, vocab


def log_entries(output_dir):
    return [json.loads(line) for line in (output_dir / "training_log.jsonl").read_text().splitlines()]


def test_build_vocab_counts_orders_and_cuts(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("b a a <UNK>\n\n  c a b\nd\n", encoding="utf-8")
    vocab = tmp_path / "vocab.txt"
    assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(vocab)]) == 0
    assert vocab.read_text().splitlines() == ["<S>\t3", "</S>\t3", "<UNK>\t1", "a\t3", "b\t2", "c\t1", "d\t1"]
    assert "7 entries" in capsys.readouterr().out
    assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(vocab), "--min-count", "2"]) == 0
    assert vocab.read_text().splitlines() == ["<S>\t3", "</S>\t3", "<UNK>\t3", "a\t3", "b\t2"]
    assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(vocab), "--max-size", "4"]) == 0
    assert vocab.read_text().splitlines() == ["<S>\t3", "</S>\t3", "<UNK>\t5", "a\t3"]
    raw = tmp_path / "raw.txt"
    raw.write_text("Don't stop.\n", encoding="utf-8")
    assert elmo_main(["build-vocab", str(raw), "--output", str(vocab)]) == 0  # split like the tokenizer
    assert read_vocabulary(vocab).words[3:] == sorted(ElmoTokenizer().tokenize("Don't stop."))  # all counts 1
    assert len(read_vocabulary(vocab).words[3:]) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<S>\n</S>\n<UNK>\nthe\nthe\n", "'the' appears twice"),
        ("<S>\n</S>\nthe\n", "lacks the special word"),
        ("<S>\t1\n</S>\t1\n<UNK>\n", "vocab.txt:3: '<UNK>' has no count"),
        ("<S>\t1\n</S>\tmany\n", "vocab.txt:2: the count 'many' is not an integer"),
        ("<S>\n</S>\n<UNK>\nnew york\n", "vocab.txt:4: expected one word"),
    ],
)
def test_bad_vocabulary_files_are_named(tmp_path, text, message):
    path = tmp_path / "vocab.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LanguageModelError, match=message):
        read_vocabulary(path)


def test_invalid_utf8_in_a_corpus_names_the_line(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"fine line\nbad \xff byte\n")
    assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(tmp_path / "v.txt")]) == 2
    assert "corpus.txt:2: invalid UTF-8 (byte 0xff at byte 5 of the line)" in capsys.readouterr().err
    assert not (tmp_path / "v.txt").exists()


def test_streams_cover_the_corpus_once_in_disjoint_contiguous_segments(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("".join(f"line{i} x\n" for i in range(7)), encoding="utf-8")
    second.write_text("".join(f"line{i} y\n" for i in range(7, 20)) + "\n", encoding="utf-8")
    corpus = TextCorpus([first, second], str.split)
    parts = 3
    starts = [next(corpus.sentences(part, parts))[0] for part in range(parts)]
    start_lines = [int(word[4:]) for word in starts]
    assert start_lines[0] == 0 and start_lines == sorted(start_lines) and len(set(start_lines)) == parts
    segments = []
    for part in range(parts):
        stream = corpus.sentences(part, parts)
        end = start_lines[part + 1] if part + 1 < parts else 20
        segments.append([int(next(stream)[0][4:]) for _ in range(end - start_lines[part])])
        assert int(next(stream)[0][4:]) == end % 20  # then on into the next segment, wrapping at the end
    assert functools.reduce(operator.iadd, segments, []) == list(range(20))


def test_each_rank_reads_its_own_streams(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"w{i} w{i} w{i}\n" for i in range(40)), encoding="utf-8")
    vocab = tmp_path / "vocab.txt"
    assert elmo_main(["build-vocab", str(path), "--tokenized", "--output", str(vocab)]) == 0
    vocabulary = read_vocabulary(vocab)
    encoder = TokenEncoder(vocabulary, 50)
    settings = TrainingSettings(batch_size=3, unroll_steps=5)

    def first_words(rank: int) -> list[str]:
        """The first word of each row's first window (after its `<S>`)."""
        batch = next(iter(TrainingBatches(TextCorpus([path], str.split), encoder, settings, rank, world_size=2)))
        return [vocabulary.words[int(row[1])] for row in batch["labels"]]

    rank0, rank1 = first_words(0), first_words(1)
    assert len(set(rank0) | set(rank1)) == 6  # six streams, six different starting points
    assert [int(word[1:]) for word in rank0 + rank1] == sorted(int(word[1:]) for word in rank0 + rank1)
    skipping = TrainingBatches(TextCorpus([path], str.split), encoder, settings, rank=1, world_size=2)
    skipping.skip_batches = 2  # as when resuming: the same batch as reading two batches first
    assert torch.equal(next(iter(skipping))["labels"], _nth_batch(path, encoder, settings, 2))


def _nth_batch(path, encoder, settings, index):
    iterator = iter(TrainingBatches(TextCorpus([path], str.split), encoder, settings, rank=1, world_size=2))
    for _ in range(index):
        next(iterator)
    return next(iterator)["labels"]


def train(corpus, vocab, output_dir, *options):
    status = elmo_main(["train", str(corpus), "--vocab", str(vocab), "--output-dir", str(output_dir), *FAST, *options])
    assert status == 0
    return output_dir


def test_training_a_tiny_model_drives_perplexity_below_20(tmp_path, toy_corpus):
    corpus, vocab = (FIXTURE_TEXT, None) if FIXTURE_TEXT.is_file() else toy_corpus
    if vocab is None:
        vocab = tmp_path / "fixture-vocab.txt"
        assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(vocab)]) == 0
    output = train(corpus, vocab, tmp_path / "model", "--max-steps", "150", "--optimizer", "adamw",
                   "--learning-rate", "0.01", "--logging-steps", "50", "--save-steps", "1000")  # fmt: skip
    model = ElmoForBidirectionalLM.from_pretrained(output)
    result = evaluate_perplexity(model, file_sentences(corpus, str.split))
    assert result.average_perplexity < 20, result
    first, last = log_entries(output)[0], log_entries(output)[-2]
    assert last["perplexity"] < first["perplexity"] / 3 and last["tokens_per_second"] > 0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the run was in this process
    assert 100 < last["resident_memory_mb"] <= peak_mib + 1


def test_resuming_from_a_checkpoint_gives_the_same_next_step_loss(tmp_path, toy_corpus):
    corpus, vocab = toy_corpus
    straight = train(corpus, vocab, tmp_path / "straight", "--max-steps", "5", "--save-steps", "3")
    interrupted = train(corpus, vocab, tmp_path / "interrupted", "--max-steps", "3", "--save-steps", "3")
    train(corpus, vocab, interrupted, "--max-steps", "5", "--save-steps", "3", "--resume")
    expected = {entry["step"]: entry["loss"] for entry in log_entries(straight) if "loss" in entry}
    resumed = {entry["step"]: entry["loss"] for entry in log_entries(interrupted) if "loss" in entry}
    assert sorted(resumed) == [1, 2, 3, 4, 5]
    for step in (4, 5):
        assert resumed[step] == pytest.approx(expected[step], abs=1e-6), step
    assert expected[4] != pytest.approx(expected[3], abs=1e-6)
    state = json.loads((interrupted / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert (interrupted / "checkpoints" / "checkpoint-3" / "elmo_stream_state_0.pt").is_file()


def test_a_diverging_loss_stops_with_a_clear_message(tmp_path, toy_corpus, capsys):
    corpus, vocab = toy_corpus
    healthy = train(corpus, vocab, tmp_path / "healthy", "--max-steps", "1")
    weights = load_file(healthy / "model.safetensors")
    for name in ("softmax.weight", "softmax.bias"):  # finite, so the folder loads, but the logits overflow
        weights[name].fill_(3.4e38)
    save_file(weights, healthy / "model.safetensors", metadata={"format": "pt"})
    output = tmp_path / "diverged"
    status = elmo_main(["train", str(corpus), "--init-from", str(healthy), "--output-dir", str(output), *FAST,
                        "--max-steps", "3", "--save-steps", "1"])  # fmt: skip
    assert status == 2
    error = capsys.readouterr().err
    assert "the training loss became NaN or infinite at step 1" in error and "--learning-rate" in error
    assert not (output / "checkpoints").exists() or not any((output / "checkpoints").iterdir())


def test_sentence_batches_train_and_resume(tmp_path, toy_corpus):
    corpus, vocab = toy_corpus
    output = train(corpus, vocab, tmp_path / "sentences", "--packing", "sentences", "--max-steps", "2",
                   "--save-steps", "1")  # fmt: skip
    train(corpus, vocab, output, "--packing", "sentences", "--max-steps", "3", "--save-steps", "1", "--resume")
    assert json.loads((output / "training_summary.json").read_text())["global_step"] == 3
    assert not (output / "checkpoints" / "checkpoint-1" / "elmo_stream_state_0.pt").exists()


def test_a_hugging_face_dataset_is_a_corpus(tmp_path, toy_corpus):
    datasets = pytest.importorskip("datasets")
    _, vocab = toy_corpus
    lines = TOY_TEXT.splitlines()
    folder = tmp_path / "dataset"
    datasets.Dataset.from_dict({"sentence": lines, "id": list(range(len(lines)))}).save_to_disk(str(folder))
    corpus = DatasetCorpus(datasets.load_from_disk(str(folder)), "sentence", str.split, "toy")
    assert corpus.count().sentences == len(lines)
    assert next(corpus.sentences(1, 2)) == lines[3].split()
    output = tmp_path / "model"
    assert elmo_main(["train", "--dataset", str(folder), "--text-column", "sentence", "--vocab", str(vocab),
                      "--output-dir", str(output), *FAST, "--max-steps", "2"]) == 0  # fmt: skip
    assert json.loads((output / "training_run.json").read_text())["corpus"] == [
        f"{folder} (column 'sentence', {len(lines)} rows)"
    ]
    with pytest.raises(LanguageModelError, match="has no column 'text'"):
        DatasetCorpus(datasets.load_from_disk(str(folder)), "text", str.split, "toy")


def test_init_from_a_model_with_another_vocabulary_keeps_the_shared_softmax_rows(tmp_path, toy_corpus):
    corpus, vocab = toy_corpus
    base = train(corpus, vocab, tmp_path / "base", "--max-steps", "2")
    domain = tmp_path / "domain.txt"
    domain.write_text("the zebra sat on the mat .\n" * 3, encoding="utf-8")
    domain_vocab = tmp_path / "domain-vocab.txt"
    assert elmo_main(["build-vocab", str(domain), "--tokenized", "--output", str(domain_vocab)]) == 0
    adapted = train(domain, domain_vocab, tmp_path / "adapted", "--init-from", str(base), "--max-steps", "1",
                    "--learning-rate", "0")  # fmt: skip
    before, after = ElmoForBidirectionalLM.from_pretrained(base), ElmoForBidirectionalLM.from_pretrained(adapted)
    assert after.vocabulary == read_vocabulary(domain_vocab).words
    for word in ("the", "sat", "mat", "."):
        old, new = before.vocabulary.index(word), after.vocabulary.index(word)
        assert torch.equal(before.softmax.weight[old], after.softmax.weight[new]), word
    assert torch.equal(before.elmo.token_embedder.projection.weight, after.elmo.token_embedder.projection.weight)


def test_init_from_a_biLM_without_softmax_needs_a_vocabulary_and_keeps_the_biLM(tmp_path, toy_corpus, capsys):
    corpus, vocab = toy_corpus
    trained = ElmoForBidirectionalLM.from_pretrained(train(corpus, vocab, tmp_path / "base", "--max-steps", "1"))
    converted = tmp_path / "converted"
    trained.elmo.save_pretrained(converted)  # an ElmoModel folder, as `elmo convert` writes (no softmax, no vocab)
    command = ["train", str(corpus), "--init-from", str(converted), "--output-dir", str(tmp_path / "x"), *FAST]
    status = elmo_main(command)
    assert status == 2 and "has no word vocabulary: pass --vocab" in capsys.readouterr().err
    adapted = train(corpus, vocab, tmp_path / "adapted", "--init-from", str(converted), "--max-steps", "1",
                    "--learning-rate", "0")  # fmt: skip
    model = ElmoForBidirectionalLM.from_pretrained(adapted)
    for name, tensor in trained.elmo.state_dict().items():
        if "primed" not in name:
            assert torch.equal(model.elmo.state_dict()[name], tensor), name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--max-steps", "1"], "--vocab is needed"),
        (["--vocab", "VOCAB", "--batch-size", "0"], "batch_size must be a positive integer"),
        (["--vocab", "VOCAB", "--config", "CONFIG"], "unknown model field(s) hidden_size"),
    ],
)
def test_bad_training_requests_are_named(tmp_path, toy_corpus, capsys, options, message):
    corpus, vocab = toy_corpus
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"hidden_size": 3}}), encoding="utf-8")
    options = [str(vocab) if value == "VOCAB" else str(config) if value == "CONFIG" else value for value in options]
    command = ["train", str(corpus), "--output-dir", str(tmp_path / "out"), "--tokenized", "--no-progress", *options]
    if "--config" not in options:
        command += ["--preset", "tiny"]
    assert elmo_main(command) == 2
    assert message in capsys.readouterr().err


def test_a_used_output_folder_needs_resume_or_overwrite(tmp_path, toy_corpus, capsys):
    corpus, vocab = toy_corpus
    output = train(corpus, vocab, tmp_path / "model", "--max-steps", "1")
    assert elmo_main(["train", str(corpus), "--vocab", str(vocab), "--output-dir", str(output), *FAST]) == 2
    assert "pass --resume" in capsys.readouterr().err
    train(corpus, vocab, output, "--max-steps", "1", "--overwrite")


FRAGMENTED_HEAP = """
import ctypes, json, torch
from modeling_elmo.training import release_free_heap_memory, resident_memory_mb
ctypes.CDLL(None).mallopt(-3, 16 << 20)  # M_MMAP_THRESHOLD: blocks below 16 MB come from the heap
blocks, pins = [], []
for _ in range(64):
    blocks.append(torch.ones(1 << 20))  # 4 MB
    pins.append(torch.ones(1 << 14))  # a small live block (64 kB) after each: the freed space is not at the top
before = resident_memory_mb()
del blocks
freed = resident_memory_mb()
released = release_free_heap_memory()
print(json.dumps({"before": before, "freed": freed, "released": released, "after": resident_memory_mb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_free_heap_memory_goes_back_to_the_system():
    """The glibc behaviour behind `HeapTrimCallback`: 256 MB of freed blocks between live ones stay resident until
    `release_free_heap_memory`, which returns them."""
    result = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True, check=True)
    memory = json.loads(result.stdout.strip().splitlines()[-1])
    assert memory["released"] is True
    assert memory["freed"] > memory["before"] - 32  # freeing alone gives back (almost) nothing
    assert memory["after"] < memory["freed"] - 200  # the trim returns the holes
