/* SPDX-License-Identifier: GPL-2.0-only */
/* shadowtap: eBPF traffic tee and shadow agent. Command dispatch. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"
#include "optparse.h"
#include "opts.h"

#ifndef ST_VERSION
#define ST_VERSION "0.1.0"
#endif

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "capture", cmd_capture, "capture a service's TCP traffic to a pcap file" },
	{ "flows", cmd_flows, "reassemble TCP streams (pcap or live) into one file per direction" },
	{ "shadow", cmd_shadow, "replay a service's live requests to shadow targets" },
	{ "replay", cmd_replay, "replay the requests of a pcap to shadow targets" },
	{ "tee", cmd_tee, "tee a service's live connections (redacted) to a stream for receive" },
	{ "watch", cmd_watch, "a service's per-endpoint rate, errors and latency, in Prometheus" },
	{ "receive", cmd_receive, "read a tee stream: pcap, flow files, replay, live view" },
	{ "daemon", cmd_daemon, "run the jobs of a configuration file (metrics, reload)" },
	{ "ctl", cmd_ctl, "ask a running daemon for its status, or to reload" },
	{ "report", cmd_report, "merge tap compare reports (--merge); the canary verdict (--canary)" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: shadowtap COMMAND [options]\n\n"
		   "eBPF traffic tee and shadow agent: captures a service's TCP traffic in the\n"
		   "kernel without touching it, and reassembles, tees or replays it.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'shadowtap COMMAND --help' describes each command.\n");
}

/* The manual page (section 8): this text around every command's own part, which each
 * command prints from its option tables (--help-man), so the page and --help cannot drift. */
static void man_page(void)
{
	printf(".TH SHADOWTAP 8 \"\" \"shadowtap %s\" \"System Administration\"\n"
	       ".SH NAME\nshadowtap \\- eBPF traffic tee and shadow agent\n"
	       ".SH SYNOPSIS\n\\fBshadowtap\\fR \\fICOMMAND\\fR [\\fIoptions\\fR]\n"
	       ".SH DESCRIPTION\n"
	       "shadowtap captures a service's TCP traffic in the kernel (TC or cgroup_skb BPF\n"
	       "programs that always pass every packet) and reassembles it in user space: to a\n"
	       "pcap file, to one file per connection direction, or replayed to shadow targets\n"
	       "running a new build, with their answers compared to production's own (tap\n"
	       "compare); it tees a live service, redacted, to a workstation or through Kafka, and\n"
	       "runs as a daemon with many jobs. Production never waits for it: what does not fit\n"
	       "is dropped whole and counted.\n"
	       ".SH COMMANDS\n", ST_VERSION);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		printf(".TP\n\\fB%s\\fR\n%s\n", commands[i].name, commands[i].summary);
	printf(".SH OPTIONS\n"
	       "Durations take a unit (90, 90s, 15m, 1h, 500ms; a bare number is seconds).\n");
	fflush(stdout);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char *av[] = { (char *)commands[i].name, "--help-man", NULL };

		commands[i].run(2, av);
		fflush(stdout);
	}
	printf(".SH SIGNALS\n"
	       "SIGINT and SIGTERM stop a command cleanly: the ring is drained, files are\n"
	       "flushed, programs detached, the summary printed. SIGHUP reopens output files\n"
	       "(capture \\-w) and reloads the daemon's configuration.\n"
	       ".SH DIAGNOSTICS\n"
	       "Once running, a command says so in one line on stderr (what it captures, where\n"
	       "it goes, how it stops; \\-q: not), then what is wrong, each said once: nothing\n"
	       "listening on a port, a cgroup joined after its sockets were made, no packet\n"
	       "after \\-\\-warn\\-idle, a shadow target refusing (and its return), a pcap without\n"
	       "a connection on \\-\\-port. \\-\\-stats prints its main counters periodically; a\n"
	       "terminal shows them in a status line. The last line is the summary.\n"
	       ".SH EXIT STATUS\n"
	       "0: success. 1: a runtime error (unknown interface, missing cgroup, an output\n"
	       "that could not be written, no privileges). 2: a usage error. 3: tap compare's\n"
	       "verdict, with \\-\\-fail\\-on\\-regression or \\-\\-fail\\-on\\-slower, and\n"
	       "\\fBreport \\-\\-canary\\fR's fail verdict. 4: \\fBreport \\-\\-canary\\fR\n"
	       "without enough traffic.\n"
	       ".SH FILES\n"
	       ".TP\n/etc/shadowtap/shadowtap.conf\nthe daemon's configuration (an example is\n"
	       "installed next to it)\n"
	       ".SH SEE ALSO\n\\fBtcpdump\\fR(8), \\fBbpftool\\fR(8); the documentation in the\n"
	       "source tree's docs/ folder.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return ST_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return ST_EXIT_OK;
	}
	if (!strcmp(argv[1], "--man")) {
		man_page();
		return ST_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("shadowtap %s\n", ST_VERSION);
		return ST_EXIT_OK;
	}
	st_log_set_level(ST_LOG_WARN);
	/* Output errors (a closed pipe) come back as EPIPE, so runs end cleanly. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	{
		const char *names[sizeof(commands) / sizeof(commands[0])], *near;

		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			names[i] = commands[i].name;
		near = st_optparse_nearest(argv[1], names, sizeof(names) / sizeof(names[0]));
		if (near)
			pr_err("unknown command '%s' (did you mean %s?)", argv[1], near);
		else
			pr_err("unknown command '%s' (see shadowtap --help)", argv[1]);
	}
	return ST_EXIT_USAGE;
}
