"""umm host with Keystone v3 password auth and Masakari's on_maintenance, against Debian 12's own
Keystone 22 and masakari-api 14 (lab.sh start-keystone: started for this module only).

Keystone's catalog (lab/keystone_catalog.py) lists a second nova-api and Placement that run with
auth_strategy = keystone (so umm's calls are accepted only with the Keystone token), masakari-api
(auth_strategy = keystone) as instance-ha, and decoys: compute's admin interface and region
RegionTwo point at ports nothing listens on, its internal interface at the same API as
http://localhost:… — so a test sees which entry umm took. Tokens live 20 s there.
"""
import json
import os
import pathlib
import re
import subprocess
import time
import urllib.request

import pytest

from conftest import HERE, SUMMARY, http_json, lab_env, state_of

FAST = ("--settle", "2s", "--poll", "300ms")


@pytest.fixture(scope="module")
def keystone(nova):
    env = dict(os.environ, UMM_NOVA_RUN=lab_env()["NOVA_LAB_RUN"])
    t0 = time.time()
    p = subprocess.run([os.path.join(HERE, "lab.sh"), "start-keystone"], env=env, capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, f"lab.sh start-keystone failed:\n{p.stderr[-3000:]}"
    ks = {}
    for line in pathlib.Path(p.stdout.strip().splitlines()[-1]).read_text().splitlines():
        k, _, v = line.partition("=")
        ks[k] = v
    took = time.time() - t0
    SUMMARY.append(f"Keystone + masakari-api + keystone nova-api/Placement up in {took:.1f} s "
                   f"(Keystone answering after {ks['KEYSTONE_UP_S']} s)")
    yield ks
    t1 = time.time()
    subprocess.run([os.path.join(HERE, "lab.sh"), "stop-keystone"], env=env, check=True, timeout=120)
    SUMMARY.append(f"Keystone and Masakari stopped in {time.time() - t1:.1f} s; the module took "
                   f"{time.time() - t0:.1f} s in all")


def password_env(ks, **extra):
    """The environment of an operator with an openrc: Keystone password auth, nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_URL=ks["KEYSTONE_URL"], OS_USERNAME="admin", OS_PASSWORD=ks["KEYSTONE_ADMIN_PASSWORD"],
               OS_PROJECT_NAME="admin", OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
               OS_REGION_NAME="RegionOne")
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run(umm, env, *args, check=None):
    p = subprocess.run([os.environ["UMM_BIN"], "host", *args, "--state-dir", str(umm.state)], env=env,
                       capture_output=True, text=True, timeout=600)
    shown = {k: v for k, v in env.items() if k.startswith("OS_") and k != "OS_PASSWORD"}
    print(f"$ {shown} umm host {' '.join(args)} -> {p.returncode}\n{p.stdout}{p.stderr}")
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}, expected {check}:\n{p.stdout}{p.stderr}"
    return p


def snapshot(nova):
    return (sorted((h, s["status"], s["disabled_reason"]) for h, s in nova.services().items()),
            sorted((s["id"], s["status"], s["OS-EXT-SRV-ATTR:host"]) for s in nova.servers()),
            len(nova.call("GET", "/os-migrations")["migrations"]))


def nova_ks_log_lines(pattern):
    log = pathlib.Path(lab_env()["NOVA_LAB_RUN"]) / "logs" / "nova-api-ks.log"
    return [ln for ln in log.read_text(errors="replace").splitlines() if re.search(pattern, ln)]


class Masakari:
    """Masakari's REST API as an operator uses it, with a fresh Keystone token per call."""

    def __init__(self, ks):
        self.ks = ks
        self.url = ks["MASAKARI_URL"]

    def token(self):
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": self.ks["KEYSTONE_ADMIN_PASSWORD"]}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        req = urllib.request.Request(self.ks["KEYSTONE_URL"] + "/auth/tokens", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.headers["X-Subject-Token"]

    def call(self, method, path, body=None, ok=(200, 201, 202, 204)):
        return http_json(method, self.url + path, body, ok,
                         {"X-Auth-Token": self.token(), "OpenStack-API-Version": "instance-ha 1.0"})

    def segment(self, name, hosts):
        seg = self.call("POST", "/segments", {"segment": {
            "name": name, "recovery_method": "auto", "service_type": "COMPUTE"}})["segment"]["uuid"]
        for h in hosts:
            self.call("POST", f"/segments/{seg}/hosts", {"host": {
                "name": h, "type": "COMPUTE", "control_attributes": "SSH"}})
        return seg

    def hosts(self, seg):
        return {h["name"]: h for h in self.call("GET", f"/segments/{seg}/hosts")["hosts"]}

    def set_maintenance(self, seg, name, on):
        uuid = self.hosts(seg)[name]["uuid"]
        self.call("PUT", f"/segments/{seg}/hosts/{uuid}", {"host": {"on_maintenance": on}})

    def clear(self):
        for seg in self.call("GET", "/segments")["segments"]:
            for h in self.hosts(seg["uuid"]).values():
                self.call("DELETE", f"/segments/{seg['uuid']}/hosts/{h['uuid']}")
            self.call("DELETE", f"/segments/{seg['uuid']}")


@pytest.fixture
def masakari(keystone):
    m = Masakari(keystone)
    m.clear()
    yield m
    m.clear()


def test_password_auth_drains_through_keystone_and_renews_an_expired_token(lab, umm, keystone):
    """OS_AUTH_URL/OS_USERNAME/OS_PASSWORD/OS_PROJECT_NAME: the token and the compute and
    Placement endpoints from the catalog; the nova-api that takes the drain accepts only Keystone
    tokens. The drain outlives its 20 s token: umm authenticates again and finishes."""
    nova = lab
    ids = nova.boot("compute1", 2)
    env = password_env(keystone)
    p = run(umm, env, "enter", "compute1", "--dry-run", check=0)
    assert f"Nova {keystone['NOVA_KS_URL']} (microversion 2.88), Placement {keystone['PLACEMENT_KS_URL']}, " \
           f"Masakari {keystone['MASAKARI_URL']}" in p.stdout
    assert "capacity: 2 server(s)" in p.stdout and "(Placement)" in p.stdout   # keystone Placement answered
    before = len(nova_ks_log_lines(r'"PUT /v2\.1/os-services/'))
    t0 = time.time()
    p = run(umm, env, "enter", "compute1", "--settle", "25s", "--poll", "500ms", check=0)
    assert time.time() - t0 > 20, "the drain must outlive the token for this test"
    assert "refused the Keystone token (HTTP 401, expired?): authenticated again" in p.stderr
    assert "compute1: mode in-maintenance" in p.stdout
    svc = nova.services()["compute1"]
    assert svc["status"] == "disabled" and svc["disabled_reason"].startswith("umm:")
    assert nova.servers("compute1") == []
    assert all(nova.server(i)["OS-EXT-SRV-ATTR:host"] != "compute1" for i in ids)
    # the disable went to the Keystone-authenticated nova-api
    assert len(nova_ks_log_lines(r'"PUT /v2\.1/os-services/[^ ]* HTTP/1\.1" status: 200')) > before
    st = state_of(umm, "compute1")
    assert st["mode"] == "in-maintenance" and all(s["step"] == "done" for s in st["servers"])
    run(umm, env, "leave", "compute1", check=0)
    assert nova.services()["compute1"]["status"] == "enabled"


def test_wrong_password_is_a_clear_error_and_changes_nothing(lab, umm, keystone):
    nova = lab
    nova.boot("compute1", 1)
    before = snapshot(nova)
    for env in (password_env(keystone, OS_PASSWORD="not-the-password"),
                password_env(keystone, OS_USERNAME="nobody"),
                password_env(keystone, OS_PROJECT_NAME="no-such-project")):
        for args in (("enter", "compute1"), ("enter", "compute1", "--dry-run"), ("leave", "compute1")):
            p = run(umm, env, *args, check=1)
            assert f"Keystone at {keystone['KEYSTONE_URL']}/auth/tokens refused the credentials (HTTP 401)" \
                   in p.stderr
            assert "not-the-password" not in p.stdout + p.stderr
    assert snapshot(nova) == before
    assert not (umm.state / "compute1.json").exists()
    p = run(umm, password_env(keystone, OS_PROJECT_NAME=None), "enter", "compute1", check=1)
    assert "needs OS_PROJECT_NAME (or OS_PROJECT_ID)" in p.stderr
    assert snapshot(nova) == before


def test_interface_and_region_pick_the_catalog_entry(lab, umm, keystone):
    ks = keystone
    port = ks["NOVA_KS_URL"].rsplit(":", 1)[1]
    p = run(umm, password_env(ks, OS_INTERFACE="internal"), "enter", "compute1", "--dry-run", check=0)
    assert f"Nova http://localhost:{port} (microversion 2.88), " \
           f"Placement {ks['PLACEMENT_KS_URL'].replace('127.0.0.1', 'localhost')}, " \
           f"Masakari {ks['MASAKARI_URL'].replace('127.0.0.1', 'localhost')}" in p.stdout
    p = run(umm, password_env(ks, OS_INTERFACE="publicURL"), "enter", "compute1", "--dry-run", check=0)
    assert f"Nova {ks['NOVA_KS_URL']} (" in p.stdout
    p = run(umm, password_env(ks, OS_INTERFACE="admin"), "enter", "compute1", "--dry-run", check=1)
    assert f"cannot reach Nova at {ks['DEAD_ADMIN_URL']}/" in p.stderr
    p = run(umm, password_env(ks, OS_REGION_NAME="RegionTwo"), "enter", "compute1", "--dry-run", check=1)
    assert f"cannot reach Nova at {ks['DEAD_REGION_URL']}/" in p.stderr
    p = run(umm, password_env(ks, OS_REGION_NAME="RegionThree"), "enter", "compute1", "--dry-run", check=1)
    assert "Keystone's catalog has no public compute endpoint in region RegionThree" in p.stderr
    # OS_ENDPOINT overrides the catalog's compute entry (the token still comes from Keystone)
    p = run(umm, password_env(ks, OS_REGION_NAME="RegionTwo", OS_ENDPOINT=ks["NOVA_KS_URL"]),
            "enter", "compute1", "--dry-run", check=0)
    assert f"Nova {ks['NOVA_KS_URL']} (" in p.stdout


def test_clouds_yaml_password_cloud_with_ids(lab, umm, keystone):
    """A clouds.yaml password cloud (project and user domain by id, region, interface) and
    devstack-style OS_*_DOMAIN_ID in the environment."""
    ks = keystone
    nova = lab
    umm.state.mkdir(parents=True, exist_ok=True)
    cy = umm.state / "clouds.yaml"
    cy.write_text(f"""clouds:
  prod:
    auth_type: password
    auth:
      auth_url: {ks['KEYSTONE_URL']}
      username: admin
      password: {ks['KEYSTONE_ADMIN_PASSWORD']}
      project_id: {ks['KEYSTONE_PROJECT_ID']}
      user_domain_id: default
    region_name: RegionOne
    interface: internal
  wrong:
    auth:
      auth_url: {ks['KEYSTONE_URL']}
      username: admin
      password: wrong-cloud-password
      project_name: admin
""")
    os.chmod(cy, 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(cy), OS_CLOUD="prod")
    port = ks["NOVA_KS_URL"].rsplit(":", 1)[1]
    p = run(umm, env, "enter", "compute1", "--dry-run", check=0)
    assert f"Nova http://localhost:{port} (" in p.stdout and "(Placement)" in p.stdout
    p = run(umm, env, "enter", "compute2", "--servers", "none", *FAST, check=0)
    assert nova.services()["compute2"]["status"] == "disabled"
    run(umm, env, "leave", "compute2", check=0)
    assert nova.services()["compute2"]["status"] == "enabled"
    env["OS_CLOUD"] = "wrong"
    p = run(umm, env, "enter", "compute1", "--dry-run", check=1)
    assert "refused the credentials (HTTP 401)" in p.stderr and "wrong-cloud-password" not in p.stderr
    # openrc with domain ids (devstack, Horizon): OS_USER_DOMAIN_ID / OS_PROJECT_DOMAIN_ID
    p = run(umm, password_env(ks, OS_USER_DOMAIN_NAME=None, OS_PROJECT_DOMAIN_NAME=None,
                              OS_USER_DOMAIN_ID="default", OS_PROJECT_DOMAIN_ID="default"),
            "enter", "compute1", "--dry-run", check=0)
    assert f"Nova {ks['NOVA_KS_URL']} (" in p.stdout


def test_masakari_on_maintenance_set_on_enter_cleared_on_leave(lab, umm, keystone, masakari):
    nova = lab
    seg = masakari.segment("umm-seg", ["compute1", "compute2"])
    nova.boot("compute1", 1)
    env = password_env(keystone)
    p = run(umm, env, "enter", "compute1", "--dry-run", check=0)
    c1 = masakari.hosts(seg)["compute1"]
    assert f"Masakari segment {seg} host {c1['uuid']}: would set on_maintenance" in p.stdout
    assert not masakari.hosts(seg)["compute1"]["on_maintenance"]
    p = run(umm, env, "enter", "compute1", *FAST, check=0)
    assert f"compute1: Masakari segment {seg}: on_maintenance set" in p.stdout
    hosts = masakari.hosts(seg)
    assert hosts["compute1"]["on_maintenance"] is True
    assert hosts["compute2"]["on_maintenance"] is False      # exact names only
    st = state_of(umm, "compute1")
    assert st["mode"] == "in-maintenance"
    assert [(m["segment"], m["uuid"]) for m in st["masakari"]] == [(seg, c1["uuid"])]
    # leave without a Masakari endpoint (token auth, no OS_MASAKARI_ENDPOINT): refused, the
    # record kept, Masakari still on_maintenance
    token_env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    token_env.update(OS_TOKEN=nova.token, OS_ENDPOINT=nova.url)
    p = run(umm, token_env, "leave", "compute1", check=1)
    assert "no Masakari endpoint is configured now" in p.stderr
    assert masakari.hosts(seg)["compute1"]["on_maintenance"] is True
    assert len(state_of(umm, "compute1")["masakari"]) == 1
    p = run(umm, env, "leave", "compute1", check=0)
    assert f"compute1: Masakari segment {seg}: on_maintenance cleared" in p.stdout
    assert masakari.hosts(seg)["compute1"]["on_maintenance"] is False
    assert state_of(umm, "compute1")["masakari"] == []
    assert nova.services()["compute1"]["status"] == "enabled"
    # cleared by someone else before leave: nothing to clear (no PUT)
    run(umm, env, "enter", "compute1", "--servers", "none", *FAST, check=0)
    masakari.set_maintenance(seg, "compute1", False)
    p = run(umm, env, "leave", "compute1", check=0)
    assert f"Masakari segment {seg} not on_maintenance: nothing to clear" in p.stdout


def test_masakari_operator_maintenance_is_left_alone(lab, umm, keystone, masakari):
    nova = lab
    seg = masakari.segment("ops-seg", ["compute2"])
    masakari.set_maintenance(seg, "compute2", True)   # the operator's
    env = password_env(keystone)
    p = run(umm, env, "enter", "compute2", "--dry-run", check=0)
    assert "already on_maintenance: would be left alone" in p.stdout
    p = run(umm, env, "enter", "compute2", *FAST, check=0)
    assert "already on_maintenance, not by umm: left alone" in p.stdout
    assert state_of(umm, "compute2")["masakari"] == []
    run(umm, env, "leave", "compute2", check=0)
    assert masakari.hosts(seg)["compute2"]["on_maintenance"] is True
    assert nova.services()["compute2"]["status"] == "enabled"


def test_masakari_resumed_drain_sets_what_it_recorded_and_leave_survives_a_deleted_host(
        lab, umm, keystone, masakari):
    """A drain killed after recording the Masakari host but before its PUT resumes with the PUT;
    a host deleted from Masakari meanwhile does not make leave fail for ever."""
    nova = lab
    seg = masakari.segment("resume-seg", ["compute1"])
    env = password_env(keystone)
    run(umm, env, "enter", "compute1", "--servers", "none", *FAST, check=0)
    assert masakari.hosts(seg)["compute1"]["on_maintenance"] is True
    # as if killed between the state write and the PUT: recorded, mode disabling, not set
    masakari.set_maintenance(seg, "compute1", False)
    path = umm.state / "compute1.json"
    st = json.loads(path.read_text())
    st["mode"] = "disabling"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(st))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    p = run(umm, env, "enter", "compute1", "--servers", "none", *FAST, check=0)
    assert "resuming the drain" in p.stdout and f"Masakari segment {seg}: on_maintenance set" in p.stdout
    assert masakari.hosts(seg)["compute1"]["on_maintenance"] is True
    assert len(state_of(umm, "compute1")["masakari"]) == 1
    # the operator removes the host from the segment while it is in maintenance
    uuid = masakari.hosts(seg)["compute1"]["uuid"]
    masakari.call("DELETE", f"/segments/{seg}/hosts/{uuid}")
    p = run(umm, env, "leave", "compute1", check=0)
    assert f"Masakari segment {seg} no longer has host {uuid}: nothing to clear" in p.stdout
    assert state_of(umm, "compute1")["masakari"] == [] and state_of(umm, "compute1")["mode"] == "active"
    assert nova.services()["compute1"]["status"] == "enabled"
