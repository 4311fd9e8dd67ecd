/* SPDX-License-Identifier: GPL-2.0-only */
/* The runner of a live command: one job, one loop, its own tap share (job.h). */
#include "job.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "opts.h"

struct runner {
	const struct st_job_kind *k;
	void *obj;
	struct st_tapmux *mux;
};

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

	if (err)
		return err;
	return r->k->tick ? r->k->tick(r->obj, st_mono_ns()) : 0;
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
	struct st_target *t;
	bool ran = false;
	int rc, first, v, err = -1;
	size_t n;

	r.obj = calloc(1, k->size);
	if (!r.obj) {
		pr_err("%s: out of memory", k->name);
		return ST_EXIT_RUNTIME;
	}
	if (k->init)
		k->init(r.obj);
	n = k->optsets(r.obj, sets);
	rc = st_opts_parse(sets, n, k->name, k->usage_head, argc, argv, &first);
	if (!rc)
		rc = k->check(r.obj, argc, argv, first);
	if (rc) {
		rc = rc < 0 ? ST_EXIT_OK : rc;
		goto out;
	}
	v = k->verbose(r.obj);
	st_log_set_level(v >= 2 ? ST_LOG_DEBUG : v ? ST_LOG_INFO : ST_LOG_WARN);
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
			.verbose = v > 0,
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
