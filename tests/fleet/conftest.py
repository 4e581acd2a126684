"""pytest fixtures for the fleet tests: one Consul cluster of nspawn nodes per session."""

from __future__ import annotations

import pytest

import fleetlib


@pytest.fixture(scope="session")
def fleet():
    """3 Consul servers (s1-s3) and 1 client (c1), each a real systemd boot with umm."""
    f = fleetlib.Fleet("cluster", servers=3, clients=1)
    try:
        f.start_all()
        f.wait_cluster()
        yield f
    finally:
        f.close()
