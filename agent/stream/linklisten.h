/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The receiving end of the tee link (receive --listen; docs/TEE.md, "The link"): a listening
 * socket that takes tee connections, whoever else connects, without ever blocking the
 * caller's event loop.
 *
 * A connection is a peer until it has proved it is a tee: its TLS 1.3 handshake done
 * (tlslink.h: a certificate that chains to the CA; no TLS with plaintext), the receiver's one
 * byte ST_STREAM_LINK_OK written, and the stream's preamble magic read (stream.h). Then it is
 * handed to the caller (on_tee) with the preamble's bytes. Every step is taken when the
 * peer's socket is ready, from the listener's own epoll fd: one entry in the caller's loop
 * (st_linklisten__fd, st_linklisten__run), plus st_linklisten__tick for the timeouts.
 *
 * Bounds, so that a port scan, a flood of idle sockets or a slow client cannot keep the tee
 * out nor stop the receiver:
 *  - at most max_pending peers at once, at most max_per_addr from one address (an IPv4
 *    address, an IPv6 /64). A connection over either bound takes the place of the oldest
 *    peer of its address, else of the oldest peer: the newest connection always gets its
 *    handshake, and a tee's takes milliseconds, so idle sockets cannot crowd it out;
 *  - timeout_ns from accept to the preamble;
 *  - while the caller has its tee (st_linklisten__busy), connections are closed at once (one
 *    tee at a time).
 * A refused peer is counted (rejected_peers and its reason, below) and closed; each reason is
 * said once, naming the first peer refused for it, then only counted. The listener itself
 * never ends: nothing a peer sends is an error of the caller's.
 *
 * Memory: the peers' table (max_pending entries) and OpenSSL's state of each handshake.
 * One thread.
 */
#ifndef ST_LINKLISTEN_H
#define ST_LINKLISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "tlslink.h"

#define ST_LINKLISTEN_TIMEOUT_NS (10ull * 1000000000)
#define ST_LINKLISTEN_MAX_PENDING 64
#define ST_LINKLISTEN_MAX_PER_ADDR 4

#define ST_LINKLISTEN_STATS(X, T)                                                              \
	X(T, rejected_peers, COUNTER, "--listen: connections refused (not a tee, too slow, "   \
	  "crowded out, or a tee was connected already)")                                    \
	X(T, rejected_closed, DETAIL, "... closed or reset before they were done")              \
	X(T, rejected_handshake, DETAIL, "... not a TLS 1.3 handshake, or the peer gave up")     \
	X(T, rejected_cert, DETAIL, "... a certificate the CA did not sign, or none")           \
	X(T, rejected_not_tee, DETAIL, "... sent something else than a tee stream")             \
	X(T, rejected_timeout, DETAIL, "... not done within 10 s")                               \
	X(T, rejected_crowded, DETAIL, "... made room for a newer connection (too many at "    \
	  "once from one address, or in all)")                                               \
	X(T, rejected_busy, DETAIL, "... came while a tee was connected")                       \
	X(T, handshakes_peak, GAUGE, "--listen: most connections handshaking at once")

struct st_linklisten_stats {
	ST_LINKLISTEN_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_linklisten_stat);

struct st_linklisten_config {
	const char *addr;                  /* ADDR:PORT, [V6]:PORT, :PORT */
	const struct st_tlslink_opts *tls; /* NULL: plaintext (--insecure) */
	const char *what;                  /* messages' prefix ("receive: --listen ADDR:PORT"), copied */
	uint64_t timeout_ns;               /* accept to preamble; 0 = ST_LINKLISTEN_TIMEOUT_NS */
	unsigned max_pending;              /* 0 = ST_LINKLISTEN_MAX_PENDING */
	unsigned max_per_addr;             /* 0 = ST_LINKLISTEN_MAX_PER_ADDR */
	/* A tee: fd (non-blocking) and tls (NULL in plaintext) are the callee's from now on;
	 * pre holds the stream's first n bytes, read already (its preamble). */
	void (*on_tee)(void *ctx, int fd, struct st_tlslink *tls, const uint8_t *pre, size_t n);
	void *ctx;
};

struct st_linklisten;

/* Listens (and reads the certificate, key and CA). NULL with one line in err. */
struct st_linklisten *st_linklisten__new(const struct st_linklisten_config *c, char *err,
					 size_t errlen);
/* The port it listens on (useful with port 0). */
unsigned st_linklisten__port(const struct st_linklisten *l);
/* Readable when there is work: add it to the loop, and call st_linklisten__run then. */
int st_linklisten__fd(const struct st_linklisten *l);
/* Accepts what is waiting and takes every handshake step that is ready (on_tee may be
 * called from here). */
void st_linklisten__run(struct st_linklisten *l);
/* Refuses the peers whose time is up (call at least every few hundred ms). */
void st_linklisten__tick(struct st_linklisten *l, uint64_t now_ns);
/* busy: the caller has its tee; new connections are refused until it says otherwise. */
void st_linklisten__busy(struct st_linklisten *l, bool busy);
void st_linklisten__stats(const struct st_linklisten *l, struct st_linklisten_stats *st);
/* Closes the listening socket and every peer. Safe on NULL. */
void st_linklisten__free(struct st_linklisten *l);

#endif /* ST_LINKLISTEN_H */
