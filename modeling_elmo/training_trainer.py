"""The engine of `elmo train`: a `transformers.Trainer` for the language model, its callbacks and its arguments.

`LanguageModelTrainer` is a `transformers.Trainer`: the same command runs on one CPU or GPU, under `torchrun` or
`accelerate launch` across GPUs and nodes (DDP), with mixed precision (`mixed_precision="bf16"` / `"fp16"`) and
gradient accumulation. Defaults follow the original: Adagrad (learning rate 0.2, initial accumulator 1.0),
gradient clipping to global norm 10, dropout 0.1, 8192 sampled negatives. A loss that becomes NaN or infinite on
any rank stops all ranks with an error naming the step, before anything is saved from it.

Long runs on glibc need `HeapTrimCallback` (`malloc_trim`), which keeps the processes' resident memory flat.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from modeling_elmo.conversion.folder import naming_os_errors
from modeling_elmo.embed import one_line
from modeling_elmo.text_files import LanguageModelError
from modeling_elmo.training_config import TrainingSettings
from modeling_elmo.training_run_folder import CHECKPOINTS_DIR, LOG_FILE, save_stream_state


class TrainingDivergedError(LanguageModelError):
    """The loss became NaN or infinite."""


class LanguageModelTrainer(Trainer):
    """`Trainer` for `ElmoForBidirectionalLM` on `TrainingBatches`: ordered per-process batches, Adagrad with the
    original's initial accumulator, NaN/inf detection across ranks, tokens/s and perplexities in the logs, and the
    carried LSTM state in checkpoints."""

    def __init__(self, *args: Any, settings: TrainingSettings, steps_per_epoch: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.steps_per_epoch = steps_per_epoch
        self._log_sums = torch.zeros(4, dtype=torch.float64)
        self._last_log_time = time.perf_counter()

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        with _resuming_from(resume_from_checkpoint, "the model weights"):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        """The `Trainer`'s, and a check that every per-parameter state has its parameter's shape (torch checks
        the number of parameters only; another model's state would fail in the first step)."""
        with _resuming_from(checkpoint, "the optimizer or scheduler state"):
            super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        for group in self.optimizer.param_groups:
            for parameter in group["params"]:
                for name, value in self.optimizer.state.get(parameter, {}).items():
                    if isinstance(value, torch.Tensor) and value.dim() and value.shape != parameter.shape:
                        raise LanguageModelError(
                            f"cannot resume from {checkpoint}: the optimizer state does not fit this training "
                            f"(its {name!r} has shape {tuple(value.shape)}, its parameter {tuple(parameter.shape)})"
                        )

    def _load_rng_state(self, checkpoint: str | None) -> None:
        with _resuming_from(checkpoint, "the random number generators' state"):
            super()._load_rng_state(checkpoint)

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """The `Trainer`'s, after this rank's carried LSTM state (packed streams), so that `trainer_state.json`,
        which the `Trainer` writes last, marks a complete checkpoint. A checkpoint that cannot be written (a full
        disk) is removed, and the training stops with an error."""
        folder = Path(self.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        try:
            if self.settings.packing == "packed":
                save_stream_state(self.model, folder, self.state.global_step, self.args.process_index)
            super()._save_checkpoint(model, trial)
        except (OSError, RuntimeError, SafetensorError) as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise LanguageModelError(
                f"cannot write the checkpoint {folder} ({one_line(error)}); it was removed: make room, then --resume "
                "continues from the last complete checkpoint"
            ) from None

    def get_train_dataloader(self) -> DataLoader:
        """The batches as the dataset yields them (already per process, already batched, in order)."""
        return DataLoader(self.train_dataset, batch_size=None, num_workers=0)

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is None and self.settings.optimizer == "adagrad":
            parameters = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
            self.optimizer = torch.optim.Adagrad(
                parameters,
                lr=self.args.learning_rate,
                initial_accumulator_value=self.settings.adagrad_initial_accumulator,
            )
        return super().create_optimizer(model)

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        outputs = model(**inputs)
        counts = outputs.num_targets.detach().double().cpu()
        self._log_sums += torch.stack(
            [
                outputs.forward_loss.detach().double().cpu() * counts[0],
                outputs.backward_loss.detach().double().cpu() * counts[1],
                counts[0],
                counts[1],
            ]
        )
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def training_step(
        self, model: torch.nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch: Any = None
    ) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        bad = torch.tensor([0.0 if torch.isfinite(loss).item() else 1.0], device=loss.device)
        if self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        if bad.item():
            raise TrainingDivergedError(
                f"the training loss became NaN or infinite at step {self.state.global_step + 1} "
                f"(on {int(bad.item())} of {self.accelerator.num_processes} process(es); this process's loss: "
                f"{loss.item()}); nothing was saved from this step. Lower the learning rate (--learning-rate), "
                "or resume from the last checkpoint (--resume)"
            )
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the perplexity of each direction, their average (exp of the mean loss), the tokens per second (the
        forward predictions of all processes: words and sentence ends) since the last log, and the largest resident
        memory of any process (`resident_memory_mb`, current; where /proc is missing, its peak) to the logs."""
        if "loss" in logs:
            sums = self._log_sums.to(self.args.device)
            memory = torch.tensor([resident_memory_mb()], dtype=torch.float64, device=self.args.device)
            if self.accelerator.num_processes > 1:
                sums = self.accelerator.reduce(sums, reduction="sum")
                memory = self.accelerator.gather(memory)
            logs["resident_memory_mb"] = round(memory.max().item(), 1)
            forward_sum, backward_sum, forward_count, backward_count = sums.cpu().tolist()
            now = time.perf_counter()
            if forward_count and backward_count:
                forward_loss, backward_loss = forward_sum / forward_count, backward_sum / backward_count
                logs["forward_perplexity"] = round(math.exp(min(forward_loss, 700.0)), 3)
                logs["backward_perplexity"] = round(math.exp(min(backward_loss, 700.0)), 3)
                logs["perplexity"] = round(math.exp(min((forward_loss + backward_loss) / 2, 700.0)), 3)
                logs["tokens_per_second"] = round(forward_count / max(now - self._last_log_time, 1e-9), 1)
            self._log_sums.zero_()
            self._last_log_time = now
        self.state.epoch = round(self.state.global_step / self.steps_per_epoch, 4)  # passes over the corpus
        super().log(logs, start_time)


@contextmanager
def _resuming_from(checkpoint: str | None, part: str) -> Iterator[None]:
    """Turn the `Trainer`'s failure to restore `part` of a checkpoint (state of another model or optimizer) into a
    `LanguageModelError` naming the checkpoint."""
    try:
        yield
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError, SafetensorError) as error:
        raise LanguageModelError(
            f"cannot resume from {checkpoint}: {part} does not fit this training ({one_line(error)})"
        ) from None


def training_arguments(settings: TrainingSettings, output_dir: Path, progress: bool) -> TrainingArguments:
    """The `Trainer`'s arguments for `settings`: checkpoints in `OUTPUT/checkpoints/`, logs and saves every so many
    steps, no weight decay, the batches as `TrainingBatches` yields them (no worker, no skipping: resuming
    fast-forwards the streams itself). Creating them sets up the processes of a distributed run."""
    optimizer = {"optim": "adamw_torch"} if settings.optimizer == "adamw" else {}
    return TrainingArguments(
        output_dir=str(output_dir / CHECKPOINTS_DIR),
        max_steps=max(settings.max_steps, 1),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        weight_decay=0.0,
        max_grad_norm=settings.max_grad_norm,
        logging_strategy="steps",
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        seed=settings.seed,
        bf16=settings.mixed_precision == "bf16",
        fp16=settings.mixed_precision == "fp16",
        report_to="none",
        # Without an accelerator, say so: Accelerate then runs several processes as CPU DDP (gloo).
        use_cpu=not (torch.cuda.is_available() or torch.backends.mps.is_available()),
        disable_tqdm=not progress,
        ignore_data_skip=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        **optimizer,
    )


def resident_memory_mb() -> float:
    """This process's resident memory in MiB: the current size from /proc/self/statm on Linux, else the peak."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


def release_free_heap_memory() -> bool:
    """Return the C heap's free pages to the system (glibc's `malloc_trim(0)`); False where the C library has
    no `malloc_trim` (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


class HeapTrimCallback(TrainerCallback):
    """Calls `release_free_heap_memory` every `every` optimizer steps.

    Without it, a training process's resident memory grows without bound on glibc although its live heap does
    not: once a first large block is freed, glibc raises its mmap threshold and serves the step's short-lived
    buffers of up to 32 MB (softmax logits, DDP buckets) from its heap, and the free space between them stays
    resident. A 2-process run of the shipped recipe grew from 0.8 to 2 GB per process in 2,000 steps (and was
    killed at 20 GB after 7,600), with the live heap flat at 260 MB; trimming every 100 steps kept it under 1.6
    GB for all of the recipe's 14,000 steps, at no measurable cost in speed."""

    def __init__(self, every: int = 100) -> None:
        self.every = every

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.every == 0:
            release_free_heap_memory()


class RunFilesCallback(TrainerCallback):
    """Writes the main process's logs to `training_log.jsonl`."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir

    def on_log(self, args: TrainingArguments, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        if state.is_world_process_zero and logs:
            path = self.output_dir / LOG_FILE
            with naming_os_errors(path), open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": state.global_step, **logs}) + "\n")
