"""The web explorer's JSON API (bert serve), in process with FastAPI's TestClient, on a tiny random model: every
endpoint's answer (the numbers of the fill-mask, NSP, attention and similarity views checked against transformers
or bert.inference.pipelines on the same checkpoint), and every kind of bad input answered with a 4xx and a readable
message, never a 500."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest
import torch
import transformers
from fastapi.testclient import TestClient
from support import REPO, make_tiny_model

from bert.cli import build_parser, main
from bert.errors import BertError
from bert.heads import BertForPreTraining
from bert.inference.pipelines import DEMO_MODEL, fill_mask, load
from bert.serve.app import MAX_BODY_BYTES, STATIC_DIR, create_app, listen, make_server, url_of
from bert.serve.explorer import Explorer

MAX_POSITIONS = 64


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny-serve"), max_positions=MAX_POSITIONS)


@pytest.fixture(scope="module")
def reference(tiny_dir):
    """The same checkpoint in transformers (eager attention, so that it returns attention maps) and its tokenizer."""
    model = transformers.BertForPreTraining.from_pretrained(tiny_dir, attn_implementation="eager").eval()
    return model, transformers.BertTokenizerFast.from_pretrained(tiny_dir)


@pytest.fixture(scope="module")
def app(tiny_dir):
    return create_app(tiny_dir)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, endpoint: str, body: object):
    return client.post(f"/api/{endpoint}", json=body)


# ---- happy paths -----------------------------------------------------------------------------------------------
def test_info_names_the_model_and_its_config(client, tiny_dir):
    info = client.get("/api/info").json()
    assert info["model"] == tiny_dir.name and info["path"] == str(tiny_dir) and info["note"] is None
    assert info["config"]["hidden_size"] == 32 and info["config"]["num_hidden_layers"] == 2
    assert info["max_tokens"] == MAX_POSITIONS and info["parameters"] > 0


def test_fill_mask_answers_what_bert_tasks_answers(client, tiny_dir):
    text = "The [MASK] sat on the [MASK]."
    answer = post(client, "fill-mask", {"text": text, "top_k": 3})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["model"] == tiny_dir.name
    assert data["tokens"][0] == "[CLS]" and data["tokens"].count("[MASK]") == 2
    model, tokenizer = load(BertForPreTraining, tiny_dir)
    expected = fill_mask(model, tokenizer, text, top_k=3)
    assert [[c["token"] for c in mask] for mask in data["predictions"]] == [[c["token"] for c in mask]
                                                                            for mask in expected]
    assert [c["score"] for mask in data["predictions"] for c in mask] == pytest.approx(
        [c["score"] for mask in expected for c in mask], rel=1e-5)
    for candidates in data["predictions"]:
        scores = [c["score"] for c in candidates]
        assert len(candidates) == 3 and scores == sorted(scores, reverse=True) and sum(scores) <= 1


def test_fill_mask_top_k_defaults_to_five_and_accepts_fifty(client):
    assert len(post(client, "fill-mask", {"text": "a [MASK]."}).json()["predictions"][0]) == 5
    assert len(post(client, "fill-mask", {"text": "a [MASK].", "top_k": 50}).json()["predictions"][0]) == 50


def test_nsp_gives_transformers_probabilities_and_the_verdict_they_imply(client, tiny_dir, reference):
    model, tokenizer = reference
    a, b = "I went to the store.", "I bought milk."
    data = post(client, "nsp", {"sentence_a": a, "sentence_b": b}).json()
    batch = tokenizer(a, b, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).seq_relationship_logits[0]
    assert data["model"] == tiny_dir.name
    assert data["tokens"] == tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert data["logits"] == pytest.approx(logits.tolist(), abs=1e-5)
    assert data["is_next"] == pytest.approx(logits.softmax(-1)[0].item(), abs=1e-6)  # label 0 is IsNext
    assert data["is_next"] + data["not_next"] == pytest.approx(1, abs=1e-6)
    assert data["verdict"] == ("IsNext" if logits[0] >= logits[1] else "NotNext")


def test_attention_maps_are_transformers_maps_layer_by_head_by_query_by_key(client, reference):
    model, tokenizer = reference
    data = post(client, "attention", {"text": "the dog chased the ball", "text_pair": "it ran"}).json()
    batch = tokenizer("the dog chased the ball", "it ran", return_tensors="pt")
    with torch.no_grad():
        expected = torch.stack(model(**batch, output_attentions=True).attentions)[:, 0]  # [L, N, T, T]
    tokens, maps = data["tokens"], torch.tensor(data["attentions"], dtype=torch.float64)
    assert tokens == tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert (data["layers"], data["heads"]) == (2, 4) and maps.shape == expected.shape
    assert (maps - expected.double()).abs().max() <= 0.5e-4 + 1e-6  # rounded to 4 decimals
    assert data["token_type_ids"] == batch["token_type_ids"][0].tolist()
    assert data["token_type_ids"] == [0] * tokens.index("[SEP]") + [0] + [1] * (len(tokens) - tokens.index("[SEP]") - 1)


def test_attention_refuses_inputs_too_long_to_draw(app, client, monkeypatch):
    monkeypatch.setattr(app.state.explorer, "max_attention_tokens", 6)
    assert post(client, "attention", {"text": "one two three four"}).status_code == 200  # 6 tokens
    answer = post(client, "attention", {"text": "one two three four five"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == ("the attention view shows at most 6 tokens and this input has 7; "
                                       "shorten the text")


def reference_vectors(reference, text: str) -> torch.Tensor:
    """transformers' final hidden states [T, H] of ``text``."""
    model, tokenizer = reference
    with torch.no_grad():
        return model.bert(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T


ROUNDING = 0.5e-4 + 1e-6  # the answers are rounded to 4 decimals


def test_similarity_of_tokens_across_two_sentences_is_transformers_cosines(client, reference):
    data = post(client, "similarity", {"sentences": ["river bank", "the bank loan"]}).json()
    assert data["mode"] == "tokens"
    assert data["rows"] == ["[CLS]", "river", "bank", "[SEP]"]
    assert data["columns"] == ["[CLS]", "the", "bank", "loan", "[SEP]"]
    first, second = reference_vectors(reference, "river bank"), reference_vectors(reference, "the bank loan")
    matrix = torch.tensor(data["matrix"], dtype=torch.float64)
    assert matrix.shape == (4, 5)
    assert (matrix - cosines(first, second).double()).abs().max() <= ROUNDING
    mean_pooled = cosines(first.mean(0, keepdim=True), second.mean(0, keepdim=True))[0, 0]
    assert data["sentence_similarity"] == pytest.approx(mean_pooled.item(), abs=ROUNDING)


def test_similarity_of_one_word_across_sentences_is_transformers_cosines_of_that_word(client, reference):
    sentences = ["we sat on the river bank", "she paid the cash into the bank", "the bank was closed"]
    data = post(client, "similarity", {"sentences": sentences, "word": "bank"}).json()
    assert data["mode"] == "word" and data["rows"] == sentences
    _, tokenizer = reference
    vectors = torch.stack([reference_vectors(reference, s)[tokenizer(s)["input_ids"].index(tokenizer.vocab["bank"])]
                           for s in sentences])  # "bank" is one word piece
    matrix = torch.tensor(data["matrix"], dtype=torch.float64)
    assert matrix.shape == (3, 3)
    assert (matrix - cosines(vectors, vectors).double()).abs().max() <= ROUNDING


def test_shapes_trace_every_tensor_from_input_ids_to_the_logits(client):
    data = post(client, "shapes", {"text": "the cat sat", "text_pair": "on the mat"}).json()
    t = len(data["tokens"])
    assert data["dims"] == {"B": 1, "T": t, "H": 32, "N": 4, "D": 8, "I": 64, "V": 30522, "L": 2}
    rows = data["tensors"]
    assert len(rows) == 2 + 4 + 8 * 2 + 3  # ids, embeddings, 8 tensors per layer, pooler + 2 heads
    by_module = {(row["module"], row["symbols"]): row["shape"] for row in rows}
    assert by_module[("(tokenizer)", "[B, T]")] == [1, t]
    assert by_module[("bert.embeddings", "[B, T, H]")] == [1, t, 32]
    assert by_module[("bert.embeddings.position_embeddings", "[T, H]")] == [t, 32]
    for layer in range(2):
        prefix = f"bert.encoder.layer.{layer}"
        assert by_module[(f"{prefix}.attention.self", "[B, N, T, T]")] == [1, 4, t, t]
        assert by_module[(f"{prefix}.attention.self", "[B, T, H]")] == [1, t, 32]
        assert by_module[(f"{prefix}.intermediate", "[B, T, I]")] == [1, t, 64]
        assert by_module[(f"{prefix}.output", "[B, T, H]")] == [1, t, 32]
    assert by_module[("bert.pooler", "[B, H]")] == [1, 32]
    assert by_module[("cls.predictions", "[B, T, V]")] == [1, t, 30522]
    assert by_module[("cls.seq_relationship", "[B, 2]")] == [1, 2]
    # every row's symbolic shape, read with this input's sizes, is its real shape
    for row in rows:
        symbols = re.findall(r"[A-Z]|\d+", row["symbols"])
        assert [data["dims"].get(s, int(s) if s.isdigit() else None) for s in symbols] == row["shape"], row


@pytest.mark.parametrize(("endpoint", "body"), [
    ("fill-mask", {"text": "the [MASK] sat"}),
    ("nsp", {"sentence_a": "the cat sat", "sentence_b": "it slept"}),
    ("attention", {"text": "the cat sat"}),
    ("similarity", {"sentences": ["river bank", "bank loan"]}),
    ("similarity", {"sentences": ["river bank", "bank loan"], "word": "bank"}),
    ("shapes", {"text": "the cat sat"}),
], ids=["fill-mask", "nsp", "attention", "similarity-tokens", "similarity-word", "shapes"])
def test_every_answer_names_the_model(client, tiny_dir, endpoint, body):
    answer = post(client, endpoint, body)
    assert answer.status_code == 200 and answer.json()["model"] == tiny_dir.name


def test_the_shapes_hooks_are_removed_afterwards(app):
    explorer: Explorer = app.state.explorer
    explorer.shapes("hello")
    assert not any(module._forward_hooks for module in explorer.model.modules())


def test_the_page_and_its_files_are_served_and_fetch_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and "BERT explorer" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    for file in STATIC_DIR.iterdir():
        urls = set(re.findall(r"https?://[^\s\"'`)]+", file.read_text(encoding="utf-8")))
        assert urls <= {"http://www.w3.org/2000/svg"}, f"{file.name} refers to {urls}"
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would load a CDN
    assert client.get("/api/openapi.json").status_code == 200


def test_static_files_ship_with_the_package():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*(#[^\n]*\n\s*)*bert = \["serve/static/\*"\]', pyproject)
    assert {p.name for p in STATIC_DIR.iterdir()} >= {"index.html", "app.js", "style.css"}


# ---- bad input -------------------------------------------------------------------------------------------------
TOO_LONG = "word " * (MAX_POSITIONS + 10)

BAD_REQUESTS = [
    ("fill-mask", {}, 422, "text: Field required"),
    ("fill-mask", {"text": 5}, 422, "text: Input should be a valid string"),
    ("fill-mask", {"text": None}, 422, "text"),
    ("fill-mask", {"text": ["a [MASK]"]}, 422, "text"),
    ("fill-mask", {"text": "a [MASK]", "top_k": 10**9}, 422, "top_k: Input should be less than or equal to 50"),
    ("fill-mask", {"text": "a [MASK]", "top_k": 51}, 422, "top_k"),
    ("fill-mask", {"text": "a [MASK]", "top_k": 0}, 422, "top_k: Input should be greater than or equal to 1"),
    ("fill-mask", {"text": "a [MASK]", "top_k": "5"}, 422, "top_k: Input should be a valid integer"),
    ("fill-mask", {"text": "a [MASK]", "top_k": 2.5}, 422, "top_k"),
    ("fill-mask", {"text": "a [MASK]", "topk": 3}, 422, "topk: Extra inputs are not permitted"),
    ("fill-mask", {"text": "no mask here"}, 422, "no [MASK] in the text"),
    ("fill-mask", {"text": "   "}, 422, "text: must not be empty or only spaces"),
    ("fill-mask", {"text": ""}, 422, "text: String should have at least 1 character"),
    ("fill-mask", {"text": TOO_LONG + "[MASK]"}, 422, f"reads at most {MAX_POSITIONS}"),
    ("fill-mask", {"text": "x" * 6000}, 422, "text: String should have at most 5000 characters"),
    ("fill-mask", ["a [MASK]"], 422, "the body must be a JSON object"),
    ("nsp", {"sentence_a": "one."}, 422, "sentence_b: Field required"),
    ("nsp", {"sentence_a": 1, "sentence_b": 2}, 422, "sentence_a: Input should be a valid string"),
    ("nsp", {"sentence_a": TOO_LONG, "sentence_b": "b"}, 422, "tokens long"),
    ("attention", {"text": TOO_LONG}, 422, f"reads at most {MAX_POSITIONS}"),
    ("attention", {"text": "a", "text_pair": 3}, 422, "text_pair"),
    ("similarity", {"sentences": ["only one"]}, 422, "sentences: List should have at least 2 items"),
    ("similarity", {"sentences": "a, b"}, 422, "sentences: Input should be a valid list"),
    ("similarity", {"sentences": ["a"] * 9, "word": "a"}, 422, "sentences: List should have at most 8 items"),
    ("similarity", {"sentences": ["a", "b", "c"]}, 422, "exactly two sentences"),
    ("similarity", {"sentences": ["a", TOO_LONG]}, 422, "tokens long"),
    ("similarity", {"sentences": ["a", "b"], "word": " "}, 422, "word: must not be empty"),
    ("similarity", {"sentences": ["a river", "a loan"], "word": "bank"}, 400, "'bank' does not occur in 'a river'"),
    ("shapes", {"text": {"nested": "object"}}, 422, "text"),
    ("shapes", {"text": TOO_LONG}, 422, "tokens long"),
]


@pytest.mark.parametrize(("endpoint", "body", "status", "message"), BAD_REQUESTS,
                         ids=[f"{e}-{i}" for i, (e, *_) in enumerate(BAD_REQUESTS)])
def test_bad_input_is_a_4xx_with_a_readable_message(client, endpoint, body, status, message):
    answer = post(client, endpoint, body)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and message in detail
    assert "Traceback" not in answer.text and len(answer.text) < 2000  # the input is not echoed back


def test_a_body_over_the_limit_is_413_by_content_length_and_while_streaming(client):
    answer = client.post("/api/fill-mask", content=b" " * (MAX_BODY_BYTES + 1),
                         headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "64 KiB" in answer.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while the body arrives
        for _ in range(100):
            yield b" " * 1024

    answer = client.post("/api/fill-mask", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "64 KiB" in answer.json()["detail"]
    assert post(client, "fill-mask", {"text": "[MASK] " + "x" * 4000}).status_code == 200  # just under: fine


def test_malformed_json_and_a_missing_content_type_are_422(client):
    answer = client.post("/api/nsp", content=b'{"sentence_a": "a",', headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("the body is not valid JSON")
    answer = client.post("/api/nsp", content=b'{"sentence_a": "a", "sentence_b": "b"}')
    assert answer.status_code == 422 and "application/json" in answer.json()["detail"]


def test_unknown_paths_and_methods_are_404_and_405(client):
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/fill-mask").status_code == 405


def test_a_bug_is_a_500_without_a_traceback(app, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.explorer, "next_sentence", broken)
    answer = post(client, "nsp", {"sentence_a": "a", "sentence_b": "b"})
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error (RuntimeError); see the server's log"}


# ---- serving: loopback by default ------------------------------------------------------------------------------
def test_the_command_line_binds_loopback_by_default():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.model) == ("127.0.0.1", 8000, None)
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "0", "--model", "m"])
    assert (args.host, args.port, args.model) == ("0.0.0.0", 0, "m")


def test_listen_binds_loopback_and_reports_its_url(app):
    sock = listen(port=0)
    try:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0 and url_of(sock) == f"http://127.0.0.1:{port}/"
    finally:
        sock.close()
    with pytest.raises(BertError, match="port must be between 0 and 65535"):
        listen(port=70000)
    config = make_server(app).config
    assert config.host == "127.0.0.1" and config.access_log is False


def test_bert_serve_accepts_a_connection_the_moment_it_prints_its_url():
    """A real ``bert serve``, frozen (SIGSTOP) as soon as its URL line is read, before uvicorn can start: connecting
    to the printed URL must succeed then (the socket already listens), and the request sent over that connection must
    be answered once the server resumes (the client waited in the backlog instead of being refused)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    server = subprocess.Popen([sys.executable, "-m", "bert", "serve", "--model", str(DEMO_MODEL), "--port", "0"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(120, server.kill)  # a server that never prints its URL fails the test, not hangs it
    watchdog.start()
    output: list[str] = []
    try:
        assert server.stdout is not None
        for line in server.stdout:
            output.append(line)
            if match := re.search(r" at http://(127\.0\.0\.1):(\d+)/ ", line):
                break
        else:
            pytest.fail("bert serve printed no URL:\n" + "".join(output))
        os.kill(server.pid, signal.SIGSTOP)  # nothing after the print runs until SIGCONT
        try:
            with socket.create_connection((match.group(1), int(match.group(2))), timeout=5) as connection:
                connection.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                os.kill(server.pid, signal.SIGCONT)
                connection.settimeout(60)
                response = b"".join(iter(lambda: connection.recv(65536), b""))
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert response.startswith(b"HTTP/1.1 200 "), response[:500]
        assert json.loads(response.partition(b"\r\n\r\n")[2])["model"] == "bert-demo"
    finally:
        watchdog.cancel()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


def test_listen_refuses_an_address_in_use_and_closes_its_socket(monkeypatch):
    opened = []

    class Recorded(socket.socket):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(socket, "socket", Recorded)
        with pytest.raises(BertError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
            listen("127.0.0.1", port).close()
    assert len(opened) == 1 and opened[0].fileno() == -1  # the refused socket was closed, not left to the collector


def test_serve_without_fastapi_says_how_to_install_it(monkeypatch, capsys, tiny_dir):
    monkeypatch.delitem(sys.modules, "bert.serve.app")  # imported afresh, and then
    for name in ("fastapi", "uvicorn"):
        monkeypatch.setitem(sys.modules, name, None)  # `import uvicorn` fails as if it were not installed
    assert main(["serve", "--model", str(tiny_dir)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("bert serve: error: the web explorer needs fastapi and uvicorn")
    assert error.endswith('pip install -e ".[serve]"') and "\n" not in error
