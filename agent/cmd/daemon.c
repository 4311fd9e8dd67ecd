/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap daemon --config FILE [--check]`: several named jobs (capture, flows, shadow,
 * tee) in one process and one event loop, jobs on the same interface or cgroup sharing one
 * tap (tapmux.h); Prometheus metrics (httpd.h), a control socket (ctl.h), reload on
 * SIGHUP, sd_notify. docs/DAEMON.md is the user's side.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "ctl.h"
#include "httpd.h"
#include "job.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "opts.h"
#include "tapmux.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
/* A job that ran this long before failing starts its backoff from the minimum again. */
#define RETRY_RESET_NS (60ull * 1000000000)
#define MAX_JOBS 64
/* SIGTERM: the jobs' ends share this (systemd waits TimeoutStopSec; the promise is 2 s). */
#define STOP_BUDGET_NS (1000ull * 1000000)

#ifndef ST_VERSION
#define ST_VERSION "0.1.0"
#endif

/* ---- the [daemon] section ------------------------------------------------------------- */

struct daemon_opts {
	const char *metrics;   /* ADDR:PORT, or NULL: no HTTP server */
	const char *control;   /* the control socket's path */
	const char *state_dir; /* relative paths of jobs' outputs are under it */
	int log_level;         /* enum st_log_level */
};

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };

static const struct st_opt daemon_rows[] = {
	ST_OPT_STRING("metrics", 0, struct daemon_opts, metrics, "ADDR:PORT",
		      "Prometheus /metrics and /healthz (\":9464\": every address)"),
	ST_OPT_STRING("control", 0, struct daemon_opts, control, "PATH",
		      "control socket (default " ST_CTL_SOCKET_DEFAULT ")"),
	ST_OPT_STRING("state-dir", 0, struct daemon_opts, state_dir, "DIR",
		      "the working directory: jobs' relative output paths are in it"),
	ST_OPT_CHOICE("log-level", 0, struct daemon_opts, log_level, "LEVEL", log_levels,
		      "error, warn (default), info, debug"),
};

/* ---- a validated file: the plan ------------------------------------------------------- */

/* One [COMMAND NAME] section, copied out of its file (the job's option strings point in it). */
struct jobdef {
	const struct st_job_kind *k;
	struct st_config_file cfg; /* path + this one section (owned copy) */
	char label[160];      /* "job NAME" (the log's context) */
	char what[160];       /* "summary job=NAME" */
	char stats[160];      /* "stats job=NAME" (its --stats lines) */
};

struct plan {
	struct st_config_file file;  /* as read */
	struct daemon_opts opts;
	struct jobdef *defs[MAX_JOBS];
	size_t n;
};

static void def_free(struct jobdef *d)
{
	if (d)
		st_config_free(&d->cfg);
	free(d);
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		def_free(p->defs[i]);
	st_config_free(&p->file);
	memset(p, 0, sizeof(*p));
}

static char *xstrdup(const char *s, bool *oom)
{
	char *r = s ? strdup(s) : NULL;

	if (s && !r)
		*oom = true;
	return r;
}

/* A deep copy of section s of c, as a config of its own. */
static int def_copy(struct jobdef *d, const struct st_config_file *c, const struct st_config_section *s)
{
	struct st_config_section *n;
	bool oom = false;

	d->cfg.path = xstrdup(c->path, &oom);
	d->cfg.s = calloc(1, sizeof(*d->cfg.s));
	if (!d->cfg.s)
		return -1;
	d->cfg.n = d->cfg.cap = 1;
	n = d->cfg.s;
	n->command = xstrdup(s->command, &oom);
	n->name = xstrdup(s->name, &oom);
	n->line = s->line;
	n->e = calloc(s->n ? s->n : 1, sizeof(*n->e));
	if (!n->e)
		return -1;
	n->n = n->cap = s->n;
	for (size_t i = 0; i < s->n; i++) {
		n->e[i].key = xstrdup(s->e[i].key, &oom);
		n->e[i].value = xstrdup(s->e[i].value, &oom);
		n->e[i].line = s->e[i].line;
	}
	return oom ? -1 : 0;
}

/* A job object of d's kind with d's options, checked: obj, or NULL after one line naming
 * the file and the section's line. */
static void *job_new(const struct jobdef *d)
{
	const struct st_config_section *s = d->cfg.s;
	struct st_optset sets[ST_JOB_MAX_OPTSETS];
	char where[512];
	void *obj = calloc(1, d->k->size);
	size_t n;
	int rc;

	if (!obj) {
		pr_err("%s: out of memory", d->label);
		return NULL;
	}
	if (d->k->init)
		d->k->init(obj);
	n = d->k->optsets(obj, sets);
	if (st_config_apply(&d->cfg, s, sets, n)) {
		d->k->destroy(obj);
		free(obj);
		return NULL;
	}
	/* the command's own checks name the command: the file and section go in front */
	snprintf(where, sizeof(where), "%s:%u: [%s %s]", d->cfg.path, s->line, s->command, s->name);
	st_log_set_context(where);
	rc = d->k->check(obj, 0, NULL, 0);
	if (!rc && !d->k->target(obj)) {
		pr_err("%s: a daemon job needs a live input (--iface or --cgroup)", d->k->name);
		rc = ST_EXIT_USAGE;
	}
	st_log_set_context(NULL);
	if (rc) {
		d->k->destroy(obj);
		free(obj);
		return NULL;
	}
	return obj;
}

static void job_free(const struct st_job_kind *k, void *obj)
{
	if (!obj)
		return;
	k->destroy(obj);
	free(obj);
}

/* Reads and checks path: every job's options through its command's rows. 0, or -1 after
 * one line "FILE:LINE: reason". */
static int plan_load(struct plan *p, const char *path)
{
	const struct st_config_section *ds;

	memset(p, 0, sizeof(*p));
	p->opts.log_level = ST_LOG_WARN;
	if (st_config_load(&p->file, path))
		goto bad; /* what it read before the error is freed too */
	ds = st_config_daemon(&p->file);
	if (ds) {
		const struct st_optset set = ST_OPTSET(daemon_rows, &p->opts);

		if (st_config_apply(&p->file, ds, &set, 1))
			goto bad;
	}
	for (size_t i = 0; i < p->file.n; i++) {
		const struct st_config_section *s = &p->file.s[i];
		struct jobdef *d;
		void *obj;

		if (!s->name)
			continue; /* [daemon] */
		if (p->n >= MAX_JOBS) {
			pr_err("%s:%u: more than %d jobs", path, s->line, MAX_JOBS);
			goto bad;
		}
		d = calloc(1, sizeof(*d));
		if (!d) {
			pr_err("%s: out of memory", path);
			goto bad;
		}
		p->defs[p->n++] = d;
		d->k = st_job_kind_find(s->command);
		if (!d->k) {
			pr_err("%s:%u: [%s %s]: unknown command '%s' (a job is capture, flows, "
			       "shadow, tee or watch)", path, s->line, s->command, s->name, s->command);
			goto bad;
		}
		if (def_copy(d, &p->file, s)) {
			pr_err("%s: out of memory", path);
			goto bad;
		}
		snprintf(d->label, sizeof(d->label), "job %s", s->name);
		snprintf(d->what, sizeof(d->what), "summary job=%s", s->name);
		snprintf(d->stats, sizeof(d->stats), "stats job=%s", s->name);
		obj = job_new(d);
		if (!obj)
			goto bad;
		job_free(d->k, obj);
	}
	if (!p->n) {
		/* nothing would run: a wrong file named, or a section misspelt */
		pr_err("%s: no jobs: a job is a section [capture NAME], [flows NAME], [shadow NAME], "
		       "[tee NAME] or [watch NAME]", path);
		goto bad;
	}
	return 0;
bad:
	plan_free(p);
	return -1;
}

/* ---- running jobs ------------------------------------------------------------------- */

enum job_state {
	JOB_RUNNING,
	JOB_RETRYING, /* failed; starts again at retry_ns */
};

static const char *const state_names[] = { "running", "retrying" };

struct daemon;

struct job {
	struct st_list_head node;
	struct daemon *d;
	struct jobdef *def;      /* its section as the file has it now */
	struct jobdef *idef;     /* the one its instance was made from (its option strings
				  * point in it): def, or an older one after a reload that
				  * changed only filters */
	void *obj;               /* the running instance, NULL while retrying */
	bool began;              /* its start hook succeeded: finish undoes it */
	struct st_tapsub *sub;
	enum job_state state;
	bool failed;             /* a hook failed: stopped at the next tick */
	uint64_t started_ns, retry_ns;
	unsigned backoff_ms;
	uint64_t restarts;       /* starts after the first (failures, changed sections) */
	uint64_t failures;
	char why[256];           /* the last failure */
	char last_error[512];    /* the last failure and the first error line it logged (kept
				  * once the job runs again: ctl status shows it) */
	uint64_t last_error_real; /* when (CLOCK_REALTIME ns) */
	struct st_tap_summary ts; /* the last tap counters (kept while retrying) */
	struct st_job_idle idle; /* its --warn-idle watch */
	struct st_progress prog; /* its --stats lines */
};

struct daemon {
	const char *path;        /* the config file, absolute */
	struct plan plan;
	struct st_loop *loop;
	struct st_tapmux *mux;
	struct st_httpd *httpd;
	struct st_ctl *ctl;
	char *metrics_addr, *control_path;
	struct st_list_head jobs;
	size_t n_jobs;
	uint64_t reloads, reload_failures;
	bool stopping;
	uint64_t started_ns;     /* the daemon's start (uptime) */
};

/* ---- sd_notify (the NOTIFY_SOCKET datagram protocol; no libsystemd) ------------------ */

static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || !*path || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(a.sun_path))
		return;
	memcpy(a.sun_path, path, strlen(path));
	if (path[0] == '@')
		a.sun_path[0] = 0; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&a, len) < 0)
		pr_debug("sd_notify: %s", strerror(errno));
	close(fd);
}

static void notify_reloading(void)
{
	char msg[96];
	struct timespec ts;

	/* Type=notify-reload wants the monotonic time with RELOADING=1 */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
		 (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
	notify(msg);
}

/* ---- one job: start, stop, fail ------------------------------------------------------ */

static int job_seg(void *ctx, const struct st_segment *seg)
{
	struct job *j = ctx;

	/* a job that failed takes nothing more; its failure never stops the shared ring */
	if (j->failed)
		return 0;
	if (j->def->k->segment(j->obj, seg) < 0) {
		j->failed = true;
		snprintf(j->why, sizeof(j->why), "its output failed");
	}
	return 0;
}

static int job_batch(void *ctx)
{
	struct job *j = ctx;

	if (!j->failed && j->def->k->batch(j->obj) < 0) {
		j->failed = true;
		snprintf(j->why, sizeof(j->why), "its output failed");
	}
	return 0;
}

/* Stops a running instance: its ring share drained into it, detached, finished (summary). */
static void job_stop(struct job *j, int err)
{
	const struct st_job_kind *k = j->def->k;

	if (!j->obj)
		return;
	st_log_set_context(j->def->label);
	if (j->sub) {
		if (k->detach_loop)
			k->detach_loop(j->obj, j->d->loop);
		st_tapsub__summary(j->sub, &j->ts);
		st_tapmux__leave(j->sub);
	}
	if (j->began)
		k->finish(j->obj, err, j->sub != NULL, &j->ts, j->def->what);
	j->began = false;
	j->sub = NULL;
	job_free(k, j->obj);
	j->obj = NULL;
	if (j->idef != j->def)
		def_free(j->idef);
	j->idef = NULL;
	st_log_set_context(NULL);
}

static void job_retry_later(struct job *j, uint64_t now)
{
	if (j->started_ns && now - j->started_ns >= RETRY_RESET_NS)
		j->backoff_ms = 0;
	j->backoff_ms = j->backoff_ms ? j->backoff_ms * 2 : RETRY_MIN_MS;
	if (j->backoff_ms > RETRY_MAX_MS)
		j->backoff_ms = RETRY_MAX_MS;
	j->state = JOB_RETRYING;
	j->retry_ns = now + (uint64_t)j->backoff_ms * 1000000;
	j->failures++;
	if (strncmp(j->last_error, j->why, strlen(j->why)))
		snprintf(j->last_error, sizeof(j->last_error), "%s", j->why);
	j->last_error_real = st_loop_realtime_ns();
	pr_warn("job %s: %s; starting it again in %u s", j->def->cfg.s->name, j->why,
		(j->backoff_ms + 999) / 1000);
}

/* Starts an instance of j's section. 0, or -1 with j->why set (the lines said more). */
static int job_start(struct job *j)
{
	const struct st_job_kind *k = j->def->k;
	struct st_tapsub_spec spec = { .seg = job_seg, .ctx = j };
	uint64_t now = st_loop_mono_ns();

	char first_err[400];

	j->failed = false;
	memset(&j->ts, 0, sizeof(j->ts));
	j->idef = j->def;
	/* why it fails, for ctl status: its hooks say it in a line of their own */
	st_log_capture_begin(first_err, sizeof(first_err));
	j->obj = job_new(j->def);
	if (!j->obj) {
		snprintf(j->why, sizeof(j->why), "its section is invalid");
		goto fail;
	}
	st_log_set_context(j->def->label);
	if (k->start(j->obj)) {
		snprintf(j->why, sizeof(j->why), "its outputs could not be opened");
		goto fail;
	}
	j->began = true;
	spec.t = k->target(j->obj);
	spec.batch = k->batch ? job_batch : NULL;
	spec.verbose = st_log_get_level() >= ST_LOG_INFO;
	if (k->tap_opts)
		k->tap_opts(j->obj, &spec.opts);
	j->sub = st_tapmux__join(j->d->mux, &spec);
	if (!j->sub) {
		snprintf(j->why, sizeof(j->why), "could not attach to %s %s (%s)",
			 spec.t->iface ? "interface" : "cgroup",
			 spec.t->iface ? spec.t->iface : spec.t->cgroup, strerror(errno));
		goto fail;
	}
	if (k->attached && k->attached(j->obj, j->d->loop, j->sub)) {
		snprintf(j->why, sizeof(j->why), "could not start after attaching");
		goto fail;
	}
	st_log_capture_end();
	j->state = JOB_RUNNING;
	j->started_ns = now;
	{
		char line[2048];

		pr_info("%s running: %s (%u job(s) share its tap)", k->name,
			st_job_line(k, j->obj, line, sizeof(line)), st_tapsub__jobs(j->sub));
	}
	/* what is wrong with its target, said in its own name; the idle watch; --stats */
	st_job_check_target(k, j->obj);
	st_log_set_context(NULL);
	st_job_idle_start(&j->idle, now);
	st_progress_init(&j->prog, k->run_opts(j->obj)->stats_s, false, k->name, now);
	j->prog.label = j->def->stats;
	return 0;
fail:
	st_log_capture_end();
	st_log_set_context(NULL);
	job_stop(j, -1);
	snprintf(j->last_error, sizeof(j->last_error), "%.100s%s%.400s", j->why,
		 first_err[0] ? ": " : "", first_err);
	job_retry_later(j, now);
	return -1;
}

static struct job *job_add(struct daemon *d, struct jobdef *def)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->d = d;
	j->def = def;
	st_list_add_tail(&j->node, &d->jobs);
	d->n_jobs++;
	job_start(j);
	return j;
}

static void job_remove(struct job *j)
{
	job_stop(j, 0);
	st_list_del_init(&j->node);
	j->d->n_jobs--;
	def_free(j->def);
	free(j);
}

/* ---- metrics, health, control ------------------------------------------------------- */

static void job_line(struct job *j, struct st_statline *l)
{
	st_statline_init(l);
	st_statline_add(l, "job_up", j->state == JOB_RUNNING, ST_STAT_GAUGE,
			"1 while the job runs, 0 while it waits to start again after a failure");
	st_statline_add(l, "job_restarts", j->restarts, ST_STAT_COUNTER,
			"times the job was started again (after a failure or a changed section)");
	st_statline_add(l, "job_failures", j->failures, ST_STAT_COUNTER,
			"times the job failed (it is retried with backoff, up to 60 s)");
	if (j->sub)
		st_tapsub__summary(j->sub, &j->ts);
	if (j->obj && j->def->k->stats)
		j->def->k->stats(j->obj, l, &j->ts);
	if (j->sub) {
		uint64_t delivered, filtered;

		st_tapsub__counts(j->sub, &delivered, &filtered);
		st_statline_add(l, "tap_jobs", st_tapsub__jobs(j->sub), ST_STAT_GAUGE,
				"jobs sharing this job's tap (one load, one ring)");
		st_statline_add(l, "tap_segments", delivered, ST_STAT_COUNTER,
				"segments the shared ring handed to this job");
		st_statline_add(l, "tap_filtered", filtered, ST_STAT_COUNTER,
				"segments of the shared ring this job's own filters left out");
	}
}

static int write_metrics(void *ctx, FILE *f)
{
	struct daemon *d = ctx;
	struct st_statline *lines = calloc(d->n_jobs + 1, sizeof(*lines));
	const struct st_statline *ls[MAX_JOBS + 1];
	const char *jobs[MAX_JOBS + 1], *cmds[MAX_JOBS + 1];
	struct job *j;
	size_t n = 0;
	int err;

	if (!lines)
		return -ENOMEM;
	st_list_for_each_entry(j, &d->jobs, node) {
		job_line(j, &lines[n]);
		ls[n] = &lines[n];
		jobs[n] = j->def->cfg.s->name;
		cmds[n] = j->def->k->name;
		n++;
	}
	err = st_statline_prometheus_jobs(ls, jobs, cmds, n, f);
	if (!err) {
		/* the labelled families (watch's series, tap compare's), each family once */
		struct st_prom *p = st_prom__new();

		err = p ? 0 : -ENOMEM;
		st_list_for_each_entry(j, &d->jobs, node) {
			struct st_prom_labels base = { 0 };

			if (!p || !j->obj || !j->def->k->series)
				continue;
			st_prom_labels_add(&base, "job", j->def->cfg.s->name);
			st_prom_labels_add(&base, "command", j->def->k->name);
			j->def->k->series(j->obj, p, &base);
		}
		if (p)
			err = st_prom__write(p, f);
		st_prom__free(p);
	}
	if (!err) {
		fprintf(f, "# HELP shadowtap_daemon_reloads_total configuration reloads applied\n"
			   "# TYPE shadowtap_daemon_reloads_total counter\n"
			   "shadowtap_daemon_reloads_total %" PRIu64 "\n"
			   "# HELP shadowtap_daemon_reload_failures_total reloads rejected (an "
			   "invalid file: the running set stayed)\n"
			   "# TYPE shadowtap_daemon_reload_failures_total counter\n"
			   "shadowtap_daemon_reload_failures_total %" PRIu64 "\n"
			   "# HELP shadowtap_daemon_jobs jobs configured\n"
			   "# TYPE shadowtap_daemon_jobs gauge\n"
			   "shadowtap_daemon_jobs %zu\n"
			   "# HELP shadowtap_build_info the running build (always 1)\n"
			   "# TYPE shadowtap_build_info gauge\n"
			   "shadowtap_build_info{version=\"%s\"} 1\n"
			   "# HELP shadowtap_daemon_uptime_seconds time since the daemon started\n"
			   "# TYPE shadowtap_daemon_uptime_seconds gauge\n"
			   "shadowtap_daemon_uptime_seconds %.3f\n",
			d->reloads, d->reload_failures, d->n_jobs, ST_VERSION,
			(double)(st_loop_mono_ns() - d->started_ns) / 1e9);
		err = ferror(f) ? -EIO : 0;
	}
	free(lines);
	return err;
}

static const char *health(void *ctx)
{
	struct daemon *d = ctx;
	struct job *j;

	st_list_for_each_entry(j, &d->jobs, node)
		if (j->state != JOB_RUNNING)
			return "a job is not running (shadowtap ctl status)";
	return NULL;
}

/* A duration as "3d04h", "1h02m", "12m03s", "7s". */
static const char *dur_str(uint64_t ns, char *buf, size_t len)
{
	uint64_t t = ns / 1000000000ull;

	if (t >= 86400)
		snprintf(buf, len, "%llud%02lluh", (unsigned long long)(t / 86400),
			 (unsigned long long)(t / 3600 % 24));
	else if (t >= 3600)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(t / 3600),
			 (unsigned long long)(t / 60 % 60));
	else if (t >= 60)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(t / 60),
			 (unsigned long long)(t % 60));
	else
		snprintf(buf, len, "%llus", (unsigned long long)t);
	return buf;
}

/* ctl status: the daemon, then per job one line (its target, state, uptime, main counters)
 * and what it does in words: its input, targets and outputs (the file written now, its
 * size), and its last error. */
static void status(struct daemon *d, FILE *f)
{
	uint64_t now = st_loop_mono_ns();
	struct job *j;
	char up[32];

	fprintf(f, "daemon: up %s, %zu job(s) from %s; metrics %s%s%s; reloads %" PRIu64
		   " (%" PRIu64 " rejected); shadowtap %s\n",
		dur_str(now - d->started_ns, up, sizeof(up)), d->n_jobs, d->path,
		d->metrics_addr ? "http://" : "off", d->metrics_addr ? d->metrics_addr : "",
		d->metrics_addr ? "/metrics" : "", d->reloads, d->reload_failures, ST_VERSION);
	fprintf(f, "%-20s %-8s %-28s %-9s %-7s %s\n", "JOB", "COMMAND", "TARGET", "STATE", "UPTIME",
		"COUNTERS");
	st_list_for_each_entry(j, &d->jobs, node) {
		const struct st_job_kind *k = j->def->k;
		struct st_target t = { 0 };
		struct st_statline l;
		char target[64], counters[256], line[2048];
		void *obj = j->obj;
		size_t len = 0;

		/* the target as configured (a retrying job has no instance to ask) */
		if (!obj)
			obj = job_new(j->def);
		if (obj) {
			t = *k->target(obj);
			st_job_line(k, obj, line, sizeof(line));
		} else {
			snprintf(line, sizeof(line), "(its section is invalid)");
		}
		snprintf(target, sizeof(target), "%s%s", t.iface ? "iface " : t.cgroup ? "cgroup " : "",
			 t.iface ? t.iface : t.cgroup ? t.cgroup : "?");
		if (obj != j->obj)
			job_free(k, obj);
		job_line(j, &l);
		counters[0] = 0;
		/* the main ones: the command's first figures (packets, bytes; requests ...) */
		for (size_t i = 3; i < l.n && i < 7; i++)
			len += (size_t)snprintf(counters + len, len < sizeof(counters) ?
						sizeof(counters) - len : 0, "%s%s=%" PRIu64,
						len ? " " : "", l.e[i].name, l.e[i].v);
		fprintf(f, "%-20s %-8s %-28s %-9s %-7s %s", j->def->cfg.s->name, k->name, target,
			state_names[j->state],
			j->state == JOB_RUNNING ? dur_str(now - j->started_ns, up, sizeof(up)) : "-",
			counters);
		if (j->state == JOB_RETRYING)
			fprintf(f, " (%s; next try in %" PRIu64 " ms)", j->why,
				j->retry_ns > now ? (j->retry_ns - now) / 1000000 : 0);
		fprintf(f, "\n    %s\n", line);
		if (j->last_error[0]) {
			time_t at = (time_t)(j->last_error_real / 1000000000ull);
			char when[40];
			struct tm tm;

			gmtime_r(&at, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			fprintf(f, "    last error %s: %s\n", when, j->last_error);
		}
	}
}

static int reload(struct daemon *d, FILE *answer);

static int on_ctl(void *ctx, const char *cmd, const char *args, FILE *f)
{
	struct daemon *d = ctx;

	if (!strcmp(cmd, "status")) {
		status(d, f);
		return 0;
	}
	if (!strcmp(cmd, "reload")) {
		reload(d, f);
		return 0;
	}
	return -1;
}

static int on_httpd(void *ctx)
{
	st_httpd__run(ctx);
	return 0;
}

static int on_ctl_fd(void *ctx)
{
	st_ctl__run(ctx);
	return 0;
}

/* The [daemon] section's servers: (re)started when their address changed. 0 or -1. */
static int servers(struct daemon *d, const struct daemon_opts *o)
{
	const char *ctl = o->control ? o->control : ST_CTL_SOCKET_DEFAULT;
	char err[256];

	if (!d->control_path || strcmp(d->control_path, ctl)) {
		struct st_ctl *c = st_ctl__listen(ctl, on_ctl, d, err, sizeof(err));

		if (!c) {
			pr_err("control socket %s: %s", ctl, err);
			return -1;
		}
		if (st_loop__add(d->loop, st_ctl__fd(c), on_ctl_fd, c)) {
			pr_err("control socket %s: event loop full", ctl);
			st_ctl__close(c);
			return -1;
		}
		if (d->ctl) {
			st_loop__del(d->loop, st_ctl__fd(d->ctl));
			st_ctl__close(d->ctl);
		}
		d->ctl = c;
		free(d->control_path);
		d->control_path = strdup(ctl);
	}
	if (!o->metrics && d->httpd) {
		st_loop__del(d->loop, st_httpd__fd(d->httpd));
		st_httpd__stop(d->httpd);
		d->httpd = NULL;
		free(d->metrics_addr);
		d->metrics_addr = NULL;
	}
	if (o->metrics && (!d->metrics_addr || strcmp(d->metrics_addr, o->metrics))) {
		const struct st_httpd_ops ops = { .metrics = write_metrics, .health = health, .ctx = d };
		struct st_httpd *h = st_httpd__start(o->metrics, &ops, err, sizeof(err));

		if (!h) {
			pr_err("metrics %s: %s", o->metrics, err);
			return -1;
		}
		if (st_loop__add(d->loop, st_httpd__fd(h), on_httpd, h)) {
			pr_err("metrics %s: event loop full", o->metrics);
			st_httpd__stop(h);
			return -1;
		}
		if (d->httpd) {
			st_loop__del(d->loop, st_httpd__fd(d->httpd));
			st_httpd__stop(d->httpd);
		}
		d->httpd = h;
		free(d->metrics_addr);
		d->metrics_addr = strdup(o->metrics);
		pr_info("metrics on http://%s/metrics (port %u)", o->metrics, st_httpd__port(h));
	}
	return 0;
}

static int apply_state_dir(const struct daemon_opts *o)
{
	if (!o->state_dir)
		return 0;
	if (mkdir(o->state_dir, 0750) && errno != EEXIST) {
		pr_err("state-dir %s: %s", o->state_dir, strerror(errno));
		return -1;
	}
	if (chdir(o->state_dir)) {
		pr_err("state-dir %s: %s", o->state_dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- reload ---------------------------------------------------------------------------- */

/* The keys a running job can take in place (its filters); the rest restarts it. */
static bool filter_key(const char *k)
{
	return !strcmp(k, "port") || !strcmp(k, "host") || !strcmp(k, "sample");
}

/* a and b are equal but for their filter keys. */
static bool equal_but_filters(const struct st_config_section *a, const struct st_config_section *b)
{
	size_t i = 0, k = 0;

	for (;;) {
		while (i < a->n && filter_key(a->e[i].key))
			i++;
		while (k < b->n && filter_key(b->e[k].key))
			k++;
		if (i == a->n || k == b->n)
			return i == a->n && k == b->n;
		if (strcmp(a->e[i].key, b->e[k].key) || strcmp(a->e[i].value, b->e[k].value))
			return false;
		i++;
		k++;
	}
}

/* A changed section whose only changes are filters: the running instance takes them (the
 * kernel's maps updated, no restart). true when done. */
static bool retarget(struct job *j, struct jobdef *nd)
{
	const struct st_job_kind *k = j->def->k;
	struct st_tap_opts o = { 0 };
	void *nobj;
	int err;

	if (!j->obj || !j->sub || !k->retarget || !equal_but_filters(j->def->cfg.s, nd->cfg.s))
		return false;
	nobj = job_new(nd);
	if (!nobj)
		return false;
	if (k->tap_opts)
		k->tap_opts(nobj, &o);
	/* the job's own filters, then the kernel's union of every job's (when that fails the
	 * job restarts with the new section: its edited filters go with the old instance) */
	err = k->retarget(j->obj, nobj) ? st_tapsub__update(j->sub, &o) : -EOPNOTSUPP;
	job_free(k, nobj);
	return !err;
}

/* Rereads the file. An invalid one changes nothing. 0, or -1 (rejected). */
static int reload(struct daemon *d, FILE *answer)
{
	unsigned added = 0, removed = 0, restarted = 0, updated = 0, same = 0;
	struct plan np;
	struct job *j, *tmp;
	bool used[MAX_JOBS] = { false };

	char why[512];
	int bad;

	notify_reloading();
	pr_info("reload: reading %s", d->path);
	/* the file's first error is the answer's reason too (the log has it as well) */
	st_log_capture_begin(why, sizeof(why));
	bad = plan_load(&np, d->path);
	st_log_capture_end();
	if (bad) {
		d->reload_failures++;
		pr_err("reload: %s rejected; the %zu running job(s) stay as they were", d->path,
		       d->n_jobs);
		if (answer)
			fprintf(answer, "error: %s rejected: %s; the %zu running job(s) stay as they "
					"were\n", d->path, why[0] ? why : "(no reason given)", d->n_jobs);
		notify("READY=1");
		return -1;
	}
	st_log_set_level((enum st_log_level)np.opts.log_level);
	if (!d->plan.opts.state_dir != !np.opts.state_dir ||
	    (np.opts.state_dir && strcmp(np.opts.state_dir, d->plan.opts.state_dir)))
		pr_warn("reload: state-dir applies at start; the daemon stays in %s",
			d->plan.opts.state_dir ? d->plan.opts.state_dir : "its first directory");
	if (servers(d, &np.opts))
		pr_warn("reload: the [daemon] section's servers stay as they were");
	st_list_for_each_entry_safe(j, tmp, &d->jobs, node) {
		const struct st_config_section *os = j->def->cfg.s, *ns = NULL;
		size_t i;

		for (i = 0; i < np.n; i++) {
			if (used[i])
				continue; /* its definition may be a job's already (NULL here) */
			ns = np.defs[i]->cfg.s;
			if (!strcmp(ns->command, os->command) && !strcmp(ns->name, os->name))
				break;
		}
		if (i == np.n) {
			pr_info("reload: job %s removed", os->name);
			job_remove(j);
			removed++;
			continue;
		}
		used[i] = true;
		if (st_config_section_equal(os, ns)) {
			same++; /* untouched: its instance, its tap share, its files */
			continue;
		}
		if (retarget(j, np.defs[i])) {
			pr_info("reload: job %s: filters updated in place", os->name);
			if (j->def != j->idef)
				def_free(j->def); /* the instance's strings are in idef */
			j->def = np.defs[i];
			np.defs[i] = NULL;
			updated++;
			continue;
		}
		pr_info("reload: job %s changed: restarting it", os->name);
		job_stop(j, 0);
		def_free(j->def);
		j->def = np.defs[i];
		np.defs[i] = NULL;
		j->restarts++;
		j->backoff_ms = 0;
		job_start(j);
		restarted++;
	}
	for (size_t i = 0; i < np.n; i++) {
		if (used[i] || !np.defs[i])
			continue;
		pr_info("reload: job %s added", np.defs[i]->cfg.s->name);
		if (!job_add(d, np.defs[i])) {
			pr_err("reload: job %s: out of memory", np.defs[i]->cfg.s->name);
			continue;
		}
		np.defs[i] = NULL;
		added++;
	}
	/* the definitions of unchanged jobs: the running ones keep theirs */
	for (size_t i = 0; i < np.n; i++)
		def_free(np.defs[i]);
	/* the new file's [daemon] options point into it: it replaces the old one */
	plan_free(&d->plan);
	d->plan = np;
	d->plan.n = 0; /* the definitions now belong to the jobs */
	d->reloads++;
	pr_warn("reload: %zu job(s): %u added, %u removed, %u restarted, %u updated in place, %u "
		"unchanged", d->n_jobs, added, removed, restarted, updated, same);
	if (answer)
		fprintf(answer, "ok: %zu job(s): %u added, %u removed, %u restarted, %u updated in "
				"place, %u unchanged\n", d->n_jobs, added, removed, restarted, updated,
			same);
	notify("READY=1");
	return 0;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static int on_tick(void *ctx)
{
	struct daemon *d = ctx;
	uint64_t now = st_loop_mono_ns();
	struct job *j;

	st_tapmux__consume(d->mux); /* per-job failures are marked, never returned */
	st_list_for_each_entry(j, &d->jobs, node) {
		const struct st_job_kind *k = j->def->k;

		if (j->state == JOB_RUNNING && !j->failed && k->tick) {
			char first_err[400];

			st_log_set_context(j->def->label);
			st_log_capture_begin(first_err, sizeof(first_err));
			if (k->tick(j->obj, now) < 0) {
				j->failed = true;
				snprintf(j->why, sizeof(j->why), "its output failed");
				snprintf(j->last_error, sizeof(j->last_error), "its output failed%s%.400s",
					 first_err[0] ? ": " : "", first_err);
			}
			st_log_capture_end();
			st_log_set_context(NULL);
		}
		if (j->state == JOB_RUNNING && !j->failed) {
			st_log_set_context(j->def->label);
			st_job_idle_tick(&j->idle, k, j->obj, j->sub, now);
			if (k->brief && st_progress_due(&j->prog, now)) {
				struct st_brief b;

				st_tapsub__summary(j->sub, &j->ts);
				st_brief_init(&b);
				k->brief(j->obj, &j->ts, &b);
				st_progress_show(&j->prog, &b, now);
			}
			st_log_set_context(NULL);
		}
		if (j->state == JOB_RUNNING && !j->failed && k->duration(j->obj) > 0 &&
		    now - j->started_ns >= (uint64_t)(k->duration(j->obj) * 1e9)) {
			/* --duration in a daemon job: it ends, and is not started again */
			pr_info("job %s: --duration reached: stopped", j->def->cfg.s->name);
			j->failed = true;
			snprintf(j->why, sizeof(j->why), "its --duration ended");
		}
		if (j->state == JOB_RUNNING && j->failed) {
			job_stop(j, -EIO);
			j->restarts++;
			job_retry_later(j, now);
		} else if (j->state == JOB_RETRYING && now >= j->retry_ns) {
			j->restarts++;
			job_start(j);
		}
	}
	if (d->httpd)
		st_httpd__run(d->httpd);
	return 0;
}

static int on_hup(void *ctx, int sig)
{
	reload(ctx, NULL);
	return 0;
}

/* ---- the command ---------------------------------------------------------------------- */

struct daemon_cli {
	const char *config;
	bool check;
	int verbose;
	bool quiet;
};

static const struct st_opt cli_rows[] = {
	ST_OPT_STRING("config", 'c', struct daemon_cli, config, "FILE",
		      "the configuration file (INI; docs/DAEMON.md)"),
	ST_OPT_FLAG("check", 0, struct daemon_cli, check,
		    "check FILE and print the jobs it would run; exit 2 with FILE:LINE: reason\n"
		    "for a bad one"),
	ST_OPT_COUNT("verbose", 'v', struct daemon_cli, verbose,
		     "more messages than log-level says (-vv: libbpf's too)"),
	ST_OPT_FLAG("quiet", 'q', struct daemon_cli, quiet,
		    "no start line (the jobs' warnings and summaries stay)"),
};

static const char usage_head[] =
	"Usage: shadowtap daemon --config FILE [--check] [-v] [-q]\n\n"
	"Runs the jobs of FILE ([capture NAME], [flows NAME], [shadow NAME], [tee NAME]\n"
	"sections; their keys are the commands' long options) in one process. Jobs on the same interface or\n"
	"cgroup share one BPF load and ring. SIGHUP (or shadowtap ctl reload) rereads FILE:\n"
	"unchanged jobs keep running, changed ones restart alone, filters change in place.\n"
	"SIGTERM stops every job (files complete, nothing attached).\n\n";

/* --check: what each job would do, in words (its input, sample, targets and outputs), as
 * its start would say it. */
static void print_plan(const struct plan *p, FILE *f)
{
	fprintf(f, "%s: %zu job(s)\n", p->file.path, p->n);
	for (size_t i = 0; i < p->n; i++) {
		const struct jobdef *d = p->defs[i];
		void *obj = job_new(d);
		const struct st_target *t = obj ? d->k->target(obj) : NULL;
		char line[2048];

		fprintf(f, "  %-8s %-20s", d->k->name, d->cfg.s->name);
		if (t) {
			fprintf(f, " %s %s, port(s)", t->iface ? "iface" : "cgroup",
				t->iface ? t->iface : t->cgroup);
			for (size_t k = 0; k < t->n_ports; k++)
				fprintf(f, "%s%u", k ? "," : " ", t->ports[k]);
		}
		fputc('\n', f);
		if (obj)
			fprintf(f, "      %s\n", st_job_line(d->k, obj, line, sizeof(line)));
		job_free(d->k, obj);
	}
	fprintf(f, "  metrics: %s; control: %s; log-level: %s; state-dir: %s\n",
		p->opts.metrics ? p->opts.metrics : "off",
		p->opts.control ? p->opts.control : ST_CTL_SOCKET_DEFAULT,
		log_levels[p->opts.log_level], p->opts.state_dir ? p->opts.state_dir : "(cwd)");
}

int cmd_daemon(int argc, char **argv)
{
	struct daemon_cli cli = { 0 };
	const struct st_optset set = ST_OPTSET(cli_rows, &cli);
	struct daemon d = { 0 };
	char abspath[PATH_MAX];
	struct job *j, *tmp;
	int rc, first, err;

	rc = st_optset_parse(&set, 1, "daemon", usage_head, argc, argv, &first);
	if (rc)
		return rc < 0 ? ST_EXIT_OK : rc;
	if (first < argc) {
		pr_err("daemon: unexpected argument '%s'", argv[first]);
		return ST_EXIT_USAGE;
	}
	if (!cli.config) {
		pr_err("daemon: --config FILE is required (see shadowtap daemon --help)");
		return ST_EXIT_USAGE;
	}
	if (plan_load(&d.plan, cli.config))
		return ST_EXIT_USAGE;
	if (cli.check) {
		print_plan(&d.plan, stdout);
		plan_free(&d.plan);
		return ST_EXIT_OK;
	}
	if (!realpath(cli.config, abspath)) {
		pr_err("daemon: %s: %s", cli.config, strerror(errno));
		plan_free(&d.plan);
		return ST_EXIT_RUNTIME;
	}
	d.path = abspath;
	st_log_set_level(cli.verbose >= 2 ? ST_LOG_DEBUG :
			 cli.verbose && d.plan.opts.log_level < ST_LOG_INFO ? ST_LOG_INFO :
			 (enum st_log_level)d.plan.opts.log_level);
	st_list_init(&d.jobs);
	d.started_ns = st_loop_mono_ns();
	rc = ST_EXIT_RUNTIME;
	d.loop = st_loop__new();
	d.mux = d.loop ? st_tapmux__new(d.loop) : NULL;
	if (!d.mux) {
		pr_err("daemon: %s", strerror(errno));
		goto out;
	}
	if (apply_state_dir(&d.plan.opts) || servers(&d, &d.plan.opts))
		goto out;
	for (size_t i = 0; i < d.plan.n; i++) {
		if (!job_add(&d, d.plan.defs[i])) {
			pr_err("daemon: out of memory");
			goto out;
		}
		d.plan.defs[i] = NULL;
	}
	d.plan.n = 0;
	err = st_loop__on_signal(d.loop, SIGHUP, on_hup, &d);
	if (!err)
		err = st_loop__set_tick(d.loop, ST_TICK_MS, on_tick, &d);
	if (err) {
		pr_err("daemon: event loop: %s", strerror(-err));
		goto out;
	}
	/* the start line: what runs, where to look, how to stop (the journal has it) */
	if (!cli.quiet)
		st_log_out("daemon running: %zu job(s) from %s; metrics %s%s%s; control %s; "
			   "SIGHUP (or ctl reload) reloads, SIGTERM stops it", d.n_jobs, d.path,
			   d.metrics_addr ? "http://" : "off", d.metrics_addr ? d.metrics_addr : "",
			   d.metrics_addr ? "/metrics" : "", d.control_path);
	notify("READY=1");
	err = st_loop__run(d.loop, 0);
	notify("STOPPING=1");
	rc = err ? ST_EXIT_RUNTIME : ST_EXIT_OK;
out:
	/* every job: its ring share drained into it, detached, its files complete; the shadow
	 * jobs share what is left of STOP_BUDGET_NS for their targets to take their queues */
	{
		uint64_t end = st_loop_mono_ns() + STOP_BUDGET_NS;
		size_t left = d.n_jobs;

		st_list_for_each_entry_safe(j, tmp, &d.jobs, node) {
			uint64_t now = st_loop_mono_ns();

			if (j->obj && j->def->k->limit_drain)
				j->def->k->limit_drain(j->obj, now < end ?
					(double)(end - now) / 1e9 / (double)(left ? left : 1) : 0);
			left--;
			job_remove(j);
		}
	}
	if (d.httpd)
		st_httpd__stop(d.httpd);
	if (d.ctl)
		st_ctl__close(d.ctl);
	free(d.metrics_addr);
	free(d.control_path);
	st_tapmux__free(d.mux);
	st_loop__free(d.loop);
	plan_free(&d.plan);
	return rc;
}

const struct st_job_kind *st_job_kind_find(const char *name)
{
	static const struct st_job_kind *const kinds[] = {
		&st_capture_kind, &st_flows_kind, &st_shadow_kind, &st_tee_kind, &st_watch_kind,
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i]->name, name))
			return kinds[i];
	return NULL;
}
