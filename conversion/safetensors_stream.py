"""Write and check `.safetensors` files one tensor block at a time, without holding a whole model in memory.

The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
JSON header `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}` (padded with
spaces), then the tensors' bytes back to back, in C order, with no holes. Because every offset is known from
the shapes alone, the header can be written first and each tensor streamed after it, block by block (a
tensor stacked over directions is the concatenation of its directions' blocks).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_HEADER_ALIGNMENT = 8
# How each float dtype's bytes are read (little-endian); BF16 is widened to float32 by a bit shift.
_NUMPY_STORAGE = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


class SafetensorsError(Exception):
    """A `.safetensors` file is unreadable, truncated, or a block does not fit its tensor."""


@dataclass(frozen=True)
class StreamedTensor:
    """One float32 tensor of the file: its name, shape, and the blocks (callables returning arrays) whose
    float32 bytes, concatenated in order, are the tensor's bytes in C order."""

    name: str
    shape: tuple[int, ...]
    blocks: Sequence[Callable[[], np.ndarray]]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * 4


def write_streamed(path: str | os.PathLike, tensors: Iterable[StreamedTensor], metadata: dict[str, str]) -> None:
    """Write `tensors` to `path` as safetensors; at most one block is in memory at a time."""
    tensors = list(tensors)
    header: dict[str, object] = {"__metadata__": dict(metadata)}
    offset = 0
    for tensor in tensors:
        header[tensor.name] = {
            "dtype": "F32",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + tensor.nbytes],
        }
        offset += tensor.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % _HEADER_ALIGNMENT)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for tensor in tensors:
            written = 0
            for block in tensor.blocks:
                array = np.ascontiguousarray(block(), dtype=np.float32)
                written += array.nbytes
                if written > tensor.nbytes:
                    break
                handle.write(memoryview(array).cast("B"))
            if written != tensor.nbytes:
                raise SafetensorsError(
                    f"the blocks of {tensor.name!r} hold {written} bytes, shape {tensor.shape} needs {tensor.nbytes}"
                )


def read_tensor(path: str | os.PathLike, header: dict[str, dict], name: str) -> np.ndarray:
    """Tensor `name` of a safetensors file (whose `read_header` is `header`) as float32, read from disk into its
    own memory (no memory map, so only this tensor counts towards the process's resident memory)."""
    entry = header[name]
    begin, end = entry["data_offsets"]
    storage = _NUMPY_STORAGE.get(entry["dtype"])
    if storage is None:
        raise SafetensorsError(f"{path}: tensor {name!r} has dtype {entry['dtype']}, not a float type")
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + header_size + begin)
        data = handle.read(end - begin)
    if len(data) != end - begin:
        raise SafetensorsError(f"{path} is truncated inside tensor {name!r}")
    array = np.frombuffer(data, dtype=storage)
    if entry["dtype"] == "BF16":  # bfloat16 is the upper half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32, copy=False).reshape(entry["shape"])


def read_header(path: str | os.PathLike) -> dict[str, dict]:
    """The tensors' entries of a safetensors file's header (`{name: {"dtype", "shape", "data_offsets"}}`),
    after checking that the header is well-formed and that the file holds every byte it promises."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise SafetensorsError(f"{path} is truncated: {size} bytes, too short for a safetensors header")
            (header_size,) = struct.unpack("<Q", prefix)
            if header_size > size - 8:
                raise SafetensorsError(
                    f"{path} is truncated: its header claims {header_size} bytes, the file has {size - 8} after it"
                )
            header_bytes = handle.read(header_size)
    except OSError as error:
        raise SafetensorsError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SafetensorsError(f"{path} is not a safetensors file (its header is not JSON: {error})") from error
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path} is not a safetensors file (its header is not a JSON object)")
    header.pop("__metadata__", None)
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(v, int) for v in offsets)):
            raise SafetensorsError(f"{path} is not a valid safetensors file (bad header entry for {name!r})")
    data_size = size - 8 - header_size
    end = max((entry["data_offsets"][1] for entry in header.values()), default=0)
    if end > data_size:
        missing = [name for name, entry in header.items() if entry["data_offsets"][1] > data_size]
        raise SafetensorsError(
            f"{path} is truncated: its tensors need {end} bytes of data, the file has {data_size} "
            f"(incomplete: {', '.join(sorted(missing)[:3])}{', ...' if len(missing) > 3 else ''})"
        )
    return header
