"""bert: BERT from scratch in plain PyTorch, checkpoint-compatible with Hugging Face ``transformers``.

    from bert import BertForMaskedLM, BertTokenizer
    model = BertForMaskedLM.from_pretrained("bert-base-uncased")

RoBERTa, ALBERT and DistilBERT (:mod:`bert.variants`) load and save their transformers checkpoints the same way.
"""

from bert import variants
from bert._version import __version__ as __version__  # the one version: bert/_version.py
from bert.config import BertConfig
from bert.errors import BertError
from bert.heads import (
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from bert.model import BertModel
from bert.tokenizer.wordpiece import BertTokenizer
from bert.variants import *  # noqa: F403

__all__ = [
    "BertConfig",
    "BertError",
    "BertForMaskedLM",
    "BertForNextSentencePrediction",
    "BertForPreTraining",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "BertTokenizer",
    *variants.__all__,
]
