"""The shipped task (dist/usr/lib/umm/compute/umm-compute-task) run the way rebootmgr runs its
pre-/post-boot tasks and umm its pre-on hooks (their environment), against the real Nova lab.
Not through rebootmgr itself: that needs Consul (rebootmgr's own suites run the task runner)."""
import os
import subprocess

from conftest import HERE, lab_env, state_of

TASK = os.path.join(HERE, "..", "..", "dist", "usr", "lib", "umm", "compute", "umm-compute-task")


def task(nova, umm, check=0, **env):
    e = dict(os.environ, OS_ENDPOINT=nova.url, OS_TOKEN=nova.token,
             OS_PLACEMENT_ENDPOINT=lab_env()["PLACEMENT_URL"],
             PATH=os.path.dirname(os.environ["UMM_BIN"]) + ":" + os.environ["PATH"],
             UMM_COMPUTE_HOST="compute1", UMM_COMPUTE_STATE_DIR=str(umm.state),
             UMM_COMPUTE_ARGS="--settle 2s --poll 300ms", **env)
    p = subprocess.run([TASK], env=e, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    print(f"$ {' '.join(f'{k}={v}' for k, v in env.items())} umm-compute-task -> {p.returncode}\n"
          f"{p.stdout}{p.stderr}")
    assert p.returncode == check, f"exit {p.returncode}, expected {check}"
    return p


def test_rebootmgr_task_and_pre_on_hook(lab, umm):
    nova = lab
    ids = nova.boot("compute1", 2)
    # rebootmgr --dry-run: only reports
    p = task(nova, umm, REBOOTMGR_PHASE="pre_boot", REBOOTMGR_DRY_RUN="1", REBOOTMGR_NODE="n1")
    assert "dry run (nothing changed)" in p.stdout and all(i in p.stdout for i in ids)
    assert nova.services()["compute1"]["status"] == "enabled"
    # pre_boot: the drain, to in-maintenance
    task(nova, umm, REBOOTMGR_PHASE="pre_boot", REBOOTMGR_NODE="n1")
    svc = nova.services()["compute1"]
    assert svc["status"] == "disabled" and svc["disabled_reason"].endswith(":rebootmgr reboot")
    assert nova.servers("compute1") == [] and state_of(umm, "compute1")["mode"] == "in-maintenance"
    # post_boot (after rebootmgr's health gate): handed back
    task(nova, umm, REBOOTMGR_PHASE="post_boot", REBOOTMGR_NODE="n1")
    assert nova.services()["compute1"]["status"] == "enabled"
    assert state_of(umm, "compute1")["mode"] == "active"

    # umm on's pre-on hook drains too; rebootmgr's abort phase undoes it (also idempotent)
    nova.boot("compute1", 1, prefix="h")
    task(nova, umm, UMM_TRANSITION="on", UMM_REASON="requested")
    svc = nova.services()["compute1"]
    assert svc["disabled_reason"].endswith(":umm on (requested)") and nova.servers("compute1") == []
    for _ in range(2):
        task(nova, umm, REBOOTMGR_PHASE="abort", REBOOTMGR_NODE="n1")
        assert nova.services()["compute1"]["status"] == "enabled"
    # a pre-off hook has nothing to do; anything else is a usage error
    p = task(nova, umm, UMM_TRANSITION="off")
    assert "nothing to do" in p.stdout
    task(nova, umm, check=2)
