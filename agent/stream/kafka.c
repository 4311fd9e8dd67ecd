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

/* ---- --from ------------------------------------------------------------------------------ */

#define FROM_FORMS "2026-11-30T18:00:00Z (RFC 3339, with Z or an offset), @1796061600 (unix " \
		   "seconds) or -10m (before now: s, m, h, d)"
#define FROM_MAX_S (253402300799ll) /* 9999-12-31T23:59:59Z */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n digits exactly at *p, advanced past them. */
static int digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* .fraction at *p (any number of digits), as ms. */
static int fraction_ms(const char **p, int64_t *ms)
{
	int64_t v = 0, scale = 100;

	if (**p != '.')
		return 0;
	(*p)++;
	if (**p < '0' || **p > '9')
		return -1;
	for (; **p >= '0' && **p <= '9'; (*p)++, scale /= 10)
		v += (**p - '0') * scale;
	*ms = v;
	return 0;
}

/* YYYY-MM-DD[T ]HH:MM[:SS[.frac]](Z|+HH:MM|+HHMM|+HH) */
static int parse_rfc3339(const char *s, int64_t *ms, char *err, size_t errlen)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	const char *p = s;
	int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, sign = 0, dim;
	int64_t frac = 0, t;

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		goto bad;
	if (!*p) {
		snprintf(err, errlen, "'%s' needs a time of day and its zone "
			 "(%.10sT00:00:00Z)", s, s);
		return -1;
	}
	if ((*p != 'T' && *p != 't' && *p != ' ') || (p++, digits(&p, 2, &h)) || *p++ != ':' ||
	    digits(&p, 2, &mi))
		goto bad;
	if (*p == ':' && (p++, digits(&p, 2, &sec)))
		goto bad;
	if (fraction_ms(&p, &frac))
		goto bad;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh))
			goto bad;
		if (*p == ':')
			p++;
		if ((*p || p[-1] == ':') && digits(&p, 2, &om)) /* +HH:MM, +HHMM, or +HH */
			goto bad;
	} else if (!*p) {
		snprintf(err, errlen, "'%s' needs its zone: Z (UTC) or an offset such as +01:00", s);
		return -1;
	} else {
		goto bad;
	}
	if (*p)
		goto bad;
	dim = mo >= 1 && mo <= 12 ? mdays[mo - 1] : 0;
	if (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		dim = 29;
	if (mo < 1 || mo > 12 || d < 1 || d > dim || h > 23 || mi > 59 || sec > 60 || oh > 23 ||
	    om > 59) {
		snprintf(err, errlen, "'%s' is not a valid date and time", s);
		return -1;
	}
	if (sec == 60) /* a leap second: its time is the next second's */
		frac = 0;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    sign * (oh * 3600 + om * 60);
	if (t < 0) {
		snprintf(err, errlen, "'%s' is before 1970", s);
		return -1;
	}
	*ms = t * 1000 + frac;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not earliest, latest or a time: " FROM_FORMS, s);
	return -1;
}

int st_kafka_parse_from(const char *s, int64_t now_ms, int *from, int64_t *ms, char *err,
			size_t errlen)
{
	const char *p;
	int64_t t;

	if (!strcmp(s, "earliest") || !strcmp(s, "latest")) {
		*from = *s == 'e' ? ST_KAFKA_FROM_EARLIEST : ST_KAFKA_FROM_LATEST;
		return 0;
	}
	if (*s == '@') { /* unix seconds */
		int64_t v = 0, frac = 0;

		p = s + 1;
		if (*p < '0' || *p > '9')
			goto bad;
		for (; *p >= '0' && *p <= '9'; p++) {
			v = v * 10 + (*p - '0');
			if (v > FROM_MAX_S)
				goto range;
		}
		if (fraction_ms(&p, &frac) || *p)
			goto bad;
		*from = ST_KAFKA_FROM_TIME;
		*ms = v * 1000 + frac;
		return 0;
	}
	if (*s == '-' && s[1] >= '0' && s[1] <= '9') { /* before now: -1h30m */
		int64_t total = 0;

		for (p = s + 1; *p;) {
			int64_t n = 0, unit;

			if (*p < '0' || *p > '9')
				goto bad;
			for (; *p >= '0' && *p <= '9'; p++) {
				n = n * 10 + (*p - '0');
				if (n > FROM_MAX_S)
					goto range;
			}
			switch (*p++) {
			case 's': unit = 1; break;
			case 'm': unit = 60; break;
			case 'h': unit = 3600; break;
			case 'd': unit = 86400; break;
			default:
				snprintf(err, errlen, "'%s': a duration needs its unit after each "
					 "number: s, m, h or d (-90s, -10m, -1h30m)", s);
				return -1;
			}
			total += n * unit;
			if (total > FROM_MAX_S)
				goto range;
		}
		if (now_ms - total * 1000 < 0)
			goto range;
		*from = ST_KAFKA_FROM_TIME;
		*ms = now_ms - total * 1000;
		return 0;
	}
	p = s;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p != s && !*p) {
		snprintf(err, errlen, "'%s': a bare number is ambiguous (seconds? ms?); unix "
			 "seconds are written @%s", s, s);
		return -1;
	}
	if (parse_rfc3339(s, &t, err, errlen))
		return -1;
	*from = ST_KAFKA_FROM_TIME;
	*ms = t;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not earliest, latest or a time: " FROM_FORMS, s);
	return -1;
range:
	snprintf(err, errlen, "'%s' is out of range (1970 to 9999)", s);
	return -1;
}

static int opt_from(void *o, const char *val, char *err, size_t errlen)
{
	struct st_kafka_conf *k = o;

	return st_kafka_parse_from(val, (int64_t)(st_loop_realtime_ns() / 1000000), &k->from,
				   &k->from_ms, err, errlen);
}

const struct st_opt st_kafka_consumer_opts[] = {
	ST_OPT_STRING("group", 0, struct st_kafka_conf, group, "GROUP",
		      "--kafka: the consumer group (receivers of one group share\n"
		      "the partitions)"),
	ST_OPT_FUNC("from", 0, "earliest|latest|TIME", 0, opt_from,
		    "--kafka: where a group without committed offsets starts\n"
		    "(default earliest); TIME: 2026-11-30T18:00:00Z (with Z or\n"
		    "an offset), @UNIXSECONDS, or -10m, -2h, -30s (before now)"),
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

/* librdkafka's own log lines: detail (-v), or debug. They quote what brokers said: escaped. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	char e[1024];

	st_log_escape(e, sizeof(e), buf, strlen(buf));
	if (level <= 4)
		pr_info("kafka: %s: %s", fac, e);
	else
		pr_debug("kafka: %s: %s", fac, e);
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
		if (st_loop_mono_ns() - p->last_dr_warn_ns >= KAFKA_WARN_EVERY_NS) {
			p->last_dr_warn_ns = st_loop_mono_ns();
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
	char e[512];

	if (st_loop_mono_ns() - p->last_warn_ns >= KAFKA_WARN_EVERY_NS) {
		p->last_warn_ns = st_loop_mono_ns();
		pr_warn("%s: --kafka: %s", p->cmd, st_log_escape(e, sizeof(e), reason, strlen(reason)));
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
	    st_loop_mono_ns() - p->last_warn_ns >= KAFKA_WARN_EVERY_NS) {
		p->last_warn_ns = st_loop_mono_ns();
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
	p->b = st_kmsg_batcher__new(host, st_connmap_random_seed(), k->msg_max ? k->msg_max :
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
	uint64_t until = st_loop_mono_ns() + (uint64_t)wait_ms * 1000000;
	int left;

	st_kmsg_batcher__flush(p->b);
	while (rd_kafka_outq_len(p->rk) > 0 && st_loop_mono_ns() < until)
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
	int assigned;      /* partitions held: the rebalance callback's count */
	int coop;          /* the group's protocol is COOPERATIVE: 1, EAGER: 0, not asked yet: -1 */
	int from;          /* enum st_kafka_from */
	int64_t from_ms;   /* ST_KAFKA_FROM_TIME */
	uint64_t last_warn_ns;
	uint64_t last_ts;
	struct st_kafka_cons_stats st;
};

static void cons_warn(struct st_kafka_consumer *c, const char *what, const char *why)
{
	if (st_loop_mono_ns() - c->last_warn_ns >= KAFKA_WARN_EVERY_NS) {
		c->last_warn_ns = st_loop_mono_ns();
		pr_warn("%s: --kafka: %s: %s", c->cmd, what, why);
	}
}

static void cons_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct st_kafka_consumer *c = opaque;
	char e[512];

	c->st.kafka_consume_errors++;
	cons_warn(c, "consumer", st_log_escape(e, sizeof(e), reason, strlen(reason)));
}

static void commit(struct st_kafka_consumer *c)
{
	rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);

	if (!err)
		c->st.kafka_commits++;
	else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		cons_warn(c, "commit", rd_kafka_err2str(err));
}

#define KAFKA_LOOKUP_MS 5000 /* --from TIME's look-ups, each; they hold the event loop */

void st_kafka_from_resolve(rd_kafka_topic_partition_list_t *parts, int64_t ts_ms,
			   st_kafka_lookup_fn committed, st_kafka_lookup_fn times, void *ctx,
			   int timeout_ms, struct st_kafka_from_result *res, char *why,
			   size_t whylen)
{
	rd_kafka_topic_partition_list_t *have = rd_kafka_topic_partition_list_copy(parts);
	rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(parts->cnt);
	int err;

	memset(res, 0, sizeof(*res));
	if (why && whylen)
		why[0] = 0;
	for (int i = 0; i < have->cnt; i++)
		have->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
	err = committed(ctx, have, timeout_ms);
	if (err) {
		/* which partitions committed is unknown: every one starts where the group
		 * left it, the others at their end (auto.offset.reset=latest) */
		for (int i = 0; i < parts->cnt; i++)
			parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
		res->failed = (unsigned)parts->cnt;
		snprintf(why, whylen, "the committed offsets: %s",
			 rd_kafka_err2str((rd_kafka_resp_err_t)err));
		goto out;
	}
	for (int i = 0; i < parts->cnt; i++) {
		rd_kafka_topic_partition_t *e = &parts->elems[i];
		rd_kafka_topic_partition_t *c =
			rd_kafka_topic_partition_list_find(have, e->topic, e->partition);

		if (c && !c->err && c->offset >= 0) {
			e->offset = c->offset; /* the group resumes */
			res->committed++;
		} else {
			rd_kafka_topic_partition_list_add(q, e->topic, e->partition)->offset = ts_ms;
		}
	}
	if (!q->cnt)
		goto out;
	err = times(ctx, q, timeout_ms);
	for (int i = 0; i < q->cnt; i++) {
		rd_kafka_topic_partition_t *t = &q->elems[i];
		rd_kafka_topic_partition_t *e =
			rd_kafka_topic_partition_list_find(parts, t->topic, t->partition);

		if (!e)
			continue;
		if (err || t->err) {
			e->offset = RD_KAFKA_OFFSET_END;
			res->failed++;
			snprintf(why, whylen, "partition %" PRId32 "'s offset for the time: %s",
				 t->partition,
				 rd_kafka_err2str(err ? (rd_kafka_resp_err_t)err : t->err));
		} else if (t->offset >= 0) {
			e->offset = t->offset;
			res->found++;
		} else { /* no message at or after the time */
			e->offset = RD_KAFKA_OFFSET_END;
			res->end++;
		}
	}
out:
	rd_kafka_topic_partition_list_destroy(have);
	rd_kafka_topic_partition_list_destroy(q);
}

static int lookup_committed(void *ctx, rd_kafka_topic_partition_list_t *parts, int timeout_ms)
{
	return rd_kafka_committed(ctx, parts, timeout_ms);
}

static int lookup_times(void *ctx, rd_kafka_topic_partition_list_t *parts, int timeout_ms)
{
	return rd_kafka_offsets_for_times(ctx, parts, timeout_ms);
}

/* --from TIME: the partitions assigned that the group never committed start at the time's
 * offset (the rule of earliest and latest: a group that committed resumes). */
static void from_time(struct st_kafka_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
	struct st_kafka_from_result res;
	char why[256];

	st_kafka_from_resolve(parts, c->from_ms, lookup_committed, lookup_times, c->rk,
			      KAFKA_LOOKUP_MS, &res, why, sizeof(why));
	c->st.kafka_time_offsets += res.found;
	c->st.kafka_time_ends += res.end + res.failed;
	for (int i = 0; i < parts->cnt; i++)
		pr_info("%s: --kafka: partition %" PRId32 " starts at %s %" PRId64, c->cmd,
			parts->elems[i].partition,
			parts->elems[i].offset == RD_KAFKA_OFFSET_END ? "its end," :
			parts->elems[i].offset == RD_KAFKA_OFFSET_INVALID ? "the group's offset" :
									    "offset",
			parts->elems[i].offset);
	pr_info("%s: --from: %u partitions resume from committed offsets, %u start at the "
		"time's offset, %u at their end (nothing at or after the time)", c->cmd,
		res.committed, res.found, res.end);
	if (res.failed)
		pr_warn("%s: --from: %u partitions start at their end (or the group's offsets): "
			"the look-up failed (%s)", c->cmd, res.failed, why);
}

/* The group's protocol, asked at rebalances until one answers, then kept (it cannot change
 * for a consumer: the assignors are configured). NULL while none is chosen (a member taken
 * out of the group gets its revoke in join-state init, seen under load in test_kafka): the
 * eager calls are right then. Never asked once the consumer is leaving: the call waits on
 * the group's thread, which may no longer answer (librdkafka #4041). */
static bool protocol_coop(struct st_kafka_consumer *c)
{
	const char *proto;

	if (c->coop < 0 && c->subscribed) {
		proto = rd_kafka_rebalance_protocol(c->rk);
		if (proto)
			c->coop = !strcmp(proto, "COOPERATIVE");
	}
	return c->coop > 0;
}

/* A partition moving away: its connections end here (their partial requests are not
 * replayed: the outputs see a close without the rest), what was handed over is committed,
 * so the next owner starts after it. A partition revoked and assigned again keeps its
 * connections (records read again are skipped by offset). */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct st_kafka_consumer *c = opaque;
	bool coop = protocol_coop(c);
	rd_kafka_error_t *e = NULL;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		c->st.kafka_rebalances++;
		c->assigned = coop ? c->assigned + parts->cnt : parts->cnt;
		pr_info("%s: --kafka: %d partitions assigned", c->cmd, parts->cnt);
		for (int i = 0; i < c->n_revoked; i++) {
			bool kept = false;

			for (int j = 0; j < parts->cnt && !kept; j++)
				kept = parts->elems[j].partition == c->revoked[i];
			if (!kept)
				st_kmsg_reader__close_partition(c->r, c->revoked[i], c->last_ts);
		}
		c->n_revoked = 0;
		if (c->from == ST_KAFKA_FROM_TIME)
			from_time(c, parts);
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
		c->assigned = coop && c->assigned > parts->cnt ? c->assigned - parts->cnt : 0;
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
	c->coop = -1;
	c->from = k->from;
	c->from_ms = k->from_ms;
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
	    /* TIME: the offsets are set at the assignment; a partition whose look-up failed
	     * starts at its end (not a replay of the whole retention) */
	    conf_set(conf, "auto.offset.reset", k->from == ST_KAFKA_FROM_EARLIEST ? "earliest" :
			 "latest", "--from", cmd) ||
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
		c->last_ts = st_loop_realtime_ns();
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

#define KAFKA_LEAVE_NS (5ull * 1000000000) /* the revoke after unsubscribing, at most */

/* Leaving the group: unsubscribe, then serve the revoke here, from the consumer's poll, until
 * no partition is held (what was handed over is committed in the revoke), then close.
 * rd_kafka_consumer_close() alone would call the rebalance callback itself, and an
 * rd_kafka_assign() made from that call can wait forever: librdkafka #4884, seen in
 * test_kafka as a receiver stopped during a rebalance that never exited (2 members of one
 * group stopped one after the other, one stop in ~40 under load). Messages polled meanwhile
 * were not handed over: their offsets are not stored and the next owner reads them. */
static void leave_group(struct st_kafka_consumer *c)
{
	uint64_t end = st_loop_mono_ns() + KAFKA_LEAVE_NS;
	rd_kafka_resp_err_t err = rd_kafka_unsubscribe(c->rk);

	if (err)
		cons_warn(c, "unsubscribe", rd_kafka_err2str(err));
	c->subscribed = false;
	while (!err && c->assigned > 0 && st_loop_mono_ns() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);

		if (m)
			rd_kafka_message_destroy(m);
	}
	if (c->assigned > 0) {
		pr_warn("%s: --kafka: %d partitions still held %.0f s after leaving the group: "
			"closing anyway", c->cmd, c->assigned, KAFKA_LEAVE_NS / 1e9);
		commit(c);
	}
	rd_kafka_consumer_close(c->rk);
}

void st_kafka_consumer__close(struct st_kafka_consumer *c, uint64_t ts)
{
	if (ts)
		c->last_ts = ts;
	if (c->subscribed)
		leave_group(c);
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
			leave_group(c);
		rd_kafka_destroy(c->rk);
	}
	st_kmsg_reader__free(c->r);
	free(c);
}
