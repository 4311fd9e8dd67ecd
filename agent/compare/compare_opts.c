/* SPDX-License-Identifier: GPL-2.0-only */
/* Tap compare's options, shared by the commands that replay (compare_opts.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare_opts.h"
#include "compare_report.h"
#include "opts.h"
#include "protobuf.h"

static int opt_reference(void *o, const char *val, char *err, size_t errlen)
{
	struct st_cmp_opts *c = o;

	if (st_shadow_parse_target(val, &c->ref, err, errlen))
		return -1;
	if (c->ref.pct) {
		snprintf(err, errlen, "'%s': the reference gets every request the candidate gets (no /PCT)",
			 val);
		return -1;
	}
	c->have_ref = true;
	c->on = true;
	return 0;
}

static int opt_ignore_header(void *o, const char *val, char *err, size_t errlen)
{
	struct st_cmp_opts *c = o;
	size_t n = strlen(val);

	if (c->n_ign_hdr >= ST_CMP_OPT_MAX || !n || n >= sizeof(c->ign_hdr_buf[0]) ||
	    strspn(val, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n) {
		snprintf(err, errlen, "'%s' is not a header field name (at most %d)", val, ST_CMP_OPT_MAX);
		return -1;
	}
	for (size_t i = 0; i <= n; i++)
		c->ign_hdr_buf[c->n_ign_hdr][i] = (char)tolower((unsigned char)val[i]);
	c->ign_hdr[c->n_ign_hdr] = c->ign_hdr_buf[c->n_ign_hdr];
	c->n_ign_hdr++;
	c->on = true;
	return 0;
}

static int cmp_path(const char *val, char *buf, char *err, size_t errlen)
{
	if (st_cmp_path_normalize(val, buf, ST_CMP_PATH_MAX)) {
		snprintf(err, errlen, "'%s' is not a JSON path: $.a.b, $.items[*].id, $[\"odd key\"], "
			 "$..name (any member so named)", val);
		return -1;
	}
	return 0;
}

static int opt_ignore_field(void *o, const char *val, char *err, size_t errlen)
{
	struct st_cmp_opts *c = o;

	if (c->n_ign_field >= ST_CMP_OPT_MAX) {
		snprintf(err, errlen, "at most %d", ST_CMP_OPT_MAX);
		return -1;
	}
	if (cmp_path(val, c->ign_field_buf[c->n_ign_field], err, errlen))
		return -1;
	c->ign_field[c->n_ign_field] = c->ign_field_buf[c->n_ign_field];
	c->n_ign_field++;
	c->on = true;
	return 0;
}

static int opt_unordered(void *o, const char *val, char *err, size_t errlen)
{
	struct st_cmp_opts *c = o;

	c->on = true;
	if (!val) {
		c->unordered_all = true;
		return 0;
	}
	if (c->n_unordered >= ST_CMP_OPT_MAX) {
		snprintf(err, errlen, "at most %d", ST_CMP_OPT_MAX);
		return -1;
	}
	if (cmp_path(val, c->unordered_buf[c->n_unordered], err, errlen))
		return -1;
	if (!strncmp(val, "$..", 3)) {
		snprintf(err, errlen, "'%s': name the array by its path ($.a.b)", val);
		return -1;
	}
	c->unordered[c->n_unordered] = c->unordered_buf[c->n_unordered];
	c->n_unordered++;
	return 0;
}

static int opt_endpoint(void *o, const char *val, char *err, size_t errlen)
{
	struct st_cmp_opts *c = o;

	/* compare is on with it, unless a load test takes it for its own endpoints
	 * (st_cmp_opts_given) */
	return st_cmp_pattern_add(c->patterns, &c->n_patterns, val, err, errlen) ? -1 : 0;
}

/* BYTES with K, M, G suffixes (binary), 1K to 64M. */
static int opt_max_body(void *o, const char *val, char *err, size_t errlen)
{
	struct st_cmp_opts *c = o;
	unsigned long long v;
	char *end;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(val, &end, 10);
	if (!errno && end != val && isdigit((unsigned char)*val)) {
		if (*end == 'K' || *end == 'k')
			shift = 10, end++;
		else if (*end == 'M' || *end == 'm')
			shift = 20, end++;
		else if (*end == 'G' || *end == 'g')
			shift = 30, end++;
		if (shift && end[0] == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
		if (!*end && v <= (64ull << 20) >> shift && (v << shift) >= 1024) {
			c->max_body = v << shift;
			c->on = true;
			return 0;
		}
	}
	snprintf(err, errlen, "'%s' is not a size from 1K to 64M (K, M suffixes: e.g. 256K)", val);
	return -1;
}

static int opt_rel(void *o, const char *val, char *err, size_t errlen)
{
	struct st_cmp_opts *c = o;
	char *end;

	errno = 0;
	c->rel_pct = strtod(val, &end);
	if (errno || end == val || *end || !(c->rel_pct >= 0 && c->rel_pct < 100)) {
		snprintf(err, errlen, "'%s' is not a percentage in 0..100 (default %g)", val,
			 ST_CMP_REL_DEFAULT);
		return -1;
	}
	c->rel_set = true;
	c->on = true;
	return 0;
}

static int opt_abs(void *o, const char *val, char *err, size_t errlen)
{
	struct st_cmp_opts *c = o;
	char *end;

	errno = 0;
	c->abs_pct = strtod(val, &end);
	if (errno || end == val || *end || !(c->abs_pct >= 0 && c->abs_pct < 100)) {
		snprintf(err, errlen, "'%s' is not a percentage in 0..100 (default %g)", val,
			 ST_CMP_ABS_DEFAULT);
		return -1;
	}
	c->abs_set = true;
	c->on = true;
	return 0;
}

/* The rows: shadow, replay and receive alike (docs/COMPARE.md). What most runs use ... */
const struct st_opt st_cmp_opts[] = {
	ST_OPT_FLAG("compare", 0, struct st_cmp_opts, flag_compare,
		    "tap compare: pair each replayed request's answers (production's\n"
		    "from the capture, the candidate's = the first --to) and compare\n"
		    "them (every compare option turns it on too)"),
	ST_OPT_FUNC("reference", 0, "HOST:PORT", 0, opt_reference,
		    "a second shadow running production's build: gets the same\n"
		    "requests; where it differs from production, that is noise"),
	ST_OPT_STRING("report", 0, struct st_cmp_opts, report, "FILE.html",
		      "the report: one self-contained HTML file, rewritten every\n"
		      "--report-interval and at the end"),
	ST_OPT_STRING("report-json", 0, struct st_cmp_opts, report_json, "FILE.json",
		      "the report's content as JSON"),
	ST_OPT_STRING("diffs", 0, struct st_cmp_opts, diffs, "FILE.jsonl",
		      "one JSON line per differing pair (secrets masked)"),
	ST_OPT_FLAG("fail-on-regression", 0, struct st_cmp_opts, fail_on_regression,
		    "exit status 3 when a field regressed (the verdict, said on\n"
		    "stderr at the end): a CI job or a rollout step gates on it"),
	ST_OPT_FLAG("fail-on-slower", 0, struct st_cmp_opts, fail_on_slower,
		    "exit status 3 when an endpoint is slower"),
	ST_OPT_FUNC("ignore-header", 0, "NAME", ST_OPTF_REPEAT, opt_ignore_header,
		    "a header field not compared (repeatable; Date, Server,\n"
		    "Connection, Keep-Alive, Transfer-Encoding, Age, Expires,\n"
		    "Last-Modified, ETag are by default)"),
	ST_OPT_FUNC("ignore-field", 0, "PATH", ST_OPTF_REPEAT, opt_ignore_field,
		    "a JSON field not compared, with what is under it:\n"
		    "$.meta.ts, $.items[*].id, or $..name anywhere (repeatable)"),
	ST_OPT_FUNC("unordered-arrays", 0, "PATH", ST_OPTF_REPEAT | ST_OPTF_OPTVAL, opt_unordered,
		    "compare arrays as multisets: every array, or the one at\n"
		    "PATH (--unordered-arrays=$.tags; repeatable)"),
	ST_OPT_STRING("proto-descriptor", 0, struct st_cmp_opts, proto_descriptor, "FILE",
		      "gRPC messages' fields by name: a FileDescriptorSet (protoc\n"
		      "--include_imports --descriptor_set_out=FILE); without it, by\n"
		      "field number ($.2[*].5)"),
	ST_OPT_FUNC("endpoint", 0, ST_CMP_ENDPOINT_ARG, ST_OPTF_REPEAT, opt_endpoint,
		    ST_CMP_ENDPOINT_HELP),
};

const size_t st_cmp_opts_n = sizeof(st_cmp_opts) / sizeof(st_cmp_opts[0]);

/* ... and its thresholds and limits (ST_OPT_TITLE_COMPARE). */
const struct st_opt st_cmp_tuning_opts[] = {
	ST_OPT_UINT("diffs-max-mb", 0, struct st_cmp_opts, diffs_max, "N", 1, 1 << 20, ST_OPTF_MIB,
		    "--diffs stops growing at N MiB (default 1024; counted)"),
	ST_OPT_FUNC("compare-max-body", 0, "BYTES", 0, opt_max_body,
		    "body bytes compared per answer (default 1M); the rest is\n"
		    "compared by length and hash"),
	ST_OPT_SIZE("compare-max-mem", 0, struct st_cmp_opts, max_mem, "SIZE", ST_MAX_MEM_MIN,
		    ST_MAX_MEM_MAX, "all answers held for comparison (default 256M); past it\n"
		    "pairs are not compared (counted)"),
	ST_OPT_SECONDS("compare-timeout", 0, struct st_cmp_opts, timeout_s, 0.1, 86400,
		      "answers not all in after SEC: not compared (default 30)"),
	ST_OPT_FUNC("noise-relative", 0, "PCT", 0, opt_rel,
		    "a field is a regression when |raw-noise|/(raw+noise) > PCT\n"
		    "(default 20) ..."),
	ST_OPT_FUNC("noise-absolute", 0, "PCT", 0, opt_abs,
		    "... and |raw-noise|/compared > PCT (default 0.03)"),
	ST_OPT_DOUBLE("latency-min-ms", 0, struct st_cmp_opts, lat_min_ms, "MS", 0.001, 1e6,
		      "a latency verdict needs a median shift of MS too\n"
		      "(Hodges-Lehmann; default 1)"),
	ST_OPT_SECONDS("report-interval", 0, struct st_cmp_opts, report_every_s, 0.1, 86400,
		      "rewrite the reports every SEC (default 10)"),
	ST_OPT_UINT("compare-max-endpoints", 0, struct st_cmp_opts, max_endpoints, "N", 1, 100000, 0,
		    "distinct endpoints reported; the rest as \"other\" (default 100)"),
};

const size_t st_cmp_tuning_opts_n = sizeof(st_cmp_tuning_opts) / sizeof(st_cmp_tuning_opts[0]);

/* Tap compare pairs one candidate (and a reference) with production. */
bool st_cmp_opts_given(struct st_cmp_opts *o)
{
	o->on |= o->flag_compare || o->report || o->report_json || o->diffs || o->max_mem ||
		 o->fail_on_regression || o->fail_on_slower ||
		 o->diffs_max || o->timeout_s > 0 || o->lat_min_ms > 0 || o->report_every_s > 0 ||
		 o->max_endpoints || o->proto_descriptor || (o->n_patterns && !o->load_test);
	return o->on;
}

int st_cmp_opts_check(struct st_cmp_opts *o, struct st_shadow_config *cfg, char *err,
		      size_t errlen)
{
	if (!st_cmp_opts_given(o))
		return 0;
	if (cfg->n_targets != 1) {
		snprintf(err, errlen, "--compare: one --to (the candidate), not %u; the reference "
			 "is --reference", cfg->n_targets);
		return -1;
	}
	if (cfg->targets[0].pct) {
		snprintf(err, errlen, "--compare: the candidate gets every request replayed (no "
			 "/PCT in --to %s)", cfg->targets[0].name);
		return -1;
	}
	if (cfg->multiply > 1) {
		snprintf(err, errlen, "--compare: --multiply replays each connection several times; "
			 "compare pairs one copy");
		return -1;
	}
	if (cfg->proto == ST_PROTO_RAW) {
		snprintf(err, errlen, "--compare: compares HTTP answers; --proto raw has none");
		return -1;
	}
	if (o->proto_descriptor) {
		/* read now, so a wrong file is said before anything starts (and again, kept, by
		 * the compare stage) */
		char e[256];
		struct st_protobuf_schema *s = st_protobuf_schema__load_file(o->proto_descriptor, e,
									      sizeof(e));

		if (!s) {
			snprintf(err, errlen, "--proto-%s", e); /* "--proto-descriptor FILE: why" */
			return -1;
		}
		st_protobuf_schema__free(s);
	}
	if (o->have_ref)
		cfg->targets[cfg->n_targets++] = o->ref;
	return 0;
}

struct st_compare *st_cmp_opts_start(const struct st_cmp_opts *o, const char *cmd,
				     struct st_shadow_config *cfg)
{
	struct st_compare_config cc = {
		.reference = o->have_ref,
		.command = cmd,
		.candidate_name = cfg->targets[0].name,
		.reference_name = o->have_ref ? o->ref.name : NULL,
		.report = o->report,
		.report_json = o->report_json,
		.diffs = o->diffs,
		.diffs_max = o->diffs_max,
		.out_mode = o->out_mode,
		.report_every_s = o->report_every_s,
		.patterns = o->patterns,
		.npatterns = o->n_patterns,
		.max_endpoints = o->max_endpoints,
		.rel_pct = o->rel_set ? (o->rel_pct > 0 ? o->rel_pct : 1e-9) : 0,
		.abs_pct = o->abs_set ? (o->abs_pct > 0 ? o->abs_pct : 1e-9) : 0,
		.lat_min_ms = o->lat_min_ms,
		.max_mem = o->max_mem,
		.timeout_s = o->timeout_s,
		.proto_descriptor = o->proto_descriptor,
	};

	cc.rules.ignore_headers = o->ign_hdr;
	cc.rules.n_ignore_headers = o->n_ign_hdr;
	cc.rules.ignore_fields = o->ign_field;
	cc.rules.n_ignore_fields = o->n_ign_field;
	cc.rules.unordered_all = o->unordered_all;
	cc.rules.unordered = o->unordered;
	cc.rules.n_unordered = o->n_unordered;
	cc.rules.max_body = (size_t)o->max_body;
	cc.rules.redact = &o->redact;
	cfg->compare = st_compare__new(&cc);
	return cfg->compare;
}

int st_cmp_opts_end(const struct st_cmp_opts *o, struct st_compare *c)
{
	struct st_cmp_verdict v;

	if (!c)
		return ST_EXIT_OK;
	st_compare__verdict(c, &v);
	st_cmp_verdict_print(&v, o->report ? o->report : o->report_json);
	return st_cmp_verdict_status(&v, o->fail_on_regression, o->fail_on_slower);
}
