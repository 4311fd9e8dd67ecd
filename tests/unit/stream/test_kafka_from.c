/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * receive --kafka --from (kafka.h): the TIME forms a user types (RFC 3339 with its zone,
 * @SECONDS, -DURATION) and what is refused, one line each; and the rule at an assignment,
 * with the group's committed offsets and the broker's offsets-for-times answered by fakes
 * (librdkafka's mock cluster does not answer ListOffsets by timestamp): a partition the
 * group committed resumes there, the others start at the first message at or after the time,
 * at their end past the last one or when a look-up fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>

#include "kafka.h"

#define NOW_MS 1796061600000ll /* 2026-11-30T18:00:00Z */

static int64_t ok(const char *s)
{
	char err[256] = "";
	int from = -1;
	int64_t ms = -1;

	if (st_kafka_parse_from(s, NOW_MS, &from, &ms, err, sizeof(err)))
		fail_msg("'%s' refused: %s", s, err);
	assert_int_equal(from, ST_KAFKA_FROM_TIME);
	return ms;
}

static void bad(const char *s, const char *says)
{
	char err[256] = "";
	int from = -1;
	int64_t ms = -1;

	assert_int_equal(st_kafka_parse_from(s, NOW_MS, &from, &ms, err, sizeof(err)), -1);
	assert_int_equal(from, -1);
	assert_non_null(strstr(err, s));
	if (!strstr(err, says))
		fail_msg("'%s': '%s' does not say '%s'", s, err, says);
	assert_null(strchr(err, '\n'));
}

static void test_parse_words(void **state)
{
	char err[64];
	int from = -1;
	int64_t ms = 7;

	assert_int_equal(st_kafka_parse_from("earliest", NOW_MS, &from, &ms, err, sizeof(err)), 0);
	assert_int_equal(from, ST_KAFKA_FROM_EARLIEST);
	assert_int_equal(st_kafka_parse_from("latest", NOW_MS, &from, &ms, err, sizeof(err)), 0);
	assert_int_equal(from, ST_KAFKA_FROM_LATEST);
	assert_int_equal(ms, 7);
}

static void test_parse_rfc3339(void **state)
{
	/* values from `date -u -d ... +%s` */
	assert_int_equal(ok("2026-11-30T18:00:00Z"), 1796061600000ll);
	assert_int_equal(ok("2026-11-30t18:00:00z"), 1796061600000ll);
	assert_int_equal(ok("2026-11-30 18:00:00Z"), 1796061600000ll);
	assert_int_equal(ok("2026-11-30T18:00Z"), 1796061600000ll);
	assert_int_equal(ok("2026-11-30T19:00:00+01:00"), 1796061600000ll);
	assert_int_equal(ok("2026-11-30T19:00:00+0100"), 1796061600000ll);
	assert_int_equal(ok("2026-11-30T19:00:00+01"), 1796061600000ll);
	assert_int_equal(ok("2026-11-30T12:30:00-05:30"), 1796061600000ll);
	assert_int_equal(ok("2024-02-29T23:59:59.5-05:30"), 1709270999500ll);
	assert_int_equal(ok("2024-02-29T23:59:59.123456Z"), 1709251199123ll);
	assert_int_equal(ok("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(ok("2000-03-01T00:00:00Z"), 951868800000ll);
	assert_int_equal(ok("2100-02-28T00:00:00Z"), 4107456000000ll);
	/* a leap second is the next second */
	assert_int_equal(ok("2016-12-31T23:59:60Z"), 1483228800000ll);
	assert_int_equal(ok("9999-12-31T23:59:59Z"), 253402300799000ll);
}

static void test_parse_unix_and_relative(void **state)
{
	assert_int_equal(ok("@1796061600"), 1796061600000ll);
	assert_int_equal(ok("@0"), 0);
	assert_int_equal(ok("@1796061600.25"), 1796061600250ll);
	assert_int_equal(ok("-30s"), NOW_MS - 30000);
	assert_int_equal(ok("-10m"), NOW_MS - 600000);
	assert_int_equal(ok("-2h"), NOW_MS - 7200000);
	assert_int_equal(ok("-1d"), NOW_MS - 86400000);
	assert_int_equal(ok("-1h30m"), NOW_MS - 5400000);
	assert_int_equal(ok("-0s"), NOW_MS);
}

static void test_parse_refused(void **state)
{
	bad("yesterday", "not earliest, latest or a time");
	bad("", "not earliest, latest or a time");
	bad("Earliest", "not earliest, latest or a time");
	bad("1796061600", "a bare number is ambiguous");
	bad("1796061600", "@1796061600");
	bad("2026-11-30T18:00:00", "needs its zone");
	bad("2026-11-30", "needs a time of day");
	bad("2026-11-30T18:00:00+", "not earliest, latest or a time");
	bad("2026-11-30T18:00:00+01:", "not earliest, latest or a time");
	bad("2026-11-30T18:00:00+01:0", "not earliest, latest or a time");
	bad("2026-11-30T18:00:00+1", "not earliest, latest or a time");
	bad("2026-11-30T18:00:00+01:0012", "not earliest, latest or a time");
	bad("2026-11-30T18:00:00+010", "not earliest, latest or a time");
	bad("2026-11-30T18:00:00Zjunk", "not earliest, latest or a time");
	bad("2026-11-30T18:00:00.Z", "not earliest, latest or a time");
	bad("2026-11-30T18Z", "not earliest, latest or a time");
	bad("26-11-30T18:00:00Z", "not earliest, latest or a time");
	bad("2026-13-01T00:00:00Z", "not a valid date");
	bad("2026-00-01T00:00:00Z", "not a valid date");
	bad("2026-02-29T00:00:00Z", "not a valid date"); /* 2026 is no leap year */
	bad("2100-02-29T00:00:00Z", "not a valid date"); /* nor is 2100 */
	bad("2026-04-31T00:00:00Z", "not a valid date");
	bad("2026-11-30T24:00:00Z", "not a valid date");
	bad("2026-11-30T18:60:00Z", "not a valid date");
	bad("2026-11-30T18:00:61Z", "not a valid date");
	bad("2026-11-30T18:00:00+24:00", "not a valid date");
	bad("1969-12-31T23:59:59Z", "before 1970");
	bad("1970-01-01T00:30:00+01:00", "before 1970");
	bad("@", "not earliest, latest or a time");
	bad("@-5", "not earliest, latest or a time");
	bad("@12x", "not earliest, latest or a time");
	bad("@99999999999999", "out of range");
	bad("-10", "unit");
	bad("-10w", "unit");
	bad("-1h30", "unit");
	bad("-m", "not earliest, latest or a time");
	bad("-100000000d", "out of range");
	bad("-60000d", "out of range"); /* before 1970 */
}

/* ---- the rule at an assignment ---------------------------------------------------------- */

/* The cluster the fakes answer for: per partition, the group's committed offset (-1: none)
 * and the timestamps of its messages (offset = index, start_offset first). */
struct fake {
	int64_t committed[4];
	int64_t ts[4][8];
	int n[4];
	int64_t start[4];
	int committed_err, times_err, part_err; /* part_err: partition 3's own error */
	int committed_calls, times_calls, times_asked;
};

static int fake_committed(void *ctx, rd_kafka_topic_partition_list_t *l, int timeout_ms)
{
	struct fake *f = ctx;

	f->committed_calls++;
	if (f->committed_err)
		return f->committed_err;
	for (int i = 0; i < l->cnt; i++)
		l->elems[i].offset = f->committed[l->elems[i].partition] >= 0 ?
					     f->committed[l->elems[i].partition] :
					     RD_KAFKA_OFFSET_INVALID;
	return 0;
}

static int fake_times(void *ctx, rd_kafka_topic_partition_list_t *l, int timeout_ms)
{
	struct fake *f = ctx;

	f->times_calls++;
	f->times_asked += l->cnt;
	if (f->times_err)
		return f->times_err;
	for (int i = 0; i < l->cnt; i++) {
		int p = l->elems[i].partition, j;
		int64_t want = l->elems[i].offset;

		if (p == 3 && f->part_err) {
			l->elems[i].err = f->part_err;
			continue;
		}
		for (j = 0; j < f->n[p] && f->ts[p][j] < want; j++)
			;
		/* Kafka: the first offset whose timestamp is at or after, else -1 */
		l->elems[i].offset = j < f->n[p] ? f->start[p] + j : -1;
	}
	return 0;
}

static rd_kafka_topic_partition_list_t *assignment(void)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);

	for (int p = 0; p < 4; p++)
		rd_kafka_topic_partition_list_add(l, "tee", p)->offset = RD_KAFKA_OFFSET_INVALID;
	return l;
}

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	for (int p = 0; p < 4; p++) {
		f->committed[p] = -1;
		f->n[p] = 6;
		f->start[p] = 100 * p;
		for (int j = 0; j < 6; j++) /* batch one at 1000.., batch two at 5000.. */
			f->ts[p][j] = j < 3 ? 1000 + j : 5000 + j;
	}
}

static void test_resolve_between_batches(void **state)
{
	rd_kafka_topic_partition_list_t *l = assignment();
	struct st_kafka_from_result r;
	struct fake f;
	char why[128];

	fake_init(&f);
	f.committed[1] = 142; /* the group committed partition 1 */
	f.n[2] = 3;           /* partition 2 has only the first batch */
	st_kafka_from_resolve(l, 3000, fake_committed, fake_times, &f, 100, &r, why, sizeof(why));
	assert_int_equal(l->elems[0].offset, 3);       /* the second batch's first */
	assert_int_equal(l->elems[1].offset, 142);     /* resumed */
	assert_int_equal(l->elems[2].offset, RD_KAFKA_OFFSET_END); /* past its end */
	assert_int_equal(l->elems[3].offset, 303);
	assert_int_equal(r.committed, 1);
	assert_int_equal(r.found, 2);
	assert_int_equal(r.end, 1);
	assert_int_equal(r.failed, 0);
	assert_int_equal(f.times_asked, 3); /* the committed partition is not looked up */
	rd_kafka_topic_partition_list_destroy(l);

	/* before everything: each partition's first message; an exact timestamp is included */
	l = assignment();
	fake_init(&f);
	st_kafka_from_resolve(l, 0, fake_committed, fake_times, &f, 100, &r, why, sizeof(why));
	for (int p = 0; p < 4; p++)
		assert_int_equal(l->elems[p].offset, 100 * p);
	rd_kafka_topic_partition_list_destroy(l);
	l = assignment();
	st_kafka_from_resolve(l, 5004, fake_committed, fake_times, &f, 100, &r, why, sizeof(why));
	for (int p = 0; p < 4; p++)
		assert_int_equal(l->elems[p].offset, 100 * p + 4);
	rd_kafka_topic_partition_list_destroy(l);

	/* every partition committed: no time look-up at all */
	l = assignment();
	fake_init(&f);
	for (int p = 0; p < 4; p++)
		f.committed[p] = 7 + p;
	st_kafka_from_resolve(l, 3000, fake_committed, fake_times, &f, 100, &r, why, sizeof(why));
	assert_int_equal(f.times_calls, 0);
	assert_int_equal(r.committed, 4);
	for (int p = 0; p < 4; p++)
		assert_int_equal(l->elems[p].offset, 7 + p);
	rd_kafka_topic_partition_list_destroy(l);
}

static void test_resolve_failures(void **state)
{
	rd_kafka_topic_partition_list_t *l = assignment();
	struct st_kafka_from_result r;
	struct fake f;
	char why[128];

	/* the committed offsets unknown: every partition left to the group's offset or
	 * auto.offset.reset (latest), no time look-up */
	fake_init(&f);
	f.committed_err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	st_kafka_from_resolve(l, 3000, fake_committed, fake_times, &f, 100, &r, why, sizeof(why));
	assert_int_equal(f.times_calls, 0);
	assert_int_equal(r.failed, 4);
	for (int p = 0; p < 4; p++)
		assert_int_equal(l->elems[p].offset, RD_KAFKA_OFFSET_INVALID);
	assert_non_null(strstr(why, "committed"));
	rd_kafka_topic_partition_list_destroy(l);

	/* the time look-up fails whole: the end, never the beginning */
	l = assignment();
	fake_init(&f);
	f.committed[0] = 9;
	f.times_err = RD_KAFKA_RESP_ERR__TIMED_OUT;
	st_kafka_from_resolve(l, 3000, fake_committed, fake_times, &f, 100, &r, why, sizeof(why));
	assert_int_equal(l->elems[0].offset, 9);
	for (int p = 1; p < 4; p++)
		assert_int_equal(l->elems[p].offset, RD_KAFKA_OFFSET_END);
	assert_int_equal(r.committed, 1);
	assert_int_equal(r.failed, 3);
	assert_int_equal(r.found + r.end, 0);
	rd_kafka_topic_partition_list_destroy(l);

	/* one partition's own error */
	l = assignment();
	fake_init(&f);
	f.part_err = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
	st_kafka_from_resolve(l, 3000, fake_committed, fake_times, &f, 100, &r, why, sizeof(why));
	assert_int_equal(l->elems[3].offset, RD_KAFKA_OFFSET_END);
	assert_int_equal(r.failed, 1);
	assert_int_equal(r.found, 3);
	assert_non_null(strstr(why, "partition 3"));
	rd_kafka_topic_partition_list_destroy(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_words),
		cmocka_unit_test(test_parse_rfc3339),
		cmocka_unit_test(test_parse_unix_and_relative),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_resolve_between_batches),
		cmocka_unit_test(test_resolve_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
