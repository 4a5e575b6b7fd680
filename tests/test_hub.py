"""Publishing with `elmo push` / `elmo convert --push-to-hub`, then pulling, with the real `huggingface_hub` client
against the fake Hub of tests/fake_hub.py (127.0.0.1).

Every step that talks to the Hub runs in a fresh interpreter (`fake_hub.run_python`), because the client reads
`HF_ENDPOINT` when it is imported: push; load with the package installed; load with it blocked (remote code
only, `trust_remote_code=True`) and through `pipeline("feature-extraction")`; then the server is stopped and
both loads run again with `HF_HUB_OFFLINE=1`, from the download cache alone.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import RepositoryNotFoundError
from transformers import AutoModel, AutoTokenizer

from fake_hub import FakeHub, run_python
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.original import convert_original
from original_format import write_random_original

TEXTS = ["The play was a hit .", "They play football on Sunday !"]

CLI = "import sys\nfrom modeling_elmo.cli import main\nsys.exit(main(sys.argv[1:]))\n"

# argv: repo id, output .npz, "remote" (trust_remote_code, package blocked) or "installed"
PULL = """
import sys
import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, pipeline

repo, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
texts = ["The play was a hit .", "They play football on Sunday !"]
if mode == "installed":
    import modeling_elmo  # noqa: F401
    kwargs = {}
else:
    try:
        import modeling_elmo  # noqa: F401
        sys.exit("modeling_elmo should be blocked")
    except ImportError:
        pass
    kwargs = {"trust_remote_code": True}
tokenizer = AutoTokenizer.from_pretrained(repo, **kwargs)
model = AutoModel.from_pretrained(repo, **kwargs).eval()
with torch.no_grad():
    layers = model(**tokenizer(texts, padding=True, return_tensors="pt"), output_hidden_states=True).hidden_states
extractor = pipeline("feature-extraction", model=repo, **kwargs)
np.savez(out, layers=np.stack([layer.numpy() for layer in layers]), pipeline=np.asarray(extractor(texts[0])))
print("loaded", type(model).__module__)
"""


@pytest.fixture
def converted(tmp_path):
    options_path, weights_path = write_random_original(tmp_path / "original", n_highway=2, seed=7)
    return convert_original(options_path, weights_path, tmp_path / "elmo-tiny")


def reference_outputs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        layers = model(**tokenizer(TEXTS, padding=True, return_tensors="pt"), output_hidden_states=True).hidden_states
        top = model(**tokenizer([TEXTS[0]], return_tensors="pt")).last_hidden_state
    return np.stack([layer.numpy() for layer in layers]), top.numpy()


def pull(repo_id: str, mode: str, tmp_path: Path, endpoint: str | None) -> dict[str, np.ndarray]:
    out = tmp_path / f"{mode}-{'online' if endpoint else 'offline'}.npz"
    result = run_python(
        PULL, repo_id, out, mode, endpoint=endpoint, hf_home=tmp_path / "hf-home", offline=endpoint is None,
        block_package=mode == "remote",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected_module = "transformers_modules" if mode == "remote" else "modeling_elmo"
    assert f"loaded {expected_module}" in result.stdout
    return dict(np.load(out))


def test_push_then_pull_with_and_without_the_package_then_offline(converted, tmp_path):
    repo_id = "org/elmo-tiny"
    layers, top = reference_outputs(converted)
    with FakeHub() as hub:
        push = run_python(
            CLI, "push", converted, "--repo-id", repo_id, "--commit-message", "Add ELMo",
            endpoint=hub.endpoint, hf_home=tmp_path / "hf-home",
        )  # fmt: skip
        assert push.returncode == 0, push.stderr[-3000:]
        assert f"pushed {converted} to {repo_id}: {hub.endpoint}/{repo_id}/commit/" in push.stdout

        commits = hub.commits(repo_id)
        assert [commit.summary for commit in commits] == ["initial commit", "Add ELMo"]  # one commit
        files = hub.files(repo_id)
        local = {path.name: path.read_bytes() for path in converted.iterdir()}
        assert set(files) == set(local)
        for name in set(local) - {"README.md", "elmo_conversion.json"}:
            assert files[name] == local[name], name
        card = files["README.md"].decode()
        assert f'AutoModel.from_pretrained("{repo_id}")' in card and "{{" not in card
        assert f'pipeline("feature-extraction", model="{repo_id}", trust_remote_code=True)' in card
        assert ModelCard(card).data.to_dict()["library_name"] == "transformers"
        assert json.loads(files["elmo_conversion.json"])["repo_id"] == repo_id

        pushed = len(hub.requests)
        for mode in ("installed", "remote"):
            outputs = pull(repo_id, mode, tmp_path, hub.endpoint)
            np.testing.assert_array_equal(outputs["layers"], layers)
            np.testing.assert_allclose(outputs["pipeline"], top, rtol=0, atol=1e-5)  # the pipeline's own batching
        assert hub.unhandled == [] and hub.errors == []
        assert {method for method, _ in hub.requests[pushed:]} <= {"GET", "HEAD"}  # pulling only reads

    for mode in ("installed", "remote"):  # the server is gone: the cache must be enough
        outputs = pull(repo_id, mode, tmp_path, endpoint=None)
        np.testing.assert_array_equal(outputs["layers"], layers)
        np.testing.assert_allclose(outputs["pipeline"], top, rtol=0, atol=1e-5)


def test_convert_push_to_hub_private_then_push_a_branch(tmp_path):
    options_path, weights_path = write_random_original(tmp_path / "original", seed=3)
    output = tmp_path / "elmo-direct"
    repo_id = "org/elmo-direct"
    with FakeHub() as hub:
        result = run_python(
            CLI, "convert", "--options", options_path, "--weights", weights_path, "--output-dir", output,
            "--push-to-hub", repo_id, "--private", endpoint=hub.endpoint, hf_home=tmp_path / "hf-home",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert hub.repos[repo_id].private
        main_files = hub.files(repo_id)
        assert main_files["model.safetensors"] == (output / "model.safetensors").read_bytes()
        assert f'AutoModel.from_pretrained("{repo_id}")' in main_files["README.md"].decode()
        assert f'AutoModel.from_pretrained("{repo_id}")' in (output / "README.md").read_text()
        with pytest.raises(RepositoryNotFoundError):  # private: invisible without a token
            HfApi(endpoint=hub.endpoint, token=False).model_info(repo_id)

        (output / "notes.txt").write_text("a second commit")
        result = run_python(
            CLI, "push", output, "--repo-id", repo_id, "--revision", "dev", "--commit-message", "Notes",
            endpoint=hub.endpoint, hf_home=tmp_path / "hf-home",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert hub.files(repo_id) == main_files  # main untouched
        dev = hub.files(repo_id, "dev")
        assert dev["notes.txt"] == b"a second commit" and dev["model.safetensors"] == main_files["model.safetensors"]
        assert [commit.summary for commit in hub.commits(repo_id)][-1] == "Notes"
        assert hub.unhandled == [] and hub.errors == []


def test_push_without_a_token_says_how_to_log_in(converted, tmp_path, monkeypatch, capsys):
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-stored-token"))
    output = tmp_path / "never-written"
    for argv in (
        ["push", str(converted), "--repo-id", "org/elmo-tiny"],
        ["convert", "--options", "o.json", "--weights", "w.hdf5", "--output-dir", str(output), "--push-to-hub", "o/n"],
    ):
        assert elmo_main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"elmo {argv[0]}: error: no Hugging Face token found"), err
        assert "HF_TOKEN" in err and "hf auth login" in err and len(err.splitlines()) == 1
    assert not output.exists()  # convert --push-to-hub checks the token before doing anything


def test_push_refuses_a_truncated_safetensors(converted, capsys):
    weights = converted / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-500])
    assert elmo_main(["push", str(converted), "--repo-id", "org/elmo-tiny"]) == 2
    err = capsys.readouterr().err
    assert str(weights) in err and "truncated" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("code_file", ["modeling_elmo.py", "configuration_elmo.py", "tokenization_elmo.py"])
def test_push_refuses_a_folder_without_its_remote_code(converted, capsys, code_file):
    (converted / code_file).unlink()
    assert elmo_main(["push", str(converted), "--repo-id", "org/elmo-tiny"]) == 2
    assert f"lacks {code_file}" in capsys.readouterr().err


def test_an_unreachable_hub_is_a_one_line_error(converted, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)  # what HF_ENDPOINT would set at import
    monkeypatch.setenv("HF_TOKEN", "dummy")
    assert elmo_main(["push", str(converted), "--repo-id", "org/elmo-tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"elmo push: error: pushing {converted} to org/elmo-tiny failed: ")
    assert len(err.splitlines()) == 1


def test_push_refuses_a_bad_repo_id(converted, capsys):
    assert elmo_main(["push", str(converted), "--repo-id", "no-namespace"]) == 2
    assert "ORG/NAME" in capsys.readouterr().err
