/* SPDX-License-Identifier: GPL-2.0-only */
/* pcap / pcapng input (see pcapin.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pcap/pcap.h>

#include "pcapin.h"

/* Link types as pcap_datalink() reports them; a few headers lack the newer ones. */
#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif
#ifndef DLT_LOOP
#define DLT_LOOP 108
#endif

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86dd
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88a8
#define ETH_P_QINQ1_ 0x9100
#define MAX_VLAN_TAGS 4
#define MAX_IPV6_EXT 8

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

static int decode_tcp(const uint8_t *p, uint32_t avail, uint32_t claimed, struct st_segment *seg,
		      uint32_t *cut)
{
	uint32_t doff;

	if (avail < 20 || claimed < 20)
		return ST_DEC_MALFORMED;
	doff = (uint32_t)(p[12] >> 4) * 4;
	if (doff < 20 || doff > avail || doff > claimed)
		return ST_DEC_MALFORMED;
	seg->key.sport = rd16(p);
	seg->key.dport = rd16(p + 2);
	seg->seq = rd32(p + 4);
	seg->ack = rd32(p + 8);
	seg->flags = p[13] & (ST_TCP_FIN | ST_TCP_SYN | ST_TCP_RST | ST_TCP_PSH | ST_TCP_ACK |
			      ST_TCP_URG);
	seg->window = rd16(p + 14);
	seg->kind = ST_SEG_DATA;
	seg->data = p + doff;
	seg->len = (avail < claimed ? avail : claimed) - doff;
	*cut = claimed > avail ? claimed - avail : 0;
	return ST_DEC_TCP;
}

/* An IP packet from p, avail bytes of it in the file. */
static int decode_ip(const uint8_t *p, uint32_t avail, struct st_segment *seg, uint32_t *cut)
{
	uint32_t hl, total, claimed;
	uint8_t nh;
	int i;

	if (avail < 1)
		return ST_DEC_MALFORMED;
	if (p[0] >> 4 == 4) {
		if (avail < 20)
			return ST_DEC_MALFORMED;
		hl = (uint32_t)(p[0] & 0xf) * 4;
		total = rd16(p + 2);
		if (hl < 20 || hl > avail)
			return ST_DEC_MALFORMED;
		/* a 0 total length is what a TSO super-packet captured on its way out carries */
		if (total == 0)
			total = avail;
		if (total < hl)
			return ST_DEC_MALFORMED;
		if (p[9] != 6)
			return ST_DEC_OTHER;
		if (rd16(p + 6) & 0x3fff)
			return ST_DEC_FRAGMENT;
		seg->key.src.family = seg->key.dst.family = 4;
		memcpy(&seg->key.src.a[0], p + 12, 4);
		memcpy(&seg->key.dst.a[0], p + 16, 4);
		return decode_tcp(p + hl, avail - hl, total - hl, seg, cut);
	}
	if (p[0] >> 4 != 6)
		return ST_DEC_OTHER;
	if (avail < 40)
		return ST_DEC_MALFORMED;
	claimed = rd16(p + 4);
	if (claimed == 0)
		claimed = avail - 40; /* jumbogram or TSO: take what is there */
	seg->key.src.family = seg->key.dst.family = 6;
	memcpy(seg->key.src.a, p + 8, 16);
	memcpy(seg->key.dst.a, p + 24, 16);
	nh = p[6];
	p += 40;
	avail -= 40;
	for (i = 0; i < MAX_IPV6_EXT; i++) {
		switch (nh) {
		case 6:
			return decode_tcp(p, avail, claimed, seg, cut);
		case 0:  /* hop-by-hop */
		case 43: /* routing */
		case 60: /* destination options */
		case 51: /* authentication header */
			if (avail < 8)
				return ST_DEC_MALFORMED;
			hl = nh == 51 ? ((uint32_t)p[1] + 2) * 4 : ((uint32_t)p[1] + 1) * 8;
			break;
		case 44: /* fragment: only an atomic one (offset 0, no more) holds a whole segment */
			if (avail < 8)
				return ST_DEC_MALFORMED;
			if (rd16(p + 2) & 0xfff9)
				return ST_DEC_FRAGMENT;
			hl = 8;
			break;
		default:
			return ST_DEC_OTHER;
		}
		if (hl > avail || hl > claimed)
			return ST_DEC_MALFORMED;
		nh = p[0];
		p += hl;
		avail -= hl;
		claimed -= hl;
	}
	return ST_DEC_OTHER;
}

/* Ethertype-framed payload, after any VLAN tags. */
static int decode_ethertype(uint16_t type, const uint8_t *p, uint32_t avail,
			    struct st_segment *seg, uint32_t *cut)
{
	int i;

	for (i = 0; i <= MAX_VLAN_TAGS; i++) {
		if (type == ETH_P_IP_ || type == ETH_P_IPV6_)
			return decode_ip(p, avail, seg, cut);
		if (type != ETH_P_8021Q_ && type != ETH_P_8021AD_ && type != ETH_P_QINQ1_)
			return ST_DEC_OTHER;
		if (avail < 4)
			return ST_DEC_MALFORMED;
		if (!seg->vlan)
			seg->vlan = rd16(p) & 0xfff; /* the outermost tag */
		type = rd16(p + 2);
		p += 4;
		avail -= 4;
	}
	return ST_DEC_OTHER;
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
		return decode_ethertype(rd16(p + 12), p + 14, caplen - 14, seg, cut);
	case DLT_LINUX_SLL:
		if (caplen < 16)
			return ST_DEC_MALFORMED;
		return decode_ethertype(rd16(p + 14), p + 16, caplen - 16, seg, cut);
	case DLT_LINUX_SLL2:
		if (caplen < 20)
			return ST_DEC_MALFORMED;
		return decode_ethertype(rd16(p), p + 20, caplen - 20, seg, cut);
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		return decode_ip(p, caplen, seg, cut);
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
			return decode_ip(p + 4, caplen - 4, seg, cut);
		default:
			return ST_DEC_OTHER;
		}
	default:
		return ST_DEC_OTHER;
	}
}

static struct st_pcapin *finish_open(pcap_t *pc, const char *ebuf, char *err, size_t errlen)
{
	struct st_pcapin *p;

	if (!pc) {
		snprintf(err, errlen, "%s", ebuf);
		errno = EINVAL;
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
	p->dlt = pcap_datalink(pc);
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
