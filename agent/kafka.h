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
	int from;                   /* consumer: 0 earliest, 1 latest */
	const char *opt_file;
	const char *kv[ST_KAFKA_KV_MAX]; /* --kafka-opt key=value, as given */
	unsigned n_kv;
	uint64_t msg_max;           /* record bytes per message (0: ST_KMSG_RAW_DEFAULT) */
};

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
	X(T, kafka_inflight_peak, GAUGE, "most message bytes waiting for Kafka at once")

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
	X(T, kafka_lost_assignments, COUNTER, "times this receiver was taken out of the group (stalled): its partitions' next owners may replay again")

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

#endif /* ST_KAFKA_H */
