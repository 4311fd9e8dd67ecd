/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The compare report: JSON for machines, one self-contained HTML page for
 * people (compare_report.h). Every string from the traffic or from a merged part
 * file passes one escaping function per format (st_cmp_html_str for HTML, st_cmp_json_str for
 * JSON): paths, values and endpoints are what clients and servers sent, and a part
 * file's command, candidate, hosts, notes and counter names are what another host
 * wrote (tests/integration/test_report_merge.sh renders hostile parts in Chromium).
 */
#include "compare_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

void st_cmp_json_str(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t k;

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			i++;
		} else if ((k = st_cmp_utf8_seq(p + i, n - i))) {
			fwrite(p + i, 1, k, f);
			i += k;
		} else {
			fprintf(f, "\\u%04x", c); /* not UTF-8: the byte, as Latin-1 */
			i++;
		}
	}
	fputc('"', f);
}

static void jstr(FILE *f, const char *s)
{
	st_cmp_json_str(f, s, strlen(s));
}

void st_cmp_time_str(char *out, size_t cap, uint64_t real_ns)
{
	time_t t = (time_t)(real_ns / 1000000000ull);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(real_ns % 1000000000ull / 1000000));
}

void st_cmp_html_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t k;

		switch (c) {
		case '<': fputs("&lt;", f); i++; continue;
		case '>': fputs("&gt;", f); i++; continue;
		case '&': fputs("&amp;", f); i++; continue;
		case '"': fputs("&quot;", f); i++; continue;
		case '\'': fputs("&#39;", f); i++; continue;
		default: break;
		}
		if (c < 0x20 || c == 0x7f) {
			fputc(' ', f);
			i++;
		} else if ((k = st_cmp_utf8_seq(p + i, n - i))) {
			fwrite(p + i, 1, k, f);
			i += k;
		} else {
			fputs("\xef\xbf\xbd", f);
			i++;
		}
	}
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

/* A latency verdict's word, the same in every output: too few samples is not "same". */
static const char *lat_word(const struct st_cmp_lat_test *t)
{
	if (!t->enough)
		return "n/a";
	return t->verdict == ST_CMP_LAT_SLOWER ? "slower" :
	       t->verdict == ST_CMP_LAT_FASTER ? "faster" : "same";
}

void st_cmp_verdict_print(const struct st_cmp_verdict *v, const char *report)
{
	char text[256];

	st_cmp_verdict_str(v, text, sizeof(text));
	if (report)
		st_log_out("verdict: %s, %s -> %s", st_cmp_outcome_title(v->result), text, report);
	else
		st_log_out("verdict: %s, %s", st_cmp_outcome_title(v->result), text);
}

/* What the report's sections read, gathered once per report. */
struct report_ctx {
	const struct st_cmp_agg *a;
	const struct st_cmp_run *run;
	struct st_cmp_endpoint **eps; /* worst first (st_cmp_agg_sorted) */
	uint32_t n;
	bool ref;                     /* a reference ran */
};

/* ---- JSON ------------------------------------------------------------------------------------ */

/* "correlated": pairs, "correlated_fields": where the candidate's --correlate map explained a
 * difference (docs/COMPARE.md, "Correlated") */
static void json_corr(FILE *f, const struct st_cmp_endpoint *e)
{
	fprintf(f, "\"correlated\": %llu, \"correlated_fields\": [", (unsigned long long)e->correlated);
	for (uint32_t k = 0; k < e->ncorr; k++) {
		fputs(k ? ", {\"path\": " : "{\"path\": ", f);
		jstr(f, e->corr[k].path);
		fprintf(f, ", \"correlated\": %llu}", (unsigned long long)e->corr[k].n);
	}
	fputc(']', f);
}

/* The percentiles for people, the histogram (sparse: [index, count]) for merges. */
static void json_lat(FILE *f, const struct st_cmp_lat *l)
{
	bool first = true;

	fprintf(f, "{\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"n\": %llu, \"buckets\": [",
		st_cmp_lat_pct(l, 0.5), st_cmp_lat_pct(l, 0.9), st_cmp_lat_pct(l, 0.99),
		(unsigned long long)l->n);
	for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++) {
		if (!l->b[i])
			continue;
		fprintf(f, "%s[%u, %u]", first ? "" : ", ", i, l->b[i]);
		first = false;
	}
	fputs("]}", f);
}

static void json_status(FILE *f, const struct st_cmp_status *s)
{
	fputc('{', f);
	for (uint32_t i = 0; i < s->ncodes; i++)
		fprintf(f, "%s\"%u\": %llu", i ? ", " : "", s->code[i], (unsigned long long)s->n[i]);
	if (s->other)
		fprintf(f, "%s\"other\": %llu", s->ncodes ? ", " : "", (unsigned long long)s->other);
	fputc('}', f);
}

static void json_sample(FILE *f, const struct st_cmp_sample *s, bool ref)
{
	fputs("{\"target\": ", f);
	jstr(f, s->target);
	for (int k = 0; k < ST_CMP_NSIDES; k++) {
		if (k == ST_CMP_REF && !ref)
			continue;
		fprintf(f, ", \"%s\": ", st_cmp_side_name((enum st_cmp_side)k));
		if (k == ST_CMP_REF && s->ref_same)
			jstr(f, s->v[ST_CMP_PROD]);
		else if (s->set[k])
			jstr(f, s->v[k]);
		else
			fputs("null", f);
		fprintf(f, ", \"%s_status\": %u", st_cmp_side_name((enum st_cmp_side)k), s->status[k]);
	}
	if (ref)
		fprintf(f, ", \"reference_same\": %s", s->ref_same ? "true" : "false");
	fputc('}', f);
}

/* ---- Prometheus ------------------------------------------------------------------------------ */

/* A side's latency histogram in the exported buckets: counts per bound, sum (seconds). */
static void prom_lat(const struct st_cmp_lat *l, uint64_t *counts, double *sum)
{
	unsigned k = 0;

	memset(counts, 0, (st_prom_latency_nbounds + 1) * sizeof(*counts));
	*sum = 0;
	for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++) {
		double lo, hi;

		if (!l->b[i])
			continue;
		st_cmp_lat_bucket(i, &lo, &hi);
		k = 0;
		while (k < st_prom_latency_nbounds && hi / 1e6 > st_prom_latency_bounds[k])
			k++;
		counts[k] += l->b[i];
		*sum += (double)l->b[i] * (lo + hi) / 2 / 1e6;
	}
}

struct worst {
	const struct st_cmp_endpoint *e;
	const struct st_cmp_field *f;
	double share;
};

void st_cmp_agg_prom(const struct st_cmp_agg *a, struct st_prom *p,
		     const struct st_prom_labels *base)
{
	int pairs = st_prom__family(p, "shadowtap_compare_pairs_total", ST_PROM_COUNTER,
				    "tap compare's pairs by endpoint and result: identical, differing, "
				    "noise_only, not_compared");
	int answers = st_prom__family(p, "shadowtap_compare_answers_total", ST_PROM_COUNTER,
				      "answers of compared pairs by endpoint, side and status code");
	int regs = st_prom__family(p, "shadowtap_compare_regressions", ST_PROM_GAUGE,
				   "regression fields of the endpoint now (the report's verdict)");
	int latv = st_prom__family(p, "shadowtap_compare_latency_verdict", ST_PROM_GAUGE,
				   "the endpoint's latency verdict now: 1 slower, -1 faster, 0 the same "
				   "(candidate against the reference, or production)");
	int fields = st_prom__family(p, "shadowtap_compare_field_regression_ratio", ST_PROM_GAUGE,
				     "share of the endpoint's compared pairs whose candidate differs at "
				     "this regression field (the worst fields only)");
	int lat = st_prom__family(p, "shadowtap_compare_latency_seconds", ST_PROM_HISTOGRAM,
				  "latency per side (production: at the tap; shadows: the agent's)");
	struct worst w[ST_CMP_PROM_FIELDS];
	unsigned nw = 0;

	for (uint32_t i = 0; i <= a->n; i++) {
		const struct st_cmp_endpoint *e = i < a->n ? a->ep[i] : &a->other;
		struct st_prom_labels l = *base, ls;
		struct st_cmp_lat_test t;
		uint64_t identical;
		static const char *const results[] = { "identical", "differing", "noise_only",
						       "not_compared" };

		if (i == a->n && !e->compared && !e->not_compared)
			continue;
		st_prom_labels_add(&l, "endpoint", e->name);
		identical = e->compared - e->differing - e->noise_only;
		for (int r = 0; r < 4; r++) {
			ls = l;
			st_prom_labels_add(&ls, "result", results[r]);
			st_prom__sample_u64(p, pairs, &ls, r == 0 ? identical : r == 1 ? e->differing :
							   r == 2 ? e->noise_only : e->not_compared);
		}
		st_prom__sample_u64(p, regs, &l, st_cmp_endpoint_regressions(a, e));
		st_cmp_endpoint_latency(a, e, &t);
		st_prom__sample(p, latv, &l, t.verdict == ST_CMP_LAT_SLOWER ? 1 :
					      t.verdict == ST_CMP_LAT_FASTER ? -1 : 0);
		for (int s = 0; s < ST_CMP_NSIDES; s++) {
			const struct st_cmp_status *st = &e->status[s];
			uint64_t counts[ST_PROM_LATENCY_NBOUNDS + 1];
			double sum;
			char code[8];

			if (s == ST_CMP_REF && !a->cfg.reference)
				continue;
			ls = l;
			st_prom_labels_add(&ls, "side", st_cmp_side_name((enum st_cmp_side)s));
			prom_lat(&e->lat[s], counts, &sum);
			st_prom__histogram(p, lat, &ls, st_prom_latency_bounds, st_prom_latency_nbounds,
					   counts, sum);
			for (uint32_t k = 0; k <= st->ncodes; k++) {
				struct st_prom_labels lc = ls;

				if (k == st->ncodes && !st->other)
					break;
				snprintf(code, sizeof(code), "%u", k < st->ncodes ? st->code[k] : 0);
				st_prom_labels_add(&lc, "code", k < st->ncodes ? code : "other");
				st_prom__sample_u64(p, answers, &lc, k < st->ncodes ? st->n[k] : st->other);
			}
		}
		/* the worst regression fields, kept sorted by share */
		for (uint32_t k = 0; k < e->nfields; k++) {
			struct st_cmp_fverdict v;
			double share;
			unsigned j;

			st_cmp_field_verdict(a, e, &e->fields[k], &v);
			if (!v.regression || !e->compared)
				continue;
			share = (double)e->fields[k].raw / (double)e->compared;
			for (j = nw; j > 0 && w[j - 1].share < share; j--)
				if (j < ST_CMP_PROM_FIELDS)
					w[j] = w[j - 1];
			if (j < ST_CMP_PROM_FIELDS) {
				w[j] = (struct worst){ e, &e->fields[k], share };
				if (nw < ST_CMP_PROM_FIELDS)
					nw++;
			}
		}
	}
	for (unsigned k = 0; k < nw; k++) {
		struct st_prom_labels l = *base;

		st_prom_labels_add(&l, "endpoint", w[k].e->name);
		st_prom_labels_add(&l, "field", w[k].f->path);
		st_prom__sample(p, fields, &l, w[k].share);
	}
}

/* The report's JSON sections (the table at the end of the file says their order): each writes
 * its keys, every one after "{" led by ",\n  " (the head's first is the object's first). */

static void json_key(FILE *f, const char *key)
{
	fprintf(f, ",\n  \"%s\": ", key);
}

/* The end of the run: its last pair's, or now while it runs. */
static uint64_t run_end(const struct st_cmp_run *run)
{
	return run->end_real_ns ? run->end_real_ns : run->now_real_ns;
}

static void json_span(FILE *f, const struct st_cmp_run *run)
{
	uint64_t end = run_end(run);
	char ts[40];

	st_cmp_time_str(ts, sizeof(ts), run->start_real_ns);
	json_key(f, "started");
	fprintf(f, "\"%s\"", ts);
	/* from the times as written (ms), so that a report read back says the same */
	json_key(f, "duration_s");
	fprintf(f, "%.3f", end / 1000000 > run->start_real_ns / 1000000 ?
			   (double)(end / 1000000 - run->start_real_ns / 1000000) / 1e3 : 0.0);
	st_cmp_time_str(ts, sizeof(ts), end);
	json_key(f, "ended");
	fprintf(f, "\"%s\"", ts);
}

/* Where the pairs came from: the parts merged, their hosts, the endpoint patterns. */
static void json_origin(FILE *f, const struct report_ctx *c)
{
	json_key(f, "sources");
	fprintf(f, "%llu", (unsigned long long)(c->run->sources ? c->run->sources : 1));
	json_key(f, "hosts");
	fputc('[', f);
	for (unsigned i = 0; i < c->run->nhosts; i++) {
		fputs(i ? ", " : "", f);
		jstr(f, c->run->hosts[i]);
	}
	fputc(']', f);
	json_key(f, "endpoint_patterns");
	fputc('[', f);
	for (unsigned i = 0; i < c->a->cfg.npatterns; i++) {
		fputs(i ? ", " : "", f);
		jstr(f, c->a->cfg.patterns[i].text);
	}
	fputc(']', f);
}

static void json_head(FILE *f, const struct report_ctx *c)
{
	const struct st_cmp_run *run = c->run;
	char ts[40];

	st_cmp_time_str(ts, sizeof(ts), run->now_real_ns);
	fprintf(f, "\n  \"format\": \"%s\",\n  \"format_version\": %d,\n  \"generated\": \"%s\","
		   "\n  \"final\": %s", ST_CMP_REPORT_FORMAT, ST_CMP_REPORT_VERSION, ts,
		run->final ? "true" : "false");
	json_key(f, "command");
	jstr(f, run->command ? run->command : "");
	json_key(f, "candidate");
	jstr(f, run->candidate ? run->candidate : "");
	json_key(f, "reference");
	if (c->ref && run->reference)
		jstr(f, run->reference);
	else
		fputs("null", f);
	json_span(f, run);
	json_origin(f, c);
}

static void json_thresholds(FILE *f, const struct report_ctx *c)
{
	const struct st_cmp_agg_config *cfg = &c->a->cfg;

	json_key(f, "thresholds");
	fprintf(f, "{\"relative_pct\": %g, \"absolute_pct\": %g, \"latency_alpha\": %g, "
		   "\"latency_shift\": %g, \"latency_min_ms\": %g, \"latency_min_samples\": %d, "
		   "\"compare_max_body\": %llu, \"compare_timeout_s\": %g, \"max_endpoints\": %u}",
		cfg->rel_pct, cfg->abs_pct, ST_CMP_LAT_ALPHA, ST_CMP_LAT_SHIFT, cfg->lat_min_ms,
		ST_CMP_LAT_MIN_N, (unsigned long long)c->run->max_body, c->run->timeout_s,
		cfg->max_endpoints);
}

static void json_verdict(FILE *f, const struct report_ctx *c)
{
	struct st_cmp_verdict v;

	st_cmp_agg_verdict(c->a, &v);
	json_key(f, "verdict");
	fprintf(f, "{\"result\": \"%s\", \"regressions\": %u, \"regression_endpoints\": %u, "
		   "\"slower_endpoints\": %u, \"latency_judged_endpoints\": %u, \"endpoints\": %u, "
		   "\"pairs_compared\": %llu, \"min_pairs\": %d}",
		st_cmp_outcome_name(v.result), v.regressions, v.regression_endpoints, v.slower,
		v.judged, v.endpoints, (unsigned long long)v.compared, ST_CMP_VERDICT_MIN_PAIRS);
}

/* The counters, by their summary line names. */
static void json_summary(FILE *f, const struct report_ctx *c)
{
	json_key(f, "summary");
	fputc('{', f);
	for (size_t i = 0; c->run->counters && i < c->run->counters->n; i++) {
		const struct st_statline_ent *e = &c->run->counters->e[i];

		fputs(i ? ", " : "", f);
		jstr(f, e->name);
		fprintf(f, ": %llu", (unsigned long long)e->v);
	}
	fputc('}', f);
}

static void json_note(FILE *f, const struct st_cmp_field *fl)
{
	if (!fl->note[0])
		return;
	fputs(", \"note\": ", f);
	jstr(f, fl->note);
}

/* A field where the candidate differs: its verdict and its samples. */
static void json_field(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e,
		       const struct st_cmp_field *fl)
{
	struct st_cmp_fverdict v;

	st_cmp_field_verdict(c->a, e, fl, &v);
	fputs("{\"path\": ", f);
	jstr(f, fl->path);
	fprintf(f, ", \"kind\": \"%s\", \"raw\": %llu, \"noise\": %llu, \"verdict\": \"%s\", "
		   "\"basis\": \"%s\"",
		st_cmp_kind_name((enum st_cmp_kind)fl->kind), (unsigned long long)fl->raw,
		(unsigned long long)fl->noise, v.regression ? "regression" : "noise",
		c->ref ? "reference" : "heuristic");
	if (c->ref)
		fprintf(f, ", \"relative_pct\": %.2f, \"absolute_pct\": %.4f", v.rel, v.abs);
	else
		fprintf(f, ", \"likely_noise\": %s", v.likely_noise ? "true" : "false");
	fprintf(f, ", \"volatile\": %llu", (unsigned long long)fl->vol);
	json_note(f, fl);
	fputs(", \"samples\": [", f);
	for (uint32_t s = 0; s < fl->nsamples; s++) {
		fputs(s ? ", " : "", f);
		json_sample(f, &fl->s[s], c->ref);
	}
	fputs("]}", f);
}

static void json_fields(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e)
{
	bool first = true;

	for (uint32_t k = 0; k < e->nfields; k++) {
		if (!e->fields[k].raw)
			continue; /* differs only between production and the reference */
		fputs(first ? "\n       " : ",\n       ", f);
		first = false;
		json_field(f, c, e, &e->fields[k]);
	}
}

/* Where only the reference differs: the merge needs their noise counts. */
static void json_noise_fields(FILE *f, const struct st_cmp_endpoint *e)
{
	bool first = true;

	for (uint32_t k = 0; k < e->nfields; k++) {
		const struct st_cmp_field *fl = &e->fields[k];

		if (fl->raw)
			continue;
		fputs(first ? "{\"path\": " : ", {\"path\": ", f);
		first = false;
		jstr(f, fl->path);
		fprintf(f, ", \"kind\": \"%s\", \"noise\": %llu, \"volatile\": %llu",
			st_cmp_kind_name((enum st_cmp_kind)fl->kind), (unsigned long long)fl->noise,
			(unsigned long long)fl->vol);
		json_note(f, fl);
		fputc('}', f);
	}
}

static void json_side_lat(FILE *f, const struct st_cmp_endpoint *e, enum st_cmp_side s)
{
	json_lat(f, &e->lat[s]);
}

static void json_side_status(FILE *f, const struct st_cmp_endpoint *e, enum st_cmp_side s)
{
	json_status(f, &e->status[s]);
}

/* {"production": X, "reference": X (null without one), "candidate": X: one side's X each; the
 * caller closes the object (the latency adds its verdict first). */
static void json_by_side(FILE *f, const struct st_cmp_endpoint *e, bool ref,
			 void (*side)(FILE *f, const struct st_cmp_endpoint *e, enum st_cmp_side s))
{
	static const enum st_cmp_side order[] = { ST_CMP_PROD, ST_CMP_REF, ST_CMP_CAND };

	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		fprintf(f, "%s\"%s\": ", i ? ", " : "{", st_cmp_side_name(order[i]));
		if (order[i] == ST_CMP_REF && !ref)
			fputs("null", f);
		else
			side(f, e, order[i]);
	}
}

static void json_ep_latency(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e)
{
	struct st_cmp_lat_test lt;

	st_cmp_endpoint_latency(c->a, e, &lt);
	fputs(",\n     \"latency\": ", f);
	json_by_side(f, e, c->ref, json_side_lat);
	fprintf(f, ", \"verdict\": \"%s\", \"basis\": \"%s\", \"test\": \"mann-whitney-u\", "
		   "\"p_value\": %.3g, \"shift_ms\": %.3f, \"prob_candidate_slower\": %.3f, "
		   "\"enough_samples\": %s}",
		lat_word(&lt), c->ref ? "reference" : "production", lt.p, lt.shift, lt.a,
		lt.enough ? "true" : "false");
}

static void json_endpoint(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e)
{
	fputs("{\"endpoint\": ", f);
	jstr(f, e->name);
	fprintf(f, ", \"compared\": %llu, \"differing\": %llu, \"noise_only\": %llu, "
		   "\"not_compared\": %llu, \"regressions\": %u, \"more_paths\": %llu,\n"
		   "     \"fields\": [",
		(unsigned long long)e->compared, (unsigned long long)e->differing,
		(unsigned long long)e->noise_only, (unsigned long long)e->not_compared,
		st_cmp_endpoint_regressions(c->a, e), (unsigned long long)e->more_paths);
	json_fields(f, c, e);
	fputs("],\n     \"noise_fields\": [", f);
	json_noise_fields(f, e);
	fputs("],\n     ", f);
	json_corr(f, e);
	json_ep_latency(f, c, e);
	fputs(",\n     \"status\": ", f);
	json_by_side(f, e, c->ref, json_side_status);
	fputs("}}", f);
}

static void json_endpoints(FILE *f, const struct report_ctx *c)
{
	json_key(f, "endpoints");
	fputc('[', f);
	for (uint32_t i = 0; i < c->n; i++) {
		fputs(i ? ",\n    " : "\n    ", f);
		json_endpoint(f, c, c->eps[i]);
	}
	fputs("\n  ]", f);
}

/* ---- HTML --------------------------------------------------------------------------------- */

const char st_cmp_report_css[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
	"color:#1d2330;background:#f6f7f9}"
	"header{background:#1d2330;color:#fff;padding:14px 28px}"
	"header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c9cfdb}"
	"main{padding:10px 28px 40px;max-width:1400px}"
	"h2{font-size:17px;margin:26px 0 8px}h3{font-size:15px;margin:0 0 8px}"
	"table{border-collapse:collapse;background:#fff;margin:6px 0 12px;width:100%}"
	"th,td{border:1px solid #dde1e8;padding:5px 8px;text-align:left;vertical-align:top}"
	"th{background:#eef0f4;font-weight:600}td.n{text-align:right;font-variant-numeric:"
	"tabular-nums}"
	"code,.v{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;"
	"word-break:break-all}"
	".badge{display:inline-block;border-radius:9px;padding:0 8px;font-size:12px;font-weight:600}"
	".regression .badge.v-regression,.badge.v-regression{background:#d93b3b;color:#fff}"
	".badge.v-noise{background:#c9cfdb;color:#1d2330}.badge.v-slower{background:#e98b1a;"
	"color:#fff}.badge.v-faster{background:#2f9e58;color:#fff}.badge.v-same{background:#e4e7ec;"
	"color:#1d2330}.badge.v-ok{background:#2f9e58;color:#fff}.badge.v-na{background:#fff;"
	"color:#66707f;border:1px solid #c9cfdb}"
	".banner{display:inline-block;font-size:20px;font-weight:700;letter-spacing:.04em;"
	"border-radius:6px;padding:4px 14px;margin:4px 0 6px}.banner.pass{background:#2f9e58;"
	"color:#fff}.banner.fail{background:#d93b3b;color:#fff}.banner.not_enough_data{"
	"background:#e98b1a;color:#fff}.vals code{background:#f1f3f6;padding:0 3px}"
	"tr.regression td:first-child{border-left:4px solid #d93b3b}"
	"tr.slower td:first-child{border-left:4px solid #e98b1a}"
	".box{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:12px 16px;"
	"margin:10px 0}"
	".verdict.bad{border-left:6px solid #d93b3b}.verdict.good{border-left:6px solid #2f9e58}"
	".verdict.warn{border-left:6px solid #e98b1a}"
	".muted{color:#66707f}.ep{margin-top:22px}.side-p{color:#3366cc}.side-r{color:#7a4fb8}"
	".side-c{color:#d9480f}.grid{display:flex;gap:18px;flex-wrap:wrap}.grid>div{flex:1 1 420px}"
	"svg text{font:11px system-ui,sans-serif;fill:#444}"
	"#endpoints td:first-child code{word-break:normal;white-space:nowrap}";

void st_cmp_html_page(FILE *f, const char *title)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width\"><title>", f);
	st_cmp_html_str(f, title);
	fputs("</title><style>", f);
	fputs(st_cmp_report_css, f);
	fputs("</style></head><body>", f);
}

void st_cmp_html_badge(FILE *f, const char *cls, const char *text)
{
	fprintf(f, "<span class=\"badge v-%s\">", cls);
	st_cmp_html_str(f, text);
	fputs("</span>", f);
}

static void h_status(FILE *f, const struct st_cmp_status *s)
{
	for (uint32_t i = 0; i < s->ncodes; i++)
		fprintf(f, "%s%u&times;%llu", i ? ", " : "", s->code[i], (unsigned long long)s->n[i]);
	if (s->other)
		fprintf(f, "%sother&times;%llu", s->ncodes ? ", " : "", (unsigned long long)s->other);
	if (!s->ncodes && !s->other)
		fputs("-", f);
}

/* The latency verdict's badge: "n/a (n < 10)" when a side has too few samples. */
static void h_lat_badge(FILE *f, const struct st_cmp_lat_test *t)
{
	char na[32];

	if (t->enough) {
		st_cmp_html_badge(f, lat_word(t), lat_word(t));
		return;
	}
	snprintf(na, sizeof(na), "n/a (n < %d)", ST_CMP_LAT_MIN_N);
	st_cmp_html_badge(f, "na", na);
}

static const char *const side_color[ST_CMP_NSIDES] = { "#3366cc", "#d9480f", "#7a4fb8" };

/* Latency distributions as cumulative curves on a log scale (inline SVG). */
static void h_svg(FILE *f, const struct st_cmp_endpoint *e, bool ref)
{
	const int W = 540, H = 190, L = 44, R = 26, T = 10, B = 34;
	double lo = 1e18, hi = 0, llo, lhi;
	int s;

	for (s = 0; s < ST_CMP_NSIDES; s++) {
		if ((s == ST_CMP_REF && !ref) || !e->lat[s].n)
			continue;
		for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++) {
			double a, b;

			if (!e->lat[s].b[i])
				continue;
			st_cmp_lat_bucket(i, &a, &b);
			if (a / 1000 < lo)
				lo = a / 1000;
			if (b / 1000 > hi)
				hi = b / 1000;
		}
	}
	if (hi <= 0) {
		fputs("<p class=\"muted\">no latency measured</p>", f);
		return;
	}
	if (lo < 0.001)
		lo = 0.001;
	llo = floor(log10(lo));
	lhi = ceil(log10(hi));
	if (lhi <= llo)
		lhi = llo + 1;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"latency\" width=\"%d\" "
		   "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"latency "
		   "distributions\">", W, H, W, H);
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fff\" "
		   "stroke=\"#dde1e8\"/>", L, T, W - L - R, H - T - B);
	for (double d = llo; d <= lhi + 1e-9; d += 1) {
		double x = L + (d - llo) / (lhi - llo) * (W - L - R);
		double ms = pow(10, d);

		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eef0f4\"/>", x, T,
			x, H - B);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g ms</text>", x, H - B + 14,
			ms);
	}
	for (int q = 0; q <= 4; q++) {
		double y = T + (1 - q / 4.0) * (H - T - B);

		fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>", L - 4, y + 4,
			q * 25);
	}
	for (s = 0; s < ST_CMP_NSIDES; s++) {
		uint64_t cum = 0, n = 0;

		if ((s == ST_CMP_REF && !ref) || !e->lat[s].n)
			continue;
		for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++)
			n += e->lat[s].b[i];
		fprintf(f, "<polyline class=\"cdf-%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
			   "points=\"", st_cmp_side_name((enum st_cmp_side)s), side_color[s]);
		for (unsigned i = 0; i < ST_CMP_LAT_BUCKETS; i++) {
			double a, b, x0, x1, y0, y1;

			if (!e->lat[s].b[i])
				continue;
			st_cmp_lat_bucket(i, &a, &b);
			x0 = L + (log10(fmax(a / 1000, lo)) - llo) / (lhi - llo) * (W - L - R);
			x1 = L + (log10(b / 1000) - llo) / (lhi - llo) * (W - L - R);
			y0 = T + (1 - (double)cum / n) * (H - T - B);
			cum += e->lat[s].b[i];
			y1 = T + (1 - (double)cum / n) * (H - T - B);
			fprintf(f, "%.1f,%.1f %.1f,%.1f ", x0, y0, x1, y1);
		}
		fputs("\"/>", f);
	}
	{
		int x = L + 8;

		for (s = 0; s < ST_CMP_NSIDES; s++) {
			if (s == ST_CMP_REF && !ref)
				continue;
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/>"
				   "<text x=\"%d\" y=\"%d\">%s</text>",
				x, H - 12, side_color[s], x + 16, H - 8,
				st_cmp_side_name((enum st_cmp_side)s));
			x += 110;
		}
	}
	fputs("</svg>", f);
}

static void h_value(FILE *f, const struct st_cmp_sample *s, int k)
{
	if (k == ST_CMP_REF && s->ref_same) {
		fputs("<span class=\"muted\">= production</span>", f);
		return;
	}
	if (!s->set[k]) {
		fputs("<span class=\"muted\">(absent)</span>", f);
		return;
	}
	fputs("<span class=\"v\">", f);
	st_cmp_html_str(f, s->v[k]);
	fputs("</span>", f);
}

/* A sample's value on side k, cut to fit a line (whole UTF-8 characters): the verdict's
 * bullets show what changed. */
static void h_short(FILE *f, const struct st_cmp_sample *s, int k)
{
	const int max = 60;
	char cut[ST_CMP_VAL_MAX + 8];
	const char *v;
	size_t o = 0, len;

	if (k == ST_CMP_REF && s->ref_same)
		k = ST_CMP_PROD;
	if (!s->set[k]) {
		fputs("<span class=\"muted\">(absent)</span>", f);
		return;
	}
	v = s->v[k];
	len = strlen(v);
	for (int chars = 0; o < len && chars < max; chars++) {
		size_t q = st_cmp_utf8_seq((const unsigned char *)v + o, len - o);

		o += q ? q : 1;
	}
	if (o >= sizeof(cut))
		o = sizeof(cut) - 1;
	memcpy(cut, v, o);
	cut[o] = 0;
	fputs("<code>", f);
	st_cmp_html_str(f, cut);
	if (o < len)
		fputs("&hellip;", f);
	fputs("</code>", f);
}

/* Where the candidate's --correlate map explained a difference: neither regression nor noise. */
static void h_corr(FILE *f, const struct st_cmp_endpoint *e)
{
	if (!e->correlated)
		return;
	fprintf(f, "<table class=\"fields correlated\"><thead><tr><th>field</th><th>correlated: the "
		   "candidate's own session or id for production's (--correlate)</th></tr></thead>"
		   "<tbody>");
	for (uint32_t k = 0; k < e->ncorr; k++) {
		fputs("<tr class=\"field correlated\" data-path=\"", f);
		st_cmp_html_str(f, e->corr[k].path);
		fputs("\"><td><code>", f);
		st_cmp_html_str(f, e->corr[k].path);
		fprintf(f, "</code></td><td class=\"n\">%llu (%.1f%%)</td></tr>",
			(unsigned long long)e->corr[k].n, pct(e->corr[k].n, e->compared));
	}
	fprintf(f, "</tbody></table><p class=\"muted\">%llu of %llu pairs had differences the map "
		   "explained.</p>", (unsigned long long)e->correlated, (unsigned long long)e->compared);
}

/* A field's row in the endpoint's table of fields where the candidate differs. */
static void h_field_row(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e,
			const struct st_cmp_field *fl)
{
	struct st_cmp_fverdict v;
	const char *vw;

	st_cmp_field_verdict(c->a, e, fl, &v);
	vw = v.regression ? "regression" : "noise";
	fprintf(f, "<tr class=\"field %s\" data-path=\"", vw);
	st_cmp_html_str(f, fl->path);
	fputs("\"><td><code>", f);
	st_cmp_html_str(f, fl->path);
	fputs("</code>", f);
	if (fl->note[0]) {
		fputs(" <span class=\"muted\">", f);
		st_cmp_html_str(f, fl->note);
		fputs("</span>", f);
	}
	fprintf(f, "</td><td>%s</td><td class=\"n\">%llu (%.1f%%)</td>",
		st_cmp_kind_name((enum st_cmp_kind)fl->kind), (unsigned long long)fl->raw,
		pct(fl->raw, e->compared));
	if (c->ref)
		fprintf(f, "<td class=\"n\">%llu (%.1f%%)</td>", (unsigned long long)fl->noise,
			pct(fl->noise, e->compared));
	else
		fprintf(f, "<td class=\"n\">%llu of %llu</td>", (unsigned long long)fl->vol,
			(unsigned long long)fl->raw);
	fputs("<td>", f);
	/* one word per verdict, reference or not: the basis is said beside it */
	st_cmp_html_badge(f, vw, vw);
	if (c->ref)
		fprintf(f, " <span class=\"muted\">rel %.0f%%, abs %.3f%%</span>", v.rel, v.abs);
	else
		fputs(" <span class=\"muted\">no reference: by the values' shape</span>", f);
	fputs("</td></tr>", f);
}

static void h_fields(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e)
{
	fprintf(f, "<table class=\"fields\"><thead><tr><th>field</th><th>kind</th>"
		   "<th>candidate differs (raw)</th><th>%s</th><th>verdict</th></tr></thead>"
		   "<tbody>", c->ref ? "reference differs (noise)" : "looks volatile");
	for (uint32_t k = 0; k < e->nfields; k++)
		if (e->fields[k].raw)
			h_field_row(f, c, e, &e->fields[k]);
	fputs("</tbody></table>", f);
	if (e->more_paths)
		fprintf(f, "<p class=\"muted\">%llu more differences at paths beyond the %d kept "
			   "per pair.</p>", (unsigned long long)e->more_paths, ST_CMP_DIFFS_MAX);
}

/* A field's sample pairs side by side, open when it is a regression. */
static void h_samples(FILE *f, const struct report_ctx *c, const struct st_cmp_field *fl,
		      bool regression)
{
	fputs("<details class=\"samples\"", f);
	if (regression)
		fputs(" open", f);
	fputs("><summary>samples of <code>", f);
	st_cmp_html_str(f, fl->path);
	fprintf(f, "</code> (%u)</summary><table><thead><tr><th>request</th>"
		   "<th class=\"side-p\">production</th>", fl->nsamples);
	if (c->ref)
		fputs("<th class=\"side-r\">reference</th>", f);
	fputs("<th class=\"side-c\">candidate</th></tr></thead><tbody>", f);
	for (uint32_t s = 0; s < fl->nsamples; s++) {
		const struct st_cmp_sample *sm = &fl->s[s];

		fputs("<tr><td><code>", f);
		st_cmp_html_str(f, sm->target);
		fputs("</code></td><td>", f);
		h_value(f, sm, ST_CMP_PROD);
		if (c->ref) {
			fputs("</td><td>", f);
			h_value(f, sm, ST_CMP_REF);
		}
		fputs("</td><td>", f);
		h_value(f, sm, ST_CMP_CAND);
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table></details>", f);
}

/* The samples of every field where the candidate differs, regressions first. */
static void h_ep_samples(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e)
{
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t k = 0; k < e->nfields; k++) {
			const struct st_cmp_field *fl = &e->fields[k];
			struct st_cmp_fverdict v;

			if (!fl->raw || !fl->nsamples)
				continue;
			st_cmp_field_verdict(c->a, e, fl, &v);
			if (v.regression == !pass)
				h_samples(f, c, fl, v.regression);
		}
	}
}

/* The latency test's numbers, or why there is no verdict. */
static void h_lat_verdict(FILE *f, const struct st_cmp_lat_test *lt, bool ref)
{
	fputs("<p class=\"lat-verdict\">", f);
	h_lat_badge(f, lt);
	if (!lt->enough)
		fprintf(f, " <span class=\"muted\">too few samples for a verdict (at least %d on each "
			   "side)</span>", ST_CMP_LAT_MIN_N);
	else
		fprintf(f, " candidate against %s: p50 %.2f vs %.2f ms, p90 %.2f vs %.2f ms; "
			   "shift %+.2f ms (Hodges&ndash;Lehmann); Mann&ndash;Whitney U p = %.2g, "
			   "P(candidate slower) = %.2f",
			ref ? "reference" : "production", lt->p50[0], lt->p50[1], lt->p90[0],
			lt->p90[1], lt->shift, lt->p, lt->a);
	fputs("</p>", f);
}

/* The latency curves beside each side's percentiles and status codes, then the verdict. */
static void h_ep_latency(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e)
{
	static const char *const cls[] = { "side-p", "side-c", "side-r" };
	struct st_cmp_lat_test lt;

	st_cmp_endpoint_latency(c->a, e, &lt);
	fputs("<div class=\"grid\"><div>", f);
	h_svg(f, e, c->ref);
	fputs("</div><div><table class=\"latency\"><thead><tr><th>latency (ms)</th><th>p50</th>"
	      "<th>p90</th><th>p99</th><th>n</th><th>status codes</th></tr></thead><tbody>", f);
	for (int s = 0; s < ST_CMP_NSIDES; s++) {
		if (s == ST_CMP_REF && !c->ref)
			continue;
		fprintf(f, "<tr><td class=\"%s\">%s</td><td class=\"n\">%.2f</td><td class=\"n\">%.2f</td>"
			   "<td class=\"n\">%.2f</td><td class=\"n\">%llu</td><td>",
			cls[s], st_cmp_side_name((enum st_cmp_side)s), st_cmp_lat_pct(&e->lat[s], 0.5),
			st_cmp_lat_pct(&e->lat[s], 0.9), st_cmp_lat_pct(&e->lat[s], 0.99),
			(unsigned long long)e->lat[s].n);
		h_status(f, &e->status[s]);
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table>", f);
	h_lat_verdict(f, &lt, c->ref);
	fputs("</div></div>", f);
}

/* One endpoint's details: its fields and their samples, what --correlate explained, latency
 * and status. */
static void h_endpoint(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e,
		       uint32_t idx)
{
	uint32_t shown = 0;

	fprintf(f, "<section class=\"ep box\" id=\"ep-%u\" data-endpoint=\"", idx);
	st_cmp_html_str(f, e->name);
	fputs("\"><h3><code>", f);
	st_cmp_html_str(f, e->name);
	fprintf(f, "</code></h3><p class=\"muted\">%llu compared, %llu differing (%.1f%%), %llu noise "
		   "only (%.1f%%), %llu not compared</p>",
		(unsigned long long)e->compared, (unsigned long long)e->differing,
		pct(e->differing, e->compared), (unsigned long long)e->noise_only,
		pct(e->noise_only, e->compared), (unsigned long long)e->not_compared);
	for (uint32_t k = 0; k < e->nfields; k++)
		shown += e->fields[k].raw > 0;
	if (shown) {
		h_fields(f, c, e);
		h_ep_samples(f, c, e);
	} else if (e->compared) {
		fprintf(f, "<p>Every compared answer matched production's (after the ignore rules%s).</p>",
			e->correlated ? " and with the candidate's own sessions and ids for production's" : "");
	}
	h_corr(f, e);
	h_ep_latency(f, c, e);
	fputs("</section>\n", f);
}

/* The report's HTML sections (the table at the end of the file says their order). */

static void h_hosts(FILE *f, const struct st_cmp_run *run)
{
	for (unsigned i = 0; i < run->nhosts; i++) {
		fputs(i ? ", " : " &middot; captured on <code>", f);
		st_cmp_html_str(f, run->hosts[i]);
		if (i + 1 == run->nhosts)
			fputs("</code>", f);
	}
}

/* The header: what ran against what, when, where; <main>, which the page's end closes, holds
 * the sections after it. */
static void html_head(FILE *f, const struct report_ctx *c)
{
	const struct st_cmp_run *run = c->run;
	char ts[40], t0[40];

	st_cmp_time_str(ts, sizeof(ts), run_end(run));
	st_cmp_time_str(t0, sizeof(t0), run->start_real_ns);
	fputs("<header><h1>shadowtap compare</h1><p>candidate <code>", f);
	st_cmp_html_str(f, run->candidate ? run->candidate : "?");
	fputs("</code>", f);
	if (c->ref && run->reference) {
		fputs(" against production, reference <code>", f);
		st_cmp_html_str(f, run->reference);
		fputs("</code>", f);
	} else {
		fputs(" against production (no reference)", f);
	}
	fputs(" &middot; ", f);
	st_cmp_html_str(f, run->command ? run->command : ""); /* a merged part's: untrusted like traffic */
	fprintf(f, " &middot; %s to %s%s", t0, ts, run->final ? " (final)" : " (in progress)");
	if (run->sources > 1)
		fprintf(f, " &middot; <span id=\"sources\">merged from %llu reports</span>",
			(unsigned long long)run->sources);
	h_hosts(f, run);
	fputs("</p></header><main>", f);
}

/* The verdict's sentence: regressions, then latency (claimed only where both sides have
 * enough samples), then whether there were pairs enough for a verdict. */
static void h_verdict_text(FILE *f, const struct report_ctx *c, const struct st_cmp_verdict *vd)
{
	bool compared = c->a->compared;

	if (!compared)
		fputs("No pair compared yet.", f);
	else if (vd->regressions)
		fprintf(f, "<strong>%u field%s regressed in %u endpoint%s</strong>", vd->regressions,
			vd->regressions == 1 ? "" : "s", vd->regression_endpoints,
			vd->regression_endpoints == 1 ? "" : "s");
	else
		fputs("<strong>No regression</strong>", f);
	if (compared && !vd->judged)
		fprintf(f, "; latency <strong>n/a</strong>: fewer than %d samples on a side in "
			   "every endpoint.", ST_CMP_LAT_MIN_N);
	else if (compared)
		fprintf(f, "; <strong>%u endpoint%s slower</strong> than the %s%s", vd->slower,
			vd->slower == 1 ? "" : "s", c->ref ? "reference" : "production",
			vd->judged < vd->endpoints ? "" : ".");
	if (compared && vd->judged && vd->judged < vd->endpoints)
		fprintf(f, " (latency judged in %u of %u endpoints; the others have fewer than %d "
			   "samples on a side).", vd->judged, vd->endpoints, ST_CMP_LAT_MIN_N);
	if (vd->result == ST_CMP_NOT_ENOUGH)
		fprintf(f, " %llu pair%s compared: a verdict needs at least %d.",
			(unsigned long long)vd->compared, vd->compared == 1 ? "" : "s",
			ST_CMP_VERDICT_MIN_PAIRS);
}

/* A regression's bullet: the endpoint and field, what changed (from its first sample:
 * production's value, then the candidate's), how often. */
static void h_regression_item(FILE *f, const struct report_ctx *c, uint32_t i,
			      const struct st_cmp_field *fl)
{
	const struct st_cmp_endpoint *e = c->eps[i];

	fprintf(f, "<li class=\"regression\"><a href=\"#ep-%u\"><code>", i);
	st_cmp_html_str(f, e->name);
	fputs("</code></a> <code>", f);
	st_cmp_html_str(f, fl->path);
	fputs("</code>", f);
	if (fl->nsamples) {
		fputs(" <span class=\"vals\">", f);
		h_short(f, &fl->s[0], ST_CMP_PROD);
		fputs(" &rarr; ", f);
		h_short(f, &fl->s[0], ST_CMP_CAND);
		fputs("</span>", f);
	}
	fprintf(f, ": the candidate differs in %.1f%% of the pairs", pct(fl->raw, e->compared));
	if (c->ref)
		fprintf(f, ", the reference in %.1f%%", pct(fl->noise, e->compared));
	fputs("</li>", f);
}

/* The verdict's bullets for endpoint i: its regressions, then its latency if slower. */
static void h_verdict_items(FILE *f, const struct report_ctx *c, uint32_t i)
{
	const struct st_cmp_endpoint *e = c->eps[i];
	struct st_cmp_lat_test lt;

	for (uint32_t k = 0; k < e->nfields; k++) {
		struct st_cmp_fverdict v;

		st_cmp_field_verdict(c->a, e, &e->fields[k], &v);
		if (v.regression)
			h_regression_item(f, c, i, &e->fields[k]);
	}
	st_cmp_endpoint_latency(c->a, e, &lt);
	if (lt.verdict != ST_CMP_LAT_SLOWER)
		return;
	fprintf(f, "<li class=\"slower\"><a href=\"#ep-%u\"><code>", i);
	st_cmp_html_str(f, e->name);
	fprintf(f, "</code></a> is slower by %.2f ms (median shift): <span class=\"vals\">"
		   "p50 %.2f &rarr; %.2f ms, p90 %.2f &rarr; %.2f ms</span> (p = %.2g)</li>",
		lt.shift, lt.p50[1], lt.p50[0], lt.p90[1], lt.p90[0], lt.p);
}

/* The verdict, first: one word a pipeline and a person read alike. */
static void html_verdict(FILE *f, const struct report_ctx *c)
{
	struct st_cmp_verdict vd;

	st_cmp_agg_verdict(c->a, &vd);
	fprintf(f, "<section id=\"verdict\" class=\"box verdict %s\"><div id=\"banner\" "
		   "class=\"banner %s\">%s</div><h2>Verdict</h2><p>",
		vd.result == ST_CMP_FAIL ? "bad" : vd.result == ST_CMP_PASS ? "good" : "warn",
		st_cmp_outcome_name(vd.result), st_cmp_outcome_title(vd.result));
	h_verdict_text(f, c, &vd);
	fputs("</p><ul>", f);
	for (uint32_t i = 0; i < c->n; i++)
		h_verdict_items(f, c, i);
	fputs("</ul></section>", f);
}

/* The indexes of the (at most) three fields the candidate differs in most, by raw. */
static uint32_t top_fields(const struct st_cmp_endpoint *e, uint32_t top[3])
{
	uint32_t ntop = 0;

	for (uint32_t k = 0; k < e->nfields; k++) {
		uint32_t j;

		if (!e->fields[k].raw)
			continue;
		for (j = ntop; j > 0 && e->fields[top[j - 1]].raw < e->fields[k].raw; j--)
			if (j < 3)
				top[j] = top[j - 1];
		if (j < 3) {
			top[j] = k;
			if (ntop < 3)
				ntop++;
		}
	}
	return ntop;
}

static void h_top_fields(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e)
{
	uint32_t top[3] = { 0 }, ntop = top_fields(e, top);

	for (uint32_t k = 0; k < ntop; k++) {
		const struct st_cmp_field *fl = &e->fields[top[k]];
		struct st_cmp_fverdict v;

		st_cmp_field_verdict(c->a, e, fl, &v);
		fprintf(f, "%s<code class=\"%s\">", k ? "<br>" : "", v.regression ? "regression" :
										      "noise");
		st_cmp_html_str(f, fl->path);
		fprintf(f, "</code> <span class=\"muted\">%.0f%%%s</span>", pct(fl->raw, e->compared),
			v.regression ? "" : ", noise");
	}
	if (!ntop)
		fputs("<span class=\"muted\">-</span>", f);
}

/* Each side's p50, production's first: "1.00 / 1.20 / 1.10" (the reference's in the middle). */
static void h_p50s(FILE *f, const struct report_ctx *c, const struct st_cmp_endpoint *e)
{
	static const enum st_cmp_side order[] = { ST_CMP_PROD, ST_CMP_REF, ST_CMP_CAND };
	bool first = true;

	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i] == ST_CMP_REF && !c->ref)
			continue;
		fprintf(f, "%s%.2f", first ? "" : " / ", st_cmp_lat_pct(&e->lat[order[i]], 0.5));
		first = false;
	}
}

/* Endpoint i's row of the endpoint table. */
static void h_endpoint_row(FILE *f, const struct report_ctx *c, uint32_t i)
{
	const struct st_cmp_endpoint *e = c->eps[i];
	uint32_t r = st_cmp_endpoint_regressions(c->a, e);
	struct st_cmp_lat_test lt;

	st_cmp_endpoint_latency(c->a, e, &lt);
	fprintf(f, "<tr class=\"endpoint%s%s\" data-endpoint=\"", r ? " regression" : "",
		lt.verdict == ST_CMP_LAT_SLOWER ? " slower" : "");
	st_cmp_html_str(f, e->name);
	fprintf(f, "\"><td><a href=\"#ep-%u\"><code>", i);
	st_cmp_html_str(f, e->name);
	fprintf(f, "</code></a></td><td class=\"n\">%llu</td><td class=\"n\">%.1f%%</td>"
		   "<td class=\"n\">%.1f%%</td><td class=\"n\">",
		(unsigned long long)e->compared, pct(e->differing, e->compared),
		pct(e->noise_only, e->compared));
	if (r) {
		char t[32];

		snprintf(t, sizeof(t), "%u field%s", r, r == 1 ? "" : "s");
		st_cmp_html_badge(f, "regression", t);
	} else {
		fputs("0", f);
	}
	fputs("</td><td>", f);
	h_top_fields(f, c, e);
	fputs("</td><td class=\"n\">", f);
	h_p50s(f, c, e);
	fputs("</td><td>", f);
	h_lat_badge(f, &lt);
	fputs("</td><td>", f);
	h_status(f, &e->status[ST_CMP_PROD]);
	fputs(" / ", f);
	h_status(f, &e->status[ST_CMP_CAND]);
	fputs("</td></tr>", f);
}

/* The endpoint table, worst first, then each endpoint's details. */
static void html_endpoints(FILE *f, const struct report_ctx *c)
{
	fprintf(f, "<section><h2>Endpoints</h2><table id=\"endpoints\"><thead><tr><th>endpoint</th>"
		   "<th>compared</th><th>differing</th><th>noise only</th><th>regressions</th>"
		   "<th>top differing fields</th><th>p50 ms (%s)</th><th>latency</th>"
		   "<th>status (production / candidate)</th></tr></thead><tbody>",
		c->ref ? "prod / ref / cand" : "prod / cand");
	for (uint32_t i = 0; i < c->n; i++)
		h_endpoint_row(f, c, i);
	if (!c->n)
		fputs("<tr><td colspan=\"9\" class=\"muted\">no endpoint yet</td></tr>", f);
	fputs("</tbody></table></section><section id=\"details\"><h2>Per endpoint</h2>", f);
	for (uint32_t i = 0; i < c->n; i++)
		h_endpoint(f, c, c->eps[i], i);
	fputs("</section>", f);
}

/* The internal counters: below what they explain. */
static void html_counters(FILE *f, const struct report_ctx *c)
{
	fputs("<section id=\"summary\"><h2>Counters</h2><table class=\"counters\"><tbody>", f);
	for (size_t i = 0; c->run->counters && i < c->run->counters->n; i++) {
		const struct st_statline_ent *e = &c->run->counters->e[i];

		if (e->kind == ST_STAT_DETAIL && !e->v)
			continue;
		fputs("<tr><td><code>", f);
		st_cmp_html_str(f, e->name); /* a merged part's names are checked, and escaped all the same */
		fprintf(f, "</code></td><td class=\"n\">%llu</td><td class=\"muted\">",
			(unsigned long long)e->v);
		st_cmp_html_str(f, e->help ? e->help : "");
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table></section>", f);
}

/* How a field's verdict is reached: by the reference, or (without one) by the values' shape. */
static void h_note_verdict(FILE *f, const struct report_ctx *c)
{
	if (c->ref)
		fprintf(f, "<li>A field is a <strong>regression</strong> when the candidate differs "
			   "from production there more often than the reference (production's build) "
			   "does: raw &gt; noise, |raw&minus;noise|/(raw+noise) &gt; %g%% and "
			   "|raw&minus;noise|/compared &gt; %g%% (Diffy's rule). Otherwise it is "
			   "<strong>noise</strong>: timestamps, random ids, host names that differ "
			   "between any two runs.</li>", c->a->cfg.rel_pct, c->a->cfg.abs_pct);
	else
		fprintf(f, "<li>There is no reference, so every difference is shown. A field is "
			   "flagged <strong>likely noise</strong> when it differs in at least %.0f%% of "
			   "the endpoint's pairs and at least %.0f%% of those values look like timestamps "
			   "or random ids. Run a reference (production's build, as a second shadow) to "
			   "cancel noise by measurement.</li>", ST_CMP_NOISE_FREQ * 100,
			ST_CMP_NOISE_SHAPE * 100);
}

/* How to read it: these rules, with the thresholds in force. */
static void html_notes(FILE *f, const struct report_ctx *c)
{
	fprintf(f, "<section id=\"notes\" class=\"box\"><h2>How to read this report</h2><ul>"
		   "<li>Each request the candidate got is paired with production's own answer to it, "
		   "taken from the capture (by position on its client connection)%s. Header fields "
		   "Date, Server, Connection, Keep-Alive, Transfer-Encoding, Age, Expires, "
		   "Last-Modified and ETag are ignored, Content-Length whenever the bodies are "
		   "compared, Set-Cookie by cookie name only; bodies are compared decoded "
		   "(gzip, deflate), JSON structurally, the first %llu bytes of each body held.</li>",
		c->ref ? ", and the reference's answer to the same request" : "",
		(unsigned long long)c->run->max_body);
	h_note_verdict(f, c);
	fprintf(f, "<li>Latency: production's is measured at the tap (last request byte in to first "
		   "answer byte out), the shadows' by the agent (request written to first answer byte "
		   "read). The shadows run in another environment than production (other hosts, other "
		   "load, the agent's own connections), so the latency verdict compares the candidate "
		   "against %s: Mann&ndash;Whitney U on the two samples (two-sided, ties corrected, "
		   "%d+ samples each), <em>slower</em> when p &lt; %g and the Hodges&ndash;Lehmann "
		   "shift (the median of the differences between a candidate and a baseline request) "
		   "is at least %g ms and %.0f%% of the baseline's p50; <em>faster</em> the other way "
		   "round.</li>",
		c->ref ? "the reference, which shares its environment" :
			 "production (no reference: environments differ, read it with care)",
		ST_CMP_LAT_MIN_N, ST_CMP_LAT_ALPHA, c->a->cfg.lat_min_ms, ST_CMP_LAT_SHIFT * 100);
	fprintf(f, "<li>Endpoints are the method and the path with numeric, UUID and long hex "
		   "segments as {id} (query keys kept, values dropped) unless --endpoint patterns say "
		   "otherwise; past %u endpoints the rest are grouped as <code>other</code>. Array "
		   "indexes in field paths are collapsed to [*].</li></ul></section>",
		c->a->cfg.max_endpoints);
}

/* ---- The sections ----------------------------------------------------------------------- */

/*
 * The report's sections in the one order both formats follow: the page's reading order
 * (docs/COMPARE.md, "--report FILE.html"), which the JSON's keys keep ("summary", the
 * counters, after "endpoints"). A NULL hook: that format has no such section (the page says
 * the thresholds in its notes; the notes have nothing a machine reads).
 */
struct section {
	const char *id; /* its JSON key, its HTML element's id (where the format has one) */
	void (*json)(FILE *f, const struct report_ctx *c);
	void (*html)(FILE *f, const struct report_ctx *c);
};

static const struct section sections[] = {
	{ "head", json_head, html_head },
	{ "thresholds", json_thresholds, NULL },
	{ "verdict", json_verdict, html_verdict },
	{ "endpoints", json_endpoints, html_endpoints },
	{ "summary", json_summary, html_counters },
	{ "notes", NULL, html_notes },
};

#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static void ctx_init(struct report_ctx *c, const struct st_cmp_agg *a, const struct st_cmp_run *run)
{
	c->a = a;
	c->run = run;
	c->ref = a->cfg.reference;
	c->n = 0;
	c->eps = st_cmp_agg_sorted(a, &c->n);
}

void st_cmp_report_json(FILE *f, const struct st_cmp_agg *a, const struct st_cmp_run *run)
{
	struct report_ctx c;

	ctx_init(&c, a, run);
	fputc('{', f);
	for (size_t i = 0; i < NSECTIONS; i++)
		if (sections[i].json)
			sections[i].json(f, &c);
	fputs("\n}\n", f);
	free(c.eps);
}

void st_cmp_report_html(FILE *f, const struct st_cmp_agg *a, const struct st_cmp_run *run)
{
	struct report_ctx c;

	ctx_init(&c, a, run);
	st_cmp_html_page(f, "shadowtap compare report");
	for (size_t i = 0; i < NSECTIONS; i++)
		if (sections[i].html)
			sections[i].html(f, &c);
	fputs("</main></body></html>\n", f);
	free(c.eps);
}
