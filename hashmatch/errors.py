"""One error hierarchy for the whole service.

Every domain error carries a stable `code` (travels to clients per item) and one
`message`. Transports map codes to their own statuses in one place each; the PhotoDNA
numbers are kept here because they are part of the code's meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    BAD_PARAMETER = "BAD_PARAMETER"
    NOT_AN_IMAGE = "NOT_AN_IMAGE"
    CORRUPT_IMAGE = "CORRUPT_IMAGE"
    SIZE_OUT_OF_RANGE = "SIZE_OUT_OF_RANGE"
    TOO_LARGE = "TOO_LARGE"
    UNREADABLE = "UNREADABLE"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INTERNAL = "INTERNAL"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAVAILABLE = "UNAVAILABLE"

    @property
    def photodna_status(self) -> int:
        """The PhotoDNA Cloud status code a client of that API expects for this error."""
        return _PHOTODNA[self]


_PHOTODNA = {
    ErrorCode.BAD_PARAMETER: 3002,
    ErrorCode.UNREADABLE: 3002,
    ErrorCode.NOT_AN_IMAGE: 3206,
    ErrorCode.CORRUPT_IMAGE: 3206,
    ErrorCode.SIZE_OUT_OF_RANGE: 3208,
    ErrorCode.TOO_LARGE: 3209,
    # PhotoDNA has no codes for bank management; its "invalid parameter" is the closest.
    ErrorCode.NOT_FOUND: 3002,
    ErrorCode.ALREADY_EXISTS: 3002,
    ErrorCode.INTERNAL: 3004,
    ErrorCode.RESOURCE_EXHAUSTED: 3004,
    ErrorCode.DEADLINE_EXCEEDED: 3004,
    ErrorCode.UNAVAILABLE: 3004,
    # PhotoDNA answers these at its API gateway with HTTP 401 / 403, not a 3xxx status.
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
}


class HashmatchError(Exception):
    """Base of every error hashmatch raises on purpose."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameter(HashmatchError):
    code = ErrorCode.BAD_PARAMETER


class NotAnImage(HashmatchError):
    code = ErrorCode.NOT_AN_IMAGE


class CorruptImage(HashmatchError):
    code = ErrorCode.CORRUPT_IMAGE


class SizeOutOfRange(HashmatchError):
    code = ErrorCode.SIZE_OUT_OF_RANGE


class TooLarge(HashmatchError):
    code = ErrorCode.TOO_LARGE


class Unreadable(HashmatchError):
    code = ErrorCode.UNREADABLE


class NotFound(HashmatchError):
    """A named thing (bank, entry) that does not exist."""

    code = ErrorCode.NOT_FOUND


class AlreadyExists(HashmatchError):
    code = ErrorCode.ALREADY_EXISTS


class InternalError(HashmatchError):
    code = ErrorCode.INTERNAL


class Unavailable(HashmatchError):
    """A store the call needs is unreachable for now (a lost database connection): retry."""

    code = ErrorCode.UNAVAILABLE


class Overloaded(HashmatchError):
    """A bounded queue, a rate limit or a quota is full: retry after `retry_after_s`."""

    code = ErrorCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unauthenticated(HashmatchError):
    """No API key, or one that is unknown, revoked or expired (never says which)."""

    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(HashmatchError):
    """A known caller without the role (or tenant state) the call needs."""

    code = ErrorCode.PERMISSION_DENIED


class ConfigError(HashmatchError):
    """Start-up configuration that cannot work (e.g. backend 'gpu' without CUDA)."""

    code = ErrorCode.BAD_PARAMETER


@dataclass(frozen=True, slots=True)
class ItemError:
    """A per-item failure as it travels in a batch result: a code and a message."""

    code: ErrorCode
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ItemError:
        if isinstance(exc, HashmatchError):
            return cls(exc.code, exc.message)
        # Unexpected: say what kind, never echo internals that could carry input bytes.
        return cls(ErrorCode.INTERNAL, f"internal error ({type(exc).__name__})")


class NotAVideo(NotAnImage):
    """No decodable video stream: not a container, audio only, an unknown codec."""


class CorruptVideo(CorruptImage):
    """A video stream that fails part-way through decoding."""
