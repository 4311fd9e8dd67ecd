/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * HTTP/1.x framing: see http.h and docs/HTTP.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "http_chars.h"

enum {
	S_HEAD = 0,
	S_BODY_LEN,
	S_BODY_CHUNKED,
	S_BODY_CLOSE,
	S_DONE,      /* MSG_DONE pending */
	S_UPGRADE,   /* UPGRADED pending */
	S_RAW,
	S_ERROR,
	S_RESYNC,
};

enum {
	C_SIZE = 0,  /* first hex digit */
	C_SIZE_MORE, /* more hex digits, BWS, ';' or line end */
	C_SIZE_WS,   /* after BWS: ';' or line end */
	C_EXT,       /* extension bytes up to line end */
	C_SIZE_LF,   /* CR seen, LF expected */
	C_DATA,
	C_DATA_END,  /* CR or LF after data */
	C_DATA_LF,   /* LF after data CR */
	C_TR_START,  /* start of a trailer line or the final empty line */
	C_TR_NAME,
	C_TR_VALUE,
	C_TR_LF,
	C_END_LF,
};

#define METHOD_SCAN_MAX 24
/* Buffers kept between messages; larger ones are freed after their message. */
#define HBUF_KEEP (16u * 1024)
#define HDRS_KEEP 256u


/*
 * Case-insensitive compare against a lowercase literal of letters, digits and
 * '-'. OR-ing 0x20 only folds letters here: s is validated field text, which
 * holds no control characters that could fold onto a literal byte.
 */
static inline bool lit_ieq(const char *s, size_t n, const char *lit, size_t l)
{
	if (n != l)
		return false;
	for (size_t i = 0; i < l; i++)
		if (((unsigned char)s[i] | 0x20) != (unsigned char)lit[i])
			return false;
	return true;
}

#define LIT_IEQ(s, n, lit) lit_ieq(s, n, lit, sizeof(lit) - 1)

static const char *const method_names[ST_HTTP_M__COUNT] = {
	[ST_HTTP_M_OTHER] = "",
	[ST_HTTP_M_GET] = "GET",
	[ST_HTTP_M_HEAD] = "HEAD",
	[ST_HTTP_M_POST] = "POST",
	[ST_HTTP_M_PUT] = "PUT",
	[ST_HTTP_M_DELETE] = "DELETE",
	[ST_HTTP_M_CONNECT] = "CONNECT",
	[ST_HTTP_M_OPTIONS] = "OPTIONS",
	[ST_HTTP_M_TRACE] = "TRACE",
	[ST_HTTP_M_PATCH] = "PATCH",
};

enum st_http_method st_http__method_from(const char *s, size_t len)
{
	/* methods are case-sensitive (RFC 9110 9.1) */
	for (int m = ST_HTTP_M_GET; m < ST_HTTP_M__COUNT; m++)
		if (strlen(method_names[m]) == len && memcmp(method_names[m], s, len) == 0)
			return m;
	return ST_HTTP_M_OTHER;
}

const char *st_http__method_name(enum st_http_method m)
{
	if ((unsigned)m >= ST_HTTP_M__COUNT)
		return "";
	return method_names[m];
}

static const char *const err_names[ST_HTTP_E__COUNT] = {
	[ST_HTTP_E_NONE] = "no error",
	[ST_HTTP_E_START_LINE] = "malformed start line",
	[ST_HTTP_E_VERSION] = "unsupported HTTP version",
	[ST_HTTP_E_HEADER] = "malformed header field",
	[ST_HTTP_E_OBS_FOLD] = "obsolete line folding",
	[ST_HTTP_E_BARE_CR] = "bare CR in head",
	[ST_HTTP_E_HEAD_TOO_LARGE] = "head too large",
	[ST_HTTP_E_TOO_MANY_HEADERS] = "too many header fields",
	[ST_HTTP_E_CONTENT_LENGTH] = "invalid or conflicting Content-Length",
	[ST_HTTP_E_TRANSFER_ENCODING] = "unframeable Transfer-Encoding",
	[ST_HTTP_E_CL_AND_TE] = "both Content-Length and Transfer-Encoding",
	[ST_HTTP_E_BARE_LF] = "line ending without CR",
	[ST_HTTP_E_CHUNK] = "malformed chunk",
	[ST_HTTP_E_TRAILER] = "malformed trailer section",
	[ST_HTTP_E_TRUNCATED] = "stream ended inside a message",
	[ST_HTTP_E_NOMEM] = "out of memory",
	[ST_HTTP_E_INTERNAL] = "internal error",
};

const char *st_http__strerror(enum st_http_err e)
{
	if ((unsigned)e >= ST_HTTP_E__COUNT)
		return "unknown error";
	return err_names[e];
}

/* ---- start-line scanner (resync) ---- */

static const char http1[] = "HTTP/1.";

/* Match a request-line start at s[0]: FOUND, PARTIAL (prefix up to n) or NONE. */
static enum st_http_scan match_request(const unsigned char *s, size_t n, size_t max_len)
{
	size_t i = 0, t;

	if (!n)
		return ST_HTTP_SCAN_PARTIAL;
	if (s[0] < 'A' || s[0] > 'Z')
		return ST_HTTP_SCAN_NONE;
	for (i = 1; i < n && s[i] != ' '; i++) {
		unsigned char c = s[i];

		if (i >= METHOD_SCAN_MAX)
			return ST_HTTP_SCAN_NONE;
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return ST_HTTP_SCAN_NONE;
	}
	if (i == n)
		goto partial;
	t = ++i;
	while (i < n && is_target_char(s[i]))
		i++;
	if (i == n)
		goto partial;
	if (i == t || s[i] != ' ')
		return ST_HTTP_SCAN_NONE;
	i++;
	for (t = 0; t < sizeof(http1) - 1; t++, i++) {
		if (i == n)
			goto partial;
		if (s[i] != (unsigned char)http1[t])
			return ST_HTTP_SCAN_NONE;
	}
	/* decided beyond max_len: a split feed could not have buffered it */
	if (max_len && i > max_len)
		return ST_HTTP_SCAN_NONE;
	return ST_HTTP_SCAN_FOUND;
partial:
	if (max_len && n > max_len)
		return ST_HTTP_SCAN_NONE;
	return ST_HTTP_SCAN_PARTIAL;
}

/* "HTTP/1.D DDD" then SP, CR or LF */
static enum st_http_scan match_status(const unsigned char *s, size_t n)
{
	static const char pat[] = "HTTP/1.# ###?";
	size_t i;

	for (i = 0; i < sizeof(pat) - 1; i++) {
		unsigned char c;

		if (i == n)
			return ST_HTTP_SCAN_PARTIAL;
		c = s[i];
		if (pat[i] == '#') {
			if (c < '0' || c > '9')
				return ST_HTTP_SCAN_NONE;
		} else if (pat[i] == '?') {
			if (c != ' ' && c != '\r' && c != '\n')
				return ST_HTTP_SCAN_NONE;
		} else if (c != (unsigned char)pat[i]) {
			return ST_HTTP_SCAN_NONE;
		}
	}
	return ST_HTTP_SCAN_FOUND;
}

static enum st_http_scan match_at(enum st_http_kind kind, const unsigned char *s, size_t n,
				  size_t max_len)
{
	if (kind == ST_HTTP_RESPONSE)
		return match_status(s, n);
	return match_request(s, n, max_len);
}

enum st_http_scan st_http__scan_start(enum st_http_kind kind, const void *buf, size_t len,
				      size_t max_len, size_t *off)
{
	const unsigned char *s = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		enum st_http_scan r;

		if (kind == ST_HTTP_RESPONSE) {
			const unsigned char *h = memchr(s + i, 'H', len - i);

			if (!h)
				break;
			i = h - s;
		} else if (s[i] < 'A' || s[i] > 'Z') {
			continue;
		}
		r = match_at(kind, s + i, len - i, max_len);
		if (r != ST_HTTP_SCAN_NONE) {
			*off = i;
			return r;
		}
	}
	*off = len;
	return ST_HTTP_SCAN_NONE;
}

/*
 * Can s[0, n) begin a start line? -1 at the first byte that cannot (as
 * parse_request_line/parse_status_line would refuse it), 1 once the prefix up
 * to the version's digit is good, 0 while undecided.
 */
static int start_prefix(enum st_http_kind kind, const unsigned char *s, size_t n)
{
	static const char resp[] = "HTTP/#";
	size_t i, t, k;

	if (kind == ST_HTTP_RESPONSE) {
		for (i = 0; i < n && i < sizeof(resp) - 1; i++)
			if (resp[i] == '#' ? s[i] < '0' || s[i] > '9' : s[i] != (unsigned char)resp[i])
				return -1;
		return i == sizeof(resp) - 1;
	}
	for (i = 0; i < n && is_tchar(s[i]); i++)
		;
	if (i == n)
		return 0;
	if (!i || s[i] != ' ')
		return -1;
	for (t = ++i; i < n && is_target_char(s[i]); i++)
		;
	if (i == n)
		return 0;
	if (i == t || s[i] != ' ')
		return -1;
	for (i++, k = 0; k < 5; k++, i++) {
		if (i == n)
			return 0;
		if (s[i] != (unsigned char)"HTTP/"[k])
			return -1;
	}
	return 1;
}

/* ---- parser lifecycle ---- */

static void head_clear(struct st_http_parser *p)
{
	p->hlen = 0;
	p->scan_pos = 0;
	p->line_start = 0;
	p->nlines = 0;
	p->hpending = false;
	p->hreset = false;
	p->start_ok = false;
	memset(&p->head, 0, sizeof(p->head));
}

static void msg_clear(struct st_http_parser *p)
{
	p->remaining = 0;
	p->msg_len = 0;
	p->body_len = 0;
	p->trailer_len = 0;
	p->cline = 0;
	p->cstate = C_SIZE;
}

int st_http__init(struct st_http_parser *p, enum st_http_kind kind,
		  const struct st_http_opts *opts)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind == ST_HTTP_RESPONSE ? ST_HTTP_RESPONSE : ST_HTTP_REQUEST;
	p->head_cap = opts && opts->head_cap ? opts->head_cap : ST_HTTP_HEAD_CAP_DEFAULT;
	if (p->head_cap < 64)
		p->head_cap = 64;
	p->max_headers = opts && opts->max_headers ? opts->max_headers :
			 ST_HTTP_MAX_HEADERS_DEFAULT;
	p->state = S_HEAD;
	return 0;
}

void st_http__free(struct st_http_parser *p)
{
	free(p->hbuf);
	free(p->hdrs);
	p->hbuf = NULL;
	p->hdrs = NULL;
	p->hsize = 0;
	p->hdrs_size = 0;
	head_clear(p);
}

void st_http__reset(struct st_http_parser *p)
{
	head_clear(p);
	msg_clear(p);
	p->state = S_HEAD;
	p->err = ST_HTTP_E_NONE;
	p->err_reported = false;
	p->mq_head = 0;
	p->mq_len = 0;
}

size_t st_http__pending(const struct st_http_parser *p)
{
	return p->hpending ? p->hlen : 0;
}

int st_http__skip(struct st_http_parser *p, uint64_t len)
{
	switch (p->state) {
	case S_BODY_LEN:
		if (len > p->remaining)
			return -1;
		p->remaining -= len;
		if (!p->remaining)
			p->state = S_DONE;
		break;
	case S_BODY_CHUNKED:
		if (p->cstate != C_DATA || len > p->remaining)
			return -1;
		p->remaining -= len;
		if (!p->remaining)
			p->cstate = C_DATA_END;
		break;
	case S_BODY_CLOSE:
	case S_RAW:
		break;
	default:
		return -1;
	}
	if (p->state != S_RAW) {
		p->msg_len += len;
		p->body_len += len;
	}
	return 0;
}

uint64_t st_http__body_left(const struct st_http_parser *p)
{
	if (p->state == S_BODY_LEN || (p->state == S_BODY_CHUNKED && p->cstate == C_DATA))
		return p->remaining;
	return 0;
}

unsigned st_http__awaiting(const struct st_http_parser *p)
{
	return p->mq_len;
}

int st_http__push_method(struct st_http_parser *p, enum st_http_method m)
{
	if (p->kind != ST_HTTP_RESPONSE)
		return -EINVAL;
	if (p->mq_len >= ST_HTTP_METHOD_QUEUE)
		return -ENOSPC;
	p->mq[(p->mq_head + p->mq_len) % ST_HTTP_METHOD_QUEUE] = (uint8_t)m;
	p->mq_len++;
	return 0;
}

static bool pop_method(struct st_http_parser *p, enum st_http_method *m)
{
	if (!p->mq_len)
		return false;
	*m = p->mq[p->mq_head];
	p->mq_head = (p->mq_head + 1) % ST_HTTP_METHOD_QUEUE;
	p->mq_len--;
	return true;
}

void st_http__resync(struct st_http_parser *p, bool drop_buffered)
{
	if (p->hreset || !p->hpending)
		head_clear(p);
	msg_clear(p);
	p->err = ST_HTTP_E_NONE;
	p->err_reported = false;
	/* position 0 is where framing failed (or, after a gap, stale): start at 1 */
	p->rs_from = drop_buffered ? p->hlen : (p->hlen ? 1 : 0);
	p->state = S_RESYNC;
}

/* ---- events ---- */

static size_t ev_error(struct st_http_parser *p, struct st_http_event *ev, enum st_http_err e,
		       size_t consumed)
{
	p->state = S_ERROR;
	p->err = e;
	ev->type = ST_HTTP_EV_ERROR;
	ev->err = e;
	ev->lost_len = p->hpending ? 0 : p->msg_len;
	p->err_reported = true;
	return consumed;
}

/* ---- head ---- */

static int head_reserve(struct st_http_parser *p, size_t need)
{
	size_t sz;
	char *nb;

	if (need <= p->hsize)
		return 0;
	sz = p->hsize ? p->hsize : 1024;
	while (sz < need)
		sz *= 2;
	if (sz > p->head_cap)
		sz = p->head_cap;
	nb = realloc(p->hbuf, sz);
	if (!nb)
		return -ENOMEM;
	p->hbuf = nb;
	p->hsize = (uint32_t)sz;
	return 0;
}

/* Connection: the options shadowtap cares about, as ST_HTTP_HF_CONN_* flags. */
static uint32_t conn_tokens(const char *v, size_t n)
{
	uint32_t f = 0;
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (LIT_IEQ(v + s, e - s, "close"))
			f |= ST_HTTP_HF_CONN_CLOSE;
		else if (LIT_IEQ(v + s, e - s, "keep-alive"))
			f |= ST_HTTP_HF_CONN_KEEP_ALIVE;
		else if (LIT_IEQ(v + s, e - s, "upgrade"))
			f |= ST_HTTP_HF_CONN_UPGRADE;
	}
	return f;
}

/* Content-Length value: "N" or "N, N, ..." all equal. */
static int parse_cl(const char *v, size_t n, uint64_t *out)
{
	bool have = false;
	uint64_t first = 0;
	size_t i = 0;

	for (;;) {
		uint64_t x = 0;
		size_t s;

		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		s = i;
		while (i < n && v[i] >= '0' && v[i] <= '9') {
			if (x > (UINT64_C(1) << 62) / 10)
				return -1;
			x = x * 10 + (uint64_t)(v[i] - '0');
			i++;
		}
		if (i == s)
			return -1;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (have && x != first)
			return -1;
		first = x;
		have = true;
		if (i == n)
			break;
		if (v[i] != ',')
			return -1;
		i++;
	}
	*out = first;
	return 0;
}

/* Transfer-Encoding list: set *has_chunked, *chunked_last; -1 when chunked repeats. */
static int parse_te(const char *v, size_t n, int *nchunked, bool *chunked_last, bool *any)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		if (i == n)
			break;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		*any = true;
		if (LIT_IEQ(v + s, e - s, "chunked")) {
			(*nchunked)++;
			*chunked_last = true;
		} else {
			*chunked_last = false;
		}
	}
	return 0;
}

/* Next line of the head from *pos: [*ls, *le) without the line ending. */
static int next_line(struct st_http_parser *p, const char *b, uint32_t end, uint32_t *pos,
		     uint32_t *ls, uint32_t *le)
{
	const char *nl = memchr(b + *pos, '\n', end - *pos);
	uint32_t e;

	if (!nl)
		return -1;
	*ls = *pos;
	e = (uint32_t)(nl - b);
	*pos = e + 1;
	if (e > *ls && b[e - 1] == '\r')
		e--;
	else
		p->head.flags |= ST_HTTP_HF_BARE_LF;
	*le = e;
	return 0;
}

static int parse_version(const char *s, size_t n, struct st_http_head *h)
{
	if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[6] != '.' ||
	    s[5] < '0' || s[5] > '9' || s[7] < '0' || s[7] > '9')
		return ST_HTTP_E_START_LINE;
	if (s[5] != '1')
		return ST_HTTP_E_VERSION;
	h->version_major = 1;
	h->version_minor = (uint8_t)(s[7] - '0');
	return 0;
}

static int parse_request_line(const char *s, size_t n, struct st_http_head *h)
{
	size_t i = 0, t;

	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == n || s[i] != ' ')
		return ST_HTTP_E_START_LINE;
	h->method_str = s;
	h->method_len = (uint32_t)i;
	h->method = st_http__method_from(s, i);
	t = ++i;
	while (i < n && is_target_char((unsigned char)s[i]))
		i++;
	if (i == t || i == n || s[i] != ' ')
		return ST_HTTP_E_START_LINE;
	h->target = s + t;
	h->target_len = (uint32_t)(i - t);
	i++;
	return parse_version(s + i, n - i, h);
}

static int parse_status_line(const char *s, size_t n, struct st_http_head *h)
{
	int r;

	if (n < 8)
		return ST_HTTP_E_START_LINE;
	r = parse_version(s, 8, h);
	if (r)
		return r;
	if (n < 12 || s[8] != ' ')
		return ST_HTTP_E_START_LINE;
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return ST_HTTP_E_START_LINE;
	h->status = (uint16_t)((s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0'));
	if (h->status < 100)
		return ST_HTTP_E_START_LINE;
	if (n == 12) {
		h->reason = s + 12;
		h->reason_len = 0;
		return 0;
	}
	if (s[12] != ' ')
		return ST_HTTP_E_START_LINE;
	for (size_t i = 13; i < n; i++)
		if (!is_value_char((unsigned char)s[i]))
			return ST_HTTP_E_START_LINE;
	h->reason = s + 13;
	h->reason_len = (uint32_t)(n - 13);
	return 0;
}

static int add_header(struct st_http_parser *p, const char *s, size_t n)
{
	struct st_http_head *h = &p->head;
	struct st_http_header *f;
	size_t i = 0, vs, ve;

	if (s[0] == ' ' || s[0] == '\t')
		return ST_HTTP_E_OBS_FOLD;
	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == n || s[i] != ':')
		return ST_HTTP_E_HEADER;
	vs = i + 1;
	while (vs < n && (s[vs] == ' ' || s[vs] == '\t'))
		vs++;
	ve = n;
	while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
		ve--;
	for (size_t j = vs; j < ve; j++)
		if (!is_value_char((unsigned char)s[j]))
			return ST_HTTP_E_HEADER;
	if (h->nheaders >= p->max_headers)
		return ST_HTTP_E_TOO_MANY_HEADERS;
	if (h->nheaders >= p->hdrs_size) {
		uint32_t sz = p->hdrs_size ? p->hdrs_size * 2 : 16;
		struct st_http_header *nh;

		if (sz > p->max_headers)
			sz = p->max_headers;
		nh = realloc(p->hdrs, sz * sizeof(*nh));
		if (!nh)
			return ST_HTTP_E_NOMEM;
		p->hdrs = nh;
		p->hdrs_size = sz;
	}
	f = &p->hdrs[h->nheaders++];
	f->name = s;
	f->name_len = (uint32_t)i;
	f->value = s + vs;
	f->value_len = (uint32_t)(ve - vs);
	return 0;
}

/* Framing decisions from the parsed fields (RFC 9112 6.3). */
static int head_semantics(struct st_http_parser *p)
{
	struct st_http_head *h = &p->head;
	bool have_cl = false, te_any = false, chunked_last = false, upgrade = false;
	bool req = p->kind == ST_HTTP_REQUEST, te_exact = false;
	int nchunked = 0, ncl = 0, nte = 0;
	uint64_t cl = 0;
	enum st_http_method rm = ST_HTTP_M_OTHER;

	for (uint32_t i = 0; i < h->nheaders; i++) {
		const struct st_http_header *f = &h->headers[i];
		const char *v = f->value;
		size_t n = f->value_len;

		if (LIT_IEQ(f->name, f->name_len, "content-length")) {
			uint64_t x;

			if (parse_cl(v, n, &x) || (have_cl && x != cl))
				return ST_HTTP_E_CONTENT_LENGTH;
			/* requests: one field, one number (a list or a repeat is how a
			 * smuggler makes two parsers disagree; nginx refuses both) */
			if (req && (++ncl > 1 || memchr(v, ',', n)))
				return ST_HTTP_E_CONTENT_LENGTH;
			have_cl = true;
			cl = x;
		} else if (LIT_IEQ(f->name, f->name_len, "transfer-encoding")) {
			h->flags |= ST_HTTP_HF_TE;
			nte++;
			te_exact = LIT_IEQ(v, n, "chunked");
			parse_te(v, n, &nchunked, &chunked_last, &te_any);
		} else if (LIT_IEQ(f->name, f->name_len, "connection")) {
			h->flags |= conn_tokens(v, n);
		} else if (LIT_IEQ(f->name, f->name_len, "expect")) {
			if (LIT_IEQ(v, n, "100-continue"))
				h->flags |= ST_HTTP_HF_EXPECT_CONTINUE;
		} else if (LIT_IEQ(f->name, f->name_len, "upgrade")) {
			h->flags |= ST_HTTP_HF_UPGRADE_HDR;
		}
	}
	if (have_cl) {
		h->flags |= ST_HTTP_HF_CONTENT_LENGTH;
		h->content_length = cl;
	}
	if (h->version_minor >= 1 ? !(h->flags & ST_HTTP_HF_CONN_CLOSE) :
	    (h->flags & ST_HTTP_HF_CONN_KEEP_ALIVE) && !(h->flags & ST_HTTP_HF_CONN_CLOSE))
		h->flags |= ST_HTTP_HF_KEEP_ALIVE;

	if (req) {
		/*
		 * Strict, so that what the shadow gets is framed as every server
		 * frames it or not at all (RFC 9112 6.1, 6.3): CL with TE is refused
		 * (a server may process it as chunked, nginx answers 400); TE must
		 * be exactly one "chunked" (nginx answers 501 to anything else), and
		 * never in HTTP/1.0.
		 */
		if ((h->flags & ST_HTTP_HF_TE) && have_cl)
			return ST_HTTP_E_CL_AND_TE;
		if (h->flags & ST_HTTP_HF_BARE_LF)
			return ST_HTTP_E_BARE_LF;
		if (h->flags & ST_HTTP_HF_TE) {
			if (nte != 1 || !te_exact || h->version_minor == 0)
				return ST_HTTP_E_TRANSFER_ENCODING;
			h->body = ST_HTTP_BODY_CHUNKED;
		} else if (have_cl && cl) {
			h->body = ST_HTTP_BODY_LENGTH;
		}
		if (h->method == ST_HTTP_M_CONNECT) {
			h->body = ST_HTTP_BODY_NONE;
			upgrade = true;
		} else if ((h->flags & ST_HTTP_HF_UPGRADE_HDR) &&
			   (h->flags & ST_HTTP_HF_CONN_UPGRADE)) {
			upgrade = true;
		}
	} else {
		bool final = h->status >= 200 || h->status == 101;

		if (final && !pop_method(p, &rm))
			h->flags |= ST_HTTP_HF_NO_REQUEST;
		h->method = rm;
		if (h->status < 200) {
			if (h->status == 101)
				upgrade = true;
			else
				h->flags |= ST_HTTP_HF_INTERIM;
		} else if (rm == ST_HTTP_M_HEAD || h->status == 204 || h->status == 304) {
			/* no body whatever the fields say */
		} else if (rm == ST_HTTP_M_CONNECT && h->status < 300) {
			upgrade = true;
		} else if (h->flags & ST_HTTP_HF_TE) {
			if (chunked_last && nchunked == 1) {
				h->body = ST_HTTP_BODY_CHUNKED;
			} else {
				h->body = ST_HTTP_BODY_UNTIL_CLOSE;
				h->flags &= ~ST_HTTP_HF_KEEP_ALIVE;
			}
			if (h->version_minor == 0)
				h->flags &= ~ST_HTTP_HF_KEEP_ALIVE;
		} else if (have_cl) {
			if (cl)
				h->body = ST_HTTP_BODY_LENGTH;
		} else {
			h->body = ST_HTTP_BODY_UNTIL_CLOSE;
			h->flags &= ~ST_HTTP_HF_KEEP_ALIVE;
		}
	}
	if (h->body == ST_HTTP_BODY_CHUNKED) {
		h->flags |= ST_HTTP_HF_CHUNKED;
		if (have_cl) {
			/* RFC 9112 6.3: TE overrides CL; close after the message */
			h->flags |= ST_HTTP_HF_CL_AND_TE;
			h->flags &= ~ST_HTTP_HF_KEEP_ALIVE;
		}
	}
	if (upgrade)
		h->flags |= ST_HTTP_HF_UPGRADE;
	return 0;
}

static int parse_head(struct st_http_parser *p)
{
	struct st_http_head *h = &p->head;
	const char *b = p->hbuf;
	uint32_t pos = p->head.line_off, ls, le;
	int r;

	h->raw = b;
	h->raw_len = p->hlen;
	if (next_line(p, b, p->hlen, &pos, &ls, &le))
		return ST_HTTP_E_INTERNAL;
	if (p->kind == ST_HTTP_REQUEST)
		r = parse_request_line(b + ls, le - ls, h);
	else
		r = parse_status_line(b + ls, le - ls, h);
	if (r)
		goto bad_line;
	h->headers = p->hdrs;
	for (;;) {
		if (next_line(p, b, p->hlen, &pos, &ls, &le))
			return ST_HTTP_E_INTERNAL;
		if (le == ls)
			break;
		r = add_header(p, b + ls, le - ls);
		if (r)
			goto bad_line;
		h->headers = p->hdrs;
	}
	if (pos != p->hlen)
		return ST_HTTP_E_INTERNAL;
	return head_semantics(p);
bad_line:
	/*
	 * Every line check rejects CR (a control character), so a CR that is
	 * not part of a line ending surfaces here: name that cause.
	 */
	if (r != ST_HTTP_E_TOO_MANY_HEADERS && r != ST_HTTP_E_NOMEM &&
	    memchr(b + ls, '\r', le - ls))
		return ST_HTTP_E_BARE_CR;
	return r;
}

/*
 * A line ending at hbuf[hlen - 1] (LF) was appended: returns true at the
 * empty line that ends the head.
 */
static bool head_line_end(struct st_http_parser *p)
{
	uint32_t n = p->hlen - 1 - p->line_start; /* bytes before LF */
	bool empty = n == 0 || (n == 1 && p->hbuf[p->line_start] == '\r');

	p->line_start = p->hlen;
	if (!empty) {
		p->nlines++;
		return false;
	}
	if (!p->nlines) {
		/* RFC 9112 2.2: ignore empty lines before the start line */
		p->head.line_off = p->hlen;
		return false;
	}
	return true;
}

static size_t head_complete(struct st_http_parser *p, struct st_http_event *ev, size_t consumed)
{
	int r = parse_head(p);

	if (r)
		return ev_error(p, ev, r, consumed);
	p->hpending = false;
	p->msg_len = p->hlen;
	ev->type = ST_HTTP_EV_HEAD;
	ev->head = &p->head;
	switch (p->head.body) {
	case ST_HTTP_BODY_NONE:
		p->state = S_DONE;
		break;
	case ST_HTTP_BODY_LENGTH:
		p->remaining = p->head.content_length;
		p->state = S_BODY_LEN;
		break;
	case ST_HTTP_BODY_CHUNKED:
		p->cstate = C_SIZE;
		p->state = S_BODY_CHUNKED;
		break;
	case ST_HTTP_BODY_UNTIL_CLOSE:
		p->state = S_BODY_CLOSE;
		break;
	}
	return consumed;
}

/*
 * Scan buf for the end of the head, treating it as following hbuf[0, hlen),
 * and copy what belongs to the head in one go.
 */
static size_t head_take(struct st_http_parser *p, const unsigned char *buf, size_t len,
			struct st_http_event *ev)
{
	uint32_t base = p->hlen;
	size_t room = p->head_cap - base, lim = len < room ? len : room, pos = 0;
	bool done = false;

	while (pos < lim) {
		const unsigned char *nl = memchr(buf + pos, '\n', lim - pos);
		uint32_t ls = p->line_start, vend, n;
		unsigned char c0;

		if (!nl) {
			pos = lim;
			break;
		}
		pos = (size_t)(nl - buf) + 1;
		vend = base + (uint32_t)pos;
		n = vend - 1 - ls; /* bytes before the LF */
		c0 = n ? (ls < base ? (unsigned char)p->hbuf[ls] : buf[ls - base]) : 0;
		p->line_start = vend;
		if (n > 1 || (n == 1 && c0 != '\r')) {
			p->nlines++;
			continue;
		}
		if (!p->nlines) {
			/* RFC 9112 2.2: ignore empty lines before the start line */
			p->head.line_off = vend;
			continue;
		}
		done = true;
		break;
	}
	if (pos) {
		if (head_reserve(p, base + pos))
			return ev_error(p, ev, ST_HTTP_E_NOMEM, 0);
		memcpy(p->hbuf + base, buf, pos);
		p->hlen = base + (uint32_t)pos;
		p->scan_pos = p->hlen;
		p->hpending = true;
		/*
		 * The start line is checked as its bytes come: a stream that is not HTTP (a
		 * flood of garbage from a broken peer) fails at its first wrong byte, not
		 * after a head cap's worth of buffering.
		 */
		if (!p->start_ok && p->hlen > p->head.line_off &&
		    p->hbuf[p->head.line_off] != '\r' && p->hbuf[p->head.line_off] != '\n') {
			int m = start_prefix(p->kind, (const unsigned char *)p->hbuf + p->head.line_off,
					     p->hlen - p->head.line_off);

			if (m < 0)
				return ev_error(p, ev, ST_HTTP_E_START_LINE, pos);
			p->start_ok = m > 0;
		}
	}
	if (done)
		return head_complete(p, ev, pos);
	if (pos < len)
		return ev_error(p, ev, ST_HTTP_E_HEAD_TOO_LARGE, pos);
	return pos;
}

static size_t feed_head(struct st_http_parser *p, const unsigned char *buf, size_t len,
			struct st_http_event *ev)
{
	if (p->hreset) {
		head_clear(p);
		msg_clear(p);
		/* one huge head (a hostile one) must not pin its buffers for the connection's life */
		if (p->hsize > HBUF_KEEP) {
			free(p->hbuf);
			p->hbuf = NULL;
			p->hsize = 0;
		}
		if (p->hdrs_size > HDRS_KEEP) {
			free(p->hdrs);
			p->hdrs = NULL;
			p->hdrs_size = 0;
		}
	}
	/* bytes buffered by resync: scan them first */
	while (p->scan_pos < p->hlen) {
		const char *nl = memchr(p->hbuf + p->scan_pos, '\n', p->hlen - p->scan_pos);
		uint32_t save;

		if (!nl) {
			p->scan_pos = p->hlen;
			break;
		}
		save = p->hlen;
		p->hlen = (uint32_t)(nl - p->hbuf) + 1;
		p->scan_pos = p->hlen;
		if (head_line_end(p)) {
			if (p->hlen != save)
				return ev_error(p, ev, ST_HTTP_E_INTERNAL, 0);
			return head_complete(p, ev, 0);
		}
		p->hlen = save;
	}
	return head_take(p, buf, len, ev);
}

/* ---- resync ---- */

static size_t feed_resync(struct st_http_parser *p, const unsigned char *buf, size_t len,
			  struct st_http_event *ev)
{
	enum st_http_scan r;
	size_t off;

	while (p->hpending && p->hlen) {
		uint32_t from = p->rs_from;
		size_t k;

		if (from < p->hlen) {
			r = st_http__scan_start(p->kind, p->hbuf + from, p->hlen - from,
						p->head_cap, &off);
			off += from;
		} else {
			r = ST_HTTP_SCAN_NONE;
			off = p->hlen;
		}
		if (off > 0) {
			ev->type = ST_HTTP_EV_SKIP;
			ev->skip_len = off;
			memmove(p->hbuf, p->hbuf + off, p->hlen - off);
			p->hlen -= (uint32_t)off;
			if (!p->hlen)
				p->hpending = false;
			p->rs_from = 0;
			return 0;
		}
		if (r == ST_HTTP_SCAN_FOUND)
			goto found;
		/* partial candidate at 0: look ahead into buf */
		if (!len)
			return 0;
		k = len < p->head_cap - p->hlen ? len : p->head_cap - p->hlen;
		if (!k) {
			p->rs_from = 1;
			continue;
		}
		if (head_reserve(p, p->hlen + k))
			return ev_error(p, ev, ST_HTTP_E_NOMEM, 0);
		memcpy(p->hbuf + p->hlen, buf, k);
		r = match_at(p->kind, (const unsigned char *)p->hbuf, p->hlen + k, p->head_cap);
		if (r == ST_HTTP_SCAN_PARTIAL && k == len) {
			p->hlen += (uint32_t)k;
			return k;
		}
		if (r == ST_HTTP_SCAN_FOUND)
			goto found;
		p->rs_from = 1;
	}
	if (!len)
		return 0;
	r = st_http__scan_start(p->kind, buf, len, p->head_cap, &off);
	if (off > 0) {
		ev->type = ST_HTTP_EV_SKIP;
		ev->skip_len = off;
		return off;
	}
	if (r == ST_HTTP_SCAN_FOUND) {
		head_clear(p);
		goto found;
	}
	/* partial at 0, and len <= head_cap (scan_start enforces it) */
	head_clear(p);
	if (head_reserve(p, len))
		return ev_error(p, ev, ST_HTTP_E_NOMEM, 0);
	memcpy(p->hbuf, buf, len);
	p->hlen = (uint32_t)len;
	p->hpending = true;
	return len;
found:
	/* frame from hbuf[0] (if anything is buffered) followed by buf */
	p->state = S_HEAD;
	p->scan_pos = 0;
	p->line_start = 0;
	p->nlines = 0;
	p->hreset = false;
	memset(&p->head, 0, sizeof(p->head));
	msg_clear(p);
	return feed_head(p, buf, len, ev);
}

/* ---- chunked body ---- */

static size_t feed_chunked(struct st_http_parser *p, const unsigned char *buf, size_t len,
			   struct st_http_event *ev)
{
	size_t i = 0, tr = 0;
	enum st_http_err e = ST_HTTP_E_NONE;
	/* requests: CRLF everywhere (a bare LF is where servers disagree) */
	bool strict = p->kind == ST_HTTP_REQUEST;

	if (p->cstate == C_DATA) {
		size_t n = len < p->remaining ? len : (size_t)p->remaining;

		if (!n)
			return 0;
		p->remaining -= n;
		if (!p->remaining)
			p->cstate = C_DATA_END;
		p->msg_len += n;
		p->body_len += n;
		ev->type = ST_HTTP_EV_BODY;
		ev->head = &p->head;
		ev->data_len = n;
		return n;
	}
	while (i < len && p->state == S_BODY_CHUNKED && p->cstate != C_DATA) {
		unsigned char c = buf[i];
		uint8_t pre;
		int h;

		/*
		 * Limits first: an error must leave the state as it was, since
		 * the byte is reported again on the next call.
		 */
		if (p->cstate <= C_SIZE_LF && p->cline + 1 > ST_HTTP_CHUNK_LINE_MAX) {
			e = ST_HTTP_E_CHUNK;
			goto out;
		}
		if (p->cstate >= C_TR_START && p->trailer_len + 1 > p->head_cap) {
			e = ST_HTTP_E_TRAILER;
			goto out;
		}
		pre = p->cstate;
		switch (p->cstate) {
		case C_SIZE:
		case C_SIZE_MORE:
			h = st_hexval(c);
			if (h >= 0) {
				if (p->remaining > (UINT64_MAX >> 4)) {
					e = ST_HTTP_E_CHUNK;
					goto out;
				}
				p->remaining = (p->remaining << 4) | (uint64_t)h;
				p->cstate = C_SIZE_MORE;
				break;
			}
			if (p->cstate == C_SIZE) {
				e = ST_HTTP_E_CHUNK;
				goto out;
			}
			/* fall through */
		case C_SIZE_WS:
			if (c == ' ' || c == '\t') {
				p->cstate = C_SIZE_WS;
			} else if (c == ';') {
				p->cstate = C_EXT;
			} else if (strict && p->cstate == C_SIZE_WS) {
				/* RFC 9112 7.1: whitespace only before a chunk extension */
				e = ST_HTTP_E_CHUNK;
				goto out;
			} else if (c == '\r') {
				p->cstate = C_SIZE_LF;
			} else if (c == '\n' && !strict) {
				goto size_done;
			} else {
				e = ST_HTTP_E_CHUNK;
				goto out;
			}
			break;
		case C_EXT:
			if (c == '\r') {
				p->cstate = C_SIZE_LF;
			} else if (c == '\n' && !strict) {
				goto size_done;
			} else if (!is_value_char(c)) {
				e = ST_HTTP_E_CHUNK;
				goto out;
			}
			break;
		case C_SIZE_LF:
			if (c != '\n') {
				e = ST_HTTP_E_CHUNK;
				goto out;
			}
size_done:
			p->cline = 0;
			if (p->remaining) {
				p->cstate = C_DATA;
			} else {
				p->cstate = C_TR_START;
				p->trailer_len = 0;
			}
			i++;
			continue;
		case C_DATA_END:
			if (c == '\r') {
				p->cstate = C_DATA_LF;
			} else if (c == '\n' && !strict) {
				p->cstate = C_SIZE;
			} else {
				e = ST_HTTP_E_CHUNK;
				goto out;
			}
			break;
		case C_DATA_LF:
			if (c != '\n') {
				e = ST_HTTP_E_CHUNK;
				goto out;
			}
			p->cstate = C_SIZE;
			break;
		case C_TR_START:
			if (c == '\r') {
				p->cstate = C_END_LF;
			} else if (c == '\n' && !strict) {
				p->state = S_DONE;
			} else if (is_tchar(c)) {
				p->cstate = C_TR_NAME;
			} else {
				e = ST_HTTP_E_TRAILER;
				goto out;
			}
			break;
		case C_TR_NAME:
			if (c == ':') {
				p->cstate = C_TR_VALUE;
			} else if (!is_tchar(c)) {
				e = ST_HTTP_E_TRAILER;
				goto out;
			}
			break;
		case C_TR_VALUE:
			if (c == '\r') {
				p->cstate = C_TR_LF;
			} else if (c == '\n' && !strict) {
				p->cstate = C_TR_START;
			} else if (!is_value_char(c)) {
				e = ST_HTTP_E_TRAILER;
				goto out;
			}
			break;
		case C_TR_LF:
			if (c != '\n') {
				e = ST_HTTP_E_TRAILER;
				goto out;
			}
			p->cstate = C_TR_START;
			break;
		case C_END_LF:
			if (c != '\n') {
				e = ST_HTTP_E_TRAILER;
				goto out;
			}
			p->state = S_DONE;
			break;
		}
		if (pre <= C_SIZE_LF) {
			p->cline++;
		} else if (pre >= C_TR_START) {
			p->trailer_len++;
			tr++; /* once in the trailer section, every byte after is too */
		}
		i++;
	}
out:
	if (i > 0) {
		/* report the good bytes now; an error shows again at buf[0] next call */
		p->msg_len += i;
		ev->type = ST_HTTP_EV_BODY;
		ev->head = &p->head;
		ev->data_len = 0;
		ev->trailer_len = tr;
		return i;
	}
	if (e)
		return ev_error(p, ev, e, 0);
	return 0;
}

/* ---- main entry ---- */

size_t st_http__feed(struct st_http_parser *p, const void *vbuf, size_t len,
		     struct st_http_event *ev)
{
	const unsigned char *buf = vbuf;
	size_t n;

	memset(ev, 0, sizeof(*ev));
	if (!buf)
		len = 0;
	switch (p->state) {
	case S_HEAD:
		return feed_head(p, buf, len, ev);
	case S_BODY_LEN:
		n = len < p->remaining ? len : (size_t)p->remaining;
		if (!n)
			return 0;
		p->remaining -= n;
		p->msg_len += n;
		p->body_len += n;
		if (!p->remaining)
			p->state = S_DONE;
		ev->type = ST_HTTP_EV_BODY;
		ev->head = &p->head;
		ev->data_len = n;
		return n;
	case S_BODY_CHUNKED:
		return feed_chunked(p, buf, len, ev);
	case S_BODY_CLOSE:
		if (!len)
			return 0;
		p->msg_len += len;
		p->body_len += len;
		ev->type = ST_HTTP_EV_BODY;
		ev->head = &p->head;
		ev->data_len = len;
		return len;
	case S_DONE:
		ev->type = ST_HTTP_EV_MSG_DONE;
		ev->head = &p->head;
		ev->msg_len = p->msg_len;
		ev->body_len = p->body_len;
		p->hreset = true;
		p->state = (p->head.flags & ST_HTTP_HF_UPGRADE) ? S_UPGRADE : S_HEAD;
		return 0;
	case S_UPGRADE:
		ev->type = ST_HTTP_EV_UPGRADED;
		p->state = S_RAW;
		return 0;
	case S_RAW:
		if (len)
			ev->type = ST_HTTP_EV_RAW;
		return len;
	case S_ERROR:
		ev->type = ST_HTTP_EV_ERROR;
		ev->err = p->err;
		return 0;
	case S_RESYNC:
		return feed_resync(p, buf, len, ev);
	}
	return ev_error(p, ev, ST_HTTP_E_INTERNAL, 0);
}

void st_http__feed_eof(struct st_http_parser *p, struct st_http_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	switch (p->state) {
	case S_BODY_CLOSE:
		p->state = S_DONE;
		st_http__feed(p, NULL, 0, ev);
		return;
	case S_BODY_LEN:
	case S_BODY_CHUNKED:
		ev_error(p, ev, ST_HTTP_E_TRUNCATED, 0);
		return;
	case S_HEAD:
		if (!p->hreset && p->hpending) {
			for (uint32_t i = p->head.line_off; i < p->hlen; i++) {
				if (p->hbuf[i] != '\r' && p->hbuf[i] != '\n') {
					ev_error(p, ev, ST_HTTP_E_TRUNCATED, 0);
					return;
				}
			}
		}
		return;
	default:
		st_http__feed(p, NULL, 0, ev);
		return;
	}
}

/* ---- head helpers ---- */

int st_http__head_find(const struct st_http_head *h, const char *name, uint32_t from)
{
	size_t n = strlen(name);

	for (uint32_t i = from; i < h->nheaders; i++)
		if (span_ieq(h->headers[i].name, h->headers[i].name_len, name) && n)
			return (int)i;
	return -1;
}

