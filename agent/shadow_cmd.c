/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap shadow` (live: tap -> engine) and `shadowtap replay` (pcap ->
 * engine). Both share the engine's options; see docs/SHADOW.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"
#include "loop.h"
#include "opts.h"
#include "output.h"
#include "pcapin.h"
#include "shadow.h"
#include "tap.h"

#define LIVE_TICK_MS 20
#define REPLAY_TICK_MS 1
#define TIMERS_EVERY_NS (100ull * 1000000)
#define REPLAY_BATCH 4096
#define SET_HDR_MAX 512
/* Reassembly cap. Under ring overflow, half-lost streams hold out-of-order bytes for up to
 * gap_wait each: with reassembly's own default (256 MiB) that took the agent from 20 MB to
 * 157 MB RSS with --ring-mb 8 --max-queue-mb 8 (docs/ARCHITECTURE.md, "Memory"). */
#define SHADOW_MAX_MEM_DEFAULT (64ull << 20)
#define SHADOW_MAX_MEM_DEFAULT_STR "64M"

enum {
	O_TO = ST_OPT_FIRST_FREE,
	O_PROTO,
	O_SAMPLE,
	O_SAMPLE_BY,
	O_RATE,
	O_MATCH_METHOD,
	O_MATCH_PATH,
	O_EXCLUDE_PATH,
	O_SAFE_ONLY,
	O_SET_HEADER,
	O_SET_HOST,
	O_MARK,
	O_NO_MARK,
	O_MAX_QUEUE,
	O_CONN_QUEUE,
	O_STATS,
	O_DURATION,
	O_DRAIN,
	O_SPEED,
	O_FAST,
	O_MULTIPLY,
	O_METRICS,
};

struct shadow_cmd {
	const char *cmd;             /* "shadow" or "replay" */
	bool replay;
	struct st_target target;     /* live capture target; ports also filter a pcap */
	struct st_shadow_config cfg;
	regex_t match_re, exclude_re;
	bool match_set, exclude_set;
	char set_bufs[ST_SHADOW_MAX_SET][SET_HDR_MAX];
	char mark_buf[SET_HDR_MAX];
	char methods_buf[1024];
	double stats_s;
	const char *metrics;         /* --metrics FILE: Prometheus text format, rewritten atomically */
	double duration;
	double drain_s;
	double speed;
	bool fast;
	bool verbose;
	const char *file;
	/* run state */
	struct st_shadow *sh;
	struct st_loop *loop;
	struct st_tap *tap;
	struct st_pcapin *pin;
	struct st_segment seg;       /* replay: the next segment, when have_seg */
	bool have_seg, eof, flushed;
	int read_err;
	uint64_t t0_pcap, t0_mono;
	uint64_t last_timers, last_stats, drain_until;
	uint64_t filtered_segs;
	unsigned long long cap_lost, cap_unrep; /* the tap's loss counters */
	unsigned long long detaches, blind_ms;  /* ... and the interface's absences */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f, bool replay)
{
	if (replay)
		fprintf(f,
			"Usage: shadowtap replay FILE --port P --to HOST:PORT [--to ...] [options]\n\n"
			"Replays the client->server requests of a pcap/pcapng file to shadow targets,\n"
			"one shadow connection per recorded connection, with the original timing.\n\n"
			"  FILE                  pcap or pcapng file (- for stdin)\n"
			"  -p, --port P          the service's port (repeatable): only its connections\n"
			"      --host CIDR       only connections with a peer in CIDR (repeatable)\n"
			"      --speed X         timing scaled by X (2 = twice as fast; default 1)\n"
			"      --fast            as fast as the shadows take it (waits when queues fill)\n"
			"      --multiply N      replay every connection N times per target\n");
	else
		fprintf(f,
			"Usage: shadowtap shadow (--iface IFACE | --cgroup PATH) --port P\n"
			"                        --to HOST:PORT [--to ...] [options]\n\n"
			"Captures a service's traffic in the kernel and replays every client request to\n"
			"shadow targets, one shadow connection per client connection. Production is never\n"
			"waited for: when a shadow is slow or down, whole requests are dropped and counted.\n\n"
			ST_TARGET_USAGE
			"      --duration SEC    stop after SEC seconds (default: until SIGINT/SIGTERM)\n");
	fprintf(f,
		"      --to HOST:PORT[/PCT]  a shadow target (repeatable); /PCT: only that share of\n"
		"                        the connections (shares of several targets do not overlap)\n"
		"      --proto auto|http|raw  HTTP/1.x framing (auto: detected per connection)\n"
		"      --sample PCT      replay PCT%% of the traffic (default 100)\n"
		"      --sample-by connection|request  what --sample picks (default connection,\n"
		"                        by a stable hash: a session is shadowed whole or not at all)\n"
		"      --rate RPS        at most RPS requests/s to the shadows (beyond: dropped)\n"
		"      --match-method M[,M...]  only these methods (repeatable)\n"
		"      --match-path REGEX    only request targets matching REGEX (POSIX extended)\n"
		"      --exclude-path REGEX  not request targets matching REGEX\n"
		"      --safe-only       only GET, HEAD and OPTIONS (no raw streams)\n"
		"      --set-header 'Name: value'  set a header field (repeatable)\n"
		"      --set-host VALUE  the Host header sent to the shadows\n"
		"      --mark 'Name: value'  the header marking shadow requests (default\n"
		"                        'X-Shadowtap: 1')\n"
		"      --no-mark         do not mark shadow requests\n"
		"      --max-queue-mb N  all output queues together (default %llu)\n"
		"      --conn-queue-mb N per shadow connection (default %u, at most --max-queue-mb)\n"
		ST_REASM_USAGE_FMT
		"      --drain SEC       at the end, wait up to SEC for shadows to take what is queued\n"
		"                        (default 2 live, 10 replay)\n"
		"      --stats SEC       a stats line on stderr every SEC seconds\n"
		"      --metrics FILE    the counters in Prometheus text format, rewritten every\n"
		"                        --stats SEC (default 5) and at the end (node_exporter's\n"
		"                        textfile collector reads it)\n"
		"  -v, --verbose         more messages\n"
		"  -h, --help            this help\n\n"
		"The last stderr line is: shadowtap: summary requests=N replayed=N dropped=N errors=N ...\n",
		ST_SHADOW_MAX_QUEUE_DEFAULT >> 20, ST_SHADOW_CONN_QUEUE_DEFAULT >> 20,
		SHADOW_MAX_MEM_DEFAULT_STR);
}

static int bad(struct shadow_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line on stderr naming the command; the usage error status. */
static int bad(struct shadow_cmd *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "shadowtap %s: ", c->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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

static int add_methods(struct shadow_cmd *c, const char *arg)
{
	size_t used = 0;
	char *tok, *save = NULL;

	for (unsigned i = 0; i < c->cfg.n_methods; i++)
		used += strlen(c->cfg.methods[i]) + 1;
	if (used + strlen(arg) + 1 > sizeof(c->methods_buf))
		return -1;
	strcpy(c->methods_buf + used, arg);
	for (tok = strtok_r(c->methods_buf + used, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (c->cfg.n_methods >= ST_SHADOW_MAX_METHODS || !*tok ||
		    strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_0123456789") != strlen(tok))
			return -1;
		c->cfg.methods[c->cfg.n_methods++] = tok;
	}
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

static int parse(struct shadow_cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		ST_TARGET_LONGOPTS,
		ST_REASM_LONGOPTS,
		{ "to", required_argument, NULL, O_TO },
		{ "proto", required_argument, NULL, O_PROTO },
		{ "sample", required_argument, NULL, O_SAMPLE },
		{ "sample-by", required_argument, NULL, O_SAMPLE_BY },
		{ "rate", required_argument, NULL, O_RATE },
		{ "match-method", required_argument, NULL, O_MATCH_METHOD },
		{ "match-path", required_argument, NULL, O_MATCH_PATH },
		{ "exclude-path", required_argument, NULL, O_EXCLUDE_PATH },
		{ "safe-only", no_argument, NULL, O_SAFE_ONLY },
		{ "set-header", required_argument, NULL, O_SET_HEADER },
		{ "set-host", required_argument, NULL, O_SET_HOST },
		{ "mark", required_argument, NULL, O_MARK },
		{ "no-mark", no_argument, NULL, O_NO_MARK },
		{ "max-queue-mb", required_argument, NULL, O_MAX_QUEUE },
		{ "conn-queue-mb", required_argument, NULL, O_CONN_QUEUE },
		{ "stats", required_argument, NULL, O_STATS },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "drain", required_argument, NULL, O_DRAIN },
		{ "speed", required_argument, NULL, O_SPEED },
		{ "fast", no_argument, NULL, O_FAST },
		{ "multiply", required_argument, NULL, O_MULTIPLY },
		{ "metrics", required_argument, NULL, O_METRICS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct st_shadow_config *cfg = &c->cfg;
	char err[512];
	unsigned long ul;
	unsigned pct_sum = 0;
	int opt, r;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":i:p:vh", longopts, NULL)) != -1) {
		r = st_target_opt(&c->target, opt, optarg);
		if (r < 0)
			return ST_EXIT_USAGE;
		if (r)
			continue;
		switch (opt) {
		case O_TO:
			if (cfg->n_targets >= ST_SHADOW_MAX_TARGETS)
				return bad(c, "--to: at most 16 targets (%s)", optarg);
			if (st_shadow_parse_target(optarg, &cfg->targets[cfg->n_targets], err,
						   sizeof(err)))
				return bad(c, "--to: %s", err);
			pct_sum += cfg->targets[cfg->n_targets++].pct;
			break;
		case O_PROTO:
			if (!strcmp(optarg, "auto"))
				cfg->proto = ST_PROTO_AUTO;
			else if (!strcmp(optarg, "http"))
				cfg->proto = ST_PROTO_HTTP;
			else if (!strcmp(optarg, "raw"))
				cfg->proto = ST_PROTO_RAW;
			else
				return bad(c, "--proto: '%s' is not auto, http or raw", optarg);
			break;
		case O_SAMPLE:
			if (st_parse_double("--sample", optarg, 0.01, 100, &cfg->sample_pct))
				return ST_EXIT_USAGE;
			break;
		case O_SAMPLE_BY:
			if (!strcmp(optarg, "request"))
				cfg->sample_by_request = true;
			else if (!strcmp(optarg, "connection"))
				cfg->sample_by_request = false;
			else
				return bad(c, "--sample-by: '%s' is not connection or request", optarg);
			break;
		case O_RATE:
			if (st_parse_double("--rate", optarg, 0.001, 1e9, &cfg->rate))
				return ST_EXIT_USAGE;
			break;
		case O_MATCH_METHOD:
			if (add_methods(c, optarg))
				return bad(c, "--match-method: '%s' is not a list of methods "
					      "(e.g. GET,HEAD)", optarg);
			break;
		case O_MATCH_PATH:
		case O_EXCLUDE_PATH: {
			regex_t *re = opt == O_MATCH_PATH ? &c->match_re : &c->exclude_re;
			bool *set = opt == O_MATCH_PATH ? &c->match_set : &c->exclude_set;

			if (*set)
				regfree(re);
			*set = false;
			r = regcomp(re, optarg, REG_EXTENDED | REG_NOSUB);
			if (r) {
				regerror(r, re, err, sizeof(err));
				fprintf(stderr, "shadowtap %s: %s: '%s': %s\n", c->cmd,
					opt == O_MATCH_PATH ? "--match-path" : "--exclude-path", optarg,
					err);
				return ST_EXIT_USAGE;
			}
			*set = true;
			break;
		}
		case O_SAFE_ONLY:
			cfg->safe_only = true;
			break;
		case O_SET_HEADER:
			if (cfg->n_set >= ST_SHADOW_MAX_SET ||
			    split_header(c->set_bufs[cfg->n_set], SET_HDR_MAX, optarg,
					 &cfg->set[cfg->n_set].name, &cfg->set[cfg->n_set].value))
				return bad(c, "--set-header: '%s' is not 'Name: value'", optarg);
			cfg->n_set++;
			break;
		case O_SET_HOST:
			cfg->host = optarg;
			break;
		case O_MARK:
			if (split_header(c->mark_buf, SET_HDR_MAX, optarg, &cfg->mark_name,
					 &cfg->mark_value))
				return bad(c, "--mark: '%s' is not 'Name: value'", optarg);
			break;
		case O_NO_MARK:
			cfg->mark_name = NULL;
			cfg->mark_value = NULL;
			break;
		case O_MAX_QUEUE:
			if (st_parse_uint("--max-queue-mb", optarg, 1, 1 << 20, &ul))
				return ST_EXIT_USAGE;
			cfg->max_queue = (uint64_t)ul << 20;
			break;
		case O_CONN_QUEUE:
			if (st_parse_uint("--conn-queue-mb", optarg, 1, 4096, &ul))
				return ST_EXIT_USAGE;
			cfg->conn_queue_max = (uint64_t)ul << 20;
			break;
		case O_STATS:
			if (st_parse_double("--stats", optarg, 0.1, 1e6, &c->stats_s))
				return ST_EXIT_USAGE;
			break;
		case O_DURATION:
			if (c->replay)
				return bad(c, "%s applies to live shadowing only", "--duration");
			if (st_parse_double("--duration", optarg, 0.001, 1e9, &c->duration))
				return ST_EXIT_USAGE;
			break;
		case O_DRAIN:
			if (st_parse_double("--drain", optarg, 0, 3600, &c->drain_s))
				return ST_EXIT_USAGE;
			break;
		case O_SPEED:
		case O_FAST:
		case O_MULTIPLY:
			if (!c->replay)
				return bad(c, "%s applies to replay only", argv[optind - 1]);
			if (opt == O_FAST) {
				c->fast = true;
			} else if (opt == O_SPEED) {
				if (st_parse_double("--speed", optarg, 0.001, 1e6, &c->speed))
					return ST_EXIT_USAGE;
			} else {
				if (st_parse_uint("--multiply", optarg, 1, ST_SHADOW_MAX_SLOTS, &ul))
					return ST_EXIT_USAGE;
				cfg->multiply = (unsigned)ul;
			}
			break;
		case O_METRICS:
			c->metrics = optarg;
			break;
		case 'v':
			c->verbose = true;
			break;
		case 'h':
			usage(stdout, c->replay);
			return -1;
		default:
			return st_getopt_error(c->cmd, opt, argv);
		}
	}
	if (c->replay) {
		if (optind >= argc)
			return bad(c, "a pcap FILE is required (see shadowtap %s --help)", c->cmd);
		c->file = argv[optind++];
		if (c->target.iface || c->target.cgroup)
			return bad(c, "%s: replay reads a file, not a live capture",
				   c->target.iface ? "--iface" : "--cgroup");
		if (!c->target.n_ports)
			return bad(c, "--port P is required: the service's port (%s)",
				   "it tells clients from servers");
	}
	if (optind < argc)
		return bad(c, "unexpected argument '%s'", argv[optind]);
	if (!c->replay && st_target_check(&c->target, c->cmd))
		return ST_EXIT_USAGE;
	if (!cfg->n_targets)
		return bad(c, "--to HOST:PORT is required (see shadowtap %s --help)", c->cmd);
	if (pct_sum > 100)
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

		if (st_http__rewrite_check(&rw))
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

static void tap_lost(struct shadow_cmd *c)
{
	struct st_tap_stats ts;

	st_tap__stats(c->tap, &ts);
	c->cap_lost = c->cap_unrep = 0;
	for (int d = 0; d < ST_DIR_MAX; d++) {
		c->cap_lost += ts.kern[d].lost_bytes;
		c->cap_unrep += ts.kern[d].lost_unreported;
	}
	c->detaches = ts.detaches;
	c->blind_ms = ts.blind_ns / 1000000;
}

/* Every counter of the stats line as shadowtap_<name>; gauges are the ones that go down. */
static void write_metrics(struct shadow_cmd *c, const char *line)
{
	static const char *const gauges[] = { "queued", "queued_peak", "reasm_mem", "reasm_mem_peak" };
	char *dup, *tok, *save = NULL, *text = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&text, &len);
	dup = strdup(line);
	if (!f || !dup) {
		if (f)
			fclose(f);
		free(text);
		free(dup);
		return;
	}
	for (tok = strtok_r(dup, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		bool gauge = false;

		if (!eq)
			continue;
		*eq = 0;
		for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
			gauge |= !strcmp(tok, gauges[i]);
		fprintf(f, "# TYPE shadowtap_%s%s %s\nshadowtap_%s%s{command=\"%s\"} %s\n", tok,
			gauge ? "" : "_total", gauge ? "gauge" : "counter", tok, gauge ? "" : "_total",
			c->cmd, eq + 1);
	}
	free(dup);
	/* replaced atomically when a regular file; /dev/null or a FIFO is written in place
	 * (never renamed over: as root that would replace the device), without waiting */
	if (!fclose(f))
		st_output_replace(c->metrics, text, len, ST_OUT_NONBLOCK);
	free(text);
}

static void print_stats(struct shadow_cmd *c, const char *what)
{
	struct st_shadow_stats st;
	char line[1536], cap[192] = "";
	uint64_t rmem, rpeak;

	st_shadow__stats(c->sh, &st);
	st_shadow__format(&st, line, sizeof(line));
	/* what --max-mem bounds, next to what --max-queue-mb bounds (queued_peak) */
	st_shadow__reasm_mem(c->sh, &rmem, &rpeak);
	snprintf(line + strlen(line), sizeof(line) - strlen(line), " reasm_mem=%" PRIu64
		 " reasm_mem_peak=%" PRIu64, rmem, rpeak);
	if (!c->replay) {
		/* requests the kernel could not hand over never show up as requests: say so */
		if (c->tap)
			tap_lost(c);
		snprintf(cap, sizeof(cap), " capture_lost_bytes=%llu capture_lost_unreported=%llu"
			 " detaches=%llu blind_ms=%llu", c->cap_lost, c->cap_unrep, c->detaches,
			 c->blind_ms);
	}
	if (strcmp(what, "metrics"))
		fprintf(stderr, "shadowtap: %s %s%s\n", what, line, cap);
	if (c->metrics) {
		char all[1792];

		snprintf(all, sizeof(all), "%s%s", line, cap);
		write_metrics(c, all);
	}
}

/* Timers and the periodic stats line (both commands). */
static void timers(struct shadow_cmd *c, uint64_t now)
{
	if (now - c->last_timers >= TIMERS_EVERY_NS) {
		c->last_timers = now;
		st_shadow__tick(c->sh, c->replay ? 0 : realtime_ns());
	}
	if ((c->stats_s > 0 || c->metrics) &&
	    now - c->last_stats >= (uint64_t)((c->stats_s > 0 ? c->stats_s : 5) * 1e9)) {
		c->last_stats = now;
		print_stats(c, c->stats_s > 0 ? "stats" : "metrics");
	}
}

static int on_shadow_io(void *ctx)
{
	struct shadow_cmd *c = ctx;

	return st_shadow__io(c->sh);
}

/* ---- live -------------------------------------------------------------------------------- */

static int live_seg(void *ctx, const struct st_segment *s)
{
	struct shadow_cmd *c = ctx;

	if (c->target.n_hosts && !st_hosts_match(c->target.hosts, c->target.n_hosts, &s->key.src) &&
	    !st_hosts_match(c->target.hosts, c->target.n_hosts, &s->key.dst)) {
		c->filtered_segs++;
		return 0;
	}
	st_shadow__feed(c->sh, s);
	return 0;
}

static int live_ring(void *ctx)
{
	struct shadow_cmd *c = ctx;
	int n = st_tap__consume(c->tap);

	st_shadow__kick(c->sh);
	return n < 0 ? n : 0;
}

static int live_tick(void *ctx)
{
	struct shadow_cmd *c = ctx;
	int n = st_tap__consume(c->tap);

	st_shadow__kick(c->sh);
	timers(c, mono_ns());
	return n < 0 ? n : 0;
}

static int run_live(struct shadow_cmd *c)
{
	int err;

	c->tap = st_tap__open(&c->target, c->verbose, live_seg, c);
	if (!c->tap)
		return -2; /* st_tap__open said why */
	err = st_loop__add(c->loop, st_tap__fd(c->tap), live_ring, c);
	if (!err)
		err = st_tap__watch(c->tap, c->loop);
	if (!err)
		err = st_loop__add(c->loop, st_shadow__fd(c->sh), on_shadow_io, c);
	if (!err)
		err = st_loop__set_tick(c->loop, LIVE_TICK_MS, live_tick, c);
	if (err) {
		fprintf(stderr, "shadowtap %s: event loop: %s\n", c->cmd, strerror(-err));
		return -1;
	}
	if (c->verbose)
		fprintf(stderr, "shadowtap: shadowing %zu port(s) on %s %s to %u target(s)\n",
			c->target.n_ports, c->target.iface ? "interface" : "cgroup",
			c->target.iface ? c->target.iface : c->target.cgroup, c->cfg.n_targets);
	err = st_loop__run(c->loop, c->duration);
	if (err)
		fprintf(stderr, "shadowtap %s: %s\n", c->cmd, strerror(-err));
	/* what is in flight in the ring still counts; then detach before draining */
	st_tap__consume(c->tap);
	tap_lost(c);
	st_tap__destroy(c->tap);
	c->tap = NULL;
	return err ? -1 : 0;
}

/* ---- replay ---------------------------------------------------------------------------- */

static void replay_next(struct shadow_cmd *c)
{
	int r;

	while ((r = st_pcapin__next(c->pin, &c->seg)) > 0) {
		if (st_target_keeps(&c->target, &c->seg.key)) {
			c->have_seg = true;
			return;
		}
		c->filtered_segs++;
	}
	c->have_seg = false;
	c->eof = true;
	if (r < 0) {
		if (st_pcapin__truncated(c->pin)) {
			fprintf(stderr, "shadowtap %s: %s is truncated; replayed everything before "
					"the cut (%s)\n", c->cmd, c->file, st_pcapin__error(c->pin));
		} else {
			fprintf(stderr, "shadowtap %s: %s is damaged; replayed everything before it "
					"(%s)\n", c->cmd, c->file, st_pcapin__error(c->pin));
			c->read_err = 1;
		}
	}
}

/* Feeds the segments that are due (original timing) or as many as the shadows take (--fast). */
static void replay_feed(struct shadow_cmd *c)
{
	uint64_t now = mono_ns();
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

static int replay_tick(void *ctx)
{
	struct shadow_cmd *c = ctx;
	uint64_t now = mono_ns();

	replay_feed(c);
	timers(c, now);
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
		fprintf(stderr, "shadowtap %s: %s: not a readable pcap or pcapng file (%s)\n", c->cmd,
			c->file, perr);
		return -2;
	}
	replay_next(c);
	err = st_loop__add(c->loop, st_shadow__fd(c->sh), replay_io, c);
	if (!err)
		err = st_loop__set_tick(c->loop, REPLAY_TICK_MS, replay_tick, c);
	if (err) {
		fprintf(stderr, "shadowtap %s: event loop: %s\n", c->cmd, strerror(-err));
		return -1;
	}
	err = st_loop__run(c->loop, 0);
	if (err)
		fprintf(stderr, "shadowtap %s: %s\n", c->cmd, strerror(-err));
	if (c->verbose) {
		struct st_pcapin_stats ps;

		st_pcapin__stats(c->pin, &ps);
		fprintf(stderr, "shadowtap: pcap packets=%" PRIu64 " segments=%" PRIu64
				" not_tcp=%" PRIu64 " malformed=%" PRIu64 " filtered=%" PRIu64 "\n",
			ps.packets, ps.segments, ps.not_tcp, ps.malformed, c->filtered_segs);
	}
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

static int run(int argc, char **argv, bool replay)
{
	struct shadow_cmd *c = calloc(1, sizeof(*c));
	int ret, r;

	if (!c) {
		fprintf(stderr, "shadowtap: out of memory\n");
		return ST_EXIT_RUNTIME;
	}
	c->cmd = replay ? "replay" : "shadow";
	c->replay = replay;
	c->target.ring_mb = ST_RING_MB_DEFAULT;
	c->cfg.mark_name = "X-Shadowtap";
	c->cfg.mark_value = "1";
	c->drain_s = -1;
	ret = parse(c, argc, argv);
	if (ret) {
		ret = ret < 0 ? ST_EXIT_OK : ret;
		goto out;
	}
	if (c->drain_s < 0)
		c->drain_s = replay ? 10 : 2;
	if (c->speed <= 0)
		c->speed = 1;
	c->cfg.ports = c->target.ports;
	c->cfg.n_ports = c->target.n_ports;
	c->cfg.live = !replay;
	c->cfg.reasm_max_mem = c->target.max_mem ? c->target.max_mem : SHADOW_MAX_MEM_DEFAULT;
	if (!replay)
		c->cfg.hash_seed = realtime_ns() ^ ((uint64_t)getpid() << 32);
	raise_nofile();
	ret = ST_EXIT_RUNTIME;
	c->sh = st_shadow__new(&c->cfg);
	c->loop = st_loop__new();
	if (!c->sh || !c->loop) {
		fprintf(stderr, "shadowtap %s: %s\n", c->cmd, strerror(errno));
		goto out;
	}
	c->last_timers = c->last_stats = mono_ns();
	r = replay ? run_replay(c) : run_live(c);
	if (r == -2)
		goto out; /* nothing started: no summary */
	/* the captured connections end here; queued requests get a last chance */
	st_shadow__flush(c->sh);
	st_shadow__drain(c->sh, replay && c->flushed ? 0 : (int)(c->drain_s * 1000));
	print_stats(c, "summary");
	if (!r)
		ret = ST_EXIT_OK;
out:
	st_tap__destroy(c->tap);
	st_shadow__free(c->sh);
	st_loop__free(c->loop);
	st_pcapin__close(c->pin);
	if (c->match_set)
		regfree(&c->match_re);
	if (c->exclude_set)
		regfree(&c->exclude_re);
	free(c);
	return ret;
}

int cmd_shadow(int argc, char **argv)
{
	return run(argc, argv, false);
}

int cmd_replay(int argc, char **argv)
{
	return run(argc, argv, true);
}
