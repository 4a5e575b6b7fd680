"""The Parquet output of `elmo embed` (`OUT.parquet`, or `--output-format parquet`): one row per input line, in
input order, written through `pyarrow`, so that `datasets.load_dataset("parquet", data_files=...)`, pandas,
DuckDB and Spark read it as a table.

Columns:

- `line` (int64): the 0-based line index;
- `text` (string): the sentence (the line without surrounding whitespace, or a JSON Lines text or joined tokens);
- `words` (list of strings): the words the model saw;
- `offsets` (list of [start, end] int32 pairs, `text[start:end] == word`): only without `--tokenized`; null for a
  line whose words were given (a JSON Lines `tokens` list);
- `vectors`: the same arrays as the HDF5 datasets, as nested lists whose innermost list is one vector of 2P
  floats (float32, or float16 with `--dtype float16`): `--layers all` gives L + 1 lists of one vector per word,
  every other choice one vector per word; with `--pool`, L + 1 vectors or one vector.

Each window of lines becomes one part file (`window-NNNNNNNN.parquet`, one row group, with page checksums and the
window's input hash in its metadata) and, in the output, one row group: the file is assembled from the parts
exactly as the HDF5 output is, so resumption and distributed runs work the same way. Memory holds one window of
vectors (lower `--window` for `--layers all` with a large model), never anything per line of the whole input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modeling_elmo.conversion.folder import naming_os_errors
from modeling_elmo.embed_options import EmbedError

if TYPE_CHECKING:
    import pyarrow as pa

    from modeling_elmo.embed_options import Embedder, EmbedOptions, InputLine

PART_METADATA_KEY = b"modeling_elmo.window"
COMPRESSION = "zstd"


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise EmbedError("a Parquet output needs pyarrow: pip install 'modeling-elmo[parquet]'") from None
    return pyarrow


def check_parquet_options(options: EmbedOptions) -> None:
    """Refuse what only names HDF5 datasets (and check that pyarrow is there)."""
    if options.use_sentence_keys:
        raise EmbedError(
            "--use-sentence-keys names HDF5 datasets; a Parquet output has one row per line with its line number "
            "and text instead"
        )
    _pyarrow()


class ParquetWindows:
    """Window part files and the assembled output in Parquet (see the module docstring)."""

    suffix = ".parquet"

    def write_window(
        self,
        embedder: Embedder,
        window: Sequence[InputLine],
        path: Path,
        digest: str,
        options: EmbedOptions,
        on_line_done: Callable[[int], None],
    ) -> None:
        """Embed one window and write its rows, in input order, to `path` (via a `.tmp` file renamed when
        complete and flushed to the disk)."""
        pa = _pyarrow()
        spans = [None if line.words is not None else embedder.tokenizer.split_words(line.sentence) for line in window]
        word_lists = [
            line.words if line.words is not None else [word for word, _ in line_spans]
            for line, line_spans in zip(window, spans, strict=True)
        ]
        arrays: list[np.ndarray | None] = [None] * len(window)
        results = embedder.iter_embeddings(
            word_lists, options.layers, options.mix_weights, options.gamma, options.pool, options.batch_size
        )
        for position, array in results:
            arrays[position] = array.astype(options.dtype, copy=False)
            on_line_done(len(word_lists[position]))
        columns = {
            "line": pa.array([line.index for line in window], pa.int64()),
            "text": pa.array([line.sentence for line in window], pa.string()),
            "words": pa.array(word_lists, pa.list_(pa.string())),
        }
        if not options.tokenized:
            columns["offsets"] = pa.array(
                [None if line_spans is None else [list(span) for _, span in line_spans] for line_spans in spans],
                pa.list_(pa.list_(pa.int32(), 2)),
            )
        columns["vectors"] = vector_column(arrays, options.pool is not None and options.layers == "all")
        metadata = {"first_line": window[0].index, "count": len(window), "digest": digest}
        table = pa.table(columns).replace_schema_metadata({PART_METADATA_KEY: json.dumps(metadata)})
        _write_table(table, path.with_name(path.name + ".tmp"))
        os.replace(path.with_name(path.name + ".tmp"), path)

    def done_digest(self, path: Path) -> str | None:
        """The input hash of a finished part file, or None if it is unreadable, truncated or incomplete."""
        pa = _pyarrow()
        try:
            part = pa.parquet.ParquetFile(path)
            metadata = json.loads(part.schema_arrow.metadata[PART_METADATA_KEY])
            if part.metadata.num_rows != metadata["count"] or part.metadata.num_row_groups != 1:
                return None
            return str(metadata["digest"])
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
            return None

    def assemble(self, work: Path, output_tmp: Path, part_paths: Sequence[Path], options: EmbedOptions) -> int:
        """Write the parts, in order, as the row groups of `output_tmp`; returns the number of lines. A part
        whose pages fail their checksums is an `EmbedError` naming it (after removing it, so that the same command
        redoes that window)."""
        pa = _pyarrow()
        lines = 0
        writer = None
        with naming_os_errors(output_tmp), output_tmp.open("wb") as handle:
            try:
                for part_path in part_paths:
                    try:
                        table = pa.parquet.read_table(part_path, page_checksum_verification=True)
                    except (OSError, pa.ArrowException) as error:
                        part_path.unlink(missing_ok=True)
                        raise EmbedError(
                            f"the window file {part_path} is damaged ({' '.join(str(error).split())}); it was removed: "
                            "run the same command again to redo that window"
                        ) from None
                    table = table.replace_schema_metadata(None)
                    if writer is None:
                        writer = _writer(pa, handle, table.schema)
                    writer.write_table(table, row_group_size=max(len(table), 1))
                    lines += len(table)
            finally:
                if writer is not None:
                    writer.close()
            handle.flush()
            os.fsync(handle.fileno())
        return lines


def _writer(pa: Any, sink: Any, schema: pa.Schema) -> Any:
    return pa.parquet.ParquetWriter(sink, schema, compression=COMPRESSION, write_page_checksum=True)


def _write_table(table: pa.Table, path: Path) -> None:
    """Write `table` as one row group to `path`, flushed to the disk."""
    pa = _pyarrow()
    with naming_os_errors(path), path.open("wb") as handle:
        writer = _writer(pa, handle, table.schema)
        try:
            writer.write_table(table, row_group_size=max(len(table), 1))
        finally:
            writer.close()
        handle.flush()
        os.fsync(handle.fileno())


def vector_column(arrays: Sequence[np.ndarray], pooled_layers: bool) -> pa.Array:
    """One Arrow value per array, all of the same rank: (D,) → a fixed-size list of D floats; (W, D) words → a
    list of W such vectors; (L, D) pooled layers (`pooled_layers`) and (L, W, D) layers of words → a fixed-size
    list of L of those."""
    pa = _pyarrow()
    first = arrays[0]
    values = pa.array(np.concatenate([array.reshape(-1) for array in arrays]))
    vectors = pa.FixedSizeListArray.from_arrays(values, first.shape[-1])
    if first.ndim == 1:
        return vectors
    if first.ndim == 3:  # (L, W, D): one list of W vectors per (line, layer), then L of them per line
        per_layer = np.repeat([array.shape[1] for array in arrays], first.shape[0])
        return pa.FixedSizeListArray.from_arrays(pa.ListArray.from_arrays(_offsets(per_layer), vectors), first.shape[0])
    if pooled_layers:
        return pa.FixedSizeListArray.from_arrays(vectors, first.shape[0])
    return pa.ListArray.from_arrays(_offsets([array.shape[0] for array in arrays]), vectors)


def _offsets(lengths: Sequence[int] | np.ndarray) -> pa.Array:
    pa = _pyarrow()
    return pa.array(np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int32), pa.int32())
