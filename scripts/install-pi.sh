#!/usr/bin/env bash
# Installs (or updates) matpi on a Raspberry Pi as the systemd service `matpi`.
#
#   sudo scripts/install-pi.sh                  # the page's password generated, shown once
#   sudo scripts/install-pi.sh --ask-password   # asks you for the page's password instead
#
# Safe to run again: every step checks first and only does what is missing, so
# running it after `git pull` is how matpi is updated. It never overwrites
# /etc/matpi/matpi.toml, never touches the history in /var/lib/matpi, and never
# restarts a running service (that would end a session): it tells you instead.
#
# It also writes `gpio=` lines into the Pi's config.txt (a block between
# "# matpi: outputs off at power-on" and "# matpi end") so that heater, power
# relay and motor pins sit at their off level from power-on, before Linux runs.
#
# The mat's page asks for a password (the example config's [web] password_file):
# when that file does not exist yet, a password is made (or asked for) and set.
set -euo pipefail

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/matpi
VENV=$PREFIX/venv
CONFIG=/etc/matpi/matpi.toml
STATE_DIR=/var/lib/matpi
UNIT=/etc/systemd/system/matpi.service
LINK=/usr/local/bin/matpi
SERVICE_USER=matpi
DEVICE_GROUPS=(gpio spi dialout)
APT_PACKAGES=(python3-venv python3-dev gcc)
# On Raspberry Pi OS the GPIO library comes from apt; the venv sees it.
OPTIONAL_APT_PACKAGES=(python3-lgpio)
# Must match scripts/uninstall-pi.sh, which removes the block again.
BOOT_BLOCK_BEGIN='# matpi: outputs off at power-on'
BOOT_BLOCK_END='# matpi end'
# The 1-wire and SPI lines matpi adds, in a block of their own: `uninstall-pi.sh --purge`
# removes them, a plain uninstall leaves them (other things may use them).
OVERLAY_BLOCK_BEGIN='# matpi: 1-wire (DS18B20 on GPIO4) and SPI (MCP3008 on SPI0)'
OVERLAY_BLOCK_END='# matpi: 1-wire and SPI end'

changes=0
notes=()
reboot_reasons=()
build_dir=

say() { printf 'matpi install: %s\n' "$*"; }
did() { changes=$((changes + 1)); say "$*"; }
note() { notes+=("$*"); }
cleanup() { if [[ -n $build_dir ]]; then rm -rf "$build_dir"; fi; }

usage() {
    sed -n '2,18s/^# \{0,1\}//p' "$0"
}

systemd_running() { [[ -d /run/systemd/system ]]; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

available() { [[ -n "$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)"')" ]]; }

apt_lists_present() { compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; }

# apt-get update only when something is to be installed: a missing required package, or a
# missing optional one that apt offers (or may offer: no package lists yet).
install_apt_packages() {
    local wanted=() optional=() package updated=no
    for package in "${APT_PACKAGES[@]}"; do
        installed "$package" || wanted+=("$package")
    done
    for package in "${OPTIONAL_APT_PACKAGES[@]}"; do
        installed "$package" || optional+=("$package")
    done
    if [[ ${#wanted[@]} -gt 0 ]] || { [[ ${#optional[@]} -gt 0 ]] && ! apt_lists_present; }; then
        apt-get update -qq
        updated=yes
    fi
    for package in "${optional[@]}"; do
        if available "$package"; then
            wanted+=("$package")
        else
            note "apt has no $package here (not Raspberry Pi OS?): on a Pi, pip then builds lgpio from source, which needs swig and liblgpio-dev"
        fi
    done
    [[ ${#wanted[@]} -eq 0 ]] && return
    if [[ $updated == no ]]; then apt-get update -qq; fi  # lists may be old: fetch before installing
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${wanted[@]}"
    did "installed apt packages: ${wanted[*]}"
}

create_user() {
    if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "matpi mat controller" "$SERVICE_USER"
        did "created system user $SERVICE_USER"
    fi
    local group
    for group in "${DEVICE_GROUPS[@]}"; do
        if ! getent group "$group" >/dev/null; then
            note "group $group does not exist (not Raspberry Pi OS?): $SERVICE_USER may not reach its devices"
        elif ! id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx "$group"; then
            usermod -a -G "$group" "$SERVICE_USER"
            did "added $SERVICE_USER to group $group"
        fi
    done
    if [[ ! -d $STATE_DIR ]]; then
        install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$STATE_DIR"
        did "created $STATE_DIR"
    fi
}

install_venv() {
    if [[ ! -x $VENV/bin/python ]]; then
        mkdir -p "$PREFIX"
        python3 -m venv --system-site-packages "$VENV"
        did "created the virtual environment $VENV"
    fi
    # Build from a clean copy: a build in the checkout would leave root-owned files there.
    build_dir=$(mktemp -d)
    tar -C "$SRC_DIR" --exclude='*.egg-info' --exclude='__pycache__' \
        -cf - pyproject.toml README.md src | tar -C "$build_dir" -xf -
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${build_dir}[pi]"
    say "installed matpi $("$VENV/bin/matpi" --version | cut -d' ' -f2) from $SRC_DIR into $VENV"
    if [[ "$(readlink "$LINK" 2>/dev/null)" != "$VENV/bin/matpi" ]]; then
        ln -sfn "$VENV/bin/matpi" "$LINK"
        did "linked $LINK"
    fi
}

install_config() {
    if [[ -e $CONFIG ]]; then
        say "kept your $CONFIG"
        return
    fi
    install -d -m 0755 "$(dirname "$CONFIG")"
    install -m 0640 -o root -g "$SERVICE_USER" "$SRC_DIR/config/matpi.toml" "$CONFIG"
    did "copied the example config to $CONFIG"
    note "edit $CONFIG for your wiring and sensor, then: matpi check-config $CONFIG"
}

install_unit() {
    if ! cmp -s "$SRC_DIR/systemd/matpi.service" "$UNIT"; then
        install -m 0644 "$SRC_DIR/systemd/matpi.service" "$UNIT"
        did "installed $UNIT"
        if systemd_running; then systemctl daemon-reload; fi
    fi
    if ! systemctl is-enabled --quiet matpi 2>/dev/null; then
        systemctl enable --quiet matpi
        did "enabled the matpi service (it starts at boot)"
    fi
}

boot_config() {
    local candidate
    for candidate in /boot/firmware/config.txt /boot/config.txt; do
        if [[ -f $candidate ]]; then
            echo "$candidate"
            return
        fi
    done
}

# Adds the 1-wire and SPI lines to FILE (config.txt; none off a Pi) where they are missing.
enable_overlays() {
    local config_txt=$1
    if [[ -z $config_txt ]]; then
        note "no /boot/firmware/config.txt: not a Raspberry Pi, 1-wire and SPI left alone"
        return
    fi
    # Our block holds what the rest of the file lacks; a line is there already when it is
    # active (not commented), with or without parameters.
    local outside wanted=() line block
    outside=$(BOOT_BLOCK_BEGIN=$OVERLAY_BLOCK_BEGIN BOOT_BLOCK_END=$OVERLAY_BLOCK_END \
                  boot_block_edit "$config_txt" "")
    grep -Eq '^[[:space:]]*dtoverlay=w1-gpio([,:]|[[:space:]]*$)' <<<"$outside" ||
        wanted+=("dtoverlay=w1-gpio")
    grep -Eq '^[[:space:]]*dtparam=spi=on' <<<"$outside" || wanted+=("dtparam=spi=on")
    if [[ ${#wanted[@]} -eq 0 ]]; then
        overlays_need_reboot
        return
    fi
    # [all]: lines after a model filter such as [pi4] would apply to that model only.
    block=$(printf '%s\n' "[all]" "${wanted[@]}")
    case $(BOOT_BLOCK_BEGIN=$OVERLAY_BLOCK_BEGIN BOOT_BLOCK_END=$OVERLAY_BLOCK_END \
               write_boot_block "$config_txt" "$block") in
        changed)
            for line in "${wanted[@]}"; do did "enabled $line in $config_txt"; done
            reboot_reasons+=("the 1-wire and SPI overlays")
            ;;
        unchanged) overlays_need_reboot ;;
        *) note "could not add ${wanted[*]} to $config_txt: add them by hand under [all]" ;;
    esac
}

# In config.txt but not in effect yet: the Pi has not rebooted since.
overlays_need_reboot() {
    if [[ ! -d /sys/bus/w1 ]] || ! compgen -G '/dev/spidev*' >/dev/null; then
        reboot_reasons+=("the 1-wire and SPI overlays")
    fi
}

# Exit status 0 when FILE holds no matpi block or only whole ones (each begin with its end).
boot_block_intact() {
    BEGIN=$BOOT_BLOCK_BEGIN END=$BOOT_BLOCK_END awk '
        { line = $0; sub(/\r$/, "", line); sub(/[ \t]+$/, "", line) }
        line == ENVIRON["BEGIN"] { if (inside) { bad = 1; exit } inside = 1; next }
        line == ENVIRON["END"] { if (!inside) { bad = 1; exit } inside = 0 }
        END { exit bad || inside }' "$1"
}

# Prints FILE with BLOCK (lines, newline-separated) between the markers, in place of the
# block it had, or appended when it had none; an empty BLOCK drops the block.
boot_block_edit() {
    BEGIN=$BOOT_BLOCK_BEGIN END=$BOOT_BLOCK_END BLOCK=$2 awk '
        function emit() {
            if (ENVIRON["BLOCK"] != "")
                printf "%s\n%s\n%s\n", ENVIRON["BEGIN"], ENVIRON["BLOCK"], ENVIRON["END"]
            done = 1
        }
        { line = $0; sub(/\r$/, "", line); sub(/[ \t]+$/, "", line) }
        line == ENVIRON["BEGIN"] { if (!done) emit(); inside = 1; next }
        inside { if (line == ENVIRON["END"]) inside = 0; next }
        { print }
        END { if (!done) emit() }' "$1"
}

# Writes BLOCK into FILE as the matpi block; prints "changed", "unchanged", or "refused"
# (markers not in pairs: hand-edited, so it is left for a person to fix).
write_boot_block() {
    local file=$1 block=$2 new
    if ! boot_block_intact "$file"; then
        echo refused
        return
    fi
    new=$(mktemp "$file.matpi-XXXXXX")
    if ! boot_block_edit "$file" "$block" >"$new"; then
        rm -f "$new"
        echo refused
        return
    fi
    if cmp -s "$new" "$file"; then
        rm -f "$new"
        echo unchanged
        return
    fi
    [[ -e $file.before-matpi ]] || cp -p "$file" "$file.before-matpi"
    chmod --reference="$file" "$new" 2>/dev/null || true  # FAT (/boot/firmware) has no modes
    mv -f "$new" "$file"
    sync  # the boot partition: a power cut now must not lose it
    echo changed
}

set_boot_pins() {
    local config_txt lines
    config_txt=$(boot_config)
    if [[ -z $config_txt ]]; then
        note "no /boot/firmware/config.txt or /boot/config.txt: the outputs' power-on levels are not set (on a Pi, put the lines of \`matpi boot-config\` into config.txt)"
        return
    fi
    # With a broken config it prints the default pins' lines and says so on stderr.
    if ! lines=$("$VENV/bin/matpi" boot-config --config "$CONFIG"); then
        note "matpi boot-config failed: the outputs' power-on levels in $config_txt are not set"
        return
    fi
    case $(write_boot_block "$config_txt" "$lines") in
        changed)
            did "set the outputs' power-on levels in $config_txt (see: matpi boot-config)"
            reboot_reasons+=("the outputs' power-on levels")
            ;;
        unchanged) ;;
        refused) note "$config_txt has '$BOOT_BLOCK_BEGIN' and '$BOOT_BLOCK_END' lines that do not pair up: remove them by hand, then run this again" ;;
        *) note "could not write the outputs' power-on levels into $config_txt; add the lines of \`matpi boot-config\` by hand" ;;
    esac
}

# Prints "ENABLED PASSWORD_FILE" of the config's [web] table ("-" for no file); fails when
# the config cannot be read.
web_settings() {
    "$VENV/bin/python" - "$CONFIG" <<'EOF'
import sys
from pathlib import Path
from matpi.config.load import load_config
web = load_config(Path(sys.argv[1])).web
print("yes" if web.enabled else "no", web.password_file or "-")
EOF
}

# A password for the page that reads well off a screen and types well on a phone:
# three groups of four lowercase letters and digits, without look-alikes (1, l, 0, o).
new_password() {
    "$VENV/bin/python" -c '
import secrets
alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
print("-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3)))'
}

set_web_password() {
    local settings enabled file password
    if ! settings=$(web_settings 2>/dev/null); then
        note "the page's password is not set: $CONFIG has problems (see: matpi check-config $CONFIG)"
        return
    fi
    read -r enabled file <<<"$settings"
    [[ $enabled == yes ]] || return 0
    if [[ $file == - ]]; then
        note "the mat's page asks for no password: anyone on your network can start a preheat and stop a session. To set one: add password_file = \"$STATE_DIR/web-password\" to [web] in $CONFIG, then: sudo -u $SERVICE_USER matpi web-password"
        return
    fi
    if [[ -s $file ]]; then
        say "kept the page's password in $file"
        return
    fi
    install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0750 "$(dirname "$file")"
    if [[ $ask_password == yes ]]; then
        runuser -u "$SERVICE_USER" -- "$VENV/bin/matpi" web-password --file "$file" </dev/tty
        did "set the page's password in $file"
        return
    fi
    password=$(new_password)
    printf '%s\n' "$password" |
        runuser -u "$SERVICE_USER" -- "$VENV/bin/matpi" web-password --file "$file" >/dev/null
    did "set the page's password in $file"
    note "the mat's page asks for this password: $password  (shown only now; write it down, or change it: sudo -u $SERVICE_USER matpi web-password). To use the page without a password, remove password_file from [web] in $CONFIG and restart matpi"
}

check_config() {
    if "$VENV/bin/matpi" check-config "$CONFIG" >/dev/null 2>&1; then
        say "$CONFIG: OK"
    else
        note "$CONFIG has problems; see: matpi check-config $CONFIG"
    fi
}

next_steps() {
    if [[ ${#reboot_reasons[@]} -gt 0 ]]; then
        local reasons
        reasons=$(printf '%s and ' "${reboot_reasons[@]}")
        note "reboot for ${reasons% and } to take effect: sudo reboot (matpi starts by itself)"
    elif systemd_running && systemctl is-active --quiet matpi; then
        note "matpi is running the previous version; restart when no session runs: sudo systemctl restart matpi"
    else
        note "start it: sudo systemctl start matpi; follow it: journalctl -u matpi -f"
    fi
}

main() {
    ask_password=no
    case "${1:-}" in
        -h | --help) usage; exit 0 ;;
        --ask-password) ask_password=yes ;;
        "") ;;
        *) usage >&2; exit 2 ;;
    esac
    if [[ $EUID -ne 0 ]]; then
        echo "matpi install: needs root; run: sudo $0" >&2
        exit 1
    fi
    trap cleanup EXIT

    install_apt_packages
    create_user
    install_venv
    install_config
    set_web_password
    install_unit
    enable_overlays "$(boot_config)"
    set_boot_pins
    check_config
    next_steps

    if [[ $changes -eq 0 ]]; then
        say "everything else was in place already"
    fi
    if [[ ${#notes[@]} -gt 0 ]]; then
        echo "Next:"
        printf '  - %s\n' "${notes[@]}"
    fi
}

# Sourced (the tests do, to run write_boot_block on a scratch file) it only defines functions.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
