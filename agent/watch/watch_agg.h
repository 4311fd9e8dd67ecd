/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * watch's aggregate: production's own exchanges, measured at the tap, counted per series
 * (endpoint, method, status code) with four histograms each (first and last response byte
 * after the request's last byte, request and response sizes), exported as Prometheus
 * families (prom.h) and as the JSON report `report --canary` reads (docs/WATCH.md).
 *
 * An exchange source hands exchanges over in two steps: st_watch_agg_endpoint() when the
 * request's head is known (its method and target), st_watch_agg_add() when its answer is.
 * watch.c is the HTTP/1 source (reassembly, the framer); an HTTP/2 source would hand over
 * each stream the same way, from its decoded :method, :path and :status.
 *
 * Bounded by construction, whatever the traffic: at most max_endpoints endpoints (named by
 * tap compare's templates and --endpoint patterns, st_cmp_endpoint(); the rest are one
 * endpoint "other") and at most max_series series in all. Past the series cap an exchange
 * goes to one of ST_WATCH_CLASS_SERIES rows kept for it (endpoint "other", method "OTHER",
 * code "1xx" ... "5xx", "other", "none"): 100k random paths leave the series count and the
 * memory where the caps put them (tests/unit/watch/test_watch_agg.c). Memory is fixed
 * arrays sized from the caps, allocated as series appear.
 *
 * Single-threaded (the event loop's).
 */
#ifndef ST_WATCH_AGG_H
#define ST_WATCH_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "compare_agg.h"
#include "prom.h"
#include "stats.h"

#define ST_WATCH_ENDPOINTS_DEFAULT 200
#define ST_WATCH_ENDPOINTS_MAX 100000
#define ST_WATCH_SERIES_DEFAULT 1000
#define ST_WATCH_SERIES_MIN 16
#define ST_WATCH_SERIES_MAX 1000000
#define ST_WATCH_CLASS_SERIES 7   /* the rows past the series cap: 1xx..5xx, other, none */
#define ST_WATCH_BUCKETS_MAX 32   /* finite bounds of one histogram */
#define ST_WATCH_CODE_NONE 0      /* no answer came (the connection ended first) */
#define ST_WATCH_CODE_CLASS 1000  /* + 1..5: a class row ("1xx".."5xx"), + 6: "other" */
/* gRPC's status of a call: 0..16 (OK .. UNAUTHENTICATED), then these */
#define ST_WATCH_GRPC_OTHER 17    /* a grpc-status that is not one of the 17 codes */
#define ST_WATCH_GRPC_NONE 18     /* no grpc-status came (reset, cut, an HTTP error) */
#define ST_WATCH_GRPC_CODES 19

/* The histograms of a series. */
enum st_watch_h {
	ST_WATCH_H_FIRST = 0, /* request's last byte in -> response's first byte out, seconds */
	ST_WATCH_H_LAST,      /* ... -> response's last byte out, seconds */
	ST_WATCH_H_REQ_SIZE,  /* the request on the wire (head and body as sent), bytes */
	ST_WATCH_H_RESP_SIZE, /* the final response on the wire, bytes */
	ST_WATCH_H__COUNT,
};

/* A histogram's finite upper bounds, increasing (+Inf is implied). */
struct st_watch_bounds {
	unsigned n;
	double b[ST_WATCH_BUCKETS_MAX];
};

/* The defaults: latency in seconds, 0.5 ms .. 10 s; sizes in bytes, 64 B .. 16 MiB. */
void st_watch_bounds_latency(struct st_watch_bounds *b);
void st_watch_bounds_size(struct st_watch_bounds *b);
/* "0.005,0.01,0.1" (increasing, positive, finite, at most ST_WATCH_BUCKETS_MAX). 0, or -1
 * with the reason in err. */
int st_watch_bounds_parse(const char *s, struct st_watch_bounds *b, char *err, size_t errlen);

/* The q-quantile of counts (per bucket, counts[b->n] above every bound) as Prometheus'
 * histogram_quantile() computes it: linear within the bucket (from 0 in the first), the
 * last bound when it falls above every bound; NaN when empty. */
double st_watch_agg_quantile(const struct st_watch_bounds *b, const uint64_t *counts, double q);
/* Bucket i's middle (the one above every bound: twice the last bound), for rank tests. */
double st_watch_agg_bucket_mid(const struct st_watch_bounds *b, unsigned i);

struct st_watch_hist {
	uint64_t c[ST_WATCH_BUCKETS_MAX + 1]; /* per bucket; c[n]: above every bound */
	double sum;
};

struct st_watch_series {
	uint32_t ep;                  /* endpoint index (0: "other") */
	uint16_t code;                /* status 100..999, ST_WATCH_CODE_NONE, or a class row */
	uint8_t method;               /* enum st_http_method */
	uint8_t pad;
	uint64_t n;                   /* exchanges */
	struct st_watch_hist h[ST_WATCH_H__COUNT];
};

/* One exchange, as a source hands it over. */
struct st_watch_exchange {
	uint32_t ep;                  /* st_watch_agg_endpoint()'s */
	uint8_t method;               /* enum st_http_method */
	uint16_t status;              /* the final answer's code, ST_WATCH_CODE_NONE: none came */
	int64_t first_ns, last_ns;    /* the latencies (ST_WATCH_H_FIRST/LAST); -1: not measured */
	int64_t req_bytes, resp_bytes; /* -1: not known */
};

struct st_watch_agg_config {
	const struct st_cmp_pattern *patterns; /* --endpoint (copied) */
	unsigned npatterns;
	unsigned max_endpoints;       /* 0: ST_WATCH_ENDPOINTS_DEFAULT */
	unsigned max_series;          /* 0: ST_WATCH_SERIES_DEFAULT; at least ST_WATCH_SERIES_MIN */
	struct st_watch_bounds lat, size; /* n == 0: the defaults */
};

struct st_watch_agg {
	struct st_watch_agg_config cfg;
	struct st_cmp_pattern patterns[ST_CMP_PATTERNS_MAX];
	char (*ep)[ST_CMP_ENDPOINT_MAX]; /* names (the path part); [0] = "other" */
	uint32_t nep, epcap;
	uint32_t *ep_slot, ep_nslot;  /* name hash -> index + 1 */
	struct st_watch_series *s;
	uint32_t ns, scap;            /* series in use (the class rows apart), allocated */
	uint32_t *s_slot, s_nslot;    /* key hash -> index + 1 */
	struct st_watch_series cls[ST_WATCH_CLASS_SERIES]; /* past the cap: 1xx..5xx, other, none */
	uint64_t other_ep;            /* exchanges of endpoints past max_endpoints */
	uint64_t overflow;            /* exchanges counted in a class row: the series cap */
	uint64_t exchanges;
	/* gRPC calls by endpoint and grpc-status: rows indexed by endpoint, allocated as gRPC
	 * endpoints appear; at most max_series cells in use (past it: endpoint "other") */
	uint64_t (*grpc)[ST_WATCH_GRPC_CODES];
	uint32_t grpc_rows;           /* rows allocated */
	uint32_t grpc_cells;          /* cells not 0 */
	uint64_t grpc_overflow;       /* calls past the cap (counted in endpoint "other") */
	uint64_t grpc_calls;
};

int st_watch_agg_init(struct st_watch_agg *a, const struct st_watch_agg_config *cfg);
void st_watch_agg_free(struct st_watch_agg *a);

/* The endpoint of a request: its index (0: "other", past max_endpoints). */
uint32_t st_watch_agg_endpoint(struct st_watch_agg *a, const char *method, size_t mlen,
			       const char *target, size_t tlen);
const char *st_watch_agg_endpoint_name(const struct st_watch_agg *a, uint32_t ep);
void st_watch_agg_add(struct st_watch_agg *a, const struct st_watch_exchange *x);
/* A gRPC call of endpoint ep (its exchange is added with st_watch_agg_add() too) ended with
 * grpc-status code (0..16), ST_WATCH_GRPC_OTHER or ST_WATCH_GRPC_NONE. */
void st_watch_agg_grpc(struct st_watch_agg *a, uint32_t ep, unsigned code);
/* grpc_code's label: "OK" ... "UNAUTHENTICATED", "other", "none". */
const char *st_watch_agg_grpc_label(unsigned code);

/* A series' labels: the method's name ("OTHER" for one not in RFC 9110's list), its code
 * ("200", "5xx", "other", "none"; buf holds 8 bytes). */
const char *st_watch_agg_method_label(unsigned method);
const char *st_watch_agg_code_label(uint16_t code, char *buf, size_t cap);

/* The families (shadowtap_http_*), every series labelled base + endpoint, method, code;
 * shadowtap_grpc_requests_total labelled base + endpoint, grpc_code. */
void st_watch_agg_prom(const struct st_watch_agg *a, struct st_prom *p,
		       const struct st_prom_labels *base);

/* What the JSON report says about the run. */
struct st_watch_run {
	const char *command;          /* "watch" */
	const char *job;              /* the job label */
	const struct st_prom_label *labels; /* the constant labels */
	size_t nlabels;
	const char *host;             /* where it ran */
	uint64_t start_ns, now_ns;    /* CLOCK_REALTIME */
	bool final;                   /* written at the end of the run */
	const struct st_statline *counters;
};

#define ST_WATCH_REPORT_FORMAT "shadowtap-watch-report"
#define ST_WATCH_REPORT_VERSION 1

/* The report (docs/WATCH.md, "The report"): every series with its counts and histograms. */
void st_watch_agg_json(FILE *f, const struct st_watch_agg *a, const struct st_watch_run *run);

#endif /* ST_WATCH_AGG_H */
