/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tap's TLS input (--tls, --keylog; docs/TLS.md): loads bpf/tls.bpf.c, finds the target's
 * processes and the libssl and libcrypto each maps, and reads each process's TLS in one of two
 * modes, attaching its probes to that process alone (a uprobe with a pid filter: the other
 * programs that map the same library never trap):
 *  - calls: uprobes on SSL_read/SSL_write(_ex) and friends; their plaintext comes as ring
 *    records (bpf/shadowtap.h, ST_RF_TLS) that agent/input/tap.c reads like the packets';
 *  - keys: one entry uprobe on libcrypto's EVP_KDF_derive, whose parameters carry each
 *    handshake's secrets (ST_REC_KDF); the tap decrypts the ciphertext its packet programs
 *    capture (agent/tlsdec/tlsdec.h). OpenSSL 3 only; the others stay in calls mode, said.
 * --tls-mode chooses (auto: per process, from the traps each mode costs it, measured as it
 * runs: requests per connection decide). A change moves the sessions that start from then
 * on; those under way finish in the mode they began in (calls -> keys keeps the per-call
 * probes until they end, at most ST_TLS_DRAIN_MAX_MS, then they are cut, said and counted).
 * -v names each process's mode at start and each change.
 *
 * Processes: the --cgroup's, or with --iface the owners of --port's listening sockets; their
 * forks and the programs started in the cgroup are announced by the kernel (ST_REC_PROC, with
 * a wakeup: st_tls__proc_event) and probed at once; the rest is found by a rescan every
 * ST_TLS_RESCAN_MS, which also decides the modes.
 */
#ifndef ST_TLS_H
#define ST_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/shadowtap.h"

struct st_target;
struct st_tap_opts;
struct st_tls;
struct st_tlsdec;

/* How often the target's processes are looked at again (new processes, new libssl files,
 * processes whose plaintext cannot be placed) and their modes decided. */
#define ST_TLS_RESCAN_MS 2000
/* Keys mode keeps a process's per-call probes for the sessions that began before it, until
 * they end, at most this long. */
#define ST_TLS_DRAIN_MAX_MS 30000
/* Calls mode keeps the EVP_KDF_derive probe this long for handshakes under way (a handshake
 * takes a round trip and some crypto: milliseconds; each hit costs a trap). */
#define ST_TLS_KDF_LINGER_MS 500

struct st_tls_hooks {
	/* Keys mode needs the ciphertext of --port from now on (on), or no longer (off): the tap
	 * attaches or detaches its packet programs. 0 or -errno. */
	int (*cipher)(void *ctx, bool on);
	void *ctx;
};

/*
 * Selection and copy policy: what the packet programs get (struct st_tap_opts). ring_fd >= 0:
 * the ring to write to (the packet programs', so one ring keeps the records in order), else
 * one of ring_bytes of its own. keys: keys mode may be used (a decryptor exists: the tap's).
 * NULL with errno after one line on stderr.
 */
struct st_tls *st_tls__open(const struct st_target *t, const struct st_tap_opts *o,
			    uint32_t ring_bytes, int ring_fd, bool keys,
			    const struct st_tls_hooks *hooks);
int st_tls__ring_fd(const struct st_tls *tls);
/* The decryptor whose per-process counts decide the modes (the tap's; may be NULL). */
void st_tls__set_decryptor(struct st_tls *tls, struct st_tlsdec *dec);
/* A timerfd that becomes readable every ST_TLS_RESCAN_MS; st_tls__rescan() reads it. */
int st_tls__timer_fd(const struct st_tls *tls);
/* Looks for new processes and libraries (attaching to them), decides modes, names processes
 * whose plaintext could not be placed; 0 or -errno (only for a broken timer). */
int st_tls__rescan(struct st_tls *tls);
/* An ST_REC_PROC record from the ring (size bytes): the process is probed now. */
void st_tls__proc_event(struct st_tls *tls, const void *rec, size_t size);
/* Programs that started in the cgroup are looked at again until they map a libssl (each
 * tick); cheap when there are none. */
void st_tls__poll(struct st_tls *tls);
/* Keys mode may be in use (the packet programs and the decryptor matter). */
bool st_tls__keys(const struct st_tls *tls);

struct st_tls_stats {
	struct st_counters kern[ST_DIR_MAX]; /* summed over CPUs */
	struct st_tls_counters tls;
	uint64_t libs;          /* library files probed */
	uint64_t attach_failed; /* libraries the probes could not be attached to */
	uint64_t pids;          /* processes of the target seen */
	uint64_t blind_pids;    /* ... of which without a probed library now */
	uint64_t procs_keys;    /* processes in keys mode now */
	uint64_t procs_calls;   /* ... in calls mode */
	uint64_t mode_changes;  /* a process's mode changed */
	uint64_t cut;           /* sessions begun in calls mode cut at the end of a drain */
	uint64_t traps;         /* uprobe hits in the target's processes now running */
};
void st_tls__stats(const struct st_tls *tls, struct st_tls_stats *out);
/* The fd of its copy_whole map (bpf/shadowtap.h): tap.c's st_tap__copy_whole() fills it. */
int st_tls__copy_whole_fd(const struct st_tls *tls);
/* The fd of its ports map (ST_PORT_ON, ST_PORT_WHOLE): st_tap__copy_port_whole() sets it. */
int st_tls__ports_fd(const struct st_tls *tls);
void st_tls__destroy(struct st_tls *tls);

#endif /* ST_TLS_H */
