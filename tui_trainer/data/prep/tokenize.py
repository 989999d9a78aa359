"""Records -> documents of ``input_ids`` + ``labels`` (-100 where no loss is taken).

Every document ends with EOS so packed documents stay delimited. Loss is taken on all of
a ``text`` document, only on the completion of a prompt+completion pair, and only on the
assistant turns of a chat. Assistant spans are found by rendering the conversation turn
by turn, which works with any chat template (``{% generation %}`` support is rare).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tui_trainer.data.prep.shapes import RecordShape
from tui_trainer.errors import DataError

IGNORE_INDEX = -100
TOKEN_LIST = pa.list_(pa.int32())
ROW_SCHEMA = pa.schema([("input_ids", TOKEN_LIST), ("labels", TOKEN_LIST)])
"""Columns of tokenized documents and of packed rows alike."""
FEATURES = datasets.Features.from_arrow_schema(ROW_SCHEMA)
_ROLE_ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}
MAP_BATCH = 256


def bos_prefix(tokenizer) -> list[int]:
    """``[bos]`` when the tokenizer adds BOS to plain text by itself (Llama), else ``[]`` (GPT-2, Qwen)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return []
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return [bos] if ids and ids[0] == bos else []


def _strings(column: list[Any], field: str, source: str, indices: list[int]) -> list[str | None]:
    out: list[str | None] = []
    for value, row in zip(column, indices):
        if value is None or isinstance(value, str):
            out.append(value)
        else:
            raise DataError(
                f"{source} record {row + 1}: field {field!r} is {type(value).__name__}, expected a string"
            )
    return out


def _normalize_chat(value: Any, field: str, source: str, row: int) -> list[dict[str, str]]:
    where = f"{source} record {row + 1}: {field}"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{where} is a string that is not a JSON list of messages") from None
    if not isinstance(value, list):
        raise DataError(f"{where} must be a list of {{'role': ..., 'content': ...}} objects")
    out = []
    for j, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise DataError(f"{where}[{j}] is not an object with 'role' and 'content'")
        role = msg.get("role") or msg.get("from")  # ShareGPT uses from/value
        content = msg.get("content") if msg.get("content") is not None else msg.get("value")
        if not isinstance(role, str):
            raise DataError(f"{where}[{j}] has no 'role' (expected {{'role': 'user', 'content': '...'}})")
        if content is not None and not isinstance(content, str):
            raise DataError(f"{where}[{j}].content is {type(content).__name__}, expected a string")
        out.append({"role": _ROLE_ALIASES.get(role, role), "content": content or ""})
    return out


def chat_spans(tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns.

    The span of turn i is what rendering turns 0..i adds after the generation prompt of
    turns 0..i-1; a template that rewrites earlier turns falls back to the content itself.
    """

    def render(msgs: list[dict[str, str]], gen: bool) -> str:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    full = render(messages, False)
    spans: list[tuple[int, int]] = []
    done = 0
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        try:
            prefix = render(messages[:i], True)
        except Exception:  # some templates refuse an empty or user-less conversation
            prefix = ""
        upto = render(messages[: i + 1], False)
        if full.startswith(upto) and upto.startswith(prefix) and len(prefix) >= done and len(upto) > len(prefix):
            # The newline a template writes after a turn's end token (ChatML) is layout, not the reply.
            span = (len(prefix), max(len(upto.rstrip()), len(prefix) + 1))
        else:
            pos = full.find(msg["content"], done) if msg["content"] else -1
            if pos < 0:
                continue
            span = (pos, pos + len(msg["content"]))
        spans.append(span)
        done = span[1]
    return full, spans


class BatchTokenizer:
    """The batched ``map`` function: an Arrow batch of records -> an Arrow batch of documents."""

    def __init__(self, shape: RecordShape, tokenizer, source: str) -> None:
        self.shape = shape
        self.tokenizer = tokenizer
        self.source = source
        self.eos = tokenizer.eos_token_id
        self.prefix = bos_prefix(tokenizer)
        self.vocab = len(tokenizer)
        if shape.kind == "messages" and not getattr(tokenizer, "chat_template", None):
            raise DataError(
                f"{source}: records are chat messages but the tokenizer has no chat template; "
                "use a chat model's tokenizer or give text_field / prompt_field + completion_field"
            )

    def __call__(self, batch: pa.Table, indices: list[int]) -> pa.Table:
        if self.shape.kind == "pretokenized":
            return self._pretokenized(batch, indices)
        handler = {"text": self._text, "prompt_completion": self._pairs, "messages": self._chat}[self.shape.kind]
        ids, labels = handler(batch, indices)
        return pa.table([pa.array(ids, TOKEN_LIST), pa.array(labels, TOKEN_LIST)], schema=ROW_SCHEMA)

    def _encode(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]

    def _close(self, ids: list[int], labels: list[int]) -> None:
        """End the document with EOS; EOS carries loss when the token before it does."""
        if self.eos is not None and (not ids or ids[-1] != self.eos):
            ids.append(self.eos)
            labels.append(self.eos if labels and labels[-1] != IGNORE_INDEX else IGNORE_INDEX)

    def _text(self, batch: pa.Table, indices: list[int]) -> tuple[list, list]:
        field = self.shape.fields["text"]
        texts = _strings(batch.column(field).to_pylist(), field, self.source, indices)
        kept = [t for t in texts if t is not None and t.strip()]
        ids_out, labels_out = [], []
        for enc in self._encode(kept):
            ids = self.prefix + enc
            labels = list(ids)
            self._close(ids, labels)
            ids_out.append(ids)
            labels_out.append(labels)
        return ids_out, labels_out

    def _pairs(self, batch: pa.Table, indices: list[int]) -> tuple[list, list]:
        pf, cf = self.shape.fields["prompt"], self.shape.fields["completion"]
        prompts = _strings(batch.column(pf).to_pylist(), pf, self.source, indices)
        completions = _strings(batch.column(cf).to_pylist(), cf, self.source, indices)
        keep = [i for i, c in enumerate(completions) if c is not None and c.strip()]
        p_enc = self._encode([prompts[i] or "" for i in keep])
        c_enc = self._encode([completions[i] for i in keep])
        ids_out, labels_out = [], []
        for p, c in zip(p_enc, c_enc):
            head = self.prefix + p
            ids = head + c
            labels = [IGNORE_INDEX] * len(head) + c
            self._close(ids, labels)
            ids_out.append(ids)
            labels_out.append(labels)
        return ids_out, labels_out

    def _chat(self, batch: pa.Table, indices: list[int]) -> tuple[list, list]:
        field = self.shape.fields["messages"]
        texts, spans = [], []
        for value, row in zip(batch.column(field).to_pylist(), indices):
            if value is None:
                continue
            messages = _normalize_chat(value, field, self.source, row)
            try:
                text, turn_spans = chat_spans(self.tokenizer, messages)
            except Exception as err:  # jinja raises its own errors for conversations a template rejects
                raise DataError(
                    f"{self.source} record {row + 1}: the tokenizer's chat template failed on this "
                    f"conversation ({type(err).__name__}: {err})"
                ) from None
            if turn_spans:  # a chat without an assistant turn has nothing to learn from
                texts.append(text)
                spans.append(turn_spans)
        if not texts:
            return [], []
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids_out, labels_out = [], []
        eos_text = self.tokenizer.eos_token or "\0"
        for text, ids, offsets, turn_spans in zip(texts, enc["input_ids"], enc["offset_mapping"], spans):
            off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
            mask = np.zeros(len(ids), dtype=bool)
            for start, end in turn_spans:
                mask |= (off[:, 0] < end) & (off[:, 1] > start)
            if not mask.any():
                continue
            arr = np.asarray(ids, dtype=np.int64)
            labels = np.where(mask, arr, IGNORE_INDEX).tolist()
            ids = list(ids)
            if not text.rstrip().endswith(eos_text):  # templates that end turns with EOS delimit already
                self._close(ids, labels)
            ids_out.append(ids)
            labels_out.append(labels)
        return ids_out, labels_out

    def _pretokenized(self, batch: pa.Table, indices: list[int]) -> pa.Table:
        ids_col = batch.column(self.shape.fields["input_ids"])
        keep = pc.and_kleene(pc.is_valid(ids_col), pc.greater(pc.list_value_length(ids_col), 0))
        keep = pc.fill_null(keep, False)
        batch = batch.filter(keep)
        rows = np.asarray(indices)[np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)]
        ids = self._checked_ids(batch.column(self.shape.fields["input_ids"]), rows, "input_ids", allow_ignore=False)
        labels = ids
        if "labels" in self.shape.fields:
            labels = self._checked_ids(batch.column(self.shape.fields["labels"]), rows, "labels", allow_ignore=True)
            same = pc.equal(pc.list_value_length(ids), pc.list_value_length(labels)).to_numpy(zero_copy_only=False)
            bad = np.flatnonzero(~np.asarray(same, dtype=bool))
            if bad.size:
                raise DataError(
                    f"{self.source} record {rows[bad[0]] + 1}: labels and input_ids have different lengths"
                )
        return pa.table([ids, labels], schema=ROW_SCHEMA)

    def _checked_ids(self, column: pa.ChunkedArray, rows: np.ndarray, field: str, allow_ignore: bool) -> pa.Array:
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise DataError(f"{self.source}: field {field!r} must hold lists of token ids, found {arr.type}")
        values = arr.flatten()
        nums = values.to_numpy(zero_copy_only=False)
        offsets = np.asarray(arr.offsets) - arr.offsets[0].as_py()
        pos = _first_non_integer(values, nums)
        if pos is not None:
            row = int(np.searchsorted(offsets, pos, side="right") - 1)
            raise DataError(
                f"{self.source} record {rows[row] + 1}: {field} holds {values[pos].as_py()!r}, "
                "not an integer token id"
            )
        bad = (nums < 0) | (nums >= self.vocab)
        if allow_ignore:
            bad &= nums != IGNORE_INDEX
        hits = np.flatnonzero(bad)
        if hits.size:
            pos = int(hits[0])
            row = int(np.searchsorted(offsets, pos, side="right") - 1)
            raise DataError(
                f"{self.source} record {rows[row] + 1}: {field} holds id {int(nums[pos])}, outside the "
                f"tokenizer's vocabulary [0, {self.vocab}); re-tokenize with this model's tokenizer, "
                "or drop input_ids so the text is tokenized"
            )
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(nums.astype(np.int32)))


def _first_non_integer(values: pa.Array, nums: np.ndarray) -> int | None:
    """Position of the first value that is not a whole number (null, 1.5, "7", true), if any."""
    if not len(values) or (pa.types.is_integer(values.type) and not values.null_count):
        return None
    if values.null_count:
        return int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
    if nums.dtype.kind != "f":
        return 0  # strings, booleans, nested lists: every value has the wrong type
    hits = np.flatnonzero(~np.isfinite(nums) | (nums != np.round(nums)))
    return int(hits[0]) if hits.size else None


def tokenize_dataset(
    records: datasets.Dataset, shape: RecordShape, tokenizer, *, source: str, cache_file: Path
) -> datasets.Dataset:
    """Tokenize every record with batched ``map``; the result is written to ``cache_file`` (memory-mapped)."""
    fn: Callable[[pa.Table, list[int]], pa.Table] = BatchTokenizer(shape, tokenizer, source)
    return records.with_format("arrow").map(
        fn,
        batched=True,
        batch_size=MAP_BATCH,
        with_indices=True,
        remove_columns=records.column_names,
        features=FEATURES,
        cache_file_name=str(cache_file),
        load_from_cache_file=False,
        new_fingerprint=uuid.uuid4().hex,  # skips hashing the tokenizer; our own cache key covers it
    )
