/* SPDX-License-Identifier: GPL-2.0-only */
#include "stats.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"

static uint64_t *field(const struct st_stat_desc *d, void *obj)
{
	return (uint64_t *)((char *)obj + d->off);
}

uint64_t st_stats_get(const struct st_stat_desc *d, const void *obj)
{
	uint64_t v;

	memcpy(&v, (const char *)obj + d->off, sizeof(v));
	return v;
}

void st_stats_add(const struct st_stat_desc *d, size_t n, void *dst, const void *src)
{
	for (size_t i = 0; i < n; i++)
		*field(&d[i], dst) += st_stats_get(&d[i], src);
}

void st_statline_init(struct st_statline *l)
{
	l->n = 0;
}

void st_statline_add(struct st_statline *l, const char *name, uint64_t v, enum st_stat_kind kind,
		     const char *help)
{
	if (l->n >= ST_STATLINE_MAX) {
		/* a programming error, not a runtime condition: the line is fixed per command */
		pr_warn("internal: stats line full, '%s' left out", name);
		return;
	}
	l->e[l->n++] = (struct st_statline_ent){ name, help, v, (uint8_t)kind };
}

void st_statline_add_table(struct st_statline *l, const struct st_stat_desc *d, size_t n,
			   const void *obj)
{
	for (size_t i = 0; i < n; i++)
		st_statline_add(l, d[i].name, st_stats_get(&d[i], obj), d[i].kind, d[i].help);
}

uint64_t st_statline_value(const struct st_statline *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->e[i].name, name))
			return l->e[i].v;
	return 0;
}

size_t st_statline_format(const struct st_statline *l, char *buf, size_t len)
{
	size_t used = 0;

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < l->n; i++) {
		int k;

		if (l->e[i].kind == ST_STAT_DETAIL && !l->e[i].v)
			continue;
		k = snprintf(used < len ? buf + used : NULL, used < len ? len - used : 0,
			     "%s%s=%" PRIu64, used ? " " : "", l->e[i].name, l->e[i].v);

		if (k > 0)
			used += (size_t)k;
	}
	return used;
}

void st_statline_print(const struct st_statline *l, const char *what)
{
	char buf[4096];

	st_statline_format(l, buf, sizeof(buf));
	/* the command's output, not a log message: printed at every level, in one write */
	fprintf(stderr, "shadowtap: %s %s\n", what, buf);
}

int st_statline_prometheus(const struct st_statline *l, FILE *f, const char *command)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct st_statline_ent *e = &l->e[i];
		const char *sfx = e->kind == ST_STAT_GAUGE ? "" : "_total";

		if (e->help)
			fprintf(f, "# HELP shadowtap_%s%s %s\n", e->name, sfx, e->help);
		fprintf(f, "# TYPE shadowtap_%s%s %s\nshadowtap_%s%s{command=\"%s\"} %" PRIu64 "\n",
			e->name, sfx, e->kind == ST_STAT_GAUGE ? "gauge" : "counter", e->name, sfx,
			command, e->v);
	}
	return ferror(f) ? -EIO : 0;
}

/* The label value with \\, \" and newlines escaped (the text format's rules). */
static void label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

int st_statlines_prometheus(const struct st_statline *const *ls, const char *const *jobs,
			    const char *const *commands, size_t n, FILE *f)
{
	/* one family per name: HELP and TYPE once, then every job's sample of it */
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < ls[j]->n; i++) {
			const struct st_statline_ent *e = &ls[j]->e[i];
			const char *sfx = e->kind == ST_STAT_GAUGE ? "" : "_total";
			bool seen = false;

			for (size_t pj = 0; pj <= j && !seen; pj++)
				for (size_t pi = 0; pi < (pj < j ? ls[pj]->n : i) && !seen; pi++)
					seen = !strcmp(ls[pj]->e[pi].name, e->name);
			if (seen)
				continue;
			if (e->help)
				fprintf(f, "# HELP shadowtap_%s%s %s\n", e->name, sfx, e->help);
			fprintf(f, "# TYPE shadowtap_%s%s %s\n", e->name, sfx,
				e->kind == ST_STAT_GAUGE ? "gauge" : "counter");
			for (size_t k = j; k < n; k++) {
				for (size_t m = 0; m < ls[k]->n; m++) {
					if (strcmp(ls[k]->e[m].name, e->name))
						continue;
					fprintf(f, "shadowtap_%s%s{job=\"", e->name, sfx);
					label_value(f, jobs[k]);
					fputs("\",command=\"", f);
					label_value(f, commands[k]);
					fprintf(f, "\"} %" PRIu64 "\n", ls[k]->e[m].v);
					break;
				}
			}
		}
	}
	return ferror(f) ? -EIO : 0;
}
