"""Background stage: (prompt, placed product, seeds) -> one Scene per seed.

One protocol, one registry. ``studio`` needs no weights and is the default; ``diffusion`` (extra
``ai``) generates with Stable Diffusion-class models. Engines never touch the product's pixels in
the final image: the compositor pastes the product back exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..registry import Registry
from ..types import Layer, Photo, ProgressFn, Scene, no_progress


@dataclass(frozen=True, eq=False)
class SceneJob:
    """Input of a background engine.

    ``request`` is the GenerateRequest; ``layer`` the product placed on the canvas; ``seeds`` one
    per candidate; ``photo`` the original photo (for outpainting/keep-framing, None otherwise);
    ``resolved`` the :class:`packshot.resolve.Resolved` request (its ``preset``,
    ``background_rgb``, ``shadow``, ``engine_check``: read them, never re-derive the rules), None
    when an engine is driven directly.
    """

    request: object
    layer: Layer
    seeds: tuple[int, ...]
    photo: Photo | None = None
    resolved: object | None = None


@runtime_checkable
class BackgroundEngine(Protocol):
    name: str

    def render(self, job: SceneJob, progress: ProgressFn = no_progress) -> list[Scene]:
        """Return ``len(job.seeds)`` scenes the canvas's size, in seed order."""
        ...

    # Optional: ``check(request, settings) -> Any`` refuses, up front and without loading a model,
    # a request this engine would fail on later (weights present, mode and model kind, reference
    # image), raising a packshot error that names the value. Called once per request by
    # ``packshot.resolve.check_inputs`` through :func:`engine_check`; its result is kept in
    # ``Resolved.engine_check``. Engines with nothing to check leave it out.


def engine_check(engine: object, request, settings) -> object:
    """``engine.check(request, settings)`` when the engine has one; None (nothing to check) otherwise."""
    check = getattr(engine, "check", None)
    return check(request, settings) if check is not None else None


ENGINES: Registry[BackgroundEngine] = Registry("background engine")
ENGINES.register("studio", "packshot.backgrounds.studio:StudioEngine",
                 "Procedural studio scenes from the prompt's words; no weights, instant.",
                 needs_weights=False, generated=False)
ENGINES.register("diffusion", "packshot.backgrounds.diffusion:DiffusionEngine",
                 "Stable Diffusion 1.5/2/XL inpainting, outpainting, text-to-image, img2img.",
                 extra="ai", needs_weights=True, generated=True)
