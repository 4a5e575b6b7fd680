"""Does `elmo embed` stream? Peak memory and speed for inputs of growing size, up to 1,000,000 lines.

Writes a small random ELMo (the tests' bilm-tf-format generator, converted) and inputs of N lines of 1-20 words,
runs the real `elmo embed` command on each, and prints a table: wall time, lines/s, peak RSS of the command, and
the output size. Streaming means the peak RSS stays flat as N grows (only the `sentence_to_index` bookkeeping,
about 100 bytes per distinct sentence, plus that JSON text at the end, grows with the input).

    python benchmarks/embed_memory.py [--lines 10000 100000 1000000] [--layers top] [--keep DIR]

The model is tiny (P = 8), so the time goes to reading, batching and HDF5 writing rather than to the biLSTM:
this measures the command's own overhead, not ELMo's speed (see bench_inference.py for that).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from modeling_elmo.conversion.original import convert_original
from original_format import write_random_original

WORDS = [
    "the",
    "a",
    "play",
    "was",
    "hit",
    "they",
    "football",
    "on",
    "Sunday",
    "actors",
    "stage",
    "theatre",
    "music",
    "game",
    "ball",
    ",",
    ".",
    "!",
    "?",
]

# Runs one command and prints the peak RSS of that one child (ru_maxrss of the children of a fresh process).
MEASURE = (
    "import resource, subprocess, sys; status = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, status)"
)


def write_corpus(path: Path, lines: int, seed: int = 0, words: list[str] = WORDS) -> None:
    """N lines of 1-20 words drawn from `words`."""
    generator = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(lines):
            handle.write(" ".join(generator.choices(words, k=generator.randint(1, 20))) + "\n")


def tiny_model(directory: Path, args: argparse.Namespace) -> Path:
    """Write the random model (P = 8) into `directory` and print the machine and the command's options."""
    directory.mkdir(parents=True, exist_ok=True)
    model = convert_original(*write_random_original(directory / "original"), directory / "model", overwrite=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"elmo embed --tokenized --layers {args.layers} --batch-size {args.batch_size} --window {args.window}\n")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--layers", default="top", help="--layers of elmo embed (default: top)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        directory = args.keep or Path(temporary)
        model = tiny_model(directory, args)
        print("| lines | wall time | lines/s | peak RSS | output size |")
        print("|---:|---:|---:|---:|---:|")
        for lines in args.lines:
            corpus, output = directory / f"corpus-{lines}.txt", directory / f"vectors-{lines}.hdf5"
            write_corpus(corpus, lines)
            output.unlink(missing_ok=True)
            command = [
                str(Path(sys.executable).with_name("elmo")), "embed", str(corpus), str(output), "--model", str(model),
                "--tokenized", "--layers", args.layers, "--batch-size", str(args.batch_size),
                "--window", str(args.window), "--no-progress",
            ]  # fmt: skip
            started = time.perf_counter()
            measured = subprocess.run(
                [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True
            )
            elapsed = time.perf_counter() - started
            peak_kib, status = (int(value) for value in measured.stdout.split())
            if status != 0:
                sys.exit(f"elmo embed failed on {lines} lines:\n{measured.stderr[-2000:]}")
            print(
                f"| {lines:,} | {elapsed:,.1f} s | {lines / elapsed:,.0f} | {peak_kib / 1024:,.0f} MiB "
                f"| {output.stat().st_size / 2**20:,.0f} MiB |",
                flush=True,
            )
            corpus.unlink()
            output.unlink()


if __name__ == "__main__":
    main()
