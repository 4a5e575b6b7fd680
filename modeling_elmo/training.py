"""Training the ELMo biLM as a language model (`elmo train`), on the Hugging Face `Trainer`.

The pieces: `training_data` (corpora, packed streams, batches), `training_trainer` (the `Trainer`, its callbacks,
and the heap trimming that keeps a long run's memory flat), `training_run_folder` (the output folder, checkpoints
and resuming), `training_config` (settings and presets). See their docstrings for the data layout, the engine and
the checkpoints.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from safetensors import safe_open
from transformers import set_seed
from transformers.utils import SAFE_WEIGHTS_NAME, cached_file

from modeling_elmo.configuration_elmo import ElmoConfig
from modeling_elmo.embed import loading_model
from modeling_elmo.modeling_elmo import ElmoForBidirectionalLM, ElmoModel
from modeling_elmo.text_files import LanguageModelError, Vocabulary, read_lines, read_vocabulary
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast
from modeling_elmo.training_config import TrainingSettings, load_run_config
from modeling_elmo.training_data import (
    CorpusSpec,
    DatasetCorpus,
    PackedStream,
    TextCorpus,
    TokenEncoder,
    TrainingBatches,
    load_dataset_corpus,
)
from modeling_elmo.training_run_folder import (
    RUN_FILE,
    SUMMARY_FILE,
    check_checkpoint_files,
    check_checkpoint_weights,
    check_resumable,
    clear_output_dir,
    resolve_output_dir,
    restore_streams,
    save_final_model,
    write_json,
)
from modeling_elmo.training_trainer import (
    HeapTrimCallback,
    LanguageModelTrainer,
    RunFilesCallback,
    TrainingDivergedError,
    release_free_heap_memory,
    resident_memory_mb,
    training_arguments,
)
from modeling_elmo.vocabulary import CorpusCounts, word_splitter

__all__ = [
    "CorpusSpec",
    "DatasetCorpus",
    "HeapTrimCallback",
    "LanguageModelTrainer",
    "PackedStream",
    "TextCorpus",
    "TokenEncoder",
    "TrainingBatches",
    "TrainingDivergedError",
    "load_dataset_corpus",
    "release_free_heap_memory",
    "resident_memory_mb",
    "train_language_model",
]


def train_language_model(
    corpus: CorpusSpec,
    output_dir: str | os.PathLike,
    vocab: str | os.PathLike | None = None,
    config_path: str | os.PathLike | None = None,
    preset: str | None = None,
    init_from: str | None = None,
    overrides: dict[str, Any] | None = None,
    resume: bool | str = False,
    overwrite: bool = False,
    progress: bool = True,
    prime_from: str | os.PathLike | None = None,
) -> Path:
    """Train (or continue training) an `ElmoForBidirectionalLM` and save it into `output_dir` (see the module
    docstring). Returns the output folder, which then holds the model (config, safetensors, `vocab.txt`,
    tokenizer, remote code), `training_run.json`, `training_log.jsonl`, `training_summary.json` and the
    `checkpoints/`.

    Args:
        corpus: the training text.
        vocab: a vocabulary file (`elmo build-vocab`); optional with `init_from` a language model.
        config_path, preset: the architecture and training settings (`load_run_config`); with `init_from` the
            architecture comes from that model.
        init_from: a model folder or Hub id to start from (a converted biLM, or a language model).
        overrides: training settings that override the config's (the CLI's options).
        resume: continue from the last checkpoint in `output_dir` (True) or from this checkpoint folder.
        overwrite: allow a non-empty `output_dir` when not resuming (its old checkpoints are removed).
        prime_from: after training, compute the `"primed"` initial state from this text file (one sentence per line,
            split like the corpus) and save it with the model.
    """
    output_dir = Path(output_dir)
    model_fields, settings_values = load_run_config(config_path, preset)
    settings_values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        settings = TrainingSettings(**settings_values)
    except TypeError as error:
        raise LanguageModelError(f"bad training settings: {error}") from error
    settings.validate()
    arguments = training_arguments(settings, output_dir, progress)  # sets up the processes of a distributed run
    world_size, rank = arguments.world_size, arguments.process_index
    state = PartialState()
    checkpoint = resolve_output_dir(output_dir, resume, overwrite)
    if checkpoint is not None:
        check_checkpoint_files(checkpoint)
    state.wait_for_everyone()  # every process has checked the folder before the main process changes it
    if prime_from is not None:  # read after the training: check it before
        _priming_sentences(prime_from, word_splitter(corpus.tokenized))
    source = corpus.open()
    counts = source.count()
    if not counts.sentences:
        raise LanguageModelError(f"the corpus ({', '.join(source.describe())}) holds no sentences")

    set_seed(settings.seed)
    model, vocabulary = _initial_model(model_fields, vocab, init_from, settings)
    run = {
        "corpus": source.describe(),
        "tokenized": corpus.tokenized,
        "vocabulary_size": len(vocabulary),
        "init_from": init_from,
        "settings": asdict(settings),
        "corpus_sentences": counts.sentences,
        "corpus_tokens": counts.tokens + counts.sentences,
    }
    steps_per_epoch = _steps_per_epoch(settings, counts, world_size)
    max_steps = settings.max_steps or max(1, math.ceil(settings.epochs * steps_per_epoch))
    arguments.max_steps = max_steps
    run.update(world_size=world_size, max_steps=max_steps)
    if checkpoint is not None:
        check_resumable(output_dir, run, checkpoint)
    elif state.is_main_process:  # only now: a bad corpus or model leaves the folder as it was
        clear_output_dir(output_dir)
        write_json(output_dir / RUN_FILE, run)
    state.wait_for_everyone()

    dataset = TrainingBatches(
        source, TokenEncoder(vocabulary, model.config.max_characters_per_token), settings, rank, world_size
    )
    tokenizer = ElmoTokenizerFast(max_characters_per_token=model.config.max_characters_per_token)
    trainer = LanguageModelTrainer(
        model=model,
        args=arguments,
        train_dataset=dataset,
        settings=settings,
        steps_per_epoch=steps_per_epoch,
        callbacks=[RunFilesCallback(output_dir), HeapTrimCallback()],
    )
    if checkpoint is not None:
        check_checkpoint_weights(checkpoint, model)
        dataset.skip_batches = restore_streams(model, checkpoint, rank, settings, arguments.device)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    seconds = time.time() - start

    model.reset_states()
    model.config.state_mode = "stateless"
    if prime_from is not None:
        _prime(model, tokenizer, prime_from, corpus.tokenized, settings.batch_size)
    if state.is_main_process:
        save_final_model(model, tokenizer, output_dir)
        summary = {
            **run,
            "global_step": result.global_step,
            "train_seconds_this_run": round(seconds, 1),
            "final_log": next((entry for entry in reversed(trainer.state.log_history) if "perplexity" in entry), None),
        }
        write_json(output_dir / SUMMARY_FILE, summary)
    state.wait_for_everyone()
    return output_dir


def _initial_model(
    model_fields: dict[str, Any], vocab: str | os.PathLike | None, init_from: str | None, settings: TrainingSettings
) -> tuple[ElmoForBidirectionalLM, Vocabulary]:
    """A new language model (architecture `model_fields`) or one initialised from `init_from`, with its
    vocabulary. From a language model with the same vocabulary, everything is kept; with another vocabulary (or
    from a biLM without softmax) the biLM is kept, and the softmax rows of words the two vocabularies share are
    copied."""
    vocabulary = read_vocabulary(vocab) if vocab is not None else None
    lm_fields = {"lm_num_sampled": settings.num_sampled, "lm_dropout": settings.dropout}
    if init_from is None:
        if vocabulary is None:
            raise LanguageModelError("--vocab is needed to train a new model (make one with `elmo build-vocab`)")
        try:
            config = ElmoConfig(**model_fields, **vocabulary.config_fields(), **lm_fields)
        except (TypeError, ValueError) as error:
            raise LanguageModelError(f"bad model configuration: {error}") from error
        model = ElmoForBidirectionalLM(config)
        model.vocabulary = list(vocabulary.words)
        return model, vocabulary
    with loading_model(init_from, LanguageModelError):
        source_config = ElmoConfig.from_pretrained(init_from)
        is_language_model = source_config.lm_vocab_size and _holds_softmax(init_from)
        source_lm = ElmoForBidirectionalLM.from_pretrained(init_from) if is_language_model else None
        bilm = source_lm.elmo if source_lm is not None else ElmoModel.from_pretrained(init_from)
    if vocabulary is None:
        if source_lm is None or source_lm.vocabulary is None:
            raise LanguageModelError(f"{init_from} has no word vocabulary: pass --vocab")
        vocabulary = Vocabulary(source_lm.vocabulary, source=f"{init_from}/vocab.txt")
    config = ElmoConfig.from_dict(bilm.config.to_dict())
    for name, value in {**vocabulary.config_fields(), **lm_fields, "state_mode": "stateless"}.items():
        setattr(config, name, value)
    config.validate_elmo()
    model = ElmoForBidirectionalLM(config)
    model.elmo.load_state_dict(bilm.state_dict())
    model.elmo.primed_cell_state.zero_()
    model.elmo.primed_hidden_state.zero_()
    model.vocabulary = list(vocabulary.words)
    if source_lm is not None and source_lm.vocabulary is not None:
        source_rows = {word: row for row, word in enumerate(source_lm.vocabulary)}
        pairs = [(row, source_rows[word]) for row, word in enumerate(vocabulary.words) if word in source_rows]
        if pairs:
            target, origin = (torch.tensor(indices) for indices in zip(*pairs, strict=True))
            with torch.no_grad():
                model.softmax.weight[target] = source_lm.softmax.weight[origin].to(model.softmax.weight.dtype)
                model.softmax.bias[target] = source_lm.softmax.bias[origin].to(model.softmax.bias.dtype)
    return model, vocabulary


def _holds_softmax(model: str) -> bool:
    """Whether the safetensors weights of `model` (a folder or Hub id) hold the language model's softmax: a biLM
    saved from a language model (`model.elmo.save_pretrained`) keeps the vocabulary in its config, not the softmax.
    Pickled weights (no safetensors file) are taken to hold what the config says."""
    weights = cached_file(model, SAFE_WEIGHTS_NAME, _raise_exceptions_for_missing_entries=False)
    if weights is None:
        return True
    with safe_open(weights, framework="pt") as handle:
        return "softmax.weight" in handle.keys()  # noqa: SIM118 (a safetensors handle is not iterable)


def _steps_per_epoch(settings: TrainingSettings, counts: CorpusCounts, world_size: int) -> float:
    """Optimizer steps per pass over the corpus (tokens of the packed streams, or sentences)."""
    per_step = world_size * settings.batch_size * settings.gradient_accumulation_steps
    if settings.packing == "packed":
        return (counts.tokens + counts.sentences) / (per_step * settings.unroll_steps)
    return counts.sentences / per_step


def _prime(
    model: ElmoForBidirectionalLM,
    tokenizer: ElmoTokenizerFast,
    path: str | os.PathLike,
    tokenized: bool,
    batch_size: int,
) -> None:
    """Set the primed initial state from the sentences of `path`, in batches of `batch_size` rows."""
    sentences = _priming_sentences(path, word_splitter(tokenized))
    model.eval()
    batches = (
        tokenizer(sentences[start : start + batch_size], is_split_into_words=True, padding=True, return_tensors="pt")
        for start in range(0, len(sentences), batch_size)
    )
    model.elmo.prime_states(batches)


def _priming_sentences(path: str | os.PathLike, split: Callable[[str], list[str]]) -> list[list[str]]:
    """The sentences of the `prime_from` file (errors name the file and line)."""
    if Path(path).is_dir():
        raise LanguageModelError(f"--prime-from {path} is a folder, not a file")
    sentences = [words for _, text in read_lines(path) if (words := split(text))]
    if not sentences:
        raise LanguageModelError(f"{path} holds no sentences to prime the state with")
    return sentences
