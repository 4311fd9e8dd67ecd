/* SPDX-License-Identifier: GPL-2.0-only */
/* `shadowtap ctl [--socket PATH] status|reload`: the daemon's control socket's client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ctl.h"
#include "log.h"
#include "optparse.h"
#include "opts.h"

struct ctl_cli {
	const char *socket;
};

static const struct st_opt ctl_rows[] = {
	ST_OPT_STRING("socket", 's', struct ctl_cli, socket, "PATH",
		      "the daemon's control socket (default " ST_CTL_SOCKET_DEFAULT ")"),
};

static const char usage_head[] =
	"Usage: shadowtap ctl [--socket PATH] status|reload\n\n"
	"  status   the daemon's jobs: command, target, state, main counters\n"
	"  reload   reread the configuration file (as SIGHUP does) and say what changed;\n"
	"           exits 1 when the daemon rejected the file (its jobs stay as they were)\n\n";

int cmd_ctl(int argc, char **argv)
{
	struct ctl_cli cli = { 0 };
	const struct st_optset set = ST_OPTSET(ctl_rows, &cli);
	char *text = NULL;
	size_t len = 0;
	int rc, first;
	FILE *f;

	rc = st_optset_parse(&set, 1, "ctl", usage_head, argc, argv, &first);
	if (rc)
		return rc < 0 ? ST_EXIT_OK : rc;
	if (first >= argc) {
		pr_err("ctl: a command is required: status or reload");
		return ST_EXIT_USAGE;
	}
	if (first + 1 < argc) {
		pr_err("ctl: unexpected argument '%s'", argv[first + 1]);
		return ST_EXIT_USAGE;
	}
	if (strcmp(argv[first], "status") && strcmp(argv[first], "reload")) {
		pr_err("ctl: unknown command '%s' (status, reload)", argv[first]);
		return ST_EXIT_USAGE;
	}
	f = open_memstream(&text, &len);
	if (!f) {
		pr_err("ctl: out of memory");
		return ST_EXIT_RUNTIME;
	}
	rc = st_ctl_request(cli.socket ? cli.socket : ST_CTL_SOCKET_DEFAULT, argv[first], f);
	fclose(f);
	if (!rc) {
		fwrite(text, 1, len, stdout);
		/* the daemon answers "error: ..." when it refused */
		rc = !strncmp(text, "error", 5) || !len;
		if (!len)
			pr_err("ctl: the daemon closed without an answer");
	}
	free(text);
	return rc ? ST_EXIT_RUNTIME : ST_EXIT_OK;
}
