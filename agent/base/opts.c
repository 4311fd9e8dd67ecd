/* SPDX-License-Identifier: GPL-2.0-only */
#include "opts.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "optparse.h"

int st_opts_uint(const char *opt, const char *s, unsigned long min, unsigned long max,
		 unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		goto bad;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	pr_err("%s: '%s' is not a number in %lu..%lu", opt, s ? s : "", min, max);
	return -1;
}

int st_opts_double(const char *opt, const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		goto bad;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= min && v <= max))
		goto bad;
	*out = v;
	return 0;
bad:
	pr_err("%s: '%s' is not a number in %g..%g", opt, s ? s : "", min, max);
	return -1;
}

int st_opts_size(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	if (*end && (u = strchr(units, toupper((unsigned char)*end)))) {
		shift = 10 * (unsigned)(u - units + 1);
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
	}
	if (*end == 'B')
		end++;
	if (*end || v > (max >> shift) || (v << shift) < min)
		goto bad;
	*out = v << shift;
	return 0;
bad:
	pr_err("%s: '%s' is not a size from %lluM to %lluG (K, M, G, T suffixes: e.g. 64M)", opt,
	       s ? s : "", (unsigned long long)(min >> 20), (unsigned long long)(max >> 30));
	return -1;
}

int st_opts_port(const char *opt, const char *s, uint16_t *out)
{
	unsigned long v;

	if (st_opts_uint(opt, s, 1, 65535, &v))
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static void cidr_mask(struct st_cidr *c)
{
	int words = c->addr.family == 4 ? 1 : 4;
	unsigned bits = c->prefix;

	for (int i = 0; i < words; i++) {
		uint32_t m;

		if (bits >= 32)
			m = 0xffffffffu;
		else if (bits == 0)
			m = 0;
		else
			m = 0xffffffffu << (32 - bits);
		c->addr.a[i] &= htonl(m);
		bits = bits >= 32 ? bits - 32 : 0;
	}
}

int st_opts_cidr(const char *opt, const char *s, struct st_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	unsigned long prefix;
	unsigned max;

	memset(out, 0, sizeof(*out));
	if (!s || strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, &out->addr.a[0]) == 1) {
		out->addr.family = 4;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr.a) == 1) {
		out->addr.family = 6;
		max = 128;
	} else {
		goto bad;
	}
	prefix = max;
	if (slash) {
		char *end;

		errno = 0;
		if (!slash[1] || slash[1] == '-' || slash[1] == '+')
			goto bad;
		prefix = strtoul(slash + 1, &end, 10);
		if (errno || *end || prefix > max)
			goto bad;
	}
	out->prefix = (uint8_t)prefix;
	cidr_mask(out);
	return 0;
bad:
	pr_err("%s: '%s' is not an IPv4/IPv6 address or CIDR", opt, s ? s : "");
	return -1;
}

int st_target_add_port(struct st_target *t, const char *s)
{
	uint16_t p;

	if (st_opts_port("--port", s, &p))
		return -1;
	if (st_opts_port_listed(t->ports, t->n_ports, p))
		return 0;
	if (t->n_ports >= ST_MAX_PORTS_CLI) {
		pr_err("--port: at most %d ports", ST_MAX_PORTS_CLI);
		return -1;
	}
	t->ports[t->n_ports++] = p;
	return 0;
}

int st_target_add_host(struct st_target *t, const char *s)
{
	if (t->n_hosts >= ST_MAX_HOSTS_CLI) {
		pr_err("--host: at most %d CIDRs", ST_MAX_HOSTS_CLI);
		return -1;
	}
	if (st_opts_cidr("--host", s, &t->hosts[t->n_hosts]))
		return -1;
	t->n_hosts++;
	return 0;
}

/* Refused here, not by the kernel at load time ("Invalid argument"): a ring buffer's size is a
 * power-of-2 number of bytes that fits max_entries, a u32. */
static int parse_ring_mb(const char *arg, unsigned *out)
{
	unsigned long v = 0;
	char *end = NULL;

	errno = 0;
	if (isdigit((unsigned char)arg[0]))
		v = strtoul(arg, &end, 10);
	if (errno || !v || !end || *end || v > ST_RING_MB_MAX || (v & (v - 1))) {
		pr_err("--ring-mb: '%s' is not a ring size: a power of 2 from 1 to %d (MiB)", arg,
		       ST_RING_MB_MAX);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int add_libssl(struct st_target *t, const char *path)
{
	if (!path || !*path) {
		pr_err("--libssl: a path is required");
		return -1;
	}
	if (t->n_libssl >= ST_MAX_LIBSSL_CLI) {
		pr_err("--libssl: at most %d files", ST_MAX_LIBSSL_CLI);
		return -1;
	}
	t->libssl[t->n_libssl++] = path;
	t->tls = true;
	return 0;
}

int st_target_opt(struct st_target *t, int opt, const char *arg)
{
	switch (opt) {
	case ST_OPT_TLS:
		t->tls = true;
		return 1;
	case ST_OPT_LIBSSL:
		return add_libssl(t, arg) ? -1 : 1;
	case ST_OPT_IFACE:
		t->iface = arg;
		return 1;
	case ST_OPT_CGROUP:
		t->cgroup = arg;
		return 1;
	case ST_OPT_PORT:
		return st_target_add_port(t, arg) ? -1 : 1;
	case ST_OPT_HOST:
		return st_target_add_host(t, arg) ? -1 : 1;
	case ST_OPT_RING_MB:
		return parse_ring_mb(arg, &t->ring_mb) ? -1 : 1;
	case ST_OPT_EXIT_ON_DETACH:
		t->exit_on_detach = true;
		return 1;
	case ST_OPT_MAX_MEM:
		return st_opts_size("--max-mem", arg, ST_MAX_MEM_MIN, ST_MAX_MEM_MAX, &t->max_mem) ?
			       -1 : 1;
	case ST_OPT_ATTACH:
		if (!strcmp(arg, "auto"))
			t->attach = ST_ATTACH_AUTO;
		else if (!strcmp(arg, "tcx"))
			t->attach = ST_ATTACH_TCX;
		else if (!strcmp(arg, "clsact"))
			t->attach = ST_ATTACH_CLSACT;
		else {
			pr_err("--attach: '%s' is not auto, tcx or clsact", arg);
			return -1;
		}
		return 1;
	default:
		return 0;
	}
}

/* ---- the same options as optparse rows ---- */

/* These print their own one-line message (err stays empty). */
static int opt_port(void *obj, const char *val, char *err, size_t errlen)
{
	return st_target_add_port(obj, val);
}

static int opt_host(void *obj, const char *val, char *err, size_t errlen)
{
	return st_target_add_host(obj, val);
}

static int opt_ring_mb(void *obj, const char *val, char *err, size_t errlen)
{
	return parse_ring_mb(val, &((struct st_target *)obj)->ring_mb);
}

static int opt_libssl(void *obj, const char *val, char *err, size_t errlen)
{
	return add_libssl(obj, val);
}

static const char *const attach_modes[] = { "auto", "tcx", "clsact", NULL };
static const char *const tls_modes[] = { "auto", "calls", "keys", NULL };

static int opt_tls_mode(void *obj, const char *val, char *err, size_t errlen)
{
	struct st_target *t = obj;

	for (int i = 0; tls_modes[i]; i++) {
		if (!strcmp(val, tls_modes[i])) {
			t->tls_mode = i;
			t->tls = true;
			return 0;
		}
	}
	snprintf(err, errlen, "'%s' is not auto, calls or keys", val);
	return -1;
}

#define FILTER_ROWS                                                                            \
	ST_OPT_FUNC("port", 'p', "P", ST_OPTF_REPEAT, opt_port,                                \
		    "the service's local port (repeatable, up to 256)"),                       \
	ST_OPT_FUNC("host", 0, "CIDR", ST_OPTF_REPEAT, opt_host,                               \
		    "only peers in CIDR, IPv4 or IPv6 (repeatable)")

const struct st_opt st_target_opts[] = {
	ST_OPT_STRING("iface", 'i', struct st_target, iface, "IFACE",
		      "capture with TC on IFACE (lo included)"),
	ST_OPT_STRING("cgroup", 0, struct st_target, cgroup, "PATH",
		      "capture the sockets of cgroup v2 PATH (cgroup_skb):\n"
		      "those its processes create in it (a socket made before\n"
		      "its process joined is not seen); on Debian 12\n"
		      "/sys/fs/cgroup/system.slice/NAME.service"),
	FILTER_ROWS,
	ST_OPT_FLAG("exit-on-detach", 0, struct st_target, exit_on_detach,
		    "exit (status 1) when the interface goes away or the cgroup\n"
		    "is removed, instead of waiting for one of that name (path)\n"
		    "to capture it again"),
	ST_OPT_FLAG("tls", 0, struct st_target, tls, ST_TLS_HELP),
	ST_OPT_FUNC("libssl", 0, "PATH", ST_OPTF_REPEAT, opt_libssl, ST_LIBSSL_HELP),
	ST_OPT_FUNC("tls-mode", 0, "MODE", 0, opt_tls_mode, ST_TLS_MODE_HELP),
	ST_OPT_STRING("keylog", 0, struct st_target, keylog, "FILE", ST_KEYLOG_HELP),
};
const size_t st_target_opts_n = sizeof(st_target_opts) / sizeof(st_target_opts[0]);

static int opt_warn_idle(void *obj, const char *val, char *err, size_t errlen)
{
	struct st_target *t = obj;
	double v;

	if (st_optparse_seconds(val, &v) || !(v >= 0 && v <= 1e9)) {
		snprintf(err, errlen, "'%s' is not a duration (30, 30s, 5m; 0: never)", val);
		return -1;
	}
	t->warn_idle_s = v;
	t->warn_idle_set = true;
	return 0;
}

const struct st_opt st_tap_tuning_opts[] = {
	ST_OPT_FUNC("ring-mb", 0, "N", 0, opt_ring_mb,
		    "kernel ring buffer size in MiB: 1, 2, 4 ... 2048 (default 16)"),
	ST_OPT_CHOICE("attach", 0, struct st_target, attach, "MODE", attach_modes,
		      "interface hooks: auto (TCX links, else clsact), tcx, clsact"),
	ST_OPT_FUNC("warn-idle", 0, "SEC", 0, opt_warn_idle,
		    "say so when no packet of --port came for SEC seconds after\n"
		    "the start (default 30; 0: never)"),
};
const size_t st_tap_tuning_opts_n = sizeof(st_tap_tuning_opts) / sizeof(st_tap_tuning_opts[0]);

double st_target_warn_idle(const struct st_target *t)
{
	return t->warn_idle_set ? t->warn_idle_s : ST_WARN_IDLE_DEFAULT;
}

const struct st_opt st_run_opts[] = {
	ST_OPT_COUNT("verbose", 'v', struct st_run_opts, verbose,
		     "more messages: how it attaches, targets (-vv: libbpf's\n"
		     "messages and per-event detail)"),
	ST_OPT_FLAG("quiet", 'q', struct st_run_opts, quiet,
		    "no start line and no live status line (warnings, errors\n"
		    "and the summary stay)"),
	ST_OPT_SECONDS("stats", 0, struct st_run_opts, stats_s, 0.1, 1e6,
		      "a line of the main counters and their rates on stderr\n"
		      "every SEC seconds (the full set: the summary, --metrics)"),
};
const size_t st_run_opts_n = sizeof(st_run_opts) / sizeof(st_run_opts[0]);

const struct st_opt st_filter_opts[] = { FILTER_ROWS };
const size_t st_filter_opts_n = sizeof(st_filter_opts) / sizeof(st_filter_opts[0]);

const struct st_opt st_reasm_opts[] = {
	ST_OPT_SIZE("max-mem", 0, struct st_target, max_mem, "SIZE", ST_MAX_MEM_MIN, ST_MAX_MEM_MAX,
		    "reassembly memory cap (K/M/G suffixes; default 64M for shadow\n"
		    "and replay, 256M for flows): held out-of-order bytes and\n"
		    "connection state"),
};
const size_t st_reasm_opts_n = sizeof(st_reasm_opts) / sizeof(st_reasm_opts[0]);

int st_target_check(const struct st_target *t, const char *cmd)
{
	if (!!t->iface == !!t->cgroup) {
		pr_err("%s: give exactly one of --iface IFACE or --cgroup PATH", cmd);
		return -1;
	}
	if (!t->n_ports) {
		pr_err("%s: at least one --port is required", cmd);
		return -1;
	}
	if (t->tls && (t->attach != ST_ATTACH_AUTO || t->exit_on_detach)) {
		pr_err("%s: --attach and --exit-on-detach are about the interface's packet hooks, "
		       "which --tls does not use", cmd);
		return -1;
	}
	if (t->keylog && t->tls && t->tls_mode == ST_TLSM_CALLS) {
		pr_err("%s: --keylog needs the secrets, which --tls-mode calls does not read", cmd);
		return -1;
	}
	if (t->keylog && !*t->keylog) {
		pr_err("%s: --keylog: a file name is required", cmd);
		return -1;
	}
	return 0;
}

bool st_cidr_match(const struct st_cidr *c, const struct st_addr *a)
{
	struct st_cidr m;

	if (c->addr.family != a->family)
		return false;
	m.addr = *a;
	m.prefix = c->prefix;
	cidr_mask(&m);
	return memcmp(m.addr.a, c->addr.a, sizeof(m.addr.a)) == 0;
}

bool st_cidr_match_any(const struct st_cidr *c, size_t n, const struct st_addr *a)
{
	if (!n)
		return true;
	for (size_t i = 0; i < n; i++)
		if (st_cidr_match(&c[i], a))
			return true;
	return false;
}

bool st_opts_port_listed(const uint16_t *ports, size_t n, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (ports[i] == port)
			return true;
	return false;
}

bool st_target_keeps(const struct st_target *t, const struct st_flow_key *k)
{
	if (t->n_ports && !st_opts_port_listed(t->ports, t->n_ports, k->sport) &&
	    !st_opts_port_listed(t->ports, t->n_ports, k->dport))
		return false;
	return st_target_hosts_keep(t, k);
}

bool st_target_hosts_keep(const struct st_target *t, const struct st_flow_key *k)
{
	return !t->n_hosts || st_cidr_match_any(t->hosts, t->n_hosts, &k->src) ||
	       st_cidr_match_any(t->hosts, t->n_hosts, &k->dst);
}

const char *st_addr_str(const struct st_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

int st_opt_methods(char *buf, size_t bufsz, const char **methods, unsigned *n, unsigned max,
		   const char *val, char *err, size_t errlen)
{
	size_t used = 0;
	char *tok, *save = NULL;

	for (unsigned i = 0; i < *n; i++)
		used += strlen(methods[i]) + 1;
	if (used + strlen(val) + 1 > bufsz)
		goto bad;
	strcpy(buf + used, val);
	for (tok = strtok_r(buf + used, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= max || !*tok ||
		    strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_0123456789") != strlen(tok))
			goto bad;
		methods[(*n)++] = tok;
	}
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not a list of methods (e.g. GET,HEAD)", val);
	return -1;
}

int st_opt_regex(regex_t *re, bool *set, const char *val, char *err, size_t errlen)
{
	char why[256];
	int r;

	if (*set)
		regfree(re);
	*set = false;
	r = regcomp(re, val, REG_EXTENDED | REG_NOSUB);
	if (r) {
		regerror(r, re, why, sizeof(why));
		snprintf(err, errlen, "'%s': %s", val, why);
		return -1;
	}
	*set = true;
	return 0;
}

int st_opts_split_hostport(const char *s, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *h = s, *p, *hend;
	unsigned long pn;
	char *end;

	if (*s == '[') {
		h = s + 1;
		hend = strchr(h, ']');
		if (!hend || hend[1] != ':')
			return -1;
		p = hend + 2;
	} else {
		hend = strrchr(s, ':');
		if (!hend)
			return -1;
		p = hend + 1;
	}
	if ((size_t)(hend - h) >= hostsz || strlen(p) >= portsz || !*p ||
	    strspn(p, "0123456789") != strlen(p))
		return -1;
	errno = 0;
	pn = strtoul(p, &end, 10);
	if (errno || !pn || pn > 65535)
		return -1;
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = 0;
	strcpy(port, p);
	return 0;
}

void st_ports_seen_add(struct st_ports_seen *p, const struct st_segment *s)
{
	size_t i;

	if (s->kind != ST_SEG_DATA)
		return;
	p->segments++;
	if (!(s->flags & ST_TCP_SYN) || (s->flags & ST_TCP_ACK))
		return;
	for (i = 0; i < p->n; i++)
		if (p->port[i] == s->key.dport)
			break;
	if (i == p->n) {
		if (p->n == ST_PORTS_SEEN_MAX) {
			p->more++;
			return;
		}
		p->port[p->n++] = s->key.dport;
	}
	p->conns[i]++;
}

const char *st_ports_seen_str(const struct st_ports_seen *p, char *buf, size_t len)
{
	size_t o = 0;

	if (len)
		buf[0] = 0;
	if (!p->n) {
		snprintf(buf, len, "no connection start (SYN) in its %llu TCP segments",
			 (unsigned long long)p->segments);
		return buf;
	}
	for (size_t i = 0; i < p->n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%u (%llu connection%s)", i ? ", " : "",
				      p->port[i], (unsigned long long)p->conns[i],
				      p->conns[i] == 1 ? "" : "s");
	if (p->more && o < len)
		snprintf(buf + o, len - o, ", %llu more to other ports", (unsigned long long)p->more);
	return buf;
}
