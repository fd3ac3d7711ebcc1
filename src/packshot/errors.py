"""One error family. Every message names the bad value; the CLI prints it on one line and exits 2,
the API turns it into a 4xx JSON answer."""
from __future__ import annotations


class PackshotError(Exception):
    """Base of every error packshot raises on purpose. ``http_status`` is what the API answers."""

    http_status = 400

    def __init__(self, message: str):
        # one line, always: newlines would break the CLI's one-line contract
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class InvalidInputError(PackshotError):
    """A request value is out of range or malformed (names the field and the value)."""

    http_status = 422


class ImageLoadError(PackshotError):
    """A file or upload is not a usable image: not an image, truncated, empty or too large."""

    http_status = 400


class ImageTooLargeError(ImageLoadError):
    http_status = 413


class NoProductFoundError(PackshotError):
    """Segmentation found nothing that looks like a product (or the given mask is empty)."""

    http_status = 422


class UnknownNameError(PackshotError):
    """An engine, preset, model or other registered name is not known; lists the valid names."""

    http_status = 400

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]):
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid) or '(none)'}")


class NotFoundError(PackshotError):
    """An id (product, job, result) does not exist, or is not visible to this caller."""

    http_status = 404


class ModelError(PackshotError):
    """Model weights missing, of the wrong kind, corrupt, or unable to take the request."""

    http_status = 422


class MissingWeightsError(ModelError):
    pass


class DependencyMissingError(PackshotError):
    """An optional extra is not installed; the message says what to install."""

    http_status = 501

    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'packshot[{extra}]'")


class CancelledError(PackshotError):
    http_status = 409
