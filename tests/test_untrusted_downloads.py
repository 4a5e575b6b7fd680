"""Downloads from servers that misbehave or lie (issue 12): nothing is stitched from two versions of a file, cut
short, oversized, redirected out of http(s) or poisoned by a mirror; no secret of a URL reaches a file or a
message; hostile URL names and a full disk end in a one-line error or a safe file inside the cache.

The server is a thread on 127.0.0.1 whose answers each test scripts per request (`ScriptedServer`, `in_turn`,
`file_reply`); it refuses more than `MAX_REQUESTS` requests, so a client that loops fails the test. Every refusal
is checked for its exit status or exception, its one-line message, and that nothing complete was written.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import json
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from local_server import LocalServer, unused_port

from modeling_elmo import ElmoConfig
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.download import DownloadError, UnreachableError, download, fetch_sources
from modeling_elmo.conversion.model_card import Provenance, render_model_card
from modeling_elmo.conversion.presets import PUBLISHED_MODELS
from original_format import write_random_original

MAX_REQUESTS = 30
SIZE = 20_000


@dataclass
class Request:
    """One GET as the server saw it: the path and query string apart, and the headers."""

    path: str
    query: str
    headers: Message

    @property
    def range(self) -> str | None:
        return self.headers.get("Range")

    @property
    def if_range(self) -> str | None:
        return self.headers.get("If-Range")


@dataclass
class Reply:
    """What the server sends: the status, exactly these headers (plus `Connection: close`) and the body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Route = Callable[[Request], Reply]


class ScriptedServer(LocalServer):
    """Answers each GET of a path in `routes` with `routes[path](request)`, other paths with 404, and any request
    past the `MAX_REQUESTS`th with 503; `log` holds every `Request`. HTTP/1.1, one request per connection."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = dict(routes)
        self.log: list[Request] = []
        super().__init__(self.answer, protocol_version="HTTP/1.1")

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        path, _, query = handler.path.partition("?")
        request = Request(path, query, handler.headers)
        self.log.append(request)
        route = self.routes.get(path)
        if len(self.log) > MAX_REQUESTS:
            reply = Reply(503, {"Content-Length": "0"})
        elif route is None:
            reply = Reply(404, {"Content-Length": "0"})
        else:
            reply = route(request)
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(reply.body)

    def ranges(self) -> list[tuple[str | None, str | None]]:
        """`(Range, If-Range)` of every request so far."""
        return [(request.range, request.if_range) for request in self.log]


def file_reply(
    content: bytes,
    request: Request,
    *,
    etag: str | None = '"v1"',
    last_modified: str | None = None,
    honour_if_range: bool = True,
    cut: int | None = None,
) -> Reply:
    """`content` served as S3 serves it: a 206 for a `Range` request unless its `If-Range` is not the validator
    (`etag`, else `last_modified`; ignored when not `honour_if_range`), then the whole file (200). The full length
    is announced; `cut` sends only that many bytes of the body (the connection then closes)."""
    start, status, headers = 0, 200, {}
    validator = etag or last_modified
    unchanged = request.if_range is None or not honour_if_range or request.if_range == validator
    if request.range and unchanged:
        start, status = int(request.range.removeprefix("bytes=").split("-")[0]), 206
        headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
    headers["Content-Length"] = str(len(content) - start)
    if etag is not None:
        headers["ETag"] = etag
    if last_modified is not None:
        headers["Last-Modified"] = last_modified
    body = content[start:]
    return Reply(status, headers, body if cut is None else body[:cut])


def redirect(location: str) -> Reply:
    return Reply(302, {"Location": location, "Content-Length": "0"})


def in_turn(*routes: Route) -> Route:
    """A route answering the first request with `routes[0]`, the second with `routes[1]`, ..., then the last."""
    calls = itertools.count()

    def route(request: Request) -> Reply:
        return routes[min(next(calls), len(routes) - 1)](request)

    return route


def payload(seed: int, size: int = SIZE) -> bytes:
    return random.Random(seed).randbytes(size)


def chunked(body: bytes, size: int = 4096) -> bytes:
    """`body` in HTTP/1.1 chunked transfer coding, with its terminating zero-size chunk."""
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces) + b"0\r\n\r\n"


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def complete_downloads(cache: Path) -> list[str]:
    """Names of the complete files in the download cache (parts and their state excluded)."""
    return sorted(path.name for path in files_under(cache) if not path.name.endswith((".part", ".part.json")))


def assert_one_line_failure(status: int, capsys: pytest.CaptureFixture, output: Path) -> str:
    """The CLI failed as it promises: exit 2, one line on stderr, no output folder; returns that line."""
    captured = capsys.readouterr()
    assert status == 2, captured.err
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("elmo convert: error: "), captured.err
    assert not output.exists()
    return captured.err


@pytest.fixture
def tiny_model(tmp_path) -> tuple[bytes, bytes]:
    """(options bytes, weights bytes) of a tiny random original-format ELMo."""
    options_path, weights_path = write_random_original(tmp_path / "original", seed=3)
    return options_path.read_bytes(), weights_path.read_bytes()


def convert(options_url: str, weights_url: str, tmp_path: Path, *extra: str) -> int:
    return elmo_main(
        ["convert", "--options", options_url, "--weights", weights_url, "--output-dir", str(tmp_path / "hf"),
         "--download-dir", str(tmp_path / "cache"), *extra]
    )  # fmt: skip


# A file that changes between attempts ---------------------------------------------------------------------------


def test_a_file_changed_between_attempts_is_fetched_again_not_stitched(tmp_path):
    old, new = payload(1), payload(2)  # same size: only the validator tells them apart
    route = in_turn(
        lambda request: file_reply(old, request, etag='"v1"', cut=3000),
        lambda request: file_reply(new, request, etag='"v2"'),
    )
    with ScriptedServer({"/w.bin": route}) as server:
        path = download(f"{server.url}/w.bin", tmp_path / "cache" / "w.bin")
    assert server.ranges() == [(None, None), ("bytes=3000-", '"v1"')]  # the resume names the first answer's ETag
    assert path.read_bytes() == new
    assert complete_downloads(tmp_path / "cache") == ["w.bin"]


def test_a_206_with_another_etag_starts_again(tmp_path):
    """A server that ignores `If-Range` but sends the new file's ETag with its 206."""
    old, new = payload(1), payload(2)
    route = in_turn(
        lambda request: file_reply(old, request, etag='"v1"', cut=3000),
        lambda request: file_reply(new, request, etag='"v2"', honour_if_range=False),
    )
    with ScriptedServer({"/w.bin": route}) as server:
        path = download(f"{server.url}/w.bin", tmp_path / "cache" / "w.bin")
    assert [byte_range for byte_range, _ in server.ranges()] == [None, "bytes=3000-", None]
    assert path.read_bytes() == new


def test_a_206_whose_total_grew_starts_again(tmp_path):
    """The same ETag, but the 206 says the file is now longer: the part is not continued with it."""
    old, new = payload(1), payload(2, SIZE + 5000)
    route = in_turn(
        lambda request: file_reply(old, request, cut=3000),
        lambda request: file_reply(new, request, honour_if_range=False),
    )
    with ScriptedServer({"/w.bin": route}) as server:
        path = download(f"{server.url}/w.bin", tmp_path / "cache" / "w.bin")
    assert [byte_range for byte_range, _ in server.ranges()] == [None, "bytes=3000-", None]
    assert path.read_bytes() == new


def test_a_resume_on_the_next_run_sends_the_last_modified_date(tmp_path):
    """Without an ETag, `Last-Modified` is the validator; it is kept beside the part between runs."""
    old, new = payload(1), payload(2)
    before, after = "Mon, 01 Jan 2018 00:00:00 GMT", "Tue, 02 Jan 2018 00:00:00 GMT"
    destination = tmp_path / "cache" / "w.bin"
    route = in_turn(
        *[lambda request: file_reply(old, request, etag=None, last_modified=before, cut=1000)] * 4,
        lambda request: file_reply(new, request, etag=None, last_modified=after),
    )
    with ScriptedServer({"/w.bin": route}) as server:
        url = f"{server.url}/w.bin"
        with pytest.raises(DownloadError, match="interrupted 4 times") as raised:
            download(url, destination)
        assert "keeps the 4,000 bytes received" in str(raised.value)
        assert not destination.exists()
        path = download(url, destination)  # the next run: the file has changed meanwhile
    assert server.ranges()[-1] == ("bytes=4000-", before)
    assert path.read_bytes() == new


def test_a_part_without_a_validator_is_not_resumed(tmp_path):
    content = payload(1)
    route = in_turn(
        lambda request: file_reply(content, request, etag=None, cut=3000),
        lambda request: file_reply(content, request, etag=None),
    )
    with ScriptedServer({"/w.bin": route}) as server:
        path = download(f"{server.url}/w.bin", tmp_path / "cache" / "w.bin")
    assert server.ranges() == [(None, None), (None, None)]  # nothing could tell a changed file: from zero
    assert path.read_bytes() == content


# Bodies of the wrong size ------------------------------------------------------------------------------------------


def test_a_body_cut_short_without_content_length_is_not_complete(tiny_model, tmp_path, capsys):
    options, weights = tiny_model
    routes = {
        "/o.json": lambda request: file_reply(options, request),
        "/w.hdf5": lambda request: Reply(200, {}, weights[:5000]),  # no Content-Length: ends when it closes
    }
    with ScriptedServer(routes) as server:
        status = convert(f"{server.url}/o.json", f"{server.url}/w.hdf5", tmp_path)
    err = assert_one_line_failure(status, capsys, tmp_path / "hf")
    assert f"{server.url}/w.hdf5 was sent without its size (no Content-Length)" in err
    assert complete_downloads(tmp_path / "cache") == ["o.json"]
    assert not [path for path in files_under(tmp_path / "cache") if path.name.startswith("w.hdf5")]


def test_a_body_without_content_length_is_accepted_when_its_end_or_checksum_is_known(tmp_path):
    content = payload(1)
    routes = {
        "/chunked.bin": lambda request: Reply(200, {"Transfer-Encoding": "chunked"}, chunked(content)),
        "/plain.bin": lambda request: Reply(200, {}, content),
    }
    with ScriptedServer(routes) as server:
        assert download(f"{server.url}/chunked.bin", tmp_path / "a" / "chunked.bin").read_bytes() == content
        sha256 = hashlib.sha256(content).hexdigest()
        path = download(f"{server.url}/plain.bin", tmp_path / "b" / "plain.bin", expected_sha256=sha256)
        assert path.read_bytes() == content
        with pytest.raises(DownloadError, match="SHA-256"):
            download(f"{server.url}/plain.bin", tmp_path / "c" / "plain.bin", expected_sha256="0" * 64)
    assert files_under(tmp_path / "c") == []


def test_204_is_an_error(tiny_model, tmp_path, capsys):
    options, _ = tiny_model
    routes = {"/o.json": lambda request: file_reply(options, request), "/w.hdf5": lambda request: Reply(204)}
    with ScriptedServer(routes) as server:
        status = convert(f"{server.url}/o.json", f"{server.url}/w.hdf5", tmp_path)
    err = assert_one_line_failure(status, capsys, tmp_path / "hf")
    assert f"cannot download {server.url}/w.hdf5: the server answered HTTP 204 No Content instead of the file" in err
    assert complete_downloads(tmp_path / "cache") == ["o.json"]


def test_more_bytes_than_a_206_announced_are_refused_and_the_part_removed(tmp_path):
    content = payload(1)

    def oversized(request: Request) -> Reply:  # the range claims the rest of the file, the body is longer
        body = content[3000:] + payload(9, 2000)
        headers = {"Content-Range": f"bytes 3000-{SIZE - 1}/{SIZE}", "Content-Length": str(len(body)), "ETag": '"v1"'}
        return Reply(206, headers, body)

    route = in_turn(lambda request: file_reply(content, request, cut=3000), oversized)
    with ScriptedServer({"/w.bin": route}) as server, pytest.raises(DownloadError) as raised:
        download(f"{server.url}/w.bin", tmp_path / "cache" / "w.bin")
    refusal = f"{server.url}/w.bin sent more than the {SIZE - 3000:,} bytes it announced; the partial file is removed"
    assert str(raised.value) == refusal
    assert files_under(tmp_path / "cache") == []


def test_a_size_known_in_advance_bounds_the_body(tmp_path):
    content = payload(1)
    routes = {
        "/unannounced.bin": lambda request: Reply(200, {}, content + b"more"),
        "/announced.bin": lambda request: file_reply(content + b"more", request),
    }
    with ScriptedServer(routes) as server:
        with pytest.raises(DownloadError, match=f"sent more than the {SIZE:,} bytes it announced"):
            download(f"{server.url}/unannounced.bin", tmp_path / "cache" / "a.bin", expected_size=SIZE)
        with pytest.raises(DownloadError) as raised:
            download(f"{server.url}/announced.bin", tmp_path / "cache" / "b.bin", expected_size=SIZE)
    assert str(raised.value) == (
        f"{server.url}/announced.bin announces {SIZE + 4:,} bytes, the published file has {SIZE:,}: not downloaded"
    )
    assert files_under(tmp_path / "cache") == []


def test_a_preset_checks_the_size_it_records(tmp_path, monkeypatch):
    published = PUBLISHED_MODELS["small"]
    options = json.dumps({"lstm": {"dim": 1024, "projection_dim": 128, "n_layers": 2}, "char_cnn": {"n_highway": 1}})
    monkeypatch.setitem(PUBLISHED_MODELS, "small", dataclasses.replace(published, options_size=len(options) + 1))
    path = f"/mirror/{published.directory}/{published.stem}_options.json"
    refusal = f"announces {len(options)} bytes, the published file has {len(options) + 1}: not downloaded"
    with (
        ScriptedServer({path: lambda request: file_reply(options.encode(), request)}) as server,
        pytest.raises(DownloadError, match=refusal),
    ):
        fetch_sources(preset="small", base_url=f"{server.url}/mirror", download_dir=tmp_path / "cache")
    assert files_under(tmp_path / "cache") == []


# Redirects ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd?token=TOKsecret42", "ftp://127.0.0.1:9/w.bin?token=TOKsecret42"]
)
def test_a_redirect_out_of_http_is_refused(target, tmp_path):
    route = in_turn(lambda request: redirect(target))
    with ScriptedServer({"/w.bin": route}) as server, pytest.raises(DownloadError) as raised:
        download(f"{server.url}/w.bin", tmp_path / "cache" / "w.bin")
    shown = target.partition("?")[0]
    assert str(raised.value) == (
        f"cannot download {server.url}/w.bin: it redirects (HTTP 302) to {shown}, and only redirects to http or "
        "https (not from https to http) are followed"
    )
    assert len(server.log) == 1 and files_under(tmp_path / "cache") == []


def test_a_chain_of_redirects_is_bounded(tmp_path):
    routes = {f"/hop/{index}": lambda request, index=index: redirect(f"/hop/{index + 1}") for index in range(20)}
    with ScriptedServer(routes) as server, pytest.raises(DownloadError) as raised:
        download(f"{server.url}/hop/0", tmp_path / "cache" / "w.bin")
    assert str(raised.value) == f"cannot download {server.url}/hop/0: more than 5 redirects"
    assert len(server.log) == 6 and files_under(tmp_path / "cache") == []


def test_credentials_are_sent_but_never_on_a_redirect(tmp_path):
    content = payload(1)
    routes = {
        "/w.bin": lambda request: redirect("/moved.bin"),
        "/moved.bin": lambda request: file_reply(content, request),
    }
    with ScriptedServer(routes) as server:
        path = download(f"http://alice:hunter2pw@127.0.0.1:{server.port}/w.bin", tmp_path / "cache" / "w.bin")
    expected = "Basic " + base64.b64encode(b"alice:hunter2pw").decode()
    assert [request.headers.get("Authorization") for request in server.log] == [expected, None]
    assert path.read_bytes() == content


# Cache poisoning ---------------------------------------------------------------------------------------------------


def test_a_mirror_download_is_never_reused_as_the_official_file(tmp_path, monkeypatch):
    published = PUBLISHED_MODELS["small"]
    options = json.dumps({"lstm": {"dim": 1024, "projection_dim": 128, "n_layers": 2}, "char_cnn": {"n_highway": 1}})
    files = {
        f"/mirror/{published.directory}/{published.stem}_options.json": options.encode(),
        f"/mirror/{published.directory}/{published.stem}_weights.hdf5": payload(1),
    }
    cache = tmp_path / "cache"
    routes = {path: lambda request, content=content: file_reply(content, request) for path, content in files.items()}
    with ScriptedServer(routes) as server:
        mirror = f"{server.url}/mirror"
        sources = fetch_sources(preset="small", base_url=mirror, download_dir=cache)
    assert [source.url for source in sources.provenance.sources] == [f"{server.url}{path}" for path in files]
    assert f"--mirror {mirror}" in sources.provenance.command
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a plain preset run must fetch the official files: here it cannot
    with pytest.raises(UnreachableError, match="offline mode") as raised:
        fetch_sources(preset="small", download_dir=cache)
    assert published.weights_url() in str(raised.value) and published.options_url() in str(raised.value)
    assert not (cache / published.directory).exists()


# Secrets in URLs ---------------------------------------------------------------------------------------------------

SECRETS = ("alice", "hunter2pw", "SIGsecret42", "TOKsecret42", "FRAGsecret42")


def secret_url(port: int, path: str = "/w.hdf5") -> str:
    return f"http://alice:hunter2pw@127.0.0.1:{port}{path}?X-Amz-Signature=SIGsecret42&token=TOKsecret42#FRAGsecret42"


def assert_no_secret_written(*texts: str, folders: tuple[Path, ...]) -> None:
    """No secret in `texts`, nor in the name or bytes of any file under `folders`."""
    for folder in folders:
        for path in [folder, *folder.rglob("*")] if folder.exists() else []:
            texts += (str(path.relative_to(folder)),)
            if path.is_file():
                texts += (path.read_bytes().decode("latin-1"),)
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_secrets_in_urls_are_used_but_never_written(tiny_model, tmp_path, capsys):
    options, weights = tiny_model
    authorization = "Basic " + base64.b64encode(b"alice:hunter2pw").decode()

    def signed(content: bytes) -> Route:
        def route(request: Request) -> Reply:
            allowed = "token=TOKsecret42" in request.query and request.headers.get("Authorization") == authorization
            return file_reply(content, request) if allowed else Reply(403, {"Content-Length": "0"})

        return route

    with ScriptedServer({"/o.json": signed(options), "/w.hdf5": signed(weights)}) as server:
        status = convert(secret_url(server.port, "/o.json"), secret_url(server.port), tmp_path)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert [request.path for request in server.log] == ["/o.json", "/w.hdf5"]
    assert_no_secret_written(captured.out, captured.err, folders=(tmp_path / "hf", tmp_path / "cache"))
    provenance = json.loads((tmp_path / "hf" / "elmo_conversion.json").read_text())
    urls = [f"{server.url}/o.json", f"{server.url}/w.hdf5"]
    assert [source["url"] for source in provenance["sources"]] == urls
    assert provenance["command"] == f"elmo convert --options {urls[0]} --weights {urls[1]} --output-dir hf"
    card = (tmp_path / "hf" / "README.md").read_text()
    assert all(url in card for url in urls)


def test_an_older_provenance_with_secrets_is_redacted_when_read():
    """`elmo push` renders the card again from a folder's `elmo_conversion.json`, maybe written before redaction."""
    url = secret_url(8080)
    text = json.dumps(
        {
            "sources": [{"role": "weights", "name": "w.hdf5", "url": url, "size": 1, "sha256": "0" * 64}],
            "command": f"elmo convert --options 'file:///o.json?token=TOKsecret42' --weights '{url}' --output-dir hf",
        }
    )
    provenance = Provenance.from_json(text)
    assert provenance.sources[0].url == "http://127.0.0.1:8080/w.hdf5"
    assert provenance.command == (
        "elmo convert --options 'file:///o.json' --weights 'http://127.0.0.1:8080/w.hdf5' --output-dir hf"
    )
    card = render_model_card(ElmoConfig(), provenance, "org/elmo")
    assert_no_secret_written(provenance.to_json(), card, folders=())


@pytest.mark.parametrize("failure", ["404", "interrupted", "invalid", "unreachable", "offline", "redirect"])
def test_secrets_in_urls_never_reach_an_error_message(failure, tiny_model, tmp_path, capsys, monkeypatch):
    options, weights = tiny_model
    location = secret_url(unused_port())  # a port nobody listens on
    routes = {
        "/o.json": lambda request: file_reply(options, request),
        "/w.hdf5": lambda request: file_reply(weights, request, cut=1000),
        "/redirect": lambda request: redirect(location.replace("http:", "file:")),
    }
    with ScriptedServer(routes) as server:
        weights_url = {
            "404": secret_url(server.port, "/missing.hdf5"),
            "interrupted": secret_url(server.port),
            "invalid": secret_url(server.port, "/w hdf5"),  # a space: http.client refuses the request line
            "unreachable": location,
            "offline": secret_url(server.port),
            "redirect": secret_url(server.port, "/redirect"),
        }[failure]
        if failure == "offline":
            monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        status = convert(f"{server.url}/o.json", weights_url, tmp_path)
    err = assert_one_line_failure(status, capsys, tmp_path / "hf")
    assert weights_url.partition("?")[0].replace("alice:hunter2pw@", "") in err
    assert_no_secret_written(err, folders=(tmp_path / "cache",))
    assert "w.hdf5" not in complete_downloads(tmp_path / "cache")


# Hostile names -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/files/..", "/files/.", "/files/" + "a" * 300 + ".hdf5", "/files/" + "%C3%A9" * 200,
     "/files/%2e%2e", "/files/..%2F..%2Fescape.hdf5", "/files/%00%0A.hdf5"],
)  # fmt: skip
def test_a_hostile_url_name_gives_a_safe_file_inside_the_cache(path, tmp_path):
    content = payload(1)
    options_url_path = "/o.json"
    routes = {
        path: lambda request: file_reply(content, request),
        options_url_path: lambda request: file_reply(b"{}", request),
    }
    cache = tmp_path / "cache"
    with ScriptedServer(routes) as server:
        sources = fetch_sources(
            options=f"{server.url}{options_url_path}", weights=f"{server.url}{path}", download_dir=cache
        )
    weights_path = sources.weights_path
    assert weights_path.read_bytes() == content
    assert weights_path.parent.parent == cache and weights_path.parent.name != weights_path.name
    name = weights_path.name
    assert len(name) <= 100 and not name.startswith(".") and re.fullmatch(r"[A-Za-z0-9._-]+", name)
    assert all(entry.is_dir() for entry in cache.iterdir())
    assert all(downloaded.parent.parent == cache for downloaded in files_under(cache))
    assert sources.provenance.sources[1].name == name
    assert sources.provenance.sources[1].url == f"{server.url}{path}"


# A full disk -------------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 256 KiB tmpfs (needs root, or a system that lets this user mount one; skipped otherwise)."""
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount/umount command to make a small file system")
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.strip() or mounted.returncode}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_is_one_line_and_the_part_resumes_later(small_disk, tiny_model, tmp_path, capsys):
    options, _ = tiny_model
    content = payload(1, 600_000)
    routes = {"/o.json": lambda request: file_reply(options, request), "/w.bin": lambda r: file_reply(content, r)}
    cache = small_disk / "cache"
    with ScriptedServer(routes) as server:
        status = elmo_main(
            ["convert", "--options", f"{server.url}/o.json", "--weights", f"{server.url}/w.bin",
             "--output-dir", str(tmp_path / "hf"), "--download-dir", str(cache)]
        )  # fmt: skip
        err = assert_one_line_failure(status, capsys, tmp_path / "hf")
        (part,) = cache.glob("*/w.bin.part")
        kept = part.stat().st_size
        assert f"cannot write {part}: No space left on device; {part} keeps the {kept:,} bytes received" in err
        assert 0 < kept < len(content) and complete_downloads(cache) == ["o.json"]
        subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
        path = download(f"{server.url}/w.bin", part.with_name("w.bin"))
    assert server.ranges()[-1] == (f"bytes={kept}-", '"v1"')
    assert path.read_bytes() == content
    assert complete_downloads(cache) == ["o.json", "w.bin"]
