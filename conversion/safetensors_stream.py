"""Write `.safetensors` files one tensor block at a time, without holding a whole model in memory (reading is
the safetensors library's: `safetensors.safe_open`).

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

import numpy as np

_HEADER_ALIGNMENT = 8


class SafetensorsError(Exception):
    """A block streamed into a `.safetensors` file does not fit its tensor."""


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
