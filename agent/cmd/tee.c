/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap tee`: a service's live traffic, reassembled (reasm), redacted and written as a
 * tee stream (stream.h, docs/TEE.md) to a file, stdout or a TCP peer, for
 * `shadowtap receive` on a workstation. This file holds the options, their checks, the job
 * kind and the wiring; the engines are in agent/stream/.
 *
 * The wiring: tap -> reassembly -> the framing with redaction (teeframe.h) -> stream
 * encoder -> the output's writer thread (teeout.h), or Kafka's producer (kafka.h).
 * Production is never made to wait: the event loop only queues frames;
 * when the queue (--max-queue-mb) or the rate cap (--max-rate) is full, records are
 * dropped whole and counted, and the receiver sees a gap of their exact length (a
 * connection whose OPEN record could not go is left out whole).
 *
 * Secrets stay on the host: unless --no-redact, every connection is framed as HTTP/1.x
 * and the values of the redacted header fields and query parameters are overwritten with
 * '*' (same length: framing, Content-Length and offsets stay valid) before a byte reaches
 * the encoder. What cannot be framed (not HTTP, a framing error, bytes after an Upgrade)
 * is held back as gaps of its exact length, unless --raw.
 */
#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "connmap.h"
#include "job.h"
#include "kafka.h"
#include "log.h"
#include "loop.h"
#include "optparse.h"
#include "opts.h"
#include "output.h"
#include "reasm.h"
#include "redact.h"
#include "stream.h"
#include "tap.h"
#include "teeframe.h"
#include "teeout.h"
#include "tlslink.h"

#ifndef ST_VERSION
#define ST_VERSION "0.1.0"
#endif

#define TEE_FLUSH_NS (250ull * 1000000)     /* a sync flush at least this often (live view) */
#define TEE_DURATION_DEFAULT 900.0          /* a forgotten tee stops by itself */
#define TEE_MAX_RATE_DEFAULT (16ull << 20)  /* stream bytes per second */
#define TEE_QUEUE_DEFAULT (32ull << 20)
#define TEE_CLOSE_WAIT_S 5                  /* at the end, a stalled reader is given up on */
#define TEE_DAEMON_CLOSE_WAIT_MS 1000       /* ... in the daemon, whose loop waits meanwhile */
#define TEE_MAX_METHODS 16
#define TEE_MAX_MEM_DEFAULT (256ull << 20)
/* The tee's own counters; the framing's (teeframe.h) come before them on the lines. */
#define TEE_STATS(X, T)                                                                        \
	X(T, wire_bytes, COUNTER, "bytes written to the output (compressed)")                 \
	X(T, raw_stream_bytes, COUNTER, "stream bytes before compression")                    \
	X(T, link_losses, COUNTER, "times the --to link was lost (reconnected with a new stream)") \
	X(T, queue_peak, GAUGE_BYTES, "most bytes waiting for the output at once")            \
	X(T, mem_peak, GAUGE_BYTES, "most reassembly memory held")

struct tee_stats {
	TEE_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DEFINE(st_tee_stat, struct tee_stats, TEE_STATS);

struct tee {
	struct st_job_head h; /* first (job.h): the target, -v -q --stats, --duration */
	/* options */
	const char *out;
	mode_t out_mode; /* --output-mode */
	const char *to;
	bool insecure;
	struct st_tlslink_opts tlso;
	double sample;
	double max_rate_opt;  /* MiB/s, 0 = none */
	bool max_rate_set;
	uint64_t max_queue;
	bool raw;
	struct st_redact_rules rules;
	char methods_buf[256];
	const char *methods[TEE_MAX_METHODS];
	unsigned n_methods;
	regex_t match_re, exclude_re;
	bool match_set, exclude_set;
	int level;
	struct st_kafka_conf kafka; /* --kafka (kafka.h) */
	struct st_kafka_producer *kp;
	/* the run */
	struct st_reasm *r;
	struct st_teeframe *fr; /* reassembly's events -> records, redacted (teeframe.h) */
	struct st_stream_enc *enc;
	uint64_t enc_gen;     /* the link generation the encoder writes for */
	char header[ST_STREAM_HEADER_MAX];
	bool was_down;
	uint64_t down_ns, down_records, down_bytes, down_conns;
	uint64_t raw_prev;    /* stream bytes of the streams before a reconnect */
	struct st_teeout *oq; /* the output (teeout.h); NULL with --kafka */
	bool in_daemon;       /* a daemon job: nothing may block the shared loop */
	bool connecting;      /* a daemon job's --to is not connected yet: records are dropped */
	bool running;         /* attached: the stream started */
	int close_wait_ms;    /* the end waits this long at most for a reader, or Kafka */
	uint64_t max_rate;    /* bytes/s */
	double tokens;
	uint64_t tokens_ns;
	uint64_t last_flush_ns;
	uint64_t filtered_segs;
	int err_said;         /* the output's error was reported */
	struct tee_stats st;
};
_Static_assert(offsetof(struct tee, h) == 0, "job.h: the head first");

#define TEE(o) ((struct tee *)(o))

static const char usage_head[] =
	"Usage: shadowtap tee (--iface IFACE | --cgroup PATH) --port P ... (-o FILE | -o - |\n"
	"                     --to HOST:PORT (--cert F --key F --ca F | --insecure))\n"
	"                     [--host CIDR ...] [--sample PCT]\n"
	"                     [--match-method M,...] [--match-path RE] [--exclude-path RE]\n"
	"                     [--duration SEC] [--redact-header NAME ...]\n"
	"                     [--redact-query PARAM ...] [--redact-field NAME ...] [--no-redact]\n"
	"                     [--raw] [--max-rate MIBS]\n"
	"       shadowtap tee ... --kafka BROKERS --topic T [--kafka-opt K=V ...]\n"
	"                     [--kafka-opt-file FILE] [--kafka-message-kb N]\n"
	"\n"
	"Tees a service's live connections, reassembled, to a tee stream (docs/TEE.md) for\n"
	"`shadowtap receive`:\n"
	"  ssh prod-host shadowtap tee --iface eth0 --port 8080 -o - |\n"
	"      shadowtap receive - --print --to 127.0.0.1:8080\n"
	"Secrets stay on the host: credentials in header fields, trailers, URLs' userinfo,\n"
	"query parameters and JSON bodies (a default set, and --redact-header/--redact-query/\n"
	"--redact-field) are overwritten, length preserved; connections that are not HTTP are\n"
	"held back (gaps) unless --raw.\n"
	"Production never waits: when the output is slower than the traffic, records are\n"
	"dropped whole and counted, and the receiver sees a gap of their exact length.\n"
	"Stops after --duration (default 900 s; 0: until SIGINT). A summary line ends the run.\n"
	"\n";

static int opt_methods(void *o, const char *val, char *err, size_t errlen)
{
	struct tee *t = o;

	return st_opt_methods(t->methods_buf, sizeof(t->methods_buf), t->methods, &t->n_methods,
			      TEE_MAX_METHODS, val, err, errlen);
}

static int opt_match_path(void *o, const char *val, char *err, size_t errlen)
{
	return st_opt_regex(&TEE(o)->match_re, &TEE(o)->match_set, val, err, errlen);
}

static int opt_exclude_path(void *o, const char *val, char *err, size_t errlen)
{
	return st_opt_regex(&TEE(o)->exclude_re, &TEE(o)->exclude_set, val, err, errlen);
}

static int opt_max_rate(void *o, const char *val, char *err, size_t errlen)
{
	char *end;
	double v = strtod(val, &end);

	if (end == val || *end || !(v >= 0) || v > 1e6) {
		snprintf(err, errlen, "'%s' is not a rate in MiB/s (0 .. 1000000; 0: no cap)", val);
		return -1;
	}
	TEE(o)->max_rate_opt = v;
	TEE(o)->max_rate_set = true;
	return 0;
}

static const struct st_opt tee_opts[] = {
	ST_OPT_STRING("output", 'o', struct tee, out, "FILE",
		      "write the stream to FILE (- for stdout: ssh, a pipe)"),
	ST_OPT_STRING("to", 0, struct tee, to, "HOST:PORT",
		      "send the stream to a `receive --listen`: TLS 1.3, mutually\n"
		      "authenticated (--cert, --key, --ca), or --insecure"),
	ST_OPT_STRING("cert", 0, struct tee, tlso.cert, "FILE",
		      "--to: this end's certificate (PEM, chain allowed)"),
	ST_OPT_STRING("key", 0, struct tee, tlso.key, "FILE", "--to: its private key (PEM)"),
	ST_OPT_STRING("ca", 0, struct tee, tlso.ca, "FILE",
		      "--to: the receiver's certificate must chain to this CA"),
	ST_OPT_FLAG("insecure", 0, struct tee, insecure,
		    "--to in plaintext (anyone on the path reads the traffic)"),
	ST_OPT_SECONDS("duration", 'd', struct tee, h.duration, 0, 1e9,
		      "stop after SEC seconds (default 900; 0: until SIGINT)"),
	ST_OPT_DOUBLE("sample", 0, struct tee, sample, "PCT", 0.01, 100,
		      "tee PCT% of the connections (by a stable hash, decided in\n"
		      "the kernel; default 100)"),
	ST_OPT_FUNC("match-method", 0, "M[,M...]", ST_OPTF_REPEAT, opt_methods,
		    "only connections whose first request has one of these methods"),
	ST_OPT_FUNC("match-path", 0, "REGEX", 0, opt_match_path,
		    "only connections whose first request target matches REGEX"),
	ST_OPT_FUNC("exclude-path", 0, "REGEX", 0, opt_exclude_path,
		    "not connections whose first request target matches REGEX"),
	ST_OPT_FLAG("raw", 0, struct tee, raw,
		    "tee connections that are not HTTP (unredacted) instead of\n"
		    "holding them back"),
	ST_OPT_FUNC("max-rate", 0, "MIBS", 0, opt_max_rate,
		    "stream bytes per second, MiB, before compression (default 16;\n"
		    "0: no cap); beyond it records are dropped and counted"),
};

static const struct st_opt tee_limit_opts[] = {
	ST_OPT_UINT("max-queue-mb", 0, struct tee, max_queue, "N", 1, 4096, ST_OPTF_MIB,
		    "bytes waiting for the output at most, MiB (default 32)"),
	ST_OPT_UINT("level", 0, struct tee, level, "N", 1, 9, 0,
		    "zlib compression level (default 1: the cheapest)"),
};

static void init(void *obj)
{
	struct tee *t = obj;

	t->h.target.ring_mb = ST_RING_MB_DEFAULT;
	t->h.duration = -1; /* not given: check() says */
	t->close_wait_ms = TEE_CLOSE_WAIT_S * 1000;
}

static size_t optsets(void *obj, struct st_optset *sets)
{
	struct tee *t = obj;

	sets[0] = (struct st_optset)ST_OPTSET(tee_opts, t);
	sets[1] = (struct st_optset){ st_target_opts, st_target_opts_n, &t->h.target, NULL };
	sets[2] = (struct st_optset){ st_run_opts, st_run_opts_n, &t->h.run, NULL };
	sets[3] = (struct st_optset){ st_output_opts, st_output_opts_n, &t->out_mode, NULL };
	sets[4] = (struct st_optset){ st_redact_opts, st_redact_opts_n, &t->rules,
				      ST_OPT_TITLE_REDACT };
	sets[5] = (struct st_optset){ st_kafka_opts, st_kafka_opts_n, &t->kafka,
				      ST_OPT_TITLE_KAFKA };
	sets[6] = (struct st_optset){ st_kafka_producer_opts, st_kafka_producer_opts_n, &t->kafka,
				      ST_OPT_TITLE_KAFKA };
	sets[7] = (struct st_optset){ st_tap_tuning_opts, st_tap_tuning_opts_n, &t->h.target,
				      ST_OPT_TITLE_TAP };
	sets[8] = (struct st_optset){ st_reasm_opts, st_reasm_opts_n, &t->h.target,
				      ST_OPT_TITLE_LIMITS };
	sets[9] = (struct st_optset)ST_OPTSET_T(tee_limit_opts, t, ST_OPT_TITLE_LIMITS);
	return 10;
}

/* After the options. argv is NULL for a daemon job's section (job.h): the job then shares
 * the daemon's loop, and nothing of it may block (its first connect is the writer's). */
static int check(void *obj, int argc, char **argv, int first)
{
	struct tee *t = obj;

	t->in_daemon = !argv;
	if (t->in_daemon) {
		/* a daemon job runs until stopped (a forgotten command stops by itself), and
		 * its end (stop, restart) holds the shared loop 1 s at most */
		if (t->h.duration < 0)
			t->h.duration = 0;
		t->close_wait_ms = TEE_DAEMON_CLOSE_WAIT_MS;
	} else if (t->h.duration < 0) {
		t->h.duration = TEE_DURATION_DEFAULT;
	}
	if (first < argc) {
		pr_err("tee: unexpected argument '%s'", argv[first]);
		return ST_EXIT_USAGE;
	}
	if (st_target_check(&t->h.target, "tee"))
		return ST_EXIT_USAGE;
	if (!!t->out + !!t->to + !!t->kafka.brokers != 1) {
		pr_err("tee: give one output: -o FILE, -o -, --to HOST:PORT or --kafka BROKERS (see "
		       "shadowtap tee --help)");
		return ST_EXIT_USAGE;
	}
	if (t->in_daemon && t->out && !strcmp(t->out, "-")) {
		pr_err("tee: a daemon job writes to a file (output = FILE), a receiver (to) or "
		       "Kafka (kafka, topic), not to the daemon's stdout");
		return ST_EXIT_USAGE;
	}
	if (t->out && !strcmp(t->out, "-") && isatty(STDOUT_FILENO)) {
		pr_err("tee: -o - writes a compressed binary stream, not for a terminal: pipe it "
		       "into shadowtap receive -, or use -o FILE");
		return ST_EXIT_USAGE;
	}
	if (!st_kafka_conf_check(&t->kafka, false, "tee") ||
	    (t->kafka.brokers && !st_kafka_conf_valid(&t->kafka, "tee")))
		return ST_EXIT_USAGE;
	if (!st_tlslink_opts_check(&t->tlso, t->to, t->insecure, "tee", "--to"))
		return ST_EXIT_USAGE;
	if (t->rules.none && st_redact_added(&t->rules)) {
		pr_err("tee: --no-redact and --redact-header/--redact-query/--redact-field "
		       "contradict each other");
		return ST_EXIT_USAGE;
	}
	if (t->rules.none && (t->n_methods || t->match_set || t->exclude_set)) {
		pr_err("tee: --match-method/--match-path/--exclude-path need HTTP framing, which "
		       "--no-redact turns off");
		return ST_EXIT_USAGE;
	}
	return 0;
}

/* ---- the output (teeout.h) ----------------------------------------------------------- */

/* The encoder's frames: queued for the writer (never waits; what exceeds the queue cap was
 * decided before encoding, see room()). */
static int emit(void *ctx, const uint8_t *frame, size_t len)
{
	struct tee *t = ctx;

	return st_teeout__push(t->oq, t->enc_gen, frame, len);
}

static uint64_t queued(struct tee *t)
{
	return t->oq ? st_teeout__queued(t->oq) : 0;
}

/* The output, before anything attaches: -o's file opened (a FIFO waits for its reader in
 * a command; a daemon job's fails at once without one), --to's strings copied. */
static int out_open(struct tee *t)
{
	const struct st_teeout_config c = {
		.path = t->out, .to = t->to, .tls = t->insecure ? NULL : &t->tlso,
		.mode = t->out_mode, .in_daemon = t->in_daemon, .what = "tee", .fd = -1,
	};
	char err[PATH_MAX + 256];

	t->oq = st_teeout__open(&c, err, sizeof(err));
	if (!t->oq) {
		pr_err("tee: %s", err);
		return -1;
	}
	return 0;
}

/* Attached: --to connects (a daemon job's writer does it, not the shared loop), then the
 * writer thread starts. */
static int out_start(struct tee *t)
{
	char err[768];

	if (t->to && t->in_daemon)
		t->connecting = true;
	if (st_teeout__start(t->oq, err, sizeof(err))) {
		pr_err("tee: %s", err);
		return -1;
	}
	return 0;
}

/* Ends the output (teeout.h): written out, or with discard thrown away; its last counters
 * kept. 0 or the output's error. t->oq is NULL after. */
static int out_close(struct tee *t, bool discard, struct st_teeout_state *s)
{
	int err = st_teeout__close(t->oq, discard, t->close_wait_ms, s);

	t->oq = NULL;
	t->st.wire_bytes = s->written;
	t->st.queue_peak = s->peak;
	return err;
}

/* ---- what goes into the stream (teeframe.h) ----------------------------------------- */

/* Room for n more stream bytes: the output queue below its cap and the rate cap's
 * tokens. Small records (OPEN, GAP, END, CLOSE) always go: they bound nothing. */
static enum st_teeframe_room room(void *ctx, uint64_t n)
{
	struct tee *t = ctx;

	if (t->was_down || t->connecting)
		return ST_TEEFRAME_NO_LINK;
	if (queued(t) + st_stream_enc__pending(t->enc) + n > t->max_queue)
		return ST_TEEFRAME_NO_QUEUE;
	if (t->max_rate) {
		uint64_t now = st_loop_mono_ns();

		t->tokens += (double)(now - t->tokens_ns) * 1e-9 * (double)t->max_rate;
		if (t->tokens > (double)t->max_rate)
			t->tokens = (double)t->max_rate;
		t->tokens_ns = now;
		if (t->tokens < (double)n)
			return ST_TEEFRAME_NO_RATE;
		t->tokens -= (double)n;
	}
	return ST_TEEFRAME_ROOM;
}

/* ---- the run -------------------------------------------------------------------------- */

static int live_seg(void *ctx, const struct st_segment *s)
{
	struct tee *t = ctx;

	if (!st_target_hosts_keep(&t->h.target, &s->key)) {
		t->filtered_segs++;
		return 0;
	}
	st_reasm__feed(t->r, s);
	return 0;
}

/* The output's error, said once. */
static int say_error(struct tee *t, const struct st_teeout_state *q)
{
	if (q->err && !t->err_said++) {
		if (q->connect_failed)
			pr_err("tee: --to %s: %s", t->to, q->why); /* a daemon job's first connect */
		else
			pr_err("tee: %s: %s", t->to ? t->to : t->out,
			       q->err == -EPIPE ? "the reader went away" : strerror(-q->err));
	}
	return q->err;
}

static int out_error(struct tee *t)
{
	struct st_teeout_state q;

	if (!t->oq)
		return 0;
	st_teeout__state(t->oq, &q);
	return say_error(t, &q);
}

/* --to: the writer lost the link (say so once; records are dropped until it is back), or got
 * it back (a new stream: preamble, header, the open connections). */
static void link_check(struct tee *t)
{
	const struct st_teeframe_stats *fs;
	struct st_stream_enc *e;
	struct st_teeout_state q;
	uint64_t raw, wire;

	if (!t->to || !t->oq)
		return;
	st_teeout__poll(t->oq, &q);
	fs = st_teeframe__stats(t->fr);
	if (t->connecting) {
		/* a daemon job's first connect, in the writer: records wait for nothing meanwhile
		 * (dropped and counted); a failure is the output's error (out_error) */
		if (q.connecting || q.connect_failed)
			return;
		t->connecting = false;
		pr_info("tee: --to %s: connected", t->to);
	}
	if ((q.down || q.reconnected) && !t->was_down) {
		t->was_down = true;
		t->down_ns = st_loop_mono_ns();
		t->down_records = fs->dropped_records;
		t->down_bytes = fs->dropped_bytes;
		t->down_conns = fs->dropped_conns;
		t->st.link_losses++;
		pr_warn("tee: --to %s: the link is down (%s): reconnecting; records are dropped "
			"meanwhile", t->to, q.why);
	}
	if (!q.reconnected)
		return;
	e = st_stream_enc__new(t->header, t->level, emit, t);
	if (!e) {
		pr_err("tee: a new stream: %s", strerror(errno));
		return;
	}
	st_stream_enc__totals(t->enc, &raw, &wire);
	t->raw_prev += raw;
	st_stream_enc__free(t->enc);
	t->enc = e;
	t->enc_gen = q.gen;
	t->was_down = false;
	st_teeframe__restart(t->fr, t->enc, t->r);
	st_stream_enc__flush(t->enc);
	pr_warn("tee: --to %s: the link is back after %.1f s (a new stream); dropped %" PRIu64
		" records (%" PRIu64 " bytes) and %" PRIu64 " connections while it was down", t->to,
		(double)(st_loop_mono_ns() - t->down_ns) / 1e9, fs->dropped_records - t->down_records,
		fs->dropped_bytes - t->down_bytes, fs->dropped_conns - t->down_conns);
}

static void header_text(struct tee *t, char *buf, size_t len)
{
	char host[256] = "?", cidr[64], rules[4096];
	size_t o = 0;

	gethostname(host, sizeof(host) - 1);
#define ADD(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	ADD("format=%d.%d\nshadowtap=%s\nhost=%s\nstarted=%" PRIu64 "\n", ST_STREAM_MAJOR,
	    ST_STREAM_MINOR, ST_VERSION, host, st_loop_realtime_ns());
	ADD("source=%s:%s\nports=", t->h.target.iface ? "iface" : "cgroup",
	    t->h.target.iface ? t->h.target.iface : t->h.target.cgroup);
	for (size_t i = 0; i < t->h.target.n_ports; i++)
		ADD("%s%u", i ? "," : "", t->h.target.ports[i]);
	ADD("\nhosts=");
	for (size_t i = 0; i < t->h.target.n_hosts; i++)
		ADD("%s%s/%u", i ? "," : "",
		    st_addr_str(&t->h.target.hosts[i].addr, cidr, sizeof(cidr)),
		    t->h.target.hosts[i].prefix);
	ADD("\nsample=%g\n", t->sample > 0 ? t->sample : 100.0);
	ADD("redact=%s\n", st_redact_describe(&t->rules, rules, sizeof(rules)));
	if (!t->rules.none)
		ADD("not_http=%s\n", t->raw ? "raw" : "held");
	ADD("filters=%s%s%s\n", t->n_methods ? "match-method " : "",
	    t->match_set ? "match-path " : "", t->exclude_set ? "exclude-path" : "");
	ADD("max_rate=%" PRIu64 "\n", t->max_rate);
#undef ADD
	if (o >= len)
		buf[len - 1] = 0;
}


/* ---- the job (job.h): the command, and a daemon job ----------------------------------- */

/* The reassembly, the encoder and the output, before anything attaches (a wrong target then
 * leaves no output behind: -o's file is a temporary one until the end). */
static int start(void *obj)
{
	struct tee *t = obj;
	struct st_reasm_config cfg = { 0 };

	t->max_rate = t->max_rate_set ? (uint64_t)(t->max_rate_opt * (1 << 20)) :
					TEE_MAX_RATE_DEFAULT;
	t->tokens = (double)t->max_rate;
	t->tokens_ns = st_loop_mono_ns();
	if (!t->max_queue)
		t->max_queue = TEE_QUEUE_DEFAULT;
	header_text(t, t->header, sizeof(t->header));
	cfg.max_mem = t->h.target.max_mem ? t->h.target.max_mem : TEE_MAX_MEM_DEFAULT;
	cfg.ports = t->h.target.ports;
	cfg.n_ports = t->h.target.n_ports;
	cfg.hash_seed = st_connmap_random_seed();
	if (t->kafka.brokers) {
		t->kp = st_kafka_producer__new(&t->kafka, t->max_queue, t->level, "tee");
		if (!t->kp)
			return -1;
		t->enc = st_stream_enc__new_records(&st_kafka_producer_rec_ops, t->kp);
	} else {
		if (out_open(t))
			return -1;
		t->enc = st_stream_enc__new(t->header, t->level, emit, t);
	}
	{
		const struct st_teeframe_config fc = {
			.rules = &t->rules, .raw = t->raw,
			.methods = t->methods, .n_methods = t->n_methods,
			.match = t->match_set ? &t->match_re : NULL,
			.exclude = t->exclude_set ? &t->exclude_re : NULL,
			.room = room, .ctx = t,
		};

		t->fr = t->enc ? st_teeframe__new(&fc, t->enc) : NULL;
	}
	t->r = t->fr ? st_reasm__new(&cfg, &st_teeframe_ops, t->fr) : NULL;
	if (!t->r) {
		pr_err("tee: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Attached: the writer starts (--to connects), and the header goes first, so a receiver
 * knows what it reads before any traffic. */
static int attached(void *obj, struct st_loop *l, struct st_tapsub *sub)
{
	struct tee *t = obj;

	if (t->oq && out_start(t))
		return -1;
	st_stream_enc__flush(t->enc);
	t->last_flush_ns = st_loop_mono_ns();
	t->running = true;
	return 0;
}

/* The runner drained the ring first: reassembly's clock would otherwise jump to the wall
 * clock and stamp those bytes with it instead of their capture time (--print's latencies
 * are computed from these stamps). */
static int tick(void *obj, uint64_t now)
{
	struct tee *t = obj;

	if (t->kp)
		st_kafka_producer__poll(t->kp);
	link_check(t);
	st_reasm__tick(t->r, st_loop_realtime_ns());
	if (now - t->last_flush_ns >= TEE_FLUSH_NS) {
		t->last_flush_ns = now;
		if (st_stream_enc__flush(t->enc))
			return out_error(t) ? -1 : -EIO;
	}
	return out_error(t) ? -1 : 0;
}

static void tap_opts(void *obj, struct st_tap_opts *o)
{
	o->sample_permyriad = st_tap_permyriad(TEE(obj)->sample);
}

/* The counters now: the tee's, the tap's, the Kafka producer's. */
static void add_stats(struct tee *t, struct st_statline *l, const struct st_tap_summary *ts)
{
	struct st_reasm_stats rs;
	uint64_t raw = 0, wire = 0;

	st_reasm__stats(t->r, &rs);
	t->st.mem_peak = rs.mem_peak;
	if (t->enc)
		st_stream_enc__totals(t->enc, &raw, &wire);
	t->st.raw_stream_bytes = t->raw_prev + raw;
	if (t->oq) {
		struct st_teeout_state q;

		st_teeout__state(t->oq, &q);
		t->st.wire_bytes = q.written;
		t->st.queue_peak = q.peak;
	}
	st_statline_add_table(l, st_teeframe_stat_desc, st_teeframe_stat_n,
			      st_teeframe__stats(t->fr));
	st_statline_add_table(l, st_tee_stat_desc, st_tee_stat_n, &t->st);
	st_statline_add_table(l, st_tap_stat_desc, st_tap_stat_n, ts);
	if (t->kp) {
		struct st_kafka_prod_stats ks;
		struct st_kmsg_batch_stats bs;

		st_kafka_producer__stats(t->kp, &ks, &bs);
		st_statline_add_table(l, st_kmsg_batch_stat_desc, st_kmsg_batch_stat_n, &bs);
		st_statline_add_table(l, st_kafka_prod_stat_desc, st_kafka_prod_stat_n, &ks);
	}
}

static void stats(void *obj, struct st_statline *l, const struct st_tap_summary *ts)
{
	if (TEE(obj)->r)
		add_stats(obj, l, ts);
}

/* The tap is gone: the stream is ended (its trailer), written out, the summary printed. */
static int finish(void *obj, int err, bool ran, const struct st_tap_summary *ts, const char *what)
{
	struct tee *t = obj;
	const struct st_teeframe_stats *fs;
	struct st_stream_trailer tr = { 0 };
	struct st_teeout_state q;
	struct st_statline l;

	if (!ran || !t->running) {
		/* nothing ran (it said why): no output stays, no summary */
		if (t->oq)
			out_close(t, true, &q);
		return ST_EXIT_RUNTIME;
	}
	st_reasm__flush(t->r);
	fs = st_teeframe__stats(t->fr);
	tr.ts = st_loop_realtime_ns();
	tr.dropped_records = fs->dropped_records;
	tr.dropped_bytes = fs->dropped_bytes;
	tr.dropped_conns = fs->dropped_conns;
	tr.held_conns = fs->held_conns;
	if (st_stream_enc__finish(t->enc, &tr))
		err = -1;
	if (t->oq && out_close(t, false, &q)) {
		if (!q.given_up)
			say_error(t, &q);
		err = -1;
	}
	if (t->kp)
		st_kafka_producer__close(t->kp, t->close_wait_ms);
	st_statline_init(&l);
	add_stats(t, &l, ts);
	st_statline_print(&l, what);
	if (fs->held_conns)
		pr_warn("tee: %" PRIu64 " connections were not HTTP and were held back (--raw tees "
			"them unredacted)", fs->held_conns);
	return err ? ST_EXIT_RUNTIME : ST_EXIT_OK;
}

/* Reload: with --kafka the new ports, peers and sample are taken in place (its messages
 * carry no stream header: they name only the capture host); a file's or a receiver's
 * stream names them in its header, so that job restarts (a new stream) instead. The sample
 * applies to connections that start from then on (the kernel's hash, tapmux). */
static bool retarget(void *obj, const void *new_obj)
{
	struct tee *t = obj;
	const struct tee *n = new_obj;

	if (!t->kp || !n->kafka.brokers || !t->r ||
	    st_reasm__set_ports(t->r, n->h.target.ports, n->h.target.n_ports))
		return false;
	st_job_head_retarget(&t->h, &n->h);
	t->sample = n->sample;
	return true;
}

/* The daemon is stopping: the end waits at most max_s for a receiver or Kafka. */
static void limit_drain(void *obj, double max_s)
{
	struct tee *t = obj;
	int ms = max_s > 0 ? (int)(max_s * 1000) : 0;

	if (ms < t->close_wait_ms)
		t->close_wait_ms = ms;
}

static void destroy(void *obj)
{
	struct tee *t = obj;
	struct st_teeout_state q;

	if (t->oq)
		out_close(t, true, &q);
	st_reasm__free(t->r);
	st_teeframe__free(t->fr);
	st_stream_enc__free(t->enc);
	st_kafka_producer__free(t->kp);
	if (t->match_set)
		regfree(&t->match_re);
	if (t->exclude_set)
		regfree(&t->exclude_re);
}



static void describe(void *obj, struct st_job_desc *d)
{
	struct tee *t = obj;
	unsigned added = t->rules.n_headers + t->rules.n_queries + t->rules.n_fields;

	if (t->kafka.brokers)
		snprintf(d->outputs, sizeof(d->outputs), "Kafka %s, topic %s", t->kafka.brokers,
			 t->kafka.topic ? t->kafka.topic : "?");
	else if (t->to)
		snprintf(d->outputs, sizeof(d->outputs), "receiver %s (%s)", t->to,
			 t->insecure ? "plaintext" : "TLS");
	else
		snprintf(d->outputs, sizeof(d->outputs), "%s", strcmp(t->out, "-") ? t->out : "stdout");
	{
		size_t o = strlen(d->outputs);

		if (t->rules.none)
			snprintf(d->outputs + o, sizeof(d->outputs) - o, ", NOT redacted (--no-redact)");
		else
			snprintf(d->outputs + o, sizeof(d->outputs) - o, ", redacted (the default set%s)",
				 added ? " and --redact-*" : "");
	}
}

/* Stream bytes in, bytes written, what was dropped and why, the output's queue. */
static void brief(void *obj, const struct st_tap_summary *ts, struct st_brief *b)
{
	struct tee *t = obj;
	const struct st_teeframe_stats *fs;
	struct st_teeframe_stats none = { 0 };
	uint64_t raw = 0, wire = 0;

	fs = t->fr ? st_teeframe__stats(t->fr) : &none;
	if (t->enc)
		st_stream_enc__totals(t->enc, &raw, &wire);
	if (t->oq) {
		struct st_teeout_state q;

		st_teeout__state(t->oq, &q);
		wire = q.written;
	}
	st_brief_add(b, "teed", t->raw_prev + raw, ST_BRIEF_RATE | ST_BRIEF_BYTES);
	st_brief_add(b, "written", wire, ST_BRIEF_RATE | ST_BRIEF_BYTES);
	st_brief_add(b, "connections", fs->teed, 0);
	st_brief_add(b, "dropped", fs->dropped_records, 0);
	st_brief_add(b, "link down", fs->dropped_link, ST_BRIEF_SUB);
	st_brief_add(b, "queue full", fs->dropped_queue, ST_BRIEF_SUB);
	st_brief_add(b, "max-rate", fs->dropped_rate, ST_BRIEF_SUB);
	st_brief_add(b, "held", fs->held_conns, 0);
	st_brief_add(b, "lost", ts->lost, ST_BRIEF_BYTES);
	st_brief_add(b, "queue", queued(t) + (t->enc ? st_stream_enc__pending(t->enc) : 0),
		     ST_BRIEF_BYTES);
	st_brief_add(b, "of", t->max_queue, ST_BRIEF_SUB | ST_BRIEF_BYTES);
}


const struct st_job_kind st_tee_kind = {
	.name = "tee",
	.usage_head = usage_head,
	.size = sizeof(struct tee),
	.tick_ms = ST_TICK_LAZY_MS,
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
	.segment = live_seg,
	.tick = tick,
	.finish = finish,
	.stats = stats,
	.retarget = retarget,
	.limit_drain = limit_drain,
	.destroy = destroy,
};

int cmd_tee(int argc, char **argv)
{
	return st_job_command(&st_tee_kind, argc, argv);
}
