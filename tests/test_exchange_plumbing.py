"""What every exchange client stands on: credentials from the environment or a private
secrets file (never printed), HTTP retries that honour Retry-After and give up typed, and
the pacing that keeps to an exchange's rate limit."""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashmatch.errors import ConfigError
from hashmatch.exchanges.credentials import read_secrets_file, resolve
from hashmatch.exchanges.http import MAX_REPEATS, Http, HttpSettings
from hashmatch.exchanges.model import (
    Credentials,
    Exchange,
    ExchangeSettings,
    ExchangeType,
    UpstreamError,
    plausible_time,
)
from tests.fake_http import Answer, FakeServer, Request


class Echo(FakeServer):
    def route(self, request: Request) -> Answer:
        if request.path == "/missing":
            return Answer(404, b"{}")
        if request.path == "/huge":
            return Answer(200, b"x" * 100_000)
        if request.path == "/gzip":
            body = gzip.compress(json.dumps({"zipped": True}).encode())
            return Answer(200, body, headers={"Content-Encoding": "gzip"})
        return Answer(200, json.dumps({"n": len(self.requests)}).encode())


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as server:
        yield server


def exchange(*names: str) -> Exchange:
    return Exchange("x", ExchangeType.NCMEC, "b", ExchangeSettings(credentials_env=names))


def test_credentials_from_the_environment_then_the_secrets_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('NCMEC_USER = "file-user"\nNCMEC_PASSWORD = "file-pass"\n')
    secrets.chmod(0o600)
    found = read_secrets_file(str(secrets))
    got = resolve(exchange("NCMEC_USER", "NCMEC_PASSWORD"), found, {"NCMEC_USER": "env-user"})
    assert got.values == ("env-user", "file-pass")
    assert "pass" not in repr(got) and "user" not in repr(got)
    with pytest.raises(ConfigError, match="set NCMEC_PASSWORD") as missing:
        resolve(exchange("NCMEC_USER", "NCMEC_PASSWORD"), {}, {"NCMEC_USER": "env-user"})
    assert "env-user" not in missing.value.message
    secrets.chmod(0o644)  # others could read it: refused, not used
    with pytest.raises(ConfigError, match="owner's alone"):
        read_secrets_file(str(secrets))
    secrets.chmod(0o600)
    secrets.write_text('NCMEC_PASSWORD = "oops\n')  # broken TOML: its text is not echoed
    with pytest.raises(ConfigError) as broken:
        read_secrets_file(str(secrets))
    assert "oops" not in broken.value.message
    assert read_secrets_file("") == {}


def test_retries_honour_retry_after_then_succeed(echo: Echo) -> None:
    echo.fail_next["/a"] = [429, 503, 500]
    echo.retry_after_s = 0.3
    http = Http(HttpSettings(backoff_s=0.01, backoff_max_s=1.0))
    t0 = time.monotonic()
    response = http.request("GET", f"{echo.base_url}/a")
    assert response.status_code == 200 and echo.paths().count("/a") == 4
    assert time.monotonic() - t0 >= 0.3  # the 429's Retry-After, not the 10 ms backoff
    http.close()


def test_what_still_fails_is_one_typed_error_without_the_query(echo: Echo) -> None:
    http = Http(HttpSettings(max_attempts=3, backoff_s=0.01, backoff_max_s=0.02))
    echo.fail_next["/down"] = [503] * 5
    with pytest.raises(UpstreamError) as down:
        http.request("GET", f"{echo.base_url}/down?access_token=s3cret")
    assert down.value.retry and down.value.status == 503 and echo.paths().count("/down") == 3
    assert "s3cret" not in str(down.value)
    with pytest.raises(UpstreamError) as missing:
        http.request("GET", f"{echo.base_url}/missing")
    assert not missing.value.retry and missing.value.status == 404
    assert echo.paths().count("/missing") == 1  # a 4xx is not retried
    http.close()
    url = f"{echo.base_url}/a"
    echo.close()
    fresh = Http(HttpSettings(max_attempts=2, backoff_s=0.01, backoff_max_s=0.02))
    with pytest.raises(UpstreamError) as gone:  # nobody listening: a network error
        fresh.request("GET", url)
    assert gone.value.retry and gone.value.status is None
    fresh.close()


def test_responses_are_bounded_and_decoded(echo: Echo) -> None:
    http = Http(HttpSettings(max_response_bytes=50_000))
    with pytest.raises(UpstreamError, match="over 50000 bytes") as huge:
        http.request("GET", f"{echo.base_url}/huge")
    assert not huge.value.retry
    assert http.request("GET", f"{echo.base_url}/gzip").json() == {"zipped": True}
    http.close()


def test_pacing_keeps_calls_apart(echo: Echo) -> None:
    http = Http(HttpSettings(min_interval_s=0.1))
    t0 = time.monotonic()
    for _ in range(4):
        http.request("GET", f"{echo.base_url}/a")
    assert time.monotonic() - t0 >= 0.3
    http.close()


def test_credentials_repr_hides_values() -> None:
    assert repr(Credentials(("user", "hunter2"))) == "Credentials(<2 hidden>)"


def test_request_urls_never_reach_the_log(echo: Echo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    http = Http(HttpSettings())
    http.request("GET", f"{echo.base_url}/a", params=[("access_token", "app|s3cret")])
    http.close()
    assert "s3cret" not in caplog.text


def test_a_sync_is_bounded_in_time_and_in_circles(echo: Echo) -> None:
    http = Http(HttpSettings())
    for _ in range(MAX_REPEATS):
        http.request("GET", f"{echo.base_url}/a", params=[("next", "x")])
    with pytest.raises(UpstreamError, match="repeats itself") as circles:
        http.request("GET", f"{echo.base_url}/a", params=[("next", "x")])
    assert not circles.value.retry
    http.close()
    late = Http(HttpSettings(max_run_s=0.05))
    time.sleep(0.1)
    with pytest.raises(UpstreamError, match="time limit"):
        late.request("GET", f"{echo.base_url}/a")
    late.close()


def test_implausible_upstream_times_are_refused() -> None:
    now = int(time.time())
    assert plausible_time(now) == now and plausible_time(0) == 0
    assert plausible_time(now + 3 * 86400) is None and plausible_time(-1) is None
    assert plausible_time(10**30) is None and plausible_time(None) is None
