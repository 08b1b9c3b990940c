"""The HTTP server behind `xmas serve`: the WSGI app of xmas_cli.web on a threading server, its log redacted."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import WSGIApplication

from ..backends import config_path
from ..config import load_campaign
from ..errors import InvalidInput, error_json
from . import JSON_TYPE, json_bytes, make_app, redact


class _Handler(WSGIRequestHandler):
    timeout = 30  # seconds a client may stall while sending its request

    def log_message(self, format: str, *args: Any) -> None:
        super().log_message("%s", redact(format % args))

    def parse_request(self) -> bool:
        """The request line and headers; then refuse, before any of the body is read, a body framed two ways:
        two Content-Length headers (even equal ones), or Content-Length with Transfer-Encoding (RFC 9112 6.3).
        A proxy in front may have framed it the other way: answering it would invite request smuggling."""
        if not super().parse_request():
            return False
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1:
            self._refuse(
                InvalidInput(
                    f"the request has {len(lengths)} Content-Length headers", "send exactly one Content-Length header"
                )
            )
            return False
        if lengths and self.headers.get_all("Transfer-Encoding"):
            self._refuse(
                InvalidInput(
                    "the request has both Transfer-Encoding and Content-Length",
                    "send the body with a Content-Length header only",
                )
            )
            return False
        return True

    def _refuse(self, error: InvalidInput) -> None:
        """A 400 with the app's JSON error document, and the connection closed (the server drains the body)."""
        body = json_bytes(error_json(error))
        self.close_connection = True
        self.send_response(400)
        for name, value in (
            ("Content-Type", JSON_TYPE),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Connection", "close"),
        ):
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64  # a burst of form posts waits in the backlog instead of in SYN retries
    drain_bytes = 1024 * 1024
    drain_seconds = 2.0

    def shutdown_request(self, request: Any) -> None:
        """Close gently: read what a refused client already sent, so the close does not reset the connection
        (and destroy the answer) while unread bytes wait in the socket."""
        try:
            request.shutdown(socket.SHUT_WR)
            deadline, left = time.monotonic() + self.drain_seconds, self.drain_bytes
            while left > 0 and (wait := deadline - time.monotonic()) > 0:
                request.settimeout(wait)
                data = request.recv(min(left, 65536))
                if not data:
                    break
                left -= len(data)
        except OSError:
            pass
        self.close_request(request)


class _Server6(_Server):
    address_family = socket.AF_INET6


def _make_server(host: str, port: int, app: WSGIApplication) -> _Server:
    server_class = _Server6 if ":" in host else _Server
    server = make_server(host, port, app, server_class=server_class, handler_class=_Handler)
    assert isinstance(server, _Server)
    return server


@dataclass
class RunningServer:
    """A server answering in a background thread (tests, embedding)."""

    server: _Server
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = str(self.server.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start(
    host: str = "127.0.0.1", port: int = 0, config: str | None = None, env: Mapping[str, str] | None = None
) -> RunningServer:
    """Serve in a daemon thread; port 0 picks a free port (see .port, .url)."""
    server = _make_server(host, port, make_app(config, env))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="xmas-web", daemon=True)
    thread.start()
    return RunningServer(server, thread)


def serve(host: str, port: int, config: str | None) -> None:
    """`xmas serve`: a threaded server until Ctrl-C. Checks campaign.toml first, so a bad file fails at once."""
    load_campaign(config_path(config, os.environ))
    server = _make_server(host, port, make_app(config))
    shown = f"[{host}]" if ":" in host else host
    print(f"xmas: serving on http://{shown}:{server.server_port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
