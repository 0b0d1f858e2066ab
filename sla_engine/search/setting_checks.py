"""How a search setting is checked when its config is built: the error that names the field (the API's
`param`) and one check per kind of value."""

from __future__ import annotations

import math

from sla_engine.reward.weights import READOUTS


class SearchConfigError(ValueError):
    """A setting is out of range or unknown; `field` names it (for the API's `param`)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_int(config, name: str, low: int, high: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SearchConfigError(name, f"{name} must be an integer in {low}..{high}; got {value!r}")


def check_bool(config, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, bool):
        raise SearchConfigError(name, f"{name} must be true or false; got {value!r}")


def check_readout(config) -> None:
    if config.score is not None and config.score not in READOUTS:
        raise SearchConfigError("score", f"score must be one of {', '.join(READOUTS)} (or left out: the head's "
                                         f"own read-out); got {config.score!r}")


def check_float(config, name: str, low: float, high: float, low_open: bool = False) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (low < value if low_open else low <= value) or value > high:
        span = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise SearchConfigError(name, f"{name} must be a number in {span}; got {value!r}")
