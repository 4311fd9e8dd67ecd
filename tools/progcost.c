/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What each path of the capture program costs, measured on this host with
 * bpf_prog_test_run_opts (repeat: the kernel times the runs; no traffic, no
 * other program, one CPU). `make bench` prints it as the "what costs what"
 * table of docs/BENCHMARKS.md. Needs root.
 *
 *   build/tools/progcost [--repeat N] [--batches B]        the table (markdown)
 *   build/tools/progcost --loop NAME [--seconds S]         one scenario in a loop (for perf)
 *
 * Each scenario loads the programs with its own rodata (as st_tap__open_opts
 * would), runs one crafted frame N times per batch, drains the ring between
 * batches (so it never fills: wakeups stay as in normal operation), and
 * reports the median of B batches of the kernel's average ns per run.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <linux/pkt_cls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bpf/connhash.h"
#include "bpf/shadowtap.h"
#include "tap.h"
#include "tap.skel.h"

#define SERVER 0x0a000001u
#define CLIENT 0x0a010203u
#define PORT 80

struct scenario {
	const char *name;
	const char *what;
	int egress;
	int arp;             /* not IP at all: the entry cost */
	uint16_t dport_in;   /* ingress: the destination port (another one: not captured) */
	uint8_t flags;
	uint32_t len;
	uint32_t permyriad;  /* 0: no sampling */
	int sampled_out;     /* pick a client port the sample leaves out */
	uint8_t copy_in, copy_out;
	uint32_t head;
};

static const struct scenario scenarios[] = {
	{ "not_ip", "an ARP frame: program entry, Ethernet parse, return", .arp = 1 },
	{ "other_port", "TCP for a port not captured: parse, port lookup, return",
	  .dport_in = 81, .flags = 0x18, .len = 100 },
	{ "bare_ack", "a bare ACK of a captured port: parse, lookup, skipped", .flags = 0x10 },
	{ "sampled_out", "100 B of a connection --sample 1 leaves out: parse, hash, counter",
	  .flags = 0x18, .len = 100, .permyriad = 100, .sampled_out = 1 },
	{ "sampled_in", "the same packet, connection in the sample: one record, 100 B",
	  .flags = 0x18, .len = 100, .permyriad = 100 },
	{ "rec_0", "SYN: one header-only record (80 B)", .flags = 0x02 },
	{ "rec_100", "100 B payload: one record, 256 B class", .flags = 0x18, .len = 100 },
	{ "rec_1400", "1400 B payload: one record, 2 KiB class", .flags = 0x18, .len = 1400 },
	{ "rec_3400", "3400 B payload: one record, 16 KiB class", .flags = 0x18, .len = 3400 },
	{ "head_3400", "3400 B, headers-only 256: one 256 B record, the rest elided",
	  .egress = 1, .flags = 0x18, .len = 3400, .copy_out = ST_COPY_HEAD, .head = 256 },
	{ "none_1400", "1400 B, copy policy none: counted, no record", .egress = 1,
	  .flags = 0x18, .len = 1400, .copy_out = ST_COPY_NONE },
	{ "none_fin", "a FIN, copy policy none: one header-only record", .egress = 1,
	  .flags = 0x11, .copy_out = ST_COPY_NONE },
};
#define N_SCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t client_port(const struct scenario *s)
{
	uint32_t c[4] = { htonl(CLIENT) }, sv[4] = { htonl(SERVER) };

	for (uint16_t p = 40000;; p++) {
		int in = st_conn_sampled_in(st_conn_hash(4, c, sv, p, PORT),
					    s->permyriad ? s->permyriad : ST_SAMPLE_ALL);

		if (in != s->sampled_out)
			return p;
	}
}

static size_t frame(const struct scenario *s, uint8_t *buf)
{
	uint16_t cport = client_port(s);
	uint8_t *ip = buf + 14, *th = ip + 20;

	memset(buf, 0, 14 + 20 + 20);
	buf[0] = buf[6] = 0x02;
	if (s->arp) {
		put16(buf + 12, 0x0806);
		memset(buf + 14, 0, 28);
		return 42;
	}
	put16(buf + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(40 + s->len));
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 6;
	put32(ip + 12, s->egress ? SERVER : CLIENT);
	put32(ip + 16, s->egress ? CLIENT : SERVER);
	put16(th, s->egress ? PORT : cport);
	put16(th + 2, s->egress ? cport : (s->dport_in ? s->dport_in : PORT));
	put32(th + 4, 1000);
	put32(th + 8, 2000);
	th[12] = 5 << 4;
	th[13] = s->flags;
	put16(th + 14, 512);
	for (uint32_t i = 0; i < s->len; i++)
		th[20 + i] = (uint8_t)i;
	return 54 + s->len;
}

static int drop(void *ctx, void *data, size_t size)
{
	return 0;
}

struct loaded {
	struct tap_bpf *skel;
	struct ring_buffer *rb;
	int prog_fd;
};

static unsigned ring_mb = 64;

static int load(const struct scenario *s, struct loaded *l)
{
	__u32 port = PORT;
	__u8 one = 1;

	l->skel = tap_bpf__open();
	if (!l->skel)
		return -errno;
	bpf_map__set_max_entries(l->skel->maps.ring, ring_mb << 20);
	l->skel->rodata->host_filter = ST_HOST_FILTER_OFF;
	l->skel->rodata->sample_permyriad = s->permyriad ? s->permyriad : ST_SAMPLE_ALL;
	l->skel->rodata->copy_in = s->copy_in;
	l->skel->rodata->copy_out = s->copy_out;
	if (s->head)
		l->skel->rodata->head_bytes = s->head;
	bpf_program__set_autoload(l->skel->progs.cgroup_skb_ingress, false);
	bpf_program__set_autoload(l->skel->progs.cgroup_skb_egress, false);
	if (tap_bpf__load(l->skel))
		return -errno;
	bpf_map__update_elem(l->skel->maps.ports, &port, 4, &one, 1, 0);
	l->rb = ring_buffer__new(bpf_map__fd(l->skel->maps.ring), drop, NULL, NULL);
	if (!l->rb)
		return -errno;
	l->prog_fd = bpf_program__fd(s->egress ? l->skel->progs.tc_egress
					       : l->skel->progs.tc_ingress);
	return 0;
}

static void unload(struct loaded *l)
{
	ring_buffer__free(l->rb);
	tap_bpf__destroy(l->skel);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Median over batches of the kernel's average ns per run (*min: the fastest batch, what the
 * path costs when nothing else on the host gets in the way); -1 on error. */
static long measure(const struct scenario *s, unsigned repeat, unsigned batches, double seconds,
		    long *min)
{
	static uint8_t buf[4096];
	size_t len = frame(s, buf);
	uint32_t *ns = calloc(batches ? batches : 1, sizeof(*ns));
	struct loaded l = { 0 };
	struct timespec t0, t;
	unsigned b = 0;
	long med;
	int err;

	err = load(s, &l);
	if (err) {
		fprintf(stderr, "progcost: %s: loading: %s\n", s->name, strerror(-err));
		unload(&l);
		free(ns);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = buf, .data_size_in = (__u32)len,
			    .repeat = repeat);

		if (bpf_prog_test_run_opts(l.prog_fd, &o) || o.retval != (__u32)TC_ACT_UNSPEC) {
			fprintf(stderr, "progcost: %s: test run failed (%s, verdict %u)\n", s->name,
				strerror(errno), o.retval);
			med = -1;
			goto out;
		}
		ring_buffer__consume(l.rb);
		if (seconds > 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds)
				break;
			continue;
		}
		ns[b++] = o.duration;
		if (b == batches)
			break;
	}
	qsort(ns, b, sizeof(*ns), cmp_u32);
	med = b ? (long)ns[b / 2] : 0;
	if (min)
		*min = b ? (long)ns[0] : 0;
out:
	unload(&l);
	free(ns);
	return med;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "repeat", required_argument, NULL, 'r' },
		{ "batches", required_argument, NULL, 'b' },
		{ "loop", required_argument, NULL, 'l' },
		{ "seconds", required_argument, NULL, 's' },
		{ "ring-mb", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned repeat = 500, batches = 101;
	const char *loop = NULL;
	double seconds = 10;
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			repeat = (unsigned)atoi(optarg);
			break;
		case 'b':
			batches = (unsigned)atoi(optarg);
			break;
		case 'l':
			loop = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'm':
			ring_mb = (unsigned)atoi(optarg);
			break;
		default:
			printf("Usage: progcost [--repeat N] [--batches B] [--ring-mb M] | --loop NAME "
			       "[--seconds S]\n"
			       "Scenarios:\n");
			for (size_t i = 0; i < N_SCEN; i++)
				printf("  %-12s %s\n", scenarios[i].name, scenarios[i].what);
			return c == 'h' ? 0 : 2;
		}
	}
	/* a batch must fit the ring (64 MiB) in the largest class, or it measures loss */
	if (!repeat || !batches || ring_mb < 1 || (ring_mb & (ring_mb - 1)) ||
	    repeat * (88ull + ST_CHUNK_MAX) > ((unsigned long long)ring_mb << 20)) {
		fprintf(stderr, "progcost: --ring-mb a power of two, --repeat 1..%llu, "
			"--batches >= 1\n", ((unsigned long long)ring_mb << 20) / (88 + ST_CHUNK_MAX));
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "progcost: run as root\n");
		return 1;
	}
	libbpf_set_print(NULL);
	if (loop) {
		for (size_t i = 0; i < N_SCEN; i++)
			if (!strcmp(scenarios[i].name, loop))
				return measure(&scenarios[i], repeat, 1, seconds, NULL) < 0;
		fprintf(stderr, "progcost: no scenario '%s' (--help lists them)\n", loop);
		return 2;
	}
	printf("| scenario | what runs | ns per run, median | fastest batch |\n|---|---|---|---|\n");
	for (size_t i = 0; i < N_SCEN; i++) {
		long min, ns = measure(&scenarios[i], repeat, batches, 0, &min);

		if (ns < 0)
			return 1;
		printf("| %s | %s | %ld | %ld |\n", scenarios[i].name, scenarios[i].what, ns, min);
		fflush(stdout);
	}
	return 0;
}
