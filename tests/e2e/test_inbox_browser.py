"""The inbox page in a real headless browser (Debian's chromium driven by Playwright): an event
published through the real filter is readable, with what policy withheld shown as such."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RunningFilter, sgb_env
from factories import domestic_abuse_incident

from broker.settings import Settings
from connectors.runtime.publisher import EventPublisher

pytestmark = pytest.mark.kafka

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
RUNNER = "import sys\nfrom sgb.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_practitioner_reads_the_event_and_sees_what_was_withheld(
    kafka: Settings, running_filter: RunningFilter, tmp_path: Path
) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("Chromium is not installed: run tools/install-test-deps.sh (Debian package chromium).")
    from playwright.sync_api import expect, sync_playwright

    event = domestic_abuse_incident()
    publisher = EventPublisher(kafka, "POLICE")
    publisher.publish(event)
    publisher.flush()

    port = _free_port()
    log = tmp_path / "serve.log"
    serve = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUNNER,
            "hub",
            "serve",
            "school_dsl",
            "100000",
            "--port",
            str(port),
            "--db",
            f"sqlite:{tmp_path / 'inbox.db'}",
        ],
        env=sgb_env(kafka),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            deadline = time.monotonic() + 90
            while True:  # the page has no script: reload until the event and its decision are in
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                    if (
                        page.get_by_text("Testy Childe").count()
                        and "is not recorded here yet" not in page.content()
                    ):
                        break
                except Exception:  # the server is still starting
                    pass
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                assert serve.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
            card = page.locator(f"#event-{event['event_id']}")
            expect(card.get_by_text("Testy Childe · born 1 June 2015")).to_be_visible()
            expect(card.get_by_role("heading", name="Domestic abuse incident")).to_be_visible()
            expect(card.get_by_text("Police: Metropolitan Police Service", exact=True)).to_be_visible()
            expect(card.get_by_text("withheld by policy").first).to_be_visible()
            expect(card.locator("li", has_text="Narrative")).to_contain_text("withheld by policy")
            assert "SECRET-NARRATIVE-1" not in page.content() and "Refuge Synthetic" not in page.content()
            card.get_by_text("Why you received this").click()
            expect(
                card.get_by_text("F1-school")
            ).to_be_visible()  # carried by the delivery: no audit topic read
            expect(card.locator("dd", has_text="Public task: safeguarding")).to_be_visible()
            expect(card.get_by_text("Shared with you")).to_be_visible()
            page.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)

            card.get_by_role("link", name="Domestic abuse incident").click()
            expect(page.get_by_text("About the child")).to_be_visible()
            expect(page.locator("dd", has_text="withheld by policy").first).to_be_visible()
            page.screenshot(path=str(tmp_path / "event.png"), full_page=True)
            browser.close()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    assert serve.returncode == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
    assert (tmp_path / "inbox.png").stat().st_size > 10_000
