"""Proves the harness itself on a plain image (no umm): boot, ssh, reboots counted."""


def test_boot_ssh_and_reboots(plain_vm):
    vm = plain_vm
    t_ssh = vm.boot()
    vm.wait_active("multi-user.target")
    assert vm.is_active("demo-app.service") == "active"
    assert vm.is_active("ssh.service") == "active"
    assert vm.out("hostname") == "umm-vm"
    assert vm.out("ip -4 -o addr show dev eth0").count("inet ") == 1
    assert vm.out("cat /proc/sys/kernel/sysrq") == "1"
    assert "net.ifnames=0" in vm.out("cat /proc/cmdline")
    id1 = vm.boot_id()
    assert vm.boots == 1
    print(f"boot 1: ssh after {t_ssh:.1f} s; {vm.analyze_time()}")

    # A clean reboot: qemu exits (-no-reboot), the driver boots the same disk again.
    vm.out("echo survives > /root/marker && sync")
    vm.ssh_background("systemctl reboot")
    vm.expect_reboot(extra_args="umm-harness-probe=1")
    vm.wait_ssh()
    id2 = vm.boot_id()
    assert vm.boots == 2
    assert id2 != id1
    assert vm.out("cat /root/marker") == "survives"
    cmdline = vm.out("cat /proc/cmdline")
    assert "umm-harness-probe=1" in cmdline
    assert "The system will reboot now" in (vm.dir / "console-1.log").read_text() or \
        "reboot: Restarting system" in (vm.dir / "console-1.log").read_text()

    # An unclean reboot (no shutdown at all) is detected the same way.
    vm.ssh_background("echo b > /proc/sysrq-trigger")
    vm.expect_reboot()
    vm.wait_ssh()
    id3 = vm.boot_id()
    assert vm.boots == 3
    assert id3 not in (id1, id2)
    assert "umm-harness-probe" not in vm.out("cat /proc/cmdline"), "extra args must last one boot only"
    console2 = (vm.dir / "console-2.log").read_text()
    assert "sysrq: Resetting" in console2
    assert "reboot: Restarting system" not in console2
    vm.wait_active("multi-user.target")

    # Power off: qemu exits and the driver reports it as such (not as a reboot).
    vm.out("systemctl enable umm-test-crash.service")
    vm.ssh_background("systemctl poweroff")
    assert vm.wait_exit() == "poweroff"
    assert not vm.running()

    # The crash unit of scenario 3 reboots uncleanly before sshd ever answers.
    vm.start()
    assert vm.wait_ssh_or_exit() == "exit"
    assert vm.boots == 4
    assert "umm-test-crash: sysrq reboot now" in vm.console_text()
    assert "sysrq: Resetting" in vm.console_text()
