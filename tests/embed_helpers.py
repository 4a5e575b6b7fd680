"""Test helpers (no tests here) for the embedding features: small random ELMo models converted into Hugging Face
folders, and running `elmo embed` and reading its HDF5 output.

The folders are made the way users make them (`convert_original` on files in the bilm-tf layout), so they carry
the remote code, `auto_map` and `custom_pipelines` that loading without this package needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from modeling_elmo.cli import main as elmo_main
from modeling_elmo.conversion.original import convert_original
from original_format import write_random_original


def converted_model(directory: Path, *, seed: int = 3, word_splitter: str = "moses", **sizes) -> Path:
    """Write a random original-format ELMo (sizes as in `write_random_original`, 2 biLSTM layers of P = 8 by
    default) under `directory` and convert it; returns the model folder."""
    options_path, weights_path = write_random_original(directory / "original", seed=seed, **sizes)
    return convert_original(options_path, weights_path, directory / "model", word_splitter=word_splitter)


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write `lines` as UTF-8, each ended by a newline."""
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    return path


def embed(folder: Path, input_path: Path, output_path: Path, *options: str) -> int:
    """Run `elmo embed INPUT OUTPUT --model FOLDER OPTIONS…` in this process; returns the exit status."""
    return elmo_main(["embed", str(input_path), str(output_path), "--model", str(folder), *options])


def read_hdf5(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All datasets but sentence_to_index (in file order), and sentence_to_index decoded."""
    with h5py.File(path, "r") as handle:
        datasets = {name: handle[name][()] for name in handle if name != "sentence_to_index"}
        index = json.loads(handle["sentence_to_index"][0])
    return datasets, index


def assert_same_files(actual: Path, expected: Path) -> None:
    """Same dataset names in the same order, same sentence_to_index, identical arrays and dtypes."""
    actual_datasets, actual_index = read_hdf5(actual)
    expected_datasets, expected_index = read_hdf5(expected)
    assert list(actual_datasets) == list(expected_datasets) and actual_index == expected_index
    for name, array in expected_datasets.items():
        assert actual_datasets[name].dtype == array.dtype
        np.testing.assert_array_equal(actual_datasets[name], array, err_msg=f"dataset {name}")
