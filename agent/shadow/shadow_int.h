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

#include <nghttp2/nghttp2.h>

#include "bytequeue.h"
#include "compare.h"
#include "correlate.h"
#include "h2.h"
#include "hdr.h"
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
	struct st_correlate_ex *ex;  /* --correlate: its answers (a reference held) */
};

/* --correlate: a request waiting on a shadow connection for a value to be learned (its own
 * copy of the bytes, or an HTTP/2 message's reference; later requests of that connection wait
 * behind it, in order). */
struct corwait {
	uint8_t *buf;                /* HTTP/1 */
	struct h2msg *m;             /* HTTP/2 (a reference held) */
	size_t len;                  /* HTTP/1: bytes; HTTP/2: what m holds (m->mem) */
	uint64_t until;              /* then it goes as it can be rewritten (unmapped) */
	uint8_t method;
	bool keep_alive;
	struct st_cmp_pair *pair;    /* references held */
	struct st_correlate_ex *ex;
};

struct cconn;
struct sh2;
struct h2cap;

/*
 * An HTTP/2 request as the shadows get it (shadow_h2.c builds it as the captured stream
 * comes, shadow_h2conn.c sends it): header fields rewritten (--set-header, --mark,
 * --set-host), the body whole, the trailers. Immutable once released: every shadow
 * connection it goes to holds a reference, and counts mem against its queue caps.
 */
struct h2msg {
	uint32_t refs;
	uint8_t method;              /* enum st_http_method */
	bool grpc;                   /* content-type application/grpc... */
	uint32_t nnv, ntr;
	nghttp2_nv *nv;              /* header fields, pseudo-header fields first */
	nghttp2_nv *tr;              /* trailer fields (NULL: none) */
	struct st_bq body;           /* DATA payload, [0, body.end) */
	uint64_t mem;                /* what it holds: struct, fields, body chunks */
};

void h2msg_put(struct h2msg *m);

/* The request fields selection looks at, from either HTTP version. */
struct sh_req {
	uint8_t method;              /* enum st_http_method */
	const char *method_str;
	uint32_t method_len;
	const char *target;          /* HTTP/1: the request target; HTTP/2: :path */
	uint32_t target_len;
	bool grpc;
};

/* A released request, for every slot it goes to: HTTP/1 bytes in the stage, or an h2msg. */
struct sh_out {
	uint64_t start, end;         /* HTTP/1: its bytes in cc->stage */
	struct h2msg *m;             /* HTTP/2 */
	uint8_t method;
	bool final;                  /* HTTP/1: not keep-alive (the shadow closes after it) */
	struct st_cmp_pair *pair;
	/* a load test's (HTTP/1 only) */
	const uint8_t *flat;         /* its bytes, [0, end), when not the stage's (the cache) */
	bool pipelined;              /* sent before production's answer to the one before */
	uint32_t tag;                /* what load->tag() said */
	uint64_t due;                /* when it is due */
	struct st_correlate_ex *ex;  /* --correlate */
};

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
	struct sh2 *h2;               /* HTTP/2: the client session (shadow_h2conn.c) */
	uint64_t held;                /* HTTP/2: bytes of the messages it holds (caps) */
	/* --correlate */
	struct st_correlate_ex *cur_ex; /* the exchange of the answer being read */
	struct corwait *cw;          /* ring of requests waiting for a value */
	uint32_t cw_cap, cw_head, cw_n;
	uint64_t cw_mem;             /* what they hold (counted in sc_mem) */
	struct st_list_head cwl;     /* on sh->cor_waiting while cw_n */
};

/* What a new shadow connection speaks. */
enum sc_kind { SK_HTTP1 = 0, SK_RAW, SK_H2 };

/* ---- the captured side (shadow.c, shadow_h2.c) ------------------------------------------ */

#define SL_ON 1u

enum { CM_DETECT = 0, CM_HTTP, CM_RAW, CM_OFF, CM_H2 };

enum pe_state { PE_FRAMING = 0, PE_DONE };
enum verdict { V_NONE = 0, V_RUN, V_REJECT };

/* A request framed from the client stream, waiting for production's verdict. */
struct pend {
	uint64_t start, end;         /* its bytes in cc->stage (when pass) */
	uint32_t flags;              /* ST_HTTP_HF_* of its head */
	uint8_t method;
	uint8_t state;               /* enum pe_state */
	uint8_t verdict;             /* enum verdict */
	bool pass;                   /* selected, within --rate, fits the queues */
	bool damaged;                /* crossed a capture gap that framing stepped over */
	bool switched;               /* production switched protocols on it (101, CONNECT 2xx) */
	bool h2c;                    /* it offers an upgrade to h2c (cc->h2 holds the offer) */
	bool to_h2;                  /* ... and production's 101 accepted it */
	bool pipelined;              /* load: sent before production's answer to the one before */
	uint32_t tag;                /* load: what load->tag() said */
	uint64_t ts;                 /* load: when its head was captured */
	struct st_cmp_pair *pair;    /* tap compare (a reference held until it leaves the stage) */
	struct st_correlate_ex *ex;  /* --correlate (a reference held until it leaves the stage) */
};

/* Tap compare: the pairs waiting for production's answers, by request number. */
struct pq_ent {
	uint64_t no;                 /* the request's number on the connection (0, 1, ...) */
	struct st_cmp_pair *pair;    /* a reference held */
};

struct cconn {
	struct st_shadow *sh;
	struct st_reasm_conn *c;     /* NULL: a load test's connection replayed from the cache */
	uint64_t id;                 /* what its shadow connections say they replay */
	uint32_t lc_no;              /* its number in a load test's first pass (cache records) */
	uint8_t mode;
	bool arbiter;                /* production's answers decide (else released when framed) */
	bool req_dead;               /* client bytes are no longer framed (error, gap, refusal) */
	bool prod_raw;               /* production's stream is a tunnel now: no more verdicts */
	bool prod_dead;              /* production's answers can no longer be followed */
	bool holding;                /* an Upgrade/CONNECT waits for its answer: raw bytes staged */
	bool raw_live;               /* after a switch: raw bytes go straight to the shadows */
	bool prod_h2;                /* production switched to h2c: its bytes go to the framer */
	uint64_t hash;               /* stable per connection */
	uint64_t req_index;
	uint64_t verdicts;           /* final answers production gave (index of the next verdict) */
	uint64_t prod_done;          /* ... and of those, the ones it finished sending */
	uint64_t popped;             /* entries that left the ring (index of the ring's head) */
	uint64_t delivered;          /* requests handed to the shadows */
	uint8_t *det;                /* auto-detection: first client bytes */
	uint32_t det_len;
	uint8_t *pdet;               /* ... and production's bytes meanwhile (an HTTP/2 server
				      * may send its SETTINGS before the client's preface) */
	uint32_t pdet_len;
	bool pdet_lost;              /* more than that, or a gap: HTTP/2 cannot be followed */
	struct st_http_parser req;   /* client -> server */
	struct st_http_parser prod;  /* production's answers */
	struct st_bq stage;          /* bytes of pending requests (and held raw bytes) */
	struct pend *pe;             /* ring of pending requests */
	uint32_t pe_cap, pe_head, pe_n;
	uint8_t *sflags;             /* per slot: SL_* */
	/* tap compare */
	struct pq_ent *pq;           /* ring of ST_HTTP_METHOD_QUEUE, allocated on first use */
	uint32_t pq_head, pq_n;
	struct st_cmp_pair *prod_pair; /* the pair of the answer production is sending now */
	uint8_t pairing_lost;        /* enum st_cmp_reason: answers can no longer be paired */
	bool prod_at_start;          /* production's next byte starts an answer */
	uint64_t prod_msg_ts;        /* when the answer being read started (capture clock) */
	uint64_t cur_ts;             /* the capture time of the bytes being fed */
	struct h2cap *h2;            /* CM_H2 (or an h2c upgrade offered): shadow_h2.c */
	uint64_t h2mem;              /* bytes its HTTP/2 messages hold in the stage */
	/* --correlate: the exchanges waiting for production's answers (as pq) */
	struct pq_cor { uint64_t no; struct st_correlate_ex *ex; } *cq;
	uint32_t cq_head, cq_n;
	struct st_correlate_ex *prod_ex; /* the exchange of the answer production is sending */
	bool cor_lost;               /* production's answers can no longer be paired */
	struct sconn *sc[];          /* per slot */
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
	/* down: its last connect failed (refused, unreachable), until one succeeds. The first
	 * fall and the first return are said (a warning each); later ones are counted
	 * (downs) and said at -v. */
	bool down, said_down, said_up;
	uint64_t down_ns;            /* when it went down */
	uint64_t downs;
	uint64_t dropped_down;       /* requests dropped because it was down or failed */
	uint64_t dropped_at_down;    /* dropped_down when it went down */
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
	struct st_hdr answer_us;      /* the shadows' final answers: last byte written -> head (us) */
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
	uint8_t h2_ports[65536 / 8];   /* ... HTTP/2 (a connection joined there is h2_joined) */
	/* --correlate */
	struct st_correlate **cor;   /* per slot (NULL: off) */
	struct st_correlate_out corout;
	struct st_correlate_h2out corh2; /* ... an HTTP/2 request's */
	struct st_h2_field *corfields; /* ... its fields, as the rewriter takes them */
	uint32_t corfields_cap;
	uint8_t *corbuf;             /* a request's bytes, in one piece */
	size_t corbuf_cap;
	struct st_list_head cor_waiting; /* shadow connections with requests waiting */
	bool cor_wake;               /* a value was learned: look at the waiting ones */
	uint64_t cor_held;           /* bytes the exchanges' answers hold */
	uint64_t cor_expire_ns;
};

/* Tap compare's side for a shadow connection: target 0 is the candidate, 1 the reference. */
static inline enum st_cmp_side sc_side(unsigned target)
{
	return target ? ST_CMP_REF : ST_CMP_CAND;
}

/* The engine's clock (CLOCK_MONOTONIC ns, or the one injected for tests). */
static inline uint64_t sh_now(const struct st_shadow *sh)
{
	return sh->cfg.clock ? sh->cfg.clock(sh->cfg.clock_ctx) : st_loop_mono_ns();
}

/* A final answer's head read at head_ns, for a request written whole at sent_ns. */
static inline void sh_answer_latency(struct st_shadow *sh, uint64_t sent_ns, uint64_t head_ns)
{
	if (sent_ns && head_ns >= sent_ns)
		st_hdr_record(&sh->answer_us, (head_ns - sent_ns) / 1000);
}

/* n requests to target t are dropped: it is down or its connection failed. */
static inline void sh_dropped_down(struct st_shadow *sh, unsigned t, uint64_t n)
{
	sh->st.dropped += n;
	sh->st.dropped_down += n;
	sh->ts[t].dropped_down += n;
}

/* ---- shadow.c, for the other parts --------------------------------------------------------- */

/* Where a captured connection keeps its shadow connection for slot. */
struct sconn **st_shadow_cc_slot(struct cconn *cc, unsigned slot);
uint64_t st_shadow_cc_id(const struct cconn *cc);
/* The slots this captured connection is replayed to (targets' shares). */
unsigned cc_slots_on(const struct cconn *cc);
/* Whether a request is selected (--safe-only, --match-method, --sample-by request, paths). */
bool sh_select(struct st_shadow *sh, struct cconn *cc, const struct sh_req *r);
/* --rate: a token for one more request. */
bool sh_rate_ok(struct st_shadow *sh);
/* Status codes servers give requests they refuse as malformed: never replayed. */
bool sh_refusal_status(unsigned status);
/* Staged bytes of a captured connection: whether cost more fit the caps; a change by delta. */
bool cc_stage_fits(const struct cconn *cc, uint64_t cost);
void cc_stage_add(struct cconn *cc, int64_t delta);
/* A released request goes to every slot it is for, whole, or is dropped there (counted). */
void sh_deliver(struct cconn *cc, const struct sh_out *o);
/* A request copy for target dropped (err: -ENOBUFS the caps, else the shadow): counted, its
 * pair's side ended. */
void sh_dropped(struct st_shadow *sh, int err, struct st_cmp_pair *pair, unsigned target);
/* Tap compare: the pairs waiting for production's answers will not get them. */
void cc_cmp_lost(struct cconn *cc, enum st_cmp_reason why);
/* --correlate: the waiting requests of every connection a learned value (or the clock) lets
 * go; those of sc dropped when it closes (counted). */
void sh_cor_run(struct st_shadow *sh, uint64_t now);
void sc_cor_drop(struct sconn *sc);
/* --correlate: sc's waiting requests move to n, a new connection of its slot, in order (the
 * caller accounts both: sc_acct with each one's sc_mem from before). */
void sc_cor_move(struct sconn *sc, struct sconn *n);
/* --correlate: the bytes [start, end) of q in one piece, in sh->corbuf. 0 or -ENOBUFS. */
int sh_cor_flat(struct st_shadow *sh, const struct st_bq *q, uint64_t start, uint64_t end);
/* --correlate: an exchange for a request selected for replay (NULL: out of memory). */
struct st_correlate_ex *sh_cor_ex_new(struct st_shadow *sh);
/* --correlate: production's answer to x is whole (HTTP/2: its stream ended); pair: tap
 * compare's, still held, or NULL. */
void sh_cor_prod_done(struct cconn *cc, struct st_correlate_ex *x, struct st_cmp_pair *pair);
/* --correlate: a target's answer to ex is complete: learned from, with production's. */
void sh_cor_tgt_done(struct st_shadow *sh, struct st_correlate_ex *ex, unsigned slot,
		     struct st_cmp_pair *pair);

/* ---- shadow_h2.c: the captured side of HTTP/2 --------------------------------------------- */

/* The connection speaks HTTP/2 from its first client byte (the preface). 0 or -ENOMEM. */
int cc_h2_start(struct cconn *cc);
/* An HTTP/1.1 request offers h2c (st_h2_upgrade_requested): a framer kept aside, its body
 * collected (cc_h2_offer_body), then, the request complete, set up with it as stream 1
 * (cc_h2_offer), until production answers: cc_h2_upgraded, or cc_h2_free. 0 or <0. */
int cc_h2_offer_start(struct cconn *cc);
void cc_h2_offer_body(struct cconn *cc, const uint8_t *p, size_t n);
int cc_h2_offer(struct cconn *cc, const struct st_http_head *req, bool pass);
/* An offer is set up and waits for the switch. */
bool cc_h2_offered(const struct cconn *cc);
/* Production switched to h2c: the connection is HTTP/2 from here (stream 1 is the offer). */
void cc_h2_upgraded(struct cconn *cc);
/* Bytes of a direction (ST_DIR_IN: the client's). */
void cc_h2_feed(struct cconn *cc, int dir, const uint8_t *p, size_t n);
/* A capture gap in a direction: the connection can no longer be decoded. */
void cc_h2_gap(struct cconn *cc);
/* A direction ended (FIN, RST). */
void cc_h2_end(struct cconn *cc, int dir);
/* Production's answers are missing from the capture: streams go once complete. */
void cc_h2_arbiter_off(struct cconn *cc);
/* The captured connection is over: what was not released never will be (counted). */
void cc_h2_close(struct cconn *cc);
/* --correlate: m as slot's map rewrites it for its target: *out a new message (a reference
 * of its own) when a value was replaced, else NULL; pending values met in *pending. 0 or
 * -ENOMEM. */
int h2msg_correlate(struct st_shadow *sh, unsigned slot, const struct h2msg *m, uint64_t now,
		    struct h2msg **out, unsigned *pending);
void cc_h2_free(struct cconn *cc);

/* ---- shadow_conn.c -------------------------------------------------------------------- */

/* A new shadow connection for slot (NULL when the target backs off or fails; counted). */
struct sconn *sc_new(struct st_shadow *sh, struct cconn *cc, unsigned slot, enum sc_kind kind);
/* Closes sc; requests queued and not written whole are dropped (counted). */
void sc_close(struct sconn *sc, bool error);
/* No longer fed by its captured connection: drains what it has, then closes. */
void sc_release(struct sconn *sc);
void sc_detach(struct sconn *sc);
/* Sent bytes are dropped as soon as written (raw streams). */
void sc_noretain(struct sconn *sc);
/* Committed bytes wait for the next kick. */
void sc_mark(struct sconn *sc);
/* Memory sc holds against the caps: its queue, and (HTTP/2) the messages it holds. */
static inline uint64_t sc_mem(const struct sconn *sc)
{
	return st_bq_mem(&sc->q) + sc->held + sc->cw_mem;
}
/* Whether cost more fits sc's cap and the global one. */
bool sc_fits(const struct sconn *sc, uint64_t cost);
/* Keeps the global byte count and the congestion count right after sc_mem() changed from
 * old. */
void sc_acct(struct sconn *sc, uint64_t old);
/* A target answered something that is not its protocol: closed, the target backs off. */
void sc_bad_response(struct sconn *sc);
/* A committed request; pair (may be NULL) gets a reference held until it is answered. */
int sc_req_push(struct sconn *sc, uint64_t end, enum st_http_method m, bool ka,
		struct st_cmp_pair *pair, struct st_correlate_ex *ex);
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

/* ---- shadow_h2conn.c: the shadow side of HTTP/2 ------------------------------------------ */

/* The session of a new SK_H2 connection (its preface and SETTINGS queued). 0 or -ENOMEM. */
int sc_h2_init(struct sconn *sc);
void sc_h2_free(struct sconn *sc);
/* A released message on sc: 0, -ENOBUFS (the caps), -EIO (the session refused it). pair and
 * ex (--correlate: the target's answer is learned into it) may be NULL; a reference of each is
 * taken. */
int sc_h2_push(struct sconn *sc, struct h2msg *m, struct st_cmp_pair *pair,
	       struct st_correlate_ex *ex);
/* What the session has to send, into sc->q (bounded ahead of the socket). -1: sc closed. */
int sc_h2_pump(struct sconn *sc);
/* q.sent moved (the write started at t0, for tap compare): streams written whole are
 * counted. */
void sc_h2_written(struct sconn *sc, uint64_t t0);
/* Bytes the shadow sent. false: sc was closed. */
bool sc_h2_recv(struct sconn *sc, const uint8_t *p, size_t n);
/* sc closes: its streams are counted (dropped, unanswered), pairs let go. */
void sc_h2_close(struct sconn *sc);
/* Streams on sc not yet over. */
uint32_t sc_h2_open(const struct sconn *sc);
/* Streams with request bytes the session could not send yet (flow control). */
bool sc_h2_sending(const struct sconn *sc);
/* Streams written whole and not answered yet. */
uint32_t sc_h2_awaiting(const struct sconn *sc);
/* Tap compare of a gRPC answer that ended in its head (trailers-only, RFC: a status and no
 * message): its grpc-status, grpc-message and grpc-status-details-bin are trailers, as in an
 * answer with messages. Moves them to the end of f; returns how many fields are left before. */
uint32_t sh_grpc_trailers_only(struct st_http_header *f, uint32_t n);

#endif /* ST_SHADOW_INT_H */
