/* SPDX-License-Identifier: GPL-2.0-only */
/* shadowtap capture: a service's TCP traffic, from the kernel to a pcap file. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "flowset.h"
#include "job.h"
#include "log.h"
#include "loop.h"
#include "optparse.h"
#include "opts.h"
#include "output.h"
#include "pcapw.h"
#include "tap.h"

/* Count up to this many distinct connections (connmap: ~100 bytes each, ~100 MB at most). */
#define CAPTURE_MAX_FLOWS (1u << 20)

struct capture {
	struct st_job_head h;  /* first (job.h): the target, -v -q --stats, --duration */
	const char *out;
	uint64_t queue_bytes;  /* --write-queue-mb */
	uint64_t rotate_bytes; /* --rotate-mb */
	double rotate_s;       /* --rotate-sec */
	unsigned keep;         /* --keep */
	mode_t out_mode;       /* --output-mode */
	/* rotation's state */
	char name[4096];       /* the file being written (its final name) */
	uint64_t file_bytes;   /* about what went into it */
	uint64_t file_mono;    /* when it started */
	uint64_t last_ms;      /* its name's time: names never repeat, always sort by time */
	struct st_pcapw *w;
	struct st_flowset *flows;
	unsigned ticks;
	int out_err;
};
_Static_assert(offsetof(struct capture, h) == 0, "job.h: the head first");

static const char usage_head[] =
	"Usage: shadowtap capture (--iface IFACE | --cgroup PATH) --port P [--port P ...]\n"
	"                         [--host CIDR ...] -w FILE [--duration SEC] [-v] [-q]\n"
	"                         [--rotate-mb N] [--rotate-sec SEC] [--keep N]\n"
	"\n"
	"Writes the service's TCP traffic on port P (packets arriving for P, packets\n"
	"leaving from P) to a pcap file that tcpdump, tshark, tcpflow and Wireshark read.\n"
	"Large (GSO) segments arrive whole, as several packets. Ends on SIGINT, SIGTERM\n"
	"(or another stop signal) or --duration, and prints a summary line on stderr.\n"
	"SIGHUP reopens FILE: after 'mv FILE FILE.1' a new FILE starts (logrotate).\n"
	"\n";

static const struct st_opt capture_opts[] = {
	ST_OPT_STRING("write", 'w', struct capture, out, "FILE",
		      "pcap output, '-' for stdout (| wireshark -k -i -)"),
	ST_OPT_SECONDS("duration", 'd', struct capture, h.duration, 0.001, 1e9,
		      "stop after SEC seconds"),
	ST_OPT_UINT("rotate-mb", 0, struct capture, rotate_bytes, "N", 1, 1048576, ST_OPTF_MIB,
		    "a new file after about N MiB: FILE's name with the start time\n"
		    "(web.pcap: web-20261130T120000.000Z.pcap), written under a\n"
		    "hidden temporary name and renamed when complete"),
	ST_OPT_SECONDS("rotate-sec", 0, struct capture, rotate_s, 1, 1e9,
		      "a new file every SEC seconds (named as with --rotate-mb)"),
	ST_OPT_UINT("keep", 0, struct capture, keep, "N", 2, 1000000, 0,
		    "with rotation: at most N files, N >= 2 (the one being written\n"
		    "included; earlier runs' files of the same name too): the oldest go"),
};

static const struct st_opt capture_limit_opts[] = {
	ST_OPT_UINT("write-queue-mb", 0, struct capture, queue_bytes, "N", ST_PCAPW_QUEUE_MB_MIN,
		    ST_PCAPW_QUEUE_MB_MAX, ST_OPTF_MIB,
		    "memory between the capture and FILE, in MiB (default 64): when\n"
		    "the disk or a pipe's reader falls behind, packets are dropped\n"
		    "and counted (dropped_writes=), never lost in the kernel"),
};

static bool rotating(const struct capture *c)
{
	return c->rotate_bytes || c->rotate_s > 0;
}

/* -w's path without its .pcap, then -TIME.pcap, or with a glob for the time (older files). */
static int rotated_name(struct capture *c, char *buf, size_t len, bool pattern)
{
	size_t base = strlen(c->out);
	char stamp[48];
	int n;

	if (base > 5 && !strcmp(c->out + base - 5, ".pcap"))
		base -= 5;
	if (pattern) {
		n = snprintf(buf, len, "%.*s-[0-9]*T[0-9]*Z.pcap", (int)base, c->out);
	} else {
		uint64_t ms = st_loop_realtime_ns() / 1000000;
		time_t secs;
		struct tm tm;

		if (ms <= c->last_ms)
			ms = c->last_ms + 1; /* two files in one millisecond: the next one's name */
		c->last_ms = ms;
		secs = (time_t)(ms / 1000);
		gmtime_r(&secs, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
		n = snprintf(buf, len, "%.*s-%s.%03uZ.pcap", (int)base, c->out, stamp,
			     (unsigned)(ms % 1000));
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* An earlier run's rotated file, by its name: BASE-YYYYMMDDTHHMMSS.mmmZ.pcap with a date
 * that exists (the glob also matches "BASE-1T1Z.pcap" and "BASE-20261399T...": not ours). */
static bool rotated_name_ok(const char *path)
{
	const char *dash = strrchr(path, '-');
	struct tm tm = { 0 }, back;
	unsigned ms;
	time_t t;
	int n = 0;

	if (!dash || strlen(dash) != strlen("-20260101T000000.000Z.pcap") ||
	    sscanf(dash, "-%4d%2d%2dT%2d%2d%2d.%3uZ.pcap%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &n) != 7 || (size_t)n != strlen(dash))
		return false;
	for (const char *p = dash + 1; *p != 'Z'; p++)
		if (!(*p >= '0' && *p <= '9') && *p != 'T' && *p != '.')
			return false; /* "%2d" takes "+1" and " 1" too */
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	back = tm;
	t = timegm(&back);
	/* timegm normalises an impossible date (month 13, February 30): it must come back as is */
	return t >= 0 && back.tm_year == tm.tm_year && back.tm_mon == tm.tm_mon &&
	       back.tm_mday == tm.tm_mday && back.tm_hour == tm.tm_hour && back.tm_min == tm.tm_min &&
	       back.tm_sec == tm.tm_sec;
}

/* The file is big or old enough: the next one starts; this one is renamed when written. */
static void rotate(struct capture *c)
{
	char next[sizeof(c->name)];
	int err = rotated_name(c, next, sizeof(next), false);

	if (!err)
		err = st_pcapw__rotate(c->w, next);
	c->file_bytes = 0;
	c->file_mono = st_loop_mono_ns();
	if (err) {
		pr_warn("-w %s: no new file (%s): writing on into %s", c->out, strerror(-err),
			c->name);
		return;
	}
	pr_info("-w %s: %s complete, writing %s", c->out, c->name, next);
	memcpy(c->name, next, sizeof(next));
}

static int on_segment(void *ctx, const struct st_segment *seg)
{
	struct capture *c = ctx;

	/* loss records carry no bytes: the tap counts them (lost=) */
	if (seg->kind == ST_SEG_LOSS)
		return 0;
	if (c->rotate_bytes && c->file_bytes >= c->rotate_bytes)
		rotate(c);
	/* a record: its 16-byte header, the frame's headers (about 54 bytes), the payload */
	c->file_bytes += 70 + seg->len;
	if (st_pcapw__write(c->w, seg))
		return 0;
	if (st_flowset__add(c->flows, &seg->key) < 0)
		return -ENOMEM;
	return 0;
}

/* The runner drained the ring first. */
static int on_tick(void *ctx, uint64_t now)
{
	struct capture *c = ctx;
	int err;

	if (c->rotate_s > 0 && now - c->file_mono >= (uint64_t)(c->rotate_s * 1e9))
		rotate(c);
	/* Hand a pipe's bytes over every tick (a live Wireshark), a file's twice a second: the
	 * writer thread writes them; a full queue drops packets (counted), never blocks here. */
	if (st_pcapw__streaming(c->w) || ++c->ticks % 25 == 0) {
		err = st_pcapw__flush(c->w);
		if (err) {
			c->out_err = -err;
			return err;
		}
	}
	return 0;
}

/* SIGHUP (logrotate: mv x.pcap x.1.pcap; kill -HUP): what the kernel captured so far (the
 * runner drained it) goes to the file being written, which is then finished properly, and a
 * new pcap starts at -w's path. Nothing to do when the path still names that file, or for
 * stdout, a device, a FIFO. */
static int on_hup(void *ctx)
{
	struct capture *c = ctx;
	int err = st_pcapw__reopen(c->w);

	if (err > 0)
		pr_info("SIGHUP: -w %s reopened", c->out);
	else if (!err)
		pr_info("SIGHUP: -w %s: nothing to reopen (not moved, or not a regular file)", c->out);
	else
		pr_warn("SIGHUP: -w %s: no new file (%s): writing on into the moved one", c->out,
			strerror(-err));
	return 0;
}

static size_t optsets(void *obj, struct st_optset *sets)
{
	struct capture *c = obj;

	sets[0] = (struct st_optset){ st_target_opts, st_target_opts_n, &c->h.target, NULL };
	sets[1] = (struct st_optset)ST_OPTSET(capture_opts, c);
	sets[2] = (struct st_optset){ st_run_opts, st_run_opts_n, &c->h.run, NULL };
	sets[3] = (struct st_optset){ st_output_opts, st_output_opts_n, &c->out_mode, NULL };
	sets[4] = (struct st_optset){ st_tap_tuning_opts, st_tap_tuning_opts_n, &c->h.target,
				      ST_OPT_TITLE_TAP };
	sets[5] = (struct st_optset)ST_OPTSET_T(capture_limit_opts, c, ST_OPT_TITLE_LIMITS);
	return 6;
}

/* 0, or ST_EXIT_USAGE after one line on stderr. */
static int check(void *obj, int argc, char **argv, int first)
{
	struct capture *c = obj;

	if (first < argc) {
		pr_err("capture: unexpected argument '%s'", argv[first]);
		return ST_EXIT_USAGE;
	}
	if (st_target_check(&c->h.target, "capture"))
		return ST_EXIT_USAGE;
	if (!c->out) {
		pr_err("capture: -w FILE is required ('-' for stdout)");
		return ST_EXIT_USAGE;
	}
	if (c->keep && !rotating(c)) {
		pr_err("capture: --keep needs --rotate-mb or --rotate-sec");
		return ST_EXIT_USAGE;
	}
	if (rotating(c) && !strcmp(c->out, "-")) {
		pr_err("capture: --rotate-mb/--rotate-sec write files: -w '-' is stdout");
		return ST_EXIT_USAGE;
	}
	return 0;
}

/* The summary line, once the writer is done: its counts are exact then. packets= bytes=
 * flows= lost= come first, as they always have (scripts read them there). */
static void summary(struct capture *c, const struct st_tap_summary *ts,
		    const struct st_pcapw_stats *ws, const char *what)
{
	struct st_statline l;

	st_statline_init(&l);
	st_statline_add_table(&l, st_pcapw_stat_desc, 2, ws); /* packets, bytes */
	st_statline_add(&l, "flows", st_flowset__count(c->flows), ST_STAT_COUNTER,
			"connections seen (a lower bound when flows_capped is 1)");
	st_statline_add_table(&l, st_tap_stat_desc, st_tap_stat_n, ts);
	st_statline_add(&l, "flows_capped", (uint64_t)!!st_flowset__full(c->flows), ST_STAT_GAUGE,
			"1 when the connection count stopped at its cap");
	st_statline_add_table(&l, st_pcapw_stat_desc + 2, st_pcapw_stat_n - 2, ws);
	st_statline_print(&l, what);
}

static void stats(void *obj, struct st_statline *l, const struct st_tap_summary *ts)
{
	struct capture *c = obj;
	struct st_pcapw_stats ws;

	st_pcapw__stats(c->w, &ws);
	st_statline_add_table(l, st_pcapw_stat_desc, 2, &ws); /* packets, bytes */
	st_statline_add(l, "flows", st_flowset__count(c->flows), ST_STAT_COUNTER,
			"connections seen (a lower bound when flows_capped is 1)");
	st_statline_add_table(l, st_tap_stat_desc, st_tap_stat_n, ts);
	st_statline_add(l, "flows_capped", (uint64_t)!!st_flowset__full(c->flows), ST_STAT_GAUGE,
			"1 when the connection count stopped at its cap");
	st_statline_add_table(l, st_pcapw_stat_desc + 2, st_pcapw_stat_n - 2, &ws);
}

/* Open the output first: an unwritable file must fail before we attach. */
static int start(void *obj)
{
	struct capture *c = obj;

	if (rotating(c) && rotated_name(c, c->name, sizeof(c->name), false)) {
		pr_err("-w %s: the name is too long", c->out);
		return -1;
	}
	c->w = st_pcapw__open(rotating(c) ? c->name : c->out, c->queue_bytes, c->out_mode);
	if (!c->w)
		return -1;
	c->file_mono = st_loop_mono_ns();
	c->flows = st_flowset__new(CAPTURE_MAX_FLOWS);
	if (!c->flows) {
		pr_err("capture: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int attached(void *obj, struct st_loop *l, struct st_tapsub *sub)
{
	struct capture *c = obj;

	if (rotating(c)) {
		char older[sizeof(c->name) + 32];

		/* each file takes its name when complete; --keep counts earlier runs' too */
		if (rotated_name(c, older, sizeof(older), true) ||
		    st_pcapw__rotation(c->w, c->keep, older, rotated_name_ok)) {
			pr_err("-w %s: rotation needs a regular file", c->out);
			return -1;
		}
	} else if (st_pcapw__commit(c->w)) {
		/* attached: the new file takes -w's path only now (a failed start left it as it
		 * was) */
		return -1;
	}
	return 0;
}

/* The tap is gone (detached first: the kernel side stops before the file closes). */
static int finish(void *obj, int err, bool ran, const struct st_tap_summary *ts, const char *what)
{
	struct capture *c = obj;
	struct st_pcapw_stats ws = { 0 };
	int ret;

	if (!ran) {
		ret = ST_EXIT_RUNTIME;
	} else if (c->out_err == EPIPE) {
		/* The reader went away (wireshark closed, | head): a normal end. */
		ret = ST_EXIT_OK;
	} else if (c->out_err) {
		pr_err("-w %s: %s", c->out, strerror(c->out_err));
		ret = ST_EXIT_RUNTIME;
	} else if (err) {
		pr_err("capture: %s", strerror(-err));
		ret = ST_EXIT_RUNTIME;
	} else {
		ret = ST_EXIT_OK;
	}
	err = st_pcapw__close(c->w, &ws);
	c->w = NULL;
	if (err && err != -EPIPE && !c->out_err && ret == ST_EXIT_OK) {
		pr_err("-w %s: %s", c->out, strerror(-err));
		ret = ST_EXIT_RUNTIME;
	}
	if (ran)
		summary(c, ts, &ws, what);
	return ret;
}

/* Reload: new ports and peers (the kernel selects; nothing here filters). */
static bool retarget(void *obj, const void *new_obj)
{
	struct capture *c = obj;
	const struct capture *n = new_obj;

	st_job_head_retarget(&c->h, &n->h);
	return true;
}

static void destroy(void *obj)
{
	struct capture *c = obj;

	st_pcapw__close(c->w, NULL);
	st_flowset__free(c->flows);
}



/* Where it writes: the file being written now and its size once running (rotation: the
 * bytes handed to it so far), -w's path before. */
static void describe(void *obj, struct st_job_desc *d)
{
	struct capture *c = obj;
	struct stat st;
	char h[32];

	if (!strcmp(c->out, "-"))
		snprintf(d->outputs, sizeof(d->outputs), "stdout");
	else if (c->w && rotating(c))
		snprintf(d->outputs, sizeof(d->outputs), "%.400s (%s so far; rotated)", c->name,
			 st_progress_bytes(c->file_bytes, h, sizeof(h)));
	else if (c->w && !stat(c->out, &st) && S_ISREG(st.st_mode))
		snprintf(d->outputs, sizeof(d->outputs), "%.400s (%s)", c->out,
			 st_progress_bytes((uint64_t)st.st_size, h, sizeof(h)));
	else
		snprintf(d->outputs, sizeof(d->outputs), "%.400s%s", c->out,
			 rotating(c) ? " (rotated)" : "");
}

/* Packets and bytes in, what the kernel or the output lost, the output's queue. */
static void brief(void *obj, const struct st_tap_summary *ts, struct st_brief *b)
{
	struct capture *c = obj;
	struct st_pcapw_stats ws;

	st_pcapw__stats(c->w, &ws);
	st_brief_add(b, "packets", ws.packets, ST_BRIEF_RATE);
	st_brief_add(b, "written", ws.bytes, ST_BRIEF_RATE | ST_BRIEF_BYTES);
	st_brief_add(b, "flows", st_flowset__count(c->flows), 0);
	/* the kernel's ring was full; the output was slower than the capture */
	st_brief_add(b, "lost", ts->lost, ST_BRIEF_BYTES);
	st_brief_add(b, "dropped", ws.dropped_writes, 0);
	{
		uint64_t bound, q = st_pcapw__queued(c->w, &bound);

		st_brief_add(b, "queue", q, ST_BRIEF_BYTES);
		st_brief_add(b, "of", bound, ST_BRIEF_SUB | ST_BRIEF_BYTES);
	}
}


const struct st_job_kind st_capture_kind = {
	.name = "capture",
	.usage_head = usage_head,
	.size = sizeof(struct capture),
	.tick_ms = ST_TICK_MS,
	.optsets = optsets,
	.check = check,
	.target = st_job_head_target,
	.run_opts = st_job_head_run_opts,
	.duration = st_job_head_duration,
	.describe = describe,
	.brief = brief,
	.start = start,
	.attached = attached,
	.segment = on_segment,
	.tick = on_tick,
	.hup = on_hup,
	.finish = finish,
	.stats = stats,
	.retarget = retarget,
	.destroy = destroy,
};

int cmd_capture(int argc, char **argv)
{
	return st_job_command(&st_capture_kind, argc, argv);
}
