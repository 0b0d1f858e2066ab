"""Argument types shared by the pipeline's subcommands."""

from __future__ import annotations


def comma_list(text: str) -> tuple[str, ...]:
    """`--sets gsm, mbpp,` as ("gsm", "mbpp"): names split on commas, blanks dropped; each command checks the names."""
    return tuple(name.strip() for name in text.split(",") if name.strip())
