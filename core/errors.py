"""Errors that reach the user: each says what happened and what to do about it."""

from __future__ import annotations


class FauveError(Exception):
    """Base class for every error fauve reports to a user.

    ``code`` is a stable machine-readable name (used by the bridge API's JSON errors),
    ``hint`` says what the user can do about it.
    """

    code = "fauve_error"
    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class InputImageError(FauveError):
    """A file is missing, is not an image, or is too small."""

    code = "bad_image"


class UnknownStyleError(FauveError):
    """A style or model name that the catalog does not know."""

    code = "unknown_style"


class ModelFileError(FauveError):
    """A model folder is incomplete, corrupt, or from an unknown method."""

    code = "bad_model"


class LossNetworkUnavailable(FauveError):
    """No source of VGG16 weights is available."""

    code = "no_vgg_weights"


class OutOfMemory(FauveError):
    code = "out_of_memory"


class Cancelled(FauveError):
    """A job was cancelled by its caller."""

    code = "cancelled"
