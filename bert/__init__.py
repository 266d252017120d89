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


def __getattr__(name: str):
    # The tokenizer pulls in the `tokenizers` library; import it only when asked for.
    if name == "BertTokenizer":
        from bert.tokenizer import BertTokenizer

        return BertTokenizer
    raise AttributeError(f"module 'bert' has no attribute {name!r}")
