"""``bert serve``: a local web page that shows what BERT computes.

:mod:`bert.serve.explorer` holds the model and the computations (plain PyTorch, no web framework);
:mod:`bert.serve.app` puts them behind a FastAPI JSON API and serves the page in ``static/`` (plain HTML, JS and
SVG: nothing is fetched from outside, so it works offline). FastAPI and uvicorn are the optional extra ``serve``.
"""

DEFAULT_HOST = "127.0.0.1"  # this machine only: the explorer has no authentication
DEFAULT_PORT = 8000
