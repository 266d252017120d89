"""Tables written in every format the readers take (shared by the pretraining-data and fine-tuning-data tests)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_rows(path: Path, rows: list[dict]) -> Path:
    """``rows`` in the format of ``path``'s extension: .parquet, .jsonl, .json (an array), .tsv, else CSV; gzip-
    compressed when the name ends in .gz. TSV takes quotes literally, so its cells must hold no newline."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer)
        data = buffer.getvalue()
    elif name.endswith(".jsonl"):
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    elif name.endswith(".json"):
        data = json.dumps(rows, indent=1).encode()
    else:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, list(rows[0]), delimiter="\t" if name.endswith(".tsv") else ",")
        writer.writeheader()
        writer.writerows(rows)
        data = text.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path
