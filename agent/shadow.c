/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shadow engine (see shadow.h for the contract).
 *
 * Objects:
 *  - cconn: one per captured client connection (reasm's user pointer). Holds
 *    the request framer and, per slot (target x copy), the shadow connection
 *    currently carrying this connection's requests.
 *  - sconn: one shadow connection. Lives on its own: when its captured
 *    connection ends, or a request was not keep-alive, it is detached and
 *    drains what it has (bounded by a linger time) before closing.
 *
 * Queues hold absolute stream offsets: sent <= commit <= end. Bytes in
 * [commit, end) belong to the request being framed; they are only released
 * for sending at MSG_DONE, and cut off if the request is lost.
 */
#include "shadow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "flowset.h"
#include "loop.h"
#include "reasm.h"

#define CHUNK_MIN 512u
#define CHUNK_MAX (64u * 1024)
#define DETECT_MAX 8192u
#define READ_BUF (64u * 1024)
#define IOV_MAX_SEND 64
#define EVENTS_MAX 256
#define CONNECT_TIMEOUT_NS (5000ull * 1000000)
#define OWN_LINGER_NS (60ull * 1000000000)
#define GC_EVERY_NS (1000ull * 1000000)
#define PER_CONN_WAIT_NS (1000ull * 1000000)

enum { SC_CONNECTING = 0, SC_UP, SC_DEAD };
enum { CM_DETECT = 0, CM_HTTP, CM_RAW, CM_OFF };
#define SL_ON 1u

struct qchunk {
	struct qchunk *next;
	uint64_t off;  /* absolute stream offset of data[0] */
	uint32_t len;
	uint32_t cap;
	uint8_t data[];
};

struct queue {
	struct qchunk *head, *tail;
	uint64_t acked, sent, commit, end; /* acked: bytes no longer needed (answered or sent) */
	uint64_t alloc;              /* memory held by the chunks: what the caps count */
};

/* A committed request: where it ends in the queue, and its method for the response parser. */
struct reqent {
	uint64_t end;
	uint8_t method;
	bool keep_alive;             /* the request itself let the connection persist */
};

struct cconn;

struct sconn {
	struct st_shadow *sh;
	struct sconn *prev, *next;   /* live list, or the dead list */
	struct cconn *cc;            /* NULL once detached */
	unsigned slot, target;
	int fd;
	uint8_t state;
	bool raw;                    /* bytes are a raw stream (raw mode or after an upgrade) */
	bool last_sent;              /* the latest request went out on this connection */
	bool shut;                   /* our FIN is out: waiting for the shadow to close */
	bool msg_active;             /* [msg_start, end) is the request being framed */
	bool resp_broken;            /* response framing gave up: bytes only */
	bool retain;                 /* keep sent requests until answered (HTTP, responses framed):
				      * a shadow that closes after N answers (nginx's
				      * keepalive_requests) gets the rest on a new connection */
	bool congested;              /* counted in sh->n_congested */
	bool dirty;                  /* on sh->dirty: committed bytes wait for the next kick */
	struct sconn *dnext;
	struct queue q;
	uint64_t msg_start;
	struct reqent *req;          /* ring: committed requests not yet answered (retain) or sent */
	uint32_t req_cap, req_head, req_n;
	uint32_t req_nsent;          /* the ring's first req_nsent requests are written whole */
	uint32_t req_npushed;        /* ... and the first req_npushed went to the response parser */
	uint64_t answered;           /* final responses on this connection */
	uint64_t written;            /* requests written whole on this connection */
	uint64_t answer_ns;          /* the last final response */
	bool server_done;            /* a response said Connection: close: nothing after it runs */
	uint64_t progress_ns;        /* created, or the last write that moved bytes */
	uint64_t linger_until;
	uint64_t conn_id;
	uint64_t resp_seq;
	struct st_addr laddr;
	uint16_t lport;
	struct st_http_parser resp;
};

struct cconn {
	struct st_shadow *sh;
	struct st_reasm_conn *c;
	uint8_t mode;
	bool in_msg;                 /* a head was framed, MSG_DONE not yet */
	bool msg_pass;               /* ... and it was selected for the shadows */
	bool resyncing;              /* skipping to the next request line: pending bytes are not
				      * a request's head */
	enum st_http_method msg_method;
	uint32_t msg_flags;
	uint64_t hash;               /* stable per connection */
	uint64_t req_index;
	uint8_t *det;                /* auto-detection: first client bytes */
	uint32_t det_len;
	struct st_http_parser req;
	uint8_t *sflags;             /* per slot: SL_* */
	struct sconn *sc[];          /* per slot */
};

struct target_state {
	unsigned lo, hi;             /* share of the hash space [0, 100) when pct */
	unsigned fails;
	uint64_t retry_at;
	uint64_t per_conn;           /* the target closes after this many requests (learned) */
};

struct own_ent {
	struct st_addr a;
	uint16_t port;
	uint8_t used;
	uint64_t expire;             /* 0: socket open */
};

struct st_shadow {
	struct st_shadow_config cfg;
	struct st_reasm *r;
	int epfd;
	unsigned nslots;
	struct target_state ts[ST_SHADOW_MAX_TARGETS];
	struct sconn *live, *dead;
	struct sconn *dirty;         /* connections with new requests since the last kick */
	uint64_t n_live;
	uint64_t queued;
	uint64_t n_congested;
	struct st_shadow_stats st;
	struct st_http_rewrite rw;
	bool rewrite;
	char *hbuf;
	size_t hbuf_size;
	char *pbuf;                  /* request target, NUL-terminated, for regexec */
	size_t pbuf_size;
	uint8_t *rbuf;
	double tokens;
	uint64_t tokens_ns;
	uint64_t last_gc;
	struct own_ent *own;
	size_t own_cap, own_n;
};

/* Stable across runs and agents: the same connection is always in or out. One mix per
 * segment: this runs for every captured segment when sampling. */
static uint64_t conn_hash(const struct st_flow_key *k)
{
	uint64_t h = 0x5348414430574150ull ^ ((uint64_t)k->sport << 16 | k->dport);

	h ^= (uint64_t)k->src.a[0] * 0x9e3779b97f4a7c15ull;
	h ^= (uint64_t)k->dst.a[0] * 0xc2b2ae3d27d4eb4full;
	if (k->src.family == 6) {
		int i;

		for (i = 1; i < 4; i++)
			h ^= ((uint64_t)k->src.a[i] << 32 | k->dst.a[i]) * (0x165667b19e3779f9ull + i);
	}
	return st_mix64(h);
}

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
	    own_rebuild(sh, sh->own_cap ? sh->own_cap * 2 : 256, st_mono_ns()))
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
		sh->own[i].expire = st_mono_ns() + OWN_LINGER_NS;
}

static bool own_has(const struct st_shadow *sh, const struct st_addr *a, uint16_t port)
{
	struct st_addr k = { .family = a->family };
	size_t i;

	memcpy(k.a, a->a, sizeof(k.a));
	i = own_slot(sh->own, sh->own_cap, &k, port);
	return sh->own[i].used;
}

bool st_shadow__own(const struct st_shadow *sh, const struct st_segment *seg)
{
	if (!sh->own_n)
		return false;
	return own_has(sh, &seg->key.src, seg->key.sport) ||
	       own_has(sh, &seg->key.dst, seg->key.dport);
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

/* ---- queues --------------------------------------------------------------------------- */

/* What the queue costs in memory (the caps bound this, not just the payload bytes). */
static uint64_t q_bytes(const struct queue *q)
{
	return q->alloc;
}

/* The memory appending len bytes would add (the chunks q_append would allocate). */
static uint64_t q_cost(const struct queue *q, size_t len)
{
	size_t room = q->tail ? q->tail->cap - q->tail->len : 0;
	uint32_t cap = q->tail ? q->tail->cap : 0;
	uint64_t cost = 0;

	if (len <= room)
		return 0;
	len -= room;
	while (len) {
		cap = cap ? (cap * 2 > CHUNK_MAX ? CHUNK_MAX : cap * 2) : CHUNK_MIN;
		cost += sizeof(struct qchunk) + cap;
		len -= len < cap ? len : cap;
	}
	return cost;
}

static int q_append(struct queue *q, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		struct qchunk *t = q->tail;
		size_t room = t ? t->cap - t->len : 0, n;

		if (!room) {
			/* grow chunk sizes with the stream: small requests stay small */
			uint32_t cap = t ? t->cap * 2 : CHUNK_MIN;

			if (cap > CHUNK_MAX)
				cap = CHUNK_MAX;
			t = malloc(sizeof(*t) + cap);
			if (!t)
				return -ENOMEM;
			q->alloc += sizeof(*t) + cap;
			t->next = NULL;
			t->off = q->end;
			t->len = 0;
			t->cap = cap;
			if (q->tail)
				q->tail->next = t;
			else
				q->head = t;
			q->tail = t;
			room = cap;
		}
		n = len < room ? len : room;
		memcpy(t->data + t->len, p, n);
		t->len += (uint32_t)n;
		q->end += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* Cuts the queue back to absolute offset pos (>= commit). */
static void q_truncate(struct queue *q, uint64_t pos)
{
	struct qchunk *c, *prev = NULL, *nx;

	if (pos >= q->end)
		return;
	for (c = q->head; c && c->off + c->len <= pos; c = c->next)
		prev = c;
	if (!c)
		return;
	if (c->off < pos) {
		c->len = (uint32_t)(pos - c->off);
		prev = c;
		c = c->next;
	}
	for (; c; c = nx) {
		nx = c->next;
		q->alloc -= sizeof(*c) + c->cap;
		free(c);
	}
	if (prev) {
		prev->next = NULL;
		q->tail = prev;
	} else {
		q->head = q->tail = NULL;
	}
	q->end = pos;
}

/* Bytes before pos are no longer needed: free their chunks. */
static void q_release(struct queue *q, uint64_t pos)
{
	if (pos > q->acked)
		q->acked = pos;
	while (q->head && q->head->off + q->head->len <= q->acked) {
		struct qchunk *c = q->head;

		q->head = c->next;
		if (!q->head)
			q->tail = NULL;
		q->alloc -= sizeof(*c) + c->cap;
		free(c);
	}
}

static void q_free(struct queue *q)
{
	struct qchunk *c, *nx;

	for (c = q->head; c; c = nx) {
		nx = c->next;
		free(c);
	}
	memset(q, 0, sizeof(*q));
}

/* ---- shadow connections ---------------------------------------------------------------- */

/* Keeps the global byte count and the congestion count right after q changed. */
static void q_acct(struct sconn *sc, uint64_t old)
{
	struct st_shadow *sh = sc->sh;
	uint64_t now = q_bytes(&sc->q);
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

static void target_failed(struct st_shadow *sh, unsigned t)
{
	struct target_state *ts = &sh->ts[t];
	unsigned shift = ts->fails < 16 ? ts->fails : 16;
	uint64_t b = ST_SHADOW_BACKOFF_MIN_NS << shift;

	if (b > ST_SHADOW_BACKOFF_MAX_NS)
		b = ST_SHADOW_BACKOFF_MAX_NS;
	ts->fails++;
	ts->retry_at = st_mono_ns() + b;
}

static void sc_unlink(struct sconn *sc)
{
	struct st_shadow *sh = sc->sh;

	if (sc->prev)
		sc->prev->next = sc->next;
	else
		sh->live = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	sc->prev = sc->next = NULL;
}

static void sc_detach(struct sconn *sc)
{
	if (sc->cc) {
		if (sc->cc->sc[sc->slot] == sc)
			sc->cc->sc[sc->slot] = NULL;
		sc->cc = NULL;
	}
}

/*
 * Closes sc. Requests queued and not fully written are dropped (counted);
 * error says the shadow failed (counted as an error).
 */
static void sc_close(struct sconn *sc, bool error)
{
	struct st_shadow *sh = sc->sh;
	uint64_t lost = sc->req_n - sc->req_nsent + (sc->msg_active ? 1 : 0);
	uint64_t old = q_bytes(&sc->q);

	if (sc->state == SC_DEAD)
		return;
	if (error)
		sh->st.errors++;
	sh->st.dropped += lost;
	sh->st.dropped_down += lost;
	sh->st.unanswered += sc->req_nsent; /* written whole, no answer before the close */
	sc_detach(sc);
	if (sc->fd >= 0) {
		epoll_ctl(sh->epfd, EPOLL_CTL_DEL, sc->fd, NULL);
		close(sc->fd);
		sc->fd = -1;
		own_release(sh, &sc->laddr, sc->lport);
	}
	q_free(&sc->q);
	q_acct(sc, old);
	sc->state = SC_DEAD;
	sc->msg_active = false;
	sc->req_n = sc->req_nsent = sc->req_npushed = 0;
	sc_unlink(sc);
	sh->n_live--;
	sc->next = sh->dead;
	sh->dead = sc;
}

/* Frees closed connections, except those the dirty list still points to (next kick). */
static void free_dead(struct st_shadow *sh)
{
	struct sconn **pp = &sh->dead;

	while (*pp) {
		struct sconn *sc = *pp;

		if (sc->dirty) {
			pp = &sc->next;
			continue;
		}
		*pp = sc->next;
		st_http__free(&sc->resp);
		free(sc->req);
		free(sc);
	}
}

/*
 * Requests are written in batches: a whole ring buffer batch (or pcap feed)
 * commits them, then one kick writes each connection's new requests with one
 * sendmsg, however many there are (under load, dozens per connection).
 */
static void sc_mark(struct sconn *sc)
{
	if (sc->dirty)
		return;
	sc->dirty = true;
	sc->dnext = sc->sh->dirty;
	sc->sh->dirty = sc;
}

static void sc_flush(struct sconn *sc);

static void kick(struct st_shadow *sh)
{
	while (sh->dirty) {
		struct sconn *sc = sh->dirty;

		sh->dirty = sc->dnext;
		sc->dirty = false;
		if (sc->state != SC_DEAD)
			sc_flush(sc);
	}
}

static struct sconn *sc_new(struct st_shadow *sh, struct cconn *cc, unsigned slot, bool raw)
{
	unsigned t = slot / sh->cfg.multiply;
	const struct st_shadow_target *tg = &sh->cfg.targets[t];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint64_t now = st_mono_ns();
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
	sh->st.connects++;
	if (sh->ts[t].fails)
		sh->st.reconnects++;
	r = connect(fd, (const struct sockaddr *)&tg->addr, tg->addrlen);
	if (r && errno != EINPROGRESS) {
		sh->st.errors++;
		target_failed(sh, t);
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
	sc->raw = raw;
	sc->retain = !raw;
	sc->state = r ? SC_CONNECTING : SC_UP;
	sc->progress_ns = now;
	sc->conn_id = cc ? cc->c->id : 0;
	st_http__init(&sc->resp, ST_HTTP_RESPONSE, NULL);
	if (!getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		sockaddr_to(&ss, &sc->laddr, &sc->lport);
		own_add(sh, &sc->laddr, sc->lport);
	}
	ev.data.ptr = sc;
	if (epoll_ctl(sh->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		sh->st.errors++;
		own_release(sh, &sc->laddr, sc->lport);
		close(fd);
		free(sc);
		return NULL;
	}
	sc->next = sh->live;
	if (sh->live)
		sh->live->prev = sc;
	sh->live = sc;
	sh->n_live++;
	if (sc->state == SC_UP)
		sh->ts[t].fails = 0, sh->ts[t].retry_at = 0;
	return sc;
}

static struct reqent *req_at(struct sconn *sc, uint32_t i)
{
	return &sc->req[(sc->req_head + i) % sc->req_cap];
}

static int req_push(struct sconn *sc, uint64_t end, enum st_http_method m, bool ka)
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
	sc->req[(sc->req_head + sc->req_n) % sc->req_cap] = (struct reqent){ end, (uint8_t)m, ka };
	sc->req_n++;
	return 0;
}

static void req_pop(struct sconn *sc)
{
	sc->req_head = (sc->req_head + 1) % sc->req_cap;
	sc->req_n--;
	if (sc->req_nsent)
		sc->req_nsent--;
	if (sc->req_npushed)
		sc->req_npushed--;
}

/*
 * The response parser needs each request's method (HEAD has no body) but holds
 * only ST_HTTP_METHOD_QUEUE of them; requests can run further ahead than that.
 */
static void push_methods(struct sconn *sc)
{
	while (sc->retain && sc->req_npushed < sc->req_n &&
	       !st_http__push_method(&sc->resp, req_at(sc, sc->req_npushed)->method))
		sc->req_npushed++;
}

/* Sent bytes are dropped as soon as written: raw streams, or responses we cannot frame. */
static void sc_noretain(struct sconn *sc)
{
	uint64_t old = q_bytes(&sc->q);

	sc->retain = false;
	while (sc->req_nsent)
		req_pop(sc);
	q_release(&sc->q, sc->q.sent);
	q_acct(sc, old);
}

static void sc_finish(struct sconn *sc);

/* Writes what is committed; never blocks. */
static void sc_flush(struct sconn *sc)
{
	struct st_shadow *sh = sc->sh;
	uint64_t old = q_bytes(&sc->q);

	while (sc->state == SC_UP && sc->q.sent < sc->q.commit) {
		struct iovec iov[IOV_MAX_SEND];
		struct msghdr mh = { .msg_iov = iov };
		struct qchunk *c = sc->q.head;
		uint64_t pos = sc->q.sent, lim = sc->q.commit, per = sh->ts[sc->target].per_conn;
		ssize_t n;
		int k = 0;

		if (sc->retain && per) {
			/* what the target would not process on this connection stays queued: it goes
			 * to the next connection when this one closes */
			if (sc->written >= per)
				break;
			if (sc->req_n - sc->req_nsent > per - sc->written)
				lim = req_at(sc, sc->req_nsent + (uint32_t)(per - sc->written) - 1)->end;
		}
		for (; c && k < IOV_MAX_SEND && pos < lim; c = c->next) {
			uint64_t end = c->off + c->len < lim ? c->off + c->len : lim;

			if (end <= pos)
				continue;
			iov[k].iov_base = c->data + (pos - c->off);
			iov[k].iov_len = (size_t)(end - pos);
			pos = end;
			k++;
		}
		mh.msg_iovlen = (size_t)k;
		n = sendmsg(sc->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			q_acct(sc, old);
			sc_close(sc, true);
			return;
		}
		sc->q.sent += (uint64_t)n;
		sh->st.bytes += (uint64_t)n;
		sc->progress_ns = st_mono_ns();
		while (sc->req_nsent < sc->req_n && req_at(sc, sc->req_nsent)->end <= sc->q.sent) {
			sc->req_nsent++;
			sc->written++;
			sh->st.replayed++;
		}
		if (!sc->retain) {
			while (sc->req_nsent)
				req_pop(sc);
			q_release(&sc->q, sc->q.sent);
		}
	}
	q_acct(sc, old);
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
	    (sc->retain && sc->req_n))
		return;
	if (!sc->q.sent) {
		sc_close(sc, false); /* nothing was ever sent: nothing to wait for */
		return;
	}
	shutdown(sc->fd, SHUT_WR);
	sc->shut = true;
	sc->linger_until = st_mono_ns() + ST_SHADOW_LINGER_NS;
}

static void sc_release(struct sconn *sc)
{
	sc_detach(sc);
	if (sc->state == SC_UP)
		sc_finish(sc);
}

static void resp_feed(struct sconn *sc, const uint8_t *buf, size_t len)
{
	struct st_shadow *sh = sc->sh;
	struct st_http_event ev;

	while (!sc->resp_broken) {
		size_t n = st_http__feed(&sc->resp, buf, len, &ev);

		buf += n;
		len -= n;
		switch (ev.type) {
		case ST_HTTP_EV_NEED_MORE:
			return;
		case ST_HTTP_EV_MSG_DONE:
			if (ev.head->flags & ST_HTTP_HF_INTERIM)
				break;
			sh->st.responses++;
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
			sc->answer_ns = st_mono_ns();
			if (!(ev.head->flags & ST_HTTP_HF_KEEP_ALIVE))
				sc->server_done = true;
			if (!(ev.head->flags & ST_HTTP_HF_KEEP_ALIVE) && sc->retain && sc->req_nsent &&
			    req_at(sc, 0)->keep_alive) {
				/* the target closes after this many requests, though the request did not
				 * ask for it: send no more than that per connection */
				struct target_state *ts = &sh->ts[sc->target];

				if (!ts->per_conn || sc->answered < ts->per_conn)
					ts->per_conn = sc->answered;
			}
			if (sc->retain && sc->req_nsent) {
				uint64_t old = q_bytes(&sc->q);

				q_release(&sc->q, req_at(sc, 0)->end);
				req_pop(sc);
				q_acct(sc, old);
				push_methods(sc);
				if (!sc->cc && !sc->req_n)
					sc_finish(sc); /* the last answer: now our FIN */
			}
			break;
		case ST_HTTP_EV_UPGRADED:
		case ST_HTTP_EV_ERROR:
			/* a tunnel, or a shadow answering garbage: count bytes only */
			sc->resp_broken = true;
			sc_noretain(sc);
			return;
		default:
			break;
		}
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
	uint64_t old_sc = q_bytes(&sc->q), old_n;
	struct sconn *n;

	if (!sc->retain || !sc->server_done || (!sc->req_n && !sc->msg_active))
		return;
	n = sc_new(sh, sc->cc, sc->slot, false);
	if (!n)
		return; /* sc_close counts them */
	/*
	 * The queue moves as it is, offsets included: on the new connection nothing is
	 * sent yet, so sent goes back to acked (the first unanswered byte).
	 */
	old_n = q_bytes(&n->q);
	n->q = sc->q;
	n->q.sent = n->q.acked;
	memset(&sc->q, 0, sizeof(sc->q));
	n->req = sc->req;
	n->req_cap = sc->req_cap;
	n->req_head = sc->req_head;
	n->req_n = sc->req_n;
	sc->req = NULL;
	sc->req_cap = sc->req_head = 0;
	n->msg_active = sc->msg_active;
	n->msg_start = sc->msg_start;
	n->last_sent = sc->last_sent;
	n->conn_id = sc->conn_id;
	sh->st.replayed -= sc->req_nsent; /* counted again when written again */
	sh->st.resent += sc->req_nsent;
	sc->req_n = sc->req_nsent = sc->req_npushed = 0;
	sc->msg_active = false;
	q_acct(sc, old_sc);
	q_acct(n, old_n);
	push_methods(n);
	if (sc->cc) {
		sc->cc->sc[sc->slot] = n;
		sc->cc = NULL;
	}
	if (n->state == SC_UP)
		sc_flush(n);
}

/* hup: the event said the peer closed; else a short read means the socket is drained. */
static void sc_read(struct sconn *sc, bool hup)
{
	struct st_shadow *sh = sc->sh;

	for (;;) {
		ssize_t n = recv(sc->fd, sh->rbuf, READ_BUF, MSG_DONTWAIT);

		if (n > 0) {
			sh->st.resp_bytes += (uint64_t)n;
			if (!sc->raw)
				resp_feed(sc, sh->rbuf, (size_t)n);
			/* edge-triggered: a short read emptied the queue; the next bytes bring a new
			 * edge. Saves the EAGAIN call per response. */
			if ((size_t)n < READ_BUF && !hup)
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
			target_failed(sc->sh, sc->target);
			sc_close(sc, true);
			return;
		}
		sc->state = SC_UP;
		sc->sh->ts[sc->target].fails = 0;
		sc->sh->ts[sc->target].retry_at = 0;
		sc->progress_ns = st_mono_ns();
	}
	if (sc->state == SC_UP && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		sc_read(sc, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
	if (sc->state == SC_UP)
		sc_flush(sc);
}

/* ---- requests ------------------------------------------------------------------------- */

static bool slot_on(const struct cconn *cc, unsigned slot)
{
	return cc->sflags[slot] & SL_ON;
}

/* The shadow connection for the next request of slot: the current one, or a new one. */
static struct sconn *cc_sconn(struct cconn *cc, unsigned slot)
{
	struct sconn *sc = cc->sc[slot];

	if (sc)
		return sc;
	sc = sc_new(cc->sh, cc, slot, false);
	cc->sc[slot] = sc;
	return sc;
}

enum drop_why { DROP_QUEUE, DROP_OTHER, DROP_GAP };

/* Cuts the request being framed off sc's queue: it will not be sent. */
static void msg_drop(struct sconn *sc, enum drop_why why)
{
	struct st_shadow *sh = sc->sh;
	uint64_t old = q_bytes(&sc->q);

	q_truncate(&sc->q, sc->msg_start);
	q_acct(sc, old);
	sc->msg_active = false;
	if (why == DROP_GAP) {
		sh->st.gaps_skipped++;
		return;
	}
	sh->st.dropped++;
	if (why == DROP_QUEUE)
		sh->st.dropped_queue++;
}

/* Appends to the request being framed; drops it when a cap is hit. */
static void msg_append(struct sconn *sc, const void *p, size_t n)
{
	struct st_shadow *sh = sc->sh;
	uint64_t old = q_bytes(&sc->q), cost = q_cost(&sc->q, n);

	if (old + cost > sh->cfg.conn_queue_max || sh->queued + cost > sh->cfg.max_queue) {
		msg_drop(sc, DROP_QUEUE);
		return;
	}
	if (q_append(&sc->q, p, n)) {
		q_acct(sc, old);
		msg_drop(sc, DROP_QUEUE);
		return;
	}
	q_acct(sc, old);
}

/* The request's slots that still hold it were lost to a gap or error: never sent. */
static void msg_abandon(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	if (cc->in_msg && cc->msg_pass) {
		for (s = 0; s < sh->nslots; s++) {
			struct sconn *sc = cc->sc[s];

			if (!sc || !sc->msg_active)
				continue;
			msg_drop(sc, DROP_GAP);
		}
	}
	cc->in_msg = false;
	cc->msg_pass = false;
}

static bool rate_ok(struct st_shadow *sh)
{
	uint64_t now;
	double burst;

	if (sh->cfg.rate <= 0)
		return true;
	now = st_mono_ns();
	burst = sh->cfg.rate < 1 ? 1 : sh->cfg.rate;
	if (sh->tokens_ns)
		sh->tokens += (double)(now - sh->tokens_ns) * sh->cfg.rate / 1e9;
	else
		sh->tokens = burst;
	sh->tokens_ns = now;
	if (sh->tokens > burst)
		sh->tokens = burst;
	if (sh->tokens < 1)
		return false;
	sh->tokens -= 1;
	return true;
}

static bool path_match(struct st_shadow *sh, const struct st_http_head *h)
{
	if (!sh->cfg.match_path && !sh->cfg.exclude_path)
		return true;
	if (h->target_len + 1 > sh->pbuf_size) {
		char *n = realloc(sh->pbuf, h->target_len + 1);

		if (!n)
			return false;
		sh->pbuf = n;
		sh->pbuf_size = h->target_len + 1;
	}
	memcpy(sh->pbuf, h->target, h->target_len);
	sh->pbuf[h->target_len] = 0;
	if (sh->cfg.match_path && regexec(sh->cfg.match_path, sh->pbuf, 0, NULL, 0))
		return false;
	if (sh->cfg.exclude_path && !regexec(sh->cfg.exclude_path, sh->pbuf, 0, NULL, 0))
		return false;
	return true;
}

static bool selected(struct st_shadow *sh, struct cconn *cc, const struct st_http_head *h)
{
	const struct st_shadow_config *cfg = &sh->cfg;

	if (cfg->safe_only && h->method != ST_HTTP_M_GET && h->method != ST_HTTP_M_HEAD &&
	    h->method != ST_HTTP_M_OPTIONS)
		return false;
	if (cfg->n_methods) {
		unsigned i;

		for (i = 0; i < cfg->n_methods; i++)
			if (strlen(cfg->methods[i]) == h->method_len &&
			    !memcmp(cfg->methods[i], h->method_str, h->method_len))
				break;
		if (i == cfg->n_methods)
			return false;
	}
	if (cfg->sample_by_request && cfg->sample_pct < 100 &&
	    (double)(st_mix64(cc->hash ^ cc->req_index) % 10000) >= cfg->sample_pct * 100)
		return false;
	return path_match(sh, h);
}

/* The head to send: rewritten (marker, --host, --set-header) or as received. */
static const char *head_bytes(struct st_shadow *sh, const struct st_http_head *h, size_t *len)
{
	size_t need = (size_t)h->raw_len + 2 * (size_t)h->nheaders + 64;
	unsigned i;

	if (!sh->rewrite) {
		*len = h->raw_len;
		return h->raw;
	}
	for (i = 0; i < sh->rw.nset; i++)
		need += strlen(sh->rw.set[i].name) + strlen(sh->rw.set[i].value) + 4;
	if (sh->rw.host)
		need += strlen(sh->rw.host) + 8;
	if (sh->rw.marker_name)
		need += strlen(sh->rw.marker_name) + strlen(sh->rw.marker_value) + 4;
	for (i = 0; i < 4; i++) {
		ssize_t n;

		if (need > sh->hbuf_size) {
			char *b = realloc(sh->hbuf, need);

			if (!b)
				return NULL;
			sh->hbuf = b;
			sh->hbuf_size = need;
		}
		n = st_http__head_rewrite(h, &sh->rw, sh->hbuf, sh->hbuf_size);
		if (n >= 0) {
			*len = (size_t)n;
			return sh->hbuf;
		}
		if (n != -ENOSPC)
			return NULL;
		need *= 2;
	}
	return NULL;
}

static void msg_head(struct cconn *cc, const struct st_http_head *h)
{
	struct st_shadow *sh = cc->sh;
	const char *hb;
	size_t hl = 0;
	unsigned s;

	sh->st.requests++;
	cc->resyncing = false;
	cc->in_msg = true;
	cc->msg_pass = false;
	cc->msg_method = h->method;
	cc->msg_flags = h->flags;
	cc->req_index++;
	for (s = 0; s < sh->nslots; s++)
		if (cc->sc[s])
			cc->sc[s]->last_sent = false;
	if (!selected(sh, cc, h)) {
		sh->st.filtered++;
		return;
	}
	cc->msg_pass = true;
	if (!rate_ok(sh)) {
		for (s = 0; s < sh->nslots; s++) {
			if (slot_on(cc, s)) {
				sh->st.dropped++;
				sh->st.dropped_rate++;
			}
		}
		cc->msg_pass = false;
		return;
	}
	hb = head_bytes(sh, h, &hl);
	for (s = 0; s < sh->nslots; s++) {
		struct sconn *sc;

		if (!slot_on(cc, s))
			continue;
		sc = hb ? cc_sconn(cc, s) : NULL;
		if (!sc) {
			sh->st.dropped++;
			sh->st.dropped_down++;
			if (!hb)
				sh->st.errors++;
			continue;
		}
		sc->msg_active = true;
		sc->msg_start = sc->q.end;
		msg_append(sc, hb, hl);
	}
}

static void msg_body(struct cconn *cc, const uint8_t *p, size_t n)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	if (!cc->msg_pass)
		return;
	for (s = 0; s < sh->nslots; s++) {
		struct sconn *sc = cc->sc[s];

		if (sc && sc->msg_active)
			msg_append(sc, p, n);
	}
}

static void msg_done(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	/* Not keep-alive: the shadow closes after answering; later requests need a new one. */
	bool final = !(cc->msg_flags & (ST_HTTP_HF_KEEP_ALIVE | ST_HTTP_HF_UPGRADE));
	unsigned s;

	cc->in_msg = false;
	if (!cc->msg_pass)
		return;
	cc->msg_pass = false;
	for (s = 0; s < sh->nslots; s++) {
		struct sconn *sc = cc->sc[s];

		if (!sc || !sc->msg_active)
			continue;
		sc->msg_active = false;
		if (req_push(sc, sc->q.end, cc->msg_method, !final)) {
			msg_drop(sc, DROP_OTHER);
			continue;
		}
		if (sc->q.sent == sc->q.commit)
			sc->progress_ns = st_mono_ns(); /* the stall clock starts with the first waiting byte */
		sc->q.commit = sc->q.end;
		sc->last_sent = true;
		push_methods(sc);
		if (final)
			sc_detach(sc);
		sc_mark(sc);
	}
}

/* Raw bytes (raw mode, or after an upgrade) go out as they come. */
static void raw_bytes(struct cconn *cc, const uint8_t *p, size_t n)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	for (s = 0; s < sh->nslots; s++) {
		struct sconn *sc = cc->sc[s];
		uint64_t old;

		if (!sc || !sc->raw)
			continue;
		old = q_bytes(&sc->q);
		if (old + q_cost(&sc->q, n) > sh->cfg.conn_queue_max ||
		    sh->queued + q_cost(&sc->q, n) > sh->cfg.max_queue ||
		    q_append(&sc->q, p, n)) {
			/* a byte stream cannot skip bytes: this shadow connection ends here */
			q_acct(sc, old);
			sh->st.raw_closed++;
			sh->st.dropped++;
			sh->st.dropped_queue++;
			sc_close(sc, false);
			continue;
		}
		if (sc->q.sent == sc->q.commit)
			sc->progress_ns = st_mono_ns(); /* the stall clock starts with the first waiting byte */
		sc->q.commit = sc->q.end;
		q_acct(sc, old);
		sc_mark(sc);
	}
}

static void raw_close_all(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	for (s = 0; s < sh->nslots; s++) {
		struct sconn *sc = cc->sc[s];

		if (sc && sc->raw) {
			sh->st.raw_closed++;
			sc_release(sc);
		}
	}
}

static void http_feed(struct cconn *cc, const uint8_t *buf, size_t len)
{
	struct st_shadow *sh = cc->sh;
	struct st_http_event ev;
	unsigned s;

	for (;;) {
		size_t n = st_http__feed(&cc->req, buf, len, &ev);
		const uint8_t *p = buf;

		buf += n;
		len -= n;
		switch (ev.type) {
		case ST_HTTP_EV_NEED_MORE:
			return;
		case ST_HTTP_EV_HEAD:
			msg_head(cc, ev.head);
			break;
		case ST_HTTP_EV_BODY:
			if (n)
				msg_body(cc, p, n);
			break;
		case ST_HTTP_EV_MSG_DONE:
			msg_done(cc);
			break;
		case ST_HTTP_EV_UPGRADED:
			sh->st.upgrades++;
			for (s = 0; s < sh->nslots; s++) {
				struct sconn *sc = cc->sc[s];

				if (!sc)
					continue;
				if (sc->last_sent && !sh->cfg.safe_only) {
					sc->raw = true;
					sc_noretain(sc);
				} else
					sc_release(sc);
			}
			break;
		case ST_HTTP_EV_RAW:
			raw_bytes(cc, p, n);
			break;
		case ST_HTTP_EV_ERROR:
			sh->st.malformed++;
			msg_abandon(cc);
			st_http__resync(&cc->req, false);
			cc->resyncing = true;
			sh->st.resyncs++;
			break;
		default:
			break;
		}
	}
}

/* Starts raw replay of the connection on every slot it is shared with. */
static void raw_start(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;
	unsigned s;

	cc->mode = CM_RAW;
	sh->st.conns_raw++;
	if (sh->cfg.safe_only || (cc->c->flags & ST_REASM_F_JOINED)) {
		/* a byte stream joined midway cannot be replayed; raw writes are not "safe" */
		cc->mode = CM_OFF;
		sh->st.conns_skipped++;
		return;
	}
	for (s = 0; s < sh->nslots; s++) {
		if (!slot_on(cc, s))
			continue;
		cc->sc[s] = sc_new(sh, cc, s, true);
		if (!cc->sc[s]) {
			sh->st.dropped++;
			sh->st.dropped_down++;
		}
	}
}

static void http_start(struct cconn *cc)
{
	cc->mode = CM_HTTP;
	cc->sh->st.conns_http++;
	if (cc->c->flags & ST_REASM_F_JOINED) {
		/* joined midway: start at the first request boundary */
		st_http__resync(&cc->req, true);
		cc->resyncing = true;
		cc->sh->st.resyncs++;
	}
}

static void cc_data(struct cconn *cc, const uint8_t *data, uint32_t len)
{
	enum st_http_scan sc;
	size_t off = 0;

	if (cc->mode == CM_DETECT) {
		enum st_shadow_proto p = cc->sh->cfg.proto;

		if (p == ST_PROTO_HTTP || (p == ST_PROTO_AUTO && (cc->c->flags & ST_REASM_F_JOINED))) {
			http_start(cc);
		} else if (p == ST_PROTO_RAW) {
			raw_start(cc);
		} else {
			uint32_t n = len < DETECT_MAX - cc->det_len ? len : DETECT_MAX - cc->det_len;

			if (!cc->det && !(cc->det = malloc(DETECT_MAX))) {
				cc->mode = CM_OFF;
				return;
			}
			memcpy(cc->det + cc->det_len, data, n);
			cc->det_len += n;
			data += n;
			len -= n;
			sc = st_http__scan_start(ST_HTTP_REQUEST, cc->det, cc->det_len, DETECT_MAX,
						 &off);
			if (sc == ST_HTTP_SCAN_PARTIAL && off == 0 && cc->det_len < DETECT_MAX)
				return;
			if (sc == ST_HTTP_SCAN_FOUND && off == 0) {
				http_start(cc);
				http_feed(cc, cc->det, cc->det_len);
			} else {
				raw_start(cc);
				if (cc->mode == CM_RAW)
					raw_bytes(cc, cc->det, cc->det_len);
			}
			free(cc->det);
			cc->det = NULL;
			cc->det_len = 0;
		}
	}
	if (!len)
		return;
	if (cc->mode == CM_HTTP)
		http_feed(cc, data, len);
	else if (cc->mode == CM_RAW)
		raw_bytes(cc, data, len);
}

static void cc_gap(struct cconn *cc)
{
	struct st_shadow *sh = cc->sh;

	switch (cc->mode) {
	case CM_DETECT:
		free(cc->det);
		cc->det = NULL;
		cc->det_len = 0;
		if (sh->cfg.proto == ST_PROTO_RAW) {
			cc->mode = CM_OFF;
			sh->st.conns_skipped++;
			return;
		}
		http_start(cc);
		st_http__resync(&cc->req, true);
		cc->resyncing = true;
		sh->st.resyncs++;
		return;
	case CM_HTTP:
		if (cc->in_msg) {
			msg_abandon(cc);
		} else if (!cc->resyncing && st_http__pending(&cc->req)) {
			/* a head cut by the gap: a request we will never see whole */
			sh->st.requests++;
			sh->st.gaps_skipped++;
		}
		raw_close_all(cc); /* after an upgrade the stream is raw: it ends here */
		st_http__resync(&cc->req, true);
		cc->resyncing = true;
		sh->st.resyncs++;
		return;
	case CM_RAW:
		raw_close_all(cc);
		cc->mode = CM_OFF;
		return;
	default:
		return;
	}
}

/* ---- reassembly callbacks ----------------------------------------------------------------- */

static void on_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct st_shadow *sh = ctx;
	struct cconn *cc = calloc(1, sizeof(*cc) + sh->nslots * (sizeof(struct sconn *) + 1));
	unsigned s, h100;
	bool any = false;

	if (!cc) {
		sh->st.errors++;
		return;
	}
	cc->sh = sh;
	cc->c = c;
	cc->sflags = (uint8_t *)&cc->sc[sh->nslots];
	cc->hash = conn_hash(&c->key);
	st_http__init(&cc->req, ST_HTTP_REQUEST, NULL);
	c->user = cc;
	sh->st.conns++;
	h100 = (unsigned)(st_mix64(cc->hash ^ 0x7461726765747321ull) % 100);
	for (s = 0; s < sh->nslots; s++) {
		const struct target_state *t = &sh->ts[s / sh->cfg.multiply];

		if (!sh->cfg.targets[s / sh->cfg.multiply].pct || (h100 >= t->lo && h100 < t->hi)) {
			cc->sflags[s] |= SL_ON;
			any = true;
		}
	}
	if (!any || (!sh->cfg.sample_by_request && sh->cfg.sample_pct < 100 &&
		     (double)(cc->hash % 10000) >= sh->cfg.sample_pct * 100)) {
		cc->mode = CM_OFF;
		sh->st.conns_skipped++;
	}
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *data,
		    uint32_t len, uint64_t ts)
{
	struct cconn *cc = c->user;

	if (!cc || dir != ST_DIR_IN || cc->mode == CM_OFF)
		return;
	cc_data(cc, data, len);
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct st_shadow *sh = ctx;
	struct cconn *cc = c->user;

	if (!cc || dir != ST_DIR_IN)
		return;
	sh->st.gap_bytes += len;
	if (cc->mode != CM_OFF)
		cc_gap(cc);
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct st_shadow *sh = ctx;
	struct cconn *cc = c->user;
	unsigned s;

	if (!cc)
		return;
	if (cc->mode == CM_DETECT && cc->det_len) {
		/* too few bytes to tell: whatever they are, replay them as they were */
		uint8_t *d = cc->det;
		uint32_t n = cc->det_len;

		cc->det = NULL;
		cc->det_len = 0;
		raw_start(cc);
		if (cc->mode == CM_RAW)
			raw_bytes(cc, d, n);
		free(d);
	}
	if (cc->mode == CM_HTTP)
		msg_abandon(cc); /* a request cut by the end of the stream */
	for (s = 0; s < sh->nslots; s++)
		if (cc->sc[s])
			sc_release(cc->sc[s]);
	st_http__free(&cc->req);
	free(cc->det);
	c->user = NULL;
	free(cc);
}

static const struct st_reasm_ops shadow_ops = {
	.open = on_open,
	.data = on_data,
	.gap = on_gap,
	.close = on_close,
};

/* ---- the engine ----------------------------------------------------------------------------- */

struct st_shadow *st_shadow__new(const struct st_shadow_config *cfg)
{
	struct st_shadow *sh = calloc(1, sizeof(*sh));
	struct st_reasm_config rc = { 0 };
	unsigned t, acc = 0;
	int err;

	if (!sh)
		return NULL;
	sh->cfg = *cfg;
	sh->epfd = -1;
	if (!sh->cfg.multiply)
		sh->cfg.multiply = 1;
	if (!sh->cfg.conn_queue_max)
		sh->cfg.conn_queue_max = ST_SHADOW_CONN_QUEUE_DEFAULT;
	if (!sh->cfg.max_queue)
		sh->cfg.max_queue = ST_SHADOW_MAX_QUEUE_DEFAULT;
	if (sh->cfg.sample_pct <= 0 || sh->cfg.sample_pct > 100)
		sh->cfg.sample_pct = 100;
	sh->nslots = sh->cfg.n_targets * sh->cfg.multiply;
	if (!sh->cfg.n_targets || sh->nslots > ST_SHADOW_MAX_SLOTS) {
		free(sh);
		errno = EINVAL;
		return NULL;
	}
	for (t = 0; t < sh->cfg.n_targets; t++) {
		if (!sh->cfg.targets[t].pct)
			continue;
		sh->ts[t].lo = acc;
		acc += sh->cfg.targets[t].pct;
		sh->ts[t].hi = acc > 100 ? 100 : acc;
	}
	sh->rw.set = sh->cfg.set;
	sh->rw.nset = sh->cfg.n_set;
	sh->rw.host = sh->cfg.host;
	sh->rw.marker_name = sh->cfg.mark_name;
	sh->rw.marker_value = sh->cfg.mark_value ? sh->cfg.mark_value : "1";
	if (!sh->cfg.mark_name)
		sh->rw.marker_value = NULL;
	sh->rewrite = sh->rw.nset || sh->rw.host || sh->rw.marker_name;
	sh->rbuf = malloc(READ_BUF);
	sh->epfd = epoll_create1(EPOLL_CLOEXEC);
	rc.ports = sh->cfg.ports;
	rc.n_ports = sh->cfg.n_ports;
	rc.max_mem = sh->cfg.reasm_max_mem;
	rc.hash_seed = sh->cfg.hash_seed;
	sh->r = st_reasm__new(&rc, &shadow_ops, sh);
	if (!sh->rbuf || sh->epfd < 0 || !sh->r)
		goto fail;
	return sh;
fail:
	err = errno ? errno : ENOMEM;
	st_shadow__free(sh);
	errno = err;
	return NULL;
}

void st_shadow__free(struct st_shadow *sh)
{
	if (!sh)
		return;
	/* no callbacks: captured connections are freed by hand below */
	if (sh->r) {
		st_reasm__flush(sh->r);
		st_reasm__free(sh->r);
	}
	while (sh->live)
		sc_close(sh->live, false);
	while (sh->dirty) {
		struct sconn *sc = sh->dirty;

		sh->dirty = sc->dnext;
		sc->dirty = false;
	}
	free_dead(sh);
	if (sh->epfd >= 0)
		close(sh->epfd);
	free(sh->own);
	free(sh->hbuf);
	free(sh->pbuf);
	free(sh->rbuf);
	free(sh);
}

/*
 * With connection sampling, a connection left out costs nothing beyond this:
 * its segments never reach reassembly. The client->server key is known from
 * the capture direction, or (pcap) from the service's ports.
 */
static bool sampled_out(const struct st_shadow *sh, const struct st_segment *seg)
{
	struct st_flow_key k;
	bool swap;

	if (sh->cfg.sample_pct >= 100 || sh->cfg.sample_by_request)
		return false;
	if (seg->dir == ST_DIR_IN || seg->dir == ST_DIR_OUT) {
		swap = seg->dir == ST_DIR_OUT;
	} else {
		bool d = false, s_ = false;
		size_t i;

		for (i = 0; i < sh->cfg.n_ports; i++) {
			d |= seg->key.dport == sh->cfg.ports[i];
			s_ |= seg->key.sport == sh->cfg.ports[i];
		}
		if (d == s_)
			return false; /* cannot tell: reassembly decides */
		swap = s_;
	}
	if (!swap) {
		k = seg->key;
	} else {
		memset(&k, 0, sizeof(k));
		k.src = seg->key.dst;
		k.dst = seg->key.src;
		k.sport = seg->key.dport;
		k.dport = seg->key.sport;
	}
	return (double)(conn_hash(&k) % 10000) >= sh->cfg.sample_pct * 100;
}

void st_shadow__feed(struct st_shadow *sh, const struct st_segment *seg)
{
	if (st_shadow__own(sh, seg)) {
		sh->st.own_segments++;
		return;
	}
	if (sampled_out(sh, seg)) {
		sh->st.sampled_out_segments++;
		if ((seg->flags & (ST_TCP_SYN | ST_TCP_ACK)) == ST_TCP_SYN) {
			/* counted by their SYN (those joined midway are not) */
			sh->st.conns++;
			sh->st.conns_skipped++;
		}
		return;
	}
	st_reasm__feed(sh->r, seg);
	free_dead(sh);
}

void st_shadow__flush(struct st_shadow *sh)
{
	st_reasm__flush(sh->r);
	kick(sh);
	free_dead(sh);
}

void st_shadow__kick(struct st_shadow *sh)
{
	kick(sh);
	free_dead(sh);
}

int st_shadow__fd(const struct st_shadow *sh)
{
	return sh->epfd;
}

static int do_poll(struct st_shadow *sh, int timeout_ms)
{
	struct epoll_event evs[EVENTS_MAX];
	int n, i;

	kick(sh);
	n = epoll_wait(sh->epfd, evs, EVENTS_MAX, timeout_ms);
	for (i = 0; i < n; i++) {
		struct sconn *sc = evs[i].data.ptr;

		/* a connection closed earlier in this batch sits on the dead list: skip it */
		if (sc->state != SC_DEAD)
			sc_event(sc, evs[i].events);
	}
	free_dead(sh);
	return n < 0 && errno != EINTR ? -errno : 0;
}

int st_shadow__io(struct st_shadow *sh)
{
	int r = do_poll(sh, 0);

	return r < 0 ? r : 0;
}

int st_shadow__poll(struct st_shadow *sh, int timeout_ms)
{
	return do_poll(sh, timeout_ms);
}

void st_shadow__tick(struct st_shadow *sh, uint64_t now_real_ns)
{
	uint64_t now = st_mono_ns();
	struct sconn *sc, *nx;

	if (sh->cfg.live && now_real_ns)
		st_reasm__tick(sh->r, now_real_ns);
	kick(sh);
	for (sc = sh->live; sc; sc = nx) {
		nx = sc->next;
		if (sc->state == SC_CONNECTING && now - sc->progress_ns > CONNECT_TIMEOUT_NS) {
			target_failed(sh, sc->target);
			sc_close(sc, true);
		} else if (sc->state == SC_UP && sc->q.sent < sc->q.commit &&
			   now - sc->progress_ns > ST_SHADOW_STALL_NS) {
			/* the shadow stopped reading: free its queue, production must not wait */
			sc_close(sc, true);
		} else if (sc->shut && now > sc->linger_until) {
			sc_close(sc, false);
		} else if (sc->state == SC_UP && !sc->cc && !sc->shut && sc->req_n &&
			   sc->q.sent == sc->q.end &&
			   now - (sc->answer_ns > sc->progress_ns ? sc->answer_ns : sc->progress_ns) >
				   ST_SHADOW_LINGER_NS) {
			/* detached, all written, answers stopped coming: give up on them */
			sc_close(sc, false);
		} else if (sc->state == SC_UP && sc->retain && sh->ts[sc->target].per_conn &&
			   sc->written >= sh->ts[sc->target].per_conn && !sc->req_nsent &&
			   sc->req_n && now - sc->answer_ns > PER_CONN_WAIT_NS) {
			/* everything answered and no close: the learned limit does not hold */
			sh->ts[sc->target].per_conn = 0;
			sc_flush(sc);
		}
	}
	if (now - sh->last_gc > GC_EVERY_NS) {
		sh->last_gc = now;
		if (sh->own_cap)
			own_rebuild(sh, sh->own_cap, now);
	}
	free_dead(sh);
}

bool st_shadow__idle(const struct st_shadow *sh)
{
	return !sh->live;
}

bool st_shadow__busy(const struct st_shadow *sh)
{
	return sh->n_congested || sh->queued > sh->cfg.max_queue / 2;
}

void st_shadow__drain(struct st_shadow *sh, int timeout_ms)
{
	uint64_t end = st_mono_ns() + (uint64_t)timeout_ms * 1000000;

	while (sh->live && st_mono_ns() < end) {
		do_poll(sh, 50);
		st_shadow__tick(sh, 0);
	}
	while (sh->live)
		sc_close(sh->live, false);
	free_dead(sh);
}

void st_shadow__stats(const struct st_shadow *sh, struct st_shadow_stats *out)
{
	*out = sh->st;
	out->shadow_conns = sh->n_live;
	out->queued = sh->queued;
}

void st_shadow__format(const struct st_shadow_stats *s, char *buf, size_t len)
{
	snprintf(buf, len,
		 "requests=%" PRIu64 " replayed=%" PRIu64 " dropped=%" PRIu64 " errors=%" PRIu64
		 " filtered=%" PRIu64 " gaps_skipped=%" PRIu64 " resyncs=%" PRIu64
		 " dropped_queue=%" PRIu64 " dropped_down=%" PRIu64 " dropped_rate=%" PRIu64
		 " responses=%" PRIu64 " resent=%" PRIu64 " unanswered=%" PRIu64
		 " bytes=%" PRIu64 " resp_bytes=%" PRIu64
		 " connections=%" PRIu64 " http=%" PRIu64 " raw=%" PRIu64 " skipped_conns=%" PRIu64
		 " upgrades=%" PRIu64 " raw_closed=%" PRIu64 " malformed=%" PRIu64
		 " connects=%" PRIu64 " reconnects=%" PRIu64 " gap_bytes=%" PRIu64
		 " own_segments=%" PRIu64 " sampled_out_segments=%" PRIu64 " queued=%" PRIu64
		 " queued_peak=%" PRIu64,
		 s->requests, s->replayed, s->dropped, s->errors, s->filtered, s->gaps_skipped,
		 s->resyncs, s->dropped_queue, s->dropped_down, s->dropped_rate, s->responses,
		 s->resent, s->unanswered, s->bytes, s->resp_bytes, s->conns, s->conns_http, s->conns_raw, s->conns_skipped,
		 s->upgrades, s->raw_closed, s->malformed, s->connects, s->reconnects,
		 s->gap_bytes, s->own_segments, s->sampled_out_segments, s->queued, s->queued_peak);
}

int st_shadow_parse_target(const char *s, struct st_shadow_target *t, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char buf[300], *host, *port, *slash, *end;
	unsigned long pct = 0, pn;
	int r;

	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", s);
	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		errno = 0;
		pct = strtoul(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || pct < 1 || pct > 100) {
			snprintf(err, errlen, "'%s': the share after / must be 1..100", s);
			return -1;
		}
	}
	if (buf[0] == '[') {
		host = buf + 1;
		end = strchr(host, ']');
		if (!end || end[1] != ':')
			goto bad;
		*end = 0;
		port = end + 2;
	} else {
		host = buf;
		port = strrchr(buf, ':');
		if (!port)
			goto bad;
		*port++ = 0;
	}
	pn = strtoul(port, &end, 10);
	if (!*host || !*port || *end || strspn(port, "0123456789") != strlen(port) || !pn ||
	    pn > 65535)
		goto bad;
	t->pct = (unsigned)pct;
	r = getaddrinfo(host, port, &hints, &ai);
	if (r || !ai) {
		snprintf(err, errlen, "'%s': cannot resolve %s: %s", s, host, gai_strerror(r));
		return -1;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not HOST:PORT[/PCT] (IPv6: [ADDR]:PORT)", s);
	return -1;
}

/* (faults work: a getter only, so the memory bound can be checked from the summary line;
 * the engine itself is untouched) */
void st_shadow__reasm_mem(const struct st_shadow *sh, uint64_t *mem, uint64_t *peak)
{
	struct st_reasm_stats rs;

	st_reasm__stats(sh->r, &rs);
	*mem = rs.mem;
	*peak = rs.mem_peak;
}
