/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The HTTP/2 engines' throughput on one core: a captured h2c connection of gRPC unary calls
 * (written once by libnghttp2's client and server sessions) framed by h2.c, each stream's
 * messages read by grpc.c and decoded by protobuf.c without a schema, in a loop.
 *
 *   build/tools/bench_h2 [CALLS [SECONDS]]
 *
 * Each call: a request head of 8 fields and a message of about 120 bytes; an answer head, a
 * message of about 400 bytes and trailers; header values change from call to call (an id, a
 * timestamp) as real ones do, so HPACK's dynamic table churns. Prints streams/s and MB/s of
 * captured bytes, for framing alone and for framing + gRPC + protobuf. Pin it to a CPU
 * (taskset -c 1) for the one-core figure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

#include "grpc.h"
#include "h2.h"
#include "protobuf.h"

struct seg {
	int dir;
	size_t off, len;
};

static unsigned char *bytes;
static size_t nbytes, capbytes;
static struct seg *segs;
static size_t nsegs, capsegs;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "bench_h2: out of memory\n");
		exit(1);
	}
	return p;
}

static void record(int dir, const uint8_t *p, size_t n)
{
	if (nbytes + n > capbytes) {
		capbytes = (nbytes + n) * 2;
		bytes = xrealloc(bytes, capbytes);
	}
	if (nsegs && segs[nsegs - 1].dir == dir) {
		segs[nsegs - 1].len += n;
	} else {
		if (nsegs == capsegs) {
			capsegs = capsegs ? capsegs * 2 : 64;
			segs = xrealloc(segs, capsegs * sizeof(*segs));
		}
		segs[nsegs++] = (struct seg){ dir, nbytes, n };
	}
	memcpy(bytes + nbytes, p, n);
	nbytes += n;
}

static void pump(nghttp2_session *from, int dir, nghttp2_session *to)
{
	for (;;) {
		const uint8_t *d;
		ssize_t n = nghttp2_session_mem_send(from, &d);

		if (n <= 0)
			return;
		record(dir, d, (size_t)n);
		if (nghttp2_session_mem_recv(to, d, (size_t)n) != n) {
			fprintf(stderr, "bench_h2: the sessions disagree\n");
			exit(1);
		}
	}
}

struct body {
	uint8_t buf[512];
	size_t len, off;
	bool trailers;
};

static ssize_t rd(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
		  nghttp2_data_source *src, void *ud)
{
	struct body *b = src->ptr;
	size_t n = b->len - b->off < len ? b->len - b->off : len;

	memcpy(out, b->buf + b->off, n);
	b->off += n;
	if (b->off == b->len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (b->trailers) {
			nghttp2_nv t[] = { { (uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0 } };

			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
			nghttp2_submit_trailer(s, id, t, 1);
		}
	}
	return (ssize_t)n;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), 0 }

/* A gRPC message of about n bytes, its prefix included: a cart-like protobuf message (an id,
 * items of a name, a quantity and a double price, a status), fields in number order as
 * encoders write them. Returns its length. */
static size_t message(uint8_t *out, size_t n, unsigned seq)
{
	size_t o = 5;
	double price = 9.99 + seq % 100;
	unsigned item = 0;

	out[o++] = 0x0a; /* 1: the id */
	out[o++] = 8;
	o += (size_t)snprintf((char *)out + o, 9, "c-%06u", seq % 1000000);
	while (o + 24 < n) {
		out[o++] = 0x12; /* 2: an item of 20 bytes */
		out[o++] = 20;
		out[o++] = 0x0a; /* its name */
		out[o++] = 7;
		o += (size_t)snprintf((char *)out + o, 8, "A1-%04u", item++ % 10000);
		out[o++] = 0x10; /* its quantity */
		out[o++] = (uint8_t)(1 + seq % 100);
		out[o++] = 0x19; /* its price */
		memcpy(out + o, &price, 8);
		o += 8;
	}
	out[o++] = 0x18; /* 3: the status */
	out[o++] = 2;
	out[0] = 0; /* the gRPC prefix: not compressed, the length */
	out[1] = out[2] = 0;
	out[3] = (uint8_t)((o - 5) >> 8);
	out[4] = (uint8_t)(o - 5);
	return o;
}

static void make(unsigned calls)
{
	nghttp2_session_callbacks *cb;
	nghttp2_session *cl, *sv;
	struct body *reqs = calloc(calls, sizeof(*reqs)), *resps = calloc(calls, sizeof(*resps));

	if (!reqs || !resps || nghttp2_session_callbacks_new(&cb) ||
	    nghttp2_session_client_new(&cl, cb, NULL) || nghttp2_session_server_new(&sv, cb, NULL)) {
		fprintf(stderr, "bench_h2: libnghttp2 setup failed\n");
		exit(1);
	}
	nghttp2_submit_settings(cl, 0, NULL, 0);
	nghttp2_submit_settings(sv, 0, NULL, 0);
	for (unsigned i = 0; i < calls; i++) {
		char id[32], ts[32], st[32];
		nghttp2_nv req[] = { NV(":method", "POST"), NV(":scheme", "http"),
				     NV(":authority", "cart.svc:50051"),
				     NV(":path", "/shop.CartService/Get"),
				     NV("content-type", "application/grpc"), NV("te", "trailers"),
				     NV("user-agent", "grpc-go/1.59.0"), NV("x-request-id", id) };
		nghttp2_data_provider dp = { .read_callback = rd };
		int32_t sid;

		snprintf(id, sizeof(id), "%08x-%04x", i * 2654435761u, i & 0xffff);
		reqs[i].len = message(reqs[i].buf, 125, i);
		dp.source.ptr = &reqs[i];
		sid = nghttp2_submit_request(cl, NULL, req, 8, &dp, NULL);
		pump(cl, 0, sv);
		snprintf(ts, sizeof(ts), "%u", 1700000000u + i);
		snprintf(st, sizeof(st), "%u", i % 7);
		{
			nghttp2_nv resp[] = { NV(":status", "200"),
					      NV("content-type", "application/grpc"),
					      NV("x-served-at", ts), NV("x-shard", st) };

			resps[i].len = message(resps[i].buf, 405, i + 1);
			resps[i].trailers = true;
			dp.source.ptr = &resps[i];
			nghttp2_submit_response(sv, sid, resp, 4, &dp);
		}
		pump(sv, 1, cl);
		pump(cl, 0, sv);
	}
	nghttp2_session_del(cl);
	nghttp2_session_del(sv);
	nghttp2_session_callbacks_del(cb);
	free(reqs);
	free(resps);
}

/* One pass over the connection; returns streams seen. */
static unsigned pass(bool deep, struct st_json_doc *doc)
{
	struct st_h2 *c = st_h2__new(NULL);
	struct st_grpc_reader r[2];
	unsigned streams = 0;

	for (int d = 0; d < 2; d++)
		st_grpc_init(&r[d], 0, 0);
	for (size_t i = 0; i < nsegs; i++) {
		const uint8_t *p = bytes + segs[i].off;
		size_t n = segs[i].len;

		for (;;) {
			struct st_h2_event ev;
			size_t k = st_h2__feed(c, segs[i].dir, p, n, &ev);

			if (ev.type == ST_H2_EV_HEAD && ev.dir == ST_H2_CLIENT)
				streams++;
			if (deep && ev.type == ST_H2_EV_DATA) {
				const uint8_t *q = ev.data;
				size_t m = ev.data_len;

				for (;;) {
					struct st_grpc_event g;
					size_t t = st_grpc_feed(&r[ev.dir], q, m, &g);

					if (g.type == ST_GRPC_EV_MSG)
						st_protobuf_decode(doc, g.data, g.len, NULL, NULL);
					q += t;
					m -= t;
					if (g.type == ST_GRPC_EV_NEED_MORE)
						break;
				}
			}
			if (ev.type == ST_H2_EV_STOP) {
				fprintf(stderr, "bench_h2: the framer stopped: %s\n", ev.detail);
				exit(1);
			}
			p += k;
			n -= k;
			if (ev.type == ST_H2_EV_NEED_MORE)
				break;
		}
	}
	for (int d = 0; d < 2; d++)
		st_grpc_free(&r[d]);
	st_h2__free(c);
	return streams;
}

int main(int argc, char **argv)
{
	unsigned calls = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
	double secs = argc > 2 ? atof(argv[2]) : 3;
	struct st_json_doc doc;

	if (!calls || secs <= 0) {
		fprintf(stderr, "usage: bench_h2 [CALLS [SECONDS]]\n");
		return 2;
	}
	make(calls);
	st_json_doc_init(&doc, 0, 0);
	printf("connection: %u calls, %zu bytes (%.0f a call)\n", calls, nbytes,
	       (double)nbytes / calls);
	for (int deep = 0; deep < 2; deep++) {
		double t0 = now_s(), t;
		unsigned long long streams = 0, rounds = 0;

		do {
			streams += pass(deep, &doc);
			rounds++;
			t = now_s() - t0;
		} while (t < secs);
		printf("%-28s %10.0f streams/s  %8.1f MB/s  (%llu passes)\n",
		       deep ? "framing + gRPC + protobuf:" : "framing (h2.c):", streams / t,
		       (double)nbytes * rounds / t / 1e6, rounds);
	}
	st_json_doc_free(&doc);
	free(bytes);
	free(segs);
	return 0;
}
