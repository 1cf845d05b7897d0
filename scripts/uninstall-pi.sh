#!/usr/bin/env bash
# Removes what scripts/install-pi.sh installed.
#
#   sudo scripts/uninstall-pi.sh           # keeps /etc/matpi and /var/lib/matpi
#   sudo scripts/uninstall-pi.sh --purge   # also removes them and the matpi user
#
# Stopping the service ends a running session; its ExecStopPost switches every
# output off. The 1-wire and SPI lines in config.txt stay (other things may use
# them); apt packages stay too.
set -euo pipefail

PREFIX=/opt/matpi
CONFIG_DIR=/etc/matpi
STATE_DIR=/var/lib/matpi
UNIT=/etc/systemd/system/matpi.service
LINK=/usr/local/bin/matpi
SERVICE_USER=matpi

say() { printf 'matpi uninstall: %s\n' "$*"; }

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "$0"
}

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

if [[ $purge == yes ]]; then
    for dir in "$CONFIG_DIR" "$STATE_DIR"; do
        if [[ -d $dir ]]; then
            rm -rf "$dir"
            say "removed $dir"
        fi
    done
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then
        userdel "$SERVICE_USER"
        say "removed the user $SERVICE_USER"
    fi
else
    for dir in "$CONFIG_DIR" "$STATE_DIR"; do
        if [[ -d $dir ]]; then say "kept $dir (remove it with --purge)"; fi
    done
fi
say "done"
