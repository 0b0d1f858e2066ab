"""The reward heads that ship with the repository: `heads/MODEL/` holds the head a model is served with by
default (`sla serve` loads it unless told `--no-reward-head`). The folder is found through `SLA_HEADS_DIR`
(the container images set it), else beside the installed packages (a source checkout)."""

from __future__ import annotations

import os
from pathlib import Path

from sla_engine.reward.weights import META_FILE
from sla_engine.store import canonical

HEADS_ENV = "SLA_HEADS_DIR"


def heads_dir() -> Path:
    if env := os.environ.get(HEADS_ENV):
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "heads"


def shipped_head(model: str) -> Path | None:
    """The shipped head folder of a packaged model (any of its names), or None when there is none."""
    folder = heads_dir() / canonical(model)
    return folder if (folder / META_FILE).is_file() else None
