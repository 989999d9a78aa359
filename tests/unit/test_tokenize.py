"""Records -> input_ids + labels: EOS, prompt masking, chat labels on assistant turns only, pre-tokenized ids."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.unit.data_fixtures import build_tiny_tokenizer, tiny_bos_tokenizer, tiny_tokenizer  # noqa: F401
from tui_trainer.data.prep.shapes import RecordShape
from tui_trainer.data.prep.tokenize import IGNORE_INDEX, BatchTokenizer, chat_spans
from tui_trainer.errors import DataError

TEXT = RecordShape("text", {"text": "text"})
PAIR = RecordShape("prompt_completion", {"prompt": "prompt", "completion": "completion"})
CHAT = RecordShape("messages", {"messages": "messages"})


def run(shape, tokenizer, records) -> list[tuple[list[int], list[int]]]:
    table = pa.Table.from_pylist(records)
    out = BatchTokenizer(shape, tokenizer, "src.jsonl")(table, list(range(len(records))))
    return list(zip(out.column("input_ids").to_pylist(), out.column("labels").to_pylist()))


def encode(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_text_documents_end_with_eos_and_carry_loss_everywhere(tiny_tokenizer):
    [(ids, labels)] = run(TEXT, tiny_tokenizer, [{"text": "hello world"}])
    assert ids == encode(tiny_tokenizer, "hello world") + [tiny_tokenizer.eos_token_id]
    assert labels == ids


def test_bos_is_added_when_the_tokenizer_adds_it(tiny_bos_tokenizer):
    [(ids, _)] = run(TEXT, tiny_bos_tokenizer, [{"text": "hello"}])
    tok = tiny_bos_tokenizer
    assert ids == [tok.bos_token_id] + encode(tok, "hello") + [tok.eos_token_id]


def test_empty_and_missing_texts_are_skipped(tiny_tokenizer):
    out = run(TEXT, tiny_tokenizer, [{"text": ""}, {"text": None}, {"text": "  \n"}, {"text": "kept"}])
    assert len(out) == 1 and out[0][0][:-1] == encode(tiny_tokenizer, "kept")


def test_non_string_text_names_the_record(tiny_tokenizer):
    with pytest.raises(DataError, match=r"src.jsonl record 2: field 'text' is list, expected a string"):
        run(TEXT, tiny_tokenizer, [{"text": None}, {"text": ["a"]}])


def test_prompt_is_masked_and_completion_carries_loss(tiny_tokenizer):
    tok = tiny_tokenizer
    [(ids, labels)] = run(PAIR, tok, [{"prompt": "What is two plus two?", "completion": " Four."}])
    prompt, completion = encode(tok, "What is two plus two?"), encode(tok, " Four.")
    assert ids == prompt + completion + [tok.eos_token_id]
    assert labels == [IGNORE_INDEX] * len(prompt) + completion + [tok.eos_token_id]


def test_pair_without_completion_is_skipped(tiny_tokenizer):
    assert run(PAIR, tiny_tokenizer, [{"prompt": "q", "completion": ""}, {"prompt": "q", "completion": None}]) == []


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello"},
    {"role": "assistant", "content": "hello world"},
    {"role": "user", "content": "and the fox?"},
    {"role": "assistant", "content": "The quick brown fox."},
]


def test_chat_labels_cover_exactly_the_assistant_turns(tiny_tokenizer):
    tok = tiny_tokenizer
    [(ids, labels)] = run(CHAT, tok, [{"messages": CONVERSATION}])
    text = tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert tok.decode(ids) == text + tok.eos_token
    labelled = [t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    assert all(lab in (IGNORE_INDEX, t) for t, lab in zip(ids, labels))
    expected = "hello world<|im_end|>The quick brown fox.<|im_end|>"
    assert tok.decode(labelled) == expected
    # the user's "hello" is not learned even though the assistant says it too
    first_user = text.index("hello")
    assert tok.decode([t for t, lab in zip(ids, labels) if lab == IGNORE_INDEX]).count("hello") == 1
    assert first_user < text.index("hello world")


def test_chat_spans_match_incremental_rendering(tiny_tokenizer):
    text, spans = chat_spans(tiny_tokenizer, CONVERSATION)
    assert [text[s:e] for s, e in spans] == ["hello world<|im_end|>", "The quick brown fox.<|im_end|>"]


def test_sharegpt_from_value_messages(tiny_tokenizer):
    conv = [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]
    [(ids, labels)] = run(CHAT, tiny_tokenizer, [{"messages": conv}])
    labelled = [t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    assert tiny_tokenizer.decode(labelled) == "hello<|im_end|>"


def test_chat_without_assistant_turn_is_skipped(tiny_tokenizer):
    assert run(CHAT, tiny_tokenizer, [{"messages": [{"role": "user", "content": "hi"}]}]) == []


def test_bad_message_names_record_and_index(tiny_tokenizer):
    with pytest.raises(DataError, match=r"src.jsonl record 1: messages\[1\] has no 'role'"):
        run(CHAT, tiny_tokenizer, [{"messages": [{"role": "user", "content": "a"}, {"content": "b"}]}])


def test_chat_needs_a_chat_template():
    tok = build_tiny_tokenizer()
    tok.chat_template = None
    with pytest.raises(DataError, match="no chat template"):
        BatchTokenizer(CHAT, tok, "src.jsonl")


PRE = RecordShape("pretokenized", {"input_ids": "input_ids"})
PRE_LABELS = RecordShape("pretokenized", {"input_ids": "input_ids", "labels": "labels"})


def test_pretokenized_labels_default_to_input_ids(tiny_tokenizer):
    assert run(PRE, tiny_tokenizer, [{"input_ids": [5, 6, 7]}, {"input_ids": []}]) == [([5, 6, 7], [5, 6, 7])]


def test_pretokenized_keeps_given_labels(tiny_tokenizer):
    out = run(PRE_LABELS, tiny_tokenizer, [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}])
    assert out == [([5, 6, 7], [-100, 6, 7])]


@pytest.mark.parametrize(("bad", "shown"), [(400, "400"), (-3, "-3"), (10**6, "1000000")])
def test_pretokenized_id_outside_vocabulary_names_record_and_id(tiny_tokenizer, bad, shown):
    records = [{"input_ids": [1, 2]}, {"input_ids": [3, 4]}, {"input_ids": [5, bad, 6]}]
    with pytest.raises(DataError) as info:
        run(PRE, tiny_tokenizer, records)
    msg = str(info.value)
    assert msg.startswith(f"src.jsonl record 3: input_ids holds id {shown}, outside the tokenizer's vocabulary [0, 400)")


def test_pretokenized_non_integer_id(tiny_tokenizer):
    with pytest.raises(DataError, match=r"record 1: input_ids holds 1.5, not an integer"):
        run(PRE, tiny_tokenizer, [{"input_ids": [1.0, 1.5]}])


def test_pretokenized_labels_must_match_ids_in_length(tiny_tokenizer):
    with pytest.raises(DataError, match="record 1: labels and input_ids have different lengths"):
        run(PRE_LABELS, tiny_tokenizer, [{"input_ids": [1, 2], "labels": [1]}])


def test_messages_stored_as_a_json_string(tiny_tokenizer):
    import json

    [(ids, labels)] = run(CHAT, tiny_tokenizer, [{"messages": json.dumps(CONVERSATION[1:3])}])
    labelled = [t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    assert tiny_tokenizer.decode(labelled) == "hello world<|im_end|>"


def test_template_that_ends_turns_with_eos_gets_no_second_eos():
    tok = build_tiny_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}{{ bos_token + m['role'] + '\\n' + m['content'] + eos_token + '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ bos_token + 'assistant\\n' }}{% endif %}"
    )
    [(ids, labels)] = run(CHAT, tok, [{"messages": CONVERSATION[1:3]}])
    assert tok.decode(ids) == "<s>user\nhello</s>\n<s>assistant\nhello world</s>\n"
    assert tok.decode([t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]) == "hello world</s>"


@pytest.mark.parametrize(("ids", "shown"), [([[1, None]], "None"), ([["7"]], "'7'"), ([[1.0, float("inf")]], "inf")])
def test_pretokenized_values_that_are_not_token_ids(tiny_tokenizer, ids, shown):
    with pytest.raises(DataError, match=rf"record 1: input_ids holds {shown}, not an integer token id"):
        run(PRE, tiny_tokenizer, [{"input_ids": i} for i in ids])


def test_pretokenized_whole_floats_are_accepted(tiny_tokenizer):
    assert run(PRE, tiny_tokenizer, [{"input_ids": [1.0, 2.0]}]) == [([1, 2], [1, 2])]
