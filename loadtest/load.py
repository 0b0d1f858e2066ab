"""HTTP load generator for a running `sla serve`: streams chat completions and measures them as vLLM's own
benchmark does (TTFT, TPOT, ITL, E2E latency: mean, median, p90, p99; request and output-token throughput;
failures), plus, for SLA, the gap between committed chunks. Loopback only, bounded in count and time.

Scenarios (`--scenario`, repeatable):
  sweep     greedy vs SLA at each concurrency of --concurrency (the same prompts for both)
  overload  4x the server's admission cap at once: every request must end 200 or 429 (with Retry-After); a
            request that got no response at all is retried twice, as the openai client does, and counted
  storm     --storm-streams streams, each dropped by its client at a random point; then the engine must hold
            no request or branch, and the server's memory must be back near its baseline. The client retries
            a 429 and (twice, as the openai client does) a request that got no response at all; both counted

    .venv/bin/python loadtest/load.py --base-url http://127.0.0.1:8000 --out load.json --plot load.png

Definitions (vLLM's `vllm bench serve`): TTFT = request sent → first content delta; ITL = gaps between
consecutive content deltas (for SLA each delta is a committed chunk, so this is the commit gap); TPOT =
(E2E − TTFT) / (output tokens − 1); output tokens from the stream's usage chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PROMPTS = [
    "Explain why the sky is blue in three sentences.",
    "Write a short poem about a lighthouse.",
    "List five uses of a paperclip.",
    "What is the difference between a list and a tuple in Python?",
    "Summarise the plot of Romeo and Juliet.",
    "Give three tips for a job interview.",
    "How does a refrigerator keep food cold?",
    "Describe a healthy breakfast.",
]
GREEDY = {"strategy": "greedy"}
SLA = {"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}
IDLE_GAUGES = ("sla:engine_unfinished_requests", "sla:engine_scheduler_running", "sla:engine_scheduler_waiting",
               "sla:live_branches_reserved", "sla:requests_admitted")


@dataclass
class StreamResult:
    status: int = 0
    error: str | None = None
    ttft: float | None = None
    itl: list[float] = field(default_factory=list)
    e2e: float | None = None
    output_tokens: int = 0
    dropped: bool = False
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None and not self.dropped


class Server:
    def __init__(self, base_url: str, api_key: str | None, model: str | None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=httpx.Timeout(600, connect=30),
                                      limits=limits)
        self.model = model

    async def model_name(self) -> str:
        if self.model is None:
            r = await self.http.get("/v1/models")
            r.raise_for_status()
            self.model = r.json()["data"][0]["id"]
        return self.model

    async def metrics(self) -> dict[str, float]:
        """Unlabelled samples, and labelled ones summed per name."""
        text = (await self.http.get("/metrics")).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if m := re.match(r"^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})? (\S+)$", line):
                out[m[1]] = out.get(m[1], 0.0) + float(m[2])
        return out

    async def stream(self, search: dict, prompt: str, max_tokens: int, drop_after: int | None = None) -> StreamResult:
        """One streamed completion; `drop_after` content deltas → the client goes away (0: right after the
        headers)."""
        body = {"model": await self.model_name(), "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True},
                "search": search}
        res = StreamResult()
        start = last = time.perf_counter()
        try:
            async with self.http.stream("POST", "/v1/chat/completions", json=body) as r:
                res.status = r.status_code
                res.retry_after = r.headers.get("retry-after")
                if r.status_code != 200:
                    res.error = (await r.aread()).decode(errors="replace")[:300]
                    return res
                deltas = 0
                if drop_after == 0:
                    res.dropped = True
                    return res
                async for line in r.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    event = json.loads(line[6:])
                    if "error" in event:
                        res.error = event["error"].get("message", "error event")
                        continue
                    if event.get("usage"):
                        res.output_tokens = event["usage"]["completion_tokens"]
                    choices = event.get("choices") or []
                    if choices and choices[0]["delta"].get("content"):
                        now = time.perf_counter()
                        if res.ttft is None:
                            res.ttft = now - start
                        else:
                            res.itl.append(now - last)
                        last = now
                        deltas += 1
                        if drop_after is not None and deltas >= drop_after:
                            res.dropped = True
                            return res
                res.e2e = last - start
        except httpx.HTTPError as e:
            res.error = f"{type(e).__name__}: {e}"
        return res

    async def stream_retrying_unanswered(self, search: dict, prompt: str, max_tokens: int, errors: list[str],
                                         drop_after: int | None = None) -> StreamResult:
        """`stream`, retried twice (as the official openai client does) while the request got no response at all
        (a transport error before the status line); each such error is appended to `errors`."""
        res = await self.stream(search, prompt, max_tokens, drop_after)
        for _ in range(2):
            if res.status != 0:
                break
            errors.append(res.error or "")
            await asyncio.sleep(0.5)
            res = await self.stream(search, prompt, max_tokens, drop_after)
        return res

    async def wait_idle(self, timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            m = await self.metrics()
            left = {g: m.get(g, 0.0) for g in IDLE_GAUGES}
            if not any(left.values()) or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)


def dist(values: list[float]) -> dict[str, float] | None:
    """mean / median / p90 / p99 in milliseconds."""
    if not values:
        return None
    xs = sorted(values)

    def pct(p: float) -> float:
        return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]

    return {k: round(v * 1000, 2) for k, v in
            (("mean", statistics.fmean(xs)), ("median", statistics.median(xs)), ("p90", pct(90)), ("p99", pct(99)))}


def summarize(results: list[StreamResult], duration: float) -> dict:
    ok = [r for r in results if r.ok]
    tpot = [(r.e2e - r.ttft) / (r.output_tokens - 1) for r in ok if r.ttft is not None and r.output_tokens > 1]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    return {
        "requests": len(results), "completed": len(ok), "failed": sum(1 for r in results if not r.ok and not r.dropped),
        "statuses": statuses, "server_errors_5xx": sum(1 for r in results if r.status >= 500),
        "duration_s": round(duration, 3),
        "request_throughput": round(len(ok) / duration, 4) if duration else None,
        "output_throughput": round(sum(r.output_tokens for r in ok) / duration, 2) if duration else None,
        "ttft_ms": dist([r.ttft for r in ok if r.ttft is not None]),
        "tpot_ms": dist(tpot),
        "itl_ms": dist([x for r in ok for x in r.itl]),
        "e2e_ms": dist([r.e2e for r in ok if r.e2e is not None]),
        "errors": sorted({r.error for r in results if r.error})[:5],
    }


async def run_closed_loop(server: Server, search: dict, requests: int, concurrency: int, max_tokens: int) -> dict:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> StreamResult:
        async with gate:
            return await server.stream(search, PROMPTS[i % len(PROMPTS)], max_tokens)

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(requests)))
    out = summarize(list(results), time.perf_counter() - t0)
    if search["strategy"] == "sla":
        out["commit_gap_ms"] = out["itl_ms"]  # every SLA content delta is one committed chunk
    return out


async def sweep(server: Server, concurrencies: list[int], requests: int, max_tokens: int) -> dict:
    rows = []
    for name, search in (("greedy", GREEDY), ("sla", SLA)):
        for c in concurrencies:
            row = await run_closed_loop(server, search, max(requests, c), c, max_tokens)
            rows.append({"strategy": name, "concurrency": c, **row})
            print(f"sweep {name:6s} c={c:3d}: {row['completed']}/{row['requests']} ok, "
                  f"{row['output_throughput']} tok/s, TTFT p50 {(row['ttft_ms'] or {}).get('median')} ms")
    return {"rows": rows}


def unanswered(connection_errors: list[str]) -> dict:
    """The report's fields for requests retried because no response came: how many, and up to 5 distinct errors."""
    return {"retried_connection_errors": len(connection_errors), "connection_errors": sorted(set(connection_errors))[:5]}


async def overload(server: Server, max_tokens: int) -> dict:
    cap = int((await server.metrics())["sla:requests_admitted_cap"])
    n = 4 * cap
    connection_errors: list[str] = []
    t0 = time.perf_counter()
    results = await asyncio.gather(*(server.stream_retrying_unanswered(GREEDY, PROMPTS[i % len(PROMPTS)],
                                                                       max_tokens, connection_errors)
                                     for i in range(n)))
    out = summarize(list(results), time.perf_counter() - t0)
    refused = [r for r in results if r.status == 429]
    out.update(cap=cap, offered=n, refused_429=len(refused),
               refused_with_retry_after=sum(1 for r in refused if r.retry_after),
               other_failures=sum(1 for r in results if r.status not in (200, 429) or (r.status == 200 and not r.ok)),
               **unanswered(connection_errors))
    out["leaked_after"] = await server.wait_idle(120)
    print(f"overload: {n} offered against a cap of {cap}: {out['completed']} ok, {len(refused)} 429, "
          f"{out['other_failures']} other; retried {len(connection_errors)} requests without a response "
          f"{out['connection_errors']}")
    return out


async def storm(server: Server, streams: int, concurrency: int, max_tokens: int, seed: int) -> dict:
    rng = random.Random(seed)
    before = await server.metrics()
    gate = asyncio.Semaphore(concurrency)

    # half greedy, half a shallow SLA (its first commit comes after chunk x (depth + 1) tokens); drop points
    # from right after the headers (0) to a few content deltas in (an SLA delta is a whole chunk)
    shallow = {"strategy": "sla", "width": 2, "chunk": 4, "depth": 1}
    drops = [rng.randint(0, 3 if i % 2 else 6) for i in range(streams)]
    retries = 0
    connection_errors: list[str] = []

    async def one(i: int) -> StreamResult:
        nonlocal retries
        async with gate:
            while True:  # a polite client: a 429 is retried after its Retry-After
                res = await server.stream_retrying_unanswered(
                    shallow if i % 2 else GREEDY, PROMPTS[i % len(PROMPTS)], max_tokens, connection_errors,
                    drop_after=drops[i])
                if res.status != 429:
                    return res
                retries += 1
                await asyncio.sleep(float(res.retry_after or 1))

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(streams)))
    duration = time.perf_counter() - t0
    leaked = await server.wait_idle(120)
    await asyncio.sleep(2)
    after = await server.metrics()
    rss = "process_resident_memory_bytes"
    summary = summarize(list(results), duration)
    out = {
        "streams": streams, "concurrency": concurrency, "duration_s": round(duration, 2),
        "dropped": sum(r.dropped for r in results), "finished_before_drop": sum(r.ok for r in results),
        "statuses": summary["statuses"], "errors": summary["errors"],
        "server_errors_5xx": sum(1 for r in results if r.status >= 500),
        "retried_429": retries,
        **unanswered(connection_errors),
        "client_disconnects_counted": after.get("sla:client_disconnects_total", 0)
        - before.get("sla:client_disconnects_total", 0),
        "leaked": leaked,
        "server_rss_mib": {"before": round(before.get(rss, 0) / 2**20, 1), "after": round(after.get(rss, 0) / 2**20, 1)},
    }
    print(f"storm: {out['dropped']} of {streams} streams dropped in {out['duration_s']} s; leaked {leaked}; "
          f"server RSS {out['server_rss_mib']['before']} → {out['server_rss_mib']['after']} MiB; retried "
          f"{retries} 429s and {len(connection_errors)} requests without a response {out['connection_errors']}")
    return out


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.get("sweep", {}).get("rows", [])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name in ("greedy", "sla"):
        mine = [r for r in rows if r["strategy"] == name]
        cs = [r["concurrency"] for r in mine]
        axes[0].plot(cs, [r["output_throughput"] for r in mine], marker="o", label=name)
        axes[1].plot(cs, [(r["ttft_ms"] or {}).get("median") for r in mine], marker="o", label=name)
        axes[2].plot(cs, [(r["itl_ms"] or {}).get("median") for r in mine], marker="o", label=name)
    for ax, title in zip(axes, ("output tokens/s", "TTFT median (ms)", "ITL / commit gap median (ms)")):
        ax.set_xlabel("concurrency")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


async def main_async(args: argparse.Namespace) -> dict:
    server = Server(args.base_url, args.api_key, args.model)
    report: dict = {"base_url": args.base_url, "model": await server.model_name(), "settings": {
        "max_tokens": args.max_tokens, "sla": SLA}}
    try:
        for scenario in args.scenario or ["sweep", "overload", "storm"]:
            if scenario == "sweep":
                report["sweep"] = await sweep(server, args.concurrency, args.requests, args.max_tokens)
            elif scenario == "overload":
                report["overload"] = await overload(server, args.max_tokens)
            else:
                report["storm"] = await storm(server, args.storm_streams, args.storm_concurrency, args.max_tokens,
                                              args.seed)
    finally:
        await server.http.aclose()
    return report


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", default="http://127.0.0.1:8000")
    p.add_argument("--api-key")
    p.add_argument("--model", help="served model name [default: the server's first]")
    p.add_argument("--scenario", action="append", choices=["sweep", "overload", "storm"])
    p.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    p.add_argument("--requests", type=int, default=16, help="requests per sweep level (at least its concurrency)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--storm-streams", type=int, default=1000)
    p.add_argument("--storm-concurrency", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    p.add_argument("--plot", type=Path)
    args = p.parse_args(argv)
    if not re.match(r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/?$", args.base_url):
        p.error("loopback only: --base-url must be http://127.0.0.1:PORT or http://localhost:PORT")
    report = asyncio.run(main_async(args))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot and "sweep" in report:
        plot(report, args.plot)
    return report


if __name__ == "__main__":
    main()
