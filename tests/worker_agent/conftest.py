"""Run every worker_agent test on both the default asyncio loop and uvloop (what the CLI uses)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import ModuleType

import pytest
import pytest_asyncio.plugin

uvloop: ModuleType | None
try:
    import uvloop
except ImportError:  # uvloop is optional
    uvloop = None

_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
if uvloop is not None:
    _FACTORIES["uvloop"] = uvloop.new_event_loop

if hasattr(pytest_asyncio.plugin, "PytestAsyncioSpecs"):  # pytest-asyncio >= 1.4

    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
        return _FACTORIES

else:

    @pytest.fixture(params=list(_FACTORIES))
    def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
        if request.param == "uvloop" and uvloop is not None:
            return uvloop.EventLoopPolicy()
        return asyncio.DefaultEventLoopPolicy()
