#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The systemd unit as `make install` writes it (no root, no running systemd needed):
# `systemd-analyze verify` passes (its binary and its man page, Documentation=, are there),
# and `systemd-analyze security` rates it no worse than the exposure docs/DAEMON.md records
# (a hardening taken away fails here; one added means the doc's figure is to be lowered).
. "$(dirname "$0")/lib.sh"
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
[ -f "$ST_BUILD/shadowtap.8" ] || st_fail "$ST_BUILD/shadowtap.8 not found (build first)"
st_require_cmds systemd-analyze make man
st_init

I=$ST_TMP/root
# install only: a stale build would be rebuilt here, with this make's flags (not the tree's)
make -q -C "$ST_ROOT" BUILD="$ST_BUILD" "$ST_BUILD/shadowtap" "$ST_BUILD/shadowtap.8" 2>/dev/null ||
	st_fail "$ST_BUILD is not up to date (build first)"
make -s -C "$ST_ROOT" BUILD="$ST_BUILD" PREFIX="$I/usr" SYSCONF_DIR="$I/etc/shadowtap" install \
	>"$ST_TMP/install.log" 2>&1 || { cat "$ST_TMP/install.log"; st_fail "make install failed"; }
U=$I/usr/lib/systemd/system/shadowtap.service
[ -f "$U" ] && [ -f "$I/etc/shadowtap/shadowtap.conf.example" ] || st_fail "the unit or the example config is missing"
grep -q "^ExecStart=$I/usr/sbin/shadowtap daemon " "$U" || st_fail "the unit's paths do not follow PREFIX"

MANPATH=$I/usr/share/man systemd-analyze verify "$U" >"$ST_TMP/verify.log" 2>&1 ||
	{ cat "$ST_TMP/verify.log"; st_fail "systemd-analyze verify"; }

want=$(tr '\n' ' ' <"$ST_ROOT/docs/DAEMON.md" | sed -nE 's/.*`systemd-analyze security` rates it ([0-9]+\.[0-9]) [A-Z]+.*/\1/p')
[ -n "$want" ] || st_fail "docs/DAEMON.md records no systemd-analyze security rating"
got=$(systemd-analyze security --offline=true --no-pager "$U" 2>/dev/null |
	sed -nE 's/.*Overall exposure level for shadowtap.service: ([0-9.]+) .*/\1/p')
st_log "exposure: $got (docs/DAEMON.md: $want)"
[ -n "$got" ] || st_fail "systemd-analyze security gave no rating"
[ "$got" = "$want" ] || st_fail "the unit's exposure is $got, docs/DAEMON.md says $want: make them agree"
st_log "PASS"
