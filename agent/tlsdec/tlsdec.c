/* SPDX-License-Identifier: GPL-2.0-only */
/* The TLS decryptor: see tlsdec.h and docs/TLS.md ("Keys mode"). */
#include "tlsdec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bpf/shadowtap.h"
#include "connmap.h"
#include "mix.h"
#include "reasm.h"
#include "tlskeys.h"
#include "tlsrec.h"

#define HS_MSG_MAX (256u << 10) /* one handshake message (a certificate chain) */
#define CH_KEEP_MAX (64u << 10) /* a ClientHello kept for the TLS 1.3 transcript */
#define FAILS_MAX 8             /* records in a row that do not open: the keys are not these */
#define SLOT_BUCKETS 4096u
#define MARKS_MAX (1u << 18)    /* 4-tuples remembered (open connections, per-call marks) */
#define MARK_TTL_NS (30ull * 1000000000ull)
#define PROC_BUCKETS 256u

static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

enum { EP_PLAIN = 0, EP_EARLY, EP_HS, EP_AP };

enum conn_state {
	CS_NEW = 0,   /* handshake being read, no secrets yet */
	CS_KEYED,     /* secrets found: decrypted and delivered */
	CS_CALLED,    /* the per-call probes deliver it */
	CS_UNUSABLE,  /* not TLS, or a version or suite not handled */
	CS_GIVEN_UP,  /* a gap in its handshake, or a hold cap */
	CS_LOGGED,    /* --keylog only: every secret reported, nothing more to do */
};

/* A TLS 1.3 transcript hash (or TLS 1.2 client random) and the secrets derived over it. */
struct slot {
	struct slot *hnext;
	struct slot *aprev, *anext; /* unowned slots, oldest first */
	uint64_t ts;
	uint32_t tgid;
	uint8_t kind;               /* ST_KDF_TLS13 / ST_KDF_TLS12 */
	uint8_t klen;
	uint8_t have;               /* 1.3: bits of enum st_tlskeys_secret; 1.2: 1 */
	uint8_t slen;
	uint8_t key[ST_TLS_SECRET_MAX];
	uint8_t secret[ST_S13_MAX][ST_TLS_SECRET_MAX]; /* 1.2: [0] the master secret */
	uint8_t server_random[32];  /* 1.2 */
	struct tconn *owner;        /* the connection it belongs to (then it never expires) */
};

struct held {
	struct held *next;
	uint64_t off;
	uint64_t ts;
	uint32_t len;
	uint8_t hdr[ST_TLS_HDR];
	uint8_t body[];
};

struct tdir {
	/* the record being read */
	uint8_t hdr[ST_TLS_HDR];
	uint8_t hfill;
	uint32_t blen, bfill;
	uint8_t *body;          /* ST_TLS_BODY_MAX while a record is split across segments */
	uint64_t rec_off;       /* stream offset of its header */
	uint64_t skip_to;       /* bytes before this belong to a record lost in a gap */
	/* after a gap that broke the framing */
	bool scanning;
	uint8_t *scan;
	uint32_t scan_len, scan_cap;
	uint64_t scan_off;      /* stream offset of scan[0] */
	uint64_t lost_off;      /* where the first lost record began */
	uint64_t lost_seq;      /* its sequence number */
	uint32_t lost_gen;
	uint64_t scanned;       /* ciphertext looked through without finding a record */
	/* protection */
	uint8_t epoch;
	uint8_t next_epoch;     /* applied after the record being handled (Finished, EndOfEarlyData) */
	bool enc;
	bool update;            /* a KeyUpdate in the record being handled */
	bool blocked;           /* client: a ClientHello waits for the server's answer */
	bool dead;              /* nothing more opens: the rest is loss */
	struct st_tlsrec_keys keys;
	uint8_t secret[ST_TLS_SECRET_MAX];
	uint32_t gen;
	uint64_t seq;
	uint32_t fails;
	uint64_t rec_bytes, rec_n; /* sizes of the records opened: a resynchronisation's estimate */
	/* records waiting for keys or for the other side's hello */
	struct held *held, **held_tail;
	uint64_t held_bytes;
	/* handshake messages */
	uint8_t *hs;
	uint32_t hs_len, hs_cap;
	/* plaintext out */
	uint32_t pseq;
	uint64_t pending_loss;
	uint64_t end_off;       /* the stream's furthest byte seen (data or gap) */
	uint64_t dead_from;     /* dead with the framing lost: ciphertext from here on is loss */
	bool ended;
};

struct tconn {
	struct st_tlsdec *d;
	struct st_reasm_conn *rc;
	struct st_connmap_ent *ent;
	uint8_t state;
	bool joined;
	bool started;           /* its plaintext began (SYN pair, or joined) */
	bool hello_done;        /* the ServerHello (not a HelloRetryRequest) was read */
	bool want_drain;        /* something records wait for came: settle() runs them */
	bool early_offered, early_accepted, ee_seen, sf_seen;
	uint16_t version;
	const struct st_tlsrec_suite *suite;
	uint32_t tgid;
	uint8_t client_random[32], server_random[32];
	bool have_cr;
	uint8_t n_ch, n_sh;
	uint8_t *ch[2];
	uint32_t ch_len[2];
	EVP_MD_CTX *md;         /* 1.3 transcript */
	uint8_t hlen;
	struct slot *sl_hs, *sl_ap, *sl_early, *sl_12;
	uint8_t logged;         /* secrets reported to keylog: bits of enum st_tlskeys_secret;
				 * 1 << 7: TLS 1.2's */
	uint32_t isn[2];
	uint64_t flights;
	struct st_tlsdec_proc *proc; /* its process's counts (keyed) */
	int8_t last_dir;
	struct tdir dir[2];
};

struct proc {
	struct proc *next;
	uint32_t tgid;
	struct st_tlsdec_proc st;
};

struct st_tlsdec {
	struct st_tlsdec_config cfg;
	struct st_tlsdec_ops ops;
	void *ctx;
	struct st_reasm *reasm;
	struct st_connmap *map; /* 4-tuple -> open connection, or a per-call mark */
	struct st_tlskeys *keys;
	struct slot *slots[SLOT_BUCKETS];
	struct slot *aold, *anew; /* unowned slots by age */
	uint32_t n_slots;
	struct proc *procs[PROC_BUCKETS];
	uint64_t open_keyed;
	uint64_t now;
	uint64_t rng;           /* the plaintext's ISNs */
	int err;                /* a segment callback's < 0, returned by the call */
	uint8_t plain[ST_TLS_BODY_MAX];
	struct st_tlsdec_stats st;
};

/* connmap values: an open connection's pointer, or a per-call mark's time (odd). */
#define MARK(ts) (((ts) << 1) | 1)
#define IS_MARK(v) ((v) & 1)
#define MARK_TS(v) ((v) >> 1)

static int process_record(struct tconn *c, int di, const uint8_t *hdr, const uint8_t *body,
			  uint32_t len, uint64_t off, uint64_t ts, bool queued);
static void dir_bytes(struct tconn *c, int di, uint64_t off, const uint8_t *p, uint32_t n,
		      uint64_t ts);
static void drain_held(struct tconn *c, int di);

/* ---- memory held ---------------------------------------------------------------------- */

static void held_add(struct st_tlsdec *d, int64_t n)
{
	d->st.held_bytes += (uint64_t)n;
	if (d->st.held_bytes > d->st.held_peak)
		d->st.held_peak = d->st.held_bytes;
}

static struct st_tlsdec *dec_of(struct tconn *c);

/* ---- secrets: slots --------------------------------------------------------------------- */

static uint32_t slot_hash(uint8_t kind, const uint8_t *key, size_t klen)
{
	uint32_t h = 2166136261u ^ kind;

	for (size_t i = 0; i < klen; i++)
		h = (h ^ key[i]) * 16777619u;
	return h & (SLOT_BUCKETS - 1);
}

static void age_unlink(struct st_tlsdec *d, struct slot *s)
{
	if (s->aprev)
		s->aprev->anext = s->anext;
	else if (d->aold == s)
		d->aold = s->anext;
	if (s->anext)
		s->anext->aprev = s->aprev;
	else if (d->anew == s)
		d->anew = s->aprev;
	s->aprev = s->anext = NULL;
}

static void slot_free(struct st_tlsdec *d, struct slot *s)
{
	struct slot **pp = &d->slots[slot_hash(s->kind, s->key, s->klen)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	if (!s->owner)
		age_unlink(d, s);
	d->n_slots--;
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

static struct slot *slot_find(struct st_tlsdec *d, uint8_t kind, const uint8_t *key, size_t klen)
{
	struct slot *s = d->slots[slot_hash(kind, key, klen)];

	for (; s; s = s->hnext)
		if (s->kind == kind && s->klen == klen && !memcmp(s->key, key, klen))
			return s;
	return NULL;
}

/* The slot of key, made (unowned, the newest) when missing; NULL at the cap or ENOMEM. */
static struct slot *slot_get(struct st_tlsdec *d, uint8_t kind, const uint8_t *key, size_t klen)
{
	struct slot *s = slot_find(d, kind, key, klen);
	uint32_t h;

	if (s)
		return s;
	if (d->n_slots >= ST_TLSDEC_SECRETS_MAX) {
		if (!d->aold)
			return NULL; /* every slot belongs to a connection */
		d->st.secrets_expired++;
		slot_free(d, d->aold);
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->kind = kind;
	s->klen = (uint8_t)klen;
	memcpy(s->key, key, klen);
	s->ts = d->now;
	h = slot_hash(kind, key, klen);
	s->hnext = d->slots[h];
	d->slots[h] = s;
	s->aprev = d->anew;
	if (d->anew)
		d->anew->anext = s;
	else
		d->aold = s;
	d->anew = s;
	d->n_slots++;
	return s;
}

/* The connection takes the slot: it no longer expires; freed with the connection. */
static void slot_own(struct st_tlsdec *d, struct slot *s, struct tconn *c)
{
	if (s->owner)
		return;
	age_unlink(d, s);
	s->owner = c;
}

static void slots_expire(struct st_tlsdec *d)
{
	uint64_t ttl = d->cfg.secret_ttl_ns;

	while (d->aold && d->now > d->aold->ts + ttl) {
		if (d->aold->have)
			d->st.secrets_expired++;
		slot_free(d, d->aold);
	}
}

/* ---- per process ------------------------------------------------------------------------ */

static struct st_tlsdec_proc *proc_of(struct st_tlsdec *d, uint32_t tgid)
{
	struct proc **pp = &d->procs[tgid % PROC_BUCKETS], *p;

	for (p = *pp; p; p = p->next)
		if (p->tgid == tgid)
			return &p->st;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->tgid = tgid;
	p->next = *pp;
	*pp = p;
	return &p->st;
}

/* ---- plaintext out ---------------------------------------------------------------------- */

static void seg_base(struct tconn *c, int di, struct st_segment *s, uint64_t ts)
{
	const struct st_flow_key *k = &c->rc->key; /* client -> server */

	memset(s, 0, sizeof(*s));
	if (di == ST_DIR_IN) {
		s->key = *k;
	} else {
		s->key.src = k->dst;
		s->key.dst = k->src;
		s->key.sport = k->dport;
		s->key.dport = k->sport;
	}
	s->ts_ns = ts;
	s->dir = (int8_t)di;
	s->window = 0xffff;
	s->flags = ST_TCP_ACK;
	s->seq = c->dir[di].pseq;
	s->ack = c->dir[di ^ 1].pseq;
}

static void deliver(struct st_tlsdec *d, const struct st_segment *s)
{
	int r = d->ops.segment ? d->ops.segment(d->ctx, s) : 0;

	if (r < 0 && !d->err)
		d->err = r;
}

static bool delivering(const struct tconn *c)
{
	return c->state == CS_KEYED && c->started && !dec_of((struct tconn *)c)->cfg.keylog_only;
}

/* The plaintext lost so far in direction di, as one hole before what comes next. */
static void announce_loss(struct tconn *c, int di, uint64_t ts)
{
	struct tdir *t = &c->dir[di];
	struct st_segment s;

	if (!t->pending_loss || !delivering(c))
		return;
	while (t->pending_loss) {
		uint32_t n = t->pending_loss > 0x40000000u ? 0x40000000u : (uint32_t)t->pending_loss;

		seg_base(c, di, &s, ts);
		s.kind = ST_SEG_LOSS;
		s.len = n;
		deliver(dec_of(c), &s);
		t->pseq += n;
		t->pending_loss -= n;
	}
}

static void emit_data(struct tconn *c, int di, const uint8_t *p, uint32_t n, uint64_t ts)
{
	struct st_tlsdec *d = dec_of(c);
	struct st_segment s;

	if (!n)
		return;
	if (di == ST_DIR_IN && c->last_dir != ST_DIR_IN) {
		c->flights++;
		if (c->proc)
			c->proc->flights++;
	}
	c->last_dir = (int8_t)di;
	d->st.plain_bytes += n;
	if (!delivering(c))
		return;
	announce_loss(c, di, ts);
	seg_base(c, di, &s, ts);
	s.flags = ST_TCP_ACK | ST_TCP_PSH;
	s.kind = ST_SEG_DATA;
	s.len = n;
	s.data = p;
	deliver(d, &s);
	c->dir[di].pseq += n;
}

static void emit_flag(struct tconn *c, int di, uint8_t flags, uint64_t ts)
{
	struct st_segment s;

	seg_base(c, di, &s, ts);
	s.flags = flags;
	s.kind = ST_SEG_DATA;
	deliver(dec_of(c), &s);
}

/* Adds the plaintext a lost record (len bytes of body) held to direction di's loss. */
static void lose_record(struct tconn *c, int di, uint64_t body_len)
{
	struct tdir *t = &c->dir[di];
	uint64_t ov = c->suite ? st_tlsrec_overhead(c->suite) - ST_TLS_HDR : 0;
	uint64_t n = body_len > ov ? body_len - ov : 0;

	t->pending_loss += n;
	dec_of(c)->st.loss_bytes += n;
	dec_of(c)->st.loss_records++;
}

/* ---- keys ------------------------------------------------------------------------------- */

static void keylog(struct tconn *c)
{
	struct st_tlsdec *d = dec_of(c);

	if (!d->ops.keylog || !c->have_cr)
		return;
	if (c->version == ST_TLS_V12) {
		if (c->sl_12 && c->sl_12->have && !(c->logged & 0x80)) {
			d->ops.keylog(d->ctx, "CLIENT_RANDOM", c->client_random, c->sl_12->secret[0], 48);
			c->logged |= 0x80;
		}
		return;
	}
	for (int i = 0; i < ST_S13_MAX; i++) {
		struct slot *s = i == ST_S13_CLIENT_EARLY || i == ST_S13_EARLY_EXPORTER ? c->sl_early :
				 i <= ST_S13_SERVER_HS ? c->sl_hs :
							 c->sl_ap;

		if (!s || !(s->have & (1u << i)) || (c->logged & (1u << i)))
			continue;
		d->ops.keylog(d->ctx, st_tlskeys_keylog_name((enum st_tlskeys_secret)i), c->client_random,
			      s->secret[i], s->slen);
		c->logged |= (uint8_t)(1u << i);
	}
}

/* The secret of direction di's epoch, or NULL (1.3). */
static const uint8_t *secret13(struct tconn *c, int di, uint8_t epoch)
{
	struct slot *s;
	int i;

	switch (epoch) {
	case EP_EARLY: s = c->sl_early; i = ST_S13_CLIENT_EARLY; break;
	case EP_HS: s = c->sl_hs; i = di == ST_DIR_IN ? ST_S13_CLIENT_HS : ST_S13_SERVER_HS; break;
	case EP_AP: s = c->sl_ap; i = di == ST_DIR_IN ? ST_S13_CLIENT_AP : ST_S13_SERVER_AP; break;
	default: return NULL;
	}
	return s && (s->have & (1u << i)) ? s->secret[i] : NULL;
}

/* Sets direction di's keys for its epoch when its secret is known. */
static bool keys_ready(struct tconn *c, int di)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];

	if (st_tlsrec_keys_on(&t->keys))
		return true;
	if (!c->suite)
		return false;
	if (c->version == ST_TLS_V12) {
		if (!c->sl_12 || !c->sl_12->have)
			return false;
		if (st_tlskeys__tls12(d->keys, c->suite, c->sl_12->secret[0], c->client_random,
				      c->server_random, &c->dir[ST_DIR_IN].keys,
				      &c->dir[ST_DIR_OUT].keys))
			return false;
		return true;
	}
	{
		const uint8_t *s = secret13(c, di, t->epoch);

		if (!s)
			return false;
		memcpy(t->secret, s, c->hlen);
		t->gen = 0;
		t->seq = 0;
		return !st_tlskeys__traffic(d->keys, c->suite, t->secret, &t->keys);
	}
}

/* Secrets came for the connection (or it found its slot): keyed when it can decrypt the
 * server's records; reported; waiting records go on. */
static void secrets_changed(struct tconn *c, uint64_t ts)
{
	struct st_tlsdec *d = dec_of(c);
	struct slot *s = c->version == ST_TLS_V12 ? c->sl_12 : c->sl_hs;
	bool can;

	if (c->state != CS_NEW && c->state != CS_KEYED)
		return;
	keylog(c);
	can = c->version == ST_TLS_V12 ? (s && s->have) :
					 (s && (s->have & (1u << ST_S13_SERVER_HS)));
	if (c->state == CS_NEW && can) {
		struct st_tlsdec_proc *p;

		c->state = CS_KEYED;
		c->tgid = s->tgid;
		d->st.keyed++;
		d->open_keyed++;
		p = proc_of(d, c->tgid);
		if (p)
			p->handshakes++;
		c->proc = p;
		if (!d->cfg.keylog_only) {
			c->started = true;
			if (!c->joined) {
				c->dir[ST_DIR_IN].pseq = c->isn[ST_DIR_IN];
				c->dir[ST_DIR_OUT].pseq = c->isn[ST_DIR_OUT];
				emit_flag(c, ST_DIR_IN, ST_TCP_SYN, ts);
				c->dir[ST_DIR_IN].pseq++;
				c->dir[ST_DIR_OUT].pseq = c->isn[ST_DIR_OUT];
				emit_flag(c, ST_DIR_OUT, ST_TCP_SYN | ST_TCP_ACK, ts);
				c->dir[ST_DIR_OUT].pseq++;
			} else {
				c->dir[ST_DIR_IN].pseq = c->isn[ST_DIR_IN];
				c->dir[ST_DIR_OUT].pseq = c->isn[ST_DIR_OUT];
			}
		}
	}
	if (d->cfg.keylog_only && c->state == CS_KEYED &&
	    (c->version == ST_TLS_V12 ? (c->logged & 0x80) : (c->logged & 0x3e) == 0x3e)) {
		/* every secret a key log wants (1.3: but the early one) is out: nothing else to do */
		c->state = CS_LOGGED;
		return;
	}
	c->want_drain = true;
}

static void take_slot(struct tconn *c, struct slot **where, uint8_t kind, const uint8_t *key,
		      size_t klen)
{
	struct st_tlsdec *d = dec_of(c);
	struct slot *s;

	if (*where)
		return;
	s = slot_get(d, kind, key, klen);
	if (!s)
		return;
	if (s->owner && s->owner != c)
		return; /* another connection's transcript: cannot be (randoms), ignore */
	slot_own(d, s, c);
	*where = s;
	if (s->have)
		d->st.secrets_matched++;
}

/* ---- handshake messages ---------------------------------------------------------------- */

static void unusable(struct tconn *c)
{
	struct st_tlsdec *d = dec_of(c);

	if (c->state != CS_NEW)
		return;
	c->state = CS_UNUSABLE;
	/* first seen in the middle of a record: a connection older than the capture */
	if (c->joined && !c->n_ch)
		d->st.joined++;
	else
		d->st.not_tls++;
}

static void give_up(struct tconn *c)
{
	struct st_tlsdec *d = dec_of(c);

	if (c->state == CS_NEW) {
		c->state = CS_GIVEN_UP;
		d->st.given_up++;
	}
}

/* Reads a u8/u16-prefixed vector at *i of m[0, n): false when it does not fit. */
static bool skip_vec(const uint8_t *m, size_t n, size_t *i, int lenbytes)
{
	size_t l;

	if (*i + (size_t)lenbytes > n)
		return false;
	l = lenbytes == 1 ? m[*i] : (size_t)m[*i] << 8 | m[*i + 1];
	*i += (size_t)lenbytes + l;
	return *i <= n;
}

/* Calls fn for each extension of the block at m[i..n) (a u16 length, then type/len/data). */
static void each_ext(const uint8_t *m, size_t n, size_t i,
		     void (*fn)(struct tconn *c, uint16_t type, const uint8_t *p, size_t l),
		     struct tconn *c)
{
	size_t end;

	if (i + 2 > n)
		return;
	end = i + 2 + ((size_t)m[i] << 8 | m[i + 1]);
	if (end > n)
		return;
	for (i += 2; i + 4 <= end;) {
		uint16_t type = (uint16_t)(m[i] << 8 | m[i + 1]);
		size_t l = (size_t)m[i + 2] << 8 | m[i + 3];

		if (i + 4 + l > end)
			return;
		fn(c, type, m + i + 4, l);
		i += 4 + l;
	}
}

static void ch_ext(struct tconn *c, uint16_t type, const uint8_t *p, size_t l)
{
	if (type == 42) /* early_data */
		c->early_offered = true;
}

static void on_client_hello(struct tconn *c, const uint8_t *m, uint32_t n)
{
	size_t i = 4 + 2 + 32;

	if (n < i) {
		unusable(c);
		return;
	}
	if (c->n_ch >= 2) {
		unusable(c); /* a renegotiation, or a third hello: not handled */
		return;
	}
	if (!c->have_cr) {
		memcpy(c->client_random, m + 6, 32);
		c->have_cr = true;
	}
	if (c->n_ch == 0 && skip_vec(m, n, &i, 1) && skip_vec(m, n, &i, 2) && skip_vec(m, n, &i, 1))
		each_ext(m, n, i, ch_ext, c);
	if (n <= CH_KEEP_MAX) {
		c->ch[c->n_ch] = malloc(n);
		if (c->ch[c->n_ch]) {
			memcpy(c->ch[c->n_ch], m, n);
			c->ch_len[c->n_ch] = n;
			held_add(dec_of(c), n);
		}
	}
	c->n_ch++;
	/* the server's answer tells the version and the suite; what the client sends after its
	 * hello waits for it, and the server's answer may have waited for this hello */
	c->dir[ST_DIR_IN].blocked = true;
	c->want_drain = true;
}

static void sh_ext(struct tconn *c, uint16_t type, const uint8_t *p, size_t l)
{
	if (type == 43 && l == 2) /* supported_versions: the selected one */
		c->version = (uint16_t)(p[0] << 8 | p[1]);
}

static void ee_ext(struct tconn *c, uint16_t type, const uint8_t *p, size_t l)
{
	if (type == 42)
		c->early_accepted = true;
}


/* ---- the TLS 1.3 transcript ------------------------------------------------------------- */

static void th_update(struct tconn *c, const uint8_t *m, size_t n)
{
	if (c->md)
		EVP_DigestUpdate(c->md, m, n);
}

/* The transcript hash so far into out (hlen bytes); the running hash goes on. */
static bool th_now(struct tconn *c, uint8_t *out)
{
	EVP_MD_CTX *cp = EVP_MD_CTX_new();
	unsigned int l = 0;
	bool ok = cp && c->md && EVP_MD_CTX_copy_ex(cp, c->md) == 1 &&
		  EVP_DigestFinal_ex(cp, out, &l) == 1 && l == c->hlen;

	EVP_MD_CTX_free(cp);
	return ok;
}

static void ch_free(struct tconn *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->ch[i])
			held_add(dec_of(c), -(int64_t)c->ch_len[i]);
		free(c->ch[i]);
		c->ch[i] = NULL;
	}
}

/* Starts the transcript with ClientHello 1 (or, after a HelloRetryRequest, with its
 * message_hash stand-in: RFC 8446 4.4.1). */
static bool th_start(struct tconn *c, bool hrr)
{
	const EVP_MD *md = st_tlskeys__md(dec_of(c)->keys, c->suite->hash);
	uint8_t h[4 + EVP_MAX_MD_SIZE];
	unsigned int l = 0;

	if (!md || !c->ch[0])
		return false;
	c->md = EVP_MD_CTX_new();
	if (!c->md || EVP_DigestInit_ex(c->md, md, NULL) != 1)
		return false;
	c->hlen = (uint8_t)EVP_MD_get_size(md);
	if (!hrr) {
		th_update(c, c->ch[0], c->ch_len[0]);
		return true;
	}
	if (EVP_Digest(c->ch[0], c->ch_len[0], h + 4, &l, md, NULL) != 1)
		return false;
	h[0] = 254; /* message_hash */
	h[1] = 0;
	h[2] = 0;
	h[3] = (uint8_t)l;
	th_update(c, h, 4 + l);
	return true;
}

static void on_server_hello(struct tconn *c, const uint8_t *m, uint32_t n)
{
	struct st_tlsdec *d = dec_of(c);
	const struct st_tlsrec_suite *suite;
	uint16_t legacy, cs;
	size_t i = 4 + 2 + 32;
	bool hrr;
	uint8_t th[ST_TLS_SECRET_MAX];

	if (n < i + 1 || !skip_vec(m, n, &i, 1) || i + 3 > n || c->n_sh >= 2) {
		unusable(c);
		return;
	}
	legacy = (uint16_t)(m[4] << 8 | m[5]);
	cs = (uint16_t)(m[i] << 8 | m[i + 1]);
	hrr = !memcmp(m + 6, hrr_random, 32);
	if (!c->n_sh) {
		c->version = legacy;
		each_ext(m, n, i + 3, sh_ext, c); /* supported_versions overrides */
	}
	suite = st_tlsrec_suite(cs);
	if (!suite || (c->version != ST_TLS_V12 && c->version != ST_TLS_V13) ||
	    !!suite->tls13 != (c->version == ST_TLS_V13) || (c->suite && c->suite != suite) ||
	    (hrr && (c->version != ST_TLS_V13 || c->n_sh))) {
		unusable(c); /* TLS <= 1.1, CBC or another suite the engine cannot open */
		return;
	}
	c->suite = suite;
	c->n_sh++;
	c->dir[ST_DIR_IN].blocked = false;
	c->want_drain = true;
	if (c->version == ST_TLS_V12) {
		memcpy(c->server_random, m + 6, 32);
		c->hello_done = true;
		ch_free(c);
		take_slot(c, &c->sl_12, ST_KDF_TLS12, c->client_random, 32);
		if (c->sl_12 && c->sl_12->have && memcmp(c->sl_12->server_random, c->server_random, 32))
			c->sl_12->have = 0; /* not this handshake's key block (cannot be: randoms) */
		secrets_changed(c, d->now);
		return;
	}
	if (hrr) {
		if (!th_start(c, true)) {
			give_up(c);
			return;
		}
		th_update(c, m, n);
		c->early_offered = false; /* early data is refused with a HelloRetryRequest */
		return;
	}
	memcpy(c->server_random, m + 6, 32);
	if (!c->md && !th_start(c, false)) {
		give_up(c);
		return;
	}
	if (c->n_ch == 2) {
		if (!c->ch[1]) {
			give_up(c);
			return;
		}
		th_update(c, c->ch[1], c->ch_len[1]);
	}
	th_update(c, m, n);
	c->hello_done = true;
	c->dir[ST_DIR_OUT].epoch = EP_HS;
	c->dir[ST_DIR_OUT].enc = true;
	c->dir[ST_DIR_IN].epoch = EP_HS;
	if (c->early_offered && c->ch[0]) {
		unsigned int l = 0;

		/* "c e traffic" binds the ClientHello alone */
		if (EVP_Digest(c->ch[0], c->ch_len[0], th, &l, EVP_MD_CTX_get0_md(c->md), NULL) == 1)
			take_slot(c, &c->sl_early, ST_KDF_TLS13, th, l);
	}
	ch_free(c);
	if (!th_now(c, th)) {
		give_up(c);
		return;
	}
	take_slot(c, &c->sl_hs, ST_KDF_TLS13, th, c->hlen);
	secrets_changed(c, d->now);
}

static void on_hs_msg(struct tconn *c, int di, const uint8_t *m, uint32_t n)
{
	struct tdir *t = &c->dir[di];
	uint8_t type = m[0];

	if (di == ST_DIR_IN) {
		if (type == 1) {
			on_client_hello(c, m, n);
		} else if (c->version == ST_TLS_V13) {
			if (type == 5 && t->epoch == EP_EARLY) /* EndOfEarlyData */
				t->next_epoch = EP_HS;
			else if (type == 20 && t->epoch == EP_HS) /* Finished */
				t->next_epoch = EP_AP;
			else if (type == 24 && t->epoch == EP_AP) /* KeyUpdate */
				t->update = true;
		}
		return;
	}
	if (type == 2) {
		on_server_hello(c, m, n);
		return;
	}
	if (c->version != ST_TLS_V13 || !c->hello_done)
		return;
	if (c->sf_seen) {
		if (type == 24)
			t->update = true; /* NewSessionTicket (4) and the rest: nothing to do */
		return;
	}
	th_update(c, m, n);
	if (type == 8) { /* EncryptedExtensions: was early data accepted? */
		each_ext(m, n, 4, ee_ext, c);
		c->ee_seen = true;
		if (c->early_accepted && c->sl_early)
			c->dir[ST_DIR_IN].epoch = EP_EARLY;
		c->want_drain = true;
	} else if (type == 20) { /* the server's Finished: the application secrets' transcript */
		uint8_t th[ST_TLS_SECRET_MAX];

		if (th_now(c, th))
			take_slot(c, &c->sl_ap, ST_KDF_TLS13, th, c->hlen);
		c->sf_seen = true;
		t->next_epoch = EP_AP;
		EVP_MD_CTX_free(c->md);
		c->md = NULL;
		secrets_changed(c, dec_of(c)->now);
	}
}

/* Handshake bytes of direction di (in the clear, or opened): whole messages to on_hs_msg. */
static void feed_hs(struct tconn *c, int di, const uint8_t *p, uint32_t n)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];
	uint32_t used = 0;

	if (t->hs_len + n > t->hs_cap) {
		uint32_t cap = t->hs_cap ? t->hs_cap : 4096;
		uint8_t *q;

		while (cap < t->hs_len + n)
			cap *= 2;
		if (cap > HS_MSG_MAX + ST_TLS_BODY_MAX || !(q = realloc(t->hs, cap))) {
			unusable(c);
			return;
		}
		held_add(d, (int64_t)cap - t->hs_cap);
		t->hs = q;
		t->hs_cap = cap;
	}
	memcpy(t->hs + t->hs_len, p, n);
	t->hs_len += n;
	while (t->hs_len - used >= 4 && (c->state == CS_NEW || c->state == CS_KEYED)) {
		const uint8_t *m = t->hs + used;
		uint32_t ml = 4 + ((uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3]);

		if (ml > HS_MSG_MAX) {
			unusable(c);
			break;
		}
		if (t->hs_len - used < ml)
			break;
		on_hs_msg(c, di, m, ml);
		used += ml;
	}
	if (used >= t->hs_len || (c->state != CS_NEW && c->state != CS_KEYED)) {
		held_add(d, -(int64_t)t->hs_cap);
		free(t->hs);
		t->hs = NULL;
		t->hs_len = t->hs_cap = 0;
	} else if (used) {
		memmove(t->hs, t->hs + used, t->hs_len - used);
		t->hs_len -= used;
	}
}

/* ---- records ---------------------------------------------------------------------------- */

static bool protected_rec(const struct tconn *c, int di, uint8_t type)
{
	if (c->version == ST_TLS_V13)
		return c->hello_done && type == ST_TLS_CT_APPDATA;
	return c->version == ST_TLS_V12 && c->dir[di].enc;
}

/* Whether a record of type must wait: for the ClientHello the server's hello answers, for
 * the server's hello the client waits on, for keys, for EncryptedExtensions (0-RTT). */
static bool must_wait(struct tconn *c, int di, uint8_t type)
{
	struct tdir *t = &c->dir[di];

	if (di == ST_DIR_OUT && !c->hello_done && c->n_ch <= c->n_sh)
		return true;
	if (di == ST_DIR_IN && t->blocked)
		return true;
	if (!protected_rec(c, di, type))
		return false;
	if (di == ST_DIR_IN && c->version == ST_TLS_V13 && c->early_offered && !c->ee_seen)
		return true;
	return !keys_ready(c, di);
}

static void held_free(struct tconn *c, int di, bool lose)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];

	while (t->held) {
		struct held *h = t->held;

		t->held = h->next;
		if (lose && protected_rec(c, di, h->hdr[0]))
			lose_record(c, di, h->len);
		held_add(d, -(int64_t)(sizeof(*h) + h->len));
		OPENSSL_cleanse(h->body, h->len);
		free(h);
	}
	t->held_tail = &t->held;
	t->held_bytes = 0;
}

/* The direction cannot be opened any more: what it held and what comes is loss. */
static void dir_dead(struct tconn *c, int di)
{
	struct tdir *t = &c->dir[di];

	if (t->dead)
		return;
	t->dead = true;
	held_free(c, di, true);
}

static void hold(struct tconn *c, int di, const uint8_t *hdr, const uint8_t *body, uint32_t len,
		 uint64_t off, uint64_t ts)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];
	struct held *h;

	if (t->held_bytes + len > ST_TLSDEC_HOLD_CONN || d->st.held_bytes + len > d->cfg.hold_max ||
	    !(h = malloc(sizeof(*h) + len))) {
		if (c->state == CS_NEW) {
			give_up(c);
			held_free(c, di, false);
			return;
		}
		dir_dead(c, di);
		if (protected_rec(c, di, hdr[0]))
			lose_record(c, di, len);
		return;
	}
	h->next = NULL;
	h->off = off;
	h->ts = ts;
	h->len = len;
	memcpy(h->hdr, hdr, ST_TLS_HDR);
	if (len)
		memcpy(h->body, body, len);
	*t->held_tail = h;
	t->held_tail = &h->next;
	t->held_bytes += len;
	held_add(d, (int64_t)(sizeof(*h) + len));
}

/* What follows a record's plaintext: a KeyUpdate's next generation, a Finished's epoch. */
static void after_record(struct tconn *c, int di)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];

	if (t->update) {
		t->update = false;
		if (st_tlskeys__update(d->keys, c->suite, t->secret) ||
		    st_tlskeys__traffic(d->keys, c->suite, t->secret, &t->keys)) {
			dir_dead(c, di);
			return;
		}
		t->gen++;
		t->seq = 0;
		d->st.key_updates++;
	}
	if (t->next_epoch) {
		t->epoch = t->next_epoch;
		t->next_epoch = 0;
		st_tlsrec_keys_wipe(&t->keys); /* the next record's keys: keys_ready() */
		OPENSSL_cleanse(t->secret, sizeof(t->secret));
		t->seq = 0;
	}
}

static void handle_plain(struct tconn *c, int di, uint8_t ctype, const uint8_t *p, uint32_t n,
			 uint64_t ts)
{
	if (ctype == ST_TLS_CT_APPDATA)
		emit_data(c, di, p, n, ts);
	else if (ctype == ST_TLS_CT_HANDSHAKE && n)
		feed_hs(c, di, p, n);
	/* alerts (close_notify), anything else: nothing for the consumers */
}

static void open_record(struct tconn *c, int di, const uint8_t *hdr, const uint8_t *body,
			uint32_t len, uint64_t ts)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];
	uint8_t ct = 0;
	int n = st_tlsrec_open(&t->keys, t->seq, hdr, body, len, d->plain, &ct);

	if (n >= 0) {
		t->seq++;
		t->fails = 0;
		t->rec_bytes += len;
		t->rec_n++;
		d->st.records++;
		d->st.cipher_bytes += ST_TLS_HDR + len;
		handle_plain(c, di, ct, d->plain, (uint32_t)n, ts);
		after_record(c, di);
		return;
	}
	if (di == ST_DIR_IN && c->version == ST_TLS_V13 && t->epoch == EP_HS && c->early_offered &&
	    !c->early_accepted) {
		d->st.early_skipped++; /* 0-RTT data the server refused and skipped too */
		return;
	}
	d->st.failed++;
	lose_record(c, di, len);
	t->seq++;
	if (++t->fails >= FAILS_MAX) {
		d->st.resync_failed++;
		dir_dead(c, di);
	}
}

/* A whole record of direction di at stream offset off. queued: one that waited, taken from
 * the head of the queue by drain_held (the others keep their order behind it). */
static int process_record(struct tconn *c, int di, const uint8_t *hdr, const uint8_t *body,
			  uint32_t len, uint64_t off, uint64_t ts, bool queued)
{
	struct tdir *t = &c->dir[di];
	uint8_t type = hdr[0];

	if (c->state != CS_NEW && c->state != CS_KEYED)
		return 0;
	if (t->dead) {
		if (protected_rec(c, di, type))
			lose_record(c, di, len);
		return 0;
	}
	if (!queued && (t->held || must_wait(c, di, type))) {
		hold(c, di, hdr, body, len, off, ts);
		return 0;
	}
	if (c->version == ST_TLS_V13 && c->n_sh) {
		if (type == ST_TLS_CT_APPDATA) {
			if (!c->hello_done) {
				dec_of(c)->st.early_skipped++; /* 0-RTT refused by a HelloRetryRequest */
				return 0;
			}
			open_record(c, di, hdr, body, len, ts);
		} else if (type == ST_TLS_CT_HANDSHAKE && !t->enc) {
			feed_hs(c, di, body, len); /* the second ClientHello, the ServerHello */
		}
		return 0; /* ChangeCipherSpec (compatibility), alerts in the clear */
	}
	if (c->version == ST_TLS_V12 && t->enc) {
		open_record(c, di, hdr, body, len, ts);
		return 0;
	}
	switch (type) {
	case ST_TLS_CT_HANDSHAKE:
		feed_hs(c, di, body, len);
		break;
	case ST_TLS_CT_CCS:
		if (c->version == ST_TLS_V12) {
			t->enc = true;
			t->seq = 0;
		}
		break;
	case ST_TLS_CT_ALERT:
		break;
	default:
		unusable(c);
	}
	return 0;
}

static void drain_held(struct tconn *c, int di)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];

	while (t->held && (c->state == CS_NEW || c->state == CS_KEYED) && !t->dead) {
		struct held *h = t->held;

		if (must_wait(c, di, h->hdr[0]))
			break;
		t->held = h->next;
		if (!t->held)
			t->held_tail = &t->held;
		t->held_bytes -= h->len;
		process_record(c, di, h->hdr, h->body, h->len, h->off, h->ts, true);
		held_add(d, -(int64_t)(sizeof(*h) + h->len));
		OPENSSL_cleanse(h->body, h->len);
		free(h);
	}
}

/* Records that waited go on while something they waited for came. */
static void settle(struct tconn *c)
{
	for (int rounds = 0; c->want_drain && rounds < 16; rounds++) {
		c->want_drain = false;
		drain_held(c, ST_DIR_OUT);
		drain_held(c, ST_DIR_IN);
	}
}

/* ---- framing, gaps, resynchronisation ------------------------------------------------- */

static bool hdr_ok(const uint8_t *h)
{
	uint32_t len = (uint32_t)h[3] << 8 | h[4];

	return h[0] >= ST_TLS_CT_CCS && h[0] <= ST_TLS_CT_APPDATA && h[1] == 3 && h[2] <= 4 &&
	       len <= ST_TLS_BODY_MAX;
}

/* Could a protected record of this connection start at h? (after a gap) */
static bool plausible(const struct tconn *c, const uint8_t *h)
{
	uint32_t len = (uint32_t)h[3] << 8 | h[4];
	const struct st_tlsrec_suite *s = c->suite;

	if (h[1] != 3 || h[2] != 3 || len > ST_TLS_BODY_MAX ||
	    len < (uint32_t)s->explicit_len + s->tag_len + (s->tls13 ? 1u : 0u))
		return false;
	return s->tls13 ? h[0] == ST_TLS_CT_APPDATA :
			  h[0] >= ST_TLS_CT_ALERT && h[0] <= ST_TLS_CT_APPDATA;
}

/* The plaintext bytes b bytes of lost ciphertext most likely held (records of this
 * direction's usual size). */
static uint64_t loss_estimate(const struct tconn *c, const struct tdir *t, uint64_t b)
{
	uint64_t ov = c->suite ? st_tlsrec_overhead(c->suite) : ST_TLS_HDR;
	uint64_t avg = t->rec_n ? t->rec_bytes / t->rec_n + ST_TLS_HDR : ST_TLS_PLAIN_MAX + ov;
	uint64_t k = (b + avg - 1) / avg;

	return b > k * ov ? b - k * ov : 0;
}

static void body_free(struct tconn *c, struct tdir *t)
{
	if (t->body) {
		held_add(dec_of(c), -(int64_t)t->blen);
		free(t->body);
		t->body = NULL;
	}
	t->hfill = 0;
	t->bfill = 0;
}

static void scan_free(struct tconn *c, struct tdir *t)
{
	if (t->scan) {
		held_add(dec_of(c), -(int64_t)t->scan_cap);
		free(t->scan);
	}
	t->scan = NULL;
	t->scan_len = t->scan_cap = 0;
}

/* Whether a gap in direction di can be recovered from: the handshake is behind it (1.3:
 * that direction runs on application keys; 1.2: it is encrypted and keyed). */
static bool established(const struct tconn *c, int di)
{
	const struct tdir *t = &c->dir[di];

	if (c->state != CS_KEYED)
		return false;
	if (c->version == ST_TLS_V13)
		return t->epoch == EP_AP && !t->next_epoch;
	return t->enc;
}

/* Gives up resynchronising: what was lost, and what comes, is loss. */
static void scan_give_up(struct tconn *c, int di)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];
	uint64_t lost = t->scan_off + t->scan_len - t->lost_off;
	uint64_t n = loss_estimate(c, t, lost);

	t->pending_loss += n;
	d->st.loss_bytes += n;
	t->scanning = false;
	scan_free(c, t);
	d->st.resync_failed++;
	dir_dead(c, di);
	t->dead_from = t->end_off;
}

static bool try_seq(struct tconn *c, struct st_tlsrec_keys *k, uint64_t seq, const uint8_t *hdr,
		    const uint8_t *body, uint32_t len, uint8_t *ct, int *n)
{
	*n = st_tlsrec_open(k, seq, hdr, body, len, dec_of(c)->plain, ct);
	return *n >= 0;
}

/*
 * After a gap: does the record at stream offset pos (hdr + body) open under one of the
 * sequence numbers its position allows? The lost records are the ciphertext from lost_off to
 * pos: at least one, at most what the smallest records would make; the guesses go outwards
 * from what this direction's usual record size says (TLS 1.2 GCM/CCM: the record's explicit
 * nonce first, OpenSSL counts it), then (1.3) the next key generation, after a KeyUpdate that
 * was lost. A record opens only under its own number: the first one that does is proven.
 */
static bool resync_at(struct tconn *c, int di, const uint8_t *hdr, const uint8_t *body,
		      uint32_t len, uint64_t pos, uint64_t ts)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];
	const struct st_tlsrec_suite *s = c->suite;
	uint64_t span = pos - t->lost_off, ov = st_tlsrec_overhead(s);
	uint64_t avg = t->rec_n ? t->rec_bytes / t->rec_n + ST_TLS_HDR : ST_TLS_PLAIN_MAX + ov;
	uint64_t kmax = span / ov, kest = (span + avg / 2) / avg, k = 0, seq = 0;
	struct st_tlsrec_keys next = { 0 };
	uint8_t ct = 0, nsec[ST_TLS_SECRET_MAX];
	bool found = false, newgen = false;
	int n = 0;

	if (!kmax)
		kmax = 1;
	if (kest < 1)
		kest = 1;
	if (kest > kmax)
		kest = kmax;
	if (st_tlsrec_explicit_seq(&t->keys, body, len, &seq) && seq > t->lost_seq &&
	    seq - t->lost_seq <= kmax && try_seq(c, &t->keys, seq, hdr, body, len, &ct, &n)) {
		k = seq - t->lost_seq;
		found = true;
	}
	for (uint32_t j = 0; !found && j <= ST_TLSDEC_SEQ_TRY; j++) {
		for (int sign = 0; sign < 2 && !found; sign++) {
			if ((sign && !j) || (sign && kest <= j) || (!sign && kest + j > kmax))
				continue;
			k = sign ? kest - j : kest + j;
			found = try_seq(c, &t->keys, t->lost_seq + k, hdr, body, len, &ct, &n);
		}
	}
	if (!found && s->tls13) {
		memcpy(nsec, t->secret, sizeof(nsec));
		if (!st_tlskeys__update(d->keys, s, nsec) &&
		    !st_tlskeys__traffic(d->keys, s, nsec, &next)) {
			for (seq = 0; !found && seq <= ST_TLSDEC_SEQ_TRY; seq++)
				found = try_seq(c, &next, seq, hdr, body, len, &ct, &n);
			seq--;
			newgen = found;
			k = kest;
		}
	}
	if (!found) {
		st_tlsrec_keys_wipe(&next);
		OPENSSL_cleanse(nsec, sizeof(nsec));
		return false;
	}
	{
		uint64_t lost = span > k * ov ? span - k * ov : 0;

		t->pending_loss += lost;
		d->st.loss_bytes += lost;
		d->st.loss_records += k;
	}
	d->st.resyncs++;
	if (newgen) {
		st_tlsrec_keys_wipe(&t->keys);
		t->keys = next;
		memcpy(t->secret, nsec, sizeof(t->secret));
		t->gen++;
		t->seq = seq + 1;
		d->st.key_updates++;
	} else {
		t->seq = t->lost_seq + k + 1;
	}
	OPENSSL_cleanse(nsec, sizeof(nsec));
	t->rec_bytes += len;
	t->rec_n++;
	t->fails = 0;
	d->st.records++;
	d->st.cipher_bytes += ST_TLS_HDR + len;
	handle_plain(c, di, ct, d->plain, (uint32_t)n, ts);
	after_record(c, di);
	return true;
}

/* Looks through the bytes kept after a gap for the record that proves where the stream is. */
static void try_resync(struct tconn *c, int di, uint64_t ts)
{
	struct tdir *t = &c->dir[di];
	uint32_t i = 0;

	if (!keys_ready(c, di))
		return;
	while (i + ST_TLS_HDR <= t->scan_len) {
		const uint8_t *h = t->scan + i;
		uint32_t len = (uint32_t)h[3] << 8 | h[4];

		if (!plausible(c, h)) {
			i++;
			continue;
		}
		if (i + ST_TLS_HDR + len > t->scan_len)
			break; /* the rest of the candidate comes later */
		if (resync_at(c, di, h, h + ST_TLS_HDR, len, t->scan_off + i, ts)) {
			uint8_t *buf = t->scan;
			uint32_t from = i + ST_TLS_HDR + len, total = t->scan_len;
			uint64_t off = t->scan_off + from;
			uint32_t cap = t->scan_cap;

			/* found: what follows the record is framed as usual */
			t->scanning = false;
			t->scan = NULL;
			t->scan_len = t->scan_cap = 0;
			dir_bytes(c, di, off, buf + from, total - from, ts);
			held_add(dec_of(c), -(int64_t)cap);
			free(buf);
			return;
		}
		i++;
	}
	if (i) {
		memmove(t->scan, t->scan + i, t->scan_len - i);
		t->scan_len -= i;
		t->scan_off += i;
		t->scanned += i;
	}
	if (t->scanned > ST_TLSDEC_SCAN_MAX)
		scan_give_up(c, di);
}

static void scan_add(struct tconn *c, int di, uint64_t off, const uint8_t *p, uint32_t n,
		     uint64_t ts)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];

	if (off != t->scan_off + t->scan_len) {
		/* bytes missing between (a gap handled before): start the scan after them */
		t->scanned += t->scan_len;
		t->scan_len = 0;
		t->scan_off = off;
	}
	while (n) {
		uint32_t room, take;

		if (t->scan_len == t->scan_cap) {
			uint32_t cap = t->scan_cap ? t->scan_cap * 2 : 32768;
			uint8_t *q;

			if (cap > 4 * (ST_TLS_BODY_MAX + ST_TLS_HDR) || !(q = realloc(t->scan, cap))) {
				/* full: the oldest half was tried already */
				uint32_t drop = t->scan_len / 2;

				memmove(t->scan, t->scan + drop, t->scan_len - drop);
				t->scan_len -= drop;
				t->scan_off += drop;
				t->scanned += drop;
				if (t->scanned > ST_TLSDEC_SCAN_MAX) {
					scan_give_up(c, di);
					return;
				}
				continue;
			}
			held_add(d, (int64_t)cap - t->scan_cap);
			t->scan = q;
			t->scan_cap = cap;
		}
		room = t->scan_cap - t->scan_len;
		take = n < room ? n : room;
		memcpy(t->scan + t->scan_len, p, take);
		t->scan_len += take;
		p += take;
		n -= take;
		off += take;
		try_resync(c, di, ts);
		if (!t->scanning) {
			/* found: what was kept is framed already, the rest of p follows it */
			if (n)
				dir_bytes(c, di, off, p, n, ts);
			return;
		}
	}
}

static void dir_bytes(struct tconn *c, int di, uint64_t off, const uint8_t *p, uint32_t n,
		      uint64_t ts)
{
	struct st_tlsdec *d = dec_of(c);
	struct tdir *t = &c->dir[di];

	if (off + n > t->end_off)
		t->end_off = off + n;
	if (t->skip_to > off) {
		uint64_t k = t->skip_to - off;

		if (k >= n)
			return;
		p += k;
		off += k;
		n -= (uint32_t)k;
	}
	if (t->dead && t->dead_from)
		return; /* framing lost for good: counted at the end */
	if (t->scanning) {
		scan_add(c, di, off, p, n, ts);
		return;
	}
	while (n && (c->state == CS_NEW || c->state == CS_KEYED)) {
		uint32_t take;

		if (t->hfill < ST_TLS_HDR) {
			if (!t->hfill)
				t->rec_off = off;
			take = ST_TLS_HDR - (uint32_t)t->hfill < n ? ST_TLS_HDR - (uint32_t)t->hfill : n;
			memcpy(t->hdr + t->hfill, p, take);
			t->hfill += (uint8_t)take;
			p += take;
			off += take;
			n -= take;
			if (t->hfill < ST_TLS_HDR)
				break;
			if (!hdr_ok(t->hdr)) {
				if (!established(c, di)) {
					unusable(c);
					break;
				}
				/* not a record where one must start: framing lost here */
				t->scanning = true;
				t->lost_off = t->rec_off;
				t->lost_seq = t->seq;
				t->scanned = 0;
				t->scan_off = t->rec_off;
				t->scan_len = 0;
				t->hfill = 0;
				scan_add(c, di, t->rec_off, t->hdr, ST_TLS_HDR, ts);
				if (t->scanning)
					scan_add(c, di, off, p, n, ts);
				else if (n)
					dir_bytes(c, di, off, p, n, ts);
				return;
			}
			t->blen = (uint32_t)t->hdr[3] << 8 | t->hdr[4];
			t->bfill = 0;
			if (!t->blen) {
				process_record(c, di, t->hdr, NULL, 0, t->rec_off, ts, false);
				t->hfill = 0;
				continue;
			}
		}
		if (!n)
			break; /* the body comes later */
		if (!t->body && n >= t->blen) {
			/* the whole body is here: no copy */
			take = t->blen;
			process_record(c, di, t->hdr, p, take, t->rec_off, ts, false);
			t->hfill = 0;
		} else {
			if (!t->body) {
				if (d->st.held_bytes + t->blen > d->cfg.hold_max ||
				    !(t->body = malloc(t->blen))) {
					/* no room to gather it: the record is lost, framing kept */
					if (protected_rec(c, di, t->hdr[0])) {
						lose_record(c, di, t->blen);
						t->seq++;
					} else {
						give_up(c);
					}
					t->skip_to = t->rec_off + ST_TLS_HDR + t->blen;
					t->hfill = 0;
					dir_bytes(c, di, off, p, n, ts);
					return;
				}
				held_add(d, t->blen);
			}
			take = t->blen - t->bfill < n ? t->blen - t->bfill : n;
			memcpy(t->body + t->bfill, p, take);
			t->bfill += take;
			if (t->bfill == t->blen) {
				process_record(c, di, t->hdr, t->body, t->blen, t->rec_off, ts, false);
				OPENSSL_cleanse(t->body, t->blen);
				body_free(c, t);
			}
		}
		p += take;
		off += take;
		n -= take;
	}
}

static void dir_gap(struct tconn *c, int di, uint64_t off, uint64_t len)
{
	struct tdir *t = &c->dir[di];
	uint64_t end = off + len;

	if (end > t->end_off)
		t->end_off = end;
	if (c->state != CS_NEW && c->state != CS_KEYED)
		return;
	if (!established(c, di)) {
		/* in the handshake: its transcript, or the keys' epochs, cannot be known */
		if (c->state == CS_NEW) {
			give_up(c);
			return;
		}
		dir_dead(c, di);
		t->dead_from = t->hfill ? t->rec_off : off;
		body_free(c, t);
		return;
	}
	if (t->dead)
		return;
	if (t->scanning) {
		/* the bytes kept are cut short: the scan goes on after the gap */
		t->scanned += t->scan_len;
		t->scan_len = 0;
		t->scan_off = end;
		return;
	}
	if (t->skip_to > off) {
		if (t->skip_to >= end)
			return; /* inside a record already lost */
	} else if (t->hfill == ST_TLS_HDR && t->rec_off + ST_TLS_HDR + t->blen > end &&
		   t->rec_off + ST_TLS_HDR <= off) {
		/* inside one record's body: that record is lost, the framing is not */
		lose_record(c, di, t->blen);
		t->seq++;
		t->skip_to = t->rec_off + ST_TLS_HDR + t->blen;
		body_free(c, t);
		return;
	}
	/* the framing is lost: look for the next record that opens */
	t->scanning = true;
	t->lost_off = t->skip_to > off ? t->skip_to : (t->hfill ? t->rec_off : off);
	t->lost_seq = t->seq;
	t->scanned = 0;
	t->scan_off = end;
	t->scan_len = 0;
	body_free(c, t);
}

/* Direction di is over (why): what could not be delivered is announced, then its end. */
static void dir_end(struct tconn *c, int di, enum st_reasm_end why, uint64_t ts)
{
	struct tdir *t = &c->dir[di];

	if (t->ended)
		return;
	t->ended = true;
	if (c->state != CS_KEYED)
		return;
	if (t->scanning) {
		uint64_t n = loss_estimate(c, t, t->scan_off + t->scan_len - t->lost_off);

		t->pending_loss += n;
		dec_of(c)->st.loss_bytes += n;
		t->scanning = false;
		scan_free(c, t);
	} else if (t->dead && t->dead_from && t->end_off > t->dead_from) {
		uint64_t n = loss_estimate(c, t, t->end_off - t->dead_from);

		t->pending_loss += n;
		dec_of(c)->st.loss_bytes += n;
	} else if ((t->hfill || t->held) && established(c, di)) {
		/* a record cut short by the end, or records whose keys never came */
		if (t->hfill == ST_TLS_HDR)
			lose_record(c, di, t->blen);
		held_free(c, di, true);
	}
	announce_loss(c, di, ts);
	if (!delivering(c))
		return;
	if (why == ST_END_FIN)
		emit_flag(c, di, ST_TCP_FIN | ST_TCP_ACK, ts);
	else if (why == ST_END_RST || why == ST_END_TIMEOUT || why == ST_END_EVICTED)
		emit_flag(c, di, ST_TCP_RST | ST_TCP_ACK, ts);
}

/* ---- connections (the ciphertext reassembly's callbacks) ----------------------------- */

static struct st_tlsdec *dec_of(struct tconn *c)
{
	return c->d;
}

static void rs_open(void *ctx, struct st_reasm_conn *rc, uint64_t ts)
{
	struct st_tlsdec *d = ctx;
	struct st_connmap_ent *e = NULL;
	struct tconn *c = calloc(1, sizeof(*c));

	rc->user = c;
	if (!c)
		return;
	c->d = d;
	c->rc = rc;
	c->joined = rc->flags & ST_REASM_F_JOINED;
	c->last_dir = -1;
	for (int i = 0; i < 2; i++) {
		c->dir[i].held_tail = &c->dir[i].held;
		d->rng = st_mix64(d->rng + 0x9e3779b97f4a7c15ull);
		c->isn[i] = (uint32_t)d->rng;
	}
	d->st.conns++;
	if (st_connmap__put(d->map, &rc->key, &e) >= 0) {
		/* the per-call probes named this 4-tuple since the connection began */
		if (IS_MARK(e->val) && MARK_TS(e->val) >= rc->open_ts) {
			c->state = CS_CALLED;
			d->st.called++;
		}
		e->val = (uint64_t)(uintptr_t)c;
		st_connmap__pin(d->map, e);
		c->ent = e;
	}
}

static void rs_data(void *ctx, struct st_reasm_conn *rc, int dir, uint64_t off,
		    const uint8_t *data, uint32_t len, uint64_t ts)
{
	struct tconn *c = rc->user;

	if (!c || (c->state != CS_NEW && c->state != CS_KEYED))
		return;
	dir_bytes(c, dir, off, data, len, ts);
	settle(c);
}

static void rs_gap(void *ctx, struct st_reasm_conn *rc, int dir, uint64_t off, uint64_t len,
		   enum st_reasm_gap_why why, uint64_t ts)
{
	struct tconn *c = rc->user;

	if (!c)
		return;
	dir_gap(c, dir, off, len);
	settle(c);
}

static void rs_end(void *ctx, struct st_reasm_conn *rc, int dir, enum st_reasm_end why,
		   uint64_t ts)
{
	struct tconn *c = rc->user;

	if (!c)
		return;
	settle(c);
	dir_end(c, dir, why, ts);
}

static void dir_free(struct tconn *c, int di)
{
	struct tdir *t = &c->dir[di];

	held_free(c, di, false);
	if (t->body)
		OPENSSL_cleanse(t->body, t->blen);
	body_free(c, t);
	if (t->scan)
		OPENSSL_cleanse(t->scan, t->scan_len);
	scan_free(c, t);
	if (t->hs) {
		held_add(c->d, -(int64_t)t->hs_cap);
		OPENSSL_cleanse(t->hs, t->hs_len);
		free(t->hs);
		t->hs = NULL;
	}
	st_tlsrec_keys_wipe(&t->keys);
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
}

/* Frees the connection and wipes its secrets (its slots are freed with it). */
static void conn_free(struct st_tlsdec *d, struct tconn *c)
{
	struct slot *owned[4] = { c->sl_hs, c->sl_ap, c->sl_early, c->sl_12 };

	for (int i = 0; i < 2; i++)
		dir_free(c, i);
	ch_free(c);
	EVP_MD_CTX_free(c->md);
	for (int i = 0; i < 4; i++)
		if (owned[i] && owned[i]->owner == c)
			slot_free(d, owned[i]);
	if (c->ent) {
		c->ent->val = 0;
		st_connmap__unpin(d->map, c->ent);
	}
	c->rc->user = NULL;
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static void rs_close(void *ctx, struct st_reasm_conn *rc, enum st_reasm_end why, uint64_t ts)
{
	struct st_tlsdec *d = ctx;
	struct tconn *c = rc->user;

	if (!c)
		return;
	if (c->state == CS_NEW && c->n_ch)
		d->st.nokeys++;
	if (c->state == CS_KEYED || c->state == CS_LOGGED) {
		struct st_tlsdec_proc *p = proc_of(d, c->tgid);

		d->open_keyed--;
		if (p) {
			p->ended++;
			p->ended_flights += c->flights;
		}
	}
	conn_free(d, c);
}

static void free_each(void *ctx, struct st_reasm_conn *rc)
{
	if (rc->user)
		conn_free(ctx, rc->user);
}

/* ---- the API ---------------------------------------------------------------------------- */

struct st_tlsdec *st_tlsdec__new(const struct st_tlsdec_config *cfg,
				 const struct st_tlsdec_ops *ops, void *ctx)
{
	static const struct st_reasm_ops rops = {
		.open = rs_open, .data = rs_data, .gap = rs_gap, .end = rs_end, .close = rs_close,
	};
	struct st_connmap_config mc = { .max_entries = MARKS_MAX, .evict = true };
	struct st_reasm_config rc = { 0 };
	struct st_tlsdec *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	if (cfg)
		d->cfg = *cfg;
	if (!d->cfg.hold_max)
		d->cfg.hold_max = ST_TLSDEC_HOLD_MAX_DEFAULT;
	if (!d->cfg.secret_ttl_ns)
		d->cfg.secret_ttl_ns = ST_TLSDEC_SECRET_TTL_NS;
	if (ops)
		d->ops = *ops;
	d->ctx = ctx;
	d->rng = st_connmap_random_seed();
	rc.max_mem = d->cfg.max_mem ? d->cfg.max_mem : 64ull << 20;
	rc.ports = d->cfg.ports;
	rc.n_ports = d->cfg.n_ports;
	rc.hash_seed = d->cfg.hash_seed;
	mc.seed = d->cfg.hash_seed ? d->cfg.hash_seed : d->rng;
	d->reasm = st_reasm__new(&rc, &rops, d);
	d->map = st_connmap__new(&mc);
	d->keys = st_tlskeys__new();
	if (!d->reasm || !d->map || !d->keys) {
		st_tlsdec__free(d);
		errno = ENOMEM;
		return NULL;
	}
	return d;
}

int st_tlsdec__cipher(struct st_tlsdec *d, const struct st_segment *seg)
{
	d->err = 0;
	if (seg->ts_ns > d->now)
		d->now = seg->ts_ns;
	st_reasm__feed(d->reasm, seg);
	return d->err;
}

int st_tlsdec__kdf(struct st_tlsdec *d, const void *rec, size_t size, uint64_t now_ns)
{
	struct st_tlskeys_kdf k;
	struct slot *s;
	uint8_t out[ST_TLS_SECRET_MAX];
	size_t ol = 0;

	d->err = 0;
	if (now_ns > d->now)
		d->now = now_ns;
	if (st_tlskeys_parse_kdf(rec, size, &k))
		return 0;
	d->st.secrets++;
	if (k.kind == ST_KDF_TLS13) {
		if (st_tlskeys__derive13(d->keys, &k, out, &ol) || ol != k.context_len)
			goto out;
		s = slot_get(d, ST_KDF_TLS13, k.context, k.context_len);
		if (!s) {
			d->st.secrets_expired++;
			goto out;
		}
		s->have |= (uint8_t)(1u << k.label);
		s->slen = (uint8_t)ol;
		memcpy(s->secret[k.label], out, ol);
	} else {
		s = slot_get(d, ST_KDF_TLS12, k.client_random, 32);
		if (!s) {
			d->st.secrets_expired++;
			goto out;
		}
		if (s->owner && s->owner->hello_done &&
		    memcmp(s->owner->server_random, k.server_random, 32))
			goto out; /* not this handshake's (cannot be: randoms) */
		s->have = 1;
		s->slen = 48;
		memcpy(s->secret[0], k.secret, 48);
		memcpy(s->server_random, k.server_random, 32);
	}
	s->tgid = k.tgid;
	if (s->owner) {
		struct tconn *c = s->owner;

		d->st.secrets_matched++;
		secrets_changed(c, d->now);
		settle(c);
	}
out:
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(out, sizeof(out));
	return d->err;
}

void st_tlsdec__called(struct st_tlsdec *d, const struct st_flow_key *key, uint64_t now_ns)
{
	struct st_connmap_ent *e = NULL;

	if (now_ns > d->now)
		d->now = now_ns;
	if (st_connmap__put(d->map, key, &e) < 0)
		return;
	if (e->val && !IS_MARK(e->val)) {
		struct tconn *c = (struct tconn *)(uintptr_t)e->val;

		if (c->state == CS_NEW) {
			c->state = CS_CALLED;
			d->st.called++;
			held_free(c, ST_DIR_IN, false);
			held_free(c, ST_DIR_OUT, false);
		}
		return;
	}
	e->val = MARK(now_ns);
}

bool st_tlsdec__keyed(struct st_tlsdec *d, const struct st_flow_key *key)
{
	struct st_connmap_ent *e;
	struct tconn *c;

	if (!d->open_keyed)
		return false;
	e = st_connmap__get(d->map, key);
	if (!e || !e->val || IS_MARK(e->val))
		return false;
	c = (struct tconn *)(uintptr_t)e->val;
	return c->state == CS_KEYED || c->state == CS_LOGGED;
}

int st_tlsdec__tick(struct st_tlsdec *d, uint64_t now_ns)
{
	d->err = 0;
	if (now_ns > d->now)
		d->now = now_ns;
	slots_expire(d);
	st_reasm__tick(d->reasm, d->now);
	return d->err;
}

int st_tlsdec__flush(struct st_tlsdec *d)
{
	d->err = 0;
	st_reasm__flush(d->reasm);
	return d->err;
}

void st_tlsdec__stats(const struct st_tlsdec *d, struct st_tlsdec_stats *out)
{
	*out = d->st;
}

void st_tlsdec__proc(const struct st_tlsdec *d, uint32_t tgid, struct st_tlsdec_proc *out)
{
	const struct proc *p = d->procs[tgid % PROC_BUCKETS];

	memset(out, 0, sizeof(*out));
	for (; p; p = p->next)
		if (p->tgid == tgid)
			*out = p->st;
}

uint64_t st_tlsdec__open_keyed(const struct st_tlsdec *d)
{
	return d->open_keyed;
}

void st_tlsdec__free(struct st_tlsdec *d)
{
	if (!d)
		return;
	if (d->reasm) {
		st_reasm__foreach(d->reasm, free_each, d);
		st_reasm__free(d->reasm);
	}
	for (uint32_t i = 0; i < SLOT_BUCKETS; i++)
		while (d->slots[i])
			slot_free(d, d->slots[i]);
	for (uint32_t i = 0; i < PROC_BUCKETS; i++) {
		while (d->procs[i]) {
			struct proc *p = d->procs[i];

			d->procs[i] = p->next;
			free(p);
		}
	}
	st_connmap__free(d->map);
	st_tlskeys__free(d->keys);
	OPENSSL_cleanse(d->plain, sizeof(d->plain));
	free(d);
}
