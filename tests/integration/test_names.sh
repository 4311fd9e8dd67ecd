#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The name rule of docs/ARCHITECTURE.md ("Names"), checked on the built objects: every
# symbol an agent object exports (functions and data, `nm --defined-only`) carries
#   - its file's name: st_FILE, st_FILE_*, st_FILE__* (compare_report.c: st_compare_report_*);
#   - or the name of an object type it works on, a struct the agent defines
#     (struct st_target: st_target_*);
#   - for an option table (data), what its options set: st_X_opts, st_X_opts_n;
#   - or its folder's one documented short form (the table below, as ARCHITECTURE lists it);
#   - or, in agent/shadow/, the names of the folder's internal objects its internal header
#     shadow_int.h declares (sh_, sc_, cc_, h2msg_);
#   - or, in agent/cmd/, cmd_* (the commands' entry points) and main.
# A symbol outside the rule is printed with its object, and the test fails.
. "$(dirname "$0")/lib.sh"
st_require_cmds nm
st_init

objs=("$ST_BUILD"/agent/*/*.o)
[ -f "${objs[0]}" ] || st_skip "no agent objects in $ST_BUILD (make first)"

# Object types: every struct st_X the agent defines (opaque ones in their .c file).
mapfile -t types < <(sed -n 's/^struct st_\([a-z0-9_]*\) {.*/\1/p' agent/*/*.[ch] | sort -u)
[ "${#types[@]}" -gt 10 ] || st_fail "found only ${#types[@]} struct types in agent/"

# The documented short forms, by folder/file (docs/ARCHITECTURE.md "Names").
declare -A SHORT=(
	[shadow/bytequeue]=st_bq_
	[stream/kafka_msg]=st_kmsg_
	[input/tlsfind]=st_tls_
)

# allowed FOLDER FILE KIND SYMBOL: 0 when SYMBOL (of nm's KIND) follows the rule.
allowed() {
	local d=$1 f=$2 k=$3 s=$4 t
	case $s in __odr_asan.*) s=${s#__odr_asan.} ;; esac # ASan's twin of a global
	case $s in st_"$f" | st_"$f"_*) return 0 ;; esac
	for t in "${types[@]}"; do
		case $s in st_"$t"_*) return 0 ;; esac
	done
	case $k$s in [DRBGS]st_*_opts | [DRBGS]st_*_opts_n) return 0 ;; esac
	[ "$d" = compare ] && case $s in st_cmp_*) return 0 ;; esac
	[ -n "${SHORT[$d/$f]:-}" ] && case $s in "${SHORT[$d/$f]}"*) return 0 ;; esac
	[ "$d" = shadow ] && case $s in sh_* | sc_* | cc_* | h2msg_*) return 0 ;; esac
	[ "$d" = cmd ] && case $s in cmd_* | main) return 0 ;; esac
	return 1
}

bad=0 n=0
for o in "${objs[@]}"; do
	d=${o%/*}
	d=${d##*/}
	f=${o##*/}
	f=${f%.o}
	while read -r _ k s; do
		n=$((n + 1))
		allowed "$d" "$f" "$k" "$s" && continue
		echo "  agent/$d/$f.c: $s"
		bad=$((bad + 1))
	done < <(nm --defined-only "$o" | awk '$2 ~ /^[TDRBGS]$/')
done
st_log "$n exported symbols in ${#objs[@]} objects, ${#types[@]} object types"
[ "$n" -gt 500 ] || st_fail "only $n exported symbols: the objects were not read"
[ "$bad" -eq 0 ] || st_fail "$bad symbols outside the name rule (docs/ARCHITECTURE.md \"Names\")"
st_log "PASS"
