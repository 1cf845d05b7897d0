#!/usr/bin/env bash
# Removes what scripts/install-pi.sh installed.
#
#   sudo scripts/uninstall-pi.sh           # keeps your config, history and service settings
#   sudo scripts/uninstall-pi.sh --purge   # leaves nothing of matpi's behind
#
# Kept without --purge: /etc/matpi (the config), /var/lib/matpi (the history and
# the page's password) and /etc/systemd/system/matpi.service.d (`systemctl edit`).
#
# Stopping the service ends a running session; its ExecStopPost switches every
# output off. The block install-pi.sh wrote into config.txt (the outputs' levels
# at power-on) is removed; the 1-wire and SPI lines it added stay unless --purge
# (other things may use them). The apt packages and the journal's lines stay.
set -euo pipefail

PREFIX=/opt/matpi
CONFIG_DIR=/etc/matpi
STATE_DIR=/var/lib/matpi
UNIT=/etc/systemd/system/matpi.service
DROP_IN_DIR=/etc/systemd/system/matpi.service.d
LINK=/usr/local/bin/matpi
SERVICE_USER=matpi
# As written by scripts/install-pi.sh.
BOOT_BLOCK_BEGIN='# matpi: outputs off at power-on'
BOOT_BLOCK_END='# matpi end'
OVERLAY_BLOCK_BEGIN='# matpi: 1-wire (DS18B20 on GPIO4) and SPI (MCP3008 on SPI0)'
OVERLAY_BLOCK_END='# matpi: 1-wire and SPI end'

say() { printf 'matpi uninstall: %s\n' "$*"; }

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "$0"
}

# Removes the block between the lines BEGIN and END (by default the outputs' power-on
# levels) from FILE; prints "removed", "absent", or "refused" when its markers do not pair
# up (hand-edited: left for a person to fix).
remove_boot_block() {
    local file=$1 begin=${2:-$BOOT_BLOCK_BEGIN} end=${3:-$BOOT_BLOCK_END} new status=0
    BEGIN=$begin END=$end awk '
        { line = $0; sub(/\r$/, "", line); sub(/[ \t]+$/, "", line) }
        line == ENVIRON["BEGIN"] { if (inside) { bad = 1; exit } inside = 1; found = 1; next }
        line == ENVIRON["END"] { if (!inside) { bad = 1; exit } inside = 0 }
        END { exit (bad || inside) ? 1 : (found ? 0 : 2) }' "$file" || status=$?
    case $status in
        0) ;;
        2) echo absent; return ;;
        *) echo refused; return ;;
    esac
    new=$(mktemp "$file.matpi-XXXXXX")
    BEGIN=$begin END=$end awk '
        { line = $0; sub(/\r$/, "", line); sub(/[ \t]+$/, "", line) }
        line == ENVIRON["BEGIN"] { inside = 1; next }
        inside { if (line == ENVIRON["END"]) inside = 0; next }
        { print }' "$file" >"$new"
    chmod --reference="$file" "$new" 2>/dev/null || true  # FAT (/boot/firmware) has no modes
    mv -f "$new" "$file"
    sync
    echo removed
}

# Removes the block between the lines BEGIN and END from each boot config; WHAT names
# it in what is said.
remove_marked_block() {
    local what=$1 begin=$2 end=$3 config_txt
    for config_txt in /boot/firmware/config.txt /boot/config.txt; do
        [[ -f $config_txt ]] || continue
        case $(remove_boot_block "$config_txt" "$begin" "$end") in
            removed) say "removed $what from $config_txt (applies at the next boot)" ;;
            refused) say "$config_txt has '$begin' and '$end' lines that do not pair up: remove them by hand" ;;
            absent) ;;
            *) say "could not remove $what from $config_txt: remove the lines between '$begin' and '$end' by hand" ;;
        esac
    done
}

remove_boot_pins() {
    remove_marked_block "the outputs' power-on levels" "$BOOT_BLOCK_BEGIN" "$BOOT_BLOCK_END"
}

# The 1-wire and SPI lines install-pi.sh added to config.txt (only --purge: other things
# may use them).
remove_overlays() {
    remove_marked_block "the 1-wire and SPI lines matpi added" "$OVERLAY_BLOCK_BEGIN" \
        "$OVERLAY_BLOCK_END"
}

# Everything else of matpi's: config, history, `systemctl edit` settings, the 1-wire and
# SPI lines, the boot config's backup, the service user and its group.
purge_the_rest() {
    local path config_txt
    remove_overlays
    for path in "$CONFIG_DIR" "$STATE_DIR" "$DROP_IN_DIR"; do
        if [[ -e $path ]]; then
            rm -rf "$path"
            say "removed $path"
        fi
    done
    for config_txt in /boot/firmware/config.txt /boot/config.txt; do
        if [[ -e $config_txt.before-matpi ]]; then
            rm -f "$config_txt.before-matpi"
            say "removed $config_txt.before-matpi (the copy made before matpi's first change)"
        fi
    done
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        userdel "$SERVICE_USER"
        say "removed the user $SERVICE_USER"
    fi
    if getent group "$SERVICE_USER" >/dev/null; then
        groupdel "$SERVICE_USER"
        say "removed the group $SERVICE_USER"
    fi
    if [[ -d /run/systemd/system ]]; then systemctl daemon-reload; fi
}

main() {
    purge=no
    case "${1:-}" in
        --purge) purge=yes ;;
        -h | --help) usage; exit 0 ;;
        "") ;;
        *) usage >&2; exit 2 ;;
    esac

    if [[ $EUID -ne 0 ]]; then
        echo "matpi uninstall: needs root; run: sudo $0 $*" >&2
        exit 1
    fi

    if [[ -e $UNIT ]]; then
        if [[ -d /run/systemd/system ]]; then
            systemctl disable --now --quiet matpi || true
        else
            systemctl disable --quiet matpi || true
        fi
        rm -f "$UNIT"
        if [[ -d /run/systemd/system ]]; then
            systemctl daemon-reload
            systemctl reset-failed matpi 2>/dev/null || true
        fi
        say "stopped, disabled and removed the matpi service"
    fi

    if [[ "$(readlink "$LINK" 2>/dev/null)" == "$PREFIX/venv/bin/matpi" ]]; then
        rm -f "$LINK"
        say "removed $LINK"
    fi

    if [[ -d $PREFIX ]]; then
        rm -rf "$PREFIX"
        say "removed $PREFIX"
    fi

    remove_boot_pins
    if [[ $purge == yes ]]; then
        purge_the_rest
    else
        if [[ -d $CONFIG_DIR ]]; then say "kept your config in $CONFIG_DIR (remove it with --purge)"; fi
        if [[ -d $STATE_DIR ]]; then say "kept the history and the page's password in $STATE_DIR (remove them with --purge)"; fi
        if [[ -d $DROP_IN_DIR ]]; then say "kept your service settings in $DROP_IN_DIR (remove them with --purge)"; fi
    fi
    say "done"
}

# Sourced (the tests do, to run remove_boot_block on a scratch file) it only defines functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
