/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A load test's options (docs/LOAD.md), for the commands that replay into the shadow engine
 * from a recording or a stream (replay, receive --to): one option table bound to a struct
 * st_load_opts, the checks across options, and the load test's configuration. --report and
 * --report-json are tap compare's rows (compare_opts.h); in a load test they are the load
 * test's, and tap compare's reports, when compare is on too, go next to them
 * (NAME.compare.html, NAME.compare.json).
 */
#ifndef ST_LOAD_OPTS_H
#define ST_LOAD_OPTS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "compare_opts.h"
#include "load.h"
#include "optparse.h"

#define ST_LOAD_TIMEOUT_DEFAULT 10.0
#define ST_LOAD_STEP_SEC_DEFAULT 10.0

struct st_load_opts {
	bool on;                      /* --rate or --steps */
	double rate;
	double steps[ST_LOAD_STEPS_MAX];
	unsigned nsteps;
	double step_s;
	double duration_s;
	double ramp_s;
	unsigned connections;
	enum st_load_pace pace;
	bool pace_set;
	double timeout_s;
	/* taken from tap compare's rows in a load test */
	const char *report, *report_json;
	double report_every_s;
	char cmp_report[PATH_MAX], cmp_report_json[PATH_MAX];
};

/* The rows (--rate, --steps, --step-sec, --duration, --ramp, --connections, --pace,
 * --timeout), each writing into a struct st_load_opts. */
extern const struct st_opt st_load_opts[];
extern const size_t st_load_opts_n;

/*
 * After parsing: a load option without --rate or --steps, or options that contradict, are
 * refused (-1 with the reason in err; the caller names its command). In a load test
 * --report, --report-json and --report-interval are taken from cmp, and compare's own
 * reports, if compare is on, are named next to them. input_paced: receive (no --pace
 * recorded, no --duration needed). 0 when not a load test, 0 after the checks otherwise.
 */
int st_load_opts_check(struct st_load_opts *o, struct st_cmp_opts *cmp, bool input_paced,
		       char *err, size_t errlen);
/* What the options ask, for a start line: "at 500 req/s for 60 s (ramp 10 s), at most 32
 * connections, report FILE" or "in steps of 100,200,400 req/s, 10 s each". Returns buf. */
const char *st_load_opts_describe(const struct st_load_opts *o, char *buf, size_t len);
/* The configuration the options describe (the caller fills the recording and the target). */
void st_load_opts_config(const struct st_load_opts *o, const struct st_cmp_opts *cmp,
			 bool input_paced, struct st_load_config *c);

#endif /* ST_LOAD_OPTS_H */
