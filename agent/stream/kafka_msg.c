/* SPDX-License-Identifier: GPL-2.0-only */
/* Kafka messages of the tee stream: batcher and reader (kafka_msg.h, docs/KAFKA.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "kafka_msg.h"
#include "le.h"

#define BUCKETS 4096u

ST_STAT_TABLE_DEFINE(st_kmsg_batch_stat, struct st_kmsg_batch_stats, ST_KMSG_BATCH_STATS);
ST_STAT_TABLE_DEFINE(st_kmsg_read_stat, struct st_kmsg_read_stats, ST_KMSG_READ_STATS);

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return h ^ (h >> 33);
}

/* ---- batcher ---------------------------------------------------------------------------- */

struct bconn {
	uint64_t id;
	uint64_t seq;
	uint8_t open[ST_KMSG_OPEN_LEN];
	uint8_t *buf;
	size_t len, cap;
	uint32_t nrec;
	uint64_t data_bytes;
	bool dirty;
	struct bconn *hnext, *dnext;
};

struct st_kmsg_batcher {
	char host[ST_KMSG_HOST_MAX + 1];
	uint64_t producer;
	size_t raw_max;
	int level;
	st_kmsg_emit_fn emit;
	void *ctx;
	struct bconn **tab;
	struct bconn *dirty;    /* batches holding records */
	uint64_t pending;
	z_stream z;
	bool z_ok;
	uint8_t *msg;           /* header + the records, compressed or not */
	size_t msg_cap;
	struct st_kmsg_batch_stats st;
};

struct st_kmsg_batcher *st_kmsg_batcher__new(const char *host, uint64_t producer, size_t raw_max,
					     int level, st_kmsg_emit_fn emit, void *ctx)
{
	struct st_kmsg_batcher *b;

	if (raw_max < ST_KMSG_RAW_MIN || raw_max > ST_KMSG_RAW_MAX || level < 0 || level > 9) {
		errno = EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	snprintf(b->host, sizeof(b->host), "%s", host);
	b->producer = producer;
	b->raw_max = raw_max;
	b->level = level;
	b->emit = emit;
	b->ctx = ctx;
	b->tab = calloc(BUCKETS, sizeof(*b->tab));
	b->msg_cap = ST_KMSG_HDR_MAX + compressBound((uLong)raw_max);
	b->msg = malloc(b->msg_cap);
	if (!b->tab || !b->msg || (level && deflateInit(&b->z, level) != Z_OK)) {
		free(b->tab);
		free(b->msg);
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	b->z_ok = level > 0;
	return b;
}

static struct bconn **bslot(struct st_kmsg_batcher *b, uint64_t id)
{
	struct bconn **p = &b->tab[mix(id, 0) & (BUCKETS - 1)];

	while (*p && (*p)->id != id)
		p = &(*p)->hnext;
	return p;
}

/* The checksum covers the header (but its own field) and the records, uncompressed. */
static uint32_t msg_crc(const uint8_t *m, size_t hdr_len, const uint8_t *recs, size_t len)
{
	uLong crc = crc32_z(0, m, 28);

	crc = crc32_z(crc, m + 32, hdr_len - 32);
	return (uint32_t)crc32_z(crc, recs, len);
}

static size_t msg_header(struct st_kmsg_batcher *b, struct bconn *c, uint32_t raw_len)
{
	size_t hl = strlen(b->host);
	uint8_t *m = b->msg;

	memcpy(m, ST_KMSG_MAGIC, 5);
	m[5] = ST_KMSG_MAJOR;
	m[6] = ST_KMSG_MINOR;
	m[7] = b->level ? ST_KMSG_CODEC_ZLIB : ST_KMSG_CODEC_NONE;
	st_le_put64(m + 8, b->producer);
	st_le_put64(m + 16, c->seq);
	st_le_put32(m + 24, raw_len);
	m[32] = (uint8_t)hl;
	memcpy(m + 33, b->host, hl);
	memcpy(m + 33 + hl, c->open, ST_KMSG_OPEN_LEN);
	hl += 33 + ST_KMSG_OPEN_LEN;
	st_le_put32(m + 28, msg_crc(m, hl, c->buf, c->len));
	return hl;
}

/* The connection's batch becomes a message (if it holds records). */
static int batch_out(struct st_kmsg_batcher *b, struct bconn *c)
{
	char key[ST_KMSG_KEY_MAX];
	size_t hl, len;
	int kl, rc;

	if (!c->len)
		return 0;
	hl = msg_header(b, c, (uint32_t)c->len);
	if (b->level) {
		deflateReset(&b->z);
		b->z.next_in = c->buf;
		b->z.avail_in = (uInt)c->len;
		b->z.next_out = b->msg + hl;
		b->z.avail_out = (uInt)(b->msg_cap - hl);
		if (deflate(&b->z, Z_FINISH) != Z_STREAM_END)
			return -EIO;
		len = b->msg_cap - b->z.avail_out;
	} else {
		memcpy(b->msg + hl, c->buf, c->len);
		len = hl + c->len;
	}
	kl = snprintf(key, sizeof(key), "%s/%016" PRIx64 "/%" PRIu64, b->host, b->producer, c->id);
	b->st.kafka_messages++;
	b->st.kafka_records += c->nrec;
	b->st.kafka_raw_bytes += c->len;
	b->st.kafka_msg_bytes += len;
	rc = b->emit(b->ctx, key, (size_t)kl, b->msg, len, c->nrec, c->data_bytes);
	if (rc) {
		b->st.kafka_refused_msgs++;
		b->st.kafka_refused_records += c->nrec;
		b->st.kafka_refused_bytes += c->data_bytes;
	}
	b->pending -= c->len;
	c->seq++;
	c->len = 0;
	c->nrec = 0;
	c->data_bytes = 0;
	return 0;
}

static void unlink_dirty(struct st_kmsg_batcher *b, struct bconn *c)
{
	struct bconn **p = &b->dirty;

	while (*p && *p != c)
		p = &(*p)->dnext;
	if (*p)
		*p = c->dnext;
	c->dirty = false;
}

int st_kmsg_batcher__record(struct st_kmsg_batcher *b, const uint8_t *fixed, size_t flen,
			    const uint8_t *data, size_t dlen)
{
	uint8_t type = fixed[4];
	size_t n = flen + dlen;
	struct bconn **p, *c;
	uint64_t id;

	if (type < ST_SREC_OPEN || type == ST_SREC_END_STREAM || flen < 13)
		return 0; /* HEADER, END_STREAM: the stream's, not a connection's */
	id = st_le_get64(fixed + 5);
	p = bslot(b, id);
	c = *p;
	if (type == ST_SREC_OPEN && !c) {
		if (flen != ST_KMSG_OPEN_LEN)
			return -EINVAL;
		c = calloc(1, sizeof(*c));
		if (!c) {
			b->st.kafka_orphan_records++;
			return 0;
		}
		c->id = id;
		memcpy(c->open, fixed, ST_KMSG_OPEN_LEN);
		*p = c;
	} else if (!c) {
		b->st.kafka_orphan_records++;
		return 0;
	}
	if (c->len + n > b->raw_max && batch_out(b, c))
		return -EIO;
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		uint8_t *nb;

		while (cap < c->len + n)
			cap *= 2;
		if (cap > b->raw_max)
			cap = b->raw_max;
		nb = realloc(c->buf, cap);
		if (!nb) {
			b->st.kafka_refused_records++;
			return 0;
		}
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, fixed, flen);
	if (dlen)
		memcpy(c->buf + c->len + flen, data, dlen);
	c->len += n;
	c->nrec++;
	if (type == ST_SREC_DATA)
		c->data_bytes += dlen;
	b->pending += n;
	if (b->pending > b->st.kafka_batch_peak)
		b->st.kafka_batch_peak = b->pending;
	if (!c->dirty) {
		c->dirty = true;
		c->dnext = b->dirty;
		b->dirty = c;
	}
	if (type == ST_SREC_CLOSE) {
		int rc = batch_out(b, c);

		unlink_dirty(b, c);
		*bslot(b, id) = c->hnext;
		free(c->buf);
		free(c);
		return rc;
	}
	return 0;
}

int st_kmsg_batcher__flush(struct st_kmsg_batcher *b)
{
	int err = 0;

	while (b->dirty) {
		struct bconn *c = b->dirty;

		b->dirty = c->dnext;
		c->dirty = false;
		if (batch_out(b, c))
			err = -EIO;
		/* an idle connection gives its buffer back */
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
	return err;
}

uint64_t st_kmsg_batcher__pending(const struct st_kmsg_batcher *b)
{
	return b->pending;
}

void st_kmsg_batcher__stats(const struct st_kmsg_batcher *b, struct st_kmsg_batch_stats *s)
{
	*s = b->st;
}

void st_kmsg_batcher__free(struct st_kmsg_batcher *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		while (b->tab[i]) {
			struct bconn *c = b->tab[i];

			b->tab[i] = c->hnext;
			free(c->buf);
			free(c);
		}
	}
	if (b->z_ok)
		deflateEnd(&b->z);
	free(b->tab);
	free(b->msg);
	free(b);
}

/* ---- reader ----------------------------------------------------------------------------- */

struct rconn {
	uint64_t producer, id;
	uint64_t local;
	int32_t partition;
	uint64_t next[2];
	uint64_t mark_in;       /* the client offset of the last MARK delivered + 1 (0: none) */
	uint64_t last_ts;       /* its latest record's time (the capture host's clock) */
	bool ended[2];
	struct rconn *hnext;
};

/* A connection whose CLOSE was read: its records read again (a partition assigned again
 * from an offset before them, a commit that did not go through) are skipped, not opened as a
 * connection joined midway that a MARK would start again at the shadow. */
struct tomb {
	uint64_t producer, id;
	uint64_t ts;            /* its CLOSE's time */
	int32_t partition;
	struct tomb *hnext, *fnext;
};

struct st_kmsg_reader {
	struct st_stream_dec *dec;
	struct rconn **tab;
	struct tomb **ttab;     /* BUCKETS chains */
	struct tomb *thead, *ttail; /* oldest first */
	size_t n_tombs;
	size_t n_conns, max_conns;
	uint64_t next_local;
	z_stream z;
	bool z_ok;
	uint8_t *raw;           /* ST_KMSG_RAW_MAX */
	uint8_t *out;           /* records for the decoder (synthesized ones added) */
	size_t out_cap;
	/* Each partition's time: its latest record's (st_kmsg_reader__feed(), idle expiry) */
	uint64_t *pclock;
	uint32_t n_pclock;
	uint64_t clock, swept;  /* the latest record's time of all; at the last idle sweep */
	struct st_kmsg_read_stats st;
};

struct st_kmsg_reader *st_kmsg_reader__new(const struct st_stream_ops *ops, void *ctx,
					   size_t max_conns)
{
	struct st_kmsg_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->max_conns = max_conns ? max_conns : ST_STREAM_MAX_CONNS_DEFAULT;
	r->dec = st_stream_dec__new_records(ops, ctx, r->max_conns);
	r->tab = calloc(BUCKETS, sizeof(*r->tab));
	r->ttab = calloc(BUCKETS, sizeof(*r->ttab));
	r->raw = malloc(ST_KMSG_RAW_MAX);
	/* a message's records, before each at most two synthesized GAPs (39 bytes each, a MARK
	 * of 37 bytes may need one per direction; other records get one at most and have 22
	 * bytes at least), and an OPEN */
	r->out_cap = 4 * ST_KMSG_RAW_MAX + ST_KMSG_OPEN_LEN;
	r->out = malloc(r->out_cap);
	if (!r->dec || !r->tab || !r->ttab || !r->raw || !r->out || inflateInit(&r->z) != Z_OK) {
		st_stream_dec__free(r->dec);
		free(r->tab);
		free(r->ttab);
		free(r->raw);
		free(r->out);
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->z_ok = true;
	return r;
}

int st_kmsg_parse_header(const uint8_t *m, size_t len, struct st_kmsg_info *i, char *err,
			 size_t errlen)
{
	size_t hl;

	if (len < 33 || memcmp(m, ST_KMSG_MAGIC, 5)) {
		snprintf(err, errlen, "not a shadowtap Kafka message (no \"STKAF\")");
		return -1;
	}
	i->major = m[5];
	i->minor = m[6];
	i->codec = m[7];
	if (i->major != ST_KMSG_MAJOR) {
		snprintf(err, errlen, "message format %u.%u: this build reads %u.x", i->major,
			 i->minor, ST_KMSG_MAJOR);
		return -1;
	}
	if (i->codec > ST_KMSG_CODEC_ZLIB) {
		snprintf(err, errlen, "unknown codec %u", i->codec);
		return -1;
	}
	i->producer = st_le_get64(m + 8);
	i->seq = st_le_get64(m + 16);
	i->raw_len = st_le_get32(m + 24);
	hl = m[32];
	if (len < 33 + hl + ST_KMSG_OPEN_LEN || i->raw_len > ST_KMSG_RAW_MAX) {
		snprintf(err, errlen, "message header cut short, or records over %u bytes",
			 ST_KMSG_RAW_MAX);
		return -1;
	}
	memcpy(i->host, m + 33, hl);
	i->host[hl] = 0;
	if (st_le_get32(m + 33 + hl) != ST_KMSG_OPEN_LEN - 4 || m[33 + hl + 4] != ST_SREC_OPEN ||
	    !st_le_get64(m + 33 + hl + 5) || (m[33 + hl + 25] != 4 && m[33 + hl + 25] != 6)) {
		snprintf(err, errlen, "the message's OPEN record is damaged");
		return -1;
	}
	i->conn = st_le_get64(m + 33 + hl + 5);
	i->hdr_len = 33 + hl + ST_KMSG_OPEN_LEN;
	return 0;
}

/* Offsets a record may name: a gap the reader makes up to one (what a connection joined midway
 * missed, or a lost message) stays within the decoder's bound on a gap's length (2^56). */
#define OFF_MAX (1ull << 56)

/* Every record whole, of the message's connection, with sane fields. */
static int check_records(const uint8_t *b, size_t len, uint64_t conn, char *err, size_t errlen)
{
	size_t pos = 0;

	while (pos < len) {
		uint32_t rl;
		const uint8_t *r;
		uint8_t t;
		static const uint32_t min[] = { [ST_SREC_OPEN] = 61, [ST_SREC_DATA] = 27,
						[ST_SREC_GAP] = 35, [ST_SREC_END] = 19,
						[ST_SREC_CLOSE] = 18, [ST_SREC_END_STREAM] = 0,
						[ST_SREC_MARK] = 33 };

		if (len - pos < 13 || (rl = st_le_get32(b + pos)) > len - pos - 4 ||
		    rl > ST_STREAM_RECORD_MAX)
			goto bad;
		r = b + pos;
		t = r[4];
		if (t > ST_SREC_MARK) {
			/* a later minor's record: skipped (translate()) */
			pos += 4 + rl;
			continue;
		}
		if (t < ST_SREC_OPEN || t == ST_SREC_END_STREAM || rl < min[t] ||
		    st_le_get64(r + 5) != conn)
			goto bad;
		switch (t) {
		case ST_SREC_DATA:
			if (r[29] > 1 || rl - 26 > ST_STREAM_DATA_MAX || st_le_get64(r + 21) > OFF_MAX)
				goto bad;
			break;
		case ST_SREC_GAP:
			if (r[37] > 1 || !st_le_get64(r + 29) || st_le_get64(r + 29) > (1ull << 56) ||
			    st_le_get64(r + 21) > OFF_MAX)
				goto bad;
			break;
		case ST_SREC_END:
			if (r[21] > 1 || r[22] >= ST_END_MAX)
				goto bad;
			break;
		case ST_SREC_CLOSE:
			if (r[21] >= ST_END_MAX)
				goto bad;
			break;
		case ST_SREC_OPEN:
			if (rl != ST_KMSG_OPEN_LEN - 4 || (r[25] != 4 && r[25] != 6))
				goto bad;
			break;
		case ST_SREC_MARK:
			if (st_le_get64(r + 21) > OFF_MAX || st_le_get64(r + 29) > OFF_MAX)
				goto bad;
			break;
		}
		pos += 4 + rl;
	}
	return 0;
bad:
	snprintf(err, errlen, "a damaged record at byte %zu of the message's records", pos);
	return -1;
}

static struct rconn **rslot(struct st_kmsg_reader *r, uint64_t producer, uint64_t id)
{
	struct rconn **p = &r->tab[mix(id, producer) & (BUCKETS - 1)];

	while (*p && ((*p)->id != id || (*p)->producer != producer))
		p = &(*p)->hnext;
	return p;
}

static uint8_t *out_gap(uint8_t *o, uint64_t local, int dir, uint64_t off, uint64_t len,
			unsigned why, uint64_t ts)
{
	st_stream_gap_rec(o, local, dir, off, len, why, ts);
	return o + ST_STREAM_GAP_REC;
}

/* Turns the message's records into the decoder's: local ids, records seen before skipped,
 * what is missing a gap. Returns the end of what it wrote. */
static uint8_t *translate(struct st_kmsg_reader *r, struct rconn *c, const uint8_t *b, size_t len,
			  uint8_t *o, bool fresh, bool *closed)
{
	size_t pos = 0;

	while (pos < len) {
		const uint8_t *rec = b + pos;
		uint32_t rl = st_le_get32(rec);
		uint8_t t = rec[4];
		uint64_t ts = st_le_get64(rec + 13);
		uint64_t off = 0, n = 0;
		int dir = 0;

		pos += 4 + rl;
		if (ts > c->last_ts)
			c->last_ts = ts;
		if (t > ST_SREC_MARK)
			continue; /* a later minor's record: not known here */
		if (t == ST_SREC_OPEN) {
			/* opened already (from the message's header when fresh) */
			if (!fresh)
				r->st.kafka_dup_records++;
			continue;
		}
		if (t == ST_SREC_DATA || t == ST_SREC_GAP) {
			dir = t == ST_SREC_DATA ? rec[29] : rec[37];
			off = st_le_get64(rec + 21);
			n = t == ST_SREC_DATA ? rl + 4 - 30 : st_le_get64(rec + 29);
			if (c->ended[dir] || off + n <= c->next[dir]) {
				r->st.kafka_dup_records++;
				continue;
			}
			if (off < c->next[dir]) {
				/* overlaps what was delivered: cannot be cut exactly, skipped */
				r->st.kafka_dup_records++;
				continue;
			}
			if (off > c->next[dir]) {
				/* a connection joined here misses its start: not a loss of Kafka's */
				if (!fresh || c->next[dir])
					r->st.kafka_lost_bytes += off - c->next[dir];
				o = out_gap(o, c->local, dir, c->next[dir], off - c->next[dir],
					    ST_SGAP_DROPPED, ts);
			}
			c->next[dir] = off + n;
		} else if (t == ST_SREC_END) {
			dir = rec[21];
			if (c->ended[dir]) {
				r->st.kafka_dup_records++;
				continue;
			}
			c->ended[dir] = true;
		} else if (t == ST_SREC_CLOSE) {
			*closed = true;
		} else if (t == ST_SREC_MARK) {
			/* an exchange boundary at both directions' next offsets: what is missing
			 * before it a gap, as before DATA; a mark behind what was delivered or
			 * delivered already (read again: requests start at distinct offsets), or
			 * after a direction's end, is of no use */
			uint64_t at[2] = { st_le_get64(rec + 21), st_le_get64(rec + 29) };

			if (c->ended[0] || c->ended[1] || at[0] < c->next[0] || at[1] < c->next[1] ||
			    at[0] < c->mark_in) {
				r->st.kafka_dup_records++;
				continue;
			}
			for (dir = 0; dir < 2; dir++) {
				if (at[dir] == c->next[dir])
					continue;
				if (!fresh || c->next[dir])
					r->st.kafka_lost_bytes += at[dir] - c->next[dir];
				o = out_gap(o, c->local, dir, c->next[dir], at[dir] - c->next[dir],
					    ST_SGAP_DROPPED, ts);
				c->next[dir] = at[dir];
			}
			c->mark_in = at[0] + 1;
		}
		memcpy(o, rec, 4 + rl);
		st_le_put64(o + 5, c->local);
		o += 4 + rl;
		if (*closed)
			break;
	}
	return o;
}

static void tick(struct st_kmsg_reader *r, int32_t p, uint64_t ts);
static void expire(struct st_kmsg_reader *r);

static struct tomb **tslot(struct st_kmsg_reader *r, uint64_t producer, uint64_t id)
{
	struct tomb **p = &r->ttab[mix(id, producer) & (BUCKETS - 1)];

	while (*p && ((*p)->id != id || (*p)->producer != producer))
		p = &(*p)->hnext;
	return p;
}

/* The oldest tombstone goes. */
static void tomb_drop(struct st_kmsg_reader *r)
{
	struct tomb *t = r->thead;

	*tslot(r, t->producer, t->id) = t->hnext;
	r->thead = t->fnext;
	if (!r->thead)
		r->ttail = NULL;
	r->n_tombs--;
	free(t);
}

static void tomb_add(struct st_kmsg_reader *r, const struct rconn *c)
{
	struct tomb *t = calloc(1, sizeof(*t));

	if (!t)
		return;
	t->producer = c->producer;
	t->id = c->id;
	t->ts = c->last_ts;
	t->partition = c->partition;
	t->hnext = r->ttab[mix(c->id, c->producer) & (BUCKETS - 1)];
	r->ttab[mix(c->id, c->producer) & (BUCKETS - 1)] = t;
	if (r->ttail)
		r->ttail->fnext = t;
	else
		r->thead = t;
	r->ttail = t;
	if (++r->n_tombs > ST_KMSG_TOMBS_MAX)
		tomb_drop(r);
}

int st_kmsg_reader__feed(struct st_kmsg_reader *r, const uint8_t *msg, size_t len,
			 int32_t partition, char *err, size_t errlen)
{
	struct st_kmsg_info mi;
	const uint8_t *recs;
	struct rconn **p, *c;
	uint8_t *o = r->out;
	bool closed = false, fresh = false;
	size_t rlen;

	if (st_kmsg_parse_header(msg, len, &mi, err, errlen))
		goto bad;
	if (mi.codec == ST_KMSG_CODEC_ZLIB) {
		inflateReset(&r->z);
		r->z.next_in = (Bytef *)msg + mi.hdr_len;
		r->z.avail_in = (uInt)(len - mi.hdr_len);
		r->z.next_out = r->raw;
		r->z.avail_out = ST_KMSG_RAW_MAX;
		if (inflate(&r->z, Z_FINISH) != Z_STREAM_END || r->z.avail_in ||
		    ST_KMSG_RAW_MAX - r->z.avail_out != mi.raw_len) {
			snprintf(err, errlen, "the records do not decompress to %u bytes",
				 mi.raw_len);
			goto bad;
		}
		recs = r->raw;
	} else {
		if (len - mi.hdr_len != mi.raw_len) {
			snprintf(err, errlen, "%zu bytes of records, the header says %u",
				 len - mi.hdr_len, mi.raw_len);
			goto bad;
		}
		recs = msg + mi.hdr_len;
	}
	rlen = mi.raw_len;
	if (msg_crc(msg, mi.hdr_len, recs, rlen) != st_le_get32(msg + 28)) {
		snprintf(err, errlen, "checksum mismatch");
		goto bad;
	}
	if (check_records(recs, rlen, mi.conn, err, errlen))
		goto bad;
	r->st.kafka_messages++;
	p = rslot(r, mi.producer, mi.conn);
	c = *p;
	if (!c && *tslot(r, mi.producer, mi.conn)) {
		/* a connection closed here already: every record of it was read */
		for (size_t pos = 0; pos < rlen; pos += 4 + st_le_get32(recs + pos))
			r->st.kafka_dup_records++;
		return 0;
	}
	if (!c) {
		const uint8_t *open = msg + mi.hdr_len - ST_KMSG_OPEN_LEN;
		bool joined = !(rlen && recs[4] == ST_SREC_OPEN && mi.seq == 0);

		if (r->n_conns >= r->max_conns || !(c = calloc(1, sizeof(*c)))) {
			r->st.kafka_refused_conns++;
			return 0;
		}
		c->producer = mi.producer;
		c->id = mi.conn;
		c->local = ++r->next_local;
		c->partition = partition;
		*p = c;
		r->n_conns++;
		memcpy(o, open, ST_KMSG_OPEN_LEN);
		st_le_put64(o + 5, c->local);
		if (joined) {
			/* the connection's start is not here: opened midway */
			st_le_put32(o + 21, st_le_get32(open + 21) | ST_REASM_F_JOINED);
			r->st.kafka_joined_conns++;
		}
		o += ST_KMSG_OPEN_LEN;
		fresh = true;
	}
	c->partition = partition;
	o = translate(r, c, recs, rlen, o, fresh, &closed);
	tick(r, partition, c->last_ts);
	if (closed) {
		*rslot(r, c->producer, c->id) = c->hnext;
		r->n_conns--;
		tomb_add(r, c);
		free(c);
	}
	if (st_stream_dec__feed_records(r->dec, r->out, (size_t)(o - r->out))) {
		snprintf(err, errlen, "%s", st_stream_dec__error(r->dec));
		return -2;
	}
	if (r->clock >= r->swept + ST_KMSG_IDLE_SWEEP_NS) {
		r->swept = r->clock;
		expire(r);
	}
	return 0;
bad:
	r->st.kafka_bad_messages++;
	return -1;
}

/* Partition p's time moves to ts (a record of it). */
static void tick(struct st_kmsg_reader *r, int32_t p, uint64_t ts)
{
	if (ts > r->clock)
		r->clock = ts;
	if (p < 0 || p >= ST_KMSG_PARTITIONS_TIMED)
		return;
	if ((uint32_t)p >= r->n_pclock) {
		uint32_t n = (uint32_t)p + 64;
		uint64_t *nc = realloc(r->pclock, n * sizeof(*nc));

		if (!nc)
			return; /* not timed: its connections never expire */
		memset(nc + r->n_pclock, 0, (n - r->n_pclock) * sizeof(*nc));
		r->pclock = nc;
		r->n_pclock = n;
	}
	if (ts > r->pclock[p])
		r->pclock[p] = ts;
}

/* A CLOSE (why) of c for the decoder; c leaves the table (p: its slot). */
static void close_conn(struct st_kmsg_reader *r, struct rconn **p, unsigned why, uint64_t ts)
{
	struct rconn *c = *p;
	uint8_t rec[22];

	*p = c->hnext;
	r->n_conns--;
	st_le_put32(rec, 18);
	rec[4] = ST_SREC_CLOSE;
	st_le_put64(rec + 5, c->local);
	st_le_put64(rec + 13, ts);
	rec[21] = (uint8_t)why;
	st_stream_dec__feed_records(r->dec, rec, sizeof(rec));
	free(c);
}

/* Connections with no record for ST_KMSG_IDLE_NS of their partition's time are closed: their
 * CLOSE was lost (a message dropped at the producer, deleted by retention), and left open
 * they would hold a place among max_conns for good. The partition's time, not the wall
 * clock: a receiver catching up on a backlog, or one partition read later than another,
 * expires nothing early. */
static void expire(struct st_kmsg_reader *r)
{
	/* tombstones, oldest first, past ST_KMSG_TOMB_NS of their partition's time */
	while (r->thead) {
		const struct tomb *t = r->thead;

		if (t->partition >= 0 && (uint32_t)t->partition < r->n_pclock &&
		    r->pclock[t->partition] <= t->ts + ST_KMSG_TOMB_NS)
			break;
		tomb_drop(r);
	}
	for (size_t i = 0; i < BUCKETS; i++) {
		struct rconn **p = &r->tab[i];

		while (*p) {
			struct rconn *c = *p;
			uint64_t now;

			if (c->partition < 0 || (uint32_t)c->partition >= r->n_pclock ||
			    (now = r->pclock[c->partition]) <= c->last_ts + ST_KMSG_IDLE_NS) {
				p = &c->hnext;
				continue;
			}
			close_conn(r, p, ST_END_TIMEOUT, now);
			r->st.kafka_idle_conns++;
		}
	}
}

size_t st_kmsg_reader__close_partition(struct st_kmsg_reader *r, int32_t partition, uint64_t ts)
{
	size_t n = 0;

	for (size_t i = 0; i < BUCKETS; i++) {
		struct rconn **p = &r->tab[i];

		while (*p) {
			struct rconn *c = *p;

			if (partition >= 0 && c->partition != partition) {
				p = &c->hnext;
				continue;
			}
			close_conn(r, p, ST_END_FLUSH, ts);
			n++;
		}
	}
	if (partition >= 0)
		r->st.kafka_moved_conns += n;
	return n;
}

void st_kmsg_reader__stats(const struct st_kmsg_reader *r, struct st_kmsg_read_stats *s)
{
	*s = r->st;
}

void st_kmsg_reader__free(struct st_kmsg_reader *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		while (r->tab[i]) {
			struct rconn *c = r->tab[i];

			r->tab[i] = c->hnext;
			free(c);
		}
	}
	while (r->thead)
		tomb_drop(r);
	st_stream_dec__free(r->dec);
	if (r->z_ok)
		inflateEnd(&r->z);
	free(r->pclock);
	free(r->tab);
	free(r->ttab);
	free(r->raw);
	free(r->out);
	free(r);
}
