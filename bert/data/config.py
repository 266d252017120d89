"""The settings of ``bert prepare`` and ``bert train-tokenizer``, each defined once (see :mod:`bert.settings`): a
field's default and help are the Python API's default and the CLI flag's (``--field-name``)."""

from __future__ import annotations

from dataclasses import dataclass

from bert.data.corpus import FORMATS
from bert.errors import BertError
from bert.settings import setting

OBJECTIVES = ("mlm+nsp", "mlm", "mlm+sop")
FORMAT_HELP = ("how files are read: auto (default): by extension (.gz removed), .jsonl/.ndjson, .json, .csv, .tsv and "
               ".parquet as those tables, anything else as plain; plain: a blank line between documents, one sentence "
               "or paragraph per line; wikitext: the tokenized WikiText release (' = Title = ' lines start documents); "
               "gutenberg: Project Gutenberg eBooks (text between the START/END lines, wrapped paragraphs joined, one "
               "document per file); jsonl, json (an array of objects), csv, tsv, parquet (pip install pyarrow): tables "
               "whose rows are documents (see --text-column). A folder means every file under it, recursively, sorted, "
               "hidden ones skipped; a .gz file is read decompressed")


@dataclass
class CorpusReading:
    """Where the text comes from and how it is read: the settings ``bert prepare`` and ``bert train-tokenizer``
    share (see :mod:`bert.data.corpus`)."""

    format: str = setting("auto", FORMAT_HELP, choices=FORMATS, metavar="FORMAT")
    text_column: str = setting("text", "the column of a table (a jsonl, json, csv, tsv or parquet file, --dataset) "
                                       "that holds the text; each row is one document", metavar="NAME")
    dataset: str | None = setting(
        None, "read a Hugging Face dataset too (pip install datasets): a Hub name, a local folder of data files or a "
              "save_to_disk folder; NAME:CONFIG names a configuration", metavar="NAME[:CONFIG]")
    split: str = setting("train", "the split of --dataset to read", metavar="SPLIT")


@dataclass
class PrepareConfig(CorpusReading):
    """How ``bert prepare`` turns text into pretraining examples (see
    :func:`bert.data.prepare.prepare_pretraining_data`)."""

    objective: str = setting(
        "mlm+nsp", "mlm+nsp: sentence pairs with next-sentence labels (BERT); mlm+sop: two consecutive segments of one "
                   "document, swapped for half of the examples, with sentence-order labels (ALBERT; trains BERT's or "
                   "ALBERT's sentence head); mlm: consecutive sentences packed into full-length sequences, a [SEP] "
                   "between documents, no sentence labels (RoBERTa, DistilBERT; for corpora without document order)",
        choices=OBJECTIVES)
    max_seq_len: int = setting(128, "tokens per example", metavar="N")
    seed: int = setting(12345, "random seed (the original's)", metavar="N")
    short_seq_prob: float = setting(0.1, "chance of a shorter target length", metavar="P")
    sentence_pair_prob: float = setting(
        0.0, "mlm+nsp: chance that a training sentence also starts a one-sentence pair, B its next sentence or a "
             "random other document's, half each (0: the original's pairs only, where a one-sentence A always gets "
             "a random B)", metavar="P")
    dupe_factor: int = setting(1, "passes over the corpus with different pairings (masking is dynamic, so 1 "
                                   "suffices)", metavar="N")
    eval_fraction: float = setting(0.02, "fraction of documents held out for evaluation (at least one; 0 for none)",
                                    metavar="F")
    eval_files: list[str] | None = setting(
        None, "build the evaluation split from these files (e.g. a validation split) instead of held-out documents",
        metavar="FILE")
    sentence_split: bool = setting(True, "split lines into sentences (--no-sentence-split: each line is one "
                                          "sentence, the input is already split)")

    def validate(self) -> None:
        """BertError for settings that cannot work, before anything is read."""
        checks = [
            (self.objective in OBJECTIVES, f"unknown objective {self.objective!r}; use one of {', '.join(OBJECTIVES)}"),
            (self.max_seq_len >= 5, "--max-seq-len must be at least 5 ([CLS] A [SEP] B [SEP] with 2 tokens), got "
                                    f"{self.max_seq_len}"),
            (0.0 <= self.short_seq_prob <= 1.0, f"--short-seq-prob must be between 0 and 1, got {self.short_seq_prob}"),
            (0.0 <= self.sentence_pair_prob <= 1.0,
             f"--sentence-pair-prob must be between 0 and 1, got {self.sentence_pair_prob}"),
            (self.sentence_pair_prob == 0 or self.objective == "mlm+nsp",
             f"--sentence-pair-prob makes next-sentence pairs: use it with --objective mlm+nsp, not {self.objective}"),
            (self.dupe_factor >= 1, f"--dupe-factor must be at least 1, got {self.dupe_factor}"),
            (0.0 <= self.eval_fraction < 1.0, f"--eval-fraction must be in [0, 1), got {self.eval_fraction}"),
            (self.format in FORMATS, f"unknown corpus format {self.format!r}; use one of {', '.join(FORMATS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise BertError(message)


@dataclass
class TokenizerTrainingConfig(CorpusReading):
    """How ``bert train-tokenizer`` trains a WordPiece vocabulary (see
    :func:`bert.data.tokenizer_training.train_tokenizer`)."""

    cased: bool = setting(False, "keep case and accents (default: lower-case and strip accents)")
    min_frequency: int = setting(2, "least pair count to merge", metavar="N")
