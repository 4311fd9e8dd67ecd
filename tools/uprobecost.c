/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What a uprobe hit costs on this host: the price --tls pays per SSL call before any of
 * its programs' own work (docs/BENCHMARKS.md, "TLS"). A function of this program is called
 * in a loop, with nothing attached, with the TLS entry program (tls_free: a map lookup
 * that misses) as a uprobe, with the return program (tls_call_exit: a lookup that misses)
 * as a uretprobe, and with both, as --tls attaches them to SSL_read. Needs root.
 *
 *   build/tools/uprobecost [--calls N]
 *
 * Prints one markdown table row per case: ns per call (wall clock, this thread).
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tls.skel.h"

int st_uprobecost_target(int x);

/* noipa: the loop must call this symbol, not a clone of it (FACTS.md) */
__attribute__((noinline, noipa, used, visibility("default"))) int st_uprobecost_target(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double per_call(long n)
{
	volatile int s = 0;
	double t0 = now_ns();

	for (long i = 0; i < n; i++)
		s += st_uprobecost_target((int)i);
	return (now_ns() - t0) / (double)n;
}

static struct bpf_link *attach(struct bpf_program *p, bool ret)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = "st_uprobecost_target", .retprobe = ret);
	struct bpf_link *l = bpf_program__attach_uprobe_opts(p, 0 /* this process */,
							     "/proc/self/exe", 0, &o);

	if (!l) {
		fprintf(stderr, "uprobecost: attaching a %s: %s\n", ret ? "uretprobe" : "uprobe",
			strerror(errno));
		exit(1);
	}
	return l;
}

int main(int argc, char **argv)
{
	long n = argc > 2 && !strcmp(argv[1], "--calls") ? atol(argv[2]) : 100000;
	struct bpf_link *in, *out;
	struct tls_bpf *s;

	if (n <= 0) {
		fprintf(stderr, "usage: uprobecost [--calls N]\n");
		return 2;
	}
	s = tls_bpf__open();
	if (!s) {
		fprintf(stderr, "uprobecost: opening the TLS object: %s\n", strerror(errno));
		return 1;
	}
	bpf_map__set_max_entries(s->maps.ring, 1 << 20);
	bpf_program__set_autoload(s->progs.tls_fork, false);
	if (tls_bpf__load(s)) {
		fprintf(stderr, "uprobecost: loading (root?): %s\n", strerror(errno));
		return 1;
	}
	per_call(n / 10); /* warm up */
	printf("| case | ns per call |\n|---|---:|\n");
	printf("| nothing attached | %.0f |\n", per_call(n));
	{
		double t0 = now_ns();

		for (long i = 0; i < n; i++)
			(void)getppid();
		printf("| for scale: a getppid() syscall | %.0f |\n", (now_ns() - t0) / (double)n);
	}
	in = attach(s->progs.tls_free, false);
	printf("| uprobe (entry program) | %.0f |\n", per_call(n));
	out = attach(s->progs.tls_call_exit, true);
	printf("| uprobe + uretprobe (as on SSL_read) | %.0f |\n", per_call(n));
	bpf_link__destroy(in);
	printf("| uretprobe alone | %.0f |\n", per_call(n));
	bpf_link__destroy(out);
	tls_bpf__destroy(s);
	return 0;
}
