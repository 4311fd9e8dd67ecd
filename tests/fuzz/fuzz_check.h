/* SPDX-License-Identifier: GPL-2.0-only */
/* The fuzz targets' invariant check: a failed one aborts, which libFuzzer reports as a crash
 * with the input kept. And the report loaders' round trip (fuzz_report.c,
 * fuzz_load_report.c): what the writers make of a loaded report loads again, and its JSON is
 * a fixed point. */
#ifndef ST_FUZZ_CHECK_H
#define ST_FUZZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* A report format's writer (r's HTML, or its JSON) and loader (0, or an error in err). */
typedef void fuzz_report_write_fn(FILE *f, const void *r, bool html);
typedef int fuzz_report_load_fn(void *r, const char *text, size_t len, char *err,
				size_t errlen);

/* What w writes of r, in memory (NUL-terminated, *len bytes); the caller frees. */
static inline char *fuzz_report_text(fuzz_report_write_fn *w, const void *r, bool html,
				     size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	CHECK(f);
	w(f, r, html);
	CHECK(!fclose(f));
	return buf;
}

/* text, written by us (what: "our own JSON"), loads into r; aborts with the error and the
 * text otherwise. */
static inline void fuzz_report_loads(fuzz_report_load_fn *load, void *r, const char *text,
				     size_t len, const char *what)
{
	char err[512];

	if (load(r, text, len, err, sizeof(err))) {
		fprintf(stderr, "%s does not load: %s\n%s\n", what, err, text);
		abort();
	}
}

/* A loaded report r: its HTML is written; its JSON loads again, into r2; the JSON of r2 is
 * the same text (written, read, written: a fixed point). Aborts otherwise. */
static inline void fuzz_report_round_trip(fuzz_report_write_fn *w, fuzz_report_load_fn *load,
					  const void *r, void *r2)
{
	char *j1, *j2;
	size_t l1, l2;

	free(fuzz_report_text(w, r, true, &l1));
	j1 = fuzz_report_text(w, r, false, &l1);
	fuzz_report_loads(load, r2, j1, l1, "our own JSON");
	j2 = fuzz_report_text(w, r2, false, &l2);
	if (l1 != l2 || memcmp(j1, j2, l1)) {
		fprintf(stderr, "written, read, written: other text\n%s\n----\n%s\n", j1, j2);
		abort();
	}
	free(j1);
	free(j2);
}

#endif /* ST_FUZZ_CHECK_H */
