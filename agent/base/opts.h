/* SPDX-License-Identifier: GPL-2.0-only */
/* Option values shared by every command: ports, peer CIDRs, the capture target. */
#ifndef ST_OPTS_H
#define ST_OPTS_H

#include <getopt.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optparse.h"
#include "segment.h"

#define ST_MAX_PORTS_CLI 256
#define ST_MAX_HOSTS_CLI 256
#define ST_MAX_LIBSSL_CLI 16
#define ST_RING_MB_DEFAULT 16 /* docs/BENCHMARKS.md, "The ring buffer's size" */
/* A BPF ring buffer's size is a power-of-2 number of bytes in a u32 (max_entries), so 2 GiB is
 * the largest (docs/ARCHITECTURE.md, "Option limits"). */
#define ST_RING_MB_MAX 2048
/* --max-mem (reassembly state): 1 MiB .. 1 TiB. */
#define ST_MAX_MEM_MIN (1ull << 20)
#define ST_MAX_MEM_MAX (1ull << 40)

#define ST_EXIT_OK 0
#define ST_EXIT_RUNTIME 1
#define ST_EXIT_USAGE 2
#define ST_EXIT_VERDICT 3 /* tap compare's verdict, with --fail-on-regression/--fail-on-slower */

struct st_cidr {
	struct st_addr addr; /* masked to prefix */
	uint8_t prefix;      /* 0..32 or 0..128 */
};

/* How programs attach to an interface: TCX links when the kernel has them
 * (die with the process), else clsact filters (removed on exit, stale ones at
 * the next start). Forcing one is for tests and odd kernels. */
enum st_attach_mode {
	ST_ATTACH_AUTO = 0,
	ST_ATTACH_TCX,
	ST_ATTACH_CLSACT,
};

/* Filters and target of a live capture (capture, flows, shadow). */
struct st_target {
	const char *iface;  /* --iface: TC on this interface */
	const char *cgroup; /* --cgroup: cgroup v2 path */
	uint16_t ports[ST_MAX_PORTS_CLI];
	size_t n_ports;
	struct st_cidr hosts[ST_MAX_HOSTS_CLI];
	size_t n_hosts;
	unsigned ring_mb;   /* --ring-mb, default ST_RING_MB_DEFAULT */
	int attach;         /* --attach: enum st_attach_mode */
	bool exit_on_detach; /* --exit-on-detach: the interface went away: stop (exit 1) */
	uint64_t max_mem;   /* --max-mem (ST_REASM_LONGOPTS): reassembly cap; 0 = the command's */
	bool tls;           /* --tls: the TLS plaintext of the target's processes (uprobes)
			     * instead of its packets (docs/TLS.md) */
	const char *libssl[ST_MAX_LIBSSL_CLI]; /* --libssl PATH (implies --tls): probe these */
	size_t n_libssl;
	int tls_mode;       /* --tls-mode (implies --tls): enum st_tls_mode_opt */
	const char *keylog; /* --keylog FILE: the secrets learned, SSLKEYLOGFILE format (0600) */
	double warn_idle_s;  /* --warn-idle: no packet for this long after the start is said */
	bool warn_idle_set;  /* ... given (else ST_WARN_IDLE_DEFAULT) */
};

/* --tls-mode: how a process's plaintext is read (docs/TLS.md, "Modes"). */
enum st_tls_mode_opt {
	ST_TLSM_AUTO = 0, /* per process, from what it does: keys where it can and they cost less */
	ST_TLSM_CALLS,    /* per-call probes on SSL_read/SSL_write (every process) */
	ST_TLSM_KEYS,     /* secrets once per handshake, the ciphertext decrypted in the agent, for
			   * every process that can (the others: per-call probes) */
};

#define ST_WARN_IDLE_DEFAULT 30.0

/* --warn-idle's value: seconds, 0 for never. */
double st_target_warn_idle(const struct st_target *t);

/* What every command that runs a while shares: how much it says (-v, -q) and its periodic
 * stats line (--stats SEC, progress.h). The runner of jobs and the commands with a runner of
 * their own (replay, receive) read it; a daemon job's section takes the same keys. */
struct st_run_opts {
	int verbose;     /* -v (count) */
	bool quiet;      /* -q: no start line, no live status line */
	double stats_s;  /* --stats SEC (0: no stats lines) */
};

/* Each returns 0, or -1 after one clear line on stderr naming opt. */
int st_opts_port(const char *opt, const char *s, uint16_t *out);
int st_opts_uint(const char *opt, const char *s, unsigned long min, unsigned long max,
		 unsigned long *out);
int st_opts_double(const char *opt, const char *s, double min, double max, double *out);
int st_opts_cidr(const char *opt, const char *s, struct st_cidr *out);
/* A byte count with an optional K, M, G or T suffix (binary; "iB"/"B" after it allowed). */
int st_opts_size(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out);

int st_target_add_port(struct st_target *t, const char *s);
int st_target_add_host(struct st_target *t, const char *s);
/* Checks the target is complete (exactly one of iface/cgroup, >= 1 port). */
int st_target_check(const struct st_target *t, const char *cmd);

/*
 * getopt_long entries every live command shares; add ST_TARGET_LONGOPTS to a
 * command's option table and hand each option to st_target_opt().
 */
enum {
	ST_OPT_IFACE = 'i',
	ST_OPT_PORT = 'p',
	ST_OPT_CGROUP = 0x1000,
	ST_OPT_HOST,
	ST_OPT_RING_MB,
	ST_OPT_ATTACH,
	ST_OPT_EXIT_ON_DETACH,
	ST_OPT_MAX_MEM,
	ST_OPT_TLS,
	ST_OPT_LIBSSL,
	ST_OPT_FIRST_FREE, /* commands number their own long-only options from here */
};
#define ST_TARGET_LONGOPTS                                              \
	{ "iface", required_argument, NULL, ST_OPT_IFACE },             \
	{ "cgroup", required_argument, NULL, ST_OPT_CGROUP },           \
	{ "port", required_argument, NULL, ST_OPT_PORT },               \
	{ "host", required_argument, NULL, ST_OPT_HOST },               \
	{ "ring-mb", required_argument, NULL, ST_OPT_RING_MB },         \
	{ "attach", required_argument, NULL, ST_OPT_ATTACH },           \
	{ "exit-on-detach", no_argument, NULL, ST_OPT_EXIT_ON_DETACH }, \
	{ "tls", no_argument, NULL, ST_OPT_TLS },                       \
	{ "libssl", required_argument, NULL, ST_OPT_LIBSSL }
/* The --tls rows' help (st_target_opts). */
#define ST_TLS_HELP                                                                        \
	"the TLS plaintext of the service's OpenSSL connections\n"                          \
	"instead of their ciphertext: secrets once per handshake\n"                         \
	"and the packets decrypted here, or per-call uprobes on\n"                           \
	"SSL_read/SSL_write, chosen per process (--tls-mode).\n"                            \
	"Processes: --cgroup's (joining later too), or with\n"                              \
	"--iface those owning --port's listening sockets, their\n"                           \
	"children, and new owners found within 2 s (rescan). Not\n"                          \
	"seen: BoringSSL, Go crypto/tls, Java, memory BIOs\n"                               \
	"(Node.js) (named at start and in the summary)"
#define ST_TLS_MODE_HELP                                                                   \
	"auto (default): per process, keys where it can and they\n"                          \
	"cost less than per-call probes (requests per connection,\n"                         \
	"measured as it runs); keys: secrets once per handshake\n"                           \
	"(OpenSSL 3), the ciphertext decrypted in the agent;\n"                               \
	"calls: per-call probes. Implies --tls"
#define ST_KEYLOG_HELP                                                                     \
	"write the TLS secrets learned (keys mode) to FILE,\n"                                \
	"SSLKEYLOGFILE format, mode 0600 (Wireshark: tls.keylog_file);\n"                    \
	"without --tls the capture stays ciphertext. Keys mode for\n"                        \
	"every process that can. Otherwise secrets never leave the\n"                        \
	"agent's memory"
#define ST_LIBSSL_HELP                                                                     \
	"probe this libssl, or a binary with OpenSSL linked in\n"                           \
	"statically, instead of the ones found in the processes'\n"                         \
	"memory maps (repeatable; implies --tls)"
/* The reassembly memory cap, for the commands that reassemble (flows, shadow, replay). */
#define ST_REASM_LONGOPTS { "max-mem", required_argument, NULL, ST_OPT_MAX_MEM }
#define ST_REASM_USAGE_FMT                                                                 \
	"      --max-mem SIZE    reassembly memory cap (K/M/G suffixes; default %s): held\n"      \
	"                        out-of-order bytes and connection state\n"

/* The same options as rows of optparse.h tables, writing into a struct st_target. */
extern const struct st_opt st_target_opts[];  /* the live target: --iface ... --exit-on-detach */
extern const size_t st_target_opts_n;
/* The live target's tuning (a struct st_target too): --ring-mb, --attach, --warn-idle. */
extern const struct st_opt st_tap_tuning_opts[];
extern const size_t st_tap_tuning_opts_n;
/* -v, -q, --stats, writing into a struct st_run_opts. */
extern const struct st_opt st_run_opts[];
extern const size_t st_run_opts_n;
extern const struct st_opt st_filter_opts[];  /* file input: --port, --host */
extern const size_t st_filter_opts_n;
extern const struct st_opt st_reasm_opts[];   /* --max-mem, for the commands that reassemble */
extern const size_t st_reasm_opts_n;

/* Returns 1 if opt was a target option and is valid, 0 if not a target
 * option, -1 after printing an error for an invalid value. */
int st_target_opt(struct st_target *t, int opt, const char *arg);

bool st_cidr_match(const struct st_cidr *c, const struct st_addr *a);
/* True when no CIDR is given or a matches one of them. */
bool st_cidr_match_any(const struct st_cidr *c, size_t n, const struct st_addr *a);
bool st_opts_port_listed(const uint16_t *ports, size_t n, uint16_t port);
/* A file's connection passes the target's filters: one endpoint's port listed
 * (when ports are given) and one endpoint in the CIDRs (when given). */
bool st_target_keeps(const struct st_target *t, const struct st_flow_key *k);
/* The CIDRs' half of it, for a live segment (the kernel filters ports): one endpoint in the
 * CIDRs, or none given. */
bool st_target_hosts_keep(const struct st_target *t, const struct st_flow_key *k);

/* The ports a file's connections were made to, for saying what a file holds when none of
 * its connections is on --port (replay, flows FILE): connection starts (SYN without ACK)
 * counted by destination port, the first ST_PORTS_SEEN_MAX ports kept. */
#define ST_PORTS_SEEN_MAX 8
struct st_ports_seen {
	uint16_t port[ST_PORTS_SEEN_MAX];
	uint64_t conns[ST_PORTS_SEEN_MAX];
	size_t n;
	uint64_t more;     /* connections to ports past the kept ones */
	uint64_t segments; /* TCP segments seen */
};

void st_ports_seen_add(struct st_ports_seen *p, const struct st_segment *s);
/* "8080 (12 connections), 443 (3)", or "no connection start (SYN)". Returns buf. */
const char *st_ports_seen_str(const struct st_ports_seen *p, char *buf, size_t len);

/* Formats an address as inet_ntop does; buf >= 46 bytes. */
const char *st_addr_str(const struct st_addr *a, char *buf, size_t len);

/* Option values shared by shadow and tee (optparse FUNC rows; 0, or -1 with err set):
 * --match-method LIST (repeatable: the names are kept in buf, pointed to by methods[*n]);
 * --match-path/--exclude-path REGEX (POSIX extended; *set tells a compiled re, freed first). */
int st_opt_methods(char *buf, size_t bufsz, const char **methods, unsigned *n, unsigned max,
		   const char *val, char *err, size_t errlen);
int st_opt_regex(regex_t *re, bool *set, const char *val, char *err, size_t errlen);

/* HOST:PORT or [V6]:PORT into host (brackets removed; may be empty: "any" for a listener)
 * and port (digits, 1..65535). 0, or -1 when s is not of that shape or does not fit. */
int st_opts_split_hostport(const char *s, char *host, size_t hostsz, char *port, size_t portsz);

#endif /* ST_OPTS_H */
