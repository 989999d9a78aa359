"""Record shapes: which fields hold the text, the prompt and completion, the chat, or token ids.

Fields named in the config win; otherwise the shape is detected from common field names,
so the usual public formats (``text``, ``prompt``/``completion``, ``messages``,
Alpaca's ``instruction``/``output``, ShareGPT's ``conversations``) need no settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tui_trainer.config.schema import DatasetSpec
from tui_trainer.errors import DataError

TEXT_FIELDS = ("text", "content", "document", "body")
PAIR_FIELDS = (
    ("prompt", "completion"),
    ("prompt", "response"),
    ("question", "answer"),
    ("instruction", "output"),
    ("instruction", "response"),
    ("input", "output"),
    ("query", "response"),
)
MESSAGES_FIELDS = ("messages", "conversations", "conversation", "chat")


@dataclass(frozen=True)
class RecordShape:
    """How records turn into training documents."""

    kind: str
    """text | prompt_completion | messages | pretokenized."""
    fields: dict[str, str]
    """Role -> column name: text; prompt + completion; messages; input_ids (+ labels)."""

    def describe(self) -> str:
        """Short human form for previews, e.g. ``prompt_completion (prompt=q, completion=a)``."""
        inner = ", ".join(f"{role}={col}" for role, col in self.fields.items())
        return f"{self.kind} ({inner})"


def _missing(source: str, spec: DatasetSpec, attr: str, field: str, columns: Sequence[str]) -> DataError:
    have = ", ".join(columns) or "(none)"
    return DataError(
        f"{source}: field {field!r} not found (data.datasets {spec.name!r} {attr}); "
        f"the records have the fields: {have}"
    )


def _partner(columns: Sequence[str], known: str, index: int) -> str | None:
    """The other half of a prompt/completion pair whose ``index`` half is ``known``."""
    for pair in PAIR_FIELDS:
        if pair[index] == known and pair[1 - index] in columns:
            return pair[1 - index]
    return None


def _explicit(columns: Sequence[str], spec: DatasetSpec, source: str) -> RecordShape | None:
    chosen = [
        a for a, v in (("text_field", spec.text_field), ("messages_field", spec.messages_field)) if v
    ]
    if spec.prompt_field or spec.completion_field:
        chosen.append("prompt_field/completion_field")
    if len(chosen) > 1:
        raise DataError(
            f"{source}: dataset {spec.name!r} sets {' and '.join(chosen)}; set only one of text_field, "
            "prompt_field + completion_field, or messages_field"
        )
    if spec.messages_field:
        if spec.messages_field not in columns:
            raise _missing(source, spec, "messages_field", spec.messages_field, columns)
        return RecordShape("messages", {"messages": spec.messages_field})
    if spec.prompt_field or spec.completion_field:
        prompt = spec.prompt_field or _partner(columns, spec.completion_field or "", 1)
        completion = spec.completion_field or _partner(columns, spec.prompt_field or "", 0)
        for attr, name in (("prompt_field", prompt), ("completion_field", completion)):
            if name is None:
                raise DataError(
                    f"{source}: dataset {spec.name!r} sets only one of prompt_field/completion_field and the "
                    f"other cannot be guessed; set {attr} too (fields: {', '.join(columns)})"
                )
            if name not in columns:
                raise _missing(source, spec, attr, name, columns)
        return RecordShape("prompt_completion", {"prompt": prompt, "completion": completion})
    if spec.text_field:
        if spec.text_field not in columns:
            raise _missing(source, spec, "text_field", spec.text_field, columns)
        return RecordShape("text", {"text": spec.text_field})
    return None


def detect_shape(columns: Sequence[str], spec: DatasetSpec, source: str) -> RecordShape:
    """The shape of records with these columns; raises DataError naming the missing field."""
    columns = list(columns)
    explicit = _explicit(columns, spec, source)
    if explicit is not None:
        return explicit
    if "input_ids" in columns:
        fields = {"input_ids": "input_ids"}
        if "labels" in columns:
            fields["labels"] = "labels"
        return RecordShape("pretokenized", fields)
    for name in MESSAGES_FIELDS:
        if name in columns:
            return RecordShape("messages", {"messages": name})
    for prompt, completion in PAIR_FIELDS:
        if prompt in columns and completion in columns:
            return RecordShape("prompt_completion", {"prompt": prompt, "completion": completion})
    for name in TEXT_FIELDS:
        if name in columns:
            return RecordShape("text", {"text": name})
    have = ", ".join(columns) or "(none)"
    raise DataError(
        f"{source}: cannot tell which field holds the text (fields: {have}); set text_field, or "
        f"prompt_field + completion_field, or messages_field for dataset {spec.name!r}"
    )
