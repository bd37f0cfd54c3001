"""A small TCP proxy on 127.0.0.1 that breaks the connection to a real server in the ways networks do.

Put it in front of the test S3 server (``FaultProxy(host, port).start()``, then point S3_ENDPOINT at
``proxy.endpoint``) and switch its mode while the test runs:

- ``passing()``: bytes go through unchanged;
- ``refuse()``: nothing listens on the port any more (the client's connect fails with ECONNREFUSED);
- ``reset()``: connections are accepted and reset at once (a crashed service behind a load balancer);
- ``blackhole()``: connections are accepted and read, but nothing ever comes back (a hung service, a firewall
  that drops packets after the handshake);
- ``delay(seconds)``: every answer from the server is held back that long (an overloaded service);
- ``cut_after(n, times=None)``: the first n bytes the client sends on a connection go through, then the
  connection is reset (a link that drops in the middle of an upload); with ``times``, only that many connections
  are cut and later ones pass (a glitch that a retry gets past).

Every switch also resets the connections already open (within POLL seconds), as a real outage would: a pooled
keep-alive connection of the client must meet the new fault too, not carry on as before. Threads, not asyncio: the
code under test is synchronous and runs in the test's own thread, so the proxy must run beside it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass

BUFFER = 64 * 1024
POLL = 0.05  # how often a waiting thread looks whether it should stop


@dataclass(frozen=True)
class Mode:
    name: str
    seconds: float = 0.0  # for "delay"
    limit: int = 0  # for "cut"
    times: int | None = None  # for "cut": how many connections are cut (None: all); later ones pass


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode = Mode("pass")
        self.accepted = 0  # connections accepted (in any mode but refuse)
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._generation = 0  # bumped by every switch: connections of an older generation end

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._close_listener()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- modes -------------------------------------------------------------------------------------------

    def passing(self) -> None:
        self._switch(Mode("pass"))

    def refuse(self) -> None:
        self._switch(Mode("refuse"))

    def reset(self) -> None:
        self._switch(Mode("reset"))

    def blackhole(self) -> None:
        self._switch(Mode("blackhole"))

    def delay(self, seconds: float) -> None:
        self._switch(Mode("delay", seconds=seconds))

    def cut_after(self, limit: int, times: int | None = None) -> None:
        self._switch(Mode("cut", limit=limit, times=times))

    def _switch(self, mode: Mode) -> None:
        with self._lock:
            self.mode = mode
            self._generation += 1  # the threads of open connections see it within POLL and reset them
        if mode.name == "refuse":
            self._close_listener()
        elif self._listener is None:
            self._listen()

    # -- listening -----------------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))  # port 0 the first time: a free one; then the same again
        listener.listen(64)
        listener.settimeout(POLL)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._spawn(self._accept_loop, listener)

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # stops listening now, not when accept() next wakes up
            listener.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set() and self._listener is listener:
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by refuse() or stop()
            client.setblocking(True)
            with self._lock:
                self.accepted += 1
                mode, generation = self.mode, self._generation
                if mode.name == "cut" and mode.times is not None:
                    self.mode = Mode("cut", limit=mode.limit, times=mode.times - 1) if mode.times > 1 \
                        else Mode("pass")
                    mode = mode if mode.times > 0 else Mode("pass")
            self._spawn(self._serve, client, mode, generation)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="faultproxy")
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    # -- one connection ----------------------------------------------------------------------------------

    def _serve(self, client: socket.socket, mode: Mode, generation: int) -> None:
        upstream: socket.socket | None = None
        try:
            if mode.name == "reset":
                return
            if mode.name == "blackhole":
                self._swallow(client, generation)
                return
            upstream = socket.create_connection(self.upstream, timeout=5)
            if self._pump(client, upstream, mode, generation):
                for sock in (client, upstream):  # one side ended normally: end the other side normally too
                    sock.close()
        except OSError:
            pass
        finally:
            _reset(client)  # no-ops on a socket already closed
            if upstream is not None:
                _reset(upstream)

    def _live(self, generation: int) -> bool:
        return not self._stopping.is_set() and generation == self._generation

    def _swallow(self, client: socket.socket, generation: int) -> None:
        """Read whatever comes and never answer, until the client gives up or the mode changes."""
        while self._live(generation):
            readable, _, _ = select.select([client], [], [], POLL)
            if readable:
                try:
                    if not client.recv(BUFFER):
                        return
                except OSError:
                    return

    def _pump(self, client: socket.socket, upstream: socket.socket, mode: Mode, generation: int) -> bool:
        """Forward both ways; True when a side closed in order, False for a fault or a switch of mode."""
        sent_up = 0
        while self._live(generation):
            try:
                readable, _, _ = select.select([client, upstream], [], [], POLL)
            except (OSError, ValueError):
                return False
            for source in readable:
                try:
                    data = source.recv(BUFFER)
                except OSError:
                    return False
                if not data:
                    return True
                if source is client:
                    if mode.name == "cut" and sent_up + len(data) > mode.limit:
                        with contextlib.suppress(OSError):
                            upstream.sendall(data[: mode.limit - sent_up])
                        return False
                    sent_up += len(data)
                    target = upstream
                else:
                    if mode.name == "delay" and not self._wait(mode.seconds, generation):
                        return False
                    target = client
                try:
                    target.sendall(data)
                except OSError:
                    return False
        return False

    def _wait(self, seconds: float, generation: int) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self._live(generation):
                return False
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
        return True



def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (linger 0), as a crashed peer does, not with an orderly FIN."""
    if sock.fileno() == -1:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
