"""pytest fixtures for the VM tests: the cached base, the images, throwaway VMs."""

from __future__ import annotations

import pytest

import vmlib


@pytest.fixture(scope="session")
def base():
    return vmlib.build_base()


@pytest.fixture(scope="session")
def plain_image(base):
    """The base rootfs as a disk, without umm (proves the harness on its own)."""
    return vmlib.build_image(base, "plain", install=False)


@pytest.fixture(scope="session")
def umm_image(base):
    """The base rootfs with this build's umm package installed (dpkg -i in a chroot)."""
    return vmlib.build_image(base, "umm", install=vmlib.install_requested())


@pytest.fixture
def make_vm(request, base):
    """make_vm(image) -> a fresh VM on its own overlay; qemu is killed at teardown, pass or fail."""
    vms: list[vmlib.VM] = []

    def make(image, suffix: str = ""):
        vm = vmlib.VM(base, image, request.node.name + suffix)
        vms.append(vm)
        return vm

    yield make
    for vm in vms:
        vm.kill()


@pytest.fixture
def plain_vm(make_vm, plain_image):
    return make_vm(plain_image)


@pytest.fixture
def umm_vm(make_vm, umm_image):
    return make_vm(umm_image)
