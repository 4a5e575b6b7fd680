"""Fetch the original files of an ELMo (a published preset, or any URL) for `elmo convert`.

Downloads use the standard library (`urllib`) and go to a cache folder (`--download-dir`, default the `weights`
folder of the per-user cache, `~/.cache/modeling-elmo/weights`, see `conversion.folder.cache_dir`), in a subfolder
keyed by the URL actually fetched: the preset's directory name for the official AllenNLP URL, else a hash of the
whole URL (so a file fetched from a `--mirror` or any other URL is never taken for the official one). The file name
is the URL's last path segment made safe (`download_file_name`).

A file is first written as `NAME.part`, beside `NAME.part.json` which keeps the validator (strong `ETag`, else
`Last-Modified`) and size of the server's first answer. It is renamed to `NAME` only when complete: its size equals
the size the server announced (`Content-Length`, or the total of a `Content-Range`) and the size the preset records,
and its SHA-256 matches where one is known. A body sent without any size (no `Content-Length`, not chunked) is
refused unless a size or SHA-256 is known, because a transfer cut short could not be told from the whole file; more
bytes than announced are refused and the part removed; any status but 200 (and 206 to a resume) is an error.

An interrupted transfer is resumed with `Range` and `If-Range` (the validator of the first answer), within one run
(a few attempts) and by running the command again; the transfer starts again from zero when the server answers
200 (its file changed), or a 206 whose range or total size is not the expected one. A part without a validator is
never resumed. Redirects are followed only to http and https (never from https to http), at most `MAX_REDIRECTS`.
A failed write (e.g. a full disk) is a `DownloadError`; the part is kept when it can be resumed, else removed.

Credentials in a URL (`https://user:password@host/...`) are sent as HTTP basic authentication, never on a
redirect. Messages and the model card show URLs without user, password, query string or fragment (`redact_url`).
With `HF_HUB_OFFLINE=1`, or when the server cannot be reached at all, it fails at once with a message that lists
the URLs to fetch by other means and how to pass the local files.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shlex
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin

from tqdm.auto import tqdm

from modeling_elmo.conversion.folder import ConversionError, cache_dir, require_file
from modeling_elmo.conversion.model_card import Provenance, SourceFile, file_sha256, redact_url
from modeling_elmo.conversion.presets import ALLENNLP_BASE_URL, PUBLISHED_MODELS, PublishedModel

CHUNK_SIZE = 1 << 20
DEFAULT_TIMEOUT = 30.0
DEFAULT_ATTEMPTS = 4
MAX_REDIRECTS = 5
#: Longest download file name (characters, all ASCII): `NAME.part.json` stays well within the usual 255 bytes.
MAX_FILE_NAME = 100
_TRUE = ("1", "true", "yes", "on")
_URL_SCHEMES = ("http", "https", "file")
_VALIDATOR = re.compile(r"[\x21-\x7e][\x20-\x7e]{0,1023}")  # a header value that can be sent back as it came
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class DownloadError(ConversionError):
    """A file could not be downloaded, or what arrived is not what was expected."""


class UnreachableError(DownloadError):
    """No connection could be made at all (offline, or the host cannot be reached)."""


class _RefusedRedirect(Exception):
    """A redirect this downloader does not follow (the message says why)."""


def is_url(location: str) -> bool:
    """True for `http://`, `https://` and `file://` locations, False for local paths."""
    scheme, separator, _ = str(location).partition("://")
    return bool(separator) and scheme.lower() in _URL_SCHEMES


def default_download_dir() -> Path:
    """The `weights` folder of the per-user cache (`conversion.folder.cache_dir`)."""
    return cache_dir() / "weights"


def offline_mode() -> bool:
    """Whether `HF_HUB_OFFLINE` asks for no network access."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def download_file_name(url: str, default: str) -> str:
    """A safe local name for the file at `url`: its last path segment (percent-decoded), with every character but
    ASCII letters, digits, `.`, `_` and `-` replaced by `_` and no leading dot (so never `.` or `..`); a name over
    `MAX_FILE_NAME` characters is shortened and made unique with a hash of the segment. `default` when nothing is
    left (e.g. a URL ending in `/..`)."""
    path = re.split(r"[?#]", redact_url(url).partition("://")[2], maxsplit=1)[0].partition("/")[2]
    segment = unquote(path.rstrip("/").rsplit("/", 1)[-1], errors="replace")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", segment).lstrip(".")
    if len(name) > MAX_FILE_NAME:
        digest = hashlib.sha256(segment.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        suffix = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
        name = f"{name[: MAX_FILE_NAME - len(digest) - len(suffix) - 1]}-{digest}{suffix}"
    return name or default


def download(
    url: str,
    destination: str | os.PathLike,
    *,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool | None = None,
) -> Path:
    """Download `url` to `destination` (kept if already complete), resuming an interrupted transfer.

    Complete means: the size the server announced, equal to `expected_size` when given, and the SHA-256
    `expected_sha256` when given (see the module's docstring for the rules). `progress=None` shows a progress bar
    only on a terminal. Raises `DownloadError` (whose message never shows the URL's credentials or query string).
    """
    destination = Path(destination)
    shown = redact_url(url)
    if destination.is_file():
        _verify(destination, shown, expected_size, expected_sha256)
        return destination
    if offline_mode():
        raise UnreachableError("offline mode (HF_HUB_OFFLINE is set)")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(f"cannot create the download folder {destination.parent}: {_reason(error)}") from None
    part = _PartFile(destination.with_name(destination.name + ".part"))
    failure = ""
    for _ in range(attempts):
        try:
            failure = _transfer(url, part, expected_size, expected_sha256, timeout, progress)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
            failure = _one_line(f"{type(error).__name__}: {error}")
        if not failure:
            break
    else:
        kept = f"{part.path} keeps the {part.size():,} bytes received: " if part.resume_point() else ""
        raise DownloadError(
            f"the download of {shown} was interrupted {attempts} times (last: {failure}); {kept}run the command again "
            "to resume"
        )
    try:
        _verify(part.path, shown, expected_size, expected_sha256)
    except DownloadError:
        part.discard()
        raise
    part.complete(destination)
    return destination


@dataclass
class _Resume:
    """Where an interrupted transfer stands: bytes on disk, and the validator and size of the first answer."""

    offset: int
    validator: str
    total: int


class _PartFile:
    """`NAME.part` (the bytes received so far) and `NAME.part.json` (what a resume must find unchanged)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state_path = path.with_name(path.name + ".json")

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def resume_point(self) -> _Resume | None:
        """The state to resume from, or None (a part that cannot be resumed safely is discarded)."""
        if not self.path.exists():
            self.discard()
            return None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            resume = _Resume(self.size(), str(state["validator"]), int(state["total"]))
        except (OSError, ValueError, TypeError, KeyError):
            resume = None
        if resume is None or not _VALIDATOR.fullmatch(resume.validator) or resume.offset > resume.total:
            self.discard()
            return None
        return resume

    def start(self, validator: str | None, total: int | None) -> None:
        """Begin the file again (empty), recording what a later resume must find unchanged (if anything)."""
        self.discard()
        staged = self.state_path.with_name(self.state_path.name + ".tmp")
        try:
            if validator is not None and total is not None:
                staged.write_text(json.dumps({"validator": validator, "total": total}), encoding="utf-8")
                staged.replace(self.state_path)
            self.path.write_bytes(b"")
        except OSError as error:
            staged.unlink(missing_ok=True)
            self.discard()
            raise DownloadError(f"cannot write {self.path}: {_reason(error)}") from None

    def append(self, response: http.client.HTTPResponse, limit: int | None, shown: str, bar: tqdm) -> int:
        """Append the response's body (refusing more than `limit` bytes); returns the number of bytes received."""
        received = 0
        with ExitStack() as files:
            try:  # unbuffered: a failed write leaves a prefix of the file on disk
                handle = files.enter_context(open(self.path, "ab", buffering=0))
            except OSError as error:
                raise self._write_error(error) from None
            while chunk := response.read(CHUNK_SIZE):
                if limit is not None and received + len(chunk) > limit:
                    self.discard()
                    raise DownloadError(
                        f"{shown} sent more than the {limit:,} bytes it announced; the partial file is removed"
                    )
                try:
                    view = memoryview(chunk)
                    while view:
                        view = view[handle.write(view) :]
                except OSError as error:
                    raise self._write_error(error) from None
                received += len(chunk)
                bar.update(len(chunk))
        return received

    def _write_error(self, error: OSError) -> DownloadError:
        """The error for a failed write (e.g. a full disk): the bytes received are kept when they can be resumed."""
        if self.resume_point() is not None and self.size():
            kept = f"{self.path} keeps the {self.size():,} bytes received: make room, then run the command again"
        else:
            self.discard()
            kept = "the partial file is removed"
        return DownloadError(f"cannot write {self.path}: {_reason(error)}; {kept}")

    def discard(self) -> None:
        for path in (self.path, self.state_path):
            path.unlink(missing_ok=True)

    def complete(self, destination: Path) -> None:
        try:
            self.path.replace(destination)
            self.state_path.unlink(missing_ok=True)
        except OSError as error:
            raise DownloadError(f"cannot rename {self.path} to {destination.name}: {_reason(error)}") from None


def _transfer(
    url: str,
    part: _PartFile,
    expected_size: int | None,
    expected_sha256: str | None,
    timeout: float,
    progress: bool | None,
) -> str:
    """One attempt: fetch what the part lacks (a `Range` + `If-Range` request if it can be resumed) and append it.
    Returns "" when the file is complete, else why it is not (the next attempt goes on); raises `DownloadError` for
    an answer that retrying cannot fix."""
    shown = redact_url(url)
    resume = part.resume_point()
    if resume is not None and resume.offset == resume.total:
        return ""
    try:
        with _open(url, resume, timeout) as response:
            status = getattr(response, "status", None) or 200  # file:// responses have no status
            if resume is not None and status == 206:
                offset, total = resume.offset, resume.total
                limit = _resumed_range_end(response, resume) + 1 - offset
            elif status == 200:  # the whole file: any part on disk is obsolete
                part.discard()
                offset, total = 0, _announced_size(response, shown, expected_size, expected_sha256)
                part.start(_validator(response), total)
                limit = total
            else:
                raise DownloadError(
                    f"cannot download {shown}: the server answered HTTP {status} {_one_line(response.reason)} "
                    "instead of the file"
                )
            with tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.path.name.removesuffix(".part"),
                disable=None if progress is None else not progress,
                leave=True,
            ) as bar:
                received = part.append(response, limit, shown, bar)
    except _Restart as restart:
        part.discard()
        return str(restart)
    if total is not None and offset + received < total:
        return "the connection closed before the end of the file"
    return ""


class _Restart(Exception):
    """The part on disk cannot be continued with this server's file: the transfer starts again (the message says
    why)."""


def _open(url: str, resume: _Resume | None, timeout: float) -> http.client.HTTPResponse:
    """The server's answer to a request for `url` (for the rest of the part when `resume` is given)."""
    shown = redact_url(url)
    request_url, authorization = _without_credentials(url)
    headers = {"User-Agent": "modeling-elmo", "Accept-Encoding": "identity"}
    try:
        request = urllib.request.Request(request_url, headers=headers)
        if authorization is not None:
            request.add_unredirected_header("Authorization", authorization)
        if resume is not None:
            request.add_header("Range", f"bytes={resume.offset}-")
            request.add_header("If-Range", resume.validator)
        return urllib.request.build_opener(_RedirectHandler).open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and resume is not None:  # the part on disk is not a prefix of this file
            raise _Restart("the server refused to resume (HTTP 416): starting again") from None
        raise DownloadError(f"cannot download {shown}: HTTP {error.code} {_one_line(error.reason)}") from None
    except _RefusedRedirect as error:
        raise DownloadError(f"cannot download {shown}: {error}") from None
    except urllib.error.URLError as error:
        # An OSError's own text may quote the path with the query string (file://): only its description is shown.
        detail = _reason(error.reason) if isinstance(error.reason, OSError) else _one_line(error.reason)
        if shown.lower().startswith("file:"):
            raise DownloadError(f"cannot read {shown}: {detail}") from None
        if resume is not None or not isinstance(error.reason, (OSError, str)):
            raise ConnectionError(detail) from None
        host = shown.partition("://")[2].partition("/")[0] or shown
        raise UnreachableError(f"cannot reach {host} ({detail})") from None
    except (ValueError, http.client.InvalidURL) as error:  # their messages would quote the URL's query string
        raise DownloadError(
            f"cannot download {shown}: not a URL that can be requested ({type(error).__name__})"
        ) from None


def _resumed_range_end(response: http.client.HTTPResponse, resume: _Resume) -> int:
    """The last byte a 206 answer to a resume sends; raises `_Restart` when it cannot be appended to the part."""
    content_range = response.headers.get("Content-Range", "")
    match = _CONTENT_RANGE.fullmatch(content_range)
    if not match:
        shown_range = _one_line(content_range)[:80]
        raise _Restart(f"the server answered a resume with Content-Range {shown_range!r}: starting again")
    start, end, total = (int(group) for group in match.groups())
    if total != resume.total:
        raise _Restart(f"the file on the server changed size ({resume.total:,} then {total:,} bytes): starting again")
    if start != resume.offset or end < start or end >= total:
        raise _Restart(f"the server sent bytes {start}-{end} when asked for {resume.offset}-: starting again")
    etag = response.headers.get("ETag")
    if resume.validator.startswith('"') and etag is not None and etag != resume.validator:
        raise _Restart("the file on the server changed (its ETag differs): starting again")
    return end


def _announced_size(
    response: http.client.HTTPResponse, shown: str, expected_size: int | None, expected_sha256: str | None
) -> int | None:
    """The size a 200 answer's body must have: its `Content-Length`, which must equal `expected_size` when given.
    None for a chunked body (whose end is marked) or when the SHA-256 is known; without any, it is refused."""
    length = response.headers.get("Content-Length", "").strip()
    announced = int(length) if re.fullmatch(r"[0-9]{1,20}", length) else None
    if expected_size is not None:
        if announced is not None and announced != expected_size:
            raise DownloadError(
                f"{shown} announces {announced:,} bytes, the published file has {expected_size:,}: not downloaded"
            )
        return expected_size
    if announced is None and not getattr(response, "chunked", False) and expected_sha256 is None:
        raise DownloadError(
            f"{shown} was sent without its size (no Content-Length): a transfer cut short could not be told from "
            "the whole file, so it is not used (with a known SHA-256, e.g. --weights-sha256, it would be)"
        )
    return announced


def _validator(response: http.client.HTTPResponse) -> str | None:
    """What `If-Range` sends back on a resume: the strong `ETag`, else `Last-Modified`; None if neither is usable."""
    etag = response.headers.get("ETag")
    if etag is not None and not etag.startswith("W/") and _VALIDATOR.fullmatch(etag):
        return etag
    last_modified = response.headers.get("Last-Modified")
    return last_modified if last_modified is not None and _VALIDATOR.fullmatch(last_modified) else None


def _without_credentials(url: str) -> tuple[str, str | None]:
    """`url` without `user:password@`, and the basic `Authorization` header for them (None without)."""
    match = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)(.*)", url, flags=re.DOTALL)
    if match is None or "@" not in match.group(2):
        return url, None
    userinfo, _, host = match.group(2).rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return f"{match.group(1)}{host}{match.group(3)}", f"Basic {token}"


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http and https (never from https to http), at most `MAX_REDIRECTS`."""

    max_redirections = MAX_REDIRECTS

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("Location") or headers.get("URI")
        if location:
            target = urljoin(req.full_url, location)
            scheme = target.partition("://")[0].lower() if "://" in target else target.partition(":")[0].lower()
            if scheme not in ("http", "https") or (req.full_url.lower().startswith("https:") and scheme == "http"):
                fp.close()
                raise _RefusedRedirect(
                    f"it redirects (HTTP {code}) to {redact_url(target)}, and only redirects to http or https "
                    "(not from https to http) are followed"
                )
            if sum(getattr(req, "redirect_dict", {}).values()) >= MAX_REDIRECTS:
                fp.close()
                raise _RefusedRedirect(f"more than {MAX_REDIRECTS} redirects")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _verify(path: Path, shown: str, expected_size: int | None, expected_sha256: str | None) -> None:
    """Check a downloaded file's size and SHA-256 where known; a file that fails is removed."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        path.unlink()
        raise DownloadError(f"{shown}: the downloaded file has {size:,} bytes, expected {expected_size:,} (removed)")
    if expected_sha256 is None:
        return
    actual = file_sha256(path)
    if actual != expected_sha256.lower():
        path.unlink()
        raise DownloadError(
            f"{shown}: the downloaded file's SHA-256 is {actual}, expected {expected_sha256.lower()} (file removed)"
        )


def _reason(error: OSError) -> str:
    """The system's description of `error` (e.g. "No space left on device")."""
    return (error.strerror or str(error)) if error.errno else str(error)


def _one_line(value: object) -> str:
    """A server- or system-supplied text on one line, with any URL in it redacted."""
    return " ".join(redact_url(word) for word in str(value).split())


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
    options are checked against its architecture before its weights are downloaded. The provenance names the
    URLs actually fetched, redacted (`redact_url`)."""
    base_url = base_url or ALLENNLP_BASE_URL
    published = _published_model(preset)
    if published is None and (options is None or weights is None):
        raise ConversionError("pass --preset NAME, or both --options and --weights (local files or URLs)")
    if published is not None:
        options = options or published.options_url(base_url)
        weights = weights or published.weights_url(base_url)
    cache = Path(download_dir) if download_dir is not None else default_download_dir()
    try:
        options_path = _local_copy(options, "options", cache, published, base_url, None, progress)
        if published is not None:
            _check_architecture(options_path, published)
        weights_path = _local_copy(weights, "weights", cache, published, base_url, weights_sha256, progress)
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
    """The `elmo convert` command for the model card: URLs as given but redacted, local files by name only."""
    command = ["elmo", "convert"]
    if published is not None:
        command += ["--preset", published.key]
        if base_url != ALLENNLP_BASE_URL:
            command += ["--mirror", redact_url(base_url)]
    for flag, location in (("--options", options), ("--weights", weights)):
        if published is None or location not in (published.options_url(base_url), published.weights_url(base_url)):
            command += [flag, redact_url(location) if is_url(location) else Path(location).name]
    return shlex.join([*command, "--output-dir", Path(output_dir).name])


def _published_model(preset: str | None) -> PublishedModel | None:
    if preset is None:
        return None
    if preset not in PUBLISHED_MODELS:
        raise ConversionError(f"unknown preset {preset!r}; choose one of {', '.join(PUBLISHED_MODELS)}")
    return PUBLISHED_MODELS[preset]


def download_folder(url: str, published: PublishedModel | None = None) -> str:
    """The cache subfolder for a download from `url`: the published model's directory name for its official
    AllenNLP URLs, else a hash of the whole URL (a mirror's copy is never reused as the official file)."""
    official = published is not None and url in (published.options_url(), published.weights_url())
    if official:
        return published.directory
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _local_copy(
    location: str,
    role: str,
    cache: Path,
    published: PublishedModel | None,
    base_url: str,
    expected_sha256: str | None,
    progress: bool | None,
) -> Path:
    """`location` itself if it is a local file, else its download into the cache. The published model's known
    size and SHA-256 are checked when `location` is its file (from AllenNLP or the mirror `base_url`)."""
    expected_size = None
    if published is not None and location == getattr(published, f"{role}_url")(base_url):
        expected_size, known_sha256 = published.expected_file(role)
        expected_sha256 = expected_sha256 or known_sha256
    if not is_url(location):
        path = Path(location)
        require_file(path, f"{role} file")
        if expected_sha256:
            _verify_local_checksum(path, expected_sha256)
        return path
    destination = cache / download_folder(location, published) / download_file_name(location, role)
    return download(
        location, destination, expected_size=expected_size, expected_sha256=expected_sha256, progress=progress
    )


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
    urls = [redact_url(location) for location in (options, weights) if is_url(location)]
    return (
        f"cannot download the model files: {error}. Download {' and '.join(urls)} where there is network access, "
        f"then convert the local files: elmo convert --options OPTIONS.json --weights WEIGHTS.hdf5 "
        f"--output-dir {output_dir}"
    )
