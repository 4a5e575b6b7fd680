"""`elmo convert` with downloads: presets and URLs served by a local HTTP server on 127.0.0.1.

The server serves real original-format files, each with a strong `ETag` (honouring `If-Range` as S3 does: the
whole file when the validator differs), and can misbehave on purpose: close a transfer early (after a given number
of bytes, per request), ignore `Range` requests, or answer 404. It logs every request with its `Range` header, so
the tests see that an interrupted download is resumed from where it stopped. Servers that misbehave in hostile ways
are in test_untrusted_downloads.py.
"""

from __future__ import annotations

import hashlib
import json
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from local_server import LocalServer, unused_port

from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.download import download
from modeling_elmo.conversion.original import convert_original
from modeling_elmo.conversion.presets import PUBLISHED_MODELS
from original_format import original_options, random_original_weights, write_original


class FileServer(LocalServer):
    """Serves `files` (`{url path: bytes}`) on 127.0.0.1 from a thread. `cuts[path]` lists, per GET of `path`
    in turn, how many bytes to send before closing the connection (the full length is announced anyway);
    paths in `ignore_range` answer a `Range` request with the whole file (200), as does a request whose `If-Range`
    is not the file's `ETag`. `log` holds `(path, Range)`."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.cuts: dict[str, list[int]] = {}
        self.ignore_range: set[str] = set()
        self.log: list[tuple[str, str | None]] = []
        super().__init__(self.answer)

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        self.log.append((handler.path, handler.headers.get("Range")))
        content = self.files.get(handler.path)
        if content is None:
            handler.send_error(404, "Not Found")
            return
        start, status = 0, 200
        etag = f'"{hashlib.sha256(content).hexdigest()[:16]}"'
        requested = handler.headers.get("Range", "")
        unchanged = handler.headers.get("If-Range", etag) == etag
        if requested.startswith("bytes=") and unchanged and handler.path not in self.ignore_range:
            start, status = int(requested[6:].split("-")[0]), 206
        handler.send_response(status)
        handler.send_header("ETag", etag)
        handler.send_header("Content-Length", str(len(content) - start))
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        handler.end_headers()
        cuts = self.cuts.get(handler.path)
        limit = cuts.pop(0) if cuts else None
        handler.wfile.write(content[start:] if limit is None else content[start : start + limit])

    def requests_for(self, path: str) -> list[str | None]:
        return [byte_range for logged, byte_range in self.log if logged == path]


@pytest.fixture
def original_files(tmp_path):
    options = original_options(n_highway=2)
    return write_original(tmp_path / "original", options, random_original_weights(options, seed=11))


@pytest.fixture
def served(original_files):
    options_path, weights_path = original_files
    with FileServer(
        {"/files/options.json": options_path.read_bytes(), "/files/weights.hdf5": weights_path.read_bytes()}
    ) as server:
        yield server


def convert_args(server: FileServer, tmp_path: Path, output: Path, *extra: str) -> list[str]:
    return [
        "convert",
        "--options", f"{server.url}/files/options.json",
        "--weights", f"{server.url}/files/weights.hdf5",
        "--output-dir", str(output),
        "--download-dir", str(tmp_path / "downloads"),
        *extra,
    ]  # fmt: skip


def read_card(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text()
    _, front_matter, body = text.split("---\n", 2)
    return yaml.safe_load(front_matter), body


def assert_failed_cleanly(status: int, output: Path) -> None:
    assert status == 2
    assert not output.exists()
    assert not [path for path in output.parent.iterdir() if path.name.startswith(f".{output.name}")]


def test_urls_are_downloaded_converted_and_recorded_in_the_card(served, original_files, tmp_path):
    output = tmp_path / "hf"
    assert elmo_main(convert_args(served, tmp_path, output)) == 0
    reference = convert_original(*original_files, tmp_path / "local")
    assert (output / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    provenance = json.loads((output / "elmo_conversion.json").read_text())
    for source, path in zip(provenance["sources"], original_files, strict=True):
        assert source["url"] == f"{served.url}/files/{path.name}"
        assert source["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert source["size"] == path.stat().st_size
    metadata, body = read_card(output)
    assert metadata["library_name"] == "transformers" and "elmo" in metadata["tags"]
    assert f"{served.url}/files/weights.hdf5" in body and provenance["sources"][1]["sha256"] in body


def test_an_interrupted_transfer_is_resumed_with_a_range_request(served, original_files, tmp_path):
    served.cuts["/files/weights.hdf5"] = [3000, 5000]
    output = tmp_path / "hf"
    assert elmo_main(convert_args(served, tmp_path, output)) == 0
    assert served.requests_for("/files/weights.hdf5") == [None, "bytes=3000-", "bytes=8000-"]
    downloaded = next((tmp_path / "downloads").glob("*/weights.hdf5"))
    assert downloaded.read_bytes() == original_files[1].read_bytes()
    assert not list((tmp_path / "downloads").glob("*/*.part"))


def test_a_download_interrupted_every_time_resumes_on_the_next_run(served, original_files, tmp_path, capsys):
    served.cuts["/files/weights.hdf5"] = [1000] * 4
    output = tmp_path / "hf"
    assert_failed_cleanly(elmo_main(convert_args(served, tmp_path, output)), output)
    err = capsys.readouterr().err
    assert "interrupted 4 times" in err and "run the command again to resume" in err and len(err.splitlines()) == 1
    (part,) = (tmp_path / "downloads").glob("*/weights.hdf5.part")
    assert part.stat().st_size == 4000
    served.log.clear()
    assert elmo_main(convert_args(served, tmp_path, output)) == 0
    assert served.requests_for("/files/weights.hdf5") == ["bytes=4000-"]
    assert served.requests_for("/files/options.json") == []  # already complete: reused
    assert next((tmp_path / "downloads").glob("*/weights.hdf5")).read_bytes() == original_files[1].read_bytes()


def test_a_server_that_ignores_range_restarts_the_file(served, original_files, tmp_path):
    served.cuts["/files/weights.hdf5"] = [2000]
    served.ignore_range.add("/files/weights.hdf5")
    assert elmo_main(convert_args(served, tmp_path, tmp_path / "hf")) == 0
    assert served.requests_for("/files/weights.hdf5") == [None, "bytes=2000-"]
    assert next((tmp_path / "downloads").glob("*/weights.hdf5")).read_bytes() == original_files[1].read_bytes()


def test_the_progress_bar_shows_the_transfer(served, original_files, tmp_path, capsys):
    destination = tmp_path / "downloads" / "weights.hdf5"
    download(f"{served.url}/files/weights.hdf5", destination, progress=True)
    size = original_files[1].stat().st_size
    err = capsys.readouterr().err
    assert "weights.hdf5" in err and "100%" in err and f"{size / 1024:.1f}k" in err.replace("kB", "k")
    assert destination.read_bytes() == original_files[1].read_bytes()


def test_404_is_reported_with_the_url(served, tmp_path, capsys):
    del served.files["/files/weights.hdf5"]
    output = tmp_path / "hf"
    assert_failed_cleanly(elmo_main(convert_args(served, tmp_path, output)), output)
    err = capsys.readouterr().err
    assert f"{served.url}/files/weights.hdf5" in err and "HTTP 404" in err and len(err.splitlines()) == 1
    assert not list((tmp_path / "downloads").glob("*/weights.hdf5*"))


def test_checksum_is_verified(served, original_files, tmp_path, capsys):
    output = tmp_path / "hf"
    status = elmo_main(convert_args(served, tmp_path, output, "--weights-sha256", "0" * 64))
    assert_failed_cleanly(status, output)
    err = capsys.readouterr().err
    assert "SHA-256" in err and "weights.hdf5" in err
    assert not list((tmp_path / "downloads").glob("*/weights.hdf5*"))  # the wrong file is not kept
    good = hashlib.sha256(original_files[1].read_bytes()).hexdigest()
    assert elmo_main(convert_args(served, tmp_path, output, "--weights-sha256", good)) == 0


def test_offline_fails_at_once_saying_what_to_download(served, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = tmp_path / "hf"
    assert_failed_cleanly(elmo_main(convert_args(served, tmp_path, output)), output)
    err = capsys.readouterr().err
    assert served.log == []
    assert f"{served.url}/files/options.json" in err and f"{served.url}/files/weights.hdf5" in err
    assert "--options" in err and "--weights" in err and "HF_HUB_OFFLINE" in err
    assert len(err.splitlines()) == 1


def test_an_unreachable_server_fails_at_once(tmp_path, capsys):
    port = unused_port()
    output = tmp_path / "hf"
    start = time.monotonic()
    status = elmo_main(
        ["convert", "--options", f"http://127.0.0.1:{port}/o.json", "--weights", f"http://127.0.0.1:{port}/w.hdf5",
         "--output-dir", str(output), "--download-dir", str(tmp_path / "downloads")]
    )  # fmt: skip
    assert time.monotonic() - start < 10
    assert_failed_cleanly(status, output)
    err = capsys.readouterr().err
    assert f"cannot reach 127.0.0.1:{port}" in err and f"http://127.0.0.1:{port}/w.hdf5" in err


def preset_files(preset: str, options: dict, arrays: dict, directory: Path) -> dict[str, bytes]:
    """The preset's two files, as the server serves them under the mirror's base URL."""
    published = PUBLISHED_MODELS[preset]
    options_path, weights_path = write_original(directory, options, arrays)
    return {
        f"/mirror/{published.directory}/{published.stem}_options.json": options_path.read_bytes(),
        f"/mirror/{published.directory}/{published.stem}_weights.hdf5": weights_path.read_bytes(),
    }


def test_a_preset_downloads_its_files_and_writes_its_card(tmp_path):
    # A random model with ELMo Small's exact sizes (13.6M parameters).
    options = original_options(
        char_embedding_dim=16,
        filters=[[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
        n_highway=1,
        projection_dim=128,
        lstm_dim=1024,
    )
    arrays = random_original_weights(options, seed=5)
    files = preset_files("small", options, arrays, tmp_path / "served")
    output = tmp_path / "elmo-small"
    with FileServer(files) as server:
        mirror = f"{server.url}/mirror"
        status = elmo_main(
            ["convert", "--preset", "small", "--mirror", mirror, "--output-dir", str(output),
             "--download-dir", str(tmp_path / "downloads")]
        )  # fmt: skip
        assert status == 0
        assert [path for path, _ in server.log] == list(files)  # options first, then weights
    metadata, body = read_card(output)
    assert metadata["license"] == "apache-2.0" and metadata["language"] == ["en"]
    assert metadata["datasets"] == ["billion-word-benchmark/lm1b"]
    assert body.startswith("\n# ELMo Small\n")
    assert "elmo_2x1024_128_2048cnn_1xhighway" in body and "(13.6M)" in body
    assert 'AutoModel.from_pretrained("elmo-small")' in body
    assert f"elmo convert --preset small --mirror {mirror} --output-dir elmo-small" in body
    for url, content in zip(files, files.values(), strict=True):
        assert f"{server.url}{url}" in body and hashlib.sha256(content).hexdigest() in body
    assert "perplexity" not in body  # no published figure for Small
    # A mirror's files are cached apart from the official ones (one folder per URL), never under the preset's name.
    assert not (tmp_path / "downloads" / PUBLISHED_MODELS["small"].directory).exists()
    downloaded = [next((tmp_path / "downloads").glob(f"*/{Path(url).name}")) for url in files]
    reference = convert_original(*downloaded, tmp_path / "reference")
    assert (output / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()


def test_a_preset_whose_options_are_another_model_is_refused_before_the_weights(original_files, tmp_path, capsys):
    options = json.loads(original_files[0].read_text())
    files = preset_files("original", options, random_original_weights(options), tmp_path / "served")
    output = tmp_path / "hf"
    with FileServer(files) as server:
        status = elmo_main(
            ["convert", "--preset", "original", "--mirror", f"{server.url}/mirror", "--output-dir", str(output),
             "--download-dir", str(tmp_path / "downloads")]
        )  # fmt: skip
        assert [path.endswith("_options.json") for path, _ in server.log] == [True]
    assert_failed_cleanly(status, output)
    err = capsys.readouterr().err
    assert "not the options file of ELMo Original" in err and "lstm.dim is 16" in err


def test_neither_preset_nor_files_is_an_error(tmp_path, capsys):
    assert elmo_main(["convert", "--options", "x.json", "--output-dir", str(tmp_path / "out")]) == 2
    assert "--preset" in capsys.readouterr().err
