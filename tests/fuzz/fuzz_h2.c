/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/http/h2.c. Input: one config byte, then segments, each a byte
 * (bit 7: the direction, bits 0-6: the length, 0 meaning 128) and that many bytes.
 * Config bits 0-1 say what comes before the segments:
 *   0: nothing (any bytes, both directions);
 *   1: a hand-made opening (the client's preface, both SETTINGS and their ACKs);
 *   2: a valid conversation libnghttp2 wrote at start-up (dynamic tables filled both ways,
 *      streams answered, one request still sending its body, one answer still open);
 *   3: the same, with the bytes of the first segment XORed into it from its start.
 * Bit 2: small bounds (so that they are hit); bit 3: the framer was told the connection was
 * joined midway (nothing may come out but STOP).
 *
 * The same sequence is fed whole, byte by byte and at random splits, and at random splits with
 * pieces handed to st_h2__skip() (the headers-only policy's elided bytes) where it takes them:
 * the event traces must be the same (DATA merged: skipping a byte the framer would hand out
 * or ignore changes nothing but its pointer), every byte consumed, DATA inside the fed span, STOP at most once and
 * last. Per stream, in each direction: a head before its DATA, nothing after its END, nothing
 * at all after RESET or DROP; after the server's GOAWAY, nothing for streams above its last
 * stream id. Memory stays within what the bounds allow.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "fuzz_check.h"
#include "h2.h"

/* ---- the generated prefix ----------------------------------------------------------------- */

struct seg {
	uint8_t dir;
	uint32_t off, len;
};

static uint8_t pre[1 << 16];
static size_t pre_len;
static struct seg pre_seg[64];
static size_t pre_n;

static void pre_add(int dir, const uint8_t *p, size_t n)
{
	if (!n)
		return;
	CHECK(pre_len + n <= sizeof(pre) && pre_n < 64);
	if (pre_n && pre_seg[pre_n - 1].dir == dir) {
		pre_seg[pre_n - 1].len += (uint32_t)n;
	} else {
		pre_seg[pre_n].dir = (uint8_t)dir;
		pre_seg[pre_n].off = (uint32_t)pre_len;
		pre_seg[pre_n].len = (uint32_t)n;
		pre_n++;
	}
	memcpy(pre + pre_len, p, n);
	pre_len += n;
}

static size_t send_all(nghttp2_session *from, int dir, nghttp2_session *to)
{
	size_t total = 0;

	for (;;) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(from, &d);

		CHECK(n >= 0);
		if (!n)
			return total;
		pre_add(dir, d, (size_t)n);
		CHECK(nghttp2_session_mem_recv(to, d, (size_t)n) == n);
		total += (size_t)n;
	}
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0 }

static void make_prefix(void)
{
	nghttp2_session_callbacks *cb;
	nghttp2_session *cl, *sv;
	nghttp2_settings_entry ct = { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 8192 };
	nghttp2_settings_entry st = { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 2048 };
	nghttp2_nv req[] = { NV(":method", "GET"), NV(":scheme", "http"),
			     NV(":authority", "example.test"), NV(":path", "/a/b?c=d"),
			     NV("user-agent", "fuzz/1"), NV("x-token", "0123456789abcdef") };
	nghttp2_nv post[] = { NV(":method", "POST"), NV(":scheme", "http"),
			      NV(":authority", "example.test"), NV(":path", "/upload"),
			      NV("content-type", "application/grpc") };
	nghttp2_nv resp[] = { NV(":status", "200"), NV("content-type", "text/plain"),
			      NV("x-served-by", "fuzz-server-1") };

	CHECK(nghttp2_session_callbacks_new(&cb) == 0);
	CHECK(nghttp2_session_client_new(&cl, cb, NULL) == 0);
	CHECK(nghttp2_session_server_new(&sv, cb, NULL) == 0);
	CHECK(nghttp2_submit_settings(cl, 0, &ct, 1) == 0);
	CHECK(nghttp2_submit_settings(sv, 0, &st, 1) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(nghttp2_submit_request(cl, NULL, req, 6, NULL, NULL) > 0);
	/* stream 7: a request whose body never ends (the segments may go on with it) */
	CHECK(nghttp2_submit_headers(cl, 0, -1, NULL, post, 5, NULL) == 7);
	for (int round = 0; round < 4; round++) {
		send_all(cl, 0, sv);
		if (round == 0) {
			for (int32_t id = 1; id <= 3; id += 2)
				CHECK(nghttp2_submit_response(sv, id, resp, 3, NULL) == 0);
			/* stream 5 gets its head, not its end */
			CHECK(nghttp2_submit_headers(sv, 0, 5, NULL, resp, 3, NULL) == 0);
		}
		send_all(sv, 1, cl);
	}
	nghttp2_session_del(cl);
	nghttp2_session_del(sv);
	nghttp2_session_callbacks_del(cb);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	make_prefix();
	return 0;
}

/* ---- traces ------------------------------------------------------------------------------- */

struct tev {
	uint8_t type, dir, stop, limit;
	uint32_t stream, code, last, flags, nf;
	uint64_t h;     /* fields or data, hashed */
	uint64_t n;     /* DATA: bytes */
};

struct trace {
	struct tev *e;
	size_t n, cap;
	uint64_t consumed;
	bool stopped;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void push(struct trace *t, const struct tev *e)
{
	struct tev *last = t->n ? &t->e[t->n - 1] : NULL;

	if (e->type == ST_H2_EV_DATA && last && last->type == ST_H2_EV_DATA &&
	    last->stream == e->stream && last->dir == e->dir) {
		last->n += e->n;
		return;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->e = realloc(t->e, t->cap * sizeof(*t->e));
		CHECK(t->e);
	}
	t->e[t->n++] = *e;
}

/* Per-stream order, checked on the merged trace. */
#define SF_HEAD(d) (1u << (d))
#define SF_FINAL 4u
#define SF_END(d) (8u << (d))
#define SF_GONE 32u

struct sst {
	uint32_t id, f;
};

static void check_order(const struct trace *t)
{
	struct sst *s = calloc(t->n + 1, sizeof(*s));
	size_t ns = 0;
	bool goaway = false;
	uint32_t last = 0;

	CHECK(s);
	for (size_t i = 0; i < t->n; i++) {
		const struct tev *e = &t->e[i];
		struct sst *x = NULL;
		int d = e->dir;

		if (e->type == ST_H2_EV_STOP) {
			CHECK(i == t->n - 1);
			continue;
		}
		if (e->type == ST_H2_EV_GOAWAY) {
			if (d == ST_H2_SERVER && (!goaway || e->last < last)) {
				goaway = true;
				last = e->last;
			}
			continue;
		}
		CHECK(e->stream && (e->stream & 1)); /* pushes never come out */
		CHECK(!goaway || e->stream <= last);
		for (size_t k = 0; k < ns; k++)
			if (s[k].id == e->stream)
				x = &s[k];
		if (!x) {
			x = &s[ns++];
			x->id = e->stream;
		}
		CHECK(!(x->f & SF_GONE));
		switch (e->type) {
		case ST_H2_EV_HEAD:
			CHECK(!(x->f & SF_END(d)));
			if (d == ST_H2_CLIENT) {
				CHECK(!(x->f & SF_HEAD(0)));
			} else {
				CHECK(!(x->f & SF_FINAL));
				if (!(e->flags & ST_H2_HF_INTERIM))
					x->f |= SF_FINAL;
			}
			x->f |= SF_HEAD(d);
			break;
		case ST_H2_EV_DATA:
			CHECK(!(x->f & SF_END(d)));
			CHECK(d == ST_H2_CLIENT ? (x->f & SF_HEAD(0)) : (x->f & SF_FINAL));
			break;
		case ST_H2_EV_TRAILERS:
			CHECK(!(x->f & SF_END(d)));
			CHECK(d == ST_H2_CLIENT ? (x->f & SF_HEAD(0)) : (x->f & SF_FINAL));
			CHECK(e->flags & ST_H2_HF_END_STREAM);
			break;
		case ST_H2_EV_END:
			CHECK(!(x->f & SF_END(d)));
			CHECK(d == ST_H2_CLIENT ? (x->f & SF_HEAD(0)) : (x->f & SF_FINAL));
			x->f |= SF_END(d);
			break;
		case ST_H2_EV_RESET:
		case ST_H2_EV_DROP:
			x->f |= SF_GONE;
			break;
		default:
			CHECK(0);
		}
		if ((x->f & SF_END(0)) && (x->f & SF_END(1)))
			x->f |= SF_GONE;
	}
	free(s);
}

static void record(struct trace *t, const struct st_h2_event *ev, const uint8_t *p, size_t k,
		   const struct st_h2_opts *o)
{
	struct tev e = { .type = (uint8_t)ev->type, .dir = ev->dir, .stream = ev->stream };

	if (ev->type == ST_H2_EV_NEED_MORE)
		return;
	CHECK(!t->stopped);
	CHECK(ev->dir <= 1);
	switch (ev->type) {
	case ST_H2_EV_HEAD:
	case ST_H2_EV_TRAILERS: {
		const struct st_h2_head *h = ev->head;

		CHECK(h);
		CHECK(h->list_size <= o->max_header_list);
		e.flags = h->flags;
		e.nf = h->nfields;
		e.h = 0xcbf29ce484222325ull;
		for (uint32_t i = 0; i < h->nfields; i++) {
			const struct st_h2_field *f = &h->fields[i];

			CHECK(f->name[f->name_len] == 0 && f->value[f->value_len] == 0);
			e.h = fnv(e.h, f->name, f->name_len + 1);
			e.h = fnv(e.h, f->value, f->value_len + 1);
		}
		if (h->method)
			CHECK(h->method >= h->fields && h->method < h->fields + h->nfields);
		if (h->flags & ST_H2_HF_INTERIM)
			CHECK(h->status >= 100 && h->status < 200 && ev->type == ST_H2_EV_HEAD);
		break;
	}
	case ST_H2_EV_DATA:
		/* NULL: bytes st_h2__skip() stepped over */
		CHECK(ev->data_len > 0 &&
		      (!ev->data || (ev->data >= p && ev->data + ev->data_len <= p + k)));
		e.n = ev->data_len;
		break;
	case ST_H2_EV_END:
		break;
	case ST_H2_EV_RESET:
	case ST_H2_EV_GOAWAY:
		e.code = ev->error_code;
		e.last = ev->last_stream;
		break;
	case ST_H2_EV_DROP:
		CHECK(ev->limit == ST_H2_LIMIT_HEADER_LIST || ev->limit == ST_H2_LIMIT_STREAMS);
		e.limit = ev->limit;
		break;
	case ST_H2_EV_STOP:
		CHECK(ev->stop > ST_H2_STOP_NONE && ev->stop < ST_H2_STOP__COUNT);
		CHECK(ev->stop != ST_H2_STOP_NOMEM);
		CHECK(ev->detail && *ev->detail);
		if (ev->stop == ST_H2_STOP_LIMIT)
			CHECK(ev->limit > ST_H2_LIMIT_STREAMS && ev->limit < ST_H2_LIMIT__COUNT);
		e.stop = ev->stop;
		e.code = ev->error_code;
		e.limit = ev->limit;
		t->stopped = true;
		break;
	default:
		CHECK(0);
	}
	push(t, &e);
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void feed(struct st_h2 *c, struct trace *t, int dir, const uint8_t *p, size_t n,
		 const struct st_h2_opts *o, size_t mem_cap)
{
	for (int guard = 0;; guard++) {
		struct st_h2_event ev;
		size_t k = st_h2__feed(c, dir, p, n, &ev);

		CHECK(k <= n);
		CHECK(st_h2__mem(c) <= mem_cap);
		record(t, &ev, p, k, o);
		t->consumed += k;
		if (k)
			p += k;
		n -= k;
		if (ev.type == ST_H2_EV_NEED_MORE) {
			CHECK(n == 0);
			return;
		}
		CHECK(guard < 1000000);
	}
}

/* mode 0 whole, 1 byte by byte, 2 random splits, 3 random splits some of them skipped */
static void run(const struct seg *sg, size_t ns, const uint8_t *bytes, const struct st_h2_opts *o,
		bool joined, int mode, uint64_t seed, struct trace *t, size_t mem_cap)
{
	struct st_h2 *c = st_h2__new(o);
	uint64_t total = 0, skipped = 0;

	CHECK(c);
	if (joined)
		st_h2__stop(c, ST_H2_STOP_JOINED);
	for (size_t i = 0; i < ns; i++) {
		size_t pos = 0;

		total += sg[i].len;
		while (pos < sg[i].len) {
			size_t n = sg[i].len - pos;

			if (mode == 1)
				n = 1;
			else if (mode >= 2)
				n = 1 + rng(&seed) % 97;
			if (n > sg[i].len - pos)
				n = sg[i].len - pos;
			if (mode == 3 && rng(&seed) % 2) {
				int r;

				/* what is queued first (a STOP said before any byte) */
				feed(c, t, sg[i].dir, NULL, 0, o, mem_cap);
				r = st_h2__skip(c, sg[i].dir, n);

				CHECK(r == 0 || r == -ENOENT);
				if (!r) {
					skipped += n;
					t->consumed += n;
					feed(c, t, sg[i].dir, NULL, 0, o, mem_cap);
					pos += n;
					continue;
				}
			}
			feed(c, t, sg[i].dir, bytes + sg[i].off + pos, n, o, mem_cap);
			pos += n;
		}
	}
	st_h2__eof(c, 0);
	st_h2__eof(c, 1);
	feed(c, t, 0, NULL, 0, o, mem_cap);
	CHECK(t->consumed == total);
	if (joined)
		CHECK(t->n == 1 && t->e[0].type == ST_H2_EV_STOP && t->e[0].stop == ST_H2_STOP_JOINED);
	{
		struct st_h2_stats st;

		st_h2__stats(c, &st);
		CHECK(st.bytes[0] + st.bytes[1] + skipped == total);
		CHECK(st.skipped_bytes <= skipped);
		CHECK(st.streams_peak <= o->max_streams);
	}
	st_h2__free(c);
}

static void same(const struct trace *a, const struct trace *b)
{
	CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct tev *x = &a->e[i], *y = &b->e[i];

		CHECK(x->type == y->type && x->dir == y->dir && x->stream == y->stream);
		CHECK(x->code == y->code && x->last == y->last && x->flags == y->flags);
		CHECK(x->nf == y->nf && x->h == y->h && x->n == y->n);
		CHECK(x->stop == y->stop && x->limit == y->limit);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t bytes[(1 << 16) + (1 << 17)];
	static struct seg sg[4096];
	struct st_h2_opts small = { .max_header_list = 600, .max_block = 2000,
				    .max_continuation = 3, .max_streams = 4,
				    .max_streams_total = 40, .max_early_resets = 3,
				    .max_table = 4096 };
	struct st_h2_opts o = { .max_header_list = ST_H2_MAX_HEADER_LIST_DEFAULT,
				.max_streams = ST_H2_MAX_STREAMS_DEFAULT,
				.max_table = ST_H2_MAX_TABLE_DEFAULT };
	size_t ns = 0, blen = 0, pos = 1, mem_cap;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	uint8_t cfg;
	bool joined;
	struct trace t[4];

	if (size < 1 || size > (1 << 17))
		return 0;
	cfg = data[0];
	joined = cfg & 8;
	if (cfg & 4)
		o = small;
	if ((cfg & 3) == 1) {
		static const uint8_t settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
		static const uint8_t ack[9] = { 0, 0, 0, 4, 1, 0, 0, 0, 0 };

		memcpy(bytes, ST_H2_PREFACE, ST_H2_PREFACE_LEN);
		memcpy(bytes + ST_H2_PREFACE_LEN, settings, 9);
		memcpy(bytes + ST_H2_PREFACE_LEN + 9, ack, 9);
		sg[ns++] = (struct seg){ 0, 0, ST_H2_PREFACE_LEN + 18 };
		memcpy(bytes + ST_H2_PREFACE_LEN + 18, settings, 9);
		memcpy(bytes + ST_H2_PREFACE_LEN + 27, ack, 9);
		sg[ns++] = (struct seg){ 1, ST_H2_PREFACE_LEN + 18, 18 };
		blen = ST_H2_PREFACE_LEN + 36;
	} else if (cfg & 2) {
		memcpy(bytes, pre, pre_len);
		memcpy(sg, pre_seg, pre_n * sizeof(*sg));
		ns = pre_n;
		blen = pre_len;
		if ((cfg & 3) == 3 && size > 1) {
			/* the first segment's bytes XORed into the prefix (its length byte says where) */
			size_t at = data[1] * 7 % pre_len, n = size - 2 < 16 ? size - 2 : 16;

			for (size_t i = 0; i < n && at + i < pre_len; i++)
				bytes[at + i] ^= data[2 + i];
			pos = 2 + n;
		}
	}
	while (pos < size && ns < 4096) {
		size_t n = data[pos] & 0x7f ? data[pos] & 0x7f : 128;
		int dir = data[pos] >> 7;

		pos++;
		if (n > size - pos)
			n = size - pos;
		memcpy(bytes + blen, data + pos, n);
		sg[ns++] = (struct seg){ (uint8_t)dir, (uint32_t)blen, (uint32_t)n };
		blen += n;
		pos += n;
	}
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ull;
	if (!seed)
		seed = 1;
	/* what the bounds allow: both tables, a decoded block per direction (the arena doubles
	 * to twice the list at most; the field records, 60 bytes a field of at least 32), the
	 * stream table (8 bytes a slot, at most 4 slots a stream), the struct itself */
	mem_cap = 2 * ((size_t)o.max_table + 6 * (size_t)o.max_header_list) +
		  32 * (size_t)o.max_streams + 16384;
	memset(t, 0, sizeof(t));
	for (int m = 0; m < 4; m++)
		run(sg, ns, bytes, &o, joined, m, seed, &t[m], mem_cap);
	check_order(&t[0]);
	same(&t[0], &t[1]);
	same(&t[0], &t[2]);
	same(&t[0], &t[3]);
	for (int m = 0; m < 4; m++)
		free(t[m].e);
	return 0;
}
