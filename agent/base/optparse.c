/* SPDX-License-Identifier: GPL-2.0-only */
#include "optparse.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "opts.h"

#define LONGOPTS_MAX 128 /* + --help and --help-man */
#define HELP_COL 24

static void *field(const struct st_opt *o, void *obj)
{
	return (char *)obj + o->off;
}

static int set_uint(const struct st_opt *o, void *obj, const char *val, const char *where)
{
	unsigned long long v;
	unsigned shift = o->flags & ST_OPTF_MIB ? 20 : o->flags & ST_OPTF_KIB ? 10 : 0;
	char *end;
	void *p = field(o, obj);

	errno = 0;
	if (!val || *val < '0' || *val > '9')
		goto bad;
	v = strtoull(val, &end, 10);
	if (errno || *end || (double)v < o->min || (double)v > o->max)
		goto bad;
	if ((o->flags & ST_OPTF_POW2) && (v & (v - 1))) {
		pr_err("%s: %llu is not a power of 2 (1, 2, 4, ... %.0f)", where, v, o->max);
		return -1;
	}
	v <<= shift;
	switch (o->size) {
	case 1: *(uint8_t *)p = (uint8_t)v; break;
	case 2: *(uint16_t *)p = (uint16_t)v; break;
	case 4: *(uint32_t *)p = (uint32_t)v; break;
	default: *(uint64_t *)p = (uint64_t)v; break;
	}
	return 0;
bad:
	pr_err("%s: '%s' is not a number in %.0f..%.0f", where, val ? val : "", o->min, o->max);
	return -1;
}

int st_opt_set(const struct st_opt *o, void *obj, const char *val, const char *where)
{
	char err[256] = "";

	switch (o->kind) {
	case ST_OPTK_FLAG:
		*(bool *)field(o, obj) = true;
		return 0;
	case ST_OPTK_COUNT:
		(*(int *)field(o, obj))++;
		return 0;
	case ST_OPTK_STRING:
		if (!val || !*val) {
			pr_err("%s: needs a value", where);
			return -1;
		}
		*(const char **)field(o, obj) = val;
		return 0;
	case ST_OPTK_UINT:
		return set_uint(o, obj, val, where);
	case ST_OPTK_SIZE:
		return st_opts_size(where, val, (uint64_t)o->min, (uint64_t)o->max,
				    (uint64_t *)field(o, obj));
	case ST_OPTK_DOUBLE: {
		char *end;
		double v = NAN;

		errno = 0;
		if (o->flags & ST_OPTF_SECONDS) {
			if (!val || st_optparse_seconds(val, &v) || !(v >= o->min && v <= o->max)) {
				pr_err("%s: '%s' is not a duration in %gs..%gs (90, 90s, 15m, 1h, 500ms)",
				       where, val ? val : "", o->min, o->max);
				return -1;
			}
		} else {
			v = val && *val ? strtod(val, &end) : NAN;
			if (!val || !*val || errno || *end || !(v >= o->min && v <= o->max)) {
				pr_err("%s: '%s' is not a number in %g..%g", where, val ? val : "",
				       o->min, o->max);
				return -1;
			}
		}
		*(double *)field(o, obj) = v;
		return 0;
	}
	case ST_OPTK_CHOICE: {
		char list[200] = "";
		size_t used = 0;

		for (int i = 0; o->choices[i]; i++) {
			if (val && !strcmp(val, o->choices[i])) {
				*(int *)field(o, obj) = i;
				return 0;
			}
			used += (size_t)snprintf(list + used, used < sizeof(list) ? sizeof(list) - used : 0,
						 "%s%s", i ? (o->choices[i + 1] ? ", " : " or ") : "",
						 o->choices[i]);
		}
		pr_err("%s: '%s' is not %s", where, val ? val : "", list);
		return -1;
	}
	case ST_OPTK_FUNC: {
		/* a config file's key: what fn prints itself names the file and line too */
		const char *ctx = st_log_get_context();
		int r;

		if (!strstr(where, ": --")) /* the command line's is "CMD: --name" */
			st_log_set_context(where);
		r = o->fn(obj, val, err, sizeof(err));
		st_log_set_context(ctx);
		if (r) {
			if (err[0]) /* else fn said it already, in one line */
				pr_err("%s: %s", where, err);
			return -1;
		}
		return 0;
	}
	default:
		pr_err("%s: internal: unknown option kind", where);
		return -1;
	}
}

const struct st_opt *st_optset_find(const struct st_optset *sets, size_t nsets, const char *name,
				    const struct st_optset **set)
{
	for (size_t s = 0; s < nsets; s++)
		for (size_t i = 0; i < sets[s].n; i++)
			if (!strcmp(sets[s].opts[i].name, name)) {
				if (set)
					*set = &sets[s];
				return &sets[s].opts[i];
			}
	return NULL;
}

static bool has_value(const struct st_opt *o)
{
	return o->kind != ST_OPTK_FLAG && o->kind != ST_OPTK_COUNT &&
	       !(o->flags & (ST_OPTF_NOVAL | ST_OPTF_OPTVAL));
}

static int arg_kind(const struct st_opt *o)
{
	if (o->kind == ST_OPTK_FUNC && (o->flags & ST_OPTF_OPTVAL))
		return optional_argument;
	return has_value(o) ? required_argument : no_argument;
}

/* The order --help and the manual list the sets in: the untitled ones as given, then each
 * title in the order it first appears, with all its sets. Returns how many (nsets). */
static size_t set_order(const struct st_optset *sets, size_t nsets, size_t *order)
{
	size_t n = 0;

	for (size_t s = 0; s < nsets; s++)
		if (!sets[s].title)
			order[n++] = s;
	for (size_t s = 0; s < nsets; s++) {
		bool earlier = false;

		if (!sets[s].title)
			continue;
		for (size_t p = 0; p < s && !earlier; p++)
			earlier = sets[p].title && !strcmp(sets[p].title, sets[s].title);
		if (earlier)
			continue;
		for (size_t t = s; t < nsets; t++)
			if (sets[t].title && !strcmp(sets[t].title, sets[s].title))
				order[n++] = t;
	}
	return n;
}

/* The heading to print before set order[i], or NULL: its title, when the set before had
 * another. */
static const char *heading(const struct st_optset *sets, const size_t *order, size_t i)
{
	const char *t = sets[order[i]].title;

	if (!t || (i && sets[order[i - 1]].title && !strcmp(sets[order[i - 1]].title, t)))
		return NULL;
	return t;
}

void st_optset_help(FILE *f, const struct st_optset *sets, size_t nsets)
{
	size_t order[64], nord;

	if (nsets > sizeof(order) / sizeof(order[0]))
		nsets = sizeof(order) / sizeof(order[0]);
	nord = set_order(sets, nsets, order);
	for (size_t k = 0; k < nord; k++) {
		size_t s = order[k];
		const char *title = heading(sets, order, k);

		if (title)
			fprintf(f, "\n%s:\n", title);
		for (size_t i = 0; i < sets[s].n; i++) {
			const struct st_opt *o = &sets[s].opts[i];
			const char *h = o->help ? o->help : "";
			char lead[96];
			int n;

			const char *sep = has_value(o) ? " " : "", *arg = has_value(o) ? o->arg : "";
			char opt_arg[64];

			if (arg_kind(o) == optional_argument && o->arg) {
				snprintf(opt_arg, sizeof(opt_arg), "[=%s]", o->arg);
				arg = opt_arg;
			}
			if (o->short_name)
				n = snprintf(lead, sizeof(lead), "  -%c, --%s%s%s", o->short_name, o->name,
					     sep, arg);
			else
				n = snprintf(lead, sizeof(lead), "      --%s%s%s", o->name, sep, arg);
			if (n < HELP_COL)
				fprintf(f, "%-*s", HELP_COL, lead);
			else
				fprintf(f, "%s\n%*s", lead, HELP_COL, "");
			for (const char *nl; (nl = strchr(h, '\n')); h = nl + 1)
				fprintf(f, "%.*s\n%*s", (int)(nl - h), h, HELP_COL, "");
			fprintf(f, "%s\n", h);
		}
	}
	fprintf(f, "%s  -h, --help            this help\n", nord && sets[order[nord - 1]].title ? "\n" : "");
}

int st_optparse_seconds(const char *s, double *out)
{
	static const struct {
		const char *unit;
		double secs;
	} units[] = { { "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 } };
	char *end;
	double v;

	if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || !isfinite(v))
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end, units[i].unit)) {
			*out = v * units[i].secs;
			return 0;
		}
	return -1;
}

/* Optimal string alignment distance (Damerau-Levenshtein without moves of substrings),
 * capped at lim + 1: names are short. */
static size_t edit_distance(const char *a, const char *b, size_t lim)
{
	size_t la = strlen(a), lb = strlen(b), d[3][64], best;
	size_t *pp = d[0], *p = d[1], *c = d[2];

	if (la >= 64 || lb >= 64)
		return lim + 1;
	for (size_t j = 0; j <= lb; j++)
		p[j] = j;
	for (size_t i = 1; i <= la; i++) {
		c[0] = best = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1], v = p[j - 1] + cost;

			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
			if (v < best)
				best = v;
		}
		if (best > lim)
			return lim + 1;
		size_t *t = pp;

		pp = p;
		p = c;
		c = t;
	}
	return p[lb];
}

const char *st_optparse_nearest(const char *word, const char *const *cands, size_t n)
{
	size_t lim = strlen(word) / 3, best = SIZE_MAX;
	const char *pick = NULL;

	if (lim < 1)
		lim = 1;
	for (size_t i = 0; i < n; i++) {
		size_t dist = edit_distance(word, cands[i], lim);

		if (dist <= lim && dist < best) {
			best = dist;
			pick = cands[i];
		}
	}
	return pick;
}

/* The one-line message for getopt_long's '?' or ':' (opterr = 0, optstring starting with
 * ':'), naming the command and, for an unknown long option, the nearest known one. */
static int getopt_error(const struct st_optset *sets, size_t nsets, const char *cmd, int opt,
			char **argv)
{
	const char *arg = argv[optind - 1], *names[LONGOPTS_MAX + 1], *near;
	char word[64];
	size_t n = 0;

	if (opt == ':') {
		pr_err("%s: option '%s' needs a value", cmd, arg);
		return ST_EXIT_USAGE;
	}
	if (optopt && strncmp(arg, "--", 2)) {
		pr_err("%s: unknown option '-%c' (see shadowtap %s --help)", cmd, optopt, cmd);
		return ST_EXIT_USAGE;
	}
	snprintf(word, sizeof(word), "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
	for (size_t s = 0; s < nsets; s++)
		for (size_t i = 0; i < sets[s].n && n < LONGOPTS_MAX; i++)
			names[n++] = sets[s].opts[i].name;
	names[n++] = "help";
	near = st_optparse_nearest(word, names, n);
	if (near)
		pr_err("%s: unknown option '%s' (did you mean --%s?)", cmd, arg, near);
	else
		pr_err("%s: unknown option '%s' (see shadowtap %s --help)", cmd, arg, cmd);
	return ST_EXIT_USAGE;
}

/* s as roff text: a leading '.' or '\'' escaped, backslashes and hyphens of option names
 * escaped (a plain '-' may be typeset as a hyphen, which a copied command line cannot use). */
static void roff_text(FILE *f, const char *s, size_t len)
{
	bool bol = true;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (bol && (c == '.' || c == '\''))
			fputs("\\&", f);
		if (c == '\\')
			fputs("\\e", f);
		else if (c == '-')
			fputs("\\-", f);
		else
			fputc(c, f);
		bol = c == '\n';
	}
}

/* The command's section of the manual page, from the same rows as --help: its usage text
 * (as it is: it is laid out by hand) and one tagged paragraph per option. */
static void help_man(FILE *f, const char *cmd, const char *usage_head,
		     const struct st_optset *sets, size_t nsets)
{
	size_t order[64], n;

	if (nsets > sizeof(order) / sizeof(order[0]))
		nsets = sizeof(order) / sizeof(order[0]);
	n = set_order(sets, nsets, order);
	fprintf(f, ".SS %s\n.nf\n", cmd);
	roff_text(f, usage_head, strlen(usage_head));
	fputs(".fi\n", f);
	for (size_t k = 0; k < n; k++) {
		size_t s = order[k];
		const char *t = heading(sets, order, k);

		if (t) {
			fputs(".PP\n\\fI", f);
			roff_text(f, t, strlen(t));
			fputs("\\fR\n", f);
		}
		for (size_t i = 0; i < sets[s].n; i++) {
			const struct st_opt *o = &sets[s].opts[i];
			const char *h = o->help ? o->help : "";

			fputs(".TP\n", f);
			if (o->short_name)
				fprintf(f, "\\fB\\-%c\\fR, ", o->short_name);
			fputs("\\fB\\-\\-", f);
			roff_text(f, o->name, strlen(o->name));
			fputs("\\fR", f);
			if (has_value(o) && o->arg) {
				fputs(arg_kind(o) == optional_argument ? "[=\\fI" : " \\fI", f);
				roff_text(f, o->arg, strlen(o->arg));
				fputs(arg_kind(o) == optional_argument ? "\\fR]" : "\\fR", f);
			}
			fputc('\n', f);
			/* the help's line breaks are --help's layout: one paragraph here */
			for (const char *nl; (nl = strchr(h, '\n')); h = nl + 1) {
				roff_text(f, h, (size_t)(nl - h));
				fputc('\n', f);
			}
			roff_text(f, h, strlen(h));
			fputc('\n', f);
		}
	}
}

int st_optset_parse(const struct st_optset *sets, size_t nsets, const char *cmd,
		    const char *usage_head, int argc, char **argv, int *first_arg)
{
	struct option lo[LONGOPTS_MAX + 3];
	char shorts[2 * LONGOPTS_MAX + 4] = ":";
	size_t n = 0, sl = 1;
	int opt;

	for (size_t s = 0; s < nsets; s++) {
		for (size_t i = 0; i < sets[s].n; i++) {
			const struct st_opt *o = &sets[s].opts[i];

			if (n >= LONGOPTS_MAX) {
				pr_err("%s: internal: too many options", cmd);
				return ST_EXIT_USAGE;
			}
			/* val encodes the row: 0x10000 + set * 0x1000 + index */
			lo[n++] = (struct option){ o->name, arg_kind(o), NULL,
						   (int)(0x10000 + s * 0x1000 + i) };
			if (o->short_name) {
				shorts[sl++] = (char)o->short_name;
				if (has_value(o))
					shorts[sl++] = ':';
			}
		}
	}
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	/* not in --help: `shadowtap --man` asks every command for its part of the page */
	lo[n++] = (struct option){ "help-man", no_argument, NULL, 'M' };
	lo[n] = (struct option){ 0 };
	shorts[sl++] = 'h';
	shorts[sl] = 0;

	opterr = 0;
	optind = 0; /* 0, not 1: glibc then resets getopt fully (commands parse more than once in tests) */
	while ((opt = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		const struct st_opt *o = NULL;
		const struct st_optset *set = NULL;
		char where[96];

		if (opt == 'h') {
			fputs(usage_head, stdout);
			st_optset_help(stdout, sets, nsets);
			return -1;
		}
		if (opt == 'M') {
			help_man(stdout, cmd, usage_head, sets, nsets);
			return -1;
		}
		if (opt == '?' || opt == ':')
			return getopt_error(sets, nsets, cmd, opt, argv);
		if (opt >= 0x10000) {
			set = &sets[(opt - 0x10000) / 0x1000];
			o = &set->opts[(opt - 0x10000) % 0x1000];
		} else {
			for (size_t s = 0; s < nsets && !o; s++)
				for (size_t i = 0; i < sets[s].n && !o; i++)
					if (sets[s].opts[i].short_name == opt) {
						set = &sets[s];
						o = &sets[s].opts[i];
					}
		}
		if (!o)
			return getopt_error(sets, nsets, cmd, '?', argv);
		snprintf(where, sizeof(where), "%s: --%s", cmd, o->name);
		if (st_opt_set(o, set->obj, optarg, where))
			return ST_EXIT_USAGE;
	}
	*first_arg = optind;
	return 0;
}
