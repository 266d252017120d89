"""BERT's descendants as short files of differences: each module docstring lists what its variant changes.

    from bert import RobertaForMaskedLM
    model = RobertaForMaskedLM.from_pretrained("path/to/a/roberta/checkpoint")   # saved by transformers or by us

They reuse :mod:`bert.model` (attention math, layer loop, padding) and the heads of :mod:`bert.heads` where the math is
BERT's, and load and save Hugging Face checkpoints under their own names (``roberta.``, ``albert.``, ``distilbert.``).
Each module's ``__all__`` lists what it exports; this package re-exports them all.
"""

from bert.variants import albert, distilbert, megatron_bert, roberta, tokenizers
from bert.variants.albert import *  # noqa: F403
from bert.variants.auto import auto_class, auto_tokenizer
from bert.variants.distilbert import *  # noqa: F403
from bert.variants.megatron_bert import *  # noqa: F403
from bert.variants.roberta import *  # noqa: F403
from bert.variants.tokenizers import *  # noqa: F403

__all__ = [*albert.__all__, *distilbert.__all__, *megatron_bert.__all__, *roberta.__all__, *tokenizers.__all__,
           "auto_class", "auto_tokenizer"]
