/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The request head rewriter (http_rewrite.h): what the shadow changes in a
 * request head (marker, Host, --set-header), never its framing.
 */
#include "http_rewrite.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "http_chars.h"

static bool valid_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return false;
	return true;
}

static bool valid_value(const char *s)
{
	if (!s)
		return false;
	for (; *s; s++)
		if (!is_value_char((unsigned char)*s))
			return false;
	return true;
}

static bool framing_name(const char *s)
{
	return !strcasecmp(s, "content-length") || !strcasecmp(s, "transfer-encoding");
}

int st_http_rewrite_check(const struct st_http_rewrite *rw)
{
	for (size_t i = 0; i < rw->nset; i++)
		if (!valid_name(rw->set[i].name) || !valid_value(rw->set[i].value) ||
		    framing_name(rw->set[i].name))
			return -EINVAL;
	if (rw->host && !valid_value(rw->host))
		return -EINVAL;
	if (rw->marker_name && (!valid_name(rw->marker_name) || !valid_value(rw->marker_value) ||
				framing_name(rw->marker_name) ||
				!strcasecmp(rw->marker_name, "host")))
		return -EINVAL;
	return 0;
}

struct wbuf {
	char *p;
	size_t len, cap;
	bool full;
};

static void wput(struct wbuf *w, const char *s, size_t n)
{
	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

static void wfield(struct wbuf *w, const char *name, size_t nl, const char *val, size_t vl)
{
	wput(w, name, nl);
	wput(w, ": ", 2);
	wput(w, val, vl);
	wput(w, "\r\n", 2);
}

long st_http_rewrite_match(const struct st_http_rewrite *rw, const char *name, size_t n)
{
	/* host and marker win over a same-named set entry */
	if (rw->host && span_ieq(name, n, "host"))
		return (long)rw->nset;
	if (rw->marker_name && span_ieq(name, n, rw->marker_name))
		return (long)rw->nset + 1;
	for (size_t i = 0; i < rw->nset; i++)
		if (span_ieq(name, n, rw->set[i].name))
			return (long)i;
	return -1;
}

void st_http_rewrite_value(const struct st_http_rewrite *rw, long k, const char **name,
			   const char **val)
{
	if ((size_t)k < rw->nset) {
		*name = rw->set[k].name;
		*val = rw->set[k].value;
	} else if ((size_t)k == rw->nset) {
		*name = "Host";
		*val = rw->host;
	} else {
		*name = rw->marker_name;
		*val = rw->marker_value;
	}
}

#define RW_MAX_SET 64

ssize_t st_http_rewrite_head(const struct st_http_head *h, const struct st_http_rewrite *rw,
			     char *out, size_t outlen)
{
	struct wbuf w = { .p = out, .cap = outlen };
	bool done[RW_MAX_SET + 2] = { false };
	const char *ls, *le;
	long nrep;

	if (rw->nset > RW_MAX_SET || st_http_rewrite_check(rw))
		return -EINVAL;
	nrep = (long)rw->nset + 2;
	/* start line, as received, without its line ending */
	ls = h->raw + h->line_off;
	le = memchr(ls, '\n', h->raw_len - h->line_off);
	if (!le)
		return -EINVAL;
	if (le > ls && le[-1] == '\r')
		le--;
	wput(&w, ls, (size_t)(le - ls));
	wput(&w, "\r\n", 2);
	for (uint32_t i = 0; i < h->nheaders; i++) {
		const struct st_http_header *f = &h->headers[i];
		long k = st_http_rewrite_match(rw, f->name, f->name_len);
		const char *name, *val;

		if (k < 0) {
			wfield(&w, f->name, f->name_len, f->value, f->value_len);
			continue;
		}
		if (done[k])
			continue;
		done[k] = true;
		st_http_rewrite_value(rw, k, &name, &val);
		/* keep the received spelling of the name */
		wfield(&w, f->name, f->name_len, val, strlen(val));
	}
	for (long k = 0; k < nrep; k++) {
		const char *name, *val;

		if (done[k] || ((size_t)k == rw->nset && !rw->host) ||
		    ((size_t)k == rw->nset + 1 && !rw->marker_name))
			continue;
		/* a name given twice in set: the first wins */
		if ((size_t)k < rw->nset && st_http_rewrite_match(rw, rw->set[k].name,
						     strlen(rw->set[k].name)) != k)
			continue;
		done[k] = true;
		st_http_rewrite_value(rw, k, &name, &val);
		wfield(&w, name, strlen(name), val, strlen(val));
	}
	wput(&w, "\r\n", 2);
	if (w.full)
		return -ENOSPC;
	return (ssize_t)w.len;
}
