/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kafka messages of the tee stream (docs/KAFKA.md): each message carries records of one
 * connection, decodable on its own. No librdkafka here: the batcher turns the stream
 * encoder's records (record mode, stream.h) into messages, the reader turns messages back
 * into the stream decoder's events; kafka.c moves them through Kafka.
 *
 * A message:
 *   0   "STKAF"  u8 major  u8 minor  u8 codec (0: records as they are, 1: zlib)
 *   8   u64 producer   (random, one per tee run: with the connection id, the key)
 *   16  u64 seq        (this connection's messages, 0, 1, ...)
 *   24  u32 raw_len    (bytes of the records, uncompressed)
 *   28  u32 crc32      (of the header but this field, then the records uncompressed)
 *   32  u8 host_len, host[host_len]   (the capture host)
 *   ..  the connection's OPEN record, as the stream encodes it (65 bytes)
 *   ..  the records (OPEN, DATA, GAP, END, CLOSE, MARK of that connection only), zlib'd whole
 *       when codec is 1
 * Integers little-endian. Key: "host/producer/id" (hex producer), so a connection's
 * messages go to one partition, in order.
 */
#ifndef ST_KAFKA_MSG_H
#define ST_KAFKA_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "stream.h"

#define ST_KMSG_MAGIC "STKAF"
#define ST_KMSG_MAJOR 1
#define ST_KMSG_MINOR 1 /* 1.1: MARK records */
#define ST_KMSG_CODEC_NONE 0
#define ST_KMSG_CODEC_ZLIB 1
#define ST_KMSG_OPEN_LEN 65 /* the stream's OPEN record, length and type included */
#define ST_KMSG_HOST_MAX 255
#define ST_KMSG_HDR_MAX (33 + ST_KMSG_HOST_MAX + ST_KMSG_OPEN_LEN)
/* Records in one message: at least one largest record, at most what a broker's default
 * message.max.bytes (1000000) takes compressed or not. */
#define ST_KMSG_RAW_MIN (128u << 10)
#define ST_KMSG_RAW_MAX (900u << 10)
#define ST_KMSG_RAW_DEFAULT (256u << 10)
#define ST_KMSG_KEY_MAX (ST_KMSG_HOST_MAX + 48)

/* ---- producer side ---------------------------------------------------------------------- */

/* A finished message: key (not NUL-terminated), the message, how many records and DATA bytes
 * it carries (what is lost if it is dropped). 0, or non-zero if it could not be taken (the
 * batcher counts it as dropped). */
typedef int (*st_kmsg_emit_fn)(void *ctx, const char *key, size_t klen, const uint8_t *msg,
			       size_t len, uint32_t records, uint64_t data_bytes);

#define ST_KMSG_BATCH_STATS(X, T)                                                              \
	X(T, kafka_messages, COUNTER, "Kafka messages made (records of one connection each)") \
	X(T, kafka_records, COUNTER, "stream records put in them")                            \
	X(T, kafka_raw_bytes, COUNTER, "their record bytes before compression")               \
	X(T, kafka_msg_bytes, COUNTER, "their bytes as produced (compressed, headers)")       \
	X(T, kafka_refused_msgs, COUNTER, "messages the producer's queue refused (dropped whole)") \
	X(T, kafka_refused_records, COUNTER, "records in those")                              \
	X(T, kafka_refused_bytes, COUNTER, "stream data bytes in those")                      \
	X(T, kafka_orphan_records, DETAIL, "records of a connection never opened (dropped)")  \
	X(T, kafka_batch_peak, GAUGE_BYTES, "most record bytes waiting in batches at once")

struct st_kmsg_batch_stats {
	ST_KMSG_BATCH_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_kmsg_batch_stat);

struct st_kmsg_batcher;

/* host: the capture host (cut at ST_KMSG_HOST_MAX); producer: this run's random id;
 * raw_max: record bytes per message (ST_KMSG_RAW_MIN .. ST_KMSG_RAW_MAX); level: zlib level
 * 1..9, or 0 for no compression (the producer compresses). NULL with errno. */
struct st_kmsg_batcher *st_kmsg_batcher__new(const char *host, uint64_t producer, size_t raw_max,
					     int level, st_kmsg_emit_fn emit, void *ctx);
/* A record from the stream encoder (struct st_stream_rec_ops.record): batched with its
 * connection's; a full batch, and a connection's CLOSE, make a message at once. */
int st_kmsg_batcher__record(struct st_kmsg_batcher *b, const uint8_t *fixed, size_t flen,
			    const uint8_t *data, size_t dlen);
/* Every batch holding records becomes a message. */
int st_kmsg_batcher__flush(struct st_kmsg_batcher *b);
/* Record bytes waiting in batches. */
uint64_t st_kmsg_batcher__pending(const struct st_kmsg_batcher *b);
void st_kmsg_batcher__stats(const struct st_kmsg_batcher *b, struct st_kmsg_batch_stats *s);
void st_kmsg_batcher__free(struct st_kmsg_batcher *b);

/* ---- consumer side ---------------------------------------------------------------------- */

#define ST_KMSG_READ_STATS(X, T)                                                               \
	X(T, kafka_messages, COUNTER, "Kafka messages read")                                  \
	X(T, kafka_bad_messages, COUNTER, "messages refused: not a shadowtap message, damaged") \
	X(T, kafka_joined_conns, COUNTER, "connections first seen after their start (rebalance, restart, a lost message)") \
	X(T, kafka_moved_conns, COUNTER, "connections closed here: their partition moved away") \
	X(T, kafka_dup_records, COUNTER, "records seen twice (a producer retry, replayed offsets): skipped") \
	X(T, kafka_lost_bytes, COUNTER, "stream bytes missing between messages (dropped or failed at the producer): gaps") \
	X(T, kafka_refused_conns, COUNTER, "connections refused: too many open at once")      \
	X(T, kafka_idle_conns, COUNTER, "connections closed here: no record for 10 minutes of their partition's time (their CLOSE was lost)")

struct st_kmsg_read_stats {
	ST_KMSG_READ_STATS(ST_STAT_FIELD, _)
};
ST_STAT_TABLE_DECLARE(st_kmsg_read_stat);

/* A connection with no record for this long in its partition's time (the latest record
 * time read from that partition) is closed (ST_END_TIMEOUT): its CLOSE was lost. Longer than
 * any common keep-alive timeout (nginx 75 s, load balancers up to 350 s), so a connection
 * that is only quiet is not cut; if it speaks again, it is opened joined and its replay
 * resumes at its next exchange boundary. Checked each time the reader's time moved on by
 * ST_KMSG_IDLE_SWEEP_NS; partitions numbered past ST_KMSG_PARTITIONS_TIMED are not timed. */
#define ST_KMSG_IDLE_NS (600ull * 1000000000ull)
#define ST_KMSG_IDLE_SWEEP_NS (10ull * 1000000000ull)
#define ST_KMSG_PARTITIONS_TIMED (1 << 16)
/* A closed connection is remembered (its records read again are skipped, never replayed
 * again) for ST_KMSG_TOMB_NS of its partition's time, at most ST_KMSG_TOMBS_MAX at once (the
 * oldest forgotten first): a partition is read again from its last commit, at most seconds
 * back (auto commit every second; a commit that fails at a rebalance waits for the next). */
#define ST_KMSG_TOMB_NS (120ull * 1000000000ull)
#define ST_KMSG_TOMBS_MAX (64u << 10)

struct st_kmsg_reader;

/* Events go to ops (as a tee stream's decoder gives them; connection ids are the reader's
 * own, 1, 2, ...); max_conns: open at once (0: the stream's default). NULL with errno. */
struct st_kmsg_reader *st_kmsg_reader__new(const struct st_stream_ops *ops, void *ctx,
					   size_t max_conns);
/*
 * One message from partition. Checked whole before any event (header, checksum, every
 * record's size, type, connection and fields); a bad message gives -1 with one line in err
 * and no event. A connection first seen in a message without its OPEN is opened joined
 * (ST_REASM_F_JOINED) with what it missed as a gap; records already seen are skipped;
 * missing bytes between messages become gaps (ST_SGAP_DROPPED). -2: the decoder failed
 * (a bug: err says what).
 */
int st_kmsg_reader__feed(struct st_kmsg_reader *r, const uint8_t *msg, size_t len,
			 int32_t partition, char *err, size_t errlen);
/* Closes (ST_END_FLUSH) the connections of partition (-1: all): it moved to another reader,
 * or the input ends. Returns how many. */
size_t st_kmsg_reader__close_partition(struct st_kmsg_reader *r, int32_t partition, uint64_t ts);
void st_kmsg_reader__stats(const struct st_kmsg_reader *r, struct st_kmsg_read_stats *s);
void st_kmsg_reader__free(struct st_kmsg_reader *r);

/* The message's header fields (tests, tools). 0, or -1 with err set. */
struct st_kmsg_info {
	unsigned major, minor, codec;
	uint64_t producer, seq, conn;
	uint32_t raw_len;
	char host[ST_KMSG_HOST_MAX + 1];
	size_t hdr_len;
};
int st_kmsg_parse_header(const uint8_t *msg, size_t len, struct st_kmsg_info *i, char *err,
			 size_t errlen);

#endif /* ST_KAFKA_MSG_H */
