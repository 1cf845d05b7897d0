#!/usr/bin/env bash
# Runs matpi as its real systemd service in a Debian 12 container, and checks it.
#
#   sudo scripts/test-systemd.sh        # or: sudo make test-systemd
#
# Needs root on Debian 12; not part of `make test` or CI. It installs debootstrap
# and systemd-container if missing, builds a bookworm root once (cached in
# $MATPI_SYSTEMD_ROOT, default ~/.cache/matpi-systemd/bookworm; delete it to
# rebuild) and boots a throwaway overlay of it with systemd-nspawn. Inside,
# scripts/install-pi.sh installs a snapshot of this working tree, and a drop-in
# runs the simulated mat in real time, its button pressed through a FIFO on
# stdin. Then it checks READY and STATUS=, the watchdog, safe-off, restarts, the
# history after a kill and after a stop, journal priorities, `systemd-analyze
# security`, a second install and uninstall --purge. Exits 1 if a check fails.

# Single-quoted on purpose: the conditions `result` evals, the scripts `sh -c` runs inside.
# shellcheck disable=SC2016
set -euo pipefail
export LC_ALL=C  # a "." in $EPOCHREALTIME and in awk's numbers
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${MATPI_SYSTEMD_ROOT:-$HOME/.cache/matpi-systemd/bookworm}
ROOT_STAMP=$ROOT.stamp
JOURNAL_COPY=$ROOT.last-journal.txt  # the unit's journal of the last run, to read after it
DEBIAN_MIRROR=${MATPI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What install-pi.sh installs from apt (present, its apt step has nothing to do), sqlite3
# to look into the history by hand, procps for kill and ps. A change rebuilds the root.
ROOT_PACKAGES=systemd,systemd-sysv,dbus,python3-venv,python3-dev,gcc,libc6-dev,sqlite3,ca-certificates,procps
ROOT_RECIPE="debootstrap --variant=minbase --include=$ROOT_PACKAGES bookworm $DEBIAN_MIRROR"

SRC_IN_CT=/root/matpi      # the snapshot of the working tree, inside
PRESS_FIFO=/run/matpi-press  # the simulated mat's stdin
OVERRIDE=/etc/systemd/system/matpi.service.d/override.conf
STATE_DIR=/var/lib/matpi
CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Every wait, in seconds.
BOOT_TIMEOUT_S=60       # the container up to multi-user.target
INSTALL_TIMEOUT_S=900   # install-pi.sh: apt-get update, a venv, pip
CMD_TIMEOUT_S=60        # any other command inside
STATE_TIMEOUT_S=5       # the mat reaching a state (StatusText, a state line) after a press
JOURNAL_TIMEOUT_S=5     # a line reaching the journal
RESTART_TIMEOUT_S=30    # a kill -> abort, safe-off, RestartSec=5s, READY again
SHUTDOWN_TIMEOUT_S=10   # systemd-nspawn gone once the container's init is killed
POLL_S=0.1
# What the service is held to.
READY_MAX_S=1           # systemctl start -> active
WATCHDOG_S=10           # the unit's WatchdogSec=
WATCHDOG_SLACK_S=1      # systemd's timer fires a little late
RUN_S=11                # how long a session runs before the kill or the stop: just before
                        # the 4 s checkpoint at 12 s, where a kill loses the most
KILL_ERROR_MAX_S=5      # the history after kill -9: one checkpoint lost at most
STOP_ERROR_MAX_S=1      # the history after systemctl stop
EXPOSURE_MAX=2.0        # systemd-analyze security

run_dir=
nspawn_pid=
ct_pid=
install_s=
session_started=  # set by run_a_session
failures=0
results=()
figure_names=()
figure_values=()
forward_env=()
pip_binds=()

say() { printf '\n==> %s\n' "$*"; }
die() { echo "test-systemd: $*" >&2; exit 1; }

# --- numbers and results -------------------------------------------------------------

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }  # from epoch A to B
plus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'; }
abs_diff() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; printf "%.2f", d < 0 ? -d : d }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
positive() { awk -v a="$1" 'BEGIN { exit !(a + 0 > 0) }'; }

sleep_until() {
    local left
    left=$(secs "$EPOCHREALTIME" "$1")
    if positive "$left"; then sleep "$left"; fi
}

# result ID TEXT CMD...: PASS when CMD succeeds; printed now and again in the summary.
result() {
    local id=$1 text=$2 verdict=PASS line
    shift 2
    "$@" || verdict=FAIL
    [[ $verdict == PASS ]] || failures=$((failures + 1))
    line=$(printf '%s  %-4s %s' "$verdict" "$id" "$text")
    results+=("$line")
    echo "$line"
}

figure() { figure_names+=("$1"); figure_values+=("${2:--}"); }

# --- the cached root and this run's overlay of it ------------------------------------

install_host_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
    [[ ${#missing[@]} -eq 0 ]] && return
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

# Built once; the stamp records how, so that another package list rebuilds it.
build_root() {
    if [[ -d $ROOT && -f $ROOT_STAMP && $(<"$ROOT_STAMP") == "$ROOT_RECIPE" ]]; then
        say "reusing the Debian 12 root $ROOT"
        return
    fi
    # Only a root this script built (it has a stamp) is ever removed.
    [[ ! -e $ROOT || -f $ROOT_STAMP ]] ||
        die "$ROOT exists but this script did not build it: remove it or set MATPI_SYSTEMD_ROOT"
    say "building a Debian 12 root in $ROOT (about a minute, once)"
    rm -rf "$ROOT" "$ROOT_STAMP" "$ROOT.partial"
    mkdir -p "$(dirname "$ROOT")"
    debootstrap --variant=minbase --include="$ROOT_PACKAGES" bookworm "$ROOT.partial" \
        "$DEBIAN_MIRROR"
    mv "$ROOT.partial" "$ROOT"
    echo "$ROOT_RECIPE" >"$ROOT_STAMP"
}

# The run writes into an overlay on the cached root, thrown away on exit: nothing one
# run does (install, history, journal) reaches the next.
mount_run_root() {
    run_dir=$(mktemp -d "${TMPDIR:-/tmp}/matpi-systemd.XXXXXX")
    mkdir "$run_dir/upper" "$run_dir/work" "$run_dir/root"
    mount -t overlay overlay \
        -o "lowerdir=$ROOT,upperdir=$run_dir/upper,workdir=$run_dir/work" "$run_dir/root"
}

# The working tree as a checkout has it (tracked and new files, no ignored ones). A
# snapshot: files edited while the test runs do not change what the second install sees.
copy_worktree() {
    local dest=$run_dir/root$SRC_IN_CT file
    mkdir -p "$dest"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' file; do
            if [[ -e $REPO/$file ]]; then printf '%s\0' "$file"; fi  # not deleted ones
        done |
        tar -C "$REPO" --null --files-from=- -cf - | tar -C "$dest" -xf -
}

# This machine's pip config, as "path here:path inside" lines.
pip_config_files() {
    local pair
    for pair in /etc/pip.conf:/etc/pip.conf /etc/xdg/pip:/etc/xdg/pip \
        "$HOME/.config/pip:/root/.config/pip" "$HOME/.pip:/root/.pip" \
        "${PIP_CONFIG_FILE:-/nonexistent}:${PIP_CONFIG_FILE:-/nonexistent}"; do
        if [[ -e ${pair%%:*} ]]; then echo "$pair"; fi
    done
}

# Absolute paths (file:// URLs included) that pip's config and PIP_* variables name; for
# a local index, the folder above its simple/ (whose pages link to files beside it).
pip_named_paths() {
    {
        local pair
        while IFS= read -r pair; do
            find "${pair%%:*}" -type f -exec cat {} +
        done < <(pip_config_files)
        printf '%s\n' "${forward_env[@]#*=}"
    } | tr ' \t=,' '\n' | sed -n 's#^file://##; s#/simple/*$##; \#^/#p' | sort -u
}

# So that pip inside reaches the package index pip reaches here: the CA bundle and the
# pip config are copied in, PIP_* and proxy variables passed on, and a path they name
# that the container lacks (a file:// index, find-links) is bound in read-only.
share_pip_setup() {
    local root=$run_dir/root pair name path
    if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    fi
    while IFS= read -r pair; do
        mkdir -p "$(dirname "$root${pair#*:}")"
        cp -a "${pair%%:*}" "$root${pair#*:}"
    done < <(pip_config_files)
    while IFS= read -r name; do
        forward_env+=("$name=${!name}")
    done < <(compgen -e | grep -E '^(PIP_[A-Z0-9_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)$')
    while IFS= read -r path; do
        if [[ -e $path && ! -e $root$path && $path != *:* ]]; then
            pip_binds+=("--bind-ro=$path")
        fi
    done < <(pip_named_paths)
}

# --- the container ---------------------------------------------------------------------

boot_container() {
    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 setsid systemd-nspawn -D "$run_dir/root" \
        --register=no --keep-unit -b --console=pipe --link-journal=no \
        --capability=CAP_BPF,CAP_PERFMON --system-call-filter=bpf \
        --machine=matpi-test "${pip_binds[@]}" </dev/null >"$run_dir/console.log" 2>&1 &
    nspawn_pid=$!
    wait_for "$BOOT_TIMEOUT_S" find_container_init ||
        die "no container init after $BOOT_TIMEOUT_S s: $(tail -n 20 "$run_dir/console.log")"
    # "degraded" (some unit of the minimal root failed) does not matter here: say which.
    if ! CMD_TIMEOUT_S=$BOOT_TIMEOUT_S in_ct systemctl is-system-running --wait >/dev/null; then
        echo "container booted $(in_ct systemctl is-system-running || true); failed units:"
        in_ct systemctl --failed --no-legend --no-pager || true
    fi
}

# The container's PID 1: nspawn's child, once it has become systemd.
find_container_init() {
    local child
    kill -0 "$nspawn_pid" 2>/dev/null ||
        die "systemd-nspawn exited: $(tail -n 20 "$run_dir/console.log")"
    child=$(pgrep -P "$nspawn_pid" | head -n 1) || return 1
    [[ $(cat "/proc/$child/comm" 2>/dev/null) == systemd ]] || return 1
    ct_pid=$child
}

# A command inside: all namespaces of the container's PID 1, a clean environment plus
# pip's. In the background and waited for, so that Ctrl-C reaches the trap at once.
in_ct() {
    timeout "$CMD_TIMEOUT_S" nsenter --target "$ct_pid" --all \
        env -i PATH="$CT_PATH" HOME=/root LANG=C.UTF-8 "${forward_env[@]}" "$@" </dev/null &
    wait "$!"
}

# On every exit, error and Ctrl-C included: the journal kept, the container killed, the
# overlay gone.
cleanup() {
    local i
    set +e
    trap - EXIT INT TERM
    if [[ -n $ct_pid ]]; then
        in_ct journalctl -u matpi -o short-precise --no-pager >"$JOURNAL_COPY" 2>&1
        kill -KILL "$ct_pid" 2>/dev/null  # PID 1 of its namespace: everything inside ends
    elif [[ -n $nspawn_pid ]]; then
        kill -TERM "$nspawn_pid" 2>/dev/null
    fi
    if [[ -n $nspawn_pid ]]; then
        for ((i = 0; i < SHUTDOWN_TIMEOUT_S * 10; i++)); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep "$POLL_S"
        done
        kill -KILL "$nspawn_pid" 2>/dev/null
        wait "$nspawn_pid" 2>/dev/null
    fi
    if [[ -n $run_dir ]]; then
        if mountpoint -q "$run_dir/root"; then umount "$run_dir/root"; fi
        rm -rf "$run_dir"
    fi
}

# --- waiting for and reading the service ---------------------------------------------------

# wait_for TIMEOUT CMD...: runs CMD until it succeeds; 1 after TIMEOUT seconds.
wait_for() {
    local timeout=$1 start=$EPOCHREALTIME
    shift
    until "$@"; do
        le "$(secs "$start" "$EPOCHREALTIME")" "$timeout" || return 1
        sleep "$POLL_S"
    done
}

status_text() { in_ct systemctl show -p StatusText --value matpi || true; }
main_pid() { in_ct systemctl show -p MainPID --value matpi || true; }
running_pid() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }  # not empty, not 0 (no main process)
status_is() { [[ $(status_text) == "$1"* ]]; }
status_is_either() { local s; s=$(status_text); [[ $s == "$1"* || $s == "$2"* ]]; }

# Active again, READY, under another MainPID than $1.
restarted_from() {
    local pid
    pid=$(main_pid)
    [[ $(in_ct systemctl is-active matpi || true) == active && $pid != "$1" ]] && running_pid "$pid"
}

# The unit's journal (systemd's lines about it, and its own) from epoch SINCE on, as
# "EPOCH HOST IDENTIFIER[PID]: MESSAGE" lines; journalctl options may follow.
journal_since() {
    local since=$1
    shift
    { in_ct journalctl -u matpi -o short-unix --no-pager -q "$@" || true; } |
        awk -v since="$since" '$1 ~ /^[0-9]+\.[0-9]+$/ && $1 + 0 >= since + 0'
}

# Epoch of the first (with "last": the last) line since SINCE that matches the ERE.
journal_time() {
    journal_since "$1" | awk -v re="$2" -v which="${3:-first}" '
        $0 ~ re { t = $1; if (which == "first") exit }
        END { if (t != "") print t }'
}

journal_has() { [[ -n $(journal_time "$1" "$2") ]]; }

# The service's own lines (not systemd's about it) since SINCE, their lowercase
# matching the ERE; journalctl options may follow.
own_lines() {
    local since=$1 pattern=$2
    shift 2
    journal_since "$since" "$@" | awk -v re="$pattern" '$3 ~ /^matpi\[/ && tolower($0) ~ re'
}

# The first line's message. sed reads to the end: head's early exit would be a SIGPIPE
# upstream, which pipefail turns into the end of the run.
message_of() { cut -d' ' -f4- | sed -n 1p; }

# The mat's state by the daemon's own state lines (console.py's describe(): the state
# padded, then the program), the newest one since SINCE: what a check that is not about
# STATUS= goes by.
mat_state() {
    own_lines "${1:-0}" '' | sed -nE 's/.*\] (idle|running|cooldown|fault|preheat)  .*/\1/p' |
        tail -n 1
}
state_is() { [[ $(mat_state "${2:-0}") == "$1" ]]; }

# A line for the simulated mat: press, double, long, fault NAME [off].
mat() { in_ct sh -c 'printf "%s\n" "$1" >"$2"' sh "$*" "$PRESS_FIFO"; }

# Presses at the mat and waits for the session; prints when it started (its journal line).
start_session() {
    local pressed=$EPOCHREALTIME
    mat press
    wait_for "$STATE_TIMEOUT_S" journal_has "$pressed" 'session started' || return 1
    journal_time "$pressed" 'session started'
}

seen_start() {
    if [[ -n $1 ]]; then echo "'session started' in the journal"; else echo "no 'session started' line"; fi
}

# The newest session of `matpi history --json` as ACTUAL_S DOSE END_REASON, read as the
# service's user as the README says.
last_session() {
    in_ct sh -c "runuser -u matpi -- matpi history --json --state-dir $STATE_DIR |
        python3 $SRC_IN_CT/tests/system/last_session.py" || true
}

# A session leaves a 10-min cooldown the next check will not wait out: a fresh history.
fresh_state() {
    local started
    echo "fresh state: stop matpi, remove $STATE_DIR/history*, start it again"
    in_ct systemctl stop matpi
    in_ct sh -c "rm -f $STATE_DIR/history*"
    in_ct systemctl reset-failed matpi  # StartLimitBurst=5 counts this test's starts too
    started=$EPOCHREALTIME
    in_ct systemctl start matpi || echo "systemctl start matpi failed"
    wait_for "$STATE_TIMEOUT_S" state_is idle "$started" ||
        echo "not idle: state line '$(mat_state "$started")'"
}

# --- setting up inside ----------------------------------------------------------------------

# install-pi.sh as a person runs it; its time in $install_s.
run_install() {
    local started=$EPOCHREALTIME status=0
    CMD_TIMEOUT_S=$INSTALL_TIMEOUT_S in_ct "$SRC_IN_CT/scripts/install-pi.sh" || status=$?
    install_s=$(secs "$started" "$EPOCHREALTIME")
    return "$status"
}

# The drop-in: the simulated mat in real time, its history where the real mat keeps it,
# stdin from a FIFO. Something must hold the FIFO open, or systemd's open of it blocks the
# start; a transient unit holding it read-write also means the service never reads EOF,
# and each restarted process reads the same FIFO.
simulate_in_service() {
    mkdir -p "$run_dir/root$(dirname "$OVERRIDE")"
    cat >"$run_dir/root$OVERRIDE" <<EOF
# Written by scripts/test-systemd.sh: the simulated mat, its button on stdin.
[Service]
ExecStart=
ExecStart=/opt/matpi/venv/bin/matpi run --simulate --config /etc/matpi/matpi.toml --state-dir $STATE_DIR --sim-stdin
StandardInput=file:$PRESS_FIFO
StandardOutput=journal
StandardError=journal
EOF
    in_ct mkfifo -m 0600 "$PRESS_FIFO"
    in_ct systemd-run --quiet --unit=matpi-press-fifo --property=Type=exec \
        /bin/sh -c "exec 3<>$PRESS_FIFO; exec sleep infinity"
    wait_for "$STATE_TIMEOUT_S" fifo_held || die "nothing holds $PRESS_FIFO open"
    mqtt_off
    in_ct systemctl daemon-reload
}

fifo_held() {
    local pid
    pid=$(in_ct systemctl show -p MainPID --value matpi-press-fifo || true)
    running_pid "$pid" && in_ct test -p "/proc/$pid/fd/3"
}

# The service must not depend on a broker: [mqtt] enabled = false.
mqtt_off() {
    local config=$run_dir/root/etc/matpi/matpi.toml
    if awk '/^\[/ { mqtt = /^\[mqtt\]/ } mqtt && /^[ \t]*enabled[ \t]*=[ \t]*true/ { on = 1 }
            END { exit !on }' "$config"; then
        sed -i '/^\[mqtt\]/,/^\[/ s/^\([ \t]*enabled[ \t]*=[ \t]*\)true/\1false/' "$config"
        echo "turned [mqtt] off in /etc/matpi/matpi.toml"
    else
        echo "[mqtt] is off in /etc/matpi/matpi.toml already"
    fi
}

# --- the checks -------------------------------------------------------------------------------

check_ready() {
    say "1. systemctl start: READY and STATUS="
    local started=$EPOCHREALTIME ready_s state status
    in_ct systemctl start matpi || true
    ready_s=$(secs "$started" "$EPOCHREALTIME")
    state=$(in_ct systemctl is-active matpi || true)
    figure "READY after systemctl start" "$ready_s s"
    result 1.1 "systemctl start -> $state after $ready_s s (limit $READY_MAX_S s)" \
        eval '[[ $state == active ]] && le "$ready_s" "$READY_MAX_S"'
    wait_for "$STATE_TIMEOUT_S" status_is idle || true
    status=$(status_text)
    result 1.2 "StatusText '$status' starts with 'idle'" eval '[[ $status == idle* ]]'
}

check_watchdog() {
    say "2. SIGSTOP: watchdog abort, safe-off, restart with a latched fault, reset at the mat"
    local started pid stopped abort safe_off up status heater_on
    started=$(start_session) || true
    wait_for "$STATE_TIMEOUT_S" status_is running || true
    status=$(status_text)
    result 2.1 "a press starts a session ($(seen_start "$started")), StatusText '$status'" \
        eval '[[ -n $started && $status == running* ]]'
    pid=$(main_pid)
    running_pid "$pid" || { result 2.2 "no MainPID to stop" false; return; }
    stopped=$EPOCHREALTIME
    in_ct kill -STOP "$pid"
    wait_for "$RESTART_TIMEOUT_S" restarted_from "$pid" || true
    abort=$(journal_time "$stopped" 'Watchdog timeout')
    if [[ -z $abort ]]; then
        result 2.2 "no watchdog abort within $RESTART_TIMEOUT_S s of SIGSTOP" false
        return
    fi
    figure "watchdog abort after SIGSTOP" "$(secs "$stopped" "$abort") s"
    result 2.2 "watchdog aborted matpi $(secs "$stopped" "$abort") s after SIGSTOP (limit $WATCHDOG_S s + $WATCHDOG_SLACK_S s)" \
        le "$(secs "$stopped" "$abort")" "$((WATCHDOG_S + WATCHDOG_SLACK_S))"
    safe_off=$(journal_time "$abort" 'safe-off:' last)
    figure "safe-off done after the abort" "${safe_off:+$(secs "$abort" "$safe_off") s}"
    result 2.3 "safe-off ran, its last line $(secs "$abort" "${safe_off:-$abort}") s after the abort" \
        test -n "$safe_off"
    up=$(journal_time "$abort" 'Started matpi')
    figure "restart after the abort (RestartSec=5s)" "${up:+$(secs "$abort" "$up") s}"
    wait_for "$STATE_TIMEOUT_S" status_is 'fault:' || true
    status=$(status_text)
    result 2.4 "active again $(secs "$abort" "${up:-$abort}") s after the abort, StatusText '$status' (state line: $(mat_state "$abort"))" \
        eval '[[ -n $up && $status == fault:* ]]'
    mat long
    wait_for "$STATE_TIMEOUT_S" status_is_either idle cooldown || true
    status=$(status_text)
    result 2.5 "a long press clears the fault: StatusText '$status' (state line: $(mat_state "$abort"))" \
        eval '[[ $status == idle* || $status == cooldown* ]]'
    heater_on=$(own_lines "$abort" 'heater on')
    result 2.6 "the heater stayed off after the abort: $(grep -c . <<<"$heater_on" || true) 'heater on' lines" \
        test -z "$heater_on"
}

# From idle (a fresh state if need be), a press starts a session that then runs RUN_S;
# reported as check CHECK. Sets session_started (its start time); false if none started.
# Not a $(...) function: result must count in this shell.
run_a_session() {
    local check=$1
    state_is idle || fresh_state
    session_started=$(start_session) || true
    result "$check" "a press starts a session ($(seen_start "$session_started")), StatusText '$(status_text)'" \
        test -n "$session_started"
    [[ -n $session_started ]] || return 1
    sleep_until "$(plus "$session_started" "$RUN_S")"
}

check_kill() {
    say "3. kill -9 mid-session: safe-off, restart in cooldown, the session in the history"
    local started pid killed safe_off up status session actual error pressed
    run_a_session 3.1 || return 0
    started=$session_started
    pid=$(main_pid)
    running_pid "$pid" || { result 3.2 "no MainPID to kill" false; return; }
    killed=$EPOCHREALTIME
    in_ct kill -KILL "$pid"
    wait_for "$RESTART_TIMEOUT_S" restarted_from "$pid" || true
    safe_off=$(journal_time "$killed" 'safe-off:' last)
    result 3.2 "safe-off ran, its last line $(secs "$killed" "${safe_off:-$killed}") s after the kill" \
        test -n "$safe_off"
    up=$(journal_time "$killed" 'Started matpi')
    figure "restart after kill -9" "${up:+$(secs "$killed" "$up") s}"
    wait_for "$STATE_TIMEOUT_S" status_is cooldown || true
    status=$(status_text)
    result 3.3 "active again $(secs "$killed" "${up:-$killed}") s after the kill, no resume: StatusText '$status' (state line: $(mat_state "$killed"))" \
        eval '[[ -n $up && $status == cooldown* ]]'
    session=$(last_session)
    actual=${session%% *}
    error=$(abs_diff "${actual:-0}" "$(secs "$started" "$killed")")
    figure "history error after kill -9" "${actual:+$error s}"
    result 3.4 "history '${session:-no session}': it ran $(secs "$started" "$killed") s, error $error s (limit $KILL_ERROR_MAX_S s)" \
        eval '[[ -n $actual ]] && le "$error" "$KILL_ERROR_MAX_S"'
    # Refused at the mat as from afar; check 5 reads the line's priority.
    pressed=$EPOCHREALTIME
    mat press
    wait_for "$JOURNAL_TIMEOUT_S" journal_has "$pressed" '[Rr]efused' || true
    result 3.5 "a press in cooldown: '$(own_lines "$pressed" refused | message_of)', state line: $(mat_state)" \
        eval '[[ -n $(own_lines "$pressed" refused) ]] && ! journal_has "$pressed" "session started"'
}

check_stop() {
    say "4. systemctl stop mid-session: the session in the history"
    local started stopped before session actual dose ended said source error
    run_a_session 4.1 || return 0
    started=$session_started
    before=$(status_text)
    stopped=$EPOCHREALTIME
    in_ct systemctl stop matpi || echo "systemctl stop matpi failed"
    echo "systemctl stop took $(secs "$stopped" "$EPOCHREALTIME") s, safe-off included"
    session=$(last_session)
    read -r actual dose _ <<<"$session" || true
    error=$(abs_diff "${actual:-0}" "$(secs "$started" "$stopped")")
    figure "history error after systemctl stop" "${actual:+$error s}"
    result 4.2 "history '${session:-no session}': it ran $(secs "$started" "$stopped") s, error $error s (limit $STOP_ERROR_MAX_S s)" \
        eval '[[ -n $actual ]] && le "$error" "$STOP_ERROR_MAX_S"'
    # The daemon's own figure: its "session ended" line if it wrote one, else its STATUS=.
    ended=$(own_lines "$stopped" 'session ended' | message_of)
    source="its StatusText before the stop"
    if [[ -n $ended ]]; then source="its line '$ended'"; fi
    said=$(grep -oE 'dose [0-9.]+' <<<"${ended:-$before}" | head -n 1 | cut -d' ' -f2 || true)
    # Not "above zero": 12 s on a pad at room temperature is some 1e-13 CEM43, which the
    # daemon rounds to 0.000 (about 39 °C would take 12 s to 0.001).
    result 4.3 "history dose ${dose:-none} CEM43, the daemon had ${said:-nothing} ($source)" \
        eval '[[ -n $dose ]] && same_as_shown "$dose" "$said"'
}

# True when EXACT rounds to SHOWN at SHOWN's decimals.
same_as_shown() {
    local exact=$1 shown=$2 decimals=
    [[ -n $shown ]] || return 1
    [[ $shown == *.* ]] && decimals=${shown#*.}
    [[ $(printf '%.*f' "${#decimals}" "$exact") == "$shown" ]]
}

check_journal() {
    say "5. journal priorities"
    local err warning
    # The watchdog's fault (check 2), not safe-off's pins that no container has.
    err=$(own_lines 0 'loop hung' -p err | message_of)
    result 5.1 "journalctl -u matpi -p err has matpi's line about the fault: '$err'" test -n "$err"
    warning=$(own_lines 0 refused -p warning | message_of)
    result 5.2 "journalctl -u matpi -p warning has a refused command: '$warning'" \
        test -n "$warning"
}

# Before check 6: uninstall --purge takes the unit away.
check_security() {
    say "7. systemd-analyze security matpi"
    local exposure
    exposure=$(in_ct systemd-analyze security --no-pager matpi |
        sed -n 's/.*Overall exposure level for matpi.service: \([0-9.]*\).*/\1/p' || true)
    figure "systemd-analyze security exposure" "$exposure"
    result 7 "overall exposure ${exposure:-unknown} (limit $EXPOSURE_MAX)" \
        eval '[[ -n $exposure ]] && le "$exposure" "$EXPOSURE_MAX"'
}

# What a second install must leave alone: config, unit, the venv's packages and files
# (pip rewrites its bytecode caches and install records on every install).
installed_fingerprint() {
    in_ct sh -c 'sha256sum /etc/matpi/matpi.toml /etc/systemd/system/matpi.service
        echo "$(/opt/matpi/venv/bin/pip list --format=freeze | sha256sum | cut -d" " -f1)  pip list"
        cd /opt/matpi/venv && echo "$(find . -type f ! -path "*/__pycache__/*" \
            ! -path "*.dist-info/RECORD" ! -path "*.dist-info/direct_url.json" -print0 |
            sort -z | xargs -0 sha256sum | sha256sum | cut -d" " -f1)  venv files"' || true
}

check_reinstall_and_purge() {
    say "6. install-pi.sh again, then uninstall-pi.sh --purge"
    local before after leftovers
    before=$(installed_fingerprint)
    run_install >"$run_dir/install2.log" 2>&1 || true
    cat "$run_dir/install2.log"
    after=$(installed_fingerprint)
    figure "second install-pi.sh" "$install_s s"
    diff <(echo "$before") <(echo "$after") || true
    result 6.1 "second install in $install_s s: said all was in place; config, unit and venv unchanged" \
        eval 'grep -q "everything else was in place already" "$run_dir/install2.log" &&
              [[ $before == "$after" ]]'
    in_ct "$SRC_IN_CT/scripts/uninstall-pi.sh" --purge || true
    leftovers=$(in_ct sh -c "
        for path in /opt/matpi /etc/matpi $STATE_DIR /etc/systemd/system/matpi.service \
            /etc/systemd/system/matpi.service.d /usr/local/bin/matpi; do
            if [ -e \$path ] || [ -L \$path ]; then echo \$path; fi
        done
        if getent passwd matpi >/dev/null; then echo 'user matpi'; fi
        if getent group matpi >/dev/null; then echo 'group matpi'; fi
        find / -xdev -path $SRC_IN_CT -prune -o -name '*matpi*' -print" | sort -u | paste -sd' ' || true)
    result 6.2 "uninstall-pi.sh --purge left: ${leftovers:-nothing}" test -z "$leftovers"
}

summary() {
    local i
    say "results"
    printf '%s\n' "${results[@]}"
    say "figures"
    for i in "${!figure_names[@]}"; do
        printf '  %-40s %s\n' "${figure_names[$i]}" "${figure_values[$i]}"
    done
    echo "the unit's journal of this run: $JOURNAL_COPY"
}

main() {
    [[ $EUID -eq 0 ]] || die "must run as root (it builds and boots a container): sudo $0"
    local started=$EPOCHREALTIME
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    install_host_tools
    build_root
    mount_run_root
    copy_worktree
    share_pip_setup
    say "booting the container"
    boot_container
    say "install-pi.sh"
    run_install || die "install-pi.sh failed"
    figure "first install-pi.sh" "$install_s s"
    simulate_in_service
    check_ready
    check_watchdog
    check_kill
    check_stop
    check_journal
    check_security
    check_reinstall_and_purge
    figure "whole run" "$(secs "$started" "$EPOCHREALTIME") s"
    summary
    [[ $failures -eq 0 ]] || die "$failures check(s) failed"
}

main "$@"
