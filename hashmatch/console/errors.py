"""Domain errors -> the console's HTTP statuses: the one place they are mapped. The page
says the error's own message; anything unexpected is a generic 500 (logged, never shown)."""

from __future__ import annotations

from hashmatch.errors import ErrorCode

HTTP_STATUS = {
    ErrorCode.BAD_PARAMETER: 400,
    ErrorCode.NOT_AN_IMAGE: 400,
    ErrorCode.CORRUPT_IMAGE: 400,
    ErrorCode.SIZE_OUT_OF_RANGE: 400,
    ErrorCode.UNREADABLE: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}
TITLES = {
    400: "That did not work",
    401: "Signed out",
    403: "Not allowed",
    404: "Not found",
    409: "Already exists",
    413: "Too large",
    429: "Slow down",
    500: "Something went wrong",
    503: "Unavailable",
    504: "Took too long",
}


def status_for(code: ErrorCode) -> int:
    return HTTP_STATUS.get(code, 400)
