/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap shadow` (live: tap -> engine) and `shadowtap replay` (pcap ->
 * engine). Both share the engine's options; see docs/SHADOW.md. `replay --rate`
 * (or --steps) is a load test (docs/LOAD.md): the recording surveyed once, then
 * fed ahead of a schedule (load.h) as many passes as it lasts.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "compare.h"
#include "compare_opts.h"
#include "correlate_opts.h"
#include "hdr.h"
#include "job.h"
#include "load.h"
#include "load_opts.h"
#include "load_report.h"
#include "log.h"
#include "loop.h"
#include "optparse.h"
#include "opts.h"
#include "output.h"
#include "pcapin.h"
#include "shadow.h"
#include "tap.h"

#define TIMERS_EVERY_NS (100ull * 1000000)
#define REPLAY_BATCH 4096
#define LOAD_BUSY_WAIT_NS (1000ull * 1000) /* queues half full: read on once the target took some */
#define LOAD_FEED_BATCH 256               /* segments fed per wake: the next wake sends what is due */
#define LOAD_CACHE_MAX (256ull << 20)     /* the first pass kept for the next ones, at most */
#define SET_HDR_MAX 512
/* Reassembly cap. Under ring overflow, half-lost streams hold out-of-order bytes for up to
 * gap_wait each: with reassembly's own default (256 MiB) that took the agent from 20 MB to
 * 157 MB RSS with --ring-mb 8 --max-queue-mb 8 (docs/ARCHITECTURE.md, "Memory"). */
#define SHADOW_MAX_MEM_DEFAULT (64ull << 20)
#define SHADOW_MAX_MEM_DEFAULT_STR "64M"


struct shadow_cmd {
	struct st_job_head h; /* first (job.h): the target (ports also filter a pcap), -v -q
			       * --stats, --duration */
	const char *cmd;             /* "shadow" or "replay" */
	bool replay;
	struct st_shadow_config cfg;
	regex_t match_re, exclude_re;
	bool match_set, exclude_set;
	char set_bufs[ST_SHADOW_MAX_SET][SET_HDR_MAX];
	char mark_buf[SET_HDR_MAX];
	char methods_buf[1024];
	const char *metrics;         /* --metrics FILE: Prometheus text format, rewritten atomically */
	uint64_t metrics_errors;     /* its writes that failed (the first said; the exit status 1) */
	mode_t out_mode;             /* --output-mode */
	double drain_s;
	double speed;
	bool fast;
	unsigned pct_sum;            /* the /PCT shares of the targets */
	const char *file;
	/* run state */
	struct st_shadow *sh;
	struct st_loop *loop;
	struct st_tapsub *sub;       /* live: its share of the tap while attached */
	struct st_pcapin *pin;
	struct st_segment seg;       /* replay: the next segment, when have_seg */
	bool have_seg, eof, flushed;
	int read_err;
	uint64_t t0_pcap, t0_mono;
	uint64_t last_timers, last_stats, drain_until;
	uint64_t filtered_segs;
	uint64_t kept_segs;          /* replay: segments of --port */
	struct st_ports_seen seen;   /* replay: where the file's connections went */
	struct st_progress prog;     /* replay: --stats, the status line */
	uint64_t started_ns;         /* replay: when the file began to play (CLOCK_MONOTONIC) */
	struct st_tap_summary tap_sum; /* the tap's counters, kept after the detach */
	struct st_cmp_opts cmp;
	struct st_compare *compare;
	struct st_correlate_opts cor;
	const char *what;            /* the summary line's name ("summary job=NAME") */
	/* replay --rate/--steps: a load test */
	struct st_load_opts lo;
	struct st_load *load;
	unsigned pass;               /* the recording's pass being fed */
	bool cached;                 /* the passes after the first come from the engine's cache */
	uint64_t pass_span;          /* a pass's capture times move on by this much each pass */
	uint64_t feed_wake;          /* the feeder waits for its time until then */
	uint64_t last_report;
	bool drained;                /* the run ended by itself: nothing is cut short */
};
_Static_assert(offsetof(struct shadow_cmd, h) == 0, "job.h: the head first");

static int bad(struct shadow_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line on stderr naming the command; the usage error status. */
static int bad(struct shadow_cmd *c, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_err("%s: %s", c->cmd, msg);
	return ST_EXIT_USAGE;
}

/* "Name: value" -> name, value (in buf). */
static int split_header(char *buf, size_t size, const char *s, const char **name,
			const char **value)
{
	char *colon, *v, *e;

	if (strlen(s) >= size)
		return -1;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	if (!colon || colon == buf)
		return -1;
	*colon = 0;
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	*e = 0;
	*name = buf;
	*value = v;
	return 0;
}

/* One connection's queue can never hold more than all of them: a given --conn-queue-mb over
 * --max-queue-mb is refused, the default one shrinks to fit. */
static int queue_caps(struct shadow_cmd *c)
{
	struct st_shadow_config *cfg = &c->cfg;
	uint64_t all = cfg->max_queue ? cfg->max_queue : ST_SHADOW_MAX_QUEUE_DEFAULT;

	if (!cfg->conn_queue_max && all < ST_SHADOW_CONN_QUEUE_DEFAULT)
		cfg->conn_queue_max = all;
	if (cfg->conn_queue_max <= all)
		return 0;
	pr_err("%s: --conn-queue-mb %llu is more than --max-queue-mb %llu (all queues together)",
	       c->cmd, (unsigned long long)(cfg->conn_queue_max >> 20),
	       (unsigned long long)(all >> 20));
	return -1;
}

/* ---- options (optparse rows) ------------------------------------------------------------ */

#define CMD(o) ((struct shadow_cmd *)(o))

static int opt_to(void *o, const char *val, char *err, size_t errlen)
{
	struct st_shadow_config *cfg = &CMD(o)->cfg;

	if (cfg->n_targets >= ST_SHADOW_MAX_TARGETS) {
		snprintf(err, errlen, "at most %d targets (%s)", ST_SHADOW_MAX_TARGETS, val);
		return -1;
	}
	if (st_shadow_parse_target(val, &cfg->targets[cfg->n_targets], err, errlen))
		return -1;
	CMD(o)->pct_sum += cfg->targets[cfg->n_targets++].pct;
	return 0;
}

static int opt_sample_by(void *o, const char *val, char *err, size_t errlen)
{
	if (!strcmp(val, "request") || !strcmp(val, "connection")) {
		CMD(o)->cfg.sample_by_request = !strcmp(val, "request");
		return 0;
	}
	snprintf(err, errlen, "'%s' is not connection or request", val);
	return -1;
}

static int opt_methods(void *o, const char *val, char *err, size_t errlen)
{
	struct shadow_cmd *c = o;

	return st_opt_methods(c->methods_buf, sizeof(c->methods_buf), c->cfg.methods,
			      &c->cfg.n_methods, ST_SHADOW_MAX_METHODS, val, err, errlen);
}

static int opt_match_path(void *o, const char *val, char *err, size_t errlen)
{
	return st_opt_regex(&CMD(o)->match_re, &CMD(o)->match_set, val, err, errlen);
}

static int opt_exclude_path(void *o, const char *val, char *err, size_t errlen)
{
	return st_opt_regex(&CMD(o)->exclude_re, &CMD(o)->exclude_set, val, err, errlen);
}

static int opt_set_header(void *o, const char *val, char *err, size_t errlen)
{
	struct st_shadow_config *cfg = &CMD(o)->cfg;

	if (cfg->n_set >= ST_SHADOW_MAX_SET ||
	    split_header(CMD(o)->set_bufs[cfg->n_set], SET_HDR_MAX, val, &cfg->set[cfg->n_set].name,
			 &cfg->set[cfg->n_set].value)) {
		snprintf(err, errlen, "'%s' is not 'Name: value'", val);
		return -1;
	}
	cfg->n_set++;
	return 0;
}

static int opt_mark(void *o, const char *val, char *err, size_t errlen)
{
	struct st_shadow_config *cfg = &CMD(o)->cfg;

	if (split_header(CMD(o)->mark_buf, SET_HDR_MAX, val, &cfg->mark_name, &cfg->mark_value)) {
		snprintf(err, errlen, "'%s' is not 'Name: value'", val);
		return -1;
	}
	return 0;
}

static int opt_no_mark(void *o, const char *val, char *err, size_t errlen)
{
	CMD(o)->cfg.mark_name = NULL;
	CMD(o)->cfg.mark_value = NULL;
	return 0;
}

static const char *const protos[] = { "auto", "http", "raw", "h2", NULL };
static const char *const releases[] = { "answered", "framed", NULL };

/* The engine's options: shadow and replay alike. */
static const struct st_opt engine_opts[] = {
	ST_OPT_FUNC("to", 0, "HOST:PORT[/PCT]", ST_OPTF_REPEAT, opt_to,
		    "a shadow target (repeatable); /PCT: only that share of\n"
		    "the connections (shares of several targets do not overlap)"),
	ST_OPT_CHOICE("proto", 0, struct shadow_cmd, cfg.proto, "auto|http|raw|h2", protos,
		      "http: HTTP/1.x and HTTP/2 (h2c, TLS, Upgrade: h2c), each\n"
		      "request or stream framed; h2: HTTP/2 only; raw: bytes as\n"
		      "they come; auto (default): detected per connection (once a\n"
		      "port spoke HTTP, other bytes on it are not replayed raw)"),
	ST_OPT_CHOICE("release", 0, struct shadow_cmd, cfg.release, "answered|framed", releases,
		      "when a request goes to the shadows: once production\n"
		      "answered it, never if production refused it (default); or\n"
		      "as soon as it is framed (lower latency: strict framing alone\n"
		      "decides, a request production then refuses has gone out)"),
	ST_OPT_FLAG("resync", 0, struct shadow_cmd, cfg.resync,
		    "join connections that started before the agent, and go on\n"
		    "after a capture gap, at the next request line (risk: a body\n"
		    "that looks like a request can pass; no production check)"),
	ST_OPT_DOUBLE("sample", 0, struct shadow_cmd, cfg.sample_pct, "PCT", 0.01, 100,
		      "replay PCT% of the traffic (default 100)"),
	ST_OPT_FUNC("sample-by", 0, "connection|request", 0, opt_sample_by,
		    "what --sample picks (default connection, by a stable\n"
		    "hash: a session is shadowed whole or not at all)"),
	ST_OPT_FUNC("match-method", 0, "M[,M...]", ST_OPTF_REPEAT, opt_methods,
		    "only these methods (repeatable)"),
	ST_OPT_FUNC("match-path", 0, "REGEX", 0, opt_match_path,
		    "only request targets (HTTP/2: :path) matching REGEX\n"
		    "(POSIX extended; gRPC: '^/pkg.Service/Method')"),
	ST_OPT_FUNC("exclude-path", 0, "REGEX", 0, opt_exclude_path,
		    "not request targets matching REGEX"),
	ST_OPT_FLAG("safe-only", 0, struct shadow_cmd, cfg.safe_only,
		    "only GET, HEAD and OPTIONS (no raw streams; gRPC calls\n"
		    "only where --match-path names their methods)"),
	ST_OPT_FUNC("set-header", 0, "'Name: value'", ST_OPTF_REPEAT, opt_set_header,
		    "set a header field (repeatable)"),
	ST_OPT_STRING("set-host", 0, struct shadow_cmd, cfg.host, "VALUE",
		      "the Host header (HTTP/2: :authority) sent to the shadows"),
	ST_OPT_FUNC("mark", 0, "'Name: value'", 0, opt_mark,
		    "the header marking shadow requests (default 'X-Shadowtap: 1')"),
	ST_OPT_FUNC("no-mark", 0, NULL, ST_OPTF_NOVAL, opt_no_mark, "do not mark shadow requests"),
	ST_OPT_SECONDS("drain", 0, struct shadow_cmd, drain_s, 0, 3600,
		      "at the end, wait up to SEC for shadows to take what is\n"
		      "queued (default 2 live, 10 replay)"),
	ST_OPT_STRING("metrics", 0, struct shadow_cmd, metrics, "FILE",
		      "the counters in Prometheus text format, rewritten every\n"
		      "--stats SEC (default 5) and at the end (node_exporter's\n"
		      "textfile collector reads it)"),
};

/* The engine's limits: --help lists them under their heading. */
static const struct st_opt engine_limit_opts[] = {
	ST_OPT_UINT("max-head-kb", 0, struct shadow_cmd, cfg.head_cap, "N", 1, 1024, ST_OPTF_KIB,
		    "largest request head framed (default 64; nginx: 32)"),
	ST_OPT_UINT("max-queue-mb", 0, struct shadow_cmd, cfg.max_queue, "N", 1, 1 << 20,
		    ST_OPTF_MIB, "all output queues together, MiB (default 256)"),
	ST_OPT_UINT("conn-queue-mb", 0, struct shadow_cmd, cfg.conn_queue_max, "N", 1, 4096,
		    ST_OPTF_MIB, "per shadow connection, MiB (default 16, at most --max-queue-mb)"),
};

static const struct st_opt live_opts[] = {
	ST_OPT_SECONDS("duration", 0, struct shadow_cmd, h.duration, 0.001, 1e9,
		      "stop after SEC seconds (default: until SIGINT/SIGTERM)"),
	/* replay's --rate is a load test's (st_load_opts) */
	ST_OPT_DOUBLE("rate", 0, struct shadow_cmd, cfg.rate, "RPS", 0.001, 1e9,
		      "at most RPS requests/s to the shadows (beyond: dropped)"),
};

static const struct st_opt replay_opts[] = {
	ST_OPT_DOUBLE("speed", 0, struct shadow_cmd, speed, "X", 0.001, 1e6,
		      "timing scaled by X (2 = twice as fast; default 1)"),
	ST_OPT_FLAG("fast", 0, struct shadow_cmd, fast,
		    "as fast as the shadows take it (waits when queues fill)"),
	ST_OPT_UINT("multiply", 0, struct shadow_cmd, cfg.multiply, "N", 1, ST_SHADOW_MAX_SLOTS, 0,
		    "replay every connection N times per target"),
};

static const char shadow_head[] =
	"Usage: shadowtap shadow (--iface IFACE | --cgroup PATH) --port P\n"
	"                        --to HOST:PORT [--to ...] [options]\n\n"
	"Captures a service's traffic in the kernel and replays every client request that\n"
	"production ran to shadow targets, one shadow connection per client connection.\n"
	"Production is never waited for: when a shadow is slow or down, whole requests are\n"
	"dropped and counted. The last stderr line is the summary: shadowtap: summary ...\n\n";

static const char replay_head[] =
	"Usage: shadowtap replay FILE --port P --to HOST:PORT [--to ...] [options]\n"
	"       shadowtap replay FILE --port P --to HOST:PORT --rate RPS [--duration SEC]\n"
	"                        [--ramp SEC] [--connections N] [--pace recorded|constant]\n"
	"                        [--report FILE.html] [--report-json FILE.json]\n"
	"       shadowtap replay FILE --port P --to HOST:PORT --steps 'RPS,RPS,...' [--step-sec N]\n\n"
	"Replays the client->server requests of a pcap/pcapng file (- for stdin) to shadow\n"
	"targets, one shadow connection per recorded connection, with the original timing;\n"
	"the recorded answers decide what production ran. --port names the service.\n"
	"With --rate or --steps, a load test: each request is due at its time on a schedule\n"
	"at that rate (the recording's order and mix, looped), its latency measured from\n"
	"then (docs/LOAD.md); --report and --report-json are the load test's.\n\n";

static int check_args(struct shadow_cmd *c, int argc, char **argv, int pos);

/* The option sets of both commands: the input's first (the live target, or a file's filters
 * and pacing), then the engine's, compare's and the common ones; tuning under headings. */
static size_t optsets(struct shadow_cmd *c, struct st_optset *sets)
{
	size_t n = 0;

	if (c->replay) {
		sets[n++] = (struct st_optset){ st_filter_opts, st_filter_opts_n, &c->h.target,
						NULL };
		sets[n++] = (struct st_optset)ST_OPTSET(replay_opts, c);
		sets[n++] = (struct st_optset){ st_load_opts, st_load_opts_n, &c->lo,
						ST_OPT_TITLE_LOAD };
	} else {
		sets[n++] = (struct st_optset){ st_target_opts, st_target_opts_n, &c->h.target,
						NULL };
		sets[n++] = (struct st_optset)ST_OPTSET(live_opts, c);
	}
	sets[n++] = (struct st_optset)ST_OPTSET(engine_opts, c);
	sets[n++] = (struct st_optset){ st_cmp_opts, st_cmp_opts_n, &c->cmp, NULL };
	sets[n++] = (struct st_optset){ st_run_opts, st_run_opts_n, &c->h.run, NULL };
	sets[n++] = (struct st_optset){ st_output_opts, st_output_opts_n, &c->out_mode, NULL };
	sets[n++] = (struct st_optset){ st_redact_opts, st_redact_opts_n, &c->cmp.redact,
					ST_OPT_TITLE_REDACT };
	sets[n++] = (struct st_optset){ st_cmp_tuning_opts, st_cmp_tuning_opts_n, &c->cmp,
					ST_OPT_TITLE_COMPARE };
	if (!c->replay)
		sets[n++] = (struct st_optset){ st_tap_tuning_opts, st_tap_tuning_opts_n,
						&c->h.target, ST_OPT_TITLE_TAP };
	sets[n++] = (struct st_optset){ st_correlate_opts, st_correlate_opts_n, &c->cor,
					ST_CORRELATE_OPTS_TITLE };
	sets[n++] = (struct st_optset)ST_OPTSET_T(engine_limit_opts, c, ST_OPT_TITLE_LIMITS);
	sets[n++] = (struct st_optset){ st_reasm_opts, st_reasm_opts_n, &c->h.target,
					ST_OPT_TITLE_LIMITS };
	return n;
}

static int parse(struct shadow_cmd *c, int argc, char **argv)
{
	struct st_optset sets[ST_JOB_MAX_OPTSETS];
	size_t n = optsets(c, sets);
	int r, pos;

	r = st_optset_parse(sets, n, c->cmd, c->replay ? replay_head : shadow_head, argc, argv, &pos);
	if (r)
		return r;
	return check_args(c, argc, argv, pos);
}

/* replay --rate/--steps: what a load test cannot do with the other options. 0, or
 * ST_EXIT_USAGE after one line. */
static int load_checks(struct shadow_cmd *c)
{
	char err[256];

	if (st_load_opts_check(&c->lo, &c->cmp, false, err, sizeof(err)))
		return bad(c, "%s", err);
	if (!c->lo.on)
		return 0;
	if (c->fast || c->speed > 0)
		return bad(c, "%s sets the pace: no --speed or --fast",
			   c->lo.nsteps ? "--steps" : "--rate");
	if (c->cfg.multiply > 1)
		return bad(c, "--multiply: a load test sets its rate with %s",
			   c->lo.nsteps ? "--steps" : "--rate");
	if (c->cfg.n_targets > 1)
		return bad(c, "a load test has one target (--to), not %u", c->cfg.n_targets);
	if (c->cfg.proto == ST_PROTO_RAW)
		return bad(c, "%s", "a load test times HTTP requests: no --proto raw");
	if (c->cfg.proto == ST_PROTO_H2)
		return bad(c, "%s", "a load test replays HTTP/1.x (HTTP/2 connections are skipped): "
			   "no --proto h2");
	if (!strcmp(c->file, "-"))
		return bad(c, "a load test reads FILE once to survey it, then as many times as "
			   "it runs: %s", "not stdin");
	return 0;
}

/* After the options: positional arguments, then the checks across options. 0, or
 * ST_EXIT_USAGE after one line. */
static int check_args(struct shadow_cmd *c, int argc, char **argv, int pos)
{
	struct st_shadow_config *cfg = &c->cfg;
	char err[256];
	int r;

	if (c->replay) {
		if (pos >= argc)
			return bad(c, "a pcap FILE is required (see shadowtap %s --help)", c->cmd);
		c->file = argv[pos++];
		if (!c->h.target.n_ports)
			return bad(c, "--port P is required: the service's port (%s)",
				   "it tells clients from servers");
	}
	if (pos < argc && argv[pos][0] == '$')
		return bad(c, "unexpected argument '%s' (a path for --unordered-arrays is given as "
			   "--unordered-arrays=PATH)", argv[pos]);
	if (pos < argc)
		return bad(c, "unexpected argument '%s'", argv[pos]);
	if (c->replay && (r = load_checks(c)))
		return r;
	if (st_cmp_opts_check(&c->cmp, &c->cfg, err, sizeof(err)))
		return bad(c, "%s", err);
	if (st_correlate_opts_check(&c->cor, &c->cfg, err, sizeof(err)))
		return bad(c, "%s", err);
	if (c->cor.on && c->lo.on)
		return bad(c, "%s", "--correlate is not for a load test (--rate, --steps): it replays "
			   "requests as recorded");
	if (c->cmp.redact.none && st_redact_added(&c->cmp.redact))
		return bad(c, "%s", "--no-redact and --redact-header/--redact-query/--redact-field "
			   "contradict each other");
	{
		/* in a load test --report and --report-json are its, compare's go next to them */
		const char *paths[] = { c->metrics, c->cmp.report, c->cmp.report_json, c->cmp.diffs,
					c->lo.report, c->lo.report_json, c->cor.dump };
		const char *opts[] = { "--metrics", "--report", "--report-json", "--diffs",
				       "--report", "--report-json", "--correlate-dump" };

		if (st_output_distinct(paths, opts, 7, err, sizeof(err)))
			return bad(c, "%s", err);
	}
	if (!c->replay && st_target_check(&c->h.target, c->cmd))
		return ST_EXIT_USAGE;
	if (!cfg->n_targets)
		return bad(c, "--to HOST:PORT is required (see shadowtap %s --help)", c->cmd);
	if (c->pct_sum > 100)
		return bad(c, "--to: the /PCT shares add up to more than 100 (%s)", "they split "
			   "the connections between targets");
	if (queue_caps(c))
		return ST_EXIT_USAGE;
	if (c->fast && c->speed > 0)
		return bad(c, "%s: give --speed or --fast, not both", "--fast");
	if (cfg->safe_only && cfg->proto == ST_PROTO_RAW)
		return bad(c, "%s: --proto raw cannot tell safe requests", "--safe-only");
	if ((uint64_t)cfg->n_targets * (cfg->multiply ? cfg->multiply : 1) > ST_SHADOW_MAX_SLOTS)
		return bad(c, "--multiply: targets x N must be at most %s", "1024");
	if (cfg->mark_name || cfg->n_set || cfg->host) {
		struct st_http_rewrite rw = {
			.set = cfg->set, .nset = cfg->n_set, .host = cfg->host,
			.marker_name = cfg->mark_name, .marker_value = cfg->mark_value,
		};

		if (st_http_rewrite_check(&rw))
			return bad(c, "%s: a header name is not a token, a value has control "
				      "characters, or it sets Content-Length/Transfer-Encoding",
				   "--set-header/--set-host/--mark");
	}
	if (c->match_set)
		cfg->match_path = &c->match_re;
	if (c->exclude_set)
		cfg->exclude_path = &c->exclude_re;
	return 0;
}

/* The tap's counters; kept when the tap is gone (the summary comes after the detach). */
static void tap_summary(struct shadow_cmd *c)
{
	if (c->sub)
		st_tapsub__summary(c->sub, &c->tap_sum);
}

struct metrics_fill {
	struct shadow_cmd *c;
	const struct st_statline *l;
};

/* The counters (command="shadow"), then tap compare's families (compare.h). */
static int fill_metrics(void *ctx, FILE *f)
{
	const struct metrics_fill *m = ctx;
	struct st_prom_labels base = { 0 };
	struct st_prom *p;
	int err = st_statline_prometheus(m->l, f, m->c->cmd);

	if (err || !m->c->compare)
		return err;
	p = st_prom__new();
	if (!p)
		return -ENOMEM;
	st_prom_labels_add(&base, "command", m->c->cmd);
	st_compare__series(m->c->compare, p, &base);
	err = st_prom__write(p, f);
	st_prom__free(p);
	return err;
}

/* The counters in Prometheus text format, replacing the file atomically. */
static void write_metrics(struct shadow_cmd *c, const struct st_statline *l)
{
	struct metrics_fill m = { c, l };
	/* replaced atomically when a regular file; /dev/null or a FIFO is written in place
	 * (never renamed over: as root that would replace the device), without waiting */
	int err = st_output_write(c->metrics, fill_metrics, &m, ST_OUT_NONBLOCK, c->out_mode);

	/* a FIFO without a reader (ENXIO) or with a slow one (EAGAIN) is skipped, not waited
	 * on; anything else is the output failing: said once, counted, exit status 1 */
	if (err && err != -ENXIO && err != -EAGAIN && !c->metrics_errors++)
		pr_err("%s: --metrics %s: %s (the run will exit 1)", c->cmd, c->metrics,
		       st_output_strerror(err));
}

/* The metrics with labels of their own (never on the summary line): each target's state,
 * and tap compare's verdict as one gauge per verdict word (1 for the current one). */
static void add_labeled(struct shadow_cmd *c, struct st_statline *l)
{
	static const enum st_cmp_outcome results[] = { ST_CMP_PASS, ST_CMP_FAIL, ST_CMP_NOT_ENOUGH };

	for (unsigned i = 0; i < c->cfg.n_targets; i++) {
		const char *name = c->cfg.targets[i].name;
		struct st_shadow_target_stats t;

		st_shadow__target_stats(c->sh, i, &t);
		st_statline_add_labeled(l, "shadow_target_up", "target", name, t.up, ST_STAT_GAUGE,
					"1 while the shadow target takes connections (0: its last "
					"connect was refused or failed)");
		st_statline_add_labeled(l, "shadow_target_downs", "target", name, t.downs,
					ST_STAT_COUNTER, "times the shadow target went down");
		st_statline_add_labeled(l, "shadow_target_dropped", "target", name, t.dropped_down,
					ST_STAT_COUNTER, "requests dropped because the shadow target "
					"was down or its connection failed");
	}
	if (c->compare) {
		struct st_cmp_verdict v;

		st_compare__verdict(c->compare, &v);
		for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++)
			st_statline_add_labeled(l, "compare_verdict", "verdict",
						st_cmp_outcome_name(results[i]), v.result == results[i],
						ST_STAT_GAUGE, "tap compare's verdict: 1 for the current "
						"one (pass, fail, not_enough_data), as of the last report "
						"interval");
	}
}

static void print_stats(struct shadow_cmd *c, const char *what)
{
	struct st_shadow_stats st;
	struct st_statline l;

	st_shadow__stats(c->sh, &st);
	st_statline_init(&l);
	st_statline_add_table(&l, st_shadow_stat_desc, st_shadow_stat_n, &st);
	if (c->compare) {
		struct st_compare_stats cs;

		st_compare__stats(c->compare, &cs);
		st_statline_add_table(&l, st_compare_stat_desc, st_compare_stat_n, &cs);
	}
	if (c->load)
		st_load__statline(c->load, &l);
	if (!c->replay) {
		/* requests the kernel could not hand over never show up as requests: say so */
		tap_summary(c);
		st_statline_add_table(&l, st_tap_stat_desc, st_tap_stat_n, &c->tap_sum);
	}
	add_labeled(c, &l);
	if (c->metrics)
		write_metrics(c, &l);
	if (c->metrics_errors)
		st_statline_add(&l, "metrics_errors", c->metrics_errors, ST_STAT_COUNTER,
				"--metrics writes that failed");
	if (strcmp(what, "metrics"))
		st_statline_print(&l, what);
}

/* Requests in and out, what was dropped and why, the shadows' answers by status class, the
 * queues; tap compare's pairs. The --stats line and the status line (both commands). */
static void brief(struct shadow_cmd *c, const struct st_tap_summary *ts, struct st_brief *b)
{
	st_shadow__brief(c->sh, b);
	if (ts)
		st_brief_add(b, "lost", ts->lost, ST_BRIEF_BYTES);
	if (c->compare) {
		struct st_compare_stats cs;

		st_compare__stats(c->compare, &cs);
		st_brief_add(b, "compared", cs.compared, 0);
		st_brief_add(b, "differing", cs.differing, ST_BRIEF_SUB);
	}
}

/* Where the requests go and what it writes, in words (the start line, ctl status). */
static void describe(struct shadow_cmd *c, struct st_job_desc *d)
{
	const struct st_shadow_config *cfg = &c->cfg;
	unsigned ncand = cfg->n_targets - (c->cmp.have_ref && cfg->n_targets > 1);
	size_t o = 0;

#define ADD(buf, ...) (o += (size_t)snprintf(buf + o, o < sizeof(buf) ? sizeof(buf) - o : 0, \
					      __VA_ARGS__))
	for (unsigned i = 0; i < ncand; i++)
		ADD(d->targets, "%s%s", i ? ", " : "", cfg->targets[i].name);
	if (c->cmp.have_ref)
		ADD(d->targets, "%sreference %s", o ? ", " : "", c->cmp.ref.name);
	if (c->compare || c->cmp.on)
		ADD(d->targets, " (tap compare)");
	o = 0;
	if (c->cmp.report)
		ADD(d->outputs, "report %s", c->cmp.report);
	if (c->cmp.report_json)
		ADD(d->outputs, "%sreport %s", o ? ", " : "", c->cmp.report_json);
	if (c->cmp.diffs)
		ADD(d->outputs, "%sdiffs %s", o ? ", " : "", c->cmp.diffs);
	if (c->metrics)
		ADD(d->outputs, "%smetrics %s", o ? ", " : "", c->metrics);
#undef ADD
	if (cfg->sample_pct > 0 && cfg->sample_pct < 100 && (cfg->sample_by_request || c->replay))
		snprintf(d->sample, sizeof(d->sample), "%g%% of %s", cfg->sample_pct,
			 cfg->sample_by_request ? "requests" : "connections");
}

/* replay's start line: the file's filters, then describe()'s. */
static const char *describe_line(struct shadow_cmd *c, char *buf, size_t len)
{
	struct st_job_desc d = { 0 };
	size_t o = 0;

	describe(c, &d);
	o += (size_t)snprintf(buf, len, "port%s", c->h.target.n_ports > 1 ? "s " : " ");
	for (size_t i = 0; i < c->h.target.n_ports && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%u", i ? "," : "", c->h.target.ports[i]);
	if (o < len)
		snprintf(buf + o, len - o, ", %s -> %s%s%s", d.sample[0] ? d.sample : "every connection",
			 d.targets, d.outputs[0] ? "; " : "", d.outputs);
	return buf;
}

/* Timers and the --metrics file (both commands; the stats line is the runner's, or
 * replay's own). */
static void timers(struct shadow_cmd *c, uint64_t now)
{
	if (now - c->last_timers >= TIMERS_EVERY_NS) {
		c->last_timers = now;
		st_shadow__tick(c->sh, c->replay ? 0 : st_loop_realtime_ns());
	}
	if (c->metrics &&
	    now - c->last_stats >=
		    (uint64_t)((c->h.run.stats_s > 0 ? c->h.run.stats_s : 5) * 1e9)) {
		c->last_stats = now;
		print_stats(c, "metrics");
	}
}

static int on_shadow_io(void *ctx)
{
	struct shadow_cmd *c = ctx;

	return st_shadow__io(c->sh);
}

/* ---- live (the shadow job) ------------------------------------------------------------ */

static int live_seg(void *ctx, const struct st_segment *s)
{
	struct shadow_cmd *c = ctx;

	if (!st_target_hosts_keep(&c->h.target, &s->key)) {
		c->filtered_segs++;
		return 0;
	}
	st_shadow__feed(c->sh, s);
	return 0;
}

/* After each ring drain: what was fed goes out now. */
static int live_batch(void *ctx)
{
	struct shadow_cmd *c = ctx;

	st_shadow__kick(c->sh);
	return 0;
}

static int live_tick(void *ctx, uint64_t now)
{
	timers(ctx, now);
	return 0;
}

/* --sample by connection: the kernel leaves the others out, by the same hash */
static void live_tap_opts(void *obj, struct st_tap_opts *o)
{
	struct shadow_cmd *c = obj;

	if (!c->cfg.sample_by_request)
		o->sample_permyriad = st_tap_permyriad(c->cfg.sample_pct);
}

static int live_attached(void *obj, struct st_loop *l, struct st_tapsub *sub)
{
	struct shadow_cmd *c = obj;
	int err;

	c->sub = sub;
	c->loop = l;
	err = st_loop__add(l, st_shadow__fd(c->sh), on_shadow_io, c);
	if (err) {
		pr_err("%s: event loop: %s", c->cmd, strerror(-err));
		return -1;
	}
	return 0;
}

static void live_detach_loop(void *obj, struct st_loop *l)
{
	struct shadow_cmd *c = obj;

	tap_summary(c); /* the counters stay after the detach */
	c->sub = NULL;
	st_loop__del(l, st_shadow__fd(c->sh));
}

/* ---- replay ---------------------------------------------------------------------------- */

static void replay_next(struct shadow_cmd *c)
{
	int r;

	while ((r = st_pcapin__next(c->pin, &c->seg)) > 0) {
		st_ports_seen_add(&c->seen, &c->seg);
		if (st_target_keeps(&c->h.target, &c->seg.key)) {
			c->have_seg = true;
			c->kept_segs++;
			return;
		}
		c->filtered_segs++;
	}
	c->have_seg = false;
	c->eof = true;
	if (r < 0) {
		if (st_pcapin__truncated(c->pin)) {
			if (!c->pass) /* a load test's passes: said once */
				pr_warn("%s: %s is truncated; replayed everything before "
						"the cut (%s)", c->cmd, c->file, st_pcapin__error(c->pin));
		} else {
			pr_err("%s: %s is damaged; replayed everything before it "
					"(%s)", c->cmd, c->file, st_pcapin__error(c->pin));
			c->read_err = 1;
		}
	}
}

/* Feeds the segments that are due (original timing) or as many as the shadows take (--fast). */
static void replay_feed(struct shadow_cmd *c)
{
	uint64_t now = st_loop_mono_ns();
	int n = 0;

	while (c->have_seg && n++ < REPLAY_BATCH) {
		if (c->fast) {
			if (st_shadow__busy(c->sh))
				break;
		} else {
			uint64_t rel = c->seg.ts_ns > c->t0_pcap ? c->seg.ts_ns - c->t0_pcap : 0;

			if (!c->t0_mono) {
				c->t0_mono = now;
				c->t0_pcap = c->seg.ts_ns;
				rel = 0;
			}
			if (c->t0_mono + (uint64_t)((double)rel / c->speed) > now)
				break;
		}
		st_shadow__feed(c->sh, &c->seg);
		replay_next(c);
	}
	st_shadow__kick(c->sh);
}

/* Replay's reading: how far into the file, and when it will be done at this pace. */
static void replay_brief(struct shadow_cmd *c, struct st_brief *b, uint64_t now)
{
	uint64_t pos, size;

	if (!st_pcapin__position(c->pin, &pos, &size)) {
		uint64_t el = now - c->t0_mono;

		st_brief_add(b, "read", pos * 100 / size, ST_BRIEF_PCT);
		if (pos && c->t0_mono && pos < size)
			st_brief_add(b, "eta", (uint64_t)((double)el * (double)(size - pos) /
							 (double)pos / 1e9), ST_BRIEF_SECS);
	}
	brief(c, NULL, b);
}

static int replay_tick(void *ctx)
{
	struct shadow_cmd *c = ctx;
	uint64_t now = st_loop_mono_ns();

	replay_feed(c);
	timers(c, now);
	if (st_progress_due(&c->prog, now)) {
		struct st_brief b;

		st_brief_init(&b);
		replay_brief(c, &b, now);
		st_progress_show(&c->prog, &b, now);
	}
	if (c->eof && !c->flushed) {
		st_shadow__flush(c->sh);
		c->flushed = true;
		c->drain_until = now + (uint64_t)(c->drain_s * 1e9);
	}
	if (c->flushed && (st_shadow__idle(c->sh) || now >= c->drain_until))
		st_loop__stop(c->loop);
	return 0;
}

static int replay_io(void *ctx)
{
	struct shadow_cmd *c = ctx;
	int r = st_shadow__io(c->sh);

	if (c->fast)
		replay_feed(c); /* the shadows took bytes: read on */
	return r;
}

static int run_replay(struct shadow_cmd *c)
{
	char perr[512];
	int err;

	c->pin = st_pcapin__open(c->file, perr, sizeof(perr));
	if (!c->pin && errno == EPROTONOSUPPORT) {
		pr_err("%s: %s: %s", c->cmd, c->file, perr);
		return -2;
	}
	if (!c->pin) {
		pr_err("%s: %s: not a readable pcap or pcapng file (%s)", c->cmd,
			c->file, perr);
		return -2;
	}
	replay_next(c);
	if (!c->h.run.quiet) {
		char line[2048];

		st_log_out("replay running: %s%s, %s; Ctrl-C or SIGTERM stops it",
			   strcmp(c->file, "-") ? c->file : "stdin",
			   c->fast ? " as fast as the shadows take it" : c->speed != 1 ? " at --speed" :
			   " at its recorded pace", describe_line(c, line, sizeof(line)));
	}
	st_progress_init(&c->prog, c->h.run.stats_s, !c->h.run.quiet && isatty(STDERR_FILENO),
			 c->cmd, st_loop_mono_ns());
	c->started_ns = st_loop_mono_ns();
	err = st_loop__add(c->loop, st_shadow__fd(c->sh), replay_io, c);
	if (!err)
		err = st_loop__set_tick(c->loop, ST_TICK_PACE_MS, replay_tick, c);
	if (err) {
		pr_err("%s: event loop: %s", c->cmd, strerror(-err));
		return -1;
	}
	err = st_loop__run(c->loop, 0);
	st_progress_end(&c->prog);
	if (err)
		pr_err("%s: %s", c->cmd, strerror(-err));
	if (c->h.target.n_ports && !c->kept_segs && !c->read_err) {
		char seen[512];

		/* requests=0, exit 0 would look like a replay that went well */
		pr_warn("%s: %s has no connection on --port (its connections: %s): nothing was "
			"replayed", c->cmd, c->file, st_ports_seen_str(&c->seen, seen, sizeof(seen)));
	}
	{
		struct st_pcapin_stats ps;

		st_pcapin__stats(c->pin, &ps);
		pr_info("pcap packets=%" PRIu64 " segments=%" PRIu64 " not_tcp=%" PRIu64
			" malformed=%" PRIu64 " filtered=%" PRIu64, ps.packets, ps.segments,
			ps.not_tcp, ps.malformed, c->filtered_segs);
	}
	return err || c->read_err ? -1 : 0;
}

/* ---- replay --rate/--steps: a load test (docs/LOAD.md) ------------------------------------ */

/* The survey: what the recording holds that production ran. */
struct survey {
	uint64_t n, t0, t1;          /* the requests, the first's and the last's capture time */
	uint64_t seg_t0, seg_t1;     /* the first and last segment's */
};

static uint32_t survey_tag(void *ctx, const struct st_http_head *h)
{
	return 0;
}

static uint64_t survey_due(void *ctx, uint64_t ts, uint64_t now)
{
	struct survey *sv = ctx;

	if (!sv->n || ts < sv->t0)
		sv->t0 = ts;
	if (!sv->n || ts > sv->t1)
		sv->t1 = ts;
	sv->n++;
	return ST_SHADOW_NEVER; /* nothing is sent */
}

static void survey_taken(void *ctx, unsigned slot, uint64_t due, uint64_t now)
{
}

static void survey_done(void *ctx, const struct st_shadow_done *d)
{
}

static const struct st_shadow_load_ops survey_ops = {
	.tag = survey_tag, .due = survey_due, .taken = survey_taken, .done = survey_done,
};

static void engine_cfg(struct shadow_cmd *c);

/*
 * The recording read once through the engine, nothing sent: the requests the engine would
 * release (production ran them: the arbiter's rules hold, only those are ever due) and the
 * span of their capture times, for recorded pacing and for one pass's length. Quiet: the
 * passes that follow say what the file holds. 0, or -1 (-2: the file cannot be read) after
 * one line.
 */
static int survey(struct shadow_cmd *c, struct survey *sv)
{
	struct st_shadow_config cfg;
	enum st_log_level level = st_log_get_level();
	struct st_pcapin *pin;
	struct st_shadow *sh;
	struct st_segment seg;
	char perr[512];
	int r;

	engine_cfg(c);
	cfg = c->cfg;
	cfg.load = &survey_ops;
	cfg.load_ctx = sv;
	pin = st_pcapin__open(c->file, perr, sizeof(perr));
	if (!pin) {
		if (errno == EPROTONOSUPPORT)
			pr_err("%s: %s: %s", c->cmd, c->file, perr);
		else
			pr_err("%s: %s: not a readable pcap or pcapng file (%s)", c->cmd, c->file,
			       perr);
		return -2;
	}
	sh = st_shadow__new(&cfg);
	if (!sh) {
		pr_err("%s: %s", c->cmd, strerror(errno));
		st_pcapin__close(pin);
		return -1;
	}
	st_log_set_level(ST_LOG_ERROR);
	while ((r = st_pcapin__next(pin, &seg)) > 0) {
		if (!st_target_keeps(&c->h.target, &seg.key))
			continue;
		if (!sv->seg_t0 || seg.ts_ns < sv->seg_t0)
			sv->seg_t0 = seg.ts_ns;
		if (seg.ts_ns > sv->seg_t1)
			sv->seg_t1 = seg.ts_ns;
		st_shadow__feed(sh, &seg);
	}
	st_shadow__flush(sh);
	st_log_set_level(level);
	st_shadow__free(sh);
	st_pcapin__close(pin);
	if (!sv->n) {
		pr_err("%s: %s: no request to replay on port %u (none production answered)",
		       c->cmd, c->file, c->h.target.n_ports ? c->h.target.ports[0] : 0);
		return -1;
	}
	return 0;
}

/* The load test's reports, written whole (in progress, and final at the end). 0 or -1. */
static int load_reports(struct shadow_cmd *c)
{
	return st_load_report_write(c->load, c->lo.report, c->lo.report_json,
				    c->lo.cmp_report[0] ? c->lo.cmp_report : NULL, c->cmd,
				    c->out_mode);
}

/* The next segment to feed; the end of the file is the end of a pass: the recording's
 * connections close (the next pass's are new ones) and the next pass comes from the engine's
 * cache of the first, or (the cache did not hold it) from the file read again. */
static void load_next(struct shadow_cmd *c)
{
	char perr[512];

	for (int tries = 0; tries < 2; tries++) {
		replay_next(c);
		c->seg.ts_ns += c->pass * c->pass_span;
		if (c->have_seg || c->read_err)
			return;
		/* a pass is over: read it again (a truncated file warned once, on the first) */
		st_shadow__flush(c->sh);
		if (st_shadow__cache_ready(c->sh)) {
			c->cached = true;
			c->eof = false;
			st_load__pass(c->load, ++c->pass, 0);
			st_shadow__cache_rewind(c->sh);
			return;
		}
		st_pcapin__close(c->pin);
		c->pin = st_pcapin__open(c->file, perr, sizeof(perr));
		if (!c->pin) {
			pr_err("%s: %s: %s", c->cmd, c->file, perr);
			c->read_err = 1;
			return;
		}
		c->eof = false;
		++c->pass;
		st_load__pass(c->load, c->pass, c->pass * c->pass_span);
	}
}

/* Feeds what the schedule wants released by now, takes up what is due, and says when the
 * loop must wake next. */
static uint64_t load_wake(void *ctx)
{
	struct shadow_cmd *c = ctx;
	uint64_t now = st_loop_mono_ns(), next, wake = 0;
	int n = 0;

	/* what is due first: reading ahead must not make it late */
	st_shadow__due(c->sh, now);
	while ((c->have_seg || c->cached) && !c->eof) {
		uint64_t ts = c->seg.ts_ns;

		if (n++ >= LOAD_FEED_BATCH) {
			wake = now; /* more to feed: no wait, but I/O first */
			break;
		}
		if (st_shadow__busy(c->sh)) {
			/* the queues are half full (the target is slow): it takes some first */
			wake = now + LOAD_BUSY_WAIT_NS;
			break;
		}
		if (c->cached && !st_shadow__cache_ts(c->sh, &ts)) {
			/* the pass is over: the next one, on new connections */
			st_load__pass(c->load, ++c->pass, 0);
			st_shadow__cache_rewind(c->sh);
			continue;
		}
		switch (st_load__feed(c->load, ts, now, &wake)) {
		case ST_LOAD_FEED:
			if (c->cached) {
				st_shadow__cache_feed(c->sh);
			} else {
				st_shadow__feed(c->sh, &c->seg);
				load_next(c);
			}
			continue;
		case ST_LOAD_WAIT:
			break;
		case ST_LOAD_END:
			c->eof = true;
			break;
		}
		break;
	}
	if ((c->eof || (!c->have_seg && !c->cached)) && !c->flushed) {
		/* nothing more will be due: the recording's connections end here */
		st_shadow__flush(c->sh);
		c->flushed = true;
		c->eof = true;
		c->drain_until = now + (uint64_t)(c->drain_s * 1e9);
		if (st_load__end(c->load) != UINT64_MAX && st_load__end(c->load) > now)
			c->drain_until += st_load__end(c->load) - now;
	}
	now = st_loop_mono_ns();
	next = st_load__wake_at(c->load, st_shadow__due(c->sh, now), now);
	if (!c->flushed && wake && (!next || wake < next))
		next = wake;
	return next;
}

static int load_tick(void *ctx)
{
	struct shadow_cmd *c = ctx;
	uint64_t now = st_loop_mono_ns();

	timers(c, now);
	if (st_progress_due(&c->prog, now)) {
		struct st_brief b;

		st_brief_init(&b);
		st_load__brief(c->load, &b);
		brief(c, NULL, &b);
		st_progress_show(&c->prog, &b, now);
	}
	/* a report in progress only when asked (--report-interval): writing one costs the loop
	 * time that its schedule would show as lag */
	if ((c->lo.report || c->lo.report_json) && c->lo.report_every_s > 0 &&
	    now - c->last_report >= (uint64_t)(c->lo.report_every_s * 1e9)) {
		c->last_report = now;
		load_reports(c);
	}
	if (c->flushed && (st_shadow__idle(c->sh) || now >= c->drain_until)) {
		c->drained = st_shadow__idle(c->sh);
		st_loop__stop(c->loop);
	}
	return 0;
}

static int load_io(void *ctx)
{
	struct shadow_cmd *c = ctx;

	return st_shadow__io(c->sh);
}

/* The load test: the survey, then the passes fed ahead of the schedule. */
static int run_load(struct shadow_cmd *c)
{
	char perr[512];
	int err;

	c->pin = st_pcapin__open(c->file, perr, sizeof(perr));
	if (!c->pin) {
		pr_err("%s: %s: %s", c->cmd, c->file, perr);
		return -2;
	}
	load_next(c);
	err = st_loop__add(c->loop, st_shadow__fd(c->sh), load_io, c);
	if (!err)
		err = st_loop__set_tick(c->loop, ST_TICK_MS, load_tick, c);
	if (err) {
		pr_err("%s: event loop: %s", c->cmd, strerror(-err));
		return -1;
	}
	st_loop__set_wake(c->loop, load_wake, c);
	/* the reports now: a path that cannot be written stops the test before it starts */
	if (load_reports(c))
		return -2;
	c->last_report = st_loop_mono_ns();
	if (!c->h.run.quiet) {
		char line[2048], what[256];

		st_log_out("replay running: %s as a load test %s, %s; Ctrl-C or SIGTERM stops it",
			   c->file, st_load_opts_describe(&c->lo, what, sizeof(what)),
			   describe_line(c, line, sizeof(line)));
	}
	st_progress_init(&c->prog, c->h.run.stats_s, !c->h.run.quiet && isatty(STDERR_FILENO),
			 c->cmd, st_loop_mono_ns());
	st_load__start(c->load, st_loop_mono_ns(), st_loop_realtime_ns());
	err = st_loop__run(c->loop, 0);
	st_progress_end(&c->prog);
	if (err)
		pr_err("%s: %s", c->cmd, strerror(-err));
	return err || c->read_err ? -1 : 0;
}

/* Many shadow connections: one descriptor each. Raise the soft limit as far as allowed. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}


static int start_engine(struct shadow_cmd *c);
static int start_load(struct shadow_cmd *c);
static int end_run(struct shadow_cmd *c, int r);
static void destroy_cmd(struct shadow_cmd *c);
static void init_cmd(struct shadow_cmd *c, bool replay);

static int run(int argc, char **argv, bool replay)
{
	struct shadow_cmd *c = calloc(1, sizeof(*c));
	int ret, r;

	if (!c) {
		pr_err("out of memory");
		return ST_EXIT_RUNTIME;
	}
	init_cmd(c, replay);
	ret = parse(c, argc, argv);
	if (ret) {
		ret = ret < 0 ? ST_EXIT_OK : ret;
		goto out;
	}
	st_log_set_verbose(c->h.run.verbose);
	ret = ST_EXIT_RUNTIME;
	if (c->lo.on && (r = start_load(c)))
		goto out;
	if (start_engine(c))
		goto out;
	c->loop = st_loop__new();
	if (!c->loop) {
		pr_err("%s: %s", c->cmd, strerror(errno));
		goto out;
	}
	c->last_timers = c->last_stats = st_loop_mono_ns();
	r = c->load ? run_load(c) : run_replay(c);
	if (r == -2)
		goto out; /* nothing started: no summary */
	ret = end_run(c, r);
out:
	destroy_cmd(c);
	free(c);
	return ret;
}

/* The engine's configuration from the options (the survey's too). */
static void engine_cfg(struct shadow_cmd *c)
{
	bool replay = c->replay;

	if (c->drain_s < 0)
		c->drain_s = c->lo.on ? c->lo.timeout_s + 1 : replay ? 10 : 2;
	if (c->speed <= 0)
		c->speed = 1;
	c->cfg.ports = c->h.target.ports;
	c->cfg.n_ports = c->h.target.n_ports;
	c->cfg.live = !replay;
	c->cfg.reasm_max_mem = c->h.target.max_mem ? c->h.target.max_mem : SHADOW_MAX_MEM_DEFAULT;
	if (!replay)
		c->cfg.hash_seed = st_loop_realtime_ns() ^ ((uint64_t)getpid() << 32);
}

/* replay --rate/--steps: the survey, then the schedule; the engine's load ops are its. 0, or
 * -1 after one line (ST_EXIT_RUNTIME). */
static int start_load(struct shadow_cmd *c)
{
	struct survey sv = { 0 };
	struct st_load_config lc;

	if (survey(c, &sv))
		return -1;
	st_load_opts_config(&c->lo, &c->cmp, false, &lc);
	lc.rec_n = sv.n;
	lc.rec_t0 = sv.t0;
	lc.rec_t1 = sv.t1;
	/* reassembly's clock only goes forward: each pass after the last */
	c->pass_span = sv.seg_t1 - sv.seg_t0 + 1000000;
	lc.command = c->cmd;
	lc.target = c->cfg.targets[0].name;
	c->load = st_load__new(&lc);
	if (!c->load) {
		pr_err("%s: %s", c->cmd, strerror(errno));
		return -1;
	}
	c->cfg.load = &st_load_ops;
	c->cfg.load_ctx = c->load;
	c->cfg.max_conns = c->lo.connections;
	c->cfg.answer_timeout_ns = (uint64_t)(c->lo.timeout_s * 1e9);
	/* the passes after the first from the engine's cache of it (not with tap compare) */
	c->cfg.load_cache_max = LOAD_CACHE_MAX;
	return 0;
}

/* The engine (and tap compare) from the options. 0, or -1 after one line. */
static int start_engine(struct shadow_cmd *c)
{
	int err;

	engine_cfg(c);
	raise_nofile();
	if (c->metrics && (err = st_output_check(c->metrics, ST_OUT_NONBLOCK, c->out_mode))) {
		pr_err("%s: --metrics %s: %s", c->cmd, c->metrics, st_output_strerror(err));
		return -1;
	}
	c->cmp.out_mode = c->out_mode;
	if (c->cmp.on && !(c->compare = st_cmp_opts_start(&c->cmp, c->cmd, &c->cfg))) {
		pr_err("%s: compare: %s", c->cmd, strerror(errno));
		return -1;
	}
	/* --correlate-dump is written at the end: a path that cannot be fails now */
	if (c->cor.dump && (err = st_output_check(c->cor.dump, ST_OUT_PRIVATE, 0600))) {
		pr_err("%s: --correlate-dump %s: %s", c->cmd, c->cor.dump, st_output_strerror(err));
		return -1;
	}
	c->sh = st_shadow__new(&c->cfg);
	if (!c->sh) {
		pr_err("%s: %s", c->cmd, strerror(errno));
		return -1;
	}
	c->last_timers = c->last_stats = st_loop_mono_ns();
	return 0;
}

/* The input ended (r: 0, or -1 after an error): queued requests get a last chance, then
 * the summary. The exit status. */
/* replay's last line, after the summary: how long, how fast, and how the shadows answered. */
static void print_replay_end(struct shadow_cmd *c)
{
	const struct st_hdr *h = st_shadow__answer_latency(c->sh);
	struct st_shadow_stats st;
	double secs = (double)(st_loop_mono_ns() - c->started_ns) / 1e9;

	st_shadow__stats(c->sh, &st);
	if (!h->total) {
		st_log_out("replay %.2f s: %" PRIu64 " requests replayed (%.1f/s); no answer from the "
			   "shadows", secs, st.replayed, secs > 0 ? (double)st.replayed / secs : 0);
		return;
	}
	st_log_out("replay %.2f s: %" PRIu64 " requests replayed (%.1f/s); the shadows' answers: %"
		   PRIu64 ", latency p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f (last byte written to "
		   "the answer's head)", secs, st.replayed, secs > 0 ? (double)st.replayed / secs : 0,
		   h->total, (double)st_hdr_percentile(h, 50) / 1e3,
		   (double)st_hdr_percentile(h, 90) / 1e3, (double)st_hdr_percentile(h, 99) / 1e3,
		   (double)h->max / 1e3);
}

static int end_run(struct shadow_cmd *c, int r)
{
	int drain_ms = c->replay && c->flushed ? 0 : (int)(c->drain_s * 1000);
	int verdict;

	/* a load test stopped by a signal: what is on its way gets a second, not a timeout */
	if (c->load && !c->drained && drain_ms > 1000)
		drain_ms = 1000;
	/* the captured connections end here; queued requests get a last chance */
	st_shadow__flush(c->sh);
	st_shadow__drain(c->sh, drain_ms);
	/* every pair is settled now: the last comparisons, then the reports and the verdict */
	st_compare__finish(c->compare);
	if (c->load) {
		st_load__finish(c->load, st_loop_mono_ns(), st_loop_realtime_ns());
		load_reports(c);
	}
	verdict = st_cmp_opts_end(&c->cmp, c->compare);
	if (c->cor.dump) {
		int e = st_shadow__correlate_dump(c->sh, c->cor.dump);

		if (e) {
			pr_err("%s: --correlate-dump %s: %s", c->cmd, c->cor.dump, st_output_strerror(e));
			r = -1;
		}
	}
	print_stats(c, c->what ? c->what : "summary");
	if (c->load)
		st_load__print_end(c->load, stderr);
	else if (c->replay && c->started_ns && !c->h.run.quiet)
		print_replay_end(c);
	if (r || c->metrics_errors || st_compare__output_errors(c->compare) ||
	    st_load__output_errors(c->load))
		return ST_EXIT_RUNTIME;
	return verdict;
}

static void destroy_cmd(struct shadow_cmd *c)
{
	st_shadow__free(c->sh);
	st_load__free(c->load); /* after the engine: its last failures are counted into it */
	st_compare__free(c->compare); /* after the engine: it holds pairs until it is freed */
	if (c->replay)
		st_loop__free(c->loop);
	st_pcapin__close(c->pin);
	if (c->match_set)
		regfree(&c->match_re);
	if (c->exclude_set)
		regfree(&c->exclude_re);
}

/* ---- the shadow job kind ---------------------------------------------------------------- */

static void init_cmd(struct shadow_cmd *c, bool replay)
{
	c->cmd = replay ? "replay" : "shadow";
	c->replay = replay;
	c->h.target.ring_mb = ST_RING_MB_DEFAULT;
	c->cfg.mark_name = "X-Shadowtap";
	c->cfg.mark_value = "1";
	c->drain_s = -1;
	st_correlate_opts_init(&c->cor);
}

static void job_init(void *obj)
{
	init_cmd(obj, false);
}

static size_t job_optsets(void *obj, struct st_optset *sets)
{
	struct shadow_cmd *c = obj;

	return optsets(c, sets);
}

static int job_check(void *obj, int argc, char **argv, int first)
{
	return check_args(obj, argc, argv, first);
}



static void job_describe(void *obj, struct st_job_desc *d)
{
	describe(obj, d);
}

static void job_brief(void *obj, const struct st_tap_summary *ts, struct st_brief *b)
{
	brief(obj, ts, b);
}


static int job_start(void *obj)
{
	return start_engine(obj);
}

static int job_finish(void *obj, int err, bool ran, const struct st_tap_summary *ts,
		      const char *what)
{
	struct shadow_cmd *c = obj;

	if (!ran)
		return ST_EXIT_RUNTIME; /* nothing started: no summary */
	if (err)
		pr_err("%s: %s", c->cmd, strerror(-err));
	c->tap_sum = *ts;
	c->what = what;
	return end_run(c, err ? -1 : 0);
}

/* tap compare's families on the daemon's /metrics */
static void job_series(void *obj, struct st_prom *p, const struct st_prom_labels *base)
{
	st_compare__series(((struct shadow_cmd *)obj)->compare, p, base);
}

static void job_stats(void *obj, struct st_statline *l, const struct st_tap_summary *ts)
{
	struct shadow_cmd *c = obj;
	struct st_shadow_stats st;

	st_shadow__stats(c->sh, &st);
	st_statline_add_table(l, st_shadow_stat_desc, st_shadow_stat_n, &st);
	if (c->compare) {
		struct st_compare_stats cs;

		st_compare__stats(c->compare, &cs);
		st_statline_add_table(l, st_compare_stat_desc, st_compare_stat_n, &cs);
	}
	st_statline_add_table(l, st_tap_stat_desc, st_tap_stat_n, ts);
	add_labeled(c, l);
}

/* Reload: new ports, peers and --sample share (by connection, as before). */
static bool job_retarget(void *obj, const void *new_obj)
{
	struct shadow_cmd *c = obj;
	const struct shadow_cmd *n = new_obj;

	if (c->cfg.sample_by_request != n->cfg.sample_by_request)
		return false;
	st_job_head_retarget(&c->h, &n->h);
	c->cfg.sample_pct = n->cfg.sample_pct;
	st_shadow__set_filter(c->sh, c->cfg.sample_pct, c->h.target.ports, c->h.target.n_ports);
	return true;
}

static void job_limit_drain(void *obj, double max_s)
{
	struct shadow_cmd *c = obj;

	if (c->drain_s < 0 || c->drain_s > max_s)
		c->drain_s = max_s > 0 ? max_s : 0;
}

static void job_destroy(void *obj)
{
	destroy_cmd(obj);
}

const struct st_job_kind st_shadow_kind = {
	.name = "shadow",
	.usage_head = shadow_head,
	.size = sizeof(struct shadow_cmd),
	.tick_ms = ST_TICK_MS,
	.init = job_init,
	.optsets = job_optsets,
	.check = job_check,
	.target = st_job_head_target,
	.tap_opts = live_tap_opts,
	.run_opts = st_job_head_run_opts,
	.duration = st_job_head_duration,
	.describe = job_describe,
	.brief = job_brief,
	.start = job_start,
	.attached = live_attached,
	.detach_loop = live_detach_loop,
	.segment = live_seg,
	.batch = live_batch,
	.tick = live_tick,
	.finish = job_finish,
	.stats = job_stats,
	.series = job_series,
	.retarget = job_retarget,
	.limit_drain = job_limit_drain,
	.destroy = job_destroy,
};

int cmd_shadow(int argc, char **argv)
{
	return st_job_command(&st_shadow_kind, argc, argv);
}

int cmd_replay(int argc, char **argv)
{
	return run(argc, argv, true);
}
