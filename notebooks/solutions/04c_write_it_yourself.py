"""Lesson 4c, exercises: BERT's embeddings, one encoder layer and the MLM head written from scratch, given the real
weights and checked against the modules (notebooks/lessons.py's checks), then chained into a fill-mask."""

import math

import torch
import torch.nn.functional as F
from lessons import check_all_yours, check_batch, check_embeddings, check_encoder_layer, check_mlm_head, fill_mask_yours
from torch import nn

from bert import BertForMaskedLM
from bert.inference.pipelines import DEMO_MODEL, load
from bert.inference.study import first_available


class MyEmbeddings(nn.Module):
    """Word + position + segment embeddings, summed, then LayerNorm: (input_ids, token_type_ids) [B, T] → [B, T, H]."""

    def __init__(self, config):
        super().__init__()
        H = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, H)               # [V, H]
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, H)  # [512, H]: learned, not sinusoids
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, H)    # [2, H]: sentence A or B
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)

    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.shape[1])  # [T]: the same 0..T-1 for every sentence, broadcast over B
        summed = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
                  + self.token_type_embeddings(token_type_ids))  # [B, T, H]
        return self.LayerNorm(summed)


class MyEncoderLayer(nn.Module):
    """One post-LN encoder layer: (x [B, T, H], attention_mask [B, T] of 1 real / 0 padding) → [B, T, H]."""

    def __init__(self, config):
        super().__init__()
        H, F4 = config.hidden_size, config.intermediate_size
        self.heads = config.num_attention_heads
        self.scale = math.sqrt(H // self.heads)  # √D: keeps QKᵀ near unit size whatever D, the softmax unsaturated
        self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
        self.attention_output = nn.Linear(H, H)
        self.attention_norm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.ff_in, self.ff_out = nn.Linear(H, F4), nn.Linear(F4, H)
        self.activation = nn.GELU()  # the exact erf form BERT was trained with (config.hidden_act == "gelu")
        self.ff_norm = nn.LayerNorm(H, eps=config.layer_norm_eps)

    def forward(self, x, attention_mask):
        B, T, H = x.shape

        def split(t):  # [B, T, H] → [B, N, T, D]: each head its own D-slice
            return t.view(B, T, self.heads, H // self.heads).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / self.scale  # [B, N, T, T]
        # Padding keys get the most negative float: zero probability, so no real token reads padding.
        scores = scores.masked_fill(attention_mask[:, None, None, :] == 0, torch.finfo(scores.dtype).min)
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)  # heads side by side again
        a = self.attention_norm(x + self.attention_output(context))  # residual, then LayerNorm (post-LN)
        return self.ff_norm(a + self.ff_out(self.activation(self.ff_in(a))))


class MyMLMHead(nn.Module):
    """dense → GELU → LayerNorm, then a score per vocabulary word: hidden [B, T, H] → logits [B, T, V]."""

    def __init__(self, config):
        super().__init__()
        H = config.hidden_size
        self.dense = nn.Linear(H, H)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(H, config.vocab_size, bias=False)  # given the word-embedding table: the tie
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))  # the head's own per-word bias

    def forward(self, hidden):
        return self.decoder(self.LayerNorm(F.gelu(self.dense(hidden)))) + self.bias


if __name__ == "__main__":
    model, tokenizer = load(BertForMaskedLM, first_available("bert-base-uncased", DEMO_MODEL))
    batch = check_batch(model, tokenizer)
    assert check_embeddings(MyEmbeddings, model, batch)
    assert check_encoder_layer(MyEncoderLayer, model, batch)
    assert check_mlm_head(MyMLMHead, model, batch)
    assert check_all_yours(MyEmbeddings, MyEncoderLayer, MyMLMHead, model, batch)
    assert fill_mask_yours(MyEmbeddings, MyEncoderLayer, MyMLMHead, model, tokenizer, "The cat sat on the [MASK].")
