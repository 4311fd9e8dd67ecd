/* SPDX-License-Identifier: GPL-2.0-only */
/* TLS 1.3 for the tee link, mutually authenticated (tlslink.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "tlslink.h"

struct st_tlslink_ctx {
	SSL_CTX *ctx;
};

struct st_tlslink {
	SSL_CTX *ctx;  /* a reference of its own */
	SSL *ssl;
	bool up;       /* the handshake was done: close_notify at free */
};

/* OpenSSL's first queued reason, or what. */
static void why(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_peek_last_error();
	char r[256] = "";

	if (e)
		ERR_error_string_n(e, r, sizeof(r));
	snprintf(err, errlen, "%s%s%s%s%s", what, path ? " " : "", path ? path : "", *r ? ": " : "",
		 r);
	ERR_clear_error();
}

static void set_timeout(int fd, int secs)
{
	struct timeval tv = { .tv_sec = secs };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static SSL_CTX *ctx_new(const struct st_tlslink_opts *o, bool server, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		why(err, errlen, "TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* a peer that dies mid-stream is an end of input: the stream decoder then says where
	 * it was cut */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
		why(err, errlen, "cannot use the certificate", o->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		why(err, errlen, "cannot use the key", o->key);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
		why(err, errlen, "cannot read the CA", o->ca);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/* no session tickets: the tee never reads, and bytes it leaves unread turn its close
	 * into a reset that can cut the stream's end off at the receiver */
	if (server)
		SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct st_tlslink_ctx *st_tlslink_ctx__new(const struct st_tlslink_opts *o, bool server,
					   char *err, size_t errlen)
{
	struct st_tlslink_ctx *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->ctx = ctx_new(o, server, err, errlen);
	if (!c->ctx) {
		free(c);
		return NULL;
	}
	return c;
}

void st_tlslink_ctx__free(struct st_tlslink_ctx *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

/* A link on fd with a reference to ctx. NULL with the reason in err. */
static struct st_tlslink *link_new(SSL_CTX *ctx, int fd, char *err, size_t errlen)
{
	struct st_tlslink *l = calloc(1, sizeof(*l));

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	SSL_CTX_up_ref(ctx);
	l->ctx = ctx;
	l->ssl = SSL_new(ctx);
	if (!l->ssl || SSL_set_fd(l->ssl, fd) != 1) {
		why(err, errlen, "TLS session", NULL);
		st_tlslink__free(l);
		return NULL;
	}
	return l;
}

/* Why a handshake failed, in err; what kind of failure it was. */
static enum st_tlslink_step hs_failed(struct st_tlslink *l, int rc, char *err, size_t errlen)
{
	int saved = errno; /* the socket's reason, before anything else can change it */
	int e = SSL_get_error(l->ssl, rc);
	unsigned long q = ERR_peek_last_error();
	long v = SSL_get_verify_result(l->ssl);
	enum st_tlslink_step kind = ST_TLSLINK_FAILED;

	if (v != X509_V_OK) {
		snprintf(err, errlen, "TLS handshake: the peer's certificate was refused (%s)",
			 X509_verify_cert_error_string(v));
		kind = ST_TLSLINK_REFUSED;
	} else if (q && ERR_GET_LIB(q) == ERR_LIB_SSL &&
		   ERR_GET_REASON(q) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		snprintf(err, errlen, "TLS handshake: the peer sent no certificate");
		kind = ST_TLSLINK_REFUSED;
	} else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && !q) ||
		   (q && ERR_GET_LIB(q) == ERR_LIB_SSL &&
		    ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		snprintf(err, errlen, "TLS handshake failed: %s",
			 e == SSL_ERROR_SYSCALL && saved ? strerror(saved) :
			 "the peer closed the connection");
		kind = ST_TLSLINK_CLOSED;
	} else if (q) {
		why(err, errlen, "TLS handshake failed", NULL);
	} else {
		snprintf(err, errlen, "TLS handshake failed (OpenSSL error %d)", e);
	}
	ERR_clear_error();
	return kind;
}

struct st_tlslink *st_tlslink__client(int fd, const struct st_tlslink_opts *o, int timeout_s,
				      char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_new(o, false, err, errlen);
	struct st_tlslink *l = ctx ? link_new(ctx, fd, err, errlen) : NULL;
	int rc;

	SSL_CTX_free(ctx); /* the link holds its own reference */
	if (!l)
		return NULL;
	set_timeout(fd, timeout_s);
	errno = 0;
	rc = SSL_connect(l->ssl);
	set_timeout(fd, 0);
	if (rc != 1) {
		hs_failed(l, rc, err, errlen);
		st_tlslink__free(l);
		return NULL;
	}
	l->up = true;
	return l;
}

struct st_tlslink *st_tlslink__accept(struct st_tlslink_ctx *c, int fd)
{
	char err[256];
	struct st_tlslink *l = link_new(c->ctx, fd, err, sizeof(err));

	if (l)
		SSL_set_accept_state(l->ssl);
	else
		errno = ENOMEM;
	return l;
}

enum st_tlslink_step st_tlslink__handshake(struct st_tlslink *l, char *err, size_t errlen)
{
	int rc;

	ERR_clear_error();
	errno = 0;
	rc = SSL_do_handshake(l->ssl);
	if (rc == 1) {
		l->up = true;
		return ST_TLSLINK_DONE;
	}
	switch (SSL_get_error(l->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return ST_TLSLINK_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return ST_TLSLINK_WANT_WRITE;
	default:
		return hs_failed(l, rc, err, errlen);
	}
}

int st_tlslink__write(struct st_tlslink *l, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n;

		if (SSL_write_ex(l->ssl, (const char *)buf + done, len - done, &n) != 1) {
			int e = SSL_get_error(l->ssl, 0);

			ERR_clear_error();
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
				return -EAGAIN;
			if (e == SSL_ERROR_SYSCALL && errno)
				return -errno;
			return -EPIPE;
		}
		done += n;
	}
	return 0;
}

ssize_t st_tlslink__read(struct st_tlslink *l, void *buf, size_t len)
{
	size_t n;
	int e;

	if (SSL_read_ex(l->ssl, buf, len, &n) == 1)
		return (ssize_t)n;
	e = SSL_get_error(l->ssl, 0);
	ERR_clear_error();
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_SYSCALL && errno)
		return -errno;
	return -EPROTO;
}

void st_tlslink__free(struct st_tlslink *l)
{
	if (!l)
		return;
	if (l->ssl) {
		/* not after a failed handshake: OpenSSL forbids it, and a stranger gets nothing */
		if (l->up)
			SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
	}
	SSL_CTX_free(l->ctx);
	free(l);
}

bool st_tlslink_opts_check(const struct st_tlslink_opts *o, const char *link, bool insecure,
			   const char *cmd, const char *opt)
{
	if ((o->cert || o->key || o->ca) && (!link || insecure)) {
		pr_err("%s: --cert, --key and --ca are for %s without --insecure", cmd, opt);
		return false;
	}
	if (link && !insecure && (!o->cert || !o->key || !o->ca)) {
		pr_err("%s: %s needs --cert, --key and --ca (TLS 1.3, both ends authenticated), "
		       "or --insecure for plaintext", cmd, opt);
		return false;
	}
	return true;
}
