"""engine/checkpoint/sharded.py on a model really sharded by FSDP2 (``fully_shard``), on CPU.

accelerate refuses FSDP on CPU ranks (train.distributed = "fsdp" is exit 2 there), but
torch's fully_shard runs on gloo: two processes shard the demo model with a LoRA adapter
exactly as accelerate's FSDP2 plugin does on GPUs (one unit per decoder layer, then the
root), train a step, and the checkpoint code is checked against it: the gathered save
holds the full weights and optimizer state, a fresh sharded model loads them back
exactly, one unsharded process loads the same files (an FSDP run resumes under DDP or on
one process), and the unsharded export equals the checkpoint's adapter.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from datetime import timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import demo_cfg

GLOO_TIMEOUT_S = 60
SHARDED = pytest.mark.slow
"""Two spawned processes each load the demo model three times: about a minute on 2 busy cores."""


def _sharded_model(cfg, seed: int):
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from tui_trainer.engine.model import load_model, plan_precision, resolve_model_path

    torch.manual_seed(seed)
    model = load_model(cfg, resolve_model_path(cfg.model.name_or_path), plan_precision(cfg, torch.device("cpu")), torch.device("cpu"))
    if seed:  # a different starting point than the trained model's, so a load that does nothing shows
        with torch.no_grad():
            for name, param in model.named_parameters():
                if param.requires_grad:
                    param.add_(torch.randn_like(param))
    mesh = init_device_mesh("cpu", (2,))
    for layer in [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]:
        fully_shard(layer, mesh=mesh)  # as accelerate's transformer_based_wrap does
    fully_shard(model, mesh=mesh)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return model, optimizer, scheduler


def _train_step(model, optimizer, scheduler, rank: int) -> None:
    import torch

    generator = torch.Generator().manual_seed(100 + rank)
    ids = torch.randint(0, model.config.vocab_size, (2, 16), generator=generator)
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


EVAL_ROWS = 3
"""With one row per forward, rank 0 evaluates rows 0 and 2, rank 1 row 1: unequal forwards."""


def _accelerator(rank: int, world: int):
    import contextlib
    from types import SimpleNamespace

    import torch
    import torch.distributed as dist

    def reduce(tensor, reduction):
        dist.all_reduce(tensor)
        return tensor

    return SimpleNamespace(
        process_index=rank, num_processes=world, device=torch.device("cpu"), unwrap_model=lambda m: m,
        autocast=contextlib.nullcontext, reduce=reduce,
    )


def _eval_loss(cfg, model, rank: int, world: int) -> float:
    """evaluate() as the recipe calls it, on this rank's share of EVAL_ROWS rows per dataset."""
    import torch.distributed as dist

    from tui_trainer.engine.evaluation import evaluate
    from tui_trainer.engine.model import resolve_model_path
    from tui_trainer.tasks.registry import get_task

    task = get_task(cfg)
    task.setup(cfg, resolve_model_path(cfg.model.name_or_path))
    for turn in range(world):  # one rank at a time fills (or reads) the data cache
        if turn == rank:
            prepared = task.prepare(cfg)
        if world > 1:
            dist.barrier()
    report = evaluate(_accelerator(rank, world), model, task, task.evaluator(cfg), prepared, 1, EVAL_ROWS)
    return report.eval_loss


def _rank_main(rank: int, base: str, results) -> None:
    import torch
    import torch.distributed as dist

    from tui_trainer.engine.checkpoint import sharded
    from tui_trainer.engine.checkpoint.state import TRAINER_STATE_KEYS, load_training_state, load_weights
    from tui_trainer.engine.checkpoint.state import write_checkpoint_files
    from tui_trainer.engine.model import load_model, plan_precision, resolve_model_path

    out: dict = {}
    try:
        dist.init_process_group(
            "gloo", init_method=f"file://{base}/store", rank=rank, world_size=2, timeout=timedelta(seconds=GLOO_TIMEOUT_S)
        )
        cfg = demo_cfg(Path(base), lora=True)
        model, optimizer, scheduler = _sharded_model(cfg, seed=0)
        out["sharded"] = sharded.is_sharded(model)
        _train_step(model, optimizer, scheduler, rank)
        weights = sharded.gather_trainable(model, rank=rank)
        optimizer_state = sharded.gather_optimizer(model, optimizer)
        checkpoint = Path(base) / "checkpoint"
        if rank == 0:
            checkpoint.mkdir()
            state = {key: 0 for key in TRAINER_STATE_KEYS}
            write_checkpoint_files(
                checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, trainer_state=state,
                gathered=(weights, optimizer_state),
            )
        out["gathered_rank1_empty"] = rank == 0 or (not weights and not optimizer_state)
        dist.barrier()
        # FSDP all-gathers inside each forward: ranks with unequal eval rows must still run as many.
        out["eval_loss"] = _eval_loss(cfg, model, rank, 2)

        fresh, fresh_optimizer, fresh_scheduler = _sharded_model(cfg, seed=1)
        load_weights(checkpoint, fresh, lora=True)
        load_training_state(checkpoint, optimizer=fresh_optimizer, scheduler=fresh_scheduler, model=fresh)
        reloaded = sharded.gather_trainable(fresh, rank=rank)
        reloaded_optimizer = sharded.gather_optimizer(fresh, fresh_optimizer)
        if rank == 0:
            out["weights_equal"] = reloaded.keys() == weights.keys() and all(
                torch.equal(reloaded[k], weights[k]) for k in weights
            )
            out["optimizer_equal"] = set(reloaded_optimizer["state"]) == set(optimizer_state["state"]) and all(
                torch.equal(reloaded_optimizer["state"][name][key], value)
                for name, per_param in optimizer_state["state"].items()
                for key, value in per_param.items()
            )
            out["trainable"] = len(weights)
        # A DDP checkpoint's optimizer state (keyed by index) loads into a sharded optimizer too.
        saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)["optimizer"]
        order = [name for group in saved["param_groups"] for name in group["params"]]
        by_index = {
            "state": {order.index(name): value for name, value in saved["state"].items()},
            "param_groups": [{**g, "params": [order.index(n) for n in g["params"]]} for g in saved["param_groups"]],
        }
        other, other_optimizer, _ = _sharded_model(cfg, seed=2)
        sharded.load_optimizer_sharded(other, other_optimizer, by_index)
        from_index = sharded.gather_optimizer(other, other_optimizer)
        if rank == 0:
            out["index_keyed_equal"] = all(
                torch.equal(from_index["state"][name][key], value)
                for name, per_param in optimizer_state["state"].items()
                for key, value in per_param.items()
            )
        # One more step from the reloaded state equals one more step from the trained one.
        _train_step(model, optimizer, scheduler, rank)
        _train_step(fresh, fresh_optimizer, fresh_scheduler, rank)
        after, fresh_after = sharded.gather_trainable(model, rank=rank), sharded.gather_trainable(fresh, rank=rank)
        if rank == 0:
            out["next_step_equal"] = all(torch.equal(after[k], fresh_after[k]) for k in after)

        def build():
            return load_model(cfg, resolve_model_path(cfg.model.name_or_path), plan_precision(cfg, torch.device("cpu")), torch.device("cpu"))

        plain = sharded.plain_copy(model, build, rank=rank)
        out["copy_only_on_rank_0"] = (plain is None) == (rank == 1)
        if rank == 0:
            out["copy_plain"] = not sharded.is_sharded(plain)
            out["copy_equal"] = all(torch.equal(dict(plain.named_parameters())[k], after[k]) for k in after)
            plain.save_pretrained(Path(base) / "export")

        # A full fine-tune: transformers' save_pretrained gets the gathered weights, and they load back.
        full_cfg = demo_cfg(Path(base), lora=False)
        full, full_optimizer, full_scheduler = _sharded_model(full_cfg, seed=0)
        _train_step(full, full_optimizer, full_scheduler, rank)
        full_weights = sharded.gather_trainable(full, rank=rank)
        full_gathered = (full_weights, sharded.gather_optimizer(full, full_optimizer))
        full_checkpoint = Path(base) / "checkpoint-full"
        if rank == 0:
            full_checkpoint.mkdir()
            state = {key: 0 for key in TRAINER_STATE_KEYS}
            write_checkpoint_files(
                full_checkpoint, model=full, optimizer=full_optimizer, scheduler=full_scheduler, trainer_state=state,
                gathered=full_gathered,
            )
        dist.barrier()
        fresh_full, fresh_full_optimizer, fresh_full_scheduler = _sharded_model(full_cfg, seed=1)
        load_weights(full_checkpoint, fresh_full, lora=False)
        load_training_state(full_checkpoint, optimizer=fresh_full_optimizer, scheduler=fresh_full_scheduler, model=fresh_full)
        full_reloaded = sharded.gather_trainable(fresh_full, rank=rank)
        if rank == 0:
            out["full_weights_equal"] = full_reloaded.keys() == full_weights.keys() and all(
                torch.equal(full_reloaded[k], full_weights[k]) for k in full_weights
            )
        dist.barrier()
        results.put((rank, out, None))
    except Exception:
        results.put((rank, out, traceback.format_exc()))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> tuple[Path, dict[int, dict]]:
    base = tmp_path_factory.mktemp("fsdp")
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_rank_main, args=(rank, str(base), results)) for rank in (0, 1)]
    for proc in procs:
        proc.start()
    found: dict[int, dict] = {}
    try:
        for _ in procs:
            try:
                rank, out, error = results.get(timeout=GLOO_TIMEOUT_S + 180)
            except queue.Empty:
                break
            assert error is None, f"rank {rank} after {out}:\n{error}"
            found[rank] = out
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    assert set(found) == {0, 1}, f"no result from rank(s) {sorted({0, 1} - set(found))}"
    return base, found


@SHARDED
def test_the_gathered_checkpoint_reloads_exactly_into_a_fresh_sharded_model(ranks):
    _base, found = ranks
    assert found[0]["sharded"] and found[1]["sharded"]
    assert found[1]["gathered_rank1_empty"], "rank 1 must hold nothing of the gathered state"
    assert found[0]["trainable"] > 0
    assert found[0]["weights_equal"] and found[0]["optimizer_equal"]
    assert found[0]["index_keyed_equal"], "a DDP checkpoint's index-keyed optimizer state did not load"
    assert found[0]["next_step_equal"], "a step after the reload differs from a step after the save"


@SHARDED
def test_eval_on_sharded_ranks_with_unequal_rows_keeps_in_step_and_matches_one_process(ranks):
    import torch

    from tui_trainer.engine.checkpoint.state import load_weights
    from tui_trainer.engine.model import load_model, plan_precision, resolve_model_path

    base, found = ranks
    assert found[0]["eval_loss"] == found[1]["eval_loss"]  # one all-reduced result
    cfg = demo_cfg(base, lora=True)
    model = load_model(cfg, resolve_model_path(cfg.model.name_or_path), plan_precision(cfg, torch.device("cpu")), torch.device("cpu"))
    load_weights(base / "checkpoint", model, lora=True)  # the weights the ranks evaluated
    one = _eval_loss(cfg, model, 0, 1)
    assert abs(one - found[0]["eval_loss"]) < 1e-5, (one, found[0]["eval_loss"])


@SHARDED
def test_a_full_fine_tune_checkpoint_reloads_exactly_too(ranks):
    from transformers import AutoModelForCausalLM

    base, found = ranks
    assert found[0]["full_weights_equal"]
    AutoModelForCausalLM.from_pretrained(base / "checkpoint-full")  # and plain transformers loads it


@SHARDED
def test_an_fsdp_checkpoint_resumes_in_one_unsharded_process(ranks):
    import torch
    from safetensors.torch import load_file

    from tui_trainer.engine.checkpoint.state import load_training_state, load_weights
    from tui_trainer.engine.model import load_model, plan_precision, resolve_model_path

    base, _found = ranks
    cfg = demo_cfg(base, lora=True)
    model = load_model(cfg, resolve_model_path(cfg.model.name_or_path), plan_precision(cfg, torch.device("cpu")), torch.device("cpu"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    load_weights(base / "checkpoint", model, lora=True)
    load_training_state(base / "checkpoint", optimizer=optimizer, scheduler=scheduler, model=model)
    saved = torch.load(base / "checkpoint" / "optimizer.pt", weights_only=True)["optimizer"]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(isinstance(key, str) for key in saved["state"])  # by name, as FSDP saved it
    for index, name in enumerate(names):
        assert torch.equal(optimizer.state_dict()["state"][index]["exp_avg"], saved["state"][name]["exp_avg"])
    adapter = load_file(base / "checkpoint" / "adapter_model.safetensors")
    by_name = dict(model.named_parameters())
    for key, tensor in adapter.items():
        assert torch.equal(by_name[key.replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default.")], tensor)


@SHARDED
def test_the_export_copy_holds_the_sharded_weights_in_the_checkpoint_layout(ranks):
    from safetensors.torch import load_file

    base, found = ranks
    assert found[0]["copy_only_on_rank_0"] and found[1]["copy_only_on_rank_0"]
    assert found[0]["copy_plain"] and found[0]["copy_equal"]
    exported = load_file(base / "export" / "adapter_model.safetensors")
    checkpoint = load_file(base / "checkpoint" / "adapter_model.safetensors")
    assert exported.keys() == checkpoint.keys()  # the same adapter layout as a checkpoint (and a DDP run's final/)
    assert all(exported[k].shape == checkpoint[k].shape for k in exported)


def test_optimizer_state_by_name_follows_the_parameter_order_and_checks_the_groups():
    import torch

    from tui_trainer.engine.checkpoint.sharded import optimizer_state_by_name
    from tui_trainer.errors import ResumeError

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    optimizer = torch.optim.AdamW([{"params": [model[1].weight, model[0].weight]}, {"params": [model[0].bias]}])
    model(torch.randn(2, 3)).sum().backward()
    optimizer.step()
    by_name = optimizer_state_by_name(optimizer.state_dict(), model, optimizer)
    assert [g["params"] for g in by_name["param_groups"]] == [["1.weight", "0.weight"], ["0.bias"]]
    assert torch.equal(by_name["state"]["1.weight"]["exp_avg"], optimizer.state[model[1].weight]["exp_avg"])
    assert optimizer_state_by_name(by_name, model, optimizer) is by_name  # already by name
    fewer = torch.optim.AdamW([model[0].weight])
    with pytest.raises(ResumeError, match="parameter groups of sizes"):
        optimizer_state_by_name(optimizer.state_dict(), model, fewer)
