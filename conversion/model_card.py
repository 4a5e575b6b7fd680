"""Model cards for converted folders: `model_card.md` (next to this module) rendered into the folder's `README.md`.

The card states the Hub metadata (validated with `huggingface_hub.ModelCardData` / `ModelCard`), what the model
is, how to load it with and without this package, training data and published quality figures (for the
published models), the configuration, the parameter count, where the files came from (URLs or file names,
SHA-256 checksums, the conversion command and this package's version) and the citation.

The facts about the conversion are also kept as `elmo_conversion.json` in the folder, so that `elmo push`
can render the card again with the repository id users will load from. URLs are kept without their user name,
password, query string and fragment (`redact_url`): those parts often carry credentials (pre-signed URLs, tokens),
and both files are published with the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from importlib import metadata, resources
from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelCardData

from modeling_elmo.configuration_elmo import ElmoConfig
from modeling_elmo.conversion.presets import PUBLISHED_MODELS, PublishedModel
from modeling_elmo.modeling_elmo import ElmoModel

PROVENANCE_NAME = "elmo_conversion.json"
CARD_NAME = "README.md"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"`]+")


def redact_url(url: str) -> str:
    """`url` without its user name and password, query string and fragment: the form of a URL that may be shown
    in messages and written into files that get published (those parts often hold credentials, e.g. the
    signature of a pre-signed S3 URL). Text that is not a `scheme://` URL is returned unchanged."""
    scheme, separator, rest = url.partition("://")
    if not separator or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return url
    rest = re.split(r"[?#]", rest, maxsplit=1)[0]  # the authority ends at the first of "/?#"
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def redact_urls_in(text: str) -> str:
    """`text` with every `scheme://` URL in it passed through `redact_url`."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def package_version() -> str:
    """The installed version of this package (`modeling-elmo`), or "unknown"."""
    try:
        return metadata.version("modeling-elmo")
    except metadata.PackageNotFoundError:
        return "unknown"


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class SourceFile:
    """One input file of a conversion: its role (`options` / `weights`), file name, the URL it was downloaded
    from (None for a local file; always kept redacted, see `redact_url`), size in bytes and SHA-256."""

    role: str
    name: str
    url: str | None
    size: int
    sha256: str

    def __post_init__(self) -> None:
        if self.url is not None:
            self.url = redact_url(self.url)

    @classmethod
    def from_path(cls, role: str, path: str | os.PathLike, url: str | None = None) -> SourceFile:
        """The file at `path` (named by its local name), downloaded from `url` if given."""
        path = Path(path)
        return cls(role=role, name=path.name, url=url, size=path.stat().st_size, sha256=file_sha256(path))


@dataclass
class Provenance:
    """Where a converted model came from: the published model it is (`preset`, or None), its source files, the
    command that converted it, this package's version, and the Hub repository it is published as (if known).
    The URLs in `command` are kept redacted (`redact_url`), also when read from an older `elmo_conversion.json`."""

    sources: list[SourceFile]
    preset: str | None = None
    command: str | None = None
    package_version: str = field(default_factory=package_version)
    repo_id: str | None = None

    def __post_init__(self) -> None:
        if self.command is not None:
            self.command = redact_urls_in(self.command)

    @classmethod
    def from_local_files(cls, options_path: str | os.PathLike, weights_path: str | os.PathLike) -> Provenance:
        """Provenance of a conversion of these two local files (checksummed here)."""
        return cls(
            sources=[SourceFile.from_path("options", options_path), SourceFile.from_path("weights", weights_path)]
        )

    @property
    def published_model(self) -> PublishedModel | None:
        return PUBLISHED_MODELS.get(self.preset) if self.preset else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Provenance:
        values = json.loads(text)
        values["sources"] = [SourceFile(**source) for source in values.get("sources", [])]
        return cls(**values)


def card_data(provenance: Provenance) -> ModelCardData:
    """The card's Hub metadata."""
    published = provenance.published_model
    tags = ["elmo", "custom_code", "feature-extraction", "lstm", "character-level"]
    if published is None:
        return ModelCardData(library_name="transformers", pipeline_tag="feature-extraction", tags=tags)
    return ModelCardData(
        library_name="transformers",
        pipeline_tag="feature-extraction",
        license=published.license,
        language=list(published.language),
        datasets=list(published.datasets) or None,
        tags=tags,
    )


def render_model_card(config: ElmoConfig, provenance: Provenance, repo_id: str) -> str:
    """The card's text (YAML metadata + markdown) for a model with `config`, loaded as `repo_id`."""
    published = provenance.published_model
    data = card_data(provenance)
    with torch.device("meta"):
        num_parameters = sum(parameter.numel() for parameter in ElmoModel(config).parameters())
    values = {
        "card_data": data.to_yaml(),
        "model_name": published.title if published else f"ELMo ({_size_name(config)})",
        "num_lstm_layers": str(config.num_lstm_layers),
        "num_output_layers": str(config.num_lstm_layers + 1),
        "hidden_size": str(config.hidden_size),
        "origin": _origin(published),
        "package_version": provenance.package_version,
        "repo_id": repo_id,
        "training": _training(published),
        "config_table": _config_table(config),
        "num_parameters": f"{num_parameters:,} ({num_parameters / 1e6:.1f}M)",
        "provenance": _provenance_text(provenance),
        "license_text": _license_text(published),
    }
    text = _fill(_template(), values)
    _validate(text, data)
    return text


def write_model_card(directory: str | os.PathLike, provenance: Provenance, repo_id: str | None = None) -> Path:
    """Render the card of the model folder `directory` into its `README.md` and keep `provenance` beside it as
    `elmo_conversion.json`. `repo_id` (default: the provenance's, else the folder's name) goes in the usage."""
    directory = Path(directory)
    config = ElmoConfig.from_pretrained(directory)
    repo_id = repo_id or provenance.repo_id or directory.name
    (directory / PROVENANCE_NAME).write_text(provenance.to_json(), encoding="utf-8")
    card_path = directory / CARD_NAME
    card_path.write_text(render_model_card(config, provenance, repo_id), encoding="utf-8")
    return card_path


def read_provenance(directory: str | os.PathLike) -> Provenance | None:
    """The provenance kept in a converted folder, or None if the folder has none."""
    path = Path(directory) / PROVENANCE_NAME
    return Provenance.from_json(path.read_text(encoding="utf-8")) if path.is_file() else None


def _template() -> str:
    return resources.files("modeling_elmo.conversion").joinpath("model_card.md").read_text(encoding="utf-8")


def _fill(template: str, values: dict[str, str]) -> str:
    used = set(_PLACEHOLDER.findall(template))
    if used != set(values):
        raise RuntimeError(f"model_card.md placeholders {sorted(used)} do not match the values {sorted(values)}")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _validate(text: str, data: ModelCardData) -> None:
    """Parse the rendered card back with `huggingface_hub.ModelCard`: its metadata must be exactly `data`."""
    parsed = ModelCard(text).data.to_dict()
    if parsed != data.to_dict():
        raise RuntimeError(f"the rendered card's metadata {parsed} differs from {data.to_dict()}")


def _size_name(config: ElmoConfig) -> str:
    return (
        f"{config.num_lstm_layers}x{config.lstm_cell_dim}_{config.projection_dim}_"
        f"{config.num_filters}cnn_{config.num_highway_layers}xhighway"
    )


def _origin(published: PublishedModel | None) -> str:
    if published is None:
        return "The original (bilm-tf) files of this model are described under Provenance."
    return f"This is `{published.stem}`, one of the English models AllenNLP published with the paper."


def _training(published: PublishedModel | None) -> str:
    if published is None:
        return "Not known to the converter: see the source of the original files."
    lines = [f"Trained on {published.training_data}."]
    if published.perplexity is not None:
        lines.append(
            f"Published quality: average forward/backward perplexity {published.perplexity} on the "
            "1B Word Benchmark test set."
        )
    if published.downstream_results:
        lines += ["", "Results reported in the paper (Table 1, baseline task models + ELMo from this biLM):", ""]
        lines += ["| task | score |", "|---|---|"]
        lines += [f"| {task} | {score} |" for task, score in published.downstream_results]
    if published.perplexity is None and not published.downstream_results:
        lines.append("No quality figures for this model are reproduced here.")
    return "\n".join(lines)


def _config_table(config: ElmoConfig) -> str:
    rows = [
        ("char_embedding_dim", config.char_embedding_dim, "char_cnn.embedding.dim"),
        ("char_cnn_filters", config.char_cnn_filters, "char_cnn.filters"),
        ("char_cnn_activation", config.char_cnn_activation, "char_cnn.activation"),
        ("num_highway_layers", config.num_highway_layers, "char_cnn.n_highway"),
        ("max_characters_per_token", config.max_characters_per_token, "char_cnn.max_characters_per_token"),
        ("num_characters", config.num_characters, "char_cnn.n_characters"),
        ("projection_dim", config.projection_dim, "lstm.projection_dim"),
        ("lstm_cell_dim", config.lstm_cell_dim, "lstm.dim"),
        ("num_lstm_layers", config.num_lstm_layers, "lstm.n_layers"),
        ("cell_clip", config.cell_clip, "lstm.cell_clip"),
        ("projection_clip", config.projection_clip, "lstm.proj_clip"),
        ("use_skip_connections", config.use_skip_connections, "lstm.use_skip_connections"),
        ("state_mode", config.state_mode, None),
    ]
    lines = ["| config field | value | original option |", "|---|---|---|"]
    for name, value, option in rows:
        where = f"`{option}`" if option else "none (this port: how the LSTM state starts each call)"
        lines.append(f"| `{name}` | `{json.dumps(value)}` | {where} |")
    return "\n".join(lines)


def _provenance_text(provenance: Provenance) -> str:
    lines = ["| file | source | size (bytes) | SHA-256 |", "|---|---|---|---|"]
    for source in provenance.sources:
        origin = source.url or "local file"
        lines.append(f"| {source.role}: `{source.name}` | {origin} | {source.size:,} | `{source.sha256}` |")
    lines.append("")
    if provenance.command:
        lines.append(f"Converted with `{provenance.command}` (modeling-elmo {provenance.package_version}).")
    else:
        lines.append(f"Converted with modeling-elmo {provenance.package_version}.")
    lines.append(
        "The conversion maps every dataset of the weight file onto the model without changing a value "
        "(`elmo export-original` writes the original files back, bit for bit)."
    )
    return "\n".join(lines)


def _license_text(published: PublishedModel | None) -> str:
    if published is None:
        return "Not known to the converter: the licence of the original weights applies."
    return "The AllenNLP ELMo weights are released under the Apache License 2.0."
