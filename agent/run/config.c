/* SPDX-License-Identifier: GPL-2.0-only */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* libinih reads line by line through this reader: it reads each whole line itself (its
 * length and its bytes checked), counts the lines and notes the section headers (inih does
 * not report a section without keys, nor line numbers, in Debian's build), then hands the
 * line over in the pieces inih asks for. */
struct rd {
	struct st_config_file *c;
	FILE *f;
	unsigned line;
	int err;          /* set by the reader or the handler: stop, already reported */
	char *buf;        /* the line being handed over: ST_CONFIG_LINE_MAX + 1 bytes and a NUL */
	size_t len, off;  /* its length, and how much of it inih has */
};

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*e = 0;
	return s;
}

static void cfg_err(struct rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cfg_err(struct rd *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_err("%s:%u: %s", r->c->path, r->line, msg);
	r->err = -1;
}

static bool word_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

static int section_add(struct rd *r, char *hdr)
{
	struct st_config_file *c = r->c;
	struct st_config_section *s;
	char *cmd = trim(hdr), *name = NULL, *sp;

	sp = strpbrk(cmd, " \t");
	if (sp) {
		*sp = 0;
		name = trim(sp + 1);
	}
	if (!word_ok(cmd) || (name && !word_ok(name))) {
		cfg_err(r, "[%s%s%s]: a section is [daemon] or [COMMAND NAME] (letters, digits, -, _, .)",
			cmd, name ? " " : "", name ? name : "");
		return -1;
	}
	if (!strcmp(cmd, "daemon") != !name) {
		/* [daemon] takes no name, a job needs one */
		cfg_err(r, "[%s%s%s]: %s", cmd, name ? " " : "", name ? name : "",
			name ? "[daemon] has no name" : "a job section is [COMMAND NAME]");
		return -1;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (!name && !c->s[i].name) {
			cfg_err(r, "[daemon] given twice (first on line %u)", c->s[i].line);
			return -1;
		}
		if (name && c->s[i].name && !strcmp(c->s[i].name, name)) {
			cfg_err(r, "job name '%s' used twice (first on line %u)", name, c->s[i].line);
			return -1;
		}
	}
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 8;
		struct st_config_section *ns = realloc(c->s, nc * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		c->s = ns;
		c->cap = nc;
	}
	s = &c->s[c->n];
	memset(s, 0, sizeof(*s));
	s->command = strdup(cmd);
	s->name = name ? strdup(name) : NULL;
	s->line = r->line;
	if (!s->command || (name && !s->name))
		return -ENOMEM;
	c->n++;
	return 0;
}

/* The next whole line into r->buf (its '\n' kept). 1, 0 at the end of the file, -1 after
 * saying why it is refused. */
static int next_line(struct rd *r)
{
	size_t n = 0;
	int ch = EOF;

	while (n <= ST_CONFIG_LINE_MAX && (ch = getc(r->f)) != EOF) {
		r->buf[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (ferror(r->f)) {
		r->line++;
		cfg_err(r, "cannot be read (%s)", strerror(errno));
		return -1;
	}
	if (!n)
		return 0;
	r->line++;
	if (ch != '\n' && n > ST_CONFIG_LINE_MAX) {
		cfg_err(r, "line longer than %u bytes", ST_CONFIG_LINE_MAX);
		return -1;
	}
	{
		const char *nul = memchr(r->buf, 0, n);

		if (nul) {
			cfg_err(r, "a NUL byte (column %zu): the file is not text", (size_t)(nul - r->buf) + 1);
			return -1;
		}
	}
	r->buf[n] = 0;
	r->len = n;
	r->off = 0;
	return 1;
}

static char *reader(char *str, int num, void *stream)
{
	struct rd *r = stream;
	size_t n;

	if (r->err || num < 2)
		return NULL;
	if (r->off == r->len) {
		char *p;

		if (next_line(r) <= 0)
			return NULL;
		p = r->buf;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '[') {
			char *end = strchr(p, ']'), hdr[256];

			if (!end || (size_t)(end - p) >= sizeof(hdr)) {
				cfg_err(r, "a section header is [daemon] or [COMMAND NAME]");
				return NULL;
			}
			memcpy(hdr, p + 1, (size_t)(end - p - 1));
			hdr[end - p - 1] = 0;
			if (section_add(r, hdr))
				return NULL;
		}
	}
	/* inih takes a long line in pieces of its buffer's size, growing the buffer up to
	 * ini_max_line (st_config_load) */
	n = r->len - r->off < (size_t)num - 1 ? r->len - r->off : (size_t)num - 1;
	memcpy(str, r->buf + r->off, n);
	str[n] = 0;
	r->off += n;
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct rd *r = user;
	struct st_config_section *s;
	struct st_config_entry *e;

	if (r->err)
		return 0;
	if (!r->c->n) {
		cfg_err(r, "'%s' outside any section", name);
		return 0;
	}
	s = &r->c->s[r->c->n - 1];
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 8;
		struct st_config_entry *ne = realloc(s->e, nc * sizeof(*ne));

		if (!ne) {
			cfg_err(r, "out of memory");
			return 0;
		}
		s->e = ne;
		s->cap = nc;
	}
	e = &s->e[s->n];
	e->key = strdup(name);
	e->value = strdup(value ? value : "");
	e->line = r->line;
	if (!e->key || !e->value) {
		free(e->key);
		free(e->value);
		cfg_err(r, "out of memory");
		return 0;
	}
	s->n++;
	return 1;
}

/* path, opened only if it is a regular file of a sane size (a FIFO would block the daemon,
 * a directory or an empty file would read as no jobs). NULL after one line. */
static FILE *open_regular(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat sb;
	FILE *f;

	if (fd < 0) {
		pr_err("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb)) {
		pr_err("%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		pr_err("%s: not a regular file (%s): a configuration is a file", path,
		       S_ISDIR(sb.st_mode) ? "a directory" : S_ISFIFO(sb.st_mode) ? "a FIFO" :
		       S_ISSOCK(sb.st_mode) ? "a socket" : S_ISCHR(sb.st_mode) ? "a character device" :
		       S_ISBLK(sb.st_mode) ? "a block device" : "not a file");
		goto fail;
	}
	if (!sb.st_size) {
		pr_err("%s: the file is empty: no jobs", path);
		goto fail;
	}
	if (sb.st_size > ST_CONFIG_SIZE_MAX) {
		pr_err("%s: %lld bytes: a configuration is at most %u MiB", path,
		       (long long)sb.st_size, ST_CONFIG_SIZE_MAX >> 20);
		goto fail;
	}
	f = fdopen(fd, "r");
	if (f)
		return f;
	pr_err("%s: %s", path, strerror(errno));
fail:
	close(fd);
	return NULL;
}

int st_config_load(struct st_config_file *c, const char *path)
{
	struct rd r = { .c = c };
	int rc;

	memset(c, 0, sizeof(*c));
	c->path = strdup(path);
	r.buf = malloc(ST_CONFIG_LINE_MAX + 2);
	if (!c->path || !r.buf) {
		pr_err("%s: out of memory", path);
		goto fail;
	}
	r.f = open_regular(path);
	if (!r.f)
		goto fail;
	/*
	 * Debian's libinih (55) is built with a 200-byte line buffer on the stack, but exports
	 * its knobs as variables: a heap buffer that grows (doubling from 200 bytes) up to
	 * ini_max_line. A line and its '\n' and NUL fit; next_line() refuses longer ones
	 * before inih sees them. Process-wide, and the same values every time.
	 */
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = ST_CONFIG_LINE_MAX + 2;
	rc = ini_parse_stream(reader, &r, handler, &r);
	fclose(r.f);
	if (r.err)
		goto fail;
	if (rc > 0) {
		r.line = (unsigned)rc;
		cfg_err(&r, "not an INI line (KEY = VALUE, [SECTION], ; or # comment)");
		goto fail;
	}
	if (rc < 0) {
		pr_err("%s: cannot be read (%s)", path, rc == -2 ? "out of memory" : "error");
		goto fail;
	}
	free(r.buf);
	return 0;
fail:
	free(r.buf);
	st_config_free(c); /* what was read before the error */
	return -1;
}

void st_config_free(struct st_config_file *c)
{
	for (size_t i = 0; i < c->n; i++) {
		for (size_t k = 0; k < c->s[i].n; k++) {
			free(c->s[i].e[k].key);
			free(c->s[i].e[k].value);
		}
		free(c->s[i].e);
		free(c->s[i].command);
		free(c->s[i].name);
	}
	free(c->s);
	free(c->path);
	memset(c, 0, sizeof(*c));
}

const struct st_config_section *st_config_daemon(const struct st_config_file *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (!c->s[i].name)
			return &c->s[i];
	return NULL;
}

static bool truth(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

int st_config_apply(const struct st_config_file *c, const struct st_config_section *s,
		    const struct st_optset *sets, size_t nsets)
{
	char where[512], sect[160];

	snprintf(sect, sizeof(sect), "[%s%s%s]", s->command, s->name ? " " : "",
		 s->name ? s->name : "");
	for (size_t i = 0; i < s->n; i++) {
		const struct st_config_entry *e = &s->e[i];
		const struct st_optset *set;
		const struct st_opt *o = st_optset_find(sets, nsets, e->key, &set);
		bool novalue, on = true;

		snprintf(where, sizeof(where), "%s:%u: %s %s", c->path, e->line, sect, e->key);
		if (!o) {
			pr_err("%s:%u: %s: unknown key '%s'", c->path, e->line, sect, e->key);
			return -1;
		}
		if (!(o->flags & ST_OPTF_REPEAT)) {
			for (size_t k = 0; k < i; k++) {
				if (!strcmp(s->e[k].key, e->key)) {
					pr_err("%s: given twice (first on line %u), and it is not repeatable",
					       where, s->e[k].line);
					return -1;
				}
			}
		}
		novalue = o->kind == ST_OPTK_FLAG || o->kind == ST_OPTK_COUNT ||
			  (o->flags & ST_OPTF_NOVAL);
		if (novalue) {
			if (!truth(e->value, &on)) {
				pr_err("%s: '%s' is not true or false", where, e->value);
				return -1;
			}
			if (!on)
				continue;
		}
		if (st_opt_set(o, set->obj, novalue ? NULL : e->value, where))
			return -1;
	}
	return 0;
}

int st_config_section_equal(const struct st_config_section *a, const struct st_config_section *b)
{
	if (strcmp(a->command, b->command) || !a->name != !b->name ||
	    (a->name && strcmp(a->name, b->name)) || a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->e[i].key, b->e[i].key) || strcmp(a->e[i].value, b->e[i].value))
			return 0;
	return 1;
}
