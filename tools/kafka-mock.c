/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kafka-mock: a Kafka cluster for tests, with no broker: librdkafka's mock cluster
 * (rdkafka_mock.h) on loopback, in this process, so separate `shadowtap tee --kafka` and
 * `shadowtap receive --kafka` processes can use it (tests/integration/test_kafka.sh).
 *
 *   kafka-mock [--brokers N] [--partitions N] [--topic T]
 *
 * Prints the bootstrap servers (one line) on stdout, then reads commands on stdin, one a
 * line, and answers each with "ok" or "error ..." on stdout:
 *   down | up              every broker refuses connections / takes them again
 *   rtt MS                 every broker answers MS ms late
 *   produce-errors N CODE  the next N Produce requests fail with Kafka error CODE
 *                          (e.g. 7: REQUEST_TIMED_OUT, 6: NOT_LEADER_FOR_PARTITION)
 * It ends at the end of stdin, or at SIGINT/SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static const char usage[] =
	"Usage: kafka-mock [--brokers N] [--partitions N] [--topic T]\n"
	"A mock Kafka cluster on loopback (librdkafka's); prints its bootstrap servers, then\n"
	"takes commands on stdin: down, up, rtt MS, produce-errors N CODE. Ends at EOF.\n";

static int num(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int command(rd_kafka_mock_cluster_t *mc, char *line)
{
	char *argv[4] = { 0 };
	int argc = 0, a, b;
	char *save = NULL;

	for (char *t = strtok_r(line, " \t\r\n", &save); t && argc < 4;
	     t = strtok_r(NULL, " \t\r\n", &save))
		argv[argc++] = t;
	if (!argc)
		return 0;
	if (!strcmp(argv[0], "down") && argc == 1)
		return rd_kafka_mock_broker_set_down(mc, -1) ? -1 : 0;
	if (!strcmp(argv[0], "up") && argc == 1)
		return rd_kafka_mock_broker_set_up(mc, -1) ? -1 : 0;
	if (!strcmp(argv[0], "rtt") && argc == 2 && !num(argv[1], 0, 600000, &a))
		return rd_kafka_mock_broker_set_rtt(mc, -1, a) ? -1 : 0;
	if (!strcmp(argv[0], "produce-errors") && argc == 3 && !num(argv[1], 1, 1000000, &a) &&
	    !num(argv[2], -200, 200, &b)) {
		rd_kafka_resp_err_t *errs = malloc(sizeof(*errs) * (size_t)a);

		if (!errs)
			return -1;
		for (int i = 0; i < a; i++)
			errs[i] = (rd_kafka_resp_err_t)b;
		rd_kafka_mock_push_request_errors_array(mc, 0 /* Produce */, (size_t)a, errs);
		free(errs);
		return 0;
	}
	return -2;
}

int main(int argc, char **argv)
{
	int brokers = 1, partitions = 3;
	const char *topic = "shadowtap";
	char errstr[512], line[256];
	rd_kafka_conf_t *conf;
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *rk;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		if (i + 1 >= argc)
			goto bad;
		if (!strcmp(argv[i], "--brokers")) {
			if (num(argv[++i], 1, 16, &brokers))
				goto bad;
		} else if (!strcmp(argv[i], "--partitions")) {
			if (num(argv[++i], 1, 1000, &partitions))
				goto bad;
		} else if (!strcmp(argv[i], "--topic") && *argv[i + 1]) {
			topic = argv[++i];
		} else {
			goto bad;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	/* the handle only keeps the cluster's books */
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "kafka-mock: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (!mc || rd_kafka_mock_topic_create(mc, topic, partitions, 1)) {
		fprintf(stderr, "kafka-mock: cannot create the mock cluster or its topic\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		int rc = command(mc, line);

		printf("%s\n", rc == 0 ? "ok" : rc == -2 ? "error: unknown command" : "error");
		fflush(stdout);
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
bad:
	fprintf(stderr, "kafka-mock: bad arguments (see --help)\n");
	return 2;
}
