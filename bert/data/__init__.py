"""Pretraining data: corpus reading, WordPiece vocabulary training, sentence-pair examples, storage, masking.

The pieces, in pipeline order (each module's docstring has the details):

* :mod:`.tokenizer_training` -- :func:`train_tokenizer`, a WordPiece vocabulary from your corpus;
* :mod:`.sources`, :mod:`.rows`, :mod:`.hub_datasets` -- the inputs: files, folders, ``.gz``, tables (JSONL, JSON,
  CSV, TSV, Parquet, DataFrames, ``datasets``);
* :mod:`.corpus` -- documents of sentences from text files (``plain``, ``wikitext``, ``gutenberg``) or table rows;
* :mod:`.tokenized` -- the corpus as flat id arrays;
* :mod:`.examples` -- next-sentence pairs exactly as google-research/bert builds them;
* :mod:`.prepare` -- :func:`prepare_pretraining_data`, all of the above written to disk (``bert prepare``);
* :mod:`.dataset` -- the on-disk format and :class:`PretrainingDataset` over memory maps;
* :mod:`.masking` -- :class:`MaskingCollator`, dynamic (whole-word) masking as a DataLoader ``collate_fn``.
"""

from bert.data.corpus import CorpusWarning, iter_documents
from bert.data.dataset import PretrainingDataset
from bert.data.examples import create_pairs, truncate_seq_pair
from bert.data.masking import MaskingCollator, mask_tokens
from bert.data.prepare import load_meta, prepare_pretraining_data
from bert.data.sentences import split_sentences
from bert.data.tokenizer_training import train_tokenizer

__all__ = [
    "CorpusWarning",
    "MaskingCollator",
    "PretrainingDataset",
    "create_pairs",
    "iter_documents",
    "load_meta",
    "mask_tokens",
    "prepare_pretraining_data",
    "split_sentences",
    "train_tokenizer",
    "truncate_seq_pair",
]
