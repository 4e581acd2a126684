"""Fixtures for the compute-host drain tests against the real Nova lab.

tests/nova/run.sh starts the lab once for the whole suite (lab.sh start) and
passes its env file in NOVA_LAB_ENV; nothing here starts or skips anything
(test_keystone.py's module fixture adds Keystone and Masakari for its own tests).
"""
import json
import os
import pathlib
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SLOW = "compute-slow"
SLOW_REASON = "lab: FakeLiveMigrateDriver, only for the failure tests"
# lines for the end of the run (pytest_terminal_summary): what the lab's parts cost
SUMMARY = []


def pytest_terminal_summary(terminalreporter):
    for line in SUMMARY:
        terminalreporter.write_line(f"[nova lab] {line}")


def lab_env():
    path = os.environ.get("NOVA_LAB_ENV")
    assert path and os.path.exists(path), "run these tests through tests/nova/run.sh (it starts the lab)"
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    return env


def http_json(method, url, body, ok, headers):
    """One JSON request; asserts the status is in `ok`; the decoded answer (None if empty)."""
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    for k, v in headers.items():
        req.add_header(k, v)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    assert status in ok, f"{method} {url} -> {status}: {text[:500]}"
    return json.loads(text) if text.strip() else None


class Nova:
    def __init__(self, env):
        self.url = env["NOVA_URL"]
        self.token = env["NOVA_TOKEN"]
        self.image = env["NOVA_IMAGE"]
        self.computes = env["NOVA_COMPUTES"].split()

    def call(self, method, path, body=None, ok=(200, 202, 204)):
        return http_json(method, self.url + path, body, ok,
                         {"X-Auth-Token": self.token, "X-OpenStack-Nova-API-Version": "2.88"})

    def services(self):
        return {s["host"]: s for s in self.call("GET", "/os-services?binary=nova-compute")["services"]}

    def set_service(self, host, disabled_reason=None):
        sid = self.services()[host]["id"]
        body = {"status": "enabled"} if disabled_reason is None else \
            {"status": "disabled", "disabled_reason": disabled_reason}
        self.call("PUT", f"/os-services/{sid}", body)

    def servers(self, host=None):
        q = "/servers/detail?all_tenants=1" + (f"&host={host}" if host else "")
        return self.call("GET", q)["servers"]

    def boot(self, host, n, prefix="s", wait=True, flavor="1"):
        ids = []
        for i in range(n):
            r = self.call("POST", "/servers", {"server": {
                "name": f"{prefix}{i}", "imageRef": self.image, "flavorRef": flavor,
                "networks": "none", "host": host}})
            ids.append(r["server"]["id"])
        if wait:
            self.wait_status(ids, "ACTIVE")
        return ids

    def server(self, sid):
        return self.call("GET", f"/servers/{sid}")["server"]

    def wait_status(self, ids, status, timeout=120):
        end = time.time() + timeout
        while True:
            got = {i: self.server(i) for i in ids}
            if all(s["status"] == status and s["OS-EXT-STS:task_state"] is None for s in got.values()):
                return got
            bad = [s for s in got.values() if s["status"] == "ERROR" and status != "ERROR"]
            assert not bad, f"servers went to ERROR: {[(s['id'], s.get('fault')) for s in bad]}"
            assert time.time() < end, f"servers not {status} after {timeout}s: " \
                f"{[(s['id'], s['status'], s['OS-EXT-STS:task_state']) for s in got.values()]}"
            time.sleep(0.5)

    def delete_all(self):
        for s in self.servers():
            self.call("DELETE", f"/servers/{s['id']}", ok=(204, 404))
        end = time.time() + 120
        while self.servers():
            assert time.time() < end, "servers not deleted after 120s"
            time.sleep(0.5)

    def live_migrations(self, source):
        return self.call("GET", f"/os-migrations?migration_type=live-migration&source_compute={source}")[
            "migrations"]


def max_in_flight(migrations):
    """Most live migrations whose [created_at, updated_at) overlap, from Nova's records."""
    iv = [(m["created_at"], m["updated_at"] or "9999") for m in migrations]
    return max((sum(1 for a2, b2 in iv if a2 <= a < b2) for a, _ in iv), default=0)


@pytest.fixture(scope="session")
def nova():
    n = Nova(lab_env())
    ids = {f["id"] for f in n.call("GET", "/flavors")["flavors"]}
    if "1" not in ids:
        n.call("POST", "/flavors", {"flavor": {"name": "lab.tiny", "ram": 64, "vcpus": 1, "disk": 0, "id": "1"}})
    # a fake compute has 800000 MiB (x1.5 in Placement; max 800000 in one server): two of these
    # do not fit on one host
    if "big" not in ids:
        n.call("POST", "/flavors", {"flavor": {"name": "lab.big", "ram": 700000, "vcpus": 1, "disk": 0,
                                               "id": "big"}})
    return n


@pytest.fixture
def lab(nova):
    """A clean lab: no servers, every fake compute enabled, compute-slow disabled (operator)."""
    nova.delete_all()
    for h in nova.computes:
        if h == SLOW:
            nova.set_service(h, SLOW_REASON)
        else:
            nova.set_service(h)
    yield nova


@pytest.fixture
def umm(request, nova):
    binary = os.environ.get("UMM_BIN")
    assert binary and os.access(binary, os.X_OK), "UMM_BIN must name the umm binary (tests/nova/run.sh sets it)"
    # not under /tmp: umm refuses a state file below a directory others can write (docs/security.md)
    state = pathlib.Path(lab_env()["NOVA_LAB_RUN"]) / "state" / request.node.name
    shutil.rmtree(state, ignore_errors=True)

    def run(*args, check=None, background=False):
        env = dict(os.environ, OS_ENDPOINT=nova.url, OS_TOKEN=nova.token,
                   OS_PLACEMENT_ENDPOINT=lab_env()["PLACEMENT_URL"])
        cmd = [binary, "host", *args, "--state-dir", str(state)]
        if background:
            return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        print(f"$ umm host {' '.join(args)}  -> {p.returncode}\n{p.stdout}{p.stderr}")
        if check is not None:
            assert p.returncode == check, f"exit {p.returncode}, expected {check}:\n{p.stdout}{p.stderr}"
        return p

    run.state = state
    return run


def state_of(umm, host):
    p = umm("status", host, "--json", check=0)
    return json.loads(p.stdout)[0]


def lab_sh(*args):
    """tests/nova/lab.sh on the running lab (kill-compute, start-compute)."""
    env = dict(os.environ, UMM_NOVA_RUN=lab_env()["NOVA_LAB_RUN"])
    subprocess.run([os.path.join(HERE, "lab.sh"), *args], env=env, check=True, timeout=60)


def wait_service_heartbeat(nova, host, after, timeout=120):
    """Waits until HOST's nova-compute reported after `after` (Nova's updated_at) and is up."""
    end = time.time() + timeout
    while True:
        s = nova.services()[host]
        if s["state"] == "up" and (s["updated_at"] or "") > after:
            return s
        assert time.time() < end, f"{host} did not report after {after}: {s}"
        time.sleep(0.5)
