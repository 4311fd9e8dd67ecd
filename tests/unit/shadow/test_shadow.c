/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Unit tests for agent/shadow/shadow.c: hand-built segment sequences go into the
 * engine, a local sink (127.0.0.1, ephemeral port, its own thread) records
 * the bytes each shadow connection delivers, and the tests compare them with
 * what must have been sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "correlate.h"
#include "h2.h"
#include "http.h"
#include "loop.h"
#include "hdr.h"
#include "shadow.h"
#include "shadow_harness.h"

#define SINK_CONNS 512
#define SERVER_PORT 8080

/* ---- the sink ---------------------------------------------------------------------- */

struct sink_conn {
	int fd;
	char *data;
	size_t len, cap;
	bool eof;
	int answered;
	char *proc;    /* the requests the sink answered, as received */
	size_t plen, pcap;
	struct st_http_parser p;
};

struct sink {
	int lfd;
	uint16_t port;
	bool respond;  /* answer each complete request with a 200 */
	bool noread;   /* accept, never read */
	bool garbage;  /* answer every read with 64 KiB that is not HTTP (a hostile shadow) */
	int close_after; /* answer this many requests per connection, the last with
			  * Connection: close, then close (nginx's keepalive_requests) */
	bool early;    /* answer each request when its head is in, before reading its body
			* (nginx's `return 200` on an upload) */
	int status;    /* the answers' status (0: 200) */
	bool rst;      /* reset each connection at its first complete request (no answer) */
	const char *answer; /* this answer instead of "200 ok" (--correlate: a session cookie) */
	atomic_bool stop; /* set by the test thread, read by the sink's */
	pthread_t th;
	pthread_mutex_t mu;
	int n;
	struct sockaddr_in peer;   /* the first connection's peer: the engine's own endpoint */
	struct sink_conn c[SINK_CONNS];
};

/* The sink closes c (rst: with a reset) and ignores what follows. */
static void sink_hangup(struct sink *s, struct sink_conn *c, bool rst)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (rst)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	pthread_mutex_lock(&s->mu);
	close(c->fd);
	c->fd = -1;
	c->eof = true;
	pthread_mutex_unlock(&s->mu);
}

static void sink_respond(struct sink *s, struct sink_conn *c, const char *buf, size_t len)
{
	static const char bye[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
	char ok[64];
	struct st_http_event ev;

	snprintf(ok, sizeof(ok), "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok",
		 s->status ? s->status : 200);
	for (;;) {
		size_t n = st_http__feed(&c->p, buf, len, &ev);

		if (c->plen + n + 1 > c->pcap) {
			c->pcap = (c->plen + n + 1) * 2;
			c->proc = realloc(c->proc, c->pcap);
		}
		memcpy(c->proc + c->plen, buf, n);
		c->plen += n;
		buf += n;
		len -= n;
		if (ev.type == ST_HTTP_EV_NEED_MORE || ev.type == ST_HTTP_EV_ERROR)
			return;
		if (s->early && ev.type == ST_HTTP_EV_HEAD) {
			c->answered++;
			if (send(c->fd, ok, strlen(ok), MSG_NOSIGNAL) < 0)
				return;
			continue;
		}
		if (ev.type != ST_HTTP_EV_MSG_DONE || s->early)
			continue;
		if (s->rst) {
			sink_hangup(s, c, true);
			return;
		}
		c->answered++;
		if (s->close_after && c->answered == s->close_after) {
			/* like nginx at keepalive_requests: answer, close, ignore what follows */
			send(c->fd, bye, sizeof(bye) - 1, MSG_NOSIGNAL);
			sink_hangup(s, c, false);
			return;
		}
		if (s->answer ? send(c->fd, s->answer, strlen(s->answer), MSG_NOSIGNAL) < 0 :
				send(c->fd, ok, strlen(ok), MSG_NOSIGNAL) < 0)
			return;
	}
}

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	char buf[65536];

	while (!atomic_load(&s->stop)) {
		struct pollfd pf[SINK_CONNS + 1];
		int idx[SINK_CONNS + 1], n = 0, i;

		pf[n].fd = s->lfd;
		pf[n].events = POLLIN;
		idx[n++] = -1;
		pthread_mutex_lock(&s->mu);
		for (i = 0; i < s->n && !s->noread; i++) {
			if (s->c[i].eof)
				continue;
			pf[n].fd = s->c[i].fd;
			pf[n].events = POLLIN;
			idx[n++] = i;
		}
		pthread_mutex_unlock(&s->mu);
		if (poll(pf, (nfds_t)n, 10) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (!pf[i].revents)
				continue;
			if (idx[i] < 0) {
				struct sockaddr_in pa;
				socklen_t pl = sizeof(pa);
				int fd = accept(s->lfd, (struct sockaddr *)&pa, &pl);

				if (fd < 0)
					continue;
				pthread_mutex_lock(&s->mu);
				if (!s->n)
					s->peer = pa;
				if (s->n < SINK_CONNS) {
					s->c[s->n].fd = fd;
					st_http__init(&s->c[s->n].p, ST_HTTP_REQUEST, NULL);
					s->n++;
				} else {
					close(fd);
				}
				pthread_mutex_unlock(&s->mu);
				continue;
			}
			{
				struct sink_conn *c = &s->c[idx[i]];
				ssize_t r = recv(c->fd, buf, sizeof(buf), 0);

				pthread_mutex_lock(&s->mu);
				if (r <= 0) {
					c->eof = true;
					close(c->fd);
					c->fd = -1;
				} else {
					if (c->len + (size_t)r > c->cap) {
						c->cap = (c->len + (size_t)r) * 2;
						c->data = realloc(c->data, c->cap);
					}
					memcpy(c->data + c->len, buf, (size_t)r);
					c->len += (size_t)r;
				}
				pthread_mutex_unlock(&s->mu);
				if (r > 0 && s->respond)
					sink_respond(s, c, buf, (size_t)r);
				if (r > 0 && s->garbage) {
					static char junk[65536];

					memset(junk, 'J', sizeof(junk));
					send(c->fd, junk, sizeof(junk), MSG_NOSIGNAL | MSG_DONTWAIT);
				}
			}
		}
	}
	return NULL;
}

static struct sink *sink_start_opt(bool respond, bool noread, bool early)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int small = 4096;

	assert_non_null(s);
	s->respond = respond;
	s->noread = noread;
	s->early = early;
	pthread_mutex_init(&s->mu, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	if (noread || early) /* accepted sockets inherit it: the sender's window closes quickly */
		setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 512), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, sink_main, s), 0);
	return s;
}

static struct sink *sink_start(bool respond, bool noread)
{
	return sink_start_opt(respond, noread, false);
}

static void sink_stop(struct sink *s)
{
	int i;

	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	for (i = 0; i < s->n; i++) {
		if (s->c[i].fd >= 0)
			close(s->c[i].fd);
		st_http__free(&s->c[i].p);
		free(s->c[i].data);
		free(s->c[i].proc);
	}
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* A copy of what connection i received so far (NUL-terminated), or NULL. */
static char *sink_data(struct sink *s, int i, size_t *len)
{
	char *d = NULL;

	pthread_mutex_lock(&s->mu);
	if (i < s->n) {
		d = malloc(s->c[i].len + 1);
		memcpy(d, s->c[i].data ? s->c[i].data : "", s->c[i].len);
		d[s->c[i].len] = 0;
		*len = s->c[i].len;
	}
	pthread_mutex_unlock(&s->mu);
	return d;
}

static int sink_nconn(struct sink *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* ---- engine and segments ------------------------------------------------------------ */

static const uint16_t ports[] = { SERVER_PORT };

static void cfg_init(struct st_shadow_config *cfg, uint16_t port)
{
	char err[256], to[64];

	memset(cfg, 0, sizeof(*cfg));
	snprintf(to, sizeof(to), "127.0.0.1:%u", port);
	assert_int_equal(st_shadow_parse_target(to, &cfg->targets[0], err, sizeof(err)), 0);
	cfg->n_targets = 1;
	cfg->ports = ports;
	cfg->n_ports = 1;
}

/*
 * A captured connection the test plays. Production is played too: unless the
 * test answers itself (manual), every request production frames from the
 * client's bytes gets "200 OK" right after it, as a real server would answer,
 * so the engine's arbiter (release only what production answered) lets it go.
 */
struct tconn {
	struct th_conn c;
	bool manual;
	bool prod_on;
	struct st_http_parser prod;
};

static const char PROD_OK[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
static const char PROD_SWITCH[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
				  "Upgrade: x\r\n\r\n";

static void t_reply(struct st_shadow *sh, struct tconn *t, const char *s);

/* Production reads the client's bytes (lost ones too: the capture lost them, not production). */
static void prod_model(struct st_shadow *sh, struct tconn *t, const void *d, size_t len,
		       bool lost)
{
	struct st_http_event ev;
	const char *p = d;

	if (t->manual || !t->prod_on)
		return;
	if (lost) {
		if (st_http__skip(&t->prod, len))
			st_http__resync(&t->prod, true);
		return;
	}
	for (;;) {
		size_t n = st_http__feed(&t->prod, p, len, &ev);

		p += n;
		len -= n;
		if (ev.type == ST_HTTP_EV_NEED_MORE)
			return;
		if (ev.type == ST_HTTP_EV_ERROR) {
			st_http__resync(&t->prod, false);
			continue;
		}
		if (ev.type == ST_HTTP_EV_MSG_DONE)
			t_reply(sh, t, (ev.head->flags & ST_HTTP_HF_UPGRADE) ? PROD_SWITCH : PROD_OK);
		if (ev.type == ST_HTTP_EV_UPGRADED)
			t->prod_on = false; /* a tunnel: production answers nothing more */
	}
}

static void t_free(struct tconn *t)
{
	st_http__free(&t->prod);
}

static void t_open(struct st_shadow *sh, struct tconn *t, uint16_t cport)
{
	st_http__free(&t->prod);
	memset(t, 0, sizeof(*t));
	st_http__init(&t->prod, ST_HTTP_REQUEST, NULL);
	t->prod_on = true;
	th_init(&t->c, cport, SERVER_PORT);
	th_handshake(sh, &t->c);
}

static void t_send(struct st_shadow *sh, struct tconn *t, const void *d, size_t len)
{
	th_data(sh, &t->c, true, d, len);
	prod_model(sh, t, d, len, false);
}

static void t_sends(struct st_shadow *sh, struct tconn *t, const char *s)
{
	t_send(sh, t, s, strlen(s));
}

/* The capture lost these bytes (what a ring-full loss record says); production got them. */
static void t_lose_bytes(struct st_shadow *sh, struct tconn *t, const void *d, uint32_t len)
{
	th_seg(sh, &t->c, true, ST_TCP_ACK, t->c.cseq, NULL, len, true);
	t->c.cseq += len;
	if (d)
		prod_model(sh, t, d, len, false);
	else
		prod_model(sh, t, NULL, len, true);
}

static void t_lose(struct st_shadow *sh, struct tconn *t, uint32_t len)
{
	t_lose_bytes(sh, t, NULL, len);
}

static void t_reply(struct st_shadow *sh, struct tconn *t, const char *s)
{
	th_data(sh, &t->c, false, s, strlen(s));
}

static void t_close(struct st_shadow *sh, struct tconn *t)
{
	th_fin(sh, &t->c);
}

/* Runs the engine until conn i of the sink has want bytes (and EOF if eof), max 5 s. */
static char *wait_bytes(struct st_shadow *sh, struct sink *s, int i, size_t want, bool eof)
{
	uint64_t end = th_mono_ms() + 5000;
	size_t len = 0;
	char *d;

	for (;;) {
		bool done;

		st_shadow__poll(sh, 5);
		st_shadow__tick(sh, 0);
		pthread_mutex_lock(&s->mu);
		done = i < s->n && s->c[i].len >= want && (!eof || s->c[i].eof);
		pthread_mutex_unlock(&s->mu);
		if (done || th_mono_ms() > end)
			break;
	}
	d = sink_data(s, i, &len);
	if (!d) {
		print_error("sink connection %d never came\n", i);
		fail();
	}
	if (len != want) {
		print_error("sink connection %d: %zu bytes, want %zu:\n%.*s\n", i, len, want,
			    (int)(len > 2000 ? 2000 : len), d);
		fail();
	}
	return d;
}

static void run_ms(struct st_shadow *sh, int ms)
{
	uint64_t end = th_mono_ms() + (uint64_t)ms;

	while (th_mono_ms() < end) {
		st_shadow__poll(sh, 5);
		st_shadow__tick(sh, 0);
	}
}

static void stats(struct st_shadow *sh, struct st_shadow_stats *st)
{
	st_shadow__stats(sh, st);
}

/* ---- tests ---------------------------------------------------------------------------- */

static const char GET1[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
static const char GET2[] = "GET /2?q=x HTTP/1.1\r\nHost: a\r\n\r\n";
static const char GET3[] = "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
static const char POST_CL_HEAD[] = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
static const char CHUNKED[] = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n";

/* Keep-alive, pipelining, Content-Length split over segments, chunked: bytes as sent. */
static void test_keepalive_pipelined(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char want[1024], pipe[256], *got;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	assert_non_null(sh);
	t_open(sh, &t, 40000);
	snprintf(pipe, sizeof(pipe), "%s%s", GET1, GET2); /* two requests in one segment */
	t_sends(sh, &t, pipe);
	t_sends(sh, &t, POST_CL_HEAD);
	t_sends(sh, &t, "0123");
	t_sends(sh, &t, "456789");
	t_send(sh, &t, CHUNKED, 20); /* chunked request cut mid-head */
	t_sends(sh, &t, CHUNKED + 20);
	t_sends(sh, &t, GET3);
	snprintf(want, sizeof(want), "%s%s0123456789%s%s", pipe, POST_CL_HEAD, CHUNKED, GET3);
	got = wait_bytes(sh, s, 0, strlen(want), false);
	assert_string_equal(got, want);
	free(got);
	run_ms(sh, 50);
	stats(sh, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.replayed, 5);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.responses, 5);
	assert_int_equal(st.connects, 1);
	/* each answer's latency once, from its request written whole (replay's last line) */
	assert_int_equal(st_shadow__answer_latency(sh)->total, 5);
	assert_true(st_shadow__answer_latency(sh)->max < 5000000);
	/* the client closes: the shadow connection drains and closes too */
	t_close(sh, &t);
	free(wait_bytes(sh, s, 0, strlen(want), true));
	run_ms(sh, 50);
	assert_true(st_shadow__idle(sh));
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* HTTP/1.0 without keep-alive: the shadow closes after each; a new connection per request. */
static void test_http10(void **state)
{
	static const char R1[] = "GET /a HTTP/1.0\r\n\r\n";
	static const char R2[] = "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t1 = { 0 }, t2 = { 0 };
	char *got;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t1, 40001);
	t_sends(sh, &t1, R1);
	got = wait_bytes(sh, s, 0, strlen(R1), true); /* our FIN follows the request */
	assert_string_equal(got, R1);
	free(got);
	t_open(sh, &t2, 40002);
	t_sends(sh, &t2, R2);
	t_sends(sh, &t2, R2);
	got = wait_bytes(sh, s, 1, 2 * strlen(R2), false);
	assert_memory_equal(got, R2, strlen(R2));
	free(got);
	t_close(sh, &t1);
	t_close(sh, &t2);
	run_ms(sh, 100);
	stats(sh, &st);
	assert_int_equal(st.requests, 3);
	assert_int_equal(st.replayed, 3);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.responses, 3);
	t_free(&t1);
	t_free(&t2);
	st_shadow__free(sh);
	sink_stop(s);
}

/* Expect: 100-continue: production's client waited for a 100; the shadow gets it all at once. */
static void test_expect_continue(void **state)
{
	static const char H[] = "PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n"
				"Expect: 100-continue\r\n\r\n";
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct tconn t = { 0 };
	char body[5000], want[6000], *got;

	memset(body, 'b', sizeof(body));
	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40003);
	t_sends(sh, &t, H);
	t_reply(sh, &t, "HTTP/1.1 100 Continue\r\n\r\n");
	run_ms(sh, 50);
	/* nothing may go out before the request is complete */
	assert_int_equal(sink_nconn(s) ? (int)s->c[0].len : 0, 0);
	t_send(sh, &t, body, 3000);
	t_send(sh, &t, body + 3000, 2000);
	memcpy(want, H, strlen(H));
	memcpy(want + strlen(H), body, sizeof(body));
	got = wait_bytes(sh, s, 0, strlen(H) + sizeof(body), false);
	assert_memory_equal(got, want, strlen(H) + sizeof(body));
	free(got);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* A gap inside a request's body: that request is never sent; the next one is. */
/*
 * Gaps: inside a body of known length framing steps over it (that request is lost, the next
 * goes); inside a head framing is lost and the connection's replay ends there, unless the
 * operator asked for --resync (then the next request line, without the arbiter).
 */
static void gap_run(bool resync)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char want[512], *got;

	cfg_init(&cfg, s->port);
	cfg.resync = resync;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40004);
	t_sends(sh, &t, GET1);
	t_sends(sh, &t, POST_CL_HEAD);
	t_sends(sh, &t, "01");
	t_lose_bytes(sh, &t, "23456", 5);
	t_sends(sh, &t, "789");
	t_sends(sh, &t, GET2);
	/* a gap inside a head */
	t_send(sh, &t, GET3, 10);
	t_lose_bytes(sh, &t, GET3 + 10, 3);
	t_sends(sh, &t, GET3 + 13);
	t_sends(sh, &t, GET1);
	if (resync)
		snprintf(want, sizeof(want), "%s%s%s", GET1, GET2, GET1);
	else
		snprintf(want, sizeof(want), "%s%s", GET1, GET2);
	got = wait_bytes(sh, s, 0, strlen(want), false);
	run_ms(sh, 30);
	free(got);
	got = wait_bytes(sh, s, 0, strlen(want), false);
	assert_string_equal(got, want);
	free(got);
	stats(sh, &st);
	assert_int_equal(st.gaps_skipped, 2);
	assert_int_equal(st.replayed, resync ? 3 : 2);
	assert_int_equal(st.requests, resync ? 5 : 4);
	assert_int_equal(st.resyncs, resync ? 1 : 0);
	/* framing lost: the rest is not replayed, what was framed before still went */
	assert_int_equal(st.stopped_conns, resync ? 0 : 1);
	assert_int_equal(st.prod_unanswered, 0);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

static void test_gap_mid_request(void **state)
{
	gap_run(false);
	gap_run(true);
}

/* Raw mode: bytes as they come; at a gap the shadow connection is closed for good. */
static void test_raw_gap(void **state)
{
	static const uint8_t bin[] = { 0x00, 0x01, 0xff, 'x', '\r', '\n', 0x7f };
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char *got;

	cfg_init(&cfg, s->port);
	cfg.proto = ST_PROTO_RAW;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40005);
	t_send(sh, &t, bin, sizeof(bin));
	t_send(sh, &t, GET1, strlen(GET1)); /* looks like HTTP: raw mode does not care */
	got = wait_bytes(sh, s, 0, sizeof(bin) + strlen(GET1), false);
	assert_memory_equal(got, bin, sizeof(bin));
	free(got);
	t_lose(sh, &t, 4);
	t_send(sh, &t, bin, sizeof(bin));
	free(wait_bytes(sh, s, 0, sizeof(bin) + strlen(GET1), true));
	stats(sh, &st);
	assert_int_equal(st.raw_closed, 1);
	assert_int_equal(st.raw, 1);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* Auto: non-HTTP first bytes make a raw connection; HTTP ones an HTTP connection. */
static void test_auto_detect(void **state)
{
	static const char REDIS[] = "*1\r\n$4\r\nPING\r\n";
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t1 = { 0 }, t2 = { 0 };
	char *got;

	cfg_init(&cfg, s->port);
	cfg.mark_name = "X-Shadowtap";
	cfg.mark_value = "1";
	sh = st_shadow__new(&cfg);
	t_open(sh, &t1, 40006);
	t_sends(sh, &t1, REDIS);
	got = wait_bytes(sh, s, 0, strlen(REDIS), false);
	assert_string_equal(got, REDIS); /* raw: no marker */
	free(got);
	t_open(sh, &t2, 40007);
	t_sends(sh, &t2, "GET /x HT"); /* not enough to tell yet */
	t_sends(sh, &t2, "TP/1.1\r\nHost: h\r\n\r\n");
	got = wait_bytes(sh, s, 1, strlen("GET /x HTTP/1.1\r\nHost: h\r\nX-Shadowtap: 1\r\n\r\n"),
			 false);
	assert_string_equal(got, "GET /x HTTP/1.1\r\nHost: h\r\nX-Shadowtap: 1\r\n\r\n");
	free(got);
	stats(sh, &st);
	assert_int_equal(st.raw, 1);
	assert_int_equal(st.http, 1);
	t_free(&t1);
	t_free(&t2);
	st_shadow__free(sh);
	sink_stop(s);
}

/* Header rewriting: --set-header, --host, the marker. */
static void test_rewrite(void **state)
{
	static const char R[] = "GET /r HTTP/1.1\r\nHost: prod\r\nX-Env: prod\r\nAccept: */*\r\n\r\n";
	static const char W[] = "GET /r HTTP/1.1\r\nHost: shadow\r\nX-Env: shadow\r\nAccept: */*\r\n"
				"X-Shadow: yes\r\n\r\n";
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct tconn t = { 0 };
	char *got;

	cfg_init(&cfg, s->port);
	cfg.set[0] = (struct st_http_kv){ "X-Env", "shadow" };
	cfg.n_set = 1;
	cfg.host = "shadow";
	cfg.mark_name = "X-Shadow";
	cfg.mark_value = "yes";
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40008);
	t_sends(sh, &t, R);
	got = wait_bytes(sh, s, 0, strlen(W), false);
	assert_string_equal(got, W);
	free(got);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* A target refusing connections: every request dropped and counted, nothing hangs. */
static void test_refused(void **state)
{
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	int i;

	cfg_init(&cfg, th_closed_port());
	sh = st_shadow__new(&cfg);
	for (i = 0; i < 20; i++) {
		t_open(sh, &t, (uint16_t)(41000 + i));
		t_sends(sh, &t, GET1);
		t_sends(sh, &t, GET2);
		run_ms(sh, 10);
		t_close(sh, &t);
	}
	run_ms(sh, 200);
	stats(sh, &st);
	assert_int_equal(st.requests, 40);
	assert_int_equal(st.replayed, 0);
	assert_int_equal(st.dropped, 40);
	assert_true(st.errors >= 1);
	/* backoff: far fewer connection attempts than connections */
	assert_true(st.connects < 20);
	assert_true(st_shadow__idle(sh));
	t_free(&t);
	st_shadow__free(sh);
}

/* A target that accepts and never reads: queues fill, whole requests are dropped, memory stays
 * under the caps, and the stall is detected. */
static void test_noread(void **state)
{
	struct sink *s = sink_start(false, true);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	static char body[256 * 1024];
	char head[128];
	int i;

	memset(body, 'z', sizeof(body));
	snprintf(head, sizeof(head), "POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n",
		 sizeof(body));
	cfg_init(&cfg, s->port);
	cfg.conn_queue_max = 1u << 20;
	cfg.max_queue = 1u << 20;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40009);
	for (i = 0; i < 64; i++) {
		t_sends(sh, &t, head);
		t_send(sh, &t, body, sizeof(body) / 2);
		t_send(sh, &t, body + sizeof(body) / 2, sizeof(body) / 2);
		st_shadow__io(sh);
	}
	run_ms(sh, 100);
	stats(sh, &st);
	assert_int_equal(st.requests, 64);
	assert_true(st.dropped_queue > 0);
	assert_int_equal(st.replayed + st.dropped + (st.queued ? (st.queued + sizeof(body) - 1) /
							  sizeof(body) : 0) >= 64, 1);
	assert_true(st.queued_peak <= (1u << 20));
	assert_int_equal(st.gaps_skipped, 0);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/*
 * A shadow that answers an upload before it read the body (nginx's `return 200`): the answer
 * is the upload's, though its last byte is still to be written; the request after it gets
 * its own answer, and the connection ends as soon as the captured one did (no request left
 * waiting for an answer that already came).
 */
static void test_early_answer(void **state)
{
	struct sink *s = sink_start_opt(true, false, true);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	static char chunk[64 * 1024];
	const size_t body = 8u << 20; /* more than a socket's send buffer: many writes */
	char head[128];
	uint64_t end;

	memset(chunk, 'u', sizeof(chunk));
	snprintf(head, sizeof(head), "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n",
		 body);
	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40010);
	t_sends(sh, &t, head);
	for (size_t o = 0; o < body; o += sizeof(chunk))
		t_send(sh, &t, chunk, sizeof(chunk));
	t_sends(sh, &t, GET1);
	t_close(sh, &t);
	end = th_mono_ms() + 10000;
	do {
		st_shadow__poll(sh, 5);
		st_shadow__tick(sh, 0);
		stats(sh, &st);
	} while ((st.shadow_conns || st.responses < 2) && th_mono_ms() < end);
	assert_int_equal(st.replayed, 2);
	assert_int_equal(st.responses, 2);
	assert_int_equal(st.unanswered, 0);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.shadow_conns, 0);
	{
		size_t len = 0;
		char *d = sink_data(s, 0, &len);

		assert_int_equal(len, strlen(head) + body + strlen(GET1));
		free(d);
	}
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* Filters: --safe-only, --match-method, --match-path, --exclude-path. */
static void test_filters(void **state)
{
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	regex_t inc, exc;
	struct tconn t = { 0 };
	char want[512], *got;

	assert_int_equal(regcomp(&inc, "^/(1|2|3)", REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regcomp(&exc, "q=x", REG_EXTENDED | REG_NOSUB), 0);
	cfg_init(&cfg, s->port);
	cfg.safe_only = true;
	cfg.match_path = &inc;
	cfg.exclude_path = &exc;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40010);
	t_sends(sh, &t, POST_CL_HEAD);   /* unsafe */
	t_sends(sh, &t, "0123456789");
	t_sends(sh, &t, GET2);           /* excluded */
	t_sends(sh, &t, GET1);           /* in */
	t_sends(sh, &t, "GET /9 HTTP/1.1\r\n\r\n"); /* not matched */
	t_sends(sh, &t, "OPTIONS /3 HTTP/1.1\r\n\r\n"); /* in */
	snprintf(want, sizeof(want), "%sOPTIONS /3 HTTP/1.1\r\n\r\n", GET1);
	got = wait_bytes(sh, s, 0, strlen(want), false);
	assert_string_equal(got, want);
	free(got);
	stats(sh, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.filtered, 3);
	assert_int_equal(st.replayed, 2);
	t_free(&t);
	st_shadow__free(sh);
	regfree(&inc);
	regfree(&exc);
	sink_stop(s);
}

/* --sample 30 by connection: a stable share of the connections, whole. */
static void test_sample(void **state)
{
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st, st2;
	struct tconn t = { 0 };
	int i, round;

	for (round = 0; round < 2; round++) {
		cfg_init(&cfg, s->port);
		cfg.sample_pct = 30;
		sh = st_shadow__new(&cfg);
		for (i = 0; i < 400; i++) {
			t_open(sh, &t, (uint16_t)(42000 + i));
			t_sends(sh, &t, GET1);
			t_sends(sh, &t, GET2);
			t_close(sh, &t);
			st_shadow__io(sh);
		}
		run_ms(sh, 300);
		stats(sh, round ? &st2 : &st);
		st_shadow__free(sh);
	}
	t_free(&t);
	/* ~120 connections, both requests of each */
	assert_true(st.replayed % 2 == 0);
	assert_true(st.replayed > 2 * 80 && st.replayed < 2 * 160);
	assert_int_equal(st.replayed, st2.replayed); /* stable */
	assert_int_equal(st.skipped_conns, 400 - st.replayed / 2);
	sink_stop(s);
}

/* --multiply 3: three shadow connections per captured connection, same bytes each. */
static void test_multiply(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char want[256], *got;
	int i;

	cfg_init(&cfg, s->port);
	cfg.multiply = 3;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40011);
	t_sends(sh, &t, GET1);
	t_sends(sh, &t, GET2);
	snprintf(want, sizeof(want), "%s%s", GET1, GET2);
	for (i = 0; i < 3; i++) {
		got = wait_bytes(sh, s, i, strlen(want), false);
		assert_string_equal(got, want);
		free(got);
	}
	stats(sh, &st);
	assert_int_equal(st.requests, 2);
	assert_int_equal(st.replayed, 6);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* Upgrade: the request, then the raw bytes of the rest of the connection. */
static void test_upgrade(void **state)
{
	static const char U[] = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
				"Upgrade: websocket\r\n\r\n";
	static const char F[] = "\x81\x05hello\x00\xff";
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char want[256], *got;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40012);
	t_sends(sh, &t, U);
	t_send(sh, &t, F, sizeof(F) - 1);
	memcpy(want, U, strlen(U));
	memcpy(want + strlen(U), F, sizeof(F) - 1);
	got = wait_bytes(sh, s, 0, strlen(U) + sizeof(F) - 1, false);
	assert_memory_equal(got, want, strlen(U) + sizeof(F) - 1);
	free(got);
	stats(sh, &st);
	assert_int_equal(st.upgrades, 1);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* --rate: the token bucket lets the burst through and drops the rest, counted. */
static void test_rate(void **state)
{
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	int i;

	cfg_init(&cfg, s->port);
	cfg.rate = 5;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40013);
	for (i = 0; i < 50; i++)
		t_sends(sh, &t, GET1);
	run_ms(sh, 100);
	stats(sh, &st);
	assert_int_equal(st.requests, 50);
	assert_true(st.replayed >= 5 && st.replayed <= 7);
	assert_int_equal(st.dropped_rate, 50 - st.replayed);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* A joined connection (no SYN seen) starts at the first request boundary. */
/* A joined connection (no SYN seen): no boundary production confirms, so not replayed;
 * with --resync it starts at the first request line. */
static void test_joined(void **state)
{
	for (int resync = 0; resync < 2; resync++) {
		struct sink *s = sink_start(false, false);
		struct st_shadow_config cfg;
		struct st_shadow *sh;
		struct st_shadow_stats st;
		struct tconn t = { 0 };
		char *got;

		cfg_init(&cfg, s->port);
		cfg.resync = resync;
		sh = st_shadow__new(&cfg);
		t.c.k.src.family = t.c.k.dst.family = 4;
		t.c.k.src.a[0] = htonl(0x0a000002);
		t.c.k.dst.a[0] = htonl(0x0a000001);
		t.c.k.sport = 40014;
		t.c.k.dport = SERVER_PORT;
		t.c.cseq = 777;
		t_sends(sh, &t, "ody of an earlier request\r\n");
		t_sends(sh, &t, GET3);
		if (resync) {
			got = wait_bytes(sh, s, 0, strlen(GET3), false);
			assert_string_equal(got, GET3);
			free(got);
		} else {
			run_ms(sh, 50);
			assert_int_equal(sink_nconn(s), 0);
		}
		stats(sh, &st);
		assert_int_equal(st.joined, resync ? 0 : 1);
		st_shadow__free(sh);
		sink_stop(s);
	}
}

/* Target shares: HOST:PORT/PCT targets split the connections without overlap. */
static void test_shares(void **state)
{
	struct sink *a = sink_start(false, false), *b = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char err[128], to[64];
	int i, na, nb;

	cfg_init(&cfg, a->port);
	cfg.targets[0].pct = 50;
	snprintf(to, sizeof(to), "127.0.0.1:%u/50", b->port);
	assert_int_equal(st_shadow_parse_target(to, &cfg.targets[1], err, sizeof(err)), 0);
	assert_int_equal(cfg.targets[1].pct, 50);
	cfg.n_targets = 2;
	sh = st_shadow__new(&cfg);
	for (i = 0; i < 100; i++) {
		t_open(sh, &t, (uint16_t)(43000 + i));
		t_sends(sh, &t, GET1);
		t_close(sh, &t);
		st_shadow__io(sh);
	}
	run_ms(sh, 300);
	stats(sh, &st);
	na = sink_nconn(a);
	nb = sink_nconn(b);
	assert_int_equal(na + nb, 100);
	assert_true(na > 25 && nb > 25);
	assert_int_equal(st.replayed, 100);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(a);
	sink_stop(b);
}

/* The agent's own shadow connection, seen by the tap (a shadow on a captured port), is ignored. */
static void test_own_segments(void **state)
{
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct st_segment seg = { 0 };
	struct tconn t = { 0 };

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40020);
	t_sends(sh, &t, GET1);
	free(wait_bytes(sh, s, 0, strlen(GET1), false));
	/* what the tap would hand over for the engine's own connection: client = our socket */
	seg.key.src.family = seg.key.dst.family = 4;
	seg.key.src.a[0] = s->peer.sin_addr.s_addr;
	seg.key.sport = ntohs(s->peer.sin_port);
	seg.key.dst.a[0] = htonl(INADDR_LOOPBACK);
	seg.key.dport = s->port;
	seg.flags = ST_TCP_ACK | ST_TCP_PSH;
	seg.dir = 0;
	seg.seq = 1;
	seg.len = strlen(GET1);
	seg.data = (const uint8_t *)GET1;
	assert_true(st_shadow__own(sh, &seg));
	st_shadow__feed(sh, &seg);
	/* and the other direction */
	seg.key.src = seg.key.dst;
	seg.key.sport = seg.key.dport;
	seg.key.dst.a[0] = s->peer.sin_addr.s_addr;
	seg.key.dport = ntohs(s->peer.sin_port);
	assert_true(st_shadow__own(sh, &seg));
	run_ms(sh, 50);
	stats(sh, &st);
	assert_int_equal(st.own_segments, 1);
	assert_int_equal(st.connections, 1);
	assert_int_equal(st.requests, 1);
	/* someone else's connection on another port is not ours */
	seg.key.dport = (uint16_t)(seg.key.dport + 1);
	assert_false(st_shadow__own(sh, &seg));
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/*
 * Property: whatever the segmentation and wherever the capture loses bytes, what a shadow
 * receives is a concatenation of whole original requests, in their order; without loss it is
 * all of them.
 */
#define RQ 24
static void test_random_splits(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	static char reqs[RQ][2048];
	static char stream[RQ * 2048];
	size_t rlen[RQ], slen, i;
	unsigned seed = 12345;
	int round;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	struct tconn t = { 0 };

	for (round = 0; round < 24; round++) {
		bool lossy = round % 2;
		size_t off = 0, want_min, got_len, pos;
		char *got;
		int k, found;

		slen = 0;
		for (i = 0; i < RQ; i++) {
			int kind = rand_r(&seed) % 3;
			char body[600];
			size_t bl = (size_t)(rand_r(&seed) % 500) + 1;

			memset(body, 'a' + (int)(i % 26), bl);
			body[bl] = 0;
			if (kind == 0)
				snprintf(reqs[i], sizeof(reqs[i]), "GET /r%d/%zu HTTP/1.1\r\nHost: h\r\n\r\n",
					 round, i);
			else if (kind == 1)
				snprintf(reqs[i], sizeof(reqs[i]), "POST /r%d/%zu HTTP/1.1\r\nHost: h\r\n"
					 "Content-Length: %zu\r\n\r\n%s", round, i, bl, body);
			else
				snprintf(reqs[i], sizeof(reqs[i]), "PUT /r%d/%zu HTTP/1.1\r\n"
					 "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n3\r\nxyz\r\n0\r\n\r\n",
					 round, i, bl, body);
			rlen[i] = strlen(reqs[i]);
			memcpy(stream + slen, reqs[i], rlen[i]);
			slen += rlen[i];
		}
		t_open(sh, &t, (uint16_t)(44000 + round));
		while (off < slen) {
			size_t n = (size_t)(rand_r(&seed) % 700) + 1;

			if (n > slen - off)
				n = slen - off;
			if (lossy && rand_r(&seed) % 10 == 0) {
				/* the capture loses them, production gets them */
				t_lose_bytes(sh, &t, stream + off, (uint32_t)n);
			} else {
				t_send(sh, &t, stream + off, n);
			}
			off += n;
			if (rand_r(&seed) % 4 == 0)
				st_shadow__io(sh);
		}
		t_close(sh, &t);
		/* settle, then check what connection(s) of this round got */
		run_ms(sh, 60);
		want_min = lossy ? 0 : slen;
		found = 0;
		for (k = 0; k < sink_nconn(s); k++) {
			got = sink_data(s, k, &got_len);
			if (!strstr(got, "/r") || !strncmp(got, "", 1)) {
				free(got);
				continue;
			}
			{
				char tag[32];

				snprintf(tag, sizeof(tag), " /r%d/", round);
				if (!strstr(got, tag)) {
					free(got);
					continue;
				}
			}
			/* greedy: each original request in order is either all here or absent */
			pos = 0;
			for (i = 0; i < RQ && pos < got_len; i++)
				if (got_len - pos >= rlen[i] && !memcmp(got + pos, reqs[i], rlen[i]))
					pos += rlen[i];
			if (pos != got_len) {
				print_error("round %d: shadow bytes are not whole original requests "
					    "(matched %zu of %zu):\n%.*s\n", round, pos, got_len,
					    (int)(got_len - pos > 300 ? 300 : got_len - pos), got + pos);
				fail();
			}
			assert_true(got_len >= want_min);
			found++;
			free(got);
		}
		/* lossless: all of it on one connection */
		assert_true(lossy || found == 1);
	}
	{
		struct st_shadow_stats st;

		stats(sh, &st);
		assert_true(st.gaps_skipped > 0);
		assert_true(st.replayed > 12 * RQ);
		assert_int_equal(st.dropped, 0);
	}
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/*
 * A shadow that closes after N requests per connection (nginx's keepalive_requests, default
 * 1000) drops what was pipelined after the N-th: those requests go again on a new connection,
 * so each request is processed exactly once, in order.
 */
static void test_keepalive_limit(void **state)
{
	struct sink *s;
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char all[8192], req[64];
	size_t alen = 0, plen = 0;
	uint64_t end;
	int i, k, n;

	s = sink_start(true, false);
	s->close_after = 5;
	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40030);
	for (i = 0; i < 23; i++) {
		n = snprintf(req, sizeof(req), "GET /k%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
		memcpy(all + alen, req, (size_t)n);
		alen += (size_t)n;
		t_send(sh, &t, req, (size_t)n); /* all at once: pipelined on one shadow connection */
	}
	all[alen] = 0;
	end = th_mono_ms() + 5000;
	do {
		st_shadow__poll(sh, 5);
		st_shadow__tick(sh, 0);
		pthread_mutex_lock(&s->mu);
		for (plen = 0, k = 0; k < s->n; k++)
			plen += s->c[k].plen;
		pthread_mutex_unlock(&s->mu);
	} while (plen < alen && th_mono_ms() < end);
	run_ms(sh, 50);
	{
		char got[8192];
		size_t gl = 0;

		pthread_mutex_lock(&s->mu);
		for (k = 0; k < s->n; k++) {
			memcpy(got + gl, s->c[k].proc, s->c[k].plen);
			gl += s->c[k].plen;
		}
		pthread_mutex_unlock(&s->mu);
		got[gl] = 0;
		assert_string_equal(got, all);
		assert_int_equal(sink_nconn(s), 5); /* 5 + 5 + 5 + 5 + 3 */
	}
	stats(sh, &st);
	assert_int_equal(st.replayed, 23);
	assert_int_equal(st.responses, 23);
	assert_true(st.resent > 0);
	assert_int_equal(st.dropped, 0);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* Two targets, one down: the other gets everything; the down one's requests are counted. */
static void test_one_target_down(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char err[128], to[64], want[4096] = "";
	int i;

	cfg_init(&cfg, th_closed_port());
	snprintf(to, sizeof(to), "127.0.0.1:%u", s->port);
	assert_int_equal(st_shadow_parse_target(to, &cfg.targets[1], err, sizeof(err)), 0);
	cfg.n_targets = 2;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40040);
	for (i = 0; i < 30; i++) {
		t_sends(sh, &t, GET1);
		strcat(want, GET1);
		run_ms(sh, 5);
	}
	free(wait_bytes(sh, s, 0, strlen(want), false));
	run_ms(sh, 50);
	stats(sh, &st);
	assert_int_equal(st.requests, 30);
	assert_int_equal(st.replayed, 30);
	assert_int_equal(st.dropped, 30);
	assert_int_equal(st.responses, 30);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* --match-method and --sample-by request (stable per request, a share of them). */
static void test_methods_sample_request(void **state)
{
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	int i;

	cfg_init(&cfg, s->port);
	cfg.methods[0] = "GET";
	cfg.methods[1] = "DELETE";
	cfg.n_methods = 2;
	cfg.sample_pct = 50;
	cfg.sample_by_request = true;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 40050);
	for (i = 0; i < 200; i++) {
		t_sends(sh, &t, GET1);
		t_sends(sh, &t, "DELETE /d HTTP/1.1\r\n\r\n");
		t_sends(sh, &t, POST_CL_HEAD);
		t_sends(sh, &t, "0123456789");
	}
	run_ms(sh, 200);
	stats(sh, &st);
	assert_int_equal(st.requests, 600);
	/* POSTs never; of the 400 others about half */
	assert_true(st.replayed > 140 && st.replayed < 260);
	assert_int_equal(st.filtered + st.replayed, 600);
	assert_int_equal(st.skipped_conns, 0);
	{
		size_t len;
		char *got = sink_data(s, 0, &len);

		assert_non_null(got);
		assert_null(strstr(got, "POST"));
		assert_non_null(strstr(got, "DELETE /d"));
		free(got);
	}
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* ---- the arbiter: only what production ran goes to the shadow ---- */

static const char PROD_404[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
static const char PROD_400[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
			       "Content-Length: 0\r\n\r\n";

static void test_arbiter_holds(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char want[256], *got;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 41001);
	t.manual = true;
	t_sends(sh, &t, GET1);
	t_sends(sh, &t, GET2);
	run_ms(sh, 50);
	assert_int_equal(sink_nconn(s), 0); /* production has not answered: nothing goes */
	stats(sh, &st);
	assert_int_equal(st.staged, 2);
	t_reply(sh, &t, PROD_OK);
	got = wait_bytes(sh, s, 0, strlen(GET1), false);
	assert_string_equal(got, GET1);
	free(got);
	/* a 404 on a kept connection: production framed it as we did, it goes */
	t_reply(sh, &t, PROD_404);
	snprintf(want, sizeof(want), "%s%s", GET1, GET2);
	got = wait_bytes(sh, s, 0, strlen(want), false);
	assert_string_equal(got, want);
	free(got);
	stats(sh, &st);
	assert_int_equal(st.staged, 0);
	assert_int_equal(st.replayed, 2);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

static void test_arbiter_refusal(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char *got;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	/* refused, then pipelined requests after it: none of them runs */
	t_open(sh, &t, 41002);
	t.manual = true;
	t_sends(sh, &t, GET1);
	t_sends(sh, &t, GET2);
	t_sends(sh, &t, GET3);
	t_reply(sh, &t, PROD_OK);
	t_reply(sh, &t, PROD_400);
	t_close(sh, &t);
	got = wait_bytes(sh, s, 0, strlen(GET1), false);
	assert_string_equal(got, GET1);
	free(got);
	run_ms(sh, 50);
	got = wait_bytes(sh, s, 0, strlen(GET1), false);
	free(got);
	stats(sh, &st);
	assert_int_equal(st.requests, 3);
	assert_int_equal(st.replayed, 1);
	assert_int_equal(st.prod_rejected, 1);
	assert_int_equal(st.prod_unanswered, 1);
	assert_int_equal(st.stopped_conns, 1);
	/* production closes without a word: unanswered, not replayed */
	t_open(sh, &t, 41003);
	t.manual = true;
	t_sends(sh, &t, GET1);
	t_close(sh, &t);
	run_ms(sh, 50);
	assert_int_equal(sink_nconn(s), 1);
	stats(sh, &st);
	assert_int_equal(st.prod_unanswered, 2);
	/* an error that closes a connection the client asked to close is not a refusal */
	t_open(sh, &t, 41004);
	t.manual = true;
	t_sends(sh, &t, "GET /old HTTP/1.0\r\n\r\n");
	t_reply(sh, &t, "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
	got = wait_bytes(sh, s, 1, strlen("GET /old HTTP/1.0\r\n\r\n"), false);
	free(got);
	/* 413 before the body came (Expect: 100-continue): never replayed */
	t_open(sh, &t, 41005);
	t.manual = true;
	t_sends(sh, &t, "PUT /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
			"Content-Length: 5\r\n\r\n");
	t_reply(sh, &t, "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n"
			"Content-Length: 0\r\n\r\n");
	t_sends(sh, &t, "hello");
	t_close(sh, &t);
	run_ms(sh, 50);
	assert_int_equal(sink_nconn(s), 2);
	stats(sh, &st);
	assert_int_equal(st.prod_rejected, 2);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* --release framed: no waiting for production (lower latency, documented risk). */
static void test_release_framed(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char want[256], *got;

	cfg_init(&cfg, s->port);
	cfg.release = ST_RELEASE_FRAMED;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 41010);
	t.manual = true;
	t_sends(sh, &t, GET1);
	got = wait_bytes(sh, s, 0, strlen(GET1), false);
	free(got);
	/* production refuses the next: it went already; what follows does not */
	t_sends(sh, &t, GET2);
	run_ms(sh, 20);
	t_reply(sh, &t, PROD_OK);
	t_reply(sh, &t, PROD_400);
	t_sends(sh, &t, GET3);
	run_ms(sh, 50);
	snprintf(want, sizeof(want), "%s%s", GET1, GET2);
	got = wait_bytes(sh, s, 0, strlen(want), false);
	assert_string_equal(got, want);
	free(got);
	stats(sh, &st);
	assert_int_equal(st.replayed, 2);
	assert_int_equal(st.stopped_conns, 1);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* Production's answers are not in the capture at all (asymmetric routing, client-side pcap):
 * said once, and strict framing alone decides. */
static void test_no_server_traffic(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char *got;
	int i;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t.c.k.src.family = t.c.k.dst.family = 4;
	t.c.k.src.a[0] = htonl(0x0a000002);
	t.c.k.dst.a[0] = htonl(0x0a000001);
	t.c.k.sport = 41020;
	t.c.k.dport = SERVER_PORT;
	t.c.cseq = 1000;
	t.manual = true;
	th_seg(sh, &t.c, true, ST_TCP_SYN, t.c.cseq++, NULL, 0, false);
	for (i = 0; i < 70; i++)
		t_sends(sh, &t, GET1);
	got = wait_bytes(sh, s, 0, 70 * strlen(GET1), false);
	free(got);
	stats(sh, &st);
	assert_int_equal(st.replayed, 70);
	st_shadow__free(sh);
	/* a short client-side-only file: released at the end of input */
	sh = st_shadow__new(&cfg);
	t.c.k.sport = 41021;
	th_seg(sh, &t.c, true, ST_TCP_SYN, t.c.cseq++, NULL, 0, false);
	t_sends(sh, &t, GET2);
	st_shadow__flush(sh);
	st_shadow__drain(sh, 2000);
	stats(sh, &st);
	assert_int_equal(st.replayed, 1);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* An Upgrade production refuses (200 to an h2c offer): the client goes on in HTTP/1.1. */
static void test_upgrade_refused(void **state)
{
	static const char U[] = "GET /h2 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
				"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char want[512], *got;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 41030);
	t.manual = true;
	t_sends(sh, &t, U);
	t_sends(sh, &t, GET2); /* sent before the answer came */
	t_reply(sh, &t, PROD_OK);
	t_reply(sh, &t, PROD_OK);
	snprintf(want, sizeof(want), "%s%s", U, GET2);
	got = wait_bytes(sh, s, 0, strlen(want), false);
	assert_string_equal(got, want);
	free(got);
	stats(sh, &st);
	assert_int_equal(st.upgrades, 0);
	assert_int_equal(st.replayed, 2);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* --proto auto: once a port spoke HTTP, garbage on it is not turned into a raw replay. */
static void test_not_http(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	char *got;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 41040);
	t_sends(sh, &t, GET1);
	got = wait_bytes(sh, s, 0, strlen(GET1), false);
	free(got);
	t_open(sh, &t, 41041);
	t_sends(sh, &t, "\x16\x03\x01 random bytes that are no request at all\r\n\r\n");
	t_close(sh, &t);
	run_ms(sh, 50);
	assert_int_equal(sink_nconn(s), 1);
	stats(sh, &st);
	assert_int_equal(st.not_http, 1);
	assert_int_equal(st.raw, 0);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/*
 * The request-smuggling shapes of the hostile test, each followed by a smuggled request in
 * its body and a normal one after it. Production here is as lenient as can be (it answers
 * 200 to whatever it can find, resynchronising after errors): the shadow must still never
 * see a smuggled request, nor anything after a request it could not frame.
 */
static void test_smuggling_shapes(void **state)
{
	static const char *const shapes[] = {
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
		"0\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
		"27\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n"
		"GET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 36, 36\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: +36\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length : 36\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 00000000000000000031\r\n\r\n"
		"GET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		"0\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\nContent-Length: 36\r\n\r\n"
		"GET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\nContent-Length: 36\r\n\r\n"
		"GET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n"
		"0\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"
		"0\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
		"0\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0b""chunked\r\n\r\n"
		"0\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		"3\r\nabcGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		"3;x\nabc\r\n0\r\n\r\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n"
		"0\n\nGET /SMUG HTTP/1.1\r\nHost: a\r\n\r\n",
	};
	static const char TAIL[] = "GET /tail HTTP/1.1\r\nHost: a\r\n\r\n";
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	size_t i;

	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		t_open(sh, &t, (uint16_t)(41100 + i));
		t_sends(sh, &t, shapes[i]);
		t_sends(sh, &t, TAIL);
		t_close(sh, &t);
		st_shadow__io(sh);
	}
	run_ms(sh, 100);
	/* frame what each shadow connection got: no request may be the smuggled one */
	for (int k = 0; k < sink_nconn(s); k++) {
		struct st_http_parser p;
		struct st_http_event ev;
		size_t len, off = 0;
		char *got = sink_data(s, k, &len);

		st_http__init(&p, ST_HTTP_REQUEST, NULL);
		for (;;) {
			size_t n = st_http__feed(&p, got + off, len - off, &ev);

			off += n;
			if (ev.type == ST_HTTP_EV_NEED_MORE)
				break;
			assert_int_not_equal(ev.type, ST_HTTP_EV_ERROR);
			if (ev.type == ST_HTTP_EV_HEAD && ev.head->target_len == 5 &&
			    !memcmp(ev.head->target, "/SMUG", 5)) {
				print_error("shadow connection %d got a smuggled request:\n%s\n", k, got);
				fail();
			}
		}
		st_http__free(&p);
		free(got);
	}
	stats(sh, &st);
	/* all refused but the leading-zeros length, which every server reads as we do */
	assert_int_equal(st.malformed, sizeof(shapes) / sizeof(shapes[0]) - 1);
	/* every byte staged or queued is accounted for when the connections are gone */
	st_shadow__flush(sh);
	st_shadow__drain(sh, 2000);
	stats(sh, &st);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.staged, 0);
	assert_int_equal(st.resyncs, 0);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* A shadow that answers garbage: its connection is closed and counted, production unharmed. */
static void test_hostile_shadow(void **state)
{
	struct sink *s = sink_start(false, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };

	s->garbage = true;
	cfg_init(&cfg, s->port);
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 41200);
	t_sends(sh, &t, GET1);
	run_ms(sh, 200);
	stats(sh, &st);
	assert_int_equal(st.replayed, 1);
	assert_int_equal(st.bad_responses, 1);
	assert_int_equal(st.shadow_conns, 0);
	assert_true(st.resp_bytes <= 65536);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/* ---- the load test's side of the engine (shadow.h, "A load test") ------------------- */

/* The load ops a test plays: the i-th released request is due at base + off[i]. */
struct tload {
	uint64_t base;
	uint64_t off[16];
	unsigned n;                  /* released so far */
	bool never;                  /* every request is past the end */
	uint64_t ts[16];             /* the capture times the engine gave */
	unsigned taken;
	bool early_take;             /* a request was taken up before it was due */
	struct st_shadow_done done[16];
	unsigned ndone;
};

static uint32_t tl_tag(void *ctx, const struct st_http_head *h)
{
	return (uint32_t)(unsigned char)h->target[1]; /* "/1" -> '1' */
}

static uint64_t tl_due(void *ctx, uint64_t ts, uint64_t now)
{
	struct tload *t = ctx;
	unsigned i = t->n++;

	assert_true(i < 16);
	t->ts[i] = ts;
	return t->never ? ST_SHADOW_NEVER : t->base + t->off[i];
}

static void tl_taken(void *ctx, unsigned slot, uint64_t due, uint64_t now)
{
	struct tload *t = ctx;

	t->taken++;
	if (now < due)
		t->early_take = true;
}

static void tl_done(void *ctx, const struct st_shadow_done *d)
{
	struct tload *t = ctx;

	assert_true(t->ndone < 16);
	t->done[t->ndone++] = *d;
}

static const struct st_shadow_load_ops tl_ops = {
	.tag = tl_tag, .due = tl_due, .taken = tl_taken, .done = tl_done,
};

static void load_cfg(struct st_shadow_config *cfg, uint16_t port, struct tload *t)
{
	cfg_init(cfg, port);
	cfg->load = &tl_ops;
	cfg->load_ctx = t;
	memset(t, 0, sizeof(*t));
	t->base = st_loop_mono_ns();
}

/* Runs a load test's engine as its command does: due requests at their time, I/O, timers. */
static void load_run_until(struct st_shadow *sh, struct tload *t, unsigned ndone, int max_ms)
{
	uint64_t end = th_mono_ms() + (uint64_t)max_ms;

	while (th_mono_ms() < end && (!ndone || t->ndone < ndone)) {
		uint64_t now = st_loop_mono_ns(), next = st_shadow__due(sh, now);
		int ms = 2;

		if (next && next > now && next - now < 2000000)
			ms = (int)((next - now) / 1000000);
		st_shadow__poll(sh, ms);
		st_shadow__tick(sh, 0);
	}
}

/*
 * Each request goes at its due time, not before, on its recorded connection's one shadow
 * connection; the engine says when it took each one up, and what became of it: answered,
 * with its status, the times (due <= sent <= end) and the tag load->tag() gave its head; the
 * capture time load->due() got is the request head's.
 */
static void test_load_due(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	struct tload tl;
	uint64_t heads[3];
	const char *reqs[3] = { GET1, GET2, GET3 };
	size_t want = 0;

	load_cfg(&cfg, s->port, &tl);
	tl.off[1] = 300000000;
	tl.off[2] = 600000000;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 42000);
	for (int i = 0; i < 3; i++) {
		heads[i] = th_clock_ns + th_step_ns;
		t_sends(sh, &t, reqs[i]);
	}
	st_shadow__kick(sh);
	for (int i = 0; i < 3; i++) {
		/* the sink has nothing of request i before it is due */
		while (st_loop_mono_ns() < tl.base + tl.off[i] - 20000000) {
			size_t len = 0;
			char *d;

			load_run_until(sh, &tl, 0, 5);
			d = sink_data(s, 0, &len);
			if (len > want)
				fail_msg("request %d reached the shadow %.1f ms before it was due", i,
					 (double)(tl.base + tl.off[i] - st_loop_mono_ns()) / 1e6);
			free(d);
		}
		want += strlen(reqs[i]);
	}
	load_run_until(sh, &tl, 3, 5000);
	free(wait_bytes(sh, s, 0, want, false));
	assert_int_equal(tl.ndone, 3);
	assert_int_equal(tl.taken, 3);
	assert_false(tl.early_take);
	for (int i = 0; i < 3; i++) {
		const struct st_shadow_done *d = &tl.done[i];

		assert_int_equal(tl.ts[i], heads[i]);
		assert_int_equal(d->fail, ST_SHADOW_ANSWERED);
		assert_int_equal(d->status, 200);
		assert_int_equal(d->tag, '1' + i);
		assert_int_equal(d->slot, 0);
		assert_int_equal(d->due, tl.base + tl.off[i]);
		assert_true(d->sent >= d->due);
		assert_true(d->end >= d->sent);
	}
	assert_int_equal(sink_nconn(s), 1);
	stats(sh, &st);
	assert_int_equal(st.replayed, 3);
	assert_int_equal(st.responses, 3);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/*
 * A request the recording did not pipeline (production had answered the one before) waits
 * for the answer before it, due or not; pipelined ones go together.
 */
static void test_load_wait_prev(void **state)
{
	for (int pipelined = 0; pipelined < 2; pipelined++) {
		struct sink *s = sink_start(false, false); /* reads, never answers */
		struct st_shadow_config cfg;
		struct st_shadow *sh;
		struct tconn t = { 0 };
		struct tload tl;
		size_t len = 0;
		char *d;

		load_cfg(&cfg, s->port, &tl);
		sh = st_shadow__new(&cfg);
		t_open(sh, &t, 42010);
		t.manual = pipelined;
		t_sends(sh, &t, GET1);
		t_sends(sh, &t, GET2);
		if (pipelined) {
			t_reply(sh, &t, PROD_OK);
			t_reply(sh, &t, PROD_OK);
		}
		st_shadow__kick(sh);
		load_run_until(sh, &tl, 0, 300);
		d = sink_data(s, 0, &len);
		assert_non_null(d);
		assert_int_equal(len, strlen(GET1) + (pipelined ? strlen(GET2) : 0));
		assert_int_equal(tl.taken, 2);
		free(d);
		t_free(&t);
		st_shadow__free(sh);
		sink_stop(s);
	}
}

/*
 * --connections: at most max_conns shadow connections at once; a recorded connection due
 * while they are taken waits (counted), and gets one as soon as one closes.
 */
static void test_load_conns(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t1 = { 0 }, t2 = { 0 };
	struct tload tl;
	bool first_closed = false;
	uint64_t end;

	load_cfg(&cfg, s->port, &tl);
	cfg.max_conns = 1;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t1, 42020);
	t_sends(sh, &t1, GET1);
	t_close(sh, &t1);
	t_open(sh, &t2, 42021);
	t_sends(sh, &t2, GET2);
	t_close(sh, &t2);
	st_shadow__kick(sh);
	end = th_mono_ms() + 5000;
	while (th_mono_ms() < end && tl.ndone < 2) {
		load_run_until(sh, &tl, 0, 2);
		pthread_mutex_lock(&s->mu);
		/* the second connection comes only once the first is over */
		if (s->n == 2)
			first_closed = s->c[0].eof;
		assert_true(s->n < 2 || first_closed);
		pthread_mutex_unlock(&s->mu);
	}
	assert_int_equal(tl.ndone, 2);
	assert_int_equal(tl.done[0].fail, ST_SHADOW_ANSWERED);
	assert_int_equal(tl.done[1].fail, ST_SHADOW_ANSWERED);
	/* the second waited: its latency runs from its due time */
	assert_true(tl.done[1].sent > tl.done[0].end);
	assert_int_equal(sink_nconn(s), 2);
	stats(sh, &st);
	assert_int_equal(st.conn_waits, 1);
	t_free(&t1);
	t_free(&t2);
	st_shadow__free(sh);
	sink_stop(s);
}

/* One request on a target that behaves as set up; its outcome. */
static struct st_shadow_done load_one(struct sink *s, uint16_t port, uint64_t timeout_ms,
				      uint64_t max_queue)
{
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct tconn t = { 0 };
	struct tload tl;

	load_cfg(&cfg, s ? s->port : port, &tl);
	cfg.answer_timeout_ns = timeout_ms * 1000000;
	cfg.max_queue = max_queue;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 42030);
	t_sends(sh, &t, GET1);
	st_shadow__kick(sh);
	load_run_until(sh, &tl, 1, 5000);
	assert_int_equal(tl.ndone, 1);
	t_free(&t);
	st_shadow__free(sh);
	return tl.done[0];
}

/* Failures by kind: refused, reset, timeout, a malformed answer, dropped; a 5xx is an answer. */
static void test_load_fail_kinds(void **state)
{
	struct st_shadow_done d;
	struct sink *s;

	d = load_one(NULL, th_closed_port(), 0, 0);
	assert_int_equal(d.fail, ST_SHADOW_F_REFUSED);
	assert_int_equal(d.sent, 0);

	s = sink_start(true, false);
	s->rst = true;
	d = load_one(s, 0, 0, 0);
	assert_int_equal(d.fail, ST_SHADOW_F_RESET);
	assert_true(d.sent >= d.due);
	sink_stop(s);

	s = sink_start(false, false);
	d = load_one(s, 0, 200, 0);
	assert_int_equal(d.fail, ST_SHADOW_F_TIMEOUT);
	assert_true(d.end - d.sent >= 200000000);
	sink_stop(s);

	s = sink_start(false, false);
	s->garbage = true;
	d = load_one(s, 0, 0, 0);
	assert_int_equal(d.fail, ST_SHADOW_F_MALFORMED);
	sink_stop(s);

	s = sink_start(true, false);
	s->status = 503;
	d = load_one(s, 0, 0, 0);
	assert_int_equal(d.fail, ST_SHADOW_ANSWERED);
	assert_int_equal(d.status, 503);
	sink_stop(s);

	/* room for the request in its stage, not for its copy on the shadow connection */
	s = sink_start(true, false);
	d = load_one(s, 0, 0, 800);
	assert_int_equal(d.fail, ST_SHADOW_F_DROPPED);
	assert_int_equal(d.sent, 0);
	assert_int_equal(sink_nconn(s), 0);
	sink_stop(s);
}

/*
 * A failed connection fails what was due on it, and only that: the requests not due yet go
 * on a new connection at their time (one attempt per due request: a refusing target is
 * never retried in a loop, and a later request is never failed early).
 */
static void test_load_fail_moves_on(void **state)
{
	for (int refused = 0; refused < 2; refused++) {
		struct sink *s = refused ? NULL : sink_start(true, false);
		struct st_shadow_config cfg;
		struct st_shadow *sh;
		struct st_shadow_stats st;
		struct tconn t = { 0 };
		struct tload tl;

		if (s)
			s->rst = true;
		load_cfg(&cfg, s ? s->port : th_closed_port(), &tl);
		tl.off[1] = 200000000;
		tl.off[2] = 400000000;
		sh = st_shadow__new(&cfg);
		t_open(sh, &t, 42040);
		t_sends(sh, &t, GET1);
		t_sends(sh, &t, GET2);
		t_sends(sh, &t, GET3);
		st_shadow__kick(sh);
		load_run_until(sh, &tl, 3, 5000);
		assert_int_equal(tl.ndone, 3);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(tl.done[i].fail, refused ? ST_SHADOW_F_REFUSED : ST_SHADOW_F_RESET);
			assert_int_equal(tl.done[i].tag, '1' + i);
			assert_true(tl.done[i].end >= tl.done[i].due);
		}
		stats(sh, &st);
		assert_int_equal(st.connects, 3);
		if (s) {
			assert_int_equal(sink_nconn(s), 3);
			sink_stop(s);
		}
		t_free(&t);
		st_shadow__free(sh);
	}
}

/* Past the end: not sent, not said to be done, counted; the same connection again after a
 * flush (the next pass of a recording) is a new shadow connection. */
static void test_load_past_end_and_again(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn t = { 0 };
	struct tload tl;

	load_cfg(&cfg, s->port, &tl);
	tl.never = true;
	sh = st_shadow__new(&cfg);
	t_open(sh, &t, 42050);
	t_sends(sh, &t, GET1);
	t_close(sh, &t);
	load_run_until(sh, &tl, 0, 100);
	stats(sh, &st);
	assert_int_equal(st.past_end, 1);
	assert_int_equal(st.replayed, 0);
	assert_int_equal(tl.ndone, 0);
	assert_int_equal(sink_nconn(s), 0);
	/* the same recorded connection twice, with a flush between: two shadow connections */
	tl.never = false;
	for (int pass = 0; pass < 2; pass++) {
		t_open(sh, &t, 42051);
		t_sends(sh, &t, GET1);
		t_close(sh, &t);
		st_shadow__flush(sh);
	}
	load_run_until(sh, &tl, 2, 5000);
	assert_int_equal(tl.ndone, 2);
	assert_int_equal(sink_nconn(s), 2);
	t_free(&t);
	st_shadow__free(sh);
	sink_stop(s);
}

/*
 * HTTP/2 is not load-tested (docs/LOAD.md): a connection that starts with the connection
 * preface is skipped (h2 and skipped_conns count it), nothing of it is due or sent; an
 * HTTP/1 connection next to it is load-tested as ever.
 */
static void test_load_h2_skipped(void **state)
{
	static const uint8_t settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 }; /* SETTINGS, empty */
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct st_shadow_stats st;
	struct tconn h2 = { 0 }, h1 = { 0 };
	struct tload tl;

	load_cfg(&cfg, s->port, &tl);
	sh = st_shadow__new(&cfg);
	t_open(sh, &h2, 42060);
	h2.manual = true;
	t_sends(sh, &h2, ST_H2_PREFACE);
	t_send(sh, &h2, settings, sizeof(settings));
	t_close(sh, &h2);
	t_open(sh, &h1, 42061);
	t_sends(sh, &h1, GET1);
	t_close(sh, &h1);
	st_shadow__kick(sh);
	load_run_until(sh, &tl, 1, 5000);
	stats(sh, &st);
	assert_int_equal(st.h2, 1);
	assert_int_equal(st.skipped_conns, 1);
	assert_int_equal(st.h2_shadow_conns, 0);
	assert_int_equal(tl.n, 1); /* only the HTTP/1 request was given a due time */
	assert_int_equal(tl.ndone, 1);
	assert_int_equal(tl.done[0].fail, ST_SHADOW_ANSWERED);
	assert_int_equal(st.replayed, 1);
	assert_int_equal(sink_nconn(s), 1);
	t_free(&h2);
	t_free(&h1);
	st_shadow__free(sh);
	sink_stop(s);
}

/*
 * The pass cache: the first pass kept, the next replayed from it: the same requests, bytes,
 * connection per recorded connection and order, capture times and tags, on new
 * connections; a cache too small for the pass is given up (the recording is read again).
 */
static void test_load_cache(void **state)
{
	struct sink *s = sink_start(true, false);
	struct st_shadow_config cfg;
	struct st_shadow *sh;
	struct tconn a = { 0 }, b = { 0 };
	struct tload tl;
	uint64_t ts;
	int n;

	load_cfg(&cfg, s->port, &tl);
	cfg.load_cache_max = 1 << 20;
	sh = st_shadow__new(&cfg);
	t_open(sh, &a, 42060);
	t_sends(sh, &a, GET1);
	t_open(sh, &b, 42061);
	t_sends(sh, &b, GET3);
	t_sends(sh, &a, GET2);
	t_close(sh, &a);
	t_close(sh, &b);
	st_shadow__flush(sh);
	assert_true(st_shadow__cache_ready(sh));
	load_run_until(sh, &tl, 3, 5000);
	/* the second pass, from the cache */
	st_shadow__cache_rewind(sh);
	for (n = 0; st_shadow__cache_ts(sh, &ts); n++)
		st_shadow__cache_feed(sh);
	assert_int_equal(n, 5); /* three requests, two connections' ends */
	load_run_until(sh, &tl, 6, 5000);
	assert_int_equal(tl.ndone, 6);
	assert_int_equal(tl.n, 6);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tl.ts[3 + i], tl.ts[i]);
		assert_int_equal(tl.done[3 + i].fail, ST_SHADOW_ANSWERED);
	}
	/* four shadow connections, the second pass's as the first's */
	for (int i = 0; i < 200 && sink_nconn(s) < 4; i++)
		load_run_until(sh, &tl, 0, 5);
	assert_int_equal(sink_nconn(s), 4);
	{
		char want_a[128], *d[4];
		size_t len[4];
		int na = 0, nb = 0;

		snprintf(want_a, sizeof(want_a), "%s%s", GET1, GET2);
		for (int i = 0; i < 4; i++) {
			d[i] = sink_data(s, i, &len[i]);
			na += !strcmp(d[i], want_a);
			nb += !strcmp(d[i], GET3);
			free(d[i]);
		}
		assert_int_equal(na, 2);
		assert_int_equal(nb, 2);
	}
	t_free(&a);
	t_free(&b);
	st_shadow__free(sh);
	/* a cache too small: given up */
	load_cfg(&cfg, s->port, &tl);
	cfg.load_cache_max = 64;
	sh = st_shadow__new(&cfg);
	t_open(sh, &a, 42062);
	t_sends(sh, &a, GET1);
	t_close(sh, &a);
	st_shadow__flush(sh);
	assert_false(st_shadow__cache_ready(sh));
	load_run_until(sh, &tl, 1, 5000);
	t_free(&a);
	st_shadow__free(sh);
	sink_stop(s);
}

static void test_parse_target(void **state)
{
	struct st_shadow_target t;
	char err[256];

	assert_int_equal(st_shadow_parse_target("127.0.0.1:80", &t, err, sizeof(err)), 0);
	assert_int_equal(t.pct, 0);
	assert_int_equal(st_shadow_parse_target("[::1]:8080/25", &t, err, sizeof(err)), 0);
	assert_int_equal(t.pct, 25);
	assert_int_equal(t.addr.ss_family, AF_INET6);
	assert_int_equal(st_shadow_parse_target("127.0.0.1", &t, err, sizeof(err)), -1);
	assert_int_equal(st_shadow_parse_target("127.0.0.1:0", &t, err, sizeof(err)), -1);
	assert_int_equal(st_shadow_parse_target("127.0.0.1:80/0", &t, err, sizeof(err)), -1);
	assert_int_equal(st_shadow_parse_target("127.0.0.1:80/101", &t, err, sizeof(err)), -1);
	assert_int_equal(st_shadow_parse_target(":80", &t, err, sizeof(err)), -1);
	assert_int_equal(st_shadow_parse_target("127.0.0.1:99999", &t, err, sizeof(err)), -1);
}

/*
 * --correlate in the engine: a login answered by production with its session, by the shadow
 * with its own; the next request carries production's session before the shadow's answer is
 * in: it waits, and goes with the shadow's session. A shadow that never answers: the request
 * waits --correlate-wait, then goes as it is (unmapped).
 */
static void test_correlate(void **state)
{
	static const char LOGIN[] = "POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
	static const char ME[] = "GET /me HTTP/1.1\r\nHost: a\r\nCookie: sid=prodSESSION00001\r\n\r\n";
	static const char ME_T[] = "GET /me HTTP/1.1\r\nHost: a\r\nCookie: sid=shadowSESSION0001\r\n\r\n";
	static const char PROD_LOGIN[] = "HTTP/1.1 200 OK\r\nSet-Cookie: sid=prodSESSION00001; Path=/\r\n"
					 "Content-Length: 0\r\n\r\n";
	struct st_correlate_config cc = { .wait_ns = 300ull * 1000000 };
	struct st_shadow_config cfg;
	struct st_shadow_stats st;
	struct st_shadow *sh;
	struct sink *s;
	struct tconn t = { 0 };
	char want[256];
	char *d;
	uint64_t t0;

	(void)state;
	for (int round = 0; round < 2; round++) {
		bool answers = round == 0;

		s = sink_start(answers, false);
		s->answer = "HTTP/1.1 200 OK\r\nSet-Cookie: sid=shadowSESSION0001; Path=/\r\n"
			    "Content-Length: 2\r\n\r\nok";
		cfg_init(&cfg, s->port);
		cfg.correlate = &cc;
		sh = st_shadow__new(&cfg);
		assert_non_null(sh);
		t_open(sh, &t, 40000);
		t.manual = true;
		t_sends(sh, &t, LOGIN);
		t_reply(sh, &t, PROD_LOGIN);
		st_shadow__kick(sh);
		/* the shadow's answer cannot be in: the engine has not read anything yet */
		t_sends(sh, &t, ME);
		t_reply(sh, &t, PROD_OK);
		st_shadow__kick(sh);
		t0 = th_mono_ms();
		snprintf(want, sizeof(want), "%s%s", LOGIN, answers ? ME_T : ME);
		d = wait_bytes(sh, s, 0, strlen(want), false);
		assert_string_equal(d, want);
		free(d);
		stats(sh, &st);
		assert_int_equal(st.correlate_waits, 1);
		if (answers) {
			assert_int_equal(st.correlated_values, 1);
			assert_int_equal(st.rewritten_requests, 1);
			assert_int_equal(st.unmapped_requests, 0);
		} else {
			assert_true(th_mono_ms() - t0 >= 250); /* the wait, not sooner */
			assert_int_equal(st.correlated_values, 0);
			assert_int_equal(st.rewritten_requests, 0);
			assert_int_equal(st.unmapped_requests, 1);
		}
		assert_int_equal(st.replayed, 2);
		assert_int_equal(st.dropped, 0);
		t_close(sh, &t);
		st_shadow__flush(sh);
		st_shadow__drain(sh, 100);
		st_shadow__free(sh);
		t_free(&t);
		sink_stop(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_target),
		cmocka_unit_test(test_keepalive_pipelined),
		cmocka_unit_test(test_http10),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_gap_mid_request),
		cmocka_unit_test(test_raw_gap),
		cmocka_unit_test(test_auto_detect),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_noread),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_multiply),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_joined),
		cmocka_unit_test(test_arbiter_holds),
		cmocka_unit_test(test_arbiter_refusal),
		cmocka_unit_test(test_release_framed),
		cmocka_unit_test(test_correlate),
		cmocka_unit_test(test_no_server_traffic),
		cmocka_unit_test(test_upgrade_refused),
		cmocka_unit_test(test_not_http),
		cmocka_unit_test(test_smuggling_shapes),
		cmocka_unit_test(test_hostile_shadow),
		cmocka_unit_test(test_shares),
		cmocka_unit_test(test_own_segments),
		cmocka_unit_test(test_random_splits),
		cmocka_unit_test(test_keepalive_limit),
		cmocka_unit_test(test_early_answer),
		cmocka_unit_test(test_one_target_down),
		cmocka_unit_test(test_methods_sample_request),
		cmocka_unit_test(test_load_due),
		cmocka_unit_test(test_load_wait_prev),
		cmocka_unit_test(test_load_conns),
		cmocka_unit_test(test_load_fail_kinds),
		cmocka_unit_test(test_load_fail_moves_on),
		cmocka_unit_test(test_load_past_end_and_again),
		cmocka_unit_test(test_load_cache),
		cmocka_unit_test(test_load_h2_skipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
