"""Wall time and peak memory of `elmo convert` (and `elmo export-original`) on an Original-shaped model.

Writes a random ELMo with the published Original model's sizes (E = 16, F = 2048, 2 highway layers,
P = 512, D = 4096, 2 layers: 93.6M parameters, ~375 MB of float32) in the bilm-tf HDF5 layout, then runs
each command in a fresh subprocess and reports its wall time and peak resident memory (the child's
`ru_maxrss`), next to the same figures for a process that only imports the converter (the fixed cost
of torch + transformers).

    python benchmarks/bench_convert.py [--workdir DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from original_format import lstm_prefix, original_options

ORIGINAL_SIZES = dict(
    char_embedding_dim=16,
    filters=[[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
    n_highway=2,
    projection_dim=512,
    lstm_dim=4096,
    n_layers=2,
)
IMPORT_ONLY = "import modeling_elmo.cli, modeling_elmo.conversion.original, modeling_elmo.conversion.export"


def write_original_shaped(directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write an Original-shaped random model one dataset at a time (never the whole model in memory)."""
    import json

    options = original_options(**ORIGINAL_SIZES)
    directory.mkdir(parents=True, exist_ok=True)
    options_path, weights_path = directory / "options.json", directory / "weights.hdf5"
    options_path.write_text(json.dumps(options), encoding="utf-8")
    rng = np.random.default_rng(seed)
    embedding_dim, projection_dim, cell_dim = 16, 512, 4096
    filters = ORIGINAL_SIZES["filters"]
    num_filters = sum(count for _, count in filters)
    shapes = {"char_embed": (261, embedding_dim)}
    for index, (width, count) in enumerate(filters):
        shapes[f"CNN/W_cnn_{index}"] = (1, width, embedding_dim, count)
        shapes[f"CNN/b_cnn_{index}"] = (count,)
    for layer in range(2):
        for kind in ("carry", "transform"):
            shapes[f"CNN_high_{layer}/W_{kind}"] = (num_filters, num_filters)
            shapes[f"CNN_high_{layer}/b_{kind}"] = (num_filters,)
    shapes["CNN_proj/W_proj"] = (num_filters, projection_dim)
    shapes["CNN_proj/b_proj"] = (projection_dim,)
    for direction in range(2):
        for layer in range(2):
            prefix = lstm_prefix(direction, layer)
            shapes[f"{prefix}/W_0"] = (2 * projection_dim, 4 * cell_dim)
            shapes[f"{prefix}/B"] = (4 * cell_dim,)
            shapes[f"{prefix}/W_P_0"] = (cell_dim, projection_dim)
    with h5py.File(weights_path, "w") as handle:
        for name, shape in shapes.items():
            scale = np.float32(1.0 / np.sqrt(shape[0] if len(shape) > 1 else 100.0))
            handle.create_dataset(name, data=(rng.standard_normal(shape, dtype=np.float32) * scale))
    return options_path, weights_path


def measure(command: list[str]) -> tuple[float, float]:
    """Run `command` in a fresh subprocess; returns (wall seconds, its peak RSS in MB)."""
    code = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - start\n"
        "if result.returncode:\n"
        "    sys.exit(result.stderr)\n"
        "print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    # A fresh measuring parent per run, so RUSAGE_CHILDREN covers exactly one command.
    output = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, check=False)
    if output.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{output.stderr}")
    wall, rss = output.stdout.split()
    return float(wall), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where to write the model (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command; the best wall time is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as scratch:
        workdir = args.workdir or Path(scratch)
        options_path, weights_path = write_original_shaped(workdir / "original")
        file_mb = weights_path.stat().st_size / 2**20
        elmo = [sys.executable, "-m", "modeling_elmo.cli"]
        commands = {
            "import only (fixed cost)": [sys.executable, "-c", IMPORT_ONLY],
            "elmo convert": [*elmo, "convert", "--options", str(options_path), "--weights", str(weights_path),
                             "--output-dir", str(workdir / "hf"), "--overwrite"],
            "elmo export-original": [*elmo, "export-original", "--model", str(workdir / "hf"),
                                     "--output-dir", str(workdir / "exported"), "--overwrite"],
        }  # fmt: skip
        print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
        print(f"weights.hdf5: {file_mb:.1f} MiB\n")
        print(f"| command | wall time (best of {args.repeat}) | peak RSS | peak RSS / file size |")
        print("|---|---|---|---|")
        for label, command in commands.items():
            runs = [measure(command) for _ in range(args.repeat)]
            wall = min(run[0] for run in runs)
            rss = max(run[1] for run in runs)
            print(f"| {label} | {wall:.1f} s | {rss:.0f} MiB | {rss / file_mb:.2f}× |")


if __name__ == "__main__":
    main()
