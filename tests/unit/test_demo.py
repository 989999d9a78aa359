"""The embedded demo: corpora extracted from the stdlib, the tiny Llama and its tokenizer, the demo run config."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_trainer import paths
from tui_trainer.config.schema import RunConfig
from tui_trainer.demo import catalog as demo
from tui_trainer.demo import corpus as demo_corpus
from tui_trainer.demo import tiny_llama as demo_model
from tui_trainer.errors import ConfigError, DataError, ModelError, UserError

ROOT = Path(__file__).resolve().parents[2]


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# --- names -------------------------------------------------------------------------------


def test_demo_names_are_recognised_and_other_names_are_not() -> None:
    assert demo.is_demo_name(demo.DEMO_MODEL)
    assert all(demo.is_demo_name(n) for n in demo.DEMO_CORPORA)
    assert demo.is_demo_name("demo:typo")  # so a typo gets the demo-specific error
    assert not demo.is_demo_name("data/train.jsonl")
    assert not demo.is_demo_name("meta-llama/Llama-3.2-1B")


def test_unknown_demo_corpus_is_a_data_error_listing_the_valid_names() -> None:
    with pytest.raises(DataError) as info:
        demo.demo_corpus_path("demo:python-cod")
    message = str(info.value)
    assert "demo:python-cod" in message
    for name in demo.DEMO_CORPORA:
        assert name in message
    assert isinstance(info.value, UserError)


def test_resolve_model_path_leaves_other_names_alone_and_rejects_unknown_demo_models() -> None:
    assert demo.resolve_model_path("some/hub-id") == "some/hub-id"
    assert demo.resolve_model_path("/models/local") == "/models/local"
    with pytest.raises(ModelError, match="demo:tiny-llama"):
        demo.resolve_model_path("demo:tiny-lama")


# --- corpora -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", demo.DEMO_CORPORA)
def test_corpus_is_jsonl_of_text_objects_within_its_cap(name: str) -> None:
    path = demo.demo_corpus_path(name)
    assert path == paths.demo_dir() / "corpora" / f"{name.removeprefix('demo:')}.jsonl"
    rows = _read_jsonl(path)
    assert len(rows) > 50
    assert all(isinstance(r, dict) and set(r) == {"text"} and isinstance(r["text"], str) and r["text"] for r in rows)
    total = sum(len(r["text"].encode("utf-8")) for r in rows)
    cap = demo_corpus.CORPORA[name].cap_bytes
    # Capped, yet filled to a useful size: the stdlib has far more text than either cap.
    assert cap // 2 < total <= cap


def test_corpus_is_reused_not_rewritten() -> None:
    path = demo.demo_corpus_path("demo:python-docs")
    before = path.stat().st_mtime_ns
    assert demo.demo_corpus_path("demo:python-docs") == path
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize("name", demo.DEMO_CORPORA)
def test_corpus_extraction_is_deterministic(name: str) -> None:
    stored = [r["text"] for r in _read_jsonl(demo.demo_corpus_path(name))]
    assert demo_corpus.build_documents(demo_corpus.CORPORA[name]) == stored


def test_code_corpus_is_stdlib_source_without_tests_or_site_packages() -> None:
    texts = [r["text"] for r in _read_jsonl(demo.demo_corpus_path("demo:python-code"))]
    headers = [t.split("\n", 1)[0].removeprefix("# ") for t in texts]
    assert headers == sorted(headers)
    assert all(h.endswith(".py") for h in headers)
    for h in headers:
        parts = h.split("/")
        assert not {"test", "tests", "idle_test", "site-packages", "encodings"} & set(parts), h
        assert (demo_corpus.stdlib_root() / h).is_file()
    assert any("def " in t for t in texts)


def test_docs_corpus_holds_docstrings_not_code() -> None:
    texts = set(r["text"] for r in _read_jsonl(demo.demo_corpus_path("demo:python-docs")))
    # Module and function docstrings of the json package, as ast cleans them.
    assert inspect.cleandoc(json.__doc__) in texts
    assert inspect.cleandoc(json.dumps.__doc__) in texts
    assert not any(t.startswith("# ") and t.split("\n", 1)[0].endswith(".py") for t in texts)


def test_capped_stops_at_the_first_document_past_the_cap() -> None:
    docs = ["aaaa", "bb", "cccccc", "d"]
    assert demo_corpus.capped(iter(docs), 6) == ["aaaa", "bb"]
    assert demo_corpus.capped(iter(docs), 3) == []


def test_jsonl_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "c" / "x.jsonl"
    demo_corpus.write_jsonl_atomic(target, ["one\nline two", 'quote " and ünïcode'])
    assert [r["text"] for r in _read_jsonl(target)] == ["one\nline two", 'quote " and ünïcode']
    assert os.listdir(target.parent) == ["x.jsonl"]


# --- model and tokenizer -----------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return demo.ensure_demo_model()


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


@pytest.mark.slow
def test_model_dir_is_under_the_demo_home_and_resolved_by_name(model_dir: Path) -> None:
    assert model_dir == paths.demo_dir() / "tiny-llama"
    assert demo.resolve_model_path(demo.DEMO_MODEL) == str(model_dir)
    leftovers = [p.name for p in model_dir.parent.iterdir() if p.name.startswith(".tiny-llama") and p.name != ".tiny-llama.lock"]
    assert leftovers == []  # no temp build left behind (the lock file stays, empty)


@pytest.mark.slow
def test_tokenizer_round_trips_text_and_has_special_tokens(tokenizer) -> None:
    samples = [
        "def f(x):\n\treturn  x ** 2  # trailing  spaces  \n",
        "Ünïcode, 漢字 and emoji 🐍 survive byte-level BPE.",
        "    indented\r\n\n\nblank lines",
    ]
    for text in samples:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    special = {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}
    assert None not in special and len(special) == 3
    assert len(tokenizer) == demo_model.SPEC.vocab_size
    assert tokenizer.model_max_length == demo_model.SPEC.max_position_embeddings


@pytest.mark.slow
def test_chat_template_renders_a_two_turn_conversation(tokenizer) -> None:
    messages = [
        {"role": "user", "content": "What does len() return?"},
        {"role": "assistant", "content": "The number of items."},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == "<s>user\nWhat does len() return?</s>\n<s>assistant\nThe number of items.</s>\n"
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<s>assistant\n")
    out = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tokenizer.decode(masked) == "The number of items.</s>"


@pytest.mark.slow
def test_model_loads_offline_with_auto_classes(model_dir: Path, tokenizer) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 1_000_000 < model.num_parameters() < 10_000_000
    assert model.config.vocab_size == len(tokenizer)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(model.config, key) == getattr(tokenizer, key)
        assert getattr(model.generation_config, key) == getattr(tokenizer, key)
    assert (model_dir / "model.safetensors").is_file()
    ids = tokenizer("import os\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))
    assert torch.isfinite(logits).all()


@pytest.mark.slow
def test_second_call_reuses_the_build(model_dir: Path) -> None:
    stamps = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    assert demo.ensure_demo_model() == model_dir
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == stamps


@pytest.mark.slow
def test_random_init_is_seeded_and_leaves_the_global_rng_alone(tokenizer) -> None:
    import torch

    torch.manual_seed(0)
    expected_next = torch.rand(1)
    torch.manual_seed(0)
    a = demo_model.init_model(tokenizer).state_dict()
    assert torch.equal(torch.rand(1), expected_next)
    b = demo_model.init_model(tokenizer).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _fake_build(directory: Path, fmt: int, content: str) -> None:
    directory.mkdir()
    (directory / "payload.txt").write_text(content)
    for name in paths.MODEL_FILES:
        (directory / name).write_text("{}")
    marker = {"format": fmt, "spec": dataclasses.asdict(demo_model.SPEC)}
    (directory / demo_model.MARKER_FILE).write_text(json.dumps(marker))


def test_install_keeps_a_current_build_when_it_loses_a_race(tmp_path: Path) -> None:
    final, ours = tmp_path / "tiny-llama", tmp_path / ".tiny-llama.x.tmp"
    _fake_build(final, demo_model.BUILD_FORMAT, "winner")
    _fake_build(ours, demo_model.BUILD_FORMAT, "loser")
    demo._install(ours, final)
    assert (final / "payload.txt").read_text() == "winner"


def test_install_replaces_an_outdated_build(tmp_path: Path) -> None:
    final, ours = tmp_path / "tiny-llama", tmp_path / ".tiny-llama.x.tmp"
    _fake_build(final, demo_model.BUILD_FORMAT - 1, "old")
    _fake_build(ours, demo_model.BUILD_FORMAT, "new")
    demo._install(ours, final)
    assert (final / "payload.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-llama"]


def test_abandoned_temp_builds_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    old, fresh = tmp_path / ".tiny-llama.old.tmp", tmp_path / ".tiny-llama.new.tmp"
    old.mkdir()
    fresh.mkdir()
    stale = time.time() - demo.ABANDONED_AFTER_S - 60
    os.utime(old, (stale, stale))
    demo._remove_abandoned_builds(tmp_path)
    assert not old.exists() and fresh.exists()


def test_tokenizer_training_is_deterministic() -> None:
    texts = [r["text"] for r in _read_jsonl(demo.demo_corpus_path("demo:python-docs"))[:400]]
    spec = dataclasses.replace(demo_model.SPEC, vocab_size=600)
    first, second = demo_model.train_tokenizer(texts, spec), demo_model.train_tokenizer(texts, spec)
    assert first.get_vocab() == second.get_vocab()
    assert len(first) == 600


@pytest.mark.slow
def test_two_processes_building_at_once_both_get_the_same_complete_model(tmp_path: Path) -> None:
    env = dict(os.environ, TUI_TRAINER_HOME=str(tmp_path / "home"))
    # Share the suite's corpora so the race is about the model build, not extraction.
    corpora = tmp_path / "home" / "demo" / "corpora"
    corpora.mkdir(parents=True)
    for name in demo.DEMO_CORPORA:
        src = demo.demo_corpus_path(name)
        (corpora / src.name).write_bytes(src.read_bytes())
    code = "from tui_trainer.demo.catalog import ensure_demo_model; print(ensure_demo_model())"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    built = tmp_path / "home" / "demo" / "tiny-llama"
    assert outs == [str(built), str(built)]
    assert demo_model.is_current_build(built)
    assert sorted(p.name for p in built.parent.iterdir() if p.name != ".tiny-llama.lock") == ["corpora", "tiny-llama"]


def _home_with_the_corpora(tmp_path: Path, monkeypatch) -> Path:
    """An empty TUI_TRAINER_HOME but for the suite's demo corpora (so a build skips extraction)."""
    corpora = tmp_path / "home" / "demo" / "corpora"
    corpora.mkdir(parents=True)
    for name in demo.DEMO_CORPORA:
        src = demo.demo_corpus_path(name)
        (corpora / src.name).write_bytes(src.read_bytes())
    monkeypatch.setenv("TUI_TRAINER_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "demo" / "tiny-llama"


@pytest.mark.slow
def test_a_build_holding_only_its_tokenizer_and_marker_is_rebuilt(model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """What a torchrun rank other than 0 used to install: transformers' save_pretrained writes no
    config and no weights there, and the marker alone passed for a current build."""
    final = _home_with_the_corpora(tmp_path, monkeypatch)
    final.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", demo_model.MARKER_FILE):
        (final / name).write_bytes((model_dir / name).read_bytes())
    assert not demo_model.is_current_build(final)
    assert demo.ensure_demo_model() == final
    assert paths.has_model_files(final) and demo_model.is_current_build(final)


@pytest.mark.slow
def test_a_build_that_saves_no_weights_fails_and_installs_nothing(tmp_path: Path, monkeypatch) -> None:
    """Under torch.distributed as rank 1 save_pretrained skips every file; the build says so
    instead of putting a model without weights into the cache."""
    from transformers.distributed import mixin

    final = _home_with_the_corpora(tmp_path, monkeypatch)
    monkeypatch.setattr(mixin, "_is_torch_distributed_initialized", lambda: True)
    monkeypatch.setattr(mixin, "_get_torch_distributed_rank", lambda: 1)
    with pytest.raises(RuntimeError, match="wrote no weights"):
        demo.ensure_demo_model()
    assert not final.exists()
    assert [p.name for p in final.parent.iterdir() if p.name.startswith(".tiny-llama.") and p.suffix == ".tmp"] == []


# --- the demo run ------------------------------------------------------------------------


def test_demo_run_config_trains_the_whole_demo_model_on_both_corpora() -> None:
    cfg = demo.demo_run_config(steps=80, output_dir="out")
    assert isinstance(cfg, RunConfig)
    assert cfg.run.name == "demo" and cfg.run.output_dir == "out"
    assert cfg.model.name_or_path == demo.DEMO_MODEL
    assert cfg.lora.enabled is False
    assert cfg.data.strategy == "weighted" and cfg.data.packing
    assert [(d.name, d.path, d.weight) for d in cfg.data.datasets] == [
        ("code", "demo:python-code", 0.7),
        ("docs", "demo:python-docs", 0.3),
    ]
    assert cfg.train.max_steps == 80
    assert cfg.train.eval_every == 20  # evals at 20/40/60/80
    assert 0 < cfg.checkpoint.every_steps <= 80
    assert cfg.data.max_seq_len <= demo_model.SPEC.max_position_embeddings


@pytest.mark.parametrize("steps", [1, 3, 10, 1000])
def test_demo_run_config_scales_evals_with_steps(steps: int) -> None:
    cfg = demo.demo_run_config(steps=steps)
    assert cfg.train.max_steps == steps
    assert 1 <= cfg.train.eval_every <= steps
    assert steps // cfg.train.eval_every <= 4


def test_demo_run_config_rejects_zero_steps() -> None:
    with pytest.raises(ConfigError, match="steps"):
        demo.demo_run_config(steps=0)
