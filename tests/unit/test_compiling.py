"""train.compile: compiled in place where torch.compile can run, eager with a warning where it cannot."""

from __future__ import annotations

import torch

from tui_trainer.config.schema import config_from_dict
from tui_trainer.engine import compiling


def test_compile_is_off_by_default_and_a_train_key():
    cfg = config_from_dict({"model": {"name_or_path": "demo:tiny-llama"}, "data": {"datasets": [{"name": "a", "path": "x.jsonl"}]}})
    assert cfg.train.compile is False


def test_without_a_cxx_compiler_the_cpu_backend_is_blocked(monkeypatch):
    monkeypatch.setattr(compiling.shutil, "which", lambda name: None)
    reason = compiling.compile_blocker(torch.device("cpu"))
    assert reason is not None and "C++ compiler" in reason


def test_a_blocked_compile_warns_and_leaves_the_model_eager(monkeypatch):
    monkeypatch.setattr(compiling.shutil, "which", lambda name: None)
    model = torch.nn.Linear(3, 2)
    warnings: list[str] = []
    assert compiling.maybe_compile(True, model, torch.device("cpu"), warnings.append) is False
    assert len(warnings) == 1 and "train.compile" in warnings[0] and "eagerly" in warnings[0]
    assert getattr(model, "_compiled_call_impl", None) is None


def test_compile_in_place_keeps_the_module_and_its_state_dict_keys(monkeypatch):
    monkeypatch.setattr(compiling, "compile_blocker", lambda device: None)
    model = torch.nn.Linear(3, 2)
    keys = list(model.state_dict())
    warnings: list[str] = []
    assert compiling.maybe_compile(True, model, torch.device("cpu"), warnings.append) is True
    assert warnings == []
    assert getattr(model, "_compiled_call_impl", None) is not None  # forward goes through the compiled graph
    assert list(model.state_dict()) == keys  # checkpoints and the export see the plain module


def test_off_does_nothing(monkeypatch):
    model = torch.nn.Linear(3, 2)
    assert compiling.maybe_compile(False, model, torch.device("cpu"), lambda m: None) is False
    assert getattr(model, "_compiled_call_impl", None) is None
