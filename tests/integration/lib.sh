# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Helpers sourced by tests/integration/test_*.sh, tools/demo.sh and tools/bench.sh.
#
# Conventions: a test exits 0 (pass), 77 (skip) or anything else (fail). It calls st_init
# first, which installs a trap that, on any exit (failure, interrupt, timeout's TERM), kills
# every process the test started, deletes its network namespaces and cgroups, and removes its
# temp dir. Only loopback and addresses inside namespaces the test created are contacted.
#
# Environment: ST_BUILD (dir holding shadowtap, default build), ST_KEEP=1 keeps the temp dir,
# ST_FAKE_AGENT=tcpdump runs tcpdump where the agent would run (to debug the harness).

ST_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ST_BUILD=${ST_BUILD:-build}
case $ST_BUILD in /*) ;; *) ST_BUILD=$ST_ROOT/$ST_BUILD ;; esac
ST_BIN=$ST_BUILD/shadowtap

# Names and addresses: unique per test process, addresses exist only inside our namespaces.
ST_ID=$$
ST_SRV_NS=st-$ST_ID-srv
ST_CLI_NS=st-$ST_ID-cli
ST_SRV_IF="st-srv"
ST_CLI_IF="st-cli"
ST_SRV4=10.231.0.1
ST_SRV4B=10.231.0.3 # second server address (a second service on the same port)
ST_CLI4=10.231.0.2
ST_SRV6=fd00:5717::1
ST_CLI6=fd00:5717::2

# The ring the agent gets in tests that compare its output byte for byte with a reference
# (tcpdump, tcpflow): larger than the 16 MiB default, because the sanitizer-built agent on a
# loaded test host drains more slowly than production's would. The default ring's size is a
# production-cost trade-off (docs/BENCHMARKS.md), not what those tests are about; the loss
# tests set their own (small) ring. A caller's own --ring-mb, given later, wins.
ST_RING=(--ring-mb 64)

ST_PIDS=()
ST_NETNS=()
ST_CGROUPS=()
ST_HOOKS=()
ST_TMP=

st_log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
st_skip() { echo "SKIP: $*"; exit 77; }
st_fail() { echo "FAIL: $*" >&2; exit 1; }
# st_check COND_DESCRIPTION CMD...: runs CMD; fails the test with the description if it fails.
st_check() {
	local what=$1
	shift
	"$@" || st_fail "$what"
}

st_require_root() {
	[ "$(id -u)" -eq 0 ] || st_skip "needs root (network namespaces, BPF)"
}

# st_require_cmds CMD...: skip (77) naming every command that is missing.
st_require_cmds() {
	local c missing=()
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
	[ ${#missing[@]} -eq 0 ] || st_skip "missing commands: ${missing[*]} (tools/install-deps.sh installs them)"
}

# st_require_py MODULE...: ST_PY becomes a python3 that imports every MODULE: the one on PATH,
# else Debian's /usr/bin/python3 (where python3-* packages install); skip (77) naming them.
st_require_py() {
	local p mods
	mods=$(IFS=,; echo "$*")
	for p in python3 /usr/bin/python3; do
		command -v "$p" >/dev/null 2>&1 || continue
		if "$p" -c "import $mods" 2>/dev/null; then
			ST_PY=$(command -v "$p")
			return 0
		fi
	done
	st_skip "no python3 imports $mods (tools/install-deps.sh installs python3-grpcio, python3-h2)"
}

# st_require_agent: the agent binary must exist (the build makes it) and know `capture`.
st_require_agent() {
	[ -n "${ST_FAKE_AGENT:-}" ] && return 0
	[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first: make BUILD=${ST_BUILD#"$ST_ROOT"/})"
	"$ST_BIN" capture --help >/dev/null 2>&1 || st_skip "$ST_BIN has no working 'capture --help' yet"
}

# st_init: temp dir and the cleanup trap. Call once, before creating anything.
st_init() {
	set -euo pipefail
	ST_TMP=$(mktemp -d "/tmp/st-$ST_ID.XXXXXX")
	chmod 755 "$ST_TMP" # nginx workers and the `nobody` checks read from here
	trap st_cleanup EXIT
	trap 'st_log "interrupted"; exit 130' INT
	trap 'st_log "terminated"; exit 143' TERM
}

# st_exclusive NAME: waits (at most 240 s) until no other test on this host holds NAME, then
# holds it until this test ends. For tests that change or check host-wide state (uprobes are
# per library file: one test's --tls agent probes every process that maps libssl), whichever
# checkout or runner they come from.
st_exclusive() {
	exec {ST_LOCK_FD}>"/tmp/shadowtap-test-$1.lock"
	flock -w 240 "$ST_LOCK_FD" || st_fail "another test held the host-wide lock '$1' for 240 s"
}

# st_on_cleanup CMD: run CMD (a string, eval'd) at cleanup, before processes are killed.
st_on_cleanup() { ST_HOOKS+=("$1"); }

# st_alive PID: true while PID runs (a zombie, exited but not yet waited for, is not alive).
st_alive() {
	local st
	st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

st_kill_pids() {
	local p alive i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for i in $(seq 1 30); do
		alive=0
		for p in "$@"; do st_alive "$p" && alive=1; done
		[ $alive -eq 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
	return 0
}

st_cleanup() {
	local rc=$? i p ns cg
	set +e
	trap - EXIT INT TERM
	for ((i = ${#ST_HOOKS[@]} - 1; i >= 0; i--)); do eval "${ST_HOOKS[i]}" >/dev/null 2>&1; done
	[ ${#ST_PIDS[@]} -gt 0 ] && st_kill_pids "${ST_PIDS[@]}"
	for ns in "${ST_NETNS[@]}"; do
		# Anything still running inside (nginx workers, clients) dies with its namespace.
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for ((i = ${#ST_CGROUPS[@]} - 1; i >= 0; i--)); do st_cgroup_remove "${ST_CGROUPS[i]}"; done
	for ns in "${ST_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	wait 2>/dev/null
	if [ -n "$ST_TMP" ] && [ -d "$ST_TMP" ]; then
		if [ "${ST_KEEP:-0}" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ "${ST_KEEP:-0}" = fail ]; }; then
			echo "kept $ST_TMP"
		else
			rm -rf "$ST_TMP"
		fi
	fi
	exit "$rc"
}

# st_bg NAME CMD...: runs CMD in the background, stdout+stderr to $ST_TMP/NAME.log;
# its pid is in ST_LAST_PID and is killed at cleanup.
st_bg() {
	local name=$1
	shift
	"$@" >"$ST_TMP/$name.log" 2>&1 </dev/null &
	ST_LAST_PID=$!
	ST_PIDS+=("$ST_LAST_PID")
}

# st_stacks PID: every thread's stack of PID on stdout (gdb, when installed): what a process
# that does not stop is waiting for, in the failed test's log.
st_stacks() {
	command -v gdb >/dev/null 2>&1 || return 0
	timeout 30 gdb -p "$1" -batch -nx -ex 'set pagination off' -ex 'thread apply all bt' 2>/dev/null |
		grep -E '^(Thread|#)' | head -n 80 || true
}

# st_stop PID [SIG] [SECS]: signal PID (default INT) and wait for it (max SECS, default 20;
# then its stacks are printed and it is killed); returns its status; ST_STOP_MS is how long
# it took. A stop that takes over 2 s is said (a command's stop is prompt: it waits for
# nothing that is not on its way).
st_stop() {
	local pid=$1 sig=${2:-INT} secs=${3:-20} i rc t0
	t0=$(date +%s%N)
	kill "-$sig" "$pid" 2>/dev/null || true
	for i in $(seq 1 $((secs * 10))); do
		st_alive "$pid" || break
		sleep 0.1
	done
	ST_STOP_MS=$((($(date +%s%N) - t0) / 1000000))
	[ "$i" -le 20 ] || st_log "pid $pid took $((i / 10)).$((i % 10)) s to stop after SIG$sig"
	if st_alive "$pid"; then
		st_log "pid $pid did not exit within $secs s of SIG$sig; killing it"
		st_stacks "$pid"
		kill -KILL "$pid" 2>/dev/null
	fi
	rc=0
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

# st_in NS CMD...: run CMD in namespace NS ("" = the current one).
st_in() {
	local ns=$1
	shift
	if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# st_in_bg NS CMD...: as st_in, for commands started with &: a non-interactive shell starts
# background jobs with SIGINT ignored, and a signal ignored at exec is never delivered
# (not even to a signalfd); restore the default so `kill -INT` reaches them (shadowtap takes
# SIGINT and SIGTERM back itself, test_signals checks it; the other programs the tests start
# may not). It execs, so that
# $! is the command's own pid: use it only as `st_in_bg NS CMD... &` (or through st_bg).
st_in_bg() {
	local ns=$1
	shift
	if [ -n "$ns" ]; then
		exec env --default-signal=INT,QUIT ip netns exec "$ns" "$@"
	else
		exec env --default-signal=INT,QUIT "$@"
	fi
}

# st_netns_add NAME: a new namespace, removed at cleanup. A namespace of that name already
# there is a leftover of a test killed with -9 whose PID was ours (names carry the PID): it is
# deleted first, as its own cleanup would have.
st_netns_add() {
	ip netns del "$1" 2>/dev/null || true
	ip netns add "$1"
	ST_NETNS+=("$1")
}

# st_netns_pair: namespaces $ST_SRV_NS and $ST_CLI_NS joined by a veth pair
# ($ST_SRV_IF in the server ns, $ST_CLI_IF in the client ns), IPv4 and IPv6.
st_netns_pair() {
	st_netns_add "$ST_SRV_NS"
	st_netns_add "$ST_CLI_NS"
	ip link add "$ST_SRV_IF" netns "$ST_SRV_NS" type veth peer name "$ST_CLI_IF" netns "$ST_CLI_NS"
	ip -n "$ST_SRV_NS" link set lo up
	ip -n "$ST_CLI_NS" link set lo up
	ip -n "$ST_SRV_NS" addr add "$ST_SRV4/24" dev "$ST_SRV_IF"
	ip -n "$ST_SRV_NS" addr add "$ST_SRV4B/24" dev "$ST_SRV_IF"
	ip -n "$ST_CLI_NS" addr add "$ST_CLI4/24" dev "$ST_CLI_IF"
	ip -n "$ST_SRV_NS" -6 addr add "$ST_SRV6/64" dev "$ST_SRV_IF" nodad
	ip -n "$ST_CLI_NS" -6 addr add "$ST_CLI6/64" dev "$ST_CLI_IF" nodad
	ip -n "$ST_SRV_NS" link set "$ST_SRV_IF" up
	ip -n "$ST_CLI_NS" link set "$ST_CLI_IF" up
}

# st_netns_single NAME: one namespace with only loopback up; its name in ST_LAST_NS.
st_netns_single() {
	ST_LAST_NS=st-$ST_ID-$1
	st_netns_add "$ST_LAST_NS"
	ip -n "$ST_LAST_NS" link set lo up
}

# st_wait_port NS PORT [SECONDS] [TEXT]: wait until something listens on TCP PORT in NS (and
# its line in `ss -ltnp` holds TEXT: an address, or "pid=N," for a given process).
st_wait_port() {
	local ns=$1 port=$2 secs=${3:-10} addr=${4:-} i
	for i in $(seq 1 $((secs * 10))); do
		if st_in "$ns" ss -Hltnp "sport = :$port" 2>/dev/null | grep -qF "${addr:-:}"; then
			return 0
		fi
		sleep 0.1
	done
	st_fail "nothing listens on port $port in ${ns:-the current namespace} after ${secs}s"
}

# st_make_files DIR: the files the server offers, 1 byte to 5 MB, named by size.
ST_FILE_SIZES=(1 100 1448 1500 4096 16384 65535 65536 65537 100000 1048576 5242880)
st_make_files() {
	local dir=$1 s
	mkdir -p "$dir"
	for s in "${ST_FILE_SIZES[@]}"; do
		head -c "$s" /dev/urandom >"$dir/f$s"
	done
	printf 'hello from shadowtap test nginx\n' >"$dir/index.html"
	chmod -R a+rX "$dir"
}

# st_nginx_start NAME NS LISTEN...: a real nginx (1 worker) in NS, listening on each LISTEN
# (nginx syntax: "80", "[::]:80", "10.231.0.1:80"), files from st_make_files in
# $ST_TMP/NAME/www, uploads: POST /upload (body read and discarded, 200 "ok"),
# PUT /dav/FILE (stored). Access log $ST_TMP/NAME/access.log. Waits until it listens.
# Knobs (environment): ST_NGINX_CGROUP=DIR starts it inside that cgroup v2 directory;
# ST_NGINX_LOG_FORMAT='...' the access log's format (nginx variables, single-quote free);
# ST_NGINX_KEEPALIVE_REQUESTS=N (default 100000); ST_NGINX_EVERYTHING_OK=1 answers every
# other path with 200 "ok" (bodies read and discarded) instead of serving files;
# ST_NGINX_LOCATIONS='location ... { ... }' more directives in the server block.
# ST_NGINX_TLS=1 makes every listener TLS ("ssl"), with a self-signed certificate made by
# st_tls_cert in $ST_TMP/NAME, TLS 1.2 and 1.3 (ST_NGINX_TLS_PROTOCOLS: nginx 1.22's own
# default lacks 1.3, which later nginx and every modern client speak).
# ST_NGINX_LISTEN_OPTS='http2' is added to every listener (h2c
# with prior knowledge; with ST_NGINX_TLS, HTTP/2 over TLS by ALPN).
st_nginx_start() {
	local name=$1 ns=$2 d l listens="" tls=""
	shift 2
	d=$ST_TMP/$name
	mkdir -p "$d/tmp" "$d/www/dav"
	[ -f "$d/www/f1" ] || st_make_files "$d/www"
	if [ -n "${ST_NGINX_TLS:-}" ]; then
		st_tls_cert "$d"
		tls="ssl_certificate $d/cert.pem; ssl_certificate_key $d/key.pem;"
		tls+=" ssl_protocols ${ST_NGINX_TLS_PROTOCOLS:-TLSv1.2 TLSv1.3};"
	fi
	for l in "$@"; do
		listens+="		listen $l${tls:+ ssl}${ST_NGINX_LISTEN_OPTS:+ $ST_NGINX_LISTEN_OPTS};"$'\n'
	done
	local logfmt="" logname="" everything=""
	if [ -n "${ST_NGINX_LOG_FORMAT:-}" ]; then
		logfmt="log_format st '$ST_NGINX_LOG_FORMAT';"
		logname=" st"
	fi
	[ -n "${ST_NGINX_EVERYTHING_OK:-}" ] && everything='location / { return 200 "ok\n"; }'
	cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
	$logfmt
	access_log ${ST_NGINX_ACCESS_LOG:-$d/access.log}$logname;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	default_type application/octet-stream;
	sendfile on;
	keepalive_requests ${ST_NGINX_KEEPALIVE_REQUESTS:-100000};
	keepalive_timeout 60s;
	client_max_body_size 64m;
	server {
$listens
		$tls
		root $d/www;
		location /upload {
			client_body_buffer_size 1m;
			return 200 "ok\n";
		}
		location /dav/ {
			dav_methods PUT DELETE;
			create_full_put_path on;
			client_body_buffer_size 1m;
		}
		${ST_NGINX_LOCATIONS:-}
		$everything
	}
}
EOF
	if [ -n "${ST_NGINX_CGROUP:-}" ]; then
		# Join the cgroup from the subshell, then exec: nginx and its worker start inside it.
		(
			echo "$BASHPID" >"$ST_NGINX_CGROUP/cgroup.procs"
			st_in_bg "$ns" nginx -c "$d/nginx.conf" -p "$d" # (it execs; "" is this namespace)
		) >"$d/nginx.out" 2>&1 </dev/null &
		ST_LAST_PID=$!
		ST_PIDS+=("$ST_LAST_PID")
	else
		st_bg "$name-nginx" st_in_bg "$ns" nginx -c "$d/nginx.conf" -p "$d"
	fi
	# Every listen directive's socket, held by this nginx (its master is ST_LAST_PID: the
	# commands above exec). A port alone is not enough: another server may listen on it
	# already (a second address on 443).
	for l in "$@"; do st_wait_port "$ns" "${l##*:}" 10 "pid=$ST_LAST_PID,"; done
}

# st_tls_cert DIR: a self-signed certificate (DIR/cert.pem, DIR/key.pem, CN "st"), made once.
st_tls_cert() {
	[ -f "$1/cert.pem" ] && return 0
	command -v openssl >/dev/null || st_skip "missing commands: openssl (tools/install-deps.sh installs it)"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1/key.pem" -out "$1/cert.pem" \
		-days 2 -subj /CN=st >/dev/null 2>&1 || st_fail "openssl could not make a certificate"
}

# st_cgroup2_root: prints where cgroup v2 is mounted (or nothing).
st_cgroup2_root() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts
}

# st_cgroup_create NAME: a new cgroup v2 directory, removed at cleanup; path in ST_LAST_CGROUP.
st_cgroup_create() {
	local root
	root=$(st_cgroup2_root)
	[ -n "$root" ] || st_skip "cgroup v2 is not mounted (no cgroup2 line in /proc/mounts)"
	ST_LAST_CGROUP=$root/st-$ST_ID-$1
	mkdir "$ST_LAST_CGROUP"
	ST_CGROUPS+=("$ST_LAST_CGROUP")
}

st_cgroup_remove() {
	local cg=$1 p i
	[ -d "$cg" ] || return 0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		rmdir "$cg" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "could not remove cgroup $cg" >&2
}

# ---- capture ---------------------------------------------------------------------------------

# st_attach_state NS IFACE: everything attached to IFACE, to compare before/after.
st_attach_state() {
	local ns=$1 ifc=$2
	echo "## tc qdisc"
	st_in "$ns" tc qdisc show dev "$ifc"
	echo "## tc filter ingress"
	st_in "$ns" tc filter show dev "$ifc" ingress 2>/dev/null || true
	echo "## tc filter egress"
	st_in "$ns" tc filter show dev "$ifc" egress 2>/dev/null || true
	echo "## bpftool net"
	# prog ids change between runs; the attachment points and names must not.
	st_in "$ns" bpftool net show dev "$ifc" 2>/dev/null | sed -E 's/(prog_)?id [0-9]+/id N/g' | grep -v '^[[:space:]]*$' || true
}

# st_shadowtap_links: "id type prog-name ifindex" of every BPF link whose program looks like
# shadowtap's (tc_*, cgroup_skb_*). bpftool 7.1 does not list TCX attachments in `net show`,
# but their links are here.
st_shadowtap_links() {
	# bpftool's plain output and awk: this runs after every case of the bad-input tests, and
	# a Python interpreter's start-up alone took 0.5 s here
	local names
	names=$(bpftool prog show 2>/dev/null | awk '/^[0-9]+:/ {
		id = $1; sub(/:$/, "", id)
		for (i = 2; i < NF; i++) if ($i == "name") print id, $(i + 1) }')
	bpftool link show 2>/dev/null | awk -v names="$names" '
		function out() { if (id != "" && (nm[p] ~ /^tc_/ || nm[p] ~ /^cgroup_skb/)) print id, type, nm[p], ifx }
		BEGIN { n = split(names, l, "\n"); for (i = 1; i <= n; i++) { split(l[i], f, " "); nm[f[1]] = f[2] } }
		/^[0-9]+:/ {
			out()
			id = $1; sub(/:$/, "", id); type = $2 == "type" ? $3 : $2; p = ""; ifx = "-"
			for (i = 2; i < NF; i++) if ($i == "prog") p = $(i + 1)
			next
		}
		{ for (i = 1; i < NF; i++) if ($i == "ifindex") { ifx = $(i + 1); sub(/^.*\(/, "", ifx); sub(/\).*$/, "", ifx) } }
		END { out() }'
}

# Links that existed before this test started (other agents on a shared host).
ST_LINKS_BASELINE=$(st_shadowtap_links 2>/dev/null | awk '{ print $1 }' | tr '\n' ' ')

# st_pid_links PID: "link_id link_type ifindex" of each BPF link PID holds open (fdinfo).
st_pid_links() {
	local f
	for f in /proc/"$1"/fdinfo/*; do
		awk '/^link_type:/ { t = $2 } /^link_id:/ { id = $2 } /^ifindex:/ { ifx = $2 }
			END { if (id != "") print id, t, (ifx == "" ? "-" : ifx) }' "$f" 2>/dev/null
	done
}

# st_held_links: ids of the BPF links some live process holds open.
st_held_links() {
	grep -h '^link_id:' /proc/[0-9]*/fdinfo/* 2>/dev/null | awk '{ print $2 }' | sort -u
}

# st_leaked_shadowtap_links: shadowtap links created since the test started that no live
# process holds: they outlive their agent (pinned), i.e. leaked. Other agents on the host
# come and go meanwhile: the links are listed before their holders (a link made in between
# is not taken for a leak), and a link is reported only if it is still there, unheld, half a
# second later (the link of a process that just exited is being freed).
st_leaked_shadowtap_links() {
	local pass links held id type name ifx out prev=
	for pass in 1 2; do
		links=$(st_shadowtap_links)
		held=" $(st_held_links | tr '\n' ' ') "
		out=$(while read -r id type name ifx; do
			[ -n "$id" ] || continue
			case " $ST_LINKS_BASELINE " in *" $id "*) continue ;; esac
			case $held in *" $id "*) continue ;; esac
			[ "$pass" -eq 1 ] || case " $prev " in *" $id "*) ;; *) continue ;; esac
			echo "$id $type $name $ifx"
		done <<<"$links")
		[ -n "$out" ] || return 0
		prev=$(awk '{ print $1 }' <<<"$out" | tr '\n' ' ')
		[ "$pass" -eq 2 ] || sleep 0.5
	done
	echo "$out"
}

# st_pid_progs PID: the ids of the BPF programs PID holds (program and link fds).
st_pid_progs() {
	grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{ print $2 }' | sort -u
}

# st_agent_attached NS IFACE|CGROUP [PID]: true when shadowtap's programs are attached there;
# with PID, only when they are PID's own: a BPF link it holds on IFACE's ifindex, or a program
# of its attached there (a stale filter of an agent killed earlier, or another agent's
# programs, does not count).
st_agent_attached() {
	local ns=$1 target=$2 pid=${3:-} ifx out mine
	# (output taken whole first: with pipefail, `bpftool | grep -q` fails when grep's early
	# exit makes bpftool die of SIGPIPE, however attached the agent is)
	if [ -d "$target" ]; then
		out=$(bpftool cgroup show "$target" 2>/dev/null || true)
	else
		out=$(st_in "$ns" bpftool net show dev "$target" 2>/dev/null || true)
	fi
	if [ -z "$pid" ]; then
		grep -Eq 'tc_|cgroup_skb|tcx|ingress|egress' <<<"$out"
		return
	fi
	mine=" $(st_pid_progs "$pid" | tr '\n' ' ') "
	# bpftool cgroup show: the program id first; net show: "id N" (clsact) or "prog_id N"
	while read -r id; do
		case $mine in *" $id "*) return 0 ;; esac
	done < <(grep -oE '^[0-9]+|(prog_)?id [0-9]+' <<<"$out" | grep -oE '[0-9]+$')
	[ -d "$target" ] && return 1
	# TCX links (bpftool 7.1's net show does not list them)
	ifx=$(st_in "$ns" cat "/sys/class/net/$target/ifindex" 2>/dev/null || true)
	st_pid_links "$pid" | awk -v want="$ifx" '$3 == want { found = 1 } END { exit !found }'
}

# st_capture_start NAME NS TARGET OUT ARGS...: starts `shadowtap capture` in NS
# (TARGET: an interface for --iface, or a cgroup directory for --cgroup), writing OUT,
# extra ARGS (--port ...). Waits until its programs are attached. Pid in ST_AGENT_PID,
# stderr in $ST_TMP/NAME.err.
st_capture_start() {
	local name=$1 ns=$2 target=$3 out=$4 i mode
	shift 4
	if [ -d "$target" ]; then mode=--cgroup; else mode=--iface; fi
	if [ "${ST_FAKE_AGENT:-}" = tcpdump ]; then
		local f=() p
		while [ $# -gt 0 ]; do
			case $1 in --port) f+=("tcp port $2"); shift 2 ;; *) shift ;; esac
		done
		local expr
		expr=$(printf ' or %s' "${f[@]}")
		expr="(${expr# or })${ST_FAKE_FILTER:+ and ($ST_FAKE_FILTER)}"
		# A cgroup target: tcpdump on ST_FAKE_IFACE in ST_FAKE_NS instead.
		[ -d "$target" ] && { ns=${ST_FAKE_NS:-$ns}; target=$ST_FAKE_IFACE; }
		st_in_bg "$ns" tcpdump -i "$target" -s 0 -B 262144 -w "$out" "$expr" \
			>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
		ST_AGENT_PID=$!
		ST_PIDS+=("$ST_AGENT_PID")
		st_wait_log "$ST_TMP/$name.err" 'listening on' 10
		return 0
	fi
	st_in_bg "$ns" "$ST_BIN" capture "$mode" "$target" "${ST_RING[@]}" "$@" -w "$out" \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	ST_AGENT_PID=$!
	ST_PIDS+=("$ST_AGENT_PID")
	# its start line: attached, the file in place, the loop about to run
	st_wait_started "$ST_AGENT_PID" "$ST_TMP/$name.err" capture
	st_agent_attached "$ns" "$target" "$ST_AGENT_PID" ||
		st_fail "shadowtap capture said it runs, but its programs are not attached to $target"
}

# st_tcpdump_start NAME NS IFACE OUT FILTER [BUFFER_KIB]: the reference capture (kernel
# buffer 256 MiB unless given), writing each packet to OUT as it reads it (-U); stderr in
# $ST_TMP/NAME.err. Pid in ST_TCPDUMP_PID; stop it with st_tcpdump_stop.
st_tcpdump_start() {
	local name=$1 ns=$2 ifc=$3 out=$4 filter=$5 buf=${6:-262144}
	st_in_bg "$ns" tcpdump -i "$ifc" -s 0 -B "$buf" -U -n -w "$out" "$filter" \
		>"$ST_TMP/$name.out" 2>"$ST_TMP/$name.err" </dev/null &
	ST_TCPDUMP_PID=$!
	ST_PIDS+=("$ST_TCPDUMP_PID")
	st_wait_log "$ST_TMP/$name.err" 'listening on' 10
}

# st_tcpdump_stop PID NAME: stops the tcpdump `st_tcpdump_start NAME` started once it has
# read every packet the kernel queued for it, then SIGINT, and waits for it to write its file
# and exit; returns its exit status. A SIGINT alone ends it at once, losing what it has not
# read: the kernel hands packets over in blocks, a partly filled one after tcpdump's 1 s
# timeout, and under load tcpdump is thousands of packets behind. Its SIGUSR1 report says how
# far it got: done when captured (twice that on lo, where the kernel also queues the outgoing
# copy of each packet, which tcpdump skips) plus dropped equals "received by filter".
st_tcpdump_stop() {
	local pid=$1 err=$ST_TMP/$2.err k=1 i c r d last=-1 since=0
	local re='^tcpdump: ([0-9]+) packets? captured, ([0-9]+) packets? received by filter, ([0-9]+) packets? dropped by kernel'
	grep -q '^tcpdump: listening on lo,' "$err" && k=2
	for i in $(seq 1 200); do
		st_alive "$pid" || break
		kill -USR1 "$pid" 2>/dev/null || break
		sleep 0.1
		read -r c r d < <(sed -nE "s/$re.*/\1 \2 \3/p" "$err" | tail -n1) || continue
		[ $((k * c + d)) -eq "$r" ] && break
		# Counts that do not add up (drops on lo): done once nothing moved for 3 s.
		[ "$c" -ne "$last" ] && since=$i last=$c
		[ $((i - since)) -lt 30 ] || break
	done
	[ "$i" -lt 200 ] || st_log "tcpdump $2 still reading after 20 s: stopping it anyway"
	st_stop "$pid" INT
}

# st_tcp_settle PORT NS...: waits (at most 10 s) until no TCP connection of PORT in the
# namespaces NS ("" = the current one) is still open or closing: the last FINs and ACKs
# have been on the wire, and every capture of them has had them.
st_tcp_settle() {
	local port=$1 ns i busy
	shift
	for i in $(seq 1 100); do
		busy=
		for ns in "$@"; do
			busy+=$(st_in "$ns" ss -Htan state established state syn-sent state syn-recv \
				state fin-wait-1 state fin-wait-2 state close-wait state last-ack state closing \
				"( sport = :$port or dport = :$port )" 2>/dev/null || true)
		done
		[ -z "$busy" ] && return 0
		sleep 0.1
	done
	st_log "TCP connections of port $port still open after 10 s:"
	echo "$busy" | head -n 5
}

# st_wait_started PID ERRFILE COMMAND: waits (at most 10 s) for COMMAND's start line on PID's
# stderr ("shadowtap: capture running: ..."), which it prints once attached and running:
# what a script waits for. Fails when PID exits first, or the line does not come.
st_wait_started() {
	local pid=$1 err=$2 cmd=$3 i
	for i in $(seq 1 100); do
		grep -q "^shadowtap: $cmd running: " "$err" 2>/dev/null && return 0
		st_alive "$pid" || { cat "$err"; st_fail "shadowtap $cmd exited during start-up"; }
		sleep 0.1
	done
	cat "$err"
	st_fail "shadowtap $cmd did not start (no start line) within 10 s"
}

# st_wait_log FILE REGEX SECONDS
st_wait_log() {
	local file=$1 re=$2 secs=$3 i
	for i in $(seq 1 $((secs * 10))); do
		grep -Eq "$re" "$file" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$file" 2>/dev/null
	st_fail "'$re' did not appear in $file within ${secs}s"
}

# st_summary FILE: the agent's summary line from its stderr (empty when absent).
st_summary() { grep -E '^shadowtap: summary ' "$1" | tail -n1 || true; }
# st_summary_field LINE KEY: the number after KEY= in a summary line.
st_summary_field() { sed -nE "s/.*[[:space:]]$2=([0-9]+).*/\1/p" <<<"$1" || true; }

# st_render_html NS FILE WIDTH,HEIGHT SHOT: FILE (a report) rendered by headless Chromium in
# namespace NS (one that reaches no network: a report must need none); the rendered DOM in
# $ST_TMP/dom.html, a screenshot in SHOT. Returns 1, having said so, when chromium is not
# installed (the caller passes without its browser check); fails the test when it cannot render.
st_render_html() {
	local chrome
	chrome=$(command -v chromium || command -v chromium-browser || true)
	if [ -z "$chrome" ]; then
		st_log "SKIP (part): chromium is not installed (tools/install-deps.sh installs it): the report was not rendered"
		return 1
	fi
	mkdir -p "$ST_TMP/chrome"
	timeout 60 ip netns exec "$1" "$chrome" --headless --no-sandbox --disable-gpu \
		--disable-background-networking --disable-component-update --disable-sync --no-first-run \
		--user-data-dir="$ST_TMP/chrome" --window-size="$3" --screenshot="$4" \
		--dump-dom "file://$2" >"$ST_TMP/dom.html" 2>"$ST_TMP/chrome.err" ||
		{ tail -n 20 "$ST_TMP/chrome.err"; st_fail "chromium could not render $2"; }
}

# st_summary_documented LINE SECTION...: every key of summary LINE is a row of one of the
# named sections of docs/SUMMARY.md ("capture", "The tap" ...): the doc says what each field
# counts, and a key added without its row fails the test that prints it.
st_summary_documented() {
	local line=$1
	shift
	python3 - "$ST_ROOT/docs/SUMMARY.md" "$line" "$@" <<'PY' || st_fail "summary keys missing from docs/SUMMARY.md (above)"
import re, sys
doc, line, sections = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3:]
keys = set()
for part in re.split(r"^#{2,3} ", doc, flags=re.M)[1:]:
    title = part.split("\n", 1)[0].strip()
    if any(title == s or title.startswith(s + " ") for s in sections):
        keys |= set(re.findall(r"^\| `([a-z0-9_]+)` \|", part, re.M))
if not keys:
    sys.exit(f"no section {sections} in docs/SUMMARY.md")
got = [kv.split("=")[0] for kv in line.split()[2:] if "=" in kv and not kv.startswith("job=")]
missing = [k for k in got if k not in keys]
if missing:
    sys.exit(f"not in docs/SUMMARY.md's {sections}: {missing}")
PY
}

# st_tcpdump_dropped ERRFILE: packets tcpdump says the kernel dropped (its exit report).
st_tcpdump_dropped() { sed -nE 's/^([0-9]+) packets? dropped by kernel.*/\1/p' "$1" | tail -n1 || true; }

# ---- comparing captures -----------------------------------------------------------------------

# st_tcpflow PCAP DIR: reassemble every TCP stream of PCAP into DIR (one file per direction).
st_tcpflow() {
	mkdir -p "$2"
	tcpflow -r "$1" -o "$2" >"$2.log" 2>&1 || { cat "$2.log"; return 1; }
	rm -f "$2/report.xml"
}

# st_flow_digest DIR: "sha256  relative-path" of every reassembled stream, sorted.
st_flow_digest() {
	(cd "$1" && find . -type f ! -name report.xml -printf '%P\0' | sort -z | xargs -0 -r sha256sum)
}

# st_compare_captures A.pcap B.pcap WORKDIR: the streams tcpflow reassembles from A and B must
# be identical (same set of stream files, same bytes). Prints a diff when not.
st_compare_captures() {
	local a=$1 b=$2 w=$3
	rm -rf "$w/flows-a" "$w/flows-b"
	st_tcpflow "$a" "$w/flows-a"
	st_tcpflow "$b" "$w/flows-b"
	st_flow_digest "$w/flows-a" >"$w/digest-a"
	st_flow_digest "$w/flows-b" >"$w/digest-b"
	local na nb
	na=$(wc -l <"$w/digest-a")
	nb=$(wc -l <"$w/digest-b")
	if ! cmp -s "$w/digest-a" "$w/digest-b"; then
		echo "reassembled streams differ: ${a##*/} has $na streams, ${b##*/} has $nb"
		diff "$w/digest-a" "$w/digest-b" | head -n 40
		local f
		for f in $(diff <(cut -c67- "$w/digest-a") <(cut -c67- "$w/digest-b") | sed -n 's/^[<>] //p' | head -n 5); do
			echo "only in one: $f"
		done
		while read -r _ f; do
			[ -f "$w/flows-b/$f" ] || continue
			if ! cmp -s "$w/flows-a/$f" "$w/flows-b/$f"; then
				echo "differs: $f ($(stat -c %s "$w/flows-a/$f") vs $(stat -c %s "$w/flows-b/$f") bytes; first difference: $(cmp "$w/flows-a/$f" "$w/flows-b/$f" 2>&1 | head -n1))"
			fi
		done <"$w/digest-a" | head -n 10
		return 1
	fi
	[ "$na" -gt 0 ] || { echo "no stream reassembled from either capture"; return 1; }
	echo "identical: $na reassembled streams, $(cat "$w/flows-a"/* 2>/dev/null | wc -c) bytes"
}

# st_pcap_packets PCAP: number of packets in PCAP.
st_pcap_packets() { tcpdump -nr "$1" 2>/dev/null | wc -l; }

# ---- clients ---------------------------------------------------------------------------------

ST_CURL=(curl -s -S --max-time 30 --connect-timeout 5)

# st_url HOST PATH: an URL for HOST (IPv6 literals get brackets).
st_url() {
	case $1 in *:*) echo "http://[$1]$2" ;; *) echo "http://$1$2" ;; esac
}

# st_pipeline NS HOST PORT PATH...: one connection, every GET written in a single send
# (HTTP/1.1 pipelining), reads until the server closes after the last (Connection: close).
st_pipeline() {
	local ns=$1 host=$2 port=$3
	shift 3
	st_in "$ns" timeout 20 python3 - "$host" "$port" "$@" <<'PY'
import socket, sys
host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
reqs = b"".join(
    b"GET %s HTTP/1.1\r\nHost: st\r\n%s\r\n" % (p.encode(), b"Connection: close\r\n" if i == len(paths) - 1 else b"")
    for i, p in enumerate(paths))
s = socket.create_connection((host, port), timeout=10)
s.sendall(reqs)
n = 0
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    n += len(b)
print(n)
PY
}

# st_client_mix NS HOST [PORT] [WWW]: a mix of request shapes against st_nginx_start's server:
# keep-alive GET batches over every file size, a 5 MB download, uploads (POST with and
# without Expect: 100-continue, chunked, PUT of 5 MB), HTTP/1.0, a pipelined batch.
# With WWW (the server's www dir), checks that downloads and stored uploads are intact.
st_client_mix() {
	local ns=$1 host=$2 port=${3:-80} www=${4:-} base s args=() up
	base=$(st_url "$host" "")
	[ "$port" = 80 ] || base=${base}:$port
	up=$ST_TMP/upload
	mkdir -p "$up"
	[ -f "$up/u1m" ] || {
		head -c 1048576 /dev/urandom >"$up/u1m"
		head -c 5242880 /dev/urandom >"$up/u5m"
		head -c 300000 /dev/urandom >"$up/u300k"
		head -c 2000 /dev/urandom >"$up/u2k"
	}
	# Keep-alive: every file size on one connection, twice.
	for s in "${ST_FILE_SIZES[@]}" "${ST_FILE_SIZES[@]}"; do args+=(-o /dev/null "$base/f$s"); done
	st_in "$ns" "${ST_CURL[@]}" "${args[@]}"
	# A 5 MB download on its own connection, checked.
	st_in "$ns" "${ST_CURL[@]}" -o "$up/got5m" "$base/f5242880"
	if [ -n "$www" ]; then cmp -s "$up/got5m" "$www/f5242880" || st_fail "5 MB download corrupted"; fi
	# Uploads: small POST, 1 MB POST with and without Expect: 100-continue, chunked POST.
	st_in "$ns" "${ST_CURL[@]}" -o /dev/null --data-binary @"$up/u2k" "$base/upload"
	st_in "$ns" "${ST_CURL[@]}" -o /dev/null -H 'Expect: 100-continue' --data-binary @"$up/u1m" "$base/upload"
	st_in "$ns" "${ST_CURL[@]}" -o /dev/null -H 'Expect:' --data-binary @"$up/u1m" "$base/upload"
	st_in "$ns" "${ST_CURL[@]}" -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary @"$up/u300k" "$base/upload"
	# PUT of 5 MB (curl -T sends Expect: 100-continue), stored by nginx's dav module, checked.
	st_in "$ns" "${ST_CURL[@]}" -o /dev/null -T "$up/u5m" "$base/dav/u5m-$RANDOM"
	st_in "$ns" "${ST_CURL[@]}" -o /dev/null -H 'Transfer-Encoding: chunked' -T "$up/u300k" "$base/dav/u300k-chunked"
	if [ -n "$www" ]; then
		cmp -s "$www/dav/u300k-chunked" "$up/u300k" || st_fail "chunked PUT stored wrong bytes"
	fi
	# HTTP/1.0, one request per connection.
	st_in "$ns" "${ST_CURL[@]}" -0 -o /dev/null "$base/f1500"
	st_in "$ns" "${ST_CURL[@]}" -0 -o /dev/null "$base/f65537"
	# Pipelined GETs in one send.
	st_pipeline "$ns" "$host" "$port" /f1 /f4096 /f100000 /f16384 >/dev/null
}

# ---- tee and Kafka -----------------------------------------------------------------------------

# st_tee_start NAME ARGS...: `shadowtap tee --iface $ST_SRV_IF --port 80 ARGS` in the server's
# namespace (its stderr in $ST_TMP/NAME.err, stdout the caller's); TEE_PID once running (its
# start line: attached, its output open, the stream's header written).
st_tee_start() {
	local name=$1
	shift
	st_in_bg "$ST_SRV_NS" "$ST_BIN" tee --iface "$ST_SRV_IF" --port 80 "${ST_RING[@]}" "$@" \
		2>"$ST_TMP/$name.err" </dev/null &
	TEE_PID=$!
	ST_PIDS+=("$TEE_PID")
	st_wait_started "$TEE_PID" "$ST_TMP/$name.err" tee
}

# st_tee_certs DIR: the tee link's certificates (EC P-256), made once: a CA (DIR/ca.pem,
# DIR/ca.key), rx and tx signed by it (DIR/rx.pem, DIR/rx.key, DIR/tx.*), another CA
# (DIR/rogue-ca.*) and a certificate it signed (DIR/rogue.*).
st_tee_certs() {
	local c=$1 n
	[ -f "$c/rogue.pem" ] && return 0
	command -v openssl >/dev/null || st_skip "missing commands: openssl (tools/install-deps.sh installs it)"
	mkdir -p "$c"
	for n in ca rogue-ca; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$c/$n.key" \
			-out "$c/$n.pem" -days 2 -subj "/CN=$n" >/dev/null 2>&1 || st_fail "openssl: CA $n"
	done
	for n in rx:ca tx:ca rogue:rogue-ca; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$c/${n%%:*}.key" \
			-out "$c/${n%%:*}.csr" -subj "/CN=${n%%:*}" >/dev/null 2>&1 &&
			openssl x509 -req -in "$c/${n%%:*}.csr" -CA "$c/${n#*:}.pem" -CAkey "$c/${n#*:}.key" \
				-CAcreateserial -days 2 -out "$c/${n%%:*}.pem" >/dev/null 2>&1 ||
			st_fail "openssl: certificate ${n%%:*}"
	done
}

# st_kafka_mock NS [PARTITIONS]: librdkafka's mock cluster (tools/kafka-mock, topic "tee",
# 3 partitions) listening on NS's loopback; its bootstrap in ST_KAFKA_BOOT. It reads commands
# on a FIFO the test holds open (st_kafka_mock_cmd) and ends when the test does.
st_kafka_mock() {
	local ns=$1 parts=${2:-3} mock=$ST_BUILD/tools/kafka-mock
	[ -x "$mock" ] || st_fail "$mock not found (build first)"
	mkfifo "$ST_TMP/mock.ctl"
	st_in_bg "$ns" "$mock" --partitions "$parts" --topic tee <"$ST_TMP/mock.ctl" \
		>"$ST_TMP/mock.out" 2>"$ST_TMP/mock.err" &
	ST_PIDS+=("$!")
	exec {ST_KAFKA_FD}>"$ST_TMP/mock.ctl"
	st_wait_log "$ST_TMP/mock.out" '^127\.0\.0\.1:[0-9]+' 10
	ST_KAFKA_BOOT=$(head -n1 "$ST_TMP/mock.out")
}

# st_kafka_mock_cmd CMD...: down, up, "rtt MS", "produce-errors N CODE"; fails unless the mock
# answers ok.
st_kafka_mock_cmd() {
	local before i
	before=$(wc -l <"$ST_TMP/mock.out")
	echo "$*" >&"$ST_KAFKA_FD"
	for i in $(seq 1 50); do [ "$(wc -l <"$ST_TMP/mock.out")" -gt "$before" ] && break; sleep 0.1; done
	[ "$(tail -n1 "$ST_TMP/mock.out")" = ok ] || st_fail "kafka-mock: '$*' failed"
}
