"""Publish a converted ELMo folder to the Hugging Face Hub in one commit (`elmo push`).

Uploaded: the model card, `config.json`, `model.safetensors`, the tokenizer files, the remote-code `.py` files
(so the model loads with `trust_remote_code=True` where this package is not installed) and
`elmo_conversion.json`. The card is rendered again for the repository id, so its usage examples name the repo
(a `README.md` that this package did not write is uploaded as it is). Authentication is the Hub client's:
`HF_TOKEN`, or the token stored by `hf auth login`.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

from modeling_elmo.conversion.folder import ConversionError, ModelFolder, read_model_folder
from modeling_elmo.conversion.model_card import (
    CARD_NAME,
    PROVENANCE_NAME,
    Provenance,
    read_provenance,
    render_model_card,
)

# What a model folder may hold that belongs on the Hub; anything else (e.g. a user's notes) stays local.
UPLOAD_SUFFIXES = (".json", ".safetensors", ".py", ".md", ".txt", ".model", ".jinja")
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")


class PublishError(ConversionError):
    """The folder cannot be published (no token, missing files, or the Hub refused)."""


def push_to_hub(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
) -> str:
    """Upload the model folder `model_dir` to the Hub model repo `repo_id` (created if needed) in one commit on
    `revision` (a branch, created from main if needed; default main). Returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PublishError(f"the repo id must look like ORG/NAME, got {repo_id!r}")
    model_dir = Path(model_dir)
    folder = read_model_folder(model_dir)
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    references = _references(getattr(folder.config, "auto_map", None) or {})
    if not missing:
        references += _references(_json_object(model_dir / "tokenizer_config.json").get("auto_map") or {})
    code_files = sorted({reference.split(".")[0] + ".py" for reference in references})
    missing += [name for name in code_files if not (model_dir / name).is_file()]
    if missing:
        raise PublishError(f"{model_dir} lacks {', '.join(missing)}: convert it again with `elmo convert`")
    token = token or require_token()
    operations = [
        CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path))
        for path in sorted(model_dir.iterdir())
        if path.is_file()
        and path.suffix in UPLOAD_SUFFIXES
        and not path.name.startswith(".")
        and path.name not in (CARD_NAME, PROVENANCE_NAME)
    ]
    operations += [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=content)
        for name, content in _card_files(model_dir, folder, repo_id).items()
    ]
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload ELMo model from {model_dir.name}",
            revision=revision,
        )
    except _hub_errors() as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PublishError(f"pushing {model_dir} to {repo_id} failed: {first_line}") from error
    return commit.commit_url


def _hub_errors() -> tuple[type[BaseException], ...]:
    """What the Hub client raises for a refused request or a failed connection (its HTTP library is `httpx2`
    in huggingface_hub 2.x, `httpx` before)."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError, ValueError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(module).HTTPError)
        except ImportError:
            continue
    return tuple(errors)


def require_token() -> str:
    """The Hub token the client would use (`HF_TOKEN`, else the one stored by `hf auth login`), or a clear error."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise PublishError(
            "no Hugging Face token found: set HF_TOKEN, or log in with `hf auth login` (a token with write access)"
        )
    return token


def _json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PublishError(f"cannot read {path} ({error})") from error
    if not isinstance(value, dict):
        raise PublishError(f"{path} is not a JSON object")
    return value


def _references(auto_map: dict) -> list[str]:
    """The `module.Class` references of an `auto_map` (values may be a string or a [slow, fast] pair)."""
    references = []
    for value in auto_map.values():
        for reference in value if isinstance(value, (list, tuple)) else [value]:
            if reference:
                references.append(reference.split("--")[-1])
    return references


def _card_files(model_dir: Path, folder: ModelFolder, repo_id: str) -> dict[str, bytes]:
    """The card (and provenance) to upload: rendered for `repo_id` from the folder's `elmo_conversion.json`; a
    README this package did not write (no `elmo_conversion.json`) as it is; else a card with what the config
    tells."""
    provenance = read_provenance(model_dir)
    readme = model_dir / CARD_NAME
    if provenance is None and readme.is_file():
        return {CARD_NAME: readme.read_bytes()}
    if provenance is None:
        return {CARD_NAME: render_model_card(folder.config, Provenance(sources=[]), repo_id).encode("utf-8")}
    provenance.repo_id = repo_id
    return {
        CARD_NAME: render_model_card(folder.config, provenance, repo_id).encode("utf-8"),
        PROVENANCE_NAME: provenance.to_json().encode("utf-8"),
    }
