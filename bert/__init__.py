"""bert: BERT from scratch in plain PyTorch, checkpoint-compatible with Hugging Face ``transformers``.

    from bert import BertForMaskedLM, BertTokenizer
    model = BertForMaskedLM.from_pretrained("bert-base-uncased")
"""

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
from bert.tokenizer import BertTokenizer

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
]

