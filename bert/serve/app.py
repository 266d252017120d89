"""The web explorer's HTTP side: a FastAPI app with a JSON API over :class:`~bert.serve.explorer.Explorer`, and
the page in ``static/``.

    POST /api/fill-mask  {text, top_k ≤ 50}            → candidates for every [MASK]
    POST /api/nsp        {sentence_a, sentence_b}       → P(B follows A) and the verdict
    POST /api/attention  {text, text_pair?}             → tokens + attentions[layer][head][query][key]
    POST /api/similarity {sentences: [...], word?}      → cosine similarities of contextual vectors
    POST /api/shapes     {text, text_pair?}             → every tensor's shape from input_ids to the logits
    GET  /api/info                                      → model name, config, size

Every answer names the model that gave it. Bad input never produces a 500: a body over 64 KiB is 413, a request
that does not match the schema (missing field, wrong type, top_k > 50) or that the model cannot answer (too many
tokens, no [MASK]) is 422, any other :class:`~bert.errors.BertError` is 400, always with a readable ``detail``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
import uvicorn
from anyio.lowlevel import RunVar
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bert.errors import BertError
from bert.serve import DEFAULT_HOST, DEFAULT_PORT
from bert.serve.explorer import MAX_SENTENCES, Explorer, InvalidInput

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT_CHARS = 5000
MAX_WORD_CHARS = 100
MAX_TOP_K = 50
# Threads that run the model's views. It answers one request at a time anyway (Explorer.lock), and every thread
# that ever runs a forward pass keeps a malloc arena of its own: in anyio's default pool of 40 (measured with 50
# clients) the server's memory climbed from 320 to 630 MB; in 4 it stays at 330 MB, with more requests per second.
MODEL_THREADS = 4
_model_threads: RunVar[anyio.CapacityLimiter] = RunVar("model_threads")  # one per event loop, as anyio's own
# The page loads nothing from anywhere else (no CDN, no fonts): the browser is told so, and enforces it.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                 b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


# ---- request schemas -------------------------------------------------------------------------------------------
def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(not_blank)]
Word = Annotated[str, Field(min_length=1, max_length=MAX_WORD_CHARS), AfterValidator(not_blank)]


class Schema(BaseModel):
    """Strict JSON: "5" is not a number, and a misspelt field is an error rather than silently ignored."""

    model_config = ConfigDict(strict=True, extra="forbid")


class FillMaskRequest(Schema):
    text: Text
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)


class NextSentenceRequest(Schema):
    sentence_a: Text
    sentence_b: Text


class TextRequest(Schema):
    text: Text
    text_pair: Text | None = None


class SimilarityRequest(Schema):
    sentences: list[Text] = Field(min_length=2, max_length=MAX_SENTENCES)
    word: Word | None = None


# ---- ASGI middleware -------------------------------------------------------------------------------------------
class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or, for chunked uploads, while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self.too_large()(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # FastAPI turns this into the 413 response while reading the body
                    raise HTTPException(413, detail=self.message())
            return message

        await self.app(scope, limited_receive, send)

    def message(self) -> str:
        return f"the request body is larger than {self.max_bytes // 1024} KiB"

    def too_large(self) -> JSONResponse:
        return JSONResponse({"detail": self.message()}, status_code=413)


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


# ---- error answers ---------------------------------------------------------------------------------------------
def describe_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors without the echoed input (which may be the whole text): where, what, and its type."""
    described = []
    for error in errors:
        kind, message = error.get("type", ""), str(error.get("msg", "invalid")).removeprefix("Value error, ")
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        if kind == "json_invalid":  # the location is a character position, not a field
            location = []
            message = f"the body is not valid JSON ({error.get('ctx', {}).get('error', message)})"
        elif kind in ("model_attributes_type", "dict_type") and not location:
            message = "the body must be a JSON object (sent with Content-Type: application/json)"
        described.append({"field": ".".join(location) or "body", "message": message, "type": kind})
    return described


def install_error_handlers(app: FastAPI) -> None:
    """422 / 400 / 500 as JSON ``{"detail": "one readable line"}``; never a traceback in a response."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = describe_validation_errors(list(error.errors()))
        detail = "; ".join(e["message"] if e["field"] == "body" else f"{e['field']}: {e['message']}"
                           for e in errors) or "invalid request"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(InvalidInput)
    async def unanswerable(request: Request, error: InvalidInput) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(BertError)
    async def bert_error(request: Request, error: BertError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error ({type(error).__name__}); see the server's log"},
                            status_code=500)


# ---- the app ---------------------------------------------------------------------------------------------------
def create_app(model: str | os.PathLike | None = None, explorer: Explorer | None = None,
               precision: str = "float32", device: str = "cpu") -> FastAPI:
    """The explorer app for ``model`` (default: bert-base-uncased, else the bundled demo model), loaded once here
    (``precision`` and ``device``: see :func:`bert.inference.pipelines.load`).

    Pass ``explorer`` to serve a model that is already loaded.
    """
    explorer = explorer if explorer is not None else Explorer.load(model, precision, device)
    # No /docs or /redoc: their pages load scripts from a CDN. The schema stays at /api/openapi.json.
    app = FastAPI(title="BERT explorer", summary=f"What {explorer.name} computes", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.explorer = explorer
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)

    # A plain `def` endpoint runs in FastAPI's thread pool; the model's views run in MODEL_THREADS threads of their
    # own (see `answer`). Neither blocks the event loop, so the page and /api/info load while the model is busy.
    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return explorer.info()

    @app.post("/api/fill-mask")
    async def fill_mask(request: FillMaskRequest) -> JSONResponse:
        return await answer(explorer.fill_mask, request.text, request.top_k)

    @app.post("/api/nsp")
    async def nsp(request: NextSentenceRequest) -> JSONResponse:
        return await answer(explorer.next_sentence, request.sentence_a, request.sentence_b)

    @app.post("/api/attention")
    async def attention(request: TextRequest) -> JSONResponse:
        return await answer(explorer.attention, request.text, request.text_pair)

    @app.post("/api/similarity")
    async def similarity(request: SimilarityRequest) -> JSONResponse:
        return await answer(explorer.similarity, request.sentences, request.word)

    @app.post("/api/shapes")
    async def shapes(request: TextRequest) -> JSONResponse:
        return await answer(explorer.shapes, request.text, request.text_pair)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def answer(view: Callable[..., dict[str, Any]], *args: Any) -> JSONResponse:
    """``view(*args)`` as a JSON response, computed and encoded in one of MODEL_THREADS threads (an attention answer
    is megabytes of JSON: encoding it on the event loop would stall every other request). Its errors propagate to
    the handlers above."""
    try:
        limiter = _model_threads.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(MODEL_THREADS)
        _model_threads.set(limiter)
    return await anyio.to_thread.run_sync(lambda: JSONResponse(view(*args)), limiter=limiter)


# ---- serving ---------------------------------------------------------------------------------------------------
def listen(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A TCP socket listening on ``host:port`` (port 0: a free one), or a BertError that says why it cannot be."""
    if not 0 <= port <= 65535:
        raise BertError(f"port must be between 0 and 65535, got {port}")
    sock = None
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, protocol)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening from now on: a browser that opens the printed URL before uvicorn runs waits in the backlog
        # (uvicorn's default length) instead of being refused.
        sock.listen(2048)
    except OSError as error:
        if sock is not None:
            sock.close()
        raise BertError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    """http://host:port/ of a bound socket (IPv6 addresses in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def make_server(app: FastAPI) -> uvicorn.Server:
    """uvicorn, quiet: no line per request (the load test makes thousands), warnings and errors only."""
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))
