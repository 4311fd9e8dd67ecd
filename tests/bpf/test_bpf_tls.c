/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The TLS probes (bpf/tls.bpf.c) through the tap (--tls), on this test binary itself:
 * it defines SSL_read, SSL_write, SSL_read_ex, SSL_write_ex, SSL_do_handshake, SSL_set_fd
 * and SSL_free with OpenSSL's signatures, doing their socket I/O inside the call as
 * OpenSSL's socket BIO does (or none, as a memory BIO does), and probes them with
 * --libssl /proc/self/exe. The test process owns the listening socket of the port, so
 * --iface lo selects it. Uprobes cannot be test-run (bpf_prog_test_run): these are real
 * probe hits on real loopback connections. Root only (skips otherwise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"

/* ---- a fake libssl ------------------------------------------------------------------- */

struct fake_ssl {
	int fd;         /* -1: a memory BIO (no socket I/O inside the calls) */
	uint8_t buf[4096]; /* read ahead: what the next SSL_read returns without a syscall */
	size_t have, off;
	int readahead;  /* SSL_read reads up to 4096 at once and hands out at most num */
};

/* noipa: GCC would otherwise call specialised clones (SSL_free.constprop.0) that the
 * probes on the real symbols never see. */
#if defined(__clang__)
#define FAKE __attribute__((noinline, optnone, used, visibility("default")))
#else
#define FAKE __attribute__((noinline, noipa, used, visibility("default")))
#endif
int SSL_set_fd(struct fake_ssl *s, int fd);
int SSL_do_handshake(struct fake_ssl *s);
int SSL_read(struct fake_ssl *s, void *buf, int num);
int SSL_write(struct fake_ssl *s, const void *buf, int num);
int SSL_read_ex(struct fake_ssl *s, void *buf, size_t num, size_t *readbytes);
int SSL_write_ex(struct fake_ssl *s, const void *buf, size_t num, size_t *written);
void SSL_free(struct fake_ssl *s);

FAKE int SSL_set_fd(struct fake_ssl *s, int fd)
{
	s->fd = fd;
	__asm__ volatile("" ::: "memory");
	return 1;
}

FAKE int SSL_do_handshake(struct fake_ssl *s)
{
	__asm__ volatile("" ::: "memory");
	return 1;
}

FAKE int SSL_read(struct fake_ssl *s, void *buf, int num)
{
	ssize_t n;

	if (s->have > s->off) { /* from the buffer: no syscall in this call */
		n = (ssize_t)(s->have - s->off) < num ? (ssize_t)(s->have - s->off) : num;
		memcpy(buf, s->buf + s->off, (size_t)n);
		s->off += (size_t)n;
		return (int)n;
	}
	if (s->fd < 0)
		return -1;
	if (s->readahead) {
		n = read(s->fd, s->buf, sizeof(s->buf));
		if (n <= 0)
			return (int)n;
		s->have = (size_t)n;
		s->off = 0;
		return SSL_read(s, buf, num);
	}
	n = read(s->fd, buf, (size_t)num);
	return (int)n;
}

FAKE int SSL_write(struct fake_ssl *s, const void *buf, int num)
{
	size_t done = 0;

	if (s->fd < 0)
		return num; /* into a memory BIO */
	while (done < (size_t)num) {
		ssize_t n = write(s->fd, (const char *)buf + done, (size_t)num - done);

		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return num;
}

/* LibreSSL's shape: the _ex variant calls the plain one (a nested probed call). */
FAKE int SSL_read_ex(struct fake_ssl *s, void *buf, size_t num, size_t *readbytes)
{
	int n = SSL_read(s, buf, (int)num);

	*readbytes = n > 0 ? (size_t)n : 0;
	return n > 0;
}

FAKE int SSL_write_ex(struct fake_ssl *s, const void *buf, size_t num, size_t *written)
{
	size_t done = 0;

	while (done < num) {
		ssize_t n = send(s->fd, (const char *)buf + done, num - done, 0);

		if (n <= 0)
			return 0;
		done += (size_t)n;
	}
	*written = num;
	return 1;
}

FAKE void SSL_free(struct fake_ssl *s)
{
	__asm__ volatile("" ::: "memory");
}

/* ---- fixture ------------------------------------------------------------------------ */

#define MAX_SEGS 4096

struct seg {
	struct st_segment s;
	uint8_t *data;
};

struct fx {
	int lfd, other_lfd;
	uint16_t port, other_port;
	struct st_target t;
	struct st_tap *tap;
	struct seg segs[MAX_SEGS];
	size_t n;
};

static int collect(void *ctx, const struct st_segment *seg)
{
	struct fx *f = ctx;
	struct seg *g;

	assert_true(f->n < MAX_SEGS);
	g = &f->segs[f->n++];
	g->s = *seg;
	g->data = NULL;
	if (seg->kind == ST_SEG_DATA && seg->len) {
		g->data = malloc(seg->len);
		memcpy(g->data, seg->data, seg->len);
	}
	g->s.data = g->data;
	return 0;
}

static void segs_reset(struct fx *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->segs[i].data);
	f->n = 0;
}

static int listen_lo(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int open_tap_opts(struct fx *f, unsigned ring_mb, const struct st_tap_opts *o)
{
	memset(&f->t, 0, sizeof(f->t));
	f->t.iface = "lo";
	f->t.ports[0] = f->port;
	f->t.n_ports = 1;
	f->t.tls = true;
	f->t.libssl[0] = "/proc/self/exe";
	f->t.n_libssl = 1;
	f->t.ring_mb = ring_mb;
	f->tap = st_tap__open_opts(&f->t, false, o, collect, f);
	return f->tap ? 0 : -1;
}

static int open_tap(struct fx *f, unsigned ring_mb)
{
	return open_tap_opts(f, ring_mb, NULL);
}

static int setup(void **state)
{
	struct fx *f;

	if (geteuid() != 0)
		return 0;
	f = calloc(1, sizeof(*f));
	f->lfd = listen_lo(&f->port);
	f->other_lfd = listen_lo(&f->other_port);
	if (open_tap(f, 16)) {
		close(f->lfd);
		close(f->other_lfd);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (!f)
		return 0;
	st_tap__destroy(f->tap);
	segs_reset(f);
	close(f->lfd);
	close(f->other_lfd);
	free(f);
	return 0;
}

#define NEED_ROOT()                           \
	do {                                  \
		if (!*state) {                \
			skip();               \
			return;               \
		}                             \
	} while (0)

/* A loopback connection to port: *cli the client's fd, returns the server's. */
static int connect_lo(int lfd, uint16_t port, int *cli)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), s;

	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	*cli = c;
	return s;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	return ntohs(a.sin_port);
}

struct drain {
	int fd;
	size_t want, got;
};

static void *drain_thread(void *arg)
{
	struct drain *d = arg;
	char buf[65536];

	while (d->got < d->want) {
		ssize_t n = read(d->fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		d->got += (size_t)n;
	}
	return NULL;
}

static void pattern(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed) ^ (i >> 9));
}

/* The stream of direction dir of the connection with client port cport, from the
 * segments, checked gap-free: *syn, *fin say whether SYN and FIN came. Returns its bytes
 * (malloc'd) and length in *len. */
static uint8_t *stream(struct fx *f, uint16_t cport, int dir, size_t *len, int *syn, int *fin)
{
	uint8_t *out = NULL;
	uint32_t next = 0;
	int started = 0;

	*len = 0;
	*syn = *fin = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct st_segment *s = &f->segs[i].s;
		uint16_t cp = dir == ST_DIR_IN ? s->key.sport : s->key.dport;

		if (s->dir != dir || cp != cport)
			continue;
		assert_int_equal(s->kind, ST_SEG_DATA);
		assert_int_equal(s->key.src.family, 4);
		assert_int_equal(dir == ST_DIR_IN ? s->key.dport : s->key.sport, f->port);
		if (s->flags & ST_TCP_SYN) {
			*syn = 1;
			next = s->seq + 1;
			started = 1;
			continue;
		}
		if (!started) {
			next = s->seq;
			started = 1;
		}
		assert_int_equal(s->seq, next); /* gap-free, in order */
		if (s->len) {
			out = realloc(out, *len + s->len);
			memcpy(out + *len, s->data, s->len);
			*len += s->len;
			next += s->len;
		}
		if (s->flags & ST_TCP_FIN)
			*fin = 1;
	}
	return out;
}

/* ---- tests -------------------------------------------------------------------------- */

/* The session a server sees: SSL_set_fd, handshake, reads and writes of every size up to
 * 1 MiB (parts of 16 KiB), the _ex variants, SSL_free: one gap-free stream per direction,
 * SYN to FIN, on the connection's real 4-tuple. */
static void test_session_whole(void **state)
{
	struct fx *f;
	struct fake_ssl ssl = { .fd = -1 };
	static uint8_t big[(1 << 20) + 7], rd[4096];
	const size_t sizes[] = { 1, 100, 1448, 16384, 16385, 65536, sizeof(big) };
	size_t want_out = 0, want_in = 0, len, wrote;
	uint8_t *got;
	int cli, srv, syn, fin;
	uint16_t cport;
	struct st_tap_summary sum;

	NEED_ROOT();
	f = *state;
	srv = connect_lo(f->lfd, f->port, &cli);
	cport = local_port(cli);
	pattern(big, sizeof(big), 7);
	SSL_set_fd(&ssl, srv);
	assert_int_equal(SSL_do_handshake(&ssl), 1);
	/* client -> server: 300 bytes, read as 100 + 200 (SSL_read, SSL_read_ex) */
	assert_int_equal(write(cli, big, 300), 300);
	assert_int_equal(SSL_read(&ssl, rd, 100), 100);
	{
		size_t n = 0;

		assert_int_equal(SSL_read_ex(&ssl, rd, 200, &n), 1);
		assert_int_equal(n, 200);
	}
	want_in = 300;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct drain d = { .fd = cli, .want = sizes[i] };
		pthread_t th;

		pthread_create(&th, NULL, drain_thread, &d);
		if (i % 2)
			assert_int_equal(SSL_write(&ssl, big, (int)sizes[i]), (int)sizes[i]);
		else
			assert_int_equal(SSL_write_ex(&ssl, big, sizes[i], &wrote), 1);
		pthread_join(th, NULL);
		assert_int_equal(d.got, sizes[i]);
		want_out += sizes[i];
		assert_true(st_tap__consume(f->tap) >= 0);
	}
	SSL_free(&ssl);
	assert_true(st_tap__consume(f->tap) >= 0);

	got = stream(f, cport, ST_DIR_IN, &len, &syn, &fin);
	assert_int_equal(len, want_in);
	assert_memory_equal(got, big, 300);
	assert_true(syn && fin);
	free(got);
	got = stream(f, cport, ST_DIR_OUT, &len, &syn, &fin);
	assert_int_equal(len, want_out);
	assert_true(syn && fin);
	for (size_t i = 0, off = 0; i < sizeof(sizes) / sizeof(sizes[0]); off += sizes[i++])
		assert_memory_equal(got + off, big, sizes[i]);
	free(got);
	for (size_t i = 0; i < f->n; i++)
		assert_true(f->segs[i].s.len <= ST_CHUNK_MAX);
	st_tap__summary(f->tap, &sum);
	assert_int_equal(sum.lost, 0);
	assert_int_equal(sum.tls_conns, 1);
	assert_int_equal(sum.tls_conns_joined, 0);
	assert_int_equal(sum.tls_unattributed, 0);
	close(cli);
	close(srv);
}

/* A session whose start was not seen (no SSL_set_fd, no handshake): joined, no SYN; a read
 * served from the library's buffer (no syscall in the call) is still placed; LibreSSL's
 * SSL_read_ex -> SSL_read nesting counts once. */
static void test_joined_buffered_nested(void **state)
{
	struct fx *f;
	struct fake_ssl ssl = { .fd = -1, .readahead = 1 };
	uint8_t msg[1000], rd[1000], *got;
	size_t len, n = 0;
	int cli, srv, syn, fin;
	uint16_t cport;
	struct st_tap_summary sum;

	NEED_ROOT();
	f = *state;
	srv = connect_lo(f->lfd, f->port, &cli);
	cport = local_port(cli);
	ssl.fd = srv; /* set behind the library's back: the start is not seen */
	pattern(msg, sizeof(msg), 3);
	assert_int_equal(write(cli, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	usleep(20000);
	assert_int_equal(SSL_read_ex(&ssl, rd, 400, &n), 1); /* reads ahead 1000, returns 400 */
	assert_int_equal(n, 400);
	assert_int_equal(SSL_read(&ssl, rd + 400, 600), 600); /* from the buffer: no syscall */
	assert_memory_equal(rd, msg, sizeof(msg));
	assert_int_equal(st_tap__consume(f->tap) >= 0, 1);
	got = stream(f, cport, ST_DIR_IN, &len, &syn, &fin);
	assert_int_equal(len, sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	assert_false(syn);
	free(got);
	st_tap__summary(f->tap, &sum);
	assert_int_equal(sum.tls_conns, 1);
	assert_int_equal(sum.tls_conns_joined, 1);
	assert_int_equal(sum.tls_calls, 2); /* the nested SSL_read inside SSL_read_ex is not a call */
	SSL_free(&ssl);
	close(cli);
	close(srv);
}

/* Plaintext that no socket I/O inside the call ties to a connection (a memory BIO) is
 * counted, not delivered; a connection of a port not captured gives no record. */
static void test_unattributed_and_other_port(void **state)
{
	struct fx *f;
	struct fake_ssl mem = { .fd = -1 }, other = { .fd = -1 };
	uint8_t msg[500] = { 1 };
	int cli, srv;
	struct st_tap_summary sum;

	NEED_ROOT();
	f = *state;
	assert_int_equal(SSL_write(&mem, msg, sizeof(msg)), (int)sizeof(msg));
	srv = connect_lo(f->other_lfd, f->other_port, &cli);
	SSL_set_fd(&other, srv);
	assert_int_equal(SSL_write(&other, msg, sizeof(msg)), (int)sizeof(msg));
	SSL_free(&other);
	assert_true(st_tap__consume(f->tap) >= 0);
	assert_int_equal(f->n, 0);
	st_tap__summary(f->tap, &sum);
	assert_int_equal(sum.tls_unattributed, sizeof(msg));
	assert_int_equal(sum.tls_conns_other, 1);
	assert_int_equal(sum.tls_conns, 0);
	close(cli);
	close(srv);
}

/* A ring that fills: what it cannot take is a loss of exact bytes, marked on the
 * stream, and the bytes after it keep their places (seq). */
static void test_ring_full_loss(void **state)
{
	struct fx *f;
	struct fake_ssl ssl = { .fd = -1 };
	static uint8_t big[1 << 20];
	uint64_t delivered = 0, marked = 0, total = 0;
	uint32_t next = 0;
	int cli, srv, started = 0;
	struct st_tap_summary sum;

	NEED_ROOT();
	f = *state;
	st_tap__destroy(f->tap);
	f->tap = NULL;
	assert_int_equal(open_tap(f, 1), 0); /* 1 MiB ring */
	srv = connect_lo(f->lfd, f->port, &cli);
	SSL_set_fd(&ssl, srv);
	pattern(big, sizeof(big), 11);
	for (int i = 0; i < 4; i++) { /* 4 MiB with nobody reading the ring */
		struct drain d = { .fd = cli, .want = sizeof(big) };
		pthread_t th;

		pthread_create(&th, NULL, drain_thread, &d);
		assert_int_equal(SSL_write(&ssl, big, (int)sizeof(big)), (int)sizeof(big));
		pthread_join(th, NULL);
		total += sizeof(big);
	}
	assert_true(st_tap__consume(f->tap) >= 0);
	for (size_t i = 0; i < f->n; i++) {
		const struct st_segment *s = &f->segs[i].s;

		if (s->dir != ST_DIR_OUT || (s->flags & ST_TCP_SYN))
			continue;
		if (!started)
			next = s->seq, started = 1;
		assert_int_equal(s->seq, next);
		next += s->len;
		if (s->kind == ST_SEG_LOSS)
			marked += s->len;
		else
			delivered += s->len;
	}
	st_tap__summary(f->tap, &sum);
	assert_true(sum.lost > 0);
	assert_int_equal(sum.lost, marked); /* every lost byte marked, where it was */
	assert_int_equal(delivered + marked, total);
	assert_int_equal(sum.loss_unmarked, 0);
	SSL_free(&ssl);
	close(cli);
	close(srv);
}

/* The copy policies apply as for packets: headers-only keeps the first head_bytes of each
 * SSL call (the rest elided, not lost), none keeps nothing but SYN/FIN (elided_before). */
static void test_copy_policies(void **state)
{
	struct fx *f;
	struct fake_ssl ssl = { .fd = -1 };
	struct st_tap_opts o = { .copy = { ST_COPY_NONE, ST_COPY_HEAD }, .head_bytes = 100 };
	uint8_t msg[1000], rd[300];
	uint32_t out_syn = 0, out_fin = 0;
	size_t data_out = 0;
	int cli, srv, in_fin = 0;
	struct st_tap_summary sum;

	NEED_ROOT();
	f = *state;
	st_tap__destroy(f->tap);
	f->tap = NULL;
	assert_int_equal(open_tap_opts(f, 16, &o), 0);
	srv = connect_lo(f->lfd, f->port, &cli);
	SSL_set_fd(&ssl, srv);
	pattern(msg, sizeof(msg), 5);
	assert_int_equal(write(cli, msg, 300), 300);
	assert_int_equal(SSL_read(&ssl, rd, 300), 300);
	assert_int_equal(SSL_write(&ssl, msg, sizeof(msg)), (int)sizeof(msg));
	SSL_free(&ssl);
	assert_true(st_tap__consume(f->tap) >= 0);
	for (size_t i = 0; i < f->n; i++) {
		const struct st_segment *s = &f->segs[i].s;

		assert_int_equal(s->kind, ST_SEG_DATA);
		if (s->dir == ST_DIR_IN) {
			assert_int_equal(s->len, 0); /* policy none: SYN and FIN only */
			assert_int_equal(s->elided_before, 1);
			if (s->flags & ST_TCP_FIN)
				in_fin = 1;
			continue;
		}
		if (s->flags & ST_TCP_SYN)
			out_syn = s->seq;
		else if (s->flags & ST_TCP_FIN)
			out_fin = s->seq;
		else {
			assert_int_equal(s->len, 100);
			assert_int_equal(s->elided, sizeof(msg) - 100);
			assert_memory_equal(s->data, msg, 100);
			data_out++;
		}
	}
	assert_true(in_fin);
	assert_int_equal(data_out, 1);
	assert_int_equal(out_fin - out_syn, 1 + sizeof(msg)); /* the elided bytes keep their seq */
	st_tap__summary(f->tap, &sum);
	assert_int_equal(sum.elided, 300 + sizeof(msg) - 100);
	assert_int_equal(sum.lost, 0);
	close(cli);
	close(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_session_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_joined_buffered_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unattributed_and_other_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_full_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_policies, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
