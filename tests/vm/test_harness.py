"""Proves the harness itself on a plain image (no umm): boot, ssh, an unclean
(sysrq) reboot detected as a reboot with its one-boot kernel args, power-off
detected as such. Two boots: the clean reboot path is exercised by every umm
test (test_1 counts its boots), the systemd crash unit by the nspawn crash-loop
scenario (tests/fleet/test_scenarios_nspawn.py); the sysrq path here is the one
test_sysv_3_crash_loop relies on."""


def test_boot_ssh_sysrq_reboot_and_poweroff(plain_vm):
    vm = plain_vm
    t_ssh = vm.boot()
    vm.wait_active("multi-user.target")
    assert vm.is_active("demo-app.service") == "active"
    assert vm.is_active("ssh.service") == "active"
    assert vm.out("hostname") == "umm-vm"
    assert vm.out("ip -4 -o addr show dev eth0").count("inet ") == 1
    assert vm.out("cat /proc/sys/kernel/sysrq") == "1"
    assert "net.ifnames=0" in vm.out("cat /proc/cmdline")
    assert "umm-harness-probe" not in vm.out("cat /proc/cmdline")
    id1 = vm.boot_id()
    assert vm.boots == 1
    print(f"boot 1: ssh after {t_ssh:.1f} s; {vm.analyze_time()}")

    # An unclean reboot (no shutdown at all): qemu exits (-no-reboot), the driver
    # boots the same disk again, with kernel args for that boot.
    vm.out("echo survives > /root/marker && sync")
    vm.ssh_background("echo b > /proc/sysrq-trigger")
    vm.expect_reboot(extra_args="umm-harness-probe=1")
    vm.wait_ssh()
    id2 = vm.boot_id()
    assert vm.boots == 2
    assert id2 != id1
    assert vm.out("cat /root/marker") == "survives"
    assert "umm-harness-probe=1" in vm.out("cat /proc/cmdline")
    console1 = (vm.dir / "console-1.log").read_text()
    assert "sysrq: Resetting" in console1
    assert "reboot: Restarting system" not in console1
    vm.wait_active("multi-user.target")

    # Power off: qemu exits and the driver reports it as such (not as a reboot).
    vm.ssh_background("systemctl poweroff")
    assert vm.wait_exit() == "poweroff"
    assert not vm.running()
