/* SPDX-License-Identifier: GPL-2.0-only */
/* The fuzz targets' invariant check: a failed one aborts, which libFuzzer reports as a crash
 * with the input kept. */
#ifndef ST_FUZZ_CHECK_H
#define ST_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                          \
		}                                                                         \
	} while (0)

#endif /* ST_FUZZ_CHECK_H */
