#!/usr/bin/env bash
# The README's deploy section, run as written: "Deploying with systemd" by hand (default) or
# from the Debian package (--deb FILE), then its configure steps, then the daemon started the
# way the unit starts it, a document sent by the clerk, its seal checked with OpenSSL.
#
# It runs as root in a throw-away copy of this machine: an overlay of / (and of the
# checkout's own mount when that is another one) in new mount, network and PID namespaces, so
# the user it creates, the files it installs and the ports it binds vanish with it. No systemd
# runs there: `systemctl` is a shell function that starts a unit's ExecStart as the unit would
# (User, Group, UMask, the one ambient capability, a notify socket for READY) and checks that
# the timers it is asked to enable exist.
#
#   tests/deploy.sh [--bin PATH] [--deb FILE] [--keep]
#
#   --bin PATH   the binary the by-hand steps install in place of target/release/congvan
#                (.ci/run passes the debug build the suite just made)
#   --deb FILE   install from this package instead of by hand (packaging/deb.sh builds one)
#   --keep       keep the work directory (logs, the overlay's upper layer)
#
# Prints one `ok - ...` line per check and a `test result:` line as cargo does; exit 0 when
# every check passed.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true

REPO=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = "--inside" ]; then
  # ---- inside the new namespaces: mount the copy, then run the steps chrooted into it ----
  shift
  W=$1
  M=$W/root
  overlay() { # overlay SOURCE_MOUNT TARGET NAME
    mkdir -p "$W/$3.upper" "$W/$3.work" "$2"
    mount -t overlay overlay -o "lowerdir=$1,upperdir=$W/$3.upper,workdir=$W/$3.work" "$2"
  }
  overlay / "$M" root
  repo_mount=$(findmnt -n -o TARGET -T "$REPO")
  [ "$repo_mount" = / ] || overlay "$repo_mount" "$M$repo_mount" checkout
  mount -t proc proc "$M/proc"
  mount --rbind /dev "$M/dev"
  mount --rbind /sys "$M/sys"
  mount -t tmpfs tmpfs "$M/run"
  mkdir -p "$M/run/lock"
  mkdir -p "$W/out" "$M$W/out"
  mount --bind "$W/out" "$M$W/out"
  ip link set lo up
  exec chroot "$M" /bin/bash "$REPO/tests/deploy.sh" --chrooted "$W"
fi

if [ "${1:-}" = "--chrooted" ]; then
  # ---- the copy of the machine: the README's steps, then the checks ----
  W=$2
  O=$W/out   # bound to the real directory: what the checks leave survives the copy
  cd "$REPO"
  # shellcheck source=/dev/null
  . "$W/env"
  passed=0
  ok() { echo "ok - $*"; passed=$((passed + 1)); }
  fail() {
    echo "FAILED - $*"
    for f in "$O"/daemon.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
    exit 1
  }
  unit_file() {
    local d
    for d in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
      [ -f "$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
  }
  unit_key() { sed -n "s/^$2=//p" "$1" | tail -n 1; }
  # Runs a unit's ExecStart (with systemd's %% unescaped) as its User and Group, under its
  # UMask, with its Environment and, for the daemon, the notify socket and the capability.
  run_unit() { # run_unit UNIT [background]
    local f user group umask exec envs
    f=$(unit_file "$1") || { echo "systemctl: no unit $1" >&2; return 1; }
    user=$(unit_key "$f" User); group=$(unit_key "$f" Group)
    umask=$(unit_key "$f" UMask); exec=$(unit_key "$f" ExecStart | sed 's/%%/%/g')
    envs=$(unit_key "$f" Environment)
    local caps=()
    if grep -q '^AmbientCapabilities=CAP_NET_BIND_SERVICE' "$f"; then
      caps=(--inh-caps=+net_bind_service --ambient-caps=+net_bind_service)
    fi
    local cmd=(env $envs NOTIFY_SOCKET="$O/notify.sock"
      setpriv --reuid="$user" --regid="$group" --init-groups "${caps[@]}"
      -- /bin/bash -c "umask ${umask:-0022}; eval \"\$1\"" unit "$exec")
    if [ "${2:-}" = background ]; then
      "${cmd[@]}" > "$O/daemon.log" 2>&1 &
      echo $! > "$O/daemon.pid"
    else
      "${cmd[@]}" >> "$O/units.log" 2>&1
    fi
  }
  systemctl() {
    case "$1" in
      daemon-reload) return 0 ;;
      enable)
        shift
        [ "${1:-}" = --now ] && shift
        local u
        for u in "$@"; do
          case "$u" in
            *.timer)
              unit_file "$u" >/dev/null || { echo "systemctl: no unit $u" >&2; return 1; }
              unit_file "${u%.timer}.service" >/dev/null || { echo "systemctl: no unit ${u%.timer}.service" >&2; return 1; }
              echo "$u" >> "$O/timers" ;;
            *) run_unit "${u%.service}.service" background ;;
          esac
        done ;;
      *) echo "systemctl $*: not part of this test" >&2; return 1 ;;
    esac
  }
  export -f systemctl unit_file unit_key run_unit
  export W O

  # The office's files, in the current directory as the README says.
  cp "$W"/site/{fullchain.pem,key.pem,seal.p12,seal.pass,trust-anchors.pem,vanthu.pass} .
  # The editor: the test's upstream and inbox instead of the example's servers.
  cat > "$O/editor" <<'EDIT'
#!/bin/sh
sed -i -e 's|^upstream = .*|upstream = "outbox:/var/lib/congvan/outbox"|' \
       -e 's|^deliver_to = .*|deliver_to = "outbox:/var/lib/congvan/inbox"|' "$1"
EDIT
  chmod 755 "$O/editor"
  export EDITOR="$O/editor"

  # A notify socket, as systemd gives a Type=notify service.
  python3 - "$O/notify.sock" "$O/notify.log" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777)
with open(sys.argv[2], "a") as log:
    while True:
        log.write(s.recv(4096).decode(errors="replace") + "\n"); log.flush()
PY
  for _ in $(seq 50); do [ -S "$O/notify.sock" ] && break; sleep 0.1; done

  echo "== README steps (${MODE}), as root"
  set -x
  # shellcheck source=/dev/null
  . "$W/steps.sh"
  set +x
  ok "the README's ${MODE} and configure steps ran as written"

  for f in /usr/bin/congvan /etc/congvan/congvan.toml /etc/congvan/policies/default.toml; do
    [ -f "$f" ] || fail "$f is missing after the install steps"
  done
  getent passwd congvan >/dev/null || fail "no congvan user"
  ok "installed: binary, configuration, policies, the congvan user"

  for _ in $(seq 600); do
    grep -q '^READY=1' "$O/notify.log" 2>/dev/null && break
    kill -0 "$(cat "$O/daemon.pid")" 2>/dev/null || fail "the daemon exited before READY"
    sleep 0.1
  done
  grep -q '^READY=1' "$O/notify.log" || fail "no READY=1 on the notify socket within 60 s"
  pid=$(cat "$O/daemon.pid")
  daemon_user=$(ps -o user= -p "$(pgrep -u congvan -x congvan | head -n 1)" 2>/dev/null || true)
  [ "$daemon_user" = congvan ] || fail "the daemon does not run as congvan (pid $pid)"
  ok "the daemon runs as congvan and told the notify socket READY=1"

  echo "== a document from the clerk, over submission (STARTTLS, AUTH)"
  python3 - <<'PY' || fail "submission of the document"
import smtplib, ssl
ctx = ssl.create_default_context(cafile="trust-anchors.pem")
s = smtplib.SMTP("localhost", 587, timeout=60)
s.starttls(context=ctx)
s.login("vanthu", open("vanthu.pass").read().splitlines()[0])
msg = ("From: vanthu@hadong.hanoi.gov.vn\r\nTo: vanthu@so-noivu.gov.vn\r\n"
       "Subject: =?utf-8?b?S2nhur9tIHRyYSB0cmnhu4NuIGtoYWk=?=\r\n"
       "X-Congvan-Urgency: khan\r\nX-Congvan-Number: 12/UBND-VP\r\n"
       "X-Congvan-Signed-Date: 2026-11-27\r\nMIME-Version: 1.0\r\n"
       "Content-Type: text/plain; charset=utf-8\r\n\r\nNoi dung van ban.\r\n")
code, reply = s.docmd("MAIL FROM:<vanthu@hadong.hanoi.gov.vn>")
assert code == 250, (code, reply)
code, reply = s.docmd("RCPT TO:<vanthu@so-noivu.gov.vn>")
assert code == 250, (code, reply)
code, reply = s.data(msg.encode())
print("DATA:", code, reply.decode())
assert code == 250, (code, reply)
s.quit()
PY
  ok "the clerk's document got 250 over submission"

  eml=""
  for _ in $(seq 300); do
    eml=$(ls /var/lib/congvan/outbox/*.eml 2>/dev/null | head -n 1 || true)
    [ -n "$eml" ] && break
    sleep 0.1
  done
  [ -n "$eml" ] || fail "nothing delivered to the outbox within 30 s"
  openssl smime -verify -CAfile trust-anchors.pem -purpose smimesign -in "$eml" -out /dev/null \
    || fail "OpenSSL does not verify the seal of $eml"
  ok "delivered, and OpenSSL verifies the seal ($(basename "$eml"))"

  congvan register list --direction out --json | python3 -c '
import json, sys
rows = json.load(sys.stdin)
assert len(rows) == 1, rows
print("register:", rows[0].get("number"), rows[0].get("state"))' || fail "the outgoing register"
  ok "one entry in the outgoing register"

  for t in $(cat "$O/timers"); do
    run_unit "${t%.timer}.service" || fail "${t%.timer}.service (the work of $t) failed: $(tail -n 5 "$O/units.log")"
  done
  ls -d /var/backups/congvan/*/ >/dev/null 2>&1 || fail "congvan-backup.service made no backup"
  ok "the timers' services ran as congvan: $(tr '\n' ' ' < "$O/timers")"

  strangers=$(find /var/lib/congvan /var/backups/congvan ! -user congvan -printf '%p %u\n')
  [ -z "$strangers" ] || fail "files not owned by congvan: $strangers"
  ok "every file under /var/lib/congvan and /var/backups/congvan belongs to congvan"

  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "the daemon did not stop on SIGTERM within 10 s"
  ok "the daemon stopped on SIGTERM"
  echo "$passed" > "$O/passed"
  exit 0
fi

# ---- on the machine: arguments, the test PKI, the steps, then the namespaces ----
BIN="" DEB="" KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$(realpath "$2"); shift 2 ;;
    --deb) DEB=$(realpath "$2"); shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deploy.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "deploy.sh: needs root (it makes namespaces and an overlay of /)" >&2
  exit 1
fi
for tool in unshare setpriv chroot findmnt openssl python3 ip; do
  command -v "$tool" >/dev/null || { echo "deploy.sh: needs $tool" >&2; exit 1; }
done

mkdir -p "$REPO/target"
W=$(mktemp -d "$REPO/target/deploy.XXXXXX")
chmod 0755 "$W"
cleanup() { [ "$KEEP" = 1 ] && echo "kept $W" || rm -rf "$W"; }
trap cleanup EXIT
passed=0

# The unit's hardening, scored by systemd itself.
if command -v systemd-analyze >/dev/null; then
  score=$(systemd-analyze security --offline=true "$REPO/systemd/congvan.service" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for congvan.service: \([0-9.]*\).*/\1/p')
  [ -n "$score" ] || { echo "FAILED - systemd-analyze security gave no score"; exit 1; }
  python3 -c "import sys; sys.exit(0 if float('$score') <= 1.6 else 1)" \
    || { echo "FAILED - systemd-analyze security scores the unit $score (more than 1.6)"; exit 1; }
  echo "ok - systemd-analyze security scores congvan.service $score (at most 1.6)"
  passed=$((passed + 1))
fi

# The office's files: a fresh CA, the listeners' TLS certificate, the seal as PKCS#12.
S=$W/site
mkdir -p "$S"
(
  cd "$S"
  q() { "$@" >/dev/null 2>&1; }
  q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -out trust-anchors.pem -days 365 -subj "/C=VN/O=deploy test CA/CN=deploy test root" \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign"
  q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out tls.csr \
    -subj "/CN=gw.hadong.hanoi.gov.vn"
  printf 'subjectAltName=DNS:gw.hadong.hanoi.gov.vn,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' > tls.ext
  q openssl x509 -req -in tls.csr -CA trust-anchors.pem -CAkey ca.key -CAcreateserial -days 365 \
    -extfile tls.ext -out tls.pem
  cat tls.pem trust-anchors.pem > fullchain.pem
  q openssl req -newkey rsa:2048 -nodes -keyout seal.key -out seal.csr \
    -subj "/C=VN/O=UBND phuong Ha Dong/CN=UBND phuong Ha Dong"
  printf 'subjectAltName=email:vanthu@hadong.hanoi.gov.vn\nextendedKeyUsage=emailProtection\nkeyUsage=critical,digitalSignature,nonRepudiation\n' > seal.ext
  q openssl x509 -req -in seal.csr -CA trust-anchors.pem -CAkey ca.key -CAcreateserial -days 365 \
    -extfile seal.ext -out seal.pem
  echo "seal-password-$RANDOM$RANDOM" > seal.pass
  q openssl pkcs12 -export -inkey seal.key -in seal.pem -certfile trust-anchors.pem \
    -passout file:seal.pass -out seal.p12
  echo "clerk-password-$RANDOM$RANDOM" > vanthu.pass
  [ -s seal.p12 ] && [ -s fullchain.pem ]
) || { echo "FAILED - making the test PKI with openssl"; exit 1; }

# The README's blocks: the install (by hand or the package), then the configure steps.
block() { # the indented lines after <!-- deploy:NAME -->, up to the first unindented line
  awk -v mark="<!-- deploy:$1 -->" '
    $0 == mark { on = 1; next }
    on && /^    / { print substr($0, 5); seen = 1; next }
    on && seen && !/^    / { exit }' "$REPO/README.md"
}
if [ -n "$DEB" ]; then
  MODE=package
  block package | sed "s|\./target/debian/congvan_\*\.deb|$DEB|" > "$W/steps.sh"
else
  MODE=by-hand
  if [ -z "$BIN" ]; then
    [ -x "$REPO/target/release/congvan" ] || (cd "$REPO" && cargo build --release --locked)
    BIN=$REPO/target/release/congvan
  fi
  block by-hand | sed "s|target/release/congvan|$BIN|" > "$W/steps.sh"
fi
block configure >> "$W/steps.sh"
[ "$(grep -c . "$W/steps.sh")" -ge 8 ] || { echo "FAILED - the README's deploy blocks were not found"; cat "$W/steps.sh"; exit 1; }
printf 'MODE=%q\nexport MODE\n' "$MODE" > "$W/env"

unshare --mount --net --pid --fork --propagation private \
  /bin/bash "$REPO/tests/deploy.sh" --inside "$W" || { echo "test result: FAILED. $passed passed; 1 failed"; exit 1; }
inner=$(cat "$W/out/passed" 2>/dev/null || echo 0)
[ "$inner" -gt 0 ] || { echo "test result: FAILED. $passed passed; 1 failed (the checks inside left no count)"; exit 1; }
passed=$((passed + inner))
echo "test result: ok. $passed passed; 0 failed (tests/deploy.sh, $MODE)"
