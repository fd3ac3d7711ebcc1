"""A tiny name -> factory registry with lazy imports (rembg's sessions, diffusers' auto classes).

Entries are registered as ``"module.path:Attr"`` strings so that listing engines never imports
torch; the object is imported the first time it is asked for.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


@dataclass
class Entry:
    name: str
    target: str | Callable[..., Any]
    description: str = ""
    extra: str | None = None  # the optional extra it needs, if any
    capabilities: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Callable[..., Any]:
        if callable(self.target):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str | Callable[..., T], description: str = "",
                 extra: str | None = None, **capabilities: Any) -> None:
        self._entries[name] = Entry(name, target, description, extra, dict(capabilities))

    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        """Import (lazily) and instantiate the entry called ``name``."""
        return self.entry(name).load()(*args, **kwargs)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
