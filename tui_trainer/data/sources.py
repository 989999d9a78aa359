"""Dataset sources: a file, a directory, a saved dataset, a hub id or a ``demo:`` corpus -> raw records.

Files are parsed by our own streaming readers (not ``datasets``' builders) because only
they can say *which line* is wrong; the records go through :class:`ArrowSink` into Arrow
files and are memory-mapped back, so a file larger than RAM never has to fit in it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from tui_trainer.config.schema import DatasetSpec
from tui_trainer.data.prep.arrow_sink import BATCH_ROWS, ArrowSink
from tui_trainer.data.formats import DATA_EXTENSIONS, is_saved_dataset
from tui_trainer.errors import DataError

SUPPORTED = ", ".join(DATA_EXTENSIONS)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_LIST_KEYS = ("data", "train", "rows", "records", "examples", "items")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ResolvedSource:
    """Where a dataset's records come from, decided before anything is read."""

    kind: str
    """file | directory | saved | hub | demo."""
    path: str
    """The local path (a demo name resolved to its JSONL file) or the hub id."""
    files: tuple[Path, ...] = ()
    """Data files to read, in order; empty for saved datasets and hub ids."""

    @property
    def format(self) -> str:
        """What the TUI shows: the file extension, or demo / saved dataset / directory / hub."""
        if self.kind == "file":
            return Path(self.path).suffix.lstrip(".").lower()
        return {"saved": "saved dataset"}.get(self.kind, self.kind)


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE / HF_DATASETS_OFFLINE say the hub must not be contacted."""
    if any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return True
    return bool(getattr(datasets.config, "HF_HUB_OFFLINE", False))


def _data_files(directory: Path) -> tuple[Path, ...]:
    found = []
    for p in sorted(directory.rglob("*")):
        rel = p.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden files and folders (.git, editor swap files) are never data
        if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS:
            found.append(p)
    return tuple(found)


def _offline_error(repo_id: str) -> DataError:
    return DataError(
        f"{repo_id}: is not a local file and the hub is offline; "
        "download it on a connected machine or give a local path"
    )


def resolve_source(spec: DatasetSpec, *, offline_ok: bool = False) -> ResolvedSource:
    """Decide what ``spec.path`` names; raises DataError for anything that cannot be a dataset.

    ``offline_ok`` lets a hub id through while offline, so a cache entry prepared while
    online can still be found; loading its records then raises the offline error.
    """
    raw = spec.path
    if raw.startswith("demo:"):  # demo.DEMO_PREFIX; demo imports this module, so not imported at the top
        from tui_trainer.demo.catalog import demo_corpus_path

        corpus = demo_corpus_path(raw)
        return ResolvedSource("demo", str(corpus), (corpus,))
    path = Path(raw).expanduser()
    if path.is_dir():
        if is_saved_dataset(path):
            return ResolvedSource("saved", str(path))
        files = _data_files(path)
        if not files:
            raise DataError(
                f"{path}: directory has no data files; supported: {SUPPORTED} "
                "(or a directory written by datasets' save_to_disk)"
            )
        for file in files:
            _check_readable(file)
        return ResolvedSource("directory", str(path), files)
    if path.is_file():
        if path.suffix.lower() not in DATA_EXTENSIONS:
            raise DataError(
                f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; supported: {SUPPORTED}"
            )
        _check_readable(path)
        return ResolvedSource("file", str(path), (path,))
    looks_local = path.suffix.lower() in DATA_EXTENSIONS or raw.startswith((".", "/", "~")) or "\\" in raw
    if looks_local or not _HUB_ID.match(raw):
        raise DataError(f"{path}: file not found; check data.datasets[].path (relative paths start where you run)")
    if hub_offline() and not offline_ok:
        raise _offline_error(raw)
    return ResolvedSource("hub", raw)


def _check_readable(path: Path) -> None:
    """Open the file once now, so an unreadable one is named before the cache or a reader trips on it."""
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise unreadable_error(path, err) from None


def unreadable_error(path: Path, err: OSError) -> DataError:
    hint = (
        f"give your user read permission (chmod u+r {path}) or copy the file somewhere readable"
        if isinstance(err, PermissionError)
        else "check that the file is intact and readable"
    )
    return DataError(f"{path}: cannot open the file ({err.strerror or type(err).__name__}); {hint}")


def _json_reason(err: json.JSONDecodeError) -> str:
    # Some of json's messages end in " at" because they expect a position after them
    # ("Invalid control character at"); the position is added here, once.
    return f"{err.msg.removesuffix(' at')} at column {err.colno}"


# --- readers: each yields (line number, record dict) and raises DataError naming the line ----------


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark (Excel, Notepad) is not content
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                bad = raw[err.start : err.start + 4]
                raise DataError(
                    f"{path} line {n}: undecodable bytes {bad!r} at column {err.start + 1} "
                    "(not UTF-8); re-save the file as UTF-8"
                ) from None


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in _decoded_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path} line {n}: malformed JSON ({_json_reason(err)}); "
                "each line must hold one complete JSON object"
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{path} line {n} is not a JSON object (got {type(obj).__name__}); "
                'each line must be an object such as {"text": "..."}'
            )
        yield n, obj


def _json_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path} line {line}: undecodable bytes {raw[err.start : err.start + 4]!r} (not UTF-8); "
            "re-save the file as UTF-8"
        ) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # one object per line in a .json file: read it as JSONL
            yield from _jsonl_records(path)
            return
        raise DataError(f"{path} line {err.lineno}: malformed JSON ({_json_reason(err)})") from None
    items = _json_items(path, obj)
    del obj, text, raw
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DataError(f"{path}: item {i} of the list is not a JSON object (got {type(item).__name__})")
        yield i + 1, item


def _json_items(path: Path, obj: Any) -> list[Any]:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        lists = [k for k, v in obj.items() if isinstance(v, list)]
        for key in _LIST_KEYS:
            if key in lists:
                return obj[key]
        if len(lists) == 1:
            return obj[lists[0]]
        keys = ", ".join(map(repr, obj)) or "none"
        raise DataError(
            f"{path}: expected a list of records, or an object holding one such as {{\"data\": [...]}}; "
            f"found an object with keys {keys}"
        )
    raise DataError(f"{path}: expected a list of JSON objects, got a single {type(obj).__name__}")


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    csv.field_size_limit(2**31 - 1)
    lines = _decoded_lines(path)
    reader = csv.reader(line for _, line in lines)
    header: list[str] | None = None
    last = 0
    for row in reader:
        start, last = last + 1, reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if header is None:
            header = [h.strip() for h in row]
            continue
        if len(row) != len(header):
            raise DataError(
                f"{path} line {start}: {len(row)} fields but the header has {len(header)} "
                f"({', '.join(header)}); quote values that contain commas"
            )
        yield start, dict(zip(header, row))


def _txt_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """One record per blank-line-separated block (a file without blank lines is one document)."""
    block: list[str] = []
    first = 0
    for n, line in _decoded_lines(path):
        if line.strip():
            if not block:
                first = n
            block.append(line)
        elif block:
            yield first, {"text": "".join(block).rstrip("\r\n")}
            block = []
    if block:
        yield first, {"text": "".join(block).rstrip("\r\n")}


_READERS = {".jsonl": _jsonl_records, ".json": _json_records, ".csv": _csv_records, ".txt": _txt_records}


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Records of one data file with their line numbers (Parquet: row numbers)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        row = 0
        for table in _parquet_tables(path, batch_rows=1024):
            for rec in table.to_pylist():
                row += 1
                yield row, rec
        return
    yield from _READERS[suffix](path)


def _parquet_tables(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    try:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=batch_rows):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, OSError) as err:
        raise parquet_error(path, err) from None


def empty_file_error(path: Path) -> DataError:
    return DataError(f"{path}: the file is empty; it needs at least one record")


def no_records_error(path: Path) -> DataError:
    return DataError(f"{path}: no records found (blank lines or a header only); it needs at least one record")


def parquet_error(path: Path, err: Exception) -> DataError:
    return DataError(f"{path}: not a readable Parquet file ({err}); re-export it or use JSONL/CSV")


def _write_file(sink: ArrowSink, path: Path) -> None:
    sink.flush()  # a batch never mixes files, so a type error names the right file and line
    sink.source = path
    if path.stat().st_size == 0:
        raise empty_file_error(path)
    before = sink.total
    if path.suffix.lower() == ".parquet":
        row = 0
        for table in _parquet_tables(path):
            sink.write_table(table, row + 1, row + table.num_rows, unit="rows")
            row += table.num_rows
    else:
        for line, record in _READERS[path.suffix.lower()](path):
            sink.add(line, record)
    if sink.total == before:
        raise no_records_error(path)


def _load_files(files: Iterable[Path], work_dir: Path, label: str) -> datasets.Dataset:
    work_dir.mkdir(parents=True, exist_ok=True)
    sink = ArrowSink(work_dir, Path(label))
    for path in files:
        _write_file(sink, path)
    return sink.finish()


def load_saved(path: Path) -> datasets.Dataset:
    """A ``save_to_disk`` directory as one Dataset (a DatasetDict's train split); a bad one is a DataError naming it."""
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # a corrupt save raises anything from FileNotFoundError to ArrowInvalid
        raise DataError(f"{path}: cannot read the saved dataset ({type(err).__name__}: {err})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise DataError(f"{path}: saved DatasetDict has no 'train' split; splits are {', '.join(loaded)}")
        loaded = loaded["train"]
    if len(loaded) == 0:
        raise DataError(f"{path}: the saved dataset has no rows")
    return loaded


def _unreachable(err: BaseException | None) -> bool:
    """Whether an exception (or one it wraps) says the hub could not be reached."""
    while err is not None:
        names = " ".join(c.__name__ for c in type(err).__mro__)
        if any(word in names for word in ("Connection", "Timeout", "Offline")):
            return True
        err = err.__cause__ or err.__context__
    return False


def _load_hub(repo_id: str) -> datasets.Dataset:
    try:
        return datasets.load_dataset(repo_id, split="train")
    except Exception as err:  # network, auth, missing repo or split: all mean "not usable from here"
        if _unreachable(err):
            raise _offline_error(repo_id) from None
        raise DataError(
            f"{repo_id}: is not a local file and could not be loaded from the hub "
            f"({type(err).__name__}: {err}); download it on a connected machine or give a local path"
        ) from None


def load_records(spec: DatasetSpec, *, work_dir: Path | None = None) -> datasets.Dataset:
    """The raw records of one dataset as a memory-mapped ``datasets.Dataset``.

    ``work_dir`` receives the Arrow files parsed from text formats; without it a temporary
    directory is used and removed once the returned dataset is garbage-collected.
    """
    source = resolve_source(spec)
    if source.kind == "saved":
        return load_saved(Path(source.path))
    if source.kind == "hub":
        return _load_hub(source.path)
    if work_dir is not None:
        return _load_files(source.files, Path(work_dir), source.path)
    tmp = Path(tempfile.mkdtemp(prefix="tui-trainer-records-"))
    try:
        ds = _load_files(source.files, tmp, source.path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    weakref.finalize(ds, shutil.rmtree, tmp, True)
    return ds
