/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A load test from production's own traffic (docs/LOAD.md): the schedule that says when each
 * request the shadow engine releases is due, and the measurement of what became of each. It
 * is the shadow engine's load ops (shadow.h, "A load test"): the engine frames, arbitrates
 * (only what production ran is ever due), queues and sends; this file decides when, and
 * counts.
 *
 * The schedule is an open model: a rate profile r(t) (a constant --rate, a --ramp up to it,
 * or --steps) over [0, D), and each request a position p; it is due when the profile's
 * count reaches p (C(t) = integral of r = p). Positions:
 *  - pace recorded: the recording's own inter-arrival times scaled to the target rate: p is
 *    the request's capture time mapped onto [0, N - 1] (N requests in the recording), plus
 *    N per pass: a recording looped keeps its bursts and lulls;
 *  - pace constant: the k-th released request is at p = k;
 *  - input-paced (receive): as constant, but a request the stream had not brought by its
 *    slot takes the next slot from now (the slots it missed are counted: starved), never a
 *    burst to catch up.
 * D is --duration (--steps: their sum), or one pass of the recording, or (input-paced) none.
 * A request at or past D is not sent (ST_SHADOW_NEVER).
 *
 * The measurement, of the first target's requests (slot 0; tap compare's reference, slot 1,
 * is not measured): latency from due to answer (corrected: what a client due then waited,
 * whatever delayed it: wrk2's correction for coordinated omission) and from written whole to
 * answer (raw), in HDR histograms (hdr.h: 1 us to 1 h, 3 significant digits; per step, per
 * endpoint, and per timeline bucket at 2 digits); errors by kind; the generator's own lag
 * (taken up after it was due: late_sends past ST_LOAD_LATE_NS, and the worst): it says when
 * it fell behind rather than lowering the rate. Memory is bounded: fixed histograms, at most
 * ST_LOAD_STEPS_MAX steps, max_endpoints endpoints (the rest as "other"), ST_LOAD_BUCKETS_MAX
 * timeline buckets (a longer run makes them wider).
 *
 * Single-threaded (the engine's thread). The report (load_report.h) and the merge
 * (load_merge.h) read struct st_load_agg, which a run fills and a JSON report reads back into.
 */
#ifndef ST_LOAD_H
#define ST_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "compare_agg.h"
#include "hdr.h"
#include "shadow.h"
#include "stats.h"

#define ST_LOAD_STEPS_MAX 64
#define ST_LOAD_BUCKETS_MAX 600            /* timeline buckets (1 s each up to 10 minutes) */
#define ST_LOAD_LATE_NS (1000ull * 1000)   /* taken up this late: a late send */
#define ST_LOAD_HIGHEST_US 3600000000ull   /* the histograms' range: 1 us .. 1 h */
#define ST_LOAD_SIG 3                      /* significant digits (the timeline's: 2) */
#define ST_LOAD_TIMELINE_SIG 2
#define ST_LOAD_LOOKAHEAD_NS (500ull * 1000000) /* requests released ahead of their time */
#define ST_LOAD_WAKE_NS (100ull * 1000)        /* the loop's timer wakes, at most this often */
/* Recorded pacing feeds this much more of the recording (capture time): a request goes out
 * only once production's answer to it is in (the arbiter), and an answer that took this
 * long in production must not make it late. */
#define ST_LOAD_ARBITER_SLACK_NS (2000ull * 1000000)
#define ST_LOAD_OTHER UINT32_MAX           /* the tag of endpoints past max_endpoints */

enum st_load_pace { ST_LOAD_PACE_RECORDED = 0, ST_LOAD_PACE_CONSTANT };

/* Errors by kind: the engine's failures and answers with a 5xx status. */
enum st_load_err {
	ST_LOAD_E_CONNECT_REFUSED = 0,
	ST_LOAD_E_CONNECT_FAILED,
	ST_LOAD_E_RESET,
	ST_LOAD_E_TIMEOUT,
	ST_LOAD_E_HTTP_5XX,
	ST_LOAD_E_MALFORMED,
	ST_LOAD_E_DROPPED,
	ST_LOAD_E__COUNT,
};

/* "connect_refused", ...: the report's keys. */
const char *st_load_err_name(enum st_load_err e);

struct st_load_config {
	double rate;                       /* --rate: requests/s (with --ramp: its plateau) */
	double steps[ST_LOAD_STEPS_MAX];   /* --steps: requests/s each, step_s long */
	unsigned nsteps;
	double step_s;
	double duration_s;                 /* 0: one pass of the recording, or (input-paced) none */
	double ramp_s;                     /* --ramp: from 0 up to rate over this long */
	enum st_load_pace pace;
	bool input_paced;                  /* receive: requests come when the stream brings them */
	/* the recording (replay surveys it first): requests and their capture times' span */
	uint64_t rec_n, rec_t0, rec_t1;
	const struct st_cmp_pattern *patterns; /* --endpoint, as tap compare groups */
	unsigned npatterns;
	unsigned max_endpoints;            /* 0: ST_CMP_ENDPOINTS_DEFAULT */
	/* the outputs' redaction policy (redact.h; NULL: the default set): endpoints are named
	 * from the target as tap compare names them, its secrets overwritten first */
	const struct st_redact_rules *redact;
	/* for the report */
	const char *command, *target;
	unsigned connections;
	double timeout_s;
};

/* One step of --steps: its requests (by due time) and the answers that came during it. */
struct st_load_step {
	double rps;                        /* the target */
	uint64_t due, sent, answered, errors;
	uint64_t answered_in;              /* answers that came during the step: its rate */
	struct st_hdr lat;                 /* corrected; counts_len 0 until the first sample */
};

struct st_load_endpoint {
	char name[ST_CMP_ENDPOINT_MAX];
	uint64_t hash;
	uint64_t due, sent, answered, errors;
	struct st_hdr lat;                 /* corrected */
};

/* A stretch of the run's time: requests due, written, answered and failed in it, and the
 * corrected latencies of the answers that came in it. */
struct st_load_bucket {
	uint64_t due, sent, answered, errors;
	struct st_hdr lat;                 /* ST_LOAD_TIMELINE_SIG; counts_len 0 when empty */
};

/* What a report says: a run's, or reports merged (load_merge.h). */
struct st_load_agg {
	char command[64], target[256];
	enum st_load_pace pace;
	unsigned connections;
	double timeout_s;
	double target_rps;                 /* --rate, or the highest step */
	double scheduled_s;                /* the schedule's length */
	double step_s;
	unsigned nsteps;
	uint64_t start_real_ns, end_real_ns;
	double elapsed_s;                  /* start to the end of the schedule or the last answer */
	bool final;
	uint64_t sources;                  /* reports merged into this one (1: a run) */
	uint64_t due, sent, answered, late_sends, starved;
	uint64_t errors[ST_LOAD_E__COUNT];
	struct st_hdr lat, lat_raw;        /* corrected, raw */
	struct st_hdr lag;                 /* the generator's: taken up - due */
	struct st_load_step steps[ST_LOAD_STEPS_MAX];
	struct st_load_endpoint *ep;       /* max_endpoints + 1 ("other" last) */
	unsigned nep, max_endpoints;
	struct st_load_bucket *tl;         /* ST_LOAD_BUCKETS_MAX */
	unsigned ntl;                      /* buckets in use */
	double bucket_s;
};

/* The agg's histograms and tables (nothing recorded). 0 or -ENOMEM. */
int st_load_agg_init(struct st_load_agg *a, unsigned max_endpoints);
void st_load_agg_free(struct st_load_agg *a);
uint64_t st_load_agg_errors(const struct st_load_agg *a);
/* answered / elapsed. */
double st_load_agg_achieved(const struct st_load_agg *a);
/* A latency in ms at percentile p of h (0 when empty). */
double st_load_ms(const struct st_hdr *h, double p);
/* The breakdowns' histograms are made when first used: h (of sig digits) unless made. 0 or
 * -ENOMEM. */
int st_load_hdr_ready(struct st_hdr *h, int sig);
/* Records n times v (us) into h, made first if need be. 0 or -ENOMEM. */
int st_load_hdr_record(struct st_hdr *h, int sig, uint64_t v_us, uint64_t n);
/* The timeline's buckets merged pairwise: it covers twice as long in as many (a run longer
 * than ST_LOAD_BUCKETS_MAX buckets, a merge with a longer run's). */
void st_load_agg_widen(struct st_load_agg *a);
/* The endpoint named name (made unless max_endpoints are there: "other"). */
struct st_load_endpoint *st_load_agg_endpoint(struct st_load_agg *a, const char *name);

#define ST_LOAD_STATS(X, T)                                                                     \
	X(T, load_due, COUNTER, "load test: requests due (taken up at their time, or dropped)")  \
	X(T, load_sent, COUNTER, "load test: requests written whole to the target")              \
	X(T, load_answered, COUNTER, "load test: requests answered (any status)")                \
	X(T, load_errors, COUNTER, "load test: requests failed, and answers with a 5xx status")  \
	X(T, load_connect_refused, DETAIL, "load test errors: connection refused")              \
	X(T, load_connect_failed, DETAIL, "load test errors: connection failed otherwise")      \
	X(T, load_reset, DETAIL, "load test errors: reset or closed before the answer")         \
	X(T, load_timeout, DETAIL, "load test errors: no answer in time")                       \
	X(T, load_http_5xx, DETAIL, "load test errors: answers with a 5xx status")              \
	X(T, load_malformed, DETAIL, "load test errors: an answer that is not HTTP")            \
	X(T, load_dropped, DETAIL, "load test errors: not sent, the queues were full")          \
	X(T, late_sends, COUNTER, "load test: requests the generator took up over 1 ms late")   \
	X(T, load_starved, DETAIL, "load test (receive): slots the stream had no request for yet") \
	X(T, load_over_range, DETAIL, "load test: latencies over 1 h, recorded as 1 h")          \
	X(T, load_output_errors, DETAIL, "load test: report writes that failed")

struct st_load_stats {
	ST_LOAD_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_load_stat);

struct st_load;

/* NULL with errno (EINVAL: a profile without a rate). */
struct st_load *st_load__new(const struct st_load_config *cfg);
void st_load__free(struct st_load *l);
/* The engine's ops (cfg.load = &st_load_ops, cfg.load_ctx = the st_load). */
extern const struct st_shadow_load_ops st_load_ops;

/* t = 0 of the schedule. */
void st_load__start(struct st_load *l, uint64_t now_mono, uint64_t now_real);
/* Replay: pass k (0, 1, ...) of the recording is fed from now on, its capture times moved
 * shift_ns later (reassembly's clock only goes forward: each pass comes after the last). */
void st_load__pass(struct st_load *l, unsigned k, uint64_t shift_ns);

/* The feeder (replay): may the next segment, captured at ts, be fed now? WAIT: not before
 * *wake (CLOCK_MONOTONIC ns); END: nothing more of it will be due. */
enum st_load_feed { ST_LOAD_FEED = 0, ST_LOAD_WAIT, ST_LOAD_END };
enum st_load_feed st_load__feed(struct st_load *l, uint64_t ts, uint64_t now, uint64_t *wake);
/* The schedule's end (CLOCK_MONOTONIC ns); UINT64_MAX: none (input-paced without --duration). */
uint64_t st_load__end(const struct st_load *l);
/*
 * When the loop should wake for the next due request (next, CLOCK_MONOTONIC ns; 0: none): at
 * its time, but no sooner than ST_LOAD_WAKE_NS after the last wake: above 1 / ST_LOAD_WAKE_NS
 * requests a second they are taken up a few at a time, each at most that late (its lag says
 * so), where waking for every one would cost more than the requests themselves.
 */
uint64_t st_load__wake_at(struct st_load *l, uint64_t next, uint64_t now);

/* The run is over (the drain too): the last figures. Written reports say "final" after it. */
void st_load__finish(struct st_load *l, uint64_t now_mono, uint64_t now_real);
/* The figures so far (elapsed up to now; a finished run's as finished). */
const struct st_load_agg *st_load__agg(struct st_load *l, uint64_t now_mono, uint64_t now_real);
void st_load__stats(const struct st_load *l, struct st_load_stats *out);
/* A write of report `which` (0: HTML, 1: JSON) failed: counted (load_output_errors); true the
 * first time for that report, to say it once, not at every --report-interval. */
bool st_load__output_failed(struct st_load *l, unsigned which);
/* The report writes that failed so far (0 for NULL: no load test); the run exits 1 on any. */
uint64_t st_load__output_errors(const struct st_load *l);
/* The counters, then achieved_rps= p99_ms= (and the worst lag) for the summary line. */
void st_load__statline(struct st_load *l, struct st_statline *line);
struct st_brief;
/* The few figures --stats and the status line show (progress.h): requests due and answered
 * (rates), failed, and taken up late. */
void st_load__brief(const struct st_load *l, struct st_brief *b);
/* The run in one line for people: elapsed time, requests/s, latency percentiles, errors, lag. */
void st_load__print_end(struct st_load *l, FILE *f);

#endif /* ST_LOAD_H */
