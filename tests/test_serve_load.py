"""Load: 50 concurrent clients hammer a real ``bert serve`` (a tiny model) on loopback with fill-mask and NSP requests
for BERT_LOAD_SECONDS (default 30).

* Every answer must be a 200 equal (floats to 1e-6) to the answer a single client got for the same request before the
  load began: an answer computed for another request, or mixed from two, fails the test.
* The page must still load quickly meanwhile (the model's views run in threads of their own).
* Once warm, the server's memory may grow by at most MEMORY_SLACK plus MEMORY_PER_REQUEST for each request answered
  after warm-up: a limit that scales with the run's length, so a shorter BERT_LOAD_SECONDS keeps it meaningful. A
  shorter run of a server with a leak of LEAK_BYTES per request injected proves that this check flags a leak.

The figures (requests/s, latency percentiles, the page's load times, server RSS) are printed and written to
tests/artifacts/serve-load.json.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
from dataclasses import dataclass, field

import httpx
from support import ARTIFACTS, ServerProcess, make_tiny_model

CLIENTS = 50
POOL = 64  # distinct requests, each answered once by a single client first; the clients then send them at random
PAGE = ("/", "/static/app.js", "/api/info")  # what a browser opening the explorer fetches
MAX_PAGE_MEDIAN = 0.1  # seconds, while the model is busy; measured 4–6 ms (and 126 ms had every thread run the model)
TOLERANCE = 1e-6  # for the floats of an answer; the same request gives the same bits, whichever thread runs it
# Memory: the server's RSS climbs by ~60 MB during its first few hundred answers (threads start, each model thread's
# first forward passes allocate their buffers and malloc arenas), then stays flat but for a few steps of ~2 MB:
# measured +0–5 MB over the next 1,700–4,400 answers on 2 cores busy with other jobs, once +15 MB. Growth is measured
# from the first second after WARMUP_REQUESTS answers to the last second of the run; an injected leak of 40 KB per
# request measures as 29–41 KB per request.
WARMUP_REQUESTS = 500
MIN_MEASURED_REQUESTS = 300  # fewer answers after warm-up than this and the memory check would mean nothing
MEMORY_SLACK = 24 * 2**20  # allocator noise, whatever the length of the run
MEMORY_PER_REQUEST = 1024  # 1 MB per 1000 answers: a leak of 40 KB a request exceeds the limit after ~630 answers
LEAK_BYTES = 40 * 1024  # the leak injected to prove that the memory check flags one
WORDS = ("the", "cat", "sat", "on", "a", "warm", "mat", "while", "dog", "ran", "after", "red", "ball", "in", "park",
         "she", "read", "book", "by", "river", "bank", "money", "paid", "into", "my", "old", "friend", "city", "rain")
# `bert serve` with a leak: every fill-mask and NSP answer keeps LEAK_BYTES alive (filled, so that they are resident).
LEAKING_SERVE = f"""
import sys

from bert.cli import main
from bert.serve.explorer import Explorer

kept = []


def leaking(view):
    def leaking_view(self, *args):
        kept.append(bytes(range(256)) * {LEAK_BYTES // 256})
        return view(self, *args)
    return leaking_view


Explorer.fill_mask = leaking(Explorer.fill_mask)
Explorer.next_sentence = leaking(Explorer.next_sentence)
sys.exit(main(sys.argv[1:]))
"""


def request_for(rng: random.Random) -> tuple[str, dict]:
    """A random valid request: fill-mask with a random top_k, or a random sentence pair."""
    words = rng.sample(WORDS, rng.randint(4, 12))
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words) + 1), "[MASK]")
        return "/api/fill-mask", {"text": " ".join(words) + ".", "top_k": rng.randint(1, 50)}
    cut = len(words) // 2
    return "/api/nsp", {"sentence_a": " ".join(words[:cut]) + ".", "sentence_b": " ".join(words[cut:]) + "."}


def request_pool(size: int = POOL, seed: int = 0) -> list[tuple[str, dict]]:
    """``size`` distinct random requests, about half of each kind."""
    rng, pool = random.Random(seed), {}
    while len(pool) < size:
        endpoint, body = request_for(rng)
        pool[endpoint + json.dumps(body, sort_keys=True)] = (endpoint, body)
    return list(pool.values())


def problem_with(endpoint: str, body: dict, answer: httpx.Response) -> str | None:
    """None when the answer is a 200 that answers this request, else what is wrong with it."""
    if answer.status_code != 200:
        return f"{endpoint}: HTTP {answer.status_code}: {answer.text[:200]}"
    data = answer.json()
    if endpoint == "/api/fill-mask" and len(data["predictions"][0]) != body["top_k"]:
        return f"{endpoint}: {len(data['predictions'][0])} candidates for top_k {body['top_k']}"
    if endpoint == "/api/nsp" and abs(data["is_next"] + data["not_next"] - 1) > 1e-5:
        return f"{endpoint}: probabilities {data['is_next']} + {data['not_next']} != 1"
    return None


def difference(expected: object, got: object, where: str = "answer") -> str | None:
    """None when ``got`` equals ``expected`` (floats to TOLERANCE), else the first place where they differ."""
    if isinstance(expected, dict) and isinstance(got, dict):
        if expected.keys() != got.keys():
            return f"{where}: fields {sorted(got)} instead of {sorted(expected)}"
        return next((found for key in expected if (found := difference(expected[key], got[key], f"{where}.{key}"))),
                    None)
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{where}: {len(got)} items instead of {len(expected)}"
        return next((found for i, (e, g) in enumerate(zip(expected, got, strict=True))
                     if (found := difference(e, g, f"{where}[{i}]"))), None)
    if isinstance(expected, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        same = abs(expected - got) <= TOLERANCE
    else:
        same = type(expected) is type(got) and expected == got
    return None if same else f"{where}: {got!r} instead of {expected!r}"


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {f"p{p}": round(1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)
            for p in (50, 95, 99)} if ordered else {}


@dataclass
class Load:
    """What one load run saw."""

    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # one per answer received, in order
    page_latencies: list[float] = field(default_factory=list)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (seconds, server RSS in bytes, answers)


@dataclass
class MemoryGrowth:
    """The server's RSS growth from just after warm-up to the end of a run, and the limit it is held to."""

    growth: float  # bytes
    requests: int  # answered in between

    @property
    def limit(self) -> float:
        return MEMORY_SLACK + MEMORY_PER_REQUEST * self.requests

    @property
    def per_request(self) -> float:
        return self.growth / max(self.requests, 1)

    @property
    def leaks(self) -> bool:
        return self.growth > self.limit

    def describe(self) -> str:
        return (f"RSS grew by {self.growth / 2**20:.1f} MB over {self.requests} answers after warm-up "
                f"({self.per_request / 1024:.1f} KB a request; limit {self.limit / 2**20:.1f} MB)")


def memory_growth(samples: list[tuple[float, int, int]]) -> MemoryGrowth:
    """Median RSS of the first second after WARMUP_REQUESTS answers against that of the run's last second."""
    warm = next((i for i, (_, _, answered) in enumerate(samples) if answered >= WARMUP_REQUESTS), len(samples))
    if len(samples) - warm < 8:  # not two seconds of samples after warm-up
        return MemoryGrowth(0.0, 0)
    first, last = samples[warm:warm + 4], samples[-4:]
    growth = statistics.median(rss for _, rss, _ in last) - statistics.median(rss for _, rss, _ in first)
    return MemoryGrowth(growth, round(statistics.median(n for *_, n in last) - statistics.median(n for *_, n in first)))


Expected = list[tuple[str, dict, dict]]  # (endpoint, request body, the answer a single client got)


def run_load(server: ServerProcess, expected: Expected, seconds: float, stop_after: int | None = None) -> Load:
    """CLIENTS clients send the requests of ``expected`` at random for ``seconds`` (or until ``stop_after`` answers),
    while a visitor opens the page twice a second and the server's RSS is sampled four times a second. Every answer
    that is not a 200 equal to the expected one is a failure."""
    load = Load()
    start = time.monotonic()
    deadline = start + seconds
    done = threading.Event()

    def running() -> bool:
        return time.monotonic() < deadline and (stop_after is None or len(load.latencies) < stop_after)

    def sample_memory() -> None:
        while not done.is_set():
            load.samples.append((time.monotonic() - start, server.rss_bytes(), len(load.latencies)))
            done.wait(0.25)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            while running():
                endpoint, body, single = rng.choice(expected)
                sent = time.monotonic()
                try:
                    answer = http.post(endpoint, json=body)
                except httpx.HTTPError as error:
                    load.failures.append(f"{endpoint}: {type(error).__name__}: {error}")
                    continue
                load.latencies.append(time.monotonic() - sent)
                if answer.status_code != 200:
                    load.failures.append(f"{endpoint}: HTTP {answer.status_code}: {answer.text[:200]}")
                elif (wrong := difference(single, answer.json())) is not None:
                    load.failures.append(f"{endpoint} {json.dumps(body)}: not the single client's answer: {wrong}")

    def visitor() -> None:
        """Opens the page twice a second while the clients keep the model busy."""
        with httpx.Client(base_url=server.url, timeout=60) as http:
            while running():
                for path in PAGE:
                    sent = time.monotonic()
                    if (status := http.get(path).status_code) != 200:
                        load.failures.append(f"GET {path}: HTTP {status}")
                    load.page_latencies.append(time.monotonic() - sent)
                done.wait(0.5)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
    threads.append(threading.Thread(target=visitor))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    load.seconds = time.monotonic() - start
    done.set()
    sampler.join()
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    return load


def single_client_answers(server: ServerProcess) -> Expected:
    """Each request of the pool sent once, one at a time, before any load, with its answer."""
    expected = []
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for endpoint, body in request_pool():
            answer = http.post(endpoint, json=body)
            assert (problem := problem_with(endpoint, body, answer)) is None, problem
            expected.append((endpoint, body, answer.json()))
    assert len({json.dumps(answer, sort_keys=True) for _, _, answer in expected}) == POOL, \
        "two different requests got the same answer: a mix-up could not be told apart"
    return expected


def test_fifty_concurrent_clients_get_the_single_client_answers_the_page_still_loads_and_memory_stays_flat(
        tmp_path):
    seconds = float(os.environ.get("BERT_LOAD_SECONDS", "30"))
    model = make_tiny_model(tmp_path / "tiny")

    with ServerProcess(model) as server:
        expected = single_client_answers(server)
        load = run_load(server, expected, seconds)
        assert server.process is not None and server.process.poll() is None, "the server died under load"
        assert server.stop() == 0, "Ctrl-C did not stop the server cleanly:\n" + "\n".join(server.output[-30:])
        log = "\n".join(server.output)

    memory = memory_growth(load.samples)
    rss = [rss for _, rss, _ in load.samples]
    report = {
        "clients": CLIENTS, "seconds": round(load.seconds, 1), "requests": len(load.latencies),
        "failures": len(load.failures), "requests_per_second": round(len(load.latencies) / load.seconds, 1),
        "latency_ms": percentiles_ms(load.latencies), "page_latency_ms": percentiles_ms(load.page_latencies),
        "server_rss_mb": {"first": round(rss[0] / 2**20, 1) if rss else None,
                          "growth_after_warmup": round(memory.growth / 2**20, 1),
                          "limit": round(memory.limit / 2**20, 1), "answers_after_warmup": memory.requests,
                          "last": round(rss[-1] / 2**20, 1) if rss else None,
                          "max": round(max(rss) / 2**20, 1) if rss else None},
    }
    print("load:", json.dumps(report))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "serve-load.json").write_text(json.dumps(report, indent=2) + "\n")

    assert load.failures == [], f"{len(load.failures)} failed requests, e.g. {load.failures[:5]}"
    assert len(load.latencies) >= CLIENTS, report
    assert "Traceback" not in log and log.rstrip().endswith("bert serve: stopped"), log[-3000:]
    assert memory.requests >= MIN_MEASURED_REQUESTS, \
        f"too few answers after warm-up to judge memory (BERT_LOAD_SECONDS too short?): {report}"
    assert load.page_latencies, report
    page = statistics.median(load.page_latencies)
    assert page < MAX_PAGE_MEDIAN, f"the page took {1000 * page:.0f} ms (median) to load under load: {report}"
    assert not memory.leaks, f"{memory.describe()}: {report}"


def test_the_memory_check_flags_a_leak_of_40_kb_a_request(tmp_path):
    """The same load on a server whose views each keep LEAK_BYTES alive, until 1,500 answers after warm-up: the
    memory check must fail it, and measure about the leak's size per request."""
    model = make_tiny_model(tmp_path / "tiny")
    with ServerProcess(model, python_args=("-c", LEAKING_SERVE)) as server:
        load = run_load(server, single_client_answers(server), seconds=60, stop_after=WARMUP_REQUESTS + 1500)
    memory = memory_growth(load.samples)
    print(f"injected leak of {LEAK_BYTES // 1024} KB a request, {len(load.latencies) / load.seconds:.0f} requests/s:",
          memory.describe())
    assert memory.requests >= MIN_MEASURED_REQUESTS, f"too few answers after warm-up: {memory.describe()}"
    assert memory.leaks, f"a leak of {LEAK_BYTES // 1024} KB a request went unnoticed: {memory.describe()}"
    assert 0.5 * LEAK_BYTES < memory.per_request < 2 * LEAK_BYTES, memory.describe()
