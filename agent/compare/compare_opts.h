/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare's options (docs/COMPARE.md), for every command that replays into the shadow
 * engine: shadow, replay, receive (and their daemon jobs). One option table bound to a
 * struct st_cmp_opts, the checks across options, and the compare stage they make.
 */
#ifndef ST_COMPARE_OPTS_H
#define ST_COMPARE_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "compare.h"
#include "optparse.h"
#include "redact.h"
#include "shadow.h"

#define ST_CMP_OPT_MAX 64 /* each repeatable compare option */

struct st_cmp_opts {
	bool on;                     /* --compare, or any compare option */
	struct st_shadow_target ref; /* --reference */
	bool have_ref;
	const char *report, *report_json, *diffs;
	mode_t out_mode;             /* the command's --output-mode (set by it; 0: default) */
	struct st_redact_rules redact; /* --redact-*, --no-redact (st_redact_opts: the command
					* binds them): what the outputs hide */
	const char *ign_hdr[ST_CMP_OPT_MAX];
	char ign_hdr_buf[ST_CMP_OPT_MAX][64];
	unsigned n_ign_hdr;
	const char *ign_field[ST_CMP_OPT_MAX];
	char ign_field_buf[ST_CMP_OPT_MAX][ST_CMP_PATH_MAX + 4];
	unsigned n_ign_field;
	bool unordered_all;
	const char *unordered[ST_CMP_OPT_MAX];
	char unordered_buf[ST_CMP_OPT_MAX][ST_CMP_PATH_MAX + 4];
	unsigned n_unordered;
	struct st_cmp_pattern patterns[ST_CMP_PATTERNS_MAX];
	unsigned n_patterns;
	uint64_t max_body;
	uint64_t max_mem;
	double timeout_s;
	double rel_pct, abs_pct;
	bool rel_set, abs_set;
	double lat_min_ms;
	double report_every_s;
	unsigned max_endpoints;
	uint64_t diffs_max;
	const char *proto_descriptor; /* --proto-descriptor FILE (checked by st_cmp_opts_check) */
	bool flag_compare;
	/* a load test (load_opts.h) groups its figures by --endpoint and writes --report: those
	 * alone do not turn compare on */
	bool load_test;
	bool fail_on_regression, fail_on_slower; /* the exit status follows the verdict */
};

/* The rows (--compare, --reference, --report ...), each writing into a struct st_cmp_opts;
 * the thresholds and limits are a set of their own (ST_OPT_TITLE_COMPARE in --help). */
extern const struct st_opt st_cmp_opts[];
extern const size_t st_cmp_opts_n;
extern const struct st_opt st_cmp_tuning_opts[];
extern const size_t st_cmp_tuning_opts_n;

/* After parsing: true when --compare or any compare option was given (sets o->on). */
bool st_cmp_opts_given(struct st_cmp_opts *o);
/* After parsing: whether compare is on (--compare or any compare option), and, when it is,
 * that cfg's targets suit it (one candidate, whole; no --multiply; HTTP); the reference is
 * added to cfg's targets. 0, or -1 with the reason in err (the caller names its command). */
int st_cmp_opts_check(struct st_cmp_opts *o, struct st_shadow_config *cfg, char *err,
		      size_t errlen);
/* The compare stage the options describe, set as cfg->compare (cfg's first target is the
 * candidate). NULL with errno. */
struct st_compare *st_cmp_opts_start(const struct st_cmp_opts *o, const char *cmd,
				     struct st_shadow_config *cfg);

/* The run is over (st_compare__finish done; c may be NULL: compare off): its verdict on
 * stderr ("verdict: FAIL, 3 regressions in 2 endpoints ... -> report.html") and the exit
 * status --fail-on-regression/--fail-on-slower ask for (ST_EXIT_VERDICT, or ST_EXIT_OK). */
int st_cmp_opts_end(const struct st_cmp_opts *o, struct st_compare *c);

#endif /* ST_COMPARE_OPTS_H */
