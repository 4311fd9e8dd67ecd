/* SPDX-License-Identifier: GPL-2.0-only */
#include "stats.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "log.h"
#include "prom.h"

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

static void add(struct st_statline *l, const char *name, uint64_t v, uint8_t kind,
		const char *help, uint8_t unit)
{
	if (l->n >= ST_STATLINE_MAX) {
		/* a programming error, not a runtime condition: the line is fixed per command */
		pr_warn("internal: stats line full, '%s' left out", name);
		return;
	}
	l->e[l->n++] = (struct st_statline_ent){ name, help, v, kind, unit, 0, NULL, NULL };
}

void st_statline_add_labeled(struct st_statline *l, const char *name, const char *label,
			     const char *value, uint64_t v, enum st_stat_kind kind,
			     const char *help)
{
	add(l, name, v, (uint8_t)kind, help, ST_STAT_UNIT_NONE);
	if (l->e[l->n - 1].name == name) {
		l->e[l->n - 1].lk = label;
		l->e[l->n - 1].lv = value;
	}
}

void st_statline_add(struct st_statline *l, const char *name, uint64_t v, enum st_stat_kind kind,
		     const char *help)
{
	add(l, name, v, (uint8_t)kind, help, ST_STAT_UNIT_NONE);
}

static uint64_t pow10u(unsigned d)
{
	uint64_t p = 1;

	while (d--)
		p *= 10;
	return p;
}

void st_statline_add_fixed(struct st_statline *l, const char *name, double v, unsigned decimals,
			   enum st_stat_kind kind, enum st_stat_unit unit, const char *help)
{
	size_t at = l->n;

	if (decimals > 6)
		decimals = 6;
	add(l, name, v > 0 ? (uint64_t)llround(v * (double)pow10u(decimals)) : 0, (uint8_t)kind,
	    help, (uint8_t)unit);
	if (l->n > at)
		l->e[at].decimals = (uint8_t)decimals;
}

/*
 * An entry's value as text: "12", or "499.8" with one decimal; as a metric (metric true), in
 * its metric's unit: milliseconds as seconds, three more decimals (blind_ms=1500: 1.500).
 */
static int value_str(const struct st_statline_ent *e, bool metric, char *buf, size_t len)
{
	unsigned d = e->decimals > 6 ? 6 : e->decimals;
	uint64_t p;

	if (metric && e->unit == ST_STAT_UNIT_MS)
		d += 3;
	if (!d)
		return snprintf(buf, len, "%" PRIu64, e->v);
	p = pow10u(d);
	return snprintf(buf, len, "%" PRIu64 ".%0*" PRIu64, e->v / p, (int)d, e->v % p);
}

void st_statline_add_table(struct st_statline *l, const struct st_stat_desc *d, size_t n,
			   const void *obj)
{
	for (size_t i = 0; i < n; i++)
		add(l, d[i].name, st_stats_get(&d[i], obj), d[i].kind, d[i].help, d[i].unit);
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
		char v[32];
		int k;

		if ((l->e[i].kind == ST_STAT_DETAIL && !l->e[i].v) || l->e[i].lk)
			continue;
		value_str(&l->e[i], false, v, sizeof(v));
		k = snprintf(used < len ? buf + used : NULL, used < len ? len - used : 0,
			     "%s%s=%s", used ? " " : "", l->e[i].name, v);

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
	st_log_out("%s %s", what, buf);
}

const char *st_statline_metric(const struct st_statline_ent *e, char *buf, size_t len)
{
	const char *sfx = e->kind == ST_STAT_GAUGE ? "" : "_total";
	size_t n = strlen(e->name);

	if (e->unit == ST_STAT_UNIT_MS && n > 3 && !strcmp(e->name + n - 3, "_ms"))
		snprintf(buf, len, "%.*s_seconds%s", (int)(n - 3), e->name, sfx);
	else if (e->unit == ST_STAT_UNIT_BYTES && !(n > 6 && !strcmp(e->name + n - 6, "_bytes")))
		snprintf(buf, len, "%s_bytes%s", e->name, sfx);
	else
		snprintf(buf, len, "%s%s", e->name, sfx);
	return buf;
}

/* e's value in its metric's unit, and the line's end. */
static void metric_value(FILE *f, const struct st_statline_ent *e)
{
	char v[32];

	value_str(e, true, v, sizeof(v));
	fprintf(f, "%s\n", v);
}

/* ,KEY="VALUE" of an entry's own label, if it has one. */
static void own_label(FILE *f, const struct st_statline_ent *e)
{
	if (!e->lk)
		return;
	fprintf(f, ",%s=\"", e->lk);
	st_prom_label_value(f, e->lv ? e->lv : "");
	fputc('"', f);
}

/* An earlier entry of ls[0..j] (up to entry i of line j) has e's name: its family is out. */
static bool family_seen(const struct st_statline *const *ls, size_t j, size_t i,
			const struct st_statline_ent *e)
{
	for (size_t pj = 0; pj <= j; pj++)
		for (size_t pi = 0; pi < (pj < j ? ls[pj]->n : i); pi++)
			if (!strcmp(ls[pj]->e[pi].name, e->name))
				return true;
	return false;
}

int st_statline_prometheus(const struct st_statline *l, FILE *f, const char *command)
{
	const struct st_statline *const ls[] = { l };

	for (size_t i = 0; i < l->n; i++) {
		const struct st_statline_ent *e = &l->e[i];
		char m[160];

		if (family_seen(ls, 0, i, e))
			continue;
		st_statline_metric(e, m, sizeof(m));
		if (e->help)
			fprintf(f, "# HELP shadowtap_%s %s\n", m, e->help);
		fprintf(f, "# TYPE shadowtap_%s %s\n", m, e->kind == ST_STAT_GAUGE ? "gauge" : "counter");
		for (size_t q = i; q < l->n; q++) {
			if (strcmp(l->e[q].name, e->name))
				continue;
			fprintf(f, "shadowtap_%s{command=\"%s\"", m, command);
			own_label(f, &l->e[q]);
			fputs("} ", f);
			metric_value(f, &l->e[q]);
		}
	}
	return ferror(f) ? -EIO : 0;
}

int st_statline_prometheus_jobs(const struct st_statline *const *ls, const char *const *jobs,
				const char *const *commands, size_t n, FILE *f)
{
	/* one family per name: HELP and TYPE once, then every job's sample of it */
	for (size_t j = 0; j < n; j++) {
		for (size_t i = 0; i < ls[j]->n; i++) {
			const struct st_statline_ent *e = &ls[j]->e[i];
			char m[160];

			if (family_seen(ls, j, i, e))
				continue;
			st_statline_metric(e, m, sizeof(m));
			if (e->help)
				fprintf(f, "# HELP shadowtap_%s %s\n", m, e->help);
			fprintf(f, "# TYPE shadowtap_%s %s\n", m,
				e->kind == ST_STAT_GAUGE ? "gauge" : "counter");
			for (size_t k = j; k < n; k++) {
				for (size_t q = 0; q < ls[k]->n; q++) {
					/* one sample per job, or per label value of its own */
					if (strcmp(ls[k]->e[q].name, e->name))
						continue;
					fprintf(f, "shadowtap_%s{job=\"", m);
					st_prom_label_value(f, jobs[k]);
					fputs("\",command=\"", f);
					st_prom_label_value(f, commands[k]);
					fputc('"', f);
					own_label(f, &ls[k]->e[q]);
					fputs("} ", f);
					metric_value(f, &ls[k]->e[q]);
					if (!ls[k]->e[q].lk)
						break;
				}
			}
		}
	}
	return ferror(f) ? -EIO : 0;
}
