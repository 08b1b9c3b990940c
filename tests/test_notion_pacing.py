"""Notion at its ceiling: one pacer per process that slows down on a 429 by itself, shared by every request the
process makes (the web app opens a store per request), and a burst of website enrollments that queues."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SECRET, Cli
from notion_emulator import NotionEmulator
from test_notion_e2e import TOKEN, use_notion

from xmas_cli.stores.notion_api import Pacer
from xmas_cli.web.server import start


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_keeps_the_average_halves_on_a_429_and_climbs_back() -> None:
    clock = FakeTime()
    pacer = Pacer(3.0, 6.0, clock.monotonic, clock.sleep)
    for _ in range(36):
        pacer.wait()
        pacer.answered()
    assert clock.now == pytest.approx(10.0)  # a burst of 6, then 30 more at 3 a second
    pacer.drain()
    assert pacer.rate == pytest.approx(1.5) and pacer.tokens <= 0
    pacer.drain()
    pacer.drain()
    pacer.drain()
    pacer.drain()
    assert pacer.rate == pytest.approx(0.3)  # never below a tenth of the configured rate
    started = clock.now
    pacer.wait()
    assert clock.now - started == pytest.approx(1 / 0.3)
    for _ in range(20):
        pacer.answered()
    assert pacer.rate == pytest.approx(3.0)  # back at the configured rate, never above it


RATE = 10.0  # the emulator's and the campaign's rate, raised to keep the test short; the burst is twice the rate


@pytest.fixture
def notion_web(project: Path, xmas: Cli, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[NotionEmulator, int]]:
    with NotionEmulator(token=TOKEN) as emu:
        monkeypatch.setenv("NOTION_TOKEN", TOKEN)
        monkeypatch.setenv("NOTION_BASE_URL", emu.base_url)
        use_notion(project)
        path = project / "campaign.toml"
        assert "requests_per_second = 10 " in path.read_text()  # use_notion sets the rate RATE is
        xmas("notion", "setup", "--parent", emu.add_page(title="Xmas"))
        xmas("templates", "push")
        emu.set_rate_limit(RATE, burst=int(2 * RATE))
        emu.reset_requests()
        env = {
            "XMAS_SECRET": SECRET,
            "XMAS_NOW": "2026-12-01T10:00:00Z",
            "XMAS_API_TOKEN": "token-0123456789",
            "NOTION_TOKEN": TOKEN,
            "NOTION_BASE_URL": emu.base_url,
        }
        running = start(config=str(path), env=env)
        try:
            yield emu, running.port
        finally:
            running.stop()


def _enroll(port: int, n: int) -> int:
    payload = {"email": f"lead{n}@example.com", "first_name": f"Lead{n}", "business_name": "Shop"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Authorization": "Bearer token-0123456789", "Content-Type": "application/json"}
        conn.request("POST", "/enroll/lead-nurture", json.dumps(payload).encode(), headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_burst_of_website_enrollments_queues_and_keeps_under_the_limit(
    notion_web: tuple[NotionEmulator, int],
) -> None:
    emu, port = notion_web
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def client(first: int) -> None:
        barrier.wait()
        for n in (first, first + 6):
            statuses.append(_enroll(port, n))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert sorted(statuses) == [200] * 12, statuses  # none answered 503 Busy
    refused = [r for r in emu.requests if r["status"] == 429]
    assert not refused, f"{len(refused)} requests refused with 429 out of {len(emu.requests)}"
    assert len(emu.requests) >= 12 * 3  # the enrollments did reach Notion: a lookup and writes each
