"""Fine-tuning BERT on three kinds of task, and predicting with the result; the API behind ``bert finetune`` and
``bert predict``.

* sequence classification / regression (:mod:`~bert.finetune.classification`): CSV/TSV/JSONL/JSON/Parquet tables,
  single texts or pairs
* token classification, e.g. NER (:mod:`~bert.finetune.ner`): CoNLL files, or rows of tokens and tags
  (:mod:`~bert.finetune.tagged`), BIO tags
* extractive question answering (:mod:`~bert.finetune.squad`): SQuAD v1.1 JSON, or rows of questions

Wherever a training, evaluation or prediction file is taken, a table held in memory is too: a list of dicts, a pandas
DataFrame or a ``datasets.Dataset``; ``.gz`` files are read decompressed.

Shared pieces: :mod:`~bert.finetune.tables` / :mod:`~bert.finetune.conll` / :mod:`~bert.finetune.tagged` (reading data),
:mod:`~bert.finetune.batching` (dynamic padding, length grouping), :mod:`~bert.finetune.config` (the settings),
:mod:`~bert.finetune.task` (fine-tuning as a task of the training engine, :mod:`bert.engine`: batches, loss,
best model, metrics.json) and :mod:`~bert.finetune.metrics` (accuracy/F1/correlations, seqeval, SQuAD EM/F1).
"""

from bert.finetune.classification import finetune_classifier, predict_classifier, predict_classifier_file
from bert.finetune.config import FinetuneConfig
from bert.finetune.ner import finetune_ner, predict_ner, predict_ner_file
from bert.finetune.squad import finetune_qa, predict_qa, predict_qa_file

__all__ = ["FinetuneConfig", "finetune_classifier", "finetune_ner", "finetune_qa", "predict_classifier",
           "predict_classifier_file", "predict_ner", "predict_ner_file", "predict_qa", "predict_qa_file"]
