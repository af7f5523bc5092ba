"""A TCP proxy between a client and MariaDB that can lose the reply to a COMMIT.

It forwards bytes both ways. Armed, it watches the client's packets (3-byte length, a
sequence byte, the payload; COM_QUERY is 0x03 followed by the SQL): at the first
``COMMIT`` after a statement containing ``after``, it forwards the COMMIT, waits for the
server's answer, drops it and cuts the client's connection. The server has committed;
the client sees a lost connection, as after a network cut or a failover.
"""
from __future__ import annotations

import socket
import threading
from typing import Optional


class CommitReplyLoser:
    """``start()`` listens on a free loopback port (``self.port``); ``arm(after)`` loses one COMMIT reply."""

    def __init__(self, server_port: int = 3306) -> None:
        self.server_port = server_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed: Optional[bytes] = None
        self.fired = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> "CommitReplyLoser":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def arm(self, after: str) -> None:
        """Lose the reply to the next COMMIT of a transaction that ran a statement containing ``after``."""
        with self._lock:
            self._armed = after.encode()
            self.fired.clear()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.server_port))
            threading.Thread(target=self._server_to_client, args=(server, client), daemon=True).start()
            threading.Thread(target=self._client_to_server, args=(client, server), daemon=True).start()

    @staticmethod
    def _server_to_client(server: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        buffer, seen = b"", False
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buffer += data
                while len(buffer) >= 4:
                    length = int.from_bytes(buffer[:3], "little")
                    if len(buffer) < 4 + length:
                        break
                    packet, buffer = buffer[:4 + length], buffer[4 + length:]
                    payload = packet[4:]
                    with self._lock:
                        armed = self._armed
                    if armed is not None and payload[:1] == b"\x03":
                        sql = payload[1:]
                        seen = seen or armed in sql
                        if seen and sql.strip().upper() == b"COMMIT":
                            self._lose_reply(client, server, packet)
                            return
                    server.sendall(packet)
        except OSError:
            pass

    def _lose_reply(self, client: socket.socket, server: socket.socket, commit: bytes) -> None:
        """Forward the COMMIT, swallow the server's OK, and cut the client off."""
        with self._lock:
            self._armed = None
        # stop relaying the server's bytes to this client: read the OK ourselves
        client.shutdown(socket.SHUT_RDWR)
        server.sendall(commit)
        server.settimeout(10)
        try:
            server.recv(65536)
        finally:
            server.close()
            client.close()
            self.fired.set()
