"""Writes deploy/grafana/dashboards/sla-server.json (the provisioned dashboard). Rerun after editing PANELS;
tests/deploy/test_deploy.py checks that every metric a panel queries is on a live server's /metrics page."""

from __future__ import annotations

import json
from pathlib import Path

Q = "histogram_quantile"
# (title, unit, [(legend, PromQL)])
PANELS = [
    ("Time to first token (streams)", "s", [
        ("p50 {{strategy}}", f'{Q}(0.5, sum by (le, strategy) (rate(sla:time_to_first_token_seconds_bucket[1m])))'),
        ("p90 {{strategy}}", f'{Q}(0.9, sum by (le, strategy) (rate(sla:time_to_first_token_seconds_bucket[1m])))'),
    ]),
    ("Inter-token latency (gap between stream deltas; SLA: between commits)", "s", [
        ("p50 {{strategy}}", f'{Q}(0.5, sum by (le, strategy) (rate(sla:stream_delta_gap_seconds_bucket[1m])))'),
        ("p90 {{strategy}}", f'{Q}(0.9, sum by (le, strategy) (rate(sla:stream_delta_gap_seconds_bucket[1m])))'),
    ]),
    ("Committed tokens/s (what clients receive)", "short", [
        ("{{strategy}}", "sum by (strategy) (rate(sla:search_tokens_emitted_total[1m]))"),
    ]),
    ("Tokens generated per token emitted (search cost)", "short", [
        ("{{strategy}}", "sum by (strategy) (rate(sla:search_tokens_generated_total[5m])) / "
                         "sum by (strategy) (rate(sla:search_tokens_emitted_total[5m]))"),
    ]),
    ("Live search branches", "short", [
        ("reserved", "sla:live_branches_reserved"),
        ("cap", "sla:live_branches_cap"),
        ("engine running", "sla:engine_scheduler_running"),
        ("engine waiting", "sla:engine_scheduler_waiting"),
    ]),
    ("Prefix-cache hit rate", "percentunit", [
        ("all engine requests", "rate(vllm:prefix_cache_hits_total[1m]) / rate(vllm:prefix_cache_queries_total[1m])"),
        ("branch prompts", "sum(rate(sla:search_branch_cached_tokens_total[1m])) / "
                           "sum(rate(sla:search_branch_prompt_tokens_total[1m]))"),
    ]),
    ("Requests", "short", [
        ("admitted", "sla:requests_admitted"),
        ("cap", "sla:requests_admitted_cap"),
        ("429/s {{cap}}", "sum by (cap) (rate(sla:requests_rejected_total[1m]))"),
        ("client disconnects/s", "rate(sla:client_disconnects_total[1m])"),
    ]),
    ("HTTP responses/s by status", "reqps", [
        ("{{status}}", "sum by (status) (rate(sla:http_requests_total[1m]))"),
    ]),
]


def dashboard() -> dict:
    panels = []
    for i, (title, unit, targets) in enumerate(PANELS):
        panels.append({
            "id": i + 1, "type": "timeseries", "title": title,
            "gridPos": {"x": 12 * (i % 2), "y": 8 * (i // 2), "w": 12, "h": 8},
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + j), "expr": expr, "legendFormat": legend}
                        for j, (legend, expr) in enumerate(targets)],
        })
    return {"uid": "sla-server", "title": "SLA server", "schemaVersion": 39, "refresh": "10s",
            "time": {"from": "now-30m", "to": "now"}, "panels": panels}


if __name__ == "__main__":
    out = Path(__file__).parent / "dashboards" / "sla-server.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(out)
