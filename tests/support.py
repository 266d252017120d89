"""Shared by the tests: a tiny random checkpoint, and a real ``bert serve`` process on loopback."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from bert.config import BertConfig
from bert.heads import BertForPreTraining
from bert.inference.pipelines import DEMO_MODEL
from bert.model import BertModel

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json")
DEVICE_NOTE = re.compile(r"^bert [a-z-]+: device [^,\n]+, (float32|bfloat16|float16|int8)\n", re.MULTILINE)


def without_device_note(err: str) -> str:
    """A command's stderr without the ``bert COMMAND: device cpu, float32`` line that every command running a model
    prints once it is loaded (bert.cli.inference.load_model), so that the checks of its other lines stay exact."""
    return DEVICE_NOTE.sub("", err, count=1)


def random_bert_with_real_vocab(folder: Path, minilm_dir: Path) -> Path:
    """A randomly initialised 2-layer BertModel (H 32) in ``folder``, with the real bert-base-uncased tokenizer files
    of ``minilm_dir``: fine-tuning runs that take seconds on real words."""
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=128)).save_pretrained(folder)
    return folder


def make_tiny_model(folder: Path, max_positions: int = 64, cls: type = BertForPreTraining, **overrides: Any) -> Path:
    """A random 2-layer ``cls`` (default BertForPreTraining; hidden 32, 4 heads, no dropout; ``overrides`` replace
    config fields, e.g. labels) saved with the bundled demo model's vocabulary (bert-base-uncased's)."""
    fields = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                  max_position_embeddings=max_positions, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    cls(BertConfig(**{**fields, **overrides})).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(DEMO_MODEL / name, folder / name)
    return folder


class ServerProcess:
    """``python -m bert serve --model M --port 0`` in a subprocess: its URL (read from what it prints), its RSS.

    ``python_args`` replace ``-m bert``, e.g. ``("-c", code)`` to run ``bert serve`` with something patched in (the
    code gets ``serve --model M --port 0`` as ``sys.argv[1:]``)."""

    def __init__(self, model: str | os.PathLike, start_timeout: float = 90.0,
                 python_args: tuple[str, ...] = ("-m", "bert")) -> None:
        self.model = str(model)
        self.python_args = python_args
        self.start_timeout = start_timeout
        self.output: list[str] = []
        self.url = ""
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        env.setdefault("OMP_NUM_THREADS", "1")
        command = [sys.executable, *self.python_args, "serve", "--model", self.model, "--port", "0"]
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        found = threading.Event()

        def read() -> None:  # keeps draining the pipe for the server's whole life, so it never blocks on a full pipe
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
                if match and not self.url:
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while not found.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("bert serve did not start:\n" + "\n".join(self.output[-30:]))
        with httpx.Client(base_url=self.url, timeout=10) as client:
            assert client.get("/api/info").status_code == 200
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> int | None:
        """Ctrl-C (SIGINT), as a user stops it; killed if it has not shut down 15 s later. Returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        return self.process.returncode

    def rss_bytes(self) -> int:
        """The server process's resident memory, from /proc."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/PID/status")


# ---- tokenizers of the variants, trained here (the released files are not available offline) -------------------

VARIANT_CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Café crème brûlée, naïve résumé!", "東京は日本の首都です。",
    "Emoji 😀 and 🎉 at the party", "  extra   spaces  here ", "Hello world, hello WORLD.",
    "The capital of France is Paris.", "She paid the cash into the bank by the river.",
    "Don't stop: it's 42 degrees (really) -- isn't it?", "Straße, ÆØÅ and ñandú in one line.",
] * 30


def train_roberta_tokenizer(folder: Path, vocab_size: int = 500) -> Any:
    """A small byte-level BPE trained on VARIANT_CORPUS, wrapped as transformers' RobertaTokenizerFast (with the
    released models' ``<mask>`` that takes the space before it) and saved to ``folder``; returns the transformers
    tokenizer. ``vocab.json`` and ``merges.txt`` are written too, as the released checkpoints have them."""
    import json

    import transformers
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.train_from_iterator(VARIANT_CORPUS, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(backend.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = transformers.RobertaTokenizerFast(
        vocab=model["vocab"], merges=merges, model_max_length=512,
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False))
    tokenizer.save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return tokenizer


def train_albert_tokenizer(folder: Path, vocab_size: int = 300, corpus: list[str] | None = None) -> Any:
    """A small unigram model trained on ``corpus`` (default VARIANT_CORPUS), wrapped as transformers'
    AlbertTokenizerFast (which adds ALBERT's normaliser, Metaspace and [CLS]/[SEP] template) and saved to ``folder``;
    returns that tokenizer."""
    import json

    import transformers
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    backend = Tokenizer(models.Unigram())
    backend.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.train_from_iterator(corpus or VARIANT_CORPUS, trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], unk_token="<unk>",
        show_progress=False))
    vocab = [tuple(piece) for piece in json.loads(backend.to_str())["model"]["vocab"]]
    tokenizer = transformers.AlbertTokenizerFast(vocab=vocab, model_max_length=512)
    tokenizer.save_pretrained(folder)
    return tokenizer


def make_tiny_variant(folder: Path, model_type: str, head: str = "ForMaskedLM") -> Any:
    """A random 2-layer transformers ``<Variant><head>`` (hidden 32, no dropout) saved to ``folder`` with its own
    kind of tokenizer: the trained ones above for RoBERTa and ALBERT, the demo model's WordPiece for DistilBERT and
    Megatron-BERT.
    Returns transformers' tokenizer for it."""
    import transformers

    if model_type == "megatron-bert":  # pre-LN BERT: BERT's WordPiece vocabulary
        for name in TOKENIZER_FILES:
            shutil.copy(DEMO_MODEL / name, folder / name)
        tokenizer = transformers.BertTokenizerFast.from_pretrained(folder)
        config = transformers.MegatronBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                                 num_attention_heads=4, intermediate_size=64,
                                                 max_position_embeddings=64, hidden_dropout_prob=0.0,
                                                 attention_probs_dropout_prob=0.0)
    elif model_type == "distilbert":
        for name in TOKENIZER_FILES:
            shutil.copy(DEMO_MODEL / name, folder / name)
        tokenizer = transformers.DistilBertTokenizerFast.from_pretrained(folder)
        config = transformers.DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=4,
                                               hidden_dim=64, max_position_embeddings=64, dropout=0.0,
                                               attention_dropout=0.0)
    elif model_type == "roberta":
        tokenizer = train_roberta_tokenizer(folder)
        config = transformers.RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, intermediate_size=64, max_position_embeddings=66,
                                            type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
                                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    else:
        tokenizer = train_albert_tokenizer(folder)
        config = transformers.AlbertConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=32,
                                           num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                           max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    prefix = {"distilbert": "DistilBert", "roberta": "Roberta", "albert": "Albert",
              "megatron-bert": "MegatronBert"}[model_type]
    getattr(transformers, prefix + head)(config).save_pretrained(folder)
    return tokenizer


# ---- fine-tuning data: tiny files of each task's format -----------------------------------------------------------

POSITIVE = ["a great film", "wonderful and moving", "i loved it", "superb acting", "great fun", "a delight"]
NEGATIVE = ["a terrible film", "boring and dull", "i hated it", "awful acting", "a waste of time", "dreadful"]


def ctrl_c_during_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    """Send SIGINT to this process in the middle of optimizer step ``step`` of the pretraining loop (as if the user
    pressed Ctrl-C then); undo with ``monkeypatch.undo()`` before resuming."""
    from bert.pretraining.batches import DataOrder

    original, calls = DataOrder.next_step, {"n": 0}

    def next_step(self: DataOrder):
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self)

    monkeypatch.setattr(DataOrder, "next_step", next_step)


def sentiment_file(path: Path, repeat: int = 4) -> Path:
    """A TSV of sentence/label rows, pos and neg, ``repeat`` times over."""
    rows = [(t, "pos") for t in POSITIVE] + [(t, "neg") for t in NEGATIVE]
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows * repeat), encoding="utf-8")
    return path


def conll_file(path: Path) -> Path:
    """A CoNLL file of 9 tagged sentences (PER and LOC entities)."""
    sentences = [[("Alice", "B-PER"), ("lives", "O"), ("in", "O"), ("Paris", "B-LOC")],
                 [("Bob", "B-PER"), ("Smith", "I-PER"), ("visited", "O"), ("New", "B-LOC"), ("York", "I-LOC")],
                 [("the", "O"), ("unaffable", "O"), ("Carol", "B-PER"), ("left", "O"), ("London", "B-LOC")]]
    text = "-DOCSTART-\tO\n\n" + "\t\n".join("".join(f"{w}\t{t}\n" for w, t in s) for s in sentences * 3)
    path.write_text(text, encoding="utf-8")
    return path


def squad_file(path: Path) -> Path:
    """A SQuAD v1.1 JSON file: 3 articles of the same 4 questions."""
    import json

    facts = [("Who wrote the notes?", "Ada Lovelace wrote the notes in 1843 about the engine.", "Ada Lovelace"),
             ("When did she write them?", "Ada Lovelace wrote the notes in 1843 about the engine.", "1843"),
             ("Where is the tower?", "The Eiffel Tower stands in  Paris, near the Seine river.", "Paris"),
             ("What river is near it?", "The Eiffel Tower stands in  Paris, near the Seine river.", "Seine")]
    articles = []
    for a in range(3):
        paragraphs = [{"context": c, "qas": [{"id": f"{a}-{i}", "question": q,
                                              "answers": [{"text": ans, "answer_start": c.index(ans)}]}]}
                      for i, (q, c, ans) in enumerate(facts)]
        articles.append({"title": f"article {a}", "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")
    return path


def mean_loss(model: torch.nn.Module, features: list[dict], pad_token_id: int = 0) -> float:
    """The model's loss on all ``features`` as one batch, in eval mode."""
    from bert.finetune.batching import collate

    model.eval()
    with torch.no_grad():
        return float(model(**collate(features, pad_token_id)).loss)


def make_weights_distinctive(folder: Path, seed: int = 0, scale: float = 0.05) -> dict[str, torch.Tensor]:
    """Add independent noise to every floating tensor of ``folder/model.safetensors`` (saved back in place) and
    return the new tensors: no tensor then equals what a fresh initialisation gives (LayerNorm 1 and 0, zero
    biases), so a test that compares a model to the checkpoint sees every tensor that was not loaded."""
    from safetensors.torch import load_file, save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = load_file(folder / "model.safetensors")
    for name, tensor in tensors.items():
        if tensor.is_floating_point():
            tensors[name] = tensor + scale * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return tensors


def perturb(model: torch.nn.Module) -> None:
    """Make LayerNorm and bias parameters non-trivial (weights N(0.5, 0.2), biases N(0, 0.2), drawn from torch's
    global generator), so that a mix-up of them would show: freshly initialised, they are 1 and 0 in every layer."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name.lower() or name.endswith("bias"):
                parameter.normal_(0.5 if name.endswith("weight") else 0.0, 0.2)


def pretraining_engine(config: Any, world: Any) -> Any:
    """The engine of a pretraining run, built but not started (``.task`` is the pretraining task)."""
    from bert.engine.loop import Engine
    from bert.pretraining.task import PretrainingTask

    return Engine(PretrainingTask(config, world))


def distillation_engine(config: Any, world: Any) -> Any:
    """The engine of a distillation run, built but not started (``.task`` is the distillation task)."""
    from bert.engine.loop import Engine
    from bert.pretraining.distill import DistillationTask

    return Engine(DistillationTask(config, world))
