"""Records -> Arrow stream files -> one memory-mapped ``datasets.Dataset``.

Records are converted in batches (bounded by rows and bytes) and written as they come,
so memory stays flat whatever the file size. A field whose type drifts between batches
(null at first, an object later) starts a new part file; the parts are conformed to one
unified schema at the end. A field with two incompatible types is reported with the
line where it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from tui_trainer.errors import DataError

BATCH_ROWS = 4096
"""Records per Arrow batch."""
BATCH_BYTES = 8 << 20
"""Text bytes per Arrow batch (long documents flush earlier)."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


@dataclass
class _Part:
    path: Path
    schema: pa.Schema
    source: Path
    first: int
    last: int
    unit: str

    def span(self, label: Path) -> str:
        where = "" if self.source == label else f"{self.source.name} "
        return f"{where}{self.unit} {self.first}-{self.last}"


class ArrowSink:
    """Writes record batches to Arrow stream files, one file per distinct schema.

    ``label`` names the whole source (a file or a directory) in errors about type drift;
    ``source`` is the file being read now and names the line of a bad record.
    """

    def __init__(self, directory: Path, label: Path) -> None:
        self.directory = directory
        self.label = label
        self.source = label
        self.parts: list[_Part] = []
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._rows: list[dict[str, Any]] = []
        self._lines: list[int] = []
        self._bytes = 0
        self.count = 0

    @property
    def total(self) -> int:
        """Records added so far, written or still pending."""
        return self.count + len(self._rows)

    def add(self, line: int, record: dict[str, Any]) -> None:
        self._rows.append(record)
        self._lines.append(line)
        self._bytes += sum(len(v) for v in record.values() if isinstance(v, str))
        if len(self._rows) >= BATCH_ROWS or self._bytes >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        names = list(dict.fromkeys(k for r in self._rows for k in r))
        columns = {}
        for name in names:
            values = [r.get(name) for r in self._rows]
            try:
                columns[name] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as err:
                raise self._type_error(name, values, err) from None
        self.write_table(pa.table(columns), self._lines[0], self._lines[-1])
        self._rows, self._lines, self._bytes = [], [], 0

    def _type_error(self, name: str, values: list[Any], err: Exception) -> DataError:
        first = next(((i, v) for i, v in enumerate(values) if v is not None), None)
        for i, v in enumerate(values):
            if first is not None and v is not None and _kind(v) != _kind(first[1]):
                return DataError(
                    f"{self.source} line {self._lines[i]}: field {name!r} is {_kind(v)} here but "
                    f"{_kind(first[1])} on line {self._lines[first[0]]}; a field must have one type in every record"
                )
        return DataError(
            f"{self.source} lines {self._lines[0]}-{self._lines[-1]}: field {name!r} has values of mixed "
            f"types ({err}); a field must have one type in every record"
        )

    def write_table(self, table: pa.Table, first: int, last: int, unit: str = "lines") -> None:
        """Append a table read from ``self.source`` (its lines or rows ``first``..``last``)."""
        part = self.parts[-1] if self.parts else None
        if self._writer is None or part is None or part.source != self.source or not table.schema.equals(part.schema):
            self._close_writer()
            path = self.directory / f"part-{len(self.parts):05d}.arrow"
            self._writer = pa.ipc.new_stream(str(path), table.schema)
            self.parts.append(_Part(path, table.schema, self.source, first, last, unit))
        self.parts[-1].last = last
        self._writer.write_table(table)
        self.count += table.num_rows

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self) -> datasets.Dataset:
        self.flush()
        self._close_writer()
        schemas = [p.schema for p in self.parts]
        if all(s.equals(schemas[0]) for s in schemas):
            return _concat([datasets.Dataset.from_file(str(p.path)) for p in self.parts])
        try:
            unified = pa.unify_schemas(schemas, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise DataError(f"{self.label}: {self._drift()} ({err}); a field must have one type") from None
        parts = []
        for i, part in enumerate(self.parts):
            path = part.path if part.schema.equals(unified) else self._conform(part, unified, i)
            parts.append(datasets.Dataset.from_file(str(path)))
        return _concat(parts)

    def _drift(self) -> str:
        first: dict[str, tuple[pa.DataType, str]] = {}
        for part in self.parts:
            for f in part.schema:
                seen = first.setdefault(f.name, (f.type, part.span(self.label)))
                if not pa.types.is_null(seen[0]) and not pa.types.is_null(f.type) and seen[0] != f.type:
                    return f"field {f.name!r} is {f.type} in {part.span(self.label)} but {seen[0]} in {seen[1]}"
        return "fields change type between records"

    def _conform(self, part: _Part, schema: pa.Schema, i: int) -> Path:
        path, span = part.path, part.span(self.label)
        with pa.memory_map(str(path)) as src:
            table = pa.ipc.open_stream(src).read_all()
        cols = []
        for f in schema:
            if f.name in table.column_names:
                try:
                    cols.append(table.column(f.name).cast(f.type))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
                    raise DataError(
                        f"{self.label} {span}: field {f.name!r} has type {table.schema.field(f.name).type} "
                        f"here but {f.type} elsewhere ({err}); a field must have one type in every record"
                    ) from None
            else:
                cols.append(pa.nulls(table.num_rows, f.type))
        out = self.directory / f"part-{i:05d}-conformed.arrow"
        with pa.ipc.new_stream(str(out), schema) as writer:
            writer.write_table(pa.Table.from_arrays(cols, schema=schema))
        return out


def _concat(parts: list[datasets.Dataset]) -> datasets.Dataset:
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
