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
/* A load test reads a few connections per turn: the loop takes up what is due in between
 * (a turn of 256 answers and their next requests on loopback is milliseconds of lag). */
#define LOAD_EVENTS_MAX 16
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

static void sc_load_close(struct sconn *sc, bool error);

void sc_close(struct sconn *sc, bool error)
{
	struct st_shadow *sh = sc->sh;
	uint64_t lost, old;

	if (sc->state == SC_DEAD)
		return;
	if (sh->cfg.load)
		sc_load_close(sc, error); /* what was due ends here; what was not goes on */
	lost = sc->req_n - sc->req_nsent - sc->early; /* the early one was answered */
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
		st_correlate_ex_put(re->ex);
		re->ex = NULL;
	}
	sc->cur_pair = NULL;
	sc->cur_ex = NULL;
	sc_cor_drop(sc);
	if (sc->h2)
		sc_h2_close(sc); /* its streams, counted the same way (their memory let go) */
	old = sc_mem(sc);
	sc_detach(sc);
	if (sc->fd >= 0) {
		epoll_ctl(sh->epfd, EPOLL_CTL_DEL, sc->fd, NULL);
		close(sc->fd);
		sc->fd = -1;
		own_release(sh, &sc->laddr, sc->lport);
		sh->n_open--;
	}
	st_bq_free(&sc->q);
	sc_acct(sc, old);
	sc->state = SC_DEAD;
	sc->req_n = sc->req_nsent = sc->req_npushed = sc->req_nready = 0;
	sc->early = false;
	sh->n_live--;
	st_list_move_tail(&sc->node, &sh->dead);
}

void sh_close_all(struct st_shadow *sh)
{
	sh->closing = true;
	while (!st_list_empty(&sh->live))
		sc_close(st_list_first_entry(&sh->live, struct sconn, node), false);
	sh->closing = false;
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
		free(sc->cw);
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
static void sc_take(struct sconn *sc, uint64_t now);
static void sc_open(struct sconn *sc);
static void sh_admit(struct st_shadow *sh);

void sh_kick(struct st_shadow *sh)
{
	uint64_t now = sh->cfg.load ? sh_now(sh) : 0;

	if (sh->cfg.load)
		sh_admit(sh);
	while (!st_list_empty(&sh->dirty)) {
		struct sconn *sc = st_list_first_entry(&sh->dirty, struct sconn, dirty);

		st_list_del_init(&sc->dirty);
		if (sc->state == SC_DEAD)
			continue;
		if (sh->cfg.load) {
			/* a load test: what is due by now may go; a connection opens at its first */
			sc_take(sc, now);
			if (sc->state == SC_IDLE) {
				if (sc->req_nready)
					sc_open(sc);
				continue;
			}
		}
		sc_flush(sc);
	}
}

/* A socket to target t, connecting (non-blocking). 0 (*up: connected already) or -errno, counted
 * (and the target backs off, said as target_failed says). */
static int target_socket(struct st_shadow *sh, unsigned t, int *fdp, bool *up)
{
	const struct st_shadow_target *tg = &sh->cfg.targets[t];
	int one = 1, fd, r, err;

	fd = socket(tg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		sh->st.errors++;
		return err;
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
		err = errno;
		sh->st.errors++;
		target_failed(sh, t, strerror(err));
		close(fd);
		return -err;
	}
	*fdp = fd;
	*up = !r;
	return 0;
}

/* A shadow connection of kind without its socket yet (SC_IDLE), not in any list. */
static struct sconn *sc_alloc(struct st_shadow *sh, struct cconn *cc, unsigned slot,
			      enum sc_kind kind)
{
	struct sconn *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->sh = sh;
	sc->cc = cc;
	sc->slot = slot;
	sc->target = slot / sh->cfg.multiply;
	sc->fd = -1;
	sc->raw = kind == SK_RAW;
	/* HTTP/1 keeps each request until answered; HTTP/2's session keeps its streams */
	sc->retain = kind == SK_HTTP1;
	sc->state = SC_IDLE;
	sc->progress_ns = sh_now(sh);
	sc->conn_id = cc ? st_shadow_cc_id(cc) : 0;
	st_list_init(&sc->node);
	st_list_init(&sc->dirty);
	st_list_init(&sc->rd);
	st_list_init(&sc->wait);
	st_list_init(&sc->cwl);
	st_http__init(&sc->resp, ST_HTTP_RESPONSE, NULL);
	if (kind == SK_H2 && sc_h2_init(sc)) {
		sh->st.errors++;
		st_http__free(&sc->resp);
		free(sc);
		return NULL;
	}
	return sc;
}

/* Lets go of a connection sc_alloc made that never went live (no socket, in no list). */
static void sc_unalloc(struct sconn *sc)
{
	st_http__free(&sc->resp);
	st_bq_free(&sc->q);
	sc_h2_free(sc);
	free(sc->req);
	free(sc);
}

/* sc goes live (on sh->live). */
static void sc_link(struct sconn *sc)
{
	st_list_add_tail(&sc->node, &sc->sh->live);
	sc->sh->n_live++;
	if (sc->h2)
		sc->sh->st.h2_shadow_conns++;
}

/* fd becomes sc's socket: its endpoint noted as the agent's own, in the engine's epoll set.
 * 0, or -errno (counted; fd closed). */
static int sc_attach(struct sconn *sc, int fd, bool up)
{
	struct st_shadow *sh = sc->sh;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int err;

	if (!getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		sockaddr_to(&ss, &sc->laddr, &sc->lport);
		own_add(sh, &sc->laddr, sc->lport);
	}
	ev.data.ptr = sc;
	if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		err = -errno;
		sh->st.errors++;
		own_release(sh, &sc->laddr, sc->lport);
		close(fd);
		return err;
	}
	sc->fd = fd;
	sh->n_open++;
	sc->state = up ? SC_UP : SC_CONNECTING;
	sc->progress_ns = sh_now(sh);
	if (up)
		target_ok(sh, sc->target);
	return 0;
}

struct sconn *sc_new(struct st_shadow *sh, struct cconn *cc, unsigned slot, enum sc_kind kind)
{
	unsigned t = slot / sh->cfg.multiply;
	struct sconn *sc;
	bool up;
	int fd;

	if (sh->cfg.load && kind == SK_HTTP1) {
		/* a load test opens it when its first request is due (--connections permitting);
		 * no backoff: each attempt is a due request's, which fails if it fails */
		sc = sc_alloc(sh, cc, slot, kind);
		if (sc)
			sc_link(sc);
		return sc;
	}
	if (sh->ts[t].retry_at > sh_now(sh))
		return NULL; /* backing off: the caller drops the request */
	if (target_socket(sh, t, &fd, &up))
		return NULL;
	sc = sc_alloc(sh, cc, slot, kind);
	if (!sc) {
		close(fd);
		return NULL;
	}
	if (sc_attach(sc, fd, up)) {
		sc_unalloc(sc);
		return NULL;
	}
	sc_link(sc);
	return sc;
}

/* ---- requests on a shadow connection ---------------------------------------------------- */

static struct reqent *req_at(struct sconn *sc, uint32_t i)
{
	return &sc->req[(sc->req_head + i) % sc->req_cap];
}

int sc_req_push(struct sconn *sc, uint64_t end, enum st_http_method m, bool ka,
		struct st_cmp_pair *pair, struct st_correlate_ex *ex)
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
	sc->req[(sc->req_head + sc->req_n) % sc->req_cap] =
		(struct reqent){ .end = end, .method = (uint8_t)m, .keep_alive = ka, .pair = pair,
				 .ex = ex };
	sc->req_n++;
	if (!sc->sh->cfg.load)
		sc->req_nready = sc->req_n; /* due at once; a load test's wait for sc_req_due() */
	if (pair)
		st_compare__pair_get(pair);
	if (ex)
		st_correlate_ex_get(ex);
	return 0;
}

/* ---- a load test: due times, opening connections, what became of each request --------- */

static void load_done(struct sconn *sc, const struct reqent *re, enum st_shadow_fail fail,
		      uint16_t status, uint64_t end)
{
	struct st_shadow_done d = {
		.tag = re->tag, .slot = sc->slot, .fail = fail, .status = status, .due = re->due,
		.sent = re->sent_ns, .end = end,
	};

	sc->sh->cfg.load->done(sc->sh->cfg.load_ctx, &d);
}

void sh_load_dropped(struct st_shadow *sh, unsigned slot, uint32_t tag, uint64_t due)
{
	struct st_shadow_done d = { .tag = tag, .slot = slot, .fail = ST_SHADOW_F_DROPPED,
				    .due = due, .end = sh_now(sh) };

	if (sh->cfg.load)
		sh->cfg.load->done(sh->cfg.load_ctx, &d);
}

/* The heap of connections by the due time of their first request not due yet (next_due). */
static void heap_set(struct st_shadow *sh, uint32_t i, struct sconn *sc)
{
	sh->due_heap[i] = sc;
	sc->heap_i = i + 1;
}

static void heap_up(struct st_shadow *sh, uint32_t i)
{
	struct sconn *sc = sh->due_heap[i];

	while (i) {
		uint32_t up = (i - 1) / 2;

		if (sh->due_heap[up]->next_due <= sc->next_due)
			break;
		heap_set(sh, i, sh->due_heap[up]);
		i = up;
	}
	heap_set(sh, i, sc);
}

static void heap_down(struct st_shadow *sh, uint32_t i)
{
	struct sconn *sc = sh->due_heap[i];

	for (;;) {
		uint32_t l = 2 * i + 1, m = l;

		if (l >= sh->due_n)
			break;
		if (l + 1 < sh->due_n && sh->due_heap[l + 1]->next_due < sh->due_heap[l]->next_due)
			m = l + 1;
		if (sh->due_heap[m]->next_due >= sc->next_due)
			break;
		heap_set(sh, i, sh->due_heap[m]);
		i = m;
	}
	heap_set(sh, i, sc);
}

static int heap_add(struct st_shadow *sh, struct sconn *sc)
{
	if (sh->due_n == sh->due_cap) {
		uint32_t cap = sh->due_cap ? sh->due_cap * 2 : 256;
		struct sconn **n = realloc(sh->due_heap, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		sh->due_heap = n;
		sh->due_cap = cap;
	}
	heap_set(sh, sh->due_n++, sc);
	heap_up(sh, sh->due_n - 1);
	return 0;
}

static void heap_del(struct st_shadow *sh, struct sconn *sc)
{
	uint32_t i = sc->heap_i - 1;
	struct sconn *last = sh->due_heap[--sh->due_n];

	sc->heap_i = 0;
	if (i < sh->due_n) {
		heap_set(sh, i, last);
		heap_up(sh, i);
		heap_down(sh, last->heap_i - 1);
	}
}

void sc_req_due(struct sconn *sc, uint64_t due, uint32_t tag, bool wait_prev)
{
	struct reqent *re = req_at(sc, sc->req_n - 1);

	/* one connection's requests go in their order */
	if (due < sc->last_due)
		due = sc->last_due;
	sc->last_due = due;
	re->due = due;
	re->tag = tag;
	re->wait_prev = wait_prev;
	/* taken up at the next kick (the caller marks the connection) */
}

/* What is due by now is taken up; the connection waits in the heap for the rest. */
static void sc_take(struct sconn *sc, uint64_t now)
{
	struct st_shadow *sh = sc->sh;
	uint32_t before = sc->req_nready;

	if (sc->req_nready == sc->req_n) {
		if (sc->heap_i) /* (cannot be: what is in the heap waits for a request) */
			heap_del(sh, sc);
		return;
	}
	if (sc->heap_i && req_at(sc, sc->req_nready)->due > now)
		return; /* nothing due yet: it waits where it is (a new request comes after) */
	if (sc->heap_i)
		heap_del(sh, sc);
	while (sc->req_nready < sc->req_n) {
		struct reqent *re = req_at(sc, sc->req_nready);

		if (re->due > now)
			break;
		sh->cfg.load->taken(sh->cfg.load_ctx, sc->slot, re->due, now);
		sc->req_nready++;
	}
	if (sc->req_nready > before)
		sc->take_ns = now;
	if (sc->req_nready == sc->req_n)
		return;
	sc->next_due = req_at(sc, sc->req_nready)->due;
	if (heap_add(sh, sc)) {
		/* no memory to wait in: what waits goes now (its lag says it was early) */
		while (sc->req_nready < sc->req_n) {
			sh->cfg.load->taken(sh->cfg.load_ctx, sc->slot,
					    req_at(sc, sc->req_nready)->due, now);
			sc->req_nready++;
		}
	}
}

/* Its first request is due: the socket, unless --connections are all taken (then it waits
 * for one, in order; its requests' latencies run on from their due times). */
static void sc_open(struct sconn *sc)
{
	struct st_shadow *sh = sc->sh;
	bool up = false;
	int fd = -1, err;

	if (st_list_linked(&sc->wait))
		return;
	if (sh->cfg.max_conns && sh->n_open >= sh->cfg.max_conns) {
		st_list_add_tail(&sc->wait, &sh->conn_wait);
		sh->st.conn_waits++;
		return;
	}
	err = target_socket(sh, sc->target, &fd, &up);
	if (!err)
		err = sc_attach(sc, fd, up);
	if (err) {
		sc->fail = err == -ECONNREFUSED ? ST_SHADOW_F_REFUSED : ST_SHADOW_F_CONNECT;
		sc_close(sc, false); /* counted as an error already */
		return;
	}
	if (sc->state == SC_UP)
		sc_flush(sc);
}

/* Connections waiting for a free one get them, in order. */
static void sh_admit(struct st_shadow *sh)
{
	while (!st_list_empty(&sh->conn_wait) &&
	       (!sh->cfg.max_conns || sh->n_open < sh->cfg.max_conns)) {
		struct sconn *sc = st_list_first_entry(&sh->conn_wait, struct sconn, wait);

		st_list_del_init(&sc->wait);
		sc_open(sc);
	}
}

uint64_t sh_due(struct st_shadow *sh, uint64_t now)
{
	while (sh->due_n && sh->due_heap[0]->next_due <= now) {
		struct sconn *sc = sh->due_heap[0];

		heap_del(sh, sc);
		sc_mark(sc);
	}
	sh_kick(sh);
	sh_free_dead(sh);
	return sh->due_n ? sh->due_heap[0]->next_due : 0;
}

/*
 * The requests not due yet go on a new connection (opened when the first is due): sc failed
 * and what was due on it has failed with it, each failure a due request's, so a target that
 * refuses everything costs one attempt per due request, never a loop.
 */
static void sc_move_rest(struct sconn *sc)
{
	struct st_shadow *sh = sc->sh;
	uint32_t k = sc->req_n - sc->req_nready;
	uint64_t from = sc->req_nready ? req_at(sc, sc->req_nready - 1)->end : sc->q.acked;
	uint64_t old = sc_mem(sc);
	struct sconn *n = sc_alloc(sh, sc->cc, sc->slot, SK_HTTP1);

	if (!n || !(n->req = malloc(k * sizeof(*n->req)))) {
		if (n)
			sc_unalloc(n);
		return; /* no memory: sc_close counts them dropped */
	}
	n->req_cap = n->req_n = k;
	for (uint32_t i = 0; i < k; i++)
		n->req[i] = *req_at(sc, sc->req_nready + i); /* the pairs' references move too */
	sc->req_n = sc->req_nready;
	/* the queue moves as it is, offsets included; nothing of it is sent on the new one */
	n->q = sc->q;
	memset(&sc->q, 0, sizeof(sc->q));
	st_bq_release(&n->q, from);
	n->q.sent = from;
	n->last_due = sc->last_due;
	sc_acct(sc, old);
	sc_acct(n, 0);
	sc_link(n);
	if (sc->cc) {
		struct sconn **slotp = st_shadow_cc_slot(sc->cc, sc->slot);

		if (*slotp == sc)
			*slotp = n;
		else
			n->cc = NULL; /* sc was no longer the connection's current one */
	}
	sc_push_methods(n);
	n->next_due = n->req[0].due;
	if (heap_add(sh, n))
		sc_mark(n); /* no memory to wait in: taken at the next kick */
}

/* sc closes (why: sc->fail, else from error): its due requests fail, the others go on. At the
 * end of the run (sh_close_all) what is not due yet is not moved: it never will be. */
static void sc_load_close(struct sconn *sc, bool error)
{
	struct st_shadow *sh = sc->sh;
	enum st_shadow_fail why = sc->fail ? (enum st_shadow_fail)sc->fail :
				  error ? ST_SHADOW_F_RESET : ST_SHADOW_F_TIMEOUT;
	uint64_t now = sh_now(sh);

	if (sc->heap_i)
		heap_del(sh, sc);
	if (st_list_linked(&sc->wait))
		st_list_del_init(&sc->wait);
	for (uint32_t i = 0; i < sc->req_nready; i++) {
		if (!i && sc->early)
			load_done(sc, req_at(sc, 0), ST_SHADOW_ANSWERED, sc->early_status, sc->early_ns);
		else
			load_done(sc, req_at(sc, i), why, 0, now);
	}
	if (sc->req_nready < sc->req_n && !sh->closing)
		sc_move_rest(sc);
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
	if (re->ex) {
		if (sc->cur_ex == re->ex)
			sc->cur_ex = NULL;
		st_correlate_ex_put(re->ex);
		re->ex = NULL;
	}
	sc->req_head = (sc->req_head + 1) % sc->req_cap;
	sc->req_n--;
	sc->early = false;
	if (sc->req_nsent)
		sc->req_nsent--;
	if (sc->req_npushed)
		sc->req_npushed--;
	if (sc->req_nready)
		sc->req_nready--;
}

static void sc_finish(struct sconn *sc);

/* A final answer now is the oldest request's: it has bytes on the wire and no answer yet
 * (HTTP/1 answers in order, and a server may answer before it read the whole request). */
static bool answer_due(const struct sconn *sc)
{
	return sc->retain && sc->req_n && !sc->early && sc->q.sent > sc->q.acked;
}

/* The oldest request was answered (status): it leaves the ring, or, still being written, once
 * it is written whole (its bytes are still to go: the server reads or discards them). */
static void req_answered(struct sconn *sc, uint16_t status)
{
	uint64_t old = sc_mem(sc);

	if (!sc->req_nsent) {
		sc->early = true;
		sc->early_status = status;
		sc->early_ns = sc->read_ns;
		return;
	}
	if (sc->sh->cfg.load)
		load_done(sc, req_at(sc, 0), ST_SHADOW_ANSWERED, status, sc->read_ns);
	sh_answer_latency(sc->sh, req_at(sc, 0)->sent_ns, sc->read_ns);
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

/*
 * A load test: where the bytes that may go now end. Due requests only, and one the recording
 * did not pipeline only once every answer before it is in (answered requests have left the
 * ring: it is the ring's first).
 */
static uint64_t load_limit(struct sconn *sc)
{
	uint32_t k = sc->req_nsent;

	while (k < sc->req_nready && (!req_at(sc, k)->wait_prev || k == 0))
		k++;
	return k ? req_at(sc, k - 1)->end : sc->q.acked;
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
		if (sh->cfg.load) {
			uint64_t l = load_limit(sc);

			if (l < lim)
				lim = l;
			if (lim <= sc->q.sent)
				break;
		}
		mh.msg_iovlen = (size_t)st_bq_iov(&sc->q, sc->q.sent, lim, iov, IOV_MAX_SEND);
		if (sh->cfg.compare)
			t0 = st_loop_realtime_ns(); /* on loopback the server may run inside the call */
		n = sendmsg(sc->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			sc_acct(sc, old);
			sc->fail = errno == ECONNREFUSED ? ST_SHADOW_F_REFUSED : ST_SHADOW_F_RESET;
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
			re->sent_ns = sc->progress_ns;
			sc->req_nsent++;
			sc->written++;
			sh->st.replayed++;
		}
		if (sc->h2)
			sc_h2_written(sc, t0);
		if (sc->early && sc->req_nsent) {
			if (sh->cfg.load) /* its answer came before its last byte went */
				load_done(sc, req_at(sc, 0), ST_SHADOW_ANSWERED, sc->early_status,
					  sc->early_ns);
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
	if (sc->state == SC_IDLE && !sc->req_n) {
		sc_close(sc, false); /* a load test's connection that never got a request through */
		return;
	}
	if (sc->state != SC_UP || sc->shut || sc->q.sent < sc->q.end || sc->cw_n ||
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
	if (sc->state == SC_UP || sc->state == SC_IDLE)
		sc_finish(sc);
}

/* ---- the shadow's responses ------------------------------------------------------------- */

/* The shadow answered something that does not frame as HTTP: it is broken or hostile.
 * Reading on would cost the agent (a flood of garbage) and could never pair again. */
void sc_bad_response(struct sconn *sc)
{
	sc->sh->st.bad_responses++;
	target_failed(sc->sh, sc->target, "its answer was not HTTP");
	sc->fail = ST_SHADOW_F_MALFORMED;
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
			sc->cur_ex = NULL;
			if (!(ev.head->flags & ST_HTTP_HF_INTERIM) && answer_due(sc) &&
			    req_at(sc, 0)->ex && sh->cor) {
				sc->cur_ex = req_at(sc, 0)->ex;
				st_correlate_ans_free(&sc->cur_ex->tgt[sc->slot]);
				st_correlate_ans_head(&sc->cur_ex->tgt[sc->slot], sh->cfg.correlate,
						      ev.head);
			}
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
			if (sc->cur_ex && ev.data_len)
				st_correlate_ans_body(&sc->cur_ex->tgt[sc->slot], p, n);
			break;
		case ST_HTTP_EV_MSG_DONE:
			if (ev.head->flags & ST_HTTP_HF_INTERIM)
				break;
			if (sc->cur_ex) { /* learned from, and what it explains told to compare */
				sh_cor_tgt_done(sh, sc->cur_ex, sc->slot, sc->cur_pair);
				sc->cur_ex = NULL;
			}
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
				req_answered(sc, ev.head->status);
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
	uint64_t old_sc = sc_mem(sc), old_n;
	struct sconn *n;

	if (!sc->retain || !sc->server_done)
		return;
	if (sc->early) {
		/* answered before it was written whole: what is left of it never goes out */
		if (sh->cfg.load)
			load_done(sc, req_at(sc, 0), ST_SHADOW_ANSWERED, sc->early_status, sc->early_ns);
		sc->q.sent = req_at(sc, 0)->end;
		st_bq_release(&sc->q, sc->q.sent);
		req_pop(sc, ST_CMP_R_SHADOW_UNANSWERED);
	}
	if (!sc->req_n && !sc->cw_n)
		return;
	n = sc_new(sh, sc->cc, sc->slot, SK_HTTP1);
	if (!n)
		return; /* sc_close counts them */
	/*
	 * The queue moves as it is, offsets included: on the new connection nothing is
	 * sent yet, so sent goes back to acked (the first unanswered byte).
	 */
	old_n = sc_mem(n);
	n->q = sc->q;
	n->q.sent = n->q.acked;
	memset(&sc->q, 0, sizeof(sc->q));
	n->req = sc->req;
	n->req_cap = sc->req_cap;
	n->req_head = sc->req_head;
	n->req_n = sc->req_n;
	n->req_nready = sc->req_nready;
	n->last_due = sc->last_due;
	sc->req = NULL;
	sc->req_cap = sc->req_head = 0;
	n->last_sent = sc->last_sent;
	n->conn_id = sc->conn_id;
	sc->cur_pair = NULL;
	sc->cur_ex = NULL;
	for (uint32_t i = 0; i < n->req_n; i++) {
		struct reqent *re = req_at(n, i);

		if (re->pair) /* what came of an answer on the old connection is gone */
			st_compare__pair_reset(re->pair, sc_side(n->target));
		if (re->ex)
			st_correlate_ans_free(&re->ex->tgt[n->slot]);
	}
	sc_cor_move(sc, n); /* --correlate: the requests waiting for a value wait there */
	sh->st.replayed -= sc->req_nsent; /* counted again when written again */
	sh->st.resent += sc->req_nsent;
	sc->req_n = sc->req_nsent = sc->req_npushed = sc->req_nready = 0;
	sc_acct(sc, old_sc);
	sc_acct(n, old_n);
	sc_push_methods(n);
	if (sc->cc) {
		*st_shadow_cc_slot(sc->cc, sc->slot) = n;
		sc->cc = NULL;
	}
	if (sh->cfg.load) {
		/* opened at once for what was due, else when its first is (the kick takes it up) */
		if (sc->heap_i)
			heap_del(sh, sc);
		sc_mark(n);
	} else if (n->state == SC_UP) {
		sc_flush(n);
	}
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
		sc->rx_ns = st_loop_realtime_ns();
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
		/* --correlate learns from the bodies it can (JSON, up to its cap) */
		if (skip && sc->cur_ex && !sc->raw && !sc->resp_tunnel &&
		    sc->cur_ex->tgt[sc->slot].json && !sc->cur_ex->tgt[sc->slot].cut)
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
		sc->fail = n < 0 && errno == ETIMEDOUT ? ST_SHADOW_F_TIMEOUT : ST_SHADOW_F_RESET;
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
			sc->fail = err == ECONNREFUSED ? ST_SHADOW_F_REFUSED :
				   err == ETIMEDOUT ? ST_SHADOW_F_TIMEOUT : ST_SHADOW_F_CONNECT;
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
	n = epoll_wait(sh->epfd, evs, sh->cfg.load ? LOAD_EVENTS_MAX : EVENTS_MAX,
		       st_list_empty(&sh->rd_pending) ? timeout_ms : 0);
	for (i = 0; i < n; i++) {
		struct sconn *sc = evs[i].data.ptr;

		/* a connection closed earlier in this batch sits on the dead list: skip it */
		if (sc->state != SC_DEAD)
			sc_event(sc, evs[i].events);
	}
	sh_free_dead(sh);
	return n < 0 && errno != EINTR ? -errno : 0;
}

/* How long ago t was; 0 for a t after now (set by the kick of the same tick, whose clock
 * read came after the caller's). */
static uint64_t age(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

void sh_conn_timers(struct st_shadow *sh, uint64_t now)
{
	struct sconn *sc, *nx;

	st_list_for_each_entry_safe(sc, nx, &sh->live, node) {
		bool load = sh->cfg.load;

		if (sc->state == SC_CONNECTING && age(now, sc->progress_ns) > CONNECT_TIMEOUT_NS) {
			target_failed(sh, sc->target, "connect timed out");
			sc->fail = ST_SHADOW_F_TIMEOUT;
			sc_close(sc, true);
		} else if (sc->state == SC_UP &&
			   (load ? sc->q.sent < load_limit(sc) :
				   (sc->q.sent < sc->q.commit || (sc->h2 && sc_h2_sending(sc)))) &&
			   age(now, sc->take_ns > sc->progress_ns ? sc->take_ns : sc->progress_ns) >
				   ST_SHADOW_STALL_NS) {
			/* the shadow stopped reading: free its queue, production must not wait (a load
			 * test's bytes count from when they were due) */
			sc->fail = ST_SHADOW_F_TIMEOUT;
			sc_close(sc, true);
		} else if (load && sh->cfg.answer_timeout_ns && sc->state == SC_UP && sc->req_nsent &&
			   age(now, req_at(sc, 0)->sent_ns) > sh->cfg.answer_timeout_ns) {
			/* a load test's answer that did not come in time */
			sc->fail = ST_SHADOW_F_TIMEOUT;
			sc_close(sc, true);
		} else if (sc->shut && now > sc->linger_until) {
			sc_close(sc, false);
		} else if (sc->state == SC_UP && !sc->cc && !sc->shut &&
			   (sc->req_n || (sc->h2 && sc_h2_open(sc))) && sc->q.sent == sc->q.end &&
			   age(now, sc->read_ns > sc->progress_ns ? sc->read_ns : sc->progress_ns) >
				   ST_SHADOW_LINGER_NS) {
			/* detached, all written, the shadow stopped sending: give up on its answers
			 * (a long answer still arriving is progress, not silence) */
			sc_close(sc, false);
		} else if (sc->state == SC_UP && sc->retain && sh->ts[sc->target].per_conn &&
			   sc->written >= sh->ts[sc->target].per_conn && !sc->req_nsent &&
			   sc->req_n && age(now, sc->answer_ns) > PER_CONN_WAIT_NS) {
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
		    age(now, sc->read_ns > sc->poke_ns ? sc->read_ns : sc->poke_ns) > READ_POKE_NS &&
		    age(now, sc->progress_ns) > READ_POKE_NS) {
			sc->poke_ns = now;
			sc->poked = true;
			read_later(sc);
		}
	}
}
