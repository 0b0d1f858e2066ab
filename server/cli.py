"""`sla serve`: the OpenAI-compatible API on one vLLM engine (two with `--target-model`).

    sla serve [--model NAME|FOLDER] [--reward-head FOLDER | --no-reward-head] [--search JSON]
              [--host H] [--port P] [--api-key KEY] [--max-concurrent-requests N] [--max-live-branches N]
              [--max-tokens-cap N] [--target-model NAME|FOLDER] [engine settings...]

Every flag also reads an `SLA_*` environment variable (named in its help).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
from pathlib import Path

from sla_engine.search import PlainConfig, SearchConfig, SearchConfigError, choose_search
from sla_engine.store import CATALOG, DEFAULT_MODEL


def env(name: str, default=None):
    return os.environ.get(f"SLA_{name}", default)


def parse_search(text: str) -> dict:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(fields, dict):
        raise argparse.ArgumentTypeError('a JSON object: a strategy and its settings, e.g. {"strategy": "sla"}')
    return fields


def add_parser(sub) -> None:
    serve = sub.add_parser("serve", help="serve the OpenAI-compatible API", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.set_defaults(run=serve_command)
    serve.add_argument("--model", default=env("MODEL", DEFAULT_MODEL),
                       help=f"packaged model name ({', '.join(CATALOG)}) or a local Hugging Face folder "
                            "[env SLA_MODEL; default %(default)s]")
    serve.add_argument("--served-model-name", default=env("SERVED_MODEL_NAME"),
                       help="the name clients send as `model` [default: the --model value's name]")
    serve.add_argument("--host", default=env("HOST", "127.0.0.1"), help="[env SLA_HOST; default %(default)s]")
    serve.add_argument("--port", type=int, default=int(env("PORT", 8000)), help="[env SLA_PORT; default %(default)s]")
    serve.add_argument("--api-key", default=env("API_KEY"),
                       help="require `Authorization: Bearer KEY` on every route but /health [env SLA_API_KEY]")
    head = serve.add_mutually_exclusive_group()
    head.add_argument("--reward-head", default=env("REWARD_HEAD"),
                      help="folder with reward_head.json + reward_head.safetensors for this model; checked at "
                           "start-up [env SLA_REWARD_HEAD; default: the model's shipped head, heads/MODEL, if any]")
    head.add_argument("--no-reward-head", action="store_true", default=env("NO_REWARD_HEAD") == "1",
                      help="serve without a reward head, even where the model ships one (plain decoding only) "
                           "[env SLA_NO_REWARD_HEAD=1]")
    serve.add_argument("--search", default=env("SEARCH"), type=parse_search,
                       help='default search for requests without a `search` field, as JSON, e.g. '
                            '\'{"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}\' (fields left out: '
                            'those defaults); every search but greedy needs a reward head; docs/strategies.md '
                            'lists the strategies and their settings [env SLA_SEARCH; default: plain sampling]')
    serve.add_argument("--target-model", default=env("TARGET_MODEL"),
                       help="a larger model with the same tokenizer, run as a second engine for the `rsd` "
                            "strategy (packaged name or local folder) [env SLA_TARGET_MODEL; default: none]")
    serve.add_argument("--max-live-branches", type=int, default=int(env("MAX_LIVE_BRANCHES", 512)),
                       help="cap on engine requests all searches together may run; a request that would pass it "
                            "gets 429 [env SLA_MAX_LIVE_BRANCHES; default %(default)s]")
    serve.add_argument("--max-concurrent-requests", type=int, default=int(env("MAX_CONCURRENT_REQUESTS", 256)),
                       help="cap on chat completions admitted at once; one more gets 429 with Retry-After "
                            "[env SLA_MAX_CONCURRENT_REQUESTS; default %(default)s]")
    serve.add_argument("--max-tokens-cap", type=int, default=env("MAX_TOKENS_CAP"),
                       help="largest max_tokens a request may ask for; more → 400 [env SLA_MAX_TOKENS_CAP; "
                            "default: the context length]")
    serve.add_argument("--max-model-len", type=int, default=int(env("MAX_MODEL_LEN", 4096)),
                       help="context length in tokens [env SLA_MAX_MODEL_LEN; default %(default)s]")
    serve.add_argument("--max-num-seqs", type=int, default=int(env("MAX_NUM_SEQS", 64)),
                       help="most sequences the engine runs in one batch [env SLA_MAX_NUM_SEQS; default %(default)s]")
    serve.add_argument("--dtype", default=env("DTYPE"), choices=["auto", "float32", "float16", "bfloat16"],
                       help="model dtype [env SLA_DTYPE; default: float32 on CPU, auto on GPU]")
    serve.add_argument("--compile", action="store_true", default=env("COMPILE") == "1",
                       help="CPU: torch.compile the model (decodes 5-12 %% faster, starts ~3x slower); "
                            "GPUs compile by default [env SLA_COMPILE=1]")
    serve.add_argument("--kv-cache-gib", type=float, default=float(env("KV_CACHE_GIB", 2)),
                       help="KV cache size on CPU, GiB [env SLA_KV_CACHE_GIB; default %(default)s]")
    serve.add_argument("--gpu-memory-utilization", type=float, default=env("GPU_MEMORY_UTILIZATION"),
                       help="GPU only: fraction of GPU memory for the engine [default: vLLM's]")
    serve.add_argument("--tensor-parallel-size", type=int, default=int(env("TENSOR_PARALLEL_SIZE", 1)),
                       help="GPUs one replica shards the model over (vLLM's tensor parallelism) "
                            "[env SLA_TENSOR_PARALLEL_SIZE; default %(default)s]")
    serve.add_argument("--max-body-bytes", type=int, default=int(env("MAX_BODY_BYTES", 1 << 20)),
                       help="largest accepted request body [env SLA_MAX_BODY_BYTES; default %(default)s]")
    serve.add_argument("--log-level", default=env("LOG_LEVEL", "info"),
                       choices=["critical", "error", "warning", "info", "debug"])


def reward_head(args: argparse.Namespace, model_name: str, model_path: Path) -> str | None:
    """The head to serve: the one given, else the model's shipped one (unless --no-reward-head); a wrong or
    corrupt head is refused now, before any engine starts."""
    from sla_engine.reward import RewardHead
    from sla_engine.reward.shipped import shipped_head

    if args.no_reward_head:
        return None
    head = args.reward_head or shipped_head(model_name)
    if head is not None:
        RewardHead.load_for(Path(head), model_path)
    return str(head) if head is not None else None


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import DRAIN_S, create_app
    from server.config import ServerConfig
    from sla_engine.engine import EngineConfig, target_config
    from sla_engine.store import ModelStore

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = ModelStore().resolve(args.model)
    head = reward_head(args, model.name, model.path)
    try:
        search: SearchConfig = choose_search(args.search, PlainConfig(), has_reward=head is not None,
                                             has_target=bool(args.target_model))
    except SearchConfigError as e:
        raise ValueError(f"--search: {e}") from None
    config = ServerConfig(host=args.host, port=args.port, api_key=args.api_key or None,
                          max_body_bytes=args.max_body_bytes, log_level=args.log_level, search=search,
                          max_live_branches=args.max_live_branches,
                          max_concurrent_requests=args.max_concurrent_requests,
                          max_tokens_cap=int(args.max_tokens_cap) if args.max_tokens_cap else None)
    engine = EngineConfig(
        model_path=str(model.path), served_name=args.served_model_name or model.name, max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs, dtype=args.dtype, enforce_eager=False if args.compile else None,
        kv_cache_gib=args.kv_cache_gib, tensor_parallel_size=args.tensor_parallel_size,
        gpu_memory_utilization=float(args.gpu_memory_utilization) if args.gpu_memory_utilization else None,
        reward_head=head,
    )
    target = None
    if args.target_model:
        resolved = ModelStore().resolve(args.target_model)
        target = target_config(engine, str(resolved.path), resolved.name)
    died = []

    def stop_on_engine_death() -> None:
        died.append(True)
        server.should_exit = True  # a graceful stop: open streams have their error event already

    app = create_app(config, engine, target, on_engine_death=stop_on_engine_death)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_level=config.log_level,
                                           timeout_graceful_shutdown=int(DRAIN_S) + 3))
    # uvicorn drains on SIGTERM, then re-raises the signal under the handler it found at start; with this
    # no-op handler a clean drain exits 0 (what process managers expect) instead of dying by signal 15.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    server.run()
    return 1 if died else 0
