/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * --correlate's options (docs/SHADOW.md, "Sessions and ids"), for every command that
 * replays into the shadow engine: shadow, replay, receive --to (and their daemon jobs). One
 * option table bound to a struct st_correlate_opts, the checks across options, and the
 * mapping's dump at the end (--correlate-dump: it holds secrets, written 0600).
 */
#ifndef ST_CORRELATE_OPTS_H
#define ST_CORRELATE_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "correlate.h"
#include "optparse.h"
#include "shadow.h"

#define ST_CORRELATE_OPTS_WAIT_MAX_S 60.0
#define ST_CORRELATE_OPTS_TITLE "Sessions and ids (--correlate)"

struct st_correlate_opts {
	bool on;                     /* --correlate, or any --correlate-* option */
	bool flag;
	struct st_correlate_config cfg;
	char field_buf[ST_CORRELATE_MAX_RULES][256];
	char header_buf[ST_CORRELATE_MAX_RULES][64];
	double wait_s;               /* -1: not given */
	uint64_t max_mem;            /* --correlate-max-mb, in bytes */
	const char *dump;            /* --correlate-dump FILE */
};

extern const struct st_opt st_correlate_opts[];
extern const size_t st_correlate_opts_n;

/* Before parsing: the defaults. */
void st_correlate_opts_init(struct st_correlate_opts *o);
/* After parsing: whether correlate is on and, when it is, that cfg suits it (HTTP); sets
 * cfg->correlate. 0, or -1 with the reason in err. */
int st_correlate_opts_check(struct st_correlate_opts *o, struct st_shadow_config *cfg, char *err,
			    size_t errlen);

#endif /* ST_CORRELATE_OPTS_H */
