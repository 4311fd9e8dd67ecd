/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tap compare: each request the shadow engine replays becomes a pair that
 * collects production's answer (from the capture: the server->client side of
 * the same connection), the candidate's and, with --reference, the
 * reference's. A pair whose answers are all in is compared in a worker thread
 * (compare_diff.c) and counted into the report (compare_agg.c); one that cannot
 * be is counted by reason. docs/COMPARE.md has the rules.
 *
 * Contract:
 *  - the capture side never waits for comparisons: the engine's thread only
 *    copies bytes into pairs (bounded per pair by --compare-max-body, the rest
 *    hashed) and hands complete pairs to a bounded queue; diffs, reports and
 *    files are the worker's;
 *  - memory is bounded: every byte a pair holds counts against max_mem; a
 *    pair that would pass it is dropped and counted (not_compared_memory), and
 *    so is one the full queue cannot take (not_compared_backlog);
 *  - a pair lives as long as something holds it (refs): the request waiting for
 *    production's verdict, production's answer being read, each shadow
 *    connection that sent the request. Each holder ends its side (done or a
 *    reason) and lets go; when the last one does, the pair is compared or
 *    counted. A pair never released to the shadows (production refused the
 *    request, the capture lost it) is freed without counting: the engine counts
 *    those requests.
 *
 * Threads: every st_compare__pair_* call and __tick come from the engine's
 * thread; __stats and __series from any thread.
 */
#ifndef ST_COMPARE_H
#define ST_COMPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "compare_agg.h"
#include "compare_diff.h"
#include "http.h"
#include "prom.h"
#include "stats.h"

#define ST_CMP_MAX_MEM_DEFAULT (256ull << 20)
#define ST_CMP_TIMEOUT_DEFAULT 30.0
#define ST_CMP_REPORT_EVERY_DEFAULT 10.0
#define ST_CMP_QUEUE_MAX 8192u          /* pairs waiting for the worker */
#define ST_CMP_REQ_TARGET_MAX 2048u     /* request target kept for --diffs */
#define ST_CMP_REQ_HEADERS_MAX 4096u    /* request header bytes kept for --diffs */
#define ST_CMP_REQ_BODY_MAX 256u        /* first request body bytes kept for --diffs */
#define ST_CMP_DIFFS_MAX_DEFAULT (1ull << 30) /* --diffs stops growing at 1 GiB */

/* Why a pair was not compared (the first reason a side gave). */
enum st_cmp_reason {
	ST_CMP_R_NONE = 0,
	ST_CMP_R_PROD_GAP,          /* production's answer crossed a capture gap */
	ST_CMP_R_PROD_UNANSWERED,   /* no answer from production in the capture */
	ST_CMP_R_PROD_UNFRAMED,     /* production's answers could not be followed */
	ST_CMP_R_SHADOW_UNANSWERED, /* a shadow closed, reset or failed before answering */
	ST_CMP_R_SHADOW_DROPPED,    /* the request never went to a shadow (queue, down, rate) */
	ST_CMP_R_TIMEOUT,           /* an answer did not come within the timeout */
	ST_CMP_R_MEMORY,            /* the global cap */
	ST_CMP_R_BACKLOG,           /* the worker's queue was full */
	ST_CMP_R_UPGRADE,           /* the connection switched protocols */
	ST_CMP_R__COUNT,
};

#define ST_COMPARE_STATS(X, T)                                                                  \
	X(T, compared, COUNTER, "pairs compared: production's answer against the candidate's")  \
	X(T, differing, COUNTER, "compared pairs with a difference that is not noise")          \
	X(T, noise_only, COUNTER, "compared pairs whose every difference is noise")            \
	X(T, not_compared, COUNTER, "replayed requests whose answers were not compared")       \
	X(T, not_compared_prod_gap, DETAIL, "not compared: production's answer crossed a capture gap") \
	X(T, not_compared_prod_unanswered, DETAIL, "not compared: production's answer is not in the capture") \
	X(T, not_compared_prod_unframed, DETAIL, "not compared: production's answers could not be followed") \
	X(T, not_compared_shadow_unanswered, DETAIL, "not compared: a shadow closed or failed before answering") \
	X(T, not_compared_shadow_dropped, DETAIL, "not compared: the request never went to a shadow") \
	X(T, not_compared_timeout, DETAIL, "not compared: an answer did not come within --compare-timeout") \
	X(T, not_compared_memory, DETAIL, "not compared: --compare-max-mem was reached")        \
	X(T, not_compared_backlog, DETAIL, "not compared: the comparison queue was full")      \
	X(T, not_compared_upgrade, DETAIL, "not compared: the connection switched protocols")  \
	X(T, correlated, COUNTER, "differences --correlate explains (the candidate's own session or id " \
				  "where production had its own): neither regressions nor noise")      \
	X(T, diffs_written, COUNTER, "lines written to --diffs")                                \
	X(T, diffs_dropped, DETAIL, "differing pairs not written: --diffs-max-mb reached")      \
	X(T, reports_written, COUNTER, "times the --report/--report-json files were written")   \
	X(T, output_errors, COUNTER, "writes to --diffs, --report, --report-json that failed "  \
				     "(the first of each said; the exit status is 1)")          \
	X(T, compare_pairs, GAUGE, "pairs held now (waiting for answers or for comparison)")    \
	X(T, compare_mem, GAUGE_BYTES, "bytes pairs hold now")                                  \
	X(T, compare_mem_peak, GAUGE_BYTES, "most bytes pairs ever held")                        \
	X(T, compare_endpoints, GAUGE, "distinct endpoints (the rest are grouped as other)")   \
	X(T, compare_regressed_fields, GAUGE, "fields that regressed, over every endpoint (the " \
	  "verdict, as of the last report interval)")                                         \
	X(T, compare_slower, GAUGE, "endpoints whose latency verdict is slower (likewise)")

struct st_compare_stats {
	ST_COMPARE_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_compare_stat);

struct st_compare_config {
	bool reference;                    /* a reference answers the same requests */
	const char *command;               /* for the report */
	const char *candidate_name, *reference_name;
	const char *report;                /* --report FILE.html */
	const char *report_json;           /* --report-json FILE.json */
	const char *diffs;                 /* --diffs FILE.jsonl */
	uint64_t diffs_max;                /* bytes written there at most (0: ST_CMP_DIFFS_MAX_DEFAULT) */
	mode_t out_mode;                   /* --output-mode of these files; 0: output.h's default */
	double report_every_s;             /* 0: ST_CMP_REPORT_EVERY_DEFAULT */
	struct st_cmp_rules rules;         /* arrays owned by the caller */
	const char *proto_descriptor;      /* --proto-descriptor: a FileDescriptorSet, loaded by
					    * __new into rules.schema (owned by the stage) */
	const struct st_cmp_pattern *patterns;
	unsigned npatterns;
	unsigned max_endpoints;            /* 0: default */
	double rel_pct, abs_pct;           /* 0: defaults */
	double lat_min_ms;                 /* 0: default */
	uint64_t max_mem;                  /* 0: ST_CMP_MAX_MEM_DEFAULT */
	double timeout_s;                  /* 0: ST_CMP_TIMEOUT_DEFAULT */
	bool sync;                         /* compare in the caller's thread (tests) */
	uint64_t (*clock)(void *ctx);      /* CLOCK_MONOTONIC ns (tests inject); NULL: real */
	void *clock_ctx;
};

struct st_compare;
struct st_cmp_pair;

/* NULL with errno set; outputs are opened (and the reports written empty) here, so an
 * unwritable path fails before anything starts. */
struct st_compare *st_compare__new(const struct st_compare_config *cfg);
/* Every pair still held is counted (not compared), the worker finishes its queue, the
 * reports are written a last time. Idempotent. */
void st_compare__finish(struct st_compare *c);
void st_compare__free(struct st_compare *c);

void st_compare__stats(struct st_compare *c, struct st_compare_stats *out);
/* The verdict as of the last report interval (after st_compare__finish: the final one). */
void st_compare__verdict(struct st_compare *c, struct st_cmp_verdict *out);
/* Writes to its outputs that failed so far (0 for NULL): a run with any exits 1. */
uint64_t st_compare__output_errors(struct st_compare *c);
/* The worker's queue or the memory cap is more than half used: a reader that may wait
 * (replay --fast) should, rather than have pairs shed. Any thread. */
bool st_compare__busy(struct st_compare *c);
/* Timeouts (and, in sync mode, the periodic reports). */
void st_compare__tick(struct st_compare *c);
/* Writes the reports now (the worker does it; sync mode here). */
void st_compare__report(struct st_compare *c);
/* The aggregate (tests; sync mode only, or after finish). */
const struct st_cmp_agg *st_compare__agg(const struct st_compare *c);
/* The aggregate's Prometheus families now (st_cmp_agg_prom), from any thread; nothing for a
 * NULL c. */
void st_compare__series(struct st_compare *c, struct st_prom *p, const struct st_prom_labels *base);

/*
 * A pair for a request the engine selected (its head, just framed). One reference, held
 * by the caller (the request's stage entry). NULL when out of memory (not counted).
 */
struct st_cmp_pair *st_compare__pair_new(struct st_compare *c, const struct st_http_head *req);
/* Request body bytes (payload only); the first ones are kept for --diffs. */
void st_compare__pair_req_body(struct st_cmp_pair *p, const void *data, size_t n);
/* The request is complete in the capture at ts (capture clock). */
void st_compare__pair_req_done(struct st_cmp_pair *p, uint64_t ts);
/* The request was released to the shadows: from now on the pair counts. */
void st_compare__pair_count(struct st_cmp_pair *p);

void st_compare__pair_get(struct st_cmp_pair *p);
/*
 * A holder lets go. side >= 0: the side it held; if that side has no final answer yet it
 * ends with reason. side < 0: the holder held no side.
 */
void st_compare__pair_release(struct st_cmp_pair *p, int side, enum st_cmp_reason reason);

/* A shadow got the request whole at ts (the engine's clock). */
void st_compare__pair_sent(struct st_cmp_pair *p, enum st_cmp_side s, uint64_t ts);
/* The final answer's head on side s; ts: when its first byte came (production: capture
 * clock; shadows: the engine's). */
void st_compare__pair_head(struct st_cmp_pair *p, enum st_cmp_side s, const struct st_http_head *h,
			   uint64_t ts);
/* HTTP/2: that answer's trailers (gRPC's grpc-status, grpc-message), compared as fields of
 * their own ("trailers.NAME"). Once per answer. */
void st_compare__pair_trailers(struct st_cmp_pair *p, enum st_cmp_side s,
			       const struct st_http_header *f, uint32_t n);
/* Body bytes of that answer (decoded from chunked framing: payload only). */
void st_compare__pair_body(struct st_cmp_pair *p, enum st_cmp_side s, const void *data, size_t n);
/* --correlate: production's value pv maps to side s's value tv (learned): where s answered
 * tv and production pv, that is no difference (counted as correlated). Bounded per side;
 * once s's answer is done, only while another holder still keeps the pair. */
void st_compare__pair_correlated(struct st_cmp_pair *p, enum st_cmp_side s, const char *pv,
				 size_t pn, const char *tv, size_t tn);
/* That answer is complete. */
void st_compare__pair_done(struct st_cmp_pair *p, enum st_cmp_side s);
/* Side s will never answer: reason. */
void st_compare__pair_fail(struct st_cmp_pair *p, enum st_cmp_side s, enum st_cmp_reason reason);
/* The request goes again on a new shadow connection: what side s had of an answer is gone. */
void st_compare__pair_reset(struct st_cmp_pair *p, enum st_cmp_side s);
/* Side s still wants its answer's bytes (the engine may discard them otherwise). */
bool st_compare__pair_wants(const struct st_cmp_pair *p, enum st_cmp_side s);

#endif /* ST_COMPARE_H */
