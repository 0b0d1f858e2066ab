"""HTTP load tests against a running `sla serve` (README.md): `python -m loadtest.load`, `python -m
loadtest.vllm_bench`."""
