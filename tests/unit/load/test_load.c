/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The load test's schedule and measurement (agent/load/load.c), through the engine's ops as
 * the engine calls them: due times for constant, ramped, stepped, recorded and input-paced
 * schedules (and the end), the feeder's decisions, and what the figures say of a scripted
 * run (latencies corrected and raw, errors by kind, the generator's lag, steps, endpoints,
 * the timeline and its compaction).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "redact.h"

#define MS 1000000ull
#define S0 (1000ull * 1000000000) /* the schedule's start, CLOCK_MONOTONIC ns */

static struct st_load *mk(struct st_load_config *c)
{
	struct st_load *l;

	c->command = "replay";
	c->target = "127.0.0.1:8080";
	l = st_load__new(c);
	assert_non_null(l);
	st_load__start(l, S0, 1700000000ull * 1000000000);
	return l;
}

static uint64_t due(struct st_load *l, uint64_t ts, uint64_t now)
{
	return st_load_ops.due(l, ts, now);
}

/* Due at S0 + ms (within a nanosecond of rounding). */
static void assert_due_ms(uint64_t d, double ms)
{
	if (fabs((double)(d - S0) / 1e6 - ms) > 1e-6)
		fail_msg("due at %.6f ms, want %.6f", (double)(d - S0) / 1e6, ms);
}

static void test_constant(void **state)
{
	struct st_load_config c = { .rate = 1000, .duration_s = 2, .pace = ST_LOAD_PACE_CONSTANT };
	struct st_load *l = mk(&c);

	for (int k = 0; k < 2000; k++)
		assert_due_ms(due(l, 0, S0), k);
	assert_int_equal(due(l, 0, S0), ST_SHADOW_NEVER);
	assert_int_equal(st_load__end(l), S0 + 2000 * MS);
	st_load__free(l);
	/* no rate: refused */
	c.rate = 0;
	assert_null(st_load__new(&c));
}

/* --ramp: from 0 to the rate, linearly (the count grows as t^2), then the rate. */
static void test_ramp(void **state)
{
	struct st_load_config c = { .rate = 100, .ramp_s = 2, .duration_s = 10,
				    .pace = ST_LOAD_PACE_CONSTANT };
	struct st_load *l = mk(&c);
	uint64_t d[200];

	for (int k = 0; k < 200; k++)
		d[k] = due(l, 0, S0);
	assert_due_ms(d[0], 0);
	assert_due_ms(d[25], 1000);  /* 100 t^2 / 4 = 25 at 1 s */
	assert_due_ms(d[100], 2000); /* the ramp's end */
	assert_due_ms(d[150], 2500); /* then 100/s */
	st_load__free(l);
}

static void test_steps(void **state)
{
	struct st_load_config c = { .steps = { 100, 200 }, .nsteps = 2, .step_s = 1,
				    .pace = ST_LOAD_PACE_CONSTANT };
	struct st_load *l = mk(&c);
	uint64_t d[300];

	for (int k = 0; k < 300; k++)
		d[k] = due(l, 0, S0);
	assert_due_ms(d[50], 500);
	assert_due_ms(d[100], 1000);
	assert_due_ms(d[150], 1250);
	assert_due_ms(d[299], 1995);
	assert_int_equal(due(l, 0, S0), ST_SHADOW_NEVER);
	assert_int_equal(st_load__end(l), S0 + 2000 * MS);
	st_load__free(l);
}

/* Recorded pacing: the capture times scaled to the rate; a pass is N positions; one pass by
 * default, looped with --duration. */
static void test_recorded(void **state)
{
	struct st_load_config c = { .rate = 10, .rec_n = 5, .rec_t0 = 1000, .rec_t1 = 5000 };
	struct st_load *l = mk(&c);

	assert_due_ms(due(l, 1000, S0), 0);
	assert_due_ms(due(l, 1001, S0), 0.1); /* a burst stays a burst */
	assert_due_ms(due(l, 2000, S0), 100);
	assert_due_ms(due(l, 3500, S0), 250);
	assert_due_ms(due(l, 5000, S0), 400);
	assert_int_equal(st_load__end(l), S0 + 500 * MS); /* one pass: 5 positions at 10/s */
	st_load__pass(l, 1, 0);
	assert_int_equal(due(l, 1000, S0), ST_SHADOW_NEVER);
	st_load__free(l);
	c.duration_s = 2;
	l = mk(&c);
	st_load__pass(l, 1, 0);
	assert_due_ms(due(l, 1000, S0), 500);
	assert_due_ms(due(l, 5000, S0), 900);
	st_load__pass(l, 3, 7000);
	assert_due_ms(due(l, 8000, S0), 1500); /* the pass's times, moved on: the same positions */
	assert_due_ms(due(l, 12000, S0), 1900);
	st_load__pass(l, 4, 0);
	assert_int_equal(due(l, 1000, S0), ST_SHADOW_NEVER); /* 2 s: the end */
	st_load__free(l);
}

/* receive: a request the stream brings after its slot takes the next one from now; the
 * slots missed are counted, never caught up in a burst. */
static void test_input_paced(void **state)
{
	struct st_load_config c = { .rate = 10, .pace = ST_LOAD_PACE_CONSTANT, .input_paced = true };
	struct st_load *l = st_load__new(&c);
	struct st_load_stats st;

	assert_non_null(l);
	assert_int_equal(st_load__end(l), UINT64_MAX);
	assert_int_equal(due(l, 0, S0), S0); /* the schedule starts at the first request */
	assert_int_equal(due(l, 0, S0 + 10 * MS), S0 + 100 * MS);
	assert_int_equal(due(l, 0, S0 + 1000 * MS), S0 + 1000 * MS);
	assert_int_equal(due(l, 0, S0 + 1000 * MS), S0 + 1100 * MS);
	st_load__stats(l, &st);
	assert_int_equal(st.load_starved, 8);
	st_load__free(l);
}

/* The feeder: ahead of the schedule by the lookahead, no more; nothing past the end. */
static void test_feed(void **state)
{
	struct st_load_config c = { .rate = 10, .duration_s = 10, .pace = ST_LOAD_PACE_CONSTANT };
	struct st_load *l = mk(&c);
	uint64_t wake = 0;
	int k;

	assert_int_equal(st_load__feed(l, 0, S0, &wake), ST_LOAD_FEED);
	for (k = 0; k < 10; k++)
		due(l, 0, S0);
	/* the 11th is due at 1 s: fed from 0.5 s on */
	assert_int_equal(st_load__feed(l, 0, S0, &wake), ST_LOAD_WAIT);
	assert_int_equal(wake, S0 + 500 * MS);
	assert_int_equal(st_load__feed(l, 0, S0 + 500 * MS, &wake), ST_LOAD_FEED);
	for (; k < 100; k++)
		due(l, 0, S0);
	assert_int_equal(st_load__feed(l, 0, S0 + 9000 * MS, &wake), ST_LOAD_END);
	st_load__free(l);
	/* recorded: by capture time, with the arbiter's slack of capture time */
	c = (struct st_load_config){ .rate = 100, .duration_s = 100, .rec_n = 1001,
				     .rec_t0 = 0, .rec_t1 = 10000 * MS };
	l = mk(&c);
	/* positions 1 per 10 ms of capture; due at 100/s: capture time = due time */
	assert_int_equal(st_load__feed(l, 2400 * MS, S0, &wake), ST_LOAD_FEED);
	assert_int_equal(st_load__feed(l, 2600 * MS, S0, &wake), ST_LOAD_WAIT);
	assert_int_equal(wake, S0 + 100 * MS); /* 2.6 s - 2 s slack - 0.5 s lookahead */
	st_load__free(l);
}

static uint32_t tag(struct st_load *l, const char *method, const char *target)
{
	struct st_http_head h = { .method_str = method, .method_len = (uint32_t)strlen(method),
				  .target = target, .target_len = (uint32_t)strlen(target) };

	return st_load_ops.tag(l, &h);
}

static void done(struct st_load *l, uint32_t t, enum st_shadow_fail f, uint16_t status,
		 uint64_t due_, uint64_t sent, uint64_t end, unsigned slot)
{
	struct st_shadow_done d = { .tag = t, .slot = slot, .fail = f, .status = status,
				    .due = due_, .sent = sent, .end = end };

	st_load_ops.done(l, &d);
}

/* A scripted run: 100 answered (90 after 5 ms, 10 after 50 ms, 2 of them 503), 3 failed by
 * kind, 3 taken up 5 ms late; the reference's (slot 1) events are not counted. */
static void test_measure(void **state)
{
	struct st_load_config c = { .rate = 50, .duration_s = 2, .pace = ST_LOAD_PACE_CONSTANT };
	struct st_load *l = mk(&c);
	const struct st_load_agg *a;
	struct st_load_stats st;
	struct st_statline line;
	uint32_t t1 = tag(l, "GET", "/users/12?x=1"), t2 = tag(l, "GET", "/users/13?x=2"),
		 t3 = tag(l, "POST", "/x");
	char buf[1024], *out = NULL;
	size_t len = 0;
	FILE *f;

	assert_int_equal(t1, t2);
	assert_int_not_equal(t1, t3);
	assert_int_equal(tag(l, "GET", "/users/12?x=1"), t1); /* the cache says the same */
	for (int i = 0; i < 103; i++) {
		uint64_t d = S0 + (uint64_t)i * 10 * MS;

		st_load_ops.taken(l, 0, d, d + (i < 3 ? 5 * MS : 0));
		st_load_ops.taken(l, 1, d, d + 100 * MS);
		if (i >= 100) {
			enum st_shadow_fail k[3] = { ST_SHADOW_F_REFUSED, ST_SHADOW_F_TIMEOUT,
						     ST_SHADOW_F_RESET };

			done(l, t3, k[i - 100], 0, d, i == 100 ? 0 : d + MS, d + 20 * MS, 0);
			continue;
		}
		done(l, i % 2 ? t1 : t3, ST_SHADOW_ANSWERED, i % 50 == 7 ? 503 : 200, d, d + MS,
		     d + (i % 10 == 9 ? 50 : 5) * MS, 0);
		done(l, t1, ST_SHADOW_F_RESET, 0, d, d, d + MS, 1);
	}
	st_load__finish(l, S0 + 5000 * MS, 0);
	a = st_load__agg(l, 0, 0);
	assert_int_equal(a->due, 103);
	assert_int_equal(a->sent, 102);
	assert_int_equal(a->answered, 100);
	assert_int_equal(a->errors[ST_LOAD_E_HTTP_5XX], 2);
	assert_int_equal(a->errors[ST_LOAD_E_CONNECT_REFUSED], 1);
	assert_int_equal(a->errors[ST_LOAD_E_TIMEOUT], 1);
	assert_int_equal(a->errors[ST_LOAD_E_RESET], 1);
	assert_int_equal(st_load_agg_errors(a), 5);
	assert_int_equal(a->late_sends, 3);
	assert_true(fabs((double)a->lag.max / 1e3 - 5) < 0.01);
	/* corrected from due, raw from the send (1 ms later) */
	assert_true(fabs(st_load_ms(&a->lat, 50) - 5) < 0.01);
	assert_true(fabs(st_load_ms(&a->lat, 99) - 50) < 0.1);
	assert_true(fabs(st_load_ms(&a->lat_raw, 50) - 4) < 0.01);
	assert_true(fabs(st_load_ms(&a->lat_raw, 99) - 49) < 0.1);
	/* the schedule's 2 s, not the 5 s until finish: the last answer came at 1.05 s */
	assert_true(fabs(a->elapsed_s - 2) < 1e-9);
	assert_true(fabs(st_load_agg_achieved(a) - 50) < 1e-9);
	assert_true(a->final);
	/* endpoints: the two /users/{id} requests as one */
	assert_int_equal(a->nep, 2);
	assert_string_equal(a->ep[t1].name, "GET /users/{id}?x");
	assert_int_equal(a->ep[t1].answered, 50);
	assert_int_equal(a->ep[t3].errors, 3 + 0);
	assert_int_equal(a->ep[t1].errors + a->ep[t3].errors, 5);
	/* the timeline: 1 s buckets, by answer time */
	assert_int_equal(a->bucket_s, 1);
	assert_int_equal(a->tl[0].answered + a->tl[1].answered, 100);
	assert_int_equal(a->tl[0].lat.total + a->tl[1].lat.total, 100);
	assert_int_equal(a->tl[0].due + a->tl[1].due, 103);
	/* the summary line */
	st_load__stats(l, &st);
	assert_int_equal(st.load_errors, 5);
	st_statline_init(&line);
	st_load__statline(l, &line);
	st_statline_format(&line, buf, sizeof(buf));
	assert_non_null(strstr(buf, "achieved_rps=50.0 p99_ms=50."));
	assert_non_null(strstr(buf, "load_http_5xx=2"));
	assert_non_null(strstr(buf, "late_sends=3"));
	f = open_memstream(&out, &len);
	st_load__print_end(l, f);
	fclose(f);
	assert_non_null(strstr(out, "shadowtap: load 2.00 s: 100 answered of 103 due, 50.0/s"));
	assert_non_null(strstr(out, "late sends 3 (worst lag 5.00 ms): the generator fell behind"));
	free(out);
	st_load__free(l);
}

/* Steps: requests by due time, each step's rate from the answers that came in it. */
static void test_steps_measure(void **state)
{
	struct st_load_config c = { .steps = { 10, 20 }, .nsteps = 2, .step_s = 1,
				    .pace = ST_LOAD_PACE_CONSTANT };
	struct st_load *l = mk(&c);
	const struct st_load_agg *a;
	uint64_t d;

	while ((d = due(l, 0, S0)) != ST_SHADOW_NEVER) {
		st_load_ops.taken(l, 0, d, d);
		/* answered 2 ms later in the first step, 300 ms later in the second */
		done(l, 0, ST_SHADOW_ANSWERED, 200, d, d, d + (d < S0 + 1000 * MS ? 2 : 300) * MS, 0);
	}
	st_load__finish(l, S0 + 3000 * MS, 0);
	a = st_load__agg(l, 0, 0);
	assert_int_equal(a->due, 30);
	assert_int_equal(a->steps[0].due, 10);
	assert_int_equal(a->steps[1].due, 20);
	assert_int_equal(a->steps[0].answered_in, 10);
	/* answers of the second step after its end are not its rate */
	assert_true(a->steps[1].answered_in < 20);
	assert_true(fabs(st_load_ms(&a->steps[0].lat, 99) - 2) < 0.01);
	assert_true(fabs(st_load_ms(&a->steps[1].lat, 50) - 300) < 0.5);
	assert_true(fabs(a->target_rps - 20) < 1e-9);
	st_load__free(l);
}

/* A run longer than the timeline: buckets merge pairwise, nothing is lost. */
static void test_timeline_compact(void **state)
{
	struct st_load_config c = { .rate = 1, .duration_s = 2000, .pace = ST_LOAD_PACE_CONSTANT };
	struct st_load *l = mk(&c);
	const struct st_load_agg *a;
	uint64_t answered = 0, lat = 0, due_n = 0;

	for (uint64_t s = 0; s < 1300; s += 3) {
		uint64_t d = S0 + s * 1000 * MS;

		st_load_ops.taken(l, 0, d, d);
		done(l, 0, ST_SHADOW_ANSWERED, 200, d, d, d + 7 * MS, 0);
	}
	st_load__finish(l, S0 + 1400ull * 1000 * MS, 0);
	a = st_load__agg(l, 0, 0);
	assert_int_equal(a->bucket_s, 4);
	assert_true(a->ntl <= ST_LOAD_BUCKETS_MAX);
	for (unsigned i = 0; i < ST_LOAD_BUCKETS_MAX; i++) {
		answered += a->tl[i].answered;
		due_n += a->tl[i].due;
		lat += a->tl[i].lat.counts ? a->tl[i].lat.total : 0;
	}
	assert_int_equal(answered, a->answered);
	assert_int_equal(due_n, a->due);
	assert_int_equal(lat, a->answered);
	/* seconds 1296 and 1299 are in bucket 324 */
	assert_int_equal(a->tl[1299 / 4].answered, 2);
	st_load__free(l);
}

/*
 * A run ends once nothing more can be due (and everything is answered): between the last due
 * request and the schedule's end. Its rate is over the schedule: 10 requests at 5/s answered
 * in 1.82 s are 5/s over 2 s, not 5.5/s. A run stopped before its schedule ran out (a signal)
 * is measured to when it stopped.
 */
static void test_elapsed(void **state)
{
	for (int stopped = 0; stopped < 2; stopped++) {
		struct st_load_config c = { .rate = 5, .duration_s = 2,
					    .pace = ST_LOAD_PACE_CONSTANT };
		struct st_load *l = mk(&c);
		uint32_t t = tag(l, "GET", "/a");
		unsigned n = stopped ? 5 : 10;
		uint64_t d = 0;

		for (unsigned i = 0; i < n; i++) {
			d = due(l, 0, S0);
			st_load_ops.taken(l, 0, d, d);
			done(l, t, ST_SHADOW_ANSWERED, 200, d, d, d + 2 * MS, 0);
		}
		if (!stopped)
			assert_int_equal(due(l, 0, S0), ST_SHADOW_NEVER); /* the schedule ran out */
		st_load__finish(l, d + 20 * MS, 1700000000ull * 1000000000 + d - S0 + 20 * MS);
		if (stopped) {
			assert_true(fabs(st_load__agg(l, 0, 0)->elapsed_s - 0.82) < 1e-9);
		} else {
			assert_true(fabs(st_load__agg(l, 0, 0)->elapsed_s - 2) < 1e-9);
			assert_true(fabs(st_load_agg_achieved(st_load__agg(l, 0, 0)) - 5) < 1e-9);
		}
		st_load__free(l);
	}
}

/*
 * Endpoints are named as tap compare names them: from the target with its secrets
 * overwritten by the outputs' redaction policy first (a fragment's token= is in the path
 * that names the endpoint); --no-redact shows the target as it is. A target over the stack
 * buffer is named the same way.
 */
static void test_endpoint_redacted(void **state)
{
	for (int none = 0; none < 2; none++) {
		struct st_redact_rules r = { .none = none };
		struct st_load_config c = { .rate = 5, .duration_s = 2,
					    .pace = ST_LOAD_PACE_CONSTANT, .redact = &r };
		struct st_load *l = mk(&c);
		const struct st_load_agg *a = st_load__agg(l, S0, 0);
		char *big = malloc(5000);
		uint32_t t1 = tag(l, "GET", "/reset#token=s3cr3t"), t2;

		memset(big, 'a', 5000);
		memcpy(big, "/big#token=s3cr3t&", 18);
		big[4999] = 0;
		t2 = tag(l, "GET", big);
		if (!none) {
			assert_null(strstr(a->ep[t1].name, "s3cr3t"));
			assert_non_null(strstr(a->ep[t1].name, "GET /reset#token="));
			assert_null(strstr(a->ep[t2].name, "s3cr3t"));
		} else {
			assert_string_equal(a->ep[t1].name, "GET /reset#token=s3cr3t");
			assert_non_null(strstr(a->ep[t2].name, "s3cr3t"));
		}
		free(big);
		st_load__free(l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constant),
		cmocka_unit_test(test_ramp),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_recorded),
		cmocka_unit_test(test_input_paced),
		cmocka_unit_test(test_feed),
		cmocka_unit_test(test_measure),
		cmocka_unit_test(test_steps_measure),
		cmocka_unit_test(test_timeline_compact),
		cmocka_unit_test(test_elapsed),
		cmocka_unit_test(test_endpoint_redacted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
