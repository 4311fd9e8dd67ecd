/* SPDX-License-Identifier: GPL-2.0-only */
/* The tee stream's encoder and decoder (stream.h, docs/TEE.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "stream.h"
#include "le.h"

/* A frame is cut once its compressed bytes pass this: a stream cut short loses at most the
 * frame it was cut in (records decode frame by frame), and with one record of slack a frame
 * stays far below ST_STREAM_FRAME_MAX, so deflate's output never runs out of room. */
#define FRAME_CUT (64u << 10)
#define REC_FIXED_MAX 72
#define OBUF_SIZE (4 * ST_STREAM_RECORD_MAX)
#define CONN_BUCKETS 16384u

/* ---- encoder ------------------------------------------------------------------------ */

struct st_stream_enc {
	z_stream z;
	st_stream_emit_fn emit;
	void *ctx;
	uint8_t *frame;          /* ST_STREAM_FRAME_HDR + ST_STREAM_FRAME_MAX */
	bool started;            /* preamble emitted */
	uint64_t pending;        /* record bytes since the last flush */
	uint64_t raw, wire;
	int err;
	const struct st_stream_rec_ops *rops; /* record mode */
};

struct st_stream_enc *st_stream_enc__new(const char *header, int level, st_stream_emit_fn emit,
					 void *ctx)
{
	struct st_stream_enc *e = calloc(1, sizeof(*e));
	size_t hl = strlen(header);
	uint8_t rh[5];

	if (!e)
		return NULL;
	if (hl > ST_STREAM_HEADER_MAX) {
		free(e);
		errno = EINVAL;
		return NULL;
	}
	e->frame = malloc(ST_STREAM_FRAME_HDR + ST_STREAM_FRAME_MAX);
	if (!e->frame || deflateInit(&e->z, level > 0 && level <= 9 ? level : 1) != Z_OK) {
		free(e->frame);
		free(e);
		errno = ENOMEM;
		return NULL;
	}
	e->emit = emit;
	e->ctx = ctx;
	e->z.next_out = e->frame + ST_STREAM_FRAME_HDR;
	e->z.avail_out = ST_STREAM_FRAME_MAX;
	st_le_put32(rh, (uint32_t)hl + 1);
	rh[4] = ST_SREC_HEADER;
	e->z.next_in = rh;
	e->z.avail_in = sizeof(rh);
	if (deflate(&e->z, Z_NO_FLUSH) != Z_OK)
		goto fail;
	e->z.next_in = (Bytef *)header;
	e->z.avail_in = (uInt)hl;
	if (deflate(&e->z, Z_NO_FLUSH) != Z_OK)
		goto fail;
	e->pending = e->raw = sizeof(rh) + hl;
	return e;
fail:
	st_stream_enc__free(e);
	errno = EIO;
	return NULL;
}

static int enc_in(struct st_stream_enc *e, const uint8_t *p, size_t n)
{
	e->z.next_in = (Bytef *)p;
	e->z.avail_in = (uInt)n;
	if (deflate(&e->z, Z_NO_FLUSH) != Z_OK || e->z.avail_in)
		return e->err = -EIO;
	e->pending += n;
	e->raw += n;
	return 0;
}

int st_stream_enc__flush(struct st_stream_enc *e)
{
	uint8_t pre[ST_STREAM_PREAMBLE_LEN] = ST_STREAM_MAGIC;
	size_t len;
	int rc;

	if (e->err)
		return e->err;
	if (e->rops) {
		e->pending = 0;
		return e->rops->flush ? e->rops->flush(e->ctx) : 0;
	}
	if (!e->pending)
		return 0;
	if (!e->started) {
		pre[6] = ST_STREAM_MAJOR;
		pre[7] = ST_STREAM_MINOR;
		rc = e->emit(e->ctx, pre, sizeof(pre));
		if (rc)
			return e->err = rc;
		e->wire += sizeof(pre);
		e->started = true;
	}
	e->z.next_in = NULL;
	e->z.avail_in = 0;
	if (deflate(&e->z, Z_SYNC_FLUSH) != Z_OK || !e->z.avail_out)
		return e->err = -EIO;
	len = ST_STREAM_FRAME_MAX - e->z.avail_out;
	st_le_put32(e->frame, (uint32_t)len);
	st_le_put32(e->frame + 4, (uint32_t)crc32_z(0, e->frame + ST_STREAM_FRAME_HDR, len));
	rc = e->emit(e->ctx, e->frame, ST_STREAM_FRAME_HDR + len);
	e->z.next_out = e->frame + ST_STREAM_FRAME_HDR;
	e->z.avail_out = ST_STREAM_FRAME_MAX;
	e->pending = 0;
	e->wire += ST_STREAM_FRAME_HDR + len;
	if (rc)
		return e->err = rc;
	return 0;
}

/* One record: its fixed part (type and fields, built by the caller after 4 bytes of room),
 * then data. */
static int enc_rec(struct st_stream_enc *e, uint8_t *fixed, size_t flen, const uint8_t *data,
		   size_t dlen)
{
	if (e->err)
		return e->err;
	st_le_put32(fixed, (uint32_t)(flen - 4 + dlen));
	if (e->rops) {
		int rc = e->rops->record(e->ctx, fixed, flen, data, dlen);

		e->raw += flen + dlen;
		e->pending += flen + dlen;
		if (rc)
			e->err = rc;
		return rc;
	}
	if (enc_in(e, fixed, flen) || (dlen && enc_in(e, data, dlen)))
		return e->err;
	if (ST_STREAM_FRAME_MAX - e->z.avail_out >= FRAME_CUT)
		return st_stream_enc__flush(e);
	return 0;
}

int st_stream_enc__open(struct st_stream_enc *e, const struct st_reasm_conn *c, uint64_t ts)
{
	uint8_t r[REC_FIXED_MAX] = { 0 };

	r[4] = ST_SREC_OPEN;
	st_le_put64(r + 5, c->id);
	st_le_put64(r + 13, ts);
	st_le_put32(r + 21, c->flags);
	r[25] = c->key.src.family;
	st_le_put16(r + 27, c->key.sport);
	st_le_put16(r + 29, c->key.dport);
	memcpy(r + 33, c->key.src.a, 16);
	memcpy(r + 49, c->key.dst.a, 16);
	return enc_rec(e, r, 65, NULL, 0);
}

int st_stream_enc__data(struct st_stream_enc *e, uint64_t id, int dir, uint64_t off,
			const uint8_t *data, uint32_t len, uint64_t ts)
{
	uint8_t r[REC_FIXED_MAX];

	while (len) {
		uint32_t n = len > ST_STREAM_DATA_MAX ? ST_STREAM_DATA_MAX : len;

		r[4] = ST_SREC_DATA;
		st_le_put64(r + 5, id);
		st_le_put64(r + 13, ts);
		st_le_put64(r + 21, off);
		r[29] = (uint8_t)dir;
		if (enc_rec(e, r, 30, data, n))
			return e->err;
		data += n;
		off += n;
		len -= n;
	}
	return e->err;
}

void st_stream_gap_rec(uint8_t *r, uint64_t id, int dir, uint64_t off, uint64_t len,
		       unsigned why, uint64_t ts)
{
	st_le_put32(r, ST_STREAM_GAP_REC - 4);
	r[4] = ST_SREC_GAP;
	st_le_put64(r + 5, id);
	st_le_put64(r + 13, ts);
	st_le_put64(r + 21, off);
	st_le_put64(r + 29, len);
	r[37] = (uint8_t)dir;
	r[38] = (uint8_t)why;
}

int st_stream_enc__gap(struct st_stream_enc *e, uint64_t id, int dir, uint64_t off, uint64_t len,
		       unsigned why, uint64_t ts)
{
	uint8_t r[REC_FIXED_MAX];

	/* a receiver takes a longer GAP record for a damaged or crafted stream */
	while (len) {
		uint64_t n = len > ST_STREAM_GAP_MAX ? ST_STREAM_GAP_MAX : len;

		st_stream_gap_rec(r, id, dir, off, n, why, ts);
		if (enc_rec(e, r, ST_STREAM_GAP_REC, NULL, 0))
			return e->err;
		off += n;
		len -= n;
	}
	return e->err;
}

int st_stream_enc__end(struct st_stream_enc *e, uint64_t id, int dir, unsigned why, uint64_t ts)
{
	uint8_t r[REC_FIXED_MAX];

	r[4] = ST_SREC_END;
	st_le_put64(r + 5, id);
	st_le_put64(r + 13, ts);
	r[21] = (uint8_t)dir;
	r[22] = (uint8_t)why;
	return enc_rec(e, r, 23, NULL, 0);
}

int st_stream_enc__close(struct st_stream_enc *e, uint64_t id, unsigned why, uint64_t ts)
{
	uint8_t r[REC_FIXED_MAX];

	r[4] = ST_SREC_CLOSE;
	st_le_put64(r + 5, id);
	st_le_put64(r + 13, ts);
	r[21] = (uint8_t)why;
	return enc_rec(e, r, 22, NULL, 0);
}

int st_stream_enc__mark(struct st_stream_enc *e, uint64_t id, uint64_t off_in, uint64_t off_out,
			uint64_t ts)
{
	uint8_t r[REC_FIXED_MAX];

	r[4] = ST_SREC_MARK;
	st_le_put64(r + 5, id);
	st_le_put64(r + 13, ts);
	st_le_put64(r + 21, off_in);
	st_le_put64(r + 29, off_out);
	return enc_rec(e, r, 37, NULL, 0);
}

int st_stream_enc__finish(struct st_stream_enc *e, const struct st_stream_trailer *t)
{
	uint8_t r[REC_FIXED_MAX];

	r[4] = ST_SREC_END_STREAM;
	st_le_put64(r + 5, t->ts);
	st_le_put64(r + 13, t->dropped_records);
	st_le_put64(r + 21, t->dropped_bytes);
	st_le_put64(r + 29, t->dropped_conns);
	st_le_put64(r + 37, t->held_conns);
	if (enc_rec(e, r, 45, NULL, 0))
		return e->err;
	return st_stream_enc__flush(e);
}

uint64_t st_stream_enc__pending(const struct st_stream_enc *e)
{
	if (e->rops)
		return e->rops->pending ? e->rops->pending(e->ctx) : 0;
	return e->pending;
}

void st_stream_enc__totals(const struct st_stream_enc *e, uint64_t *raw, uint64_t *wire)
{
	*raw = e->raw;
	*wire = e->wire;
}

struct st_stream_enc *st_stream_enc__new_records(const struct st_stream_rec_ops *ops, void *ctx)
{
	struct st_stream_enc *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->rops = ops;
	e->ctx = ctx;
	e->started = true;
	return e;
}

void st_stream_enc__free(struct st_stream_enc *e)
{
	if (!e)
		return;
	if (e->rops) {
		free(e);
		return;
	}
	deflateEnd(&e->z);
	free(e->frame);
	free(e);
}

/* ---- decoder ------------------------------------------------------------------------ */

struct dconn {
	struct st_reasm_conn c;
	uint64_t next[2];
	bool ended[2];
	struct dconn *hnext;
};

enum dstate { D_PREAMBLE = 0, D_FRAME_HDR, D_FRAME, D_FAILED };

struct st_stream_dec {
	const struct st_stream_ops *ops;
	void *ctx;
	enum dstate state;
	bool inflate_ok;
	bool header_seen;
	bool done;
	unsigned major, minor;
	z_stream z;
	uint64_t off;           /* stream bytes consumed */
	uint64_t frame_off;     /* where the frame being read starts */
	uint64_t dec_off;       /* decompressed bytes handed to records */
	uint8_t hdr[ST_STREAM_FRAME_HDR];
	uint32_t have;          /* bytes of hdr/preamble or frame collected */
	uint32_t flen;
	uint8_t *fbuf;          /* the frame being read (grown to the largest, <= FRAME_MAX) */
	uint32_t fcap;
	uint8_t *obuf;          /* OBUF_SIZE */
	size_t olen;
	size_t max_conns, n_conns;
	struct dconn **tab;     /* CONN_BUCKETS chains */
	char err[256];
};

static int fail(struct st_stream_dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct st_stream_dec *d, const char *fmt, ...)
{
	va_list ap;

	if (d->state == D_FAILED)
		return -1;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	d->state = D_FAILED;
	return -1;
}

struct st_stream_dec *st_stream_dec__new(const struct st_stream_ops *ops, void *ctx,
					 size_t max_conns)
{
	struct st_stream_dec *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->ops = ops;
	d->ctx = ctx;
	d->max_conns = max_conns ? max_conns : ST_STREAM_MAX_CONNS_DEFAULT;
	d->obuf = malloc(OBUF_SIZE);
	d->tab = calloc(CONN_BUCKETS, sizeof(*d->tab));
	if (!d->obuf || !d->tab || inflateInit(&d->z) != Z_OK) {
		st_stream_dec__free(d);
		errno = ENOMEM;
		return NULL;
	}
	d->inflate_ok = true;
	return d;
}

static struct dconn **conn_slot(struct st_stream_dec *d, uint64_t id)
{
	struct dconn **p = &d->tab[id & (CONN_BUCKETS - 1)];

	while (*p && (*p)->c.id != id)
		p = &(*p)->hnext;
	return p;
}

static int rec_fail(struct st_stream_dec *d, const char *what)
{
	return fail(d, "bad record at decoded byte %" PRIu64 " (frame at stream byte %" PRIu64
		    "): %s", d->dec_off, d->frame_off, what);
}

/* The connection a record names, checked for direction dir (-1: none) being open. */
static struct dconn *rec_conn(struct st_stream_dec *d, const uint8_t *b, int dir)
{
	struct dconn *c = *conn_slot(d, st_le_get64(b));

	if (!c) {
		rec_fail(d, "connection id not open");
		return NULL;
	}
	if (dir > 1) {
		rec_fail(d, "direction not 0 or 1");
		return NULL;
	}
	if (dir >= 0 && c->ended[dir]) {
		rec_fail(d, "direction already ended");
		return NULL;
	}
	return c;
}

static int rec_open(struct st_stream_dec *d, const uint8_t *b, uint32_t n)
{
	struct dconn **p, *c;
	uint8_t fam;

	if (n < 60)
		return rec_fail(d, "OPEN too short");
	fam = b[20];
	if (!st_le_get64(b) || (fam != 4 && fam != 6))
		return rec_fail(d, "OPEN with id 0 or an address family other than 4 or 6");
	p = conn_slot(d, st_le_get64(b));
	if (*p)
		return rec_fail(d, "OPEN of a connection id already open");
	if (d->n_conns >= d->max_conns)
		return fail(d, "more than %zu connections open at once at decoded byte %" PRIu64
			    " (frame at stream byte %" PRIu64 ")", d->max_conns, d->dec_off,
			    d->frame_off);
	c = calloc(1, sizeof(*c));
	if (!c)
		return fail(d, "out of memory at stream byte %" PRIu64, d->frame_off);
	c->c.id = st_le_get64(b);
	c->c.open_ts = st_le_get64(b + 8);
	c->c.flags = st_le_get32(b + 16);
	c->c.key.src.family = c->c.key.dst.family = fam;
	c->c.key.sport = st_le_get16(b + 22);
	c->c.key.dport = st_le_get16(b + 24);
	memcpy(c->c.key.src.a, b + 28, 16);
	memcpy(c->c.key.dst.a, b + 44, 16);
	if (fam == 4) {
		memset(&c->c.key.src.a[1], 0, 12);
		memset(&c->c.key.dst.a[1], 0, 12);
	}
	*p = c;
	d->n_conns++;
	if (d->ops->conn.open)
		d->ops->conn.open(d->ctx, &c->c, c->c.open_ts);
	return 0;
}

static void conn_remove(struct st_stream_dec *d, struct dconn *c, unsigned why, uint64_t ts)
{
	struct dconn **p = conn_slot(d, c->c.id);

	*p = c->hnext;
	d->n_conns--;
	if (d->ops->conn.close)
		d->ops->conn.close(d->ctx, &c->c, why, ts);
	free(c);
}

static int record(struct st_stream_dec *d, uint8_t type, const uint8_t *b, uint32_t n)
{
	struct dconn *c;
	uint64_t off, len;
	int dir;

	if (!d->header_seen && type != ST_SREC_HEADER)
		return rec_fail(d, "the stream does not start with a HEADER record");
	if (d->done)
		return rec_fail(d, "record after END_STREAM");
	switch (type) {
	case ST_SREC_HEADER: {
		char text[ST_STREAM_HEADER_MAX + 1];

		if (d->header_seen)
			return rec_fail(d, "a second HEADER record");
		if (n > ST_STREAM_HEADER_MAX || memchr(b, 0, n))
			return rec_fail(d, "HEADER too long or holding a NUL byte");
		memcpy(text, b, n);
		text[n] = 0;
		d->header_seen = true;
		if (d->ops->header)
			d->ops->header(d->ctx, text, d->major, d->minor);
		return 0;
	}
	case ST_SREC_OPEN:
		return rec_open(d, b, n);
	case ST_SREC_DATA:
		if (n < 25)
			return rec_fail(d, "DATA too short");
		dir = b[24];
		c = rec_conn(d, b, dir);
		if (!c)
			return -1;
		off = st_le_get64(b + 16);
		len = n - 25;
		if (!len || len > ST_STREAM_DATA_MAX)
			return rec_fail(d, "DATA with no bytes or more than 64 KiB");
		if (off != c->next[dir])
			return rec_fail(d, "DATA not at the direction's next offset");
		c->next[dir] += len;
		c->c.bytes[dir] += len;
		if (d->ops->conn.data)
			d->ops->conn.data(d->ctx, &c->c, dir, off, b + 25, (uint32_t)len,
					  st_le_get64(b + 8));
		return 0;
	case ST_SREC_GAP:
		if (n < 34)
			return rec_fail(d, "GAP too short");
		dir = b[32];
		c = rec_conn(d, b, dir);
		if (!c)
			return -1;
		off = st_le_get64(b + 16);
		len = st_le_get64(b + 24);
		if (!len || len > (1ull << 56) || off != c->next[dir])
			return rec_fail(d, "GAP of length 0, huge, or not at the next offset");
		c->next[dir] += len;
		c->c.gap_bytes[dir] += len;
		if (d->ops->conn.gap)
			d->ops->conn.gap(d->ctx, &c->c, dir, off, len, b[33], st_le_get64(b + 8));
		return 0;
	case ST_SREC_END:
		if (n < 18)
			return rec_fail(d, "END too short");
		dir = b[16];
		c = rec_conn(d, b, dir);
		if (!c)
			return -1;
		if (b[17] >= ST_END_MAX)
			return rec_fail(d, "END with an unknown reason");
		c->ended[dir] = true;
		if (d->ops->conn.end)
			d->ops->conn.end(d->ctx, &c->c, dir, b[17], st_le_get64(b + 8));
		return 0;
	case ST_SREC_CLOSE:
		if (n < 17)
			return rec_fail(d, "CLOSE too short");
		c = rec_conn(d, b, -1);
		if (!c)
			return -1;
		if (b[16] >= ST_END_MAX)
			return rec_fail(d, "CLOSE with an unknown reason");
		conn_remove(d, c, b[16], st_le_get64(b + 8));
		return 0;
	case ST_SREC_MARK:
		if (n < 32)
			return rec_fail(d, "MARK too short");
		c = rec_conn(d, b, ST_DIR_IN);
		if (!c)
			return -1;
		if (st_le_get64(b + 16) != c->next[ST_DIR_IN] || st_le_get64(b + 24) != c->next[ST_DIR_OUT])
			return rec_fail(d, "MARK not at the directions' next offsets");
		if (d->ops->mark)
			d->ops->mark(d->ctx, &c->c, st_le_get64(b + 8));
		return 0;
	case ST_SREC_END_STREAM: {
		struct st_stream_trailer t;

		if (n < 40)
			return rec_fail(d, "END_STREAM too short");
		t.ts = st_le_get64(b);
		t.dropped_records = st_le_get64(b + 8);
		t.dropped_bytes = st_le_get64(b + 16);
		t.dropped_conns = st_le_get64(b + 24);
		t.held_conns = st_le_get64(b + 32);
		d->done = true;
		if (d->ops->finish)
			d->ops->finish(d->ctx, &t);
		return 0;
	}
	default:
		/* a later minor version's record: skipped (docs/TEE.md, versioning) */
		return 0;
	}
}

/* Hands the whole records in obuf over; keeps a partial one at the front. */
static int records(struct st_stream_dec *d)
{
	size_t pos = 0;

	while (d->olen - pos >= 4) {
		uint32_t rl = st_le_get32(d->obuf + pos);

		if (!rl || rl > ST_STREAM_RECORD_MAX)
			return rec_fail(d, "record length 0 or beyond the largest record");
		if (d->olen - pos - 4 < rl)
			break;
		if (record(d, d->obuf[pos + 4], d->obuf + pos + 5, rl - 1))
			return -1;
		pos += 4 + rl;
		d->dec_off += 4 + rl;
	}
	memmove(d->obuf, d->obuf + pos, d->olen - pos);
	d->olen -= pos;
	return 0;
}

static int frame(struct st_stream_dec *d)
{
	uint32_t crc = (uint32_t)crc32_z(0, d->fbuf, d->flen);

	if (crc != st_le_get32(d->hdr + 4))
		return fail(d, "corrupt stream: checksum mismatch in the frame at byte %" PRIu64
			    " (%u bytes)", d->frame_off, d->flen);
	d->z.next_in = d->fbuf;
	d->z.avail_in = d->flen;
	for (;;) {
		int rc;

		d->z.next_out = d->obuf + d->olen;
		d->z.avail_out = (uInt)(OBUF_SIZE - d->olen);
		rc = inflate(&d->z, Z_SYNC_FLUSH);
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return fail(d, "corrupt stream: compressed data of the frame at byte %" PRIu64
				    " does not decode (%s)", d->frame_off,
				    rc == Z_STREAM_END ? "the compressed stream ends early" :
				    d->z.msg ? d->z.msg : "zlib error");
		d->olen = OBUF_SIZE - d->z.avail_out;
		if (records(d))
			return -1;
		if (!d->z.avail_in && d->z.avail_out)
			break;
		if (rc == Z_BUF_ERROR && d->z.avail_in)
			return fail(d, "corrupt stream: the frame at byte %" PRIu64 " makes no progress",
				    d->frame_off);
	}
	return 0;
}

int st_stream_dec__feed(struct st_stream_dec *d, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		size_t n;

		switch (d->state) {
		case D_FAILED:
			return -1;
		case D_PREAMBLE:
		case D_FRAME_HDR: {
			uint32_t want = d->state == D_PREAMBLE ? ST_STREAM_PREAMBLE_LEN :
								  ST_STREAM_FRAME_HDR;

			if (d->done)
				return fail(d, "bytes after the end of the stream at byte %" PRIu64,
					    d->off);
			n = want - d->have < len ? want - d->have : len;
			memcpy(d->hdr + d->have, p, n);
			d->have += n;
			d->off += n;
			p += n;
			len -= n;
			if (d->have < want)
				break;
			d->have = 0;
			if (d->state == D_PREAMBLE) {
				if (memcmp(d->hdr, ST_STREAM_MAGIC, ST_STREAM_MAGIC_LEN))
					return fail(d, "not a shadowtap tee stream (no \"STTEE\" at "
						    "byte 0)");
				d->major = d->hdr[6];
				d->minor = d->hdr[7];
				if (d->major != ST_STREAM_MAJOR)
					return fail(d, "stream format version %u.%u: this build reads "
						    "version %u.x (any minor; it writes %u.%u)", d->major,
						    d->minor, ST_STREAM_MAJOR, ST_STREAM_MAJOR,
						    ST_STREAM_MINOR);
				d->state = D_FRAME_HDR;
				d->frame_off = d->off;
				break;
			}
			d->flen = st_le_get32(d->hdr);
			if (!d->flen || d->flen > ST_STREAM_FRAME_MAX)
				return fail(d, "corrupt stream: frame at byte %" PRIu64 " claims %u "
					    "bytes (0, or more than %u)", d->frame_off, d->flen,
					    ST_STREAM_FRAME_MAX);
			if (d->flen > d->fcap) {
				uint8_t *f = realloc(d->fbuf, d->flen);

				if (!f)
					return fail(d, "out of memory for the frame at byte %" PRIu64,
						    d->frame_off);
				d->fbuf = f;
				d->fcap = d->flen;
			}
			d->state = D_FRAME;
			break;
		}
		case D_FRAME:
			n = d->flen - d->have < len ? d->flen - d->have : len;
			memcpy(d->fbuf + d->have, p, n);
			d->have += n;
			d->off += n;
			p += n;
			len -= n;
			if (d->have < d->flen)
				break;
			d->have = 0;
			if (frame(d))
				return -1;
			d->state = D_FRAME_HDR;
			d->frame_off = d->off;
			break;
		}
	}
	return d->state == D_FAILED ? -1 : 0;
}

int st_stream_dec__eof(struct st_stream_dec *d)
{
	if (d->state == D_FAILED)
		return -1;
	if (d->done)
		return 0;
	if (d->state == D_PREAMBLE)
		return fail(d, d->off ? "not a shadowtap tee stream (%" PRIu64 " bytes)" :
					"empty input: no tee stream (%" PRIu64 " bytes)", d->off);
	if (d->have || d->state == D_FRAME)
		return fail(d, "stream cut short at byte %" PRIu64 ": the frame at byte %" PRIu64
			    " is incomplete (%u of %u bytes)", d->off, d->frame_off, d->have,
			    d->state == D_FRAME ? d->flen : ST_STREAM_FRAME_HDR);
	return fail(d, "stream cut short at byte %" PRIu64 ": it ends without its END_STREAM "
		    "record (the sender stopped or the stream was cut)%s", d->off,
		    d->olen ? "; a partial record is left" : "");
}

bool st_stream_dec__done(const struct st_stream_dec *d)
{
	return d->done;
}

const char *st_stream_dec__error(const struct st_stream_dec *d)
{
	return d->state == D_FAILED ? d->err : NULL;
}

uint64_t st_stream_dec__offset(const struct st_stream_dec *d)
{
	return d->off;
}

void st_stream_dec__close_all(struct st_stream_dec *d, uint64_t ts)
{
	for (size_t i = 0; i < CONN_BUCKETS && d->n_conns; i++)
		while (d->tab[i])
			conn_remove(d, d->tab[i], ST_END_FLUSH, ts);
}

void st_stream_dec__free(struct st_stream_dec *d)
{
	if (!d)
		return;
	if (d->tab) {
		for (size_t i = 0; i < CONN_BUCKETS; i++) {
			while (d->tab[i]) {
				struct dconn *c = d->tab[i];

				d->tab[i] = c->hnext;
				free(c);
			}
		}
	}
	if (d->inflate_ok)
		inflateEnd(&d->z);
	free(d->tab);
	free(d->fbuf);
	free(d->obuf);
	free(d);
}

struct st_stream_dec *st_stream_dec__new_records(const struct st_stream_ops *ops, void *ctx,
						 size_t max_conns)
{
	struct st_stream_dec *d = st_stream_dec__new(ops, ctx, max_conns);

	if (d) {
		d->header_seen = true;
		d->major = ST_STREAM_MAJOR;
		d->minor = ST_STREAM_MINOR;
	}
	return d;
}

int st_stream_dec__feed_records(struct st_stream_dec *d, const uint8_t *buf, size_t len)
{
	size_t pos = 0;

	if (d->state == D_FAILED)
		return -1;
	while (pos < len) {
		uint32_t rl;

		if (len - pos < 5)
			return rec_fail(d, "a record cut short");
		rl = st_le_get32(buf + pos);
		if (!rl || rl > ST_STREAM_RECORD_MAX || len - pos - 4 < rl)
			return rec_fail(d, "record length 0, beyond the largest record or the input");
		if (record(d, buf[pos + 4], buf + pos + 5, rl - 1))
			return -1;
		pos += 4 + rl;
		d->dec_off += 4 + rl;
	}
	return 0;
}

bool st_stream_header_get(const char *text, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = text;

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);

		if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = ll - kl - 1;

			if (len) {
				if (vl >= len)
					vl = len - 1;
				memcpy(buf, p + kl + 1, vl);
				buf[vl] = 0;
			}
			return true;
		}
		p += ll + (eol ? 1 : 0);
	}
	return false;
}

const char *st_stream_gap_str(unsigned why)
{
	if (why == ST_SGAP_DROPPED)
		return "dropped by the sender: its output was too slow";
	if (why == ST_SGAP_HELD)
		return "held back by the sender: could not be redacted";
	if (why < ST_GAP_MAX)
		return st_reasm_gap_str(why);
	return "unknown reason";
}
