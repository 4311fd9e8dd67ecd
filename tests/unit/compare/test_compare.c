/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare end to end in one process: hand-built captured connections go into the
 * shadow engine (production's answers included, as the tap delivers them), local sinks
 * answer as the candidate and the reference, and the comparison runs in the caller's
 * thread (sync mode). Every answer names the request it answers, so a pair matched with
 * the wrong request shows up as a difference.
 *
 * Also, without the engine: noise arithmetic and thresholds, latency verdicts, endpoint
 * templates, and the three outputs (parsed back).
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "compare.h"
#include "compare_merge.h"
#include "compare_report.h"
#include "redact.h"
#include "http.h"
#include "json.h"
#include "shadow.h"
#include "shadow_harness.h"

#define SERVER_PORT 8080
#define SINK_CONNS 64

enum who { PROD = 0, CAND, REF };

/* ---- answers: the same function for production (fed as captured bytes) and the sinks ------ */

static size_t gz(const char *in, size_t n, char *out, size_t cap, int level)
{
	z_stream z = { 0 };

	deflateInit2(&z, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	deflateEnd(&z);
	return cap - z.avail_out;
}

static unsigned rand_seq;

/*
 * The answer of `who` to a request: a JSON body naming the request's target. /diff: the
 * candidate says "v": 2; /rand: every answer carries a new random id (production and the
 * reference too); /gzip: gzip-encoded (another level per side); /chunked: chunked; HEAD:
 * no body; /close: Connection: close; /secret: secrets that differ per side in the body
 * (token, user.password), in X-Api-Key and in Location's query. Returns the length; *close
 * set for /close.
 */
static size_t answer(enum who w, const char *method, const char *target, char *out, size_t cap,
		     bool *close_after)
{
	char body[512], enc[1024], hdr[512];
	size_t bl, o;
	bool head = !strcmp(method, "HEAD");
	int v = w == CAND && (!strncmp(target, "/diff", 5) || !strncmp(target, "/secret", 7)) ? 2 : 1;

	*close_after = !strncmp(target, "/close", 6);
	/* no body whatever the fields say (the framer must know it from the status) */
	if (!strncmp(target, "/nocontent", 10))
		return (size_t)snprintf(out, cap, "HTTP/1.1 204 No Content\r\nServer: %s\r\n\r\n",
					w == PROD ? "prod" : "shadow");
	if (!strncmp(target, "/notmodified", 12))
		return (size_t)snprintf(out, cap, "HTTP/1.1 304 Not Modified\r\nETag: \"%d\"\r\n"
					"Content-Length: 999\r\n\r\n", (int)w);
	if (!strncmp(target, "/secret", 7)) {
		bl = (size_t)snprintf(body, sizeof(body), "{\"token\": \"s3cr3t-tok-%d\", \"user\": "
				      "{\"name\": \"bob\", \"password\": [\"s3cr3t-pw-%d\"]}, \"v\": %d}",
				      v, v, v);
		return (size_t)snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					"X-Api-Key: s3cr3t-hdr-%d\r\nLocation: /next?token=s3cr3t-loc-%d&p=%d\r\n"
					"Content-Length: %zu\r\n\r\n%s", v, v, v, bl, head ? "" : body);
	}
	if (!strncmp(target, "/rand", 5)) {
		unsigned r = ++rand_seq;

		bl = (size_t)snprintf(body, sizeof(body), "{\"path\": \"%s\", \"id\": \"%08x%08x%08x\"}",
				      target, r * 2654435761u, r ^ 0x5bd1e995u, (unsigned)w * 7919u + r);
	} else {
		bl = (size_t)snprintf(body, sizeof(body), "{\"path\": \"%s\", \"v\": %d}", target, v);
	}
	if (!strncmp(target, "/gzip", 5)) {
		bl = gz(body, bl, enc, sizeof(enc), w == PROD ? 1 : 9);
		memcpy(body, enc, bl);
	}
	if (!strncmp(target, "/chunked", 8)) {
		o = (size_t)snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Transfer-Encoding: chunked\r\nDate: %s\r\n\r\n",
				     w == PROD ? "Mon" : "Tue");
		if (!head) {
			o += (size_t)snprintf(out + o, cap - o, "5\r\n%.5s\r\n%zx\r\n%s\r\n0\r\n\r\n", body,
					      bl - 5, body + 5);
		}
		return o;
	}
	snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		 "Server: %s\r\n%s%sContent-Length: %zu\r\n\r\n",
		 w == PROD ? "prod" : "shadow", *close_after ? "Connection: close\r\n" : "",
		 !strncmp(target, "/gzip", 5) ? "Content-Encoding: gzip\r\n" : "", bl);
	o = (size_t)snprintf(out, cap, "%s", hdr);
	if (!head) {
		memcpy(out + o, body, bl);
		o += bl;
	}
	return o;
}

/* ---- a sink that answers like a server ---------------------------------------------------- */

struct sconn_t {
	int fd;
	bool eof;
	int answered;
	struct st_http_parser p;
};

struct sink {
	int lfd;
	uint16_t port;
	enum who who;
	int close_after;      /* keepalive_requests: the Nth answer says Connection: close */
	atomic_bool stop;
	pthread_t th;
	pthread_mutex_t mu;
	int n;
	struct sconn_t c[SINK_CONNS];
};

static void sink_answer(struct sink *s, struct sconn_t *c, const char *buf, size_t len)
{
	struct st_http_event ev;
	char method[16] = "", target[256] = "";
	bool cont = false;

	for (;;) {
		size_t n = st_http__feed(&c->p, buf, len, &ev);

		buf += n;
		len -= n;
		if (ev.type == ST_HTTP_EV_NEED_MORE || ev.type == ST_HTTP_EV_ERROR)
			return;
		if (ev.type == ST_HTTP_EV_HEAD) {
			snprintf(method, sizeof(method), "%.*s", (int)ev.head->method_len, ev.head->method_str);
			snprintf(target, sizeof(target), "%.*s", (int)ev.head->target_len, ev.head->target);
			cont = ev.head->flags & ST_HTTP_HF_EXPECT_CONTINUE;
		}
		if (ev.type == ST_HTTP_EV_MSG_DONE) {
			char out[2048];
			bool close_after;
			size_t o;

			if (!strncmp(target, "/never", 6))
				continue;
			if (cont)
				send(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
			o = answer(s->who, method, target, out, sizeof(out), &close_after);
			c->answered++;
			if (s->close_after && c->answered == s->close_after && !close_after) {
				/* like nginx at keepalive_requests */
				char *p = strstr(out, "\r\n");

				memmove(p + 19, p, o - (size_t)(p - out));
				memcpy(p, "\r\nConnection: close", 19);
				o += 19;
				close_after = true;
			}
			send(c->fd, out, o, MSG_NOSIGNAL);
			if (close_after) {
				pthread_mutex_lock(&s->mu);
				close(c->fd);
				c->fd = -1;
				c->eof = true;
				pthread_mutex_unlock(&s->mu);
				return;
			}
		}
	}
}

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	char buf[65536];

	while (!atomic_load(&s->stop)) {
		struct pollfd pf[SINK_CONNS + 1];
		int idx[SINK_CONNS + 1], n = 0;

		pf[n].fd = s->lfd;
		pf[n].events = POLLIN;
		idx[n++] = -1;
		pthread_mutex_lock(&s->mu);
		for (int i = 0; i < s->n; i++) {
			if (s->c[i].eof)
				continue;
			pf[n].fd = s->c[i].fd;
			pf[n].events = POLLIN;
			idx[n++] = i;
		}
		pthread_mutex_unlock(&s->mu);
		if (poll(pf, (nfds_t)n, 10) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!pf[i].revents)
				continue;
			if (idx[i] < 0) {
				int fd = accept(s->lfd, NULL, NULL);

				if (fd < 0)
					continue;
				pthread_mutex_lock(&s->mu);
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
				struct sconn_t *c = &s->c[idx[i]];
				ssize_t r = recv(c->fd, buf, sizeof(buf), 0);

				if (r <= 0) {
					pthread_mutex_lock(&s->mu);
					c->eof = true;
					close(c->fd);
					c->fd = -1;
					pthread_mutex_unlock(&s->mu);
					continue;
				}
				sink_answer(s, c, buf, (size_t)r);
			}
		}
	}
	return NULL;
}

static struct sink *sink_start(enum who who)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	s->who = who;
	pthread_mutex_init(&s->mu, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 64), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, sink_main, s), 0);
	return s;
}

static void sink_stop(struct sink *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	for (int i = 0; i < s->n; i++) {
		if (s->c[i].fd >= 0)
			close(s->c[i].fd);
		st_http__free(&s->c[i].p);
	}
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static int sink_nconn(struct sink *s)
{
	int n;

	pthread_mutex_lock(&s->mu);
	n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* ---- a captured connection, production answering as `answer` says ----------------------- */

static const uint16_t ports[] = { SERVER_PORT };

struct tconn {
	struct th_conn c;
	bool manual;            /* production's answers are fed by the test */
	struct st_http_parser prod;
	char method[16], target[256];
	bool cont;
};

static void t_reply(struct st_shadow *sh, struct tconn *t, const void *d, size_t n)
{
	th_data(sh, &t->c, false, d, n);
}

/* Production's answers to what the client sent, as the tap delivers them: pipelined
 * requests in one segment get their answers in one segment too. */
static void prod_model(struct st_shadow *sh, struct tconn *t, const char *d, size_t len)
{
	struct st_http_event ev;
	char out[16384];
	size_t o = 0;

	if (t->manual)
		return;
	for (;;) {
		size_t n = st_http__feed(&t->prod, d, len, &ev);

		d += n;
		len -= n;
		if (ev.type == ST_HTTP_EV_NEED_MORE || ev.type == ST_HTTP_EV_ERROR)
			break;
		if (ev.type == ST_HTTP_EV_HEAD) {
			snprintf(t->method, sizeof(t->method), "%.*s", (int)ev.head->method_len,
				 ev.head->method_str);
			snprintf(t->target, sizeof(t->target), "%.*s", (int)ev.head->target_len,
				 ev.head->target);
			t->cont = ev.head->flags & ST_HTTP_HF_EXPECT_CONTINUE;
			if (t->cont) /* the interim answer comes before the body */
				t_reply(sh, t, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		}
		if (ev.type == ST_HTTP_EV_MSG_DONE) {
			bool cl;

			o += answer(PROD, t->method, t->target, out + o, sizeof(out) - o, &cl);
		}
	}
	if (o)
		t_reply(sh, t, out, o);
}

static void t_open(struct st_shadow *sh, struct tconn *t, uint16_t cport)
{
	memset(t, 0, sizeof(*t));
	st_http__init(&t->prod, ST_HTTP_REQUEST, NULL);
	th_init(&t->c, cport, SERVER_PORT);
	th_handshake(sh, &t->c);
}

static void t_send(struct st_shadow *sh, struct tconn *t, const char *d, size_t len)
{
	th_data(sh, &t->c, true, d, len);
	prod_model(sh, t, d, len);
}

static void t_sends(struct st_shadow *sh, struct tconn *t, const char *s)
{
	t_send(sh, t, s, strlen(s));
}

static void t_close(struct st_shadow *sh, struct tconn *t)
{
	th_fin(sh, &t->c);
	st_http__free(&t->prod);
}

/* ---- the stage ---------------------------------------------------------------------------- */

struct stage {
	struct sink *cand, *ref;
	struct st_shadow_config cfg;
	struct st_compare_config ccfg;
	struct st_compare *cmp;
	struct st_shadow *sh;
	uint64_t clock;          /* the compare clock (timeouts), when injected */
	char dir[64];
};

static uint64_t fake_clock(void *ctx)
{
	return ((struct stage *)ctx)->clock;
}

static void stage_target(struct st_shadow_target *t, uint16_t port)
{
	char err[256], to[64];

	snprintf(to, sizeof(to), "127.0.0.1:%u", port);
	assert_int_equal(st_shadow_parse_target(to, t, err, sizeof(err)), 0);
}

/* cand_port 0: a candidate sink; ref: a reference sink too. */
static void stage_up(struct stage *g, bool ref, uint16_t cand_port)
{
	memset(g, 0, sizeof(*g));
	if (!cand_port) {
		g->cand = sink_start(CAND);
		cand_port = g->cand->port;
	}
	stage_target(&g->cfg.targets[0], cand_port);
	g->cfg.n_targets = 1;
	if (ref) {
		g->ref = sink_start(REF);
		stage_target(&g->cfg.targets[1], g->ref->port);
		g->cfg.n_targets = 2;
	}
	g->cfg.ports = ports;
	g->cfg.n_ports = 1;
	g->ccfg.reference = ref;
	g->ccfg.sync = true;
	g->ccfg.command = "test";
	g->ccfg.candidate_name = "cand";
	g->ccfg.reference_name = "ref";
	g->ccfg.clock = fake_clock;
	g->ccfg.clock_ctx = g;
	g->clock = 1;
}

static void stage_go(struct stage *g)
{
	g->cmp = st_compare__new(&g->ccfg);
	assert_non_null(g->cmp);
	g->cfg.compare = g->cmp;
	g->sh = st_shadow__new(&g->cfg);
	assert_non_null(g->sh);
}

static void run_ms(struct stage *g, int ms)
{
	uint64_t end = th_mono_ms() + (uint64_t)ms;

	while (th_mono_ms() < end) {
		st_shadow__poll(g->sh, 5);
		st_shadow__tick(g->sh, 0);
	}
}

/* Runs until `want` pairs are settled (compared or not), at most 5 s. */
static void settle(struct stage *g, uint64_t want)
{
	uint64_t end = th_mono_ms() + 5000;
	struct st_compare_stats st;

	do {
		st_shadow__poll(g->sh, 5);
		st_shadow__tick(g->sh, 0);
		st_compare__stats(g->cmp, &st);
	} while (st.compared + st.not_compared < want && th_mono_ms() < end);
}

static void stage_down(struct stage *g, struct st_compare_stats *st)
{
	st_shadow__flush(g->sh);
	st_shadow__drain(g->sh, 2000);
	st_compare__finish(g->cmp);
	if (st)
		st_compare__stats(g->cmp, st);
}

static void stage_free(struct stage *g)
{
	st_shadow__free(g->sh);
	st_compare__free(g->cmp);
	if (g->cand)
		sink_stop(g->cand);
	if (g->ref)
		sink_stop(g->ref);
}

static const struct st_cmp_endpoint *ep(struct stage *g, const char *name)
{
	const struct st_cmp_agg *a = st_compare__agg(g->cmp);

	for (uint32_t i = 0; i < a->n; i++)
		if (!strcmp(a->ep[i]->name, name))
			return a->ep[i];
	print_error("no endpoint %s; there are:\n", name);
	for (uint32_t i = 0; i < a->n; i++)
		print_error("  %s\n", a->ep[i]->name);
	fail();
	return NULL;
}

static const struct st_cmp_field *field(const struct st_cmp_endpoint *e, const char *path)
{
	for (uint32_t i = 0; i < e->nfields; i++)
		if (!strcmp(e->fields[i].path, path))
			return &e->fields[i];
	return NULL;
}

static void show_fields(struct stage *g)
{
	const struct st_cmp_agg *a = st_compare__agg(g->cmp);

	for (uint32_t i = 0; i < a->n; i++)
		for (uint32_t k = 0; k < a->ep[i]->nfields; k++)
			print_error("  %s %s raw %llu noise %llu\n", a->ep[i]->name,
				    a->ep[i]->fields[k].path, (unsigned long long)a->ep[i]->fields[k].raw,
				    (unsigned long long)a->ep[i]->fields[k].noise);
}

/* ---- pairing ------------------------------------------------------------------------------- */

/* Pipelined requests in one segment, answered in one segment: each paired with its own. */
static void test_pipelining(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;
	const struct st_cmp_field *f;

	stage_up(&g, false, 0);
	stage_go(&g);
	t_open(g.sh, &t, 41000);
	t_sends(g.sh, &t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /diff/1 HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /gzip HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
	settle(&g, 5);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	if (st.compared != 5 || st.differing != 1)
		show_fields(&g);
	assert_int_equal(st.compared, 5);
	assert_int_equal(st.not_compared, 0);
	assert_int_equal(st.differing, 1);
	f = field(ep(&g, "GET /diff/{id}"), "$.v");
	assert_non_null(f);
	assert_int_equal(f->raw, 1);
	assert_string_equal(f->s[0].v[ST_CMP_PROD], "1");
	assert_string_equal(f->s[0].v[ST_CMP_CAND], "2");
	assert_string_equal(f->s[0].target, "/diff/1");
	assert_int_equal(ep(&g, "GET /b?q")->compared, 1);
	assert_int_equal(ep(&g, "GET /gzip")->differing, 0); /* decoded: the same */
	assert_int_equal(ep(&g, "GET /chunked")->differing, 0);
	stage_free(&g);
}

/* Expect: 100-continue (interim answers on both sides), HEAD, 204 and 304 (no body),
 * Connection: close (a new shadow connection for the next request). */
static void test_continue_head_close(void **state)
{
	static const char POST[] = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
				   "Expect: 100-continue\r\n\r\n";
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;

	stage_up(&g, true, 0);
	stage_go(&g);
	t_open(g.sh, &t, 41001);
	t_sends(g.sh, &t, POST);
	t_sends(g.sh, &t, "0123456789");
	t_sends(g.sh, &t, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n");
	t_sends(g.sh, &t, "GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\nGET /notmodified HTTP/1.1\r\n"
			  "Host: x\r\nIf-None-Match: \"0\"\r\n\r\n");
	t_sends(g.sh, &t, "GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
	settle(&g, 5);
	t_close(g.sh, &t);
	/* the client's next connection */
	t_open(g.sh, &t, 41002);
	t_sends(g.sh, &t, "GET /diff HTTP/1.1\r\nHost: x\r\n\r\nHEAD /diff HTTP/1.1\r\nHost: x\r\n\r\n");
	settle(&g, 7);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	if (st.compared != 7)
		show_fields(&g);
	assert_int_equal(st.compared, 7);
	assert_int_equal(st.not_compared, 0);
	assert_int_equal(st.differing, 1); /* GET /diff; HEAD /diff has no body */
	assert_int_equal(ep(&g, "GET /nocontent")->differing, 0);
	/* 304: no body; ETag ignored, Content-Length compared (no body to compare): equal */
	assert_int_equal(ep(&g, "GET /notmodified")->differing, 0);
	assert_int_equal(ep(&g, "GET /notmodified")->status[ST_CMP_CAND].code[0], 304);
	assert_int_equal(ep(&g, "POST /up")->differing, 0);
	assert_int_equal(ep(&g, "HEAD /h")->compared, 1);
	assert_int_equal(ep(&g, "HEAD /diff")->differing, 0);
	assert_int_equal(ep(&g, "GET /close")->compared, 1);
	/* two shadow connections per target: the close made a new one */
	assert_int_equal(sink_nconn(g.cand), 2);
	assert_non_null(field(ep(&g, "GET /diff"), "$.v"));
	assert_int_equal(field(ep(&g, "GET /diff"), "$.v")->noise, 0);
	stage_free(&g);
}

/* A shadow that closes after 3 answers (keepalive_requests): the rest go again on a new
 * connection, and each answer still pairs with its own request. */
static void test_keepalive_resend(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;
	char all[4096];
	size_t n = 0;

	stage_up(&g, false, 0);
	g.cand->close_after = 3;
	stage_go(&g);
	t_open(g.sh, &t, 41003);
	for (int i = 0; i < 10; i++)
		n += (size_t)snprintf(all + n, sizeof(all) - n, "GET /%s%d HTTP/1.1\r\nHost: x\r\n\r\n",
				      i == 7 ? "diff/" : "k", i);
	t_send(g.sh, &t, all, n);
	settle(&g, 10);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.compared, 10);
	assert_int_equal(st.differing, 1);
	assert_true(sink_nconn(g.cand) >= 4);
	assert_int_equal(field(ep(&g, "GET /diff/{id}"), "$.v")->raw, 1);
	stage_free(&g);
}

/* --release framed: requests go out before production answers; its answers, arriving after,
 * still pair by position (and the shadows may answer first). */
static void test_release_framed(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;
	char out[4096];
	size_t n = 0;
	bool cl;

	stage_up(&g, false, 0);
	g.cfg.release = ST_RELEASE_FRAMED;
	stage_go(&g);
	t_open(g.sh, &t, 41014);
	t.manual = true;
	t_sends(g.sh, &t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /diff HTTP/1.1\r\nHost: x\r\n\r\n"
			  "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
	run_ms(&g, 100); /* the candidate has answered all three by now */
	n += answer(PROD, "GET", "/a", out + n, sizeof(out) - n, &cl);
	n += answer(PROD, "GET", "/diff", out + n, sizeof(out) - n, &cl);
	n += answer(PROD, "GET", "/chunked", out + n, sizeof(out) - n, &cl);
	t_reply(g.sh, &t, out, n);
	settle(&g, 3);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.compared, 3);
	assert_int_equal(st.differing, 1);
	assert_non_null(field(ep(&g, "GET /diff"), "$.v"));
	stage_free(&g);
}

/* A value that changes on every answer (production and reference too) is noise; a field
 * only the candidate changes is a regression. */
static void test_noise_with_reference(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;
	struct st_cmp_fverdict v;
	const struct st_cmp_endpoint *e;

	stage_up(&g, true, 0);
	stage_go(&g);
	t_open(g.sh, &t, 41004);
	for (int i = 0; i < 20; i++) {
		char r[128];

		snprintf(r, sizeof(r), "GET /rand HTTP/1.1\r\nHost: x\r\n\r\nGET /diff HTTP/1.1\r\n"
			 "Host: x\r\n\r\n");
		t_sends(g.sh, &t, r);
	}
	settle(&g, 40);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.compared, 40);
	assert_int_equal(st.differing, 20);
	assert_int_equal(st.noise_only, 20);
	e = ep(&g, "GET /rand");
	st_cmp_field_verdict(st_compare__agg(g.cmp), e, field(e, "$.id"), &v);
	assert_false(v.regression);
	assert_int_equal(field(e, "$.id")->raw, 20);
	assert_int_equal(field(e, "$.id")->noise, 20);
	e = ep(&g, "GET /diff");
	st_cmp_field_verdict(st_compare__agg(g.cmp), e, field(e, "$.v"), &v);
	assert_true(v.regression);
	assert_int_equal(st_cmp_endpoint_regressions(st_compare__agg(g.cmp), e), 1);
	assert_int_equal(st_cmp_endpoint_regressions(st_compare__agg(g.cmp), ep(&g, "GET /rand")), 0);
	stage_free(&g);
}

/* Without a reference: the random id is flagged as likely noise by its shape. */
static void test_noise_heuristic(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;
	struct st_cmp_fverdict v;
	const struct st_cmp_endpoint *e;

	stage_up(&g, false, 0);
	stage_go(&g);
	t_open(g.sh, &t, 41005);
	for (int i = 0; i < 10; i++)
		t_sends(g.sh, &t, "GET /rand HTTP/1.1\r\nHost: x\r\n\r\n");
	settle(&g, 10);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.compared, 10);
	assert_int_equal(st.noise_only, 10);
	e = ep(&g, "GET /rand");
	st_cmp_field_verdict(st_compare__agg(g.cmp), e, field(e, "$.id"), &v);
	assert_true(v.likely_noise);
	assert_false(v.regression);
	stage_free(&g);
}

/* Pairs that cannot be compared are counted by reason. */
static void test_not_compared(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;
	char out[2048];
	bool cl;
	size_t n;

	/* production's answer crosses a capture gap (inside its body) */
	stage_up(&g, false, 0);
	stage_go(&g);
	t_open(g.sh, &t, 41006);
	t.manual = true;
	t_sends(g.sh, &t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
	n = answer(PROD, "GET", "/a", out, sizeof(out), &cl);
	t_reply(g.sh, &t, out, n - 5);
	th_seg(g.sh, &t.c, false, ST_TCP_ACK, t.c.sseq, NULL, 5, true); /* lost by the capture */
	t.c.sseq += 5;
	n = answer(PROD, "GET", "/b", out, sizeof(out), &cl);
	t_reply(g.sh, &t, out, n);
	settle(&g, 2);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.not_compared_prod_gap, 1);
	assert_int_equal(st.compared, 1);
	stage_free(&g);

	/* the candidate refuses connections */
	stage_up(&g, false, th_closed_port());
	stage_go(&g);
	t_open(g.sh, &t, 41007);
	t_sends(g.sh, &t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	run_ms(&g, 100);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.compared, 0);
	assert_int_equal(st.not_compared, 1);
	assert_true(st.not_compared_shadow_dropped + st.not_compared_shadow_unanswered == 1);
	stage_free(&g);

	/* the candidate never answers: the timeout */
	stage_up(&g, false, 0);
	g.ccfg.timeout_s = 5;
	stage_go(&g);
	t_open(g.sh, &t, 41008);
	t_sends(g.sh, &t, "GET /never HTTP/1.1\r\nHost: x\r\n\r\nGET /never2 HTTP/1.1\r\nHost: x\r\n\r\n");
	run_ms(&g, 50);
	g.clock += 6000000000ull; /* 6 s later */
	run_ms(&g, 20);
	st_compare__stats(g.cmp, &st);
	assert_int_equal(st.not_compared_timeout, 0); /* counted when the holders let go */
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.not_compared_timeout, 2);
	assert_int_equal(st.compared, 0);
	stage_free(&g);

	/* production's answers missing altogether (a client-side-only capture): the engine
	 * replays on framing alone at the end of input; there is nothing to compare with */
	stage_up(&g, false, 0);
	stage_go(&g);
	memset(&t, 0, sizeof(t));
	t.manual = true;
	t.c.k.src.family = t.c.k.dst.family = 4;
	t.c.k.src.a[0] = htonl(0x0a000002);
	t.c.k.dst.a[0] = htonl(0x0a000001);
	t.c.k.sport = 41009;
	t.c.k.dport = SERVER_PORT;
	t.c.cseq = 1000;
	th_seg(g.sh, &t.c, true, ST_TCP_SYN, t.c.cseq++, NULL, 0, false);
	st_http__init(&t.prod, ST_HTTP_REQUEST, NULL);
	t_sends(g.sh, &t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	th_seg(g.sh, &t.c, true, ST_TCP_FIN | ST_TCP_ACK, t.c.cseq++, NULL, 0, false);
	st_http__free(&t.prod);
	stage_down(&g, &st);
	assert_int_equal(st.not_compared, 1);
	assert_int_equal(st.not_compared_prod_unanswered, 1);
	stage_free(&g);
}

/* The global memory cap: pairs past it are not compared, memory comes back. */
static void test_memory_cap(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;

	stage_up(&g, false, 0);
	g.ccfg.max_mem = 3000; /* about one pair with its request */
	stage_go(&g);
	t_open(g.sh, &t, 41010);
	for (int i = 0; i < 8; i++)
		t_sends(g.sh, &t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	settle(&g, 8);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.compared + st.not_compared, 8);
	assert_true(st.not_compared_memory > 0);
	assert_true(st.compare_mem_peak <= 3000);
	assert_int_equal(st.compare_mem, 0);
	assert_int_equal(st.compare_pairs, 0);
	stage_free(&g);
}

/* The worker thread: the same pairs, compared off the engine's thread. */
static void test_worker_thread(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;

	stage_up(&g, true, 0);
	g.ccfg.sync = false;
	stage_go(&g);
	t_open(g.sh, &t, 41011);
	for (int i = 0; i < 30; i++)
		t_sends(g.sh, &t, i % 3 ? "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" :
					  "GET /diff HTTP/1.1\r\nHost: x\r\n\r\n");
	settle(&g, 30);
	t_close(g.sh, &t);
	stage_down(&g, &st); /* finish joins the worker */
	assert_int_equal(st.compared, 30);
	assert_int_equal(st.differing, 10);
	assert_int_equal(st.compare_pairs, 0);
	assert_int_equal(st.compare_mem, 0);
	stage_free(&g);
}

/* A worker with no report to write waits for its next interval like one with reports: it
 * used to find the interval due at every turn once a pair was compared (nothing reset it
 * without a report) and spun on a core for the rest of the run. */
static void test_worker_idle(void **state)
{
	struct stage g;
	struct tconn t;
	struct timespec a, b;
	double cpu;

	stage_up(&g, false, 0);
	g.ccfg.sync = false;
	g.ccfg.clock = NULL;         /* the worker's intervals on the real clock */
	g.ccfg.report_every_s = 0.05;
	stage_go(&g);
	t_open(g.sh, &t, 41013);
	t_sends(g.sh, &t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	settle(&g, 1);
	usleep(200 * 1000); /* past an interval: the pair is in the aggregate */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	usleep(600 * 1000);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	cpu = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	if (cpu > 0.1)
		fail_msg("the process used %.2f s of CPU in 0.6 s of idle time (a spinning worker)",
			 cpu);
	t_close(g.sh, &t);
	stage_down(&g, NULL);
	stage_free(&g);
}

/* ---- outputs -------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)n + 1);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void test_outputs(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;
	char html[128], js[128], dl[128], *b;
	size_t len;
	struct st_json_doc d;

	stage_up(&g, true, 0);
	snprintf(g.dir, sizeof(g.dir), "/tmp/st-cmp-XXXXXX");
	assert_non_null(mkdtemp(g.dir));
	snprintf(html, sizeof(html), "%s/r.html", g.dir);
	snprintf(js, sizeof(js), "%s/r.json", g.dir);
	snprintf(dl, sizeof(dl), "%s/d.jsonl", g.dir);
	g.ccfg.report = html;
	g.ccfg.report_json = js;
	g.ccfg.diffs = dl;
	stage_go(&g);
	/* the files exist from the start */
	assert_int_equal(access(html, R_OK), 0);
	assert_int_equal(access(dl, R_OK), 0);
	t_open(g.sh, &t, 41012);
	t_sends(g.sh, &t, "GET /diff/7?x=<script> HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
			  "Cookie: sid=s3cret\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	settle(&g, 2);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.diffs_written, 1);
	st_json_doc_init(&d, 0, 0);
	/* --diffs: one valid JSON object per line, secrets masked */
	b = slurp(dl, &len);
	assert_int_equal(st_json_parse(&d, b, len), 0);
	assert_non_null(strstr(b, "\"endpoint\": \"GET /diff/{id}?x\""));
	assert_non_null(strstr(b, "\"path\": \"$.v\", \"kind\": \"value\", \"production\": \"1\", "
				  "\"candidate\": \"2\", \"reference\": \"1\""));
	assert_null(strstr(b, "s3cret"));
	assert_non_null(strstr(b, "[\"Authorization\", \"(masked)\"]"));
	free(b);
	/* --report-json: valid, with the fixed keys */
	b = slurp(js, &len);
	assert_int_equal(st_json_parse(&d, b, len), 0);
	assert_non_null(strstr(b, "\"endpoints\": ["));
	assert_non_null(strstr(b, "{\"path\": \"$.v\", \"kind\": \"value\", \"raw\": 1, \"noise\": 0, "
				  "\"verdict\": \"regression\""));
	assert_non_null(strstr(b, "\"latency\": {\"production\": {\"p50\": "));
	/* one sample a side: no latency verdict, said as such (never "same") */
	assert_non_null(strstr(b, "\"verdict\": \"n/a\""));
	assert_null(strstr(b, "\"verdict\": \"same\""));
	assert_non_null(strstr(b, "\"status\": {\"production\": {\"200\": 1}"));
	/* the run's verdict, as the line on stderr and --fail-on-* have it */
	assert_non_null(strstr(b, "\"verdict\": {\"result\": \"fail\", \"regressions\": 1, "
				  "\"regression_endpoints\": 1, \"slower_endpoints\": 0, "
				  "\"latency_judged_endpoints\": 0, \"endpoints\": 2, "
				  "\"pairs_compared\": 2, "));
	{
		/* what a run writes, report --merge reads (compare_merge.c): this host, the pairs */
		struct st_cmp_report *r = malloc(sizeof(*r));
		char err[256] = "", host[ST_CMP_HOST_MAX] = "";

		assert_non_null(r);
		if (st_cmp_report_load(r, b, len, err, sizeof(err)))
			fail_msg("the run's JSON report does not load: %s", err);
		gethostname(host, sizeof(host) - 1);
		assert_int_equal(r->nhosts, 1);
		assert_string_equal(r->hosts[0], host);
		assert_int_equal(r->agg.compared, 2);
		assert_true(r->agg.cfg.reference);
		assert_int_equal(st_statline_value(&r->counters, "compared"), 2);
		st_cmp_report_free(r);
		free(r);
	}
	free(b);
	/* --report: self-contained, escaped */
	b = slurp(html, &len);
	assert_non_null(strstr(b, "<table id=\"endpoints\">"));
	assert_non_null(strstr(b, "data-path=\"$.v\""));
	assert_non_null(strstr(b, "&lt;script&gt;"));
	assert_null(strstr(b, "<script"));
	assert_null(strstr(b, "http://") == NULL ? NULL : strstr(strstr(b, "http://"), "src="));
	assert_non_null(strstr(b, "<svg"));
	/* the banner, the value that changed, the words of a verdict without enough samples,
	 * the counters below the endpoints */
	assert_non_null(strstr(b, "<div id=\"banner\" class=\"banner fail\">FAIL</div>"));
	assert_non_null(strstr(b, "<code>$.v</code> <span class=\"vals\"><code>1</code> &rarr; "
				  "<code>2</code></span>"));
	assert_non_null(strstr(b, "n/a (n &lt; 10)"));
	assert_non_null(strstr(b, "latency <strong>n/a</strong>"));
	assert_null(strstr(b, "0 endpoints slower"));
	assert_true(strstr(b, "id=\"summary\"") > strstr(b, "id=\"details\""));
	free(b);
	st_json_doc_free(&d);
	unlink(html);
	unlink(js);
	unlink(dl);
	rmdir(g.dir);
	stage_free(&g);
}

/* The redaction policy (redact.h) in every output: targets' query values and userinfo, listed
 * header fields, JSON members and what is under them, request bodies; --no-redact shows all. */
static void test_outputs_redacted(void **state)
{
	for (int off = 0; off < 2; off++) {
		static const struct st_redact_rules none = { .none = true };
		struct stage g;
		struct tconn t;
		struct st_compare_stats st;
		char html[128], js[128], dl[128], *b;
		size_t len;

		stage_up(&g, true, 0);
		snprintf(g.dir, sizeof(g.dir), "/tmp/st-cmp-XXXXXX");
		assert_non_null(mkdtemp(g.dir));
		snprintf(html, sizeof(html), "%s/r.html", g.dir);
		snprintf(js, sizeof(js), "%s/r.json", g.dir);
		snprintf(dl, sizeof(dl), "%s/d.jsonl", g.dir);
		g.ccfg.report = html;
		g.ccfg.report_json = js;
		g.ccfg.diffs = dl;
		if (off)
			g.ccfg.rules.redact = &none;
		stage_go(&g);
		t_open(g.sh, &t, 41014);
		t_sends(g.sh, &t, "POST /secret?access_token=s3cr3t-q1&page=1;Token=s3cr3t-q2 HTTP/1.1\r\n"
				  "Host: x\r\nX-Api-Key: s3cr3t-req\r\nReferer: http://u:s3cr3t-ui@h/\r\n"
				  "Content-Type: text/plain\r\nContent-Length: 27\r\n\r\n"
				  "{\"password\":\"s3cr3t-body1\"}");
		settle(&g, 1);
		t_close(g.sh, &t);
		stage_down(&g, &st);
		assert_int_equal(st.diffs_written, 1);
		for (int k = 0; k < 3; k++) {
			b = slurp(k == 0 ? dl : k == 1 ? js : html, &len);
			if (!off && strstr(b, "s3cr3t"))
				fail_msg("a secret in %s: %s", k == 0 ? dl : k == 1 ? js : html,
					 strstr(b, "s3cr3t"));
			if (off && !strstr(b, "s3cr3t-tok-"))
				fail_msg("--no-redact: the values are not shown in %s", k == 0 ? dl : js);
			if (!off && k == 0) {
				assert_non_null(strstr(b, "\"target\": \"/secret?access_token=*********"
							  "&page=1;Token=*********\""));
				assert_non_null(strstr(b, "[\"X-Api-Key\", \"(masked)\"]"));
				assert_non_null(strstr(b, "\"body\": \"{\\\"password\\\":\\\"************\\\"}\""));
				assert_non_null(strstr(b, "\"path\": \"$.token\", \"kind\": \"value\", "
							  "\"production\": \"(masked)\""));
				assert_non_null(strstr(b, "\"path\": \"$.v\""));
				assert_non_null(strstr(b, "/next?token=************&p="));
			}
			free(b);
		}
		unlink(html);
		unlink(js);
		unlink(dl);
		rmdir(g.dir);
		stage_free(&g);
	}
}

/* Without a reference: no reference column, the heuristic's words, the JSON's nulls. */
static void test_outputs_no_reference(void **state)
{
	struct stage g;
	struct tconn t;
	struct st_compare_stats st;
	char html[128], js[128], *b;
	size_t len;
	struct st_json_doc d;

	stage_up(&g, false, 0);
	snprintf(g.dir, sizeof(g.dir), "/tmp/st-cmp-XXXXXX");
	assert_non_null(mkdtemp(g.dir));
	snprintf(html, sizeof(html), "%s/r.html", g.dir);
	snprintf(js, sizeof(js), "%s/r.json", g.dir);
	g.ccfg.report = html;
	g.ccfg.report_json = js;
	g.ccfg.diffs = "/dev/null";
	g.ccfg.diffs_max = 100; /* smaller than a line: each is counted, none written */
	stage_go(&g);
	t_open(g.sh, &t, 41013);
	for (int i = 0; i < 10; i++)
		t_sends(g.sh, &t, "GET /rand HTTP/1.1\r\nHost: x\r\n\r\nGET /diff HTTP/1.1\r\nHost: x\r\n\r\n");
	settle(&g, 20);
	t_close(g.sh, &t);
	stage_down(&g, &st);
	assert_int_equal(st.compared, 20);
	assert_int_equal(st.differing, 10);
	assert_int_equal(st.diffs_written, 0);
	assert_int_equal(st.diffs_dropped, 10);
	st_json_doc_init(&d, 0, 0);
	b = slurp(js, &len);
	assert_int_equal(st_json_parse(&d, b, len), 0);
	assert_non_null(strstr(b, "\"reference\": null"));
	assert_non_null(strstr(b, "\"basis\": \"heuristic\", \"likely_noise\": true"));
	assert_non_null(strstr(b, "\"path\": \"$.v\", \"kind\": \"value\", \"raw\": 10, \"noise\": 0, "
				  "\"verdict\": \"regression\""));
	assert_non_null(strstr(b, "\"basis\": \"production\", \"test\": \"mann-whitney-u\""));
	free(b);
	b = slurp(html, &len);
	assert_non_null(strstr(b, "likely noise"));
	assert_non_null(strstr(b, "(no reference)"));
	assert_null(strstr(b, "<th class=\"side-r\">"));
	free(b);
	st_json_doc_free(&d);
	unlink(html);
	unlink(js);
	rmdir(g.dir);
	stage_free(&g);
}

/* ---- noise arithmetic, latency, endpoints (no engine) -------------------------------------- */

static void test_thresholds(void **state)
{
	struct st_cmp_agg_config ac = { .reference = true };
	struct st_cmp_agg a;
	struct st_cmp_endpoint e = { .compared = 1000 };
	struct st_cmp_field f = { .raw = 100, .noise = 90 };
	struct st_cmp_fverdict v;

	assert_int_equal(st_cmp_agg_init(&a, &ac), 0);
	/* |100-90|/190 = 5.3% < 20%: noise */
	st_cmp_field_verdict(&a, &e, &f, &v);
	assert_false(v.regression);
	assert_true(v.rel > 5.2 && v.rel < 5.3);
	/* 100 against 10: 81.8% and 9%: regression */
	f.noise = 10;
	st_cmp_field_verdict(&a, &e, &f, &v);
	assert_true(v.regression);
	/* raw below noise is never a regression */
	f.raw = 10;
	f.noise = 100;
	st_cmp_field_verdict(&a, &e, &f, &v);
	assert_false(v.regression);
	/* the absolute threshold: 2 against 0 in 10000 pairs is 0.02% < 0.03% */
	e.compared = 10000;
	f.raw = 2;
	f.noise = 0;
	st_cmp_field_verdict(&a, &e, &f, &v);
	assert_false(v.regression);
	f.raw = 4;
	st_cmp_field_verdict(&a, &e, &f, &v);
	assert_true(v.regression);
	st_cmp_agg_free(&a);
	/* both thresholds are settable */
	ac.rel_pct = 60;
	ac.abs_pct = 1;
	assert_int_equal(st_cmp_agg_init(&a, &ac), 0);
	e.compared = 1000;
	f.raw = 100;
	f.noise = 30; /* 53.8%: below 60 */
	st_cmp_field_verdict(&a, &e, &f, &v);
	assert_false(v.regression);
	f.noise = 5;  /* 90.5% and 9.5% */
	st_cmp_field_verdict(&a, &e, &f, &v);
	assert_true(v.regression);
	st_cmp_agg_free(&a);
}

/* The aggregate in Prometheus (st_cmp_agg_prom): results, answers, regressions, the worst
 * fields, latency histograms in the exported buckets. */
static void test_prom(void **state)
{
	struct st_cmp_agg_config ac = { .reference = true };
	struct st_prom_labels base = { 0 };
	struct st_cmp_endpoint *e;
	struct st_cmp_field *f;
	struct st_cmp_agg a;
	struct st_prom *p = st_prom__new();
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	assert_int_equal(st_cmp_agg_init(&a, &ac), 0);
	e = st_cmp_agg_endpoint(&a, "GET /price");
	e->compared = 100;
	e->differing = 40;
	e->noise_only = 10;
	e->not_compared = 3;
	f = st_cmp_endpoint_field(e, "$.price", 0, "");
	f->raw = 40; /* no noise: a regression */
	f = st_cmp_endpoint_field(e, "$.ts", 0, "");
	f->raw = 50;
	f->noise = 50; /* noise */
	for (int i = 0; i < 100; i++) {
		st_cmp_lat_add(&e->lat[ST_CMP_PROD], 2000000);  /* 2 ms: le 0.0025 */
		st_cmp_lat_add(&e->lat[ST_CMP_REF], 2000000);
		st_cmp_lat_add(&e->lat[ST_CMP_CAND], 80000000); /* 80 ms: le 0.1 */
		st_cmp_status_add(&e->status[ST_CMP_PROD], 200, 1);
		st_cmp_status_add(&e->status[ST_CMP_CAND], i < 10 ? 500 : 200, 1);
	}
	st_prom_labels_add(&base, "job", "canary");
	st_cmp_agg_prom(&a, p, &base);
	out = open_memstream(&text, &len);
	assert_int_equal(st_prom__write(p, out), 0);
	fclose(out);
	assert_non_null(strstr(text, "shadowtap_compare_pairs_total{job=\"canary\",endpoint=\"GET /price\","
				     "result=\"identical\"} 50\n"));
	assert_non_null(strstr(text, "result=\"not_compared\"} 3\n"));
	assert_non_null(strstr(text, "shadowtap_compare_regressions{job=\"canary\",endpoint=\"GET /price\"} 1\n"));
	assert_non_null(strstr(text, "shadowtap_compare_latency_verdict{job=\"canary\",endpoint=\"GET /price\"} 1\n"));
	assert_non_null(strstr(text, "shadowtap_compare_field_regression_ratio{job=\"canary\",endpoint=\"GET "
				     "/price\",field=\"$.price\"} 0.4\n"));
	assert_null(strstr(text, "field=\"$.ts\""));
	assert_non_null(strstr(text, "shadowtap_compare_answers_total{job=\"canary\",endpoint=\"GET /price\","
				     "side=\"candidate\",code=\"500\"} 10\n"));
	assert_non_null(strstr(text, "shadowtap_compare_latency_seconds_bucket{job=\"canary\",endpoint=\"GET "
				     "/price\",side=\"candidate\",le=\"0.05\"} 0\n"));
	assert_non_null(strstr(text, "shadowtap_compare_latency_seconds_bucket{job=\"canary\",endpoint=\"GET "
				     "/price\",side=\"candidate\",le=\"0.1\"} 100\n"));
	assert_non_null(strstr(text, "shadowtap_compare_latency_seconds_bucket{job=\"canary\",endpoint=\"GET "
				     "/price\",side=\"reference\",le=\"0.0025\"} 100\n"));
	assert_non_null(strstr(text, "# TYPE shadowtap_compare_latency_seconds histogram\n"));
	free(text);
	st_prom__free(p);
	st_cmp_agg_free(&a);
}

static void test_classify(void **state)
{
	static struct st_cmp_diffs raw, noise;

	memset(&raw, 0, sizeof(raw));
	memset(&noise, 0, sizeof(noise));
	assert_int_equal(st_cmp_classify(&raw, &noise), ST_CMP_IDENTICAL);
	raw.n = 1;
	snprintf(raw.d[0].path, sizeof(raw.d[0].path), "$.id");
	raw.slot[0] = 0;
	/* st_cmp_diffs_find needs the slot table: build both lists through the real diff */
	{
		struct tmsgs {
			struct st_cmp_msg m;
		} a = { 0 }, b = { 0 }, r = { 0 };
		static const char pa[] = "{\"id\": 1, \"ts\": \"2026-11-26T10:00:00Z\"}";
		static const char pb[] = "{\"id\": 2, \"ts\": \"2026-11-26T10:00:01Z\"}";
		static const char pr[] = "{\"id\": 1, \"ts\": \"2026-11-26T10:00:02Z\"}";
		struct st_cmp_rules rules = { 0 };
		struct st_cmp_view va, vb, vr;
		struct st_cmp_scratch sc = { 0 };
		const struct { struct tmsgs *m; const char *s; } all[] = { { &a, pa }, { &b, pb }, { &r, pr } };

		for (int i = 0; i < 3; i++) {
			all[i].m->m.status = 200;
			all[i].m->m.has_body = true;
			all[i].m->m.hdrs = "";
			all[i].m->m.body = (const uint8_t *)all[i].s;
			all[i].m->m.body_len = all[i].m->m.body_total = strlen(all[i].s);
			all[i].m->m.rest_hash = st_cmp_hash_init();
		}
		st_cmp_view_init(&va);
		st_cmp_view_init(&vb);
		st_cmp_view_init(&vr);
		st_cmp_view_load(&va, &rules, &a.m);
		st_cmp_view_load(&vb, &rules, &b.m);
		st_cmp_view_load(&vr, &rules, &r.m);
		st_cmp_diff(&rules, &sc, &va, &vb, &raw);
		st_cmp_diff(&rules, &sc, &va, &vr, &noise);
		/* $.ts differs in the reference too, $.id does not: differing */
		assert_int_equal(st_cmp_classify(&raw, &noise), ST_CMP_DIFFERING);
		/* without a reference: $.id is not volatile-looking: differing */
		assert_int_equal(st_cmp_classify(&raw, NULL), ST_CMP_DIFFERING);
		st_cmp_diff(&rules, &sc, &va, &vr, &raw); /* only $.ts */
		assert_int_equal(st_cmp_classify(&raw, &noise), ST_CMP_NOISE_ONLY);
		assert_int_equal(st_cmp_classify(&raw, NULL), ST_CMP_NOISE_ONLY);
		st_cmp_view_free(&va);
		st_cmp_view_free(&vb);
		st_cmp_view_free(&vr);
		st_cmp_scratch_free(&sc);
	}
}

static void test_latency(void **state)
{
	static struct st_cmp_lat a, b;
	struct st_cmp_lat_test t;
	unsigned seed = 1;

	/* the same distribution: same */
	for (int i = 0; i < 200; i++) {
		st_cmp_lat_add(&a, 300000 + (uint64_t)(rand_r(&seed) % 200000));
		st_cmp_lat_add(&b, 300000 + (uint64_t)(rand_r(&seed) % 200000));
	}
	st_cmp_lat_compare(&a, &b, 1.0, &t);
	assert_true(t.enough);
	assert_int_equal(t.verdict, ST_CMP_LAT_SAME);
	assert_true(t.p > 0.001);
	/* percentiles within a bucket's width (3%) */
	assert_true(st_cmp_lat_pct(&a, 0.5) > 0.38 && st_cmp_lat_pct(&a, 0.5) < 0.42);
	/* 60 ms more: slower, surely */
	memset(&a, 0, sizeof(a));
	for (int i = 0; i < 30; i++)
		st_cmp_lat_add(&a, 60000000 + (uint64_t)(rand_r(&seed) % 200000));
	st_cmp_lat_compare(&a, &b, 1.0, &t);
	assert_int_equal(t.verdict, ST_CMP_LAT_SLOWER);
	assert_true(t.p < 1e-6);
	assert_true(t.a > 0.99);
	assert_true(t.shift > 57 && t.shift < 63);
	st_cmp_lat_compare(&b, &a, 1.0, &t);
	assert_int_equal(t.verdict, ST_CMP_LAT_FASTER);
	/* significant but tiny (0.1 ms on 0.4 ms): under the 1 ms floor, same */
	memset(&a, 0, sizeof(a));
	for (int i = 0; i < 200; i++)
		st_cmp_lat_add(&a, 500000 + (uint64_t)(rand_r(&seed) % 200000));
	st_cmp_lat_compare(&a, &b, 1.0, &t);
	assert_true(t.p < 0.001);
	assert_int_equal(t.verdict, ST_CMP_LAT_SAME);
	st_cmp_lat_compare(&a, &b, 0.05, &t);
	assert_int_equal(t.verdict, ST_CMP_LAT_SLOWER);
	/* the same but for 3 slow outliers in 20: a tail, not a shift */
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (int i = 0; i < 20; i++) {
		st_cmp_lat_add(&a, i < 3 ? 60000000 : 300000 + (uint64_t)(rand_r(&seed) % 200000));
		st_cmp_lat_add(&b, 300000 + (uint64_t)(rand_r(&seed) % 200000));
	}
	st_cmp_lat_compare(&a, &b, 1.0, &t);
	assert_int_equal(t.verdict, ST_CMP_LAT_SAME);
	assert_true(t.shift < 0.3);
	/* too few samples: no verdict */
	memset(&a, 0, sizeof(a));
	for (int i = 0; i < 5; i++)
		st_cmp_lat_add(&a, 90000000);
	st_cmp_lat_compare(&a, &b, 1.0, &t);
	assert_false(t.enough);
	assert_int_equal(t.verdict, ST_CMP_LAT_SAME);
}

static void name(const struct st_cmp_pattern *p, unsigned np, const char *m, const char *t,
		 const char *want)
{
	char out[ST_CMP_ENDPOINT_MAX];

	st_cmp_endpoint(p, np, m, strlen(m), t, strlen(t), out, sizeof(out));
	if (strcmp(out, want)) {
		print_error("%s %s -> %s, want %s\n", m, t, out, want);
		fail();
	}
}

static void test_endpoints(void **state)
{
	struct st_cmp_pattern p[3];
	char longp[600];

	name(NULL, 0, "GET", "/users/123/orders/0b1c6f4e-2d3a-4b5c-8d9e-0f1a2b3c4d5e",
	     "GET /users/{id}/orders/{id}");
	name(NULL, 0, "GET", "/obj/5f3a9c2e7b1d4f6a9988aabb/v2", "GET /obj/{id}/v2");
	name(NULL, 0, "GET", "/search?q=shoes&page=2&q=x&sort", "GET /search?q&page&sort");
	name(NULL, 0, "GET", "http://example.com/a/1?b=2", "GET /a/{id}?b");
	name(NULL, 0, "OPTIONS", "*", "OPTIONS *");
	name(NULL, 0, "GET", "/", "GET /");
	name(NULL, 0, "GET", "/a b\x01", "GET /a?b?");
	/* long paths are cut, never overflow */
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	{
		char out[ST_CMP_ENDPOINT_MAX];

		st_cmp_endpoint(NULL, 0, "GET", 3, longp, strlen(longp), out, sizeof(out));
		assert_true(strlen(out) < ST_CMP_ENDPOINT_MAX);
	}
	/* patterns first, in order */
	assert_int_equal(st_cmp_pattern_parse("GET /users/{id}/profile", &p[0]), 0);
	assert_int_equal(st_cmp_pattern_parse("* /static/*", &p[1]), 0);
	assert_int_equal(st_cmp_pattern_parse("POST /users/{name}", &p[2]), 0);
	name(p, 3, "GET", "/users/alice/profile?x=1", "GET /users/{id}/profile");
	name(p, 3, "HEAD", "/static/css/a.css", "* /static/*");
	name(p, 3, "POST", "/users/bob", "POST /users/{name}");
	name(p, 3, "GET", "/users/bob", "GET /users/bob");
	assert_int_equal(st_cmp_pattern_parse("GET users", &p[0]), -1);
	assert_int_equal(st_cmp_pattern_parse("get /x", &p[0]), -1);
	/* the cap on distinct endpoints: the rest are "other" */
	{
		struct st_cmp_agg_config ac = { .max_endpoints = 3 };
		struct st_cmp_agg a;

		assert_int_equal(st_cmp_agg_init(&a, &ac), 0);
		for (int i = 0; i < 50; i++) {
			char n[32];

			snprintf(n, sizeof(n), "GET /p%d", i);
			st_cmp_agg_endpoint(&a, n)->compared++;
		}
		assert_int_equal(a.n, 3);
		assert_int_equal(a.other.compared, 47);
		st_cmp_agg_free(&a);
	}
}

int main(void)
{
	th_clock_ns = 1700000000000000000ull;
	th_step_ns = 100000; /* 0.1 ms apart: latencies of a few ms are measurable */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_continue_head_close),
		cmocka_unit_test(test_keepalive_resend),
		cmocka_unit_test(test_release_framed),
		cmocka_unit_test(test_noise_with_reference),
		cmocka_unit_test(test_noise_heuristic),
		cmocka_unit_test(test_not_compared),
		cmocka_unit_test(test_memory_cap),
		cmocka_unit_test(test_worker_thread),
		cmocka_unit_test(test_outputs),
		cmocka_unit_test(test_outputs_redacted),
		cmocka_unit_test(test_worker_idle),
		cmocka_unit_test(test_outputs_no_reference),
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_latency),
		cmocka_unit_test(test_prom),
		cmocka_unit_test(test_endpoints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
