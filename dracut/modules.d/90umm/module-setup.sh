#!/bin/bash
# dracut module "umm": takes this boot's maintenance-mode decision in the
# initramfs, against the real root once it is mounted (pre-pivot), so that a
# boot that dies before the real root's own boot steps run is counted too.
# The decision reaches the real root in /run/umm/decision (dracut carries /run
# across switch_root); umm-generator and `umm boot record` there take it as
# this boot's decision instead of deciding again.
# Installed as /usr/lib/dracut/modules.d/90umm/. Rebuild with `dracut -f`.

# The decision maker: the generator binary (its --initrd-decide mode), which
# also holds the config and state readers.
umm_binary=/usr/lib/systemd/system-generators/umm-generator

check() {
    require_binaries "$umm_binary" || return 1
    return 0
}

depends() {
    return 0
}

install() {
    inst_binary "$umm_binary" /usr/sbin/umm-init
    # The decision reads the real root's config and state under /sysroot;
    # the vendor defaults go in too, for reference in the initramfs shell.
    [ -f /usr/lib/umm/umm.toml ] && inst_simple /usr/lib/umm/umm.toml
    inst_hook pre-pivot 90 "$moddir/umm-decide.sh"
}
