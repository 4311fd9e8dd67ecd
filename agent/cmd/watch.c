/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap watch`: production's golden signals from the wire. The service's own traffic,
 * reassembled and framed as HTTP/1.x (agent/watch/watch.h), counted per endpoint, method
 * and status code with latency and size histograms (watch_agg.h), exported as Prometheus
 * metrics (--metrics FILE, --metrics-listen ADDR, or the daemon's /metrics for a [watch
 * NAME] job) and as the JSON report `report --canary` reads. docs/WATCH.md.
 *
 * The kernel copies the first --head-bytes of each segment (the headers-only policy): heads,
 * not bodies. A connection where that loses a head is copied whole from then on (the
 * fallback, counted).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "compare_agg.h"
#include "connmap.h"
#include "httpd.h"
#include "job.h"
#include "log.h"
#include "loop.h"
#include "optparse.h"
#include "opts.h"
#include "output.h"
#include "prom.h"
#include "reasm.h"
#include "tap.h"
#include "watch.h"

#define WATCH_MAX_MEM_DEFAULT (64ull << 20)
#define WATCH_INTERVAL_DEFAULT 5.0
#define WATCH_HEAD_BYTES_DEFAULT 2048
#define WATCH_LABELS_MAX 16

struct watch_cmd {
	struct st_job_head h; /* first (job.h): the target, -v -q --stats, --duration */
	/* options */
	const char *metrics;         /* --metrics FILE: the text format, rewritten atomically */
	const char *listen;          /* --metrics-listen ADDR:PORT */
	const char *report_json;     /* --report-json FILE */
	double interval;             /* the files are rewritten this often */
	mode_t out_mode;
	unsigned head_bytes;
	bool whole;
	unsigned max_conns, max_endpoints, max_series;
	struct st_cmp_pattern patterns[ST_CMP_PATTERNS_MAX];
	unsigned npatterns;
	struct st_watch_bounds lat, size;
	struct st_prom_label labels[WATCH_LABELS_MAX];
	char label_buf[WATCH_LABELS_MAX][ST_PROM_LABEL_NAME_MAX + ST_PROM_LABEL_VALUE_MAX + 2];
	unsigned nlabels;
	/* the run */
	bool in_daemon;
	struct st_reasm *r;
	struct st_watch *w;
	struct st_tapsub *sub;
	struct st_httpd *httpd;
	struct st_tap_summary tap_sum; /* the tap's counters, kept after the detach */
	uint64_t start_ns, last_write;
	bool final;
	uint64_t metrics_errors, report_errors, whole_errors;
	char host[256];
};
_Static_assert(offsetof(struct watch_cmd, h) == 0, "job.h: the head first");

#define WATCH_RUN_STATS(X, T)                                                                  \
	X(T, metrics_errors, COUNTER, "--metrics writes that failed")                          \
	X(T, report_errors, COUNTER, "--report-json writes that failed")                       \
	X(T, fallback_errors, DETAIL, "connections the kernel could not be told to copy whole")  \
	X(T, mem_peak, GAUGE_BYTES, "most reassembly memory held")

struct watch_run_stats {
	WATCH_RUN_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DEFINE(st_watch_run_stat, struct watch_run_stats, WATCH_RUN_STATS);

static const char usage_head[] =
	"Usage: shadowtap watch (--iface IFACE | --cgroup PATH) --port P ...\n"
	"                       [--metrics FILE] [--metrics-listen ADDR:PORT]\n"
	"                       [--report-json FILE] [--label KEY=VALUE ...]\n"
	"                       [--endpoint 'METHOD /path/{id}' ...] [--duration SEC]\n"
	"\n"
	"Measures the service's own HTTP/1.x traffic at the tap, with no change to it: per\n"
	"endpoint, method and status code, the requests, the time from each request's last\n"
	"byte in to its answer's first and last byte out, and the sizes, as Prometheus\n"
	"counters and histograms (docs/WATCH.md). The kernel copies heads, not bodies.\n"
	"A summary line ends the run.\n";

#define W(o) ((struct watch_cmd *)(o))

static int opt_endpoint(void *o, const char *val, char *err, size_t errlen)
{
	return st_cmp_pattern_add(W(o)->patterns, &W(o)->npatterns, val, err, errlen);
}

static int opt_buckets(void *o, const char *val, char *err, size_t errlen)
{
	return st_watch_bounds_parse(val, &W(o)->lat, err, errlen);
}

static int opt_size_buckets(void *o, const char *val, char *err, size_t errlen)
{
	return st_watch_bounds_parse(val, &W(o)->size, err, errlen);
}

/* The labels every series carries already, and Prometheus' own. */
static const char *const reserved_labels[] = {
	"job", "command", "endpoint", "method", "code", "le", "instance", "grpc_code",
};

static bool utf8_printable(const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t k = st_cmp_utf8_seq((const unsigned char *)s + i, n - i);

		if (!k || (k == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)))
			return false;
		i += k;
	}
	return true;
}

static int opt_label(void *o, const char *val, char *err, size_t errlen)
{
	struct watch_cmd *c = o;
	const char *eq = strchr(val, '=');
	char *buf;
	size_t nl;

	if (c->nlabels >= WATCH_LABELS_MAX) {
		snprintf(err, errlen, "at most %d labels", WATCH_LABELS_MAX);
		return -1;
	}
	if (!eq || (nl = (size_t)(eq - val)) >= ST_PROM_LABEL_NAME_MAX ||
	    strlen(eq + 1) >= ST_PROM_LABEL_VALUE_MAX) {
		snprintf(err, errlen, "'%s' is not KEY=VALUE (a name of [a-zA-Z_][a-zA-Z0-9_]*, a "
			 "value of at most %d bytes)", val, ST_PROM_LABEL_VALUE_MAX - 1);
		return -1;
	}
	buf = c->label_buf[c->nlabels];
	memcpy(buf, val, nl);
	buf[nl] = 0;
	if (!st_prom_label_name_ok(buf)) {
		snprintf(err, errlen, "'%s': '%s' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not __*)",
			 val, buf);
		return -1;
	}
	for (size_t i = 0; i < sizeof(reserved_labels) / sizeof(reserved_labels[0]); i++)
		if (!strcmp(buf, reserved_labels[i])) {
			snprintf(err, errlen, "'%s': every series has a label '%s' already", val, buf);
			return -1;
		}
	for (unsigned i = 0; i < c->nlabels; i++)
		if (!strcmp(c->labels[i].name, buf)) {
			snprintf(err, errlen, "'%s': label '%s' given twice", val, buf);
			return -1;
		}
	if (!utf8_printable(eq + 1)) {
		snprintf(err, errlen, "'%s': the value must be printable UTF-8", val);
		return -1;
	}
	strcpy(buf + nl + 1, eq + 1);
	c->labels[c->nlabels].name = buf;
	c->labels[c->nlabels].value = buf + nl + 1;
	c->nlabels++;
	return 0;
}

static const struct st_opt watch_opts[] = {
	ST_OPT_STRING("metrics", 0, struct watch_cmd, metrics, "FILE",
		      "Prometheus text format, rewritten atomically every\n"
		      "--interval (node_exporter's textfile collector)"),
	ST_OPT_STRING("metrics-listen", 0, struct watch_cmd, listen, "ADDR:PORT",
		      "serve /metrics and /healthz there (\":9465\": every address;\n"
		      "a daemon job is on the daemon's /metrics)"),
	ST_OPT_STRING("report-json", 0, struct watch_cmd, report_json, "FILE",
		      "the series with their histograms as JSON, rewritten every\n"
		      "--interval and at the end (report --canary reads it)"),
	ST_OPT_SECONDS("interval", 0, struct watch_cmd, interval, 0.1, 86400,
		       "how often the files are rewritten (default 5s)"),
	ST_OPT_FUNC("label", 0, "KEY=VALUE", ST_OPTF_REPEAT, opt_label,
		    "a constant label on every series (group=canary,\n"
		    "version=1.4.2; repeatable, up to 16)"),
	ST_OPT_FUNC("endpoint", 0, ST_CMP_ENDPOINT_ARG, ST_OPTF_REPEAT, opt_endpoint,
		    ST_CMP_ENDPOINT_HELP),
	ST_OPT_UINT("max-endpoints", 0, struct watch_cmd, max_endpoints, "N", 1,
		    ST_WATCH_ENDPOINTS_MAX, 0,
		    "endpoints named; the rest are \"other\" (default 200)"),
	ST_OPT_UINT("max-series", 0, struct watch_cmd, max_series, "N", ST_WATCH_SERIES_MIN,
		    ST_WATCH_SERIES_MAX, 0,
		    "series (endpoint, method, code) at most, class rows\n"
		    "included; past it: endpoint \"other\", code 5xx ... (default 1000)"),
	ST_OPT_FUNC("buckets", 0, "LIST", 0, opt_buckets,
		    "latency histograms' upper bounds in seconds, comma-\n"
		    "separated (default 0.0005, 0.001, 0.0025, 0.005 ... 10)"),
	ST_OPT_FUNC("size-buckets", 0, "LIST", 0, opt_size_buckets,
		    "size histograms' upper bounds in bytes (default 64, 256,\n"
		    "1024 ... 16777216: powers of 4)"),
	ST_OPT_UINT("head-bytes", 0, struct watch_cmd, head_bytes, "N", 64, ST_CHUNK_MAX, 0,
		    "payload bytes the kernel copies from the start of each\n"
		    "segment (default 2048): heads, not bodies"),
	ST_OPT_FLAG("whole", 0, struct watch_cmd, whole,
		    "copy every payload byte instead (no headers-only policy)"),
	ST_OPT_UINT("max-conns", 0, struct watch_cmd, max_conns, "N", 1, 1000000, 0,
		    "connections framed at once; the rest are counted, not\n"
		    "measured (default 8192)"),
	ST_OPT_SECONDS("duration", 0, struct watch_cmd, h.duration, 0, 1e9,
		       "stop after SEC seconds (default: until SIGINT)"),
};

static size_t optsets(void *obj, struct st_optset *sets)
{
	struct watch_cmd *c = obj;

	sets[0] = (struct st_optset){ st_target_opts, st_target_opts_n, &c->h.target, NULL };
	sets[1] = (struct st_optset)ST_OPTSET(watch_opts, c);
	sets[2] = (struct st_optset){ st_run_opts, st_run_opts_n, &c->h.run, NULL };
	sets[3] = (struct st_optset){ st_output_opts, st_output_opts_n, &c->out_mode, NULL };
	sets[4] = (struct st_optset){ st_tap_tuning_opts, st_tap_tuning_opts_n, &c->h.target,
				      ST_OPT_TITLE_TAP };
	sets[5] = (struct st_optset){ st_reasm_opts, st_reasm_opts_n, &c->h.target,
				      ST_OPT_TITLE_LIMITS };
	return 6;
}

static int check(void *obj, int argc, char **argv, int first)
{
	struct watch_cmd *c = obj;
	char err[256];

	c->in_daemon = !argv;
	if (argv && first < argc) {
		pr_err("watch: unexpected argument '%s'", argv[first]);
		return ST_EXIT_USAGE;
	}
	if (st_target_check(&c->h.target, "watch"))
		return ST_EXIT_USAGE;
	if (c->in_daemon && c->listen) {
		pr_err("watch: metrics-listen: a daemon job's metrics are on the daemon's /metrics "
		       "([daemon] metrics =)");
		return ST_EXIT_USAGE;
	}
	if (c->whole && c->head_bytes) {
		pr_err("watch: --whole and --head-bytes contradict each other");
		return ST_EXIT_USAGE;
	}
	{
		const char *paths[] = { c->metrics, c->report_json };
		const char *opts[] = { "--metrics", "--report-json" };

		if (st_output_distinct(paths, opts, 2, err, sizeof(err))) {
			pr_err("watch: %s", err);
			return ST_EXIT_USAGE;
		}
	}
	return 0;
}

static void init(void *obj)
{
	struct watch_cmd *c = obj;

	c->h.target.ring_mb = ST_RING_MB_DEFAULT;
	c->interval = WATCH_INTERVAL_DEFAULT;
}

/* The kernel copies heads: the first --head-bytes of each segment, both directions. */
static void tap_opts(void *obj, struct st_tap_opts *o)
{
	struct watch_cmd *c = obj;

	if (c->whole)
		return;
	o->copy[ST_DIR_IN] = ST_COPY_HEAD;
	o->copy[ST_DIR_OUT] = ST_COPY_HEAD;
	o->head_bytes = c->head_bytes ? c->head_bytes : WATCH_HEAD_BYTES_DEFAULT;
}

/* The fallback: a connection the headers-only policy lost a head of is copied whole. */
static void copy_whole(void *ctx, const struct st_flow_key *k)
{
	struct watch_cmd *c = ctx;

	if (!c->sub || st_tapsub__copy_whole(c->sub, k))
		c->whole_errors++;
}

/* HTTP/2 on a port: its connections are copied whole from their first segment. */
static void copy_port_whole(void *ctx, uint16_t port)
{
	struct watch_cmd *c = ctx;

	if (!c->sub || st_tapsub__copy_port_whole(c->sub, port))
		c->whole_errors++;
}

/* ---- metrics, report ---------------------------------------------------------------------- */

static void add_stats(struct watch_cmd *c, struct st_statline *l, const struct st_tap_summary *ts)
{
	struct st_watch_stats ws;
	struct st_reasm_stats rs;
	struct watch_run_stats run = {
		.metrics_errors = c->metrics_errors, .report_errors = c->report_errors,
		.fallback_errors = c->whole_errors,
	};

	st_watch__stats(c->w, &ws);
	st_reasm__stats(c->r, &rs);
	run.mem_peak = rs.mem_peak;
	st_statline_add_table(l, st_watch_stat_desc, st_watch_stat_n, &ws);
	st_statline_add_table(l, st_watch_run_stat_desc, st_watch_run_stat_n, &run);
	if (ts)
		st_statline_add_table(l, st_tap_stat_desc, st_tap_stat_n, ts);
}

static void tap_summary(struct watch_cmd *c)
{
	if (c->sub)
		st_tapsub__summary(c->sub, &c->tap_sum);
}

static void series(void *obj, struct st_prom *p, const struct st_prom_labels *base)
{
	struct watch_cmd *c = obj;
	struct st_prom_labels l = *base;

	for (unsigned i = 0; i < c->nlabels; i++)
		st_prom_labels_add(&l, c->labels[i].name, c->labels[i].value);
	st_watch_agg_prom(st_watch__agg(c->w), p, &l);
}

/* The command's exposition: its counters (command="watch"), then the series (job="watch"). */
static int fill_metrics(void *ctx, FILE *f)
{
	struct watch_cmd *c = ctx;
	struct st_prom_labels base = { 0 };
	struct st_statline l;
	struct st_prom *p = st_prom__new();
	int err;

	if (!p)
		return -ENOMEM;
	tap_summary(c);
	st_statline_init(&l);
	add_stats(c, &l, &c->tap_sum);
	err = st_statline_prometheus(&l, f, "watch");
	st_prom_labels_add(&base, "job", "watch");
	st_prom_labels_add(&base, "command", "watch");
	series(c, p, &base);
	if (!err)
		err = st_prom__write(p, f);
	st_prom__free(p);
	return err;
}

static int fill_report(void *ctx, FILE *f)
{
	struct watch_cmd *c = ctx;
	struct st_statline l;
	struct st_watch_run run = {
		.command = "watch", .job = "watch", .labels = c->labels, .nlabels = c->nlabels,
		.host = c->host, .start_ns = c->start_ns, .now_ns = st_loop_realtime_ns(),
		.counters = &l, .final = c->final,
	};

	tap_summary(c);
	st_statline_init(&l);
	add_stats(c, &l, &c->tap_sum);
	st_watch_agg_json(f, st_watch__agg(c->w), &run);
	return ferror(f) ? -EIO : 0;
}

/* One output rewritten; a failure said once, counted (the exit status is then 1). */
static void write_file(struct watch_cmd *c, const char *opt, const char *path,
		       int (*fill)(void *, FILE *), uint64_t *errors)
{
	int err = st_output_write(path, fill, c, ST_OUT_NONBLOCK, c->out_mode);

	/* a FIFO without a reader, or a slow one, is skipped, not waited on */
	if (err && err != -ENXIO && err != -EAGAIN && !(*errors)++)
		pr_err("watch: %s %s: %s (the run will exit 1)", opt, path, st_output_strerror(err));
}

static void write_files(struct watch_cmd *c, bool final)
{
	if (c->metrics)
		write_file(c, "--metrics", c->metrics, fill_metrics, &c->metrics_errors);
	c->final = final; /* the last report says so */
	if (c->report_json)
		write_file(c, "--report-json", c->report_json, fill_report, &c->report_errors);
}

/* ---- the job ------------------------------------------------------------------------------ */

static int start(void *obj)
{
	struct watch_cmd *c = obj;
	struct st_reasm_config rc = { 0 };
	struct st_watch_config wc = {
		.agg = {
			.patterns = c->patterns, .npatterns = c->npatterns,
			.max_endpoints = c->max_endpoints, .max_series = c->max_series,
			.lat = c->lat, .size = c->size,
		},
		.max_conns = c->max_conns,
		.copy_whole = c->whole ? NULL : copy_whole,
		.copy_port_whole = c->whole ? NULL : copy_port_whole,
		.copy_whole_ctx = c,
	};
	int err;

	c->start_ns = st_loop_realtime_ns();
	if (gethostname(c->host, sizeof(c->host) - 1))
		snprintf(c->host, sizeof(c->host), "?");
	if (c->metrics && (err = st_output_check(c->metrics, ST_OUT_NONBLOCK, c->out_mode))) {
		pr_err("watch: --metrics %s: %s", c->metrics, st_output_strerror(err));
		return -1;
	}
	if (c->report_json &&
	    (err = st_output_check(c->report_json, ST_OUT_NONBLOCK, c->out_mode))) {
		pr_err("watch: --report-json %s: %s", c->report_json, st_output_strerror(err));
		return -1;
	}
	c->w = st_watch__new(&wc);
	rc.max_mem = c->h.target.max_mem ? c->h.target.max_mem : WATCH_MAX_MEM_DEFAULT;
	rc.ports = c->h.target.ports;
	rc.n_ports = c->h.target.n_ports;
	/* whoever makes the traffic chooses the 4-tuples: the table's hash is seeded per run */
	rc.hash_seed = st_connmap_random_seed();
	c->r = c->w ? st_reasm__new(&rc, &st_watch_reasm_ops, c->w) : NULL;
	if (!c->r) {
		pr_err("watch: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int on_httpd(void *ctx)
{
	st_httpd__run(ctx);
	return 0;
}

static int attached(void *obj, struct st_loop *l, struct st_tapsub *sub)
{
	struct watch_cmd *c = obj;

	c->sub = sub;
	if (c->listen) {
		const struct st_httpd_ops ops = { .metrics = fill_metrics, .ctx = c };
		char err[256];

		c->httpd = st_httpd__start(c->listen, &ops, err, sizeof(err));
		if (!c->httpd) {
			pr_err("watch: --metrics-listen %s: %s", c->listen, err);
			return -1;
		}
		if (st_loop__add(l, st_httpd__fd(c->httpd), on_httpd, c->httpd)) {
			pr_err("watch: --metrics-listen %s: event loop full", c->listen);
			return -1;
		}
		pr_info("watch: metrics on http://%s/metrics (port %u)", c->listen,
			st_httpd__port(c->httpd));
	}
	pr_info("watch: measuring %zu port(s) on %s %s", c->h.target.n_ports,
		c->h.target.iface ? "interface" : "cgroup",
		c->h.target.iface ? c->h.target.iface : c->h.target.cgroup);
	return 0;
}

static void detach_loop(void *obj, struct st_loop *l)
{
	struct watch_cmd *c = obj;

	tap_summary(c); /* the counters stay after the detach */
	c->sub = NULL;
	if (c->httpd) {
		st_loop__del(l, st_httpd__fd(c->httpd));
		st_httpd__stop(c->httpd);
		c->httpd = NULL;
	}
}

static int segment(void *obj, const struct st_segment *s)
{
	struct watch_cmd *c = obj;

	/* the kernel filters ports and peers; this is the user-space check of --host */
	if (!st_target_hosts_keep(&c->h.target, &s->key))
		return 0;
	st_reasm__feed(c->r, s);
	return 0;
}

static int tick(void *obj, uint64_t now)
{
	struct watch_cmd *c = obj;

	st_reasm__tick(c->r, st_loop_realtime_ns());
	if (c->httpd)
		st_httpd__run(c->httpd);
	if (now - c->last_write >= (uint64_t)(c->interval * 1e9)) {
		c->last_write = now;
		write_files(c, false);
	}
	return 0;
}

static int finish(void *obj, int err, bool ran, const struct st_tap_summary *ts, const char *what)
{
	struct watch_cmd *c = obj;
	struct st_statline l;

	if (ts)
		c->tap_sum = *ts;
	st_reasm__flush(c->r);
	write_files(c, true);
	st_statline_init(&l);
	add_stats(c, &l, &c->tap_sum);
	st_statline_print(&l, what);
	return err || c->metrics_errors || c->report_errors ? ST_EXIT_RUNTIME : ST_EXIT_OK;
}

static void stats(void *obj, struct st_statline *l, const struct st_tap_summary *ts)
{
	add_stats(obj, l, ts);
}

static void destroy(void *obj)
{
	struct watch_cmd *c = obj;

	if (c->httpd)
		st_httpd__stop(c->httpd);
	st_reasm__free(c->r);
	st_watch__free(c->w);
}



/* Where the measurements go: the metrics file, the endpoint, the report. */
static void describe(void *obj, struct st_job_desc *d)
{
	struct watch_cmd *c = obj;
	size_t n = 0;

	if (c->metrics)
		n += (size_t)snprintf(d->outputs + n, sizeof(d->outputs) - n, "metrics %.200s",
				      c->metrics);
	if (c->listen && n < sizeof(d->outputs))
		n += (size_t)snprintf(d->outputs + n, sizeof(d->outputs) - n, "%shttp://%.100s/metrics",
				      n ? ", " : "", c->listen);
	if (c->report_json && n < sizeof(d->outputs))
		snprintf(d->outputs + n, sizeof(d->outputs) - n, "%sreport %.200s", n ? ", " : "",
			 c->report_json);
	if (!d->outputs[0] && c->in_daemon)
		snprintf(d->outputs, sizeof(d->outputs), "the daemon's /metrics");
}

/* Exchanges measured, what could not be, what the kernel lost. */
static void brief(void *obj, const struct st_tap_summary *ts, struct st_brief *b)
{
	struct watch_cmd *c = obj;
	struct st_watch_stats ws;

	st_watch__stats(c->w, &ws);
	st_brief_add(b, "exchanges", ws.exchanges, ST_BRIEF_RATE);
	st_brief_add(b, "unanswered", ws.unanswered, ST_BRIEF_SUB);
	st_brief_add(b, "incomplete", ws.incomplete, ST_BRIEF_SUB);
	st_brief_add(b, "lost_exchanges", ws.lost_exchanges, 0);
	st_brief_add(b, "endpoints", ws.endpoints, 0);
	st_brief_add(b, "series", ws.series, 0);
	st_brief_add(b, "fallbacks", ws.fallbacks, 0);
	st_brief_add(b, "lost", ts->lost, ST_BRIEF_BYTES);
}


const struct st_job_kind st_watch_kind = {
	.name = "watch",
	.usage_head = usage_head,
	.size = sizeof(struct watch_cmd),
	.tick_ms = ST_TICK_MS, /* the fallback's lag: what the kernel elides meanwhile is lost */
	.init = init,
	.optsets = optsets,
	.check = check,
	.target = st_job_head_target,
	.tap_opts = tap_opts,
	.run_opts = st_job_head_run_opts,
	.duration = st_job_head_duration,
	.describe = describe,
	.brief = brief,
	.start = start,
	.attached = attached,
	.detach_loop = detach_loop,
	.segment = segment,
	.tick = tick,
	.finish = finish,
	.stats = stats,
	.series = series,
	.destroy = destroy,
};

int cmd_watch(int argc, char **argv)
{
	return st_job_command(&st_watch_kind, argc, argv);
}
