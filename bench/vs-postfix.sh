#!/usr/bin/env bash
# bench/vs-postfix.sh: congvan next to a plain Postfix relay, the same load into the same sink.
#
# One smtp-sink on loopback is the common upstream. A private Postfix instance (its own
# config and queue directories in a temporary directory) relays to it and signs nothing;
# congvan (`serve`, relay listener, a signing identity for the sender's domain) seals every
# message and relays it to the same sink. smtp-source sends the same prepared message through
# each, alternating, for several rounds and sizes; each run gives the accepted rate (messages
# / smtp-source's wall time) and the end-to-end rate (messages / time until the sink has them
# all). See bench/README.md ("vs-postfix") and --help.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true

ROOT=$(cd "$(dirname "$0")/.." && pwd)

MESSAGES=2000
SESSIONS=20
SIZES="10k,100k"
ROUNDS=3
NODES=1
DATABASE_URL=""
PG_PORT=""
TIMEOUT=600
STALL=30
SHARED_SPOOL=0
BINARY="$ROOT/target/release/congvan"
KEY=rsa
CONCURRENCY=""
CONGVAN_LOG_FILTER=""
REUSE=1
CHECK=5
URGENT_EVERY=0.1
KEEP=0
INSTALL=1
WORK_PARENT=/tmp

usage() {
  cat <<EOF
Usage: bench/vs-postfix.sh [options]     (as root, Debian)

Sends the same messages with smtp-source through a private Postfix relay and through congvan
(which seals each one, S/MIME) into one smtp-sink, alternating postfix, congvan, postfix,
congvan... for each size and round, and prints the accepted and end-to-end rates of each and
congvan/postfix.

  --messages N          messages per run (default $MESSAGES)
  --sessions N          parallel SMTP sessions of smtp-source (default $SESSIONS)
  --sizes LIST          message sizes, comma-separated, bytes or with k/m (default $SIZES)
  --rounds N            rounds per size (default $ROUNDS)
  --timeout SECS        longest wait for the sink to have every message of a run (default $TIMEOUT)
  --stall SECS          stop waiting sooner when the sink got nothing for this long (default $STALL)
  --new-connection      one connection per message (smtp-source without -d); default: each
                        session sends its messages over one connection
  --key rsa|ec          the seal's key: RSA-2048 (default) or ECDSA P-256
  --concurrency N       congvan's [queue] concurrency (default: congvan's own, 32)
  --congvan-log FILTER  CONGVAN_LOG for the daemon (default: its own, info)
  --binary PATH         the congvan binary (default target/release/congvan; build it first)
  --urgent-every S      during each congvan run's load, one hỏa tốc document every S seconds
                        over its own connection (bench/urgent-probe.py); its time from 250 to
                        the upstream's reply (p50, p99, max) is printed with the run
                        (default $URGENT_EVERY; 0: none). Not counted in the rates.
  --check N             before measuring, send N messages through each and check that the
                        sink got them, congvan's multipart/signed (default $CHECK; 0: skip)
  --nodes N             also run congvan as N nodes sharing one PostgreSQL database (different
                        [queue] node_id and ports; smtp-source split across them) next to one
                        node on the same server: the systems are postfix, congvan (1 node) and
                        congvan xN, all on PostgreSQL for congvan
  --database-url URL    PostgreSQL server for congvan (postgres://user@host:port/db; each run
                        gets a fresh database on that server, made and dropped with psql).
                        With --nodes N>1 and no URL, a throw-away cluster is started on loopback
  --pg-port P           port of that throw-away cluster (default: a free one)
  --shared-spool        the N nodes' data_dir/spool are one directory (a symlink each), as
                        on a shared file system; default: each node its own, as SPEC.md's
                        "Several nodes on one PostgreSQL" has it
  --no-install          do not install Postfix (or PostgreSQL) when missing
  --keep                keep the work directory (logs, configurations, results.tsv)
  --work-parent DIR     where the work directory (both queues, congvan's database, spool
                        and archive) is made (default $WORK_PARENT). The file system matters:
                        on ext4 without a journal every file created scans the inodes
                        deleted in the last 30 s, which a queue deletes by the thousand
  -h, --help            this text

Prints one line per run as it goes, then a table per size: each round's accepted and
end-to-end rates (messages/s) for each system and the ratio congvan/postfix, and the min-max
of each over the rounds.
EOF
}

die() { echo "vs-postfix: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

size_bytes() {
  local s=${1,,}
  case $s in
    *k) echo $(( ${s%k} * 1024 )) ;;
    *m) echo $(( ${s%m} * 1024 * 1024 )) ;;
    *) echo $(( s )) ;;
  esac
}
size_label() {
  local b=$1
  if (( b % 1048576 == 0 )); then echo "$((b / 1048576)) MB"
  elif (( b % 1024 == 0 )); then echo "$((b / 1024)) KB"
  else echo "$b B"; fi
}

while (( $# )); do
  case $1 in
    --messages) MESSAGES=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --stall) STALL=$2; shift 2 ;;
    --shared-spool) SHARED_SPOOL=1; shift ;;
    --new-connection) REUSE=0; shift ;;
    --key) KEY=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    --congvan-log) CONGVAN_LOG_FILTER=$2; shift 2 ;;
    --binary) BINARY=$2; shift 2 ;;
    --check) CHECK=$2; shift 2 ;;
    --urgent-every) URGENT_EVERY=$2; shift 2 ;;
    --nodes) NODES=$2; shift 2 ;;
    --database-url) DATABASE_URL=$2; shift 2 ;;
    --pg-port) PG_PORT=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    --work-parent) WORK_PARENT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

for n in "$MESSAGES" "$SESSIONS" "$ROUNDS" "$NODES" "$TIMEOUT" "$STALL" "$CHECK"; do
  [[ $n =~ ^[0-9]+$ ]] || die "not a number: $n"
done
(( MESSAGES > 0 && SESSIONS > 0 && ROUNDS > 0 && NODES > 0 )) || die "--messages, --sessions, --rounds and --nodes must be positive"
[[ $KEY == rsa || $KEY == ec ]] || die "--key is rsa or ec"
SIZE_LIST=()
for s in ${SIZES//,/ }; do
  [[ ${s,,} =~ ^[0-9]+[km]?$ ]] || die "bad size: $s"
  SIZE_LIST+=("$(size_bytes "$s")")
done
(( ${#SIZE_LIST[@]} )) || die "no --sizes"
(( EUID == 0 )) || die "run as root (Postfix's master, smtp-sink's -u, the PostgreSQL cluster)"
[[ -x $BINARY ]] || die "no congvan binary at $BINARY: cargo build --release first (or --binary)"
BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")
if (( NODES > 1 )); then
  (( MESSAGES % NODES == 0 )) || die "--messages must be a multiple of --nodes"
  (( SESSIONS % NODES == 0 )) || die "--sessions must be a multiple of --nodes"
fi

# ---------------------------------------------------------------------------------------------
# Postfix (and PostgreSQL) when missing.

apt_install() {
  (( INSTALL )) || die "$* missing (and --no-install)"
  log "installing $*"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
if ! command -v postfix >/dev/null || [[ ! -x /usr/sbin/smtp-source || ! -x /usr/sbin/smtp-sink ]]; then
  apt_install postfix
fi
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
[[ -x $SMTP_SOURCE && -x $SMTP_SINK ]] || die "smtp-source/smtp-sink not found (package postfix)"
command -v openssl >/dev/null || apt_install openssl

START_PG=0
if (( NODES > 1 )) && [[ -z $DATABASE_URL ]]; then
  START_PG=1
  ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || apt_install postgresql
fi
if [[ -n $DATABASE_URL || $START_PG == 1 ]]; then
  command -v psql >/dev/null || apt_install postgresql-client
fi

# ---------------------------------------------------------------------------------------------
# Work directory, processes, cleanup.

W=$(mktemp -d "$WORK_PARENT/vs-postfix.XXXXXX")
chmod 755 "$W"   # Postfix's daemons, smtp-sink and PostgreSQL run as their own users
PIDS=()          # smtp-sink and congvan daemons we started
PF=$W/postfix
PF_STARTED=0
PGBIN=""
PGDATA=""

cleanup() {
  local rc=$?
  set +e
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null
  done
  if (( PF_STARTED )); then
    postfix -c "$PF/etc" stop >/dev/null 2>&1 || postfix -c "$PF/etc" abort >/dev/null 2>&1
  fi
  if [[ -n $PGDATA ]]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1
  fi
  if (( KEEP )); then
    echo "vs-postfix: work directory kept: $W" >&2
  else
    rm -rf "$W"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Listening ports come from below the kernel's ephemeral range: the runs open thousands of
# outgoing connections, and a port picked inside that range could be some connection's local
# port by the time the next run binds it ("Address already in use").
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[[ $EPHEMERAL_LOW =~ ^[0-9]+$ ]] && (( EPHEMERAL_LOW > 12000 )) || EPHEMERAL_LOW=32768
free_port() {
  local p
  while :; do
    p=$(( 10000 + RANDOM % (EPHEMERAL_LOW - 10000) ))
    if ! ss -Htln "sport = :$p" | grep -q . && [[ " ${USED_PORTS:-} " != *" $p "* ]]; then
      USED_PORTS="${USED_PORTS:-} $p"
      echo "$p"
      return
    fi
  done
}

wait_port() {   # wait_port PORT SECONDS
  local i
  for (( i = 0; i < $2 * 20; i++ )); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

now() { echo "$EPOCHREALTIME"; }

SINK_PORT=$(free_port)
PF_PORT=$(free_port)
CV_PORTS=()
for (( i = 1; i <= NODES; i++ )); do CV_PORTS+=("$(free_port)"); done

# ---------------------------------------------------------------------------------------------
# The sink: smtp-sink -c prints "sess=N quit=N mesg=N" and a CR on standard output each time a
# session ends, QUIT is received or a message ends ("."); the last mesg= is the count so far.

SINK_PID=""
start_sink() {   # start_sink [dump-dir]: a counting sink, or with -d one that keeps each message
  local out=$W/sink.out
  if [[ -n ${1:-} ]]; then
    mkdir -p "$1"; chown postfix "$1"
    "$SMTP_SINK" -u postfix -m 1000 -d "$1/%H%M%S." "127.0.0.1:$SINK_PORT" 1024 >"$W/sink-dump.log" 2>&1 &
  else
    : >"$out"
    "$SMTP_SINK" -u postfix -m 1000 -c "127.0.0.1:$SINK_PORT" 1024 >"$out" 2>"$W/sink.err" &
  fi
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  wait_port "$SINK_PORT" 10 || die "smtp-sink did not start: $(cat "$W/sink.err" "$W/sink-dump.log" 2>/dev/null)"
}
stop_sink() {
  kill "$SINK_PID" 2>/dev/null || true
  wait "$SINK_PID" 2>/dev/null || true
  SINK_PID=""
  local i
  for (( i = 0; i < 100; i++ )); do
    ss -Htln "sport = :$SINK_PORT" | grep -q . || return 0
    sleep 0.05
  done
}
sink_count() {
  local c
  c=$(tail -c 200 "$W/sink.out" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -n 1 || true)
  echo "${c#mesg=}" | sed 's/^$/0/'
}

# ---------------------------------------------------------------------------------------------
# The message: smtp-source -F sends a prepared header and body (appending CRLF to each line,
# dot-stuffing), the same file through Postfix and congvan. From and the envelope sender are
# in bench.gov.vn, the recipient in so-noivu.gov.vn: the shipped policy allows only gov.vn.
# No Date or Message-ID: each relay adds its own.

SENDER=vanthu@bench.gov.vn
RCPT=vanthu@so-noivu.gov.vn
make_message() {   # make_message BYTES FILE: about BYTES on the wire (CRLF lines)
  local bytes=$1 file=$2 head lines
  head=$(printf 'From: Van thu So Bench <%s>\nTo: <%s>\nSubject: Cong van so %s (bench)\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\nKinh gui So Noi vu,\n' \
    "$SENDER" "$RCPT" "$bytes")
  printf '%s\n' "$head" >"$file"
  # On the wire each line ends in CRLF: the header is ${#head} + 8 bytes, each body line 78.
  lines=$(( (bytes - ${#head} - 8) / 78 ))
  (( lines > 0 )) || lines=1
  awk -v n="$lines" 'BEGIN { for (i = 1; i <= n; i++) printf "%06d Noi dung van ban thu nghiem, dong %06d: abcdefghijklmnopqrstuvwxyz.\n", i, i }' >>"$file"
}

# ---------------------------------------------------------------------------------------------
# Postfix: a private instance, `postfix -c $PF/etc`, its own queue and data directories, smtpd
# on loopback, everything relayed to the sink. No chroot, no local delivery, no DNS.

start_postfix() {
  mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
  chown postfix "$PF/data"
  cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
mydomain = localdomain
myorigin = \$myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is off
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
relayhost = [127.0.0.1]:$SINK_PORT
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
message_size_limit = 104857600
default_process_limit = 200
smtputf8_enable = no
biff = no
append_dot_mydomain = no
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
EOF
  cat >"$PF/etc/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  postfix -c "$PF/etc" check >"$W/postfix-check.log" 2>&1 || die "postfix check: $(cat "$W/postfix-check.log")"
  postfix -c "$PF/etc" start >>"$W/postfix-check.log" 2>&1 || die "postfix start: $(cat "$W/postfix-check.log")"
  PF_STARTED=1
  wait_port "$PF_PORT" 20 || die "Postfix does not listen on $PF_PORT: $(tail -n 20 "$PF/maillog" 2>/dev/null)"
}
postfix_queued() {   # messages in the instance's queue
  find "$PF/spool/maildrop" "$PF/spool/incoming" "$PF/spool/active" "$PF/spool/deferred" \
    "$PF/spool/hold" -type f 2>/dev/null | wc -l
}
postfix_drain() {   # after a run: wait for an empty queue (flush what is deferred)
  local i q
  for (( i = 0; i < 600; i++ )); do
    q=$(postfix_queued)
    (( q == 0 )) && return 0
    (( i % 100 == 99 )) && postqueue -c "$PF/etc" -f 2>/dev/null
    sleep 0.1
  done
  echo "postfix: $q messages still queued after 60 s" >&2
  return 1
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL: a throw-away cluster as .ci/run makes it, or the server of --database-url. Each
# congvan run gets a new database there.

if (( START_PG )); then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PGDATA=$W/pg
  [[ -n $PG_PORT ]] || PG_PORT=$(free_port)
  mkdir -p "$PGDATA"; chown postgres: "$PGDATA"
  log "starting a throw-away PostgreSQL ($PGBIN) on 127.0.0.1:$PG_PORT"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/log" \
    -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
fi
PG_BASE=""
if [[ -n $DATABASE_URL ]]; then
  [[ $DATABASE_URL == postgres://* || $DATABASE_URL == postgresql://* ]] || die "--database-url: postgres://..."
  rest=${DATABASE_URL#*://}
  if [[ $rest == */* ]]; then PG_BASE="${DATABASE_URL%/*}"; else PG_BASE=$DATABASE_URL; fi
  psql "$DATABASE_URL" -qAtc 'select 1' >/dev/null || die "cannot reach $DATABASE_URL with psql"
fi
PG_DBS=()
pg_fresh_db() {   # pg_fresh_db NAME: prints the URL of a new, empty database NAME
  psql "$DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1 || true
  psql "$DATABASE_URL" -qAtc "CREATE DATABASE $1" >/dev/null
  PG_DBS+=("$1")
  echo "$PG_BASE/$1"
}
pg_drop_db() {
  psql "$DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# The seal: a throw-away CA and an emailProtection certificate for vanthu@bench.gov.vn.

make_pki() {
  local d=$W/pki newkey
  mkdir -p "$d"
  if [[ $KEY == rsa ]]; then newkey=(-newkey rsa:2048); else newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
  openssl req -x509 "${newkey[@]}" -nodes -keyout "$d/ca.key" -out "$d/ca.pem" -days 30 \
    -subj "/C=VN/O=congvan bench (throw-away)/CN=congvan bench CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req "${newkey[@]}" -nodes -keyout "$d/id.key" -out "$d/id.csr" \
    -subj "/C=VN/O=bench.gov.vn/CN=Van thu bench.gov.vn" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=emailProtection\nsubjectAltName=email:%s\n' \
    "$SENDER" >"$d/id.ext"
  openssl x509 -req -in "$d/id.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
    -extfile "$d/id.ext" -out "$d/id.pem" 2>/dev/null
  cat "$d/id.pem" "$d/ca.pem" >"$d/chain.pem"
}

# ---------------------------------------------------------------------------------------------
# congvan: each run on a fresh data directory (and database): N nodes, node K listening on
# CV_PORTS[K-1], all relaying to the sink. The identity is imported once per run, by node 1;
# the other nodes share its database (and read its key file, whose path the database holds).

CV_PIDS=()
CV_DIRS=()
CV_DBS=()
CV_RUN=0
start_congvan() {   # start_congvan NODES
  local n=$1 k d db url
  CV_RUN=$(( CV_RUN + 1 ))
  CV_PIDS=(); CV_DIRS=(); CV_DBS=()
  if [[ -n $DATABASE_URL ]]; then
    db="vsp_run_${CV_RUN}_$$"
    url=$(pg_fresh_db "$db")
    CV_DBS+=("$db")
  fi
  for (( k = 1; k <= n; k++ )); do
    d=$W/congvan/run$CV_RUN/node$k
    mkdir -p "$d"
    if (( SHARED_SPOOL && n > 1 )); then
      mkdir -p "$W/congvan/run$CV_RUN/spool"
      ln -s "$W/congvan/run$CV_RUN/spool" "$d/spool"
    fi
    [[ -n $DATABASE_URL ]] || url="sqlite://$d/congvan.db"
    cat >"$d/congvan.toml" <<EOF
hostname = "gw$k.bench.gov.vn"
data_dir = "$d"
database_url = "$url"
policy_dir = "$W/policies"

[[listener]]
role = "relay"
bind = "127.0.0.1:${CV_PORTS[k-1]}"
trusted_networks = ["127.0.0.0/8"]

[outbound]
upstream = "smtp://127.0.0.1:$SINK_PORT"
tls = "none"

[inbound]
deliver_to = "outbox:$d/inbox"

[queue]
node_id = "node$k"
${CONCURRENCY:+concurrency = $CONCURRENCY}
EOF
    CV_DIRS+=("$d")
  done
  "$BINARY" --config "${CV_DIRS[0]}/congvan.toml" cert import --cert "$W/pki/chain.pem" \
    --key "$W/pki/id.key" --domain bench.gov.vn >"${CV_DIRS[0]}/cert-import.log" 2>&1 ||
    die "congvan cert import: $(cat "${CV_DIRS[0]}/cert-import.log")"
  for (( k = 1; k <= n; k++ )); do
    d=${CV_DIRS[k-1]}
    if [[ -n $CONGVAN_LOG_FILTER ]]; then
      CONGVAN_LOG=$CONGVAN_LOG_FILTER "$BINARY" --config "$d/congvan.toml" serve >"$d/serve.log" 2>&1 &
    else
      "$BINARY" --config "$d/congvan.toml" serve >"$d/serve.log" 2>&1 &
    fi
    CV_PIDS+=($!)
    PIDS+=($!)
  done
  for (( k = 1; k <= n; k++ )); do
    wait_port "${CV_PORTS[k-1]}" 30 || die "congvan node $k did not start: $(tail -n 20 "${CV_DIRS[k-1]}/serve.log")"
  done
}
CV_STATUS=""
stop_congvan() {   # stops the nodes; sets CV_STATUS to "queued=N warnings=N errors=N"
  local p d q=0 warn=0 err=0 c
  for p in "${CV_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${CV_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  local keep=()
  for p in "${PIDS[@]}"; do [[ " ${CV_PIDS[*]} " == *" $p "* ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
  c=$("$BINARY" --config "${CV_DIRS[0]}/congvan.toml" queue list --json 2>/dev/null | grep -o '"id"' | wc -l || true)
  q=$(( q + c ))
  for d in "${CV_DIRS[@]}"; do
    c=$(grep -c -E '(^|[[:space:]])WARN([[:space:]]|$)|"level":"WARN"' "$d/serve.log" || true)
    warn=$(( warn + c ))
    c=$(grep -c -E '(^|[[:space:]])ERROR([[:space:]]|$)|"level":"ERROR"' "$d/serve.log" || true)
    err=$(( err + c ))
  done
  CV_STATUS="queued=$q warnings=$warn errors=$err"
}
finish_congvan_run() {   # logs kept under $W; the database dropped, the spool removed
  local d db
  for db in "${CV_DBS[@]}"; do pg_drop_db "$db"; done
  rm -rf "$W/congvan/run$CV_RUN/spool"
  for d in "${CV_DIRS[@]}"; do rm -rf "$d/spool" "$d/archive" "$d/congvan.db" "$d/congvan.db-wal" "$d/congvan.db-shm"; done
}

# ---------------------------------------------------------------------------------------------
# One run: smtp-source (split over the ports when there are several nodes), then wait for the
# sink to have them all.

RESULTS=$W/results.tsv
: >"$RESULTS"

run_source() {   # run_source MSGFILE COUNT SESSIONS PORT LOG
  local reuse=()
  (( REUSE )) && reuse=(-d)
  "$SMTP_SOURCE" "${reuse[@]}" -s "$3" -m "$2" -M bench.gov.vn -f "$SENDER" -t "$RCPT" \
    -F "$1" "127.0.0.1:$4" >"$5" 2>&1
}

cpu_busy() {   # jiffies the whole machine has been busy (user, nice, system, irq, softirq)
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat
}
cpu_of() {   # jiffies used by the given processes (user + system)
  local p t=0
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] && t=$(( t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }') ))
  done
  echo "$t"
}

measure() {   # measure SYSTEM SIZE ROUND MSGFILE: appends a row to $RESULTS
  local sys=$1 size=$2 round=$3 msg=$4 ports=() pids=() k rc=0 base t0 t1 t2 got status=ok extra=""
  case $sys in
    postfix) ports=("$PF_PORT") ;;
    congvan) start_congvan 1; ports=("${CV_PORTS[0]}") ;;
    congvanx*) start_congvan "$NODES"; ports=("${CV_PORTS[@]}") ;;
  esac
  local n=${#ports[@]}
  local per=$(( MESSAGES / n )) sess=$(( SESSIONS / n ))
  base=$(sink_count)
  local pflog0
  pflog0=$(wc -l <"$PF/maillog" 2>/dev/null || echo 0)
  local logs=$W/runs/$sys-$size-$round
  mkdir -p "$logs"
  local busy0 hz
  hz=$(getconf CLK_TCK)
  busy0=$(cpu_busy)
  t0=$(now)
  for (( k = 0; k < n; k++ )); do
    run_source "$msg" "$per" "$sess" "${ports[k]}" "$logs/source$k.log" &
    pids+=($!)
  done
  local probe="" probes=0
  if [[ $sys != postfix ]] && awk -v e="$URGENT_EVERY" 'BEGIN { exit !(e > 0) }'; then
    python3 "$ROOT/bench/urgent-probe.py" send --port "${ports[0]}" --from "$SENDER" --to "$RCPT" \
      --ids "$logs/urgent.ids" --stop "$logs/urgent.stop" --every "$URGENT_EVERY" 2>"$logs/urgent.log" &
    probe=$!
  fi
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  t1=$(now)
  if [[ -n $probe ]]; then
    touch "$logs/urgent.stop"
    wait "$probe" || true
    probes=$(wc -l <"$logs/urgent.ids" 2>/dev/null || echo 0)
  fi
  if (( rc != 0 )); then
    status="smtp-source-failed"
    echo "  $sys: smtp-source failed: $(tail -n 3 "$logs"/source*.log | tr '\n' ' ')" >&2
  fi
  local want=$(( base + per * n + probes )) deadline last=-1 last_at=$EPOCHSECONDS last_t=$t1
  deadline=$(awk -v t="$t0" -v s="$TIMEOUT" 'BEGIN { printf "%.0f", t + s }')
  while :; do
    got=$(sink_count)
    (( got >= want )) && break
    if (( EPOCHSECONDS >= deadline )); then status="timeout"; break; fi
    if (( got != last )); then last=$got; last_at=$EPOCHSECONDS; last_t=$EPOCHREALTIME
    elif (( EPOCHSECONDS - last_at >= STALL )); then status="stalled"; break; fi
    [[ $status == ok ]] || { sleep 2; got=$(sink_count); break; }
    sleep 0.05
  done
  t2=$(now)
  # CPU per message: the whole machine's (load generator and sink included, the same for
  # both systems) and, for congvan, the daemon's own.
  local cpu
  cpu="cpu=$(awk -v b="$(( $(cpu_busy) - busy0 ))" -v hz="$hz" -v m="$(( per * n ))" 'BEGIN { printf "%.2f", b / hz * 1000 / m }')ms/msg"
  [[ $sys == postfix ]] || cpu="$cpu congvan_cpu=$(awk -v b="$(cpu_of "${CV_PIDS[@]}")" -v hz="$hz" -v m="$(( per * n ))" 'BEGIN { printf "%.2f", b / hz * 1000 / m }')ms/msg"
  [[ $status != stalled ]] || t2=$last_t   # the rate of what arrived, without the wait
  got=$(( got - base - probes ))
  case $sys in
    postfix)
      postfix_drain || status="${status}+queue-left"
      tail -n +"$(( pflog0 + 1 ))" "$PF/maillog" >"$logs/maillog"
      extra="$cpu deferred=$(grep -c 'status=deferred' "$logs/maillog" || true) bounced=$(grep -c 'status=bounced' "$logs/maillog" || true) warnings=$(grep -c -E 'warning:|fatal:|panic:' "$logs/maillog" || true)"
      ;;
    *)
      stop_congvan
      extra="$cpu $CV_STATUS"
      for (( k = 0; k < ${#CV_DIRS[@]}; k++ )); do cp "${CV_DIRS[k]}/serve.log" "$logs/serve-node$((k + 1)).log"; done
      if [[ -n $probe ]]; then
        extra="$extra $(python3 "$ROOT/bench/urgent-probe.py" analyse --ids "$logs/urgent.ids" "$logs"/serve-node*.log)"
      fi
      finish_congvan_run
      ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$round" "$sys" "$(( per * n ))" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
    "$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')" "$got" "$status" "$extra" >>"$RESULTS"
  awk -F'\t' -v lbl="$(size_label "$size")" 'END {
    printf "  %-6s round %s  %-10s accepted %7.1f msg/s (%.2f s)  end-to-end %7.1f msg/s (%.2f s, %d at the sink)  %s %s\n",
      lbl, $2, $3, $4 / $5, $5, $7 / $6, $6, $7, $8, $9 }' "$RESULTS" >&2
}

# ---------------------------------------------------------------------------------------------

SYSTEMS=(postfix congvan)
(( NODES > 1 )) && SYSTEMS+=("congvanx$NODES")

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "work directory $W; sink 127.0.0.1:$SINK_PORT, Postfix 127.0.0.1:$PF_PORT, congvan ${CV_PORTS[*]}"
mkdir -p "$W/policies"
cp -r "$ROOT/policies/." "$W/policies/"
make_pki
start_postfix
for s in "${SIZE_LIST[@]}"; do make_message "$s" "$W/msg-$s.txt"; done

if (( CHECK > 0 )); then
  # Sanity check: a sink that keeps every message, CHECK messages through each system.
  log "check: $CHECK messages through each of ${SYSTEMS[*]}"
  start_sink "$W/check"
  check_msg=$W/msg-${SIZE_LIST[0]}.txt
  for sys in "${SYSTEMS[@]}"; do
    case $sys in
      postfix) port=$PF_PORT ;;
      congvan) start_congvan 1; port=${CV_PORTS[0]} ;;
      congvanx*) start_congvan "$NODES"; port=${CV_PORTS[1]} ;;
    esac
    before=$(find "$W/check" -type f | wc -l)
    run_source "$check_msg" "$CHECK" 1 "$port" "$W/check-$sys.log" ||
      die "check: smtp-source through $sys failed: $(cat "$W/check-$sys.log")"
    for (( i = 0; i < 600; i++ )); do
      (( $(find "$W/check" -type f | wc -l) >= before + CHECK )) && break
      sleep 0.05
    done
    got=$(( $(find "$W/check" -type f | wc -l) - before ))
    if (( got < CHECK )); then
      [[ $sys == congvanx* ]] || die "check: the sink got $got of $CHECK messages through $sys"
      echo "  check: the sink got $got of $CHECK messages through $sys (measuring anyway)" >&2
    fi
    if [[ $sys != postfix ]]; then
      stop_congvan
      echo "  $sys: $CV_STATUS" >&2
      finish_congvan_run
    fi
  done
  sleep 0.5
  stop_sink
  pf_n=$(grep -l '^X-Helo-Args: postfix-bench' "$W"/check/* | wc -l)
  cv_files=$(grep -l '^X-Helo-Args: gw[0-9]*\.bench\.gov\.vn' "$W"/check/* || true)
  cv_n=$(echo "$cv_files" | grep -c . || true)
  signed_n=$(echo "$cv_files" | xargs -r grep -l -i '^Content-Type: multipart/signed' | wc -l)
  echo "  sink got $pf_n from Postfix, $cv_n from congvan, of which $signed_n multipart/signed" >&2
  (( signed_n == cv_n && cv_n > 0 )) || die "check: congvan's messages are not all multipart/signed"
  # openssl verifies one (the sink's own header lines, up to its Received field, cut off).
  one=$(echo "$cv_files" | head -n 1)
  awk 'done { print; next } /^Received:/ { r = 1; next } r && /^[ \t]/ { next } r { done = 1; print }' "$one" >"$W/check-one.eml"
  if openssl smime -verify -CAfile "$W/pki/ca.pem" -purpose smimesign -in "$W/check-one.eml" -out /dev/null 2>"$W/check-verify.log"; then
    echo "  openssl smime -verify: the seal verifies" >&2
  else
    echo "  openssl smime -verify FAILED: $(cat "$W/check-verify.log")" >&2
  fi
fi

start_sink

for s in "${SIZE_LIST[@]}"; do
  for (( r = 1; r <= ROUNDS; r++ )); do
    for sys in "${SYSTEMS[@]}"; do
      measure "$sys" "$s" "$r" "$W/msg-$s.txt"
    done
  done
done

# ---------------------------------------------------------------------------------------------
# The table.

{
  echo
  echo "vs-postfix: $MESSAGES messages per run, $SESSIONS smtp-source sessions$( (( REUSE )) || echo ", a connection per message"), $ROUNDS rounds, $(nproc) cores, congvan seal ${KEY^^}$( [[ $KEY == rsa ]] && echo -2048 || echo " P-256"), database $( [[ -n $DATABASE_URL ]] && echo PostgreSQL || echo SQLite)$( (( NODES > 1 )) && echo ", congvanx$NODES: $NODES nodes on one database")"
  echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rates in messages/s: acc = accepted (messages / smtp-source's wall time), e2e = end to end (until the sink has them all)"
  awk -F'\t' -v systems="${SYSTEMS[*]}" '
    function lbl(b) { return b % 1048576 == 0 ? b / 1048576 " MB" : (b % 1024 == 0 ? b / 1024 " KB" : b " B") }
    function mm(key,  v) { return sprintf("%.0f-%.0f", lo[key], hi[key]) }
    function mmr(key) { return sprintf("%.2f-%.2f", lo[key], hi[key]) }
    function note(key, v) { if (!(key in lo) || v < lo[key]) lo[key] = v; if (!(key in hi) || v > hi[key]) hi[key] = v }
    BEGIN { ns = split(systems, S, " ") }
    {
      acc[$1, $2, $3] = $4 / $5; e2e[$1, $2, $3] = $7 / $6; st[$1, $2, $3] = $8
      if (!($1 in seen)) { seen[$1] = 1; sizes[++nsz] = $1 }
      if ($2 > maxr) maxr = $2
    }
    END {
      for (z = 1; z <= nsz; z++) {
        sz = sizes[z]
        printf "\n%s\n", lbl(sz)
        printf "%-7s", "round"
        for (i = 1; i <= ns; i++) printf " %21s", S[i] " acc/e2e"
        for (i = 2; i <= ns; i++) printf " %23s", S[i] "/" S[1]
        if (ns == 3) printf " %23s", S[3] "/" S[2]
        printf "\n"
        for (r = 1; r <= maxr; r++) {
          printf "%-7s", r
          for (i = 1; i <= ns; i++) {
            k = sz SUBSEP r SUBSEP S[i]
            flag = (st[k] == "ok") ? " " : "*"
            printf " %10.0f /%8.0f%s", acc[k], e2e[k], flag
            note(sz SUBSEP S[i] SUBSEP "acc", acc[k]); note(sz SUBSEP S[i] SUBSEP "e2e", e2e[k])
          }
          for (i = 2; i <= ns + (ns == 3); i++) {
            a = (i <= ns) ? S[i] : S[3]; b = (i <= ns) ? S[1] : S[2]
            ka = sz SUBSEP r SUBSEP a; kb = sz SUBSEP r SUBSEP b
            ra = acc[kb] ? acc[ka] / acc[kb] : 0; re = e2e[kb] ? e2e[ka] / e2e[kb] : 0
            printf " %10.2f /%10.2f  ", ra, re
            note(sz SUBSEP a "/" b SUBSEP "acc", ra); note(sz SUBSEP a "/" b SUBSEP "e2e", re)
          }
          printf "\n"
        }
        printf "%-7s", "min-max"
        for (i = 1; i <= ns; i++) printf " %21s", mm(sz SUBSEP S[i] SUBSEP "acc") " / " mm(sz SUBSEP S[i] SUBSEP "e2e")
        for (i = 2; i <= ns + (ns == 3); i++) {
          a = (i <= ns) ? S[i] : S[3]; b = (i <= ns) ? S[1] : S[2]
          printf " %23s", mmr(sz SUBSEP a "/" b SUBSEP "acc") " / " mmr(sz SUBSEP a "/" b SUBSEP "e2e")
        }
        printf "\n"
      }
      bad = 0
      for (k in st) if (st[k] != "ok") bad++
      if (bad) printf "\n* %d run(s) not clean (smtp-source failed, timeout or queue left): see the lines above\n", bad
    }' "$RESULTS"
}
