"""What the web explorer computes: one pretrained BERT (MLM + NSP heads; a RoBERTa, ALBERT or DistilBERT model
with its MLM head) and the views of it the page shows.

Plain PyTorch and plain Python values, no web framework: :mod:`bert.serve.app` only validates requests and turns
these dictionaries into JSON. Every answer reuses :mod:`bert.inference.pipelines` (``fill_mask``, ``next_sentence``,
``token_vectors``, ``word_vector``, ``cosine_similarity_matrix``, ``encode``, ``model_inputs``) and the model's own
outputs.

One model serves every request. Calls into it are serialised by a lock: PyTorch already spreads one forward pass
over the CPU cores, so concurrent passes would only compete for them (and each would hold its own activations).

    explorer = Explorer.load("weights/bert-demo")
    explorer.fill_mask("The capital of France is [MASK].", top_k=5)["predictions"][0][0]   # {'score', 'token', ...}
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bert.errors import BertError
from bert.inference.pipelines import (
    choose_model,
    cosine_similarity_matrix,
    encode,
    encoder_of,
    fill_mask,
    load,
    model_inputs,
    next_sentence,
    token_vectors,
    word_vector,
)
from bert.pretrained import PreTrainedModel
from bert.serve.shapes import dimensions, layers_in_order, watched_modules
from bert.tokenizer.fast import FastTokenizer
from bert.variants.auto import model_type_of, no_next_sentence_head

DECIMALS = 4  # attention weights and similarities are rounded to this many decimals in the JSON answers
MAX_SENTENCES = 8


class InvalidInput(BertError):
    """Input this model cannot answer as asked (too long, no [MASK], wrong number of sentences): the API's 422."""


def rounded(tensor: torch.Tensor, decimals: int = DECIMALS) -> list:
    """A tensor as nested lists of floats rounded to ``decimals`` (short JSON: 0.1234, not 0.12340000271797180)."""
    return tensor.double().round(decimals=decimals).tolist()


def shape_of(tensor: torch.Tensor) -> list[int]:
    """A tensor's shape as a JSON-ready list."""
    return list(tensor.shape)


class Explorer:
    """One BertForPreTraining (or a variant's MaskedLM model) and its tokenizer, and the computations behind each
    view of the web explorer."""

    # L × N × T × T weights grow fast (bert-base at 128 tokens: 2.4M numbers, ~16 MB of JSON); longer inputs are
    # refused by the attention view rather than answered slowly with a map nobody can read.
    max_attention_tokens = 128

    def __init__(self, model: PreTrainedModel, tokenizer: FastTokenizer, name: str, note: str | None = None,
                 path: Path | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.note = note
        self.path = path
        self.lock = threading.Lock()

    @classmethod
    def load(cls, name_or_path: str | os.PathLike | None = None, precision: str = "float32",
             device: str | torch.device = "cpu") -> Explorer:
        """Load a BERT checkpoint with both pretraining heads, or a variant's with its MLM head (none of them has an
        NSP head; see :func:`bert.inference.pipelines.choose_model` for the default) on ``device``; ``precision``
        and ``device``: see :func:`bert.inference.pipelines.load`."""
        choice = choose_model(name_or_path)
        task = "pretraining" if model_type_of(choice.folder) == "bert" else "masked_lm"
        model, tokenizer = load(task, choice.folder, precision, device)
        return cls(model, tokenizer, choice.name, choice.note, choice.folder)

    @property
    def max_tokens(self) -> int:
        """The longest input, special tokens included, the model has positions for."""
        return encoder_of(self.model).embeddings.max_length()  # RoBERTa: max_position_embeddings - 2

    @property
    def has_next_sentence_head(self) -> bool:
        return self.model.config.model_type == "bert"

    @contextmanager
    def running(self) -> Iterator[None]:
        """Hold the model for one computation, without autograd bookkeeping."""
        with self.lock, torch.inference_mode():
            yield

    def tokens(self, text: str, text_pair: str | None = None) -> list[str]:
        """The word pieces the model will read ([CLS] text [SEP] (pair [SEP])); too long is :class:`InvalidInput`."""
        ids = self.tokenizer(text, text_pair)["input_ids"]
        if len(ids) > self.max_tokens:
            raise InvalidInput(f"the input is {len(ids)} tokens long (with [CLS] and [SEP]) but {self.name} reads at "
                               f"most {self.max_tokens}; shorten the text")
        return self.tokenizer.convert_ids_to_tokens(ids)

    # ---- the views -------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The model's name, where it was loaded from, its config and its size."""
        config = self.model.config
        return {"model": self.name, "path": str(self.path) if self.path else None, "note": self.note,
                "model_type": self.model.config.model_type, "mask_token": self.tokenizer.mask_token,
                "special_tokens": self.tokenizer.all_special_tokens, "next_sentence": self.has_next_sentence_head,
                "max_tokens": self.max_tokens, "parameters": self.model.num_parameters(),
                # by BERT's names, which DistilBERT's config.json does not use (dim, n_layers, n_heads)
                "layers": config.num_hidden_layers, "hidden_size": config.hidden_size,
                "heads": config.num_attention_heads, "config": config.to_dict()}

    def fill_mask(self, text: str, top_k: int = 5) -> dict[str, Any]:
        """The ``top_k`` candidates for every [MASK] in ``text``, most probable first."""
        tokens = self.tokens(text)
        mask = self.tokenizer.mask_token
        if mask not in tokens:
            raise InvalidInput(f"no {mask} in the text: write {mask} where a word should be predicted, "
                               f"e.g. 'The capital of France is {mask}.'")
        with self.running():
            predictions = fill_mask(self.model, self.tokenizer, text, top_k=top_k)
        return {"model": self.name, "tokens": tokens, "predictions": predictions}

    def next_sentence(self, sentence_a: str, sentence_b: str) -> dict[str, Any]:
        """P(B follows A) from the NSP head, and the verdict; :class:`InvalidInput` for a model without one."""
        if not self.has_next_sentence_head:
            raise InvalidInput(no_next_sentence_head(self.model.config.model_type))
        tokens = self.tokens(sentence_a, sentence_b)
        with self.running():
            result = next_sentence(self.model, self.tokenizer, sentence_a, sentence_b)
        verdict = "IsNext" if result["is_next"] >= 0.5 else "NotNext"
        return {"model": self.name, "tokens": tokens, "verdict": verdict, **result}

    def attention(self, text: str, text_pair: str | None = None) -> dict[str, Any]:
        """Every layer's and head's attention probabilities, ``attentions[layer][head][query][key]``."""
        tokens = self.tokens(text, text_pair)
        if len(tokens) > self.max_attention_tokens:
            raise InvalidInput(f"the attention view shows at most {self.max_attention_tokens} tokens and this input "
                               f"has {len(tokens)}; shorten the text")
        batch = model_inputs(self.tokenizer, self.model, text, text_pair)
        with self.running():
            output = encoder_of(self.model)(**batch, output_attentions=True)
        maps = torch.stack(output.attentions)[:, 0]  # L × [1, N, T, T] → [L, N, T, T] (ALBERT: L uses of one layer)
        # DistilBERT reads no segment ids: its pair's tokens are all segment 0, as RoBERTa's are.
        segments = batch.get("token_type_ids", torch.zeros_like(batch["input_ids"]))[0].tolist()
        return {"model": self.name, "tokens": tokens, "token_type_ids": segments,
                "layers": maps.shape[0], "heads": maps.shape[1], "attentions": rounded(maps)}

    def similarity(self, sentences: list[str], word: str | None = None) -> dict[str, Any]:
        """Cosine similarities of contextual vectors.

        Without ``word``: every token of sentence 1 against every token of sentence 2 (exactly two sentences), plus
        the two mean-pooled sentence vectors' similarity. With ``word``: that word's vector in each sentence against
        the others (2 to 8 sentences), e.g. "bank" in a river and in a money context.
        """
        for sentence in sentences:
            self.tokens(sentence)
        if word is None:
            if len(sentences) != 2:
                raise InvalidInput(f"give exactly two sentences to compare token by token (got {len(sentences)}), "
                                   "or a word to compare across sentences")
            with self.running():
                (rows, first), (columns, second) = (token_vectors(self.model, self.tokenizer, s) for s in sentences)
                pooled = encode(self.model, self.tokenizer, sentences, progress=False)
            matrix = cosine_similarity_matrix(torch.cat([first, second]))[: len(rows), len(rows):]
            sentence_similarity = round(float(cosine_similarity_matrix(pooled)[0, 1]), DECIMALS)
            return {"model": self.name, "mode": "tokens", "rows": rows, "columns": columns, "matrix": rounded(matrix),
                    "sentence_similarity": sentence_similarity}
        with self.running():
            vectors = torch.stack([word_vector(self.model, self.tokenizer, s, word) for s in sentences])
        return {"model": self.name, "mode": "word", "word": word, "rows": sentences, "columns": sentences,
                "matrix": rounded(cosine_similarity_matrix(vectors))}

    def shapes(self, text: str, text_pair: str | None = None) -> dict[str, Any]:
        """Every tensor's shape on the way from input_ids to the logits, as this input produces them.

        Read from forward hooks on the real modules (:mod:`bert.serve.shapes` says which, for each model type), in
        the order the forward pass reaches them; a layer's number is counted as the layers run.
        """
        tokens = self.tokens(text, text_pair)
        batch = model_inputs(self.tokenizer, self.model, text, text_pair)
        rows = [{"name": name, "module": "(tokenizer)", "symbols": "[B, T]", "shape": shape_of(batch[name]),
                 "part": "embeddings", "layer": None} for name in ("input_ids", "token_type_ids") if name in batch]
        module_names = {module: name for name, module in self.model.named_modules()}
        layer = -1

        def next_layer(module: nn.Module, inputs: Any) -> None:
            nonlocal layer
            layer += 1

        def record(labels: list[tuple[int, str, str]], part: str):
            def hook(module: nn.Module, inputs: Any, output: Any) -> None:
                outputs = output if isinstance(output, tuple) else (output,)
                for index, label, symbols in labels:
                    if (tensor := outputs[index]) is not None:
                        rows.append({"name": label, "module": module_names[module], "symbols": symbols,
                                     "shape": shape_of(tensor), "part": part,
                                     "layer": layer if part == "layer" else None})
            return hook

        with self.running():  # the hooks are added under the lock, so no other request's forward pass fires them
            handles = [module.register_forward_pre_hook(next_layer) for module in set(layers_in_order(self.model))]
            handles += [module.register_forward_hook(record(labels, part))
                        for module, labels, part in watched_modules(self.model)]
            try:
                self.model(**batch, output_attentions=True)
            finally:
                for handle in handles:
                    handle.remove()
        return {"model": self.name, "tokens": tokens, "dims": dimensions(self.model, len(tokens)), "tensors": rows}
