"""The causal_lm task on the embedded demo model (a Llama): packed documents stay apart, limits are checked."""

from __future__ import annotations

import pytest
import torch

from tests.integration.conftest import demo_cfg
from tui_trainer.errors import ConfigError
from tui_trainer.tasks.base import Batch
from tui_trainer.tasks.causal_lm import CausalLMTask, loss_sum_of


@pytest.fixture(scope="module")
def demo_model():
    from transformers import AutoModelForCausalLM

    from tui_trainer.demo.catalog import ensure_demo_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(ensure_demo_model(), dtype=torch.float32, attn_implementation="sdpa")
    return model.eval()


def _row(*docs: list[int]) -> dict[str, torch.Tensor]:
    ids = torch.tensor([[t for d in docs for t in d]])
    positions = torch.tensor([[p for d in docs for p in range(len(d))]])
    return {"input_ids": ids, "labels": ids.clone(), "position_ids": positions}


@torch.no_grad()
def test_a_packed_row_gives_each_document_the_loss_it_has_alone(demo_model):
    vocab = demo_model.config.vocab_size
    gen = torch.Generator().manual_seed(1)
    a, b = (torch.randint(3, vocab, (n,), generator=gen).tolist() for n in (23, 17))
    packed = _row(a, b)
    logits = demo_model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0]
    for doc, start in ((a, 0), (b, len(a))):
        alone = demo_model(input_ids=torch.tensor([doc])).logits[0]
        torch.testing.assert_close(logits[start : start + len(doc)], alone, rtol=1e-5, atol=1e-5)
    # The task's loss: each document's own next-token loss, nothing predicted across the boundary.
    together = loss_sum_of(demo_model, packed)
    apart = loss_sum_of(demo_model, _row(a)) + loss_sum_of(demo_model, _row(b))
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_right_padding_needs_no_mask(demo_model):
    """A padded row of one document: the real tokens' logits equal those of the unpadded row."""
    task = CausalLMTask()
    doc = list(range(5, 30))
    lengths = torch.tensor([len(doc)])
    ids = torch.tensor([doc + [0] * 7])
    positions = torch.arange(ids.size(1))[None]
    batch = Batch({"input_ids": ids, "labels": torch.tensor([doc + [-100] * 7]), "position_ids": positions},
                  n_targets=lengths - 1, work=lengths, lengths=lengths)  # fmt: skip
    loss, n = task.loss_sum(demo_model, batch)
    assert n == len(doc) - 1
    torch.testing.assert_close(loss, loss_sum_of(demo_model, _row(doc)), rtol=1e-5, atol=1e-5)


def test_max_seq_len_past_the_models_positions_is_a_config_error(tmp_path):
    from tui_trainer.demo.catalog import ensure_demo_model

    cfg = demo_cfg(tmp_path)
    limit = __import__("json").loads((ensure_demo_model() / "config.json").read_text())["max_position_embeddings"]
    too_long = cfg.model_copy(update={"data": cfg.data.model_copy(update={"max_seq_len": limit + 1})})
    with pytest.raises(ConfigError, match=rf"data\.max_seq_len = {limit + 1}.*demo:tiny-llama.*{limit}"):
        CausalLMTask().setup(too_long, str(ensure_demo_model()))
    CausalLMTask().setup(cfg, str(ensure_demo_model()))  # within the limit: fine
