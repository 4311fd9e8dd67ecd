/* SPDX-License-Identifier: GPL-2.0-only */
/* pcap / pcapng input (see pcapin.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pcap/pcap.h>

#include "pcapin.h"
#include "pktparse.h"

/* A snap-length cut gives up to three segments from one packet: data, loss, FIN/RST. */
#define PENDING_MAX 2

struct st_pcapin {
	pcap_t *pc;
	int dlt;
	bool truncated;
	char err[PCAP_ERRBUF_SIZE + 64];
	struct st_segment pending[PENDING_MAX];
	unsigned n_pending, next_pending;
	struct st_pcapin_stats st;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* From the link layer's type field on, with the kernel programs' parser. */
static int decode_at(const uint8_t *p, uint32_t caplen, uint16_t proto, uint32_t off,
		     struct st_segment *seg, uint32_t *cut)
{
	struct st_pktbuf b = { .p = p, .avail = caplen };
	struct st_pkt k;

	switch (st_parse_at(&b, caplen, htons(proto), off, &k)) {
	case ST_PARSE_TCP:
		break;
	case ST_PARSE_FRAG:
		return ST_DEC_FRAGMENT;
	case ST_PARSE_BAD:
		return ST_DEC_MALFORMED;
	default:
		return ST_DEC_OTHER;
	}
	seg->key.src.family = seg->key.dst.family = k.family;
	memcpy(seg->key.src.a, k.saddr, sizeof(seg->key.src.a));
	memcpy(seg->key.dst.a, k.daddr, sizeof(seg->key.dst.a));
	seg->key.sport = k.sport;
	seg->key.dport = k.dport;
	seg->seq = k.seq;
	seg->ack = k.ack;
	seg->flags = k.tcp_flags & (ST_TCP_FIN | ST_TCP_SYN | ST_TCP_RST | ST_TCP_PSH | ST_TCP_ACK |
				    ST_TCP_URG);
	seg->window = k.window;
	seg->vlan = k.vlan;
	seg->kind = ST_SEG_DATA;
	seg->data = p + k.payload_off;
	/* payload_len stops at the end of what the file holds; the IP length says
	 * how much more the wire carried (a snap-length cut). */
	seg->len = k.payload_len;
	*cut = k.ip_end > caplen ? k.ip_end - caplen : 0;
	return ST_DEC_TCP;
}

int st_pcapin_decode(int dlt, const uint8_t *p, uint32_t caplen, struct st_segment *seg,
		     uint32_t *cut)
{
	uint32_t af;

	*cut = 0;
	seg->key = (struct st_flow_key){ 0 };
	seg->vlan = 0;
	switch (dlt) {
	case DLT_EN10MB:
		if (caplen < 14)
			return ST_DEC_MALFORMED;
		return decode_at(p, caplen, rd16(p + 12), 14, seg, cut);
	case DLT_LINUX_SLL:
		if (caplen < 16)
			return ST_DEC_MALFORMED;
		return decode_at(p, caplen, rd16(p + 14), 16, seg, cut);
	case DLT_LINUX_SLL2:
		if (caplen < 20)
			return ST_DEC_MALFORMED;
		return decode_at(p, caplen, rd16(p), 20, seg, cut);
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		return decode_at(p, caplen, 0, 0, seg, cut);
	case DLT_NULL:
	case DLT_LOOP:
		if (caplen < 4)
			return ST_DEC_MALFORMED;
		/* NULL: the writer's byte order; LOOP: network order. AF values differ per OS */
		af = rd32(p);
		if (dlt == DLT_NULL && (af & 0xffff0000u))
			af = __builtin_bswap32(af);
		switch (af) {
		case 2:                       /* AF_INET everywhere */
		case 10: case 24: case 28: case 30: /* AF_INET6: Linux, *BSD, FreeBSD, Darwin */
			return decode_at(p, caplen, 0, 4, seg, cut);
		default:
			return ST_DEC_OTHER;
		}
	default:
		return ST_DEC_OTHER;
	}
}

bool st_pcapin_linktype_known(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
	case DLT_NULL:
	case DLT_LOOP:
		return true;
	default:
		return false;
	}
}

static struct st_pcapin *finish_open(pcap_t *pc, const char *ebuf, char *err, size_t errlen)
{
	struct st_pcapin *p;
	const char *name, *desc;
	int dlt;

	if (!pc) {
		snprintf(err, errlen, "%s", ebuf);
		errno = EINVAL;
		return NULL;
	}
	dlt = pcap_datalink(pc);
	if (!st_pcapin_linktype_known(dlt)) {
		name = pcap_datalink_val_to_name(dlt);
		desc = pcap_datalink_val_to_description(dlt);
		if (name)
			snprintf(err, errlen, "link type %d (%s%s%s) is not one shadowtap decodes (%s)",
				 dlt, name, desc ? ": " : "", desc ? desc : "", ST_PCAPIN_LINKTYPES);
		else
			snprintf(err, errlen, "link type %d (unknown to libpcap) is not one shadowtap "
				 "decodes (%s)", dlt, ST_PCAPIN_LINKTYPES);
		pcap_close(pc);
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		pcap_close(pc);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	p->pc = pc;
	p->dlt = dlt;
	return p;
}

struct st_pcapin *st_pcapin__open(const char *path, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO,
							      ebuf);

	return finish_open(pc, ebuf, err, errlen);
}

struct st_pcapin *st_pcapin__fopen(FILE *f, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, ebuf);

	if (!pc)
		fclose(f);
	return finish_open(pc, ebuf, err, errlen);
}

int st_pcapin__next(struct st_pcapin *p, struct st_segment *seg)
{
	struct pcap_pkthdr *h;
	const u_char *pkt;
	uint32_t cut;
	int rc;

	if (p->next_pending < p->n_pending) {
		*seg = p->pending[p->next_pending++];
		return 1;
	}
	for (;;) {
		rc = pcap_next_ex(p->pc, &h, &pkt);
		if (rc == PCAP_ERROR_BREAK)
			return 0;
		if (rc != 1) {
			snprintf(p->err, sizeof(p->err), "%s", pcap_geterr(p->pc));
			p->truncated = strstr(p->err, "truncated") != NULL;
			return -EIO;
		}
		p->st.packets++;
		memset(seg, 0, sizeof(*seg));
		rc = st_pcapin_decode(p->dlt, pkt, h->caplen, seg, &cut);
		if (rc == ST_DEC_OTHER) {
			p->st.not_tcp++;
			continue;
		}
		if (rc == ST_DEC_FRAGMENT) {
			p->st.fragments++;
			continue;
		}
		if (rc != ST_DEC_TCP) {
			p->st.malformed++;
			continue;
		}
		break;
	}
	p->st.segments++;
	seg->ts_ns = (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec;
	seg->dir = -1;
	p->n_pending = p->next_pending = 0;
	if (cut) {
		/* the file lacks the tail: say so, and keep FIN/RST after it where they belong */
		struct st_segment *loss = &p->pending[p->n_pending++];
		uint8_t end_flags = seg->flags & (ST_TCP_FIN | ST_TCP_RST);

		p->st.snap_cut++;
		p->st.snap_bytes += cut;
		*loss = *seg;
		loss->kind = ST_SEG_LOSS;
		loss->flags &= ~(ST_TCP_SYN | ST_TCP_FIN | ST_TCP_RST);
		loss->seq = seg->seq + !!(seg->flags & ST_TCP_SYN) + seg->len;
		loss->len = cut;
		loss->data = NULL;
		seg->flags &= ~end_flags;
		if (end_flags) {
			struct st_segment *fin = &p->pending[p->n_pending++];

			*fin = *loss;
			fin->kind = ST_SEG_DATA;
			fin->flags = end_flags | (seg->flags & ST_TCP_ACK);
			fin->seq = loss->seq + cut;
			fin->len = 0;
		}
	}
	return 1;
}

const char *st_pcapin__error(const struct st_pcapin *p)
{
	return p->err;
}

bool st_pcapin__truncated(const struct st_pcapin *p)
{
	return p->truncated;
}

int st_pcapin__linktype(const struct st_pcapin *p)
{
	return p->dlt;
}

void st_pcapin__stats(const struct st_pcapin *p, struct st_pcapin_stats *out)
{
	*out = p->st;
}

void st_pcapin__close(struct st_pcapin *p)
{
	if (!p)
		return;
	pcap_close(p->pc);
	free(p);
}
