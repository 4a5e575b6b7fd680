"""The command line given untrusted or broken files: pickles that would run code, damaged checkpoints, folders that
are not ELMo folders, invalid text, a full disk and a second `elmo embed` racing for the same output. Every case
exits with status 2 and one line on stderr naming the file, line or field, runs no code from the files, and writes
nothing (or, for `elmo embed`, keeps only finished windows to continue from)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from embed_helpers import assert_same_files, converted_model, embed, read_hdf5, write_lines
from safetensors.torch import load_file, save_file

from fake_hub import hub_env
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.embed import EmbedError, _only_job_for

pytestmark = pytest.mark.usefixtures("one_thread")

ELMO = str(Path(sys.executable).with_name("elmo"))
TOY_TEXT = "the cat sat on the mat .\nthe dog sat on the log .\na cat saw a dog .\n"
TRAIN = ["--preset", "tiny", "--tokenized", "--batch-size", "4", "--unroll-steps", "10", "--num-sampled", "0"]
TRAIN += ["--dropout", "0", "--no-progress"]


class CodeRunner:
    """Pickled, it calls `os.system("touch MARKER")` when unpickled by anything that runs pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_code_pickle(path: Path, marker: Path, protocol: int) -> Path:
    """A pickle that looks like a state dict but would create `marker` when loaded without `weights_only`."""
    path.write_bytes(pickle.dumps({"weight": CodeRunner(marker)}, protocol=protocol))
    return path


def the_error(err: str, command: str) -> str:
    """The one error line of a command's stderr (other output, such as progress bars, aside)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("elmo ")]
    assert len(lines) == 1 and lines[0].startswith(f"elmo {command}: error: "), err
    return lines[0]


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return converted_model(tmp_path_factory.mktemp("untrusted"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny language model trained for 2 steps, with its checkpoint at step 2: (corpus, vocab, output folder)."""
    directory = tmp_path_factory.mktemp("trained")
    corpus = directory / "toy.txt"
    corpus.write_text(TOY_TEXT, encoding="utf-8")
    vocab = directory / "vocab.txt"
    assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(vocab)]) == 0
    output = directory / "model"
    command = ["train", str(corpus), "--vocab", str(vocab), "--output-dir", str(output), *TRAIN]
    assert elmo_main([*command, "--max-steps", "2", "--save-steps", "2"]) == 0
    return corpus, vocab, output


def copy_of(folder: Path, destination: Path) -> Path:
    shutil.copytree(folder, destination)
    return destination


# ---------------------------------------------------------------------------------------------------- pickles


def command_for(name: str, model: Path, tmp_path: Path, trained) -> tuple[list[str], Path | None]:
    """The command line of `name` with `--model` (or `--init-from`) `model`, and the output it would write."""
    corpus, vocab, _ = trained
    text = write_lines(tmp_path / "in.txt", ["the cat sat on the mat .", "a dog ."])
    if name == "embed":
        return ["embed", str(text), str(tmp_path / "out.hdf5"), "--model", str(model)], tmp_path / "out.hdf5"
    if name == "neighbors":
        return ["neighbors", "--corpus", str(text), "--query", "the cat", "--word", "cat", "--model", str(model)], None
    if name == "perplexity":
        return ["perplexity", str(text), "--model", str(model)], None
    output = tmp_path / "adapted"
    return ["train", str(corpus), "--vocab", str(vocab), "--init-from", str(model), "--output-dir", str(output),
            *TRAIN, "--max-steps", "1"], output  # fmt: skip


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("command", ["embed", "neighbors", "perplexity", "train"])
def test_a_pickle_that_would_run_code_is_refused_naming_the_file(trained, tmp_path, capsys, command, protocol):
    model = copy_of(trained[2], tmp_path / "model")  # a language model: every command can load it
    (model / "model.safetensors").unlink()
    weights = write_code_pickle(model / "pytorch_model.bin", tmp_path / "MARKER", protocol)
    argv, output = command_for(command, model, tmp_path, trained)
    assert elmo_main(argv) == 2
    captured = capsys.readouterr()
    error = the_error(captured.err, command)
    assert str(weights) in error or f"{model}:" in error, error  # the file, or the folder that holds it
    assert "refused" in error, error
    assert not (tmp_path / "MARKER").exists()  # the pickle's code never ran
    assert captured.out == ""
    assert output is None or not output.exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:200]),
        lambda path: path.write_bytes(b""),
        lambda path: path.write_bytes(b"plain text, not a pickle\n"),
    ],
    ids=["truncated", "empty", "text"],
)
def test_a_damaged_pickle_is_named(folder, tmp_path, capsys, damage):
    model = copy_of(folder, tmp_path / "model")
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    damage(model / "pytorch_model.bin")
    assert embed(model, write_lines(tmp_path / "in.txt", ["a b"]), tmp_path / "out.hdf5") == 2
    error = the_error(capsys.readouterr().err, "embed")
    assert str(model / "pytorch_model.bin") in error or f"{model}:" in error, error
    assert not (tmp_path / "out.hdf5").exists()


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "rng_state.pth", "elmo_stream_state_0.pt"])
def test_resuming_from_a_checkpoint_with_a_code_pickle_is_refused(trained, tmp_path, capsys, name):
    corpus, vocab, model = trained
    output = copy_of(model, tmp_path / "model")
    checkpoint = output / "checkpoints" / "checkpoint-2"
    write_code_pickle(checkpoint / name, tmp_path / "MARKER", protocol=4)
    before = tree(output)
    command = ["train", str(corpus), "--vocab", str(vocab), "--output-dir", str(output), *TRAIN, "--max-steps", "3"]
    assert elmo_main([*command, "--resume-from", str(checkpoint)]) == 2
    error = the_error(capsys.readouterr().err, "train")
    assert f"{checkpoint / name} is not a plain state dict: torch.load(weights_only=True) refused it" in error
    assert not (tmp_path / "MARKER").exists()
    assert tree(output) == before  # nothing written


def damage_checkpoint(checkpoint: Path, name: str) -> str:
    """Damage one part of a checkpoint; returns what the error must say."""
    if name == "trainer_state":
        (checkpoint / "trainer_state.json").write_text('{"global_step": ', encoding="utf-8")
        return f"{checkpoint / 'trainer_state.json'} is not a Trainer state"
    if name == "missing_tensor":
        weights = load_file(checkpoint / "model.safetensors")
        del weights["softmax.bias"]
        save_file(weights, checkpoint / "model.safetensors", metadata={"format": "pt"})
        return f"{checkpoint / 'model.safetensors'} does not fit the model: softmax.bias is missing"
    if name == "truncated_weights":
        path = checkpoint / "model.safetensors"
        path.write_bytes(path.read_bytes()[:1000])
        return f"{path} is not a valid safetensors file"
    if name == "stream_state":
        state = torch.load(checkpoint / "elmo_stream_state_0.pt", weights_only=True)
        state["cell"] = state["cell"][:, :, :2]
        torch.save(state, checkpoint / "elmo_stream_state_0.pt")
        return "'cell' has shape (2, 2, 2, 128), expected (2, 2, 4, 128) (2 streams, the batch size is 4)"
    optimizer = torch.load(checkpoint / "optimizer.pt", weights_only=True)
    optimizer["state"][0]["sum"] = torch.zeros(3)
    torch.save(optimizer, checkpoint / "optimizer.pt")
    return "the optimizer state does not fit this training (its 'sum' has shape (3,), its parameter (262, 8))"


@pytest.mark.parametrize(
    "name", ["trainer_state", "missing_tensor", "truncated_weights", "stream_state", "optimizer_state"]
)
def test_resuming_from_a_damaged_checkpoint_is_refused(trained, tmp_path, capsys, name):
    corpus, vocab, model = trained
    output = copy_of(model, tmp_path / "model")
    checkpoint = output / "checkpoints" / "checkpoint-2"
    message = damage_checkpoint(checkpoint, name)
    before = tree(output)
    command = ["train", str(corpus), "--vocab", str(vocab), "--output-dir", str(output), *TRAIN, "--max-steps", "3"]
    assert elmo_main([*command, "--resume-from", str(checkpoint)]) == 2
    error = the_error(capsys.readouterr().err, "train")
    assert message in error, error
    assert tree(output) == before


def test_resume_skips_a_checkpoint_interrupted_while_it_was_written(trained, tmp_path, capsys):
    corpus, vocab, model = trained
    output = copy_of(model, tmp_path / "model")
    partial = output / "checkpoints" / "checkpoint-3"
    partial.mkdir()
    shutil.copy(output / "checkpoints" / "checkpoint-2" / "model.safetensors", partial)  # no trainer_state.json
    command = ["train", str(corpus), "--vocab", str(vocab), "--output-dir", str(output), *TRAIN, "--max-steps", "3"]
    assert elmo_main([*command, "--resume"]) == 0
    summary = json.loads((output / "training_summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 3
    logged = [json.loads(line)["step"] for line in (output / "training_log.jsonl").read_text().splitlines()]
    assert logged[-1] == 3  # the step after checkpoint-2 was trained


# ------------------------------------------------------------------------------------------- model folders


def folder_problem(model: Path, problem: str, tmp_path: Path) -> tuple[Path, str]:
    """A `--model` argument with `problem`, and what the error must say."""
    config = model / "config.json"
    if problem == "no_model_type":
        values = json.loads(config.read_text(encoding="utf-8"))
        del values["model_type"]
        config.write_text(json.dumps(values), encoding="utf-8")
        return model, f"{config} has no model_type"
    if problem == "other_model_type":
        values = json.loads(config.read_text(encoding="utf-8"))
        values["model_type"] = "bert"
        config.write_text(json.dumps(values), encoding="utf-8")
        return model, f"{config}: model_type is 'bert', not 'elmo'"
    if problem == "config_not_json":
        config.write_bytes(b'{"model_type": "elmo",')
        return model, f"{config} is not valid JSON"
    if problem == "config_not_utf8":
        config.write_bytes(b'{"model_type": "elmo\xff"}')
        return model, f"{config} is not UTF-8 (byte 0xff"
    if problem == "config_nested":
        config.write_text('{"model_type": "elmo", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
        return model, f"{config} is not a model configuration: its JSON is nested too deeply"
    if problem == "config_is_a_folder":
        config.unlink()
        config.mkdir()
        return model, f"{config} is a folder, not a file"
    if problem == "no_config":
        config.unlink()
        return model, f"{model} has no config.json"
    if problem == "a_file":
        return config, f"the model {config} is a file"
    if problem == "missing":
        return tmp_path / "nowhere" / "model", f"the model folder {tmp_path / 'nowhere' / 'model'} does not exist"
    if problem == "truncated_weights":
        weights = model / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:5000])
        return model, str(weights)
    (model / "tokenizer_config.json").write_text("{", encoding="utf-8")
    return model, f"{model / 'tokenizer_config.json'} is not valid JSON"


FOLDER_PROBLEMS = ["no_model_type", "other_model_type", "config_not_json", "config_not_utf8", "config_nested",
                   "config_is_a_folder", "no_config", "a_file", "missing", "truncated_weights",
                   "tokenizer_config_not_json"]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (command, problem)
        for command in ("embed", "neighbors", "perplexity", "train")
        for problem in FOLDER_PROBLEMS
        if (command, problem) != ("train", "tokenizer_config_not_json")  # --init-from reads no tokenizer files
    ],
)
def test_a_model_that_is_not_an_elmo_folder_is_named(trained, tmp_path, capsys, command, problem):
    model, message = folder_problem(copy_of(trained[2], tmp_path / "model"), problem, tmp_path)
    argv, output = command_for(command, model, tmp_path, trained)
    assert elmo_main(argv) == 2
    captured = capsys.readouterr()
    error = the_error(captured.err, command)
    assert message in error, error
    assert "not a valid JSON file" not in error
    assert captured.out == "" and (output is None or not output.exists())


# ------------------------------------------------------------------------------------------------ text input


def test_a_lone_surrogate_in_json_lines_names_its_line_before_any_work(folder, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('"fine"\n"a \\ud800 b"\n["x", "\\udfff"]\n"\\ud83d\\ude00 is a pair"\n', encoding="utf-8")
    output = tmp_path / "out.hdf5"
    for options in ([], ["--use-sentence-keys"]):
        assert embed(folder, source, output, *options, "--restart") == 2
        error = the_error(capsys.readouterr().err, "embed")
        assert f"{source}:2: the line holds a lone surrogate escape (\\ud800 at character 3)" in error, error
        assert "--encoding-errors replace" in error
        assert not output.exists() and not list((tmp_path / "out.hdf5.parts").glob("window-*"))
    assert embed(folder, source, output, "--use-sentence-keys", "--encoding-errors", "replace", "--restart") == 0
    datasets, index = read_hdf5(output)
    assert list(datasets) == ["fine", "a \ufffd b", "x \ufffd", "😀 is a pair"]
    assert index["x \ufffd"] == "x \ufffd"


def test_deeply_nested_json_lines_are_named(folder, tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('"fine"\n' + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    assert embed(folder, source, tmp_path / "out.hdf5") == 2
    assert f"{source}:2: the JSON value is nested too deeply" in the_error(capsys.readouterr().err, "embed")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["embed", "{tmp}", "{tmp}/out.hdf5"], "the input {tmp} is a folder, not a file"),
        (["embed", "{text}", "{text}/sub/out.hdf5"], "cannot write {text}/sub/out.hdf5: {text} is not a folder"),
        (["embed", "{text}", "{tmp}"], "the output {tmp} is a folder"),
        (["embed", "{text}", "{tmp}/out.hdf5", "--cache-vocab", "{tmp}"], "cannot read the vocabulary file {tmp}"),
        (["embed", "{bad}", "{tmp}/out.hdf5"], "{bad}:2: invalid UTF-8 (byte 0xff"),
        (["neighbors", "--corpus", "{tmp}", "--query", "a", "--word", "a"], "the input {tmp} is a folder, not a file"),
        (["neighbors", "--corpus", "{bad}", "--query", "a", "--word", "a"], "{bad}:2: invalid UTF-8"),
        (["neighbors", "--corpus", "{text}", "--query", "a \udcff", "--index", "0"], "--query is not valid UTF-8"),
        (["neighbors", "--corpus", "{empty}", "--query", "a", "--word", "a"], "the corpus has no words"),
        (["perplexity", "{tmp}"], "cannot read {tmp}: Is a directory"),
        (["perplexity", "{bad}"], "{bad}:2: invalid UTF-8 (byte 0xff"),
        (["perplexity", "{tmp}/missing.txt"], "cannot read {tmp}/missing.txt: No such file or directory"),
        (["perplexity", "{text}", "--unigram", "{bad}"], "{bad}:2: invalid UTF-8"),
        (["perplexity", "{text}", "--device", "bogus"], "device 'bogus' is not a device name"),
        (["train", "{corpus}", "--vocab", "{tmp}", "--output-dir", "{tmp}/out"], "cannot read {tmp}: Is a directory"),
        (
            ["train", "{corpus}", "--vocab", "{vocab}", "--output-dir", "{tmp}/out", "--prime-from", "{tmp}"],
            "--prime-from {tmp} is a folder, not a file",
        ),
        (
            ["train", "{corpus}", "--vocab", "{vocab}", "--output-dir", "{tmp}/out", "--prime-from", "{bad}"],
            "{bad}:2: invalid UTF-8",
        ),
        (["build-vocab", "{bad}", "--output", "{tmp}/vocab.txt"], "{bad}:2: invalid UTF-8"),
        (["build-vocab", "{tmp}/missing.txt", "--output", "{tmp}/vocab.txt"], "the corpus file {tmp}/missing.txt"),
        (["build-vocab", "{tmp}", "--output", "{tmp}/vocab.txt"], "the corpus file {tmp} is a folder, not a file"),
        (["build-vocab", "{empty}", "--output", "{tmp}/vocab.txt"], "the corpus ({empty}) holds no sentences"),
    ],
)
def test_bad_paths_and_text_are_named(folder, trained, tmp_path, capsys, argv, message):
    work = tmp_path / "work"
    work.mkdir()
    paths = {
        "tmp": str(work),
        "text": str(write_lines(tmp_path / "in.txt", ["a b"])),
        "bad": str(tmp_path / "bad.txt"),
        "empty": str(write_lines(tmp_path / "empty.txt", [])),
        "corpus": str(trained[0]),
        "vocab": str(trained[1]),
    }
    (tmp_path / "bad.txt").write_bytes(b"fine\nbad \xff byte\n")
    argv = [part.format(**paths) for part in argv]
    if argv[0] in ("embed", "neighbors"):
        argv += ["--model", str(folder)]
    elif argv[0] == "perplexity":
        argv += ["--model", str(trained[2])]
    elif argv[0] == "train":
        argv += [*TRAIN, "--max-steps", "1"]
    assert elmo_main(argv) == 2
    captured = capsys.readouterr()
    assert message.format(**paths) in the_error(captured.err, argv[0])
    assert captured.out == ""
    assert [path.name for path in work.iterdir() if path.suffix != ".parts"] == []  # a job's windows may stay


# ----------------------------------------------------------------------------------------------- a full disk


@contextmanager
def tmpfs(mount_point: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at `mount_point` with `options` for the block (skips the test where mounting is not
    permitted: it needs root or CAP_SYS_ADMIN)."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def small_filesystem(tmp_path):
    """A 512 KiB file system at tmp_path/small."""
    with tmpfs(tmp_path / "small", "size=512k") as mount_point:
        yield mount_point


def fill(folder: Path) -> None:
    """Write into `folder` until its file system is full."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_a_full_disk_stops_embed_with_the_file_named_and_the_same_command_continues(
    folder, tmp_path, small_filesystem, capfd
):
    lines = [" ".join(["the", "play", "was", "a", "hit", "on", "stage"] * 2) + f" {number}" for number in range(400)]
    source = write_lines(tmp_path / "in.txt", lines)  # about 1 MB of vectors
    output = small_filesystem / "out.hdf5"
    parts = small_filesystem / "out.hdf5.parts"
    assert embed(folder, source, output, "--window", "50", "--no-progress") == 2
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "HDF5" not in captured.err, captured.err  # no noise from HDF5
    error = the_error(captured.err, "embed")
    assert f"no space left on device writing {parts}/window-" in error and "run the same command again" in error
    assert not output.exists()
    done = sorted(path.name for path in parts.iterdir())
    assert "job.json" in done and not [name for name in done if name.endswith(".tmp")]  # partial file removed
    assert len([name for name in done if name.startswith("window-")]) >= 1
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_filesystem)], check=True)
    assert embed(folder, source, output, "--window", "50", "--no-progress") == 0
    assert "resuming" in capfd.readouterr().err
    assert embed(folder, source, tmp_path / "reference.hdf5", "--window", "50", "--no-progress") == 0
    assert_same_files(output, tmp_path / "reference.hdf5")


def test_a_full_disk_stops_build_vocab_and_train_with_the_file_named(trained, small_filesystem, capfd):
    corpus, vocab, _ = trained
    fill(small_filesystem)
    assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(small_filesystem / "v.txt")]) == 2
    error = the_error(capfd.readouterr().err, "build-vocab")
    assert error == f"elmo build-vocab: error: no space left on device writing {small_filesystem / 'v.txt'}"
    assert sorted(path.name for path in small_filesystem.iterdir()) == ["filler"]
    (small_filesystem / "filler").unlink()
    output = small_filesystem / "model"  # room for the run's records, not for a checkpoint (about 700 kB)
    command = ["train", str(corpus), "--vocab", str(vocab), "--output-dir", str(output), *TRAIN, "--max-steps", "2"]
    assert elmo_main([*command, "--save-steps", "1"]) == 2
    error = the_error(capfd.readouterr().err, "train")
    checkpoint = output / "checkpoints" / "checkpoint-1"
    assert f"cannot write the checkpoint {checkpoint} (" in error and "No space left on device" in error
    assert not checkpoint.exists()


def test_a_full_disk_stops_convert_and_export_original_with_nothing_left(folder, small_filesystem, tmp_path, capfd):
    exported = tmp_path / "exported"
    assert elmo_main(["export-original", "--model", str(folder), "--output-dir", str(exported)]) == 0
    fill(small_filesystem)
    commands = {
        "export-original": ["--model", str(folder), "--output-dir", str(small_filesystem / "out")],
        "convert": [
            "--options",
            str(exported / "options.json"),
            "--weights",
            str(exported / "weights.hdf5"),
            "--output-dir",
            str(small_filesystem / "out"),
        ],
    }
    for command, arguments in commands.items():
        assert elmo_main([command, *arguments]) == 2
        captured = capfd.readouterr()
        assert "Traceback" not in captured.err and "HDF5" not in captured.err, captured.err
        assert f"elmo {command}: error: no space left on device writing {small_filesystem}/" in the_error(
            captured.err, command
        )
        assert sorted(path.name for path in small_filesystem.iterdir()) == ["filler"]


@pytest.fixture
def read_only_folder(tmp_path):
    """A read-only file system at tmp_path/read-only."""
    with tmpfs(tmp_path / "read-only", "ro,size=64k") as mount_point:
        yield mount_point


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["embed", "{text}", "{folder}/out.hdf5", "--model", "{model}"], "{folder}/.out.hdf5.lock"),
        (["build-vocab", "{text}", "--output", "{folder}/vocab.txt"], "{folder}/vocab.txt"),
        (["train", "{text}", "--vocab", "{vocab}", "--output-dir", "{folder}/model", *TRAIN], "{folder}/model"),
    ],
)
def test_a_read_only_folder_is_named(folder, trained, tmp_path, read_only_folder, capsys, argv, named):
    paths = {"text": str(trained[0]), "vocab": str(trained[1]), "folder": str(read_only_folder), "model": str(folder)}
    argv = [part.format(**paths) for part in argv]
    assert elmo_main(argv) == 2
    error = the_error(capsys.readouterr().err, argv[0])
    assert error.endswith(f"error: read-only file system: {named.format(**paths)}"), error


# ----------------------------------------------------------------------------------------------- the lock


def test_the_embed_lock_admits_one_holder_however_the_holders_interleave(tmp_path):
    """Eight threads take and release the lock of one output as fast as they can (each `flock` is on its own
    open file, as in separate processes): never two at once, although the holders remove the lock file."""
    output = tmp_path / "out.hdf5"
    holders, most, entries = 0, 0, 0
    count = threading.Lock()
    deadline = time.monotonic() + 1.5

    def contend() -> None:
        nonlocal holders, most, entries
        while time.monotonic() < deadline:
            try:
                with _only_job_for(output):
                    with count:
                        holders += 1
                        entries += 1
                        most = max(most, holders)
                    time.sleep(0.0005)
                    with count:
                        holders -= 1
            except EmbedError:
                continue

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert entries > 50 and most == 1
    assert not (tmp_path / ".out.hdf5.lock").exists()


def test_a_second_embed_process_is_refused_while_the_first_runs(folder, tmp_path):
    """The first job reads standard input, which stays open: it holds the lock, idle, while the second starts."""
    output = tmp_path / "out.hdf5"
    environment = hub_env(None, tmp_path / "hf", offline=True)
    first = subprocess.Popen(
        [ELMO, "embed", "-", str(output), "--model", str(folder), "--window", "2", "--no-progress"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment,
    )  # fmt: skip
    try:
        first.stdin.write(b"the first window\nof two lines\n")
        first.stdin.flush()
        deadline = time.monotonic() + 120
        while not list((tmp_path / "out.hdf5.parts").glob("window-*.h5")):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first job wrote no window"
            time.sleep(0.05)
        source = write_lines(tmp_path / "in.txt", ["another input"])
        second = subprocess.run(
            [ELMO, "embed", str(source), str(output), "--model", str(folder), "--no-progress"],
            capture_output=True, text=True, env=environment, timeout=300,
        )  # fmt: skip
        assert second.returncode == 2
        assert f"elmo embed: error: another elmo embed is working on {output}" in the_error(second.stderr, "embed")
        assert first.poll() is None
        first.stdin.write(b"and a last line\n")
        first.stdin.close()
        assert first.wait(timeout=120) == 0, first.stderr.read().decode()
    finally:
        first.kill()
        first.wait()
    assert len(read_hdf5(output)[0]) == 3  # the first job's input, untouched by the second
    assert not (tmp_path / ".out.hdf5.lock").exists()
