"""Waiting askers cost no thread: `precache web` (gunicorn as shipped, its default settings) answers a cached
question while a hundred streams wait for new answers, and caps how many streams one client holds open.

No worker runs, so every stream of a new question waits for as long as the test keeps it open.
"""

import contextlib
import json
import re
import select
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
import requests

from tests.conftest import migrated_database
from tests.integration.conftest import free_port, stack_env, start, stop, wait_for

pytestmark = pytest.mark.integration

FAQ = "How do I reset my password?"
ANSWER = "Open Settings, choose Security, then Reset password."
ATTACKER, ASKER = "127.0.0.2", "127.0.0.3"  # loopback addresses: two clients apart from the cached ask's


@pytest.fixture
def web(tmp_path, redis_client):  # redis_client: the test Redis databases, flushed
    with contextlib.contextmanager(migrated_database)("sqlite", tmp_path) as url:
        yield from _serve(url, tmp_path)


def _serve(url: str, tmp_path):
    env = stack_env(url, tmp_path / "var", stream_max_s=600, stream_heartbeat_s=1)
    faq = tmp_path / "faq.jsonl"
    faq.write_text(json.dumps({"question": FAQ, "answer": ANSWER}))
    port = free_port()
    proc = start(["web", "--port", str(port)], env, tmp_path / "web.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{base}/readyz", timeout=2).ok, proc, tmp_path / "web.log")
        subprocess.run([sys.executable, "-m", "cli", "faq", "import", str(faq)], env=env, check=True,
                       capture_output=True, timeout=300)
        yield port
    finally:
        stop(proc)


def open_stream(port: int, source: str, question: str) -> tuple[socket.socket, int, str]:
    """Open GET /v1/ask/stream from `source`; return the socket, the status and what came with the headers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120, source_address=(source, 0))
    sock.sendall(f"GET /v1/ask/stream?question={quote(question)} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    received = b""
    while not _complete(received):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed early: {received!r}"
        received += chunk
    return sock, int(received.split(b" ", 2)[1]), received.decode("utf-8", "replace")


def _complete(received: bytes) -> bool:
    """The headers and the first event of a stream, or the whole body of an error, are in."""
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    if b" 200 " in head[:15]:
        return b"event: " in body
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    return length is None or len(body) >= int(length.group(1))


def still_waiting(sock: socket.socket) -> bool:
    """True when the stream sent nothing but keep-alive comments since its first event (no `done`, not closed)."""
    received = b""
    while select.select([sock], [], [], 0)[0]:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        received += chunk
    return b"event:" not in received  # keep-alive comments (in HTTP chunks) are all it may have sent


def test_a_cached_ask_is_answered_while_a_hundred_streams_wait_and_one_client_holds_at_most_fifty(web):
    port = web
    attacker = [open_stream(port, ATTACKER, f"Attacker question number {n} about invoices?") for n in range(60)]
    assert [status for _, status, _ in attacker] == [200] * 50 + [429] * 10
    assert all("event: pending" in head for _, _, head in attacker[:50])
    assert '"too_many_streams"' in attacker[-1][2]
    asker = [open_stream(port, ASKER, f"Asker question number {n} about refunds?") for n in range(50)]
    assert [status for _, status, _ in asker] == [200] * 50  # another client's streams are its own
    waiting = [sock for sock, status, _ in attacker + asker if status == 200]

    cached = requests.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": FAQ}, timeout=120)

    assert cached.status_code == 200 and cached.json()["answer"] == ANSWER
    assert len(waiting) == 100 and all(still_waiting(sock) for sock in waiting)  # answered beside them
    for sock, _, _ in attacker + asker:
        sock.close()
    # An asker who went away is noticed at the next keep-alive comment, and its place is given back.
    deadline, status = time.monotonic() + 120, None
    while status != 200 and time.monotonic() < deadline:
        sock, status, head = open_stream(port, ATTACKER, "Attacker question after closing?")
        sock.close()
        if status != 200:
            time.sleep(0.5)
    assert status == 200, head
