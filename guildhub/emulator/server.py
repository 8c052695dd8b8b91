"""Run the emulator: in the foreground (`manage.py emulator`) or on a background
thread with its own event loop (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from guildhub.emulator.app import EmulatorOptions, create_app
from guildhub.emulator.ratelimits import Profile
from guildhub.emulator.state import World

T = TypeVar("T")


class EmulatorServer:
    """An emulator on a free loopback port, served from a thread of its own."""

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        profile: Profile | str = "fast",
        options: EmulatorOptions | None = None,
    ) -> None:
        self.world = world or World()
        self.host = host
        self.port = port
        self.app = create_app(self.world, profile=profile, options=options)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway(self):
        from guildhub.emulator.gateway import GATEWAY_KEY

        return self.app[GATEWAY_KEY]

    async def start_async(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> EmulatorServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.stop_async())
            self.loop.close()

        self._thread = threading.Thread(target=run, name="discord-emulator", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` on the emulator's loop (where the World lives) and return its result."""
        assert self.loop is not None, "the emulator is not running"

        async def invoke() -> T:
            result = fn(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(60)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def serve_forever(server: EmulatorServer, on_ready: Callable[[EmulatorServer], None]) -> None:
    """Serve in the current loop until cancelled (the management command)."""
    await server.start_async()
    on_ready(server)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop_async()
