/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee link's TLS (tee --to, receive --listen; docs/TEE.md): TLS 1.3 only, through
 * OpenSSL, mutually authenticated: each end presents its certificate and key and accepts
 * only a peer whose certificate chains to the CA file given (a CA made for this purpose: any
 * certificate it signed is accepted; names are not checked).
 */
#ifndef ST_TLSLINK_H
#define ST_TLSLINK_H

#include <stddef.h>
#include <sys/types.h>

struct st_tlslink_opts {
	const char *cert; /* PEM certificate (chain) of this end */
	const char *key;  /* PEM private key */
	const char *ca;   /* PEM CA certificate(s) the peer's must chain to */
};

struct st_tlslink;

/* The handshake on a connected blocking socket (at most timeout_s), as client or server.
 * NULL with one line in err (what failed, OpenSSL's reason). fd stays the caller's. */
struct st_tlslink *st_tlslink__client(int fd, const struct st_tlslink_opts *o, int timeout_s,
				      char *err, size_t errlen);
struct st_tlslink *st_tlslink__server(int fd, const struct st_tlslink_opts *o, int timeout_s,
				      char *err, size_t errlen);
/* Writes all of buf (blocking socket). 0 or -errno (-EPIPE: the peer closed). */
int st_tlslink__write(struct st_tlslink *l, const void *buf, size_t len);
/* Reads (non-blocking socket): > 0 bytes, 0 at the peer's end, -EAGAIN when nothing is
 * ready, other -errno on error. */
ssize_t st_tlslink__read(struct st_tlslink *l, void *buf, size_t len);
/* Sends close_notify (best effort) and frees; safe on NULL. */
void st_tlslink__free(struct st_tlslink *l);

#endif /* ST_TLSLINK_H */
