"""scripts/bench_from_scratch.py reads what its table says from a run's own metrics.jsonl (accuracy at fixed token
counts, the first evaluation past 0.20, medians of the train lines), and ``--stop-at`` stops a run part-way through
its schedule with a checkpoint that the next, larger ``--stop-at`` continues."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
from test_pretrain_loop import data  # noqa: F401 - the fixture

REPO = Path(__file__).resolve().parent.parent
BENCH = runpy.run_path(str(REPO / "scripts" / "bench_from_scratch.py"))


def write_metrics(run: Path, events: list[dict]) -> None:
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_a_row_reads_accuracy_at_the_token_marks_the_exit_and_the_medians(tmp_path: Path) -> None:
    events = []
    for step, accuracy in [(1000, 0.14), (1250, 0.16), (2500, 0.21), (5000, 0.33), (9800, 0.41)]:
        events.append({"kind": "train", "step": step, "tokens": step * 4096, "tokens_per_second": step / 10,
                       "flop_share": 0.5, "elapsed": step * 1.2})
        events.append({"kind": "eval", "step": step, "tokens": step * 4096, "mlm_accuracy": accuracy,
                       "elapsed": step * 1.2, "peak_rss_gb": 1.0 + step / 1e4})
    write_metrics(tmp_path / "run", events)
    row = BENCH["summarize"]("default", tmp_path / "run")
    assert row["accuracy_5M"] == 0.16  # the first evaluation at or past 5M tokens: step 1250, 5.12M
    assert row["accuracy_10M"] == 0.21 and row["accuracy_20M"] == 0.33 and row["accuracy_40M"] == 0.41
    assert row["exit_tokens"] == 2500 * 4096 and row["exit_minutes"] == pytest.approx(2500 * 1.2 / 60)
    assert row["tokens_per_second"] == 250 and row["flop_share"] == 0.5 and row["peak_rss_gb"] == pytest.approx(1.98)
    table = BENCH["table"]([row])
    assert "| default | 0.160 | 0.210 | 0.330 | 0.410 | 10.2 | 50.0 | 0.410 @ 40.1M | 250 | 0.50 | 1.98 |" in table
    old = [{k: v for k, v in e.items() if k != "tokens"} for e in events]  # logged before lines had tokens
    write_metrics(tmp_path / "old", old)
    assert BENCH["summarize"]("old", tmp_path / "old", batch_size=32)["exit_tokens"] == 2500 * 4096


def test_stop_at_stops_part_way_with_a_checkpoint_and_a_larger_stop_at_continues(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811 - the fixture
    train = BENCH["train"]
    monkeypatch.setitem(train.__globals__, "EVAL_EVERY_TOKENS", 4 * 128 * 8)  # evaluate every 8 steps of 4 × 128
    monkeypatch.setitem(train.__globals__, "POLL_SECONDS", 0.02)
    monkeypatch.setitem(train.__globals__["RECIPES"], "test", (["--config", "tiny", "--batch-size", "4",
                                                              "--no-bf16"], "mlm"))
    schedule = 4 * 128 * 160  # 160 steps
    run = train("test", data, tmp_path, schedule, 1, stop_at=4 * 128 * 8)
    first = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(e["step"] for e in first) < 160 and not (run / "final").exists()
    assert [e["step"] for e in first if e["kind"] == "eval"][0] == 8
    train("test", data, tmp_path, schedule, 1, stop_at=schedule)
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["kind"] == "eval"] == list(range(8, 161, 8)) and (run / "final").is_dir()
    assert "resuming from" in (tmp_path / "test.log").read_text()
