/* SPDX-License-Identifier: GPL-2.0-only */
/* Prometheus text exposition of labelled families (prom.h). */
#include "prom.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct family {
	char *name;
	char *help;
	enum st_prom_type type;
	char *buf;       /* its samples' lines */
	size_t len, cap;
};

struct st_prom {
	struct family *f;
	size_t n, cap;
	int err;         /* -ENOMEM once a sample could not be kept */
};

const double st_prom_latency_bounds[ST_PROM_LATENCY_NBOUNDS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					  0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
const unsigned st_prom_latency_nbounds = sizeof(st_prom_latency_bounds) /
					 sizeof(st_prom_latency_bounds[0]);

void st_prom_labels_add(struct st_prom_labels *s, const char *name, const char *value)
{
	if (s->n < ST_PROM_LABELS_MAX)
		s->l[s->n++] = (struct st_prom_label){ name, value };
}

struct st_prom *st_prom__new(void)
{
	return calloc(1, sizeof(struct st_prom));
}

void st_prom__free(struct st_prom *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->f[i].name);
		free(p->f[i].help);
		free(p->f[i].buf);
	}
	free(p->f);
	free(p);
}

int st_prom__family(struct st_prom *p, const char *name, enum st_prom_type type, const char *help)
{
	struct family *f;

	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->f[i].name, name))
			return (int)i;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;
		struct family *nf = realloc(p->f, ncap * sizeof(*nf));

		if (!nf)
			return p->err = -ENOMEM;
		p->f = nf;
		p->cap = ncap;
	}
	f = &p->f[p->n];
	memset(f, 0, sizeof(*f));
	f->name = strdup(name);
	f->help = help ? strdup(help) : NULL;
	f->type = type;
	if (!f->name || (help && !f->help)) {
		free(f->name);
		free(f->help);
		return p->err = -ENOMEM;
	}
	return (int)p->n++;
}

static void put(struct st_prom *p, struct family *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void put(struct st_prom *p, struct family *f, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(f->buf ? f->buf + f->len : NULL, f->buf ? f->cap - f->len : 0, fmt, ap);
		va_end(ap);
		if (k < 0) {
			p->err = -ENOMEM;
			return;
		}
		if (f->buf && f->len + (size_t)k < f->cap) {
			f->len += (size_t)k;
			return;
		}
		{
			size_t ncap = f->cap ? f->cap : 4096;
			char *nb;

			while (ncap <= f->len + (size_t)k)
				ncap *= 2;
			nb = realloc(f->buf, ncap);
			if (!nb) {
				p->err = -ENOMEM;
				return;
			}
			f->buf = nb;
			f->cap = ncap;
		}
	}
}

/* The label value escaped into the family's text. */
static void put_value(struct st_prom *p, struct family *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			put(p, f, "\\\\");
		else if (*v == '"')
			put(p, f, "\\\"");
		else if (*v == '\n')
			put(p, f, "\\n");
		else
			put(p, f, "%c", *v);
	}
}

/* name{a="x",b="y"[,le="..."]} */
static void put_series(struct st_prom *p, struct family *f, const char *suffix,
		       const struct st_prom_labels *l, const char *le)
{
	size_t n = l ? l->n : 0;

	put(p, f, "%s%s", f->name, suffix);
	if (!n && !le)
		return;
	put(p, f, "{");
	for (size_t i = 0; i < n; i++) {
		put(p, f, "%s%s=\"", i ? "," : "", l->l[i].name);
		put_value(p, f, l->l[i].value ? l->l[i].value : "");
		put(p, f, "\"");
	}
	if (le)
		put(p, f, "%sle=\"%s\"", n ? "," : "", le);
	put(p, f, "}");
}

void st_prom_float(char *out, size_t cap, double v)
{
	if (isnan(v)) {
		snprintf(out, cap, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, cap, "%sInf", v > 0 ? "+" : "-");
		return;
	}
	/* the shortest that reads back the same: le="0.005", not 0.0050000000000000001 */
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static struct family *fam_at(struct st_prom *p, int fam)
{
	return fam >= 0 && (size_t)fam < p->n ? &p->f[fam] : NULL;
}

void st_prom__sample(struct st_prom *p, int fam, const struct st_prom_labels *l, double v)
{
	struct family *f = fam_at(p, fam);
	char num[40];

	if (!f)
		return;
	st_prom_float(num, sizeof(num), v);
	put_series(p, f, "", l, NULL);
	put(p, f, " %s\n", num);
}

void st_prom__sample_u64(struct st_prom *p, int fam, const struct st_prom_labels *l, uint64_t v)
{
	struct family *f = fam_at(p, fam);

	if (!f)
		return;
	put_series(p, f, "", l, NULL);
	put(p, f, " %" PRIu64 "\n", v);
}

void st_prom__histogram(struct st_prom *p, int fam, const struct st_prom_labels *l,
			const double *bounds, size_t nb, const uint64_t *counts, double sum)
{
	struct family *f = fam_at(p, fam);
	uint64_t cum = 0;
	char le[40], num[40];

	if (!f)
		return;
	for (size_t i = 0; i <= nb; i++) {
		cum += counts[i];
		if (i < nb)
			st_prom_float(le, sizeof(le), bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		put_series(p, f, "_bucket", l, le);
		put(p, f, " %" PRIu64 "\n", cum);
	}
	st_prom_float(num, sizeof(num), sum);
	put_series(p, f, "_sum", l, NULL);
	put(p, f, " %s\n", num);
	put_series(p, f, "_count", l, NULL);
	put(p, f, " %" PRIu64 "\n", cum);
}

static const char *type_name(enum st_prom_type t)
{
	return t == ST_PROM_COUNTER ? "counter" : t == ST_PROM_GAUGE ? "gauge" : "histogram";
}

int st_prom__write(const struct st_prom *p, FILE *f)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct family *fm = &p->f[i];

		if (!fm->len)
			continue; /* a family nobody gave a sample: nothing to say */
		if (fm->help)
			fprintf(f, "# HELP %s %s\n", fm->name, fm->help);
		fprintf(f, "# TYPE %s %s\n", fm->name, type_name(fm->type));
		fwrite(fm->buf, 1, fm->len, f);
	}
	if (p->err)
		return p->err;
	return ferror(f) ? -EIO : 0;
}

bool st_prom_label_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= ST_PROM_LABEL_NAME_MAX || (s[0] == '_' && s[1] == '_'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

void st_prom_label_value(FILE *f, const char *v)
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
