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

#include "tlslink.h"

struct st_tlslink {
	SSL_CTX *ctx;
	SSL *ssl;
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

static struct st_tlslink *start(int fd, const struct st_tlslink_opts *o, int timeout_s,
				bool server, char *err, size_t errlen)
{
	struct st_tlslink *l = calloc(1, sizeof(*l));
	int rc;

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ERR_clear_error();
	l->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!l->ctx) {
		why(err, errlen, "TLS context", NULL);
		goto fail;
	}
	SSL_CTX_set_min_proto_version(l->ctx, TLS1_3_VERSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* a peer that dies mid-stream is an end of input: the stream decoder then says where
	 * it was cut */
	SSL_CTX_set_options(l->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (SSL_CTX_use_certificate_chain_file(l->ctx, o->cert) != 1) {
		why(err, errlen, "cannot use the certificate", o->cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(l->ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(l->ctx) != 1) {
		why(err, errlen, "cannot use the key", o->key);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(l->ctx, o->ca, NULL) != 1) {
		why(err, errlen, "cannot read the CA", o->ca);
		goto fail;
	}
	SSL_CTX_set_verify(l->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/* no session tickets: the tee never reads, and bytes it leaves unread turn its close
	 * into a reset that can cut the stream's end off at the receiver */
	if (server)
		SSL_CTX_set_num_tickets(l->ctx, 0);
	l->ssl = SSL_new(l->ctx);
	if (!l->ssl || SSL_set_fd(l->ssl, fd) != 1) {
		why(err, errlen, "TLS session", NULL);
		goto fail;
	}
	set_timeout(fd, timeout_s);
	rc = server ? SSL_accept(l->ssl) : SSL_connect(l->ssl);
	set_timeout(fd, 0);
	if (rc != 1) {
		long v = SSL_get_verify_result(l->ssl);

		if (v != X509_V_OK)
			snprintf(err, errlen, "TLS handshake: the peer's certificate was refused (%s)",
				 X509_verify_cert_error_string(v));
		else if (ERR_peek_last_error())
			why(err, errlen, "TLS handshake failed", NULL);
		else
			snprintf(err, errlen, "TLS handshake failed: %s",
				 errno ? strerror(errno) : "the peer closed the connection");
		ERR_clear_error();
		goto fail;
	}
	return l;
fail:
	st_tlslink__free(l);
	return NULL;
}

struct st_tlslink *st_tlslink__client(int fd, const struct st_tlslink_opts *o, int timeout_s,
				      char *err, size_t errlen)
{
	return start(fd, o, timeout_s, false, err, errlen);
}

struct st_tlslink *st_tlslink__server(int fd, const struct st_tlslink_opts *o, int timeout_s,
				      char *err, size_t errlen)
{
	return start(fd, o, timeout_s, true, err, errlen);
}

int st_tlslink__write(struct st_tlslink *l, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t n;

		if (SSL_write_ex(l->ssl, (const char *)buf + done, len - done, &n) != 1) {
			int e = SSL_get_error(l->ssl, 0);

			ERR_clear_error();
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
		SSL_shutdown(l->ssl);
		SSL_free(l->ssl);
	}
	SSL_CTX_free(l->ctx);
	free(l);
}
