/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libFuzzer target for agent/http/grpc.c. Input: one config byte (bits 0-1: the coding,
 * identity, gzip, deflate or another; bit 2: small caps, 64-byte messages decoded to 256 at
 * most), then the bytes of one stream direction's DATA.
 *
 * The stream is read whole, byte by byte and at random splits: the same messages and errors,
 * every byte consumed, memory within the caps. An independent walk of the prefixes says where
 * each message is: an uncompressed one must come out as exactly its bytes, a compressed one
 * within max_decoded, a refused one skipped by its length, a bad flag byte ending it all.
 * The same bytes are also read as a grpc-status and a grpc-message: the message never grows
 * when decoded, is NUL-terminated, and is the bytes as sent when they hold no '%'.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "grpc.h"

struct tev {
	uint8_t type, err, compressed;
	uint32_t wire_len;
	uint64_t index, len, h;
};

struct trace {
	struct tev *e;
	size_t n, cap;
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static void push(struct trace *t, const struct st_grpc_event *ev)
{
	if (ev->type == ST_GRPC_EV_NEED_MORE)
		return;
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->e = realloc(t->e, t->cap * sizeof(*t->e));
		CHECK(t->e);
	}
	t->e[t->n++] = (struct tev){ .type = (uint8_t)ev->type, .err = (uint8_t)ev->err,
				     .compressed = ev->compressed, .wire_len = ev->wire_len,
				     .index = ev->index, .len = ev->len,
				     .h = ev->type == ST_GRPC_EV_MSG ? fnv(ev->data, ev->len) : 0 };
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void run(const uint8_t *d, size_t size, enum st_grpc_coding coding, uint32_t max_msg,
		uint64_t max_dec, int mode, uint64_t seed, struct trace *t)
{
	struct st_grpc_reader r;
	struct st_grpc_event ev;
	size_t pos = 0;

	st_grpc_init(&r, max_msg, max_dec);
	st_grpc_set_coding(&r, coding);
	while (pos < size) {
		size_t n = mode == 0 ? size - pos : mode == 1 ? 1 : 1 + rng(&seed) % 300;
		const uint8_t *p;

		if (n > size - pos)
			n = size - pos;
		p = d + pos;
		pos += n;
		for (int guard = 0;; guard++) {
			size_t k = st_grpc_feed(&r, p, n, &ev);

			CHECK(k <= n);
			if (ev.type == ST_GRPC_EV_MSG) {
				CHECK(ev.len <= (ev.compressed ? r.max_decoded : ev.wire_len));
				CHECK(ev.data);
			}
			CHECK(st_grpc_mem(&r) <= (size_t)r.max_msg + 2 * r.max_decoded + 8192);
			push(t, &ev);
			p += k;
			n -= k;
			if (ev.type == ST_GRPC_EV_NEED_MORE) {
				CHECK(n == 0);
				break;
			}
			CHECK(guard < 1000000);
		}
	}
	st_grpc_end(&r, &ev);
	push(t, &ev);
	CHECK(r.bytes == size);
	st_grpc_free(&r);
}

/* The prefixes walked independently: each event of t must be where the walk says. */
static void check_walk(const uint8_t *d, size_t size, const struct trace *t, uint32_t max_msg)
{
	size_t pos = 0, i = 0;

	for (;; i++) {
		uint32_t len;
		uint8_t flag;

		if (pos == size) {
			CHECK(i == t->n);
			return;
		}
		CHECK(i < t->n);
		CHECK(t->e[i].index == i);
		if (size - pos < ST_GRPC_PREFIX) {
			CHECK(t->e[i].type == ST_GRPC_EV_ERROR && t->e[i].err == ST_GRPC_E_TRUNCATED);
			CHECK(i + 1 == t->n);
			return;
		}
		flag = d[pos];
		len = (uint32_t)d[pos + 1] << 24 | (uint32_t)d[pos + 2] << 16 |
		      (uint32_t)d[pos + 3] << 8 | d[pos + 4];
		pos += ST_GRPC_PREFIX;
		if (flag > 1) {
			CHECK(t->e[i].type == ST_GRPC_EV_ERROR && t->e[i].err == ST_GRPC_E_FLAG);
			CHECK(i + 1 == t->n);
			return;
		}
		CHECK(t->e[i].wire_len == len && t->e[i].compressed == flag);
		if (len > max_msg) {
			CHECK(t->e[i].type == ST_GRPC_EV_ERROR && t->e[i].err == ST_GRPC_E_TOO_LARGE);
			CHECK(i + 1 == t->n || size - pos >= len);
			if (size - pos < len)
				return;
			pos += len;
			continue;
		}
		if (size - pos < len) {
			CHECK(t->e[i].type == ST_GRPC_EV_ERROR && t->e[i].err == ST_GRPC_E_TRUNCATED);
			CHECK(i + 1 == t->n);
			return;
		}
		if (!flag) {
			CHECK(t->e[i].type == ST_GRPC_EV_MSG);
			CHECK(t->e[i].len == len && t->e[i].h == fnv(d + pos, len));
		} else if (t->e[i].type == ST_GRPC_EV_ERROR) {
			CHECK(t->e[i].err == ST_GRPC_E_CODING || t->e[i].err == ST_GRPC_E_INFLATE ||
			      t->e[i].err == ST_GRPC_E_BOMB);
		}
		pos += len;
	}
}

static void check_status(const uint8_t *d, size_t size)
{
	struct st_h2_field f[2] = {
		{ .name = "grpc-status", .name_len = 11, .value = (const char *)d,
		  .value_len = (uint32_t)(size < 12 ? size : 12) },
		{ .name = "grpc-message", .name_len = 12, .value = (const char *)d,
		  .value_len = (uint32_t)size },
	};
	struct st_h2_head h = { .fields = f, .nfields = 2, .flags = ST_H2_HF_END_STREAM };
	struct st_grpc_status s;
	size_t caps[3] = { 1, 7, size + 1 };
	char *buf = malloc(size + 1);

	CHECK(buf);
	for (int k = 0; k < 3; k++) {
		CHECK(st_grpc_read_status(&h, buf, caps[k], &s));
		CHECK(s.present && !s.trailers_only);
		CHECK(s.message == buf && s.message_len < caps[k] && buf[s.message_len] == 0);
		CHECK(s.message_len <= size);
		CHECK(s.valid ? s.code >= 0 : s.code == -1);
		CHECK(st_grpc_code_name(s.code)[0]);
		if (k == 2) {
			CHECK(!s.message_cut);
			if (!memchr(d, '%', size))
				CHECK(s.message_len == size && !memcmp(buf, d, size));
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace t[3];
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	enum st_grpc_coding coding;
	uint32_t max_msg;
	uint64_t max_dec;

	if (size < 1 || size > (1 << 20))
		return 0;
	coding = (enum st_grpc_coding)(data[0] & 3);
	max_msg = data[0] & 4 ? 64 : 0;
	max_dec = data[0] & 4 ? 256 : 0;
	data++;
	size--;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 0x100000001b3ull;
	if (!seed)
		seed = 1;
	memset(t, 0, sizeof(t));
	for (int m = 0; m < 3; m++)
		run(data, size, coding, max_msg, max_dec, m, seed, &t[m]);
	for (int m = 1; m < 3; m++) {
		CHECK(t[m].n == t[0].n);
		for (size_t i = 0; i < t[0].n; i++) {
			const struct tev *a = &t[0].e[i], *b = &t[m].e[i];

			CHECK(a->type == b->type && a->err == b->err && a->compressed == b->compressed);
			CHECK(a->wire_len == b->wire_len && a->index == b->index && a->len == b->len);
			CHECK(a->h == b->h);
		}
	}
	check_walk(data, size, &t[0], max_msg ? max_msg : ST_GRPC_MAX_MSG_DEFAULT);
	check_status(data, size);
	for (int m = 0; m < 3; m++)
		free(t[m].e);
	return 0;
}
