"""pytest fixtures for the fleet tests: one Consul cluster of nspawn nodes per session."""

from __future__ import annotations

import pytest

import fleetlib


@pytest.fixture(scope="session")
def fleet():
    """3 Consul servers (s1-s3) and 7 clients (c1-c7), each a real systemd boot with umm.
    c1 is the clients' test node; c2-c7 are the rollout scenarios' (groups, Consul restart)."""
    f = fleetlib.Fleet("cluster", servers=3, clients=7)
    try:
        f.start_all()
        f.wait_cluster()
        yield f
    finally:
        f.close()


@pytest.fixture(autouse=True)
def _reset_fleet(request):
    """Each cluster test leaves the fleet as it found it (fleetlib.Fleet.reset)."""
    yield
    if "fleet" in request.fixturenames:
        request.getfixturevalue("fleet").reset()

