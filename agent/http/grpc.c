/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * gRPC messages and status over a captured HTTP/2 stream (grpc.h has the contract).
 */
#include "grpc.h"
#include "http_chars.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { R_PREFIX = 0, R_BODY };

void st_grpc_init(struct st_grpc_reader *r, uint32_t max_msg, uint64_t max_decoded)
{
	memset(r, 0, sizeof(*r));
	r->max_msg = max_msg ? max_msg : ST_GRPC_MAX_MSG_DEFAULT;
	r->max_decoded = max_decoded ? max_decoded : r->max_msg;
	if (r->max_decoded > SIZE_MAX / 4)
		r->max_decoded = SIZE_MAX / 4;
}

void st_grpc_free(struct st_grpc_reader *r)
{
	free(r->buf);
	free(r->dec);
	r->buf = r->dec = NULL;
	r->buf_cap = r->dec_cap = 0;
}

void st_grpc_set_coding(struct st_grpc_reader *r, enum st_grpc_coding c)
{
	r->coding = (uint8_t)c;
}

size_t st_grpc_mem(const struct st_grpc_reader *r)
{
	return r->buf_cap + r->dec_cap;
}

const char *st_grpc_strerror(enum st_grpc_err e)
{
	static const char *const s[] = {
		[ST_GRPC_E_NONE] = "none",
		[ST_GRPC_E_FLAG] = "compressed-flag byte neither 0 nor 1",
		[ST_GRPC_E_TOO_LARGE] = "message over max_msg",
		[ST_GRPC_E_CODING] = "compressed message without a coding decoded here",
		[ST_GRPC_E_INFLATE] = "compressed message does not decode",
		[ST_GRPC_E_BOMB] = "message decodes past max_decoded",
		[ST_GRPC_E_TRUNCATED] = "stream ended inside a message",
		[ST_GRPC_E_NOMEM] = "out of memory",
	};

	return (unsigned)e < ST_GRPC_E__COUNT ? s[e] : "?";
}

enum st_grpc_coding st_grpc_coding_of(const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (!n || span_ieq(v, n, "identity"))
		return ST_GRPC_IDENTITY;
	if (span_ieq(v, n, "gzip"))
		return ST_GRPC_GZIP;
	if (span_ieq(v, n, "deflate"))
		return ST_GRPC_DEFLATE;
	return ST_GRPC_OTHER;
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : 4096;
	uint8_t *n;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	n = realloc(*p, ncap);
	if (!n)
		return -1;
	*p = n;
	*cap = ncap;
	return 0;
}

/* Inflates in[0, n) into r->dec (windowBits: 31 gzip, 15 zlib, -15 raw). */
static enum st_grpc_err inflate_msg(struct st_grpc_reader *r, const uint8_t *in, size_t n,
				    int wbits, size_t *out_len)
{
	/* one byte past the cap tells a bomb from a message of exactly max_decoded */
	size_t lim = (size_t)r->max_decoded + 1;
	z_stream z;
	int ret = Z_OK;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, wbits) != Z_OK)
		return ST_GRPC_E_NOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	*out_len = 0;
	for (;;) {
		size_t room;

		if (*out_len == r->dec_cap) {
			size_t need = r->dec_cap ? r->dec_cap * 2 : 4096;

			if (need > lim)
				need = lim;
			if (need <= *out_len)
				break; /* at the cap */
			if (grow(&r->dec, &r->dec_cap, need)) {
				inflateEnd(&z);
				return ST_GRPC_E_NOMEM;
			}
		}
		room = (r->dec_cap < lim ? r->dec_cap : lim) - *out_len;
		z.next_out = r->dec + *out_len;
		z.avail_out = (uInt)room;
		ret = inflate(&z, Z_NO_FLUSH);
		*out_len += room - z.avail_out;
		if (ret == Z_STREAM_END || (ret != Z_OK && ret != Z_BUF_ERROR))
			break;
		if (*out_len > r->max_decoded || (z.avail_out && !z.avail_in))
			break; /* a bomb, or the input ended before the stream did */
	}
	inflateEnd(&z);
	if (*out_len > r->max_decoded)
		return ST_GRPC_E_BOMB;
	/* the deflate stream must end with the message, not before and not after */
	return ret == Z_STREAM_END && !z.avail_in ? ST_GRPC_E_NONE : ST_GRPC_E_INFLATE;
}

/* Fills ev for the message r is on (its prefix in r->hdr). */
static void message(struct st_grpc_reader *r, enum st_grpc_ev type, enum st_grpc_err e,
		    struct st_grpc_event *ev)
{
	ev->type = type;
	ev->err = e;
	ev->wire_len = r->want;
	ev->compressed = r->hdr[0] == 1;
	ev->index = r->index++;
	if (type == ST_GRPC_EV_MSG)
		r->msgs++;
	else
		r->errors++;
}

/* The message r is on, whose bytes are p[0, n): MSG (decoded) or ERROR. */
static void deliver(struct st_grpc_reader *r, const uint8_t *p, size_t n, struct st_grpc_event *ev)
{
	enum st_grpc_err e = ST_GRPC_E_NONE;
	size_t len = n;

	if (r->hdr[0] == 1) {
		switch (r->coding) {
		case ST_GRPC_GZIP:
			e = inflate_msg(r, p, n, 31, &len);
			break;
		case ST_GRPC_DEFLATE:
			e = inflate_msg(r, p, n, 15, &len);
			if (e == ST_GRPC_E_INFLATE)
				e = inflate_msg(r, p, n, -15, &len);
			break;
		default:
			e = ST_GRPC_E_CODING;
			break;
		}
		p = r->dec;
	}
	message(r, e ? ST_GRPC_EV_ERROR : ST_GRPC_EV_MSG, e, ev);
	if (!e) {
		ev->data = len ? p : (const uint8_t *)"";
		ev->len = len;
	}
}

/* The bytes of the current message after its prefix: p[0, n) of them at most. Returns how
 * many it took; an event may be set. */
static size_t body(struct st_grpc_reader *r, const uint8_t *p, size_t n, struct st_grpc_event *ev)
{
	size_t k;

	if (!r->got && !r->skip && r->want <= n) {
		/* whole in this buffer: handed out in place */
		deliver(r, p, r->want, ev);
		r->state = R_PREFIX;
		return r->want;
	}
	k = r->want - r->got < n ? r->want - r->got : n;
	if (r->skip)
		r->skipped_bytes += k;
	else
		memcpy(r->buf + r->got, p, k);
	r->got += (uint32_t)k;
	if (r->got == r->want) {
		r->state = R_PREFIX;
		if (!r->skip)
			deliver(r, r->buf, r->want, ev);
		r->skip = false;
	}
	return k;
}

size_t st_grpc_feed(struct st_grpc_reader *r, const void *buf, size_t len, struct st_grpc_event *ev)
{
	const uint8_t *p = buf;
	size_t off = 0;

	memset(ev, 0, sizeof(*ev));
	if (r->dead) {
		r->skipped_bytes += len;
		off = len;
		goto out;
	}
	while (off < len && ev->type == ST_GRPC_EV_NEED_MORE) {
		size_t k;

		if (r->state == R_BODY) {
			off += body(r, p + off, len - off, ev);
			continue;
		}
		k = ST_GRPC_PREFIX - r->hfill < len - off ? ST_GRPC_PREFIX - r->hfill : len - off;
		memcpy(r->hdr + r->hfill, p + off, k);
		r->hfill = (uint8_t)(r->hfill + k);
		off += k;
		if (r->hfill < ST_GRPC_PREFIX)
			break;
		r->hfill = 0;
		r->want = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
			  (uint32_t)r->hdr[3] << 8 | r->hdr[4];
		r->got = 0;
		r->skip = false;
		r->state = R_BODY;
		if (r->hdr[0] > 1) {
			/* no length to trust: nothing more is framed */
			message(r, ST_GRPC_EV_ERROR, ST_GRPC_E_FLAG, ev);
			r->dead = true;
			r->skipped_bytes += len - off;
			off = len;
		} else if (r->want > r->max_msg) {
			message(r, ST_GRPC_EV_ERROR, ST_GRPC_E_TOO_LARGE, ev);
			r->skip = true;
		} else if (r->want > len - off && grow(&r->buf, &r->buf_cap, r->want)) {
			message(r, ST_GRPC_EV_ERROR, ST_GRPC_E_NOMEM, ev);
			r->skip = true;
		} else if (!r->want) {
			/* an empty message: nothing more to wait for */
			deliver(r, p + off, 0, ev);
			r->state = R_PREFIX;
		}
	}
out:
	r->bytes += off;
	return off;
}

void st_grpc_end(struct st_grpc_reader *r, struct st_grpc_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	if (r->dead || (r->state == R_PREFIX && !r->hfill))
		return;
	if (r->state == R_PREFIX)
		r->want = 0;
	if (!r->skip) /* a skipped message had its ERROR already */
		message(r, ST_GRPC_EV_ERROR, ST_GRPC_E_TRUNCATED, ev);
	r->state = R_PREFIX;
	r->skip = false;
	r->hfill = 0;
}

/* ---- heads ---------------------------------------------------------------------------------- */

bool st_grpc_is_grpc(const struct st_h2_head *h)
{
	int i = st_h2_head_find(h, "content-type", 0);
	const char *v;
	size_t n;

	if (i < 0)
		return false;
	v = h->fields[i].value;
	n = h->fields[i].value_len;
	return n >= 16 && !strncasecmp(v, "application/grpc", 16) &&
	       (n == 16 || v[16] == '+' || v[16] == ';');
}

const char *st_grpc_code_name(int32_t code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};

	return code >= 0 && code <= 16 ? names[code] : "UNKNOWN_CODE";
}

bool st_grpc_read_status(const struct st_h2_head *h, char *buf, size_t cap,
			 struct st_grpc_status *out)
{
	int si = st_h2_head_find(h, "grpc-status", 0), mi = st_h2_head_find(h, "grpc-message", 0);

	memset(out, 0, sizeof(*out));
	out->code = -1;
	out->message = buf;
	buf[0] = 0;
	if (si < 0)
		return false;
	out->present = true;
	out->trailers_only = h->status && (h->flags & ST_H2_HF_END_STREAM);
	{
		const char *v = h->fields[si].value;
		size_t n = h->fields[si].value_len;
		int64_t c = 0;

		out->valid = n > 0 && n <= 9;
		for (size_t i = 0; i < n && out->valid; i++) {
			if (v[i] < '0' || v[i] > '9')
				out->valid = false;
			c = c * 10 + (v[i] - '0');
		}
		if (out->valid)
			out->code = (int32_t)c;
	}
	if (mi >= 0) {
		const char *v = h->fields[mi].value;
		size_t n = h->fields[mi].value_len, o = 0;

		for (size_t i = 0; i < n; i++) {
			int hi, lo;
			char c = v[i];

			if (c == '%' && i + 2 < n && (hi = st_hexval((unsigned char)v[i + 1])) >= 0 &&
			    (lo = st_hexval((unsigned char)v[i + 2])) >= 0) {
				c = (char)(hi << 4 | lo);
				i += 2;
			}
			if (o + 1 >= cap) {
				out->message_cut = true;
				break;
			}
			buf[o++] = c;
		}
		buf[o] = 0;
		out->message_len = o;
	}
	return true;
}
