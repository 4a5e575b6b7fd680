"""`elmo evaluate`: the paper's stage 2 on small labelled data that ships in package registries.

The biLM stays frozen; its L + 1 layers are computed **once** per sentence set and kept in memory (float16), and
every task model trains on those cached layers. Each task learns its own softmax-weighted mix of the layers with
a scale γ (`ElmoScalarMix`, regularised towards uniform weights by λ‖s‖²), as in the paper. Adam trains the
mix's s and γ at their own, larger learning rate (`mix_learning_rate`, no weight decay; `parameter_groups`): at the
task model's rate the mix weights stayed at uniform in every run, whatever λ was. The paper's optional layer norm
before the mix (`EvaluationSizes.layer_norm`, see `head_config`) is off by default: it changed no POS tagger result
and cost the BBC mixes several points. Both settings are recorded in results.md.

Three tasks probe the paper's analysis (its lower biLSTM layer carries syntax, its top layer word sense, and a
learned mix of all layers beats the top layer alone):

- **pos**: Brown, mapped to the 12 universal tags (`modeling_elmo.evaluation_data`). Training sentences are drawn
  (seeded) from the Brown files the language model was trained on; the test set is the sentences of the held-out
  Brown test files (positions ≡ 9 mod 10), which the shipped model never saw. A linear probe (softmax regression)
  on each frozen layer and on a learned mix (the paper's Table 6 protocol), and a BiLSTM tagger on static
  vectors (the context-free layer 0; PPMI-SVD word vectors from the pretraining text, see `ppmi_svd_vectors`)
  against the same tagger on the ELMo mix.
- **wsd**: WordNet 3.0's example sentences, each labelled with the sense of the synset whose lemma it contains.
  Only lemmas with examples for two or more senses are used; of every sense with two or more examples one
  example is held out for testing (`wsd_split`). The paper's Table 5 protocol: sense centroids (mean vector of
  the target word over the training examples of each sense), the nearest centroid by cosine at test time, the
  most frequent sense (SemCor counts, `cntlist.rev`) for a lemma without training examples; per layer, against
  the most-frequent-sense and chance baselines. Plus a WiC-style task: pairs of examples of one lemma, same
  sense or not (balanced; the lemma in the same form, so layer 0 is about chance by construction), a cosine
  threshold chosen on training lemmas, accuracy on the other lemmas.
- **classification**: BBC News topics (5 classes): the mix + BiLSTM encoder + pooled linear model on the title
  and the first sentences of each article, with the mix of all layers at λ = 0.001 and λ = 1 against the top
  layer only and the context-free layer 0 only (the paper's Table 2 comparison).

Splits are deterministic (SHA-1 of stable keys, or seeded shuffles); every model is initialised and trained under
the given seed. The task heads are `ElmoForTokenClassification` / `ElmoForSequenceClassification` (their
`classify_layers`, fed with the cached layers; the biLM inside them is never run); a single layer is evaluated by
passing that layer in every position of the mix (the mix then is γ · that layer).

Outputs: `results.json`, `results.md` (our numbers beside the paper's, which come from other data at another
scale), and PNG plots (`layer_scores.png`, one per task, `mix_weights.png`) where matplotlib is installed (the
`evaluate` extra); without it the plots are skipped with a notice, and `plots=True` fails before any work.

The data comes from the per-user cache (`modeling_elmo.evaluation_data.cache_dir()`); what a task lacks is fetched
first (`fetch=True`).

`--quick` (`QUICK`) is a **smoke test**: it runs every step of the pipeline on a few dozen sentences and two
epochs, which checks that the data, the model, the heads and the reports work together, but its scores mean
nothing (its BBC topic accuracy is below the 20% chance level). It reports no scores: `results.md` says what ran,
the log prints none, the plots are stamped "smoke test", and `results.json` carries `"smoke_test": true`.

This module runs the command (`run_evaluation`); the tasks and their sizes are in `evaluation_tasks`, the heads and
their training loop in `evaluation_heads`, the reports and plots in `evaluation_report`, the data in
`evaluation_data`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from . import evaluation_data as data
from .evaluation_data import TASKS, EvaluationError
from .evaluation_heads import HEADS, build_head, head_config, parameter_groups, train_head
from .evaluation_report import (
    MATPLOTLIB_MISSING,
    PAPER,
    SMOKE_TEST_NOTE,
    markdown_report,
    output_files,
    plot_files,
    plots_available,
    resolve_plots,
    summary,
    write_reports,
)
from .evaluation_tasks import (
    FULL,
    QUICK,
    EvaluationSizes,
    LayerCache,
    Log,
    best_threshold,
    nearest_sense,
    ppmi_svd_vectors,
    run_classification,
    run_pos,
    run_wsd,
    wic_pairs,
    wsd_instances,
    wsd_split,
)

__all__ = [
    "FULL",
    "PAPER",
    "QUICK",
    "TASKS",
    "EvaluationError",
    "EvaluationSizes",
    "best_threshold",
    "build_head",
    "head_config",
    "markdown_report",
    "nearest_sense",
    "parameter_groups",
    "parse_tasks",
    "plot_files",
    "ppmi_svd_vectors",
    "resolve_plots",
    "run_evaluation",
    "summary",
    "train_head",
    "wic_pairs",
    "wsd_instances",
    "wsd_split",
]


def parse_tasks(text: str) -> list[str]:
    """`"pos,wsd"` → ["pos", "wsd"]; raises `EvaluationError` naming an unknown task."""
    tasks = [task.strip() for task in text.split(",") if task.strip()]
    unknown = [task for task in tasks if task not in TASKS]
    if unknown or not tasks:
        raise EvaluationError(
            f"unknown task(s) {', '.join(map(repr, unknown)) or '(none given)'}: --tasks takes a comma-separated "
            f"list of {', '.join(TASKS)}"
        )
    return list(dict.fromkeys(tasks))


def run_evaluation(
    embedder,
    output_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    tasks: Sequence[str] = TASKS,
    quick: bool = False,
    seed: int = 0,
    model_name: str | None = None,
    progress: bool = True,
    plots: bool | None = None,
    fetch: bool = True,
) -> dict:
    """Run `tasks` with the (loaded) `ElmoEmbedder`'s frozen biLM; write results.json, results.md and the plots
    into `output_dir`; return the results. `cache_dir` defaults to the per-user cache; with `fetch` what the tasks
    lack is fetched into it first (`evaluation_data.fetch_evaluation_data`), else its absence is an error. `plots`:
    see `resolve_plots`. `quick` is a smoke test (see the module docstring)."""
    log = Log(progress)
    cache_dir = data.resolve_cache_dir(cache_dir)
    tasks = parse_tasks(",".join(tasks))
    plots = resolve_plots(plots)
    if fetch:
        data.fetch_evaluation_data(cache_dir, tasks, progress=progress)
    else:
        data.require_data(cache_dir, tasks)
    sizes = QUICK if quick else FULL
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cache = LayerCache(embedder, log)
    config = embedder.model.config
    results: dict = {
        "model": model_name or getattr(embedder.model, "name_or_path", "") or "(in memory)",
        "mode": "quick" if quick else "full",
        "smoke_test": sizes.smoke_test,
        **({"note": f"smoke test (--quick): {SMOKE_TEST_NOTE}"} if sizes.smoke_test else {}),
        "seed": seed,
        "biLM": {
            "parameters": sum(p.numel() for p in embedder.model.parameters()),
            "projection_dim": config.projection_dim,
            "lstm_cell_dim": config.lstm_cell_dim,
            "layers": cache.num_layers,
            "state_mode": config.state_mode,
        },
        "heads": {kind: f"modeling_elmo.{name}" for kind, name in HEADS.items()},
        "sizes": asdict(sizes),
        "plots": plot_files(tasks) if plots else [],
        **({} if plots else {"plots_skipped": "not asked for" if plots_available() else MATPLOTLIB_MISSING}),
        "tasks": {},
        "timings": {},
    }
    mode = "quick mode: a smoke test, no scores" if sizes.smoke_test else "full mode"
    log(f"tasks {', '.join(tasks)} ({mode}); heads: {results['heads']}")
    runners = {"pos": run_pos, "wsd": run_wsd, "classification": run_classification}
    start = time.perf_counter()
    for task in tasks:
        task_start = time.perf_counter()
        results["tasks"][task] = runners[task](cache, cache_dir, sizes, seed, log)
        results["timings"][f"{task}_seconds"] = round(time.perf_counter() - task_start, 1)
    results["timings"]["bilm_seconds"] = round(cache.seconds, 1)
    results["timings"]["bilm_words"] = cache.tokens
    results["timings"]["total_seconds"] = round(time.perf_counter() - start, 1)
    write_reports(results, output_dir, plots)
    log(f"wrote {', '.join(str(output_dir / name) for name in output_files(results))}")
    return results
