"""scripts/bench_pretraining_speed.py times the engine's step and transformers' on the same batches in one process and
prints, per variant, tokens/s with its range, the ratio, the model FLOPs a token and the share of the matmul peak."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest
from test_pretrain_loop import data  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^(\S+)\s+([\d,]+)\s+([\d,]+)–([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)%$", re.MULTILINE)


def test_the_table_has_a_row_per_variant_and_transformers_scores_every_token(
        data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    monkeypatch.setattr(sys, "argv", ["bench", "--data", str(data), "--config", "tiny", "--threads", "1",
                                      "--rounds", "2", "--steps", "1", "--warmup", "1", "--mask-probs", "0.15",
                                      "--variants", "eager-fp32,transformers-fp32"])
    runpy.run_path(str(REPO / "scripts" / "bench_pretraining_speed.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "CPU flags: " in out and "matmul peak on 1 thread(s): float32 " in out
    assert "masking 0.15 (tiny, batch 32 × 32, 1 thread(s))" in out
    rows = {m[0]: m[1:] for m in ROW.findall(out)}
    assert list(rows) == ["eager-fp32", "transformers-fp32"]
    for tokens, low, high, _ratio, _mflops, share in rows.values():
        assert 0 < float(low.replace(",", "")) <= float(tokens.replace(",", "")) <= float(high.replace(",", ""))
        assert 0 < int(share) < 200
    assert float(rows["eager-fp32"][3]) == 1.0
    # our MLM head scores the 15% masked rows (5 of 32 a sequence); transformers' scores all 32
    assert float(rows["transformers-fp32"][4]) > float(rows["eager-fp32"][4])
    monkeypatch.setattr(sys, "argv", ["bench", "--data", str(data), "--variants", "typo"])
    with pytest.raises(SystemExit, match="unknown variant"):
        runpy.run_path(str(REPO / "scripts" / "bench_pretraining_speed.py"), run_name="__main__")
