#!/bin/sh
# dracut pre-pivot hook (sourced by dracut: no exit). Decides against the real
# root at $NEWROOT and writes /run/umm/decision; counts this boot in the real
# root's state when it is mounted writable. Never fails the boot.
if [ -x /usr/sbin/umm-init ]; then
    /usr/sbin/umm-init --initrd-decide "${NEWROOT:-/sysroot}" || :
fi
