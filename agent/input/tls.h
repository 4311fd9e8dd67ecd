/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tap's TLS plaintext input (--tls, docs/TLS.md): loads bpf/tls.bpf.c, finds the
 * target's processes and the libssl they map, attaches the uprobes (bpf_links) and the
 * socket-syscall tracepoints, and rescans for new processes and libraries. Its records
 * are the tap's (bpf/shadowtap.h, ST_RF_TLS): agent/input/tap.c reads its ring like the
 * packet programs' one.
 */
#ifndef ST_TLS_H
#define ST_TLS_H

#include <stdint.h>

#include "bpf/shadowtap.h"

struct st_target;
struct st_tap_opts;
struct st_tls;

/* How often the target's processes are looked at again (new processes, new libssl
 * files, processes whose plaintext cannot be placed). */
#define ST_TLS_RESCAN_MS 2000

/* Selection and copy policy: what the packet programs get (struct st_tap_opts). */
struct st_tls *st_tls__open(const struct st_target *t, const struct st_tap_opts *o,
			    uint32_t ring_bytes);
int st_tls__ring_fd(const struct st_tls *tls);
/* A timerfd that becomes readable every ST_TLS_RESCAN_MS; st_tls__rescan() reads it. */
int st_tls__timer_fd(const struct st_tls *tls);
/* Looks for new processes and libraries (attaching to them) and names processes whose
 * plaintext could not be placed; 0 or -errno (only for a broken timer). */
int st_tls__rescan(struct st_tls *tls);

struct st_tls_stats {
	struct st_counters kern[ST_DIR_MAX]; /* summed over CPUs */
	struct st_tls_counters tls;
	uint64_t libs;      /* library files probed */
	uint64_t attach_failed; /* libraries the probes could not be attached to */
	uint64_t pids;      /* processes of the target seen */
	uint64_t blind_pids; /* ... of which without a probed library now */
};
void st_tls__stats(const struct st_tls *tls, struct st_tls_stats *out);
/* The fd of its copy_whole map (bpf/shadowtap.h): tap.c's st_tap__copy_whole() fills it. */
int st_tls__copy_whole_fd(const struct st_tls *tls);
void st_tls__destroy(struct st_tls *tls);

#endif /* ST_TLS_H */
