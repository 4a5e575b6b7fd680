"""Training throughput of `elmo train` (tokens per second), to size a training run to a time budget.

    python benchmarks/train_throughput.py --corpus cache/corpus/train.txt --vocab cache/shipped/vocab.txt \
        --preset cpu-small --steps 120 [--processes 2] [--hours 2]

Runs `elmo train` for `--steps` steps (logging every 10) in a fresh process (or `--processes` single-threaded
processes under `torchrun`, as `scripts/train_shipped_model.py` trains) and reports the median of the logged
tokens per second, leaving out the first interval (start-up), the system load while it ran, the steps and passes
over the corpus that `--hours` of training would give, and the size of the model's safetensors file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="a tokenized training file, one sentence per line")
    parser.add_argument("--vocab", required=True, help="its vocabulary (elmo build-vocab)")
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--processes", type=int, default=1, help="> 1: torchrun, one thread per process")
    parser.add_argument("--hours", type=float, default=2.0, help="the time budget to size the run for")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="more `elmo train` options, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        output = Path(work) / "model"
        launcher = [sys.executable]
        environment = dict(os.environ)
        if args.processes > 1:
            launcher = [
                str(Path(sys.executable).with_name("torchrun")),
                "--standalone",
                f"--nproc_per_node={args.processes}",
            ]
            environment["OMP_NUM_THREADS"] = "1"
        command = [
            *launcher, "-m", "modeling_elmo.cli", "train", args.corpus, "--tokenized", "--vocab", args.vocab,
            "--preset", args.preset, "--output-dir", str(output), "--max-steps", str(args.steps),
            "--logging-steps", "10", "--save-steps", str(10 * args.steps), "--no-progress",
            *[option for option in args.extra if option != "--"],
        ]  # fmt: skip
        load_before = os.getloadavg()[0]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
        load_after = os.getloadavg()[0]
        logs = [json.loads(line) for line in (output / "training_log.jsonl").read_text().splitlines()]
        run = json.loads((output / "training_run.json").read_text())
        size = (output / "model.safetensors").stat().st_size
    rates = [entry["tokens_per_second"] for entry in logs if "tokens_per_second" in entry][1:]
    rate = statistics.median(rates)
    settings = run["settings"]
    words_per_step = settings["batch_size"] * settings["unroll_steps"] * run["world_size"]
    steps = int(args.hours * 3600 * rate / words_per_step)
    print(
        json.dumps(
            {
                "preset": args.preset,
                "processes": args.processes,
                "omp_num_threads": environment.get("OMP_NUM_THREADS"),
                "extra_options": [option for option in args.extra if option != "--"],
                "tokens_per_second_median": rate,
                "tokens_per_second_intervals": rates,
                "load_average_before_after": [load_before, load_after],
                "cpu_count": os.cpu_count(),
                "words_per_step": words_per_step,
                f"steps_in_{args.hours:g}_hours": steps,
                f"corpus_passes_in_{args.hours:g}_hours": round(steps * words_per_step / run["corpus_tokens"], 2),
                "safetensors_bytes": size,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
