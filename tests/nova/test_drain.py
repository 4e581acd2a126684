"""The compute-host drain (umm host …) against the real Nova lab."""
import json
import signal
import time

from conftest import SLOW, SLOW_REASON, lab_sh, max_in_flight, state_of, wait_service_heartbeat

FAST = ("--settle", "2s", "--poll", "300ms")


def new_migrations(nova, host, before):
    return [m for m in nova.live_migrations(host) if m["id"] not in before]


def test_drain_throttled_scheduling_stops_host_empty_leave_reenables(lab, umm):
    nova = lab
    ids = nova.boot("compute1", 6)
    before = {m["id"] for m in nova.live_migrations("compute1")}
    umm("enter", "compute1", "--why", "kernel 6.1.0-30", "--max-in-flight", "2", *FAST, check=0)

    svc = nova.services()["compute1"]
    assert svc["status"] == "disabled"
    assert svc["disabled_reason"].startswith("umm:") and svc["disabled_reason"].endswith(":kernel 6.1.0-30")
    assert nova.servers("compute1") == [], "the host must end empty"
    for sid in ids:
        s = nova.server(sid)
        assert s["OS-EXT-SRV-ATTR:host"] not in ("compute1", None) and s["status"] == "ACTIVE"
    migs = new_migrations(nova, "compute1", before)
    assert len(migs) == 6 and all(m["status"] == "completed" for m in migs), migs
    peak = max_in_flight(migs)
    print(f"peak live migrations in flight from compute1 (Nova's records): {peak}")
    assert 1 <= peak <= 2

    st = state_of(umm, "compute1")
    assert st["mode"] == "in-maintenance" and st["requested"] == "maintenance"
    assert sorted(p["id"] for p in st["servers"]) == sorted(ids)
    assert all(p["step"] == "done" and p["dest"] for p in st["servers"])

    # scheduling stopped: a boot pinned to the host ends in NoValidHost
    [pinned] = nova.boot("compute1", 1, prefix="pinned", wait=False)
    s = nova.wait_status([pinned], "ERROR")[pinned]
    assert "No valid host" in s["fault"]["message"], s.get("fault")

    umm("leave", "compute1", check=0)
    assert nova.services()["compute1"]["status"] == "enabled"
    assert state_of(umm, "compute1")["mode"] == "active"
    nova.boot("compute1", 1, prefix="after")   # schedulable again


def test_operator_disable_is_never_undone(lab, umm):
    nova = lab
    nova.boot("compute2", 2)
    nova.set_service("compute2", "broken fan, ticket 4711")
    try:
        p = umm("enter", "compute2", "--max-in-flight", "1", *FAST, check=0)
        assert "already disabled by the operator" in p.stdout
        assert nova.servers("compute2") == []
        svc = nova.services()["compute2"]
        assert svc["status"] == "disabled" and svc["disabled_reason"] == "broken fan, ticket 4711"
        p = umm("leave", "compute2", check=0)
        assert "stays disabled" in p.stdout
        svc = nova.services()["compute2"]
        assert svc["status"] == "disabled" and svc["disabled_reason"] == "broken fan, ticket 4711"
        # and without any umm state (a fresh state dir): still not undone
        p = umm("leave", "compute2", check=0)
        assert nova.services()["compute2"]["status"] == "disabled"
    finally:
        nova.set_service("compute2")


def snapshot(nova):
    # heartbeats move updated_at: compare what a drain could change
    return (sorted((h, s["status"], s["disabled_reason"]) for h, s in nova.services().items()),
            sorted((s["id"], s["status"], s["OS-EXT-SRV-ATTR:host"]) for s in nova.servers()),
            len(nova.call("GET", "/os-migrations")["migrations"]))


def test_dry_run_changes_nothing_and_hosts_match_exactly(lab, umm):
    nova = lab
    ids = nova.boot("compute1", 2)
    before = snapshot(nova)
    p = umm("enter", "compute1", "--dry-run", check=0)
    assert "dry run (nothing changed)" in p.stdout and "would disable" in p.stdout
    for sid in ids:
        assert sid in p.stdout
    assert snapshot(nova) == before
    assert not umm.state.exists() or not list(umm.state.iterdir()), "a dry run writes no state"
    # "compute" is a prefix of compute1..3: no substring matching, nothing disabled
    p = umm("enter", "compute", check=1)
    assert "no nova-compute service on host \"compute\"" in p.stderr
    assert snapshot(nova) == before


def test_failing_migration_error_then_retry(lab, umm):
    nova = lab
    nova.set_service(SLOW)
    [sid] = nova.boot(SLOW, 1)
    # A live migration from compute-slow runs for 5 s: a 3 s timeout aborts it while it runs. (With 1 s the
    # abort sometimes came while Nova was still preparing it; the migration then completed and umm, rightly,
    # recorded the server as moved: 1 run in 9 failed this test.)
    p = umm("enter", SLOW, "--migration-timeout", "3s", "--retries", "0", "--max-in-flight", "1", *FAST, check=1)
    assert "failed to migrate" in p.stderr and "host stays disabled" in p.stderr
    st = state_of(umm, SLOW)
    assert st["mode"] == "error" and "failed to migrate" in st["error"]
    [prog] = st["servers"]
    assert prog["step"] == "failed" and "cancelled" in prog["fault"], prog
    assert nova.server(sid)["OS-EXT-SRV-ATTR:host"] == SLOW
    assert nova.services()[SLOW]["status"] == "disabled"
    # in mode error, enter refuses and says what to do
    p = umm("enter", SLOW, *FAST, check=1)
    assert "retry" in p.stderr
    # retry with a longer timeout finishes the drain
    umm("retry", SLOW, "--migration-timeout", "60s", check=0)
    st = state_of(umm, SLOW)
    assert st["mode"] == "in-maintenance" and st["servers"][0]["step"] == "done"
    assert nova.servers(SLOW) == []
    umm("leave", SLOW, check=0)
    assert nova.services()[SLOW]["status"] == "enabled"


def test_abort_cancels_in_flight_and_keeps_host_disabled(lab, umm):
    nova = lab
    nova.set_service(SLOW)
    [sid] = nova.boot(SLOW, 1)
    drain = umm("enter", SLOW, "--migration-timeout", "60s", "--max-in-flight", "1", *FAST, background=True)
    end = time.time() + 30
    while not nova.call("GET", f"/servers/{sid}/migrations")["migrations"]:
        assert time.time() < end, "the drain started no migration"
        time.sleep(0.2)
    p = umm("abort", SLOW, check=0)
    out, _ = drain.communicate(timeout=60)
    print(out)
    assert drain.returncode == 3 and "abort requested" in out
    st = state_of(umm, SLOW)
    assert st["mode"] == "error" and "aborted by the operator" in st["error"]
    assert st["servers"][0]["step"] == "failed"
    assert nova.server(sid)["OS-EXT-SRV-ATTR:host"] == SLOW, "an aborted migration leaves the server"
    assert [m["status"] for m in nova.live_migrations(SLOW)][:1] == ["cancelled"]
    svc = nova.services()[SLOW]
    assert svc["status"] == "disabled" and svc["disabled_reason"].startswith("umm:")
    umm("leave", SLOW, check=0)
    assert nova.services()[SLOW]["status"] == "enabled"
    nova.set_service(SLOW, SLOW_REASON)


def test_killed_mid_drain_resumes(lab, umm):
    nova = lab
    ids = nova.boot("compute1", 5)
    before = {m["id"] for m in nova.live_migrations("compute1")}
    drain = umm("enter", "compute1", "--max-in-flight", "1", *FAST, background=True)
    state_file = umm.state / "compute1.json"
    end = time.time() + 60
    while True:
        assert time.time() < end and drain.poll() is None, "the drain ended before it could be killed"
        try:
            st = json.loads(state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            st = None
        if st and sum(p["step"] == "done" for p in st["servers"]) >= 1 and \
                any(p["step"] == "migrating" for p in st["servers"]):
            break
        time.sleep(0.1)
    drain.send_signal(signal.SIGKILL)
    drain.wait()
    st = state_of(umm, "compute1")
    assert st["mode"] == "migrating"
    p = umm("enter", "compute1", "--max-in-flight", "1", *FAST, check=0)
    assert "resuming the drain" in p.stdout
    st = state_of(umm, "compute1")
    assert st["mode"] == "in-maintenance"
    assert sorted(p["id"] for p in st["servers"]) == sorted(ids)
    # a kill between persisting "migrating" and the POST leaves an attempt Nova never saw: the
    # resumed drain finds it idle on the host and asks again (attempt 2); nothing is migrated twice
    assert all(p["step"] == "done" and p["attempts"] <= 2 for p in st["servers"]), st["servers"]
    migs = new_migrations(nova, "compute1", before)
    assert sorted(m["instance_uuid"] for m in migs if m["status"] == "completed") == sorted(ids), migs
    assert max_in_flight(migs) == 1, migs
    assert nova.servers("compute1") == []
    umm("leave", "compute1", check=0)


def test_target_compute_killed_error_then_abort_and_retry(lab, umm):
    """The only target's nova-compute dies (SIGKILL) while Nova still counts it up: the
    migrations fail (the pre-check RPC to the target times out, or NoValidHost once it is
    seen down), the drain ends in mode error with Nova's migration status, abort and retry
    work after it."""
    nova = lab
    nova.set_service("compute3", "test: only compute2 is a target")
    ids = nova.boot("compute1", 2)
    before = {m["id"] for m in nova.live_migrations("compute1")}
    last_beat = nova.services()["compute2"]["updated_at"]
    lab_sh("kill-compute", "compute2")
    dead = True
    t0 = time.monotonic()
    try:
        p = umm("enter", "compute1", "--retries", "0", "--max-in-flight", "2", *FAST, check=1)
        print(f"drain failed after {time.monotonic() - t0:.1f} s")
        assert "2 server(s) failed to migrate" in p.stderr and "host stays disabled" in p.stderr
        st = state_of(umm, "compute1")
        assert st["mode"] == "error" and st["requested"] == "maintenance"
        for prog in st["servers"]:
            assert prog["step"] == "failed" and prog["attempts"] == 1, prog
            assert "ended error" in prog["fault"], prog
        migs = new_migrations(nova, "compute1", before)
        assert sorted(m["instance_uuid"] for m in migs) == sorted(ids)
        assert all(m["status"] == "error" and m["dest_compute"] in (None, "compute2") for m in migs), migs
        for sid in ids:
            s = nova.server(sid)
            assert s["OS-EXT-SRV-ATTR:host"] == "compute1" and s["status"] == "ACTIVE", s
        svc = nova.services()["compute1"]
        assert svc["status"] == "disabled" and svc["disabled_reason"].startswith("umm:")
        p = umm("enter", "compute1", *FAST, check=1)
        assert "mode error" in p.stderr and "retry" in p.stderr and "abort" in p.stderr

        # abort in mode error: nothing in flight to cancel, stays error, host stays disabled
        p = umm("abort", "compute1", check=0)
        st = state_of(umm, "compute1")
        assert st["mode"] == "error" and "aborted by the operator" in st["error"]
        assert all(prog["step"] == "failed" for prog in st["servers"])
        assert nova.services()["compute1"]["status"] == "disabled"
        assert len(new_migrations(nova, "compute1", before)) == 2, "abort started nothing"

        # the target comes back: retry finishes the drain onto it
        lab_sh("start-compute", "compute2")
        dead = False
        wait_service_heartbeat(nova, "compute2", last_beat)
        umm("retry", "compute1", check=0)
        st = state_of(umm, "compute1")
        assert st["mode"] == "in-maintenance"
        assert all(prog["step"] == "done" and prog["dest"] == "compute2" for prog in st["servers"]), st
        assert nova.servers("compute1") == []
        umm("leave", "compute1", check=0)
        assert nova.services()["compute1"]["status"] == "enabled"
    finally:
        if dead:  # the next tests need compute2
            lab_sh("start-compute", "compute2")
            wait_service_heartbeat(nova, "compute2", last_beat)


def test_capacity_precheck_refuses_force_overrides(lab, umm):
    nova = lab
    nova.set_service("compute3", "test: only compute2 is a target")
    nova.boot("compute2", 1, prefix="big-there", flavor="big")
    [big] = nova.boot("compute1", 1, prefix="big-here", flavor="big")
    before = snapshot(nova)
    p = umm("enter", "compute1", "--dry-run", check=0)
    assert "not enough free capacity" in p.stdout and big in p.stdout
    p = umm("enter", "compute1", *FAST, check=1)
    assert "not enough free capacity on the enabled compute hosts" in p.stderr and big in p.stderr
    assert "nothing was changed" in p.stderr and "--force" in p.stderr
    assert snapshot(nova) == before, "a refused drain changes nothing in Nova"
    assert not (umm.state / "compute1.json").exists(), "a refused drain writes no state"
    # --force drains anyway: Nova finds no host (NoValidHost), the drain ends in mode error
    p = umm("enter", "compute1", "--force", "--retries", "0", *FAST, check=1)
    assert "going on anyway (--force)" in p.stdout and "failed to migrate" in p.stderr
    assert state_of(umm, "compute1")["mode"] == "error"
    assert [m["status"] for m in nova.live_migrations("compute1")][:1] == ["error"]
    umm("leave", "compute1", check=0)
    # with compute3 enabled again there is room: the precheck passes, the drain finishes
    nova.set_service("compute3")
    p = umm("enter", "compute1", *FAST, check=0)
    assert "capacity: 1 server(s) to move need 1 vCPU, 700000 MiB RAM; 2 enabled host(s)" in p.stdout
    assert nova.server(big)["OS-EXT-SRV-ATTR:host"] == "compute3"
    umm("leave", "compute1", check=0)


def test_max_total_across_hosts(lab, umm):
    """Two hosts drained at once, 2 in flight each but 2 in total: Nova's own migration
    records (both sources) never overlap more than 2."""
    nova = lab
    ids = nova.boot("compute1", 4, prefix="a") + nova.boot("compute2", 4, prefix="b")
    before = {m["id"] for m in nova.call("GET", "/os-migrations")["migrations"]}
    drains = [umm("enter", h, "--max-in-flight", "2", "--max-total", "2", *FAST, background=True)
              for h in ("compute1", "compute2")]
    outs = [d.communicate(timeout=300)[0] for d in drains]
    for d, out in zip(drains, outs):
        print(out)
        assert d.returncode == 0, out
    assert nova.servers("compute1") == [] and nova.servers("compute2") == []
    migs = [m for m in nova.call("GET", "/os-migrations")["migrations"] if m["id"] not in before]
    assert sorted(m["instance_uuid"] for m in migs if m["status"] == "completed") == sorted(ids), migs
    peak = max_in_flight(migs)
    print(f"peak migrations in flight across compute1+compute2 (Nova's records): {peak}")
    assert 1 <= peak <= 2, migs
    assert any("max-total 2): waiting" in out for out in outs), "the total limit never held a drain back"
    for h in ("compute1", "compute2"):
        umm("leave", h, check=0)


def stop_server(nova, sid):
    nova.call("POST", f"/servers/{sid}/action", {"os-stop": None})
    nova.wait_status([sid], "SHUTOFF")


def test_shutoff_cold_migrated_by_default_or_left(lab, umm):
    nova = lab
    [on, off] = nova.boot("compute1", 2)
    stop_server(nova, off)
    before = {m["id"] for m in nova.call("GET", "/os-migrations")["migrations"]}
    p = umm("enter", "compute1", *FAST, check=0)   # default: --shutoff migrate
    assert "cold-migrating " + off in p.stdout and "confirming" in p.stdout
    assert nova.servers("compute1") == []
    s = nova.server(off)
    assert s["status"] == "SHUTOFF" and s["OS-EXT-SRV-ATTR:host"] != "compute1", "stays off, elsewhere"
    migs = {m["instance_uuid"]: m for m in nova.call("GET", "/os-migrations")["migrations"]
            if m["id"] not in before}
    assert migs[off]["migration_type"] == "migration" and migs[off]["status"] == "confirmed", migs
    assert migs[on]["migration_type"] == "live-migration" and migs[on]["status"] == "completed", migs
    st = state_of(umm, "compute1")
    kinds = {p["id"]: (p["kind"], p["step"]) for p in st["servers"]}
    assert kinds == {on: ("live", "done"), off: ("cold", "done")}, kinds
    umm("leave", "compute1", check=0)

    # --shutoff leave: the SHUTOFF server stays, the host is in maintenance with it
    [off2] = nova.boot("compute1", 1, prefix="off")
    stop_server(nova, off2)
    p = umm("enter", "compute1", "--shutoff", "leave", *FAST, check=0)
    assert "1 SHUTOFF server(s) left on the host" in p.stdout
    st = state_of(umm, "compute1")
    assert st["mode"] == "in-maintenance"
    assert [(p["id"], p["step"]) for p in st["servers"]] == [(off2, "left")]
    assert nova.server(off2)["OS-EXT-SRV-ATTR:host"] == "compute1"
    umm("leave", "compute1", check=0)


def test_clouds_yaml_credentials_and_trust_rule(lab, umm):
    """No OS_TOKEN/OS_ENDPOINT in the environment: the cloud of a clouds.yaml (OS_CLOUD), read
    with the config trust rule; a file others can write is refused without echoing it."""
    import os
    import subprocess
    from conftest import lab_env
    nova = lab
    [sid] = nova.boot("compute1", 1)
    umm.state.mkdir(parents=True, exist_ok=True)
    cy = umm.state / "clouds.yaml"
    cy.write_text(f"""clouds:
  other:
    auth: {{auth_url: http://127.0.0.1:1/v3, username: x, password: y, project_name: z}}
  lab:
    auth_type: admin_token
    auth:
      endpoint: {nova.url}
      token: {nova.token}
    placement_endpoint_override: {lab_env()["PLACEMENT_URL"]}
""")
    os.chmod(cy, 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_CLIENT_CONFIG_FILE=str(cy), OS_CLOUD="lab")

    def run(*args):
        p = subprocess.run([os.environ["UMM_BIN"], "host", *args, "--state-dir", str(umm.state)],
                           env=env, capture_output=True, text=True, timeout=120)
        print(f"$ OS_CLOUD={env.get('OS_CLOUD')} umm host {' '.join(args)} -> {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    p = run("enter", "compute1", "--dry-run")
    assert p.returncode == 0 and sid in p.stdout and "capacity: 1 server(s)" in p.stdout
    del env["OS_CLOUD"]
    p = run("enter", "compute1", "--dry-run")
    assert p.returncode == 1 and "2 clouds (other, lab): set OS_CLOUD" in p.stderr
    env["OS_CLOUD"] = "lab"
    os.chmod(cy, 0o666)
    p = run("enter", "compute1", "--dry-run")
    assert p.returncode == 1 and str(cy) in p.stderr and nova.token not in p.stderr
    assert nova.services()["compute1"]["status"] == "enabled"
