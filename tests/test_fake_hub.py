"""The fake Hub (tests/fake_hub.py) answers the real `huggingface_hub` client as the Hub does.

In-process, with the client pointed at the server by explicit `endpoint=` arguments (tests that need
`HF_ENDPOINT` itself use `fake_hub.run_python`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError


@pytest.fixture
def api(fake_hub) -> HfApi:
    return HfApi(endpoint=fake_hub.endpoint, token="dummy")


def test_commits_listing_and_downloads(fake_hub, api, tmp_path):
    url = api.create_repo("org/repo")
    assert url == f"{fake_hub.endpoint}/org/repo"
    api.create_repo("org/repo", exist_ok=True)
    with pytest.raises(Exception, match="409"):
        api.create_repo("org/repo")
    first = api.create_commit(
        "org/repo",
        [CommitOperationAdd("README.md", b"---\ntags:\n- elmo\n---\n# Card\n"), CommitOperationAdd("a/b.txt", b"x")],
        commit_message="first",
    )
    assert first.commit_url == f"{fake_hub.endpoint}/org/repo/commit/{first.oid}"
    info = api.model_info("org/repo")
    assert (
        info.sha == first.oid
        and info.tags == ["elmo"]
        and {s.rfilename for s in info.siblings}
        == {
            "README.md",
            "a/b.txt",
        }
    )
    assert sorted(entry.path for entry in api.list_repo_tree("org/repo")) == ["README.md", "a"]
    assert sorted(entry.path for entry in api.list_repo_tree("org/repo", recursive=True)) == [
        "README.md",
        "a",
        "a/b.txt",
    ]
    second = api.create_commit("org/repo", [CommitOperationDelete("a/b.txt")], commit_message="second")
    assert fake_hub.files("org/repo") == {"README.md": b"---\ntags:\n- elmo\n---\n# Card\n"}
    path = hf_hub_download("org/repo", "a/b.txt", revision=first.oid, cache_dir=tmp_path, endpoint=fake_hub.endpoint)
    assert Path(path).read_bytes() == b"x"
    assert api.model_info("org/repo", revision=first.oid).sha == first.oid != second.oid
    assert fake_hub.unhandled == [] and fake_hub.errors == []


def test_errors_are_the_clients_typed_exceptions(fake_hub, api, tmp_path):
    api.create_repo("org/repo")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/missing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/repo", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/repo", "missing.json", cache_dir=tmp_path, endpoint=fake_hub.endpoint)
    with pytest.raises(ValueError, match=r"Invalid metadata in README\.md"):
        api.create_commit("org/repo", [CommitOperationAdd("README.md", b"---\n: [\n---\n")], commit_message="bad")


def test_branches_and_private_repos(fake_hub, api):
    api.create_repo("org/secret", private=True)
    api.create_branch("org/secret", branch="dev")
    api.create_commit("org/secret", [CommitOperationAdd("f.txt", b"dev")], commit_message="on dev", revision="dev")
    assert fake_hub.files("org/secret", "dev") == {"f.txt": b"dev"} and fake_hub.files("org/secret") == {}
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=fake_hub.endpoint, token=False).model_info("org/secret")
