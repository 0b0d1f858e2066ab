"""HTTP load generator for a running `sla serve`: streams chat completions and measures them as vLLM's own
benchmark does (TTFT, TPOT, ITL, E2E latency: mean, median, p90, p99; request and output-token throughput;
failures), plus, for SLA, the gap between committed chunks. Loopback only, bounded in count and time.

Scenarios (`--scenario`, repeatable):
  sweep     greedy and each --search (default SLA(2,10,2)) at each concurrency of --concurrency, on the same
            prompts (--prompts: short chat requests, or the GSM validation problems as `sla eval` sends them);
            each search's row carries its ratios to greedy's at that concurrency: requests completed per
            minute, median time to the first token and to the last (`vs_greedy`), and the tokens it
            generated per token it streamed
  overload  4x the server's admission cap at once: every request must end 200 or 429 (with Retry-After); a
            request that got no response at all is retried twice, as the openai client does, and counted
  storm     --storm-streams streams, each dropped by its client at a random point; then the engine must hold
            no request or branch, and the server's memory must be back near its baseline. The client retries
            a 429 and (twice, as the openai client does) a request that got no response at all; both counted

    .venv/bin/python -m loadtest.load --base-url http://127.0.0.1:8000 --out load.json --plot load.png
    .venv/bin/python -m loadtest.load --scenario sweep --prompts gsm-validation --concurrency 1,4,8 \
        --max-tokens 512 --search forks-2='{"strategy": "fork_rollouts", "forks": 2, "score": "mean"}'

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
import time
from pathlib import Path

from loadtest.stream_client import Server, StreamResult, summarize

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
CHAT = [[{"role": "user", "content": prompt}] for prompt in PROMPTS]
GREEDY = {"strategy": "greedy"}
SLA = {"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}
ENDED = "sla:time_per_output_token_seconds_count"  # one observation per stream that reached its end (> 1 token)


def unanswered(connection_errors: list[str]) -> dict:
    """The report's fields for requests retried because no response came: how many, and up to 5 distinct errors."""
    return {"retried_connection_errors": len(connection_errors),
            "connection_errors": sorted(set(connection_errors))[:5]}


async def run_closed_loop(server: Server, search: dict, prompts: list[list[dict]], requests: int,
                          concurrency: int, max_tokens: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    connection_errors: list[str] = []

    async def one(i: int) -> StreamResult:
        async with gate:
            return await server.stream_retrying_unanswered(search, prompts[i % len(prompts)], max_tokens,
                                                           connection_errors)

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(requests)))
    out = summarize(list(results), time.perf_counter() - t0) | unanswered(connection_errors)
    if search["strategy"] == "sla":
        out["commit_gap_ms"] = out["itl_ms"]  # every SLA content delta is one committed chunk
    return out


def median(row: dict, metric: str) -> float | None:
    """A summarized row's median of `metric` (e.g. "ttft_ms"); None when nothing was measured."""
    return (row[metric] or {}).get("median")


def against_greedy(row: dict, greedy: dict) -> dict:
    """What a search costs against greedy at the same concurrency: ratios of requests completed per minute,
    of the median time to the first token and of the median time to the last one (e2e)."""
    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    return {"requests_per_minute": ratio(row["requests_per_minute"], greedy["requests_per_minute"]),
            "ttft_median": ratio(median(row, "ttft_ms"), median(greedy, "ttft_ms")),
            "e2e_median": ratio(median(row, "e2e_ms"), median(greedy, "e2e_ms"))}


async def sweep(server: Server, searches: dict[str, dict], prompts: list[list[dict]], concurrencies: list[int],
                requests: int, max_tokens: int) -> dict:
    """Greedy, then each search, at each concurrency, on the same prompts; every search's row carries its
    ratios to greedy's row at that concurrency (`vs_greedy`)."""
    rows, greedy_at = [], {}
    for name, search in {"greedy": GREEDY, **searches}.items():
        for c in concurrencies:
            row = await run_closed_loop(server, search, prompts, max(requests, c), c, max_tokens)
            if name == "greedy":
                greedy_at[c] = row
            else:
                row["vs_greedy"] = against_greedy(row, greedy_at[c])
            rows.append({"strategy": name, "search": search, "concurrency": c, **row})
            print(f"sweep {name:6s} c={c:3d}: {row['completed']}/{row['requests']} ok, "
                  f"{row['requests_per_minute']} req/min, TTFT p50 {median(row, 'ttft_ms')} ms, "
                  f"E2E p50 {median(row, 'e2e_ms')} ms {row.get('vs_greedy', '')}")
    return {"rows": rows}


async def overload(server: Server, max_tokens: int) -> dict:
    cap = int((await server.metrics())["sla:requests_admitted_cap"])
    n = 4 * cap
    connection_errors: list[str] = []
    t0 = time.perf_counter()
    results = await asyncio.gather(*(server.stream_retrying_unanswered(GREEDY, CHAT[i % len(CHAT)],
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
                    shallow if i % 2 else GREEDY, CHAT[i % len(CHAT)], max_tokens, connection_errors,
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
        # a client that drops after its last delta arrived finds the stream already ended: no disconnect then
        "ended_by_the_server": after.get(ENDED, 0) - before.get(ENDED, 0),
        "leaked": leaked,
        "server_rss_mib": {"before": round(before.get(rss, 0) / 2**20, 1),
                           "after": round(after.get(rss, 0) / 2**20, 1)},
    }
    print(f"storm: {out['dropped']} of {streams} streams dropped in {out['duration_s']} s; the server counted "
          f"{out['client_disconnects_counted']:.0f} disconnects and {out['ended_by_the_server']:.0f} ended streams; "
          f"leaked {leaked}; "
          f"server RSS {out['server_rss_mib']['before']} → {out['server_rss_mib']['after']} MiB; retried "
          f"{retries} 429s and {len(connection_errors)} requests without a response {out['connection_errors']}")
    return out


def named_search(text: str) -> tuple[str, dict]:
    """`NAME=JSON` from the command line: a name for the report and the request's `search` object."""
    name, sep, body = text.partition("=")
    if not sep or not name or name == "greedy":
        raise argparse.ArgumentTypeError(f"expected NAME=JSON with a name other than greedy; got {text!r}")
    try:
        search = json.loads(body)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"{name}: not JSON: {e}") from None
    if not isinstance(search, dict) or "strategy" not in search:
        raise argparse.ArgumentTypeError(f"{name}: a search is a JSON object with a strategy; got {body!r}")
    return name, search


def prompts(kind: str, count: int) -> list[list[dict]]:
    """The sweep's conversations: the short chat prompts, or the first `count` GSM validation problems."""
    if kind == "chat":
        return CHAT
    from sla_pipeline.eval.sets import load_set

    return [list(item.messages) for item in load_set("gsm-validation", count).items]


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.get("sweep", {}).get("rows", [])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == name]
        cs = [r["concurrency"] for r in mine]
        axes[0].plot(cs, [r["requests_per_minute"] for r in mine], marker="o", label=name)
        axes[1].plot(cs, [median(r, "ttft_ms") for r in mine], marker="o", label=name)
        axes[2].plot(cs, [median(r, "e2e_ms") for r in mine], marker="o", label=name)
    for ax, title in zip(axes, ("requests completed per minute", "first token, median (ms)",
                                "last token, median (ms)")):
        ax.set_xlabel("concurrency")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


async def main_async(args: argparse.Namespace) -> dict:
    server = Server(args.base_url, args.api_key, args.model)
    report: dict = {"base_url": args.base_url, "model": await server.model_name(), "settings": {
        "max_tokens": args.max_tokens, "prompts": args.prompts, "searches": args.search}}
    try:
        for scenario in args.scenario or ["sweep", "overload", "storm"]:
            if scenario == "sweep":
                report["sweep"] = await sweep(server, args.search, prompts(args.prompts, args.requests),
                                              args.concurrency, args.requests, args.max_tokens)
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
    p.add_argument("--search", type=named_search, action="append", metavar="NAME=JSON",
                   help="a search to sweep beside greedy (repeatable) [default: sla=SLA(2,10,2)]")
    p.add_argument("--prompts", choices=["chat", "gsm-validation"], default="chat",
                   help="the sweep's prompts: short chat requests, or the first --requests GSM validation problems")
    p.add_argument("--storm-streams", type=int, default=1000)
    p.add_argument("--storm-concurrency", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    p.add_argument("--plot", type=Path)
    args = p.parse_args(argv)
    args.search = dict(args.search or [("sla", SLA)])
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
