/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shadow side of the engine (shadow_int.h): one sconn per connection to a
 * shadow target. Queues hold absolute stream offsets: acked <= sent <= commit
 * <= end; the captured side appends whole released requests and commits them,
 * this side writes them without ever blocking, reads and frames the shadow's
 * responses, and closes or retries as the shadow behaves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "shadow_int.h"

#define IOV_MAX_SEND 64
#define EVENTS_MAX 256
#define CONNECT_TIMEOUT_NS (5000ull * 1000000)
#define OWN_LINGER_NS (60ull * 1000000000)
#define PER_CONN_WAIT_NS (1000ull * 1000000)
#define READ_POKE_NS (1000ull * 1000000)    /* answers due, nothing read: read anyway */

/* ---- own endpoints: the agent's shadow sockets, never fed back ------------------------ */

static size_t own_slot(const struct own_ent *tab, size_t cap, const struct st_addr *a,
		       uint16_t port)
{
	uint64_t h = ((uint64_t)a->a[0] << 16 ^ a->a[3] ^ port) * 0x9e3779b97f4a7c15ull;
	size_t i = (size_t)(h >> 40) & (cap - 1);

	while (tab[i].used && (tab[i].port != port || tab[i].a.family != a->family ||
			       memcmp(tab[i].a.a, a->a, sizeof(a->a))))
		i = (i + 1) & (cap - 1);
	return i;
}

static int own_rebuild(struct st_shadow *sh, size_t cap, uint64_t now)
{
	struct own_ent *n = calloc(cap, sizeof(*n));
	size_t i, k = 0;

	if (!n)
		return -ENOMEM;
	for (i = 0; i < sh->own_cap; i++) {
		struct own_ent *e = &sh->own[i];

		if (!e->used || (e->expire && e->expire <= now))
			continue;
		n[own_slot(n, cap, &e->a, e->port)] = *e;
		k++;
	}
	free(sh->own);
	sh->own = n;
	sh->own_cap = cap;
	sh->own_n = k;
	return 0;
}

static void own_add(struct st_shadow *sh, const struct st_addr *a, uint16_t port)
{
	size_t i;

	if ((sh->own_n + 1) * 2 > sh->own_cap &&
	    own_rebuild(sh, sh->own_cap ? sh->own_cap * 2 : 256, sh_now(sh)))
		return;
	i = own_slot(sh->own, sh->own_cap, a, port);
	if (!sh->own[i].used)
		sh->own_n++;
	sh->own[i] = (struct own_ent){ .a = *a, .port = port, .used = 1 };
}

static void own_release(struct st_shadow *sh, const struct st_addr *a, uint16_t port)
{
	size_t i;

	if (!sh->own_cap || !port)
		return;
	i = own_slot(sh->own, sh->own_cap, a, port);
	/* Late segments (FIN, TIME_WAIT ACKs) of the socket may still come through the tap. */
	if (sh->own[i].used)
		sh->own[i].expire = sh_now(sh) + OWN_LINGER_NS;
}

bool sh_own_has(const struct st_shadow *sh, const struct st_addr *a, uint16_t port)
{
	struct st_addr k = { .family = a->family };
	size_t i;

	if (!sh->own_n)
		return false;
	memcpy(k.a, a->a, sizeof(k.a));
	i = own_slot(sh->own, sh->own_cap, &k, port);
	return sh->own[i].used;
}

void sh_own_gc(struct st_shadow *sh, uint64_t now)
{
	if (sh->own_cap)
		own_rebuild(sh, sh->own_cap, now);
}

static void sockaddr_to(const struct sockaddr_storage *ss, struct st_addr *a, uint16_t *port)
{
	memset(a, 0, sizeof(*a));
	*port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		a->family = 4;
		a->a[0] = s4->sin_addr.s_addr;
		*port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		a->family = 6;
		memcpy(a->a, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
	}
}

/* ---- accounting ------------------------------------------------------------------------- */

bool sc_fits(const struct sconn *sc, uint64_t cost)
{
	const struct st_shadow *sh = sc->sh;

	return sc_mem(sc) + cost <= sh->cfg.conn_queue_max && sh->queued + cost <= sh->cfg.max_queue;
}

void sc_acct(struct sconn *sc, uint64_t old)
{
	struct st_shadow *sh = sc->sh;
	uint64_t now = sc_mem(sc);
	bool cong = now > sh->cfg.conn_queue_max / 2;

	sh->queued = sh->queued - old + now;
	if (sh->queued > sh->st.queued_peak)
		sh->st.queued_peak = sh->queued;
	if (cong != sc->congested) {
		sc->congested = cong;
		if (cong)
			sh->n_congested++;
		else
			sh->n_congested--;
	}
}

/* A connect to target t failed (why: its reason, in words): it backs off, and is down until
 * one succeeds. */
static void target_failed(struct st_shadow *sh, unsigned t, const char *why)
{
	struct target_state *ts = &sh->ts[t];
	unsigned shift = ts->fails < 16 ? ts->fails : 16;
	uint64_t b = ST_SHADOW_BACKOFF_MIN_NS << shift;

	if (b > ST_SHADOW_BACKOFF_MAX_NS)
		b = ST_SHADOW_BACKOFF_MAX_NS;
	ts->fails++;
	ts->retry_at = sh_now(sh) + b;
	if (ts->down)
		return;
	ts->down = true;
	ts->downs++;
	ts->down_ns = sh_now(sh);
	ts->dropped_at_down = ts->dropped_down;
	sh->st.target_downs++;
	/* never silent, never a flood: the first fall is a warning, the next ones -v lines */
	st_log(ts->said_down ? ST_LOG_INFO : ST_LOG_WARN,
	       "shadow target %s: %s: its requests are dropped (dropped_down) until it answers "
	       "again%s", sh->cfg.targets[t].name, why,
	       ts->said_down ? "" : " (said once: target_downs counts each time)");
	ts->said_down = true;
}

/* A connect to target t succeeded: it is up (again). */
static void target_ok(struct st_shadow *sh, unsigned t)
{
	struct target_state *ts = &sh->ts[t];

	ts->fails = 0;
	ts->retry_at = 0;
	if (!ts->down)
		return;
	ts->down = false;
	st_log(ts->said_up ? ST_LOG_INFO : ST_LOG_WARN,
	       "shadow target %s: answers again after %.1f s; %llu requests were dropped meanwhile",
	       sh->cfg.targets[t].name, (double)(sh_now(sh) - ts->down_ns) / 1e9,
	       (unsigned long long)(ts->dropped_down - ts->dropped_at_down));
	ts->said_up = true;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

void sc_detach(struct sconn *sc)
{
	if (sc->cc) {
		struct sconn **slotp = st_shadow_cc_slot(sc->cc, sc->slot);

		if (*slotp == sc)
			*slotp = NULL;
		sc->cc = NULL;
	}
}

void sc_close(struct sconn *sc, bool error)
{
	struct st_shadow *sh = sc->sh;
	uint64_t lost = sc->req_n - sc->req_nsent - sc->early; /* the early one was answered */
	uint64_t old;

	if (sc->state == SC_DEAD)
		return;
	if (error)
		sh->st.errors++;
	sh_dropped_down(sh, sc->target, lost);
	sh->st.unanswered += sc->req_nsent; /* written whole, no answer before the close */
	for (uint32_t i = 0; i < sc->req_n; i++) {
		struct reqent *re = &sc->req[(sc->req_head + i) % sc->req_cap];

		if (re->pair)
			st_compare__pair_release(re->pair, sc_side(sc->target),
						 i < sc->req_nsent ? ST_CMP_R_SHADOW_UNANSWERED :
								     ST_CMP_R_SHADOW_DROPPED);
		re->pair = NULL;
	}
	sc->cur_pair = NULL;
	if (sc->h2)
		sc_h2_close(sc); /* its streams, counted the same way (their memory let go) */
	old = sc_mem(sc);
	sc_detach(sc);
	if (sc->fd >= 0) {
		epoll_ctl(sh->epfd, EPOLL_CTL_DEL, sc->fd, NULL);
		close(sc->fd);
		sc->fd = -1;
		own_release(sh, &sc->laddr, sc->lport);
	}
	st_bq_free(&sc->q);
	sc_acct(sc, old);
	sc->state = SC_DEAD;
	sc->req_n = sc->req_nsent = sc->req_npushed = 0;
	sc->early = false;
	sh->n_live--;
	st_list_move_tail(&sc->node, &sh->dead);
}

void sh_close_all(struct st_shadow *sh)
{
	while (!st_list_empty(&sh->live))
		sc_close(st_list_first_entry(&sh->live, struct sconn, node), false);
}

/* Frees closed connections, except those the dirty or read lists still point to. */
void sh_free_dead(struct st_shadow *sh)
{
	struct sconn *sc, *tmp;

	st_list_for_each_entry_safe(sc, tmp, &sh->dead, node) {
		if (st_list_linked(&sc->dirty) || st_list_linked(&sc->rd))
			continue;
		st_list_del_init(&sc->node);
		st_http__free(&sc->resp);
		sc_h2_free(sc);
		free(sc->req);
		free(sc);
	}
}

/*
 * Requests are written in batches: a whole ring buffer batch (or pcap feed)
 * commits them, then one kick writes each connection's new requests with one
 * sendmsg, however many there are (under load, dozens per connection).
 */
void sc_mark(struct sconn *sc)
{
	if (!st_list_linked(&sc->dirty))
		st_list_add_tail(&sc->dirty, &sc->sh->dirty);
}

static void sc_flush(struct sconn *sc);

void sh_kick(struct st_shadow *sh)
{
	while (!st_list_empty(&sh->dirty)) {
		struct sconn *sc = st_list_first_entry(&sh->dirty, struct sconn, dirty);

		st_list_del_init(&sc->dirty);
		if (sc->state != SC_DEAD)
			sc_flush(sc);
	}
}

struct sconn *sc_new(struct st_shadow *sh, struct cconn *cc, unsigned slot, enum sc_kind kind)
{
	unsigned t = slot / sh->cfg.multiply;
	const struct st_shadow_target *tg = &sh->cfg.targets[t];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint64_t now = sh_now(sh);
	struct sconn *sc;
	int one = 1, fd, r;

	if (sh->ts[t].retry_at > now)
		return NULL; /* backing off: the caller drops the request */
	fd = socket(tg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		sh->st.errors++;
		return NULL;
	}
	/* Whole requests go out in one write: Nagle would only add latency. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* tap compare: answers are timed by when the kernel received them, not by when the
	 * agent got around to reading them */
	if (sh->cfg.compare)
		setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	sh->st.connects++;
	if (sh->ts[t].fails)
		sh->st.reconnects++;
	r = connect(fd, (const struct sockaddr *)&tg->addr, tg->addrlen);
	if (r && errno != EINPROGRESS) {
		int err = errno;

		sh->st.errors++;
		target_failed(sh, t, strerror(err));
		close(fd);
		return NULL;
	}
	sc = calloc(1, sizeof(*sc));
	if (!sc) {
		close(fd);
		return NULL;
	}
	sc->sh = sh;
	sc->cc = cc;
	sc->slot = slot;
	sc->target = t;
	sc->fd = fd;
	sc->raw = kind == SK_RAW;
	/* HTTP/1 keeps each request until answered; HTTP/2's session keeps its streams */
	sc->retain = kind == SK_HTTP1;
	sc->state = r ? SC_CONNECTING : SC_UP;
	sc->progress_ns = now;
	sc->conn_id = cc ? st_shadow_cc_id(cc) : 0;
	st_list_init(&sc->node);
	st_list_init(&sc->dirty);
	st_list_init(&sc->rd);
	st_http__init(&sc->resp, ST_HTTP_RESPONSE, NULL);
	if (kind == SK_H2 && sc_h2_init(sc)) {
		sh->st.errors++;
		st_http__free(&sc->resp);
		close(fd);
		free(sc);
		return NULL;
	}
	if (!getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		sockaddr_to(&ss, &sc->laddr, &sc->lport);
		own_add(sh, &sc->laddr, sc->lport);
	}
	ev.data.ptr = sc;
	if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		sh->st.errors++;
		own_release(sh, &sc->laddr, sc->lport);
		close(fd);
		st_http__free(&sc->resp);
		st_bq_free(&sc->q);
		sc_h2_free(sc);
		free(sc);
		return NULL;
	}
	st_list_add_tail(&sc->node, &sh->live);
	sh->n_live++;
	if (kind == SK_H2)
		sh->st.h2_shadow_conns++;
	if (sc->state == SC_UP)
		target_ok(sh, t);
	return sc;
}

/* ---- requests on a shadow connection ---------------------------------------------------- */

static struct reqent *req_at(struct sconn *sc, uint32_t i)
{
	return &sc->req[(sc->req_head + i) % sc->req_cap];
}

int sc_req_push(struct sconn *sc, uint64_t end, enum st_http_method m, bool ka,
		struct st_cmp_pair *pair)
{
	if (sc->req_n == sc->req_cap) {
		uint32_t ncap = sc->req_cap ? sc->req_cap * 2 : 8, i;
		struct reqent *n = malloc(ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (i = 0; i < sc->req_n; i++)
			n[i] = *req_at(sc, i);
		free(sc->req);
		sc->req = n;
		sc->req_cap = ncap;
		sc->req_head = 0;
	}
	sc->req[(sc->req_head + sc->req_n) % sc->req_cap] = (struct reqent){ end, (uint8_t)m, ka, pair };
	sc->req_n++;
	if (pair)
		st_compare__pair_get(pair);
	return 0;
}

/* The oldest request leaves the ring: answered, or (why) no answer will be read for it. */
static void req_pop(struct sconn *sc, enum st_cmp_reason why)
{
	struct reqent *re = req_at(sc, 0);

	if (re->pair) {
		if (sc->cur_pair == re->pair)
			sc->cur_pair = NULL;
		st_compare__pair_release(re->pair, sc_side(sc->target), why);
		re->pair = NULL;
	}
	sc->req_head = (sc->req_head + 1) % sc->req_cap;
	sc->req_n--;
	sc->early = false;
	if (sc->req_nsent)
		sc->req_nsent--;
	if (sc->req_npushed)
		sc->req_npushed--;
}

static void sc_finish(struct sconn *sc);

/* A final answer now is the oldest request's: it has bytes on the wire and no answer yet
 * (HTTP/1 answers in order, and a server may answer before it read the whole request). */
static bool answer_due(const struct sconn *sc)
{
	return sc->retain && sc->req_n && !sc->early && sc->q.sent > sc->q.acked;
}

/* The oldest request was answered: it leaves the ring, or, still being written, once it is
 * written whole (its bytes are still to go: the server reads or discards them). */
static void req_answered(struct sconn *sc)
{
	uint64_t old = sc_mem(sc);

	if (!sc->req_nsent) {
		sc->early = true;
		return;
	}
	st_bq_release(&sc->q, req_at(sc, 0)->end);
	req_pop(sc, ST_CMP_R_SHADOW_UNANSWERED);
	sc_acct(sc, old);
	sc_push_methods(sc);
	if (!sc->cc && !sc->req_n)
		sc_finish(sc); /* the last answer: now our FIN */
}

/*
 * The response parser needs each request's method (HEAD has no body) but holds
 * only ST_HTTP_METHOD_QUEUE of them; requests can run further ahead than that.
 */
void sc_push_methods(struct sconn *sc)
{
	while (sc->retain && sc->req_npushed < sc->req_n &&
	       !st_http__push_method(&sc->resp, req_at(sc, sc->req_npushed)->method))
		sc->req_npushed++;
}

void sc_noretain(struct sconn *sc)
{
	uint64_t old = sc_mem(sc);

	sc->retain = false;
	while (sc->req_nsent)
		req_pop(sc, ST_CMP_R_UPGRADE);
	st_bq_release(&sc->q, sc->q.sent);
	sc_acct(sc, old);
}

/* Writes what is committed (HTTP/2: what the session serialises, as the socket takes it);
 * never blocks. */
static void sc_flush(struct sconn *sc)
{
	struct st_shadow *sh = sc->sh;
	uint64_t old = sc_mem(sc);

	for (;;) {
		struct iovec iov[IOV_MAX_SEND];
		struct msghdr mh = { .msg_iov = iov };
		uint64_t lim, per = sh->ts[sc->target].per_conn, t0 = 0;
		ssize_t n;

		if (sc->h2 && sc->state == SC_UP && !sc->shut && sc_h2_pump(sc)) {
			sc_acct(sc, old);
			sc_close(sc, true);
			return;
		}
		if (sc->state != SC_UP || sc->q.sent >= sc->q.commit)
			break;
		lim = sc->q.commit;
		if (sc->retain && per) {
			/* what the target would not process on this connection stays queued: it goes
			 * to the next connection when this one closes */
			if (sc->written >= per)
				break;
			if (sc->req_n - sc->req_nsent > per - sc->written)
				lim = req_at(sc, sc->req_nsent + (uint32_t)(per - sc->written) - 1)->end;
		}
		mh.msg_iovlen = (size_t)st_bq_iov(&sc->q, sc->q.sent, lim, iov, IOV_MAX_SEND);
		if (sh->cfg.compare)
			t0 = st_realtime_ns(); /* on loopback the server may run inside the call */
		n = sendmsg(sc->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			sc_acct(sc, old);
			sc_close(sc, true);
			return;
		}
		sc->q.sent += (uint64_t)n;
		sh->st.bytes += (uint64_t)n;
		sc->progress_ns = sh_now(sh);
		while (sc->req_nsent < sc->req_n && req_at(sc, sc->req_nsent)->end <= sc->q.sent) {
			struct reqent *re = req_at(sc, sc->req_nsent);

			if (re->pair) /* written whole: the shadow's latency starts here */
				st_compare__pair_sent(re->pair, sc_side(sc->target), t0);
			sc->req_nsent++;
			sc->written++;
			sh->st.replayed++;
		}
		if (sc->h2)
			sc_h2_written(sc, t0);
		if (sc->early && sc->req_nsent) {
			st_bq_release(&sc->q, req_at(sc, 0)->end);
			req_pop(sc, ST_CMP_R_SHADOW_UNANSWERED);
			sc_push_methods(sc);
		}
		if (!sc->retain) {
			while (sc->req_nsent)
				req_pop(sc, ST_CMP_R_SHADOW_UNANSWERED);
			st_bq_release(&sc->q, sc->q.sent);
		}
	}
	sc_acct(sc, old);
	if (!sc->cc && sc->state == SC_UP)
		sc_finish(sc);
}

/*
 * A detached connection: once everything is written (and, when responses are
 * framed, answered), send our FIN and linger for the close. Not before the
 * answers: a server may abort a request in progress when its client half-closes.
 */
static void sc_finish(struct sconn *sc)
{
	if (sc->state != SC_UP || sc->shut || sc->q.sent < sc->q.end ||
	    (sc->retain && sc->req_n) || (sc->h2 && sc_h2_open(sc)))
		return;
	if (!sc->q.sent) {
		sc_close(sc, false); /* nothing was ever sent: nothing to wait for */
		return;
	}
	shutdown(sc->fd, SHUT_WR);
	sc->shut = true;
	sc->linger_until = sh_now(sc->sh) + ST_SHADOW_LINGER_NS;
}

void sc_release(struct sconn *sc)
{
	sc_detach(sc);
	if (sc->state == SC_UP)
		sc_finish(sc);
}

/* ---- the shadow's responses ------------------------------------------------------------- */

/* The shadow answered something that does not frame as HTTP: it is broken or hostile.
 * Reading on would cost the agent (a flood of garbage) and could never pair again. */
void sc_bad_response(struct sconn *sc)
{
	sc->sh->st.bad_responses++;
	target_failed(sc->sh, sc->target, "its answer was not HTTP");
	sc_close(sc, true);
}

/* Returns false when sc was closed. */
static bool resp_feed(struct sconn *sc, const uint8_t *buf, size_t len)
{
	struct st_shadow *sh = sc->sh;
	struct st_http_event ev;
	bool due;

	for (;;) {
		size_t n = st_http__feed(&sc->resp, buf, len, &ev);
		const uint8_t *p = buf;

		buf += n;
		len -= n;
		switch (ev.type) {
		case ST_HTTP_EV_NEED_MORE:
			return true;
		case ST_HTTP_EV_HEAD:
			/* tap compare: a final answer to the oldest request written whole */
			sc->cur_pair = NULL;
			if (!(ev.head->flags & ST_HTTP_HF_INTERIM) && answer_due(sc) &&
			    req_at(sc, 0)->pair) {
				sc->cur_pair = req_at(sc, 0)->pair;
				st_compare__pair_head(sc->cur_pair, sc_side(sc->target), ev.head,
						      sc->rx_ns);
			}
			break;
		case ST_HTTP_EV_BODY:
			if (sc->cur_pair && ev.data_len)
				st_compare__pair_body(sc->cur_pair, sc_side(sc->target), p, n);
			break;
		case ST_HTTP_EV_MSG_DONE:
			if (ev.head->flags & ST_HTTP_HF_INTERIM)
				break;
			if (sc->cur_pair) {
				st_compare__pair_done(sc->cur_pair, sc_side(sc->target));
				sc->cur_pair = NULL;
			}
			sh->st.responses++;
			switch (ev.head->status / 100) {
			case 2: sh->st.responses_2xx++; break;
			case 3: sh->st.responses_3xx++; break;
			case 4: sh->st.responses_4xx++; break;
			case 5: sh->st.responses_5xx++; break;
			default: break;
			}
			if (sh->cfg.on_response) {
				struct st_shadow_resp r = {
					.conn_id = sc->conn_id, .slot = sc->slot,
					.req_seq = sc->resp_seq, .head = ev.head,
					.body_len = ev.body_len,
				};

				sh->cfg.on_response(sh->cfg.ctx, &r);
			}
			sc->resp_seq++;
			sc->answered++;
			sc->answer_ns = sh_now(sh);
			if (!(ev.head->flags & ST_HTTP_HF_KEEP_ALIVE))
				sc->server_done = true;
			due = answer_due(sc);
			if (!(ev.head->flags & ST_HTTP_HF_KEEP_ALIVE) && due &&
			    req_at(sc, 0)->keep_alive) {
				/* the target closes after this many requests, though the request did not
				 * ask for it: send no more than that per connection */
				struct target_state *ts = &sh->ts[sc->target];

				if (!ts->per_conn || sc->answered < ts->per_conn)
					ts->per_conn = sc->answered;
			}
			if (due)
				req_answered(sc);
			break;
		case ST_HTTP_EV_UPGRADED:
			/* a tunnel (the request asked for it): bytes are counted only from now */
			sc->resp_tunnel = true;
			sc_noretain(sc);
			return true;
		case ST_HTTP_EV_ERROR:
			sc_bad_response(sc);
			return false;
		default:
			break;
		}
		if (sc->state == SC_DEAD)
			return false;
	}
}

/*
 * The shadow closed with requests unanswered after saying, in a response,
 * Connection: close: it closes after N requests per connection (nginx's
 * keepalive_requests), and what followed that response it never processed.
 * Those go again, on a new connection. Without that word from the server a
 * request may have run (a crash, a reset mid-response): it is not sent again
 * (counted unanswered), so a shadow never sees a request twice.
 */
static void sc_requeue(struct sconn *sc)
{
	struct st_shadow *sh = sc->sh;
	uint64_t old_sc = st_bq_mem(&sc->q), old_n;
	struct sconn *n;

	if (!sc->retain || !sc->server_done)
		return;
	if (sc->early) {
		/* answered before it was written whole: what is left of it never goes out */
		sc->q.sent = req_at(sc, 0)->end;
		st_bq_release(&sc->q, sc->q.sent);
		req_pop(sc, ST_CMP_R_SHADOW_UNANSWERED);
	}
	if (!sc->req_n)
		return;
	n = sc_new(sh, sc->cc, sc->slot, false);
	if (!n)
		return; /* sc_close counts them */
	/*
	 * The queue moves as it is, offsets included: on the new connection nothing is
	 * sent yet, so sent goes back to acked (the first unanswered byte).
	 */
	old_n = st_bq_mem(&n->q);
	n->q = sc->q;
	n->q.sent = n->q.acked;
	memset(&sc->q, 0, sizeof(sc->q));
	n->req = sc->req;
	n->req_cap = sc->req_cap;
	n->req_head = sc->req_head;
	n->req_n = sc->req_n;
	sc->req = NULL;
	sc->req_cap = sc->req_head = 0;
	n->last_sent = sc->last_sent;
	n->conn_id = sc->conn_id;
	sc->cur_pair = NULL;
	for (uint32_t i = 0; i < n->req_n; i++) {
		struct reqent *re = req_at(n, i);

		if (re->pair) /* what came of an answer on the old connection is gone */
			st_compare__pair_reset(re->pair, sc_side(n->target));
	}
	sh->st.replayed -= sc->req_nsent; /* counted again when written again */
	sh->st.resent += sc->req_nsent;
	sc->req_n = sc->req_nsent = sc->req_npushed = 0;
	sc_acct(sc, old_sc);
	sc_acct(n, old_n);
	sc_push_methods(n);
	if (sc->cc) {
		*st_shadow_cc_slot(sc->cc, sc->slot) = n;
		sc->cc = NULL;
	}
	if (n->state == SC_UP)
		sc_flush(n);
}

/* recv, and when the bytes arrived: the kernel's stamp of the last segment read
 * (SO_TIMESTAMPNS), or now. */
static ssize_t recv_stamped(struct sconn *sc, void *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n = recvmsg(sc->fd, &mh, MSG_DONTWAIT);
	struct cmsghdr *cm;

	if (n <= 0)
		return n;
	sc->rx_ns = 0;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			sc->rx_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		}
	if (!sc->rx_ns)
		sc->rx_ns = st_realtime_ns();
	return n;
}

static void read_later(struct sconn *sc)
{
	if (!st_list_linked(&sc->rd))
		st_list_add_tail(&sc->rd, &sc->sh->rd_pending);
}

/*
 * Reads what the shadow sent, up to the read budget. Bodies whose length the
 * framer knows are discarded in the kernel (MSG_TRUNC: no copy), so a large
 * answer costs little. hup: the event said the peer closed.
 */
static void sc_read(struct sconn *sc, bool hup)
{
	struct st_shadow *sh = sc->sh;
	uint64_t budget = ST_SH_READ_BUDGET;
	bool read_any = false, poked = sc->poked;

	sc->poked = false;

	while (budget) {
		uint64_t skip = sc->raw || sc->resp_tunnel ? budget :
				sc->h2 ? 0 : st_http__body_left(&sc->resp);

		/* tap compare reads the bodies it compares (up to its cap it keeps them, the rest
		 * it hashes) */
		if (skip && sc->cur_pair && !sc->raw && !sc->resp_tunnel &&
		    st_compare__pair_wants(sc->cur_pair, sc_side(sc->target)))
			skip = 0;
		size_t want = ST_SH_READ_BUF < budget ? ST_SH_READ_BUF : (size_t)budget;
		ssize_t n;

		if (skip) {
			want = skip < budget ? (size_t)skip : (size_t)budget;
			n = recv(sc->fd, NULL, want, MSG_DONTWAIT | MSG_TRUNC);
		} else if (sh->cfg.compare) {
			n = recv_stamped(sc, sh->rbuf, want);
		} else {
			n = recv(sc->fd, sh->rbuf, want, MSG_DONTWAIT);
		}
		if (n > 0) {
			if (!read_any) { /* one clock read per turn: the linger timer's progress */
				sc->read_ns = sh_now(sh);
				read_any = true;
				if (poked)
					sh->st.missed_reads++;
			}
			sh->st.resp_bytes += (uint64_t)n;
			budget -= (uint64_t)n;
			if (skip) {
				/* the skipped bytes may end a response: its MSG_DONE comes from a feed */
				if (!sc->raw && !sc->resp_tunnel && !st_http__skip(&sc->resp, (uint64_t)n) &&
				    !resp_feed(sc, NULL, 0))
					return; /* closed */
			} else if (sc->h2 ? !sc_h2_recv(sc, sh->rbuf, (size_t)n) :
					    !resp_feed(sc, sh->rbuf, (size_t)n)) {
				return; /* closed */
			}
			/* edge-triggered: a short read emptied the socket; the next bytes bring a
			 * new edge. Saves the EAGAIN call per response. */
			if ((size_t)n < want && !hup)
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF: the shadow closed (after our FIN, or on its own); else an error */
		/* a server closing with our requests unread resets instead of a FIN */
		if (n == 0 || errno == ECONNRESET)
			sc_requeue(sc);
		sc_close(sc, n < 0);
		return;
	}
	read_later(sc); /* the budget ran out: the rest waits for the next turn */
}

static void sc_event(struct sconn *sc, uint32_t events)
{
	if (sc->state == SC_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(sc->fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err || (events & (EPOLLERR | EPOLLHUP))) {
			target_failed(sc->sh, sc->target, strerror(err ? err : ECONNREFUSED));
			sc_close(sc, true);
			return;
		}
		sc->state = SC_UP;
		target_ok(sc->sh, sc->target);
		sc->progress_ns = sh_now(sc->sh);
	}
	if (sc->state == SC_UP && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		sc_read(sc, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
	if (sc->state == SC_UP)
		sc_flush(sc);
}

/* Connections whose read budget ran out last turn read on (each with a new budget). */
static void read_pending(struct st_shadow *sh)
{
	struct st_list_head list = ST_LIST_HEAD_INIT(list);

	/* a connection that runs out of budget again goes back on sh->rd_pending for next turn */
	st_list_splice_tail_init(&sh->rd_pending, &list);
	while (!st_list_empty(&list)) {
		struct sconn *sc = st_list_first_entry(&list, struct sconn, rd);

		st_list_del_init(&sc->rd);
		if (sc->state == SC_UP)
			sc_event(sc, EPOLLIN);
	}
}

int sh_poll(struct st_shadow *sh, int timeout_ms)
{
	struct epoll_event evs[EVENTS_MAX];
	int n, i;

	sh_kick(sh);
	read_pending(sh);
	n = epoll_wait(sh->epfd, evs, EVENTS_MAX, st_list_empty(&sh->rd_pending) ? timeout_ms : 0);
	for (i = 0; i < n; i++) {
		struct sconn *sc = evs[i].data.ptr;

		/* a connection closed earlier in this batch sits on the dead list: skip it */
		if (sc->state != SC_DEAD)
			sc_event(sc, evs[i].events);
	}
	sh_free_dead(sh);
	return n < 0 && errno != EINTR ? -errno : 0;
}

void sh_conn_timers(struct st_shadow *sh, uint64_t now)
{
	struct sconn *sc, *nx;

	st_list_for_each_entry_safe(sc, nx, &sh->live, node) {
		if (sc->state == SC_CONNECTING && now - sc->progress_ns > CONNECT_TIMEOUT_NS) {
			target_failed(sh, sc->target, "connect timed out");
			sc_close(sc, true);
		} else if (sc->state == SC_UP &&
			   (sc->q.sent < sc->q.commit || (sc->h2 && sc_h2_sending(sc))) &&
			   now - sc->progress_ns > ST_SHADOW_STALL_NS) {
			/* the shadow stopped reading: free its queue, production must not wait */
			sc_close(sc, true);
		} else if (sc->shut && now > sc->linger_until) {
			sc_close(sc, false);
		} else if (sc->state == SC_UP && !sc->cc && !sc->shut &&
			   (sc->req_n || (sc->h2 && sc_h2_open(sc))) && sc->q.sent == sc->q.end &&
			   now - (sc->read_ns > sc->progress_ns ? sc->read_ns : sc->progress_ns) >
				   ST_SHADOW_LINGER_NS) {
			/* detached, all written, the shadow stopped sending: give up on its answers
			 * (a long answer still arriving is progress, not silence) */
			sc_close(sc, false);
		} else if (sc->state == SC_UP && sc->retain && sh->ts[sc->target].per_conn &&
			   sc->written >= sh->ts[sc->target].per_conn && !sc->req_nsent &&
			   sc->req_n && now - sc->answer_ns > PER_CONN_WAIT_NS) {
			/* everything answered and no close: the learned limit does not hold */
			sh->ts[sc->target].per_conn = 0;
			sc_flush(sc);
		}
		/*
		 * Answers are due and nothing came for a second: read anyway. It costs one recv
		 * (EAGAIN) a second per waiting connection, and a readiness edge the engine did
		 * not see (counted in missed_reads) can never stall a connection.
		 */
		if (sc->state == SC_UP && (sc->req_nsent || (sc->h2 && sc_h2_awaiting(sc))) &&
		    !st_list_linked(&sc->rd) &&
		    now - (sc->read_ns > sc->poke_ns ? sc->read_ns : sc->poke_ns) > READ_POKE_NS &&
		    now - sc->progress_ns > READ_POKE_NS) {
			sc->poke_ns = now;
			sc->poked = true;
			read_later(sc);
		}
	}
}
