"""The reports of `elmo evaluate`: `results.json`, `results.md` (our numbers beside the paper's; for a smoke test,
what ran) and the PNG plots (with matplotlib, the `evaluate` extra), and the line the command ends with.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from .evaluation_data import TASKS, EvaluationError

#: The paper's numbers (Peters et al. 2018, arXiv v2), from ../shared/ELMO_FACTS.md.
PAPER = {
    "pos": {
        "table": "Table 6: POS tagging, linear probe on each biLM layer, Penn Treebank (accuracy)",
        "layer_1": 97.3,
        "layer_2": 96.8,
    },
    "wsd": {
        "table": "Table 5: all-words WSD, 1-nearest-neighbour sense centroids from SemCor 3.0, Senseval/SemEval (F1)",
        "layer_1": 67.4,
        "layer_2": 69.0,
    },
    "classification": {
        "table": "Table 2: using all layers beats the last layer only; λ = 0.001 beats λ = 1 (SQuAD, SNLI, SRL dev)",
    },
}

SMOKE_TEST_NOTE = (
    "every step ran on a few dozen sentences and two epochs, too little for the scores to mean anything (they can "
    "fall below chance), so none is reported; run without --quick for results"
)


MATPLOTLIB_MISSING = (
    "matplotlib is not installed, so no plots are drawn (results.json and results.md are written all the same); "
    "pip install 'modeling-elmo[evaluate]' adds it"
)


def plots_available() -> bool:
    """Whether matplotlib can be imported (the `evaluate` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def require_matplotlib() -> None:
    """Fail before any work when plots are asked for and cannot be drawn."""
    if not plots_available():
        raise EvaluationError(
            "elmo evaluate draws its plots with matplotlib, which is not installed: "
            "pip install 'modeling-elmo[evaluate]'"
        )


def resolve_plots(plots: bool | None) -> bool:
    """Whether to draw the plots: True requires matplotlib (`require_matplotlib`), False never, None where matplotlib
    is installed, else not, with `MATPLOTLIB_MISSING` on stderr (shown whatever the progress setting)."""
    if plots is None:
        plots = plots_available()
        if not plots:
            print(f"elmo evaluate: note: {MATPLOTLIB_MISSING}", file=sys.stderr, flush=True)
    elif plots:
        require_matplotlib()
    return plots


def output_files(results: dict) -> list[str]:
    """The files a run wrote into its output folder."""
    return ["results.json", "results.md", *results.get("plots", [])]


def summary(results: dict, output_dir: str | os.PathLike) -> str:
    """The line `elmo evaluate` ends with: where the reports went; for a smoke test, that the pipeline ran and that
    it reports no scores; and that the plots were skipped, where they were."""
    files = ", ".join(output_files(results))
    tasks = ", ".join(results["tasks"])
    seconds = results["timings"]["total_seconds"]
    if results.get("smoke_test"):
        line = (
            f"smoke test passed: the pipeline ran ({tasks}; the biLM over {results['timings']['bilm_words']:,} words, "
            f"every task model trained and scored) in {seconds}s. No scores: --quick is too small for them to mean "
            f"anything; run without --quick for results. Wrote {output_dir}: {files}"
        )
    else:
        line = f"wrote {output_dir}: {files} ({tasks}, {seconds}s)"
    if "plots_skipped" in results:
        line += f". No plots: {results['plots_skipped']}"
    return line


def _layer_label(layer: int, num_layers: int) -> str:
    return (
        "layer 0 (token)"
        if layer == 0
        else f"layer {layer} (biLSTM {layer})" + (" = top" if layer == num_layers - 1 else "")
    )


def _mixes(results: dict) -> dict[str, list[float]]:
    mixes = {}
    pos = results["tasks"].get("pos")
    if pos:
        mixes["POS linear probe"] = pos["probe"]["mix"]["mix_weights"]
        mixes["POS BiLSTM tagger"] = pos["tagger"]["elmo_mix"]["mix_weights"]
    classification = results["tasks"].get("classification")
    if classification:
        for name, label in (("mix_lambda_0.001", "BBC, λ = 0.001"), ("mix_lambda_1", "BBC, λ = 1")):
            mixes[label] = classification["runs"][name]["mix_weights"]
    return mixes


def _verdict(expected_higher: float, expected_lower: float) -> str:
    if expected_higher == expected_lower:
        return "is a tie"
    return "holds" if expected_higher > expected_lower else "does not hold"


def markdown_report(results: dict) -> str:
    """The results as Markdown, our numbers beside the paper's; for a smoke test what ran, without scores."""
    if results.get("smoke_test"):
        return smoke_test_report(results)
    num_layers = results["biLM"]["layers"]
    bilm = results["biLM"]
    lines = [
        "# ELMo evaluation (`elmo evaluate`)",
        "",
        f"Model: `{results['model']}` ({bilm['parameters']:,} parameters, P = {bilm['projection_dim']}, "
        f"D = {bilm['lstm_cell_dim']}, {num_layers} layers), {results['mode']} mode, seed {results['seed']}. "
        f"Task heads: {results['heads']['token']}, {results['heads']['sequence']}.",
        "",
        "**Not comparable one to one with the paper.** The paper's numbers come from the 93.6M-parameter biLM "
        "trained on the 1B Word Benchmark and from other data sets (Penn Treebank, SemCor → Senseval/SemEval, "
        "SQuAD/SNLI/SRL); ours from this model on the small registry data sets named below. What can be compared "
        "is the pattern across layers.",
        "",
    ]
    sizes = results["sizes"]
    if "mix_learning_rate" in sizes:
        lines += [
            "Protocol: every task model reads the biLM's cached layers through its own scalar mix "
            "γ · Σ softmax(s)_j · layer_j"
            + (
                ", each layer (and each static input) layer-normalised first (zero mean, unit variance over the "
                "batch's words; the paper's optional layer norm)"
                if sizes.get("layer_norm")
                else ", without the paper's optional layer norm (it did not help here)"
            )
            + f". Adam trains s and γ at learning rate {sizes['mix_learning_rate']} (the task model at "
            f"{sizes['learning_rate']}, probes at {sizes['probe_learning_rate']}), without weight decay; the only "
            "penalty on s is λ‖s‖². s are logits, so at the task model's rate they would barely leave uniform. "
            "A single layer is fed in every position of the mix (its mix is then γ · that layer). Every input "
            "(PPMI-SVD vectors, layer 0, the mix) gets the same tagger and training budget.",
            "",
        ]
    tasks = results["tasks"]
    if "pos" in tasks:
        lines += _pos_section(tasks["pos"], num_layers)
    if "wsd" in tasks:
        lines += _wsd_section(tasks["wsd"], num_layers)
    if "classification" in tasks:
        lines += _classification_section(tasks["classification"])
    lines += _mixes_section(_mixes(results), num_layers)
    timings = results["timings"]
    lines += [
        "## Cost",
        "",
        f"biLM over {timings['bilm_words']:,} words in {timings['bilm_seconds']}s (computed once per sentence set); "
        f"total {timings['total_seconds']}s ("
        + ", ".join(f"{task} {timings[f'{task}_seconds']}s" for task in tasks)
        + f"); torch threads: {torch.get_num_threads()}.",
        "",
    ]
    return "\n".join(lines)


def _paper_finding(claim: str, expected_higher: float, expected_lower: float) -> list[str]:
    """Whether one of the paper's findings about two scores holds here, as a paragraph."""
    verdict = _verdict(expected_higher, expected_lower)
    return [f"Paper's finding ({claim}): {verdict} here ({expected_higher:.2f} vs {expected_lower:.2f}).", ""]


def _pos_section(pos: dict, num_layers: int) -> list[str]:
    paper = PAPER["pos"]
    lines = [
        "## POS tagging (Brown, 12 universal tags)",
        "",
        f"Train: {pos['data']['train']}. Test: {pos['data']['test']}. {pos['settings']['probe']}.",
        "",
        "| representation | ours: linear probe accuracy (%) | paper: linear probe, PTB (%) |",
        "|---|---|---|",
    ]
    for layer in range(num_layers):
        lines.append(
            f"| {_layer_label(layer, num_layers)} | {pos['probe'][f'layer_{layer}']['accuracy']:.2f} | "
            f"{paper.get(f'layer_{layer}', '–')} |"
        )
    lines.append(f"| learned mix | {pos['probe']['mix']['accuracy']:.2f} | – |")
    word_vectors = pos["data"]["word_vectors"]
    lines += [
        "",
        f"Paper: {paper['table']}. BiLSTM tagger ({pos['settings']['tagger']}); static word vectors: "
        f"{word_vectors['method']}, {word_vectors['vocabulary']:,} words from the data cache's "
        f"`{word_vectors['text']}` "
        f"({word_vectors['test_token_coverage']}% of test tokens covered):",
        "",
        "| tagger input | accuracy (%) |",
        "|---|---|",
        f"| static: PPMI-SVD word vectors | {pos['tagger']['static_ppmi_svd']['accuracy']:.2f} |",
        f"| static: layer 0 (context-free token layer) | {pos['tagger']['static_layer_0']['accuracy']:.2f} |",
        f"| ELMo: learned mix of all layers | {pos['tagger']['elmo_mix']['accuracy']:.2f} |",
        "",
    ]
    if num_layers >= 3:
        first, second = pos["probe"]["layer_1"]["accuracy"], pos["probe"]["layer_2"]["accuracy"]
        lines += _paper_finding("layer 1 > layer 2 for POS", first, second)
    return lines


def _wsd_section(wsd: dict, num_layers: int) -> list[str]:
    paper = PAPER["wsd"]
    info = wsd["data"]
    lines = [
        "## Word sense (WordNet example sentences)",
        "",
        f"{info['source']}: {info['labelled_examples']:,} examples contain a lemma of their synset; "
        f"{info['lemmas']:,} lemmas with examples for ≥ 2 senses, {info['instances']:,} instances "
        f"({info['train_instances']:,} train / {info['test_instances']:,} test: of every sense with two or more "
        "examples one is held out, so every test sense has training examples; "
        f"{info['mean_senses_per_test_lemma']} candidate senses per test instance on average; "
        f"{info['test_instances_backed_off']:,} backed off to the most frequent sense). WiC-style: "
        f"{info['wic_train_pairs']:,} train / {info['wic_test_pairs']:,} test pairs of examples with the lemma "
        "in the same form (so layer 0 is about chance by construction; balanced, split by lemma; cosine threshold "
        "chosen on the train pairs).",
        "",
        "| representation | ours: 1-NN accuracy (%) | ours: WiC-style pairs (%) | paper: 1-NN F1 (%) |",
        "|---|---|---|---|",
    ]
    for layer in range(num_layers):
        nn_result = wsd["nearest_neighbour"][f"layer_{layer}"]
        wic = wsd["wic"].get(f"layer_{layer}", {}).get("accuracy", "–")
        lines.append(
            f"| {_layer_label(layer, num_layers)} | {nn_result['accuracy']:.2f} | {wic} | "
            f"{paper.get(f'layer_{layer}', '–')} |"
        )
    lines += [
        f"| most frequent sense (SemCor counts) | {wsd['most_frequent_sense']['accuracy']:.2f} | – | – |",
        f"| chance (uniform over the lemma's senses) | {wsd['chance']['accuracy']:.2f} | 50 | – |",
        "",
        f"Paper: {paper['table']}.",
        "",
    ]
    if num_layers >= 3:
        first = wsd["nearest_neighbour"]["layer_1"]["accuracy"]
        second = wsd["nearest_neighbour"]["layer_2"]["accuracy"]
        lines += _paper_finding("layer 2 > layer 1 for WSD", second, first)
    return lines


def _classification_section(classification: dict) -> list[str]:
    info = classification["data"]
    runs = classification["runs"]
    lines = [
        "## Text classification (BBC News topics)",
        "",
        f"{info['source']}; {info['text']}; {info['train_articles']:,} train / {info['test_articles']:,} test "
        f"articles. {classification['settings']}.",
        "",
        "| representation | accuracy (%) | mix weights | γ |",
        "|---|---|---|---|",
    ]
    for run in runs.values():
        weights = ", ".join(f"{w:.3f}" for w in run.get("mix_weights", [])) or "–"
        lines.append(f"| {run['description']} | {run['accuracy']:.2f} | {weights} | {run.get('gamma', '–')} |")
    all_layers, top = runs["mix_lambda_0.001"]["accuracy"], runs["top_layer"]["accuracy"]
    small, large = runs["mix_lambda_0.001"]["accuracy"], runs["mix_lambda_1"]["accuracy"]
    lines += [
        "",
        f"Paper: {PAPER['classification']['table']}. Here: all layers vs top only "
        f"{_verdict(all_layers, top)} ({all_layers:.2f} vs {top:.2f}); λ = 0.001 vs λ = 1 "
        f"{_verdict(small, large)} ({small:.2f} vs {large:.2f}).",
        "",
    ]
    return lines


def _mixes_section(mixes: dict[str, list[float]], num_layers: int) -> list[str]:
    if not mixes:
        return []
    lines = [
        "## Learned layer weights (softmax(s))",
        "",
        "| mix | " + " | ".join(f"layer {i}" for i in range(num_layers)) + " |",
        "|---" * (num_layers + 1) + "|",
    ]
    for name, weights in mixes.items():
        lines.append(f"| {name} | " + " | ".join(f"{w:.3f}" for w in weights) + " |")
    lines.append("")
    return lines


def smoke_test_report(results: dict) -> str:
    """What a smoke test (`--quick`) ran, as Markdown: the data and the models of each task, no scores."""
    bilm = results["biLM"]
    num_layers = bilm["layers"]
    tasks = results["tasks"]
    lines = [
        "# ELMo evaluation smoke test (`elmo evaluate --quick`)",
        "",
        f"**A smoke test, not results.** {SMOKE_TEST_NOTE[0].upper()}{SMOKE_TEST_NOTE[1:]}.",
        "",
        f"Model: `{results['model']}` ({bilm['parameters']:,} parameters, {num_layers} layers), seed "
        f"{results['seed']}. Task heads: {results['heads']['token']}, {results['heads']['sequence']}.",
        "",
        "What ran:",
        "",
    ]
    if "pos" in tasks:
        pos = tasks["pos"]
        lines.append(
            f"- POS tagging (Brown, 12 universal tags): {pos['data']['train']} to train on, {pos['data']['test']} to "
            f"test on; a linear probe on each of the {num_layers} layers and on a learned mix, and a BiLSTM tagger on "
            f"PPMI-SVD vectors ({pos['data']['word_vectors']['vocabulary']:,} words), on layer 0 and on the mix: "
            f"{len(pos['probe']) + len(pos['tagger'])} task models trained and scored."
        )
    if "wsd" in tasks:
        info = tasks["wsd"]["data"]
        lines.append(
            f"- Word sense (WordNet example sentences): {info['instances']:,} instances of {info['lemmas']:,} lemmas "
            f"({info['train_instances']:,} train / {info['test_instances']:,} test), nearest sense centroid on each "
            f"layer; {info['wic_train_pairs']:,} / {info['wic_test_pairs']:,} WiC-style pairs."
        )
    if "classification" in tasks:
        classification = tasks["classification"]
        info = classification["data"]
        lines.append(
            f"- Topic classification (BBC News): {info['train_articles']:,} train / {info['test_articles']:,} test "
            f"articles; {len(classification['runs'])} classifiers trained and scored."
        )
    timings = results["timings"]
    lines += [
        "",
        f"The biLM ran over {timings['bilm_words']:,} words in {timings['bilm_seconds']}s; "
        f"{timings['total_seconds']}s in all.",
        "",
    ]
    return "\n".join(lines)


def write_reports(results: dict, output_dir: Path, plots: bool = True) -> None:
    """results.json, results.md and (with `plots`) the PNG plots."""
    (output_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (output_dir / "results.md").write_text(markdown_report(results), encoding="utf-8")
    if plots:
        write_plots(results, output_dir)


def plot_files(tasks: Iterable[str]) -> list[str]:
    """The PNG files `write_plots` writes for these tasks."""
    tasks = set(tasks)
    files = [f"{task}.png" for task in TASKS if task in tasks]
    if tasks & {"pos", "wsd"}:
        files.append("layer_scores.png")
    if tasks & {"pos", "classification"}:
        files.append("mix_weights.png")
    return files


def write_plots(results: dict, output_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = results["tasks"]
    num_layers = results["biLM"]["layers"]
    layer_names = [f"layer {i}" for i in range(num_layers)]
    written = []

    def bars(axis, labels, values, title, ylabel="accuracy (%)", reference=None):
        positions = range(len(values))
        axis.bar(positions, values, color=plt.cm.tab10(np.arange(len(values)) % 10))
        axis.set_xticks(list(positions), labels, rotation=20, ha="right", fontsize=8)
        axis.set_title(title, fontsize=9)
        axis.set_ylabel(ylabel)
        low = min([*values, *([reference[1]] if reference else [])])
        axis.set_ylim(max(0.0, low - 10), min(100.0, max(values) + 5) if max(values) <= 100 else None)
        for position, value in zip(positions, values, strict=True):
            axis.text(position, value, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
        if reference:
            axis.axhline(reference[1], color="gray", linestyle="--", linewidth=1, label=reference[0])
            axis.legend(fontsize=7)

    def save(figure, name):
        figure.tight_layout()
        if results.get("smoke_test"):
            stamp = {"facecolor": "white", "edgecolor": "red", "alpha": 0.8}
            figure.text(0.5, 0.5, "smoke test (--quick): not results", color="red", fontsize=16, rotation=15,
                        ha="center", va="center", bbox=stamp, zorder=10)  # fmt: skip
        path = output_dir / name
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)

    if "pos" in tasks:
        pos = tasks["pos"]
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        bars(
            axes[0],
            [*layer_names, "mix"],
            [pos["probe"][f"layer_{i}"]["accuracy"] for i in range(num_layers)] + [pos["probe"]["mix"]["accuracy"]],
            "POS: linear probe per layer (Brown, test files)",
        )
        bars(
            axes[1],
            ["PPMI-SVD", "layer 0", "ELMo mix"],
            [pos["tagger"][k]["accuracy"] for k in ("static_ppmi_svd", "static_layer_0", "elmo_mix")],
            "POS: BiLSTM tagger",
        )
        save(figure, "pos.png")
    if "wsd" in tasks:
        wsd = tasks["wsd"]
        figure, axes = plt.subplots(1, 2, figsize=(10, 4))
        bars(
            axes[0],
            layer_names,
            [wsd["nearest_neighbour"][f"layer_{i}"]["accuracy"] for i in range(num_layers)],
            "WSD: 1-NN sense centroids per layer",
            reference=("most frequent sense", wsd["most_frequent_sense"]["accuracy"]),
        )
        wic = [wsd["wic"].get(f"layer_{i}", {}).get("accuracy", 0.0) for i in range(num_layers)]
        bars(axes[1], layer_names, wic, "WiC-style same/different sense pairs", reference=("chance", 50.0))
        save(figure, "wsd.png")
    if "classification" in tasks:
        runs = tasks["classification"]["runs"]
        figure, axis = plt.subplots(figsize=(6, 4))
        bars(
            axis,
            [run["description"] for run in runs.values()],
            [run["accuracy"] for run in runs.values()],
            "BBC News topics: mix vs single layers",
        )
        save(figure, "classification.png")
    if "pos" in tasks or "wsd" in tasks:
        figure, axis = plt.subplots(figsize=(6, 4))
        series = []
        if "pos" in tasks:
            series.append(
                ("POS linear probe", [tasks["pos"]["probe"][f"layer_{i}"]["accuracy"] for i in range(num_layers)])
            )
        if "wsd" in tasks:
            series.append(
                ("WSD 1-NN", [tasks["wsd"]["nearest_neighbour"][f"layer_{i}"]["accuracy"] for i in range(num_layers)])
            )
            if tasks["wsd"]["wic"]:
                series.append(
                    ("WiC-style pairs", [tasks["wsd"]["wic"][f"layer_{i}"]["accuracy"] for i in range(num_layers)])
                )
        for label, values in series:
            axis.plot(range(num_layers), values, marker="o", label=label)
        axis.set_xticks(range(num_layers), layer_names)
        axis.set_ylabel("accuracy (%)")
        axis.set_title("Scores per biLM layer (layer 0 = context-free token layer)", fontsize=9)
        axis.legend(fontsize=8)
        save(figure, "layer_scores.png")
    mixes = _mixes(results)
    if mixes:
        figure, axis = plt.subplots(figsize=(9, 4))
        width = 0.8 / len(mixes)
        for number, (label, weights) in enumerate(mixes.items()):
            axis.bar(np.arange(num_layers) + number * width - 0.4 + width / 2, weights, width, label=label)
        axis.axhline(1.0 / num_layers, color="gray", linestyle="--", linewidth=1, label="uniform")
        axis.set_xticks(range(num_layers), layer_names)
        axis.set_ylabel("softmax(s)")
        axis.set_title("Learned layer weights of each task's mix", fontsize=9)
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        save(figure, "mix_weights.png")
    return written
