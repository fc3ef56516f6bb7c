"""The caller of the RPC being handled, as the auth interceptor resolved it.

A context variable set in the handler's own task (tasks it starts inherit it), so the
servicers, the status wrappers and the auditor read the same Principal.
"""

from __future__ import annotations

import contextvars

from hashmatch.errors import InternalError
from hashmatch.tenancy.model import Principal

CALLER: contextvars.ContextVar[Principal] = contextvars.ContextVar("hashmatch_caller")


def current_caller() -> Principal | None:
    return CALLER.get(None)


def caller() -> Principal:
    """The authenticated caller of the RPC being handled."""
    found = CALLER.get(None)
    if found is None:
        raise InternalError("no authenticated caller (auth interceptor missing)")
    return found
