"""A tiny name -> factory registry with lazy imports (rembg's sessions, diffusers' auto classes).

Entries are registered as ``"module.path:Attr"`` strings so that listing engines never imports
torch; the object is imported the first time it is asked for.
"""
from __future__ import annotations

import importlib
import inspect
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

    def create_offering(self, name: str, offered: dict[str, Any], **kwargs: Any) -> T:
        """Like :meth:`create`, also passing each ``offered`` keyword the factory takes (e.g. a
        Pipeline's ``models=`` cache, which not every engine uses)."""
        factory = self.entry(name).load()
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):  # a builtin without a signature: offer nothing
            params = {}
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        extra = {k: v for k, v in offered.items() if takes_all or k in params}
        return factory(**kwargs, **extra)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
