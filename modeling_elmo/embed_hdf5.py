"""The HDF5 output of `elmo embed` (the default; the layout of the old `allennlp elmo` command, described in
`modeling_elmo.embed`): window part files `window-NNNNNNNN.h5` and their assembly into one file."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

import h5py

from modeling_elmo.conversion.folder import naming_os_errors, new_hdf5_file

if TYPE_CHECKING:
    from modeling_elmo.embed_options import Embedder, EmbedOptions, InputLine

INDEX_DATASET = "sentence_to_index"


class Hdf5Windows:
    """Window part files and the assembled output in HDF5: one dataset per line, plus `sentence_to_index`."""

    suffix = ".h5"

    def write_window(
        self,
        embedder: Embedder,
        window: Sequence[InputLine],
        path: Path,
        digest: str,
        options: EmbedOptions,
        on_line_done: Callable[[int], None],
    ) -> None:
        """Write one window's datasets to `path` (via a `.tmp` file renamed when complete and flushed to the
        disk); `on_line_done(words)` is called as each line is written."""
        word_lists = [line.words if line.words is not None else embedder.split(line.sentence) for line in window]
        temporary = path.with_name(path.name + ".tmp")
        with new_hdf5_file(temporary) as part:
            part.attrs["first_line"] = window[0].index
            part.attrs["count"] = len(window)
            part.attrs["digest"] = digest
            part.attrs["sentences"] = json.dumps([line.sentence for line in window])
            results = embedder.iter_embeddings(
                word_lists, options.layers, options.mix_weights, options.gamma, options.pool, options.batch_size
            )
            for position, array in results:
                part.create_dataset(str(window[position].index), data=array.astype(options.dtype, copy=False))
                on_line_done(len(word_lists[position]))
        os.replace(temporary, path)

    def done_digest(self, path: Path) -> str | None:
        """The input hash of a finished window file, or None if it is unreadable, truncated or incomplete (then
        it is redone)."""
        try:
            with h5py.File(path, "r") as part:
                count = int(part.attrs["count"])
                if len(part) != count or len(json.loads(part.attrs["sentences"])) != count:
                    return None
                return str(part.attrs["digest"])
        except (OSError, KeyError, ValueError):
            return None

    def assemble(self, work: Path, output_tmp: Path, part_paths: Sequence[Path], options: EmbedOptions) -> int:
        """Copy the window files into `output_tmp` in input order and add `sentence_to_index`; returns the
        number of lines."""
        index_text = work / "sentence_to_index.json.tmp"
        with new_hdf5_file(output_tmp, track_order=True) as target:
            with naming_os_errors(index_text), index_text.open("w", encoding="utf-8") as index:
                lines = _copy_windows(target, index, part_paths, options)
            dataset = target.create_dataset(INDEX_DATASET, (1,), dtype=h5py.string_dtype())
            dataset[0] = index_text.read_bytes()
        return lines


def _copy_windows(target: h5py.File, index: IO[str], part_paths: Sequence[Path], options: EmbedOptions) -> int:
    """Copy every window's datasets into `target` and write the `sentence_to_index` JSON object to `index`.
    Returns the number of lines."""
    seen: set[int] = set()
    lines = 0
    index.write("{")
    for part_path in part_paths:
        with h5py.File(part_path, "r") as part:
            sentences = json.loads(part.attrs["sentences"])
            first = int(part.attrs["first_line"])
            for offset, sentence in enumerate(sentences):
                line = first + offset
                name = sentence if options.use_sentence_keys else str(line)
                key = _sentence_key(sentence)
                if key not in seen:
                    seen.add(key)
                    index.write(("" if len(seen) == 1 else ", ") + json.dumps(sentence) + ": " + json.dumps(name))
                if name not in target:
                    part.copy(part[str(line)], target, name=name)
            lines += len(sentences)
    index.write("}")
    return lines


def _sentence_key(sentence: str) -> int:
    """A 128-bit hash of a sentence: `sentence_to_index` remembers these, not the sentences, to find repeats."""
    digest = hashlib.blake2b(sentence.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(digest, "little")
