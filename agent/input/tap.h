/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The live tap: loads the BPF programs, fills their filter maps, attaches them
 * to an interface (TCX links, else clsact filters) or a cgroup (cgroup_skb
 * links), and turns ring buffer records into struct st_segment callbacks.
 * With --tls (st_target.tls) the input is the TLS plaintext of the target's
 * processes instead (agent/input/tls.c, bpf/tls.bpf.c): same records, same
 * callbacks. Its keys mode loads the packet programs too, attached while a process
 * needs them, and their ciphertext goes through the decryptor (agent/tlsdec/), whose
 * plaintext segments are the callbacks'. --keylog alone is a capture of the packets
 * with the secrets written to a file (the decryptor ties them to connections).
 */
#ifndef ST_TAP_H
#define ST_TAP_H

#include <stdbool.h>

#include "bpf/connhash.h"
#include "opts.h"
#include "segment.h"
#include "stats.h"

struct st_loop;
struct st_tap;

/* Called once per decoded record, in ring order. Return < 0 to stop consuming. */
typedef int (*st_tap_cb)(void *ctx, const struct st_segment *seg);

/* libbpf 1.1's headers predate TCX; the kernel numbers are stable UAPI. */
#define ST_BPF_TCX_INGRESS 46
#define ST_BPF_TCX_EGRESS 47
/* Legacy clsact filters (kernels without TCX) carry this handle and priority,
 * so a restart after kill -9 finds and removes its own stale filters and
 * never touches anyone else's (tests/integration/test_capture_clsact.sh
 * looks for the handle). */
#define ST_TC_HANDLE 0x5354
#define ST_TC_PRIO 0x5354

struct st_tap_stats {
	struct st_counters kern[ST_DIR_MAX]; /* summed over CPUs (--tls: the TLS probes') */
	uint64_t bad_records;                /* records user space rejected (size, version) */
	uint64_t detaches;                   /* times the interface went away under the tap */
	uint64_t blind_ns;                   /* time without an interface (the current gap too) */
};

/*
 * What the kernel selects and copies, fixed before load (the verifier prunes
 * what is off). All zero = every connection, every byte (capture, flows).
 */
struct st_tap_opts {
	/* Connections kept per 10000 by st_conn_hash() (bpf/connhash.h) over the
	 * client -> server 4-tuple: shadow --sample's decision, made in the kernel so
	 * a connection left out costs a parse and a hash. 0 or ST_SAMPLE_ALL: all. */
	uint32_t sample_permyriad;
	/* enum st_copy_policy per direction (ST_DIR_IN client -> server, ST_DIR_OUT). */
	uint8_t copy[ST_DIR_MAX];
	/* ST_COPY_HEAD: payload bytes copied from the start of each segment (skb: with GSO
	 * a super-packet is one segment), 1 .. ST_CHUNK_MAX; 0 = 256. */
	uint32_t head_bytes;
};

/* shadow --sample PCT as sample_permyriad, so that the kernel's
 * hash % 10000 < permyriad keeps exactly what the shadow engine's
 * (double)(hash % 10000) < PCT * 100 keeps: the ceiling of PCT * 100.
 * Like the engine, PCT <= 0 or > 100 means everything. */
static inline uint32_t st_tap_permyriad(double pct)
{
	double x = pct * 100;
	uint32_t p;

	if (!(x > 0) || x >= ST_SAMPLE_ALL)
		return ST_SAMPLE_ALL;
	p = (uint32_t)x;
	return (double)p < x ? p + 1 : p;
}

/*
 * Opens, configures and attaches. On failure returns NULL with errno set,
 * after printing one line on stderr, and leaves nothing attached.
 * opts may be NULL (everything, whole); st_tap__open() is that.
 */
struct st_tap *st_tap__open_opts(const struct st_target *t, bool verbose,
				 const struct st_tap_opts *opts, st_tap_cb cb, void *ctx);
struct st_tap *st_tap__open(const struct st_target *t, bool verbose, st_tap_cb cb, void *ctx);
/* A file descriptor that becomes readable when records wait (epoll it). */
int st_tap__fd(const struct st_tap *tap);
/* Delivers every waiting record to the callback; returns records consumed or < 0. */
int st_tap__consume(struct st_tap *tap);
void st_tap__stats(const struct st_tap *tap, struct st_tap_stats *out);
/*
 * --tls: adds the rescan timer to the loop instead (new processes and libraries).
 * An interface target is watched (agent/input/linkwatch.c): when the interface goes away the tap
 * says so at once (one line) and captures nothing; when an interface of that name comes back
 * the programs are attached to it again (st_tap__reattach) and it says so. With
 * --exit-on-detach the loop stops instead (-ENODEV: the command exits 1). Adds the watch to the
 * loop; nothing to do for a cgroup target.
 */
int st_tap__watch(struct st_tap *tap, struct st_loop *l);
/* Takes what st_tap__watch() added out of the loop (before st_tap__destroy, loop running on). */
int st_tap__unwatch(struct st_tap *tap, struct st_loop *l);
/* Attaches the programs to interface ifindex (the one of its name that came back), the same
 * way as at start (TCX links or clsact filters); the maps and the ring stay as they are. What
 * was attached before is detached first. 0 or -errno. */
int st_tap__reattach(struct st_tap *tap, int ifindex);

/* Replaces the port and peer filters in the maps, in place, while attached (a reload, the
 * union of the jobs sharing the tap): 0, or -EOPNOTSUPP when that needs a new load (--tls,
 * the peer filter switched on or off), or -errno. */
int st_tap__set_filters(struct st_tap *tap, const struct st_target *t);

/* The headers-only policy no longer applies to connection k (client -> server, as reassembly
 * keys it): its payload is copied whole from now on (the copy_whole map, bpf/shadowtap.h; an
 * LRU of ST_MAX_WHOLE connections). 0 or -errno. */
int st_tap__copy_whole(struct st_tap *tap, const struct st_flow_key *k);
/* The headers-only policy no longer applies to the service's port (a port it captures): every
 * connection of it is copied whole from its next segment (ST_PORT_WHOLE, bpf/shadowtap.h; kept
 * across st_tap__set_filters while the port stays listed). 0 or -errno (-ENOENT: not captured). */
int st_tap__copy_port_whole(struct st_tap *tap, uint16_t port);
/* The copy_whole map's key of connection k (client -> server). */
void st_tap_conn_key(const struct st_flow_key *k, struct st_conn_key *out);

/* What every live command reports about the capture itself (stats.h table). */
#define ST_TAP_STATS(X, T)                                                                     \
	X(T, lost, COUNTER_BYTES, "payload bytes the kernel could not deliver (ring buffer full)") \
	X(T, lost_segs, COUNTER, "segments with at least one byte not delivered")             \
	X(T, lost_in, COUNTER_BYTES, "lost bytes, client to service")                         \
	X(T, lost_out, COUNTER_BYTES, "lost bytes, service to client")                        \
	X(T, loss_unmarked, COUNTER, "loss records that could not be delivered either")       \
	X(T, loss_unmarked_in, DETAIL, "... of which client to service")                      \
	X(T, loss_unmarked_out, DETAIL, "... of which service to client")                     \
	X(T, parse_skipped, COUNTER, "packets the kernel parser gave up on (truncated, fragments)") \
	X(T, bad_records, COUNTER, "ring records user space rejected (size, version)")       \
	X(T, detaches, COUNTER, "times the captured interface went away")                     \
	X(T, blind_ms, COUNTER_MS, "milliseconds the capture was blind (interface gone)")     \
	X(T, sampled_out, DETAIL, "segments of connections the kernel left out (--sample)")   \
	X(T, elided, DETAIL_BYTES, "payload bytes the copy policy left out on purpose (not lost)") \
	X(T, tls_calls, DETAIL, "--tls: SSL read/write calls of the target's processes")     \
	X(T, tls_conns, DETAIL, "--tls: TLS connections captured")                            \
	X(T, tls_conns_joined, DETAIL, "--tls: ... of which first seen after their handshake") \
	X(T, tls_conns_other, DETAIL, "--tls: TLS connections left out (port, --host, --sample)") \
	X(T, tls_unattributed, DETAIL_BYTES, "--tls: plaintext bytes of SSL calls without socket I/O " \
	  "(memory BIOs): not captured")                                                     \
	X(T, tls_filtered, DETAIL, "--tls: probe hits in processes outside the target")      \
	X(T, tls_libs, DETAIL, "--tls: library files probed")                                 \
	X(T, tls_blind_pids, DETAIL, "--tls: target processes without a probed libssl")      \
	X(T, tls_procs_keys, DETAIL, "--tls: processes in keys mode (secrets per handshake)") \
	X(T, tls_procs_calls, DETAIL, "--tls: processes in calls mode (per-call probes)")     \
	X(T, tls_mode_changes, DETAIL, "--tls: times a process changed mode")                \
	X(T, tls_traps, DETAIL, "--tls: uprobe hits in the target's processes (running ones)") \
	X(T, tls_conns_keyed, DETAIL, "--tls: sessions left to the keys by the per-call probes") \
	X(T, tls_kdf, DETAIL, "--tls: EVP_KDF_derive calls probed (keys mode's traps)")       \
	X(T, tls_kdf_lost, DETAIL, "--tls: secrets the ring could not take")                 \
	X(T, tls_keyed, DETAIL, "--tls: connections decrypted (their secrets found)")       \
	X(T, tls_decrypted, DETAIL_BYTES, "--tls: plaintext bytes decrypted")                      \
	X(T, tls_dec_lost, DETAIL_BYTES, "--tls: plaintext bytes lost to capture gaps or records "  \
	  "that did not open (exact holes)")                                                 \
	X(T, tls_dec_failed, DETAIL, "--tls: records that did not authenticate")            \
	X(T, tls_resyncs, DETAIL, "--tls: decryption found again after a gap")              \
	X(T, tls_key_updates, DETAIL, "--tls: TLS 1.3 KeyUpdates followed")                  \
	X(T, tls_nokeys, DETAIL, "--tls: TLS connections captured that ended without "        \
	  "secrets (not delivered)")                                                         \
	X(T, tls_unusable, DETAIL, "--tls: connections not TLS, or of a version or suite not "  \
	  "decrypted (CBC, TLS 1.1)")                                                         \
	X(T, tls_joined, DETAIL, "--tls: ciphertext connections first seen midway (older "    \
	  "than the capture: no handshake, not decrypted)")                                  \
	X(T, tls_given_up, DETAIL, "--tls: connections given up (a gap in the handshake, a "   \
	  "hold cap)")                                                                       \
	X(T, tls_dup, DETAIL, "--tls: per-call plaintext of connections decrypted (dropped)") \
	X(T, tls_cut, DETAIL, "--tls: sessions begun in calls mode, cut after the keys took "  \
	  "over")
struct st_tap_summary {
	ST_TAP_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_tap_stat);
/* The kernel's counters summed over CPUs and directions; zeros for a NULL tap. */
void st_tap__summary(const struct st_tap *tap, struct st_tap_summary *out);
/* Detaches everything and frees; safe on NULL. */
void st_tap__destroy(struct st_tap *tap);

struct bpf_map;
/* Fills an object's port array and host tries (bpf/ring.h) from the target's --port and
 * --host: tap.bpf.c's and tls.bpf.c's alike. 0 or -errno. */
int st_tap__fill_filters(struct bpf_map *ports, struct bpf_map *hosts_v4, struct bpf_map *hosts_v6,
			 const struct st_target *t);

#endif /* ST_TAP_H */
