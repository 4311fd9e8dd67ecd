/* SPDX-License-Identifier: GPL-2.0-only */
/* A load test's options (load_opts.h). */
#include "load_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LO(o) ((struct st_load_opts *)(o))

static int opt_steps(void *o, const char *val, char *err, size_t errlen)
{
	struct st_load_opts *l = o;
	const char *p = val;

	l->nsteps = 0;
	while (*p) {
		char *end;
		double v;

		errno = 0;
		v = strtod(p, &end);
		if (errno || end == p || !(v > 0 && v <= 1e9) || (*end && *end != ',') ||
		    l->nsteps >= ST_LOAD_STEPS_MAX) {
			snprintf(err, errlen, "'%s' is not a list of rates 'RPS,RPS,...' (each above 0, "
				 "at most %d)", val, ST_LOAD_STEPS_MAX);
			return -1;
		}
		l->steps[l->nsteps++] = v;
		p = *end ? end + 1 : end;
	}
	if (!l->nsteps) {
		snprintf(err, errlen, "'%s' is not a list of rates 'RPS,RPS,...'", val);
		return -1;
	}
	l->on = true;
	return 0;
}

static int opt_rate(void *o, const char *val, char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(val, &end);
	if (errno || end == val || *end || !(v >= 0.001 && v <= 1e9)) {
		snprintf(err, errlen, "'%s' is not a rate in requests/s from 0.001 to 1e9", val);
		return -1;
	}
	LO(o)->rate = v;
	LO(o)->on = true;
	return 0;
}

static int opt_pace(void *o, const char *val, char *err, size_t errlen)
{
	if (strcmp(val, "recorded") && strcmp(val, "constant")) {
		snprintf(err, errlen, "'%s' is not recorded or constant", val);
		return -1;
	}
	LO(o)->pace = strcmp(val, "constant") ? ST_LOAD_PACE_RECORDED : ST_LOAD_PACE_CONSTANT;
	LO(o)->pace_set = true;
	return 0;
}

/* The rows: replay and receive alike (docs/LOAD.md). */
const struct st_opt st_load_opts[] = {
	ST_OPT_FUNC("rate", 0, "RPS", 0, opt_rate,
		    "a load test at RPS requests/s: each request due at its time\n"
		    "(an open model), the recording looped to --duration"),
	ST_OPT_FUNC("steps", 0, "'RPS,RPS,...'", 0, opt_steps,
		    "a load test in steps of --step-sec each (the knee)"),
	ST_OPT_SECONDS("step-sec", 0, struct st_load_opts, step_s, 0.1, 1e6,
		       "each step's length (default 10)"),
	ST_OPT_SECONDS("duration", 0, struct st_load_opts, duration_s, 0.001, 1e9,
		       "the load test's length (default: one pass of the recording)"),
	ST_OPT_SECONDS("ramp", 0, struct st_load_opts, ramp_s, 0.001, 1e9,
		       "from 0 up to --rate over SEC"),
	ST_OPT_UINT("connections", 0, struct st_load_opts, connections, "N", 1, 1000000, 0,
		    "at most N connections to the target at once (a recorded\n"
		    "connection waits for a free one; its latency counts)"),
	ST_OPT_FUNC("pace", 0, "recorded|constant", 0, opt_pace,
		    "the recording's own inter-arrival times scaled to the rate\n"
		    "(default for replay), or a constant rate"),
	ST_OPT_SECONDS("timeout", 0, struct st_load_opts, timeout_s, 0.001, 86400,
		       "a request unanswered SEC after it went out fails (default 10)"),
};

const size_t st_load_opts_n = sizeof(st_load_opts) / sizeof(st_load_opts[0]);

/* NAME.html -> NAME.compare.html (ext: ".html" or ".json"). */
static void next_to(char *out, size_t cap, const char *path, const char *ext)
{
	size_t n = strlen(path), e = strlen(ext);

	if (n > e && !strcmp(path + n - e, ext))
		n -= e;
	snprintf(out, cap, "%.*s.compare%s", (int)n, path, ext);
}

int st_load_opts_check(struct st_load_opts *o, struct st_cmp_opts *cmp, bool input_paced,
		       char *err, size_t errlen)
{
	const char *alone = o->nsteps || o->rate > 0 ? NULL :
			    o->step_s > 0 ? "--step-sec" : o->duration_s > 0 ? "--duration" :
			    o->ramp_s > 0 ? "--ramp" : o->connections ? "--connections" :
			    o->pace_set ? "--pace" : o->timeout_s > 0 ? "--timeout" : NULL;

	if (!o->on) {
		if (alone) {
			snprintf(err, errlen, "%s is a load test's: give --rate RPS or --steps "
				 "'RPS,...'", alone);
			return -1;
		}
		return 0;
	}
	if (o->rate > 0 && o->nsteps) {
		snprintf(err, errlen, "give --rate or --steps, not both");
		return -1;
	}
	if (o->nsteps && (o->ramp_s > 0 || o->duration_s > 0)) {
		snprintf(err, errlen, "--steps last as many --step-sec as there are steps: no %s",
			 o->ramp_s > 0 ? "--ramp" : "--duration");
		return -1;
	}
	if (!o->nsteps && o->step_s > 0) {
		snprintf(err, errlen, "--step-sec is the length of --steps' steps");
		return -1;
	}
	if (o->ramp_s > 0 && o->duration_s > 0 && o->ramp_s > o->duration_s) {
		snprintf(err, errlen, "--ramp %g is longer than --duration %g", o->ramp_s,
			 o->duration_s);
		return -1;
	}
	if (input_paced && o->pace_set && o->pace == ST_LOAD_PACE_RECORDED) {
		snprintf(err, errlen, "--pace recorded scales a recording's rate, which a stream does "
			 "not say ahead: receive paces a load test constant");
		return -1;
	}
	if (input_paced)
		o->pace = ST_LOAD_PACE_CONSTANT;
	if (o->nsteps && !(o->step_s > 0))
		o->step_s = ST_LOAD_STEP_SEC_DEFAULT;
	if (!(o->timeout_s > 0))
		o->timeout_s = ST_LOAD_TIMEOUT_DEFAULT;
	/* the reports are the load test's; tap compare's, if it runs too, go next to them */
	o->report = cmp->report;
	o->report_json = cmp->report_json;
	o->report_every_s = cmp->report_every_s;
	cmp->report = cmp->report_json = NULL;
	cmp->report_every_s = 0;
	cmp->load_test = true;
	if (st_cmp_opts_given(cmp)) {
		if (o->report) {
			next_to(o->cmp_report, sizeof(o->cmp_report), o->report, ".html");
			cmp->report = o->cmp_report;
		}
		if (o->report_json) {
			next_to(o->cmp_report_json, sizeof(o->cmp_report_json), o->report_json, ".json");
			cmp->report_json = o->cmp_report_json;
		}
		cmp->report_every_s = o->report_every_s;
	}
	return 0;
}

const char *st_load_opts_describe(const struct st_load_opts *o, char *buf, size_t len)
{
	size_t n = 0;

#define ADD(...) (n += (size_t)snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__))
	if (len)
		buf[0] = 0;
	if (o->nsteps) {
		ADD("in steps of ");
		for (unsigned i = 0; i < o->nsteps; i++)
			ADD("%s%g", i ? "," : "", o->steps[i]);
		ADD(" req/s, %g s each", o->step_s);
	} else {
		ADD("at %g req/s", o->rate);
		if (o->duration_s > 0)
			ADD(" for %g s", o->duration_s);
		if (o->ramp_s > 0)
			ADD(" (ramp %g s)", o->ramp_s);
	}
	ADD(", pace %s", o->pace == ST_LOAD_PACE_CONSTANT ? "constant" : "recorded");
	if (o->connections)
		ADD(", at most %u connections", o->connections);
	if (o->report)
		ADD(", report %s", o->report);
	if (o->report_json)
		ADD(", report %s", o->report_json);
#undef ADD
	if (n >= len && len)
		buf[len - 1] = 0;
	return buf;
}

void st_load_opts_config(const struct st_load_opts *o, const struct st_cmp_opts *cmp,
			 bool input_paced, struct st_load_config *c)
{
	memset(c, 0, sizeof(*c));
	c->rate = o->rate;
	memcpy(c->steps, o->steps, sizeof(c->steps));
	c->nsteps = o->nsteps;
	c->step_s = o->step_s;
	c->duration_s = o->duration_s;
	c->ramp_s = o->ramp_s;
	c->pace = o->pace;
	c->input_paced = input_paced;
	c->connections = o->connections;
	c->timeout_s = o->timeout_s;
	c->patterns = cmp->patterns;
	c->npatterns = cmp->n_patterns;
	c->redact = &cmp->redact;
}
