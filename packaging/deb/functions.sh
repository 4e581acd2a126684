# Shared by the maintainer scripts (scripts/deb.sh puts this text where each
# script says #FUNCTIONS#: postrm runs after the package's files are gone, so
# nothing can be sourced from the package).

# The units whose enablement the preset decides (dist/usr/lib/systemd/system-preset/50-umm.preset).
umm_units="umm-boot.service umm-stable.timer umm-coordination.service rebootmgr.timer rebootmgr.service"

umm_warn() {
    echo "umm: $*" >&2
}

# Regenerates the boot menu when GRUB is this machine's boot loader: into a new
# file first, moved over grub.cfg only when grub-mkconfig (which runs
# grub-script-check) succeeded, so a failure leaves the old menu whole.
umm_update_grub() {
    cfg=/boot/grub/grub.cfg
    command -v update-grub >/dev/null 2>&1 || return 0
    command -v grub-mkconfig >/dev/null 2>&1 || return 0
    [ -e "$cfg" ] || return 0
    if out=$(grub-mkconfig -o "$cfg.umm-new" 2>&1) && mv -f "$cfg.umm-new" "$cfg"; then
        return 0
    fi
    rm -f "$cfg.umm-new" "$cfg.umm-new.new"
    printf '%s\n' "$out" >&2
    umm_warn "updating the boot menu failed (above); $cfg is unchanged. Fix the error, then run update-grub."
}

# dracut is the initramfs tool when the dracut package is installed (it
# replaces initramfs-tools; the two cannot be installed together).
umm_dracut_is_the_tool() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' dracut 2>/dev/null)" = installed ] &&
        command -v dracut >/dev/null 2>&1
}

# The module the initramfs images were last built with by these scripts.
umm_dracut_stamp=/var/lib/umm/dracut-module.sum

umm_dracut_module_sum() {
    if [ -d /usr/lib/dracut/modules.d/90umm ]; then
        cat /usr/lib/dracut/modules.d/90umm/* | md5sum | cut -d' ' -f1
    else
        echo absent
    fi
}

# Rebuilds every initramfs when the umm dracut module differs from the one
# they were built with (added, changed, or removed) and dracut is the tool.
umm_update_initramfs() {
    umm_dracut_is_the_tool || return 0
    now=$(umm_dracut_module_sum)
    before=absent
    [ -r "$umm_dracut_stamp" ] && before=$(cat "$umm_dracut_stamp")
    [ "$now" != "$before" ] || return 0
    if dracut --regenerate-all --force >/dev/null 2>&1; then
        if [ "$now" = absent ]; then
            rm -f "$umm_dracut_stamp"
        elif [ -d "${umm_dracut_stamp%/*}" ]; then
            echo "$now" > "$umm_dracut_stamp"
        fi
    else
        umm_warn "rebuilding the initramfs failed; run 'dracut --regenerate-all --force' by hand."
    fi
}

umm_daemon_reload() {
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || umm_warn "systemctl daemon-reload failed"
    fi
}
