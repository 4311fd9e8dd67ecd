/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shadow engine's insides, shared by its two halves:
 *  - shadow.c: the captured side. One cconn per captured client connection:
 *    frames the client's requests (http.c), stages each complete request until
 *    production's own answer shows it ran it (the arbiter), selects, and hands
 *    released requests to the shadow connections.
 *  - shadow_conn.c: the shadow side. One sconn per shadow connection: bounded
 *    queue, non-blocking socket I/O, the shadow's responses framed and counted,
 *    requests retried on a new connection when the shadow closes after N, and
 *    the table of the agent's own endpoints (never fed back).
 * Not part of the engine's API (shadow.h).
 */
#ifndef ST_SHADOW_INT_H
#define ST_SHADOW_INT_H

#include "bytequeue.h"
#include "compare.h"
#include "http.h"
#include "list.h"
#include "loop.h"
#include "reasm.h"
#include "shadow.h"

#define ST_SH_READ_BUF (64u * 1024)
/* Bytes read from one shadow connection per I/O turn: a shadow answering a flood (or a 100 MB
 * body) must not keep the agent from draining the ring. The rest waits for the next turn. */
#define ST_SH_READ_BUDGET (1u << 20)

/* SC_IDLE: a load test's connection not opened yet (its first request is not due, or it
 * waits for a free one under --connections). */
enum { SC_CONNECTING = 0, SC_UP, SC_DEAD, SC_IDLE };

/* A committed request on a shadow connection: where it ends, its method for the response parser. */
struct reqent {
	uint64_t end;
	uint8_t method;
	bool keep_alive;             /* the request itself let the connection persist */
	bool wait_prev;              /* load: not pipelined when recorded: goes once the answers
				      * before it are in */
	uint32_t tag;                /* load: what load->tag() said */
	struct st_cmp_pair *pair;    /* tap compare: the pair it belongs to (a reference held) */
	uint64_t due;                /* load: when it is due (CLOCK_MONOTONIC ns) */
	uint64_t sent_ns;            /* load: when it was written whole */
};

struct cconn;

struct sconn {
	struct st_shadow *sh;
	struct st_list_head node;    /* sh->live, or sh->dead once closed */
	struct cconn *cc;            /* NULL once detached */
	unsigned slot, target;
	int fd;
	uint8_t state;
	bool raw;                    /* bytes are a raw stream (raw mode or after an upgrade) */
	bool last_sent;              /* the latest released request went out on this connection */
	bool shut;                   /* our FIN is out: waiting for the shadow to close */
	bool resp_tunnel;            /* the shadow switched protocols: its bytes are counted only */
	bool retain;                 /* keep sent requests until answered (HTTP, responses framed):
				      * a shadow that closes after N answers (nginx's
				      * keepalive_requests) gets the rest on a new connection */
	bool congested;              /* counted in sh->n_congested */
	struct st_list_head dirty;   /* on sh->dirty: committed bytes wait for the next kick */
	struct st_list_head rd;      /* on sh->rd_pending: the read budget ran out */
	struct st_bq q;
	struct reqent *req;          /* ring: committed requests not yet answered (retain) or sent */
	uint32_t req_cap, req_head, req_n;
	uint32_t req_nsent;          /* the ring's first req_nsent requests are written whole */
	uint32_t req_npushed;        /* ... and the first req_npushed went to the response parser */
	uint32_t req_nready;         /* ... and the first req_nready are due (all, but in a load
				      * test): nsent <= nready */
	uint32_t heap_i;             /* load: its place + 1 in sh->due_heap (its first request not
				      * due yet); 0: not there */
	struct st_list_head wait;    /* load: on sh->conn_wait (--connections) */
	uint8_t fail;                /* load: enum st_shadow_fail, why it closes (set before) */
	uint16_t early_status;       /* load: the early answer's status and time */
	uint64_t early_ns;
	uint64_t last_due;           /* load: the last request's due time (they go in order) */
	uint64_t next_due;           /* load: its heap key: the first request not due yet's */
	uint64_t take_ns;            /* load: when requests last became due */
	uint64_t answered;           /* final responses on this connection */
	uint64_t written;            /* requests written whole on this connection */
	uint64_t answer_ns;          /* the last final response */
	uint64_t read_ns;            /* the last bytes read from the shadow */
	uint64_t poke_ns;            /* the last safety read (sh_conn_timers) */
	bool poked;                  /* this read is a safety read */
	bool server_done;            /* a response said Connection: close: nothing after it runs */
	bool early;                  /* the oldest request's final answer came before its last
				      * byte was written (a server may answer an upload without
				      * reading it: nginx's `return 200`): it leaves the ring once
				      * written whole */
	uint64_t progress_ns;        /* created, or the last write that moved bytes */
	uint64_t linger_until;
	uint64_t conn_id;
	uint64_t resp_seq;
	struct st_addr laddr;
	uint16_t lport;
	struct st_http_parser resp;
	struct st_cmp_pair *cur_pair; /* tap compare: the pair of the answer being read */
	uint64_t rx_ns;               /* tap compare: when the bytes being parsed arrived
				       * (the kernel's receive stamp, CLOCK_REALTIME) */
};

/* A load test's pass cache (shadow.h, "A load test"): the first pass's released requests and
 * connection ends, in the order they happened, for the passes after it. */
enum { LC_REQ = 0, LC_CLOSE, LC_SWITCH };

struct lc_rec {
	uint32_t conn;               /* the connection's number in the first pass */
	uint8_t kind;                /* LC_* */
	uint8_t method;
	uint8_t slots;               /* the slots it goes to (a bit each) */
	bool pipelined;
	uint32_t flags;              /* its head's ST_HTTP_HF_* */
	uint32_t tag;
	uint64_t ts;
	uint64_t off, len;           /* its bytes in buf */
};

struct lcache {
	bool on;                     /* recording the first pass */
	bool full;                   /* it did not fit: given up (passes read the recording) */
	struct lc_rec *rec;
	size_t n, cap;
	uint8_t *buf;
	size_t len, bcap;
	uint32_t nconn;              /* connections numbered (the first pass's) */
	size_t nreq;                 /* requests kept */
	/* replaying a pass */
	size_t next;
	struct cconn **vc;           /* the pass's connections by number (NULL: none open) */
	uint64_t id_base;            /* the pass's connection ids start after every reasm id */
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
	struct st_list_head live, dead; /* open shadow connections; closed ones not yet freed */
	struct st_list_head dirty;   /* connections with new requests since the last kick, in order */
	struct st_list_head rd_pending; /* connections with bytes left to read (budget) */
	uint64_t n_live;
	uint64_t n_open;             /* load: connections with a socket (what max_conns caps) */
	struct sconn **due_heap;     /* load: min-heap of connections by their next due request */
	uint32_t due_n, due_cap;
	struct st_list_head conn_wait; /* load: connections due, waiting for a free one, in order */
	bool closing;                /* sh_close_all: what is not due yet is not moved on */
	struct lcache lc;            /* load: the first pass kept for the next ones */
	uint64_t queued;             /* bytes held by every queue: shadow connections and stages */
	uint64_t n_congested;
	struct st_shadow_stats st;
	struct st_http_rewrite rw;
	bool rewrite;
	bool no_arbiter;             /* production's answers are missing: strict framing alone */
	uint64_t prod_segments;      /* server->client segments seen (the arbiter's input) */
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
	uint8_t http_ports[65536 / 8]; /* --proto auto: HTTP was seen on this port */
};

/* Tap compare's side for a shadow connection: target 0 is the candidate, 1 the reference. */
static inline enum st_cmp_side sc_side(unsigned target)
{
	return target ? ST_CMP_REF : ST_CMP_CAND;
}

/* The engine's clock (CLOCK_MONOTONIC ns, or the one injected for tests). */
static inline uint64_t sh_now(const struct st_shadow *sh)
{
	return sh->cfg.clock ? sh->cfg.clock(sh->cfg.clock_ctx) : st_mono_ns();
}

/* ---- shadow.c, for the shadow side ------------------------------------------------------ */

/* Where a captured connection keeps its shadow connection for slot. */
struct sconn **st_shadow_cc_slot(struct cconn *cc, unsigned slot);
uint64_t st_shadow_cc_id(const struct cconn *cc);

/* ---- shadow_conn.c -------------------------------------------------------------------- */

/* A new shadow connection for slot (NULL when the target backs off or fails; counted). */
struct sconn *sc_new(struct st_shadow *sh, struct cconn *cc, unsigned slot, bool raw);
/* Closes sc; requests queued and not written whole are dropped (counted). */
void sc_close(struct sconn *sc, bool error);
/* No longer fed by its captured connection: drains what it has, then closes. */
void sc_release(struct sconn *sc);
void sc_detach(struct sconn *sc);
/* Sent bytes are dropped as soon as written (raw streams). */
void sc_noretain(struct sconn *sc);
/* Committed bytes wait for the next kick. */
void sc_mark(struct sconn *sc);
/* Keeps the global byte count and the congestion count right after sc->q changed from old. */
void sc_acct(struct sconn *sc, uint64_t old);
/* A committed request; pair (may be NULL) gets a reference held until it is answered. */
int sc_req_push(struct sconn *sc, uint64_t end, enum st_http_method m, bool ka,
		struct st_cmp_pair *pair);
/* Load test: the request just pushed is due at due (it waits until then). */
void sc_req_due(struct sconn *sc, uint64_t due, uint32_t tag, bool wait_prev);
/* Load test: a request that never reached a connection (queue caps) ends as failed. */
void sh_load_dropped(struct st_shadow *sh, unsigned slot, uint32_t tag, uint64_t due);
/* Load test: due requests taken up, waiting connections opened, what may go written; the
 * next due time (0: none). */
uint64_t sh_due(struct st_shadow *sh, uint64_t now);
void sc_push_methods(struct sconn *sc);
/* Writes what every marked connection has committed. */
void sh_kick(struct st_shadow *sh);
void sh_close_all(struct st_shadow *sh);
void sh_free_dead(struct st_shadow *sh);
/* Handles epoll events and connections with reading left, waiting up to timeout_ms. */
int sh_poll(struct st_shadow *sh, int timeout_ms);
/* Connect timeouts, stalls, lingering and learned limits. */
void sh_conn_timers(struct st_shadow *sh, uint64_t now);
bool sh_own_has(const struct st_shadow *sh, const struct st_addr *a, uint16_t port);
void sh_own_gc(struct st_shadow *sh, uint64_t now);

#endif /* ST_SHADOW_INT_H */
