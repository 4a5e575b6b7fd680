"""Inference speed of this package against AllenNLP's ELMo code (`simple-elmo-pytorch`), in one run.

Builds a random model with the Original model's shapes (93.6M parameters) in the bilm-tf HDF5 layout,
converts it with `elmo convert`'s converter, loads both implementations from the same files and times
them alternately (ours, AllenNLP's, ours, ...) after a warm-up, on the same inputs. Both run stateless
(AllenNLP's state is reset before every call) and only the model's forward pass is timed (character ids
are prepared beforehand for both).

Settings: one 20-word sentence (batch 1); 128 sentences at batch 32, 64 and 128; batch 32 with our token
cache filled with the benchmark vocabulary; one 5,000-word document. Sentence lengths follow a gamma
distribution shaped like Brown-corpus sentence lengths (mean 20, sd 12.6, clipped to 1..120 words); words
are drawn Zipf-style from a 5,000-word synthetic vocabulary (the character CNN's cost does not depend on
the spelling).

Printed per setting: median words/s of each implementation and their ratio, useful GFLOP/s (words only;
the sentence markers are not counted) and its fraction of this machine's best measured float32 matrix
product, peak RSS of a fresh process running that setting alone, and the largest absolute difference
between the two implementations over all layers.

With `--deploy`, instead: the eager fast path against onnxruntime (the graph `elmo export-onnx` writes) and
against `torch.compile` (inductor, batch and words marked dynamic) at batch 1 and batch 32, float32; the export
and the first compiled call (the compilation) are timed separately, and the largest absolute difference of each
to the eager outputs is printed.

    python benchmarks/bench_inference.py [--device cpu|cuda] [--dtype float32|bfloat16] [--repeat 3] [--deploy]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convert import write_original_shaped

from modeling_elmo import ElmoConfig, ElmoModel, ElmoTokenizer
from modeling_elmo.conversion.original import convert_original

BATCH_POOL = 128
DOCUMENT_WORDS = 5000


def make_sentences(count: int, seed: int) -> list[list[str]]:
    """`count` sentences with Brown-like lengths over a Zipf-distributed synthetic vocabulary."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    vocabulary = ["".join(rng.choice(letters, size=int(rng.integers(1, 12)))) for _ in range(5000)]
    ranks = np.arange(1, len(vocabulary) + 1)
    probabilities = (1.0 / ranks) / (1.0 / ranks).sum()
    lengths = np.clip(np.rint(rng.gamma(shape=2.5, scale=8.0, size=count)), 1, 120).astype(int)
    return [[vocabulary[i] for i in rng.choice(len(vocabulary), size=n, p=probabilities)] for n in lengths]


def flops_per_word(config: ElmoConfig) -> float:
    """Multiply-adds × 2 of the character CNN, highway, projection and biLSTM for one word."""
    chars, embedding_dim = config.max_characters_per_token, config.char_embedding_dim
    cnn = sum(count * embedding_dim * width * (chars - width + 1) for width, count in config.char_cnn_filters)
    highway = config.num_highway_layers * 2 * config.num_filters**2
    projection = config.num_filters * config.projection_dim
    cell, proj = config.lstm_cell_dim, config.projection_dim
    lstm = config.num_lstm_layers * 2 * (2 * proj * 4 * cell + cell * proj)
    return 2.0 * (cnn + highway + projection + lstm)


def matmul_peak_gflops(device: str) -> float:
    """The best float32 GFLOP/s of a 1024×2048 by 2048×2048 product, by the default BLAS and by oneDNN."""
    x = torch.randn(1024, 2048, device=device)
    weight = torch.randn(2048, 2048, device=device)
    candidates: list[Callable[[], torch.Tensor]] = [lambda: x @ weight.t()]
    if device == "cpu" and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1024)
        candidates.append(lambda: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], ""))
    best = 0.0
    for product in candidates:
        seconds = min(timed(product, device) for _ in range(5))
        best = max(best, 2 * 1024 * 2048 * 2048 / seconds / 1e9)
    return best


def timed(function: Callable[[], object], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    function()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


class Implementations:
    """Ours and AllenNLP's, loaded from the same files, with inputs prepared for each."""

    def __init__(self, options: Path, weights: Path, converted: Path, device: str, dtype: torch.dtype) -> None:
        from simple_elmo_pytorch import ElmoBiLmSentence

        self.device = device
        self.ours = ElmoModel.from_pretrained(converted, dtype=dtype).to(device).eval()
        self.tokenizer = ElmoTokenizer.from_pretrained(converted)
        self.allennlp = ElmoBiLmSentence(str(options), str(weights)).to(device).eval()

    def our_inputs(self, batch: list[list[str]]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(batch, is_split_into_words=True, padding=True, return_tensors="pt")
        return {key: value.to(self.device) for key, value in encoded.items()}

    def allennlp_inputs(self, batch: list[list[str]]) -> torch.Tensor:
        from simple_elmo_pytorch import batch_to_ids

        return batch_to_ids(batch).to(self.device)

    @torch.no_grad()
    def run_ours(self, inputs: list[dict[str, torch.Tensor]]) -> list[tuple[torch.Tensor, ...]]:
        return [self.ours(**batch, output_hidden_states=True).hidden_states for batch in inputs]

    @torch.no_grad()
    def run_allennlp(self, inputs: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        outputs = []
        for batch in inputs:
            self.allennlp._elmo_lstm.reset_states()
            outputs.append(self.allennlp(batch)["activations"])
        return outputs


def max_difference(ours: list[tuple[torch.Tensor, ...]], theirs: list[list[torch.Tensor]], batches) -> float:
    """Largest |ours - AllenNLP| over all layers and real words (AllenNLP's outputs include <S>, </S>)."""
    worst = 0.0
    for our_layers, their_layers, batch in zip(ours, theirs, batches, strict=True):
        for our_layer, their_layer in zip(our_layers, their_layers, strict=True):
            for row, sentence in enumerate(batch):
                n = len(sentence)
                difference = our_layer[row, :n].float() - their_layer[row, 1 : n + 1].float()
                worst = max(worst, float(difference.abs().max()))
    return worst


def child_peak_rss(args: argparse.Namespace, setting: str, implementation: str) -> float:
    """Peak RSS (MB) of a fresh process that loads one implementation and runs one setting once."""
    command = [sys.executable, __file__, "--child", setting, "--child-implementation", implementation]
    command += ["--workdir", str(args.workdir), "--device", args.device, "--dtype", args.dtype]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"child {setting}/{implementation} failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.split()[-1])


def settings(sentences: list[list[str]], document: list[str]) -> dict[str, list[list[list[str]]]]:
    twenty = next(s for s in sentences if len(s) == 20)
    batches = {"batch 1 (one 20-word sentence)": [[twenty]]}
    for size in (32, 64, 128):
        batches[f"batch {size}"] = [sentences[i : i + size] for i in range(0, len(sentences), size)]
    batches["batch 32 + token cache"] = batches["batch 32"]
    batches[f"document of {DOCUMENT_WORDS} words"] = [[document]]
    return batches


def run_child(args: argparse.Namespace) -> None:
    sentences, document = make_sentences(BATCH_POOL, seed=1), make_sentences(1, seed=2)[0]
    document = (document * DOCUMENT_WORDS)[:DOCUMENT_WORDS]
    batches = settings(sentences, document)[args.child]
    options, weights, converted = model_files(args.workdir)
    dtype = getattr(torch, args.dtype)
    if args.child_implementation == "ours":
        model = ElmoModel.from_pretrained(converted, dtype=dtype).to(args.device).eval()
        tokenizer = ElmoTokenizer.from_pretrained(converted)
        if "token cache" in args.child:
            model.cache_token_embeddings({word for sentence in sentences for word in sentence}, tokenizer)
        with torch.no_grad():
            for batch in batches:
                inputs = tokenizer(batch, is_split_into_words=True, padding=True, return_tensors="pt")
                model(**{key: value.to(args.device) for key, value in inputs.items()}, output_hidden_states=True)
    else:
        from simple_elmo_pytorch import ElmoBiLmSentence, batch_to_ids

        model = ElmoBiLmSentence(str(options), str(weights)).to(args.device).eval()
        with torch.no_grad():
            for batch in batches:
                model(batch_to_ids(batch).to(args.device))
    if args.device == "cuda":
        print(torch.cuda.max_memory_allocated() / 2**20)
    else:
        print(peak_rss_mb())


def peak_rss_mb() -> float:
    """This process's peak resident memory (`VmHWM`; unlike `ru_maxrss` it does not carry over from the parent
    across `exec`)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def model_files(workdir: Path) -> tuple[Path, Path, Path]:
    original, converted = workdir / "original", workdir / "converted"
    options, weights = original / "options.json", original / "weights.hdf5"
    if not weights.exists():
        write_original_shaped(original)
    if not (converted / "model.safetensors").exists():
        convert_original(options, weights, converted, overwrite=True)
    return options, weights, converted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions per setting (median reported)")
    parser.add_argument("--workdir", type=Path, help="keeps the generated model between runs")
    parser.add_argument("--only", help="run only the settings whose name contains this text (e.g. 'batch 32')")
    parser.add_argument("--deploy", action="store_true", help="eager vs onnxruntime vs torch.compile instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-implementation", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as scratch:
        args.workdir = args.workdir or Path(scratch)
        if args.deploy:
            deployment_benchmark(args)
        else:
            benchmark(args)


def deployment_benchmark(args: argparse.Namespace) -> None:
    """Words/s of the eager fast path, onnxruntime and `torch.compile` at batch 1 and 32 (Original shapes, float32)."""
    import onnxruntime

    from modeling_elmo.conversion.onnx_export import export_onnx

    _, _, converted = model_files(args.workdir)
    model = ElmoModel.from_pretrained(converted, dtype=torch.float32).to(args.device).eval()
    tokenizer = ElmoTokenizer.from_pretrained(converted)
    sentences = make_sentences(BATCH_POOL, seed=1)
    twenty = next(s for s in sentences if len(s) == 20)
    start = time.perf_counter()
    onnx_path = export_onnx(model, args.workdir / "elmo.onnx")
    export_seconds = time.perf_counter() - start
    providers = ["CUDAExecutionProvider"] if args.device == "cuda" else ["CPUExecutionProvider"]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as many as torch, and no spinning between calls,
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # which would slow the others down
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=providers)
    compiled = torch.compile(model)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, {torch.get_num_threads()} threads, device {args.device}, float32; "
        f"export (with its onnxruntime check) {export_seconds:.0f} s\n"
    )
    header = ("setting", "eager w/s", "onnxruntime w/s", "ratio", "compiled w/s", "ratio", "compile s", "max |diff|")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, batch in (("batch 1 (one 20-word sentence)", [twenty]), ("batch 32", sentences[:32])):
        inputs = tokenizer(batch, is_split_into_words=True, padding=True, return_tensors="pt")
        row = deployment_row(name, sum(map(len, batch)), inputs, model, compiled, session, args)
        print("| " + " | ".join(row) + " |", flush=True)


def deployment_row(
    name: str, words: int, inputs: dict[str, torch.Tensor], model: ElmoModel, compiled, session, args
) -> tuple[str, ...]:
    """One row of `deployment_benchmark`: the three ways timed on the same tokenizer outputs."""
    from modeling_elmo.conversion.onnx_export import OUTPUT_NAMES

    inputs = {key: value.to(args.device) for key, value in inputs.items()}
    feed = {key: value.cpu().numpy() for key, value in inputs.items()}
    if inputs["input_ids"].shape[0] > 1:  # torch.compile specialises batch size 1
        for value in inputs.values():
            torch._dynamo.mark_dynamic(value, (0, 1))

    def eager() -> torch.Tensor:
        return torch.stack(model(**inputs, output_hidden_states=True).hidden_states)

    def fused() -> torch.Tensor:
        return torch.stack(compiled(**inputs, output_hidden_states=True).hidden_states)

    def served() -> np.ndarray:
        return session.run(list(OUTPUT_NAMES), feed)[1]

    with torch.no_grad():
        compile_seconds = timed(fused, args.device)
        difference = max(float(np.abs(served() - eager().cpu().numpy()).max()), float((fused() - eager()).abs().max()))
        rates = [
            words / statistics.median(timed(way, args.device) for _ in range(args.repeat))
            for way in (eager, served, fused)
        ]
    return (
        name,
        f"{rates[0]:.0f}",
        f"{rates[1]:.0f}",
        f"{rates[1] / rates[0]:.2f}×",
        f"{rates[2]:.0f}",
        f"{rates[2] / rates[0]:.2f}×",
        f"{compile_seconds:.0f}",
        f"{difference:.1e}",
    )


def benchmark(args: argparse.Namespace) -> None:
    device, dtype = args.device, getattr(torch, args.dtype)
    options, weights, converted = model_files(args.workdir)
    implementations = Implementations(options, weights, converted, device, dtype)
    config = implementations.ours.config
    flops = flops_per_word(config)
    peak = matmul_peak_gflops(device)
    sentences, document_words = make_sentences(BATCH_POOL, seed=1), make_sentences(1, seed=2)[0]
    document_words = (document_words * DOCUMENT_WORDS)[:DOCUMENT_WORDS]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}, ours in {args.dtype}, AllenNLP in float32"
    )
    print(
        f"model: Original shapes, {sum(p.numel() for p in implementations.ours.parameters()) / 1e6:.1f}M parameters, "
        f"{flops / 1e6:.0f} MFLOP per word; best measured float32 matrix product: {peak:.0f} GFLOP/s"
    )
    print(
        f"sentences: {len(sentences)}, mean {statistics.mean(map(len, sentences)):.1f} words; "
        f"{args.repeat} timed repetitions after a warm-up, alternating implementations\n"
    )
    header = (
        "setting",
        "ours w/s",
        "AllenNLP w/s",
        "ratio",
        "ours GFLOP/s",
        "of peak",
        "ours RSS MB",
        "AllenNLP RSS MB",
        "max |diff|",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    results = {}
    for name, batches in settings(sentences, document_words).items():
        if args.only and args.only not in name:
            continue
        words = sum(len(sentence) for batch in batches for sentence in batch)
        our_inputs = [implementations.our_inputs(batch) for batch in batches]
        their_inputs = [implementations.allennlp_inputs(batch) for batch in batches]
        cached = "token cache" in name
        if cached:
            implementations.ours.cache_token_embeddings(
                {word for sentence in sentences for word in sentence}, implementations.tokenizer
            )
        long_document = name.startswith("document")
        repeats = 1 if long_document else args.repeat
        our_times, their_times = [], []
        if not long_document:
            implementations.run_ours(our_inputs)
            implementations.run_allennlp(their_inputs)
        for _ in range(repeats):
            our_times.append(timed(lambda inputs=our_inputs: implementations.run_ours(inputs), device))
            their_times.append(timed(lambda inputs=their_inputs: implementations.run_allennlp(inputs), device))
        difference = max_difference(
            implementations.run_ours(our_inputs), implementations.run_allennlp(their_inputs), batches
        )
        if cached:
            implementations.ours.clear_token_cache()
        ours_rate = words / statistics.median(our_times)
        their_rate = words / statistics.median(their_times)
        ours_rss = child_peak_rss(args, name, "ours")
        their_rss = child_peak_rss(args, name, "allennlp")
        gflops = ours_rate * flops / 1e9
        row = (
            name,
            f"{ours_rate:.0f}",
            f"{their_rate:.0f}",
            f"{ours_rate / their_rate:.2f}×",
            f"{gflops:.0f}",
            f"{gflops / peak:.0%}",
            f"{ours_rss:.0f}",
            f"{their_rss:.0f}",
            f"{difference:.1e}",
        )
        print("| " + " | ".join(row) + " |", flush=True)
        results[name] = {
            "ours_words_per_s": ours_rate,
            "allennlp_words_per_s": their_rate,
            "ours_seconds": statistics.median(our_times),
            "max_abs_difference": difference,
        }
    document_setting = f"document of {DOCUMENT_WORDS} words"
    if document_setting in results:
        short_words = DOCUMENT_WORDS // 5
        short = [implementations.our_inputs([document_words[:short_words]])]
        short_seconds = statistics.median(
            timed(lambda: implementations.run_ours(short), device) for _ in range(args.repeat)
        )
        print(
            f"\nlinear time: ours {short_seconds / short_words * 1e6:.1f} ms per 1,000 words at {short_words:,} "
            f"words, {results[document_setting]['ours_seconds'] / DOCUMENT_WORDS * 1e6:.1f} at {DOCUMENT_WORDS:,} words"
        )
    batch_settings = [f"batch {b}" for b in (32, 64, 128) if f"batch {b}" in results]
    if batch_settings:
        best_ours = max(results[name]["ours_words_per_s"] for name in batch_settings)
        best_theirs = max(results[name]["allennlp_words_per_s"] for name in batch_settings)
        print(
            f"best batch size of {batch_settings}: ours {best_ours:.0f} w/s, AllenNLP {best_theirs:.0f} w/s, "
            f"{best_ours / best_theirs:.2f}×"
        )
    if "batch 32" in results and "batch 32 + token cache" in results:
        gain = results["batch 32 + token cache"]["ours_words_per_s"] / results["batch 32"]["ours_words_per_s"]
        print(f"token cache gain at batch 32: {gain - 1:+.0%}")
    print(json.dumps({"results": results}, indent=None))


if __name__ == "__main__":
    main()
