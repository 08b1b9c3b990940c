"""A TCP proxy on 127.0.0.1 in front of a real server, for tests of a network that fails under a client.

`silent()`: from then on nothing more is forwarded either way and every connection stays open, new ones included
(accepted, never answered): what a client sees when the network drops its packets (as far as a proxy in user
space can show it: the kernel still acknowledges what the client sends). `reset()`: every connection is reset
(RST), new ones too. `passing()`: forward again (connections made meanwhile stay as they are).
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from typing import Literal

Mode = Literal["pass", "silent", "reset"]


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.mode: Mode = "pass"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def passing(self) -> None:
        self.mode = "pass"

    def silent(self) -> None:
        self.mode = "silent"

    def reset(self) -> None:
        self.mode = "reset"
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _reset(sock)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _reset(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == "reset":
                _reset(client)
                continue
            with self._lock:
                self._sockets.append(client)
            if self.mode == "silent":
                continue  # held open, never answered
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._sockets.append(server)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        """Forward both ways while passing; forward nothing (and read nothing) while silent."""
        peers = {client: server, server: client}
        while not self._closed.is_set() and self.mode != "reset":
            if self.mode == "silent":
                self._closed.wait(0.05)
                continue
            try:
                ready, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in ready:
                    if self.mode != "pass":
                        break
                    data = sock.recv(65536)
                    if not data:
                        _reset(client)
                        _reset(server)
                        return
                    peers[sock].sendall(data)
            except (OSError, ValueError):
                return


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, not an orderly FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass
