/* SPDX-License-Identifier: GPL-2.0-only */
/* Reports read back: bounded accessors over a parsed tree (json_read.h). */
#include "json_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compare_agg.h"

int st_json_read_fail(struct st_json_read *l, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (l->where[0])
		snprintf(l->err, l->errlen, "%s: %s", l->where, msg);
	else
		snprintf(l->err, l->errlen, "%s", msg);
	/* names and values quoted from the file: one line whatever they hold */
	for (char *p = l->err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

const struct st_json_node *st_json_read_node(const struct st_json_read *l, uint32_t i)
{
	return st_json_node(l->d, i);
}

/* The first child of container i, or 0. */
uint32_t st_json_read_child(const struct st_json_read *l, uint32_t i)
{
	return st_json_read_node(l, i)->n ? i + 1 : 0;
}

uint32_t st_json_read_next(const struct st_json_read *l, uint32_t i)
{
	return st_json_read_node(l, i)->next;
}

/* Member key of object obj, or 0 (node 0, the root, is never a member). */
uint32_t st_json_read_member(const struct st_json_read *l, uint32_t obj, const char *key)
{
	size_t kl = strlen(key);

	if (st_json_read_node(l, obj)->type != ST_JSON_OBJECT)
		return 0;
	for (uint32_t c = st_json_read_child(l, obj); c; c = st_json_read_next(l, c))
		if (st_json_read_node(l, c)->key_len == kl &&
		    !memcmp(st_json_key(l->d, st_json_read_node(l, c)), key, kl))
			return c;
	return 0;
}

bool st_json_read_is(const struct st_json_read *l, uint32_t i, enum st_json_type t)
{
	return i && st_json_read_node(l, i)->type == t;
}

/* A whole number in [0, max] from node i. */
int st_json_read_u64(struct st_json_read *l, uint32_t i, const char *key, uint64_t max,
		     uint64_t *out)
{
	const struct st_json_node *n = st_json_read_node(l, i);
	const char *s = st_json_bytes(l->d, n);
	char buf[24];
	unsigned long long v;
	char *end;

	if (!i || n->type != ST_JSON_NUMBER || !n->len || n->len >= sizeof(buf))
		return st_json_read_fail(l, "\"%s\" is missing or not a whole number", key);
	for (uint32_t k = 0; k < n->len; k++)
		if (s[k] < '0' || s[k] > '9')
			return st_json_read_fail(l, "\"%s\" is not a whole number", key);
	memcpy(buf, s, n->len);
	buf[n->len] = 0;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || *end || v > max)
		return st_json_read_fail(l, "\"%s\" is out of range (%s)", key, buf);
	*out = v;
	return 0;
}

int st_json_read_get_u64(struct st_json_read *l, uint32_t obj, const char *key, uint64_t max,
			 uint64_t *out)
{
	return st_json_read_u64(l, st_json_read_member(l, obj, key), key, max, out);
}

int st_json_read_get_dbl(struct st_json_read *l, uint32_t obj, const char *key, double *out)
{
	uint32_t i = st_json_read_member(l, obj, key);
	char buf[64], *end;

	if (!st_json_read_is(l, i, ST_JSON_NUMBER) || st_json_read_node(l, i)->len >= sizeof(buf))
		return st_json_read_fail(l, "\"%s\" is missing or not a number", key);
	memcpy(buf, st_json_bytes(l->d, st_json_read_node(l, i)), st_json_read_node(l, i)->len);
	buf[st_json_read_node(l, i)->len] = 0;
	*out = strtod(buf, &end);
	if (*end)
		return st_json_read_fail(l, "\"%s\" is not a number", key);
	return 0;
}

int st_json_read_get_bool(struct st_json_read *l, uint32_t obj, const char *key, bool *out)
{
	uint32_t i = st_json_read_member(l, obj, key);

	if (!st_json_read_is(l, i, ST_JSON_TRUE) && !st_json_read_is(l, i, ST_JSON_FALSE))
		return st_json_read_fail(l, "\"%s\" is missing or not true or false", key);
	*out = st_json_read_node(l, i)->type == ST_JSON_TRUE;
	return 0;
}

/* String node i into out (cap bytes with its NUL); no NUL inside. */
int st_json_read_str(struct st_json_read *l, uint32_t i, const char *key, char *out, size_t cap)
{
	const struct st_json_node *n = st_json_read_node(l, i);
	const unsigned char *p = (const unsigned char *)st_json_bytes(l->d, n);

	if (!st_json_read_is(l, i, ST_JSON_STRING))
		return st_json_read_fail(l, "\"%s\" is missing or not a string", key);
	if (n->len >= cap || memchr(p, 0, n->len))
		return st_json_read_fail(l, "\"%s\" is longer than %zu bytes or holds a NUL", key,
					 cap - 1);
	/* what a report holds is UTF-8 (st_cmp_utf8_fix): so it is written back the same */
	for (uint32_t k = 0, q; k < n->len; k += q)
		if (!(q = (uint32_t)st_cmp_utf8_seq(p + k, n->len - k)))
			return st_json_read_fail(l, "\"%s\" is not UTF-8", key);
	memcpy(out, p, n->len);
	out[n->len] = 0;
	return 0;
}

int st_json_read_get_str(struct st_json_read *l, uint32_t obj, const char *key, char *out,
			 size_t cap)
{
	return st_json_read_str(l, st_json_read_member(l, obj, key), key, out, cap);
}

/* "2026-11-30T15:03:10.710Z" (st_cmp_time_str) to ns. */
int st_json_read_get_time(struct st_json_read *l, uint32_t obj, const char *key, uint64_t *out)
{
	char s[32], z = 0;
	struct tm tm = { 0 };
	int ms = 0, n = 0;
	time_t t;

	if (st_json_read_get_str(l, obj, key, s, sizeof(s)))
		return -1;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &z, &n) != 8 || z != 'Z' ||
	    (size_t)n != strlen(s) || strlen(s) != 24 || tm.tm_year < 1970 || tm.tm_mon < 1 ||
	    tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60 || ms < 0)
		return st_json_read_fail(l, "\"%s\" is not a time like 2026-11-30T15:03:10.710Z",
					 key);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t < 0)
		return st_json_read_fail(l, "\"%s\" is out of range", key);
	*out = (uint64_t)t * 1000000000ull + (uint64_t)ms * 1000000ull;
	return 0;
}


int st_json_read_parse(struct st_json_doc *d, const char *buf, size_t len, size_t max,
		       unsigned depth, char *err, size_t errlen)
{
	if (len > max) {
		snprintf(err, errlen, "larger than %zu MiB", max >> 20);
		return -1;
	}
	/* a value needs at least 1 byte: no more nodes than bytes */
	st_json_doc_init(d, (uint32_t)len + 1, depth);
	if (st_json_parse(d, buf, len)) {
		snprintf(err, errlen, "not JSON (%s at byte %zu)", st_json_strerror(d->err), d->err_off);
		st_json_doc_free(d);
		return -1;
	}
	return 0;
}

char *st_json_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto fail;
	}
	if ((uint64_t)sb.st_size > max) {
		snprintf(err, errlen, "larger than %zu MiB", max >> 20);
		goto fail;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s", n ? strerror(errno) : "shorter than its size");
			goto fail;
		}
		got += (size_t)n;
	}
	buf[got] = 0;
	close(fd);
	*len = got;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}
