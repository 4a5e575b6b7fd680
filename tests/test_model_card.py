"""Model cards: metadata the Hub accepts, the facts of each published model, provenance, usage, citation."""

from __future__ import annotations

import hashlib
import re

import pytest
import yaml
from huggingface_hub import ModelCard
from transformers import AutoModel

from modeling_elmo import ElmoConfig
from modeling_elmo.conversion.model_card import Provenance, SourceFile, render_model_card
from modeling_elmo.conversion.original import convert_original
from modeling_elmo.conversion.presets import PUBLISHED_MODELS
from original_format import write_random_original

FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]
# Sizes and parameter counts of the published models (ELMO_FACTS.md). Medium's exact count there, 28,027,728, is
# the weight file's; the model has 16 more: the zero padding row of the character embedding (E = 16).
PUBLISHED = {
    "small": (dict(lstm_cell_dim=1024, projection_dim=128, num_highway_layers=1), "(13.6M)"),
    "medium": (dict(lstm_cell_dim=2048, projection_dim=256, num_highway_layers=1), f"{28_027_728 + 16:,} (28.0M)"),
    "original": (dict(lstm_cell_dim=4096, projection_dim=512, num_highway_layers=2), "(93.6M)"),
    "original-5.5b": (dict(lstm_cell_dim=4096, projection_dim=512, num_highway_layers=2), "(93.6M)"),
}


def sources() -> list[SourceFile]:
    return [
        SourceFile("options", "o.json", "https://example.org/o.json", 10, hashlib.sha256(b"o").hexdigest()),
        SourceFile("weights", "w.hdf5", "https://example.org/w.hdf5", 20, hashlib.sha256(b"w").hexdigest()),
    ]


def split(card: str) -> tuple[dict, str]:
    _, front_matter, body = card.split("---\n", 2)
    return yaml.safe_load(front_matter), body


@pytest.mark.parametrize("preset", list(PUBLISHED))
def test_published_model_cards(preset):
    sizes, parameters = PUBLISHED[preset]
    config = ElmoConfig(char_cnn_filters=FILTERS, char_embedding_dim=16, **sizes)
    provenance = Provenance(sources(), preset=preset, command=f"elmo convert --preset {preset} --output-dir x")
    card = render_model_card(config, provenance, "org/elmo")
    metadata, body = split(card)
    assert ModelCard(card).data.to_dict() == metadata  # the Hub client reads the same metadata back
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "feature-extraction"
    assert metadata["license"] == "apache-2.0" and metadata["language"] == ["en"]
    assert {"elmo", "custom_code", "feature-extraction"} <= set(metadata["tags"])
    published = PUBLISHED_MODELS[preset]
    if preset == "original-5.5b":
        assert "datasets" not in metadata and "5.5B tokens" in body
    else:
        assert metadata["datasets"] == ["billion-word-benchmark/lm1b"] and "1B Word Benchmark" in body
    assert f"# {published.title}\n" in body and published.stem in body
    assert re.search(
        rf"Parameters: [\d,]+ {re.escape(parameters)}"
        if parameters.startswith("(")
        else rf"Parameters: {re.escape(parameters)}",
        body,
    )
    assert ("perplexity 39.7" in body) == (preset == "original")
    assert ("| SQuAD (F1) | 85.8 |" in body) == (preset == "original")
    for source in provenance.sources:
        assert source.url in body and source.sha256 in body
    assert f"`{provenance.command}`" in body and f"modeling-elmo {provenance.package_version}" in body
    assert 'AutoModel.from_pretrained("org/elmo")' in body and "trust_remote_code=True" in body
    assert "@inproceedings{peters-etal-2018-deep" in body and "Apache License 2.0" in body
    assert "| `lstm_cell_dim` | `{}` | `lstm.dim` |".format(sizes["lstm_cell_dim"]) in body
    assert "{{" not in card


def test_a_plain_conversion_writes_a_card_with_what_is_known(tmp_path):
    options_path, weights_path = write_random_original(tmp_path / "original")
    folder = convert_original(options_path, weights_path, tmp_path / "my-elmo")
    card = (folder / "README.md").read_text()
    metadata, body = split(card)
    assert ModelCard(card).data.to_dict() == metadata
    assert "license" not in metadata and "datasets" not in metadata and "language" not in metadata
    assert body.startswith("\n# ELMo (2x16_8_28cnn_1xhighway)\n")
    for path in (options_path, weights_path):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"`{path.name}` | local file | {path.stat().st_size:,} | `{digest}`" in body
    assert 'AutoModel.from_pretrained("my-elmo")' in body
    assert "Not known to the converter" in body and "perplexity" not in body
    count = int(re.search(r"Parameters: ([\d,]+)", body).group(1).replace(",", ""))
    assert count == sum(parameter.numel() for parameter in AutoModel.from_pretrained(folder).parameters())
