/* SPDX-License-Identifier: GPL-2.0-only */
/* The receiving end of the tee link: handshakes that never block, bounded (linklisten.h). */
#include "linklisten.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "opts.h"
#include "stream.h"

ST_STAT_TABLE_DEFINE(st_linklisten_stat, struct st_linklisten_stats, ST_LINKLISTEN_STATS);

/* Accepts per st_linklisten__run: a flood of connections leaves the loop its other work. */
#define LL_ACCEPTS_PER_RUN 64
/* After accept() failed for want of descriptors: not asked again before this (a readable
 * listening socket would otherwise wake the loop at once, forever). */
#define LL_ACCEPT_PAUSE_NS (100ull * 1000000)
/* epoll tag of the listening socket (peers use their index) */
#define LL_TAG_LISTEN ((uint64_t)-1)

enum ll_why {
	LL_CLOSED, LL_HANDSHAKE, LL_CERT, LL_NOT_TEE, LL_TIMEOUT, LL_CROWDED, LL_BUSY, LL_WHY_MAX
};

enum ll_state {
	LL_FREE = 0,
	LL_TLS,       /* the TLS handshake */
	LL_SEND_OK,   /* ST_STREAM_LINK_OK to write */
	LL_PREAMBLE,  /* the stream's preamble to read */
};

struct peer {
	enum ll_state state;
	int fd;
	struct st_tlslink *tls;
	uint64_t since;               /* accepted (monotonic ns) */
	uint64_t seq;                 /* accept order: the oldest goes first */
	uint8_t key[17];              /* family, then the address (IPv6: its /64) */
	char name[64];                /* "ADDR:PORT" for messages */
	uint32_t events;              /* what epoll waits for on fd */
	uint8_t pre[ST_STREAM_PREAMBLE_LEN];
	unsigned have;
};

struct st_linklisten {
	struct st_linklisten_config cfg;
	char what[256];               /* cfg.what, the listener's own copy */
	struct st_tlslink_ctx *tls;
	int lfd, epfd;
	bool busy, listening;
	uint64_t paused_until;        /* accepting again after this (0: not paused) */
	uint64_t seq;
	unsigned n;                   /* peers now */
	bool said[LL_WHY_MAX];
	bool said_accept;
	struct st_linklisten_stats st;
	struct peer *peers;           /* cfg.max_pending */
};

static int listen_socket(const char *hostport, char *err, size_t errlen)
{
	char host[256], port[8];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	int fd, rc, one = 1;

	if (st_opts_split_hostport(hostport, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "not ADDR:PORT");
		return -1;
	}
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s", gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* the kernel's default backlog: a burst of connections waits there, not refused */
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, SOMAXCONN)) {
		snprintf(err, errlen, "%s", strerror(errno));
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct st_linklisten *st_linklisten__new(const struct st_linklisten_config *c, char *err,
					 size_t errlen)
{
	struct st_linklisten *l = calloc(1, sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = LL_TAG_LISTEN };

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->cfg = *c;
	snprintf(l->what, sizeof(l->what), "%s", c->what ? c->what : "--listen");
	l->cfg.what = l->what;
	l->lfd = l->epfd = -1;
	if (!l->cfg.timeout_ns)
		l->cfg.timeout_ns = ST_LINKLISTEN_TIMEOUT_NS;
	if (!l->cfg.max_pending)
		l->cfg.max_pending = ST_LINKLISTEN_MAX_PENDING;
	if (!l->cfg.max_per_addr)
		l->cfg.max_per_addr = ST_LINKLISTEN_MAX_PER_ADDR;
	l->peers = calloc(l->cfg.max_pending, sizeof(*l->peers));
	if (!l->peers) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* the certificate, key and CA once, now: a wrong file is said at start, and a flood
	 * of strangers does not make the receiver read them again and again */
	if (c->tls && !(l->tls = st_tlslink_ctx__new(c->tls, true, err, errlen)))
		goto fail;
	l->lfd = listen_socket(c->addr, err, errlen);
	if (l->lfd < 0)
		goto fail;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->lfd, &ev)) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		goto fail;
	}
	l->listening = true;
	return l;
fail:
	st_linklisten__free(l);
	return NULL;
}

unsigned st_linklisten__port(const struct st_linklisten *l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(l->lfd, (struct sockaddr *)&ss, &sl))
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						((struct sockaddr_in *)&ss)->sin_port);
}

int st_linklisten__fd(const struct st_linklisten *l)
{
	return l->epfd;
}

void st_linklisten__busy(struct st_linklisten *l, bool busy)
{
	l->busy = busy;
}

void st_linklisten__stats(const struct st_linklisten *l, struct st_linklisten_stats *st)
{
	*st = l->st;
}

static void peer_close(struct st_linklisten *l, struct peer *p)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	st_tlslink__free(p->tls);
	close(p->fd);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	l->n--;
}

/* A refusal: counted by reason, said once per reason (naming the first peer refused so). */
static void refused(struct st_linklisten *l, const char *name, enum ll_why why, const char *text)
{
	uint64_t *by[LL_WHY_MAX] = {
		[LL_CLOSED] = &l->st.rejected_closed, [LL_HANDSHAKE] = &l->st.rejected_handshake,
		[LL_CERT] = &l->st.rejected_cert, [LL_NOT_TEE] = &l->st.rejected_not_tee,
		[LL_TIMEOUT] = &l->st.rejected_timeout, [LL_CROWDED] = &l->st.rejected_crowded,
		[LL_BUSY] = &l->st.rejected_busy,
	};

	l->st.rejected_peers++;
	(*by[why])++;
	if (!l->said[why]) {
		l->said[why] = true;
		pr_warn("%s: refused %s: %s (said once: rejected_peers counts every refusal)",
			l->cfg.what, name, text);
	}
}

static void reject(struct st_linklisten *l, struct peer *p, enum ll_why why, const char *text)
{
	refused(l, p->name, why, text);
	peer_close(l, p);
}

/* What epoll waits for on p's socket. */
static void want(struct st_linklisten *l, struct peer *p, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)(p - l->peers) };

	if (p->events == events)
		return;
	if (!epoll_ctl(l->epfd, EPOLL_CTL_MOD, p->fd, &ev))
		p->events = events;
}

/* Takes every step of p's that its socket allows now. */
static void step(struct st_linklisten *l, struct peer *p)
{
	char err[512];

	for (;;) {
		switch (p->state) {
		case LL_TLS: {
			enum st_tlslink_step s = st_tlslink__handshake(p->tls, err, sizeof(err));

			if (s == ST_TLSLINK_WANT_READ || s == ST_TLSLINK_WANT_WRITE) {
				want(l, p, s == ST_TLSLINK_WANT_READ ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (s != ST_TLSLINK_DONE) {
				reject(l, p, s == ST_TLSLINK_CLOSED ? LL_CLOSED :
					     s == ST_TLSLINK_REFUSED ? LL_CERT : LL_HANDSHAKE, err);
				return;
			}
			p->state = LL_SEND_OK;
			break;
		}
		case LL_SEND_OK: {
			/* the tee waits for this before it sends its stream (stream.h): with TLS
			 * 1.3 its handshake ends before this end has checked its certificate */
			char k = ST_STREAM_LINK_OK;
			int rc = p->tls ? st_tlslink__write(p->tls, &k, 1) :
					  write(p->fd, &k, 1) == 1 ? 0 : -errno;

			if (rc == -EAGAIN || rc == -EINTR) {
				want(l, p, EPOLLOUT);
				return;
			}
			if (rc) {
				snprintf(err, sizeof(err), "it went away (%s)", strerror(-rc));
				reject(l, p, LL_CLOSED, err);
				return;
			}
			p->state = LL_PREAMBLE;
			break;
		}
		case LL_PREAMBLE: {
			size_t m = sizeof(p->pre) - p->have;
			ssize_t n = p->tls ? st_tlslink__read(p->tls, p->pre + p->have, m) :
					     read(p->fd, p->pre + p->have, m);

			if (!p->tls && n < 0)
				n = -errno;
			if (n == -EAGAIN || n == -EINTR) {
				want(l, p, EPOLLIN);
				return;
			}
			if (n <= 0) {
				snprintf(err, sizeof(err), "the connection ended before its stream "
					 "began (%s)", n ? strerror((int)-n) : "closed");
				reject(l, p, LL_CLOSED, err);
				return;
			}
			p->have += (unsigned)n;
			if (memcmp(p->pre, ST_STREAM_MAGIC, p->have < ST_STREAM_MAGIC_LEN ?
				   p->have : ST_STREAM_MAGIC_LEN)) {
				reject(l, p, LL_NOT_TEE, "what it sent is not a tee stream");
				return;
			}
			if (p->have < sizeof(p->pre))
				break;
			if (l->busy) {
				reject(l, p, LL_BUSY, "a tee is connected already (one at a time)");
				return;
			}
			{
				int fd = p->fd;
				struct st_tlslink *tls = p->tls;
				uint8_t pre[sizeof(p->pre)];

				memcpy(pre, p->pre, sizeof(pre));
				epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
				memset(p, 0, sizeof(*p));
				p->fd = -1;
				l->n--;
				l->cfg.on_tee(l->cfg.ctx, fd, tls, pre, sizeof(pre));
			}
			return;
		}
		default:
			return;
		}
	}
}

/* The peers' table key of an address: IPv4 (or v4-mapped) whole, IPv6 by its /64 (one
 * host's share of a network). */
static void addr_key(const struct sockaddr_storage *ss, uint8_t key[17], char *name,
		     size_t namelen)
{
	char a[INET6_ADDRSTRLEN] = "?";

	memset(key, 0, 17);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		key[0] = 4;
		memcpy(key + 1, &s4->sin_addr, 4);
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(name, namelen, "%s:%u", a, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, s6->sin6_addr.s6_addr, 8);
		}
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(name, namelen, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(name, namelen, "?");
	}
}

/* The oldest peer (of key's address when key is given). */
static struct peer *oldest(struct st_linklisten *l, const uint8_t *key)
{
	struct peer *o = NULL;

	for (unsigned i = 0; i < l->cfg.max_pending; i++) {
		struct peer *p = &l->peers[i];

		if (p->state == LL_FREE || (key && memcmp(p->key, key, sizeof(p->key))))
			continue;
		if (!o || p->seq < o->seq)
			o = p;
	}
	return o;
}

/* A new connection: a free place in the table, made by refusing an older peer if need be. */
static struct peer *place(struct st_linklisten *l, const uint8_t *key)
{
	unsigned same = 0;
	struct peer *p = NULL;
	char text[128];

	for (unsigned i = 0; i < l->cfg.max_pending; i++)
		if (l->peers[i].state != LL_FREE && !memcmp(l->peers[i].key, key, sizeof(l->peers[i].key)))
			same++;
	if (same >= l->cfg.max_per_addr)
		p = oldest(l, key);
	else if (l->n >= l->cfg.max_pending)
		p = oldest(l, NULL);
	if (p) {
		snprintf(text, sizeof(text), "crowded out by newer connections (%u at once from "
			 "one address, %u in all, at most)", l->cfg.max_per_addr,
			 l->cfg.max_pending);
		reject(l, p, LL_CROWDED, text);
		return p;
	}
	for (unsigned i = 0; i < l->cfg.max_pending; i++)
		if (l->peers[i].state == LL_FREE)
			return &l->peers[i];
	return NULL; /* not reached: n < max_pending */
}

static void accept_some(struct st_linklisten *l)
{
	for (int i = 0; i < LL_ACCEPTS_PER_RUN; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev = { .events = EPOLLIN };
		struct peer tmp = { .fd = -1 }, *p;
		int fd = accept4(l->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			if (errno == ECONNABORTED || errno == EPROTO) {
				/* it reset the connection while it waited to be accepted */
				refused(l, "a peer", LL_CLOSED, "it reset the connection before it was "
					"accepted");
				continue;
			}
			/* out of descriptors or memory: pause rather than spin on a socket that
			 * stays readable; the peers' timeouts free some */
			if (!l->said_accept) {
				l->said_accept = true;
				pr_warn("%s: accept: %s: pausing new connections for a moment",
					l->cfg.what, strerror(errno));
			}
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->lfd, NULL);
			l->listening = false;
			l->paused_until = st_loop_mono_ns() + LL_ACCEPT_PAUSE_NS;
			return;
		}
		tmp.fd = fd;
		addr_key(&ss, tmp.key, tmp.name, sizeof(tmp.name));
		if (l->busy) {
			/* one tee at a time: this one's handshake would be wasted work */
			refused(l, tmp.name, LL_BUSY, "a tee is connected already (one at a time)");
			close(fd);
			continue;
		}
		p = place(l, tmp.key);
		tmp.since = st_loop_mono_ns();
		tmp.seq = l->seq++;
		tmp.state = LL_SEND_OK;
		if (l->tls) {
			tmp.tls = st_tlslink__accept(l->tls, fd);
			tmp.state = LL_TLS;
		}
		ev.data.u64 = (uint64_t)(p - l->peers);
		if ((l->tls && !tmp.tls) || epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			st_tlslink__free(tmp.tls);
			close(fd);
			continue;
		}
		tmp.events = EPOLLIN;
		*p = tmp;
		l->n++;
		if (l->n > l->st.handshakes_peak)
			l->st.handshakes_peak = l->n;
		/* the peer's first bytes may be there already (a TLS ClientHello) */
		step(l, p);
	}
}

void st_linklisten__run(struct st_linklisten *l)
{
	struct epoll_event evs[32];
	int n = epoll_wait(l->epfd, evs, 32, 0);

	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64;

		if (tag == LL_TAG_LISTEN) {
			if (l->listening)
				accept_some(l);
		} else if (tag < l->cfg.max_pending && l->peers[tag].state != LL_FREE) {
			step(l, &l->peers[tag]);
		}
	}
}

void st_linklisten__tick(struct st_linklisten *l, uint64_t now_ns)
{
	char text[64];

	for (unsigned i = 0; i < l->cfg.max_pending; i++) {
		struct peer *p = &l->peers[i];

		if (p->state == LL_FREE || now_ns - p->since < l->cfg.timeout_ns)
			continue;
		snprintf(text, sizeof(text), "no %s within %.0f s",
			 p->state == LL_TLS ? "TLS handshake" : "tee stream",
			 (double)l->cfg.timeout_ns / 1e9);
		reject(l, p, LL_TIMEOUT, text);
	}
	if (!l->listening && now_ns >= l->paused_until) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = LL_TAG_LISTEN };

		if (!epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->lfd, &ev))
			l->listening = true;
	}
}

void st_linklisten__free(struct st_linklisten *l)
{
	if (!l)
		return;
	for (unsigned i = 0; l->peers && i < l->cfg.max_pending; i++)
		if (l->peers[i].state != LL_FREE)
			peer_close(l, &l->peers[i]);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->lfd >= 0)
		close(l->lfd);
	st_tlslink_ctx__free(l->tls);
	free(l->peers);
	free(l);
}
