"""Hooking a site of a (tiny, random) Llama: names, bad sites, the forward stopping at the site, splicing."""

from __future__ import annotations

import pytest
import torch

from tui_trainer.config.schema import SaeSection
from tui_trainer.errors import ConfigError
from tui_trainer.tasks.sae.activations import kept_positions, resolve_site, site_activations, spliced


@pytest.fixture(scope="module")
def llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=32,
    )
    return LlamaForCausalLM(cfg).eval()


def _inputs():
    ids = torch.tensor([[1, 5, 9, 3, 7, 2], [1, 4, 4, 8, 0, 0]])
    return {"input_ids": ids, "position_ids": torch.arange(6).expand(2, 6)}


@pytest.mark.parametrize(
    ("site", "name"), [("resid_post", "model.layers.1"), ("mlp_out", "model.layers.1.mlp"), ("attn_out", "model.layers.1.self_attn")]
)
def test_sites_resolve_to_their_modules(llama, site, name):
    resolved = resolve_site(llama, SaeSection(layer=1, site=site))
    assert resolved.hook_name == name and resolved.layer == 1 and resolved.n_layers == 3
    assert resolved.module is llama.get_submodule(name)


def test_a_layer_beyond_the_model_is_a_config_error_naming_the_key(llama):
    with pytest.raises(ConfigError, match=r"sae.layer = 3 is beyond the model's 3 decoder layers; use 0..2"):
        resolve_site(llama, SaeSection(layer=3))


def test_an_unknown_hook_module_is_a_config_error(llama):
    with pytest.raises(ConfigError, match="sae.hook_module = 'model.layers.9.mlp' is not a module"):
        resolve_site(llama, SaeSection(hook_module="model.layers.9.mlp"))
    assert resolve_site(llama, SaeSection(hook_module="model.layers.2.mlp")).layer == 2


def test_resid_post_is_the_layer_output_and_the_forward_stops_there(llama):
    site = resolve_site(llama, SaeSection(layer=0))
    above = []
    handle = llama.model.layers[1].register_forward_hook(lambda *a: above.append(1))
    try:
        acts = site_activations(llama, site, _inputs())
    finally:
        handle.remove()
    assert above == []  # nothing above the site ran
    with torch.no_grad():
        hidden = llama(**_inputs(), output_hidden_states=True).hidden_states
    assert torch.allclose(acts, hidden[1], atol=1e-6)  # hidden_states[0] is the embedding output


def test_identity_splice_keeps_logits_and_zero_splice_changes_them(llama):
    site = resolve_site(llama, SaeSection(layer=1, site="mlp_out"))
    with torch.no_grad():
        clean = llama(**_inputs()).logits
        with spliced(site, lambda o: o) as seen:
            same = llama(**_inputs()).logits
        with spliced(site, torch.zeros_like):
            zeroed = llama(**_inputs()).logits
    assert torch.equal(clean, same) and len(seen) == 1
    assert not torch.allclose(clean, zeroed)


def test_kept_positions_drop_padding_and_bos():
    ids = torch.tensor([[1, 5, 1, 3], [1, 4, 0, 0]])
    keep = kept_positions(ids, torch.tensor([4, 2]), bos_id=1)
    assert keep.tolist() == [[False, True, False, True], [False, True, False, False]]
    assert kept_positions(ids, torch.tensor([4, 2]), bos_id=None).sum() == 6
