/* SPDX-License-Identifier: GPL-2.0-only */
/* tee --kafka, receive --kafka through librdkafka (kafka.h, docs/KAFKA.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "connmap.h"
#include "kafka.h"
#include "log.h"
#include "loop.h"

#define KAFKA_LINE_MAX 1024
#define KAFKA_WARN_EVERY_NS (10ull * 1000000000) /* a repeated warning, at most this often */

ST_STAT_TABLE_DEFINE(st_kafka_prod_stat, struct st_kafka_prod_stats, ST_KAFKA_PROD_STATS);
ST_STAT_TABLE_DEFINE(st_kafka_cons_stat, struct st_kafka_cons_stats, ST_KAFKA_CONS_STATS);

/* ---- options ------------------------------------------------------------------------------ */

/* Keys whose values are secrets: never from the command line (ps, shell history). */
static const char *const secret_keys[] = {
	"sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem",
	"sasl.oauthbearer.client.secret", "ssl_key", "ssl.truststore.password",
};

/* Keys shadowtap sets itself: the queue's bounds come from its own options. */
static const char *const owned_keys[] = {
	"bootstrap.servers", "queue.buffering.max.kbytes", "queue.buffering.max.messages",
	"group.id", "enable.auto.offset.store", "auto.offset.reset",
};

bool st_kafka_key_secret(const char *key)
{
	for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++)
		if (!strcmp(key, secret_keys[i]))
			return true;
	/* any other password or secret too */
	return strstr(key, "password") || strstr(key, "secret");
}

static bool key_owned(const char *key)
{
	for (size_t i = 0; i < sizeof(owned_keys) / sizeof(owned_keys[0]); i++)
		if (!strcmp(key, owned_keys[i]))
			return true;
	return false;
}

static int opt_kv(void *o, const char *val, char *err, size_t errlen)
{
	struct st_kafka_conf *k = o;
	const char *eq = strchr(val, '=');
	char key[128];

	if (!eq || eq == val || (size_t)(eq - val) >= sizeof(key)) {
		snprintf(err, errlen, "'%s' is not key=value (a librdkafka setting)", val);
		return -1;
	}
	memcpy(key, val, (size_t)(eq - val));
	key[eq - val] = 0;
	if (st_kafka_key_secret(key)) {
		snprintf(err, errlen, "%s is a secret: put it in a file given with --kafka-opt-file "
			 "(the command line is visible to every user of the host)", key);
		return -1;
	}
	if (key_owned(key)) {
		snprintf(err, errlen, "%s is set by shadowtap itself (--kafka, --group, --from, "
			 "--max-queue-mb)", key);
		return -1;
	}
	if (k->n_kv >= ST_KAFKA_KV_MAX) {
		snprintf(err, errlen, "more than %d settings", ST_KAFKA_KV_MAX);
		return -1;
	}
	k->kv[k->n_kv++] = val;
	return 0;
}

const struct st_opt st_kafka_opts[] = {
	ST_OPT_STRING("kafka", 0, struct st_kafka_conf, brokers, "BROKERS",
		      "Kafka instead of a file or link: bootstrap brokers,\n"
		      "HOST:PORT[,HOST:PORT...] (docs/KAFKA.md)"),
	ST_OPT_STRING("topic", 0, struct st_kafka_conf, topic, "TOPIC", "--kafka: the topic"),
	ST_OPT_FUNC("kafka-opt", 0, "KEY=VALUE", ST_OPTF_REPEAT, opt_kv,
		    "--kafka: a librdkafka setting (security.protocol, sasl.*,\n"
		    "ssl.*, compression.codec ...; repeatable); not secrets"),
	ST_OPT_STRING("kafka-opt-file", 0, struct st_kafka_conf, opt_file, "FILE",
		      "--kafka: KEY=VALUE lines (# comments), secrets included\n"
		      "(sasl.password ...); keep it readable by root only"),
};
const size_t st_kafka_opts_n = sizeof(st_kafka_opts) / sizeof(st_kafka_opts[0]);

const struct st_opt st_kafka_producer_opts[] = {
	ST_OPT_UINT("kafka-message-kb", 0, struct st_kafka_conf, msg_max, "N", 128, 900,
		    ST_OPTF_KIB,
		    "--kafka: stream record bytes in one message, KiB, before\n"
		    "compression (default 256)"),
};
const size_t st_kafka_producer_opts_n =
	sizeof(st_kafka_producer_opts) / sizeof(st_kafka_producer_opts[0]);

static const char *const from_choices[] = { "earliest", "latest", NULL };

const struct st_opt st_kafka_consumer_opts[] = {
	ST_OPT_STRING("group", 0, struct st_kafka_conf, group, "GROUP",
		      "--kafka: the consumer group (receivers of one group share\n"
		      "the partitions)"),
	ST_OPT_CHOICE("from", 0, struct st_kafka_conf, from, "earliest|latest", from_choices,
		      "--kafka: where a group without committed offsets starts\n"
		      "(default earliest)"),
};
const size_t st_kafka_consumer_opts_n =
	sizeof(st_kafka_consumer_opts) / sizeof(st_kafka_consumer_opts[0]);

bool st_kafka_conf_check(const struct st_kafka_conf *k, bool consumer, const char *cmd)
{
	if (!k->brokers) {
		if (k->topic || k->n_kv || k->opt_file || k->group || k->msg_max) {
			pr_err("%s: --topic, --kafka-opt, --kafka-opt-file, --group and "
			       "--kafka-message-kb are for --kafka", cmd);
			return false;
		}
		return true;
	}
	if (!*k->brokers) {
		pr_err("%s: --kafka needs a broker list (HOST:PORT[,HOST:PORT...])", cmd);
		return false;
	}
	if (!k->topic || !*k->topic) {
		pr_err("%s: --kafka needs --topic TOPIC", cmd);
		return false;
	}
	if (consumer && (!k->group || !*k->group)) {
		pr_err("%s: --kafka needs --group GROUP (the receivers sharing the topic)", cmd);
		return false;
	}
	return true;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, const char *where,
		    const char *cmd)
{
	char why[512];

	if (rd_kafka_conf_set(conf, key, val, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		pr_err("%s: %s: %s", cmd, where, why);
		return -1;
	}
	return 0;
}

/* KEY=VALUE lines of --kafka-opt-file. */
static int conf_file(rd_kafka_conf_t *conf, const char *path, const char *cmd)
{
	char line[KAFKA_LINE_MAX], where[KAFKA_LINE_MAX + 64];
	FILE *f = fopen(path, "re");
	int no = 0, rc = 0;

	if (!f) {
		pr_err("%s: --kafka-opt-file %s: %s", cmd, path, strerror(errno));
		return -1;
	}
	while (!rc && fgets(line, sizeof(line), f)) {
		char *p = line, *eq, *end;

		no++;
		line[strcspn(line, "\r\n")] = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (!eq || eq == p) {
			pr_err("%s: --kafka-opt-file %s:%d: not KEY=VALUE", cmd, path, no);
			rc = -1;
			break;
		}
		*eq = 0;
		for (end = eq; end > p && (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = 0;
		if (key_owned(p)) {
			pr_err("%s: --kafka-opt-file %s:%d: %s is set by shadowtap itself", cmd, path,
			       no, p);
			rc = -1;
			break;
		}
		snprintf(where, sizeof(where), "--kafka-opt-file %s:%d", path, no);
		rc = conf_set(conf, p, eq + 1 + strspn(eq + 1, " \t"), where, cmd);
	}
	fclose(f);
	return rc;
}

/* The configuration both ends share: brokers, the file, then --kafka-opt (the command line
 * wins). Sets *compressed when a compression codec other than none is configured. */
static rd_kafka_conf_t *conf_new(const struct st_kafka_conf *k, const char *cmd, bool *compressed,
				 const char *const *defaults)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char val[64];
	size_t vl = sizeof(val);

	if (!conf) {
		pr_err("%s: --kafka: out of memory", cmd);
		return NULL;
	}
	for (; defaults && *defaults; defaults += 2)
		if (conf_set(conf, defaults[0], defaults[1], defaults[0], cmd))
			goto fail;
	if (conf_set(conf, "bootstrap.servers", k->brokers, "--kafka", cmd) ||
	    conf_set(conf, "client.id", "shadowtap", "client.id", cmd) ||
	    (k->opt_file && conf_file(conf, k->opt_file, cmd)))
		goto fail;
	for (unsigned i = 0; i < k->n_kv; i++) {
		char key[128];
		const char *eq = strchr(k->kv[i], '=');

		memcpy(key, k->kv[i], (size_t)(eq - k->kv[i]));
		key[eq - k->kv[i]] = 0;
		if (conf_set(conf, key, eq + 1, "--kafka-opt", cmd))
			goto fail;
	}
	if (compressed)
		*compressed = rd_kafka_conf_get(conf, "compression.codec", val, &vl) ==
				      RD_KAFKA_CONF_OK && strcmp(val, "none");
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

bool st_kafka_conf_valid(const struct st_kafka_conf *k, const char *cmd)
{
	rd_kafka_conf_t *conf = conf_new(k, cmd, NULL, NULL);

	if (!conf)
		return false;
	rd_kafka_conf_destroy(conf);
	return true;
}

/* librdkafka's own log lines: detail (-v), or debug. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	if (level <= 4)
		pr_info("kafka: %s: %s", fac, buf);
	else
		pr_debug("kafka: %s: %s", fac, buf);
}

/* ---- producer ------------------------------------------------------------------------------ */

/* What a message carries, packed into its opaque pointer (21 bits each: a message is below
 * 2 MiB, so are its records and data bytes). */
#define PACK(len, recs, data) \
	((void *)(uintptr_t)((uint64_t)(len) | (uint64_t)(recs) << 21 | (uint64_t)(data) << 42))
#define UNPACK(p, sh) (((uint64_t)(uintptr_t)(p) >> (sh)) & ((1u << 21) - 1))

struct st_kafka_producer {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	struct st_kmsg_batcher *b;
	const char *cmd;
	const char *topic;
	uint64_t inflight;      /* message bytes produced, not yet reported */
	uint64_t last_warn_ns;  /* the client's errors */
	uint64_t last_dr_warn_ns; /* delivery failures */
	struct st_kafka_prod_stats st;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct st_kafka_producer *p = opaque;
	uint64_t len = UNPACK(m->_private, 0), recs = UNPACK(m->_private, 21),
		 data = UNPACK(m->_private, 42);

	p->inflight -= len;
	if (m->err) {
		p->st.kafka_failed_msgs++;
		p->st.kafka_failed_records += recs;
		p->st.kafka_failed_bytes += data;
		if (st_mono_ns() - p->last_dr_warn_ns >= KAFKA_WARN_EVERY_NS) {
			p->last_dr_warn_ns = st_mono_ns();
			pr_warn("%s: --kafka: a message was not delivered (%s); %" PRIu64
				" so far, their records are lost", p->cmd, rd_kafka_err2str(m->err),
				p->st.kafka_failed_msgs);
		}
		return;
	}
	p->st.kafka_delivered_msgs++;
	p->st.kafka_delivered_bytes += len;
	p->st.kafka_delivered_records += recs;
}

static void prod_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct st_kafka_producer *p = opaque;

	if (st_mono_ns() - p->last_warn_ns >= KAFKA_WARN_EVERY_NS) {
		p->last_warn_ns = st_mono_ns();
		pr_warn("%s: --kafka: %s", p->cmd, reason);
	}
}

/* The batcher's messages: produced, or refused at once (never waits). */
static int produce(void *ctx, const char *key, size_t klen, const uint8_t *msg, size_t len,
		   uint32_t records, uint64_t data_bytes)
{
	struct st_kafka_producer *p = ctx;
	rd_kafka_resp_err_t err;

	if (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)msg, len,
			     key, klen, PACK(len, records, data_bytes)) == 0) {
		p->inflight += len;
		if (p->inflight > p->st.kafka_inflight_peak)
			p->st.kafka_inflight_peak = p->inflight;
		return 0;
	}
	err = rd_kafka_last_error();
	if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL &&
	    st_mono_ns() - p->last_warn_ns >= KAFKA_WARN_EVERY_NS) {
		p->last_warn_ns = st_mono_ns();
		pr_warn("%s: --kafka: a message refused: %s", p->cmd, rd_kafka_err2str(err));
	}
	return -1;
}

static int prod_record(void *ctx, const uint8_t *fixed, size_t flen, const uint8_t *data,
		       size_t dlen)
{
	struct st_kafka_producer *p = ctx;

	return st_kmsg_batcher__record(p->b, fixed, flen, data, dlen);
}

static int prod_flush(void *ctx)
{
	struct st_kafka_producer *p = ctx;
	int rc = st_kmsg_batcher__flush(p->b);

	rd_kafka_poll(p->rk, 0);
	return rc;
}

static uint64_t prod_pending(void *ctx)
{
	struct st_kafka_producer *p = ctx;

	return st_kmsg_batcher__pending(p->b) + p->inflight;
}

const struct st_stream_rec_ops st_kafka_producer_rec_ops = {
	.record = prod_record, .flush = prod_flush, .pending = prod_pending,
};

/* Before the user's settings (which may change them): an idempotent producer keeps a
 * partition's messages in order through retries, and writes each once. */
static const char *const prod_defaults[] = { "enable.idempotence", "true", NULL };

struct st_kafka_producer *st_kafka_producer__new(const struct st_kafka_conf *k, uint64_t max_queue,
						 int level, const char *cmd)
{
	struct st_kafka_producer *p = calloc(1, sizeof(*p));
	rd_kafka_conf_t *conf = NULL;
	char num[32], why[512], host[256] = "?";
	bool compressed = false;
	uint64_t kb = max_queue >> 10, msgs = max_queue >> 9;

	if (!p) {
		pr_err("%s: --kafka: out of memory", cmd);
		return NULL;
	}
	p->cmd = cmd;
	p->topic = k->topic;
	conf = conf_new(k, cmd, &compressed, prod_defaults);
	if (!conf)
		goto fail;
	/* the queue holds what tee's own bound lets through, plus the small records that
	 * always go (OPEN, END, CLOSE): a quarter more */
	snprintf(num, sizeof(num), "%" PRIu64, kb + kb / 4 + 1024);
	if (conf_set(conf, "queue.buffering.max.kbytes", num, "queue.buffering.max.kbytes", cmd))
		goto fail;
	snprintf(num, sizeof(num), "%" PRIu64, msgs < 1000 ? 1000 : msgs);
	if (conf_set(conf, "queue.buffering.max.messages", num, "queue.buffering.max.messages",
		     cmd))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_error_cb(conf, prod_error_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_opaque(conf, p);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!p->rk) {
		pr_err("%s: --kafka: %s", cmd, why);
		goto fail;
	}
	conf = NULL; /* the handle owns it */
	p->rkt = rd_kafka_topic_new(p->rk, k->topic, NULL);
	if (!p->rkt) {
		pr_err("%s: --topic %s: %s", cmd, k->topic, rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	gethostname(host, sizeof(host) - 1);
	p->b = st_kmsg_batcher__new(host, st_random_seed(), k->msg_max ? k->msg_max :
								       ST_KMSG_RAW_DEFAULT,
				    compressed ? 0 : (level ? level : 1), produce, p);
	if (!p->b) {
		pr_err("%s: --kafka: %s", cmd, strerror(errno));
		goto fail;
	}
	return p;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	st_kafka_producer__free(p);
	return NULL;
}

void st_kafka_producer__poll(struct st_kafka_producer *p)
{
	rd_kafka_poll(p->rk, 0);
}

int st_kafka_producer__close(struct st_kafka_producer *p, int wait_ms)
{
	uint64_t until = st_mono_ns() + (uint64_t)wait_ms * 1000000;
	int left;

	st_kmsg_batcher__flush(p->b);
	while (rd_kafka_outq_len(p->rk) > 0 && st_mono_ns() < until)
		rd_kafka_poll(p->rk, 50);
	rd_kafka_poll(p->rk, 0);
	left = rd_kafka_outq_len(p->rk);
	if (left > 0) {
		/* purged: their delivery reports count them as failed */
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(p->rk, 100);
		pr_warn("%s: --kafka: Kafka did not take %d messages within %d ms: lost", p->cmd,
			left, wait_ms);
	}
	if (p->st.kafka_failed_msgs)
		pr_warn("%s: --kafka: %" PRIu64 " messages (%" PRIu64 " records, %" PRIu64
			" stream bytes) were not delivered to Kafka", p->cmd, p->st.kafka_failed_msgs,
			p->st.kafka_failed_records, p->st.kafka_failed_bytes);
	return p->st.kafka_failed_msgs || left > 0 ? -1 : 0;
}

void st_kafka_producer__stats(struct st_kafka_producer *p, struct st_kafka_prod_stats *s,
			      struct st_kmsg_batch_stats *b)
{
	*s = p->st;
	st_kmsg_batcher__stats(p->b, b);
}

void st_kafka_producer__free(struct st_kafka_producer *p)
{
	if (!p)
		return;
	if (p->rkt)
		rd_kafka_topic_destroy(p->rkt);
	if (p->rk) {
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(p->rk, 0);
		rd_kafka_destroy(p->rk);
	}
	st_kmsg_batcher__free(p->b);
	free(p);
}

/* ---- consumer ------------------------------------------------------------------------------ */

#define KAFKA_REVOKED_MAX 4096 /* partitions remembered between a revoke and the next assign */

struct st_kafka_consumer {
	rd_kafka_t *rk;
	struct st_kmsg_reader *r;
	/* The eager protocol revokes every partition at each rebalance and assigns most of them
	 * again: connections are closed only for the partitions the next assignment leaves out
	 * (no messages are read in between). */
	int32_t revoked[KAFKA_REVOKED_MAX];
	int n_revoked;
	const char *cmd;
	bool subscribed;
	uint64_t last_warn_ns;
	uint64_t last_ts;
	struct st_kafka_cons_stats st;
};

static void cons_warn(struct st_kafka_consumer *c, const char *what, const char *why)
{
	if (st_mono_ns() - c->last_warn_ns >= KAFKA_WARN_EVERY_NS) {
		c->last_warn_ns = st_mono_ns();
		pr_warn("%s: --kafka: %s: %s", c->cmd, what, why);
	}
}

static void cons_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct st_kafka_consumer *c = opaque;

	c->st.kafka_consume_errors++;
	cons_warn(c, "consumer", reason);
}

static void commit(struct st_kafka_consumer *c)
{
	rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);

	if (!err)
		c->st.kafka_commits++;
	else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		cons_warn(c, "commit", rd_kafka_err2str(err));
}

/* A partition moving away: its connections end here (their partial requests are not
 * replayed: the outputs see a close without the rest), what was handed over is committed,
 * so the next owner starts after it. A partition revoked and assigned again keeps its
 * connections (records read again are skipped by offset). */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct st_kafka_consumer *c = opaque;
	bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	rd_kafka_error_t *e = NULL;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		c->st.kafka_rebalances++;
		pr_info("%s: --kafka: %d partitions assigned", c->cmd, parts->cnt);
		for (int i = 0; i < c->n_revoked; i++) {
			bool kept = false;

			for (int j = 0; j < parts->cnt && !kept; j++)
				kept = parts->elems[j].partition == c->revoked[i];
			if (!kept)
				st_kmsg_reader__close_partition(c->r, c->revoked[i], c->last_ts);
		}
		c->n_revoked = 0;
		if (coop)
			e = rd_kafka_incremental_assign(rk, parts);
		else
			rd_kafka_assign(rk, parts);
	} else {
		if (rd_kafka_assignment_lost(rk)) {
			/* taken out of the group (stalled past session.timeout.ms): the next
			 * owners start at the last commit, and may replay again what this one
			 * handed over since */
			c->st.kafka_lost_assignments++;
			pr_warn("%s: --kafka: %d partitions lost: this receiver was taken out of the "
				"group (it stalled past session.timeout.ms); their next owners may replay "
				"again up to one commit interval of what it handed over", c->cmd,
				parts->cnt);
		}
		for (int i = 0; i < parts->cnt; i++) {
			if (c->n_revoked < KAFKA_REVOKED_MAX)
				c->revoked[c->n_revoked++] = parts->elems[i].partition;
			else
				st_kmsg_reader__close_partition(c->r, parts->elems[i].partition,
								c->last_ts);
		}
		commit(c);
		pr_info("%s: --kafka: %d partitions revoked", c->cmd, parts->cnt);
		if (coop)
			e = rd_kafka_incremental_unassign(rk, parts);
		else
			rd_kafka_assign(rk, NULL);
	}
	if (e) {
		cons_warn(c, "rebalance", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}
}

/* Before the user's settings: what was handed over is committed within a second (librdkafka's
 * default is 5 s: more to replay after a crash). */
static const char *const cons_defaults[] = { "auto.commit.interval.ms", "1000", NULL };

struct st_kafka_consumer *st_kafka_consumer__new(const struct st_kafka_conf *k,
						 const struct st_stream_ops *ops, void *ctx,
						 const char *cmd)
{
	struct st_kafka_consumer *c = calloc(1, sizeof(*c));
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_conf_t *conf;
	rd_kafka_resp_err_t err;
	char why[512];

	if (!c) {
		pr_err("%s: --kafka: out of memory", cmd);
		return NULL;
	}
	c->cmd = cmd;
	c->r = st_kmsg_reader__new(ops, ctx, 0);
	if (!c->r) {
		pr_err("%s: --kafka: %s", cmd, strerror(errno));
		goto fail;
	}
	conf = conf_new(k, cmd, NULL, cons_defaults);
	if (!conf)
		goto fail;
	/* offsets are stored by hand once a message's events were handed to the outputs;
	 * the periodic commit takes only those */
	if (conf_set(conf, "group.id", k->group, "--group", cmd) ||
	    conf_set(conf, "auto.offset.reset", k->from ? "latest" : "earliest", "--from", cmd) ||
	    conf_set(conf, "enable.auto.offset.store", "false", "enable.auto.offset.store", cmd)) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_error_cb(conf, cons_error_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_opaque(conf, c);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!c->rk) {
		rd_kafka_conf_destroy(conf);
		pr_err("%s: --kafka: %s", cmd, why);
		goto fail;
	}
	rd_kafka_poll_set_consumer(c->rk);
	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, k->topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(c->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		pr_err("%s: --topic %s: %s", cmd, k->topic, rd_kafka_err2str(err));
		goto fail;
	}
	c->subscribed = true;
	return c;
fail:
	st_kafka_consumer__free(c);
	return NULL;
}

int st_kafka_consumer__poll(struct st_kafka_consumer *c, int max)
{
	int n = 0;

	while (n < max) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
		char err[256];
		int rc;

		if (!m)
			break;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				c->st.kafka_consume_errors++;
				cons_warn(c, "consume", rd_kafka_message_errstr(m));
			}
			rd_kafka_message_destroy(m);
			continue;
		}
		n++;
		c->last_ts = st_realtime_ns();
		rc = st_kmsg_reader__feed(c->r, m->payload, m->len, m->partition, err, sizeof(err));
		if (rc == -1) {
			char what[96];

			snprintf(what, sizeof(what), "message at partition %" PRId32 " offset %" PRId64
				 " skipped", m->partition, m->offset);
			cons_warn(c, what, err);
		} else if (rc) {
			pr_err("%s: --kafka: partition %" PRId32 " offset %" PRId64 ": %s", c->cmd,
			       m->partition, m->offset, err);
			rd_kafka_message_destroy(m);
			return -1;
		}
		/* handed over (or refused for good): the next owner starts after it */
		rd_kafka_offset_store(m->rkt, m->partition, m->offset);
		rd_kafka_message_destroy(m);
	}
	return n;
}

void st_kafka_consumer__close(struct st_kafka_consumer *c, uint64_t ts)
{
	if (ts)
		c->last_ts = ts;
	if (c->subscribed) {
		/* serves the revoke: connections closed, offsets committed */
		commit(c);
		rd_kafka_consumer_close(c->rk);
		c->subscribed = false;
	}
	for (int i = 0; i < c->n_revoked; i++)
		st_kmsg_reader__close_partition(c->r, c->revoked[i], c->last_ts);
	c->n_revoked = 0;
	st_kmsg_reader__close_partition(c->r, -1, c->last_ts);
}

void st_kafka_consumer__stats(const struct st_kafka_consumer *c, struct st_kafka_cons_stats *s,
			      struct st_kmsg_read_stats *r)
{
	*s = c->st;
	st_kmsg_reader__stats(c->r, r);
}

void st_kafka_consumer__free(struct st_kafka_consumer *c)
{
	if (!c)
		return;
	if (c->rk) {
		if (c->subscribed)
			rd_kafka_consumer_close(c->rk);
		rd_kafka_destroy(c->rk);
	}
	st_kmsg_reader__free(c->r);
	free(c);
}
