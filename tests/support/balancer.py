"""A TCP load balancer on loopback for tests of collector replicas: agents talk to it, it to the replicas.

Each new connection goes to the next replica that accepts one (round robin; a dead replica is skipped), and a
connection idle for ``idle_s`` is closed, as load balancers close idle keep-alive connections: an agent's next
request then opens a new connection, so agents keep switching between the replicas.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from types import TracebackType


class Balancer:
    """Round robin over ``ports`` on 127.0.0.1; ``url`` once entered; ``connections`` counts them per port."""

    def __init__(self, ports: list[int], idle_s: float = 0.3) -> None:
        self.ports, self.idle_s = ports, idle_s
        self.connections: Counter[int] = Counter()
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="balancer", daemon=True)
        self.url = ""

    def __enter__(self) -> Balancer:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(10)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        for _ in self.ports:
            port = self.ports[next(self._turn) % len(self.ports)]
            try:
                backend_in, backend_out = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            client_out.close()
            return
        self.connections[port] += 1
        last = {"at": time.monotonic(), "answered": True}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, answers: bool) -> None:
            while True:
                try:
                    data = await asyncio.wait_for(source.read(1 << 16), self.idle_s / 3)
                except asyncio.TimeoutError:
                    if last["answered"] and time.monotonic() - float(last["at"]) > self.idle_s:
                        return  # idle since the replica's last answer; a request still waiting keeps it open
                    continue
                except OSError:
                    return
                if not data:
                    return
                last.update(at=time.monotonic(), answered=answers)
                sink.write(data)
                try:
                    await sink.drain()
                except OSError:
                    return

        _, pending = await asyncio.wait(
            [
                asyncio.ensure_future(pipe(client_in, backend_out, answers=False)),
                asyncio.ensure_future(pipe(backend_in, client_out, answers=True)),
            ],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()
        for writer in (client_out, backend_out):
            writer.close()
