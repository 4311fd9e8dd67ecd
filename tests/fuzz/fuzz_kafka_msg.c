/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for the reader of Kafka messages (agent/stream/kafka_msg.c). Input: messages,
 * each as u8 partition (0..3), u32le length, bytes; then every connection is closed. Checked:
 * the reader's own checks keep the stream decoder from ever failing (-2 is a bug), every
 * connection opened is closed once, offsets are contiguous per direction; all memory given
 * back (ASan). Seeds (tests/fuzz/corpus/fuzz_kafka_msg) are messages the batcher wrote.
 * When bit 2 of the partition byte is set, an uncompressed message's checksum is made right
 * before it is read, so mutated records get past the checksum to the reader's record checks
 * and its translation (whoever can write to the topic can compute a checksum too).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "kafka_msg.h"
#include "fuzz_check.h"

struct cst {
	uint64_t next[2];
};

struct ctx {
	uint64_t opens, closes;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_open(void *x, struct st_reasm_conn *c, uint64_t ts)
{
	struct ctx *cx = x;

	cx->opens++;
	c->user = calloc(1, sizeof(struct cst));
	CHECK(c->user);
}

static void on_data(void *x, struct st_reasm_conn *c, int dir, uint64_t off, const uint8_t *d,
		    uint32_t len, uint64_t ts)
{
	struct cst *s = c->user;

	CHECK(dir == 0 || dir == 1);
	CHECK(len > 0 && len <= ST_STREAM_DATA_MAX);
	CHECK(off == s->next[dir]);
	s->next[dir] += len;
}

static void on_gap(void *x, struct st_reasm_conn *c, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct cst *s = c->user;

	CHECK(dir == 0 || dir == 1);
	CHECK(off == s->next[dir] && len > 0);
	s->next[dir] += len;
}

static void on_close(void *x, struct st_reasm_conn *c, enum st_reasm_end why, uint64_t ts)
{
	struct ctx *cx = x;

	cx->closes++;
	free(c->user);
	c->user = NULL;
}

static void on_mark(void *x, struct st_reasm_conn *c, uint64_t ts)
{
	struct cst *s = c->user;

	CHECK(s);
	CHECK(s->next[0] == c->bytes[0] + c->gap_bytes[0]);
	CHECK(s->next[1] == c->bytes[1] + c->gap_bytes[1]);
}

static const struct st_stream_ops ops = {
	.conn = { .open = on_open, .data = on_data, .gap = on_gap, .close = on_close },
	.mark = on_mark,
};

/* The checksum of an uncompressed message (kafka_msg.h): CRC32 of bytes 0..27, then of 32..end. */
static void seal(uint8_t *m, size_t len)
{
	uLong crc;

	if (len < 33 || memcmp(m, ST_KMSG_MAGIC, 5) || m[7] != ST_KMSG_CODEC_NONE)
		return;
	crc = crc32(0, m, 28);
	crc = crc32(crc, m + 32, (uInt)(len - 32));
	for (int i = 0; i < 4; i++)
		m[28 + i] = (uint8_t)(crc >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctx cx = { 0 };
	struct st_kmsg_reader *r = st_kmsg_reader__new(&ops, &cx, 64);
	char err[256];
	int rc;

	CHECK(r);
	while (size >= 5) {
		int32_t part = data[0] & 3;
		bool sealed = data[0] & 4;
		uint32_t len = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
			       (uint32_t)data[4] << 24;
		uint8_t *copy = NULL;

		data += 5;
		size -= 5;
		if (len > size)
			len = (uint32_t)size;
		if (sealed && (copy = malloc(len ? len : 1))) {
			memcpy(copy, data, len);
			seal(copy, len);
		}
		rc = st_kmsg_reader__feed(r, copy ? copy : data, len, part, err, sizeof(err));
		if (rc == -2)
			fprintf(stderr, "the decoder failed: %s\n", err);
		CHECK(rc != -2);
		free(copy);
		data += len;
		size -= len;
	}
	st_kmsg_reader__close_partition(r, 1, 0);
	st_kmsg_reader__close_partition(r, -1, 0);
	CHECK(cx.opens == cx.closes);
	st_kmsg_reader__free(r);
	return 0;
}
