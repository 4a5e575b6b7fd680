"""A small fake Hugging Face Hub on 127.0.0.1 for tests that use the real `huggingface_hub` client.

Nothing is mocked on the client side: `HfApi`, `hf_hub_download`, `snapshot_download`, `transformers`'
`from_pretrained` and `pipeline` all talk HTTP to this server through `HF_ENDPOINT`. Repositories live in
memory (every commit keeps a full snapshot `{path: bytes}`), so a test can inspect exactly what was pushed.

Usage::

    from fake_hub import FakeHub, run_python

    with FakeHub() as hub:                       # or the `fake_hub` fixture from tests/conftest.py
        result = run_python(PUSH_SCRIPT, folder, "org/name", endpoint=hub.endpoint, hf_home=tmp_path / "hf")
        assert result.returncode == 0, result.stderr
        hub.files("org/name")                    # {"config.json": b"...", ...} at the head of main
    # the server is stopped here: `run_python(..., offline=True)` then proves the cache is enough

`huggingface_hub` reads `HF_ENDPOINT` when it is imported, so anything that talks to the fake Hub must run
in a fresh interpreter: `run_python` / `hub_env` set `HF_ENDPOINT`, `HF_TOKEN=dummy` and a private
`HF_HOME` (the download cache) before the child imports anything.

Endpoints (what huggingface_hub 2.x and transformers 5.x call for push and pull of a model repo):

- `POST /api/repos/create`: 200 `{"url", "name", "id"}`; 409 when the repo exists (`exist_ok=True` accepts it).
- `POST /api/validate-yaml`: parses the README's YAML front matter; 200 `{"errors": [], "warnings": []}` or 400.
- `POST /api/models/{id}/preupload/{rev}`: every file gets `uploadMode: "regular"` (content inlined in the
  commit, no LFS), with the git blob oid of the file already there, so the client skips unchanged files.
- `POST /api/models/{id}/commit/{rev}`: NDJSON lines `header`, `file` (base64), `deletedFile`, `deletedFolder`;
  answers `commitOid` and a `commitUrl` on the endpoint host.
- `POST /api/models/{id}/branch/{branch}`: creates a branch (from `startingPoint` or main); 409 if it exists.
- `GET /api/models/{id}` and `GET /api/models/{id}/revision/{rev}`: model info (`id`, `sha`, `private`,
  `siblings`, and `cardData` / `tags` / `pipeline_tag` / `library_name` from the README's metadata).
- `GET /api/models/{id}/tree/{rev}[/{path}]`: the files and folders under `path` (`?recursive=true`: all levels).
- `HEAD` / `GET /{id}/resolve/{rev}/{path}`: the file, with `X-Repo-Commit`, `ETag` (its git blob oid) and
  `Content-Length`; `Range` requests answer 206.
- `GET /api/whoami-v2`: a fake user `fake-user`.

Errors carry the Hub's `X-Error-Code` header, which the client turns into its typed exceptions: an unknown repo
answers 401 `RepoNotFound`, an unknown revision 404 `RevisionNotFound`, an unknown file 404 `EntryNotFound`.
Writes need an `Authorization: Bearer ...` header (401 without one); private repos also need it to be read.
Every request is recorded in `FakeHub.requests` as `(method, path)`; requests that match no endpoint answer
404 and are also kept in `FakeHub.unhandled`, so a test can assert that the client needed nothing else; a
failure inside the fake Hub itself answers 500 and is kept in `FakeHub.errors`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

FAKE_USER = "fake-user"
DEFAULT_BRANCH = "main"

# A prelude for `run_python(..., block_package=True)`: makes `import modeling_elmo` fail in the child, so only
# the remote code copied into a model folder can provide the ELMo classes.
BLOCK_PACKAGE_PRELUDE = """
import sys as _sys

class _BlockModelingElmo:
    def find_spec(self, name, path=None, target=None):
        if name == "modeling_elmo" or name.startswith("modeling_elmo."):
            raise ImportError("modeling_elmo is blocked in this test")
        return None

_sys.meta_path.insert(0, _BlockModelingElmo())
"""


def git_blob_oid(content: bytes) -> str:
    """The git object id of a blob, as the Hub reports it for regular (non-LFS) files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    """One commit: its id, message, parent, and the full tree `{path: bytes}` after it."""

    oid: str
    summary: str
    parent: str | None
    files: dict[str, bytes]


@dataclass
class Repo:
    """A model repository: its commits by id and its branches (`name -> commit id`)."""

    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """The commit a branch name or a full commit id points to, or None."""
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)


class HubError(Exception):
    """An error answer: HTTP status, the Hub's `X-Error-Code` (or None) and a message."""

    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeHub:
    """The fake Hub server. Start it with `with FakeHub() as hub:` (or `start()` / `stop()`); `hub.endpoint` is
    its base URL (`http://127.0.0.1:<free port>`), to be passed as `HF_ENDPOINT`."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._commit_counter = itertools.count()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    def start(self) -> FakeHub:
        """Listen on a free port of 127.0.0.1 and serve from a daemon thread."""
        hub = self

        class Handler(_HubRequestHandler):
            fake_hub = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port (later requests fail to connect, as when offline)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- inspection helpers for tests ----

    def files(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> dict[str, bytes]:
        """The files of `repo_id` at `revision` (a branch or a commit id)."""
        commit = self.repos[repo_id].resolve(revision)
        if commit is None:
            raise KeyError(f"{repo_id} has no revision {revision!r}")
        return dict(commit.files)

    def commits(self, repo_id: str) -> list[Commit]:
        """The commits of `repo_id` in the order they were made (the first is the repo's creation)."""
        return list(self.repos[repo_id].commits.values())

    # ---- state changes (called by the request handler, under the lock) ----

    def create_repo(self, repo_id: str, private: bool) -> Repo:
        with self._lock:
            if repo_id in self.repos:
                raise HubError(409, None, "You already created this model repo")
            repo = Repo(repo_id, private)
            initial = Commit(self._new_oid(repo_id, "initial commit"), "initial commit", None, {})
            repo.commits[initial.oid] = initial
            repo.branches[DEFAULT_BRANCH] = initial.oid
            self.repos[repo_id] = repo
            return repo

    def commit(self, repo: Repo, branch: str, summary: str, operations: list[dict[str, Any]]) -> Commit:
        with self._lock:
            if branch not in repo.branches:
                raise HubError(404, "RevisionNotFound", f"Invalid rev id: {branch}")
            parent = repo.commits[repo.branches[branch]]
            files = dict(parent.files)
            for operation in operations:
                key, value = operation["key"], operation["value"]
                path = value["path"]
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise HubError(400, None, f"unsupported encoding for {path}")
                    files[path] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if path not in files:
                        raise HubError(404, "EntryNotFound", f"A file with this name doesn't exist: {path}")
                    del files[path]
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    files = {name: data for name, data in files.items() if not name.startswith(prefix)}
                else:
                    raise HubError(400, None, f"the fake Hub does not support {key!r} operations (no LFS)")
            commit = Commit(self._new_oid(repo.repo_id, summary, parent.oid), summary, parent.oid, files)
            repo.commits[commit.oid] = commit
            repo.branches[branch] = commit.oid
            return commit

    def create_branch(self, repo: Repo, branch: str, starting_point: str | None) -> None:
        with self._lock:
            if branch in repo.branches:
                raise HubError(409, None, f"Reference already exists: refs/heads/{branch}")
            start = repo.resolve(starting_point or DEFAULT_BRANCH)
            if start is None:
                raise HubError(404, "RevisionNotFound", f"Invalid rev id: {starting_point}")
            repo.branches[branch] = start.oid

    def _new_oid(self, *parts: str) -> str:
        return hashlib.sha1("\0".join([*parts, str(next(self._commit_counter))]).encode()).hexdigest()


class _HubRequestHandler(BaseHTTPRequestHandler):
    """Routes one request to the fake Hub (the `fake_hub` class attribute is set per server)."""

    fake_hub: FakeHub
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        hub = self.fake_hub
        hub.requests.append((method, self.path))
        body = self._read_body()
        try:
            for route_method, pattern, handler in _ROUTES:
                match = pattern.fullmatch(path) if method in route_method else None
                if match:
                    params = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                    handler(self, method, params, query, body)
                    return
            hub.unhandled.append((method, self.path))
            raise HubError(404, None, f"the fake Hub has no endpoint for {method} {path}")
        except HubError as error:
            self._send_error(error)
        except Exception as error:  # a bug in the fake Hub: answer 500 and keep it for the test to see
            hub.errors.append(f"{method} {self.path}: {error!r}")
            self._send_error(HubError(500, None, f"fake Hub error: {error!r}"))

    # ---- plumbing ----

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "").startswith("Bearer ")

    def _send(self, status: int, body: bytes, headers: dict[str, str], method: str = "GET") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _send_json(self, value: Any, status: int = 200, method: str = "GET") -> None:
        self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json"}, method)

    def _send_error(self, error: HubError) -> None:
        one_line = " ".join(error.message.split())  # header values cannot hold line breaks
        headers = {"Content-Type": "application/json", "X-Error-Message": one_line}
        if error.code:
            headers["X-Error-Code"] = error.code
        self._send(error.status, json.dumps({"error": error.message}).encode(), headers, self.command)

    def _repo(self, repo_id: str, write: bool = False) -> Repo:
        repo = self.fake_hub.repos.get(repo_id)
        if (write or (repo is not None and repo.private)) and not self._authorized():
            raise HubError(401, "RepoNotFound" if repo is None or repo.private else None, "Invalid credentials")
        if repo is None:
            raise HubError(401, "RepoNotFound", f"Repository Not Found for {repo_id}")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    # ---- endpoints ----

    def create_repo(self, method: str, params: dict, query: dict, body: bytes) -> None:
        if not self._authorized():
            raise HubError(401, None, "You must be authenticated to create a repo")
        payload = json.loads(body or b"{}")
        if payload.get("type", "model") != "model":
            raise HubError(400, None, "the fake Hub only hosts model repos")
        repo_id = f"{payload.get('organization') or FAKE_USER}/{payload['name']}"
        url = f"{self.fake_hub.endpoint}/{repo_id}"
        try:
            self.fake_hub.create_repo(repo_id, private=payload.get("visibility") == "private")
        except HubError as error:
            self._send_json({"error": error.message, "url": url}, status=error.status)
            return
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self, method: str, params: dict, query: dict, body: bytes) -> None:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"\A---\r?\n(.*?)\r?\n---\r?\n", content, re.DOTALL)
        if match:
            try:
                metadata = yaml.safe_load(match.group(1))
            except yaml.YAMLError as error:
                raise HubError(400, None, f"Invalid YAML in README.md: {error}") from error
            if metadata is not None and not isinstance(metadata, dict):
                raise HubError(400, None, "README.md metadata must be a YAML mapping")
        self._send_json({"errors": [], "warnings": []})

    def whoami(self, method: str, params: dict, query: dict, body: bytes) -> None:
        if not self._authorized():
            raise HubError(401, None, "Invalid credentials in Authorization header")
        self._send_json({"type": "user", "name": FAKE_USER, "fullname": "Fake User", "orgs": [], "auth": {}})

    def preupload(self, method: str, params: dict, query: dict, body: bytes) -> None:
        repo = self._repo(params["repo_id"], write=True)
        existing = self._commit(repo, params["revision"]).files
        files = [
            {
                "path": item["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": git_blob_oid(existing[item["path"]]) if item["path"] in existing else None,
            }
            for item in json.loads(body)["files"]
        ]
        self._send_json({"files": files, "commitOid": self._commit(repo, params["revision"]).oid})

    def commit(self, method: str, params: dict, query: dict, body: bytes) -> None:
        repo = self._repo(params["repo_id"], write=True)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, None, "the commit payload must start with a header line")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and self._commit(repo, params["revision"]).oid != parent:
            raise HubError(412, None, "parent commit is not the head of the branch")
        commit = self.fake_hub.commit(repo, params["revision"], header.get("summary", ""), lines[1:])
        self._send_json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self.fake_hub.endpoint}/{repo.repo_id}/commit/{commit.oid}",
                "pullRequestUrl": None,
            }
        )

    def create_branch(self, method: str, params: dict, query: dict, body: bytes) -> None:
        repo = self._repo(params["repo_id"], write=True)
        self.fake_hub.create_branch(repo, params["branch"], json.loads(body or b"{}").get("startingPoint"))
        self._send_json({})

    def model_info(self, method: str, params: dict, query: dict, body: bytes) -> None:
        repo = self._repo(params["repo_id"])
        commit = self._commit(repo, params.get("revision") or DEFAULT_BRANCH)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [{"rfilename": name} for name in sorted(commit.files)],
        }
        card = _card_metadata(commit.files.get("README.md", b""))
        if card:
            info["cardData"] = card
            info["tags"] = list(card.get("tags", []))
            for key in ("pipeline_tag", "library_name"):
                if key in card:
                    info[key] = card[key]
        self._send_json(info)

    def tree(self, method: str, params: dict, query: dict, body: bytes) -> None:
        repo = self._repo(params["repo_id"])
        files = self._commit(repo, params["revision"]).files
        base = (params.get("path") or "").strip("/")
        prefix = f"{base}/" if base else ""
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        if base and base in files:
            raise HubError(400, None, f"{base} is a file, not a folder")
        entries: dict[str, dict[str, Any]] = {}
        for name in sorted(files):
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix) :].split("/")
            for depth in range(1, len(parts)):  # the folders on the way
                if depth > 1 and not recursive:
                    break
                folder = prefix + "/".join(parts[:depth])
                entries.setdefault(folder, {"type": "directory", "oid": git_blob_oid(folder.encode()), "path": folder})
            if len(parts) == 1 or recursive:
                content = files[name]
                entries[name] = {"type": "file", "oid": git_blob_oid(content), "size": len(content), "path": name}
        if base and not entries:
            raise HubError(404, "EntryNotFound", f"{base} does not exist on {params['revision']}")
        self._send_json(list(entries.values()))

    def resolve(self, method: str, params: dict, query: dict, body: bytes) -> None:
        repo = self._repo(params["repo_id"])
        commit = self._commit(repo, params["revision"])
        content = commit.files.get(params["path"])
        if content is None:
            raise HubError(404, "EntryNotFound", f"{params['path']} does not exist on {params['revision']}")
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_oid(content)}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        status, start = 200, 0
        byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if byte_range and method == "GET":
            start = int(byte_range.group(1))
            end = int(byte_range.group(2)) + 1 if byte_range.group(2) else len(content)
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(content)}"
            content, status = content[start:end], 206
        headers["Content-Length"] = str(len(content))
        self._send(status, content, headers, method)


def _card_metadata(readme: bytes) -> dict[str, Any] | None:
    match = re.match(rb"\A---\r?\n(.*?)\r?\n---\r?\n", readme, re.DOTALL)
    if not match:
        return None
    metadata = yaml.safe_load(match.group(1))
    return metadata if isinstance(metadata, dict) else None


_REPO = r"(?P<repo_id>[^/]+/[^/]+)"
_ROUTES = [
    ("POST", re.compile(r"/api/repos/create"), _HubRequestHandler.create_repo),
    ("POST", re.compile(r"/api/validate-yaml"), _HubRequestHandler.validate_yaml),
    ("GET", re.compile(r"/api/whoami-v2"), _HubRequestHandler.whoami),
    ("POST", re.compile(rf"/api/models/{_REPO}/preupload/(?P<revision>[^/]+)"), _HubRequestHandler.preupload),
    ("POST", re.compile(rf"/api/models/{_REPO}/commit/(?P<revision>[^/]+)"), _HubRequestHandler.commit),
    ("POST", re.compile(rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)"), _HubRequestHandler.create_branch),
    ("GET", re.compile(rf"/api/models/{_REPO}(?:/revision/(?P<revision>[^/]+))?"), _HubRequestHandler.model_info),
    ("GET", re.compile(rf"/api/models/{_REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?"), _HubRequestHandler.tree),
    ("GET HEAD", re.compile(rf"/{_REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)"), _HubRequestHandler.resolve),
]


def hub_env(
    endpoint: str | None, hf_home: str | os.PathLike, *, offline: bool = False, token: str | None = "dummy"
) -> dict[str, str]:
    """Environment for a child process that uses the fake Hub at `endpoint` (or, with `offline=True`, only the
    cache under `hf_home`): `HF_ENDPOINT`, `HF_TOKEN` (omitted when `token` is None), `HF_HOME`, no progress
    bars, no telemetry, and no `PYTHONPATH`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
    )
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    if token is not None:
        env["HF_TOKEN"] = token
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def run_python(
    code: str,
    *args: str | os.PathLike,
    endpoint: str | None,
    hf_home: str | os.PathLike,
    offline: bool = False,
    token: str | None = "dummy",
    block_package: bool = False,
    cwd: str | os.PathLike | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run `code` (with `sys.argv[1:] = args`) in a fresh interpreter whose environment is `hub_env(...)`, so
    `huggingface_hub` is imported with the fake Hub's endpoint. `block_package=True` makes `import modeling_elmo`
    fail there first. Returns the finished process (text stdout/stderr); the caller checks `returncode`."""
    prelude = BLOCK_PACKAGE_PRELUDE if block_package else ""
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *map(str, args)],
        capture_output=True,
        text=True,
        env=hub_env(endpoint, hf_home, offline=offline, token=token),
        cwd=str(cwd) if cwd is not None else str(Path(hf_home).parent),
        timeout=timeout,
    )
