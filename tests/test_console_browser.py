"""The console end to end in a real browser: Debian's Chromium driven by Playwright
against a real server on loopback. The operator signs in, approves an application,
creates a key, creates a bank, imports a file and watches the progress reach its end,
debugs a match, releases a quarantined entry and signs out; a tenant's key cannot reach
operator pages. The screenshots in docs/console/ are made here.

Skips where Chromium or Playwright is absent, unless HASHMATCH_REQUIRE_CHROMIUM is set
(CI), where it fails instead.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hashmatch.core.sandbox import export
from tests.console_setup import Console, console_server

CHROMIUM = Path(os.environ.get("HASHMATCH_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "console"
HASH_CELL = re.compile(r'<code class="hash">([0-9a-f]{64})</code>')
ROWS = 20_000  # enough for the progress bar to be seen moving on a slow machine
# Without the networking flags Chromium stalls on a closed network (design notes);
# Playwright adds --headless and a fresh profile of its own.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _playwright() -> Any:
    required = os.environ.get("HASHMATCH_REQUIRE_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("playwright is missing (HASHMATCH_REQUIRE_CHROMIUM is set)")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"{CHROMIUM} is missing (HASHMATCH_REQUIRE_CHROMIUM is set)")
        pytest.skip("Chromium is not installed (Debian: apt install chromium)")
    return sync_playwright


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    _playwright()
    with console_server(tmp_path_factory.mktemp("browser")) as c:
        yield c


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Any]:
    with _playwright()() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield b
        b.close()


def hash_list(path: Path) -> list[str]:
    """A CSV of ROWS random PDQ hashes; returns them."""
    codes = np.random.default_rng(22).integers(0, 256, (ROWS, 32), dtype=np.uint8)
    hexes = [c.tobytes().hex() for c in codes]
    path.write_text("".join(f"{h},label-{i % 4},ext-{i}\n" for i, h in enumerate(hexes)))
    return hexes


def near(hex_value: str, bits: int) -> str:
    """The hash with its lowest `bits` bits flipped (within the match threshold)."""
    return f"{int(hex_value, 16) ^ ((1 << bits) - 1):064x}"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/console/signin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/")


def test_the_operators_day(console: Console, browser: Any, tmp_path: Path) -> None:
    base = console.base
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # Sign in.
    page.goto(f"{base}/console/")
    page.wait_for_url("**/console/signin")
    shot(page, "signin")
    sign_in(page, base, console.operator)
    assert "Signed in as operator" in page.locator("h1").inner_text()

    # Approve an application, with a reason.
    page.get_by_role("link", name="Applications").first.click()
    card = page.locator("section", has_text="applicant")
    card.get_by_label("Reason").fill("vetted: references checked")
    shot(page, "applications")
    card.get_by_role("button", name="Approve").click()
    page.get_by_text("tenant applicant is now approved").wait_for()

    # Create a key for it: shown once.
    page.goto(f"{base}/console/tenants/applicant")
    page.get_by_label("Name").fill("integration")
    page.get_by_label("bank-admin").check()
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret for tenant applicant").input_value()
    assert re.fullmatch(r"hmk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)
    assert page.get_by_text("shown once").is_visible()

    # Create a bank.
    page.get_by_role("link", name="Banks").first.click()
    page.get_by_label("Name").fill("e2e-bank")
    page.get_by_role("button", name="Create bank").click()
    page.get_by_text("bank e2e-bank created").wait_for()

    # Import a file and watch the progress reach its end.
    hexes = hash_list(tmp_path / "list.csv")
    page.get_by_label("Hash list").set_input_files(str(tmp_path / "list.csv"))
    page.get_by_label("Format").first.select_option("csv")
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_url("**/imports/*")
    bar = page.locator("#import-progress")
    page.wait_for_function(
        "() => document.getElementById('import-state').textContent === 'done'", timeout=120_000
    )
    total = int(bar.get_attribute("max") or 0)
    assert total == (tmp_path / "list.csv").stat().st_size
    assert page.evaluate("() => document.getElementById('import-progress').value") == total
    assert page.locator("dd[data-field=added]").inner_text() == str(ROWS)
    shot(page, "import")
    page.get_by_role("link", name="Back to e2e-bank").click()
    assert f"{ROWS:,}" in page.locator("table.counts").inner_text()
    first = set(HASH_CELL.findall(page.content()))  # the first page of entries, by id
    page.get_by_role("link", name="Next page").click()
    second = set(HASH_CELL.findall(page.content()))
    assert len(first) == len(second) == 50 and not first & second
    assert first | second <= set(hexes)

    # Debug a match: a sandbox image that hits the public "Test" bank.
    export(tmp_path / "sandbox")
    page.get_by_role("link", name="Match debugger").click()
    page.get_by_label("Image").set_input_files(str(tmp_path / "sandbox" / "test-hit-00.png"))
    page.get_by_role("button", name="Hash and match").click()
    result = page.locator("#result")
    assert "Match" in result.locator("h2").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", page.locator("#pdq").inner_text())
    assert page.locator("#quality").inner_text()
    assert result.get_by_text("Dihedral PDQ hashes").is_visible()
    assert result.locator("td", has_text="Test").count() >= 1
    shot(page, "debugger")

    # Pasted hashes: three distinct near copies of one entry flood it into quarantine.
    page.get_by_label("Hashes, one a line").fill("\n".join(near(hexes[0], b) for b in (1, 2, 3)))
    page.get_by_role("button", name="Match hashes").click()
    assert page.locator("#result td", has_text="e2e-bank").count() >= 1

    # Release the quarantined entry.
    page.get_by_role("link", name="Quarantine").click()
    row = page.locator("tr", has_text="e2e-bank")
    row.wait_for()
    shot(page, "quarantine")
    row.get_by_role("button", name=re.compile("Release entry")).click()
    page.get_by_text(re.compile(r"entry \d+ released")).wait_for()

    # The other operator pages render.
    for link, heading in (("Tenants", "Tenants"), ("Exchanges", "Exchanges"),
                          ("Usage", "Usage"), ("Audit", "Audit trail")):  # fmt: skip
        page.get_by_role("link", name=link, exact=True).first.click()
        assert page.locator("h1").inner_text() == heading
    page.get_by_role("link", name="Usage", exact=True).first.click()
    shot(page, "usage")
    page.get_by_role("link", name="Audit", exact=True).first.click()
    page.get_by_role("button", name="Verify the audit trail").click()
    assert page.locator("#verify-h").inner_text() == "Intact"

    # Keyboard: the skip link is the first stop, and it leads to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"

    # Sign out: the session is gone.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/signin**")
    page.goto(f"{base}/console/applications")
    page.wait_for_url("**/console/signin")
    assert not errors, errors  # no CSP violations, no script errors
    page.close()


def test_a_tenant_key_cannot_reach_operator_pages(console: Console, browser: Any) -> None:
    page = browser.new_page()
    sign_in(page, console.base, console.tenant_admin)
    nav = page.get_by_role("navigation", name="Main").inner_text()
    assert "Applications" not in nav and "Quarantine" not in nav and "Banks" in nav
    for path in ("applications", "tenants", "exchanges", "quarantine", "audit", "usage/ncmec"):
        response = page.goto(f"{console.base}/console/{path}")
        assert response is not None and response.status == 403, path
        assert page.locator("h1").inner_text() == "Not allowed"
    response = page.goto(f"{console.base}/console/tenants/globex")
    assert response is not None and response.status == 404
    page.close()


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.type !== 'hidden')
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map((el) => el.outerHTML)"""


UNGUARDED = """() => [...document.querySelectorAll('form')]
  .filter((f) => f.method.toLowerCase() === 'post' && !f.querySelector('input[name=csrf]'))
  .map((f) => f.action)"""


def test_every_page_labels_its_controls(console: Console, browser: Any) -> None:
    page = browser.new_page()
    sign_in(page, console.base, console.operator)
    for path in ("", "applications", "tenants", "tenants/acme", "banks", "banks/Test",
                 "exchanges", "quarantine", "usage", "audit", "debug"):  # fmt: skip
        page.goto(f"{console.base}/console/{path}")
        assert page.evaluate(UNLABELLED) == [], path
        assert page.evaluate(UNGUARDED) == [], path  # every form that changes things
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("h1").count() == 1, path
    page.close()


def test_cross_site_forms_and_planted_sessions_fail(console: Console, browser: Any) -> None:
    context = browser.new_context()
    # A session id planted before sign-in is replaced, and no script can read the cookie.
    context.add_cookies([{"name": "hm_session", "value": "planted", "domain": "127.0.0.1",
                          "path": "/console"}])  # fmt: skip
    page = context.new_page()
    sign_in(page, console.base, console.operator)
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["hm_session"]["value"] != "planted" and cookies["hm_session"]["httpOnly"]
    assert cookies["hm_session"]["sameSite"] == "Strict"
    assert "hm_session" not in page.evaluate("() => document.cookie")
    # Forms posted from another origin on this host (same site: the cookie goes, the
    # token and the Origin do not match), and from another site (the cookie stays home).
    with _evil_site(console.base) as evil:
        for origin in (f"http://127.0.0.1:{evil}", f"http://localhost:{evil}"):
            page.goto(f"{origin}/evil.html")
            with page.expect_navigation():
                page.get_by_role("button", name="Win a prize").click()
            assert page.locator("h1").inner_text() == "Not allowed", origin
    page.goto(f"{console.base}/console/banks")
    assert "evil-bank" not in page.content()
    context.close()


@contextlib.contextmanager
def _evil_site(base: str) -> Iterator[int]:
    """A page elsewhere with a form aimed at the console (a guessed token)."""
    html = (f'<!doctype html><form method="post" action="{base}/console/banks">'
            '<input type="hidden" name="csrf" value="guessed">'
            '<input type="hidden" name="name" value="evil-bank">'
            "<button>Win a prize</button></form>").encode()  # fmt: skip

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
