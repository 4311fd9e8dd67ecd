/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee link's TLS (tee --to, receive --listen; docs/TEE.md): TLS 1.3 only, through
 * OpenSSL, mutually authenticated: each end presents its certificate and key and accepts
 * only a peer whose certificate chains to the CA file given (a CA made for this purpose: any
 * certificate it signed is accepted; names are not checked).
 *
 * The tee's end (client) connects on a blocking socket, once per link. The receiver's end
 * (server) handshakes with whoever connects, strangers included, so it never blocks: its
 * certificate, key and CA are read once (st_tlslink_ctx), and each handshake is a step the
 * caller's event loop drives each time the socket is ready (st_tlslink__accept(),
 * st_tlslink__handshake()). One thread per link; contexts may be shared by links.
 */
#ifndef ST_TLSLINK_H
#define ST_TLSLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct st_tlslink_opts {
	const char *cert; /* PEM certificate (chain) of this end */
	const char *key;  /* PEM private key */
	const char *ca;   /* PEM CA certificate(s) the peer's must chain to */
};

struct st_tlslink;
struct st_tlslink_ctx;

/*
 * After parsing: whether the link's options go together (tee --to, receive --listen: one
 * rule for both ends). link is the link option's value (NULL: not given), opt its name
 * ("--to", "--listen"), cmd the command's. --cert, --key and --ca are for a link without
 * --insecure, and such a link needs all three. false after one line on stderr.
 */
bool st_tlslink_opts_check(const struct st_tlslink_opts *o, const char *link, bool insecure,
			   const char *cmd, const char *opt);

/* This end's certificate, key and CA, read and checked now. NULL with one line in err
 * (which file, OpenSSL's reason). */
struct st_tlslink_ctx *st_tlslink_ctx__new(const struct st_tlslink_opts *o, bool server,
					   char *err, size_t errlen);
/* Safe on NULL; links made from it keep what they need. */
void st_tlslink_ctx__free(struct st_tlslink_ctx *c);

/* The client's handshake on a connected blocking socket (at most timeout_s). NULL with one
 * line in err (what failed, OpenSSL's reason). fd stays the caller's. */
struct st_tlslink *st_tlslink__client(int fd, const struct st_tlslink_opts *o, int timeout_s,
				      char *err, size_t errlen);

/* The server's end on a connected non-blocking socket: nothing is read or written until
 * st_tlslink__handshake(). NULL when out of memory. fd stays the caller's. */
struct st_tlslink *st_tlslink__accept(struct st_tlslink_ctx *c, int fd);

/* What a handshake step came to. */
enum st_tlslink_step {
	ST_TLSLINK_DONE = 0,   /* the peer is authenticated: read and write */
	ST_TLSLINK_WANT_READ,  /* call again once the socket is readable */
	ST_TLSLINK_WANT_WRITE, /* ... writable */
	ST_TLSLINK_CLOSED,     /* the peer closed or reset the connection mid-handshake */
	ST_TLSLINK_REFUSED,    /* its certificate did not chain to the CA, or it sent none */
	ST_TLSLINK_FAILED,     /* anything else: not a TLS 1.3 handshake (plain HTTP, TLS 1.2),
				* or the peer gave up (it refused this end's certificate) */
};

/* One step of the server's handshake, as far as the socket allows without waiting. On a
 * failure (CLOSED, REFUSED, FAILED) err says why in one line; the link is then only to be
 * freed. */
enum st_tlslink_step st_tlslink__handshake(struct st_tlslink *l, char *err, size_t errlen);

/* Writes all of buf. Blocking socket: 0 or -errno (-EPIPE: the peer closed). Non-blocking:
 * -EAGAIN when the socket is full (call again with the same bytes). */
int st_tlslink__write(struct st_tlslink *l, const void *buf, size_t len);
/* Reads (non-blocking socket): > 0 bytes, 0 at the peer's end, -EAGAIN when nothing is
 * ready, other -errno on error. */
ssize_t st_tlslink__read(struct st_tlslink *l, void *buf, size_t len);
/* Sends close_notify when the handshake was done (best effort) and frees; safe on NULL. */
void st_tlslink__free(struct st_tlslink *l);

#endif /* ST_TLSLINK_H */
