"""Calls to an exchange over HTTP: retries with exponential backoff on 429, 5xx and network
errors (honouring Retry-After), a minimum interval between calls (the exchange's rate
limit), and one typed error (UpstreamError) for everything that still fails."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import tenacity

from hashmatch.exchanges.model import UpstreamError

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_REPEATS = 10  # a window re-read after a stale link asks for a page twice
# httpx logs every request's full URL at INFO, and ThreatExchange's carries its token.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)


@dataclass(frozen=True)
class HttpSettings:
    timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_s: float = 0.5  # first wait; doubles up to backoff_max_s
    backoff_max_s: float = 60.0
    min_interval_s: float = 0.0  # at least this long between two calls' starts
    max_run_s: float = 0.0  # a client's whole life (one sync); 0: unbounded
    # A page is about 1,000 records (under 1 MB): anything far larger is not the API (and
    # a parsed body costs 20-30 times its size).
    max_response_bytes: int = 8 * 1024 * 1024


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class _Retryable(Exception):
    def __init__(self, error: UpstreamError, wait_s: float | None) -> None:
        super().__init__(str(error))
        self.error, self.wait_s = error, wait_s


class Http:
    """One httpx client per exchange; thread-safe as httpx.Client is."""

    def __init__(
        self,
        settings: HttpSettings,
        throttled: Callable[[httpx.Response], bool] | None = None,
        **client_args: Any,
    ) -> None:
        """`throttled`: answers other than 429 that mean "slow down" on this API (Graph's
        rate-limit errors come as 400s), retried as a 429 is."""
        self.settings = settings
        self.throttled = throttled
        self.client = httpx.Client(timeout=settings.timeout_s, **client_args)
        self._pace = threading.Lock()
        self._last_start = 0.0
        # A run's end (time.monotonic()): no request starts or goes on after it, however
        # the upstream pages (a cursor that never ends) or drips (a byte a second).
        self.deadline = time.monotonic() + settings.max_run_s if settings.max_run_s else None
        self._fetched: Counter[str] = Counter()  # GET URLs: paging that goes round in circles

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The response of the first attempt that is neither 429, 5xx nor a network error;
        a 4xx (other than 429) raises UpstreamError(retry=False) at once."""
        self._check_circle(method, url, kwargs.get("params"))
        s = self.settings
        exponential = tenacity.wait_exponential(multiplier=s.backoff_s, max=s.backoff_max_s)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            asked = exc.wait_s if isinstance(exc, _Retryable) else None
            return min(s.backoff_max_s, asked) if asked is not None else exponential(state)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(s.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            reraise=True,
        )
        try:
            return retrying(self._attempt, method, url, **kwargs)
        except _Retryable as exc:
            raise exc.error from None

    def _attempt(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self._check_deadline(method, url)
        self._wait_turn()
        try:
            response = self._bounded(self.client.build_request(method, url, **kwargs))
        except httpx.HTTPError as exc:  # network, protocol, or a body that does not decode
            error = UpstreamError(f"{method} {_path(url)}: {type(exc).__name__}", retry=True)
            raise _Retryable(error, None) from None
        if response.status_code in RETRY_STATUS or (
            self.throttled is not None and response.status_code >= 400 and self.throttled(response)
        ):
            error = UpstreamError(
                f"{method} {_path(url)}: HTTP {response.status_code}",
                retry=True,
                status=response.status_code,
            )
            raise _Retryable(error, _retry_after(response))
        if response.status_code >= 400:
            raise UpstreamError(
                f"{method} {_path(url)}: HTTP {response.status_code}",
                retry=False,
                status=response.status_code,
            )
        return response

    def _bounded(self, request: httpx.Request) -> httpx.Response:
        """The response, read whole only if it stays under max_response_bytes (a broken or
        hostile upstream cannot fill the server's memory)."""
        limit = self.settings.max_response_bytes
        # timeout_s bounds each read; this bounds the whole body (a byte every few seconds).
        ends = time.monotonic() + 4 * self.settings.timeout_s
        response = self.client.send(request, stream=True)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise UpstreamError(
                        f"{request.method} {_path(str(request.url))}: response over {limit} bytes",
                        retry=False,
                    )
                if time.monotonic() > ends:
                    raise httpx.ReadTimeout("the response is too slow", request=request)
                self._check_deadline(request.method, str(request.url))
        finally:
            response.close()
        # The body is decoded already: its encoding and length headers no longer apply.
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=kept, content=bytes(body), request=request
        )

    def _check_deadline(self, method: str, url: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise UpstreamError(
                f"{method} {_path(url)}: the sync ran past its time limit ([exchanges] max_run_s)",
                retry=False,
            )

    def _check_circle(self, method: str, url: str, params: object) -> None:
        """The same page asked for more than MAX_REPEATS times in one sync (retries not
        counted): the upstream's cursors go round in circles."""
        if method != "GET":
            return
        key = f"{url} {params!r}"
        self._fetched[key] += 1
        if self._fetched[key] > MAX_REPEATS:
            raise UpstreamError(f"GET {_path(url)}: upstream paging repeats itself", retry=False)

    def _wait_turn(self) -> None:
        with self._pace:
            gap = self.settings.min_interval_s - (time.monotonic() - self._last_start)
            if gap > 0:
                time.sleep(gap)
            self._last_start = time.monotonic()


def _path(url: str) -> str:
    """A URL without its query (which may carry an access token) for error messages."""
    return url.split("?", 1)[0]
