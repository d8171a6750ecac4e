"""Shared pytest fixtures. Each helper adds its own fixtures here with a targeted edit."""

from __future__ import annotations

import pytest


@pytest.fixture
def hub_server_factory(tmp_path_factory):
    """Start local Hub servers (tests/hub_server.py) on free ports: ``factory(tokens=..., orgs=...)``.
    Every server started is stopped after the test."""
    from hub_server import HubServer

    servers = []

    def factory(**kwargs):
        server = HubServer(tmp_path_factory.mktemp("hub-data"), **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def hub_server(hub_server_factory):
    """A local Hugging Face Hub (open: no token needed) on 127.0.0.1; ``.url``, ``.requests``, ``.stop()``."""
    return hub_server_factory()
