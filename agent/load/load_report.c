/* SPDX-License-Identifier: GPL-2.0-only */
/* A load test's report: JSON and HTML (load_report.h). */
#include "load_report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compare_report.h"
#include "log.h"
#include "loop.h"
#include "output.h"

const char *st_load_report_pace_name(enum st_load_pace p)
{
	return p == ST_LOAD_PACE_CONSTANT ? "constant" : "recorded";
}

/* What the report's sections read. */
struct report_ctx {
	const struct st_load_agg *a;
	uint64_t now_real_ns;
	const char *compare_report; /* the page's link to tap compare's report, or NULL */
};

/* ---- JSON ------------------------------------------------------------------------------ */

/* The percentiles for people, the histogram for merges; an empty one is {"n": 0, ...}. */
static void json_lat(FILE *f, const struct st_hdr *h)
{
	uint64_t n = h->counts ? h->total : 0;
	struct st_hdr_iter it = { 0 };
	bool first = true;

	fprintf(f, "{\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, "
		   "\"min\": %.3f, \"mean\": %.3f, \"n\": %" PRIu64 ", \"over_range\": %" PRIu64
		   ", \"hdr\": [",
		st_load_ms(h, 50), st_load_ms(h, 90), st_load_ms(h, 99), st_load_ms(h, 99.9),
		st_load_ms(h, 100), n ? (double)h->min / 1e3 : 0, n ? st_hdr_mean(h) / 1e3 : 0, n,
		n ? h->over : 0);
	while (n && st_hdr_next(h, &it)) {
		fprintf(f, "%s[%" PRIu32 ", %" PRIu64 "]", first ? "" : ", ", it.index, it.count);
		first = false;
	}
	fputs("]}", f);
}

static void json_time(FILE *f, const char *key, uint64_t real_ns)
{
	char ts[40];

	st_cmp_time_str(ts, sizeof(ts), real_ns);
	fprintf(f, ",\n  \"%s\": \"%s\"", key, ts);
}

/* The report's JSON sections (the table at the end of the file says their order): each writes
 * its keys, every one after "{" led by ",\n  " (the head's first is the object's first). */

static void json_key(FILE *f, const char *key)
{
	fprintf(f, ",\n  \"%s\": ", key);
}

static void json_head(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;

	fprintf(f, "\n  \"format\": \"%s\",\n  \"format_version\": %d", ST_LOAD_REPORT_FORMAT,
		ST_LOAD_REPORT_VERSION);
	json_time(f, "generated", c->now_real_ns);
	fprintf(f, ",\n  \"final\": %s", a->final ? "true" : "false");
	json_key(f, "command");
	st_cmp_json_str(f, a->command, strlen(a->command));
	json_key(f, "target");
	st_cmp_json_str(f, a->target, strlen(a->target));
	json_time(f, "started", a->start_real_ns);
	json_time(f, "ended", a->end_real_ns ? a->end_real_ns : a->start_real_ns);
	fprintf(f, ",\n  \"elapsed_s\": %.3f,\n  \"scheduled_s\": %.3f,\n  \"sources\": %" PRIu64
		   ",\n  \"pace\": \"%s\",\n  \"connections\": %u,\n  \"timeout_s\": %g",
		a->elapsed_s, a->scheduled_s, a->sources, st_load_report_pace_name(a->pace),
		a->connections, a->timeout_s);
}

static void json_summary(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;

	fprintf(f, ",\n  \"target_rps\": %g,\n  \"achieved_rps\": %.3f,\n  \"due\": %" PRIu64
		   ",\n  \"sent\": %" PRIu64 ",\n  \"answered\": %" PRIu64 ",\n  \"late_sends\": %"
		   PRIu64 ",\n  \"starved\": %" PRIu64,
		a->target_rps, st_load_agg_achieved(a), a->due, a->sent, a->answered, a->late_sends,
		a->starved);
}

/* The latencies, after the layout of every histogram in the report. */
static void json_latency(FILE *f, const struct report_ctx *c)
{
	json_key(f, "hdr_layout");
	fprintf(f, "{\"unit\": \"us\", \"lowest\": 1, \"highest\": %llu, "
		   "\"significant_digits\": %d, \"timeline_significant_digits\": %d}",
		(unsigned long long)ST_LOAD_HIGHEST_US, ST_LOAD_SIG, ST_LOAD_TIMELINE_SIG);
	json_key(f, "latency_ms");
	json_lat(f, &c->a->lat);
	json_key(f, "latency_raw_ms");
	json_lat(f, &c->a->lat_raw);
	json_key(f, "lag_ms");
	json_lat(f, &c->a->lag);
}

static void json_timeline(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;

	json_key(f, "timeline");
	fprintf(f, "{\"bucket_s\": %g, \"buckets\": [", a->bucket_s);
	for (unsigned i = 0; i < a->ntl; i++) {
		const struct st_load_bucket *b = &a->tl[i];

		fprintf(f, "%s\n    {\"t\": %g, \"due\": %" PRIu64 ", \"sent\": %" PRIu64
			   ", \"answered\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"latency_ms\": ",
			i ? "," : "", i * a->bucket_s, b->due, b->sent, b->answered, b->errors);
		json_lat(f, &b->lat);
		fputc('}', f);
	}
	fputs("\n  ]}", f);
}

static void json_steps(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;

	json_key(f, "step_s");
	fprintf(f, "%g", a->step_s);
	json_key(f, "steps");
	fputc('[', f);
	for (unsigned i = 0; i < a->nsteps; i++) {
		const struct st_load_step *s = &a->steps[i];

		fprintf(f, "%s\n    {\"rps\": %g, \"achieved_rps\": %.3f, \"due\": %" PRIu64
			   ", \"sent\": %" PRIu64 ", \"answered\": %" PRIu64 ", \"answered_in\": %" PRIu64
			   ", \"errors\": %" PRIu64 ", \"latency_ms\": ",
			i ? "," : "", s->rps, a->step_s > 0 ? (double)s->answered_in / a->step_s : 0,
			s->due, s->sent, s->answered, s->answered_in, s->errors);
		json_lat(f, &s->lat);
		fputc('}', f);
	}
	fputs("\n  ]", f);
}

/* Errors by kind. */
static void json_errors(FILE *f, const struct report_ctx *c)
{
	json_key(f, "errors");
	fputc('{', f);
	for (int i = 0; i < ST_LOAD_E__COUNT; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "",
			st_load_err_name((enum st_load_err)i), c->a->errors[i]);
	fputc('}', f);
}

static void json_endpoints(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;

	json_key(f, "endpoints");
	fputc('[', f);
	for (unsigned i = 0, k = 0; i <= a->max_endpoints; i++) {
		const struct st_load_endpoint *e = &a->ep[i];

		if (i >= a->nep && (i < a->max_endpoints || (!e->sent && !e->answered && !e->errors)))
			continue; /* unused, or "other" unused */
		fprintf(f, "%s\n    {\"endpoint\": ", k++ ? "," : "");
		st_cmp_json_str(f, e->name, strlen(e->name));
		fprintf(f, ", \"sent\": %" PRIu64 ", \"answered\": %" PRIu64 ", \"errors\": %" PRIu64
			   ", \"latency_ms\": ", e->sent, e->answered, e->errors);
		json_lat(f, &e->lat);
		fputc('}', f);
	}
	fputs("\n  ]", f);
}

/* ---- HTML: charts ------------------------------------------------------------------------ */

/* One SVG chart: a frame, axes (linear or log), lines and bars in data coordinates. */
struct chart {
	FILE *f;
	double x0, x1, y0, y1;
	bool ylog;
};

enum { CW = 640, CH = 220, CL = 56, CR = 16, CT = 12, CB = 36 };

static double px(const struct chart *c, double x)
{
	return CL + (x - c->x0) / (c->x1 - c->x0) * (CW - CL - CR);
}

static double py(const struct chart *c, double y)
{
	double t = c->ylog ? (log10(fmax(y, c->y0)) - log10(c->y0)) / (log10(c->y1) - log10(c->y0)) :
			     (y - c->y0) / (c->y1 - c->y0);

	return CT + (1 - fmin(fmax(t, 0), 1)) * (CH - CT - CB);
}

/* A round step for about n ticks over span. */
static double nice_step(double span, int n)
{
	double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;

	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void chart_begin(struct chart *c, FILE *f, const char *id, const char *label,
			const char *xunit, const char *yunit)
{
	double step;

	c->f = f;
	if (!(c->x1 > c->x0))
		c->x1 = c->x0 + 1;
	if (c->ylog) {
		c->y0 = pow(10, floor(log10(fmax(c->y0, 0.001))));
		c->y1 = pow(10, ceil(log10(fmax(c->y1, c->y0 * 10))));
		if (c->y1 <= c->y0)
			c->y1 = c->y0 * 10;
	} else if (!(c->y1 > c->y0)) {
		c->y1 = c->y0 + 1;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"%s\" class=\"chart\" width=\"%d\" "
		   "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">"
		   "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#dde1e8\"/>",
		id, CW, CH, CW, CH, label, CL, CT, CW - CL - CR, CH - CT - CB);
	/* y: decades (log) or round steps */
	if (c->ylog) {
		for (double d = c->y0; d <= c->y1 * 1.0001; d *= 10)
			fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eef0f4\"/>"
				   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g%s</text>",
				CL, py(c, d), CW - CR, py(c, d), CL - 4, py(c, d) + 4, d, yunit);
	} else {
		step = nice_step(c->y1 - c->y0, 4);
		for (double v = c->y0; v <= c->y1 * 1.0001; v += step)
			fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eef0f4\"/>"
				   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g%s</text>",
				CL, py(c, v), CW - CR, py(c, v), CL - 4, py(c, v) + 4, v, yunit);
	}
	if (xunit) {
		step = nice_step(c->x1 - c->x0, 6);
		for (double v = c->x0; v <= c->x1 * 1.0001; v += step)
			fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g%s</text>",
				px(c, v), CH - CB + 14, v, xunit);
	}
}

/* A line through the points with a y > 0 (a gap where there is none: a bucket with no
 * answer has no latency). */
static void chart_line(struct chart *c, const char *cls, const char *color, const double *x,
		       const double *y, unsigned n)
{
	bool open = false;

	for (unsigned i = 0; i < n; i++) {
		if (!(y[i] > 0) && c->ylog) {
			if (open)
				fputs("\"/>", c->f);
			open = false;
			continue;
		}
		if (!open)
			fprintf(c->f, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" "
				      "stroke-width=\"2\" points=\"", cls, color);
		fprintf(c->f, "%.1f,%.1f ", px(c, x[i]), py(c, y[i]));
		open = true;
	}
	if (open)
		fputs("\"/>", c->f);
}

static void chart_legend(struct chart *c, int i, const char *color, const char *text)
{
	int x = CL + 8 + i * 150;

	fprintf(c->f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/>"
		      "<text x=\"%d\" y=\"%d\">%s</text>", x, CH - 10, color, x + 16, CH - 6, text);
}

/* Lines through the same x, each with its legend; the caller closes the </svg>. */
struct series {
	const char *cls, *color, *name;
	const double *y;
};

static void chart_lines(struct chart *c, FILE *f, const char *id, const char *label,
			const char *xunit, const char *yunit, const double *x, unsigned n,
			const struct series *s, int ns)
{
	chart_begin(c, f, id, label, xunit, yunit);
	for (int i = 0; i < ns; i++)
		chart_line(c, s[i].cls, s[i].color, x, s[i].y, n);
	for (int i = 0; i < ns; i++)
		chart_legend(c, i, s[i].color, s[i].name);
}

static const char C_CORR[] = "#d9480f", C_RAW[] = "#3366cc", C_DUE[] = "#9aa3b1",
		  C_ERR[] = "#d93b3b";

/* Latency by percentile, corrected and raw: x is the number of nines (0: p0, 1: p90, 2: p99). */
static void spectrum(FILE *f, const struct st_load_agg *a)
{
	const struct st_hdr *hs[2] = { &a->lat, &a->lat_raw };
	double xs[64], ys[2][64], lo = 1e18, hi = 0, nines;
	unsigned n = 0;
	struct chart c = { 0 };

	if (!a->lat.total) {
		fputs("<p class=\"muted\">no answer: no latency</p>", f);
		return;
	}
	/* no further than the samples reach: 10 samples say nothing of p99 */
	nines = fmin(fmax(ceil(log10((double)a->lat.total)), 1), 6);
	for (unsigned i = 0; i <= (unsigned)(nines * 10) && n < 64; i++, n++) {
		double q = 100 * (1 - pow(10, -(double)i / 10));

		xs[n] = (double)i / 10;
		for (int k = 0; k < 2; k++) {
			ys[k][n] = st_load_ms(hs[k], q);
			if (ys[k][n] > 0 && ys[k][n] < lo)
				lo = ys[k][n];
			if (ys[k][n] > hi)
				hi = ys[k][n];
		}
	}
	c.x0 = 0;
	c.x1 = nines;
	c.y0 = lo < 1e18 ? lo : 0.001;
	c.y1 = hi;
	c.ylog = true;
	chart_lines(&c, f, "percentile-chart", "latency by percentile", NULL, " ms", xs, n,
		    (const struct series[]){ { "corrected", C_CORR, "from due (corrected)", ys[0] },
					     { "raw", C_RAW, "from the send (raw)", ys[1] } }, 2);
	for (unsigned i = 0; i <= (unsigned)nines; i++) {
		static const char *const lab[] = { "p0", "p90", "p99", "p99.9", "p99.99", "p99.999",
						   "p99.9999" };

		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", px(&c, i),
			CH - CB + 14, lab[i]);
	}
	fputs("</svg>", f);
}

/* The timeline: rate, latency and errors per bucket. */
static void timeline_charts(FILE *f, const struct st_load_agg *a)
{
	unsigned n = a->ntl;
	double *x = calloc(n + 1, sizeof(*x)), *y1 = calloc(n + 1, sizeof(*y1)),
	       *y2 = calloc(n + 1, sizeof(*y2)), hi = 0, lo = 1e18, ehi = 0;
	struct chart c = { 0 };

	if (!n || !x || !y1 || !y2) {
		fputs("<p class=\"muted\">no timeline</p>", f);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		x[i] = (i + 0.5) * a->bucket_s;
		y1[i] = (double)a->tl[i].answered / a->bucket_s;
		y2[i] = (double)a->tl[i].due / a->bucket_s;
		hi = fmax(hi, fmax(y1[i], y2[i]));
		ehi = fmax(ehi, (double)a->tl[i].errors / a->bucket_s);
	}
	c.x0 = 0;
	c.x1 = n * a->bucket_s;
	c.y1 = hi * 1.1;
	chart_lines(&c, f, "rate-chart", "requests per second over time", " s", "/s", x, n,
		    (const struct series[]){ { "achieved", C_CORR, "answered per second", y1 },
					     { "due", C_DUE, "due per second", y2 } }, 2);
	fputs("</svg>", f);
	/* latency: the answers' p50 and p99 in each bucket */
	for (unsigned i = 0; i < n; i++) {
		y1[i] = st_load_ms(&a->tl[i].lat, 50);
		y2[i] = st_load_ms(&a->tl[i].lat, 99);
		if (y1[i] > 0)
			lo = fmin(lo, y1[i]);
		hi = fmax(hi, y2[i]);
	}
	c = (struct chart){ .x0 = 0, .x1 = n * a->bucket_s, .y0 = lo < 1e18 ? lo : 0.001,
			    .y1 = 0, .ylog = true };
	for (unsigned i = 0; i < n; i++)
		c.y1 = fmax(c.y1, y2[i]);
	chart_lines(&c, f, "latency-chart", "latency over time", " s", " ms", x, n,
		    (const struct series[]){ { "p99", C_CORR, "p99 (corrected)", y2 },
					     { "p50", C_RAW, "p50 (corrected)", y1 } }, 2);
	fputs("</svg>", f);
	/* errors per second, as bars */
	c = (struct chart){ .x0 = 0, .x1 = n * a->bucket_s, .y1 = ehi > 0 ? ehi * 1.1 : 1 };
	chart_begin(&c, f, "errors-chart", "errors over time", " s", "/s");
	for (unsigned i = 0; i < n; i++) {
		double e = (double)a->tl[i].errors / a->bucket_s, w = px(&c, a->bucket_s) - px(&c, 0);

		if (e > 0)
			fprintf(f, "<rect class=\"err\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
				   "height=\"%.1f\" fill=\"%s\"/>", px(&c, i * a->bucket_s), py(&c, e),
				fmax(w - 1, 1), py(&c, 0) - py(&c, e), C_ERR);
	}
	chart_legend(&c, 0, C_ERR, "errors per second");
	fputs("</svg>", f);
out:
	free(x);
	free(y1);
	free(y2);
}

/* ---- HTML: the page ------------------------------------------------------------------- */

/* A histogram's cells under lat_head: its percentiles, max, mean and count. */
static void lat_cells(FILE *f, const struct st_hdr *h)
{
	fprintf(f, "<td class=\"n\">%.2f</td><td class=\"n\">%.2f</td><td class=\"n\">%.2f</td>"
		   "<td class=\"n\">%.2f</td><td class=\"n\">%.2f</td><td class=\"n\">%.2f</td>"
		   "<td class=\"n\">%" PRIu64 "</td>",
		st_load_ms(h, 50), st_load_ms(h, 90), st_load_ms(h, 99), st_load_ms(h, 99.9),
		st_load_ms(h, 100), h->counts && h->total ? st_hdr_mean(h) / 1e3 : 0,
		h->counts ? h->total : 0);
}

static void lat_row(FILE *f, const char *what, const struct st_hdr *h)
{
	fprintf(f, "<tr><td>%s</td>", what);
	lat_cells(f, h);
	fputs("</tr>", f);
}

static const char lat_head[] = "<th>p50 ms</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>"
			       "<th>mean</th><th>n</th>";

/* The report's HTML sections (the table at the end of the file says their order). */

/* The header: what ran against what, when; <main>, which the page's end closes, holds the
 * sections after it. */
static void html_head(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;
	char t0[40], t1[40];

	st_cmp_time_str(t0, sizeof(t0), a->start_real_ns);
	st_cmp_time_str(t1, sizeof(t1), a->end_real_ns ? a->end_real_ns : c->now_real_ns);
	fputs("<header><h1>shadowtap load test</h1><p>target <code>", f);
	st_cmp_html_str(f, a->target);
	fputs("</code> &middot; ", f);
	st_cmp_html_str(f, a->command);
	fprintf(f, " &middot; %s to %s%s", t0, t1, a->final ? " (final)" : " (in progress)");
	if (a->sources > 1)
		fprintf(f, " &middot; <span id=\"sources\">merged from %" PRIu64 " reports</span>",
			a->sources);
	fputs("</p></header><main>", f);
}

/* Whether the generator kept its schedule: a late generator's lateness is in the latencies. */
static void h_schedule(FILE *f, const struct st_load_agg *a)
{
	if (a->late_sends)
		fprintf(f, "<p class=\"late\"><span class=\"badge v-slower\">generator behind</span> "
			   "%" PRIu64 " requests were taken up more than 1 ms after they were due (worst "
			   "%.2f ms): the generator fell behind its schedule; its own lateness is in the "
			   "latencies.</p>", a->late_sends, (double)a->lag.max / 1e3);
	else
		fprintf(f, "<p><span class=\"badge v-ok\">on schedule</span> the generator took every "
			   "request up within 1 ms of its due time (worst %.2f ms).</p>",
			(double)a->lag.max / 1e3);
}

static void h_counts(FILE *f, const struct st_load_agg *a, uint64_t errs)
{
	fprintf(f, "<table class=\"counters\"><tbody>"
		   "<tr><td>due</td><td class=\"n\">%" PRIu64 "</td><td class=\"muted\">requests whose "
		   "time came</td></tr><tr><td>sent</td><td class=\"n\">%" PRIu64 "</td><td "
		   "class=\"muted\">written whole to the target</td></tr><tr><td>answered</td><td "
		   "class=\"n\">%" PRIu64 "</td><td class=\"muted\">any status</td></tr>"
		   "<tr><td>errors</td><td class=\"n\">%" PRIu64 "</td><td class=\"muted\">failed, or "
		   "answered 5xx</td></tr><tr><td>late sends</td><td class=\"n\">%" PRIu64 "</td><td "
		   "class=\"muted\">the generator over 1 ms behind</td></tr>",
		a->due, a->sent, a->answered, errs, a->late_sends);
	if (a->starved)
		fprintf(f, "<tr><td>starved</td><td class=\"n\">%" PRIu64 "</td><td class=\"muted\">"
			   "slots the stream had no request for</td></tr>", a->starved);
	fputs("</tbody></table>", f);
}

/* The summary, first: rate, latency and errors in one sentence, the schedule, the counts, and
 * tap compare's report when it ran during the test. */
static void html_summary(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;
	uint64_t errs = st_load_agg_errors(a);

	fprintf(f, "<section id=\"summary\" class=\"box verdict %s\"><h2>Summary</h2><p>",
		a->late_sends > 0 ? "warn" : errs ? "bad" : "good");
	fprintf(f, "<strong id=\"achieved\">%.1f requests/s</strong> answered over %.2f s (target "
		   "<span id=\"target-rps\">%g</span>/s%s, %s pacing); latency p50 <strong>%.2f ms"
		   "</strong>, p99 <strong id=\"p99\">%.2f ms</strong>, max %.2f ms from when each "
		   "request was due; <strong>%" PRIu64 " error%s</strong>.</p>",
		st_load_agg_achieved(a), a->elapsed_s, a->target_rps,
		a->nsteps ? ", the highest step" : "", st_load_report_pace_name(a->pace),
		st_load_ms(&a->lat, 50), st_load_ms(&a->lat, 99), st_load_ms(&a->lat, 100), errs,
		errs == 1 ? "" : "s");
	h_schedule(f, a);
	h_counts(f, a, errs);
	if (c->compare_report) {
		fputs("<p>Tap compare ran during the test: <a href=\"", f);
		st_cmp_html_str(f, c->compare_report);
		fputs("\">its report</a>.</p>", f);
	}
	fputs("</section>", f);
}

static void html_latency(FILE *f, const struct report_ctx *c)
{
	fputs("<section id=\"latency\"><h2>Latency</h2><div class=\"grid\"><div>", f);
	spectrum(f, c->a);
	fprintf(f, "</div><div><table id=\"latency-table\"><thead><tr><th>from</th>%s</tr></thead>"
		   "<tbody>", lat_head);
	lat_row(f, "<span class=\"side-c\">due (corrected)</span>", &c->a->lat);
	lat_row(f, "<span class=\"side-p\">the send (raw)</span>", &c->a->lat_raw);
	lat_row(f, "<span class=\"muted\">generator lag</span>", &c->a->lag);
	fputs("</tbody></table></div></div></section>", f);
}

static void html_timeline(FILE *f, const struct report_ctx *c)
{
	fprintf(f, "<section id=\"timeline\"><h2>Over time</h2><p class=\"muted\">%g s buckets; "
		   "a request counts where it was answered (or failed), latencies are those of the "
		   "answers that came in the bucket.</p>", c->a->bucket_s);
	timeline_charts(f, c->a);
	fputs("</section>", f);
}

/* The steps' table, then the knee: achieved against target (the diagonal is keeping up), and
 * p99 by step. None without --steps. */
static void html_steps(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;
	double x[ST_LOAD_STEPS_MAX], y[ST_LOAD_STEPS_MAX], p99[ST_LOAD_STEPS_MAX], hi = 0, lo = 1e18,
	       phi = 0;
	struct chart ch = { 0 };

	if (!a->nsteps)
		return;
	fprintf(f, "<section id=\"steps\"><h2>Steps</h2><p class=\"muted\">%u steps of %g s; each "
		   "step's rate is the answers that came during it, its latencies and errors those "
		   "of the requests due in it.</p><table id=\"steps-table\"><thead><tr>"
		   "<th>target /s</th><th>achieved /s</th><th>due</th><th>answered</th><th>errors</th>"
		   "<th>error ratio</th>%s</tr></thead><tbody>", a->nsteps, a->step_s, lat_head);
	for (unsigned i = 0; i < a->nsteps; i++) {
		const struct st_load_step *s = &a->steps[i];
		double ach = a->step_s > 0 ? (double)s->answered_in / a->step_s : 0;

		x[i] = s->rps;
		y[i] = ach;
		p99[i] = st_load_ms(&s->lat, 99);
		hi = fmax(hi, fmax(s->rps, ach));
		phi = fmax(phi, p99[i]);
		if (p99[i] > 0)
			lo = fmin(lo, p99[i]);
		fprintf(f, "<tr class=\"step\"><td class=\"n\">%g</td><td class=\"n\">%.1f</td>"
			   "<td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64 "</td>"
			   "<td class=\"n\">%" PRIu64 "</td><td class=\"n\">%.2f%%</td>",
			s->rps, ach, s->due, s->answered, s->errors,
			s->due ? 100.0 * (double)s->errors / (double)s->due : 0);
		lat_cells(f, &s->lat);
		fputs("</tr>", f);
	}
	fputs("</tbody></table><div class=\"grid\"><div>", f);
	ch.x0 = 0;
	ch.x1 = hi * 1.05;
	ch.y1 = hi * 1.05;
	chart_lines(&ch, f, "steps-chart", "achieved rate by target rate", "/s", "/s", x, a->nsteps,
		    (const struct series[]){ { "achieved", C_CORR, "achieved", y },
					     { "target", C_DUE, "target", x } }, 2);
	fputs("</svg></div><div>", f);
	ch = (struct chart){ .x0 = 0, .x1 = hi * 1.05, .y0 = lo < 1e18 ? lo : 0.001, .y1 = phi,
			     .ylog = true };
	chart_lines(&ch, f, "steps-p99-chart", "p99 latency by target rate", "/s", " ms", x,
		    a->nsteps, (const struct series[]){ { "p99", C_CORR, "p99 (corrected)", p99 } }, 1);
	fputs("</svg></div></div></section>", f);
}

static void html_errors(FILE *f, const struct report_ctx *c)
{
	fputs("<section id=\"errors\"><h2>Errors</h2><table id=\"errors-table\"><tbody>", f);
	for (int i = 0; i < ST_LOAD_E__COUNT; i++)
		fprintf(f, "<tr class=\"error%s\" data-kind=\"%s\"><td><code>%s</code></td><td "
			   "class=\"n\">%" PRIu64 "</td></tr>", c->a->errors[i] ? " seen" : "",
			st_load_err_name((enum st_load_err)i), st_load_err_name((enum st_load_err)i),
			c->a->errors[i]);
	fputs("</tbody></table></section>", f);
}

static int cmp_ep(const void *x, const void *y)
{
	const struct st_load_endpoint *a = *(const struct st_load_endpoint *const *)x,
				      *b = *(const struct st_load_endpoint *const *)y;

	return a->sent < b->sent ? 1 : a->sent > b->sent ? -1 : strcmp(a->name, b->name);
}

/* The endpoints, the most sent first ("other" among them once used). */
static void html_endpoints(FILE *f, const struct report_ctx *c)
{
	const struct st_load_agg *a = c->a;
	const struct st_load_endpoint **eps = calloc(a->nep + 1, sizeof(*eps));
	unsigned n = 0;

	if (!eps)
		return;
	for (unsigned i = 0; i < a->nep; i++)
		eps[n++] = &a->ep[i];
	if (a->ep[a->max_endpoints].sent || a->ep[a->max_endpoints].errors)
		eps[n++] = &a->ep[a->max_endpoints];
	qsort(eps, n, sizeof(*eps), cmp_ep);
	fprintf(f, "<section><h2>Endpoints</h2><table id=\"endpoints\"><thead><tr><th>endpoint</th>"
		   "<th>sent</th><th>answered</th><th>errors</th>%s</tr></thead><tbody>", lat_head);
	for (unsigned i = 0; i < n; i++) {
		const struct st_load_endpoint *e = eps[i];

		fputs("<tr class=\"endpoint\" data-endpoint=\"", f);
		st_cmp_html_str(f, e->name);
		fputs("\"><td><code>", f);
		st_cmp_html_str(f, e->name);
		fprintf(f, "</code></td><td class=\"n\">%" PRIu64 "</td><td class=\"n\">%" PRIu64
			   "</td><td class=\"n\">%" PRIu64 "</td>", e->sent, e->answered, e->errors);
		lat_cells(f, &e->lat);
		fputs("</tr>", f);
	}
	if (!n)
		fputs("<tr><td colspan=\"10\" class=\"muted\">no request yet</td></tr>", f);
	fputs("</tbody></table></section>", f);
	free(eps);
}

/* How to read it: the model, the histograms, what counts as an error, the endpoints. */
static void html_notes(FILE *f, const struct report_ctx *c)
{
	fprintf(f, "<section id=\"notes\" class=\"box\"><h2>How to read this report</h2><ul>"
		   "<li>An open model: each request of the recording was due at its time on the "
		   "schedule (the recording's own order and mix; %s), whether the target had answered "
		   "the ones before or not. Latency <strong>from due</strong> is what a client due "
		   "then waited: waits for a connection or for an earlier answer included "
		   "(coordinated omission corrected, as wrk2 does); <strong>from the send</strong> "
		   "starts when the request was written whole, which a stalled target shortens.</li>"
		   "<li>Latencies are kept in HDR histograms (3 significant digits, 1 &micro;s to "
		   "1 h); a percentile is the highest value of the bucket holding it.</li>"
		   "<li>Errors: connections refused or failed, resets and closes before the answer, "
		   "no answer within %g s, answers that are not HTTP, answers with a 5xx status (also "
		   "counted answered), requests the queues could not hold.</li>"
		   "<li>Endpoints are tap compare's: the method and the path with numeric, UUID and "
		   "long hex segments as {id} (query keys kept) unless --endpoint patterns say "
		   "otherwise.</li></ul></section>",
		c->a->pace == ST_LOAD_PACE_CONSTANT ? "at a constant rate" :
						      "its inter-arrival times scaled to the rate",
		c->a->timeout_s);
}

/* ---- The sections ----------------------------------------------------------------------- */

/*
 * The report's sections in the one order both formats follow: the page's reading order
 * (docs/LOAD.md, "--report FILE.html"), which the JSON's keys keep ("timeline" before the
 * steps, "errors" by kind after them). A NULL hook: that format has no such section (the
 * notes have nothing a machine reads).
 */
struct section {
	const char *id; /* its JSON key, its HTML element's id (where the format has one) */
	void (*json)(FILE *f, const struct report_ctx *c);
	void (*html)(FILE *f, const struct report_ctx *c);
};

static const struct section sections[] = {
	{ "head", json_head, html_head },
	{ "summary", json_summary, html_summary },
	{ "latency", json_latency, html_latency },
	{ "timeline", json_timeline, html_timeline },
	{ "steps", json_steps, html_steps },
	{ "errors", json_errors, html_errors },
	{ "endpoints", json_endpoints, html_endpoints },
	{ "notes", NULL, html_notes },
};

#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

void st_load_report_json(FILE *f, const struct st_load_agg *a, uint64_t now_real_ns)
{
	const struct report_ctx c = { .a = a, .now_real_ns = now_real_ns };

	fputc('{', f);
	for (size_t i = 0; i < NSECTIONS; i++)
		if (sections[i].json)
			sections[i].json(f, &c);
	fputs("\n}\n", f);
}

void st_load_report_html(FILE *f, const struct st_load_agg *a, uint64_t now_real_ns,
			 const char *compare_report)
{
	const struct report_ctx c = { .a = a, .now_real_ns = now_real_ns,
				      .compare_report = compare_report };

	st_cmp_html_page(f, "shadowtap load report");
	for (size_t i = 0; i < NSECTIONS; i++)
		if (sections[i].html)
			sections[i].html(f, &c);
	fputs("</main></body></html>\n", f);
}

int st_load_report_write(struct st_load *l, const char *html, const char *json,
			 const char *compare_report, const char *cmd, mode_t mode)
{
	const struct st_load_agg *a = st_load__agg(l, st_loop_mono_ns(), st_loop_realtime_ns());
	const char *paths[2] = { html, json }, *cmp = compare_report ? strrchr(compare_report, '/') :
								      NULL;
	int rc = 0;

	cmp = cmp ? cmp + 1 : compare_report;
	for (unsigned k = 0; k < 2; k++) {
		char *text = NULL;
		size_t len = 0;
		FILE *f;
		int err = -ENOMEM;

		if (!paths[k])
			continue;
		f = open_memstream(&text, &len);
		if (f) {
			if (k)
				st_load_report_json(f, a, st_loop_realtime_ns());
			else
				st_load_report_html(f, a, st_loop_realtime_ns(), cmp);
			err = fclose(f) ? -ENOMEM : st_output_replace(paths[k], text, len,
								   ST_OUT_NONBLOCK, mode);
		}
		if (err) {
			if (st_load__output_failed(l, k))
				pr_err("%s: %s: %s", cmd, paths[k], st_output_strerror(err));
			rc = -1;
		}
		free(text);
	}
	return rc;
}
