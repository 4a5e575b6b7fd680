"""Publish a converted ELMo folder to the Hugging Face Hub in one commit (`elmo push`).

Uploaded: the model card, `config.json`, `model.safetensors`, the tokenizer files, the remote-code `.py` files
(so the model loads with `trust_remote_code=True` where this package is not installed) and
`elmo_conversion.json`. The card is rendered again for the repository id, so its usage examples name the repo
(a `README.md` that this package did not write is uploaded as it is). Authentication is the Hub client's:
`HF_TOKEN`, or the token stored by `hf auth login`.

Nothing is uploaded unless the folder loads as users will load it: strictly with this package (every tensor
present, in shape, finite), and in a fresh interpreter where `modeling_elmo` cannot be imported, through the
folder's own remote code (`trust_remote_code=True`: this runs the folder's `.py` files, offline, with a temporary
Hugging Face home and no token in its environment).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from modeling_elmo import configuration_elmo
from modeling_elmo.configuration_elmo import ElmoError
from modeling_elmo.conversion.folder import (
    HEAD_AUTO_CLASSES,
    ConversionError,
    ModelFolder,
    read_model_folder,
    transformers_progress_bars_off,
)
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
REMOTE_CODE_CHECK_SECONDS = 600
#: The folder of this package's model files, the `.py` files a folder saved with its remote code holds copies of.
MODEL_FILES_FOLDER = Path(configuration_elmo.__file__).resolve().parent
# Run as `python -c` with the folder and its Auto class: loads the model and the tokenizer as a user without this
# package does; a failure ends with the exception's line on stderr.
_REMOTE_CODE_CHECK = """
import sys


class _HideModelingElmo:
    def find_spec(self, name, path=None, target=None):
        if name == "modeling_elmo" or name.startswith("modeling_elmo."):
            raise ImportError("modeling_elmo is hidden for this check")


sys.meta_path.insert(0, _HideModelingElmo())
import transformers

folder, auto_class = sys.argv[1:]
for name in dict.fromkeys(["AutoModel", auto_class]):
    getattr(transformers, name).from_pretrained(folder, trust_remote_code=True)
transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
"""


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
    if not references:
        missing.append("the remote code (config.json has no auto_map)")
    if not missing:
        references += _references(_json_object(model_dir / "tokenizer_config.json").get("auto_map") or {})
    code_files = sorted({reference.split(".")[0] + ".py" for reference in references})
    missing += [name for name in code_files if not (model_dir / name).is_file()]
    if missing:
        raise PublishError(
            f"{model_dir} lacks {', '.join(missing)}: save it again with this package (`save_pretrained`, or "
            "`elmo convert` for a converted model)"
        )
    token = token or require_token()
    check_loads(folder)
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
        raise PublishError(f"pushing {model_dir} to {repo_id} failed: {_first_line(error)}") from error
    return commit.commit_url


def check_loads(folder: ModelFolder) -> None:
    """Load the folder's model strictly with this package, then (model, biLM and tokenizer) in a fresh interpreter
    without it, through the folder's remote code; raise a `PublishError` with the first failure's message."""
    try:
        with transformers_progress_bars_off():
            folder.model_class.from_pretrained(folder.path)
    except ElmoError as error:
        raise PublishError(f"{folder.path} does not load: {error}") from error
    except (OSError, ValueError, RuntimeError) as error:
        raise PublishError(f"{folder.path} does not load: {_first_line(error)}") from error
    check_code_is_this_packages(folder.path)
    auto_class = HEAD_AUTO_CLASSES.get(folder.model_class, "AutoModel")
    with tempfile.TemporaryDirectory(prefix="elmo-push-check-") as home:
        hidden = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
        environment = {name: value for name, value in os.environ.items() if name not in hidden}
        environment.update(
            HF_HOME=home,
            HF_MODULES_CACHE=os.path.join(home, "modules"),
            HF_HUB_OFFLINE="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            TRANSFORMERS_VERBOSITY="error",
        )
        command = [sys.executable, "-c", _REMOTE_CODE_CHECK, str(folder.path.resolve()), auto_class]
        try:
            result = subprocess.run(
                command, env=environment, cwd=home, capture_output=True, text=True, timeout=REMOTE_CODE_CHECK_SECONDS
            )
        except subprocess.TimeoutExpired as error:
            raise PublishError(
                f"{folder.path}: loading it without the modeling_elmo package took over {error.timeout:.0f} s"
            ) from error
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise PublishError(f"{folder.path} does not load without the modeling_elmo package (remote code): {reason}")


def check_code_is_this_packages(directory: Path) -> None:
    """Refuse a folder whose `.py` files are not byte for byte this package's own remote-code files: they would run
    on the machine of every user who loads the model with `trust_remote_code=True` (and in `check_loads`)."""
    for path in sorted(directory.glob("*.py")):
        own = MODEL_FILES_FOLDER / path.name
        if not own.is_file() or own.read_bytes() != path.read_bytes():
            raise PublishError(
                f"{path} is not this package's own {path.name}: a folder's code runs on every machine that loads it "
                "with trust_remote_code=True; save the folder again with this package (save_pretrained or elmo convert)"
            )


def _first_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name when the message is empty)."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


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
