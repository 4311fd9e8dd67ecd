/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tee --kafka and receive --kafka (docs/KAFKA.md): the tee stream's records through Kafka,
 * with librdkafka. The producer is a stream encoder in record mode (stream.h) whose records
 * are batched per connection into messages (kafka_msg.h) and produced without ever
 * waiting: its queue is bounded in bytes, what does not fit is dropped whole and counted.
 * The consumer is one member of a consumer group; its messages become the stream decoder's
 * events, offsets are stored once those events were handed to the outputs.
 */
#ifndef ST_KAFKA_H
#define ST_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_msg.h"
#include "optparse.h"
#include "stats.h"
#include "stream.h"

#define ST_KAFKA_KV_MAX 64

/* What --kafka, --topic, --kafka-opt ... say. */
struct st_kafka_conf {
	const char *brokers;
	const char *topic;
	const char *group;          /* consumer */
	int from;                   /* consumer: enum st_kafka_from */
	int64_t from_ms;            /* ST_KAFKA_FROM_TIME: unix time, ms */
	const char *opt_file;
	const char *kv[ST_KAFKA_KV_MAX]; /* --kafka-opt key=value, as given */
	unsigned n_kv;
	uint64_t msg_max;           /* record bytes per message (0: ST_KMSG_RAW_DEFAULT) */
};

/* Where a group without committed offsets starts (--from). */
enum st_kafka_from {
	ST_KAFKA_FROM_EARLIEST = 0,
	ST_KAFKA_FROM_LATEST,
	ST_KAFKA_FROM_TIME, /* the first message at or after from_ms */
};

/*
 * --from's value: earliest, latest, or a time: RFC 3339 with its zone
 * (2026-11-30T18:00:00Z, 2026-11-30 19:00:00.250+01:00; seconds optional, a fraction to the
 * millisecond), @SECONDS (unix time; a bare number is refused as ambiguous), or -DURATION
 * before now_ms (-30s, -10m, -2h, -1d, -1h30m). 0 with *from and *ms set (*ms only for a
 * time), or -1 with one line in err.
 */
int st_kafka_parse_from(const char *s, int64_t now_ms, int *from, int64_t *ms, char *err,
			size_t errlen);

/* --kafka, --topic, --kafka-opt, --kafka-opt-file (both commands); --kafka-message-kb (tee);
 * --group, --from (receive). Rows write into a struct st_kafka_conf. */
extern const struct st_opt st_kafka_opts[];
extern const size_t st_kafka_opts_n;
extern const struct st_opt st_kafka_producer_opts[];
extern const size_t st_kafka_producer_opts_n;
extern const struct st_opt st_kafka_consumer_opts[];
extern const size_t st_kafka_consumer_opts_n;

/* After parsing: one line on stderr and false when the options do not go together (cmd
 * names the command). Only --kafka given is checked (the caller tells if it is in use). */
bool st_kafka_conf_check(const struct st_kafka_conf *k, bool consumer, const char *cmd);
/* The settings as librdkafka will take them (--kafka-opt, --kafka-opt-file): false after one
 * line on stderr when it refuses one (a usage error, found before anything starts). */
bool st_kafka_conf_valid(const struct st_kafka_conf *k, const char *cmd);

/* A configuration key that holds a secret: accepted from --kafka-opt-file only. */
bool st_kafka_key_secret(const char *key);

/* ---- producer ----------------------------------------------------------------------------- */

#define ST_KAFKA_PROD_STATS(X, T)                                                              \
	X(T, kafka_delivered_msgs, COUNTER, "messages Kafka acknowledged")                    \
	X(T, kafka_delivered_bytes, COUNTER, "their bytes")                                   \
	X(T, kafka_delivered_records, COUNTER, "stream records in them")                      \
	X(T, kafka_failed_msgs, COUNTER, "messages Kafka did not take (delivery failed, timed out, or unsent at the end)") \
	X(T, kafka_failed_records, COUNTER, "stream records in them")                         \
	X(T, kafka_failed_bytes, COUNTER, "stream data bytes in them")                        \
	X(T, kafka_inflight_peak, GAUGE_BYTES, "most message bytes waiting for Kafka at once")

struct st_kafka_prod_stats {
	ST_KAFKA_PROD_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_kafka_prod_stat);

struct st_kafka_producer;

/*
 * Connects nothing yet (librdkafka connects in its threads). max_queue: bytes batched and
 * waiting for Kafka at most (librdkafka's queue.buffering.max.kbytes is set from it);
 * level: zlib level of the messages, unless the configuration names a compression.codec (then
 * the messages are not compressed by shadowtap). NULL after one line on stderr (cmd names
 * the command).
 */
struct st_kafka_producer *st_kafka_producer__new(const struct st_kafka_conf *k, uint64_t max_queue,
						 int level, const char *cmd);
/* The stream encoder's record ops for the producer (ctx: the producer):
 * st_stream_enc__new_records(&st_kafka_producer_rec_ops, p). */
extern const struct st_stream_rec_ops st_kafka_producer_rec_ops;
/* Delivery reports; called from the tick (the encoder's flush calls it too). */
void st_kafka_producer__poll(struct st_kafka_producer *p);
/* Everything batched is produced, then waits up to wait_ms for Kafka to take it; what is
 * left is counted as failed. 0, or -1 when messages were lost. */
int st_kafka_producer__close(struct st_kafka_producer *p, int wait_ms);
void st_kafka_producer__stats(struct st_kafka_producer *p, struct st_kafka_prod_stats *s,
			      struct st_kmsg_batch_stats *b);
void st_kafka_producer__free(struct st_kafka_producer *p);

/* ---- consumer ----------------------------------------------------------------------------- */

#define ST_KAFKA_CONS_STATS(X, T)                                                              \
	X(T, kafka_rebalances, COUNTER, "partition assignments received")                     \
	X(T, kafka_consume_errors, COUNTER, "errors the consumer reported (and went on)")      \
	X(T, kafka_commits, COUNTER, "offset commits")                                        \
	X(T, kafka_lost_assignments, COUNTER, "times this receiver was taken out of the group (stalled): its partitions' next owners may replay again") \
	X(T, kafka_time_offsets, COUNTER, "partitions started at --from TIME's offset")       \
	X(T, kafka_time_ends, COUNTER, "partitions started at their end: nothing at or after --from TIME, or the look-up failed (warned)")

struct st_kafka_cons_stats {
	ST_KAFKA_CONS_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_kafka_cons_stat);

struct st_kafka_consumer;

/* Joins the group and subscribes; events go to ops. NULL after one line on stderr. */
struct st_kafka_consumer *st_kafka_consumer__new(const struct st_kafka_conf *k,
						 const struct st_stream_ops *ops, void *ctx,
						 const char *cmd);
/* Hands at most max messages to the outputs (0 when none were waiting; -1: a fatal error,
 * said). */
int st_kafka_consumer__poll(struct st_kafka_consumer *c, int max);
/* Closes every connection (the outputs keep them), commits what was handed over and leaves
 * the group. */
void st_kafka_consumer__close(struct st_kafka_consumer *c, uint64_t ts);
void st_kafka_consumer__stats(const struct st_kafka_consumer *c, struct st_kafka_cons_stats *s,
			      struct st_kmsg_read_stats *r);
void st_kafka_consumer__free(struct st_kafka_consumer *c);

/*
 * --from TIME at an assignment (the rebalance callback), behind an interface so the rule is
 * tested without a broker. parts: the partitions assigned. committed(ctx, list, timeout)
 * fills each element's offset with the group's committed offset (negative: none), as
 * rd_kafka_committed(); times(ctx, list, timeout) turns each element's offset, a timestamp
 * in ms, into the first offset at or after it (-1: none) or an element error, as
 * rd_kafka_offsets_for_times(). On return every element of parts has the offset to start
 * from: the committed one where there is one (a group resumes), else the time's, else the
 * partition's end (RD_KAFKA_OFFSET_END: past the end, or the look-up failed).
 */
struct rd_kafka_topic_partition_list_s;
typedef int (*st_kafka_lookup_fn)(void *ctx, struct rd_kafka_topic_partition_list_s *parts,
				  int timeout_ms);
struct st_kafka_from_result {
	unsigned committed; /* resumed from a committed offset */
	unsigned found;     /* at the time's offset */
	unsigned end;       /* at the end: nothing at or after the time */
	unsigned failed;    /* at the end: a look-up failed (why says which) */
};
void st_kafka_from_resolve(struct rd_kafka_topic_partition_list_s *parts, int64_t ts_ms,
			   st_kafka_lookup_fn committed, st_kafka_lookup_fn times, void *ctx,
			   int timeout_ms, struct st_kafka_from_result *res, char *why,
			   size_t whylen);

#endif /* ST_KAFKA_H */
