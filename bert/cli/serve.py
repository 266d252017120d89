"""``bert serve``: the local web explorer (fill-mask, NSP, attention, similarity, tensor shapes) in a browser."""

from __future__ import annotations

import argparse
import sys

from bert.cli.inference import MODEL_HELP, device_option, precision_options
from bert.errors import BertError
from bert.serve import DEFAULT_HOST, DEFAULT_PORT

SERVE_PACKAGES = ("fastapi", "uvicorn", "starlette", "pydantic")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="a local web page that shows what BERT computes")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: reachable from this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    precision_options(p)
    device_option(p)
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> None:
    from bert.devices import device_note
    from bert.inference.pipelines import model_device
    from bert.precision import precision_of

    try:
        from bert.serve.app import create_app, listen, make_server, url_of
    except ImportError as error:
        if (error.name or "").split(".")[0] not in SERVE_PACKAGES:
            raise
        raise BertError(f'the web explorer needs fastapi and uvicorn ({error.name} is not installed): '
                        'pip install -e ".[serve]"') from None

    sock = listen(args.host, args.port)  # first: a port in use fails before the model loads
    try:
        app = create_app(args.model, precision=args.precision, device=args.device)
    except BaseException:
        sock.close()
        raise
    explorer = app.state.explorer
    if explorer.note:
        print(f"note: {explorer.note}", flush=True)
    print(f"bert serve: {device_note(model_device(explorer.model), precision_of(explorer.model))}", file=sys.stderr,
          flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: other machines can reach this server", flush=True)
    print(f"bert serve: {explorer.name} at {url_of(sock)}  (Ctrl-C to stop)", flush=True)
    try:
        make_server(app).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown: the normal way to stop
        print("bert serve: stopped", flush=True)
