"""Maintenance mode as the landing zone (issue 15, scenario 5): rebootmgr
reboots a node *into* MM (`--into-maintenance`), the pending `umm on --
COMMAND` job runs there with the workload not started, the post-boot phase
waits (exit 9, slot and Consul maintenance kept), `umm off` resumes the boot
without a second reboot and the next run frees the slot behind the health gate."""

from __future__ import annotations

import time

JOB = "/var/lib/fleet-job.out"


def test_rebootmgr_reboots_into_maintenance_and_the_job_runs_there(fleet):
    fleet.wait_cluster()
    c1, s2 = fleet["c1"], fleet["s2"]
    for n in (c1, s2):
        fleet.wait(f"{n.name}: config", lambda n=n: n.ssh("rebootmgr config --ensure", check=False).returncode == 0,
                   timeout=60)
    c1.ssh(f"rm -f {JOB}; touch /var/run/reboot-required")
    # The job (a firmware update, an fsck, a DB migration) records whether the workload runs beside it.
    c1.ssh(f"umm on --no-reboot -- sh -c 'systemctl is-active demo-app.service > {JOB}; echo ran >> {JOB}'")
    old = c1.boot_id()
    t0 = time.monotonic()
    r = c1.ssh("rebootmgr run --check-triggers --settle 3 --into-maintenance", check=False, timeout=120)
    assert r.returncode in (0, 255), r.stdout + r.stderr
    mm_boot = c1.wait_boot(old)
    st = c1.umm_status()
    assert st["mode"] == "maintenance" and st["reason"] == "requested", st
    fleet.wait("the job ran in MM", lambda: "ran" in c1.ssh(f"cat {JOB}", check=False).stdout, timeout=60)
    job = c1.out(f"cat {JOB}").splitlines()
    assert job[0] != "active", f"the workload ran beside the job: {job}"
    assert c1.is_active("demo-app.service") != "active"
    in_mm = time.monotonic() - t0
    # The slot stayed c1's across the reboot (KV); Consul node maintenance is
    # the agent's own, persisted check: c1 left the catalog when its agent
    # stopped for the reboot and is listed in maintenance again once the agent
    # has synced after the boot (CI once looked before that: None). Then the
    # post-boot phase waits.
    assert "c1" in fleet.slot_holders()
    fleet.wait("c1 listed in maintenance again", lambda: fleet.maintenance_notes("c1"), timeout=60)
    r = c1.ssh("rebootmgr run --check-triggers", check=False)
    assert r.returncode == 9 and "umm off" in r.stderr, r.stdout + r.stderr
    r = s2.ssh("rebootmgr run --dry-run --settle 1", check=False)
    assert r.returncode == 4, r.stdout + r.stderr

    # umm off resumes this boot (no second reboot); then the health gate frees the slot.
    c1.ssh("umm off")
    c1.wait_active("demo-app.service")
    assert c1.boot_id() == mm_boot
    assert fleet.maintenance_notes("c1") and "c1" in fleet.slot_holders()
    t1 = time.monotonic()
    r = c1.ssh("rebootmgr run --check-triggers --wait-until-healthy 60", check=False, timeout=120)
    assert r.returncode == 0 and "post-boot phase finished" in r.stdout, r.stdout + r.stderr
    assert "c1" not in fleet.slot_holders() and fleet.maintenance_notes("c1") is None
    assert c1.boot_id() == mm_boot and c1.umm_status()["mode"] in ("resumed", "normal")
    print(f"\nlanding zone: rebooted into MM and the job done {in_mm:.1f} s after the run began;"
          f" slot freed {time.monotonic() - t1:.1f} s after umm off's resume, same boot")
