"""The package data (what a wheel ships besides code) names no path of the machine that built it.

Scanned: every file under `modeling_elmo/pretrained/` (the shipped model: config, the weights' header, tokenizer,
vocabulary, model card, run records, downstream results and plots) and `conversion/model_card.md`. A build path
is one of this machine's own folders (the repository, the home, temporary and current folders, the Python
environment) or any absolute path into the folders where builds usually live (`/home/`, `/root/`, `/tmp/`,
`/work/`, `/Users/`, `C:\\Users\\`, …), outside URLs: `build_paths_in` of `scripts/package_shipped_model.py`,
which also refuses to install a model whose files name one. Its own tests here show what it catches and passes.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "scripts"))

from package_shipped_model import build_paths_in, install, shipped_text  # noqa: E402

from modeling_elmo.pretrained import DEFAULT_MODEL  # noqa: E402

PACKAGE_DATA_ROOTS = (REPOSITORY / "modeling_elmo" / "pretrained", REPOSITORY / "conversion" / "model_card.md")


def package_data_files() -> list[Path]:
    """Every file of the package data, without Python's byte-code caches (which a wheel does not ship)."""
    files = []
    for root in PACKAGE_DATA_ROOTS:
        if root.is_file():
            files.append(root)
            continue
        files.extend(path for path in sorted(root.rglob("*")) if path.is_file() and "__pycache__" not in path.parts)
    return files


def test_package_data_is_what_the_wheel_ships() -> None:
    """The scan covers the shipped model, its downstream results and the model-card template."""
    names = {path.relative_to(REPOSITORY).as_posix() for path in package_data_files()}
    model = "modeling_elmo/pretrained/elmo-english-small"
    expected = {
        "conversion/model_card.md",
        f"{model}/config.json",
        f"{model}/model.safetensors",
        f"{model}/README.md",
        f"{model}/downstream/results.md",
        f"{model}/downstream/results.json",
    }
    assert expected <= names, sorted(expected - names)


def test_the_wheel_ships_every_file_of_the_shipped_model_and_no_link() -> None:
    """pyproject.toml's package-data patterns (setuptools globs them) take in every file of the shipped model, and the
    package folder holds no symbolic link (a wheel cannot hold one)."""
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    root = REPOSITORY / "modeling_elmo" / "pretrained"
    shipped = {
        name
        for pattern in setuptools["package-data"]["modeling_elmo.pretrained"]
        for name in glob.glob(pattern, root_dir=root)
        if (root / name).is_file()
    }
    files = {path.relative_to(root).as_posix() for path in package_data_files() if root in path.parents}
    files.discard("__init__.py")  # the module, not data
    assert shipped == files
    assert not [path for path in (REPOSITORY / "modeling_elmo").rglob("*") if path.is_symlink()]


@pytest.mark.parametrize("path", package_data_files(), ids=lambda path: path.relative_to(REPOSITORY).as_posix())
def test_no_build_machine_path(path: Path) -> None:
    found = build_paths_in(shipped_text(path))
    assert not found, f"{path.relative_to(REPOSITORY)} names build paths: {found}"


def test_shipped_results_name_the_model() -> None:
    downstream = Path(DEFAULT_MODEL) / "downstream"
    assert json.loads((downstream / "results.json").read_text(encoding="utf-8"))["model"] == "elmo-english-small"
    assert "Model: `elmo-english-small` (" in (downstream / "results.md").read_text(encoding="utf-8")


def test_safetensors_header_is_scanned() -> None:
    header = shipped_text(Path(DEFAULT_MODEL) / "model.safetensors")
    assert "__metadata__" in json.loads(header)


@pytest.mark.parametrize(
    "text",
    [
        '"model": "/work/main/modeling_elmo/pretrained/elmo-english-small"',
        "Model: `/home/alice/models/elmo` (4,689,632 parameters",
        "cache at /tmp/tmpab12cd/out",
        "/root/.cache/modeling-elmo/brown",
        "/Users/bob/elmo",
        '"C:\\\\Users\\\\bob\\\\elmo"',
        "C:\\Users\\bob\\elmo",
        "see file:///srv/data",
        f"written in {REPOSITORY}",
        f'"{REPOSITORY / "cache" / "out"}"',
        os.path.join(tempfile.gettempdir(), "run"),
    ],
)
def test_build_paths_are_found(text: str) -> None:
    assert build_paths_in(text.encode())


@pytest.mark.parametrize(
    "text",
    [
        "Model: `elmo-english-small` (4,689,632 parameters",
        "https://example.org/home/work/tmp/data",
        "cache/corpus/train.txt and cache/tmp/x",
        "modeling_elmo/pretrained/elmo-english-small/downstream/",
        "the ratio 1/tmp/2 and ~/work/x",
        "<S> … </S>",
    ],
)
def test_relative_paths_and_urls_pass(text: str) -> None:
    assert not build_paths_in(text.encode())


# ---- scripts/package_shipped_model.py


def training_run(folder: Path) -> Path:
    """A finished training run's folder made from the shipped model's files (plus the training log it lacks)."""
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt", "evaluation.json"):
        shutil.copyfile(Path(DEFAULT_MODEL) / name, folder / name)
    shutil.copyfile(Path(DEFAULT_MODEL) / "training_run.json", folder / "training_run.json")
    (folder / "training_log.jsonl").write_text('{"loss": 5.0}\n{"train_runtime": 3600.0}\n', encoding="utf-8")
    return folder


def evaluation_run(folder: Path, model: str) -> Path:
    """An `elmo evaluate` output folder (the shipped results and a plot) that names the model as `model`."""
    folder.mkdir()
    downstream = Path(DEFAULT_MODEL) / "downstream"
    results = json.loads((downstream / "results.json").read_text(encoding="utf-8"))
    results["model"] = model
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    report = (downstream / "results.md").read_text(encoding="utf-8").replace("`elmo-english-small`", f"`{model}`")
    (folder / "results.md").write_text(report, encoding="utf-8")
    shutil.copyfile(downstream / "pos.png", folder / "pos.png")
    return folder


def test_install_names_the_model_not_the_path_it_was_evaluated_from(tmp_path: Path) -> None:
    evaluated_from = str(tmp_path / "somewhere" / "elmo-english-small")
    target = tmp_path / "pretrained" / "elmo-english-small"
    install(training_run(tmp_path / "run"), target, "primed", evaluation_run(tmp_path / "evaluation", evaluated_from))
    results = json.loads((target / "downstream" / "results.json").read_text(encoding="utf-8"))
    assert results["model"] == "elmo-english-small"
    report = (target / "downstream" / "results.md").read_text(encoding="utf-8")
    assert "Model: `elmo-english-small` (" in report and evaluated_from not in report
    assert (target / "downstream" / "pos.png").read_bytes() == (Path(DEFAULT_MODEL) / "downstream/pos.png").read_bytes()
    for path in target.rglob("*"):
        if path.is_file():
            assert not build_paths_in(shipped_text(path), [tmp_path]), path
    assert json.loads((target / "config.json").read_text(encoding="utf-8"))["state_mode"] == "primed"


def test_install_refuses_files_naming_build_paths(tmp_path: Path) -> None:
    """A path the renaming does not cover (here in a note of results.md) stops the installation; an installed
    model already at the target stays as it was, and no staging folder is left."""
    evaluation = evaluation_run(tmp_path / "evaluation", "elmo-english-small")
    with (evaluation / "results.md").open("a", encoding="utf-8") as handle:
        handle.write(f"\nData read from {tmp_path / 'cache'}.\n")
    target = tmp_path / "pretrained" / "elmo-english-small"
    target.mkdir(parents=True)
    (target / "marker.txt").write_text("installed before", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"downstream/results\.md"):
        install(training_run(tmp_path / "run"), target, "primed", evaluation)
    assert [path.name for path in target.parent.iterdir()] == ["elmo-english-small"]
    assert [path.name for path in target.iterdir()] == ["marker.txt"]


def test_repackaging_the_shipped_model_gives_the_committed_folder(tmp_path: Path) -> None:
    """The script installs exactly the committed folder, byte for byte: from a run whose settings carry the
    remote-code entries that a save by the registered classes writes (removed: the shipped folder holds no remote
    code), in another state mode (set), with the shipped results as the evaluation."""
    run = training_run(tmp_path / "run")
    for name, entries in (
        ("config.json", {"auto_map": {"AutoModel": "modeling_elmo.ElmoModel"}, "state_mode": "stateless"}),
        ("tokenizer_config.json", {"auto_map": {"AutoTokenizer": ["tokenization_elmo.ElmoTokenizer", None]}}),
    ):
        settings = json.loads((run / name).read_text(encoding="utf-8"))
        (run / name).write_text(json.dumps({**settings, **entries, "custom_pipelines": {}}), encoding="utf-8")
    runtime = float((Path(DEFAULT_MODEL) / "README.md").read_text(encoding="utf-8").split("Training took ")[1][:3])
    (run / "training_log.jsonl").write_text(f'{{"loss": 5.0}}\n{{"train_runtime": {runtime * 3600}}}\n')
    target = tmp_path / "pretrained" / "elmo-english-small"
    install(run, target, "primed", Path(DEFAULT_MODEL) / "downstream")
    committed = {path.relative_to(DEFAULT_MODEL).as_posix(): path for path in Path(DEFAULT_MODEL).rglob("*")}
    installed = {path.relative_to(target).as_posix(): path for path in target.rglob("*")}
    assert sorted(installed) == sorted(committed)
    for name, path in committed.items():
        if path.is_file():
            assert installed[name].read_bytes() == path.read_bytes(), name


def test_the_readme_embeds_no_relative_images():
    """The README is the wheel's long description, where a relative image link is broken."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)|<img [^>]*src=\"([^\"]+)\"", readme)
    relative = [link for pair in images for link in pair if link and not link.startswith(("https://", "http://"))]
    assert relative == []
