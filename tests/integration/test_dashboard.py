"""The dashboard in a real headless Chromium: `precache web` (gunicorn), asks over HTTP, plots drawn.

Needs Debian's chromium at /usr/bin/chromium (`bash scripts/services.sh` installs it); without it the
test fails, it is never skipped. A screenshot is kept under test-artifacts/ at the repository root.
"""

import contextlib
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from playwright.sync_api import sync_playwright

from tests.conftest import BROKER_URL, REDIS_URL, migrated_database
from tests.integration.conftest import free_port, start, stack_env, stop, wait_for

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FAQ = {"How do I reset my password?": "Use the link on the sign-in page.",
       "Where can I download my invoices?": "Under Billing, then Invoices."}
MISSES = ["How do I export my data to CSV?", "Can I pay by bank transfer?", "Is there a mobile app?"]

# Per chart: does some bar have a drawn length (pixels), and which non-zero values does it plot?
CHARTS_JS = """() => Object.fromEntries(Object.entries(window.precacheCharts).map(([name, chart]) => {
  const drawn = chart.data.datasets.some((_, i) => chart.getDatasetMeta(i).data.some(
    el => Math.abs(el.horizontal ? el.x - el.base : el.base - el.y) >= 1));
  const values = chart.data.datasets.flatMap(ds => ds.data).filter(v => v);
  return [name, {drawn, values, width: chart.width, height: chart.height}];
}))"""


def require_chromium(path: Path = CHROMIUM) -> Path:
    """Return the browser, or fail (never skip) saying how to install it."""
    if not path.exists():
        pytest.fail(f"{path} is missing: run `bash scripts/services.sh` (it installs Debian's chromium)")
    return path


@contextlib.contextmanager
def private_redis(tmp_path: Path):
    """Yield (cache URL, broker URL) on a redis-server of this test's own, so that no Celery worker of
    another test run drains the queues it counts; the shared test databases, flushed, without one."""
    if shutil.which("redis-server") is None:
        for url in (REDIS_URL, BROKER_URL):
            with contextlib.closing(redis_lib.Redis.from_url(url)) as client:
                client.flushdb()
        yield REDIS_URL, BROKER_URL
        return
    port, log = free_port(), tmp_path / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)], stdout=out, stderr=subprocess.STDOUT)
    try:
        client = redis_lib.Redis(port=port)
        wait_for(client.ping, proc, log, timeout=20)
        client.close()
        yield f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1"
    finally:
        stop(proc)


@pytest.fixture(params=["sqlite", "postgresql"])
def web(request, tmp_path):
    """`precache web` on a free port with its own database and Redis (no worker: misses stay queued)."""
    with private_redis(tmp_path) as (cache_url, broker_url), \
            contextlib.contextmanager(migrated_database)(request.param, tmp_path) as url:
        env = stack_env(url, tmp_path / "var", web_workers=1, redis_url=cache_url, broker_url=broker_url)
        faq = tmp_path / "faq.csv"
        faq.write_text("question,answer\n" + "".join(f'"{q}","{a}"\n' for q, a in FAQ.items()))
        subprocess.run([sys.executable, "-m", "cli", "faq", "import", str(faq)], env=env, check=True,
                       capture_output=True, timeout=120)
        port, log = free_port(), tmp_path / "web.log"
        proc = start(["web", "--port", str(port)], env, log)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: requests.get(f"{base}/readyz", timeout=2).ok, proc, log)
            yield base, request.param
        finally:
            stop(proc)


def make_asks(base: str) -> None:
    questions = ["hello", "thanks", "help", *FAQ, *FAQ, *MISSES, MISSES[0]]
    for question in questions:
        r = requests.post(f"{base}/v1/ask", json={"question": question}, timeout=30)
        assert r.status_code in (200, 202), r.text


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_dashboard_renders_every_plot_with_data(web):
    chromium = require_chromium()
    base, kind = web
    make_asks(base)
    stats = requests.get(f"{base}/v1/stats", timeout=30).json()
    assert stats["asks"] == 11 and stats["queues"]["quick"] == 3 and stats["quality"]["0.8-1.0"] == 2
    problems, requested = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
            page.on("request", lambda req: requested.append(req.url))
            page.goto(f"{base}/dashboard")
            page.wait_for_selector('body[data-ready="1"]', state="attached", timeout=30_000)
            charts = page.evaluate(CHARTS_JS)
            missed = page.locator("#top-missed tbody tr").all_inner_texts()
            asks_kpi = page.locator("#kpi-asks").inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / ("dashboard.png" if kind == "sqlite" else f"dashboard-{kind}.png")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert problems == []
    assert all(url.startswith(base) for url in requested if url.startswith("http")), requested  # offline
    assert set(charts) == {"timeline", "latency", "quality", "queues"}
    for name, chart in charts.items():
        assert chart["values"] and chart["drawn"] and chart["width"] > 200 and chart["height"] > 100, (name, chart)
    assert sum(charts["timeline"]["values"]) == 11 and 3 in charts["queues"]["values"]
    assert asks_kpi == "11"
    assert len(missed) == 3 and missed[0].startswith(MISSES[0]) and missed[0].endswith("2")
    width, height = png_size(shot)
    assert width >= 1280 and height >= 900 and shot.stat().st_size > 30_000, (width, height, shot.stat().st_size)
