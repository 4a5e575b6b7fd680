"""`elmo evaluate` (`modeling_elmo.evaluation`, `modeling_elmo.evaluation_data`) on tiny data files written here in
the formats of the real packages (Brown `word/tag` files in an npm-style tarball, WordNet dict files, BBC
`<topic>/NNN.txt` folders); nothing is downloaded (fetching is tested in test_evaluation_data.py). One test parses
the real data where it was fetched (into the per-user cache, or a repository's `cache/`), and skips otherwise."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from embed_helpers import converted_model

from modeling_elmo import evaluation_data as data
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.evaluation import (
    TASKS,
    best_threshold,
    markdown_report,
    nearest_sense,
    parse_tasks,
    plot_files,
    ppmi_svd_vectors,
    run_evaluation,
    summary,
    wic_pairs,
    wsd_instances,
    wsd_split,
)
from modeling_elmo.evaluation_data import (
    EvaluationError,
    SenseExample,
    base_forms,
    brown_base_tag,
    brown_split,
    brown_to_universal,
    find_lemma,
    parse_brown_line,
    read_brown_tagged,
    read_wordnet,
    sense_examples,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test here may download: data a run lacks is an error naming it, not a fetch."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# ---------------------------------------------------------------------------------------------------------------
# Tiny data in the real formats

BROWN_SENTENCES = [
    "The/at Fulton/np-tl County/nn-tl jury/nn said/vbd ``/`` it's/pps+bez n't/* over/rp ''/'' ./.",
    "He/pps can't/md* go/vb to/to the/at 2/cd games/nns ,/, and/cc she/pps is/bez very/ql happy/jj ./.",
    "Many/ap other/ap people/nns ran/vbd quickly/rb home/nr because/cs it/pps rained/vbd ./.",
    "Oh/uh ,/, the/at fait/fw-nn accompli/fw-nn was/bedz his/pp$ first/od mistake/nn ./.",
]


def write_tarball(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            payload = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mode = 0o666  # as npm tarballs come
            archive.addfile(info, io.BytesIO(payload))
    return path


def write_brown(cache: Path, files: int = 20) -> Path:
    members = {}
    for number in range(1, files + 1):
        lines = [BROWN_SENTENCES[(number + k) % len(BROWN_SENTENCES)] for k in range(3)]
        members[f"package/ca{number:02d}"] = "\n\n" + "".join(f"\t{line}\n\n" for line in lines)
    members["package/cats.txt"] = "ca01 news\n"
    members["package/README"] = "not a Brown file"
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    return write_tarball(downloads / data.BROWN.tarball_name, members)


WORDNET_HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"
# (offset, lexicographer file, ss_type, lemmas, gloss examples)
WORDNET_SYNSETS = [
    (1001, 17, "n", ["bank"], ["they pulled the canoe up on the bank", "the banks were muddy after the rain"]),
    (1002, 14, "n", ["depository_financial_institution", "bank"], ["he cashed a check at the bank", "no lemma here"]),
    (2001, 38, "v", ["take_off", "depart"], ["the plane took off at noon", "we departed early"]),
    (3001, 0, "s", ["galore(ip)"], ["there were apples galore"]),
    (4001, 2, "r", ["quickly"], ["he ran quickly"]),
]


def _data_line(offset: int, lex_file: int, ss_type: str, lemmas: list[str], examples: list[str]) -> str:
    words = " ".join(f"{lemma} 0" for lemma in lemmas)
    frames = " 01 + 02 00" if ss_type == "v" else ""
    gloss = "a gloss; " + "; ".join(f'"{example}"' for example in examples)
    return (
        f"{offset:08d} {lex_file:02d} {ss_type} {len(lemmas):02x} {words} 001 @ 00000001 n 0000{frames} | {gloss}  \n"
    )


def write_wordnet(folder: Path, synsets=WORDNET_SYNSETS, index=None, cntlist=None) -> Path:
    """A WordNet dict folder: data.*, index.* (with a pointer symbol, so the offsets' position is tested),
    cntlist.rev and the exception lists."""
    folder.mkdir(parents=True, exist_ok=True)
    by_file = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
    lines: dict[str, list[str]] = {name: [WORDNET_HEADER] for name in ("noun", "verb", "adj", "adv")}
    for synset in synsets:
        lines[by_file[synset[2]]].append(_data_line(*synset))
    for name, content in lines.items():
        (folder / f"data.{name}").write_text("".join(content), encoding="utf-8")
    if index is None:
        index = {
            "noun": ["bank n 2 1 @ 2 1 00001001 00001002", "depository_financial_institution n 1 0 1 0 00001002"],
            "verb": ["depart v 1 0 1 0 00002001", "take_off v 1 0 1 0 00002001"],
            "adj": ["galore a 1 0 1 0 00003001"],
            "adv": ["quickly r 1 0 1 0 00004001"],
        }
    for name in ("noun", "verb", "adj", "adv"):
        (folder / f"index.{name}").write_text(
            WORDNET_HEADER + "".join(line + "  \n" for line in index.get(name, [])), encoding="utf-8"
        )
    if cntlist is None:
        cntlist = ["bank%1:14:00:: 2 20", "bank%1:17:00:: 1 3", "depart%2:38:00:: 1 4"]
    (folder / "cntlist.rev").write_text("".join(line + "\n" for line in cntlist), encoding="utf-8")
    (folder / "verb.exc").write_text("took take\ntaken take\n", encoding="utf-8")
    (folder / "noun.exc").write_text("geese goose\n", encoding="utf-8")
    return folder


def polysemous_wordnet(folder: Path) -> Path:
    """Eight nouns with two senses each and three examples per sense (for the end-to-end run)."""
    synsets, index, cntlist = [], [], []
    for number, lemma in enumerate(["bank", "play", "bass", "spring", "match", "light", "pitch", "court"]):
        offsets = []
        for sense in range(2):
            offset = 10000 + 10 * number + sense
            offsets.append(offset)
            kind = ["river", "money"][sense]
            examples = [f"the {lemma} near the {kind} number {k} was there" for k in range(3)]
            synsets.append((offset, 5, "n", [lemma], examples))
        index.append(f"{lemma} n 2 0 2 1 {offsets[0]:08d} {offsets[1]:08d}")
        cntlist.append(f"{lemma}%1:05:00:: 1 {number + 1}")
    return write_wordnet(folder, synsets, {"noun": index}, cntlist)


def write_bbc(folder: Path, per_topic: int = 6) -> Path:
    topics = {
        "business": "profits shares market",
        "entertainment": "film music award",
        "politics": "election minister vote",
        "sports": "match goal team",
        "tech": "software phone internet",
    }
    for topic, words in topics.items():
        (folder / topic).mkdir(parents=True, exist_ok=True)
        for number in range(1, per_topic + 1):
            body = f"The {words} story {number} began. Mr. Smith said {words} again. A third sentence."
            (folder / topic / f"{number:03d}.txt").write_text(f"{topic.title()} news {number}\n\n{body}\n")
    return folder


def write_cache(cache: Path) -> Path:
    write_brown(cache)
    polysemous_wordnet(data.wordnet_dir(cache))
    write_bbc(data.bbc_dir(cache))
    corpus = cache / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    lines = [
        f"the {animal} {verb} on the {place} ."
        for animal in ("cat", "dog", "jury", "county")
        for verb in ("sat", "ran", "said")
        for place in ("mat", "bank", "home")
    ]
    (corpus / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cache


# ---------------------------------------------------------------------------------------------------------------
# Brown tags


@pytest.mark.parametrize(
    ("tag", "base", "universal"),
    [
        ("nn", "nn", "NOUN"),
        ("np-tl", "np", "NOUN"),
        ("nn-tl-hl", "nn", "NOUN"),
        ("nr", "nr", "NOUN"),
        ("pps+bez", "pps", "PRON"),
        ("pp$", "pp$", "PRON"),
        ("md*", "md", "VERB"),
        ("ber*-nc", "ber", "VERB"),
        ("bedz", "bedz", "VERB"),
        ("hvz*", "hvz", "VERB"),
        ("*", "*", "ADV"),
        ("ql", "ql", "ADV"),
        ("wrb+bez", "wrb", "ADV"),
        ("at", "at", "DET"),
        ("ex", "ex", "DET"),
        ("wdt", "wdt", "DET"),
        ("ap", "ap", "ADJ"),
        ("od", "od", "ADJ"),
        ("jjt", "jjt", "ADJ"),
        ("cs", "cs", "ADP"),
        ("in-tl", "in", "ADP"),
        ("cd", "cd", "NUM"),
        ("cc", "cc", "CONJ"),
        ("to", "to", "PRT"),
        ("rp", "rp", "PRT"),
        ("---hl", "--", "."),
        ("``", "``", "."),
        ("'", "'", "."),
        ("fw-nn", "fw-nn", "X"),
        ("fw-in+at-tl", "fw-in", "X"),
        ("fw-*", "fw-", "X"),
        ("uh", "uh", "X"),
        ("NIL", "nil", "X"),
    ],
)
def test_brown_tags_map_to_universal_tags(tag, base, universal):
    assert brown_base_tag(tag) == base
    assert brown_to_universal(tag) == universal


def test_every_base_tag_has_one_of_the_twelve_universal_tags():
    assert set(data.BROWN_TO_UNIVERSAL.values()) == set(data.UNIVERSAL_TAGS)
    assert len(data.BROWN_TO_UNIVERSAL) == len(set(data.BROWN_TO_UNIVERSAL))
    with pytest.raises(EvaluationError, match="unknown Brown tag 'zz-tl'"):
        brown_to_universal("zz-tl")


def test_brown_lines_keep_their_words_and_get_universal_tags():
    assert parse_brown_line("\tThe/at Fulton/np-tl ``/`` 1/2/cd ''/'' ./.") == [
        ("The", "DET"),
        ("Fulton", "NOUN"),
        ('"', "."),
        ("1/2", "NUM"),
        ('"', "."),
        (".", "."),
    ]
    with pytest.raises(EvaluationError, match="not word/tag"):
        parse_brown_line("word")


def test_brown_files_are_read_and_split_like_the_pretraining_corpus(tmp_path):
    files = read_brown_tagged(write_brown(tmp_path, files=20))
    assert [name for name, _ in files] == [f"ca{number:02d}" for number in range(1, 21)]
    assert all(len(sentences) == 3 for _, sentences in files)
    split = brown_split([name for name, _ in files])
    assert [name for name, part in split.items() if part == "dev"] == ["ca09", "ca19"]
    assert [name for name, part in split.items() if part == "test"] == ["ca10", "ca20"]


# ---------------------------------------------------------------------------------------------------------------
# WordNet


def test_wordnet_is_parsed_with_senses_counts_and_exceptions(tmp_path):
    wordnet = read_wordnet(write_wordnet(tmp_path / "wordnet"))
    synsets = {synset.offset: synset for synset in wordnet.synsets}
    assert synsets[1002].lemmas == ("depository_financial_institution", "bank")
    assert synsets[1002].examples == ("he cashed a check at the bank", "no lemma here")
    assert synsets[3001].pos == "a" and synsets[3001].lemmas == ("galore",)  # satellite, marker removed
    assert wordnet.senses[("bank", "n")] == [1001, 1002]  # past the pointer symbol
    assert wordnet.counts == {("bank", "n", 1002): 20, ("bank", "n", 1001): 3, ("depart", "v", 2001): 4}
    assert wordnet.most_frequent_sense("bank", "n") == 1002  # SemCor counts beat WordNet's order
    assert wordnet.most_frequent_sense("quickly", "r") == 4001  # no counts: the first sense
    assert wordnet.most_frequent_sense("unknown", "n") is None
    assert "take" in base_forms("took", "v", wordnet.exceptions)


def test_example_sentences_are_labelled_with_the_lemma_they_contain(tmp_path):
    wordnet = read_wordnet(write_wordnet(tmp_path / "wordnet"))
    found = {example.key: example for example in sense_examples(wordnet, str.split)}
    assert set(found) == {"n:00001001:0", "n:00001001:1", "n:00001002:0", "v:00002001:0", "v:00002001:1",
                          "a:00003001:0", "r:00004001:0"}  # fmt: skip
    assert (found["n:00001001:1"].lemma, found["n:00001001:1"].start) == ("bank", 1)  # "banks": plural
    assert found["n:00001002:0"].lemma == "bank"  # the synset's second lemma
    took_off = found["v:00002001:0"]
    assert (took_off.lemma, took_off.words[took_off.start : took_off.end]) == ("take_off", ("took", "off"))
    assert found["v:00002001:1"].lemma == "depart"  # "departed": -ed rule
    assert found["a:00003001:0"].lemma == "galore"
    assert find_lemma(["the", "plane", "took", "it", "off"], "take_off", "v", wordnet.exceptions) is None


# ---------------------------------------------------------------------------------------------------------------
# WSD protocols on hand-built vectors


def _instance(key: str, lemma: str, offset: int) -> SenseExample:
    return SenseExample(key, lemma, "n", offset, ("a", lemma), 1, 2)


def test_nearest_sense_centroid_and_most_frequent_sense_back_off():
    instances = [
        _instance("1", "bank", 1),
        _instance("2", "bank", 1),
        _instance("3", "bank", 2),
        _instance("4", "bank", 2),  # test: near sense 2
        _instance("5", "bank", 1),  # test: near sense 1
        _instance("6", "bat", 7),  # test, lemma without training examples
    ]
    vectors = np.array([[1.0, 0.1], [0.8, -0.1], [0.0, 1.0], [0.2, 5.0], [3.0, 0.5], [1.0, 1.0]])
    is_test = [False, False, False, True, True, True]
    predictions, backed_off = nearest_sense(vectors, instances, is_test, lambda lemma, pos: {"bat": 9}[lemma])
    assert predictions == [2, 1, 9]
    assert backed_off == [False, False, True]


def test_the_pair_threshold_maximises_training_accuracy():
    assert best_threshold(np.array([0.9, 0.1, 0.8, 0.2]), np.array([True, False, True, False])) == pytest.approx(0.5)
    assert best_threshold(np.array([0.3, 0.4]), np.array([True, True])) < 0.3


def test_wic_pairs_are_balanced_and_split_by_lemma():
    instances = [_instance(f"{lemma}{n}", lemma, n % 2) for lemma in ("a", "b", "c", "d", "e", "f") for n in range(5)]
    instances.append(SenseExample("x", "a", "n", 0, ("two", "As"), 1, 2))  # another form of "a": never paired
    pairs = wic_pairs(instances, test_percent=50, seed=0)
    assert all(len(instances) - 1 not in (i, j) for part in pairs.values() for i, j, _ in part)
    for part in ("train", "test"):
        same = sum(1 for _, _, flag in pairs[part] if flag)
        assert same == len(pairs[part]) - same > 0
        for i, j, flag in pairs[part]:
            assert instances[i].lemma == instances[j].lemma and flag == (instances[i].offset == instances[j].offset)
    train_lemmas = {instances[i].lemma for i, _, _ in pairs["train"]}
    assert train_lemmas.isdisjoint({instances[i].lemma for i, _, _ in pairs["test"]})
    assert wic_pairs(instances, test_percent=50, seed=0) == pairs


def test_one_example_of_every_sense_with_two_is_held_out():
    instances = [_instance(f"k{n}", "bank", sense) for n, sense in enumerate([1, 1, 1, 2, 2, 3])]
    is_test = wsd_split(instances)
    assert sum(is_test) == 2
    assert sorted(instance.offset for instance, test in zip(instances, is_test, strict=True) if test) == [1, 2]
    assert wsd_split(list(reversed(instances))) == list(reversed(is_test))  # by key, not by position


def test_only_lemmas_with_two_senses_are_chosen():
    instances = [_instance("1", "one", 1), _instance("2", "one", 1), _instance("3", "two", 1), _instance("4", "two", 2)]
    assert [instance.key for instance in wsd_instances(instances, budget=100)] == ["3", "4"]


def test_ppmi_svd_vectors_put_words_with_the_same_contexts_together():
    lines = [f"the {word} {verb} on the mat ." for word in ("cat", "dog") for verb in ("sat", "slept")] * 5
    lines += [f"stocks {verb} sharply today" for verb in ("fell", "rose")] * 5
    index, vectors = ppmi_svd_vectors(lines, dim=4, vocabulary_size=100, window=2)
    assert vectors.shape == (len(index), 4)

    def cosine(a, b):
        x, y = vectors[index[a]], vectors[index[b]]
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert cosine("cat", "dog") > 0.9 > cosine("cat", "stocks")
    again_index, again = ppmi_svd_vectors(lines, dim=4, vocabulary_size=100, window=2)
    assert again_index == index and np.array_equal(again, vectors)
    _, small = ppmi_svd_vectors(["a b", "b a"], dim=8, vocabulary_size=10)
    assert small.shape == (2, 8) and not small[:, 2:].any()  # rank < dim: zero columns


# ---------------------------------------------------------------------------------------------------------------
# The command


def test_unknown_tasks_are_named():
    assert parse_tasks("pos, wsd,pos") == ["pos", "wsd"]
    with pytest.raises(EvaluationError, match=r"'ner'.*pos, wsd, classification"):
        parse_tasks("pos,ner")


def test_bad_tasks_and_missing_data_are_explained(tmp_path, capsys):
    assert elmo_main(["evaluate", "--output-dir", str(tmp_path / "out"), "--tasks", "pos,sst"]) == 2
    assert "'sst'" in capsys.readouterr().err
    empty = tmp_path / "empty-cache"
    status = elmo_main(["evaluate", "--output-dir", str(tmp_path / "out"), "--cache-dir", str(empty), "--tasks", "wsd"])
    err = capsys.readouterr().err.splitlines()[-1]  # after the fetch's progress line
    assert status == 2 and err.startswith("elmo evaluate: error: ") and "WordNet" in err and str(empty) in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(EvaluationError) as raised:
        data.require_data(empty, ["wsd", "classification"])
    assert str(data.wordnet_dir(empty)) in str(raised.value) and str(data.bbc_dir(empty)) in str(raised.value)
    assert f"elmo fetch-data --cache-dir {empty}`" in str(raised.value)
    write_brown(empty)
    with pytest.raises(EvaluationError, match=re.escape(f"the pretraining text ({empty / 'corpus' / 'train.txt'})")):
        data.require_data(empty, ["pos"])
    data.require_data(empty, ["pos"], need_pretraining_text=False)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("evaluate-model"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_cache(tmp_path_factory.mktemp("evaluate-cache"))


def evaluate(model_folder: Path, cache: Path, output: Path, *options: str) -> dict:
    arguments = ["evaluate", "--model", str(model_folder), "--output-dir", str(output), "--cache-dir", str(cache)]
    assert elmo_main([*arguments, "--quick", "--no-progress", *options]) == 0
    return json.loads((output / "results.json").read_text(encoding="utf-8"))


def test_quick_evaluation_is_a_smoke_test_that_writes_every_output(model_folder, cache, tmp_path, capsys):
    """--quick runs every step and writes every file, but presents no scores: results.md says what ran; the full
    report's tables (rendered here from the same results) are what a full run writes."""
    results = evaluate(model_folder, cache, tmp_path / "out")
    assert capsys.readouterr().out.startswith("smoke test passed: the pipeline ran (pos, wsd, classification;")
    assert list(results["tasks"]) == list(TASKS) and results["mode"] == "quick" and results["smoke_test"] is True
    assert "smoke test (--quick)" in results["note"] and results["plots"] == plot_files(TASKS)
    assert results["heads"] == {
        "token": "modeling_elmo.ElmoForTokenClassification",
        "sequence": "modeling_elmo.ElmoForSequenceClassification",
    }
    pos, wsd, classification = (results["tasks"][task] for task in TASKS)
    assert pos["data"]["test_sentences"] == 6  # the 3 sentences of each of the 2 test files (ca10, ca20)
    assert set(pos["probe"]) == {"layer_0", "layer_1", "layer_2", "mix"}
    assert set(pos["tagger"]) == {"static_ppmi_svd", "static_layer_0", "elmo_mix"}
    scores = [run["accuracy"] for run in [*pos["probe"].values(), *pos["tagger"].values()]]
    scores += [run["accuracy"] for run in wsd["nearest_neighbour"].values()]
    scores += [run["accuracy"] for run in classification["runs"].values()]
    assert all(0.0 <= score <= 100.0 for score in scores)
    for weights in (pos["probe"]["mix"]["mix_weights"], classification["runs"]["mix_lambda_1"]["mix_weights"]):
        assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-3)
    assert wsd["data"]["lemmas"] == 8 and wsd["data"]["instances"] == 48
    assert (wsd["data"]["train_instances"], wsd["data"]["test_instances"]) == (32, 16)
    assert wsd["chance"]["accuracy"] == 50.0 and wsd["data"]["test_instances_backed_off"] == 0
    assert classification["data"]["train_articles"] + classification["data"]["test_articles"] == 30
    assert set(classification["runs"]) == {"mix_lambda_0.001", "mix_lambda_1", "top_layer", "layer_0"}
    report = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert report.startswith("# ELMo evaluation smoke test (`elmo evaluate --quick`)")
    assert "**A smoke test, not results.**" in report and "run without --quick for results" in report
    assert "7 task models trained and scored" in report and "48 instances of 8 lemmas" in report
    assert "|" not in report and "%" not in report  # no tables, no scores
    full = markdown_report({**results, "smoke_test": False})
    assert "| layer 1 (biLSTM 1) |" in full and "| 97.3 |" in full and "| 69.0 |" in full
    assert "Not comparable one to one with the paper" in full and "λ = 0.001 vs λ = 1" in full
    assert "from the data cache's `corpus/train.txt`" in full and str(cache) not in full
    for name in plot_files(TASKS):
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert len(plot_files(TASKS)) == 5


def test_quick_mode_prints_no_scores(model_folder, cache, tmp_path, capsys):
    from modeling_elmo.embedder import ElmoEmbedder

    results = run_evaluation(ElmoEmbedder(model_folder), tmp_path / "out", cache, ["classification", "wsd"], quick=True)
    err = capsys.readouterr().err
    assert "quick mode: a smoke test, no scores" in err
    assert "classification top layer (2) only: scored (smoke test: no score shown)" in err
    assert "wsd 1-NN layer 2: scored (smoke test: no score shown)" in err
    assert "accuracy" not in err and not re.search(r"\d%", err)
    line = summary(results, tmp_path / "out")
    assert line.startswith("smoke test passed: the pipeline ran (classification, wsd; the biLM over ")
    assert "No scores: --quick is too small for them to mean anything; run without --quick for results" in line
    assert "%" not in line and line.endswith("wsd.png, classification.png, layer_scores.png, mix_weights.png")
    full = summary({**results, "smoke_test": False}, tmp_path / "out")
    assert full.startswith(f"wrote {tmp_path / 'out'}: results.json, results.md, wsd.png") and "smoke" not in full


MATPLOTLIB_BLOCKED = """
import json, sys
sys.modules["matplotlib"] = None  # import matplotlib raises ImportError, as where it is not installed
from pathlib import Path
from modeling_elmo.embedder import ElmoEmbedder
from modeling_elmo.evaluation import EvaluationError, run_evaluation, summary

model, cache, out = sys.argv[1:]
embedder = ElmoEmbedder(model)
try:
    run_evaluation(embedder, out, cache, ["wsd"], quick=True, progress=False, plots=True)
except EvaluationError as error:
    print("plots=True:", error, "| output folder made:", Path(out).exists(), flush=True)
results = run_evaluation(embedder, out, cache, ["wsd"], quick=True, progress=False)
print(summary(results, out))
print(json.dumps({"plots": results["plots"], "files": sorted(p.name for p in Path(out).iterdir())}))
"""


def test_without_matplotlib_the_plots_are_skipped_with_a_notice(model_folder, cache, tmp_path):
    """A fresh process where matplotlib cannot be imported: asking for plots fails before any work, naming the
    extra; by default the evaluation runs, says once that it draws no plots and why, and writes the reports."""
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-c", MATPLOTLIB_BLOCKED, str(model_folder), str(cache), str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == (
        "plots=True: elmo evaluate draws its plots with matplotlib, which is not installed: "
        "pip install 'modeling-elmo[evaluate]' | output folder made: False"
    )
    notice = (
        "matplotlib is not installed, so no plots are drawn (results.json and results.md are written all the same); "
        "pip install 'modeling-elmo[evaluate]' adds it"
    )
    assert completed.stderr.count(f"elmo evaluate: note: {notice}") == 1
    assert lines[1].startswith("smoke test passed") and lines[1].endswith(f"No plots: {notice}")
    assert json.loads(lines[2]) == {"plots": [], "files": ["results.json", "results.md"]}


def test_evaluation_is_reproducible_and_runs_only_the_tasks_asked_for(model_folder, cache, tmp_path):
    first = evaluate(model_folder, cache, tmp_path / "a", "--tasks", "classification,wsd")
    second = evaluate(model_folder, cache, tmp_path / "b", "--tasks", "classification,wsd")
    assert list(first["tasks"]) == ["classification", "wsd"]
    for task in first["tasks"].values():
        for run in task.get("runs", {}).values():
            run.pop("seconds")
    for task in second["tasks"].values():
        for run in task.get("runs", {}).values():
            run.pop("seconds")
    assert first["tasks"] == second["tasks"]
    assert sorted(path.name for path in (tmp_path / "a").glob("*.png")) == sorted(plot_files(["classification", "wsd"]))
    assert not (tmp_path / "a" / "pos.png").exists()


# ---------------------------------------------------------------------------------------------------------------
# The real data, where it was fetched


def _fetched_cache() -> Path | None:
    """The per-user cache, or the repository's `cache/` (where older versions fetched to), if it holds all data."""
    for cache in (data.cache_dir(), REPO / "cache"):
        if data.wordnet_dir(cache).is_dir() and data.bbc_dir(cache).is_dir() and data.brown_tarball(cache).is_file():
            return cache
    return None


def test_the_real_data_parses_as_documented():
    cache = _fetched_cache()
    if cache is None:
        pytest.skip(f"the evaluation data is not in {data.cache_dir()} (`elmo fetch-data` fetches it)")
    wordnet_folder, bbc_folder, tarball = data.wordnet_dir(cache), data.bbc_dir(cache), data.brown_tarball(cache)
    files = read_brown_tagged(tarball)  # raises on a tag outside the mapping
    assert len(files) == 500
    tags = {tag for _, sentences in files for sentence in sentences for _, tag in sentence}
    assert tags == set(data.UNIVERSAL_TAGS)
    raw = set()
    with tarfile.open(tarball) as archive:
        for member in archive:
            if data.corpora._BROWN_MEMBER.match(member.name):
                raw.update(token.rpartition("/")[2] for token in archive.extractfile(member).read().decode().split())
    bases = {brown_base_tag(tag) for tag in raw}
    assert len(raw) == 472 and len(bases) == 132  # as ../shared/DATA.md counts them
    assert {base for base in bases if not base.startswith("fw-")} == set(data.BROWN_TO_UNIVERSAL)
    wordnet = read_wordnet(wordnet_folder)
    assert sum(len(synset.examples) for synset in wordnet.synsets) == 48_339
    assert 45_000 < len(sense_examples(wordnet, str.split)) < 48_339
    assert wordnet.most_frequent_sense("bank", "n") == wordnet.senses[("bank", "n")][0]
    articles = data.read_bbc(bbc_folder)
    assert len(articles) == 2_225 and len({article.topic for article in articles}) == 5


# ---------------------------------------------------------------------------------------------------------------
# Training protocol


def test_the_mix_learns_its_layer_weights_and_lambda_pulls_them_to_uniform():
    """Only layer 1 carries the labels (layers 0 and 2 are noise, at other scales): with its own learning rate the
    mix puts most of its weight on layer 1 at λ = 0.001 (at the encoder's rate it barely left uniform), and λ = 1
    keeps it nearer to uniform."""
    import torch

    from modeling_elmo import ElmoConfig
    from modeling_elmo.evaluation import build_head, head_config, parameter_groups, train_head

    bilm = ElmoConfig(projection_dim=4, lstm_cell_dim=8, char_cnn_filters=[[1, 4]], char_embedding_dim=4)
    generator = torch.Generator().manual_seed(0)

    def items(count):
        labels = torch.randint(0, 2, (count,), generator=generator)
        features = []
        for label in labels:
            layers = torch.randn(3, 5, 8, generator=generator) * torch.tensor([5.0, 1.0, 0.5])[:, None, None]
            layers[1, :, 0] += 3.0 * (2 * label - 1)
            features.append(layers.half())
        return features, labels.tolist()

    train, test = items(256), items(64)

    def fit(regularization, mix_learning_rate):
        config = head_config(bilm, 2, "none", 1, regularization, 0.0)
        head = build_head("sequence", config, seed=0)
        groups = parameter_groups(head, 1e-3, mix_learning_rate)
        assert [group["lr"] for group in groups] == [1e-3, mix_learning_rate]
        assert groups[1]["params"][0] is head.scalar_mix.scalar_parameters and groups[1]["weight_decay"] == 0.0
        return train_head(
            head, train, test, sequence=True, select="all", num_layers=3, epochs=8, learning_rate=1e-3,
            mix_learning_rate=mix_learning_rate, batch_size=32, seed=0,
        )  # fmt: skip

    slow, small, large = fit(0.001, 1e-3), fit(0.001, 0.1), fit(1.0, 0.1)
    assert max(abs(weight - 1 / 3) for weight in slow["mix_weights"]) < 0.05
    assert small["mix_weights"][1] > 0.6 and small["accuracy"] > 90.0
    assert 1 / 3 < large["mix_weights"][1] < 0.5
