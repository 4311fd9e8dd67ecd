#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The manual page (no root needed): `shadowtap --man` renders with man and groff without a
# warning, has a section for every command `shadowtap --help` lists, and each section names
# exactly the options that command's --help prints (both come from the same option tables:
# this is what keeps them from drifting). The build's own page (`make` writes
# $ST_BUILD/shadowtap.8) is the same text.
. "$(dirname "$0")/lib.sh"
[ -x "$ST_BIN" ] || st_fail "$ST_BIN not found (build first)"
st_require_cmds man groff python3
st_init

"$ST_BIN" --man >"$ST_TMP/shadowtap.8" || st_fail "shadowtap --man failed"
if [ -f "$ST_BUILD/shadowtap.8" ]; then
	cmp -s "$ST_TMP/shadowtap.8" "$ST_BUILD/shadowtap.8" || st_fail "the built page differs from --man"
fi
warn=$(groff -man -Tutf8 -ww -z "$ST_TMP/shadowtap.8" 2>&1)
[ -z "$warn" ] || { echo "$warn" | head; st_fail "groff warns about the page"; }
MANWIDTH=100 man -l "$ST_TMP/shadowtap.8" >"$ST_TMP/man.txt" 2>"$ST_TMP/man.err" || st_fail "man -l failed"
[ ! -s "$ST_TMP/man.err" ] || { cat "$ST_TMP/man.err"; st_fail "man -l said something on stderr"; }
grep -q '^NAME' "$ST_TMP/man.txt" && grep -q '^EXIT STATUS' "$ST_TMP/man.txt" || st_fail "the rendered page lacks NAME or EXIT STATUS"

cmds=$("$ST_BIN" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ "$(wc -w <<<"$cmds")" -ge 9 ] || st_fail "--help lists only: $cmds"
for c in $cmds; do
	"$ST_BIN" "$c" --help >"$ST_TMP/$c.help" || st_fail "$c --help failed"
	python3 - "$ST_TMP/$c.help" "$ST_TMP/shadowtap.8" "$c" <<'PY' || st_fail "$c: --help and the man page differ"
import re, sys
help_text, page, cmd = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
in_help = set(re.findall(r'^  (?:-\w, )?    ?--([a-z0-9][a-z0-9-]*)', help_text, re.M))
in_help |= set(re.findall(r'^  -\w, --([a-z0-9][a-z0-9-]*)', help_text, re.M))
m = re.search(r'^\.SS %s\n(.*?)(?=^\.SS |^\.SH )' % re.escape(cmd), page, re.M | re.S)
if not m:
    sys.exit("no section .SS %s" % cmd)
in_man = set(n.replace('\\-', '-') for n in re.findall(r'^(?:\\fB\\-\w\\fR, )?\\fB\\-\\-((?:[a-z0-9]|\\-)+)\\fR', m.group(1), re.M))
in_help.add('help')  # built in: the man page says so in its own words
in_man.add('help')
if in_help != in_man or len(in_man) < 2:
    print("%s: only in --help: %s; only in the page: %s" % (cmd, sorted(in_help - in_man), sorted(in_man - in_help)))
    sys.exit(1)
print("  %s: %d options in both" % (cmd, len(in_man)))
PY
done
st_log "PASS"
