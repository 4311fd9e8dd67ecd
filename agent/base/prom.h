/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Prometheus text exposition (format 0.0.4) of labelled families: counters, gauges and
 * histograms (_bucket{le}, _sum, _count) gathered from several sources (the daemon's jobs,
 * a command's engines) into one collector, then written with each family once: HELP and
 * TYPE, then every sample of it, whoever added it. The flat counter tables (stats.h) have
 * their own writer; the two write distinct names.
 *
 * Label values are escaped by the text format's rules (\\, \", \n) and must be UTF-8 (the
 * callers make them so: endpoints from traffic go through st_cmp_utf8_fix(), --label values
 * are checked when given). Names are the caller's constants, or checked with
 * st_prom_label_name_ok() when they come from a user.
 *
 * Memory: the samples' text, held until st_prom__free(); a collector serves one scrape or
 * one write. Single-threaded.
 */
#ifndef ST_PROM_H
#define ST_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ST_PROM_LABELS_MAX 24     /* labels on one sample (base and own) */
#define ST_PROM_LABEL_NAME_MAX 64 /* a user's label name, bytes */
#define ST_PROM_LABEL_VALUE_MAX 256 /* a user's label value, bytes */

enum st_prom_type { ST_PROM_COUNTER = 0, ST_PROM_GAUGE, ST_PROM_HISTOGRAM };

struct st_prom_label {
	const char *name;
	const char *value;
};

/* A label set built in steps: the base (job, command, constant labels), then a series' own. */
struct st_prom_labels {
	size_t n;
	struct st_prom_label l[ST_PROM_LABELS_MAX];
};

/* Appends name=value (both must outlive the set's use); past ST_PROM_LABELS_MAX it is left
 * out (the callers' sets are fixed and smaller). */
void st_prom_labels_add(struct st_prom_labels *s, const char *name, const char *value);

struct st_prom;

struct st_prom *st_prom__new(void);
void st_prom__free(struct st_prom *p);

/* The family name (the whole metric name: "shadowtap_http_requests_total"), created at its
 * first use; a name already there keeps its first help and type. Its handle, or -ENOMEM. */
int st_prom__family(struct st_prom *p, const char *name, enum st_prom_type type, const char *help);
/* One sample of a counter or gauge family. */
void st_prom__sample(struct st_prom *p, int fam, const struct st_prom_labels *l, double v);
void st_prom__sample_u64(struct st_prom *p, int fam, const struct st_prom_labels *l, uint64_t v);
/*
 * One histogram of a histogram family: nb finite upper bounds (increasing), counts[nb + 1]
 * per bucket (not cumulative; counts[nb]: above every bound), sum the observations' sum.
 * Written as cumulative _bucket{le} samples (le="+Inf" last), _sum and _count.
 */
void st_prom__histogram(struct st_prom *p, int fam, const struct st_prom_labels *l,
			const double *bounds, size_t nb, const uint64_t *counts, double sum);
/* Every family, in the order of their first use. 0, or -ENOMEM (a sample could not be kept)
 * or -EIO (the stream failed). */
int st_prom__write(const struct st_prom *p, FILE *f);

/* The latency buckets' upper bounds every shadowtap histogram uses unless told otherwise
 * (seconds): 0.5 ms .. 10 s (watch's default --buckets, tap compare's histograms). */
#define ST_PROM_LATENCY_NBOUNDS 14
extern const double st_prom_latency_bounds[ST_PROM_LATENCY_NBOUNDS];
extern const unsigned st_prom_latency_nbounds;

/* A label name Prometheus accepts from a user: [a-zA-Z_][a-zA-Z0-9_]*, not __reserved. */
bool st_prom_label_name_ok(const char *s);
/* A label value's characters escaped as the text format wants them (\\, \", \n). */
void st_prom_label_value(FILE *f, const char *v);
/* A float as Prometheus reads it: the shortest form that reads back the same, +Inf, NaN. */
void st_prom_float(char *out, size_t cap, double v);

#endif /* ST_PROM_H */
