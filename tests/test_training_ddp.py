"""`elmo train` under a real `torchrun` with two CPU processes (DDP over gloo): both ranks train on their own
streams, checkpoint, and the run resumes from the checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from modeling_elmo import ElmoForBidirectionalLM
from modeling_elmo.cli import main as elmo_main
from modeling_elmo.perplexity import evaluate_perplexity

TORCHRUN = Path(sys.executable).with_name("torchrun")
OPTIONS = ["--preset", "tiny", "--tokenized", "--batch-size", "2", "--unroll-steps", "8", "--num-sampled", "8"]
OPTIONS += ["--no-progress", "--logging-steps", "1", "--save-steps", "2"]


def torchrun(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "modeling_elmo.cli", "train", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_torchrun_trains_on_two_processes_checkpoints_and_resumes(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"sentence {i} says the cat sat on mat {i % 7} .\n" for i in range(60)), encoding="utf-8")
    vocab = tmp_path / "vocab.txt"
    assert elmo_main(["build-vocab", str(corpus), "--tokenized", "--output", str(vocab)]) == 0
    output = tmp_path / "model"
    common = [str(corpus), "--vocab", str(vocab), "--output-dir", str(output), *OPTIONS]

    first = torchrun(tmp_path, *common, "--max-steps", "4")
    assert first.returncode == 0, first.stderr[-12000:]
    run = json.loads((output / "training_run.json").read_text())
    assert run["world_size"] == 2
    checkpoint = output / "checkpoints" / "checkpoint-4"
    for rank in (0, 1):
        assert (checkpoint / f"rng_state_{rank}.pth").is_file()
        assert (checkpoint / f"elmo_stream_state_{rank}.pt").is_file()
    states = [torch.load(checkpoint / f"elmo_stream_state_{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert states[0]["cell"].shape[2] == 2  # two streams per process
    assert not torch.equal(states[0]["cell"], states[1]["cell"])  # the ranks read different text

    model = ElmoForBidirectionalLM.from_pretrained(output)
    result = evaluate_perplexity(model, [line.split() for line in corpus.read_text().splitlines()[:5]])
    assert result.average_perplexity > 1

    second = torchrun(tmp_path, *common, "--max-steps", "6", "--resume")
    assert second.returncode == 0, second.stderr[-4000:]
    summary = json.loads((output / "training_summary.json").read_text())
    assert summary["global_step"] == 6 and summary["world_size"] == 2
    steps = [json.loads(line)["step"] for line in (output / "training_log.jsonl").read_text().splitlines()]
    assert [step for step in steps if step > 4][:2] == [5, 6]
    assert (output / "checkpoints" / "checkpoint-6" / "elmo_stream_state_1.pt").is_file()
