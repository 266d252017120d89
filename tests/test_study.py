"""bert.inference.study and the pictures it draws: attention maps as tensors, `bert attention`,
`bert similarity --out`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from support import without_device_note

import bert
from bert.cli import main
from bert.config import BertConfig
from bert.errors import BertError
from bert.inference.pipelines import load, model_inputs
from bert.inference.study import attention_maps, plot_attention, plot_similarity

TEXT = "The cat sat on the mat."
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, minilm_dir) -> Path:
    """A small random BertForPreTraining (3 layers, 4 heads) with the real bert-base-uncased vocabulary."""
    folder = tmp_path_factory.mktemp("tiny-study")
    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64)
    bert.BertForPreTraining(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, without_device_note(captured.err)


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_SIGNATURE


def test_attention_maps_are_rows_of_probabilities_equal_to_the_models_own_attentions(minilm_dir):
    model, tokenizer = load(bert.BertModel, minilm_dir)
    tokens, maps = attention_maps(model, tokenizer, TEXT)
    config = model.config
    assert tokens == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
    assert maps.shape == (config.num_hidden_layers, config.num_attention_heads, len(tokens), len(tokens))
    assert torch.allclose(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-5)
    assert (maps >= 0).all()
    with torch.no_grad():
        expected = model(**model_inputs(tokenizer, model, TEXT), output_attentions=True).attentions
    assert torch.equal(maps, torch.stack([layer[0] for layer in expected]))


def test_attention_maps_read_the_encoder_inside_a_head_class(tiny_dir):
    masked_lm, tokenizer = load(bert.BertForMaskedLM, tiny_dir)
    encoder, _ = load(bert.BertModel, tiny_dir)
    assert torch.allclose(attention_maps(masked_lm, tokenizer, TEXT)[1], attention_maps(encoder, tokenizer, TEXT)[1])


def test_attention_maps_refuse_empty_text(tiny_dir):
    model, tokenizer = load(bert.BertModel, tiny_dir)
    with pytest.raises(BertError, match="empty"):
        attention_maps(model, tokenizer, "  ")


def test_plots_label_both_axes_with_the_tokens_and_title_model_layer_and_head(tiny_dir):
    model, tokenizer = load(bert.BertModel, tiny_dir)
    tokens, maps = attention_maps(model, tokenizer, TEXT)
    one = plot_attention(tokens, maps, layer=1, head=2, model_name="tiny")
    axes = one.axes[0]
    assert axes.get_title() == "tiny: layer 1, head 2"
    assert [label.get_text() for label in axes.get_xticklabels()] == tokens
    assert [label.get_text() for label in axes.get_yticklabels()] == tokens
    grid = plot_attention(tokens, maps, layer=2, model_name="tiny")
    assert grid.get_suptitle().startswith("tiny: layer 2, all 4 heads")
    assert [axes.get_title() for axes in grid.axes[:4]] == ["head 0", "head 1", "head 2", "head 3"]
    similarity = plot_similarity(["a", "b"], torch.tensor([[1.0, 0.5], [0.5, 1.0]]), title="two")
    assert similarity.axes[0].get_title() == "two"
    assert similarity.axes[0].images[0].get_clim() == (-1.0, 1.0)  # a cosine's whole range unless told otherwise
    # Values close together get a narrow scale; the annotations stay readable: white on dark cells, black on light.
    narrow = plot_similarity(["a", "b"], torch.tensor([[1.0, 0.7], [0.7, 1.0]]), vmin=0.7, vmax=1.0, cmap="viridis")
    assert narrow.axes[0].images[0].get_clim() == (0.7, 1.0)
    colours = {text.get_text(): text.get_color() for text in narrow.axes[0].texts}
    assert colours == {"0.70": "white", "1.00": "black"}  # viridis: dark purple at the bottom, yellow at the top
    with pytest.raises(BertError, match="vmin must be below vmax"):
        plot_similarity(["a", "b"], torch.eye(2), vmin=1.0, vmax=0.5)
    if "matplotlib.pyplot" in sys.modules:  # another test imported pyplot: the plots are its figures
        for figure in (one, grid, similarity, narrow):
            sys.modules["matplotlib.pyplot"].close(figure)


def test_attention_cli_writes_a_png_for_one_head_and_a_grid_of_all_heads(tiny_dir, tmp_path, capsys):
    head = tmp_path / "head.png"
    code, out, err = run(["attention", TEXT, "--model", str(tiny_dir), "--layer", "1", "--head", "2",
                          "--out", str(head)], capsys)
    assert code == 0, err
    assert is_png(head) and "layer 1, head 2, 9 tokens" in out
    grid = tmp_path / "more" / "grid.png"  # a missing folder is created
    code, out, err = run(["attention", TEXT, "--model", str(tiny_dir), "--out", str(grid)], capsys)
    assert code == 0, err
    assert is_png(grid) and "layer 2, all 4 heads" in out  # default: the last layer
    assert grid.stat().st_size > head.stat().st_size
    assert sorted(path.name for path in grid.parent.iterdir()) == ["grid.png"]  # no temporary file left


@pytest.mark.parametrize(("arguments", "message"), [
    (["--layer", "3"], "layer 3 is out of range: this model has 3 layers, numbered 0 to 2"),
    (["--layer", "-1"], "layer -1 is out of range"),
    (["--head", "4"], "head 4 is out of range: this model has 4 heads, numbered 0 to 3"),
    (["--head", "first"], "--head must be a head number"),
], ids=["layer", "negative-layer", "head", "head-not-a-number"])
def test_attention_cli_rejects_a_layer_or_head_out_of_range_with_one_line(tiny_dir, tmp_path, capsys, arguments,
                                                                          message):
    out = tmp_path / "attention.png"
    code, _, err = run(["attention", TEXT, "--model", str(tiny_dir), "--out", str(out), *arguments], capsys)
    assert code == 1
    assert err.startswith("bert attention: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_attention_cli_rejects_empty_text_and_unwritable_out_with_one_line(tiny_dir, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    cases = [("  ", tmp_path / "a.png", "the text is empty"),
             (TEXT, a_file / "a.png", f"cannot create {a_file}"),
             (TEXT, tmp_path, "it is a folder")]
    for text, out, message in cases:
        code, _, err = run(["attention", text, "--model", str(tiny_dir), "--out", str(out)], capsys)
        assert code == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file.txt"]


@pytest.fixture(scope="module")
def minilm_in_transformers(minilm_dir) -> tuple:
    """all-MiniLM-L6-v2 as transformers loads it: (BertModel in eval mode, BertTokenizerFast)."""
    import transformers

    return (transformers.BertModel.from_pretrained(minilm_dir).eval(),
            transformers.BertTokenizerFast.from_pretrained(minilm_dir))


def transformers_cosines(reference_and_tokenizer: tuple, texts: list[str], word: str | None) -> torch.Tensor:
    """[K, K] cosine similarities computed with transformers alone: of the mean of the last layer's vectors of the
    word pieces that spell ``word``'s first occurrence in each text (found by characters, through the tokenizer's
    offsets), or, without a word, of each text's mean-pooled last layer."""
    import re

    reference, tokenizer = reference_and_tokenizer
    vectors = []
    for text in texts:
        batch = tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
        offsets = batch.pop("offset_mapping")[0].tolist()
        with torch.no_grad():
            hidden = reference(**batch).last_hidden_state[0]
        if word is None:
            vectors.append(hidden.mean(0))
            continue
        found = re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)
        assert found, f"{word!r} is not in {text!r}"
        pieces = [i for i, (start, end) in enumerate(offsets) if end > start and found.start() <= start
                  and end <= found.end()]
        assert pieces and offsets[pieces[0]][0] == found.start() and offsets[pieces[-1]][1] == found.end()
        vectors.append(hidden[pieces].mean(0))
    normalised = torch.nn.functional.normalize(torch.stack(vectors), dim=-1)
    return normalised @ normalised.T


@pytest.mark.parametrize(("texts", "word"), [
    (["He sat by the river bank.", "She deposited cash at the bank.", "The bank approved the loan."], "bank"),
    (["The overdraft fee was high.", "He ran up an overdraft at the bank.", "Overdraft limits were raised, then cut."],
     "overdraft"),  # three word pieces: over ##dra ##ft
    (["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."], None),
], ids=["one-piece-word", "three-piece-word", "mean-pooled-sentences"])
def test_similarity_out_draws_and_prints_transformers_cosines_in_every_cell(minilm_dir, minilm_in_transformers,
                                                                             tmp_path, monkeypatch, capsys, texts,
                                                                             word):
    import bert.inference.study

    drawn = {}
    original_save_png = bert.inference.study.save_png

    def save_png(figure, path):  # what `--out` draws: the heatmap's cells and the numbers written in them
        axes = figure.axes[0]
        drawn["cells"] = torch.tensor(axes.images[0].get_array().tolist())
        drawn["labels"] = [[float(t.get_text()) for t in axes.texts][i * len(texts):(i + 1) * len(texts)]
                           for i in range(len(texts))]
        drawn["title"] = axes.get_title()
        return original_save_png(figure, path)

    monkeypatch.setattr(bert.inference.study, "save_png", save_png)
    out = tmp_path / "similarity.png"
    argv = ["similarity", *texts, *(["--word", word] if word else []), "--model", str(minilm_dir), "--out", str(out)]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    assert is_png(out)
    assert f"wrote {out}" in stdout
    expected = transformers_cosines(minilm_in_transformers, texts, word)
    rows = [line for line in stdout.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert len(rows) == 3
    printed = torch.tensor([[float(x) for x in row.split()[-3:]] for row in rows])
    assert (printed - expected).abs().max() <= 0.0005 + 1e-5  # the table: three decimals
    assert (drawn["cells"] - expected).abs().max() <= 1e-5  # the heatmap's colours
    assert (torch.tensor(drawn["labels"]) - expected).abs().max() <= 0.005 + 1e-5  # its annotations: two decimals
    assert (f"{word!r} in each text" if word else "mean-pooled sentence vectors") in drawn["title"]
    # A real model: the two closer contexts are told apart from the third (not a matrix of ones).
    assert expected.min() < 0.9


def test_drawing_without_matplotlib_is_a_one_line_error_saying_how_to_install_it(tiny_dir, tmp_path, monkeypatch,
                                                                                 capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    code, _, err = run(["attention", TEXT, "--model", str(tiny_dir), "--out", str(tmp_path / "a.png")], capsys)
    assert code == 1 and "pip install matplotlib" in err and err.count("\n") == 1
    code, _, err = run(["similarity", "a", "b", "--model", str(tiny_dir), "--out", str(tmp_path / "s.png")], capsys)
    assert code == 1 and "pip install matplotlib" in err
    assert not any(tmp_path.iterdir())
