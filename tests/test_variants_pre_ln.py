"""Megatron-BERT (bert.variants.megatron_bert) is a pre-LayerNorm encoder: it matches a straightforward
implementation of one written out here from the paper's equations (x = x + f(LN(x)) per sub-layer, one final LN, no
embedding LN), and transformers' BertModel cannot load its checkpoints (its layers want post-LN LayerNorms)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import transformers

import bert


def pre_ln_reference(w: dict[str, torch.Tensor], input_ids: torch.Tensor, token_type_ids: torch.Tensor,
                     attention_mask: torch.Tensor, layers: int, heads: int, eps: float) -> torch.Tensor:
    """A pre-LN Transformer encoder from its equations, reading the weights by name: [B, T] → [B, T, H]."""
    def ln(x, name):
        return F.layer_norm(x, x.shape[-1:], w[name + ".weight"], w[name + ".bias"], eps)

    def linear(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    B, T = input_ids.shape
    x = (w["embeddings.word_embeddings.weight"][input_ids] + w["embeddings.position_embeddings.weight"][:T]
         + w["embeddings.token_type_embeddings.weight"][token_type_ids])
    blocked = (1 - attention_mask[:, None, None, :].float()) * -1e9  # [B, 1, 1, T]: padding keys get no attention
    for i in range(layers):
        p = f"encoder.layer.{i}."
        h = ln(x, p + "attention.ln")
        q, k, v = (linear(h, p + f"attention.self.{n}").view(B, T, heads, -1).transpose(1, 2)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + blocked
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + linear(context, p + "attention.output.dense")
        h = ln(x, p + "ln")
        x = x + linear(F.gelu(linear(h, p + "intermediate.dense")), p + "output.dense")
    return ln(x, "encoder.ln")


def small_model(seed: int = 0) -> bert.MegatronBertModel:
    config = bert.MegatronBertConfig(vocab_size=97, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                                     intermediate_size=80, max_position_embeddings=32)
    torch.manual_seed(seed)
    model = bert.MegatronBertModel(config).eval()
    with torch.no_grad():  # LayerNorms away from 1/0, so that a misplaced or missing one shows
        for name, parameter in model.named_parameters():
            if ".ln." in name or name.startswith("encoder.ln") or name.endswith("ln.weight"):
                parameter.add_(torch.randn_like(parameter) * 0.3)
    return model


def test_megatron_bert_is_a_pre_ln_encoder_as_its_equations_say():
    model = small_model()
    config = model.config
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, config.vocab_size, (3, 11), generator=g)
    token_type_ids = torch.randint(0, 2, (3, 11), generator=g)
    attention_mask = torch.ones(3, 11, dtype=torch.long)
    attention_mask[1, 7:] = attention_mask[2, 3:] = 0
    weights = dict(model.state_dict())
    expected = pre_ln_reference(weights, input_ids, token_type_ids, attention_mask, config.num_hidden_layers,
                                config.num_attention_heads, config.layer_norm_eps)
    with torch.no_grad():
        out = model(input_ids, token_type_ids, attention_mask, output_hidden_states=True)
    real = attention_mask.bool()
    assert (out.last_hidden_state - expected)[real].abs().max() <= 1e-5
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)  # the last hidden state is the normalised one
    assert "embeddings.LayerNorm.weight" not in weights  # the embeddings are not normalised


def test_transformers_bert_model_cannot_load_a_pre_ln_checkpoint(tmp_path):
    small_model().save_pretrained(tmp_path)
    _, info = transformers.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert "encoder.layer.0.attention.output.LayerNorm.weight" in info["missing_keys"]
    assert "encoder.layer.0.attention.ln.weight" in info["unexpected_keys"]
    _, info = transformers.MegatronBertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
