"""Start-up time of the package and of the `elmo` command: the wall time of fresh interpreters, median of a few runs.

    python benchmarks/bench_startup.py [--repeat 5]

Measured, each in a new process (the times include the interpreter's own start-up, shown as `python -c pass`):
`import modeling_elmo`; `elmo --help`; an argument error (`elmo embed` without its arguments, exit status 2);
`import modeling_elmo; from transformers import AutoModel` (what loading a model starts with: torch and
transformers, for comparison). The `elmo` runs use the console script next to this interpreter when it is
installed, else `python -m modeling_elmo.cli`. Also printed: whether each run left torch and transformers
unimported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: Prints which of the heavy libraries a command imported, at the exit of the measured process.
REPORT_IMPORTS = (
    "import atexit, sys\n"
    "heavy = {'torch', 'transformers'}\n"
    "atexit.register(lambda: print('imported:', *sorted(heavy & set(sys.modules)), file=sys.stderr))\n"
)


def elmo_command() -> list[str]:
    """The installed `elmo` console script of this interpreter's environment, else the module run by Python."""
    script = Path(sys.executable).with_name("elmo")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "modeling_elmo.cli"]


def cases() -> dict[str, tuple[list[str], int]]:
    """Each measured command and the exit status it must end with."""
    elmo = elmo_command()
    return {
        "python -c pass": ([sys.executable, "-c", "pass"], 0),
        "import modeling_elmo": ([sys.executable, "-c", "import modeling_elmo"], 0),
        "elmo --help": ([*elmo, "--help"], 0),
        "elmo embed (argument error)": ([*elmo, "embed"], 2),
        "import modeling_elmo; from transformers import AutoModel": (
            [sys.executable, "-c", "import modeling_elmo; from transformers import AutoModel"],
            0,
        ),
    }


def imported_libraries(command: list[str]) -> str:
    """Which of torch and transformers `command` imports (run once more with a report at exit)."""
    if command[:2] == [sys.executable, "-c"]:
        code = REPORT_IMPORTS + command[2]
    else:  # `elmo ARGUMENTS`: the console script's entry point with the same arguments
        arguments = command[1:] if command[0] != sys.executable else command[3:]
        code = REPORT_IMPORTS + f"sys.argv = ['elmo', *{arguments!r}]\nfrom modeling_elmo.cli import run\nrun()"
    probe = [sys.executable, "-c", code]
    result = subprocess.run(probe, capture_output=True, text=True, check=False)
    line = next((line for line in result.stderr.splitlines() if line.startswith("imported:")), "imported: ?")
    return line.removeprefix("imported:").strip() or "neither"


def wall_times(command: list[str], status: int, repeat: int) -> list[float]:
    """`repeat` wall times of `command`, each in a new process; a `SystemExit` if it ends with another status."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if result.returncode != status:
            raise SystemExit(f"{' '.join(command)} exited with {result.returncode}: {result.stderr.decode()[-500:]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh runs of each command (default 5)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{'command':<58} {'median':>8} {'min':>8}  imports")
    for name, (command, status) in cases().items():
        times = wall_times(command, status, args.repeat)
        libraries = imported_libraries(command)
        print(f"{name:<58} {statistics.median(times):>7.2f}s {min(times):>7.2f}s  {libraries}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
