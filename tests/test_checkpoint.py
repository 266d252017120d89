"""Loading real and real-layout checkpoints, every name variant they use, saving, and clear errors for bad files."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import save_file
from support import perturb

import bert
from bert.hub import resolve_model_dir
from bert.weights import read_state_dict

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "BERT reads text in both directions at once!",
             "Short one."]


def tiny_config(**overrides) -> transformers.BertConfig:
    return transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=24, **overrides)


def save_reference(folder: Path, cls=transformers.BertForPreTraining, seed: int = 0) -> torch.nn.Module:
    """A random transformers ``cls`` saved to ``folder``, with every LayerNorm weight and bias and every bias
    (cls.predictions.bias too) set to distinct random values: freshly initialised they are 1 and 0 in every layer,
    so a loader that put one layer's (or one LayerNorm's) tensor in another's place would still give equal logits."""
    torch.manual_seed(seed)
    reference = cls(tiny_config()).eval()
    perturb(reference)
    assert_distinct_layer_norms_and_biases(reference)
    reference.save_pretrained(folder)
    return reference


def assert_distinct_layer_norms_and_biases(model: torch.nn.Module) -> None:
    """No two LayerNorm or bias tensors of the same shape are equal, and none is all ones or all zeros: a mix-up
    of any two of them, or one left at its initial value, changes the model."""
    tensors = [(name, p) for name, p in model.named_parameters() if "LayerNorm" in name or name.endswith("bias")]
    assert len(tensors) >= 10
    for i, (name, tensor) in enumerate(tensors):
        assert not torch.equal(tensor, torch.ones_like(tensor)) and not torch.equal(tensor, torch.zeros_like(tensor))
        for other, tensor2 in tensors[i + 1:]:
            assert tensor.shape != tensor2.shape or not torch.equal(tensor, tensor2), (name, other)


def assert_loaded_exactly(ours: torch.nn.Module, reference: torch.nn.Module) -> int:
    """Every tensor of ``ours`` equals the reference's tensor of the same name; returns how many were compared."""
    theirs = reference.state_dict()
    compared = 0
    for name, tensor in ours.state_dict().items():
        if name in theirs:
            assert torch.equal(tensor, theirs[name]), name
            compared += 1
    return compared


def rewrite_weights(folder: Path, rename) -> None:
    """Rewrite a saved checkpoint's model.safetensors with every tensor name passed through ``rename`` (None drops)."""
    state = read_state_dict(folder / "model.safetensors")
    renamed = {new: t.contiguous() for name, t in state.items() if (new := rename(name)) is not None}
    save_file(renamed, folder / "model.safetensors", metadata={"format": "pt"})


def logits_of(model, vocab_size: int = 64) -> torch.Tensor:
    ids = torch.arange(1, 11).remainder(vocab_size)[None]
    with torch.no_grad():
        out = model(ids)
    return out.prediction_logits if hasattr(out, "prediction_logits") else out.last_hidden_state


# ---- real weights -------------------------------------------------------------------------------------------------

def test_minilm_real_weights_match_transformers(minilm_dir):
    reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    ours = bert.BertModel.from_pretrained(minilm_dir)
    assert ours.load_report.missing == [] and ours.load_report.unexpected == []
    with torch.no_grad():
        theirs = reference(**batch)
        mine = ours(**batch)
    real = batch["attention_mask"].bool()  # padding positions hold no meaning (and are 0 in our packed path)
    assert (mine.last_hidden_state[real] - theirs.last_hidden_state[real]).abs().max() <= 1e-5
    assert (mine.pooler_output - theirs.pooler_output).abs().max() <= 1e-5


def test_bare_bertmodel_checkpoint_loads_into_head_classes_and_names_the_fresh_weights(minilm_dir, caplog):
    with caplog.at_level("WARNING", logger="bert"):
        classifier = bert.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=3)
    assert classifier.load_report.missing == ["classifier.bias", "classifier.weight"]
    assert "classifier.weight" in caplog.text and "freshly initialised" in caplog.text
    assert classifier.classifier.out_features == 3
    encoder = bert.BertModel.from_pretrained(minilm_dir)
    assert torch.equal(classifier.bert.encoder.layer[5].output.dense.weight,
                       encoder.encoder.layer[5].output.dense.weight)


# ---- the exact bert-base-uncased layout ---------------------------------------------------------------------------

def bert_base_uncased_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The names of the published bert-base-uncased file: TF-era LayerNorm gamma/beta, the tied decoder weight stored
    explicitly, cls.predictions.bias (no decoder.bias), and no position_ids buffer."""
    layout = {}
    for name, tensor in state.items():
        if name.endswith("position_ids") or name == "cls.predictions.decoder.bias":
            continue
        if "LayerNorm" in name:
            name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        layout[name] = tensor.clone().contiguous()
    layout["cls.predictions.decoder.weight"] = layout["bert.embeddings.word_embeddings.weight"]
    return layout


@pytest.mark.parametrize("file_format", ["safetensors", "bin"])
def test_full_size_bert_base_uncased_layout_loads_with_nothing_missing(tmp_path, file_format):
    config = transformers.BertConfig()  # bert-base-uncased: 12 layers, 768 hidden, 30522 words
    torch.manual_seed(0)
    reference = transformers.BertForPreTraining(config).eval()
    perturb(reference)  # LayerNorms and biases distinct in every layer (fresh: 1 and 0 everywhere)
    config.save_pretrained(tmp_path)
    state = bert_base_uncased_layout(reference.state_dict())
    assert len(state) == 207 and "bert.embeddings.LayerNorm.gamma" in state
    if file_format == "safetensors":
        state.pop("cls.predictions.decoder.weight")  # safetensors files cannot hold the same tensor twice
        save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    else:
        torch.save(state, tmp_path / "pytorch_model.bin")
    del state

    ours = bert.BertForPreTraining.from_pretrained(tmp_path)
    assert ours.load_report.missing == [] and ours.load_report.unexpected == []
    assert assert_loaded_exactly(ours, reference) == len(ours.state_dict()) == 207  # every tensor, exactly
    ids = torch.tensor([[101, 1996, 3007, 1997, 2605, 2003, 103, 1012, 102]])
    with torch.no_grad():
        theirs, mine = reference(ids), ours(ids)
    assert (mine.prediction_logits - theirs.prediction_logits).abs().max() <= 1e-5
    assert (mine.seq_relationship_logits - theirs.seq_relationship_logits).abs().max() <= 1e-5


# ---- name variants ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["legacy-layernorm", "decoder-bias-name", "decoder-weight-stored",
                                     "position-ids-buffer", "no-bert-prefix-base"])
def test_checkpoint_name_variants_load_identically(tmp_path, variant):
    reference = save_reference(tmp_path)
    renames = {
        "legacy-layernorm": lambda n: n.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                                                "LayerNorm.beta"),
        "decoder-bias-name": lambda n: "cls.predictions.decoder.bias" if n == "cls.predictions.bias" else n,
        "decoder-weight-stored": lambda n: n,
        "position-ids-buffer": lambda n: n,
        "no-bert-prefix-base": lambda n: n.removeprefix("bert."),
    }
    rewrite_weights(tmp_path, renames[variant])
    if variant in ("decoder-weight-stored", "position-ids-buffer"):
        state = read_state_dict(tmp_path / "model.safetensors")
        extra = ({"cls.predictions.decoder.weight": state["bert.embeddings.word_embeddings.weight"].clone()}
                 if variant == "decoder-weight-stored" else {"bert.embeddings.position_ids": torch.arange(24)[None]})
        save_file({**state, **extra}, tmp_path / "model.safetensors", metadata={"format": "pt"})
    ours = bert.BertForPreTraining.from_pretrained(tmp_path)
    if variant != "no-bert-prefix-base":  # that file lost its cls.* heads' prefix-free names: they stay cls.*
        assert ours.load_report.missing == []
    assert assert_loaded_exactly(ours, reference) == len(ours.state_dict())
    assert (logits_of(ours) - logits_of(reference)).abs().max() <= 1e-5


def test_head_checkpoint_loads_into_bare_model_and_reports_the_unused_heads(tmp_path):
    reference = save_reference(tmp_path)
    ours = bert.BertModel.from_pretrained(tmp_path)
    assert ours.load_report.missing == []
    assert "cls.seq_relationship.weight" in ours.load_report.unexpected
    assert (logits_of(ours) - logits_of(reference.bert)).abs().max() <= 1e-5


def test_sharded_safetensors_checkpoint_loads(tmp_path):
    reference = save_reference(tmp_path)
    state = read_state_dict(tmp_path / "model.safetensors")
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, tmp_path / shard, metadata={"format": "pt"})
    (tmp_path / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    ours = bert.BertForPreTraining.from_pretrained(tmp_path)
    assert ours.load_report.missing == []
    assert (logits_of(ours) - logits_of(reference)).abs().max() <= 1e-5


def test_config_overrides_and_fp16_files_load(tmp_path):
    reference = save_reference(tmp_path, cls=transformers.BertModel)
    model = bert.BertModel.from_pretrained(tmp_path, hidden_dropout_prob=0.0)
    assert model.config.hidden_dropout_prob == 0.0
    model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    half = bert.BertModel.from_pretrained(tmp_path / "half")
    assert half.embeddings.word_embeddings.weight.dtype == torch.float32
    assert (logits_of(half) - logits_of(reference)).abs().max() < 1e-2


# ---- name resolution ----------------------------------------------------------------------------------------------

def test_names_resolve_through_weights_folder_and_hf_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_reference(tmp_path / "weights" / "my-bert")
    assert resolve_model_dir("my-bert") == tmp_path / "weights" / "my-bert"

    snapshot = tmp_path / "hub" / "models--someone--cached-bert" / "snapshots" / "abc123"
    save_reference(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model_dir("someone/cached-bert") == snapshot
    assert bert.BertForPreTraining.from_pretrained("someone/cached-bert").load_report.missing == []


def test_unknown_model_offline_says_how_to_get_the_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(bert.BertError, match=r"not found.*weights/no-such-bert"):
        bert.BertModel.from_pretrained("no-such-bert")


# ---- bad files: one clear error each ------------------------------------------------------------------------------

def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path):
    save_reference(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 48
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(bert.BertError,
                       match=r"intermediate\.dense\.bias has shape \(32,\) in the checkpoint but \(48,\) in the model"):
        bert.BertForPreTraining.from_pretrained(tmp_path)


def test_corrupt_and_truncated_safetensors_are_clear_errors(tmp_path):
    save_reference(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(bert.BertError, match="not a readable safetensors file"):
        bert.BertModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(bert.BertError, match="not a readable safetensors file"):
        bert.BertModel.from_pretrained(tmp_path)


class Exploit:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_pickled_objects_in_a_bin_file_are_refused_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_config().save_pretrained(tmp_path)
    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"bert.embeddings.word_embeddings.weight": Exploit()}, f)
    with pytest.raises(bert.BertError, match="refusing"):
        bert.BertModel.from_pretrained(tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_non_bert_checkpoint_is_named_as_such(tmp_path):
    tiny_config().save_pretrained(tmp_path)
    save_file({"h.0.attn.c_attn.weight": torch.zeros(4, 12), "wte.weight": torch.zeros(10, 4)},
              tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(bert.BertError, match="no BERT weights.*h.0.attn"):
        bert.BertModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": 15}, "not divisible"),
    ({"num_hidden_layers": -1}, "positive integer"),
    ({"hidden_act": "swish"}, "hidden_act 'swish' is not supported"),
    ({"model_type": "gpt2"}, "not 'bert'"),
])
def test_invalid_config_values_are_clear_errors(tmp_path, change, message):
    save_reference(tmp_path)
    config = {**json.loads((tmp_path / "config.json").read_text()), **change}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(bert.BertError, match=message):
        bert.BertModel.from_pretrained(tmp_path)


def test_missing_config_and_missing_weights_are_clear_errors(tmp_path):
    save_reference(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(bert.BertError, match="no config.json"):
        bert.BertModel.from_pretrained(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(bert.BertError, match="no weights in"):
        bert.BertModel.from_pretrained(empty)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    model = bert.BertModel(bert.BertConfig.from_dict(tiny_config().to_dict()))
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_saved_files_get_ordinary_permissions(tmp_path):
    model = bert.BertModel(bert.BertConfig.from_dict(tiny_config().to_dict()))
    previous = os.umask(0o022)
    try:
        model.save_pretrained(tmp_path)
    finally:
        os.umask(previous)
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
