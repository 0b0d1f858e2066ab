"""One streamed chat completion measured as vLLM's `vllm bench serve` measures it (TTFT, inter-token gaps, E2E,
output tokens), the server's Prometheus gauges, and the summary of many streams; used by load.py."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from dataclasses import dataclass, field

import httpx

# what must be back at zero once every stream has ended
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
    tokens_generated: int | None = None  # search_stats' count (every branch); None for plain decoding
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

    async def stream(self, search: dict, messages: list[dict], max_tokens: int,
                     drop_after: int | None = None) -> StreamResult:
        """One streamed completion; `drop_after` content deltas → the client goes away (0: right after the
        headers)."""
        body = {"model": await self.model_name(), "messages": messages,
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
                    if event.get("search_stats"):
                        res.tokens_generated = event["search_stats"].get("tokens_generated")
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

    async def stream_retrying_unanswered(self, search: dict, messages: list[dict], max_tokens: int, errors: list[str],
                                         drop_after: int | None = None) -> StreamResult:
        """`stream`, retried twice (as the official openai client does) while the request got no response at all
        (a transport error before the status line); each such error is appended to `errors`."""
        res = await self.stream(search, messages, max_tokens, drop_after)
        for _ in range(2):
            if res.status != 0:
                break
            errors.append(res.error or "")
            await asyncio.sleep(0.5)
            res = await self.stream(search, messages, max_tokens, drop_after)
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
    emitted = sum(r.output_tokens for r in ok)
    generated = sum(r.tokens_generated or r.output_tokens for r in ok)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
    return {
        "requests": len(results), "completed": len(ok), "failed": sum(1 for r in results if not r.ok and not r.dropped),
        "statuses": statuses, "server_errors_5xx": sum(1 for r in results if r.status >= 500),
        "duration_s": round(duration, 3),
        "request_throughput": round(len(ok) / duration, 4) if duration else None,
        "requests_per_minute": round(60 * len(ok) / duration, 2) if duration else None,
        "output_throughput": round(emitted / duration, 2) if duration else None,
        # the decode work a search spent per token it streamed (plain decoding: 1.0)
        "generated_per_emitted": round(generated / emitted, 2) if emitted else None,
        "ttft_ms": dist([r.ttft for r in ok if r.ttft is not None]),
        "tpot_ms": dist(tpot),
        "itl_ms": dist([x for r in ok for x in r.itl]),
        "e2e_ms": dist([r.e2e for r in ok if r.e2e is not None]),
        "errors": sorted({r.error for r in results if r.error})[:5],
    }
