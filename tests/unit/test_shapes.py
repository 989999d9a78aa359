"""Record shape detection and field mapping."""

from __future__ import annotations

import pytest

from tests.unit.data_fixtures import spec
from tui_trainer.data.prep.shapes import RecordShape, detect_shape
from tui_trainer.errors import DataError


def detect(columns, **fields) -> RecordShape:
    return detect_shape(columns, spec("x.jsonl", **fields), "x.jsonl")


@pytest.mark.parametrize(("columns", "kind", "fields"), [
    (["id", "text"], "text", {"text": "text"}),
    (["content"], "text", {"text": "content"}),
    (["prompt", "completion", "text"], "prompt_completion", {"prompt": "prompt", "completion": "completion"}),
    (["question", "answer"], "prompt_completion", {"prompt": "question", "completion": "answer"}),
    (["instruction", "input", "output"], "prompt_completion", {"prompt": "instruction", "completion": "output"}),
    (["messages", "text"], "messages", {"messages": "messages"}),
    (["conversations"], "messages", {"messages": "conversations"}),
    (["input_ids", "text"], "pretokenized", {"input_ids": "input_ids"}),
    (["input_ids", "labels"], "pretokenized", {"input_ids": "input_ids", "labels": "labels"}),
])
def test_detection(columns, kind, fields):
    assert detect(columns) == RecordShape(kind, fields)


def test_explicit_fields_win_over_detection():
    assert detect(["text", "body", "input_ids"], text_field="body") == RecordShape("text", {"text": "body"})
    assert detect(["q", "a", "messages"], prompt_field="q", completion_field="a") == RecordShape(
        "prompt_completion", {"prompt": "q", "completion": "a"}
    )
    assert detect(["chat", "text"], messages_field="chat") == RecordShape("messages", {"messages": "chat"})


def test_one_half_of_a_pair_guesses_the_other():
    assert detect(["question", "answer"], prompt_field="question").fields == {"prompt": "question", "completion": "answer"}
    with pytest.raises(DataError, match="set completion_field too"):
        detect(["p", "c"], prompt_field="p")


@pytest.mark.parametrize(("attr", "value"), [
    ("text_field", "body"), ("messages_field", "chat"), ("prompt_field", "q"),
])
def test_missing_field_lists_existing_fields(attr, value):
    kwargs = {attr: value}
    if attr == "prompt_field":
        kwargs["completion_field"] = "text"
    with pytest.raises(DataError) as info:
        detect(["text", "id"], **kwargs)
    msg = str(info.value)
    assert msg.startswith(f"x.jsonl: field {value!r} not found") and attr in msg
    assert msg.endswith("the records have the fields: text, id")


def test_two_explicit_shapes_conflict():
    with pytest.raises(DataError, match="set only one of"):
        detect(["text", "messages"], text_field="text", messages_field="messages")


def test_undetectable_shape_says_what_to_set():
    with pytest.raises(DataError) as info:
        detect(["foo", "bar"])
    assert "fields: foo, bar" in str(info.value) and "text_field" in str(info.value)
