"""The output folder of `elmo train`: the run's records, its checkpoints, and the trained model.

`OUTPUT/` holds the model (config, safetensors, `vocab.txt`, tokenizer, remote code), `training_run.json` (what the
run reads and how: resuming with other data or another layout of the streams is refused), `training_log.jsonl`,
`training_summary.json` and `checkpoints/`.

Checkpoints (`OUTPUT/checkpoints/checkpoint-N`) hold what the `Trainer` saves (weights, optimizer, scheduler, every
rank's random state, the step) plus every rank's carried LSTM state (`elmo_stream_state_{rank}.pt`); on resume
the streams are fast-forwarded to the checkpoint's position, so a resumed run continues exactly where the
interrupted one was. A checkpoint is checked before it is resumed from: its files (no pickle the safe loader
refuses), its weights against the model, its stream state against the batch size.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from transformers import TrainerState
from transformers.trainer_pt_utils import safe_globals
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from modeling_elmo.conversion.folder import naming_os_errors
from modeling_elmo.embed import one_line, weights_file_problem
from modeling_elmo.modeling_elmo import ElmoForBidirectionalLM
from modeling_elmo.text_files import LanguageModelError
from modeling_elmo.tokenization_elmo_fast import ElmoTokenizerFast
from modeling_elmo.training_config import TrainingSettings

CHECKPOINTS_DIR = "checkpoints"
RUN_FILE = "training_run.json"
LOG_FILE = "training_log.jsonl"
SUMMARY_FILE = "training_summary.json"
STREAM_STATE_FILE = "elmo_stream_state_{rank}.pt"
TRAINER_STATE_FILE = "trainer_state.json"
CHECKPOINT_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
UNREAD_CHECKPOINT_PICKLES = ("training_args.bin",)  # saved by the Trainer, never read on resume


# ---- The output folder ----


def resolve_output_dir(output_dir: Path, resume: bool | str, overwrite: bool) -> Path | None:
    """Check the output folder (without changing it); returns the checkpoint to resume from, if any."""
    checkpoints = output_dir / CHECKPOINTS_DIR
    if resume:
        if isinstance(resume, str):
            checkpoint = Path(resume)
            if not checkpoint.is_dir():
                raise LanguageModelError(f"the checkpoint {checkpoint} does not exist")
            return checkpoint
        last = last_complete_checkpoint(checkpoints)
        if last is None:
            raise LanguageModelError(f"no checkpoint to resume from in {checkpoints}")
        return last
    if output_dir.exists() and not output_dir.is_dir():
        raise LanguageModelError(f"{output_dir} exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise LanguageModelError(
            f"{output_dir} is not empty: pass --resume to continue its training or --overwrite to start again"
        )
    return None


def last_complete_checkpoint(checkpoints: Path) -> Path | None:
    """The checkpoint of the highest step whose `trainer_state.json` (the last file written) is readable: a
    checkpoint without one was interrupted while it was written."""
    complete = []
    for folder in checkpoints.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if checkpoints.is_dir() else ():
        step = folder.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        try:
            if step.isdigit() and folder.is_dir():
                TrainerState.load_from_json(str(folder / TRAINER_STATE_FILE))
                complete.append((int(step), folder))
        except (OSError, ValueError, TypeError, RecursionError):
            continue
    return max(complete)[1] if complete else None


def clear_output_dir(output_dir: Path) -> None:
    """Create the output folder, or remove an earlier run's checkpoints and records from it (--overwrite)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(output_dir / CHECKPOINTS_DIR, ignore_errors=True)
    for name in (RUN_FILE, LOG_FILE, SUMMARY_FILE):
        (output_dir / name).unlink(missing_ok=True)


def check_resumable(output_dir: Path, run: dict[str, Any], checkpoint: Path) -> None:
    """Refuse to resume with other data or another layout of the streams than the interrupted run's."""
    path = output_dir / RUN_FILE
    if not path.is_file():
        raise LanguageModelError(f"{path} is missing: cannot check that {checkpoint} belongs to this training")
    try:
        before = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise LanguageModelError(
            f"{path} is unreadable ({error}): cannot check that {checkpoint} belongs to this training"
        ) from None
    if not isinstance(before, dict):
        raise LanguageModelError(f"{path} must hold a JSON object")
    keys = ["corpus", "tokenized", "vocabulary_size", "world_size", "corpus_tokens"]
    keys += [f"settings.{name}" for name in ("batch_size", "unroll_steps", "packing", "gradient_accumulation_steps")]
    for key in keys:
        old, new = before, run
        for part in key.split("."):
            old, new = old.get(part), new.get(part)
        if old != new:
            raise LanguageModelError(f"cannot resume {checkpoint}: {key} was {old!r}, now {new!r}")


def write_json(path: Path, values: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with naming_os_errors(path):
            temporary.write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def save_final_model(model: ElmoForBidirectionalLM, tokenizer: ElmoTokenizerFast, output_dir: Path) -> None:
    """Save the model into `output_dir` beside the run's files: written into a temporary folder first, then each
    file renamed into place. The tokenizer is the fast one: the folder holds its `tokenizer.json` beside
    `tokenizer_config.json`, and `ElmoTokenizer.from_pretrained` loads the same folder as the Python tokenizer."""
    from modeling_elmo.conversion.folder import save_with_remote_code

    staging = Path(tempfile.mkdtemp(prefix=".model.", dir=output_dir))
    try:
        save_with_remote_code(model, tokenizer, staging)
        for path in staging.iterdir():
            os.replace(path, output_dir / path.name)
    except (OSError, RuntimeError, SafetensorError) as error:
        raise LanguageModelError(
            f"cannot write the trained model into {output_dir} ({one_line(error)}); the checkpoints are kept: make "
            "room, then --resume saves it"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---- Checkpoints ----


def check_checkpoint_files(checkpoint: Path) -> None:
    """Refuse a checkpoint that the `Trainer` would fail on with a traceback, before anything else is done: its
    `trainer_state.json` must be the `Trainer`'s, its weights file must be there, every pickle (`*.pt`, `*.pth`,
    `*.bin`) must be one that `torch.load(weights_only=True)` reads (tensors, plain containers and the NumPy
    arrays of the random states: the `Trainer`'s own allow-list; a pickle's code is never run; the tensors are
    memory-mapped, not read), every safetensors file must have a valid header."""
    path = checkpoint / TRAINER_STATE_FILE
    if not path.is_file():
        raise LanguageModelError(f"{checkpoint} is not a complete checkpoint (no {TRAINER_STATE_FILE})")
    try:
        trainer_state = TrainerState.load_from_json(str(path))
    except (OSError, ValueError, TypeError, RecursionError) as error:
        raise LanguageModelError(f"{path} is not a Trainer state ({one_line(error)})") from None
    if isinstance(trainer_state.global_step, bool) or not isinstance(trainer_state.global_step, int):
        raise LanguageModelError(f"{path}: global_step must be an integer, got {trainer_state.global_step!r}")
    if not any((checkpoint / name).is_file() for name in CHECKPOINT_WEIGHTS_FILES):
        raise LanguageModelError(f"{checkpoint} has no model weights ({' or '.join(CHECKPOINT_WEIGHTS_FILES)})")
    files = sorted(
        path
        for path in checkpoint.iterdir()
        if path.suffix in (".pt", ".pth", ".bin", ".safetensors") and path.name not in UNREAD_CHECKPOINT_PICKLES
    )
    with safe_globals():
        problem = next(filter(None, map(weights_file_problem, files)), None)
    if problem is not None:
        raise LanguageModelError(f"cannot resume from {checkpoint}: {problem}")


def check_checkpoint_weights(checkpoint: Path, model: ElmoForBidirectionalLM) -> None:
    """Refuse checkpoint weights that lack a tensor of `model`, hold one it does not have, or one of another shape
    (the `Trainer` would load what fits and leave the rest as it is)."""
    path = next(checkpoint / name for name in CHECKPOINT_WEIGHTS_FILES if (checkpoint / name).is_file())
    if path.suffix == ".safetensors":
        with safe_open(path, framework="pt") as weights:
            names = weights.keys()
            shapes = {name: tuple(weights.get_slice(name).get_shape()) for name in names}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
        if not isinstance(state, dict):
            raise LanguageModelError(f"{path} is not a state dict: it holds a {type(state).__name__}")
        shapes = {name: tuple(getattr(tensor, "shape", ())) for name, tensor in state.items()}
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    problems = [f"{name} is missing" for name in expected if name not in shapes]
    problems += [f"{name} is not one of the model's" for name in shapes if name not in expected]
    problems += [
        f"{name} has shape {shapes[name]}, the model's {shape}"
        for name, shape in expected.items()
        if name in shapes and shapes[name] != shape
    ]
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise LanguageModelError(f"{path} does not fit the model: {'; '.join(problems[:5])}{more}")


def save_stream_state(model: ElmoForBidirectionalLM, folder: Path, global_step: int, rank: int) -> None:
    """Write this rank's carried LSTM state into the checkpoint `folder` (under a temporary name, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    carried = model.elmo.carried_state
    payload = {"global_step": global_step, "cell": None, "hidden": None}
    if carried is not None:
        payload.update(cell=carried[0].detach().cpu(), hidden=carried[1].detach().cpu())
    target = folder / STREAM_STATE_FILE.format(rank=rank)
    torch.save(payload, target.with_suffix(".tmp"))
    os.replace(target.with_suffix(".tmp"), target)


def restore_streams(
    model: ElmoForBidirectionalLM, checkpoint: Path, rank: int, settings: TrainingSettings, device: torch.device
) -> int:
    """Restore this rank's carried LSTM state from `checkpoint`; returns the batches to skip in the streams."""
    global_step = TrainerState.load_from_json(str(checkpoint / TRAINER_STATE_FILE)).global_step
    if settings.packing == "packed":
        path = checkpoint / STREAM_STATE_FILE.format(rank=rank)
        if not path.is_file():
            raise LanguageModelError(f"{path} is missing: the checkpoint was written by another number of processes")
        saved = torch.load(path, map_location="cpu", weights_only=True)  # checked by check_checkpoint_files
        cell, hidden = _stream_state(saved, path, model, settings.batch_size)
        if cell is not None:
            model.elmo.carry_state(cell.to(device), hidden.to(device))
    return global_step * settings.gradient_accumulation_steps


def _stream_state(
    saved: Any, path: Path, model: ElmoForBidirectionalLM, batch_size: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The carried (cell, hidden) state of a stream state file, checked against the model and the batch size:
    (L, 2, B, D) and (L, 2, B, P) floating-point tensors, or both None."""
    if not isinstance(saved, dict) or not {"cell", "hidden"} <= saved.keys():
        raise LanguageModelError(f"{path} is not a stream state: it must hold a dict with 'cell' and 'hidden'")
    cell, hidden = saved["cell"], saved["hidden"]
    if cell is None and hidden is None:
        return None, None
    layers, _, cell_dim = model.elmo.primed_cell_state.shape
    projection_dim = model.elmo.primed_hidden_state.shape[-1]
    for name, value, shape in (
        ("cell", cell, (layers, 2, batch_size, cell_dim)),
        ("hidden", hidden, (layers, 2, batch_size, projection_dim)),
    ):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise LanguageModelError(f"{path}: '{name}' must be a floating-point tensor, got {type(value).__name__}")
        if tuple(value.shape) != shape:
            streams = f" ({value.shape[2]} streams, the batch size is {batch_size})" if value.dim() == 4 else ""
            raise LanguageModelError(f"{path}: '{name}' has shape {tuple(value.shape)}, expected {shape}{streams}")
    return cell, hidden
