"""`elmo embed` at scale: lines/s and peak RSS per process for 1 and 2 processes (`torchrun`), HDF5 vs Parquet.

Writes a small random ELMo (the tests' bilm-tf-format generator, converted; P = 8, so that the time goes to
reading, batching, writing and assembling rather than to the biLSTM) and inputs of N lines of 1-20 words, then runs
the real command for every (lines, format, processes): one process with `--threads C` (C = the CPUs this process
may use), or `torchrun --standalone --nproc_per_node=2` with `--threads C/2` each, so that both use the same cores.
Each process is measured by a small wrapper (its peak RSS, `ru_maxrss`), and the table shows the largest.

    python benchmarks/embed_scale.py [--lines 10000 100000 1000000] [--max-lines 100000] [--processes 1 2]
                                     [--formats hdf5 parquet] [--keep DIR]

The outputs of 1 and 2 processes are compared byte for byte ("same bytes" column, against the first process count):
they are the same file when every process uses the same number of threads; with these fair thread counts (C
threads in one process, C/2 in each of two), oneDNN's products can round a rare vector differently in its last bit.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from embed_memory import tiny_model, write_corpus

WORDS = ["the", "a", "play", "was", "hit", "they", "football", "on", "Sunday", "actors", "stage", "theatre", ".", "!"]
# Runs one command and prints the peak RSS (KiB) of that one child and its exit status, prefixed for parsing.
MEASURE = (
    "import resource, subprocess, sys; status = subprocess.call(sys.argv[1:]); "
    "print('peak-rss-kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, status, flush=True)"
)
SUFFIXES = {"hdf5": ".hdf5", "parquet": ".parquet"}


def run_once(model: Path, corpus: Path, output: Path, processes: int, args: argparse.Namespace) -> tuple[float, int]:
    """Run the command; returns (seconds, largest peak RSS of one embedding process in KiB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    embed = [
        str(Path(sys.executable).with_name("elmo")), "embed", str(corpus), str(output), "--model", str(model),
        "--tokenized", "--layers", args.layers, "--batch-size", str(args.batch_size), "--window", str(args.window),
        "--threads", str(args.threads or max(1, cores // processes)), "--no-progress",
    ]  # fmt: skip
    measured = [sys.executable, "-c", MEASURE, *embed]
    if processes > 1:
        measured = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "--no-python", *measured,
        ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(measured, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    reports = [line.split() for line in result.stdout.splitlines() if line.startswith("peak-rss-kib")]
    if result.returncode != 0 or len(reports) != processes or any(report[2] != "0" for report in reports):
        sys.exit(f"elmo embed failed ({processes} processes):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return elapsed, max(int(report[1]) for report in reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--max-lines", type=int, help="skip the sizes above this")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--formats", nargs="+", choices=sorted(SUFFIXES), default=["hdf5", "parquet"])
    parser.add_argument("--layers", default="top", help="--layers of elmo embed (default: top)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument("--threads", type=int, help="threads per process (default: the CPUs divided by the processes)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    sizes = [lines for lines in args.lines if args.max_lines is None or lines <= args.max_lines]

    with tempfile.TemporaryDirectory() as temporary:
        directory = args.keep or Path(temporary)
        model = tiny_model(directory, args)
        print("| lines | format | processes | wall time | lines/s | peak RSS per process | output size | same bytes |")
        print("|---:|---|---:|---:|---:|---:|---:|---|")
        for lines in sizes:
            corpus = directory / f"corpus-{lines}.txt"
            write_corpus(corpus, lines, words=WORDS)
            for output_format in args.formats:
                outputs = []
                for processes in args.processes:
                    output = directory / f"vectors-{lines}-{processes}{SUFFIXES[output_format]}"
                    output.unlink(missing_ok=True)
                    elapsed, peak_kib = run_once(model, corpus, output, processes, args)
                    same = "yes" if filecmp.cmp(outputs[0] if outputs else output, output, shallow=False) else "no"
                    print(
                        f"| {lines:,} | {output_format} | {processes} | {elapsed:,.1f} s | {lines / elapsed:,.0f} "
                        f"| {peak_kib / 1024:,.0f} MiB | {output.stat().st_size / 2**20:,.1f} MiB | {same} |",
                        flush=True,
                    )
                    outputs.append(output)
                for output in outputs:
                    output.unlink()
            corpus.unlink()


if __name__ == "__main__":
    main()
