/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * HTTP/2 framing of a captured connection (h2.h has the contract, docs/HTTP2.md
 * the design). Each direction is a small state machine over its bytes:
 * the client's connection preface, then frames (a 9-byte header, a payload
 * consumed as it comes). Header block fragments go to that direction's HPACK
 * inflater as they arrive; DATA is handed out in place. Events are queued and
 * handed out one per call.
 */
#include "h2.h"
#include "http_chars.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#define FH_LEN 9u
#define FRAME_MIN 16384u
#define FRAME_MAX 16777215u
#define TABLE_DEFAULT 4096u
#define WINDOW_MAX 2147483647u
#define QCAP 8u
#define OWED_MAX 16u

enum ftype {
	F_DATA = 0x0,
	F_HEADERS = 0x1,
	F_PRIORITY = 0x2,
	F_RST = 0x3,
	F_SETTINGS = 0x4,
	F_PUSH = 0x5,
	F_PING = 0x6,
	F_GOAWAY = 0x7,
	F_WINUP = 0x8,
	F_CONT = 0x9,
};

#define FL_END_STREAM 0x1u
#define FL_ACK 0x1u
#define FL_END_HEADERS 0x4u
#define FL_PADDED 0x8u
#define FL_PRIORITY 0x20u

enum dstate { D_PREFACE = 0, D_FHDR, D_PAYLOAD };

/* What a header block is for. */
enum bkind {
	B_REQ = 0,       /* a request head */
	B_REQ_TRAILERS,
	B_RESP,          /* a response head, interim or final */
	B_RESP_TRAILERS,
	B_DISCARD,       /* decoded for the HPACK state only */
	B_DROP,          /* ... and the stream is dropped at its end (DROP event) */
};

/* Stream flags. */
#define S_C_HEAD 0x01u  /* the request head was handed out */
#define S_C_END 0x02u
#define S_S_HEAD 0x04u  /* a response head (interim or final) */
#define S_S_FINAL 0x08u
#define S_S_END 0x10u

struct h2s {
	uint32_t id;    /* 0: a free slot */
	uint32_t f;
};

/* One SETTINGS frame's values that the framer follows. */
struct setv {
	uint32_t table, frame;
	uint8_t has_table, has_frame, has_push, push;
};

/* A decoded field while its block is being decoded: offsets into the arena (it may move). */
struct rawf {
	uint32_t noff, nlen, voff, vlen, flags;
};

struct dir {
	uint8_t state;
	uint8_t fh_fill;
	uint8_t fh[FH_LEN];
	uint8_t type, flags;
	bool got_settings;         /* its first frame, a SETTINGS, was seen */
	bool any;                  /* a byte was fed */
	bool ended;
	uint32_t stream;
	uint32_t len;              /* payload length of the frame */
	uint32_t pos;              /* payload bytes consumed */
	uint32_t pre;              /* payload bytes before the content (pad length, fields) */
	uint32_t content_end;      /* payload offset where padding starts */
	uint8_t sm[8];             /* fixed fields being gathered */
	uint8_t sm_fill;
	bool deliver;              /* DATA: this frame's bytes are handed out */
	uint32_t preface_fill;
	/* the settings this side announced (they govern what the other side sends) */
	struct setv acked;         /* table, frame, push as acknowledged */
	struct setv pending[ST_H2_SETTINGS_PENDING_MAX];
	uint32_t npending;
	uint32_t owed;             /* ACKs the other side sent before these SETTINGS were fed */
	struct setv cur;           /* the SETTINGS frame being read */
	/* header block in progress (HPACK of what this side sends) */
	nghttp2_hd_inflater *inf;
	bool in_block;             /* CONTINUATION expected */
	bool block_done;           /* the inflater finished the block */
	bool keep;                 /* fields are kept (else only decoded) */
	bool over;                 /* the list went over max_header_list */
	bool table_capped;         /* the other side announced more than max_table */
	bool table_deferred;       /* a table size waits for the block's end */
	uint8_t bkind;
	uint8_t block_flags;       /* the HEADERS frame's flags (END_STREAM) */
	uint32_t block_stream;
	uint32_t block_bytes, block_conts;
	uint32_t list_size;
	uint32_t table_to;         /* deferred size */
	char *arena;
	uint32_t alen, acap;
	struct rawf *rf;
	uint32_t nrf, rfcap;
	struct st_h2_field *hf;
	uint32_t hfcap;
	struct st_h2_head head;
	/* streams this side opened */
	uint32_t last_id;          /* client: the highest stream opened; server: promised */
	bool goaway;
	uint32_t goaway_last;
};

struct st_h2 {
	struct st_h2_opts o;
	struct dir d[2];
	struct h2s *t;             /* open addressing, linear probing, no tombstones */
	uint32_t tcap, tn;
	uint64_t answered;         /* streams with production's final head */
	bool stopped;
	struct st_h2_event q[QCAP];
	uint32_t qh, qn;
	struct st_h2_stats st;
};

/* ---- names ---------------------------------------------------------------------------- */

const char *st_h2_errname(uint32_t code)
{
	return nghttp2_http2_strerror(code);
}

const char *st_h2_stop_str(enum st_h2_stop why)
{
	static const char *const s[] = {
		[ST_H2_STOP_NONE] = "none", [ST_H2_STOP_JOINED] = "joined",
		[ST_H2_STOP_GAP] = "gap", [ST_H2_STOP_PROTOCOL] = "protocol error",
		[ST_H2_STOP_LIMIT] = "limit", [ST_H2_STOP_TRUNCATED] = "truncated",
		[ST_H2_STOP_NOMEM] = "out of memory",
	};

	return (unsigned)why < ST_H2_STOP__COUNT ? s[why] : "?";
}

const char *st_h2_limit_str(enum st_h2_limit l)
{
	static const char *const s[] = {
		[ST_H2_LIMIT_NONE] = "none", [ST_H2_LIMIT_HEADER_LIST] = "header list",
		[ST_H2_LIMIT_STREAMS] = "concurrent streams", [ST_H2_LIMIT_BLOCK] = "header block",
		[ST_H2_LIMIT_CONTINUATION] = "continuation frames",
		[ST_H2_LIMIT_STREAMS_TOTAL] = "total streams",
		[ST_H2_LIMIT_EARLY_RESETS] = "early resets", [ST_H2_LIMIT_TABLE] = "header table",
		[ST_H2_LIMIT_SETTINGS] = "unacknowledged settings",
	};

	return (unsigned)l < ST_H2_LIMIT__COUNT ? s[l] : "?";
}

/* ---- the event queue ------------------------------------------------------------------- */

static struct st_h2_event *qpush(struct st_h2 *c, enum st_h2_ev type, int dir, uint32_t stream)
{
	struct st_h2_event *e;

	/* a frame queues at most four events and the queue is drained before the next frame */
	if (c->qn == QCAP)
		abort();
	e = &c->q[(c->qh + c->qn++) % QCAP];
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->dir = (uint8_t)dir;
	e->stream = stream;
	return e;
}

static void stop(struct st_h2 *c, enum st_h2_stop why, uint32_t code, enum st_h2_limit limit,
		 const char *detail)
{
	struct st_h2_event *e;

	if (c->stopped)
		return;
	c->stopped = true;
	if (limit)
		c->st.limits[limit]++;
	e = qpush(c, ST_H2_EV_STOP, 0, 0);
	e->stop = (uint8_t)why;
	e->error_code = code;
	e->limit = (uint8_t)limit;
	e->detail = detail;
}

static void proto(struct st_h2 *c, uint32_t code, const char *detail)
{
	stop(c, ST_H2_STOP_PROTOCOL, code, ST_H2_LIMIT_NONE, detail);
}

/* ---- the stream table ------------------------------------------------------------------ */

static uint32_t slot0(const struct st_h2 *c, uint32_t id)
{
	return (id * 2654435761u) & (c->tcap - 1);
}

static struct h2s *sfind(struct st_h2 *c, uint32_t id)
{
	if (!c->tn)
		return NULL;
	for (uint32_t i = slot0(c, id);; i = (i + 1) & (c->tcap - 1)) {
		if (!c->t[i].id)
			return NULL;
		if (c->t[i].id == id)
			return &c->t[i];
	}
}

static int sgrow(struct st_h2 *c)
{
	uint32_t ncap = c->tcap ? c->tcap * 2 : 16, ocap = c->tcap;
	struct h2s *old = c->t, *nt = calloc(ncap, sizeof(*nt));

	if (!nt)
		return -1;
	c->t = nt;
	c->tcap = ncap;
	for (uint32_t i = 0; i < ocap; i++) {
		if (!old[i].id)
			continue;
		for (uint32_t k = slot0(c, old[i].id);; k = (k + 1) & (ncap - 1))
			if (!nt[k].id) {
				nt[k] = old[i];
				break;
			}
	}
	free(old);
	return 0;
}

/* A new stream (not in the table); NULL when out of memory. */
static struct h2s *sadd(struct st_h2 *c, uint32_t id)
{
	uint32_t i;

	if ((c->tn + 1) * 4 > c->tcap * 3 && sgrow(c))
		return NULL;
	for (i = slot0(c, id); c->t[i].id; i = (i + 1) & (c->tcap - 1))
		;
	c->t[i].id = id;
	c->t[i].f = 0;
	c->tn++;
	if (c->tn > c->st.streams_peak)
		c->st.streams_peak = c->tn;
	return &c->t[i];
}

/* Removes s, shifting back the entries after it that would no longer be found. */
static void sdel(struct st_h2 *c, struct h2s *s)
{
	uint32_t mask = c->tcap - 1, i = (uint32_t)(s - c->t), k = i;

	c->t[i].id = 0;
	c->tn--;
	for (;;) {
		uint32_t h;

		k = (k + 1) & mask;
		if (!c->t[k].id)
			return;
		h = slot0(c, c->t[k].id);
		/* the entry at k may fill the hole at i when its home is not in (i, k] */
		if ((k > i && (h <= i || h > k)) || (k < i && h <= i && h > k)) {
			c->t[i] = c->t[k];
			c->t[k].id = 0;
			i = k;
		}
	}
}

/* ---- settings ------------------------------------------------------------------------------ */

static uint32_t frame_limit(const struct dir *rx)
{
	uint32_t m = rx->acked.frame;

	for (uint32_t i = 0; i < rx->npending; i++)
		if (rx->pending[i].has_frame && rx->pending[i].frame > m)
			m = rx->pending[i].frame;
	return m;
}

/* The inflater of tx (what tx sends) follows the table size its receiver announced. */
static int table_apply(struct st_h2 *c, struct dir *tx, uint32_t size)
{
	uint32_t v = size < c->o.max_table ? size : c->o.max_table;

	tx->table_capped = size > c->o.max_table;
	if (tx->in_block) {
		tx->table_deferred = true;
		tx->table_to = v;
		return 0;
	}
	c->st.table_changes++;
	return nghttp2_hd_inflate_change_table_size(tx->inf, v) ? -1 : 0;
}

/* rx's settings s are acknowledged by tx. */
static int settings_acked(struct st_h2 *c, struct dir *rx, struct dir *tx, const struct setv *s)
{
	if (s->has_frame)
		rx->acked.frame = s->frame;
	if (s->has_push)
		rx->acked.push = s->push;
	if (s->has_table) {
		rx->acked.table = s->table;
		if (table_apply(c, tx, s->table)) {
			stop(c, ST_H2_STOP_NOMEM, 0, ST_H2_LIMIT_NONE, "HPACK table size");
			return -1;
		}
	}
	return 0;
}

/* ---- header blocks ------------------------------------------------------------------------- */

static int arena_put(struct dir *d, const uint8_t *s, size_t n, bool lower, uint32_t *off)
{
	if ((size_t)d->alen + n + 1 > d->acap) {
		size_t ncap = d->acap ? d->acap : 1024;
		char *na;

		while (ncap < (size_t)d->alen + n + 1)
			ncap *= 2;
		na = realloc(d->arena, ncap);
		if (!na)
			return -1;
		d->arena = na;
		d->acap = (uint32_t)ncap;
	}
	*off = d->alen;
	if (n)
		memcpy(d->arena + d->alen, s, n);
	for (size_t i = 0; lower && i < n; i++) {
		char ch = d->arena[d->alen + i];

		if (ch >= 'A' && ch <= 'Z')
			d->arena[d->alen + i] = (char)(ch + 32);
	}
	d->alen += (uint32_t)n;
	d->arena[d->alen++] = 0;
	return 0;
}

/* A decoded field: counted in the list size, kept while under the bound. */
static int field_add(struct st_h2 *c, struct dir *d, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint32_t flags, bool lower)
{
	uint64_t sz = (uint64_t)nlen + vlen + 32;
	struct rawf *f;

	d->list_size = d->list_size + sz > UINT32_MAX ? UINT32_MAX : d->list_size + (uint32_t)sz;
	if (!d->keep || d->over)
		return 0;
	if (d->list_size > c->o.max_header_list) {
		d->over = true;
		return 0;
	}
	if (d->nrf == d->rfcap) {
		uint32_t ncap = d->rfcap ? d->rfcap * 2 : 16;
		struct rawf *n = realloc(d->rf, ncap * sizeof(*n));

		if (!n)
			return -1;
		d->rf = n;
		d->rfcap = ncap;
	}
	f = &d->rf[d->nrf];
	if (arena_put(d, name, nlen, lower, &f->noff) || arena_put(d, value, vlen, false, &f->voff))
		return -1;
	f->nlen = (uint32_t)nlen;
	f->vlen = (uint32_t)vlen;
	f->flags = flags;
	d->nrf++;
	return 0;
}

static void block_begin(struct dir *d, uint32_t stream, enum bkind k, uint8_t flags)
{
	d->bkind = (uint8_t)k;
	d->block_stream = stream;
	d->block_flags = flags;
	d->block_bytes = 0;
	d->block_conts = 0;
	d->block_done = false;
	d->in_block = true;
	d->keep = k <= B_RESP_TRAILERS;
	d->over = false;
	d->list_size = 0;
	d->alen = 0;
	d->nrf = 0;
}

static int inflate_some(struct st_h2 *c, struct dir *d, const uint8_t *in, size_t n, bool final)
{
	if (d->block_done)
		return 0;
	d->block_bytes += (uint32_t)n;
	if (d->block_bytes > c->o.max_block) {
		stop(c, ST_H2_STOP_LIMIT, 0, ST_H2_LIMIT_BLOCK, "header block over max_block");
		return -1;
	}
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t r = nghttp2_hd_inflate_hd2(d->inf, &nv, &fl, in, n, final);

		if (r < 0) {
			if (r == NGHTTP2_ERR_NOMEM)
				stop(c, ST_H2_STOP_NOMEM, 0, ST_H2_LIMIT_NONE, "HPACK");
			else if (d->table_capped)
				stop(c, ST_H2_STOP_LIMIT, 0, ST_H2_LIMIT_TABLE,
				     "HPACK table larger than max_table");
			else
				proto(c, ST_H2_COMPRESSION_ERROR,
				      "HPACK decoding failed (or a string over libnghttp2's 64 KiB)");
			return -1;
		}
		in += r;
		n -= (size_t)r;
		if ((fl & NGHTTP2_HD_INFLATE_EMIT) &&
		    field_add(c, d, nv.name, nv.namelen, nv.value, nv.valuelen,
			      nv.flags & NGHTTP2_NV_FLAG_NO_INDEX ? ST_H2_FF_NEVER_INDEX : 0, false)) {
			stop(c, ST_H2_STOP_NOMEM, 0, ST_H2_LIMIT_NONE, "header fields");
			return -1;
		}
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->inf);
			d->block_done = true;
			return 0;
		}
		if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && !n)
			return 0;
	}
}

static bool name_is(const struct st_h2_field *f, const char *lit)
{
	size_t l = strlen(lit);

	return f->name_len == l && !memcmp(f->name, lit, l);
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* Fills d->head from the kept fields and checks it (RFC 9113 8.1.1, 8.2, 8.3). */
static int head_build(struct dir *d, enum bkind k)
{
	struct st_h2_head *h = &d->head;
	bool req = k == B_REQ, resp = k == B_RESP, regular = false, bad = false, cl_seen = false;
	const struct st_h2_field **pp;

	if (d->nrf > d->hfcap) {
		struct st_h2_field *n = realloc(d->hf, d->nrf * sizeof(*n));

		if (!n)
			return -1;
		d->hf = n;
		d->hfcap = d->nrf;
	}
	memset(h, 0, sizeof(*h));
	h->fields = d->hf;
	h->nfields = d->nrf;
	h->list_size = d->list_size;
	for (uint32_t i = 0; i < d->nrf; i++) {
		struct st_h2_field *f = &d->hf[i];

		f->name = d->arena + d->rf[i].noff;
		f->name_len = d->rf[i].nlen;
		f->value = d->arena + d->rf[i].voff;
		f->value_len = d->rf[i].vlen;
		f->flags = d->rf[i].flags;
		if (!f->name_len) {
			bad = true;
			continue;
		}
		if (f->name[0] == ':') {
			pp = NULL;
			if (regular || !(req || resp))
				bad = true; /* after a regular field, or in trailers */
			if (req) {
				if (name_is(f, ":method"))
					pp = &h->method;
				else if (name_is(f, ":scheme"))
					pp = &h->scheme;
				else if (name_is(f, ":authority"))
					pp = &h->authority;
				else if (name_is(f, ":path"))
					pp = &h->path;
				else if (name_is(f, ":protocol"))
					pp = &h->protocol;
				else
					bad = true;
				if (pp) {
					if (*pp)
						bad = true;
					*pp = f;
				}
			} else if (resp) {
				if (name_is(f, ":status") && !h->status && f->value_len == 3 &&
				    f->value[0] >= '1' && f->value[0] <= '9' && f->value[1] >= '0' &&
				    f->value[1] <= '9' && f->value[2] >= '0' && f->value[2] <= '9')
					h->status = (uint16_t)((f->value[0] - '0') * 100 +
							       (f->value[1] - '0') * 10 + f->value[2] - '0');
				else
					bad = true;
			}
			continue;
		}
		for (uint32_t j = 0; j < f->value_len; j++)
			if (f->value[j] == 0 || f->value[j] == '\r' || f->value[j] == '\n')
				bad = true;
		regular = true;
		for (uint32_t j = 0; j < f->name_len; j++)
			if (!is_tchar((unsigned char)f->name[j]) ||
			    (f->name[j] >= 'A' && f->name[j] <= 'Z'))
				bad = true;
		if (name_is(f, "connection") || name_is(f, "keep-alive") ||
		    name_is(f, "proxy-connection") || name_is(f, "transfer-encoding") ||
		    name_is(f, "upgrade"))
			bad = true;
		else if (name_is(f, "te") && !(f->value_len == 8 && !memcmp(f->value, "trailers", 8)))
			bad = true;
		else if (name_is(f, "content-length")) {
			uint64_t v;

			if (!parse_u64(f->value, f->value_len, &v) || (cl_seen && v != h->content_length))
				bad = true;
			else
				h->content_length = v;
			cl_seen = true;
		}
	}
	if (cl_seen && !bad)
		h->flags |= ST_H2_HF_CONTENT_LENGTH;
	if (req) {
		bool connect = h->method && h->method->value_len == 7 &&
			       !memcmp(h->method->value, "CONNECT", 7);

		if (!h->method || (h->protocol && !connect))
			bad = true;
		else if (connect && !h->protocol)
			bad = bad || !h->authority || h->scheme || h->path;
		else
			bad = bad || !h->scheme || !h->path || !h->path->value_len;
	} else if (resp) {
		if (!h->status || h->status == 101)
			bad = true;
		else if (h->status < 200)
			h->flags |= ST_H2_HF_INTERIM;
	}
	if (bad)
		h->flags |= ST_H2_HF_MALFORMED;
	return 0;
}

static void stream_end(struct st_h2 *c, struct h2s *s, int dir)
{
	qpush(c, ST_H2_EV_END, dir, s->id);
	s->f |= dir == ST_H2_CLIENT ? S_C_END : S_S_END;
	if ((s->f & (S_C_END | S_S_END)) == (S_C_END | S_S_END))
		sdel(c, s);
}

static void stream_drop(struct st_h2 *c, int dir, uint32_t id, enum st_h2_limit l)
{
	struct h2s *s = sfind(c, id);
	struct st_h2_event *e;

	if (s)
		sdel(c, s);
	c->st.limits[l]++;
	e = qpush(c, ST_H2_EV_DROP, dir, id);
	e->limit = (uint8_t)l;
}

/* The block of d is complete: its events. */
static void block_end(struct st_h2 *c, int dir)
{
	struct dir *d = &c->d[dir];
	enum bkind k = (enum bkind)d->bkind;
	bool end = d->block_flags & FL_END_STREAM;
	struct st_h2_event *e;
	struct h2s *s;

	d->in_block = false;
	c->st.header_blocks++;
	if (d->table_deferred) {
		d->table_deferred = false;
		c->st.table_changes++;
		if (nghttp2_hd_inflate_change_table_size(d->inf, d->table_to)) {
			stop(c, ST_H2_STOP_NOMEM, 0, ST_H2_LIMIT_NONE, "HPACK table size");
			return;
		}
	}
	if (k == B_DROP) {
		stream_drop(c, dir, d->block_stream, ST_H2_LIMIT_STREAMS);
		return;
	}
	if (k == B_DISCARD)
		return;
	s = sfind(c, d->block_stream);
	if (!s)
		return; /* forgotten meanwhile (a GOAWAY) */
	if (d->over) {
		stream_drop(c, dir, d->block_stream, ST_H2_LIMIT_HEADER_LIST);
		return;
	}
	if ((k == B_REQ_TRAILERS || k == B_RESP_TRAILERS) && !end) {
		/* trailers must end the stream (RFC 9113 8.1): a stream error, the peer resets */
		c->st.stream_errors++;
		return;
	}
	if (head_build(d, k)) {
		stop(c, ST_H2_STOP_NOMEM, 0, ST_H2_LIMIT_NONE, "header fields");
		return;
	}
	if (end)
		d->head.flags |= ST_H2_HF_END_STREAM;
	if ((d->head.flags & ST_H2_HF_INTERIM) && end) {
		/* a 1xx cannot end a stream (RFC 9113 8.1): malformed, the peer resets it */
		d->head.flags |= ST_H2_HF_MALFORMED;
		end = false;
	}
	e = qpush(c, k == B_REQ || k == B_RESP ? ST_H2_EV_HEAD : ST_H2_EV_TRAILERS, dir, s->id);
	e->head = &d->head;
	if (k == B_REQ) {
		s->f |= S_C_HEAD;
	} else if (k == B_RESP) {
		s->f |= S_S_HEAD;
		if (!(d->head.flags & ST_H2_HF_INTERIM)) {
			s->f |= S_S_FINAL;
			c->answered++;
		}
	}
	if (end)
		stream_end(c, s, dir);
}

/* ---- frames: the start ---------------------------------------------------------------------- */

static bool client_id(uint32_t id)
{
	return id & 1;
}

/* A stream the client opens now (HEADERS from it, or a response seen first). Sets *k. */
static int open_stream(struct st_h2 *c, uint32_t id, enum bkind want, enum bkind *k)
{
	struct dir *srv = &c->d[ST_H2_SERVER];

	if (srv->goaway && id > srv->goaway_last) {
		c->st.refused++;
		*k = B_DISCARD;
		return 0;
	}
	if (want == B_RESP && c->tn >= c->o.max_streams) {
		/* an answer fed before its request, no room: lost (counted), and no DROP, which
		 * would end a stream whose request may still find room */
		c->st.limits[ST_H2_LIMIT_STREAMS]++;
		*k = B_DISCARD;
		return 0;
	}
	if (c->o.max_streams_total && c->st.streams >= c->o.max_streams_total) {
		stop(c, ST_H2_STOP_LIMIT, 0, ST_H2_LIMIT_STREAMS_TOTAL, "streams over max_streams_total");
		return -1;
	}
	c->st.streams++;
	if (c->tn >= c->o.max_streams) {
		*k = B_DROP;
		return 0;
	}
	if (!sadd(c, id)) {
		stop(c, ST_H2_STOP_NOMEM, 0, ST_H2_LIMIT_NONE, "stream table");
		return -1;
	}
	*k = want;
	return 0;
}

/* HEADERS from dir on stream id: what its block is for. */
static int headers_kind(struct st_h2 *c, int dir, uint32_t id, enum bkind *k)
{
	struct dir *cl = &c->d[ST_H2_CLIENT];
	struct h2s *s = sfind(c, id);

	if (dir == ST_H2_CLIENT) {
		if (!client_id(id)) {
			proto(c, ST_H2_PROTOCOL_ERROR, "client HEADERS on an even stream");
			return -1;
		}
		if (s) {
			if (!(s->f & S_C_HEAD)) {
				*k = B_REQ;
			} else if (s->f & S_C_END) {
				c->st.stream_errors++;
				*k = B_DISCARD;
			} else {
				*k = B_REQ_TRAILERS;
			}
			if (id > cl->last_id)
				cl->last_id = id;
			return 0;
		}
		if (id <= cl->last_id) {
			c->st.closed_frames++;
			*k = B_DISCARD;
			return 0;
		}
		cl->last_id = id;
		return open_stream(c, id, B_REQ, k);
	}
	if (!client_id(id)) {
		if (id > c->d[ST_H2_SERVER].last_id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "server HEADERS on a stream it did not promise");
			return -1;
		}
		c->st.pushed_frames++;
		*k = B_DISCARD;
		return 0;
	}
	if (s) {
		if (s->f & S_S_END) {
			c->st.stream_errors++;
			*k = B_DISCARD;
		} else {
			*k = s->f & S_S_FINAL ? B_RESP_TRAILERS : B_RESP;
		}
		return 0;
	}
	if (id <= cl->last_id) {
		c->st.closed_frames++;
		*k = B_DISCARD;
		return 0;
	}
	/* an answer to a request the capture has not handed over yet (a hole in the client's
	 * direction delays it): the stream opens here */
	return open_stream(c, id, B_RESP, k);
}

/* DATA from dir on stream id: whether its bytes are handed out (0), or -1 (stopped). */
static int data_check(struct st_h2 *c, int dir, uint32_t id, bool *deliver)
{
	struct h2s *s = sfind(c, id);

	*deliver = false;
	if (dir == ST_H2_CLIENT) {
		if (!client_id(id)) {
			c->st.stream_errors++;
			return 0;
		}
		if (!s && id > c->d[ST_H2_CLIENT].last_id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "DATA on an idle stream");
			return -1;
		}
		if (s && !(s->f & S_C_HEAD)) {
			proto(c, ST_H2_PROTOCOL_ERROR, "DATA before the request's HEADERS");
			return -1;
		}
		if (!s)
			c->st.closed_frames++;
		else if (s->f & S_C_END)
			c->st.stream_errors++;
		else
			*deliver = true;
		return 0;
	}
	if (!client_id(id)) {
		c->st.pushed_frames++;
		return 0;
	}
	if (!s)
		c->st.closed_frames++;
	else if (!(s->f & S_S_FINAL) || (s->f & S_S_END))
		c->st.stream_errors++;
	else
		*deliver = true;
	return 0;
}

/* The frame header of d is complete: check it and set up the payload. 0, or -1 (stopped). */
static int frame_begin(struct st_h2 *c, int dir)
{
	struct dir *d = &c->d[dir], *rx = &c->d[!dir];
	uint32_t len = (uint32_t)d->fh[0] << 16 | (uint32_t)d->fh[1] << 8 | d->fh[2];
	uint32_t id = ((uint32_t)d->fh[5] << 24 | (uint32_t)d->fh[6] << 16 |
		       (uint32_t)d->fh[7] << 8 | d->fh[8]) & 0x7fffffffu;
	uint8_t t = d->fh[3], fl = d->fh[4];
	enum bkind k;

	d->type = t;
	d->flags = fl;
	d->len = len;
	d->stream = id;
	d->pos = 0;
	d->pre = 0;
	d->content_end = len;
	d->sm_fill = 0;
	d->deliver = false;
	if (!d->got_settings) {
		if (t != F_SETTINGS || (fl & FL_ACK)) {
			if (dir == ST_H2_SERVER && !c->d[ST_H2_CLIENT].any)
				stop(c, ST_H2_STOP_JOINED, 0, ST_H2_LIMIT_NONE,
				     "the server's first frame is not SETTINGS, no client preface seen");
			else
				proto(c, ST_H2_PROTOCOL_ERROR, "the first frame is not SETTINGS");
			return -1;
		}
		d->got_settings = true;
	}
	if (len > frame_limit(rx)) {
		proto(c, ST_H2_FRAME_SIZE_ERROR, "frame over the receiver's SETTINGS_MAX_FRAME_SIZE");
		return -1;
	}
	if (d->in_block && t != F_CONT) {
		proto(c, ST_H2_PROTOCOL_ERROR, "a frame inside a header block");
		return -1;
	}
	switch (t) {
	case F_DATA:
		if (!id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "DATA on stream 0");
			return -1;
		}
		if (fl & FL_PADDED)
			d->pre = 1;
		if (len < d->pre) {
			proto(c, ST_H2_FRAME_SIZE_ERROR, "DATA too short for its pad length");
			return -1;
		}
		return data_check(c, dir, id, &d->deliver);
	case F_HEADERS:
		if (!id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "HEADERS on stream 0");
			return -1;
		}
		d->pre = (fl & FL_PADDED ? 1 : 0) + (fl & FL_PRIORITY ? 5 : 0);
		if (len < d->pre) {
			proto(c, ST_H2_FRAME_SIZE_ERROR, "HEADERS too short for its fields");
			return -1;
		}
		if (headers_kind(c, dir, id, &k))
			return -1;
		block_begin(d, id, k, fl);
		return 0;
	case F_PUSH:
		if (dir == ST_H2_CLIENT) {
			proto(c, ST_H2_PROTOCOL_ERROR, "PUSH_PROMISE from the client");
			return -1;
		}
		if (!id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "PUSH_PROMISE on stream 0");
			return -1;
		}
		if (!rx->acked.push) {
			proto(c, ST_H2_PROTOCOL_ERROR, "PUSH_PROMISE the client disabled");
			return -1;
		}
		d->pre = (fl & FL_PADDED ? 1 : 0) + 4;
		if (len < d->pre) {
			proto(c, ST_H2_FRAME_SIZE_ERROR, "PUSH_PROMISE too short");
			return -1;
		}
		c->st.push_promises++;
		block_begin(d, id, B_DISCARD, 0);
		return 0;
	case F_CONT:
		if (!d->in_block || id != d->block_stream) {
			proto(c, ST_H2_PROTOCOL_ERROR, "CONTINUATION without its HEADERS");
			return -1;
		}
		c->st.continuations++;
		if (++d->block_conts > c->o.max_continuation) {
			stop(c, ST_H2_STOP_LIMIT, 0, ST_H2_LIMIT_CONTINUATION,
			     "CONTINUATION frames over max_continuation");
			return -1;
		}
		return 0;
	case F_PRIORITY:
		if (!id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "PRIORITY on stream 0");
			return -1;
		}
		return 0;
	case F_RST:
		if (!id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "RST_STREAM on stream 0");
			return -1;
		}
		if (len != 4) {
			proto(c, ST_H2_FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes");
			return -1;
		}
		if (dir == ST_H2_CLIENT && client_id(id) && id > d->last_id && !sfind(c, id)) {
			proto(c, ST_H2_PROTOCOL_ERROR, "RST_STREAM on an idle stream");
			return -1;
		}
		return 0;
	case F_SETTINGS:
		if (id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "SETTINGS on a stream");
			return -1;
		}
		if ((fl & FL_ACK) ? len != 0 : len % 6 != 0) {
			proto(c, ST_H2_FRAME_SIZE_ERROR, "SETTINGS of a wrong length");
			return -1;
		}
		memset(&d->cur, 0, sizeof(d->cur));
		return 0;
	case F_PING:
		if (id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "PING on a stream");
			return -1;
		}
		if (len != 8) {
			proto(c, ST_H2_FRAME_SIZE_ERROR, "PING not 8 bytes");
			return -1;
		}
		return 0;
	case F_GOAWAY:
		if (id) {
			proto(c, ST_H2_PROTOCOL_ERROR, "GOAWAY on a stream");
			return -1;
		}
		if (len < 8) {
			proto(c, ST_H2_FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes");
			return -1;
		}
		return 0;
	case F_WINUP:
		if (len != 4) {
			proto(c, ST_H2_FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes");
			return -1;
		}
		if (dir == ST_H2_CLIENT && client_id(id) && id > d->last_id && !sfind(c, id)) {
			proto(c, ST_H2_PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* ---- frames: the end ------------------------------------------------------------------------ */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A SETTINGS value dir may not send: its error code and what is wrong, or NULL. */
static const char *setting_bad(int dir, uint16_t id, uint32_t v, uint32_t *code)
{
	*code = ST_H2_PROTOCOL_ERROR;
	switch (id) {
	case 0x2: /* ENABLE_PUSH: a server never sends 1 (RFC 9113 6.5.2) */
		return v > 1 || (dir == ST_H2_SERVER && v) ? "SETTINGS_ENABLE_PUSH invalid" : NULL;
	case 0x4:
		*code = ST_H2_FLOW_CONTROL_ERROR;
		return v > WINDOW_MAX ? "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1" : NULL;
	case 0x5:
		return v < FRAME_MIN || v > FRAME_MAX ? "SETTINGS_MAX_FRAME_SIZE out of range" : NULL;
	case 0x8:
		return v > 1 ? "SETTINGS_ENABLE_CONNECT_PROTOCOL invalid" : NULL;
	default:
		return NULL;
	}
}

/* One SETTINGS entry (6 bytes) from dir into s. 0, or -1 (the error is in *bad, *code). */
static int setting(struct setv *s, int dir, const uint8_t *p, const char **bad, uint32_t *code)
{
	uint16_t id = (uint16_t)(p[0] << 8 | p[1]);
	uint32_t v = be32(p + 2);

	*bad = setting_bad(dir, id, v, code);
	if (*bad)
		return -1;
	/* the ones the framer follows; MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE are
	 * advisory here (the framer's own bounds apply), the rest changes nothing it reads */
	if (id == 0x1) {
		s->has_table = 1;
		s->table = v;
	} else if (id == 0x2) {
		s->has_push = 1;
		s->push = (uint8_t)v;
	} else if (id == 0x5) {
		s->has_frame = 1;
		s->frame = v;
	}
	return 0;
}

static void settings_end(struct st_h2 *c, int dir)
{
	struct dir *d = &c->d[dir], *other = &c->d[!dir];

	if (d->flags & FL_ACK) {
		/* dir acknowledges the other side's oldest SETTINGS: its encoder follows them now */
		c->st.settings_acks[dir]++;
		if (other->npending) {
			struct setv s = other->pending[0];

			memmove(other->pending, other->pending + 1, --other->npending * sizeof(s));
			settings_acked(c, other, d, &s);
		} else if (++other->owed > OWED_MAX) {
			proto(c, ST_H2_PROTOCOL_ERROR, "SETTINGS ACKs without SETTINGS");
		}
		return;
	}
	c->st.settings[dir]++;
	if (d->owed) {
		/* its ACK was fed first (a hole in this direction delayed these bytes) */
		d->owed--;
		settings_acked(c, d, other, &d->cur);
		return;
	}
	if (d->npending == ST_H2_SETTINGS_PENDING_MAX) {
		stop(c, ST_H2_STOP_LIMIT, 0, ST_H2_LIMIT_SETTINGS, "SETTINGS never acknowledged");
		return;
	}
	d->pending[d->npending++] = d->cur;
}

static void rst_end(struct st_h2 *c, int dir)
{
	struct dir *d = &c->d[dir];
	struct h2s *s = sfind(c, d->stream);
	struct st_h2_event *e;
	bool early;

	c->st.resets[dir]++;
	if (!client_id(d->stream)) {
		c->st.pushed_frames++;
		return;
	}
	if (!s) {
		c->st.closed_frames++;
		return;
	}
	early = dir == ST_H2_CLIENT && !(s->f & S_S_FINAL);
	e = qpush(c, ST_H2_EV_RESET, dir, d->stream);
	e->error_code = be32(d->sm);
	sdel(c, s);
	if (early && ++c->st.early_resets > c->answered + c->o.max_early_resets)
		stop(c, ST_H2_STOP_LIMIT, 0, ST_H2_LIMIT_EARLY_RESETS,
		     "client resets before answers over max_early_resets");
}

static void goaway_end(struct st_h2 *c, int dir)
{
	struct dir *d = &c->d[dir];
	uint32_t last = be32(d->sm) & 0x7fffffffu;
	struct st_h2_event *e;

	c->st.goaways++;
	e = qpush(c, ST_H2_EV_GOAWAY, dir, 0);
	e->last_stream = last;
	e->error_code = be32(d->sm + 4);
	if (dir != ST_H2_SERVER)
		return;
	if (d->goaway && last >= d->goaway_last)
		return;
	d->goaway_last = last;
	d->goaway = true;
	/* the client's streams above it were never processed: forgotten, no event each */
	for (uint32_t i = 0; i < c->tcap;) {
		if (c->t[i].id > d->goaway_last && client_id(c->t[i].id)) {
			c->st.refused++;
			sdel(c, &c->t[i]);
			continue; /* an entry may have moved into slot i */
		}
		i++;
	}
}

static void frame_end(struct st_h2 *c, int dir)
{
	struct dir *d = &c->d[dir];
	struct h2s *s;

	c->st.frames[dir]++;
	d->state = D_FHDR;
	d->fh_fill = 0;
	switch (d->type) {
	case F_DATA:
		if (d->deliver && (d->flags & FL_END_STREAM) && (s = sfind(c, d->stream)))
			stream_end(c, s, dir);
		break;
	case F_HEADERS:
	case F_PUSH:
	case F_CONT:
		if (d->type == F_PUSH) {
			uint32_t p = be32(d->sm) & 0x7fffffffu;

			if (!p || client_id(p) || p <= d->last_id) {
				proto(c, ST_H2_PROTOCOL_ERROR, "PUSH_PROMISE of an invalid stream");
				return;
			}
			d->last_id = p;
		}
		if (d->flags & FL_END_HEADERS)
			block_end(c, dir);
		break;
	case F_PRIORITY:
		c->st.priorities++;
		if (d->len != 5)
			c->st.stream_errors++;
		break;
	case F_RST:
		rst_end(c, dir);
		break;
	case F_SETTINGS:
		settings_end(c, dir);
		break;
	case F_PING:
		c->st.pings++;
		break;
	case F_GOAWAY:
		goaway_end(c, dir);
		break;
	case F_WINUP:
		c->st.window_updates++;
		if (!(be32(d->sm) & 0x7fffffffu)) {
			if (!d->stream)
				proto(c, ST_H2_PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection");
			else
				c->st.stream_errors++;
		}
		break;
	default:
		c->st.unknown_frames++;
		break;
	}
}

/* ---- payloads ----------------------------------------------------------------------------- */

/* Fixed fields gathered into d->sm. */
static size_t gather(struct dir *d, const uint8_t *p, size_t n, size_t want)
{
	size_t k = want - d->sm_fill < n ? want - d->sm_fill : n;

	memcpy(d->sm + d->sm_fill, p, k);
	d->sm_fill = (uint8_t)(d->sm_fill + k);
	return k;
}

/*
 * Bytes of a frame's prefix (the pad length, then HEADERS' priority fields or PUSH_PROMISE's
 * promised stream id): returns how many of p it took; sets content_end once the pad length is
 * known. -1 when stopped.
 */
static ssize_t prefix(struct st_h2 *c, struct dir *d, const uint8_t *p, size_t n)
{
	size_t k = 0, want;

	if ((d->flags & FL_PADDED) && d->pos == 0) {
		uint32_t pad = p[0];

		k = 1;
		if (pad > d->len - d->pre) {
			proto(c, ST_H2_PROTOCOL_ERROR, "padding longer than the payload");
			return -1;
		}
		c->st.padding_bytes += 1 + pad;
		d->content_end = d->len - pad;
	}
	want = d->pre - (d->pos + k);
	if (want > n - k)
		want = n - k;
	if (d->type == F_PUSH)
		gather(d, p + k, want, 4);
	return (ssize_t)(k + want);
}

/* Consumes payload bytes of d from p (n <= what the frame has left). Returns bytes taken,
 * or -1 when stopped. May queue events. */
static ssize_t payload(struct st_h2 *c, int dir, const uint8_t *p, size_t n)
{
	struct dir *d = &c->d[dir];
	size_t k = 0;

	switch (d->type) {
	case F_DATA:
	case F_HEADERS:
	case F_PUSH:
	case F_CONT:
		if (d->pos < d->pre) {
			ssize_t r = prefix(c, d, p, n);

			if (r < 0)
				return -1;
			return r;
		}
		if (d->pos < d->content_end) {
			k = d->content_end - d->pos < n ? d->content_end - d->pos : n;
			if (d->type == F_DATA) {
				if (d->deliver) {
					struct st_h2_event *e = qpush(c, ST_H2_EV_DATA, dir, d->stream);

					e->data = p;
					e->data_len = k;
					c->st.data_bytes[dir] += k;
				}
				return (ssize_t)k;
			}
			if (inflate_some(c, d, p, k,
					 (d->flags & FL_END_HEADERS) && d->pos + k == d->content_end))
				return -1;
			return (ssize_t)k;
		}
		/* padding */
		return (ssize_t)n;
	case F_SETTINGS:
		if (d->flags & FL_ACK)
			return (ssize_t)n;
		k = gather(d, p, n, 6);
		if (d->sm_fill == 6) {
			const char *bad;
			uint32_t code;

			d->sm_fill = 0;
			if (setting(&d->cur, dir, d->sm, &bad, &code)) {
				proto(c, code, bad);
				return -1;
			}
		}
		return (ssize_t)k;
	case F_RST:
	case F_WINUP:
		return (ssize_t)gather(d, p, n, 4);
	case F_GOAWAY:
		if (d->pos < 8)
			return (ssize_t)gather(d, p, n, 8);
		return (ssize_t)n; /* debug data: skipped */
	default:
		return (ssize_t)n; /* PING, PRIORITY, unknown types */
	}
}

/* A HEADERS/PUSH_PROMISE/CONTINUATION frame whose content region is empty and ends the
 * block: the inflater still has to be told the block is over. */
static int block_final_empty(struct st_h2 *c, struct dir *d)
{
	static const uint8_t none[1];

	if ((d->type == F_HEADERS || d->type == F_PUSH || d->type == F_CONT) &&
	    (d->flags & FL_END_HEADERS) && d->pos >= d->pre && d->pos >= d->content_end &&
	    !d->block_done)
		return inflate_some(c, d, none, 0, true);
	return 0;
}

/* ---- feeding ------------------------------------------------------------------------------ */

static bool qpop(struct st_h2 *c, struct st_h2_event *ev)
{
	if (!c->qn)
		return false;
	*ev = c->q[c->qh];
	c->qh = (c->qh + 1) % QCAP;
	c->qn--;
	return true;
}

size_t st_h2__feed(struct st_h2 *c, int dir, const void *buf, size_t len, struct st_h2_event *ev)
{
	const uint8_t *p = buf;
	struct dir *d;
	size_t off = 0;

	if (qpop(c, ev))
		return 0;
	memset(ev, 0, sizeof(*ev));
	if (dir != ST_H2_CLIENT && dir != ST_H2_SERVER)
		return 0;
	d = &c->d[dir];
	if (len)
		d->any = true;
	while (off < len && !c->stopped && !c->qn) {
		size_t n = len - off;

		switch (d->state) {
		case D_PREFACE: {
			size_t k = ST_H2_PREFACE_LEN - d->preface_fill < n ?
					   ST_H2_PREFACE_LEN - d->preface_fill : n;

			if (memcmp(p + off, &ST_H2_PREFACE[d->preface_fill], k)) {
				stop(c, ST_H2_STOP_JOINED, 0, ST_H2_LIMIT_NONE,
				     "no client connection preface");
				break;
			}
			d->preface_fill += (uint32_t)k;
			off += k;
			if (d->preface_fill == ST_H2_PREFACE_LEN)
				d->state = D_FHDR;
			break;
		}
		case D_FHDR: {
			size_t k = FH_LEN - d->fh_fill < n ? FH_LEN - d->fh_fill : n;

			memcpy(d->fh + d->fh_fill, p + off, k);
			d->fh_fill = (uint8_t)(d->fh_fill + k);
			off += k;
			if (d->fh_fill < FH_LEN)
				break;
			if (frame_begin(c, dir))
				break;
			d->state = D_PAYLOAD;
			if (block_final_empty(c, d))
				break;
			if (!d->len)
				frame_end(c, dir);
			break;
		}
		case D_PAYLOAD: {
			ssize_t k;

			if (n > d->len - d->pos)
				n = d->len - d->pos;
			k = payload(c, dir, p + off, n);
			if (k < 0)
				break;
			off += (size_t)k;
			d->pos += (uint32_t)k;
			if (block_final_empty(c, d))
				break;
			if (d->pos == d->len)
				frame_end(c, dir);
			break;
		}
		}
	}
	if (c->stopped && off < len) {
		c->st.ignored_bytes += len - off;
		off = len;
	}
	c->st.bytes[dir] += off;
	if (!qpop(c, ev))
		ev->type = ST_H2_EV_NEED_MORE;
	return off;
}

void st_h2__stop(struct st_h2 *c, enum st_h2_stop why)
{
	stop(c, why, 0, ST_H2_LIMIT_NONE,
	     why == ST_H2_STOP_JOINED ? "joined midway" : why == ST_H2_STOP_GAP ? "bytes lost" :
										  "stopped");
}

int st_h2__skip(struct st_h2 *c, int dir, uint64_t len)
{
	struct dir *d;
	uint32_t k = 0;

	if (dir != ST_H2_CLIENT && dir != ST_H2_SERVER)
		return -EINVAL;
	if (c->qn)
		return -EBUSY;
	if (c->stopped) {
		c->st.ignored_bytes += len;
		return 0;
	}
	d = &c->d[dir];
	if (!len)
		return 0;
	/* only bytes the framer would take without looking: DATA's content (whose count is
	 * all a consumer keeps), padding, PING, PRIORITY, GOAWAY's debug data, unknown types */
	if (d->state != D_PAYLOAD || d->pos < d->pre || len > d->len - d->pos)
		return -ENOENT;
	switch (d->type) {
	case F_DATA:
		if (d->pos < d->content_end)
			k = d->content_end - d->pos < len ? d->content_end - d->pos : (uint32_t)len;
		break;
	case F_HEADERS:
	case F_PUSH:
	case F_CONT:
		if (d->pos < d->content_end)
			return -ENOENT;
		break;
	case F_GOAWAY:
		if (d->pos < 8)
			return -ENOENT;
		break;
	case F_SETTINGS:
	case F_RST:
	case F_WINUP:
		return -ENOENT;
	default:
		break;
	}
	if (k && d->deliver) {
		struct st_h2_event *e = qpush(c, ST_H2_EV_DATA, dir, d->stream);

		e->data = NULL;
		e->data_len = k;
		c->st.data_bytes[dir] += k;
	}
	c->st.skipped_bytes += len;
	d->pos += (uint32_t)len;
	if (d->pos == d->len)
		frame_end(c, dir);
	return 0;
}

void st_h2__eof(struct st_h2 *c, int dir)
{
	struct dir *d;

	if (dir != ST_H2_CLIENT && dir != ST_H2_SERVER)
		return;
	d = &c->d[dir];
	if (d->ended)
		return;
	d->ended = true;
	if ((d->state == D_PREFACE && d->preface_fill) || (d->state == D_FHDR && d->fh_fill) ||
	    d->state == D_PAYLOAD || d->in_block)
		stop(c, ST_H2_STOP_TRUNCATED, 0, ST_H2_LIMIT_NONE, "the stream ended inside a frame");
}

bool st_h2__stopped(const struct st_h2 *c)
{
	return c->stopped;
}

void st_h2__stats(const struct st_h2 *c, struct st_h2_stats *out)
{
	*out = c->st;
}

size_t st_h2__mem(const struct st_h2 *c)
{
	size_t m = sizeof(*c) + (size_t)c->tcap * sizeof(*c->t);

	for (int i = 0; i < 2; i++) {
		const struct dir *d = &c->d[i];

		m += d->acap + (size_t)d->rfcap * sizeof(*d->rf) + (size_t)d->hfcap * sizeof(*d->hf);
		m += nghttp2_hd_inflate_get_dynamic_table_size(d->inf);
	}
	return m;
}

/* ---- life ------------------------------------------------------------------------------------ */

struct st_h2 *st_h2__new(const struct st_h2_opts *opts)
{
	struct st_h2 *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (opts)
		c->o = *opts;
	if (!c->o.max_header_list)
		c->o.max_header_list = ST_H2_MAX_HEADER_LIST_DEFAULT;
	if (!c->o.max_block)
		c->o.max_block = ST_H2_MAX_BLOCK_DEFAULT;
	if (!c->o.max_continuation)
		c->o.max_continuation = ST_H2_MAX_CONTINUATION_DEFAULT;
	if (!c->o.max_streams)
		c->o.max_streams = ST_H2_MAX_STREAMS_DEFAULT;
	if (!c->o.max_early_resets)
		c->o.max_early_resets = ST_H2_MAX_EARLY_RESETS_DEFAULT;
	/* below HPACK's initial 4096 the first block could not be followed exactly */
	if (c->o.max_table < TABLE_DEFAULT)
		c->o.max_table = c->o.max_table ? TABLE_DEFAULT : ST_H2_MAX_TABLE_DEFAULT;
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->d[i];

		d->state = i == ST_H2_CLIENT ? D_PREFACE : D_FHDR;
		d->acked.table = TABLE_DEFAULT;
		d->acked.frame = FRAME_MIN;
		d->acked.push = 1;
		if (nghttp2_hd_inflate_new(&d->inf)) {
			st_h2__free(c);
			errno = ENOMEM;
			return NULL;
		}
	}
	return c;
}

void st_h2__free(struct st_h2 *c)
{
	if (!c)
		return;
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->d[i];

		if (d->inf)
			nghttp2_hd_inflate_del(d->inf);
		free(d->arena);
		free(d->rf);
		free(d->hf);
	}
	free(c->t);
	free(c);
}

/* ---- detection and the HTTP/1.1 upgrade ------------------------------------------------------ */

enum st_h2_detect st_h2_detect(const void *buf, size_t len)
{
	size_t n = len < ST_H2_PREFACE_LEN ? len : ST_H2_PREFACE_LEN;

	if (memcmp(buf, ST_H2_PREFACE, n))
		return ST_H2_DETECT_NO;
	return n == ST_H2_PREFACE_LEN ? ST_H2_DETECT_YES : ST_H2_DETECT_MAYBE;
}

/* The comma-separated list in the values of every field named name holds token. */
static bool has_token(const struct st_http_head *h, const char *name, const char *token)
{
	for (int i = st_http__head_find(h, name, 0); i >= 0;
	     i = st_http__head_find(h, name, (uint32_t)i + 1)) {
		const char *v = h->headers[i].value, *end = v + h->headers[i].value_len;

		while (v < end) {
			const char *e = memchr(v, ',', (size_t)(end - v)), *a = v, *b;

			if (!e)
				e = end;
			b = e;
			while (a < b && (*a == ' ' || *a == '\t'))
				a++;
			while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
				b--;
			if (span_ieq(a, (size_t)(b - a), token))
				return true;
			v = e + 1;
		}
	}
	return false;
}

bool st_h2_upgrade_requested(const struct st_http_head *req)
{
	int i = st_http__head_find(req, "http2-settings", 0);

	return has_token(req, "upgrade", "h2c") && i >= 0 &&
	       st_http__head_find(req, "http2-settings", (uint32_t)i + 1) < 0;
}

bool st_h2_upgrade_accepted(const struct st_http_head *resp)
{
	return resp->status == 101 && has_token(resp, "upgrade", "h2c");
}

static int b64url_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/* base64url without padding (RFC 7540 3.2.1; trailing '=' tolerated). Returns the decoded
 * length, or -1. out holds at least n * 3 / 4 bytes. */
static ssize_t b64url_decode(const char *s, size_t n, uint8_t *out)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	while (n && s[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6 || (acc & ((1u << bits) - 1)))
		return -1; /* a lone sextet, or bits left over that are not zero */
	return (ssize_t)o;
}

static bool hop_by_hop(const struct st_http_head *req, const struct st_http_header *f)
{
	static const char *const names[] = {
		"host", "connection", "upgrade", "http2-settings", "keep-alive", "proxy-connection",
		"transfer-encoding", "te",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (span_ieq(f->name, f->name_len, names[i]))
			return true;
	/* the fields Connection names are this hop's too */
	for (int i = st_http__head_find(req, "connection", 0); i >= 0;
	     i = st_http__head_find(req, "connection", (uint32_t)i + 1)) {
		char name[64];

		if (f->name_len >= sizeof(name))
			continue;
		memcpy(name, f->name, f->name_len);
		name[f->name_len] = 0;
		if (has_token(req, "connection", name))
			return true;
	}
	return false;
}

#define UPUT(n, nl, v, vl, low)                                                              \
	field_add(c, d, (const uint8_t *)(n), (nl), (const uint8_t *)(v), (vl), 0, (low))

int st_h2__upgrade(struct st_h2 *c, const struct st_http_head *req)
{
	struct dir *d = &c->d[ST_H2_CLIENT], *srv = &c->d[ST_H2_SERVER];
	int si = st_http__head_find(req, "http2-settings", 0), hi = st_http__head_find(req, "host", 0);
	const struct st_http_header *hs;
	struct st_h2_event *e;
	uint8_t *pl;
	ssize_t n;
	int r = 0;

	if (d->any || srv->any || c->stopped || c->tn || !st_h2_upgrade_requested(req) || si < 0)
		return -EINVAL;
	hs = &req->headers[si];
	pl = malloc(hs->value_len * 3 / 4 + 3);
	if (!pl)
		return -ENOMEM;
	n = b64url_decode(hs->value, hs->value_len, pl);
	if (n < 0 || n % 6) {
		free(pl);
		return -EINVAL;
	}
	memset(&d->cur, 0, sizeof(d->cur));
	for (ssize_t i = 0; i < n && !r; i += 6) {
		const char *bad;
		uint32_t code;

		r = setting(&d->cur, ST_H2_CLIENT, pl + i, &bad, &code);
	}
	free(pl);
	if (r)
		return -EINVAL;
	/* acknowledged by the 101 (RFC 7540 3.2.1) */
	if (settings_acked(c, d, srv, &d->cur))
		return -ENOMEM;
	d->last_id = 1;
	c->st.streams++;
	if (!sadd(c, 1))
		return -ENOMEM;
	block_begin(d, 1, B_REQ, FL_END_STREAM);
	d->in_block = false;
	if (UPUT(":method", 7, req->method_str, req->method_len, false) ||
	    UPUT(":scheme", 7, "http", 4, false) ||
	    (hi >= 0 && UPUT(":authority", 10, req->headers[hi].value, req->headers[hi].value_len,
			    false)) ||
	    UPUT(":path", 5, req->target, req->target_len, false))
		return -ENOMEM;
	for (uint32_t i = 0; i < req->nheaders; i++) {
		const struct st_http_header *f = &req->headers[i];

		if (!hop_by_hop(req, f) && UPUT(f->name, f->name_len, f->value, f->value_len, true))
			return -ENOMEM;
	}
	if (head_build(d, B_REQ))
		return -ENOMEM;
	d->head.flags |= ST_H2_HF_UPGRADE | ST_H2_HF_END_STREAM;
	if (req->body != ST_HTTP_BODY_NONE)
		d->head.flags |= ST_H2_HF_HTTP1_BODY;
	e = qpush(c, ST_H2_EV_HEAD, ST_H2_CLIENT, 1);
	e->head = &d->head;
	sfind(c, 1)->f |= S_C_HEAD;
	stream_end(c, sfind(c, 1), ST_H2_CLIENT);
	return 0;
}

#undef UPUT

int st_h2_head_find(const struct st_h2_head *h, const char *name, uint32_t from)
{
	size_t l = strlen(name);

	for (uint32_t i = from; i < h->nfields; i++)
		if (h->fields[i].name_len == l && !memcmp(h->fields[i].name, name, l))
			return (int)i;
	return -1;
}
