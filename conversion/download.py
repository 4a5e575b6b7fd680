"""Fetch the original files of an ELMo (a published preset, or any URL) for `elmo convert`.

Downloads use the standard library (`urllib`) and go to a cache folder (`--download-dir`, default
`$XDG_CACHE_HOME/modeling_elmo` or `~/.cache/modeling_elmo`): first into `NAME.part`, renamed to `NAME` only once
the size matches what the server announced (and the SHA-256 where one is known). An interrupted transfer is
resumed with an HTTP `Range` request, both within one run (a few retries) and by running the command again.
With `HF_HUB_OFFLINE=1`, or when the server cannot be reached at all, it fails at once with a message that
lists the URLs to fetch by other means and how to pass the local files.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shlex
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from modeling_elmo.conversion.folder import ConversionError
from modeling_elmo.conversion.model_card import Provenance, SourceFile, file_sha256
from modeling_elmo.conversion.presets import ALLENNLP_BASE_URL, PUBLISHED_MODELS, PublishedModel

CHUNK_SIZE = 1 << 20
DEFAULT_TIMEOUT = 30.0
DEFAULT_ATTEMPTS = 4
_TRUE = ("1", "true", "yes", "on")


class DownloadError(ConversionError):
    """A file could not be downloaded, or what arrived is not what was expected."""


class UnreachableError(DownloadError):
    """No connection could be made at all (offline, or the host cannot be reached)."""


def is_url(location: str) -> bool:
    """True for `http://`, `https://` and `file://` locations, False for local paths."""
    return urlsplit(str(location)).scheme in ("http", "https", "file")


def default_download_dir() -> Path:
    """`$XDG_CACHE_HOME/modeling_elmo`, else `~/.cache/modeling_elmo`."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "modeling_elmo"


def offline_mode() -> bool:
    """Whether `HF_HUB_OFFLINE` asks for no network access."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def download(
    url: str,
    destination: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool | None = None,
) -> Path:
    """Download `url` to `destination` (kept if already complete), resuming an interrupted transfer.

    The size is checked against the server's `Content-Length` / `Content-Range`, and the SHA-256 against
    `expected_sha256` when given. `progress=None` shows a progress bar only on a terminal.
    """
    destination = Path(destination)
    if destination.is_file():
        _verify_checksum(destination, url, expected_sha256)
        return destination
    if offline_mode():
        raise UnreachableError("offline mode (HF_HUB_OFFLINE is set)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    failure = ""
    for _ in range(attempts):
        try:
            if _transfer(url, partial, timeout, progress):
                break
            failure = "the connection closed before the end of the file"
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
            failure = f"{type(error).__name__}: {error}"
    else:
        received = partial.stat().st_size if partial.exists() else 0
        raise DownloadError(
            f"the download of {url} was interrupted {attempts} times ({failure}); {partial} keeps the {received:,} "
            "bytes received: run the command again to resume"
        )
    _verify_checksum(partial, url, expected_sha256)
    partial.replace(destination)
    return destination


def _transfer(url: str, partial: Path, timeout: float, progress: bool | None) -> bool:
    """One attempt: fetch what `partial` lacks (a `Range` request if it has a part already) and append it.
    Returns True when the file is complete; raises `DownloadError` for an answer that retrying cannot fix."""
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "modeling-elmo", "Accept-Encoding": "identity"})
    if offset and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the part on disk is not a prefix of this file: start again
            partial.unlink()
            return False
        raise DownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        if partial.exists() or not isinstance(error.reason, (OSError, str)):
            raise ConnectionError(str(error.reason)) from error
        raise UnreachableError(f"cannot reach {urlsplit(url).netloc or url} ({error.reason})") from error
    with response:
        total = _expected_total(response, offset)
        if _status(response) != 206:
            offset = 0  # the server sent the whole file
        mode = "ab" if offset else "wb"
        with (
            open(partial, mode) as handle,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=partial.name.removesuffix(".part"),
                disable=None if progress is None else not progress,
                leave=True,
            ) as bar,
        ):
            while chunk := response.read(CHUNK_SIZE):
                handle.write(chunk)
                bar.update(len(chunk))
    size = partial.stat().st_size
    if total is not None and size > total:
        raise DownloadError(f"{url} sent {size:,} bytes, more than the {total:,} it announced")
    return total is None or size == total


def _expected_total(response: http.client.HTTPResponse, offset: int) -> int | None:
    """The full file size from a 206's `Content-Range` or a 200's `Content-Length` (None if not announced)."""
    if _status(response) == 206:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+)", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            raise ConnectionError(f"unexpected Content-Range {response.headers.get('Content-Range')!r}")
        return int(match.group(2))
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _status(response: http.client.HTTPResponse) -> int:
    return getattr(response, "status", None) or 200  # file:// responses have no status


def _verify_checksum(path: Path, url: str, expected_sha256: str | None) -> None:
    if expected_sha256 is None:
        return
    actual = file_sha256(path)
    if actual != expected_sha256.lower():
        path.unlink()
        raise DownloadError(
            f"{url}: the downloaded file's SHA-256 is {actual}, expected {expected_sha256.lower()} (file removed)"
        )


@dataclass
class Sources:
    """The two local files to convert, and their provenance for the model card."""

    options_path: Path
    weights_path: Path
    provenance: Provenance


def fetch_sources(
    *,
    preset: str | None = None,
    options: str | None = None,
    weights: str | None = None,
    download_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    weights_sha256: str | None = None,
    output_dir: str | os.PathLike = "DIR",
    progress: bool | None = None,
) -> Sources:
    """Resolve a preset and/or `options` / `weights` (local paths or URLs; explicit ones override the preset's)
    to local files, downloading what is needed (a preset's files from `base_url`, default AllenNLP's); a preset's
    options are checked against its architecture before its weights are downloaded."""
    base_url = base_url or ALLENNLP_BASE_URL
    published = _published_model(preset)
    if published is None and (options is None or weights is None):
        raise ConversionError("pass --preset NAME, or both --options and --weights (local files or URLs)")
    options_sha256 = weights_sha256_known = None
    if published is not None:
        options = options or published.options_url(base_url)
        weights = weights or published.weights_url(base_url)
        options_sha256, weights_sha256_known = published.options_sha256, published.weights_sha256
    cache = Path(download_dir) if download_dir is not None else default_download_dir()
    folder = published.directory if published else None
    try:
        options_path = _local_copy(options, "options", cache, folder, progress, options_sha256)
        if published is not None:
            _check_architecture(options_path, published)
        weights_path = _local_copy(weights, "weights", cache, folder, progress, weights_sha256 or weights_sha256_known)
    except UnreachableError as error:
        raise UnreachableError(_offline_advice(error, options, weights, output_dir)) from error
    provenance = Provenance(
        sources=[
            SourceFile.from_path("options", options_path, options if is_url(options) else None),
            SourceFile.from_path("weights", weights_path, weights if is_url(weights) else None),
        ],
        preset=published.key if published else None,
        command=_command(published, options, weights, base_url, output_dir),
    )
    return Sources(options_path, weights_path, provenance)


def _command(
    published: PublishedModel | None, options: str, weights: str, base_url: str, output_dir: str | os.PathLike
) -> str:
    """The `elmo convert` command for the model card: URLs as given, local files by name only."""
    command = ["elmo", "convert"]
    if published is not None:
        command += ["--preset", published.key]
        if base_url != ALLENNLP_BASE_URL:
            command += ["--mirror", base_url]
    for flag, location in (("--options", options), ("--weights", weights)):
        if published is None or location not in (published.options_url(base_url), published.weights_url(base_url)):
            command += [flag, location if is_url(location) else Path(location).name]
    return shlex.join([*command, "--output-dir", Path(output_dir).name])


def _published_model(preset: str | None) -> PublishedModel | None:
    if preset is None:
        return None
    if preset not in PUBLISHED_MODELS:
        raise ConversionError(f"unknown preset {preset!r}; choose one of {', '.join(PUBLISHED_MODELS)}")
    return PUBLISHED_MODELS[preset]


def _local_copy(
    location: str, role: str, cache: Path, folder: str | None, progress: bool | None, expected_sha256: str | None
) -> Path:
    """`location` itself if it is a local file, else its download under `cache/folder` (a folder named after the
    URL's hash when None)."""
    if not is_url(location):
        path = Path(location)
        if not path.is_file():
            raise ConversionError(f"the {role} file {path} does not exist")
        if expected_sha256:
            _verify_local_checksum(path, expected_sha256)
        return path
    folder = folder or hashlib.sha256(location.encode()).hexdigest()[:16]
    name = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1] or role
    return download(location, cache / folder / name, expected_sha256=expected_sha256, progress=progress)


def _verify_local_checksum(path: Path, expected_sha256: str) -> None:
    actual = file_sha256(path)
    if actual != expected_sha256.lower():
        raise ConversionError(f"{path}: SHA-256 is {actual}, expected {expected_sha256.lower()}")


def _check_architecture(options_path: Path, published: PublishedModel) -> None:
    try:
        options = json.loads(options_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConversionError(f"{options_path} is not a readable options file ({error})") from error
    mismatch = published.architecture_mismatch(options) if isinstance(options, dict) else "not a JSON object"
    if mismatch:
        raise ConversionError(f"{options_path} is not the options file of {published.title}: {mismatch}")


def _offline_advice(error: UnreachableError, options: str, weights: str, output_dir: str | os.PathLike) -> str:
    urls = [location for location in (options, weights) if is_url(location)]
    return (
        f"cannot download the model files: {error}. Download {' and '.join(urls)} where there is network access, "
        f"then convert the local files: elmo convert --options OPTIONS.json --weights WEIGHTS.hdf5 "
        f"--output-dir {output_dir}"
    )
