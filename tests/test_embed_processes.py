"""`elmo embed` as real processes: interrupted by SIGKILL or Ctrl-C (SIGINT) and run again, streamed from stdin,
and with a model from a Hub id (served by the fake Hub)."""

import base64
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from embed_helpers import assert_same_files, converted_model, embed, read_hdf5, write_lines
from test_embed import LINES

from fake_hub import hub_env

ELMO = str(Path(sys.executable).with_name("elmo"))
VOCABULARY = ["the", "play", "was", "a", "hit", "they", "football", "on", "Sunday", "actors", "stage", "theatre", "."]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("processes"))


@pytest.fixture(scope="module")
def corpus(folder, tmp_path_factory):
    """2,000 lines (some blank) and their uninterrupted embedding, made in this process."""
    directory = tmp_path_factory.mktemp("corpus")
    generator = random.Random(0)
    lines = [" ".join(generator.choices(VOCABULARY, k=generator.randint(0, 14))) for _ in range(2000)]
    source = write_lines(directory / "corpus.txt", lines)
    assert embed(folder, source, directory / "reference.hdf5", *JOB_OPTIONS) == 0
    return source, directory / "reference.hdf5"


JOB_OPTIONS = ["--window", "4", "--batch-size", "4", "--no-progress"]  # 500 windows: a few seconds of work


def interruptible() -> None:
    """In the child before `exec`: Ctrl-C as in a terminal. An ignored SIGINT is inherited across `exec`, and the
    suite's process has one whenever it was started in the background by a non-interactive shell (`pytest &` in a
    script: POSIX shells start such jobs with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def start(folder, source, output, tmp_path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [ELMO, "embed", str(source), str(output), "--model", str(folder), *JOB_OPTIONS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=hub_env(None, tmp_path / "hf", offline=True), preexec_fn=interruptible, **kwargs,
    )  # fmt: skip


def wait_for_windows(process: subprocess.Popen, parts: Path, count: int) -> None:
    deadline = time.monotonic() + 240
    while len(list(parts.glob("window-*.h5"))) < count:
        assert process.poll() is None, f"the job ended before it could be interrupted: {process.communicate()}"
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.02)


@pytest.mark.parametrize("interruption", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_an_interrupted_job_finishes_when_run_again(folder, corpus, tmp_path, interruption):
    source, reference = corpus
    output, parts = tmp_path / "out.hdf5", tmp_path / "out.hdf5.parts"
    process = start(folder, source, output, tmp_path)
    try:
        wait_for_windows(process, parts, 3)
        process.send_signal(interruption)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    if interruption == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130 and "run the same command again" in err, err
    assert not output.exists()
    done = sorted(path.name for path in parts.glob("window-*.h5"))
    assert 3 <= len(done) < 500
    # what a kill in the middle of writing leaves behind: a half-written window file under its temporary name
    next_window = parts / f"window-{len(done):08d}.h5.tmp"
    next_window.write_bytes((parts / done[0]).read_bytes()[:1000])

    again = start(folder, source, output, tmp_path)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "resuming" in err and f"({len(done) * 4} of them from the interrupted run)" in err
    assert not parts.exists()
    assert_same_files(output, reference)  # every dataset, in order: none lost, duplicated or partial


def test_stdin_is_streamed_window_by_window(folder, tmp_path):
    lines = [f"streamed sentence {number} with some words ." for number in range(12)]
    output, parts = tmp_path / "out.hdf5", tmp_path / "out.hdf5.parts"
    process = subprocess.Popen(
        [ELMO, "embed", "-", str(output), "--model", str(folder), "--window", "4", "--batch-size", "2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=hub_env(None, tmp_path / "hf", offline=True),
    )  # fmt: skip
    try:
        process.stdin.write("".join(line + "\n" for line in lines[:9]).encode())
        process.stdin.flush()
        wait_for_windows(process, parts, 2)  # two windows written while stdin is still open: streaming
        assert not output.exists()
        process.stdin.write("".join(line + "\n" for line in lines[9:]).encode())
        process.stdin.close()
        assert process.wait(timeout=120) == 0, process.stderr.read().decode()
        err = process.stderr.read().decode()
    finally:
        process.kill()
    assert "sentences/s" in err and "tokens/s" in err
    source = write_lines(tmp_path / "in.txt", lines)
    assert embed(folder, source, tmp_path / "file.hdf5", "--window", "4", "--batch-size", "2") == 0
    assert_same_files(output, tmp_path / "file.hdf5")


def test_model_from_a_hub_id(folder, fake_hub, tmp_path):
    repo = fake_hub.create_repo("elmo-org/tiny-elmo", private=False)
    files = [path for path in sorted(folder.iterdir()) if path.is_file()]
    fake_hub.commit(repo, "main", "add the model", [
        {"key": "file", "value": {"path": path.name, "encoding": "base64",
                                  "content": base64.b64encode(path.read_bytes()).decode()}}
        for path in files
    ])  # fmt: skip
    source = write_lines(tmp_path / "in.txt", LINES)
    result = subprocess.run(
        [ELMO, "embed", str(source), str(tmp_path / "hub.hdf5"), "--model", "elmo-org/tiny-elmo", "--no-progress"],
        capture_output=True, text=True, env=hub_env(fake_hub.endpoint, tmp_path / "hf"), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(
        method == "GET" and path.startswith("/elmo-org/tiny-elmo/resolve/") and path.endswith("/model.safetensors")
        for method, path in fake_hub.requests
    )
    assert embed(folder, source, tmp_path / "folder.hdf5") == 0
    assert_same_files(tmp_path / "hub.hdf5", tmp_path / "folder.hdf5")
    assert len(read_hdf5(tmp_path / "hub.hdf5")[0]) == len(LINES)
