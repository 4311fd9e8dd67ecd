/* SPDX-License-Identifier: GPL-2.0-only */
/* shadowtap capture: a service's TCP traffic, from the kernel to a pcap file. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "flowset.h"
#include "log.h"
#include "loop.h"
#include "opts.h"
#include "pcapw.h"
#include "tap.h"

#define CAPTURE_TICK_MS 20
/* Count up to this many distinct connections (~80 MB at most). */
#define CAPTURE_MAX_FLOWS (1u << 20)

enum { OPT_DURATION = ST_OPT_FIRST_FREE };

struct capture {
	struct st_target target;
	const char *out;
	double duration;
	int verbose;
	struct st_tap *tap;
	struct st_pcapw *w;
	struct st_flowset *flows;
	struct st_loop *loop;
	unsigned ticks;
	int out_err;
	unsigned long long packets, bytes, loss_marks, loss_bytes_marked;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: shadowtap capture (--iface IFACE | --cgroup PATH) --port P [--port P ...]\n"
		"                         [--host CIDR ...] -w FILE [--duration SEC] [-v]\n"
		"\n"
		"Writes the service's TCP traffic on port P (packets arriving for P, packets\n"
		"leaving from P) to a pcap file that tcpdump, tshark, tcpflow and Wireshark read.\n"
		"Large (GSO) segments arrive whole, as several packets. Ends on SIGINT, SIGTERM\n"
		"(or another stop signal) or --duration, and prints a summary line on stderr.\n"
		"SIGHUP reopens FILE: after 'mv FILE FILE.1' a new FILE starts (logrotate).\n"
		"\n" ST_TARGET_USAGE
		"  -w, --write FILE      pcap output, '-' for stdout (| wireshark -k -i -)\n"
		"  -d, --duration SEC    stop after SEC seconds\n"
		"  -v, --verbose         say how programs attach; show libbpf's messages\n"
		"  -h, --help            this help\n");
}

static int on_segment(void *ctx, const struct st_segment *seg)
{
	struct capture *c = ctx;

	if (seg->kind == ST_SEG_LOSS) {
		c->loss_marks++;
		c->loss_bytes_marked += seg->len;
		return 0;
	}
	if (st_pcapw__write(c->w, seg))
		return 0;
	c->packets++;
	c->bytes += seg->len;
	if (st_flowset__add(c->flows, &seg->key) < 0)
		return -ENOMEM;
	return 0;
}

static int drain(struct capture *c)
{
	int n = st_tap__consume(c->tap);

	return n < 0 ? n : 0;
}

static int on_ring(void *ctx)
{
	return drain(ctx);
}

static int on_tick(void *ctx)
{
	struct capture *c = ctx;
	int err = drain(c);

	if (err)
		return err;
	/* Flush a pipe every tick (a live Wireshark), a file twice a second. */
	if (!strcmp(c->out, "-") || ++c->ticks % 25 == 0) {
		err = st_pcapw__flush(c->w);
		if (err) {
			c->out_err = -err;
			return err;
		}
	}
	return 0;
}

/* SIGHUP (logrotate: mv x.pcap x.1.pcap; kill -HUP): what the kernel captured so far goes to
 * the file being written, which is then finished properly, and a new pcap starts at -w's path.
 * Nothing to do when the path still names that file, or for stdout, a device, a FIFO. */
static int on_hup(void *ctx, int sig)
{
	struct capture *c = ctx;
	int err = drain(c);

	if (err)
		return err;
	err = st_pcapw__reopen(c->w);
	if (err > 0)
		pr_info("SIGHUP: -w %s reopened", c->out);
	else if (!err)
		pr_info("SIGHUP: -w %s: nothing to reopen (not moved, or not a regular file)", c->out);
	else
		pr_warn("SIGHUP: -w %s: no new file (%s): writing on into the moved one", c->out,
			strerror(-err));
	return 0;
}

static int parse(struct capture *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		ST_TARGET_LONGOPTS,
		{ "write", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt, r;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":i:p:w:d:vh", longopts, NULL)) != -1) {
		r = st_target_opt(&c->target, opt, optarg);
		if (r < 0)
			return ST_EXIT_USAGE;
		if (r)
			continue;
		switch (opt) {
		case 'w':
			c->out = optarg;
			break;
		case 'd':
			if (st_parse_double("--duration", optarg, 0.001, 1e9, &c->duration))
				return ST_EXIT_USAGE;
			break;
		case 'v':
			c->verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return st_getopt_error("capture", opt, argv);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "shadowtap capture: unexpected argument '%s'\n", argv[optind]);
		return ST_EXIT_USAGE;
	}
	if (st_target_check(&c->target, "capture"))
		return ST_EXIT_USAGE;
	if (!c->out) {
		fprintf(stderr, "shadowtap capture: -w FILE is required ('-' for stdout)\n");
		return ST_EXIT_USAGE;
	}
	return 0;
}

static void summary(struct capture *c)
{
	struct st_tap_stats st;
	unsigned long long lost = 0, lost_segs = 0, unreported = 0, skipped = 0;

	st_tap__stats(c->tap, &st);
	for (int d = 0; d < ST_DIR_MAX; d++) {
		lost += st.kern[d].lost_bytes;
		lost_segs += st.kern[d].lost_segs;
		unreported += st.kern[d].lost_unreported;
		skipped += st.kern[d].parse_skipped;
	}
	fprintf(stderr,
		"shadowtap: summary packets=%llu bytes=%llu flows=%zu%s lost=%llu lost_segs=%llu "
		"lost_in=%llu lost_out=%llu loss_unmarked=%llu parse_skipped=%llu "
		"bad_records=%llu detaches=%llu blind_ms=%llu\n",
		c->packets, c->bytes, st_flowset__count(c->flows),
		st_flowset__full(c->flows) ? "+" : "", lost, lost_segs,
		(unsigned long long)st.kern[ST_DIR_IN].lost_bytes,
		(unsigned long long)st.kern[ST_DIR_OUT].lost_bytes, unreported, skipped,
		(unsigned long long)st.bad_records, (unsigned long long)st.detaches,
		(unsigned long long)(st.blind_ns / 1000000));
}

int cmd_capture(int argc, char **argv)
{
	struct capture c = { 0 };
	int ret, err;

	ret = parse(&c, argc, argv);
	if (ret)
		return ret < 0 ? ST_EXIT_OK : ret;

	ret = ST_EXIT_RUNTIME;
	/* Open the output first: an unwritable file must fail before we attach. And before the
	 * loop blocks signals: opening a FIFO waits for its reader, and Ctrl-C must end that. */
	c.w = st_pcapw__open(c.out);
	if (!c.w)
		goto out;
	c.flows = st_flowset__new(CAPTURE_MAX_FLOWS);
	c.loop = st_loop__new();
	if (!c.flows || !c.loop) {
		fprintf(stderr, "shadowtap: %s\n", strerror(errno));
		goto out;
	}
	c.tap = st_tap__open(&c.target, c.verbose, on_segment, &c);
	if (!c.tap)
		goto out;
	/* attached: the new file takes -w's path only now (a failed start left it as it was) */
	if (st_pcapw__commit(c.w))
		goto out;
	if (c.verbose)
		fprintf(stderr, "shadowtap: capturing %zu port(s) on %s %s\n", c.target.n_ports,
			c.target.iface ? "interface" : "cgroup",
			c.target.iface ? c.target.iface : c.target.cgroup);
	err = st_loop__add(c.loop, st_tap__fd(c.tap), on_ring, &c);
	if (!err)
		err = st_tap__watch(c.tap, c.loop);
	if (!err)
		err = st_loop__on_signal(c.loop, SIGHUP, on_hup, &c);
	if (!err)
		err = st_loop__set_tick(c.loop, CAPTURE_TICK_MS, on_tick, &c);
	if (!err)
		err = st_loop__run(c.loop, c.duration);
	if (c.out_err == EPIPE) {
		/* The reader went away (wireshark closed, | head): a normal end. */
		err = 0;
	} else if (c.out_err) {
		fprintf(stderr, "shadowtap: -w %s: %s\n", c.out, strerror(c.out_err));
	} else if (err) {
		fprintf(stderr, "shadowtap: capture: %s\n", strerror(-err));
	}
	ret = err ? ST_EXIT_RUNTIME : ST_EXIT_OK;
	summary(&c);
out:
	if (c.w && !c.tap) {
		/* nothing was captured: -w stays as it was, never truncated or removed */
		st_pcapw__abort(c.w);
		c.w = NULL;
	}
	/* Detach first: the kernel side stops before the file closes. */
	st_tap__destroy(c.tap);
	if (c.w && st_pcapw__close(c.w) && !c.out_err && ret == ST_EXIT_OK &&
	    strcmp(c.out, "-")) {
		fprintf(stderr, "shadowtap: -w %s: write failed\n", c.out);
		ret = ST_EXIT_RUNTIME;
	}
	st_flowset__free(c.flows);
	st_loop__free(c.loop);
	return ret;
}
