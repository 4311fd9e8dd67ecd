/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap receive`: reads a tee stream (stream.h, docs/TEE.md) from a file, stdin or a
 * TCP listener and feeds any combination of outputs at once, each through the engine that
 * already does that job:
 *  -o DIR   the flows engine (flowsink.h): one file per connection direction, as `flows`;
 *  -w FILE  the pcap writer (pcapw.h): the streams re-segmented into TCP frames (reseg.h: a
 *           handshake, data in MSS-sized segments with consistent seq/ack, FIN or RST);
 *  --to     the shadow engine (shadow.h), fed the same segments at their capture's pace
 *           (segpace.h): whole requests, in order, per connection, released once
 *           production's answer is in the stream (with --rate or --steps, a load test of
 *           them: load.h, docs/LOAD.md);
 *  --print  one line per exchange, framed by http.h (HTTP/2: one per stream, by h2.h).
 * A damaged or cut stream stops the input with one line naming the offset; every output
 * keeps what arrived before it (connections are closed, the pcap is committed whole).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "connmap.h"
#include "exchange.h"
#include "flowsink.h"
#include "kafka.h"
#include "linklisten.h"
#include "load.h"
#include "load_opts.h"
#include "load_report.h"
#include "log.h"
#include "loop.h"
#include "optparse.h"
#include "opts.h"
#include "output.h"
#include "pcapw.h"
#include "progress.h"
#include "reseg.h"
#include "compare_opts.h"
#include "correlate_opts.h"
#include "segpace.h"
#include "shadow.h"
#include "stream.h"
#include "tlslink.h"

#define RX_READ (256u << 10)
#define RX_FILE_READS 16          /* reads per tick from a regular file */
/* --print frames both directions of a connection (exchange.h): at most this many connections
 * at once (heads of at most 16 KiB each: 4096 x 2 x 16 KiB = 128 MiB at worst); more are
 * counted. */
#define RX_PRINT_CONNS_MAX 4096
#define RX_DRAIN_MS 5000
#define RX_MAX_MEM_DEFAULT (256ull << 20)
#define RX_KAFKA_MSGS 256         /* Kafka messages per tick at most */
/* --to's pacing (segpace.h): segments held for their time, at most this many bytes (then the
 * input waits); a source ahead of its pace by more than RX_PACE_AHEAD_NS (another host's
 * clock, a stream read from its middle) sets the pace again instead of being held; a file or
 * a Kafka backlog is read at most RX_PACE_READ_AHEAD_NS ahead of its pace */
#define RX_PACE_MAX_BYTES (64u << 20)
#define RX_PACE_AHEAD_NS 1000000000ll
#define RX_PACE_READ_AHEAD_NS 250000000ull

struct rconn {
	struct receive *rx;        /* the run (the ctx of reseg.h's and exchange.h's callbacks) */
	struct st_reasm_conn fc;   /* the flows engine's view (its own user pointer) */
	struct st_reseg rs;        /* its TCP segments (-w, --to) */
	bool sh_stopped;           /* --to: its replay stopped (a gap, joined midway): on_mark() */
	uint64_t last_due;         /* --to: its last segment's release time (segpace.h) */
	/* --print */
	bool http;                 /* followed (counted in rx->printing) */
	bool print_lost;           /* stopped following (a gap, not HTTP): on_mark() */
	struct st_exchange_conn ex;
};

#define RECEIVE_STATS(X, T)                                                                    \
	X(T, connections, COUNTER, "connections in the stream")                               \
	X(T, data_bytes, COUNTER, "stream bytes received")                                         \
	X(T, gap_bytes, COUNTER, "bytes the stream marks missing (capture loss, sender drops, held)") \
	X(T, sender_dropped_bytes, COUNTER, "... of which the sender dropped (its output too slow)") \
	X(T, held_bytes, COUNTER, "... of which the sender held back (not redactable)")         \
	X(T, exchanges, COUNTER, "request/response exchanges printed (--print)")              \
	X(T, print_lost, COUNTER, "connections --print stopped following (gap, not HTTP)")   \
	X(T, print_skipped, COUNTER, "connections --print did not follow (4096 followed already)") \
	X(T, stream_bytes, COUNTER, "bytes of the tee stream read (compressed)")             \
	X(T, streams, COUNTER, "tee streams read (--listen: one more after each reconnect)")   \
	X(T, link_losses, COUNTER, "--listen: streams cut by a lost link (the tee reconnects)") \
	X(T, segments, COUNTER, "TCP segments made from the streams (-w, --to)")              \
	X(T, pace_flushes, DETAIL, "--to: times pacing held its most (64 MiB) and let everything go at once") \
	X(T, resumed_conns, COUNTER, "--to: connections replayed again from an exchange boundary (MARK) after a gap or a midway join") \
	X(T, bad_gaps, COUNTER, "connections whose outputs ended at a gap longer than a tee writes (1 GiB)")

struct receive_stats {
	RECEIVE_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DEFINE(st_receive_stat, struct receive_stats, RECEIVE_STATS);

struct receive {
	/* options */
	const char *input;      /* FILE or "-" */
	const char *listen;
	bool insecure;
	struct st_tlslink_opts tlso;
	const char *wpath;
	const char *outdir;
	bool force;
	mode_t out_mode;            /* --output-mode: -w's, -o's files, the compare and load outputs */
	const char *to;
	bool print;
	bool once;                  /* --listen --once: the first whole stream ends the run */
	struct st_run_opts run;     /* -v, -q, --stats */
	struct st_kafka_conf kafka; /* --kafka (kafka.h) */
	struct st_kafka_consumer *kc;
	/* the run */
	int fd;
	bool is_file, eof, failed;
	struct st_tlslink *tls;
	struct st_linklisten *ll; /* --listen: takes the tee's connection (fd, tls) */
	struct st_stream_dec *dec;
	struct st_flowsink *sink;
	int dirfd;
	struct st_pcapw *pw;
	struct st_shadow *sh;
	struct st_shadow_config scfg;
	struct st_cmp_opts cmp;     /* --compare ... (compare_opts.h), with --to */
	struct st_compare *compare;
	struct st_load_opts lo;     /* --rate, --steps ... (load_opts.h), with --to */
	struct st_load *load;
	uint64_t last_report;
	struct st_correlate_opts cor; /* --correlate ... (correlate_opts.h), with --to */
	bool fast;                  /* --to without the stream's timing */
	struct st_segpace pace;     /* --to's pacing: segments waiting for their time */
	struct st_loop *loop;
	uint64_t seed;
	uint64_t last_ts;
	uint64_t last_shadow_tick;
	unsigned printing;      /* connections --print follows now */
	bool print_header;      /* --print's column header is out */
	bool last_lost;         /* --listen: the last stream was cut (the next one is its tee's
				 * reconnect) */
	struct st_progress prog; /* --stats, the status line */
	struct receive_stats st;
	struct st_stream_trailer trailer;
	bool have_trailer;
	uint8_t buf[RX_READ];
};

static const char usage_head[] =
	"Usage: shadowtap receive (FILE | - | --listen ADDR:PORT (--cert F --key F --ca F |\n"
	"                         --insecure)) [-w OUT.pcap]\n"
	"                         [-o DIR [--force]] [--to HOST:PORT] [--print]\n"
	"       shadowtap receive --kafka BROKERS --topic T --group G [--from earliest|latest|TIME]\n"
	"                         [--kafka-opt K=V ...] [--kafka-opt-file FILE] OUTPUTS...\n"
	"\n"
	"Reads a tee stream (`shadowtap tee`, docs/TEE.md) and feeds any combination of:\n"
	"  -w    a pcap of the streams, re-segmented into TCP frames (Wireshark, tshark, tcpflow)\n"
	"  -o    one file per connection direction, as `shadowtap flows` writes them\n"
	"  --to  a replay of the requests into a local build, with the shadow engine's\n"
	"        semantics (whole requests, in order, per connection; marked X-Shadowtap: 1)\n"
	"  --print  one line per exchange: time, client, method, target, status, request and\n"
	"        response bytes, production's latency\n"
	"  --compare (with --to)  tap compare: the candidate's answers against production's,\n"
	"        which are in the stream (docs/COMPARE.md); --report-json gives a partial\n"
	"        report that `shadowtap report --merge` joins with other receivers'\n"
	"A damaged or cut stream ends the input with one line naming its offset (exit 1); the\n"
	"outputs keep everything before it (--listen: the tee's next connection, after it\n"
	"reconnects, starts a new stream into the same outputs). A summary line ends the run.\n"
	"\n"
	"  FILE                  the stream (- for stdin: ssh prod shadowtap tee ... -o - |)\n";

static const struct st_opt receive_opts[] = {
	ST_OPT_STRING("listen", 0, struct receive, listen, "ADDR:PORT",
		      "take the stream from one `tee --to` connection: TLS 1.3,\n"
		      "mutually authenticated (--cert, --key, --ca), or --insecure"),
	ST_OPT_STRING("cert", 0, struct receive, tlso.cert, "FILE",
		      "--listen: this end's certificate (PEM, chain allowed)"),
	ST_OPT_STRING("key", 0, struct receive, tlso.key, "FILE", "--listen: its private key"),
	ST_OPT_STRING("ca", 0, struct receive, tlso.ca, "FILE",
		      "--listen: the tee's certificate must chain to this CA"),
	ST_OPT_FLAG("insecure", 0, struct receive, insecure, "--listen in plaintext"),
	ST_OPT_FLAG("once", 0, struct receive, once,
		    "--listen: end when the tee's stream ends (its END_STREAM),\n"
		    "instead of listening for the next tee"),
	ST_OPT_STRING("write", 'w', struct receive, wpath, "FILE", "pcap output (- for stdout)"),
	ST_OPT_STRING("output", 'o', struct receive, outdir, "DIR",
		      "flow files' folder; created if missing, must be empty"),
	ST_OPT_FLAG("force", 0, struct receive, force, "write into a non-empty DIR"),
	ST_OPT_STRING("to", 0, struct receive, to, "HOST:PORT", "replay the requests to HOST:PORT"),
	ST_OPT_FLAG("fast", 0, struct receive, fast,
		    "--to as fast as the stream comes (default: at the pace it was\n"
		    "captured, each connection's requests as far apart as in production)"),
	ST_OPT_FLAG("print", 0, struct receive, print,
		    "one line per exchange on stdout, after a column header"),
};

static int parse(struct receive *rx, int argc, char **argv)
{
	const struct st_optset sets[] = {
		ST_OPTSET(receive_opts, rx),
		{ st_cmp_opts, st_cmp_opts_n, &rx->cmp, NULL },
		{ st_run_opts, st_run_opts_n, &rx->run, NULL },
		{ st_output_opts, st_output_opts_n, &rx->out_mode, NULL },
		{ st_load_opts, st_load_opts_n, &rx->lo, ST_OPT_TITLE_LOAD },
		{ st_redact_opts, st_redact_opts_n, &rx->cmp.redact, ST_OPT_TITLE_REDACT },
		{ st_kafka_opts, st_kafka_opts_n, &rx->kafka, ST_OPT_TITLE_KAFKA },
		{ st_kafka_consumer_opts, st_kafka_consumer_opts_n, &rx->kafka, ST_OPT_TITLE_KAFKA },
		{ st_cmp_tuning_opts, st_cmp_tuning_opts_n, &rx->cmp, ST_OPT_TITLE_COMPARE },
		{ st_correlate_opts, st_correlate_opts_n, &rx->cor, ST_CORRELATE_OPTS_TITLE },
	};
	/* in a load test --report and --report-json are its, compare's go next to them */
	const char *paths[7];
	const char *opts[] = { "-w", "--report", "--report-json", "--diffs", "--report",
			       "--report-json", "--correlate-dump" };
	char err[512];
	int first, rc;

	rc = st_optset_parse(sets, sizeof(sets) / sizeof(sets[0]), "receive", usage_head, argc, argv,
			     &first);
	if (rc)
		return rc;
	if (first < argc)
		rx->input = argv[first++];
	if (first < argc) {
		pr_err("receive: unexpected argument '%s'", argv[first]);
		return ST_EXIT_USAGE;
	}
	if (!!rx->input + !!rx->listen + !!rx->kafka.brokers != 1) {
		pr_err("receive: give one input: FILE, -, --listen ADDR:PORT or --kafka BROKERS (see "
		       "shadowtap receive --help)");
		return ST_EXIT_USAGE;
	}
	if (!st_kafka_conf_check(&rx->kafka, true, "receive") ||
	    (rx->kafka.brokers && !st_kafka_conf_valid(&rx->kafka, "receive")))
		return ST_EXIT_USAGE;
	if (!st_tlslink_opts_check(&rx->tlso, rx->listen, rx->insecure, "receive", "--listen"))
		return ST_EXIT_USAGE;
	if (!rx->wpath && !rx->outdir && !rx->to && !rx->print) {
		pr_err("receive: give at least one output: -w FILE, -o DIR, --to HOST:PORT or "
		       "--print");
		return ST_EXIT_USAGE;
	}
	if (rx->once && !rx->listen) {
		pr_err("receive: --once is for --listen (a file or a pipe ends with its stream)");
		return ST_EXIT_USAGE;
	}
	if (rx->fast && !rx->to) {
		pr_err("receive: --fast is the pace of --to's replay: it needs --to HOST:PORT");
		return ST_EXIT_USAGE;
	}
	/* before compare's check: in a load test --report is the load test's */
	if (st_load_opts_check(&rx->lo, &rx->cmp, true, err, sizeof(err))) {
		pr_err("receive: %s", err);
		return ST_EXIT_USAGE;
	}
	if (rx->lo.on && (rx->cor.flag || rx->cor.wait_s >= 0 || rx->cor.max_mem || rx->cor.dump ||
			  rx->cor.cfg.n_fields || rx->cor.cfg.n_headers)) {
		pr_err("receive: --correlate is not for a load test (--rate, --steps): it replays "
		       "requests as recorded");
		return ST_EXIT_USAGE;
	}
	if (rx->lo.on && !rx->to) {
		pr_err("receive: %s is a load test of --to's replay: it needs --to HOST:PORT",
		       rx->lo.nsteps ? "--steps" : "--rate");
		return ST_EXIT_USAGE;
	}
	if (rx->lo.on && rx->fast) {
		pr_err("receive: %s sets --to's pace: no --fast", rx->lo.nsteps ? "--steps" : "--rate");
		return ST_EXIT_USAGE;
	}
	if ((rx->cor.flag || rx->cor.on || rx->cor.wait_s >= 0 || rx->cor.max_mem || rx->cor.dump) &&
	    !rx->to) {
		pr_err("receive: --correlate rewrites the requests of a replay: it needs --to HOST:PORT");
		return ST_EXIT_USAGE;
	}
	if (st_cmp_opts_given(&rx->cmp) && !rx->to) {
		pr_err("receive: --compare compares the answers of a replay: it needs --to HOST:PORT "
		       "(the candidate)");
		return ST_EXIT_USAGE;
	}
	if (rx->print && rx->wpath && !strcmp(rx->wpath, "-")) {
		pr_err("receive: --print and -w - both write to stdout");
		return ST_EXIT_USAGE;
	}
	if (rx->cmp.redact.none && st_redact_added(&rx->cmp.redact)) {
		pr_err("receive: --no-redact and --redact-header/--redact-query/--redact-field "
		       "contradict each other");
		return ST_EXIT_USAGE;
	}
	paths[0] = rx->wpath && strcmp(rx->wpath, "-") ? rx->wpath : NULL;
	paths[1] = rx->cmp.report;
	paths[2] = rx->cmp.report_json;
	paths[3] = rx->cmp.diffs;
	paths[4] = rx->lo.report;
	paths[5] = rx->lo.report_json;
	paths[6] = rx->cor.dump;
	if (st_output_distinct(paths, opts, 7, err, sizeof(err))) {
		pr_err("receive: %s", err);
		return ST_EXIT_USAGE;
	}
	return 0;
}

/* ---- input ---------------------------------------------------------------------------- */

/* ---- re-segmentation (-w, --to: reseg.h) and --to's pacing (segpace.h) ------------------ */

/* A segment the pacing hands over, to the shadow engine. */
static void pace_feed(void *ctx, const struct st_segment *s)
{
	struct receive *rx = ctx;

	st_shadow__feed(rx->sh, s);
}

/* Releases what is due (everything: all), then lets the engine send it. */
static void pace_release(struct receive *rx, bool all)
{
	if (st_segpace_release(&rx->pace, all ? UINT64_MAX : st_loop_mono_ns(), pace_feed, rx))
		st_shadow__kick(rx->sh);
}

/* A segment for the shadow engine: held for its time, unless --fast or a load test (whose
 * schedule says when requests go, not the capture's times). What pacing cannot hold (more
 * came at once than it holds: one Kafka poll, a --listen burst; no memory) goes now, after
 * everything held. */
static void sh_feed(struct receive *rx, struct rconn *rc, const struct st_segment *s)
{
	enum st_segpace_hold h;

	if (rx->fast || rx->load) {
		st_shadow__feed(rx->sh, s);
		return;
	}
	h = st_segpace_hold(&rx->pace, s, &rc->last_due, st_loop_mono_ns());
	if (h == ST_SEGPACE_HELD)
		return;
	if (h == ST_SEGPACE_FULL)
		rx->st.pace_flushes++;
	pace_release(rx, true);
	st_shadow__feed(rx->sh, s);
}

/* A segment for every output that takes them (reseg.h's emit, ctx: the connection). */
static void seg_out(void *ctx, struct st_segment *s)
{
	struct rconn *rc = ctx;
	struct receive *rx = rc->rx;

	rx->st.segments++;
	if (rx->pw && s->kind == ST_SEG_DATA)
		st_pcapw__write(rx->pw, s);
	if (rx->sh)
		sh_feed(rx, rc, s);
}

/* A segment for the shadow engine alone (reseg.h's emit, ctx: the connection). */
static void sh_out(void *ctx, struct st_segment *s)
{
	struct rconn *rc = ctx;

	sh_feed(rc->rx, rc, s);
}

/* The input waits: the shadow engine is full, the pacing holds its most or holds segments
 * due later than RX_PACE_READ_AHEAD_NS from now, or a load test has requests released far
 * enough ahead of its schedule. */
static bool rx_busy(struct receive *rx)
{
	uint64_t wake;

	return rx->sh && (st_shadow__busy(rx->sh) || st_segpace_full(&rx->pace) ||
			  st_segpace_ahead(&rx->pace, st_loop_mono_ns(), RX_PACE_READ_AHEAD_NS) ||
			  (rx->load && st_load__feed(rx->load, 0, st_loop_mono_ns(), &wake) !=
					       ST_LOAD_FEED));
}

/* What re-segments a connection's events: every output that takes segments, or none (the
 * numbers advance all the same). */
static st_reseg_emit_fn *segs_to(const struct receive *rx)
{
	return rx->pw || rx->sh ? seg_out : NULL;
}

/* ---- --print: one line per exchange (exchange.h) ---------------------------------------- */

static void printable(char *s)
{
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			*s = '?';
}

/* A request answered before it was complete (nginx's early 200 to an upload) has no latency:
 * "-". */
static void print_line(void *ctx, const struct st_exchange *x)
{
	struct rconn *rc = ctx;
	struct receive *rx = rc->rx;
	char cli[64], when[32], method[sizeof(x->method)], target[sizeof(x->target)];
	time_t secs = (time_t)(x->resp_ts / 1000000000ull);
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	st_addr_str(&rc->fc.key.src, cli, sizeof(cli));
	memcpy(method, x->method, sizeof(method));
	memcpy(target, x->target, sizeof(target));
	/* the policy of everything that leaves (redact.h): a stream teed with --no-redact or
	 * --redact-query of fewer names is not shown raw */
	st_redact_url(&rx->cmp.redact, target, strlen(target), (uint8_t *)target);
	printable(method);
	printable(target);
	if (!rx->print_header) {
		/* once, above the first line: what each column is (times are UTC, the answer's
		 * head; latency: production's, the request's end to that head) */
		printf("# time(UTC) client method target status req_bytes resp_bytes latency\n");
		rx->print_header = true;
	}
	printf("%s.%03u %s%s%s:%u %s %s %u", when, (unsigned)(x->resp_ts / 1000000 % 1000),
	       rc->fc.key.src.family == 6 ? "[" : "", cli, rc->fc.key.src.family == 6 ? "]" : "",
	       rc->fc.key.sport, method, target, x->status);
	if (x->grpc >= 0)
		printf("/%d", x->grpc); /* gRPC: the call's status */
	printf(" %" PRIu64 " %" PRIu64 " ", x->req_bytes, x->resp_bytes);
	if (x->resp_ts >= x->req_end_ts)
		printf("%.3fms\n", (double)(x->resp_ts - x->req_end_ts) / 1e6);
	else
		printf("-\n");
	fflush(stdout);
	rx->st.exchanges++;
}

/* The exchange engine stopped following rc (not HTTP, a gap it cannot step over, a bound). */
static void print_stop(struct receive *rx, struct rconn *rc)
{
	if (!rc->http)
		return;
	st_exchange__free(&rc->ex);
	rc->http = false;
	rc->print_lost = true;
	rx->printing--;
	rx->st.print_lost++;
}

/* --print follows rc from here (a connection's start, or an exchange boundary). */
static void print_start(struct receive *rx, struct rconn *rc)
{
	if (rx->printing >= RX_PRINT_CONNS_MAX) {
		rx->st.print_skipped++;
		return;
	}
	if (st_exchange__init(&rc->ex, print_line, rc))
		return;
	rc->http = true;
	rc->print_lost = false;
	rx->printing++;
}

/* ---- the stream's events, to every output --------------------------------------------- */

/* The header's values come from the sender: escaped before they reach a terminal. */
static void on_header(void *ctx, const char *text, unsigned major, unsigned minor)
{
	char host[128] = "?", redact[512] = "?", eh[4 * sizeof(host)], er[4 * sizeof(redact)];
	char line[1024];

	st_stream_header_get(text, "host", host, sizeof(host));
	st_stream_header_get(text, "redact", redact, sizeof(redact));
	pr_info("receive: stream %u.%u from %s, redaction: %s", major, minor,
		st_log_escape(eh, sizeof(eh), host, strlen(host)),
		st_log_escape(er, sizeof(er), redact, strlen(redact)));
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		pr_debug("receive: header %s", st_log_escape(line, sizeof(line), p, l));
		p += l + (e ? 1 : 0);
	}
}

static void on_finish(void *ctx, const struct st_stream_trailer *t)
{
	struct receive *rx = ctx;

	/* --listen takes stream after stream: what each sender said it dropped adds up */
	rx->trailer.ts = t->ts;
	rx->trailer.dropped_records += t->dropped_records;
	rx->trailer.dropped_bytes += t->dropped_bytes;
	rx->trailer.dropped_conns += t->dropped_conns;
	rx->trailer.held_conns += t->held_conns;
	rx->have_trailer = true;
}

static void on_open(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct receive *rx = ctx;
	struct rconn *rc = calloc(1, sizeof(*rc));

	c->user = rc;
	rx->last_ts = ts;
	rx->st.connections++;
	if (!rc) {
		pr_err("receive: out of memory");
		rx->failed = true;
		return;
	}
	rc->fc = *c;
	rc->fc.user = NULL;
	rc->rx = rx;
	st_reseg_init(&rc->rs, &c->key, c->id, rx->seed);
	if (rx->sink && st_flowsink_ops.open)
		st_flowsink_ops.open(rx->sink, &rc->fc, ts);
	if (segs_to(rx) && !(c->flags & ST_REASM_F_JOINED)) {
		/* the handshake, so readers (and the shadow engine) see a whole connection */
		st_reseg_open(&rc->rs, ts, seg_out, rc);
	} else if (rx->sh) {
		rc->sh_stopped = true; /* the engine skips it until an exchange boundary */
	}
	if (rx->print)
		print_start(rx, rc);
}

static void on_data(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		    uint32_t len, uint64_t ts)
{
	struct receive *rx = ctx;
	struct rconn *rc = c->user;

	rx->last_ts = ts;
	rx->st.data_bytes += len;
	if (!rc)
		return;
	rc->fc.bytes[dir] += len;
	if (rx->sink && st_flowsink_ops.data)
		st_flowsink_ops.data(rx->sink, &rc->fc, dir, off, d, len, ts);
	st_reseg_data(&rc->rs, dir, d, len, ts, segs_to(rx), rc);
	if (rc->http && !st_exchange__feed(&rc->ex, dir, d, len, ts))
		print_stop(rx, rc);
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts);

/* A gap no tee writes (longer than ST_STREAM_GAP_MAX: a damaged or crafted stream, which
 * would make -o's files terabytes of holes): the connection's outputs end here, as at its
 * close, with one line; the stream's later records of it are checked and ignored. Through
 * Kafka, gaps are the reader's own (offsets it did not get: a connection joined midway, lost
 * messages) and as long as what is missing. */
static void drop_conn(struct receive *rx, struct st_reasm_conn *c, uint64_t len, uint64_t ts)
{
	char cli[64], srv[64];

	st_addr_str(&c->key.src, cli, sizeof(cli));
	st_addr_str(&c->key.dst, srv, sizeof(srv));
	pr_warn("receive: connection %s%s%s:%u -> %s%s%s:%u: a gap of %" PRIu64 " bytes, longer "
		"than a tee writes (%llu): its outputs end here", c->key.src.family == 6 ? "[" : "",
		cli, c->key.src.family == 6 ? "]" : "", c->key.sport,
		c->key.dst.family == 6 ? "[" : "", srv, c->key.dst.family == 6 ? "]" : "",
		c->key.dport, len, ST_STREAM_GAP_MAX);
	rx->st.bad_gaps++;
	on_close(rx, c, ST_END_RST, ts);
}

static void on_gap(void *ctx, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct receive *rx = ctx;
	struct rconn *rc = c->user;

	rx->last_ts = ts;
	if (!rc)
		return;
	if (len > ST_STREAM_GAP_MAX && !rx->kc) {
		drop_conn(rx, c, len, ts);
		return;
	}
	rx->st.gap_bytes += len;
	if ((unsigned)why == ST_SGAP_DROPPED)
		rx->st.sender_dropped_bytes += len;
	if ((unsigned)why == ST_SGAP_HELD)
		rx->st.held_bytes += len;
	rc->fc.gap_bytes[dir] += len;
	if (rx->sh)
		rc->sh_stopped = true; /* its replay stops here, until an exchange boundary */
	if (rx->sink && st_flowsink_ops.gap)
		st_flowsink_ops.gap(rx->sink, &rc->fc, dir, off, len, why, ts);
	/* loss segments: the shadow engine's reassembly reports the gap at once */
	st_reseg_gap(&rc->rs, dir, len, ts, rx->sh ? sh_out : NULL, rc);
	if (rc->http && !st_exchange__gap(&rc->ex, dir, len))
		print_stop(rx, rc); /* HTTP/2: its HPACK state is lost with the bytes */
}

static void on_end(void *ctx, struct st_reasm_conn *c, int dir, enum st_reasm_end why,
		   uint64_t ts)
{
	struct receive *rx = ctx;
	struct rconn *rc = c->user;

	rx->last_ts = ts;
	if (!rc)
		return;
	if (rx->sink && st_flowsink_ops.end)
		st_flowsink_ops.end(rx->sink, &rc->fc, dir, why, ts);
	st_reseg_end(&rc->rs, dir, why, ts, segs_to(rx), rc);
	if (rc->http)
		st_exchange__end(&rc->ex, dir, ts); /* a response read until close ends here */
}

static void on_close(void *ctx, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct receive *rx = ctx;
	struct rconn *rc = c->user;
	struct st_segment s;

	if (!rc)
		return;
	if (rx->sink && st_flowsink_ops.close)
		st_flowsink_ops.close(rx->sink, &rc->fc, why, ts);
	if (rx->sh && !rc->rs.ended[0] && !rc->rs.ended[1]) {
		/* closed without a FIN or RST in the stream (timeout, end of capture): the shadow
		 * engine's connection closes too, its complete requests still go out */
		st_reseg_seg(&rc->rs, &s, ST_DIR_IN, ST_TCP_RST, ts);
		sh_feed(rx, rc, &s);
	}
	if (rc->http) {
		st_exchange__free(&rc->ex);
		rx->printing--;
	}
	free(rc);
	c->user = NULL;
}

/* MARK: both directions are at an exchange boundary (stream.h: every earlier request was
 * answered whole, production's framing from the connection's first byte). A connection whose
 * replay stopped (a gap, joined midway through Kafka) starts again here in the shadow engine as
 * a new connection: a reset ends what it had (its complete, answered requests still go out),
 * and a handshake continuing the sequence numbers opens the next, so the engine frames whole
 * requests from here and never splices one onto bytes before the gap. --print follows a
 * connection it stopped following again. -w and -o keep the connection as it was. */
static void on_mark(void *ctx, struct st_reasm_conn *c, uint64_t ts)
{
	struct receive *rx = ctx;
	struct rconn *rc = c->user;

	if (!rc)
		return;
	if (rx->sh && rc->sh_stopped) {
		st_reseg_restart(&rc->rs, ts, sh_out, rc);
		rx->st.segments += 4;
		rc->sh_stopped = false;
		rx->st.resumed_conns++;
	}
	if (rx->print && rc->print_lost && !rc->http)
		print_start(rx, rc);
	if (rc->http)
		st_exchange__boundary(&rc->ex); /* held bytes before it start nothing */
}

static const struct st_stream_ops rx_ops = {
	.conn = { .open = on_open, .data = on_data, .gap = on_gap, .end = on_end,
		  .close = on_close },
	.header = on_header,
	.finish = on_finish,
	.mark = on_mark,
};

/* ---- the run -------------------------------------------------------------------------- */

static void link_next(struct receive *rx, bool lost);

/* --listen: the stream was cut (the link was lost, or a damaged byte). */
static void link_lost(struct receive *rx)
{
	link_next(rx, true);
}

/* --listen: the tee's connection ends (lost: the stream was cut; else it ended whole): what
 * was open ends here, and the next tee connection starts a new stream into the same
 * outputs. */
static void link_next(struct receive *rx, bool lost)
{
	struct st_stream_dec *d = st_stream_dec__new(&rx_ops, rx, 0);

	if (lost) {
		pr_warn("receive: --listen %s: %s; the outputs keep what arrived; waiting for the "
			"tee to reconnect", rx->listen, st_stream_dec__error(rx->dec));
		rx->st.link_losses++;
		rx->last_lost = true;
	} else if (!rx->run.quiet) {
		st_log_out("receive: --listen %s: the tee's stream ended whole (END_STREAM); "
			   "listening for the next tee (--once ends the run here)", rx->listen);
	}
	st_stream_dec__close_all(rx->dec, rx->last_ts);
	if (rx->sh)
		st_shadow__kick(rx->sh);
	st_loop__del(rx->loop, rx->fd);
	st_tlslink__free(rx->tls);
	rx->tls = NULL;
	close(rx->fd);
	rx->fd = -1;
	st_linklisten__busy(rx->ll, false);
	if (!d) {
		pr_err("receive: %s", strerror(errno));
		rx->failed = true;
		rx->eof = true;
		st_loop__stop(rx->loop);
		return;
	}
	st_stream_dec__free(rx->dec);
	rx->dec = d;
}

static void input_done(struct receive *rx, int rc)
{
	if (rc || st_stream_dec__eof(rx->dec)) {
		if (rx->listen) {
			link_lost(rx);
			return;
		}
		pr_err("receive: %s: %s; the outputs keep everything before it",
		       !strcmp(rx->input, "-") ? "stdin" : rx->input, st_stream_dec__error(rx->dec));
		rx->failed = true;
	} else if (rx->listen && !rx->once) {
		/* a whole stream: the tee's run is over, not the receiver's */
		link_next(rx, false);
		return;
	}
	rx->eof = true;
	/* what is still open ends here: the outputs keep what arrived */
	st_stream_dec__close_all(rx->dec, rx->last_ts);
	if (rx->sh)
		st_shadow__kick(rx->sh);
	if (!rx->pace.n)
		st_loop__stop(rx->loop);
	/* else on_tick() stops it once the paced segments are out */
}

/* Reads what is there; at the end of the input (or a stream error) stops the loop. 1 when
 * nothing was ready. */
static int read_some(struct receive *rx)
{
	ssize_t n;
	int rc;

	if (rx->tls) {
		n = st_tlslink__read(rx->tls, rx->buf, sizeof(rx->buf));
		if (n == -EAGAIN)
			return 1;
		if (n < 0)
			errno = (int)-n;
	} else {
		do
			n = read(rx->fd, rx->buf, sizeof(rx->buf));
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EAGAIN)
			return 1;
	}
	if (n < 0) {
		pr_err("receive: read: %s", strerror(errno));
		input_done(rx, 0);
		return 0;
	}
	if (n == 0) {
		input_done(rx, 0);
		return 0;
	}
	rx->st.stream_bytes += (uint64_t)n;
	rc = st_stream_dec__feed(rx->dec, rx->buf, (size_t)n);
	if (rx->sh)
		st_shadow__kick(rx->sh);
	if (rc)
		input_done(rx, rc);
	return rx->failed && !rc ? -1 : 0;
}

static int on_input(void *ctx)
{
	struct receive *rx = ctx;

	if (!rx->eof)
		read_some(rx);
	return 0;
}

/* --listen: the tee's connection is readable. TLS: a read may leave decrypted bytes inside
 * the library, which no readiness announces: read until it says it has nothing. */
static int on_link(void *ctx)
{
	struct receive *rx = ctx;

	for (int k = 0; rx->fd >= 0 && !rx->eof && k < 64; k++)
		if (read_some(rx))
			break;
	return 0;
}

/* --listen: a tee proved itself (linklisten.h): its stream, from the preamble it sent, into
 * the same outputs. */
static void on_tee(void *ctx, int fd, struct st_tlslink *tls, const uint8_t *pre, size_t n)
{
	struct receive *rx = ctx;
	int rc;

	rx->fd = fd;
	rx->tls = tls;
	rc = st_loop__add(rx->loop, fd, on_link, rx);
	if (rc) {
		pr_warn("receive: --listen %s: event loop: %s", rx->listen, strerror(-rc));
		st_tlslink__free(tls);
		close(fd);
		rx->fd = -1;
		rx->tls = NULL;
		return;
	}
	st_linklisten__busy(rx->ll, true);
	rx->st.streams++;
	if (rx->last_lost)
		pr_warn("receive: --listen %s: the tee is back: a new stream", rx->listen);
	else if (rx->st.streams > 1)
		pr_info("receive: --listen %s: a tee: stream %" PRIu64, rx->listen, rx->st.streams);
	rx->last_lost = false;
	rx->st.stream_bytes += n;
	rc = st_stream_dec__feed(rx->dec, pre, n);
	if (rc) {
		input_done(rx, rc);
		return;
	}
	on_link(rx); /* what came with the preamble (TLS holds it already) */
}

static int on_listen(void *ctx)
{
	struct receive *rx = ctx;

	if (!rx->eof)
		st_linklisten__run(rx->ll);
	return 0;
}

static int on_shadow_io(void *ctx)
{
	struct receive *rx = ctx;

	return st_shadow__io(rx->sh);
}

/* The load test's reports, written whole (in progress, and final at the end). 0 or -1. */
static int load_reports(struct receive *rx)
{
	return st_load_report_write(rx->load, rx->lo.report, rx->lo.report_json,
				    rx->lo.cmp_report[0] ? rx->lo.cmp_report : NULL, "receive",
				    rx->out_mode);
}

/* A load test: what is due goes at its nanosecond. */
static uint64_t on_wake(void *ctx)
{
	struct receive *rx = ctx;
	uint64_t now = st_loop_mono_ns();

	return st_load__wake_at(rx->load, st_shadow__due(rx->sh, now), now);
}

static void brief(struct receive *rx, struct st_brief *b);

static int on_tick(void *ctx)
{
	struct receive *rx = ctx;
	uint64_t now = st_loop_mono_ns();

	if (rx->ll)
		st_linklisten__tick(rx->ll, now);
	if (rx->pace.n) {
		pace_release(rx, false);
		if (rx->eof && !rx->pace.n) {
			st_loop__stop(rx->loop);
			return 0;
		}
	}
	for (int i = 0; rx->is_file && !rx->eof && i < RX_FILE_READS; i++) {
		if (rx_busy(rx))
			break;
		read_some(rx);
	}
	if (rx->kc && !rx_busy(rx)) {
		int n = st_kafka_consumer__poll(rx->kc, RX_KAFKA_MSGS);

		if (n < 0) {
			rx->failed = true;
			return -1;
		}
		if (n > 0 && rx->sh)
			st_shadow__kick(rx->sh);
	}
	if (rx->sh && now - rx->last_shadow_tick >= 100000000ull) {
		rx->last_shadow_tick = now;
		st_shadow__tick(rx->sh, 0);
	}
	if (rx->load) {
		/* a report in progress only when asked (--report-interval): its cost is lag */
		if ((rx->lo.report || rx->lo.report_json) && rx->lo.report_every_s > 0 &&
		    now - rx->last_report >= (uint64_t)(rx->lo.report_every_s * 1e9)) {
			rx->last_report = now;
			load_reports(rx);
		}
		if (now >= st_load__end(rx->load)) {
			st_loop__stop(rx->loop); /* the schedule is over */
			return 0;
		}
	}
	if (rx->pw && st_pcapw__flush(rx->pw)) {
		pr_err("receive: -w %s: the output failed", rx->wpath);
		rx->failed = true;
		return -1;
	}
	if (rx->sink) {
		st_flowsink__tick(rx->sink, rx->last_ts);
		if (st_flowsink__error(rx->sink)) {
			rx->failed = true;
			return -1;
		}
	}
	if (st_progress_due(&rx->prog, now)) {
		struct st_brief b;

		st_brief_init(&b);
		brief(rx, &b);
		st_progress_show(&rx->prog, &b, now);
	}
	return 0;
}


/* The stream in, the outputs' progress: --stats and the status line. */
static void brief(struct receive *rx, struct st_brief *b)
{
	st_brief_add(b, "stream", rx->st.stream_bytes, ST_BRIEF_RATE | ST_BRIEF_BYTES);
	st_brief_add(b, "data", rx->st.data_bytes, ST_BRIEF_RATE | ST_BRIEF_BYTES);
	st_brief_add(b, "connections", rx->st.connections, 0);
	st_brief_add(b, "gaps", rx->st.gap_bytes, ST_BRIEF_BYTES);
	st_brief_add(b, "sender dropped", rx->st.sender_dropped_bytes, ST_BRIEF_SUB | ST_BRIEF_BYTES);
	st_brief_add(b, "held", rx->st.held_bytes, ST_BRIEF_SUB | ST_BRIEF_BYTES);
	if (rx->print)
		st_brief_add(b, "exchanges", rx->st.exchanges, ST_BRIEF_RATE);
	if (rx->load)
		st_load__brief(rx->load, b);
	if (rx->sh) {
		st_shadow__brief(rx->sh, b);
		st_brief_add(b, "paced", rx->pace.bytes, ST_BRIEF_BYTES);
	}
}

/* The start line: where the stream comes from, what it feeds. */
static void start_line(struct receive *rx)
{
	char in[512], out[1024];
	size_t o = 0;

	if (rx->kafka.brokers)
		snprintf(in, sizeof(in), "Kafka %s, topic %s, group %s", rx->kafka.brokers,
			 rx->kafka.topic ? rx->kafka.topic : "?", rx->kafka.group ? rx->kafka.group : "?");
	else if (rx->listen)
		snprintf(in, sizeof(in), "tees on %s (%s%s)", rx->listen,
			 rx->insecure ? "plaintext" : "TLS", rx->once ? ", one stream" : "");
	else
		snprintf(in, sizeof(in), "%s", strcmp(rx->input, "-") ? rx->input : "stdin");
#define ADD(...) (o += (size_t)snprintf(out + o, o < sizeof(out) ? sizeof(out) - o : 0, __VA_ARGS__))
	out[0] = 0;
	if (rx->wpath)
		ADD("pcap %s", strcmp(rx->wpath, "-") ? rx->wpath : "stdout");
	if (rx->outdir)
		ADD("%sflow files in %s/", o ? ", " : "", rx->outdir);
	if (rx->to && rx->lo.on) {
		char what[256];

		ADD("%sa load test of %s %s%s", o ? ", " : "", rx->to,
		    st_load_opts_describe(&rx->lo, what, sizeof(what)),
		    rx->compare ? " (tap compare)" : "");
	} else if (rx->to) {
		ADD("%sreplay to %s%s%s", o ? ", " : "", rx->to, rx->fast ? " (fast)" : "",
		    rx->compare ? " (tap compare)" : "");
	}
	if (rx->cmp.report)
		ADD("%sreport %s", o ? ", " : "", rx->cmp.report);
	if (rx->cmp.report_json)
		ADD("%sreport %s", o ? ", " : "", rx->cmp.report_json);
	if (rx->print)
		ADD("%s--print on stdout", o ? ", " : "");
#undef ADD
	st_log_out("receive running: %s -> %s; %s", in, out,
		   rx->listen || rx->kc ? "Ctrl-C or SIGTERM stops it" :
		   "to the stream's end, or Ctrl-C or SIGTERM");
}

static int outputs_open(struct receive *rx)
{
	char err[256];

	if (rx->to) {
		struct rlimit rl;

		if (st_shadow_parse_target(rx->to, &rx->scfg.targets[0], err, sizeof(err))) {
			pr_err("receive: --to %s: %s", rx->to, err);
			return ST_EXIT_USAGE;
		}
		rx->scfg.n_targets = 1;
		if (st_cmp_opts_check(&rx->cmp, &rx->scfg, err, sizeof(err)) ||
		    st_correlate_opts_check(&rx->cor, &rx->scfg, err, sizeof(err))) {
			pr_err("receive: %s", err);
			return ST_EXIT_USAGE;
		}
		rx->scfg.mark_name = "X-Shadowtap";
		rx->scfg.mark_value = "1";
		rx->scfg.reasm_max_mem = RX_MAX_MEM_DEFAULT;
		if (rx->lo.on) {
			struct st_load_config lc;

			st_load_opts_config(&rx->lo, &rx->cmp, true, &lc);
			lc.command = "receive";
			lc.target = rx->to;
			rx->load = st_load__new(&lc);
			if (!rx->load) {
				pr_err("receive: %s", strerror(errno));
				return ST_EXIT_RUNTIME;
			}
			rx->scfg.load = &st_load_ops;
			rx->scfg.load_ctx = rx->load;
			rx->scfg.max_conns = rx->lo.connections;
			rx->scfg.answer_timeout_ns = (uint64_t)(rx->lo.timeout_s * 1e9);
			/* a path that cannot be written stops the run before it starts */
			if (load_reports(rx))
				return ST_EXIT_RUNTIME;
		}
		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		/* tap compare: production's answers are in the stream (its DATA records of the
		 * server's direction, with the capture's timestamps) */
		rx->cmp.out_mode = rx->out_mode;
		if (rx->cmp.on && !(rx->compare = st_cmp_opts_start(&rx->cmp, "receive",
								     &rx->scfg))) {
			pr_err("receive: compare: %s", strerror(errno));
			return ST_EXIT_RUNTIME;
		}
		if (rx->cor.dump) { /* written at the end: a path that cannot be fails now */
			int e = st_output_check(rx->cor.dump, ST_OUT_PRIVATE, 0600);

			if (e) {
				pr_err("receive: --correlate-dump %s: %s", rx->cor.dump,
				       st_output_strerror(e));
				return ST_EXIT_RUNTIME;
			}
		}
		rx->sh = st_shadow__new(&rx->scfg);
		if (!rx->sh) {
			pr_err("receive: shadow engine: %s", strerror(errno));
			return ST_EXIT_RUNTIME;
		}
	}
	if (rx->outdir) {
		struct st_flowsink_config k = { 0 };

		rx->dirfd = st_output_opendir("receive", rx->outdir, rx->force, rx->out_mode);
		if (rx->dirfd < 0)
			return ST_EXIT_RUNTIME;
		k.dirfd = rx->dirfd;
		k.dirname = rx->outdir;
		k.replace = rx->force;
		k.seed = st_connmap_random_seed();
		k.mode = rx->out_mode;
		k.gap_str = st_stream_gap_str; /* the sender's reasons named, not "capture-loss" */
		rx->sink = st_flowsink__new(&k);
		if (!rx->sink) {
			pr_err("receive: %s: %s", rx->outdir, strerror(errno));
			return ST_EXIT_RUNTIME;
		}
	}
	if (rx->wpath) {
		rx->pw = st_pcapw__open(rx->wpath, 0, rx->out_mode);
		if (!rx->pw)
			return ST_EXIT_RUNTIME;
	}
	return 0;
}

static void summary(struct receive *rx)
{
	struct st_statline l;
	struct st_pcapw_stats ps = { 0 };
	struct st_flowsink_stats ks;
	struct st_shadow_stats ss;

	st_statline_init(&l);
	st_statline_add_table(&l, st_receive_stat_desc, st_receive_stat_n, &rx->st);
	if (rx->ll) {
		struct st_linklisten_stats ls;

		st_linklisten__stats(rx->ll, &ls);
		st_statline_add_table(&l, st_linklisten_stat_desc, st_linklisten_stat_n, &ls);
	}
	if (rx->have_trailer) {
		st_statline_add(&l, "sender_dropped_records", rx->trailer.dropped_records,
				ST_STAT_COUNTER, "records the sender dropped (END_STREAM)");
		st_statline_add(&l, "sender_dropped_conns", rx->trailer.dropped_conns,
				ST_STAT_COUNTER, "connections the sender left out whole");
		st_statline_add(&l, "sender_held_conns", rx->trailer.held_conns, ST_STAT_COUNTER,
				"connections the sender held back (not HTTP)");
	}
	if (rx->pw) {
		st_pcapw__close(rx->pw, &ps);
		rx->pw = NULL;
		st_statline_add_table(&l, st_pcapw_stat_desc, st_pcapw_stat_n, &ps);
	}
	if (rx->sink) {
		st_flowsink__stats(rx->sink, &ks);
		st_statline_add(&l, "files", ks.files, ST_STAT_COUNTER, "flow files written");
		st_statline_add_table(&l, st_flowsink_stat_desc, st_flowsink_stat_n, &ks);
	}
	if (rx->sh) {
		st_shadow__stats(rx->sh, &ss);
		st_statline_add_table(&l, st_shadow_stat_desc, st_shadow_stat_n, &ss);
	}
	if (rx->compare) {
		struct st_compare_stats cs;

		st_compare__stats(rx->compare, &cs);
		st_statline_add_table(&l, st_compare_stat_desc, st_compare_stat_n, &cs);
	}
	if (rx->load)
		st_load__statline(rx->load, &l);
	if (rx->kc) {
		struct st_kafka_cons_stats cs;
		struct st_kmsg_read_stats rs;

		st_kafka_consumer__stats(rx->kc, &cs, &rs);
		st_statline_add_table(&l, st_kmsg_read_stat_desc, st_kmsg_read_stat_n, &rs);
		st_statline_add_table(&l, st_kafka_cons_stat_desc, st_kafka_cons_stat_n, &cs);
	}
	st_statline_print(&l, "summary");
}

/* The input first (a wrong file must not leave outputs behind): Kafka, the file, stdin or
 * --listen's door. 0, or the exit status after one line. */
static int input_open(struct receive *rx)
{
	if (rx->kafka.brokers) {
		rx->kc = st_kafka_consumer__new(&rx->kafka, &rx_ops, rx, "receive");
		if (!rx->kc)
			return ST_EXIT_RUNTIME;
	} else if (rx->input && strcmp(rx->input, "-")) {
		rx->fd = open(rx->input, O_RDONLY | O_CLOEXEC);
		if (rx->fd < 0) {
			pr_err("receive: %s: %s", rx->input, strerror(errno));
			return ST_EXIT_RUNTIME;
		}
	} else if (rx->input) {
		rx->fd = dup(STDIN_FILENO);
	}
	if (rx->listen) {
		char what[300], err[512];
		const struct st_linklisten_config lc = {
			.addr = rx->listen,
			.tls = rx->insecure ? NULL : &rx->tlso,
			.what = what,
			.on_tee = on_tee,
			.ctx = rx,
		};
		int rc;

		snprintf(what, sizeof(what), "receive: --listen %s", rx->listen);
		rx->ll = st_linklisten__new(&lc, err, sizeof(err));
		if (!rx->ll) {
			pr_err("receive: --listen %s: %s", rx->listen, err);
			return ST_EXIT_RUNTIME;
		}
		rc = st_loop__add(rx->loop, st_linklisten__fd(rx->ll), on_listen, rx);
		if (rc) {
			pr_err("receive: event loop: %s", strerror(-rc));
			return ST_EXIT_RUNTIME;
		}
		pr_info("receive: waiting for a tee on %s", rx->listen);
	}
	return 0;
}

/* The loop's sources: the input (a regular file is read by the tick, as fast as the
 * outputs take it), the shadow engine's sockets, the tick (--to's pacing wants a finer
 * one), a load test's wake-ups. 0, or -1 after one line. */
static int loop_setup(struct receive *rx)
{
	struct stat sb;

	rx->is_file = !rx->listen && !rx->kc && !fstat(rx->fd, &sb) &&
		      (S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode));
	if (!rx->listen && !rx->kc)
		rx->st.streams = 1;
	if ((!rx->is_file && !rx->listen && !rx->kc &&
	     st_loop__add(rx->loop, rx->fd, on_input, rx)) ||
	    (rx->sh && st_loop__add(rx->loop, st_shadow__fd(rx->sh), on_shadow_io, rx)) ||
	    st_loop__set_tick(rx->loop, rx->sh && !rx->fast && !rx->load ? ST_TICK_PACE_MS :
			      ST_TICK_MS, on_tick, rx)) {
		pr_err("receive: event loop: %s", strerror(errno));
		return -1;
	}
	if (rx->load) {
		st_loop__set_wake(rx->loop, on_wake, rx);
		rx->last_report = st_loop_mono_ns();
	}
	rx->last_shadow_tick = st_loop_mono_ns();
	return 0;
}

/* The run: the start line, the status line, the loop until the input ends or a signal. */
static void run_loop(struct receive *rx)
{
	if (!rx->run.quiet)
		start_line(rx);
	/* --print's lines on the same terminal would run through the status line */
	st_progress_init(&rx->prog, rx->run.stats_s, !rx->run.quiet && isatty(STDERR_FILENO) &&
			 !(rx->print && isatty(STDOUT_FILENO)), "receive", st_loop_mono_ns());
	st_loop__run(rx->loop, 0);
	st_progress_end(&rx->prog);
}

/* After the run: what is open ends, what is held goes, the engines drain, the reports and
 * outputs are written whole, the summary. Returns the exit status. */
static int finish(struct receive *rx)
{
	int verdict;

	if (rx->kc)
		st_kafka_consumer__close(rx->kc, rx->last_ts);
	if (!rx->eof) {
		/* stopped by a signal: what is open ends here */
		st_stream_dec__close_all(rx->dec, rx->last_ts);
	}
	if (rx->sh) {
		/* stopped by a signal: what pacing still holds goes now */
		pace_release(rx, true);
		st_shadow__flush(rx->sh);
		st_shadow__drain(rx->sh, RX_DRAIN_MS);
	}
	/* every pair is settled now: the last comparisons, then the reports and the verdict */
	st_compare__finish(rx->compare);
	verdict = st_cmp_opts_end(&rx->cmp, rx->compare);
	if (st_compare__output_errors(rx->compare))
		rx->failed = true; /* each said once already */
	if (rx->load) {
		st_load__finish(rx->load, st_loop_mono_ns(), st_loop_realtime_ns());
		/* the last reports, and any that failed on the way (each said once) */
		if (load_reports(rx) || st_load__output_errors(rx->load))
			rx->failed = true;
	}
	if (rx->sh && rx->cor.dump) {
		int e = st_shadow__correlate_dump(rx->sh, rx->cor.dump);

		if (e) {
			pr_err("receive: --correlate-dump %s: %s", rx->cor.dump, st_output_strerror(e));
			rx->failed = true;
		}
	}
	if (rx->sink && st_flowsink__flush(rx->sink))
		rx->failed = true;
	if (rx->pw && st_pcapw__commit(rx->pw)) {
		pr_err("receive: -w %s: cannot write the pcap", rx->wpath);
		rx->failed = true;
	}
	summary(rx);
	if (rx->load)
		st_load__print_end(rx->load, stderr);
	if (rx->have_trailer && (rx->trailer.dropped_records || rx->trailer.dropped_conns))
		pr_warn("receive: the sender dropped %" PRIu64 " records (%" PRIu64 " bytes) and %"
			PRIu64 " connections: its output was slower than the traffic",
			rx->trailer.dropped_records, rx->trailer.dropped_bytes,
			rx->trailer.dropped_conns);
	return rx->failed ? ST_EXIT_RUNTIME : verdict;
}

static void receive_free(struct receive *rx)
{
	if (rx->pw)
		st_pcapw__close(rx->pw, NULL);
	st_flowsink__free(rx->sink);
	st_segpace_free(&rx->pace);
	st_shadow__free(rx->sh);
	st_load__free(rx->load); /* after the engine: its last failures are counted into it */
	st_compare__free(rx->compare); /* after the engine: it holds pairs until it is freed */
	if (rx->dirfd >= 0)
		close(rx->dirfd);
	st_tlslink__free(rx->tls);
	if (rx->fd >= 0)
		close(rx->fd);
	st_linklisten__free(rx->ll);
	st_kafka_consumer__free(rx->kc);
	st_stream_dec__free(rx->dec);
	st_loop__free(rx->loop);
	free(rx);
}

/* Check (parse), open the input, then the outputs, run, finish. */
int cmd_receive(int argc, char **argv)
{
	struct receive *rx = calloc(1, sizeof(*rx));
	int rc;

	if (!rx) {
		pr_err("receive: out of memory");
		return ST_EXIT_RUNTIME;
	}
	rx->fd = rx->dirfd = -1;
	st_segpace_init(&rx->pace, RX_PACE_MAX_BYTES, RX_PACE_AHEAD_NS);
	st_correlate_opts_init(&rx->cor);
	rc = parse(rx, argc, argv);
	if (rc) {
		rc = rc < 0 ? ST_EXIT_OK : rc;
		goto out;
	}
	st_log_set_verbose(rx->run.verbose);
	rc = ST_EXIT_RUNTIME;
	rx->seed = st_connmap_random_seed();
	rx->dec = st_stream_dec__new(&rx_ops, rx, 0);
	rx->loop = st_loop__new();
	if (!rx->dec || !rx->loop) {
		pr_err("receive: %s", strerror(errno));
		goto out;
	}
	rc = input_open(rx);
	if (rc)
		goto out;
	rc = outputs_open(rx);
	if (rc)
		goto out;
	rc = ST_EXIT_RUNTIME;
	if (loop_setup(rx))
		goto out;
	run_loop(rx);
	rc = finish(rx);
out:
	receive_free(rx);
	return rc;
}
