"""The web explorer end to end: a real ``bert serve`` (the bundled demo model) driven in Debian's Chromium with
Playwright. Each view: type, click, check what the page shows against the JSON API, and save a screenshot to
tests/artifacts/serve-<view>.png. ``BERT_UPDATE_SCREENSHOTS=1`` also writes docs/serve.png for the README."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
import torch
import transformers
from playwright.sync_api import expect, sync_playwright
from support import ARTIFACTS, REPO, ServerProcess

from bert.inference.pipelines import DEMO_MODEL

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# What Chromium logs for an API answer of 4xx, which the error test provokes on purpose.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 4(00|22)")


@pytest.fixture(scope="module")
def server():
    with ServerProcess(DEMO_MODEL) as process:
        yield process


@pytest.fixture(scope="module")
def browser():
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"Chromium not found at {path}: apt-get install chromium (or set CHROMIUM to a Chromium binary)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page; afterwards, no script error, no unexpected console error, no request that left the server."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and not EXPECTED_CONSOLE.search(message.text) else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("request", lambda request: None if request.url.startswith((server.url, "data:"))
            else problems.append(f"request outside the server: {request.url}"))
    page.goto(server.url)
    yield page
    context.close()
    assert problems == []


def api(server: ServerProcess, endpoint: str, body: dict) -> dict:
    answer = httpx.post(f"{server.url}api/{endpoint}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def screenshot(page, view: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"serve-{view}.png"), full_page=True)


def open_view(page, view: str):
    page.click(f"#tab-{view}")
    section = page.locator(f"#view-{view}")
    expect(section).to_be_visible()
    return section


def test_fill_mask_shows_five_candidates_with_percentages(page, server):
    expect(page.locator("#model-name")).to_have_text("bert-demo")  # the header names the model that answers
    expect(page.locator("#model-summary")).to_contain_text("6 layers · hidden 384 · 12 heads")
    view = open_view(page, "fill-mask")
    page.fill("#fill-mask-text", "The dog sat on the [MASK].")
    page.fill("#fill-mask-k", "5")
    view.get_by_role("button", name="Predict").click()
    expect(view.locator(".result .tokens")).to_contain_text("dog")
    rows = view.locator(".candidate")
    expect(rows).to_have_count(5)
    percentages = rows.locator(".pct").all_inner_texts()
    assert all(re.fullmatch(r"\d{1,3}\.\d%", text) for text in percentages), percentages
    expected = api(server, "fill-mask", {"text": "The dog sat on the [MASK].", "top_k": 5})["predictions"][0]
    assert rows.locator(".word").all_inner_texts() == [c["token_str"].strip() for c in expected]
    assert percentages == [f"{100 * c['score']:.1f}%" for c in expected]
    screenshot(page, "fill-mask")


def test_fill_mask_without_a_mask_shows_the_servers_message(page):
    view = open_view(page, "fill-mask")
    page.fill("#fill-mask-text", "There is nothing to predict here.")
    view.get_by_role("button", name="Predict").click()
    expect(view.locator(".error")).to_contain_text("no [MASK] in the text")
    expect(view.locator(".candidate")).to_have_count(0)
    screenshot(page, "error")


def test_next_sentence_shows_the_verdict_and_probability(page, server):
    view = open_view(page, "nsp")
    a, b = "She opened the fridge.", "There was no milk left."
    page.fill("#nsp-a", a)
    page.fill("#nsp-b", b)
    view.get_by_role("button", name="Judge").click()
    expect(view.locator(".result .tokens")).to_contain_text("fridge")
    expected = api(server, "nsp", {"sentence_a": a, "sentence_b": b})
    expect(view.locator(".probability")).to_have_text(f"P(B follows A) = {100 * expected['is_next']:.1f}%")
    expect(view.locator(".verdict")).to_contain_text(expected["verdict"])
    expect(view.locator(".tok.seg-b")).to_have_count(7)  # segment B: there was no milk left . [SEP]
    screenshot(page, "nsp")


def test_attention_draws_every_head_and_hovering_a_token_shows_where_it_attends(page, server):
    view = open_view(page, "attention")
    text = "the quick brown fox jumps over the lazy dog"
    page.fill("#attention-text", text)
    page.fill("#attention-pair", "")
    view.get_by_role("button", name="Show attention").click()
    t = 11  # [CLS] + 9 words + [SEP]
    queries = view.locator("svg.lines g.token.query")
    expect(queries).to_have_count(t)
    expect(view.locator("svg.heatmap rect.cell")).to_have_count(t * t)

    opacities = "cells => cells.map(c => c.getAttribute('fill-opacity'))"
    before = view.locator("svg.heatmap rect.cell").evaluate_all(opacities)
    view.locator("#attention-layer").select_option("2")
    view.locator("#attention-head").select_option("1")
    after = view.locator("svg.heatmap rect.cell").evaluate_all(opacities)
    assert len(after) == t * t and after != before

    lines = view.locator("svg.lines")
    expect(lines).not_to_have_class(re.compile("focused"))
    queries.nth(4).hover()  # "fox"
    expect(lines).to_have_class(re.compile("focused"))
    assert view.locator("svg.lines line.att.on").count() > 0
    expect(view.locator("svg.heatmap rect.marker")).to_have_class(re.compile(r"\bon\b"))
    weights = view.locator("svg.lines g.token.key text.weight").all_text_contents()
    expected = api(server, "attention", {"text": text})["attentions"][2][1][4]
    assert [float(w) for w in weights] == pytest.approx(expected, abs=0.0051)  # shown with 2 decimals
    best = max(range(t), key=lambda j: expected[j])
    tokens = view.locator("svg.lines g.token.key title").all_text_contents()
    expect(view.locator(".result .caption")).to_contain_text(f'"fox" attends most to "{tokens[best]}"')
    screenshot(page, "attention")

    page.mouse.move(5, 5)  # leaving the token clears the highlight
    expect(lines).not_to_have_class(re.compile("focused"))
    update_readme_screenshot(page, view)


def update_readme_screenshot(page, view) -> None:
    """docs/serve.png, only when asked: the attention view of the default sentence, "it" hovered."""
    if os.environ.get("BERT_UPDATE_SCREENSHOTS") != "1":
        return
    page.fill("#attention-text", "The animal didn't cross the street because it was too tired.")
    view.get_by_role("button", name="Show attention").click()
    expect(view.locator("svg.lines g.token.query")).to_have_count(16)
    view.locator("#attention-layer").select_option("3")
    view.locator("svg.lines g.token.query").nth(10).hover()  # "it"
    docs = REPO / "docs"
    docs.mkdir(exist_ok=True)
    page.screenshot(path=str(Path(docs / "serve.png")), full_page=True)


@pytest.fixture(scope="module")
def reference():
    """The demo model in transformers (float32) and its tokenizer: what the similarity view's numbers must be."""
    model = transformers.BertModel.from_pretrained(DEMO_MODEL, dtype=torch.float32).eval()
    return model, transformers.BertTokenizerFast.from_pretrained(DEMO_MODEL)


def reference_states(reference, text: str) -> tuple[list[str], torch.Tensor]:
    model, tokenizer = reference
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return tokenizer.convert_ids_to_tokens(batch["input_ids"][0]), model(**batch).last_hidden_state[0]


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T


def shown_values(table) -> torch.Tensor:
    """The heatmap's values as the page shows them on hover (each cell's title ends in the value to 4 decimals),
    one row per table row."""
    titles = [row.locator("td").evaluate_all("cells => cells.map(cell => cell.title)")
              for row in table.locator("tbody tr").all()]
    return torch.tensor([[float(title.rsplit(": ", 1)[1]) for title in row] for row in titles], dtype=torch.float64)


def test_similarity_shows_transformers_cosines_token_by_token_and_for_one_word_across_sentences(page, reference):
    view = open_view(page, "similarity")
    page.fill("#similarity-sentences", "a cat sat on the mat\nthe dog ran")
    page.fill("#similarity-word", "")
    view.get_by_role("button", name="Compare").click()
    table = view.locator("table.heatmap")
    expect(table.locator("tbody tr")).to_have_count(8)  # [CLS] a cat sat on the mat [SEP]
    expect(table.locator("thead th.col")).to_have_count(5)  # [CLS] the dog ran [SEP]
    expect(table.locator("td")).to_have_count(40)
    expect(table.locator("td.best")).to_have_count(8)  # each row's closest token is outlined
    rows, first = reference_states(reference, "a cat sat on the mat")
    columns, second = reference_states(reference, "the dog ran")
    assert table.locator("th.row").evaluate_all("cells => cells.map(cell => cell.title)") == rows
    expected = cosines(first, second).double()
    assert (shown_values(table) - expected).abs().max() <= 0.5e-4 + 1e-5
    texts = table.locator("td").all_inner_texts()
    assert all(re.fullmatch(r"-?\d\.\d\d", text) for text in texts)
    assert [float(t) for t in texts] == pytest.approx(expected.flatten().tolist(), abs=0.005 + 1e-5)
    best = [int(i) for i in expected.argmax(1)]  # the outlined cell is each row's closest token
    for i, j in enumerate(best):
        expect(table.locator("tbody tr").nth(i).locator("td").nth(j)).to_have_class("best")
    sentence = cosines(first.mean(0, keepdim=True), second.mean(0, keepdim=True))[0, 0].item()
    expect(view.locator(".summary")).to_have_text(f"mean-pooled sentence vectors: cosine similarity {sentence:.3f}")
    screenshot(page, "similarity")

    sentences = ["we sat on the river bank", "she paid the cash into the bank", "the bank was closed"]
    page.fill("#similarity-sentences", "\n".join(sentences))
    page.fill("#similarity-word", "bank")
    view.get_by_role("button", name="Compare").click()
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(view.locator(".summary")).to_contain_text('"bank" in each sentence')
    banks = torch.stack([states[tokens.index("bank")]
                         for tokens, states in (reference_states(reference, s) for s in sentences)])
    assert (shown_values(table) - cosines(banks, banks).double()).abs().max() <= 0.5e-4 + 1e-5
    for i in range(3):
        expect(table.locator("tbody tr").nth(i).locator("td").nth(i)).to_have_text("1.00")
    screenshot(page, "similarity-word")


def test_shapes_lists_every_tensor_with_its_shape(page):
    view = open_view(page, "shapes")
    page.fill("#shapes-text", "hello world")
    page.fill("#shapes-pair", "")
    view.get_by_role("button", name="Trace shapes").click()
    expect(view.locator(".tokens .tok")).to_have_count(4)  # [CLS] hello world [SEP]
    table = view.locator("table.shapes")
    expect(table.locator("tbody tr:not(.group)")).to_have_count(2 + 4 + 8 * 6 + 3)  # 8 rows for each of 6 layers
    expect(table).to_contain_text("[B, T, H]")
    for shape in ("[1, 4]", "[1, 4, 384]", "[4, 384]", "[1, 12, 4, 4]", "[1, 4, 1536]", "[1, 384]", "[1, 4, 30522]",
                  "[1, 2]"):
        expect(table.locator("td.shape", has_text=re.compile(rf"^{re.escape(shape)}$")).first).to_be_visible()
    expect(view.locator(".dims")).to_contain_text("T = 4")
    groups = table.locator("tr.group")
    expect(groups).to_have_count(1 + 6 + 1)
    expect(groups.first).to_have_text("input and embeddings")
    expect(groups.nth(1)).to_have_text("layer 0")
    expect(groups.last).to_have_text("heads")
    screenshot(page, "shapes")
