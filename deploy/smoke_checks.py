"""The checks deploy/smoke.sh runs against the stack it brought up, through the published port, each printing
one JSON line for the report (run with the project's Python: it uses the official `openai` client).

    python deploy/smoke_checks.py CHECK --base-url URL --api-key KEY
    (CHECK: chat, search, metrics, traffic, stream-through-stop or dashboard)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import openai

MODEL = "qwen2.5-coder-0.5b-instruct"
QUESTION = [{"role": "user", "content": "Tom has 12 apples and buys 30 more. How many does he have?"}]


def client(args) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{args.base_url}/v1", api_key=args.api_key, max_retries=0, timeout=600)


def chat(args) -> dict:
    """A streamed chat completion: content arrives in more than one delta and ends with a finish reason."""
    start = time.perf_counter()
    deltas, finish = [], None
    for chunk in client(args).chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=48, stream=True,
                                                      temperature=0):
        if chunk.choices and chunk.choices[0].delta.content:
            deltas.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    ok = len(deltas) > 1 and finish in ("stop", "length")
    return {"check": "streamed chat", "ok": ok, "deltas": len(deltas), "finish_reason": finish,
            "text": "".join(deltas)[:120], "seconds": round(time.perf_counter() - start, 1)}


def search(args) -> dict:
    """The recommended search, with its search_stats."""
    start = time.perf_counter()
    r = client(args).chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=96,
                                             extra_body={"search": {"strategy": "fork_rollouts", "score": "mean"}})
    stats = getattr(r, "search_stats", None) or {}
    ok = bool(r.choices[0].message.content) and stats.get("strategy") == "fork_rollouts" and \
        stats.get("tokens_generated", 0) >= stats.get("tokens_emitted", 1) > 0
    return {"check": "fork_rollouts with search_stats", "ok": ok, "search_stats": {
        k: stats.get(k) for k in ("strategy", "tokens_generated", "tokens_emitted", "forks", "mean_reward")},
        "seconds": round(time.perf_counter() - start, 1)}


def get(url: str, api_key: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(args) -> dict:
    """/metrics answers with the key (and refuses without it), and carries the server's and vLLM's series."""
    status, text = get(f"{args.base_url}/metrics", args.api_key)
    refused, _ = get(f"{args.base_url}/metrics")
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    wanted = ["sla:http_requests_total", "sla:time_to_first_token_seconds_bucket", "vllm:prefix_cache_hits_total"]
    return {"check": "/metrics", "ok": status == 200 and refused == 401 and all(w in names for w in wanted),
            "status": status, "without_key": refused, "series_names": len(names)}


def traffic(args) -> dict:
    """What the dashboard's panels read: streamed requests of two strategies, one dropped stream, and a 429
    (more requests at once than the stack's SLA_MAX_CONCURRENT_REQUESTS)."""
    c = client(args)
    for search in ({"strategy": "greedy"}, {"strategy": "sla", "width": 2, "chunk": 4, "depth": 1}):
        for _ in c.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=24, stream=True,
                                           extra_body={"search": search}):
            pass
    stream = c.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=200, stream=True)
    next(iter(stream))
    stream.close()  # a client that goes away
    statuses = []

    def one():
        try:
            c.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=32)
            statuses.append(200)
        except openai.RateLimitError:
            statuses.append(429)

    threads = [threading.Thread(target=one) for _ in range(args.burst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"check": "dashboard traffic", "ok": 429 in statuses and 200 in statuses, "burst_statuses": statuses}


def stream_through_stop(args) -> dict:
    """A stream admitted before the stop: it is read to its end while `docker-compose stop` runs beside it
    (smoke.sh starts that once this prints its first line)."""
    deltas, finish, error = 0, None, None
    try:
        for chunk in client(args).chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=args.max_tokens,
                                                          stream=True, temperature=0):
            if chunk.choices and chunk.choices[0].delta.content:
                if deltas == 0:
                    print(json.dumps({"started": True}), flush=True)
                deltas += 1
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
    except Exception as e:  # noqa: BLE001 - the report says what happened to the stream
        error = f"{type(e).__name__}: {e}"
    return {"check": "stream admitted before the stop", "ok": finish in ("stop", "length") and error is None,
            "deltas": deltas, "finish_reason": finish, "error": error}


def dashboard(args) -> dict:
    """Every query of the Grafana dashboard, run against Prometheus's HTTP API: each must return a series."""
    board = json.loads(Path(args.dashboard).read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", []) if t.get("expr")]
    results = []
    for expr in exprs:
        status, body = get(f"{args.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        series = json.loads(body)["data"]["result"] if status == 200 else []
        results.append({"expr": expr, "series": len(series)})
    return {"check": "every dashboard query has a series", "ok": all(r["series"] > 0 for r in results),
            "queries": len(results), "empty": [r["expr"] for r in results if not r["series"]]}


CHECKS = {"chat": chat, "search": search, "metrics": metrics, "traffic": traffic,
          "stream-through-stop": stream_through_stop, "dashboard": dashboard}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("check", choices=CHECKS)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--burst", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=80)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--dashboard", default=str(Path(__file__).parent / "grafana/dashboards/sla-server.json"))
    args = parser.parse_args()
    result = CHECKS[args.check](args)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
