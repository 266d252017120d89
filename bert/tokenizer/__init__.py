"""Tokenizers on the Rust ``tokenizers`` library, with a Hugging Face-compatible API.

How BERT turns text into ids
----------------------------
1. **Normalise** (``BertNormalizer``): drop control and zero-width characters, turn every whitespace character into a
   space, put spaces around CJK ideographs (so each becomes its own word) and, for *uncased* models, lower-case the text
   and strip accents (``"Café"`` -> ``"cafe"``).
2. **Pre-tokenise** (``BertPreTokenizer``): split on whitespace and split off every punctuation character.
3. **WordPiece**: split each word greedily into the longest vocabulary pieces, left to right. Pieces that continue a
   word carry a ``##`` prefix (``"unaffable"`` -> ``un ##aff ##able``). A word with no valid split, or longer than 100
   characters, becomes ``[UNK]``.
4. **Add special tokens**: a single text becomes ``[CLS] A [SEP]``; a pair (question + passage, premise + hypothesis)
   becomes ``[CLS] A [SEP] B [SEP]``. ``token_type_ids`` (segment ids) are 0 for ``[CLS] A [SEP]`` and 1 for
   ``B [SEP]``; ``attention_mask`` is 1 for real tokens and 0 for ``[PAD]`` tokens added to make a batch rectangular.

Steps 1-3 run in the fast Rust backend, and so does step 4 (the backend's post-processor, BERT's template installed
here); truncation and padding are done here in Python so that pair truncation follows the original BERT rule exactly
(google-research/bert ``_truncate_seq_pair``: while the pair is too long, drop the last token of the longer segment;
on a tie, of the second).

The modules:

* :mod:`~bert.tokenizer.fast`: :class:`~bert.tokenizer.fast.FastTokenizer`, what every model family shares (the
  call API, padding, tensors, decoding, lookups, saving);
* :mod:`~bert.tokenizer.wordpiece`: :class:`~bert.tokenizer.wordpiece.BertTokenizer`, BERT's WordPiece
  (:mod:`bert.variants.tokenizers` has RoBERTa's byte-level BPE and ALBERT's SentencePiece unigram);
* :mod:`~bert.tokenizer.specials`: the special tokens' roles, their check and properties, the pair templates;
* :mod:`~bert.tokenizer.truncation`: the pair truncation rules;
* :mod:`~bert.tokenizer.arguments` and :mod:`~bert.tokenizer.batch`: a call's argument checks, padding and tensors;
* :mod:`~bert.tokenizer.files`: reading tokenizer.json, vocab.txt and tokenizer_config.json.

Usage mirrors ``transformers.BertTokenizer(Fast)`` so existing code moves over::

    tok = BertTokenizer.from_pretrained("weights/bert-base-uncased")
    batch = tok(["a question?", "another one"], padding=True, truncation=True, max_length=128, return_tensors="pt")
"""

from bert.tokenizer.fast import FastTokenizer
from bert.tokenizer.wordpiece import BertTokenizer

__all__ = ["BertTokenizer", "FastTokenizer"]
