"""`elmo embed` under a real `torchrun` and `accelerate launch` (two CPU processes, gloo): the same bytes as one
process, and a launch killed with SIGKILL (every process at once) that a single process finishes, redoing a truncated
part file."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from embed_helpers import assert_same_files, converted_model, embed, write_lines

from modeling_elmo.configuration_elmo import ElmoError
from modeling_elmo.embed_distributed import LaunchContext, launch_context

VOCABULARY = ["the", "play", "was", "a", "hit", "they", "football", "on", "Sunday", "actors", "stage", "theatre", "."]
LAUNCH = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python"]
#: `accelerate launch` with two processes (`--multi_gpu` is its multi-process launcher, on CPUs too).
ACCELERATE_LAUNCH = [
    *(sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"),
    *("--mixed_precision", "no", "--dynamo_backend", "no", "--no_python"),
]
ELMO = str(Path(sys.executable).with_name("elmo"))
pytestmark = pytest.mark.usefixtures("one_thread")  # the runs in this process, as each of the launched ones


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("distributed"))


def corpus(path: Path, count: int) -> Path:
    generator = random.Random(count)
    lines = [" ".join(generator.choices(VOCABULARY, k=generator.randint(0, 14))) for _ in range(count)]
    return write_lines(path, lines)


def launch(folder: Path, source: Path, output: Path, *options: str, launcher: list[str] = LAUNCH) -> subprocess.Popen:
    """`torchrun --nproc_per_node=2 elmo embed …` (or another `launcher`)."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        environment.pop(name, None)
    command = [*launcher, ELMO, "embed", str(source), str(output), "--model", str(folder), "--no-progress", *options]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)


def kill_whole_launch(process: subprocess.Popen) -> None:
    """SIGKILL the launcher and its workers at once (as a scheduler ending a job does: torchrun starts each worker
    in a session of its own, so killing its process group would leave them running)."""
    launcher = psutil.Process(process.pid)
    processes = [launcher, *launcher.children(recursive=True)]
    for member in processes:
        member.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=60)


def done_by_rank(parts: Path) -> list[int]:
    """How many finished part files each of two ranks wrote."""
    numbers = [int(path.name[len("window-") :].split(".")[0]) for path in parts.glob("window-*.parquet")]
    return [sum(number % 2 == rank for number in numbers) for rank in (0, 1)]


@pytest.mark.parametrize("launcher", [LAUNCH, ACCELERATE_LAUNCH], ids=["torchrun", "accelerate"])
def test_two_processes_write_the_bytes_of_one(folder, tmp_path, launcher):
    source = corpus(tmp_path / "in.txt", 300)
    options = ["--window", "8", "--batch-size", "4"]
    assert embed(folder, source, tmp_path / "one.hdf5", *options, "--no-progress") == 0
    process = launch(folder, source, tmp_path / "two.hdf5", *options, launcher=launcher)
    _, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-6000:]
    assert "300 lines" in err and "by 2 processes" in err
    assert_same_files(tmp_path / "two.hdf5", tmp_path / "one.hdf5")  # every dataset and sentence_to_index
    assert (tmp_path / "two.hdf5").read_bytes() == (tmp_path / "one.hdf5").read_bytes()
    assert not (tmp_path / "two.hdf5.parts").exists() and not (tmp_path / ".two.hdf5.lock").exists()


def test_a_killed_launch_is_finished_by_one_process_with_a_truncated_part_redone(folder, tmp_path, capsys):
    source = corpus(tmp_path / "in.txt", 600)
    options = ["--window", "2", "--batch-size", "2", "--top"]  # 300 windows: several seconds of work
    output, parts = tmp_path / "out.parquet", tmp_path / "out.parquet.parts"
    process = launch(folder, source, output, *options)
    try:
        deadline = time.monotonic() + 240
        while min(done_by_rank(parts)) < 3:  # parts of both ranks (window i is rank i mod 2's)
            assert process.poll() is None, f"the launch ended before it could be killed: {process.communicate()}"
            assert time.monotonic() < deadline, "the launch made no progress"
            time.sleep(0.02)
        kill_whole_launch(process)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill_whole_launch(process)
    done = sorted(parts.glob("window-*.parquet"))
    assert not output.exists() and 6 <= len(done) < 300
    done[1].write_bytes(done[1].read_bytes()[:100])  # a truncated part file, under its final name
    capsys.readouterr()

    assert embed(folder, source, output, *options, "--no-progress") == 0  # one process finishes the job
    assert f"({(len(done) - 1) * 2} of them from the interrupted run)" in capsys.readouterr().err
    assert embed(folder, source, tmp_path / "one.parquet", *options, "--no-progress") == 0
    assert output.read_bytes() == (tmp_path / "one.parquet").read_bytes()


def test_standard_input_cannot_be_shared(folder, tmp_path, capsys, monkeypatch):
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    assert embed(folder, "-", tmp_path / "out.hdf5", "--threads", "1") == 2
    assert "processes of a distributed launch cannot share standard input" in capsys.readouterr().err
    assert not (tmp_path / "out.hdf5.parts").exists()


def test_launch_context_from_the_launchers_variables():
    assert launch_context({}) == LaunchContext()
    context = launch_context({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert context == LaunchContext(3, 4, 1, 2) and context.distributed
    assert [number for number in range(10) if context.owns(number)] == [3, 7]
    assert context.device("cpu") == "cpu" and context.device(None) in ("cpu", "cuda:1")
    assert 1 <= context.fair_threads() <= max(1, (os.cpu_count() or 1) // 2)
    assert LaunchContext().device(None) is None
    with pytest.raises(ElmoError, match="RANK must be a whole number"):
        launch_context({"WORLD_SIZE": "2"})
    with pytest.raises(ElmoError, match="RANK=2 is not below WORLD_SIZE=2"):
        launch_context({"RANK": "2", "WORLD_SIZE": "2"})
