"""Lesson 4b, exercises: one layer's parameters counted by hand; a pre-LayerNorm layer with the same weights."""

import torch
import torch.nn.functional as F

from bert import BertModel
from bert.inference.pipelines import DEMO_MODEL
from bert.inference.study import first_available


def layer_parameters(hidden: int, intermediate: int) -> int:
    attention = 3 * (hidden * hidden + hidden)                    # Q, K, V: weight and bias each
    projection = hidden * hidden + hidden                         # the attention output projection
    feed_forward = hidden * intermediate + intermediate + intermediate * hidden + hidden
    layer_norms = 2 * 2 * hidden                                  # two LayerNorms, scale and shift
    return attention + projection + feed_forward + layer_norms


def pre_ln_layer(x: torch.Tensor, layer, attention_mask: torch.Tensor) -> torch.Tensor:
    """x + attention(LN(x)), then + feed_forward(LN(.)): normalise before each sub-layer, not after."""
    self_attention, out = layer.attention.self, layer.attention.output
    batch, length, hidden = x.shape
    heads = self_attention.num_heads

    def split(t):
        return t.view(batch, length, heads, hidden // heads).transpose(1, 2)

    h = out.LayerNorm(x)
    q, k, v = (split(linear(h)) for linear in (self_attention.query, self_attention.key, self_attention.value))
    scores = (q @ k.transpose(-1, -2) / (hidden // heads) ** 0.5).masked_fill(
        ~attention_mask.bool()[:, None, None, :], torch.finfo(x.dtype).min)
    x = x + out.dense((scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, hidden))
    h = layer.output.LayerNorm(x)
    return x + layer.output.dense(F.gelu(layer.intermediate.dense(h)))


if __name__ == "__main__":
    model = BertModel.from_pretrained(first_available("bert-base-uncased", DEMO_MODEL))
    config = model.config
    counted = layer_parameters(config.hidden_size, config.intermediate_size)
    actual = sum(p.numel() for p in model.encoder.layer[0].parameters())
    assert counted == actual, (counted, actual)
    print(f"one layer: {counted:,} parameters (H = {config.hidden_size}, 4H = {config.intermediate_size})")
    x = torch.randn(2, 7, config.hidden_size)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    with torch.no_grad():
        pre = pre_ln_layer(x, model.encoder.layer[0], mask)
        post = model.encoder.layer[0](x, None)[0]
    assert pre.shape == post.shape == x.shape and not torch.allclose(pre, post, atol=1e-2)
    print("pre-LN output", tuple(pre.shape), "differs from post-LN's: max", (pre - post).abs().max().item())
