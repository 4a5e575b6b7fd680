"""`elmo embed` under a distributed launcher (`torchrun`, `accelerate launch`): which process this is, where it
runs, and how the processes wait for each other.

The launcher says who a process is through its environment (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
`LOCAL_WORLD_SIZE`, plus `MASTER_ADDR`/`MASTER_PORT` for its rendezvous). A job with `WORLD_SIZE` > 1 shares the
input's windows: window i belongs to rank i mod N, which writes its part file; rank 0 alone takes the output's
lock, starts or checks the job before the others begin, and assembles the output once every rank is done. The
processes meet through the launcher's own process group (`torch.distributed` over gloo, which every build of
torch has and which needs nothing but the rendezvous the launcher already made), and through the shared parts
folder; nothing else.

An error on any rank (bad input, a full disk, a changed input) is shared at the next meeting point, so that every
process stops with the same message rather than waiting for one that has ended.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch

from modeling_elmo.configuration_elmo import ElmoError

#: How long a rank waits for the others at a meeting point: a resumed job can leave one rank with nothing to do
#: while another embeds for hours, and a rank that dies ends the whole launch anyway.
MEETING_TIMEOUT = timedelta(days=7)
Result = TypeVar("Result")


@dataclass(frozen=True)
class LaunchContext:
    """Where this process stands in its launch: `rank` of `world_size` processes, `local_rank` of
    `local_world_size` on its machine. A plain run is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        """Whether other processes share the job."""
        return self.world_size > 1

    def owns(self, window_number: int) -> bool:
        """Whether this process embeds window `window_number` (window i belongs to rank i mod N)."""
        return window_number % self.world_size == self.rank

    def device(self, requested: str | None) -> str | None:
        """The device of this process: with several processes on a machine and CUDA available, `cuda:LOCAL_RANK`
        (also for a bare `--device cuda`); otherwise what was asked for (None: the model's)."""
        if not self.distributed:
            return requested
        if requested is None:
            return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"
        return f"cuda:{self.local_rank}" if requested == "cuda" else requested

    def fair_threads(self) -> int:
        """The CPU threads of one process: the cores this process may use, divided among the processes of its
        machine (at least one)."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // self.local_world_size)


def launch_context(environment: dict[str, str] | None = None) -> LaunchContext:
    """The launch this process belongs to, from the variables `torchrun` and `accelerate launch` set (rank 0 of 1
    without them). Inconsistent values are an `ElmoError` naming the variable."""
    environment = os.environ if environment is None else environment
    if "WORLD_SIZE" not in environment:
        return LaunchContext()
    values = {}
    for name, default in (("RANK", None), ("WORLD_SIZE", None), ("LOCAL_RANK", "0"), ("LOCAL_WORLD_SIZE", None)):
        text = environment.get(name, default)
        if text is None and name == "LOCAL_WORLD_SIZE":
            text = environment["WORLD_SIZE"]
        if text is None or not text.strip().isdigit():
            raise ElmoError(f"the launcher's environment variable {name} must be a whole number, got {text!r}")
        values[name] = int(text)
    if values["WORLD_SIZE"] < 1 or values["RANK"] >= values["WORLD_SIZE"]:
        raise ElmoError(f"the launcher's RANK={values['RANK']} is not below WORLD_SIZE={values['WORLD_SIZE']}")
    return LaunchContext(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"], max(1, values["LOCAL_WORLD_SIZE"]))


@contextmanager
def process_group(context: LaunchContext) -> Iterator[None]:
    """The launcher's process group for the block: joined (gloo) if nobody has yet, and left afterwards; an
    existing one (made by the program that calls `embed_file`) is used as it is. Nothing for a single process."""
    if not context.distributed:
        yield
        return
    import torch.distributed as dist

    if dist.is_initialized():
        yield
        return
    dist.init_process_group(backend="gloo", timeout=MEETING_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def on_every_rank(context: LaunchContext, work: Callable[[], Result], error_type: type[ElmoError]) -> list[Result]:
    """Run `work` here, then meet the others (a barrier): if any rank raised an `ElmoError`, every rank raises
    `error_type` with the message of the lowest such rank; otherwise returns every rank's result, by rank (this
    process's alone without a launch)."""
    if not context.distributed:
        return [work()]
    import torch.distributed as dist

    outcome: tuple[str | None, Result | None]
    try:
        outcome = (None, work())
    except ElmoError as error:
        outcome = (str(error), None)
    outcomes: list[tuple[str | None, Result | None]] = [(None, None)] * context.world_size
    dist.all_gather_object(outcomes, outcome)
    message = next((message for message, _ in outcomes if message is not None), None)
    if message is not None:
        raise error_type(message)
    return [result for _, result in outcomes]
