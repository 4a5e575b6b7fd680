"""The English model shipped inside the package: it loads offline, gives finite vectors, is the default of the
command line, `ElmoEmbedder` and the `elmo-embeddings` pipeline, and its model card states its own figures."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer, pipeline

import modeling_elmo
from modeling_elmo import ElmoEmbedder, ElmoEmbeddingsPipeline, ElmoForBidirectionalLM, ElmoModel, ElmoTokenizerFast
from modeling_elmo.cli import main as elmo
from modeling_elmo.perplexity import evaluate_perplexity, file_sentences, unigram_perplexity
from modeling_elmo.pretrained import DEFAULT_MODEL
from modeling_elmo.vocabulary import read_vocabulary

FOLDER = Path(DEFAULT_MODEL)
REPOSITORY = Path(__file__).resolve().parents[1]
HELD_OUT = REPOSITORY / "cache" / "corpus" / "heldout-brown-test.txt"
TRAINING_VOCABULARY = REPOSITORY / "cache" / "shipped" / "vocab.txt"
TEXTS = [
    "The play was a hit.",
    "They play football on Sunday!",
    "Emoji 😀, café\x01 and a " + "very" * 40 + "long word",
]


@pytest.fixture(scope="module")
def model() -> ElmoModel:
    return AutoModel.from_pretrained(DEFAULT_MODEL).eval()


def test_the_folder_is_small_readable_and_complete():
    weights = FOLDER / "model.safetensors"
    assert weights.stat().st_size < 30_000_000
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt", "README.md"):
        mode = (FOLDER / name).stat().st_mode
        assert mode & stat.S_IROTH, f"{name} is not world-readable (mode {oct(mode)})"


def test_the_folder_holds_no_remote_code_and_no_links():
    """The package's own registered classes run the shipped model: no `.py` files (copies of the package's would be
    duplicate code), no links (a wheel cannot hold them), no `auto_map` or `custom_pipelines` (which makes
    `pipeline("elmo-embeddings", model=DEFAULT_MODEL)` demand `trust_remote_code=True`)."""
    paths = list(FOLDER.rglob("*"))
    assert not [path.name for path in paths if path.is_symlink()]
    assert not [path.name for path in paths if path.suffix == ".py"]
    for name in ("config.json", "tokenizer_config.json"):
        settings = json.loads((FOLDER / name).read_text(encoding="utf-8"))
        assert not {"auto_map", "custom_pipelines"} & set(settings), name


@pytest.mark.parametrize("trust_remote_code", [None, False, True])
def test_the_embeddings_pipeline_runs_the_shipped_model_with_the_package(model, trust_remote_code):
    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    with torch.no_grad():
        expected = model(**tokenizer([TEXTS[0]], return_tensors="pt")).last_hidden_state[0].numpy()
    extractor = pipeline("elmo-embeddings", model=DEFAULT_MODEL, trust_remote_code=trust_remote_code)
    assert type(extractor) is ElmoEmbeddingsPipeline
    assert type(extractor.model) is ElmoModel
    np.testing.assert_allclose(extractor(TEXTS[0], layer="top")["vectors"], expected, atol=1e-5)


def test_a_folder_saved_from_it_carries_the_remote_code(tmp_path):
    """What `save_pretrained` (and so `push_to_hub`) writes from the shipped model: the package's code files, the fast
    tokenizer's among them, and the maps naming them (tests/test_remote_code.py loads such a folder without the
    package)."""
    AutoModel.from_pretrained(DEFAULT_MODEL).save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    assert type(tokenizer) is ElmoTokenizerFast
    tokenizer.save_pretrained(tmp_path)
    package = Path(modeling_elmo.__file__).parent
    for name in ("configuration_elmo.py", "modeling_elmo.py", "pipeline_elmo.py", "tokenization_elmo.py",
                 "tokenization_elmo_fast.py"):  # fmt: skip
        assert (tmp_path / name).read_bytes() == (package / name).read_bytes(), name
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["auto_map"]["AutoModel"] == "modeling_elmo.ElmoModel"
    assert config["custom_pipelines"]["elmo-embeddings"]["impl"] == "pipeline_elmo.ElmoEmbeddingsPipeline"
    tokenizer_config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tokenizer_config["auto_map"]["AutoTokenizer"] == [
        "tokenization_elmo.ElmoTokenizer",
        "tokenization_elmo_fast.ElmoTokenizerFast",
    ]


def test_loads_offline_in_a_fresh_process_and_gives_finite_vectors(tmp_path):
    script = (
        "import torch, modeling_elmo\n"
        "from transformers import AutoModel, AutoTokenizer\n"
        "from modeling_elmo.pretrained import DEFAULT_MODEL\n"
        "model = AutoModel.from_pretrained(DEFAULT_MODEL).eval()\n"
        "tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL)\n"
        "with torch.no_grad():\n"
        "    out = model(**tokenizer(['The play was a hit .'], return_tensors='pt'), output_hidden_states=True)\n"
        "top = out.last_hidden_state\n"
        "print(len(out.hidden_states), tuple(top.shape), bool(torch.isfinite(top).all()))\n"
    )
    environment = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    environment["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there: any download attempt would fail
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "(1,", "6,", "256)", "True"]


def test_vectors_are_finite_and_contextual(model):
    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    with torch.no_grad():
        layers = model(**tokenizer(TEXTS, return_tensors="pt", padding=True), output_hidden_states=True).hidden_states
    assert all(torch.isfinite(layer).all() for layer in layers)
    # "play" is word 1 of both first texts: the same context-free vector, different contextual ones
    assert torch.equal(layers[0][0, 1], layers[0][1, 1])
    for layer in layers[1:]:
        assert not torch.allclose(layer[0, 1], layer[1, 1], atol=1e-3)


def test_ships_primed_with_a_state_computed_from_text(model):
    assert model.config.state_mode == "primed"
    assert model.primed_hidden_state.abs().sum() > 0 and model.primed_cell_state.abs().sum() > 0


def test_is_the_default_of_the_embedder_the_pipeline_and_the_command_line(model, tmp_path):
    expected = ElmoEmbedder(model).embed_sentences(TEXTS[:2], layers="top")
    by_default = ElmoEmbedder().embed_sentences(TEXTS[:2], layers="top")
    for got, want in zip(by_default, expected, strict=True):
        np.testing.assert_array_equal(got, want)

    extractor = pipeline("elmo-embeddings")
    assert Path(extractor.model.name_or_path) == FOLDER
    np.testing.assert_allclose(extractor(TEXTS[0], layer="top")["vectors"], expected[0], atol=1e-5)

    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS[:2]) + "\n", encoding="utf-8")
    assert elmo(["embed", str(source), str(tmp_path / "out.hdf5"), "--layers", "top", "--no-progress"]) == 0
    with h5py.File(tmp_path / "out.hdf5", "r") as written:
        np.testing.assert_allclose(written["0"][()], expected[0], atol=1e-5)
        np.testing.assert_allclose(written["1"][()], expected[1], atol=1e-5)


def test_model_card_reports_the_recorded_evaluation():
    card = (FOLDER / "README.md").read_text(encoding="utf-8")
    evaluation = json.loads((FOLDER / "evaluation.json").read_text(encoding="utf-8"))
    run = json.loads((FOLDER / "training_run.json").read_text(encoding="utf-8"))
    assert f"{run['max_steps']:,} steps" in card
    for row in evaluation["held_out"].values():
        assert f"{row['unigram_perplexity']:.1f}" in card
        for mode in ("stateless", "primed", "stateful"):
            values = row[mode]
            assert f"{values['forward_perplexity']:.1f} | {values['backward_perplexity']:.1f}" in card


@pytest.mark.skipif(
    not (HELD_OUT.is_file() and TRAINING_VOCABULARY.is_file()),
    reason="needs the held-out corpus and training vocabulary (python scripts/fetch_corpora.py and the recipe)",
)
def test_beats_the_unigram_baseline_on_held_out_text():
    language_model = ElmoForBidirectionalLM.from_pretrained(DEFAULT_MODEL).eval()
    sentences = list(file_sentences(HELD_OUT, str.split))[:200]
    result = evaluate_perplexity(language_model, sentences, batch_size=50)
    baseline = unigram_perplexity(read_vocabulary(TRAINING_VOCABULARY), sentences)
    assert result.forward_perplexity < baseline and result.backward_perplexity < baseline
