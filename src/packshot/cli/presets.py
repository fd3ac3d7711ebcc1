"""packshot presets: marketplace presets and their rules."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("presets", help="list marketplace presets and their rules")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..layout import PRESETS
    for pr in PRESETS.values():
        print(f"{pr.name:8} {pr.size[0]}x{pr.size[1]}  fill {pr.fill:.0%}  {pr.rules}")
    return 0
