"""A seeded request on vLLM's CPU backend must not take the engine down.

vLLM 0.32's model runner rewinds a request's own sampling generator whenever the token it sampled is thrown
away — the step only prefilled part of a long prompt (chunked prefill, whenever a step's 2,048-token budget
runs out) — with `gen.set_offset(gen.get_offset() - 4)`, a Philox (CUDA) detail. A CPU generator has no
offset: the call raises "CPU Generator does not use offset" and the engine core dies with every request in
flight (seen here: prefix rollouts, 4 seeded sequences per prompt of 200–700 tokens, 60 at once). Any client
that sends `seed` with a long enough prompt under load could do the same to the server.

On the CPU the rewind is skipped instead (as vllm-rbln does for its CPU generators): the engine lives, and a
seeded request whose prefill was split draws one extra number per split step, so its text can depend on
how the scheduler split it. GPU generators are untouched.
"""

from __future__ import annotations

import functools

PATCHED = "_sla_cpu_generators_kept"


def keep_cpu_generators_through_discards() -> None:
    """Wraps the model runner's `_bookkeeping_sync` (the rewind's one place) so that it does not see the
    batch's CPU generators; idempotent. Runs in every vLLM process (the plugin entry point)."""
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    original = GPUModelRunner._bookkeeping_sync
    if getattr(original, PATCHED, False):
        return

    @functools.wraps(original)
    def bookkeeping_sync(self, *args, **kwargs):
        generators = self.input_batch.generators
        cpu = {i: g for i, g in generators.items() if g.device.type == "cpu"}
        for i in cpu:
            del generators[i]
        try:
            return original(self, *args, **kwargs)
        finally:
            generators.update(cpu)

    setattr(bookkeeping_sync, PATCHED, True)
    GPUModelRunner._bookkeeping_sync = bookkeeping_sync
