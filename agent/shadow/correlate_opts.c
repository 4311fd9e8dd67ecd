// SPDX-License-Identifier: GPL-2.0-only
/* --correlate's options, shared by the commands that replay (correlate_opts.h). */
#include <stdio.h>
#include <string.h>

#include "correlate_opts.h"

static int opt_field(void *obj, const char *val, char *err, size_t errlen)
{
	struct st_correlate_opts *o = obj;
	size_t n = strlen(val);

	if (o->cfg.n_fields >= ST_CORRELATE_MAX_RULES || n < 3 || n >= sizeof(o->field_buf[0]) ||
	    val[0] != '$' || (val[1] != '.' && val[1] != '[') || strpbrk(val, " \t\"'")) {
		snprintf(err, errlen, "'%s' is not a JSON path: $.a.b, $.items[*].id, or $..name "
			 "anywhere (at most %d)", val, ST_CORRELATE_MAX_RULES);
		return -1;
	}
	memcpy(o->field_buf[o->cfg.n_fields], val, n + 1);
	o->cfg.fields[o->cfg.n_fields] = o->field_buf[o->cfg.n_fields];
	o->cfg.n_fields++;
	o->on = true;
	return 0;
}

static int opt_header(void *obj, const char *val, char *err, size_t errlen)
{
	struct st_correlate_opts *o = obj;
	size_t n = strlen(val);

	if (o->cfg.n_headers >= ST_CORRELATE_MAX_RULES || !n || n >= sizeof(o->header_buf[0]) ||
	    strspn(val, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n) {
		snprintf(err, errlen, "'%s' is not a header field name (at most %d)", val,
			 ST_CORRELATE_MAX_RULES);
		return -1;
	}
	memcpy(o->header_buf[o->cfg.n_headers], val, n + 1);
	o->cfg.headers[o->cfg.n_headers] = o->header_buf[o->cfg.n_headers];
	o->cfg.n_headers++;
	o->on = true;
	return 0;
}

const struct st_opt st_correlate_opts[] = {
	ST_OPT_FLAG("correlate", 0, struct st_correlate_opts, flag,
		    "sessions and ids: learn production's values (cookies, tokens,\n"
		    "ids) against each target's from their answers and rewrite\n"
		    "them in the requests that target gets (HTTP/1 and HTTP/2;\n"
		    "every option below turns it on too)"),
	ST_OPT_FUNC("correlate-field", 0, "PATH", ST_OPTF_REPEAT, opt_field,
		    "a JSON field whose values are learned whatever their name or\n"
		    "shape: $.data.code, $.items[*].ref, $..name (repeatable)"),
	ST_OPT_FUNC("correlate-header", 0, "NAME", ST_OPTF_REPEAT, opt_header,
		    "a response header field whose value is learned (repeatable;\n"
		    "Set-Cookie by cookie name and Location always are)"),
	ST_OPT_SECONDS("correlate-wait", 0, struct st_correlate_opts, wait_s, 0,
		       ST_CORRELATE_OPTS_WAIT_MAX_S,
		       "a request carrying a value production issued whose target\n"
		       "value is not learned yet waits up to SEC (default 300ms), then\n"
		       "goes unmapped (counted); 0: never waits"),
	ST_OPT_UINT("correlate-max-mb", 0, struct st_correlate_opts, max_mem, "N", 1, 65536,
		    ST_OPTF_MIB, "memory of each target's map (default 16): past it the least\n"
		    "recently used values go (counted); as much again for answers\n"
		    "being learned from"),
	ST_OPT_STRING("correlate-dump", 0, struct st_correlate_opts, dump, "FILE",
		      "at the end, the learned map (target, production's value,\n"
		      "the target's), tab-separated: it holds secrets (0600)"),
};
const size_t st_correlate_opts_n = sizeof(st_correlate_opts) / sizeof(st_correlate_opts[0]);

void st_correlate_opts_init(struct st_correlate_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->wait_s = -1;
}

int st_correlate_opts_check(struct st_correlate_opts *o, struct st_shadow_config *cfg, char *err,
			    size_t errlen)
{
	if (o->flag || o->wait_s >= 0 || o->max_mem || o->dump)
		o->on = true;
	if (!o->on)
		return 0;
	if (cfg->proto == ST_PROTO_RAW || cfg->proto == ST_PROTO_H2) {
		snprintf(err, errlen, "--correlate rewrites HTTP/1 requests: not with --proto %s",
			 cfg->proto == ST_PROTO_RAW ? "raw" : "h2");
		return -1;
	}
	o->cfg.wait_ns = (uint64_t)((o->wait_s < 0 ? ST_CORRELATE_WAIT_MS_DEFAULT / 1000.0 :
						  o->wait_s) * 1e9);
	o->cfg.max_mem = o->max_mem;
	cfg->correlate = &o->cfg;
	return 0;
}
