/* SPDX-License-Identifier: GPL-2.0-only */
/* The runner of a live command: one job, one loop, its own tap share (job.h). */
#include "job.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "opts.h"
#include "sockcheck.h"

struct runner {
	const struct st_job_kind *k;
	void *obj;
	struct st_tapmux *mux;
	struct st_tapsub *sub;
	struct st_progress prog;
	struct st_job_idle idle;
};

/* "80,443" */
static const char *ports_str(const struct st_target *t, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; i < t->n_ports && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%u", i ? "," : "", t->ports[i]);
	return buf;
}

struct st_target *st_job_head_target(void *obj)
{
	return &((struct st_job_head *)obj)->target;
}

struct st_run_opts *st_job_head_run_opts(void *obj)
{
	return &((struct st_job_head *)obj)->run;
}

double st_job_head_duration(void *obj)
{
	return ((struct st_job_head *)obj)->duration;
}

void st_job_head_retarget(struct st_job_head *h, const struct st_job_head *n)
{
	memcpy(h->target.ports, n->target.ports, sizeof(h->target.ports));
	h->target.n_ports = n->target.n_ports;
	memcpy(h->target.hosts, n->target.hosts, sizeof(h->target.hosts));
	h->target.n_hosts = n->target.n_hosts;
}

const char *st_job_line(const struct st_job_kind *k, void *obj, char *buf, size_t len)
{
	const struct st_target *t = k->target(obj);
	struct st_job_desc d = { 0 };
	struct st_tap_opts to = { 0 };
	char cidr[64], ports[ST_MAX_PORTS_CLI * 6 + 1];
	size_t o = 0;

#define ADD(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	if (len)
		buf[0] = 0;
	if (k->describe)
		k->describe(obj, &d);
	if (k->tap_opts)
		k->tap_opts(obj, &to);
	if (t) {
		ADD("%s %s%s, port%s %s", t->iface ? "interface" : "cgroup",
		    t->iface ? t->iface : t->cgroup ? t->cgroup : "?",
		    t->tls ? " (TLS plaintext)" : "", t->n_ports > 1 ? "s" : "",
		    ports_str(t, ports, sizeof(ports)));
		for (size_t i = 0; i < t->n_hosts; i++)
			ADD("%s%s/%u", i ? "," : ", peers ",
			    st_addr_str(&t->hosts[i].addr, cidr, sizeof(cidr)), t->hosts[i].prefix);
	}
	if (d.sample[0])
		ADD(", %s", d.sample);
	else if (to.sample_permyriad && to.sample_permyriad < 10000)
		ADD(", %g%% of connections", to.sample_permyriad / 100.0);
	else
		ADD(", every connection");
	if (d.targets[0])
		ADD(" -> %s", d.targets);
	if (d.outputs[0])
		ADD("%s%s", d.targets[0] ? "; " : " -> ", d.outputs);
#undef ADD
	if (o >= len && len)
		buf[len - 1] = 0;
	return buf;
}

void st_job_check_target(const struct st_job_kind *k, void *obj)
{
	const struct st_target *t = k->target(obj);

	if (t)
		st_sockcheck_target(t, k->name);
}

void st_job_idle_start(struct st_job_idle *w, uint64_t now_ns)
{
	w->since_ns = now_ns;
	w->done = false;
}

void st_job_idle_tick(struct st_job_idle *w, const struct st_job_kind *k, void *obj,
		      const struct st_tapsub *sub, uint64_t now_ns)
{
	const struct st_target *t;
	struct st_tap_summary ts;
	uint64_t delivered, filtered;
	char ports[ST_MAX_PORTS_CLI * 6 + 1];
	double after;

	if (w->done || !sub)
		return;
	t = k->target(obj);
	after = t ? st_target_warn_idle(t) : 0;
	if (after <= 0) {
		w->done = true;
		return;
	}
	st_tapsub__counts(sub, &delivered, &filtered);
	if (delivered) { /* (filtered: another job's ports, in the daemon) */
		w->done = true; /* packets come: nothing to say, ever */
		return;
	}
	if (now_ns - w->since_ns < (uint64_t)(after * 1e9))
		return;
	w->done = true;
	/* a connection the sample left out is a packet all the same */
	st_tapsub__summary(sub, &ts);
	if (ts.sampled_out || ts.lost_segs)
		return;
	pr_warn("%s: no packet of port%s %s on %s %s in %.0f s (is the service receiving "
		"traffic there? ss -tn shows its connections; --warn-idle 0 silences this)",
		k->name, t->n_ports > 1 ? "s" : "", ports_str(t, ports, sizeof(ports)),
		t->iface ? "interface" : "cgroup",
		t->iface ? t->iface : t->cgroup, after);
}

static int run_seg(void *ctx, const struct st_segment *seg)
{
	struct runner *r = ctx;

	return r->k->segment(r->obj, seg);
}

static int run_batch(void *ctx)
{
	struct runner *r = ctx;

	return r->k->batch(r->obj);
}

static int run_tick(void *ctx)
{
	struct runner *r = ctx;
	int err = st_tapmux__consume(r->mux);
	uint64_t now = st_loop_mono_ns();

	if (err)
		return err;
	st_job_idle_tick(&r->idle, r->k, r->obj, r->sub, now);
	if (r->k->brief && st_progress_due(&r->prog, now)) {
		struct st_tap_summary ts;
		struct st_brief b;

		st_tapsub__summary(r->sub, &ts);
		st_brief_init(&b);
		r->k->brief(r->obj, &ts, &b);
		st_progress_show(&r->prog, &b, now);
	}
	return r->k->tick ? r->k->tick(r->obj, now) : 0;
}

static int run_hup(void *ctx, int sig)
{
	struct runner *r = ctx;
	int err = st_tapmux__consume(r->mux);

	/* what the kernel captured so far belongs to the outputs being reopened */
	return err ? err : r->k->hup(r->obj);
}

int st_job_command(const struct st_job_kind *k, int argc, char **argv)
{
	struct st_optset sets[ST_JOB_MAX_OPTSETS];
	struct st_tap_summary ts = { 0 };
	struct runner r = { .k = k };
	struct st_tapsub *sub = NULL;
	struct st_loop *loop = NULL;
	struct st_run_opts *ro;
	struct st_target *t;
	bool ran = false;
	int rc, first, err = -1;
	size_t n;

	r.obj = calloc(1, k->size);
	if (!r.obj) {
		pr_err("%s: out of memory", k->name);
		return ST_EXIT_RUNTIME;
	}
	if (k->init)
		k->init(r.obj);
	n = k->optsets(r.obj, sets);
	rc = st_optset_parse(sets, n, k->name, k->usage_head, argc, argv, &first);
	if (!rc)
		rc = k->check(r.obj, argc, argv, first);
	if (rc) {
		rc = rc < 0 ? ST_EXIT_OK : rc;
		goto out;
	}
	ro = k->run_opts(r.obj);
	st_log_set_verbose(ro->verbose);
	t = k->target(r.obj);
	if (!t) {
		rc = k->offline(r.obj);
		goto out;
	}
	rc = ST_EXIT_RUNTIME;
	if (k->start(r.obj))
		goto out;
	loop = st_loop__new();
	r.mux = loop ? st_tapmux__new(loop) : NULL;
	if (!r.mux) {
		pr_err("%s: %s", k->name, strerror(errno));
		goto finish;
	}
	{
		struct st_tapsub_spec spec = {
			.t = t, .seg = run_seg, .batch = k->batch ? run_batch : NULL, .ctx = &r,
			.verbose = ro->verbose > 0,
		};

		if (k->tap_opts)
			k->tap_opts(r.obj, &spec.opts);
		sub = st_tapmux__join(r.mux, &spec);
	}
	if (!sub)
		goto finish;
	/* what waited for the attach failed (it said why): nothing ran, no summary */
	if (k->attached && k->attached(r.obj, loop, sub))
		goto finish;
	ran = true;
	r.sub = sub;
	/* running: said once (scripts wait for this line), then what is wrong with the target */
	if (!ro->quiet) {
		char line[2048];
		double d = k->duration(r.obj);

		st_job_line(k, r.obj, line, sizeof(line));
		if (d > 0)
			st_log_out("%s running: %s; stops after %g s, or Ctrl-C or SIGTERM", k->name,
				   line, d);
		else
			st_log_out("%s running: %s; Ctrl-C or SIGTERM stops it", k->name, line);
	}
	st_job_check_target(k, r.obj);
	st_job_idle_start(&r.idle, st_loop_mono_ns());
	st_progress_init(&r.prog, ro->stats_s, !ro->quiet && isatty(STDERR_FILENO), k->name,
			 st_loop_mono_ns());
	err = 0;
	if (k->hup)
		err = st_loop__on_signal(loop, SIGHUP, run_hup, &r);
	if (!err)
		err = st_loop__set_tick(loop, k->tick_ms, run_tick, &r);
	if (err) {
		pr_err("%s: event loop: %s", k->name, strerror(-err));
		goto finish;
	}
	err = st_loop__run(loop, k->duration(r.obj));
	st_progress_end(&r.prog);
	/* what is in flight in the ring still counts; then detach */
	if (st_tapmux__consume(r.mux) < 0 && !err)
		err = -EIO;
	st_tapsub__summary(sub, &ts);
finish:
	if (sub && k->detach_loop)
		k->detach_loop(r.obj, loop);
	st_tapmux__leave(sub);
	rc = k->finish(r.obj, err, ran, &ts, "summary");
	st_tapmux__free(r.mux);
	st_loop__free(loop);
out:
	k->destroy(r.obj);
	free(r.obj);
	return rc;
}
