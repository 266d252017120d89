"""`bert attention`, `bert similarity`, `bert nsp` and the web explorer (FastAPI's TestClient) with RoBERTa, ALBERT
and DistilBERT checkpoints: attention maps equal the model's own (ALBERT's one shared layer still gives L maps),
word similarity finds byte-level and unigram pieces, models without a next-sentence head say so in one line, and the
explorer's info tells the page the model's mask token and that there is no NSP view."""

from __future__ import annotations

import json
import re

import pytest
import torch
from fastapi.testclient import TestClient
from support import make_tiny_variant, without_device_note

from bert.cli import main
from bert.inference.pipelines import load
from bert.inference.study import attention_maps
from bert.serve.app import create_app

VARIANTS = ("roberta", "albert", "distilbert")
NAMES = {"roberta": "RoBERTa", "albert": "ALBERT", "distilbert": "DistilBERT"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """variant → (tiny MaskedLM checkpoint folder, transformers' tokenizer for it)."""
    made = {}
    for variant in VARIANTS:
        folder = tmp_path_factory.mktemp(variant)
        made[variant] = folder, make_tiny_variant(folder, variant)
    return made


@pytest.mark.parametrize("variant", VARIANTS)
def test_attention_maps_are_the_models_own_one_per_layer(checkpoints, variant, tmp_path, capsys) -> None:
    folder, _ = checkpoints[variant]
    model, tokenizer = load("base", folder)
    text = "The quick brown fox jumps over the lazy dog."
    tokens, maps = attention_maps(model, tokenizer, text)
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        expected = model(**{k: v for k, v in batch.items()}, output_attentions=True).attentions
    layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    assert maps.shape == (layers, heads, len(tokens), len(tokens))  # ALBERT: its one layer, applied L times
    torch.testing.assert_close(maps, torch.stack([a[0] for a in expected]))
    if variant == "albert":
        assert not torch.equal(maps[0], maps[1])  # the same weights see different inputs
    assert tokens[0] == tokenizer.cls_token
    out = tmp_path / "attention.png"
    assert main(["attention", text, "--model", str(folder), "--out", str(out), "--layer", "1"]) == 0
    assert out.stat().st_size > 0 and f"layer 1, all {heads} heads, {len(tokens)} tokens" in capsys.readouterr().out


@pytest.mark.parametrize("variant", VARIANTS)
def test_similarity_of_sentences_and_of_a_word_in_context(checkpoints, variant, capsys) -> None:
    folder, _ = checkpoints[variant]
    texts = ["The river bank was muddy.", "She paid cash into the bank.", "Bank holidays are nice."]
    assert main(["similarity", *texts, "--model", str(folder), "--json"]) == 0
    matrix = torch.tensor(json.loads(capsys.readouterr().out))
    assert matrix.shape == (3, 3) and torch.allclose(matrix.diagonal(), torch.ones(3), atol=1e-5)
    # "bank" mid-sentence ("Ġbank", "▁bank") and, for RoBERTa, "Bank" at the very start (no space in front)
    assert main(["similarity", *texts[:2], "--model", str(folder), "--word", "bank", "--json"]) == 0
    assert torch.tensor(json.loads(capsys.readouterr().out)).shape == (2, 2)
    assert main(["similarity", "Bank holidays.", "The Bank of England.", "--model", str(folder), "--word", "Bank"]) == 0
    capsys.readouterr()
    assert main(["similarity", "A dog.", "A cat.", "--model", str(folder), "--word", "horse"]) == 1
    err = without_device_note(capsys.readouterr().err)
    assert "'horse' does not occur in 'A dog.'" in err and err.count("\n") == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_nsp_on_a_model_without_a_next_sentence_head_is_a_one_line_error(checkpoints, variant, capsys) -> None:
    folder, _ = checkpoints[variant]
    assert main(["nsp", "The man went to the store.", "He bought milk.", "--model", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"this {NAMES[variant]} model has no next-sentence head" in err and err.count("\n") == 1
    if variant == "albert":
        assert "sentence-order head (SOP)" in err and "not next-sentence prediction" in err


@pytest.mark.parametrize("variant", VARIANTS)
def test_explorer_serves_each_variant_with_its_mask_token_and_no_nsp_view(checkpoints, variant) -> None:
    folder, reference_tokenizer = checkpoints[variant]
    mask = reference_tokenizer.mask_token
    with TestClient(create_app(folder), raise_server_exceptions=False) as client:
        info = client.get("/api/info").json()
        assert (info["model_type"], info["mask_token"], info["next_sentence"]) == (variant, mask, False)
        assert info["layers"] == 2 and info["max_tokens"] == 64 and mask in info["special_tokens"]

        answer = client.post("/api/fill-mask", json={"text": f"The capital of France is {mask}."})
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1
        wrong = client.post("/api/fill-mask", json={"text": "The capital of France is [MASK]." if mask != "[MASK]"
                                                    else "The capital of France is <mask>."})
        assert wrong.status_code == 422 and f"no {mask} in the text" in wrong.json()["detail"]

        nsp = client.post("/api/nsp", json={"sentence_a": "A man.", "sentence_b": "He left."})
        assert nsp.status_code == 422 and "has no next-sentence head" in nsp.json()["detail"]

        attention = client.post("/api/attention", json={"text": "The cat sat.", "text_pair": "It slept."}).json()
        tokens = attention["tokens"]
        assert (attention["layers"], attention["heads"]) == (2, 4)
        assert torch.tensor(attention["attentions"]).shape == (2, 4, len(tokens), len(tokens))
        assert len(attention["token_type_ids"]) == len(tokens)
        assert set(attention["token_type_ids"]) == ({0, 1} if variant == "albert" else {0})

        similarity = client.post("/api/similarity", json={"sentences": ["The river bank.", "The bank paid."],
                                                          "word": "bank"})
        assert similarity.status_code == 200 and similarity.json()["mode"] == "word"


# rows per layer in the Shapes view, and the modules that must appear in it (a layer's, with {layer} for ALBERT's
# shared one, which shows up once per application)
SHAPE_ROWS = {"roberta": 8, "albert": 7, "distilbert": 8}
SHAPE_MODULES = {
    "roberta": ["roberta.embeddings.position_embeddings", "roberta.encoder.layer.1.attention.self", "lm_head"],
    "albert": ["albert.embeddings.word_embeddings", "albert.encoder.embedding_hidden_mapping_in",
               "albert.encoder.albert_layer_groups.0.albert_layers.0.attention", "predictions"],
    "distilbert": ["distilbert.embeddings", "distilbert.transformer.layer.1.ffn.lin1", "vocab_projector"],
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_shapes_view_traces_each_variants_own_modules_layer_by_layer(checkpoints, variant) -> None:
    folder, _ = checkpoints[variant]
    with TestClient(create_app(folder), raise_server_exceptions=False) as client:
        data = client.post("/api/shapes", json={"text": "The cat sat.", "text_pair": "It slept."}).json()
    rows, dims = data["tensors"], data["dims"]
    t = len(data["tokens"])
    assert (dims["T"], dims["L"], dims["V"]) == (t, 2, len(checkpoints[variant][1]))
    assert ("E" in dims) == (variant == "albert")
    per_layer = [sum(row["layer"] == i for row in rows) for i in range(2)]
    assert per_layer == [SHAPE_ROWS[variant]] * 2 and {row["part"] for row in rows} == {"embeddings", "layer", "heads"}
    layers = [row["layer"] for row in rows if row["part"] == "layer"]
    assert layers == sorted(layers) and all(row["layer"] is None for row in rows if row["part"] != "layer")
    assert set(SHAPE_MODULES[variant]) <= {row["module"] for row in rows}
    assert rows[-1]["part"] == "heads" and rows[-1]["shape"] == [1, t, dims["V"]]  # the MLM logits come last
    for row in rows:  # every row's symbolic shape, read with this input's sizes, is its real shape
        symbols = re.findall(r"[A-Z]|\d+", row["symbols"])
        assert [dims[s] for s in symbols] == row["shape"], row
