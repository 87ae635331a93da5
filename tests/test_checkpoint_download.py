"""Checkpoints downloaded over HTTP: a slow, oversized or wrong answer from a server is refused
in one line, within a deadline."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time

import pytest

from spikenas.base.errors import SpikenasError
from spikenas.train.checkpoint import read_checkpoint


@contextlib.contextmanager
def serving(handler):
    """An HTTP server on localhost (127.0.0.1 only) answering with ``handler``; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Hostile(http.server.BaseHTTPRequestHandler):
    """``/trickle``: a byte every 50 ms (for 3 s at most); ``/big``: 5,000 bytes; ``/html``: a web
    page with status 200; ``/loop``: a redirect to itself; anything else: 404. Each answer ends
    by itself."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = {"/big": b"\0" * 5000, "/html": b"<html>not a checkpoint</html>"}.get(self.path, b"")
        self.send_response(404 if self.path not in ("/trickle", "/big", "/html") else 200)
        self.send_header("Content-Type", "text/html" if self.path == "/html" else "application/octet-stream")
        self.send_header("Content-Length", str(10**6 if self.path == "/trickle" else len(body)))
        self.end_headers()
        try:
            if self.path == "/trickle":
                for _ in range(60):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(body)
        except OSError:  # the client gave up: the test's point
            pass


@pytest.fixture()
def hostile_server():
    with serving(_Hostile) as url:
        yield url


def test_a_download_that_trickles_is_refused_at_its_total_deadline(hostile_server, monkeypatch):
    monkeypatch.setattr("spikenas.train.checkpoint.DOWNLOAD_TOTAL_S", 0.5)
    monkeypatch.setattr("spikenas.train.checkpoint.DOWNLOAD_TIMEOUT_S", 2.0)
    started = time.monotonic()
    with pytest.raises(SpikenasError) as error:
        read_checkpoint(f"{hostile_server}/trickle")
    assert time.monotonic() - started < 2.0  # each byte came within the read timeout: only the total stops it
    assert str(error.value) == f"cannot download checkpoint {hostile_server}/trickle: not complete after 0.5 s"


def test_a_download_over_the_cap_is_refused(hostile_server, monkeypatch):
    monkeypatch.setattr("spikenas.train.checkpoint.MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(SpikenasError) as error:
        read_checkpoint(f"{hostile_server}/big")
    assert str(error.value) == f"checkpoint {hostile_server}/big is larger than 1,000 bytes: refused"


@pytest.mark.parametrize("path, expected", [("/missing", "HTTP 404"), ("/html", "not a PyTorch checkpoint"),
                                            ("/loop", "HTTP 302")])  # urllib's reason for a loop has three lines
def test_a_server_answering_an_error_or_a_web_page_is_one_line(path, expected, hostile_server):
    with pytest.raises(SpikenasError) as error:
        read_checkpoint(f"{hostile_server}{path}")
    assert expected in str(error.value) and "\n" not in str(error.value)
