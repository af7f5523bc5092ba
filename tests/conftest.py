"""Shared fixtures: a real router, sisock processes, and a WAMP client for the test itself."""
from __future__ import annotations

import pytest

from sisock.wamp_thread import ThreadedSession
from tests.g3_support import g3_env  # noqa: F401 (fixture shared by the g3 tests)
from tests.http_support import stack  # noqa: F401 (fixture shared by the http tests)
from tests.support import Processes, Router


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    """A crossbar router shared by the tests of one module."""
    r = Router(tmp_path_factory.mktemp("router")).start()
    yield r
    r.stop()


@pytest.fixture
def own_router(tmp_path):
    """A router for a test that stops or restarts it."""
    r = Router(tmp_path / "router").start()
    yield r
    r.stop()


def _processes(router):
    procs = Processes(router.env)
    yield procs
    procs.stop_all()


@pytest.fixture
def procs(router):
    """Start sisock subcommands against the module's router; stopped after the test."""
    yield from _processes(router)


@pytest.fixture
def own_procs(own_router):
    """Start sisock subcommands against the test's own router."""
    yield from _processes(own_router)


def _client(router):
    session = ThreadedSession(router.config).start()
    assert session.wait_connected(30), "test client could not join the router"
    yield session
    session.stop()


@pytest.fixture
def client(router):
    """A WAMP-CRA session on the module's router, callable from the test thread."""
    yield from _client(router)


@pytest.fixture
def own_client(own_router):
    """A WAMP-CRA session on the test's own router."""
    yield from _client(own_router)


@pytest.fixture
def ocs(router):
    """An anonymous session on the module router's OCS port: where real agents publish."""
    session = ThreadedSession(router.config, transport="ocs").start()
    assert session.wait_connected(30), "could not join the OCS port"
    yield session
    session.stop()
