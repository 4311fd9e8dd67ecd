/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Jobs: what a live command does, as hooks one runner calls. `shadowtap capture`
 * is one capture job run by st_job_command(); the daemon runs several jobs of
 * any kind in one loop, sharing taps (tapmux.h). The kinds are the commands'
 * (capture.c, flows.c, shadow_cmd.c, tee.c, watch.c): their options tables serve the
 * command line and the daemon's config sections alike.
 *
 * In the daemon every job shares one loop: a hook that blocks (a connect, a handshake, a
 * FIFO's open, a flush) stalls every job. A kind that blocks in its command does that work
 * in a thread of its own in a daemon job (tee's --to), which check() tells by argv.
 *
 * A job's life: init (defaults) -> options (command line or config section) ->
 * check -> start (outputs, engines; nothing attached yet) -> attached (the tap
 * delivers: segment per record, batch after each ring drain, tick) -> the tap
 * is left (its ring drained into the job first) -> finish (flush, drain, the
 * summary) -> destroy.
 */
#ifndef ST_JOB_H
#define ST_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "loop.h"
#include "opts.h"
#include "optparse.h"
#include "prom.h"
#include "progress.h"
#include "stats.h"
#include "tap.h"
#include "tapmux.h"

#define ST_JOB_MAX_OPTSETS 16

/* What a job does, in words (its describe hook): the start line, `ctl status` and
 * `daemon --check` say it. The input (interface or cgroup, ports, peers) and the sample are
 * the runner's to say, from the target and the tap options. */
struct st_job_desc {
	char targets[512]; /* where its requests go: the shadow's --to ("10.0.5.20:8080"); "" */
	char outputs[512]; /* what it writes: "web.pcap (12 MB)", "-o flows/", "stdout"; "" */
	char sample[64];   /* "10% of requests" when the tap options do not say it; "" */
};

struct st_job_kind {
	const char *name;        /* the command: "capture" */
	const char *usage_head;  /* --help's text before the options */
	size_t size;             /* bytes of the job's object (zeroed, then init) */
	unsigned tick_ms;        /* how often it wants tick() (the command's loop tick) */
	void (*init)(void *obj);
	/* Its option tables, bound to obj; returns how many (<= ST_JOB_MAX_OPTSETS). */
	size_t (*optsets)(void *obj, struct st_optset *sets);
	/* After the options: positional arguments (argv[first..], none from a config) and the
	 * checks across options. argv is NULL for a daemon job's section. 0, or ST_EXIT_USAGE
	 * after one line on stderr. */
	int (*check)(void *obj, int argc, char **argv, int first);
	/* The live target its tap serves, NULL when it has no live input (flows FILE). */
	struct st_target *(*target)(void *obj);
	/* What it needs the kernel to select and copy (NULL hook: everything, whole). */
	void (*tap_opts)(void *obj, struct st_tap_opts *o);
	/* Its -v, -q and --stats (st_run_opts rows in its optsets), and --duration (0: until
	 * stopped). */
	struct st_run_opts *(*run_opts)(void *obj);
	double (*duration)(void *obj);
	/* Its targets and outputs in words (the file it writes now, and its size, once it
	 * runs; the options' before). */
	void (*describe)(void *obj, struct st_job_desc *d);
	/* The few counters that matter for it, for --stats and the live status line
	 * (progress.h): rates in and out, drops and why, the queue (ts: the tap's now). */
	void (*brief)(void *obj, const struct st_tap_summary *ts, struct st_brief *b);
	/* Outputs and engines, before anything attaches (and, in a command, before the loop
	 * takes the signals: opening a FIFO waits for its reader, and Ctrl-C must end that).
	 * 0, or -1 after one line (destroy undoes it). */
	int (*start)(void *obj);
	/* Attached, its tap share is sub: what waited for it (capture's file takes -w's path;
	 * shadow's sockets join l). 0, or -1 after one line. */
	int (*attached)(void *obj, struct st_loop *l, struct st_tapsub *sub);
	/* Before leaving the loop l (the daemon stops or restarts it alone): its fds go. */
	void (*detach_loop)(void *obj, struct st_loop *l);
	/* Each record the tap gives it (losses included); < 0 stops the run. */
	int (*segment)(void *obj, const struct st_segment *seg);
	/* After each ring drain (shadow: send what was fed); < 0 stops the run. */
	int (*batch)(void *obj);
	/* Periodic work: timers, flushes; < 0 stops the run. */
	int (*tick)(void *obj, uint64_t now_mono);
	/* SIGHUP in the command (reopen outputs); NULL: nothing to reopen. */
	int (*hup)(void *obj);
	/* The run stopped (err: the loop's result) and the tap is gone (ts: its counters,
	 * zeros when it never attached; ran: it attached). Flushes, drains, and prints the
	 * summary as `what` ("summary", or "summary job=NAME" in the daemon). Returns the
	 * exit status. */
	int (*finish)(void *obj, int err, bool ran, const struct st_tap_summary *ts,
		      const char *what);
	/* The counters now, into l (stats lines, metrics). */
	void (*stats)(void *obj, struct st_statline *l, const struct st_tap_summary *ts);
	/* Its labelled families now (prom.h: watch's per-endpoint series, tap compare's), each
	 * sample labelled base (job, command) + its own; NULL hook: none. */
	void (*series)(void *obj, struct st_prom *p, const struct st_prom_labels *base);
	/* Reload: obj's filters can take new's ports, peers and sample without a restart
	 * (copies them into obj and returns true); NULL hook: never. */
	bool (*retarget)(void *obj, const void *new_obj);
	/* The daemon is stopping: finish may wait at most max_s for outputs that wait (shadow
	 * targets taking their queues); NULL hook: finish never waits. */
	void (*limit_drain)(void *obj, double max_s);
	/* A command with no live input (flows FILE): runs it whole, returns the exit status. */
	int (*offline)(void *obj);
	void (*destroy)(void *obj);
};

/*
 * The head every kind's object starts with (its first member): what each kind has alike, so
 * that one set of hooks serves them all. A kind sets .target = st_job_head_target (or its own
 * where it differs: flows has none with a FILE), .run_opts = st_job_head_run_opts and
 * .duration = st_job_head_duration; its option tables write into the head's fields
 * (st_target_opts, st_run_opts, its own --duration row: bounds and defaults differ).
 */
struct st_job_head {
	struct st_target target;  /* the live target: --iface/--cgroup, --port, --host ... */
	struct st_run_opts run;   /* -v, -q, --stats */
	double duration;          /* --duration (seconds; 0: until stopped) */
};

struct st_target *st_job_head_target(void *obj);
struct st_run_opts *st_job_head_run_opts(void *obj);
double st_job_head_duration(void *obj);
/* A reload's part every kind's retarget hook shares: the filters a running tap takes without
 * a restart (ports and hosts), from n's target into h's. */
void st_job_head_retarget(struct st_job_head *h, const struct st_job_head *n);

/* The kinds, each defined with its command (outside libshadowtap.a): commands.h. */

/* A command: one job of kind from argv (argv[0] the command), run by the runner. Returns
 * the process exit status. */
int st_job_command(const struct st_job_kind *kind, int argc, char **argv);

/* The job in one line, as its start line says it: "interface eth0, port 80, every
 * connection -> web.pcap". Returns buf. */
const char *st_job_line(const struct st_job_kind *k, void *obj, char *buf, size_t len);

/*
 * A job that just attached: what it can tell at once is wrong with its target, said in one
 * warning each (agent/input/sockcheck.h: nothing listens on a --port in this network
 * namespace, a cgroup whose listening sockets were made before their process joined it).
 * Bounded: it reads the listening sockets only.
 */
void st_job_check_target(const struct st_job_kind *k, void *obj);

/* The "no packet of the port came" watch of a running job (--warn-idle). */
struct st_job_idle {
	uint64_t since_ns;  /* attached */
	bool done;          /* said, or a packet came */
};

void st_job_idle_start(struct st_job_idle *w, uint64_t now_ns);
/* Says it once, when --warn-idle passed with nothing of the target's ports in its tap share. */
void st_job_idle_tick(struct st_job_idle *w, const struct st_job_kind *k, void *obj,
		      const struct st_tapsub *sub, uint64_t now_ns);

#endif /* ST_JOB_H */
