/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Counters: one table per component generates its struct, the summary and
 * stats lines and the Prometheus metrics, so the three never drift (the
 * X-macro shape the kernel and bpftool use for enum/string tables).
 *
 * A component lists its counters once, each entry passing T through:
 *
 *	#define ST_FOO_STATS(X, T)                                 \
 *		X(T, requests, COUNTER, "requests seen")            \
 *		X(T, queued, GAUGE, "bytes queued now")
 *	struct st_foo_stats { ST_FOO_STATS(ST_STAT_FIELD, _) };
 *	ST_STAT_TABLE_DECLARE(st_foo_stat);                  (the header)
 *	ST_STAT_TABLE_DEFINE(st_foo_stat, struct st_foo_stats, ST_FOO_STATS);  (one .c)
 *
 * and a command gathers the tables it reports into a struct st_statline:
 * "shadowtap: summary requests=N queued=N ..." on stderr, the same keys as
 * metrics shadowtap_requests_total / shadowtap_queued_bytes{command="..."}.
 *
 * Metric names follow Prometheus' rules: base units, named (_bytes, _seconds),
 * _total only on counters. A value in bytes whose key does not say so is listed
 * as COUNTER_BYTES, GAUGE_BYTES or DETAIL_BYTES: its metric's name gets _bytes
 * (queued: shadowtap_queued_bytes); a counter kept in milliseconds is COUNTER_MS
 * and its key ends in _ms: its metric is in seconds (blind_ms:
 * shadowtap_blind_seconds_total, the value / 1000). The summary keeps the keys.
 */
#ifndef ST_STATS_H
#define ST_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum st_stat_kind {
	ST_STAT_COUNTER = 0, /* only goes up: metric shadowtap_<name>_total */
	ST_STAT_GAUGE = 1,   /* a level: metric shadowtap_<name> */
	ST_STAT_DETAIL = 2,  /* a counter the summary line shows only when it is not 0 (a
			      * breakdown by reason); metrics always have it */
};

enum st_stat_unit {
	ST_STAT_UNIT_NONE = 0, /* a count of things (requests, segments) or a unit the key says */
	ST_STAT_UNIT_BYTES,    /* bytes: the metric's name ends in _bytes */
	ST_STAT_UNIT_MS,       /* milliseconds (key ..._ms): the metric is ..._seconds */
};

struct st_stat_desc {
	const char *name;
	uint32_t off;        /* offset of the uint64_t in its struct */
	uint8_t kind;        /* enum st_stat_kind */
	const char *help;
	uint8_t unit;        /* enum st_stat_unit */
};

/* A table row's KIND: a kind, with the unit when the key does not name it. */
#define ST_STAT_K_COUNTER ST_STAT_COUNTER
#define ST_STAT_K_GAUGE ST_STAT_GAUGE
#define ST_STAT_K_DETAIL ST_STAT_DETAIL
#define ST_STAT_K_COUNTER_BYTES ST_STAT_COUNTER
#define ST_STAT_K_GAUGE_BYTES ST_STAT_GAUGE
#define ST_STAT_K_DETAIL_BYTES ST_STAT_DETAIL
#define ST_STAT_K_COUNTER_MS ST_STAT_COUNTER
#define ST_STAT_U_COUNTER ST_STAT_UNIT_NONE
#define ST_STAT_U_GAUGE ST_STAT_UNIT_NONE
#define ST_STAT_U_DETAIL ST_STAT_UNIT_NONE
#define ST_STAT_U_COUNTER_BYTES ST_STAT_UNIT_BYTES
#define ST_STAT_U_GAUGE_BYTES ST_STAT_UNIT_BYTES
#define ST_STAT_U_DETAIL_BYTES ST_STAT_UNIT_BYTES
#define ST_STAT_U_COUNTER_MS ST_STAT_UNIT_MS

#define ST_STAT_FIELD(T, name, kind, help) uint64_t name;
#define ST_STAT_DESC(T, name, kind, help) \
	{ #name, (uint32_t)offsetof(T, name), ST_STAT_K_##kind, help, ST_STAT_U_##kind },

#define ST_STAT_TABLE_DECLARE(prefix)                    \
	extern const struct st_stat_desc prefix##_desc[]; \
	extern const size_t prefix##_n
#define ST_STAT_TABLE_DEFINE(prefix, type, LIST)                           \
	const struct st_stat_desc prefix##_desc[] = { LIST(ST_STAT_DESC, type) }; \
	const size_t prefix##_n = sizeof(prefix##_desc) / sizeof(prefix##_desc[0])

/* dst += src for every entry (counters and gauges: totals over components). */
void st_stats_add(const struct st_stat_desc *d, size_t n, void *dst, const void *src);
uint64_t st_stats_get(const struct st_stat_desc *d, const void *obj);

/* the longest line: shadow (HTTP/2, gRPC) + compare + tap, receive with every output and
 * Kafka, a load test */
#define ST_STATLINE_MAX 256

struct st_statline_ent {
	const char *name;
	const char *help;
	uint64_t v;          /* with decimals: the value times 10^decimals */
	uint8_t kind;
	uint8_t unit;        /* enum st_stat_unit */
	uint8_t decimals;    /* 0: a whole number (every table's counters) */
	const char *lk, *lv; /* a label of its own (target="10.0.5.20:8080"): a metric only,
			      * never on the summary line; NULL for none */
};

/* An ordered set of name=value pairs gathered from tables and single values. */
struct st_statline {
	size_t n;
	struct st_statline_ent e[ST_STATLINE_MAX];
};

void st_statline_init(struct st_statline *l);
/* A single value, a count (or a unit its name says). */
void st_statline_add(struct st_statline *l, const char *name, uint64_t v, enum st_stat_kind kind,
		     const char *help);
void st_statline_add_table(struct st_statline *l, const struct st_stat_desc *d, size_t n,
			   const void *obj);
/* A figure that is not a whole number (a rate, a latency in ms): shown with `decimals` (at
 * most 6) digits after the point, "achieved_rps=499.8"; negative values are 0. unit as a
 * table row's: ST_STAT_UNIT_MS (p99_ms=51.3) is exported in seconds (0.0513). */
void st_statline_add_fixed(struct st_statline *l, const char *name, double v, unsigned decimals,
			   enum st_stat_kind kind, enum st_stat_unit unit, const char *help);
/* A value with a label of its own, for the metrics (several of one name, one per label
 * value: shadowtap_shadow_target_up{target="..."}); the strings must live until the
 * exposition is written. Never on the summary or stats line. */
void st_statline_add_labeled(struct st_statline *l, const char *name, const char *label,
			     const char *value, uint64_t v, enum st_stat_kind kind,
			     const char *help);
/* The value of name (times 10^decimals), or 0 (tests, callers that derive one figure from
 * another). */
uint64_t st_statline_value(const struct st_statline *l, const char *name);
/* "a=1 b=2": the stats line without prefix or newline; returns the length it needs. */
size_t st_statline_format(const struct st_statline *l, char *buf, size_t len);
/* "shadowtap: <what> a=1 b=2\n" on stderr, whatever the log level (it is the output). */
void st_statline_print(const struct st_statline *l, const char *what);
/* The metric's name of e (without "shadowtap_"): the key, its unit, _total on counters. */
const char *st_statline_metric(const struct st_statline_ent *e, char *buf, size_t len);
/* Prometheus text format, with HELP and TYPE, label command="command". 0 or -errno. */
int st_statline_prometheus(const struct st_statline *l, FILE *f, const char *command);

/* Several jobs' lines as one exposition: each metric family once (HELP and TYPE from its
 * first job), one sample per job that has it, labels job="jobs[i]" command="commands[i]"
 * (escaped). 0 or -errno. */
int st_statline_prometheus_jobs(const struct st_statline *const *ls, const char *const *jobs,
				const char *const *commands, size_t n, FILE *f);

#endif /* ST_STATS_H */
